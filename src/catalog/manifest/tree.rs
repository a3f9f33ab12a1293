//! The tables of a manifest that hold what a tree is beyond its regular
//! files' content (see `docs/tree.md`): `attrs` (mode, owner and exact
//! mtime of a file version) and `entries` (folders, symbolic links and
//! hard links, with their own history). Read as untrusted input like the
//! rest of a manifest: a table that is absent reads as none, one that is
//! not a plain table (a view, a virtual table, triggers, a column missing
//! or generated) reads as none and says why, and a row whose values do not
//! fit (wrong types, modes beyond `07777`, nanoseconds outside
//! `0..1e9`, unknown kinds, link targets with a NUL) is counted as invalid
//! and left out. Nothing here checks that a name is a path below a target:
//! restore does that for these names as for files.

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use super::{real, table_kind, Manifest, ManifestError, TableKind};
use crate::names;

type Result<T> = std::result::Result<T, ManifestError>;

/// The longest link target taken (Linux's `PATH_MAX`, its NUL included).
pub const TARGET_MAX: usize = 4095;

/// The longest user or group name taken.
const OWNER_MAX: usize = 256;

/// Seconds of an mtime beyond this (either side of the epoch, some 31,000
/// years) are no time a filesystem keeps: the row is invalid.
const MTIME_SEC_MAX: i64 = 1 << 40;

/// Mode, owner and exact mtime, as recorded; each `None` when the row
/// does not have it (NULL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    /// Permission bits with setuid, setgid and sticky (`<= 0o7777`).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub owner: Option<String>,
    pub grp: Option<String>,
    /// Seconds since the epoch (signed) and nanoseconds (`< 1e9`).
    pub mtime: Option<(i64, u32)>,
}

/// What an `entries` row is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    /// A symbolic link and its target's bytes (not empty, no NUL, at most
    /// [`TARGET_MAX`] bytes).
    Symlink(Vec<u8>),
    /// Another name of the file stored under this catalogue name.
    Hardlink(Vec<u8>),
}

impl EntryKind {
    pub fn label(&self) -> &'static str {
        match self {
            EntryKind::Dir => "dir",
            EntryKind::Symlink(_) => "symlink",
            EntryKind::Hardlink(_) => "hardlink",
        }
    }
}

/// One `entries` row: a version of a name that is not a regular file's
/// content.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: i64,
    pub name: Vec<u8>,
    pub kind: EntryKind,
    pub timestamp: f64,
    pub deleted: Option<f64>,
    pub attrs: Attrs,
}

/// Whether a table of the tree can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Table {
    Absent,
    Usable,
    /// There, but not read (why, for the report).
    Unusable(String),
}

/// What an `attrs` lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAttrs {
    /// No row (or no table): the version restores with `files.mtime` and
    /// default modes.
    None,
    Some(Attrs),
    /// A row that is not usable (or two rows for one version): treated as
    /// none, and counted.
    Invalid,
}

/// The tree tables of one manifest.
pub struct Tree<'m> {
    m: &'m Manifest,
    pub attrs: Table,
    pub entries: Table,
}

const ATTR_COLUMNS: &[&str] = &[
    "mode",
    "uid",
    "gid",
    "owner",
    "grp",
    "mtime_sec",
    "mtime_nsec",
];

/// Whether `table` is a plain table with stored columns `cols`.
fn usable(conn: &Connection, table: &str, cols: &[&str]) -> rusqlite::Result<Table> {
    match table_kind(conn, table)? {
        TableKind::Absent => return Ok(Table::Absent),
        TableKind::Table => {}
        TableKind::Other(what) => {
            return Ok(Table::Unusable(format!(
                "{table} is {what}, not a table; only real tables are read"
            )))
        }
    }
    let triggers: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type='trigger' AND tbl_name=?1 COLLATE NOCASE",
        [table],
        |r| r.get(0),
    )?;
    if triggers > 0 {
        return Ok(Table::Unusable(format!("table {table} has triggers")));
    }
    let found: Vec<(String, i64)> = conn
        .prepare("SELECT name, hidden FROM pragma_table_xinfo(?1)")?
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for c in cols {
        match found.iter().find(|(f, _)| f.eq_ignore_ascii_case(c)) {
            Some((_, 0)) => {}
            Some(_) => {
                return Ok(Table::Unusable(format!(
                    "column {table}.{c} is generated or hidden, not stored"
                )))
            }
            None => return Ok(Table::Unusable(format!("table {table} has no column {c}"))),
        }
    }
    Ok(Table::Usable)
}

