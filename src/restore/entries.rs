//! The plan of a tree's entries (`docs/tree.md`): which folders, symbolic
//! links and hard links hold their names at the chosen time, chosen by the
//! same patterns and name checks as files; a name held by a file and an
//! entry at once (only a damaged or crafted catalogue has one) goes to the
//! more recent of the two; a hard link is tied to the version of its
//! target's file restored in this run, or, when that file is not chosen,
//! planned as a copy of that version read from its disc. It keeps only
//! the entries chosen (and one version per hard link target), never a
//! file per file, and never touches the target.

use std::collections::HashMap;

use serde::Serialize;

use crate::catalog::manifest::{Attrs, EntryKind, Manifest, Version};
use crate::history::{self, EntryAt, Matcher};
use crate::names;

use super::plan::{checked_path, md5_bytes};
use super::report::{FailKind, NotRestored};
use super::{RestoreOptions, Result};

/// A folder, link or hard link to make.
#[derive(Debug, Clone)]
pub(super) struct PlannedEntry {
    pub(super) id: i64,
    pub(super) name: Box<[u8]>,
    pub(super) kind: EntryKind,
    timestamp: f64,
    pub(super) attrs: Attrs,
    /// A hard link's target as restored in this run.
    pub(super) link_to: Option<LinkTo>,
}

/// The file a hard link is another name of: its name and the version
/// this run restores under it.
#[derive(Debug, Clone)]
pub(super) struct LinkTo {
    pub(super) name: Box<[u8]>,
    pub(super) size: u64,
    pub(super) md5: [u8; 16],
}

/// The entries of the plan, counted for the plan's report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EntryPlan {
    pub dirs: u64,
    pub symlinks: u64,
    /// Hard links to files restored in this run.
    pub hardlinks: u64,
    /// Hard links whose target file is not chosen: a copy of the target's
    /// version is restored under their name, from the target's disc
    /// (counted among the files too). Their names.
    pub hardlink_copies: Vec<String>,
    /// Entries recorded deleted by the chosen time, left out.
    pub deleted_left_out: u64,
    /// Rows of `entries` that could not be used.
    pub invalid_rows: u64,
    /// Names held by a file and an entry at once by then (a damaged or
    /// crafted catalogue): the more recent of the two was taken.
    pub conflicts: u64,
    /// Tables of the tree that are there but were not read, and why.
    pub unusable: Vec<String>,
    /// Entries that cannot be restored (a hard link whose target holds no
    /// file by then); listed among the failures of the run.
    #[serde(skip)]
    pub(super) failed: Vec<NotRestored>,
    /// What to make, in name order (a folder before what is in it).
    #[serde(skip)]
    pub(super) list: Vec<PlannedEntry>,
}

impl EntryPlan {
    /// How many entries the run makes.
    pub fn count(&self) -> u64 {
        self.dirs + self.symlinks + self.hardlinks
    }
}

/// The entries chosen while the files are planned.
pub(super) struct Chosen {
    /// By path below the target.
    by_path: HashMap<Box<[u8]>, PlannedEntry>,
    /// Hard link targets by path, and the version of a chosen file found
    /// for each.
    targets: HashMap<Box<[u8]>, Option<Version>>,
    pub(super) refused: Vec<NotRestored>,
    plan: EntryPlan,
}

fn refused(id: i64, name: &[u8], reason: String) -> NotRestored {
    entry_failure(id, name, FailKind::RefusedName, reason)
}

pub(super) fn entry_failure(id: i64, name: &[u8], kind: FailKind, reason: String) -> NotRestored {
    NotRestored {
        name: names::display(name, false),
        raw_name: name.to_vec(),
        disc: None,
        id: Some(id),
        bytes: 0,
        kind,
        reason,
        needs: Vec::new(),
    }
}

impl Chosen {
    /// Reads the entries holding their names at the chosen time.
    pub(super) fn read(history: &Manifest, opts: &RestoreOptions) -> Result<Chosen> {
        let tree = history.tree()?;
        let mut c = Chosen {
            by_path: HashMap::new(),
            targets: HashMap::new(),
            refused: Vec::new(),
            plan: EntryPlan {
                unusable: tree.unusable(),
                ..EntryPlan::default()
            },
        };
        let invalid = history::for_each_entry(&tree, &opts.matcher, opts.as_of, &mut |at| {
            let e = match at {
                EntryAt::Deleted(_) => {
                    c.plan.deleted_left_out += 1;
                    return;
                }
                EntryAt::Held(e) => e,
            };
            let rel = match checked_path(&e.name) {
                Ok(rel) => rel.to_vec().into_boxed_slice(),
                Err(why) => {
                    c.refused
                        .push(refused(e.id, &e.name, format!("name refused: {why}")));
                    return;
                }
            };
            if let EntryKind::Hardlink(t) = &e.kind {
                if let Err(why) = checked_path(t) {
                    c.refused.push(refused(
                        e.id,
                        &e.name,
                        format!("hard link target refused: {why}"),
                    ));
                    return;
                }
            }
            let new = PlannedEntry {
                id: e.id,
                name: e.name.into_boxed_slice(),
                kind: e.kind,
                timestamp: e.timestamp,
                attrs: e.attrs,
                link_to: None,
            };
            // Two spellings of one path (`a/b` and `/a/b`, or text and
            // blob): the more recent holds it.
            if let Some(old) = c.by_path.get(&rel) {
                let (keep, drop) = if (new.timestamp, new.id) > (old.timestamp, old.id) {
                    (new, old.clone())
                } else {
                    (old.clone(), new)
                };
                c.refused.push(refused(
                    drop.id,
                    &drop.name,
                    "name refused: another name in the manifest leads to the same path".into(),
                ));
                c.by_path.insert(rel, keep);
                return;
            }
            c.by_path.insert(rel, new);
        })?;
        c.plan.invalid_rows = invalid;
        for e in c.by_path.values() {
            if let EntryKind::Hardlink(t) = &e.kind {
                if let Ok(rel) = checked_path(t) {
                    c.targets.insert(rel.into(), None);
                }
            }
        }
        Ok(c)
    }

