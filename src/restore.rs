//! Restoring files from a set's discs: the plan (which version of which
//! file, from which disc, and what cannot be had: discs not given, discs
//! marked lost, names refused), then its execution disc by disc, each
//! disc read once front to back, every file written to a temp file while
//! its MD5 is checked, given its recorded mtime, made durable (one flush
//! of the filesystem per batch of files), then renamed into place.
//!
//! Names come from an untrusted manifest: a name that could leave the
//! target is refused at planning, and every write goes through
//! [`target`], which never follows a symbolic link. An existing file that
//! differs is left alone unless asked. This module never writes anywhere
//! but below the target.

mod target;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::CString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::Serialize;

use crate::catalog::manifest::{ManifestError, SetIdentity, Version};
use crate::cli::RestoreArgs;
use crate::history::{self, FileState, Matcher};
use crate::medium::{DiscSet, Medium, MediumError, Stored};
use crate::names;
use crate::progress::Progress;

use target::{Blocked, Existing, Target};

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
    #[error("target {} exists and is not a folder", .0.display())]
    TargetNotAFolder(PathBuf),
    #[error("--drive {}: not a folder; give the mount point where the drive's discs appear (e.g. /media/cdrom)", .0.display())]
    DriveNotAFolder(PathBuf),
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
    /// One drive: needed discs not given directly are asked for here.
    pub drive: Option<PathBuf>,
    /// Whether someone can answer when a disc is asked for (stdin is a
    /// terminal). Without, a run with a drive asks nothing and restores
    /// nothing.
    pub interactive: bool,
    /// List every file the plan already knows cannot be restored (its
    /// disc missing or lost) in [`Report::failed`]; without, they are
    /// only counted in [`Report::unlisted`], and a dry run keeps nothing
    /// per file (a plan can cover millions).
    pub list_failed: bool,
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
            drive: args.drive.clone(),
            interactive,
            list_failed: args.json,
        })
    }
}

/// Where a needed disc comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscState {
    /// Given with `-d`: read directly.
    Given,
    /// To be inserted in the drive when asked.
    Drive,
    /// Not among the discs given.
    Missing,
    /// Marked lost in the newest manifest: never asked for.
    Lost,
}

/// One file to restore: what writing it needs of its version, kept small
/// (a plan may hold a million).
#[derive(Debug, Clone)]
struct Item {
    id: i64,
    size: u64,
    mtime: f64,
    md5: [u8; 16],
    /// The name as recorded, checked by the plan; split into components
    /// only when the file is written.
    name: Box<[u8]>,
}

impl Item {
    fn of(v: &Version) -> Item {
        Item {
            id: v.id,
            size: v.size,
            mtime: v.mtime,
            md5: md5_bytes(&v.md5),
            name: v.name.as_slice().into(),
        }
    }
}

/// The 16 bytes of a hex MD5, which the manifest reader has already
/// checked to be 32 hex digits.
fn md5_bytes(hex: &str) -> [u8; 16] {
    let nibble = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *o = pair.iter().fold(0, |acc, &c| acc << 4 | nibble(c));
    }
    out
}

/// A needed disc.
#[derive(Debug, Clone, Serialize)]
pub struct DiscPlan {
    pub disc: i64,
    pub files: u64,
    pub bytes: u64,
    pub state: DiscState,
    /// What was given for it (`Given` only).
    pub source: Option<PathBuf>,
    /// Marked lost in the newest manifest (and given all the same: found
    /// again, or its image kept).
    pub marked_lost: bool,
    /// Its files, in name order, when the run needs them: to write them,
    /// or to list them as not restorable.
    #[serde(skip)]
    items: Vec<Item>,
}

/// An older version of a file, on a disc not marked lost.
#[derive(Debug, Clone, Serialize)]
pub struct OlderVersion {
    pub disc: i64,
    /// When it was backed up (Unix seconds): restore it with `--as-of`.
    pub recorded: f64,
}

/// A file whose current version is on a lost disc.
#[derive(Debug, Clone, Serialize)]
pub struct LostFile {
    pub name: String,
    #[serde(skip)]
    pub raw_name: Vec<u8>,
    pub bytes: u64,
    pub older_version: Option<OlderVersion>,
}

/// What a lost disc costs.
#[derive(Debug, Clone, Serialize)]
pub struct LostDisc {
    pub disc: i64,
    pub files: u64,
    pub bytes: u64,
    pub costs: Vec<LostFile>,
}

