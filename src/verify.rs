//! Checking discs for damage, and the live folder for silent corruption.
//!
//! For each disc: every file its own manifest says it holds (`copied=1`
//! rows with that disc's number) is there, with the recorded size and MD5;
//! the manifest passes SQLite's integrity check; files under `files/` that
//! the manifest does not know are listed. With an origin folder: each
//! file's latest version in the newest manifest is compared with the live
//! file, to find originals whose size and mtime are unchanged but whose
//! content is not, which a size and mtime scan can never see.
//!
//! Reads only: never writes to a disc or the origin. Files are read in
//! on-disc order so a drive reads front to back; a file that cannot be read
//! is reported and the run goes on.

mod hash;
mod parity;
pub mod record;
mod sectors;

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use hash::{hash_all, HASHERS};
use sectors::{BadSectors, SectorReader};

use crate::catalog::manifest::{Manifest, Version};
use crate::cli::VerifyArgs;
use crate::history::{self, Matcher};
use crate::iso::Unreadable;
use crate::medium::{Content, DiscSet, Medium, MediumError, Stored};
use crate::progress::Progress;
use crate::{disc, names};

/// Why verification could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Medium(#[from] MediumError),
    #[error("origin {}: {why}", path.display())]
    Origin { path: PathBuf, why: String },
    /// The discs are not of the set whose workdir records the checks.
    #[error("{} is of set {theirs}, not of the workdir's set ({ours}); nothing was checked or recorded", path.display())]
    OtherWorkdir {
        path: PathBuf,
        theirs: String,
        ours: String,
    },
    /// A check could not be recorded in the workdir.
    #[error("recording the check: {0}")]
    Record(String),
}

type Result<T> = std::result::Result<T, VerifyError>;

/// What to verify, validated.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The discs as given (mounted discs, images, folders of images).
    pub discs: Vec<PathBuf>,
    /// The live folder to check against the newest manifest.
    pub origin: Option<PathBuf>,
    /// Stop cleanly once this instant has passed: before the next disc,
    /// or, within a disc, at the next batch of files (so at most a batch
    /// past it). The discs not begun are listed in the report.
    pub deadline: Option<Instant>,
    /// Files of a disc an earlier, time-limited run checked already, by
    /// disc (`3`, `parity-1-2`): this run goes on after them, in on-disc
    /// order.
    pub resume: HashMap<String, u64>,
    /// The order to check discs in, by disc: lowest first (the time of
    /// each disc's last check, so successive time-limited runs go round
    /// the set). Discs not in it come before any time, in disc order.
    pub order: Option<HashMap<String, f64>>,
    /// The set the discs must belong to (the workdir's, when results are
    /// recorded there).
    pub set_uuid: Option<String>,
}

impl VerifyOptions {
    /// Checks the arguments before any disc is read: the origin must be a folder.
    pub fn from_args(args: &VerifyArgs) -> Result<VerifyOptions> {
        let origin = match &args.origin {
            None => None,
            Some(p) => {
                let meta = std::fs::metadata(p).map_err(|e| VerifyError::Origin {
                    path: p.clone(),
                    why: e.to_string(),
                })?;
                if !meta.is_dir() {
                    return Err(VerifyError::Origin {
                        path: p.clone(),
                        why: "not a folder".into(),
                    });
                }
                Some(p.clone())
            }
        };
        Ok(VerifyOptions {
            discs: args.discs.clone(),
            origin,
            ..Default::default()
        })
    }
}

/// What is wrong with a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// On the disc, but its size or MD5 is not the recorded one.
    Damaged,
    /// Not on the disc; or, for the origin, no longer in the live folder.
    Missing,
    /// Reading it failed.
    Unreadable,
    /// On the disc, but its manifest does not know it.
    Unknown,
    /// The disc's manifest fails its integrity check or has unusable rows.
    Manifest,
    /// A live file whose size and mtime are as backed up but whose MD5 is not.
    SilentCorruption,
    /// A disc that could not be opened at all.
    Unusable,
}

