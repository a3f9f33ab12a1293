//! Generated watched trees whose names are, or look like, every temp,
//! partial or reserved name the tools use (old and new temp names,
//! `.dbackup-tmp-*`, `*.partial`, `manifest.db`, `files`, `README.TXT`,
//! `MD5SUMS`, the marker), with control characters, newlines, non-UTF-8
//! bytes and 255-byte names. Each is staged, closed to an image and
//! restored three ways: into an empty target, into a target that already
//! holds such names, and by a run killed midway and run again. Every file
//! comes back under its own name with its own bytes, nothing more, nothing
//! less, and no private temp folder is left.

mod common;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use proptest::prelude::*;

use common::*;

fn restore(isos: &Path, target: &Path, faults: Option<&str>) -> Output {
    let mut c = Command::new(bin("dbackup-restore"));
    c.arg("--no-progress")
        .arg("-d")
        .arg(isos)
        .arg("--to")
        .arg(target)
        .env_remove("FAILPOINTS")
        .stdin(Stdio::null());
    if let Some(f) = faults {
        c.env("FAILPOINTS", f);
    }
    c.output().expect("run dbackup-restore")
}

/// One name component, drawn from the names that could be mistaken for
/// the tools' own, and from names that are awkward to carry.
fn component() -> impl Strategy<Value = Vec<u8>> {
    let reserved = prop::sample::select(vec![
        "manifest.db",
        "files",
        "README.TXT",
        "MD5SUMS",
        "DBACKUP-RESTORE-TEMP",
        "x.partial",
        "disc-1.iso.partial",
        "disc-1.iso.failed",
        "disc-1.iso",
        "staging",
        "0",
        "1",
    ])
    .prop_map(|s| s.as_bytes().to_vec());
    let awkward = prop::sample::select(vec![
        &b"new\nline"[..],
        b"tab\tname",
        b"\x01\x02ctl",
        b"del\x7f",
        b"caf\xe9",
        b"\xff\xfe",
        b"\x1b[31mred",
        b" lead and trail ",
    ])
    .prop_map(|s| s.to_vec());
    let long = prop::sample::select(vec![
        vec![b'L'; 255],
        vec![0xe9; 255],
        [&b".dbackup-tmp-"[..], &[b'z'; 242][..]].concat(),
        [&b".dbackup-restore-1"[..], &[b'9'; 233][..], b".tmp"].concat(),
    ]);
    prop_oneof![
        (0u8..6).prop_map(|n| format!(".dbackup-restore-{n}.tmp").into_bytes()),
        (0u8..6).prop_map(|n| format!("{n}.tmp").into_bytes()),
        any::<u64>().prop_map(|n| format!(".dbackup-tmp-{n:016x}").into_bytes()),
        (0u8..3).prop_map(|n| format!(".dbackup-tmp-{n:016x}").into_bytes()),
        Just(b".dbackup-tmp-".to_vec()),
        reserved,
        awkward,
        long,
        "[a-z]{1,6}".prop_map(|s| s.into_bytes()),
    ]
}

/// Paths of one to three components, with contents.
fn tree() -> impl Strategy<Value = Vec<(Vec<Vec<u8>>, Vec<u8>)>> {
    prop::collection::vec(
        (
            prop::collection::vec(component(), 1..=3),
            prop::collection::vec(any::<u8>(), 0..400),
        ),
        1..14,
    )
}

