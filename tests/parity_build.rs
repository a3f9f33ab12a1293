//! Parity discs as the workdir builds them, checked from the outside: the
//! real binaries on real temp trees, each parity image read by independent
//! readers (bsdtar, isoinfo, md5sum), and every lost disc rebuilt the way a
//! stranger would, with stock `par2 repair` in a scratch folder. The data
//! are pseudo-random bytes from a seeded generator, so no two discs share a
//! block and par2 cannot find a lost block's bytes elsewhere.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Bytes per disc: one file of [`FULL`] bytes fills a disc, two do not fit.
const DISC: &str = "1307200";
const FULL: usize = 600_000;

/// SplitMix64: a small seeded generator of bytes that do not repeat.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// Writes `f<first>`.. `f<first+count-1>` of `size` random bytes each.
fn random_files(env: &TestEnv, first: usize, count: usize, size: usize) {
    for i in first..first + count {
        let mut rng = Rng(0x5eed_0000 + i as u64);
        env.write(format!("f{i:02}"), &rng.bytes(size));
    }
}

fn stage_ok(env: &TestEnv, args: &[&str]) -> Output {
    let out = env.run(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "dbackup-stage {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// A set under `scheme` with `files` full files staged by one `monitor`:
/// discs 1..files-1 closed, with their images (and parity where a group
/// is full), the last file on the open disc.
fn full_set(scheme: &str, files: usize) -> TestEnv {
    let env = TestEnv::new();
    random_files(&env, 0, files, FULL);
    env.init(&["--disc-size", DISC, "--parity", scheme]);
    stage_ok(&env, &["monitor"]);
    env
}

fn isos(env: &TestEnv) -> PathBuf {
    env.workdir.join("isos")
}

fn data_image(env: &TestEnv, n: i64) -> PathBuf {
    isos(env).join(format!("disc-{n}.iso"))
}

fn parity_image(env: &TestEnv, g: i64, j: i64) -> PathBuf {
    isos(env).join(format!("parity-{g}-{j}.iso"))
}

/// The names in `isos/`, sorted.
fn iso_names(workdir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workdir.join("isos"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn parity_isos(workdir: &Path) -> Vec<String> {
    iso_names(workdir)
        .into_iter()
        .filter(|n| n.starts_with("parity-") && n.ends_with(".iso"))
        .collect()
}

fn rows<T: rusqlite::types::FromSql>(conn: &rusqlite::Connection, sql: &str) -> Vec<Vec<T>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// `(id, k, m, first_disc, last_disc, state)` of every group.
type GroupRow = (i64, i64, i64, i64, Option<i64>, String);

fn groups(workdir: &Path) -> Vec<GroupRow> {
    let conn = rusqlite::Connection::open(workdir.join("manifest.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, k, m, first_disc, last_disc, state FROM parity_groups ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

/// `(group, j)` of every parity disc recorded.
fn parity_discs(workdir: &Path) -> Vec<(i64, i64)> {
    let conn = rusqlite::Connection::open(workdir.join("manifest.db")).unwrap();
    rows::<i64>(&conn, "SELECT group_id, j FROM parity_discs ORDER BY 1, 2")
        .into_iter()
        .map(|r| (r[0], r[1]))
        .collect()
}

/// The data discs of every group: group -> discs.
fn members(workdir: &Path) -> BTreeMap<i64, Vec<i64>> {
    let conn = rusqlite::Connection::open(workdir.join("manifest.db")).unwrap();
    let mut out: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for r in rows::<i64>(
        &conn,
        "SELECT group_id, disc_id FROM parity_members ORDER BY 1, 2",
    ) {
        out.entry(r[0]).or_default().push(r[1]);
    }
    out
}

/// The data discs README.TXT says it protects: `(disc, sectors, md5)`.
fn readme_members(readme: &str) -> Vec<(i64, u64, String)> {
    readme
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                ["disc", n, sectors, "sectors", _, "bytes)", "MD5", md5] => {
                    Some((n.parse().ok()?, sectors.parse().ok()?, md5.to_string()))
                }
                _ => None,
            }
        })
        .collect()
}

fn extract(iso: &Path, dest: &Path) -> PathBuf {
    std::fs::create_dir_all(dest).unwrap();
    bsdtar_extract(iso, dest);
    dest.to_path_buf()
}

/// The names bsdtar lists in an image (without `.`), sorted.
fn listing(iso: &Path) -> Vec<String> {
    let out = Command::new("bsdtar").arg("-tf").arg(iso).output().unwrap();
    assert!(out.status.success(), "bsdtar -tf: {}", text(&out.stderr));
    let mut names: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string())
        .filter(|l| !l.is_empty() && l != ".")
        .collect();
    names.sort();
    names
}

/// A stranger's rebuild: the `survivors` images copied into a fresh
/// `scratch` folder as disc-N.iso, the .par2 files of the parity images
/// given beside them, then `par2 repair parity-G.par2` there.
fn stranger_repair(
    env: &TestEnv,
    scratch: &Path,
    g: i64,
    survivors: &[i64],
    parity: &[i64],
) -> Output {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).unwrap();
    for &n in survivors {
        std::fs::copy(data_image(env, n), scratch.join(format!("disc-{n}.iso"))).unwrap();
    }
    for &j in parity {
        let disc = extract(
            &parity_image(env, g, j),
            &scratch.with_extension(format!("parity-{j}")),
        );
        for e in std::fs::read_dir(&disc).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().ends_with(".par2") {
                std::fs::copy(e.path(), scratch.join(e.file_name())).unwrap();
            }
        }
        std::fs::remove_dir_all(&disc).unwrap();
    }
    Command::new("par2")
        .args(["repair", &format!("parity-{g}.par2")])
        .current_dir(scratch)
        .stdin(Stdio::null())
        .output()
        .expect("par2 is installed")
}

/// Every recorded parity image of `workdir`, extracted beside its data
/// images, passes stock `par2 verify`.
fn par2_verify_all(workdir: &Path, scratch: &Path) {
    let by_group = members(workdir);
    for (g, j) in parity_discs(workdir) {
        let dir = scratch.join(format!("verify-{g}-{j}"));
        let _ = std::fs::remove_dir_all(&dir);
        extract(
            &workdir.join("isos").join(format!("parity-{g}-{j}.iso")),
            &dir,
        );
        for d in &by_group[&g] {
            let name = format!("disc-{d}.iso");
            std::fs::hard_link(workdir.join("isos").join(&name), dir.join(&name)).unwrap();
        }
        let out = Command::new("par2")
            .args(["verify", &format!("parity-{g}.par2")])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "par2 verify of parity disc {g}-{j}: {}",
            text(&out.stdout)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn nine_discs_under_4_plus_1_get_two_parity_discs_and_the_ninth_waits() {
    let env = full_set("4+1", 10);
    let names = iso_names(&env.workdir);
    assert_eq!(
        parity_isos(&env.workdir),
        ["parity-1-1.iso", "parity-2-1.iso"],
        "{names:?}"
    );
    for n in 1..=9 {
        assert!(data_image(&env, n).is_file(), "disc {n}: {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.starts_with("parity-3")),
        "{names:?}"
    );

    // The catalogue: groups 1 and 2 complete with discs 1-4 and 5-8, group
    // 3 open with disc 9, two parity discs recorded.
    assert_eq!(
        groups(&env.workdir),
        vec![
            (1, 4, 1, 1, Some(4), "complete".to_string()),
            (2, 4, 1, 5, Some(8), "complete".to_string()),
            (3, 4, 1, 9, None, "open".to_string()),
        ]
    );
    let by_group = members(&env.workdir);
    assert_eq!(by_group[&1], [1, 2, 3, 4]);
    assert_eq!(by_group[&2], [5, 6, 7, 8]);
    assert_eq!(by_group[&3], [9]);
    assert_eq!(parity_discs(&env.workdir), [(1, 1), (2, 1)]);
    let conn = env.catalog();
    let uuid: String = conn
        .query_row("SELECT value FROM settings WHERE key='uuid'", [], |r| {
            r.get(0)
        })
        .unwrap();
    // Each member's recorded size and MD5 are its image's; disc 9's wait.
    for r in rows::<rusqlite::types::Value>(
        &conn,
        "SELECT disc_id, size, md5 FROM parity_members ORDER BY disc_id",
    ) {
        use rusqlite::types::Value;
        let Value::Integer(d) = r[0] else { panic!() };
        if d == 9 {
            assert_eq!(r[1], Value::Null);
            assert_eq!(r[2], Value::Null);
            continue;
        }
        let image = data_image(&env, d);
        assert_eq!(
            r[1],
            Value::Integer(std::fs::metadata(&image).unwrap().len() as i64)
        );
        assert_eq!(r[2], Value::Text(md5_file(&image)));
    }
    let sizes = rows::<i64>(&conn, "SELECT group_id, j, size FROM parity_discs");
    for r in sizes {
        assert_eq!(
            r[2] as u64,
            std::fs::metadata(parity_image(&env, r[0], r[1]))
                .unwrap()
                .len()
        );
    }

    for g in [1, 2] {
        let iso = parity_image(&env, g, 1);
        let list = listing(&iso);
        let vols: Vec<&String> = list
            .iter()
            .filter(|n| n.starts_with(&format!("parity-{g}.vol")) && n.ends_with(".par2"))
            .collect();
        assert!(!vols.is_empty(), "no recovery file: {list:?}");
        let mut expected: Vec<String> = ["MD5SUMS", "README.TXT", "manifest.db"]
            .iter()
            .map(|s| s.to_string())
            .chain([format!("parity-{g}.par2")])
            .chain(vols.iter().map(|s| s.to_string()))
            .collect();
        expected.sort();
        assert_eq!(list, expected, "parity disc {g}-1 holds exactly these");

        let dir = extract(&iso, &env.dir.path().join(format!("p{g}")));
        let out = Command::new("md5sum")
            .args(["-c", "--strict", "MD5SUMS"])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "md5sum -c: {}", text(&out.stdout));
        let sums = std::fs::read_to_string(dir.join("MD5SUMS")).unwrap();
        for name in list.iter().filter(|n| *n != "MD5SUMS") {
            assert!(
                sums.lines().any(|l| l.ends_with(&format!("  {name}"))),
                "MD5SUMS does not cover {name}: {sums}"
            );
        }

        let readme = std::fs::read_to_string(dir.join("README.TXT")).unwrap();
        assert!(readme.contains(&uuid), "README lacks the set's UUID");
        let listed = readme_members(&readme);
        let discs: Vec<i64> = listed.iter().map(|m| m.0).collect();
        assert_eq!(discs, by_group[&g], "README: {readme}");
        for (d, sectors, md5) in listed {
            let image = data_image(&env, d);
            assert_eq!(md5, md5_file(&image), "README's MD5 of disc {d}");
            assert_eq!(
                sectors * 2048,
                std::fs::metadata(&image).unwrap().len(),
                "README's sectors of disc {d}"
            );
        }

        let out = Command::new("isoinfo")
            .args(["-d", "-i"])
            .arg(&iso)
            .output()
            .expect("isoinfo is installed");
        assert!(out.status.success(), "isoinfo: {}", text(&out.stderr));
        let info = text(&out.stdout);
        let want = format!("Volume id: DBACKUP_P{g:04}_1");
        assert!(
            info.lines().any(|l| l.trim() == want),
            "isoinfo says: {info}"
        );
    }
}

/// docs/parity.md: until its group's parity is built, a disc is
/// unprotected "and `status` says so".
#[test]
fn status_names_the_discs_that_wait_for_parity() {
    let env = full_set("4+1", 6);
    assert_eq!(members(&env.workdir)[&2], [5]);
    for json in [true, false] {
        let args: &[&str] = if json {
            &["status", "--json"]
        } else {
            &["status"]
        };
        let out = stage_ok(&env, args);
        let said = text(&out.stdout).to_lowercase();
        assert!(
            said.contains("unprotected") || said.contains("parity"),
            "dbackup-stage {args:?} says nothing of disc 5 waiting for parity: {said}"
        );
    }
}

#[test]
fn every_data_disc_of_a_group_is_rebuilt_byte_identical_by_a_stranger() {
    let env = full_set("4+1", 5);
    assert_eq!(parity_discs(&env.workdir), [(1, 1)]);
    let group = [1, 2, 3, 4];
    for lost in group {
        let survivors: Vec<i64> = group.iter().copied().filter(|&d| d != lost).collect();
        let scratch = env.dir.path().join(format!("rebuild-{lost}"));
        let out = stranger_repair(&env, &scratch, 1, &survivors, &[1]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "par2 repair without disc {lost}: {}",
            text(&out.stdout)
        );
        assert_eq!(
            md5_file(&scratch.join(format!("disc-{lost}.iso"))),
            md5_file(&data_image(&env, lost)),
            "disc {lost} rebuilt byte-identical"
        );
        std::fs::remove_dir_all(&scratch).unwrap();
    }
}

#[test]
fn any_two_discs_of_a_3_plus_2_group_can_be_lost() {
    let env = full_set("3+2", 4);
    assert_eq!(parity_discs(&env.workdir), [(1, 1), (1, 2)]);
    assert_eq!(
        parity_isos(&env.workdir),
        ["parity-1-1.iso", "parity-1-2.iso"]
    );
    // The five discs of the group: data 1-3, parity 1-1 (-1) and 1-2 (-2).
    let all = [1, 2, 3, -1, -2];
    let mut tried = 0;
    for (i, &a) in all.iter().enumerate() {
        for &b in &all[i + 1..] {
            let lost = [a, b];
            let data: Vec<i64> = [1, 2, 3]
                .into_iter()
                .filter(|d| !lost.contains(d))
                .collect();
            let parity: Vec<i64> = [1, 2].into_iter().filter(|j| !lost.contains(&-j)).collect();
            if parity.is_empty() {
                // Both parity discs lost: every data disc is there.
                continue;
            }
            let scratch = env.dir.path().join(format!("rebuild-{a}-{b}"));
            let out = stranger_repair(&env, &scratch, 1, &data, &parity);
            assert_eq!(
                out.status.code(),
                Some(0),
                "par2 repair without {lost:?}: {}",
                text(&out.stdout)
            );
            for d in [1, 2, 3] {
                assert_eq!(
                    md5_file(&scratch.join(format!("disc-{d}.iso"))),
                    md5_file(&data_image(&env, d)),
                    "disc {d} after losing {lost:?}"
                );
            }
            std::fs::remove_dir_all(&scratch).unwrap();
            tried += 1;
        }
    }
    assert_eq!(tried, 9);
}

#[test]
fn more_lost_than_parity_fails_and_writes_no_wrong_image() {
    let env = full_set("3+2", 4);
    assert_eq!(parity_discs(&env.workdir), [(1, 1), (1, 2)]);
    // All three data discs lost; or two, and a parity disc.
    for (survivors, parity) in [(vec![], vec![1, 2]), (vec![2], vec![1]), (vec![3], vec![2])] {
        let scratch = env
            .dir
            .path()
            .join(format!("rebuild-{survivors:?}-{parity:?}"));
        let out = stranger_repair(&env, &scratch, 1, &survivors, &parity);
        assert_ne!(
            out.status.code(),
            Some(0),
            "par2 repair with only {survivors:?} and parity {parity:?} succeeded: {}",
            text(&out.stdout)
        );
        assert!(
            text(&out.stdout).contains("Repair is not possible"),
            "{}",
            text(&out.stdout)
        );
        for d in [1, 2, 3] {
            let p = scratch.join(format!("disc-{d}.iso"));
            if survivors.contains(&d) {
                assert_eq!(md5_file(&p), md5_file(&data_image(&env, d)));
            } else {
                assert!(!p.exists(), "par2 wrote disc-{d}.iso it could not rebuild");
            }
        }
        let left: Vec<String> = std::fs::read_dir(&scratch)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| {
                !n.ends_with(".par2") && !survivors.iter().any(|d| *n == format!("disc-{d}.iso"))
            })
            .collect();
        assert!(left.is_empty(), "par2 left {left:?}");
    }
}

#[test]
fn members_of_different_sizes_are_rebuilt_byte_identical() {
    let env = TestEnv::new();
    env.init(&["--disc-size", DISC, "--parity", "3+1"]);
    // Disc 1 closed early with one small file; discs 2 and 3 full.
    random_files(&env, 0, 1, 40_000);
    stage_ok(&env, &["monitor"]);
    stage_ok(&env, &["close"]);
    random_files(&env, 1, 3, FULL);
    stage_ok(&env, &["monitor"]);
    assert_eq!(parity_discs(&env.workdir), [(1, 1)]);
    let sizes: Vec<u64> = (1..=3)
        .map(|d| std::fs::metadata(data_image(&env, d)).unwrap().len())
        .collect();
    assert!(
        sizes[0] * 2 < sizes[1],
        "disc 1 is the small one: {sizes:?}"
    );
    assert_eq!(sizes[1], sizes[2]);
    let dir = extract(&parity_image(&env, 1, 1), &env.dir.path().join("p"));
    let listed = readme_members(&std::fs::read_to_string(dir.join("README.TXT")).unwrap());
    let listed: Vec<(i64, u64)> = listed.iter().map(|m| (m.0, m.1 * 2048)).collect();
    assert_eq!(listed, vec![(1, sizes[0]), (2, sizes[1]), (3, sizes[2])]);
    for lost in 1..=3 {
        let survivors: Vec<i64> = (1..=3).filter(|&d| d != lost).collect();
        let scratch = env.dir.path().join(format!("rebuild-{lost}"));
        let out = stranger_repair(&env, &scratch, 1, &survivors, &[1]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
        assert_eq!(
            md5_file(&scratch.join(format!("disc-{lost}.iso"))),
            md5_file(&data_image(&env, lost)),
            "disc {lost} ({} bytes) rebuilt byte-identical",
            sizes[lost as usize - 1]
        );
    }
}

/// What `close --parity` may change: discs, groups, members, parity discs
/// and the images.
fn state(env: &TestEnv) -> String {
    let conn = env.catalog();
    let discs = rows::<rusqlite::types::Value>(
        &conn,
        "SELECT id, completed IS NOT NULL FROM discs ORDER BY id",
    );
    let members =
        rows::<rusqlite::types::Value>(&conn, "SELECT * FROM parity_members ORDER BY disc_id");
    let pd = rows::<rusqlite::types::Value>(&conn, "SELECT * FROM parity_discs ORDER BY 1, 2");
    format!(
        "discs {discs:?}\ngroups {:?}\nmembers {members:?}\nparity {pd:?}\nisos {:?}",
        groups(&env.workdir),
        iso_names(&env.workdir)
    )
}

#[test]
fn close_parity_ends_a_partial_group_once() {
    let env = TestEnv::new();
    env.init(&["--disc-size", DISC, "--parity", "4+1"]);
    random_files(&env, 0, 2, FULL);
    stage_ok(&env, &["monitor"]);
    assert!(parity_isos(&env.workdir).is_empty());
    stage_ok(&env, &["close", "--parity"]);
    assert_eq!(parity_isos(&env.workdir), ["parity-1-1.iso"]);
    assert_eq!(parity_discs(&env.workdir), [(1, 1)]);
    assert_eq!(
        groups(&env.workdir),
        vec![(1, 4, 1, 1, Some(2), "complete".to_string())]
    );
    let dir = extract(&parity_image(&env, 1, 1), &env.dir.path().join("p"));
    let readme = std::fs::read_to_string(dir.join("README.TXT")).unwrap();
    let listed: Vec<i64> = readme_members(&readme).iter().map(|m| m.0).collect();
    assert_eq!(listed, [1, 2], "{readme}");
    for lost in [1, 2] {
        let scratch = env.dir.path().join(format!("rebuild-{lost}"));
        let out = stranger_repair(&env, &scratch, 1, &[3 - lost], &[1]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
        assert_eq!(
            md5_file(&scratch.join(format!("disc-{lost}.iso"))),
            md5_file(&data_image(&env, lost))
        );
    }

    // Again, with nothing new: no disc closed, no group made.
    let before = state(&env);
    let out = env.run(&["close", "--parity"]);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    if out.status.code() != Some(0) {
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("nothing to close"), "{stderr}");
    }
    assert_eq!(state(&env), before, "close --parity with nothing new");

    // The next disc starts group 2.
    random_files(&env, 2, 1, FULL);
    stage_ok(&env, &["monitor"]);
    stage_ok(&env, &["close"]);
    assert_eq!(
        groups(&env.workdir),
        vec![
            (1, 4, 1, 1, Some(2), "complete".to_string()),
            (2, 4, 1, 3, None, "open".to_string()),
        ]
    );
    assert_eq!(members(&env.workdir)[&2], [3]);
    assert_eq!(parity_isos(&env.workdir), ["parity-1-1.iso"]);
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
}

#[test]
fn a_new_scheme_applies_to_the_next_group_only() {
    let env = TestEnv::new();
    env.init(&["--disc-size", DISC, "--parity", "4+1"]);
    random_files(&env, 0, 2, FULL);
    stage_ok(&env, &["monitor"]);
    assert_eq!(
        groups(&env.workdir),
        vec![(1, 4, 1, 1, None, "open".to_string())]
    );
    stage_ok(&env, &["config", "parity", "2+1"]);
    let out = stage_ok(&env, &["config", "parity"]);
    assert_eq!(text(&out.stdout).trim(), "2+1");
    // Discs 2-4 complete group 1 under 4+1; discs 5-6 make group 2 under 2+1.
    random_files(&env, 2, 5, FULL);
    stage_ok(&env, &["monitor"]);
    assert_eq!(
        groups(&env.workdir),
        vec![
            (1, 4, 1, 1, Some(4), "complete".to_string()),
            (2, 2, 1, 5, Some(6), "complete".to_string()),
        ]
    );
    let by_group = members(&env.workdir);
    assert_eq!(by_group[&1], [1, 2, 3, 4]);
    assert_eq!(by_group[&2], [5, 6]);
    assert_eq!(
        parity_isos(&env.workdir),
        ["parity-1-1.iso", "parity-2-1.iso"]
    );
    for (g, discs) in [(1, vec![1, 2, 3, 4]), (2, vec![5, 6])] {
        let dir = extract(
            &parity_image(&env, g, 1),
            &env.dir.path().join(format!("p{g}")),
        );
        let readme = std::fs::read_to_string(dir.join("README.TXT")).unwrap();
        let listed: Vec<i64> = readme_members(&readme).iter().map(|m| m.0).collect();
        assert_eq!(listed, discs);
    }
    par2_verify_all(&env.workdir, env.dir.path());
}

/// A PATH of one empty folder: no par2 (the binaries are run by path).
fn path_without_par2(env: &TestEnv) -> PathBuf {
    let bin = env.dir.path().join("no-par2-bin");
    std::fs::create_dir_all(&bin).unwrap();
    bin
}

/// A set of `groups` full 2+1 groups, a file of `size` bytes on each disc
/// of `disc` bytes, whose data images are built and read back but whose
/// parity waits: its first run found no par2.
fn waiting_for_par2(groups: i64, size: usize, disc: &str) -> TestEnv {
    let env = TestEnv::new();
    random_files(&env, 0, 2 * groups as usize + 1, size);
    env.init(&["--disc-size", disc, "--parity", "2+1"]);
    let out = env
        .stage()
        .arg("monitor")
        .env("PATH", path_without_par2(&env))
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("par2"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for d in 1..=2 * groups {
        assert!(data_image(&env, d).is_file(), "disc {d}");
    }
    assert!(parity_isos(&env.workdir).is_empty());
    assert!(parity_discs(&env.workdir).is_empty());
    let states: Vec<String> = self::groups(&env.workdir)
        .into_iter()
        .map(|g| g.5)
        .collect();
    assert_eq!(states, vec!["full"; groups as usize]);
    env
}

#[test]
fn without_par2_init_refuses_and_a_full_group_waits() {
    let env = TestEnv::new();
    let out = env
        .stage()
        .args(["init", env.watched.to_str().unwrap(), "--parity", "4+1"])
        .env("PATH", path_without_par2(&env))
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("par2") && stderr.contains("not installed"),
        "{stderr}"
    );
    assert!(!env.workdir.exists(), "init made a workdir without par2");

    // config parity refuses as well, and leaves the setting.
    env.init(&[]);
    let out = env
        .stage()
        .args(["config", "parity", "4+1"])
        .env("PATH", path_without_par2(&env))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("par2"), "{}", text(&out.stderr));
    let out = stage_ok(&env, &["config", "parity"]);
    assert_eq!(text(&out.stdout).trim(), "off");

    // A group that became full while par2 was away is built once it is back.
    let env = waiting_for_par2(3, FULL, DISC);
    stage_ok(&env, &["monitor"]);
    assert_eq!(parity_discs(&env.workdir), [(1, 1), (2, 1), (3, 1)]);
    par2_verify_all(&env.workdir, env.dir.path());
}

/// The end state of a set of `n` 2+1 groups whose parity was built,
/// however often its builds were killed.
fn assert_parity_complete(workdir: &Path, watched: &Path, scratch: &Path, n: i64, what: &str) {
    let all: Vec<(i64, i64)> = (1..=n).map(|g| (g, 1)).collect();
    assert_eq!(parity_discs(workdir), all, "{what}: parity discs recorded");
    let states: Vec<String> = groups(workdir).into_iter().map(|g| g.5).collect();
    assert_eq!(states, vec!["complete"; n as usize], "{what}");
    let names = iso_names(workdir);
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with(".partial") || n.ends_with(".work") || n.ends_with(".failed")),
        "{what}: leftovers in isos/: {names:?}"
    );
    let expected: BTreeSet<String> = (1..=2 * n)
        .map(|d| format!("disc-{d}.iso"))
        .chain((1..=n).map(|g| format!("parity-{g}-1.iso")))
        .collect();
    let got: BTreeSet<String> = names.into_iter().collect();
    assert_eq!(got, expected, "{what}: images");
    let conn = rusqlite::Connection::open(workdir.join("manifest.db")).unwrap();
    for r in rows::<i64>(&conn, "SELECT group_id, j, size FROM parity_discs") {
        let image = workdir.join(format!("isos/parity-{}-{}.iso", r[0], r[1]));
        assert_eq!(
            std::fs::metadata(&image).unwrap().len(),
            r[2] as u64,
            "{what}: the recorded size of {}",
            image.display()
        );
    }
    par2_verify_all(workdir, scratch);
    assert_eq!(check_workdir(workdir), tree_md5s(watched), "{what}");
}

