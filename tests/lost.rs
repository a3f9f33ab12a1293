//! dbackup-lost through the real binary: a set over several discs, a file
//! deleted, one renamed, one edited, one untouched, and disc 1 lost.

mod common;

use std::process::Output;

use common::*;

struct Scene {
    env: TestEnv,
}

fn scene() -> Scene {
    let env = TestEnv::new();
    env.write("deleted.jpg", b"only copy was on disc 1");
    env.write("renamed.jpg", b"content that moves");
    env.write("edited.txt", b"first draft");
    env.write("untouched.mp3", b"never changes");
    env.init(&["--name", "Scene"]);
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    std::fs::remove_file(env.watched.join("deleted.jpg")).unwrap();
    std::fs::rename(
        env.watched.join("renamed.jpg"),
        env.watched
            .join("moved/renamed.jpg")
            .parent()
            .map(|p| {
                std::fs::create_dir_all(p).unwrap();
                p.join("renamed.jpg")
            })
            .unwrap(),
    )
    .unwrap();
    env.write("edited.txt", b"second draft, longer");
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    Scene { env }
}

fn lost(env: &TestEnv, args: &[&str]) -> Output {
    env.tool("dbackup-lost").args(args).output().unwrap()
}

fn names_of(report: &serde_json::Value, category: &str) -> Vec<String> {
    report[category]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["filename"].as_str().unwrap().to_string())
        .collect()
}

fn available(env: &TestEnv, disc: i64) -> i64 {
    env.catalog()
        .query_row("SELECT available FROM discs WHERE id=?1", [disc], |r| {
            r.get(0)
        })
        .unwrap()
}

fn check_categories(report: &serde_json::Value) {
    assert_eq!(names_of(report, "unrecoverable"), ["/deleted.jpg"]);
    assert_eq!(names_of(report, "renamed"), ["/renamed.jpg"]);
    let note = report["renamed"][0]["note"].as_str().unwrap();
    assert!(note.contains("/moved/renamed.jpg"), "{note}");
    assert_eq!(names_of(report, "history_only"), ["/edited.txt"]);
    assert_eq!(names_of(report, "reprotectable"), ["/untouched.mp3"]);
    for cat in ["unrecoverable", "renamed", "reprotectable", "history_only"] {
        let e = &report[cat][0];
        for key in ["filename", "id", "size", "md5"] {
            assert!(!e[key].is_null(), "{cat}.{key}");
        }
    }
    assert_eq!(report["totals"]["unrecoverable"]["files"], 1);
    assert_eq!(report["totals"]["unrecoverable"]["bytes"], 23);
}

