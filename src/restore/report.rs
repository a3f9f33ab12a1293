//! What a restore did: files restored, already there, and every file not
//! restored with its kind and reason; why a run stopped; and the exit code
//! of the shared contract, computed from the report alone (never from
//! whether printing it succeeded).

use serde::Serialize;

use crate::catalog::manifest::Manifest;
use crate::names;

use super::plan::{DiscState, Item, Plan};

/// Why a file was not restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailKind {
    /// Its disc was not given.
    MissingDisc,
    /// Its disc is marked lost.
    LostDisc,
    /// Its name could lead outside the target.
    RefusedName,
    /// A symbolic link stands in the target where it or its folder goes.
    Symlink,
    /// A folder or special file stands where it goes, or a file where a
    /// folder goes.
    InTheWay,
    /// A different file is there (no `--overwrite`).
    Exists,
    /// Its content on the disc does not match its MD5 or size.
    Damaged,
    /// It could not be read from the disc.
    Unreadable,
    /// Writing it in the target failed.
    Write,
    /// The run stopped before its disc was read.
    NotReached,
    /// Its newest version was recorded damaged before it reached a disc,
    /// and there is no older one.
    RecordedDamaged,
    /// A hard link whose target file holds no version by then, or was
    /// not restored.
    LinkTarget,
}

impl FailKind {
    /// A short label for summaries.
    pub fn label(self) -> &'static str {
        match self {
            FailKind::MissingDisc => "disc not given",
            FailKind::LostDisc => "disc lost",
            FailKind::RefusedName => "name refused",
            FailKind::Symlink => "symbolic link in the way",
            FailKind::InTheWay => "something else in the way",
            FailKind::Exists => "different file kept",
            FailKind::Damaged => "damaged on disc",
            FailKind::Unreadable => "unreadable",
            FailKind::Write => "write failed",
            FailKind::NotReached => "run stopped before its disc",
            FailKind::RecordedDamaged => "recorded damaged, no older version",
            FailKind::LinkTarget => "hard link without its file",
        }
    }
}

/// A file not restored, and why.
#[derive(Debug, Clone, Serialize)]
pub struct NotRestored {
    pub name: String,
    #[serde(skip)]
    pub raw_name: Vec<u8>,
    pub disc: Option<i64>,
    pub id: Option<i64>,
    pub bytes: u64,
    pub kind: FailKind,
    pub reason: String,
    /// The discs it needs that are not at hand (a split file: every
    /// missing or lost disc holding a part still to read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<i64>,
}

/// Files and bytes.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Tally {
    pub files: u64,
    pub bytes: u64,
}

impl Tally {
    pub(super) fn add(&mut self, bytes: u64) {
        self.files += 1;
        // Sizes come from an untrusted manifest: a crafted one can add up
        // past 2^64.
        self.bytes = self.bytes.saturating_add(bytes);
    }
}

/// What a run made of the entries (folders, links, hard links).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TreeTally {
    /// Folders made (or there already) and given their recorded mode and
    /// mtime.
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Hard links that could not be made (no hard links on the target's
    /// filesystem, say), restored as a copy of their target instead.
    pub hardlinks_copied: Vec<String>,
    /// Links and hard links already there as recorded.
    pub already_there: u64,
    /// `attrs` rows that could not be used: those files got their
    /// recorded mtime and default modes.
    pub invalid_attrs: u64,
    /// Files, folders and links whose recorded owner or mode the target's
    /// filesystem refused (restored all the same, without it).
    pub owners_refused: u64,
    pub modes_refused: u64,
}

/// Why a run ended before its plan did.
#[derive(Debug, Clone, Serialize)]
pub struct Stopped {
    pub reason: String,
    /// An error (the target's filesystem is full), not a choice.
    pub error: bool,
    /// Stopped by Ctrl-C or a termination signal.
    pub interrupted: bool,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub plan: Plan,
    pub dry_run: bool,
    pub restored: Tally,
    pub skipped_existing: Tally,
    /// The entries made.
    pub tree: TreeTally,
    /// Parts of split files read from the discs in this run, and parts
    /// an earlier run had checked and kept, taken over without reading
    /// them again.
    pub parts_read: u64,
    pub parts_resumed: u64,
    /// Everything chosen and not restored (in a dry run: what the plan
    /// already knows cannot be), but for what `unlisted` counts.
    pub failed: Vec<NotRestored>,
    /// Without [`RestoreOptions::list_failed`]: the files of missing and
    /// lost discs, and of discs a stopped run did not reach, counted by
    /// kind instead of listed in `failed`.
    #[serde(skip)]
    pub unlisted: Vec<(FailKind, Tally)>,
    pub stopped: Option<Stopped>,
}

