//! dbackup-burn through the real binaries: sets made by dbackup-stage and
//! dbackup-mkiso, burned with the real xorriso onto `stdio:` files (a
//! drive that writes into a file), the copies read with `dbackup-stage
//! copies --json`. No real drive is used.
//!
//! The kill and interrupt tests put a slow burner first on PATH: a script
//! named xorriso that answers the drive's questions with the real xorriso
//! and, asked to burn, writes its pid and sleeps, so the burn is surely
//! going on when the signal comes.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn burn_cmd(env: &TestEnv) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dbackup-burn"));
    c.arg("-w")
        .arg(&env.workdir)
        .arg("--no-progress")
        .env_remove("DBACKUP_WORKDIR")
        .env_remove("FAILPOINTS")
        .env_remove("DBACKUP_NOW")
        .stdin(Stdio::null());
    c
}

fn burn(env: &TestEnv, args: &[&str]) -> Output {
    burn_cmd(env).args(args).output().expect("run dbackup-burn")
}

fn stdio(p: &Path) -> String {
    format!("stdio:{}", p.display())
}

fn image(env: &TestEnv, name: &str) -> PathBuf {
    env.workdir.join("isos").join(format!("{name}.iso"))
}

fn copies(env: &TestEnv) -> Value {
    let out = ok(env.run(&["copies", "--json"]), "copies --json");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The copies of `disc` (`1`, `parity-1-1`).
fn copies_of(env: &TestEnv, disc: &str) -> Vec<Value> {
    copies(env)
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["disc"] == disc)
        .map(|d| d["copies"].as_array().unwrap().clone())
        .unwrap_or_default()
}

/// Copies and checks recorded in the whole catalogue.
fn recorded(env: &TestEnv) -> (i64, i64) {
    let conn = env.catalog();
    let has: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('copies', 'checks')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    if has == 0 {
        return (0, 0);
    }
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    (
        count("SELECT count(*) FROM copies"),
        count("SELECT count(*) FROM checks"),
    )
}

/// Whether the burned file begins with the image, byte for byte.
fn holds_image(burned: &Path, image: &Path) -> bool {
    let b = std::fs::read(burned).unwrap();
    let i = std::fs::read(image).unwrap();
    b.len() >= i.len() && b[..i.len()] == i[..]
}

