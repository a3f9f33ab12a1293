//! The catalogue: the SQLite database `manifest.db` in the workdir, and its
//! snapshots on every disc. Owns the schema and every SQL statement; no
//! other module speaks SQL.
//!
//! Tables `discs` and `files` keep the original dBackup's names, columns and
//! meanings exactly (see the README): timestamps are Unix epoch seconds as
//! REAL, `mtime` is REAL with sub-second precision (SQLite stores a whole
//! second as an INTEGER all the same; the rows an adopted set brought, up to
//! the id in setting `whole_second_mtimes_through`, compare at whole
//! seconds, every other row at full precision), `copied = 0` marks a reservation
//! whose copy has not finished and which no reader may treat as a backup.
//! What the original lacked lives in added tables: `settings` (key/value),
//! `deletions` (when a file was first seen missing) and `images` (disc
//! images built and read back), `splits` and `parts` (files larger than a
//! disc, stored in parts on several discs: see `splits`; made with the
//! first such file, so a set without one keeps its catalogue as small as
//! before). `PRAGMA user_version` carries our schema version: 2 once the
//! split tables exist (an older dbackup must not build an image that leaves
//! parts out), 3 once the parity tables do (`parity_groups`,
//! `parity_members`, `parity_discs`: see `parity` and docs/parity.md),
//! 4 once the set records its tree (`attrs`: mode, owner, exact mtime of
//! each version; `entries`: folders, symbolic and hard links; see `tree`
//! and docs/tree.md), else 1.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags};

use crate::error::{Error, Result};

pub mod contents;
pub mod copies;
mod damaged;
mod discs;
mod files;
mod live;
pub mod manifest;
pub mod parity;
mod settings;
mod splits;
pub mod tree;

pub use damaged::{damaged_ids, record_damaged_in_frozen, Damaged, FileRecord};
pub use discs::{Disc, DiscFile, DiscUsage, Image, Totals};
pub use files::NewFile;
pub use live::{name_key, LiveEntry, LiveFiles, Mtime};
use settings::put_settings;
pub use settings::Settings;
pub use splits::{PartRecord, PartRow, SplitInProgress};

/// Our schema version, in `PRAGMA user_version`: 1, 2 once the set has
/// a split file (the tables `splits` and `parts` are made with the first),
/// 3 once parity was turned on (the parity tables, see `parity`), 4 once
/// the set records its tree (`attrs`, `entries`: see `tree`). Each is
/// the newest feature the set uses, so a dbackup that lacks it refuses it.
pub const SCHEMA_VERSION: i64 = tree::TREE_SCHEMA_VERSION;
/// The schema version an adopted original catalogue starts at (a new one
/// starts with the tree tables, at 4).
const NEW_SCHEMA_VERSION: i64 = 1;

/// Our catalogue's schema (the original's two tables, then ours).
pub const SCHEMA: &str = "
CREATE TABLE discs(id INTEGER PRIMARY KEY, started INTEGER, completed INTEGER, available BOOLEAN);
CREATE TABLE files(id INTEGER PRIMARY KEY, filename TEXT, timestamp INTEGER, md5 TEXT,
                   size INTEGER, mtime INTEGER, disc_id INTEGER, desc TEXT, copied BOOLEAN);
CREATE INDEX filenames ON files(filename, copied);
CREATE INDEX files_disc ON files(disc_id);
CREATE TABLE settings(key TEXT PRIMARY KEY, value);
CREATE TABLE deletions(id INTEGER PRIMARY KEY, filename TEXT NOT NULL, deleted REAL NOT NULL,
                       file_id INTEGER);
CREATE INDEX deletions_filename ON deletions(filename);
CREATE TABLE images(disc_id INTEGER PRIMARY KEY, size INTEGER NOT NULL, verified REAL NOT NULL,
                    ecc TEXT);
";

/// What the original dBackup's catalogue lacks, added when a set of it is
/// adopted: every statement leaves existing tables and rows as they are.
const UPGRADE_ORIGINAL: &str = "
CREATE INDEX IF NOT EXISTS filenames ON files(filename, copied);
CREATE INDEX IF NOT EXISTS files_disc ON files(disc_id);
CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS deletions(id INTEGER PRIMARY KEY, filename TEXT NOT NULL,
                       deleted REAL NOT NULL, file_id INTEGER);
CREATE INDEX IF NOT EXISTS deletions_filename ON deletions(filename);
CREATE TABLE IF NOT EXISTS images(disc_id INTEGER PRIMARY KEY, size INTEGER NOT NULL,
                    verified REAL NOT NULL, ecc TEXT);
";

/// Whether the catalogue at `path` is an original dBackup one (tables
/// `discs` and `files`, none of ours).
pub fn is_original(path: &Path) -> Result<bool> {
    let conn = manifest::open_immutable(path).map_err(|source| Error::Sqlite {
        path: path.into(),
        source,
    })?;
    let count = |name: &str| -> Result<i64> {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?1",
            [name],
            |r| r.get(0),
        )
        .map_err(|source| Error::Sqlite {
            path: path.into(),
            source,
        })
    };
    Ok(count("discs")? == 1 && count("files")? == 1 && count("settings")? == 0)
}

