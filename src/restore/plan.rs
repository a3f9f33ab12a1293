//! The restore plan: for every file chosen, the version wanted (the
//! newest by `--as-of`), the disc it is on and whether that disc is at
//! hand, missing or marked lost; names that could lead outside the target
//! (or to the same path as another) are refused here. The plan reads the
//! manifest one file at a time and keeps of each only what writing it
//! needs. It never touches the target.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::CString;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::manifest::{Manifest, SetIdentity, Version};
use crate::catalog::PartRow;
use crate::history::{self, FileState};
use crate::medium::DiscSet;
use crate::names;

use super::entries::{Chosen, EntryPlan};
use super::journal::Resumable;
use super::report::{FailKind, NotRestored};
use super::target;
use super::{RestoreOptions, Result};

/// Where a needed disc comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscState {
    /// Given with `-d`: read directly.
    Given,
    /// To be inserted in the drive when asked.
    Drive,
    /// Not among the discs given.
    Missing,
    /// Marked lost in the newest manifest: never asked for.
    Lost,
    /// Not given (or marked lost), and its parity group's survivors and
    /// parity discs are given: its image is rebuilt with par2 into a temp
    /// file when its turn comes, then read like a given disc.
    Parity,
}

/// One file to restore: what writing it needs of its version, kept small
/// (a plan may hold a million).
#[derive(Debug, Clone)]
pub(super) struct Item {
    pub(super) id: i64,
    pub(super) size: u64,
    pub(super) mtime: f64,
    pub(super) md5: [u8; 16],
    /// The name as recorded, checked by the plan; split into components
    /// only when the file is written.
    pub(super) name: Box<[u8]>,
}

impl Item {
    fn of(v: &Version) -> Item {
        Item {
            id: v.id,
            size: v.size,
            mtime: v.mtime,
            md5: md5_bytes(&v.md5),
            name: v.name.as_slice().into(),
        }
    }
}

/// The 16 bytes of a hex MD5, which the manifest reader has already
/// checked to be 32 hex digits.
pub(super) fn md5_bytes(hex: &str) -> [u8; 16] {
    let nibble = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *o = pair.iter().fold(0, |acc, &c| acc << 4 | nibble(c));
    }
    out
}

/// A needed disc.
#[derive(Debug, Clone, Serialize)]
pub struct DiscPlan {
    pub disc: i64,
    /// Whole files on it.
    pub files: u64,
    /// Its bytes to read: its whole files and its parts of split files.
    pub bytes: u64,
    /// Parts of split files on it still to read (parts an earlier run
    /// checked are not counted: they are not read again).
    pub parts: u64,
    /// Whether the run reads it: false when all it holds for this restore
    /// are parts of split files that cannot be restored anyway (another
    /// of their discs missing or lost); such a disc is not asked for.
    pub needed: bool,
    pub state: DiscState,
    /// What was given for it (`Given` only).
    pub source: Option<PathBuf>,
    /// Marked lost in the newest manifest (and given all the same: found
    /// again, or its image kept).
    pub marked_lost: bool,
    /// For a disc rebuilt from parity: from what (`the images of discs 1,
    /// 3 and parity disc 1-1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuilt_from: Option<String>,
    /// Its whole files, by version id, when the run needs them: to write
    /// them, or to list them as not restorable. Only the id is kept (a plan
    /// may cover millions of files); the rest is read again from the
    /// manifest when the disc's turn comes ([`disc_items`]).
    #[serde(skip)]
    pub(super) ids: Vec<i64>,
    /// Its files restored under a name of their own (copies of a hard
    /// link's target, few): kept whole.
    #[serde(skip)]
    pub(super) renamed: Vec<Item>,
    /// Its parts of split files that can be restored, when the run needs
    /// them: (index in [`Plan::split`], index in that file's parts).
    #[serde(skip)]
    pub(super) pieces: Vec<(usize, usize)>,
    /// The bytes of its whole files.
    #[serde(skip)]
    pub(super) whole_bytes: u64,
    /// Split files with a part on it (counted once each).
    #[serde(skip)]
    pub(super) split_files: u64,
    #[serde(skip)]
    last_split: Option<usize>,
}

impl DiscPlan {
    /// Files it costs (whole, and split with a part on it) and their
    /// bytes on it.
    fn cost(&self) -> (u64, u64) {
        (self.files + self.split_files, self.bytes)
    }
}