#[test]
fn a_disc_is_burned_read_back_and_recorded_twice_and_a_written_medium_is_refused() {
    let env = full_discs(2, &[]);
    let dir = env.dir.path();
    let copy1 = dir.join("copy1.iso");
    let img = image(&env, "disc-1");

    // A dry run prints the command and touches nothing.
    let out = ok(
        burn(
            &env,
            &["--disc", "1", "--device", &stdio(&copy1), "--dry-run"],
        ),
        "dry run",
    );
    let line = text(&out.stdout);
    assert!(
        line.contains("-as cdrecord -v")
            && line.contains(&format!("dev={}", stdio(&copy1)))
            && line.contains("-dao")
            && line.contains(&img.display().to_string()),
        "{line}"
    );
    assert!(!copy1.exists());
    let out = ok(
        burn(
            &env,
            &[
                "--disc",
                "1",
                "--device",
                &stdio(&copy1),
                "--dry-run",
                "--json",
                "--speed",
                "4D",
            ],
        ),
        "dry run --json",
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    assert!(v["copy"].is_null() && v["check"].is_null(), "{v}");
    assert!(
        v["shell_command"]
            .as_str()
            .unwrap()
            .ends_with(&format!("speed=4d {}", img.display())),
        "{v}"
    );
    assert!(!copy1.exists());
    assert_eq!(recorded(&env), (0, 0));

    let out = ok(
        burn(
            &env,
            &[
                "--disc",
                "1",
                "--device",
                &stdio(&copy1),
                "--location",
                "home shelf",
            ],
        ),
        "burn copy 1",
    );
    let line = text(&out.stdout);
    assert!(
        line.starts_with(&format!("disc 1 copy 1 burned to {}", stdio(&copy1)))
            && line.contains("YOYODYNE WARP DRIVE FX01")
            && line.contains("read back and matched"),
        "{line}"
    );
    // Off a terminal, no progress: stderr stays empty.
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    assert!(holds_image(&copy1, &img));
    let list = copies_of(&env, "1");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["copy"], 1);
    assert_eq!(list[0]["how"], "burned");
    assert_eq!(list[0]["location"], "home shelf");
    assert_eq!(list[0]["drive"], "YOYODYNE WARP DRIVE FX01");
    assert!(list[0]["last_good_check"].is_f64(), "{list:?}");
    let (how, source, files_ok, complete): (String, String, i64, i64) = env
        .catalog()
        .query_row(
            "SELECT how, source, files_ok, complete FROM checks WHERE disc='1' AND copy=1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (how.as_str(), source, files_ok, complete),
        ("burn", stdio(&copy1), 1, 1)
    );

    // A second copy, elsewhere, with --json.
    let copy2 = dir.join("copy2.iso");
    let out = ok(
        burn(
            &env,
            &[
                "--disc",
                "1",
                "--device",
                &stdio(&copy2),
                "--location",
                "bank vault",
                "--json",
            ],
        ),
        "burn copy 2",
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["copy"], 2);
    assert_eq!(v["disc"], "1");
    assert_eq!(v["matched"], true);
    assert_eq!(v["bytes"], std::fs::metadata(&img).unwrap().len());
    assert_eq!(v["location"], "bank vault");
    assert!(v["check"].is_i64() && v["made"].is_f64(), "{v}");
    let list = copies_of(&env, "1");
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["location"], "bank vault");
    assert!(list[1]["last_good_check"].is_f64());
    assert!(holds_image(&copy2, &img));

    // The first copy's medium is written: refused, nothing recorded, the
    // medium untouched.
    let before = std::fs::read(&copy1).unwrap();
    let out = burn(&env, &["--disc", "2", "--device", &stdio(&copy1)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("dbackup-burn: error: ") && err.contains("not blank"),
        "{err}"
    );
    assert_eq!(std::fs::read(&copy1).unwrap(), before);
    assert_eq!(recorded(&env), (2, 2));

    // A closed stdout changes neither the work nor the exit code.
    let copy3 = dir.join("copy3.iso");
    let mut cmd = burn_cmd(&env);
    cmd.args(["--disc", "2", "--device", &stdio(&copy3)]);
    let (code, err) = with_closed_output(cmd, false);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(copies_of(&env, "2").len(), 1);
    assert!(holds_image(&copy3, &image(&env, "disc-2")));
    let mut cmd = burn_cmd(&env);
    let copy4 = dir.join("copy4.iso");
    cmd.args(["--disc", "2", "--device", &stdio(&copy4), "--json"]);
    assert_eq!(with_closed_output(cmd, true).0, Some(0));
    assert_eq!(copies_of(&env, "2").len(), 2);
    // -q: the work, and not a word.
    let copy5 = dir.join("copy5.iso");
    let out = ok(
        burn(&env, &["--disc", "2", "--device", &stdio(&copy5), "-q"]),
        "burn -q",
    );
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(copies_of(&env, "2").len(), 3);
}

