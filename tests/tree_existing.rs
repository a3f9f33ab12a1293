//! A restore into a target that already holds folders of the same names:
//! a folder the run did not make is the user's, kept as it is (its mode
//! and owner), as a different file at a name is kept without --overwrite;
//! with --overwrite it gets the recorded mode and mtime.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};

use common::*;

/// `dbackup-restore` of the set's images into `to`, with `extra` flags.
fn restore(env: &TestEnv, to: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(bin("dbackup-restore"))
        .arg("--no-progress")
        .env_remove("FAILPOINTS")
        .arg("-d")
        .arg(env.workdir.join("isos"))
        .arg("--to")
        .arg(to)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_folder_already_in_the_target_keeps_its_mode_and_mtime() {
    let env = TestEnv::new();
    env.write("keep/f", b"data");
    env.init(&["--name", "Tree"]);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    {
        let conn = env.catalog();
        conn.execute(
            "UPDATE entries SET mode=511, mtime_sec=0, mtime_nsec=0 WHERE filename='/keep'",
            [],
        )
        .unwrap();
    }
    let out = env.run(&["close"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let to = env.dir.path().join("to");
    let private = to.join("keep");
    std::fs::create_dir_all(&private).unwrap();
    std::fs::write(private.join("secret"), b"mine").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let before = std::fs::symlink_metadata(&private).unwrap();

    let out = restore(&env, &to, &[]);
    assert_eq!(
        std::fs::read(private.join("f")).unwrap(),
        b"data",
        "{}",
        text(&out.stderr)
    );
    let after = std::fs::symlink_metadata(&private).unwrap();
    assert_eq!(
        after.permissions().mode() & 0o7777,
        0o700,
        "the user's folder was made world-writable"
    );
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    // (Its mtime is the kernel's once a file is written into it.)

    // With --overwrite the user asks for the recorded folder.
    let out = restore(&env, &to, &["--overwrite"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after = std::fs::symlink_metadata(&private).unwrap();
    assert_eq!(after.permissions().mode() & 0o7777, 0o777);
    assert_eq!(after.mtime(), 0);
}