/// A file stored in parts on several discs: counted once in the plan, its
/// parts on the discs that hold them.
#[derive(Debug, Clone, Serialize)]
pub struct SplitFile {
    pub name: String,
    #[serde(skip)]
    pub raw_name: Vec<u8>,
    pub id: i64,
    pub bytes: u64,
    /// Every disc holding a part, ascending.
    pub discs: Vec<i64>,
    pub parts: usize,
    /// Parts an earlier run checked and kept (killed or stopped): not read
    /// again.
    pub parts_done: usize,
    /// Discs of the parts still to read that are not at hand: missing
    /// (not given) or marked lost. Not empty: the file cannot be restored.
    pub needs: Vec<i64>,
    /// Of `needs`, those marked lost.
    pub lost: Vec<i64>,
    /// An older version, on discs none of which is marked lost (restore it
    /// with `--as-of` if this one cannot be).
    pub older_version: Option<OlderVersion>,
    #[serde(skip)]
    pub(super) item: Item,
    #[serde(skip)]
    pub(super) part_rows: Vec<PartRow>,
}

impl SplitFile {
    /// Whether the discs at hand (or the drive) hold every part still to
    /// read.
    pub fn restorable(&self) -> bool {
        self.needs.is_empty()
    }
}

/// An older version of a file, on a disc not marked lost.
#[derive(Debug, Clone, Serialize)]
pub struct OlderVersion {
    pub disc: i64,
    /// When it was backed up (Unix seconds): restore it with `--as-of`.
    pub recorded: f64,
}

/// A file whose current version is on a lost disc.
#[derive(Debug, Clone, Serialize)]
pub struct LostFile {
    pub name: String,
    #[serde(skip)]
    pub raw_name: Vec<u8>,
    pub bytes: u64,
    pub older_version: Option<OlderVersion>,
}

/// A file whose newest version (by `--as-of`) was recorded damaged: its
/// staged copy rotted before any image held it, so it is no backup and on
/// no disc. The older version, if there is one, is restored instead.
#[derive(Debug, Clone, Serialize)]
pub struct DamagedFile {
    pub filename: String,
    #[serde(skip)]
    pub raw_name: Vec<u8>,
    /// The damaged version's id and the disc it was staged for.
    pub id: i64,
    pub disc: i64,
    pub bytes: u64,
    /// When the damaged version was backed up (Unix seconds).
    pub recorded: f64,
    /// The version restored instead (`None`: the file is not restored).
    pub older_version: Option<OlderVersion>,
}

/// What a lost disc costs.
#[derive(Debug, Clone, Serialize)]
pub struct LostDisc {
    pub disc: i64,
    pub files: u64,
    pub bytes: u64,
    pub costs: Vec<LostFile>,
}

/// A needed disc that was not given.
#[derive(Debug, Clone, Serialize)]
pub struct MissingDisc {
    pub disc: i64,
    pub files: u64,
    pub bytes: u64,
}

/// Which set, for messages and reports.
#[derive(Debug, Clone, Serialize)]
pub struct SetInfo {
    pub name: Option<String>,
    pub uuid: Option<String>,
    #[serde(skip)]
    pub(super) identity: Option<SetIdentity>,
}

impl SetInfo {
    /// `disc 7 of set "Photos"`, or `disc 7` for an unnamed set.
    pub fn disc_label(&self, disc: i64) -> String {
        match &self.name {
            Some(n) => format!("disc {disc} of set \"{n}\""),
            None => format!("disc {disc}"),
        }
    }
}

