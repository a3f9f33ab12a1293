//! The catalogue: the SQLite database `manifest.db` in the workdir, and its
//! snapshots on every disc. Owns the schema and every SQL statement; no
//! other module speaks SQL.
//!
//! Tables `discs` and `files` keep the original dBackup's names, columns and
//! meanings exactly (see the README): timestamps are Unix epoch seconds as
//! REAL, `mtime` is REAL with sub-second precision (the original's integer
//! mtimes are compared at whole seconds), `copied = 0` marks a reservation
//! whose copy has not finished and which no reader may treat as a backup.
//! What the original lacked lives in added tables: `settings` (key/value),
//! `deletions` (when a file was first seen missing) and `images` (disc
//! images built and read back). `PRAGMA
//! user_version` carries our schema version.

use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::error::{Error, Result};
use crate::names;

pub mod manifest;

/// Our schema version, in `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 1;

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
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(map)?;
    tx.commit().map_err(map)?;
    let _: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(map)?;
    Ok(())
}

/// Writes a set's settings (and when it was created) into `settings`.
fn put_settings(tx: &rusqlite::Transaction<'_>, settings: &Settings) -> rusqlite::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let mut put = tx.prepare("INSERT OR REPLACE INTO settings(key, value) VALUES (?1, ?2)")?;
    put.execute(params![
        "watched",
        names::to_sql(settings.watched.as_os_str().as_bytes())
    ])?;
    put.execute(params!["disc_size", settings.disc_size as i64])?;
    put.execute(params![
        "excludes",
        serde_json::to_string(&settings.excludes).unwrap_or_else(|_| "[]".into())
    ])?;
    put.execute(params!["uuid", settings.uuid])?;
    put.execute(params!["name", settings.name])?;
    put.execute(params!["ecc", if settings.ecc { "on" } else { "off" }])?;
    put.execute(params!["created", now()])?;
    Ok(())
}

/// The settings of a set, in table `settings`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The watched folder, absolute.
    pub watched: PathBuf,
    /// Bytes a disc may hold before it is closed.
    pub disc_size: u64,
    /// Glob patterns left out of the backup.
    pub excludes: Vec<String>,
    /// The set's UUID, written on every disc so tools never mix two sets.
    pub uuid: String,
    /// A human name for the set.
    pub name: String,
    /// Whether images get dvdisaster error-correction data.
    pub ecc: bool,
}

/// A row of `discs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Disc {
    pub id: i64,
    pub started: Option<f64>,
    pub completed: Option<f64>,
    pub available: bool,
}

/// The latest backed-up version of a live file, as the scan needs it.
#[derive(Debug, Clone, Copy)]
pub struct LiveEntry {
    pub id: i64,
    pub size: u64,
    pub mtime: Mtime,
    /// Set by the scan when it sees the file.
    pub seen: bool,
    /// Recorded deleted after this version: not live.
    pub gone: bool,
}

/// A modification time as stored: REAL seconds (ours) or whole seconds (the
/// original's `int(st_mtime)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mtime {
    Real(f64),
    Whole(i64),
}

impl Mtime {
    /// The REAL we store for a file's mtime.
    pub fn from_parts(secs: i64, nanos: i64) -> f64 {
        secs as f64 + nanos as f64 / 1e9
    }

    /// Whether a file with this mtime (seconds, nanoseconds) is unchanged.
    pub fn matches(&self, secs: i64, nanos: i64) -> bool {
        match *self {
            Mtime::Real(f) => f == Mtime::from_parts(secs, nanos),
            Mtime::Whole(w) => w == secs,
        }
    }

    /// As fractional seconds, for display.
    pub fn as_f64(&self) -> f64 {
        match *self {
            Mtime::Real(f) => f,
            Mtime::Whole(w) => w as f64,
        }
    }
}