/// A needed disc that was not given.
#[derive(Debug, Clone, Serialize)]
pub struct MissingDisc {
    pub disc: i64,
    pub files: u64,
    pub bytes: u64,
}

/// Which set, for messages and reports.
#[derive(Debug, Clone, Serialize)]
pub struct SetInfo {
    pub name: Option<String>,
    pub uuid: Option<String>,
    #[serde(skip)]
    identity: Option<SetIdentity>,
}

impl SetInfo {
    /// `disc 7 of set "Photos"`, or `disc 7` for an unnamed set.
    pub fn disc_label(&self, disc: i64) -> String {
        match &self.name {
            Some(n) => format!("disc {disc} of set \"{n}\""),
            None => format!("disc {disc}"),
        }
    }
}

/// The plan: what will be restored from where, and what cannot be.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub set: SetInfo,
    pub target: PathBuf,
    pub as_of: Option<f64>,
    /// Files chosen (those recorded deleted by then left out) and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Of those, what the discs at hand (or the drive) can give.
    pub restorable_files: u64,
    pub restorable_bytes: u64,
    /// Files recorded deleted by the chosen time, left out.
    pub deleted_left_out: u64,
    /// Manifest rows that could not be used.
    pub invalid_rows: u64,
    /// Every needed disc, in order.
    pub discs: Vec<DiscPlan>,
    pub missing: Vec<MissingDisc>,
    pub lost: Vec<LostDisc>,
    /// Names refused because they could lead outside the target.
    pub refused: Vec<NotRestored>,
    /// Discs given twice (left out).
    pub duplicates: Vec<PathBuf>,
    /// The drive, if one was given.
    pub drive: Option<PathBuf>,
}

impl Plan {
    /// Whether a run could restore everything chosen.
    pub fn complete(&self) -> bool {
        self.missing.is_empty() && self.lost.is_empty() && self.refused.is_empty()
    }
}

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
}

/// Files and bytes.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Tally {
    pub files: u64,
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, bytes: u64) {
        self.files += 1;
        // Sizes come from an untrusted manifest: a crafted one can add up
        // past 2^64.
        self.bytes = self.bytes.saturating_add(bytes);
    }
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
    /// Everything chosen and not restored (in a dry run: what the plan
    /// already knows cannot be), but for what `unlisted` counts.
    pub failed: Vec<NotRestored>,
    /// Without [`RestoreOptions::list_failed`]: the files of missing and
    /// lost discs, counted by kind instead of listed in `failed`.
    #[serde(skip)]
    pub unlisted: Vec<(FailKind, Tally)>,
    pub stopped: Option<Stopped>,
}

impl Report {
    /// The exit code of the shared contract: 0 everything restored and
    /// verified, 1 something could not be, 2 the run stopped on an error.
    pub fn exit_code(&self) -> i32 {
        match &self.stopped {
            Some(s) if s.interrupted => crate::exit::INTERRUPTED,
            Some(s) if s.error => crate::exit::ERROR,
            Some(_) => crate::exit::FINDING,
            None if self.failed_files() == 0 => crate::exit::OK,
            None => crate::exit::FINDING,
        }
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
        for (kind, t) in &self.unlisted {
            add(*kind, *t);
        }
        for f in &self.failed[refused..] {
            add(f.kind, one(f));
        }
        out
    }
}

/// What happens, for the binary to show as it goes.
pub enum Event<'a> {
    /// The plan is made (before anything is written).
    Planned(&'a Plan),
    /// A disc is about to be read.
    DiscStarted { disc: i64, files: u64, bytes: u64 },
    /// A file could not be restored (files of missing or lost discs are
    /// in the plan instead).
    Failed(&'a NotRestored),
}

/// Asks the person at the drive; the binary implements it on the terminal.
pub trait Prompt {
    /// Shows `question` and waits for a line; `None` at end of input.
    fn ask(&mut self, question: &str) -> Option<String>;
    /// Shows a line.
    fn tell(&mut self, line: &str);
}

/// Asks on stderr and reads answers from stdin.
pub struct TerminalPrompt;

impl Prompt for TerminalPrompt {
    fn ask(&mut self, question: &str) -> Option<String> {
        let mut err = crate::output::stderr();
        let _ = write!(err, "{question}");
        let _ = err.flush();
        let mut line = String::new();
        match std::io::stdin().read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line),
        }
    }

    fn tell(&mut self, line: &str) {
        crate::say!("{line}");
    }
}

