//! A stranger's recovery of the exact tree (docs/tree.md): modes, owners,
//! exact mtimes, folders, symbolic and hard links, restored by RECOVER.PY
//! and by README.TXT's sqlite3 recipes, checked with stat. Sets are staged
//! with dbackup-stage, then rows are added to the tables `attrs` and
//! `entries` of the workdir's catalogue before the disc is closed, so the
//! image carries them; images are extracted with bsdtar.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use rusqlite::params;

/// The tables as docs/tree.md gives them (a set has them from its start),
/// emptied of what the scan recorded: each case's rows are all there is.
const TREE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS attrs(file_id INTEGER PRIMARY KEY, mode INTEGER, uid INTEGER,
                   gid INTEGER, owner TEXT, grp TEXT, mtime_sec INTEGER, mtime_nsec INTEGER);
CREATE TABLE IF NOT EXISTS entries(id INTEGER PRIMARY KEY, filename TEXT NOT NULL,
                     kind TEXT NOT NULL, timestamp REAL NOT NULL, deleted REAL, target BLOB,
                     mode INTEGER, uid INTEGER, gid INTEGER, owner TEXT, grp TEXT,
                     mtime_sec INTEGER, mtime_nsec INTEGER);
CREATE INDEX IF NOT EXISTS entries_filename ON entries(filename);
DELETE FROM attrs;
DELETE FROM entries;
";

fn recover(script: &Path, to: &Path, extra: &[&str], discs: &[&Path]) -> Output {
    Command::new("python3")
        .arg(script)
        .arg("--to")
        .arg(to)
        .args(extra)
        .args(discs)
        .output()
        .expect("python3 is installed")
}

fn ns(md: &std::fs::Metadata) -> i128 {
    md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128
}

fn lstat(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A staged set with tables `attrs` and `entries` holding `sql` (run on the
/// workdir's catalogue after the tables are made, `@T` replaced by a time
/// after every files row), closed and extracted into `root/disc`.
fn tree_disc(env: &TestEnv, root: &Path, sql: &str) -> PathBuf {
    env.init(&["--disc-size", "cd"]);
    ok(env.run(&["monitor"]), "monitor");
    let conn = env.catalog();
    let t: f64 = conn
        .query_row("SELECT max(timestamp) FROM files", [], |r| r.get(0))
        .unwrap();
    conn.execute_batch(TREE_TABLES).unwrap();
    conn.execute_batch(&sql.replace("@T", &format!("{}", t + 10.0)))
        .unwrap();
    drop(conn);
    ok(env.run(&["close"]), "close");
    let disc = root.join("disc");
    std::fs::create_dir_all(&disc).unwrap();
    bsdtar_extract(&env.workdir.join("isos/disc-1.iso"), &disc);
    disc
}

fn file_id(env: &TestEnv, name: &str) -> i64 {
    env.catalog()
        .query_row("SELECT max(id) FROM files WHERE filename=?1", [name], |r| {
            r.get(0)
        })
        .unwrap()
}

const NSEC: i64 = 123_456_789;
const SECS: i64 = 1_341_234_567;

/// The watched tree of the main case, and its rows: a file with mode 640
/// and an owner whose name is nowhere, a setuid tool owned by root, a
/// sparse file, folders (one empty) with modes and exact times, symbolic
/// links (relative, absolute, dangling, out of the target, to a folder), a
/// hard link, a name whose newer version is a link and one whose older
/// damaged row is a link.
fn main_case(root: &Path) -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    env.write("a.txt", b"alpha");
    env.write("bin/tool", b"#!/bin/sh\necho tool\n");
    sparse(&env.watched.join("sparse.img"), 8 << 20, 5);
    env.write("photos/2012/x.jpg", b"the photo");
    env.write("turned", b"a file that became a link");
    env.write("back", b"a file newer than its stale link row");
    env.init(&["--disc-size", "cd"]);
    ok(env.run(&["monitor"]), "monitor");
    let conn = env.catalog();
    let t: f64 = conn
        .query_row("SELECT max(timestamp) FROM files", [], |r| {
            r.get::<_, f64>(0)
        })
        .unwrap()
        + 10.0;
    conn.execute_batch(TREE_TABLES).unwrap();
    let id = |n: &str| file_id(&env, n);
    let attrs = "INSERT INTO attrs VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    conn.execute(
        attrs,
        params![
            id("/a.txt"),
            0o640,
            54_321,
            54_322,
            "no-such-user-here",
            None::<String>,
            SECS,
            NSEC
        ],
    )
    .unwrap();
    conn.execute(
        attrs,
        params![
            id("/bin/tool"),
            0o4755,
            0,
            0,
            "root",
            "root",
            -5,
            250_000_000
        ],
    )
    .unwrap();
    conn.execute(
        attrs,
        params![id("/sparse.img"), 0o600, 0, 0, "root", "root", SECS, 0],
    )
    .unwrap();
    let entry = "INSERT INTO entries(filename, kind, timestamp, deleted, target, mode,
                 uid, gid, owner, grp, mtime_sec, mtime_nsec)
                 VALUES (?1, ?2, ?3, NULL, ?4, ?5, 0, 0, 'root', 'root', ?6, ?7)";
    let dir = |name: &str, mode: i64, secs: i64, nsec: i64| {
        conn.execute(
            entry,
            params![name, "dir", t, None::<Vec<u8>>, mode, secs, nsec],
        )
        .unwrap();
    };
    dir("/empty", 0o750, 1_000_000_000, 1);
    dir("/photos", 0o705, 1_100_000_000, 999_999_999);
    dir("/photos/2012", 0o755, 1_200_000_000, 42);
    dir("/bin", 0o711, 1_300_000_000, 0);
    let link = |name: &str, kind: &str, target: &[u8], stamp: f64| {
        conn.execute(
            entry,
            params![name, kind, stamp, target, None::<i64>, 1_234_567_890, 5],
        )
        .unwrap();
    };
    link("/photos/latest", "symlink", b"2012/x.jpg", t);
    link("/abs", "symlink", b"/etc/hostname", t);
    link("/dangling", "symlink", b"nowhere/at/all", t);
    link("/photos/out", "symlink", b"../../outside", t);
    link("/todir", "symlink", b"photos", t);
    link(
        "/photos/2012/copy.jpg",
        "hardlink",
        b"/photos/2012/x.jpg",
        t,
    );
    link("/turned", "symlink", b"a.txt", t);
    link("/back", "symlink", b"a.txt", 1.0);
    // Deleted: not made.
    conn.execute(
        "INSERT INTO entries(filename, kind, timestamp, deleted) VALUES ('/gone', 'dir', ?1, ?2)",
        params![t, t + 1.0],
    )
    .unwrap();
    // An older row of a name whose latest is a folder.
    link("/empty", "symlink", b"a.txt", t - 5.0);
    drop(conn);
    ok(env.run(&["close"]), "close");
    let disc = root.join("disc");
    std::fs::create_dir_all(&disc).unwrap();
    bsdtar_extract(&env.workdir.join("isos/disc-1.iso"), &disc);
    (env, disc)
}

