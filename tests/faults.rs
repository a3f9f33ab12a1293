//! The fault suite: every fault point of the product (`dbackup::fault::POINTS`)
//! with every kind it takes (ENOSPC, EIO, process death), injected through
//! the real binaries. After each fault the state is checked as the fault
//! left it, the next plain run repairs, and the invariants are proven against
//! the files themselves:
//!
//! - every `copied=1` row has its file, staged or in a verified image, with
//!   its MD5; no reservation, partial file or orphan is left;
//! - every image recorded as verified holds every file of its disc with its
//!   MD5 (read by bsdtar) and passes `dbackup-verify`;
//! - no restored file with a wrong MD5 is ever left under its final name,
//!   and the next restore completes the tree.
//!
//! Needs `--features failpoints`; without it the points are not compiled in.
#![cfg(feature = "failpoints")]

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;
use dbackup::fault::{Kind, Point, POINTS};

/// The phases the points belong to, by the prefix of their names.
const PHASES: &[&str] = &[
    "stage", "split", "close", "mkiso", "parity", "restore", "verify",
];

fn points(phase: &str) -> Vec<&'static Point> {
    POINTS
        .iter()
        .filter(|p| p.name.split("::").next() == Some(phase))
        .collect()
}

/// The fault for one run: the first time `point` is reached it fails as
/// `kind`; later visits pass.
fn spec(point: &Point, kind: Kind) -> String {
    format!("{}=1*return({})", point.name, kind.name())
}

/// The fault for one run at the `visit`-th time `point` is reached (1 or
/// 2); other visits pass.
fn spec_at(point: &Point, kind: Kind, visit: u32) -> String {
    if visit == 1 {
        spec(point, kind)
    } else {
        format!("{}=1*off->1*return({})", point.name, kind.name())
    }
}

/// What a faulted run must end with: killed, or the exit code of the
/// shared contract for that kind of failure.
fn assert_failed_as(out: &Output, point: &Point, kind: Kind, what: &str) {
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    match kind {
        Kind::Kill => assert_eq!(out.status.signal(), Some(9), "{what}: {stderr}"),
        Kind::NoSpace => {
            assert_eq!(out.status.code(), Some(3), "{what}: {stderr}");
            assert!(
                stderr.contains("No space left on device"),
                "{what}: {stderr}"
            );
        }
        Kind::Io => {
            // A source or disc that cannot be read is a bad file: reported,
            // counted, the run goes on (exit 1). Anything else is an error.
            let bad_input = matches!(point.name, "stage::read" | "verify::read");
            let want = if bad_input { 1 } else { 2 };
            assert_eq!(out.status.code(), Some(want), "{what}: {stderr}");
            assert!(stderr.contains("Input/output error"), "{what}: {stderr}");
        }
    }
}

/// The pairs a phase runs, for the report.
fn pairs(phase: &str) -> Vec<(&'static Point, Kind)> {
    points(phase)
        .into_iter()
        .flat_map(|p| p.kinds.iter().map(move |&k| (p, k)))
        .collect()
}

