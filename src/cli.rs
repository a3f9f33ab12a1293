//! Command-line arguments of every binary, as clap-derive structs, so the
//! binaries stay thin and man pages and completions come from one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Flags every tool shares.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Never draw progress bars (they appear only on a terminal anyway).
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Print only errors and results.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// Stage a watched folder's new and changed files for backup onto discs.
#[derive(Debug, Parser)]
#[command(
    name = "dbackup-stage",
    version,
    about = "Stage a watched folder's new and changed files for backup onto write-once discs",
    after_help = "Exit status: 0 ok; 1 some files were skipped; 2 error; 3 the workdir's filesystem is full; 75 another run holds the lock."
)]
pub struct StageArgs {
    /// The workdir (catalogue, staging area, images). Default: the current
    /// folder. `report` takes several, one set each.
    #[arg(
        short,
        long,
        env = "DBACKUP_WORKDIR",
        global = true,
        value_name = "DIR"
    )]
    pub workdir: Vec<PathBuf>,
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: StageCommand,
}

#[derive(Debug, Subcommand)]
pub enum StageCommand {
    /// Create a workdir that backs up WATCHED, with disc 1 open.
    Init {
        /// The folder to back up.
        watched: PathBuf,
        /// Bytes per disc: a number, a size (700M, 4.3G, 4GiB) or a medium
        /// (cd, dvd, dvd-dl, bd25, bd50, bd100: 75% of its capacity, leaving
        /// room for error-correction data).
        #[arg(long, value_name = "SIZE", default_value = "dvd", value_parser = parse_size)]
        disc_size: u64,
        /// Leave out files and folders matching GLOB (repeatable). Without a
        /// `/` it matches a name at any depth; with one, the path from the
        /// watched folder.
        #[arg(long, value_name = "GLOB")]
        exclude: Vec<String>,
        /// A human name for the set, written on every disc (default: the
        /// watched folder's name).
        #[arg(long)]
        name: Option<String>,
        /// Add dvdisaster error-correction data to every image (needs dvdisaster).
        #[arg(long)]
        ecc: bool,
        /// A shell command run when a disc image is ready, with DBACKUP_DISC,
        /// DBACKUP_ISO, DBACKUP_SET and DBACKUP_UUID in its environment.
        #[arg(long, value_name = "COMMAND")]
        on_disc_ready: Option<String>,
        /// Parity discs: for every K data discs, M parity discs (PAR2, needs
        /// par2), so any M discs of a group can be lost: e.g. 4+1 or 8+2.
        #[arg(long, value_name = "K+M", value_parser = parse_scheme)]
        parity: Option<crate::parity::Scheme>,
        /// How many copies of each disc should be held (default 1):
        /// `status` and `copies` name the discs held in fewer.
        #[arg(long, value_name = "C", value_parser = clap::value_parser!(u64).range(1..=100))]
        copies: Option<u64>,
    },
    /// Show the state of the workdir.
    Status {
        /// One JSON object instead of `Key: value` lines.
        #[arg(long)]
        json: bool,
    },
    /// Stage what changed in the watched folder (run it from cron).
    Monitor {
        /// Compact output for cron: one summary line when something changed.
        #[arg(short, long)]
        cron: bool,
        /// Show what would be staged; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// A JSON report on stdout instead of lines.
        #[arg(long)]
        json: bool,
        /// Do not build images of discs this run closes (leave them to dbackup-mkiso).
        #[arg(long)]
        no_iso: bool,
    },
    /// Close the open disc now, open the next, and build the closed disc's image.
    Close {
        /// A JSON report on stdout.
        #[arg(long)]
        json: bool,
        /// Also end the open parity group now and build its parity discs, so
        /// the newest discs need not wait for a full group (the open disc is
        /// closed only if it holds anything).
        #[arg(long)]
        parity: bool,
        /// Do not build the image now (leave it to dbackup-mkiso).
        #[arg(long)]
        no_iso: bool,
    },
    /// Continue a set made by the original dBackup: adopt its working
    /// directory (settings.yaml, manifest.db, staging/, isos/), keeping every
    /// row and id; it is backed up first.
    Adopt {
        /// Say what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// A human name for the set (default: the watched folder's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Show every setting of the set, or show or change one: `disc_size`
    /// (of the discs not yet closed), `excludes`, `ecc` (on/off),
    /// `on_disc_ready` (a command), `parity` (K+M or off, for groups not yet
    /// started), `copies` (held per disc), `check_every` (a schedule),
    /// `report_html` (a status page rewritten after every run that changed
    /// something), `labels` (on: every image built gets its printable
    /// labels, as with `dbackup-mkiso --label`).
    /// `watched`, `name` and `uuid` are shown but fixed.
    Config {
        /// The setting to show or change (`check-every` is `check_every`).
        #[arg(value_parser = ["disc_size", "excludes", "ecc", "on_disc_ready", "parity", "copies", "check_every", "check-every", "report_html", "report-html", "labels", "watched", "name", "uuid"])]
        key: Option<String>,
        /// The new value. disc_size: a size as for init (refused below 492 KiB,
        /// or below what the open disc already holds: close it first).
        /// excludes: the whole new list of globs, replacing the old ('' for
        /// none). ecc: on or off. on_disc_ready: a command ('' to clear).
        /// parity: K+M (e.g. 4+1) or off. copies: 1 to 100. check_every:
        /// a number and d, w, m or y (90d, 12m, 2y). report_html: the page's
        /// file, then any other workdirs to show on it ('' to stop). labels:
        /// on or off.
        #[arg(value_name = "VALUE")]
        values: Vec<String>,
    },
    /// Write a status page of the set (or of every set given with -w): one
    /// HTML file that opens from disk in any browser, with every disc, its
    /// copies and checks, what lost discs cost, a timeline, and a search
    /// that names the disc holding a file. Reads the catalogues only.
    Report {
        /// The page to write (replaced atomically).
        #[arg(long, value_name = "FILE", required = true)]
        html: PathBuf,
        /// A JSON summary of what was written on stdout.
        #[arg(long)]
        json: bool,
    },
    /// The copies of every disc: where each is and when it was last
    /// checked good; or record, move or lose one.
    Copies {
        #[command(subcommand)]
        action: Option<CopiesCommand>,
        /// A JSON array on stdout instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write the printable labels of a closed disc: a disc-face label (a
    /// 120 mm circle) and a case insert (a 120 mm square) with the set,
    /// the disc, its dates, size and top folders, and a QR code
    /// (dbackup:v1:UUID:DISC[:COPY]), as isos/disc-N.label.svg and
    /// isos/disc-N.label.pdf beside its image. Prints their paths.
    Label {
        /// A data disc's number (3) or a parity disc (parity-1-2).
        #[arg(value_name = "DISC", value_parser = parse_disc_name)]
        disc: crate::copies::DiscName,
        /// The copy the label is for: it goes into the QR code and the
        /// file names (disc-N-copy-C.label.svg).
        #[arg(long, value_name = "C", value_parser = clap::value_parser!(i64).range(1..))]
        copy: Option<i64>,
        /// A JSON object on stdout instead of the two paths.
        #[arg(long)]
        json: bool,
    },
}

/// What `dbackup-stage copies` does.
#[derive(Debug, Subcommand)]
pub enum CopiesCommand {
    /// Record a copy of DISC burned by hand (it was never read back by
    /// dbackup, so it is due for a check at once).
    Add {
        /// A data disc's number (3) or a parity disc (parity-1-2).
        #[arg(value_name = "DISC", value_parser = parse_disc_name)]
        disc: crate::copies::DiscName,
        /// Where the copy is kept (a shelf, a drawer, an address).
        #[arg(long, value_name = "TEXT")]
        location: Option<String>,
        /// The medium (DVD+R, BD-R, M-DISC BD-R ...).
        #[arg(long, value_name = "TEXT")]
        medium: Option<String>,
    },
    /// Record that copy COPY of DISC is now kept at another place.
    Move {
        #[arg(value_name = "DISC", value_parser = parse_disc_name)]
        disc: crate::copies::DiscName,
        #[arg(value_name = "COPY")]
        copy: i64,
        /// Where it is kept now.
        #[arg(long, value_name = "TEXT", required = true)]
        location: String,
    },
    /// Mark copy COPY of DISC lost while another copy is held (a data
    /// disc's last copy is lost with the disc: `dbackup-lost DISC --copy COPY`).
    Lost {
        #[arg(value_name = "DISC", value_parser = parse_disc_name)]
        disc: crate::copies::DiscName,
        #[arg(value_name = "COPY")]
        copy: i64,
    },
    /// Mark copy COPY of DISC found again.
    Found {
        #[arg(value_name = "DISC", value_parser = parse_disc_name)]
        disc: crate::copies::DiscName,
        #[arg(value_name = "COPY")]
        copy: i64,
    },
}

/// A data disc's number; a parity disc is pointed to what it needs.
fn parse_data_disc(s: &str) -> Result<i64, String> {
    match crate::copies::DiscName::parse(s)? {
        crate::copies::DiscName::Data(n) => Ok(n),
        p @ crate::copies::DiscName::Parity(..) => Err(format!(
            "{} holds no files of its own: losing one loses nothing while its group's data discs are held. Record a lost copy with `dbackup-stage copies lost {p} COPY`; burn it again from isos/{}",
            p.label(),
            p.image_name()
        )),
    }
}

fn parse_disc_name(s: &str) -> Result<crate::copies::DiscName, String> {
    crate::copies::DiscName::parse(s)
}

/// Build the ISO images of closed discs, read them back and verify them.
#[derive(Debug, Parser)]
#[command(
    name = "dbackup-mkiso",
    version,
    about = "Build the ISO image of each closed disc, read it back and verify every file before freeing the staged copies",
    after_help = "Exit status: 0 ok; 1 an on_disc_ready command failed, or a full parity group cannot be protected (a member's image is gone); 2 error (an image failed its read-back, the staged copies are kept; or a parity image could not be built); 3 the workdir's filesystem is full; 75 another run holds the lock."
)]
pub struct MkisoArgs {
    /// The workdir. Default: the current folder.
    #[arg(short, long, env = "DBACKUP_WORKDIR", value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Only this disc (default: every closed disc without a verified image).
    #[arg(long, value_name = "N")]
    pub disc: Option<i64>,
    /// Keep the staged copies after the image is verified.
    #[arg(long)]
    pub keep_staged: bool,
    /// Add dvdisaster error-correction data (also a setting: dbackup-stage config ecc on).
    #[arg(long)]
    pub ecc: bool,
    /// Say which images would be built; build nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// A JSON array of the images on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also write each verified image's printable labels beside it
    /// (isos/disc-N.label.svg and .pdf, as `dbackup-stage label N`); a
    /// label that cannot be written is reported and leaves the image as it is.
    /// On by default with `dbackup-stage config labels on`.
    #[arg(long)]
    pub label: bool,
    #[command(flatten)]
    pub common: Common,
}

