//! Staging files larger than a disc: split into parts that fill discs, each
//! disc imaged before the next part, every step crash-safe. Sources are
//! sparse files (a few real blocks), so the tests need little disk.
#![cfg(feature = "failpoints")]

mod common;

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::*;

/// A disc of 1 MB: about 800 kB of room for a part.
const DISC: &str = "1307200";

/// (part, disc, offset, size, md5) of every recorded part of `id`.
fn parts(env: &TestEnv, id: i64) -> Vec<(i64, i64, i64, i64, String)> {
    env.catalog()
        .prepare(
            "SELECT part, disc_id, offset, size, md5 FROM parts WHERE file_id=?1 AND copied=1 ORDER BY part",
        )
        .unwrap()
        .query_map([id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// (id, state) of every split version, in id order.
fn splits(env: &TestEnv) -> Vec<(i64, String)> {
    let conn = env.catalog();
    if !has_split_tables(&conn) {
        return Vec::new();
    }
    let rows = conn
        .prepare("SELECT file_id, state FROM splits ORDER BY file_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    rows
}

/// Staging folders left (the open disc's, and any disc waiting).
fn staged_discs(env: &TestEnv) -> usize {
    std::fs::read_dir(env.workdir.join("staging"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("disc-")
        })
        .count()
}

#[test]
fn files_of_3_6_and_20_parts_are_staged_one_part_per_disc_and_imaged() {
    for n in [3u64, 6, 20] {
        let env = TestEnv::new();
        env.write("a-before.txt", b"small file before");
        sparse(
            &env.watched.join("videos/holiday.mp4"),
            n * 800_000 - 400_000,
            n as u8,
        );
        env.write("z-after.txt", b"small file after");
        env.init(&["--disc-size", DISC]);
        let out = env.run(&["monitor"]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            stdout.contains(&format!(
                "holiday.mp4: New file (split into {n} parts on discs 1-{n})"
            )),
            "{stdout}"
        );
        // Every part, staged or in its disc's verified image (read by
        // bsdtar), has its MD5, and put together they are the file.
        assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
        let (id, state) = splits(&env).pop().unwrap();
        assert_eq!(state, "complete");
        let p = parts(&env, id);
        assert_eq!(p.len() as u64, n);
        let mut offset = 0;
        for (i, (part, disc, off, size, _)) in p.iter().enumerate() {
            assert_eq!(*part, i as i64 + 1);
            assert_eq!(*disc, i as i64 + 1, "one part per disc, ascending");
            assert_eq!(*off, offset, "contiguous");
            assert!(*size > 0);
            offset += size;
        }
        // The version's row is on no disc, and whole.
        let (disc, size, md5): (Option<i64>, i64, String) = env
            .catalog()
            .query_row(
                "SELECT disc_id, size, md5 FROM files WHERE id=?1 AND copied=1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(disc, None);
        assert_eq!(size, offset);
        assert_eq!(md5, md5_file(&env.watched.join("videos/holiday.mp4")));
        // Every closed disc was imaged in turn and its staged copies freed:
        // only the open disc is left in the staging area.
        assert_eq!(staged_discs(&env), 1, "n={n}");
        for d in 1..n {
            let iso = env.workdir.join(format!("isos/disc-{d}.iso"));
            assert!(iso.metadata().unwrap().len() <= DISC.parse::<u64>().unwrap());
            let listing = text(
                &std::process::Command::new("7z")
                    .arg("l")
                    .arg(&iso)
                    .output()
                    .unwrap()
                    .stdout,
            );
            assert!(listing.contains(&format!("files/0/{id}.{d}")), "{listing}");
        }
        let again = env.run(&["monitor"]);
        assert_eq!(again.status.code(), Some(0));
        assert!(
            again.stdout.is_empty() && again.stderr.is_empty(),
            "{}",
            text(&again.stderr)
        );
    }
}

/// The largest file a fresh set's empty disc takes whole, found through
/// the dry run's own judgement.
fn largest_whole(env: &TestEnv) -> u64 {
    let (mut lo, mut hi) = (1u64, 1_000_000u64);
    let probe = env.watched.join("probe.bin");
    // Bounded: a bisection over 20 bits.
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        sparse(&probe, mid, 1);
        let out = env.run(&["monitor", "--dry-run"]);
        if text(&out.stdout).contains("split into") {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    std::fs::remove_file(&probe).unwrap();
    lo
}

#[test]
fn a_file_of_exactly_a_discs_room_is_whole_and_one_byte_more_makes_two_parts() {
    let env = TestEnv::new();
    env.init(&["--disc-size", DISC]);
    let room = largest_whole(&env);
    assert!(room > 700_000, "{room}");
    sparse(&env.watched.join("exact.bin"), room, 7);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains("split"),
        "{}",
        text(&out.stdout)
    );
    assert!(splits(&env).is_empty());
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));

    let env = TestEnv::new();
    env.init(&["--disc-size", DISC]);
    let room = largest_whole(&env);
    sparse(&env.watched.join("one-more.bin"), room + 1, 8);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("split into 2 parts"),
        "{}",
        text(&out.stdout)
    );
    let (id, _) = splits(&env).pop().unwrap();
    let p = parts(&env, id);
    assert_eq!(p.len(), 2);
    assert!(p.iter().all(|x| x.3 > 0));
    assert_eq!(p[0].3 + p[1].3, room as i64 + 1);
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
}

#[test]
fn a_file_that_ends_where_a_disc_fills_makes_no_empty_part() {
    // The parts a 3-part file takes, then a file of exactly its first two.
    let env = TestEnv::new();
    env.init(&["--disc-size", DISC]);
    sparse(&env.watched.join("v.bin"), 2_000_000, 3);
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    let (id, _) = splits(&env).pop().unwrap();
    let p = parts(&env, id);
    assert_eq!(p.len(), 3);
    let two = (p[0].3 + p[1].3) as u64;

    let env = TestEnv::new();
    env.init(&["--disc-size", DISC]);
    sparse(&env.watched.join("v.bin"), two, 3);
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    let (id, _) = splits(&env).pop().unwrap();
    let p = parts(&env, id);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p.iter().all(|x| x.3 > 0));
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
}

#[test]
fn a_file_changed_between_parts_is_no_backup_and_is_taken_again() {
    let env = TestEnv::new();
    let path = env.watched.join("v.bin");
    sparse(&path, 3_000_000, 4);
    env.init(&["--disc-size", DISC]);
    let child = env
        .stage()
        .env("FAILPOINTS", "split::part_recorded=1*sleep(3000)")
        .arg("monitor")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first part is recorded, the file changes (same size, one
    // byte and the mtime).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let conn = env.catalog();
        let done: i64 = if has_split_tables(&conn) {
            conn.query_row("SELECT count(*) FROM parts WHERE copied=1", [], |r| {
                r.get(0)
            })
            .unwrap()
        } else {
            0
        };
        if done >= 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no part was recorded");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(2_500_000)).unwrap();
    f.write_all(b"changed").unwrap();
    drop(f);
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("v.bin: skipped: changed while being copied"),
        "{stderr}"
    );
    let s = splits(&env);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].1, "abandoned");
    // Its recorded parts stay on their discs but are no backup.
    let latest = env.check_invariants();
    assert!(!latest.contains_key(b"/v.bin".as_slice()));
    let copied: i64 = env
        .catalog()
        .query_row("SELECT copied FROM files WHERE id=?1", [s[0].0], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(copied, 0);
    // The next run takes it again, whole.
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = splits(&env);
    assert_eq!(s.len(), 2);
    assert_eq!(s[1].1, "complete");
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
}

