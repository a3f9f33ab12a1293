//! Turning closed discs into verified images: build `isos/disc-N.iso` from
//! the disc's staging folder, read it back with our own reader and check
//! the catalogue and every file's MD5, and only then record the image as
//! verified and free the staged copies.
//!
//! Crash safety: the image is written as `disc-N.iso.partial`, fsynced and
//! renamed; it counts only once the `images` table says it was read back.
//! A crash at any point leaves either no verified image (the next run builds
//! it again from the staged copies, which are still there) or a verified one
//! (the next run finishes freeing the staged copies).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::catalog::DiscFile;
use crate::disc::{self, DiscInfo};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::iso::{self, Entry, IsoReader, Source, WriteOptions};
use crate::progress::Progress;
use crate::workdir::Workdir;

mod ecc;
pub mod parity;
mod repair;

pub use ecc::ecc_codec;
use ecc::{add_ecc, ecc_tool};
pub use parity::{build_parity, ParityPass, ParityReport};
use repair::repair_staged;
pub use repair::Repair;

/// Options of `mkiso`.
#[derive(Debug, Clone, Default)]
pub struct MkisoOptions {
    /// Only this disc (default: every closed disc without a verified image).
    pub disc: Option<i64>,
    /// Keep the staged copies after the image is verified.
    pub keep_staged: bool,
    /// Add dvdisaster error-correction data.
    pub ecc: bool,
    /// Say what would be built; build nothing.
    pub dry_run: bool,
}

/// One image built (or, in a dry run, to be built).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageReport {
    pub disc: i64,
    pub path: PathBuf,
    pub size: u64,
    pub files: u64,
    pub bytes: u64,
    pub verified: bool,
    pub ecc: Option<String>,
    pub staged_freed: bool,
    /// Staged copies found rotten and what became of them.
    pub repairs: Vec<Repair>,
}

/// Why a read-back failed: what, and which file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReadBackProblem {
    pub path: String,
    pub problem: String,
}

/// Closed discs that have no verified image yet and still have their
/// staged copies.
pub fn pending(wd: &Workdir) -> Result<Vec<i64>> {
    let verified: std::collections::HashSet<i64> =
        wd.catalog.images()?.iter().map(|i| i.disc).collect();
    Ok(wd
        .catalog
        .discs()?
        .into_iter()
        .filter(|d| d.completed.is_some() && !verified.contains(&d.id))
        .filter(|d| wd.layout.disc_manifest(d.id).is_file())
        .map(|d| d.id)
        .collect())
}

/// Builds and verifies the images of `opts.disc` or of every pending disc;
/// finishes freeing staged copies of discs verified before a crash.
pub fn mkiso(
    wd: &mut Workdir,
    opts: &MkisoOptions,
    progress: &Progress,
    on_image: &mut dyn FnMut(&ImageReport),
) -> Result<Vec<ImageReport>> {
    if !opts.dry_run {
        check_tools(opts)?;
    }
    if !opts.dry_run {
        // The disc asked for keeps its staged copies until its image is
        // built again from them (then they go, unless --keep-staged).
        free_verified(wd, !opts.keep_staged, opts.disc)?;
    }
    let discs = match opts.disc {
        Some(n) => {
            let d = wd
                .catalog
                .discs()?
                .into_iter()
                .find(|d| d.id == n)
                .ok_or_else(|| Error::Invalid(format!("there is no disc {n}")))?;
            if d.completed.is_none() {
                return Err(Error::Invalid(format!(
                    "disc {n} is still open; close it first (dbackup-stage close)"
                )));
            }
            if !wd.layout.disc_manifest(n).is_file() {
                return Err(Error::Invalid(format!(
                    "disc {n} has no staged copy left in {} (its image was verified and the copies freed)",
                    wd.layout.disc_dir(n).display()
                )));
            }
            vec![n]
        }
        None => pending(wd)?,
    };
    let mut reports = Vec::new();
    for n in discs {
        let report = build_one(wd, n, opts, progress)?;
        on_image(&report);
        reports.push(report);
    }
    Ok(reports)
}

