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
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
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

    /// Renames `from` to `to` within this folder, replacing a file at `to`.
    pub fn rename(&self, from: &CStr, to: &CStr) -> io::Result<()> {
        let fd = self.fd.as_raw_fd();
        // SAFETY: both names are valid NUL-terminated strings; renameat
        // acts on the entries themselves, never through links.
        check(unsafe { libc::renameat(fd, from.as_ptr(), fd, to.as_ptr()) }).map(|_| ())
    }

    /// Removes the entry `name` (a link itself, never what it points to).
    pub fn remove(&self, name: &CStr) -> io::Result<()> {
        // SAFETY: `name` is valid; unlinkat removes only the entry.
        check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), name.as_ptr(), 0) }).map(|_| ())
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

    /// Flushes the target's filesystem (`syncfs`), making every rename and
    /// new folder so far durable in one call.
    pub fn sync(&self) -> io::Result<()> {
        // SAFETY: syncfs takes a valid open descriptor, owned by `root`.
        check(unsafe { libc::syncfs(self.root.fd.as_raw_fd()) }).map(|_| ())
    }
}

/// A name component as a C string (checked by the plan: no NUL inside).
pub fn c_name(bytes: &[u8]) -> Option<CString> {
    CString::new(bytes).ok()
}

/// The temp name a file is written under before it is renamed into place:
/// hidden, short (a long original name stays within NAME_MAX), and the
/// same for the same version on every run, so a run killed midway leaves
/// a leftover that the next run replaces.
pub fn temp_name(id: i64) -> CString {
    // Digits and ASCII only: never contains NUL.
    CString::new(format!(".dbackup-restore-{id}.tmp")).unwrap_or_default()
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
}
