//! Giving back the tree (`docs/tree.md`) once the files are in place:
//! the recorded mode, owner and exact mtime of a file or folder, then the
//! entries in their order: folders (empty ones too), hard links (linked
//! to the restored file of their target, or a copy of it when no link can
//! be made), symbolic links last, then folder modes and mtimes, deepest
//! first. Every link and hard link is made in the run's private folder,
//! given its owner and mtime there, and renamed into place, never
//! replacing unasked; a link's target is data, and nothing is ever read or
//! written through a link, restored or found. Running it again changes
//! nothing that is already as recorded.

use std::collections::HashMap;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};

use md5::{Digest, Md5};

use crate::catalog::manifest::{Attrs, EntryKind, FileAttrs, Tree};
use crate::owners::Owners;

use super::entries::{entry_failure, PlannedEntry};
use super::execute::{blocked, fail, split_name, write_fail, Failure, Run};
use super::plan::name_parts;
use super::report::{FailKind, Report};
use super::target::{self, Dir, Existing, Target};
use super::{Event, RestoreOptions};

/// How the recorded modes and owners are given.
pub(super) struct Attributes<'a> {
    tree: &'a Tree<'a>,
    mode: bool,
    owner: bool,
    owners: Owners,
    /// `attrs` rows that could not be used.
    pub(super) invalid: u64,
    /// Owners and modes the target's filesystem refused (one without
    /// owners or modes, as FAT): the file is restored all the same.
    pub(super) owners_refused: u64,
    pub(super) modes_refused: u64,
}

impl<'a> Attributes<'a> {
    pub(super) fn new(opts: &RestoreOptions, tree: &'a Tree<'a>) -> Attributes<'a> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        Attributes {
            tree,
            mode: !opts.no_mode,
            owner: root && !opts.no_owner,
            owners: Owners::new(),
            invalid: 0,
            owners_refused: 0,
            modes_refused: 0,
        }
    }

    /// The owner to give, by name when this machine knows it, else by
    /// number; `None` when owners are not restored.
    fn owner_of(&mut self, a: &Attrs) -> Option<(Option<u32>, Option<u32>)> {
        if !self.owner || (a.uid.is_none() && a.gid.is_none()) {
            return None;
        }
        let uid = a
            .uid
            .map(|u| self.owners.restore_uid(a.owner.as_deref(), u));
        let gid = a.gid.map(|g| self.owners.restore_gid(a.grp.as_deref(), g));
        Some((uid, gid))
    }

    /// Gives an open file or folder its recorded owner, mode and mtime:
    /// the owner first (a change of owner clears setuid), and a regular
    /// file whose owner is not given loses setuid and setgid. An owner or
    /// mode the filesystem refuses is counted, not an error (the content
    /// is what matters); a refused mtime is an error, as for any file.
    pub(super) fn give(
        &mut self,
        fd: BorrowedFd<'_>,
        a: &Attrs,
        regular: bool,
    ) -> std::io::Result<()> {
        let mut owner = self.owner_of(a);
        if let Some((uid, gid)) = owner {
            if target::set_owner(fd, uid, gid).is_err() {
                self.owners_refused += 1;
                owner = None;
            }
        }
        let owned = owner.is_some_and(|(u, g)| u.is_some() && g.is_some());
        if let (true, Some(mode)) = (self.mode, a.mode) {
            let mode = if regular && !owned {
                mode & !0o6000
            } else {
                mode
            };
            if target::set_mode(fd, mode).is_err() {
                self.modes_refused += 1;
            }
        }
        if let Some(t) = a.mtime {
            target::set_mtime(fd, t)?;
        }
        Ok(())
    }

    /// Gives a restored file (open, written and checked) the `attrs` of
    /// its version, if it has any.
    pub(super) fn give_file(&mut self, file: &std::fs::File, id: i64) -> Result<(), Failure> {
        let a = match self.tree.file_attrs(id) {
            Ok(FileAttrs::Some(a)) => a,
            Ok(FileAttrs::None) => return Ok(()),
            // A row that cannot be used (or a lookup the manifest's work
            // budget stopped): the file keeps its recorded mtime.
            Ok(FileAttrs::Invalid) | Err(_) => {
                self.invalid += 1;
                return Ok(());
            }
        };
        self.give(file.as_fd(), &a, true)
            .map_err(|e| write_fail("giving it its mode, owner and mtime", e))
    }
}

/// What making one entry came to.
enum Made {
    New,
    AlreadyThere,
    /// A hard link written as a copy of its target, and why.
    Copied(String),
}

/// How deep a name is (its count of `/`).
/// How deep a folder is: its checked components, so that `a/x` and
/// `/a/x` count alike.
fn depth(name: &[u8]) -> usize {
    name_parts(name).map_or(0, |p| p.len())
}

