//! A stranger's recovery of files larger than a disc, with stock tools
//! only: images of sets whose split files have 3, 6 and 20 parts read by
//! bsdtar and 7z, the parts joined with `cat` in the order README.TXT's
//! sqlite3 query gives, `md5sum -c MD5SUMS` on every disc, and RECOVER.PY
//! joining them itself (and refusing to when a disc is left out, or the
//! catalogue's parts are unsound).

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use proptest::prelude::*;

fn recover(script: &Path, to: &Path, discs: &[&Path]) -> Output {
    Command::new("python3")
        .arg(script)
        .arg("--to")
        .arg(to)
        .args(discs)
        .output()
        .expect("python3 is installed")
}

/// Every entry under `root`, relative, sorted (folders included).
fn entries(root: &Path) -> Vec<String> {
    if !root.exists() {
        return Vec::new();
    }
    let mut v: Vec<String> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            e.path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

fn mtime_ns(p: &Path) -> i128 {
    let md = std::fs::metadata(p).unwrap();
    md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128
}

/// Content of `len` bytes, distinct per seed, with no repeating period that
/// a wrong part order could hide behind.
fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A one-disc set whose `/big` has two versions, extracted with bsdtar;
/// returns (env, the disc folder, the newest version's id, its content).
fn one_disc_with_big(root: &Path) -> (TestEnv, PathBuf, i64, Vec<u8>) {
    let env = TestEnv::new();
    env.write("big", b"the older version");
    env.write("small", b"a whole file");
    env.init(&["--disc-size", "cd"]);
    assert!(env.run(&["monitor"]).status.success());
    let data = content(7, 30_000);
    env.write("big", &data);
    assert!(env.run(&["monitor"]).status.success());
    let out = env.run(&["close"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let disc = root.join("disc");
    std::fs::create_dir_all(&disc).unwrap();
    bsdtar_extract(&env.workdir.join("isos/disc-1.iso"), &disc);
    let id: i64 = rusqlite::Connection::open(disc.join("manifest.db"))
        .unwrap()
        .query_row("SELECT max(id) FROM files WHERE filename='/big'", [], |r| {
            r.get(0)
        })
        .unwrap();
    (env, disc, id, data)
}

/// A writable copy of `disc` in which version `id` (of `data`) is stored as
/// a split version in parts of `sizes` bytes, with catalogue rows as the
/// format says; then `sql` (with `ID` replaced by the id) doctors it.
fn as_split(disc: &Path, into: &Path, id: i64, data: &[u8], sizes: &[usize], sql: &str) -> PathBuf {
    let out = Command::new("cp")
        .arg("-a")
        .arg(disc)
        .arg(into)
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = into.join(format!("files/{}", id / 256));
    std::fs::remove_file(dir.join(id.to_string())).unwrap();
    let conn = rusqlite::Connection::open(into.join("manifest.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS splits(file_id INTEGER PRIMARY KEY, state TEXT NOT NULL, why TEXT);
         CREATE TABLE IF NOT EXISTS parts(file_id INTEGER NOT NULL, part INTEGER NOT NULL,
             disc_id INTEGER NOT NULL, offset INTEGER NOT NULL, size INTEGER NOT NULL,
             md5 TEXT, copied BOOLEAN NOT NULL, PRIMARY KEY(file_id, part));",
    )
    .unwrap();
    conn.execute("UPDATE files SET disc_id=NULL WHERE id=?1", [id])
        .unwrap();
    conn.execute("INSERT INTO splits VALUES (?1, 'complete', NULL)", [id])
        .unwrap();
    let mut offset = 0;
    for (k, size) in sizes.iter().enumerate() {
        let part = &data[offset..offset + size];
        std::fs::write(dir.join(format!("{id}.{}", k + 1)), part).unwrap();
        conn.execute(
            "INSERT INTO parts VALUES (?1, ?2, 1, ?3, ?4, ?5, 1)",
            rusqlite::params![
                id,
                k as i64 + 1,
                offset as i64,
                *size as i64,
                md5_bytes(part)
            ],
        )
        .unwrap();
        offset += size;
    }
    conn.execute_batch(&sql.replace("ID", &id.to_string()))
        .unwrap();
    into.to_path_buf()
}

#[test]
fn recover_py_joins_sound_parts_and_refuses_unsound_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (env, disc, id, data) = one_disc_with_big(dir.path());
    let sizes = [10_000, 10_000, 10_000];
    let n = std::cell::Cell::new(0);
    let case = |sql: &str| {
        n.set(n.get() + 1);
        let copy = as_split(
            &disc,
            &dir.path().join(format!("case-{}", n.get())),
            id,
            &data,
            &sizes,
            sql,
        );
        let target = dir.path().join(format!("target-{}", n.get()));
        let out = recover(&copy.join("RECOVER.PY"), &target, &[&copy]);
        (copy, target, out)
    };

    // Sound: joined byte for byte, with its mtime.
    let (_, target, out) = case("");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(std::fs::read(target.join("big")).unwrap(), data);
    let want = mtime_ns(&env.watched.join("big"));
    assert!((mtime_ns(&target.join("big")) - want).abs() < 1_000);
    assert_eq!(entries(&target), ["big", "small"], "no temp folder left");

    // Unsound part lists are no backup: nothing under the name.
    for (sql, what) in [
        ("DELETE FROM parts WHERE file_id=ID AND part=2", "a gap"),
        (
            "UPDATE parts SET part=4 WHERE file_id=ID AND part=3",
            "a gap at the end",
        ),
        (
            "UPDATE parts SET offset=offset+1 WHERE file_id=ID AND part=2",
            "offsets not contiguous",
        ),
        (
            "UPDATE files SET size=size+1 WHERE id=ID",
            "sizes not summing to the file's",
        ),
        (
            "UPDATE parts SET md5=NULL WHERE file_id=ID AND part=1",
            "a part without an MD5",
        ),
        (
            "UPDATE parts SET copied=0 WHERE file_id=ID AND part=3",
            "a part not copied",
        ),
        (
            "UPDATE parts SET disc_id=0 WHERE file_id=ID AND part=3",
            "discs going down",
        ),
        (
            "UPDATE parts SET part='1/../../x' WHERE file_id=ID AND part=1",
            "a part number that is text",
        ),
        ("DELETE FROM splits", "no splits row"),
    ] {
        let (_, target, out) = case(sql);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out.stdout));
        let report = text(&out.stdout);
        assert!(
            report.contains("/big: invalid catalogue rows for its parts"),
            "{what}: {report}"
        );
        assert_eq!(entries(&target), ["small"], "{what}");
    }

    // A rotten part: the whole is never named.
    let (copy, target, _) = case("");
    std::fs::write(
        copy.join(format!("files/{}/{id}.2", id / 256)),
        content(8, 10_000),
    )
    .unwrap();
    std::fs::remove_dir_all(&target).unwrap();
    let out = recover(&copy.join("RECOVER.PY"), &target, &[&copy]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("/big: part 2: no good copy"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(entries(&target), ["small"]);

    // A part's disc not given: listed, nothing under the name; given, the
    // file is joined from both discs.
    let (copy, _, _) = case("UPDATE parts SET disc_id=2 WHERE file_id=ID AND part=3");
    let second = dir.path().join("second");
    let rel = format!("files/{}/{id}.3", id / 256);
    std::fs::create_dir_all(second.join(format!("files/{}", id / 256))).unwrap();
    std::fs::rename(copy.join(&rel), second.join(&rel)).unwrap();
    std::fs::copy(copy.join("manifest.db"), second.join("manifest.db")).unwrap();
    let target = dir.path().join("target-one-disc");
    let out = recover(&copy.join("RECOVER.PY"), &target, &[&copy]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("/big: split in 3 parts; not given: part 3 on disc 2"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(entries(&target), ["small"]);
    let out = recover(&copy.join("RECOVER.PY"), &target, &[&copy, &second]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(std::fs::read(target.join("big")).unwrap(), data);

    // Abandoned: no backup; the older version is the latest backup.
    let (_, target, out) = case("UPDATE splits SET state='abandoned', why='changed'");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(
        std::fs::read(target.join("big")).unwrap(),
        b"the older version"
    );

    // Staging (a catalogue frozen before the last part): the older version
    // is recovered, and the newer one is said to be on newer discs.
    let (_, target, out) =
        case("UPDATE splits SET state='staging'; UPDATE files SET copied=0, md5=NULL WHERE id=ID");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("/big: a newer version"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        std::fs::read(target.join("big")).unwrap(),
        b"the older version"
    );
}

/// A split version with an `attrs` row (docs/tree.md) gets its mode and
/// exact mtime when joined, and its runs of zero blocks stay holes.
#[test]
fn recover_py_gives_a_joined_file_its_attrs_and_holes() {
    let dir = tempfile::tempdir().unwrap();
    let (_env, disc, id, _) = one_disc_with_big(dir.path());
    let mut data = vec![0u8; 3 << 20];
    data[..5].copy_from_slice(b"start");
    data[(2 << 20) + 7] = 1;
    let sizes = [1 << 20, 1 << 20, 1 << 20];
    let copy = as_split(
        &disc,
        &dir.path().join("copy"),
        id,
        &data,
        &sizes,
        &format!(
            "UPDATE files SET md5='{}', size={} WHERE id=ID;
             CREATE TABLE IF NOT EXISTS attrs(file_id INTEGER PRIMARY KEY, mode INTEGER,
                 uid INTEGER, gid INTEGER, owner TEXT, grp TEXT, mtime_sec INTEGER,
                 mtime_nsec INTEGER);
             INSERT OR REPLACE INTO attrs
                 VALUES (ID, 416, NULL, NULL, NULL, NULL, 1341234567, 987654321);",
            md5_bytes(&data),
            data.len()
        ),
    );
    let target = dir.path().join("target");
    let out = recover(&copy.join("RECOVER.PY"), &target, &[&copy]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(std::fs::read(target.join("big")).unwrap(), data);
    let md = std::fs::symlink_metadata(target.join("big")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o640);
    assert_eq!(mtime_ns(&target.join("big")), 1_341_234_567_987_654_321);
    assert!(md.blocks() * 512 < 1 << 20, "{} blocks", md.blocks());
}

/// The discs of a set in which version `id` of `/big` (`data`) is split in
/// parts of `sizes` bytes, part k on disc `on[k]` (non-decreasing, from 1):
/// disc 1 is a copy of `disc` (with `/small`), each later disc holds the
/// catalogue and its parts. Returns the disc folders, disc k at k - 1.
fn split_over_discs(
    disc: &Path,
    into: &Path,
    id: i64,
    data: &[u8],
    sizes: &[usize],
    on: &[i64],
) -> Vec<PathBuf> {
    std::fs::create_dir_all(into).unwrap();
    let first = as_split(disc, &into.join("1"), id, data, sizes, "");
    let conn = rusqlite::Connection::open(first.join("manifest.db")).unwrap();
    for (k, d) in on.iter().enumerate() {
        conn.execute(
            "UPDATE parts SET disc_id=?1 WHERE file_id=?2 AND part=?3",
            rusqlite::params![d, id, k as i64 + 1],
        )
        .unwrap();
    }
    drop(conn);
    let last = *on.iter().max().unwrap();
    let mut roots = vec![first.clone()];
    for d in 2..=last {
        let root = into.join(d.to_string());
        std::fs::create_dir_all(root.join(format!("files/{}", id / 256))).unwrap();
        std::fs::copy(first.join("manifest.db"), root.join("manifest.db")).unwrap();
        roots.push(root);
    }
    for (k, d) in on.iter().enumerate() {
        let rel = format!("files/{}/{id}.{}", id / 256, k + 1);
        if *d != 1 {
            std::fs::rename(first.join(&rel), roots[*d as usize - 1].join(&rel)).unwrap();
        }
    }
    roots
}

/// Whatever the parts' sizes and discs, which discs are given and which
/// part rotted: RECOVER.PY names the file exactly when every part is there
/// and good, with the right bytes and mtime; otherwise it lists it, exits 1
/// and leaves nothing under its name.
#[test]
fn recover_py_names_a_split_file_only_when_every_part_is_good() {
    use proptest::test_runner::{Config, TestRunner};
    let base = tempfile::tempdir().unwrap();
    let (env, disc, id, _) = one_disc_with_big(base.path());
    let script = disc.join("RECOVER.PY");
    let strategy = (
        prop::collection::vec(1usize..6_000, 1..8),
        prop::collection::vec(0i64..2, 8),
        1u32..16,
        prop::option::of(0usize..8),
    );
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(sizes, steps, given_mask, rot)| {
            let dir = tempfile::tempdir().unwrap();
            let total: usize = sizes.iter().sum();
            let data = content(total as u64, total);
            // The parts' discs: 1, then each one the same or the next.
            let mut on = vec![1i64];
            for k in 1..sizes.len() {
                on.push(on[k - 1] + steps[k]);
            }
            let roots = split_over_discs(&disc, &dir.path().join("discs"), id, &data, &sizes, &on);
            // The version's size and MD5 become those of `data`.
            for root in &roots {
                let conn = rusqlite::Connection::open(root.join("manifest.db")).unwrap();
                conn.execute(
                    "UPDATE files SET size=?1, md5=?2 WHERE id=?3",
                    rusqlite::params![total as i64, md5_bytes(&data), id],
                )
                .unwrap();
            }
            let rot = rot.filter(|k| *k < sizes.len());
            if let Some(k) = rot {
                let d = on[k] as usize - 1;
                let part = roots[d].join(format!("files/{}/{id}.{}", id / 256, k + 1));
                let mut bytes = std::fs::read(&part).unwrap();
                bytes[0] ^= 0x40;
                std::fs::write(&part, bytes).unwrap();
            }
            let given: Vec<&Path> = roots
                .iter()
                .enumerate()
                .filter(|(k, _)| given_mask & (1 << k) != 0)
                .map(|(_, r)| r.as_path())
                .collect();
            if given.is_empty() {
                return Ok(()); // nothing to give the script
            }
            let all_parts_given = on.iter().all(|d| given_mask & (1 << (d - 1)) != 0);
            let target = dir.path().join("target");
            let out = recover(&script, &target, &given);
            let report = text(&out.stdout);
            if all_parts_given && rot.is_none() {
                prop_assert_eq!(std::fs::read(target.join("big")).unwrap(), data);
                // At the precision the catalogue keeps (a REAL).
                let drift = mtime_ns(&target.join("big")) - mtime_ns(&env.watched.join("big"));
                prop_assert!(drift.abs() < 1_000, "{}", drift);
                let small_given = given_mask & 1 != 0;
                let want = if small_given { 0 } else { 1 };
                prop_assert_eq!(out.status.code(), Some(want), "{}", report);
            } else {
                prop_assert_eq!(out.status.code(), Some(1), "{}", report);
                prop_assert!(report.contains("/big: "), "{}", report);
                prop_assert!(!target.join("big").exists());
            }
            // Never a temp folder or anything else beside the names.
            for e in entries(&target) {
                prop_assert!(e == "big" || e == "small", "{}", e);
            }
            Ok(())
        })
        .unwrap();
}

/// The disc size of the split sets: small, so sets of 20 parts stay small.
const DISC: u64 = 1_307_200;
/// The split file's name in the watched folder (a space and a letter that
/// is not ASCII, as a user's are).
const BIG: &str = "video/Holiday 2012 \u{e9}t\u{e9}.mp4";
/// Its mtime, with a fraction.
const MTIME: f64 = 1_341_234_567.25;

/// A sparse file of `size` bytes at `path`: distinct blocks every 64 KiB
/// and at its end, holes between, so that parts joined in a wrong order
/// never match.
fn sparse(path: &Path, size: u64) {
    use std::io::{Seek, SeekFrom, Write};
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    let mut at = 0;
    while at + 4096 <= size {
        // bounded by size / 64 KiB
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&content(at + 1, 4096)).unwrap();
        at += 65_536;
    }
    f.seek(SeekFrom::Start(size - 100)).unwrap();
    f.write_all(&content(size, 100)).unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(MTIME);
    f.set_modified(t).unwrap();
}

/// (part, disc, size) of the latest version of `name` in a catalogue.
fn parts_of(db: &Path, name: &str) -> Vec<(i64, i64, i64)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT part, disc_id, size FROM parts WHERE file_id =
               (SELECT max(id) FROM files WHERE filename=?1) ORDER BY part",
        )
        .unwrap();
    stmt.query_map([format!("/{name}")], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

/// What a part of a whole empty disc holds at this disc size, measured once
/// by staging a file of about one and a half discs alone: its first part
/// fills the empty first disc.
fn room() -> u64 {
    static ROOM: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *ROOM.get_or_init(|| {
        let env = TestEnv::new();
        sparse(&env.watched.join(BIG), DISC * 3 / 2);
        env.init(&["--disc-size", &DISC.to_string()]);
        let out = env.run(&["monitor"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let parts = parts_of(&env.workdir.join("manifest.db"), BIG);
        assert!(parts.len() >= 2, "a file of 1.5 discs is split: {parts:?}");
        parts[0].2 as u64
    })
}

/// A set on discs of `DISC` bytes: a few whole files, and `BIG`, sparse,
/// split in `n` parts; every image extracted with bsdtar into `root/<disc>`.
struct SplitSet {
    env: TestEnv,
    /// The extracted discs, in disc order (disc `k` is `discs[k - 1]`).
    discs: Vec<PathBuf>,
    /// The images, in disc order.
    isos: Vec<PathBuf>,
    source_md5: String,
}

fn split_set(n: u64, root: &Path) -> SplitSet {
    let r = room();
    let env = TestEnv::new();
    env.write("a.txt", b"a small file");
    env.write("photos/b.jpg", &content(2, 30_000));
    env.write("zz/last.txt", b"after the big one");
    // n-1 whole parts and a quarter: whatever the smaller files take of the
    // first disc and the catalogue's growth over the discs, n parts.
    sparse(&env.watched.join(BIG), (n - 1) * r + r / 4);
    env.init(&["--disc-size", &DISC.to_string(), "--name", "Split"]);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = env.run(&["close"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let parts = parts_of(&env.workdir.join("manifest.db"), BIG);
    assert_eq!(parts.len() as u64, n, "{parts:?}");
    let source_md5 = md5_file(&env.watched.join(BIG));
    let mut isos: Vec<(i64, PathBuf)> = std::fs::read_dir(env.workdir.join("isos"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "iso"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_str().unwrap();
            (stem["disc-".len()..].parse().unwrap(), p)
        })
        .collect();
    isos.sort();
    let numbers: Vec<i64> = isos.iter().map(|(k, _)| *k).collect();
    assert_eq!(numbers, (1..=isos.len() as i64).collect::<Vec<_>>());
    assert!(isos.len() as u64 >= n, "{numbers:?}");
    let discs = isos
        .iter()
        .map(|(k, iso)| {
            let dest = root.join(k.to_string());
            std::fs::create_dir_all(&dest).unwrap();
            bsdtar_extract(iso, &dest);
            dest
        })
        .collect();
    SplitSet {
        env,
        discs,
        isos: isos.into_iter().map(|(_, p)| p).collect(),
        source_md5,
    }
}

/// One row of README.TXT's parts query.
#[derive(Debug)]
struct PartLine {
    id: i64,
    part: i64,
    disc: i64,
    path: String,
    size: u64,
    part_md5: String,
    whole_md5: String,
    mtime: f64,
}

/// README.TXT's sqlite3 query for the parts of a file, as printed there,
/// run with sh on the newest disc for `BIG`.
fn readme_parts_query(newest: &Path) -> Vec<PartLine> {
    let readme = std::fs::read_to_string(newest.join("README.TXT")).unwrap();
    let start = readme
        .find("     sqlite3 -header 'file:")
        .expect("README.TXT prints the parts query");
    let rest = &readme[start..];
    // The command ends at the closing double quote of its SQL.
    let open = rest.find('"').unwrap();
    let close = open + 1 + rest[open + 1..].find('"').unwrap();
    let cmd = rest[..=close]
        .replace("\\\n", " ")
        .replace("/media/cdrom", newest.to_str().unwrap())
        .replace("holiday.mp4", "Holiday 2012 \u{e9}t\u{e9}.mp4");
    let out = Command::new("sh").arg("-c").arg(&cmd).output().unwrap();
    assert!(out.status.success(), "{cmd}: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some("id|part|disc_id|path|size|part_md5|whole_md5|mtime"),
        "{cmd}"
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            assert_eq!(f.len(), 8, "{l}");
            PartLine {
                id: f[0].parse().unwrap(),
                part: f[1].parse().unwrap(),
                disc: f[2].parse().unwrap(),
                path: f[3].to_string(),
                size: f[4].parse().unwrap(),
                part_md5: f[5].to_string(),
                whole_md5: f[6].to_string(),
                mtime: f[7].parse().unwrap(),
            }
        })
        .collect()
}

fn md5sum(path: &Path) -> String {
    let out = Command::new("md5sum").arg(path).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Every path listed by `bsdtar -tf` and by `7z l` in an image.
fn listings(iso: &Path) -> (Vec<String>, Vec<String>) {
    let out = Command::new("bsdtar").arg("-tf").arg(iso).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bsdtar = text(&out.stdout)
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .collect();
    let out = Command::new("7z")
        .args(["l", "-slt"])
        .arg(iso)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seven = text(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("Path = "))
        .map(str::to_string)
        .collect();
    (bsdtar, seven)
}

fn check_split_set(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let set = split_set(n, &dir.path().join("discs"));
    let newest = set.discs.last().unwrap();

    // The query of README.TXT, run as printed: the parts in order, on
    // non-decreasing discs, where and as the catalogue says.
    let rows = readme_parts_query(newest);
    assert_eq!(rows.len() as u64, n, "{rows:?}");
    let id = rows[0].id;
    for (k, row) in rows.iter().enumerate() {
        assert_eq!((row.id, row.part), (id, k as i64 + 1), "{rows:?}");
        assert_eq!(
            row.path,
            dbackup::disc::part_path(id, row.part as u32)
                .to_string_lossy()
                .into_owned()
        );
        assert!(k == 0 || rows[k - 1].disc <= row.disc, "{rows:?}");
        assert_eq!(row.whole_md5, set.source_md5);
        assert!((row.mtime - MTIME).abs() < 1e-6, "{}", row.mtime);
    }
    let total: u64 = rows.iter().map(|r| r.size).sum();
    assert_eq!(
        total,
        std::fs::metadata(set.env.watched.join(BIG)).unwrap().len()
    );

    // Every image: bsdtar and 7z list every part it holds, 7z extracts it
    // without error and with the same bytes; md5sum -c passes on each disc.
    for (k, (iso, disc)) in set.isos.iter().zip(&set.discs).enumerate() {
        let number = k as i64 + 1;
        let (bsdtar, seven) = listings(iso);
        let here: Vec<&PartLine> = rows.iter().filter(|r| r.disc == number).collect();
        for row in &here {
            assert!(
                bsdtar.contains(&row.path),
                "bsdtar, disc {number}: {bsdtar:?}"
            );
            assert!(seven.contains(&row.path), "7z, disc {number}: {seven:?}");
        }
        let out7 = dir.path().join(format!("7z-{number}"));
        let out = Command::new("7z")
            .arg("x")
            .arg("-y")
            .arg(format!("-o{}", out7.display()))
            .arg(iso)
            .output()
            .unwrap();
        assert!(out.status.success(), "7z x: {}", text(&out.stdout));
        for row in &here {
            assert_eq!(md5sum(&out7.join(&row.path)), row.part_md5, "7z");
        }
        std::fs::remove_dir_all(&out7).unwrap();
        let out = Command::new("md5sum")
            .args(["-c", "--quiet", "MD5SUMS"])
            .current_dir(disc)
            .output()
            .unwrap();
        assert!(out.status.success(), "disc {number}: {}", text(&out.stdout));
        let sums = std::fs::read_to_string(disc.join("MD5SUMS")).unwrap();
        for row in &here {
            let line = format!("{}  {}", row.part_md5, row.path);
            assert!(sums.lines().any(|l| l == line), "{line} in {sums}");
        }
    }

    // Each part, extracted by bsdtar, has its MD5; cat of the parts in the
    // query's order is the file.
    let mut cat = Command::new("cat");
    for row in &rows {
        let part = set.discs[row.disc as usize - 1].join(&row.path);
        assert_eq!(md5sum(&part), row.part_md5, "part {}", row.part);
        cat.arg(part);
    }
    let joined = dir.path().join("joined");
    let out = cat
        .stdout(std::fs::File::create(&joined).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(md5sum(&joined), set.source_md5);
    std::fs::remove_file(&joined).unwrap();

    // RECOVER.PY on every disc: the file back, byte for byte, with its mtime.
    let script = newest.join("RECOVER.PY");
    let all: Vec<&Path> = set.discs.iter().map(|d| d.as_path()).collect();
    let target = dir.path().join("recovered");
    let out = recover(&script, &target, &all);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(md5_file(&target.join(BIG)), set.source_md5);
    assert_eq!(
        mtime_ns(&target.join(BIG)),
        mtime_ns(&set.env.watched.join(BIG))
    );
    assert_eq!(
        entries(&target),
        [
            "a.txt",
            "photos",
            "photos/b.jpg",
            "video",
            BIG,
            "zz",
            "zz/last.txt"
        ]
    );

    // With the disc of one part left out (the first, one in the middle, the
    // last): listed as not recovered, exit 1, nothing under its name.
    let mut left_out = vec![
        rows[0].disc,
        rows[rows.len() / 2].disc,
        rows[rows.len() - 1].disc,
    ];
    left_out.dedup();
    for gone in left_out {
        let some: Vec<&Path> = set
            .discs
            .iter()
            .enumerate()
            .filter(|(k, _)| *k as i64 + 1 != gone)
            .map(|(_, d)| d.as_path())
            .collect();
        let target = dir.path().join(format!("without-{gone}"));
        let script = some.last().unwrap().join("RECOVER.PY");
        let out = recover(&script, &target, &some);
        let report = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "without disc {gone}: {report}");
        let last = set.discs.len() as i64;
        let why = if gone == last {
            // The newest catalogue given was frozen before the last part.
            "a newer version (id ".to_string()
        } else {
            let k = rows.iter().position(|r| r.disc == gone).unwrap() + 1;
            format!("split in {n} parts; not given: part {k} on disc {gone}")
        };
        assert!(
            report.contains(&format!("{BIG}: {why}")),
            "without disc {gone}: {report}"
        );
        assert!(!target.join(BIG).exists(), "without disc {gone}");
        assert!(
            !entries(&target).iter().any(|e| e.contains("Holiday")),
            "without disc {gone}: {:?}",
            entries(&target)
        );
    }
}

#[test]
fn a_file_in_3_parts_is_recovered_by_a_stranger() {
    check_split_set(3);
}

#[test]
fn a_file_in_6_parts_is_recovered_by_a_stranger() {
    check_split_set(6);
}

#[test]
fn a_file_in_20_parts_is_recovered_by_a_stranger() {
    check_split_set(20);
}