/// Adds our tables and settings to an original dBackup catalogue, in one
/// transaction, keeping every row and id; then switches it to WAL.
pub fn upgrade_original(path: &Path, settings: &Settings) -> Result<()> {
    let map = |source| Error::Sqlite {
        path: path.into(),
        source,
    };
    let mut conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(map)?;
    let tx = conn.transaction().map_err(map)?;
    tx.execute_batch(UPGRADE_ORIGINAL).map_err(map)?;
    put_settings(&tx, settings).map_err(map)?;
    tx.execute(
        "INSERT OR REPLACE INTO settings(key, value) VALUES ('adopted', ?1)",
        params![now()],
    )
    .map_err(map)?;
    // Every row so far holds the original's whole-second mtime; ids only
    // grow past the highest backed-up one, so later rows are ours.
    tx.execute(
        "INSERT OR REPLACE INTO settings(key, value)
         SELECT ?1, coalesce(max(id), 0) FROM files WHERE copied=1",
        params![settings::WHOLE_SECOND_MTIMES],
    )
    .map_err(map)?;
    tx.pragma_update(None, "user_version", NEW_SCHEMA_VERSION)
        .map_err(map)?;
    tx.commit().map_err(map)?;
    let _: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(map)?;
    Ok(())
}

/// The catalogue, open for reading and writing.
pub struct Catalog {
    conn: Connection,
    path: PathBuf,
}

/// Seconds since the Unix epoch, sub-second, as the catalogue stores times.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Catalog {
    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Every row of a query, mapped.
    fn query_all<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map(params, f).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Sets a key of `settings` (insert or replace).
    fn put_setting(&self, key: &str, value: impl rusqlite::ToSql) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO settings(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                params![key, value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Creates a new catalogue at `path` with the set's settings and disc 1
    /// open. The file must not exist.
    pub fn create(path: &Path, settings: &Settings) -> Result<Catalog> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .map_err(|source| Error::Sqlite {
            path: path.into(),
            source,
        })?;
        let mut cat = Catalog {
            conn,
            path: path.into(),
        };
        let now = now();
        let tx = cat.conn.transaction().map_err(|e| Error::Sqlite {
            path: path.into(),
            source: e,
        })?;
        let res = (|| {
            tx.execute_batch(SCHEMA)?;
            // A new set records its tree from its first run.
            tx.execute_batch(tree::TREE_TABLES)?;
            tx.pragma_update(None, "user_version", tree::TREE_SCHEMA_VERSION)?;
            put_settings(&tx, settings)?;
            tx.execute(
                "INSERT INTO discs(id, started, completed, available) VALUES (1, ?1, NULL, 1)",
                params![now],
            )?;
            Ok::<_, rusqlite::Error>(())
        })();
        res.and_then(|_| tx.commit()).map_err(|e| Error::Sqlite {
            path: path.into(),
            source: e,
        })?;
        cat.tune()?;
        Ok(cat)
    }

    /// Opens an existing catalogue of ours for reading and writing, checking
    /// that it is one (tables, schema version).
    pub fn open(path: &Path) -> Result<Catalog> {
        if !path.is_file() {
            return Err(Error::NotWorkdir(
                path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            ));
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(
            |source| Error::Sqlite {
                path: path.into(),
                source,
            },
        )?;
        let cat = Catalog {
            conn,
            path: path.into(),
        };
        cat.check_schema()?;
        cat.tune()?;
        Ok(cat)
    }

    /// Makes this connection refuse every write to the catalogue.
    pub(crate) fn set_query_only(&self) -> Result<()> {
        self.conn
            .execute_batch("PRAGMA query_only=1")
            .map_err(|e| self.err(e))
    }

    fn tune(&self) -> Result<()> {
        self.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| self.err(e))?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                why: format!("cannot switch to WAL journal mode (got {mode})"),
            });
        }
        self.conn
            .execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;")
            .map_err(|e| self.err(e))
    }

    fn check_schema(&self) -> Result<()> {
        let corrupt = |why: String| Error::Corrupt {
            path: self.path.clone(),
            why,
        };
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| corrupt(e.to_string()))?;
        if version > SCHEMA_VERSION {
            return Err(corrupt(format!(
                "schema version {version} is newer than this dbackup understands ({SCHEMA_VERSION}); upgrade dbackup"
            )));
        }
        for table in ["discs", "files", "settings", "deletions", "images"] {
            let n: i64 = self
                .conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?1",
                    [table],
                    |r| r.get(0),
                )
                .map_err(|e| corrupt(e.to_string()))?;
            if n != 1 {
                return Err(corrupt(format!("table {table} is missing")));
            }
        }
        Ok(())
    }

    /// The catalogue's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `PRAGMA quick_check`; `Ok(())` when the database is sound.
    pub fn quick_check(&self) -> Result<()> {
        let res: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if res == "ok" {
            Ok(())
        } else {
            Err(Error::Corrupt {
                path: self.path.clone(),
                why: res,
            })
        }
    }
}
