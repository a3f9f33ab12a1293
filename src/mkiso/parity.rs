//! Building parity discs in the workdir: once every data disc of a full
//! parity group has a verified image in `isos/`, PAR2 recovery data is made
//! for the group's images with the stock `par2` tool, and each of the M
//! parity images `isos/parity-G-J.iso` is written, read back and recorded
//! (see `docs/parity.md`).
//!
//! Crash safety: the work happens in `isos/.parity-G.work/` and in
//! `isos/parity-G-J.iso.partial`, names no data disc's image takes; an
//! image takes its final name only once read back, and counts only once
//! recorded in `parity_discs`. Every run begins by removing what a killed
//! run left; a group stays `full` until all its parity discs are recorded,
//! so the next run builds what is missing.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use super::{ecc, hex, md5_of};
use crate::catalog::parity::{Group, GroupState};
use crate::disc;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::iso::{self, Entry, IsoReader, Source, WriteOptions};
use crate::parity::{self, par2, Member};
use crate::progress::Progress;
use crate::workdir::Workdir;

/// A parity image built, read back and recorded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ParityReport {
    pub group: i64,
    pub j: i64,
    pub path: PathBuf,
    pub size: u64,
    /// The data discs it protects.
    pub discs: Vec<i64>,
    pub ecc: Option<String>,
}

/// A full group whose parity cannot be built because a member's verified
/// image is gone from `isos/`, and what to do.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Waiting {
    pub group: i64,
    pub why: String,
}

/// What a parity pass did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ParityPass {
    pub built: Vec<ParityReport>,
    pub waiting: Vec<Waiting>,
}

/// The work folder of group `g`.
fn work_dir(wd: &Workdir, g: i64) -> PathBuf {
    wd.layout.isos().join(format!(".parity-{g}.work"))
}

/// Removes what a killed parity build left in `isos/`: work folders and
/// `.partial` parity images (never a final name).
pub fn clean_leftovers(wd: &Workdir) -> Result<()> {
    let isos = wd.layout.isos();
    let Ok(rd) = std::fs::read_dir(&isos) else {
        return Ok(());
    };
    let mut removed = false;
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let path = e.path();
        if name.starts_with(".parity-") && name.ends_with(".work") {
            std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
            removed = true;
        } else if name.starts_with("parity-") && name.ends_with(".iso.partial") {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            removed = true;
        }
    }
    if removed {
        fsutil::sync_dir(&isos)?;
    }
    Ok(())
}

/// Builds the parity images of every full group whose members all have a
/// verified image in `isos/`. Without `par2` installed, fails before making
/// anything when there is something to build.
pub fn build_parity(wd: &mut Workdir, progress: &Progress) -> Result<ParityPass> {
    let mut pass = ParityPass::default();
    let groups = wd.catalog.parity_groups()?;
    if groups.is_empty() {
        return Ok(pass);
    }
    clean_leftovers(wd)?;
    let verified: std::collections::HashSet<i64> =
        wd.catalog.images()?.iter().map(|i| i.disc).collect();
    // Bounded by the set's groups.
    for g in groups.into_iter().filter(|g| g.state == GroupState::Full) {
        let waiting_on: Vec<String> = g
            .discs
            .iter()
            .filter_map(|&d| {
                if !wd.layout.iso(d).is_file() && verified.contains(&d) {
                    Some(format!(
                        "the image of disc {d} is gone from {} (put it back, e.g. read the disc: dd if=/dev/sr0 of={} bs=2048)",
                        wd.layout.isos().display(),
                        wd.layout.iso(d).display()
                    ))
                } else {
                    None
                }
            })
            .collect();
        if g.discs.iter().any(|d| !verified.contains(d)) {
            // Not ready yet: a member's image is still to be built.
            continue;
        }
        if !waiting_on.is_empty() {
            pass.waiting.push(Waiting {
                group: g.id,
                why: waiting_on.join("; "),
            });
            continue;
        }
        par2::tool().map_err(|e| Error::Invalid(format!("{e}; no parity image was built")))?;
        let built = build_group(wd, &g, progress);
        let _ = std::fs::remove_dir_all(work_dir(wd, g.id));
        pass.built.extend(built?);
    }
    Ok(pass)
}

