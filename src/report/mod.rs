//! `dbackup-stage report --html FILE`: a status page of one or more sets,
//! one self-contained static HTML file, as the original's `dbackup-www.php`
//! showed every set at a glance.
//!
//! The page is gathered from each workdir's catalogue alone (never the
//! watched folder: a page about a backup must not depend on what it backs
//! up) and from which images are still in its `isos/`. Each set is read in
//! bounded passes: its discs, its copies and checks, one grouped query per
//! month and two ordered passes over every name for the search index (in
//! one read snapshot: the first keeps its folders and runs, the second
//! writes the names straight into the page).
//!
//! - [`index`] builds the compact search index of every backed-up name;
//! - [`html`] renders the page (every shown name escaped).

pub mod html;
pub mod index;

use std::path::{Path, PathBuf};

use crate::catalog::contents::{DiscContents, Month};
use crate::copies::{DiscCopies, Shelf};
use crate::error::{Error, Result};
use crate::status::Status;
use crate::workdir::Workdir;

/// One set as the page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SetPage {
    pub status: Status,
    /// When the page was gathered (Unix seconds).
    pub generated: f64,
    pub discs: Vec<DiscPage>,
    /// Parity discs built, with their copies.
    pub parity: Vec<ParityPage>,
    pub months: Vec<Month>,
    /// What each lost disc cost (from the catalogue alone).
    pub lost: Vec<LostCost>,
    /// Copies due a check: (disc label, copy, location, due since).
    pub due: Vec<DueCopy>,
    /// Discs held in fewer copies than the policy (labels).
    pub below_policy: Vec<String>,
    pub copies_policy: u64,
    pub check_every: String,
    #[serde(skip)]
    pub index: index::NameIndex,
}

/// The state of a disc's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageState {
    /// The disc is still taking files.
    Open,
    /// Closed; its staged copy waits for an image.
    WaitingForImage,
    /// Its image was read back and verified and is in `isos/`.
    InIsos,
    /// Its image was verified and is no longer in `isos/` (burned and
    /// removed, or moved elsewhere).
    Removed,
    /// Closed, no image recorded and nothing staged (an original dBackup
    /// disc, or one whose staged copy is gone).
    Unknown,
}

/// One data disc.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DiscPage {
    pub id: i64,
    pub started: Option<f64>,
    pub completed: Option<f64>,
    pub lost: bool,
    pub image: ImageState,
    /// The verified image's size.
    pub image_size: Option<u64>,
    pub verified: Option<f64>,
    pub contents: DiscContents,
    /// Its parity group, if any.
    pub group: Option<i64>,
    pub copies: Option<DiscCopies>,
}

/// One parity disc.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ParityPage {
    pub label: String,
    pub group: i64,
    pub protects: Vec<i64>,
    pub in_isos: bool,
    pub copies: Option<DiscCopies>,
}

/// What a lost disc cost.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LostCost {
    pub disc: i64,
    /// Versions with no other copy in the set (the watched folder may
    /// still hold the newest ones: `dbackup-lost N --what-if` tells).
    pub unrecoverable: crate::lost::Count,
    /// Versions its parity group can rebuild.
    pub recoverable_from_parity: crate::lost::Count,
    /// Versions whose content is on another disc.
    pub elsewhere: crate::lost::Count,
    /// Older versions superseded by one on a disc at hand.
    pub history_only: crate::lost::Count,
    /// A few of the unrecoverable names, escaped for display.
    pub examples: Vec<String>,
}

/// A copy due a check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DueCopy {
    pub disc: String,
    pub copy: i64,
    pub location: Option<String>,
    pub last_good_check: Option<f64>,
    pub due: f64,
}

/// The most unrecoverable names a lost disc's entry lists on the page.
const LOST_EXAMPLES: usize = 10;

