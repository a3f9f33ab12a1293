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
//!
//! Only `f`, `g` and `d`, bounded by the folders and the runs, are kept:
//! `n` is written straight into the page from a second ordered pass over
//! the catalogue in the same read snapshot, so a page of five million
//! names takes no more memory than one of a thousand.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::names;

/// The index of one set, but for its base names: what it keeps is bounded
/// by the folders and the runs (the names themselves, the bulk of the
/// index, are written straight from the catalogue by
/// [`NameIndex::write_script_json`], so a page's memory does not grow with
/// its files).
#[derive(Debug, Clone, Default)]
pub struct NameIndex {
    folders: String,
    folder_ids: HashMap<String, u32>,
    /// The folder of the last name pushed, as stored, and its number.
    last_folder: Option<(Vec<u8>, u32)>,
    runs: Vec<(u32, u32)>,
    /// Runs of names with the same discs (sorted, each once), as
    /// (discs, count).
    disc_runs: Vec<(Vec<i64>, u32)>,
    files: u64,
}

impl NameIndex {
    /// Every name of the catalogue with a backed-up version (whole, or a
    /// split version's recorded parts), in one pass over the names. It
    /// opens a read snapshot of the catalogue that stays open, so that the
    /// second pass of [`NameIndex::write_script_json`] reads the same
    /// names.
    pub fn build(cat: &Catalog) -> Result<NameIndex> {
        cat.begin_snapshot()?;
        let mut index = NameIndex::default();
        each_name(cat, &mut |name, discs| index.push(name, discs))?;
        // Only the building looks folders up.
        index.folder_ids = HashMap::new();
        index.last_folder = None;
        Ok(index)
    }

    fn push(&mut self, name: &[u8], discs: &mut Vec<i64>) {
        discs.sort_unstable();
        discs.dedup();
        let (raw, _) = split(name);
        // Sorted names come folder by folder: most share the last one's.
        let fid = match &self.last_folder {
            Some((f, id)) if f.as_slice() == raw => *id,
            _ => {
                let folder = shown(raw);
                let next = self.folder_ids.len() as u32;
                let id = *self.folder_ids.entry(folder.clone()).or_insert_with(|| {
                    if next > 0 {
                        self.folders.push('\n');
                    }
                    self.folders.push_str(&folder);
                    next
                });
                self.last_folder = Some((raw.to_vec(), id));
                id
            }
        };
        match self.runs.last_mut() {
            Some((f, c)) if *f == fid => *c += 1,
            _ => self.runs.push((fid, 1)),
        }
        match self.disc_runs.last_mut() {
            Some((d, c)) if d == discs => *c += 1,
            _ => self.disc_runs.push((discs.clone(), 1)),
        }
        self.files += 1;
    }

    /// Names in the index.
    pub fn files(&self) -> u64 {
        self.files
    }

    /// Writes the index as a JSON object for the page, safe inside a
    /// `<script>` element (every `<` is written as `\u003c`, so no
    /// `</script>` or `<!--` can appear), its base names read again from
    /// `cat`, the catalogue it was built from (in the same snapshot), and
    /// written one by one. `page` names the file in an I/O error.
    pub fn write_script_json(&self, cat: &Catalog, out: &mut dyn Write, page: &Path) -> Result<()> {
        self.write_json(out, page, &mut |each| {
            each_name(cat, &mut |name, _| each(name))
        })
    }

    /// The JSON object, its keys in the order the page has always had
    /// (`files`, `f`, `n`, `g`, `d`), byte for byte what serializing it whole
    /// gave; `names` calls its argument with every name in index order.
    fn write_json(&self, out: &mut dyn Write, page: &Path, names: &mut Names<'_>) -> Result<()> {
        let io = |e: std::io::Error| Error::io(page, e);
        let mut w = ScriptSafe(out);
        let w = &mut w;
        write!(w, "{{\"files\":{},\"f\":", self.files)
            .and_then(|_| json(w, &self.folders))
            .and_then(|_| w.write_all(b",\"n\":\""))
            .map_err(io)?;
        // A name's escapes are those of its characters alone, so names
        // escaped one by one and joined by `\n` read as the joined text
        // escaped whole.
        let mut written = 0u64;
        let mut failed: Option<std::io::Error> = None;
        let mut quoted = Vec::new();
        names(&mut |name| {
            if failed.is_some() {
                return;
            }
            let base = split(name).1;
            let text = if plain(base) {
                // Shown and quoted as it is.
                base
            } else {
                quoted.clear();
                // Writing to a Vec cannot fail.
                let _ = json(&mut quoted, &shown(base));
                &quoted[1..quoted.len() - 1]
            };
            let sep: &[u8] = if written > 0 { b"\\n" } else { b"" };
            if let Err(e) = w.write_all(sep).and_then(|_| w.write_all(text)) {
                failed = Some(e);
            }
            written += 1;
        })?;
        if let Some(e) = failed {
            return Err(io(e));
        }
        if written != self.files {
            return Err(Error::Invalid(format!(
                "the catalogue's names changed while the page was written ({} then {written}); write it again",
                self.files
            )));
        }
        (|| {
            w.write_all(b"\",\"g\":[")?;
            for (i, (f, c)) in self.runs.iter().enumerate() {
                let sep = if i > 0 { "," } else { "" };
                write!(w, "{sep}{f},{c}")?;
            }
            w.write_all(b"],\"d\":[")?;
            for (i, (d, c)) in self.disc_runs.iter().enumerate() {
                let sep: &[u8] = if i > 0 { b"," } else { b"" };
                w.write_all(sep)?;
                json(w, &disc_list(d))?;
                write!(w, ",{c}")?;
            }
            w.write_all(b"]}")
        })()
        .map_err(io)
    }
}

