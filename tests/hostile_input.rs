//! Crafted discs that once made the recovery tools panic, found by the
//! fuzz targets in `fuzz/`: each must now give a report or an error.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

/// A disc folder whose manifest (the original's schema) claims three
/// files of `i64::MAX` bytes each on disc 1; the disc holds none of them.
fn absurd_sizes(disc: &Path) {
    std::fs::create_dir_all(disc).unwrap();
    let conn = rusqlite::Connection::open(disc.join("manifest.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE discs(id INTEGER PRIMARY KEY, started INTEGER, completed INTEGER, available BOOLEAN);
         CREATE TABLE files(id INTEGER PRIMARY KEY, filename TEXT, timestamp INTEGER, md5 TEXT,
                            size INTEGER, mtime INTEGER, disc_id INTEGER, desc TEXT, copied BOOLEAN);
         INSERT INTO discs VALUES (1, 1700000000.0, 1700000100.0, 1);",
    )
    .unwrap();
    for (id, name) in [(1, "/a"), (2, "/b"), (3, "/c")] {
        conn.execute(
            "INSERT INTO files VALUES (?1, ?2, 1700000050.0, ?3, ?4, 1699999000, 1, 'New file', 1)",
            rusqlite::params![id, name, md5_bytes(b""), i64::MAX],
        )
        .unwrap();
    }
}

fn run(mut cmd: Command) -> Output {
    cmd.arg("--no-progress")
        .env_remove("FAILPOINTS")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn sizes_adding_up_past_2_to_the_64_do_not_overflow_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let disc = dir.path().join("disc");
    let target = dir.path().join("target");
    absurd_sizes(&disc);
    let mut cmd = Command::new(bin("dbackup-restore"));
    cmd.arg("-d").arg(&disc).arg("--to").arg(&target);
    cmd.args(["--dry-run", "--json"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["plan"]["files"], 3);
    assert_eq!(report["plan"]["bytes"], u64::MAX);

    let mut cmd = Command::new(bin("dbackup-restore"));
    cmd.arg("-d")
        .arg(&disc)
        .arg("--to")
        .arg(&target)
        .arg("--json");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed"].as_array().unwrap().len(), 3);
    assert_eq!(report["restored"]["files"], 0);
}

#[test]
fn sizes_adding_up_past_2_to_the_64_do_not_overflow_a_loss_report() {
    let dir = tempfile::tempdir().unwrap();
    let disc = dir.path().join("disc");
    let origin = dir.path().join("origin");
    std::fs::create_dir_all(&origin).unwrap();
    absurd_sizes(&disc);
    let mut cmd = Command::new(bin("dbackup-lost"));
    cmd.arg("--manifest").arg(disc.join("manifest.db"));
    cmd.arg("--origin").arg(&origin).args(["1", "--json"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["totals"]["unrecoverable"]["files"], 3);
    assert_eq!(report["totals"]["unrecoverable"]["bytes"], u64::MAX);
}
