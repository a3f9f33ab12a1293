//! Versions recorded as damaged (added table `damaged`): a staged copy
//! that rotted before any image held it, with no good copy left to take it
//! again from (neither a verified image nor the origin). Such a version is
//! no backup: every reader leaves it out, and the disc's frozen catalogue
//! carries the record so that the recovery tools, which read only discs,
//! know it too. Also what a repair needs to know of a staged copy.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};

use super::{now, Catalog, Mtime};
use crate::error::{Error, Result};
use crate::names;

impl Catalog {
    /// What a staged copy must be: (name, md5, size, mtime) of file `id`.
    pub fn file_record(&self, id: i64) -> Result<Option<FileRecord>> {
        let whole_through = self.whole_second_mtimes_through()?;
        self.conn
            .query_row(
                "SELECT filename, md5, size, mtime FROM files WHERE id=?1 AND copied=1",
                [id],
                |r| {
                    let mtime = Mtime::stored(r.get_ref(3)?, id, whole_through);
                    Ok((
                        names::from_sql(r.get_ref(0)?).unwrap_or_default(),
                        r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        r.get::<_, Option<i64>>(2)?.unwrap_or(0).max(0) as u64,
                        mtime,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Versions recorded as damaged: their staged copy rotted before any
    /// image held it and no good copy was left to take it again from. They
    /// are no backup. The table is made by the first such record.
    pub fn damaged(&self) -> Result<Vec<Damaged>> {
        if !has_damaged_table(&self.conn).map_err(|e| self.err(e))? {
            return Ok(Vec::new());
        }
        self.query_all(
            "SELECT d.file_id, d.disc_id, d.found, d.reason, f.filename FROM damaged d
             LEFT JOIN files f ON f.id = d.file_id ORDER BY d.file_id",
            [],
            |r| {
                Ok(Damaged {
                    file_id: r.get(0)?,
                    disc: r.get(1)?,
                    found: r.get(2)?,
                    reason: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    name: match r.get_ref(4)? {
                        ValueRef::Null => Vec::new(),
                        v => names::from_sql(v).unwrap_or_default(),
                    },
                })
            },
        )
    }

    /// Records file `file_id` of disc `disc` as damaged (once: a second
    /// record keeps the first).
    pub fn record_damaged(&self, file_id: i64, disc: i64, reason: &str) -> Result<()> {
        insert_damaged(&self.conn, file_id, disc, reason).map_err(|e| self.err(e))
    }
}

/// A backed-up file's (name, md5, size, mtime).
pub type FileRecord = (Vec<u8>, String, u64, Mtime);

/// A version recorded as damaged (table `damaged`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Damaged {
    pub file_id: i64,
    pub disc: i64,
    pub found: f64,
    pub reason: String,
    /// The file's catalogue name (empty if its row is gone).
    #[serde(skip)]
    pub name: Vec<u8>,
}

/// The table of damaged versions, made when the first is recorded.
const DAMAGED_TABLE: &str = "CREATE TABLE IF NOT EXISTS damaged(file_id INTEGER PRIMARY KEY,
    disc_id INTEGER NOT NULL, found REAL NOT NULL, reason TEXT)";

fn has_damaged_table(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='damaged'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

fn insert_damaged(
    conn: &Connection,
    file_id: i64,
    disc: i64,
    reason: &str,
) -> rusqlite::Result<()> {
    conn.execute_batch(DAMAGED_TABLE)?;
    conn.execute(
        "INSERT OR IGNORE INTO damaged(file_id, disc_id, found, reason) VALUES (?1, ?2, ?3, ?4)",
        params![file_id, disc, now(), reason],
    )
    .map(|_| ())
}

/// Ids of the versions a catalogue or disc manifest records as damaged
/// (none when it has no such table, as every original's and older disc's).
pub fn damaged_ids(conn: &Connection) -> rusqlite::Result<std::collections::HashSet<i64>> {
    if !has_damaged_table(conn)? {
        return Ok(Default::default());
    }
    let mut stmt = conn.prepare("SELECT file_id FROM damaged")?;
    let ids = stmt.query_map([], |r| r.get::<_, i64>(0))?;
    ids.collect()
}

/// Adds damaged records to a closed disc's frozen catalogue crash-safely:
/// a copy beside it is changed, fsynced and renamed over it, so the
/// catalogue is at every moment either the old or the new one.
pub fn record_damaged_in_frozen(frozen: &Path, records: &[(i64, i64, String)]) -> Result<()> {
    let dir = frozen.parent().unwrap_or(Path::new("."));
    // A name no staged file takes (those are `manifest.db` and `files/`).
    let tmp = dir.join(".manifest.db.dbackup-tmp");
    let sql_err = |source| Error::Sqlite {
        path: tmp.clone(),
        source,
    };
    let _ = std::fs::remove_file(&tmp);
    std::fs::copy(frozen, &tmp).map_err(|e| Error::io(&tmp, e))?;
    {
        let mut conn = Connection::open(&tmp).map_err(sql_err)?;
        let tx = conn.transaction().map_err(sql_err)?;
        for (file_id, disc, reason) in records {
            insert_damaged(&tx, *file_id, *disc, reason).map_err(sql_err)?;
        }
        tx.commit().map_err(sql_err)?;
    }
    let _ = std::fs::remove_file(dir.join(".manifest.db.dbackup-tmp-journal"));
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, frozen).map_err(|e| Error::io(frozen, e))?;
    crate::fsutil::sync_dir(dir)
}
