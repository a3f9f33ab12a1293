//! Properties of staging, generated with proptest against the real binaries:
//! change detection by size and mtime at every precision (ours and adopted
//! rows), disc sizes close to the sizes of files and of a growing catalogue,
//! and hostile names in the watched folder restored back exactly.
//! `PROPTEST_CASES=200 cargo test --features failpoints --test prop_stage`
//! runs more cases than the default.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::test_runner::Config;

use common::*;

fn config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        max_shrink_iters: 32,
        ..Config::default()
    }
}

fn set_mtime(p: &Path, secs: u64, nanos: u32) {
    std::fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::new(secs, nanos))
        .unwrap();
}

/// dbackup-stage under a time limit: a loop fails the case, never hangs it.
fn stage(env: &TestEnv, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("120")
        .arg(bin("dbackup-stage"))
        .arg("-w")
        .arg(&env.workdir)
        .arg("--no-progress")
        .args(args)
        .env_remove("FAILPOINTS")
        .env_remove("DBACKUP_WORKDIR")
        .output()
        .unwrap()
}

/// Names of the rows recorded after id `after`, and the highest id.
fn staged_since(env: &TestEnv, after: i64) -> (BTreeSet<String>, i64) {
    let conn = env.catalog();
    let mut stmt = conn
        .prepare("SELECT id, filename FROM files WHERE copied=1 AND id > ?1")
        .unwrap();
    let mut names = BTreeSet::new();
    let mut max = after;
    for row in stmt
        .query_map([after], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .unwrap()
    {
        let (id, name) = row.unwrap();
        max = max.max(id);
        names.insert(name);
    }
    (names, max)
}

const T: u64 = 1_700_000_000;

/// One edit of one file: keep it, or give it content of the same or another
/// size and an mtime of a whole second or not. Sub-second parts are whole
/// microseconds: the catalogue's REAL resolves about 0.24 µs near T.
#[derive(Debug, Clone)]
enum Edit {
    Keep,
    Touch {
        same_size: bool,
        second: u64,
        micros: u32,
    },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => Just(Edit::Keep),
        4 => (any::<bool>(), 0u64..3, prop_oneof![Just(0u32), Just(500_000), 1u32..1_000_000])
            .prop_map(|(same_size, second, micros)| Edit::Touch { same_size, second, micros }),
    ]
}

/// What the scan compares: size, and the mtime under the row's rule.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Recorded {
    size: u64,
    secs: u64,
    nanos: u32,
    whole: bool,
}

impl Recorded {
    fn same(&self, size: u64, secs: u64, nanos: u32) -> bool {
        self.size == size && self.secs == secs && (self.whole || self.nanos == nanos)
    }
}

proptest! {
    #![proptest_config(config(12))]

    /// Every real change is staged and nothing unchanged is staged again,
    /// across whole-second and sub-second mtimes and same-size edits within
    /// one second; for adopted rows (integer mtimes, the original's rule)
    /// only another size or another whole second is a change.
    #[test]
    fn every_real_change_is_staged_and_nothing_else(
        start in prop::collection::vec((0u64..3, prop_oneof![Just(0u32), 1u32..1_000_000]), 1..5),
        adopted in any::<bool>(),
        rounds in prop::collection::vec(prop::collection::vec(edit(), 5), 1..5),
    ) {
        let env = TestEnv::new();
        let mut sizes = Vec::new();
        let mut gen = 0u8;
        for (i, &(second, micros)) in start.iter().enumerate() {
            let p = env.write(format!("f{i}"), &vec![gen; 10 + i]);
            set_mtime(&p, T + second, micros * 1000);
            sizes.push(10 + i);
        }
        env.init(&[]);
        let out = stage(&env, &["monitor", "--no-iso"]);
        prop_assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let (_, mut last_id) = staged_since(&env, 0);
        let mut rec: Vec<Recorded> = start
            .iter()
            .enumerate()
            .map(|(i, &(second, micros))| Recorded {
                size: sizes[i] as u64,
                secs: T + second,
                nanos: micros * 1000,
                whole: false,
            })
            .collect();
        if adopted {
            // As `adopt` leaves an original catalogue: integer mtimes, and
            // the highest adopted id recorded.
            let conn = env.catalog();
            conn.execute("UPDATE files SET mtime = CAST(mtime AS INTEGER)", []).unwrap();
            conn.execute(
                "INSERT INTO settings(key, value) VALUES ('whole_second_mtimes_through', ?1)",
                [last_id],
            )
            .unwrap();
            for r in &mut rec {
                r.whole = true;
            }
        }
        for round in rounds {
            gen = gen.wrapping_add(1);
            let mut expect = BTreeSet::new();
            for (i, e) in round.iter().enumerate().take(start.len()) {
                let Edit::Touch { same_size, second, micros } = *e else { continue };
                let p = env.watched.join(format!("f{i}"));
                if !same_size {
                    sizes[i] += 1;
                }
                std::fs::write(&p, vec![gen; sizes[i]]).unwrap();
                let (secs, nanos) = (T + second, micros * 1000);
                set_mtime(&p, secs, nanos);
                if !rec[i].same(sizes[i] as u64, secs, nanos) {
                    expect.insert(format!("/f{i}"));
                    rec[i] = Recorded { size: sizes[i] as u64, secs, nanos, whole: false };
                }
            }
            let out = stage(&env, &["monitor", "--no-iso"]);
            prop_assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            let (got, max) = staged_since(&env, last_id);
            prop_assert_eq!(&got, &expect, "adopted={}", adopted);
            last_id = max;
        }
        // A last run with nothing touched stages nothing.
        let out = stage(&env, &["monitor", "--no-iso"]);
        prop_assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    }
}

