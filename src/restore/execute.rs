//! Executing the plan for one disc: its files in the order they lie on
//! the disc, each checked against what is already in the target, written
//! under a temp name while its MD5 is checked ([`super::copy`]), made
//! durable in batches and renamed into place. Every write goes through
//! [`super::target`]; nothing is written outside the target.

use std::ffi::CString;
use std::io::Read;

use md5::{Digest, Md5};

use crate::medium::{Medium, Stored};
use crate::names;
use crate::progress::Progress;

use super::copy::{copy_checked, CHUNK};
use super::plan::{disc_items, name_parts, Item};
use super::report::{not_restored, not_restored_id, FailKind, NotRestored, Report, Stopped, Tally};
use super::split::SplitState;
use super::target::{self, Blocked, Existing, Scratch, Target};
use super::tree::Attributes;
use super::{Event, RestoreOptions};
use crate::catalog::manifest::{Manifest, Tree};

/// How placing one file ended.
enum Placed<'i> {
    /// Written and verified under its temp name, waiting for its batch.
    Written(Pending<'i>),
    AlreadyThere,
}

/// What is at a file's place in the target.
pub(super) enum Checked {
    /// The same file (size and MD5): nothing to do.
    AlreadyThere,
    /// Free to take: its folder, its name there, and whether a different
    /// file there is replaced (`--overwrite`).
    Free {
        dir: target::Dir,
        leaf: CString,
        replace: bool,
    },
}

/// A verified temp file (closed) waiting to be made durable and renamed
/// into place.
struct Pending<'i> {
    item: &'i Item,
    /// Its folder (a handle of its own: the target keeps only the last).
    dir: target::Dir,
    /// Its name in the run's private temp folder.
    tmp: CString,
    /// Its name in its folder.
    leaf: CString,
    /// A different file was there and `--overwrite` replaces it; otherwise
    /// the name must still be free when the file is renamed to it.
    replace: bool,
}

/// Written files are made durable and renamed in batches of this many
/// bytes or files, with one flush of the target's filesystem (`syncfs`)
/// per batch instead of one disk flush per file, which on many disks costs
/// more than the writing. Every file is durable before its rename.
const BATCH_BYTES: u64 = 256 << 20;
const BATCH_FILES: usize = 256;

pub(super) struct Failure {
    pub(super) kind: FailKind,
    pub(super) reason: String,
    /// The target's filesystem is full: stop the run.
    pub(super) no_space: bool,
}

pub(super) fn fail(kind: FailKind, reason: impl Into<String>) -> Failure {
    Failure {
        kind,
        reason: reason.into(),
        no_space: false,
    }
}

/// The folders and the leaf of a checked name; a name that could leave
/// the target is refused.
pub(super) fn split_name(name: &[u8]) -> Result<(Vec<CString>, CString), Failure> {
    let mut parts = name_parts(name)
        .map_err(|why| fail(FailKind::RefusedName, format!("name refused: {why}")))?;
    let leaf = parts
        .pop()
        .ok_or_else(|| fail(FailKind::RefusedName, "name refused: it is empty"))?;
    Ok((parts, leaf))
}

/// Why the folder of a name cannot be reached, as a failure.
pub(super) fn blocked(b: Blocked) -> Failure {
    match b {
        Blocked::Symlink(at) => fail(
            FailKind::Symlink,
            format!("{at} in the target is a symbolic link; it is not followed"),
        ),
        Blocked::NotAFolder(at) => fail(
            FailKind::InTheWay,
            format!("{at} in the target is not a folder"),
        ),
        Blocked::Io(at, e) => write_fail(&format!("folder {at}"), e),
    }
}

pub(super) fn write_fail(what: &str, e: std::io::Error) -> Failure {
    Failure {
        kind: FailKind::Write,
        no_space: crate::fsutil::is_no_space(&e),
        reason: format!("{what}: {e}"),
    }
}

