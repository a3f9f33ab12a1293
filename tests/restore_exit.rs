//! dbackup-restore's exit code tells what the run did: 1 when nothing
//! matched or something could not be restored (a disc not given, or given
//! but unusable: the rest is still restored), whatever happens to stdout.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::*;

fn restore_cmd() -> Command {
    let mut c = Command::new(bin("dbackup-restore"));
    c.arg("--no-progress").env_remove("FAILPOINTS");
    c
}

fn restore(args: &[&std::ffi::OsStr]) -> Output {
    restore_cmd()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run dbackup-restore")
}

/// A set of several small discs, every one closed with its image.
fn set_of_discs() -> TestEnv {
    let env = TestEnv::new();
    for i in 0..18u32 {
        let data: Vec<u8> = (0..20_000 + i * 1500).map(|j| (j * 11 + i) as u8).collect();
        env.write(format!("{}/file {i:02}", 2010 + i % 3), &data);
    }
    env.init(&["--disc-size", "707200", "--name", "Exit"]);
    for step in ["monitor", "close"] {
        let out = env.run(&[step]);
        assert_eq!(out.status.code(), Some(0), "{step}: {}", text(&out.stderr));
    }
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

/// Name -> MD5 of the files backed up on discs other than `disc`.
fn files_not_on(env: &TestEnv, disc: i64) -> BTreeMap<Vec<u8>, String> {
    let conn = env.catalog();
    let mut stmt = conn
        .prepare("SELECT filename, md5 FROM files WHERE disc_id<>?1 AND copied=1")
        .unwrap();
    stmt.query_map([disc], |r| {
        Ok((r.get::<_, String>(0)?.into_bytes(), r.get::<_, String>(1)?))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

#[test]
fn nothing_matched_exits_1_and_writes_nothing() {
    let env = set_of_discs();
    let dir = env.workdir.join("isos");
    let target = env.dir.path().join("restored");
    let cases: [&[&str]; 4] = [
        &["no such file"],
        &["--as-of", "1990-01-01"],
        &["--dry-run", "*.nothing"],
        &["--json", "*.nothing"],
    ];
    for extra in cases {
        let mut args = vec![
            "-d".as_ref(),
            dir.as_os_str(),
            "--to".as_ref(),
            target.as_os_str(),
        ];
        args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
        let out = restore(&args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{extra:?}: {}",
            text(&out.stderr)
        );
        if !extra.contains(&"--json") {
            assert!(text(&out.stderr).contains("nothing matched"), "{extra:?}");
        }
        assert!(!target.exists(), "{extra:?}");
    }
}

#[test]
fn an_unusable_image_is_left_out_like_a_missing_disc_and_the_rest_restored() {
    let env = set_of_discs();
    let images = isos(&env);
    assert!(images.len() >= 3, "{images:?}");
    let dir = env.dir.path().join("images");
    std::fs::create_dir(&dir).unwrap();
    for p in &images {
        std::fs::copy(p, dir.join(p.file_name().unwrap())).unwrap();
    }
    // Disc 1 cut to a tenth of its size, as a copy that stopped.
    let first = dir.join(images[0].file_name().unwrap());
    let len = std::fs::metadata(&first).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&first)
        .unwrap()
        .set_len(len / 10)
        .unwrap();
    let target = env.dir.path().join("restored");
    let out = restore(&[
        "-d".as_ref(),
        dir.as_os_str(),
        "--to".as_ref(),
        target.as_os_str(),
        "--json".as_ref(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unusable"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["plan"]["unusable"].as_array().unwrap().len(), 1);
    let want = files_not_on(&env, 1);
    assert_eq!(report["restored"]["files"], want.len());
    assert_eq!(tree_md5s(&target), want);
    let failed = report["failed"].as_array().unwrap();
    assert!(!failed.is_empty());
    assert!(failed
        .iter()
        .all(|f| f["kind"] == "missing_disc" && f["disc"] == 1));
}

#[test]
fn a_closed_stdout_does_not_change_the_exit_code() {
    let env = set_of_discs();
    let images = isos(&env);
    // Only the newest disc: the others are missing.
    let newest = images.last().unwrap();
    for json in [false, true] {
        let target = env.dir.path().join(format!("restored-{json}"));
        let mut c = restore_cmd();
        c.arg("-d").arg(newest).arg("--to").arg(&target);
        if json {
            c.arg("--json");
        }
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the child writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "json {json}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        // The work was still done.
        let restored = tree_md5s(&target);
        assert!(!restored.is_empty());
        let all = tree_md5s(&env.watched);
        for (name, md5) in &restored {
            assert_eq!(all.get(name), Some(md5));
        }
    }
}
