//! dbackup-find through the real binary, on sets built with the capture
//! tools and on discs in the original dBackup's format.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn find(discs: &[&Path], args: &[&str]) -> Output {
    let mut c = Command::new(bin("dbackup-find"));
    for d in discs {
        c.arg("-d").arg(d);
    }
    c.arg("--no-progress").args(args).output().unwrap()
}

fn json(out: &Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.code() == Some(0),
        "exit {:?}: {}",
        out.status.code(),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn names(rows: &[serde_json::Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["filename"].as_str().unwrap().to_string())
        .collect()
}

/// Three discs: disc 1 with the first photos, then a change to one, a
/// deletion of another, more photos on disc 2, a last file on disc 3.
/// Returns the env, the time between the two rounds, and the isos folder.
fn history_set() -> (TestEnv, f64, PathBuf) {
    let env = TestEnv::new();
    env.write("2012/holiday/IMG_0001.jpg", b"first version");
    env.write("2012/holiday/IMG_0002.JPG", b"upper case");
    env.write("2012/notes.txt", b"to be deleted");
    env.write("music/song.flac", b"la la");
    env.init(&["--name", "Photos"]);
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    std::thread::sleep(std::time::Duration::from_millis(50));
    let between = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    std::thread::sleep(std::time::Duration::from_millis(50));
    env.write("2012/holiday/IMG_0001.jpg", b"second, longer version");
    std::fs::remove_file(env.watched.join("2012/notes.txt")).unwrap();
    env.write("2013/IMG_0100.jpg", b"new year");
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    env.write("2014/last.jpg", b"last");
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    let isos = env.workdir.join("isos");
    (env, between, isos)
}

#[test]
fn find_by_glob_by_name_and_case() {
    let (_env, _, isos) = history_set();
    let rows = json(&find(&[&isos], &["--json", "**/*.jpg"]));
    assert_eq!(
        names(&rows),
        [
            "/2012/holiday/IMG_0001.jpg",
            "/2013/IMG_0100.jpg",
            "/2014/last.jpg"
        ]
    );
    let rows = json(&find(&[&isos], &["--json", "-i", "**/*.jpg"]));
    assert_eq!(rows.len(), 4, "case-insensitive finds the .JPG too");
    let rows = json(&find(&[&isos], &["--json", "2012/**"]));
    assert_eq!(
        names(&rows),
        ["/2012/holiday/IMG_0001.jpg", "/2012/holiday/IMG_0002.JPG"],
        "the deleted notes.txt is not listed"
    );
    // A pattern without a slash matches the name in any folder.
    let rows = json(&find(&[&isos], &["--json", "IMG_0001*"]));
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    for key in [
        "filename",
        "id",
        "disc",
        "md5",
        "size",
        "mtime",
        "timestamp",
    ] {
        assert!(!r[key].is_null(), "{key} missing in {r}");
    }
    assert_eq!(r["versions"], 2);
    assert_eq!(r["disc"], 2);
    assert_eq!(r["md5"], md5_bytes(b"second, longer version"));
    assert_eq!(r["size"], 22);
    assert_eq!(r["availability"], "given");
}

#[test]
fn all_versions_as_of_and_deleted() {
    let (_env, between, isos) = history_set();
    let rows = json(&find(
        &[&isos],
        &["--json", "--all-versions", "IMG_0001.jpg"],
    ));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["md5"], md5_bytes(b"first version"));
    assert_eq!(rows[1]["md5"], md5_bytes(b"second, longer version"));
    assert!(rows[0]["id"].as_i64() < rows[1]["id"].as_i64());

    let when = format!("{between:.3}");
    let rows = json(&find(&[&isos], &["--json", "--as-of", &when, "2012/**"]));
    assert_eq!(
        names(&rows),
        [
            "/2012/holiday/IMG_0001.jpg",
            "/2012/holiday/IMG_0002.JPG",
            "/2012/notes.txt"
        ]
    );
    assert_eq!(rows[0]["md5"], md5_bytes(b"first version"));
    assert_eq!(rows[0]["versions"], 1);

    let rows = json(&find(&[&isos], &["--json", "--deleted"]));
    assert_eq!(names(&rows), ["/2012/notes.txt"]);
    assert!(rows[0]["deleted"].as_f64().unwrap() > between);
    let out = find(&[&isos], &["--json", "--deleted", "--as-of", &when]);
    assert_eq!(out.status.code(), Some(1), "not deleted yet back then");
}