/// Fails early, with the tool named, when the images need one that is
/// missing.
pub(crate) fn check_tools(opts: &MkisoOptions) -> Result<()> {
    if opts.ecc {
        ecc_tool()?;
    }
    Ok(())
}

/// Removes the staged copies of discs whose image is verified, when `free`
/// (a crash may have interrupted the removal), but those of `spare`, the
/// disc about to be built again from them; and sets aside an image that
/// was named final but never recorded.
fn free_verified(wd: &Workdir, free: bool, spare: Option<i64>) -> Result<()> {
    for img in wd.catalog.images()?.into_iter().filter(|_| free) {
        // A half-removed folder (renamed to its freeing name) is always
        // finished; a whole one of the disc to rebuild is kept.
        if spare == Some(img.disc) && wd.layout.disc_dir(img.disc).exists() {
            continue;
        }
        let staged = wd.layout.disc_dir(img.disc).exists() || wd.layout.freeing(img.disc).exists();
        if staged && wd.layout.iso(img.disc).is_file() {
            remove_staged(wd, img.disc)?;
        }
    }
    // An image under its final name with no record: a first build was
    // killed between naming it and recording it. Unrecorded bytes are not
    // verified ones: set aside, and built again from the staged copies.
    let recorded: std::collections::HashSet<i64> =
        wd.catalog.images()?.iter().map(|i| i.disc).collect();
    for d in wd.catalog.discs()? {
        let iso = wd.layout.iso(d.id);
        if !recorded.contains(&d.id) && wd.layout.disc_manifest(d.id).is_file() && iso.is_file() {
            let failed = failed_path(&iso);
            std::fs::rename(&iso, &failed).map_err(|e| Error::io(&failed, e))?;
            fsutil::sync_dir(&wd.layout.isos())?;
        }
    }
    // Scratch copies of catalogues read back by a run that was killed.
    if let Ok(rd) = std::fs::read_dir(&wd.layout.root) {
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".readback-") && name.ends_with(".db") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

fn remove_staged(wd: &Workdir, disc: i64) -> Result<()> {
    let dir = wd.layout.disc_dir(disc);
    // Rename first, so a half-removed folder is never taken for a disc.
    let doomed = wd.layout.freeing(disc);
    if dir.exists() {
        std::fs::rename(&dir, &doomed).map_err(|e| Error::io(&dir, e))?;
        fsutil::sync_dir(&wd.layout.staging())?;
    }
    if let Some(e) = crate::fault::injected("mkiso::free") {
        return Err(Error::io(&doomed, e));
    }
    if doomed.exists() {
        std::fs::remove_dir_all(&doomed).map_err(|e| Error::io(&doomed, e))?;
    }
    Ok(())
}

fn build_one(
    wd: &mut Workdir,
    n: i64,
    opts: &MkisoOptions,
    progress: &Progress,
) -> Result<ImageReport> {
    finish_build(wd, n, opts, progress, None)
}

/// Builds disc `n`'s image, or takes `first`, a build of it already
/// written and read back (on another thread, by [`write_and_check`]), and
/// installs it when its read-back found nothing; otherwise repairs the
/// staged copies and builds once more.
pub(crate) fn finish_build(
    wd: &mut Workdir,
    n: i64,
    opts: &MkisoOptions,
    progress: &Progress,
    mut first: Option<Built>,
) -> Result<ImageReport> {
    let path = wd.layout.iso(n);
    let mut repairs = Vec::new();
    // Bounded: one repair of rotten staged copies, then one build more;
    // what the second build still finds is an error.
    for attempt in 0..2 {
        let built = match first.take() {
            Some(b) => b,
            None => write_and_check(wd, n, opts, progress)?,
        };
        let (mut report, partial, problems) = match built {
            Built::DryRun(r) => return Ok(r),
            Built::Image(r, partial, problems) => (r, partial, problems),
        };
        if problems.is_empty() {
            install(wd, n, &partial, &report)?;
            report.verified = true;
            report.repairs = repairs;
            if !opts.keep_staged {
                remove_staged(wd, n)?;
                report.staged_freed = true;
            }
            return Ok(report);
        }
        if attempt == 0 {
            let found = repair_staged(wd, n, &problems, progress)?;
            if !found.is_empty() {
                let _ = std::fs::remove_file(&partial);
                repairs = found;
                continue;
            }
        }
        // Never under the final name, where it would be burned: kept
        // beside it for a look, replaced by the next failure.
        let failed = failed_path(&path);
        if partial.exists() {
            std::fs::rename(&partial, &failed).map_err(|e| Error::io(&failed, e))?;
            fsutil::sync_dir(&wd.layout.isos())?;
        }
        let list = problems
            .iter()
            .take(10)
            .map(|p| format!("{}: {}", p.path, p.problem))
            .collect::<Vec<_>>()
            .join("; ");
        let kept_as = if failed.exists() {
            format!("it was kept as {}", failed.display())
        } else {
            "no image was written".into()
        };
        let kept = if wd.catalog.images()?.iter().any(|i| i.disc == n) {
            format!("; the verified image {} is kept", path.display())
        } else {
            String::new()
        };
        return Err(Error::Invalid(format!(
            "the image of disc {n} failed its read-back check ({} problems: {list}); {kept_as}, the staged copies are kept in {}{kept}",
            problems.len(),
            wd.layout.disc_dir(n).display()
        )));
    }
    unreachable!("the loop above returns on its second pass")
}

/// Where a failed image of `path` is kept: a name no image takes.
pub fn failed_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".failed");
    name.into()
}

