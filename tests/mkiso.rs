//! dbackup-mkiso and the images it makes, checked with independent readers
//! (bsdtar, 7z, xorriso, isoinfo) and by hand with Python's sqlite3.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn tool_ok(name: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A set over several discs: 30 files of 30-60 kB on 400 kB discs, with
/// images built by monitor as discs close.
fn multi_disc_set() -> TestEnv {
    let env = TestEnv::new();
    for i in 0..30u32 {
        let data: Vec<u8> = (0..30_000 + i * 1000).map(|j| (j * 7 + i) as u8).collect();
        env.write(format!("{}/Photo {i:02}.JPG", 2010 + i % 3), &data);
    }
    env.write("notes/read me.txt", b"hello");
    env.init(&["--disc-size", "707200", "--name", "Family photos"]);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Disc 1 ready: "),
        "{}",
        text(&out.stdout)
    );
    env
}

fn isos(env: &TestEnv) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(env.workdir.join("isos"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "iso"))
        .collect();
    v.sort();
    v
}

/// The files each disc must hold: (relative path on the disc, md5).
fn expected_on_disc(env: &TestEnv, disc: i64) -> Vec<(String, String)> {
    let conn = env.catalog();
    let mut stmt = conn
        .prepare("SELECT id, md5 FROM files WHERE disc_id=?1 AND copied=1 ORDER BY id")
        .unwrap();
    stmt.query_map([disc], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })
    .unwrap()
    .map(|r| {
        let (id, md5) = r.unwrap();
        (format!("files/{}/{id}", id / 256), md5)
    })
    .collect()
}

fn disc_number(iso: &Path) -> i64 {
    let stem = iso.file_stem().unwrap().to_str().unwrap();
    stem.trim_start_matches("disc-").parse().unwrap()
}

fn check_extracted(env: &TestEnv, disc: i64, root: &Path, reader: &str) {
    for (rel, md5) in expected_on_disc(env, disc) {
        assert_eq!(
            md5_file(&root.join(&rel)),
            md5,
            "{reader}: {rel} of disc {disc}"
        );
    }
    for name in ["manifest.db", "README.TXT", "MD5SUMS"] {
        assert!(root.join(name).is_file(), "{reader}: {name} of disc {disc}");
    }
}

