//! Man pages and shell completions, generated from the clap definitions
//! (`src/cli.rs`) plus the hand-written sections below, and committed under
//! `man/` and `completions/`. Run `cargo run --example generate-docs` after
//! changing a flag; `tests/docs.rs` fails while the committed files are stale.

use std::path::Path;

use clap::CommandFactory;
use roff::{bold, italic, roman, Roff};

/// A binary: its parser, and what generation cannot say.
pub struct Page {
    pub command: clap::Command,
    pub description: &'static str,
    pub examples: &'static [(&'static str, &'static str)],
}

pub fn pages() -> Vec<Page> {
    use dbackup::cli::*;
    vec![
        Page {
            command: StageArgs::command(),
            description: "dbackup-stage keeps a set: a watched folder backed up onto a series of write-once discs. `init` creates the workdir, which holds the catalogue (manifest.db), the staging area of the open disc and the images of closed ones. `monitor`, run from cron, finds what changed in the watched folder by size and modification time, copies each new or changed file into the open disc while computing its MD5, and records it; when the disc is full it is closed: a copy of the catalogue, which holds the whole history of the set, is frozen into it, its image is built and verified, and the next disc opens. `status` shows how full the open disc is; `close` closes it now; `config` sets error correction and the command run when a disc is ready; `copies` lists and records the copies of each disc, where each is kept and when it was last checked good. Every write is crash-safe: a run killed at any point leaves a state the next run repairs. monitor prints nothing when nothing changed, so cron mails only news.",
            examples: &[
                ("Create a set backing up ~/Pictures onto 25 GB BD-R discs:", "dbackup-stage -w ~/dbackup init ~/Pictures --disc-size bd25 --name Photos"),
                ("Stage what changed every 30 minutes (crontab line):", "*/30 * * * *  dbackup-stage -w /srv/dbackup monitor --cron"),
                ("Close the open disc today and build its image:", "dbackup-stage -w ~/dbackup close"),
            ],
        },
        Page {
            command: MkisoArgs::command(),
            description: "dbackup-mkiso builds the image of every closed disc that has no verified image yet: ISO 9660 level 3 with Rock Ridge and Joliet, holding the disc's files under files/<id div 256>/<id>, its frozen catalogue manifest.db, README.TXT (how to recover by hand), RECOVER.PY (recovers the disc or the whole set with Python 3 alone) and MD5SUMS (every file but itself, for md5sum -c). The image is written under a temp name, fsynced and renamed, then read back with dbackup's own reader: the catalogue must pass SQLite's integrity check and every file its MD5. Only then are the disc's staged copies freed. dbackup-stage monitor and close run the same step when they close a disc.",
            examples: &[
                ("Build the images of all waiting discs:", "dbackup-mkiso -w ~/dbackup"),
                ("Burn a disc image:", "xorriso -as cdrecord -v dev=/dev/sr0 -dao ~/dbackup/isos/disc-3.iso"),
            ],
        },
        Page {
            command: BurnArgs::command(),
            description: "dbackup-burn burns one disc's verified image (a data disc's isos/disc-N.iso, or a parity disc's isos/parity-G-J.iso) onto the blank medium in a drive, reads every byte of it back and compares it with the image, and only then records the copy in the catalogue, with the read-back as its first good check (see dbackup-stage-copies(1)). Before burning it asks the drive (xorriso -toc) and refuses a missing, written or too small medium. The burn is xorriso -as cdrecord -v dev=DEV -dao stream_recording=off IMAGE: one track, the medium closed, defect management kept on BD-R, xorriso's 300 KiB padding after the image (not read back). xorriso dies with dbackup-burn; Ctrl-C kills it and records nothing. The catalogue is written without the workdir's lock, so staging goes on during a long burn. On a real drive, Linux may need the tray reloaded before the new medium can be read: the read-back then fails, nothing is recorded, and the disc can be checked with dbackup-verify --record and recorded with dbackup-stage copies add.",
            examples: &[
                ("Burn disc 3 and say where the copy will be kept:", "dbackup-burn -w ~/dbackup --disc 3 --device /dev/sr0 --location 'home shelf'"),
                ("Burn a parity disc at 4x:", "dbackup-burn -w ~/dbackup --disc parity-1-1 --device /dev/sr0 --speed 4"),
                ("Show the xorriso command only:", "dbackup-burn -w ~/dbackup --disc 3 --device /dev/sr0 --dry-run"),
            ],
        },
        Page {
            command: FindArgs::command(),
            description: "dbackup-find answers where a file is, from the discs alone: mounted discs, .iso images or folders of images given with -d. The newest disc's catalogue holds the whole history of the set. Patterns are globs over the original paths; a pattern without a slash matches the file name in any folder.",
            examples: &[
                ("Find a photo on a pile of images:", "dbackup-find -d ~/isos 'IMG_0001*'"),
                ("Every version of every JPEG of 2012:", "dbackup-find -d /media/cdrom --all-versions '2012/**/*.jpg'"),
            ],
        },
        Page {
            command: VerifyArgs::command(),
            description: "dbackup-verify checks discs for rot: every file a disc's own catalogue says it holds must be present with its size and MD5, the catalogue must pass SQLite's integrity check, and files the catalogue does not know are listed. Files are read in on-disc order. With --origin it also checks the live folder against the newest catalogue, finding originals whose content changed while their size and modification time did not. With --record WORKDIR each disc's result is stored in the set's workdir as the disc is done, for the copy read (--copy); --due lists the copies whose last good check is older than the set's check_every, or that were never checked; --time-limit stops cleanly and the next recorded run goes on where it stopped. A damaged disc's report says what can save it.",
            examples: &[
                ("Verify an old disc in the drive:", "dbackup-verify -d /media/cdrom"),
                ("Verify every image and the originals:", "dbackup-verify -d ~/dbackup/isos --origin ~/Pictures"),
                ("Check copy 2 of the disc in the drive and remember it:", "dbackup-verify -d /media/cdrom --record ~/dbackup --copy 2"),
                ("Which copies are due for a check?", "dbackup-verify --due -w ~/dbackup"),
            ],
        },
        Page {
            command: RestoreArgs::command(),
            description: "dbackup-restore gives files back as they were, from the discs alone. It plans first: the newest version of each chosen file as of the time given, and the discs needed, saying which are missing or lost. Then it restores disc by disc, each file through a temp file checked against its MD5 and renamed into place with its modification time. It never writes outside the target, never follows symbolic links found there, and never overwrites a different file unless asked. A re-run skips what is already restored.",
            examples: &[
                ("Restore everything from a folder of images:", "dbackup-restore -d ~/isos --to ~/restored"),
                ("Restore from a pile of discs with one drive:", "dbackup-restore -d /media/cdrom --drive /media/cdrom --to ~/restored"),
                ("Restore 2012 as it was on 1 June 2013:", "dbackup-restore -d ~/isos --to ~/old '2012/**' --as-of 2013-06-01"),
            ],
        },
        Page {
            command: LostArgs::command(),
            description: "dbackup-lost marks discs lost and says what that really cost. dBackup keeps one copy of each version, so a version on a lost disc survives only where its content still is. Each is reported as unrecoverable (its content is nowhere else), renamed (the same content is on an available disc or in the origin under another path), re-protectable (the origin still holds it; --restage stages it again) or history only (a newer version exists).",
            examples: &[
                ("What would losing disc 4 cost?", "dbackup-lost -w ~/dbackup 4 --what-if"),
                ("Mark it lost and protect again what can be:", "dbackup-lost -w ~/dbackup 4 --restage"),
                ("With only the newest disc's catalogue and the folder:", "dbackup-lost --manifest /media/cdrom/manifest.db --origin ~/Pictures 4"),
            ],
        },
    ]
}

