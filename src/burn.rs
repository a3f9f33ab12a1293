//! Burning one disc's verified image onto a blank medium with xorriso,
//! reading every byte of it back, and recording the copy and its first
//! good check. Owns the talk with xorriso (asking the drive about its
//! medium, the burn itself) and the read-back; never writes anything but
//! the medium and, once the medium matched, two catalogue rows.
//!
//! The order is fixed and each step refuses before the next: the image
//! must be the verified one (a data disc's row in `images` with its size,
//! a parity disc in its group's `built`), xorriso must be installed, and
//! the drive must hold a blank medium with room for the image and
//! xorriso's padding. Then
//!
//! ```text
//! xorriso -as cdrecord -v dev=DEV -dao stream_recording=off [speed=S] IMAGE
//! ```
//!
//! - `-dao` (an alias of `-sao`): one track written at once and the medium
//!   closed (no `-multi`), which is right for DVD-R (DAO), DVD+R and BD-R
//!   (their only sequential mode) and CD-R (SAO); xorriso refuses to start
//!   rather than fall back to another mode when the medium does not take it.
//! - `stream_recording=off`, spelled out: on BD-R, streaming trades the
//!   drive's defect management (replacement of bad blocks) for speed,
//!   which is wrong for an archive; off is xorriso's default, said so that
//!   a site's startup file cannot change it behind our back.
//! - xorriso's default padding (300 KiB of zeros after the track) is kept:
//!   it spares readers that fail on a track's last blocks. The room needed
//!   is the image's sectors plus 150, rounded up to 32 (64 KiB, what xorriso
//!   counts for a stdio file; DVD and BD round to 16 or 32), compared with
//!   the `Media space` xorriso reports, which is already on the safe side.
//!
//! The read-back reads the medium (the file of `stdio:PATH`, else the
//! device node) from byte 0 for exactly the image's length, in 1 MiB
//! chunks, and compares every byte; the padding after it is not read.
//! On a real drive, Linux may go on showing the blank medium's size until
//! the tray is reloaded, and then the read-back fails with an I/O error:
//! we do not eject (the tray may hit a hand or a closed door). The error
//! says how to record the copy by hand and check it with dbackup-verify.
//!
//! Before the medium is spent the image is checked against its own MD5s
//! (every file, as dbackup-verify does): the copy is compared with the
//! image, so an image that rotted in `isos/` would give a copy that passes.
//!
//! Nothing is recorded unless every byte matched. The catalogue is opened
//! without the workdir's lock (WAL lets a cron run stage meanwhile, so a
//! long burn never blocks staging); the image's facts are read at the
//! start and its file is held open for the whole run. The copy and its
//! first check, the read-back, are recorded in one transaction: a crash
//! leaves both or neither.
//!
//! xorriso runs in its own process group, with stdin closed, and dies with
//! us (`PR_SET_PDEATHSIG`): Ctrl-C (or SIGTERM, SIGHUP) reaches only us,
//! and we kill it and wait for it, so no burn goes on unwatched.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::catalog::copies::{CheckRow, NewCopy};
use crate::copies::{self, CheckResult, DiscName};
use crate::progress::Progress;
use crate::workdir::Workdir;

/// Bytes per sector of an optical disc (and of xorriso's counts).
pub const SECTOR: u64 = 2048;
/// xorriso's default padding after a track: 300 KiB.
const PAD_SECTORS: u64 = 150;
/// What xorriso rounds a track up to, in sectors (64 KiB).
const ROUND_SECTORS: u64 = 32;
/// The read-back's chunk.
const CHUNK: usize = 1 << 20;
/// Lines of xorriso's output kept for an error message.
const TAIL_LINES: usize = 12;

