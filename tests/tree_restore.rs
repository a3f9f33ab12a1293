//! dbackup-restore giving back the tree (docs/tree.md) through the real
//! binaries: sets staged with dbackup-stage whose catalogue is given the
//! `attrs` and `entries` tables by hand before the disc is closed (or
//! whose extracted disc's manifest is edited), then restored and checked
//! with `symlink_metadata`: modes, exact mtimes, link targets, inodes of
//! hard links, holes of sparse files, and nothing written outside the
//! target.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// The tables of docs/tree.md (staging makes them too), emptied of the
/// entries staging recorded so a test's rows are the whole tree.
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS attrs(file_id INTEGER PRIMARY KEY, mode INTEGER, uid INTEGER, gid INTEGER,
                   owner TEXT, grp TEXT, mtime_sec INTEGER, mtime_nsec INTEGER);
CREATE TABLE IF NOT EXISTS entries(id INTEGER PRIMARY KEY, filename TEXT NOT NULL, kind TEXT NOT NULL,
                     timestamp REAL NOT NULL, deleted REAL, target BLOB,
                     mode INTEGER, uid INTEGER, gid INTEGER, owner TEXT, grp TEXT,
                     mtime_sec INTEGER, mtime_nsec INTEGER);
CREATE INDEX IF NOT EXISTS entries_filename ON entries(filename);
DELETE FROM entries;";

fn restore<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(bin("dbackup-restore"))
        .arg("--no-progress")
        .env_remove("FAILPOINTS")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run dbackup-restore")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

fn stage_ok(env: &TestEnv, args: &[&str]) {
    let out = env.run(args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A row of `entries`.
struct Row<'a> {
    name: &'a [u8],
    kind: &'a str,
    timestamp: f64,
    deleted: Option<f64>,
    target: Option<&'a [u8]>,
    mode: Option<u32>,
    mtime: Option<(i64, i64)>,
}

fn row<'a>(name: &'a str, kind: &'a str, target: Option<&'a str>) -> Row<'a> {
    Row {
        name: name.as_bytes(),
        kind,
        // Later than any staging run: the test's rows hold their names.
        timestamp: 4e9,
        deleted: None,
        target: target.map(str::as_bytes),
        mode: None,
        mtime: None,
    }
}

fn insert_rows(conn: &rusqlite::Connection, rows: &[Row<'_>]) {
    for r in rows {
        let name: rusqlite::types::Value = match std::str::from_utf8(r.name) {
            Ok(s) => s.to_string().into(),
            Err(_) => r.name.to_vec().into(),
        };
        conn.execute(
            "INSERT INTO entries(filename, kind, timestamp, deleted, target, mode, mtime_sec, mtime_nsec)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params![
                name,
                r.kind,
                r.timestamp,
                r.deleted,
                r.target.map(|t| t.to_vec()),
                r.mode,
                r.mtime.map(|m| m.0),
                r.mtime.map(|m| m.1),
            ],
        )
        .unwrap();
    }
}

fn set_attrs(
    conn: &rusqlite::Connection,
    name: &str,
    mode: u32,
    uid: Option<u32>,
    mtime: (i64, i64),
) {
    let id: i64 = conn
        .query_row(
            "SELECT max(id) FROM files WHERE filename=?1 AND copied=1",
            [name],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute(
        "INSERT OR REPLACE INTO attrs VALUES (?1, ?2, ?3, ?3, NULL, NULL, ?4, ?5)",
        rusqlite::params![id, mode, uid, mtime.0, mtime.1],
    )
    .unwrap();
}

/// A one-disc set of `files`, monitored, with `edit` run on its catalogue
/// before the disc is closed and its image built; the image extracted
/// into a folder that acts as the disc. Returns the env and the disc.
fn set_with(files: &[(&str, Vec<u8>)], edit: &dyn Fn(&rusqlite::Connection)) -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    for (name, data) in files {
        env.write(name, data);
    }
    env.init(&["--name", "Tree"]);
    stage_ok(&env, &["monitor"]);
    {
        let conn = env.catalog();
        edit(&conn);
    }
    stage_ok(&env, &["close"]);
    let iso = std::fs::read_dir(env.workdir.join("isos"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "iso"))
        .expect("an image");
    let disc = env.dir.path().join("disc");
    std::fs::create_dir_all(&disc).unwrap();
    bsdtar_extract(&iso, &disc);
    (env, disc)
}

fn meta(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn mode(p: &Path) -> u32 {
    meta(p).permissions().mode() & 0o7777
}

fn mtime(p: &Path) -> (i64, i64) {
    let m = meta(p);
    (m.mtime(), m.mtime_nsec())
}

fn link(p: &Path) -> Vec<u8> {
    std::fs::read_link(p)
        .unwrap()
        .as_os_str()
        .as_bytes()
        .to_vec()
}

/// The process's umask, as new files get it.
fn umask() -> u32 {
    // SAFETY: umask has no preconditions; the old value is put back.
    unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old as u32
    }
}

/// Mostly zeros: 1 MiB of data, 15 MiB of zeros, 4 KiB of data, 4 MiB
/// of zeros (a hole at the end).
fn sparse_content() -> Vec<u8> {
    let mut v = bytes_of(7, 1 << 20);
    v.resize(16 << 20, 0);
    v.extend(bytes_of(8, 4096));
    v.resize(v.len() + (4 << 20), 0);
    v
}