#[test]
fn a_run_cut_short_is_resumed_by_the_next_without_copying_recorded_parts_again() {
    let env = TestEnv::new();
    sparse(&env.watched.join("v.bin"), 4_500_000, 5);
    env.init(&["--disc-size", DISC]);
    // Killed when the third part is recorded.
    let out = env
        .stage()
        .env("FAILPOINTS", "split::commit=2*off->1*return(kill)")
        .arg("monitor")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{}", text(&out.stderr));
    check_copied_rows(&env.workdir);
    let s = splits(&env);
    assert_eq!(s, vec![(s[0].0, "staging".to_string())]);
    let before = parts(&env, s[0].0);
    assert_eq!(before.len(), 2);
    let image1 = md5_file(&env.workdir.join("isos/disc-1.iso"));
    // Status says the file is on its way, not backed up.
    let st: serde_json::Value =
        serde_json::from_slice(&env.run(&["status", "--json"]).stdout).unwrap();
    let progress = &st["Split_files_in_progress"][0];
    assert_eq!(progress["filename"], "/v.bin");
    assert_eq!(progress["discs"], serde_json::json!([1, 2]));
    assert_eq!(st["Files_backed_up"], 0);
    // The next run repairs, checks the two recorded parts against the file
    // and goes on from the third.
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(splits(&env), vec![(s[0].0, "complete".to_string())]);
    let after = parts(&env, s[0].0);
    assert_eq!(&after[..2], &before[..]);
    assert_eq!(md5_file(&env.workdir.join("isos/disc-1.iso")), image1);
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
}

#[test]
fn a_file_changed_between_runs_abandons_the_version_begun() {
    let env = TestEnv::new();
    let path = env.watched.join("v.bin");
    sparse(&path, 4_500_000, 6);
    env.init(&["--disc-size", DISC]);
    let out = env
        .stage()
        .env("FAILPOINTS", "split::commit=1*off->1*return(kill)")
        .arg("monitor")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9));
    // Same size, same mtime, other bytes in the first part: only the
    // check of the recorded part finds it.
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(10)).unwrap();
    f.write_all(b"X").unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    let out = env.run(&["monitor"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("is no backup"), "{stderr}");
    let s = splits(&env);
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(s[0].1, "abandoned");
    assert_eq!(s[1].1, "complete");
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
}