/// Why a name from a manifest is refused, if it is: it must be a path
/// below the target once its single leading `/` is stripped.
pub fn name_parts(name: &[u8]) -> std::result::Result<Vec<CString>, &'static str> {
    let rel = checked_path(name)?;
    rel.split(|&b| b == b'/')
        .map(|part| target::c_name(part).ok_or("it contains a NUL byte"))
        .collect()
}

/// The path below the target that `name` leads to (`name` without its
/// single leading `/`), or why it is refused.
fn checked_path(name: &[u8]) -> std::result::Result<&[u8], &'static str> {
    if name.contains(&0) {
        return Err("it contains a NUL byte");
    }
    let rel = name.strip_prefix(b"/").unwrap_or(name);
    if rel.is_empty() {
        return Err("it is empty");
    }
    for part in rel.split(|&b| b == b'/') {
        match part {
            b"" => {
                return Err("it has an empty component (an absolute path, `//` or a trailing `/`)")
            }
            b"." => return Err("it has a `.` component"),
            b".." => return Err("it has a `..` component"),
            _ => {}
        }
    }
    Ok(rel)
}

/// Whether `path` is at or below `mount` (both resolved when they exist).
fn is_at(path: &Path, mount: &Path) -> bool {
    let resolve = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    resolve(path).starts_with(resolve(mount))
}

const SAME_PATH: &str = "another name in the manifest leads to the same path";

/// Makes the plan from the newest manifest of the discs given, reading it
/// one file at a time and keeping of each only what the run needs.
pub fn plan(opts: &RestoreOptions, set: &DiscSet) -> Result<Plan> {
    // Only a crafted manifest has two names for one path (`a/b` and
    // `/a/b`): the second would replace the first. Paths are told apart
    // by a 128-bit hash, not kept; when two hashes meet, the plan is made
    // again with the names of those hashes set aside and compared exactly,
    // in name order, so a chance collision refuses nothing and the name
    // refused does not depend on the manifest's order.
    let (plan, collided) = plan_with(opts, set, &HashSet::new())?;
    if collided.is_empty() {
        return Ok(plan);
    }
    Ok(plan_with(opts, set, &collided)?.0)
}

/// One planning pass; the names whose path hash is in `aside` are decided
/// exactly at the end. Returns the plan and the path hashes met twice.
fn plan_with(
    opts: &RestoreOptions,
    set: &DiscSet,
    aside: &HashSet<u128>,
) -> Result<(Plan, HashSet<u128>)> {
    let history = set.history();
    let lost: BTreeSet<i64> = history
        .discs()?
        .into_iter()
        .filter(|d| !d.available)
        .map(|d| d.id)
        .collect();
    let identity = history.identity();
    let mut planner = Planner {
        opts,
        set,
        lost,
        plan: Plan {
            set: SetInfo {
                name: identity.name.clone(),
                uuid: identity.uuid.clone(),
                identity: Some(identity),
            },
            target: opts.target.clone(),
            as_of: opts.as_of,
            files: 0,
            bytes: 0,
            restorable_files: 0,
            restorable_bytes: 0,
            deleted_left_out: 0,
            invalid_rows: 0,
            discs: Vec::new(),
            missing: Vec::new(),
            lost: Vec::new(),
            refused: Vec::new(),
            duplicates: set.duplicates.clone(),
            drive: opts.drive.clone(),
        },
        discs: BTreeMap::new(),
        lost_files: BTreeMap::new(),
    };
    let mut paths: HashSet<u128> = HashSet::new();
    let mut collided: HashSet<u128> = HashSet::new();
    let mut set_aside: Vec<FileState> = Vec::new();
    let invalid = history::for_each_file(history, &opts.matcher, opts.as_of, &mut |file| {
        if file.deleted.is_some() {
            planner.plan.deleted_left_out += 1;
            return;
        }
        match checked_path(&file.current().name) {
            Err(why) => planner.add(&file, Err(why)),
            Ok(rel) => {
                let hash = xxhash_rust::xxh3::xxh3_128(rel);
                if aside.contains(&hash) {
                    set_aside.push(file);
                } else if paths.insert(hash) {
                    planner.add(&file, Ok(()));
                } else {
                    collided.insert(hash);
                    planner.add(&file, Err(SAME_PATH));
                }
            }
        }
    })?;
    planner.plan.invalid_rows = invalid;
    set_aside.sort_by(|a, b| a.name.cmp(&b.name));
    let mut exact: HashSet<&[u8]> = HashSet::new();
    for file in &set_aside {
        let first = checked_path(&file.current().name).is_ok_and(|rel| exact.insert(rel));
        planner.add(file, if first { Ok(()) } else { Err(SAME_PATH) });
    }
    Ok((planner.finish(), collided))
}

