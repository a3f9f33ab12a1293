//! Split versions: a file too large for an empty disc, stored as parts that
//! fill consecutive discs. Two added tables hold them; the original's
//! `files` and `discs` keep their meanings:
//!
//! - `splits(file_id, state, why)`: one row per split version, `state` is
//!   `staging` (parts still to come), `complete` or `abandoned` (the file
//!   changed or vanished before its last part: no backup, never restored).
//! - `parts(file_id, part, disc_id, offset, size, md5, copied)`: part `part`
//!   (1, 2, ...) holds bytes `offset .. offset+size` of the file and is
//!   stored on disc `disc_id` as `files/<file_id div 256>/<file_id>.<part>`;
//!   `copied=0` is a reservation whose copy has not finished.
//!
//! The version's `files` row has `disc_id` NULL (it is on no one disc) and
//! `copied=0` until its last part is recorded; then, in the same
//! transaction, `md5` becomes the whole file's MD5, `copied=1` and the state
//! `complete`. So a reader of the original's format, or of the by-hand
//! recipe, never takes a split version for a whole file on one disc, and a
//! disc frozen while the version was still being staged shows it as no
//! backup.

use rusqlite::{params, OptionalExtension};

use super::{Catalog, NewFile};
use crate::error::{Error, Result};
use crate::names;

/// What the `parts` and `splits` tables are, for new and upgraded catalogues.
pub(super) const SPLIT_TABLES: &str = "
CREATE TABLE IF NOT EXISTS splits(file_id INTEGER PRIMARY KEY, state TEXT NOT NULL, why TEXT);
CREATE TABLE IF NOT EXISTS parts(file_id INTEGER NOT NULL, part INTEGER NOT NULL,
                   disc_id INTEGER NOT NULL, offset INTEGER NOT NULL, size INTEGER NOT NULL,
                   md5 TEXT, copied BOOLEAN NOT NULL, PRIMARY KEY(file_id, part));
CREATE INDEX IF NOT EXISTS parts_disc ON parts(disc_id);
";

/// A recorded part of a split version.
#[derive(Debug, Clone, PartialEq)]
pub struct PartRow {
    pub part: u32,
    pub disc: i64,
    pub offset: u64,
    pub size: u64,
    pub md5: String,
}

/// What a staged part must hold (see [`Catalog::part_record`]).
#[derive(Debug, Clone)]
pub struct PartRecord {
    pub name: Vec<u8>,
    pub whole_size: u64,
    pub mtime: super::Mtime,
    pub md5: String,
    pub size: u64,
    pub offset: u64,
}

/// A split version whose parts are still being staged.
#[derive(Debug, Clone)]
pub struct SplitInProgress {
    pub id: i64,
    pub name: Vec<u8>,
    pub size: u64,
    /// The mtime recorded when the version began (REAL seconds).
    pub mtime: f64,
    /// Its recorded parts, in order (copied ones only).
    pub parts: Vec<PartRow>,
}

impl SplitInProgress {
    /// Bytes of the file already in recorded parts.
    pub fn staged(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }
}

