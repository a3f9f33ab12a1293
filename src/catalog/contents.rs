//! What a disc holds, summed by top folder, and what the set took in month
//! by month: the figures a status page and a disc label show.

use std::collections::HashMap;

use super::Catalog;
use crate::error::Result;
use crate::names;

/// Files of one disc under one folder of the watched folder's top level.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Folder {
    /// The top folder's name as stored (bytes, no `/`); empty for files
    /// directly in the watched folder.
    #[serde(serialize_with = "names::serialize_lossy")]
    pub name: Vec<u8>,
    pub files: u64,
    pub bytes: u64,
}

/// What one disc holds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DiscContents {
    /// Files (a part of a split version counts as one) and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// The oldest and newest modification time of its files (Unix seconds).
    pub oldest_mtime: Option<f64>,
    pub newest_mtime: Option<f64>,
    /// Every top folder it holds files of, most bytes first (then by name).
    pub folders: Vec<Folder>,
}

/// What the set took in during one calendar month (UTC).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Month {
    /// `2026-11`.
    pub month: String,
    /// Versions staged and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Discs closed.
    pub discs_closed: u64,
}

/// The top folder of a catalogue name (`/a/b/c` -> `a`; `/c` -> empty).
pub fn top_folder(name: &[u8]) -> &[u8] {
    let rest = name.strip_prefix(b"/").unwrap_or(name);
    match memchr::memchr(b'/', rest) {
        Some(i) => &rest[..i],
        None => b"",
    }
}

impl Catalog {
    /// What disc `id` holds: its backed-up files and the recorded parts of
    /// split versions on it, as [`Catalog::disc_files`] lists them. One
    /// query over the disc's rows (index `files_disc`); memory grows with
    /// its top folders only.
    pub fn disc_contents(&self, id: i64) -> Result<DiscContents> {
        let mut out = DiscContents::default();
        let mut folders: HashMap<Vec<u8>, (u64, u64)> = HashMap::new();
        let mut add = |name: &[u8], size: u64, mtime: Option<f64>| {
            out.files += 1;
            out.bytes += size;
            if let Some(t) = mtime.filter(|t| t.is_finite()) {
                out.oldest_mtime = Some(out.oldest_mtime.map_or(t, |o: f64| o.min(t)));
                out.newest_mtime = Some(out.newest_mtime.map_or(t, |o: f64| o.max(t)));
            }
            let e = folders.entry(top_folder(name).to_vec()).or_default();
            e.0 += 1;
            e.1 += size;
        };
        let mut each = |sql: &str| -> Result<()> {
            let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
            let mut rows = stmt.query([id]).map_err(|e| self.err(e))?;
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                let name =
                    names::from_sql(r.get_ref(0).map_err(|e| self.err(e))?).unwrap_or_default();
                let size = r
                    .get::<_, Option<i64>>(1)
                    .ok()
                    .flatten()
                    .unwrap_or(0)
                    .max(0) as u64;
                let mtime = r.get::<_, Option<f64>>(2).ok().flatten();
                add(&name, size, mtime);
            }
            Ok(())
        };
        each("SELECT filename, size, mtime FROM files WHERE disc_id=?1 AND copied=1")?;
        if self.has_split_tables()? {
            each(
                "SELECT f.filename, p.size, f.mtime FROM parts p JOIN files f ON f.id = p.file_id
                 WHERE p.disc_id=?1 AND p.copied=1",
            )?;
        }
        let mut folders: Vec<Folder> = folders
            .into_iter()
            .map(|(name, (files, bytes))| Folder { name, files, bytes })
            .collect();
        folders.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
        out.folders = folders;
        Ok(out)
    }

    /// Versions staged and discs closed per calendar month (UTC), oldest
    /// first; months with neither are left out. Two grouped queries.
    pub fn months(&self) -> Result<Vec<Month>> {
        let mut by: std::collections::BTreeMap<String, Month> = Default::default();
        let month = |m: &str| Month {
            month: m.to_string(),
            files: 0,
            bytes: 0,
            discs_closed: 0,
        };
        for (m, files, bytes) in self.query_all(
            "SELECT strftime('%Y-%m', timestamp, 'unixepoch') AS m, count(*), coalesce(sum(size),0)
             FROM files WHERE copied=1 AND typeof(timestamp) IN ('integer','real')
             GROUP BY m HAVING m IS NOT NULL",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )? {
            let e = by.entry(m.clone()).or_insert_with(|| month(&m));
            e.files = files.max(0) as u64;
            e.bytes = bytes.max(0) as u64;
        }
        for (m, discs) in self.query_all(
            "SELECT strftime('%Y-%m', completed, 'unixepoch') AS m, count(*)
             FROM discs WHERE typeof(completed) IN ('integer','real')
             GROUP BY m HAVING m IS NOT NULL",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )? {
            by.entry(m.clone())
                .or_insert_with(|| month(&m))
                .discs_closed = discs.max(0) as u64;
        }
        Ok(by.into_values().collect())
    }
}

/// What [`Catalog::for_each_backed_up`] calls: (id, name, disc).
pub type BackedUp<'a> = dyn FnMut(i64, &[u8], Option<i64>) + 'a;

impl Catalog {
    /// Opens a read transaction: every read after it, until the catalogue
    /// is closed, sees the catalogue as it is at the first of them (WAL
    /// keeps that snapshot while others write), so two passes over the
    /// names see the same names. Only for a catalogue opened to be read.
    pub fn begin_snapshot(&self) -> Result<()> {
        if self.conn.is_autocommit() {
            self.conn
                .execute_batch("BEGIN DEFERRED")
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Calls `f(id, name, disc)` for every backed-up version in name order
    /// (then id, as the index holds the rowid), in one pass through the
    /// `filenames` index with no sort; `disc` is `None` for a split version
    /// (its discs are in [`Catalog::part_discs`]).
    pub fn for_each_backed_up(&self, f: &mut BackedUp<'_>) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, filename, disc_id FROM files WHERE copied=1 ORDER BY filename")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let Ok(id) = r.get::<_, i64>(0) else { continue };
            // The name as SQLite holds it, not copied.
            let Some(name) = r.get_ref(1).ok().and_then(names::bytes_of) else {
                continue;
            };
            let disc = r.get::<_, Option<i64>>(2).ok().flatten();
            f(id, name, disc);
        }
        Ok(())
    }

    /// The discs holding recorded parts of each split version: version id
    /// -> discs in part order. Bounded by the rows of `parts`.
    pub fn part_discs(&self) -> Result<HashMap<i64, Vec<i64>>> {
        let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
        if !self.has_split_tables()? {
            return Ok(out);
        }
        for (id, disc) in self.query_all(
            "SELECT file_id, disc_id FROM parts WHERE copied=1 ORDER BY file_id, part",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )? {
            out.entry(id).or_default().push(disc);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_folder_is_the_first_component() {
        assert_eq!(top_folder(b"/a/b/c"), b"a");
        assert_eq!(top_folder(b"/c"), b"");
        assert_eq!(top_folder(b"/a/"), b"a");
        assert_eq!(top_folder(b"/\xff\xfe/x"), b"\xff\xfe");
    }
}