#[test]
fn what_if_reports_each_category_and_changes_nothing() {
    let s = scene();
    let before = std::fs::read(s.env.workdir.join("manifest.db")).unwrap();
    let out = lost(&s.env, &["1", "--what-if", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    check_categories(&report);
    assert_eq!(report["marked"], false);
    assert_eq!(available(&s.env, 1), 1);
    assert_eq!(
        std::fs::read(s.env.workdir.join("manifest.db")).unwrap(),
        before
    );
}

#[test]
fn marking_lost_then_restage_then_found() {
    let s = scene();
    let env = &s.env;
    let out = lost(env, &["1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Disc(s) 1 marked lost."), "{stdout}");
    assert!(stdout.contains("/deleted.jpg"), "{stdout}");
    assert_eq!(available(env, 1), 0);
    let st: serde_json::Value =
        serde_json::from_slice(&env.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(st["Lost_discs"][0], 1);

    let out = lost(env, &["1", "--restage", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    check_categories(&report);
    assert_eq!(report["restaged"], 1);
    let (desc, disc): (String, i64) = env
        .catalog()
        .query_row(
            "SELECT desc, disc_id FROM files WHERE filename='/untouched.mp3' ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(desc, "Re-staged: disc 1 lost");
    assert_eq!(disc, 3);
    // The next image holds it.
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    let dir = tempfile::tempdir().unwrap();
    bsdtar_extract(&env.workdir.join("isos/disc-3.iso"), dir.path());
    let id: i64 = env
        .catalog()
        .query_row(
            "SELECT max(id) FROM files WHERE filename='/untouched.mp3'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        std::fs::read(dir.path().join(format!("files/{}/{id}", id / 256))).unwrap(),
        b"never changes"
    );
    // Now it is history only: the newest version is safe.
    let out = lost(env, &["1", "--what-if", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(names_of(&report, "history_only").contains(&"/untouched.mp3".to_string()));
    assert!(names_of(&report, "reprotectable").is_empty());
    // A monitor does not stage it a third time.
    let out = env.run(&["monitor"]);
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    let out = lost(env, &["1", "--found"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(available(env, 1), 1);
}

#[test]
fn the_manifest_alone_gives_the_same_report() {
    let s = scene();
    let dir = tempfile::tempdir().unwrap();
    bsdtar_extract(&s.env.workdir.join("isos/disc-2.iso"), dir.path());
    let out = std::process::Command::new(bin("dbackup-lost"))
        .arg("--manifest")
        .arg(dir.path().join("manifest.db"))
        .arg("--origin")
        .arg(&s.env.watched)
        .args(["1", "--json", "--no-progress"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    check_categories(&report);
    // Reports only: --restage needs a workdir.
    let out = std::process::Command::new(bin("dbackup-lost"))
        .arg("--manifest")
        .arg(dir.path().join("manifest.db"))
        .arg("--origin")
        .arg(&s.env.watched)
        .args(["1", "--restage"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unknown_or_open_discs_are_refused_and_nothing_changes() {
    let s = scene();
    let before = std::fs::read(s.env.workdir.join("manifest.db")).unwrap();
    for (args, why) in [
        (vec!["9"], "there is no disc 9"),
        (vec!["3"], "disc 3 is still open"),
        (vec!["1", "3"], "disc 3 is still open"),
    ] {
        let out = lost(&s.env, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains(why), "{}", text(&out.stderr));
    }
    assert_eq!(available(&s.env, 1), 1);
    assert_eq!(
        std::fs::read(s.env.workdir.join("manifest.db")).unwrap(),
        before
    );
}

#[test]
fn losing_a_disc_whose_files_are_all_safe_exits_0() {
    let s = scene();
    // Disc 2 holds the edited version (origin unchanged) and the renamed
    // file (in the origin): nothing is unrecoverable.
    let out = lost(&s.env, &["2", "--what-if", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(names_of(&report, "unrecoverable").is_empty());
    assert_eq!(
        names_of(&report, "reprotectable"),
        ["/edited.txt", "/moved/renamed.jpg"]
    );
}

/// A newer version on a disc already marked lost supersedes nothing: with
/// disc 2 lost, losing disc 1 loses the first draft of `edited.txt` for
/// good (the origin holds only the second), and the renamed file is safe
/// only because the origin still holds it.
#[test]
fn a_newer_version_on_a_lost_disc_does_not_make_history_only() {
    let s = scene();
    let env = &s.env;
    let out = lost(env, &["2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = lost(env, &["1", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        names_of(&report, "unrecoverable"),
        ["/deleted.jpg", "/edited.txt"]
    );
    assert!(names_of(&report, "history_only").is_empty(), "{report}");
    assert_eq!(names_of(&report, "renamed"), ["/renamed.jpg"]);
    let note = report["renamed"][0]["note"].as_str().unwrap();
    assert!(note.contains("in the origin"), "{note}");
    assert_eq!(names_of(&report, "reprotectable"), ["/untouched.mp3"]);
    assert_eq!(report["lost_discs"], serde_json::json!([1, 2]));
}

mod model {
    //! Small catalogues where versions, whole or split over consecutive
    //! discs, sit on available, lost and open discs, checked against a
    //! reference model of the four categories.

    use std::collections::BTreeSet;
    use std::path::Path;

    use dbackup::lost::{self, LostOptions, Source};
    use dbackup::progress::Progress;
    use proptest::prelude::*;

    use super::common::md5_bytes;

    const NAMES: [&str; 3] = ["/f0", "/f1", "/sub/f2"];
    const CONTENTS: [&[u8]; 4] = [b"alpha", b"bravo", b"charlie!", b"delta delta"];
    const MTIME: i64 = 1_700_000_000;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum State {
        Available,
        Lost,
        Open,
    }

    #[derive(Debug, Clone, Copy)]
    struct V {
        name: usize,
        /// The disc of a whole file, or of a split one's first part.
        disc: usize,
        content: usize,
        /// 1: a whole file; more: parts on `disc`, `disc + 1`, ...
        parts: usize,
        /// A split version abandoned before its last part: no backup.
        abandoned: bool,
    }

    impl V {
        fn discs(&self) -> std::ops::Range<usize> {
            self.disc..self.disc + self.parts
        }
    }

    #[derive(Debug, Clone)]
    struct Case {
        discs: Vec<State>,
        /// In id order.
        versions: Vec<V>,
        /// What the origin holds at each name, and at `/elsewhere`.
        origin: Vec<Option<usize>>,
        elsewhere: Option<usize>,
        /// Which closed discs are lost now (one or two).
        named: Vec<prop::sample::Index>,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            prop::collection::vec(
                prop::sample::select(vec![State::Available, State::Lost, State::Open]),
                1..6,
            ),
            prop::collection::vec(
                (
                    0..NAMES.len(),
                    0..8usize,
                    0..CONTENTS.len(),
                    prop::sample::select(vec![1usize, 1, 2, 3]),
                    prop::bool::weighted(0.2),
                ),
                0..10,
            ),
            prop::collection::vec(prop::option::of(0..CONTENTS.len()), NAMES.len()),
            prop::option::of(0..CONTENTS.len()),
            prop::collection::vec(any::<prop::sample::Index>(), 1..3),
        )
            .prop_map(|(discs, versions, origin, elsewhere, named)| Case {
                versions: versions
                    .into_iter()
                    .map(|(name, d, content, parts, abandoned)| {
                        let disc = d % discs.len();
                        let parts = parts.min(discs.len() - disc);
                        V {
                            name,
                            disc,
                            content,
                            parts,
                            abandoned: abandoned && parts > 1,
                        }
                    })
                    .collect(),
                discs,
                origin,
                elsewhere,
                named,
            })
    }

    fn write_manifest(path: &Path, c: &Case) {
        let conn = rusqlite::Connection::open(path).unwrap();
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
        for (i, s) in c.discs.iter().enumerate() {
            let completed = (*s != State::Open).then_some(1_700_000_100.0 + i as f64);
            conn.execute(
                "INSERT INTO discs VALUES (?1, 1700000000.0, ?2, ?3)",
                rusqlite::params![i as i64 + 1, completed, (*s != State::Lost) as i64],
            )
            .unwrap();
        }
        for (id, v) in c.versions.iter().enumerate() {
            let id = id as i64 + 1;
            let data = CONTENTS[v.content];
            let split = v.parts > 1;
            let copied = !v.abandoned;
            conn.execute(
                "INSERT INTO files VALUES (?1, ?2, 1700000050.0, ?3, ?4, ?5, ?6, 'x', ?7)",
                rusqlite::params![
                    id,
                    NAMES[v.name],
                    copied.then(|| md5_bytes(data)),
                    data.len() as i64,
                    MTIME,
                    (!split).then_some(v.disc as i64 + 1),
                    copied as i64,
                ],
            )
            .unwrap();
            if !split {
                continue;
            }
            conn.execute(
                "INSERT INTO splits VALUES (?1, ?2, NULL)",
                rusqlite::params![id, if v.abandoned { "abandoned" } else { "complete" }],
            )
            .unwrap();
            // Parts as even as the bytes allow, the last holding the tail.
            let each = data.len() / v.parts;
            for k in 0..v.parts {
                let from = k * each;
                let to = if k + 1 == v.parts {
                    data.len()
                } else {
                    from + each
                };
                conn.execute(
                    "INSERT INTO parts VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)",
                    rusqlite::params![
                        id,
                        k as i64 + 1,
                        (v.disc + k) as i64 + 1,
                        from as i64,
                        (to - from) as i64,
                        md5_bytes(&data[from..to])
                    ],
                )
                .unwrap();
            }
        }
    }

    fn write_origin(root: &Path, c: &Case) {
        let put = |name: &str, content: usize| {
            let p = root.join(name.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, CONTENTS[content]).unwrap();
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(MTIME as u64);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        };
        for (n, held) in c.origin.iter().enumerate() {
            if let Some(content) = held {
                put(NAMES[n], *content);
            }
        }
        if let Some(content) = c.elsewhere {
            put("/elsewhere", content);
        }
    }

    /// The categories as the README defines them, by (name, id): a version
    /// is on the discs named when any of its discs is, held when none of
    /// its discs is lost; an abandoned split version is no backup at all.
    fn expected(c: &Case, named: &[usize]) -> [BTreeSet<(String, i64)>; 4] {
        let lost = |d: usize| named.contains(&d) || c.discs[d] == State::Lost;
        let held = |v: &V| !v.abandoned && !v.discs().any(lost);
        let mut out: [BTreeSet<(String, i64)>; 4] = Default::default();
        for (i, v) in c.versions.iter().enumerate() {
            if v.abandoned || !v.discs().any(|d| named.contains(&d)) {
                continue;
            }
            let key = (NAMES[v.name].to_string(), i as i64 + 1);
            let newer_held = c.versions[i + 1..]
                .iter()
                .any(|w| w.name == v.name && held(w));
            let same_content_held = c.versions.iter().any(|w| w.content == v.content && held(w));
            let in_origin = c.origin.contains(&Some(v.content)) || c.elsewhere == Some(v.content);
            let category = if newer_held {
                3
            } else if c.origin[v.name] == Some(v.content) {
                2
            } else if same_content_held || in_origin {
                1
            } else {
                0
            };
            out[category].insert(key);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn categories_follow_the_model(c in case()) {
            let closed: Vec<usize> = (0..c.discs.len())
                .filter(|&d| c.discs[d] != State::Open)
                .collect();
            prop_assume!(!closed.is_empty());
            let mut named: Vec<usize> =
                c.named.iter().map(|i| closed[i.index(closed.len())]).collect();
            named.sort_unstable();
            named.dedup();
            let dir = tempfile::tempdir().unwrap();
            let manifest = dir.path().join("manifest.db");
            let origin = dir.path().join("origin");
            std::fs::create_dir_all(&origin).unwrap();
            write_manifest(&manifest, &c);
            write_origin(&origin, &c);
            let report = lost::lost(
                &LostOptions {
                    source: Source::Manifest(manifest),
                    discs: named.iter().map(|&d| d as i64 + 1).collect(),
                    origin: Some(origin),
                    what_if: false,
                    restage: false,
                    found: false,
                    copy: None,
                },
                &Progress::hidden(),
            )
            .unwrap();
            prop_assert_eq!(report.invalid_rows, 0);
            let got = |entries: &[lost::Entry]| -> BTreeSet<(String, i64)> {
                entries
                    .iter()
                    .map(|e| (String::from_utf8_lossy(&e.filename).into_owned(), e.id))
                    .collect()
            };
            // Each version once, in one category, whatever number of its
            // discs is named.
            let all: Vec<i64> = [&report.unrecoverable, &report.renamed, &report.reprotectable, &report.history_only]
                .iter()
                .flat_map(|l| l.iter().map(|e| e.id))
                .collect();
            let distinct: BTreeSet<i64> = all.iter().copied().collect();
            prop_assert_eq!(all.len(), distinct.len(), "a version listed twice");
            let want = expected(&c, &named);
            prop_assert_eq!(got(&report.unrecoverable), want[0].clone(), "unrecoverable");
            prop_assert_eq!(got(&report.renamed), want[1].clone(), "renamed");
            prop_assert_eq!(got(&report.reprotectable), want[2].clone(), "reprotectable");
            prop_assert_eq!(got(&report.history_only), want[3].clone(), "history only");
            for e in report.unrecoverable.iter().chain(&report.history_only) {
                let v = c.versions[e.id as usize - 1];
                let discs: Vec<i64> = v.discs().map(|d| d as i64 + 1).collect();
                prop_assert_eq!(&e.discs, &discs);
            }
        }
    }
}

/// A reader that closes the pipe early (`| head`) does not hide loss: a
/// report with unrecoverable files exits 1 with stdout closed, and with
/// stdout and stderr both closed, as a table or as JSON.
#[test]
fn unrecoverable_is_exit_1_even_with_stdout_and_stderr_closed() {
    let s = scene();
    for close_stderr in [false, true] {
        for form in [&[][..], &["--json"][..]] {
            let mut cmd = s.env.tool("dbackup-lost");
            cmd.args(["1", "--what-if"]).args(form);
            let (code, stderr) = with_closed_output(cmd, close_stderr);
            assert_eq!(
                code,
                Some(1),
                "{form:?} stderr closed: {close_stderr}: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
}

/// Names with an escape sequence and a line break are shown escaped in
/// the report on stdout, in a pipe as on a terminal (cron mails a pipe),
/// notes included; `--json` keeps them exact.
#[test]
fn control_characters_in_names_are_escaped_in_the_report() {
    let env = TestEnv::new();
    let gone = "gone\x1b[2J\n.txt";
    let moved = "moved\x1b]0;x\x07.txt";
    env.write(gone, b"only copy");
    env.write(moved, b"moves away");
    env.init(&[]);
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    std::fs::remove_file(env.watched.join(gone)).unwrap();
    std::fs::rename(env.watched.join(moved), env.watched.join("new\x1b.txt")).unwrap();
    let out = lost(&env, &["1", "--what-if"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains('\x1b') && !stdout.contains('\x07'),
        "{stdout:?}"
    );
    assert!(stdout.contains(r"gone\u{1b}[2J\n.txt"), "{stdout:?}");
    assert!(stdout.contains(r"new\u{1b}.txt"), "the note: {stdout:?}");
    let out = lost(&env, &["1", "--what-if", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names_of(&report, "unrecoverable"), [format!("/{gone}")]);
}