fn verify_images(workdir: &Path, what: &str) {
    let isos = workdir.join("isos");
    let conn = rusqlite::Connection::open(workdir.join("manifest.db")).unwrap();
    for disc in verified_discs(&conn) {
        let iso = isos.join(format!("disc-{disc}.iso"));
        let out = Command::new(bin("dbackup-verify"))
            .args(["--no-progress", "-d"])
            .arg(&iso)
            .env_remove("FAILPOINTS")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{what}: image of disc {disc} is recorded verified but fails verification: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

/// A tree with small files for batches and one (`big.bin`, the first on
/// the disc) large enough to take several writes and reads.
fn fill_with(env: &TestEnv, small: usize, big_len: u32) {
    for i in 0..small {
        env.write(format!("d{}/f{i:02}", i % 3), &vec![i as u8; 20_000 + i]);
    }
    let big: Vec<u8> = (0..big_len).map(|i| (i % 251) as u8).collect();
    env.write("big.bin", &big);
}

fn fill(env: &TestEnv, small: usize) {
    fill_with(env, small, 1 << 20);
}

#[test]
fn staging_faults_are_repaired_by_the_next_run() {
    for (point, kind) in pairs("stage") {
        let what = spec(point, kind);
        let env = TestEnv::new();
        fill(&env, 40);
        // Small discs: the run also closes discs and builds their images.
        env.init(&["--disc-size", "1807200"]);
        let out = env
            .stage()
            .env("FAILPOINTS", &what)
            .arg("monitor")
            .output()
            .unwrap();
        assert_failed_as(&out, point, kind, &what);
        check_copied_rows(&env.workdir);
        verify_images(&env.workdir, &what);
        let out = env.run(&["monitor"]);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
        assert_eq!(env.check_invariants(), tree_md5s(&env.watched), "{what}");
        verify_images(&env.workdir, &what);
    }
}

/// A file of several discs' worth is staged in parts through the same copy
/// points: a fault at the first or the second part, or at recording one,
/// is repaired by the next run, which finishes the split file.
#[test]
fn split_staging_faults_are_repaired_by_the_next_run() {
    let copy_points = [
        "stage::read",
        "stage::write",
        "stage::sync",
        "stage::rename",
    ];
    let mut cases: Vec<(&Point, Kind)> = pairs("split");
    cases.extend(
        pairs("stage")
            .into_iter()
            .filter(|(p, _)| copy_points.contains(&p.name)),
    );
    for (point, kind) in cases {
        for visit in [1, 2] {
            let what = spec_at(point, kind, visit);
            let env = TestEnv::new();
            // Four parts on 1.5 MB discs; nothing else to copy, so the
            // first visits of the copy points are the split file's.
            let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
            env.write("video.mp4", &big);
            env.init(&["--disc-size", "1807200"]);
            let out = env
                .stage()
                .env("FAILPOINTS", &what)
                .arg("monitor")
                .output()
                .unwrap();
            assert_failed_as(&out, point, kind, &what);
            check_copied_rows(&env.workdir);
            verify_images(&env.workdir, &what);
            let out = env.run(&["monitor"]);
            assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
            assert_eq!(env.check_invariants(), tree_md5s(&env.watched), "{what}");
            verify_images(&env.workdir, &what);
        }
    }
}

/// The image of a disc a split file filled is built on another thread
/// while the next part is copied: a fault at the first or the second visit
/// of each image point (while the copy goes on beside it, or once the main
/// thread installs the image) never frees unverified copies, and the next
/// run finishes both the images and the file.
#[test]
fn image_faults_beside_a_split_copy_are_repaired_by_the_next_run() {
    for (point, kind) in pairs("mkiso") {
        for visit in [1, 2] {
            let what = spec_at(point, kind, visit);
            let env = TestEnv::new();
            let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 241) as u8).collect();
            env.write("video.mp4", &big);
            env.init(&["--disc-size", "1807200"]);
            let out = env
                .stage()
                .env("FAILPOINTS", &what)
                .arg("monitor")
                .output()
                .unwrap();
            assert_failed_as(&out, point, kind, &what);
            check_copied_rows(&env.workdir);
            verify_images(&env.workdir, &what);
            // Every closed disc without a verified image keeps its copies.
            let verified = verified_discs(&env.catalog());
            let closed = closed_discs(&env.catalog());
            assert!(!closed.is_empty(), "{what}: no disc was closed");
            for &disc in &closed {
                if !verified.contains(&disc) {
                    assert!(
                        env.workdir
                            .join(format!("staging/disc-{disc:04}/manifest.db"))
                            .is_file(),
                        "{what}: disc {disc} lost its staged copies before its image was verified"
                    );
                }
            }
            let out = env.run(&["monitor"]);
            assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
            assert_eq!(env.check_invariants(), tree_md5s(&env.watched), "{what}");
            verify_images(&env.workdir, &what);
            let verified = verified_discs(&env.catalog());
            assert!(verified.len() >= 3, "{what}: verified {verified:?}");
        }
    }
}

