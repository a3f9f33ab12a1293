//! Images made by hand with other tools, holding what our reader does not
//! decode: a zisofs-compressed file (Rock Ridge ZF, `xorriso -zisofs`) is
//! reported alone as unreadable with its reason, and every other file of
//! the disc is still checked and restored; Rock Ridge names that are not
//! UTF-8 do not fail the image.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// A closed disc of four compressible files (40 kB of repeated text, which
/// zisofs shrinks), extracted with bsdtar as a mounted disc would show it:
/// (the set, the extracted folder, the files as (rel on disc, name, md5)).
fn extracted_disc() -> (TestEnv, PathBuf, Vec<(String, String, String)>) {
    let env = TestEnv::new();
    for i in 0..4 {
        env.write(
            format!("t{i}.txt"),
            format!("hello {i} ").repeat(4_000).as_bytes(),
        );
    }
    env.init(&["--disc-size", "10M", "--name", "Hand"]);
    for args in [["monitor"], ["close"]] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let dir = env.dir.path().join("disc");
    std::fs::create_dir(&dir).unwrap();
    bsdtar_extract(&env.workdir.join("isos/disc-1.iso"), &dir);
    let conn = env.catalog();
    let mut stmt = conn
        .prepare("SELECT id, filename, md5 FROM files WHERE copied=1 ORDER BY id")
        .unwrap();
    let files = stmt
        .query_map([], |r| {
            let id: i64 = r.get(0)?;
            Ok((format!("files/{}/{id}", id / 256), r.get(1)?, r.get(2)?))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    (env, dir, files)
}

/// An image of `folder` by xorriso, with `xorriso_args` before the commit.
fn xorriso_image(folder: &Path, image: &Path, xorriso_args: &[&str]) {
    let out = Command::new("xorriso")
        .arg("-outdev")
        .arg(image)
        .arg("-map")
        .arg(folder)
        .arg("/")
        .args(xorriso_args)
        .arg("-commit")
        .output()
        .expect("run xorriso (tests/run installs it)");
    assert!(out.status.success(), "xorriso: {}", text(&out.stderr));
}

fn run(name: &str, args: &[&OsStr]) -> Output {
    let out = Command::new(bin(name))
        .arg("--no-progress")
        .args(args)
        .env_remove("FAILPOINTS")
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{name}: {}",
        text(&out.stderr)
    );
    out
}

#[test]
fn a_zisofs_compressed_file_is_unreadable_alone() {
    let (env, dir, files) = extracted_disc();
    let (zipped, zipped_name, _) = files[1].clone();
    let image = env.dir.path().join("zisofs.iso");
    xorriso_image(
        &dir,
        &image,
        &["-set_filter", "--zisofs", &format!("/{zipped}"), "--"],
    );
    // xorriso did compress it: the record holds fewer bytes than the file.
    let listed = run_stdout("isoinfo", &["-R", "-l", "-i", image.to_str().unwrap()]);
    assert!(!listed.contains("40000 "), "{listed}");

    let out = run(
        "dbackup-verify",
        &[OsStr::new("--json"), OsStr::new("-d"), image.as_os_str()],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = &json["discs"][0];
    assert_eq!(report["files"], 4);
    assert_eq!(report["ok"], 3, "{report}");
    assert_eq!(report["unreadable"], 1, "{report}");
    assert_eq!(report["damaged"], 0, "{report}");
    let p = &report["problems"][0];
    assert_eq!(p["path"], zipped.as_str());
    assert_eq!(p["problem"], "unreadable");
    assert_eq!(p["detail"], "compressed with zisofs; not supported");
    assert!(
        stderr.contains(&zipped) && stderr.contains("compressed with zisofs; not supported"),
        "{stderr}"
    );

    let to = env.dir.path().join("restored");
    let out = run(
        "dbackup-restore",
        &[
            OsStr::new("--json"),
            OsStr::new("-d"),
            image.as_os_str(),
            OsStr::new("--to"),
            to.as_os_str(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed = json["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{json}");
    assert_eq!(failed[0]["name"], zipped_name.as_str());
    assert_eq!(failed[0]["kind"], "unreadable", "{json}");
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("compressed with zisofs"),
        "{json}"
    );
    for (_, name, md5) in &files {
        let restored = to.join(name.trim_start_matches('/'));
        if *name == zipped_name {
            assert!(!restored.exists());
        } else {
            assert_eq!(&md5_file(&restored), md5, "{name}");
        }
    }

    let out = run(
        "dbackup-find",
        &[OsStr::new("-d"), image.as_os_str(), OsStr::new("*.txt")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// Two names that are not UTF-8 (Latin-1 bytes), and a folder of such a
/// name: the image opens, its files verify and restore, and the strange
/// names (shown with U+FFFD, which no name of a dbackup disc holds) cannot
/// stand in for any file of the disc's layout.
#[test]
fn rock_ridge_names_that_are_not_utf8_do_not_fail_the_image() {
    let (env, dir, files) = extracted_disc();
    for name in [&b"caf\xe9.txt"[..], b"caf\xea.txt"] {
        std::fs::write(dir.join(OsStr::from_bytes(name)), b"latin-1").unwrap();
    }
    let odd = dir.join("files").join(OsStr::from_bytes(b"\xff\xfe"));
    std::fs::create_dir(&odd).unwrap();
    std::fs::write(odd.join("1"), b"not a backup").unwrap();
    let image = env.dir.path().join("latin1.iso");
    xorriso_image(&dir, &image, &[]);
    let listed = run_stdout("bsdtar", &["-tf", image.to_str().unwrap()]);
    assert!(listed.contains("caf\\351.txt"), "{listed}");

    let out = run(
        "dbackup-verify",
        &[OsStr::new("--json"), OsStr::new("-d"), image.as_os_str()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = &json["discs"][0];
    assert_eq!(report["ok"], 4, "{report}");
    // The file under the odd folder is listed, not taken for a backup.
    assert_eq!(report["unknown"], 1, "{report}");
    assert_eq!(report["problems"][0]["path"], "files/\u{fffd}\u{fffd}/1");

    let to = env.dir.path().join("restored");
    let out = run(
        "dbackup-restore",
        &[
            OsStr::new("-d"),
            image.as_os_str(),
            OsStr::new("--to"),
            to.as_os_str(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for (_, name, md5) in &files {
        assert_eq!(&md5_file(&to.join(name.trim_start_matches('/'))), md5);
    }
}

fn run_stdout(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {cmd}: {e}"));
    assert!(out.status.success(), "{cmd}: {}", text(&out.stderr));
    text(&out.stdout)
}
