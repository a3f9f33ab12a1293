//! The folder a restore writes into. Every change below it goes through
//! open folder handles (`openat`, `mkdirat`, `renameat`, `unlinkat`), one
//! name component at a time, and nothing here ever follows a symbolic
//! link: a name from an untrusted manifest, or a link planted in the
//! target, cannot lead a write outside it, even if the target changes
//! while we work. Names arrive already checked by the plan: no `..`, `.`
//! or empty components, no NUL.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// What a name in a folder is, not following links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Absent,
    File {
        size: u64,
    },
    Folder,
    Symlink,
    /// A fifo, socket or device.
    Other,
}

/// Why the folder of a file cannot be reached.
#[derive(Debug)]
pub enum Blocked {
    /// A symbolic link stands where a folder should be (the path below
    /// the target up to it).
    Symlink(String),
    /// Something other than a folder stands there.
    NotAFolder(String),
    Io(String, io::Error),
}

/// An open folder.
pub struct Dir {
    fd: OwnedFd,
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl Dir {
    /// Opens a folder named by a trusted path (the target itself).
    fn open(path: &Path) -> io::Result<Dir> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)?;
        Ok(Dir { fd: f.into() })
    }

    fn at(&self, name: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
        // SAFETY: `name` is NUL-terminated and outlives the call; the folder
        // descriptor is open for as long as `self` lives.
        let fd = check(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                libc::c_uint::from(mode),
            )
        })?;
        // SAFETY: openat returned a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Another handle on the same folder.
    pub fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
        })
    }

    /// What `name` is, without following a link.
    pub fn entry(&self, name: &CStr) -> io::Result<Existing> {
        let mut st = MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstatat fills the stat buffer we own; `name` is valid.
        let rc = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::NotFound {
                Ok(Existing::Absent)
            } else {
                Err(e)
            };
        }
        // SAFETY: fstatat succeeded, so the buffer is initialised.
        let st = unsafe { st.assume_init() };
        Ok(match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Existing::File {
                size: st.st_size as u64,
            },
            libc::S_IFDIR => Existing::Folder,
            libc::S_IFLNK => Existing::Symlink,
            _ => Existing::Other,
        })
    }

    /// The sub-folder `name`, created when absent; fails (ELOOP or
    /// ENOTDIR) rather than pass through a link.
    fn subdir(&self, name: &CStr, create: bool) -> io::Result<Dir> {
        if create {
            // SAFETY: `name` is valid; mkdirat only creates an entry.
            let rc = unsafe { libc::mkdirat(self.fd.as_raw_fd(), name.as_ptr(), 0o777) };
            if rc != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(e);
                }
            }
        }
        let fd = self.at(name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        Ok(Dir { fd })
    }

    /// Opens the regular file `name` for reading, never through a link
    /// and never blocking on a fifo swapped in meanwhile.
    pub fn open_file(&self, name: &CStr) -> io::Result<File> {
        let f = File::from(self.at(name, libc::O_RDONLY | libc::O_NONBLOCK, 0)?);
        if !f.metadata()?.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(f)
    }

    /// Creates `name`, which must not exist (not even as a link).
    pub fn create_new(&self, name: &CStr) -> io::Result<File> {
        Ok(File::from(self.at(
            name,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            0o666,
        )?))
    }

    /// Opens the regular file `name` for reading and writing, never
    /// through a link.
    pub fn open_rw(&self, name: &CStr) -> io::Result<File> {
        let f = File::from(self.at(name, libc::O_RDWR | libc::O_NONBLOCK, 0)?);
        if !f.metadata()?.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(f)
    }

    /// Makes this folder's entries durable (fsync of the folder).
    pub fn sync(&self) -> io::Result<()> {
        // SAFETY: fsync on a descriptor `self` owns.
        check(unsafe { libc::fsync(self.fd.as_raw_fd()) }).map(|_| ())
    }

    /// Removes the entry `name` (a link itself, never what it points to).
    pub fn remove(&self, name: &CStr) -> io::Result<()> {
        // SAFETY: `name` is valid; unlinkat removes only the entry.
        check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), name.as_ptr(), 0) }).map(|_| ())
    }

    /// Removes the empty folder `name`; fails if anything is in it.
    fn remove_dir(&self, name: &CStr) -> io::Result<()> {
        // SAFETY: `name` is valid; unlinkat removes only an empty folder.
        check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) })
            .map(|_| ())
    }

    /// Renames `from` in this folder to `to` in the folder `dest`,
    /// replacing a file at `to`. Both must be on one filesystem (EXDEV).
    pub fn rename_to(&self, from: &CStr, dest: &Dir, to: &CStr) -> io::Result<()> {
        // SAFETY: both names are valid NUL-terminated strings and both
        // descriptors are open; renameat acts on the entries themselves.
        check(unsafe {
            libc::renameat(
                self.fd.as_raw_fd(),
                from.as_ptr(),
                dest.fd.as_raw_fd(),
                to.as_ptr(),
            )
        })
        .map(|_| ())
    }

    /// Renames `from` in this folder to `to` in the folder `dest`, only if
    /// `to` does not exist (`renameat2` with `RENAME_NOREPLACE`; EEXIST
    /// otherwise). On a filesystem without that flag, the name is checked
    /// just before a plain rename.
    pub fn rename_new(&self, from: &CStr, dest: &Dir, to: &CStr) -> io::Result<()> {
        // SAFETY: as in `rename_to`; the flag is a constant the kernel knows.
        let rc = unsafe {
            libc::renameat2(
                self.fd.as_raw_fd(),
                from.as_ptr(),
                dest.fd.as_raw_fd(),
                to.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        match check(rc) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                match dest.entry(to)? {
                    Existing::Absent => self.rename_to(from, dest, to),
                    _ => Err(io::Error::from_raw_os_error(libc::EEXIST)),
                }
            }
            other => other.map(|_| ()),
        }
    }

    /// The device and inode of this folder.
    pub fn id(&self) -> io::Result<(u64, u64)> {
        let mut st = MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat fills the stat buffer we own from an open descriptor.
        check(unsafe { libc::fstat(self.fd.as_raw_fd(), st.as_mut_ptr()) })?;
        // SAFETY: fstat succeeded, so the buffer is initialised.
        let st = unsafe { st.assume_init() };
        // The widths of dev_t and ino_t vary between platforms.
        #[allow(clippy::unnecessary_cast)]
        Ok((st.st_dev as u64, st.st_ino as u64))
    }

    /// The status of `name`, not following a link.
    pub fn stat(&self, name: &CStr) -> io::Result<libc::stat> {
        let mut st = MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstatat fills the stat buffer we own; `name` is valid.
        check(unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        // SAFETY: fstatat succeeded, so the buffer is initialised.
        Ok(unsafe { st.assume_init() })
    }

    /// Makes the symbolic link `name` holding `target`, which is data:
    /// nothing here or later reads through it.
    pub fn symlink(&self, target: &CStr, name: &CStr) -> io::Result<()> {
        // SAFETY: both strings are valid; symlinkat only creates an entry.
        check(unsafe { libc::symlinkat(target.as_ptr(), self.fd.as_raw_fd(), name.as_ptr()) })
            .map(|_| ())
    }

    /// What the symbolic link `name` holds.
    pub fn read_link(&self, name: &CStr) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
        // SAFETY: the buffer is ours and its length is passed; readlinkat
        // writes at most that many bytes and never follows the link.
        let n = unsafe {
            libc::readlinkat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(n as usize);
        Ok(buf)
    }

    /// Makes `to` in `dest` another name of the file `name` here (a link
    /// at `name` is linked itself, never followed).
    pub fn hard_link(&self, name: &CStr, dest: &Dir, to: &CStr) -> io::Result<()> {
        fail::fail_point!("restore::linkat", |_| Err(io::Error::from_raw_os_error(
            libc::EPERM
        )));
        // SAFETY: both names are valid and both descriptors open; with no
        // flags linkat does not dereference a link.
        check(unsafe {
            libc::linkat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                dest.fd.as_raw_fd(),
                to.as_ptr(),
                0,
            )
        })
        .map(|_| ())
    }

    /// Gives the entry `name` itself (a link is not followed) an owner
    /// and an mtime.
    pub fn set_link_attrs(
        &self,
        name: &CStr,
        owner: Option<(u32, u32)>,
        mtime: Option<(i64, u32)>,
    ) -> io::Result<()> {
        if let Some((uid, gid)) = owner {
            // SAFETY: `name` is valid; the flag makes fchownat act on a
            // link itself.
            check(unsafe {
                libc::fchownat(
                    self.fd.as_raw_fd(),
                    name.as_ptr(),
                    uid,
                    gid,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            })?;
        }
        if let Some(t) = mtime {
            let times = times(t);
            // SAFETY: `name` is valid and `times` holds two timespecs.
            check(unsafe {
                libc::utimensat(
                    self.fd.as_raw_fd(),
                    name.as_ptr(),
                    times.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            })?;
        }
        Ok(())
    }

    /// The names in this folder (without `.` and `..`), at most `limit`.
    pub fn names(&self, limit: usize) -> io::Result<Vec<CString>> {
        // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor that fdopendir
        // takes over (closedir closes it); readdir's entries are read
        // before the next call; errno is reset before each readdir so its
        // end is told from its failure.
        unsafe {
            let fd = check(libc::fcntl(self.fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0))?;
            let dirp = libc::fdopendir(fd);
            if dirp.is_null() {
                let e = io::Error::last_os_error();
                libc::close(fd);
                return Err(e);
            }
            libc::rewinddir(dirp);
            let mut out = Vec::new();
            // Bounded by the folder's entries and by `limit`.
            let result = loop {
                if out.len() >= limit {
                    break Ok(());
                }
                *libc::__errno_location() = 0;
                let ent = libc::readdir(dirp);
                if ent.is_null() {
                    let e = io::Error::last_os_error();
                    break match e.raw_os_error() {
                        Some(0) | None => Ok(()),
                        Some(_) => Err(e),
                    };
                }
                let name = CStr::from_ptr((*ent).d_name.as_ptr());
                if name.to_bytes() != b"." && name.to_bytes() != b".." {
                    out.push(name.to_owned());
                }
            };
            libc::closedir(dirp);
            result.map(|()| out)
        }
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The target folder, with the folder of the last file kept open (files of
/// one folder usually come one after another).
pub struct Target {
    root: Dir,
    path: PathBuf,
    last: Option<(Vec<CString>, Dir)>,
}

/// A path below the target for messages.
pub fn shown(parts: &[CString]) -> String {
    let bytes: Vec<u8> = parts
        .iter()
        .map(|p| p.as_bytes())
        .collect::<Vec<_>>()
        .join(&b'/');
    crate::names::display(&bytes, false)
}

impl Target {
    /// Opens the target, creating it (and its parents: a path the user
    /// gave, so trusted) when missing.
    pub fn open(path: &Path) -> io::Result<Target> {
        std::fs::create_dir_all(path)?;
        Ok(Target {
            root: Dir::open(path)?,
            path: path.into(),
            last: None,
        })
    }

    /// Where the target is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open folder at `parents` below the target, creating the missing
    /// ones one component at a time, each checked without following links.
    pub fn folder(&mut self, parents: &[CString]) -> Result<&Dir, Blocked> {
        if parents.is_empty() {
            return Ok(&self.root);
        }
        if self.last.as_ref().is_none_or(|(p, _)| p != parents) {
            self.last = None;
            let mut cur: Option<Dir> = None;
            for (i, name) in parents.iter().enumerate() {
                let here = || shown(&parents[..=i]);
                let dir = cur.as_ref().unwrap_or(&self.root);
                let create = match dir.entry(name) {
                    Ok(Existing::Absent) => true,
                    Ok(Existing::Folder) => false,
                    Ok(Existing::Symlink) => return Err(Blocked::Symlink(here())),
                    Ok(_) => return Err(Blocked::NotAFolder(here())),
                    Err(e) => return Err(Blocked::Io(here(), e)),
                };
                let next = dir.subdir(name, create).map_err(|e| {
                    if e.raw_os_error() == Some(libc::ELOOP) {
                        Blocked::Symlink(here())
                    } else if e.raw_os_error() == Some(libc::ENOTDIR) {
                        Blocked::NotAFolder(here())
                    } else {
                        Blocked::Io(here(), e)
                    }
                })?;
                cur = Some(next);
            }
            // `parents` is not empty, so `cur` is set.
            if let Some(d) = cur {
                self.last = Some((parents.to_vec(), d));
            }
        }
        match &self.last {
            Some((_, d)) => Ok(d),
            None => Ok(&self.root),
        }
    }

    /// Removes the private temp folders that earlier runs left (killed, or
    /// stopped by a power cut), and only those: see [`Scratch`]. A folder
    /// that merely has such a name (restored data, or the user's) is kept.
    /// Returns how many were removed.
    pub fn clean_leftovers(&self) -> io::Result<u64> {
        let mut removed = 0;
        // Bounded by the entries of the target's top folder.
        for name in self.root.names(usize::MAX)? {
            if !name.to_bytes().starts_with(SCRATCH_PREFIX.as_bytes())
                || self.root.entry(&name)? != Existing::Folder
            {
                continue;
            }
            if Scratch::remove_if_leftover(&self.root, &name) {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Moves the files `names` of the earlier run's private folder `from`
    /// (a leftover: see [`Scratch`]) into this run's, under the same
    /// names; whether all of them were moved. A folder that is not a
    /// leftover (a run still holding it, a copy restored from a disc, one
    /// made by hand) gives nothing.
    pub fn adopt(&self, from: &CStr, names: &[CString], into: &Scratch) -> bool {
        let Some((dir, _lock)) = Scratch::open_leftover(&self.root, from) else {
            return false;
        };
        let mut all = true;
        for n in names {
            all &= dir.rename_new(n, &into.dir, n).is_ok();
        }
        all && into.dir.sync().is_ok()
    }

    /// Makes this run's private temp folder at the top of the target, with
    /// a random name that nothing in the target has and for which `taken`
    /// (a top-level name the run will write) is false.
    pub fn scratch(&self, taken: &dyn Fn(&[u8]) -> bool) -> io::Result<Scratch> {
        Scratch::create(&self.root, taken)
    }

    /// The open top folder of the target.
    pub fn root(&self) -> &Dir {
        &self.root
    }

    /// Flushes the target's filesystem (`syncfs`), making every rename and
    /// new folder so far durable in one call.
    pub fn sync(&self) -> io::Result<()> {
        // SAFETY: syncfs takes a valid open descriptor, owned by `root`.
        check(unsafe { libc::syncfs(self.root.fd.as_raw_fd()) }).map(|_| ())
    }
}

/// The access time left as it is and the modification time `t`.
fn times(t: (i64, u32)) -> [libc::timespec; 2] {
    [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: t.0 as libc::time_t,
            tv_nsec: t.1 as libc::c_long,
        },
    ]
}

/// Gives the open file or folder `fd` an owner (`None` for a number left
/// as it is).
pub fn set_owner(fd: BorrowedFd<'_>, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    fail::fail_point!("restore::chown", |_| Err(io::Error::from_raw_os_error(
        libc::EPERM
    )));
    // `-1` leaves a number as it is.
    let (uid, gid) = (uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX));
    // SAFETY: fchown on a descriptor the caller holds open.
    check(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) }).map(|_| ())
}