impl Kind {
    /// How the problem reads in a sentence.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Damaged => "damaged",
            Kind::Missing => "missing",
            Kind::Unreadable => "unreadable",
            Kind::Unknown => "unknown to the manifest",
            Kind::Manifest => "damaged manifest",
            Kind::SilentCorruption => "silent corruption of the original",
            Kind::Unusable => "cannot be opened",
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    /// The file's id in the catalogue, when known.
    pub id: Option<i64>,
    /// The file's name in the watched folder (`/2012/a.jpg`), when known;
    /// bytes that are not UTF-8 are shown as `\xNN`.
    pub filename: Option<String>,
    /// Where: the path on the disc (`files/0/3`), or in the origin.
    pub path: String,
    pub problem: Kind,
    /// The particulars (`MD5 … instead of …`, the read error).
    pub detail: String,
    /// For a part of a split file: its number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<u32>,
    /// The part of a version that is no backup (abandoned): listed, but
    /// no backup is damaged by it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub not_a_backup: bool,
    /// For a file of an image (or a disc in its drive) that could not be
    /// read whole: the runs of sectors that never read, as (first LBA,
    /// last LBA), each tried [`sectors::TRIES`] times; every other sector
    /// of the file was read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable_sectors: Vec<(u64, u64)>,
}

impl Problem {
    fn of(v: &Version, path: String, problem: Kind, detail: String) -> Problem {
        Problem {
            id: Some(v.id),
            filename: Some(names::display(&v.name, false)),
            path,
            problem,
            detail,
            part: None,
            not_a_backup: false,
            unreadable_sectors: Vec::new(),
        }
    }

    fn at(path: impl Into<String>, problem: Kind, detail: String) -> Problem {
        Problem {
            id: None,
            filename: None,
            path: path.into(),
            problem,
            detail,
            part: None,
            not_a_backup: false,
            unreadable_sectors: Vec::new(),
        }
    }
}

/// Where a part of a split file stands, by what the newest manifest given
/// records of its version (this disc's own when it alone knows the part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Its version is complete: a backup.
    Backup,
    /// Its version was still being staged when the newest disc given was
    /// closed, as every part but the last is on its own disc: a later disc
    /// may complete it, so it is checked, and its damage counted, as a
    /// backup's.
    Unfinished,
    /// Its version was abandoned (or its state is not one we know): no
    /// backup. Checked and listed, never counted as a damaged backup.
    NotABackup,
}

impl Standing {
    fn of(state: &str) -> Standing {
        match state {
            "complete" => Standing::Backup,
            "staging" => Standing::Unfinished,
            _ => Standing::NotABackup,
        }
    }
}

/// A part of a split file recorded on a disc, and what checking it showed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartReport {
    pub id: i64,
    /// The file's name in the watched folder, bytes that are not UTF-8 as
    /// `\xNN`.
    pub filename: String,
    pub part: u32,
    /// Its path on the disc (`files/0/7.2`).
    pub path: String,
    pub offset: u64,
    pub size: u64,
    pub md5: String,
    /// Its version's state: `complete`, `staging` or `abandoned`.
    pub state: String,
    pub standing: Standing,
    /// Present, of its size and MD5.
    pub ok: bool,
    /// What is wrong with it, when something is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Kind>,
}

/// A file the disc must hold, as its manifest records it: a whole file,
/// or a part.
struct Expected {
    id: i64,
    name: String,
    rel: String,
    size: u64,
    md5: String,
    /// A part's number and its place in the report's `parts`.
    part: Option<(u32, usize)>,
    /// How a problem of it is introduced: `part 2`, and why it is or may
    /// be no backup.
    label: Option<String>,
    /// Whether it is (or may be) a backup: its problems count as damage.
    backup: bool,
}

/// What one disc showed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DiscReport {
    pub disc: i64,
    /// For a parity disc: its name `G-J` (and `disc` is the newest data
    /// disc its manifest knows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parity: Option<String>,
    /// For a parity disc: what `par2 verify` said of its group's images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub par2: Option<String>,
    /// For a parity disc whose group's images were all given: whether
    /// `par2 verify` found them whole. A data image that is not is that
    /// disc's damage, not this one's: it is not counted in `damaged`, but
    /// the run is not clean.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub par2_whole: Option<bool>,
    /// The mounted disc, or image, it was read from.
    pub source: String,
    /// `image` or `folder`.
    pub medium: &'static str,
    /// Files its manifest says it holds as (maybe) backups: whole files,
    /// and parts of split files that are or may be a backup; `ok`,
    /// `damaged`, `missing` and `unreadable` count these.
    pub files: u64,
    pub ok: u64,
    pub damaged: u64,
    pub missing: u64,
    pub unreadable: u64,
    pub unknown: u64,
    /// Whether `manifest.db` passed its integrity check and every row of
    /// this disc could be used.
    pub manifest_ok: bool,
    /// Bytes read.
    pub bytes: u64,
    pub seconds: f64,
    pub problems: Vec<Problem>,
    /// Every part of a split file its manifest records on it, whatever
    /// its version's state, with what checking it showed.
    pub parts: Vec<PartReport>,
    /// Of those, parts of a version that is no backup (abandoned): checked
    /// and listed, never counted in `files`, `damaged` or `missing`.
    pub not_a_backup: u64,
    /// Files to read on it, in on-disc order (those whose size is right).
    pub to_read: u64,
    /// Files an earlier time-limited run read already: this one went on
    /// after them (and did not check the manifest or the missing files
    /// again: the earlier run did).
    pub resumed_from: u64,
    /// Set when the time limit stopped the run on this disc: the files
    /// read so far (the next run goes on from there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<u64>,
}