/// Gathers one set's page from its workdir (opened for reading only, no
/// lock: cron may be staging meanwhile). The workdir comes back with it,
/// its catalogue in the read snapshot the search index was built from:
/// the index's names are written from there when the page is.
pub fn gather(root: &Path) -> Result<(SetPage, Workdir)> {
    let wd = Workdir::open_read(root)?;
    let status = crate::status::status(&wd)?;
    let generated = crate::copies::now();
    let cat = &wd.catalog;
    let shelf = Shelf::read(&wd)?;
    let images = cat.images()?;
    let groups = cat.parity_groups()?;
    let open = cat.open_disc()?;
    let mut discs = Vec::new();
    for d in cat.discs()? {
        let img = images.iter().find(|i| i.disc == d.id);
        let image = if open == Some(d.id) || d.completed.is_none() {
            ImageState::Open
        } else if img.is_some() && wd.layout.iso(d.id).is_file() {
            ImageState::InIsos
        } else if img.is_some() {
            ImageState::Removed
        } else if wd.layout.disc_dir(d.id).is_dir() {
            ImageState::WaitingForImage
        } else {
            ImageState::Unknown
        };
        let name = crate::copies::DiscName::Data(d.id);
        discs.push(DiscPage {
            id: d.id,
            started: d.started,
            completed: d.completed,
            lost: !d.available,
            image,
            image_size: img.map(|i| i.size),
            verified: img.map(|i| i.verified),
            contents: cat.disc_contents(d.id)?,
            group: groups
                .iter()
                .find(|g| g.discs.contains(&d.id))
                .map(|g| g.id),
            copies: shelf.discs.iter().find(|c| c.disc == name).cloned(),
        });
    }
    let mut parity = Vec::new();
    for g in &groups {
        for j in &g.built {
            let name = crate::copies::DiscName::Parity(g.id, *j);
            parity.push(ParityPage {
                label: name.label(),
                group: g.id,
                protects: g.discs.clone(),
                in_isos: wd.layout.isos().join(name.image_name()).is_file(),
                copies: shelf.discs.iter().find(|c| c.disc == name).cloned(),
            });
        }
    }
    let lost_ids: Vec<i64> = discs.iter().filter(|d| d.lost).map(|d| d.id).collect();
    let lost = lost_costs(&wd.layout.catalog(), &lost_ids)?;
    let due = shelf
        .due(generated)
        .into_iter()
        .map(|(d, c)| DueCopy {
            disc: d.disc.label(),
            copy: c.copy.copy,
            location: c.copy.location.clone(),
            last_good_check: c.last_good_check,
            due: c.due,
        })
        .collect();
    let below_policy = shelf
        .below_policy()
        .into_iter()
        .map(|d| d.disc.label())
        .collect();
    let index = index::NameIndex::build(cat)?;
    let page = SetPage {
        status,
        generated,
        discs,
        parity,
        months: cat.months()?,
        lost,
        due,
        below_policy,
        copies_policy: shelf.policy,
        check_every: crate::copies::show_every(shelf.every),
        index,
    };
    Ok((page, wd))
}

/// What each lost disc cost: one analysis over all of them, each version
/// counted for every lost disc holding some of it.
fn lost_costs(catalog: &Path, lost: &[i64]) -> Result<Vec<LostCost>> {
    if lost.is_empty() {
        return Ok(Vec::new());
    }
    let report = crate::lost::cost_from_catalogue(catalog, lost)?;
    let count = |entries: &[crate::lost::Entry], disc: i64| {
        entries.iter().filter(|e| e.discs.contains(&disc)).fold(
            crate::lost::Count::default(),
            |c, e| crate::lost::Count {
                files: c.files + 1,
                bytes: c.bytes.saturating_add(e.size),
            },
        )
    };
    Ok(lost
        .iter()
        .map(|&disc| LostCost {
            disc,
            unrecoverable: count(&report.unrecoverable, disc),
            recoverable_from_parity: count(&report.recoverable_from_parity, disc),
            elsewhere: count(&report.renamed, disc),
            history_only: count(&report.history_only, disc),
            examples: report
                .unrecoverable
                .iter()
                .filter(|e| e.discs.contains(&disc))
                .take(LOST_EXAMPLES)
                .map(|e| crate::names::display(&e.filename, true))
                .collect(),
        })
        .collect())
}

