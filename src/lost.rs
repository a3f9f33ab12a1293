//! `dbackup-lost`: what losing discs really cost, and protecting again what
//! still can be. dBackup keeps one copy of each version, so a version whose
//! disc is lost survives only where its content still is: in the origin
//! (same path, or another after a rename) or on another available disc.
//!
//! A version split over several discs is lost with any of them, counted
//! once however many of its discs are lost, and held only while every one
//! of its discs is.
//!
//! Each version on a lost disc falls into one category:
//! - history only: a newer version of the file is on a disc still at hand
//!   (available, not lost; the open disc counts): the loss is history;
//! - re-protectable: the origin holds that exact content at the same path
//!   (size, mtime and an MD5 read now agree): `--restage` stages it again;
//! - renamed, safe: the same content (size and MD5) is on an available disc
//!   or in the origin under another path;
//! - recoverable from parity: every lost disc holding it is one its parity
//!   group can rebuild (no more of the group's data discs lost than it has
//!   parity discs built); the note names the discs needed. Taken before
//!   the origin: a rebuilt disc gives back the exact disc, at no new disc;
//! - unrecoverable: none of these; the data is gone for good.
//!
//! A version recorded damaged (its staged copy rotted before any image
//! held it) is on no disc: it never holds content or supersedes a version,
//! and those of the discs named are listed apart, in `damaged`, since
//! losing the disc loses nothing more of them.
//!
//! MD5s of the origin are read only for candidates: same path with matching
//! size and mtime, or a file whose size equals that of an otherwise lost
//! version.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use md5::{Digest, Md5};

use crate::catalog::manifest::{Manifest, Version};
use crate::error::{Error, Result};
use crate::names;
use crate::progress::Progress;
use crate::scan::Change;
use crate::stage::{self, Event};
use crate::workdir::Workdir;

/// Where the set's history comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A workdir: its live catalogue is read, marked and restaged into.
    Workdir(PathBuf),
    /// A manifest alone (e.g. from the newest disc): report only.
    Manifest(PathBuf),
}

/// What to do.
#[derive(Debug, Clone)]
pub struct LostOptions {
    pub source: Source,
    pub discs: Vec<i64>,
    /// The live folder (default: the set's watched folder).
    pub origin: Option<PathBuf>,
    pub what_if: bool,
    pub restage: bool,
    pub found: bool,
    /// The copy of the one disc named that is lost (or found).
    pub copy: Option<i64>,
}

/// One version in the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    #[serde(serialize_with = "ser_name")]
    pub filename: Vec<u8>,
    pub id: i64,
    pub size: u64,
    pub md5: String,
    /// The disc holding it; for a split version, its first part's.
    pub disc: i64,
    /// Every disc holding some of it, ascending (one for a whole file).
    pub discs: Vec<i64>,
    pub mtime: f64,
    /// Where the content is safe (renamed), or what superseded it (history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn ser_name<S: serde::Serializer>(name: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&names::display(name, false))
}

/// Files and bytes of a category.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Count {
    pub files: u64,
    pub bytes: u64,
}

/// Totals per category.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Totals {
    pub unrecoverable: Count,
    pub recoverable_from_parity: Count,
    pub renamed: Count,
    pub reprotectable: Count,
    pub history_only: Count,
    pub damaged: Count,
}

