//! Discs: their rows, usage and totals, the frozen catalogue a closing disc
//! carries, and the record of images built and read back.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::{now, Catalog};
use crate::error::{Error, Result};
use crate::names;

/// A row of `discs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Disc {
    pub id: i64,
    pub started: Option<f64>,
    pub completed: Option<f64>,
    pub available: bool,
}

/// Totals over the whole set.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Totals {
    pub files: u64,
    pub bytes: u64,
    pub discs_closed: u64,
}

/// A backed-up file of one disc, or a part of a split version.
#[derive(Debug, Clone)]
pub struct DiscFile {
    pub id: i64,
    pub name: Vec<u8>,
    pub md5: String,
    pub size: u64,
    /// For a part of a split version: its number and its offset in the file.
    pub part: Option<(u32, u64)>,
}

impl DiscFile {
    /// Where it lives, relative to the disc's root.
    pub fn rel_path(&self) -> std::path::PathBuf {
        match self.part {
            Some((part, _)) => crate::disc::part_path(self.id, part),
            None => crate::disc::file_path(self.id),
        }
    }
}

/// A disc image that was built and read back.
#[derive(Debug, Clone)]
pub struct Image {
    pub disc: i64,
    pub size: u64,
    pub verified: f64,
    pub ecc: Option<String>,
}

/// Files and bytes on one disc.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscUsage {
    pub files: u64,
    pub bytes: u64,
    /// Bytes rounded up to 2 KiB sectors, as an image stores them.
    pub sector_bytes: u64,
}

impl Catalog {
    /// Every disc, in id order.
    pub fn discs(&self) -> Result<Vec<Disc>> {
        self.query_all(
            "SELECT id, started, completed, available FROM discs ORDER BY id",
            [],
            |r| {
                Ok(Disc {
                    id: r.get(0)?,
                    started: r.get(1)?,
                    completed: r.get(2)?,
                    available: r.get::<_, Option<i64>>(3)?.unwrap_or(1) != 0,
                })
            },
        )
    }