/// Live files keyed by a 128-bit hash of their name, in one sorted vector
/// allocated to the exact count: a compact index (56 bytes a file, no hash
/// table slack) that keeps an unchanged rescan of a million files well
/// under 100 MiB. Since the keys are uniform hashes, a directory of where
/// each run of leading bits starts (about 2 bytes a file) sends a lookup
/// straight to the two or so entries that can match, instead of a binary
/// search whose every step is a cache miss on a large index.
#[derive(Debug, Default)]
pub struct LiveIndex {
    entries: Vec<([u64; 2], LiveEntry)>,
    /// `starts[b]`: the first entry whose key's top `bits` bits are `>= b`;
    /// one more slot at the end holds the entry count.
    starts: Vec<u32>,
    bits: u32,
}

fn split_key(key: u128) -> [u64; 2] {
    [(key >> 64) as u64, key as u64]
}

impl LiveIndex {
    /// The index of `entries`, which must be sorted by key.
    fn new(entries: Vec<([u64; 2], LiveEntry)>) -> LiveIndex {
        let n = entries.len();
        // About two entries a bucket; none for tiny or huge indexes.
        let bits = if n < 64 || n > u32::MAX as usize {
            0
        } else {
            (usize::BITS - (n - 1).leading_zeros() - 1).min(24)
        };
        let mut starts = Vec::new();
        if bits > 0 {
            starts.reserve_exact((1 << bits) + 1);
            for (i, (k, _)) in entries.iter().enumerate() {
                let b = (k[0] >> (64 - bits)) as usize;
                while starts.len() <= b {
                    starts.push(i as u32);
                }
            }
            while starts.len() <= 1 << bits {
                starts.push(n as u32);
            }
        }
        LiveIndex {
            entries,
            starts,
            bits,
        }
    }

    fn position(&self, key: u128) -> Option<usize> {
        let k = split_key(key);
        let (lo, hi) = if self.bits == 0 {
            (0, self.entries.len())
        } else {
            let b = (k[0] >> (64 - self.bits)) as usize;
            (self.starts[b] as usize, self.starts[b + 1] as usize)
        };
        self.entries[lo..hi]
            .binary_search_by(|(e, _)| e.cmp(&k))
            .ok()
            .map(|i| lo + i)
    }

    /// The entry of a name's key, if the file is live.
    pub fn get_mut(&mut self, key: &u128) -> Option<&mut LiveEntry> {
        let i = self.position(*key)?;
        let e = &mut self.entries[i].1;
        (!e.gone).then_some(e)
    }

    /// Every live entry.
    pub fn values(&self) -> impl Iterator<Item = &LiveEntry> {
        self.entries.iter().map(|(_, e)| e).filter(|e| !e.gone)
    }

    /// How many files are live.
    pub fn len(&self) -> usize {
        self.values().count()
    }

    /// Whether no file is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key of a name in a [`LiveIndex`].
pub fn name_key(name: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(name)
}

/// A file about to be reserved.
#[derive(Debug, Clone)]
pub struct NewFile<'a> {
    pub name: &'a [u8],
    pub size: u64,
    pub mtime: f64,
    pub disc_id: i64,
    pub desc: &'a str,
    pub timestamp: f64,
}

/// Totals over the whole set.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Totals {
    pub files: u64,
    pub bytes: u64,
    pub discs_closed: u64,
}

/// A backed-up file of one disc.
#[derive(Debug, Clone)]
pub struct DiscFile {
    pub id: i64,
    pub name: Vec<u8>,
    pub md5: String,
    pub size: u64,
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
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
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

