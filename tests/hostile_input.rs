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

const DISCS: &str =
    "CREATE TABLE discs(id INTEGER PRIMARY KEY, started INTEGER, completed INTEGER, available BOOLEAN);
     INSERT INTO discs VALUES (1, 1700000000.0, 1700000100.0, 1);";
const FILES: &str =
    "CREATE TABLE files(id INTEGER PRIMARY KEY, filename TEXT, timestamp INTEGER, md5 TEXT,
                        size INTEGER, mtime INTEGER, disc_id INTEGER, desc TEXT, copied BOOLEAN);";
const ROW: &str = "INSERT INTO files VALUES (1, '/a.txt', 1700000050.0,
                   'd41d8cd98f00b204e9800998ecf8427e', 0, 1699999000, 1, 'New file', 1);";

/// A disc folder whose manifest is made by `sql`, holding `files/0/1`
/// (empty, as `ROW` records it).
fn crafted_disc(disc: &Path, sql: &str) {
    std::fs::create_dir_all(disc.join("files/0")).unwrap();
    std::fs::write(disc.join("files/0/1"), b"").unwrap();
    let conn = rusqlite::Connection::open(disc.join("manifest.db")).unwrap();
    conn.execute_batch(sql).unwrap();
}

/// Runs `cmd` with stdout and stderr in files, killing it after `limit`:
/// a hostile manifest must not hang a tool.
fn run_bounded(mut cmd: Command, limit: std::time::Duration) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (o, e) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .arg("--no-progress")
        .env_remove("FAILPOINTS")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    // Bounded by `limit`.
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} ran longer than {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    (
        status.code(),
        String::from_utf8_lossy(&std::fs::read(&o).unwrap()).into_owned(),
        String::from_utf8_lossy(&std::fs::read(&e).unwrap()).into_owned(),
    )
}

const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Each reader on the disc: `(tool, exit code, stdout, stderr)`.
fn every_reader(dir: &Path, disc: &Path) -> Vec<(&'static str, Option<i32>, String, String)> {
    let origin = dir.join("origin");
    std::fs::create_dir_all(&origin).unwrap();
    let mut out = Vec::new();
    let mut find = Command::new(bin("dbackup-find"));
    find.arg("-d").arg(disc).arg("--json");
    let mut verify = Command::new(bin("dbackup-verify"));
    verify.arg("-d").arg(disc).arg("--json");
    let mut restore = Command::new(bin("dbackup-restore"));
    restore
        .arg("-d")
        .arg(disc)
        .arg("--to")
        .arg(dir.join("target"))
        .args(["--dry-run", "--json"]);
    let mut lost = Command::new(bin("dbackup-lost"));
    lost.arg("--manifest")
        .arg(disc.join("manifest.db"))
        .arg("--origin")
        .arg(&origin)
        .args(["1", "--what-if", "--json"]);
    for (name, cmd) in [
        ("find", find),
        ("verify", verify),
        ("restore", restore),
        ("lost", lost),
    ] {
        let (code, stdout, stderr) = run_bounded(cmd, LIMIT);
        out.push((name, code, stdout, stderr));
    }
    out
}