/// What [`NameIndex::write_json`] reads the names from: it calls its
/// argument with each name in index order.
type Names<'a> = dyn FnMut(&mut dyn FnMut(&[u8])) -> Result<()> + 'a;

/// Discs as the page lists them: `3`, or `3,7`.
fn disc_list(discs: &[i64]) -> String {
    discs
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether a name is shown as it is and is its own JSON text: printable
/// ASCII but `"` and `\` (the `<` that JSON leaves alone is the script
/// writer's). Most names are; the others go through [`shown`] and JSON.
fn plain(name: &[u8]) -> bool {
    name.iter()
        .all(|&b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}

/// A string as JSON text, quoted, as serde_json writes it.
fn json(w: &mut dyn Write, s: &str) -> std::io::Result<()> {
    serde_json::to_writer(w, s).map_err(std::io::Error::from)
}

/// Every backed-up name of the catalogue in name order, once each, with
/// the discs holding its versions (a name none of whose versions is on a
/// disc is left out; the discs are given unsorted, and may be reordered).
/// Bounded by the catalogue's rows; the name and discs are kept in buffers
/// used again from name to name.
fn each_name(cat: &Catalog, each: &mut dyn FnMut(&[u8], &mut Vec<i64>)) -> Result<()> {
    let parts = cat.part_discs()?;
    let mut name_buf: Vec<u8> = Vec::new();
    let mut discs: Vec<i64> = Vec::new();
    // Whether `name_buf` holds a name with discs not yet given.
    let mut held = false;
    cat.for_each_backed_up(&mut |id, name, disc| {
        let split = parts.get(&id);
        if disc.is_none() && split.is_none_or(|p| p.is_empty()) {
            return;
        }
        if !held || name_buf != name {
            if held {
                each(&name_buf, &mut discs);
            }
            name_buf.clear();
            name_buf.extend_from_slice(name);
            discs.clear();
            held = true;
        }
        discs.extend(disc);
        if let Some(p) = split {
            discs.extend(p);
        }
    })?;
    if held {
        each(&name_buf, &mut discs);
    }
    Ok(())
}

/// A stored name's folder (without the leading `/`, empty for the top)
/// and base name.
fn split(name: &[u8]) -> (&[u8], &[u8]) {
    let rest = name.strip_prefix(b"/").unwrap_or(name);
    match memchr::memrchr(b'/', rest) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&b""[..], rest),
    }
}

/// A writer for JSON text inside a `<script>` element: `<` only occurs
/// inside JSON strings, where `\u003c` means the same.
struct ScriptSafe<'a>(&'a mut dyn Write);

impl Write for ScriptSafe<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, mut buf: &[u8]) -> std::io::Result<()> {
        // Bounded by the bytes of `buf`: each turn consumes up to a `<`.
        while let Some(i) = memchr::memchr(b'<', buf) {
            self.0.write_all(&buf[..i])?;
            self.0.write_all(b"\\u003c")?;
            buf = &buf[i + 1..];
        }
        self.0.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
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
    use proptest::prelude::*;

    fn index(names: &[&[u8]]) -> NameIndex {
        let mut i = NameIndex::default();
        for n in names {
            i.push(n, &mut vec![1]);
        }
        i
    }

