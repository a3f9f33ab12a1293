//! What a tree holds beyond regular files' content, in two added tables
//! (see docs/tree.md): `attrs`, the mode, owner and exact mtime of each
//! version of a regular file, and `entries`, the versions of folders,
//! symbolic links and hard links. Made with a new set, or for a set made
//! before them by its first scan, with schema version 4 in the same
//! transaction (an older dbackup, which would leave them stale, refuses
//! the set).

use std::collections::HashMap;

use rusqlite::types::ValueRef;
use rusqlite::{params, Transaction};

use super::{live::split_key, name_key, Catalog};
use crate::error::{Error, Result};
use crate::names;

/// The schema version once the tree tables exist.
pub(super) const TREE_SCHEMA_VERSION: i64 = 4;

pub(super) const TREE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS attrs(file_id INTEGER PRIMARY KEY, mode INTEGER, uid INTEGER,
                   gid INTEGER, owner TEXT, grp TEXT, mtime_sec INTEGER, mtime_nsec INTEGER);
CREATE TABLE IF NOT EXISTS entries(id INTEGER PRIMARY KEY, filename TEXT NOT NULL,
                     kind TEXT NOT NULL, timestamp REAL NOT NULL, deleted REAL, target BLOB,
                     mode INTEGER, uid INTEGER, gid INTEGER, owner TEXT, grp TEXT,
                     mtime_sec INTEGER, mtime_nsec INTEGER);
CREATE INDEX IF NOT EXISTS entries_filename ON entries(filename);
";

/// Mode, owner and exact mtime of a file, folder or link as the scan saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attrs {
    /// Permission bits, setuid, setgid and sticky (`st_mode & 07777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The names of `uid` and `gid` on the staging machine, if any.
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mtime_sec: i64,
    /// 0..=999,999,999.
    pub mtime_nsec: u32,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    Symlink,
    Hardlink,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "symlink",
            EntryKind::Hardlink => "hardlink",
        }
    }

    pub fn parse(s: &[u8]) -> Option<EntryKind> {
        match s {
            b"dir" => Some(EntryKind::Dir),
            b"symlink" => Some(EntryKind::Symlink),
            b"hardlink" => Some(EntryKind::Hardlink),
            _ => None,
        }
    }
}

/// A folder, symbolic link or hard link as the scan saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Catalogue name (`/a/b`).
    pub name: Vec<u8>,
    pub kind: EntryKind,
    /// A link's target: the bytes of a symlink's, a hard link's first
    /// name's catalogue name; empty for a folder.
    pub target: Vec<u8>,
    pub attrs: Attrs,
}

/// The latest recorded version of a live entry, as the scan compares it.
#[derive(Debug, Clone)]
pub struct LiveTreeEntry {
    pub id: i64,
    kind: EntryKind,
    target: u64,
    attrs: [i64; 5],
    /// Set by the scan when it sees the name as this kind.
    pub seen: bool,
}

fn attrs_key(a: &Attrs) -> [i64; 5] {
    [
        a.mode as i64,
        a.uid as i64,
        a.gid as i64,
        a.mtime_sec,
        a.mtime_nsec as i64,
    ]
}

fn target_key(t: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(t)
}

/// The live entries by name key. Folders and links are few beside files
/// (a folder holds tens of files), so a hash map is small.
#[derive(Debug, Default)]
pub struct LiveTree {
    map: HashMap<[u64; 2], LiveTreeEntry>,
}

impl LiveTree {
    /// Marks `entry` seen; whether it differs from its latest version (or
    /// is new).
    pub fn observe(&mut self, entry: &Entry) -> bool {
        let key = split_key(name_key(&entry.name));
        match self.map.get_mut(&key) {
            Some(e) => {
                let same = e.kind == entry.kind
                    && e.target == target_key(&entry.target)
                    && e.attrs == attrs_key(&entry.attrs);
                // A name that turned into another kind is a change; the
                // old version is superseded by the new row.
                e.seen = true;
                !same
            }
            None => true,
        }
    }

