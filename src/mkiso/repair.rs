//! The way out of a rotten staged copy: take it again from the disc's
//! verified image or from the origin (the same content: size, mtime and a
//! fresh MD5 agree), or record the version as damaged. Never frees or
//! changes anything but the rotten copy and the damaged records.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use super::{hex, md5_of, ReadBackProblem};
use crate::disc;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::iso::IsoReader;
use crate::names;
use crate::progress::Progress;
use crate::workdir::Workdir;

/// What became of a staged copy found rotten (it no longer had its MD5).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Repair {
    pub id: i64,
    pub filename: String,
    /// `image` (taken again from the disc's verified image), `origin`
    /// (copied again from the watched folder) or `damaged` (no good copy
    /// left: recorded as damaged, no backup).
    pub action: String,
    pub detail: String,
}

/// For each file the read-back found bad, checks its staged copy; a copy
/// that no longer has its recorded MD5 is taken again from the disc's
/// verified image or from the origin (size, mtime and a fresh MD5 must
/// agree), or else recorded as damaged in the catalogue and in the disc's
/// frozen catalogue. Returns what it did; empty when no staged copy was
/// rotten (the image itself is bad).
pub(super) fn repair_staged(
    wd: &mut Workdir,
    n: i64,
    problems: &[ReadBackProblem],
    progress: &Progress,
) -> Result<Vec<Repair>> {
    // `files/<d>/<id>` or, for a part of a split version, `files/<d>/<id>.<k>`.
    let ids: Vec<(i64, Option<u32>)> = problems
        .iter()
        .filter(|p| p.path.starts_with("files/"))
        .filter_map(|p| {
            let last = p.path.rsplit('/').next()?;
            match last.split_once('.') {
                Some((id, part)) => Some((id.parse().ok()?, Some(part.parse().ok()?))),
                None => Some((last.parse().ok()?, None)),
            }
        })
        .collect();
    let mut repairs = Vec::new();
    let mut damaged = Vec::new();
    // Bounded by the problems of one read-back.
    for (id, part) in ids {
        // (name, md5, size, mtime) and, for a part, (its offset, the whole size).
        let (name, md5, size, mtime, range) = match part {
            None => match wd.catalog.file_record(id)? {
                Some((name, md5, size, mtime)) => (name, md5, size, mtime, None),
                None => continue,
            },
            Some(k) => match wd.catalog.part_record(id, k)? {
                Some(r) => (
                    r.name,
                    r.md5,
                    r.size,
                    r.mtime,
                    Some((r.offset, r.whole_size)),
                ),
                None => continue,
            },
        };
        let rel = match part {
            Some(k) => disc::part_path(id, k),
            None => disc::file_path(id),
        };
        let staged = wd.layout.disc_dir(n).join(&rel);
        if md5_of(&staged).ok().as_deref() == Some(md5.as_str()) {
            continue; // the staged copy is good: the image is to blame
        }
        let filename = names::display(&name, false);
        let tmp = repair_tmp(&staged);
        let mut why = Vec::new();
        // 1. The disc's verified image, if it has one.
        let iso = wd.layout.iso(n);
        let has_image = wd.catalog.images()?.iter().any(|i| i.disc == n) && iso.is_file();
        if has_image {
            match copy_from_image(&iso, &rel, &tmp, &md5) {
                Ok(()) => {
                    put_in_place(&tmp, &staged)?;
                    repairs.push(Repair {
                        id,
                        filename,
                        action: "image".into(),
                        detail: format!("taken again from {}", iso.display()),
                    });
                    continue;
                }
                Err(e) => why.push(format!("not in the verified image ({e})")),
            }
        }
        // 2. The origin, where it still holds that exact content.
        let origin = names::to_relative(&name);
        let safe = !origin.as_os_str().is_empty()
            && origin
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if safe {
            let src = wd.settings.watched.join(origin);
            let (offset, whole) = range.unwrap_or((0, size));
            match copy_from_origin(&src, whole, mtime, (offset, size), &md5, &tmp, progress) {
                Ok(()) => {
                    put_in_place(&tmp, &staged)?;
                    repairs.push(Repair {
                        id,
                        filename,
                        action: "origin".into(),
                        detail: format!("copied again from {}", src.display()),
                    });
                    continue;
                }
                Err(e) => why.push(format!("not in the origin ({e})")),
            }
        }
        let _ = std::fs::remove_file(&tmp);
        let reason = format!(
            "staged copy {} no longer has MD5 {md5}; {}",
            staged.display(),
            why.join("; ")
        );
        damaged.push((id, n, reason.clone()));
        repairs.push(Repair {
            id,
            filename,
            action: "damaged".into(),
            detail: reason,
        });
    }
    if !damaged.is_empty() {
        // The live catalogue first: a crash before the frozen one is
        // changed finds the copy rotten again and records it there then.
        for (id, disc, reason) in &damaged {
            wd.catalog.record_damaged(*id, *disc, reason)?;
            // A split version still being staged lost a part: it can no
            // longer become a backup, and the next run takes it again.
            if wd.catalog.split_state(*id)?.as_deref() == Some("staging") {
                wd.catalog
                    .abandon_split(*id, "a staged part rotted before its image held it")?;
            }
        }
        crate::catalog::record_damaged_in_frozen(&wd.layout.disc_manifest(n), &damaged)?;
    }
    Ok(repairs)
}