#[test]
fn recover_py_restores_modes_times_folders_and_links() {
    let dir = tempfile::tempdir().unwrap();
    let (env, disc) = main_case(dir.path());
    let to = dir.path().join("to");
    let out = recover(&disc.join("RECOVER.PY"), &to, &[], &[&disc]);
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}{}", text(&out.stderr));
    assert!(
        report.contains("Made 1 folder, 1 hard link, 6 symbolic links."),
        "{report}"
    );

    // Files: mode, exact time, owner (by number: the name is nowhere).
    let a = lstat(&to.join("a.txt"));
    assert_eq!(a.mode() & 0o7777, 0o640);
    assert_eq!(ns(&a), SECS as i128 * 1_000_000_000 + NSEC as i128);
    assert_eq!(std::fs::read(to.join("a.txt")).unwrap(), b"alpha");
    let tool = lstat(&to.join("bin/tool"));
    assert_eq!(ns(&tool), -4_750_000_000, "before 1970, exactly");
    if is_root() {
        assert_eq!((a.uid(), a.gid()), (54_321, 54_322));
        assert_eq!(tool.mode() & 0o7777, 0o4755, "owner restored: setuid kept");
        assert_eq!(tool.uid(), 0);
    } else {
        assert_eq!(tool.mode() & 0o7777, 0o755, "owner not restored: no setuid");
    }

    // Sparse: holes, not blocks of zeros.
    let sp = lstat(&to.join("sparse.img"));
    assert_eq!(sp.len(), 8 << 20);
    assert!(sp.blocks() * 512 < sp.len() / 4, "{} blocks", sp.blocks());
    assert_eq!(
        md5_file(&to.join("sparse.img")),
        md5_file(&disc.join(format!("files/0/{}", file_id(&env, "/sparse.img"))))
    );

    // Folders, the empty one too, with their modes and exact times.
    for (name, mode, when) in [
        ("empty", 0o750, 1_000_000_000_000_000_001i128),
        ("photos", 0o705, 1_100_000_000_999_999_999),
        ("photos/2012", 0o755, 1_200_000_000_000_000_042),
        ("bin", 0o711, 1_300_000_000_000_000_000),
    ] {
        let md = lstat(&to.join(name));
        assert!(md.is_dir(), "{name}");
        assert_eq!(md.mode() & 0o7777, mode, "{name}");
        assert_eq!(ns(&md), when, "{name}: set after what is inside it");
    }
    assert_eq!(std::fs::read_dir(to.join("empty")).unwrap().count(), 0);
    assert!(!to.join("gone").exists(), "a deleted folder is not made");

    // Symbolic links: their targets as stored, never followed.
    for (name, target) in [
        ("photos/latest", "2012/x.jpg"),
        ("abs", "/etc/hostname"),
        ("dangling", "nowhere/at/all"),
        ("photos/out", "../../outside"),
        ("todir", "photos"),
        ("turned", "a.txt"),
    ] {
        let md = lstat(&to.join(name));
        assert!(md.file_type().is_symlink(), "{name}");
        assert_eq!(
            std::fs::read_link(to.join(name))
                .unwrap()
                .as_os_str()
                .as_bytes(),
            target.as_bytes(),
            "{name}"
        );
        assert_eq!(ns(&md), 1_234_567_890_000_000_005, "{name}");
    }
    assert!(!dir.path().join("outside").exists());
    // The older, stale link row of /back does not hold it: the file does.
    let back = lstat(&to.join("back"));
    assert!(back.is_file());

    // The hard link: one inode.
    let x = lstat(&to.join("photos/2012/x.jpg"));
    let copy = lstat(&to.join("photos/2012/copy.jpg"));
    assert_eq!((x.dev(), x.ino()), (copy.dev(), copy.ino()));
    assert_eq!(x.nlink(), 2);

    // A run again changes nothing and says all is there.
    let out = recover(&disc.join("RECOVER.PY"), &to, &[], &[&disc]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("Made 0 folders, 0 hard links, 0 symbolic links."),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(ns(&lstat(&to.join("photos"))), 1_100_000_000_999_999_999);

    // With the link's target already there (not written by this run), the
    // link is a copy, and the report says so.
    let to2 = dir.path().join("to2");
    std::fs::create_dir_all(to2.join("photos/2012")).unwrap();
    std::fs::write(to2.join("photos/2012/x.jpg"), b"the photo").unwrap();
    let out = recover(&disc.join("RECOVER.PY"), &to2, &[], &[&disc]);
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report.contains(
            "/photos/2012/copy.jpg: a copy of /photos/2012/x.jpg, not a hard link: \
             /photos/2012/x.jpg was not recovered in this run"
        ),
        "{report}"
    );
    let x = lstat(&to2.join("photos/2012/x.jpg"));
    let copy = lstat(&to2.join("photos/2012/copy.jpg"));
    assert_ne!(x.ino(), copy.ino());
    assert_eq!(
        std::fs::read(to2.join("photos/2012/copy.jpg")).unwrap(),
        b"the photo"
    );

    // --no-mode: default modes; --no-owner: no owner, so no setuid.
    let plain = dir.path().join("plain");
    let out = recover(
        &disc.join("RECOVER.PY"),
        &plain,
        &["--no-mode", "--no-owner"],
        &[&disc],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let a = lstat(&plain.join("a.txt"));
    assert_ne!(a.mode() & 0o7777, 0o640);
    assert_eq!(a.uid(), euid());
    assert_eq!(ns(&a), SECS as i128 * 1_000_000_000 + NSEC as i128);
    assert_ne!(lstat(&plain.join("empty")).mode() & 0o7777, 0o750);
    let bare = dir.path().join("bare");
    let out = recover(&disc.join("RECOVER.PY"), &bare, &["--no-owner"], &[&disc]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(lstat(&bare.join("bin/tool")).mode() & 0o7777, 0o755);
    assert_eq!(lstat(&bare.join("a.txt")).mode() & 0o7777, 0o640);
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

#[test]
fn recover_py_never_writes_through_a_link_of_a_hostile_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let env = TestEnv::new();
    env.write("a/x", b"would land outside");
    env.write("b", b"bee");
    let o = outside.to_str().unwrap();
    let disc = tree_disc(
        &env,
        dir.path(),
        &format!(
            "INSERT INTO entries(filename, kind, timestamp, target) VALUES
               ('/a', 'symlink', @T, CAST('{o}' AS BLOB)),
               ('/l', 'symlink', @T, CAST('{o}' AS BLOB)),
               ('/l/y', 'hardlink', @T, CAST('/b' AS BLOB)),
               ('/l/d', 'dir', @T, NULL),
               ('/up/../../esc', 'symlink', @T, CAST('x' AS BLOB)),
               ('/esc2', 'hardlink', @T, CAST('/../../etc/passwd' AS BLOB)),
               ('/nul', 'symlink', @T, X'610062'),
               ('/nothing', 'symlink', @T, NULL),
               ('/fifo', 'fifo', @T, NULL),
               ('/text-time', 'dir', 'soon', NULL),
               ('/badmode', 'dir', @T, NULL);
             UPDATE entries SET mode = 99999, mtime_sec = 5, mtime_nsec = -1
               WHERE filename = '/badmode';
             INSERT INTO attrs SELECT id, 65536, -1, NULL, X'00', NULL, 7, 1000000000
               FROM files WHERE filename = '/b';"
        ),
    );
    let to = dir.path().join("to");
    let out = recover(&disc.join("RECOVER.PY"), &to, &[], &[&disc]);
    let report = text(&out.stdout);
    let errors = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{report}{errors}");
    assert!(!errors.contains("Traceback"), "{errors}");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing through a link: {report}"
    );
    assert!(!dir.path().join("esc").exists());
    // /a/x came first, so /a is a folder and the link is refused.
    assert_eq!(
        std::fs::read(to.join("a/x")).unwrap(),
        b"would land outside"
    );
    assert!(
        report.contains("/a: something else is already there"),
        "{report}"
    );
    // /l/y and /l/d made /l a folder before links: /l is refused too.
    assert!(lstat(&to.join("l")).is_dir());
    assert!(lstat(&to.join("l/y")).is_file());
    for line in [
        "/up/../../esc: refused",
        "/esc2: a hard link to /../../etc/passwd, which is no backed-up file",
        "/nul: invalid link target",
        "/nothing: invalid link target",
        "/fifo: unknown kind",
        "/text-time: invalid entries row",
    ] {
        assert!(report.contains(line), "{line}: {report}");
    }
    // Unsound values are skipped with a message; the rest is restored.
    assert!(
        errors.contains("/badmode: mode 99999 is no mode"),
        "{errors}"
    );
    assert!(
        errors.contains("/badmode: mtime 5 s -1 ns is no time"),
        "{errors}"
    );
    assert!(errors.contains("/b: mode 65536 is no mode"), "{errors}");
    assert!(errors.contains("/b: owner -1:None is no owner"), "{errors}");
    assert!(
        errors.contains("/b: mtime 7 s 1000000000 ns is no time"),
        "{errors}"
    );
    assert!(lstat(&to.join("badmode")).is_dir());
    assert_eq!(std::fs::read(to.join("b")).unwrap(), b"bee");
}

