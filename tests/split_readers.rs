//! Files split over several discs, seen by the recovery tools through the
//! real binaries: `dbackup-find` shows one row with all the discs,
//! `dbackup-verify` checks every part on its own disc, `dbackup-lost` counts
//! a version with a part on a lost disc and takes it again. Sets are made by
//! `dbackup-stage` on discs of 1 MB from sparse files of three discs' worth.
#![cfg(feature = "failpoints")]

mod common;

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// A disc of 1 MB: about 800 kB of room for a part.
const DISC: &str = "1307200";
/// A file of three discs' worth: parts on discs 1, 2 and 3.
const BIG: u64 = 2_000_000;

/// (part, disc, size, md5) of every recorded part of `id`, from the
/// workdir's catalogue.
fn parts(env: &TestEnv, id: i64) -> Vec<(i64, i64, i64, String)> {
    env.catalog()
        .prepare(
            "SELECT part, disc_id, size, md5 FROM parts WHERE file_id=?1 AND copied=1 ORDER BY part",
        )
        .unwrap()
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// (id, state) of every split version of `name`, in id order.
fn splits_of(env: &TestEnv, name: &str) -> Vec<(i64, String)> {
    env.catalog()
        .prepare(
            "SELECT s.file_id, s.state FROM splits s JOIN files f ON f.id = s.file_id
             WHERE f.filename = ?1 ORDER BY s.file_id",
        )
        .unwrap()
        .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// A set of three closed discs with their verified images: `/big.bin`
/// split over discs 1-3 and `/small.txt` whole on disc 3.
fn split_set() -> TestEnv {
    let env = TestEnv::new();
    sparse(&env.watched.join("big.bin"), BIG, 7);
    env.write("small.txt", b"a small file");
    env.init(&["--disc-size", DISC]);
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = env.run(&["close"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(splits_of(&env, "/big.bin"), vec![(1, "complete".into())]);
    let p = parts(&env, 1);
    assert_eq!(
        p.iter().map(|p| p.1).collect::<Vec<_>>(),
        [1, 2, 3],
        "one part per disc"
    );
    for d in 1..=3 {
        assert!(iso(&env, d).is_file());
    }
    env
}

fn iso(env: &TestEnv, disc: i64) -> PathBuf {
    env.workdir.join(format!("isos/disc-{disc}.iso"))
}

fn tool(name: &str, discs: &[&Path], args: &[&str]) -> Output {
    let mut c = Command::new(bin(name));
    for d in discs {
        c.arg("-d").arg(d);
    }
    c.arg("--no-progress")
        .args(args)
        .env_remove("FAILPOINTS")
        .output()
        .unwrap()
}

fn json(out: &Output, code: i32) -> Value {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The TSV row of `name` in a tool's output (header first), as cells
/// keyed by the header's names.
fn row(out: &Output, name: &str) -> std::collections::HashMap<String, String> {
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let rows: Vec<&str> = lines
        .filter(|l| l.split('\t').next() == Some(name))
        .collect();
    assert_eq!(rows.len(), 1, "one row for {name} in:\n{stdout}");
    header
        .iter()
        .zip(rows[0].split('\t'))
        .map(|(h, c)| (h.to_string(), c.to_string()))
        .collect()
}

#[test]
fn find_shows_a_split_file_once_with_all_its_discs() {
    let env = split_set();
    let isos = env.workdir.join("isos");
    let recorded = parts(&env, 1);

    let out = tool("dbackup-find", &[&isos], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let big = row(&out, "/big.bin");
    assert_eq!(big["disc"], "1-3");
    assert_eq!(big["disc is"], "given");
    assert_eq!(big["size"], BIG.to_string());
    assert_eq!(big["versions"], "1");
    let small = row(&out, "/small.txt");
    assert_eq!(small["disc"], "3");
    assert_eq!(small["disc is"], "given");

    let rows = json(&tool("dbackup-find", &[&isos], &["--json"]), 0);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let big = &rows[0];
    assert_eq!(big["filename"], "/big.bin");
    assert_eq!(big["discs"], serde_json::json!([1, 2, 3]));
    assert_eq!(big["disc"], 1);
    assert_eq!(big["availability"], "given");
    assert_eq!(big["md5"], md5_file(&env.watched.join("big.bin")));
    assert!(big.get("missing_discs").is_none());
    let got: Vec<(i64, i64, i64, String)> = big["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["availability"], "given");
            (
                p["part"].as_i64().unwrap(),
                p["disc"].as_i64().unwrap(),
                p["size"].as_i64().unwrap(),
                p["md5"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, recorded);
    // A whole file is as it was: one disc, no parts.
    let small = &rows[1];
    assert_eq!(small["discs"], serde_json::json!([3]));
    assert!(small.get("parts").is_none());

    // Every version, too, is one row.
    let all = json(
        &tool("dbackup-find", &[&isos], &["--json", "--all-versions"]),
        0,
    );
    assert_eq!(all.as_array().unwrap().len(), 2);
}

#[test]
fn find_says_which_discs_of_a_split_file_are_missing_or_lost() {
    let env = split_set();
    // Disc 2 left out: the file is not at hand, though its first and last
    // discs are.
    let out = tool(
        "dbackup-find",
        &[&iso(&env, 1), &iso(&env, 3)],
        &["big.bin"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(row(&out, "/big.bin")["disc is"], "not given: 2");
    let rows = json(
        &tool(
            "dbackup-find",
            &[&iso(&env, 1), &iso(&env, 3)],
            &["--json", "big.bin"],
        ),
        0,
    );
    let big = &rows[0];
    assert_eq!(big["availability"], "not_given");
    assert_eq!(big["missing_discs"], serde_json::json!([2]));
    let by_part: Vec<&str> = big["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["availability"].as_str().unwrap())
        .collect();
    assert_eq!(by_part, ["given", "not_given", "given"]);
    // Only the last disc: two discs missing.
    let rows = json(
        &tool("dbackup-find", &[&iso(&env, 3)], &["--json", "big.bin"]),
        0,
    );
    assert_eq!(rows[0]["missing_discs"], serde_json::json!([1, 2]));

    // Disc 1 marked lost; the next disc's catalogue says so.
    let out = env.tool("dbackup-lost").arg("1").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    env.write("later.txt", b"a later file");
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    let out = tool(
        "dbackup-find",
        &[&iso(&env, 2), &iso(&env, 4)],
        &["big.bin"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(row(&out, "/big.bin")["disc is"], "lost: 1; not given: 3");
    let rows = json(
        &tool(
            "dbackup-find",
            &[&iso(&env, 2), &iso(&env, 4)],
            &["--json", "big.bin"],
        ),
        0,
    );
    assert_eq!(rows[0]["availability"], "lost");
    assert_eq!(rows[0]["missing_discs"], serde_json::json!([1, 3]));
}

/// Each disc's `parts` from a verify report, as (disc, part, standing, ok).
fn verified_parts(report: &Value) -> Vec<(i64, i64, String, bool)> {
    report["discs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| {
            d["parts"].as_array().unwrap().iter().map(move |p| {
                (
                    d["disc"].as_i64().unwrap(),
                    p["part"].as_i64().unwrap(),
                    p["standing"].as_str().unwrap().to_string(),
                    p["ok"].as_bool().unwrap(),
                )
            })
        })
        .collect()
}

#[test]
fn every_disc_of_a_split_set_verifies_clean_alone_and_together() {
    let env = split_set();
    let recorded = parts(&env, 1);
    for d in 1..=3i64 {
        let report = json(&tool("dbackup-verify", &[&iso(&env, d)], &["--json"]), 0);
        // A disc closed before the last part calls the version staging;
        // with no later disc given, its part is checked as a backup's.
        let standing = if d < 3 { "unfinished" } else { "backup" };
        assert_eq!(
            verified_parts(&report),
            vec![(d, d, standing.to_string(), true)]
        );
        let disc = &report["discs"][0];
        let p = &disc["parts"][0];
        assert_eq!(p["path"], format!("files/0/1.{d}"));
        assert_eq!(p["size"].as_i64().unwrap(), recorded[d as usize - 1].2);
        assert_eq!(p["md5"], recorded[d as usize - 1].3);
        let whole = if d == 3 { 1 } else { 0 };
        assert_eq!(disc["files"].as_i64().unwrap(), whole + 1);
        assert_eq!(disc["ok"].as_i64().unwrap(), whole + 1);
        assert_eq!(disc["unknown"], 0, "a part is no unknown file");
        assert_eq!(disc["not_a_backup"], 0);
    }
    // Together, the newest manifest says the version is complete.
    let isos = env.workdir.join("isos");
    let report = json(&tool("dbackup-verify", &[&isos], &["--json"]), 0);
    assert_eq!(
        verified_parts(&report),
        (1..=3)
            .map(|d| (d, d, "backup".to_string(), true))
            .collect::<Vec<_>>()
    );
    // The disc's MD5SUMS covers its part, for a check with coreutils alone.
    for d in 1..=3i64 {
        let dir = tempfile::tempdir().unwrap();
        bsdtar_extract(&iso(&env, d), dir.path());
        let sums = std::fs::read_to_string(dir.path().join("MD5SUMS")).unwrap();
        let line = format!("{}  files/0/1.{d}", recorded[d as usize - 1].3);
        assert!(sums.lines().any(|l| l == line), "{line} not in\n{sums}");
        let out = Command::new("md5sum")
            .args(["-c", "--quiet", "MD5SUMS"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stdout));
    }
}

#[test]
fn verify_finds_a_flipped_byte_and_a_missing_part_on_its_disc() {
    let env = split_set();
    let dir = tempfile::tempdir().unwrap();
    let disc2 = dir.path().join("disc2");
    std::fs::create_dir(&disc2).unwrap();
    bsdtar_extract(&iso(&env, 2), &disc2);
    let part = disc2.join("files/0/1.2");
    let mut data = std::fs::read(&part).unwrap();
    let at = data.len() / 2;
    data[at] ^= 0x40;
    std::fs::write(&part, &data).unwrap();

    // Alone, and with the newest disc (which says the version is complete).
    for discs in [vec![disc2.as_path()], vec![disc2.as_path(), &iso(&env, 3)]] {
        let out = tool("dbackup-verify", &discs, &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("files/0/1.2 (/big.bin): damaged: part 2"),
            "{stderr}"
        );
        let report = json(&tool("dbackup-verify", &discs, &["--json"]), 1);
        let d = &report["discs"][0];
        assert_eq!(d["disc"], 2);
        assert_eq!(d["damaged"], 1);
        assert_eq!(d["ok"], 0);
        let p = &d["problems"][0];
        assert_eq!(p["id"], 1);
        assert_eq!(p["part"], 2);
        assert_eq!(p["filename"], "/big.bin");
        assert_eq!(p["problem"], "damaged");
        assert!(p.get("not_a_backup").is_none());
        assert_eq!(d["parts"][0]["ok"], false);
        assert_eq!(d["parts"][0]["problem"], "damaged");
        // The other disc is untouched.
        if discs.len() == 2 {
            assert_eq!(report["discs"][1]["ok"], 2);
        }
    }

    std::fs::remove_file(&part).unwrap();
    let out = tool("dbackup-verify", &[&disc2], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // Alone, disc 2 knows the version only as unfinished.
    assert!(
        stderr.contains(
            "files/0/1.2 (/big.bin): missing: part 2 (its version was unfinished when the newest disc given was closed): not on the disc"
        ),
        "{stderr}"
    );
    let report = json(&tool("dbackup-verify", &[&disc2], &["--json"]), 1);
    assert_eq!(report["discs"][0]["missing"], 1);

    // A part file the manifest does not record is unknown, with its id.
    std::fs::write(disc2.join("files/0/1.9"), b"stray").unwrap();
    let report = json(&tool("dbackup-verify", &[&disc2], &["--json"]), 1);
    let unknown: Vec<&Value> = report["discs"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["problem"] == "unknown")
        .collect();
    assert_eq!(unknown.len(), 1, "{report}");
    assert_eq!(unknown[0]["id"], 1);
    assert_eq!(unknown[0]["part"], 9);
}

#[test]
fn a_part_of_an_abandoned_version_is_checked_but_is_no_backup() {
    let env = TestEnv::new();
    let path = env.watched.join("v.bin");
    sparse(&path, 2_400_000, 6);
    env.init(&["--disc-size", DISC]);
    // Killed as its second part is recorded: part 1 is on disc 1.
    let out = env
        .stage()
        .env("FAILPOINTS", "split::commit=1*off->1*return(kill)")
        .arg("monitor")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{}", text(&out.stderr));
    // Other bytes, same size and mtime: the next run abandons the version
    // and takes the file again.
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(10)).unwrap();
    f.write_all(b"X").unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    let s = splits_of(&env, "/v.bin");
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(s[0].1, "abandoned");
    assert_eq!(s[1].1, "complete");
    let abandoned = s[0].0;
    assert_eq!(parts(&env, abandoned)[0].1, 1);
    let isos = env.workdir.join("isos");

    // With the newest disc given, its part on disc 1 is no backup; sound,
    // it makes no problem.
    let report = json(&tool("dbackup-verify", &[&isos], &["--json"]), 0);
    let d1 = &report["discs"][0];
    assert_eq!(d1["disc"], 1);
    assert_eq!(d1["not_a_backup"], 1);
    assert_eq!(d1["files"], 0, "{d1}");
    assert_eq!(d1["parts"][0]["id"], abandoned);
    assert_eq!(d1["parts"][0]["state"], "abandoned");
    assert_eq!(d1["parts"][0]["standing"], "not_a_backup");
    assert_eq!(d1["parts"][0]["ok"], true);
    // The table (TSV off a terminal) says so too, in its parts column.
    let table = text(&tool("dbackup-verify", &[&isos], &[]).stdout);
    let head: Vec<&str> = table.lines().next().unwrap().split('\t').collect();
    let col = head
        .iter()
        .position(|h| *h == "parts")
        .expect("a parts column");
    let row: Vec<&str> = table.lines().nth(1).unwrap().split('\t').collect();
    assert_eq!(row[0], "1");
    assert_eq!(row[col], "1/1 ok, 1 no backup", "{table}");

    // Damaged, it is listed as not a backup and counts as no damage.
    let dir = tempfile::tempdir().unwrap();
    bsdtar_extract(&iso(&env, 1), dir.path());
    let part = dir.path().join(format!("files/0/{abandoned}.1"));
    let mut data = std::fs::read(&part).unwrap();
    data[20] ^= 1;
    std::fs::write(&part, &data).unwrap();
    let mut discs: Vec<PathBuf> = vec![dir.path().to_path_buf()];
    discs.extend((2..).map(|d| iso(&env, d)).take_while(|p| p.is_file()));
    let discs: Vec<&Path> = discs.iter().map(|p| p.as_path()).collect();
    let out = tool("dbackup-verify", &discs, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "files/0/{abandoned}.1 (/v.bin): damaged: part 1, not a backup (its version is abandoned)"
        )),
        "{stderr}"
    );
    let report = json(&tool("dbackup-verify", &discs, &["--json"]), 0);
    let d1 = &report["discs"][0];
    assert_eq!(d1["damaged"], 0);
    assert_eq!(d1["problems"][0]["not_a_backup"], true);
    assert_eq!(d1["parts"][0]["problem"], "damaged");
    // Alone, disc 1 cannot know the version was abandoned: its damage
    // counts, as it may be part of a backup.
    let out = tool("dbackup-verify", &[dir.path()], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

/// Runs `dbackup-lost` on the workdir with `args`, giving its JSON report
/// and exit code.
fn lost(env: &TestEnv, args: &[&str]) -> (Value, i32) {
    let out = env
        .tool("dbackup-lost")
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    assert!(code <= 1, "{}", text(&out.stderr));
    (serde_json::from_slice(&out.stdout).unwrap(), code)
}

fn ids(report: &Value, category: &str) -> Vec<i64> {
    report[category]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn losing_a_middle_disc_loses_a_split_file_unless_the_origin_holds_it_and_restage_brings_it_back() {
    let env = split_set();
    let big = env.watched.join("big.bin");
    let want = md5_file(&big);

    // The origin unchanged: re-protectable, once.
    let (report, code) = lost(&env, &["2", "--what-if"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(ids(&report, "reprotectable"), [1]);
    assert_eq!(
        report["reprotectable"][0]["discs"],
        serde_json::json!([1, 2, 3])
    );
    assert_eq!(report["totals"]["reprotectable"]["bytes"], BIG);
    // Two of its discs lost at once: still one version.
    let (report, _) = lost(&env, &["1", "2", "--what-if"]);
    assert_eq!(ids(&report, "reprotectable"), [1]);
    assert_eq!(report["totals"]["reprotectable"]["files"], 1);

    // The origin gone: unrecoverable, counted once, exit 1.
    let aside = env.dir.path().join("aside.bin");
    std::fs::rename(&big, &aside).unwrap();
    let (report, code) = lost(&env, &["2", "--what-if"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(ids(&report, "unrecoverable"), [1]);
    assert_eq!(report["totals"]["unrecoverable"]["bytes"], BIG);
    let (report, code) = lost(&env, &["1", "2", "3", "--what-if"]);
    assert_eq!(code, 1);
    assert_eq!(ids(&report, "unrecoverable"), [1]);
    // The same content under another name in the origin: safe.
    std::fs::rename(&aside, env.watched.join("moved.bin")).unwrap();
    let (report, code) = lost(&env, &["2", "--what-if"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(ids(&report, "renamed"), [1]);
    std::fs::rename(env.watched.join("moved.bin"), &big).unwrap();
    // Its last disc, with the whole file beside its part.
    let (report, code) = lost(&env, &["3", "--what-if"]);
    assert_eq!(code, 0);
    assert_eq!(ids(&report, "reprotectable"), [1, 2]);

    // Disc 2 lost for real, and the file taken again as a new split version.
    let (report, code) = lost(&env, &["2", "--restage"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["restaged"], 1, "{report}");
    let s = splits_of(&env, "/big.bin");
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(s[1].1, "complete");
    let new = s[1].0;
    let desc: String = env
        .catalog()
        .query_row("SELECT desc FROM files WHERE id=?1", [new], |r| r.get(0))
        .unwrap();
    assert_eq!(desc, "Re-staged: disc 2 lost");
    let new_discs: Vec<i64> = parts(&env, new).iter().map(|p| p.1).collect();
    assert!(new_discs.len() >= 3, "{new_discs:?}");
    assert!(new_discs.iter().all(|&d| d > 3), "{new_discs:?}");
    assert_eq!(env.run(&["close"]).status.code(), Some(0));

    // Every disc but the lost one, in a box.
    let kept = env.dir.path().join("kept");
    std::fs::create_dir(&kept).unwrap();
    for e in std::fs::read_dir(env.workdir.join("isos")).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap() != "disc-2.iso" {
            std::fs::copy(&p, kept.join(p.file_name().unwrap())).unwrap();
        }
    }
    // Find shows the new version at hand, and the old one lost.
    let rows = json(
        &tool(
            "dbackup-find",
            &[&kept],
            &["--json", "--all-versions", "big.bin"],
        ),
        0,
    );
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["availability"], "lost");
    assert_eq!(rows[1]["availability"], "given");
    assert_eq!(rows[1]["discs"], serde_json::json!(new_discs));

    // By hand, with an independent reader: the new parts put together in
    // order are the file.
    let mut whole = Vec::new();
    for (part, disc, _, md5) in parts(&env, new) {
        let dir = tempfile::tempdir().unwrap();
        bsdtar_extract(&iso(&env, disc), dir.path());
        let data = std::fs::read(dir.path().join(format!("files/0/{new}.{part}"))).unwrap();
        assert_eq!(md5_bytes(&data), md5);
        whole.extend(data);
    }
    assert_eq!(md5_bytes(&whole), want);
    // And dbackup-restore gives it back from the discs left.
    let target = env.dir.path().join("restored");
    let out = tool(
        "dbackup-restore",
        &[&kept],
        &["--to", target.to_str().unwrap(), "big.bin"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(md5_file(&target.join("big.bin")), want);
}

#[test]
fn a_split_file_unfinished_with_a_part_on_a_lost_disc_is_taken_again_not_resumed() {
    let env = TestEnv::new();
    let path = env.watched.join("v.bin");
    sparse(&path, 2_400_000, 9);
    let want = md5_file(&path);
    env.init(&["--disc-size", DISC]);
    // Killed as its second part is recorded: part 1 is on disc 1, closed.
    let out = env
        .stage()
        .env("FAILPOINTS", "split::commit=1*off->1*return(kill)")
        .arg("monitor")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{}", text(&out.stderr));
    let s = splits_of(&env, "/v.bin");
    assert_eq!(s, vec![(s[0].0, "staging".to_string())]);
    let first = s[0].0;
    assert_eq!(parts(&env, first)[0].1, 1);

    // What if: named, nothing changed.
    let (report, code) = lost(&env, &["1", "--what-if"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(ids(&report, "unfinished"), [first]);
    assert_eq!(report["unfinished"][0]["discs"], serde_json::json!([1]));
    assert_eq!(splits_of(&env, "/v.bin")[0].1, "staging");

    // Disc 1 lost: the version is abandoned, and the next run takes the
    // file again on discs at hand rather than finish it onto disc 1.
    let (report, code) = lost(&env, &["1"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(ids(&report, "unfinished"), [first]);
    assert_eq!(splits_of(&env, "/v.bin")[0].1, "abandoned");
    let out = env.run(&["monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = splits_of(&env, "/v.bin");
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(s[0].1, "abandoned");
    assert_eq!(s[1].1, "complete");
    let discs: Vec<i64> = parts(&env, s[1].0).iter().map(|p| p.1).collect();
    assert!(discs.iter().all(|&d| d > 1), "{discs:?}");
    let whole: String = env
        .catalog()
        .query_row("SELECT md5 FROM files WHERE id=?1", [s[1].0], |r| r.get(0))
        .unwrap();
    assert_eq!(whole, want);
    // Losing disc 1 cost nothing: it held no backup.
    let (report, code) = lost(&env, &["1", "--what-if"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["totals"]["unrecoverable"]["files"], 0);
    assert_eq!(ids(&report, "unfinished"), Vec::<i64>::new());
}

mod model {
    //! Sets of mounted discs written by hand in our format, with split
    //! versions complete, abandoned or unfinished, parts damaged, removed or
    //! cut short, and any selection of discs given: verify's counts and
    //! find's availability checked against a reference model.

    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use dbackup::find::{self, Availability, FindOptions};
    use dbackup::progress::Progress;
    use dbackup::verify::{self, VerifyOptions};
    use proptest::prelude::*;

    use super::common::md5_bytes;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Fate {
        /// All its parts recorded: complete on the disc of its last part.
        Complete,
        /// Abandoned on the disc of its last recorded part.
        Abandoned,
        /// Still being staged when the last disc was closed.
        Unfinished,
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Harm {
        None,
        Flip,
        Remove,
        Cut,
    }

    #[derive(Debug, Clone)]
    struct Split {
        first: usize,
        /// Sizes of its recorded parts, on discs `first`, `first + 1`, ...
        sizes: Vec<usize>,
        fate: Fate,
        seed: u8,
    }

    #[derive(Debug, Clone)]
    struct Case {
        discs: usize,
        splits: Vec<Split>,
        /// What befalls each part, in order of (version, part).
        harm: Vec<Harm>,
        given: Vec<bool>,
    }

    fn case() -> impl Strategy<Value = Case> {
        (2..5usize)
            .prop_flat_map(|discs| {
                (
                    Just(discs),
                    prop::collection::vec(
                        (
                            0..discs,
                            prop::collection::vec(1..40usize, 1..5),
                            prop::sample::select(vec![
                                Fate::Complete,
                                Fate::Complete,
                                Fate::Abandoned,
                                Fate::Unfinished,
                            ]),
                            any::<u8>(),
                        ),
                        1..4,
                    ),
                    prop::collection::vec(
                        prop::sample::select(vec![
                            Harm::None,
                            Harm::None,
                            Harm::None,
                            Harm::Flip,
                            Harm::Remove,
                            Harm::Cut,
                        ]),
                        16,
                    ),
                    prop::collection::vec(any::<bool>(), discs),
                )
            })
            .prop_map(|(discs, splits, harm, given)| Case {
                splits: splits
                    .into_iter()
                    .map(|(first, mut sizes, fate, seed)| {
                        sizes.truncate(discs - first);
                        // A complete split has two parts at least.
                        let fate = if sizes.len() < 2 && fate == Fate::Complete {
                            Fate::Unfinished
                        } else {
                            fate
                        };
                        Split {
                            first,
                            sizes,
                            fate,
                            seed,
                        }
                    })
                    .collect(),
                harm,
                given,
                discs,
            })
    }

    fn content(s: &Split) -> Vec<u8> {
        let n: usize = s.sizes.iter().sum();
        (0..n)
            .map(|i| (i as u8).wrapping_mul(13) ^ s.seed)
            .collect()
    }

    /// The version's state in the manifest frozen into disc `d` (0-based),
    /// if that manifest knows it.
    fn state_on(s: &Split, d: usize) -> Option<&'static str> {
        if d < s.first {
            return None;
        }
        let last = s.first + s.sizes.len() - 1;
        Some(match s.fate {
            Fate::Complete if d >= last => "complete",
            Fate::Abandoned if d >= last => "abandoned",
            _ => "staging",
        })
    }

    /// One folder per disc, as if mounted: its parts (harmed as the case
    /// says) and the manifest frozen when it was closed.
    fn write_set(root: &Path, c: &Case) -> Vec<PathBuf> {
        let mut folders = Vec::new();
        for d in 0..c.discs {
            let folder = root.join(format!("disc{}", d + 1));
            std::fs::create_dir_all(folder.join("files/0")).unwrap();
            let conn = rusqlite::Connection::open(folder.join("manifest.db")).unwrap();
            conn.execute_batch(
                "CREATE TABLE discs(id INTEGER PRIMARY KEY, started INTEGER, completed INTEGER, available BOOLEAN);
                 CREATE TABLE files(id INTEGER PRIMARY KEY, filename TEXT, timestamp INTEGER, md5 TEXT,
                                    size INTEGER, mtime INTEGER, disc_id INTEGER, desc TEXT, copied BOOLEAN);
                 CREATE TABLE splits(file_id INTEGER PRIMARY KEY, state TEXT NOT NULL, why TEXT);
                 CREATE TABLE parts(file_id INTEGER NOT NULL, part INTEGER NOT NULL,
                                    disc_id INTEGER NOT NULL, offset INTEGER NOT NULL, size INTEGER NOT NULL,
                                    md5 TEXT, copied BOOLEAN NOT NULL, PRIMARY KEY(file_id, part));",
            )
            .unwrap();
            for k in 0..=d + 1 {
                conn.execute(
                    "INSERT INTO discs VALUES (?1, 1700000000.0, ?2, 1)",
                    rusqlite::params![k as i64 + 1, (k <= d).then_some(1_700_000_100.0 + k as f64)],
                )
                .unwrap();
            }
            let mut harm = c.harm.iter().cycle();
            for (i, s) in c.splits.iter().enumerate() {
                let id = i as i64 + 1;
                let data = content(s);
                let Some(state) = state_on(s, d) else {
                    // Its parts' harms are used all the same, so each part
                    // meets the same one on every disc's pass.
                    for _ in &s.sizes {
                        harm.next();
                    }
                    continue;
                };
                let complete = state == "complete";
                conn.execute(
                    "INSERT INTO files VALUES (?1, ?2, 1700000050.0, ?3, ?4, 1700000000, NULL, 'x', ?5)",
                    rusqlite::params![
                        id,
                        format!("/v{id}"),
                        complete.then(|| md5_bytes(&data)),
                        data.len() as i64,
                        complete as i64
                    ],
                )
                .unwrap();
                conn.execute(
                    "INSERT INTO splits VALUES (?1, ?2, NULL)",
                    rusqlite::params![id, state],
                )
                .unwrap();
                let mut offset = 0;
                for (k, &size) in s.sizes.iter().enumerate() {
                    let h = *harm.next().unwrap();
                    let on = s.first + k;
                    let bytes = &data[offset..offset + size];
                    if on <= d {
                        conn.execute(
                            "INSERT INTO parts VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)",
                            rusqlite::params![
                                id,
                                k as i64 + 1,
                                on as i64 + 1,
                                offset as i64,
                                size as i64,
                                md5_bytes(bytes)
                            ],
                        )
                        .unwrap();
                    }
                    if on == d {
                        let path = folder.join(format!("files/0/{id}.{}", k + 1));
                        let mut stored = bytes.to_vec();
                        match h {
                            Harm::None => {}
                            Harm::Flip => stored[size / 2] ^= 0x10,
                            Harm::Cut => {
                                stored.pop();
                            }
                            Harm::Remove => continue,
                        }
                        std::fs::write(path, stored).unwrap();
                    }
                    offset += size;
                }
            }
            folders.push(folder);
        }
        folders
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn verify_and_find_follow_the_model(c in case()) {
            let given: Vec<usize> = (0..c.discs).filter(|&d| c.given[d]).collect();
            prop_assume!(!given.is_empty());
            let dir = tempfile::tempdir().unwrap();
            let folders = write_set(dir.path(), &c);
            let newest = *given.last().unwrap();

            // The model: each part on a given disc, its standing by the
            // newest disc given, and its harm.
            let mut want = vec![(0u64, 0u64, 0u64, 0u64, 0u64); c.discs]; // files, ok, damaged, missing, not a backup
            let mut harm = c.harm.iter().cycle();
            for s in &c.splits {
                for k in 0..s.sizes.len() {
                    let h = *harm.next().unwrap();
                    let on = s.first + k;
                    let w = &mut want[on];
                    match state_on(s, newest.max(on)) {
                        Some("abandoned") => w.4 += 1,
                        _ => {
                            w.0 += 1;
                            match h {
                                Harm::None => w.1 += 1,
                                Harm::Flip | Harm::Cut => w.2 += 1,
                                Harm::Remove => w.3 += 1,
                            }
                        }
                    }
                }
            }
            let report = verify::verify(
                &VerifyOptions {
                    discs: given.iter().map(|&d| folders[d].clone()).collect(),
                    origin: None,
                    ..Default::default()
                },
                &Progress::hidden(),
                &mut |_, _| {},
            )
            .unwrap();
            prop_assert_eq!(report.discs.len(), given.len());
            for r in &report.discs {
                let d = r.disc as usize - 1;
                prop_assert!(r.manifest_ok, "{:?}", r.problems);
                prop_assert_eq!(
                    (r.files, r.ok, r.damaged, r.missing, r.not_a_backup),
                    want[d],
                    "disc {}: {:?}",
                    r.disc,
                    r.problems
                );
                prop_assert_eq!(r.unknown, 0);
                prop_assert_eq!(r.clean(), want[d].2 == 0 && want[d].3 == 0);
                // Every problem names its file and part.
                for p in &r.problems {
                    prop_assert!(p.id.is_some() && p.part.is_some(), "{:?}", p);
                }
            }

            // Find: the versions complete in the newest manifest given, at
            // hand only when every disc of theirs is given.
            let found = find::find(&FindOptions {
                discs: given.iter().map(|&d| folders[d].clone()).collect(),
                ..Default::default()
            })
            .unwrap();
            prop_assert_eq!(found.invalid_rows, 0);
            let given_set: BTreeSet<usize> = given.iter().copied().collect();
            let mut want_found = Vec::new();
            for (i, s) in c.splits.iter().enumerate() {
                if state_on(s, newest) != Some("complete") {
                    continue;
                }
                let discs: Vec<i64> = (s.first..s.first + s.sizes.len()).map(|d| d as i64 + 1).collect();
                let missing: Vec<i64> = (s.first..s.first + s.sizes.len())
                    .filter(|d| !given_set.contains(d))
                    .map(|d| d as i64 + 1)
                    .collect();
                let availability = if missing.is_empty() { Availability::Given } else { Availability::NotGiven };
                want_found.push((i as i64 + 1, discs, missing, availability));
            }
            let got: Vec<_> = found
                .found
                .iter()
                .map(|f| (f.id, f.discs.clone(), f.missing_discs.clone(), f.availability))
                .collect();
            prop_assert_eq!(got, want_found);
        }
    }
}
