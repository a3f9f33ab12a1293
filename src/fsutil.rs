//! Durability and space primitives: fsync of files and folders, a whole
//! filesystem flush, atomic small-file writes, and free-space queries.

use std::ffi::CStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};
use std::path::Path;

use crate::error::{Error, Result};

/// Whether an I/O error means the filesystem is full.
pub fn is_no_space(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::StorageFull || err.raw_os_error() == Some(libc::ENOSPC)
}

/// fsync of a folder, so that renames and creations inside it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| Error::io(dir, e))?;
    f.sync_all().map_err(|e| Error::io(dir, e))
}

/// Flushes every dirty page of the filesystem holding `dir` in one call
/// (`syncfs(2)`): one round-trip for a whole batch of staged files instead
/// of one fsync per file.
pub fn sync_filesystem(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| Error::io(dir, e))?;
    // SAFETY: syncfs takes a valid open file descriptor, owned by `f` for
    // the duration of the call.
    let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::io(dir, std::io::Error::last_os_error()))
    }
}

/// Flushes the filesystem holding an open file or folder (`syncfs(2)`), like
/// [`sync_filesystem`]: one disk flush for every file written on it.
pub fn sync_filesystem_of(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<()> {
    // SAFETY: syncfs takes a valid open file descriptor, borrowed for the
    // duration of the call.
    if unsafe { libc::syncfs(fd.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// What a rescan needs of a file: its size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    /// The whole `st_mode` (type and permission bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub dev: u64,
    pub ino: u64,
}

impl From<&std::fs::Metadata> for Stat {
    fn from(m: &std::fs::Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat {
            size: m.len(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            nlink: m.nlink(),
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

/// The size, mtime, mode, owner and inode of `name` in the open folder `dir`, without following
/// a symbolic link (`fstatat(2)`). The kernel looks up one name instead of
/// resolving every folder of a full path again, which is most of the cost
/// of stating a million files by path.
pub fn stat_at(dir: std::os::fd::BorrowedFd<'_>, name: &std::ffi::OsStr) -> std::io::Result<Stat> {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(name.as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `dir` is an open descriptor borrowed for the call, `name` is
    // a NUL-terminated string that outlives it, and `st` points to enough
    // memory for one `struct stat`, which fstatat fills on success.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fstatat returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    Ok(Stat {
        size: st.st_size as u64,
        mtime: st.st_mtime,
        mtime_nsec: st.st_mtime_nsec,
        mode: st.st_mode,
        uid: st.st_uid,
        gid: st.st_gid,
        nlink: st.st_nlink,
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

/// Opens a folder to work inside it by name (`openat`, `renameat`) and to
/// fsync it, without resolving its path again for each file.
pub fn open_dir(dir: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
}

/// Creates `name` in the open folder `dir` for writing, with the mode a new
/// file gets (0666 less the umask); fails if the name is taken, and never
/// follows a symbolic link in its place (`O_CREAT | O_EXCL`).
pub fn create_new_at(dir: BorrowedFd<'_>, name: &CStr) -> std::io::Result<File> {
    // SAFETY: `dir` is an open descriptor borrowed for the call and `name`
    // a NUL-terminated string that outlives it; on success the returned
    // descriptor is new and owned by nobody else.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
            0o666 as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is not owned elsewhere.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Renames `from` to `to`, both in the open folder `dir` (`renameat`).
pub fn rename_at(dir: BorrowedFd<'_>, from: &CStr, to: &CStr) -> std::io::Result<()> {
    // SAFETY: `dir` is an open descriptor borrowed for the call; both names
    // are NUL-terminated strings that outlive it.
    let rc =
        unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Removes the file `name` from the open folder `dir` (`unlinkat`).
pub fn remove_at(dir: BorrowedFd<'_>, name: &CStr) -> std::io::Result<()> {
    // SAFETY: `dir` is an open descriptor borrowed for the call and `name`
    // a NUL-terminated string that outlives it.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Starts writing a range of a file to disk without waiting
/// (`sync_file_range`), so that a later fsync finds most of the file
/// already written and the disk works while we go on. Only a hint: errors
/// are left for that fsync to report.
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    // SAFETY: sync_file_range takes a valid open descriptor, owned by
    // `file` for the duration of the call, and plain integers.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// Turns direct I/O on or off for `file` (`O_DIRECT`: a write goes from
/// our buffer to the disk, around the page cache, and must be of whole,
/// aligned blocks: see [`DIRECT_ALIGN`]). A filesystem without it refuses
/// (EINVAL), and the file stays as it was.
pub fn set_direct_io(file: &File, on: bool) -> std::io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl with F_GETFL and F_SETFL takes a valid open descriptor,
    // owned by `file` for the duration of the calls, and plain integers.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags == -1 {
            return Err(std::io::Error::last_os_error());
        }
        let want = if on {
            flags | libc::O_DIRECT
        } else {
            flags & !libc::O_DIRECT
        };
        if want != flags && libc::fcntl(fd, libc::F_SETFL, want) == -1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The alignment of a direct write's buffer, offset and length: a page,
/// which covers the logical block of any disk.
pub const DIRECT_ALIGN: usize = 4096;

/// Writes `data` to `path` atomically: a temp file in the same folder,
/// fsync, rename, fsync of the folder.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = partial_path(path);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    sync_dir(dir)
}

/// Writes `data` to `path` atomically for a file whose name the user
/// chose, as [`write_atomic_beside_with`] does.
pub fn write_atomic_beside(path: &Path, data: &[u8], prefix: &str, point: &str) -> Result<()> {
    write_atomic_beside_with(path, prefix, point, &mut |w| {
        w.write_all(data).map_err(|e| Error::io(path, e))
    })
    .map(|_| ())
}

/// Writes a file whose name the user chose atomically, its bytes given by
/// `write` as a stream (a page of millions of names is never held whole).
///
/// The bytes go to a file with no name yet (`O_TMPFILE` in `path`'s
/// folder, with the mode a new file gets: 0666 less the umask), through a
/// buffer, flushed; only then is it given a name: `path` itself by a link
/// when `path` does not exist, or else a random temp name (`PREFIX` +
/// random + `.tmp`, taken exclusively, so no file of the user's is ever
/// taken) that is at once renamed over `path`; then the folder is
/// flushed. So a kill at any instant leaves `path` old or new and whole,
/// and nothing else but in the instant between that link and its rename.
/// Where the file system has no `O_TMPFILE`, the bytes go to the temp
/// name from the start, as before: a kill then leaves it behind.
///
/// On a failure before the file is named (an error of `write` too, which
/// maps its own I/O errors) nothing of ours is left and `path` is as it
/// was; a failure to flush the folder after is reported with `path`
/// already new. `point` names the
/// fault point where a test fills the file system after the flush and
/// before the file is named. Returns the bytes written.
pub fn write_atomic_beside_with(
    path: &Path,
    prefix: &str,
    point: &str,
    write: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<u64> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let unnamed = std::fs::OpenOptions::new()
        .write(true)
        .mode(0o666)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
        .ok()
        .filter(|_| Path::new("/proc/self/fd").is_dir());
    let (file, named) = match unnamed {
        Some(f) => (f, None),
        None => {
            let tmp = tempfile::Builder::new()
                .prefix(prefix)
                .suffix(".tmp")
                .permissions(std::fs::Permissions::from_mode(0o666))
                .tempfile_in(dir)
                .map_err(|e| Error::io(path, e))?;
            let (f, p) = tmp.into_parts();
            (f, Some(p))
        }
    };
    let mut out = Counted {
        inner: std::io::BufWriter::with_capacity(1 << 16, &file),
        bytes: 0,
    };
    write(&mut out)?;
    out.inner.flush().map_err(|e| Error::io(path, e))?;
    let bytes = out.bytes;
    drop(out);
    file.sync_all().map_err(|e| Error::io(path, e))?;
    // A test's fault: the file system fills up before the file is named.
    let _ = point;
    fail::fail_point!(point, |_| Err(Error::io(
        path,
        std::io::Error::from_raw_os_error(libc::ENOSPC)
    )));
    match named {
        Some(tmp) => tmp.persist(path).map_err(|e| Error::io(path, e.error))?,
        None => {
            name_unnamed(&file, dir, path, prefix).map_err(|e| Error::io(path, e))?;
            // Named now: its flush again, for file systems that log a new
            // link with the file's own (btrfs).
            file.sync_all().map_err(|e| Error::io(path, e))?;
        }
    }
    sync_dir(dir)?;
    Ok(bytes)
}

/// Gives the `O_TMPFILE` file `file` the name `path` in `dir`: linked as
/// `path` when that is free, or else linked under a fresh temp name and
/// renamed over it (a link never replaces a file).
fn name_unnamed(file: &File, dir: &Path, path: &Path, prefix: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let from = std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(std::io::Error::other)?;
    let link = |to: &Path| -> std::io::Result<()> {
        let to = std::ffi::CString::new(to.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: both are NUL-terminated paths that live across the call.
        let rc = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(e);
        }
        // No /proc of ours to link through (another namespace's): the
        // descriptor itself, which needs CAP_DAC_READ_SEARCH.
        // SAFETY: a descriptor `file` owns, an empty NUL-terminated path
        // and a NUL-terminated target, for the call.
        let rc = unsafe {
            libc::linkat(
                file.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    match link(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        done => return done,
    }
    // Retries on a name already taken, so no file of the user's is hit.
    let tmp = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".tmp")
        .make_in(dir, |p| link(p))?;
    tmp.persist(path).map(|_| ()).map_err(|e| e.error)
}

/// A writer that counts the bytes it passes on.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The temp name beside `path` used while it is being written.
pub fn partial_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".partial");
    name.into()
}

/// Bytes available to us on the filesystem holding `path`. Uses sysinfo's
/// disk list (the mount with the longest matching mount point), and falls
/// back to statvfs(3) for a filesystem sysinfo does not list.
pub fn available_space(path: &Path) -> Result<u64> {
    let canonical = path.canonicalize().map_err(|e| Error::io(path, e))?;
    if let Ok(disks) = sysinfo::Disks::new_with_refreshed_list() {
        let best = disks
            .iter()
            .filter(|d| canonical.starts_with(d.mount_point()))
            .max_by_key(|d| d.mount_point().as_os_str().len());
        if let Some(disk) = best {
            return Ok(disk.available_space());
        }
    }
    statvfs_available(&canonical)
}

fn statvfs_available(path: &Path) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Invalid(format!("{}: path contains NUL", path.display())))?;
    // SAFETY: statvfs writes into the zeroed struct we own; `c` is a valid
    // NUL-terminated string for the duration of the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(Error::io(path, std::io::Error::last_os_error()));
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}