    /// Whether the chosen file version `v` at path `rel` holds its name:
    /// not when an entry holding the same path is more recent (the entry
    /// is dropped when the file is). Notes the version when a hard link
    /// points to it.
    pub(super) fn file_holds(&mut self, rel: &[u8], v: &Version) -> bool {
        if let Some(e) = self.by_path.get(rel) {
            self.plan.conflicts += 1;
            if e.timestamp > v.timestamp {
                return false;
            }
            self.by_path.remove(rel);
        }
        if let Some(slot) = self.targets.get_mut(rel) {
            *slot = Some(v.clone());
        }
        true
    }

    /// Whether a hard link's target was not among the chosen files.
    pub(super) fn targets_missing(&self) -> bool {
        self.targets.values().any(Option::is_none)
    }

    /// Looks for the hard link targets not among the chosen files in
    /// every file of the manifest (one more pass, holding one file at a
    /// time); returns the copies to plan: each hard link's name with its
    /// target's version.
    pub(super) fn targets_elsewhere(
        &mut self,
        history: &Manifest,
        opts: &RestoreOptions,
    ) -> Result<Vec<(Box<[u8]>, Version)>> {
        let mut found: HashMap<Box<[u8]>, Version> = HashMap::new();
        if !opts.matcher.matches_everything() && self.targets_missing() {
            let everything = Matcher::new(&[], false).map_err(super::RestoreError::Pattern)?;
            let (targets, by_path) = (&self.targets, &self.by_path);
            history::for_each_file(history, &everything, opts.as_of, &mut |file| {
                if file.deleted.is_some() {
                    return;
                }
                let v = file.current();
                let Ok(rel) = checked_path(&v.name) else {
                    return;
                };
                let wanted = matches!(targets.get(rel), Some(None));
                // An entry more recent than the file holds that name.
                let shadowed = by_path.get(rel).is_some_and(|e| e.timestamp > v.timestamp);
                if wanted && !shadowed {
                    found.insert(rel.into(), v.clone());
                }
            })?;
        }
        let mut copies = Vec::new();
        let links: Vec<Box<[u8]>> = self
            .by_path
            .iter()
            .filter(|(_, e)| matches!(&e.kind, EntryKind::Hardlink(t) if checked_path(t).is_ok_and(|r| found.contains_key(r))))
            .map(|(rel, _)| rel.clone())
            .collect();
        for rel in links {
            let Some(e) = self.by_path.remove(&rel) else {
                continue;
            };
            let EntryKind::Hardlink(t) = &e.kind else {
                continue;
            };
            let Some(v) = checked_path(t).ok().and_then(|r| found.get(r)) else {
                continue;
            };
            let mut copy = v.clone();
            copy.name = e.name.to_vec();
            self.plan
                .hardlink_copies
                .push(names::display(&e.name, false));
            copies.push((e.name.clone(), copy));
        }
        Ok(copies)
    }

    /// The entries to make, in name order, each hard link tied to its
    /// target's version (or failed when its target holds no file).
    pub(super) fn finish(self) -> EntryPlan {
        let mut list: Vec<PlannedEntry> = self.by_path.into_values().collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        let mut plan = self.plan;
        plan.hardlink_copies.sort();
        for mut e in list {
            match &e.kind {
                EntryKind::Dir => plan.dirs += 1,
                EntryKind::Symlink(_) => plan.symlinks += 1,
                EntryKind::Hardlink(t) => {
                    // Several links may share one target.
                    let version = checked_path(t)
                        .ok()
                        .and_then(|rel| self.targets.get(rel))
                        .and_then(Option::as_ref);
                    let Some(v) = version else {
                        plan.failed.push(entry_failure(
                            e.id,
                            &e.name,
                            FailKind::LinkTarget,
                            format!(
                                "hard link to {}, which holds no file backed up by then",
                                names::display(t, false)
                            ),
                        ));
                        continue;
                    };
                    e.link_to = Some(LinkTo {
                        name: t.clone().into_boxed_slice(),
                        size: v.size,
                        md5: md5_bytes(&v.md5),
                    });
                    plan.hardlinks += 1;
                }
            }
            plan.list.push(e);
        }
        plan
    }
}