/// The discs a recovery tool reads.
#[derive(Debug, Clone, Args)]
pub struct Discs {
    /// A disc: a mounted disc (a folder with manifest.db at its root), an
    /// .iso image, or a folder holding .iso images. Repeatable; the newest
    /// disc's manifest gives the history.
    #[arg(short = 'd', long = "disc", value_name = "PATH", required = true)]
    pub discs: Vec<PathBuf>,
}

/// Which files of a set, and as of when: shared by find and restore.
#[derive(Debug, Clone, Args)]
pub struct Select {
    /// Glob patterns over the original paths ('**/*.jpg', '2012/**'); a
    /// pattern without '/' matches the file name in any folder. Default: every file.
    #[arg(value_name = "PATTERN")]
    pub patterns: Vec<String>,
    /// Match patterns case-insensitively.
    #[arg(short = 'i', long)]
    pub ignore_case: bool,
    /// The state as of WHEN: a date (2024-05-01, meaning its end), a
    /// date-time (2024-05-01T12:00, local time unless it names a zone) or
    /// Unix seconds.
    #[arg(long, value_name = "WHEN", value_parser = parse_when)]
    pub as_of: Option<f64>,
}

/// Find files in a backup set from its discs.
#[derive(Debug, Parser)]
#[command(
    name = "dbackup-find",
    version,
    about = "Find backed-up files by glob pattern, reading only the discs' manifests",
    after_help = "Exit status: 0 something matched; 1 nothing matched; 2 error."
)]
pub struct FindArgs {
    #[command(flatten)]
    pub discs: Discs,
    #[command(flatten)]
    pub select: Select,
    /// List every version (with its id and md5), not one row per file.
    #[arg(long)]
    pub all_versions: bool,
    /// List files recorded as deleted.
    #[arg(long)]
    pub deleted: bool,
    /// A JSON array of objects on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: Common,
}

