//! A manifest read from a disc: the catalogue snapshot of our discs or of
//! the original dBackup's, opened read-only and immutable, and treated as
//! untrusted input. Every value is checked on the way out: a row with a
//! missing or ill-typed field is counted as invalid and left out, never
//! trusted and never a panic.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::catalog::{Mtime, PartRow};
use crate::names;

mod prefilter;
mod tree;
pub use prefilter::{prefilter_condition, register_functions};
pub use tree::{Attrs, Entry, EntryKind, FileAttrs, Table, Tree, TARGET_MAX};

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
    /// The mtime is the original dBackup's whole seconds (`int(st_mtime)`:
    /// every row of an original disc, and the rows an adopted set brought),
    /// so it is compared at whole seconds. Decided by the row's id and the
    /// manifest's settings, never by how SQLite stored the value: ours of a
    /// whole second is stored as an INTEGER too.
    pub mtime_whole: bool,
    /// The disc holding the file; for a split version, its first part's.
    pub disc: i64,
    pub desc: String,
    /// A split version's parts, in order (ascending discs, contiguous,
    /// covering the whole size); empty for a whole file on `disc`.
    pub parts: Vec<PartRow>,
}

/// A row's name and size as stored, seen before the row is read whole
/// ([`Manifest::for_each_version_kept`]).
#[derive(Debug, Clone, Copy)]
pub struct Peek<'a> {
    pub name: &'a [u8],
    /// `None` when it is not a whole number of bytes (the row is invalid).
    pub size: Option<u64>,
}

impl Version {
    /// Whether it is stored in parts on several discs.
    pub fn is_split(&self) -> bool {
        !self.parts.is_empty()
    }

    /// Every disc holding some of it, ascending, each once.
    pub fn discs(&self) -> Vec<i64> {
        if self.parts.is_empty() {
            return vec![self.disc];
        }
        let mut d: Vec<i64> = self.parts.iter().map(|p| p.disc).collect();
        d.dedup();
        d
    }

    /// Where its bytes are: (disc, path relative to the disc root, offset,
    /// size, MD5), in the order to put them together.
    pub fn pieces(&self) -> Vec<(i64, PathBuf, u64, u64, &str)> {
        if self.parts.is_empty() {
            return vec![(
                self.disc,
                crate::disc::file_path(self.id),
                0,
                self.size,
                self.md5.as_str(),
            )];
        }
        self.parts
            .iter()
            .map(|p| {
                (
                    p.disc,
                    crate::disc::part_path(self.id, p.part),
                    p.offset,
                    p.size,
                    p.md5.as_str(),
                )
            })
            .collect()
    }

    /// The recorded mtime with the rule it is compared by.
    pub fn recorded_mtime(&self) -> Mtime {
        if self.mtime_whole {
            Mtime::Whole(self.mtime as i64)
        } else {
            Mtime::Real(self.mtime)
        }
    }
}

/// A part of a split version recorded on a disc, whatever the version's
/// state (see [`Manifest::disc_parts`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DiscPart {
    pub file_id: i64,
    pub name: Vec<u8>,
    /// `complete` (part of a backup), `staging` (the version was not
    /// finished when this manifest was frozen) or `abandoned` (no backup).
    pub state: String,
    pub part: PartRow,
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
    has_settings: bool,
    budget: Budget,
    /// A `damaged` table: versions whose copy rotted before any image held
    /// it. They are on no disc, so every reader leaves them out.
    has_damaged: bool,
    /// Rows with an id up to this hold whole-second mtimes.
    whole_through: i64,
    /// Tables `splits` and `parts`: files stored in parts on several discs.
    has_parts: bool,
}

