//! Our temp files and folders outside the workdir: a disc manifest copied
//! out of an image (SQLite opens paths, not byte ranges), a rebuild's work
//! folder (par2 works in a folder), a parity check's links. They need
//! names, so a `kill -9` or a power cut would leave them behind, and a
//! rebuild's folder holds a whole disc image.
//!
//! So each one is a lease: while its owner lives it holds an exclusive
//! `flock(2)` on it (on the file itself, or on a marker file inside the
//! folder), and whoever next makes a lease of the same prefix in the same
//! folder first sweeps the leftovers. A leftover is removed only when all
//! of these hold: its name is the prefix, 6 letters or digits, and the
//! suffix; it is a file (a folder holding our marker) of our own user, not
//! a symlink; it was last changed more than [`STALE`] ago (a lease is
//! locked microseconds after it is made, so no young one is taken); and
//! its lock is free, so no living process uses it. A user's file of such
//! a name, or a folder without our marker, is left alone. The sweep lists
//! the folder once per prefix and process: bounded by that listing.
//!
//! The lock must be `flock`: SQLite's own locks are `fcntl` locks, which a
//! process drops when it closes any descriptor of the file, and an
//! immutable open takes none. The `tempfile` crate makes the random names;
//! it has no notion of a lock or a sweep, hence this module.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// The marker inside a leased folder; its lock is the folder's.
pub const MARKER: &str = ".dbackup-lease";

/// How old an unlocked leftover must be before a sweep removes it.
pub const STALE: Duration = Duration::from_secs(60);

/// The random part of a lease's name: as many letters and digits.
const RANDOM: usize = 6;

/// A leased temp file or folder, removed when dropped.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
    /// The locked file: the temp file itself, or the folder's marker.
    lock: File,
    folder: bool,
}

impl Lease {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A leased file, open for reading and writing.
    pub fn file(&self) -> &File {
        &self.lock
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Never follows a symlink inside: links to discs stay untouched.
        let _ = if self.folder {
            std::fs::remove_dir_all(&self.path)
        } else {
            std::fs::remove_file(&self.path)
        };
    }
}

/// A new empty file `PREFIX` + random + `SUFFIX` in the system's temp
/// folder, mode 0600, locked.
pub fn file(prefix: &str, suffix: &str) -> io::Result<Lease> {
    let parent = std::env::temp_dir();
    sweep_once(&parent, prefix, suffix);
    let named = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(suffix)
        .rand_bytes(RANDOM)
        .make_in(&parent, |p| {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(p)?;
            // Made, so ours to remove if it cannot be locked.
            lock(&f, false).inspect_err(|_| {
                let _ = std::fs::remove_file(p);
            })?;
            Ok(f)
        })?;
    let (lock, path) = named.into_parts();
    let path = path.keep().map_err(|e| e.error)?;
    Ok(Lease {
        path,
        lock,
        folder: false,
    })
}

/// A new empty folder `PREFIX` + random in the system's temp folder.
pub fn folder(prefix: &str) -> io::Result<Lease> {
    folder_in(&std::env::temp_dir(), prefix)
}

/// A new folder `PREFIX` + random in `parent`, holding only its locked
/// marker.
pub fn folder_in(parent: &Path, prefix: &str) -> io::Result<Lease> {
    sweep_once(parent, prefix, "");
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .rand_bytes(RANDOM)
        .tempdir_in(parent)?;
    let marker = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.path().join(MARKER))?;
    lock(&marker, false)?;
    Ok(Lease {
        path: dir.keep(),
        lock: marker,
        folder: true,
    })
}

/// Takes the exclusive lock on `f`; with `try_only`, fails at once
/// (`WouldBlock`) when another holds it.
fn lock(f: &File, try_only: bool) -> io::Result<()> {
    let op = libc::LOCK_EX | if try_only { libc::LOCK_NB } else { 0 };
    loop {
        // SAFETY: flock on a descriptor that `f` owns for the call.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Sweeps `parent` for `prefix` once in this process.
fn sweep_once(parent: &Path, prefix: &str, suffix: &str) {
    static SWEPT: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());
    let key = (parent.to_path_buf(), format!("{prefix}\0{suffix}"));
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
        if swept.contains(&key) {
            return;
        }
        swept.push(key);
    }
    sweep(parent, prefix, suffix);
}