/// Check discs for damage.
#[derive(Debug, Parser)]
#[command(
    name = "dbackup-verify",
    version,
    about = "Check every file on the discs against its MD5 in the disc's own manifest",
    after_help = "Exit status: 0 everything checked is good (with --due: no copy is due); 1 something is damaged, missing or unreadable, or a disc cannot be opened (with --due: a copy is due); 2 error (no disc given can be opened, discs of another set than the --record workdir)."
)]
pub struct VerifyArgs {
    /// A disc: a mounted disc (a folder with manifest.db at its root), an
    /// .iso image, or a folder holding .iso images. Repeatable; the newest
    /// disc's manifest gives the history.
    #[arg(
        short = 'd',
        long = "disc",
        value_name = "PATH",
        required_unless_present = "due"
    )]
    pub discs: Vec<PathBuf>,
    /// Record each disc's result (date, copy, files ok, damaged,
    /// unreadable, missing, and the names) in the catalogue of WORKDIR, the
    /// set's workdir, as each disc is done: `dbackup-stage copies` and
    /// `--due` read them.
    #[arg(long, value_name = "WORKDIR")]
    pub record: Option<PathBuf>,
    /// With --record: the copy that was read (see `dbackup-stage copies`).
    /// Default: a disc's only copy, when it has one.
    #[arg(long, value_name = "C", requires = "record")]
    pub copy: Option<i64>,
    /// With --record: stop cleanly once DURATION has passed (90s, 45m for
    /// minutes, 5h, 1d), at the next batch of files; the next run goes on
    /// where this one stopped, and checks the discs checked longest ago
    /// first.
    #[arg(long, value_name = "DURATION", requires = "record", value_parser = parse_duration)]
    pub time_limit: Option<std::time::Duration>,
    /// List the copies due for a check: last checked good longer ago than
    /// the set's `check_every`, or never; most overdue first, with where
    /// each is. Reads the workdir (-w) only.
    #[arg(long, requires = "workdir", conflicts_with_all = ["discs", "origin", "record"])]
    pub due: bool,
    /// With --due: the workdir.
    #[arg(short, long, env = "DBACKUP_WORKDIR", value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Also check the live folder against the newest manifest: files whose
    /// size and mtime are unchanged but whose MD5 differs, and missing files.
    #[arg(long, value_name = "DIR")]
    pub origin: Option<PathBuf>,
    /// A JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: Common,
}

