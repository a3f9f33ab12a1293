//! Copying a batch of files into the staging area: each file read once,
//! hashed and written in the same pass, by two to four workers; renaming
//! finished copies into place.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use md5::{Digest, Md5};

use crate::fsutil;
use crate::progress::Progress;
use crate::scan::Change;

/// The result of copying one file.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Copied; the MD5 in lowercase hex.
    Copied(String),
    /// The source could not be copied (unreadable, vanished, changed): skip it.
    Source(String),
    /// Writing the copy failed (ENOSPC, EIO on the workdir).
    Target(std::io::Error),
}

/// Copies a batch with two workers (or as many cores as there are, up to
/// four): each file is read once, hashed and written in the same pass.
/// Renames finished copies into place, two threads at a time (a batch of
/// small files spends much of its time in directory lookups). `None` for
/// outcomes that are not copies.
pub(super) fn rename_copies(
    outcomes: &[Outcome],
    targets: &[PathBuf],
) -> Vec<Option<std::io::Result<()>>> {
    let rename = |i: usize| match outcomes[i] {
        Outcome::Copied(_) => Some(match crate::fault::injected("stage::rename") {
            Some(e) => Err(e),
            None => std::fs::rename(fsutil::partial_path(&targets[i]), &targets[i]),
        }),
        _ => None,
    };
    let half = outcomes.len() / 2;
    std::thread::scope(|s| {
        let second = s.spawn(|| (half..outcomes.len()).map(rename).collect::<Vec<_>>());
        let mut all: Vec<_> = (0..half).map(rename).collect();
        match second.join() {
            Ok(rest) => all.extend(rest),
            // Not renamed: reported as failures, the reservation dropped.
            Err(_) => all.extend(
                (half..outcomes.len())
                    .map(|_| Some(Err(std::io::Error::other("rename worker failed")))),
            ),
        }
        all
    })
}

/// Bytes read, hashed and written at a time.
pub(super) const COPY_BUFFER: usize = 256 << 10;

/// Files a worker takes at a time.
const CHUNK: usize = 16;

pub(super) fn copy_all(batch: &[Change], targets: &[PathBuf], progress: &Progress) -> Vec<Outcome> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 4)
        .min(batch.len());
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Outcome>> = (0..batch.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    // Small enough to stay in the core's cache between the
                    // read, the hash and the write of each chunk.
                    let mut buf = vec![0u8; COPY_BUFFER];
                    let mut out = Vec::new();
                    // Runs of neighbouring ids, so two workers seldom write
                    // into the same folder at once.
                    loop {
                        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                        if start >= batch.len() {
                            break;
                        }
                        let end = (start + CHUNK).min(batch.len());
                        // The chunk's sources are opened and their reads
                        // started before the first is copied: the disk
                        // reads them together while the worker copies, and
                        // the worker seldom sleeps waiting for one.
                        let sources: Vec<_> = batch[start..end]
                            .iter()
                            .map(|c| {
                                let f = open_source(&c.path)?;
                                prefetch(&f, c.size.min(COPY_BUFFER as u64));
                                Ok(f)
                            })
                            .collect();
                        for (i, src) in (start..end).zip(sources) {
                            let partial = fsutil::partial_path(&targets[i]);
                            out.push((i, copy_one(&batch[i], src, &partial, &mut buf, progress)));
                        }
                    }
                    out
                })
            })
            .collect();
        for h in handles {
            // A worker that panicked leaves its files without an outcome;
            // they are reported below and not staged.
            if let Ok(out) = h.join() {
                for (i, o) in out {
                    results[i] = Some(o);
                }
            }
        }
    });
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Outcome::Source("copy worker failed".into())))
        .collect()
}

/// Whether the file is still what the scan saw: a regular file of the same
/// size and mtime (to the nanosecond).
pub(super) fn unchanged(change: &Change, m: &std::fs::Metadata) -> bool {
    m.is_file()
        && m.len() == change.size
        && m.mtime() == change.mtime_secs
        && m.mtime_nsec() == change.mtime_nanos
}

pub(super) fn open_source(path: &Path) -> std::io::Result<File> {
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(path)
    {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => File::open(path),
        other => other,
    }
}

pub(super) fn read_reason(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        "vanished before it could be copied".into()
    } else {
        format!("cannot read: {e}")
    }
}

/// Starts reading the first `len` bytes of a source into the page cache
/// without waiting (`posix_fadvise(WILLNEED)`). Only a hint: the read that
/// follows reports any error.
fn prefetch(file: &File, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: posix_fadvise takes a valid open descriptor, owned by `file`
    // for the duration of the call, and plain integers.
    unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            0,
            len as libc::off_t,
            libc::POSIX_FADV_WILLNEED,
        );
    }
}

fn copy_one(
    change: &Change,
    src: std::io::Result<File>,
    partial: &Path,
    buf: &mut [u8],
    progress: &Progress,
) -> Outcome {
    let mut src = match src {
        Ok(f) => f,
        Err(e) => return Outcome::Source(read_reason(&e)),
    };
    let unchanged = |m: &std::fs::Metadata| unchanged(change, m);
    match src.metadata() {
        Ok(m) if unchanged(&m) => {}
        Ok(_) => {
            return Outcome::Source(
                "changed since the scan; it will be backed up on the next run".into(),
            )
        }
        Err(e) => return Outcome::Source(read_reason(&e)),
    }
    let mut dst = match File::create(partial) {
        Ok(f) => f,
        Err(e) => return Outcome::Target(e),
    };
    let mut hasher = Md5::new();
    let mut total = 0u64;
    let mut first = true;
    // Reads what the scan saw and no more: no read is spent on finding the
    // end of a small file. A file that grew or shrank since shows it in its
    // size after the copy, or by ending early.
    while total < change.size {
        let want = buf
            .len()
            .min(usize::try_from(change.size - total).unwrap_or(usize::MAX));
        let read = match crate::fault::injected("stage::read") {
            Some(e) => Err(e),
            None => src.read(&mut buf[..want]),
        };
        let n = match read {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Outcome::Source(read_reason(&e)),
        };
        hasher.update(&buf[..n]);
        let written = match crate::fault::injected("stage::write") {
            Some(e) => Err(e),
            None => dst.write_all(&buf[..n]),
        };
        if let Err(e) = written {
            return Outcome::Target(e);
        }
        total += n as u64;
        progress.add_bytes(n as u64);
        if first {
            first = false;
            fail::fail_point!("stage::mid_copy");
        }
    }
    match src.metadata() {
        Ok(m) if unchanged(&m) && total == change.size => {}
        Ok(_) => {
            return Outcome::Source(
                "changed while being copied; the copy was discarded and it will be backed up on the next run"
                    .into(),
            )
        }
        Err(e) => return Outcome::Source(read_reason(&e)),
    }
    // No writeback is started here: the batch's one `syncfs` writes every
    // copy back at once, in few large requests, where one started per file
    // costs a request (and, in a virtual machine, an exit) per small file.
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(32);
    for b in digest.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    Outcome::Copied(hex)
}