/// The report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LostReport {
    /// The discs this run is about.
    pub discs: Vec<i64>,
    /// Every disc counted as lost in the analysis (these and earlier ones).
    pub lost_discs: Vec<i64>,
    /// Whether the mark (lost, or found with --found) was committed.
    pub marked: bool,
    pub found: bool,
    pub unrecoverable: Vec<Entry>,
    /// Versions whose lost discs their parity groups can rebuild: the note
    /// names the discs and parity discs needed.
    pub recoverable_from_parity: Vec<Entry>,
    pub renamed: Vec<Entry>,
    pub reprotectable: Vec<Entry>,
    pub history_only: Vec<Entry>,
    /// Versions the discs named were to hold but that were recorded
    /// damaged before reaching them: no backup, and not on the disc.
    pub damaged: Vec<Entry>,
    /// Split files still being staged (no backup yet) with a part on a
    /// disc named: abandoned (with `--what-if`: would be), so that the
    /// next monitor takes the file again instead of finishing a version
    /// that could never be restored. A workdir's only.
    pub unfinished: Vec<Entry>,
    pub totals: Totals,
    /// Files staged again with --restage.
    pub restaged: u64,
    pub restaged_bytes: u64,
    /// Re-protectable files that could not be staged again, with why.
    pub restage_problems: Vec<String>,
    /// Malformed manifest rows left out.
    pub invalid_rows: u64,
    /// The disc named still has other copies: only the copy was marked
    /// lost (with `--what-if`: would be), and nothing is lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub still_held: Option<StillHeld>,
}

/// A disc whose lost copy was not its last.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StillHeld {
    pub disc: i64,
    /// The copy marked lost.
    pub copy: i64,
    /// The copies still held, with where each is.
    pub held: Vec<crate::catalog::copies::CopyRow>,
}

fn count(entries: &[Entry]) -> Count {
    Count {
        files: entries.len() as u64,
        // Sizes come from an untrusted manifest: a crafted one can add up
        // past 2^64.
        bytes: entries
            .iter()
            .fold(0u64, |sum, e| sum.saturating_add(e.size)),
    }
}

fn entry(v: &Version, note: Option<String>) -> Entry {
    Entry {
        filename: v.name.clone(),
        id: v.id,
        size: v.size,
        md5: v.md5.clone(),
        disc: v.disc,
        discs: v.discs(),
        mtime: v.mtime,
        note,
    }
}

/// Marks discs lost (or found), reports the cost, and restages on request.
pub fn lost(opts: &LostOptions, progress: &Progress) -> Result<LostReport> {
    match &opts.source {
        Source::Manifest(path) => {
            if opts.restage || opts.found {
                return Err(Error::Invalid(
                    "--restage and --found need a workdir (-w); with --manifest dbackup-lost only reports".into(),
                ));
            }
            let manifest = Manifest::open(path).map_err(|e| Error::Invalid(e.to_string()))?;
            let origin = opts
                .origin
                .clone()
                .ok_or_else(|| Error::Invalid("--manifest needs --origin DIR".into()))?;
            check_discs(&manifest, &opts.discs, path)?;
            analyse(&manifest, &opts.discs, Some(&origin), progress)
        }
        Source::Workdir(root) => {
            let (mut wd, _) = if opts.what_if {
                (Workdir::open_read(root)?, Default::default())
            } else {
                Workdir::open_write(root)?
            };
            let catalog = wd.layout.catalog();
            let view = Manifest::open_live(&catalog).map_err(|e| Error::Invalid(e.to_string()))?;
            check_discs(&view, &opts.discs, &catalog)?;
            drop(view);
            let last_copies = match lose_a_copy(&mut wd, opts)? {
                Copies::Done(report) => return Ok(*report),
                Copies::LostWithDisc(c) => c,
            };
            if opts.found {
                wd.catalog.set_available(&opts.discs, true)?;
                return Ok(LostReport {
                    discs: opts.discs.clone(),
                    marked: true,
                    found: true,
                    ..Default::default()
                });
            }
            // A split file still being staged with a part on a disc being
            // lost must not be resumed onto it (it would become a backup
            // that cannot be restored, and the file would look backed
            // up): it is abandoned, and the next run takes the file again.
            // Before the mark, so that a kill between the two leaves at
            // worst a file taken again while its disc is still at hand.
            let unfinished: Vec<Entry> = wd
                .catalog
                .splits_in_progress()?
                .into_iter()
                .filter(|s| s.parts.iter().any(|p| opts.discs.contains(&p.disc)))
                .map(|s| {
                    let mut discs: Vec<i64> = s.parts.iter().map(|p| p.disc).collect();
                    discs.dedup();
                    Entry {
                        filename: s.name.clone(),
                        id: s.id,
                        size: s.size,
                        md5: String::new(),
                        disc: discs.first().copied().unwrap_or_default(),
                        discs,
                        mtime: s.mtime,
                        note: Some(
                            "unfinished split version with a part on a lost disc: abandoned, \
                             the next monitor takes the file again"
                                .into(),
                        ),
                    }
                })
                .collect();
            if !opts.what_if {
                for u in &unfinished {
                    let lost: Vec<i64> = u
                        .discs
                        .iter()
                        .copied()
                        .filter(|d| opts.discs.contains(d))
                        .collect();
                    wd.catalog.abandon_split(
                        u.id,
                        &format!("a part is on disc {}, lost", crate::output::discs(&lost)),
                    )?;
                }
                wd.catalog.set_available(&opts.discs, false)?;
                // The disc's last copy goes with it, after the mark.
                for (d, c) in &last_copies {
                    wd.catalog.set_copy_lost(
                        &crate::copies::DiscName::Data(*d),
                        *c,
                        Some(crate::copies::now()),
                    )?;
                }
            }
            let origin = opts
                .origin
                .clone()
                .unwrap_or_else(|| wd.settings.watched.clone());
            let view = Manifest::open_live(&catalog).map_err(|e| Error::Invalid(e.to_string()))?;
            let mut report = analyse(&view, &opts.discs, Some(&origin), progress)?;
            drop(view);
            report.unfinished = unfinished;
            report.marked = !opts.what_if;
            if opts.restage && !report.reprotectable.is_empty() {
                restage(&mut wd, &origin, &mut report, progress)?;
            }
            Ok(report)
        }
    }
}

