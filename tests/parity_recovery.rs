//! Recovery with parity discs, end to end with the real binaries and the
//! stock `par2`: a lost data disc's image rebuilt byte-identical by
//! `dbackup-lost --rebuild`, restore rebuilding a missing disc on its own,
//! lost, find, verify and status knowing what parity can and cannot do, and
//! hostile parity discs refused without harm.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// Discs of 1 MB hold one file of 600 KB each: one file per disc.
const DISC_SIZE: &str = "1307200";
const FILE_SIZE: usize = 600_000;

/// `len` pseudo-random bytes from `seed` (xorshift64*), the same every run.
fn seeded(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A set with parity `scheme` and `files` files of 600 KB (`data/fNN.bin`),
/// staged by one monitor run: `files - 1` discs closed, with their images
/// and the parity discs of every full group. With `close`, the open disc is
/// closed too and its group ended (`close --parity`), so every file is on
/// a closed disc and every group has its parity discs.
fn parity_set(scheme: &str, files: usize, close: bool) -> TestEnv {
    let env = TestEnv::new();
    env.init(&["--disc-size", DISC_SIZE, "--parity", scheme]);
    for i in 1..=files {
        env.write(
            format!("data/f{i:02}.bin"),
            &seeded(i as u64 * 7919, FILE_SIZE),
        );
    }
    let out = env.run(&["monitor"]);
    assert!(out.status.success(), "monitor: {}", text(&out.stderr));
    if close {
        let out = env.run(&["close", "--parity"]);
        assert!(
            out.status.success(),
            "close --parity: {}",
            text(&out.stderr)
        );
    }
    env
}

/// An image in the workdir's `isos/`.
fn iso(env: &TestEnv, name: &str) -> PathBuf {
    let p = env.workdir.join("isos").join(name);
    assert!(p.is_file(), "{} was not made", p.display());
    p
}

/// `disc-N.iso`.
fn disc_iso(env: &TestEnv, n: i64) -> PathBuf {
    iso(env, &format!("disc-{n}.iso"))
}

/// A new folder `name` in the test's folder holding (linked, else copied)
/// the given files under their own names, as a pile of images.
fn gather(env: &TestEnv, name: &str, files: &[PathBuf]) -> PathBuf {
    let dir = env.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for f in files {
        let to = dir.join(f.file_name().unwrap());
        if std::fs::hard_link(f, &to).is_err() {
            std::fs::copy(f, &to).unwrap();
        }
    }
    dir
}

/// A new empty folder in the test's folder.
fn empty_dir(env: &TestEnv, name: &str) -> PathBuf {
    let dir = env.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every image in `isos/` but those named.
fn isos_but(env: &TestEnv, left_out: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(env.workdir.join("isos"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.ends_with(".iso") && !left_out.contains(&name)
        })
        .collect();
    out.sort();
    out
}

/// A recovery tool, as a user runs it (no workdir).
fn recovery(name: &str) -> Command {
    let mut c = Command::new(bin(name));
    c.arg("--no-progress");
    c.env_remove("DBACKUP_WORKDIR").env_remove("FAILPOINTS");
    c
}

/// The exit code; never a panic (101) or a signal.
fn code(what: &str, out: &Output) -> i32 {
    let c = out
        .status
        .code()
        .unwrap_or_else(|| panic!("{what}: killed by a signal: {}", text(&out.stderr)));
    assert_ne!(c, 101, "{what} panicked: {}", text(&out.stderr));
    c
}

/// `dbackup-lost N --rebuild -d DISCS... --to TO`, with `TMPDIR` set.
fn rebuild(n: i64, discs: &[&Path], to: &Path, tmpdir: &Path) -> Output {
    let mut c = recovery("dbackup-lost");
    c.arg(n.to_string()).arg("--rebuild");
    for d in discs {
        c.arg("-d").arg(d);
    }
    c.arg("--to").arg(to).env("TMPDIR", tmpdir);
    c.output().expect("run dbackup-lost")
}

/// The data disc holding catalogue name `name`.
fn disc_of(env: &TestEnv, name: &str) -> i64 {
    env.catalog()
        .query_row(
            "SELECT disc_id FROM files WHERE filename=?1 AND copied=1",
            [name],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("{name} is on no disc: {e}"))
}

/// The catalogue names of the files on data disc `disc`.
fn names_on(env: &TestEnv, disc: i64) -> Vec<String> {
    let conn = env.catalog();
    let mut stmt = conn
        .prepare("SELECT filename FROM files WHERE disc_id=?1 AND copied=1 ORDER BY filename")
        .unwrap();
    let names: Vec<String> = stmt
        .query_map([disc], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(!names.is_empty(), "disc {disc} holds no file");
    names
}

/// The names of the entries of a folder.
fn listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Every path under `root` (files, folders, links), relative.
fn everything_under(root: &Path) -> BTreeSet<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap().path().strip_prefix(root).unwrap().to_path_buf())
        .collect()
}

/// A tool's stdout as JSON.
fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

/// The restored tree, by catalogue name.
fn restored(target: &Path) -> std::collections::BTreeMap<Vec<u8>, String> {
    if !target.exists() {
        return Default::default();
    }
    tree_md5s(target)
}

/// A copy of the watched tree's MD5s without the files named.
fn tree_without(env: &TestEnv, gone: &[String]) -> std::collections::BTreeMap<Vec<u8>, String> {
    let mut t = tree_md5s(&env.watched);
    for g in gone {
        assert!(t.remove(g.as_bytes()).is_some(), "{g} is not in the tree");
    }
    t
}

/// Flips `n` bytes of `data` from `at`.
fn flip(data: &mut [u8], at: usize, n: usize) {
    for b in &mut data[at..at + n] {
        *b ^= 0xA5;
    }
}

/// Where file `inner` (its bytes, as an independent reader extracts them)
/// starts in `image`: the image holds a run of its middle bytes once.
fn offset_in_image(image: &[u8], inner: &[u8]) -> usize {
    assert!(inner.len() > 4096, "too small to find");
    let mid = inner.len() / 2;
    let window = &inner[mid..mid + 256];
    let hits: Vec<usize> = image
        .windows(window.len())
        .enumerate()
        .filter(|(_, w)| *w == window)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "the file's bytes are in the image once");
    hits[0] - mid
}