impl Run<'_> {
    /// Makes the plan's entries, in their order (see the module header).
    /// With `stopped`, none is made: each is counted as not reached.
    pub(super) fn entries(
        &mut self,
        report: &mut Report,
        target: &mut Target,
        stopped: bool,
        on_event: &mut dyn FnMut(Event<'_>),
    ) {
        let list = std::mem::take(&mut report.plan.entries.list);
        let fail_entry = |report: &mut Report,
                          on_event: &mut dyn FnMut(Event<'_>),
                          e: &PlannedEntry,
                          f: Failure| {
            let nr = entry_failure(e.id, &e.name, f.kind, f.reason);
            on_event(Event::Failed(&nr));
            report.failed.push(nr);
        };
        let mut dirs: Vec<&PlannedEntry> = Vec::new();
        let mut verified: HashMap<(u64, u64), bool> = HashMap::new();
        let order = [0, 1, 2].map(|phase| {
            list.iter().filter(move |e| {
                phase
                    == match e.kind {
                        EntryKind::Dir => 0,
                        EntryKind::Hardlink(_) => 1,
                        EntryKind::Symlink(_) => 2,
                    }
            })
        });
        // Bounded by the plan's entries, each made once.
        for e in order.into_iter().flatten() {
            if !stopped && report.stopped.is_none() && crate::interrupt::requested() {
                report.stopped = Some(super::report::Stopped {
                    reason: "interrupted; run the same command again to resume (what is already restored is skipped)".into(),
                    error: false,
                    interrupted: true,
                });
            }
            if stopped || report.stopped.is_some() {
                fail_entry(
                    report,
                    on_event,
                    e,
                    fail(
                        FailKind::NotReached,
                        "the run stopped before the folders and links",
                    ),
                );
                continue;
            }
            self.progress.message(format!(
                "{}: {}",
                e.kind.label(),
                crate::names::display(&e.name, true)
            ));
            let made = match &e.kind {
                EntryKind::Dir => self.dir(e, target),
                EntryKind::Hardlink(_) => self.hard_link(e, target, &mut verified),
                EntryKind::Symlink(t) => self.symlink(e, t, target),
            };
            match made {
                Ok(Made::AlreadyThere)
                    if matches!(e.kind, EntryKind::Dir)
                        && (self.opts.overwrite || self.resuming) =>
                {
                    report.tree.already_there += 1;
                    dirs.push(e);
                }
                Ok(Made::AlreadyThere) => report.tree.already_there += 1,
                Ok(Made::Copied(why)) => {
                    let name = crate::names::display(&e.name, false);
                    on_event(Event::LinkCopied {
                        name: &e.name,
                        why: &why,
                    });
                    report.tree.hardlinks_copied.push(name);
                }
                Ok(_) => match e.kind {
                    EntryKind::Dir => {
                        report.tree.dirs += 1;
                        dirs.push(e);
                    }
                    EntryKind::Hardlink(_) => report.tree.hardlinks += 1,
                    EntryKind::Symlink(_) => report.tree.symlinks += 1,
                },
                Err(f) => fail_entry(report, on_event, e, f),
            }
        }
        // Deepest first: a folder's mtime after everything in it was
        // made, its mode after nothing more needs to be written in it.
        dirs.sort_by_key(|e| std::cmp::Reverse(depth(&e.name)));
        for e in dirs {
            let given = split_name(&e.name).and_then(|(mut parts, leaf)| {
                parts.push(leaf);
                let dir = target.folder(&parts).map_err(blocked)?;
                self.attrs
                    .give(dir.as_fd(), &e.attrs, false)
                    .map_err(|err| write_fail("giving it its mode, owner and mtime", err))
            });
            if let Err(f) = given {
                fail_entry(report, on_event, e, f);
            }
        }
        report.plan.entries.list = list;
        let _ = target.sync();
    }

    /// A folder, made with the folders above it when missing. One that
    /// was there before this run is `AlreadyThere`: it keeps its own mode,
    /// owner and mtime unless `--overwrite` (or this run finishes one that
    /// was cut off, which made it), and never across a mount point.
    fn dir(&mut self, e: &PlannedEntry, target: &mut Target) -> Result<Made, Failure> {
        let (mut parts, leaf) = split_name(&e.name)?;
        parts.push(leaf);
        let dir = target.folder(&parts).map_err(blocked)?;
        if self.folders_there.contains(&e.id) {
            self.on_scratch_filesystem(dir, &parts)?;
            return Ok(Made::AlreadyThere);
        }
        Ok(Made::New)
    }

    /// The folder of `parents`, on the private folder's filesystem (an
    /// entry is made there and renamed into place).
    fn folder_here(&self, parents: &[CString], target: &mut Target) -> Result<Dir, Failure> {
        let dir = target.folder(parents).map_err(blocked)?;
        self.on_scratch_filesystem(dir, parents)?;
        dir.try_clone()
            .map_err(|e| write_fail("opening its folder", e))
    }

    /// Whether the regular file `leaf` in `dir` holds `size` bytes with
    /// MD5 `md5`, hashing each file once (by device and inode).
    fn holds(
        &mut self,
        dir: &Dir,
        leaf: &CString,
        size: u64,
        md5: &[u8; 16],
        verified: &mut HashMap<(u64, u64), bool>,
    ) -> Option<libc::stat> {
        let st = dir.stat(leaf).ok()?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_size as u64 != size {
            return None;
        }
        // The widths of dev_t and ino_t vary between platforms.
        #[allow(clippy::unnecessary_cast)]
        let key = (st.st_dev as u64, st.st_ino as u64);
        if let Some(&ok) = verified.get(&key) {
            return ok.then_some(st);
        }
        let ok = dir.open_file(leaf).ok().and_then(|f| md5_of(f).ok()) == Some(*md5);
        verified.insert(key, ok);
        ok.then_some(st)
    }

    /// A hard link: another name of its target's restored file, or a copy
    /// of that file when no link can be made.
    fn hard_link(
        &mut self,
        e: &PlannedEntry,
        target: &mut Target,
        verified: &mut HashMap<(u64, u64), bool>,
    ) -> Result<Made, Failure> {
        let Some(to) = &e.link_to else {
            return Err(fail(FailKind::LinkTarget, "its target holds no file then"));
        };
        let shown = crate::names::display(&to.name, false);
        let (tparents, tleaf) = split_name(&to.name)?;
        let src = target.folder(&tparents).map_err(|b| {
            let f = blocked(b);
            fail(
                FailKind::LinkTarget,
                format!("hard link to {shown}, which was not restored: {}", f.reason),
            )
        })?;
        let src = src
            .try_clone()
            .map_err(|e| write_fail("opening its target's folder", e))?;
        let Some(st) = self.holds(&src, &tleaf, to.size, &to.md5, verified) else {
            return Err(fail(
                FailKind::LinkTarget,
                format!("hard link to {shown}, which was not restored as recorded in this run"),
            ));
        };
        let (parents, leaf) = split_name(&e.name)?;
        let dir = self.folder_here(&parents, target)?;
        let mut replace = false;
        match dir.entry(&leaf) {
            Ok(Existing::Absent) => {}
            Ok(Existing::File { .. }) => {
                let here = dir.stat(&leaf).ok();
                let same_inode =
                    here.is_some_and(|h| h.st_dev == st.st_dev && h.st_ino == st.st_ino);
                if same_inode
                    || self
                        .holds(&dir, &leaf, to.size, &to.md5, verified)
                        .is_some()
                {
                    return Ok(Made::AlreadyThere);
                }
                if !self.opts.overwrite {
                    return Err(fail(
                        FailKind::Exists,
                        "a different file is there; kept (--overwrite replaces it)",
                    ));
                }
                replace = true;
            }
            Ok(Existing::Symlink) => {
                return Err(fail(
                    FailKind::Symlink,
                    "a symbolic link is there; it is not followed or replaced",
                ))
            }
            Ok(Existing::Folder) => return Err(fail(FailKind::InTheWay, "a folder is there")),
            Ok(Existing::Other) => return Err(fail(FailKind::InTheWay, "a special file is there")),
            Err(err) => return Err(write_fail("checking the target", err)),
        }
        let scratch = self.scratch.dir();
        let tmp = self.scratch.temp_name();
        let made = match src.hard_link(&tleaf, scratch, &tmp) {
            Ok(()) => {
                // The very file checked above, not one swapped in since.
                let linked = scratch.stat(&tmp).ok();
                if !linked.is_some_and(|l| l.st_dev == st.st_dev && l.st_ino == st.st_ino) {
                    let _ = scratch.remove(&tmp);
                    return Err(fail(
                        FailKind::LinkTarget,
                        format!("hard link to {shown}, which changed while it was linked"),
                    ));
                }
                Made::New
            }
            Err(err) => {
                self.copy_of(&src, &tleaf, &tmp, e, to.size, &to.md5)?;
                Made::Copied(format!(
                    "written as a copy of {shown}: a hard link could not be made ({err})"
                ))
            }
        };
        self.rename_in(&tmp, &dir, &leaf, replace)?;
        Ok(made)
    }

    /// Writes a copy of the restored file `leaf` of `src` under the temp
    /// name `tmp`, checked against its version's size and MD5, with the
    /// hard link's recorded attributes.
    fn copy_of(
        &mut self,
        src: &Dir,
        leaf: &CString,
        tmp: &CString,
        e: &PlannedEntry,
        size: u64,
        md5: &[u8; 16],
    ) -> Result<(), Failure> {
        let scratch = self.scratch.dir();
        let result = (|| {
            let mut from = src
                .open_file(leaf)
                .map_err(|err| write_fail("opening its target", err))?;
            let mut out = scratch
                .create_new(tmp)
                .map_err(|err| write_fail("creating a temp file", err))?;
            let mut h = Md5::new();
            let mut total = 0u64;
            // Bounded by the target file's bytes.
            loop {
                let n = match from.read(&mut self.buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(err) => return Err(write_fail("reading its target", err)),
                };
                h.update(&self.buf[..n]);
                out.write_all(&self.buf[..n])
                    .map_err(|err| write_fail("writing", err))?;
                total += n as u64;
            }
            if total != size || h.finalize()[..] != md5[..] {
                return Err(fail(
                    FailKind::LinkTarget,
                    "its target changed while it was copied",
                ));
            }
            self.attrs
                .give(out.as_fd(), &e.attrs, true)
                .map_err(|err| write_fail("giving it its mode, owner and mtime", err))?;
            out.sync_all().map_err(|err| write_fail("fsync", err))
        })();
        if result.is_err() {
            let _ = scratch.remove(tmp);
        }
        result
    }

    /// Renames the entry `tmp` of the private folder to `leaf` in `dir`:
    /// only if that name is free, unless `replace`.
    fn rename_in(
        &self,
        tmp: &CString,
        dir: &Dir,
        leaf: &CString,
        replace: bool,
    ) -> Result<(), Failure> {
        let scratch = self.scratch.dir();
        let renamed = if replace {
            scratch.rename_to(tmp, dir, leaf)
        } else {
            scratch.rename_new(tmp, dir, leaf)
        };
        renamed.map_err(|err| {
            let _ = scratch.remove(tmp);
            match err.raw_os_error() {
                Some(libc::EEXIST) => fail(
                    FailKind::Exists,
                    "something took its name while it was restored; kept (--overwrite replaces it)",
                ),
                _ => write_fail("renaming into place", err),
            }
        })
    }

    /// A symbolic link holding `link` (its target, never followed).
    fn symlink(
        &mut self,
        e: &PlannedEntry,
        link: &[u8],
        target: &mut Target,
    ) -> Result<Made, Failure> {
        let (parents, leaf) = split_name(&e.name)?;
        let link_c = CString::new(link)
            .map_err(|_| fail(FailKind::RefusedName, "its target contains a NUL byte"))?;
        let dir = self.folder_here(&parents, target)?;
        let mut replace = false;
        match dir.entry(&leaf) {
            Ok(Existing::Absent) => {}
            Ok(Existing::Symlink) if dir.read_link(&leaf).is_ok_and(|t| t == link) => {
                return Ok(Made::AlreadyThere)
            }
            Ok(Existing::Symlink | Existing::File { .. }) if self.opts.overwrite => replace = true,
            Ok(Existing::Symlink) => {
                return Err(fail(
                    FailKind::Exists,
                    "a different symbolic link is there; kept (--overwrite replaces it)",
                ))
            }
            Ok(Existing::File { .. }) => {
                return Err(fail(
                    FailKind::Exists,
                    "a file is there; kept (--overwrite replaces it)",
                ))
            }
            Ok(Existing::Folder) => return Err(fail(FailKind::InTheWay, "a folder is there")),
            Ok(Existing::Other) => return Err(fail(FailKind::InTheWay, "a special file is there")),
            Err(err) => return Err(write_fail("checking the target", err)),
        }
        let scratch = self.scratch.dir();
        let tmp = self.scratch.temp_name();
        scratch
            .symlink(&link_c, &tmp)
            .map_err(|err| write_fail("making the link", err))?;
        let owner = self
            .attrs
            .owner_of(&e.attrs)
            .map(|(u, g)| (u.unwrap_or(u32::MAX), g.unwrap_or(u32::MAX)));
        if owner.is_some() && scratch.set_link_attrs(&tmp, owner, None).is_err() {
            self.attrs.owners_refused += 1;
        }
        if let Err(err) = scratch.set_link_attrs(&tmp, None, e.attrs.mtime) {
            let _ = scratch.remove(&tmp);
            return Err(write_fail("giving the link its mtime", err));
        }
        self.rename_in(&tmp, &dir, &leaf, replace)?;
        Ok(Made::New)
    }
}

/// The MD5 of what `r` yields.
fn md5_of(mut r: impl Read) -> std::io::Result<[u8; 16]> {
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    // Bounded by the file's bytes.
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}