/// Gives the open file or folder `fd` its permission bits.
pub fn set_mode(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: fchmod on a descriptor the caller holds open.
    check(unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) }).map(|_| ())
}

/// Gives the open file or folder `fd` the exact mtime `t` (seconds,
/// nanoseconds).
pub fn set_mtime(fd: BorrowedFd<'_>, t: (i64, u32)) -> io::Result<()> {
    let times = times(t);
    // SAFETY: futimens on a descriptor the caller holds open, with two
    // timespecs.
    check(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) }).map(|_| ())
}

/// A name component as a C string (checked by the plan: no NUL inside).
pub fn c_name(bytes: &[u8]) -> Option<CString> {
    CString::new(bytes).ok()
}

/// How the names of private temp folders begin.
pub const SCRATCH_PREFIX: &str = ".dbackup-tmp-";

/// The file a private temp folder holds first, saying whose it is.
const MARKER: &str = "DBACKUP-RESTORE-TEMP";

/// A run's private temp folder, `.dbackup-tmp-<16 hex digits>` at the top
/// of the target: every file is written here under a number, then renamed
/// to its own name, so a temp file never shares a folder with a restored
/// name and a name on a disc can never be taken for a temp file.
///
/// A name on a disc can still be `.dbackup-tmp-...` itself. So a folder is
/// known as a leftover only by its marker file: it names the device and
/// inode of the folder it was made in, which a copy of it (restored from
/// a disc, or made by hand) does not have, and the run holds a lock on it
/// (`flock`), which dies with the process, so a restore running in the same
/// target at the same time keeps its folder.
pub struct Scratch {
    dir: Dir,
    name: CString,
    id: (u64, u64),
    /// Held open with its lock for as long as the run.
    _marker: File,
    next: std::cell::Cell<u64>,
}