/// A parity image extracted by bsdtar (a mounted parity disc), and the name
/// of its recovery file.
fn extract_parity(env: &TestEnv, image: &Path, name: &str) -> (PathBuf, String) {
    let dir = empty_dir(env, name);
    bsdtar_extract(image, &dir);
    let vol = listing(&dir)
        .into_iter()
        .find(|n| n.contains(".vol") && n.ends_with(".par2"))
        .expect("a recovery file on the parity disc");
    (dir, vol)
}

// dbackup-lost --rebuild: a lost disc's image written again -----------

#[test]
fn each_data_disc_of_a_group_is_rebuilt_byte_identical() {
    let env = parity_set("4+1", 10, false);
    let tmp = empty_dir(&env, "tmp");
    let out_dir = empty_dir(&env, "out");
    for n in 1..=4i64 {
        let own = format!("disc-{n}.iso");
        let given = isos_but(&env, &[own.as_str()]);
        assert!(given.iter().any(|p| p.ends_with("parity-1-1.iso")));
        let pile = gather(&env, &format!("pile-{n}"), &given);
        let to = out_dir.join(format!("X{n}.iso"));
        let out = rebuild(n, &[&pile], &to, &tmp);
        assert_eq!(code("rebuild", &out), 0, "disc {n}: {}", text(&out.stderr));
        assert_eq!(
            md5_file(&to),
            md5_file(&disc_iso(&env, n)),
            "the rebuilt disc {n} is byte-identical"
        );
        assert!(
            text(&out.stdout).contains(&format!("Disc {n} rebuilt")),
            "{}",
            text(&out.stdout)
        );
        // Nothing but the rebuilt images beside them, nothing in TMPDIR.
        let expected: BTreeSet<String> = (1..=n).map(|k| format!("X{k}.iso")).collect();
        assert_eq!(listing(&out_dir), expected, "temp files left beside --to");
        assert!(
            listing(&tmp).is_empty(),
            "left in TMPDIR: {:?}",
            listing(&tmp)
        );
        assert!(listing(&pile).iter().all(|f| f.ends_with(".iso")));
    }

    // --to an existing file: refused, the file untouched.
    let pile = gather(&env, "pile-exists", &isos_but(&env, &["disc-1.iso"]));
    let precious = out_dir.join("precious.iso");
    std::fs::write(&precious, b"not to be overwritten").unwrap();
    let out = rebuild(1, &[&pile], &precious, &tmp);
    assert_eq!(code("rebuild", &out), 2, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&precious).unwrap(), b"not to be overwritten");
    let mut expected: BTreeSet<String> = (1..=4).map(|k| format!("X{k}.iso")).collect();
    expected.insert("precious.iso".into());
    assert_eq!(listing(&out_dir), expected);
    assert!(
        listing(&tmp).is_empty(),
        "left in TMPDIR: {:?}",
        listing(&tmp)
    );
}

// Two parity discs, and damaged survivors -----------------------------

#[test]
fn two_parity_discs_rebuild_any_two_lost_discs_of_their_group() {
    let env = parity_set("3+2", 4, false);
    let tmp = empty_dir(&env, "tmp");
    let out_dir = empty_dir(&env, "out");
    let p1 = iso(&env, "parity-1-1.iso");
    let p2 = iso(&env, "parity-1-2.iso");

    // Discs 1 and 2 lost: rebuilt one at a time from disc 3 and both
    // parity discs.
    let pile = gather(
        &env,
        "two-data",
        &[disc_iso(&env, 3), p1.clone(), p2.clone()],
    );
    for n in [1i64, 2] {
        let to = out_dir.join(format!("data-{n}.iso"));
        let out = rebuild(n, &[&pile], &to, &tmp);
        assert_eq!(code("rebuild", &out), 0, "disc {n}: {}", text(&out.stderr));
        assert_eq!(md5_file(&to), md5_file(&disc_iso(&env, n)), "disc {n}");
    }

    // One data disc and one parity disc lost, each way round.
    for (n, survivors, parity) in [
        (1i64, [2i64, 3], p2.clone()),
        (3, [1, 2], p1.clone()),
        (2, [1, 3], p1.clone()),
    ] {
        let pile = gather(
            &env,
            &format!("data-{n}-and-a-parity"),
            &[
                disc_iso(&env, survivors[0]),
                disc_iso(&env, survivors[1]),
                parity.clone(),
            ],
        );
        let to = out_dir.join(format!("mixed-{n}.iso"));
        let out = rebuild(n, &[&pile], &to, &tmp);
        assert_eq!(code("rebuild", &out), 0, "disc {n}: {}", text(&out.stderr));
        assert_eq!(md5_file(&to), md5_file(&disc_iso(&env, n)), "disc {n}");
    }
    assert!(
        listing(&tmp).is_empty(),
        "left in TMPDIR: {:?}",
        listing(&tmp)
    );
    assert!(listing(&out_dir).iter().all(|n| !n.starts_with('.')));
}

