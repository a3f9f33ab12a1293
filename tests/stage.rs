//! dbackup-stage driven through the real binary against real temp trees.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use common::*;

#[test]
fn init_prints_what_the_original_printed() {
    let env = TestEnv::new();
    let out = env.run(&["init", env.watched.to_str().unwrap(), "--name", "Photos"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let workdir = env.workdir.canonicalize().unwrap();
    let watched = env.watched.canonicalize().unwrap();
    assert!(stdout.starts_with(&format!(
        "Staging directory created:\nStaging dir: {}\nWatched dir: {}\nCurrent Disc: 1\n",
        workdir.display(),
        watched.display()
    )));
    let conn = env.catalog();
    let (size, name, watched_set): (i64, String, String) = conn
        .query_row(
            "SELECT (SELECT value FROM settings WHERE key='disc_size'),
                    (SELECT value FROM settings WHERE key='name'),
                    (SELECT value FROM settings WHERE key='watched')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(size, 3_525_279_744, "default disc size is 75% of a DVD");
    assert_eq!(name, "Photos");
    assert_eq!(watched_set, watched.to_str().unwrap());
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    // 4: a new set records its tree (links, folders, modes) from the start.
    assert_eq!(version, 4);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn init_takes_medium_names_and_units() {
    for (arg, bytes) in [
        ("bd25", 18_768_986_112i64),
        ("700M", 700_000_000),
        ("4GiB", 4 << 30),
    ] {
        let env = TestEnv::new();
        env.init(&["--disc-size", arg]);
        let size: i64 = env
            .catalog()
            .query_row(
                "SELECT value FROM settings WHERE key='disc_size'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(size, bytes, "{arg}");
    }
    let env = TestEnv::new();
    let out = env.run(&["init", env.watched.to_str().unwrap(), "--disc-size", "lots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!env.workdir.exists(), "nothing written on a bad size");
}

#[test]
fn init_refuses_what_it_must() {
    let env = TestEnv::new();
    env.init(&[]);
    // An existing repository.
    let out = env.run(&["init", env.watched.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("already a dbackup workdir"));

    // A non-empty folder.
    let env = TestEnv::new();
    std::fs::create_dir(&env.workdir).unwrap();
    std::fs::write(env.workdir.join("precious.txt"), b"x").unwrap();
    let out = env.run(&["init", env.watched.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not empty"),
        "{}",
        text(&out.stderr)
    );

    // A missing watched folder.
    let env = TestEnv::new();
    let out = env.run(&["init", env.dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!env.workdir.exists());

    // A workdir inside the watched folder.
    let env = TestEnv::new();
    let inside = env.watched.join("sub/work");
    let out = std::process::Command::new(bin("dbackup-stage"))
        .arg("-w")
        .arg(&inside)
        .args(["init", env.watched.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("inside the watched folder"));
    assert!(!inside.exists());
    let lines: Vec<_> = text(&out.stderr).lines().map(String::from).collect();
    assert!(lines[0].starts_with("dbackup-stage: error: "), "{lines:?}");
}

#[test]
fn monitor_stages_prints_and_is_quiet_when_nothing_changed() {
    let env = TestEnv::new();
    env.write("foo1", b"hello\n");
    env.write("2012/holiday/IMG_0001.jpg", &vec![7u8; 5000]);
    env.init(&[]);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let w = env.watched.canonicalize().unwrap();
    assert!(stdout.contains(&format!("{}/foo1: New file\n", w.display())));
    assert!(stdout.contains(&format!(
        "{}/2012/holiday/IMG_0001.jpg: New file\n",
        w.display()
    )));
    assert_eq!(stdout.lines().count(), 2);
    let latest = env.check_invariants();
    assert_eq!(latest, tree_md5s(&env.watched));
    // Names keep the original's leading slash.
    assert!(latest.contains_key(b"/2012/holiday/IMG_0001.jpg".as_slice()));

    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.is_empty(),
        "unchanged rescan printed {}",
        text(&out.stdout)
    );
    assert!(
        out.stderr.is_empty(),
        "unchanged rescan printed {}",
        text(&out.stderr)
    );
    let out = env.run(&["monitor", "--cron"]);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());

    // A change is reported in the original's words.
    std::fs::write(env.watched.join("foo1"), b"hello, world!\n").unwrap();
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("/foo1: Size changed: 6 -> 14"),
        "{}",
        text(&out.stdout)
    );
    let versions: i64 = env
        .catalog()
        .query_row(
            "SELECT count(*) FROM files WHERE filename='/foo1' AND copied=1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(versions, 2);
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
}

#[test]
fn catalogue_keeps_the_original_schema_and_types() {
    let env = TestEnv::new();
    env.write("a.txt", b"abc");
    env.init(&[]);
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    let conn = env.catalog();
    let cols: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('files') ORDER BY cid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        cols,
        [
            "id",
            "filename",
            "timestamp",
            "md5",
            "size",
            "mtime",
            "disc_id",
            "desc",
            "copied"
        ]
    );
    let cols: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('discs') ORDER BY cid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(cols, ["id", "started", "completed", "available"]);
    let types: (String, String, String, String) = conn
        .query_row(
            "SELECT typeof(timestamp), typeof(mtime), typeof(md5), typeof(filename) FROM files",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        types,
        ("real".into(), "real".into(), "text".into(), "text".into())
    );
    let (md5, desc, copied, disc): (String, String, i64, i64) = conn
        .query_row("SELECT md5, desc, copied, disc_id FROM files", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!(md5, md5_bytes(b"abc"));
    assert_eq!((desc.as_str(), copied, disc), ("New file", 1, 1));
    let idx: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type='index' AND name='filenames'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(idx, 1);
    // The by-hand recipe works.
    let id: i64 = conn
        .query_row(
            "SELECT id FROM files WHERE filename LIKE '%a.txt%' AND copied=1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let staged = env
        .workdir
        .join("staging/disc-0001/files")
        .join((id / 256).to_string())
        .join(id.to_string());
    assert_eq!(std::fs::read(staged).unwrap(), b"abc");
}

#[test]
fn non_utf8_names_round_trip_byte_exact() {
    let env = TestEnv::new();
    let name: &[u8] = b"caf\xe9 \xff\xfe.jpg";
    let path = env.watched.join(os(name));
    std::fs::write(&path, b"latin-1 name").unwrap();
    env.init(&[]);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("caf\\xe9 \\xff\\xfe.jpg: New file"));
    let conn = env.catalog();
    let (ty, stored): (String, Vec<u8>) = conn
        .query_row("SELECT typeof(filename), filename FROM files", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(ty, "blob");
    let mut expected = b"/".to_vec();
    expected.extend_from_slice(name);
    assert_eq!(stored, expected);
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
    // Unchanged: nothing staged again.
    let out = env.run(&["monitor"]);
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

#[test]
fn deletions_are_recorded_once() {
    let env = TestEnv::new();
    env.write("keep", b"1");
    env.write("dir/gone", b"2");
    env.init(&[]);
    env.run(&["monitor"]);
    std::fs::remove_file(env.watched.join("dir/gone")).unwrap();
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).ends_with("/dir/gone: Deleted\n"),
        "{}",
        text(&out.stdout)
    );
    let out = env.run(&["monitor"]);
    assert!(out.stdout.is_empty(), "deletion reported twice");
    let (name, file_id): (String, i64) = env
        .catalog()
        .query_row("SELECT filename, file_id FROM deletions", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(name, "/dir/gone");
    let id: i64 = env
        .catalog()
        .query_row("SELECT id FROM files WHERE filename='/dir/gone'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(file_id, id);
    // It comes back: staged again.
    env.write("dir/gone", b"2");
    let out = env.run(&["monitor"]);
    assert!(
        text(&out.stdout).contains("/dir/gone: New file"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn an_emptied_watched_folder_is_not_taken_as_mass_deletion() {
    let env = TestEnv::new();
    env.write("a", b"1");
    env.write("b", b"2");
    env.init(&[]);
    env.run(&["monitor"]);
    for f in ["a", "b"] {
        std::fs::remove_file(env.watched.join(f)).unwrap();
    }
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is it mounted?"),
        "{}",
        text(&out.stderr)
    );
    let n: i64 = env
        .catalog()
        .query_row("SELECT count(*) FROM deletions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn excludes_are_applied() {
    let env = TestEnv::new();
    env.write("keep.jpg", b"1");
    env.write("x.tmp", b"2");
    env.write("deep/.cache/y", b"3");
    env.write("raw/2012/a.nef", b"4");
    env.init(&[
        "--exclude",
        "*.tmp",
        "--exclude",
        ".cache",
        "--exclude",
        "raw/**",
    ]);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0));
    let latest = env.check_invariants();
    assert_eq!(
        latest.keys().cloned().collect::<Vec<_>>(),
        vec![b"/keep.jpg".to_vec()]
    );
}

#[test]
fn a_full_disc_closes_with_a_frozen_catalogue_and_the_next_opens() {
    let env = TestEnv::new();
    // 400 kB discs; the catalogue takes ~40 KiB of each, the image's own
    // structures 128 KiB.
    for i in 0..20 {
        env.write(format!("f{i:02}"), &vec![i as u8; 30_000]);
    }
    env.init(&["--disc-size", "707200"]);
    let out = env.run(&["monitor", "--no-iso"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Disc 1 closed"), "{stdout}");
    let latest = env.check_invariants();
    assert_eq!(latest, tree_md5s(&env.watched));
    let conn = env.catalog();
    let discs: i64 = conn
        .query_row("SELECT count(*) FROM discs", [], |r| r.get(0))
        .unwrap();
    assert!(discs >= 3, "{discs} discs");
    // The snapshot: rollback journal, its own disc completed, all rows of disc 1.
    let snap = env.workdir.join("staging/disc-0001/manifest.db");
    let s = rusqlite::Connection::open_with_flags(
        format!("file:{}?immutable=1", snap.display()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    let mode: String = s
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    let completed: Option<f64> = s
        .query_row("SELECT completed FROM discs WHERE id=1", [], |r| r.get(0))
        .unwrap();
    assert!(completed.is_some());
    let in_snap: i64 = s
        .query_row(
            "SELECT count(*) FROM files WHERE disc_id=1 AND copied=1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let in_live: i64 = conn
        .query_row(
            "SELECT count(*) FROM files WHERE disc_id=1 AND copied=1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(in_snap, in_live);
    assert!(in_snap > 0);
    // Every disc within its size: staged bytes plus the catalogue.
    let mut stmt = conn
        .prepare("SELECT disc_id, sum(size) FROM files WHERE copied=1 GROUP BY disc_id")
        .unwrap();
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .unwrap()
    {
        let (disc, bytes) = row.unwrap();
        assert!(
            bytes < (707_200 - dbackup::disc::FIXED_OVERHEAD) as i64,
            "disc {disc} holds {bytes}"
        );
    }
    // Status reports the closed discs waiting for images.
    let out = env.run(&["status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(st["Discs_closed"].as_u64().unwrap() >= 2);
    assert_eq!(st["Discs_waiting_for_image"][0], 1);
}

#[test]
fn a_file_too_big_for_any_disc_is_reported_and_skipped() {
    let env = TestEnv::new();
    env.write("small", b"fits");
    env.write("huge.mkv", &vec![0u8; 300_000]);
    env.write("z-after", b"also fits");
    env.init(&["--disc-size", "519488"]);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("huge.mkv: skipped: too big for any disc"),
        "{stderr}"
    );
    let latest = env.check_invariants();
    assert_eq!(latest.len(), 2);
    let discs: i64 = env
        .catalog()
        .query_row("SELECT count(*) FROM discs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(discs, 1, "no disc closed for a file that fits none");
    // Reported again next time, never looping.
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

#[test]
fn special_files_are_reported_and_counted_and_links_recorded() {
    let env = TestEnv::new();
    env.write("good", b"ok");
    let fifo = env.watched.join("pipe");
    let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink("nowhere", env.watched.join("dangling")).unwrap();
    std::os::unix::fs::symlink("good", env.watched.join("link")).unwrap();
    env.init(&[]);
    let out = env.run(&["monitor", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("/pipe: skipped: not a regular file (fifo)"),
        "{stderr}"
    );
    // Links, dangling or not, are recorded as links (see tests/tree_stage.rs).
    assert!(!stderr.contains("dangling"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["skipped_files"], 1);
    assert_eq!(report["staged_files"], 1);
    assert_eq!(report["entries_recorded"], 2);
    assert_eq!(env.check_invariants().len(), 1);
}

/// Runs dbackup-stage as an unprivileged user, so permissions bite even when
/// the tests run as root (as CI does).
#[test]
fn an_unreadable_file_is_reported_and_the_rest_staged() {
    let env = TestEnv::new();
    env.write("readable", b"ok");
    let secret = env.write("secret", b"no");
    let locked_dir = env.watched.join("locked");
    std::fs::create_dir(&locked_dir).unwrap();
    std::fs::write(locked_dir.join("inside"), b"x").unwrap();
    use std::os::unix::fs::PermissionsExt;
    if is_root() {
        // Hand everything to nobody, then lock the two entries.
        for p in [env.dir.path(), env.watched.as_path()] {
            chown_tree(p, 65534, 65534);
        }
    }
    let run = |args: &[&str]| {
        let mut cmd = if is_root() {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(bin("dbackup-stage"));
            c
        } else {
            std::process::Command::new(bin("dbackup-stage"))
        };
        cmd.arg("-w")
            .arg(&env.workdir)
            .arg("--no-progress")
            .args(args);
        cmd.output().unwrap()
    };
    let out = run(&["init", env.watched.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(&locked_dir, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = run(&["monitor"]);
    std::fs::set_permissions(&locked_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("/secret: skipped: cannot read: Permission denied"),
        "{stderr}"
    );
    assert!(
        stderr.contains("/locked: skipped: cannot read folder"),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains("/readable: New file"));
    assert_eq!(env.check_invariants().len(), 1);
}

fn chown_tree(root: &Path, uid: u32, gid: u32) {
    for e in walkdir::WalkDir::new(root) {
        let e = e.unwrap();
        std::os::unix::fs::lchown(e.path(), Some(uid), Some(gid)).unwrap();
    }
}

#[test]
fn missing_workdir_or_corrupt_catalogue_is_one_clear_error() {
    let env = TestEnv::new();
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("dbackup-stage: error: "), "{stderr}");
    assert!(stderr.contains("not a dbackup workdir"));
    assert!(!env.workdir.exists(), "nothing written");

    env.write("a", b"1");
    env.init(&[]);
    let db = env.workdir.join("manifest.db");
    std::fs::write(&db, vec![0x5au8; 8192]).unwrap();
    let before = std::fs::read(&db).unwrap();
    for cmd in ["monitor", "status", "close"] {
        let out = env.run(&[cmd]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        assert!(
            text(&out.stderr).starts_with("dbackup-stage: error: "),
            "{cmd}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).contains("panicked"));
    }
    assert_eq!(std::fs::read(&db).unwrap(), before, "catalogue untouched");
    assert_eq!(
        std::fs::read_dir(env.workdir.join("staging/disc-0001/files"))
            .unwrap()
            .count(),
        0
    );

    // A missing watched folder.
    let env = TestEnv::new();
    env.init(&[]);
    std::fs::remove_dir(&env.watched).unwrap();
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is it mounted?"));
}

#[test]
fn a_second_run_while_one_holds_the_lock_exits_75() {
    let env = TestEnv::new();
    env.write("a", b"1");
    env.init(&[]);
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(env.workdir.join("lock"))
        .unwrap();
    lock.lock().unwrap();
    for cmd in ["monitor", "close"] {
        let out = env.run(&[cmd]);
        assert_eq!(out.status.code(), Some(75), "{cmd}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("another dbackup run holds the lock"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    // With -q the exit code alone says it (cron mails nothing).
    for cmd in ["monitor", "close"] {
        let out = env.run(&["-q", cmd, "--cron"][..if cmd == "monitor" { 3 } else { 2 }]);
        assert_eq!(out.status.code(), Some(75), "{cmd}");
        assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty());
    }
    // Reading is never blocked.
    assert_eq!(env.run(&["status"]).status.code(), Some(0));
    drop(lock);
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
}

#[test]
fn two_monitors_at_once_never_corrupt_the_set() {
    let env = TestEnv::new();
    for i in 0..3000 {
        env.write(format!("d{}/f{i}", i % 30), format!("file {i}").as_bytes());
    }
    env.init(&[]);
    let a = env
        .stage()
        .arg("monitor")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let b = env.stage().arg("monitor").output().unwrap();
    let a = a.wait_with_output().unwrap();
    let codes = [a.status.code().unwrap(), b.status.code().unwrap()];
    assert!(codes.iter().all(|c| *c == 0 || *c == 75), "{codes:?}");
    assert!(codes.contains(&0));
    if b.status.code() == Some(75) {
        assert_eq!(text(&b.stderr).lines().count(), 1, "{}", text(&b.stderr));
    }
    env.run(&["monitor"]);
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
}

#[test]
fn close_closes_the_open_disc_now() {
    let env = TestEnv::new();
    env.write("a", b"1");
    env.init(&[]);
    let out = env.run(&["close"]);
    assert_eq!(out.status.code(), Some(2), "an empty disc is not closed");
    assert!(text(&out.stderr).contains("empty"));
    env.run(&["monitor"]);
    let out = env.run(&["close", "--no-iso"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Disc 1 closed: 1 file,"));
    assert!(text(&out.stdout).contains("Current Disc: 2"));
    assert!(env.workdir.join("staging/disc-0001/manifest.db").is_file());
    assert!(env.workdir.join("staging/disc-0002/files").is_dir());
    env.write("b", b"2");
    env.run(&["monitor"]);
    let disc: i64 = env
        .catalog()
        .query_row("SELECT disc_id FROM files WHERE filename='/b'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(disc, 2);
    env.check_invariants();
}

#[test]
fn status_has_the_original_keys_and_json() {
    let env = TestEnv::new();
    env.write("a", &[1u8; 3000]);
    env.init(&[]);
    env.run(&["monitor"]);
    let out = env.run(&["status"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    for key in [
        "Staging_dir",
        "Watched_dir",
        "Current_disc",
        "Disc_threshold",
        "Current_usage",
        "Disc_Pct_full",
        "Database_size",
        "Files_size",
        "Pct_database",
        "Pct_db_overhead",
        "available_isos",
        "Files_backed_up",
        "Bytes_backed_up",
        "Discs_closed",
        "Last_run",
    ] {
        assert!(
            stdout.contains(&format!("\n{key}: ")) || stdout.starts_with(&format!("{key}: ")),
            "{key} missing in {stdout}"
        );
    }
    assert!(stdout.contains("Current_disc: 1\n"));
    assert!(stdout.contains("Files_size: 3000\n"));
    let out = env.run(&["status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["Files_backed_up"], 1);
    assert_eq!(st["Disc_threshold"], 3_525_279_744u64);
    let usage = st["Current_usage"].as_u64().unwrap();
    // One file: 2 sectors, its overhead, the image's fixed part, the catalogue.
    assert_eq!(
        usage,
        4096 + 512 + dbackup::disc::FIXED_OVERHEAD + st["Database_size"].as_u64().unwrap()
    );
}

#[test]
fn dry_run_writes_nothing() {
    let env = TestEnv::new();
    env.write("a", b"1");
    env.init(&[]);
    let before = std::fs::read(env.workdir.join("manifest.db")).unwrap();
    let out = env.run(&["monitor", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("/a: New file"));
    assert_eq!(
        std::fs::read(env.workdir.join("manifest.db")).unwrap(),
        before
    );
    let n: i64 = env
        .catalog()
        .query_row("SELECT count(*) FROM files", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn workdir_from_the_environment() {
    let env = TestEnv::new();
    env.write("a", b"1");
    env.init(&[]);
    let out = std::process::Command::new(bin("dbackup-stage"))
        .env("DBACKUP_WORKDIR", &env.workdir)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

fn set_mtime(p: &Path, secs: u64, nanos: u32) {
    std::fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos))
        .unwrap();
}

#[test]
fn a_same_size_edit_after_a_whole_second_mtime_is_staged() {
    let env = TestEnv::new();
    let p = env.write("whole", b"first");
    set_mtime(&p, 1_700_000_000, 0);
    env.init(&[]);
    let out = env.run(&["monitor", "--no-iso"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // SQLite keeps a REAL of a whole second as an INTEGER.
    let kind: String = env
        .catalog()
        .query_row("SELECT typeof(mtime) FROM files", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kind, "integer");
    std::fs::write(&p, b"secnd").unwrap();
    set_mtime(&p, 1_700_000_000, 500_000_000);
    let out = env.run(&["monitor", "--no-iso"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Modification time changed"),
        "{}",
        text(&out.stdout)
    );
    // And back to the whole second, at the same size again.
    std::fs::write(&p, b"third").unwrap();
    set_mtime(&p, 1_700_000_000, 0);
    let out = env.run(&["monitor", "--no-iso"]);
    assert!(!out.stdout.is_empty(), "the edit back was missed");
    let out = env.run(&["monitor", "--no-iso"]);
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let latest = env.check_invariants();
    assert_eq!(latest[&b"/whole".to_vec()], md5_bytes(b"third"));
}

/// Runs dbackup-stage under a time limit, so a loop fails the test instead
/// of hanging it.
fn run_bounded(env: &TestEnv, args: &[&str]) -> std::process::Output {
    std::process::Command::new("timeout")
        .arg("120")
        .arg(bin("dbackup-stage"))
        .arg("-w")
        .arg(&env.workdir)
        .arg("--no-progress")
        .args(args)
        .env_remove("FAILPOINTS")
        .output()
        .unwrap()
}

/// A file that fits an empty disc only while the catalogue is small: by
/// the time its disc comes the catalogue has grown, so it is split, and no
/// disc is closed empty for it.
#[test]
fn a_file_that_fits_only_while_the_catalogue_is_small_is_split_and_closes_no_empty_disc() {
    let env = TestEnv::new();
    for i in 0..300 {
        env.write(format!("{}{i:03}", "a".repeat(197)), b"x");
    }
    env.write("big", &vec![7u8; 9_826_304]);
    env.init(&["--disc-size", "10M"]);
    let out = run_bounded(&env, &["monitor", "--no-iso"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("big: New file (split into 2 parts on discs 1-2)"),
        "{}",
        text(&out.stdout)
    );
    let conn = env.catalog();
    let empty_closed: i64 = conn
        .query_row(
            "SELECT count(*) FROM discs WHERE completed IS NOT NULL
             AND id NOT IN (SELECT disc_id FROM files WHERE copied=1)
             AND id NOT IN (SELECT disc_id FROM parts WHERE copied=1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(empty_closed, 0);
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
    let again = run_bounded(&env, &["monitor", "--no-iso"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(again.stdout.is_empty() && again.stderr.is_empty());
}

#[test]
fn a_deferred_file_that_fits_an_empty_disc_is_staged_on_the_next() {
    let env = TestEnv::new();
    for i in 0..20 {
        env.write(format!("a{i:02}"), &vec![i as u8; 20_000]);
    }
    env.write("big", &vec![1u8; 250_000]);
    env.init(&["--disc-size", "907200"]);
    let out = run_bounded(&env, &["monitor", "--no-iso"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
}

#[test]
fn a_disc_size_no_file_could_fit_is_refused() {
    for size in ["1k", "503807", "100KiB", "192KiB"] {
        let env = TestEnv::new();
        let out = env.run(&["init", env.watched.to_str().unwrap(), "--disc-size", size]);
        assert_eq!(out.status.code(), Some(2), "{size}");
        assert!(
            text(&out.stderr).contains("below the minimum of 503808 bytes"),
            "{}",
            text(&out.stderr)
        );
        assert!(!env.workdir.join("manifest.db").exists(), "{size}");
    }
    let env = TestEnv::new();
    env.init(&["--disc-size", "492KiB"]);
    let out = env.run(&["config", "disc_size", "1k"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("below the minimum"));
}

#[test]
fn config_lists_every_setting_and_changes_excludes_and_the_disc_size() {
    let env = TestEnv::new();
    env.write("keep.txt", b"keep");
    env.write("big.iso", &vec![0u8; 300_000]);
    let fifo = env.watched.join("pipe");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // Discs too small to take the big file even in parts.
    env.init(&["--disc-size", "519488", "--exclude", "*.tmp"]);
    let out = env.run(&["config"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    let keys: Vec<&str> = listed
        .lines()
        .map(|l| l.split(": ").next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "watched",
            "name",
            "uuid",
            "disc_size",
            "excludes",
            "ecc",
            "labels",
            "parity",
            "copies",
            "check_every",
            "report_html",
            "on_disc_ready"
        ]
    );
    assert!(listed.contains("parity: off"), "{listed}");
    assert!(listed.contains("labels: off\n"), "{listed}");
    assert!(listed.contains("copies: 1\n"), "{listed}");
    assert!(listed.contains("check_every: 12m\n"), "{listed}");
    assert!(listed.contains("excludes: [\"*.tmp\"]"), "{listed}");
    assert!(listed.contains("disc_size: 519488 ("), "{listed}");
    // The fifo and the too-big file are reported on every run...
    let out = env.run(&["monitor", "--no-iso"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).lines().count(),
        2,
        "{}",
        text(&out.stderr)
    );
    // ...until excludes leave them out: then the run is silent.
    let out = env.run(&["config", "excludes", "*.tmp", "pipe", "*.iso"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = env.run(&["config", "excludes"]);
    assert_eq!(text(&out.stdout), "*.tmp\npipe\n*.iso\n");
    let out = env.run(&["monitor", "--no-iso"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    // A bad pattern is refused and nothing changes.
    let out = env.run(&["config", "excludes", "["]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.run(&["config", "excludes"]);
    assert_eq!(text(&out.stdout), "*.tmp\npipe\n*.iso\n");
    // A larger disc size takes the big file; the fifo stays excluded.
    let out = env.run(&["config", "excludes", "pipe"]);
    assert_eq!(out.status.code(), Some(0));
    let out = env.run(&["config", "disc_size", "1M"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = env.run(&["config", "disc_size"]);
    assert_eq!(text(&out.stdout), "1000000\n");
    let out = env.run(&["monitor", "--no-iso"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("big.iso: New file"));
    // Smaller than what the open disc holds: refused, with what to do.
    let out = env.run(&["config", "disc_size", "519488"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("close it first"),
        "{}",
        text(&out.stderr)
    );
    let out = env.run(&["config", "disc_size"]);
    assert_eq!(text(&out.stdout), "1000000\n");
    // Clearing the list; fixed settings stay fixed.
    let out = env.run(&["config", "excludes", ""]);
    assert_eq!(out.status.code(), Some(0));
    let out = env.run(&["config", "excludes"]);
    assert!(out.stdout.is_empty());
    let out = env.run(&["config", "uuid", "x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn monitor_escapes_names_and_cron_prints_one_line() {
    let env = TestEnv::new();
    env.write("plain", &vec![1u8; 20_000]);
    env.write("two\nlines", b"a newline in its name");
    env.write("esc\x1b[31mred", b"an escape sequence in its name");
    env.init(&["--disc-size", "707200"]);
    let out = env.run(&["monitor", "--no-iso"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains('\x1b'), "{stdout:?}");
    assert_eq!(stdout.lines().count(), 3, "one line a file: {stdout:?}");
    assert!(stdout.contains("two\\nlines: New file"), "{stdout:?}");
    assert!(stdout.contains("esc\\u{1b}[31mred: New file"), "{stdout:?}");
    // --cron: one line, even when discs close and images are made.
    for i in 0..8 {
        env.write(format!("more{i}"), &vec![i as u8; 30_000]);
    }
    let out = env.run(&["monitor", "--cron"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("dbackup: 8 files staged ("), "{stdout}");
    assert!(stdout.contains("disc 1 closed"), "{stdout}");
    assert!(stdout.contains("disc 1 ready to burn: "), "{stdout}");
    // Singular where there is one.
    env.write("one more", b"x");
    let out = env.run(&["monitor", "--cron", "--no-iso"]);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("dbackup: 1 file staged ("), "{stdout}");
    let out = env.run(&["monitor", "--cron"]);
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

/// After a stop on a full filesystem, the summary's usage of the open disc
/// is what was really staged, the figure `status` gives; whatever the
/// instant of the stop.
#[test]
fn after_a_full_filesystem_the_summary_usage_is_what_status_says() {
    for after in [0, 1, 3, 7] {
        let env = TestEnv::new();
        for i in 0..12 {
            env.write(format!("f{i:02}.bin"), &vec![i as u8; 150_000]);
        }
        env.init(&["--disc-size", "50M"]);
        let out = env
            .stage()
            .args(["monitor", "--json"])
            .env(
                "FAILPOINTS",
                format!("stage::write={after}*off->1*return(enospc)"),
            )
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let status = env.run(&["status", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(
            report["open_disc_usage"], status["Current_usage"],
            "stop after {after} copies: {report} / {status}"
        );
    }
}

/// A copy's partial or final name left in the staging area where the next
/// copies go (by a removal that failed in an earlier run) is ours: it is
/// replaced, never written through (a symbolic link in its place is not
/// followed), and the copies are staged whole.
#[test]
fn names_left_where_the_next_copies_go_are_replaced_not_followed() {
    let env = TestEnv::new();
    for i in 0..4u8 {
        env.write(format!("f{i}"), &vec![i; 3000 + usize::from(i)]);
    }
    env.init(&[]);
    let outside = env.dir.path().join("outside");
    std::fs::write(&outside, b"not ours").unwrap();
    for id in 1..=4 {
        let target = staged_path(&env.workdir, 1, id);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let partial = target.with_file_name(format!("{id}.partial"));
        if id % 2 == 1 {
            std::os::unix::fs::symlink(&outside, &partial).unwrap();
        } else {
            std::fs::write(&partial, b"left over").unwrap();
            std::fs::write(&target, b"left over too").unwrap();
        }
    }
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&outside).unwrap(), b"not ours");
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
    let left: Vec<_> = std::fs::read_dir(staged_path(&env.workdir, 1, 1).parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Large copies are written around the page cache in whole blocks, their
/// tails through it: every size about the threshold (1 MiB) and about the
/// copy buffer and block boundaries is staged byte for byte, in one batch
/// with small files.
#[test]
fn large_copies_are_exact_at_every_block_boundary() {
    let env = TestEnv::new();
    let mib = 1usize << 20;
    let sizes = [
        mib - 1,
        mib,
        mib + 1,
        mib + 4095,
        mib + 4096,
        mib + 4097,
        (256 << 10) * 5 + 123,
        3 * mib + 512,
        5000,
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for (i, &size) in sizes.iter().enumerate() {
        let data = random_bytes(&mut state, size);
        env.write(format!("f{i}"), &data);
    }
    env.init(&[]);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
    let conn = env.catalog();
    for (i, _) in sizes.iter().enumerate() {
        let (id, disc): (i64, i64) = conn
            .query_row(
                "SELECT id, disc_id FROM files WHERE filename=?1 AND copied=1",
                [format!("/f{i}")],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let staged = std::fs::read(staged_path(&env.workdir, disc, id)).unwrap();
        let source = std::fs::read(env.watched.join(format!("f{i}"))).unwrap();
        assert!(staged == source, "f{i} ({} bytes) differs", source.len());
    }
}