#[test]
fn what_is_not_ready_to_burn_is_refused_and_nothing_recorded() {
    let env = full_discs(2, &[]);
    let dir = env.dir.path();
    let target = dir.join("x.iso");
    let dev = stdio(&target);
    // Disc 3 is open; disc 9 does not exist; the set has no parity.
    for (disc, want) in [
        ("3", "still open"),
        ("9", "does not exist"),
        ("parity-1-1", "not built"),
    ] {
        let out = burn(&env, &["--disc", disc, "--device", &dev]);
        assert_eq!(out.status.code(), Some(2), "{disc}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(want),
            "{disc}: {}",
            text(&out.stderr)
        );
    }
    // A bad disc name or speed is refused by the parser.
    for args in [
        vec!["--disc", "parity-1", "--device", &dev],
        vec!["--disc", "1", "--device", &dev, "--speed", "fast"],
    ] {
        let out = burn(&env, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // Closed without an image: not verified.
    env.write("g", &bytes_of(99, 1000));
    ok(env.run(&["monitor", "--no-iso"]), "monitor");
    ok(env.run(&["close", "--no-iso"]), "close");
    let out = burn(&env, &["--disc", "3", "--device", &dev]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no verified image: run dbackup-mkiso first"),
        "{}",
        text(&out.stderr)
    );
    // An image that changed since it was verified.
    let img = image(&env, "disc-2");
    let mut data = std::fs::read(&img).unwrap();
    data.push(0);
    std::fs::write(&img, &data).unwrap();
    let out = burn(&env, &["--disc", "2", "--device", &dev]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("were verified"),
        "{}",
        text(&out.stderr)
    );
    // xorriso missing: the dry run says so too.
    let empty = dir.join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    for extra in [&[][..], &["--dry-run"][..]] {
        let out = burn_cmd(&env)
            .args(["--disc", "1", "--device", &dev])
            .args(extra)
            .env("PATH", &empty)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        assert!(
            err.contains("xorriso") && err.contains("apt-get install xorriso"),
            "{err}"
        );
    }
    // A folder that cannot hold a medium: xorriso cannot take the drive.
    let out = burn(
        &env,
        &[
            "--disc",
            "1",
            "--device",
            &stdio(&dir.join("no/such/dir/x.iso")),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // Not a workdir: said, with the hint.
    let out = Command::new(env!("CARGO_BIN_EXE_dbackup-burn"))
        .args(["--no-progress", "--disc", "1", "--device", &dev, "-w"])
        .arg(&empty)
        .env_remove("DBACKUP_WORKDIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("is not a dbackup workdir") && err.contains("dbackup-burn: hint: "),
        "{err}"
    );
    // An image gone from isos/.
    std::fs::remove_file(image(&env, "disc-1")).unwrap();
    let out = burn(&env, &["--disc", "1", "--device", &dev]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot be opened"),
        "{}",
        text(&out.stderr)
    );
    assert!(!target.exists());
    assert_eq!(recorded(&env), (0, 0));
}

/// A tmpfs mounted for a test, unmounted when dropped (even in a panic).
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_medium_too_small_is_refused() {
    if !is_root() {
        eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs as root)");
        return;
    }
    let env = full_discs(1, &[]);
    let small = env.dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(st.success(), "mount");
    let _mount = Mount(small.clone());
    let target = small.join("x.iso");
    let out = burn(&env, &["--disc", "1", "--device", &stdio(&target)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("too small"), "{err}");
    assert!(!target.exists());
    assert_eq!(recorded(&env), (0, 0));
}

#[test]
fn a_read_back_that_differs_records_nothing_and_the_next_burn_does() {
    let env = full_discs(1, &[]);
    let dir = env.dir.path();
    let bad = dir.join("bad.iso");
    let out = burn_cmd(&env)
        .args(["--disc", "1", "--device", &stdio(&bad)])
        .env("FAILPOINTS", "burn::read_back=return(70000)")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("does not match the image at byte 70000 / sector 34")
            && err.contains("not recorded"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(recorded(&env), (0, 0));
    let good = dir.join("good.iso");
    ok(
        burn(&env, &["--disc", "1", "--device", &stdio(&good)]),
        "burn again",
    );
    assert_eq!(recorded(&env), (1, 1));
}

/// A `stdio:` file inside the workdir is no copy: refused, even where
/// the name is free (under `isos/` it would pass for an image), and the
/// image itself is never written over.
#[test]
fn a_copy_inside_the_workdir_is_refused() {
    let env = full_discs(1, &[]);
    let before = std::fs::read(image(&env, "disc-1")).unwrap();
    for target in [
        image(&env, "disc-1"),
        image(&env, "disc-9"),
        env.workdir.join("copy.iso"),
        env.workdir.join("staging/x.iso"),
    ] {
        let out = burn(&env, &["--disc", "1", "--device", &stdio(&target)]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("is inside the workdir"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(recorded(&env), (0, 0));
    }
    assert!(!image(&env, "disc-9").exists());
    assert_eq!(std::fs::read(image(&env, "disc-1")).unwrap(), before);
}

/// An image that rotted in `isos/` since it was made (same size, one byte
/// of a file's data changed) is not burned: a copy of it would pass its
/// own read-back. Nothing is written or recorded.
#[test]
fn an_image_that_rotted_since_it_was_made_is_not_burned() {
    let env = full_discs(1, &[]);
    let iso = image(&env, "disc-1");
    let mut data = std::fs::read(&iso).unwrap();
    // A stretch of f00's bytes, found in the image and changed there.
    let probe = &bytes_of(1, FULL)[300_000..300_064];
    let at = data
        .windows(probe.len())
        .position(|w| w == probe)
        .expect("the file's bytes are in the image");
    data[at] ^= 0x01;
    std::fs::write(&iso, &data).unwrap();
    let target = env.dir.path().join("copy.iso");
    let out = burn(&env, &["--disc", "1", "--device", &stdio(&target)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("no longer matches its own MD5s") && err.contains("files/0/1"),
        "{err}"
    );
    assert!(!target.exists(), "nothing written");
    assert_eq!(recorded(&env), (0, 0));
}

/// A burner that, asked to burn, runs `script` (sh, with `$out` the
/// stdio target and `$img` the image) instead; otherwise the real xorriso.
fn fake_burner(dir: &Path, name: &str, script: &str) -> String {
    let bin = dir.join(name);
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join("xorriso");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nif [ \"$1\" = -as ]; then\n  for a; do case $a in dev=stdio:*) out=${{a#dev=stdio:}};; esac; img=$a; done\n  {script}\nfi\nexec /usr/bin/xorriso \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn a_failed_burn_and_a_short_medium_record_nothing() {
    let env = full_discs(1, &[]);
    let dir = env.dir.path();
    // xorriso fails: its last lines are told, exit 2.
    let path = fake_burner(
        dir,
        "failing",
        "echo 'libburn : FATAL : SCSI error on write' >&2; echo 'xorriso : FAILURE : -as cdrecord: Job could not be performed properly.' >&2; exit 5",
    );
    let target = dir.join("failed.iso");
    let out = burn_cmd(&env)
        .args(["--disc", "1", "--device", &stdio(&target)])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("the burn failed (xorriso exit 5)")
            && err.contains("may be spoiled")
            && err.contains("SCSI error on write"),
        "{err}"
    );
    assert_eq!(recorded(&env), (0, 0));
    // xorriso says it burned, but the medium holds less than the image:
    // exit 1, at the byte where it ends.
    let path = fake_burner(dir, "short", "head -c 100000 \"$img\" > \"$out\"; exit 0");
    let target = dir.join("short.iso");
    let out = burn_cmd(&env)
        .args(["--disc", "1", "--device", &stdio(&target)])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("does not match the image at byte 100000 / sector 48")
            && err.contains("ends there"),
        "{err}"
    );
    // ... or nothing at all: it cannot be read back.
    let path = fake_burner(dir, "nothing", "exit 0");
    let out = burn_cmd(&env)
        .args(["--disc", "1", "--device", &stdio(&dir.join("none.iso"))])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("does not match the image at byte 0 / sector 0"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(recorded(&env), (0, 0));
}

/// A slow burner: a script named xorriso that asks the real one about the
/// drive, and asked to burn writes its pid to `pidfile` and sleeps.
fn slow_burner(dir: &Path, pidfile: &Path) -> PathBuf {
    let bin = dir.join("slow-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("xorriso");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = -as ]; then echo $$ > '{}'; exec sleep 60; fi\nexec /usr/bin/xorriso \"$@\"\n",
            pidfile.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn wait_for_pid(pidfile: &Path) -> i32 {
    let start = Instant::now();
    // Bounded: 20 s.
    while start.elapsed() < Duration::from_secs(20) {
        if let Some(pid) = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the burner never started");
}

/// Whether `pid` is gone or dead (a zombie nobody reaped yet).
fn dead(pid: i32) -> bool {
    let start = Instant::now();
    // Bounded: 10 s.
    while start.elapsed() < Duration::from_secs(10) {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(s) => {
                let state = s.rsplit(')').next().unwrap_or("").trim_start();
                if state.starts_with('Z') || state.starts_with('X') {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a child we started.
    unsafe { libc::kill(pid as i32, sig) };
}

#[test]
fn a_burn_killed_or_interrupted_records_nothing_and_xorriso_dies_with_it() {
    let env = full_discs(1, &[]);
    let dir = env.dir.path();
    for sig in [libc::SIGKILL, libc::SIGINT, libc::SIGTERM] {
        let pidfile = dir.join(format!("pid-{sig}"));
        let path = format!(
            "{}:{}",
            slow_burner(dir, &pidfile).display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let target = dir.join(format!("killed-{sig}.iso"));
        let child = burn_cmd(&env)
            .args(["--disc", "1", "--device", &stdio(&target)])
            .env("PATH", path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let burner = wait_for_pid(&pidfile);
        if sig == libc::SIGTERM {
            // The burn holds no lock: staging goes on meanwhile.
            env.write("new-while-burning", b"staged during a burn");
            ok(env.run(&["monitor", "--no-iso"]), "monitor during a burn");
        }
        signal(child.id(), sig);
        let out = child.wait_with_output().unwrap();
        if sig == libc::SIGKILL {
            assert_eq!(out.status.signal(), Some(9));
        } else {
            assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
            assert!(
                text(&out.stderr).contains("nothing"),
                "{}",
                text(&out.stderr)
            );
        }
        assert!(
            dead(burner),
            "signal {sig}: the burner {burner} outlived us"
        );
        assert_eq!(recorded(&env), (0, 0), "signal {sig}");
    }
    // The real xorriso, held by a fault point while it runs, and killed.
    let target = dir.join("held.iso");
    let mut child = burn_cmd(&env)
        .args(["--disc", "1", "--device", &stdio(&target)])
        .env("FAILPOINTS", "burn::write=sleep(20000)")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    signal(child.id(), libc::SIGKILL);
    assert_eq!(child.wait().unwrap().signal(), Some(9));
    assert_eq!(recorded(&env), (0, 0));
    // The next burn onto a fresh medium succeeds.
    let fresh = dir.join("fresh.iso");
    ok(
        burn(&env, &["--disc", "1", "--device", &stdio(&fresh)]),
        "burn after the kill",
    );
    assert_eq!(copies_of(&env, "1").len(), 1);
    assert!(holds_image(&fresh, &image(&env, "disc-1")));
}

#[test]
fn a_parity_disc_is_burned_and_recorded() {
    if Command::new("par2").arg("-V").output().is_err() {
        eprintln!("SKIPPED: par2 is not installed (CI installs it)");
        return;
    }
    let env = TestEnv::new();
    for i in 0..3 {
        env.write(format!("f{i:02}"), &bytes_of(i as u64 + 1, FULL));
    }
    env.init(&["--disc-size", DISC, "--parity", "2+1"]);
    ok(env.run(&["monitor"]), "monitor");
    let img = image(&env, "parity-1-1");
    assert!(img.is_file(), "parity image");
    let target = env.dir.path().join("p.iso");
    let out = ok(
        burn(
            &env,
            &[
                "--disc",
                "parity-1-1",
                "--device",
                &stdio(&target),
                "--location",
                "office",
            ],
        ),
        "burn parity",
    );
    assert!(
        text(&out.stdout).starts_with("parity disc 1-1 copy 1 burned to"),
        "{}",
        text(&out.stdout)
    );
    assert!(holds_image(&target, &img));
    let list = copies_of(&env, "parity-1-1");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["how"], "burned");
    assert_eq!(list[0]["location"], "office");
    assert!(list[0]["last_good_check"].is_f64());
    // Parity disc 1-2 does not exist in a 2+1 group.
    let out = burn(
        &env,
        &[
            "--disc",
            "parity-1-2",
            "--device",
            &stdio(&env.dir.path().join("q.iso")),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(recorded(&env), (1, 1));
}

/// A burn records its copy after the medium is spent: a write to the
/// catalogue by another run at that moment (a copy added, a check
/// recorded, a monitor) waits its turn and does not lose the record.
#[cfg(feature = "failpoints")]
#[test]
fn a_burn_is_recorded_while_another_run_writes_the_catalogue() {
    let env = full_discs(2, &[]);
    let to = env.dir.path().join("copy.iso");
    // The burn's record held open while other runs write.
    let child = burn_cmd(&env)
        .args(["--disc", "1", "--device", &stdio(&to)])
        .env("FAILPOINTS", "catalog::add_copy=sleep(1500)")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    // Bounded: three seconds of copies added to disc 2.
    while started.elapsed() < std::time::Duration::from_secs(3) {
        ok(env.run(&["copies", "add", "2"]), "copies add");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(copies_of(&env, "1").len(), 1);
}