#[test]
fn a_disc_without_the_tables_recovers_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let env = TestEnv::new();
    env.write("f/one.txt", b"one");
    env.write("zeros", &vec![0u8; 1 << 20]);
    env.init(&["--disc-size", "cd"]);
    ok(env.run(&["monitor"]), "monitor");
    // As a set made before the tables.
    env.catalog()
        .execute_batch("DROP TABLE attrs; DROP TABLE entries; PRAGMA user_version=3;")
        .unwrap();
    ok(env.run(&["close"]), "close");
    let disc = dir.path().join("disc");
    std::fs::create_dir_all(&disc).unwrap();
    bsdtar_extract(&env.workdir.join("isos/disc-1.iso"), &disc);
    let to = dir.path().join("to");
    let out = recover(&disc.join("RECOVER.PY"), &to, &[], &[&disc]);
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(report.starts_with("Recovered 2 files into"), "{report}");
    assert!(!report.contains("Made"), "{report}");
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(to.join("f/one.txt")).unwrap(), b"one");
    let want = ns(&lstat(&env.watched.join("f/one.txt")));
    assert!((ns(&lstat(&to.join("f/one.txt"))) - want).abs() < 1_000);
    let zeros = lstat(&to.join("zeros"));
    assert_eq!(zeros.len(), 1 << 20);
    assert_eq!(std::fs::read(to.join("zeros")).unwrap(), vec![0u8; 1 << 20]);
}