impl DiscReport {
    /// A report on `m` with nothing checked yet.
    fn of(m: &Medium) -> DiscReport {
        DiscReport {
            disc: m.disc,
            source: names::display(m.source.as_os_str().as_encoded_bytes(), false),
            medium: match m.content {
                Content::Image(_) => "image",
                Content::Folder(_) => "folder",
            },
            manifest_ok: true,
            ..Default::default()
        }
    }

    /// Nothing damaged, missing or unreadable, and the manifest is sound.
    /// (Unknown files are listed, but do not make a disc bad.)
    pub fn clean(&self) -> bool {
        self.manifest_ok
            && self.damaged == 0
            && self.missing == 0
            && self.unreadable == 0
            && self.par2_whole != Some(false)
    }

    /// Read speed in MB/s (10^6 bytes).
    pub fn mb_per_s(&self) -> f64 {
        mb_per_s(self.bytes, self.seconds)
    }

    /// Records what checking a file it must hold showed: fine (`None`),
    /// or a problem.
    fn checked(
        &mut self,
        e: &Expected,
        problem: Option<(Kind, String)>,
        on_problem: &mut dyn FnMut(&str, &Problem),
    ) {
        self.checked_with_sectors(e, problem, Vec::new(), on_problem)
    }

    /// Like [`Self::checked`], with the sectors that could not be read.
    fn checked_with_sectors(
        &mut self,
        e: &Expected,
        problem: Option<(Kind, String)>,
        unreadable_sectors: Vec<(u64, u64)>,
        on_problem: &mut dyn FnMut(&str, &Problem),
    ) {
        if let Some((_, i)) = e.part {
            if let Some(p) = self.parts.get_mut(i) {
                p.ok = problem.is_none();
                p.problem = problem.as_ref().map(|(k, _)| *k);
            }
        }
        let Some((kind, detail)) = problem else {
            if e.backup {
                self.ok += 1;
            }
            return;
        };
        self.add(
            Problem {
                id: Some(e.id),
                filename: Some(e.name.clone()),
                path: e.rel.clone(),
                problem: kind,
                detail: match &e.label {
                    Some(label) => format!("{label}: {detail}"),
                    None => detail,
                },
                part: e.part.map(|(k, _)| k),
                not_a_backup: !e.backup,
                unreadable_sectors,
            },
            on_problem,
        );
    }

    fn add(&mut self, p: Problem, on_problem: &mut dyn FnMut(&str, &Problem)) {
        if p.not_a_backup {
            on_problem(&self.label(), &p);
            self.problems.push(p);
            return;
        }
        match p.problem {
            Kind::Damaged => self.damaged += 1,
            Kind::Missing => self.missing += 1,
            Kind::Unreadable => self.unreadable += 1,
            Kind::Unknown => self.unknown += 1,
            Kind::Manifest | Kind::Unusable => self.manifest_ok = false,
            Kind::SilentCorruption => {}
        }
        on_problem(&self.label(), &p);
        self.problems.push(p);
    }

    /// The disc's manifest must pass SQLite's integrity check.
    fn check_manifest(&mut self, m: &Medium, on_problem: &mut dyn FnMut(&str, &Problem)) {
        if let Err(why) = m.manifest.integrity_check() {
            self.add(
                Problem::at(
                    disc::MANIFEST,
                    Kind::Manifest,
                    format!("fails its integrity check: {}", why.replace('\n', " ")),
                ),
                on_problem,
            );
        }
    }

    /// Where a problem was found: `disc 3 (/media/cdrom)`, `parity disc 1-1 (...)`.
    fn label(&self) -> String {
        match &self.parity {
            Some(p) => format!("parity disc {p} ({})", self.source),
            None => format!("disc {} ({})", self.disc, self.source),
        }
    }
}