/// Why a burn did not happen or did not end with a recorded copy.
#[derive(Debug, thiserror::Error)]
pub enum BurnError {
    /// The image is not one that may be burned.
    #[error("{0}")]
    NotReady(String),
    /// The image no longer matches its own MD5s.
    #[error("the image {} no longer matches its own MD5s ({why}); it is not burned: nothing was written. Check it with dbackup-verify -d, and burn from a good copy of the disc instead (or rebuild it with dbackup-lost --rebuild)", path.display())]
    BadImage { path: PathBuf, why: String },
    #[error("burning needs xorriso, which is not installed (apt-get install xorriso)")]
    NoXorriso,
    #[error("xorriso could not be run: {0}")]
    Spawn(std::io::Error),
    /// xorriso could not tell what medium the drive holds.
    #[error("xorriso could not read the drive {device}: {tail}")]
    Drive { device: String, tail: String },
    #[error("no medium in {device}: insert a blank disc")]
    NoMedium { device: String },
    #[error(
        "the medium in {device} is not blank ({status}): insert a blank disc; nothing was written"
    )]
    NotBlank { device: String, status: String },
    #[error("the medium in {device} is too small: the image needs {need} sectors with xorriso's padding ({}), the medium has {have} free ({}); nothing was written", crate::output::bytes(need * SECTOR), crate::output::bytes(have * SECTOR))]
    TooSmall {
        device: String,
        need: u64,
        have: u64,
    },
    /// xorriso said something we cannot read.
    #[error("xorriso's report on {device} lacks {what}: {tail}")]
    Unreadable {
        device: String,
        what: &'static str,
        tail: String,
    },
    #[error(
        "the burn failed ({code}); the medium may be spoiled, and nothing was recorded: {tail}"
    )]
    Failed { code: String, tail: String },
    /// Ctrl-C or a termination request: xorriso was killed.
    #[error(
        "interrupted: xorriso was stopped; the medium may be spoiled, and nothing was recorded"
    )]
    Interrupted,
    /// The medium could not be read back.
    #[error("the burned medium does not match the image at byte {at} / sector {}: {} could not be read there ({source}); the copy is not recorded (on a drive, reload the tray and check it with `dbackup-verify --record`, then record it with `dbackup-stage copies add`; or burn another medium)", at / SECTOR, path.display())]
    ReadBack {
        path: PathBuf,
        at: u64,
        #[source]
        source: std::io::Error,
    },
    /// The medium ends before the image does.
    #[error("the burned medium does not match the image at byte {at} / sector {}: {} ends there, before the image's {len} bytes; the copy is not recorded (burn another medium)", at / SECTOR, path.display())]
    Short { path: PathBuf, at: u64, len: u64 },
    /// The medium differs from the image.
    #[error("the burned medium does not match the image at byte {at} / sector {}: the copy is not recorded (burn another medium)", at / SECTOR)]
    Mismatch { at: u64 },
    #[error(transparent)]
    Dbackup(#[from] crate::error::Error),
}

impl BurnError {
    /// Whether the medium was burned and then failed its read-back.
    pub fn burned_but_not_matched(&self) -> bool {
        matches!(
            self,
            BurnError::Mismatch { .. } | BurnError::Short { .. } | BurnError::ReadBack { .. }
        )
    }

    /// The exit code of the shared contract: a medium that was burned but
    /// failed its read-back is a finding (1), an interrupt 130, the rest
    /// errors.
    pub fn exit_code(&self) -> i32 {
        match self {
            e if e.burned_but_not_matched() => crate::exit::FINDING,
            BurnError::Interrupted => crate::exit::INTERRUPTED,
            BurnError::Dbackup(e) => e.exit_code(),
            _ => crate::exit::ERROR,
        }
    }
}

type Result<T, E = BurnError> = std::result::Result<T, E>;

/// What to burn, where.
#[derive(Debug, Clone)]
pub struct BurnOptions {
    pub workdir: PathBuf,
    pub disc: DiscName,
    pub device: String,
    pub location: Option<String>,
    pub speed: Option<String>,
    pub dry_run: bool,
}

/// What a burn did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BurnReport {
    pub disc: DiscName,
    /// `disc 3` or `parity disc 1-2`.
    pub label: String,
    /// The copy recorded (none on a dry run).
    pub copy: Option<i64>,
    pub device: String,
    pub image: PathBuf,
    pub bytes: u64,
    /// Files on the disc (0 for a parity disc).
    pub files: u64,
    /// The drive, as it names itself (vendor, product, revision).
    pub drive: Option<String>,
    /// The medium, as xorriso names it (DVD+R, BD-R ...).
    pub medium: Option<String>,
    pub location: Option<String>,
    pub speed: Option<String>,
    /// The burn command, one argument per item.
    pub command: Vec<String>,
    pub dry_run: bool,
    /// Every byte of the image was read back from the medium and matched.
    pub matched: bool,
    /// When the copy was made (Unix seconds; none on a dry run).
    pub made: Option<f64>,
    /// The check recorded for the read-back.
    pub check: Option<i64>,
}

