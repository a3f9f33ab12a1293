//! The workdir: its layout on disk, its lock, creating one (`init`), opening
//! one (repairing what an interrupted run left), and closing a disc.
//!
//! ```text
//! WORKDIR/
//!   manifest.db            the live catalogue (SQLite, WAL)
//!   lock                   held by the run that writes
//!   staging/disc-0001/     a disc's content until its image is verified
//!     files/<id div 256>/<id>
//!     manifest.db          frozen copy of the catalogue, once the disc is closed
//!   isos/disc-1.iso        finished images
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, Settings};
use crate::disc;
use crate::error::{Error, Result};
use crate::fsutil;

/// Name of the live catalogue in the workdir.
pub const CATALOG: &str = "manifest.db";
const LOCK: &str = "lock";
const STAGING: &str = "staging";
const ISOS: &str = "isos";
const FREEING: &str = ".freeing-";

/// Paths of a workdir.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }
    pub fn catalog(&self) -> PathBuf {
        self.root.join(CATALOG)
    }
    pub fn lock(&self) -> PathBuf {
        self.root.join(LOCK)
    }
    pub fn staging(&self) -> PathBuf {
        self.root.join(STAGING)
    }
    pub fn isos(&self) -> PathBuf {
        self.root.join(ISOS)
    }
    /// The staging folder of disc `id`.
    pub fn disc_dir(&self, id: i64) -> PathBuf {
        self.staging().join(format!("disc-{id:04}"))
    }
    /// Where staged file `id` of disc `disc_id` lives.
    pub fn staged_file(&self, disc_id: i64, id: i64) -> PathBuf {
        self.disc_dir(disc_id).join(disc::file_path(id))
    }
    /// Where a disc's staged copies go while they are removed, once its
    /// image is verified: renamed first, so a half-removed folder is never
    /// taken for a disc.
    pub fn freeing(&self, disc_id: i64) -> PathBuf {
        self.staging().join(format!("{FREEING}{disc_id}"))
    }

    /// The frozen catalogue of a closed disc.
    pub fn disc_manifest(&self, disc_id: i64) -> PathBuf {
        self.disc_dir(disc_id).join(disc::MANIFEST)
    }
    /// The image of disc `id`.
    pub fn iso(&self, id: i64) -> PathBuf {
        self.isos().join(format!("disc-{id}.iso"))
    }
}

/// The lock of a workdir, held while a run writes; released on drop (and by
/// the kernel when the process dies, so a kill -9 never leaves it stuck).
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Takes the lock without waiting; `Error::Busy` when another run has it.
    pub fn acquire(layout: &Layout) -> Result<Lock> {
        let path = layout.lock();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Lock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy(layout.root.clone())),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }
}

/// The smallest disc size: an empty disc already takes the image's own
/// structures and padding (428 KiB) and a new set's catalogue (40 KiB), so
/// below this every file would be too big. 492 KiB leaves room for a few
/// small files; real media are thousands of times larger.
pub const MIN_DISC_SIZE: u64 = disc::FIXED_OVERHEAD + (64 << 10);

/// Refuses a disc size that no file could fit.
pub fn check_disc_size(bytes: u64) -> Result<()> {
    if bytes < MIN_DISC_SIZE {
        return Err(Error::Invalid(format!(
            "disc size {bytes} bytes ({}) is below the minimum of {MIN_DISC_SIZE} bytes ({}): an empty disc takes {} for the image's own structures and the catalogue, so no file would fit",
            crate::output::bytes(bytes),
            crate::output::bytes(MIN_DISC_SIZE),
            crate::output::bytes(disc::FIXED_OVERHEAD + (40 << 10)),
        )));
    }
    Ok(())
}

/// What `init` needs.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub workdir: PathBuf,
    pub watched: PathBuf,
    pub disc_size: u64,
    pub excludes: Vec<String>,
    pub name: Option<String>,
    pub ecc: bool,
    pub on_disc_ready: Option<String>,
    /// Parity discs for every group of data discs (`--parity K+M`).
    pub parity: Option<crate::parity::Scheme>,
    /// Copies of each disc to hold (`--copies C`; default 1).
    pub copies: Option<u64>,
}