    /// The index's JSON as the page gets it, the names given again.
    fn script(i: &NameIndex, names: &[&[u8]]) -> String {
        let mut out = Vec::new();
        i.write_json(&mut out, Path::new("page.html"), &mut |each| {
            names.iter().for_each(|n| each(n));
            Ok(())
        })
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The JSON as the page had it when it was built whole: one value,
    /// serialized, then every `<` replaced.
    fn whole(i: &NameIndex, names: &[&[u8]]) -> String {
        let n: Vec<String> = names.iter().map(|n| shown(split(n).1)).collect();
        let g: Vec<serde_json::Value> = i
            .runs
            .iter()
            .flat_map(|(f, c)| [(*f).into(), (*c).into()])
            .collect();
        let d: Vec<serde_json::Value> = i
            .disc_runs
            .iter()
            .flat_map(|(s, c)| [disc_list(s).into(), (*c).into()])
            .collect();
        let v = serde_json::json!({
            "files": i.files,
            "f": i.folders,
            "n": n.join("\n"),
            "g": g,
            "d": d,
        });
        v.to_string().replace('<', "\\u003c")
    }

    #[test]
    fn runs_and_folders_are_shared() {
        let mut i = NameIndex::default();
        i.push(b"/a/x", &mut vec![1]);
        i.push(b"/a/y", &mut vec![1]);
        i.push(b"/a/b/z", &mut vec![2, 1, 2]);
        i.push(b"/a/zz", &mut vec![2]);
        i.push(b"/top", &mut vec![2]);
        assert_eq!(i.folders, "a\na/b\n");
        assert_eq!(i.runs, vec![(0, 2), (1, 1), (0, 1), (2, 1)]);
        assert_eq!(
            i.disc_runs,
            vec![(vec![1], 2), (vec![1, 2], 1), (vec![2], 2)]
        );
        assert_eq!(i.files(), 5);
        let names: &[&[u8]] = &[b"/a/x", b"/a/y", b"/a/b/z", b"/a/zz", b"/top"];
        let back: serde_json::Value = serde_json::from_str(&script(&i, names)).unwrap();
        assert_eq!(back["n"], "x\ny\nz\nzz\ntop");
        assert_eq!(back["g"], serde_json::json!([0, 2, 1, 1, 0, 1, 2, 1]));
        assert_eq!(back["d"], serde_json::json!(["1", 2, "1,2", 1, "2", 2]));
    }

    #[test]
    fn hostile_names_cannot_break_lines_or_the_script() {
        let names: &[&[u8]] = &[b"/d\nir</x/<script><b>\n\xff"];
        let i = index(names);
        assert_eq!(i.folders.lines().count(), 1);
        let j = script(&i, names);
        assert!(!j.contains('<'), "{j}");
        let back: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back["n"], "<script><b>\\n\\xff");
        assert_eq!(back["n"].as_str().unwrap().lines().count(), 1);
        assert_eq!(back["f"], "d\\nir</x");
    }

    #[test]
    fn streamed_json_is_the_whole_value_serialized() {
        let names: &[&[u8]] = &[
            b"/<!--/</script>",
            b"/a/\"quoted\" \\ back",
            b"/a/tab\there\r\x01\x7f",
            "/a/line\u{2028}sep\u{2029}".as_bytes(),
            "/a/evil\u{202e}txt.exe".as_bytes(),
            b"/a/\xff\xfe<b>",
            "/b/\u{e9}t\u{e9} \u{1f600}".as_bytes(),
            b"/top<",
        ];
        let i = index(names);
        assert_eq!(script(&i, names), whole(&i, names));
        let empty = NameIndex::default();
        assert_eq!(script(&empty, &[]), whole(&empty, &[]));
    }

    proptest::proptest! {
        /// Whatever the bytes of the names (quotes, backslashes, `<`,
        /// controls, bytes that are not UTF-8, marks that reorder text),
        /// the streamed JSON, plain names written as they are, is the
        /// whole value serialized.
        #[test]
        fn any_names_stream_as_the_whole_value(
            names in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![
                        6 => proptest::sample::select(b"ab/.-_ ~".to_vec()).prop_map(|b| vec![b]),
                        1 => proptest::sample::select(b"\"\\<>\n\t\x00\x7f\xff\xc3".to_vec()).prop_map(|b| vec![b]),
                        1 => proptest::sample::select(vec!["\u{e9}", "\u{202e}", "\u{2028}", "\u{1f600}"])
                            .prop_map(|c| c.as_bytes().to_vec()),
                    ],
                    0..12,
                ),
                0..20,
            )
        ) {
            let mut names: Vec<Vec<u8>> = names
                .into_iter()
                .map(|parts| {
                    let mut n = b"/".to_vec();
                    n.extend(parts.concat());
                    n
                })
                .collect();
            names.sort();
            names.dedup();
            let names: Vec<&[u8]> = names.iter().map(|n| n.as_slice()).collect();
            let i = index(&names);
            proptest::prop_assert_eq!(script(&i, &names), whole(&i, &names));
        }
    }

    #[test]
    fn names_that_changed_between_the_passes_are_refused() {
        let i = index(&[b"/a".as_slice(), b"/b"]);
        let mut out = Vec::new();
        let r = i.write_json(&mut out, Path::new("page.html"), &mut |each| {
            each(b"/a");
            Ok(())
        });
        assert!(r.is_err());
    }
}
