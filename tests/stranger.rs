//! A stranger's recovery, with stock tools only: `md5sum -c MD5SUMS`, the
//! sqlite3 recipe of README.TXT, and the RECOVER.PY script every disc
//! carries, run with the system's python3 on extracted images and compared
//! with what dbackup-restore gives.

mod common;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn isos(env: &TestEnv) -> Vec<PathBuf> {
    let mut v: Vec<(i64, PathBuf)> = std::fs::read_dir(env.workdir.join("isos"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "iso"))
        .map(|p| {
            let n = p.file_stem().unwrap().to_str().unwrap()["disc-".len()..]
                .parse()
                .unwrap();
            (n, p)
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

/// Every image extracted with bsdtar into `root/<n>`; returns the folders in
/// disc order.
fn extract_all(env: &TestEnv, root: &Path) -> Vec<PathBuf> {
    isos(env)
        .iter()
        .enumerate()
        .map(|(i, iso)| {
            let dest = root.join((i + 1).to_string());
            std::fs::create_dir_all(&dest).unwrap();
            bsdtar_extract(iso, &dest);
            dest
        })
        .collect()
}

fn md5sum_c(dir: &Path) -> Output {
    Command::new("md5sum")
        .args(["-c", "--quiet", "MD5SUMS"])
        .current_dir(dir)
        .output()
        .unwrap()
}

fn recover(script: &Path, to: &Path, discs: &[&Path]) -> Output {
    Command::new("python3")
        .arg(script)
        .arg("--to")
        .arg(to)
        .args(discs)
        .output()
        .expect("python3 is installed")
}

/// A tree: relative path -> (None for a folder | content, mtime in ns).
type Tree = BTreeMap<Vec<u8>, (Option<Vec<u8>>, i128)>;

fn tree(root: &Path) -> Tree {
    let mut out = Tree::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap();
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        let content = if md.is_dir() {
            None
        } else if md.is_symlink() {
            let to = std::fs::read_link(e.path()).unwrap();
            Some([b"symlink to ", to.as_os_str().as_bytes()].concat())
        } else {
            Some(std::fs::read(e.path()).unwrap())
        };
        let mtime = md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128;
        // Folders' mtimes are not restored by either tool.
        let mtime = if md.is_dir() { 0 } else { mtime };
        out.insert(rel.as_os_str().as_bytes().to_vec(), (content, mtime));
    }
    out
}

/// A set over several discs: subfolders, names that are not UTF-8, a file
/// changed and one deleted after their first backup, on 400 kB discs.
fn multi_disc_set() -> TestEnv {
    let env = TestEnv::new();
    for i in 0..12u32 {
        let data: Vec<u8> = (0..40_000 + i * 997).map(|j| (j * 13 + i) as u8).collect();
        env.write(
            format!("{}/sub {}/Photo {i:02}.JPG", 2010 + i % 3, i % 2),
            &data,
        );
    }
    env.write(os_path(b"caf\xe9/r\xe9sum\xe9.txt"), b"latin-1 names");
    env.write(os_path(b"\xff\xfe.bin"), b"not utf-8 at all");
    env.write("notes/changed.txt", b"first version");
    env.write("notes/deleted.txt", b"soon gone");
    env.init(&["--disc-size", "707200", "--name", "Stranger"]);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    env.write("notes/changed.txt", b"second version, longer");
    std::fs::remove_file(env.watched.join("notes/deleted.txt")).unwrap();
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = env.run(&["close"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(isos(&env).len() >= 3, "{:?}", isos(&env));
    env
}

fn os_path(b: &[u8]) -> PathBuf {
    PathBuf::from(os(b))
}

#[test]
fn md5sums_checks_every_disc_and_its_catalogue() {
    let env = TestEnv::new();
    env.write("a.txt", b"alpha");
    env.write("b.txt", b"beta");
    env.init(&["--disc-size", "cd"]);
    assert!(env.run(&["monitor"]).status.success());
    assert!(env.run(&["close"]).status.success());
    std::fs::remove_file(env.watched.join("a.txt")).unwrap();
    assert!(env.run(&["monitor"]).status.success());
    let out = env.run(&["close"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let discs = extract_all(&env, dir.path());
    assert_eq!(discs.len(), 2, "a normal disc and a deletions-only disc");
    assert!(!discs[1].join("files").exists(), "disc 2 holds no files");
    for disc in &discs {
        let sums = std::fs::read_to_string(disc.join("MD5SUMS")).unwrap();
        for name in ["manifest.db", "README.TXT", "RECOVER.PY"] {
            assert!(
                sums.lines().any(|l| l.ends_with(&format!("  {name}"))),
                "{name} in {sums}"
            );
        }
        assert!(!sums.contains("MD5SUMS"));
        let out = md5sum_c(disc);
        assert!(out.status.success(), "{}", text(&out.stdout));

        // A flipped byte in the catalogue is caught.
        let db = disc.join("manifest.db");
        let mut data = std::fs::read(&db).unwrap();
        data[100] ^= 0x01;
        std::fs::write(&db, &data).unwrap();
        let out = md5sum_c(disc);
        assert!(!out.status.success());
        assert!(text(&out.stdout).contains("manifest.db: FAILED"));
    }
}

/// The sqlite3 command of README.TXT's "by hand" section, as printed there.
fn readme_sqlite3_recipe(readme: &str) -> String {
    let start = readme.find("     sqlite3 'file:").expect("the recipe");
    let rest = &readme[start..];
    // The command ends at the closing quote of its SQL.
    let open = rest.find('"').unwrap();
    let close = open + 1 + rest[open + 1..].find('"').unwrap();
    rest[..=close].replace("\\\n", " ")
}

#[test]
fn the_readme_recipe_finds_a_name_that_is_not_utf8() {
    let env = TestEnv::new();
    env.write(os_path(b"2012/IMG_0001 caf\xe9.jpg"), b"the photo");
    env.write("2012/IMG_0002.jpg", b"another");
    env.init(&["--disc-size", "cd"]);
    assert!(env.run(&["monitor"]).status.success());
    assert!(env.run(&["close"]).status.success());
    let dir = tempfile::tempdir().unwrap();
    let disc = &extract_all(&env, dir.path())[0];
    let readme = std::fs::read_to_string(disc.join("README.TXT")).unwrap();
    let recipe = readme_sqlite3_recipe(&readme).replace("/media/cdrom", disc.to_str().unwrap());
    let out = Command::new("sh").arg("-c").arg(&recipe).output().unwrap();
    assert!(out.status.success(), "{recipe}: {}", text(&out.stderr));
    let rows = text(&out.stdout);
    assert_eq!(rows.lines().count(), 1, "{recipe}: {rows}");
    let id: i64 = rows.split('|').next().unwrap().parse().unwrap();
    let copy = disc.join(format!("files/{}/{id}", id / 256));
    assert_eq!(std::fs::read(copy).unwrap(), b"the photo");
    assert!(rows.contains(&md5_bytes(b"the photo")), "{rows}");

    // The plain LIKE the recipe warns against misses it in this sqlite3;
    // if a build matches blobs, the recipe above is still right.
    let plain = recipe.replace("CAST(filename AS TEXT) LIKE", "filename LIKE");
    let out = Command::new("sh").arg("-c").arg(&plain).output().unwrap();
    eprintln!("plain LIKE finds {:?}", text(&out.stdout));

    // The Python one-liner of README.TXT finds it too.
    let line = readme
        .lines()
        .find(|l| l.trim_start().starts_with("python3 -c"))
        .unwrap()
        .trim()
        .replace("/media/cdrom", disc.to_str().unwrap());
    let out = Command::new("sh").arg("-c").arg(&line).output().unwrap();
    assert!(out.status.success(), "{line}: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("IMG_0001 caf\\xe9.jpg"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn recover_py_gives_what_dbackup_restore_gives() {
    let env = multi_disc_set();
    let dir = tempfile::tempdir().unwrap();
    let discs_dir = dir.path().join("discs");
    let discs = extract_all(&env, &discs_dir);
    let newest = discs.last().unwrap();

    let by_restore = dir.path().join("by-restore");
    let out = Command::new(bin("dbackup-restore"))
        .arg("--no-progress")
        .arg("-d")
        .arg(env.workdir.join("isos"))
        .arg("--to")
        .arg(&by_restore)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Every disc folder given one by one, and as one folder of discs.
    let by_script = dir.path().join("by-script");
    let list: Vec<&Path> = discs.iter().map(|d| d.as_path()).collect();
    let out = recover(&newest.join("RECOVER.PY"), &by_script, &list);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let by_folder = dir.path().join("by-folder");
    let out = recover(&discs[0].join("RECOVER.PY"), &by_folder, &[&discs_dir]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let want = tree(&by_restore);
    assert!(want.contains_key(b"caf\xe9/r\xe9sum\xe9.txt".as_slice()));
    assert!(!want.contains_key(b"notes/deleted.txt".as_slice()));
    assert_eq!(
        want[b"notes/changed.txt".as_slice()].0.as_deref(),
        Some(b"second version, longer".as_slice())
    );
    assert_eq!(tree(&by_script), want, "RECOVER.PY with every disc");
    assert_eq!(tree(&by_folder), want, "RECOVER.PY with a folder of discs");
    // Both equal the watched folder as it is now, mtimes included (at the
    // precision the catalogue keeps them).
    let watched = tree(&env.watched);
    assert_eq!(
        watched.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (name, (content, mtime)) in &watched {
        assert_eq!(&want[name].0, content);
        assert!((want[name].1 - mtime).abs() < 1_000, "{name:?}");
    }

    // A run again changes nothing and says all is there.
    let out = recover(&newest.join("RECOVER.PY"), &by_script, &list);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(tree(&by_script), want);

    // With the newest disc alone (no argument: the disc the script is on),
    // what is on other discs is listed, and the exit code says so.
    let partial = dir.path().join("partial");
    let out = recover(&newest.join("RECOVER.PY"), &partial, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("which was not given"), "{report}");
    for (name, entry) in tree(&partial) {
        assert_eq!(want.get(&name), Some(&entry), "{name:?}");
    }
}

/// A writable copy of a disc whose catalogue `sql` has changed.
fn doctored(disc: &Path, into: &Path, sql: &str) -> PathBuf {
    let out = Command::new("cp")
        .arg("-a")
        .arg(disc)
        .arg(into)
        .output()
        .unwrap();
    assert!(out.status.success());
    let conn = rusqlite::Connection::open(into.join("manifest.db")).unwrap();
    conn.execute_batch(sql).unwrap();
    into.to_path_buf()
}

#[test]
fn recover_py_never_writes_outside_its_target() {
    let env = TestEnv::new();
    for name in ["a", "b", "c", "d", "e/f"] {
        env.write(name, name.as_bytes());
    }
    env.init(&["--disc-size", "cd"]);
    assert!(env.run(&["monitor"]).status.success());
    assert!(env.run(&["close"]).status.success());
    let dir = tempfile::tempdir().unwrap();
    let disc = &extract_all(&env, dir.path().join("x").as_path())[0];
    let bad = doctored(
        disc,
        &dir.path().join("bad"),
        "UPDATE files SET filename='/../escaped' WHERE filename='/a';
         UPDATE files SET filename='//abs' WHERE filename='/b';
         UPDATE files SET filename=CAST(X'2F63006E756C' AS BLOB) WHERE filename='/c';
         UPDATE files SET filename='/link/inside' WHERE filename='/d';",
    );
    let target = dir.path().join("target");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, target.join("link")).unwrap();
    let out = recover(&bad.join("RECOVER.PY"), &target, &[&bad]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert_eq!(report.matches("refused").count(), 3, "{report}");
    assert!(
        report.contains("/link/inside: cannot make its folder"),
        "{report}"
    );
    assert!(!dir.path().join("escaped").exists());
    assert!(!Path::new("/abs").exists());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    let got = tree(&target);
    assert_eq!(
        got.keys().map(|k| text(k)).collect::<Vec<_>>(),
        ["e", "e/f", "link"]
    );
}

#[test]
fn recover_py_checks_md5s_and_skips_damaged_versions() {
    let env = TestEnv::new();
    env.write("good", b"good content");
    env.write("rotten", b"rotten content");
    env.write("damaged", b"never imaged");
    env.init(&["--disc-size", "cd"]);
    assert!(env.run(&["monitor"]).status.success());
    assert!(env.run(&["close"]).status.success());
    let dir = tempfile::tempdir().unwrap();
    let disc = &extract_all(&env, dir.path().join("x").as_path())[0];
    let disc = doctored(
        disc,
        &dir.path().join("d"),
        "CREATE TABLE damaged(file_id INTEGER, noted REAL);
         INSERT INTO damaged SELECT id, 0 FROM files WHERE filename='/damaged';",
    );
    let id: i64 = rusqlite::Connection::open(disc.join("manifest.db"))
        .unwrap()
        .query_row("SELECT id FROM files WHERE filename='/rotten'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let copy = disc.join(format!("files/{}/{id}", id / 256));
    std::fs::write(&copy, b"rotten CONTENT").unwrap();
    let target = dir.path().join("target");
    let out = recover(&disc.join("RECOVER.PY"), &target, &[&disc]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("/rotten: no good copy"), "{report}");
    assert!(report.contains("/damaged: damaged before"), "{report}");
    assert_eq!(
        tree(&target).keys().map(|k| text(k)).collect::<Vec<_>>(),
        ["good"],
        "nothing unchecked under a final name, no temp folder left"
    );
}

#[test]
fn recover_py_reads_the_original_dbackups_discs() {
    let dir = tempfile::tempdir().unwrap();
    let discs = original_set(
        dir.path(),
        &[
            vec![
                ("/2012/a.jpg", b"one".to_vec()),
                ("/b.txt", b"two".to_vec()),
            ],
            vec![("/2012/a.jpg", b"one, changed".to_vec())],
        ],
    );
    // The original's discs carry no script: a stranger brings one from any
    // of our discs.
    let script = dir.path().join("RECOVER.PY");
    std::fs::write(&script, dbackup::disc::RECOVER_SCRIPT).unwrap();
    let target = dir.path().join("target");
    let list: Vec<&Path> = discs.iter().map(|d| d.as_path()).collect();
    let out = recover(&script, &target, &list);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let got = tree(&target);
    assert_eq!(
        got[b"2012/a.jpg".as_slice()].0.as_deref(),
        Some(b"one, changed".as_slice())
    );
    assert_eq!(
        got[b"b.txt".as_slice()].0.as_deref(),
        Some(b"two".as_slice())
    );
    // Whole-second mtimes, as the original stored them.
    let mtime = (1_300_000_000i128 - 86_400) * 1_000_000_000;
    assert_eq!(got[b"b.txt".as_slice()].1, mtime);
    assert!(
        !got.contains_key(b"never".as_slice()),
        "copied=0 is no backup"
    );
}

/// RECOVER.PY keeps to the grammar of Python 3.6, the oldest it promises.
#[test]
fn recover_py_parses_as_python_3_6() {
    let out = Command::new("python3")
        .arg("-c")
        .arg("import ast, sys; ast.parse(sys.stdin.read(), feature_version=(3, 6))")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(dbackup::disc::RECOVER_SCRIPT.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A feature of a later Python is refused, so the check can fail.
    let out = Command::new("python3")
        .arg("-c")
        .arg("import ast; ast.parse('if (x := 1): pass', feature_version=(3, 6))")
        .output()
        .unwrap();
    assert!(!out.status.success());
}
