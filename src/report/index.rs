//! The status page's search index: every backed-up name with the discs
//! holding its versions, compact enough for a million files in one page.
//!
//! Names are read in catalogue order (sorted, through the `filenames`
//! index) and stored as three parts the page's script searches as is:
//! - `f`: the folders, one per line (`a/b`, empty for the top);
//! - `n`: the base names, one per line, in name order;
//! - `g`: runs of the names as (folder number, count) pairs, since sorted
//!   names come folder by folder;
//! - `d`: runs of the names' discs as (discs, count) pairs (`"3"`, or
//!   `"3,7"` for a name with versions on two discs), since neighbouring
//!   names mostly share a disc.
//!
//! A name is shown escaped (control characters as `\n`, bytes that are
//! not UTF-8 as `\xNN`), so no name can contain the line separator. The
//! script lower-cases the name lines once and finds matches with
//! `indexOf` over the whole text, so a search costs one pass over the
//! names' bytes, not one test per name.

use std::collections::HashMap;

use crate::catalog::Catalog;
use crate::error::Result;
use crate::names;

/// The index of one set.
#[derive(Debug, Clone, Default)]
pub struct NameIndex {
    folders: String,
    folder_ids: HashMap<String, u32>,
    names: String,
    runs: Vec<(u32, u32)>,
    disc_runs: Vec<(String, u32)>,
    files: u64,
}

impl NameIndex {
    /// Every name of the catalogue with a backed-up version (whole, or a
    /// split version's recorded parts), in one pass over the names.
    pub fn build(cat: &Catalog) -> Result<NameIndex> {
        let parts = cat.part_discs()?;
        let mut index = NameIndex::default();
        let mut current: Option<(Vec<u8>, Vec<i64>)> = None;
        cat.for_each_backed_up(&mut |id, name, disc| {
            let mut discs: Vec<i64> = disc.into_iter().collect();
            if let Some(p) = parts.get(&id) {
                discs.extend(p);
            }
            if discs.is_empty() {
                return;
            }
            match &mut current {
                Some((n, d)) if n.as_slice() == name => d.extend(discs),
                _ => {
                    if let Some((n, d)) = current.take() {
                        index.push(&n, d);
                    }
                    current = Some((name.to_vec(), discs));
                }
            }
        })?;
        if let Some((n, d)) = current.take() {
            index.push(&n, d);
        }
        Ok(index)
    }

    fn push(&mut self, name: &[u8], mut discs: Vec<i64>) {
        discs.sort_unstable();
        discs.dedup();
        let rest = name.strip_prefix(b"/").unwrap_or(name);
        let (folder, base) = match memchr::memrchr(b'/', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (&b""[..], rest),
        };
        let folder = shown(folder);
        let next = self.folder_ids.len() as u32;
        let fid = *self.folder_ids.entry(folder.clone()).or_insert_with(|| {
            if next > 0 {
                self.folders.push('\n');
            }
            self.folders.push_str(&folder);
            next
        });
        match self.runs.last_mut() {
            Some((f, c)) if *f == fid => *c += 1,
            _ => self.runs.push((fid, 1)),
        }
        let discs = discs
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",");
        match self.disc_runs.last_mut() {
            Some((d, c)) if *d == discs => *c += 1,
            _ => self.disc_runs.push((discs, 1)),
        }
        if self.files > 0 {
            self.names.push('\n');
        }
        self.names.push_str(&shown(base));
        self.files += 1;
    }

    /// Names in the index.
    pub fn files(&self) -> u64 {
        self.files
    }

    /// The index as a JSON object for the page, safe inside a `<script>`
    /// element (every `<` is written as `\u003c`, so no `</script>` or
    /// `<!--` can appear).
    pub fn to_script_json(&self) -> String {
        let mut g = Vec::with_capacity(self.runs.len() * 2);
        for (f, c) in &self.runs {
            g.push(serde_json::Value::from(*f));
            g.push(serde_json::Value::from(*c));
        }
        let mut d = Vec::with_capacity(self.disc_runs.len() * 2);
        for (s, c) in &self.disc_runs {
            d.push(serde_json::Value::from(s.as_str()));
            d.push(serde_json::Value::from(*c));
        }
        let v = serde_json::json!({
            "files": self.files,
            "f": self.folders,
            "n": self.names,
            "g": g,
            "d": d,
        });
        script_safe(&v.to_string())
    }
}

/// A name as the page shows it: control characters and bytes that are not
/// UTF-8 escaped as everywhere, and the marks that reorder text too.
pub fn shown(name: &[u8]) -> String {
    let text = names::display(name, true);
    if !text.chars().any(super::reorders_text) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if super::reorders_text(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// JSON text made safe to sit inside a `<script>` element: `<` only occurs
/// inside JSON strings, where `\u003c` means the same.
pub fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_folders_are_shared() {
        let mut i = NameIndex::default();
        i.push(b"/a/x", vec![1]);
        i.push(b"/a/y", vec![1]);
        i.push(b"/a/b/z", vec![2, 1, 2]);
        i.push(b"/a/zz", vec![2]);
        i.push(b"/top", vec![2]);
        assert_eq!(i.folders, "a\na/b\n");
        assert_eq!(i.names, "x\ny\nz\nzz\ntop");
        assert_eq!(i.runs, vec![(0, 2), (1, 1), (0, 1), (2, 1)]);
        assert_eq!(
            i.disc_runs,
            vec![("1".into(), 2), ("1,2".into(), 1), ("2".into(), 2)]
        );
        assert_eq!(i.files(), 5);
    }

    #[test]
    fn hostile_names_cannot_break_lines_or_the_script() {
        let mut i = NameIndex::default();
        i.push(b"/d\nir</x/<script><b>\n\xff", vec![1]);
        assert_eq!(i.names.lines().count(), 1);
        assert_eq!(i.folders.lines().count(), 1);
        let j = i.to_script_json();
        assert!(!j.contains('<'), "{j}");
        let back: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back["n"], "<script><b>\\n\\xff");
        assert_eq!(back["f"], "d\\nir</x");
    }
}