#[test]
fn closing_faults_are_repaired_by_the_next_run() {
    for (point, kind) in pairs("close") {
        let what = spec(point, kind);
        let env = TestEnv::new();
        fill(&env, 10);
        env.init(&[]);
        let out = env.run(&["monitor", "--no-iso"]);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
        let out = env
            .stage()
            .env("FAILPOINTS", &what)
            .args(["close", "--no-iso"])
            .output()
            .unwrap();
        assert_failed_as(&out, point, kind, &what);
        check_copied_rows(&env.workdir);
        // Any run that opens the workdir for writing finishes the close.
        let out = env.run(&["monitor", "--no-iso"]);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
        assert_eq!(env.check_invariants(), tree_md5s(&env.watched), "{what}");
        let closed: i64 = env
            .catalog()
            .query_row(
                "SELECT count(*) FROM discs WHERE completed IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(closed, 1, "{what}: the disc is closed once");
        let out = env.mkiso(&[]);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
        assert_eq!(env.check_invariants(), tree_md5s(&env.watched), "{what}");
        verify_images(&env.workdir, &what);
    }
}

#[test]
fn image_faults_never_free_unverified_copies_and_are_completed_next_run() {
    for (point, kind) in pairs("mkiso") {
        let what = spec(point, kind);
        let env = TestEnv::new();
        fill(&env, 10);
        env.init(&[]);
        env.run(&["monitor", "--no-iso"]);
        let out = env.run(&["close", "--no-iso"]);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
        let out = env
            .tool("dbackup-mkiso")
            .env("FAILPOINTS", &what)
            .output()
            .unwrap();
        assert_failed_as(&out, point, kind, &what);
        check_copied_rows(&env.workdir);
        verify_images(&env.workdir, &what);
        let verified = verified_discs(&env.catalog());
        if verified.is_empty() {
            assert!(
                env.workdir.join("staging/disc-0001/manifest.db").is_file()
                    && staged_path(&env.workdir, 1, 1).is_file(),
                "{what}: staged copies kept until the image is verified"
            );
        }
        let out = env.mkiso(&[]);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
        assert!(!env.workdir.join("staging/disc-0001").exists(), "{what}");
        assert!(
            !env.workdir.join("isos/disc-1.iso.partial").exists(),
            "{what}"
        );
        assert_eq!(verified_discs(&env.catalog()), vec![1], "{what}");
        assert_eq!(env.check_invariants(), tree_md5s(&env.watched), "{what}");
        verify_images(&env.workdir, &what);
    }
}

/// A fault while a group's parity image is built leaves the data images
/// verified and their group waiting; the next run builds the parity image
/// from scratch, and stock `par2` accepts it.
#[test]
fn parity_faults_leave_the_group_waiting_and_are_completed_next_run() {
    for (point, kind) in pairs("parity") {
        let what = spec(point, kind);
        let env = TestEnv::new();
        for i in 0..3 {
            env.write(format!("f{i}"), &vec![i as u8 + 1; 600_000]);
        }
        env.init(&["--disc-size", "1307200", "--parity", "2+1"]);
        let out = env
            .stage()
            .env("FAILPOINTS", &what)
            .arg("monitor")
            .output()
            .unwrap();
        assert_failed_as(&out, point, kind, &what);
        check_copied_rows(&env.workdir);
        verify_images(&env.workdir, &what);
        let isos = env.workdir.join("isos");
        let recorded: i64 = env
            .catalog()
            .query_row("SELECT count(*) FROM parity_discs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(recorded, 0, "{what}: no parity disc recorded");
        if kind != Kind::Kill && point.name != "parity::record" {
            assert!(!isos.join("parity-1-1.iso").exists(), "{what}");
        }
        let out = env.run(&["monitor"]);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
        assert_eq!(env.check_invariants(), tree_md5s(&env.watched), "{what}");
        verify_images(&env.workdir, &what);
        let leftovers: Vec<String> = std::fs::read_dir(&isos)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.') || n.ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
        let recorded: i64 = env
            .catalog()
            .query_row("SELECT count(*) FROM parity_discs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(recorded, 1, "{what}: the parity disc is recorded once");
        // A stranger's check: the parity disc's own files, with the data
        // images, pass `par2 verify`.
        let dir = env.dir.path().join("check");
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("bsdtar")
            .arg("-xf")
            .arg(isos.join("parity-1-1.iso"))
            .arg("-C")
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "{what}");
        for d in [1, 2] {
            std::fs::copy(
                isos.join(format!("disc-{d}.iso")),
                dir.join(format!("disc-{d}.iso")),
            )
            .unwrap();
        }
        let out = Command::new("par2")
            .args(["verify", "parity-1.par2"])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{what}: {}", text(&out.stdout));
    }
}

/// Every file under `root` that is not one of restore's temp files, by
/// relative name, with its MD5.
fn final_names(root: &Path) -> BTreeMap<Vec<u8>, String> {
    tree_md5s(root)
        .into_iter()
        .filter(|(n, _)| !String::from_utf8_lossy(n).contains(".dbackup-tmp-"))
        .collect()
}

fn restore(iso: &Path, target: &Path, faults: Option<&str>) -> Output {
    let mut c = Command::new(bin("dbackup-restore"));
    c.arg("--no-progress")
        .arg("-d")
        .arg(iso)
        .arg("--to")
        .arg(target)
        .env_remove("FAILPOINTS")
        .stdin(Stdio::null());
    if let Some(f) = faults {
        c.env("FAILPOINTS", f);
    }
    c.output().unwrap()
}

#[test]
fn restore_faults_never_leave_a_wrong_file_under_its_name() {
    let env = TestEnv::new();
    // Large enough that restore hashes it on a second thread.
    fill_with(&env, 10, 5 << 20);
    env.init(&[]);
    env.run(&["monitor", "--no-iso"]);
    env.run(&["close", "--no-iso"]);
    let out = env.mkiso(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let iso = env.workdir.join("isos/disc-1.iso");
    let tree = tree_md5s(&env.watched);
    for (point, kind) in pairs("restore") {
        let what = spec(point, kind);
        let target = env.dir.path().join(format!(
            "restored-{}-{}",
            point.name.replace("::", "-"),
            kind.name()
        ));
        let out = restore(&iso, &target, Some(&what));
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        match kind {
            Kind::Kill => assert_eq!(out.status.signal(), Some(9), "{what}: {stderr}"),
            // The target is full: an error that stops the run.
            Kind::NoSpace => {
                assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
                assert!(stderr.contains("No space left on device"), "{what}");
            }
            // One file could not be read or written: reported, the rest
            // restored, the exit code says so.
            Kind::Io => {
                assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
                assert!(stderr.contains("Input/output error"), "{what}: {stderr}");
            }
        }
        let after = final_names(&target);
        assert!(after.len() < tree.len(), "{what}: the fault cost a file");
        for (name, md5) in &after {
            assert_eq!(
                tree.get(name),
                Some(md5),
                "{what}: {} under its final name with a wrong MD5",
                String::from_utf8_lossy(name)
            );
        }
        let out = restore(&iso, &target, None);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
        assert_eq!(
            tree_md5s(&target),
            tree,
            "{what}: the re-run completes the tree"
        );
    }
}

#[test]
fn verify_read_errors_are_reported_per_file() {
    let env = TestEnv::new();
    fill(&env, 5);
    env.init(&[]);
    env.run(&["monitor", "--no-iso"]);
    env.run(&["close", "--no-iso"]);
    assert_eq!(env.mkiso(&[]).status.code(), Some(0));
    let iso = env.workdir.join("isos/disc-1.iso");
    for (point, kind) in pairs("verify") {
        let what = spec(point, kind);
        let out = Command::new(bin("dbackup-verify"))
            .args(["--no-progress", "-d"])
            .arg(&iso)
            .env("FAILPOINTS", &what)
            .output()
            .unwrap();
        if point.name == "verify::sector" {
            // One failed read of one sector is read again: the disc is
            // clean (tests/damaged_medium.rs fails sectors for good).
            assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
            assert!(!text(&out.stderr).contains("unreadable"), "{what}");
            continue;
        }
        assert_failed_as(&out, point, kind, &what);
        assert!(text(&out.stdout).contains("unreadable"), "{what}");
    }
    verify_images(&env.workdir, "after");
}

/// Every point belongs to a phase this suite runs, and the size of the
/// matrix is reported.
#[test]
fn the_suite_covers_every_fault_point_and_kind() {
    let mut covered = 0;
    for p in POINTS {
        let phase = p.name.split("::").next().unwrap();
        assert!(PHASES.contains(&phase), "{} is in no phase", p.name);
        covered += p.kinds.len();
    }
    let total: usize = PHASES.iter().map(|ph| pairs(ph).len()).sum();
    assert_eq!(covered, total);
    let mut kinds: Vec<&str> = POINTS
        .iter()
        .flat_map(|p| p.kinds.iter().map(|k| k.name()))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    eprintln!(
        "fault suite: {} points x {} kinds ({}) = {} injected faults",
        POINTS.len(),
        kinds.len(),
        kinds.join(", "),
        total
    );
}
