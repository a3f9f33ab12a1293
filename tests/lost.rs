//! dbackup-lost through the real binary: a set over several discs, a file
//! deleted, one renamed, one edited, one untouched, and disc 1 lost.

mod common;

use std::process::Output;

use common::*;

struct Scene {
    env: TestEnv,
}

fn scene() -> Scene {
    let env = TestEnv::new();
    env.write("deleted.jpg", b"only copy was on disc 1");
    env.write("renamed.jpg", b"content that moves");
    env.write("edited.txt", b"first draft");
    env.write("untouched.mp3", b"never changes");
    env.init(&["--name", "Scene"]);
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    std::fs::remove_file(env.watched.join("deleted.jpg")).unwrap();
    std::fs::rename(
        env.watched.join("renamed.jpg"),
        env.watched
            .join("moved/renamed.jpg")
            .parent()
            .map(|p| {
                std::fs::create_dir_all(p).unwrap();
                p.join("renamed.jpg")
            })
            .unwrap(),
    )
    .unwrap();
    env.write("edited.txt", b"second draft, longer");
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    Scene { env }
}

fn lost(env: &TestEnv, args: &[&str]) -> Output {
    env.tool("dbackup-lost").args(args).output().unwrap()
}

fn names_of(report: &serde_json::Value, category: &str) -> Vec<String> {
    report[category]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["filename"].as_str().unwrap().to_string())
        .collect()
}

fn available(env: &TestEnv, disc: i64) -> i64 {
    env.catalog()
        .query_row("SELECT available FROM discs WHERE id=?1", [disc], |r| {
            r.get(0)
        })
        .unwrap()
}

fn check_categories(report: &serde_json::Value) {
    assert_eq!(names_of(report, "unrecoverable"), ["/deleted.jpg"]);
    assert_eq!(names_of(report, "renamed"), ["/renamed.jpg"]);
    let note = report["renamed"][0]["note"].as_str().unwrap();
    assert!(note.contains("/moved/renamed.jpg"), "{note}");
    assert_eq!(names_of(report, "history_only"), ["/edited.txt"]);
    assert_eq!(names_of(report, "reprotectable"), ["/untouched.mp3"]);
    for cat in ["unrecoverable", "renamed", "reprotectable", "history_only"] {
        let e = &report[cat][0];
        for key in ["filename", "id", "size", "md5"] {
            assert!(!e[key].is_null(), "{cat}.{key}");
        }
    }
    assert_eq!(report["totals"]["unrecoverable"]["files"], 1);
    assert_eq!(report["totals"]["unrecoverable"]["bytes"], 23);
}

#[test]
fn what_if_reports_each_category_and_changes_nothing() {
    let s = scene();
    let before = std::fs::read(s.env.workdir.join("manifest.db")).unwrap();
    let out = lost(&s.env, &["1", "--what-if", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    check_categories(&report);
    assert_eq!(report["marked"], false);
    assert_eq!(available(&s.env, 1), 1);
    assert_eq!(
        std::fs::read(s.env.workdir.join("manifest.db")).unwrap(),
        before
    );
}

#[test]
fn marking_lost_then_restage_then_found() {
    let s = scene();
    let env = &s.env;
    let out = lost(env, &["1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Disc(s) 1 marked lost."), "{stdout}");
    assert!(stdout.contains("/deleted.jpg"), "{stdout}");
    assert_eq!(available(env, 1), 0);
    let st: serde_json::Value =
        serde_json::from_slice(&env.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(st["Lost_discs"][0], 1);

    let out = lost(env, &["1", "--restage", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    check_categories(&report);
    assert_eq!(report["restaged"], 1);
    let (desc, disc): (String, i64) = env
        .catalog()
        .query_row(
            "SELECT desc, disc_id FROM files WHERE filename='/untouched.mp3' ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(desc, "Re-staged: disc 1 lost");
    assert_eq!(disc, 3);
    // The next image holds it.
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    let dir = tempfile::tempdir().unwrap();
    bsdtar_extract(&env.workdir.join("isos/disc-3.iso"), dir.path());
    let id: i64 = env
        .catalog()
        .query_row(
            "SELECT max(id) FROM files WHERE filename='/untouched.mp3'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        std::fs::read(dir.path().join(format!("files/{}/{id}", id / 256))).unwrap(),
        b"never changes"
    );
    // Now it is history only: the newest version is safe.
    let out = lost(env, &["1", "--what-if", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(names_of(&report, "history_only").contains(&"/untouched.mp3".to_string()));
    assert!(names_of(&report, "reprotectable").is_empty());
    // A monitor does not stage it a third time.
    let out = env.run(&["monitor"]);
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    let out = lost(env, &["1", "--found"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(available(env, 1), 1);
}

#[test]
fn the_manifest_alone_gives_the_same_report() {
    let s = scene();
    let dir = tempfile::tempdir().unwrap();
    bsdtar_extract(&s.env.workdir.join("isos/disc-2.iso"), dir.path());
    let out = std::process::Command::new(bin("dbackup-lost"))
        .arg("--manifest")
        .arg(dir.path().join("manifest.db"))
        .arg("--origin")
        .arg(&s.env.watched)
        .args(["1", "--json", "--no-progress"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    check_categories(&report);
    // Reports only: --restage needs a workdir.
    let out = std::process::Command::new(bin("dbackup-lost"))
        .arg("--manifest")
        .arg(dir.path().join("manifest.db"))
        .arg("--origin")
        .arg(&s.env.watched)
        .args(["1", "--restage"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unknown_or_open_discs_are_refused_and_nothing_changes() {
    let s = scene();
    let before = std::fs::read(s.env.workdir.join("manifest.db")).unwrap();
    for (args, why) in [
        (vec!["9"], "there is no disc 9"),
        (vec!["3"], "disc 3 is still open"),
        (vec!["1", "3"], "disc 3 is still open"),
    ] {
        let out = lost(&s.env, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains(why), "{}", text(&out.stderr));
    }
    assert_eq!(available(&s.env, 1), 1);
    assert_eq!(
        std::fs::read(s.env.workdir.join("manifest.db")).unwrap(),
        before
    );
}

#[test]
fn losing_a_disc_whose_files_are_all_safe_exits_0() {
    let s = scene();
    // Disc 2 holds the edited version (origin unchanged) and the renamed
    // file (in the origin): nothing is unrecoverable.
    let out = lost(&s.env, &["2", "--what-if", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(names_of(&report, "unrecoverable").is_empty());
    assert_eq!(
        names_of(&report, "reprotectable"),
        ["/edited.txt", "/moved/renamed.jpg"]
    );
}