#[test]
fn kills_while_parity_is_built_leave_exactly_the_right_parity_discs() {
    let env = waiting_for_par2(3, FULL, DISC);
    let template = env.workdir.clone();
    let scratch = env.dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let mut delay = Duration::from_millis(2);
    let mut episode = 0;
    let mut workdir: Option<PathBuf> = None;
    let mut ended_alone_in_a_row = 0;
    let mut killed = 0;
    // Bounded: 40 runs, fewer once the delay outlasts a whole build.
    for run in 0..40 {
        let wd = workdir.get_or_insert_with(|| {
            episode += 1;
            let wd = env.dir.path().join(format!("work-{episode}"));
            let st = Command::new("cp")
                .arg("-a")
                .arg(&template)
                .arg(&wd)
                .status()
                .unwrap();
            assert!(st.success());
            wd
        });
        let mut child = Command::new(bin("dbackup-stage"))
            .arg("-w")
            .arg(&*wd)
            .args(["--no-progress", "monitor"])
            .env_remove("DBACKUP_WORKDIR")
            .env_remove("FAILPOINTS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let start = Instant::now();
        let mut ended = None;
        while start.elapsed() < delay {
            if let Some(st) = child.try_wait().unwrap() {
                ended = Some(st);
                break;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        let what = format!("run {run} (episode {episode}, kill after {delay:?})");
        match ended {
            Some(st) => {
                let out = child.wait_with_output().unwrap();
                assert_eq!(st.code(), Some(0), "{what}: {}", text(&out.stderr));
                // Nothing left to kill in this workdir: check it, then start
                // again from the waiting set.
                let wd = workdir.take().unwrap();
                stage_ok_in(&wd, &what);
                assert_parity_complete(&wd, &env.watched, &scratch, 3, &what);
                ended_alone_in_a_row += 1;
                if ended_alone_in_a_row == 2 {
                    // Longer delays kill nothing more.
                    break;
                }
            }
            None => {
                // The whole process group, par2 with it, as a power cut
                // would (a kill of the process alone is the next test's).
                // SAFETY: kill has no preconditions; the group is our child's.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                // And its other processes: the next run must not meet one
                // still dying with the workdir's lock.
                wait_for_group(child.id());
                killed += 1;
                ended_alone_in_a_row = 0;
                check_copied_rows(wd);
            }
        }
        delay += Duration::from_millis(2) + delay / 10;
    }
    assert!(killed >= 5, "only {killed} runs were killed");
    if let Some(wd) = workdir {
        stage_ok_in(&wd, "the plain run");
        assert_parity_complete(&wd, &env.watched, &scratch, 3, "after the last kill");
    }
}

fn stage_ok_in(workdir: &Path, what: &str) {
    let out = Command::new(bin("dbackup-stage"))
        .arg("-w")
        .arg(workdir)
        .args(["--no-progress", "monitor"])
        .env_remove("DBACKUP_WORKDIR")
        .env_remove("FAILPOINTS")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: plain run: {}",
        text(&out.stderr)
    );
}

/// What a run killed after recording its group's last parity disc leaves,
/// its work folder with the member images linked in, is removed by the
/// next run, though no group waits for parity any more.
/// docs/parity.md: "the next run removes the work folder and partial
/// images"; left, the work folder's links keep every member image's
/// blocks allocated after the images in isos/ are deleted.
#[test]
fn the_next_run_removes_what_a_killed_build_left_when_no_group_waits() {
    let env = full_set("2+1", 3);
    assert_eq!(parity_discs(&env.workdir), [(1, 1)]);
    let work = isos(&env).join(".parity-1.work");
    std::fs::create_dir(&work).unwrap();
    for d in [1, 2] {
        std::fs::hard_link(data_image(&env, d), work.join(format!("disc-{d}.iso"))).unwrap();
    }
    std::fs::write(work.join("parity-1.vol0+8.par2"), b"half").unwrap();
    for args in [&["monitor"][..], &["monitor", "--cron"][..]] {
        stage_ok(&env, args);
    }
    let names = iso_names(&env.workdir);
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with(".work") || n.ends_with(".partial")),
        "left after a run: {names:?}"
    );
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
}