/// README.TXT's sqlite3 command whose SQL holds `marker`, as printed there
/// (its lines joined), run with sh on `disc`.
fn readme_query(disc: &Path, marker: &str) -> String {
    let readme = std::fs::read_to_string(disc.join("README.TXT")).unwrap();
    let at = readme
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in README.TXT"));
    let start = readme[..at].rfind("     sqlite3 'file:").unwrap();
    let rest = &readme[start..];
    let open = rest.find('"').unwrap();
    let close = open + 1 + rest[open + 1..].find('"').unwrap();
    let cmd = rest[..=close]
        .replace("\\\n", " ")
        .replace("/media/cdrom", disc.to_str().unwrap())
        .replace("IMG_0001", "a.txt");
    let out = Command::new("sh").arg("-c").arg(&cmd).output().unwrap();
    assert!(out.status.success(), "{cmd}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// The example command lines after "For a row" in README.TXT that start
/// with `tool`, `~` replaced by `home`.
fn readme_lines(disc: &Path, tool: &str, home: &Path) -> Vec<String> {
    std::fs::read_to_string(disc.join("README.TXT"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(&format!("{tool} ")))
        .map(|l| {
            l.split(" #")
                .next()
                .unwrap()
                .trim()
                .replace('~', home.to_str().unwrap())
        })
        .collect()
}

fn sh(line: &str) {
    let out = Command::new("sh").arg("-c").arg(line).output().unwrap();
    assert!(out.status.success(), "{line}: {}", text(&out.stderr));
}

#[test]
fn the_readme_recipes_list_links_empty_folders_modes_and_times() {
    let dir = tempfile::tempdir().unwrap();
    let (env, disc) = main_case(dir.path());

    let rows = readme_query(&disc, "kind = 'symlink'");
    let mut got: Vec<&str> = rows.lines().collect();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "/abs|/etc/hostname",
            "/back|a.txt",
            "/dangling|nowhere/at/all",
            "/photos/latest|2012/x.jpg",
            "/photos/out|../../outside",
            "/todir|photos",
            "/turned|a.txt",
        ],
        "(/back: the recipe does not weigh table files; RECOVER.PY does)"
    );

    let rows = readme_query(&disc, "kind = 'dir'");
    assert_eq!(rows.lines().collect::<Vec<_>>(), ["/empty"]);

    let rows = readme_query(&disc, "kind = 'hardlink'");
    assert_eq!(
        rows.lines().collect::<Vec<_>>(),
        ["/photos/2012/copy.jpg|/photos/2012/x.jpg"]
    );

    let rows = readme_query(&disc, "printf('%09d'");
    let id = file_id(&env, "/a.txt");
    assert_eq!(
        rows.lines().collect::<Vec<_>>(),
        [format!("{id}|640|{SECS}.{NSEC}|no-such-user-here||/a.txt")]
    );

    // The example lines, as printed, on a file of that name: its mode and
    // exact time come back (the row of the example is this one's twin).
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("IMG_0001.jpg"), b"x").unwrap();
    for (tool, only) in [("chmod", "IMG_0001.jpg"), ("touch", ".123456789 ")] {
        for line in readme_lines(&disc, tool, &home) {
            if line.contains(only) {
                sh(&line);
            }
        }
    }
    let md = lstat(&home.join("IMG_0001.jpg"));
    assert_eq!(md.mode() & 0o7777, 0o644);
    assert_eq!(ns(&md), SECS as i128 * 1_000_000_000 + NSEC as i128);
    // The symbolic link and hard link examples do what they say.
    let rec = home.join("recovered");
    std::fs::create_dir_all(rec.join("photos")).unwrap();
    std::fs::write(rec.join("a.jpg"), b"a").unwrap();
    for line in readme_lines(&disc, "ln", &home) {
        sh(&line);
    }
    assert_eq!(
        std::fs::read_link(rec.join("photos/latest")).unwrap(),
        Path::new("2012/holiday")
    );
    assert_eq!(
        lstat(&rec.join("a.jpg")).ino(),
        lstat(&rec.join("b.jpg")).ino()
    );
}

