//! The live files: the latest backed-up version of every file the scan
//! compares against, streamed in name order, and how stored mtimes compare
//! with a file's.

use std::cmp::Ordering;
use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::Catalog;
use crate::error::{Error, Result};

/// The latest backed-up version of a live file, as the scan needs it.
#[derive(Debug, Clone, Copy)]
pub struct LiveEntry {
    pub id: i64,
    pub size: u64,
    pub mtime: Mtime,
}

/// A recorded modification time with the rule it is compared by: REAL
/// seconds (ours, equal only to the same `f64`, about 0.24 µs near today's
/// times) or whole seconds (the original's `int(st_mtime)`, for the rows a
/// set adopted: see [`Catalog::whole_second_mtimes_through`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mtime {
    Real(f64),
    Whole(i64),
    /// Seconds and nanoseconds exactly (a version with `attrs`).
    Exact(i64, u32),
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
            Mtime::Exact(s, n) => s == secs && i64::from(n) == nanos,
        }
    }

    /// A row's stored `files.mtime` with its rule: whole seconds for a row
    /// a set adopted (`id <= whole_through`), REAL seconds for ours. The
    /// rule comes from the row's id, never from how SQLite stored the
    /// value: our REAL mtime of a whole second is stored as an INTEGER and
    /// must still compare to the sub-second. Anything else never matches.
    pub fn stored(value: ValueRef<'_>, id: i64, whole_through: i64) -> Mtime {
        match value {
            ValueRef::Integer(i) if id <= whole_through => Mtime::Whole(i),
            ValueRef::Real(f) if id <= whole_through => Mtime::Whole(f.floor() as i64),
            ValueRef::Integer(i) => Mtime::Real(i as f64),
            ValueRef::Real(f) => Mtime::Real(f),
            _ => Mtime::Real(f64::NAN),
        }
    }

    /// As fractional seconds, for display.
    pub fn as_f64(&self) -> f64 {
        match *self {
            Mtime::Real(f) => f,
            Mtime::Whole(w) => w as f64,
            Mtime::Exact(s, n) => Mtime::from_parts(s, i64::from(n)),
        }
    }

    /// For display: seconds with the fraction it has (nanoseconds when
    /// exact, microseconds otherwise), trailing zeros trimmed.
    pub fn display(&self) -> String {
        let s = match *self {
            Mtime::Exact(s, n) => format!("{s}.{n:09}"),
            other => format!("{:.6}", other.as_f64()),
        };
        let s = s.trim_end_matches('0');
        s.trim_end_matches('.').to_string()
    }
}

/// The key of a name in the maps that stay small (splits in progress,
/// folders and links).
pub fn name_key(name: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(name)
}

pub(super) fn split_key(key: u128) -> [u64; 2] {
    [(key >> 64) as u64, key as u64]
}

/// Rows read from the catalogue at a time, per stream.
const CHUNK: usize = 2048;

/// The latest backed-up version of every live file, read from the
/// catalogue in name (byte) order as the walk asks for the names in that
/// same order: a merge of two sorted streams, so memory stays flat at any
/// number of files (a chunk of rows at a time, plus the ids of the files
/// found gone, 8 bytes each).
///
/// Each stream pages through the `filenames` index: SQLite sorts every
/// TEXT before every BLOB, so names stored as text (ours, when valid
/// UTF-8) and as blobs (ours when not, and some adopted ones) come as two
/// ordered streams, merged here by their bytes. It reads on a connection
/// of its own, so the run writes on its own as it goes; what it writes
/// never reaches the streams: rows are read only up to the largest id at
/// the start, and only past the name the walk has reached, where the run
/// has written nothing yet.
pub struct LiveFiles {
    conn: Connection,
    path: PathBuf,
    max_id: i64,
    whole_through: i64,
    with_attrs: bool,
    /// Rows per chunk ([`CHUNK`]; smaller in tests, to cross chunks).
    chunk: usize,
    streams: [Stream; 2],
    last: Option<Vec<u8>>,
    unseen: Vec<i64>,
    /// Found by a lookup out of name order (after its stream passed it).
    seen_late: HashSet<i64>,
}