impl Catalog {
    /// Whether the split tables exist (made with the first split version).
    pub fn has_split_tables(&self) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN ('splits', 'parts')",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n == 2)
            .map_err(|e| self.err(e))
    }

    /// Begins a split version: its `files` row (on no disc, not copied) and
    /// its `splits` row, in one transaction. Returns its id.
    pub fn begin_split(&mut self, f: &NewFile<'_>) -> Result<i64> {
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(map)?;
        // The first split version makes the tables, and the schema version
        // that an older dbackup refuses, in the same transaction.
        tx.execute_batch(SPLIT_TABLES).map_err(map)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(map)?;
        tx.pragma_update(None, "user_version", version.max(2))
            .map_err(map)?;
        tx.execute(
            "INSERT INTO files(filename, timestamp, md5, size, mtime, disc_id, desc, copied)
             VALUES (?1, ?2, NULL, ?3, ?4, NULL, ?5, 0)",
            params![
                names::to_sql(f.name),
                f.timestamp,
                f.size as i64,
                f.mtime,
                f.desc
            ],
        )
        .map_err(map)?;
        let id = tx.last_insert_rowid();
        super::tree::record_attrs(&tx, &[(id, f.attrs)]).map_err(map)?;
        tx.execute(
            "INSERT INTO splits(file_id, state, why) VALUES (?1, 'staging', NULL)",
            [id],
        )
        .map_err(map)?;
        tx.commit().map_err(map)?;
        Ok(id)
    }

    /// Reserves part `part` of split version `id` on disc `disc`.
    pub fn reserve_part(
        &self,
        id: i64,
        part: u32,
        disc: i64,
        offset: u64,
        size: u64,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO parts(file_id, part, disc_id, offset, size, md5, copied)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, 0)",
                params![id, part, disc, offset as i64, size as i64],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records a finished part (its MD5, `copied=1`); with `whole`, the last
    /// part: the version becomes a backup (`md5`, `copied=1`, `complete`) in
    /// the same transaction.
    pub fn commit_part(
        &mut self,
        id: i64,
        part: u32,
        md5: &str,
        whole: Option<&str>,
    ) -> Result<()> {
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        if let Some(e) = crate::fault::injected("split::commit") {
            return Err(Error::io(&path, e));
        }
        let tx = self.conn.transaction().map_err(map)?;
        let n = tx
            .execute(
                "UPDATE parts SET md5=?3, copied=1 WHERE file_id=?1 AND part=?2 AND copied=0",
                params![id, part, md5],
            )
            .map_err(map)?;
        if n != 1 {
            return Err(Error::Corrupt {
                path: path.clone(),
                why: format!("part {part} of file {id} was not reserved"),
            });
        }
        if let Some(whole) = whole {
            tx.execute(
                "UPDATE files SET md5=?2, copied=1 WHERE id=?1 AND copied=0",
                params![id, whole],
            )
            .map_err(map)?;
            tx.execute("UPDATE splits SET state='complete' WHERE file_id=?1", [id])
                .map_err(map)?;
        }
        tx.commit().map_err(map)
    }

    /// Drops the reservation of a part whose copy failed (its files are
    /// already removed).
    pub fn abandon_part(&self, id: i64, part: u32) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM parts WHERE file_id=?1 AND part=?2 AND copied=0",
                params![id, part],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Marks a split version still being staged as no backup: its recorded
    /// parts stay on their discs (and are listed there), but no reader takes
    /// them for a backup. Drops its unfinished part reservations.
    pub fn abandon_split(&mut self, id: i64, why: &str) -> Result<()> {
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(map)?;
        tx.execute(
            "UPDATE splits SET state='abandoned', why=?2 WHERE file_id=?1 AND state='staging'",
            params![id, why],
        )
        .map_err(map)?;
        tx.execute("DELETE FROM parts WHERE file_id=?1 AND copied=0", [id])
            .map_err(map)?;
        tx.commit().map_err(map)
    }

    /// Split versions still being staged, with their recorded parts.
    pub fn splits_in_progress(&self) -> Result<Vec<SplitInProgress>> {
        if !self.has_split_tables()? {
            return Ok(Vec::new());
        }
        let heads = self.query_all(
            "SELECT f.id, f.filename, f.size, f.mtime FROM files f
             JOIN splits s ON s.file_id = f.id WHERE s.state='staging' ORDER BY f.id",
            [],
            |r| {
                Ok(SplitInProgress {
                    id: r.get(0)?,
                    name: names::from_sql(r.get_ref(1)?).unwrap_or_default(),
                    size: r.get::<_, Option<i64>>(2)?.unwrap_or(0).max(0) as u64,
                    mtime: r.get::<_, Option<f64>>(3)?.unwrap_or(f64::NAN),
                    parts: Vec::new(),
                })
            },
        )?;
        let mut out = Vec::with_capacity(heads.len());
        for mut h in heads {
            h.parts = self.parts_of(h.id)?;
            out.push(h);
        }
        Ok(out)
    }

    /// The recorded (copied) parts of version `id`, in order.
    pub fn parts_of(&self, id: i64) -> Result<Vec<PartRow>> {
        self.query_all(
            "SELECT part, disc_id, offset, size, md5 FROM parts
             WHERE file_id=?1 AND copied=1 ORDER BY part",
            [id],
            |r| {
                Ok(PartRow {
                    part: r.get(0)?,
                    disc: r.get(1)?,
                    offset: r.get::<_, i64>(2)?.max(0) as u64,
                    size: r.get::<_, i64>(3)?.max(0) as u64,
                    md5: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                })
            },
        )
    }

    /// What a staged part must be, for a repair: the version's name, whole
    /// size and mtime, and the part's MD5, size and offset.
    pub fn part_record(&self, id: i64, part: u32) -> Result<Option<PartRecord>> {
        if !self.has_split_tables()? {
            return Ok(None);
        }
        let whole_through = self.whole_second_mtimes_through()?;
        self.conn
            .query_row(
                "SELECT f.filename, f.size, f.mtime, p.md5, p.size, p.offset FROM parts p
                 JOIN files f ON f.id = p.file_id
                 WHERE p.file_id=?1 AND p.part=?2 AND p.copied=1",
                params![id, part],
                |r| {
                    let mtime = match r.get_ref(2)? {
                        rusqlite::types::ValueRef::Integer(i) if id <= whole_through => {
                            super::Mtime::Whole(i)
                        }
                        rusqlite::types::ValueRef::Integer(i) => super::Mtime::Real(i as f64),
                        rusqlite::types::ValueRef::Real(f) => super::Mtime::Real(f),
                        _ => super::Mtime::Real(f64::NAN),
                    };
                    Ok(PartRecord {
                        name: names::from_sql(r.get_ref(0)?).unwrap_or_default(),
                        whole_size: r.get::<_, Option<i64>>(1)?.unwrap_or(0).max(0) as u64,
                        mtime,
                        md5: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                        size: r.get::<_, i64>(4)?.max(0) as u64,
                        offset: r.get::<_, i64>(5)?.max(0) as u64,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The state of split version `id` (`None`: not a split version).
    pub fn split_state(&self, id: i64) -> Result<Option<String>> {
        if !self.has_split_tables()? {
            return Ok(None);
        }
        self.conn
            .query_row("SELECT state FROM splits WHERE file_id=?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Part reservations whose copy never finished: (file_id, part, disc).
    pub fn part_reservations(&self) -> Result<Vec<(i64, u32, i64)>> {
        if !self.has_split_tables()? {
            return Ok(Vec::new());
        }
        self.query_all(
            "SELECT file_id, part, disc_id FROM parts WHERE copied=0 OR copied IS NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// Drops every unfinished part reservation, and every split version
    /// still being staged that has no recorded part left (it begins again
    /// from nothing), in one transaction. Returns how many rows went.
    pub fn drop_part_reservations(&mut self) -> Result<usize> {
        if !self.has_split_tables()? {
            return Ok(0);
        }
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(map)?;
        let mut n = tx
            .execute("DELETE FROM parts WHERE copied=0 OR copied IS NULL", [])
            .map_err(map)?;
        let empty: Vec<i64> = {
            let mut stmt = tx
                .prepare(
                    "SELECT file_id FROM splits s WHERE state='staging'
                     AND NOT EXISTS (SELECT 1 FROM parts p WHERE p.file_id = s.file_id)",
                )
                .map_err(map)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(map)?;
            rows.collect::<rusqlite::Result<_>>().map_err(map)?
        };
        for id in &empty {
            tx.execute("DELETE FROM files WHERE id=?1 AND copied=0", [id])
                .map_err(map)?;
            tx.execute("DELETE FROM splits WHERE file_id=?1", [id])
                .map_err(map)?;
            n += 1;
        }
        super::tree::drop_attrs(&tx, &empty).map_err(map)?;
        tx.commit().map_err(map)?;
        Ok(n)
    }
}