const FILES: &[(&str, &str)] = &[
    ("WORKDIR/manifest.db", "The catalogue: SQLite, tables discs and files as in the original dBackup, plus settings, deletions and images."),
    ("WORKDIR/staging/disc-NNNN/", "A disc's files until its image is verified: files/<id div 256>/<id>, and manifest.db once closed."),
    ("WORKDIR/isos/disc-N.iso", "Verified disc images."),
    ("WORKDIR/lock", "Held by the run that writes."),
    ("DISC/manifest.db", "On every disc: the catalogue as of its closing, with the history of all earlier discs."),
    ("DISC/files/<id div 256>/<id>", "The backed-up file with id <id>."),
    ("DISC/README.TXT", "How to recover by hand, with sqlite3 (or Python) and md5sum."),
    ("DISC/RECOVER.PY", "Recovers a disc or a whole set, names and modification times included, with Python 3 alone: python3 RECOVER.PY --to DIR [DISC ...]."),
    ("DISC/MD5SUMS", "md5sum -c MD5SUMS checks every file of the disc, manifest.db included."),
];

/// The EXIT STATUS section of `tool` (a binary's name), from the shared
/// contract.
fn exit_status(roff: &mut Roff, tool: &str) {
    let short = tool.trim_start_matches("dbackup-");
    roff.control("SH", ["EXIT STATUS"]);
    for status in dbackup::exit::CONTRACT {
        if status.applies_to(short) {
            roff.control("TP", [])
                .text([bold(status.code.to_string())])
                .text([roman(status.describe(Some(short)))]);
        }
    }
}