pub(super) struct Run<'a> {
    pub(super) opts: &'a RestoreOptions,
    /// The recorded modes, owners and mtimes, and how they are given.
    pub(super) attrs: Attributes<'a>,
    pub(super) buf: Vec<u8>,
    /// Buffers for chunks hashed on another thread, kept between files.
    pool: Vec<Vec<u8>>,
    pub(super) progress: &'a Progress,
    /// Where files are written before they are renamed into place.
    pub(super) scratch: &'a Scratch,
    /// Each of the plan's split files, as far as this run got with it.
    pub(super) splits: Vec<SplitState>,
    /// Whether this run finishes one that was cut off: the folders it made
    /// are there already, and are given their attributes all the same.
    pub(super) resuming: bool,
    /// The plan's folders (entry ids) that were in the target before this
    /// run wrote anything.
    pub(super) folders_there: std::collections::HashSet<i64>,
    /// The manifest the plan was made from: a disc's files are read again
    /// from it when the disc's turn comes.
    history: &'a Manifest,
}

/// One thing to do on a disc: a whole file, or a part of a split file
/// (index in the plan's `split`, index in its parts).
enum Work<'i> {
    Whole(Option<Stored>, &'i Item),
    Piece(usize, usize),
}

impl<'a> Run<'a> {
    /// Whether `dir` (the folder of `parents`) is on the filesystem of the
    /// private folder, from which what is made is renamed into place: a
    /// mount point inside the target is not.
    pub(super) fn on_scratch_filesystem(
        &self,
        dir: &target::Dir,
        parents: &[CString],
    ) -> Result<(), Failure> {
        match dir.id() {
            Ok((dev, _)) if dev == self.scratch.device() => Ok(()),
            Ok(_) => Err(fail(
                FailKind::Write,
                format!(
                    "{} is on another filesystem than the target (a mount point inside it); restore it with a --to of its own",
                    if parents.is_empty() { ".".into() } else { target::shown(parents) }
                ),
            )),
            Err(e) => Err(write_fail("checking its folder", e)),
        }
    }

