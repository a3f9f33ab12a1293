//! A manifest read from a disc: the catalogue snapshot of our discs or of
//! the original dBackup's, opened read-only and immutable, and treated as
//! untrusted input. Every value is checked on the way out: a row with a
//! missing or ill-typed field is counted as invalid and left out, never
//! trusted and never a panic.

use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::catalog::Mtime;
use crate::names;

/// Why a manifest could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: not a dbackup manifest: {why}", path.display())]
    Invalid { path: PathBuf, why: String },
    #[error("{}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

type Result<T> = std::result::Result<T, ManifestError>;

/// A `discs` row.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DiscRow {
    pub id: i64,
    pub started: Option<f64>,
    pub completed: Option<f64>,
    pub available: bool,
}

/// One backed-up version of a file (`copied=1` row).
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub id: i64,
    pub name: Vec<u8>,
    pub timestamp: f64,
    pub md5: String,
    pub size: u64,
    pub mtime: f64,
    /// The mtime was stored as whole seconds (the original's INTEGER), so
    /// it is compared at whole seconds.
    pub mtime_whole: bool,
    pub disc: i64,
    pub desc: String,
}

impl Version {
    /// The recorded mtime with the rule it is compared by.
    pub fn recorded_mtime(&self) -> Mtime {
        if self.mtime_whole {
            Mtime::Whole(self.mtime as i64)
        } else {
            Mtime::Real(self.mtime)
        }
    }
}

/// A recorded deletion.
#[derive(Debug, Clone, PartialEq)]
pub struct Deletion {
    pub name: Vec<u8>,
    pub deleted: f64,
    pub file_id: Option<i64>,
}

/// What identifies a set across its discs: our UUID (absent on the
/// original's discs) and when its first disc was started (on every disc).
#[derive(Debug, Clone, PartialEq)]
pub struct SetIdentity {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub first_started: Option<f64>,
}

impl SetIdentity {
    /// Whether two discs belong to the same set: UUIDs equal when both have
    /// one, and the first disc's start time equal when both know it.
    pub fn same_set(&self, other: &SetIdentity) -> bool {
        let uuid_ok = match (&self.uuid, &other.uuid) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        let started_ok = match (self.first_started, other.first_started) {
            (Some(a), Some(b)) => (a - b).abs() < 1e-3,
            _ => true,
        };
        uuid_ok && started_ok
    }

    /// For messages: `"Photos" (uuid)`.
    pub fn describe(&self) -> String {
        match (&self.name, &self.uuid) {
            (Some(n), Some(u)) => format!("\"{n}\" ({u})"),
            (None, Some(u)) => u.clone(),
            (Some(n), None) => format!("\"{n}\""),
            (None, None) => "an original dBackup set".into(),
        }
    }
}

/// A read-only manifest.
pub struct Manifest {
    conn: Connection,
    path: PathBuf,
    has_deletions: bool,
    /// A `damaged` table: versions whose copy rotted before any image held
    /// it. They are on no disc, so every reader leaves them out.
    has_damaged: bool,
}

/// A `file:` URI for `path` with `?immutable=1`, escaping what a URI
/// reserves, so any path opens.
fn immutable_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// Opens a SQLite file read-only and immutable (no journal, no locks, no
/// writes: right for a disc, and for any database we must not change).
pub fn open_immutable(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        immutable_uri(path),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // Hostile schemas must not run functions or views on our behalf.
    conn.execute_batch("PRAGMA trusted_schema=OFF; PRAGMA cell_size_check=ON;")?;
    Ok(conn)
}

fn real(v: ValueRef<'_>) -> Option<f64> {
    match v {
        ValueRef::Real(f) if f.is_finite() => Some(f),
        ValueRef::Integer(i) => Some(i as f64),
        _ => None,
    }
}

