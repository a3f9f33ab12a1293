//! `dbackup-find`: where is my file? Answers from the newest manifest among
//! the discs given: each matching file with its versions, its latest backup
//! and the disc that holds it, and whether that disc is at hand or lost. A
//! file split over several discs is one row with all its discs and parts,
//! and is at hand only when every one of its discs is.

use std::collections::HashSet;
use std::path::PathBuf;

use crate::history::{self, Matcher};
use crate::medium::DiscSet;

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct FindOptions {
    pub discs: Vec<PathBuf>,
    pub patterns: Vec<String>,
    pub ignore_case: bool,
    pub all_versions: bool,
    pub as_of: Option<f64>,
    /// List files recorded deleted (instead of live ones).
    pub deleted: bool,
}

/// Where a disc is, seen from the discs given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Among the discs given.
    Given,
    /// Not given, but not marked lost.
    NotGiven,
    /// Marked lost in the set's history.
    Lost,
    /// Not given or marked lost, but its parity group can rebuild it: from
    /// the discs given (as `dbackup-restore` would), or, for a disc marked
    /// lost, from the group's other discs and its parity disc(s), which the
    /// history records as made.
    Parity,
}

impl Availability {
    pub fn as_str(&self) -> &'static str {
        match self {
            Availability::Given => "given",
            Availability::NotGiven => "not given",
            Availability::Lost => "lost",
            Availability::Parity => "recoverable from parity",
        }
    }

    /// Of a version held by several discs: lost when any of them is lost,
    /// given only when all are given (a split file needs every part).
    pub fn of_all(each: impl IntoIterator<Item = Availability>) -> Availability {
        each.into_iter()
            .fold(Availability::Given, |acc, a| match (acc, a) {
                (Availability::Lost, _) | (_, Availability::Lost) => Availability::Lost,
                (Availability::NotGiven, _) | (_, Availability::NotGiven) => Availability::NotGiven,
                (Availability::Parity, _) | (_, Availability::Parity) => Availability::Parity,
                _ => Availability::Given,
            })
    }
}

/// One part of a split version, where it is and whether its disc is at hand.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FoundPart {
    pub part: u32,
    pub disc: i64,
    pub offset: u64,
    pub size: u64,
    pub md5: String,
    pub availability: Availability,
}

/// One row: a file (its current version) or, with `all_versions`, a version.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Found {
    #[serde(serialize_with = "ser_name")]
    pub filename: Vec<u8>,
    pub id: i64,
    /// The disc holding it; for a split version, its first part's.
    pub disc: i64,
    /// Every disc holding some of it, ascending (one for a whole file).
    pub discs: Vec<i64>,
    /// A split version's parts in order; empty (and left out of JSON) for
    /// a whole file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<FoundPart>,
    /// Its discs that are not among those given (lost ones included): all
    /// of them are needed to restore it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_discs: Vec<i64>,
    pub md5: String,
    pub size: u64,
    pub mtime: f64,
    /// When this version was backed up.
    pub timestamp: f64,
    /// Versions of the file up to the time asked (all when not given).
    pub versions: usize,
    pub desc: String,
    /// `given` only when every disc holding it is given; `lost` when any is
    /// lost; otherwise `not_given`.
    pub availability: Availability,
    /// When the file was recorded deleted, if it was by then.
    pub deleted: Option<f64>,
}

fn ser_name<S: serde::Serializer>(name: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::names::display(name, false))
}

/// The answer.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FindReport {
    pub found: Vec<Found>,
    /// Manifest rows that were malformed and left out.
    pub invalid_rows: u64,
    /// The disc whose manifest answered.
    pub history_disc: i64,
    /// Discs given twice, left out.
    pub duplicates: Vec<PathBuf>,
    /// Matching versions recorded damaged (id, disc, name): their staged
    /// copy rotted before an image held it; no backup, on no disc.
    pub damaged: Vec<(i64, i64, Vec<u8>)>,
}

/// Why `find` failed.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error(transparent)]
    Medium(#[from] crate::medium::MediumError),
    #[error(transparent)]
    Manifest(#[from] crate::catalog::manifest::ManifestError),
    #[error("{0}")]
    Pattern(String),
}

/// Looks up the patterns in the newest manifest among the discs.
pub fn find(opts: &FindOptions) -> Result<FindReport, FindError> {
    let matcher = Matcher::new(&opts.patterns, opts.ignore_case).map_err(FindError::Pattern)?;
    let set = DiscSet::open(&opts.discs)?;
    let manifest = set.history();
    let given: HashSet<i64> = set.media.iter().map(|m| m.disc).collect();
    let lost: HashSet<i64> = manifest
        .discs()?
        .into_iter()
        .filter(|d| !d.available)
        .map(|d| d.id)
        .collect();
    // Discs the given ones can rebuild, and lost discs whose group, as the
    // history records it, has enough parity discs made to rebuild them.
    let mut rebuildable: HashSet<i64> = crate::parity::rebuild::coverage(&set)
        .into_iter()
        .filter(|c| c.can_rebuild())
        .flat_map(|c| c.missing)
        .filter(|d| !given.contains(d))
        .collect();
    let (groups, _invalid) = manifest.parity_groups()?;
    // Bounded by the set's groups.
    for g in groups.iter().filter(|g| !g.built.is_empty()) {
        let lost_here: Vec<i64> = g
            .members
            .iter()
            .map(|m| m.disc)
            .filter(|d| lost.contains(d) && !given.contains(d))
            .collect();
        if lost_here.len() <= g.built.len() {
            rebuildable.extend(lost_here);
        }
    }
    let availability = |disc: i64| {
        if rebuildable.contains(&disc) {
            Availability::Parity
        } else if lost.contains(&disc) {
            Availability::Lost
        } else if given.contains(&disc) {
            Availability::Given
        } else {
            Availability::NotGiven
        }
    };
    let selection = history::select(manifest, &matcher, opts.as_of)?;
    let mut found = Vec::new();
    for f in &selection.files {
        if f.deleted.is_some() != opts.deleted {
            continue;
        }
        let versions: Vec<_> = if opts.all_versions {
            f.versions.iter().collect()
        } else {
            vec![f.current()]
        };
        for v in versions {
            let discs = v.discs();
            found.push(Found {
                filename: f.name.clone(),
                id: v.id,
                disc: v.disc,
                parts: v
                    .parts
                    .iter()
                    .map(|p| FoundPart {
                        part: p.part,
                        disc: p.disc,
                        offset: p.offset,
                        size: p.size,
                        md5: p.md5.clone(),
                        availability: availability(p.disc),
                    })
                    .collect(),
                missing_discs: discs
                    .iter()
                    .copied()
                    .filter(|d| !given.contains(d))
                    .collect(),
                availability: Availability::of_all(discs.iter().map(|&d| availability(d))),
                discs,
                md5: v.md5.clone(),
                size: v.size,
                mtime: v.mtime,
                timestamp: v.timestamp,
                versions: f.versions.len(),
                desc: v.desc.clone(),
                deleted: f.deleted,
            });
        }
    }
    Ok(FindReport {
        found,
        invalid_rows: selection.invalid_rows,
        history_disc: set.history_medium().disc,
        duplicates: set.duplicates.clone(),
        damaged: manifest
            .damaged()?
            .into_iter()
            .filter(|(_, _, name)| matcher.matches(name))
            .collect(),
    })
}
