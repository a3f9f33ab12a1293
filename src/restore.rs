//! Restoring files from a set's discs: the plan (which version of which
//! file, from which disc, and what cannot be had: discs not given, discs
//! marked lost, names refused), then its execution disc by disc, each
//! disc read once front to back, every file written to a temp file while
//! its MD5 is checked (runs of zero blocks left as holes), given its
//! recorded mtime (with the tables of `docs/tree.md`: its exact mtime,
//! mode and owner), made durable (one flush of the filesystem per batch
//! of files), then renamed into place; then the folders and links.
//!
//! Names come from an untrusted manifest: a name that could leave the
//! target is refused at planning, and every write goes through
//! [`target`], which never follows a symbolic link. An existing file that
//! differs is left alone unless asked. This module never writes anywhere
//! but below the target.
//!
//! This file holds the options, the events and the whole run; the
//! concepts live in their own modules: [`plan`] (what to restore from
//! where), [`entries`] (the folders and links chosen, `docs/tree.md`),
//! [`execute`] (writing one disc's files), [`copy`] (the checked copy of
//! one file), [`tree`] (modes, owners and exact times, then the folders
//! and links, after every disc), [`drive`] (asking for discs), [`report`]
//! (what a run did) and [`target`] (the folder written into).

mod copy;
mod drive;
mod entries;
mod execute;
mod journal;
mod plan;
mod report;
mod split;
mod target;
mod tree;

use std::path::PathBuf;

use crate::catalog::manifest::ManifestError;
use crate::cli::RestoreArgs;
use crate::history::Matcher;
use crate::medium::{DiscSet, Medium, MediumError};
use crate::progress::Progress;

pub use drive::{Prompt, TerminalPrompt};
pub use entries::EntryPlan;
pub use plan::{
    name_parts, plan, DamagedFile, DiscPlan, DiscState, LostDisc, LostFile, MissingDisc,
    OlderVersion, Plan, SetInfo, SplitFile, UnusableDisc,
};
pub use report::{FailKind, NotRestored, Report, Stopped, Tally, TreeTally};

use drive::ask_for_disc;
use execute::Run;
use journal::Resumable;
use plan::{is_at, plan_resuming};
use report::{not_restored, not_restored_id, stop_before};
use target::Target;

/// Why a restore could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0}")]
    Pattern(String),
    #[error(transparent)]
    Medium(#[from] MediumError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("target {}", path.display())]
    Target {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("copying the manifest {} to a temp folder (the disc at the drive is let go while the files are written)", path.display())]
    HistoryCopy {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("target {} exists and is not a folder", .0.display())]
    TargetNotAFolder(PathBuf),
    #[error("--drive {}: not a folder; give the mount point where the drive's discs appear (e.g. /media/cdrom)", .0.display())]
    DriveNotAFolder(PathBuf),
    #[error("--rebuild-in {} is inside the target: a rebuilt image must not land among the restored files; name a folder outside it", .0.display())]
    RebuildInTarget(PathBuf),
}

type Result<T> = std::result::Result<T, RestoreError>;

/// What to restore, where, and how; validated from the arguments before
/// anything is read.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub discs: Vec<PathBuf>,
    pub target: PathBuf,
    pub matcher: Matcher,
    pub as_of: Option<f64>,
    pub dry_run: bool,
    pub overwrite: bool,
    /// Leave the recorded modes: files and folders get the restoring
    /// user's defaults.
    pub no_mode: bool,
    /// Leave the recorded owners (they are given only when running as
    /// root).
    pub no_owner: bool,
    /// One drive: needed discs not given directly are asked for here.
    pub drive: Option<PathBuf>,
    /// Whether someone can answer when a disc is asked for (stdin is a
    /// terminal). Without, a run with a drive asks nothing and restores
    /// nothing.
    pub interactive: bool,
    /// List every file the plan already knows cannot be restored (its
    /// disc missing or lost), and every file of a disc a stopped run did
    /// not reach, in [`Report::failed`]; without, they are only counted in
    /// [`Report::unlisted`], and a dry run keeps nothing per file (a plan
    /// can cover millions).
    pub list_failed: bool,
    /// Where an image rebuilt from parity is written for the run (default:
    /// the system's temp folder).
    pub rebuild_in: Option<PathBuf>,
}