/// An INTEGER that fits a `u32` (and is not `u32::MAX`, which `chown`
/// reads as "leave it"), NULL as `None`; anything else is invalid.
fn id_number(v: ValueRef<'_>) -> std::result::Result<Option<u32>, ()> {
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(i) => match u32::try_from(i) {
            Ok(n) if n != u32::MAX => Ok(Some(n)),
            _ => Err(()),
        },
        _ => Err(()),
    }
}

/// A user or group name: TEXT, UTF-8, no NUL, not empty, bounded.
fn owner_name(v: ValueRef<'_>) -> std::result::Result<Option<String>, ()> {
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) if !t.is_empty() && t.len() <= OWNER_MAX && !t.contains(&0) => {
            std::str::from_utf8(t)
                .map(|s| Some(s.to_string()))
                .map_err(|_| ())
        }
        _ => Err(()),
    }
}

/// The seven attribute columns starting at `at`.
fn attrs_of(r: &rusqlite::Row<'_>, at: usize) -> std::result::Result<Attrs, ()> {
    let get = |i: usize| r.get_ref(at + i).map_err(|_| ());
    let mode = match get(0)? {
        ValueRef::Null => None,
        ValueRef::Integer(m) if (0..=0o7777).contains(&m) => Some(m as u32),
        _ => return Err(()),
    };
    let mtime = match (get(5)?, get(6)?) {
        (ValueRef::Null, ValueRef::Null) => None,
        (ValueRef::Integer(s), ValueRef::Integer(ns))
            if (-MTIME_SEC_MAX..=MTIME_SEC_MAX).contains(&s)
                && (0..1_000_000_000).contains(&ns) =>
        {
            Some((s, ns as u32))
        }
        _ => return Err(()),
    };
    Ok(Attrs {
        mode,
        uid: id_number(get(1)?)?,
        gid: id_number(get(2)?)?,
        owner: owner_name(get(3)?)?,
        grp: owner_name(get(4)?)?,
        mtime,
    })
}

/// A symbolic link's target: its bytes, not empty, no NUL, bounded.
fn link_target(v: ValueRef<'_>) -> Option<Vec<u8>> {
    match v {
        ValueRef::Blob(b) | ValueRef::Text(b)
            if !b.is_empty() && b.len() <= TARGET_MAX && !b.contains(&0) =>
        {
            Some(b.to_vec())
        }
        _ => None,
    }
}

impl Manifest {
    /// The tree tables of this manifest, each checked before it is read.
    pub fn tree(&self) -> Result<Tree<'_>> {
        let err = |e| self.err(e);
        let mut cols = vec!["file_id"];
        cols.extend_from_slice(ATTR_COLUMNS);
        let attrs = usable(self.conn(), "attrs", &cols).map_err(err)?;
        let mut cols = vec!["id", "filename", "kind", "timestamp", "deleted", "target"];
        cols.extend_from_slice(ATTR_COLUMNS);
        let entries = usable(self.conn(), "entries", &cols).map_err(err)?;
        Ok(Tree {
            m: self,
            attrs,
            entries,
        })
    }
}

impl Tree<'_> {
    /// Why a table that is there is not read, if one is not.
    pub fn unusable(&self) -> Vec<String> {
        [&self.attrs, &self.entries]
            .into_iter()
            .filter_map(|t| match t {
                Table::Unusable(why) => Some(why.clone()),
                _ => None,
            })
            .collect()
    }

    /// The `attrs` of file version `id`.
    pub fn file_attrs(&self, id: i64) -> Result<FileAttrs> {
        if self.attrs != Table::Usable {
            return Ok(FileAttrs::None);
        }
        let mut stmt = self
            .m
            .conn()
            .prepare_cached(
                "SELECT file_id, mode, uid, gid, owner, grp, mtime_sec, mtime_nsec
                 FROM attrs WHERE file_id=?1 LIMIT 2",
            )
            .map_err(|e| self.m.err(e))?;
        let mut rows = stmt.query([id]).map_err(|e| self.m.err(e))?;
        let mut found = FileAttrs::None;
        // At most two rows (LIMIT 2).
        while let Some(r) = rows.next().map_err(|e| self.m.err(e))? {
            found = match (&found, attrs_of(r, 1)) {
                (FileAttrs::None, Ok(a)) => FileAttrs::Some(a),
                _ => return Ok(FileAttrs::Invalid),
            };
        }
        Ok(found)
    }

    /// Calls `f` with every usable `entries` row in name order (then id),
    /// so the versions of one name come together; returns how many rows
    /// were invalid and left out.
    pub fn for_each_entry(&self, f: &mut dyn FnMut(Entry)) -> Result<u64> {
        if self.entries != Table::Usable {
            return Ok(0);
        }
        let mut stmt = self
            .m
            .conn()
            .prepare(
                "SELECT id, filename, kind, timestamp, deleted, target,
                        mode, uid, gid, owner, grp, mtime_sec, mtime_nsec
                 FROM entries ORDER BY filename, id",
            )
            .map_err(|e| self.m.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.m.err(e))?;
        let mut invalid = 0;
        // Bounded by the table's rows.
        while let Some(r) = rows.next().map_err(|e| self.m.err(e))? {
            match entry(r) {
                Some(e) => f(e),
                None => invalid += 1,
            }
        }
        Ok(invalid)
    }
}

