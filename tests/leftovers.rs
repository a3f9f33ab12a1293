//! A `kill -9` leaves nothing of ours behind that no later run removes:
//! the status page's temp file has no name until it is whole, and the temp
//! copies that need names (an image's manifest, for SQLite) are swept by
//! the next run once their owner is dead, never while it lives.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::*;

/// A closed set of a few files, its image in `workdir/isos`.
fn small_set(n: usize) -> TestEnv {
    let env = TestEnv::new();
    for i in 0..n {
        env.write(
            format!("photos/{}/img-{i:04}.jpg", 2000 + i % 5),
            &bytes_of(i as u64, 300 + i * 7),
        );
    }
    env.init(&[]);
    ok(env.run(&["monitor"]), "monitor");
    env
}

/// Waits (at most 30 s) until `pid` holds a descriptor of a file under
/// `dir`, or has exited.
fn wait_for_fd_under(child: &mut Child, dir: &Path) {
    let fds = PathBuf::from(format!("/proc/{}/fd", child.id()));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if child.try_wait().unwrap().is_some() {
            panic!("it ended before it opened anything under {}", dir.display());
        }
        let held = std::fs::read_dir(&fds)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.starts_with(dir) && t != dir));
        if held {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no descriptor under {} after 30 s", dir.display());
}

fn kill9(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn is_whole_page(bytes: &[u8]) -> bool {
    bytes.starts_with(b"<!DOCTYPE html>") && bytes.trim_ascii_end().ends_with(b"</body></html>")
}

#[test]
fn a_page_killed_at_any_instant_leaves_the_page_whole_and_nothing_beside_it() {
    let env = small_set(400);
    let pages = env.dir.path().join("pages");
    std::fs::create_dir(&pages).unwrap();
    let page = pages.join("status.html");
    let report = |fp: Option<&str>| {
        let mut c = env.stage();
        c.args(["report", "--html"]).arg(&page);
        if let Some(fp) = fp {
            c.env("FAILPOINTS", fp);
        }
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    // Killed with its whole page flushed, just before it takes its name.
    let clean = Instant::now();
    assert!(report(None).status().unwrap().success());
    let run_us = clean.elapsed().as_micros() as u64;
    let before = std::fs::read(&page).unwrap();
    assert!(is_whole_page(&before));
    let mut child = report(Some("report::write=sleep(60000)")).spawn().unwrap();
    wait_for_fd_under(&mut child, &pages);
    kill9(child);
    assert_eq!(names_in(&pages), ["status.html"]);
    assert_eq!(std::fs::read(&page).unwrap(), before);
    // Killed at moments spread over a whole run as long as a clean one,
    // while it starts, reads the catalogue and writes.
    let mut state = 0x5eed_u64;
    for _ in 0..12 {
        let delay = random_bytes(&mut state, 1)[0] as u64 * run_us / 255;
        let child = report(None).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(delay));
        kill9(child);
        assert_eq!(names_in(&pages), ["status.html"], "after {delay} µs");
        assert!(
            is_whole_page(&std::fs::read(&page).unwrap()),
            "after {delay} µs"
        );
    }
    // A page that did not exist is made from nothing in the same way.
    let fresh = pages.join("fresh.html");
    let mut c = env.stage();
    c.args(["report", "--html"])
        .arg(&fresh)
        .stderr(Stdio::null());
    assert!(c.status().unwrap().success());
    assert!(is_whole_page(&std::fs::read(&fresh).unwrap()));
    assert_eq!(names_in(&pages), ["fresh.html", "status.html"]);
}

fn find_in(tmp: &Path, image: &Path, fp: Option<&str>) -> Command {
    let mut c = Command::new(bin("dbackup-find"));
    c.env("TMPDIR", tmp)
        .env_remove("FAILPOINTS")
        .arg("--no-progress")
        .arg("-d")
        .arg(image)
        .arg("**")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(fp) = fp {
        c.env("FAILPOINTS", fp);
    }
    c
}

fn copies_in(tmp: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("dbackup-manifest-"))
        })
        .collect();
    v.sort();
    v
}

/// Waits (at most 30 s) until `tmp` holds `n` manifest copies.
fn wait_for_copies(tmp: &Path, n: usize) -> Vec<PathBuf> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let found = copies_in(tmp);
        if found.len() == n {
            return found;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("{n} manifest copies never appeared in {}", tmp.display());
}

/// As if an hour had passed since `path` was last changed.
fn age_an_hour(path: &Path) {
    let t = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::open(path).unwrap().set_modified(t).unwrap();
}

#[test]
fn a_killed_readers_manifest_copy_is_swept_by_the_next_run_and_a_live_ones_is_not() {
    let env = small_set(20);
    ok(env.run(&["close"]), "close");
    let image = env.workdir.join("isos");
    let tmp = env.dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let pause = Some("medium::manifest_copied=sleep(60000)");
    // One reader killed with its copy open: the copy stays, for now.
    let mut dead = find_in(&tmp, &image, pause).spawn().unwrap();
    let dead_copy = wait_for_copies(&tmp, 1).remove(0);
    wait_for_fd_under(&mut dead, &tmp);
    kill9(dead);
    // Another, alive, paused with its own copy open.
    let mut alive = find_in(&tmp, &image, pause).spawn().unwrap();
    let copies = wait_for_copies(&tmp, 2);
    wait_for_fd_under(&mut alive, &tmp);
    let alive_copy = copies.into_iter().find(|p| *p != dead_copy).unwrap();
    // A young leftover stays: it may be a copy whose owner is just starting.
    assert!(find_in(&tmp, &image, None).status().unwrap().success());
    assert_eq!(copies_in(&tmp), {
        let mut v = vec![dead_copy.clone(), alive_copy.clone()];
        v.sort();
        v
    });
    // An hour later the dead one's goes; the living one's copy, locked, stays.
    age_an_hour(&dead_copy);
    age_an_hour(&alive_copy);
    assert!(find_in(&tmp, &image, None).status().unwrap().success());
    assert_eq!(copies_in(&tmp), std::slice::from_ref(&alive_copy));
    assert!(
        alive.try_wait().unwrap().is_none(),
        "the live reader runs on"
    );
    kill9(alive);
    age_an_hour(&alive_copy);
    // A user's file of a name that is not of our shape is never touched.
    let users = tmp.join("dbackup-manifest-mine.db");
    std::fs::write(&users, b"mine").unwrap();
    age_an_hour(&users);
    assert!(find_in(&tmp, &image, None).status().unwrap().success());
    assert_eq!(copies_in(&tmp), [users]);
}
