//! dbackup-restore putting split files back together, through the real
//! binaries: files larger than a disc staged on small discs (sparse, so
//! the test's disk suffices), restored from images and from folders
//! extracted with bsdtar, with discs missing, lost or damaged, at one
//! drive, and killed midway again and again.

mod common;

use std::ffi::OsString;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

use common::*;

fn restore_cmd() -> Command {
    let mut c = Command::new(bin("dbackup-restore"));
    c.arg("--no-progress").env_remove("FAILPOINTS");
    c
}

fn restore(args: &[OsString]) -> Output {
    restore_cmd()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run dbackup-restore")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

fn args(discs: &[&Path], target: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    for d in discs {
        a.push("-d".into());
        a.push(d.as_os_str().into());
    }
    a.push("--to".into());
    a.push(target.as_os_str().into());
    a.extend(extra.iter().map(OsString::from));
    a
}

/// A sparse file of `size` bytes with a few written blocks (at its start,
/// its end and every `stride` bytes, each marked with its offset), so its
/// parts differ and its MD5 depends on every one of them.
fn sparse(p: &Path, size: u64, stride: u64, mtime: (u64, u32)) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(p).unwrap();
    f.set_len(size).unwrap();
    let mut at = 0;
    while at < size {
        let mark = format!("block at {at} of {}", p.display());
        let n = (mark.len() as u64).min(size - at);
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&mark.as_bytes()[..n as usize]).unwrap();
        at += stride;
    }
    let tail = b"the end";
    f.seek(SeekFrom::Start(size.saturating_sub(tail.len() as u64)))
        .unwrap();
    f.write_all(&tail[..tail.len().min(size as usize)]).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::new(mtime.0, mtime.1))
        .unwrap();
}

/// A disc of 1 MB: about 800 kB of room for a part.
const DISC: u64 = 1_307_200;

/// A set on discs of 1 MB: a few small files and `big`, a file of
/// `parts` discs' worth, staged with `dbackup-stage monitor` (split over
/// its discs) and every disc closed with its image.
struct SplitSet {
    env: TestEnv,
    big: PathBuf,
}

fn split_set(parts: u64) -> SplitSet {
    split_set_of(parts, false)
}