/// Restore files from discs.
#[derive(Debug, Parser)]
#[command(
    name = "dbackup-restore",
    version,
    about = "Restore files as they were, from discs or images, checking every MD5",
    after_help = "Exit status: 0 everything asked for was restored and verified; 1 something could not be (a disc missing, lost or unusable, a damaged file, a refused name, a different file kept, stopped at the drive's prompt) or nothing matched; 2 error (nothing restored, or the target's filesystem filled up); 130 interrupted (run the same command again to resume)."
)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub discs: Discs,
    /// Where to restore to (created if missing). Nothing is written outside it.
    #[arg(long, value_name = "TARGET")]
    pub to: PathBuf,
    #[command(flatten)]
    pub select: Select,
    /// Print the plan (discs needed, files, bytes); restore nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace existing files that differ.
    #[arg(long)]
    pub overwrite: bool,
    /// Do not give files and folders their recorded modes: they get the
    /// restoring user's defaults (and no setuid or setgid).
    #[arg(long)]
    pub no_mode: bool,
    /// Do not give files, folders and links their recorded owners (given
    /// only when running as root; without, a file loses setuid and setgid).
    #[arg(long)]
    pub no_owner: bool,
    /// One drive and a pile of discs: ask for each needed disc in turn at
    /// this mount point.
    #[arg(long, value_name = "MOUNTPOINT")]
    pub drive: Option<PathBuf>,
    /// Where the image of a disc not given is rebuilt from its parity
    /// group's survivors and parity discs, one disc at a time (needs room
    /// for one image and its group's recovery files). Default: $TMPDIR or
    /// /tmp.
    #[arg(long, value_name = "DIR")]
    pub rebuild_in: Option<PathBuf>,
    /// A JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: Common,
}