impl BurnReport {
    /// The burn command, shell-quoted.
    pub fn shell_command(&self) -> String {
        self.command
            .iter()
            .map(|a| shell_word(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The line a person reads.
    pub fn line(&self) -> String {
        let what: Vec<&str> = [self.medium.as_deref(), self.drive.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        format!(
            "{} copy {} burned to {}{}, read back and matched: {}",
            self.label,
            self.copy.unwrap_or_default(),
            self.device,
            if what.is_empty() {
                String::new()
            } else {
                format!(" ({})", what.join(", "))
            },
            crate::output::bytes(self.bytes)
        )
    }
}

/// A word for a POSIX shell: as it is when it holds nothing special.
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Checks a write speed as xorriso takes it: a number with an optional
/// unit (x, c, d, b for a medium's factor; k, m for kB/s, MB/s), or
/// `min`, `max`.
pub fn parse_speed(s: &str) -> std::result::Result<String, String> {
    let t = s.trim().to_ascii_lowercase();
    if t == "min" || t == "max" {
        return Ok(t);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let number = !n.is_empty() && n.len() <= 8 && n.parse::<f64>().is_ok_and(|v| v >= 0.0);
    let unit_ok = matches!(
        unit,
        "" | "x" | "c" | "d" | "b" | "k" | "m" | "cx" | "dx" | "bx"
    );
    if number && unit_ok {
        Ok(t)
    } else {
        Err(format!(
            "{s:?} is not a speed: a number with an optional x, c, d, b, k or m (8, 4d, 2b, 5540k), or min or max"
        ))
    }
}

/// The burn command for an image.
pub fn command(xorriso: &Path, device: &str, speed: Option<&str>, image: &Path) -> Vec<String> {
    let mut args = vec![
        xorriso.display().to_string(),
        "-as".into(),
        "cdrecord".into(),
        "-v".into(),
        format!("dev={device}"),
        "-dao".into(),
        "stream_recording=off".into(),
    ];
    if let Some(s) = speed {
        args.push(format!("speed={s}"));
    }
    args.push(image.display().to_string());
    args
}

/// Where the burned bytes are read back: the file of `stdio:PATH`, the
/// node of `mmc:DEV`, else the device itself.
pub fn read_back_path(device: &str) -> PathBuf {
    let plain = device
        .strip_prefix("stdio:")
        .or_else(|| device.strip_prefix("mmc:"))
        .unwrap_or(device);
    PathBuf::from(plain)
}

/// The sectors a burn of `bytes` takes, xorriso's padding included.
pub fn sectors_needed(bytes: u64) -> u64 {
    let sectors = bytes.div_ceil(SECTOR) + PAD_SECTORS;
    sectors.div_ceil(ROUND_SECTORS) * ROUND_SECTORS
}

/// The xorriso binary on PATH.
pub fn xorriso() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    // Bounded by the entries of PATH.
    std::env::split_paths(&path)
        .map(|d| d.join("xorriso"))
        .find(|c| c.is_file())
        .ok_or(BurnError::NoXorriso)
}

/// What xorriso says about a drive and its medium.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediumInfo {
    /// `vendor product revision`.
    pub drive: Option<String>,
    /// `Media current:`.
    pub medium: Option<String>,
    /// `Media status :`.
    pub status: Option<String>,
    /// `Media space :`, in sectors.
    pub space: Option<u64>,
}

impl MediumInfo {
    /// Reads the lines of `xorriso -toc -tell_media_space`.
    pub fn parse(text: &str) -> MediumInfo {
        let mut info = MediumInfo::default();
        // Bounded by the lines of the report.
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "Drive type" => info.drive = parse_drive_type(value),
                "Media current" => info.medium = Some(value.to_string()),
                "Media status" => info.status = Some(value.to_string()),
                "Media space" => {
                    info.space = value
                        .strip_suffix('s')
                        .and_then(|n| n.trim().parse::<u64>().ok())
                }
                _ => {}
            }
        }
        info
    }

    fn present(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| !s.contains("is not present"))
    }

    fn blank(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| s.contains("is blank"))
    }
}

