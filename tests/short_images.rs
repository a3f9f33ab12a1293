//! A short image (a copy cut short, a disc read only to its first bad
//! spot) is not a lost image: dbackup-verify, dbackup-restore and
//! dbackup-find read every file whose data is inside what is there, and
//! name each file whose data passes the end as unreadable (exit 1), never
//! failing the whole disc, as long as its directories and its manifest are
//! in. Without its manifest the disc is unusable, and the error says why.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use dbackup::iso::IsoReader;
use serde_json::Value;

/// One closed disc of 12 files (2 to 35 kB, in four folders), with its
/// verified image; returns the set and the image.
fn one_disc() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    for i in 0..12u32 {
        let data: Vec<u8> = (0..2_000 + i * 3_000).map(|j| (j * 7 + i) as u8).collect();
        env.write(format!("d{}/f{i:02}.bin", i % 4), &data);
    }
    env.init(&["--disc-size", "10M", "--name", "Short"]);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = env.run(&["close"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let image = env.workdir.join("isos/disc-1.iso");
    assert!(image.is_file());
    (env, image)
}

/// The image's layout, read from the whole image: where each file's data
/// ends, and where the data area starts.
struct Layout {
    /// Path on the disc -> byte just past its last extent (0 when empty).
    ends: BTreeMap<String, u64>,
    data_start: u64,
    len: u64,
}

fn layout(image: &Path) -> Layout {
    let r = IsoReader::open(image).unwrap();
    assert_eq!(r.cut_short(), None);
    let ends = r
        .files()
        .iter()
        .map(|f| {
            let end = f.extents.iter().map(|&(o, l)| o + l).max().unwrap_or(0);
            (f.path.clone(), end)
        })
        .collect();
    let data_start = r
        .files()
        .iter()
        .flat_map(|f| f.extents.iter().map(|e| e.0))
        .min()
        .unwrap();
    Layout {
        ends,
        data_start,
        len: std::fs::metadata(image).unwrap().len(),
    }
}

/// A copy of `image` cut to `len` bytes, at `to`.
fn cut(image: &Path, to: &Path, len: u64) {
    std::fs::copy(image, to).unwrap();
    File::options()
        .write(true)
        .open(to)
        .unwrap()
        .set_len(len)
        .unwrap();
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

/// The files under `files/` the catalogue puts on disc 1: rel -> md5.
fn backed_up(env: &TestEnv) -> BTreeMap<String, (String, String)> {
    let conn = env.catalog();
    let mut stmt = conn
        .prepare("SELECT id, filename, md5 FROM files WHERE disc_id=1 AND copied=1")
        .unwrap();
    stmt.query_map([], |r| {
        let id: i64 = r.get(0)?;
        Ok((
            format!("files/{}/{id}", id / 256),
            (r.get::<_, String>(1)?, r.get::<_, String>(2)?),
        ))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

/// Cut at every block boundary from the 17th block to the end: verify
/// opens the image exactly when its directories and manifest are in; then
/// every file inside is ok, exactly the files whose data passes the cut
/// are unreadable (named with the reason), and the exit code is 1 when any
/// file is lost, 0 when only what follows the last file (padding) is.
#[test]
fn verify_reads_every_file_inside_a_short_image_at_every_cut() {
    let (env, image) = one_disc();
    let lay = layout(&image);
    let files = backed_up(&env);
    let manifest_end = lay.ends["manifest.db"];
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("disc-1.iso");
    let mut opened = 0;
    // Bounded by the image's blocks.
    for cut_at in (17..lay.len / 2048).map(|b| b * 2048) {
        cut(&image, &short, cut_at);
        let out = run(
            "dbackup-verify",
            &[OsStr::new("--json"), OsStr::new("-d"), short.as_os_str()],
        );
        let stderr = text(&out.stderr);
        if cut_at < lay.data_start || cut_at < manifest_end {
            assert_eq!(out.status.code(), Some(2), "cut at {cut_at}: {stderr}");
            if cut_at >= lay.data_start {
                assert!(
                    stderr.contains("manifest.db cannot be read") && stderr.contains("cut short"),
                    "cut at {cut_at}: {stderr}"
                );
            }
            continue;
        }
        opened += 1;
        let json: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("cut at {cut_at}: {e}: {stderr}"));
        let report = &json["discs"][0];
        let past: Vec<&String> = lay
            .ends
            .iter()
            .filter(|(_, &end)| end > cut_at)
            .map(|(p, _)| p)
            .collect();
        let mut unreadable: Vec<String> = report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                assert_eq!(p["problem"], "unreadable", "cut at {cut_at}: {p}");
                assert!(
                    p["detail"].as_str().unwrap().contains("past the end"),
                    "{p}"
                );
                p["path"].as_str().unwrap().to_string()
            })
            .collect();
        unreadable.sort();
        assert_eq!(
            unreadable.iter().collect::<Vec<_>>(),
            past,
            "cut at {cut_at}"
        );
        let lost_files = past.iter().filter(|p| files.contains_key(**p)).count() as u64;
        assert_eq!(report["files"], files.len() as u64);
        assert_eq!(
            report["ok"],
            files.len() as u64 - lost_files,
            "cut at {cut_at}"
        );
        assert_eq!(report["manifest_ok"], true);
        let code = if past.is_empty() { 0 } else { 1 };
        assert_eq!(out.status.code(), Some(code), "cut at {cut_at}: {stderr}");
        for p in &past {
            assert!(
                stderr.contains(p.as_str()),
                "cut at {cut_at}: {p}: {stderr}"
            );
        }
    }
    assert!(opened > 5, "only {opened} cuts opened");
}

/// Restore and find from an image one block short and from one cut just
/// past its manifest: every file inside is restored with its MD5, the
/// others are named as not restored (exit 1), find lists everything.
#[test]
fn restore_and_find_read_what_a_short_image_holds() {
    let (env, image) = one_disc();
    let lay = layout(&image);
    let files = backed_up(&env);
    let last_file_end = files.keys().map(|p| lay.ends[p]).max().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let one_block_short = last_file_end.div_ceil(2048) * 2048 - 2048;
    let past_manifest = lay.ends["manifest.db"].div_ceil(2048) * 2048;
    for cut_at in [one_block_short, past_manifest] {
        let short = dir.path().join(format!("cut-{cut_at}.iso"));
        cut(&image, &short, cut_at);
        let to = dir.path().join(format!("restored-{cut_at}"));
        let out = run(
            "dbackup-restore",
            &[
                OsStr::new("--json"),
                OsStr::new("-d"),
                short.as_os_str(),
                OsStr::new("--to"),
                to.as_os_str(),
            ],
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "cut at {cut_at}: {stderr}");
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        let failed: Vec<String> = json["failed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect();
        let mut lost = 0;
        for (rel, (name, md5)) in &files {
            let restored = to.join(name.trim_start_matches('/'));
            if lay.ends[rel] > cut_at {
                lost += 1;
                assert!(!restored.exists(), "{name} restored from past the cut");
                assert!(failed.contains(name), "{name} not named: {json}");
            } else {
                assert_eq!(&md5_file(&restored), md5, "{name}");
            }
        }
        assert!(lost > 0);
        assert_eq!(failed.len(), lost, "{json}");

        let out = run(
            "dbackup-find",
            &[OsStr::new("-d"), short.as_os_str(), OsStr::new("*.bin")],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        // A header, then one line per file.
        assert_eq!(text(&out.stdout).lines().count(), files.len() + 1);
    }
}