/// Removes the leftovers of dead owners in `parent` (see the module
/// header); returns how many. Errors only skip: a sweep never fails the
/// work that asked for it.
pub fn sweep(parent: &Path, prefix: &str, suffix: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_lease_name(name, prefix, suffix) && sweep_one(&entry.path()) {
            removed += 1;
        }
    }
    removed
}

/// Removes one leftover if it is a dead owner's (see the module header).
/// Every check is made on what was opened, never followed through a link,
/// and the name must still be that file or folder just before it goes:
/// in a folder others may write to, a name swapped for another folder of
/// ours is not removed (but in the instant between that last check and
/// the removal).
fn sweep_one(path: &Path) -> bool {
    use std::os::fd::FromRawFd;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let Ok(seen) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let folder = seen.is_dir();
    if !folder && !seen.is_file() {
        return false;
    }
    // A file is opened for writing: over NFS an exclusive flock needs it.
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | if folder { libc::O_DIRECTORY } else { 0 };
    let Ok(handle) = std::fs::OpenOptions::new()
        .read(true)
        .write(!folder)
        .custom_flags(flags)
        .open(path)
    else {
        return false;
    };
    let Ok(meta) = handle.metadata() else {
        return false;
    };
    if meta.is_dir() != folder || meta.uid() != me {
        return false;
    }
    let lock_file = if folder {
        let Ok(marker) = std::ffi::CString::new(MARKER) else {
            return false;
        };
        // SAFETY: a NUL-terminated name, relative to the folder we hold
        // open; the descriptor returned is owned by the File made here.
        let fd = unsafe {
            libc::openat(
                handle.as_raw_fd(),
                marker.as_ptr(),
                libc::O_RDWR | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return false;
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        unsafe { File::from_raw_fd(fd) }
    } else {
        handle
    };
    let Ok(lmeta) = lock_file.metadata() else {
        return false;
    };
    if !lmeta.is_file() || lmeta.uid() != me {
        return false;
    }
    let now = SystemTime::now();
    let young = |m: &std::fs::Metadata| {
        m.modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_none_or(|age| age < STALE)
    };
    if young(&meta) || young(&lmeta) || lock(&lock_file, true).is_err() {
        return false;
    }
    let same = std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
    if !same {
        return false;
    }
    if folder {
        std::fs::remove_dir_all(path).is_ok()
    } else {
        std::fs::remove_file(path).is_ok()
    }
}

/// Whether `name` is `prefix`, [`RANDOM`] ASCII letters or digits, then
/// `suffix`.
pub fn is_lease_name(name: &str, prefix: &str, suffix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|r| r.strip_suffix(suffix))
        .is_some_and(|r| r.len() == RANDOM && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As if `path` (itself, a link too) had last changed `secs` ago.
    fn age(path: &Path, secs: u64) {
        use std::os::unix::ffi::OsStrExt;
        let t = SystemTime::now() - Duration::from_secs(secs);
        let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as libc::time_t;
        let times = [libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        }; 2];
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path and two timespecs, for the call.
        let rc = unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                c.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    }

    #[test]
    fn names_are_ours_only_in_the_exact_shape() {
        assert!(is_lease_name("dbackup-x-Ab12Cd.db", "dbackup-x-", ".db"));
        for n in [
            "dbackup-x-Ab12C.db",
            "dbackup-x-Ab12Cde.db",
            "dbackup-x-Ab-2Cd.db",
            "dbackup-x-Ab12Cd.db.keep",
            "dbackup-x-Ab12Cd",
            "dbackup-x-.db",
            "xdbackup-x-Ab12Cd.db",
        ] {
            assert!(!is_lease_name(n, "dbackup-x-", ".db"), "{n}");
        }
    }

    #[test]
    fn a_dead_owners_file_goes_a_live_ones_and_young_ones_and_users_stay() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        // Dead: unlocked and old.
        let dead = p.join("dbackup-t-aaaaaa.db");
        std::fs::write(&dead, b"x").unwrap();
        age(&dead, 3600);
        // Alive: locked by an open descriptor, old.
        let alive = p.join("dbackup-t-bbbbbb.db");
        std::fs::write(&alive, b"x").unwrap();
        age(&alive, 3600);
        let held = File::open(&alive).unwrap();
        lock(&held, false).unwrap();
        // Young: unlocked, just made.
        let young = p.join("dbackup-t-cccccc.db");
        std::fs::write(&young, b"x").unwrap();
        // The user's: not our shape; or a link, old itself, to an old
        // file that is not of our shape either.
        let users = p.join("dbackup-t-keep.db");
        std::fs::write(&users, b"x").unwrap();
        age(&users, 3600);
        let link = p.join("dbackup-t-dddddd.db");
        std::os::unix::fs::symlink(&users, &link).unwrap();
        age(&link, 3600);
        assert_eq!(sweep(p, "dbackup-t-", ".db"), 1);
        assert!(!dead.exists());
        for kept in [&alive, &young, &users] {
            assert!(kept.exists(), "{}", kept.display());
        }
        assert!(link.symlink_metadata().is_ok());
        drop(held);
        assert_eq!(sweep(p, "dbackup-t-", ".db"), 1);
        assert!(!alive.exists());
    }

    #[test]
    fn a_folder_goes_only_with_its_marker_and_never_through_its_links() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let outside = p.join("discs");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("disc.iso"), b"disc").unwrap();
        let folder = |name: &str, marker: bool| {
            let f = p.join(name);
            std::fs::create_dir(&f).unwrap();
            std::fs::write(f.join("photo.jpg"), b"mine").unwrap();
            if marker {
                std::fs::write(f.join(MARKER), b"").unwrap();
                age(&f.join(MARKER), 3600);
            }
            age(&f, 3600);
            f
        };
        // Dead: marked, old, unlocked; it holds links to a folder and a file.
        let dead = folder("dbackup-r-aaaaaa", true);
        std::os::unix::fs::symlink(&outside, dead.join("member")).unwrap();
        std::os::unix::fs::symlink(outside.join("disc.iso"), dead.join("image")).unwrap();
        age(&dead, 3600);
        // The user's: no marker.
        let users = folder("dbackup-r-bbbbbb", false);
        // Alive: marked, old, locked.
        let alive = folder("dbackup-r-cccccc", true);
        let held = File::open(alive.join(MARKER)).unwrap();
        lock(&held, false).unwrap();
        // A marker that is a link to a file of the user's.
        let linked = folder("dbackup-r-dddddd", false);
        let elsewhere = p.join("notes.txt");
        std::fs::write(&elsewhere, b"mine").unwrap();
        age(&elsewhere, 3600);
        std::os::unix::fs::symlink(&elsewhere, linked.join(MARKER)).unwrap();
        age(&linked.join(MARKER), 3600);
        age(&linked, 3600);
        // A link, old, to a marked folder of ours elsewhere.
        let target = p.join("keep");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join(MARKER), b"").unwrap();
        age(&target.join(MARKER), 3600);
        age(&target, 3600);
        let link = p.join("dbackup-r-eeeeee");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        age(&link, 3600);
        assert_eq!(sweep(p, "dbackup-r-", ""), 1);
        assert!(!dead.exists());
        assert_eq!(std::fs::read(outside.join("disc.iso")).unwrap(), b"disc");
        for kept in [&users, &alive, &linked] {
            assert!(kept.join("photo.jpg").exists(), "{}", kept.display());
        }
        assert!(elsewhere.exists() && target.join(MARKER).exists());
        assert!(link.symlink_metadata().is_ok());
        drop(held);
        assert_eq!(sweep(p, "dbackup-r-", ""), 1);
        assert!(!alive.exists());
    }

    #[test]
    fn a_lease_is_locked_while_held_and_gone_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let lease = folder_in(dir.path(), "dbackup-l-").unwrap();
        let path = lease.path().to_path_buf();
        assert!(path.join(MARKER).is_file());
        let other = File::open(path.join(MARKER)).unwrap();
        assert!(lock(&other, true).is_err());
        drop(lease);
        assert!(!path.exists());
    }
}