/// A damaged survivor costs only its damaged block: with two parity discs,
/// disc 1 is rebuilt all the same, and the damaged image the user gave is
/// left as it was (par2 repairs in its own folder, never through a link).
#[test]
fn a_damaged_survivor_is_repaired_around_and_left_untouched() {
    let env = parity_set("3+2", 4, false);
    let tmp = empty_dir(&env, "tmp");
    let out_dir = empty_dir(&env, "out");
    let pile = gather(
        &env,
        "pile",
        &[
            disc_iso(&env, 3),
            iso(&env, "parity-1-1.iso"),
            iso(&env, "parity-1-2.iso"),
        ],
    );
    let mut two = std::fs::read(disc_iso(&env, 2)).unwrap();
    let len = two.len();
    flip(&mut two, len / 2, 512);
    std::fs::write(pile.join("disc-2.iso"), &two).unwrap();
    let to = out_dir.join("disc-1.iso");
    let out = rebuild(1, &[&pile], &to, &tmp);
    assert_eq!(code("rebuild", &out), 0, "{}", text(&out.stderr));
    assert_eq!(md5_file(&to), md5_file(&disc_iso(&env, 1)));
    assert_eq!(
        std::fs::read(pile.join("disc-2.iso")).unwrap(),
        two,
        "the damaged survivor given was changed"
    );
    assert_eq!(
        listing(&pile),
        [
            "disc-2.iso",
            "disc-3.iso",
            "parity-1-1.iso",
            "parity-1-2.iso"
        ]
        .map(String::from)
        .into(),
        "files written beside the survivors"
    );
    assert!(listing(&tmp).is_empty());
}

// More discs lost than parity discs -----------------------------------

