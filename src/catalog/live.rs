//! The live index: the latest backed-up version of every file the scan
//! compares against, keyed by a hash of its name, and how stored mtimes
//! compare with a file's.

use rusqlite::types::ValueRef;

use super::Catalog;
use crate::error::Result;
use crate::names;

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

pub(super) fn split_key(key: u128) -> [u64; 2] {
    [(key >> 64) as u64, key as u64]
}

impl LiveIndex {
    /// The index of `entries`, which must be sorted by key.
    pub(super) fn new(entries: Vec<([u64; 2], LiveEntry)>) -> LiveIndex {
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

impl Catalog {
    /// The latest backed-up version of every file not recorded as deleted
    /// since, keyed by [`name_key`].
    pub fn live_index(&self) -> Result<LiveIndex> {
        let count: i64 = self
            .conn
            .query_row("SELECT count(*) FROM files WHERE copied=1", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))?;
        let whole_through = self.whole_second_mtimes_through()?;
        let mut entries: Vec<([u64; 2], LiveEntry)> =
            Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        // With attrs, a version's exact mtime is what the scan compares.
        let sql = if self.has_tree_tables()? {
            "SELECT f.id, f.filename, f.size, f.mtime, a.mtime_sec, a.mtime_nsec
             FROM files f LEFT JOIN attrs a ON a.file_id = f.id WHERE f.copied=1 ORDER BY f.id"
        } else {
            "SELECT id, filename, size, mtime, NULL, NULL FROM files WHERE copied=1 ORDER BY id"
        };
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
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
            // The rule comes from the row's id, never from how SQLite
            // stored the value: our REAL mtime of a whole second is stored
            // as an INTEGER, and must still compare to the sub-second.
            let exact = match (
                row.get_ref(4).map_err(|e| self.err(e))?.as_i64().ok(),
                row.get_ref(5).map_err(|e| self.err(e))?.as_i64().ok(),
            ) {
                (Some(s), Some(n)) if (0..1_000_000_000).contains(&n) => {
                    Some(Mtime::Exact(s, n as u32))
                }
                _ => None,
            };
            let stored = match row.get_ref(3).map_err(|e| self.err(e))? {
                ValueRef::Integer(i) if id <= whole_through => Mtime::Whole(i),
                ValueRef::Real(f) if id <= whole_through => Mtime::Whole(f.floor() as i64),
                ValueRef::Integer(i) => Mtime::Real(i as f64),
                ValueRef::Real(f) => Mtime::Real(f),
                _ => Mtime::Real(f64::NAN),
            };
            // An adopted row compares at whole seconds, whatever it holds.
            let mtime = match exact {
                Some(e) if id > whole_through => e,
                _ => stored,
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