/// What a schema name is.
enum TableKind {
    Absent,
    Table,
    /// A view or a virtual table, named for the message.
    Other(&'static str),
}

fn table_kind(conn: &Connection, name: &str) -> rusqlite::Result<TableKind> {
    let rows: Vec<(String, Option<String>)> = conn
        .prepare(
            "SELECT type, sql FROM sqlite_schema WHERE name=?1 COLLATE NOCASE AND type IN ('table', 'view')",
        )?
        .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(match rows.as_slice() {
        [] => TableKind::Absent,
        [(kind, _)] if kind == "view" => TableKind::Other("a view"),
        [(_, Some(sql))]
            if sql
                .trim_start()
                .get(..20)
                .is_some_and(|head| head.eq_ignore_ascii_case("CREATE VIRTUAL TABLE")) =>
        {
            TableKind::Other("a virtual table")
        }
        [_] => TableKind::Table,
        _ => TableKind::Other("defined twice"),
    })
}

fn wal_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

/// Bounds the work of every statement on an untrusted manifest: SQLite's
/// progress handler counts virtual-machine steps, and a statement that
/// takes more than [`Budget::STEPS_PER_BYTE`] steps per byte of the file
/// (plus a floor) is interrupted. Reading real tables costs well under one
/// step per byte (a row is tens of bytes and tens of steps, whatever the
/// query), so a sound manifest never comes near it, while whatever a
/// crafted one might still make SQLite do ends. Temporary storage needs no
/// cap of its own: with real tables only, a sort holds at most the rows of
/// the file.
struct Budget {
    left: std::sync::Arc<AtomicU64>,
    per_statement: u64,
}

impl Budget {
    const STEPS_PER_BYTE: u64 = 64;
    const FLOOR: u64 = 50_000_000;
    /// Steps between two calls of the handler.
    const PERIOD: i32 = 10_000;

    fn install(conn: &mut Connection, file_bytes: u64) -> rusqlite::Result<Budget> {
        let per_statement = file_bytes
            .saturating_mul(Self::STEPS_PER_BYTE)
            .saturating_add(Self::FLOOR)
            / Self::PERIOD as u64;
        let left = std::sync::Arc::new(AtomicU64::new(per_statement));
        let seen = left.clone();
        conn.progress_handler(
            Self::PERIOD,
            Some(move || {
                // `true` interrupts the statement.
                seen.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_err()
            }),
        )?;
        Ok(Budget {
            left,
            per_statement,
        })
    }

    /// A fresh budget for the next statement.
    fn arm(&self) {
        self.left.store(self.per_statement, Ordering::Relaxed);
    }
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

/// What a byte is in an MD5's hex: 1 a digit or `a`-`f`, 2 `A`-`F`, 0 not
/// hex. A table, so that the check of millions of rows has no branch per
/// byte.
const HEX_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = match b as u8 {
            b'0'..=b'9' | b'a'..=b'f' => 1,
            b'A'..=b'F' => 2,
            _ => 0,
        };
        b += 1;
    }
    t
};

/// The MD5 a TEXT value holds, lower-cased: 32 hex digits, or `None`.
/// Checked on the bytes before anything is allocated.
fn md5_text(t: &[u8]) -> Option<String> {
    let t: &[u8; 32] = t.try_into().ok()?;
    let (mut all, mut upper) = (1u8, 0u8);
    for &b in t {
        let c = HEX_CLASS[b as usize];
        all &= (c != 0) as u8;
        upper |= c;
    }
    if all == 0 {
        return None;
    }
    // Only hex digits: ASCII, so always UTF-8.
    let s = std::str::from_utf8(t).ok()?;
    Some(if upper & 2 != 0 {
        s.to_ascii_lowercase()
    } else {
        s.to_owned()
    })
}