    /// The ids of live entries the scan did not see, with their names'
    /// keys left out: the caller has the names from the catalogue.
    pub fn unseen(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .map
            .values()
            .filter(|e| !e.seen)
            .map(|e| e.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// How many entries are live.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

fn put_attrs(tx: &Transaction<'_>, file_id: i64, a: &Attrs) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO attrs(file_id, mode, uid, gid, owner, grp, mtime_sec, mtime_nsec)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        file_id,
        a.mode,
        a.uid,
        a.gid,
        a.owner,
        a.group,
        a.mtime_sec,
        a.mtime_nsec
    ])?;
    Ok(())
}

/// Records the attrs of newly reserved versions, when the tables exist
/// (a set whose scan has not made them yet records none).
pub(super) fn record_attrs(
    tx: &Transaction<'_>,
    rows: &[(i64, Option<&Attrs>)],
) -> rusqlite::Result<()> {
    if !tables_exist(tx)? {
        return Ok(());
    }
    for (id, a) in rows {
        match a {
            Some(a) => put_attrs(tx, *id, a)?,
            // An id can be given again after its reservation was dropped:
            // it must not inherit another file's attrs.
            None => {
                tx.prepare_cached("DELETE FROM attrs WHERE file_id=?1")?
                    .execute([id])?;
            }
        }
    }
    Ok(())
}

/// Drops the attrs of versions whose reservation was dropped (those of
/// rows still there stay).
pub(super) fn drop_attrs(tx: &Transaction<'_>, ids: &[i64]) -> rusqlite::Result<()> {
    if !tables_exist(tx)? {
        return Ok(());
    }
    let mut del = tx.prepare_cached(
        "DELETE FROM attrs WHERE file_id=?1 AND NOT EXISTS (SELECT 1 FROM files WHERE id=?1)",
    )?;
    for id in ids {
        del.execute([id])?;
    }
    Ok(())
}

fn tables_exist(conn: &rusqlite::Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN ('attrs', 'entries')",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n == 2)
}

fn get_i64(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<i64> {
    Ok(row.get_ref(i)?.as_i64().unwrap_or(-1))
}

impl Catalog {
    /// Whether the set records its tree (the tables exist).
    pub fn has_tree_tables(&self) -> Result<bool> {
        tables_exist(&self.conn).map_err(|e| self.err(e))
    }

    /// Makes the tree tables and raises the schema version, in one
    /// transaction; nothing when they exist.
    pub fn ensure_tree_tables(&mut self) -> Result<()> {
        if self.has_tree_tables()? {
            return Ok(());
        }
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(map)?;
        tx.execute_batch(TREE_TABLES).map_err(map)?;
        let v: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(map)?;
        tx.pragma_update(None, "user_version", v.max(TREE_SCHEMA_VERSION))
            .map_err(map)?;
        tx.commit().map_err(map)
    }

    /// The latest version of every live entry (not deleted).
    pub fn live_tree(&self) -> Result<LiveTree> {
        let mut tree = LiveTree::default();
        if !self.has_tree_tables()? {
            return Ok(tree);
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, filename, kind, target, mode, uid, gid, mtime_sec, mtime_nsec, deleted
                 FROM entries ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        // Rows in id order: a name's later row replaces its earlier one.
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let read = || -> rusqlite::Result<Option<([u64; 2], Option<LiveTreeEntry>)>> {
                let key = match row.get_ref(1)? {
                    ValueRef::Text(b) | ValueRef::Blob(b) => split_key(name_key(b)),
                    _ => return Ok(None),
                };
                if !matches!(row.get_ref(9)?, ValueRef::Null) {
                    return Ok(Some((key, None)));
                }
                let kind = match row.get_ref(2)? {
                    ValueRef::Text(b) => EntryKind::parse(b),
                    _ => None,
                };
                let target = match row.get_ref(3)? {
                    ValueRef::Text(b) | ValueRef::Blob(b) => target_key(b),
                    _ => target_key(b""),
                };
                // A row of an unknown kind never equals what the scan sees,
                // so it is recorded again.
                let Some(kind) = kind else {
                    return Ok(Some((key, None)));
                };
                let mut attrs = [0i64; 5];
                for (k, a) in attrs.iter_mut().enumerate() {
                    *a = get_i64(row, 4 + k)?;
                }
                Ok(Some((
                    key,
                    Some(LiveTreeEntry {
                        id: row.get(0)?,
                        kind,
                        target,
                        attrs,
                        seen: false,
                    }),
                )))
            };
            match read().map_err(|e| self.err(e))? {
                Some((key, Some(e))) => {
                    tree.map.insert(key, e);
                }
                Some((key, None)) => {
                    tree.map.remove(&key);
                }
                None => {}
            }
        }
        Ok(tree)
    }

    /// Records new entry versions (recorded at `when`) and the deletion,
    /// at `deleted`, of the live entries `gone`, in one transaction.
    pub fn record_entries(
        &mut self,
        new: &[Entry],
        when: f64,
        gone: &[i64],
        deleted: f64,
    ) -> Result<()> {
        if new.is_empty() && gone.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(map)?;
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO entries(filename, kind, timestamp, deleted, target, mode, uid,
                                         gid, owner, grp, mtime_sec, mtime_nsec)
                     VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(map)?;
            for e in new {
                use rusqlite::types::Value;
                let target: Option<Value> = match e.kind {
                    EntryKind::Dir => None,
                    EntryKind::Symlink => Some(Value::Blob(e.target.clone())),
                    // A name, stored as `files.filename` is.
                    EntryKind::Hardlink => Some(match std::str::from_utf8(&e.target) {
                        Ok(t) => Value::Text(t.to_string()),
                        Err(_) => Value::Blob(e.target.clone()),
                    }),
                };
                let a = &e.attrs;
                ins.execute(params![
                    names::to_sql(&e.name),
                    e.kind.as_str(),
                    when,
                    target,
                    a.mode,
                    a.uid,
                    a.gid,
                    a.owner,
                    a.group,
                    a.mtime_sec,
                    a.mtime_nsec
                ])
                .map_err(map)?;
            }
            let mut del = tx
                .prepare("UPDATE entries SET deleted=?2 WHERE id=?1 AND deleted IS NULL")
                .map_err(map)?;
            for id in gone {
                del.execute(params![id, deleted]).map_err(map)?;
            }
        }
        tx.commit().map_err(map)
    }

    /// The name of entry `id`.
    pub fn entry_name(&self, id: i64) -> Result<Option<Vec<u8>>> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row("SELECT filename FROM entries WHERE id=?1", [id], |r| {
                Ok(names::from_sql(r.get_ref(0)?))
            })
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// How many entry versions were recorded, or recorded deleted, since
    /// disc `id` was opened: what it carries beyond its files.
    pub fn entries_changed_during(&self, id: i64) -> Result<u64> {
        if !self.has_tree_tables()? {
            return Ok(0);
        }
        self.conn
            .query_row(
                "SELECT count(*) FROM entries, (SELECT started FROM discs WHERE id=?1) d
                 WHERE timestamp >= d.started OR deleted >= d.started",
                [id],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
    }
}