pub(crate) enum Built {
    DryRun(ImageReport),
    /// The report, the `.partial` image and what its read-back found.
    Image(ImageReport, PathBuf, Vec<ReadBackProblem>),
}

/// Gives the checked `.partial` image its final name (one atomic rename,
/// over a verified image when rebuilding) and records it. The record of a
/// verified image stays until the new one replaces it: only checked bytes
/// ever take the final name, so a crash between rename and record leaves
/// verified bytes under a record of verified bytes (its size and time
/// those of the image replaced, until the next rebuild). Dropping the
/// record first would let a crash there make the next run set the good
/// image aside as unrecorded.
fn install(wd: &Workdir, n: i64, partial: &Path, report: &ImageReport) -> Result<()> {
    let path = wd.layout.iso(n);
    if let Some(e) = crate::fault::injected("mkiso::rename") {
        let _ = std::fs::remove_file(partial);
        return Err(Error::io(&path, e));
    }
    std::fs::rename(partial, &path).map_err(|e| Error::io(&path, e))?;
    let _ = std::fs::remove_file(failed_path(&path));
    fsutil::sync_dir(&wd.layout.isos())?;
    if let Some(e) = crate::fault::injected("mkiso::record") {
        return Err(Error::io(wd.catalog.path(), e));
    }
    wd.catalog
        .mark_image_verified(n, report.size, report.ecc.as_deref())
}