/// What the copies decided.
enum Copies {
    /// Only a copy was concerned (lost while another is held, or found):
    /// the report says so, nothing else happens.
    Done(Box<LostReport>),
    /// The discs are lost, and with them these last copies (disc, copy),
    /// marked after the discs are.
    LostWithDisc(Vec<(i64, i64)>),
}

/// Copies: with `--copy C` only that copy is marked lost (or found), and
/// while another copy is held the disc is not lost: the report says so
/// and nothing else happens. Without it, a disc held in several copies
/// is refused (which one was lost?), and the one copy of a disc held in
/// one is lost with it.
fn lose_a_copy(wd: &mut Workdir, opts: &LostOptions) -> Result<Copies> {
    use crate::copies::DiscName;
    let held_copies = |wd: &Workdir, d: i64| wd.catalog.held_copies(&DiscName::Data(d));
    let Some(copy) = opts.copy else {
        let mut last = Vec::new();
        if opts.found {
            // A disc held in no copy, whose one copy was lost (with it, by
            // `dbackup-lost N`): that copy is what was found. With several
            // lost, which one must be said. All checked before any is marked.
            let mut found = Vec::new();
            for &d in &opts.discs {
                if !held_copies(wd, d)?.is_empty() {
                    continue;
                }
                let gone: Vec<_> = wd
                    .catalog
                    .copies(Some(&DiscName::Data(d)))?
                    .into_iter()
                    .filter(|c| c.lost.is_some())
                    .collect();
                match gone[..] {
                    [] => {}
                    [ref one] => found.push((d, one.copy)),
                    _ => {
                        return Err(Error::Invalid(format!(
                        "disc {d} has {} copies marked lost ({}); name the one found with --copy C",
                        gone.len(),
                        where_held(&gone)
                    )))
                    }
                }
            }
            for &(d, c) in &found {
                wd.catalog.set_copy_lost(&DiscName::Data(d), c, None)?;
            }
            return Ok(Copies::LostWithDisc(found));
        }
        for &d in &opts.discs {
            let held = held_copies(wd, d)?;
            if held.len() > 1 {
                return Err(Error::Invalid(format!(
                    "disc {d} is held in {} copies ({}); name the one lost with --copy C: a disc is lost only with its last copy",
                    held.len(),
                    where_held(&held)
                )));
            }
            last.extend(held.first().map(|c| (d, c.copy)));
        }
        return Ok(Copies::LostWithDisc(last));
    };
    let [disc] = opts.discs[..] else {
        return Err(Error::Invalid(
            "--copy names a copy of one disc: give one DISC".into(),
        ));
    };
    let name = DiscName::Data(disc);
    let Some(row) = wd.catalog.copy(&name, copy)? else {
        return Err(Error::Invalid(format!(
            "disc {disc} has no copy {copy} (see dbackup-stage copies)"
        )));
    };
    if opts.found {
        if row.lost.is_none() {
            return Err(Error::Invalid(format!(
                "disc {disc} copy {copy} is not marked lost"
            )));
        }
        wd.catalog.set_copy_lost(&name, copy, None)?;
        return Ok(Copies::Done(Box::new(LostReport {
            discs: opts.discs.clone(),
            marked: true,
            found: true,
            ..Default::default()
        })));
    }
    if row.lost.is_some() {
        return Err(Error::Invalid(format!(
            "disc {disc} copy {copy} is already marked lost"
        )));
    }
    let others: Vec<_> = held_copies(wd, disc)?
        .into_iter()
        .filter(|c| c.copy != copy)
        .collect();
    if others.is_empty() {
        // The last copy: the disc is lost, and the report says what that costs.
        return Ok(Copies::LostWithDisc(vec![(disc, copy)]));
    }
    if !opts.what_if {
        wd.catalog
            .set_copy_lost(&name, copy, Some(crate::copies::now()))?;
    }
    Ok(Copies::Done(Box::new(LostReport {
        discs: opts.discs.clone(),
        marked: !opts.what_if,
        still_held: Some(StillHeld {
            disc,
            copy,
            held: others,
        }),
        ..Default::default()
    })))
}

