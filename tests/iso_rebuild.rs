//! Rebuilding images and rotten staged copies: a verified image is never
//! replaced by one that did not pass its read-back, a failed image never
//! carries the final name, and a staged copy that rotted is taken again
//! from the verified image or the origin, or recorded as damaged, so the
//! next runs are quiet again without a hand.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn iso(env: &TestEnv, n: i64) -> PathBuf {
    env.workdir.join(format!("isos/disc-{n}.iso"))
}

fn failed(env: &TestEnv, n: i64) -> PathBuf {
    env.workdir.join(format!("isos/disc-{n}.iso.failed"))
}

fn flip_byte(path: &Path, at: usize) {
    let mut data = std::fs::read(path).unwrap();
    let i = at % data.len();
    data[i] ^= 0x5a;
    std::fs::write(path, data).unwrap();
}

fn image_row(env: &TestEnv, n: i64) -> Option<(i64, f64)> {
    use rusqlite::OptionalExtension;
    env.catalog()
        .query_row(
            "SELECT size, verified FROM images WHERE disc_id=?1",
            [n],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .unwrap()
}

fn damaged_ids(env: &TestEnv) -> Vec<i64> {
    damaged_versions(&env.catalog()).into_iter().collect()
}

/// Three files on disc 1, closed with its image kept and verified.
fn one_disc(keep: bool) -> TestEnv {
    let env = TestEnv::new();
    env.write("a.txt", b"alpha alpha alpha");
    env.write("b.txt", b"bravo bravo bravo bravo");
    env.write("c/d.txt", b"charlie");
    env.init(&[]);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = env.run(&["close", "--no-iso"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let args: &[&str] = if keep { &["--keep-staged"] } else { &[] };
    let out = env.mkiso(args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(image_row(&env, 1).is_some());
    env
}

fn verify_iso(p: &Path) -> std::process::Output {
    std::process::Command::new(bin("dbackup-verify"))
        .arg("--no-progress")
        .arg("-d")
        .arg(p)
        .env_remove("FAILPOINTS")
        .output()
        .unwrap()
}

/// A disc whose staged copies were kept is built again on request without
/// --keep-staged: from its copies (they are not freed first), and then
/// they go.
#[test]
fn a_rebuild_of_a_kept_disc_without_keep_staged_uses_its_copies_then_frees_them() {
    let env = one_disc(true);
    let staged = env.workdir.join("staging/disc-0001");
    assert!(staged.join("manifest.db").is_file());
    let out = env.mkiso(&["--disc", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!staged.exists(), "freed once the new image is verified");
    let out = verify_iso(&iso(&env, 1));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Now there is nothing to build it from: refused, the image kept.
    let before = std::fs::read(iso(&env, 1)).unwrap();
    let out = env.mkiso(&["--disc", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no staged copy left"));
    assert_eq!(std::fs::read(iso(&env, 1)).unwrap(), before);
}

#[test]
fn a_rebuild_over_a_rotten_staged_copy_keeps_the_verified_image_and_repairs_the_copy() {
    let env = one_disc(true);
    let good = std::fs::read(iso(&env, 1)).unwrap();
    // The reproduction: a staged copy rots, then the disc is rebuilt, and
    // the origin no longer has that content.
    flip_byte(&staged_path(&env.workdir, 1, 2), 3);
    std::fs::write(env.watched.join("b.txt"), b"changed since").unwrap();
    let out = env.mkiso(&["--disc", "1", "--keep-staged"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("had rotted") && err.contains("disc-1.iso"),
        "{err}"
    );
    // The staged copy was taken again from the verified image: the
    // rebuilt image is the same bytes, and nothing is damaged.
    assert_eq!(std::fs::read(iso(&env, 1)).unwrap(), good);
    assert!(damaged_ids(&env).is_empty());
    assert!(!failed(&env, 1).exists());
    env.check_invariants();
    // A plain run frees the staged copies: the image holds every file.
    let out = env.mkiso(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!env.workdir.join("staging/disc-0001").exists());
    assert_eq!(verify_iso(&iso(&env, 1)).status.code(), Some(0));
}

#[test]
fn a_rebuild_whose_read_back_fails_never_replaces_the_verified_image() {
    let env = one_disc(true);
    let good = std::fs::read(iso(&env, 1)).unwrap();
    let row = image_row(&env, 1);
    // The new image fails its read-back for a reason that is not the
    // staged copies (a read error of the image itself).
    let out = env
        .tool("dbackup-mkiso")
        .args(["--disc", "1", "--keep-staged"])
        .env("FAILPOINTS", "mkiso::read_back=return(eio)")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("verified image"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(iso(&env, 1)).unwrap(), good);
    assert_eq!(
        image_row(&env, 1),
        row,
        "the row still describes those bytes"
    );
    assert!(failed(&env, 1).is_file());
    // status counts the one verified image, not the failed one.
    let st = env.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["available_isos"], 1);
    env.check_invariants();
}

#[test]
fn a_failed_first_image_is_never_named_final_and_the_origin_copy_is_taken_again() {
    let env = TestEnv::new();
    env.write("a.txt", b"alpha alpha alpha");
    env.write("b.txt", b"bravo bravo bravo bravo");
    env.init(&[]);
    env.run(&["monitor"]);
    env.run(&["close", "--no-iso"]);
    flip_byte(&staged_path(&env.workdir, 1, 2), 0);
    // The origin still holds that content: it is copied again, the image
    // passes, and the run is quiet on stdout but for the ready line.
    let out = env.mkiso(&[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("copied again from"), "{err}");
    assert!(iso(&env, 1).is_file());
    assert!(!env.workdir.join("staging/disc-0001").exists());
    assert_eq!(verify_iso(&iso(&env, 1)).status.code(), Some(0));
    env.check_invariants();
}

#[test]
fn a_rotten_copy_with_no_good_source_is_recorded_damaged_once_and_the_rest_imaged() {
    let env = TestEnv::new();
    env.write("a.txt", b"alpha alpha alpha");
    env.write("b.txt", b"bravo bravo bravo bravo");
    env.init(&[]);
    env.run(&["monitor"]);
    env.run(&["close", "--no-iso"]);
    flip_byte(&staged_path(&env.workdir, 1, 2), 1);
    std::fs::write(env.watched.join("b.txt"), b"bravo, changed").unwrap();
    let out = env.mkiso(&["--keep-staged"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("DAMAGED") && err.contains("/b.txt"), "{err}");
    assert_eq!(damaged_ids(&env), vec![2]);
    assert!(iso(&env, 1).is_file() && !failed(&env, 1).exists());
    // The disc's own catalogue carries the record, so the recovery tools,
    // which read only discs, do not count the file as missing.
    let out = verify_iso(&iso(&env, 1));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Said once: the next runs are quiet and succeed.
    let out = env.mkiso(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let st = env.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["Damaged_versions"][0]["id"], 2, "{v}");
    assert_eq!(v["available_isos"], 1);
    // A restore from the image gives the other file, and says the damaged
    // one is no backup (not restored: exit 1).
    let to = env.dir.path().join("restored");
    let out = std::process::Command::new(bin("dbackup-restore"))
        .args(["--no-progress", "-d"])
        .arg(iso(&env, 1))
        .arg("--to")
        .arg(&to)
        .env_remove("FAILPOINTS")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/b.txt: the version of"), "{err}");
    assert!(to.join("a.txt").is_file());
    assert!(!to.join("b.txt").exists());
    // find says so.
    let out = std::process::Command::new(bin("dbackup-find"))
        .arg("-d")
        .arg(iso(&env, 1))
        .arg("b.txt")
        .env_remove("FAILPOINTS")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(
        err.contains("/b.txt (file 2, disc 1) is recorded damaged"),
        "{err}"
    );
}

#[test]
fn ecc_works_for_a_disc_size_that_is_not_a_preset() {
    if std::process::Command::new("dvdisaster")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: dvdisaster is not installed");
        return;
    }
    let env = TestEnv::new();
    for i in 0..3u8 {
        env.write(format!("f{i}"), &vec![i; 300_000]);
    }
    env.init(&["--disc-size", "40M", "--ecc"]);
    env.run(&["monitor"]);
    let out = env.run(&["close"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("dvdisaster RS02"),
        "{}",
        text(&out.stdout)
    );
    let image = iso(&env, 1);
    // Sized for the medium 40M stands for (4/3 of it), not a 700 MiB CD.
    let len = std::fs::metadata(&image).unwrap().len();
    assert!(len <= 40_000_000 / 3 * 4, "{len}");
    let t = std::process::Command::new("dvdisaster")
        .arg("-i")
        .arg(&image)
        .arg("-t")
        .output()
        .unwrap();
    let all = text(&t.stdout) + &text(&t.stderr);
    assert!(t.status.success() && all.contains("RS02"), "{all}");
    assert_eq!(verify_iso(&image).status.code(), Some(0));
    env.check_invariants();
}

/// A rebuild killed at any step, over a rotten staged copy whose origin has
/// changed since: the verified image and its record survive, and the next
/// run repairs the copy from that image (nothing is recorded damaged).
#[test]
fn a_rebuild_killed_at_any_step_keeps_the_verified_image() {
    for point in [
        "mkiso::write",
        "mkiso::sync",
        "mkiso::read_back",
        "mkiso::rename",
        "mkiso::record",
    ] {
        let env = one_disc(true);
        let good = std::fs::read(iso(&env, 1)).unwrap();
        flip_byte(&staged_path(&env.workdir, 1, 2), 3);
        std::fs::write(env.watched.join("b.txt"), b"changed since").unwrap();
        let out = env
            .tool("dbackup-mkiso")
            .args(["--disc", "1", "--keep-staged"])
            .env("FAILPOINTS", format!("{point}=1*return(kill)"))
            .output()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{point}: {}",
            text(&out.stderr)
        );
        assert!(image_row(&env, 1).is_some(), "{point}: the record survives");
        assert_eq!(verify_iso(&iso(&env, 1)).status.code(), Some(0), "{point}");
        // The next run: the verified image stays, the copy is repaired
        // from it, nothing is damaged.
        let out = env.mkiso(&["--disc", "1", "--keep-staged"]);
        assert_eq!(out.status.code(), Some(0), "{point}: {}", text(&out.stderr));
        assert_eq!(std::fs::read(iso(&env, 1)).unwrap(), good, "{point}");
        assert!(damaged_ids(&env).is_empty(), "{point}");
        assert!(image_row(&env, 1).is_some(), "{point}");
        env.check_invariants();
    }
}
