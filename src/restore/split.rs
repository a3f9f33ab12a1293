//! Split files put back together. A file stored in parts on several discs
//! is assembled in the run's private folder ([`super::target::Scratch`])
//! as its discs come, in ascending order, each part appended while its
//! MD5 and the whole file's are computed; only when the last part is in
//! and the whole MD5 matches is the file given its mtime, made durable and
//! renamed into place (never over a name taken meanwhile).
//!
//! After each part the data is made durable and a small journal records
//! the parts done with their sizes and MD5s (written beside, then renamed
//! over the old one). A run killed or stopped leaves its private folder
//! with the data and the journal; the next restore into the same target
//! finds them (only in a folder that is a leftover by its marker), takes
//! the journal only when it matches the manifest's parts, moves them into
//! its own folder, and checks the kept data again (a local read, never the
//! disc's) before it appends the next part. Parts already checked are not
//! read again, and their discs are not needed.
//!
//! Nothing here writes outside the private folder but the final rename.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use md5::{Digest, Md5};

use crate::catalog::manifest::Version;
use crate::medium::Medium;
use crate::names;

use super::copy::{copy_loop, system_time, ChunkHasher, CHUNK};
use super::execute::{fail, write_fail, Checked, Failure, Run};
use super::plan::SplitFile;
use super::report::{FailKind, NotRestored, Report};
use super::target::{Dir, Existing, Scratch, Target};
use super::Event;

/// The first line of a journal: what it is, and its format's version.
const JOURNAL_HEAD: &str = "dbackup-restore split file journal 1";

/// A journal longer than this is not ours (a part line is under 100 bytes).
const JOURNAL_MAX: u64 = 4 << 20;

/// The names of a split file's data and journal in a private folder: not
/// a number (the temp files) nor the marker, and never a name from a disc
/// (nothing is written under its own name in a private folder).
fn data_name(id: i64) -> CString {
    CString::new(format!("split-{id}.data")).unwrap_or_default()
}

fn journal_name(id: i64) -> CString {
    CString::new(format!("split-{id}.journal")).unwrap_or_default()
}

fn journal_new_name(id: i64) -> CString {
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
struct JournalPart {
    part: u32,
    offset: u64,
    size: u64,
    md5: String,
}

/// What a split file's journal says: which version, and the parts done.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Journal {
    id: i64,
    size: u64,
    md5: String,
    parts: Vec<JournalPart>,
}

impl Journal {
    fn new(v: &SplitFile) -> Journal {
        Journal {
            id: v.id,
            size: v.bytes,
            md5: crate::mkiso::hex(&v.item.md5),
            parts: Vec::new(),
        }
    }