/// `vendor 'X' product 'Y' revision 'Z'` as `X Y Z`.
fn parse_drive_type(value: &str) -> Option<String> {
    let parts: Vec<&str> = value.split('\'').collect();
    // vendor ' X ' product ' Y ' revision ' Z '
    let words: Vec<&str> = parts
        .iter()
        .skip(1)
        .step_by(2)
        .map(|w| w.trim())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        let v = value.trim();
        (!v.is_empty()).then(|| v.to_string())
    } else {
        Some(words.join(" "))
    }
}

/// The last lines of a program's output, joined for an error message.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let from = lines.len().saturating_sub(TAIL_LINES);
    let t = lines[from..].join(" | ");
    if t.is_empty() {
        "xorriso said nothing".into()
    } else {
        t
    }
}

/// A command that dies with us, in a process group of its own (so a
/// terminal's Ctrl-C reaches only us, and we decide), stdin closed.
fn guarded(program: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null()).process_group(0);
    // SAFETY: prctl and getppid are async-signal-safe, and the closure
    // touches no memory of the parent.
    unsafe {
        let parent = libc::getpid();
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl took effect.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the parent process is gone"));
            }
            Ok(())
        });
    }
    cmd
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Catches Ctrl-C, SIGTERM and SIGHUP from now on: the burn or read-back
/// stops at its next look (within a tenth of a second while xorriso runs,
/// a chunk while reading back); a second request ends us at once, and
/// xorriso with us. (Not `crate::interrupt`, whose message speaks of
/// restored files.)
pub fn install_interrupt() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(crate::exit::INTERRUPTED);
        }
        crate::say!(
            "dbackup-burn: interrupted: stopping xorriso; nothing will be recorded (again to stop at once)"
        );
    });
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// The image to burn, as checked at the start.
struct Image {
    path: PathBuf,
    file: File,
    bytes: u64,
    files: u64,
}

fn not_ready(s: String) -> BurnError {
    BurnError::NotReady(s)
}

/// Finds the disc's verified image and opens it.
fn image(wd: &Workdir, disc: &DiscName) -> Result<Image> {
    let cat = &wd.catalog;
    let path = wd.layout.isos().join(disc.image_name());
    let label = disc.label();
    let (recorded, files) = match disc {
        DiscName::Data(n) => {
            let row = cat.discs()?.into_iter().find(|d| d.id == *n);
            match row {
                None => return Err(not_ready(format!("{label} does not exist in this set"))),
                Some(d) if d.completed.is_none() => {
                    return Err(not_ready(format!(
                        "{label} is still open: close it with `dbackup-stage close`, then build its image with dbackup-mkiso"
                    )))
                }
                Some(_) => {}
            }
            let Some(img) = cat.images()?.into_iter().find(|i| i.disc == *n) else {
                return Err(not_ready(format!(
                    "{label} has no verified image: run dbackup-mkiso first"
                )));
            };
            (Some(img.size), cat.disc_usage(*n)?.files)
        }
        DiscName::Parity(g, j) => {
            let built = cat
                .parity_groups()?
                .iter()
                .any(|grp| grp.id == *g && grp.built.contains(j));
            if !built {
                return Err(not_ready(format!(
                    "{label} is not built: run dbackup-mkiso first (it builds a group's parity discs once the group is full, or `dbackup-stage close --parity` ends it now)"
                )));
            }
            (None, 0)
        }
    };
    let file = File::open(&path).map_err(|e| {
        not_ready(format!(
            "{label}'s image {} cannot be opened ({e}): a copy is burned from it; put it back (e.g. read from a good copy of the disc and checked with dbackup-verify -d), or rebuild a data disc's with dbackup-lost --rebuild",
            path.display()
        ))
    })?;
    let bytes = file
        .metadata()
        .map_err(|e| crate::error::Error::io(&path, e))?
        .len();
    if let Some(size) = recorded {
        if size != bytes {
            return Err(not_ready(format!(
                "{label}'s image {} is {bytes} bytes, but {size} were verified: it changed since, so it is not burned; check it with dbackup-verify -d",
                path.display()
            )));
        }
    }
    if bytes == 0 {
        return Err(not_ready(format!(
            "{label}'s image {} is empty",
            path.display()
        )));
    }
    Ok(Image {
        path,
        file,
        bytes,
        files,
    })
}