/// What `init` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InitReport {
    pub workdir: PathBuf,
    pub watched: PathBuf,
    pub current_disc: i64,
    pub disc_size: u64,
    pub name: String,
    pub uuid: String,
}

/// An absolute form of `path` that need not exist yet: the longest existing
/// ancestor canonicalized, the rest appended.
fn absolute(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(c) => {
                let mut out = c;
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(_) => match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_os_string());
                    existing = parent;
                }
                _ => return Ok(abs),
            },
        }
    }
}

/// Creates a workdir watching `watched`, with disc 1 open.
pub fn init(opts: &InitOptions) -> Result<InitReport> {
    check_disc_size(opts.disc_size)?;
    crate::scan::Excludes::new(&opts.excludes)?;
    let watched = opts
        .watched
        .canonicalize()
        .map_err(|e| Error::Invalid(format!("watched folder {}: {e}", opts.watched.display())))?;
    if !watched.is_dir() {
        return Err(Error::Invalid(format!(
            "watched folder {} is not a folder",
            watched.display()
        )));
    }
    let workdir = absolute(&opts.workdir)?;
    if workdir.starts_with(&watched) {
        return Err(Error::Invalid(format!(
            "the workdir {} is inside the watched folder {}; it would back itself up. Choose a workdir outside it",
            workdir.display(),
            watched.display()
        )));
    }
    if workdir.join(CATALOG).exists() {
        return Err(Error::Invalid(format!(
            "{} is already a dbackup workdir",
            workdir.display()
        )));
    }
    if workdir.exists() {
        let mut entries = std::fs::read_dir(&workdir).map_err(|e| Error::io(&workdir, e))?;
        if entries.next().is_some() {
            return Err(Error::Invalid(format!(
                "{} is not empty; init wants a new or empty folder",
                workdir.display()
            )));
        }
    }
    std::fs::create_dir_all(&workdir).map_err(|e| Error::io(&workdir, e))?;
    let layout = Layout::new(&workdir);
    let name = opts.name.clone().unwrap_or_else(|| {
        watched
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "backup".into())
    });
    let settings = Settings {
        watched: watched.clone(),
        disc_size: opts.disc_size,
        excludes: opts.excludes.clone(),
        uuid: uuid::Uuid::new_v4().to_string(),
        name: name.clone(),
        ecc: opts.ecc,
    };
    // Build the catalogue under a temp name so a crash never leaves a
    // half-made workdir that looks real.
    let tmp = fsutil::partial_path(&layout.catalog());
    let _ = std::fs::remove_file(&tmp);
    let mut cat = Catalog::create(&tmp, &settings)?;
    if opts.parity.is_some() {
        cat.set_parity(opts.parity)?;
    }
    if let Some(cmd) = &opts.on_disc_ready {
        cat.set_setting_text("on_disc_ready", cmd)?;
    }
    if let Some(c) = opts.copies {
        cat.set_copies_policy(c)?;
    }
    drop(cat);
    for suffix in ["-wal", "-shm"] {
        let mut p = tmp.as_os_str().to_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::create_dir_all(layout.disc_dir(1).join(disc::FILES_DIR))
        .map_err(|e| Error::io(layout.disc_dir(1), e))?;
    std::fs::create_dir_all(layout.isos()).map_err(|e| Error::io(layout.isos(), e))?;
    File::create(layout.lock()).map_err(|e| Error::io(layout.lock(), e))?;
    std::fs::rename(&tmp, layout.catalog()).map_err(|e| Error::io(layout.catalog(), e))?;
    fsutil::sync_dir(&workdir)?;
    Ok(InitReport {
        workdir,
        watched,
        current_disc: 1,
        disc_size: opts.disc_size,
        name,
        uuid: settings.uuid,
    })
}

/// An open workdir: its layout, catalogue and settings, and (for runs that
/// write) its lock.
pub struct Workdir {
    pub layout: Layout,
    pub catalog: Catalog,
    pub settings: Settings,
    _lock: Option<Lock>,
}

/// What opening a workdir for writing repaired.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Repairs {
    /// Unfinished copies (reservations) removed.
    pub reservations: usize,
    /// A disc whose closing was interrupted and was finished.
    pub finished_close: Option<i64>,
}

