//! Staging: copying new and changed files into the open disc, crash-safe,
//! and closing discs when they are full.
//!
//! The protocol for every batch of files:
//! 1. reserve ids (`copied=0`) in one transaction;
//! 2. copy each file to `files/<id div 256>/<id>.partial` while computing its
//!    MD5 in the same pass (two workers, so both cores hash);
//! 3. flush the filesystem once for the whole batch (`syncfs`), rename each
//!    copy into place, fsync the folders;
//! 4. record md5 and `copied=1` in one transaction.
//!
//! A crash before 4 leaves reservations that the next run removes with their
//! files (see `workdir::repair`); no reader ever sees a `copied=1` row whose
//! file is missing or differs. Batching keeps crash safety from costing one
//! fsync round-trip per small file.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::catalog::{self, NewFile};
use crate::disc;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::names;
use crate::progress::Progress;
use crate::scan::{self, Change, Excludes, Skipped};
use crate::workdir::{Repairs, Workdir};

mod copy;
mod split;
use copy::{copy_all, rename_copies, Outcome, Targets};

/// Files per batch (one reservation and one commit transaction each).
const BATCH_FILES: usize = 2000;
/// Bytes per batch: large, so big files pay for few filesystem flushes.
const BATCH_BYTES: u64 = 1 << 30;
/// What closing a disc may add to the catalogue (its `discs` rows).
const CLOSE_GROWTH: u64 = 4096;
/// Room kept free on the workdir's filesystem for the catalogue's own growth.
pub(super) const SPACE_MARGIN: u64 = 2 << 20;

/// What happened, as it happens, for the binary to print.
#[derive(Debug)]
pub enum Event<'a> {
    /// A file was backed up (or, in a dry run, would be).
    Staged {
        path: &'a Path,
        desc: &'a str,
        id: i64,
        disc: i64,
        size: u64,
    },
    /// A file backed up before is gone from the watched folder.
    Deleted { path: &'a Path },
    /// A file could not be backed up.
    Skipped(&'a Skipped),
    /// A disc was closed and waits for its image.
    DiscClosed { disc: i64, files: u64, bytes: u64 },
    /// An interrupted earlier run was repaired.
    Repaired(&'a Repairs),
    /// A split file's version still being staged will never be a backup
    /// (the file changed or vanished before its last part); its parts stay
    /// on their discs. The file, if still there, is taken again.
    Abandoned { path: &'a Path, why: &'a str },
}

/// Options of `monitor`.
#[derive(Debug, Clone, Default)]
pub struct MonitorOptions {
    /// Report what would be staged; write nothing.
    pub dry_run: bool,
    /// Build the image of a disc a split file's part filled, beside the
    /// copy of its next part or before it (so the staging area needs about
    /// one disc of room; two for the two to overlap).
    pub images: bool,
}

/// What a `monitor` run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MonitorReport {
    pub scanned_files: u64,
    pub scanned_bytes: u64,
    pub staged_files: u64,
    pub staged_bytes: u64,
    pub deleted_files: u64,
    pub skipped_files: u64,
    /// Folders, symbolic links and hard links recorded (new or changed).
    pub entries_recorded: u64,
    /// Folders and links recorded gone.
    pub entries_deleted: u64,
    pub closed_discs: Vec<i64>,
    pub open_disc: i64,
    pub open_disc_usage: u64,
    pub disc_size: u64,
    pub dry_run: bool,
    /// Set when the run stopped because the workdir's filesystem is full.
    #[serde(skip)]
    pub no_space: Option<String>,
    /// Images built during the run (between the parts of a split file).
    #[serde(skip)]
    pub images: Vec<crate::mkiso::ImageReport>,
}

impl MonitorReport {
    /// Whether anything changed (the run prints nothing when not).
    pub fn changed(&self) -> bool {
        self.staged_files > 0
            || self.deleted_files > 0
            || self.entries_recorded > 0
            || self.entries_deleted > 0
            || !self.closed_discs.is_empty()
    }
}

/// What a file adds to its disc: its sectors and structures, and its row
/// in the catalogue the disc carries. The name is in the row and in the
/// `filenames` index, whose B-tree pages may be only half full after
/// splits: four times the name, and the row's other columns, bound it.
pub(super) fn cost(change: &Change) -> u64 {
    disc::file_cost(change.size).saturating_add(4 * change.name.len() as u64 + ROW_COST)
}

/// The catalogue grows in whole pages: one more row can add a page to the
/// `files` table and to each of its two indexes at once, beyond what the
/// rows' costs average out to, and the frozen copy can take a page more
/// than the live catalogue measured. Kept free on every disc.
pub(super) const CATALOG_SLACK: u64 = 4 * 4096;

/// A catalogue row's columns besides its name (md5, desc, numbers), as the
/// B-tree stores them at worst.
pub(super) const ROW_COST: u64 = 256;

struct Stager<'w, 'e> {
    wd: &'w mut Workdir,
    opts: MonitorOptions,
    progress: &'w Progress,
    on_event: &'e mut dyn FnMut(Event<'_>),
    disc: i64,
    usage: u64,
    db_base: u64,
    pending: Vec<Change>,
    pending_bytes: u64,
    deferred: Vec<Change>,
    deferred_cost: u64,
    /// Files staged on the open disc: a disc is closed only when it holds
    /// one, so no pass closes an empty disc.
    on_disc: u64,
    free: u64,
    report: MonitorReport,
    made_dirs: BTreeSet<PathBuf>,
    /// New or changed folders and links, recorded after the walk.
    entries: Vec<catalog::tree::Entry>,
    stop: Option<Error>,
    /// Split versions an earlier run left with parts still to come, by
    /// name key: resumed when their file comes by unchanged.
    in_progress: std::collections::HashMap<u128, catalog::SplitInProgress>,
    /// Deferred files that the catalogue's growth made too large for an
    /// empty disc: split once the batch is drained.
    to_split: Vec<Change>,
    /// The image of the disc a split file filled last, being built beside
    /// the copy of its next part.
    image_builder: Option<split::ImageBuilder>,
}

