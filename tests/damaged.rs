//! Versions recorded damaged (their staged copy rotted before any image
//! held it, with no good copy left) are no backup: `dbackup-restore` says
//! so and restores the older version or nothing, `dbackup-lost` never
//! counts one as held content and lists those of the discs being lost.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

fn iso(env: &TestEnv, n: i64) -> PathBuf {
    env.workdir.join(format!("isos/disc-{n}.iso"))
}

fn flip_byte(path: &Path) {
    let mut data = std::fs::read(path).unwrap();
    data[0] ^= 0x5a;
    std::fs::write(path, data).unwrap();
}

fn id_of(env: &TestEnv, name: &str, disc: i64) -> i64 {
    env.catalog()
        .query_row(
            "SELECT id FROM files WHERE filename=?1 AND disc_id=?2",
            rusqlite::params![name, disc],
            |r| r.get(0),
        )
        .unwrap()
}

/// Disc 1 holds `/a.txt` (first version) and `/gone.txt`; on disc 2 the
/// second version of `/a.txt`, `/dup.txt` (the content of `/gone.txt`) and
/// `/new.txt` rotted in staging and their origins changed or went, so all
/// three are recorded damaged; `/keep.txt` on disc 2 is good.
fn scene() -> TestEnv {
    let env = TestEnv::new();
    env.write("a.txt", b"alpha, first version");
    env.write("gone.txt", b"content only disc 1 holds");
    env.init(&["--name", "Damaged"]);
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close", "--no-iso"]).status.code(), Some(0));
    let out = env.mkiso(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    std::fs::remove_file(env.watched.join("gone.txt")).unwrap();
    env.write("a.txt", b"alpha, the second version");
    env.write("dup.txt", b"content only disc 1 holds");
    env.write("new.txt", b"a file first seen on disc 2");
    env.write("keep.txt", b"a good file on disc 2");
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close", "--no-iso"]).status.code(), Some(0));
    for name in ["/a.txt", "/dup.txt", "/new.txt"] {
        flip_byte(&staged_path(&env.workdir, 2, id_of(&env, name, 2)));
    }
    env.write("a.txt", b"alpha, changed again");
    std::fs::remove_file(env.watched.join("dup.txt")).unwrap();
    std::fs::remove_file(env.watched.join("new.txt")).unwrap();
    let out = env.mkiso(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(damaged_versions(&env.catalog()).len(), 3);
    assert!(iso(&env, 1).is_file() && iso(&env, 2).is_file());
    env
}

fn restore(env: &TestEnv, to: &Path, extra: &[&str]) -> Output {
    std::process::Command::new(bin("dbackup-restore"))
        .args(["--no-progress", "-d"])
        .arg(iso(env, 1))
        .arg("-d")
        .arg(iso(env, 2))
        .arg("--to")
        .arg(to)
        .args(extra)
        .env_remove("FAILPOINTS")
        .output()
        .unwrap()
}

#[test]
fn restore_says_a_newest_version_was_damaged_and_restores_the_older_one_or_none() {
    let env = scene();
    let to = env.dir.path().join("restored");
    let out = restore(&env, &to, &[]);
    let err = text(&out.stderr);
    // The newest version of /a.txt could not be restored: not as last
    // backed up, so the run is a finding, whatever else went well.
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        std::fs::read(to.join("a.txt")).unwrap(),
        b"alpha, first version"
    );
    assert_eq!(
        std::fs::read(to.join("keep.txt")).unwrap(),
        b"a good file on disc 2"
    );
    assert!(!to.join("new.txt").exists() && !to.join("dup.txt").exists());
    let said = |name: &str| err.lines().filter(|l| l.contains(name)).count();
    let a_line = err.lines().find(|l| l.contains("/a.txt")).unwrap_or("");
    assert!(
        a_line.contains("on disc 2 was recorded damaged before it reached a disc (no backup)")
            && a_line.contains("restoring the older version of")
            && a_line.ends_with("from disc 1"),
        "{err}"
    );
    let new_line = err.lines().find(|l| l.contains("/new.txt")).unwrap_or("");
    assert!(
        new_line.contains("recorded damaged")
            && new_line.ends_with("no older version: not restored"),
        "{err}"
    );
    // Once per file.
    assert_eq!(
        (said("/a.txt"), said("/new.txt"), said("/dup.txt")),
        (1, 1, 1),
        "{err}"
    );
    assert!(err.contains("2 files not restored"), "{err}");
    assert!(!err.contains("keep.txt"), "{err}");
}

#[test]
fn restore_json_and_dry_run_list_the_damaged_files() {
    let env = scene();
    let to = env.dir.path().join("restored");
    let out = restore(&env, &to, &["--json", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!to.exists());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let damaged = v["plan"]["damaged"].as_array().unwrap();
    let names: Vec<&str> = damaged
        .iter()
        .map(|d| d["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/a.txt", "/dup.txt", "/new.txt"], "{v}");
    assert_eq!(damaged[0]["id"], id_of(&env, "/a.txt", 2));
    assert_eq!(damaged[0]["disc"], 2);
    assert_eq!(damaged[0]["older_version"]["disc"], 1);
    assert!(damaged[2]["older_version"].is_null());
    let failed: Vec<(&str, &str)> = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        failed,
        [
            ("/dup.txt", "recorded_damaged"),
            ("/new.txt", "recorded_damaged")
        ]
    );
    // The text plan lists them too.
    let out = restore(&env, &to, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    let plan = text(&out.stdout);
    assert!(
        plan.contains("3 files with a newest version recorded damaged (no backup):"),
        "{plan}"
    );
    assert!(!to.exists());
}

#[test]
fn restore_as_of_before_the_damaged_version_is_not_told_about_it() {
    let env = scene();
    let first: f64 = env
        .catalog()
        .query_row(
            "SELECT max(timestamp) FROM files WHERE disc_id=1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let to = env.dir.path().join("restored");
    let when = format!("{first}");
    let out = restore(&env, &to, &["--as-of", &when]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("damaged"), "{err}");
    assert_eq!(
        std::fs::read(to.join("a.txt")).unwrap(),
        b"alpha, first version"
    );
}

fn lost(env: &TestEnv, args: &[&str]) -> serde_json::Value {
    let out = env.tool("dbackup-lost").args(args).output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn names_of(report: &serde_json::Value, category: &str) -> Vec<String> {
    report[category]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["filename"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn lost_never_counts_a_damaged_version_as_holding_content() {
    let env = scene();
    let r = lost(&env, &["--what-if", "--json", "1"]);
    // The newer /a.txt on disc 2 is damaged: the first one is no history.
    // /dup.txt on disc 2 had the content of /gone.txt, but was damaged.
    assert_eq!(
        names_of(&r, "unrecoverable"),
        ["/a.txt", "/gone.txt"],
        "{r}"
    );
    assert!(names_of(&r, "history_only").is_empty(), "{r}");
    assert!(names_of(&r, "renamed").is_empty(), "{r}");
    assert!(names_of(&r, "damaged").is_empty(), "{r}");
}

#[test]
fn lost_lists_the_damaged_versions_of_the_discs_being_lost() {
    let env = scene();
    let r = lost(&env, &["--what-if", "--json", "2"]);
    assert_eq!(
        names_of(&r, "damaged"),
        ["/a.txt", "/dup.txt", "/new.txt"],
        "{r}"
    );
    for e in r["damaged"].as_array().unwrap() {
        assert_eq!(e["disc"], 2);
        let note = e["note"].as_str().unwrap();
        assert!(note.contains("recorded damaged"), "{note}");
    }
    assert_eq!(r["totals"]["damaged"]["files"], 3, "{r}");
    // The good file is still in the origin; the damaged ones are not
    // counted as lost with the disc, which never held them.
    assert_eq!(names_of(&r, "reprotectable"), ["/keep.txt"], "{r}");
    assert!(names_of(&r, "unrecoverable").is_empty(), "{r}");
    let out = env
        .tool("dbackup-lost")
        .args(["--what-if", "2"])
        .output()
        .unwrap();
    let report = text(&out.stdout);
    assert!(report.contains("/dup.txt"), "{report}");
    assert!(report.to_lowercase().contains("damaged"), "{report}");
}

/// The version a plan must name as damaged, and the older one restored
/// instead: of versions 1..=n of one file (version i on disc i, `damaged`
/// flags), those backed up by version `k`, the newest if it is damaged,
/// with the newest good one before it.
fn expected_damaged(damaged: &[bool], k: usize) -> Option<(i64, Option<i64>)> {
    if k == 0 || !damaged[k - 1] {
        return None;
    }
    let older = (1..k).rev().find(|&i| !damaged[i - 1]).map(|i| i as i64);
    Some((k as i64, older))
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..Default::default()
    })]

    /// Whatever versions are damaged and whatever `--as-of`, the plan
    /// names a file as damaged exactly when its newest version by then is,
    /// with the newest good version before it (or none), and the exit code
    /// is 1 then (and when nothing was backed up by then), 0 otherwise.
    #[test]
    fn the_plan_names_exactly_the_newest_damaged_version(
        damaged in proptest::collection::vec(proptest::bool::ANY, 1..5),
        k_pick in 0usize..6,
    ) {
        let n = damaged.len();
        let k = k_pick.min(n);
        let root = tempfile::tempdir().unwrap();
        let discs: Vec<Vec<(&str, Vec<u8>)>> = (1..=n)
            .map(|i| vec![("/f", format!("version {i}").into_bytes())])
            .collect();
        let folders = original_set(root.path(), &discs);
        // Version i has id i on disc i; the newest disc's manifest records
        // the damaged ones, as mkiso does in a frozen catalogue.
        let conn = rusqlite::Connection::open(folders[n - 1].join("manifest.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE damaged(file_id INTEGER PRIMARY KEY, disc_id INTEGER NOT NULL,
             found REAL NOT NULL, reason TEXT)",
        )
        .unwrap();
        for (i, d) in damaged.iter().enumerate() {
            if *d {
                let id = i as i64 + 1;
                conn.execute(
                    "INSERT INTO damaged VALUES (?1, ?1, 0, 'rotten')",
                    [id],
                )
                .unwrap();
            }
        }
        drop(conn);
        let stamp: f64 = if k == 0 {
            1_300_000_000.0
        } else {
            1_300_000_000.5 + k as f64 * 1000.5 + k as f64 + 0.25
        };
        let mut c = std::process::Command::new(bin("dbackup-restore"));
        c.args(["--no-progress", "--dry-run", "--json"]);
        for f in &folders {
            c.arg("-d").arg(f);
        }
        let to = root.path().join("to");
        let out = c
            .arg("--to")
            .arg(&to)
            .arg("--as-of")
            .arg(stamp.to_string())
            .env_remove("FAILPOINTS")
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let got: Vec<(i64, Option<i64>)> = v["plan"]["damaged"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                proptest::prop_assert_eq!(&d["filename"], "/f");
                proptest::prop_assert_eq!(&d["id"], &d["disc"]);
                Ok((d["id"].as_i64().unwrap(), d["older_version"]["disc"].as_i64()))
            })
            .collect::<Result<_, _>>()?;
        let want = expected_damaged(&damaged, k);
        proptest::prop_assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "{}", text(&out.stderr));
        let nothing = (1..=k).all(|i| damaged[i - 1]) && want.is_none();
        let code = if want.is_some() || nothing { 1 } else { 0 };
        proptest::prop_assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
        proptest::prop_assert!(!to.exists());
    }
}

#[test]
fn a_file_deleted_then_backed_up_again_damaged_is_named_not_left_out() {
    let env = TestEnv::new();
    env.write("x.txt", b"the first life of x");
    env.write("stays.txt", b"keeps the folder from looking unmounted");
    env.init(&[]);
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close", "--no-iso"]).status.code(), Some(0));
    assert_eq!(env.mkiso(&[]).status.code(), Some(0));
    std::fs::remove_file(env.watched.join("x.txt")).unwrap();
    let out = env.run(&["monitor"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    env.write("x.txt", b"x is back, in a second life");
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close", "--no-iso"]).status.code(), Some(0));
    flip_byte(&staged_path(&env.workdir, 2, id_of(&env, "/x.txt", 2)));
    std::fs::remove_file(env.watched.join("x.txt")).unwrap();
    assert_eq!(env.mkiso(&[]).status.code(), Some(1));
    let to = env.dir.path().join("restored");
    let out = restore(&env, &to, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/x.txt: the version of") && err.contains("no older version: not restored"),
        "{err}"
    );
    assert!(!to.join("x.txt").exists());
}