fn build_group(wd: &mut Workdir, g: &Group, progress: &Progress) -> Result<Vec<ParityReport>> {
    let work = work_dir(wd, g.id);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    progress.message(format!(
        "parity group {}: linking {} images",
        g.id,
        g.discs.len()
    ));
    // The members as PAR2 will know them, over their ISO size.
    let mut sizes = Vec::with_capacity(g.discs.len());
    let mut names = Vec::with_capacity(g.discs.len());
    for &d in &g.discs {
        let image = wd.layout.iso(d);
        let size = parity::iso_size(&image).map_err(|e| Error::io(&image, e))?;
        let len = std::fs::metadata(&image)
            .map_err(|e| Error::io(&image, e))?
            .len();
        let name = parity::member_name(d);
        let link = work.join(&name);
        if size == len {
            if std::fs::hard_link(&image, &link).is_err() {
                std::os::unix::fs::symlink(&image, &link).map_err(|e| Error::io(&link, e))?;
            }
        } else {
            // dvdisaster data follows the ISO: protect the ISO part only.
            let mut from = File::open(&image).map_err(|e| Error::io(&image, e))?;
            let mut to = File::create(&link).map_err(|e| Error::io(&link, e))?;
            std::io::copy(&mut (&mut from).take(size), &mut to).map_err(|e| Error::io(&link, e))?;
        }
        sizes.push(size);
        names.push(name);
    }
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let block_size = g.block_size.unwrap_or_else(|| parity::block_size(largest));
    if largest.div_ceil(block_size) > parity::BLOCKS_PER_MEMBER {
        return Err(Error::Invalid(format!(
            "parity group {}: its recorded block size {block_size} no longer covers its images",
            g.id
        )));
    }
    let index = parity::par2_index(g.id);
    progress.message(format!("parity group {}: computing recovery data", g.id));
    if let Some(e) = crate::fault::injected("parity::par2") {
        return Err(Error::io(&work, e));
    }
    par2::create(
        &work,
        &index,
        &names,
        block_size,
        parity::recovery_blocks(g.scheme.m),
        g.scheme.m,
    )
    .map_err(|e| {
        Error::Invalid(format!(
            "parity group {}: {e}; no parity image was built",
            g.id
        ))
    })?;

    // Each member's size and MD5 as PAR2 hashed it.
    let descs = par2::read_file_descs(&work.join(&index)).map_err(|e| Error::io(&work, e))?;
    let mut members = Vec::with_capacity(g.discs.len());
    for ((&d, name), &size) in g.discs.iter().zip(&names).zip(&sizes) {
        let desc = descs
            .iter()
            .find(|f| &f.name == name && f.size == size)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "parity group {}: par2's index does not describe {name} ({size} bytes)",
                    g.id
                ))
            })?;
        members.push(Member {
            disc: d,
            size,
            md5: desc.md5.clone(),
        });
    }
    let vols = recovery_files(&work, g.id, g.scheme.m)?;
    wd.catalog
        .record_parity_layout(g.id, block_size, &members)?;

    // One snapshot of the catalogue, with its layout, for every parity disc.
    let snapshot = work.join("catalogue.db");
    wd.catalog.snapshot_to(&snapshot)?;
    let index_md5 = md5_of(&work.join(&index))?;
    let mut reports = Vec::new();
    for j in 1..=i64::from(g.scheme.m) {
        if g.built.contains(&j) && wd.layout.isos().join(parity::image_name(g.id, j)).is_file() {
            continue;
        }
        let vol = &vols[(j - 1) as usize];
        reports.push(build_disc(
            wd,
            g,
            j,
            &members,
            block_size,
            &work,
            &snapshot,
            (&index, &index_md5),
            vol,
            progress,
        )?);
    }
    Ok(reports)
}

