//! Recording what verify found in the set's workdir (`--record`), so the
//! copies list and the due list know when each copy was last read good,
//! and a time-limited run's successor goes on where it stopped.
//!
//! The catalogue is written without the workdir's lock: checks touch no
//! staged data, and SQLite (WAL, a busy timeout) keeps a concurrent
//! monitor run safe. Each disc is recorded as soon as it is checked, so a
//! run killed later keeps what it finished.
//!
//! Which copy was read: `--copy C`, else the disc's only copy held, else
//! none (the check is recorded for the disc and counts for no copy). A
//! source inside the workdir's own `isos/` is the image, never a copy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{DiscReport, Kind, Plan, VerifyError};
use crate::catalog::copies::{CheckRow, CopyRow};
use crate::catalog::manifest::SetIdentity;
use crate::copies::{self, CheckResult, DiscName};
use crate::error::{Error, Result};
use crate::medium::Medium;
use crate::workdir::Workdir;

/// Names kept per check: enough to say what to restore or repair.
const MAX_NAMES: usize = 100;

/// What was recorded of one disc.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recorded {
    pub disc: String,
    /// The copy the check counts for, if any.
    pub copy: Option<i64>,
    /// Whether the disc was checked to its end (over all the runs of a
    /// time-limited check).
    pub complete: bool,
    /// Over all the runs of the check.
    pub result: CheckResult,
    pub good: bool,
    /// Why the check counts for no copy, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// For a disc with damage: what can save it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remedies: Vec<String>,
}

/// The workdir checks are recorded in.
pub struct Recorder {
    wd: Workdir,
    copy: Option<i64>,
    isos: PathBuf,
    copies: Vec<CopyRow>,
    /// The newest check of each (disc, copy), to go on from.
    newest: HashMap<(String, Option<i64>), CheckRow>,
    /// Discs given more than once in this run, and how many times: no
    /// check of them can say which copy it read.
    twice: HashMap<String, usize>,
    /// The workdir's set, which every disc given must be of.
    ours: SetIdentity,
    pub recorded: Vec<Recorded>,
}

impl Recorder {
    /// Opens `workdir` for recording checks of `copy` (or of each disc's
    /// only copy).
    pub fn open(workdir: &Path, copy: Option<i64>) -> Result<Recorder> {
        let wd = Workdir::open_read(workdir)?;
        let isos = wd.layout.isos();
        let isos = isos.canonicalize().unwrap_or(isos);
        let copies = wd.catalog.copies(None)?;
        let mut newest = HashMap::new();
        // Oldest first: the last one kept is the newest.
        for k in wd.catalog.checks()? {
            if k.how == "verify" {
                newest.insert((k.disc.key(), k.copy), k);
            }
        }
        // A disc of the original dBackup has no UUID: the start of the
        // set's first disc tells its set from ours.
        let ours = SetIdentity {
            uuid: Some(wd.settings.uuid.clone()),
            name: Some(wd.settings.name.clone()),
            first_started: wd
                .catalog
                .discs()?
                .into_iter()
                .find(|d| d.id == 1)
                .and_then(|d| d.started),
        };
        Ok(Recorder {
            wd,
            ours,
            copy,
            isos,
            copies,
            newest,
            twice: HashMap::new(),
            recorded: Vec::new(),
        })
    }

    /// The copy a check of `disc` read from `source` counts for, or why none.
    fn copy_for(&self, disc: &str, source: Option<&Path>) -> std::result::Result<i64, String> {
        if let Some(src) = source {
            let src = src.canonicalize().unwrap_or_else(|_| src.to_path_buf());
            if src.starts_with(&self.isos) {
                return Err("the workdir's own image was read, not a copy".into());
            }
        }
        if let Some(n) = self.twice.get(disc) {
            return Err(format!(
                "it was given {n} times in this run, and one check cannot be told from the other"
            ));
        }
        let held: Vec<&CopyRow> = self
            .copies
            .iter()
            .filter(|c| c.disc.key() == disc && c.lost.is_none())
            .collect();
        if let Some(c) = self.copy {
            return if self
                .copies
                .iter()
                .any(|k| k.disc.key() == disc && k.copy == c)
            {
                Ok(c)
            } else {
                Err(format!("it has no copy {c} recorded"))
            };
        }
        match held[..] {
            [one] => Ok(one.copy),
            [] => Err("no copy of it is recorded (dbackup-stage copies add)".into()),
            _ => Err(format!(
                "it has {} copies held: say which was read with --copy C",
                held.len()
            )),
        }
    }