/// Waits (at most 10 s) until no live process is left in process group
/// `pgid`.
fn wait_for_group(pgid: u32) {
    let start = Instant::now();
    // Bounded by the time.
    while start.elapsed() < Duration::from_secs(10) {
        let left = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read_to_string(e.path().join("stat")).is_ok_and(|stat| {
                let Some(close) = stat.rfind(')') else {
                    return false;
                };
                let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
                // state ppid pgrp ...
                f.len() > 2 && f[0] != "Z" && f[0] != "X" && f[2] == pgid.to_string()
            })
        });
        if !left {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("process group {pgid} still runs 10 s after its kill");
}

/// The pid of a child of `parent` whose command is `name`, from /proc.
fn child_named(parent: u32, name: &str) -> Option<i32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 1..].split_whitespace().nth(1);
        if comm == name && ppid == Some(parent.to_string().as_str()) {
            return Some(pid);
        }
    }
    None
}

/// Whether process `pid` runs (neither gone nor a zombie left unreaped).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|c| stat[c + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// `kill -9` of dbackup-stage alone while its par2 runs: unless it dies
/// with its parent, the par2, once past its first line of output (before
/// it, the closed pipe ends it), runs on orphaned while the next run
/// starts. par2 takes its folder's
/// path when it starts and creates its output files by that path, so an
/// orphan that gets there late creates them in the work folder the next
/// run has just made afresh under the same name, and that run's own par2
/// refuses to overwrite them. Here par2 is reached through a wrapper that
/// takes the path, prints par2's first line and waits half a second, as a
/// busy machine might; unwrapped, the same happens now and then. The
/// contract (docs/parity.md): "A kill at any point leaves the group
/// `full`: the next run removes the work folder and partial images, and
/// builds what is missing."
#[test]
fn a_kill_that_leaves_par2_running_does_not_fail_the_next_run() {
    let env = waiting_for_par2(1, FULL, DISC);
    let real = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("par2"))
        .find(|p| p.is_file())
        .expect("par2 is installed");
    let slow = env.dir.path().join("slow-par2");
    std::fs::create_dir_all(&slow).unwrap();
    let wrapper = slow.join("par2");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ndir=$(pwd)\necho\nsleep 0.5\ncd \"$dir\" || exit 1\nexec '{}' \"$@\" >/dev/null\n",
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut path = std::ffi::OsString::from(&slow);
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let monitor = || {
        let mut c = env.stage();
        c.arg("monitor").env("PATH", &path).stdin(Stdio::null());
        c
    };

    let mut child = monitor()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Its par2 (at most 10 s).
    let start = Instant::now();
    let par2 = loop {
        if let Some(p) = child_named(child.id(), "par2") {
            break p;
        }
        assert!(
            child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(10),
            "dbackup-stage ended or ran 10 s without running par2"
        );
        std::thread::sleep(Duration::from_micros(200));
    };
    // Past its first line of output (par2 prints one at once, even with
    // -q -q; one not yet past it dies on the closed pipe).
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: kill has no preconditions; the process is our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    // A par2 that dies with its dbackup-stage leaves nothing to meet.
    let orphaned = running(par2);

    let out = monitor().output().unwrap();
    let start = Instant::now();
    while running(par2) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let first = (out.status.code(), text(&out.stderr));
    // Whatever that run left, the one after mends.
    let out = monitor().output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let scratch = env.dir.path().join("scratch");
    assert_parity_complete(&env.workdir, &env.watched, &scratch, 1, "in the end");
    assert_eq!(
        first.0,
        Some(0),
        "the run after a kill that left par2 {} failed: {}",
        if orphaned { "running" } else { "dying" },
        first.1
    );
}