fn is_md5(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Manifest {
    /// Opens and checks a manifest: the `discs` and `files` tables with the
    /// original's columns must be there.
    pub fn open(path: &Path) -> Result<Manifest> {
        Manifest::open_with(path, true)
    }

    /// Opens a live catalogue (a workdir's, in WAL mode, maybe being
    /// written) read-only, seeing its latest committed state.
    pub fn open_live(path: &Path) -> Result<Manifest> {
        Manifest::open_with(path, false)
    }

    fn open_with(path: &Path, immutable: bool) -> Result<Manifest> {
        let err = |source| ManifestError::Sqlite {
            path: path.into(),
            source,
        };
        if !path.is_file() {
            return Err(ManifestError::Invalid {
                path: path.into(),
                why: "no such file".into(),
            });
        }
        let conn = if immutable {
            open_immutable(path).map_err(err)?
        } else {
            let c = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(err)?;
            c.busy_timeout(std::time::Duration::from_secs(10))
                .map_err(err)?;
            c
        };
        let has = |table: &str, cols: &[&str]| -> Result<bool> {
            let mut stmt = conn
                .prepare("SELECT name FROM pragma_table_info(?1)")
                .map_err(err)?;
            let found: Vec<String> = stmt
                .query_map([table], |r| r.get(0))
                .map_err(err)?
                .collect::<rusqlite::Result<_>>()
                .map_err(err)?;
            Ok(cols.iter().all(|c| found.iter().any(|f| f == c)))
        };
        if !has(
            "files",
            &[
                "id",
                "filename",
                "timestamp",
                "md5",
                "size",
                "mtime",
                "disc_id",
                "desc",
                "copied",
            ],
        )? || !has("discs", &["id", "started", "completed", "available"])?
        {
            return Err(ManifestError::Invalid {
                path: path.into(),
                why: "tables discs and files with the original's columns are missing".into(),
            });
        }
        let has_deletions = has("deletions", &["filename", "deleted", "file_id"])?;
        let has_damaged = has("damaged", &["file_id"])?;
        Ok(Manifest {
            conn,
            path: path.into(),
            has_deletions,
            has_damaged,
        })
    }

    fn err(&self, source: rusqlite::Error) -> ManifestError {
        ManifestError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The file this manifest was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A text setting of ours (absent on the original's discs).
    pub fn setting(&self, key: &str) -> Option<String> {
        self.conn
            .query_row("SELECT value FROM settings WHERE key=?1", [key], |r| {
                Ok(match r.get_ref(0)? {
                    ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                    _ => None,
                })
            })
            .optional()
            .ok()
            .flatten()
            .flatten()
    }

    /// Who this disc's set is.
    pub fn identity(&self) -> SetIdentity {
        let first_started = self
            .conn
            .query_row("SELECT started FROM discs WHERE id=1", [], |r| {
                Ok(real(r.get_ref(0)?))
            })
            .optional()
            .ok()
            .flatten()
            .flatten();
        SetIdentity {
            uuid: self.setting("uuid"),
            name: self.setting("name"),
            first_started,
        }
    }

    /// Every disc the manifest knows.
    pub fn discs(&self) -> Result<Vec<DiscRow>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, started, completed, available FROM discs ORDER BY id")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let Ok(ValueRef::Integer(id)) = r.get_ref(0) else {
                continue;
            };
            let available = match r.get_ref(3) {
                Ok(ValueRef::Integer(0)) => false,
                Ok(ValueRef::Text(t)) => !matches!(t, b"0" | b"false" | b"False"),
                _ => true,
            };
            out.push(DiscRow {
                id,
                started: r.get_ref(1).ok().and_then(real),
                completed: r.get_ref(2).ok().and_then(real),
                available,
            });
        }
        Ok(out)
    }

    /// Which disc this manifest was frozen into: the highest completed one.
    pub fn this_disc(&self) -> Result<Option<i64>> {
        Ok(self
            .discs()?
            .into_iter()
            .filter(|d| d.completed.is_some())
            .map(|d| d.id)
            .max())
    }

    fn version(r: &rusqlite::Row<'_>) -> Option<Version> {
        let id = match r.get_ref(0).ok()? {
            ValueRef::Integer(i) if i >= 0 => i,
            _ => return None,
        };
        let name = names::from_sql(r.get_ref(1).ok()?)?;
        if name.is_empty() {
            return None;
        }
        let timestamp = real(r.get_ref(2).ok()?)?;
        let md5 = match r.get_ref(3).ok()? {
            ValueRef::Text(t) => std::str::from_utf8(t).ok()?.to_ascii_lowercase(),
            _ => return None,
        };
        if !is_md5(&md5) {
            return None;
        }
        let size = match r.get_ref(4).ok()? {
            ValueRef::Integer(i) if i >= 0 => i as u64,
            _ => return None,
        };
        let mtime_value = r.get_ref(5).ok()?;
        let mtime_whole = matches!(mtime_value, ValueRef::Integer(_));
        let mtime = real(mtime_value).unwrap_or(0.0);
        let disc = match r.get_ref(6).ok()? {
            ValueRef::Integer(i) => i,
            _ => return None,
        };
        let desc = match r.get_ref(7).ok()? {
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            _ => String::new(),
        };
        Some(Version {
            id,
            name,
            timestamp,
            md5,
            size,
            mtime,
            mtime_whole,
            disc,
            desc,
        })
    }

    /// The condition of a backed-up version: copied, and not recorded
    /// damaged.
    fn backed_up(&self) -> &'static str {
        if self.has_damaged {
            "copied=1 AND NOT EXISTS (SELECT 1 FROM damaged d WHERE d.file_id = files.id)"
        } else {
            "copied=1"
        }
    }

    /// Versions recorded damaged (id, disc, name): no backup, on no disc.
    pub fn damaged(&self) -> Result<Vec<(i64, i64, Vec<u8>)>> {
        if !self.has_damaged {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT d.file_id, d.disc_id, f.filename FROM damaged d
                 JOIN files f ON f.id = d.file_id ORDER BY d.file_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let name = match r.get_ref(2)? {
                    ValueRef::Text(b) | ValueRef::Blob(b) => b.to_vec(),
                    _ => Vec::new(),
                };
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, name))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    const COLUMNS: &'static str = "id, filename, timestamp, md5, size, mtime, disc_id, desc";

    /// Calls `f` with every backed-up version (`copied=1`) in id order.
    /// Returns how many rows were invalid and left out.
    pub fn for_each_version(&self, f: &mut dyn FnMut(Version)) -> Result<u64> {
        let sql = format!(
            "SELECT {} FROM files WHERE {} ORDER BY id",
            Self::COLUMNS,
            self.backed_up()
        );
        self.each(&sql, None, f)
    }

    /// Like [`Manifest::for_each_version`], but in name order (then id), so
    /// the versions of one file come together, and only those whose name
    /// passes `prefilter` (a superset filter: callers match exactly).
    pub fn for_each_version_by_name(
        &self,
        prefilter: Option<&crate::history::Prefilter>,
        f: &mut dyn FnMut(Version),
    ) -> Result<u64> {
        let filter = match prefilter {
            Some(p) if p.like => "AND CAST(filename AS TEXT) LIKE ?1 ESCAPE '\\'",
            Some(_) => "AND CAST(filename AS TEXT) GLOB ?1",
            None => "",
        };
        let sql = format!(
            "SELECT {} FROM files WHERE {} {filter} ORDER BY filename, id",
            Self::COLUMNS,
            self.backed_up()
        );
        self.each(&sql, prefilter.map(|p| p.pattern.as_str()), f)
    }

    fn each(&self, sql: &str, param: Option<&str>, f: &mut dyn FnMut(Version)) -> Result<u64> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let mut rows = match param {
            Some(p) => stmt.query([p]),
            None => stmt.query([]),
        }
        .map_err(|e| self.err(e))?;
        let mut invalid = 0;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            match Self::version(r) {
                Some(v) => f(v),
                None => invalid += 1,
            }
        }
        Ok(invalid)
    }

    /// Every backed-up version on disc `disc`, in id order, and the count of
    /// invalid rows left out.
    pub fn disc_versions(&self, disc: i64) -> Result<(Vec<Version>, u64)> {
        let sql = format!(
            "SELECT {} FROM files WHERE {} AND disc_id=?1 ORDER BY id",
            Self::COLUMNS,
            self.backed_up()
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query([disc]).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        let mut invalid = 0;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            match Self::version(r) {
                Some(v) => out.push(v),
                None => invalid += 1,
            }
        }
        Ok((out, invalid))
    }

    /// Recorded deletions (none on the original's discs).
    pub fn deletions(&self) -> Result<Vec<Deletion>> {
        if !self.has_deletions {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare("SELECT filename, deleted, file_id FROM deletions ORDER BY id")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let (Some(name), Some(deleted)) = (
                r.get_ref(0).ok().and_then(names::from_sql),
                r.get_ref(1).ok().and_then(real),
            ) else {
                continue;
            };
            let file_id = match r.get_ref(2) {
                Ok(ValueRef::Integer(i)) => Some(i),
                _ => None,
            };
            out.push(Deletion {
                name,
                deleted,
                file_id,
            });
        }
        Ok(out)
    }

    /// The latest version id of `name` among backed-up rows, if any.
    pub fn latest_id(&self, name: &[u8]) -> Result<Option<i64>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT max(id) FROM files WHERE filename=?1 AND {}",
                    self.backed_up()
                ),
                [names::to_sql(name)],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map_err(|e| self.err(e))
    }

    /// `PRAGMA integrity_check`: `Ok(())` or what it found.
    pub fn integrity_check(&self) -> std::result::Result<(), String> {
        let mut stmt = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| e.to_string())?;
        let lines: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| e.to_string())?
            .filter_map(|r| r.ok())
            .collect();
        if lines.len() == 1 && lines[0] == "ok" {
            Ok(())
        } else if lines.is_empty() {
            Err("integrity check returned nothing".into())
        } else {
            Err(lines.into_iter().take(5).collect::<Vec<_>>().join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_escape_reserved_characters() {
        assert_eq!(
            immutable_uri(Path::new("/a b/c?d#e%f.db")),
            "file:/a%20b/c%3Fd%23e%25f.db?immutable=1"
        );
    }

    #[test]
    fn identity_compares_what_both_sides_know() {
        let a = SetIdentity {
            uuid: Some("u1".into()),
            name: None,
            first_started: Some(100.0),
        };
        let original = SetIdentity {
            uuid: None,
            name: None,
            first_started: Some(100.0),
        };
        let other = SetIdentity {
            uuid: Some("u2".into()),
            name: None,
            first_started: Some(100.0),
        };
        assert!(a.same_set(&original));
        assert!(!a.same_set(&other));
        assert!(!original.same_set(&SetIdentity {
            uuid: None,
            name: None,
            first_started: Some(5.0)
        }));
    }
}