impl Report {
    /// The exit code of the shared contract: 0 everything restored and
    /// verified, 1 something could not be (or nothing matched, or a disc
    /// given could not be used), 2 the run stopped on an error. It comes
    /// from the report alone: whether printing it worked never changes it.
    pub fn exit_code(&self) -> i32 {
        match &self.stopped {
            Some(s) if s.interrupted => crate::exit::INTERRUPTED,
            Some(s) if s.error => crate::exit::ERROR,
            Some(_) => crate::exit::FINDING,
            None if self.nothing_matched() || !self.plan.unusable.is_empty() => {
                crate::exit::FINDING
            }
            // The newest version of a file was recorded damaged: even with
            // an older one restored, the file is not as last backed up
            // (as a file whose newest version is on a lost disc).
            None if !self.plan.damaged.is_empty() => crate::exit::FINDING,
            None if self.failed_files() == 0 => crate::exit::OK,
            None => crate::exit::FINDING,
        }
    }

    /// No file was chosen: the patterns matched nothing, or nothing was
    /// backed up by `--as-of`.
    pub fn nothing_matched(&self) -> bool {
        self.plan.files == 0
            && self.plan.damaged.is_empty()
            && self.plan.entries.count() == 0
            && self.plan.entries.failed.is_empty()
    }

    /// How many files were not restored, listed or counted.
    pub fn failed_files(&self) -> u64 {
        self.failed.len() as u64 + self.unlisted.iter().map(|(_, t)| t.files).sum::<u64>()
    }

    /// Failures by kind: (kind, files, bytes), in the order each kind first
    /// comes (refused names, then the plan's discs, then the run's).
    pub fn failures_by_kind(&self) -> Vec<(FailKind, Tally)> {
        let mut out: Vec<(FailKind, Tally)> = Vec::new();
        let mut add = |kind: FailKind, t: Tally| match out.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, sum)) => {
                sum.files += t.files;
                sum.bytes = sum.bytes.saturating_add(t.bytes);
            }
            None => out.push((kind, t)),
        };
        let refused = self.plan.refused.len().min(self.failed.len());
        let one = |f: &NotRestored| Tally {
            files: 1,
            bytes: f.bytes,
        };
        for f in &self.failed[..refused] {
            add(f.kind, one(f));
        }
        // Files not reached are counted after the run's own failures,
        // where they stand when listed.
        let late = |k: &FailKind| *k == FailKind::NotReached;
        for (kind, t) in self.unlisted.iter().filter(|(k, _)| !late(k)) {
            add(*kind, *t);
        }
        for f in &self.failed[refused..] {
            add(f.kind, one(f));
        }
        for (kind, t) in self.unlisted.iter().filter(|(k, _)| late(k)) {
            add(*kind, *t);
        }
        out
    }
}

pub(super) fn not_restored(item: &Item, disc: i64, kind: FailKind, reason: String) -> NotRestored {
    NotRestored {
        name: names::display(&item.name, false),
        raw_name: item.name.to_vec(),
        disc: Some(disc),
        id: Some(item.id),
        bytes: item.size,
        kind,
        reason,
        needs: Vec::new(),
    }
}

/// A file of the plan known by its id alone (its manifest row could not
/// be read again), not restored.
pub(super) fn not_restored_id(id: i64, disc: i64, kind: FailKind, reason: String) -> NotRestored {
    NotRestored {
        name: format!("(file id {id})"),
        raw_name: Vec::new(),
        disc: Some(disc),
        id: Some(id),
        bytes: 0,
        kind,
        reason,
        needs: Vec::new(),
    }
}

/// Records the run as stopped before disc `from`: files of that disc and
/// later ones that could have been restored are counted as not reached,
/// listed one by one (read again from `history`) only when `list` (as the
/// files of missing discs are: a plan can cover millions).
/// With `keep_reason`, a reason already recorded stays.
pub(super) fn stop_before(
    report: &mut Report,
    history: &Manifest,
    list: bool,
    from: i64,
    reason: String,
    keep_reason: bool,
) {
    if !keep_reason || report.stopped.is_none() {
        report.stopped = Some(Stopped {
            reason,
            error: false,
            interrupted: false,
        });
    }
    let why = report
        .stopped
        .as_ref()
        .map(|s| s.reason.clone())
        .unwrap_or_default();
    for d in &report.plan.discs {
        if d.disc < from
            || !matches!(
                d.state,
                DiscState::Given | DiscState::Drive | DiscState::Parity
            )
        {
            continue;
        }
        if !list {
            let tally = Tally {
                files: d.files,
                bytes: d.whole_bytes,
            };
            match report
                .unlisted
                .iter_mut()
                .find(|(k, _)| *k == FailKind::NotReached)
            {
                Some((_, t)) => {
                    t.files += tally.files;
                    t.bytes = t.bytes.saturating_add(tally.bytes);
                }
                None => report.unlisted.push((FailKind::NotReached, tally)),
            }
            continue;
        }
        let reason = format!("disc {} was not read: {why}", d.disc);
        let got = super::plan::disc_items(history, d);
        for it in &got.items {
            report.failed.push(not_restored(
                it,
                d.disc,
                FailKind::NotReached,
                reason.clone(),
            ));
        }
        for &id in &got.gone {
            report.failed.push(not_restored_id(
                id,
                d.disc,
                FailKind::NotReached,
                reason.clone(),
            ));
        }
    }
}