/// The M recovery files par2 wrote, in block order (`parity-G.vol0+8.par2`,
/// `parity-G.vol8+8.par2`, ...).
fn recovery_files(work: &Path, g: i64, m: u32) -> Result<Vec<String>> {
    let prefix = format!("parity-{g}.vol");
    let mut vols: Vec<(u64, String)> = std::fs::read_dir(work)
        .map_err(|e| Error::io(work, e))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let rest = name.strip_prefix(&prefix)?.strip_suffix(".par2")?;
            let (start, _) = rest.split_once('+')?;
            Some((start.parse().ok()?, name))
        })
        .collect();
    vols.sort();
    if vols.len() != m as usize {
        return Err(Error::Invalid(format!(
            "parity group {g}: par2 wrote {} recovery files, not {m}",
            vols.len()
        )));
    }
    Ok(vols.into_iter().map(|(_, n)| n).collect())
}

#[allow(clippy::too_many_arguments)]
fn build_disc(
    wd: &mut Workdir,
    g: &Group,
    j: i64,
    members: &[Member],
    block_size: u64,
    work: &Path,
    snapshot: &Path,
    (index, index_md5): (&str, &str),
    vol: &str,
    progress: &Progress,
) -> Result<ParityReport> {
    let path = wd.layout.isos().join(parity::image_name(g.id, j));
    let partial = fsutil::partial_path(&path);
    // This disc's catalogue: the snapshot, saying which parity disc it is.
    let manifest = work.join(format!("manifest-{j}.db"));
    std::fs::copy(snapshot, &manifest).map_err(|e| Error::io(&manifest, e))?;
    (|| -> rusqlite::Result<()> {
        let c = rusqlite::Connection::open(&manifest)?;
        let tx = c.unchecked_transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO settings(key, value) VALUES (?1, ?2)",
            [parity::THIS_PARITY_DISC, &format!("{}-{j}", g.id)],
        )?;
        // As of its making means the discs completed by then: the open
        // disc's rows (files being staged, reservations) are on no disc yet,
        // and a reader must not look for them.
        let completed = "SELECT id FROM discs WHERE completed IS NOT NULL";
        tx.execute(
            &format!("DELETE FROM files WHERE disc_id NOT IN ({completed})"),
            [],
        )?;
        let has_parts: bool = tx.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type='table' AND name='parts'",
            [],
            |r| r.get(0),
        )?;
        if has_parts {
            tx.execute(
                &format!("DELETE FROM parts WHERE disc_id NOT IN ({completed})"),
                [],
            )?;
        }
        tx.execute("DELETE FROM discs WHERE completed IS NULL", [])?;
        tx.commit()?;
        drop(c);
        let c = rusqlite::Connection::open(&manifest)?;
        c.execute_batch("VACUUM")?;
        Ok(())
    })()
    .map_err(|source| Error::Sqlite {
        path: manifest.clone(),
        source,
    })?;
    File::open(&manifest)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(&manifest, e))?;
    let made = crate::catalog::now();
    let readme = parity::readme(&parity::ParityInfo {
        set_name: &wd.settings.name,
        set_uuid: &wd.settings.uuid,
        group: g.id,
        j,
        m: i64::from(g.scheme.m),
        members,
        block_size,
        recovery_file: vol,
        made,
    });
    let manifest_md5 = md5_of(&manifest)?;
    let readme_md5 = hex(&Md5::digest(readme.as_bytes()));
    // MD5SUMS lists the recovery file's MD5, which is hashed while the
    // image is written (two cores: the write and the hash overlap): the
    // image is written with a placeholder of the same length, patched in
    // place before the image is flushed and read back.
    let md5sums = |vol_md5: &str| {
        format!(
            "{manifest_md5}  {}\n{readme_md5}  {}\n{index_md5}  {index}\n{vol_md5}  {vol}\n",
            disc::MANIFEST,
            disc::README
        )
    };
    let placeholder = md5sums(&"0".repeat(32));
    let vol_path = work.join(vol);
    let entries = vec![
        Entry {
            path: disc::MANIFEST.into(),
            source: Source::File(manifest.clone()),
        },
        Entry {
            path: disc::README.into(),
            source: Source::Bytes(readme.into_bytes()),
        },
        Entry {
            path: disc::MD5SUMS.into(),
            source: Source::Bytes(placeholder.clone().into_bytes()),
        },
        Entry {
            path: index.into(),
            source: Source::File(work.join(index)),
        },
        Entry {
            path: vol.into(),
            source: Source::File(work.join(vol)),
        },
    ];
    let opts = WriteOptions {
        volume_id: parity::volume_id(g.id, j),
        volume_set_id: wd.settings.uuid.clone(),
        application_id: format!("DBACKUP {}", env!("CARGO_PKG_VERSION")),
        timestamp: made.floor() as i64,
    };
    let estimate = iso::image_size(&entries, &opts)
        .map_err(|e| Error::Invalid(format!("parity disc {}-{j}: {e}", g.id)))?;
    let medium = medium_of(wd.settings.disc_size);
    if estimate > medium {
        return Err(Error::Invalid(format!(
            "parity disc {}-{j} would be {estimate} bytes, more than the medium of {medium} bytes the set is sized for",
            g.id
        )));
    }
    super::ensure_room(wd, estimate)?;
    progress.message(format!("parity disc {}-{j}: writing image", g.id));
    let (written, vol_md5) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| md5_of(&vol_path));
        let written = super::write_partial(
            &partial,
            &entries,
            &opts,
            &|f| crate::fault::Writer::new(f, "parity::write"),
            &|| None,
            progress,
        );
        let vol_md5 = hashing
            .join()
            .unwrap_or_else(|_| Err(Error::Invalid("hashing the recovery file failed".into())));
        (written, vol_md5)
    });
    let mut size = written?;
    let vol_md5 = match vol_md5 {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let md5sums = md5sums(&vol_md5);
    if let Err(e) = patch_file(&partial, disc::MD5SUMS, md5sums.as_bytes()) {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    let expected: Vec<(&str, Check)> = vec![
        (disc::MANIFEST, Check::Md5(manifest_md5.clone())),
        (disc::README, Check::Md5(readme_md5.clone())),
        (
            disc::MD5SUMS,
            Check::Md5(hex(&Md5::digest(md5sums.as_bytes()))),
        ),
        (index, Check::Md5(index_md5.to_string())),
        // Byte for byte against the file hashed for MD5SUMS: the same
        // proof as its MD5, at the speed of a comparison.
        (vol, Check::Same(vol_path.clone())),
    ];
    let mut codec = None;
    if wd.settings.ecc {
        progress.message(format!(
            "parity disc {}-{j}: adding error-correction data",
            g.id
        ));
        let added = ecc::add_ecc(&partial, wd.settings.disc_size).and_then(|c| {
            File::open(&partial)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&partial, e))?;
            Ok(c)
        });
        match added {
            Ok(c) => codec = Some(c),
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        }
        size = std::fs::metadata(&partial)
            .map_err(|e| Error::io(&partial, e))?
            .len();
    }
    progress.message(format!("parity disc {}-{j}: reading back", g.id));
    if let Err(why) = read_back(&partial, &expected, &opts.volume_id) {
        let failed = super::failed_path(&path);
        let _ = std::fs::rename(&partial, &failed);
        return Err(Error::Invalid(format!(
            "parity disc {}-{j} failed its read-back check ({why}); it was kept as {}",
            g.id,
            failed.display()
        )));
    }
    if let Some(e) = crate::fault::injected("parity::rename") {
        let _ = std::fs::remove_file(&partial);
        return Err(Error::io(&path, e));
    }
    std::fs::rename(&partial, &path).map_err(|e| Error::io(&path, e))?;
    let _ = std::fs::remove_file(super::failed_path(&path));
    fsutil::sync_dir(&wd.layout.isos())?;
    if let Some(e) = crate::fault::injected("parity::record") {
        return Err(Error::io(wd.catalog.path(), e));
    }
    wd.catalog.record_parity_disc(g.id, j, size)?;
    Ok(ParityReport {
        group: g.id,
        j,
        path,
        size,
        discs: g.discs.clone(),
        ecc: codec,
    })
}