/// Run by another user than root (when the tests run as root and can
/// become one): owners stay that user's, so setuid goes; modes and times
/// are restored all the same.
#[test]
fn recover_py_run_by_a_user_restores_modes_but_not_owners() {
    let python = Path::new("/usr/bin/python3");
    let setpriv = Path::new("/usr/bin/setpriv");
    if !is_root() || !python.exists() || !setpriv.exists() {
        eprintln!("skipped: needs root, {python:?} and {setpriv:?}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, disc) = main_case(dir.path());
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let to = dir.path().join("user");
    std::fs::create_dir(&to).unwrap();
    std::os::unix::fs::chown(&to, Some(65_534), Some(65_534)).unwrap();
    let out = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(python)
        .arg(disc.join("RECOVER.PY"))
        .arg("--to")
        .arg(&to)
        .arg(&disc)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let a = lstat(&to.join("a.txt"));
    assert_eq!((a.uid(), a.mode() & 0o7777), (65_534, 0o640));
    assert_eq!(ns(&a), SECS as i128 * 1_000_000_000 + NSEC as i128);
    let tool = lstat(&to.join("bin/tool"));
    assert_eq!(tool.mode() & 0o7777, 0o755, "no setuid for another owner");
    let photos = lstat(&to.join("photos"));
    assert_eq!(photos.mode() & 0o7777, 0o705);
    assert_eq!(ns(&photos), 1_100_000_000_999_999_999);
    let x = lstat(&to.join("photos/2012/x.jpg"));
    assert_eq!(x.ino(), lstat(&to.join("photos/2012/copy.jpg")).ino());
}

/// A tree really staged (not rows written by hand): RECOVER.PY gives back
/// its links, empty folders, modes and exact times as `lstat` saw them.
#[test]
fn recover_py_gives_back_a_staged_tree() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let env = TestEnv::new();
    let f = env.write("a/f.txt", b"content");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o604)).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::new(1_500_000_000, 987_654_321))
        .unwrap();
    std::fs::create_dir_all(env.watched.join("a/empty")).unwrap();
    std::fs::set_permissions(
        env.watched.join("a/empty"),
        std::fs::Permissions::from_mode(0o710),
    )
    .unwrap();
    symlink("f.txt", env.watched.join("a/rel")).unwrap();
    symlink("/nowhere/at/all", env.watched.join("a/abs")).unwrap();
    std::fs::hard_link(&f, env.watched.join("a/g.txt")).unwrap();
    env.init(&["--disc-size", "cd"]);
    ok(env.run(&["monitor"]), "monitor");
    ok(env.run(&["close"]), "close");
    let disc = dir.path().join("disc");
    std::fs::create_dir_all(&disc).unwrap();
    bsdtar_extract(&env.workdir.join("isos/disc-1.iso"), &disc);
    let to = dir.path().join("to");
    let out = recover(&disc.join("RECOVER.PY"), &to, &[], &[&disc]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    for rel in ["a", "a/f.txt", "a/empty", "a/rel", "a/abs", "a/g.txt"] {
        let (want, got) = (lstat(&env.watched.join(rel)), lstat(&to.join(rel)));
        assert_eq!(got.file_type(), want.file_type(), "{rel}");
        if !want.file_type().is_symlink() {
            assert_eq!(got.mode() & 0o7777, want.mode() & 0o7777, "mode of {rel}");
            assert_eq!(ns(&got), ns(&want), "mtime of {rel}");
        }
    }
    assert_eq!(
        std::fs::read_link(to.join("a/abs")).unwrap(),
        Path::new("/nowhere/at/all")
    );
    assert_eq!(
        lstat(&to.join("a/g.txt")).ino(),
        lstat(&to.join("a/f.txt")).ino()
    );
}