/// A temp name beside a staged copy that no stored file takes (those are
/// decimal ids).
fn repair_tmp(staged: &Path) -> PathBuf {
    let mut name = staged.as_os_str().to_os_string();
    name.push(".dbackup-repair");
    name.into()
}

fn put_in_place(tmp: &Path, staged: &Path) -> Result<()> {
    std::fs::rename(tmp, staged).map_err(|e| Error::io(staged, e))?;
    fsutil::sync_dir(staged.parent().unwrap_or(Path::new(".")))
}

/// Copies `from` to `tmp` while hashing; keeps it (fsynced) only when the
/// MD5 is `md5`.
fn copy_hashed(from: &mut dyn Read, tmp: &Path, md5: &str, progress: &Progress) -> Result<()> {
    let res = (|| -> Result<()> {
        let mut out = File::create(tmp).map_err(|e| Error::io(tmp, e))?;
        let mut h = Md5::new();
        let mut buf = vec![0u8; 1 << 20];
        // Bounded by the source's length.
        loop {
            let k = from.read(&mut buf).map_err(|e| Error::io(tmp, e))?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            out.write_all(&buf[..k]).map_err(|e| Error::io(tmp, e))?;
            progress.add_bytes(k as u64);
        }
        let got = hex(&h.finalize());
        if got != md5 {
            return Err(Error::Invalid(format!("its MD5 is now {got}")));
        }
        out.sync_all().map_err(|e| Error::io(tmp, e))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    res
}

fn copy_from_image(iso: &Path, rel: &Path, tmp: &Path, md5: &str) -> Result<()> {
    let reader = IsoReader::open(iso).map_err(|e| Error::Invalid(e.to_string()))?;
    let rel = rel.to_string_lossy().into_owned();
    let entry = reader
        .find(&rel)
        .ok_or_else(|| Error::Invalid(format!("{rel} is missing")))?;
    copy_hashed(&mut reader.reader(entry), tmp, md5, &Progress::hidden())
}

/// Copies bytes `range` (offset, length) of `src`, a file of `size` bytes
/// with `mtime`, when it is unchanged.
fn copy_from_origin(
    src: &Path,
    size: u64,
    mtime: crate::catalog::Mtime,
    range: (u64, u64),
    md5: &str,
    tmp: &Path,
    progress: &Progress,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut f = File::open(src).map_err(|e| Error::io(src, e))?;
    let unchanged = |m: &std::fs::Metadata| {
        m.is_file() && m.len() == size && mtime.matches(m.mtime(), m.mtime_nsec())
    };
    let before = f.metadata().map_err(|e| Error::io(src, e))?;
    if !unchanged(&before) {
        return Err(Error::Invalid("changed since its backup".into()));
    }
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(range.0))
        .map_err(|e| Error::io(src, e))?;
    copy_hashed(&mut (&mut f).take(range.1), tmp, md5, progress)?;
    let after = f.metadata().map_err(|e| Error::io(src, e))?;
    if !unchanged(&after) {
        let _ = std::fs::remove_file(tmp);
        return Err(Error::Invalid("changed while being copied".into()));
    }
    Ok(())
}