/// Sectors and structures of a file on a disc, as the image stores them.
fn sectors(size: u64) -> u64 {
    size.div_ceil(2048) * 2048
}

proptest! {
    #![proptest_config(config(10))]

    /// Disc sizes close to the files' and the growing catalogue's (long
    /// names make it grow): the run ends, every disc it closes holds a file
    /// and stays within the disc size with its frozen catalogue, every file
    /// is either staged (whole, or split when larger than a disc) or
    /// reported too big (no room for even a part) exactly once per run, and a
    /// file that fits an empty disc even with the largest catalogue of the
    /// run is staged.
    #[test]
    fn discs_close_only_for_files_that_fit_and_the_run_ends(
        disc_size in 507_200u64..707_200,
        files in prop::collection::vec((0.0f64..1.1, 100usize..=250), 1..40),
        small in 0usize..150,
    ) {
        let env = TestEnv::new();
        // Room on an empty disc of a new set: the image's structures and
        // padding (428 KiB) and a catalogue of about 40 KiB.
        let room = disc_size - dbackup::disc::FIXED_OVERHEAD - (40 << 10);
        let mut sizes = BTreeMap::new();
        for (i, &(share, name_len)) in files.iter().enumerate() {
            let name = format!("{i:03}{}", "n".repeat(name_len - 3));
            let size = (room as f64 * share) as u64;
            env.write(&name, &vec![i as u8; size as usize]);
            sizes.insert(format!("/{name}"), size);
        }
        for i in 0..small {
            let name = format!("s{i:03}{}", "m".repeat(240));
            env.write(&name, b"s");
            sizes.insert(format!("/{name}"), 1);
        }
        env.init(&["--disc-size", &disc_size.to_string()]);
        for run in 0..2 {
            let out = stage(&env, &["monitor", "--no-iso", "--json"]);
            let code = out.status.code();
            prop_assert!(code == Some(0) || code == Some(1), "run {}: {:?} {}", run, code, text(&out.stderr));
            let stderr = text(&out.stderr);
            let mut too_big = BTreeMap::new();
            for line in stderr.lines() {
                let Some(rest) = line.strip_prefix("dbackup-stage: ") else { continue };
                if let Some((path, _)) = rest.split_once(": skipped: too big for any disc") {
                    let name = path.strip_prefix(env.watched.to_str().unwrap()).unwrap().to_string();
                    *too_big.entry(name).or_insert(0) += 1;
                } else {
                    prop_assert!(false, "unexpected message: {}", line);
                }
            }
            prop_assert!(too_big.values().all(|&n| n == 1), "reported more than once: {:?}", too_big);
            let conn = env.catalog();
            let staged: BTreeSet<String> = conn
                .prepare("SELECT filename FROM files WHERE copied=1").unwrap()
                .query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
            for name in sizes.keys() {
                prop_assert!(
                    staged.contains(name) != too_big.contains_key(name),
                    "run {}: {} staged={} too_big={}", run, name, staged.contains(name), too_big.contains_key(name)
                );
            }
            // A file that fits an empty disc with the largest catalogue of
            // the run (with room for its own row) is never called too big.
            let db: i64 = conn
                .query_row("SELECT page_count * page_size FROM pragma_page_count, pragma_page_size", [], |r| r.get(0))
                .unwrap();
            for name in too_big.keys() {
                // Sectors, structures, the row (its name four times over, for
                // half-full B-tree pages), four pages of slack for the
                // catalogue's growth in whole pages and its frozen copy,
                // one for the close.
                let cost = sectors(sizes[name]) + 512 + 4 * name.len() as u64 + 256;
                prop_assert!(
                    cost + dbackup::disc::FIXED_OVERHEAD + db as u64 + 5 * 4096 > disc_size,
                    "{} ({} bytes) would fit an empty disc", name, sizes[name]
                );
            }
            // Closed discs: each holds a file, and fits with its catalogue.
            let closed: Vec<i64> = conn
                .prepare("SELECT id FROM discs WHERE completed IS NOT NULL").unwrap()
                .query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
            // A split file's parts (a file too large for an empty disc) each
            // take a disc of their own.
            let split = has_split_tables(&conn);
            let parts: i64 = if split {
                conn.query_row("SELECT count(*) FROM parts WHERE copied=1", [], |r| r.get(0)).unwrap()
            } else {
                0
            };
            prop_assert!(closed.len() as i64 <= staged.len() as i64 + parts, "{} discs for {} files and {} parts", closed.len(), staged.len(), parts);
            for d in &closed {
                let (n, bytes): (i64, i64) = conn
                    .query_row(
                        if split {
                            "SELECT count(*), coalesce(sum((size + 2047) / 2048 * 2048), 0) FROM
                             (SELECT size FROM files WHERE copied=1 AND disc_id=?1
                              UNION ALL SELECT size FROM parts WHERE copied=1 AND disc_id=?1)"
                        } else {
                            "SELECT count(*), coalesce(sum((size + 2047) / 2048 * 2048), 0) FROM files WHERE copied=1 AND disc_id=?1"
                        },
                        [d], |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .unwrap();
                prop_assert!(n > 0, "disc {} closed empty", d);
                let frozen = std::fs::metadata(env.workdir.join(format!("staging/disc-{d:04}/manifest.db"))).unwrap().len();
                prop_assert!(
                    bytes as u64 + frozen + dbackup::disc::FIXED_OVERHEAD <= disc_size,
                    "disc {}: {} in files and a catalogue of {} exceed {}", d, bytes, frozen, disc_size
                );
            }
            if run == 1 {
                prop_assert!(out.stdout.is_empty() || {
                    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                    v["staged_files"] == 0 && v["closed_discs"].as_array().unwrap().is_empty()
                }, "{}", text(&out.stdout));
            }
        }
        // The images of the closed discs, padding and all, fit the disc
        // size their usage was kept under.
        let out = env.mkiso(&[]);
        prop_assert!(out.status.code() == Some(0), "mkiso: {}", text(&out.stderr));
        for entry in std::fs::read_dir(env.workdir.join("isos")).unwrap() {
            let path = entry.unwrap().path();
            let size = std::fs::metadata(&path).unwrap().len();
            prop_assert!(size <= disc_size, "{}: {} bytes for a disc of {}", path.display(), size, disc_size);
        }
        env.check_invariants();
    }
}

/// Names that equal or resemble staging's and the tools' own names, or that
/// are hostile to printing and to path handling.
fn hostile_name() -> impl Strategy<Value = Vec<u8>> {
    let fixed: Vec<Vec<u8>> = [
        &b"1.partial"[..],
        b"2",
        b"manifest.db",
        b"manifest.db.partial",
        b"manifest.db.tmp",
        b"manifest.db-wal",
        b"manifest.db-journal",
        b"lock",
        b"files",
        b"staging",
        b"disc-0001",
        b".freeing-1",
        b".dbackup-restore-1.tmp",
        b".dbackup-tmp-x",
        b"README.TXT",
        b"MD5SUMS",
        b"a\nb",
        b"\x1b[31mred",
        b"tab\there",
        b"caf\xe9",
        b"\xff\xfe",
        b" lead and trail ",
        b"-n",
        b"back\\slash",
        b"*?[",
    ]
    .iter()
    .map(|b| b.to_vec())
    .collect();
    prop_oneof![
        3 => prop::sample::select(fixed),
        1 => (1usize..=255).prop_map(|n| vec![b'L'; n]),
        1 => prop::collection::vec(1u8..=255, 1..40).prop_map(|mut v| {
            v.retain(|&b| b != b'/');
            if v.is_empty() || v == b"." || v == b".." {
                v = b"x".to_vec();
            }
            v
        }),
    ]
}

proptest! {
    #![proptest_config(config(6))]

    /// Hostile names in the watched folder, at the top and in a folder that
    /// has one too: staged, imaged and restored back byte for byte.
    #[test]
    fn hostile_names_are_staged_and_restored_exactly(
        names in prop::collection::btree_set(hostile_name(), 1..8),
        nested in any::<bool>(),
    ) {
        let env = TestEnv::new();
        for (i, name) in names.iter().enumerate() {
            let mut rel = std::path::PathBuf::new();
            if nested {
                rel.push(OsStr::from_bytes(names.iter().next().unwrap()));
                rel.push("in");
            }
            rel.push(OsStr::from_bytes(name));
            env.write(&rel, format!("content {i}").as_bytes());
            if name.len() == 255 {
                // Also a 255-byte name one level down.
                env.write(Path::new("deep").join(OsStr::from_bytes(name)), b"deep");
            }
        }
        env.init(&["--disc-size", "10M"]);
        let out = stage(&env, &["monitor", "--no-iso"]);
        prop_assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let out = stage(&env, &["close"]);
        prop_assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let target = env.dir.path().join("restored");
        let out = Command::new("timeout")
            .arg("120")
            .arg(bin("dbackup-restore"))
            .arg("-d")
            .arg(env.workdir.join("isos"))
            .arg("--to")
            .arg(&target)
            .args(["--no-progress", "-q"])
            .output()
            .unwrap();
        prop_assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        prop_assert_eq!(tree_md5s(&target), tree_md5s(&env.watched));
        // Nothing of the tools' own is left in the target.
        prop_assert_eq!(tree_md5s(&target).len(), tree_md5s(&env.watched).len());
        let out = stage(&env, &["monitor", "--no-iso"]);
        prop_assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    }
}

/// A case the property above found: on a disc of 515,232 bytes, small files
/// with long names waited for the next disc, were judged too big against
/// the catalogue the close was expected to leave (a page larger than it
/// did), and were reported too big, though the next run staged one. Those
/// judged too big by the estimate are judged again after the close, so one
/// run stages all that fits and the next has nothing to do.
#[test]
fn files_set_aside_before_a_close_are_judged_again_after_it() {
    let env = TestEnv::new();
    let disc_size = 515_232u64;
    let room = disc_size - dbackup::disc::FIXED_OVERHEAD - (40 << 10);
    for (i, (share, name_len)) in [(0.0944, 232), (0.0359, 103), (0.8337, 101)]
        .into_iter()
        .enumerate()
    {
        let name = format!("{i:03}{}", "n".repeat(name_len - 3));
        env.write(&name, &vec![i as u8; (room as f64 * share) as usize]);
    }
    for i in 0..102 {
        env.write(format!("s{i:03}{}", "m".repeat(240)), b"s");
    }
    env.init(&["--disc-size", &disc_size.to_string()]);
    let first = stage(&env, &["monitor", "--no-iso", "--json"]);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));
    let staged = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("SELECT count(*) FROM files WHERE copied=1", [], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let after_first = staged(&env.catalog());
    // The two smallest of the large files and at least one small file.
    assert!(after_first >= 3, "{after_first} staged");
    let second = stage(&env, &["monitor", "--no-iso", "--json"]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second.stderr));
    assert_eq!(
        staged(&env.catalog()),
        after_first,
        "the second run staged more"
    );
    env.check_invariants();
}
