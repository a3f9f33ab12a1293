//! Staging a file too large for an empty disc as a split version: parts that
//! fill consecutive discs (see docs/split-files.md for the format).
//!
//! The source is read once, in order: each part's MD5 and the whole file's
//! come from the same pass (each on a thread of its own, so the copying
//! thread only reads and writes). Every part follows the crash-safe
//! protocol of any staged file: reserve its row, copy to
//! `<id>.<k>.partial` while hashing, fsync, rename, fsync the folder,
//! record. When a part fills its disc, the disc is closed and (unless
//! images are left to `dbackup-mkiso`) its image is built and read back:
//! on another thread while the next part is copied when the filesystem has
//! room for that image and a whole disc more, otherwise before the next
//! part. Its staged copies are freed only once the read-back matched, and
//! never more than one image is built beside the copy, so the staging area
//! needs about one disc of room whatever the file's size (two, to overlap).
//!
//! A run cut short leaves the version `staging` with its recorded parts. The
//! next run resumes it when the file still has the size and mtime it began
//! with and every recorded part's MD5, read again from the file, agrees;
//! otherwise the version is abandoned (no backup) and the file taken again.
//! The loop over parts is bounded by the file's size: every turn records a
//! part of at least one sector or closes a disc that held something, and a
//! disc is never closed twice.

use std::fs::File;
use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};

use md5::{Digest, Md5};

use super::copy::{open_source, read_reason, unchanged};
use super::{Event, Stager, CATALOG_SLACK, ROW_COST, SPACE_MARGIN};
use crate::catalog::{NewFile, SplitInProgress};
use crate::disc;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::mkiso::{self, MkisoOptions};
use crate::scan::{Change, Skipped};

/// The smallest part worth leaving on a disc that already holds files:
/// with less room than this the disc is closed and the part starts on the
/// next (on small discs, half an empty disc's room, whichever is less).
const MIN_PART: u64 = 1 << 20;

/// What the split tables add to an empty catalogue (tables, index, autoindex
/// of 4 KiB pages).
const SPLIT_TABLE_PAGES: u64 = 4 * 4096;

/// Bytes read, hashed and written at a time.
const BUFFER: usize = 1 << 20;

/// How a part's copy ended.
enum PartOutcome {
    Copied(String),
    /// The source changed, vanished or could not be read: no backup.
    Source(String),
    /// Writing the copy failed.
    Target(Error),
}

/// Starts a thread, or says why the system would not.
fn spawn<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name(format!("dbackup-{what}"))
        .spawn(f)
        .map_err(|e| Error::Invalid(format!("cannot start a {what} thread: {e}")))
}

/// What a hashing thread is sent.
enum Msg {
    Data(Arc<Vec<u8>>),
    /// Ends a part: its MD5 goes back on the channel given.
    Cut(mpsc::SyncSender<String>),
}

/// One MD5 on a thread of its own, fed the buffers the copy shares.
struct HashThread {
    to: Option<mpsc::SyncSender<Msg>>,
    worker: Option<std::thread::JoinHandle<String>>,
}

impl HashThread {
    fn new(give_back: mpsc::Sender<Vec<u8>>) -> Result<HashThread> {
        let (to, from) = mpsc::sync_channel::<Msg>(2);
        let worker = spawn("hash", move || {
            let mut h = Md5::new();
            // Ends when the sender is dropped.
            for msg in from {
                match msg {
                    Msg::Data(buf) => {
                        h.update(&buf[..]);
                        // The last holder of a buffer hands it back.
                        if let Some(b) = Arc::into_inner(buf) {
                            let _ = give_back.send(b);
                        }
                    }
                    Msg::Cut(reply) => {
                        let _ = reply.send(mkiso::hex(&std::mem::take(&mut h).finalize()));
                    }
                }
            }
            mkiso::hex(&h.finalize())
        })?;
        Ok(HashThread {
            to: Some(to),
            worker: Some(worker),
        })
    }

    fn send(&mut self, msg: Msg) {
        if let Some(to) = &self.to {
            if to.send(msg).is_err() {
                // The thread is gone; `cut` or `finish` reports it.
                self.to = None;
            }
        }
    }

