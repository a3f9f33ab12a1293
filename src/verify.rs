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
mod report;
mod sectors;

pub use report::*;

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
}

/// What a caller decides once the discs given are open (see
/// [`verify_each`]): where to go on, and in what order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Files of a disc an earlier, time-limited run checked already, by
    /// disc (`3`, `parity-1-2`): this run goes on after them, in on-disc
    /// order.
    pub resume: HashMap<String, u64>,
    /// The order to check discs in, by disc: lowest first (the time of
    /// each disc's last check, so successive time-limited runs go round
    /// the set). Discs not in it come before any time, in disc order.
    pub order: Option<HashMap<String, f64>>,
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

/// Verifies every disc in `opts`, then the origin if one was given.
/// `on_problem` hears of each problem as it is found, with where it was
/// found (`disc 3 (/media/cdrom)`); the report holds them all.
pub fn verify(
    opts: &VerifyOptions,
    progress: &Progress,
    on_problem: &mut dyn FnMut(&str, &Problem),
) -> Result<VerifyReport> {
    verify_each(
        opts,
        progress,
        &mut |_| Ok(Plan::default()),
        on_problem,
        &mut |_| Ok(()),
    )
}

/// [`verify`], asking `plan` once every disc given is open (every copy
/// too, before anything is read: it may refuse them) where to go on and
/// in what order, and telling `on_disc` of each disc as soon as it is
/// checked (to record it before the next is begun); an error from either
/// stops the run.
pub fn verify_each(
    opts: &VerifyOptions,
    progress: &Progress,
    plan: &mut dyn FnMut(&[&Medium]) -> Result<Plan>,
    on_problem: &mut dyn FnMut(&str, &Problem),
    on_disc: &mut dyn FnMut(&DiscReport) -> Result<()>,
) -> Result<VerifyReport> {
    let (set, unusable) = DiscSet::open_lenient(&opts.discs)?;
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
    let plan = plan(&media)?;
    if let Some(order) = &plan.order {
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
            let skip = plan.resume.get(&medium_name(m)).copied().unwrap_or(0);
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
pub fn medium_name(m: &Medium) -> String {
    match m.parity {
        Some((g, j)) => format!("parity-{g}-{j}"),
        None => m.disc.to_string(),
    }
}

/// Files read in one go between looks at the clock, and their bytes.
const BATCH_FILES: usize = 256;
const BATCH_BYTES: u64 = 256 << 20;

/// Whether a test build says the time limit is up now (the fault point
/// `verify::time_up=K*off->return`: after K batches), so a test can stop
/// a run at any batch without a clock.
fn time_is_up() -> bool {
    fail::fail_point!("verify::time_up", |_| true);
    false
}

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
        if deadline.is_some_and(|d| Instant::now() >= d || time_is_up()) {
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
