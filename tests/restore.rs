//! dbackup-restore driven through the real binaries: sets built with
//! dbackup-stage (images in WORKDIR/isos), discs extracted with bsdtar and
//! edited by hand, the original's discs, and one drive with discs swapped
//! between prompts on a pseudo-terminal.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

fn restore_cmd() -> Command {
    let mut c = Command::new(bin("dbackup-restore"));
    c.arg("--no-progress").env_remove("FAILPOINTS");
    c
}

fn restore<S: AsRef<OsStr>>(args: &[S]) -> Output {
    restore_cmd()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run dbackup-restore")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

fn set_mtime(p: &Path, secs: u64, nanos: u32) {
    std::fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::new(secs, nanos))
        .unwrap();
}

fn monitor(env: &TestEnv) {
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

fn close(env: &TestEnv) {
    let out = env.run(&["close"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A set over several 400 kB discs: photos of 20-60 kB in three folders
/// with sub-second mtimes, an empty file, a name with spaces and one that
/// is not UTF-8. Every disc is closed and has its image.
fn photo_set() -> TestEnv {
    let env = TestEnv::new();
    for i in 0..24u32 {
        let data: Vec<u8> = (0..20_000 + i * 1700)
            .map(|j| (j * 13 + i * 7) as u8)
            .collect();
        let p = env.write(format!("{}/IMG {i:02}.jpg", 2010 + i % 3), &data);
        set_mtime(&p, 1_500_000_000 + u64::from(i) * 3600, 123_456_789 + i);
    }
    env.write("notes/read me.txt", b"hello");
    env.write("notes/empty", b"");
    let p = env.write(Path::new(os(b"caf\xe9/n\xf6te.txt")), b"latin-1 name");
    set_mtime(&p, 1_000_000_000, 999_999_000);
    env.init(&["--disc-size", "707200", "--name", "Photos"]);
    monitor(&env);
    close(&env);
    env
}

/// A set on one disc with the given files, closed, with its image.
fn one_disc_set(files: &[(&str, &[u8])]) -> TestEnv {
    let env = TestEnv::new();
    for (name, data) in files {
        env.write(name, data);
    }
    env.init(&["--name", "Small"]);
    monitor(&env);
    close(&env);
    env
}

fn isos(env: &TestEnv) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(env.workdir.join("isos"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "iso"))
        .collect();
    v.sort_by_key(|p| disc_of(p));
    v
}

fn disc_of(iso: &Path) -> i64 {
    let stem = iso.file_stem().unwrap().to_str().unwrap();
    stem.trim_start_matches("disc-").parse().unwrap()
}

/// Names (without the leading `/`) of the backed-up files on `disc`.
fn names_on_disc(env: &TestEnv, disc: i64) -> BTreeSet<Vec<u8>> {
    let conn = env.catalog();
    let mut stmt = conn
        .prepare("SELECT filename FROM files WHERE disc_id=?1 AND copied=1")
        .unwrap();
    stmt.query_map([disc], |r| {
        Ok(match r.get_ref(0)? {
            rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                b[1..].to_vec()
            }
            _ => panic!("bad name"),
        })
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

/// Every regular file below `root`, relative, as bytes.
fn files_below(root: &Path) -> BTreeSet<Vec<u8>> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| {
            e.path()
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec()
        })
        .collect()
}

fn mtime_of(p: &Path) -> f64 {
    let m = std::fs::symlink_metadata(p).unwrap();
    m.mtime() as f64 + m.mtime_nsec() as f64 / 1e9
}

/// `dst` holds exactly the files of `src`, byte for byte, with their
/// mtimes to within the precision the catalogue records (a REAL: about
/// a quarter of a microsecond today).
fn assert_same_tree(src: &Path, dst: &Path) {
    let a = files_below(src);
    let b = files_below(dst);
    assert_eq!(
        a.iter().map(|n| os(n)).collect::<Vec<_>>(),
        b.iter().map(|n| os(n)).collect::<Vec<_>>(),
        "same files"
    );
    for rel in &a {
        let (p, q) = (src.join(os(rel)), dst.join(os(rel)));
        assert!(
            std::fs::symlink_metadata(&q).unwrap().is_file(),
            "{}",
            q.display()
        );
        assert!(
            std::fs::read(&p).unwrap() == std::fs::read(&q).unwrap(),
            "content of {}",
            q.display()
        );
        let (mp, mq) = (mtime_of(&p), mtime_of(&q));
        assert!(
            (mp - mq).abs() < 1e-6,
            "mtime of {}: {mp} restored as {mq}",
            q.display()
        );
    }
}

/// No private temp folder of a run is left at the top of the target.
fn no_temp_files(root: &Path) {
    if !root.is_dir() {
        return;
    }
    for e in std::fs::read_dir(root).unwrap() {
        let n = e.unwrap().file_name();
        assert!(
            !n.as_bytes().starts_with(b".dbackup-tmp-"),
            "temp folder left: {}",
            n.to_string_lossy()
        );
    }
}

/// Extracts an image into a folder, made writable so tests can damage or
/// edit it.
fn extract(iso: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    bsdtar_extract(iso, dest);
    for e in walkdir::WalkDir::new(dest) {
        let e = e.unwrap();
        let mode = if e.file_type().is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn file_id(env: &TestEnv, name: &str) -> i64 {
    env.catalog()
        .query_row(
            "SELECT max(id) FROM files WHERE filename=?1 AND copied=1",
            [name],
            |r| r.get(0),
        )
        .unwrap()
}

fn stored_path(root: &Path, id: i64) -> PathBuf {
    root.join("files")
        .join((id / 256).to_string())
        .join(id.to_string())
}

#[test]
fn a_whole_set_restored_from_its_images_equals_the_source() {
    let env = photo_set();
    let images = isos(&env);
    assert!(images.len() >= 3, "{images:?}");
    let target = env.dir.path().join("restored");
    let out = restore(&[
        OsStr::new("-d"),
        env.workdir.join("isos").as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_same_tree(&env.watched, &target);
    no_temp_files(&target);
    // Piped: tab-separated tables, the plan's then the summary's.
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("disc\tfiles\tbytes\tstate\tsource\n1\t"),
        "{stdout}"
    );
    let total = files_below(&env.watched).len();
    assert!(
        stdout.contains(&format!("outcome\tfiles\tbytes\nrestored\t{total}\t")),
        "{stdout}"
    );
}

#[test]
fn as_of_restores_the_older_version_and_leaves_out_what_was_deleted() {
    let env = TestEnv::new();
    env.write("a.txt", b"version one");
    env.write("b.txt", b"deleted after T");
    env.write("c.txt", b"never changes");
    env.write("d.txt", b"deleted before T");
    env.init(&["--name", "Docs"]);
    monitor(&env);
    std::fs::remove_file(env.watched.join("d.txt")).unwrap();
    monitor(&env);
    std::thread::sleep(Duration::from_millis(50));
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    std::thread::sleep(Duration::from_millis(50));
    env.write("a.txt", b"version two, longer");
    std::fs::remove_file(env.watched.join("b.txt")).unwrap();
    env.write("e.txt", b"added after T");
    monitor(&env);
    close(&env);

    let isos = env.workdir.join("isos");
    let then = env.dir.path().join("then");
    let out = restore(&[
        OsStr::new("-d"),
        isos.as_os_str(),
        OsStr::new("--to"),
        then.as_os_str(),
        OsStr::new("--as-of"),
        OsStr::new(&format!("{t:.6}")),
        OsStr::new("--json"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        files_below(&then),
        [b"a.txt".to_vec(), b"b.txt".to_vec(), b"c.txt".to_vec()].into()
    );
    assert_eq!(std::fs::read(then.join("a.txt")).unwrap(), b"version one");
    let report = json(&out);
    assert_eq!(report["plan"]["deleted_left_out"], 1);
    assert_eq!(report["restored"]["files"], 3);

    let now = env.dir.path().join("now");
    let out = restore(&[
        OsStr::new("-d"),
        isos.as_os_str(),
        OsStr::new("--to"),
        now.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_same_tree(&env.watched, &now);
}

#[test]
fn a_dry_run_prints_the_plan_and_writes_nothing() {
    let env = photo_set();
    let target = env.dir.path().join("not-yet");
    let out = restore(&[
        OsStr::new("-d"),
        env.workdir.join("isos").as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
        OsStr::new("--dry-run"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let total = files_below(&env.watched).len();
    assert!(
        stdout.starts_with(&format!("Restore plan: {total} files, ")),
        "{stdout}"
    );
    for iso in isos(&env) {
        let d = disc_of(&iso);
        let files = names_on_disc(&env, d).len();
        assert!(
            stdout.contains(&format!("\n{d}\t{files}\t")),
            "disc {d}: {stdout}"
        );
    }
    assert!(!stdout.contains("outcome"), "no summary: {stdout}");
    assert!(!target.exists(), "the target is not even created");
}

#[test]
fn a_missing_disc_is_named_and_the_rest_restored() {
    let env = photo_set();
    let images = isos(&env);
    let target = env.dir.path().join("restored");
    let mut args: Vec<&OsStr> = Vec::new();
    for iso in images.iter().filter(|p| disc_of(p) != 2) {
        args.push(OsStr::new("-d"));
        args.push(iso.as_os_str());
    }
    args.extend([OsStr::new("--to"), target.as_os_str()]);
    let out = restore(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let on2 = names_on_disc(&env, 2);
    assert!(
        stdout.contains(&format!(
            "Disc 2 is needed but not given: {} files",
            on2.len()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("\n2\t"), "{stdout}");
    assert!(stdout.contains("missing"), "{stdout}");
    let restored = files_below(&target);
    let all = files_below(&env.watched);
    assert_eq!(
        restored,
        all.difference(&on2).cloned().collect::<BTreeSet<_>>()
    );
    assert!(
        text(&out.stderr).contains(&format!("{} files not restored", on2.len())),
        "{}",
        text(&out.stderr)
    );

    let mut with_json = args.clone();
    with_json.push(OsStr::new("--json"));
    let report = json(&restore(&with_json));
    assert_eq!(report["plan"]["missing"][0]["disc"], 2);
    assert_eq!(report["plan"]["missing"][0]["files"], on2.len());
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), on2.len());
    assert!(failed.iter().all(|f| f["kind"] == "missing_disc"));
    assert_eq!(report["skipped_existing"]["files"], restored.len());
}

#[test]
fn a_lost_disc_is_never_asked_for_and_the_plan_says_what_it_costs() {
    let env = TestEnv::new();
    for i in 0..16u32 {
        let data: Vec<u8> = (0..40_000 + i * 100).map(|j| (j ^ i) as u8).collect();
        env.write(format!("p/{i:02}.raw"), &data);
    }
    env.init(&["--disc-size", "707200", "--name", "Raw"]);
    monitor(&env);
    // Disc 1 is lost before the last disc closes, so the newest manifest
    // says so.
    env.catalog()
        .execute("UPDATE discs SET available=0 WHERE id=1", [])
        .unwrap();
    close(&env);
    let images = isos(&env);
    assert!(images.len() >= 3, "{images:?}");
    let lost = names_on_disc(&env, 1);
    assert!(!lost.is_empty());

    let target = env.dir.path().join("restored");
    let mut args: Vec<&OsStr> = Vec::new();
    for iso in images.iter().filter(|p| disc_of(p) != 1) {
        args.push(OsStr::new("-d"));
        args.push(iso.as_os_str());
    }
    args.extend([OsStr::new("--to"), target.as_os_str()]);
    let out = restore(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "Disc 1 is marked lost: it costs {} files",
            lost.len()
        )),
        "{stdout}"
    );
    for n in &lost {
        assert!(
            stdout.contains(&format!("  /{}\n", String::from_utf8_lossy(n))),
            "{stdout}"
        );
    }
    assert!(
        !stdout.contains("Disc 1 is needed but not given"),
        "{stdout}"
    );
    let all = files_below(&env.watched);
    assert_eq!(
        files_below(&target),
        all.difference(&lost).cloned().collect::<BTreeSet<_>>()
    );

    let mut with_json = args.clone();
    with_json.push(OsStr::new("--json"));
    let report = json(&restore(&with_json));
    assert_eq!(report["plan"]["lost"][0]["disc"], 1);
    let costs: BTreeSet<String> = report["plan"]["lost"][0]["costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = lost
        .iter()
        .map(|n| format!("/{}", String::from_utf8_lossy(n)))
        .collect();
    assert_eq!(costs, expected);
    assert!(report["plan"]["missing"].as_array().unwrap().is_empty());

    // With a drive, a lost disc is not asked for either.
    std::fs::create_dir(env.dir.path().join("drive")).unwrap();
    let out = restore(&[
        OsStr::new("-d"),
        images.last().unwrap().as_os_str(),
        OsStr::new("--drive"),
        env.dir.path().join("drive").as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
        OsStr::new("--dry-run"),
    ]);
    let stdout = text(&out.stdout);
    let wanted: Vec<String> = (2..images.len()).map(|d| d.to_string()).collect();
    assert!(
        stdout.contains(&format!(
            "Discs to insert in the drive, in this order: {}\n",
            wanted.join(", ")
        )),
        "{stdout}"
    );

    // A disc marked lost but given after all (found again) is used.
    let all_target = env.dir.path().join("all");
    let out = restore(&[
        OsStr::new("-d"),
        env.workdir.join("isos").as_os_str(),
        OsStr::new("--to"),
        all_target.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("given (marked lost)"));
    assert_same_tree(&env.watched, &all_target);
}

#[test]
fn a_second_run_skips_what_is_already_restored() {
    let env = photo_set();
    let isos = env.workdir.join("isos");
    let target = env.dir.path().join("restored");
    let args = [
        OsStr::new("-d"),
        isos.as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
        OsStr::new("--json"),
    ];
    let first = json(&restore(&args));
    let total = files_below(&env.watched).len();
    assert_eq!(first["restored"]["files"], total);

    // A run cut short: one file never renamed into place.
    std::fs::remove_file(target.join("2011/IMG 07.jpg")).unwrap();
    let out = restore(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let second = json(&out);
    assert_eq!(second["restored"]["files"], 1);
    assert_eq!(second["skipped_existing"]["files"], total - 1);
    assert_same_tree(&env.watched, &target);
    no_temp_files(&target);
}

#[test]
fn an_existing_different_file_is_kept_unless_overwrite_is_given() {
    let env = one_disc_set(&[("docs/letter.txt", b"the real letter"), ("x", b"x")]);
    let isos = env.workdir.join("isos");
    let target = env.dir.path().join("restored");
    std::fs::create_dir_all(target.join("docs")).unwrap();
    std::fs::write(target.join("docs/letter.txt"), b"someone's draft").unwrap();
    let args = [
        OsStr::new("-d"),
        isos.as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
    ];
    let out = restore(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("docs/letter.txt: a different file is there; kept"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("not restored: different file kept\t1\t"));
    assert_eq!(
        std::fs::read(target.join("docs/letter.txt")).unwrap(),
        b"someone's draft"
    );
    assert_eq!(std::fs::read(target.join("x")).unwrap(), b"x");

    let mut with = args.to_vec();
    with.push(OsStr::new("--overwrite"));
    let out = restore(&with);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_same_tree(&env.watched, &target);
}

#[test]
fn a_crafted_manifest_writes_nothing_outside_the_target() {
    let env = one_disc_set(&[
        ("a.txt", b"escape up"),
        ("b.txt", b"escape sideways"),
        ("c.txt", b"absolute"),
        ("d.txt", b"through a folder link"),
        ("e.txt", b"through a file link"),
        ("f.txt", b"harmless"),
        ("g.txt", b"the same path by another name"),
    ]);
    let root = env.dir.path();
    let disc = root.join("crafted");
    extract(&isos(&env)[0], &disc);
    {
        let conn = rusqlite::Connection::open(disc.join("manifest.db")).unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        for (from, to) in [
            ("/a.txt", "/../../escape"),
            ("/b.txt", "/a/../../b"),
            ("/c.txt", "//abs"),
            ("/d.txt", "/link/pwned"),
            ("/e.txt", "/linkfile"),
            ("/g.txt", "f.txt"),
        ] {
            let n = conn
                .execute("UPDATE files SET filename=?1 WHERE filename=?2", [to, from])
                .unwrap();
            assert_eq!(n, 1);
        }
    }
    let outside = root.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"untouched").unwrap();
    let target = root.join("x/y/target");
    std::fs::create_dir_all(&target).unwrap();
    std::os::unix::fs::symlink(&outside, target.join("link")).unwrap();
    std::os::unix::fs::symlink(outside.join("victim"), target.join("linkfile")).unwrap();

    for extra in [None, Some("--overwrite")] {
        let mut args = vec![
            OsStr::new("-d"),
            disc.as_os_str(),
            OsStr::new("--to"),
            target.as_os_str(),
            OsStr::new("--json"),
        ];
        args.extend(extra.map(OsStr::new));
        let out = restore(&args);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let report = json(&out);
        let kinds: Vec<&str> = report["failed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "refused_name").count(),
            4,
            "{kinds:?}"
        );
        assert_eq!(
            kinds.iter().filter(|k| **k == "symlink").count(),
            2,
            "{kinds:?}"
        );
        let placed = report["restored"]["files"].as_u64().unwrap()
            + report["skipped_existing"]["files"].as_u64().unwrap();
        assert_eq!(placed, 1, "f.txt only");
        assert_eq!(std::fs::read(target.join("f.txt")).unwrap(), b"harmless");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("/../../escape: name refused"), "{stderr}");
        assert!(stderr.contains("symbolic link"), "{stderr}");
    }
    assert_eq!(
        files_below(&outside),
        [b"victim".to_vec()].into(),
        "nothing written beside the link's target"
    );
    assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"untouched");
    assert!(std::fs::symlink_metadata(target.join("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::symlink_metadata(target.join("linkfile"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        files_below(&target),
        [b"f.txt".to_vec(), b"link".to_vec(), b"linkfile".to_vec()].into()
    );
    for e in walkdir::WalkDir::new(root) {
        let e = e.unwrap();
        let name = e.file_name().as_bytes();
        assert!(
            !matches!(name, b"escape" | b"b" | b"abs" | b"pwned"),
            "{} was written",
            e.path().display()
        );
    }
    assert!(!Path::new("/abs").exists());
}

#[test]
fn of_two_names_for_one_path_the_first_in_name_order_is_kept() {
    // `f.txt` stored as text comes before `/f.txt` stored as a blob in the
    // manifest's order; in name order `/f.txt` comes first and is kept,
    // whichever order the manifest gives them in.
    let env = one_disc_set(&[("f.txt", b"first by name"), ("g.txt", b"second by name")]);
    let root = env.dir.path();
    let disc = root.join("crafted");
    extract(&isos(&env)[0], &disc);
    {
        let conn = rusqlite::Connection::open(disc.join("manifest.db")).unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        let n = conn
            .execute(
                "UPDATE files SET filename=CAST('/f.txt' AS BLOB) WHERE filename='/f.txt'",
                [],
            )
            .unwrap();
        assert_eq!(n, 1);
        let n = conn
            .execute(
                "UPDATE files SET filename='f.txt' WHERE filename='/g.txt'",
                [],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    let target = root.join("target");
    for dry_run in [true, false] {
        let mut args = vec![
            OsStr::new("-d"),
            disc.as_os_str(),
            OsStr::new("--to"),
            target.as_os_str(),
            OsStr::new("--json"),
        ];
        if dry_run {
            args.push(OsStr::new("--dry-run"));
        }
        let out = restore(&args);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let report = json(&out);
        let refused = report["plan"]["refused"].as_array().unwrap();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0]["name"], "f.txt");
        assert!(refused[0]["reason"]
            .as_str()
            .unwrap()
            .contains("another name in the manifest leads to the same path"));
        assert_eq!(report["plan"]["restorable_files"], 1);
    }
    assert_eq!(files_below(&target), [b"f.txt".to_vec()].into());
    assert_eq!(
        std::fs::read(target.join("f.txt")).unwrap(),
        b"first by name"
    );
}

#[test]
fn a_damaged_file_is_reported_and_not_left_behind() {
    let env = one_disc_set(&[
        ("good/one.txt", b"fine"),
        ("bad/photo.jpg", &[7u8; 10_000]),
        ("good/two.txt", b"also fine"),
    ]);
    let disc = env.dir.path().join("disc");
    extract(&isos(&env)[0], &disc);
    let damaged = stored_path(&disc, file_id(&env, "/bad/photo.jpg"));
    let mut data = std::fs::read(&damaged).unwrap();
    data[5000] ^= 0x01;
    std::fs::write(&damaged, &data).unwrap();

    let target = env.dir.path().join("restored");
    let out = restore(&[
        OsStr::new("-d"),
        disc.as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
        OsStr::new("--json"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("/bad/photo.jpg: damaged on disc 1"),
        "{stderr}"
    );
    let report = json(&out);
    assert_eq!(report["failed"][0]["kind"], "damaged");
    assert_eq!(report["failed"][0]["name"], "/bad/photo.jpg");
    assert_eq!(report["restored"]["files"], 2);
    assert_eq!(
        files_below(&target),
        [b"good/one.txt".to_vec(), b"good/two.txt".to_vec()].into(),
        "nothing left of the damaged file, not even a temp file"
    );
}

/// Large files are hashed on a second thread while they are copied: a
/// good one is restored with its content and mtime, a damaged one is caught
/// (here late in the file) and nothing of it is left.
#[test]
fn large_files_are_checked_as_they_are_copied() {
    let big = |seed: u32, len: u32| -> Vec<u8> {
        (0..len)
            .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8)
            .collect()
    };
    let good = big(1, 5 << 20);
    let bad = big(2, (6 << 20) + 123);
    let env = one_disc_set(&[
        ("video/good.mkv", &good),
        ("video/bad.mkv", &bad),
        ("small.txt", b"small"),
    ]);
    let disc = env.dir.path().join("disc");
    extract(&isos(&env)[0], &disc);
    let damaged = stored_path(&disc, file_id(&env, "/video/bad.mkv"));
    let mut data = std::fs::read(&damaged).unwrap();
    data[(6 << 20) - 10] ^= 0x40;
    std::fs::write(&damaged, &data).unwrap();

    let target = env.dir.path().join("restored");
    let out = restore(&[
        OsStr::new("-d"),
        disc.as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
        OsStr::new("--json"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(report["failed"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["failed"][0]["kind"], "damaged");
    assert_eq!(report["failed"][0]["name"], "/video/bad.mkv");
    assert_eq!(
        files_below(&target),
        [b"small.txt".to_vec(), b"video/good.mkv".to_vec()].into(),
        "nothing left of the damaged file, not even a temp file"
    );
    assert!(std::fs::read(target.join("video/good.mkv")).unwrap() == good);
    let (src, dst) = (
        env.watched.join("video/good.mkv"),
        target.join("video/good.mkv"),
    );
    assert!((mtime_of(&src) - mtime_of(&dst)).abs() < 1e-6);

    // From the undamaged image, everything.
    let out = restore(&[
        OsStr::new("-d"),
        isos(&env)[0].as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_same_tree(&env.watched, &target);
}

#[test]
fn discs_made_by_the_original_are_restored() {
    let dir = tempfile::tempdir().unwrap();
    let discs = original_set(
        dir.path(),
        &[
            vec![
                ("/2012/IMG_0001.jpg", b"one".to_vec()),
                ("/2012/IMG_0002.jpg", vec![2u8; 5000]),
            ],
            vec![("/scans/tax 2011.pdf", b"pdf".to_vec())],
        ],
    );
    let target = dir.path().join("restored");
    let out = restore(&[
        OsStr::new("-d"),
        discs[0].as_os_str(),
        OsStr::new("-d"),
        discs[1].as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        files_below(&target),
        [
            b"2012/IMG_0001.jpg".to_vec(),
            b"2012/IMG_0002.jpg".to_vec(),
            b"scans/tax 2011.pdf".to_vec()
        ]
        .into(),
        "the copied=0 leftover is not restored"
    );
    assert_eq!(
        std::fs::read(target.join("2012/IMG_0002.jpg")).unwrap(),
        vec![2u8; 5000]
    );
    // The original's whole-second mtimes.
    let m = std::fs::metadata(target.join("scans/tax 2011.pdf")).unwrap();
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_300_000_000 - 86_400, 0));
    assert!(text(&out.stdout).contains("an original dBackup set"));
}

// --- One drive, discs swapped between prompts -------------------------------

/// A pseudo-terminal: (master, slave). The child gets the slave as stdin,
/// so it sees a terminal; the test answers by writing to the master.
fn pty() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain libc calls on descriptors we own; ptsname_r writes a
    // NUL-terminated name into the buffer we pass.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut buf = [0 as libc::c_char; 256];
        assert_eq!(libc::ptsname_r(m, buf.as_mut_ptr(), buf.len()), 0);
        let s = libc::open(
            buf.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        assert!(s >= 0, "open the pty's slave");
        (std::fs::File::from_raw_fd(m), std::fs::File::from_raw_fd(s))
    }
}

/// A running restore with a terminal on stdin and its stderr collected.
struct Session {
    child: std::process::Child,
    master: Option<std::fs::File>,
    stderr: Arc<Mutex<String>>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Session {
    fn start(args: &[&OsStr]) -> Session {
        let (master, slave) = pty();
        let mut child = restore_cmd()
            .args(args)
            .stdin(Stdio::from(slave))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        Session {
            child,
            master: Some(master),
            stderr,
            stdout: Some(stdout),
        }
    }

    /// Waits until `needle` has appeared `n` times on stderr.
    fn expect(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let seen = self.stderr.lock().unwrap().matches(needle).count();
            if seen >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {needle:?} ({n}x); stderr so far:\n{}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answer(&mut self, line: &str) {
        let m = self.master.as_mut().unwrap();
        m.write_all(line.as_bytes()).unwrap();
        m.write_all(b"\n").unwrap();
    }

    /// Waits for the exit, then closes the terminal.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("no exit; stderr:\n{}", self.stderr.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.master = None;
        let stdout = self.stdout.take().unwrap().join().unwrap();
        let stderr = self.stderr.lock().unwrap().clone();
        (status.code(), stdout, stderr)
    }
}

/// Points the drive's mount point at `disc` (a folder), as if that disc
/// had been inserted and mounted.
fn insert(drive: &Path, disc: &Path) {
    let tmp = drive.with_extension("swap");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(disc, &tmp).unwrap();
    std::fs::rename(&tmp, drive).unwrap();
}

/// The photo set's discs extracted to folders `disc-N`, and a drive whose
/// mount point holds the newest disc.
fn pile_of_discs(env: &TestEnv) -> (Vec<PathBuf>, PathBuf) {
    let mut folders = Vec::new();
    for iso in isos(env) {
        let f = env.dir.path().join(format!("disc-{}", disc_of(&iso)));
        extract(&iso, &f);
        folders.push(f);
    }
    let drive = env.dir.path().join("drive");
    insert(&drive, folders.last().unwrap());
    (folders, drive)
}

#[test]
fn one_drive_asks_for_each_disc_and_refuses_a_wrong_one() {
    let env = photo_set();
    let (folders, drive) = pile_of_discs(&env);
    let empty = env.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let target = env.dir.path().join("restored");
    let mut s = Session::start(&[
        OsStr::new("-d"),
        drive.as_os_str(),
        OsStr::new("--drive"),
        drive.as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
    ]);
    // Disc 1 is asked for first; disc 2 goes in by mistake, then nothing.
    s.expect(
        "Insert disc 1 of set \"Photos\" in the drive, then press Enter",
        1,
    );
    insert(&drive, &folders[1]);
    s.answer("");
    s.expect("The drive holds disc 2 of set \"Photos\", not disc 1.", 1);
    s.expect("Insert disc 1 of set", 2);
    insert(&drive, &empty);
    s.answer("");
    s.expect("No dbackup disc found at", 1);
    s.expect("Insert disc 1 of set", 3);
    for (i, folder) in folders.iter().enumerate() {
        if i > 0 {
            s.expect(&format!("Insert disc {} of set", i + 1), 1);
        }
        insert(&drive, folder);
        s.answer("");
        s.expect(&format!("Done with disc {}", i + 1), 1);
    }
    let (code, stdout, stderr) = s.finish();
    assert_eq!(code, Some(0), "{stderr}\n{stdout}");
    assert_same_tree(&env.watched, &target);
    // Each disc was asked for until it was there, and read once.
    for i in 2..=folders.len() {
        assert_eq!(
            stderr.matches(&format!("Insert disc {i} of set")).count(),
            1,
            "{stderr}"
        );
        assert_eq!(
            stderr.matches(&format!("reading disc {i}:")).count(),
            1,
            "{stderr}"
        );
    }
}

#[test]
fn at_the_drive_q_or_the_end_of_input_stops_with_a_summary() {
    let env = photo_set();
    let (folders, drive) = pile_of_discs(&env);
    let target = env.dir.path().join("restored");
    let args = [
        OsStr::new("-d"),
        drive.as_os_str(),
        OsStr::new("--drive"),
        drive.as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
    ];
    // Disc 1 is read, then "q" at the prompt for disc 2.
    let mut s = Session::start(&args);
    s.expect("Insert disc 1 of set", 1);
    insert(&drive, &folders[0]);
    s.answer("");
    s.expect("Insert disc 2 of set", 1);
    s.answer("q");
    let (code, stdout, stderr) = s.finish();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("stopped: q answered when disc 2 of set \"Photos\" was asked for"),
        "{stderr}"
    );
    let on1 = names_on_disc(&env, 1);
    assert!(
        stdout.contains(&format!("restored\t{}\t", on1.len())),
        "{stdout}"
    );
    assert!(
        stdout.contains("not restored: run stopped before"),
        "{stdout}"
    );
    assert_eq!(files_below(&target), on1);

    // The terminal closes at the first prompt: nothing more is read.
    let mut s = Session::start(&args);
    s.expect("Insert disc 1 of set", 1);
    s.master = None;
    let (code, _, stderr) = s.finish();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("no answer (end of input) when disc 1"),
        "{stderr}"
    );
}

#[test]
fn without_a_terminal_the_drive_lists_the_discs_it_needs_and_waits_for_nothing() {
    let env = photo_set();
    let (folders, drive) = pile_of_discs(&env);
    let target = env.dir.path().join("restored");
    let started = Instant::now();
    let out = restore(&[
        OsStr::new("-d"),
        drive.as_os_str(),
        OsStr::new("--drive"),
        drive.as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
    ]);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let wanted: Vec<String> = (1..=folders.len()).map(|d| d.to_string()).collect();
    assert!(
        text(&out.stdout).contains(&format!(
            "Discs to insert in the drive, in this order: {}\n",
            wanted.join(", ")
        )),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("stdin is not a terminal"),
        "{}",
        text(&out.stderr)
    );
    assert!(!target.exists() || files_below(&target).is_empty());
}

#[test]
fn errors_exit_2_and_write_nothing() {
    let env = one_disc_set(&[("a.txt", b"a")]);
    let target = env.dir.path().join("restored");
    let out = restore(&[
        OsStr::new("-d"),
        env.dir.path().join("no such disc").as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("dbackup-restore: error: "),
        "{}",
        text(&out.stderr)
    );
    assert!(!target.exists());

    let file = env.dir.path().join("a file");
    std::fs::write(&file, b"").unwrap();
    let out = restore(&[
        OsStr::new("-d"),
        env.workdir.join("isos").as_os_str(),
        OsStr::new("--to"),
        file.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("target"),
        "{}",
        text(&out.stderr)
    );

    let out = restore(&[
        OsStr::new("-d"),
        env.workdir.join("isos").as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
        OsStr::new("[unclosed"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(!target.exists());

    let out = restore(&[
        OsStr::new("-d"),
        env.workdir.join("isos").as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
        OsStr::new("--drive"),
        OsStr::new("/dev/null"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("mount point"));
    assert!(!target.exists());
}

#[cfg(feature = "failpoints")]
#[test]
fn a_full_target_stops_the_run_and_the_next_run_finishes_it() {
    let env = photo_set();
    let isos = env.workdir.join("isos");
    let target = env.dir.path().join("restored");
    let args = [
        OsStr::new("-d"),
        isos.as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
    ];
    let out = restore_cmd()
        .args(args)
        .env("FAILPOINTS", "restore::write=3*off->return(enospc)")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        stderr.contains("is full; free space and run again"),
        "{stderr}"
    );
    // Three writes went through (an empty file needs none).
    let stdout = text(&out.stdout);
    let restored: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("restored\t"))
        .and_then(|l| l.split('\t').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!((3..=4).contains(&restored), "{stdout}");
    assert_eq!(files_below(&target).len(), restored, "nothing half-written");
    no_temp_files(&target);

    let out = restore(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("already there\t{restored}\t")));
    assert_same_tree(&env.watched, &target);
}

#[cfg(feature = "failpoints")]
#[test]
fn when_the_filesystem_flush_fails_each_file_is_fsynced_instead() {
    let env = photo_set();
    let target = env.dir.path().join("restored");
    let out = restore_cmd()
        .arg("-d")
        .arg(env.workdir.join("isos"))
        .arg("--to")
        .arg(&target)
        .env("FAILPOINTS", "restore::syncfs=return")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_same_tree(&env.watched, &target);
    no_temp_files(&target);
}

/// Ctrl-C stops between files: what was written is finished and named,
/// the file in hand is dropped with its temp file, the exit code is 130,
/// and the same command resumes.
#[cfg(feature = "failpoints")]
#[test]
fn ctrl_c_stops_cleanly_and_the_same_command_resumes() {
    let env = photo_set();
    let isos = env.workdir.join("isos");
    let target = env.dir.path().join("restored");
    let args = [
        OsStr::new("-d"),
        isos.as_os_str(),
        OsStr::new("--to"),
        target.as_os_str(),
    ];
    let child = restore_cmd()
        .args(args)
        .env("FAILPOINTS", "restore::pause=sleep(150)")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first files are in place.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30)
        && !(target.is_dir()
            && files_below(&target)
                .iter()
                .any(|n| !String::from_utf8_lossy(n).contains(".dbackup-tmp-")))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child with a constant signal.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(stderr.contains("run the same command again"), "{stderr}");
    no_temp_files(&target);
    let tree = tree_md5s(&env.watched);
    let partial = tree_md5s(&target);
    assert!(
        !partial.is_empty() && partial.len() < tree.len(),
        "{partial:?}"
    );
    for (name, md5) in &partial {
        assert_eq!(
            tree.get(name),
            Some(md5),
            "{}",
            String::from_utf8_lossy(name)
        );
    }
    let out = restore(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_same_tree(&env.watched, &target);
}

#[test]
fn deletions_after_the_last_disc_reach_the_discs_through_a_disc_of_their_own() {
    let env = TestEnv::new();
    env.write("kept.txt", b"kept");
    env.write("gone.txt", b"deleted after the first disc");
    env.init(&["--name", "Docs"]);
    monitor(&env);
    close(&env);
    std::fs::remove_file(env.watched.join("gone.txt")).unwrap();
    monitor(&env);
    // Nothing new to back up, but a deletion no disc holds yet: the disc
    // carries it in its catalogue.
    let out = env.run(&["close"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Disc 2 closed: 0 files"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(isos(&env).len(), 2);
    env.check_invariants();
    // Nothing recorded since: refused.
    let out = env.run(&["close"]);
    assert_eq!(out.status.code(), Some(2), "a disc with nothing new");

    let now = env.dir.path().join("now");
    let out = restore(&[
        OsStr::new("-d"),
        env.workdir.join("isos").as_os_str(),
        OsStr::new("--to"),
        now.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_same_tree(&env.watched, &now);
}