impl Repairs {
    pub fn is_empty(&self) -> bool {
        self.reservations == 0 && self.finished_close.is_none()
    }
}

impl Workdir {
    fn resolve(root: &Path) -> Result<Layout> {
        if !root.is_dir() {
            return Err(Error::NotWorkdir(root.to_path_buf()));
        }
        let layout = Layout::new(absolute(root)?);
        if !layout.catalog().is_file() {
            return Err(Error::NotWorkdir(layout.root));
        }
        Ok(layout)
    }

    /// Opens a workdir for reading only: no lock, no repair.
    pub fn open_read(root: &Path) -> Result<Workdir> {
        let layout = Self::resolve(root)?;
        let catalog = Catalog::open(&layout.catalog())?;
        let settings = catalog.settings()?;
        Ok(Workdir {
            layout,
            catalog,
            settings,
            _lock: None,
        })
    }

    /// A second handle on this workdir, with a connection of its own that
    /// refuses to write the catalogue (`query_only`), for a thread that
    /// reads it while this handle goes on writing: every write stays on one
    /// connection. It holds no lock: the lock of this handle covers it, so
    /// it must not outlive this handle's work.
    pub(crate) fn reader(&self) -> Result<Workdir> {
        let catalog = Catalog::open(&self.layout.catalog())?;
        catalog.set_query_only()?;
        Ok(Workdir {
            layout: self.layout.clone(),
            catalog,
            settings: self.settings.clone(),
            _lock: None,
        })
    }

    /// Opens a workdir for writing: takes the lock (or fails with
    /// `Error::Busy`), then repairs what an interrupted run left.
    pub fn open_write(root: &Path) -> Result<(Workdir, Repairs)> {
        let layout = Self::resolve(root)?;
        let lock = Lock::acquire(&layout)?;
        let catalog = Catalog::open(&layout.catalog())?;
        let settings = catalog.settings()?;
        let mut wd = Workdir {
            layout,
            catalog,
            settings,
            _lock: Some(lock),
        };
        let repairs = wd.repair()?;
        Ok((wd, repairs))
    }