/// The medium a disc size was chosen for: a preset leaves a quarter of it.
fn medium_of(disc_size: u64) -> u64 {
    let (num, den) = crate::units::PRESET_SHARE;
    (disc_size as u128 * den as u128 / num as u128) as u64
}

/// Writes `bytes` over the data of file `name` in the image at `image`
/// (which must be exactly that long), and flushes the image.
fn patch_file(image: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let reader =
        IsoReader::open(image).map_err(|e| Error::Invalid(format!("{}: {e}", image.display())))?;
    let at = reader
        .find(name)
        .filter(|f| f.size == bytes.len() as u64 && f.extents.len() == 1)
        .map(|f| f.extents[0].0)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{}: {name} is not where it was written",
                image.display()
            ))
        })?;
    drop(reader);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(image)
        .map_err(|e| Error::io(image, e))?;
    f.write_all_at(bytes, at).map_err(|e| Error::io(image, e))?;
    f.sync_all().map_err(|e| Error::io(image, e))
}

/// What a file read back from a parity image must be.
enum Check {
    /// Its MD5.
    Md5(String),
    /// The bytes of this file.
    Same(PathBuf),
}

/// Whether what `r` reads is exactly the content of `path`.
fn same_bytes(r: &mut dyn Read, path: &Path) -> std::io::Result<bool> {
    let mut f = File::open(path)?;
    let mut a = vec![0u8; 1 << 20];
    let mut b = vec![0u8; 1 << 20];
    // Bounded by the file's length.
    loop {
        let n = read_full(r, &mut a)?;
        let m = read_full(&mut f, &mut b)?;
        if n != m || a[..n] != b[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = r.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

/// Reads a parity image back with our own reader: its volume id, every
/// file there with the MD5 it was written with, the catalogue sound.
fn read_back(
    image: &Path,
    expected: &[(&str, Check)],
    volume_id: &str,
) -> std::result::Result<(), String> {
    let reader = IsoReader::open(image).map_err(|e| e.to_string())?;
    if let Some((len, volume)) = reader.cut_short() {
        return Err(format!(
            "the image is {len} bytes, its volume space {volume}"
        ));
    }
    if reader.volume_id() != volume_id {
        return Err(format!(
            "volume id {} instead of {volume_id}",
            reader.volume_id()
        ));
    }
    let problems: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = expected
            .iter()
            .map(|(name, check)| {
                let reader = &reader;
                s.spawn(move || -> Option<String> {
                    let Some(f) = reader.find(name) else {
                        return Some(format!("{name}: missing"));
                    };
                    let mut r = reader.reader(f);
                    let md5 = match check {
                        Check::Same(path) => {
                            return match same_bytes(&mut r, path) {
                                Ok(true) => None,
                                Ok(false) => Some(format!("{name}: not the bytes written")),
                                Err(e) => Some(format!("{name}: unreadable: {e}")),
                            };
                        }
                        Check::Md5(md5) => md5,
                    };
                    let mut h = Md5::new();
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        match r.read(&mut buf) {
                            Ok(0) => break,
                            Ok(k) => h.update(&buf[..k]),
                            Err(e) => return Some(format!("{name}: unreadable: {e}")),
                        }
                    }
                    let got = hex(&h.finalize());
                    (got != *md5).then(|| format!("{name}: MD5 {got} instead of {md5}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap_or(Some("read-back worker failed".into())))
            .collect()
    });
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let Some(f) = reader.find(disc::MANIFEST) else {
        return Err("manifest.db missing".into());
    };
    let tmp = crate::temp::file("dbackup-readback-", ".db").map_err(|e| e.to_string())?;
    std::io::copy(&mut reader.reader(f), &mut tmp.file()).map_err(|e| e.to_string())?;
    super::integrity_check(tmp.path()).map_err(|why| format!("manifest.db: {why}"))
}
