//! dbackup-restore's own temp names against names from the disc: files are
//! written in a private folder (`.dbackup-tmp-<random>/`) at the top of the
//! target, so a backed-up name that looks like a temp name (an old one, a
//! new one, or a copy of a whole leftover folder) comes back as itself; a
//! killed run's leftover folder is removed by the next run, and nothing
//! else is.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn restore_cmd() -> Command {
    let mut c = Command::new(bin("dbackup-restore"));
    c.arg("--no-progress").env_remove("FAILPOINTS");
    c
}

fn restore(isos: &Path, target: &Path) -> Output {
    restore_cmd()
        .arg("-d")
        .arg(isos)
        .arg("--to")
        .arg(target)
        .stdin(Stdio::null())
        .output()
        .expect("run dbackup-restore")
}

fn closed_set(env: &TestEnv, extra: &[&str]) {
    let mut args = vec!["--name", "Names"];
    args.extend_from_slice(extra);
    env.init(&args);
    for step in ["monitor", "close"] {
        let out = env.run(&[step]);
        assert_eq!(out.status.code(), Some(0), "{step}: {}", text(&out.stderr));
    }
}

/// The names at the top of `root` that are private temp folders.
fn temp_folders(root: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .as_bytes()
                .starts_with(b".dbackup-tmp-")
        })
        .collect()
}