/// Gathers every set and writes the page to `path` atomically
/// ([`crate::fsutil::write_atomic_beside_with`]): a failure leaves any
/// earlier page as it was. The page is written as it is made, the search
/// index's names read a second time from each catalogue, so its memory
/// does not grow with the files.
pub fn write_html(path: &Path, roots: &[PathBuf]) -> Result<Written> {
    let start = std::time::Instant::now();
    // A set given twice is shown once.
    let mut seen = Vec::new();
    let mut pages = Vec::with_capacity(roots.len());
    let mut workdirs = Vec::with_capacity(roots.len());
    for root in roots {
        let key = root.canonicalize().map_err(|e| Error::io(root, e))?;
        if seen.contains(&key) {
            continue;
        }
        let (page, wd) = gather(root)?;
        seen.push(key);
        pages.push(page);
        workdirs.push(wd);
    }
    let path = &page_target(path, &seen, &pages)?;
    // A short fixed prefix: a page's own name may be as long as a name can be.
    let bytes = crate::fsutil::write_atomic_beside_with(
        path,
        ".dbackup-page.",
        "report::write",
        &mut |out| {
            html::render(&pages, out, path, &mut |i, out| {
                pages[i]
                    .index
                    .write_script_json(&workdirs[i].catalog, out, path)
            })
        },
    )?;
    Ok(Written {
        path: path.to_path_buf(),
        bytes,
        sets: pages.len() as u64,
        files: pages.iter().map(|p| p.index.files()).sum(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Where the page goes, after refusing every place where replacing a file
/// would destroy something: the page must be a regular file or not exist
/// yet (a symbolic link is followed to its target, which is replaced),
/// and neither it nor its folder may lie inside a workdir shown or inside
/// a set's watched folder (there it would overwrite the catalogue, an
/// image or the user's data, or be backed up by every run that rewrites
/// it).
fn page_target(path: &Path, workdirs: &[PathBuf], pages: &[SetPage]) -> Result<PathBuf> {
    let refuse = |why: String| Err(Error::Invalid(format!("{}: {why}", path.display())));
    let mut target = path.to_path_buf();
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_symlink() {
            target = match path.canonicalize() {
                Ok(t) => t,
                Err(_) => return refuse("is a symbolic link to nothing".into()),
            };
        }
    }
    match std::fs::metadata(&target) {
        Ok(m) if m.is_dir() => return refuse("is a folder; give the page's file name".into()),
        Ok(m) if !m.is_file() => {
            return refuse("exists and is not a regular file; the page replaces only a file".into())
        }
        _ => {}
    }
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = dir.canonicalize().map_err(|e| Error::io(&dir, e))?;
    for w in workdirs {
        if dir.starts_with(w) {
            return refuse(format!(
                "is inside the workdir {}; write the page elsewhere",
                w.display()
            ));
        }
    }
    for p in pages {
        let watched = p
            .status
            .Watched_dir
            .canonicalize()
            .unwrap_or_else(|_| p.status.Watched_dir.clone());
        if dir.starts_with(&watched) {
            return refuse(format!(
                "is inside the watched folder {}: every run would back it up; write the page elsewhere",
                watched.display()
            ));
        }
    }
    Ok(dir.join(target.file_name().unwrap_or_default()))
}

/// What [`write_html`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
    pub sets: u64,
    /// Names in the search index.
    pub files: u64,
    pub seconds: f64,
}

/// Whether `c` reorders the text around it (the bidirectional marks and
/// overrides): a name showing `evil<RLO>txt.exe` would read as
/// `evilexe.txt`, so the page shows these as escapes.
pub fn reorders_text(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The setting naming the page a run rewrites (`config report_html`).
pub const SETTING: &str = "report_html";

/// The page and the workdirs it shows, as `config report_html` stores
/// them: the page's file first, then the other sets (absolute paths).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PageSetting {
    pub html: PathBuf,
    #[serde(default)]
    pub others: Vec<PathBuf>,
}

/// The page setting of a workdir, if set.
pub fn page_setting(cat: &crate::catalog::Catalog) -> Result<Option<PageSetting>> {
    match cat.setting_text(SETTING)? {
        None => Ok(None),
        Some(t) if t.is_empty() => Ok(None),
        Some(t) => serde_json::from_str(&t)
            .map(Some)
            .map_err(|e| Error::Invalid(format!("setting {SETTING} is not readable: {e}"))),
    }
}

/// Rewrites the page a workdir's setting names, with this set first and
/// then the others; `None` when no page is set.
pub fn refresh(root: &Path) -> Result<Option<Written>> {
    let setting = {
        let wd = Workdir::open_read(root)?;
        page_setting(&wd.catalog)?
    };
    let Some(s) = setting else { return Ok(None) };
    let mut roots = vec![root.to_path_buf()];
    roots.extend(s.others.iter().cloned());
    write_html(&s.html, &roots).map(Some)
}