/// Writes disc `n`'s image as `.partial` (with its error-correction data),
/// makes it durable and reads it back.
pub(crate) fn write_and_check(
    wd: &Workdir,
    n: i64,
    opts: &MkisoOptions,
    progress: &Progress,
) -> Result<Built> {
    let records = wd.catalog.damaged()?;
    // The disc's frozen catalogue must carry every damaged record of its
    // disc before an image is made of it, or the image would list a file it
    // does not hold. A run killed between the two writes of a record (the
    // workdir's catalogue first) left one out: add it now.
    let frozen = wd.layout.disc_manifest(n);
    if frozen.is_file() {
        let on_disc = rusqlite::Connection::open_with_flags(
            &frozen,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .and_then(|c| crate::catalog::damaged_ids(&c))
        .map_err(|source| Error::Sqlite {
            path: frozen.clone(),
            source,
        })?;
        let missing: Vec<(i64, i64, String)> = records
            .iter()
            .filter(|d| d.disc == n && !on_disc.contains(&d.file_id))
            .map(|d| (d.file_id, d.disc, d.reason.clone()))
            .collect();
        if !missing.is_empty() {
            crate::catalog::record_damaged_in_frozen(&frozen, &missing)?;
        }
    }
    let damaged: std::collections::HashSet<i64> = records.iter().map(|d| d.file_id).collect();
    let files: Vec<DiscFile> = wd
        .catalog
        .disc_files(n)?
        .into_iter()
        .filter(|f| !damaged.contains(&f.id))
        .collect();
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    let path = wd.layout.iso(n);
    let closed = wd
        .catalog
        .discs()?
        .into_iter()
        .find(|d| d.id == n)
        .and_then(|d| d.completed)
        .unwrap_or(0.0);
    let mut report = ImageReport {
        disc: n,
        path: path.clone(),
        size: 0,
        files: files.len() as u64,
        bytes,
        verified: false,
        ecc: None,
        staged_freed: false,
        repairs: Vec::new(),
    };
    if opts.dry_run {
        return Ok(Built::DryRun(report));
    }
    let partial = fsutil::partial_path(&path);
    // A staged copy that is gone is a problem of the copy, not the image.
    let missing: Vec<ReadBackProblem> = files
        .iter()
        .filter(|f| !wd.layout.disc_dir(n).join(f.rel_path()).is_file())
        .map(|f| ReadBackProblem {
            path: f.rel_path().to_string_lossy().into_owned(),
            problem: "its staged copy is missing".into(),
        })
        .collect();
    if !missing.is_empty() {
        return Ok(Built::Image(report, partial, missing));
    }
    let disc_dir = wd.layout.disc_dir(n);
    let info = DiscInfo {
        set_name: &wd.settings.name,
        set_uuid: &wd.settings.uuid,
        disc: n,
        closed,
        files: files.iter().filter(|f| f.part.is_none()).count() as u64,
        parts: files.iter().filter(|f| f.part.is_some()).count() as u64,
        bytes,
    };
    let texts = disc::texts(&info);
    let md5sums = disc::md5sums(
        &md5_of(&wd.layout.disc_manifest(n))?,
        &texts,
        files.iter().map(|f| (f.rel_path(), f.md5.as_str())),
    );
    let mut entries = vec![Entry {
        path: disc::MANIFEST.into(),
        source: Source::File(wd.layout.disc_manifest(n)),
    }];
    for (name, data) in texts {
        entries.push(Entry {
            path: name.into(),
            source: Source::Bytes(data),
        });
    }
    entries.push(Entry {
        path: disc::MD5SUMS.into(),
        source: Source::Bytes(md5sums.clone().into_bytes()),
    });
    for f in &files {
        let rel = f.rel_path();
        entries.push(Entry {
            path: rel.to_string_lossy().into_owned(),
            source: Source::File(disc_dir.join(&rel)),
        });
    }
    // Room for the image (files, catalogue, directory records), checked
    // before writing a byte.
    ensure_room(wd, image_room(bytes, files.len() as u64))?;
    std::fs::create_dir_all(wd.layout.isos()).map_err(|e| Error::io(wd.layout.isos(), e))?;
    let opts_iso = WriteOptions {
        volume_id: disc::volume_id(n),
        volume_set_id: wd.settings.uuid.clone(),
        application_id: format!("DBACKUP {}", env!("CARGO_PKG_VERSION")),
        timestamp: closed.floor() as i64,
    };
    progress.message(format!("disc {n}: writing image"));
    let size = write_partial(
        &partial,
        &entries,
        &opts_iso,
        &|f| crate::fault::Writer::new(f, "mkiso::write"),
        &|| crate::fault::injected("mkiso::sync"),
        progress,
    )?;
    report.size = size;

    if opts.ecc {
        progress.message(format!("disc {n}: adding error-correction data"));
        let ecc = add_ecc(&partial, wd.settings.disc_size);
        // Durable with its error-correction data before anything counts on it.
        let synced = ecc.and_then(|codec| {
            File::open(&partial)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&partial, e))?;
            Ok(codec)
        });
        match synced {
            Ok(codec) => report.ecc = Some(codec),
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        }
        report.size = std::fs::metadata(&partial)
            .map_err(|e| Error::io(&partial, e))?
            .len();
    }

    progress.message(format!("disc {n}: reading back"));
    let problems = read_back(
        &partial,
        &files,
        &wd.layout.disc_manifest(n),
        md5sums.as_bytes(),
        &wd.layout.root,
        progress,
    );
    match problems {
        Ok(p) => Ok(Built::Image(report, partial, p)),
        Err(e) => Ok(Built::Image(
            report,
            partial,
            vec![ReadBackProblem {
                path: String::new(),
                problem: e.to_string(),
            }],
        )),
    }
}