/// A `stdio:` file inside the workdir is refused: it is no copy (it goes
/// with the workdir), and under `isos/` it would pass for an image.
fn inside_workdir(wd: &Workdir, device: &str) -> Result<()> {
    let Some(file) = device.strip_prefix("stdio:") else {
        return Ok(());
    };
    let path = Path::new(file);
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(parent) = parent.canonicalize() else {
        // A folder that does not exist: xorriso says so.
        return Ok(());
    };
    if parent.starts_with(&wd.layout.root) {
        return Err(not_ready(format!(
            "{device} is inside the workdir {}: a copy there is no copy (it is lost with the workdir, and in isos/ it would pass for an image); write it elsewhere",
            wd.layout.root.display()
        )));
    }
    Ok(())
}

/// Reads the image through the verifier: every file against its MD5 in
/// the image's own manifest (a parity image, its MD5SUMS).
fn check_image(path: &Path, progress: &Progress) -> Result<()> {
    let opts = crate::verify::VerifyOptions {
        discs: vec![path.to_path_buf()],
        ..Default::default()
    };
    let mut first = None;
    let report = crate::verify::verify(&opts, progress, &mut |_, p| {
        first.get_or_insert_with(|| format!("{}: {}: {}", p.path, p.problem.describe(), p.detail));
    })
    .map_err(|e| BurnError::BadImage {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    if report.clean() && !report.discs.is_empty() {
        return Ok(());
    }
    Err(BurnError::BadImage {
        path: path.to_path_buf(),
        why: first.unwrap_or_else(|| "it could not be read as a disc".into()),
    })
}

/// Asks the drive about its medium.
fn medium(xorriso: &Path, device: &str) -> Result<MediumInfo> {
    let out = guarded(xorriso)
        .args(["-outdev", device, "-toc", "-tell_media_space"])
        .output()
        .map_err(BurnError::Spawn)?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let info = MediumInfo::parse(&text);
    if info.status.is_none() {
        return Err(if out.status.success() {
            BurnError::Unreadable {
                device: device.into(),
                what: "the medium's status (Media status)",
                tail: tail(&text),
            }
        } else {
            BurnError::Drive {
                device: device.into(),
                tail: tail(&text),
            }
        });
    }
    if !info.present() {
        return Err(BurnError::NoMedium {
            device: device.into(),
        });
    }
    if !info.blank() {
        return Err(BurnError::NotBlank {
            device: device.into(),
            status: info
                .status
                .clone()
                .unwrap_or_else(|| "status unknown".into()),
        });
    }
    if info.space.is_none() {
        return Err(BurnError::Unreadable {
            device: device.into(),
            what: "its free space (Media space)",
            tail: tail(&text),
        });
    }
    Ok(info)
}

/// Runs the burn, feeding its progress to `progress`; xorriso's output
/// for an error message.
fn run_burn(args: &[String], progress: &Progress) -> Result<()> {
    let (reader, writer) = std::io::pipe().map_err(BurnError::Spawn)?;
    let mut cmd = guarded(Path::new(&args[0]));
    cmd.args(&args[1..])
        .stdout(writer.try_clone().map_err(BurnError::Spawn)?)
        .stderr(writer);
    let mut child = cmd.spawn().map_err(BurnError::Spawn)?;
    // The command holds our copies of the pipe's writing end: without
    // them the reader sees the end when xorriso exits.
    drop(cmd);
    let bar = progress.clone();
    let collector = std::thread::spawn(move || collect(reader, &bar));
    // A test holds the burn here (a sleep) to kill us while xorriso runs.
    fail::fail_point!("burn::write");
    // Bounded by xorriso's life: it ends, or we kill it on an interrupt.
    // No time limit: a slow BD-R burn takes hours.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(BurnError::Spawn(e));
            }
        }
        if interrupted() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BurnError::Interrupted);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = collector.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => format!("xorriso exit {c}"),
        (None, Some(s)) => format!("xorriso killed by signal {s}"),
        _ => "xorriso failed".into(),
    };
    Err(BurnError::Failed {
        code,
        tail: tail(&text),
    })
}

