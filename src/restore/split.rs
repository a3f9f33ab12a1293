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

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use md5::{Digest, Md5};

use crate::medium::Medium;
use crate::names;

use super::copy::{copy_loop, system_time, ChunkHasher, CHUNK};
use super::execute::{fail, write_fail, Checked, Failure, Run};
use super::journal::{
    data_name, journal_name, journal_new_name, read_journal, write_journal, Journal, JournalPart,
    Resumable,
};
use super::plan::SplitFile;
use super::report::{FailKind, NotRestored, Report};
use super::target::{Dir, Existing, Target};
use super::Event;

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
        self.attrs.give_file(&file, s.id)?;
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