#[test]
fn a_name_like_an_old_temp_name_keeps_its_own_bytes() {
    // The reproduction: `.dbackup-restore-2.tmp` is file 1 and `x` is
    // file 2; the old temp name of file 2 was file 1's name.
    let env = TestEnv::new();
    env.write(".dbackup-restore-2.tmp", b"content of file one");
    env.write("x", b"content of file two");
    for id in 0..6 {
        env.write(
            format!("d/.dbackup-restore-{id}.tmp"),
            format!("d{id}").as_bytes(),
        );
        env.write(format!("d/{id}.tmp"), format!("n{id}").as_bytes());
    }
    closed_set(&env, &[]);
    let conn = env.catalog();
    let id: i64 = conn
        .query_row(
            "SELECT id FROM files WHERE filename='/.dbackup-restore-2.tmp'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(id, 1, "the set reproduces the report");
    let target = env.dir.path().join("restored");
    let out = restore(&env.workdir.join("isos"), &target);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(tree_md5s(&target), tree_md5s(&env.watched));
    assert!(temp_folders(&target).is_empty());
}

#[test]
fn a_backed_up_copy_of_a_leftover_folder_comes_back_and_stays() {
    // A folder with the private folder's name and a marker in the very
    // words a run writes (with the inode of the watched copy): restored
    // like any folder, and a second run into the same target keeps it.
    let env = TestEnv::new();
    let leftover = env.watched.join(".dbackup-tmp-0123456789abcdef");
    std::fs::create_dir_all(&leftover).unwrap();
    let meta = std::fs::metadata(&leftover).unwrap();
    let marker = format!(
        "dbackup-restore private temp folder (device {} inode {}); \
         removed by the next restore into this folder\n",
        std::os::unix::fs::MetadataExt::dev(&meta),
        std::os::unix::fs::MetadataExt::ino(&meta)
    );
    env.write(
        ".dbackup-tmp-0123456789abcdef/DBACKUP-RESTORE-TEMP",
        marker.as_bytes(),
    );
    env.write(
        ".dbackup-tmp-0123456789abcdef/0.tmp",
        b"data, not a temp file",
    );
    env.write(".dbackup-tmp-", b"prefix only");
    closed_set(&env, &[]);
    let target = env.dir.path().join("restored");
    for run in 0..2 {
        let out = restore(&env.workdir.join("isos"), &target);
        assert_eq!(
            out.status.code(),
            Some(0),
            "run {run}: {}",
            text(&out.stderr)
        );
        assert_eq!(tree_md5s(&target), tree_md5s(&env.watched), "run {run}");
    }
}

#[test]
fn a_killed_run_leaves_only_its_private_folder_and_the_next_run_removes_it() {
    let env = TestEnv::new();
    for i in 0..40u32 {
        let data: Vec<u8> = (0..3000 + i * 100).map(|j| (j * 7 + i) as u8).collect();
        env.write(format!("f/{i:02}"), &data);
    }
    closed_set(&env, &[]);
    let isos = env.workdir.join("isos");
    let target = env.dir.path().join("restored");
    let mut child = restore_cmd()
        .arg("-d")
        .arg(&isos)
        .arg("--to")
        .arg(&target)
        .env("FAILPOINTS", "restore::pause=sleep(100)")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a few files are written and waiting in the private
    // folder for their batch, then kill without warning.
    let start = Instant::now();
    let has_temp_files = || {
        target.is_dir()
            && temp_folders(&target)
                .iter()
                .any(|d| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0) >= 3)
    };
    while start.elapsed() < Duration::from_secs(60) && !has_temp_files() {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(has_temp_files(), "no temp files seen");
    child.kill().unwrap();
    child.wait().unwrap();
    let left = temp_folders(&target);
    assert_eq!(left.len(), 1, "{left:?}");
    // Nothing but the private folder: no file under a final name that is
    // not complete.
    for (name, md5) in tree_md5s(&target) {
        if !name.starts_with(b"/.dbackup-tmp-") {
            assert_eq!(tree_md5s(&env.watched).get(&name), Some(&md5));
        }
    }
    let out = restore(&isos, &target);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(tree_md5s(&target), tree_md5s(&env.watched));
    assert!(temp_folders(&target).is_empty());
}

#[test]
fn a_top_level_name_the_run_will_write_is_never_its_private_folder() {
    // Names of the private folder's shape at the top of the set and
    // already in the target (not ours: no marker) are all kept.
    let env = TestEnv::new();
    for i in 0..8 {
        env.write(
            format!(".dbackup-tmp-{i:016x}/f"),
            format!("{i}").as_bytes(),
        );
        env.write(format!(".dbackup-tmp-{i:016x}.partial"), b"p");
    }
    closed_set(&env, &[]);
    let target = env.dir.path().join("restored");
    let theirs = target.join(".dbackup-tmp-ffffffffffffffff");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(theirs.join("DBACKUP-RESTORE-TEMP"), b"not a marker").unwrap();
    std::fs::create_dir_all(target.join(".dbackup-tmp-eeeeeeeeeeeeeeee/sub")).unwrap();
    let out = restore(&env.workdir.join("isos"), &target);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut want = tree_md5s(&env.watched);
    want.insert(
        b"/.dbackup-tmp-ffffffffffffffff/DBACKUP-RESTORE-TEMP".to_vec(),
        md5_bytes(b"not a marker"),
    );
    assert_eq!(tree_md5s(&target), want);
    assert!(target.join(".dbackup-tmp-eeeeeeeeeeeeeeee/sub").is_dir());
    // Eight folders and eight files of the set, and the two of the target.
    assert_eq!(temp_folders(&target).len(), 18);
}

/// Unmounts on drop, so a failed assertion leaves no mount behind.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_folder_on_another_filesystem_is_reported_per_file() {
    let env = TestEnv::new();
    env.write("m/inside", b"on the mounted folder");
    env.write("top", b"beside it");
    closed_set(&env, &[]);
    let target = env.dir.path().join("restored");
    let mnt = target.join("m");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = is_root()
        && Command::new("mount")
            .args(["-t", "tmpfs", "none"])
            .arg(&mnt)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    let _guard = Mounted(mnt.clone());
    let out = restore(&env.workdir.join("isos"), &target);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("another filesystem"), "{stderr}");
    assert_eq!(std::fs::read(target.join("top")).unwrap(), b"beside it");
    assert!(!mnt.join("inside").exists());
    assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0);
    assert!(temp_folders(&target).is_empty());
}