/// Reads xorriso's output to its end: progress lines (`xorriso : UPDATE :
/// 7 of 48 MB written`) go to the bar, the last lines are kept.
fn collect(mut reader: std::io::PipeReader, progress: &Progress) -> String {
    let mut kept: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    let keep = |line: &mut Vec<u8>, kept: &mut std::collections::VecDeque<String>| {
        let text = String::from_utf8_lossy(line).trim().to_string();
        line.clear();
        if text.is_empty() {
            return;
        }
        if let Some(update) = text.strip_prefix("xorriso : UPDATE :") {
            progress.message(format!("burning: {}", update.trim()));
        }
        kept.push_back(text);
        // Bounded: the oldest goes once the tail is full.
        if kept.len() > TAIL_LINES * 4 {
            kept.pop_front();
        }
    };
    // Bounded by the pipe: it ends when xorriso (and every copy of the
    // writing end) is gone.
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                for &b in &buf[..n] {
                    if b == b'\n' || b == b'\r' {
                        keep(&mut line, &mut kept);
                    } else if line.len() < 4096 {
                        line.push(b);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    keep(&mut line, &mut kept);
    kept.into_iter().collect::<Vec<_>>().join("\n")
}

/// Reads the medium back from byte 0 for the image's length and compares
/// every byte.
fn read_back(image: &mut Image, device: &str, progress: &Progress) -> Result<()> {
    let path = read_back_path(device);
    let len = image.bytes;
    let mut medium = File::open(&path).map_err(|source| BurnError::ReadBack {
        path: path.clone(),
        at: 0,
        source,
    })?;
    // Pages of a device node cached before the burn (the blank medium's)
    // must not stand in for what is on it now. (A stdio file's pages
    // were just written and stay: reading them is reading the copy.)
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a hint on a descriptor we own; its failure changes nothing.
        unsafe { libc::posix_fadvise(medium.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }
    image
        .file
        .seek(SeekFrom::Start(0))
        .map_err(|e| crate::error::Error::io(&image.path, e))?;
    let mut want = vec![0u8; CHUNK];
    let mut got = vec![0u8; CHUNK];
    let mut at = 0u64;
    progress.message("reading back");
    // Bounded by the image's length: each pass takes one chunk of it, or
    // ends the read-back with an error.
    while at < len {
        if interrupted() {
            return Err(BurnError::Interrupted);
        }
        let n = (len - at).min(CHUNK as u64) as usize;
        image
            .file
            .read_exact(&mut want[..n])
            .map_err(|e| crate::error::Error::io(&image.path, e))?;
        let read =
            fill(&mut medium, &mut got[..n]).map_err(|(done, source)| BurnError::ReadBack {
                path: path.clone(),
                at: at + done as u64,
                source,
            })?;
        #[cfg(feature = "failpoints")]
        flip(&mut got[..read], at);
        if let Some(i) = want[..read]
            .iter()
            .zip(&got[..read])
            .position(|(a, b)| a != b)
        {
            return Err(BurnError::Mismatch { at: at + i as u64 });
        }
        if read < n {
            return Err(BurnError::Short {
                path,
                at: at + read as u64,
                len,
            });
        }
        at += n as u64;
        progress.add_bytes(n as u64);
    }
    Ok(())
}

/// A test's fault: `burn::read_back=return(N)` flips byte N of what was
/// read back.
#[cfg(feature = "failpoints")]
fn flip(chunk: &mut [u8], at: u64) {
    if let Some(n) = fail::eval("burn::read_back", |arg| {
        arg.and_then(|a| a.parse::<u64>().ok()).unwrap_or(0)
    }) {
        if let Some(i) = n.checked_sub(at).filter(|i| *i < chunk.len() as u64) {
            chunk[i as usize] ^= 0x01;
        }
    }
}

/// Reads into `buf` until it is full or the file ends: the bytes read, or
/// how many were read before the error.
fn fill(f: &mut File, buf: &mut [u8]) -> std::result::Result<usize, (usize, std::io::Error)> {
    let mut done = 0;
    // Bounded by the buffer: each pass reads at least a byte, or stops.
    while done < buf.len() {
        match f.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err((done, e)),
        }
    }
    Ok(done)
}

/// Burns the disc's image onto the medium in the drive, reads it back and
/// records the copy with its check (see the module header).
pub fn burn(opts: &BurnOptions, progress: &Progress) -> Result<BurnReport> {
    let mut wd = Workdir::open_read(&opts.workdir)?;
    let mut image = image(&wd, &opts.disc)?;
    inside_workdir(&wd, &opts.device)?;
    let xorriso = xorriso()?;
    let command = command(&xorriso, &opts.device, opts.speed.as_deref(), &image.path);
    let mut report = BurnReport {
        disc: opts.disc.clone(),
        label: opts.disc.label(),
        copy: None,
        device: opts.device.clone(),
        image: image.path.clone(),
        bytes: image.bytes,
        files: image.files,
        drive: None,
        medium: None,
        location: opts.location.clone(),
        speed: opts.speed.clone(),
        command,
        dry_run: opts.dry_run,
        matched: false,
        made: None,
        check: None,
    };
    if opts.dry_run {
        return Ok(report);
    }
    progress.message(format!("asking {} about its medium", opts.device));
    let info = medium(&xorriso, &opts.device)?;
    let need = sectors_needed(image.bytes);
    let have = info.space.unwrap_or(0);
    if need > have {
        return Err(BurnError::TooSmall {
            device: opts.device.clone(),
            need,
            have,
        });
    }
    report.drive = info.drive.clone();
    report.medium = info.medium.clone();
    // The image was read back when it was made; days or years may have
    // passed in `isos/`. A copy is compared with the image, so a rotten
    // image would give a rotten copy that passes its own read-back: it is
    // checked against its MD5s first (one read, before the medium is spent).
    progress.message(format!("checking {}'s image", opts.disc.label()));
    check_image(&image.path, progress)?;
    if interrupted() {
        return Err(BurnError::Interrupted);
    }
    progress.message(format!("burning {}", opts.disc.label()));
    run_burn(&report.command, progress)?;
    let started = copies::now();
    read_back(&mut image, &opts.device, progress)?;
    report.matched = true;
    let made = copies::now();
    let cat = &mut wd.catalog;
    // The copy and its first check, the read-back, in one transaction.
    let (copy, check) = cat.add_copy_checked(
        &opts.disc,
        &NewCopy {
            made,
            how: "burned",
            drive: report.drive.clone(),
            medium: report.medium.clone(),
            location: opts.location.clone(),
        },
        Some(&CheckRow {
            id: 0,
            disc: opts.disc.clone(),
            copy: None,
            started,
            checked: made,
            complete: true,
            result: CheckResult {
                files_ok: image.files,
                ..CheckResult::default()
            },
            names: Vec::new(),
            next_file: image.files,
            how: "burn".into(),
            source: Some(opts.device.clone()),
        }),
    )?;
    report.copy = Some(copy);
    report.made = Some(made);
    report.check = check;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_of_a_stdio_drive_is_read() {
        let text = "Drive current: -outdev 'stdio:/tmp/x.iso'\n\
            Drive access : exclusive:unrestricted\n\
            Drive type   : vendor 'YOYODYNE' product 'WARP DRIVE' revision 'FX01'\n\
            Media current: stdio file, overwriteable\n\
            Media status : is blank\n\
            Media blocks : 0 readable , 128 writable , 128 overall\n\
            Media space  : 96s\n";
        let info = MediumInfo::parse(text);
        assert_eq!(info.drive.as_deref(), Some("YOYODYNE WARP DRIVE FX01"));
        assert_eq!(info.medium.as_deref(), Some("stdio file, overwriteable"));
        assert_eq!(info.space, Some(96));
        assert!(info.present() && info.blank());
        let written =
            MediumInfo::parse("Media current: DVD+R\nMedia status : is written , is closed\n");
        assert!(written.present() && !written.blank());
        let none =
            MediumInfo::parse("Media current: is not present\nMedia status : is not present\n");
        assert!(!none.present());
    }

    #[test]
    fn the_room_needed_counts_the_padding() {
        // 300000 bytes: 147 sectors, 150 of padding, up to 320 (as xorriso
        // reports "Image size 320s").
        assert_eq!(sectors_needed(300_000), 320);
        assert_eq!(sectors_needed(2048), 160);
        assert_eq!(sectors_needed(170 * 2048), 320);
    }

    #[test]
    fn speeds_and_words() {
        for s in ["4", "8x", "4d", "2B", "5540k", "max", "1.5m"] {
            assert!(parse_speed(s).is_ok(), "{s}");
        }
        for s in ["", "fast", "4 d", "-1", "8xx", "1;rm"] {
            assert!(parse_speed(s).is_err(), "{s}");
        }
        assert_eq!(shell_word("dev=stdio:/tmp/a.iso"), "dev=stdio:/tmp/a.iso");
        assert_eq!(shell_word("/a b/it's"), "'/a b/it'\\''s'");
        assert_eq!(read_back_path("stdio:/tmp/a"), PathBuf::from("/tmp/a"));
        assert_eq!(read_back_path("/dev/sr0"), PathBuf::from("/dev/sr0"));
    }
}
