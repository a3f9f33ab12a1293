//! What verify found: per file, per disc, for the origin, and in all;
//! the report every caller (the binary, burn, tests) reads.

use crate::catalog::manifest::Version;
use crate::medium::{Content, Medium};
use crate::{disc, names};

/// What is wrong with a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// On the disc, but its size or MD5 is not the recorded one.
    Damaged,
    /// Not on the disc; or, for the origin, no longer in the live folder.
    Missing,
    /// Reading it failed.
    Unreadable,
    /// On the disc, but its manifest does not know it.
    Unknown,
    /// The disc's manifest fails its integrity check or has unusable rows.
    Manifest,
    /// A live file whose size and mtime are as backed up but whose MD5 is not.
    SilentCorruption,
    /// A disc that could not be opened at all.
    Unusable,
}

impl Kind {
    /// How the problem reads in a sentence.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Damaged => "damaged",
            Kind::Missing => "missing",
            Kind::Unreadable => "unreadable",
            Kind::Unknown => "unknown to the manifest",
            Kind::Manifest => "damaged manifest",
            Kind::SilentCorruption => "silent corruption of the original",
            Kind::Unusable => "cannot be opened",
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    /// The file's id in the catalogue, when known.
    pub id: Option<i64>,
    /// The file's name in the watched folder (`/2012/a.jpg`), when known;
    /// bytes that are not UTF-8 are shown as `\xNN`.
    pub filename: Option<String>,
    /// Where: the path on the disc (`files/0/3`), or in the origin.
    pub path: String,
    pub problem: Kind,
    /// The particulars (`MD5 … instead of …`, the read error).
    pub detail: String,
    /// For a part of a split file: its number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<u32>,
    /// The part of a version that is no backup (abandoned): listed, but
    /// no backup is damaged by it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub not_a_backup: bool,
    /// For a file of an image (or a disc in its drive) that could not be
    /// read whole: the runs of sectors that never read, as (first LBA,
    /// last LBA), each tried [`sectors::TRIES`] times; every other sector
    /// of the file was read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable_sectors: Vec<(u64, u64)>,
}

impl Problem {
    pub(super) fn of(v: &Version, path: String, problem: Kind, detail: String) -> Problem {
        Problem {
            id: Some(v.id),
            filename: Some(names::display(&v.name, false)),
            path,
            problem,
            detail,
            part: None,
            not_a_backup: false,
            unreadable_sectors: Vec::new(),
        }
    }

    pub(super) fn at(path: impl Into<String>, problem: Kind, detail: String) -> Problem {
        Problem {
            id: None,
            filename: None,
            path: path.into(),
            problem,
            detail,
            part: None,
            not_a_backup: false,
            unreadable_sectors: Vec::new(),
        }
    }
}

/// Where a part of a split file stands, by what the newest manifest given
/// records of its version (this disc's own when it alone knows the part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Its version is complete: a backup.
    Backup,
    /// Its version was still being staged when the newest disc given was
    /// closed, as every part but the last is on its own disc: a later disc
    /// may complete it, so it is checked, and its damage counted, as a
    /// backup's.
    Unfinished,
    /// Its version was abandoned (or its state is not one we know): no
    /// backup. Checked and listed, never counted as a damaged backup.
    NotABackup,
}

impl Standing {
    pub(super) fn of(state: &str) -> Standing {
        match state {
            "complete" => Standing::Backup,
            "staging" => Standing::Unfinished,
            _ => Standing::NotABackup,
        }
    }
}

/// A part of a split file recorded on a disc, and what checking it showed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartReport {
    pub id: i64,
    /// The file's name in the watched folder, bytes that are not UTF-8 as
    /// `\xNN`.
    pub filename: String,
    pub part: u32,
    /// Its path on the disc (`files/0/7.2`).
    pub path: String,
    pub offset: u64,
    pub size: u64,
    pub md5: String,
    /// Its version's state: `complete`, `staging` or `abandoned`.
    pub state: String,
    pub standing: Standing,
    /// Present, of its size and MD5.
    pub ok: bool,
    /// What is wrong with it, when something is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Kind>,
}

/// A file the disc must hold, as its manifest records it: a whole file,
/// or a part.
pub(super) struct Expected {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) rel: String,
    pub(super) size: u64,
    pub(super) md5: String,
    /// A part's number and its place in the report's `parts`.
    pub(super) part: Option<(u32, usize)>,
    /// How a problem of it is introduced: `part 2`, and why it is or may
    /// be no backup.
    pub(super) label: Option<String>,
    /// Whether it is (or may be) a backup: its problems count as damage.
    pub(super) backup: bool,
}