/// One name's latest backed-up version as a stream holds it; a deleted one
/// is kept so that it hides an older version in the other stream.
#[derive(Debug, Clone)]
struct Head {
    name: Vec<u8>,
    entry: LiveEntry,
    gone: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Storage {
    Text,
    Blob,
}

struct Stream {
    storage: Storage,
    buf: VecDeque<Head>,
    /// The last name read, where the next chunk starts (after it).
    after: Option<Vec<u8>>,
    ended: bool,
}

impl Stream {
    fn new(storage: Storage) -> Stream {
        Stream {
            storage,
            buf: VecDeque::new(),
            after: None,
            ended: false,
        }
    }
}

/// A name bound as it is stored: as TEXT (its bytes as they are, even
/// when not valid UTF-8, as an adopted catalogue may hold) or as a BLOB.
struct Stored<'a>(Storage, &'a [u8]);

impl rusqlite::ToSql for Stored<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match self.0 {
            Storage::Text => ValueRef::Text(self.1),
            Storage::Blob => ValueRef::Blob(self.1),
        }))
    }
}

/// The columns every query reads: name, id, size, mtime, exact mtime,
/// whether a deletion follows this version.
fn columns(with_attrs: bool) -> &'static str {
    if with_attrs {
        "f.filename, f.id, f.size, f.mtime, a.mtime_sec, a.mtime_nsec,
         EXISTS(SELECT 1 FROM deletions d WHERE d.filename = f.filename COLLATE BINARY AND d.file_id = f.id)
         FROM files f INDEXED BY filenames LEFT JOIN attrs a ON a.file_id = f.id"
    } else {
        "f.filename, f.id, f.size, f.mtime, NULL, NULL,
         EXISTS(SELECT 1 FROM deletions d WHERE d.filename = f.filename COLLATE BINARY AND d.file_id = f.id)
         FROM files f INDEXED BY filenames"
    }
}

/// The query of a stream's next chunk: `?1` the largest id read, `?2` the
/// rows, `?3` the name it starts after (when `after`).
/// Names compare by their bytes (BINARY) even in a `files` table whose
/// column was given another collation by hand.
fn chunk_sql(storage: Storage, after: bool, with_attrs: bool) -> String {
    let range = match (storage, after) {
        (Storage::Text, false) => {
            "f.filename COLLATE BINARY >= '' AND f.filename COLLATE BINARY < x''"
        }
        (Storage::Text, true) => {
            "f.filename COLLATE BINARY > ?3 AND f.filename COLLATE BINARY < x''"
        }
        (Storage::Blob, false) => "f.filename COLLATE BINARY >= x''",
        (Storage::Blob, true) => "f.filename COLLATE BINARY > ?3",
    };
    format!(
        "SELECT {} WHERE f.copied = 1 AND f.id <= ?1 AND {range} ORDER BY f.filename COLLATE BINARY LIMIT ?2",
        columns(with_attrs)
    )
}

impl LiveFiles {
    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The latest version of `name` if the file is live. Names must come in
    /// increasing byte order (the walk's order); one that does not is looked
    /// up on its own, and still counts as seen.
    pub fn lookup(&mut self, name: &[u8]) -> Result<Option<LiveEntry>> {
        if self.last.as_deref().is_some_and(|last| name <= last) {
            let found = self.point(name)?.filter(|h| !h.gone).map(|h| h.entry);
            if let Some(e) = found {
                self.seen_late.insert(e.id);
            }
            return Ok(found);
        }
        // One buffer for the walk's position: no allocation per file.
        let last = self.last.get_or_insert_with(Vec::new);
        last.clear();
        last.extend_from_slice(name);
        // Bounded by the rows: each turn takes one head off a stream.
        loop {
            let Some(head) = self.next_head(Some(name))? else {
                return Ok(None);
            };
            match head.name.as_slice().cmp(name) {
                Ordering::Less => {
                    if !head.gone {
                        self.unseen.push(head.entry.id);
                    }
                }
                Ordering::Equal => return Ok((!head.gone).then_some(head.entry)),
                Ordering::Greater => unreachable!("next_head returns no name past the bound"),
            }
        }
    }

