//! File versions: reserving ids, recording finished copies, dropping
//! reservations a crash left, and recording deletions.

use rusqlite::{params, OptionalExtension};

use super::Catalog;
use crate::error::{Error, Result};
use crate::names;

/// A file about to be reserved.
#[derive(Debug, Clone)]
pub struct NewFile<'a> {
    pub name: &'a [u8],
    pub size: u64,
    pub mtime: f64,
    pub disc_id: i64,
    pub desc: &'a str,
    pub timestamp: f64,
    /// Mode, owner and exact mtime, recorded in `attrs` when the set has
    /// the tree tables.
    pub attrs: Option<&'a super::tree::Attrs>,
}

impl Catalog {
    /// The name of file `id`.
    pub fn name_of(&self, id: i64) -> Result<Option<Vec<u8>>> {
        self.conn
            .query_row("SELECT filename FROM files WHERE id=?1", [id], |r| {
                Ok(names::from_sql(r.get_ref(0)?))
            })
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// Reservations whose copy never finished: (id, disc_id). A split
    /// version's row (not copied until its last part) is not one.
    pub fn reservations(&self) -> Result<Vec<(i64, i64)>> {
        let sql = if self.has_split_tables()? {
            "SELECT id, disc_id FROM files WHERE (copied=0 OR copied IS NULL)
             AND id NOT IN (SELECT file_id FROM splits)"
        } else {
            "SELECT id, disc_id FROM files WHERE copied=0 OR copied IS NULL"
        };
        self.query_all(sql, [], |r| {
            Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0)))
        })
    }

    /// Deletes reservation rows (never a `copied=1` row), in one transaction.
    pub fn drop_reservations(&mut self, ids: &[i64]) -> Result<()> {
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let sql = if self.has_split_tables()? {
            "DELETE FROM files WHERE id=?1 AND (copied=0 OR copied IS NULL)
             AND id NOT IN (SELECT file_id FROM splits)"
        } else {
            "DELETE FROM files WHERE id=?1 AND (copied=0 OR copied IS NULL)"
        };
        let tx = self.conn.transaction().map_err(map)?;
        {
            let mut del = tx.prepare(sql).map_err(map)?;
            for id in ids {
                del.execute([id]).map_err(map)?;
            }
        }
        super::tree::drop_attrs(&tx, ids).map_err(map)?;
        tx.commit().map_err(map)
    }

    /// Reserves ids for files about to be copied (`copied=0`), in one
    /// transaction; returns the ids in the order given.
    pub fn reserve(&mut self, files: &[NewFile<'_>]) -> Result<Vec<i64>> {
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(map)?;
        let mut ids = Vec::with_capacity(files.len());
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO files(filename, timestamp, md5, size, mtime, disc_id, desc, copied)
                     VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6, 0)",
                )
                .map_err(map)?;
            for f in files {
                ins.execute(params![
                    names::to_sql(f.name),
                    f.timestamp,
                    f.size as i64,
                    f.mtime,
                    f.disc_id,
                    f.desc
                ])
                .map_err(map)?;
                ids.push(tx.last_insert_rowid());
            }
        }
        let attrs: Vec<_> = ids
            .iter()
            .zip(files)
            .map(|(&id, f)| (id, f.attrs))
            .collect();
        super::tree::record_attrs(&tx, &attrs).map_err(map)?;
        tx.commit().map_err(map)?;
        Ok(ids)
    }

    /// Marks finished copies as backed up (md5 recorded, `copied=1`) and drops
    /// the reservations of failed ones, in one transaction.
    pub fn finish_copies(&mut self, done: &[(i64, String)], failed: &[i64]) -> Result<()> {
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        if let Some(e) = crate::fault::injected("stage::commit") {
            return Err(Error::io(&path, e));
        }
        let tx = self.conn.transaction().map_err(map)?;
        {
            let mut upd = tx
                .prepare("UPDATE files SET md5=?2, copied=1 WHERE id=?1 AND copied=0")
                .map_err(map)?;
            for (id, md5) in done {
                upd.execute(params![id, md5]).map_err(map)?;
            }
            let mut del = tx
                .prepare("DELETE FROM files WHERE id=?1 AND copied=0")
                .map_err(map)?;
            for id in failed {
                del.execute([id]).map_err(map)?;
            }
        }
        super::tree::drop_attrs(&tx, failed).map_err(map)?;
        tx.commit().map_err(map)
    }

    /// Records that the files whose latest versions are `ids` were first
    /// seen missing at `when`.
    pub fn record_deletions(&mut self, ids: &[i64], when: f64) -> Result<()> {
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(map)?;
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO deletions(filename, deleted, file_id)
                     SELECT filename, ?2, id FROM files WHERE id=?1",
                )
                .map_err(map)?;
            for id in ids {
                ins.execute(params![id, when]).map_err(map)?;
            }
        }
        tx.commit().map_err(map)
    }
}
