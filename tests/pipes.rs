//! Printing never changes the work. Every binary runs the same scenario
//! with stdout and stderr in every state they can be in when a mailer dies
//! or a pipe's reader stops reading (`| head`): a pipe whose reader has
//! closed, the descriptors closed outright, a full disk under `> file`.
//! The work done and the exit code must be what they are with ordinary
//! output; only results that could not be written for another reason than
//! a closed pipe turn a clean exit into an error.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// How stdout and stderr are given to the child.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Ordinary pipes, read to the end: the reference.
    Normal,
    /// stdout a pipe whose reader closed before the child started.
    ClosedOut,
    /// stderr a pipe whose reader closed before the child started.
    ClosedErr,
    /// Both, one pipe whose reader closed (a mailer that died).
    ClosedBoth,
    /// `2>&1 | head -1`: one line is read, then the reader goes away.
    HeadOne,
    /// fds 1 and 2 closed outright before exec.
    FdsClosed,
    /// stdout is `/dev/full` (a full disk under `> file`).
    FullOut,
}

const MODES: [Mode; 7] = [
    Mode::Normal,
    Mode::ClosedOut,
    Mode::ClosedErr,
    Mode::ClosedBoth,
    Mode::HeadOne,
    Mode::FdsClosed,
    Mode::FullOut,
];

/// Runs `cmd` with its output in `mode` and returns its exit code.
fn run(mut cmd: Command, mode: Mode) -> Option<i32> {
    cmd.stdin(Stdio::null());
    match mode {
        Mode::Normal => {
            let out = cmd.output().expect("spawn");
            out.status.code()
        }
        Mode::ClosedOut | Mode::ClosedErr | Mode::ClosedBoth => {
            let (reader, writer) = std::io::pipe().expect("pipe");
            drop(reader);
            match mode {
                Mode::ClosedOut => cmd.stdout(writer).stderr(Stdio::null()),
                Mode::ClosedErr => cmd.stdout(Stdio::null()).stderr(writer),
                _ => cmd.stdout(writer.try_clone().unwrap()).stderr(writer),
            };
            cmd.status().expect("spawn").code()
        }
        Mode::HeadOne => {
            let (reader, writer) = std::io::pipe().expect("pipe");
            cmd.stdout(writer.try_clone().unwrap()).stderr(writer);
            let mut child = cmd.spawn().expect("spawn");
            // Our own copies of the write end are gone with `cmd`.
            drop(cmd);
            let mut line = String::new();
            let _ = BufReader::new(reader).read_line(&mut line);
            child.wait().expect("wait").code()
        }
        Mode::FdsClosed => {
            // SAFETY: close(2) is async-signal-safe.
            unsafe {
                cmd.pre_exec(|| {
                    libc::close(1);
                    libc::close(2);
                    Ok(())
                });
            }
            cmd.status().expect("spawn").code()
        }
        Mode::FullOut => {
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("/dev/full");
            cmd.stdout(full).stderr(Stdio::null());
            cmd.status().expect("spawn").code()
        }
    }
}

/// The code a run in `mode` must exit with, given the reference code.
fn expected(mode: Mode, normal: Option<i32>, prints_results: bool) -> Option<i32> {
    match mode {
        // Results that never reached a full disk: a clean run is an error.
        Mode::FullOut if prints_results && normal == Some(0) => Some(2),
        _ => normal,
    }
}

/// A watched tree that gives monitor something of everything to say:
/// files (names with a newline and an escape among them), a fifo it
/// must skip (exit 1), and enough data to close discs and build images.
fn monitor_scene() -> TestEnv {
    let env = TestEnv::new();
    for i in 0..40 {
        env.write(format!("dir{}/file-{i}.bin", i % 4), &vec![i as u8; 20_000]);
    }
    env.write("line\nbreak.txt", b"newline in the name");
    env.write("esc\x1b[31m.txt", b"escape in the name");
    let fifo = env.watched.join("a.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    // A disc-ready command that talks on both streams and leaves a mark
    // of each disc it saw: a closed stderr must not kill it.
    let hook = format!(
        "for i in 1 2 3 4 5 6 7 8; do echo \"ready $i $DBACKUP_DISC\"; echo \"err $i\" >&2; done; touch {}/hook-$DBACKUP_DISC",
        env.dir.path().display()
    );
    env.init(&["--disc-size", "607200", "--on-disc-ready", &hook]);
    env
}

/// The discs the disc-ready command marked.
fn hooked(env: &TestEnv) -> i64 {
    std::fs::read_dir(env.dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("hook-")
        })
        .count() as i64
}