/// The plan: what will be restored from where, and what cannot be.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub set: SetInfo,
    pub target: PathBuf,
    pub as_of: Option<f64>,
    /// Files chosen (those recorded deleted by then left out) and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Of those, what the discs at hand (or the drive) can give.
    pub restorable_files: u64,
    pub restorable_bytes: u64,
    /// Files recorded deleted by the chosen time, left out.
    pub deleted_left_out: u64,
    /// Manifest rows that could not be used.
    pub invalid_rows: u64,
    /// Folders, symbolic links and hard links (`docs/tree.md`); none on
    /// a disc without the tables.
    pub entries: EntryPlan,
    /// Every needed disc, in order.
    pub discs: Vec<DiscPlan>,
    /// Files stored in parts on several discs, in name order: each counted
    /// once in `files`, its parts in the `parts` and `bytes` of its discs.
    pub split: Vec<SplitFile>,
    pub missing: Vec<MissingDisc>,
    pub lost: Vec<LostDisc>,
    /// Files whose newest version was recorded damaged, in name order: the
    /// older version is restored, or none (not counted in `files`).
    pub damaged: Vec<DamagedFile>,
    /// Names refused because they could lead outside the target.
    pub refused: Vec<NotRestored>,
    /// Discs given twice (left out).
    pub duplicates: Vec<PathBuf>,
    /// The drive, if one was given.
    pub drive: Option<PathBuf>,
    /// Discs given that could not be opened (a truncated image, an
    /// unreadable manifest): left out like discs not given.
    pub unusable: Vec<UnusableDisc>,
    /// The first components of the files kept in the plan that start like
    /// the run's private folder (only a crafted or unlucky set has any):
    /// its random name must not be one of them.
    #[serde(skip)]
    pub(super) scratch_like: BTreeSet<Box<[u8]>>,
}

/// A disc given that could not be opened, and why.
#[derive(Debug, Clone, Serialize)]
pub struct UnusableDisc {
    pub source: PathBuf,
    pub reason: String,
}

impl Plan {
    /// Whether a run could restore everything chosen.
    pub fn complete(&self) -> bool {
        self.missing.is_empty()
            && self.lost.is_empty()
            && self.refused.is_empty()
            && self.damaged.is_empty()
            && self.entries.failed.is_empty()
    }
}

/// Why a name from a manifest is refused, if it is: it must be a path
/// below the target once its single leading `/` is stripped.
pub fn name_parts(name: &[u8]) -> std::result::Result<Vec<CString>, &'static str> {
    let rel = checked_path(name)?;
    rel.split(|&b| b == b'/')
        .map(|part| target::c_name(part).ok_or("it contains a NUL byte"))
        .collect()
}

/// The path below the target that `name` leads to (`name` without its
/// single leading `/`), or why it is refused.
pub(super) fn checked_path(name: &[u8]) -> std::result::Result<&[u8], &'static str> {
    if name.contains(&0) {
        return Err("it contains a NUL byte");
    }
    let rel = name.strip_prefix(b"/").unwrap_or(name);
    if rel.is_empty() {
        return Err("it is empty");
    }
    for part in rel.split(|&b| b == b'/') {
        match part {
            b"" => {
                return Err("it has an empty component (an absolute path, `//` or a trailing `/`)")
            }
            b"." => return Err("it has a `.` component"),
            b".." => return Err("it has a `..` component"),
            _ => {}
        }
    }
    Ok(rel)
}

/// Whether `path` is at or below `mount` (both resolved when they exist).
pub(super) fn is_at(path: &Path, mount: &Path) -> bool {
    let resolve = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    resolve(path).starts_with(resolve(mount))
}

const SAME_PATH: &str = "another name in the manifest leads to the same path";

/// The files of a disc's plan, read again from the manifest the plan was
/// made from.
pub(super) struct DiscItems {
    /// In name order.
    pub(super) items: Vec<Item>,
    /// The ids that could not be read again (none unless the manifest
    /// became unreadable since), and why.
    pub(super) gone: Vec<i64>,
    pub(super) why: String,
}

/// The files of `d`, read again from `history` (the manifest its plan was
/// made from) in one pass over the disc's rows, which bounds it.
pub(super) fn disc_items(history: &Manifest, d: &DiscPlan) -> DiscItems {
    let mut ids = d.ids.clone();
    ids.sort_unstable();
    let mut found = vec![false; ids.len()];
    let mut items = Vec::with_capacity(ids.len() + d.renamed.len());
    let mut why = String::new();
    if !ids.is_empty() {
        let read = history.for_each_disc_version(d.disc, &mut |v| {
            if let Ok(i) = ids.binary_search(&v.id) {
                if !found[i] {
                    found[i] = true;
                    items.push(Item::of(&v));
                }
            }
        });
        why = match read {
            Err(e) => format!("its row in the manifest could not be read again: {e}"),
            Ok(_) => "its row in the manifest could not be read again".into(),
        };
    }
    let gone = ids
        .iter()
        .zip(&found)
        .filter(|(_, f)| !**f)
        .map(|(id, _)| *id)
        .collect();
    items.extend(d.renamed.iter().cloned());
    items.sort_by(|a, b| a.name.cmp(&b.name));
    DiscItems { items, gone, why }
}