    /// The set's settings.
    pub fn settings(&self) -> Result<Settings> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM settings")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut watched = None;
        let mut disc_size = None;
        let mut excludes = Vec::new();
        let mut uuid = String::new();
        let mut name = String::new();
        let mut ecc = false;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let key: String = row.get(0).map_err(|e| self.err(e))?;
            let value = row.get_ref(1).map_err(|e| self.err(e))?;
            match key.as_str() {
                "watched" => {
                    use std::os::unix::ffi::OsStrExt;
                    watched = names::from_sql(value)
                        .map(|b| PathBuf::from(std::ffi::OsStr::from_bytes(&b)));
                }
                "disc_size" => disc_size = value.as_i64().ok().filter(|v| *v > 0),
                "excludes" => {
                    excludes = value
                        .as_str()
                        .ok()
                        .and_then(|s| serde_json::from_str(s).ok())
                        .unwrap_or_default()
                }
                "uuid" => uuid = value.as_str().unwrap_or_default().to_string(),
                "name" => name = value.as_str().unwrap_or_default().to_string(),
                "ecc" => ecc = value.as_str().is_ok_and(|v| v == "on"),
                _ => {}
            }
        }
        let corrupt = |why: &str| Error::Corrupt {
            path: self.path.clone(),
            why: why.into(),
        };
        Ok(Settings {
            watched: watched.ok_or_else(|| corrupt("setting 'watched' is missing"))?,
            disc_size: disc_size.ok_or_else(|| corrupt("setting 'disc_size' is missing"))? as u64,
            excludes,
            uuid,
            name,
            ecc,
        })
    }

    /// Reads a free-form state value from `settings` (e.g. `last_run`).
    pub fn state_f64(&self, key: &str) -> Result<Option<f64>> {
        self.conn
            .query_row("SELECT value FROM settings WHERE key=?1", [key], |r| {
                r.get::<_, Option<f64>>(0)
            })
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// Writes a state value into `settings`.
    pub fn set_state_f64(&self, key: &str, value: f64) -> Result<()> {
        self.put_setting(key, value)
    }

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
    pub fn complete_disc(&self, id: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE discs SET completed=?2 WHERE id=?1 AND completed IS NULL",
                params![id, now()],
            )
            .map(|_| ())
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

    /// Files and bytes backed up on disc `id`.
    pub fn disc_usage(&self, id: i64) -> Result<DiscUsage> {
        self.conn
            .query_row(
                "SELECT count(*), coalesce(sum(size),0), coalesce(sum((size+2047)/2048*2048),0)
                 FROM files WHERE disc_id=?1 AND copied=1",
                [id],
                |r| {
                    Ok(DiscUsage {
                        files: r.get::<_, i64>(0)? as u64,
                        bytes: r.get::<_, i64>(1)?.max(0) as u64,
                        sector_bytes: r.get::<_, i64>(2)?.max(0) as u64,
                    })
                },
            )
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

    /// The latest backed-up version of every file not recorded as deleted
    /// since, keyed by [`name_key`].
    pub fn live_index(&self) -> Result<LiveIndex> {
        let count: i64 = self
            .conn
            .query_row("SELECT count(*) FROM files WHERE copied=1", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))?;
        let mut entries: Vec<([u64; 2], LiveEntry)> =
            Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        let mut stmt = self
            .conn
            .prepare("SELECT id, filename, size, mtime FROM files WHERE copied=1 ORDER BY id")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let id: i64 = row.get(0).map_err(|e| self.err(e))?;
            let key = match row.get_ref(1).map_err(|e| self.err(e))? {
                ValueRef::Text(b) | ValueRef::Blob(b) => split_key(name_key(b)),
                _ => continue,
            };
            let size = row
                .get_ref(2)
                .map_err(|e| self.err(e))?
                .as_i64()
                .unwrap_or(-1);
            let mtime = match row.get_ref(3).map_err(|e| self.err(e))? {
                ValueRef::Integer(i) => Mtime::Whole(i),
                ValueRef::Real(f) => Mtime::Real(f),
                _ => Mtime::Real(f64::NAN),
            };
            entries.push((
                key,
                LiveEntry {
                    id,
                    // An impossible size makes the file look changed, so a
                    // damaged row is backed up again rather than trusted.
                    size: u64::try_from(size).unwrap_or(u64::MAX),
                    mtime,
                    seen: false,
                    gone: false,
                },
            ));
        }
        drop(rows);
        drop(stmt);
        // Rows came in id order; a stable sort by key keeps each name's
        // versions in id order, and the last one is the latest.
        entries.sort_by_key(|e| e.0);
        let mut w = 0;
        for r in 0..entries.len() {
            if r + 1 < entries.len() && entries[r + 1].0 == entries[r].0 {
                continue;
            }
            entries.swap(w, r);
            w += 1;
        }
        entries.truncate(w);
        entries.shrink_to_fit();
        let mut live = LiveIndex::new(entries);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT d.file_id, f.filename FROM deletions d JOIN files f ON f.id = d.file_id",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let file_id: i64 = row.get(0).map_err(|e| self.err(e))?;
            if let Some(name) = names::from_sql(row.get_ref(1).map_err(|e| self.err(e))?) {
                if let Some(e) = live.get_mut(&name_key(&name)) {
                    if e.id == file_id {
                        e.gone = true;
                    }
                }
            }
        }
        Ok(live)
    }

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

    /// Reservations whose copy never finished: (id, disc_id).
    pub fn reservations(&self) -> Result<Vec<(i64, i64)>> {
        self.query_all(
            "SELECT id, disc_id FROM files WHERE copied=0 OR copied IS NULL",
            [],
            |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0))),
        )
    }

    /// Deletes reservation rows (never a `copied=1` row), in one transaction.
    pub fn drop_reservations(&mut self, ids: &[i64]) -> Result<()> {
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(map)?;
        {
            let mut del = tx
                .prepare("DELETE FROM files WHERE id=?1 AND (copied=0 OR copied IS NULL)")
                .map_err(map)?;
            for id in ids {
                del.execute([id]).map_err(map)?;
            }
        }
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

    /// Every backed-up file of disc `id`, in id order.
    pub fn disc_files(&self, id: i64) -> Result<Vec<DiscFile>> {
        self.query_all(
            "SELECT id, filename, md5, size FROM files WHERE disc_id=?1 AND copied=1 ORDER BY id",
            [id],
            |r| {
                Ok(DiscFile {
                    id: r.get(0)?,
                    name: names::from_sql(r.get_ref(1)?).unwrap_or_default(),
                    md5: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    size: r.get::<_, Option<i64>>(3)?.unwrap_or(0).max(0) as u64,
                })
            },
        )
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

    /// Forgets disc `id`'s image record, before the bytes under its final
    /// name are replaced, so a crash between the two never leaves a row
    /// that describes other bytes (the disc is then simply pending again).
    pub fn forget_image(&self, id: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM images WHERE disc_id=?1", [id])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// What a staged copy must be: (name, md5, size, mtime) of file `id`.
    pub fn file_record(&self, id: i64) -> Result<Option<FileRecord>> {
        self.conn
            .query_row(
                "SELECT filename, md5, size, mtime FROM files WHERE id=?1 AND copied=1",
                [id],
                |r| {
                    let mtime = match r.get_ref(3)? {
                        ValueRef::Integer(i) => Mtime::Whole(i),
                        ValueRef::Real(f) => Mtime::Real(f),
                        _ => Mtime::Real(f64::NAN),
                    };
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

    /// A free-form text setting (e.g. `on_disc_ready`).
    pub fn setting_text(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM settings WHERE key=?1", [key], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// Sets a free-form text setting.
    pub fn set_setting_text(&self, key: &str, value: &str) -> Result<()> {
        self.put_setting(key, value)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn index_of(keys: &[u128]) -> LiveIndex {
        let mut entries: Vec<([u64; 2], LiveEntry)> = keys
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                (
                    split_key(k),
                    LiveEntry {
                        id: i as i64,
                        size: 0,
                        mtime: Mtime::Real(0.0),
                        seen: false,
                        gone: false,
                    },
                )
            })
            .collect();
        entries.sort_by_key(|e| e.0);
        LiveIndex::new(entries)
    }

    #[test]
    fn every_key_is_found_and_no_other_at_any_size() {
        for n in [0usize, 1, 5, 63, 64, 65, 1000, 4097, 50_000] {
            let mut keys: Vec<u128> = (0..n as u64)
                .map(|i| name_key(format!("/f{i}").as_bytes()))
                .collect();
            // The edges of the key space, where buckets start and end.
            if n > 2 {
                keys[0] = 0;
                keys[1] = u128::MAX;
                keys[2] = (u128::from(u64::MAX) << 64) | 7;
            }
            let mut idx = index_of(&keys);
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(
                    idx.get_mut(k).map(|e| e.id),
                    Some(i as i64),
                    "n={n} key {i}"
                );
            }
            for i in 0..200u64 {
                let absent = name_key(format!("/absent{i}").as_bytes());
                assert!(idx.get_mut(&absent).is_none(), "n={n}");
            }
        }
    }
}