/// Whether one path is the other, or a folder above it.
fn clash(a: &[Vec<u8>], b: &[Vec<u8>]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// Keeps the paths that clash with no earlier one (nor with `avoid`).
fn consistent(
    paths: Vec<(Vec<Vec<u8>>, Vec<u8>)>,
    avoid: &[(Vec<Vec<u8>>, Vec<u8>)],
) -> Vec<(Vec<Vec<u8>>, Vec<u8>)> {
    let mut kept: Vec<(Vec<Vec<u8>>, Vec<u8>)> = Vec::new();
    for (p, data) in paths {
        if !kept.iter().chain(avoid).any(|(q, _)| clash(&p, q)) {
            kept.push((p, data));
        }
    }
    kept
}

fn write_tree(root: &Path, files: &[(Vec<Vec<u8>>, Vec<u8>)]) {
    for (parts, data) in files {
        let rel = parts.join(&b'/');
        let p = root.join(os(&rel));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
    }
}

fn md5s(files: &[(Vec<Vec<u8>>, Vec<u8>)]) -> BTreeMap<Vec<u8>, String> {
    files
        .iter()
        .map(|(parts, data)| ([&b"/"[..], &parts.join(&b'/')].concat(), md5_bytes(data)))
        .collect()
}

/// The files below `root` not under a top-level name of `allowed`: what a
/// killed run may leave (its private folder), nothing else.
fn outside(root: &Path, allowed: &BTreeMap<Vec<u8>, String>) -> Vec<Vec<u8>> {
    let top = |n: &[u8]| n[1..].split(|&b| b == b'/').next().unwrap_or(b"").to_vec();
    let tops: Vec<Vec<u8>> = allowed.keys().map(|n| top(n)).collect();
    tree_md5s(root)
        .into_keys()
        .filter(|n| !tops.contains(&top(n)))
        .collect()
}

fn no_private_folder(root: &Path, allowed: &BTreeMap<Vec<u8>, String>) -> bool {
    let tops: Vec<Vec<u8>> = allowed
        .keys()
        .map(|n| n[1..].split(|&b| b == b'/').next().unwrap_or(b"").to_vec())
        .collect();
    std::fs::read_dir(root).unwrap().all(|e| {
        let n = e.unwrap().file_name();
        !n.as_bytes().starts_with(b".dbackup-tmp-") || tops.contains(&n.as_bytes().to_vec())
    })
}

fn check(
    files: Vec<(Vec<Vec<u8>>, Vec<u8>)>,
    extras: Vec<(Vec<Vec<u8>>, Vec<u8>)>,
    kill_at: usize,
    kill_point: &str,
) -> Result<bool, TestCaseError> {
    let files = consistent(files, &[]);
    let env = TestEnv::new();
    write_tree(&env.watched, &files);
    env.init(&["--name", "Props"]);
    for step in ["monitor", "close"] {
        let out = env.run(&[step]);
        prop_assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            step,
            text(&out.stderr)
        );
    }
    let want = md5s(&files);
    prop_assert_eq!(&tree_md5s(&env.watched), &want);
    let isos = env.workdir.join("isos");

    // Into an empty target.
    let fresh = env.dir.path().join("fresh");
    let out = restore(&isos, &fresh, None);
    prop_assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    prop_assert_eq!(&tree_md5s(&fresh), &want);
    prop_assert!(no_private_folder(&fresh, &want));

    // Into a target that already holds such names, and a folder that looks
    // like a leftover but is not one (its marker names another folder).
    let mut extras = consistent(extras, &files);
    extras = consistent(
        vec![(
            vec![
                b".dbackup-tmp-00000000000000aa".to_vec(),
                b"DBACKUP-RESTORE-TEMP".to_vec(),
            ],
            b"dbackup-restore private temp folder (device 0 inode 0); \
              removed by the next restore into this folder\n"
                .to_vec(),
        )],
        &files,
    )
    .into_iter()
    .chain(extras)
    .collect();
    let busy = env.dir.path().join("busy");
    write_tree(&busy, &extras);
    let out = restore(&isos, &busy, None);
    prop_assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut both = want.clone();
    both.extend(md5s(&extras));
    prop_assert_eq!(&tree_md5s(&busy), &both);
    prop_assert!(no_private_folder(&busy, &both));

    // Killed midway, then run again.
    let killed = env.dir.path().join("killed");
    let fault = format!("{kill_point}={kill_at}*off->return(kill)");
    let out = restore(&isos, &killed, Some(&fault));
    let stopped = out.status.signal() == Some(9);
    prop_assert!(
        stopped || out.status.code() == Some(0),
        "{:?}: {}",
        out.status,
        text(&out.stderr)
    );
    if killed.is_dir() {
        let restored = tree_md5s(&killed);
        for name in outside(&killed, &want) {
            prop_assert!(stopped, "left after a whole run: {:?}", name);
        }
        for (name, md5) in &restored {
            if let Some(w) = want.get(name) {
                prop_assert_eq!(w, md5, "{:?} under its final name", name);
            }
        }
    }
    let out = restore(&isos, &killed, None);
    prop_assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    prop_assert_eq!(&tree_md5s(&killed), &want);
    prop_assert!(no_private_folder(&killed, &want));
    Ok(stopped)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 20,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_file_comes_back_under_its_own_name(
        files in tree(),
        extras in tree(),
        kill_at in 0usize..14,
        kill_point in prop::sample::select(vec!["restore::write", "restore::rename"]),
    ) {
        check(files, extras, kill_at, kill_point)?;
    }
}

/// The reproduction, kept as a fixed case of the class.
#[test]
fn an_old_temp_name_and_the_file_it_was_for() {
    let files = vec![
        (vec![b".dbackup-restore-2.tmp".to_vec()], b"one".to_vec()),
        (vec![b"x".to_vec()], b"two".to_vec()),
    ];
    let extras = vec![(vec![b".dbackup-restore-1.tmp".to_vec()], b"theirs".to_vec())];
    let killed = check(files, extras, 1, "restore::rename").unwrap();
    assert!(killed, "the second rename was to kill the run");
}
