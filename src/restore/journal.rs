//! The journal a split file's assembly keeps in the run's private folder
//! (`split-<id>.data`, `split-<id>.journal`), and finding what earlier
//! runs kept of split files in the target's leftover private folders.
//!
//! A journal says which version it is of and, for each part appended and
//! made durable, its offset, size and MD5; it is written beside the old
//! one, made durable and renamed over it, so a run killed at any point
//! leaves a whole journal or the one before. Only a journal of exactly
//! our form is taken, and the parts it names are read again against the
//! manifest before they count.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::io::Read;
use std::path::Path;

use crate::catalog::manifest::Version;

use super::plan::SplitFile;
use super::target::{Dir, Existing, Scratch};

/// The first line of a journal: what it is, and its format's version.
const JOURNAL_HEAD: &str = "dbackup-restore split file journal 1";

/// A journal longer than this is not ours (a part line is under 100 bytes).
const JOURNAL_MAX: u64 = 4 << 20;

/// The names of a split file's data and journal in a private folder: not
/// a number (the temp files) nor the marker, and never a name from a disc
/// (nothing is written under its own name in a private folder).
pub(super) fn data_name(id: i64) -> CString {
    CString::new(format!("split-{id}.data")).unwrap_or_default()
}

pub(super) fn journal_name(id: i64) -> CString {
    CString::new(format!("split-{id}.journal")).unwrap_or_default()
}

pub(super) fn journal_new_name(id: i64) -> CString {
    CString::new(format!("split-{id}.journal.new")).unwrap_or_default()
}

/// The file id of a journal's name, if it is one.
fn journal_id(name: &CStr) -> Option<i64> {
    name_id(name, ".journal")
}

/// The file id of a data file's name, if it is one.
fn data_id(name: &CStr) -> Option<i64> {
    name_id(name, ".data")
}

fn name_id(name: &CStr, suffix: &str) -> Option<i64> {
    let s = name.to_str().ok()?;
    let digits = s.strip_prefix("split-")?.strip_suffix(suffix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One part in a journal: its number, offset, size and MD5.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct JournalPart {
    pub(super) part: u32,
    pub(super) offset: u64,
    pub(super) size: u64,
    pub(super) md5: String,
}

/// What a split file's journal says: which version, and the parts done.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Journal {
    pub(super) id: i64,
    pub(super) size: u64,
    md5: String,
    pub(super) parts: Vec<JournalPart>,
}

impl Journal {
    pub(super) fn new(v: &SplitFile) -> Journal {
        Journal {
            id: v.id,
            size: v.bytes,
            md5: crate::mkiso::hex(&v.item.md5),
            parts: Vec::new(),
        }
    }

    pub(super) fn text(&self) -> String {
        let mut s = format!(
            "{JOURNAL_HEAD}\nid {}\nsize {}\nmd5 {}\n",
            self.id, self.size, self.md5
        );
        for p in &self.parts {
            s.push_str(&format!(
                "part {} {} {} {}\n",
                p.part, p.offset, p.size, p.md5
            ));
        }
        s.push_str("end\n");
        s
    }

    /// Parses a journal; anything not exactly of its form is `None`.
    pub(super) fn parse(text: &str) -> Option<Journal> {
        let mut lines = text.strip_suffix('\n')?.split('\n');
        if lines.next()? != JOURNAL_HEAD {
            return None;
        }
        let field = |line: Option<&str>, key: &str| -> Option<String> {
            Some(line?.strip_prefix(key)?.strip_prefix(' ')?.to_string())
        };
        let number = |s: &str| -> Option<u64> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let id = i64::try_from(number(&field(lines.next(), "id")?)?).ok()?;
        let size = number(&field(lines.next(), "size")?)?;
        let md5 = field(lines.next(), "md5")?;
        if !is_md5(&md5) {
            return None;
        }
        let mut parts = Vec::new();
        let mut offset = 0u64;
        // Bounded by the journal's lines (the journal by JOURNAL_MAX).
        for line in lines.by_ref() {
            if line == "end" {
                return lines.next().is_none().then_some(Journal {
                    id,
                    size,
                    md5,
                    parts,
                });
            }
            let rest = line.strip_prefix("part ")?;
            let f: Vec<&str> = rest.split(' ').collect();
            let [part, off, psize, pmd5] = f[..] else {
                return None;
            };
            let p = JournalPart {
                part: u32::try_from(number(part)?).ok()?,
                offset: number(off)?,
                size: number(psize)?,
                md5: pmd5.to_string(),
            };
            if p.part as usize != parts.len() + 1 || p.offset != offset || !is_md5(&p.md5) {
                return None;
            }
            offset = offset.checked_add(p.size)?;
            parts.push(p);
        }
        None
    }

    /// The bytes its parts hold.
    pub(super) fn done_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }

    /// How many leading parts of `v` it holds, if it is `v`'s: the same
    /// id, size and MD5, and its parts the same as the manifest's.
    pub(super) fn covers(&self, v: &Version) -> Option<usize> {
        if self.id != v.id || self.size != v.size || self.md5 != v.md5 {
            return None;
        }
        if self.parts.len() > v.parts.len() {
            return None;
        }
        let same = self.parts.iter().zip(&v.parts).all(|(j, p)| {
            j.part == p.part && j.offset == p.offset && j.size == p.size && j.md5 == p.md5
        });
        same.then_some(self.parts.len())
    }
}