/// `copy 1 at home, copy 2`.
pub fn where_held(copies: &[crate::catalog::copies::CopyRow]) -> String {
    copies
        .iter()
        .map(|c| match &c.location {
            Some(l) => format!("copy {} at {}", c.copy, names::display(l.as_bytes(), true)),
            None => format!("copy {} (no location recorded)", c.copy),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every named disc must exist and be closed; otherwise nothing changes.
fn check_discs(manifest: &Manifest, discs: &[i64], path: &Path) -> Result<()> {
    let known = manifest
        .discs()
        .map_err(|e| Error::Invalid(e.to_string()))?;
    for d in discs {
        match known.iter().find(|k| k.id == *d) {
            None => {
                return Err(Error::Invalid(format!(
                    "there is no disc {d} in {}",
                    path.display()
                )))
            }
            Some(k) if k.completed.is_none() => {
                return Err(Error::Invalid(format!(
                    "disc {d} is still open: its files are staged in the workdir, not on a disc"
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The origin path of a catalogue name, or `None` for a name that could
/// lead outside the origin (the manifest is untrusted).
fn origin_path(origin: &Path, name: &[u8]) -> Option<PathBuf> {
    let rel = names::to_relative(name);
    if rel.as_os_str().is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(origin.join(rel))
}

fn md5_file(path: &Path, progress: &Progress) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        progress.add_bytes(n as u64);
    }
    Ok(crate::mkiso::hex(&h.finalize()))
}

/// What the discs marked lost cost, from the catalogue alone (the watched
/// folder is not read): nothing counts as re-protectable, and a version
/// whose content is nowhere else in the set counts as unrecoverable even
/// if the watched folder still holds it (`dbackup-lost N --what-if` tells).
/// For a status page.
pub fn cost_from_catalogue(catalog: &Path, discs: &[i64]) -> Result<LostReport> {
    let view = Manifest::open_live(catalog).map_err(|e| Error::Invalid(e.to_string()))?;
    analyse(&view, discs, None, &Progress::hidden())
}

/// The analysis; `origin` is the live folder to look for lost content in,
/// or `None` to look in the catalogue only.
fn analyse(
    manifest: &Manifest,
    named: &[i64],
    origin: Option<&Path>,
    progress: &Progress,
) -> Result<LostReport> {
    let err = |e: crate::catalog::manifest::ManifestError| Error::Invalid(e.to_string());
    let discs = manifest.discs().map_err(err)?;
    let mut lost: HashSet<i64> = discs
        .iter()
        .filter(|d| !d.available)
        .map(|d| d.id)
        .collect();
    lost.extend(named.iter().copied());
    // The discs that still hold versions: known, available, and not among
    // those being lost now (the open disc is one: its files are staged).
    let holders: HashSet<i64> = discs
        .iter()
        .filter(|d| d.available && !lost.contains(&d.id))
        .map(|d| d.id)
        .collect();
    // A version is held when every disc with some of it is (a split one
    // needs all its parts).
    let held = |v: &Version| v.discs().iter().all(|d| holders.contains(d));
    // The lost discs their parity groups can rebuild: a group with B
    // parity discs built rebuilds up to B lost data discs (parity discs
    // are never marked lost: each is a disc the user keeps with the set).
    let (groups, invalid_groups) = manifest.parity_groups().map_err(err)?;
    let mut rebuildable: HashMap<i64, String> = HashMap::new();
    // Bounded by the set's groups and their members.
    for g in groups.iter().filter(|g| !g.built.is_empty()) {
        let lost_members: Vec<i64> = g
            .members
            .iter()
            .map(|m| m.disc)
            .filter(|d| lost.contains(d))
            .collect();
        if lost_members.is_empty() || lost_members.len() > g.built.len() {
            continue;
        }
        let survivors: Vec<i64> = g
            .members
            .iter()
            .map(|m| m.disc)
            .filter(|d| !lost.contains(d))
            .collect();
        let parity: Vec<String> = g.built.iter().map(|j| format!("{}-{j}", g.id)).collect();
        for &d in &lost_members {
            rebuildable.insert(
                d,
                format!(
                    "disc {d} can be rebuilt from {} and parity disc {} (dbackup-lost {d} --rebuild -d IMAGES... --to disc-{d}.iso, or give them to dbackup-restore)",
                    if survivors.is_empty() {
                        "no other data disc".to_string()
                    } else {
                        format!("the images of discs {}", crate::output::discs(&survivors))
                    },
                    parity.join(", ")
                ),
            );
        }
    }
    let mut report = LostReport {
        discs: named.to_vec(),
        lost_discs: {
            let mut v: Vec<i64> = lost.iter().copied().collect();
            v.sort_unstable();
            v
        },
        ..Default::default()
    };
    // Versions whose content must be looked for elsewhere.
    let mut unresolved: Vec<Version> = Vec::new();
    let mut named_sorted = named.to_vec();
    named_sorted.sort_unstable();
    named_sorted.dedup();
    let mut on_named: Vec<Version> = Vec::new();
    for &d in &named_sorted {
        let (versions, invalid) = manifest.disc_versions(d).map_err(err)?;
        report.invalid_rows += invalid;
        on_named.extend(versions);
    }
    // Split versions with a part on a disc named, each once however many
    // of its parts those discs hold (their `files` row names no disc).
    let _other_invalid = manifest
        .for_each_split_version(&mut |v| {
            if v.is_split() && v.discs().iter().any(|d| named_sorted.contains(d)) {
                on_named.push(v);
            }
        })
        .map_err(err)?;
    // The newest version of each of these names on a disc at hand, in one
    // pass over the manifest (not one query per version: a manifest need
    // not have an index on names).
    let wanted_names: HashSet<&[u8]> = on_named.iter().map(|v| v.name.as_slice()).collect();
    let mut newest_held: HashMap<Vec<u8>, (i64, Vec<i64>)> = HashMap::new();
    let _other_invalid = manifest
        .for_each_version_kept(&mut |p| wanted_names.contains(p.name), &mut |w| {
            if !held(&w) {
                return;
            }
            let e = newest_held
                .entry(w.name.clone())
                .or_insert((w.id, w.discs()));
            if w.id > e.0 {
                *e = (w.id, w.discs());
            }
        })
        .map_err(err)?;
    report.invalid_rows += invalid_groups;
    for v in on_named {
        // Only a disc that is still at hand holds a version: a newer
        // version on a lost disc supersedes nothing.
        if let Some((id, discs)) = newest_held.get(&v.name).filter(|(id, _)| *id > v.id) {
            report.history_only.push(entry(
                &v,
                Some(format!(
                    "superseded by version {id} on disc{} {}",
                    if discs.len() > 1 { "s" } else { "" },
                    crate::output::discs(discs)
                )),
            ));
            continue;
        }
        let discs = v.discs();
        if discs.iter().any(|d| rebuildable.contains_key(d))
            && discs
                .iter()
                .all(|d| holders.contains(d) || rebuildable.contains_key(d))
        {
            let mut notes: Vec<&str> = discs
                .iter()
                .filter_map(|d| rebuildable.get(d).map(String::as_str))
                .collect();
            notes.dedup();
            report
                .recoverable_from_parity
                .push(entry(&v, Some(notes.join("; "))));
            continue;
        }
        let here = origin.and_then(|o| origin_path(o, &v.name)).and_then(|p| {
            let m = std::fs::symlink_metadata(&p).ok()?;
            (m.is_file()
                && m.len() == v.size
                && v.recorded_mtime().matches(m.mtime(), m.mtime_nsec()))
            .then_some(p)
        });
        if let Some(p) = here {
            if md5_file(&p, progress).is_ok_and(|m| m == v.md5) {
                report.reprotectable.push(entry(&v, None));
                continue;
            }
        }
        unresolved.push(v);
    }
    // The same content on a disc that is not lost (or staged on the open one).
    if !unresolved.is_empty() {
        let wanted: HashSet<(&str, u64)> = unresolved
            .iter()
            .map(|v| (v.md5.as_str(), v.size))
            .collect();
        let mut found: HashMap<(String, u64), String> = HashMap::new();
        // Malformed rows of other discs are not this report's business.
        let sizes: HashSet<u64> = unresolved.iter().map(|v| v.size).collect();
        let _other_invalid = manifest
            .for_each_version_kept(
                &mut |p| p.size.is_some_and(|s| sizes.contains(&s)),
                &mut |v| {
                    if !held(&v) || !wanted.contains(&(v.md5.as_str(), v.size)) {
                        return;
                    }
                    let discs = v.discs();
                    found.entry((v.md5.clone(), v.size)).or_insert_with(|| {
                        format!(
                            "same content on disc{} {} as {} (version {})",
                            if discs.len() > 1 { "s" } else { "" },
                            crate::output::discs(&discs),
                            names::display(&v.name, false),
                            v.id
                        )
                    });
                },
            )
            .map_err(err)?;
        let mut still = Vec::new();
        for v in unresolved {
            match found.get(&(v.md5.clone(), v.size)) {
                Some(place) => report.renamed.push(entry(&v, Some(place.clone()))),
                None => still.push(v),
            }
        }
        unresolved = still;
    }
    // The same content in the origin under another path: hash only files
    // whose size matches a still-unresolved version.
    if let Some(origin) = origin.filter(|o| !unresolved.is_empty() && o.is_dir()) {
        let sizes: HashSet<u64> = unresolved.iter().map(|v| v.size).collect();
        let mut by_content: HashMap<(String, u64), PathBuf> = HashMap::new();
        let wanted: HashSet<(String, u64)> =
            unresolved.iter().map(|v| (v.md5.clone(), v.size)).collect();
        for e in walkdir::WalkDir::new(origin)
            .follow_links(false)
            .into_iter()
            .flatten()
        {
            if !e.file_type().is_file() {
                continue;
            }
            let Ok(m) = e.metadata() else { continue };
            if !sizes.contains(&m.len()) {
                continue;
            }
            if let Ok(md5) = md5_file(e.path(), progress) {
                let key = (md5, m.len());
                if wanted.contains(&key) {
                    by_content
                        .entry(key)
                        .or_insert_with(|| e.path().to_path_buf());
                }
            }
        }
        for v in unresolved {
            match by_content.get(&(v.md5.clone(), v.size)) {
                Some(p) => report.renamed.push(entry(
                    &v,
                    Some(format!("same content in the origin at {}", p.display())),
                )),
                None => report.unrecoverable.push(entry(&v, None)),
            }
        }
    } else {
        for v in unresolved {
            report.unrecoverable.push(entry(&v, None));
        }
    }
    // Damaged versions are left out of every query above (they are no
    // held copy); those of the discs named are shown on their own.
    let (damaged, invalid) = manifest.damaged_versions().map_err(err)?;
    report.invalid_rows += invalid;
    report.damaged = damaged
        .iter()
        .filter(|v| v.discs().iter().any(|d| named.contains(d)))
        .map(|v| {
            entry(
                v,
                Some(
                    "recorded damaged before it reached a disc: no backup, not on this disc".into(),
                ),
            )
        })
        .collect();
    for list in [
        &mut report.damaged,
        &mut report.unrecoverable,
        &mut report.recoverable_from_parity,
        &mut report.renamed,
        &mut report.reprotectable,
        &mut report.history_only,
    ] {
        list.sort_by(|a, b| a.filename.cmp(&b.filename).then(a.id.cmp(&b.id)));
    }
    report.totals = Totals {
        unrecoverable: count(&report.unrecoverable),
        recoverable_from_parity: count(&report.recoverable_from_parity),
        renamed: count(&report.renamed),
        reprotectable: count(&report.reprotectable),
        history_only: count(&report.history_only),
        damaged: count(&report.damaged),
    };
    Ok(report)
}

/// Stages the re-protectable files again into the open disc.
fn restage(
    wd: &mut Workdir,
    origin: &Path,
    report: &mut LostReport,
    progress: &Progress,
) -> Result<()> {
    let mut changes = Vec::new();
    let mut owners = crate::owners::Owners::new();
    for e in &report.reprotectable {
        let Some(path) = origin_path(origin, &e.filename) else {
            continue;
        };
        let Ok(m) = std::fs::symlink_metadata(&path) else {
            report
                .restage_problems
                .push(format!("{}: vanished", path.display()));
            continue;
        };
        let lost: Vec<i64> = e
            .discs
            .iter()
            .copied()
            .filter(|d| report.lost_discs.contains(d))
            .collect();
        // A file too large for an empty disc is split by staging, as any.
        changes.push(Change {
            path,
            name: e.filename.clone(),
            size: m.len(),
            mtime_secs: m.mtime(),
            mtime_nanos: m.mtime_nsec(),
            desc: format!(
                "Re-staged: disc{} {} lost",
                if lost.len() > 1 { "s" } else { "" },
                crate::output::discs(&lost)
            ),
            attrs: Some(crate::scan::attrs_of(&m, &mut owners)),
        });
    }
    let mut problems = Vec::new();
    let staged = stage::stage_files(wd, changes, progress, &mut |ev| {
        if let Event::Skipped(s) = ev {
            problems.push(format!("{}: {}", s.path.display(), s.reason));
        }
    })?;
    report.restage_problems.extend(problems);
    if let Some(msg) = staged.no_space {
        report.restage_problems.push(msg);
    }
    report.restaged = staged.staged_files;
    report.restaged_bytes = staged.staged_bytes;
    Ok(())
}