    /// The ids of the live files that no lookup asked for, in name order:
    /// the files gone from the watched folder (or not walked).
    pub fn finish(mut self) -> Result<Vec<i64>> {
        // Bounded by the rows left.
        while let Some(head) = self.next_head(None)? {
            if !head.gone {
                self.unseen.push(head.entry.id);
            }
        }
        let late = std::mem::take(&mut self.seen_late);
        let mut unseen = std::mem::take(&mut self.unseen);
        if !late.is_empty() {
            unseen.retain(|id| !late.contains(id));
        }
        Ok(unseen)
    }

    /// Takes off the smallest name of both streams (merging a name that
    /// both hold: the later version wins), if it is at most `bound`.
    fn next_head(&mut self, bound: Option<&[u8]>) -> Result<Option<Head>> {
        for i in 0..2 {
            if self.streams[i].buf.is_empty() && !self.streams[i].ended {
                self.fill(i)?;
            }
        }
        let pick = match (self.streams[0].buf.front(), self.streams[1].buf.front()) {
            (None, None) => return Ok(None),
            (Some(_), None) => 0,
            (None, Some(_)) => 1,
            (Some(t), Some(b)) => match t.name.cmp(&b.name) {
                Ordering::Less => 0,
                Ordering::Greater => 1,
                Ordering::Equal => {
                    let older = if t.entry.id < b.entry.id { 0 } else { 1 };
                    self.streams[older].buf.pop_front();
                    1 - older
                }
            },
        };
        let front = self.streams[pick]
            .buf
            .front()
            .expect("picked a stream with a head");
        if bound.is_some_and(|b| front.name.as_slice() > b) {
            return Ok(None);
        }
        let head = self.streams[pick].buf.pop_front();
        // A name that both streams hold is merged only when both fronts are
        // there: refill the other before a later call compares.
        Ok(head)
    }

    /// Reads the next chunk of stream `i`.
    fn fill(&mut self, i: usize) -> Result<()> {
        let storage = self.streams[i].storage;
        let sql = chunk_sql(storage, self.streams[i].after.is_some(), self.with_attrs);
        let after = self.streams[i].after.as_deref().map(|a| Stored(storage, a));
        let chunk = self.chunk;
        let mut rows: Vec<Option<(Vec<u8>, LiveEntry, bool)>> = Vec::with_capacity(chunk);
        {
            let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
            let mut q = match &after {
                Some(a) => stmt.query(params![self.max_id, chunk as i64, a]),
                None => stmt.query(params![self.max_id, chunk as i64]),
            }
            .map_err(|e| self.err(e))?;
            while let Some(row) = q.next().map_err(|e| self.err(e))? {
                // A name that is neither text nor blob (none is, in these
                // ranges) is counted, so a full chunk is seen full.
                rows.push(read_row(row, self.whole_through).map_err(|e| self.err(e))?);
            }
        }
        let full = rows.len() == chunk;
        let stream = &mut self.streams[i];
        // A name's rows are together; the one of the largest id is its
        // latest version (SQLite does not promise their order among them).
        // An empty name is a name like any other: the walk never asks for
        // it, so it comes back unseen.
        for (name, entry, gone) in rows.into_iter().flatten() {
            match stream.buf.back_mut() {
                Some(h) if h.name == name => {
                    if entry.id > h.entry.id {
                        h.entry = entry;
                        h.gone = gone;
                    }
                }
                _ => stream.buf.push_back(Head { name, entry, gone }),
            }
        }
        if full && stream.buf.is_empty() {
            // No name to start the next chunk after: nothing more can be
            // read in order (never met: every row in range has a name).
            stream.ended = true;
        }
        if !full {
            stream.ended = true;
        }
        let Some(last) = stream.buf.back().map(|h| h.name.clone()) else {
            return Ok(());
        };
        stream.after = Some(last.clone());
        if full {
            // The chunk may have stopped inside the last name's versions.
            let latest = self.point_in(storage, &last)?;
            let stream = &mut self.streams[i];
            match latest {
                Some(h) => *stream.buf.back_mut().expect("a last name") = h,
                None => {
                    stream.buf.pop_back();
                }
            }
        }
        Ok(())
    }

    /// The latest version of `name`, stored either way.
    fn point(&self, name: &[u8]) -> Result<Option<Head>> {
        let t = self.point_in(Storage::Text, name)?;
        let b = self.point_in(Storage::Blob, name)?;
        Ok(match (t, b) {
            (Some(t), Some(b)) => Some(if t.entry.id > b.entry.id { t } else { b }),
            (t, b) => t.or(b),
        })
    }