    /// The plan for the discs given, once verify has them open: refused
    /// (before anything is read or recorded) when one is of another set;
    /// where each disc's unfinished check of the same copy stopped; and,
    /// with a time limit, the discs checked longest ago first.
    pub fn plan(
        &mut self,
        media: &[&Medium],
        time_limited: bool,
    ) -> std::result::Result<Plan, VerifyError> {
        // Bounded by the discs given and the copies among them.
        let mut given: HashMap<String, usize> = HashMap::new();
        // Where each disc is read from: which copy its check is of, so
        // an unfinished check goes on only when the same copy is read.
        let mut sources: HashMap<String, PathBuf> = HashMap::new();
        for m in media {
            if !m.identity.same_set(&self.ours) {
                return Err(VerifyError::OtherWorkdir {
                    path: m.source.clone(),
                    theirs: m.identity.describe(),
                    ours: self.ours.describe(),
                });
            }
            let name = super::medium_name(m);
            *given.entry(name.clone()).or_default() += 1;
            sources.insert(name, m.source.clone());
        }
        given.retain(|_, n| *n > 1);
        self.twice = given;
        let mut plan = Plan::default();
        let mut order = HashMap::new();
        // Bounded by the checks recorded: the newest of each disc and copy.
        for ((key, copy), k) in &self.newest {
            let source = sources.get(key).map(PathBuf::as_path);
            if self.copy_for(key, source).ok() != *copy {
                continue;
            }
            // An unfinished check first, so each run goes on where the
            // last one stopped; then discs never checked; then the oldest.
            if !k.complete {
                plan.resume.insert(key.clone(), k.next_file);
                order.insert(key.clone(), f64::MIN);
            } else {
                order.insert(key.clone(), k.checked);
            }
        }
        if time_limited {
            plan.order = Some(order);
        }
        Ok(plan)
    }

    /// Records one disc's check (adding to the unfinished check it went on
    /// from); what was recorded.
    pub fn record(&mut self, r: &DiscReport, started: f64) -> Result<&Recorded> {
        let key = r.name();
        let disc = DiscName::parse(&key).map_err(Error::Invalid)?;
        let (copy, note) = match self.copy_for(&key, Some(Path::new(&r.source))) {
            Ok(c) => (Some(c), None),
            Err(why) => (None, Some(format!("counted for no copy: {why}"))),
        };
        let mut result = CheckResult {
            files_ok: r.ok,
            damaged: r.damaged + u64::from(!r.manifest_ok) + u64::from(r.par2_whole == Some(false)),
            unreadable: r.unreadable,
            missing: r.missing,
        };
        let mut names: Vec<String> = r
            .problems
            .iter()
            .filter(|p| {
                !p.not_a_backup
                    && matches!(
                        p.problem,
                        Kind::Damaged | Kind::Missing | Kind::Unreadable | Kind::Manifest
                    )
            })
            .map(|p| p.filename.clone().unwrap_or_else(|| p.path.clone()))
            .take(MAX_NAMES)
            .collect();
        let now = copies::now();
        let next_file = r.stopped_at.unwrap_or(r.to_read);
        let complete = r.stopped_at.is_none();
        let earlier = self
            .newest
            .get(&(key.clone(), copy))
            .filter(|k| !k.complete && r.resumed_from > 0)
            .cloned();
        let row = match earlier {
            Some(mut k) => {
                result.files_ok += k.result.files_ok;
                result.damaged += k.result.damaged;
                result.unreadable += k.result.unreadable;
                result.missing += k.result.missing;
                let mut all = std::mem::take(&mut k.names);
                all.append(&mut names);
                all.truncate(MAX_NAMES);
                k.names = all;
                k.checked = now;
                k.complete = complete;
                k.result = result;
                k.next_file = next_file;
                k.source = Some(r.source.clone());
                self.wd.catalog.update_check(&k)?;
                k
            }
            None => {
                let mut k = CheckRow {
                    id: 0,
                    disc: disc.clone(),
                    copy,
                    started,
                    checked: now,
                    complete,
                    result,
                    names,
                    next_file,
                    how: "verify".into(),
                    source: Some(r.source.clone()),
                };
                k.id = self.wd.catalog.add_check(&k)?;
                k
            }
        };
        let good = row.complete && row.result.is_good();
        let remedies = if row.result.is_good() {
            Vec::new()
        } else {
            self.remedies(&disc, copy)?
        };
        self.newest.insert((key.clone(), copy), row.clone());
        self.recorded.push(Recorded {
            disc: key,
            copy,
            complete: row.complete,
            result: row.result,
            good,
            note,
            remedies,
        });
        Ok(self.recorded.last().expect("just pushed"))
    }