/// Manifests whose tables are not real tables of the original's shape:
/// every reader refuses them at once with a clear error (exit 2), and none
/// runs the manifest's code (a recursive view once filled the temp folder).
#[test]
fn manifests_that_are_not_real_tables_are_refused_by_every_reader() {
    let recursive_files =
        "CREATE VIEW files AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r)
         SELECT n AS id, '/' || n AS filename, 1700000050.0 AS timestamp,
                'd41d8cd98f00b204e9800998ecf8427e' AS md5, 0 AS size, 0 AS mtime,
                1 AS disc_id, '' AS desc, 1 AS copied FROM r;";
    let cases: Vec<(&str, String)> = vec![
        ("recursive view", format!("{DISCS}{recursive_files}")),
        (
            "discs a view",
            format!(
                "{FILES}{ROW}CREATE VIEW discs AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r)
                 SELECT n AS id, 1.0 AS started, 2.0 AS completed, 1 AS available FROM r;"
            ),
        ),
        (
            "settings a view",
            format!(
                "{DISCS}{FILES}{ROW}CREATE VIEW settings AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r)
                 SELECT 'uuid' AS key, n AS value FROM r;"
            ),
        ),
        (
            "deletions a view",
            format!(
                "{DISCS}{FILES}{ROW}CREATE VIEW deletions AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r)
                 SELECT n AS id, '/x' AS filename, 1.0 AS deleted, NULL AS file_id FROM r;"
            ),
        ),
        (
            "virtual table",
            format!(
                "{DISCS}CREATE VIRTUAL TABLE files USING fts5(id, filename, timestamp, md5, size, mtime, disc_id, desc, copied);"
            ),
        ),
        (
            "trigger",
            format!(
                "{DISCS}{FILES}{ROW}CREATE TRIGGER t AFTER INSERT ON files BEGIN SELECT 1; END;"
            ),
        ),
        (
            "generated column",
            format!(
                "{DISCS}CREATE TABLE files(id INTEGER PRIMARY KEY, name TEXT,
                   filename TEXT GENERATED ALWAYS AS (printf('%.*c', 100000000, 'x')) VIRTUAL,
                   timestamp INTEGER, md5 TEXT, size INTEGER, mtime INTEGER, disc_id INTEGER,
                   desc TEXT, copied BOOLEAN);"
            ),
        ),
        (
            "missing column",
            format!(
                "{DISCS}CREATE TABLE files(id INTEGER PRIMARY KEY, filename TEXT, timestamp INTEGER,
                   md5 TEXT, size INTEGER, mtime INTEGER, disc_id INTEGER, desc TEXT);"
            ),
        ),
        (
            "renamed column",
            format!(
                "{DISCS}CREATE TABLE files(id INTEGER PRIMARY KEY, path TEXT, timestamp INTEGER,
                   md5 TEXT, size INTEGER, mtime INTEGER, disc_id INTEGER, desc TEXT, copied BOOLEAN);"
            ),
        ),
        ("no files table", DISCS.to_string()),
    ];
    for (what, sql) in cases {
        let dir = tempfile::tempdir().unwrap();
        let disc = dir.path().join("disc");
        crafted_disc(&disc, &sql);
        for (tool, code, _, stderr) in every_reader(dir.path(), &disc) {
            assert_eq!(code, Some(2), "{what}: {tool}: {stderr}");
            assert!(
                stderr.contains("not a dbackup manifest"),
                "{what}: {tool}: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{what}: {tool}: {stderr}");
        }
        assert!(
            !dir.path().join("target").exists(),
            "{what}: nothing is written"
        );
    }
}

/// Real tables of an unusual but sound shape are read: extra columns,
/// `WITHOUT ROWID`, columns in another order or case, and a disc whose
/// manifest claims 200,000 files that it does not hold (each reader
/// answers within the time bound; verify and lost report them).
#[test]
fn real_tables_of_unusual_shape_are_read_and_absurd_row_counts_end() {
    let many = "WITH RECURSIVE r(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM r WHERE value < 200000)
                INSERT INTO files SELECT value + 1, '/m/' || value, 1700000050.0,
                  'd41d8cd98f00b204e9800998ecf8427e', 7, 1699999000, 1, 'New file', 1 FROM r;";
    let cases: Vec<(&str, String, [i32; 4])> = vec![
        (
            "extra columns",
            format!(
                "{DISCS}CREATE TABLE files(id INTEGER PRIMARY KEY, filename TEXT, timestamp INTEGER, md5 TEXT,
                   size INTEGER, mtime INTEGER, disc_id INTEGER, desc TEXT, copied BOOLEAN, extra BLOB, more TEXT);
                 INSERT INTO files VALUES (1, '/a.txt', 1700000050.0, 'd41d8cd98f00b204e9800998ecf8427e',
                   0, 1699999000, 1, 'New file', 1, randomblob(100), 'x');"
            ),
            [0, 0, 0, 1],
        ),
        (
            "without rowid, other order and case",
            format!(
                "{DISCS}CREATE TABLE files(COPIED BOOLEAN, Filename TEXT, id INTEGER PRIMARY KEY, timestamp INTEGER,
                   md5 TEXT, size INTEGER, mtime INTEGER, disc_id INTEGER, desc TEXT) WITHOUT ROWID;
                 INSERT INTO files(id, filename, timestamp, md5, size, mtime, disc_id, desc, copied)
                   VALUES (1, '/a.txt', 1700000050.0, 'd41d8cd98f00b204e9800998ecf8427e', 0, 1699999000, 1, 'New file', 1);"
            ),
            [0, 0, 0, 1],
        ),
        ("absurd row count", format!("{DISCS}{FILES}{ROW}{many}"), [0, 1, 0, 1]),
    ];
    for (what, sql, codes) in cases {
        let dir = tempfile::tempdir().unwrap();
        let disc = dir.path().join("disc");
        crafted_disc(&disc, &sql);
        for ((tool, code, stdout, stderr), want) in
            every_reader(dir.path(), &disc).into_iter().zip(codes)
        {
            assert_eq!(code, Some(want), "{what}: {tool}: {stderr}");
            let report: serde_json::Value = serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("{what}: {tool}: {e}: {stdout}"));
            if tool == "find" {
                assert!(report
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["filename"] == "/a.txt"));
            }
        }
    }
}