    fn point_in(&self, storage: Storage, name: &[u8]) -> Result<Option<Head>> {
        let sql = format!(
            "SELECT {} WHERE f.copied = 1 AND f.id <= ?1 AND f.filename COLLATE BINARY = ?2
             ORDER BY f.id DESC LIMIT 1",
            columns(self.with_attrs)
        );
        let value = Stored(storage, name);
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let mut q = stmt
            .query(params![self.max_id, value])
            .map_err(|e| self.err(e))?;
        let Some(row) = q.next().map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        Ok(read_row(row, self.whole_through)
            .map_err(|e| self.err(e))?
            .map(|(name, entry, gone)| Head { name, entry, gone }))
    }
}

/// One row of [`columns`]: the name's bytes, the version as the scan
/// compares it, and whether it was recorded deleted; `None` for a name that
/// is neither text nor blob.
fn read_row(
    row: &rusqlite::Row<'_>,
    whole_through: i64,
) -> rusqlite::Result<Option<(Vec<u8>, LiveEntry, bool)>> {
    let name = match row.get_ref(0)? {
        ValueRef::Text(b) | ValueRef::Blob(b) => b.to_vec(),
        _ => return Ok(None),
    };
    let id: i64 = row.get(1)?;
    let size = row.get_ref(2)?.as_i64().unwrap_or(-1);
    // The rule comes from the row's id, never from how SQLite stored the
    // value: our REAL mtime of a whole second is stored as an INTEGER, and
    // must still compare to the sub-second.
    let exact = match (row.get_ref(4)?.as_i64().ok(), row.get_ref(5)?.as_i64().ok()) {
        (Some(s), Some(n)) if (0..1_000_000_000).contains(&n) => Some(Mtime::Exact(s, n as u32)),
        _ => None,
    };
    let stored = Mtime::stored(row.get_ref(3)?, id, whole_through);
    // An adopted row compares at whole seconds, whatever it holds.
    let mtime = match exact {
        Some(e) if id > whole_through => e,
        _ => stored,
    };
    let gone = row.get::<_, i64>(6)? != 0;
    Ok(Some((
        name,
        LiveEntry {
            id,
            // An impossible size makes the file look changed, so a damaged
            // row is backed up again rather than trusted.
            size: u64::try_from(size).unwrap_or(u64::MAX),
            mtime,
        },
        gone,
    )))
}

impl Catalog {
    /// Whether index `index` exists and begins with column `column` in byte
    /// order (BINARY).
    fn index_in_byte_order(&self, index: &str, column: &str) -> Result<bool> {
        let first: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT name, coll FROM pragma_index_xinfo(?1) WHERE seqno = 0",
                [index],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                        r.get(1)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(matches!(first, Some((col, coll))
            if col == column && coll.eq_ignore_ascii_case("BINARY")))
    }