/// Makes the plan from the newest manifest of the discs given, reading it
/// one file at a time and keeping of each only what the run needs.
pub fn plan(opts: &RestoreOptions, set: &DiscSet) -> Result<Plan> {
    plan_resuming(opts, set, &Resumable::default())
}

/// Like [`plan`], with the parts of split files that earlier runs checked
/// and kept in the target (`resumable`): those are not read again, and
/// their discs are not needed for them.
pub(super) fn plan_resuming(
    opts: &RestoreOptions,
    set: &DiscSet,
    resumable: &Resumable,
) -> Result<Plan> {
    // Only a crafted manifest has two names for one path (`a/b` and
    // `/a/b`, or one name stored as text and as a blob): the second would
    // replace the first. Paths are not kept (see [`PathOrder`]); when one
    // may have been met before, the plan is made again with the names of
    // its hash set aside and compared exactly, in name order, so a chance
    // collision refuses nothing and the name refused does not depend on
    // the manifest's order.
    let (plan, collided) = plan_with(opts, set, &HashSet::new(), resumable)?;
    if collided.is_empty() {
        return Ok(plan);
    }
    Ok(plan_with(opts, set, &collided, resumable)?.0)
}

/// Tells, holding one path, whether a path is met for the first time.
/// A sound manifest gives its names (text, each with its leading `/`) in
/// byte order, so their paths come strictly ascending: a path above the
/// last one is new. A path that is not (a name without its `/`, a blob,
/// a manifest ordered otherwise) may be one met before: its hash is kept,
/// and it counts as met twice, which makes the caller decide its names
/// exactly. Memory grows with those paths only, never with the sound ones.
#[derive(Default)]
struct PathOrder {
    /// The last path that came in order.
    last: Vec<u8>,
    /// The hashes of the paths that came out of order.
    odd: HashSet<u128>,
}

impl PathOrder {
    /// Whether `rel` (of hash `hash`) is surely met for the first time.
    fn first(&mut self, rel: &[u8], hash: u128) -> bool {
        if rel > self.last.as_slice() && !self.odd.contains(&hash) {
            self.last.clear();
            self.last.extend_from_slice(rel);
            return true;
        }
        self.odd.insert(hash);
        false
    }
}