#[test]
fn tables_on_terminals_tabs_in_pipes_and_exit_1_for_nothing() {
    let (_env, _, isos) = history_set();
    let out = find(&[&isos], &["song*"]);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(lines[0], "path\tversions\tlast backup\tsize\tdisc\tdisc is");
    let cols: Vec<&str> = lines[1].split('\t').collect();
    assert_eq!(cols[0], "/music/song.flac");
    assert_eq!(cols[1], "1");
    assert_eq!(cols[3], "5");
    assert_eq!(cols[4], "1");
    assert_eq!(cols[5], "given");
    let out = find(&[&isos], &["no-such-file"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("nothing matched"));
}

#[test]
fn discs_not_given_and_lost_discs_are_shown() {
    let (env, _, isos) = history_set();
    // Only the newest disc: the history is all there, the others not given.
    let rows = json(&find(&[&isos.join("disc-3.iso")], &["--json", "song.flac"]));
    assert_eq!(rows[0]["availability"], "not_given");
    // Mark disc 1 lost, close one more disc so its manifest says so.
    env.catalog()
        .execute("UPDATE discs SET available=0 WHERE id=1", [])
        .unwrap();
    env.write("2015/more.jpg", b"more");
    env.run(&["monitor"]);
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    let rows = json(&find(&[&isos], &["--json", "song.flac"]));
    assert_eq!(rows[0]["availability"], "lost");
    let out = find(&[&isos], &["song.flac"]);
    assert!(
        text(&out.stdout).contains("\tlost"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn mounted_discs_and_other_sets() {
    let (_env, _, isos) = history_set();
    let mounted = tempfile::tempdir().unwrap();
    bsdtar_extract(&isos.join("disc-2.iso"), mounted.path());
    let rows = json(&find(&[mounted.path()], &["--json", "IMG_0100.jpg"]));
    assert_eq!(rows[0]["disc"], 2);
    // A disc of another set is refused, clearly.
    let (_other, _, other_isos) = history_set();
    let out = find(&[&isos, &other_isos.join("disc-1.iso")], &["*"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not of set"), "{stderr}");
    assert!(stderr.contains("disc-1.iso"), "{stderr}");
}

#[test]
fn discs_of_the_original_dbackup_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let discs = original_set(
        dir.path(),
        &[
            vec![
                ("/2012/IMG_0001.jpg", b"one".to_vec()),
                ("/a.txt", b"a".to_vec()),
            ],
            vec![("/2012/IMG_0001.jpg", b"one, edited".to_vec())],
        ],
    );
    let rows = json(&find(
        &[&discs[0], &discs[1]],
        &["--json", "--all-versions", "IMG_0001*"],
    ));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["disc"], 2);
    assert_eq!(rows[1]["md5"], md5_bytes(b"one, edited"));
    // The leftover copied=0 row is never a backup.
    let out = find(&[&discs[1]], &["copied"]);
    assert_eq!(out.status.code(), Some(1));
    let rows = json(&find(&[&discs[1]], &["--json"]));
    assert_eq!(names(&rows), ["/2012/IMG_0001.jpg", "/a.txt"]);
}

#[test]
fn a_hostile_manifest_is_an_error_or_skipped_rows_never_a_panic() {
    let (_env, _, isos) = history_set();
    let mounted = tempfile::tempdir().unwrap();
    bsdtar_extract(&isos.join("disc-3.iso"), mounted.path());
    let db = mounted.path().join("manifest.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "UPDATE files SET md5=NULL WHERE id=1;
         UPDATE files SET size=-5 WHERE id=2;
         UPDATE files SET filename=x'00ff' WHERE id=3;
         INSERT INTO files VALUES (9999, NULL, 'x', 'y', 'z', NULL, NULL, NULL, 1);",
    )
    .unwrap();
    drop(conn);
    let out = find(&[mounted.path()], &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("malformed rows"),
        "{}",
        text(&out.stderr)
    );
    // Not SQLite at all.
    std::fs::write(&db, b"definitely not a database").unwrap();
    let out = find(&[mounted.path()], &["*"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!text(&out.stderr).contains("panicked"));
    assert!(text(&out.stderr).starts_with("dbackup-find: error: "));
}

/// `[!...]` negates a class, as in a shell; the SQL prefilter once handed
/// it to SQLite's GLOB, which reads `!` as a member, so nothing matched
/// unless `-i` was given.
#[test]
fn negated_classes_match_with_and_without_ignore_case() {
    let (_env, _, isos) = history_set();
    for extra in [&[][..], &["-i"][..]] {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        args.push("IMG_000[!1]*");
        let rows = json(&find(&[&isos], &args));
        assert_eq!(names(&rows), ["/2012/holiday/IMG_0002.JPG"], "{args:?}");
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        args.push("[!I]*.jpg");
        let rows = json(&find(&[&isos], &args));
        assert_eq!(names(&rows), ["/2014/last.jpg"], "{args:?}");
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        args.push("201[!2]/**");
        let rows = json(&find(&[&isos], &args));
        assert_eq!(
            names(&rows),
            ["/2013/IMG_0100.jpg", "/2014/last.jpg"],
            "{args:?}"
        );
    }
}

#[test]
fn a_closed_stdout_or_stderr_keeps_the_exit_code() {
    let (_env, _, isos) = history_set();
    for close_stderr in [false, true] {
        for form in [&[][..], &["--json"][..], &["--all-versions"][..]] {
            for (pattern, want) in [("**/*.jpg", 0), ("no-such-file", 1)] {
                let mut cmd = Command::new(bin("dbackup-find"));
                cmd.arg("-d")
                    .arg(&isos)
                    .arg("--no-progress")
                    .args(form)
                    .arg(pattern);
                let (code, stderr) = with_closed_output(cmd, close_stderr);
                assert_eq!(
                    code,
                    Some(want),
                    "{pattern} {form:?} stderr closed: {close_stderr}: {stderr}"
                );
                assert!(!stderr.contains("panicked"), "{stderr}");
            }
        }
    }
}

/// A name with an escape sequence and a line break is shown escaped in a
/// pipe too (cron mails a pipe): no raw ESC or extra line reaches it.
/// `--json` keeps the exact name.
#[test]
fn control_characters_in_names_are_escaped_in_a_pipe() {
    let env = TestEnv::new();
    let evil = "evil\x1b[2J\nname.txt";
    env.write(evil, b"x");
    env.write("plain.txt", b"y");
    env.init(&[]);
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    let isos = env.workdir.join("isos");
    for form in [&[][..], &["--all-versions"][..], &["-i"][..]] {
        let mut args = form.to_vec();
        args.push("*.txt");
        let out = find(&[&isos], &args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(!stdout.contains('\x1b'), "{stdout:?}");
        assert_eq!(stdout.lines().count(), 3, "{stdout:?}");
        assert!(stdout.contains(r"evil\u{1b}[2J\nname.txt"), "{stdout:?}");
    }
    let rows = json(&find(&[&isos], &["--json", "evil*"]));
    assert_eq!(names(&rows), [format!("/{evil}")]);
}
