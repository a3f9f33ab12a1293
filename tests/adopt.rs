//! Continuing a set made by the original dBackup: its working directory is
//! built here with Python's sqlite3 and the original's layout.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use common::*;

const T: u64 = 1_400_000_000;

fn set_mtime(p: &Path, secs: u64, nanos: u32) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::new(secs, nanos))
        .unwrap();
}

/// An original working directory: disc 1 closed (a.jpg, b.jpg, with its
/// image made by mkisofs-compatible xorriso), disc 2 open with c.txt staged,
/// and a reservation for d.txt whose copy never finished.
fn original_workdir(env: &TestEnv) -> std::path::PathBuf {
    let root = env.dir.path().join("old");
    std::fs::create_dir_all(root.join("isos")).unwrap();
    std::fs::create_dir_all(root.join("hooks")).unwrap();
    std::fs::write(root.join("hooks/mail.sh"), b"#!/bin/sh\n").unwrap();
    for (name, data) in [
        ("a.jpg", &b"photo a"[..]),
        ("b.jpg", b"photo b"),
        ("c.txt", b"text c"),
        ("d.txt", b"text d"),
    ] {
        let p = env.write(name, data);
        set_mtime(&p, T, 500_000_000);
    }
    // Disc 1, as the original burned it.
    let discs = original_set(
        env.dir.path(),
        &[vec![
            ("/a.jpg", b"photo a".to_vec()),
            ("/b.jpg", b"photo b".to_vec()),
        ]],
    );
    let out = Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-r", "-J", "-o"])
        .arg(root.join("isos/disc-1.iso"))
        .arg(&discs[0])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The live catalogue: disc 1's history, then disc 2 open.
    std::fs::copy(
        env.dir.path().join("original-live.db"),
        root.join("manifest.db"),
    )
    .unwrap();
    let script = format!(
        r#"
import sqlite3
c = sqlite3.connect('{db}')
c.execute("UPDATE files SET mtime=?", ({t},))
c.execute("INSERT INTO discs VALUES (2, {t}.75, NULL, 1)")
c.execute("INSERT INTO files VALUES (3, '/c.txt', {t}.9, ?, 6, {t}, 2, 'New file', 1)", ('{md5c}',))
c.execute("INSERT INTO files VALUES (4, '/d.txt', {t}.95, NULL, 6, {t}, 2, 'New file', 0)")
c.commit()
"#,
        db = root.join("manifest.db").display(),
        t = T,
        md5c = md5_bytes(b"text c"),
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::create_dir_all(root.join("staging/files/0")).unwrap();
    std::fs::write(root.join("staging/files/0/3"), b"text c").unwrap();
    std::fs::write(root.join("staging/files/0/4"), b"tex").unwrap();
    std::fs::write(
        root.join("settings.yaml"),
        format!(
            "watch_dir: {}\ndisc_size: 3525279744\nemail: you@example.org\n",
            env.watched.display()
        ),
    )
    .unwrap();
    root
}

fn stage(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin("dbackup-stage"))
        .arg("-w")
        .arg(root)
        .arg("--no-progress")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn an_original_set_is_adopted_and_carries_on() {
    let env = TestEnv::new();
    let root = original_workdir(&env);
    let before = std::fs::read(root.join("manifest.db")).unwrap();

    let out = stage(&root, &["adopt", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Would adopt"));
    assert_eq!(
        std::fs::read(root.join("manifest.db")).unwrap(),
        before,
        "dry run"
    );

    let out = stage(&root, &["adopt", "--name", "Old photos"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("1 unfinished reservation removed"),
        "{stdout}"
    );
    assert!(stdout.contains("Current Disc: 2"), "{stdout}");
    // The original working directory was backed up first.
    let backup = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".dbackup-adopt-backup-")
        })
        .expect("a backup folder")
        .path();
    assert_eq!(std::fs::read(backup.join("manifest.db")).unwrap(), before);
    assert!(backup.join("settings.yaml").is_file());
    assert!(backup.join("staging/files/0/3").is_file());
    assert!(backup.join("hooks/mail.sh").is_file());
    // Rows and ids as they were; the leftover reservation gone.
    let conn = rusqlite::Connection::open(root.join("manifest.db")).unwrap();
    let ids: Vec<(i64, String)> = conn
        .prepare("SELECT id, filename FROM files ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            (1, "/a.jpg".to_string()),
            (2, "/b.jpg".into()),
            (3, "/c.txt".into())
        ]
    );
    drop(conn);
    assert!(root.join("staging/disc-0002/files/0/3").is_file());
    assert!(!root.join("staging/disc-0002/files/0/4").exists());
    check_workdir(&root);

    // A monitor stages only what really changed: the original's whole-second
    // mtimes match the files' sub-second ones.
    std::fs::write(env.watched.join("b.jpg"), b"photo b, retouched").unwrap();
    let out = stage(&root, &["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(stdout.contains("/b.jpg: Size changed: 7 -> 18"), "{stdout}");
    assert!(stdout.contains("/d.txt: New file"), "{stdout}");

    // Close: disc 2 is ours; find works across the original's disc 1 and it.
    let out = stage(&root, &["close"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = Command::new(bin("dbackup-find"))
        .arg("-d")
        .arg(root.join("isos"))
        .args(["--json", "--all-versions"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<(String, i64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["filename"].as_str().unwrap().to_string(),
                r["disc"].as_i64().unwrap(),
                r["availability"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/a.jpg".to_string(), 1, "given".to_string()),
            ("/b.jpg".into(), 1, "given".into()),
            ("/b.jpg".into(), 2, "given".into()),
            ("/c.txt".into(), 2, "given".into()),
            ("/d.txt".into(), 2, "given".into()),
        ]
    );
    // Restore works across them too: the tree as it is now.
    let target = env.dir.path().join("restored");
    let out = Command::new(bin("dbackup-restore"))
        .arg("-d")
        .arg(root.join("isos"))
        .arg("--to")
        .arg(&target)
        .args(["--no-progress", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(tree_md5s(&target), tree_md5s(&env.watched));

    // The original's disc 1 (no set UUID) is checked and recorded as a
    // disc of the adopted set.
    let out = Command::new(bin("dbackup-verify"))
        .arg("-d")
        .arg(root.join("isos/disc-1.iso"))
        .arg("--record")
        .arg(&root)
        .args(["--no-progress", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["recorded"][0]["disc"], "1", "{r}");

    // Adopting twice is refused.
    let out = stage(&root, &["adopt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("already a dbackup workdir"));
}

#[test]
fn adopted_rows_compare_at_whole_seconds_and_later_rows_at_full_precision() {
    let env = TestEnv::new();
    let root = original_workdir(&env);
    let out = stage(&root, &["adopt"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let conn = rusqlite::Connection::open(root.join("manifest.db")).unwrap();
    let through: i64 = conn
        .query_row(
            "SELECT value FROM settings WHERE key='whole_second_mtimes_through'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(through, 3, "the highest backed-up id adopted");
    drop(conn);
    let out = stage(&root, &["monitor", "--no-iso"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("d.txt: New file"),
        "{}",
        text(&out.stdout)
    );
    // An adopted row (whole second T) and a file within that second at the
    // same size: unchanged by the original's rule.
    set_mtime(&env.watched.join("a.jpg"), T, 999_999_999);
    // Our new row for d.txt, given a whole-second mtime, then a same-size
    // edit within that second: a change.
    let d = env.watched.join("d.txt");
    set_mtime(&d, T + 10, 0);
    let out = stage(&root, &["monitor", "--no-iso"]);
    assert!(
        text(&out.stdout).contains("d.txt: Modification time changed"),
        "{}",
        text(&out.stdout)
    );
    std::fs::write(&d, b"text D").unwrap();
    set_mtime(&d, T + 10, 250_000_000);
    let out = stage(&root, &["monitor", "--no-iso"]);
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains("d.txt: Modification time changed"),
        "{stdout}"
    );
    // The adopted row changes only at another whole second.
    set_mtime(&env.watched.join("a.jpg"), T + 1, 0);
    let out = stage(&root, &["monitor", "--no-iso"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("a.jpg: Modification time changed"),
        "{stdout}"
    );
    let out = stage(&root, &["monitor", "--no-iso"]);
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}