/// The plan as it is being made.
struct Planner<'a> {
    opts: &'a RestoreOptions,
    set: &'a DiscSet,
    lost: BTreeSet<i64>,
    plan: Plan,
    discs: BTreeMap<i64, DiscPlan>,
    lost_files: BTreeMap<i64, Vec<LostFile>>,
}

impl Planner<'_> {
    /// Adds a file not deleted by then, its name checked.
    fn add(&mut self, file: &FileState, checked: std::result::Result<(), &'static str>) {
        let v = file.current();
        self.plan.files += 1;
        self.plan.bytes = self.plan.bytes.saturating_add(v.size);
        if let Err(why) = checked {
            self.plan.refused.push(NotRestored {
                name: names::display(&v.name, false),
                raw_name: v.name.clone(),
                disc: Some(v.disc),
                id: Some(v.id),
                bytes: v.size,
                kind: FailKind::RefusedName,
                reason: format!("name refused: {why}"),
            });
            return;
        }
        let (opts, set, lost) = (self.opts, self.set, &self.lost);
        let d = self.discs.entry(v.disc).or_insert_with(|| {
            let source = set
                .medium(v.disc)
                .filter(|m| match &opts.drive {
                    Some(drive) => !is_at(&m.source, drive),
                    None => true,
                })
                .map(|m| m.source.clone());
            let state = if source.is_some() {
                DiscState::Given
            } else if lost.contains(&v.disc) {
                DiscState::Lost
            } else if opts.drive.is_some() {
                DiscState::Drive
            } else {
                DiscState::Missing
            };
            DiscPlan {
                disc: v.disc,
                files: 0,
                bytes: 0,
                state,
                source,
                marked_lost: lost.contains(&v.disc),
                items: Vec::new(),
            }
        });
        d.files += 1;
        d.bytes = d.bytes.saturating_add(v.size);
        let keep = match d.state {
            DiscState::Given | DiscState::Drive => {
                self.plan.restorable_files += 1;
                self.plan.restorable_bytes = self.plan.restorable_bytes.saturating_add(v.size);
                !opts.dry_run
            }
            DiscState::Missing => opts.list_failed,
            DiscState::Lost => {
                let older = file
                    .versions
                    .iter()
                    .rev()
                    .skip(1)
                    .find(|o| !lost.contains(&o.disc))
                    .map(|o| OlderVersion {
                        disc: o.disc,
                        recorded: o.timestamp,
                    });
                self.lost_files.entry(v.disc).or_default().push(LostFile {
                    name: names::display(&v.name, false),
                    raw_name: v.name.clone(),
                    bytes: v.size,
                    older_version: older,
                });
                opts.list_failed
            }
        };
        if keep {
            d.items.push(Item::of(v));
        }
    }

    /// The plan, its lists in name order whatever order the manifest
    /// gave the files in.
    fn finish(mut self) -> Plan {
        let mut plan = self.plan;
        for d in self.discs.values_mut() {
            d.items.sort_by(|a, b| a.name.cmp(&b.name));
            match d.state {
                DiscState::Missing => plan.missing.push(MissingDisc {
                    disc: d.disc,
                    files: d.files,
                    bytes: d.bytes,
                }),
                DiscState::Lost => {
                    let mut costs = self.lost_files.remove(&d.disc).unwrap_or_default();
                    costs.sort_by(|a, b| a.raw_name.cmp(&b.raw_name));
                    plan.lost.push(LostDisc {
                        disc: d.disc,
                        files: d.files,
                        bytes: d.bytes,
                        costs,
                    });
                }
                _ => {}
            }
        }
        plan.refused.sort_by(|a, b| a.raw_name.cmp(&b.raw_name));
        plan.discs = self.discs.into_values().collect();
        plan
    }
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
    let set = DiscSet::open(&opts.discs)?;
    let plan = plan(opts, &set)?;
    on_event(Event::Planned(&plan));
    let mut report = Report {
        dry_run: opts.dry_run,
        restored: Tally::default(),
        skipped_existing: Tally::default(),
        failed: plan.refused.clone(),
        unlisted: Vec::new(),
        stopped: None,
        plan,
    };
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
                    t.bytes = t.bytes.saturating_add(d.bytes);
                }
                None => report.unlisted.push((
                    kind,
                    Tally {
                        files: d.files,
                        bytes: d.bytes,
                    },
                )),
            }
            continue;
        }
        for it in &d.items {
            report
                .failed
                .push(not_restored(it, d.disc, kind, why.clone()));
        }
    }
    if opts.dry_run {
        return Ok(report);
    }
    let needs_drive = report
        .plan
        .discs
        .iter()
        .any(|d| d.state == DiscState::Drive);
    if needs_drive && !opts.interactive {
        stop_before(
            &mut report,
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
    // Discs at the drive's mount point are let go: holding their manifest
    // open would keep the disc from being ejected.
    let media: Vec<Medium> = set
        .media
        .into_iter()
        .filter(|m| match &opts.drive {
            Some(drive) => !is_at(&m.source, drive),
            None => true,
        })
        .collect();
    let mut run = Run {
        opts,
        buf: vec![0; CHUNK],
        pool: Vec::new(),
        progress,
    };
    let discs: Vec<(i64, DiscState)> = report
        .plan
        .discs
        .iter()
        .map(|d| (d.disc, d.state))
        .collect();
    for (disc, state) in discs {
        let held;
        let medium = match state {
            DiscState::Given => match media.iter().find(|m| m.disc == disc) {
                Some(m) => m,
                None => continue,
            },
            DiscState::Drive => match ask_for_disc(&report.plan, disc, prompt, progress) {
                Ok(m) => {
                    held = m;
                    &held
                }
                Err(why) => {
                    stop_before(&mut report, disc, why, false);
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
            stop_before(&mut report, next, String::new(), true);
            break;
        }
    }
    progress.finish();
    Ok(report)
}

fn not_restored(item: &Item, disc: i64, kind: FailKind, reason: String) -> NotRestored {
    NotRestored {
        name: names::display(&item.name, false),
        raw_name: item.name.to_vec(),
        disc: Some(disc),
        id: Some(item.id),
        bytes: item.size,
        kind,
        reason,
    }
}

/// Records the run as stopped before disc `from`: files of that disc and
/// later ones that could have been restored are counted as not reached.
/// With `keep_reason`, a reason already recorded stays.
fn stop_before(report: &mut Report, from: i64, reason: String, keep_reason: bool) {
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
        if d.disc < from || !matches!(d.state, DiscState::Given | DiscState::Drive) {
            continue;
        }
        for it in &d.items {
            report.failed.push(not_restored(
                it,
                d.disc,
                FailKind::NotReached,
                format!("disc {} was not read: {why}", d.disc),
            ));
        }
    }
}

/// Asks for `disc` at the drive until it is there; `Err` with why when the
/// person stops or input ends.
fn ask_for_disc(
    plan: &Plan,
    disc: i64,
    prompt: &mut dyn Prompt,
    progress: &Progress,
) -> std::result::Result<Medium, String> {
    let Some(drive) = &plan.drive else {
        return Err("no drive".into());
    };
    let label = plan.set.disc_label(disc);
    loop {
        let question = format!("Insert {label} in the drive, then press Enter (q to stop): ");
        let answer = progress.suspend(|| prompt.ask(&question));
        let Some(answer) = answer else {
            return Err(format!(
                "no answer (end of input) when {label} was asked for"
            ));
        };
        if matches!(answer.trim(), "q" | "Q" | "quit") {
            return Err(format!("q answered when {label} was asked for"));
        }
        let line = match Medium::open_folder(drive) {
            Ok(m)
                if plan
                    .set
                    .identity
                    .as_ref()
                    .is_none_or(|id| m.identity.same_set(id)) =>
            {
                if m.disc == disc {
                    return Ok(m);
                }
                format!(
                    "The drive holds {}, not disc {disc}.",
                    plan.set.disc_label(m.disc)
                )
            }
            Ok(m) => format!(
                "The drive holds disc {} of another set, {}.",
                m.disc,
                m.identity.describe()
            ),
            Err(e) => format!("No dbackup disc found at {}: {e}", drive.display()),
        };
        progress.suspend(|| prompt.tell(&line));
    }
}

/// How placing one file ended.
enum Placed<'i> {
    /// Written and verified under its temp name, waiting for its batch.
    Written(Pending<'i>),
    AlreadyThere,
}

/// A verified temp file (closed) waiting to be made durable and renamed
/// into place.
struct Pending<'i> {
    item: &'i Item,
    /// Its folder (a handle of its own: the target keeps only the last).
    dir: target::Dir,
    tmp: CString,
    /// Its name in that folder.
    leaf: CString,
}

/// Written files are made durable and renamed in batches of this many
/// bytes or files, with one flush of the target's filesystem (`syncfs`)
/// per batch instead of one disk flush per file, which on many disks costs
/// more than the writing. Every file is durable before its rename.
const BATCH_BYTES: u64 = 256 << 20;
const BATCH_FILES: usize = 256;

struct Failure {
    kind: FailKind,
    reason: String,
    /// The target's filesystem is full: stop the run.
    no_space: bool,
}

fn fail(kind: FailKind, reason: impl Into<String>) -> Failure {
    Failure {
        kind,
        reason: reason.into(),
        no_space: false,
    }
}

fn write_fail(what: &str, e: std::io::Error) -> Failure {
    Failure {
        kind: FailKind::Write,
        no_space: crate::fsutil::is_no_space(&e),
        reason: format!("{what}: {e}"),
    }
}

struct Run<'a> {
    opts: &'a RestoreOptions,
    buf: Vec<u8>,
    /// Buffers for chunks hashed on another thread, kept between files.
    pool: Vec<Vec<u8>>,
    progress: &'a Progress,
}

