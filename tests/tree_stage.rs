//! What the scan records of a tree beyond regular files' content (see
//! docs/tree.md): folders (empty ones too), symbolic links (relative,
//! absolute, dangling, to folders) with their targets as bytes, further
//! names of hard-linked files, and each version's mode, owner and exact
//! mtime; which changes make a new version (a nanosecond of mtime, a new
//! link target, a kind that changes), and which do not (an unchanged
//! rescan records nothing and prints nothing).

mod common;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use common::*;

/// Live entries: name -> (kind, target, mode, mtime_sec, mtime_nsec).
type Entries = BTreeMap<Vec<u8>, (String, Vec<u8>, i64, i64, i64)>;

fn live_entries(env: &TestEnv) -> Entries {
    let conn = env.catalog();
    let mut stmt = conn
        .prepare(
            "SELECT filename, kind, coalesce(target, x''), mode, mtime_sec, mtime_nsec FROM entries e
             WHERE deleted IS NULL AND id = (SELECT max(id) FROM entries WHERE filename = e.filename)",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            let name = match r.get_ref(0)? {
                rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                    b.to_vec()
                }
                _ => panic!("bad name"),
            };
            let target = match r.get_ref(2)? {
                rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                    b.to_vec()
                }
                _ => panic!("bad target"),
            };
            Ok((name, (r.get(1)?, target, r.get(3)?, r.get(4)?, r.get(5)?)))
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