/// What one disc showed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DiscReport {
    pub disc: i64,
    /// For a parity disc: its name `G-J` (and `disc` is the newest data
    /// disc its manifest knows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parity: Option<String>,
    /// For a parity disc: what `par2 verify` said of its group's images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub par2: Option<String>,
    /// For a parity disc whose group's images were all given: whether
    /// `par2 verify` found them whole. A data image that is not is that
    /// disc's damage, not this one's: it is not counted in `damaged`, but
    /// the run is not clean.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub par2_whole: Option<bool>,
    /// The mounted disc, or image, it was read from.
    pub source: String,
    /// `image` or `folder`.
    pub medium: &'static str,
    /// Files its manifest says it holds as (maybe) backups: whole files,
    /// and parts of split files that are or may be a backup; `ok`,
    /// `damaged`, `missing` and `unreadable` count these.
    pub files: u64,
    pub ok: u64,
    pub damaged: u64,
    pub missing: u64,
    pub unreadable: u64,
    pub unknown: u64,
    /// Whether `manifest.db` passed its integrity check and every row of
    /// this disc could be used.
    pub manifest_ok: bool,
    /// Bytes read.
    pub bytes: u64,
    pub seconds: f64,
    pub problems: Vec<Problem>,
    /// Every part of a split file its manifest records on it, whatever
    /// its version's state, with what checking it showed.
    pub parts: Vec<PartReport>,
    /// Of those, parts of a version that is no backup (abandoned): checked
    /// and listed, never counted in `files`, `damaged` or `missing`.
    pub not_a_backup: u64,
    /// Files to read on it, in on-disc order (those whose size is right).
    pub to_read: u64,
    /// Files an earlier time-limited run read already: this one went on
    /// after them (and did not check the manifest or the missing files
    /// again: the earlier run did).
    pub resumed_from: u64,
    /// Set when the time limit stopped the run on this disc: the files
    /// read so far (the next run goes on from there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<u64>,
}

impl DiscReport {
    /// A report on `m` with nothing checked yet.
    pub(super) fn of(m: &Medium) -> DiscReport {
        DiscReport {
            disc: m.disc,
            source: names::display(m.source.as_os_str().as_encoded_bytes(), false),
            medium: match m.content {
                Content::Image(_) => "image",
                Content::Folder(_) => "folder",
            },
            manifest_ok: true,
            ..Default::default()
        }
    }

    /// Nothing damaged, missing or unreadable, and the manifest is sound.
    /// (Unknown files are listed, but do not make a disc bad.)
    pub fn clean(&self) -> bool {
        self.manifest_ok
            && self.damaged == 0
            && self.missing == 0
            && self.unreadable == 0
            && self.par2_whole != Some(false)
    }

    /// Read speed in MB/s (10^6 bytes).
    pub fn mb_per_s(&self) -> f64 {
        mb_per_s(self.bytes, self.seconds)
    }

    /// Records what checking a file it must hold showed: fine (`None`),
    /// or a problem.
    pub(super) fn checked(
        &mut self,
        e: &Expected,
        problem: Option<(Kind, String)>,
        on_problem: &mut dyn FnMut(&str, &Problem),
    ) {
        self.checked_with_sectors(e, problem, Vec::new(), on_problem)
    }

    /// Like [`Self::checked`], with the sectors that could not be read.
    pub(super) fn checked_with_sectors(
        &mut self,
        e: &Expected,
        problem: Option<(Kind, String)>,
        unreadable_sectors: Vec<(u64, u64)>,
        on_problem: &mut dyn FnMut(&str, &Problem),
    ) {
        if let Some((_, i)) = e.part {
            if let Some(p) = self.parts.get_mut(i) {
                p.ok = problem.is_none();
                p.problem = problem.as_ref().map(|(k, _)| *k);
            }
        }
        let Some((kind, detail)) = problem else {
            if e.backup {
                self.ok += 1;
            }
            return;
        };
        self.add(
            Problem {
                id: Some(e.id),
                filename: Some(e.name.clone()),
                path: e.rel.clone(),
                problem: kind,
                detail: match &e.label {
                    Some(label) => format!("{label}: {detail}"),
                    None => detail,
                },
                part: e.part.map(|(k, _)| k),
                not_a_backup: !e.backup,
                unreadable_sectors,
            },
            on_problem,
        );
    }