#[test]
fn the_tree_is_given_back() {
    let outside = tempfile::tempdir().unwrap();
    let out_path = outside.path().to_str().unwrap().to_string();
    let files = vec![
        ("a/x.txt", b"the file".to_vec()),
        ("a/run", b"#!/bin/sh\n".to_vec()),
        ("big.img", sparse_content()),
        ("plain", b"no attrs".to_vec()),
    ];
    let (_env, disc) = set_with(&files, &|c| {
        c.execute_batch(TABLES).unwrap();
        set_attrs(c, "/a/x.txt", 0o640, None, (1_600_000_000, 123_456_789));
        set_attrs(c, "/a/run", 0o4755, None, (-86_400, 5));
        set_attrs(c, "/big.img", 0o600, None, (1_500_000_000, 999_999_999));
        let mut rows = vec![
            Row {
                mode: Some(0o750),
                mtime: Some((1_400_000_000, 1)),
                ..row("/a", "dir", None)
            },
            Row {
                mode: Some(0o700),
                mtime: Some((1_300_000_000, 2)),
                ..row("/empty", "dir", None)
            },
            Row {
                mode: Some(0o555),
                mtime: Some((1_200_000_000, 3)),
                ..row("/empty/deeper", "dir", None)
            },
            row("/ln-rel", "symlink", Some("a/x.txt")),
            row("/ln-abs", "symlink", Some("/etc/passwd")),
            row("/ln-dangling", "symlink", Some("nowhere/none")),
            row("/ln-out", "symlink", Some("../../../../../../../tmp")),
            row("/ln-dir", "symlink", Some("a")),
            Row {
                mtime: Some((1_100_000_000, 4)),
                ..row("/a/ln-outside", "symlink", Some(&out_path))
            },
            row("/a/hard", "hardlink", Some("/a/x.txt")),
            row("/empty/deeper/hard", "hardlink", Some("/a/x.txt")),
        ];
        rows.push(row("/gone", "symlink", Some("x")));
        rows.last_mut().unwrap().deleted = Some(1500.0);
        insert_rows(c, &rows);
    });
    let to = disc.parent().unwrap().join("restored");
    let out = restore(&[
        OsStr::new("-d"),
        disc.as_os_str(),
        OsStr::new("--to"),
        to.as_os_str(),
        OsStr::new("--json"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(report["plan"]["entries"]["dirs"], 3);
    assert_eq!(report["plan"]["entries"]["symlinks"], 6);
    assert_eq!(report["plan"]["entries"]["hardlinks"], 2);
    assert_eq!(report["plan"]["entries"]["deleted_left_out"], 1);
    assert_eq!(report["tree"]["dirs"], 3);
    assert_eq!(report["tree"]["symlinks"], 6);
    assert_eq!(report["tree"]["hardlinks"], 2);

    // Files: modes, exact mtimes (before the epoch too), setuid lost
    // unless the owner is given (as root, the recorded owner is absent:
    // not given either).
    assert_eq!(mode(&to.join("a/x.txt")), 0o640);
    assert_eq!(mtime(&to.join("a/x.txt")), (1_600_000_000, 123_456_789));
    assert_eq!(mode(&to.join("a/run")), 0o755);
    assert_eq!(mtime(&to.join("a/run")), (-86_400, 5));
    assert_eq!(mode(&to.join("plain")), 0o666 & !umask());
    // Holes: the same bytes, far fewer blocks.
    let big = to.join("big.img");
    assert_eq!(std::fs::read(&big).unwrap(), sparse_content());
    assert_eq!(mode(&big), 0o600);
    assert_eq!(mtime(&big), (1_500_000_000, 999_999_999));
    let blocks = meta(&big).blocks() * 512;
    assert!(
        blocks < (4 << 20),
        "{blocks} bytes allocated for a file of 1 MiB and 4 KiB of data"
    );
    // Folders, the empty ones too, with their modes and mtimes set after
    // what is in them.
    assert!(meta(&to.join("empty/deeper")).is_dir());
    assert_eq!(mode(&to.join("a")), 0o750);
    assert_eq!(mtime(&to.join("a")), (1_400_000_000, 1));
    assert_eq!(mode(&to.join("empty")), 0o700);
    assert_eq!(mtime(&to.join("empty")), (1_300_000_000, 2));
    assert_eq!(mode(&to.join("empty/deeper")), 0o555);
    assert_eq!(mtime(&to.join("empty/deeper")), (1_200_000_000, 3));
    // Links hold their targets as data; none was followed.
    for (name, t) in [
        ("ln-rel", "a/x.txt"),
        ("ln-abs", "/etc/passwd"),
        ("ln-dangling", "nowhere/none"),
        ("ln-out", "../../../../../../../tmp"),
        ("ln-dir", "a"),
        ("a/ln-outside", out_path.as_str()),
    ] {
        let p = to.join(name);
        assert!(meta(&p).file_type().is_symlink(), "{name}");
        assert_eq!(link(&p), t.as_bytes(), "{name}");
    }
    assert_eq!(mtime(&to.join("a/ln-outside")), (1_100_000_000, 4));
    assert!(std::fs::symlink_metadata(to.join("gone")).is_err());
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    // Hard links: one inode.
    let ino = meta(&to.join("a/x.txt")).ino();
    assert_eq!(meta(&to.join("a/hard")).ino(), ino);
    assert_eq!(meta(&to.join("empty/deeper/hard")).ino(), ino);
    assert_eq!(meta(&to.join("a/x.txt")).nlink(), 3);

    // Again: everything is there as recorded; nothing changes.
    let out = restore(&[
        OsStr::new("-d"),
        disc.as_os_str(),
        OsStr::new("--to"),
        to.as_os_str(),
        OsStr::new("--json"),
    ]);
    let again = json(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(again["restored"]["files"], 0);
    // 8 links and 3 folders, the folders left as they are.
    assert_eq!(again["tree"]["already_there"], 11);
    assert_eq!(mtime(&to.join("a")), (1_400_000_000, 1));
    assert_eq!(mode(&to.join("empty/deeper")), 0o555);
    assert_eq!(meta(&to.join("a/x.txt")).nlink(), 3);
    // Let the temp folder be removed.
    std::fs::set_permissions(
        to.join("empty/deeper"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}

fn run_restore(disc: &Path, to: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("-d"),
        disc.as_os_str(),
        OsStr::new("--to"),
        to.as_os_str(),
        OsStr::new("--json"),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let out = restore(&args);
    let report = json(&out);
    (out, report)
}

/// A copy of the extracted disc `disc` whose manifest gets `sql` (the
/// tables are made first when `tables`).
fn edited_disc(disc: &Path, dest: &Path, tables: bool, edit: &dyn Fn(&rusqlite::Connection)) {
    let out = Command::new("cp")
        .arg("-a")
        .arg(disc)
        .arg(dest)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let db = dest.join("manifest.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    if tables {
        conn.execute_batch(TABLES).unwrap();
    }
    edit(&conn);
}

fn failures(report: &serde_json::Value) -> Vec<(String, String)> {
    report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_hostile_manifest_writes_nothing_outside_the_target() {
    let outside = tempfile::tempdir().unwrap();
    let out_path = outside.path().to_str().unwrap().to_string();
    let (_env, disc) = set_with(&[("a/x", b"x".to_vec()), ("keep", b"k".to_vec())], &|_| {});
    let root = disc.parent().unwrap();
    let hostile = root.join("hostile");
    edited_disc(&disc, &hostile, true, &|c| {
        insert_rows(
            c,
            &[
                // A link where a file's folder goes.
                row("/a", "symlink", Some(&out_path)),
                // A link where a hard link's folder goes, and a folder's.
                row("/b", "symlink", Some(&out_path)),
                row("/b/c", "hardlink", Some("/a/x")),
                row("/d", "symlink", Some(&out_path)),
                row("/d/e", "dir", None),
                // Through a link found in the target.
                row("/pre/sub", "dir", None),
                row("/pre/l", "symlink", Some("x")),
                row("/pre/h", "hardlink", Some("/a/x")),
                // Names and targets that leave the target.
                row("/../esc", "symlink", Some("x")),
                row("//abs", "dir", None),
                row("/h", "hardlink", Some("/../a/x")),
                // Only a link, pointing outside: made, never followed.
                row("/o", "symlink", Some(&out_path)),
            ],
        );
    });
    let to = root.join("to");
    std::fs::create_dir(&to).unwrap();
    std::os::unix::fs::symlink(outside.path(), to.join("pre")).unwrap();
    let (out, report) = run_restore(&hostile, &to, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert!(meta(&to.join("a")).is_dir());
    assert_eq!(std::fs::read(to.join("a/x")).unwrap(), b"x");
    assert!(meta(&to.join("b")).is_dir());
    assert_eq!(meta(&to.join("b/c")).ino(), meta(&to.join("a/x")).ino());
    assert!(meta(&to.join("d/e")).is_dir());
    assert!(meta(&to.join("o")).file_type().is_symlink());
    let mut f = failures(&report);
    f.sort();
    let want: Vec<(String, String)> = [
        ("/a", "in_the_way"),
        ("/b", "in_the_way"),
        ("/d", "in_the_way"),
        ("/pre/h", "symlink"),
        ("/pre/l", "symlink"),
        ("/pre/sub", "symlink"),
        ("//abs", "refused_name"),
        ("/../esc", "refused_name"),
        ("/h", "refused_name"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let mut want = want;
    want.sort();
    assert_eq!(f, want, "{}", text(&out.stderr));

    // A link restored by an earlier run is never gone through either.
    let to2 = root.join("to2");
    let (out, _) = run_restore(&hostile, &to2, &["a"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(meta(&to2.join("a")).file_type().is_symlink());
    let (out, report) = run_restore(&hostile, &to2, &["--overwrite"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(failures(&report).contains(&("/a/x".to_string(), "symlink".to_string())));
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert!(meta(&to2.join("a")).file_type().is_symlink());
}

#[test]
fn entries_are_chosen_as_of_a_time() {
    let (env, disc) = set_with(&[("c", b"c".to_vec()), ("keep", b"k".to_vec())], &|_| {});
    let staged: f64 = env
        .catalog()
        .query_row("SELECT max(timestamp) FROM files", [], |r| r.get(0))
        .unwrap();
    let root = disc.parent().unwrap();
    let d = root.join("asof");
    edited_disc(&disc, &d, true, &|c| {
        let mut rows = vec![
            Row {
                timestamp: 100.0,
                ..row("/l", "symlink", Some("one"))
            },
            Row {
                timestamp: 200.0,
                deleted: Some(300.0),
                ..row("/l", "symlink", Some("two"))
            },
            Row {
                timestamp: 100.0,
                deleted: Some(150.0),
                ..row("/dd", "dir", None)
            },
            // Held by a file and an entry at once: the more recent wins.
            Row {
                timestamp: staged + 10_000.0,
                ..row("/c", "dir", None)
            },
            Row {
                timestamp: 1.0,
                ..row("/keep", "symlink", Some("elsewhere"))
            },
        ];
        // Two rows of one time: the higher id holds the name.
        rows.push(Row {
            timestamp: 100.0,
            ..row("/same", "symlink", Some("first"))
        });
        rows.push(Row {
            timestamp: 100.0,
            ..row("/same", "symlink", Some("second"))
        });
        insert_rows(c, &rows);
    });
    let at = |when: Option<&str>, name: &str| {
        let to = root.join(format!("to-{name}"));
        let mut extra = Vec::new();
        if let Some(w) = when {
            extra.extend(["--as-of", w]);
        }
        let (out, report) = run_restore(&d, &to, &extra);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        (to, report)
    };
    let (to, report) = at(Some("120"), "120");
    assert_eq!(link(&to.join("l")), b"one");
    assert!(meta(&to.join("dd")).is_dir());
    assert_eq!(link(&to.join("same")), b"second");
    assert_eq!(report["plan"]["files"], 0);
    assert!(std::fs::symlink_metadata(to.join("c")).is_err());
    let (to, report) = at(Some("250"), "250");
    assert_eq!(link(&to.join("l")), b"two");
    assert!(std::fs::symlink_metadata(to.join("dd")).is_err());
    assert_eq!(report["plan"]["entries"]["deleted_left_out"], 1);
    let (to, report) = at(None, "now");
    assert!(std::fs::symlink_metadata(to.join("l")).is_err());
    assert!(meta(&to.join("c")).is_dir());
    assert!(meta(&to.join("keep")).is_file());
    assert_eq!(report["plan"]["entries"]["conflicts"], 2);
    assert_eq!(report["plan"]["entries"]["deleted_left_out"], 2);
    assert_eq!(report["plan"]["files"], 1);
}

#[test]
fn no_mode_and_no_owner_leave_modes_and_owners() {
    let (_env, disc) = set_with(&[("f", b"f".to_vec()), ("d/g", b"g".to_vec())], &|c| {
        c.execute_batch(TABLES).unwrap();
        set_attrs(c, "/f", 0o6750, Some(4242), (1_000, 1));
        set_attrs(c, "/d/g", 0o604, Some(4242), (2_000, 2));
        // A name this machine knows wins over the recorded number.
        c.execute(
            "UPDATE attrs SET owner='root', grp='root' WHERE file_id =
               (SELECT max(id) FROM files WHERE filename='/d/g')",
            [],
        )
        .unwrap();
        insert_rows(
            c,
            &[Row {
                mode: Some(0o701),
                mtime: Some((3_000, 3)),
                ..row("/d", "dir", None)
            }],
        );
    });
    let root = disc.parent().unwrap();
    let me = unsafe { libc::geteuid() };
    let owner = if is_root() { 4242 } else { me };

    let to = root.join("all");
    let (out, _) = run_restore(&disc, &to, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(meta(&to.join("f")).uid(), owner);
    assert_eq!(
        meta(&to.join("f")).gid(),
        if is_root() {
            4242
        } else {
            meta(&to.join("f")).gid()
        }
    );
    // Setuid and setgid stay only with the owner they were recorded with.
    assert_eq!(mode(&to.join("f")), if is_root() { 0o6750 } else { 0o750 });
    assert_eq!(mode(&to.join("d/g")), 0o604);
    assert_eq!(meta(&to.join("d/g")).uid(), me);
    assert_eq!(mode(&to.join("d")), 0o701);
    assert_eq!(mtime(&to.join("d")), (3_000, 3));

    let to = root.join("no-mode");
    let (out, _) = run_restore(&disc, &to, &["--no-mode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(mode(&to.join("f")), 0o666 & !umask());
    assert_eq!(mode(&to.join("d/g")), 0o666 & !umask());
    assert_eq!(mode(&to.join("d")), 0o777 & !umask());
    assert_eq!(mtime(&to.join("f")), (1_000, 1));
    assert_eq!(mtime(&to.join("d")), (3_000, 3));
    assert_eq!(meta(&to.join("f")).uid(), owner);

    let to = root.join("no-owner");
    let (out, _) = run_restore(&disc, &to, &["--no-owner"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(meta(&to.join("f")).uid(), me);
    assert_eq!(mode(&to.join("f")), 0o750);
    assert_eq!(mode(&to.join("d/g")), 0o604);
}

#[test]
fn a_disc_without_the_tables_restores_as_before() {
    let (env, staged) = set_with(&[("f", b"f".to_vec()), ("d/g", b"g".to_vec())], &|_| {});
    // As a disc made before the tables: without them.
    let disc = staged.parent().unwrap().join("before");
    edited_disc(&staged, &disc, false, &|c| {
        c.execute_batch("DROP TABLE IF EXISTS attrs; DROP TABLE IF EXISTS entries;")
            .unwrap();
    });
    let recorded: f64 = env
        .catalog()
        .query_row("SELECT mtime FROM files WHERE filename='/d/g'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let to = disc.parent().unwrap().join("to");
    let (out, report) = run_restore(&disc, &to, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let e = &report["plan"]["entries"];
    for k in ["dirs", "symlinks", "hardlinks", "invalid_rows", "conflicts"] {
        assert_eq!(e[k], 0, "{k}");
    }
    assert_eq!(report["restored"]["files"], 2);
    assert_eq!(mode(&to.join("d/g")), 0o666 & !umask());
    assert_eq!(mode(&to.join("d")), 0o777 & !umask());
    let (s, ns) = mtime(&to.join("d/g"));
    assert!((s as f64 + ns as f64 / 1e9 - recorded).abs() < 1e-6);
    assert_eq!(report["tree"]["dirs"], 0);

    // Tables that are not plain tables read as none, and say so.
    let d = disc.parent().unwrap().join("views");
    edited_disc(&disc, &d, false, &|c| {
        c.execute_batch(
            "DROP TABLE IF EXISTS attrs; DROP TABLE IF EXISTS entries;
             CREATE TABLE x(a); CREATE VIEW entries AS SELECT * FROM x;
             CREATE TABLE attrs(file_id, mode);",
        )
        .unwrap();
    });
    let (out, report) = run_restore(&d, &disc.parent().unwrap().join("to2"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        report["plan"]["entries"]["unusable"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(report["restored"]["files"], 2);
}

#[test]
fn hard_links_to_files_not_chosen_are_copies_and_dry_runs_count_entries() {
    let (_env, disc) = set_with(&[("a/x", b"the target".to_vec())], &|c| {
        c.execute_batch(TABLES).unwrap();
        insert_rows(
            c,
            &[
                row("/h", "hardlink", Some("/a/x")),
                row("/nope", "hardlink", Some("/a/none")),
                row("/dir", "dir", None),
                row("/s", "symlink", Some("a/x")),
            ],
        );
    });
    let root = disc.parent().unwrap();
    let to = root.join("to");
    let (out, report) = run_restore(&disc, &to, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let e = &report["plan"]["entries"];
    assert_eq!(
        (
            e["dirs"].as_u64(),
            e["symlinks"].as_u64(),
            e["hardlinks"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert!(failures(&report).contains(&("/nope".to_string(), "link_target".to_string())));
    assert!(!to.exists());
    // Text plan counts them too.
    let out = restore(&[
        OsStr::new("-d"),
        disc.as_os_str(),
        OsStr::new("--to"),
        to.as_os_str(),
        OsStr::new("--dry-run"),
    ]);
    assert!(
        text(&out.stdout).contains("And 1 folder, 1 symbolic link, 1 hard link."),
        "{}",
        text(&out.stdout)
    );

    let (out, report) = run_restore(&disc, &to, &["h"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        report["plan"]["entries"]["hardlink_copies"],
        serde_json::json!(["/h"])
    );
    assert_eq!(report["restored"]["files"], 1);
    assert_eq!(std::fs::read(to.join("h")).unwrap(), b"the target");
    assert!(!to.join("a").exists());
}

/// What a generated tree holds at a name.
#[derive(Debug, Clone)]
enum Gen {
    Dir { mode: u32, mtime: (i64, i64) },
    Symlink { target: Vec<u8>, mtime: (i64, i64) },
    Hardlink { to: &'static str },
}

/// A tree of entries: names of up to three components, a name with
/// something below it a folder, the others folders, links (targets of
/// any bytes but NUL, many pointing outside) or hard links to a file.
/// With `consistent` false, any kind at any name: links and hard links
/// with names below them, as only a crafted catalogue has.
fn trees(
    outside: String,
    consistent: bool,
) -> impl proptest::strategy::Strategy<Value = Vec<(Vec<u8>, Gen)>> {
    use proptest::prelude::*;
    let part = prop::sample::select(vec!["a", "b", "c", "é", "x y", ".h"]);
    let name = prop::collection::vec(part, 1..=3).prop_map(|p| format!("/{}", p.join("/")));
    let mtime = (-(1i64 << 31)..(1i64 << 33), 0i64..1_000_000_000);
    let piece = prop::sample::select(vec![
        b"a".to_vec(),
        b"/".to_vec(),
        b"..".to_vec(),
        b".".to_vec(),
        b" ".to_vec(),
        vec![0xff],
        b"\n".to_vec(),
        outside.into_bytes(),
    ]);
    let target = prop::collection::vec(piece, 1..6).prop_map(|p| p.concat());
    let leaf = prop_oneof![
        (0u32..0o10000, mtime.clone()).prop_map(|(m, t)| Gen::Dir {
            mode: m | 0o700,
            mtime: t
        }),
        (target, mtime.clone()).prop_map(|(target, mtime)| Gen::Symlink { target, mtime }),
        prop::sample::select(vec!["/f1", "/f2"]).prop_map(|to| Gen::Hardlink { to }),
    ];
    let dir_attrs = (0u32..0o10000, mtime);
    (
        prop::collection::vec((name, leaf, dir_attrs), 1..14),
        Just(consistent),
    )
        .prop_map(|(rows, consistent)| {
            let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
            let mut out: std::collections::BTreeMap<Vec<u8>, Gen> = Default::default();
            for (n, g, (m, t)) in rows {
                let below = consistent && names.iter().any(|o| o.starts_with(&format!("{n}/")));
                let g = if below {
                    Gen::Dir {
                        mode: m | 0o700,
                        mtime: t,
                    }
                } else {
                    g
                };
                out.insert(n.into_bytes(), g);
            }
            out.into_iter().collect()
        })
}

/// Generated trees come back exactly, and a second run finds them there.
#[test]
fn generated_trees_come_back_exactly() {
    use proptest::test_runner::{Config, TestRunner};
    let outside = tempfile::tempdir().unwrap();
    let out_path = outside.path().to_str().unwrap().to_string();
    let (_env, disc) = set_with(&[("f1", b"one".to_vec()), ("f2", b"two".to_vec())], &|_| {});
    let root = disc.parent().unwrap().to_path_buf();
    let case = std::cell::Cell::new(0u32);
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&trees(out_path, true), |tree| {
            case.set(case.get() + 1);
            let d = root.join(format!("disc-{}", case.get()));
            let to = root.join(format!("to-{}", case.get()));
            edited_disc(&disc, &d, true, &|c| {
                let rows: Vec<Row<'_>> = tree
                    .iter()
                    .map(|(n, g)| match g {
                        Gen::Dir { mode, mtime } => Row {
                            name: n,
                            mode: Some(*mode),
                            mtime: Some(*mtime),
                            ..row("", "dir", None)
                        },
                        Gen::Symlink { target, mtime } => Row {
                            name: n,
                            target: Some(target),
                            mtime: Some(*mtime),
                            ..row("", "symlink", None)
                        },
                        Gen::Hardlink { to } => Row {
                            name: n,
                            ..row("", "hardlink", Some(to))
                        },
                    })
                    .collect();
                insert_rows(c, &rows);
            });
            let (out, report) = run_restore(&d, &to, &[]);
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            let count = |f: fn(&Gen) -> bool| tree.iter().filter(|(_, g)| f(g)).count() as u64;
            let links = count(|g| !matches!(g, Gen::Dir { .. }));
            let dirs = count(|g| matches!(g, Gen::Dir { .. }));
            assert_eq!(report["tree"]["dirs"], dirs);
            assert_eq!(
                report["tree"]["symlinks"],
                count(|g| matches!(g, Gen::Symlink { .. }))
            );
            for _ in 0..2 {
                for (n, g) in &tree {
                    let p = to.join(OsStr::from_bytes(&n[1..]));
                    let shown = String::from_utf8_lossy(n);
                    match g {
                        Gen::Dir { mode: m, mtime: t } => {
                            assert!(meta(&p).is_dir(), "{shown}");
                            assert_eq!(mode(&p), *m, "{shown}");
                            assert_eq!(mtime(&p), *t, "{shown}");
                        }
                        Gen::Symlink { target, mtime: t } => {
                            assert!(meta(&p).file_type().is_symlink(), "{shown}");
                            assert_eq!(&link(&p), target, "{shown}");
                            assert_eq!(mtime(&p), *t, "{shown}");
                        }
                        Gen::Hardlink { to: t } => {
                            let file = to.join(&t[1..]);
                            assert_eq!(meta(&p).ino(), meta(&file).ino(), "{shown}");
                        }
                    }
                }
                assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
                // Again: all there already, nothing changed.
                let (out, again) = run_restore(&d, &to, &[]);
                assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
                assert_eq!(again["tree"]["already_there"], links + dirs);
                assert_eq!(again["restored"]["files"], 0);
            }
            Ok(())
        })
        .unwrap();
}

/// A hard link that cannot be made (here: linkat refused, as on a
/// filesystem without hard links) is a checked copy with the link's
/// recorded attributes, and the run says so.
#[cfg(feature = "failpoints")]
#[test]
fn hard_links_that_cannot_be_made_are_copies() {
    let (_env, disc) = set_with(&[("a/x", b"the target".to_vec())], &|c| {
        c.execute_batch(TABLES).unwrap();
        set_attrs(c, "/a/x", 0o640, None, (5_000, 5));
        insert_rows(
            c,
            &[Row {
                mode: Some(0o640),
                mtime: Some((5_000, 5)),
                ..row("/h", "hardlink", Some("/a/x"))
            }],
        );
    });
    let to = disc.parent().unwrap().join("to");
    let out = Command::new(bin("dbackup-restore"))
        .args(["--no-progress", "--json", "-d"])
        .arg(&disc)
        .arg("--to")
        .arg(&to)
        .env("FAILPOINTS", "restore::linkat=return")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(
        report["tree"]["hardlinks_copied"],
        serde_json::json!(["/h"])
    );
    assert_eq!(report["tree"]["hardlinks"], 0);
    assert!(
        text(&out.stderr).contains("/h: written as a copy of /a/x"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(to.join("h")).unwrap(), b"the target");
    assert_ne!(meta(&to.join("h")).ino(), meta(&to.join("a/x")).ino());
    assert_eq!(mode(&to.join("h")), 0o640);
    assert_eq!(mtime(&to.join("h")), (5_000, 5));
}

/// A run killed while it makes the links leaves what a second run
/// finishes: every entry as recorded, no private folder left.
#[cfg(feature = "failpoints")]
#[test]
fn a_run_killed_among_the_links_is_finished_by_the_next() {
    let (_env, disc) = set_with(&[("a/x", b"the target".to_vec())], &|c| {
        c.execute_batch(TABLES).unwrap();
        insert_rows(
            c,
            &[
                Row {
                    mode: Some(0o711),
                    mtime: Some((7_000, 7)),
                    ..row("/a", "dir", None)
                },
                row("/a/h1", "hardlink", Some("/a/x")),
                row("/a/h2", "hardlink", Some("/a/x")),
                row("/a/s", "symlink", Some("x")),
            ],
        );
    });
    let to = disc.parent().unwrap().join("to");
    let mut child = Command::new(bin("dbackup-restore"))
        .args(["--no-progress", "-d"])
        .arg(&disc)
        .arg("--to")
        .arg(&to)
        .env("FAILPOINTS", "restore::linkat=1*off->sleep(20000)")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Bounded: 20 s at most for the first link to be made.
    let start = std::time::Instant::now();
    while std::fs::symlink_metadata(to.join("a/h1")).is_err() {
        assert!(
            start.elapsed().as_secs() < 20,
            "the first hard link was never made"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(std::fs::symlink_metadata(to.join("a/h2")).is_err());
    assert!(std::fs::symlink_metadata(to.join("a/s")).is_err());
    let (out, report) = run_restore(&disc, &to, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The first hard link, and the folder the killed run made.
    assert_eq!(report["tree"]["already_there"], 2);
    assert_eq!(report["tree"]["hardlinks"], 1);
    assert_eq!(report["tree"]["symlinks"], 1);
    let ino = meta(&to.join("a/x")).ino();
    assert_eq!(meta(&to.join("a/h1")).ino(), ino);
    assert_eq!(meta(&to.join("a/h2")).ino(), ino);
    assert_eq!(link(&to.join("a/s")), b"x");
    assert_eq!(mode(&to.join("a")), 0o711);
    assert_eq!(mtime(&to.join("a")), (7_000, 7));
    let left: Vec<_> = std::fs::read_dir(&to)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.as_bytes().starts_with(b".dbackup-tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn rows_of(tree: &[(Vec<u8>, Gen)]) -> Vec<Row<'_>> {
    tree.iter()
        .map(|(n, g)| match g {
            Gen::Dir { mode, mtime } => Row {
                name: n,
                mode: Some(*mode),
                mtime: Some(*mtime),
                ..row("", "dir", None)
            },
            Gen::Symlink { target, mtime } => Row {
                name: n,
                target: Some(target),
                mtime: Some(*mtime),
                ..row("", "symlink", None)
            },
            Gen::Hardlink { to } => Row {
                name: n,
                ..row("", "hardlink", Some(to))
            },
        })
        .collect()
}

/// Crafted trees (links with names below them, links planted in the
/// target) never lead a write outside the target, and every link in the
/// target is one that was planted or recorded.
#[test]
fn generated_crafted_trees_write_nothing_outside() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let outside = tempfile::tempdir().unwrap();
    let out_path = outside.path().to_str().unwrap().to_string();
    let (_env, disc) = set_with(
        &[
            ("a/f", b"one".to_vec()),
            ("f1", b"1".to_vec()),
            ("f2", b"2".to_vec()),
        ],
        &|_| {},
    );
    let root = disc.parent().unwrap().to_path_buf();
    let case = std::cell::Cell::new(0u32);
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let plants = prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "x y"]), 0..3);
    runner
        .run(
            &(trees(out_path.clone(), false), plants, any::<bool>()),
            |(tree, plants, overwrite)| {
                case.set(case.get() + 1);
                let d = root.join(format!("crafted-{}", case.get()));
                let to = root.join(format!("into-{}", case.get()));
                edited_disc(&disc, &d, true, &|c| insert_rows(c, &rows_of(&tree)));
                std::fs::create_dir(&to).unwrap();
                for p in &plants {
                    let _ = std::os::unix::fs::symlink(outside.path(), to.join(p));
                }
                let extra: &[&str] = if overwrite { &["--overwrite"] } else { &[] };
                for _ in 0..2 {
                    let (out, _) = run_restore(&d, &to, extra);
                    let code = out.status.code();
                    assert!(code == Some(0) || code == Some(1), "{}", text(&out.stderr));
                    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
                }
                for e in walkdir::WalkDir::new(&to).follow_links(false).min_depth(1) {
                    let e = e.unwrap();
                    if !e.file_type().is_symlink() {
                        continue;
                    }
                    let rel = e.path().strip_prefix(&to).unwrap().as_os_str().as_bytes();
                    let t = link(e.path());
                    let planted =
                        plants.iter().any(|p| p.as_bytes() == rel) && t == out_path.as_bytes();
                    let recorded = tree.iter().any(|(n, g)| {
                        &n[1..] == rel && matches!(g, Gen::Symlink { target, .. } if *target == t)
                    });
                    assert!(planted || recorded, "{}", e.path().display());
                }
                Ok(())
            },
        )
        .unwrap();
}

/// Everything below `root` by relative path: kind, mode, mtime, link
/// target or content, and which names share an inode.
fn snapshot(root: &Path) -> Vec<(Vec<u8>, String)> {
    let mut inodes: std::collections::BTreeMap<u64, Vec<u8>> = Default::default();
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
    {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let m = meta(e.path());
        let what = if m.file_type().is_symlink() {
            format!("link {:?} {:?}", link(e.path()), mtime(e.path()))
        } else if m.is_dir() {
            format!("dir {:o} {:?}", mode(e.path()), mtime(e.path()))
        } else {
            let first = inodes.entry(m.ino()).or_insert_with(|| rel.clone()).clone();
            format!(
                "file {:o} {:?} {} same as {:?}",
                mode(e.path()),
                mtime(e.path()),
                md5_file(e.path()),
                String::from_utf8_lossy(&first)
            )
        };
        out.push((rel, what));
    }
    out
}

/// A tree staged by dbackup-stage comes back as it was: folders (empty
/// ones too) with their modes and times, links of every kind, hard links,
/// a sparse file with its holes, setuid kept with its owner.
#[test]
fn a_staged_tree_comes_back_as_it_was() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().unwrap();
    let env = TestEnv::new();
    let w = &env.watched;
    env.write("photos/2012/a.jpg", &bytes_of(1, 30_000));
    env.write("photos/2012/b.jpg", &bytes_of(2, 20_000));
    env.write("bin/tool", b"#!/bin/sh\necho hi\n");
    env.write("big.img", &sparse_content());
    std::fs::create_dir_all(w.join("empty/deeper")).unwrap();
    std::fs::hard_link(w.join("photos/2012/a.jpg"), w.join("photos/also-a.jpg")).unwrap();
    symlink("2012/b.jpg", w.join("photos/latest")).unwrap();
    symlink("/etc/hostname", w.join("abs")).unwrap();
    symlink("no/such/file", w.join("dangling")).unwrap();
    symlink(outside.path(), w.join("photos/outside")).unwrap();
    symlink("photos", w.join("dirlink")).unwrap();
    let set_mode = |p: &str, m: u32| {
        std::fs::set_permissions(w.join(p), std::fs::Permissions::from_mode(m)).unwrap()
    };
    set_mode("bin/tool", 0o4755);
    set_mode("photos/2012/b.jpg", 0o600);
    set_mode("empty/deeper", 0o750);
    set_mode("empty", 0o711);
    // Times last, deepest first, links themselves too.
    let times = |p: &str, s: i64, ns: i64| {
        let c = std::ffi::CString::new(w.join(p).as_os_str().as_bytes()).unwrap();
        let ts = [
            libc::timespec {
                tv_sec: s,
                tv_nsec: ns,
            },
            libc::timespec {
                tv_sec: s,
                tv_nsec: ns,
            },
        ];
        // SAFETY: a valid path and two timespecs.
        let rc = unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                c.as_ptr(),
                ts.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        assert_eq!(rc, 0, "{p}");
    };
    times("photos/2012/a.jpg", 1_300_000_000, 111_111_111);
    times("photos/latest", 1_300_000_001, 222);
    times("dangling", 1_300_000_002, 333);
    times("big.img", 1_300_000_003, 999_999_999);
    times("empty/deeper", 1_200_000_000, 1);
    times("empty", 1_200_000_001, 2);
    times("photos/2012", 1_200_000_002, 3);
    times("photos", 1_200_000_003, 4);
    env.init(&["--name", "Staged"]);
    stage_ok(&env, &["monitor"]);
    stage_ok(&env, &["close"]);
    let iso = std::fs::read_dir(env.workdir.join("isos"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "iso"))
        .unwrap();
    let disc = env.dir.path().join("disc");
    std::fs::create_dir_all(&disc).unwrap();
    bsdtar_extract(&iso, &disc);
    let to = env.dir.path().join("restored");
    let (out, report) = run_restore(&disc, &to, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(report["tree"]["symlinks"], 5, "{report}");
    assert_eq!(report["tree"]["hardlinks"], 1, "{report}");
    let (want, got) = (snapshot(w), snapshot(&to));
    let show = |v: &[(Vec<u8>, String)]| {
        v.iter()
            .map(|(n, w)| format!("{} {w}", String::from_utf8_lossy(n)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(show(&got), show(&want));
    let blocks = meta(&to.join("big.img")).blocks() * 512;
    assert!(blocks < (4 << 20), "{blocks} bytes allocated");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

/// An owner the target's filesystem refuses (as FAT does) leaves the file
/// restored, without its owner and so without setuid, and counted.
#[cfg(feature = "failpoints")]
#[test]
fn a_refused_owner_is_counted_and_the_file_restored() {
    let (_env, disc) = set_with(&[("f", b"f".to_vec())], &|c| {
        c.execute_batch(TABLES).unwrap();
        set_attrs(c, "/f", 0o4755, Some(4242), (1_000, 1));
    });
    let to = disc.parent().unwrap().join("to");
    let out = Command::new(bin("dbackup-restore"))
        .args(["--no-progress", "--json", "-d"])
        .arg(&disc)
        .arg("--to")
        .arg(&to)
        .env("FAILPOINTS", "restore::chown=return")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(report["restored"]["files"], 1);
    // Only a root run tries to give owners.
    let refused = if is_root() { 1 } else { 0 };
    assert_eq!(report["tree"]["owners_refused"], refused);
    assert_eq!(mode(&to.join("f")), 0o755);
    assert_eq!(mtime(&to.join("f")), (1_000, 1));
    assert_eq!(meta(&to.join("f")).uid(), unsafe { libc::geteuid() });
}