fn marker_text(id: (u64, u64)) -> String {
    format!(
        "dbackup-restore private temp folder (device {} inode {}); \
         removed by the next restore into this folder\n",
        id.0, id.1
    )
}

fn random_suffix() -> u64 {
    let mut b = [0u8; 8];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
    if read.is_ok() {
        return u64::from_le_bytes(b);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seed = format!(
        "{}{:?}{:?}",
        std::process::id(),
        now,
        std::thread::current().id()
    );
    xxhash_rust::xxh3::xxh3_64(seed.as_bytes())
}

fn lock(f: &File, wait: bool) -> bool {
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    // SAFETY: flock on a descriptor we hold open.
    unsafe { libc::flock(f.as_raw_fd(), op) == 0 }
}

impl Scratch {
    fn create(root: &Dir, taken: &dyn Fn(&[u8]) -> bool) -> io::Result<Scratch> {
        // Bounded: a handful of random names; all of them taken means
        // something other than chance is at work.
        for _ in 0..16 {
            let name = format!("{SCRATCH_PREFIX}{:016x}", random_suffix());
            if taken(name.as_bytes()) {
                continue;
            }
            let name = CString::new(name).map_err(io::Error::other)?;
            // SAFETY: `name` is valid; mkdirat only creates an entry.
            let rc = unsafe { libc::mkdirat(root.fd.as_raw_fd(), name.as_ptr(), 0o700) };
            if rc != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EEXIST) {
                    continue;
                }
                return Err(e);
            }
            let made = (|| {
                let dir = root.subdir(&name, false)?;
                let id = dir.id()?;
                let mut marker =
                    dir.create_new(&CString::new(MARKER).map_err(io::Error::other)?)?;
                lock(&marker, true);
                std::io::Write::write_all(&mut marker, marker_text(id).as_bytes())?;
                // Durable before any temp file is written: after a power
                // cut the folder has its whole marker or no temp files.
                marker.sync_all()?;
                Ok(Scratch {
                    dir,
                    name: name.clone(),
                    id,
                    _marker: marker,
                    next: std::cell::Cell::new(0),
                })
            })();
            if made.is_err() {
                let _ = Scratch::remove_if_leftover(root, &name);
            }
            return made;
        }
        Err(io::Error::other(
            "no free name for a private temp folder after 16 tries",
        ))
    }

    /// The folder.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// The device of the folder: a file can be renamed from here only to a
    /// folder on the same one.
    pub fn device(&self) -> u64 {
        self.id.0
    }

    /// A fresh temp name in the folder (a number: never the marker's).
    pub fn temp_name(&self) -> CString {
        let n = self.next.get();
        self.next.set(n + 1);
        // Digits and ASCII only: never contains NUL.
        CString::new(format!("{n}.tmp")).unwrap_or_default()
    }

    /// Removes the folder at the end of the run, with anything left in it;
    /// with `keep` true (a split file partly put together, to resume) only
    /// its temp files go, and the folder stays with its marker for the
    /// next run to find (`keep` says which of its names stay).
    pub fn remove(self, root: &Dir, keep: &dyn Fn(&CStr) -> bool) {
        let Scratch { dir, name, .. } = self;
        let marker = CString::new(MARKER).unwrap_or_default();
        let names = dir.names(usize::MAX).unwrap_or_default();
        if names.iter().any(|n| *n != marker && keep(n)) {
            // Bounded by the folder's entries.
            for n in names.iter().filter(|n| **n != marker && !keep(n)) {
                let _ = dir.remove(n);
            }
            let _ = dir.sync();
            return;
        }
        Scratch::empty(&dir);
        let _ = root.remove_dir(&name);
    }

    /// The earlier runs' private folders that are leftovers (their whole
    /// marker naming the very folder, and no run holding them), by name,
    /// each open: read-only, for a plan to see what they kept. Missing
    /// target: none.
    pub fn leftovers(target: &Path) -> Vec<(CString, Dir)> {
        let Ok(root) = Dir::open(target) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        // Bounded by the entries of the target's top folder.
        for name in root.names(usize::MAX).unwrap_or_default() {
            if !name.to_bytes().starts_with(SCRATCH_PREFIX.as_bytes())
                || root.entry(&name).ok() != Some(Existing::Folder)
            {
                continue;
            }
            if let Some((dir, _lock)) = Scratch::open_leftover(&root, &name) {
                out.push((name, dir));
            }
        }
        out
    }

    /// The folder `name` in `root` when it is a leftover of a run that is
    /// over, with its marker locked.
    fn open_leftover(root: &Dir, name: &CStr) -> Option<(Dir, File)> {
        let dir = root.subdir(name, false).ok()?;
        let id = dir.id().ok()?;
        let marker = CString::new(MARKER).unwrap_or_default();
        let mut f = dir.open_file(&marker).ok()?;
        let expected = marker_text(id);
        let mut text = Vec::new();
        let read = std::io::Read::read_to_end(
            &mut std::io::Read::take(&mut f, expected.len() as u64 + 1),
            &mut text,
        );
        (read.is_ok() && text == expected.as_bytes() && lock(&f, false)).then_some((dir, f))
    }

    /// Removes every file in `dir`, the marker last.
    fn empty(dir: &Dir) {
        let marker = CString::new(MARKER).unwrap_or_default();
        // Bounded by the folder's entries: temp files are never folders.
        for n in dir.names(usize::MAX).unwrap_or_default() {
            if n != marker {
                let _ = dir.remove(&n);
            }
        }
        let _ = dir.remove(&marker);
    }

    /// Removes `name` in `root` if it is a private temp folder of a run
    /// that is over; whether it did.
    fn remove_if_leftover(root: &Dir, name: &CStr) -> bool {
        let Ok(dir) = root.subdir(name, false) else {
            return false;
        };
        let Ok(id) = dir.id() else { return false };
        let marker = CString::new(MARKER).unwrap_or_default();
        let held = match dir.open_file(&marker) {
            Err(_) => {
                // Killed between making the folder and its marker: an
                // empty folder, which rmdir alone removes.
                return dir.names(1).is_ok_and(|n| n.is_empty()) && root.remove_dir(name).is_ok();
            }
            Ok(mut f) => {
                let mut text = Vec::new();
                let expected = marker_text(id);
                let read = std::io::Read::read_to_end(
                    &mut std::io::Read::take(&mut f, expected.len() as u64 + 1),
                    &mut text,
                );
                // Only the whole marker: a power cut before it was made
                // durable leaves a folder of a short marker and nothing
                // else, kept rather than risk taking a file of that name
                // for ours.
                let whole = read.is_ok() && text == expected.as_bytes();
                (whole && lock(&f, false)).then_some(f)
            }
        };
        // The lock is held until the folder is gone.
        let Some(_lock) = held else {
            return false;
        };
        Scratch::empty(&dir);
        root.remove_dir(name).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> CString {
        CString::new(s).unwrap()
    }

    #[test]
    fn folders_are_created_and_links_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = tmp.path().join("t");
        let mut t = Target::open(&root).unwrap();
        let d = t.folder(&[c("a"), c("b")]).unwrap();
        let mut f = d.create_new(&c("x")).unwrap();
        std::io::Write::write_all(&mut f, b"hi").unwrap();
        assert_eq!(std::fs::read(root.join("a/b/x")).unwrap(), b"hi");

        std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
        assert!(matches!(
            t.folder(&[c("link"), c("b")]),
            Err(Blocked::Symlink(p)) if p == "link"
        ));
        std::fs::write(root.join("file"), b"").unwrap();
        assert!(matches!(
            t.folder(&[c("file")]),
            Err(Blocked::NotAFolder(_))
        ));
        let d = t.folder(&[]).unwrap();
        assert_eq!(d.entry(&c("link")).unwrap(), Existing::Symlink);
        assert!(d.create_new(&c("link")).is_err());
        assert!(d.open_file(&c("link")).is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_new_name_is_never_taken_from_a_file_that_got_there_first() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("t");
        let mut t = Target::open(&root).unwrap();
        let d = t.folder(&[]).unwrap();
        std::fs::write(root.join("new"), b"ours").unwrap();
        std::fs::write(root.join("theirs"), b"theirs").unwrap();
        let e = d.rename_new(&c("new"), d, &c("theirs")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        assert_eq!(std::fs::read(root.join("theirs")).unwrap(), b"theirs");
        assert_eq!(std::fs::read(root.join("new")).unwrap(), b"ours");
        d.rename_new(&c("new"), d, &c("free")).unwrap();
        assert_eq!(std::fs::read(root.join("free")).unwrap(), b"ours");
        // With --overwrite the file there is replaced, as asked.
        std::fs::write(root.join("new"), b"ours again").unwrap();
        d.rename_to(&c("new"), d, &c("theirs")).unwrap();
        assert_eq!(std::fs::read(root.join("theirs")).unwrap(), b"ours again");
    }
}