/// Like [`split_set`]; with `older`, the big file was first backed up
/// small (a whole file on disc 1), then grew.
fn split_set_of(parts: u64, older: bool) -> SplitSet {
    let env = TestEnv::new();
    env.write("small/a.txt", b"a small file before the big one");
    env.write("small/b.txt", b"another small file");
    // The first part fills what the small files left, the last holds
    // the tail.
    let size = parts * 800_000 - 400_000;
    let big = env.watched.join("big/video.bin");
    env.init(&["--disc-size", &DISC.to_string(), "--name", "Big"]);
    if older {
        sparse(&big, 5000, 1000, (1_500_000_000, 0));
        let out = env.run(&["monitor"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    sparse(&big, size, 200_000, (1_600_000_000, 123_456_000));
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    env.write("small/after.txt", b"staged after the big file");
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = env.run(&["close"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = SplitSet { env, big };
    assert_eq!(
        s.parts().len() as u64,
        parts,
        "the big file is split in {parts} parts"
    );
    s
}

impl SplitSet {
    /// The big file's version id.
    fn id(&self) -> i64 {
        self.env
            .catalog()
            .query_row(
                "SELECT max(id) FROM files WHERE filename='/big/video.bin' AND copied=1",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// (part, disc) of the big file's parts.
    fn parts(&self) -> Vec<(i64, i64)> {
        let conn = self.env.catalog();
        let mut stmt = conn
            .prepare("SELECT part, disc_id FROM parts WHERE file_id=?1 AND copied=1 ORDER BY part")
            .unwrap();
        stmt.query_map([self.id()], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    fn isos(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.env.workdir.join("isos"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "iso"))
            .collect();
        v.sort_by_key(|p| disc_of(p));
        v
    }

    /// Every disc extracted with bsdtar into `disc-N` (made writable).
    fn folders(&self) -> Vec<PathBuf> {
        self.isos()
            .iter()
            .map(|iso| {
                let f = self.env.dir.path().join(format!("disc-{}", disc_of(iso)));
                extract(iso, &f);
                f
            })
            .collect()
    }

    fn target(&self) -> PathBuf {
        self.env.dir.path().join("restored")
    }
}

fn disc_of(p: &Path) -> i64 {
    let stem = p.file_name().unwrap().to_str().unwrap();
    stem.trim_start_matches("disc-")
        .trim_end_matches(".iso")
        .parse()
        .unwrap()
}

fn extract(iso: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    bsdtar_extract(iso, dest);
    for e in walkdir::WalkDir::new(dest) {
        let e = e.unwrap();
        let mode = if e.file_type().is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn part_path(root: &Path, id: i64, part: i64) -> PathBuf {
    root.join("files")
        .join((id / 256).to_string())
        .join(format!("{id}.{part}"))
}

fn mtime_of(p: &Path) -> f64 {
    let m = std::fs::symlink_metadata(p).unwrap();
    m.mtime() as f64 + m.mtime_nsec() as f64 / 1e9
}

/// `dst` holds exactly the files of `src`, byte for byte, with their mtimes.
fn assert_same_tree(src: &Path, dst: &Path) {
    let a = tree_md5s(src);
    let b = tree_md5s(dst);
    assert_eq!(a, b, "same files with the same content");
    for rel in a.keys() {
        let (p, q) = (src.join(os(&rel[1..])), dst.join(os(&rel[1..])));
        let (mp, mq) = (mtime_of(&p), mtime_of(&q));
        assert!(
            (mp - mq).abs() < 1e-6,
            "mtime of {}: {mp} restored as {mq}",
            q.display()
        );
    }
}

/// Nothing of the run is left at the top of the target.
fn no_temp_left(root: &Path) {
    if !root.is_dir() {
        return;
    }
    for e in std::fs::read_dir(root).unwrap() {
        let n = e.unwrap().file_name();
        assert!(
            !n.to_string_lossy().starts_with(".dbackup-tmp-"),
            "temp folder left: {}",
            n.to_string_lossy()
        );
    }
}

fn restored_from(discs: &[PathBuf], s: &SplitSet) {
    let target = s.target();
    let refs: Vec<&Path> = discs.iter().map(|p| p.as_path()).collect();
    let out = restore(&args(&refs, &target, &["--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = json(&out);
    let n = s.parts().len() as u64;
    assert_eq!(report["parts_read"], n, "{report}");
    assert_eq!(report["restored"]["files"], 4, "{report}");
    assert_same_tree(&s.env.watched, &target);
    no_temp_left(&target);
    // Put together from its parts, the big file keeps its holes.
    let big = std::fs::metadata(target.join("big/video.bin")).unwrap();
    assert!(
        big.blocks() * 512 < big.len() / 4,
        "{} bytes allocated for {} bytes, mostly zeros",
        big.blocks() * 512,
        big.len()
    );
    // Again: everything is there already, nothing is read.
    let out = restore(&args(&refs, &target, &["--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(report["skipped_existing"]["files"], 4, "{report}");
    assert_eq!(report["parts_read"], 0, "{report}");
    no_temp_left(&target);
}

#[test]
fn three_parts_from_images_and_from_extracted_folders() {
    let s = split_set(3);
    restored_from(&s.isos(), &s);
    std::fs::remove_dir_all(s.target()).unwrap();
    restored_from(&s.folders(), &s);
}

#[test]
fn six_parts_from_images_and_from_extracted_folders() {
    let s = split_set(6);
    restored_from(&s.isos(), &s);
    std::fs::remove_dir_all(s.target()).unwrap();
    restored_from(&s.folders(), &s);
}

#[test]
fn twenty_parts_from_a_folder_of_images_and_from_extracted_folders() {
    let s = split_set(20);
    restored_from(&[s.env.workdir.join("isos")], &s);
    std::fs::remove_dir_all(s.target()).unwrap();
    restored_from(&s.folders(), &s);
}

#[test]
fn the_plan_counts_a_split_file_once_with_its_discs() {
    let s = split_set(3);
    let isos = s.isos();
    let refs: Vec<&Path> = isos.iter().map(|p| p.as_path()).collect();
    let target = s.target();
    let out = restore(&args(&refs, &target, &["--dry-run", "--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = json(&out);
    let plan = &report["plan"];
    assert_eq!(plan["files"], 4, "{plan}");
    let size = std::fs::metadata(&s.big).unwrap().len();
    let split = plan["split"].as_array().unwrap();
    assert_eq!(split.len(), 1, "{plan}");
    let discs: Vec<i64> = s.parts().iter().map(|p| p.1).collect();
    assert_eq!(split[0]["name"], "/big/video.bin");
    assert_eq!(split[0]["bytes"], size);
    assert_eq!(split[0]["parts"], 3);
    assert_eq!(
        split[0]["discs"].as_array().unwrap().len(),
        discs.len(),
        "{plan}"
    );
    // Each disc counts its part's bytes: the plan's bytes are the sum of
    // the discs' bytes, the big file once.
    let sum: u64 = plan["discs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(plan["bytes"].as_u64().unwrap(), sum, "{plan}");
    let parts: u64 = plan["discs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["parts"].as_u64().unwrap())
        .sum();
    assert_eq!(parts, 3, "{plan}");
    assert!(!target.exists(), "a dry run writes nothing");
    // The text plan names it once with its discs.
    let out = restore(&args(&refs, &target, &["--dry-run"]));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.matches("/big/video.bin").count(), 1, "{stdout}");
    assert!(stdout.contains("3 parts on discs"), "{stdout}");
}

#[test]
fn a_missing_disc_leaves_nothing_of_the_split_file() {
    let s = split_set(3);
    let isos = s.isos();
    let middle = s.parts()[1].1;
    let given: Vec<&Path> = isos
        .iter()
        .filter(|p| disc_of(p) != middle)
        .map(|p| p.as_path())
        .collect();
    let target = s.target();
    let out = restore(&args(&given, &target, &["--json"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = json(&out);
    let failed = report["failed"].as_array().unwrap();
    let big: Vec<_> = failed
        .iter()
        .filter(|f| f["name"] == "/big/video.bin")
        .collect();
    assert_eq!(big.len(), 1, "{report}");
    assert_eq!(big[0]["kind"], "missing_disc");
    assert_eq!(big[0]["needs"], serde_json::json!([middle]), "{report}");
    assert!(
        big[0]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("disc {middle} is not among the discs given")),
        "{report}"
    );
    assert_eq!(report["parts_read"], 0, "no part of it is read");
    assert!(!target.join("big/video.bin").exists());
    no_temp_left(&target);
    // The text run says it on stderr with the disc it needs.
    std::fs::remove_dir_all(&target).unwrap();
    let out = restore(&args(&given, &target, &[]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("/big/video.bin") && stderr.contains(&format!("needs disc {middle}")),
        "{stderr}"
    );
    assert!(!target.join("big/video.bin").exists());
    no_temp_left(&target);
}

#[test]
fn a_lost_disc_costs_the_split_file() {
    let s = split_set(3);
    let lost_disc = s.parts()[1].1;
    // Marked lost, then a disc closed after, whose catalogue says so.
    let out = s
        .env
        .tool("dbackup-lost")
        .arg(lost_disc.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{}",
        text(&out.stderr)
    );
    s.env.write("small/later.txt", b"a file after the loss");
    let out = s.env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = s.env.run(&["close"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let isos = s.isos();
    let given: Vec<&Path> = isos
        .iter()
        .filter(|p| disc_of(p) != lost_disc)
        .map(|p| p.as_path())
        .collect();
    let target = s.target();
    let out = restore(&args(&given, &target, &["--json"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = json(&out);
    let big: Vec<_> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == "/big/video.bin")
        .cloned()
        .collect();
    assert_eq!(big.len(), 1, "{report}");
    assert_eq!(big[0]["kind"], "lost_disc", "{report}");
    assert_eq!(big[0]["needs"], serde_json::json!([lost_disc]));
    let lost = report["plan"]["lost"].as_array().unwrap();
    assert_eq!(lost.len(), 1, "{report}");
    assert_eq!(lost[0]["disc"], lost_disc);
    assert!(
        lost[0]["costs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "/big/video.bin"),
        "{report}"
    );
    assert!(!target.join("big/video.bin").exists());
    assert!(target.join("small/later.txt").exists());
    no_temp_left(&target);
}

#[test]
fn a_damaged_part_is_named_and_nothing_of_the_file_is_left() {
    let s = split_set_of(3, true);
    let folders = s.folders();
    let id = s.id();
    let (part, disc) = s.parts()[1];
    let folder = folders.iter().find(|f| disc_of(f) == disc).unwrap();
    let p = part_path(folder, id, part);
    let mut data = std::fs::read(&p).unwrap();
    data[1000] ^= 0x20;
    std::fs::write(&p, &data).unwrap();
    let target = s.target();
    let refs: Vec<&Path> = folders.iter().map(|p| p.as_path()).collect();
    let out = restore(&args(&refs, &target, &["--json"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = json(&out);
    let big: Vec<_> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == "/big/video.bin")
        .cloned()
        .collect();
    assert_eq!(big.len(), 1, "{report}");
    assert_eq!(big[0]["kind"], "damaged", "{report}");
    assert_eq!(big[0]["disc"], disc);
    let reason = big[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("part {part} of 3")) && reason.contains(&format!("disc {disc}")),
        "{reason}"
    );
    // The older version (whole, on disc 1) is offered.
    assert!(
        reason.contains("an older version from")
            && reason.contains("on disc 1 (restore it with --as-of)"),
        "{reason}"
    );
    assert!(!target.join("big/video.bin").exists());
    assert!(target.join("small/a.txt").exists());
    no_temp_left(&target);
    // A part that cannot be read at all: the same.
    std::fs::remove_file(&p).unwrap();
    let out = restore(&args(&refs, &target, &["--json"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = json(&out);
    let big = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "/big/video.bin")
        .cloned()
        .unwrap();
    assert_eq!(big["kind"], "unreadable", "{report}");
    assert!(!target.join("big/video.bin").exists());
    no_temp_left(&target);
}

// --- Killed midway ----------------------------------------------------------

/// The private folders at the top of the target.
fn private_folders(target: &Path) -> Vec<PathBuf> {
    if !target.is_dir() {
        return Vec::new();
    }
    std::fs::read_dir(target)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".dbackup-tmp-")
        })
        .collect()
}

/// What the target's private folders hold, for a failure's message.
fn private_state(target: &Path) -> String {
    private_folders(target)
        .iter()
        .map(|f| {
            let mut names: Vec<String> = std::fs::read_dir(f)
                .map(|d| {
                    d.map(|e| {
                        let e = e.unwrap();
                        let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                        let name = e.file_name().to_string_lossy().into_owned();
                        let parts = std::fs::read_to_string(e.path())
                            .ok()
                            .filter(|_| name.ends_with(".journal"))
                            .map(|j| j.lines().filter(|l| l.starts_with("part ")).count());
                        format!(
                            "{name} ({size} bytes{})",
                            parts.map(|n| format!(", {n} parts")).unwrap_or_default()
                        )
                    })
                    .collect()
                })
                .unwrap_or_default();
            names.sort();
            format!(
                "{}: [{}]",
                f.file_name().unwrap().to_string_lossy(),
                names.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The parts a journal kept in the target's private folders says are done.
fn kept_parts(target: &Path, id: i64) -> usize {
    private_folders(target)
        .iter()
        .filter_map(|f| std::fs::read_to_string(f.join(format!("split-{id}.journal"))).ok())
        .map(|j| j.lines().filter(|l| l.starts_with("part ")).count())
        .max()
        .unwrap_or(0)
}

/// Killed with SIGKILL at ever later moments while a split file is put
/// together: never a wrong file under its name, and each run takes over
/// the parts the one before checked. Once parts are kept, the discs that
/// held them are taken away, and the runs still finish the file: they are
/// not read again.
#[cfg(feature = "failpoints")]
#[test]
fn killed_again_and_again_it_finishes_without_reading_checked_parts_again() {
    let s = split_set(6);
    let mut folders = s.folders();
    let id = s.id();
    let parts = s.parts();
    let target = s.target();
    let final_name = target.join("big/video.bin");
    let want = md5_file(&s.big);
    let mut delay = Duration::from_millis(150);
    let mut removed: Vec<i64> = Vec::new();
    let mut kills = 0;
    // Bounded: the delay grows each round; a run given long enough ends.
    for _round in 0..40 {
        let refs: Vec<&Path> = folders.iter().map(|p| p.as_path()).collect();
        let before = private_state(&target);
        let mut child = restore_cmd()
            .args(args(&refs, &target, &["--json"]))
            .env("FAILPOINTS", "restore::part=sleep(120)")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let mut ended = None;
        while start.elapsed() < delay {
            if let Some(st) = child.try_wait().unwrap() {
                ended = Some(st);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if ended.is_none() {
            let _ = child.kill();
            let _ = child.wait();
            kills += 1;
            // Never a partial or wrong file under its name.
            if final_name.exists() {
                assert_eq!(md5_file(&final_name), want, "after a kill");
                // Put together and in place, its parts are no longer kept:
                // a run reads them again or finds the file there, so it
                // needs their discs again.
                folders = s.folders();
                delay += Duration::from_millis(120);
                continue;
            }
            let kept = kept_parts(&target, id);
            // The discs holding only a part that is kept are taken away
            // (the first and last hold other files too).
            for &(part, disc) in &parts[..kept] {
                let only_part = part > 1 && (part as usize) < parts.len();
                if only_part && !removed.contains(&disc) {
                    folders.retain(|f| disc_of(f) != disc);
                    removed.push(disc);
                }
            }
            delay += Duration::from_millis(120);
            continue;
        }
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\nremoved discs {removed:?}, private folders before the run: {before}",
            text(&out.stderr)
        );
        let report = json(&out);
        let read = report["parts_read"].as_u64().unwrap();
        let resumed = report["parts_resumed"].as_u64().unwrap();
        assert!(
            read + resumed == parts.len() as u64 || final_name.exists() && read == 0,
            "{report}"
        );
        break;
    }
    assert!(kills >= 2, "the runs were killed midway ({kills})");
    assert!(
        !removed.is_empty(),
        "some discs were taken away once their parts were kept"
    );
    assert_same_tree(&s.env.watched, &target);
    no_temp_left(&target);
}

/// Starts a restore of every disc of `s` from `folders`, slowed at each
/// part, and interrupts it (SIGINT) once a part is kept; returns its
/// output.
#[cfg(feature = "failpoints")]
fn interrupted(s: &SplitSet, folders: &[PathBuf]) -> Output {
    let target = s.target();
    let refs: Vec<&Path> = folders.iter().map(|p| p.as_path()).collect();
    let child = restore_cmd()
        .args(args(&refs, &target, &[]))
        .env("FAILPOINTS", "restore::part=sleep(300)")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while kept_parts(&target, s.id()) == 0 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: kill(2) on our own child with a constant signal.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    child.wait_with_output().unwrap()
}

/// Ctrl-C while a split file is put together: exit 130, nothing under
/// its name, the checked parts kept; the same command goes on from them.
#[cfg(feature = "failpoints")]
#[test]
fn ctrl_c_keeps_the_checked_parts_and_the_same_command_goes_on() {
    let s = split_set(3);
    let folders = s.folders();
    let target = s.target();
    let out = interrupted(&s, &folders);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(!target.join("big/video.bin").exists());
    let kept = kept_parts(&target, s.id());
    assert!(kept >= 1, "{stderr}");
    assert!(
        stderr.contains("kept in the target's private folder"),
        "{stderr}"
    );
    let refs: Vec<&Path> = folders.iter().map(|p| p.as_path()).collect();
    // The plan knows: the kept parts' discs hold nothing more to read.
    let out = restore(&args(&refs, &target, &["--dry-run", "--json"]));
    let plan = json(&out)["plan"].clone();
    assert_eq!(plan["split"][0]["parts_done"], kept as u64, "{plan}");
    let out = restore(&args(&refs, &target, &["--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(report["parts_resumed"], kept as u64, "{report}");
    assert_eq!(report["parts_read"], 3 - kept as u64, "{report}");
    assert_same_tree(&s.env.watched, &target);
    no_temp_left(&target);
}

/// Killed while it takes over an earlier run's kept parts, after it moved
/// their data into its own private folder and before their journal: the
/// next run finds the two in their different folders and goes on from
/// them, without the discs that held them.
#[cfg(feature = "failpoints")]
#[test]
fn killed_between_taking_over_data_and_journal_it_still_goes_on() {
    let s = split_set(6);
    let mut folders = s.folders();
    let target = s.target();
    let id = s.id();
    let out = interrupted(&s, &folders);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let kept = kept_parts(&target, id);
    assert!(kept >= 1, "{}", text(&out.stderr));
    let data = format!("split-{id}.data");
    let journal = format!("split-{id}.journal");
    let refs: Vec<&Path> = folders.iter().map(|p| p.as_path()).collect();
    let mut child = restore_cmd()
        .args(args(&refs, &target, &[]))
        .env("FAILPOINTS", "restore::adopt=sleep(20000)")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Bounded by 30 s: the data is moved at once, then the run sleeps.
    let start = Instant::now();
    let apart = || {
        let f = private_folders(&target);
        let has = |name: &str| f.iter().filter(|d| d.join(name).exists()).count();
        f.iter()
            .any(|d| d.join(&data).exists() && !d.join(&journal).exists())
            && has(&journal) == 1
    };
    while !apart() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(apart(), "the kept data and journal in two folders");
    // The discs that held only kept parts are taken away.
    for &(part, disc) in &s.parts()[..kept] {
        if part > 1 && (part as usize) < s.parts().len() {
            folders.retain(|f| disc_of(f) != disc);
        }
    }
    let refs: Vec<&Path> = folders.iter().map(|p| p.as_path()).collect();
    let out = restore(&args(&refs, &target, &["--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        json(&out)["parts_resumed"],
        kept as u64,
        "{}",
        text(&out.stdout)
    );
    assert_same_tree(&s.env.watched, &target);
    no_temp_left(&target);
}

/// Kept parts that changed in the target before the next run (a bad disk,
/// a hand) are found out by reading them again locally: the file is not
/// restored and the kept parts are dropped; the run after reads them
/// from their discs.
#[cfg(feature = "failpoints")]
#[test]
fn kept_parts_that_changed_are_found_out_and_read_again_next_time() {
    let s = split_set(3);
    let folders = s.folders();
    let target = s.target();
    let out = interrupted(&s, &folders);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let data = private_folders(&target)
        .iter()
        .map(|f| f.join(format!("split-{}.data", s.id())))
        .find(|p| p.exists())
        .expect("the kept data");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&data, &bytes).unwrap();
    let refs: Vec<&Path> = folders.iter().map(|p| p.as_path()).collect();
    let out = restore(&args(&refs, &target, &["--json"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = json(&out);
    let big = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "/big/video.bin")
        .cloned()
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        big["reason"]
            .as_str()
            .unwrap()
            .contains("no longer matches its MD5"),
        "{big}"
    );
    assert!(!target.join("big/video.bin").exists());
    no_temp_left(&target);
    let out = restore(&args(&refs, &target, &["--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(json(&out)["parts_read"], 3);
    assert_same_tree(&s.env.watched, &target);
    no_temp_left(&target);
}

/// Every restore fault point (a disc read, a write in the target, a
/// flush, a rename) fails, or kills the run, at its first, second, ...
/// use while a split file is put together: never a wrong file under its
/// name, an exit code that says so, and the next run finishes the set
/// byte for byte.
#[cfg(feature = "failpoints")]
#[test]
fn a_fault_at_any_step_of_a_split_restore_is_repaired_by_the_next_run() {
    let s = split_set(3);
    let folders = s.folders();
    let refs: Vec<&Path> = folders.iter().map(|p| p.as_path()).collect();
    let final_name = s.target().join("big/video.bin");
    let want = md5_file(&s.big);
    let mut faulted = 0;
    for (point, kinds) in [
        ("restore::read", &["eio", "kill"][..]),
        ("restore::write", &["enospc", "eio", "kill"][..]),
        ("restore::sync", &["eio", "kill"][..]),
        ("restore::rename", &["enospc", "kill"][..]),
    ] {
        for kind in kinds {
            for skip in [0, 1, 2, 5] {
                let target = s.target();
                let _ = std::fs::remove_dir_all(&target);
                let fault = format!("{point}={skip}*off->1*return({kind})");
                let out = restore_cmd()
                    .args(args(&refs, &target, &["--json"]))
                    .env("FAILPOINTS", &fault)
                    .stdin(Stdio::null())
                    .output()
                    .unwrap();
                let code = out.status.code();
                if code == Some(0) {
                    // The point was not reached that often.
                    continue;
                }
                faulted += 1;
                let expected: &[Option<i32>] = match *kind {
                    "kill" => &[None],
                    _ => &[Some(1), Some(2)],
                };
                assert!(
                    expected.contains(&code),
                    "{fault}: {code:?}\n{}",
                    text(&out.stderr)
                );
                if final_name.exists() {
                    assert_eq!(md5_file(&final_name), want, "{fault}");
                }
                let out = restore(&args(&refs, &target, &["--json"]));
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{fault}, then: {}",
                    text(&out.stderr)
                );
                assert_same_tree(&s.env.watched, &target);
                no_temp_left(&target);
            }
        }
    }
    assert!(faulted >= 20, "faults injected: {faulted}");
}

// --- One drive ----------------------------------------------------------------

/// A pseudo-terminal: (master, slave). The child gets the slave as stdin,
/// so it sees a terminal; the test answers by writing to the master.
fn pty() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain libc calls on descriptors we own; ptsname_r writes a
    // NUL-terminated name into the buffer we pass.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut buf = [0 as libc::c_char; 256];
        assert_eq!(libc::ptsname_r(m, buf.as_mut_ptr(), buf.len()), 0);
        let s = libc::open(
            buf.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        assert!(s >= 0, "open the pty's slave");
        (std::fs::File::from_raw_fd(m), std::fs::File::from_raw_fd(s))
    }
}

/// Points the drive's mount point at `disc` (a folder), as if that disc
/// had been inserted and mounted.
fn insert(drive: &Path, disc: &Path) {
    let tmp = drive.with_extension("swap");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(disc, &tmp).unwrap();
    std::fs::rename(&tmp, drive).unwrap();
}

/// Waits until `needle` has appeared `n` times in what `stderr` collects.
fn expect(stderr: &std::sync::Mutex<String>, needle: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = stderr.lock().unwrap().matches(needle).count();
        if seen >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waited for {needle:?} ({n}x); stderr so far:\n{}",
            stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// At one drive, each disc is asked for once, in ascending order, and a
/// split file's parts are taken as its discs come.
#[test]
fn one_drive_asks_for_each_disc_once_and_takes_the_parts_as_they_come() {
    use std::io::Read;
    let s = split_set(3);
    let folders = s.folders();
    let drive = s.env.dir.path().join("drive");
    insert(&drive, folders.last().unwrap());
    let target = s.target();
    let (mut master, slave) = pty();
    let mut child = restore_cmd()
        .args(args(&[&drive], &target, &["--drive"]))
        .arg(&drive)
        .stdin(Stdio::from(slave))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut err = child.stderr.take().unwrap();
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    for folder in &folders {
        let n = disc_of(folder);
        expect(&stderr, &format!("Insert disc {n} of set \"Big\""), 1);
        insert(&drive, folder);
        master.write_all(b"\n").unwrap();
        expect(&stderr, &format!("Done with disc {n}"), 1);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "{}", stderr.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(master);
    let stderr = stderr.lock().unwrap().clone();
    assert_eq!(status.code(), Some(0), "{stderr}");
    for folder in &folders {
        let n = disc_of(folder);
        assert_eq!(
            stderr.matches(&format!("Insert disc {n} of set")).count(),
            1,
            "{stderr}"
        );
        assert_eq!(
            stderr.matches(&format!("reading disc {n}:")).count(),
            1,
            "{stderr}"
        );
    }
    assert!(
        stderr.contains("1 part of a split file"),
        "the discs' lines count the parts: {stderr}"
    );
    assert_same_tree(&s.env.watched, &target);
    no_temp_left(&target);
}