/// What the origin showed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OriginReport {
    pub path: String,
    /// Files of the newest manifest not recorded as deleted.
    pub files: u64,
    /// Unchanged since the backup, and the same MD5.
    pub ok: u64,
    /// Size or mtime differ from the backup: changed since, not an error.
    pub changed: u64,
    pub silent_corruption: u64,
    pub missing: u64,
    pub unreadable: u64,
    /// Whether the newest manifest could be read whole.
    pub manifest_ok: bool,
    pub bytes: u64,
    pub seconds: f64,
    pub problems: Vec<Problem>,
}

impl OriginReport {
    /// Nothing silently corrupted, missing or unreadable.
    pub fn clean(&self) -> bool {
        self.manifest_ok && self.silent_corruption == 0 && self.missing == 0 && self.unreadable == 0
    }

    /// Read speed in MB/s (10^6 bytes).
    pub fn mb_per_s(&self) -> f64 {
        mb_per_s(self.bytes, self.seconds)
    }

    fn add(&mut self, p: Problem, on_problem: &mut dyn FnMut(&str, &Problem)) {
        match p.problem {
            Kind::SilentCorruption | Kind::Damaged => self.silent_corruption += 1,
            Kind::Missing => self.missing += 1,
            Kind::Unreadable => self.unreadable += 1,
            Kind::Manifest | Kind::Unusable => self.manifest_ok = false,
            Kind::Unknown => {}
        }
        on_problem(&format!("origin ({})", self.path), &p);
        self.problems.push(p);
    }
}

/// A disc given that could not be opened at all (an image too damaged to
/// read, a manifest that is not a database): nothing on it can be checked.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct UnusableDisc {
    pub source: String,
    pub error: String,
}

/// Everything verified.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Discs that could not be opened; the others were still verified.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unusable: Vec<UnusableDisc>,
    /// In disc order; a disc given twice (two copies) appears twice.
    pub discs: Vec<DiscReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<OriginReport>,
    /// With a time limit that passed: the discs not begun (and the origin
    /// not checked), for the next run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_begun: Vec<String>,
}

impl DiscReport {
    /// The disc's name for records: `3`, or `parity-1-2`.
    pub fn name(&self) -> String {
        match &self.parity {
            Some(p) => format!("parity-{p}"),
            None => self.disc.to_string(),
        }
    }
}

impl VerifyReport {
    /// Whether everything checked is good.
    pub fn clean(&self) -> bool {
        self.unusable.is_empty()
            && self.discs.iter().all(DiscReport::clean)
            && self.origin.as_ref().is_none_or(|o| o.clean())
    }
}

fn mb_per_s(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / seconds / 1e6
    } else {
        0.0
    }
}

/// Verifies every disc in `opts`, then the origin if one was given.
/// `on_problem` hears of each problem as it is found, with where it was
/// found (`disc 3 (/media/cdrom)`); the report holds them all.
pub fn verify(
    opts: &VerifyOptions,
    progress: &Progress,
    on_problem: &mut dyn FnMut(&str, &Problem),
) -> Result<VerifyReport> {
    verify_each(opts, progress, on_problem, &mut |_| Ok(()))
}