    /// What can save a damaged disc: another copy held, the image still in
    /// the workdir (with its ECC), a parity group that can rebuild it.
    fn remedies(&self, disc: &DiscName, copy: Option<i64>) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let others: Vec<&CopyRow> = self
            .copies
            .iter()
            .filter(|c| &c.disc == disc && c.lost.is_none() && Some(c.copy) != copy)
            .collect();
        for c in &others {
            out.push(format!(
                "another copy: copy {}{}; verify it, then burn a new copy from it",
                c.copy,
                c.location
                    .as_ref()
                    .map(|l| format!(" at {}", crate::names::display(l.as_bytes(), true)))
                    .unwrap_or_default()
            ));
        }
        let image = self.wd.layout.isos().join(disc.image_name());
        if image.is_file() {
            out.push(format!(
                "its image is still in the workdir: burn a new copy with dbackup-burn -w {} --disc {} --device DEV",
                self.wd.layout.root.display(),
                disc.key()
            ));
        }
        if let DiscName::Data(n) = disc {
            if let Some(img) = self.wd.catalog.images()?.iter().find(|i| i.disc == *n) {
                if let Some(codec) = &img.ecc {
                    out.push(format!(
                        "its dvdisaster {codec} data: read the disc with `dvdisaster -r -d DEV -i disc-{n}.iso`, then repair the image with `dvdisaster -f -i disc-{n}.iso`"
                    ));
                }
            }
            for g in self.wd.catalog.parity_groups()? {
                if g.discs.contains(n) && !g.built.is_empty() {
                    out.push(format!(
                        "its parity group {} (discs {}, parity discs {}): dbackup-lost {n} --rebuild -d SURVIVORS... -d PARITY... --to disc-{n}.iso",
                        g.id,
                        crate::output::discs(&g.discs),
                        g.built
                            .iter()
                            .map(|j| format!("{}-{j}", g.id))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        if out.is_empty() {
            out.push(
                "no other copy, image, ECC or parity is recorded: restore what is still readable (dbackup-restore), and stage it again"
                    .into(),
            );
        }
        Ok(out)
    }
}

/// Copies due for a check, for `--due`: most overdue first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Due {
    pub disc: String,
    pub copy: i64,
    pub location: Option<String>,
    pub medium: Option<String>,
    pub last_good_check: Option<f64>,
    /// When it fell due.
    pub due: f64,
    /// Its newest check found damage.
    pub damaged: bool,
}

/// The copies of the workdir at `root` due for a check at `now`.
pub fn due(root: &Path, now: f64) -> Result<(Vec<Due>, f64)> {
    let wd = Workdir::open_read(root)?;
    let shelf = copies::Shelf::read(&wd)?;
    let list = shelf
        .due(now)
        .into_iter()
        .map(|(d, c)| Due {
            disc: d.disc.key(),
            copy: c.copy.copy,
            location: c.copy.location.clone(),
            medium: c.copy.medium.clone(),
            last_good_check: c.last_good_check,
            due: c.due,
            damaged: c.last_check.as_ref().is_some_and(|k| k.complete && !k.good),
        })
        .collect();
    Ok((list, shelf.every))
}