    pub(super) fn new(
        opts: &'a RestoreOptions,
        progress: &'a Progress,
        scratch: &'a Scratch,
        splits: usize,
        tree: &'a Tree<'a>,
        history: &'a Manifest,
    ) -> Run<'a> {
        Run {
            opts,
            attrs: Attributes::new(opts, tree),
            scratch,
            buf: vec![0; CHUNK],
            pool: Vec::new(),
            progress,
            splits: (0..splits).map(|_| SplitState::Waiting).collect(),
            resuming: false,
            folders_there: Default::default(),
            history,
        }
    }

    /// Restores one disc's files, in the order they lie on the disc.
    /// `Err` when the run must stop (the target is full).
    pub(super) fn disc(
        &mut self,
        medium: &Medium,
        report: &mut Report,
        target: &mut Target,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> std::result::Result<(), Stopped> {
        let Some(di) = report.plan.discs.iter().position(|d| d.disc == medium.disc) else {
            return Ok(());
        };
        let dp = &report.plan.discs[di];
        // What is read: its whole files and the parts of files that can be
        // restored (a dry run keeps no pieces, but reads no disc either).
        let piece_bytes: u64 = dp
            .pieces
            .iter()
            .map(|&(si, k)| report.plan.split[si].part_rows[k].size)
            .sum();
        on_event(Event::DiscStarted {
            disc: dp.disc,
            files: dp.files,
            parts: dp.pieces.len() as u64,
            bytes: dp.whole_bytes.saturating_add(piece_bytes),
        });
        // The disc's files, read again from the manifest: held for the
        // disc's time only.
        let got = disc_items(self.history, dp);
        for &id in &got.gone {
            let nr = not_restored_id(id, medium.disc, FailKind::Unreadable, got.why.clone());
            on_event(Event::Failed(&nr));
            report.failed.push(nr);
        }
        // Taken out of the report for the disc's time: the report is
        // written to while they are worked through.
        let pieces = std::mem::take(&mut report.plan.discs[di].pieces);
        let outcome = self.disc_work(medium, &got.items, &pieces, report, target, on_event);
        report.plan.discs[di].pieces = pieces;
        outcome
    }

    fn disc_work(
        &mut self,
        medium: &Medium,
        items: &[Item],
        pieces: &[(usize, usize)],
        report: &mut Report,
        target: &mut Target,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> std::result::Result<(), Stopped> {
        let mut work: Vec<(u128, i64, usize, Work<'_>)> = items
            .iter()
            .map(|it| {
                let stored = medium.stored(it.id);
                let order = stored.as_ref().map_or(u128::MAX, |s| s.order);
                (order, it.id, 0, Work::Whole(stored, it))
            })
            .collect();
        for &(si, k) in pieces {
            let s = &report.plan.split[si];
            let order = medium
                .stored_part(s.id, s.part_rows[k].part)
                .map_or(u128::MAX, |st| st.order);
            work.push((order, s.id, k, Work::Piece(si, k)));
        }
        // A split file's parts on one disc go in part order, whatever
        // their names' order on the disc.
        let mut first: std::collections::HashMap<i64, u128> = std::collections::HashMap::new();
        for (order, id, _, w) in &work {
            if let Work::Piece(..) = w {
                let e = first.entry(*id).or_insert(*order);
                *e = (*e).min(*order);
            }
        }
        for (order, id, _, w) in &mut work {
            if let Work::Piece(..) = w {
                *order = first[id];
            }
        }
        work.sort_by_key(|(order, id, k, _)| (*order, *id, *k));
        let mut failed = Vec::new();
        let mut pending: Vec<Pending<'_>> = Vec::new();
        let mut pending_bytes = 0u64;
        let mut full = false;
        let mut next = 0;
        let mut interrupted = false;
        while next < work.len() && !full && !interrupted {
            fail::fail_point!("restore::pause");
            let (stored, item) = match &work[next].3 {
                Work::Whole(stored, item) => (stored, *item),
                Work::Piece(si, k) => {
                    next += 1;
                    full |= self.split_piece(medium, *si, *k, report, target, on_event);
                    interrupted = crate::interrupt::requested();
                    if (next == work.len() || full || interrupted) && !pending.is_empty() {
                        full |= finish_batch(
                            self.scratch,
                            &mut pending,
                            medium.disc,
                            &mut report.restored,
                            &mut failed,
                            on_event,
                        );
                        pending_bytes = 0;
                    }
                    continue;
                }
            };
            next += 1;
            let v = item;
            self.progress.message(format!(
                "disc {}: {}",
                medium.disc,
                names::display(&v.name, true)
            ));
            let result = match stored {
                None => Err(fail(
                    FailKind::Unreadable,
                    format!("it is not on {}", medium.label()),
                )),
                Some(s) => self.place(medium, s, item, target),
            };
            match result {
                Ok(Placed::Written(p)) => {
                    pending_bytes = pending_bytes.saturating_add(v.size);
                    pending.push(p);
                }
                Ok(Placed::AlreadyThere) => report.skipped_existing.add(v.size),
                Err(f) => {
                    full = f.no_space;
                    let nr = not_restored(v, medium.disc, f.kind, f.reason);
                    on_event(Event::Failed(&nr));
                    failed.push(nr);
                }
            }
            interrupted = crate::interrupt::requested();
            if pending_bytes >= BATCH_BYTES
                || pending.len() >= BATCH_FILES
                || next == work.len()
                || full
                || interrupted
            {
                full |= finish_batch(
                    self.scratch,
                    &mut pending,
                    medium.disc,
                    &mut report.restored,
                    &mut failed,
                    on_event,
                );
                pending_bytes = 0;
            }
        }
        let mut stop = None;
        if interrupted {
            stop = Some(Stopped {
                reason: "interrupted; run the same command again to resume (files already restored are skipped)".into(),
                error: false,
                interrupted: true,
            });
            for rest in work[next..].iter().filter_map(whole_item) {
                failed.push(not_restored(
                    rest,
                    medium.disc,
                    FailKind::NotReached,
                    "interrupted".into(),
                ));
            }
        } else if full {
            stop = Some(Stopped {
                reason: format!(
                    "the filesystem of {} is full; free space and run again (files already restored are skipped)",
                    target.path().display()
                ),
                error: true,
                interrupted: false,
            });
            for rest in work[next..].iter().filter_map(whole_item) {
                failed.push(not_restored(
                    rest,
                    medium.disc,
                    FailKind::NotReached,
                    "the target's filesystem is full".into(),
                ));
            }
        }
        report.failed.extend(failed);
        if let Err(e) = target.sync() {
            // The files are renamed into place; only the durability of
            // their folders against a power cut is in doubt.
            let nr = NotRestored {
                name: target.path().display().to_string(),
                raw_name: Vec::new(),
                disc: Some(medium.disc),
                id: None,
                bytes: 0,
                kind: FailKind::Write,
                reason: format!("flushing the target's filesystem failed: {e}"),
                needs: Vec::new(),
            };
            on_event(Event::Failed(&nr));
            report.failed.push(nr);
        }
        match stop {
            Some(s) => Err(s),
            None => Ok(()),
        }
    }

    /// Writes one file under its temp name and verifies it, or says why
    /// not (leaving no temp file behind).
    fn place<'i>(
        &mut self,
        medium: &Medium,
        stored: &Stored,
        item: &'i Item,
        target: &mut Target,
    ) -> std::result::Result<Placed<'i>, Failure> {
        let v = item;
        if let Some(why) = stored.unreadable {
            return Err(fail(
                FailKind::Unreadable,
                format!("on {} it cannot be read: {why}", medium.label()),
            ));
        }
        if stored.size != v.size {
            return Err(fail(
                FailKind::Damaged,
                format!(
                    "on {} it is {} bytes, the manifest says {}",
                    medium.label(),
                    stored.size,
                    v.size
                ),
            ));
        }
        let (dir, leaf, replace) = match self.check_target(item, target)? {
            Checked::AlreadyThere => return Ok(Placed::AlreadyThere),
            Checked::Free { dir, leaf, replace } => (dir, leaf, replace),
        };
        let scratch = self.scratch.dir();
        let tmp = self.scratch.temp_name();
        let mut file = scratch
            .create_new(&tmp)
            .map_err(|e| write_fail("creating a temp file", e))?;
        let copied = copy_checked(
            medium,
            stored,
            v,
            &mut file,
            &mut self.buf,
            &mut self.pool,
            self.progress,
        );
        let given = copied.and_then(|()| self.attrs.give_file(&file, v.id));
        drop(file);
        if let Err(f) = given {
            let _ = scratch.remove(&tmp);
            return Err(f);
        }
        Ok(Placed::Written(Pending {
            item,
            dir,
            tmp,
            leaf,
            replace,
        }))
    }

    /// Where `item` goes in the target, checked: its folder (created, never
    /// through a link, on the scratch folder's filesystem), and what is at
    /// its name (the same file already, a different one that `--overwrite`
    /// replaces, or nothing).
    pub(super) fn check_target(
        &mut self,
        item: &Item,
        target: &mut Target,
    ) -> std::result::Result<Checked, Failure> {
        let v = item;
        let (parents, leaf) = split_name(&item.name)?;
        let (parents, leaf) = (parents.as_slice(), &leaf);
        let dir = target.folder(parents).map_err(blocked)?;
        let mut replace = false;
        match dir.entry(leaf) {
            Ok(Existing::Absent) => {}
            Ok(Existing::Symlink) => {
                return Err(fail(
                    FailKind::Symlink,
                    "a symbolic link is there; it is not followed or replaced",
                ))
            }
            Ok(Existing::Folder) => return Err(fail(FailKind::InTheWay, "a folder is there")),
            Ok(Existing::Other) => return Err(fail(FailKind::InTheWay, "a special file is there")),
            Ok(Existing::File { size }) => {
                let same = size == v.size
                    && dir
                        .open_file(leaf)
                        .ok()
                        .and_then(|f| hash(f, &mut self.buf, self.progress).ok())
                        .is_some_and(|md5| md5 == crate::mkiso::hex(&v.md5));
                if same {
                    return Ok(Checked::AlreadyThere);
                }
                if !self.opts.overwrite {
                    return Err(fail(
                        FailKind::Exists,
                        "a different file is there; kept (--overwrite replaces it)",
                    ));
                }
                replace = true;
            }
            Err(e) => return Err(write_fail("checking the target", e)),
        }
        // The temp file is renamed from the private folder at the top of
        // the target, which a folder on another filesystem (a mount point
        // inside the target) cannot take.
        self.on_scratch_filesystem(dir, parents)?;
        let dir = dir
            .try_clone()
            .map_err(|e| write_fail("opening its folder", e))?;
        Ok(Checked::Free {
            dir,
            leaf: leaf.clone(),
            replace,
        })
    }
}