impl Run<'_> {
    /// Restores one disc's files, in the order they lie on the disc.
    /// `Err` when the run must stop (the target is full).
    fn disc(
        &mut self,
        medium: &Medium,
        report: &mut Report,
        target: &mut Target,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> std::result::Result<(), Stopped> {
        let Some(dp) = report.plan.discs.iter().find(|d| d.disc == medium.disc) else {
            return Ok(());
        };
        on_event(Event::DiscStarted {
            disc: dp.disc,
            files: dp.files,
            bytes: dp.bytes,
        });
        let mut work: Vec<(Option<Stored>, &Item)> = dp
            .items
            .iter()
            .map(|it| (medium.stored(it.id), it))
            .collect();
        work.sort_by_key(|(s, it)| (s.as_ref().map_or(u128::MAX, |s| s.order), it.id));
        let mut failed = Vec::new();
        let mut pending: Vec<Pending<'_>> = Vec::new();
        let mut pending_bytes = 0u64;
        let mut full = false;
        let mut next = 0;
        let mut interrupted = false;
        while next < work.len() && !full && !interrupted {
            fail::fail_point!("restore::pause");
            let (stored, item) = &work[next];
            next += 1;
            let v = *item;
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
            for (_, rest) in &work[next..] {
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
            for (_, rest) in &work[next..] {
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
        let parts = name_parts(&item.name)
            .map_err(|why| fail(FailKind::RefusedName, format!("name refused: {why}")))?;
        let Some((leaf, parents)) = parts.split_last() else {
            return Err(fail(FailKind::RefusedName, "name refused: it is empty"));
        };
        let dir = target.folder(parents).map_err(|b| match b {
            Blocked::Symlink(at) => fail(
                FailKind::Symlink,
                format!("{at} in the target is a symbolic link; it is not followed"),
            ),
            Blocked::NotAFolder(at) => fail(
                FailKind::InTheWay,
                format!("{at} in the target is not a folder"),
            ),
            Blocked::Io(at, e) => write_fail(&format!("folder {at}"), e),
        })?;
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
                    return Ok(Placed::AlreadyThere);
                }
                if !self.opts.overwrite {
                    return Err(fail(
                        FailKind::Exists,
                        "a different file is there; kept (--overwrite replaces it)",
                    ));
                }
            }
            Err(e) => return Err(write_fail("checking the target", e)),
        }
        let dir = dir
            .try_clone()
            .map_err(|e| write_fail("opening its folder", e))?;
        let tmp = target::temp_name(v.id);
        let mut file = match dir.create_new(&tmp) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // A leftover of a run killed midway (the name is ours).
                let _ = dir.remove(&tmp);
                dir.create_new(&tmp)
            }
            other => other,
        }
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
        drop(file);
        if let Err(f) = copied {
            let _ = dir.remove(&tmp);
            return Err(f);
        }
        Ok(Placed::Written(Pending {
            item,
            dir,
            tmp,
            leaf: leaf.clone(),
        }))
    }
}

