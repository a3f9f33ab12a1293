//! File names as the catalogue stores them, and as a terminal shows them.
//!
//! A name is the path relative to the watched folder with a leading `/`, kept
//! as raw bytes (Unix file names are bytes, not text). In SQLite a name that is
//! valid UTF-8 is stored as TEXT, so `sqlite3` and `LIKE` work on it as on the
//! original's discs; a name that is not valid UTF-8 is stored as a BLOB of its
//! exact bytes, so it round-trips unchanged.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};

/// The SQL value for a name: TEXT when valid UTF-8, BLOB otherwise.
pub fn to_sql(name: &[u8]) -> ToSqlOutput<'_> {
    match std::str::from_utf8(name) {
        Ok(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        Err(_) => ToSqlOutput::Owned(Value::Blob(name.to_vec())),
    }
}

/// The bytes of a name read from the catalogue (TEXT or BLOB); `None` for
/// values that cannot be a name (NULL, numbers).
pub fn from_sql(value: ValueRef<'_>) -> Option<Vec<u8>> {
    bytes_of(value).map(<[u8]>::to_vec)
}

/// The bytes of a name as SQLite holds them (TEXT or BLOB), not copied;
/// `None` as for [`from_sql`].
pub fn bytes_of(value: ValueRef<'_>) -> Option<&[u8]> {
    match value {
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(b),
        _ => None,
    }
}

/// The catalogue name (`/a/b`) of a path relative to the watched folder.
pub fn from_relative(rel: &std::path::Path) -> Vec<u8> {
    let bytes = rel.as_os_str().as_bytes();
    let mut name = Vec::with_capacity(bytes.len() + 1);
    name.push(b'/');
    name.extend_from_slice(bytes);
    name
}

/// The path relative to the watched folder of a catalogue name.
pub fn to_relative(name: &[u8]) -> &std::path::Path {
    let trimmed = name.strip_prefix(b"/").unwrap_or(name);
    std::path::Path::new(OsStr::from_bytes(trimmed))
}

/// A name for display: invalid UTF-8 bytes shown as `\xNN`, and (when
/// `escape_controls`, i.e. on a terminal) control characters escaped so a
/// hostile name cannot drive the terminal.
pub fn display(name: &[u8], escape_controls: bool) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if escape_controls && c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Serializes a name as text for JSON: invalid UTF-8 bytes as `\xNN`, as
/// [`display`] shows them (control characters are left to JSON's escapes).
pub fn serialize_lossy<S: serde::Serializer>(name: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&display(name, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_round_trips_as_blob() {
        let name = b"/caf\xe9.jpg".to_vec();
        let sql = to_sql(&name);
        let ToSqlOutput::Owned(Value::Blob(ref b)) = sql else {
            panic!("expected a blob, got {sql:?}");
        };
        assert_eq!(from_sql(ValueRef::Blob(b)).as_deref(), Some(&name[..]));
        assert_eq!(display(&name, true), "/caf\\xe9.jpg");
    }

    #[test]
    fn utf8_is_text_and_controls_are_escaped() {
        let name = "/a\nb/ü".as_bytes();
        assert!(matches!(
            to_sql(name),
            ToSqlOutput::Borrowed(ValueRef::Text(_))
        ));
        assert_eq!(display(name, true), "/a\\nb/ü");
        assert_eq!(display(name, false), "/a\nb/ü");
        assert_eq!(to_relative(name), std::path::Path::new("a\nb/ü"));
    }
}