/// One planning pass; the names whose path hash is in `aside` are decided
/// exactly at the end. Returns the plan and the path hashes that may have
/// been met twice.
fn plan_with(
    opts: &RestoreOptions,
    set: &DiscSet,
    aside: &HashSet<u128>,
    resumable: &Resumable,
) -> Result<(Plan, HashSet<u128>)> {
    let history = set.history();
    let lost: BTreeSet<i64> = history
        .discs()?
        .into_iter()
        .filter(|d| !d.available)
        .map(|d| d.id)
        .collect();
    let identity = history.identity();
    // The newest damaged version of each chosen name by then: few, kept
    // whole until the file's versions are met.
    let mut damaged: BTreeMap<Vec<u8>, Version> = BTreeMap::new();
    let limit = opts.as_of.unwrap_or(f64::INFINITY);
    for v in history.damaged_versions()?.0 {
        if v.timestamp > limit || !opts.matcher.matches(&v.name) {
            continue;
        }
        match damaged.get(&v.name) {
            Some(d) if d.id > v.id => {}
            _ => {
                damaged.insert(v.name.clone(), v);
            }
        }
    }
    let rebuildable = rebuildable(set, opts);
    let mut chosen = Chosen::read(history, opts)?;
    let mut planner = Planner {
        opts,
        set,
        resumable,
        lost,
        rebuildable,
        plan: Plan {
            set: SetInfo {
                name: identity.name.clone(),
                uuid: identity.uuid.clone(),
                identity: Some(identity),
            },
            target: opts.target.clone(),
            as_of: opts.as_of,
            files: 0,
            bytes: 0,
            restorable_files: 0,
            restorable_bytes: 0,
            deleted_left_out: 0,
            invalid_rows: 0,
            entries: EntryPlan::default(),
            discs: Vec::new(),
            split: Vec::new(),
            missing: Vec::new(),
            lost: Vec::new(),
            damaged: Vec::new(),
            refused: Vec::new(),
            duplicates: set.duplicates.clone(),
            drive: opts.drive.clone(),
            unusable: Vec::new(),
            scratch_like: BTreeSet::new(),
        },
        discs: BTreeMap::new(),
        lost_files: BTreeMap::new(),
        damaged,
        renamed: false,
    };
    let mut paths = PathOrder::default();
    let mut collided: HashSet<u128> = HashSet::new();
    let mut set_aside: Vec<FileState> = Vec::new();
    let invalid = history::for_each_file(history, &opts.matcher, opts.as_of, &mut |file| {
        if let Some(when) = file.deleted {
            // Deleted after its last good version, then backed up again
            // and that version damaged: nothing older is the file now.
            if planner
                .damaged
                .get(&file.name)
                .is_some_and(|d| d.id > file.current().id && d.timestamp > when)
            {
                planner.damaged_file(&file.name, None);
            } else {
                planner.damaged.remove(&file.name);
            }
            planner.plan.deleted_left_out += 1;
            return;
        }
        match checked_path(&file.current().name) {
            Err(why) => planner.add(&file, Err(why)),
            // A name an entry holds more recently is not a file then.
            Ok(rel) if !chosen.file_holds(rel, file.current()) => {}
            Ok(rel) => {
                let hash = xxhash_rust::xxh3::xxh3_128(rel);
                if aside.contains(&hash) {
                    set_aside.push(file);
                } else if paths.first(rel, hash) {
                    planner.add(&file, Ok(()));
                } else {
                    collided.insert(hash);
                    planner.add(&file, Err(SAME_PATH));
                }
            }
        }
    })?;
    planner.plan.invalid_rows = invalid;
    set_aside.sort_by(|a, b| a.name.cmp(&b.name));
    let mut exact: HashSet<&[u8]> = HashSet::new();
    for file in &set_aside {
        let first = checked_path(&file.current().name).is_ok_and(|rel| exact.insert(rel));
        planner.add(file, if first { Ok(()) } else { Err(SAME_PATH) });
    }
    // Damaged versions of names with no good version by then.
    let left: Vec<Vec<u8>> = planner.damaged.keys().cloned().collect();
    for name in left {
        planner.damaged_file(&name, None);
    }
    // Hard links whose target is not chosen: a copy of the target's
    // version under the link's name, planned like any file but kept whole
    // (its name is not its version's).
    planner.renamed = true;
    for (_, v) in chosen.targets_elsewhere(history, opts)? {
        let file = FileState {
            name: v.name.clone(),
            versions: vec![v],
            deleted: None,
        };
        planner.add(&file, Ok(()));
    }
    planner.plan.refused.append(&mut chosen.refused);
    planner.plan.entries = chosen.finish();
    Ok((planner.finish(), collided))
}

/// The data discs not given (as an image or a folder, or at the drive's
/// mount point) whose parity group can rebuild them from what is given, with
/// what from. A disc given at the drive is not rebuilt: it is read there.
fn rebuildable(set: &DiscSet, opts: &RestoreOptions) -> BTreeMap<i64, String> {
    let mut out = BTreeMap::new();
    if set.parity.is_empty() {
        return out;
    }
    // Bounded by the groups the given discs describe.
    for c in crate::parity::rebuild::coverage(set) {
        if !c.can_rebuild() {
            continue;
        }
        for &d in &c.missing {
            let given = set.medium(d).is_some_and(|m| match &opts.drive {
                Some(drive) => !is_at(&m.source, drive),
                None => true,
            });
            if !given {
                out.insert(d, c.needs());
            }
        }
    }
    out
}

/// The plan as it is being made.
struct Planner<'a> {
    opts: &'a RestoreOptions,
    set: &'a DiscSet,
    resumable: &'a Resumable,
    lost: BTreeSet<i64>,
    /// Discs not given that parity can rebuild, with what from.
    rebuildable: BTreeMap<i64, String>,
    plan: Plan,
    discs: BTreeMap<i64, DiscPlan>,
    lost_files: BTreeMap<i64, Vec<LostFile>>,
    /// Damaged versions not yet matched with their file.
    damaged: BTreeMap<Vec<u8>, Version>,
    /// Whether the files added now are restored under another name than
    /// their version's (hard link copies).
    renamed: bool,
}