/// [`verify`], telling `on_disc` of each disc as soon as it is checked
/// (to record it before the next is begun); an error from it stops the run.
pub fn verify_each(
    opts: &VerifyOptions,
    progress: &Progress,
    on_problem: &mut dyn FnMut(&str, &Problem),
    on_disc: &mut dyn FnMut(&DiscReport) -> Result<()>,
) -> Result<VerifyReport> {
    let (set, unusable) = DiscSet::open_lenient(&opts.discs)?;
    if let Some(uuid) = &opts.set_uuid {
        let theirs = set.identity();
        if theirs.uuid.as_deref().is_some_and(|u| u != uuid) {
            let m = &set.media.first().or(set.parity.first());
            return Err(VerifyError::OtherWorkdir {
                path: m.map(|m| m.source.clone()).unwrap_or_default(),
                theirs: theirs.describe(),
                ours: uuid.clone(),
            });
        }
    }
    // Two copies of one disc may differ, so a disc given twice is verified
    // each time; the copy must belong to the set like the others.
    let ours = set.identity();
    let mut copies = Vec::new();
    for source in &set.duplicates {
        for m in Medium::open_all(source)? {
            if !m.identity.same_set(ours) {
                return Err(MediumError::OtherSet {
                    path: m.source.clone(),
                    disc: m.disc,
                    theirs: m.identity.describe(),
                    ours: ours.describe(),
                }
                .into());
            }
            copies.push(m);
        }
    }
    let mut media: Vec<&Medium> = set
        .media
        .iter()
        .chain(copies.iter())
        .chain(set.parity.iter())
        .collect();
    media.sort_by_key(|m| (m.parity.is_some(), m.parity, m.disc));
    if let Some(order) = &opts.order {
        // Lowest first; never checked (not in it) before any time; stable,
        // so disc order among equals.
        media.sort_by(|a, b| {
            let at = |m: &Medium| order.get(&medium_name(m)).copied().unwrap_or(-1.0);
            at(a).total_cmp(&at(b))
        });
    }

    let mut report = VerifyReport::default();
    for u in unusable {
        let u = UnusableDisc {
            source: u.source.display().to_string(),
            error: u.error.to_string(),
        };
        on_problem(
            "unusable disc",
            &Problem::at(u.source.clone(), Kind::Unusable, u.error.clone()),
        );
        report.unusable.push(u);
    }
    let past = |d: Option<Instant>| d.is_some_and(|d| Instant::now() >= d);
    // Bounded by the discs given.
    for m in media {
        if past(opts.deadline) {
            report.not_begun.push(medium_name(m));
            continue;
        }
        let r = if m.parity.is_some() {
            parity::verify_parity_disc(m, &set, progress, on_problem)
        } else {
            let skip = opts.resume.get(&medium_name(m)).copied().unwrap_or(0);
            verify_disc(m, set.history(), skip, opts.deadline, progress, on_problem)
        };
        on_disc(&r)?;
        report.discs.push(r);
    }
    if let Some(origin) = &opts.origin {
        if past(opts.deadline) {
            report.not_begun.push("origin".into());
        } else {
            report.origin = Some(verify_origin(&set, origin, progress, on_problem));
        }
    }
    Ok(report)
}

/// A disc's name for records: `3`, or `parity-1-2`.
fn medium_name(m: &Medium) -> String {
    match m.parity {
        Some((g, j)) => format!("parity-{g}-{j}"),
        None => m.disc.to_string(),
    }
}

/// Files read in one go between looks at the clock, and their bytes.
const BATCH_FILES: usize = 256;
const BATCH_BYTES: u64 = 256 << 20;