/// Makes a batch of written files durable and renames each into place;
/// one that fails is removed and reported. Returns whether the target's
/// filesystem is full.
fn finish_batch(
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
            None => p.dir.open_file(&p.tmp).and_then(|f| f.sync_all()),
        };
        let done = durable.map_err(|e| write_fail("fsync", e)).and_then(|()| {
            match crate::fault::injected("restore::rename") {
                Some(e) => Err(e),
                None => p.dir.rename(&p.tmp, leaf),
            }
            .map_err(|e| write_fail("renaming into place", e))
        });
        match done {
            Ok(()) => restored.add(v.size),
            Err(f) => {
                let _ = p.dir.remove(&p.tmp);
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

/// How much of a file is written before its writeback is started.
const WRITEBACK_CHUNK: u64 = 1 << 20;

/// Files at least this large are hashed on a second thread while this one
/// reads the disc and writes the target, so a restore uses both cores as
/// verifying does; the disc is still read in order, one file after the
/// other. Smaller files are not worth a thread.
const PARALLEL_HASH_MIN: u64 = 4 << 20;

/// Chunks read at a time.
const CHUNK: usize = 1 << 20;

/// Where the copy loop sends what it read, to be hashed.
trait ChunkHasher {
    /// A buffer to read the next chunk into.
    fn buffer(&mut self) -> Vec<u8>;
    /// Hashes a chunk (its length is what was read); false if hashing
    /// stopped.
    fn hash(&mut self, chunk: Vec<u8>) -> bool;
    /// Takes back a buffer that was not used.
    fn give_back(&mut self, chunk: Vec<u8>);
}

/// Hashing in the copying thread, with one buffer.
struct Inline<'b> {
    md5: Md5,
    buf: &'b mut Vec<u8>,
}

impl ChunkHasher for Inline<'_> {
    fn buffer(&mut self) -> Vec<u8> {
        let mut b = std::mem::take(self.buf);
        b.resize(CHUNK, 0);
        b
    }

    fn hash(&mut self, chunk: Vec<u8>) -> bool {
        self.md5.update(&chunk);
        *self.buf = chunk;
        true
    }

    fn give_back(&mut self, chunk: Vec<u8>) {
        *self.buf = chunk;
    }
}