/// What a lost disc cost, and protect again what still can be.
#[derive(Debug, Parser)]
#[command(
    name = "dbackup-lost",
    version,
    about = "Mark discs lost, report what that cost, and stage again what the origin still holds",
    after_help = "Exit status: 0 nothing is unrecoverable (with --rebuild: the image is written and checked); 1 some data is unrecoverable; 2 error (nothing changed; with --rebuild: the disc could not be rebuilt, nothing written); 75 another run holds the lock; 130 --rebuild interrupted (nothing written)."
)]
pub struct LostArgs {
    /// The workdir. Default: the current folder.
    #[arg(
        short,
        long,
        env = "DBACKUP_WORKDIR",
        value_name = "DIR",
        conflicts_with = "manifest"
    )]
    pub workdir: Option<PathBuf>,
    /// The data discs lost (or, with --found, found again).
    #[arg(value_name = "DISC", required = true, value_parser = parse_data_disc)]
    pub discs: Vec<i64>,
    /// Report only; mark nothing.
    #[arg(long, conflicts_with_all = ["found"])]
    pub what_if: bool,
    /// Stage again what the origin still holds, into the open disc.
    #[arg(long, conflicts_with_all = ["found", "what_if", "manifest"])]
    pub restage: bool,
    /// Mark the discs available again.
    #[arg(long)]
    pub found: bool,
    /// The copy of DISC that was lost (or, with --found, found): while
    /// another copy is held the disc is not lost (see dbackup-stage copies).
    /// With --restage, the disc's last copy: the disc is lost with it.
    #[arg(long, value_name = "C", conflicts_with_all = ["manifest"])]
    pub copy: Option<i64>,
    /// Work from a manifest.db alone (e.g. copied from the newest disc),
    /// without a workdir; reports only.
    #[arg(
        long,
        value_name = "PATH",
        requires = "origin",
        conflicts_with = "found"
    )]
    pub manifest: Option<PathBuf>,
    /// The live folder to check (default: the set's watched folder).
    #[arg(long, value_name = "DIR")]
    pub origin: Option<PathBuf>,
    /// Rebuild the lost data disc's image (one DISC) from its parity
    /// group's surviving images and parity discs (--disc), into --to FILE;
    /// reads only the discs given, marks nothing.
    #[arg(
        long,
        requires_all = ["disc", "to"],
        conflicts_with_all = ["found", "restage", "what_if", "manifest", "workdir", "origin"]
    )]
    pub rebuild: bool,
    /// With --rebuild: a surviving data disc's image, a parity disc (mounted
    /// or an image), or a folder of images; repeat for each.
    #[arg(short, long = "disc", value_name = "PATH", requires = "rebuild")]
    pub disc: Vec<PathBuf>,
    /// With --rebuild: the image file to write (must not exist).
    #[arg(long, value_name = "FILE", requires = "rebuild")]
    pub to: Option<PathBuf>,
    /// A JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: Common,
}

/// Burn a disc's verified image onto a blank medium, read it back and
/// record the copy.
#[derive(Debug, Parser)]
#[command(
    name = "dbackup-burn",
    version,
    about = "Burn a disc's verified image onto a blank write-once medium with xorriso, read every byte back and record the copy",
    after_help = "Exit status: 0 burned, read back and recorded; 1 burned, but the medium could not be read back or does not match the image (not recorded); 2 error (nothing recorded); 130 interrupted (xorriso stopped, nothing recorded)."
)]
pub struct BurnArgs {
    /// The workdir. Default: the current folder.
    #[arg(short, long, env = "DBACKUP_WORKDIR", value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// The disc to burn: a data disc's number (3) or a parity disc
    /// (parity-1-2). Its image is isos/disc-3.iso or isos/parity-1-2.iso.
    #[arg(long, value_name = "DISC", value_parser = parse_disc_name)]
    pub disc: crate::copies::DiscName,
    /// The burner, as xorriso names it: /dev/sr0, or stdio:PATH for a file
    /// (which is then the copy).
    #[arg(long, value_name = "DEV")]
    pub device: String,
    /// Where the copy will be kept (a shelf, a drawer, an address).
    #[arg(long, value_name = "TEXT")]
    pub location: Option<String>,
    /// The write speed, as xorriso takes it: 4, 8x, 4d, 2b, 5540k, min or
    /// max (default: the drive's choice).
    #[arg(long, value_name = "S", value_parser = parse_speed)]
    pub speed: Option<String>,
    /// Check the image and xorriso and print the xorriso command; burn and
    /// record nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// A JSON object on stdout instead of a line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: Common,
}

fn parse_speed(s: &str) -> Result<String, String> {
    crate::burn::parse_speed(s)
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::units::parse_duration(s)
}

fn parse_when(s: &str) -> Result<f64, String> {
    crate::units::parse_when(s)
}

fn parse_scheme(s: &str) -> Result<crate::parity::Scheme, String> {
    crate::parity::Scheme::parse(s)
}

fn parse_size(s: &str) -> Result<u64, String> {
    crate::units::parse_size(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn parsers_are_well_formed() {
        StageArgs::command().debug_assert();
        MkisoArgs::command().debug_assert();
        FindArgs::command().debug_assert();
        VerifyArgs::command().debug_assert();
        RestoreArgs::command().debug_assert();
        LostArgs::command().debug_assert();
        BurnArgs::command().debug_assert();
    }
}