/// A TEXT value as a `String`; bytes that are not UTF-8 become U+FFFD.
fn text_lossy(t: &[u8]) -> String {
    match std::str::from_utf8(t) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(t).into_owned(),
    }
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
        let mut conn = if immutable {
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
        let size = [path.to_path_buf(), wal_path(path)]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        register_functions(&conn).map_err(err)?;
        let budget = Budget::install(&mut conn, size).map_err(err)?;
        // Before any query on its tables: a view, a virtual table or a
        // generated column would run code of the manifest's choosing (a
        // recursive view never ends), so only real tables are read.
        let has = |table: &str, cols: &[&str], required: bool| -> Result<bool> {
            let invalid = |why: String| ManifestError::Invalid {
                path: path.into(),
                why,
            };
            match table_kind(&conn, table).map_err(err)? {
                TableKind::Absent if required => {
                    return Err(invalid(format!("there is no table {table}")))
                }
                TableKind::Absent => return Ok(false),
                TableKind::Table => {}
                TableKind::Other(what) => {
                    return Err(invalid(format!(
                        "{table} is {what}, not a table; only real tables are read"
                    )))
                }
            }
            let triggers: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE type='trigger' AND tbl_name=?1 COLLATE NOCASE",
                    [table],
                    |r| r.get(0),
                )
                .map_err(err)?;
            if triggers > 0 {
                return Err(invalid(format!(
                    "table {table} has triggers, which no dbackup catalogue has"
                )));
            }
            let mut stmt = conn
                .prepare("SELECT name, hidden FROM pragma_table_xinfo(?1)")
                .map_err(err)?;
            let found: Vec<(String, i64)> = stmt
                .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(err)?
                .collect::<rusqlite::Result<_>>()
                .map_err(err)?;
            for c in cols {
                match found.iter().find(|(f, _)| f.eq_ignore_ascii_case(c)) {
                    Some((_, 0)) => {}
                    Some(_) => {
                        return Err(invalid(format!(
                            "column {table}.{c} is generated or hidden, not stored"
                        )))
                    }
                    None if required => {
                        return Err(invalid(format!(
                            "table {table} has no column {c} (the original's columns are needed)"
                        )))
                    }
                    None => return Ok(false),
                }
            }
            Ok(true)
        };
        has(
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
            true,
        )?;
        has("discs", &["id", "started", "completed", "available"], true)?;
        let has_deletions = has("deletions", &["filename", "deleted", "file_id"], false)?;
        let has_settings = has("settings", &["key", "value"], false)?;
        let has_damaged = has("damaged", &["file_id", "disc_id"], false)?;
        let has_parts = has("splits", &["file_id", "state"], false)?
            && has(
                "parts",
                &[
                    "file_id", "part", "disc_id", "offset", "size", "md5", "copied",
                ],
                false,
            )?;
        Manifest {
            conn,
            path: path.into(),
            has_deletions,
            has_settings,
            budget,
            has_damaged,
            whole_through: 0,
            has_parts,
        }
        .with_mtime_rule()
    }

    /// Works out which rows hold whole-second mtimes (see
    /// [`Version::mtime_whole`]): all of them on the original's discs (no
    /// `settings` table), those up to the recorded id on an adopted set's,
    /// none on a set we began. A value of the wrong type counts as absent.
    fn with_mtime_rule(mut self) -> Result<Manifest> {
        if !self.has_settings {
            self.whole_through = i64::MAX;
            return Ok(self);
        }
        let setting = |key: &str| -> Result<Option<i64>> {
            self.conn()
                .query_row("SELECT value FROM settings WHERE key=?1", [key], |r| {
                    Ok(r.get_ref(0)?.as_i64().ok())
                })
                .optional()
                .map(Option::flatten)
                .map_err(|e| self.err(e))
        };
        self.whole_through = match setting(super::settings::WHOLE_SECOND_MTIMES)? {
            Some(id) => id,
            // Adopted before the rule was recorded: the rows older than
            // the adoption.
            None => self
                .conn()
                .query_row(
                    "SELECT coalesce(max(id), 0) FROM files WHERE copied=1 AND timestamp <=
                       (SELECT value FROM settings WHERE key='adopted')",
                    [],
                    |r| Ok(r.get_ref(0)?.as_i64().unwrap_or(0)),
                )
                .map_err(|e| self.err(e))?,
        };
        Ok(self)
    }

    fn err(&self, source: rusqlite::Error) -> ManifestError {
        if source.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
            return ManifestError::Invalid {
                path: self.path.clone(),
                why: format!(
                    "reading it took more work than a manifest of its size can need \
                     (over {} SQLite steps for one query): it is crafted or damaged",
                    self.budget
                        .per_statement
                        .saturating_mul(Budget::PERIOD as u64)
                ),
            };
        }
        ManifestError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The connection, with a fresh work budget for the statement about to
    /// run on it.
    fn conn(&self) -> &Connection {
        self.budget.arm();
        &self.conn
    }

    /// The file this manifest was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A text setting of ours (absent on the original's discs).
    /// The parity groups it records with a layout, each checked, and how
    /// many failed a check (see [`crate::catalog::parity::read_groups`]).
    pub fn parity_groups(&self) -> Result<(Vec<crate::catalog::parity::GroupInfo>, u64)> {
        crate::catalog::parity::groups_of(self.conn()).map_err(|source| ManifestError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    pub fn setting(&self, key: &str) -> Option<String> {
        if !self.has_settings {
            return None;
        }
        self.conn()
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
            .conn()
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
            .conn()
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

    fn version(&self, r: &rusqlite::Row<'_>) -> Option<Version> {
        let whole_through = self.whole_through;
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
            ValueRef::Text(t) => md5_text(t)?,
            _ => return None,
        };
        let size = match r.get_ref(4).ok()? {
            ValueRef::Integer(i) if i >= 0 => i as u64,
            _ => return None,
        };
        let mtime = real(r.get_ref(5).ok()?).unwrap_or(0.0);
        let mtime_whole = id <= whole_through;
        let (disc, parts) = match r.get_ref(6).ok()? {
            ValueRef::Integer(i) => (i, Vec::new()),
            // On no one disc: a split version, whole only with all its parts.
            ValueRef::Null if self.has_parts => {
                let parts = self.split_parts(id, size)?;
                (parts[0].disc, parts)
            }
            _ => return None,
        };
        let desc = match r.get_ref(7).ok()? {
            ValueRef::Text(t) => text_lossy(t),
            _ => String::new(),
        };
        Some(Version {
            parts,
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
            .conn()
            .prepare(
                "SELECT d.file_id, d.disc_id, f.filename FROM damaged d
                 JOIN files f ON f.id = d.file_id ORDER BY d.file_id",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        // A row of the wrong types is left out, as in every other table.
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let (Ok(ValueRef::Integer(id)), Ok(ValueRef::Integer(disc))) =
                (r.get_ref(0), r.get_ref(1))
            else {
                continue;
            };
            if let Some(name) = r.get_ref(2).ok().and_then(names::from_sql) {
                out.push((id, disc, name));
            }
        }
        Ok(out)
    }

    /// The versions recorded damaged, whole (name, time, size, disc), in id
    /// order, and the count of invalid rows left out: no backup, on no
    /// disc, but what a reader needs to say which version is missing.
    pub fn damaged_versions(&self) -> Result<(Vec<Version>, u64)> {
        if !self.has_damaged {
            return Ok((Vec::new(), 0));
        }
        let sql = format!(
            "SELECT {} FROM files WHERE copied=1 AND id IN (SELECT file_id FROM damaged) ORDER BY id",
            Self::COLUMNS
        );
        let mut out = Vec::new();
        let invalid = self.each(&sql, None, &mut |v| out.push(v))?;
        Ok((out, invalid))
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

    /// Like [`Manifest::for_each_version`], for the split versions alone
    /// (their row names no disc; none without the `parts` table).
    pub fn for_each_split_version(&self, f: &mut dyn FnMut(Version)) -> Result<u64> {
        if !self.has_parts {
            return Ok(0);
        }
        let sql = format!(
            "SELECT {} FROM files WHERE {} AND disc_id IS NULL ORDER BY id",
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
            Some(p) => format!("AND {}", prefilter_condition(p)),
            None => String::new(),
        };
        let sql = format!(
            "SELECT {} FROM files WHERE {} {filter} ORDER BY filename, id",
            Self::COLUMNS,
            self.backed_up()
        );
        self.each(&sql, prefilter.map(|p| p.pattern.as_str()), f)
    }

    /// Like [`Manifest::for_each_version`], but a row is read whole only
    /// when `keep` wants it, told its name and size as stored: a pass that
    /// looks for a few names or sizes among millions builds nothing for
    /// the rest. `keep` sees every row whose name is TEXT or BLOB; the
    /// invalid rows counted are the others and those it kept.
    pub fn for_each_version_kept(
        &self,
        keep: &mut dyn FnMut(Peek<'_>) -> bool,
        f: &mut dyn FnMut(Version),
    ) -> Result<u64> {
        let sql = format!(
            "SELECT {} FROM files WHERE {} ORDER BY id",
            Self::COLUMNS,
            self.backed_up()
        );
        self.each_kept(&sql, None, Some(keep), f)
    }

    fn each(&self, sql: &str, param: Option<&str>, f: &mut dyn FnMut(Version)) -> Result<u64> {
        self.each_kept(sql, param, None, f)
    }

    fn each_kept(
        &self,
        sql: &str,
        param: Option<&str>,
        mut keep: Option<&mut dyn FnMut(Peek<'_>) -> bool>,
        f: &mut dyn FnMut(Version),
    ) -> Result<u64> {
        let mut stmt = self.conn().prepare(sql).map_err(|e| self.err(e))?;
        let mut rows = match param {
            Some(p) => stmt.query([p]),
            None => stmt.query([]),
        }
        .map_err(|e| self.err(e))?;
        let mut invalid = 0;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            if let Some(keep) = keep.as_mut() {
                let name = r.get_ref(1).ok().and_then(names::bytes_of);
                let size = match r.get_ref(4) {
                    Ok(ValueRef::Integer(i)) => u64::try_from(i).ok(),
                    _ => None,
                };
                if let Some(name) = name {
                    if !keep(Peek { name, size }) {
                        continue;
                    }
                }
            }
            match self.version(r) {
                Some(v) => f(v),
                None => invalid += 1,
            }
        }
        Ok(invalid)
    }

    /// Calls `f` with every backed-up version on disc `disc` (whole files:
    /// a split version is on no one disc), in id order, holding one at a
    /// time. Returns how many rows were invalid and left out.
    pub fn for_each_disc_version(&self, disc: i64, f: &mut dyn FnMut(Version)) -> Result<u64> {
        let sql = format!(
            "SELECT {} FROM files WHERE {} AND disc_id=?1 ORDER BY id",
            Self::COLUMNS,
            self.backed_up()
        );
        let mut stmt = self.conn().prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query([disc]).map_err(|e| self.err(e))?;
        let mut invalid = 0;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            match self.version(r) {
                Some(v) => f(v),
                None => invalid += 1,
            }
        }
        Ok(invalid)
    }

    /// Every backed-up version on disc `disc`, in id order, and the count of
    /// invalid rows left out.
    pub fn disc_versions(&self, disc: i64) -> Result<(Vec<Version>, u64)> {
        let mut out = Vec::new();
        let invalid = self.for_each_disc_version(disc, &mut |v| out.push(v))?;
        Ok((out, invalid))
    }

    /// The parts of split version `id` of `size` bytes, when it is complete
    /// and its parts are sound: numbered 1, 2, ... without a gap, each
    /// copied with an MD5 and at least one byte, contiguous from offset 0 to
    /// `size`, on ascending discs. Anything else is no backup (`None`). The
    /// lookup runs within the work budget of the statement reading the row.
    fn split_parts(&self, id: i64, size: u64) -> Option<Vec<PartRow>> {
        // Exactly one `splits` row, `complete` (a crafted manifest may have
        // two, where our catalogue's key allows one).
        let state: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT count(*), max(state) FROM splits WHERE file_id=?1",
                [id],
                |r| {
                    Ok(match (r.get_ref(0)?, r.get_ref(1)?) {
                        (ValueRef::Integer(1), ValueRef::Text(t)) => Some(t.to_vec()),
                        _ => None,
                    })
                },
            )
            .ok()?;
        if state.as_deref() != Some(b"complete".as_slice()) {
            return None;
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT part, disc_id, offset, size, md5, copied FROM parts
                 WHERE file_id=?1 ORDER BY part",
            )
            .ok()?;
        let mut rows = stmt.query([id]).ok()?;
        let mut parts: Vec<PartRow> = Vec::new();
        let mut next_offset = 0u64;
        while let Some(r) = rows.next().ok()? {
            let int = |i: usize| match r.get_ref(i) {
                Ok(ValueRef::Integer(v)) => Some(v),
                _ => None,
            };
            let part = u32::try_from(int(0)?).ok()?;
            let disc = int(1)?;
            let offset = u64::try_from(int(2)?).ok()?;
            let psize = u64::try_from(int(3)?).ok()?;
            let md5 = match r.get_ref(4).ok()? {
                ValueRef::Text(t) => md5_text(t)?,
                _ => return None,
            };
            let copied = int(5)? == 1;
            let expected = u32::try_from(parts.len() + 1).ok()?;
            if part != expected
                || !copied
                || psize == 0
                || offset != next_offset
                || parts.last().is_some_and(|p| p.disc > disc)
            {
                return None;
            }
            next_offset = next_offset.checked_add(psize)?;
            if next_offset > size {
                return None;
            }
            parts.push(PartRow {
                part,
                disc,
                offset,
                size: psize,
                md5,
            });
        }
        (next_offset == size && !parts.is_empty()).then_some(parts)
    }

    /// Every recorded part of a split version on disc `disc`, whatever the
    /// version's state, in (file, part) order, and the count of invalid
    /// rows left out.
    pub fn disc_parts(&self, disc: i64) -> Result<(Vec<DiscPart>, u64)> {
        if !self.has_parts {
            return Ok((Vec::new(), 0));
        }
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT p.file_id, f.filename, s.state, p.part, p.offset, p.size, p.md5
                 FROM parts p JOIN files f ON f.id = p.file_id
                 LEFT JOIN splits s ON s.file_id = p.file_id
                 WHERE p.disc_id=?1 AND p.copied=1 ORDER BY p.file_id, p.part",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([disc]).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        let mut invalid = 0;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let row = (|| {
                let int = |i: usize| match r.get_ref(i) {
                    Ok(ValueRef::Integer(v)) => Some(v),
                    _ => None,
                };
                let md5 = match r.get_ref(6).ok()? {
                    ValueRef::Text(t) => md5_text(t)?,
                    _ => return None,
                };
                let state = match r.get_ref(2).ok()? {
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    _ => return None,
                };
                Some(DiscPart {
                    file_id: int(0)?,
                    name: names::from_sql(r.get_ref(1).ok()?)?,
                    state,
                    part: PartRow {
                        part: u32::try_from(int(3)?).ok()?,
                        disc,
                        offset: u64::try_from(int(4)?).ok()?,
                        size: u64::try_from(int(5)?).ok()?,
                        md5,
                    },
                })
            })();
            match row {
                Some(p) => out.push(p),
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
            .conn()
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

    /// `PRAGMA integrity_check`: `Ok(())` or what it found.
    pub fn integrity_check(&self) -> std::result::Result<(), String> {
        let mut stmt = self
            .conn()
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

    proptest::proptest! {
        /// The table-driven check is the plain rule: 32 ASCII hex digits,
        /// of either case, given back lower-cased; anything else is none.
        #[test]
        fn md5_text_is_32_hex_digits_lower_cased(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(b"0123456789abcdefABCDEF".to_vec()),
                    proptest::num::u8::ANY,
                ],
                30..34,
            )
        ) {
            let plain = (bytes.len() == 32 && bytes.iter().all(u8::is_ascii_hexdigit))
                .then(|| String::from_utf8(bytes.to_ascii_lowercase()).unwrap());
            proptest::prop_assert_eq!(md5_text(&bytes), plain);
        }
    }

    #[test]
    fn md5_text_takes_each_case_and_refuses_the_rest() {
        let hex = "0123456789abcdef0123456789ABCDEF";
        assert_eq!(md5_text(hex.as_bytes()).unwrap(), hex.to_ascii_lowercase());
        for bad in [
            "",
            "0123456789abcdef0123456789abcdeg",
            "0123456789abcdef0123456789abcde",
        ] {
            assert_eq!(md5_text(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(text_lossy(b"caf\xc3\xa9 \xff"), "café \u{fffd}");
    }

    /// The work budget ends a statement that never would, with a clear
    /// error, and leaves the next statement its own budget.
    #[test]
    fn endless_statements_are_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE discs(id INTEGER PRIMARY KEY, started, completed, available);
                 CREATE TABLE files(id INTEGER PRIMARY KEY, filename, timestamp, md5, size,
                                    mtime, disc_id, desc, copied);
                 INSERT INTO discs VALUES (1, 1.0, 2.0, 1);",
            )
            .unwrap();
        let m = Manifest::open(&path).unwrap();
        let start = std::time::Instant::now();
        let endless = m
            .conn()
            .query_row(
                "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)
                 SELECT count(*) FROM r",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_err();
        assert!(start.elapsed() < std::time::Duration::from_secs(60));
        let e = m.err(endless).to_string();
        assert!(e.contains("crafted or damaged"), "{e}");
        assert_eq!(m.discs().unwrap().len(), 1);
    }

    /// A split version is read only with exactly one `complete` row in
    /// `splits` and sound parts; a crafted second row makes it no backup.
    #[test]
    fn a_split_version_needs_one_complete_state_and_sound_parts() {
        let versions = |extra: &str| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("manifest.db");
            let md5 = "0123456789abcdef0123456789abcdef";
            Connection::open(&path)
                .unwrap()
                .execute_batch(&format!(
                    "CREATE TABLE discs(id INTEGER PRIMARY KEY, started, completed, available);
                     CREATE TABLE files(id INTEGER PRIMARY KEY, filename, timestamp, md5, size,
                                        mtime, disc_id, desc, copied);
                     CREATE TABLE splits(file_id, state, why);
                     CREATE TABLE parts(file_id, part, disc_id, offset, size, md5, copied);
                     INSERT INTO discs VALUES (1, 1.0, 2.0, 1), (2, 3.0, 4.0, 1);
                     INSERT INTO files VALUES (7, '/v', 1.0, '{md5}', 10, 1.0, NULL, 'New file', 1);
                     INSERT INTO splits VALUES (7, 'complete', NULL);
                     INSERT INTO parts VALUES (7, 1, 1, 0, 6, '{md5}', 1), (7, 2, 2, 6, 4, '{md5}', 1);
                     {extra}"
                ))
                .unwrap();
            let m = Manifest::open(&path).unwrap();
            let mut out = Vec::new();
            let invalid = m.for_each_version(&mut |v| out.push(v)).unwrap();
            (out, invalid)
        };
        let (sound, invalid) = versions("");
        assert_eq!(invalid, 0);
        assert_eq!(sound.len(), 1);
        assert_eq!(sound[0].discs(), vec![1, 2]);
        for crafted in [
            "INSERT INTO splits VALUES (7, 'abandoned', NULL);",
            "INSERT INTO splits VALUES (7, 'complete', NULL);",
            "UPDATE parts SET offset=5 WHERE part=2;",
            "UPDATE parts SET disc_id=0 WHERE part=2;",
            "UPDATE parts SET part=3 WHERE part=2;",
            "UPDATE parts SET size=5 WHERE part=2;",
            "INSERT INTO parts VALUES (7, 3, 2, 10, 1, '0123456789abcdef0123456789abcdef', 1);",
            "UPDATE splits SET state='staging';",
        ] {
            let (out, invalid) = versions(crafted);
            assert!(out.is_empty(), "{crafted}");
            assert_eq!(invalid, 1, "{crafted}");
        }
    }

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