/// Chunks in flight to the hashing thread at most.
const IN_FLIGHT: usize = 4;

/// Hashing on another thread: chunks go over a bounded channel and their
/// buffers come back to be read into again. Buffers are kept from one file
/// to the next (`pool`): a fresh megabyte for every chunk would cost more
/// in page faults than the copy.
struct Threaded<'p> {
    chunks: std::sync::mpsc::SyncSender<Vec<u8>>,
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    pool: &'p mut Vec<Vec<u8>>,
    made: usize,
}

impl ChunkHasher for Threaded<'_> {
    fn buffer(&mut self) -> Vec<u8> {
        let mut b = match self.spare.try_recv() {
            Ok(b) => b,
            Err(_) => match self.pool.pop() {
                Some(b) => b,
                // Enough buffers exist: wait for one to come back.
                None if self.made >= IN_FLIGHT + 2 => self.spare.recv().unwrap_or_default(),
                None => {
                    self.made += 1;
                    Vec::new()
                }
            },
        };
        b.resize(CHUNK, 0);
        b
    }

    fn hash(&mut self, chunk: Vec<u8>) -> bool {
        self.chunks.send(chunk).is_ok()
    }

    fn give_back(&mut self, _chunk: Vec<u8>) {}
}

/// Copies a stored file into `out` while computing its MD5, then (when it
/// matches) sets the recorded mtime; the fsync comes with its batch.
fn copy_checked(
    medium: &Medium,
    stored: &Stored,
    v: &Item,
    out: &mut std::fs::File,
    buf: &mut Vec<u8>,
    pool: &mut Vec<Vec<u8>>,
    progress: &Progress,
) -> std::result::Result<(), Failure> {
    let read_fail = |e: std::io::Error| {
        fail(
            FailKind::Unreadable,
            format!("reading it from {}: {e}", medium.label()),
        )
    };
    let mut r = medium.open(stored).map_err(read_fail)?;
    let (copied, digest) = if v.size < PARALLEL_HASH_MIN {
        let mut inline = Inline {
            md5: Md5::new(),
            buf,
        };
        let copied = copy_loop(&mut *r, out, &mut inline, progress, &read_fail);
        let digest = inline.md5.finalize();
        // After a failed read or write the buffer was not handed back:
        // the caller reads into it again.
        if buf.len() < CHUNK {
            buf.resize(CHUNK, 0);
        }
        (copied, Some(digest))
    } else {
        std::thread::scope(|s| {
            let (chunks_tx, chunks_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
            let (spare_tx, spare_rx) = std::sync::mpsc::channel();
            let hasher = s.spawn(move || {
                let mut md5 = Md5::new();
                for chunk in chunks_rx {
                    md5.update(&chunk);
                    // The copy loop may be gone; the buffer is then dropped.
                    let _ = spare_tx.send(chunk);
                }
                md5.finalize()
            });
            let made = pool.len();
            let mut threaded = Threaded {
                chunks: chunks_tx,
                spare: spare_rx,
                pool,
                made,
            };
            let copied = copy_loop(&mut *r, out, &mut threaded, progress, &read_fail);
            let Threaded {
                chunks,
                spare,
                pool,
                ..
            } = threaded;
            drop(chunks);
            let digest = hasher.join().ok();
            // The hasher has given every buffer back: keep them.
            pool.extend(spare.try_iter());
            (copied, digest)
        })
    };
    let total = copied?;
    let Some(digest) = digest else {
        return Err(fail(FailKind::Unreadable, "hashing it failed"));
    };
    if total != v.size || digest[..] != v.md5 {
        let md5 = crate::mkiso::hex(&digest);
        return Err(fail(
            FailKind::Damaged,
            format!(
                "damaged on {}: {total} bytes with MD5 {md5}, the manifest says {} bytes with MD5 {}",
                medium.label(),
                v.size,
                crate::mkiso::hex(&v.md5)
            ),
        ));
    }
    out.set_modified(system_time(v.mtime))
        .map_err(|e| write_fail("setting its modification time", e))?;
    Ok(())
}

/// Reads `r` to its end in chunks, writing each to `out` and handing it to
/// `hasher`; returns how many bytes were copied.
fn copy_loop(
    r: &mut dyn Read,
    out: &mut std::fs::File,
    hasher: &mut dyn ChunkHasher,
    progress: &Progress,
    read_fail: &dyn Fn(std::io::Error) -> Failure,
) -> std::result::Result<u64, Failure> {
    let mut total = 0u64;
    let mut flushed = 0u64;
    loop {
        if crate::interrupt::requested() {
            return Err(fail(FailKind::NotReached, "interrupted"));
        }
        let mut chunk = hasher.buffer();
        let read = match crate::fault::injected("restore::read") {
            Some(e) => Err(e),
            None => r.read(&mut chunk),
        };
        let n = match read {
            Ok(0) => {
                hasher.give_back(chunk);
                return Ok(total);
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_fail(e)),
        };
        chunk.truncate(n);
        match crate::fault::injected("restore::write") {
            Some(e) => Err(e),
            None => out.write_all(&chunk),
        }
        .map_err(|e| write_fail("writing", e))?;
        if !hasher.hash(chunk) {
            return Err(fail(FailKind::Unreadable, "hashing it failed"));
        }
        total += n as u64;
        progress.add_bytes(n as u64);
        // Every few MiB, start writing what came so far: the disk writes
        // while we read and hash, and the fsync below has little left.
        if total - flushed >= WRITEBACK_CHUNK {
            crate::fsutil::start_writeback(out, flushed, total - flushed);
            flushed = total;
        }
    }
}

/// Unix seconds (REAL with a fraction, or whole) as a time to set.
fn system_time(secs: f64) -> std::time::SystemTime {
    use std::time::{Duration, UNIX_EPOCH};
    if !secs.is_finite() {
        return UNIX_EPOCH;
    }
    let whole = secs.floor();
    let mut nanos = ((secs - whole) * 1e9).round() as u64;
    let mut whole = whole as i64;
    if nanos >= 1_000_000_000 {
        whole += 1;
        nanos -= 1_000_000_000;
    }
    if whole >= 0 {
        UNIX_EPOCH + Duration::new(whole as u64, nanos as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(whole.unsigned_abs()) + Duration::from_nanos(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_target_are_refused() {
        for bad in [
            &b"/../../escape"[..],
            b"/a/../../b",
            b"//abs",
            b"/a//b",
            b"/a/",
            b"/./a",
            b"/",
            b"",
            b"/a\0b",
            b"..",
        ] {
            assert!(
                name_parts(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let ok = name_parts(b"/2012/holiday/IMG_0001.jpg").unwrap();
        assert_eq!(ok.len(), 3);
        assert!(name_parts(b"/caf\xe9/..x/.hidden").is_ok());
    }

    #[test]
    fn mtimes_keep_their_fraction() {
        use std::time::UNIX_EPOCH;
        let t = system_time(1_700_000_000.123_456);
        let d = t.duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(d.as_secs(), 1_700_000_000);
        assert!((d.subsec_nanos() as i64 - 123_456_000).abs() < 500);
        assert_eq!(
            system_time(1_300_000_000.0)
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_300_000_000
        );
        assert!(system_time(-1.5) < UNIX_EPOCH);
    }
}