/// What a monitor did, read from the catalogue: every name backed up with
/// its MD5, the discs closed and the images verified.
type Work = (Vec<(Vec<u8>, String)>, i64, Vec<i64>);

fn work_done(env: &TestEnv) -> Work {
    let conn = env.catalog();
    let files = {
        let mut s = conn
            .prepare("SELECT CAST(filename AS BLOB), md5 FROM files WHERE copied=1 ORDER BY 1")
            .unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let closed: i64 = conn
        .query_row(
            "SELECT count(*) FROM discs WHERE completed IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    (files, closed, verified_discs(&conn))
}

#[test]
fn monitor_does_the_same_work_whatever_happens_to_its_output() {
    let mut reference = None;
    for mode in MODES {
        let env = monitor_scene();
        let mut cmd = env.stage();
        cmd.arg("monitor");
        let code = run(cmd, mode);
        let done = work_done(&env);
        env.check_invariants();
        assert!(done.1 >= 2, "{mode:?}: discs closed: {}", done.1);
        assert_eq!(
            done.2.len() as i64,
            done.1,
            "{mode:?}: every closed disc imaged"
        );
        assert_eq!(
            hooked(&env),
            done.1,
            "{mode:?}: the disc-ready command ran to its end for every disc"
        );
        let (ref_code, ref_done) = reference.get_or_insert_with(|| (code, done.clone()));
        assert_eq!(*ref_code, Some(1), "the fifo is skipped: exit 1");
        assert_eq!(
            code,
            expected(mode, *ref_code, false),
            "{mode:?}: exit code"
        );
        assert_eq!(done.0, ref_done.0, "{mode:?}: the same files staged");
        // A second run finds nothing to do, whatever the first one printed.
        let again = env.run(&["monitor"]);
        assert_eq!(again.status.code(), Some(1), "{mode:?}: the fifo again");
        assert_eq!(work_done(&env).0, done.0, "{mode:?}: nothing left to stage");
    }
}

#[test]
fn monitor_cron_and_json_keep_their_exit_code_with_closed_output() {
    for args in [&["monitor", "--cron"][..], &["monitor", "--json"][..]] {
        for mode in MODES {
            let env = monitor_scene();
            let mut cmd = env.stage();
            cmd.args(args);
            let code = run(cmd, mode);
            assert_eq!(code, Some(1), "{args:?} {mode:?}");
            let done = work_done(&env);
            assert_eq!(done.2.len() as i64, done.1, "{args:?} {mode:?}: images");
        }
    }
}

/// A closed set of two discs, its images in a folder of their own, and a
/// third disc image damaged by a flipped byte in a file.
struct Set {
    env: TestEnv,
    isos: std::path::PathBuf,
}

fn closed_set() -> Set {
    let env = TestEnv::new();
    env.write("a/one.txt", b"first disc, first file");
    env.write("a/two.txt", b"first disc, second file");
    env.init(&["--name", "Pipes"]);
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    std::fs::remove_file(env.watched.join("a/one.txt")).unwrap();
    env.write("b/three.txt", b"second disc");
    assert_eq!(env.run(&["monitor"]).status.code(), Some(0));
    assert_eq!(env.run(&["close"]).status.code(), Some(0));
    let isos = env.workdir.join("isos");
    Set { env, isos }
}

/// A copy of disc `n`'s image with one byte of its file content flipped.
fn damaged_copy(set: &Set, n: i64, dest: &Path) -> std::path::PathBuf {
    let src = set.isos.join(format!("disc-{n}.iso"));
    let data = std::fs::read(&src).unwrap();
    let needle = b"first disc, second file";
    let at = data
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("file content in the image");
    let mut bad = data.clone();
    bad[at] ^= 0x20;
    let p = dest.join(format!("disc-{n}.iso"));
    std::fs::write(&p, bad).unwrap();
    p
}

#[test]
fn recovery_tools_keep_their_exit_code_whatever_happens_to_their_output() {
    let set = closed_set();
    let env = &set.env;
    let scratch = tempfile::tempdir().unwrap();
    let damaged = scratch.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    let damaged_iso = damaged_copy(&set, 1, &damaged);
    let only_two = scratch.path().join("only-two");
    std::fs::create_dir(&only_two).unwrap();
    std::fs::copy(set.isos.join("disc-2.iso"), only_two.join("disc-2.iso")).unwrap();

    let tool = |name: &str| {
        let mut c = Command::new(bin(name));
        c.arg("--no-progress").env_remove("FAILPOINTS");
        c
    };
    // (what, command maker, code with ordinary output, prints results)
    type Maker<'a> = Box<dyn Fn(&Path) -> Command + 'a>;
    let cases: Vec<(&str, Maker, Option<i32>, bool)> = vec![
        (
            "find with a match",
            Box::new(|_| {
                let mut c = tool("dbackup-find");
                c.arg("-d").arg(&set.isos).arg("*.txt");
                c
            }),
            Some(0),
            true,
        ),
        (
            "find with no match",
            Box::new(|_| {
                let mut c = tool("dbackup-find");
                c.arg("-d").arg(&set.isos).arg("nothing-like-this");
                c
            }),
            Some(1),
            true,
        ),
        (
            "verify of good images",
            Box::new(|_| {
                let mut c = tool("dbackup-verify");
                c.arg("-d").arg(&set.isos);
                c
            }),
            Some(0),
            true,
        ),
        (
            "verify of a damaged image",
            Box::new(|_| {
                let mut c = tool("dbackup-verify");
                c.arg("-d").arg(&damaged_iso);
                c
            }),
            Some(1),
            true,
        ),
        (
            "lost with unrecoverable files",
            Box::new(|_| {
                let mut c = tool("dbackup-lost");
                c.arg("-w").arg(&env.workdir).args(["1", "--what-if"]);
                c
            }),
            Some(1),
            true,
        ),
        (
            "restore of everything",
            Box::new(|to| {
                let mut c = tool("dbackup-restore");
                c.arg("-d").arg(&set.isos).arg("--to").arg(to);
                c
            }),
            Some(0),
            true,
        ),
        (
            "restore with a missing disc",
            Box::new(|to| {
                let mut c = tool("dbackup-restore");
                c.arg("-d").arg(&only_two).arg("--to").arg(to);
                c
            }),
            Some(1),
            true,
        ),
        (
            "mkiso with nothing to do",
            Box::new(|_| {
                let mut c = tool("dbackup-mkiso");
                c.arg("-w").arg(&env.workdir);
                c
            }),
            Some(0),
            false,
        ),
    ];
    for (what, make, normal, prints) in &cases {
        let mut restored = None;
        for mode in MODES {
            let target = tempfile::tempdir_in(scratch.path()).unwrap().keep();
            let code = run(make(&target), mode);
            assert_eq!(
                code,
                expected(mode, *normal, *prints),
                "{what}, {mode:?}: exit code"
            );
            if what.starts_with("restore") {
                let tree = tree_md5s(&target);
                let reference = restored.get_or_insert_with(|| tree.clone());
                assert_eq!(
                    &tree, reference,
                    "{what}, {mode:?}: the same files restored"
                );
                assert!(!tree.is_empty(), "{what}: something was restored");
            }
        }
    }
}

/// The class, closed at the source: no code writes to stdout or stderr
/// but through `dbackup::output`'s sinks (or `say!`), since `println!` and
/// `eprintln!` panic on a closed stream and a bare `write` to a locked
/// stream hands its error to the run.
#[test]
fn no_code_prints_but_through_the_output_sinks() {
    let forbidden = [
        "println!(",
        "eprintln!(",
        "print!(",
        "eprint!(",
        "io::stdout().lock()",
        "io::stderr().lock()",
        "dbg!(",
        "write!(std::io::",
        "writeln!(std::io::",
        "io::stdout().write",
        "io::stderr().write",
    ];
    let mut offenders = Vec::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("output.rs") {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if forbidden.iter().any(|f| code.contains(f)) {
                offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "print through dbackup::output:\n{}",
        offenders.join("\n")
    );
}