/// A folder that was in DIR before the run is the user's: RECOVER.PY
/// leaves its mode as it is, whatever the disc records for that name,
/// while a folder it makes gets the recorded one.
#[test]
fn recover_py_leaves_a_folder_already_there_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let env = TestEnv::new();
    env.write("keep/f", b"data");
    env.write("made/g", b"data");
    for d in ["keep", "made"] {
        std::fs::set_permissions(env.watched.join(d), std::fs::Permissions::from_mode(0o777))
            .unwrap();
    }
    env.init(&["--disc-size", "cd"]);
    ok(env.run(&["monitor"]), "monitor");
    ok(env.run(&["close"]), "close");
    let disc = dir.path().join("disc");
    std::fs::create_dir_all(&disc).unwrap();
    bsdtar_extract(&env.workdir.join("isos/disc-1.iso"), &disc);
    let to = dir.path().join("to");
    std::fs::create_dir_all(to.join("keep")).unwrap();
    std::fs::set_permissions(to.join("keep"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = recover(&disc.join("RECOVER.PY"), &to, &[], &[&disc]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(to.join("keep/f")).unwrap(), b"data");
    assert_eq!(lstat(&to.join("keep")).mode() & 0o7777, 0o700);
    assert_eq!(lstat(&to.join("made")).mode() & 0o7777, 0o777);
}
