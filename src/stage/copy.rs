//! Copying a batch of files into the staging area: each file read once,
//! hashed and written in the same pass, by two to four workers; renaming
//! finished copies into place.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use md5::{Digest, Md5};

use crate::error::{Error, Result};
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

/// Where a batch's copies go: each target folder opened once, and each
/// copy's final and partial names in it. Files are created, renamed and
/// their folders flushed through the folder's descriptor, so the kernel
/// resolves one name per step instead of the whole staging path.
pub(super) struct Targets {
    dirs: Vec<(PathBuf, File)>,
    files: Vec<Target>,
}

struct Target {
    path: PathBuf,
    dir: usize,
    name: CString,
    partial: CString,
}

impl Targets {
    /// Opens the folders of `paths` (which exist) in order of first use.
    pub(super) fn open(paths: Vec<PathBuf>) -> Result<Targets> {
        let mut dirs: Vec<(PathBuf, File)> = Vec::new();
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                return Err(Error::Invalid(format!(
                    "{}: not a file's path",
                    path.display()
                )));
            };
            // A batch's ids are consecutive: its folders come in runs.
            let dir = match dirs.iter().rposition(|(d, _)| d == parent) {
                Some(i) => i,
                None => {
                    let f = fsutil::open_dir(parent).map_err(|e| Error::io(parent, e))?;
                    dirs.push((parent.to_path_buf(), f));
                    dirs.len() - 1
                }
            };
            let partial = fsutil::partial_path(Path::new(name));
            let c = |s: &std::ffi::OsStr| {
                CString::new(s.as_bytes())
                    .map_err(|_| Error::Invalid(format!("{}: path contains NUL", path.display())))
            };
            files.push(Target {
                name: c(name)?,
                partial: c(partial.as_os_str())?,
                dir,
                path,
            });
        }
        Ok(Targets { dirs, files })
    }

    /// The final path of copy `i`.
    pub(super) fn path(&self, i: usize) -> &Path {
        &self.files[i].path
    }

    /// The folder of copy `i`, as an index for [`Targets::sync_dir`].
    pub(super) fn dir_of(&self, i: usize) -> usize {
        self.files[i].dir
    }

    fn dir_fd(&self, i: usize) -> BorrowedFd<'_> {
        self.dirs[self.files[i].dir].1.as_fd()
    }

    /// Creates the partial file of copy `i`. One left by an earlier run
    /// whose removal failed is ours (no user data has a name in the
    /// staging area): it is removed and the copy created anew.
    fn create_partial(&self, i: usize) -> std::io::Result<File> {
        let t = &self.files[i];
        match fsutil::create_new_at(self.dir_fd(i), &t.partial) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                fsutil::remove_at(self.dir_fd(i), &t.partial)?;
                fsutil::create_new_at(self.dir_fd(i), &t.partial)
            }
            other => other,
        }
    }

    /// Removes copy `i` under both its names, if there; what a failed
    /// removal leaves, the next run's repair of the reservation removes.
    pub(super) fn remove(&self, i: usize) {
        let t = &self.files[i];
        let _ = fsutil::remove_at(self.dir_fd(i), &t.partial);
        let _ = fsutil::remove_at(self.dir_fd(i), &t.name);
    }

    /// Flushes folder `dir` (an index from [`Targets::dir_of`]).
    pub(super) fn sync_dir(&self, dir: usize) -> Result<()> {
        let (path, f) = &self.dirs[dir];
        f.sync_all().map_err(|e| Error::io(path, e))
    }
}

