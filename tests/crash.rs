//! Crash safety of staging: kill -9 at random instants, injected failures at
//! each step of the protocol (with `--features failpoints`), a file changing
//! during its copy, and a filesystem that fills up.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// A small deterministic generator, so a failing seed can be replayed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn kill_9_at_random_instants_then_a_repairing_run() {
    let seed = std::env::var("DBACKUP_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("seed {seed} (DBACKUP_TEST_SEED={seed} replays it)");
    let mut rng = Lcg(seed);
    let env = TestEnv::new();
    for i in 0..4000u64 {
        let size = match i % 100 {
            0 => 1 << 20,
            1..=9 => 64 << 10,
            _ => (rng.next() % 4096) as usize,
        };
        let data: Vec<u8> = (0..size).map(|j| (j as u64 ^ i) as u8).collect();
        env.write(format!("d{:02}/f{i:05}", i % 50), &data);
    }
    // Small discs, so kills also land while discs close.
    env.init(&["--disc-size", "4MiB"]);
    let mut kills = 0;
    for round in 0..25 {
        let mut child = env
            .stage()
            .arg("monitor")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.next() % 250));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        check_copied_rows(&env.workdir);
        // Churn between runs: change a file, add one.
        if round % 5 == 4 {
            env.write(
                format!("d00/f{:05}", round * 50),
                format!("changed {round}").as_bytes(),
            );
            env.write(format!("new/n{round}"), b"new");
        }
    }
    assert!(
        kills > 5,
        "only {kills} runs were killed; the tree is too small"
    );
    let out = env.run(&["monitor"]);
    assert!(
        matches!(out.status.code(), Some(0)),
        "repairing run: {}",
        text(&out.stderr)
    );
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
    let discs: i64 = env
        .catalog()
        .query_row("SELECT count(*) FROM discs", [], |r| r.get(0))
        .unwrap();
    eprintln!("{kills} runs killed; {discs} discs");
    assert!(discs >= 3, "discs closed during the kill loop: {discs}");
    let out = env.run(&["monitor"]);
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "not settled"
    );
}

#[test]
fn kill_9_while_making_images_then_the_next_run_completes() {
    let env = TestEnv::new();
    for i in 0..200u32 {
        let data: Vec<u8> = (0..(1u32 << 20)).map(|j| (j ^ i) as u8).collect();
        env.write(format!("v{i:03}"), &data);
    }
    env.init(&["--disc-size", "48MiB"]);
    let out = env.run(&["monitor", "--no-iso"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut rng = Lcg(0x5eed);
    let mut kills = 0;
    for _ in 0..15 {
        let mut child = env
            .tool("dbackup-mkiso")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.next() % 150));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        check_copied_rows(&env.workdir);
    }
    assert!(kills > 2, "only {kills} kills landed");
    let out = env.mkiso(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
    let waiting: i64 = env
        .catalog()
        .query_row(
            "SELECT count(*) FROM discs WHERE completed IS NOT NULL
             AND id NOT IN (SELECT disc_id FROM images)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(waiting, 0);
}

struct Tmpfs(std::path::PathBuf);
impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_filesystem_stops_cleanly_with_its_own_exit_code() {
    let env = TestEnv::new();
    for i in 0..12 {
        env.write(format!("f{i:02}"), &vec![i as u8; 1 << 20]);
    }
    let Some(_mount) = Tmpfs::mount(&env.workdir, "7M") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    env.init(&[]);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not enough free space"), "{stderr}");
    let latest = env.check_invariants();
    assert!(
        !latest.is_empty() && latest.len() < 12,
        "{} staged",
        latest.len()
    );
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(3), "still full, still clean");
    env.check_invariants();
}

#[cfg(feature = "failpoints")]
mod injected {
    use super::*;

    fn with_failpoint(env: &TestEnv, fp: &str, args: &[&str]) -> std::process::Output {
        env.stage()
            .env("FAILPOINTS", fp)
            .args(args)
            .output()
            .unwrap()
    }

    #[test]
    fn a_file_changed_during_its_copy_is_discarded_and_taken_next_run() {
        let env = TestEnv::new();
        let big = env.write("video.mkv", &vec![1u8; 3 << 20]);
        // Sorted after the video, so it is copied first and the pause hits it.
        env.write("z-other", b"steady");
        env.init(&[]);
        let child = env
            .stage()
            .env("FAILPOINTS", "stage::mid_copy=sleep(1500)")
            .arg("monitor")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let mut f = std::fs::OpenOptions::new().append(true).open(&big).unwrap();
        std::io::Write::write_all(&mut f, b"appended while copying").unwrap();
        drop(f);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("video.mkv: skipped: changed while being copied"),
            "{}",
            text(&out.stderr)
        );
        let latest = env.check_invariants();
        assert!(!latest.contains_key(b"/video.mkv".as_slice()));
        let out = env.run(&["monitor"]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
    }

    #[test]
    fn enospc_mid_copy_ends_like_a_full_disk() {
        let env = TestEnv::new();
        for i in 0..10 {
            env.write(format!("f{i}"), &vec![i as u8; 100_000]);
        }
        env.init(&[]);
        let out = with_failpoint(&env, "stage::write=4*off->return(enospc)", &["monitor"]);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("No space left on device"));
        let latest = env.check_invariants();
        assert!(latest.len() < 10);
        let out = env.run(&["monitor"]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
    }

    #[test]
    fn a_real_enospc_mid_copy_on_a_filling_filesystem() {
        let env = TestEnv::new();
        env.write("a-big", &vec![3u8; 3 << 20]);
        env.write("b-small", b"small");
        let Some(_mount) = Tmpfs::mount(&env.workdir, "8M") else {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
            return;
        };
        env.init(&[]);
        let child = env
            .stage()
            .env("FAILPOINTS", "stage::mid_copy=sleep(1500)")
            .arg("monitor")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(400));
        // Something else fills the filesystem under our feet.
        let filler = env.workdir.join("filler");
        let _ = std::fs::write(&filler, vec![0u8; 8 << 20]);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("No space left on device"),
            "the copy itself hit ENOSPC: {}",
            text(&out.stderr)
        );
        std::fs::remove_file(&filler).unwrap();
        env.check_invariants();
        let out = env.run(&["monitor"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
    }

    #[test]
    fn eio_reading_one_file_skips_it_and_stages_the_rest() {
        let env = TestEnv::new();
        for i in 0..5 {
            env.write(format!("f{i}"), format!("{i}").as_bytes());
        }
        env.init(&[]);
        let out = with_failpoint(&env, "stage::read=1*return(eio)", &["monitor"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains("skipped: cannot read: Input/output error"));
        assert_eq!(env.check_invariants().len(), 4);
    }

    #[test]
    fn a_monitor_holding_the_lock_makes_the_second_exit_75() {
        let env = TestEnv::new();
        env.write("a", &vec![0u8; 2 << 20]);
        env.init(&[]);
        let first = env
            .stage()
            .env("FAILPOINTS", "stage::mid_copy=sleep(1500)")
            .arg("monitor")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(400));
        let second = env.run(&["monitor"]);
        assert_eq!(second.status.code(), Some(75));
        assert_eq!(text(&second.stderr).lines().count(), 1);
        let first = first.wait_with_output().unwrap();
        assert_eq!(first.status.code(), Some(0));
        assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
    }
}