    fn text(&self) -> String {
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
    fn parse(text: &str) -> Option<Journal> {
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
    fn done_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }

    /// How many leading parts of `v` it holds, if it is `v`'s: the same
    /// id, size and MD5, and its parts the same as the manifest's.
    fn covers(&self, v: &Version) -> Option<usize> {
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
    journal: Journal,
    /// The folder holding its data, if any: a run killed after the
    /// finished file was renamed into place, before its journal was
    /// removed, leaves the journal alone. A run killed while it took over
    /// an earlier run's files leaves the data in one folder and the
    /// journal in another.
    data_folder: Option<CString>,
}

impl Kept {
    fn has_data(&self) -> bool {
        self.data_folder.is_some()
    }
}

/// What earlier runs kept of split files in the target, found before the
/// plan is made (reading only), so the plan can leave out what is done.
#[derive(Debug, Default)]
pub struct Resumable {
    kept: HashMap<i64, Kept>,
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
        for (folder, dir) in Scratch::leftovers(target) {
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
        Resumable { kept }
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

fn read_journal(dir: &Dir, name: &CStr) -> Option<Journal> {
    let f = dir.open_file(name).ok()?;
    let mut text = String::new();
    f.take(JOURNAL_MAX).read_to_string(&mut text).ok()?;
    Journal::parse(&text)
}

/// Where a split file is in this run.
pub(super) enum SplitState {
    /// Nothing of it handled yet.
    Waiting,
    /// Being put together.
    Active(Assembly),
    /// The run stopped with it unfinished: its checked parts stay in the
    /// private folder for the next run.
    Kept,
    /// Restored, already there, or failed (and reported).
    Over,
}

/// A split file being put together in the private folder.
pub(super) struct Assembly {
    file: File,
    whole: Md5,
    /// The index of the next part to append.
    next: usize,
    written: u64,
    /// Parts checked and appended, the journal's on disc up to the last
    /// one made durable.
    journal: Journal,
    /// Bytes appended since the journal was last written.
    unjournaled: u64,
    /// Whether its place in the target was checked in this run.
    target_checked: bool,
}

/// Hashes each chunk into the part's MD5 and the whole file's.
struct Both<'a> {
    part: Md5,
    whole: &'a mut Md5,
    buf: &'a mut Vec<u8>,
}

impl ChunkHasher for Both<'_> {
    fn buffer(&mut self) -> Vec<u8> {
        let mut b = std::mem::take(self.buf);
        b.resize(CHUNK, 0);
        b
    }

    fn hash(&mut self, chunk: Vec<u8>) -> bool {
        self.part.update(&chunk);
        self.whole.update(&chunk);
        *self.buf = chunk;
        true
    }

    fn give_back(&mut self, chunk: Vec<u8>) {
        *self.buf = chunk;
    }
}

/// `discs 3, 4, 5`.
fn discs_text(discs: &[i64]) -> String {
    let list: Vec<String> = discs.iter().map(|d| d.to_string()).collect();
    match discs.len() {
        1 => format!("disc {}", list[0]),
        _ => format!("discs {}", list.join(", ")),
    }
}

/// What is said of a split file that cannot be restored from the discs
/// at hand (one of its discs missing or lost), or `None` if it can.
pub(super) fn unreachable(s: &SplitFile) -> Option<NotRestored> {
    let first = *s.needs.first()?;
    let missing: Vec<i64> = s
        .needs
        .iter()
        .copied()
        .filter(|d| !s.lost.contains(d))
        .collect();
    let mut why = Vec::new();
    if !missing.is_empty() {
        why.push(format!(
            "{} not among the discs given",
            match missing.len() {
                1 => format!("disc {} is", missing[0]),
                _ => format!("{} are", discs_text(&missing)),
            }
        ));
    }
    if !s.lost.is_empty() {
        why.push(format!(
            "{} marked lost",
            match s.lost.len() {
                1 => format!("disc {} is", s.lost[0]),
                _ => format!("{} are", discs_text(&s.lost)),
            }
        ));
    }
    let kind = if missing.is_empty() {
        FailKind::LostDisc
    } else {
        FailKind::MissingDisc
    };
    Some(NotRestored {
        name: s.name.clone(),
        raw_name: s.raw_name.clone(),
        disc: Some(first),
        id: Some(s.id),
        bytes: s.bytes,
        kind,
        reason: format!(
            "split over {}: it needs {}; {}{}",
            discs_text(&s.discs),
            discs_text(&s.needs),
            why.join(", "),
            older_hint(s)
        ),
        needs: s.needs.clone(),
    })
}

/// `; an older version ... (--as-of)` when there is one.
fn older_hint(s: &SplitFile) -> String {
    match &s.older_version {
        Some(o) => format!(
            "; an older version from {} is on disc {} (restore it with --as-of)",
            crate::output::time(o.recorded),
            o.disc
        ),
        None => String::new(),
    }
}

fn split_failed(s: &SplitFile, disc: i64, f: Failure) -> NotRestored {
    NotRestored {
        name: s.name.clone(),
        raw_name: s.raw_name.clone(),
        disc: Some(disc),
        id: Some(s.id),
        bytes: s.bytes,
        kind: f.kind,
        reason: format!("{}{}", f.reason, older_hint(s)),
        needs: Vec::new(),
    }
}

impl Run<'_> {
    /// Moves what earlier runs kept of the plan's split files into this
    /// run's private folder (before the leftovers are removed); which of
    /// the plan's split files it took.
    pub(super) fn adopt_kept(
        &self,
        report: &Report,
        resumable: &Resumable,
        target: &Target,
    ) -> Vec<bool> {
        report
            .plan
            .split
            .iter()
            .map(|s| {
                s.parts_done > 0
                    && s.restorable()
                    && resumable.kept(s.id).is_some_and(|k| {
                        // The data first: a run killed between the two
                        // leaves a journal that finds its data again.
                        let data = k
                            .data_folder
                            .as_ref()
                            .is_none_or(|f| target.adopt(f, &[data_name(s.id)], self.scratch));
                        fail::fail_point!("restore::adopt");
                        data && target.adopt(&k.folder, &[journal_name(s.id)], self.scratch)
                    })
            })
            .collect()
    }

    /// Checks what was taken over from earlier runs by reading it here;
    /// a file whose parts are all there is finished at once.
    pub(super) fn resume_splits(
        &mut self,
        report: &mut Report,
        taken: &[bool],
        target: &mut Target,
        on_event: &mut dyn FnMut(Event<'_>),
    ) {
        // Bounded by the plan's split files.
        for si in 0..report.plan.split.len() {
            let s = &report.plan.split[si];
            if s.parts_done == 0 || !s.restorable() {
                continue;
            }
            let first_disc = s.part_rows[0].disc;
            let taken = taken.get(si).copied().unwrap_or(false);
            if taken && self.scratch.dir().entry(&data_name(s.id)).ok() == Some(Existing::Absent) {
                // Finished by a run killed before it removed the journal.
                let there = match self.check_target(&s.item, target) {
                    Ok(Checked::AlreadyThere) => Ok(()),
                    Ok(Checked::Free { .. }) => Err(fail(
                        FailKind::NotReached,
                        "an earlier run put it together, but it is not in the target; run the same command again to read its parts from their discs",
                    )),
                    Err(f) => Err(f),
                };
                self.drop_split(s.id);
                self.splits[si] = SplitState::Over;
                match there {
                    Ok(()) => report.skipped_existing.add(s.bytes),
                    Err(f) => {
                        let nr = split_failed(s, first_disc, f);
                        on_event(Event::Failed(&nr));
                        report.failed.push(nr);
                    }
                }
                continue;
            }
            let checked = if taken {
                self.check_kept(s)
            } else {
                Err(fail(
                    FailKind::Unreadable,
                    "the parts an earlier run kept could not be taken over (is another restore running in this target?); run the same command again",
                ))
            };
            match checked {
                Ok(asm) => {
                    report.parts_resumed += s.parts_done as u64;
                    self.splits[si] = SplitState::Active(asm);
                    if s.parts_done == s.parts {
                        self.finish_split(si, first_disc, report, target, on_event);
                    }
                }
                Err(f) => {
                    self.drop_split(s.id);
                    let nr = split_failed(s, first_disc, f);
                    on_event(Event::Failed(&nr));
                    report.failed.push(nr);
                    self.splits[si] = SplitState::Over;
                }
            }
        }
    }

    /// Reads the kept data of `s` again, part by part, against the
    /// manifest's MD5s; cuts off what follows the parts done.
    fn check_kept(&mut self, s: &SplitFile) -> std::result::Result<Assembly, Failure> {
        let dir = self.scratch.dir();
        let journal = read_journal(dir, &journal_name(s.id))
            .filter(|j| j.parts.len() == s.parts_done)
            .ok_or_else(|| {
                fail(
                    FailKind::Unreadable,
                    "its journal from an earlier run changed",
                )
            })?;
        let mut file = dir
            .open_rw(&data_name(s.id))
            .map_err(|e| write_fail("opening the parts an earlier run kept", e))?;
        let done = journal.done_bytes();
        file.set_len(done)
            .map_err(|e| write_fail("cutting the parts an earlier run kept", e))?;
        let mut whole = Md5::new();
        let mut buf = vec![0u8; CHUNK];
        for (p, row) in journal.parts.iter().zip(&s.part_rows) {
            let mut part = Md5::new();
            let mut left = p.size;
            // Bounded by the part's size.
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                let n = match file.read(&mut buf[..want]) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(write_fail("reading the parts an earlier run kept", e)),
                };
                part.update(&buf[..n]);
                whole.update(&buf[..n]);
                left -= n as u64;
            }
            if left > 0 || crate::mkiso::hex(&part.finalize()) != row.md5 {
                return Err(fail(
                    FailKind::Damaged,
                    format!(
                        "part {} kept by an earlier run no longer matches its MD5 in the target's private folder; it was removed: run the same command again to read the parts from their discs",
                        p.part
                    ),
                ));
            }
        }
        file.seek(SeekFrom::Start(done))
            .map_err(|e| write_fail("opening the parts an earlier run kept", e))?;
        Ok(Assembly {
            file,
            whole,
            next: journal.parts.len(),
            written: done,
            journal,
            unjournaled: 0,
            target_checked: false,
        })
    }