    /// The MD5 of what was fed since the last cut (`None` if the thread
    /// failed).
    fn cut(&mut self) -> Option<String> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Msg::Cut(reply));
        answer.recv().ok()
    }

    fn finish(mut self) -> Option<String> {
        self.to = None;
        self.worker.take()?.join().ok()
    }
}

impl Drop for HashThread {
    fn drop(&mut self) {
        self.to = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The part's MD5 and the whole file's, each on a thread of its own, from
/// the buffers the copy reads into: the copying thread only reads and
/// writes, so on two cores or more the hashing keeps pace with the disk.
/// Four buffers go round; each comes back from whoever is last done with it.
struct Hashers {
    part: HashThread,
    /// Taken by `finish`.
    whole: Option<HashThread>,
    back: mpsc::Receiver<Vec<u8>>,
    spare: Vec<Vec<u8>>,
}

impl Hashers {
    fn new() -> Result<Hashers> {
        let (give_back, back) = mpsc::channel::<Vec<u8>>();
        Ok(Hashers {
            part: HashThread::new(give_back.clone())?,
            whole: Some(HashThread::new(give_back)?),
            back,
            spare: (0..4).map(|_| vec![0; BUFFER]).collect(),
        })
    }

    /// Takes back a buffer that was not fed (a read to try again).
    fn unused(&mut self, buf: Vec<u8>) {
        self.spare.push(buf);
    }

    /// A buffer to read into (of `BUFFER` bytes).
    fn buffer(&mut self) -> Vec<u8> {
        let mut b = self
            .spare
            .pop()
            .or_else(|| self.back.recv().ok())
            .unwrap_or_default();
        b.resize(BUFFER, 0);
        b
    }

    /// Hands the first `n` bytes of `buf` to both hashes, then to `use_it`
    /// (the write) while they hash.
    fn feed<R>(&mut self, mut buf: Vec<u8>, n: usize, use_it: impl FnOnce(&[u8]) -> R) -> R {
        buf.truncate(n);
        let shared = Arc::new(buf);
        self.part.send(Msg::Data(Arc::clone(&shared)));
        if let Some(w) = &mut self.whole {
            w.send(Msg::Data(Arc::clone(&shared)));
        }
        let r = use_it(&shared[..]);
        if let Some(b) = Arc::into_inner(shared) {
            self.spare.push(b);
        }
        r
    }

    /// The MD5 of the part fed since the last cut.
    fn cut_part(&mut self) -> Option<String> {
        self.part.cut()
    }

    /// The whole MD5 (`None` if its thread failed).
    fn finish(&mut self) -> Option<String> {
        self.whole.take()?.finish()
    }
}

impl Stager<'_, '_> {
    /// What one more part adds to a disc besides its sectors: its directory
    /// records and MD5SUMS line, its `parts` row; on a version's first disc
    /// also its `files` row and name (counted for every part, to be safe).
    fn part_overhead(name: &[u8]) -> u64 {
        disc::PER_FILE_OVERHEAD + 2 * ROW_COST + 4 * name.len() as u64
    }

    /// The room (whole sectors) the open disc has for a part.
    fn part_room(&self, name: &[u8]) -> u64 {
        self.report
            .disc_size
            .saturating_sub(self.usage.saturating_add(Self::part_overhead(name)))
            / disc::SECTOR
            * disc::SECTOR
    }

    /// The room an empty disc has for a part.
    fn empty_part_room(&self, name: &[u8]) -> u64 {
        self.report
            .disc_size
            .saturating_sub(self.empty_usage().saturating_add(Self::part_overhead(name)))
            / disc::SECTOR
            * disc::SECTOR
    }

    /// Takes a file too large for an empty disc: stages it (or resumes its
    /// staging) as a split version.
    pub(super) fn split(&mut self, change: Change) -> Result<ControlFlow<()>> {
        // What is pending goes first, on the open disc, so its room is known.
        self.flush()?;
        if self.stop.is_some() {
            return Ok(ControlFlow::Break(()));
        }
        let key = crate::catalog::name_key(&change.name);
        let earlier = self.in_progress.remove(&key);
        // The set's first split file makes two tables and an index: pages
        // every later disc's catalogue carries.
        let tables = if self.opts.dry_run || self.wd.catalog.has_split_tables()? {
            0
        } else {
            SPLIT_TABLE_PAGES
        };
        // Parts are worth a disc each only when they fill a good share of
        // one: an eighth of the disc at least (or 1 MiB).
        let least = MIN_PART.min(self.report.disc_size / 8).max(disc::SECTOR);
        if self.empty_part_room(&change.name) < least + tables {
            if let Some(e) = earlier {
                self.in_progress.insert(key, e);
            }
            self.report_no_room(&change);
            return Ok(ControlFlow::Continue(()));
        }
        if self.opts.dry_run {
            let parts = self.planned_parts(&change);
            let desc = format!("{} (split into about {parts} parts)", change.desc);
            self.report.staged_files += 1;
            self.report.staged_bytes += change.size;
            (self.on_event)(Event::Staged {
                path: &change.path,
                desc: &desc,
                id: 0,
                disc: self.disc,
                size: change.size,
            });
            return Ok(ControlFlow::Continue(()));
        }
        let outcome = self.stage_split(&change, earlier);
        self.replan_deferred();
        outcome?;
        if self.stop.is_some() {
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
    }

    /// How many parts a dry run says the file would take.
    fn planned_parts(&self, change: &Change) -> u64 {
        let room = self.part_room(&change.name);
        let empty = self.empty_part_room(&change.name).max(disc::SECTOR);
        let first = if room >= self.min_part(&change.name) {
            room.min(change.size)
        } else {
            0
        };
        u64::from(first > 0) + (change.size - first).div_ceil(empty)
    }

    fn min_part(&self, name: &[u8]) -> u64 {
        (MIN_PART.min(self.empty_part_room(name) / 2) / disc::SECTOR * disc::SECTOR)
            .max(disc::SECTOR)
    }

    /// Deferred files that fit what is left of the open disc join the
    /// pending batch.
    fn replan_deferred(&mut self) {
        let deferred = std::mem::take(&mut self.deferred);
        self.deferred_cost = 0;
        for c in deferred {
            let cost = super::cost(&c);
            if self.usage + cost <= self.report.disc_size {
                self.usage += cost;
                self.pending_bytes += c.size;
                self.pending.push(c);
            } else {
                self.deferred_cost += cost;
                self.deferred.push(c);
            }
        }
    }

    fn abandon(&mut self, id: i64, change: &Change, why: &str) -> Result<()> {
        self.wd.catalog.abandon_split(id, why)?;
        (self.on_event)(Event::Abandoned {
            path: &change.path,
            why,
        });
        Ok(())
    }

    /// Reports a file larger than a disc on discs too small to hold a part
    /// of it besides the catalogue (once per run: it is then dropped).
    fn report_no_room(&mut self, change: &Change) {
        let room = self
            .report
            .disc_size
            .saturating_sub(self.empty_usage() + super::cost(change) - change.size);
        self.skip(
            change,
            format!(
                "too big for any disc: {} bytes, but an empty disc has room for {} (the disc size, {}, less the catalogue of {} and the image's own structures), too little to split it into parts worth a disc each; raise the disc size (dbackup-stage config disc_size)",
                change.size,
                room,
                self.report.disc_size,
                crate::output::bytes(self.db_base),
            ),
        );
    }

    fn skip(&mut self, change: &Change, reason: String) {
        self.report.skipped_files += 1;
        let skip = Skipped {
            path: change.path.clone(),
            reason,
        };
        (self.on_event)(Event::Skipped(&skip));
    }

    fn stage_split(&mut self, change: &Change, earlier: Option<SplitInProgress>) -> Result<()> {
        let staged = self.stage_parts(change, earlier);
        // An image still being built is waited for whatever became of the
        // parts: no thread outlives the file.
        let joined = self.join_builder();
        match (staged, joined) {
            (Err(e), Err(also)) => {
                // The first error ends the run; the image's is said too.
                self.progress
                    .println(&format!("dbackup-stage: error: {also}"));
                Err(e)
            }
            (staged, joined) => staged.and(joined),
        }
    }

    fn stage_parts(&mut self, change: &Change, earlier: Option<SplitInProgress>) -> Result<()> {
        let mut src = match open_source(&change.path) {
            Ok(f) => f,
            Err(e) => {
                if let Some(old) = earlier {
                    self.abandon(old.id, change, "the file could not be read again")?;
                }
                self.skip(change, read_reason(&e));
                return Ok(());
            }
        };
        match src.metadata() {
            Ok(m) if unchanged(change, &m) => {}
            Ok(_) => {
                if let Some(old) = earlier {
                    self.abandon(old.id, change, "the file changed before its last part")?;
                }
                self.skip(
                    change,
                    "changed since the scan; it will be backed up on the next run".into(),
                );
                return Ok(());
            }
            Err(e) => {
                self.skip(change, read_reason(&e));
                return Ok(());
            }
        }
        let mut hashers = Hashers::new()?;
        // Resume what an earlier run began, if the file is still that file.
        let mut resumed = None;
        let mut checked = false;
        if let Some(old) = earlier {
            if old.size == change.size && old.mtime == change.mtime() {
                checked = true;
                match self.check_prefix(&mut src, &old, &mut hashers) {
                    Ok(true) => resumed = Some(old),
                    Ok(false) => {
                        self.abandon(old.id, change, "the file changed before its last part")?;
                    }
                    Err(reason) => {
                        self.abandon(old.id, change, "the file could not be read again")?;
                        self.skip(change, reason);
                        return Ok(());
                    }
                }
            } else {
                self.abandon(old.id, change, "the file changed before its last part")?;
            }
        }
        let (id, mut next_part, mut offset, mut last_disc) = match &resumed {
            Some(old) => (
                old.id,
                old.parts.len() as u32 + 1,
                old.staged(),
                old.parts.last().map(|p| p.disc),
            ),
            None => {
                // A fresh start reads from the beginning (a failed resume
                // read some of it).
                if checked {
                    hashers = Hashers::new()?;
                }
                use std::io::{Seek, SeekFrom};
                if let Err(e) = src.seek(SeekFrom::Start(0)) {
                    self.skip(change, read_reason(&e));
                    return Ok(());
                }
                let id = self.wd.catalog.begin_split(&NewFile {
                    name: &change.name,
                    size: change.size,
                    mtime: change.mtime(),
                    disc_id: self.disc,
                    desc: &change.desc,
                    timestamp: crate::catalog::now(),
                    attrs: change.attrs.as_ref(),
                })?;
                // The catalogue the next discs carry has grown.
                self.db_base = self.wd.catalog.db_size()?;
                self.usage = disc::usage(&self.wd.catalog.disc_usage(self.disc)?, self.db_base)
                    + CATALOG_SLACK;
                (id, 1u32, 0u64, None)
            }
        };
        let mut first_disc = resumed
            .as_ref()
            .and_then(|o| o.parts.first().map(|p| p.disc));
        // Bounded by the file's size: each turn records a part of at least
        // one sector, or closes a disc that holds something (after which
        // the open disc is empty and has room for a part).
        loop {
            let remaining = change.size - offset;
            if remaining == 0 {
                break;
            }
            if self.opts.images
                && self.image_builder.is_none()
                && !mkiso::pending(self.wd)?.is_empty()
            {
                // An earlier disc still waits for its image (and none is
                // being built): build it first, so the staging area holds
                // no more than about one disc.
                self.build_images()?;
            }
            let room = self.part_room(&change.name);
            let must_close = last_disc == Some(self.disc)
                || (room < self.min_part(&change.name).min(remaining) && self.on_disc > 0);
            if must_close {
                if !self.close_for_split()? {
                    return Ok(());
                }
                continue;
            }
            if room < disc::SECTOR.min(remaining) {
                // Even an empty disc has no room left for a part (the
                // catalogue grew past what the disc size leaves): never
                // loop on it.
                self.abandon(id, change, "the discs have no room left for its next part")?;
                self.report_no_room(change);
                return Ok(());
            }
            let size = remaining.min(room);
            let last = size == remaining;
            if size + SPACE_MARGIN > self.free {
                self.stop = Some(Error::NoSpace {
                    path: self.wd.layout.root.clone(),
                    needed: size + SPACE_MARGIN,
                    available: self.free,
                });
                return Ok(());
            }
            self.progress.message(format!(
                "disc {}: part {next_part} of {}",
                self.disc,
                crate::names::display(&change.name, false)
            ));
            let md5 = match self.copy_part(
                &mut src,
                change,
                id,
                next_part,
                offset,
                size,
                &mut hashers,
            )? {
                PartOutcome::Copied(md5) => md5,
                PartOutcome::Source(reason) => {
                    self.abandon(id, change, "the file changed before its last part")?;
                    self.skip(change, reason);
                    return Ok(());
                }
                PartOutcome::Target(e) => {
                    self.wd.catalog.abandon_part(id, next_part)?;
                    match e {
                        Error::Io { ref source, .. } if fsutil::is_no_space(source) => {
                            self.stop = Some(e);
                            return Ok(());
                        }
                        e => return Err(e),
                    }
                }
            };
            let whole_md5 = if last {
                // The file must still be the one read, to its last byte.
                let still = src
                    .metadata()
                    .map(|m| unchanged(change, &m))
                    .unwrap_or(false);
                let mut probe = [0u8; 1];
                let at_end = matches!(src.read(&mut probe), Ok(0));
                if !still || !at_end {
                    self.wd.catalog.abandon_part(id, next_part)?;
                    self.abandon(id, change, "the file changed before its last part")?;
                    self.skip(
                        change,
                        "changed while being copied; its parts are no backup and it will be backed up on the next run"
                            .into(),
                    );
                    return Ok(());
                }
                match hashers.finish() {
                    Some(h) => Some(h),
                    None => return Err(Error::Invalid("the hashing thread failed".into())),
                }
            } else {
                None
            };
            self.wd
                .catalog
                .commit_part(id, next_part, &md5, whole_md5.as_deref())?;
            fail::fail_point!("split::part_recorded");
            self.on_disc += 1;
            self.free = self.free.saturating_sub(size);
            first_disc.get_or_insert(self.disc);
            last_disc = Some(self.disc);
            offset += size;
            next_part += 1;
            self.usage = disc::usage(
                &self.wd.catalog.disc_usage(self.disc)?,
                self.wd.catalog.db_size()?,
            ) + CATALOG_SLACK;
            if last {
                self.report.staged_files += 1;
                self.report.staged_bytes += change.size;
                let discs = match (first_disc, last_disc) {
                    (Some(a), Some(b)) if a != b => format!("discs {a}-{b}"),
                    (_, Some(b)) => format!("disc {b}"),
                    _ => String::new(),
                };
                let desc = format!(
                    "{} (split into {} parts on {discs})",
                    change.desc,
                    next_part - 1
                );
                (self.on_event)(Event::Staged {
                    path: &change.path,
                    desc: &desc,
                    id,
                    disc: self.disc,
                    size: change.size,
                });
            }
        }
        Ok(())
    }

    /// Reads the recorded parts' bytes again from the file, feeding the
    /// whole hash: `Ok(true)` when every part's MD5 agrees.
    fn check_prefix(
        &mut self,
        src: &mut File,
        old: &SplitInProgress,
        hashers: &mut Hashers,
    ) -> std::result::Result<bool, String> {
        self.progress
            .message(format!("checking the staged parts of {}", change_name(old)));
        for p in &old.parts {
            let mut left = p.size;
            // Bounded by the part's size.
            while left > 0 {
                let mut buf = hashers.buffer();
                let want = (buf.len() as u64).min(left) as usize;
                let n = match src.read(&mut buf[..want]) {
                    Ok(0) => return Ok(false),
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                        hashers.unused(buf);
                        continue;
                    }
                    Err(e) => return Err(read_reason(&e)),
                };
                hashers.feed(buf, n, |_| ());
                left -= n as u64;
                self.progress.add_bytes(n as u64);
            }
            match hashers.cut_part() {
                Some(md5) if md5 == p.md5 => {}
                Some(_) => return Ok(false),
                None => return Err("the hashing thread failed".into()),
            }
        }
        Ok(true)
    }

    /// Copies bytes `offset .. offset+size` (the file's read position) into
    /// part `part` of version `id` on the open disc, crash-safe.
    #[allow(clippy::too_many_arguments)]
    fn copy_part(
        &mut self,
        src: &mut File,
        change: &Change,
        id: i64,
        part: u32,
        offset: u64,
        size: u64,
        hashers: &mut Hashers,
    ) -> Result<PartOutcome> {
        self.wd
            .catalog
            .reserve_part(id, part, self.disc, offset, size)?;
        let disc_dir = self.wd.layout.disc_dir(self.disc);
        let target = disc_dir.join(disc::part_path(id, part));
        let partial = fsutil::partial_path(&target);
        let dir = target.parent().map(PathBuf::from).unwrap_or_default();
        let new_dir = !dir.is_dir();
        if new_dir {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        let outcome = (|| -> Result<PartOutcome> {
            let mut dst = match File::create(&partial) {
                Ok(f) => f,
                Err(e) => return Ok(PartOutcome::Target(Error::io(&partial, e))),
            };
            let mut left = size;
            let mut first = true;
            // Bounded by the part's size.
            while left > 0 {
                let mut buf = hashers.buffer();
                let want = (buf.len() as u64).min(left) as usize;
                let read = match crate::fault::injected("stage::read") {
                    Some(e) => Err(e),
                    None => src.read(&mut buf[..want]),
                };
                let n = match read {
                    Ok(0) => {
                        return Ok(PartOutcome::Source(
                            "changed while being copied (it is shorter than it was); its parts are no backup and it will be backed up on the next run".into(),
                        ))
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                        hashers.unused(buf);
                        continue;
                    }
                    Err(e) => return Ok(PartOutcome::Source(read_reason(&e))),
                };
                let written = hashers.feed(buf, n, |data| {
                    match crate::fault::injected("stage::write") {
                        Some(e) => Err(e),
                        None => dst.write_all(data),
                    }
                });
                if let Err(e) = written {
                    return Ok(PartOutcome::Target(Error::io(&partial, e)));
                }
                left -= n as u64;
                self.progress.add_bytes(n as u64);
                if first {
                    first = false;
                    fail::fail_point!("stage::mid_copy");
                }
            }
            match src.metadata() {
                Ok(m) if unchanged(change, &m) => {}
                Ok(_) => {
                    return Ok(PartOutcome::Source(
                        "changed while being copied; its parts are no backup and it will be backed up on the next run".into(),
                    ))
                }
                Err(e) => return Ok(PartOutcome::Source(read_reason(&e))),
            }
            if let Some(e) = crate::fault::injected("stage::sync") {
                return Ok(PartOutcome::Target(Error::io(&partial, e)));
            }
            if let Err(e) = dst.sync_all() {
                return Ok(PartOutcome::Target(Error::io(&partial, e)));
            }
            drop(dst);
            let renamed = match crate::fault::injected("stage::rename") {
                Some(e) => Err(e),
                None => std::fs::rename(&partial, &target),
            };
            if let Err(e) = renamed {
                return Ok(PartOutcome::Target(Error::io(&target, e)));
            }
            fsutil::sync_dir(&dir)?;
            if new_dir {
                fsutil::sync_dir(&disc_dir.join(disc::FILES_DIR))?;
            }
            match hashers.cut_part() {
                Some(md5) => Ok(PartOutcome::Copied(md5)),
                None => Err(Error::Invalid("the hashing thread failed".into())),
            }
        })();
        match &outcome {
            Ok(PartOutcome::Copied(_)) => {}
            _ => {
                // Nothing is left under either name for a part not recorded.
                let _ = std::fs::remove_file(&partial);
                let _ = std::fs::remove_file(&target);
            }
        }
        if outcome.is_err() {
            self.wd.catalog.abandon_part(id, part)?;
        }
        outcome
    }

    /// Closes the open disc for the next part, and builds its image unless
    /// images are left to `dbackup-mkiso`. `false` when the run must stop
    /// (a full filesystem).
    fn close_for_split(&mut self) -> Result<bool> {
        // The image of the disc closed before is done first: at most one
        // is built beside the copy.
        self.join_builder()?;
        if self.stop.is_some() {
            return Ok(false);
        }
        let usage = self.wd.catalog.disc_usage(self.disc)?;
        let closed = match self.wd.close_disc() {
            Ok(id) => id,
            Err(e @ Error::NoSpace { .. }) => {
                self.stop = Some(e);
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        self.report.closed_discs.push(closed);
        (self.on_event)(Event::DiscClosed {
            disc: closed,
            files: usage.files,
            bytes: usage.bytes,
        });
        self.disc = self.wd.open_disc()?;
        self.db_base = self.wd.catalog.db_size()?;
        self.on_disc = 0;
        self.usage = self.empty_usage();
        if self.opts.images {
            self.start_image(closed, usage.sector_bytes, usage.files)?;
        }
        Ok(true)
    }

    fn image_options(&self) -> MkisoOptions {
        MkisoOptions {
            ecc: self.wd.settings.ecc,
            ..Default::default()
        }
    }

    /// Builds the image of disc `closed`, just closed: on another thread,
    /// while the next part is copied, when it is the only disc waiting and
    /// the filesystem has room for its image and a whole disc's part beside
    /// the staged copies; otherwise here and now, before the next part.
    /// Either way its staged copies are freed only by [`Self::join_builder`]
    /// or [`Self::build_images`], once the image is read back and matched.
    fn start_image(&mut self, closed: i64, bytes: u64, files: u64) -> Result<()> {
        let opts = self.image_options();
        // The image (grown to the medium's size by its error-correction
        // data), the catalogue inside it and its scratch copy read back.
        let mut room = mkiso::image_room(bytes, files);
        if opts.ecc {
            room = room.max(mkiso::ecc_medium(self.report.disc_size));
        }
        room = room.saturating_add(self.wd.catalog.db_size()?.saturating_mul(2));
        // Closing wrote the disc's catalogue: what is free now, not before.
        self.free = fsutil::available_space(&self.wd.layout.root)?;
        let roomy = self.free
            >= room
                .saturating_add(self.report.disc_size)
                .saturating_add(SPACE_MARGIN);
        if !roomy || mkiso::pending(self.wd)? != [closed] {
            return self.build_images();
        }
        mkiso::check_tools(&opts)?;
        let reader = self.wd.reader()?;
        let worker = spawn("image", move || {
            mkiso::write_and_check(&reader, closed, &opts, &crate::progress::Progress::hidden())
        })?;
        self.image_builder = Some(ImageBuilder {
            disc: closed,
            worker,
        });
        // The image takes this room while the next part is copied.
        self.free = self.free.saturating_sub(room);
        Ok(())
    }

    /// Waits for the image built on another thread, if any; installs it
    /// when its read-back matched (freeing the disc's staged copies), or
    /// repairs and builds again as `dbackup-mkiso` would.
    pub(super) fn join_builder(&mut self) -> Result<()> {
        let Some(b) = self.image_builder.take() else {
            return Ok(());
        };
        let built = b.worker.join().unwrap_or_else(|_| {
            Err(Error::Invalid(format!(
                "building the image of disc {} stopped short; it is built again on the next run",
                b.disc
            )))
        });
        let built = match built {
            Ok(b) => b,
            Err(e) if e.exit_code() == crate::exit::NO_SPACE => {
                if self.stop.is_none() {
                    self.stop = Some(e);
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let opts = self.image_options();
        let report = mkiso::finish_build(self.wd, b.disc, &opts, self.progress, Some(built));
        self.free = fsutil::available_space(&self.wd.layout.root)?;
        match report {
            Ok(r) => self.report.images.push(r),
            // A full filesystem stops the run as it stops a copy: what is
            // staged is kept, the disc waits for its image.
            Err(e) if e.exit_code() == crate::exit::NO_SPACE => {
                if self.stop.is_none() {
                    self.stop = Some(e);
                }
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Builds and reads back the image of every closed disc still waiting
    /// for one, freeing their staged copies; the reports go to the caller.
    fn build_images(&mut self) -> Result<()> {
        // Never two builds of one image at once.
        self.join_builder()?;
        if self.stop.is_some() {
            return Ok(());
        }
        let opts = self.image_options();
        let mut built = Vec::new();
        let res = mkiso::mkiso(self.wd, &opts, self.progress, &mut |r| {
            built.push(r.clone())
        });
        self.report.images.extend(built);
        res?;
        self.free = fsutil::available_space(&self.wd.layout.root)?;
        Ok(())
    }
}

/// A closed disc's image being written and read back on another thread
/// (with a catalogue connection of its own, reading only) while the next
/// part is copied: the copy and the image's hashing share the cores.
pub(super) struct ImageBuilder {
    disc: i64,
    worker: std::thread::JoinHandle<Result<mkiso::Built>>,
}

fn change_name(old: &SplitInProgress) -> String {
    crate::names::display(&old.name, false)
}
