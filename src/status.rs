//! `dbackup-stage status`: the state of a workdir, with the original's keys
//! and meanings plus the totals a user wants.

use std::path::PathBuf;

use crate::error::Result;
use crate::workdir::Workdir;

/// The status of a workdir. Field names are the original's keys.
#[derive(Debug, Clone, serde::Serialize)]
#[allow(non_snake_case)]
pub struct Status {
    pub Staging_dir: PathBuf,
    pub Watched_dir: PathBuf,
    pub Set_name: String,
    pub Set_uuid: String,
    pub Current_disc: i64,
    /// Bytes a disc may hold.
    pub Disc_threshold: u64,
    /// What the open disc's image will take: its files in whole 2 KiB
    /// sectors, the catalogue, and the image's own structures.
    pub Current_usage: u64,
    pub Disc_Pct_full: u64,
    pub Database_size: u64,
    /// Bytes of the files staged on the open disc.
    pub Files_size: u64,
    /// The catalogue's share of the current usage, in percent.
    pub Pct_database: u64,
    /// The catalogue's size relative to the files', in percent.
    pub Pct_db_overhead: u64,
    /// Verified disc images in the workdir's `isos/`.
    pub available_isos: u64,
    pub Files_on_current_disc: u64,
    pub Files_backed_up: u64,
    pub Bytes_backed_up: u64,
    pub Discs_closed: u64,
    /// Closed discs whose staged copy still waits for an image.
    pub Discs_waiting_for_image: Vec<i64>,
    /// Discs marked lost.
    pub Lost_discs: Vec<i64>,
    /// Last monitor run (Unix seconds), if any.
    pub Last_run: Option<f64>,
    /// Versions whose staged copy rotted with no good copy left: no backup.
    pub Damaged_versions: Vec<DamagedVersion>,
    /// Split files (larger than a disc) whose parts are still being staged:
    /// no backup yet; the next monitor goes on with them.
    pub Split_files_in_progress: Vec<SplitProgress>,
    /// The parity scheme for new groups (`4+1`), or `off`.
    pub Parity: String,
    /// Closed data discs whose group's parity discs are all made (ranges,
    /// `1-8, 10`), or `none`.
    pub Protected_discs: String,
    /// Closed data discs not protected yet: their group is still open or
    /// waits for its parity discs, or they are in no group (ranges), or
    /// `none`.
    pub Unprotected_discs: String,
    /// Parity discs made and read back (`1-1, 2-1`), each an image
    /// `isos/parity-G-J.iso` to burn.
    pub Parity_discs: Vec<String>,
    /// Parity groups not complete yet, and what each waits for.
    pub Parity_groups_waiting: Vec<String>,
    /// Copies of each disc the set should hold (`copies`).
    pub Copies_policy: u64,
    /// Discs held in fewer copies than that (lost discs left out): data
    /// discs by number, parity discs as `parity-G-J`.
    pub Discs_below_copies: String,
    /// Copies whose last good check is older than `check_every`, or that
    /// were never checked (`dbackup-verify --due` lists them).
    pub Checks_due: u64,
}

/// A split file still being staged.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SplitProgress {
    pub filename: String,
    pub id: i64,
    pub size: u64,
    /// Bytes in recorded parts.
    pub staged: u64,
    /// Discs holding its recorded parts.
    pub discs: Vec<i64>,
}

/// A version recorded as damaged.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DamagedVersion {
    pub filename: String,
    pub id: i64,
    pub disc: i64,
    pub reason: String,
}

fn pct(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        0
    } else {
        ((part as u128 * 100) / whole as u128) as u64
    }
}