#[test]
fn images_are_read_by_bsdtar_7z_xorriso_and_isoinfo() {
    let env = multi_disc_set();
    let images = isos(&env);
    assert!(images.len() >= 2, "{images:?}");
    for iso in &images {
        let disc = disc_number(iso);
        let size = std::fs::metadata(iso).unwrap().len();
        assert!(
            size <= 707_200,
            "image of disc {disc} is {size} bytes, over the disc size"
        );

        // bsdtar lists exact names and extracts identical bytes.
        let list = Command::new("bsdtar").arg("-tf").arg(iso).output().unwrap();
        let list = text(&list.stdout);
        for (rel, _) in expected_on_disc(&env, disc) {
            assert!(
                list.lines().any(|l| l.trim_end_matches('/') == rel),
                "bsdtar lists {rel}"
            );
        }
        assert!(list.lines().any(|l| l == "manifest.db"), "{list}");
        let dir = tempfile::tempdir().unwrap();
        bsdtar_extract(iso, dir.path());
        check_extracted(&env, disc, dir.path(), "bsdtar");

        // md5sum -c MD5SUMS passes on the extracted disc.
        let out = Command::new("md5sum")
            .args(["-c", "--quiet", "MD5SUMS"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "md5sum -c: {}", text(&out.stdout));

        // 7z.
        if tool_ok("7z") {
            let dir = tempfile::tempdir().unwrap();
            let out = Command::new("7z")
                .arg("x")
                .arg("-y")
                .arg(format!("-o{}", dir.path().display()))
                .arg(iso)
                .output()
                .unwrap();
            assert!(out.status.success(), "7z: {}", text(&out.stdout));
            check_extracted(&env, disc, dir.path(), "7z");
        }

        // xorriso (libisofs), reading Rock Ridge.
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x");
        let out = Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(iso)
            .args(["-extract", "/"])
            .arg(&dest)
            .output()
            .unwrap();
        assert!(out.status.success(), "xorriso: {}", text(&out.stderr));
        check_extracted(&env, disc, &dest, "xorriso");

        // isoinfo shows sane descriptors.
        let out = Command::new("isoinfo")
            .arg("-d")
            .arg("-i")
            .arg(iso)
            .output()
            .unwrap();
        let info = text(&out.stdout);
        assert!(
            info.contains(&format!("Volume id: DBACKUP_{disc:04}")),
            "{info}"
        );
        assert!(info.contains("Logical block size is: 2048"), "{info}");
        assert!(info.contains("Rock Ridge"), "{info}");
        assert!(info.contains("Joliet"), "{info}");
        let uuid: String = env
            .catalog()
            .query_row("SELECT value FROM settings WHERE key='uuid'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(
            info.contains(&uuid),
            "set UUID readable from the disc: {info}"
        );
    }
    env.check_invariants();
    // Verified discs' staged copies are freed; the open disc's stay.
    for iso in &images {
        let disc = disc_number(iso);
        assert!(!env.workdir.join(format!("staging/disc-{disc:04}")).exists());
    }
    let st: serde_json::Value =
        serde_json::from_slice(&env.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(
        st["available_isos"].as_u64().unwrap() as usize,
        images.len()
    );
}

#[test]
fn a_stranger_recovers_a_file_with_python_sqlite3_and_bsdtar() {
    let env = multi_disc_set();
    let images = isos(&env);
    let newest = images.last().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bsdtar")
        .arg("-xf")
        .arg(newest)
        .args(["-C"])
        .arg(dir.path())
        .args(["manifest.db", "README.TXT"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let readme = std::fs::read_to_string(dir.path().join("README.TXT")).unwrap();
    assert!(readme.contains("Set name:   Family photos"));
    assert!(readme.contains("files/<N div 256>/<N>"));
    // The recipe from the README, with Python's sqlite3 module only.
    let script = r#"
import sqlite3, sys
c = sqlite3.connect('file:' + sys.argv[1] + '?immutable=1', uri=True)
row = c.execute("SELECT id, disc_id, md5 FROM files WHERE CAST(filename AS TEXT) LIKE '%Photo 04%' AND copied=1 ORDER BY id DESC").fetchone()
print(row[0], row[1], row[2])
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.path().join("manifest.db"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let answer = text(&out.stdout);
    let parts: Vec<&str> = answer.split_whitespace().collect();
    let (id, disc, md5): (i64, i64, &str) = (
        parts[0].parse().unwrap(),
        parts[1].parse().unwrap(),
        parts[2],
    );
    let image = env.workdir.join(format!("isos/disc-{disc}.iso"));
    let out = Command::new("bsdtar")
        .arg("-xOf")
        .arg(&image)
        .arg(format!("files/{}/{id}", id / 256))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(md5_bytes(&out.stdout), md5);
    assert_eq!(
        out.stdout,
        std::fs::read(env.watched.join("2011/Photo 04.JPG")).unwrap()
    );
}

#[test]
fn the_frozen_catalogue_opens_read_only_with_plain_sqlite3() {
    let env = multi_disc_set();
    let iso = &isos(&env)[0];
    let dir = tempfile::tempdir().unwrap();
    bsdtar_extract(iso, dir.path());
    let db = dir.path().join("manifest.db");
    let mut perms = std::fs::metadata(&db).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&db, perms).unwrap();
    let out = Command::new("sqlite3")
        .arg(format!("file:{}?mode=ro", db.display()))
        .arg("PRAGMA journal_mode; PRAGMA integrity_check; SELECT completed IS NOT NULL FROM discs WHERE id=1;")
        .output();
    let Ok(out) = out else {
        eprintln!("SKIPPED: no sqlite3 command");
        return;
    };
    assert_eq!(
        text(&out.stdout),
        "delete\nok\n1\n",
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn same_inputs_give_a_byte_identical_image() {
    let env = TestEnv::new();
    env.write("a", b"one");
    env.write("b/c", &vec![9u8; 70_000]);
    env.init(&[]);
    env.run(&["monitor"]);
    let out = env.run(&["close", "--no-iso"]);
    assert!(out.status.success());
    let out = env.mkiso(&["--keep-staged"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let first = std::fs::read(env.workdir.join("isos/disc-1.iso")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = env.mkiso(&["--disc", "1", "--keep-staged"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let second = std::fs::read(env.workdir.join("isos/disc-1.iso")).unwrap();
    assert!(first == second, "images differ");
}

#[test]
fn a_corrupted_staged_copy_fails_the_read_back_and_is_copied_again_from_the_origin() {
    let env = TestEnv::new();
    env.write("a", b"precious");
    env.write("b", b"also precious");
    env.init(&[]);
    env.run(&["monitor"]);
    env.run(&["close", "--no-iso"]);
    let staged = env.workdir.join("staging/disc-0001/files/0/1");
    std::fs::write(&staged, b"Precious").unwrap();
    let out = env.mkiso(&["--keep-staged"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("had rotted; copied again from"), "{stderr}");
    assert_eq!(std::fs::read(&staged).unwrap(), b"precious");
    let verified: i64 = env
        .catalog()
        .query_row("SELECT count(*) FROM images", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verified, 1);
    env.check_invariants();
}

#[test]
fn without_dvdisaster_ecc_is_a_clear_error_and_no_image() {
    let env = TestEnv::new();
    env.write("a", b"1");
    env.init(&[]);
    env.run(&["monitor"]);
    env.run(&["close", "--no-iso"]);
    let out = env
        .tool("dbackup-mkiso")
        .arg("--ecc")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("needs dvdisaster"),
        "{}",
        text(&out.stderr)
    );
    assert!(!env.workdir.join("isos/disc-1.iso").exists());
}

#[test]
fn ecc_adds_dvdisaster_data_that_tests_good() {
    if !tool_ok("dvdisaster") {
        eprintln!("SKIPPED: dvdisaster is not installed");
        return;
    }
    let env = TestEnv::new();
    for i in 0..5u8 {
        env.write(format!("f{i}"), &vec![i; 200_000]);
    }
    env.init(&["--disc-size", "cd", "--ecc"]);
    env.run(&["monitor"]);
    let out = env.run(&["close"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("dvdisaster RS03"),
        "{}",
        text(&out.stdout)
    );
    let iso = env.workdir.join("isos/disc-1.iso");
    let out = Command::new("dvdisaster")
        .arg("-i")
        .arg(&iso)
        .arg("-t")
        .output()
        .unwrap();
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("RS03"), "{all}");
    // Still a normal image for every reader.
    let dir = tempfile::tempdir().unwrap();
    bsdtar_extract(&iso, dir.path());
    check_extracted(&env, 1, dir.path(), "bsdtar");
}

#[test]
fn on_disc_ready_runs_with_the_disc_and_image() {
    let env = TestEnv::new();
    env.write("a", b"1");
    let log = env.dir.path().join("hook.log");
    let cmd = format!(
        "echo \"$DBACKUP_DISC $DBACKUP_ISO $DBACKUP_SET\" > '{}'; echo from-hook",
        log.display()
    );
    env.init(&["--on-disc-ready", &cmd, "--name", "Music"]);
    env.run(&["monitor"]);
    let out = env.run(&["close"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Disc 1 ready: "), "{stdout}");
    assert!(stdout.contains("xorriso -as cdrecord"), "{stdout}");
    assert!(
        !stdout.contains("from-hook"),
        "the hook's output goes to stderr"
    );
    assert!(text(&out.stderr).contains("from-hook"));
    let iso = env.workdir.canonicalize().unwrap().join("isos/disc-1.iso");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("1 {} Music\n", iso.display())
    );
    // A failing hook is reported, and the image still counts.
    let env = TestEnv::new();
    env.write("a", b"1");
    env.init(&["--on-disc-ready", "exit 3"]);
    env.run(&["monitor"]);
    let out = env.run(&["close"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("on_disc_ready command"));
    env.check_invariants();
}

#[test]
fn a_file_over_4_gib_round_trips_through_an_image() {
    let env = TestEnv::new();
    let big = env.watched.join("video.mkv");
    let f = std::fs::File::create(&big).unwrap();
    let size: u64 = (4 << 30) + (300 << 20);
    f.set_len(size).unwrap();
    use std::os::unix::fs::FileExt;
    for (off, data) in [
        (0u64, &b"start"[..]),
        ((4 << 30) - 3, &b"across-4GiB"[..]),
        (size - 4, &b"end!"[..]),
    ] {
        f.write_all_at(data, off).unwrap();
    }
    drop(f);
    env.write("small", b"x");
    env.init(&["--disc-size", "bd25"]);
    env.run(&["monitor"]);
    let out = env.run(&["close"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let iso = env.workdir.join("isos/disc-1.iso");
    let md5: String = env
        .catalog()
        .query_row(
            "SELECT md5 FROM files WHERE filename='/video.mkv'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let id: i64 = env
        .catalog()
        .query_row(
            "SELECT id FROM files WHERE filename='/video.mkv'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let rel = format!("files/{}/{id}", id / 256);
    // bsdtar and 7z stream it to md5sum; xorriso lists its size.
    let pipe = |cmd: String| {
        let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        pipe(format!("bsdtar -xOf '{}' {rel} | md5sum", iso.display())),
        md5
    );
    if tool_ok("7z") {
        assert_eq!(
            pipe(format!("7z e -so '{}' {rel} | md5sum", iso.display())),
            md5
        );
    }
    let out = Command::new("xorriso")
        .args(["-indev"])
        .arg(&iso)
        .args(["-find", &format!("/{rel}"), "-exec", "lsdl", "--"])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains(&size.to_string()),
        "{}",
        text(&out.stdout)
    );
    env.check_invariants();
}
