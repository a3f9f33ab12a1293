//! The life of a disc after its image, through the real binaries: copies
//! recorded, moved, lost and found (`dbackup-stage copies`), what
//! `dbackup-lost` does with a copy left, checks recorded by
//! `dbackup-verify --record`, the due list under a fake clock
//! (`DBACKUP_NOW`, honoured by test builds only), time-limited checks that
//! go on where they stopped, and a damaged copy's report naming what can
//! save it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)))
}

fn stage(env: &TestEnv, args: &[&str]) -> Output {
    env.run(args)
}

/// Records copies by hand: (disc, location) each.
fn add_copies(env: &TestEnv, list: &[(&str, &str)]) {
    for (d, loc) in list {
        ok(
            stage(env, &["copies", "add", d, "--location", loc]),
            "copies add",
        );
    }
}

fn copies(env: &TestEnv) -> Value {
    json(&ok(stage(env, &["copies", "--json"]), "copies --json"))
}

fn disc<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["disc"] == name)
        .unwrap_or_else(|| panic!("disc {name} in {list}"))
}

fn status(env: &TestEnv) -> Value {
    json(&ok(stage(env, &["status", "--json"]), "status"))
}

fn available(env: &TestEnv, d: i64) -> bool {
    env.catalog()
        .query_row("SELECT available FROM discs WHERE id=?1", [d], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
        != 0
}

fn cmd(name: &str) -> Command {
    let mut c = Command::new(bin(name));
    c.arg("--no-progress")
        .env_remove("DBACKUP_WORKDIR")
        .env_remove("FAILPOINTS")
        .env_remove("DBACKUP_NOW");
    c
}

fn lost(env: &TestEnv, args: &[&str]) -> Output {
    cmd("dbackup-lost")
        .arg("-w")
        .arg(&env.workdir)
        .args(args)
        .output()
        .unwrap()
}

/// `dbackup-verify -d DISC --record WORKDIR ARGS`, at `now` if given.
fn verify_record(env: &TestEnv, discs: &[&Path], args: &[&str], now: Option<&str>) -> Output {
    let mut c = cmd("dbackup-verify");
    for d in discs {
        c.arg("-d").arg(d);
    }
    c.arg("--record").arg(&env.workdir).args(args);
    if let Some(t) = now {
        c.env("DBACKUP_NOW", t);
    }
    c.output().unwrap()
}

fn due(env: &TestEnv, now: &str) -> (Option<i32>, Value) {
    let out = cmd("dbackup-verify")
        .args(["--due", "--json", "-w"])
        .arg(&env.workdir)
        .env("DBACKUP_NOW", now)
        .output()
        .unwrap();
    (out.status.code(), json(&out))
}

fn due_list(v: &Value) -> Vec<(String, i64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["disc"].as_str().unwrap().to_string(),
                d["copy"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// A copy of disc `n`'s image outside the workdir, as a burned copy read
/// back would be.
fn copy_of(env: &TestEnv, n: i64, name: &str) -> PathBuf {
    let dir = env.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let to = dir.join(format!("disc-{n}.iso"));
    std::fs::copy(env.workdir.join(format!("isos/disc-{n}.iso")), &to).unwrap();
    to
}

/// Now, as whole Unix seconds (rounded up, so what was made before this
/// call is before it), plus `days`.
fn days_from_now(days: f64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    format!("{}", (now + days * 86_400.0).ceil() as i64 + 1)
}

#[test]
fn copies_are_added_moved_lost_and_found_and_the_list_says_so() {
    let env = full_discs(3, &["--copies", "2"]);
    let list = copies(&env);
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    for d in ["1", "2", "3"] {
        assert_eq!(disc(&list, d)["held"], 0);
        assert_eq!(disc(&list, d)["below_policy"], true);
    }
    let st = status(&env);
    assert_eq!(st["Copies_policy"], 2);
    assert_eq!(st["Discs_below_copies"], "1-3");

    let out = ok(
        stage(&env, &["copies", "add", "1", "--location", "home shelf"]),
        "add",
    );
    assert!(text(&out.stdout).contains("disc 1 copy 1 recorded at home shelf"));
    ok(
        stage(
            &env,
            &[
                "copies",
                "add",
                "1",
                "--location",
                "office",
                "--medium",
                "BD-R",
            ],
        ),
        "add",
    );
    ok(stage(&env, &["copies", "add", "2"]), "add");
    ok(
        stage(
            &env,
            &["copies", "move", "1", "2", "--location", "bank vault"],
        ),
        "move",
    );
    let list = copies(&env);
    let one = disc(&list, "1");
    assert_eq!(one["held"], 2);
    assert_eq!(one["below_policy"], false);
    assert_eq!(one["copies"][1]["location"], "bank vault");
    assert_eq!(one["copies"][1]["medium"], "BD-R");
    assert_eq!(one["copies"][0]["how"], "added");
    assert_eq!(status(&env)["Discs_below_copies"], "2,3");

    // A copy lost with another held: the disc is still held.
    let out = ok(stage(&env, &["copies", "lost", "1", "1"]), "lost");
    assert!(
        text(&out.stdout).contains("still held: copy 2 at bank vault"),
        "{}",
        text(&out.stdout)
    );
    assert!(available(&env, 1));
    // A data disc's last copy is lost with the disc, by dbackup-lost
    // (which first abandons split files still staged onto it).
    let out = stage(&env, &["copies", "lost", "2", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("dbackup-lost 2 --copy 1"),
        "{}",
        text(&out.stderr)
    );
    assert!(available(&env, 2));
    ok(lost(&env, &["2", "--copy", "1"]), "lost");
    assert!(!available(&env, 2));
    assert!(disc(&copies(&env), "2")["copies"][0]["lost"].is_number());
    assert_eq!(status(&env)["Lost_discs"], serde_json::json!([2]));
    // Found again with its copy.
    ok(stage(&env, &["copies", "found", "2", "1"]), "found");
    assert!(available(&env, 2));

    // Clear errors, nothing changed.
    let before = copies(&env);
    for (args, says) in [
        (vec!["copies", "add", "9"], "not a closed disc"),
        (vec!["copies", "add", "parity-1-1"], "not a closed disc"),
        (vec!["copies", "add", "x"], "is not a disc"),
        (vec!["copies", "lost", "1", "7"], "has no copy 7"),
        (vec!["copies", "lost", "1", "1"], "already marked lost"),
        (vec!["copies", "found", "1", "2"], "not marked lost"),
        (vec!["config", "copies", "0"], "1 to 100"),
        (vec!["config", "check-every", "12"], "unit"),
    ] {
        let out = stage(&env, &args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stdout)
        );
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(copies(&env), before);
    ok(stage(&env, &["config", "copies", "1"]), "config");
    ok(stage(&env, &["config", "check-every", "6m"]), "config");
    let shown = text(&ok(stage(&env, &["config"]), "config").stdout);
    assert!(shown.contains("copies: 1\n"), "{shown}");
    assert!(shown.contains("check_every: 6m\n"), "{shown}");
    assert_eq!(status(&env)["Discs_below_copies"], "3");
}

#[test]
fn dbackup_lost_loses_a_copy_and_the_disc_only_with_its_last() {
    let env = full_discs(2, &[]);
    add_copies(
        &env,
        &[("1", "home"), ("1", "office drawer"), ("2", "home")],
    );
    // Which copy? Refused, nothing marked.
    let out = lost(&env, &["1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("copy 1 at home, copy 2 at office drawer"),
        "{err}"
    );
    assert!(err.contains("--copy"), "{err}");
    assert!(available(&env, 1));
    // What if: says so, marks nothing.
    let out = ok(lost(&env, &["1", "--copy", "1", "--what-if"]), "what-if");
    assert!(text(&out.stdout).contains("would be marked lost"));
    assert_eq!(disc(&copies(&env), "1")["held"], 2);
    // One copy of two: the disc is still held, nothing is lost.
    let out = ok(lost(&env, &["1", "--copy", "1", "--json"]), "lost copy");
    let r = json(&out);
    assert_eq!(r["still_held"]["disc"], 1);
    assert_eq!(r["still_held"]["held"][0]["location"], "office drawer");
    assert_eq!(r["unrecoverable"], serde_json::json!([]));
    assert!(available(&env, 1));
    let out = lost(&env, &["1", "--copy", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("already marked lost"));
    // The last copy: the disc is lost, and the report says what it cost
    // (the origin still holds the file: re-protectable).
    let out = lost(&env, &["1", "--copy", "2", "--json"]);
    let r = json(&out);
    assert!(r.get("still_held").is_none(), "{r}");
    assert_eq!(r["marked"], true);
    assert_eq!(r["totals"]["reprotectable"]["files"], 1, "{r}");
    assert!(!available(&env, 1));
    // A disc in one copy: `dbackup-lost N` loses that copy with it.
    ok(lost(&env, &["2"]), "lost 2");
    assert!(!available(&env, 2));
    let two = disc(&copies(&env), "2").clone();
    assert!(two["copies"][0]["lost"].is_number(), "{two}");
    // A parity disc is not lost this way: the message says what to do.
    let out = lost(&env, &["parity-1-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("copies lost parity-1-1 COPY"),
        "{}",
        text(&out.stderr)
    );
    // Found again with a copy.
    ok(lost(&env, &["2", "--found", "--copy", "1"]), "found");
    assert!(available(&env, 2));
    assert_eq!(disc(&copies(&env), "2")["held"], 1);
}

#[test]
fn checks_are_recorded_and_fall_due_on_schedule() {
    let env = full_discs(2, &[]);
    add_copies(&env, &[("1", "home"), ("1", "office"), ("2", "home")]);
    // Copies added by hand were never read back: all due at once, in the
    // order they were made.
    let (code, list) = due(&env, &days_from_now(0.0));
    assert_eq!(code, Some(1), "{list}");
    assert_eq!(
        due_list(&list),
        vec![("1".into(), 1), ("1".into(), 2), ("2".into(), 1)]
    );
    assert_eq!(status(&env)["Checks_due"], 3);

    let c1 = copy_of(&env, 1, "home");
    let out = ok(
        verify_record(&env, &[&c1], &["--copy", "1"], None),
        "verify copy 1",
    );
    assert!(
        text(&out.stdout).contains("disc 1 copy 1: recorded good"),
        "{}",
        text(&out.stdout)
    );
    // Disc 2's only copy is taken without --copy.
    let c2 = copy_of(&env, 2, "home");
    let out = ok(verify_record(&env, &[&c2], &["--json"], None), "verify 2");
    assert_eq!(json(&out)["recorded"][0]["copy"], 1);
    // Disc 1 has two copies: without --copy the check counts for none;
    // the workdir's own image is never a copy.
    let out = ok(verify_record(&env, &[&c1], &[], None), "verify");
    assert!(text(&out.stdout).contains("counted for no copy: it has 2 copies held"));
    let image = env.workdir.join("isos/disc-1.iso");
    let out = ok(verify_record(&env, &[&image], &[], None), "verify image");
    assert!(text(&out.stdout).contains("the workdir's own image was read"));

    let (_, list) = due(&env, &days_from_now(1.0));
    assert_eq!(due_list(&list), vec![("1".into(), 2)]);
    assert_eq!(list[0]["location"], "office");
    let listed = text(&ok(stage(&env, &["copies"]), "copies").stdout);
    assert!(listed.contains("never"), "{listed}");
    // Thirteen months on, the checked copies are due too, oldest first.
    let (_, list) = due(&env, &days_from_now(400.0));
    assert_eq!(
        due_list(&list),
        vec![("1".into(), 2), ("1".into(), 1), ("2".into(), 1)]
    );
    assert!(list[1]["last_good_check"].is_number());
    // With checks every two years they are not.
    ok(stage(&env, &["config", "check_every", "2y"]), "config");
    let (_, list) = due(&env, &days_from_now(400.0));
    assert_eq!(due_list(&list), vec![("1".into(), 2)]);
    // Nothing due: exit 0, and no words off a terminal.
    let out = ok(
        verify_record(&env, &[&c1], &["--copy", "2"], None),
        "verify",
    );
    let _ = out;
    let (code, list) = due(&env, &days_from_now(400.0));
    assert_eq!((code, list), (Some(0), serde_json::json!([])));
    let out = cmd("dbackup-verify")
        .args(["--due", "-w"])
        .arg(&env.workdir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_check_of_another_set_or_without_a_workdir_is_refused_and_records_nothing() {
    let a = full_discs(1, &[]);
    let b = full_discs(1, &[]);
    let iso = copy_of(&b, 1, "b");
    let out = verify_record(&a, &[&iso], &[], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("not of the workdir's set"),
        "{}",
        text(&out.stderr)
    );
    let n: i64 = a
        .catalog()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name='checks'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    if n == 1 {
        let rows: i64 = a
            .catalog()
            .query_row("SELECT count(*) FROM checks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0);
    }
    let out = cmd("dbackup-verify")
        .arg("-d")
        .arg(&iso)
        .arg("--record")
        .arg(a.dir.path().join("nowhere"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a dbackup workdir"),
        "{}",
        text(&out.stderr)
    );
    let out = cmd("dbackup-verify")
        .arg("-d")
        .arg(&iso)
        .args(["--time-limit", "5m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--time-limit needs --record");
}

/// A damaged copy is recorded as such, its check says what can save it
/// (the other copy and where it is, the image in the workdir, the parity
/// group), and it stays due.
#[test]
fn a_damaged_copy_is_recorded_with_what_can_save_it() {
    let env = full_discs(2, &["--parity", "2+1"]);
    assert!(env.workdir.join("isos/parity-1-1.iso").is_file());
    add_copies(&env, &[("1", "home"), ("1", "office")]);
    // Copy 1 read back as a folder whose file rotted.
    let folder = env.dir.path().join("copy1");
    std::fs::create_dir_all(&folder).unwrap();
    bsdtar_extract(&env.workdir.join("isos/disc-1.iso"), &folder);
    let file = folder.join("files/0/1");
    let mut data = std::fs::read(&file).unwrap();
    data[1000] ^= 0xff;
    std::fs::write(&file, &data).unwrap();
    let out = verify_record(&env, &[&folder], &["--copy", "1"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("disc 1 copy 1: recorded DAMAGED (1 damaged"),
        "{said}"
    );
    assert!(said.contains("another copy: copy 2 at office"), "{said}");
    assert!(said.contains("its image is still in the workdir"), "{said}");
    assert!(said.contains("its parity group 1"), "{said}");
    let out = verify_record(&env, &[&folder], &["--copy", "1", "--json"], None);
    let r = json(&out);
    let rec = &r["recorded"][0];
    assert_eq!(rec["good"], false);
    assert_eq!(rec["result"]["damaged"], 1);
    assert!(rec["remedies"].as_array().unwrap().len() >= 3, "{rec}");
    let list = copies(&env);
    let c1 = &disc(&list, "1")["copies"][0];
    assert_eq!(c1["last_check"]["good"], false);
    assert_eq!(c1["last_check"]["names"][0], "/f00");
    let (_, due) = due(&env, &days_from_now(0.0));
    let d = due
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["disc"] == "1" && d["copy"] == 1)
        .cloned()
        .unwrap();
    assert_eq!(d["damaged"], true);
    // The parity disc has copies too.
    ok(stage(&env, &["copies", "add", "parity-1-1"]), "add parity");
    let p = copy_of_named(&env, "parity-1-1.iso", "p");
    let out = ok(
        verify_record(&env, &[&p], &["--json"], None),
        "verify parity",
    );
    assert_eq!(json(&out)["recorded"][0]["disc"], "parity-1-1");
    assert_eq!(json(&out)["recorded"][0]["copy"], 1);
}

fn copy_of_named(env: &TestEnv, image: &str, dir: &str) -> PathBuf {
    let d = env.dir.path().join(dir);
    std::fs::create_dir_all(&d).unwrap();
    let to = d.join(image);
    std::fs::copy(env.workdir.join("isos").join(image), &to).unwrap();
    to
}

/// A time-limited check stops cleanly, records where it stopped, and the
/// next run goes on from there (the unfinished disc first): in the end
/// every file was read once and the copy's check is complete and good.
#[cfg(feature = "failpoints")]
#[test]
fn a_time_limited_check_stops_and_the_next_run_goes_on() {
    let env = TestEnv::new();
    for i in 0..30 {
        env.write(format!("a/f{i:02}"), &bytes_of(100 + i, 5000));
    }
    env.init(&["--disc-size", DISC]);
    ok(env.run(&["monitor"]), "monitor");
    ok(env.run(&["close"]), "close");
    for i in 0..2 {
        env.write(format!("g{i}"), &bytes_of(200 + i, FULL));
    }
    ok(env.run(&["monitor"]), "monitor");
    ok(env.run(&["close"]), "close");
    let folder = env.workdir.join("isos");
    let copies_dir = env.dir.path().join("copies");
    std::fs::create_dir_all(&copies_dir).unwrap();
    let mut discs = Vec::new();
    for entry in std::fs::read_dir(&folder).unwrap() {
        let p = entry.unwrap().path();
        let to = copies_dir.join(p.file_name().unwrap());
        std::fs::copy(&p, &to).unwrap();
        let n: String = p.file_stem().unwrap().to_string_lossy()[5..].to_string();
        ok(stage(&env, &["copies", "add", &n]), "add");
        discs.push(to);
    }
    assert!(discs.len() >= 3, "{discs:?}");
    let files_on_1 = 30;
    // Slowed: five files a batch, 400 ms before each; a second's limit.
    let out = cmd("dbackup-verify")
        .arg("-d")
        .arg(&copies_dir)
        .arg("--record")
        .arg(&env.workdir)
        .args(["--time-limit", "1s", "--json"])
        .env(
            "FAILPOINTS",
            "verify::batch_files=return(5);verify::batch=sleep(400)",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r = json(&out);
    let first = &r["discs"][0];
    assert_eq!(first["disc"], 1, "never checked: in disc order: {r}");
    let stopped = first["stopped_at"].as_u64().expect("stopped on disc 1");
    assert!(stopped < files_on_1, "{r}");
    assert!(
        !r["not_begun"].as_array().unwrap().is_empty(),
        "the other discs were not begun: {r}"
    );
    assert_eq!(r["recorded"][0]["complete"], false);
    let (_, list) = due(&env, &days_from_now(0.0));
    assert!(
        due_list(&list).contains(&("1".into(), 1)),
        "an unfinished check is no good check: {list}"
    );
    // The next run goes on with disc 1 where it stopped.
    let out = ok(
        verify_record(
            &env,
            &[&copies_dir],
            &["--time-limit", "1h", "--json"],
            None,
        ),
        "go on",
    );
    let r = json(&out);
    let first = &r["discs"][0];
    assert_eq!(first["disc"], 1, "{r}");
    assert_eq!(first["resumed_from"], stopped, "{r}");
    assert_eq!(first["ok"], files_on_1 - stopped);
    let rec = &r["recorded"][0];
    assert_eq!(rec["complete"], true);
    assert_eq!(rec["good"], true);
    assert_eq!(rec["result"]["files_ok"], files_on_1, "{rec}");
    assert_eq!(r["recorded"].as_array().unwrap().len(), discs.len());
    let (_, list) = due(&env, &days_from_now(0.0));
    assert_eq!(list, serde_json::json!([]));
    // Disc 1 checked again alone: the next time-limited run of them all
    // takes the discs checked longest ago first, disc 1 last.
    let one = copies_dir.join("disc-1.iso");
    ok(verify_record(&env, &[&one], &[], None), "disc 1 alone");
    let out = ok(
        verify_record(
            &env,
            &[&copies_dir],
            &["--time-limit", "1h", "--json"],
            None,
        ),
        "round",
    );
    let r = json(&out);
    let order: Vec<i64> = r["discs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["disc"].as_i64().unwrap())
        .collect();
    assert_eq!(order, vec![2, 3, 1]);
}

/// Printing never changes the work: a check is recorded with stdout closed.
#[test]
fn a_check_is_recorded_with_stdout_closed() {
    let env = full_discs(1, &[]);
    ok(stage(&env, &["copies", "add", "1"]), "add");
    let c1 = copy_of(&env, 1, "c");
    let mut c = cmd("dbackup-verify");
    c.arg("-d").arg(&c1).arg("--record").arg(&env.workdir);
    let (code, _) = with_closed_output(c, false);
    assert_eq!(code, Some(0));
    let (_, list) = due(&env, &days_from_now(0.0));
    assert_eq!(list, serde_json::json!([]));
}

mod model {
    //! The due list and the policy against a model, over generated
    //! shelves: copies made, lost and found and checks recorded at random
    //! times, through the library on a real catalogue.

    use std::collections::BTreeMap;

    use dbackup::catalog::copies::{CheckRow, NewCopy};
    use dbackup::copies::{CheckResult, DiscName, Shelf};
    use dbackup::workdir::{self, InitOptions, Workdir};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// A copy of disc d, made at t.
        Add(i64, u32),
        /// Copy k (mod the copies of d) of disc d lost.
        Lose(i64, usize),
        /// Copy k of disc d found.
        Find(i64, usize),
        /// A check of copy k of disc d at t: complete?, good?
        Check(i64, usize, u32, bool, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1i64..=3, 0u32..1000).prop_map(|(d, t)| Op::Add(d, t)),
            (1i64..=3, 0usize..4).prop_map(|(d, k)| Op::Lose(d, k)),
            (1i64..=3, 0usize..4).prop_map(|(d, k)| Op::Find(d, k)),
            (
                1i64..=3,
                0usize..4,
                0u32..1000,
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(|(d, k, t, c, g)| Op::Check(d, k, t, c, g)),
        ]
    }

    /// A copy in the model: made, lost, last good check.
    #[derive(Debug, Clone)]
    struct M {
        copy: i64,
        made: f64,
        lost: bool,
        good: Option<f64>,
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn the_due_list_is_every_held_copy_past_its_schedule_most_overdue_first(
            ops in proptest::collection::vec(op(), 0..40),
            policy in 1u64..4,
            now in 0u32..3000,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let watched = dir.path().join("w");
            std::fs::create_dir(&watched).unwrap();
            workdir::init(&InitOptions {
                workdir: dir.path().join("wd"),
                watched,
                disc_size: 1 << 20,
                excludes: vec![],
                name: None,
                ecc: false,
                on_disc_ready: None,
                parity: None,
                copies: Some(policy),
            })
            .unwrap();
            let mut wd = Workdir::open_read(&dir.path().join("wd")).unwrap();
            for _ in 0..3 {
                let open = wd.catalog.open_disc().unwrap().unwrap();
                wd.catalog.complete_disc(open).unwrap();
                wd.catalog.start_disc().unwrap();
            }
            wd.catalog.set_setting_text("check_every", "500d").unwrap();
            let day = 86_400.0;
            let mut model: BTreeMap<i64, Vec<M>> = BTreeMap::new();
            for o in &ops {
                match *o {
                    Op::Add(d, t) => {
                        let name = DiscName::Data(d);
                        let n = wd.catalog.add_copy(&name, &NewCopy {
                            made: f64::from(t) * day,
                            how: "added",
                            ..Default::default()
                        }).unwrap();
                        model.entry(d).or_default().push(M { copy: n, made: f64::from(t) * day, lost: false, good: None });
                    }
                    Op::Lose(d, k) | Op::Find(d, k) => {
                        let Some(v) = model.get_mut(&d).filter(|v| !v.is_empty()) else { continue };
                        let len = v.len();
                        let m = &mut v[k % len];
                        let lose = matches!(o, Op::Lose(..));
                        wd.catalog.set_copy_lost(&DiscName::Data(d), m.copy, lose.then_some(1.0)).unwrap();
                        m.lost = lose;
                    }
                    Op::Check(d, k, t, complete, good) => {
                        let Some(v) = model.get_mut(&d).filter(|v| !v.is_empty()) else { continue };
                        let len = v.len();
                        let m = &mut v[k % len];
                        let at = f64::from(t) * day;
                        wd.catalog.add_check(&CheckRow {
                            id: 0,
                            disc: DiscName::Data(d),
                            copy: Some(m.copy),
                            started: at,
                            checked: at,
                            complete,
                            result: CheckResult { files_ok: 1, damaged: u64::from(!good), ..Default::default() },
                            names: vec![],
                            next_file: 0,
                            how: "verify".into(),
                            source: None,
                        }).unwrap();
                        if complete && good {
                            m.good = Some(m.good.map_or(at, |g: f64| g.max(at)));
                        }
                    }
                }
            }
            let shelf = Shelf::read(&wd).unwrap();
            let now = f64::from(now) * day;
            let got: Vec<(i64, i64)> = shelf
                .due(now)
                .iter()
                .map(|(d, c)| (match d.disc { DiscName::Data(n) => n, _ => 0 }, c.copy.copy))
                .collect();
            let mut want: Vec<(f64, i64, i64)> = model
                .iter()
                .flat_map(|(d, v)| v.iter().map(move |m| (*d, m)))
                .filter(|(_, m)| !m.lost)
                .map(|(d, m)| (m.good.map_or(m.made, |g| g + 500.0 * day), d, m.copy))
                .filter(|(due, _, _)| *due <= now)
                .collect();
            want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            let want: Vec<(i64, i64)> = want.into_iter().map(|(_, d, c)| (d, c)).collect();
            prop_assert_eq!(got, want);
            // The policy: a disc is below it with fewer copies held.
            for d in 1..=3i64 {
                let held = model.get(&d).map_or(0, |v| v.iter().filter(|m| !m.lost).count()) as u64;
                let listed = shelf.below_policy().iter().any(|x| x.disc == DiscName::Data(d));
                prop_assert_eq!(listed, held < policy, "disc {}", d);
            }
        }
    }
}

/// Two copies of one disc read in the same run cannot both be the copy
/// `--copy` names (nor both the disc's only copy): neither check counts
/// for a copy, so a damaged one is never recorded as the copy found good.
#[test]
fn a_disc_given_twice_in_one_run_counts_for_no_copy() {
    let env = full_discs(1, &[]);
    ok(stage(&env, &["copies", "add", "1"]), "add");
    ok(stage(&env, &["copies", "add", "1"]), "add");
    let a = copy_of(&env, 1, "a");
    let b = copy_of(&env, 1, "b");
    for args in [&["--copy", "2", "--json"][..], &["--json"][..]] {
        let out = ok(verify_record(&env, &[&a, &b], args, None), "verify");
        let r = json(&out);
        let rec = r["recorded"].as_array().unwrap();
        assert_eq!(rec.len(), 2, "{r}");
        for k in rec {
            assert!(k["copy"].is_null(), "{k}");
            assert!(k["note"].as_str().unwrap().contains("given 2 times"), "{k}");
        }
    }
    // A single copy of disc 1: given twice, still neither is it.
    ok(stage(&env, &["copies", "lost", "1", "2"]), "lost");
    let out = ok(verify_record(&env, &[&a, &b], &["--json"], None), "verify");
    assert!(json(&out)["recorded"][0]["copy"].is_null());
    let list = copies(&env);
    for c in disc(&list, "1")["copies"].as_array().unwrap() {
        assert!(c["last_check"].is_null(), "{c}");
    }
}

/// A location is the user's text, printed back by every copies command:
/// control characters (a newline, an escape sequence) are escaped, so a
/// line stays one line and nothing reaches the terminal as a command.
#[test]
fn a_location_with_control_characters_is_printed_escaped() {
    let env = full_discs(1, &[]);
    let odd = "shelf\n\t\u{1b}[2Jx";
    for args in [
        &["copies", "add", "1", "--location", odd][..],
        &["copies", "add", "1", "--location", "home"][..],
        &["copies", "move", "1", "2", "--location", odd][..],
        &["copies", "lost", "1", "1"][..],
    ] {
        let out = ok(stage(&env, args), "copies");
        let said = text(&out.stdout);
        assert!(!said.contains('\u{1b}'), "{args:?}: {said:?}");
        assert_eq!(said.trim_end().lines().count(), 1, "{args:?}: {said:?}");
    }
    // Kept as given.
    assert_eq!(disc(&copies(&env), "1")["copies"][1]["location"], odd);
}

/// A disc of the original dBackup carries no set UUID: one of another
/// set is told from ours by its first disc's start, and is not recorded
/// as a check of our disc of the same number.
#[test]
fn a_disc_of_another_original_set_is_not_recorded() {
    let env = full_discs(1, &[]);
    ok(stage(&env, &["copies", "add", "1"]), "add");
    let other = original_set(
        &env.dir.path().join("elsewhere"),
        &[vec![("/x.jpg", b"someone else's".to_vec())]],
    );
    let out = verify_record(&env, &[&other[0]], &["--json"], None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("not of the workdir's set"),
        "{}",
        text(&out.stderr)
    );
    let list = copies(&env);
    assert!(
        disc(&list, "1")["copies"][0]["last_check"].is_null(),
        "{list}"
    );
}

/// The copies and checks tables describe media, not data: a row edited by
/// hand into one that names no disc is left out, and `status`, the list
/// and the due list still work (no advice to replace the catalogue).
#[test]
fn a_copy_or_check_row_naming_no_disc_is_left_out() {
    let env = full_discs(1, &[]);
    ok(stage(&env, &["copies", "add", "1"]), "add");
    let c1 = copy_of(&env, 1, "c");
    ok(verify_record(&env, &[&c1], &[], None), "verify");
    env.catalog()
        .execute_batch(
            "INSERT INTO copies VALUES('bogus', 1, 0, 'added', NULL, NULL, NULL, NULL);
             INSERT INTO checks(disc, copy, started, checked, complete, files_ok, damaged,
                 unreadable, missing, names, next_file, how, source)
             VALUES('-1', 1, 0, 0, 1, 0, 0, 0, 0, 'not json', 0, 'verify', NULL);",
        )
        .unwrap();
    let st = status(&env);
    assert_eq!(st["Checks_due"], 0, "{st}");
    let list = copies(&env);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert!(disc(&list, "1")["copies"][0]["last_good_check"].is_number());
    let (code, due) = due(&env, &days_from_now(0.0));
    assert_eq!((code, due), (Some(0), serde_json::json!([])));
    ok(verify_record(&env, &[&c1], &[], None), "verify again");
}

/// `copies lost` sends the loss of a data disc's last copy to
/// `dbackup-lost N --copy C`, which "with --restage protects again what
/// can be": that command line works, and stages the disc's files again.
#[test]
fn the_last_copy_is_lost_with_restage_as_copies_lost_advises() {
    let env = full_discs(1, &[]);
    ok(stage(&env, &["copies", "add", "1"]), "add");
    let out = stage(&env, &["copies", "lost", "1", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("dbackup-lost 1 --copy 1"),
        "{}",
        text(&out.stderr)
    );
    let out = lost(&env, &["1", "--copy", "1", "--restage", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!available(&env, 1));
    let list = copies(&env);
    let c = &disc(&list, "1")["copies"][0];
    assert!(c["lost"].is_number(), "{c}");
    let r = json(&out);
    assert!(r.to_string().contains("restag"), "{r}");
}

/// The last copy of a parity disc lost: the message offers its image in
/// `isos/` only while it is there.
#[test]
fn a_parity_disc_s_last_copy_lost_offers_its_image_only_if_there() {
    let env = full_discs(2, &["--parity", "2+1"]);
    let image = env.workdir.join("isos/parity-1-1.iso");
    assert!(image.is_file());
    ok(stage(&env, &["copies", "add", "parity-1-1"]), "add");
    ok(stage(&env, &["copies", "add", "parity-1-1"]), "add");
    let out = ok(stage(&env, &["copies", "lost", "parity-1-1", "1"]), "lost");
    let _ = out;
    std::fs::remove_file(&image).unwrap();
    let out = ok(stage(&env, &["copies", "lost", "parity-1-1", "2"]), "lost");
    let said = text(&out.stdout);
    assert!(!said.contains("can be burned again"), "{said}");
    assert!(said.contains("no longer in isos/"), "{said}");
}

/// A copy's unfinished check is gone on with only when that copy is read
/// again: the workdir's own image given beside another disc's copy is
/// read whole, not from where the copy's check stopped.
#[cfg(feature = "failpoints")]
#[test]
fn the_workdir_s_image_beside_a_copy_does_not_go_on_from_the_copy_s_check() {
    let env = TestEnv::new();
    for i in 0..30 {
        env.write(format!("a/f{i:02}"), &bytes_of(100 + i, 5000));
    }
    env.init(&["--disc-size", DISC]);
    ok(env.run(&["monitor"]), "monitor");
    ok(env.run(&["close"]), "close");
    env.write("g", &bytes_of(300, FULL));
    ok(env.run(&["monitor"]), "monitor");
    ok(env.run(&["close"]), "close");
    ok(stage(&env, &["copies", "add", "1"]), "add");
    ok(stage(&env, &["copies", "add", "2"]), "add");
    let c1 = copy_of(&env, 1, "c1");
    let out = cmd("dbackup-verify")
        .arg("-d")
        .arg(&c1)
        .arg("--record")
        .arg(&env.workdir)
        .args(["--time-limit", "1s", "--json"])
        .env(
            "FAILPOINTS",
            "verify::batch_files=return(5);verify::batch=sleep(400)",
        )
        .output()
        .unwrap();
    let r = json(&out);
    assert!(r["discs"][0]["stopped_at"].as_u64().is_some(), "{r}");
    let image = env.workdir.join("isos/disc-1.iso");
    let c2 = copy_of(&env, 2, "c2");
    let out = ok(
        verify_record(&env, &[&image, &c2], &["--json"], None),
        "image and a copy",
    );
    let r = json(&out);
    let one = r["discs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["disc"] == 1)
        .unwrap();
    assert_eq!(one["resumed_from"], 0, "{r}");
    assert_eq!(one["ok"], 30, "{r}");
}

/// `dbackup-lost N` loses a disc held in one copy with that copy; found
/// again with `dbackup-lost N --found`, the copy is found with it, so the
/// disc is held and stays on the check schedule.
#[test]
fn a_disc_lost_with_its_only_copy_is_found_with_it() {
    let env = full_discs(2, &[]);
    ok(stage(&env, &["copies", "add", "1"]), "add");
    ok(lost(&env, &["1"]), "lost");
    assert!(!available(&env, 1));
    assert!(disc(&copies(&env), "1")["copies"][0]["lost"].is_number());
    ok(lost(&env, &["1", "--found"]), "found");
    assert!(available(&env, 1));
    let list = copies(&env);
    assert_eq!(disc(&list, "1")["held"], 1, "{list}");
    assert!(disc(&list, "1")["copies"][0]["lost"].is_null(), "{list}");
    // Two copies lost one by one: which was found must be said.
    ok(stage(&env, &["copies", "add", "2"]), "add");
    ok(stage(&env, &["copies", "add", "2"]), "add");
    ok(lost(&env, &["2", "--copy", "1"]), "lost copy 1");
    ok(lost(&env, &["2", "--copy", "2"]), "lost copy 2");
    assert!(!available(&env, 2));
    let out = lost(&env, &["2", "--found"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("--copy"),
        "{}",
        text(&out.stderr)
    );
    assert!(!available(&env, 2), "nothing changed");
    ok(lost(&env, &["2", "--found", "--copy", "2"]), "found copy 2");
    assert!(available(&env, 2));
}

/// Time-limited checks stopped at any batches, run after run, read every
/// file of the disc exactly once and end in one complete, good check.
#[cfg(feature = "failpoints")]
mod stopped_anywhere {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
        #[test]
        fn the_runs_together_read_each_file_once(
            files in 3usize..25,
            batch in 1usize..6,
            stops in proptest::collection::vec(0usize..4, 1..8),
        ) {
            let env = TestEnv::new();
            for i in 0..files {
                env.write(format!("a/f{i:02}"), &bytes_of(500 + i as u64, 3000));
            }
            env.init(&["--disc-size", DISC]);
            ok(env.run(&["monitor"]), "monitor");
            ok(env.run(&["close"]), "close");
            ok(env.run(&["copies", "add", "1"]), "add");
            let copy = copy_of(&env, 1, "c");
            let mut read = 0u64;
            // Bounded by the stops, then one run that is not stopped.
            for k in stops.iter().map(Some).chain([None]) {
                let mut c = cmd("dbackup-verify");
                c.arg("-d").arg(&copy).arg("--record").arg(&env.workdir)
                    .args(["--time-limit", "1d", "--json"]);
                let mut fp = format!("verify::batch_files=return({batch})");
                if let Some(k) = k {
                    fp.push_str(&format!(";verify::time_up={k}*off->return"));
                }
                c.env("FAILPOINTS", fp);
                let out = c.output().unwrap();
                prop_assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
                let r = json(&out);
                read += r["discs"][0]["ok"].as_u64().unwrap();
                let rec = &r["recorded"][0];
                if k.is_none() || rec["complete"] == true {
                    // Done: the next run would start a new check.
                    prop_assert_eq!(&rec["complete"], true);
                    prop_assert_eq!(&rec["good"], true);
                    prop_assert_eq!(rec["result"]["files_ok"].as_u64(), Some(files as u64));
                    break;
                }
            }
            prop_assert_eq!(read, files as u64, "each file read once over all the runs");
            let (_, list) = due(&env, &days_from_now(0.0));
            prop_assert_eq!(list, serde_json::json!([]));
        }
    }
}
