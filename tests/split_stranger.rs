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