/// Reads the image back with our own reader: the catalogue passes SQLite's
/// integrity check and matches the staged one, MD5SUMS is the one written,
/// and every file is there with its size and MD5.
pub fn read_back(
    image: &Path,
    files: &[DiscFile],
    staged_manifest: &Path,
    md5sums: &[u8],
    scratch: &Path,
    progress: &Progress,
) -> Result<Vec<ReadBackProblem>> {
    let reader = IsoReader::open(image)
        .map_err(|e| Error::Invalid(format!("cannot read back {}: {e}", image.display())))?;
    let mut problems = Vec::new();
    let problem = |path: &str, what: String| ReadBackProblem {
        path: path.into(),
        problem: what,
    };
    // The reader opens a short image (to salvage a disc); an image to burn
    // must be whole.
    if let Some((len, volume)) = reader.cut_short() {
        return Err(Error::Invalid(format!(
            "cannot read back {}: the image is {len} bytes, its volume space {volume}",
            image.display()
        )));
    }

    // The catalogue.
    match reader.find(disc::MANIFEST) {
        None => problems.push(problem(disc::MANIFEST, "missing".into())),
        Some(f) => {
            // One name per read-back: two may run at once in a process.
            static SCRATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let k = SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = scratch.join(format!(".readback-{}-{k}.db", std::process::id()));
            let copied = (|| -> std::io::Result<String> {
                let mut out = File::create(&tmp)?;
                let mut h = Md5::new();
                let mut r = reader.reader(f);
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let k = r.read(&mut buf)?;
                    if k == 0 {
                        break;
                    }
                    h.update(&buf[..k]);
                    out.write_all(&buf[..k])?;
                }
                Ok(hex(&h.finalize()))
            })();
            match copied {
                Err(e) => problems.push(problem(disc::MANIFEST, format!("unreadable: {e}"))),
                Ok(md5) => {
                    if md5 != md5_of(staged_manifest)? {
                        problems.push(problem(
                            disc::MANIFEST,
                            "differs from the staged catalogue".into(),
                        ));
                    }
                    if let Err(why) = integrity_check(&tmp) {
                        problems.push(problem(disc::MANIFEST, why));
                    }
                }
            }
            let _ = std::fs::remove_file(&tmp);
        }
    }
    match reader.find(disc::MD5SUMS) {
        None => problems.push(problem(disc::MD5SUMS, "missing".into())),
        Some(f) => {
            let mut data = Vec::new();
            match reader.reader(f).read_to_end(&mut data) {
                Ok(_) if data == md5sums => {}
                Ok(_) => problems.push(problem(disc::MD5SUMS, "differs".into())),
                Err(e) => problems.push(problem(disc::MD5SUMS, format!("unreadable: {e}"))),
            }
        }
    }
    for name in disc::FIXED_FILES {
        if reader.find(name).is_none() {
            problems.push(problem(name, "missing".into()));
        }
    }

    // Every file, in on-image order, hashed by two workers.
    let mut wanted: Vec<(&DiscFile, &iso::IsoFile)> = Vec::with_capacity(files.len());
    for f in files {
        let rel = f.rel_path().to_string_lossy().into_owned();
        match reader.find(&rel) {
            Some(entry) => wanted.push((f, entry)),
            None => problems.push(problem(&rel, "missing from the image".into())),
        }
    }
    wanted.sort_by_key(|(_, e)| e.extents.first().map(|x| x.0).unwrap_or(0));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let found: Vec<ReadBackProblem> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((f, entry)) = wanted.get(i) else {
                            break;
                        };
                        let rel = f.rel_path().to_string_lossy().into_owned();
                        if entry.size != f.size {
                            out.push(ReadBackProblem {
                                path: rel,
                                problem: format!("size {} instead of {}", entry.size, f.size),
                            });
                            continue;
                        }
                        let mut h = Md5::new();
                        let mut r = reader.reader(entry);
                        let res = loop {
                            let read = match crate::fault::injected_for("mkiso::read_back", &rel) {
                                Some(e) => Err(e),
                                None => r.read(&mut buf),
                            };
                            match read {
                                Ok(0) => break Ok(()),
                                Ok(k) => {
                                    h.update(&buf[..k]);
                                    progress.add_bytes(k as u64);
                                }
                                Err(e) => break Err(e),
                            }
                        };
                        match res {
                            Err(e) => out.push(ReadBackProblem {
                                path: rel,
                                problem: format!("unreadable: {e}"),
                            }),
                            Ok(()) => {
                                let got = hex(&h.finalize());
                                if got != f.md5 {
                                    out.push(ReadBackProblem {
                                        path: rel,
                                        problem: format!("MD5 {got} instead of {}", f.md5),
                                    });
                                }
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join().unwrap_or_else(|_| {
                    vec![ReadBackProblem {
                        path: String::new(),
                        problem: "read-back worker failed".into(),
                    }]
                })
            })
            .collect()
    });
    problems.extend(found);
    // Nothing on the image that the catalogue does not know.
    let known: HashMap<String, ()> = files
        .iter()
        .map(|f| (f.rel_path().to_string_lossy().into_owned(), ()))
        .collect();
    for f in reader.files() {
        if f.path.starts_with("files/") && !known.contains_key(&f.path) {
            problems.push(problem(
                &f.path,
                "on the image but not in the catalogue".into(),
            ));
        }
    }
    Ok(problems)
}

