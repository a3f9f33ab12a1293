//! Verifying a damaged medium: sectors of an image that never read (failed
//! through the fault point `verify::sector`, whose label is the sector's
//! LBA) cost only themselves. Each is tried a bounded number of times and
//! skipped, the rest of its file is still read so that every bad sector is
//! found, and the report names each damaged file with its unreadable
//! sector ranges, as `xorriso -check_media report=files` does; every
//! other file is checked as usual. On a loop device (a disc in its drive
//! as the kernel shows it) when the tests run as root.
//!
//! Needs `--features failpoints`.
#![cfg(feature = "failpoints")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use dbackup::iso::{IsoReader, BLOCK};
use proptest::prelude::*;
use serde_json::Value;

/// A closed disc of seven files (one of 300 kB, spanning several reads),
/// and its image.
fn one_disc() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    for i in 0..6u32 {
        let data: Vec<u8> = (0..5_000 + i * 7_000).map(|j| (j * 11 + i) as u8).collect();
        env.write(format!("f{i}.bin"), &data);
    }
    let big: Vec<u8> = (0..300_000u32).map(|j| (j % 251) as u8).collect();
    env.write("big.bin", &big);
    env.init(&["--disc-size", "10M", "--name", "Damaged"]);
    for args in [["monitor"], ["close"]] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let image = env.workdir.join("isos/disc-1.iso");
    (env, image)
}

/// The sectors (LBAs) of each file under `files/`.
fn file_sectors(image: &Path) -> BTreeMap<String, Vec<u64>> {
    let r = IsoReader::open(image).unwrap();
    r.files()
        .iter()
        .filter(|f| f.path.starts_with("files/"))
        .map(|f| {
            let lbas = f
                .extents
                .iter()
                .flat_map(|&(off, len)| off / BLOCK..(off + len).div_ceil(BLOCK))
                .collect();
            (f.path.clone(), lbas)
        })
        .collect()
}

/// Runs dbackup-verify --json on `source` with the sectors `bad` failing
/// every read: (exit code, report of the disc, stderr).
fn verify_with_bad(source: &Path, bad: &BTreeSet<u64>) -> (Option<i32>, Value, String) {
    let mut cmd = Command::new(bin("dbackup-verify"));
    cmd.args(["--no-progress", "--json", "-d"]).arg(source);
    if bad.is_empty() {
        cmd.env_remove("FAILPOINTS");
    } else {
        let labels: Vec<String> = bad.iter().map(|l| format!("lba:{l}")).collect();
        cmd.env(
            "FAILPOINTS",
            format!("verify::sector=return(eio:{})", labels.join("|")),
        );
    }
    let out = cmd.output().unwrap();
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {} / {stderr}", text(&out.stdout)));
    (out.status.code(), json["discs"][0].clone(), stderr)
}

/// Runs of consecutive LBAs, as (first, last).
fn runs(lbas: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for l in lbas {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == l => *last = l,
            _ => out.push((l, l)),
        }
    }
    out
}

/// What the report must say: exactly the files hit are unreadable, each
/// with exactly its bad sectors; the others are ok.
fn check(files: &BTreeMap<String, Vec<u64>>, bad: &BTreeSet<u64>, source: &Path) {
    let (code, report, stderr) = verify_with_bad(source, bad);
    let mut expected: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    for (rel, lbas) in files {
        let hit: Vec<u64> = lbas.iter().copied().filter(|l| bad.contains(l)).collect();
        if !hit.is_empty() {
            expected.insert(rel, runs(hit));
        }
    }
    let mut got: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    for p in report["problems"].as_array().unwrap() {
        assert_eq!(p["problem"], "unreadable", "{p}");
        let ranges = p["unreadable_sectors"]
            .as_array()
            .unwrap_or_else(|| panic!("no sectors: {p}"))
            .iter()
            .map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap()))
            .collect();
        let path = p["path"].as_str().unwrap();
        assert!(
            stderr.contains(path) && stderr.contains("unreadable sector"),
            "{stderr}"
        );
        got.insert(
            files.keys().find(|k| k.as_str() == path).unwrap().as_str(),
            ranges,
        );
    }
    assert_eq!(got, expected, "bad sectors {bad:?}");
    assert_eq!(report["unreadable"], expected.len() as u64);
    assert_eq!(report["ok"], (files.len() - expected.len()) as u64);
    assert_eq!(report["damaged"], 0);
    let want = if expected.is_empty() { 0 } else { 1 };
    assert_eq!(code, Some(want), "{stderr}");
}

#[test]
fn bad_spots_in_two_files_name_both_with_their_sectors() {
    let (_env, image) = one_disc();
    let files = file_sectors(&image);
    let big = files.values().max_by_key(|l| l.len()).unwrap();
    let small = files.values().min_by_key(|l| l.len()).unwrap();
    // The big file's second sector, three in its middle (in another span
    // of reads), its last; the small file's first.
    let mid = big.len() / 2;
    let bad: BTreeSet<u64> = [
        big[1],
        big[mid],
        big[mid + 1],
        big[mid + 2],
        big[big.len() - 1],
        small[0],
    ]
    .into_iter()
    .collect();
    check(&files, &bad, &image);
    let (_, report, _) = verify_with_bad(&image, &bad);
    let text = report.to_string();
    assert!(
        text.contains(&format!(
            "LBA {}, {}-{}, {}",
            big[1],
            big[mid],
            big[mid + 2],
            big[big.len() - 1]
        )),
        "{text}"
    );
}

/// The same through a loop device, the way a disc in its drive is read
/// (its length comes from the device, not from a file's size).
#[test]
fn a_loop_device_is_read_like_its_image() {
    if !is_root() {
        eprintln!("skipped: a loop device needs root");
        return;
    }
    let (_env, image) = one_disc();
    let out = Command::new("losetup")
        .args(["-f", "--show", "-r"])
        .arg(&image)
        .output()
        .expect("losetup");
    if !out.status.success() {
        eprintln!("skipped: no loop device: {}", text(&out.stderr));
        return;
    }
    let dev = PathBuf::from(text(&out.stdout).trim());
    struct Detach(PathBuf);
    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
        }
    }
    let _detach = Detach(dev.clone());
    let files = file_sectors(&image);
    check(&files, &BTreeSet::new(), &dev);
    let big = files.values().max_by_key(|l| l.len()).unwrap();
    let bad: BTreeSet<u64> = [big[3], big[4], big[40]].into_iter().collect();
    check(&files, &bad, &dev);
}

fn config() -> ProptestConfig {
    binary_property_config(16, 32)
}

proptest! {
    #![proptest_config(config())]

    /// Any set of bad sectors anywhere in the image (in files, between
    /// them, in the metadata: the point fails only what verify reads of
    /// files): exactly the files they hit are unreadable, each with exactly
    /// its bad sectors, never a panic or another kind of problem.
    #[test]
    fn any_bad_sectors_are_mapped_to_the_files_they_hit(
        picks in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let (_env, image) = SHARED.with(|s| s.clone());
        let files = file_sectors(&image);
        let blocks = std::fs::metadata(&image).unwrap().len() / BLOCK;
        let bad: BTreeSet<u64> = picks.iter().map(|i| i.index(blocks as usize) as u64).collect();
        check(&files, &bad, &image);
    }
}

thread_local! {
    /// One disc for every case of the property (made once per thread).
    static SHARED: (std::rc::Rc<TestEnv>, PathBuf) = {
        let (env, image) = one_disc();
        (std::rc::Rc::new(env), image)
    };
}