    pub(super) fn add(&mut self, p: Problem, on_problem: &mut dyn FnMut(&str, &Problem)) {
        if p.not_a_backup {
            on_problem(&self.label(), &p);
            self.problems.push(p);
            return;
        }
        match p.problem {
            Kind::Damaged => self.damaged += 1,
            Kind::Missing => self.missing += 1,
            Kind::Unreadable => self.unreadable += 1,
            Kind::Unknown => self.unknown += 1,
            Kind::Manifest | Kind::Unusable => self.manifest_ok = false,
            Kind::SilentCorruption => {}
        }
        on_problem(&self.label(), &p);
        self.problems.push(p);
    }

    /// The disc's manifest must pass SQLite's integrity check.
    pub(super) fn check_manifest(
        &mut self,
        m: &Medium,
        on_problem: &mut dyn FnMut(&str, &Problem),
    ) {
        if let Err(why) = m.manifest.integrity_check() {
            self.add(
                Problem::at(
                    disc::MANIFEST,
                    Kind::Manifest,
                    format!("fails its integrity check: {}", why.replace('\n', " ")),
                ),
                on_problem,
            );
        }
    }

    /// Where a problem was found: `disc 3 (/media/cdrom)`, `parity disc 1-1 (...)`.
    pub(super) fn label(&self) -> String {
        match &self.parity {
            Some(p) => format!("parity disc {p} ({})", self.source),
            None => format!("disc {} ({})", self.disc, self.source),
        }
    }
}

/// What the origin showed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OriginReport {
    pub path: String,
    /// Files of the newest manifest not recorded as deleted.
    pub files: u64,
    /// Unchanged since the backup, and the same MD5.
    pub ok: u64,
    /// Size or mtime differ from the backup: changed since, not an error.
    pub changed: u64,
    pub silent_corruption: u64,
    pub missing: u64,
    pub unreadable: u64,
    /// Whether the newest manifest could be read whole.
    pub manifest_ok: bool,
    pub bytes: u64,
    pub seconds: f64,
    pub problems: Vec<Problem>,
}

impl OriginReport {
    /// Nothing silently corrupted, missing or unreadable.
    pub fn clean(&self) -> bool {
        self.manifest_ok && self.silent_corruption == 0 && self.missing == 0 && self.unreadable == 0
    }

    /// Read speed in MB/s (10^6 bytes).
    pub fn mb_per_s(&self) -> f64 {
        mb_per_s(self.bytes, self.seconds)
    }

    pub(super) fn add(&mut self, p: Problem, on_problem: &mut dyn FnMut(&str, &Problem)) {
        match p.problem {
            Kind::SilentCorruption | Kind::Damaged => self.silent_corruption += 1,
            Kind::Missing => self.missing += 1,
            Kind::Unreadable => self.unreadable += 1,
            Kind::Manifest | Kind::Unusable => self.manifest_ok = false,
            Kind::Unknown => {}
        }
        on_problem(&format!("origin ({})", self.path), &p);
        self.problems.push(p);
    }
}

/// A disc given that could not be opened at all (an image too damaged to
/// read, a manifest that is not a database): nothing on it can be checked.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct UnusableDisc {
    pub source: String,
    pub error: String,
}

/// Everything verified.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Discs that could not be opened; the others were still verified.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unusable: Vec<UnusableDisc>,
    /// In disc order; a disc given twice (two copies) appears twice.
    pub discs: Vec<DiscReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<OriginReport>,
    /// With a time limit that passed: the discs not begun (and the origin
    /// not checked), for the next run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_begun: Vec<String>,
}

impl DiscReport {
    /// The disc's name for records: `3`, or `parity-1-2`.
    pub fn name(&self) -> String {
        match &self.parity {
            Some(p) => format!("parity-{p}"),
            None => self.disc.to_string(),
        }
    }
}

impl VerifyReport {
    /// Whether everything checked is good.
    pub fn clean(&self) -> bool {
        self.unusable.is_empty()
            && self.discs.iter().all(DiscReport::clean)
            && self.origin.as_ref().is_none_or(|o| o.clean())
    }
}

pub(super) fn mb_per_s(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / seconds / 1e6
    } else {
        0.0
    }
}