    /// Appends part `k` of split file `si` from `medium`, checked; after
    /// the last part, puts the file in place. Failures are reported here.
    /// Returns whether the target's filesystem is full.
    pub(super) fn split_piece(
        &mut self,
        medium: &Medium,
        si: usize,
        k: usize,
        report: &mut Report,
        target: &mut Target,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> bool {
        let s = &report.plan.split[si];
        if !matches!(self.splits[si], SplitState::Waiting | SplitState::Active(_)) {
            return false;
        }
        let result = self.append_part(medium, si, k, s, target);
        match result {
            Ok(Appended::Part) => {
                report.parts_read += 1;
                false
            }
            Ok(Appended::Last) => {
                report.parts_read += 1;
                self.finish_split(si, medium.disc, report, target, on_event);
                false
            }
            Ok(Appended::AlreadyThere) => {
                self.drop_split(s.id);
                report.skipped_existing.add(s.bytes);
                self.splits[si] = SplitState::Over;
                false
            }
            Err(f) if f.kind == FailKind::NotReached || f.no_space => {
                // Interrupted, or the target is full: the parts checked so
                // far stay for the next run (what the part in hand had
                // appended is cut off); the run stops.
                if let SplitState::Active(a) = &mut self.splits[si] {
                    if a.unjournaled > 0 && a.file.set_len(a.written).is_ok() {
                        let _ = record(a, self.scratch.dir());
                    }
                }
                self.splits[si] = SplitState::Kept;
                let _ = self
                    .scratch
                    .dir()
                    .remove(&journal_new_name(report.plan.split[si].id));
                f.no_space
            }
            Err(f) => {
                let s = &report.plan.split[si];
                self.drop_split(s.id);
                let nr = split_failed(s, medium.disc, f);
                on_event(Event::Failed(&nr));
                report.failed.push(nr);
                self.splits[si] = SplitState::Over;
                false
            }
        }
    }

    fn append_part(
        &mut self,
        medium: &Medium,
        si: usize,
        k: usize,
        s: &SplitFile,
        target: &mut Target,
    ) -> std::result::Result<Appended, Failure> {
        let row = &s.part_rows[k];
        let n = s.part_rows.len();
        let what = format!("part {} of {n}", row.part);
        // Its place in the target is checked before any part is read: a
        // file already there is not read again, a name blocked fails at
        // once rather than after every disc.
        let checked = match &self.splits[si] {
            SplitState::Active(a) => a.target_checked,
            _ => false,
        };
        if !checked {
            match self.check_target(&s.item, target)? {
                Checked::AlreadyThere => return Ok(Appended::AlreadyThere),
                Checked::Free { .. } => {}
            }
        }
        if matches!(self.splits[si], SplitState::Waiting) {
            let dir = self.scratch.dir();
            let _ = dir.remove(&data_name(s.id));
            let _ = dir.remove(&journal_name(s.id));
            let file = dir
                .create_new(&data_name(s.id))
                .map_err(|e| write_fail("creating a temp file", e))?;
            self.splits[si] = SplitState::Active(Assembly {
                file,
                whole: Md5::new(),
                next: 0,
                written: 0,
                journal: Journal::new(s),
                unjournaled: 0,
                target_checked: true,
            });
        }
        let SplitState::Active(asm) = &mut self.splits[si] else {
            return Err(fail(FailKind::Write, "internal: no assembly"));
        };
        asm.target_checked = true;
        if asm.next != k {
            return Err(fail(
                FailKind::Unreadable,
                format!("{what} came before part {}", asm.next + 1),
            ));
        }
        let stored = medium.stored_part(s.id, row.part).ok_or_else(|| {
            fail(
                FailKind::Unreadable,
                format!(
                    "{what} ({}) is not on {}",
                    crate::disc::part_path(s.id, row.part).display(),
                    medium.label()
                ),
            )
        })?;
        if let Some(why) = stored.unreadable {
            return Err(fail(
                FailKind::Unreadable,
                format!(
                    "{what} ({}) on {} cannot be read: {why}",
                    stored.rel,
                    medium.label()
                ),
            ));
        }
        if stored.size != row.size {
            return Err(fail(
                FailKind::Damaged,
                format!(
                    "{what} ({}) on {} is {} bytes, the manifest says {}",
                    stored.rel,
                    medium.label(),
                    stored.size,
                    row.size
                ),
            ));
        }
        fail::fail_point!("restore::part");
        self.progress.message(format!(
            "disc {}: {} ({what})",
            medium.disc,
            names::display(&s.raw_name, true)
        ));
        // Whatever a run cut short appended after the checked parts goes.
        asm.file
            .set_len(asm.written)
            .and_then(|()| asm.file.seek(SeekFrom::Start(asm.written)).map(|_| ()))
            .map_err(|e| write_fail("writing", e))?;
        let before = asm.whole.clone();
        let label = medium.label();
        let read_fail = |e: std::io::Error| {
            fail(
                FailKind::Unreadable,
                format!("{what} ({}): reading it from {label}: {e}", stored.rel),
            )
        };
        let mut r = medium.open(&stored).map_err(read_fail)?;
        let mut both = Both {
            part: Md5::new(),
            whole: &mut asm.whole,
            buf: &mut self.buf,
        };
        let copied = copy_loop(
            &mut *r,
            &mut asm.file,
            asm.written,
            &mut both,
            self.progress,
            &read_fail,
        );
        let part_md5 = crate::mkiso::hex(&both.part.finalize());
        if self.buf.len() < CHUNK {
            self.buf.resize(CHUNK, 0);
        }
        let total = match copied {
            Ok(t) => t,
            Err(f) => {
                asm.whole = before;
                return Err(f);
            }
        };
        if total != row.size || part_md5 != row.md5 {
            return Err(fail(
                FailKind::Damaged,
                format!(
                    "{what} ({}) is damaged on {}: {total} bytes with MD5 {part_md5}, the manifest says {} bytes with MD5 {}",
                    stored.rel,
                    medium.label(),
                    row.size,
                    row.md5
                ),
            ));
        }
        asm.written += total;
        asm.next += 1;
        asm.unjournaled += total;
        asm.journal.parts.push(JournalPart {
            part: row.part,
            offset: row.offset,
            size: row.size,
            md5: row.md5.clone(),
        });
        // Recorded when the disc is done with (a part per disc, as staged:
        // after every part), and every so many bytes: a crafted manifest
        // of a million tiny parts on one disc costs one journal, not a
        // million rewrites of a growing one. The part is durable before
        // the journal says it is done.
        let disc_done = s.part_rows.get(asm.next).is_none_or(|p| p.disc != row.disc);
        if disc_done || asm.unjournaled >= JOURNAL_EVERY {
            record(asm, self.scratch.dir()).map_err(|e| write_fail("writing its journal", e))?;
        }
        Ok(if asm.next == n {
            Appended::Last
        } else {
            Appended::Part
        })
    }

    /// Puts an assembled split file in place once its whole MD5 matches;
    /// reports a failure. The split is over either way.
    fn finish_split(
        &mut self,
        si: usize,
        disc: i64,
        report: &mut Report,
        target: &mut Target,
        on_event: &mut dyn FnMut(Event<'_>),
    ) {
        let state = std::mem::replace(&mut self.splits[si], SplitState::Over);
        let SplitState::Active(asm) = state else {
            return;
        };
        let s = &report.plan.split[si];
        let done = self.place_split(s, asm, target);
        self.drop_split(s.id);
        match done {
            Ok(true) => report.restored.add(s.bytes),
            Ok(false) => report.skipped_existing.add(s.bytes),
            Err(f) => {
                let nr = split_failed(s, disc, f);
                on_event(Event::Failed(&nr));
                report.failed.push(nr);
            }
        }
    }

    /// Checks the whole file, sets its mtime, makes it durable and renames
    /// it into place; `Ok(false)` when the same file is already there.
    fn place_split(
        &mut self,
        s: &SplitFile,
        asm: Assembly,
        target: &mut Target,
    ) -> std::result::Result<bool, Failure> {
        let Assembly {
            file,
            whole,
            written,
            ..
        } = asm;
        let md5 = whole.finalize();
        if written != s.bytes || md5[..] != s.item.md5 {
            return Err(fail(
                FailKind::Damaged,
                format!(
                    "put together from its {} parts it is {written} bytes with MD5 {}, the manifest says {} bytes with MD5 {}",
                    s.parts,
                    crate::mkiso::hex(&md5),
                    s.bytes,
                    crate::mkiso::hex(&s.item.md5)
                ),
            ));
        }
        file.set_modified(system_time(s.item.mtime))
            .map_err(|e| write_fail("setting its modification time", e))?;
        match crate::fault::injected("restore::sync") {
            Some(e) => Err(e),
            None => file.sync_all(),
        }
        .map_err(|e| write_fail("fsync", e))?;
        drop(file);
        // Checked again: the run may have spent hours on its other discs.
        let (dir, leaf, replace) = match self.check_target(&s.item, target)? {
            Checked::AlreadyThere => return Ok(false),
            Checked::Free { dir, leaf, replace } => (dir, leaf, replace),
        };
        let scratch = self.scratch.dir();
        match crate::fault::injected("restore::rename") {
            Some(e) => Err(e),
            None if replace => scratch.rename_to(&data_name(s.id), &dir, &leaf),
            None => scratch.rename_new(&data_name(s.id), &dir, &leaf),
        }
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EEXIST) => fail(
                FailKind::Exists,
                "a different file took its name while it was restored; kept (--overwrite replaces it)",
            ),
            _ => write_fail("renaming into place", e),
        })?;
        let _ = dir.sync();
        Ok(true)
    }

    /// Removes what this run's private folder holds of split file `id`.
    fn drop_split(&self, id: i64) {
        let dir = self.scratch.dir();
        let _ = dir.remove(&data_name(id));
        let _ = dir.remove(&journal_name(id));
        let _ = dir.remove(&journal_new_name(id));
    }

    /// At the end of the run: every split file not over is reported not
    /// restored; with the run `stopped`, what it has checked stays for the
    /// next run (returned: the names to keep in the private folder), else
    /// it is removed.
    pub(super) fn end_splits(
        &mut self,
        report: &mut Report,
        stopped: bool,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Vec<CString> {
        let mut keep = Vec::new();
        // Bounded by the plan's split files.
        for si in 0..report.plan.split.len() {
            let s = &report.plan.split[si];
            let state = std::mem::replace(&mut self.splits[si], SplitState::Over);
            let next_disc = |done: usize| s.part_rows.get(done).map_or(0, |p| p.disc);
            let (done, kept) = match state {
                SplitState::Over => continue,
                SplitState::Waiting if !s.restorable() => continue,
                SplitState::Waiting => (s.parts_done, false),
                SplitState::Active(mut a) => {
                    // What is appended and checked is recorded, then kept.
                    let recorded = !stopped
                        || a.unjournaled == 0
                        || record(&mut a, self.scratch.dir()).is_ok();
                    drop(a);
                    let n = read_journal(self.scratch.dir(), &journal_name(s.id))
                        .map_or(0, |j| j.parts.len());
                    (n, stopped && recorded)
                }
                SplitState::Kept => (
                    read_journal(self.scratch.dir(), &journal_name(s.id))
                        .map_or(0, |j| j.parts.len()),
                    true,
                ),
            };
            let reason = if kept && done > 0 {
                keep.push(data_name(s.id));
                keep.push(journal_name(s.id));
                format!(
                    "the run stopped before disc {}; its {done} parts checked so far are kept in the target's private folder, and the same command goes on from there",
                    next_disc(done)
                )
            } else {
                self.drop_split(s.id);
                format!("the run stopped before disc {}", next_disc(done))
            };
            let nr = NotRestored {
                name: s.name.clone(),
                raw_name: s.raw_name.clone(),
                disc: Some(next_disc(done)),
                id: Some(s.id),
                bytes: s.bytes,
                kind: FailKind::NotReached,
                reason,
                needs: Vec::new(),
            };
            // Few (each larger than a disc): each is named.
            on_event(Event::Failed(&nr));
            report.failed.push(nr);
        }
        keep
    }
}

/// How appending a part ended.
enum Appended {
    Part,
    Last,
    AlreadyThere,
}

/// Bytes appended at most between two journals (when parts are small and
/// many on one disc).
const JOURNAL_EVERY: u64 = 256 << 20;

/// Makes what is appended durable, then the journal that says so.
fn record(asm: &mut Assembly, dir: &Dir) -> std::io::Result<()> {
    match crate::fault::injected("restore::sync") {
        Some(e) => Err(e),
        None => asm.file.sync_data(),
    }?;
    write_journal(dir, &asm.journal)?;
    asm.unjournaled = 0;
    Ok(())
}

/// Writes the journal beside the old one, makes it durable, renames it
/// over, and makes the rename durable.
fn write_journal(dir: &Dir, j: &Journal) -> std::io::Result<()> {
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