#[test]
fn kill_9_at_any_moment_of_a_split_staging_is_repaired() {
    let env = TestEnv::new();
    sparse(&env.watched.join("v.bin"), 5_500_000, 9);
    env.write("small.txt", b"small");
    env.init(&["--disc-size", DISC]);
    let mut delay = 2u64;
    let mut kills = 0;
    // Bounded: 40 runs, each killed a little later than the last. The
    // delay starts small and grows slowly, so that a fast machine, whose
    // whole run takes a few tens of milliseconds, is still killed often.
    for _ in 0..40 {
        let mut child = env
            .stage()
            .arg("monitor")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let status = child.wait().unwrap();
        check_copied_rows(&env.workdir);
        if status.code() == Some(0) {
            break;
        }
        kills += 1;
        delay += 2 + delay / 10;
    }
    let out = env.run(&["monitor"]);
    assert!(
        matches!(out.status.code(), Some(0)),
        "{}",
        text(&out.stderr)
    );
    assert!(kills >= 5, "only {kills} runs were killed");
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
    let s = splits(&env);
    assert_eq!(s.iter().filter(|x| x.1 == "complete").count(), 1, "{s:?}");
    assert!(s.iter().all(|x| x.1 != "staging"), "{s:?}");
}

#[test]
fn without_images_between_parts_the_discs_wait_for_mkiso() {
    let env = TestEnv::new();
    sparse(&env.watched.join("v.bin"), 2_000_000, 10);
    env.init(&["--disc-size", DISC]);
    let out = env.run(&["monitor", "--no-iso"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(staged_discs(&env), 3);
    assert!(!env.workdir.join("isos/disc-1.iso").exists());
    let out = env.mkiso(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
}

#[test]
fn a_terabyte_file_is_planned_in_parts_on_a_dvd_and_on_a_bd() {
    // (medium, its disc size): the dry run plans without reading a byte.
    for (medium, disc) in [("dvd", 3_525_279_744u64), ("bd25", 18_768_986_112)] {
        let env = TestEnv::new();
        let f = std::fs::File::create(env.watched.join("huge.img")).unwrap();
        f.set_len(1 << 40).unwrap();
        drop(f);
        env.init(&["--disc-size", medium]);
        let out = env.run(&["monitor", "--dry-run"]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let n: u64 = stdout
            .split("split into about ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{stdout}"));
        let least = (1u64 << 40).div_ceil(disc);
        assert!(
            n >= least && n <= least + 1,
            "{medium}: {n} parts, at least {least}"
        );
    }
}

/// A staged part that rots before its image is taken again from the
/// origin's bytes at its offset; with the origin changed as well, the
/// version is recorded damaged and counts as no backup.
#[test]
fn a_rotten_staged_part_is_taken_again_from_the_origin_or_recorded_damaged() {
    for origin_changed in [false, true] {
        let env = TestEnv::new();
        let path = env.watched.join("v.bin");
        sparse(&path, 2_000_000, 11);
        env.init(&["--disc-size", DISC]);
        assert_eq!(env.run(&["monitor", "--no-iso"]).status.code(), Some(0));
        let (id, _) = splits(&env).pop().unwrap();
        let rotten = staged_part_path(&env.workdir, 2, id, 2);
        let mut data = std::fs::read(&rotten).unwrap();
        data[5] ^= 0xff;
        std::fs::write(&rotten, &data).unwrap();
        if origin_changed {
            sparse(&path, 2_000_000, 12);
        }
        let out = env.mkiso(&[]);
        let stderr = text(&out.stderr);
        if origin_changed {
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            let damaged = damaged_versions(&env.catalog());
            assert!(damaged.contains(&id), "{stderr}");
        } else {
            assert_eq!(out.status.code(), Some(0), "{stderr}");
            assert!(stderr.contains("copied again from"), "{stderr}");
            assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
        }
    }
}

/// A file of random bytes (so that a part out of place or a buffer
/// written twice shows) split on a disc whose parts end off any block and
/// buffer boundary is staged and imaged byte for byte, part after part.
#[test]
fn parts_are_exact_whatever_their_sizes() {
    let env = TestEnv::new();
    let size = 11 * (1 << 20) + 777;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let data = random_bytes(&mut state, size);
    env.write("big.bin", &data);
    env.init(&["--disc-size", "3500007"]);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(env.check_invariants(), tree_md5s(&env.watched));
    let (id, state) = splits(&env).pop().unwrap();
    assert_eq!(state, "complete");
    let p = parts(&env, id);
    assert!(p.len() >= 3, "{p:?}");
    assert!(
        p.iter()
            .any(|(_, _, _, size, _)| *size >= 1 << 20 && size % 4096 != 0),
        "{p:?}"
    );
    for (part, disc, offset, size, md5) in &p {
        let (offset, size) = (*offset as usize, *size as usize);
        assert_eq!(
            md5,
            &md5_bytes(&data[offset..offset + size]),
            "part {part} on disc {disc}"
        );
    }
}