    /// The open disc: `completed IS NULL`, latest started.
    pub fn open_disc(&self) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT id FROM discs WHERE completed IS NULL ORDER BY started DESC, id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The highest disc id.
    pub fn last_disc(&self) -> Result<Option<i64>> {
        self.conn
            .query_row("SELECT max(id) FROM discs", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Starts a new open disc after the highest one; returns its id.
    pub fn start_disc(&self) -> Result<i64> {
        let next = self.last_disc()?.unwrap_or(0) + 1;
        self.conn
            .execute(
                "INSERT INTO discs(id, started, completed, available) VALUES (?1, ?2, NULL, 1)",
                params![next, now()],
            )
            .map_err(|e| self.err(e))?;
        Ok(next)
    }

    /// Deletions recorded while disc `id` was open (since it was started):
    /// history that no closed disc's catalogue holds yet. Runs that write
    /// hold the workdir's lock, so the clock orders them.
    pub fn deletions_during(&self, id: i64) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM deletions
                 WHERE deleted >= (SELECT started FROM discs WHERE id=?1)",
                [id],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
    }

    /// Marks disc `id` closed now.
    ///
    /// With parity on, the disc joins its parity group in the same
    /// transaction.
    pub fn complete_disc(&self, id: i64) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "UPDATE discs SET completed=?2 WHERE id=?1 AND completed IS NULL",
            params![id, now()],
        )
        .and_then(|_| super::parity::join_group(&tx, id))
        .and_then(|_| tx.commit())
        .map_err(|e| self.err(e))
    }

    /// Marks discs lost (`available=0`) or found again, in one transaction.
    pub fn set_available(&mut self, ids: &[i64], available: bool) -> Result<()> {
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(map)?;
        for id in ids {
            tx.execute(
                "UPDATE discs SET available=?2 WHERE id=?1",
                params![id, available as i64],
            )
            .map_err(map)?;
        }
        tx.commit().map_err(map)
    }

    /// Files and bytes backed up on disc `id` (a part of a split version
    /// counts as a file).
    pub fn disc_usage(&self, id: i64) -> Result<DiscUsage> {
        let sql = if self.has_split_tables()? {
            "SELECT count(*), coalesce(sum(size),0), coalesce(sum((size+2047)/2048*2048),0)
             FROM (SELECT size FROM files WHERE disc_id=?1 AND copied=1
                   UNION ALL SELECT size FROM parts WHERE disc_id=?1 AND copied=1)"
        } else {
            "SELECT count(*), coalesce(sum(size),0), coalesce(sum((size+2047)/2048*2048),0)
             FROM files WHERE disc_id=?1 AND copied=1"
        };
        self.conn
            .query_row(sql, [id], |r| {
                Ok(DiscUsage {
                    files: r.get::<_, i64>(0)? as u64,
                    bytes: r.get::<_, i64>(1)?.max(0) as u64,
                    sector_bytes: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })
            .map_err(|e| self.err(e))
    }

    /// Totals over the whole set.
    pub fn totals(&self) -> Result<Totals> {
        let (files, bytes): (i64, i64) = self
            .conn
            .query_row(
                "SELECT count(*), coalesce(sum(size),0) FROM files WHERE copied=1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))?;
        let closed: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM discs WHERE completed IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        Ok(Totals {
            files: files.max(0) as u64,
            bytes: bytes.max(0) as u64,
            discs_closed: closed.max(0) as u64,
        })
    }

    /// The catalogue's logical size in bytes (pages in use), which is what
    /// its snapshot on a disc will take.
    pub fn db_size(&self) -> Result<u64> {
        let (pages, free, size): (i64, i64, i64) = self
            .conn
            .query_row(
                "SELECT (SELECT page_count FROM pragma_page_count),
                        (SELECT freelist_count FROM pragma_freelist_count),
                        (SELECT page_size FROM pragma_page_size)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(|e| self.err(e))?;
        Ok(((pages - free).max(0) * size) as u64)
    }

    /// Writes a consistent, compact copy of the catalogue to `dest` in
    /// rollback-journal mode, so it opens read-only from a disc with plain
    /// `sqlite3`. `dest` must not exist.
    pub fn snapshot_to(&self, dest: &Path) -> Result<()> {
        let dest_str = dest.to_str().ok_or_else(|| {
            Error::Invalid(format!("{}: path is not valid UTF-8", dest.display()))
        })?;
        self.conn
            .execute("VACUUM INTO ?1", [dest_str])
            .map_err(|e| self.err(e))?;
        let snap = Connection::open(dest).map_err(|source| Error::Sqlite {
            path: dest.into(),
            source,
        })?;
        let _: String = snap
            .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
            .map_err(|source| Error::Sqlite {
                path: dest.into(),
                source,
            })?;
        drop(snap);
        let f = std::fs::File::open(dest).map_err(|e| Error::io(dest, e))?;
        f.sync_all().map_err(|e| Error::io(dest, e))
    }

    /// Every backed-up file of disc `id`, in id order, then every recorded
    /// part of a split version on it (whatever the version's state: a part
    /// is on the disc either way).
    pub fn disc_files(&self, id: i64) -> Result<Vec<DiscFile>> {
        let mut out = self.query_all(
            "SELECT id, filename, md5, size FROM files WHERE disc_id=?1 AND copied=1 ORDER BY id",
            [id],
            |r| {
                Ok(DiscFile {
                    id: r.get(0)?,
                    name: names::from_sql(r.get_ref(1)?).unwrap_or_default(),
                    md5: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    size: r.get::<_, Option<i64>>(3)?.unwrap_or(0).max(0) as u64,
                    part: None,
                })
            },
        )?;
        if !self.has_split_tables()? {
            return Ok(out);
        }
        out.extend(self.query_all(
            "SELECT p.file_id, f.filename, p.md5, p.size, p.part, p.offset FROM parts p
             JOIN files f ON f.id = p.file_id
             WHERE p.disc_id=?1 AND p.copied=1 ORDER BY p.file_id, p.part",
            [id],
            |r| {
                Ok(DiscFile {
                    id: r.get(0)?,
                    name: names::from_sql(r.get_ref(1)?).unwrap_or_default(),
                    md5: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    size: r.get::<_, Option<i64>>(3)?.unwrap_or(0).max(0) as u64,
                    part: Some((r.get(4)?, r.get::<_, i64>(5)?.max(0) as u64)),
                })
            },
        )?);
        Ok(out)
    }

    /// Discs whose image was built and read back: disc id -> image record.
    pub fn images(&self) -> Result<Vec<Image>> {
        self.query_all(
            "SELECT disc_id, size, verified, ecc FROM images ORDER BY disc_id",
            [],
            |r| {
                Ok(Image {
                    disc: r.get(0)?,
                    size: r.get::<_, i64>(1)?.max(0) as u64,
                    verified: r.get(2)?,
                    ecc: r.get(3)?,
                })
            },
        )
    }

    /// Records that disc `id`'s image was built and every file read back.
    pub fn mark_image_verified(&self, id: i64, size: u64, ecc: Option<&str>) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO images(disc_id, size, verified, ecc) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(disc_id) DO UPDATE SET size=excluded.size,
                   verified=excluded.verified, ecc=excluded.ecc",
                params![id, size as i64, now(), ecc],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}