/// Walks the watched folder and stages every new or changed file; records
/// deletions; closes discs as they fill.
pub fn monitor(
    wd: &mut Workdir,
    repairs: &Repairs,
    opts: &MonitorOptions,
    progress: &Progress,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<MonitorReport> {
    if !repairs.is_empty() {
        on_event(Event::Repaired(repairs));
    }
    let settings = wd.settings.clone();
    let excludes = Excludes::new(&settings.excludes)?;
    if !settings.watched.is_dir() {
        return Err(Error::Invalid(format!(
            "the watched folder {} is missing or not a folder (is it mounted?)",
            settings.watched.display()
        )));
    }
    if !opts.dry_run {
        wd.catalog.ensure_tree_tables()?;
    }
    let mut live = wd.catalog.live_files()?;
    let mut tree = wd.catalog.live_tree()?;
    let mut st = Stager::new(wd, opts, progress, on_event)?;
    progress.message("scanning");
    let stats = scan::walk(&settings.watched, &excludes, &mut live, &mut tree, &mut st)?;
    st.drain()?;
    st.report.scanned_files = stats.files;
    st.report.scanned_bytes = stats.bytes;
    let complete = stats.complete && st.stop.is_none();
    // The live files no lookup asked for: 8 bytes each, bounded by the
    // files gone since the last run (and, after a stopped walk, those not
    // walked).
    let unseen = live.finish()?;
    st.record_entries(&unseen, &tree, &stats, &excludes, complete)?;
    if complete {
        st.record_deletions(unseen, &stats, &excludes)?;
        st.abandon_unseen_splits()?;
    }
    if !opts.dry_run {
        st.wd.catalog.set_state_f64("last_run", catalog::now())?;
    }
    st.finish()
}

/// Stages the given files again (e.g. after a disc was lost) through the
/// same crash-safe path as `monitor`, closing discs as they fill.
pub fn stage_files(
    wd: &mut Workdir,
    files: Vec<Change>,
    progress: &Progress,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<MonitorReport> {
    let mut st = Stager::new(wd, &MonitorOptions::default(), progress, on_event)?;
    for change in files {
        if st.add(change)?.is_break() {
            break;
        }
    }
    st.drain()?;
    st.finish()
}

impl scan::Sink for Stager<'_, '_> {
    fn change(&mut self, change: Change) -> Result<ControlFlow<()>> {
        self.add(change)
    }

    fn skip(&mut self, skipped: Skipped) {
        self.report.skipped_files += 1;
        (self.on_event)(Event::Skipped(&skipped));
    }

    fn entry(&mut self, entry: catalog::tree::Entry) -> Result<()> {
        self.entries.push(entry);
        Ok(())
    }
}

impl<'w, 'e> Stager<'w, 'e> {
    fn new(
        wd: &'w mut Workdir,
        opts: &MonitorOptions,
        progress: &'w Progress,
        on_event: &'e mut dyn FnMut(Event<'_>),
    ) -> Result<Self> {
        let disc = wd.open_disc()?;
        let wd_in_progress = wd
            .catalog
            .splits_in_progress()?
            .into_iter()
            .map(|s| (catalog::name_key(&s.name), s))
            .collect();
        let db_base = wd.catalog.db_size()?;
        let staged = wd.catalog.disc_usage(disc)?;
        let usage = disc::usage(&staged, db_base) + CATALOG_SLACK;
        let free = if opts.dry_run {
            u64::MAX
        } else {
            fsutil::available_space(&wd.layout.root)?
        };
        let disc_size = wd.settings.disc_size;
        Ok(Stager {
            wd,
            opts: opts.clone(),
            progress,
            on_event,
            disc,
            usage,
            db_base,
            pending: Vec::new(),
            pending_bytes: 0,
            deferred: Vec::new(),
            deferred_cost: 0,
            on_disc: staged.files,
            free,
            report: MonitorReport {
                disc_size,
                dry_run: opts.dry_run,
                ..Default::default()
            },
            made_dirs: BTreeSet::new(),
            entries: Vec::new(),
            stop: None,
            to_split: Vec::new(),
            image_builder: None,
            in_progress: if opts.dry_run {
                Default::default()
            } else {
                wd_in_progress
            },
        })
    }

    /// Stages what is pending, then what waited for the next disc, then
    /// the deferred files that became too large for an empty disc, split.
    fn drain(&mut self) -> Result<()> {
        // Bounded by the files: a file moves from the deferred ones to those
        // to split at most once, and each split stages or drops it.
        loop {
            self.drain_deferred()?;
            if self.stop.is_some() || self.to_split.is_empty() {
                return Ok(());
            }
            for change in std::mem::take(&mut self.to_split) {
                if self.stop.is_some() {
                    break;
                }
                let _ = self.split(change)?;
            }
        }
    }

    fn drain_deferred(&mut self) -> Result<()> {
        // Bounded by the files deferred: each turn either closes a disc that
        // holds a file, or replans onto an empty one, which takes the first
        // deferred file that fits an empty disc and sets aside, to split,
        // every one that does not; a turn that stages nothing ends the loop.
        while self.stop.is_none() {
            self.flush()?;
            if self.deferred.is_empty() || self.stop.is_some() {
                break;
            }
            let before = (self.on_disc, self.deferred.len());
            self.close_and_replan()?;
            if self.pending.is_empty() && (self.on_disc, self.deferred.len()) == before {
                break;
            }
        }
        Ok(())
    }

    /// The report; a full filesystem is reported, other stops are errors.
    fn finish(mut self) -> Result<MonitorReport> {
        self.progress.finish();
        self.report.open_disc = self.disc;
        // What is really staged (as status says), not what was planned: a
        // run stopped by a full filesystem planned more than it staged.
        self.report.open_disc_usage = if self.opts.dry_run {
            self.usage
        } else {
            disc::usage(
                &self.wd.catalog.disc_usage(self.disc)?,
                self.wd.catalog.db_size()?,
            )
        };
        if let Some(err) = self.stop.take() {
            match err {
                Error::NoSpace { .. } => self.report.no_space = Some(err.to_string()),
                Error::Io { ref source, .. } if fsutil::is_no_space(source) => {
                    self.report.no_space = Some(err.to_string())
                }
                other => return Err(other),
            }
        }
        Ok(self.report)
    }

    /// What an empty disc takes with the catalogue as it is now, which is
    /// what the next disc will carry (its own rows are in each file's cost).
    fn empty_usage(&self) -> u64 {
        disc::usage(&Default::default(), self.db_base) + CATALOG_SLACK
    }

    fn too_big(&self, change: &Change) -> bool {
        cost(change).saturating_add(self.empty_usage()) > self.report.disc_size
    }

    /// Takes one change from the walk: into the pending batch, or deferred
    /// to the next disc when it does not fit the open one.
    fn add(&mut self, change: Change) -> Result<ControlFlow<()>> {
        if self.stop.is_some() {
            return Ok(ControlFlow::Break(()));
        }
        if self.too_big(&change) {
            return self.split(change);
        }
        let c = cost(&change);
        if self.usage + c > self.report.disc_size {
            self.deferred_cost += c;
            self.deferred.push(change);
            if self.deferred_cost >= self.report.disc_size {
                // Enough waiting to fill a whole disc: close now, keep memory flat.
                self.flush()?;
                if self.stop.is_none() {
                    self.close_and_replan()?;
                }
            }
        } else {
            self.usage += c;
            self.pending_bytes += change.size;
            self.pending.push(change);
            if self.pending.len() >= BATCH_FILES || self.pending_bytes >= BATCH_BYTES {
                self.flush()?;
            }
        }
        if self.stop.is_some() {
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Closes the open disc, if it holds a file, and places the deferred
    /// files on the next (or, if it held none, on this one again): a file
    /// that does not fit the empty disc with the catalogue as it is now is
    /// too big, reported and dropped.
    fn close_and_replan(&mut self) -> Result<()> {
        if !self.opts.dry_run {
            // The catalogue the next disc starts with is this one, closed:
            // closing adds a row or two, within a page.
            self.db_base = self.wd.catalog.db_size()?.saturating_add(CLOSE_GROWTH);
        }
        // A disc is never closed for a file that fits no disc. The files
        // that fit none by this estimate are judged again below, against
        // the catalogue the close really leaves.
        let deferred = std::mem::take(&mut self.deferred);
        self.deferred_cost = 0;
        let mut unfit = Vec::new();
        for change in deferred {
            if self.too_big(&change) {
                unfit.push(change);
            } else {
                self.deferred_cost += cost(&change);
                self.deferred.push(change);
            }
        }
        if self.deferred.is_empty() {
            self.to_split.append(&mut unfit);
            return Ok(());
        }
        self.deferred.append(&mut unfit);
        if self.on_disc == 0 {
            // Nothing to close for: the open disc is as empty as a new one,
            // and carries the catalogue as it is.
            if !self.opts.dry_run {
                self.db_base = self.wd.catalog.db_size()?;
            }
        } else if self.opts.dry_run {
            self.report.closed_discs.push(self.disc);
            (self.on_event)(Event::DiscClosed {
                disc: self.disc,
                files: 0,
                bytes: 0,
            });
            self.disc += 1;
        } else {
            let usage = self.wd.catalog.disc_usage(self.disc)?;
            let closed = match self.wd.close_disc() {
                Ok(id) => id,
                Err(e @ Error::NoSpace { .. }) => {
                    self.stop = Some(e);
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            self.report.closed_discs.push(closed);
            (self.on_event)(Event::DiscClosed {
                disc: closed,
                files: usage.files,
                bytes: usage.bytes,
            });
            self.disc = self.wd.open_disc()?;
            self.db_base = self.wd.catalog.db_size()?;
        }
        self.on_disc = 0;
        self.usage = self.empty_usage() + self.pending.iter().map(cost).sum::<u64>();
        let deferred = std::mem::take(&mut self.deferred);
        self.deferred_cost = 0;
        for change in deferred {
            if self.too_big(&change) {
                self.to_split.push(change);
                continue;
            }
            let c = cost(&change);
            if self.usage + c > self.report.disc_size {
                self.deferred_cost += c;
                self.deferred.push(change);
            } else {
                self.usage += c;
                self.pending_bytes += change.size;
                self.pending.push(change);
            }
        }
        Ok(())
    }

    /// Stages the pending batch through the crash-safe protocol.
    fn flush(&mut self) -> Result<()> {
        let mut batch = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        if batch.is_empty() {
            return Ok(());
        }
        if self.opts.dry_run {
            for c in &batch {
                self.on_disc += 1;
                self.report.staged_files += 1;
                self.report.staged_bytes += c.size;
                (self.on_event)(Event::Staged {
                    path: &c.path,
                    desc: &c.desc,
                    id: 0,
                    disc: self.disc,
                    size: c.size,
                });
            }
            return Ok(());
        }
        // Free space: stage the prefix that fits, then stop cleanly.
        let mut need = SPACE_MARGIN;
        let mut fits = batch.len();
        for (i, c) in batch.iter().enumerate() {
            need += c.size;
            if need > self.free {
                fits = i;
                self.stop = Some(Error::NoSpace {
                    path: self.wd.layout.root.clone(),
                    needed: need,
                    available: self.free,
                });
                break;
            }
        }
        // What does not fit the filesystem is not staged: its room on the
        // disc is given back.
        let unplanned: u64 = batch[fits..].iter().map(cost).sum();
        self.usage = self.usage.saturating_sub(unplanned);
        batch.truncate(fits);
        if batch.is_empty() {
            return Ok(());
        }
        let now = catalog::now();
        let new: Vec<NewFile<'_>> = batch
            .iter()
            .map(|c| NewFile {
                name: &c.name,
                size: c.size,
                mtime: c.mtime(),
                disc_id: self.disc,
                desc: &c.desc,
                timestamp: now,
                attrs: c.attrs.as_ref(),
            })
            .collect();
        let ids = self.wd.catalog.reserve(&new)?;
        drop(new);
        if let Some(e) = crate::fault::injected("stage::reserve") {
            return Err(Error::io(self.wd.catalog.path(), e));
        }
        let disc_dir = self.wd.layout.disc_dir(self.disc);
        let mut new_dirs = false;
        for &id in &ids {
            let dir = disc_dir.join(crate::disc::file_dir(id));
            if !self.made_dirs.contains(&dir) {
                if !dir.is_dir() {
                    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                    new_dirs = true;
                }
                self.made_dirs.insert(dir);
            }
        }
        let targets = Targets::open(
            ids.iter()
                .map(|&id| self.wd.layout.staged_file(self.disc, id))
                .collect(),
        )?;
        let outcomes = copy_all(&batch, &targets, self.progress);

        // Durability of the data, then of the names.
        if let Some(e) = crate::fault::injected("stage::sync") {
            return Err(Error::io(&disc_dir, e));
        }
        fsutil::sync_filesystem(&disc_dir)?;
        let mut renamed = rename_copies(&outcomes, &targets).into_iter();
        let mut done = Vec::new();
        let mut failed = Vec::new();
        let mut dirs = BTreeSet::new();
        let mut fatal = None;
        for (i, outcome) in outcomes.iter().enumerate() {
            let target = targets.path(i);
            let partial = fsutil::partial_path(target);
            let rename = renamed.next().flatten();
            match outcome {
                Outcome::Copied(md5) => match rename.unwrap_or(Ok(())) {
                    Ok(()) => {
                        done.push((ids[i], md5.clone()));
                        dirs.insert(targets.dir_of(i));
                    }
                    Err(e) => {
                        // The id stays ours until the reservation is
                        // dropped: nothing may be left under either name.
                        targets.remove(i);
                        failed.push(ids[i]);
                        fatal.get_or_insert(Error::io(target, e));
                    }
                },
                other => {
                    targets.remove(i);
                    failed.push(ids[i]);
                    match other {
                        Outcome::Source(reason) => {
                            self.report.skipped_files += 1;
                            let skip = Skipped {
                                path: batch[i].path.clone(),
                                reason: reason.clone(),
                            };
                            (self.on_event)(Event::Skipped(&skip));
                        }
                        Outcome::Target(e) => {
                            if fsutil::is_no_space(e) {
                                if self.stop.is_none() {
                                    self.stop = Some(Error::io(
                                        partial.clone(),
                                        std::io::Error::from_raw_os_error(libc::ENOSPC),
                                    ));
                                }
                            } else {
                                fatal.get_or_insert(Error::io(
                                    partial.clone(),
                                    std::io::Error::new(e.kind(), e.to_string()),
                                ));
                            }
                        }
                        Outcome::Copied(_) => {}
                    }
                }
            }
        }
        for &d in &dirs {
            targets.sync_dir(d)?;
        }
        if new_dirs {
            fsutil::sync_dir(&disc_dir.join(crate::disc::FILES_DIR))?;
        }
        self.wd.catalog.finish_copies(&done, &failed)?;
        let mut written = 0;
        let done_ids: std::collections::HashSet<i64> = done.iter().map(|d| d.0).collect();
        for (i, c) in batch.iter().enumerate() {
            if done_ids.contains(&ids[i]) {
                written += c.size;
                self.on_disc += 1;
                self.report.staged_files += 1;
                self.report.staged_bytes += c.size;
                (self.on_event)(Event::Staged {
                    path: &c.path,
                    desc: &c.desc,
                    id: ids[i],
                    disc: self.disc,
                    size: c.size,
                });
            } else {
                // Not staged: give its room back.
                self.usage = self.usage.saturating_sub(cost(c));
            }
        }
        self.free = self.free.saturating_sub(written);
        // What the disc really holds now, with the catalogue as it really
        // grew, replaces the estimate (the pending batch is empty).
        let real = disc::usage(
            &self.wd.catalog.disc_usage(self.disc)?,
            self.wd.catalog.db_size()?,
        );
        self.usage = real + CATALOG_SLACK;
        if let Some(e) = fatal {
            return Err(e);
        }
        Ok(())
    }

    /// Split versions left unfinished whose file the whole scan did not
    /// bring (gone, excluded, or back to a version already backed up) can
    /// never be finished: no backup.
    fn abandon_unseen_splits(&mut self) -> Result<()> {
        if self.opts.dry_run {
            return Ok(());
        }
        let left: Vec<catalog::SplitInProgress> = std::mem::take(&mut self.in_progress)
            .into_values()
            .collect();
        for s in left {
            let why = "the file vanished or changed before its last part was staged";
            self.wd.catalog.abandon_split(s.id, why)?;
            let path = self.wd.settings.watched.join(names::to_relative(&s.name));
            (self.on_event)(Event::Abandoned { path: &path, why });
        }
        Ok(())
    }

    /// Records the folders and links that are new or changed, and (after
    /// a complete walk) those gone, as files' deletions are: not under a
    /// folder that could not be read, not excluded, and nothing at all
    /// when the watched folder looks unmounted (no file, no link, while
    /// files or entries are recorded live), as for files. They are
    /// recorded after the run's copies, at the time they are recorded, so
    /// a hard link's first name already holds its copy (one whose copy
    /// failed is skipped: the link is taken on the next run), and a disc
    /// opened during the run counts them.
    fn record_entries(
        &mut self,
        unseen_files: &[i64],
        tree: &catalog::tree::LiveTree,
        stats: &scan::ScanStats,
        excludes: &Excludes,
        complete: bool,
    ) -> Result<()> {
        let mut new = std::mem::take(&mut self.entries);
        let unseen = tree.unseen();
        let looks_unmounted = stats.files == 0
            && stats.symlinks == 0
            && (!unseen_files.is_empty() || !unseen.is_empty());
        if looks_unmounted {
            return Ok(());
        }
        let mut gone = Vec::new();
        if complete {
            for id in unseen {
                let Some(name) = self.wd.catalog.entry_name(id)? else {
                    continue;
                };
                if !may_be_gone(&name, stats, excludes) {
                    continue;
                }
                gone.push(id);
            }
        }
        if !self.opts.dry_run {
            let mut kept = Vec::with_capacity(new.len());
            for e in new {
                if e.kind == catalog::tree::EntryKind::Hardlink
                    && !self.wd.catalog.has_live_copy(&e.target)?
                {
                    self.report.skipped_files += 1;
                    let skip = Skipped {
                        path: self.wd.settings.watched.join(names::to_relative(&e.name)),
                        reason: format!(
                            "another name of {}, which has no backup yet (taken on the next run)",
                            names::display(&e.target, true)
                        ),
                    };
                    (self.on_event)(Event::Skipped(&skip));
                    continue;
                }
                kept.push(e);
            }
            new = kept;
        }
        self.report.entries_recorded += new.len() as u64;
        self.report.entries_deleted += gone.len() as u64;
        if self.opts.dry_run {
            return Ok(());
        }
        let now = catalog::now();
        self.wd.catalog.record_entries(&new, now, &gone, now)
    }

    /// Records as deleted the files no lookup asked for (in name order),
    /// but those under a folder that could not be read and those excluded,
    /// and nothing when the watched folder looks unmounted. They are
    /// recorded a chunk at a time, each in one transaction, so memory stays
    /// flat however many are gone; a run stopped between chunks leaves the
    /// rest unrecorded, still live, and the next run records them.
    fn record_deletions(
        &mut self,
        unseen: Vec<i64>,
        stats: &scan::ScanStats,
        excludes: &Excludes,
    ) -> Result<()> {
        /// Deletions recorded per transaction.
        const CHUNK: usize = 4096;
        if unseen.is_empty() {
            return Ok(());
        }
        let watched = self.wd.settings.watched.clone();
        if stats.files == 0 && stats.symlinks == 0 {
            self.report.skipped_files += 1;
            let skip = Skipped {
                path: watched,
                reason: format!(
                    "the watched folder is empty but {} not deleted: is it mounted? (nothing recorded)",
                    if unseen.len() == 1 {
                        "1 backed-up file is".to_string()
                    } else {
                        format!("{} backed-up files are", unseen.len())
                    }
                ),
            };
            (self.on_event)(Event::Skipped(&skip));
            return Ok(());
        }
        // Bounded by the unseen files, a chunk at a time.
        for chunk in unseen.chunks(CHUNK) {
            let mut gone = Vec::with_capacity(chunk.len());
            for &id in chunk {
                let Some(name) = self.wd.catalog.name_of(id)? else {
                    continue;
                };
                if !may_be_gone(&name, stats, excludes) {
                    continue;
                }
                let rel = names::to_relative(&name);
                gone.push((id, watched.join(rel)));
            }
            if !self.opts.dry_run {
                let ids: Vec<i64> = gone.iter().map(|g| g.0).collect();
                self.wd.catalog.record_deletions(&ids, catalog::now())?;
            }
            for (_, path) in &gone {
                self.report.deleted_files += 1;
                (self.on_event)(Event::Deleted { path });
            }
        }
        Ok(())
    }
}

/// Whether a name the walk did not see may be recorded gone: not when it
/// is under a folder that could not be read, nor when it is excluded.
fn may_be_gone(name: &[u8], stats: &scan::ScanStats, excludes: &Excludes) -> bool {
    let under_unreadable = stats
        .unreadable_dirs
        .iter()
        .any(|d| name.starts_with(d) && name.get(d.len()).is_none_or(|&b| b == b'/'));
    !under_unreadable && !excludes.is_excluded(names::to_relative(name))
}

/// Closes the open disc now (for a user who wants to burn today) and opens
/// the next. Refuses a disc that would bring nothing new: no files, and no
/// deletions recorded since it was opened. A disc with deletions only still
/// carries them in its catalogue; without it they would reach no disc, and a
/// restore from the discs would bring back files deleted since.
/// Whether the open disc holds nothing to close (no file, no deletion).
pub fn open_disc_is_empty(wd: &Workdir) -> Result<bool> {
    let disc = wd.open_disc()?;
    Ok(wd.catalog.disc_usage(disc)?.files == 0
        && wd.catalog.deletions_during(disc)? == 0
        && wd.catalog.entries_changed_during(disc)? == 0)
}

pub fn close(wd: &mut Workdir) -> Result<(i64, catalog::DiscUsage)> {
    let disc = wd.open_disc()?;
    let usage = wd.catalog.disc_usage(disc)?;
    if open_disc_is_empty(wd)? {
        return Err(Error::Invalid(format!(
            "disc {disc} is empty and no deletions, folders or links were recorded since it was opened; there is nothing to close"
        )));
    }
    let closed = wd.close_disc()?;
    Ok((closed, usage))
}