fn integrity_check(db: &Path) -> std::result::Result<(), String> {
    crate::catalog::manifest::Manifest::open(db)
        .map_err(|e| e.to_string())?
        .integrity_check()
}

fn md5_of(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
    }
    Ok(hex(&h.finalize()))
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// One line per rotten staged copy found while building `r` (for stderr),
/// and whether any was recorded as damaged (the run's exit code is then 1:
/// that version is no backup). Said once: the next runs find it recorded.
pub fn repair_lines(r: &ImageReport) -> (Vec<String>, bool) {
    let lines = r
        .repairs
        .iter()
        .map(|x| match x.action.as_str() {
            "damaged" => format!(
                "disc {}: {} (file {}) is DAMAGED and no backup: {}; the image holds the disc's other files",
                r.disc, x.filename, x.id, x.detail
            ),
            _ => format!(
                "disc {}: the staged copy of {} (file {}) had rotted; {}",
                r.disc, x.filename, x.id, x.detail
            ),
        })
        .collect();
    (lines, r.repairs.iter().any(|x| x.action == "damaged"))
}

/// Whether the set asks for labels with every image (`config labels on`).
pub fn labels_on(wd: &Workdir) -> Result<bool> {
    Ok(wd.catalog.setting_text("labels")?.as_deref() == Some("on"))
}

/// Writes the printable labels of a disc whose image was just verified
/// (`--label`): the line that names them, or, when they could not be
/// written, the message that says so. A label never fails the image: the
/// caller reports the message and keeps the run's exit code.
pub fn write_label(
    wd: &Workdir,
    disc: &crate::copies::DiscName,
) -> std::result::Result<String, String> {
    match crate::label::write_labels(wd, disc, None) {
        Ok(l) => Ok(format!(
            "Labels of {}: {} {}",
            disc.label(),
            l.svg.display(),
            l.pdf.display()
        )),
        Err(e) => Err(format!(
            "{}: the image is verified, but its label was not written: {e}; write it later with `dbackup-stage label {}`",
            disc.label(),
            disc.key()
        )),
    }
}

/// The line that tells the user a disc is ready to burn (cron mails it).
pub fn ready_line(r: &ImageReport) -> String {
    format!(
        "Disc {} ready: {} ({}, {}, read back and verified{}). Burn it with: xorriso -as cdrecord -v dev=/dev/sr0 -dao {}  (or: growisofs -dvd-compat -Z /dev/sr0={})",
        r.disc,
        r.path.display(),
        crate::output::bytes(r.size),
        crate::output::count(r.files, "file", "files"),
        r.ecc
            .as_deref()
            .map(|c| format!(", with dvdisaster {c} error correction"))
            .unwrap_or_default(),
        shell_quoted(&r.path),
        shell_quoted(&r.path),
    )
}