    /// The streams need the index `filenames` to begin with `filename` in
    /// byte order (BINARY), and the catalogue's text in UTF-8, the only
    /// encoding whose order is that of the names' bytes (UTF-16 text sorts
    /// by its own bytes); each row's deletion is looked up through
    /// `deletions_filename`, without which every row reads every deletion.
    /// A catalogue edited by hand may lack any of them.
    fn check_name_index(&self) -> Result<()> {
        let corrupt = |why: String| Error::Corrupt {
            path: self.path.clone(),
            why,
        };
        let encoding: String = self
            .conn
            .query_row("PRAGMA encoding", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if !encoding.eq_ignore_ascii_case("UTF-8") {
            return Err(corrupt(format!(
                "its text is in {encoding}, whose order is not that of the names' bytes \
                 (rebuild it in UTF-8: sqlite3 manifest.db .dump | sqlite3 new.db)"
            )));
        }
        if !self.index_in_byte_order("filenames", "filename")? {
            return Err(corrupt(
                "the index filenames is missing or not on filename in byte order \
                 (recreate it: CREATE INDEX filenames ON files(filename, copied))"
                    .into(),
            ));
        }
        if !self.index_in_byte_order("deletions_filename", "filename")? {
            return Err(corrupt(
                "the index deletions_filename is missing or not on filename in byte order \
                 (recreate it: CREATE INDEX deletions_filename ON deletions(filename))"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The live files, to be looked up in name order (see [`LiveFiles`]).
    pub fn live_files(&self) -> Result<LiveFiles> {
        let max_id: i64 = self
            .conn
            .query_row("SELECT coalesce(max(id), 0) FROM files", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let whole_through = self.whole_second_mtimes_through()?;
        let with_attrs = self.has_tree_tables()?;
        self.check_name_index()?;
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| self.err(e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| self.err(e))?;
        Ok(LiveFiles {
            conn,
            path: self.path.clone(),
            max_id,
            whole_through,
            with_attrs,
            chunk: CHUNK,
            streams: [Stream::new(Storage::Text), Stream::new(Storage::Blob)],
            last: None,
            unseen: Vec::new(),
            seen_late: HashSet::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::catalog::Settings;

    fn catalogue(dir: &std::path::Path) -> Catalog {
        let settings = Settings {
            watched: dir.join("w"),
            disc_size: 1 << 30,
            excludes: Vec::new(),
            uuid: "u".into(),
            name: "n".into(),
            ecc: false,
        };
        Catalog::create(&dir.join("manifest.db"), &settings).unwrap()
    }

    /// A version of a name: stored as a blob or not, copied or not,
    /// deleted after or not.
    #[derive(Debug, Clone)]
    struct Version {
        name: Vec<u8>,
        blob: bool,
        copied: bool,
        deleted: bool,
    }

    fn insert(cat: &Catalog, versions: &[Version]) {
        for (i, v) in versions.iter().enumerate() {
            let id = i as i64 + 1;
            let name: rusqlite::types::Value = if v.blob {
                rusqlite::types::Value::Blob(v.name.clone())
            } else {
                // As TEXT even when not UTF-8, as an adopted set may hold.
                rusqlite::types::Value::Text(unsafe { String::from_utf8_unchecked(v.name.clone()) })
            };
            cat.conn
                .execute(
                    "INSERT INTO files(id, filename, size, mtime, disc_id, copied)
                     VALUES (?1, ?2, ?3, 1.5, 1, ?4)",
                    params![id, name, id * 10, v.copied],
                )
                .unwrap();
            if v.deleted {
                cat.conn
                    .execute(
                        "INSERT INTO deletions(filename, deleted, file_id)
                         SELECT filename, 2.0, id FROM files WHERE id=?1",
                        [id],
                    )
                    .unwrap();
            }
        }
    }

    /// The latest copied version of each name, by its bytes, if live.
    fn model(versions: &[Version]) -> BTreeMap<Vec<u8>, i64> {
        let mut latest: BTreeMap<Vec<u8>, (i64, bool)> = BTreeMap::new();
        for (i, v) in versions.iter().enumerate() {
            if v.copied {
                latest.insert(v.name.clone(), (i as i64 + 1, v.deleted));
            }
        }
        latest
            .into_iter()
            .filter(|(_, (_, gone))| !gone)
            .map(|(n, (id, _))| (n, id))
            .collect()
    }

    fn name() -> impl Strategy<Value = Vec<u8>> {
        // Few distinct bytes, so names share prefixes and repeat; bytes
        // around `/`, high bytes that are not UTF-8.
        proptest::collection::vec(
            prop_oneof![
                Just(b'/'),
                Just(b'-'),
                Just(b'0'),
                Just(b'a'),
                Just(0xffu8),
                Just(0xc3u8)
            ],
            1..5,
        )
        .prop_map(|mut n| {
            // Some names empty (no name dbackup writes, but a catalogue
            // edited by hand may hold them), the rest from the top.
            if n.len() == 4 && n[0] == b'0' {
                return Vec::new();
            }
            n.insert(0, b'/');
            n
        })
    }

    fn version() -> impl Strategy<Value = Version> {
        (
            name(),
            any::<bool>(),
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.2),
        )
            .prop_map(|(name, blob, copied, deleted)| Version {
                name,
                blob,
                copied,
                deleted,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Looking up any names in order (and a few out of order), at any
        /// chunk size, finds exactly the model's live versions, and what
        /// was not looked up comes back unseen, each once.
        #[test]
        fn lookups_and_unseen_match_the_model(
            versions in proptest::collection::vec(version(), 0..60),
            asked in proptest::collection::vec(name(), 0..30),
            late in proptest::collection::vec(name(), 0..3),
            chunk in 1usize..6,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let cat = catalogue(dir.path());
            insert(&cat, &versions);
            let live_model = model(&versions);
            let mut asked: Vec<Vec<u8>> = asked;
            asked.sort();
            asked.dedup();
            let mut live = cat.live_files().unwrap();
            live.chunk = chunk;
            let mut looked = std::collections::BTreeSet::new();
            for n in &asked {
                let got = live.lookup(n).unwrap().map(|e| e.id);
                prop_assert_eq!(got, live_model.get(n).copied(), "lookup of {:?}", n);
                looked.insert(n.clone());
            }
            for n in &late {
                let got = live.lookup(n).unwrap().map(|e| e.id);
                prop_assert_eq!(got, live_model.get(n).copied(), "late lookup of {:?}", n);
                looked.insert(n.clone());
            }
            let unseen = live.finish().unwrap();
            let want: Vec<i64> = live_model
                .iter()
                .filter(|(n, _)| !looked.contains(*n))
                .map(|(_, id)| *id)
                .collect();
            let mut got = unseen.clone();
            got.sort_unstable();
            let mut want_sorted = want.clone();
            want_sorted.sort_unstable();
            prop_assert_eq!(got, want_sorted);
        }
    }

    #[test]
    fn a_name_index_in_another_order_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cat = catalogue(dir.path());
        assert!(cat.live_files().is_ok());
        cat.conn
            .execute_batch(
                "DROP INDEX filenames;
                 CREATE INDEX filenames ON files(filename COLLATE NOCASE, copied);",
            )
            .unwrap();
        let err = cat.live_files().err().expect("refused").to_string();
        assert!(err.contains("index filenames"), "{err}");
        cat.conn.execute_batch("DROP INDEX filenames;").unwrap();
        assert!(cat.live_files().is_err());
    }

    #[test]
    fn rows_written_after_the_start_are_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let cat = catalogue(dir.path());
        let v = |n: &[u8]| Version {
            name: n.to_vec(),
            blob: false,
            copied: true,
            deleted: false,
        };
        insert(&cat, &[v(b"/a"), v(b"/c")]);
        let mut live = cat.live_files().unwrap();
        live.chunk = 1;
        assert_eq!(live.lookup(b"/a").unwrap().map(|e| e.id), Some(1));
        // The run stages /b (a new name behind the walk) and /d (ahead).
        cat.conn
            .execute_batch(
                "INSERT INTO files(id, filename, size, mtime, disc_id, copied)
                 VALUES (3, '/b', 1, 1.0, 1, 1), (4, '/d', 1, 1.0, 1, 1)",
            )
            .unwrap();
        assert_eq!(live.lookup(b"/c").unwrap().map(|e| e.id), Some(2));
        assert_eq!(live.lookup(b"/d").unwrap().map(|e| e.id), None);
        assert_eq!(live.finish().unwrap(), Vec::<i64>::new());
    }

    #[test]
    fn the_streams_read_the_index_in_order_without_sorting() {
        let dir = tempfile::tempdir().unwrap();
        let cat = catalogue(dir.path());
        for with_attrs in [true, false] {
            for (storage, after) in [
                (Storage::Text, false),
                (Storage::Text, true),
                (Storage::Blob, false),
                (Storage::Blob, true),
            ] {
                let sql = format!(
                    "EXPLAIN QUERY PLAN {}",
                    chunk_sql(storage, after, with_attrs)
                );
                let mut stmt = cat.conn.prepare(&sql).unwrap();
                let get = |r: &rusqlite::Row<'_>| r.get::<_, String>(3);
                let plan: Vec<String> = if after {
                    stmt.query_map(params![1, 1, "x"], get)
                } else {
                    stmt.query_map(params![1, 1], get)
                }
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
                let plan = plan.join("\n");
                assert!(plan.contains("USING INDEX filenames"), "{plan}");
                assert!(!plan.contains("TEMP B-TREE"), "{plan}");
            }
        }
    }
}
