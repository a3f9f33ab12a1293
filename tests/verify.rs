//! dbackup-verify against sets made by the capture tools and by the
//! original dBackup: good discs pass in every form (image, folder of
//! images, mounted disc), and each kind of damage is found and named.

mod common;

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// A closed set: 14 files of 20-46 kB over discs of 300 kB, every disc with
/// its image in WORKDIR/isos.
fn closed_set() -> TestEnv {
    let env = TestEnv::new();
    for i in 0..14u32 {
        let data: Vec<u8> = (0..20_000 + i * 2000).map(|j| (j * 13 + i) as u8).collect();
        env.write(format!("{}/file {i:02}.bin", 2020 + i % 2), &data);
    }
    env.init(&["--disc-size", "607200", "--name", "Verify"]);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = env.run(&["close"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(images(&env).len() >= 2, "{:?}", images(&env));
    env
}

fn images(env: &TestEnv) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(env.workdir.join("isos"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "iso"))
        .collect();
    v.sort();
    v
}

fn iso(env: &TestEnv, disc: i64) -> PathBuf {
    env.workdir.join("isos").join(format!("disc-{disc}.iso"))
}

/// The files the catalogue puts on `disc`: (id, name, md5).
fn on_disc(env: &TestEnv, disc: i64) -> Vec<(i64, String, String)> {
    let conn = env.catalog();
    let mut stmt = conn
        .prepare("SELECT id, filename, md5 FROM files WHERE disc_id=?1 AND copied=1 ORDER BY id")
        .unwrap();
    stmt.query_map([disc], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn rel(id: i64) -> String {
    format!("files/{}/{id}", id / 256)
}

fn verify(args: &[&OsStr]) -> Output {
    Command::new(bin("dbackup-verify"))
        .arg("--no-progress")
        .args(args)
        .env_remove("FAILPOINTS")
        .output()
        .expect("run dbackup-verify")
}

fn verify_json(args: &[&OsStr]) -> (Option<i32>, Value, String) {
    let mut all: Vec<&OsStr> = vec![OsStr::new("--json")];
    all.extend_from_slice(args);
    let out = verify(&all);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON: {e}: {} / {stderr}", text(&out.stdout)));
    (out.status.code(), json, stderr)
}

fn d(p: &Path) -> [&OsStr; 2] {
    [OsStr::new("-d"), p.as_os_str()]
}

/// The report of disc `n` (the first, if given twice).
fn disc_report(json: &Value, n: i64) -> &Value {
    json["discs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["disc"] == n)
        .unwrap_or_else(|| panic!("no report for disc {n}: {json}"))
}

fn problems(report: &Value) -> Vec<(Value, String, String)> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].clone(),
                p["path"].as_str().unwrap().to_string(),
                p["problem"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Extracts an image with bsdtar, as a mounted disc would show it, and
/// makes it writable so a test can damage it.
fn mounted(iso: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    bsdtar_extract(iso, dir.path());
    for e in walkdir::WalkDir::new(dir.path()) {
        let e = e.unwrap();
        let mode = if e.file_type().is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    dir
}

fn flip_byte(path: &Path, at: u64) {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    let mut b = [0u8];
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x5a]).unwrap();
}

#[test]
fn a_good_set_verifies_as_an_image_a_folder_of_images_and_a_mounted_disc() {
    let env = closed_set();
    let discs = images(&env).len() as i64;

    let (code, json, stderr) = verify_json(&d(&iso(&env, 1)));
    assert_eq!(code, Some(0), "{stderr}");
    let r = disc_report(&json, 1);
    assert_eq!(r["ok"], on_disc(&env, 1).len() as u64, "{r}");
    assert_eq!(r["files"], r["ok"]);
    assert_eq!(r["medium"], "image");
    assert_eq!(r["manifest_ok"], true);
    assert!(r["bytes"].as_u64().unwrap() > 0);
    assert!(problems(r).is_empty(), "{r}");

    let (code, json, stderr) = verify_json(&d(&env.workdir.join("isos")));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(json["discs"].as_array().unwrap().len() as i64, discs);
    for n in 1..=discs {
        let r = disc_report(&json, n);
        assert_eq!(r["ok"], on_disc(&env, n).len() as u64, "{r}");
        assert!(problems(r).is_empty(), "{r}");
    }

    let dir = mounted(&iso(&env, 2));
    let (code, json, stderr) = verify_json(&d(dir.path()));
    assert_eq!(code, Some(0), "{stderr}");
    let r = disc_report(&json, 2);
    assert_eq!(r["medium"], "folder");
    assert_eq!(r["ok"], on_disc(&env, 2).len() as u64, "{r}");

    // Without --json and off a terminal: a tab-separated summary, one line per disc.
    let out = verify(&d(&env.workdir.join("isos")));
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len() as i64, discs + 1, "{stdout}");
    assert!(
        lines[0].starts_with("disc\tsource\tfiles\tok\t"),
        "{stdout}"
    );
    let first: Vec<&str> = lines[1].split('\t').collect();
    assert_eq!(first[0], "1");
    assert_eq!(first[3], on_disc(&env, 1).len().to_string());
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn a_flipped_byte_in_an_image_names_the_file() {
    let env = closed_set();
    let image = iso(&env, 1);
    let (id, name, _) = on_disc(&env, 1)[1].clone();
    let reader = dbackup::iso::IsoReader::open(&image).unwrap();
    let (offset, len) = reader.find(&rel(id)).unwrap().extents[0];
    drop(reader);
    flip_byte(&image, offset + len / 2);

    let (code, json, stderr) = verify_json(&d(&image));
    assert_eq!(code, Some(1), "{stderr}");
    let r = disc_report(&json, 1);
    assert_eq!(
        problems(r),
        vec![(Value::from(id), rel(id), "damaged".into())]
    );
    assert_eq!(r["problems"][0]["filename"], name.as_str());
    assert_eq!(r["damaged"], 1);
    assert_eq!(r["ok"], on_disc(&env, 1).len() as u64 - 1);
    assert!(
        stderr.contains(&rel(id)) && stderr.contains(&name) && stderr.contains("damaged"),
        "{stderr}"
    );
}

#[test]
fn a_flipped_byte_on_a_mounted_disc_names_the_file() {
    let env = closed_set();
    let dir = mounted(&iso(&env, 1));
    let (id, name, _) = on_disc(&env, 1)[0].clone();
    flip_byte(&dir.path().join(rel(id)), 7);

    let (code, json, stderr) = verify_json(&d(dir.path()));
    assert_eq!(code, Some(1), "{stderr}");
    let r = disc_report(&json, 1);
    assert_eq!(
        problems(r),
        vec![(Value::from(id), rel(id), "damaged".into())]
    );
    assert_eq!(r["problems"][0]["filename"], name.as_str());
    assert!(
        r["problems"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("MD5 "),
        "{r}"
    );
    assert!(stderr.contains(&name), "{stderr}");
}

#[test]
fn a_truncated_image_is_a_clear_error_or_report_never_a_panic() {
    let env = closed_set();
    let image = iso(&env, 1);
    // Half of what lies before the padding (a cut in the padding alone
    // loses nothing: tests/short_images.rs).
    let len = std::fs::metadata(&image).unwrap().len() - dbackup::iso::PADDING_BLOCKS * 2048;
    File::options()
        .write(true)
        .open(&image)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let out = verify(&d(&image));
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    match out.status.code() {
        Some(2) => {
            assert!(
                stderr.starts_with("dbackup-verify: error: ") && stderr.contains("disc-1.iso"),
                "{stderr}"
            );
            assert!(out.stdout.is_empty());
        }
        Some(1) => assert!(
            stderr.contains("unreadable") || stderr.contains("missing"),
            "{stderr}"
        ),
        other => panic!("exit {other:?}: {stderr}"),
    }
}

/// A box of discs checked for rot: one image too damaged to open is
/// reported as unusable, and every other disc is still verified.
#[test]
fn an_unusable_disc_is_reported_and_the_others_still_verified() {
    let env = closed_set();
    let all = images(&env);
    let broken = iso(&env, 1);
    // Keep only the system area: no volume descriptor, no manifest.
    File::options()
        .write(true)
        .open(&broken)
        .unwrap()
        .set_len(16 * 2048)
        .unwrap();

    let (code, json, stderr) = verify_json(&d(&env.workdir.join("isos")));
    assert_eq!(code, Some(1), "{stderr}");
    let unusable = json["unusable"].as_array().expect("unusable discs listed");
    assert_eq!(unusable.len(), 1, "{json}");
    assert_eq!(unusable[0]["source"], broken.display().to_string());
    assert!(
        stderr.contains("unusable disc") && stderr.contains("disc-1.iso"),
        "{stderr}"
    );
    let discs = json["discs"].as_array().unwrap();
    assert_eq!(discs.len(), all.len() - 1, "{json}");
    for r in discs {
        assert_ne!(r["disc"], 1);
        assert_eq!(r["damaged"], 0, "{r}");
        assert_eq!(r["manifest_ok"], true, "{r}");
        assert!(r["ok"].as_u64().unwrap() > 0, "{r}");
    }

    // The table says so too.
    let out = verify(&d(&env.workdir.join("isos")));
    assert_eq!(out.status.code(), Some(1));
    let table = text(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("?\t") && l.contains("disc-1.iso") && l.contains("unusable")),
        "{table}"
    );

    // With only the broken disc there is nothing to verify: an error.
    let out = verify(&d(&broken));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn a_file_deleted_from_a_mounted_disc_is_missing() {
    let env = closed_set();
    let dir = mounted(&iso(&env, 2));
    let (id, _, _) = on_disc(&env, 2).last().unwrap().clone();
    std::fs::remove_file(dir.path().join(rel(id))).unwrap();

    let (code, json, stderr) = verify_json(&d(dir.path()));
    assert_eq!(code, Some(1), "{stderr}");
    let r = disc_report(&json, 2);
    assert_eq!(
        problems(r),
        vec![(Value::from(id), rel(id), "missing".into())]
    );
    assert_eq!(r["missing"], 1);
}

#[test]
fn a_file_the_manifest_does_not_know_is_listed() {
    let env = closed_set();
    let dir = mounted(&iso(&env, 1));
    std::fs::create_dir_all(dir.path().join("files/3")).unwrap();
    std::fs::write(dir.path().join("files/3/999"), b"stranger").unwrap();

    let (code, json, stderr) = verify_json(&d(dir.path()));
    // Listed, but every backed-up file is good: not a failure.
    assert_eq!(code, Some(0), "{stderr}");
    let r = disc_report(&json, 1);
    assert_eq!(
        problems(r),
        vec![(Value::from(999), "files/3/999".into(), "unknown".into())]
    );
    assert_eq!(r["unknown"], 1);
    assert_eq!(r["ok"], on_disc(&env, 1).len() as u64);
    assert!(stderr.contains("files/3/999"), "{stderr}");
}

#[test]
fn a_corrupt_manifest_on_a_mounted_disc_fails_its_integrity_check() {
    let env = closed_set();
    let dir = mounted(&iso(&env, 1));
    let db = dir.path().join("manifest.db");
    let (page_size, root): (i64, i64) = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let size = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        let root = conn
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name='filenames'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (size, root)
    };
    // Garbage over the name index: the tables still open, the index is broken.
    let mut f = OpenOptions::new().write(true).open(&db).unwrap();
    f.seek(SeekFrom::Start(((root - 1) * page_size) as u64))
        .unwrap();
    f.write_all(&vec![0xa5; page_size as usize]).unwrap();
    drop(f);

    let (code, json, stderr) = verify_json(&d(dir.path()));
    assert_eq!(code, Some(1), "{stderr}");
    let r = disc_report(&json, 1);
    assert_eq!(r["manifest_ok"], false);
    let found = problems(r);
    assert!(
        found
            .iter()
            .any(|(_, path, kind)| path == "manifest.db" && kind == "manifest"),
        "{r}"
    );
    assert!(stderr.contains("integrity check"), "{stderr}");
}

#[test]
fn a_disc_of_another_set_is_refused() {
    let ours = closed_set();
    let theirs = TestEnv::new();
    theirs.write("other.txt", b"another set");
    theirs.init(&["--name", "Other"]);
    assert_eq!(theirs.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(theirs.run(&["close"]).status.code(), Some(0));

    let mine = iso(&ours, 1);
    let other = iso(&theirs, 1);
    let mut args = d(&mine).to_vec();
    args.extend(d(&other));
    let out = verify(&args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("dbackup-verify: error: ") && stderr.contains("not of set"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_disc_given_twice_is_verified_twice() {
    let env = closed_set();
    let dir = mounted(&iso(&env, 1));
    let (id, _, _) = on_disc(&env, 1)[0].clone();
    flip_byte(&dir.path().join(rel(id)), 0);
    let image = iso(&env, 1);
    let mut args = d(&image).to_vec();
    args.extend(d(dir.path()));

    let (code, json, stderr) = verify_json(&args);
    assert_eq!(code, Some(1), "{stderr}");
    let reports = json["discs"].as_array().unwrap();
    assert_eq!(reports.len(), 2, "{json}");
    let bad: Vec<&Value> = reports.iter().filter(|r| r["damaged"] == 1).collect();
    assert_eq!(bad.len(), 1, "only the damaged copy: {json}");
    assert_eq!(bad[0]["medium"], "folder");
}

#[test]
fn a_disc_made_by_the_original_verifies_and_its_leftover_row_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let discs = original_set(
        dir.path(),
        &[
            vec![
                ("/2012/IMG_0001.jpg", b"one".to_vec()),
                ("/2012/IMG_0002.jpg", vec![7u8; 5000]),
            ],
            vec![("/2013/notes.txt", b"three".to_vec())],
        ],
    );
    let mut args = d(&discs[0]).to_vec();
    args.extend(d(&discs[1]));
    let (code, json, stderr) = verify_json(&args);
    assert_eq!(code, Some(0), "{stderr}");
    for (n, files) in [(1, 2), (2, 1)] {
        let r = disc_report(&json, n);
        assert_eq!(
            (r["files"].as_u64(), r["ok"].as_u64()),
            (Some(files), Some(files)),
            "{r}"
        );
        assert!(problems(r).is_empty(), "{r}");
    }

    // Damage on an original disc is found the same way.
    flip_byte(&discs[0].join("files/0/2"), 100);
    let (code, json, _) = verify_json(&args);
    assert_eq!(code, Some(1));
    assert_eq!(
        problems(disc_report(&json, 1)),
        vec![(Value::from(2), "files/0/2".into(), "damaged".into())]
    );
}

/// Rewrites a file's bytes and puts its modification time back, as bit rot
/// would leave it.
fn corrupt_keeping_mtime(path: &Path) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    flip_byte(path, 3);
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

#[test]
fn origin_finds_silent_corruption_and_missing_originals() {
    let env = closed_set();
    // A deletion recorded and frozen onto a later disc is not "missing".
    std::fs::remove_file(env.watched.join("2021/file 13.bin")).unwrap();
    env.write("2022/new.bin", b"added later");
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close"]).status.code(), Some(0));

    let (code, json, stderr) = verify_json(&[
        OsStr::new("-d"),
        env.workdir.join("isos").as_os_str(),
        OsStr::new("--origin"),
        env.watched.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let o = &json["origin"];
    assert_eq!(
        (o["files"].as_u64(), o["ok"].as_u64()),
        (Some(14), Some(14)),
        "{o}"
    );

    corrupt_keeping_mtime(&env.watched.join("2020/file 04.bin"));
    std::fs::remove_file(env.watched.join("2021/file 05.bin")).unwrap();
    let mut f = OpenOptions::new()
        .append(true)
        .open(env.watched.join("2020/file 06.bin"))
        .unwrap();
    f.write_all(b"edited since").unwrap();
    drop(f);

    let (code, json, stderr) = verify_json(&[
        OsStr::new("-d"),
        env.workdir.join("isos").as_os_str(),
        OsStr::new("--origin"),
        env.watched.as_os_str(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    let o = &json["origin"];
    let found: Vec<(String, String)> = o["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["filename"].as_str().unwrap().to_string(),
                p["problem"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("/2020/file 04.bin".into(), "silent_corruption".into()),
            ("/2021/file 05.bin".into(), "missing".into()),
        ]
    );
    assert_eq!(o["changed"], 1, "{o}");
    assert_eq!(o["ok"], 11, "{o}");
    assert!(
        stderr.contains("silent corruption of the original") && stderr.contains("file 04.bin"),
        "{stderr}"
    );
    // The discs themselves are fine.
    assert!(json["discs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["problems"].as_array().unwrap().is_empty()));
}

#[test]
fn origin_compares_the_originals_whole_second_mtimes() {
    let dir = tempfile::tempdir().unwrap();
    let discs = original_set(
        dir.path(),
        &[vec![
            ("/a.jpg", b"alpha".to_vec()),
            ("/b.jpg", b"bravo".to_vec()),
            ("/c.jpg", b"charlie".to_vec()),
        ]],
    );
    // The original recorded int(st_mtime); the live files keep sub-seconds.
    let recorded: i64 = rusqlite::Connection::open(discs[0].join("manifest.db"))
        .unwrap()
        .query_row("SELECT mtime FROM files WHERE filename='/a.jpg'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let at = |secs: i64, millis: u64| {
        std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(secs as u64)
            + std::time::Duration::from_millis(millis)
    };
    let origin = dir.path().join("origin");
    std::fs::create_dir(&origin).unwrap();
    for (name, data, mtime) in [
        ("a.jpg", &b"alpha"[..], at(recorded, 700)),
        ("b.jpg", &b"brAvo"[..], at(recorded, 200)),
        ("c.jpg", &b"charlie"[..], at(recorded + 1, 0)),
    ] {
        let p = origin.join(name);
        std::fs::write(&p, data).unwrap();
        File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }
    let (code, json, stderr) = verify_json(&[
        OsStr::new("-d"),
        discs[0].as_os_str(),
        OsStr::new("--origin"),
        origin.as_os_str(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    let o = &json["origin"];
    assert_eq!(o["ok"], 1, "{o}");
    assert_eq!(o["changed"], 1, "{o}");
    assert_eq!(o["silent_corruption"], 1, "{o}");
    assert_eq!(o["problems"][0]["filename"], "/b.jpg");
}

#[test]
fn a_bad_origin_is_refused_before_any_disc_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = verify(&[
        OsStr::new("-d"),
        dir.path().as_os_str(),
        OsStr::new("--origin"),
        dir.path().join("nowhere").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("origin") && stderr.contains("nowhere"),
        "{stderr}"
    );
}

#[cfg(feature = "failpoints")]
mod injected {
    use super::*;

    /// A read error (EIO) on one file is reported for that file; every
    /// other file is still verified.
    #[test]
    fn an_unreadable_file_is_reported_and_the_rest_verified() {
        let env = closed_set();
        let total: usize = (1..=images(&env).len() as i64)
            .map(|n| on_disc(&env, n).len())
            .sum();
        let folder = mounted(&iso(&env, 1));
        for (source, expected_ok) in [
            (env.workdir.join("isos"), total - 1),
            (folder.path().to_path_buf(), on_disc(&env, 1).len() - 1),
        ] {
            let out = Command::new(bin("dbackup-verify"))
                .args(["--no-progress", "--json", "-d"])
                .arg(&source)
                .env("FAILPOINTS", "verify::read=return(eio:files/0/3)")
                .output()
                .unwrap();
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            let json: Value = serde_json::from_slice(&out.stdout).unwrap();
            let r = disc_report(&json, 1);
            assert_eq!(
                problems(r),
                vec![(Value::from(3), "files/0/3".into(), "unreadable".into())]
            );
            assert!(stderr.contains("Input/output error"), "{stderr}");
            let ok: u64 = json["discs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["ok"].as_u64().unwrap())
                .sum();
            assert_eq!(ok as usize, expected_ok, "{json}");
        }
    }
}

/// A reader that closes the pipe early (`| head`) does not hide damage:
/// verify of a damaged image exits 1 with stdout closed, and with stdout
/// and stderr both closed, as a table or as JSON.
#[test]
fn damage_is_exit_1_even_with_stdout_and_stderr_closed() {
    let env = closed_set();
    let image = iso(&env, 1);
    let (id, _, _) = on_disc(&env, 1)[1].clone();
    let reader = dbackup::iso::IsoReader::open(&image).unwrap();
    let (offset, len) = reader.find(&rel(id)).unwrap().extents[0];
    drop(reader);
    flip_byte(&image, offset + len / 2);
    for close_stderr in [false, true] {
        for form in [&[][..], &["--json"][..]] {
            let mut cmd = Command::new(bin("dbackup-verify"));
            cmd.arg("--no-progress")
                .args(form)
                .arg("-d")
                .arg(&image)
                .env_remove("FAILPOINTS");
            let (code, stderr) = with_closed_output(cmd, close_stderr);
            assert_eq!(
                code,
                Some(1),
                "{form:?} stderr closed: {close_stderr}: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
            if !close_stderr {
                assert!(stderr.contains("damaged"), "{stderr}");
            }
        }
    }
}

/// A problem line names the file by its original path with control
/// characters escaped, in a pipe as on a terminal (cron mails stderr).
#[test]
fn control_characters_in_problem_lines_are_escaped() {
    let env = TestEnv::new();
    let evil = "evil\x1b[2J\nname.txt";
    env.write(evil, b"to be lost from the disc");
    env.init(&[]);
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    let dir = mounted(&iso(&env, 1));
    let (id, _, _) = on_disc(&env, 1)[0].clone();
    std::fs::remove_file(dir.path().join(rel(id))).unwrap();
    let out = verify(&d(dir.path()));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains(r"evil\u{1b}[2J\nname.txt"), "{stderr:?}");
    assert!(!text(&out.stdout).contains('\x1b'));
}

/// Sets a file's mtime to `secs` + `nanos` with utimensat.
fn set_mtime(path: &Path, secs: i64, nanos: i64) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let t = libc::timespec {
        tv_sec: secs,
        tv_nsec: nanos,
    };
    // SAFETY: a valid path and two valid timespecs.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), [t, t].as_ptr(), 0) };
    assert_eq!(r, 0);
}

/// Our own whole-second mtime is stored by SQLite as an INTEGER, like the
/// original's; it must still compare to the nanosecond, or a same-size edit
/// within that second would be taken for silent corruption.
#[test]
fn origin_compares_our_whole_second_mtimes_to_the_nanosecond() {
    let env = TestEnv::new();
    let p = env.write("whole.txt", b"first content");
    set_mtime(&p, 1_700_000_000, 0);
    env.init(&[]);
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    std::fs::write(&p, b"other content").unwrap();
    set_mtime(&p, 1_700_000_000, 500_000_000);
    let (code, json, stderr) = verify_json(&[
        OsStr::new("-d"),
        env.workdir.join("isos").as_os_str(),
        OsStr::new("--origin"),
        env.watched.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "a changed file, not corruption: {stderr}");
    assert!(!stderr.contains("silent corruption"), "{stderr}");
    assert_eq!(
        json["origin"]["changed"].as_u64(),
        Some(1),
        "{}",
        json["origin"]
    );
    // The same bytes changed with the mtime kept to the nanosecond are.
    std::fs::write(&p, b"third content").unwrap();
    set_mtime(&p, 1_700_000_000, 0);
    let (code, _, stderr) = verify_json(&[
        OsStr::new("-d"),
        env.workdir.join("isos").as_os_str(),
        OsStr::new("--origin"),
        env.watched.as_os_str(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("silent corruption"), "{stderr}");
}