/// Reads the status of the workdir.
pub fn status(wd: &Workdir) -> Result<Status> {
    let cat = &wd.catalog;
    let disc = cat.open_disc()?.or(cat.last_disc()?).unwrap_or(0);
    let usage = cat.disc_usage(disc)?;
    let db = cat.db_size()?;
    let totals = cat.totals()?;
    let discs = cat.discs()?;
    // Only images recorded as verified, under their final name: a failed
    // one (`disc-N.iso.failed`) or one being written is no image to burn.
    let images = cat.images()?;
    let isos = images
        .iter()
        .filter(|i| wd.layout.iso(i.disc).is_file())
        .count() as u64;
    let waiting = discs
        .iter()
        .filter(|d| d.completed.is_some() && !images.iter().any(|i| i.disc == d.id))
        .filter(|d| wd.layout.disc_dir(d.id).is_dir())
        .map(|d| d.id)
        .collect();
    let damaged = cat
        .damaged()?
        .into_iter()
        .map(|d| DamagedVersion {
            filename: crate::names::display(&d.name, false),
            id: d.file_id,
            disc: d.disc,
            reason: d.reason,
        })
        .collect();
    let splits = cat
        .splits_in_progress()?
        .into_iter()
        .map(|s| SplitProgress {
            filename: crate::names::display(&s.name, false),
            id: s.id,
            size: s.size,
            staged: s.staged(),
            discs: s.parts.iter().map(|p| p.disc).collect(),
        })
        .collect();
    let current_usage = crate::disc::usage(&usage, db);
    let scheme = cat.parity_scheme()?;
    let groups = if cat.has_parity_tables()? {
        cat.parity_groups()?
    } else {
        Vec::new()
    };
    use crate::catalog::parity::GroupState;
    let mut protected = Vec::new();
    let mut parity_discs = Vec::new();
    let mut waiting_groups = Vec::new();
    // Bounded by the set's groups.
    for g in &groups {
        for &j in &g.built {
            parity_discs.push(format!("{}-{j}", g.id));
        }
        let range = crate::output::discs(&g.discs);
        match g.state {
            GroupState::Complete => protected.extend(g.discs.iter().copied()),
            GroupState::Full => waiting_groups.push(format!(
                "group {} (discs {range}, {}): full, its parity discs are made once its images are verified",
                g.id, g.scheme
            )),
            GroupState::Open => waiting_groups.push(format!(
                "group {} (discs {range}, {}): {} of {} data discs",
                g.id,
                g.scheme,
                g.discs.len(),
                g.scheme.k
            )),
        }
    }
    let unprotected: Vec<i64> = discs
        .iter()
        .filter(|d| d.completed.is_some() && !protected.contains(&d.id))
        .map(|d| d.id)
        .collect();
    let ranges = |v: &[i64]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            crate::output::discs(v)
        }
    };
    let shelf = crate::copies::Shelf::read(wd)?;
    let below_copies = {
        use crate::copies::DiscName;
        let below = shelf.below_policy();
        let data: Vec<i64> = below
            .iter()
            .filter_map(|d| match d.disc {
                DiscName::Data(n) => Some(n),
                DiscName::Parity(..) => None,
            })
            .collect();
        let mut parts: Vec<String> = Vec::new();
        if !data.is_empty() {
            parts.push(crate::output::discs(&data));
        }
        parts.extend(
            below
                .iter()
                .filter(|d| matches!(d.disc, DiscName::Parity(..)))
                .map(|d| d.disc.key()),
        );
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    };
    Ok(Status {
        Staging_dir: wd.layout.root.clone(),
        Watched_dir: wd.settings.watched.clone(),
        Set_name: wd.settings.name.clone(),
        Set_uuid: wd.settings.uuid.clone(),
        Current_disc: disc,
        Disc_threshold: wd.settings.disc_size,
        Current_usage: current_usage,
        Disc_Pct_full: pct(current_usage, wd.settings.disc_size),
        Database_size: db,
        Files_size: usage.bytes,
        Pct_database: pct(db, current_usage),
        Pct_db_overhead: pct(db, usage.bytes),
        available_isos: isos,
        Files_on_current_disc: usage.files,
        Files_backed_up: totals.files,
        Bytes_backed_up: totals.bytes,
        Discs_closed: totals.discs_closed,
        Discs_waiting_for_image: waiting,
        Lost_discs: discs
            .iter()
            .filter(|d| !d.available)
            .map(|d| d.id)
            .collect(),
        Last_run: cat.state_f64("last_run")?,
        Damaged_versions: damaged,
        Split_files_in_progress: splits,
        Parity: scheme.map_or_else(|| "off".to_string(), |s| s.to_string()),
        Protected_discs: ranges(&protected),
        Unprotected_discs: ranges(&unprotected),
        Parity_discs: parity_discs,
        Parity_groups_waiting: waiting_groups,
        Copies_policy: shelf.policy,
        Discs_below_copies: below_copies,
        Checks_due: shelf.due(crate::copies::now()).len() as u64,
    })
}