/// The parser as the man pages show it: built (so subcommands carry the
/// global options and their full names), without clap's `help` subcommand,
/// which has no page.
fn built(cmd: &clap::Command) -> clap::Command {
    let mut cmd = cmd.clone().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The page of a subcommand, e.g. dbackup-stage-init(1), whose parent's
/// page is `parent_name` and whose binary is `tool`.
fn sub_man(parent_name: &str, tool: &str, sub: &clap::Command) -> String {
    let man = clap_mangen::Man::new(sub.clone())
        .date("")
        .source(format!("dbackup {}", env!("CARGO_PKG_VERSION")));
    let mut buf: Vec<u8> = Vec::new();
    let _ = man.render_title(&mut buf);
    let _ = man.render_name_section(&mut buf);
    let _ = man.render_synopsis_section(&mut buf);
    let _ = man.render_description_section(&mut buf);
    let _ = man.render_options_section(&mut buf);
    let mut roff = Roff::new();
    exit_status(&mut roff, tool);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(format!("{parent_name}(1)"))]);
    buf.extend(roff.to_roff().into_bytes());
    String::from_utf8_lossy(&buf).into_owned()
}

/// The subcommands that get a page of their own.
fn subcommands(cmd: &clap::Command) -> Vec<clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect()
}

fn man(page: &Page, all: &[String]) -> String {
    let cmd = built(&page.command);
    let name = cmd.get_name().to_string();
    let man = clap_mangen::Man::new(cmd.clone())
        .date("")
        .source(format!("dbackup {}", env!("CARGO_PKG_VERSION")));
    let mut buf: Vec<u8> = Vec::new();
    let _ = man.render_title(&mut buf);
    let _ = man.render_name_section(&mut buf);
    let _ = man.render_synopsis_section(&mut buf);
    let mut roff = Roff::new();
    roff.control("SH", ["DESCRIPTION"])
        .text([roman(page.description)]);
    buf.extend(roff.to_roff().into_bytes());
    let _ = man.render_options_section(&mut buf);
    if cmd.has_subcommands() {
        let _ = man.render_subcommands_section(&mut buf);
    }
    let mut roff = Roff::new();
    exit_status(&mut roff, &name);
    roff.control("SH", ["FILES"]);
    for (path, what) in FILES {
        roff.control("TP", [])
            .text([italic(*path)])
            .text([roman(*what)]);
    }
    roff.control("SH", ["EXAMPLES"]);
    for (what, example) in page.examples {
        roff.control("PP", [])
            .text([roman(*what)])
            .control("IP", [])
            .text([bold(*example)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    let others: Vec<String> = all
        .iter()
        .filter(|n| **n != name)
        .map(|n| format!("{n}(1)"))
        .collect();
    roff.text([
        roman(others.join(", ")),
        roman(", sqlite3(1), md5sum(1), xorriso(1)"),
    ]);
    buf.extend(roff.to_roff().into_bytes());
    String::from_utf8_lossy(&buf).into_owned()
}

/// Every generated file: (path relative to the repository, content).
pub fn files() -> Vec<(String, Vec<u8>)> {
    use clap_complete::Shell;
    let pages = pages();
    let names: Vec<String> = pages
        .iter()
        .map(|p| p.command.get_name().to_string())
        .collect();
    let mut out = Vec::new();
    for page in &pages {
        let name = page.command.get_name().to_string();
        out.push((format!("man/{name}.1"), man(page, &names).into_bytes()));
        let cmd = built(&page.command);
        // Bounded by the parser's subcommands, two levels deep
        // (dbackup-stage-copies-add).
        for sub in subcommands(&cmd) {
            let sub_page = format!("{name}-{}", sub.get_name());
            out.push((
                format!("man/{sub_page}.1"),
                sub_man(&name, &name, &sub).into_bytes(),
            ));
            for subsub in subcommands(&sub) {
                out.push((
                    format!("man/{sub_page}-{}.1", subsub.get_name()),
                    sub_man(&sub_page, &name, &subsub).into_bytes(),
                ));
            }
        }
        for (shell, dir, file) in [
            (Shell::Bash, "bash", name.clone()),
            (Shell::Zsh, "zsh", format!("_{name}")),
            (Shell::Fish, "fish", format!("{name}.fish")),
            (Shell::Elvish, "elvish", format!("{name}.elv")),
            (Shell::PowerShell, "powershell", format!("_{name}.ps1")),
        ] {
            let mut cmd = page.command.clone();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, &name, &mut buf);
            out.push((format!("completions/{dir}/{file}"), buf));
        }
    }
    out
}

/// Writes every generated file under `root`.
pub fn write_all(root: &Path) -> std::io::Result<()> {
    for (rel, data) in files() {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, data)?;
    }
    Ok(())
}