/// Renames finished copies into place, two threads at a time (a batch of
/// small files spends much of its time in directory lookups). `None` for
/// outcomes that are not copies.
pub(super) fn rename_copies(
    outcomes: &[Outcome],
    targets: &Targets,
) -> Vec<Option<std::io::Result<()>>> {
    let rename = |i: usize| match outcomes[i] {
        Outcome::Copied(_) => Some(match crate::fault::injected("stage::rename") {
            Some(e) => Err(e),
            None => {
                let t = &targets.files[i];
                fsutil::rename_at(targets.dir_fd(i), &t.partial, &t.name)
            }
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

/// Files a worker takes at a time, at most.
const CHUNK: usize = 16;
/// Bytes a worker takes at a time: a chunk ends at the file that reaches
/// them, so large files are shared out one by one and no worker is left
/// with a long chunk at the batch's end.
const CHUNK_BYTES: u64 = 4 << 20;

/// The batch cut into runs of neighbouring files, each of [`CHUNK`] files
/// or [`CHUNK_BYTES`] bytes at most (or one file): their starts, and the
/// batch's length.
fn chunks(batch: &[Change]) -> Vec<usize> {
    let mut starts = vec![0];
    let (mut files, mut bytes) = (0, 0u64);
    for (i, c) in batch.iter().enumerate() {
        if files == CHUNK || bytes >= CHUNK_BYTES {
            starts.push(i);
            (files, bytes) = (0, 0);
        }
        files += 1;
        bytes = bytes.saturating_add(c.size);
    }
    starts.push(batch.len());
    starts
}

/// Copies a batch with two workers (or as many cores as there are, up to
/// four): each file is read once, hashed and written in the same pass. A
/// batch that is mostly large files, written directly and so waiting on
/// the disk for each write, has twice as many (up to eight), so that the
/// cores hash while some of them wait.
pub(super) fn copy_all(batch: &[Change], targets: &Targets, progress: &Progress) -> Vec<Outcome> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let bytes: u64 = batch.iter().map(|c| c.size).sum();
    let direct: u64 = batch
        .iter()
        .filter(|c| c.size >= WRITEBACK_FROM)
        .map(|c| c.size)
        .sum();
    let workers = if direct >= bytes / 2 && direct > 0 {
        (2 * cores).clamp(4, 8)
    } else {
        cores.clamp(2, 4)
    };
    let chunks = chunks(batch);
    let workers = workers.min(chunks.len() - 1);
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Outcome>> = (0..batch.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    // Small enough to stay in the core's cache between the
                    // read, the hash and the write of each chunk; aligned
                    // for direct writes.
                    let mut raw = vec![0u8; COPY_BUFFER + fsutil::DIRECT_ALIGN];
                    let at = raw.as_ptr().align_offset(fsutil::DIRECT_ALIGN);
                    let buf = &mut raw[at..at + COPY_BUFFER];
                    let mut out = Vec::new();
                    // Runs of neighbouring ids, so two workers seldom write
                    // into the same folder at once.
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k + 1 >= chunks.len() {
                            break;
                        }
                        let (start, end) = (chunks[k], chunks[k + 1]);
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
                            let dst = || targets.create_partial(i);
                            out.push((i, copy_one(&batch[i], src, dst, buf, progress)));
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

/// The size from which a copy starts its own writeback, and writes its
/// whole blocks directly to the disk (see `copy_one`).
const WRITEBACK_FROM: u64 = 1 << 20;

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

/// Writes `data` whole: directly while `direct` and the data is of whole
/// blocks, else (for good, once it is not) through the page cache.
fn write_chunk(dst: &mut File, data: &[u8], direct: &mut bool) -> std::io::Result<()> {
    let mut done = 0;
    // Bounded by the data: each turn writes a byte or more, or turns direct
    // writes off (once), or fails.
    while done < data.len() {
        if *direct && !(data.len() - done).is_multiple_of(fsutil::DIRECT_ALIGN) {
            fsutil::set_direct_io(dst, false)?;
            *direct = false;
        }
        match dst.write(&data[done..]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A filesystem that took O_DIRECT but not this write.
            Err(e) if *direct && e.raw_os_error() == Some(libc::EINVAL) => {
                fsutil::set_direct_io(dst, false)?;
                *direct = false;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn copy_one(
    change: &Change,
    src: std::io::Result<File>,
    create: impl FnOnce() -> std::io::Result<File>,
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
    let mut dst = match create() {
        Ok(f) => f,
        Err(e) => return Outcome::Target(e),
    };
    // A large copy writes around the page cache: its bytes go from the
    // buffer to the disk, not first into pages the kernel must find, fill
    // and write back (on a virtual machine, fresh pages cost as much as the
    // hash). The batch's `syncfs` still flushes the disk's own cache before
    // the copy is recorded. The tail (not whole blocks) is written through
    // the page cache, as is everything where the filesystem has no direct
    // writes.
    let mut direct = change.size >= WRITEBACK_FROM && fsutil::set_direct_io(&dst, true).is_ok();
    let mut hasher = Md5::new();
    let mut total = 0u64;
    let mut first = true;
    // Reads what the scan saw and no more: no read is spent on finding the
    // end of a small file. A file that grew or shrank since shows it in its
    // size after the copy, or by ending early. Bounded by the size: each
    // turn copies at least a byte or ends.
    while total < change.size {
        let want = buf
            .len()
            .min(usize::try_from(change.size - total).unwrap_or(usize::MAX));
        // The buffer is filled before it is written, so that every write but
        // the last is of whole blocks at an aligned offset.
        let mut filled = 0;
        let mut ended = false;
        while filled < want {
            let read = match crate::fault::injected("stage::read") {
                Some(e) => Err(e),
                None => src.read(&mut buf[filled..want]),
            };
            match read {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Outcome::Source(read_reason(&e)),
            }
        }
        if filled == 0 {
            break;
        }
        hasher.update(&buf[..filled]);
        let written = match crate::fault::injected("stage::write") {
            Some(e) => Err(e),
            None => write_chunk(&mut dst, &buf[..filled], &mut direct),
        };
        if let Err(e) = written {
            return Outcome::Target(e);
        }
        total += filled as u64;
        progress.add_bytes(filled as u64);
        if first {
            first = false;
            fail::fail_point!("stage::mid_copy");
        }
        if ended {
            break;
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
    // A small copy starts no writeback: the batch's one `syncfs` writes
    // them back at once, in few large requests, where one started per file
    // costs a request (and, in a virtual machine, an exit) per small file.
    // A large one starts it now, so its pages (its tail alone, after
    // direct writes) go to disk while the next files are copied rather
    // than all at the batch's flush.
    if change.size >= WRITEBACK_FROM {
        fsutil::start_writeback(&dst, 0, 0);
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(32);
    for b in digest.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    Outcome::Copied(hex)
}