/// The room an image of `files` files of `bytes` bytes in all needs:
/// files, catalogue, directory records, padding.
pub(crate) fn image_room(bytes: u64, files: u64) -> u64 {
    bytes + files * 4096 + iso::PADDING_BLOCKS * iso::BLOCK + (16 << 20)
}

/// The size of an image on a disc of `disc_size` once its error-correction
/// data is added (the medium's whole size).
pub(crate) fn ecc_medium(disc_size: u64) -> u64 {
    ecc::medium_of(disc_size)
}

/// Fails with [`Error::NoSpace`] unless the workdir's filesystem has
/// `needed` bytes free for an image in `isos/`.
pub(crate) fn ensure_room(wd: &Workdir, needed: u64) -> Result<()> {
    let available = fsutil::available_space(&wd.layout.root)?;
    if available < needed {
        return Err(Error::NoSpace {
            path: wd.layout.isos(),
            needed,
            available,
        });
    }
    Ok(())
}

/// Writes an image of `entries` to `partial` (through `open`, which makes
/// the file's writer with its fault point) and makes it durable; on any
/// failure the partial file is removed. `before_sync` is the fault point of
/// the flush, if any.
pub(crate) fn write_partial(
    partial: &Path,
    entries: &[Entry],
    opts: &WriteOptions,
    open: &dyn Fn(File) -> crate::fault::Writer<File>,
    before_sync: &dyn Fn() -> Option<std::io::Error>,
    progress: &Progress,
) -> Result<u64> {
    let written = (|| -> Result<u64> {
        let file = File::create(partial).map_err(|e| Error::io(partial, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, open(file));
        let size = iso::write_image(&mut out, entries, opts, &mut |b| progress.add_bytes(b))
            .map_err(|e| match e {
                // A full or failing disk keeps its errno (and exit code).
                iso::IsoError::Output(e) => Error::io(partial, e),
                iso::IsoError::SourceIo { path, source } => Error::io(path, source),
                e => Error::Invalid(format!("writing {}: {e}", partial.display())),
            })?;
        let file = out
            .into_inner()
            .map_err(|e| Error::io(partial, e.into_error()))?
            .into_inner();
        if let Some(e) = before_sync() {
            return Err(Error::io(partial, e));
        }
        file.sync_all().map_err(|e| Error::io(partial, e))?;
        Ok(size)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(partial);
    }
    written
}

/// A path as one word for `sh`, so the burn command can be pasted as it is
/// whatever the workdir's name (a `'` in it included).
pub fn shell_quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// Tells the user of the parity images a pass built (their ready lines on
/// `out` unless `brief`; the on_disc_ready command for each) and of groups
/// that cannot be built, on stderr as `tool: ...`. Returns whether anything
/// calls for the user (exit code 1).
pub fn announce_parity(
    wd: &Workdir,
    pass: &ParityPass,
    brief: bool,
    tool: &str,
    out: &mut dyn std::io::Write,
) -> Result<bool> {
    let mut finding = false;
    for r in &pass.built {
        if !brief {
            writeln!(out, "{}", parity_ready_line(r))
                .map_err(|e| Error::io(Path::new("stdout"), e))?;
        }
        if let Some(failure) = run_parity_hook(wd, r)? {
            crate::say!("{tool}: {failure}");
            finding = true;
        }
    }
    for w in &pass.waiting {
        crate::say!(
            "{tool}: warning: parity group {} cannot be protected yet: {}",
            w.group,
            w.why
        );
        finding = true;
    }
    Ok(finding)
}

/// Whether a parity group waits for its parity discs.
pub fn parity_due(wd: &Workdir) -> Result<bool> {
    Ok(wd
        .catalog
        .parity_groups()?
        .iter()
        .any(|g| g.state == crate::catalog::parity::GroupState::Full))
}

/// The line that tells the user a parity disc is ready to burn.
pub fn parity_ready_line(r: &ParityReport) -> String {
    let discs = match (r.discs.first(), r.discs.last()) {
        (Some(a), Some(b)) if a != b => format!("discs {a}-{b}"),
        (Some(a), _) => format!("disc {a}"),
        _ => "no disc".into(),
    };
    format!(
        "Parity disc {}-{} ready: {} ({}, protects {discs}, read back and verified{}). Burn it with: xorriso -as cdrecord -v dev=/dev/sr0 -dao {}",
        r.group,
        r.j,
        r.path.display(),
        crate::output::bytes(r.size),
        r.ecc
            .as_deref()
            .map(|c| format!(", with dvdisaster {c} error correction"))
            .unwrap_or_default(),
        shell_quoted(&r.path),
    )
}

/// Runs the `on_disc_ready` command for a parity image: `DBACKUP_DISC` is
/// `parity-G-J`, and `DBACKUP_PARITY` is `G-J`.
pub fn run_parity_hook(wd: &Workdir, r: &ParityReport) -> Result<Option<String>> {
    let g = format!("{}-{}", r.group, r.j);
    hook(wd, &format!("parity-{g}"), &r.path, Some(&g))
}

/// Runs the set's `on_disc_ready` command, if any, with the disc number and
/// image path in its environment (`DBACKUP_DISC`, `DBACKUP_ISO`,
/// `DBACKUP_SET`, `DBACKUP_UUID`). Its output goes to our stderr. Returns
/// an error message when it failed.
pub fn run_hook(wd: &Workdir, r: &ImageReport) -> Result<Option<String>> {
    hook(wd, &r.disc.to_string(), &r.path, None)
}

fn hook(wd: &Workdir, disc: &str, path: &Path, parity: Option<&str>) -> Result<Option<String>> {
    let Some(cmd) = wd.catalog.setting_text("on_disc_ready")? else {
        return Ok(None);
    };
    if cmd.trim().is_empty() {
        return Ok(None);
    }
    // The command's stdout and stderr are one pipe that we pass on to our
    // stderr sink (stdout carries our results only). So a closed stderr
    // (a mailer that died) does not kill the command with SIGPIPE or make
    // it fail: what it prints is dropped, what it does is done.
    let (mut reader, writer) = std::io::pipe().map_err(|e| Error::io("/bin/sh", e))?;
    let writer2 = writer.try_clone().map_err(|e| Error::io("/bin/sh", e))?;
    let mut command = std::process::Command::new("/bin/sh");
    if let Some(p) = parity {
        command.env("DBACKUP_PARITY", p);
    }
    let mut child = command
        .arg("-c")
        .arg(&cmd)
        .env("DBACKUP_DISC", disc)
        .env("DBACKUP_ISO", path)
        .env("DBACKUP_SET", &wd.settings.name)
        .env("DBACKUP_UUID", &wd.settings.uuid)
        .env("DBACKUP_WORKDIR", &wd.layout.root)
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .spawn()
        .map_err(|e| Error::io("/bin/sh", e))?;
    // Our copies of the write end went with the Command: the pipe ends
    // when the command closes it. Something it left running in the
    // background may keep it open for long, so once the command has
    // exited we wait at most a second for the rest of its output, then go
    // on (the thread goes on passing output on while we run).
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut reader, &mut crate::output::stderr());
        let _ = done.send(());
    });
    let out = child.wait().map_err(|e| Error::io("/bin/sh", e))?;
    let _ = finished.recv_timeout(std::time::Duration::from_secs(1));
    Ok((!out.success()).then(|| format!("on_disc_ready command `{cmd}` failed ({out})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burn_command_quotes_any_path_as_one_word() {
        for name in [
            "plain",
            "with space",
            "it's",
            "a'b'c",
            "'",
            "$(x) `y` \\ \"z\"",
        ] {
            let path = Path::new("/tmp/dbackup").join(name).join("disc-1.iso");
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quoted(&path)))
                .output()
                .unwrap();
            assert_eq!(out.stdout, path.as_os_str().as_encoded_bytes(), "{name}");
        }
    }
}