impl Planner<'_> {
    /// Records that the newest version of `name` was damaged (if one is
    /// waiting), and which version is restored instead.
    fn damaged_file(&mut self, name: &[u8], older: Option<&Version>) {
        let Some(d) = self.damaged.remove(name) else {
            return;
        };
        if older.is_some_and(|o| o.id > d.id) {
            // A good version came after the damaged one: nothing is missing.
            return;
        }
        self.plan.damaged.push(DamagedFile {
            filename: names::display(&d.name, false),
            raw_name: d.name.clone(),
            id: d.id,
            disc: d.disc,
            bytes: d.size,
            recorded: d.timestamp,
            older_version: older.map(|o| OlderVersion {
                disc: o.disc,
                recorded: o.timestamp,
            }),
        });
    }

    /// Adds a file not deleted by then, its name checked.
    fn add(&mut self, file: &FileState, checked: std::result::Result<(), &'static str>) {
        let v = file.current();
        self.damaged_file(&file.name, Some(v));
        self.plan.files += 1;
        self.plan.bytes = self.plan.bytes.saturating_add(v.size);
        if let Err(why) = checked {
            self.plan.refused.push(NotRestored {
                name: names::display(&v.name, false),
                raw_name: v.name.clone(),
                disc: Some(v.disc),
                id: Some(v.id),
                bytes: v.size,
                kind: FailKind::RefusedName,
                reason: format!("name refused: {why}"),
                needs: Vec::new(),
            });
            return;
        }
        if v.is_split() {
            self.add_split(file);
            return;
        }
        let opts = self.opts;
        let d = self.disc_entry(v.disc);
        d.files += 1;
        d.bytes = d.bytes.saturating_add(v.size);
        d.whole_bytes = d.whole_bytes.saturating_add(v.size);
        d.needed = true;
        let keep = match d.state {
            DiscState::Given | DiscState::Drive | DiscState::Parity => {
                self.plan.restorable_files += 1;
                self.plan.restorable_bytes = self.plan.restorable_bytes.saturating_add(v.size);
                !opts.dry_run
            }
            DiscState::Missing => opts.list_failed,
            DiscState::Lost => {
                let older = self.older_version(file);
                self.lost_files.entry(v.disc).or_default().push(LostFile {
                    name: names::display(&v.name, false),
                    raw_name: v.name.clone(),
                    bytes: v.size,
                    older_version: older,
                });
                opts.list_failed
            }
        };
        if keep {
            // `disc_entry` made it above.
            if let Some(d) = self.discs.get_mut(&v.disc) {
                if self.renamed {
                    d.renamed.push(Item::of(v));
                } else {
                    d.ids.push(v.id);
                }
            }
            let top = super::top_level(&v.name);
            if top.starts_with(target::SCRATCH_PREFIX.as_bytes()) {
                self.plan.scratch_like.insert(top.into());
            }
        }
    }

    /// The newest version before the current one whose discs are none of
    /// them marked lost.
    fn older_version(&self, file: &FileState) -> Option<OlderVersion> {
        file.versions
            .iter()
            .rev()
            .skip(1)
            .find(|o| o.discs().iter().all(|d| !self.lost.contains(d)))
            .map(|o| OlderVersion {
                disc: o.disc,
                recorded: o.timestamp,
            })
    }

    /// The plan of disc `disc`, made when first needed.
    fn disc_entry(&mut self, disc: i64) -> &mut DiscPlan {
        let (opts, set, lost, rebuildable) = (self.opts, self.set, &self.lost, &self.rebuildable);
        self.discs.entry(disc).or_insert_with(|| {
            let source = set
                .medium(disc)
                .filter(|m| match &opts.drive {
                    Some(drive) => !is_at(&m.source, drive),
                    None => true,
                })
                .map(|m| m.source.clone());
            let state = if source.is_some() {
                DiscState::Given
            } else if rebuildable.contains_key(&disc) {
                DiscState::Parity
            } else if lost.contains(&disc) {
                DiscState::Lost
            } else if opts.drive.is_some() {
                DiscState::Drive
            } else {
                DiscState::Missing
            };
            DiscPlan {
                disc,
                files: 0,
                bytes: 0,
                parts: 0,
                needed: false,
                state,
                source,
                marked_lost: lost.contains(&disc),
                rebuilt_from: rebuildable.get(&disc).cloned(),
                ids: Vec::new(),
                renamed: Vec::new(),
                pieces: Vec::new(),
                whole_bytes: 0,
                split_files: 0,
                last_split: None,
            }
        })
    }

    /// Adds a split file: counted once, each part still to read on its
    /// disc; restorable only when every one of those discs is at hand.
    fn add_split(&mut self, file: &FileState) {
        let v = file.current();
        let done = self.resumable.parts_done(v);
        let index = self.plan.split.len();
        let mut needs = Vec::new();
        let mut lost = Vec::new();
        for p in &v.parts[done..] {
            let d = self.disc_entry(p.disc);
            d.parts += 1;
            d.bytes = d.bytes.saturating_add(p.size);
            if d.last_split != Some(index) {
                d.last_split = Some(index);
                d.split_files += 1;
            }
            let state = d.state;
            if matches!(state, DiscState::Missing | DiscState::Lost) && !needs.contains(&p.disc) {
                needs.push(p.disc);
                if state == DiscState::Lost {
                    lost.push(p.disc);
                }
            }
        }
        let older = self.older_version(file);
        for &disc in &lost {
            self.lost_files.entry(disc).or_default().push(LostFile {
                name: names::display(&v.name, false),
                raw_name: v.name.clone(),
                bytes: v.size,
                older_version: older.clone(),
            });
        }
        if needs.is_empty() {
            self.plan.restorable_files += 1;
            self.plan.restorable_bytes = self.plan.restorable_bytes.saturating_add(v.size);
            for (k, p) in v.parts.iter().enumerate().skip(done) {
                let keep = !self.opts.dry_run;
                let d = self.disc_entry(p.disc);
                d.needed = true;
                if keep {
                    d.pieces.push((index, k));
                }
            }
        }
        self.plan.split.push(SplitFile {
            name: names::display(&v.name, false),
            raw_name: v.name.clone(),
            id: v.id,
            bytes: v.size,
            discs: v.discs(),
            parts: v.parts.len(),
            parts_done: done,
            needs,
            lost,
            older_version: older,
            item: Item::of(v),
            part_rows: v.parts.clone(),
        });
    }

    /// The plan, its lists in name order whatever order the manifest
    /// gave the files in.
    fn finish(mut self) -> Plan {
        let mut plan = self.plan;
        for d in self.discs.values_mut() {
            match d.state {
                DiscState::Missing => {
                    let (files, bytes) = d.cost();
                    plan.missing.push(MissingDisc {
                        disc: d.disc,
                        files,
                        bytes,
                    })
                }
                DiscState::Lost => {
                    let mut costs = self.lost_files.remove(&d.disc).unwrap_or_default();
                    costs.sort_by(|a, b| a.raw_name.cmp(&b.raw_name));
                    let (files, bytes) = d.cost();
                    plan.lost.push(LostDisc {
                        disc: d.disc,
                        files,
                        bytes,
                        costs,
                    });
                }
                _ => {}
            }
        }
        plan.refused.sort_by(|a, b| a.raw_name.cmp(&b.raw_name));
        // Pieces point into `split` by index: sorted here, before any
        // disc is read, and the indices mapped along.
        let mut order: Vec<usize> = (0..plan.split.len()).collect();
        order.sort_by(|&a, &b| plan.split[a].raw_name.cmp(&plan.split[b].raw_name));
        let mut new_index = vec![0; order.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new;
        }
        let mut split: Vec<Option<SplitFile>> = plan.split.drain(..).map(Some).collect();
        plan.split = order.iter().filter_map(|&i| split[i].take()).collect();
        for d in self.discs.values_mut() {
            for piece in &mut d.pieces {
                piece.0 = new_index[piece.0];
            }
        }
        plan.damaged
            .sort_by(|a, b| a.raw_name.cmp(&b.raw_name).then(a.id.cmp(&b.id)));
        plan.discs = self.discs.into_values().collect();
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A one-disc manifest holding `names` (bytes, and whether stored as
    /// a blob), in the given row order; the plan of restoring it all, and
    /// the names of the files it writes.
    fn plan_of(names: &[(Vec<u8>, bool)]) -> (Plan, Vec<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("manifest.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE discs(id INTEGER PRIMARY KEY, started, completed, available);
             CREATE TABLE files(id INTEGER PRIMARY KEY, filename, timestamp, md5, size,
                                mtime, disc_id, desc, copied);
             CREATE INDEX filenames ON files(filename, copied);
             INSERT INTO discs VALUES (1, 1000, 2000, 1);",
        )
        .unwrap();
        for (i, (name, blob)) in names.iter().enumerate() {
            let value = if *blob {
                rusqlite::types::Value::Blob(name.clone())
            } else {
                rusqlite::types::Value::Text(String::from_utf8(name.clone()).unwrap())
            };
            conn.execute(
                "INSERT INTO files VALUES (?1, ?2, 1500, ?3, 1, 1400, 1, 'New file', 1)",
                rusqlite::params![i as i64 + 1, value, format!("{:032x}", i)],
            )
            .unwrap();
        }
        drop(conn);
        let opts = RestoreOptions {
            discs: vec![dir.path().to_path_buf()],
            target: dir.path().join("target"),
            matcher: crate::history::Matcher::new(&[], false).unwrap(),
            as_of: None,
            dry_run: false,
            overwrite: false,
            no_mode: false,
            no_owner: false,
            drive: None,
            interactive: false,
            list_failed: true,
            rebuild_in: None,
        };
        let (set, _) = DiscSet::open_lenient(&opts.discs).unwrap();
        let plan = plan(&opts, &set).unwrap();
        let mut planned = Vec::new();
        for d in &plan.discs {
            let got = disc_items(set.history(), d);
            assert!(got.gone.is_empty(), "{}", got.why);
            planned.extend(got.items.iter().map(|it| it.name.to_vec()));
        }
        planned.sort();
        (plan, planned)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// However a manifest spells its names (with or without the
        /// leading `/`, as text or as a blob) and in whatever row order,
        /// every path is planned once, under the first of its names in
        /// byte order, and every other name of it is refused.
        #[test]
        fn every_path_is_planned_once_under_its_first_name(
            picks in prop::collection::vec(
                (0usize..6, any::<bool>(), any::<bool>()), 1..24),
        ) {
            const PATHS: [&str; 6] = ["a", "a/b", "b", "0", "z/y", ".x"];
            let mut names: Vec<(Vec<u8>, bool)> = Vec::new();
            for (p, slash, blob) in picks {
                let mut n = if slash { b"/".to_vec() } else { Vec::new() };
                n.extend_from_slice(PATHS[p].as_bytes());
                if !names.contains(&(n.clone(), blob)) {
                    names.push((n, blob));
                }
            }
            let (plan, planned) = plan_of(&names);
            let mut want: BTreeMap<&[u8], Vec<u8>> = BTreeMap::new();
            for (n, _) in &names {
                let rel = n.strip_prefix(b"/").unwrap_or(n);
                let first = want.entry(rel).or_insert_with(|| n.clone());
                if n < first {
                    *first = n.clone();
                }
            }
            let mut want_names: Vec<Vec<u8>> = want.values().cloned().collect();
            want_names.sort();
            prop_assert_eq!(&planned, &want_names);
            for r in &plan.refused {
                prop_assert!(r.reason.contains(SAME_PATH), "{:?}", r);
                let rel = r.raw_name.strip_prefix(b"/").unwrap_or(&r.raw_name);
                prop_assert!(want.contains_key(rel));
            }
            prop_assert_eq!(plan.files, plan.restorable_files + plan.refused.len() as u64);
        }
    }

    #[test]
    fn names_that_could_leave_the_target_are_refused() {
        for bad in [
            &b"/../../escape"[..],
            b"/a/../../b",
            b"//abs",
            b"/a//b",
            b"/a/",
            b"/./a",
            b"/",
            b"",
            b"/a\0b",
            b"..",
        ] {
            assert!(
                name_parts(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let ok = name_parts(b"/2012/holiday/IMG_0001.jpg").unwrap();
        assert_eq!(ok.len(), 3);
        assert!(name_parts(b"/caf\xe9/..x/.hidden").is_ok());
    }
}