impl RestoreOptions {
    pub fn from_args(args: &RestoreArgs, interactive: bool) -> Result<RestoreOptions> {
        let matcher = Matcher::new(&args.select.patterns, args.select.ignore_case)
            .map_err(RestoreError::Pattern)?;
        Ok(RestoreOptions {
            discs: args.discs.discs.clone(),
            target: args.to.clone(),
            matcher,
            as_of: args.select.as_of,
            dry_run: args.dry_run,
            overwrite: args.overwrite,
            no_mode: args.no_mode,
            no_owner: args.no_owner,
            drive: args.drive.clone(),
            interactive,
            list_failed: args.json,
            rebuild_in: args.rebuild_in.clone(),
        })
    }
}

/// What happens, for the binary to show as it goes.
pub enum Event<'a> {
    /// The plan is made (before anything is written).
    Planned(&'a Plan),
    /// A disc is about to be read.
    DiscStarted {
        disc: i64,
        files: u64,
        parts: u64,
        bytes: u64,
    },
    /// A file could not be restored (files of missing or lost discs are
    /// in the plan instead).
    Failed(&'a NotRestored),
    /// A disc not given was rebuilt from parity, checked, and is read next.
    Rebuilt(&'a crate::parity::rebuild::Rebuilt),
    /// A hard link was written as a copy of its target's file.
    LinkCopied { name: &'a [u8], why: &'a str },
}

/// Plans, tells the plan, and (unless a dry run) restores: the whole run.
pub fn restore(
    opts: &RestoreOptions,
    prompt: &mut dyn Prompt,
    progress: &Progress,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Report> {
    if std::fs::symlink_metadata(&opts.target).is_ok() && !opts.target.is_dir() {
        return Err(RestoreError::TargetNotAFolder(opts.target.clone()));
    }
    if let Some(drive) = &opts.drive {
        if !drive.is_dir() {
            return Err(RestoreError::DriveNotAFolder(drive.clone()));
        }
    }
    if let (Some(dir), Ok(target)) = (&opts.rebuild_in, std::fs::canonicalize(&opts.target)) {
        if std::fs::canonicalize(dir).is_ok_and(|d| d.starts_with(&target)) {
            return Err(RestoreError::RebuildInTarget(dir.clone()));
        }
    }
    // A disc that cannot be opened is left out like one not given, so the
    // others are still restored; the plan names it.
    let (mut set, unusable) = DiscSet::open_lenient(&opts.discs)?;
    // What earlier runs kept of split files is read first: the parts
    // they checked are not read again, nor their discs needed.
    let resumable = Resumable::scan(&opts.target);
    let mut plan = plan_resuming(opts, &set, &resumable)?;
    plan.unusable = unusable
        .into_iter()
        .map(|u| UnusableDisc {
            source: u.source,
            reason: u.error.to_string(),
        })
        .collect();
    on_event(Event::Planned(&plan));
    let mut report = Report {
        dry_run: opts.dry_run,
        restored: Tally::default(),
        skipped_existing: Tally::default(),
        tree: TreeTally::default(),
        failed: plan.refused.clone(),
        parts_read: 0,
        parts_resumed: 0,
        unlisted: Vec::new(),
        stopped: None,
        plan,
    };
    // A newest version recorded damaged with nothing older: no backup of
    // the file as it is now (few: always listed).
    for d in report
        .plan
        .damaged
        .iter()
        .filter(|d| d.older_version.is_none())
    {
        report.failed.push(NotRestored {
            name: d.filename.clone(),
            raw_name: d.raw_name.clone(),
            disc: Some(d.disc),
            id: Some(d.id),
            bytes: d.bytes,
            kind: FailKind::RecordedDamaged,
            reason: format!(
                "the version of {} on disc {} was recorded damaged before it reached a disc (no backup); no older version: not restored",
                crate::output::time(d.recorded),
                d.disc
            ),
            needs: Vec::new(),
        });
    }
    // Hard links whose target holds no file then: few, always listed.
    let links = report.plan.entries.failed.clone();
    for nr in &links {
        on_event(Event::Failed(nr));
    }
    report.failed.extend(links);
    // Split files with a disc missing or lost: few (each larger than a
    // disc), always listed, with the discs they need.
    let unreachable: Vec<NotRestored> = report
        .plan
        .split
        .iter()
        .filter_map(split::unreachable)
        .collect();
    for nr in &unreachable {
        on_event(Event::Failed(nr));
    }
    report.failed.extend(unreachable);
    for d in &report.plan.discs {
        let (kind, why) = match d.state {
            DiscState::Missing => (
                FailKind::MissingDisc,
                format!("disc {} is not among the discs given", d.disc),
            ),
            DiscState::Lost => (
                FailKind::LostDisc,
                format!("disc {} is marked lost", d.disc),
            ),
            _ => continue,
        };
        if !opts.list_failed {
            match report.unlisted.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, t)) => {
                    t.files += d.files;
                    t.bytes = t.bytes.saturating_add(d.whole_bytes);
                }
                None => report.unlisted.push((
                    kind,
                    Tally {
                        files: d.files,
                        bytes: d.whole_bytes,
                    },
                )),
            }
            continue;
        }
        let got = plan::disc_items(set.history(), d);
        for it in &got.items {
            report
                .failed
                .push(not_restored(it, d.disc, kind, why.clone()));
        }
        for &id in &got.gone {
            report
                .failed
                .push(not_restored_id(id, d.disc, kind, why.clone()));
        }
    }
    // Nothing chosen: nothing to write, not even the target folder.
    if opts.dry_run || (report.plan.files == 0 && report.plan.entries.list.is_empty()) {
        return Ok(report);
    }
    let needs_drive = report
        .plan
        .discs
        .iter()
        .any(|d| d.state == DiscState::Drive && d.needed);
    if needs_drive && !opts.interactive {
        stop_before(
            &mut report,
            set.history(),
            opts.list_failed,
            0,
            "stdin is not a terminal, so no disc can be asked for at the drive; nothing was restored"
                .into(),
            false,
        );
        return Ok(report);
    }
    let mut target = Target::open(&opts.target).map_err(|source| RestoreError::Target {
        path: opts.target.clone(),
        source,
    })?;
    // The history's folders, links and attributes are read as the files
    // are written; when its disc is at the drive, from a copy of its
    // manifest, so the disc can go.
    let history_copy = history_copy(opts, &set)?;
    // Discs at the drive's mount point are let go: holding their manifest
    // open would keep the disc from being ejected.
    set.media.retain(|m| match &opts.drive {
        Some(drive) => !is_at(&m.source, drive),
        None => true,
    });
    set.newest = set.media.len().saturating_sub(1);
    let set = set;
    let scratch = target
        .scratch(&|name| {
            report.plan.scratch_like.contains(name)
                || report
                    .plan
                    .split
                    .iter()
                    .any(|s| top_level(&s.raw_name) == name)
                || report
                    .plan
                    .entries
                    .list
                    .iter()
                    .any(|e| top_level(&e.name) == name)
        })
        .map_err(|source| RestoreError::Target {
            path: opts.target.clone(),
            source,
        })?;
    let history = match &history_copy {
        Some((_, m)) => m,
        None => set.history(),
    };
    let tree = history.tree()?;
    let mut run = Run::new(
        opts,
        progress,
        &scratch,
        report.plan.split.len(),
        &tree,
        history,
    );
    run.resuming = resumable.resuming;
    // Folders of the plan that are in the target before anything is
    // written are the user's: they keep their mode, owner and mtime
    // (unless --overwrite). Only looked at, never created or followed
    // into; bounded by the plan's folders.
    run.folders_there = report
        .plan
        .entries
        .list
        .iter()
        .filter(|e| matches!(e.kind, crate::catalog::manifest::EntryKind::Dir))
        .filter(|e| {
            let rel = crate::names::to_relative(e.name.strip_prefix(b"/").unwrap_or(&e.name));
            std::fs::symlink_metadata(opts.target.join(rel)).is_ok_and(|m| m.is_dir())
        })
        .map(|e| e.id)
        .collect();
    // What earlier runs kept of split files moves into this run's folder;
    // then their leftovers go, before anything is written (a name on the
    // disc may be theirs).
    let taken = run.adopt_kept(&report, &resumable, &target);
    let _ = target.clean_leftovers();
    run.resume_splits(&mut report, &taken, &mut target, on_event);
    let discs: Vec<(i64, DiscState)> = report
        .plan
        .discs
        .iter()
        .filter(|d| d.needed)
        .map(|d| (d.disc, d.state))
        .collect();
    for (disc, state) in discs {
        let held;
        let rebuilt;
        let medium = match state {
            DiscState::Given => match set.medium(disc) {
                Some(m) => m,
                None => continue,
            },
            DiscState::Parity => match rebuild(opts, &set, disc, progress) {
                Ok((scratch, m)) => {
                    rebuilt = scratch;
                    held = m;
                    on_event(Event::Rebuilt(&rebuilt.rebuilt));
                    &held
                }
                Err(why) => {
                    not_rebuilt(&mut report, history, disc, &why, on_event);
                    continue;
                }
            },
            DiscState::Drive => match ask_for_disc(&report.plan, disc, prompt, progress) {
                Ok(m) => {
                    held = m;
                    &held
                }
                Err(why) => {
                    stop_before(&mut report, history, opts.list_failed, disc, why, false);
                    break;
                }
            },
            DiscState::Missing | DiscState::Lost => continue,
        };
        let outcome = run.disc(medium, &mut report, &mut target, on_event);
        if state == DiscState::Drive && outcome.is_ok() {
            progress.suspend(|| prompt.tell(&format!("Done with disc {disc}: take it out.")));
        }
        if let Err(stop) = outcome {
            let next = disc + 1;
            report.stopped = Some(stop);
            stop_before(
                &mut report,
                history,
                opts.list_failed,
                next,
                String::new(),
                true,
            );
            break;
        }
    }
    let stopped = report.stopped.is_some();
    let keep = run.end_splits(&mut report, stopped, on_event);
    run.entries(&mut report, &mut target, stopped, on_event);
    report.tree.invalid_attrs = run.attrs.invalid;
    report.tree.owners_refused = run.attrs.owners_refused;
    report.tree.modes_refused = run.attrs.modes_refused;
    drop(run);
    scratch.remove(target.root(), &|n| keep.iter().any(|k| k.as_c_str() == n));
    progress.finish();
    Ok(report)
}