#[test]
fn more_lost_than_parity_is_refused_and_counted_unrecoverable() {
    let env = parity_set("4+1", 10, false);
    let tmp = empty_dir(&env, "tmp");
    let out_dir = empty_dir(&env, "out");
    let on_1 = names_on(&env, 1);
    let on_2 = names_on(&env, 2);
    // Their origin is gone too, so nothing but parity could save them.
    for n in on_1.iter().chain(&on_2) {
        std::fs::remove_file(env.watched.join(n.trim_start_matches('/'))).unwrap();
    }

    let pile = gather(
        &env,
        "pile",
        &[
            disc_iso(&env, 3),
            disc_iso(&env, 4),
            iso(&env, "parity-1-1.iso"),
        ],
    );
    let to = out_dir.join("disc-1.iso");
    let out = rebuild(1, &[&pile], &to, &tmp);
    assert_eq!(code("rebuild", &out), 2, "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("parity group 1"), "names the group: {err}");
    assert!(err.contains("1, 2"), "names the discs missing: {err}");
    assert!(!to.exists(), "wrote {}", to.display());
    assert!(listing(&out_dir).is_empty(), "{:?}", listing(&out_dir));
    assert!(listing(&tmp).is_empty(), "{:?}", listing(&tmp));

    // What losing both would cost: their files are gone for good.
    let out = env
        .tool("dbackup-lost")
        .args(["1", "2", "--what-if", "--json"])
        .output()
        .unwrap();
    assert_eq!(code("lost", &out), 1, "{}", text(&out.stderr));
    let r = json(&out);
    let unrecoverable: BTreeSet<&str> = r["unrecoverable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["filename"].as_str().unwrap())
        .collect();
    let lost_files: BTreeSet<&str> = on_1.iter().chain(&on_2).map(|s| s.as_str()).collect();
    assert_eq!(unrecoverable, lost_files);
    assert_eq!(r["recoverable_from_parity"], serde_json::json!([]));
    assert_eq!(r["marked"], false);
    // The table says the same.
    let out = env
        .tool("dbackup-lost")
        .args(["1", "2", "--what-if"])
        .output()
        .unwrap();
    assert_eq!(code("lost", &out), 1);
    let table = text(&out.stdout);
    let section = table
        .split("\nUnrecoverable:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Unrecoverable list: {table}"));
    for n in &lost_files {
        assert!(section.contains(n), "{n} not listed unrecoverable: {table}");
    }
    assert!(!table.contains("\nRecoverable from parity:"), "{table}");

    // One disc lost: its parity group rebuilds it.
    let out = env
        .tool("dbackup-lost")
        .args(["2", "--what-if", "--json"])
        .output()
        .unwrap();
    assert_eq!(code("lost", &out), 0, "{}", text(&out.stderr));
    let r = json(&out);
    assert_eq!(r["unrecoverable"], serde_json::json!([]));
    let entries = r["recoverable_from_parity"].as_array().unwrap();
    let names: BTreeSet<&str> = entries
        .iter()
        .map(|e| e["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, on_2.iter().map(|s| s.as_str()).collect());
    for e in entries {
        let note = e["note"].as_str().unwrap().replace(' ', "");
        assert!(note.contains("discs1,3,4"), "survivors named: {note}");
        assert!(note.contains("paritydisc1-1"), "parity disc named: {note}");
    }
    assert_eq!(r["totals"]["recoverable_from_parity"]["files"], on_2.len());
    // Nothing was marked.
    let lost: i64 = env
        .catalog()
        .query_row("SELECT count(*) FROM discs WHERE available=0", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(lost, 0);
}

// Restore rebuilds a disc not given -----------------------------------

#[test]
fn restore_rebuilds_a_disc_not_given_from_its_survivors_and_parity() {
    let env = parity_set("4+1", 10, true);
    let pile = gather(&env, "pile", &isos_but(&env, &["disc-2.iso"]));
    let tmp = empty_dir(&env, "tmp");
    let on_2 = names_on(&env, 2);

    // The plan says how disc 2 comes back.
    let target = env.dir.path().join("dry");
    let out = recovery("dbackup-restore")
        .arg("-d")
        .arg(&pile)
        .arg("--to")
        .arg(&target)
        .arg("--dry-run")
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert_eq!(code("restore --dry-run", &out), 0, "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    let line = plan
        .lines()
        .find(|l| l.starts_with("2\t"))
        .unwrap_or_else(|| panic!("no row for disc 2: {plan}"));
    assert!(line.contains("rebuilt from"), "{line}");
    assert!(line.contains("parity disc 1-1"), "{line}");
    assert!(restored(&target).is_empty(), "a dry run restored files");

    let out = recovery("dbackup-restore")
        .arg("-d")
        .arg(&pile)
        .arg("--to")
        .arg(&target)
        .args(["--dry-run", "--json"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert_eq!(code("restore --dry-run --json", &out), 0);
    let r = json(&out);
    let discs = r["plan"]["discs"].as_array().unwrap();
    let two = discs.iter().find(|d| d["disc"] == 2).unwrap();
    assert_eq!(two["state"], "parity", "{two}");
    let from = two["rebuilt_from"].as_str().expect("rebuilt_from");
    assert!(from.contains("parity disc 1-1"), "{from}");
    for d in discs.iter().filter(|d| d["disc"] != 2) {
        assert_eq!(d["state"], "given", "{d}");
        assert!(d.get("rebuilt_from").is_none(), "{d}");
    }

    // The restore itself, rebuilding in a folder of our choosing.
    let rebuild_in = empty_dir(&env, "rebuild-here");
    let target = env.dir.path().join("restored");
    let out = recovery("dbackup-restore")
        .arg("-d")
        .arg(&pile)
        .arg("--to")
        .arg(&target)
        .arg("--rebuild-in")
        .arg(&rebuild_in)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert_eq!(code("restore", &out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("disc 2 rebuilt from parity"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(restored(&target), tree_md5s(&env.watched));
    assert!(
        listing(&rebuild_in).is_empty(),
        "{:?}",
        listing(&rebuild_in)
    );
    assert!(listing(&tmp).is_empty(), "{:?}", listing(&tmp));
    assert!(listing(&pile).iter().all(|n| n.ends_with(".iso")));

    // --rebuild-in is where the image is made: a folder that is not there
    // leaves disc 2's files unrestored, and only them.
    let target = env.dir.path().join("restored-nowhere");
    let out = recovery("dbackup-restore")
        .arg("-d")
        .arg(&pile)
        .arg("--to")
        .arg(&target)
        .arg("--rebuild-in")
        .arg(env.dir.path().join("no-such-folder"))
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert_eq!(code("restore", &out), 1, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no-such-folder"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(restored(&target), tree_without(&env, &on_2));
    assert!(!env.dir.path().join("no-such-folder").exists());
    assert!(listing(&tmp).is_empty(), "{:?}", listing(&tmp));
}

#[test]
fn restore_rebuilds_a_disc_marked_lost() {
    let env = parity_set("4+1", 10, true);
    let out = env.tool("dbackup-lost").arg("2").output().unwrap();
    assert_eq!(code("lost 2", &out), 0, "{}", text(&out.stderr));
    // A disc closed after the mark carries it to the discs.
    env.write("data/after.bin", &seeded(4242, FILE_SIZE));
    let out = env.run(&["monitor"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = env.run(&["close", "--parity"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let pile = gather(&env, "pile", &isos_but(&env, &["disc-2.iso"]));
    let tmp = empty_dir(&env, "tmp");
    let target = env.dir.path().join("restored");
    let out = recovery("dbackup-restore")
        .arg("-d")
        .arg(&pile)
        .arg("--to")
        .arg(&target)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert_eq!(code("restore", &out), 0, "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    let line = plan
        .lines()
        .find(|l| l.starts_with("2\t"))
        .unwrap_or_else(|| panic!("no row for disc 2: {plan}"));
    assert!(line.contains("marked lost"), "{line}");
    assert!(line.contains("rebuilt from"), "{line}");
    assert_eq!(restored(&target), tree_md5s(&env.watched));
    assert!(listing(&tmp).is_empty(), "{:?}", listing(&tmp));
}

// Restore where parity cannot help ------------------------------------

#[test]
fn restore_where_parity_cannot_help_restores_the_rest_and_says_so() {
    let env = parity_set("4+1", 10, true);
    let on_1 = names_on(&env, 1);
    let on_2 = names_on(&env, 2);
    let pile = gather(&env, "pile", &isos_but(&env, &["disc-1.iso", "disc-2.iso"]));
    let tmp = empty_dir(&env, "tmp");
    let target = env.dir.path().join("restored");
    let out = recovery("dbackup-restore")
        .arg("-d")
        .arg(&pile)
        .arg("--to")
        .arg(&target)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert_eq!(code("restore", &out), 1, "a file not restored: exit 1");
    let gone: Vec<String> = on_1.iter().chain(&on_2).cloned().collect();
    assert_eq!(restored(&target), tree_without(&env, &gone));
    let err = text(&out.stderr);
    assert!(err.contains("2 files not restored"), "{err}");
    let plan = text(&out.stdout);
    for d in ["1\t", "2\t"] {
        let line = plan.lines().find(|l| l.starts_with(d)).unwrap();
        assert!(!line.contains("rebuilt"), "{line}");
    }

    let target = env.dir.path().join("restored-json");
    let out = recovery("dbackup-restore")
        .arg("-d")
        .arg(&pile)
        .arg("--to")
        .arg(&target)
        .arg("--json")
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert_eq!(code("restore --json", &out), 1);
    let r = json(&out);
    let failed: BTreeSet<(String, i64)> = r["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["disc"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, i64)> = on_1
        .iter()
        .map(|n| (n.clone(), 1))
        .chain(on_2.iter().map(|n| (n.clone(), 2)))
        .collect();
    assert_eq!(failed, expected);
    assert_eq!(
        r["restored"]["files"].as_u64().unwrap() as usize,
        tree_md5s(&env.watched).len() - gone.len()
    );
    assert!(listing(&tmp).is_empty(), "{:?}", listing(&tmp));
}

// Damaged parity discs and images -------------------------------------

/// `parity-1-1.iso` with bytes flipped in the middle of its recovery file.
fn damaged_parity_image(env: &TestEnv) -> (Vec<u8>, String) {
    let image_path = iso(env, "parity-1-1.iso");
    let (dir, vol) = extract_parity(env, &image_path, "parity-extracted");
    let inner = std::fs::read(dir.join(&vol)).unwrap();
    let mut image = std::fs::read(&image_path).unwrap();
    let at = offset_in_image(&image, &inner);
    flip(&mut image, at + inner.len() / 3, 300);
    (image, vol)
}

#[test]
fn a_damaged_parity_disc_is_reported_and_never_gives_a_wrong_image() {
    let env = parity_set("4+1", 10, false);
    let tmp = empty_dir(&env, "tmp");
    let out_dir = empty_dir(&env, "out");
    let (image, vol) = damaged_parity_image(&env);
    let pile = gather(
        &env,
        "pile",
        &[disc_iso(&env, 2), disc_iso(&env, 3), disc_iso(&env, 4)],
    );
    let bad = pile.join("parity-1-1.iso");
    std::fs::write(&bad, &image).unwrap();

    let out = recovery("dbackup-verify")
        .arg("-d")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(code("verify", &out), 1, "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(&vol) && err.contains("damaged"), "{err}");

    // The same damage on a mounted parity disc (a folder).
    let (folder, vol) = extract_parity(&env, &bad, "parity-mounted");
    let out = recovery("dbackup-verify")
        .arg("-d")
        .arg(&folder)
        .output()
        .unwrap();
    assert_eq!(code("verify folder", &out), 1, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&vol), "{}", text(&out.stderr));

    for (how, parity) in [("image", &bad), ("folder", &folder)] {
        let to = out_dir.join(format!("disc-1-{how}.iso"));
        let out = rebuild(1, &[&pile, parity], &to, &tmp);
        match code("rebuild", &out) {
            0 => assert_eq!(md5_file(&to), md5_file(&disc_iso(&env, 1)), "{how}"),
            2 => {
                let err = text(&out.stderr);
                assert!(err.contains("par2"), "{how}: a clear message: {err}");
                assert!(
                    !to.exists(),
                    "{how}: a failed rebuild wrote {}",
                    to.display()
                );
            }
            c => panic!("{how}: exit {c}: {}", text(&out.stderr)),
        }
    }
    assert!(listing(&out_dir).iter().all(|n| !n.starts_with('.')));
    assert!(listing(&tmp).is_empty(), "{:?}", listing(&tmp));

    // Restore given it: disc 1's files are not restored, and say why; the
    // rest are.
    let everything = gather(&env, "everything-but-1", &isos_but(&env, &["disc-1.iso"]));
    std::fs::remove_file(everything.join("parity-1-1.iso")).unwrap();
    std::fs::write(everything.join("parity-1-1.iso"), &image).unwrap();
    let target = env.dir.path().join("restored");
    let out = recovery("dbackup-restore")
        .arg("-d")
        .arg(&everything)
        .arg("--to")
        .arg(&target)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let on_1 = names_on(&env, 1);
    let mut expected = tree_md5s(&env.watched);
    // The open disc's file is on no disc yet.
    expected.retain(|name, _| {
        let name = String::from_utf8_lossy(name);
        env.catalog()
            .query_row(
                "SELECT d.completed IS NOT NULL FROM files f JOIN discs d ON d.id=f.disc_id
                 WHERE f.filename=?1",
                [name.as_ref()],
                |r| r.get::<_, bool>(0),
            )
            .unwrap()
    });
    match code("restore", &out) {
        0 => assert_eq!(restored(&target), expected),
        1 => {
            let err = text(&out.stderr);
            assert!(err.contains("could not be rebuilt from parity"), "{err}");
            for n in &on_1 {
                expected.remove(n.as_bytes());
            }
            assert_eq!(restored(&target), expected);
        }
        c => panic!("restore exit {c}: {}", text(&out.stderr)),
    }
    assert!(listing(&tmp).is_empty(), "{:?}", listing(&tmp));
}

/// With two parity discs, a damaged one costs only its damaged block: the
/// other holds enough, and the lost disc comes back whole.
#[test]
fn a_damaged_parity_disc_with_a_good_one_beside_still_rebuilds() {
    let env = parity_set("3+2", 4, false);
    let tmp = empty_dir(&env, "tmp");
    let (image, _) = damaged_parity_image(&env);
    let pile = gather(
        &env,
        "pile",
        &[
            disc_iso(&env, 2),
            disc_iso(&env, 3),
            iso(&env, "parity-1-2.iso"),
        ],
    );
    std::fs::write(pile.join("parity-1-1.iso"), &image).unwrap();
    let to = env.dir.path().join("disc-1.iso");
    let out = rebuild(1, &[&pile], &to, &tmp);
    assert_eq!(code("rebuild", &out), 0, "{}", text(&out.stderr));
    assert_eq!(md5_file(&to), md5_file(&disc_iso(&env, 1)));
}

/// A folder with the images of group 1 (4+1) and its parity disc, disc 2's
/// damaged inside its file's bytes (which are the watched file's).
fn pile_with_disc_2_damaged(env: &TestEnv) -> PathBuf {
    let mut two = std::fs::read(disc_iso(env, 2)).unwrap();
    // Inside disc 2's file (its bytes are the watched file's).
    let name = names_on(env, 2).remove(0);
    let content = std::fs::read(env.watched.join(name.trim_start_matches('/'))).unwrap();
    let at = offset_in_image(&two, &content);
    flip(&mut two, at + 1000, 64);
    let pile = gather(
        env,
        "pile",
        &[
            disc_iso(env, 1),
            disc_iso(env, 3),
            disc_iso(env, 4),
            iso(env, "parity-1-1.iso"),
        ],
    );
    std::fs::write(pile.join("disc-2.iso"), &two).unwrap();
    pile
}

/// A data image damaged: par2 verify, run on the parity disc with its
/// group's images, says the group is not whole.
#[test]
fn verify_with_a_damaged_data_image_gives_the_par2_verdict_not_whole() {
    let env = parity_set("4+1", 10, false);
    let pile = pile_with_disc_2_damaged(&env);

    let out = recovery("dbackup-verify")
        .arg("-d")
        .arg(&pile)
        .output()
        .unwrap();
    assert_eq!(code("verify", &out), 1, "{}", text(&out.stderr));
    let report = text(&out.stdout);
    let verdict = report
        .lines()
        .find(|l| l.starts_with("parity disc 1-1:"))
        .unwrap_or_else(|| panic!("no par2 verdict: {report}"));
    assert!(verdict.contains("par2 verify"), "{verdict}");
    assert!(!verdict.contains(": ok"), "{verdict}");

    let out = recovery("dbackup-verify")
        .arg("-d")
        .arg(&pile)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(code("verify --json", &out), 1);
    let r = json(&out);
    let p = r["discs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["parity"] == "1-1")
        .expect("the parity disc's entry");
    let par2 = p["par2"].as_str().expect("a par2 verdict");
    assert!(par2.contains("not all"), "{par2}");
    let d2 = r["discs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["disc"] == 2 && d["parity"].is_null())
        .unwrap();
    assert_eq!(d2["damaged"], 1, "{d2}");
}

/// The parity disc itself is whole when only a data image is damaged: its
/// own counts add up and name no file of its own damaged.
#[test]
fn verify_does_not_count_a_whole_parity_disc_damaged_for_a_damaged_data_image() {
    let env = parity_set("4+1", 10, false);
    let pile = pile_with_disc_2_damaged(&env);
    let out = recovery("dbackup-verify")
        .arg("-d")
        .arg(&pile)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(code("verify --json", &out), 1);
    let r = json(&out);
    let p = r["discs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["parity"] == "1-1")
        .expect("the parity disc's entry");
    let n = |k: &str| p[k].as_u64().unwrap();
    assert!(
        n("ok") + n("damaged") + n("missing") + n("unreadable") <= n("files"),
        "counts of the parity disc do not add up: {p}"
    );
    assert_eq!(n("ok"), n("files"), "{p}");
}

// find ----------------------------------------------------------------

#[test]
fn find_shows_a_missing_discs_file_as_recoverable_from_parity() {
    let env = parity_set("4+1", 10, false);
    let pile = gather(&env, "pile", &isos_but(&env, &["disc-3.iso"]));
    let name = names_on(&env, 3).remove(0);
    let base = name.rsplit('/').next().unwrap().to_string();
    let out = recovery("dbackup-find")
        .arg("-d")
        .arg(&pile)
        .arg(&base)
        .output()
        .unwrap();
    assert_eq!(code("find", &out), 0, "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("{name} not found: {table}"));
    assert!(row.ends_with("recoverable from parity"), "{row}");

    let out = recovery("dbackup-find")
        .arg("-d")
        .arg(&pile)
        .arg("--json")
        .arg(&base)
        .output()
        .unwrap();
    assert_eq!(code("find --json", &out), 0);
    let r = json(&out);
    let hit = r
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["filename"] == name.as_str())
        .unwrap();
    assert_eq!(hit["availability"], "parity", "{hit}");
    assert_eq!(hit["disc"], 3);

    // A file on a given disc is given; one of a group missing two discs
    // is not recoverable from parity.
    let pile2 = gather(
        &env,
        "pile2",
        &isos_but(&env, &["disc-3.iso", "disc-4.iso"]),
    );
    let out = recovery("dbackup-find")
        .arg("-d")
        .arg(&pile2)
        .arg("--json")
        .arg("*.bin")
        .output()
        .unwrap();
    assert_eq!(code("find --json", &out), 0);
    for h in json(&out).as_array().unwrap() {
        let disc = h["disc"].as_i64().unwrap();
        let want = match disc {
            3 | 4 => "not_given",
            10 => h["availability"].as_str().unwrap(),
            _ => "given",
        };
        assert_eq!(h["availability"], want, "{h}");
    }
    assert_eq!(disc_of(&env, &name), 3);
}

// status --------------------------------------------------------------

#[test]
fn status_says_which_discs_are_protected() {
    let env = parity_set("4+1", 10, false);
    let status = |env: &TestEnv| {
        let out = env.run(&["status", "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        json(&out)
    };
    let s = status(&env);
    assert_eq!(s["Parity"], "4+1");
    assert_eq!(s["Discs_closed"], 9);
    assert_eq!(s["Protected_discs"], "1-8", "{s}");
    assert_eq!(s["Unprotected_discs"], "9", "{s}");
    assert_eq!(s["Parity_discs"], serde_json::json!(["1-1", "2-1"]));

    let out = env.run(&["close", "--parity"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = status(&env);
    assert_eq!(s["Discs_closed"], 10);
    assert_eq!(s["Protected_discs"], "1-10", "{s}");
    assert_eq!(s["Unprotected_discs"], "none", "{s}");
    assert_eq!(s["Parity_discs"], serde_json::json!(["1-1", "2-1", "3-1"]));
    assert_eq!(s["Parity_groups_waiting"], serde_json::json!([]));
    env.check_invariants();
}

// Hostile parity discs ------------------------------------------------

/// A hostile parity disc (a folder made from the real one, then changed):
/// verify and rebuild neither panic nor write outside their folders; a
/// rebuild gives the right image or a clear error and nothing.
fn hostile_case(env: &TestEnv, case: &str, change: impl FnOnce(&Path)) {
    let (folder, _) = extract_parity(env, &iso(env, "parity-1-1.iso"), &format!("hostile-{case}"));
    change(&folder);
    let survivors = gather(
        env,
        &format!("survivors-{case}"),
        &[disc_iso(env, 2), disc_iso(env, 3), disc_iso(env, 4)],
    );
    let tmp = empty_dir(env, &format!("tmp-{case}"));
    let out_dir = empty_dir(env, &format!("out-{case}"));
    let before = everything_under(env.dir.path());

    let out = recovery("dbackup-verify")
        .arg("-d")
        .arg(&folder)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let c = code("verify", &out);
    assert!(
        (1..=2).contains(&c),
        "{case}: verify exit {c}: {}",
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).is_empty(), "{case}: verify said nothing");

    let to = out_dir.join("disc-1.iso");
    let out = rebuild(1, &[&survivors, &folder], &to, &tmp);
    match code("rebuild", &out) {
        0 => assert_eq!(
            md5_file(&to),
            md5_file(&disc_iso(env, 1)),
            "{case}: a wrong image"
        ),
        2 => {
            assert!(!to.exists(), "{case}: a failed rebuild wrote its image");
            assert!(
                text(&out.stderr).contains("error:"),
                "{case}: {}",
                text(&out.stderr)
            );
        }
        c => panic!("{case}: rebuild exit {c}: {}", text(&out.stderr)),
    }
    let mut after = everything_under(env.dir.path());
    after.remove(&PathBuf::from(format!("out-{case}/disc-1.iso")));
    assert_eq!(after, before, "{case}: files written outside --to");
    assert!(listing(&tmp).is_empty(), "{case}: {:?}", listing(&tmp));
}

fn set_this_parity_disc(folder: &Path, value: &str) {
    let conn = rusqlite::Connection::open(folder.join("manifest.db")).unwrap();
    let n = conn
        .execute(
            "UPDATE settings SET value=?1 WHERE key='this_parity_disc'",
            [value],
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn a_parity_disc_with_garbage_md5sums_is_reported() {
    let env = parity_set("4+1", 10, false);
    hostile_case(&env, "md5sums", |f| {
        std::fs::write(f.join("MD5SUMS"), seeded(99, 3000)).unwrap();
    });
}

#[test]
fn a_parity_disc_naming_itself_0_0_is_refused() {
    let env = parity_set("4+1", 10, false);
    hostile_case(&env, "zero", |f| set_this_parity_disc(f, "0-0"));
}

#[test]
fn a_parity_disc_naming_itself_x_is_refused() {
    let env = parity_set("4+1", 10, false);
    hostile_case(&env, "x", |f| set_this_parity_disc(f, "x"));
}

/// A parity disc whose manifest records another layout than its PAR2
/// index (a member's MD5 changed): not believed.
#[test]
fn a_parity_disc_whose_manifest_disagrees_with_its_index_is_refused() {
    let env = parity_set("4+1", 10, false);
    hostile_case(&env, "layout", |f| {
        let conn = rusqlite::Connection::open(f.join("manifest.db")).unwrap();
        let n = conn
            .execute(
                "UPDATE parity_members SET md5='00000000000000000000000000000000' WHERE disc_id=2",
                [],
            )
            .unwrap();
        assert_eq!(n, 1);
    });
}

/// A parity disc of another set, given with the survivors: refused.
#[test]
fn a_parity_disc_of_another_set_is_refused() {
    let env = parity_set("4+1", 5, false);
    let other = parity_set("4+1", 5, false);
    let tmp = empty_dir(&env, "tmp");
    let to = env.dir.path().join("disc-1.iso");
    let out = rebuild(
        1,
        &[
            &disc_iso(&env, 2),
            &disc_iso(&env, 3),
            &disc_iso(&env, 4),
            &iso(&other, "parity-1-1.iso"),
        ],
        &to,
        &tmp,
    );
    assert_eq!(code("rebuild", &out), 2, "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("not of set"), "{err}");
    assert!(!to.exists());
    assert!(listing(&tmp).is_empty(), "{:?}", listing(&tmp));
}

/// Files a parity disc should not hold: one whose name takes a path out of
/// the folder (a link to `../x.par2`, since a name cannot hold a slash),
/// and one named like a recovery file with a tail. They are never copied
/// or followed; verify names them.
#[test]
fn a_parity_disc_with_extra_files_is_not_followed_out() {
    let env = parity_set("4+1", 10, false);
    let outside = env.dir.path().join("x.par2");
    std::fs::write(&outside, b"outside the disc").unwrap();
    let (folder, _) = extract_parity(&env, &iso(&env, "parity-1-1.iso"), "extra");
    std::fs::write(folder.join("parity-1.vol0+8.par2.evil"), seeded(5, 5000)).unwrap();
    std::os::unix::fs::symlink("../x.par2", folder.join("parity-1.vol8+8.par2")).unwrap();
    let survivors = gather(
        &env,
        "survivors",
        &[disc_iso(&env, 2), disc_iso(&env, 3), disc_iso(&env, 4)],
    );
    let tmp = empty_dir(&env, "tmp");
    let before = everything_under(env.dir.path());

    let out = recovery("dbackup-verify")
        .arg("-d")
        .arg(&folder)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let c = code("verify", &out);
    assert!(c <= 1, "verify exit {c}: {}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("parity-1.vol0+8.par2.evil"), "{err}");

    let to = env.dir.path().join("disc-1.iso");
    let out = rebuild(1, &[&survivors, &folder], &to, &tmp);
    match code("rebuild", &out) {
        0 => assert_eq!(md5_file(&to), md5_file(&disc_iso(&env, 1))),
        2 => assert!(!to.exists()),
        c => panic!("rebuild exit {c}: {}", text(&out.stderr)),
    }
    assert_eq!(std::fs::read(&outside).unwrap(), b"outside the disc");
    let mut after = everything_under(env.dir.path());
    after.remove(Path::new("disc-1.iso"));
    assert_eq!(after, before, "files written outside --to");
    assert!(listing(&tmp).is_empty(), "{:?}", listing(&tmp));
}

// Mounted survivors ---------------------------------------------------

#[test]
fn a_mounted_survivor_is_refused_with_a_hint_to_give_its_image() {
    let env = parity_set("4+1", 10, false);
    let tmp = empty_dir(&env, "tmp");
    let mounted = empty_dir(&env, "mounted-disc-2");
    bsdtar_extract(&disc_iso(&env, 2), &mounted);
    let to = env.dir.path().join("disc-1.iso");
    let out = rebuild(
        1,
        &[
            &mounted,
            &disc_iso(&env, 3),
            &disc_iso(&env, 4),
            &iso(&env, "parity-1-1.iso"),
        ],
        &to,
        &tmp,
    );
    assert_eq!(code("rebuild", &out), 2, "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("folder"), "{err}");
    assert!(err.contains("dd "), "tells how to make the image: {err}");
    assert!(!to.exists());
    assert!(listing(&tmp).is_empty(), "{:?}", listing(&tmp));

    // Given as an image, the same disc does it.
    let image = env.dir.path().join("disc-2-read.iso");
    std::fs::copy(disc_iso(&env, 2), &image).unwrap();
    let out = rebuild(
        1,
        &[
            &image,
            &disc_iso(&env, 3),
            &disc_iso(&env, 4),
            &iso(&env, "parity-1-1.iso"),
        ],
        &to,
        &tmp,
    );
    assert_eq!(code("rebuild", &out), 0, "{}", text(&out.stderr));
    assert_eq!(md5_file(&to), md5_file(&disc_iso(&env, 1)));
}

// Interrupted rebuilds ------------------------------------------------

/// A folder with a `par2` that waits `secs` before running the real one:
/// a rebuild stays in par2 long enough to be interrupted there.
fn slow_par2(env: &TestEnv, secs: u32) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let real = std::env::split_paths(&path)
        .map(|d| d.join("par2"))
        .find(|c| c.is_file())
        .expect("par2 is installed");
    let dir = empty_dir(env, "slow-par2");
    let script = dir.join("par2");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep {secs}\nexec '{}' \"$@\"\n",
            real.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut paths = vec![dir.clone()];
    paths.extend(std::env::split_paths(&path));
    std::env::join_paths(paths).unwrap().into()
}

/// Waits (up to 20 s) until `dir` holds a rebuild's work folder with the
/// survivors linked in, i.e. par2 is about to run or running.
fn wait_for_work_folder(dir: &Path, child: &mut std::process::Child) -> PathBuf {
    for _ in 0..2000 {
        if let Some(w) = std::fs::read_dir(dir).unwrap().flatten().find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("dbackup-rebuild-")
                && e.path().join("disc-3.iso").exists()
        }) {
            std::thread::sleep(std::time::Duration::from_millis(300));
            return w.path();
        }
        if let Some(s) = child.try_wait().unwrap() {
            panic!("ended before par2 ran: {s}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("no work folder appeared in {}", dir.display());
}

/// Ctrl-C at a terminal: SIGINT to the whole foreground process group.
fn ctrl_c(child: &std::process::Child) {
    // SAFETY: kill has no memory preconditions; the group is the child's own.
    let r = unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    assert_eq!(r, 0, "kill: {}", std::io::Error::last_os_error());
}

/// Ctrl-C while par2 rebuilds disc 1 for `dbackup-lost --rebuild`: nothing
/// is left beside --to (no work folder with a half-written disc-1.iso and
/// the group's recovery files in it, no partial image).
#[test]
fn an_interrupted_rebuild_leaves_nothing_beside_its_target() {
    use std::os::unix::process::CommandExt;
    let env = parity_set("4+1", 10, false);
    let path = slow_par2(&env, 30);
    let pile = gather(&env, "pile", &isos_but(&env, &["disc-1.iso"]));
    let tmp = empty_dir(&env, "tmp");
    let out_dir = empty_dir(&env, "out");
    let to = out_dir.join("disc-1.iso");
    let mut child = recovery("dbackup-lost")
        .args(["1", "--rebuild", "-d"])
        .arg(&pile)
        .arg("--to")
        .arg(&to)
        .env("TMPDIR", &tmp)
        .env("PATH", &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_for_work_folder(&out_dir, &mut child);
    ctrl_c(&child);
    let status = child.wait().unwrap();
    assert!(!status.success(), "{status}");
    assert!(!to.exists(), "an interrupted rebuild named its image");
    assert!(
        listing(&out_dir).is_empty(),
        "left beside --to after Ctrl-C: {:?}",
        listing(&out_dir)
    );
    assert!(listing(&tmp).is_empty(), "{:?}", listing(&tmp));
}

/// Ctrl-C while restore rebuilds a disc: exit 130, the files restored so
/// far whole, the rebuild's folder gone, and the same command resumes.
#[test]
fn an_interrupted_restore_rebuild_leaves_nothing_and_resumes() {
    use std::os::unix::process::CommandExt;
    let env = parity_set("4+1", 10, true);
    let path = slow_par2(&env, 30);
    let pile = gather(&env, "pile", &isos_but(&env, &["disc-2.iso"]));
    let tmp = empty_dir(&env, "tmp");
    let rebuild_in = empty_dir(&env, "rebuild-here");
    let target = env.dir.path().join("restored");
    let restore = || {
        let mut c = recovery("dbackup-restore");
        c.arg("-d")
            .arg(&pile)
            .arg("--to")
            .arg(&target)
            .arg("--rebuild-in")
            .arg(&rebuild_in)
            .env("TMPDIR", &tmp);
        c
    };
    let mut child = restore()
        .env("PATH", &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_for_work_folder(&rebuild_in, &mut child);
    ctrl_c(&child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status}");
    let tree = tree_md5s(&env.watched);
    for (name, md5) in restored(&target) {
        assert_eq!(tree.get(&name), Some(&md5), "a restored file is not whole");
    }
    assert!(
        listing(&rebuild_in).is_empty(),
        "left in --rebuild-in after Ctrl-C: {:?}",
        listing(&rebuild_in)
    );
    assert!(listing(&tmp).is_empty(), "{:?}", listing(&tmp));

    let out = restore().output().unwrap();
    assert_eq!(code("restore again", &out), 0, "{}", text(&out.stderr));
    assert_eq!(restored(&target), tree);
    assert!(listing(&rebuild_in).is_empty());
}