/// [`BATCH_FILES`], which a test build takes smaller from the fault point
/// `verify::batch_files=return(N)` (so a small disc has several batches).
fn batch_files() -> usize {
    fail::fail_point!("verify::batch_files", |n| n
        .and_then(|n| n.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(BATCH_FILES));
    BATCH_FILES
}

/// Verifies one disc against its own manifest (`history`, the newest
/// manifest given, says only what became of a split version).
fn verify_disc(
    m: &Medium,
    history: &Manifest,
    skip: u64,
    deadline: Option<Instant>,
    progress: &Progress,
    on_problem: &mut dyn FnMut(&str, &Problem),
) -> DiscReport {
    let started = Instant::now();
    let mut r = DiscReport::of(m);
    // An earlier run checked the manifest, the missing files and the
    // first `skip` files to read: this one goes on after them.
    let resumed = skip > 0;
    progress.message(format!("disc {}: verifying", m.disc));
    if !resumed {
        r.check_manifest(m, on_problem);
    }
    let versions = match m.manifest.disc_versions(m.disc) {
        Ok((versions, invalid)) => {
            if invalid > 0 {
                r.add(
                    Problem::at(
                        disc::MANIFEST,
                        Kind::Manifest,
                        format!("{invalid} rows of this disc are unusable; their files cannot be checked"),
                    ),
                    on_problem,
                );
            }
            versions
        }
        Err(e) => {
            r.add(
                Problem::at(
                    disc::MANIFEST,
                    Kind::Manifest,
                    format!("cannot list this disc's files: {e}"),
                ),
                on_problem,
            );
            r.seconds = started.elapsed().as_secs_f64();
            return r;
        }
    };
    // What the disc must hold: its whole files, then every recorded part.
    let mut expected: Vec<Expected> = versions
        .iter()
        .map(|v| Expected {
            id: v.id,
            name: names::display(&v.name, false),
            rel: disc::file_path(v.id).to_string_lossy().into_owned(),
            size: v.size,
            md5: v.md5.clone(),
            part: None,
            label: None,
            backup: true,
        })
        .collect();
    r.files = expected.len() as u64;
    expected.extend(disc_parts(m, history, &mut r, on_problem));

    let mut known = HashSet::with_capacity(expected.len());
    let mut jobs: Vec<(Stored, &Expected)> = Vec::with_capacity(expected.len());
    for e in &expected {
        let stored = match e.part {
            None => m.stored(e.id),
            Some((k, _)) => m.stored_part(e.id, k),
        };
        match stored {
            None if !resumed => r.checked(
                e,
                Some((Kind::Missing, "not on the disc".into())),
                on_problem,
            ),
            // A compressed file's recorded size is its compressed size:
            // what cannot be decoded is unreadable before anything else.
            // (One past the end of a short image is read for its sectors.)
            Some(Stored {
                unreadable: Some(why),
                ..
            }) if !matches!(why, Unreadable::PastEnd { .. }) && !resumed => {
                r.checked(e, Some((Kind::Unreadable, why.to_string())), on_problem)
            }
            // Found by the earlier run this one goes on from.
            Some(Stored {
                unreadable: Some(why),
                ..
            }) if !matches!(why, Unreadable::PastEnd { .. }) => {}
            Some(s) if s.size != e.size && !resumed => r.checked(
                e,
                Some((
                    Kind::Damaged,
                    format!("{} bytes instead of {}", s.size, e.size),
                )),
                on_problem,
            ),
            Some(s) if s.size == e.size => jobs.push((s, e)),
            // Found by the earlier run this one goes on from.
            _ => {}
        }
        known.insert(e.rel.clone());
    }
    jobs.sort_by_key(|(s, _)| s.order);
    r.to_read = jobs.len() as u64;
    r.resumed_from = skip.min(r.to_read);
    let mut next = r.resumed_from as usize;

    // The content, not the medium: its manifest's connection stays here.
    let content = &m.content;
    // An image, or a disc in its drive, is read so that a bad spot costs
    // only its sectors, and they are named (see `sectors`).
    let image = match content {
        Content::Image(reader) => Some(reader),
        Content::Folder(_) => None,
    };
    let read_at = |b: &mut [u8], at: u64| image.map_or(Ok(0), |i| i.read_at(b, at));
    let open = |(s, _): &(Stored, &Expected)| -> io::Result<Box<dyn io::Read + Send + '_>> {
        match image.and_then(|i| i.find(&s.rel)) {
            Some(f)
                if f.unreadable
                    .is_none_or(|u| matches!(u, Unreadable::PastEnd { .. })) =>
            {
                Ok(Box::new(SectorReader::new(&read_at, f.extents.clone())))
            }
            _ => content.open(s),
        }
    };
    let mut sectors_of_last = Vec::new();
    // In batches, looking at the clock between them. Bounded by the jobs:
    // each batch takes at least one.
    let batch_files = batch_files();
    while next < jobs.len() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            r.stopped_at = Some(next as u64);
            break;
        }
        fail::fail_point!("verify::batch");
        let mut end = next;
        let mut bytes = 0u64;
        while end < jobs.len() && end - next < batch_files && (end == next || bytes < BATCH_BYTES) {
            bytes = bytes.saturating_add(jobs[end].0.size);
            end += 1;
        }
        let batch = &jobs[next..end];
        next = end;
        hash_all(
            batch,
            HASHERS,
            open,
            |(s, _)| s.rel.as_str(),
            progress,
            |(_, e), outcome| {
                r.bytes += outcome.bytes;
                let problem = match outcome.result {
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {
                        Some((Kind::Missing, format!("vanished while verifying: {err}")))
                    }
                    Err(err) => {
                        if let Some(bad) =
                            err.get_ref().and_then(|x| x.downcast_ref::<BadSectors>())
                        {
                            sectors_of_last = bad.ranges.clone();
                        }
                        Some((Kind::Unreadable, err.to_string()))
                    }
                    Ok(_) if outcome.bytes != e.size => Some((
                        Kind::Damaged,
                        format!("{} bytes read instead of {}", outcome.bytes, e.size),
                    )),
                    Ok(md5) if md5 != e.md5 => {
                        Some((Kind::Damaged, format!("MD5 {md5} instead of {}", e.md5)))
                    }
                    Ok(_) => None,
                };
                r.checked_with_sectors(
                    e,
                    problem,
                    std::mem::take(&mut sectors_of_last),
                    on_problem,
                );
            },
        );
    }
    if r.stopped_at.is_some() {
        r.seconds = started.elapsed().as_secs_f64();
        return r;
    }

    // The disc's own files outside `files/` (README.TXT, RECOVER.PY,
    // MD5SUMS: a stranger's way in) count too when a short image lost them
    // or they cannot be decoded; `manifest.db` was read to open the disc.
    if let Content::Image(reader) = &m.content {
        for f in reader.files() {
            if let Some(why) = f.unreadable {
                if !f.path.starts_with("files/") && f.path != disc::MANIFEST {
                    r.add(
                        Problem::at(f.path.clone(), Kind::Unreadable, why.to_string()),
                        on_problem,
                    );
                }
            }
        }
    }

    match m.stored_files() {
        Ok(mut all) => {
            all.sort_by_key(|s| s.order);
            for s in all.into_iter().filter(|s| !known.contains(&s.rel)) {
                // `files/0/7` or, for a part, `files/0/7.2`.
                let base = s.rel.rsplit('/').next().unwrap_or_default();
                let (id, part) = match base.split_once('.') {
                    Some((id, k)) => (id, k.parse::<u32>().ok()),
                    None => (base, None),
                };
                r.add(
                    Problem {
                        id: id.parse::<i64>().ok(),
                        filename: None,
                        part,
                        not_a_backup: false,
                        unreadable_sectors: Vec::new(),
                        problem: Kind::Unknown,
                        detail: format!("{} bytes, not in this disc's manifest", s.size),
                        path: s.rel,
                    },
                    on_problem,
                );
            }
        }
        Err(e) => r.add(
            Problem::at(
                disc::FILES_DIR,
                Kind::Unreadable,
                format!("cannot list the disc's files: {e}"),
            ),
            on_problem,
        ),
    }
    r.problems
        .sort_by_key(|p| (p.id.is_some(), p.id, p.path.clone()));
    r.seconds = started.elapsed().as_secs_f64();
    r
}