/// A copy of the history's manifest, opened, when its disc is at the
/// drive.
fn history_copy(
    opts: &RestoreOptions,
    set: &DiscSet,
) -> Result<Option<(crate::temp::Lease, crate::catalog::manifest::Manifest)>> {
    let Some(drive) = &opts.drive else {
        return Ok(None);
    };
    if !is_at(&set.history_medium().source, drive) {
        return Ok(None);
    }
    let from = set.history().path();
    let copy = (|| {
        let dir = crate::temp::folder("dbackup-restore-")?;
        std::fs::copy(from, dir.path().join("manifest.db"))?;
        Ok(dir)
    })()
    .map_err(|source| RestoreError::HistoryCopy {
        path: from.to_path_buf(),
        source,
    })?;
    let m = crate::catalog::manifest::Manifest::open(&copy.path().join("manifest.db"))?;
    Ok(Some((copy, m)))
}

/// Rebuilds disc `disc` from parity into a temp folder and opens it.
fn rebuild(
    opts: &RestoreOptions,
    set: &DiscSet,
    disc: i64,
    progress: &Progress,
) -> std::result::Result<(crate::parity::rebuild::Scratch, Medium), String> {
    progress.message(format!("disc {disc}: rebuilding its image from parity"));
    let dir = opts.rebuild_in.clone().unwrap_or_else(std::env::temp_dir);
    let scratch = crate::parity::rebuild::rebuild_in(set, disc, &dir).map_err(|e| e.to_string())?;
    let m = Medium::open_image(&scratch.rebuilt.path).map_err(|e| e.to_string())?;
    Ok((scratch, m))
}

/// A disc that parity could not rebuild: its files are not restored.
fn not_rebuilt(
    report: &mut Report,
    history: &crate::catalog::manifest::Manifest,
    disc: i64,
    why: &str,
    on_event: &mut dyn FnMut(Event<'_>),
) {
    let reason = format!("disc {disc} is not given and could not be rebuilt from parity: {why}");
    let Some(d) = report.plan.discs.iter().find(|d| d.disc == disc) else {
        return;
    };
    let got = plan::disc_items(history, d);
    let failed: Vec<NotRestored> = got
        .items
        .iter()
        .map(|it| not_restored(it, disc, FailKind::MissingDisc, reason.clone()))
        .chain(
            got.gone
                .iter()
                .map(|&id| not_restored_id(id, disc, FailKind::MissingDisc, reason.clone())),
        )
        .collect();
    for nr in &failed {
        on_event(Event::Failed(nr));
    }
    report.failed.extend(failed);
}

/// The first component of a name from a manifest (what it is called at
/// the top of the target).
fn top_level(name: &[u8]) -> &[u8] {
    let rel = name.strip_prefix(b"/").unwrap_or(name);
    rel.split(|&b| b == b'/').next().unwrap_or(rel)
}