    /// Brings the workdir back to a consistent state after a crash:
    /// reservations and their half-written files go; a disc whose closing was
    /// interrupted gets its snapshot and a successor.
    fn repair(&mut self) -> Result<Repairs> {
        let mut repairs = Repairs::default();
        // Staged copies whose removal was cut short: their image was
        // verified and recorded before they were renamed aside.
        if let Ok(entries) = std::fs::read_dir(self.layout.staging()) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(FREEING) {
                    std::fs::remove_dir_all(e.path()).map_err(|err| Error::io(e.path(), err))?;
                }
            }
        }
        // What a killed parity build left in `isos/` (a work folder holding
        // links to member images and PAR2 output, a `.partial` parity
        // image): never a final name, and nothing counts on it.
        crate::mkiso::parity::clean_leftovers(self)?;
        let reservations = self.catalog.reservations()?;
        if !reservations.is_empty() {
            let mut touched = std::collections::BTreeSet::new();
            for &(id, disc_id) in &reservations {
                let path = self.layout.staged_file(disc_id, id);
                for p in [fsutil::partial_path(&path), path] {
                    match std::fs::remove_file(&p) {
                        Ok(()) => {
                            if let Some(parent) = p.parent() {
                                touched.insert(parent.to_path_buf());
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io(&p, e)),
                    }
                }
            }
            for dir in touched {
                fsutil::sync_dir(&dir)?;
            }
            let ids: Vec<i64> = reservations.iter().map(|r| r.0).collect();
            self.catalog.drop_reservations(&ids)?;
            repairs.reservations = ids.len();
        }
        // Parts of split files whose copy never finished, and split versions
        // left with no recorded part (they begin again from nothing).
        let parts = self.catalog.part_reservations()?;
        let mut touched = std::collections::BTreeSet::new();
        for &(id, part, disc_id) in &parts {
            let path = self
                .layout
                .disc_dir(disc_id)
                .join(disc::part_path(id, part));
            for p in [fsutil::partial_path(&path), path] {
                match std::fs::remove_file(&p) {
                    Ok(()) => {
                        if let Some(parent) = p.parent() {
                            touched.insert(parent.to_path_buf());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&p, e)),
                }
            }
        }
        for dir in touched {
            fsutil::sync_dir(&dir)?;
        }
        let dropped = self.catalog.drop_part_reservations()?;
        repairs.reservations += parts.len().max(usize::from(dropped > 0));
        if self.catalog.open_disc()?.is_none() {
            if let Some(last) = self.catalog.last_disc()? {
                self.finish_close(last)?;
                repairs.finished_close = Some(last);
            } else {
                let id = self.catalog.start_disc()?;
                self.ensure_disc_dir(id)?;
            }
        }
        Ok(repairs)
    }

    /// Changes the size of the discs not yet closed: the open one and every
    /// later one. Refused when the open disc already holds more than the
    /// new size (its image would not fit): close it first.
    pub fn set_disc_size(&mut self, bytes: u64) -> Result<()> {
        check_disc_size(bytes)?;
        let open = self.open_disc()?;
        let usage = disc::usage(&self.catalog.disc_usage(open)?, self.catalog.db_size()?);
        if usage > bytes {
            return Err(Error::Invalid(format!(
                "the open disc {open} already holds {usage} bytes ({}), more than {bytes} ({}); close it first (dbackup-stage close), or choose a size of at least {usage}",
                crate::output::bytes(usage),
                crate::output::bytes(bytes),
            )));
        }
        self.catalog.set_disc_size(bytes)?;
        self.settings.disc_size = bytes;
        Ok(())
    }

    /// Replaces the exclude patterns (each checked first). Files already
    /// backed up that they now leave out are not recorded as deleted.
    pub fn set_excludes(&mut self, patterns: Vec<String>) -> Result<()> {
        crate::scan::Excludes::new(&patterns)?;
        self.catalog.set_excludes(&patterns)?;
        self.settings.excludes = patterns;
        Ok(())
    }

    /// The open disc's id.
    pub fn open_disc(&self) -> Result<i64> {
        self.catalog.open_disc()?.ok_or_else(|| Error::Corrupt {
            path: self.layout.catalog(),
            why: "no open disc".into(),
        })
    }

    fn ensure_disc_dir(&self, id: i64) -> Result<()> {
        let dir = self.layout.disc_dir(id).join(disc::FILES_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        fsutil::sync_dir(&self.layout.staging())
    }

    /// Closes the open disc: marks it completed, freezes a snapshot of the
    /// catalogue into its staging folder, and opens the next disc. Returns
    /// the closed disc's id. Each step is durable before the next, and
    /// `repair` finishes a close that a crash interrupted.
    pub fn close_disc(&mut self) -> Result<i64> {
        let id = self.open_disc()?;
        let needed = self.catalog.db_size()?.saturating_mul(2);
        let available = fsutil::available_space(&self.layout.root)?;
        if available < needed {
            return Err(Error::NoSpace {
                path: self.layout.root.clone(),
                needed,
                available,
            });
        }
        self.catalog.complete_disc(id)?;
        if let Some(e) = crate::fault::injected("close::completed") {
            return Err(Error::io(self.catalog.path(), e));
        }
        self.finish_close(id)?;
        Ok(id)
    }

    fn finish_close(&mut self, id: i64) -> Result<()> {
        let manifest = self.layout.disc_manifest(id);
        if !manifest.is_file() {
            std::fs::create_dir_all(self.layout.disc_dir(id))
                .map_err(|e| Error::io(self.layout.disc_dir(id), e))?;
            let tmp = fsutil::partial_path(&manifest);
            let _ = std::fs::remove_file(&tmp);
            self.catalog.snapshot_to(&tmp)?;
            if let Some(e) = crate::fault::injected("close::snapshot") {
                return Err(Error::io(&tmp, e));
            }
            std::fs::rename(&tmp, &manifest).map_err(|e| Error::io(&manifest, e))?;
            fsutil::sync_dir(&self.layout.disc_dir(id))?;
        }
        if let Some(e) = crate::fault::injected("close::next") {
            return Err(Error::io(self.catalog.path(), e));
        }
        let next = self.catalog.start_disc()?;
        self.ensure_disc_dir(next)
    }
}