/// Every part of a split file that the disc's manifest records on it,
/// whatever its version's state, entered in the report's `parts`, as files
/// to check. A part's standing comes from the newest manifest given when it
/// knows the part (a disc closed before the version's last part calls it
/// `staging` for ever), else from the disc's own.
fn disc_parts(
    m: &Medium,
    history: &Manifest,
    r: &mut DiscReport,
    on_problem: &mut dyn FnMut(&str, &Problem),
) -> Vec<Expected> {
    let own = match m.manifest.disc_parts(m.disc) {
        Ok((parts, invalid)) => {
            if invalid > 0 {
                r.add(
                    Problem::at(
                        disc::MANIFEST,
                        Kind::Manifest,
                        format!("{invalid} part rows of this disc are unusable; their parts cannot be checked"),
                    ),
                    on_problem,
                );
            }
            parts
        }
        Err(e) => {
            r.add(
                Problem::at(
                    disc::MANIFEST,
                    Kind::Manifest,
                    format!("cannot list this disc's parts of split files: {e}"),
                ),
                on_problem,
            );
            return Vec::new();
        }
    };
    if own.is_empty() {
        return Vec::new();
    }
    // A newer manifest that cannot be read leaves each part its own disc's
    // state; that manifest's own disc says what is wrong with it.
    let newer: HashMap<(i64, u32), String> = if std::ptr::eq(history, &m.manifest) {
        HashMap::new()
    } else {
        history
            .disc_parts(m.disc)
            .map(|(parts, _)| parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| ((p.file_id, p.part.part), p.state))
            .collect()
    };
    let mut out = Vec::with_capacity(own.len());
    for p in own {
        let state = newer
            .get(&(p.file_id, p.part.part))
            .cloned()
            .unwrap_or(p.state);
        let standing = Standing::of(&state);
        let k = p.part.part;
        let name = names::display(&p.name, false);
        let rel = disc::part_path(p.file_id, k).to_string_lossy().into_owned();
        let label = match standing {
            Standing::Backup => format!("part {k}"),
            Standing::Unfinished => format!(
                "part {k} (its version was unfinished when the newest disc given was closed)"
            ),
            Standing::NotABackup => format!(
                "part {k}, not a backup (its version is {})",
                names::display(state.as_bytes(), false)
            ),
        };
        let backup = standing != Standing::NotABackup;
        if backup {
            r.files += 1;
        } else {
            r.not_a_backup += 1;
        }
        out.push(Expected {
            id: p.file_id,
            name: name.clone(),
            rel: rel.clone(),
            size: p.part.size,
            md5: p.part.md5.clone(),
            part: Some((k, r.parts.len())),
            label: Some(label),
            backup,
        });
        r.parts.push(PartReport {
            id: p.file_id,
            filename: name,
            part: k,
            path: rel,
            offset: p.part.offset,
            size: p.part.size,
            md5: p.part.md5,
            state,
            standing,
            ok: false,
            problem: None,
        });
    }
    out
}