fn is_md5(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A journal kept by an earlier run, the private folder holding it, and
/// the folder holding its data.
#[derive(Debug)]
pub(super) struct Kept {
    /// The name of the folder at the top of the target.
    pub(super) folder: CString,
    pub(super) journal: Journal,
    /// The folder holding its data, if any: a run killed after the
    /// finished file was renamed into place, before its journal was
    /// removed, leaves the journal alone. A run killed while it took over
    /// an earlier run's files leaves the data in one folder and the
    /// journal in another.
    pub(super) data_folder: Option<CString>,
}

impl Kept {
    pub(super) fn has_data(&self) -> bool {
        self.data_folder.is_some()
    }
}

/// What earlier runs kept of split files in the target, found before the
/// plan is made (reading only), so the plan can leave out what is done.
#[derive(Debug, Default)]
pub struct Resumable {
    kept: HashMap<i64, Kept>,
    /// Whether an earlier run of a restore into this target was cut off
    /// (it left its private folder).
    pub(super) resuming: bool,
}

impl Resumable {
    /// Looks for kept split files in the private folders earlier runs left
    /// at the top of `target` (only folders whose marker proves them
    /// leftovers). Reads only.
    pub(super) fn scan(target: &Path) -> Resumable {
        let mut kept: HashMap<i64, Kept> = HashMap::new();
        // Data files whose journal is not beside them, by id: their folder
        // and size.
        let mut lone_data: HashMap<i64, (CString, u64)> = HashMap::new();
        let leftovers = Scratch::leftovers(target);
        let resuming = !leftovers.is_empty();
        for (folder, dir) in leftovers {
            // Bounded: a private folder holds a batch of temp files and a
            // few split files.
            for name in dir.names(1 << 20).unwrap_or_default() {
                if let Some(id) = data_id(&name) {
                    if dir.entry(&journal_name(id)).ok() == Some(Existing::Absent) {
                        if let Ok(Existing::File { size }) = dir.entry(&name) {
                            lone_data.insert(id, (folder.clone(), size));
                        }
                    }
                    continue;
                }
                let Some(id) = journal_id(&name) else {
                    continue;
                };
                let Some(journal) = read_journal(&dir, &name) else {
                    continue;
                };
                let data = match dir.entry(&data_name(id)) {
                    Ok(Existing::File { size }) => Some(size),
                    Ok(Existing::Absent) => None,
                    _ => continue,
                };
                if journal.id != id || data.is_some_and(|d| d < journal.done_bytes()) {
                    continue;
                }
                // The journal of most parts wins; of two alike, the one
                // beside its data (a run killed while it removed an
                // adopted folder leaves a copy of the journal alone).
                let rank = |parts: usize, has_data: bool| (parts, has_data);
                if kept.get(&id).is_some_and(|k| {
                    rank(k.journal.parts.len(), k.has_data())
                        >= rank(journal.parts.len(), data.is_some())
                }) {
                    continue;
                }
                kept.insert(
                    id,
                    Kept {
                        data_folder: data.map(|_| folder.clone()),
                        folder: folder.clone(),
                        journal,
                    },
                );
            }
        }
        // A journal alone takes a lone data file of its id that is long
        // enough: a run killed between moving the two left them apart. The
        // parts are read again against the manifest before they count.
        for (id, k) in kept.iter_mut() {
            if let Some((folder, size)) = lone_data.get(id) {
                if !k.has_data() && *size >= k.journal.done_bytes() {
                    k.data_folder = Some(folder.clone());
                }
            }
        }
        Resumable { kept, resuming }
    }

    /// How many leading parts of split version `v` an earlier run kept.
    /// A journal of every part without its data is of a file renamed into
    /// place: all its parts count, and the run checks it is there.
    pub(super) fn parts_done(&self, v: &Version) -> usize {
        self.kept
            .get(&v.id)
            .and_then(|k| {
                let n = k.journal.covers(v)?;
                (k.has_data() || n == v.parts.len()).then_some(n)
            })
            .unwrap_or(0)
    }

    /// The kept files of version `id`.
    pub(super) fn kept(&self, id: i64) -> Option<&Kept> {
        self.kept.get(&id)
    }
}

pub(super) fn read_journal(dir: &Dir, name: &CStr) -> Option<Journal> {
    let f = dir.open_file(name).ok()?;
    let mut text = String::new();
    f.take(JOURNAL_MAX).read_to_string(&mut text).ok()?;
    Journal::parse(&text)
}

/// Writes the journal beside the old one, makes it durable, renames it
/// over, and makes the rename durable.
pub(super) fn write_journal(dir: &Dir, j: &Journal) -> std::io::Result<()> {
    let new = journal_new_name(j.id);
    let _ = dir.remove(&new);
    let mut f = dir.create_new(&new)?;
    std::io::Write::write_all(&mut f, j.text().as_bytes())?;
    f.sync_all()?;
    drop(f);
    dir.rename_to(&new, dir, &journal_name(j.id))?;
    dir.sync()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal() -> Journal {
        Journal {
            id: 1234,
            size: 30,
            md5: "0123456789abcdef0123456789abcdef".into(),
            parts: vec![
                JournalPart {
                    part: 1,
                    offset: 0,
                    size: 10,
                    md5: "00000000000000000000000000000001".into(),
                },
                JournalPart {
                    part: 2,
                    offset: 10,
                    size: 10,
                    md5: "00000000000000000000000000000002".into(),
                },
            ],
        }
    }

    #[test]
    fn a_journal_reads_back_as_written() {
        let j = journal();
        assert_eq!(Journal::parse(&j.text()), Some(j.clone()));
        assert_eq!(j.done_bytes(), 20);
        let empty = Journal {
            parts: Vec::new(),
            ..j
        };
        assert_eq!(Journal::parse(&empty.text()), Some(empty));
    }

    #[test]
    fn only_a_whole_journal_of_our_form_is_taken() {
        let text = journal().text();
        // Every cut short of the end, and every single-byte change, is
        // refused or reads as something else entirely (never a panic).
        for cut in 0..text.len() {
            assert_eq!(Journal::parse(&text[..cut]), None, "cut at {cut}");
        }
        for bad in [
            text.replace("part 2 10", "part 3 10"),
            text.replace("part 2 10", "part 2 11"),
            text.replace("md5 0123", "md5 X123"),
            text.replace("id 1234", "id -1234"),
            text.replace("id 1234", "id 12 34"),
            text.replace("end\n", "end\nmore\n"),
            text.replace(JOURNAL_HEAD, "dbackup-restore split file journal 2"),
            format!("{text}\n"),
        ] {
            assert_eq!(Journal::parse(&bad), None, "{bad}");
        }
    }

    fn arb_journal() -> impl proptest::strategy::Strategy<Value = Journal> {
        use proptest::prelude::*;
        let md5 = "[0-9a-f]{32}";
        (
            0..i64::MAX,
            any::<u64>(),
            md5,
            proptest::collection::vec((0..u64::MAX / 64, md5), 0..40),
        )
            .prop_map(|(id, size, md5, parts)| {
                let mut offset = 0;
                let parts = parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, (size, md5))| {
                        let p = JournalPart {
                            part: i as u32 + 1,
                            offset,
                            size,
                            md5,
                        };
                        offset += size;
                        p
                    })
                    .collect();
                Journal {
                    id,
                    size,
                    md5,
                    parts,
                }
            })
    }

    proptest::proptest! {
        /// Every journal reads back as written; no cut of it reads as a
        /// journal at all (a torn write is never taken for fewer parts
        /// done, or more).
        #[test]
        fn journals_read_back_whole_or_not_at_all(j in arb_journal(), cut in 0usize..4000) {
            let text = j.text();
            proptest::prop_assert_eq!(Journal::parse(&text), Some(j));
            let cut = cut.min(text.len().saturating_sub(1));
            proptest::prop_assert_eq!(Journal::parse(&text[..cut]), None);
        }

        /// Any text at all is parsed without a panic, and what is taken
        /// is of our form: parts numbered from 1, contiguous.
        #[test]
        fn any_text_is_refused_or_taken_sound(text in ".{0,300}") {
            if let Some(j) = Journal::parse(&text) {
                let mut offset = 0;
                for (i, p) in j.parts.iter().enumerate() {
                    proptest::prop_assert_eq!(p.part as usize, i + 1);
                    proptest::prop_assert_eq!(p.offset, offset);
                    offset += p.size;
                }
            }
        }
    }

    #[test]
    fn journal_names_are_only_ours() {
        let n = |s: &str| CString::new(s).unwrap();
        assert_eq!(journal_id(&n("split-1234.journal")), Some(1234));
        assert_eq!(journal_id(&journal_name(7)), Some(7));
        for bad in [
            "split-.journal",
            "split-12a.journal",
            "split--1.journal",
            "split-1.journal.new",
            "split-1.data",
            "0.tmp",
            "DBACKUP-RESTORE-TEMP",
            "split-99999999999999999999999.journal",
        ] {
            assert_eq!(journal_id(&n(bad)), None, "{bad}");
        }
    }
}