/// The whole file of a piece of work, if it is one (split files left
/// unfinished are reported at the end of the run).
fn whole_item<'i>(w: &(u128, i64, usize, Work<'i>)) -> Option<&'i Item> {
    match &w.3 {
        Work::Whole(_, item) => Some(item),
        Work::Piece(..) => None,
    }
}

/// Makes a batch of written files durable and renames each into place;
/// one that fails is removed and reported. Returns whether the target's
/// filesystem is full.
fn finish_batch(
    scratch: &Scratch,
    pending: &mut Vec<Pending<'_>>,
    disc: i64,
    restored: &mut Tally,
    failed: &mut Vec<NotRestored>,
    on_event: &mut dyn FnMut(Event<'_>),
) -> bool {
    let mut full = false;
    // One flush of the target's filesystem makes the whole batch durable;
    // should it report an error, each file is fsynced to find out which.
    let synced = pending.first().is_some_and(|p| flush_filesystem(&p.dir));
    for p in pending.drain(..) {
        let v = p.item;
        let leaf = &p.leaf;
        let durable = match crate::fault::injected("restore::sync") {
            Some(e) => Err(e),
            None if synced => Ok(()),
            None => scratch.dir().open_file(&p.tmp).and_then(|f| f.sync_all()),
        };
        let done = durable.map_err(|e| write_fail("fsync", e)).and_then(|()| {
            // The name was checked when the file was written, up to a
            // batch ago: a file that took it since (another program, or a
            // name that a case-insensitive target folds onto another of
            // this batch) is kept, never replaced unasked.
            match crate::fault::injected("restore::rename") {
                Some(e) => Err(e),
                None if p.replace => scratch.dir().rename_to(&p.tmp, &p.dir, leaf),
                None => scratch.dir().rename_new(&p.tmp, &p.dir, leaf),
            }
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EEXIST) => Failure {
                    kind: FailKind::Exists,
                    no_space: false,
                    reason: "a different file took its name while it was restored; kept (--overwrite replaces it)".into(),
                },
                _ => write_fail("renaming into place", e),
            })
        });
        match done {
            Ok(()) => restored.add(v.size),
            Err(f) => {
                let _ = scratch.dir().remove(&p.tmp);
                full |= f.no_space;
                let nr = not_restored(v, disc, f.kind, f.reason);
                on_event(Event::Failed(&nr));
                failed.push(nr);
            }
        }
    }
    full
}

/// One flush of the filesystem holding `dir`; whether it succeeded.
fn flush_filesystem(dir: &target::Dir) -> bool {
    fail::fail_point!("restore::syncfs", |_| false);
    crate::fsutil::sync_filesystem_of(std::os::fd::AsFd::as_fd(dir)).is_ok()
}

/// The lowercase hex MD5 of what `r` yields.
fn hash(mut r: impl Read, buf: &mut [u8], progress: &Progress) -> std::io::Result<String> {
    let mut h = Md5::new();
    loop {
        let n = match r.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        progress.add_bytes(n as u64);
    }
    Ok(crate::mkiso::hex(&h.finalize()))
}