/// Checks the live folder against the newest manifest.
fn verify_origin(
    set: &DiscSet,
    origin: &Path,
    progress: &Progress,
    on_problem: &mut dyn FnMut(&str, &Problem),
) -> OriginReport {
    let started = Instant::now();
    let mut r = OriginReport {
        path: names::display(origin.as_os_str().as_encoded_bytes(), false),
        manifest_ok: true,
        ..Default::default()
    };
    progress.message("origin: checking");
    let everything = Matcher::new(&[], false).expect("no patterns always compile");
    let selection = match history::select(set.history(), &everything, None) {
        Ok(s) => s,
        Err(e) => {
            r.add(
                Problem::at(
                    disc::MANIFEST,
                    Kind::Manifest,
                    format!("the newest manifest cannot be read: {e}"),
                ),
                on_problem,
            );
            return r;
        }
    };
    if selection.invalid_rows > 0 {
        r.add(
            Problem::at(
                disc::MANIFEST,
                Kind::Manifest,
                format!(
                    "{} rows of the newest manifest are unusable; their files are not checked",
                    selection.invalid_rows
                ),
            ),
            on_problem,
        );
    }

    let mut jobs: Vec<(PathBuf, &Version)> = Vec::new();
    for f in selection.files.iter().filter(|f| f.deleted.is_none()) {
        let v = f.current();
        r.files += 1;
        let rel = names::to_relative(&v.name);
        let shown = names::display(&v.name, false);
        // A hostile name must not make us read outside the origin.
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            r.add(
                Problem::of(
                    v,
                    shown,
                    Kind::Manifest,
                    "not a plain path inside the folder".into(),
                ),
                on_problem,
            );
            continue;
        }
        let path = origin.join(rel);
        let shown = names::display(path.as_os_str().as_encoded_bytes(), false);
        match std::fs::symlink_metadata(&path) {
            Err(e) if is_gone(&e) => r.add(
                Problem::of(v, shown, Kind::Missing, "not in the folder".into()),
                on_problem,
            ),
            Err(e) => r.add(
                Problem::of(v, shown, Kind::Unreadable, e.to_string()),
                on_problem,
            ),
            Ok(meta) if !meta.is_file() => r.add(
                Problem::of(v, shown, Kind::Missing, "no longer a regular file".into()),
                on_problem,
            ),
            Ok(meta)
                if meta.len() == v.size
                    && v.recorded_mtime().matches(meta.mtime(), meta.mtime_nsec()) =>
            {
                jobs.push((path, v))
            }
            Ok(_) => r.changed += 1,
        }
    }

    progress.message("origin: hashing unchanged files");
    hash_all(
        &jobs,
        HASHERS,
        |(p, _)| std::fs::File::open(p),
        |(p, _)| p.to_str().unwrap_or(""),
        progress,
        |(p, v), outcome| {
            r.bytes += outcome.bytes;
            let shown = names::display(p.as_os_str().as_encoded_bytes(), false);
            match outcome.result {
                Err(e) if is_gone(&e) => r.add(
                    Problem::of(v, shown, Kind::Missing, "vanished while checking".into()),
                    on_problem,
                ),
                Err(e) => r.add(
                    Problem::of(v, shown, Kind::Unreadable, e.to_string()),
                    on_problem,
                ),
                // Changed while we read it: a change, not corruption.
                Ok(_) if outcome.bytes != v.size => r.changed += 1,
                Ok(md5) if md5 != v.md5 => r.add(
                    Problem::of(
                        v,
                        shown,
                        Kind::SilentCorruption,
                        format!(
                            "size and mtime as backed up, but MD5 {md5} instead of {}",
                            v.md5
                        ),
                    ),
                    on_problem,
                ),
                Ok(_) => r.ok += 1,
            }
        },
    );
    r.problems.sort_by(|a, b| a.path.cmp(&b.path));
    r.seconds = started.elapsed().as_secs_f64();
    r
}

fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_report_has_no_bad_files_and_a_sound_manifest() {
        let mut d = DiscReport {
            manifest_ok: true,
            unknown: 3,
            ..Default::default()
        };
        assert!(d.clean(), "unknown files are listed, not failures");
        d.manifest_ok = false;
        assert!(!d.clean());
        let mut report = VerifyReport {
            unusable: vec![],
            discs: vec![],
            origin: Some(OriginReport {
                manifest_ok: true,
                changed: 5,
                ..Default::default()
            }),
            not_begun: vec![],
        };
        assert!(report.clean(), "changes since the backup are not errors");
        report.unusable.push(UnusableDisc::default());
        assert!(!report.clean(), "a disc that cannot be opened is a finding");
    }
}