fn count(env: &TestEnv, sql: &str) -> i64 {
    env.catalog().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn set_mtime(p: &Path, secs: u64, nanos: u32) {
    let t = UNIX_EPOCH + Duration::new(secs, nanos);
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(t).unwrap();
}

fn monitor(env: &TestEnv) -> String {
    let out = ok(env.run(&["monitor", "--cron"]), "monitor");
    text(&out.stdout)
}

#[test]
fn links_folders_and_attrs_are_recorded_as_they_are() {
    let env = TestEnv::new();
    let f = env.write("a/f.jpg", b"photo");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    set_mtime(&f, 13_569_465_600, 123_456_789); // year 2400, exact ns
    std::fs::create_dir_all(env.watched.join("a/empty/deeper")).unwrap();
    std::fs::set_permissions(
        env.watched.join("a/empty"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    symlink("f.jpg", env.watched.join("a/rel")).unwrap();
    symlink("/etc/passwd", env.watched.join("a/abs")).unwrap();
    symlink("no/such", env.watched.join("a/dangling")).unwrap();
    symlink("empty", env.watched.join("a/to-dir")).unwrap();
    // A target that is not UTF-8 is kept as bytes.
    symlink(
        std::ffi::OsStr::from_bytes(b"caf\xe9"),
        env.watched.join("a/bytes"),
    )
    .unwrap();
    std::fs::hard_link(&f, env.watched.join("b-hard.jpg")).unwrap();
    env.init(&[]);
    let out = monitor(&env);
    assert!(out.contains("recorded"), "{out}");

    let e = live_entries(&env);
    let kinds: Vec<(String, String)> = e
        .iter()
        .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.0.clone()))
        .collect();
    let want = [
        ("/a", "dir"),
        ("/a/abs", "symlink"),
        ("/a/bytes", "symlink"),
        ("/a/dangling", "symlink"),
        ("/a/empty", "dir"),
        ("/a/empty/deeper", "dir"),
        ("/a/rel", "symlink"),
        ("/a/to-dir", "symlink"),
        ("/b-hard.jpg", "hardlink"),
    ];
    assert_eq!(
        kinds,
        want.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(e[&b"/a/abs".to_vec()].1, b"/etc/passwd");
    assert_eq!(e[&b"/a/bytes".to_vec()].1, b"caf\xe9");
    assert_eq!(e[&b"/a/dangling".to_vec()].1, b"no/such");
    // A hard link names the first name of its file, whose content is
    // stored once.
    assert_eq!(e[&b"/b-hard.jpg".to_vec()].1, b"/a/f.jpg");
    assert_eq!(count(&env, "SELECT count(*) FROM files"), 1);
    assert_eq!(e[&b"/a/empty".to_vec()].2, 0o700);
    let m = std::fs::metadata(env.watched.join("a/empty")).unwrap();
    assert_eq!(
        (e[&b"/a/empty".to_vec()].3, e[&b"/a/empty".to_vec()].4),
        (m.mtime(), m.mtime_nsec())
    );
    // The file's version: mode and the exact mtime beside the REAL one.
    let (mode, sec, nsec, uid): (i64, i64, i64, i64) = env
        .catalog()
        .query_row(
            "SELECT mode, mtime_sec, mtime_nsec, uid FROM attrs JOIN files ON id = file_id
             WHERE filename = '/a/f.jpg'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((mode, sec, nsec), (0o640, 13_569_465_600, 123_456_789));
    assert_eq!(uid, i64::from(std::fs::metadata(&f).unwrap().uid()));
    assert_eq!(count(&env, "PRAGMA user_version"), 4);

    // Unchanged: nothing recorded, nothing printed.
    let before = count(&env, "SELECT count(*) FROM entries");
    assert_eq!(monitor(&env), "");
    assert_eq!(count(&env, "SELECT count(*) FROM entries"), before);
}

#[test]
fn a_nanosecond_a_new_target_or_a_new_kind_is_a_new_version() {
    let env = TestEnv::new();
    let f = env.write("f", b"same size");
    set_mtime(&f, 1_700_000_000, 500);
    symlink("one", env.watched.join("l")).unwrap();
    std::fs::create_dir(env.watched.join("d")).unwrap();
    env.init(&[]);
    monitor(&env);
    assert_eq!(count(&env, "SELECT count(*) FROM files"), 1);

    // One nanosecond later, same size and the same whole second and
    // microsecond: a new version.
    std::fs::write(&f, b"SAME SIZE").unwrap();
    set_mtime(&f, 1_700_000_000, 501);
    // Same length of target, new target: a new version of the link.
    std::fs::remove_file(env.watched.join("l")).unwrap();
    symlink("two", env.watched.join("l")).unwrap();
    // A folder that turns into a link, a link that turns into a file.
    std::fs::remove_dir(env.watched.join("d")).unwrap();
    symlink("f", env.watched.join("d")).unwrap();
    monitor(&env);
    assert_eq!(count(&env, "SELECT count(*) FROM files"), 2);
    let e = live_entries(&env);
    assert_eq!(e[&b"/l".to_vec()].1, b"two");
    assert_eq!(e[&b"/d".to_vec()].0, "symlink");

    std::fs::remove_file(env.watched.join("l")).unwrap();
    env.write("l", b"now a file");
    monitor(&env);
    let e = live_entries(&env);
    assert!(!e.contains_key(b"/l".as_slice()), "{e:?}");
    assert_eq!(
        count(&env, "SELECT count(*) FROM files WHERE filename='/l'"),
        1
    );
    // And back: the file is recorded deleted when it turns into a link.
    std::fs::remove_file(env.watched.join("l")).unwrap();
    symlink("three", env.watched.join("l")).unwrap();
    monitor(&env);
    assert_eq!(
        count(&env, "SELECT count(*) FROM deletions WHERE filename='/l'"),
        1
    );
    assert_eq!(live_entries(&env)[&b"/l".to_vec()].1, b"three");
}

#[test]
fn gone_excluded_and_unmounted() {
    let env = TestEnv::new();
    env.write("keep", b"k");
    std::fs::create_dir(env.watched.join("gone")).unwrap();
    symlink("x", env.watched.join("link.tmp")).unwrap();
    symlink("x", env.watched.join("link")).unwrap();
    env.init(&["--exclude", "*.tmp"]);
    monitor(&env);
    let e = live_entries(&env);
    assert!(!e.contains_key(b"/link.tmp".as_slice()), "excluded: {e:?}");
    assert!(e.contains_key(b"/gone".as_slice()));

    std::fs::remove_dir(env.watched.join("gone")).unwrap();
    std::fs::remove_file(env.watched.join("link")).unwrap();
    let out = monitor(&env);
    assert!(out.contains("2 folders and links gone"), "{out}");
    assert!(live_entries(&env).is_empty());

    // A watched folder found empty looks unmounted: nothing is recorded
    // gone, of files or of entries.
    std::fs::create_dir(env.watched.join("again")).unwrap();
    monitor(&env);
    let entries = count(&env, "SELECT count(*) FROM entries WHERE deleted IS NULL");
    std::fs::remove_file(env.watched.join("keep")).unwrap();
    std::fs::remove_dir(env.watched.join("again")).unwrap();
    let out = env.run(&["monitor"]);
    assert!(
        text(&out.stderr).contains("is it mounted"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        count(&env, "SELECT count(*) FROM entries WHERE deleted IS NULL"),
        entries
    );
}

#[test]
fn a_disc_with_only_new_links_can_be_closed() {
    let env = TestEnv::new();
    env.write("f", b"data");
    env.init(&[]);
    monitor(&env);
    ok(env.run(&["close", "--no-iso"]), "close");
    // Nothing new: refused.
    let out = env.run(&["close", "--no-iso"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // A new link is news for the discs.
    symlink("f", env.watched.join("l")).unwrap();
    monitor(&env);
    ok(env.run(&["close", "--no-iso"]), "close with a new link");
}

#[test]
fn a_set_made_before_the_tree_tables_gains_them_and_keeps_its_versions() {
    let env = TestEnv::new();
    let f = env.write("old", b"old file");
    set_mtime(&f, 1_600_000_000, 123_456_789);
    env.init(&[]);
    monitor(&env);
    // As a catalogue from before: no tree tables, schema version 3.
    let conn = env.catalog();
    conn.execute_batch("DROP TABLE attrs; DROP TABLE entries; PRAGMA user_version=3;")
        .unwrap();
    drop(conn);
    std::fs::create_dir(env.watched.join("new-folder")).unwrap();
    let out = monitor(&env);
    // The old version is unchanged (its REAL mtime still matches) and not
    // copied again; the folder is recorded.
    assert!(
        !out.contains("staged (") || out.contains("0 files staged"),
        "{out}"
    );
    assert_eq!(count(&env, "SELECT count(*) FROM files"), 1);
    assert_eq!(count(&env, "SELECT count(*) FROM attrs"), 0);
    assert!(live_entries(&env).contains_key(b"/new-folder".as_slice()));
    assert_eq!(count(&env, "PRAGMA user_version"), 4);
}

#[test]
fn a_mode_change_alone_makes_no_new_version() {
    let env = TestEnv::new();
    let f = env.write("f", b"data");
    env.init(&[]);
    monitor(&env);
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(monitor(&env), "");
    assert_eq!(count(&env, "SELECT count(*) FROM files"), 1);
    // With the next content change, the new mode is recorded.
    std::fs::write(&f, b"new data").unwrap();
    monitor(&env);
    assert_eq!(
        count(&env, "SELECT mode FROM attrs ORDER BY file_id DESC LIMIT 1"),
        0o600
    );
}