fn entry(r: &rusqlite::Row<'_>) -> Option<Entry> {
    let id = match r.get_ref(0).ok()? {
        ValueRef::Integer(i) if i >= 0 => i,
        _ => return None,
    };
    let name = names::from_sql(r.get_ref(1).ok()?)?;
    if name.is_empty() {
        return None;
    }
    let target = r.get_ref(5).ok()?;
    let kind = match r.get_ref(2).ok()? {
        ValueRef::Text(b"dir") => EntryKind::Dir,
        ValueRef::Text(b"symlink") => EntryKind::Symlink(link_target(target)?),
        ValueRef::Text(b"hardlink") => {
            let t = names::from_sql(target)?;
            if t.is_empty() {
                return None;
            }
            EntryKind::Hardlink(t)
        }
        _ => return None,
    };
    let timestamp = real(r.get_ref(3).ok()?)?;
    let deleted = match r.get_ref(4).ok()? {
        ValueRef::Null => None,
        v => Some(real(v)?),
    };
    Some(Entry {
        id,
        name,
        kind,
        timestamp,
        deleted,
        attrs: attrs_of(r, 6).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "CREATE TABLE discs(id INTEGER PRIMARY KEY, started, completed, available);
         CREATE TABLE files(id INTEGER PRIMARY KEY, filename, timestamp, md5, size,
                            mtime, disc_id, desc, copied);
         INSERT INTO discs VALUES (1, 1.0, 2.0, 1);";

    const TABLES: &str =
        "CREATE TABLE attrs(file_id INTEGER PRIMARY KEY, mode INTEGER, uid INTEGER,
             gid INTEGER, owner TEXT, grp TEXT, mtime_sec INTEGER, mtime_nsec INTEGER);
         CREATE TABLE entries(id INTEGER PRIMARY KEY, filename TEXT NOT NULL, kind TEXT NOT NULL,
             timestamp REAL NOT NULL, deleted REAL, target BLOB, mode INTEGER, uid INTEGER,
             gid INTEGER, owner TEXT, grp TEXT, mtime_sec INTEGER, mtime_nsec INTEGER);";

    fn manifest(sql: &str) -> (tempfile::TempDir, Manifest) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(&format!("{BASE}{sql}"))
            .unwrap();
        let m = Manifest::open(&path).unwrap();
        (dir, m)
    }

    fn entries(m: &Manifest) -> (Vec<Entry>, u64) {
        let mut out = Vec::new();
        let invalid = m
            .tree()
            .unwrap()
            .for_each_entry(&mut |e| out.push(e))
            .unwrap();
        (out, invalid)
    }

    #[test]
    fn without_the_tables_there_is_nothing() {
        let (_d, m) = manifest("");
        let t = m.tree().unwrap();
        assert_eq!(
            (t.attrs.clone(), t.entries.clone()),
            (Table::Absent, Table::Absent)
        );
        assert_eq!(t.file_attrs(1).unwrap(), FileAttrs::None);
        assert_eq!(entries(&m), (Vec::new(), 0));
    }

    #[test]
    fn views_and_short_tables_are_not_read() {
        let (_d, m) = manifest(
            "CREATE TABLE x(a); CREATE VIEW entries AS SELECT * FROM x;
             CREATE TABLE attrs(file_id, mode);",
        );
        let t = m.tree().unwrap();
        assert!(matches!(t.entries, Table::Unusable(ref w) if w.contains("view")));
        assert!(matches!(t.attrs, Table::Unusable(ref w) if w.contains("no column")));
        assert_eq!(t.unusable().len(), 2);
        assert_eq!(t.file_attrs(1).unwrap(), FileAttrs::None);
        assert_eq!(entries(&m), (Vec::new(), 0));
    }

    #[test]
    fn sound_rows_are_read_and_bad_ones_counted() {
        let (_d, m) = manifest(&format!(
            "{TABLES}
             INSERT INTO attrs VALUES (1, 420, 1000, 100, 'ann', 'users', -5, 999999999);
             INSERT INTO attrs VALUES (2, 4096, NULL, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO attrs VALUES (3, NULL, NULL, NULL, NULL, NULL, 5, 1000000000);
             INSERT INTO attrs VALUES (4, NULL, -1, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO attrs VALUES (5, NULL, NULL, NULL, x'00', NULL, NULL, NULL);
             INSERT INTO attrs VALUES (6, NULL, NULL, NULL, NULL, NULL, 5, -1);
             INSERT INTO attrs VALUES (7, 'rw', NULL, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO attrs VALUES (8, NULL, NULL, NULL, NULL, NULL, 5, NULL);
             INSERT INTO attrs VALUES (9, NULL, NULL, NULL, NULL, NULL, 1125899906842624, 0);
             INSERT INTO attrs VALUES (10, NULL, 4294967296, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO attrs VALUES (11, 1.5, NULL, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO attrs VALUES (12, NULL, NULL, NULL, 'ann', x'ff', NULL, NULL);
             INSERT INTO entries VALUES (1, '/d', 'dir', 10.0, NULL, NULL, 493, NULL, NULL, NULL, NULL, 7, 8);
             INSERT INTO entries VALUES (2, '/l', 'symlink', 10.0, 20.5, x'2f746d70', NULL, NULL, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO entries VALUES (3, '/h', 'hardlink', 10.0, NULL, '/d/f', NULL, NULL, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO entries VALUES (4, '/x', 'fifo', 10.0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO entries VALUES (5, '/x', 'symlink', 10.0, NULL, x'610062', NULL, NULL, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO entries VALUES (6, '/x', 'symlink', 10.0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO entries VALUES (7, '/x', 'dir', 'soon', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO entries VALUES (8, '/x', 'dir', 10.0, 'never', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO entries VALUES (9, '/x', 'dir', 10.0, NULL, NULL, 8191, NULL, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO entries VALUES (10, '/x', 'symlink', 10.0, NULL, zeroblob(5000), NULL, NULL, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO entries VALUES (11, '', 'dir', 10.0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
        ));
        let t = m.tree().unwrap();
        assert_eq!(
            t.file_attrs(1).unwrap(),
            FileAttrs::Some(Attrs {
                mode: Some(0o644),
                uid: Some(1000),
                gid: Some(100),
                owner: Some("ann".into()),
                grp: Some("users".into()),
                mtime: Some((-5, 999_999_999)),
            })
        );
        for bad in 2..=12 {
            assert_eq!(t.file_attrs(bad).unwrap(), FileAttrs::Invalid, "{bad}");
        }
        assert_eq!(t.file_attrs(13).unwrap(), FileAttrs::None);
        let (rows, invalid) = entries(&m);
        assert_eq!(invalid, 8);
        let kinds: Vec<(i64, EntryKind)> = rows.iter().map(|e| (e.id, e.kind.clone())).collect();
        assert_eq!(
            kinds,
            vec![
                (1, EntryKind::Dir),
                (3, EntryKind::Hardlink(b"/d/f".to_vec())),
                (2, EntryKind::Symlink(b"/tmp".to_vec())),
            ]
        );
        assert_eq!(rows[0].attrs.mode, Some(0o755));
        assert_eq!(rows[0].attrs.mtime, Some((7, 8)));
        assert_eq!(rows[2].deleted, Some(20.5));
    }

    #[test]
    fn two_attrs_rows_for_one_version_are_invalid() {
        let (_d, m) = manifest(
            "CREATE TABLE attrs(file_id, mode, uid, gid, owner, grp, mtime_sec, mtime_nsec);
             INSERT INTO attrs VALUES (1, 420, NULL, NULL, NULL, NULL, NULL, NULL);
             INSERT INTO attrs VALUES (1, 420, NULL, NULL, NULL, NULL, NULL, NULL);",
        );
        assert_eq!(m.tree().unwrap().file_attrs(1).unwrap(), FileAttrs::Invalid);
    }
}
