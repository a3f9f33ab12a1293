//! A property over the whole tool chain, driven through the real binaries:
//! for a random watched tree and a random sequence of edits (write, modify,
//! delete, rename), monitors, closes and image builds, a restore from the
//! images as of any time the catalogue recorded gives back exactly the tree
//! as the monitor of that time saw it: the same names, contents and
//! modification times, and nothing else.
//!
//! The model sees the tree only when a monitor runs, as a user's backups
//! do: a file deleted and written again between two monitors is a changed
//! file (it has a new mtime), not a deletion, and a name cannot be both
//! deleted and added within one monitor run. A restore as of a time inside
//! a monitor run expects what that run had recorded by then (it records
//! each batch of copies, and then the deletions, at successive times).
//!
//! The same machine also rots staged copies (a flipped byte in a closed or
//! the open disc's staging folder), rebuilds images of discs already
//! verified (with and without `--keep-staged`), closes discs with
//! nothing new and runs monitors whose stdout and stderr are a pipe nobody
//! reads any more (they must do the same work); after every step the workdir's invariants hold, only
//! verified images carry the final name, a verified image is replaced only
//! by one that passed, a rotten copy is never freed without a good image or
//! a damaged record, and no run exits 2 (the state always has a way out).
//! Versions recorded damaged are no backup: the restore checks leave their
//! names out.
//!
//! `PROPTEST_CASES=200 cargo test --features failpoints --test properties`
//! runs more cases than the default.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use common::*;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

/// Folders and file names from small alphabets, so that paths repeat and
/// renames land on existing files; with spaces, non-ASCII letters and names
/// that differ only in case. No file name is also a folder name, so a file
/// never has to take the place of a folder.
const DIRS: &[&str] = &["", "x", "x/y", "ü w"];
const NAMES: &[&str] = &["a", "b c", "é.txt", "E", "e"];

/// Largest file written. With the disc size below, about a dozen such files
/// fill a disc, so monitor closes discs on its own now and then.
const MAX_LEN: usize = 6000;
const DISC_SIZE: &str = "527200";

/// A monitor run's catalogue name -> (content MD5, mtime in nanoseconds).
type Tree = BTreeMap<Vec<u8>, (String, i128)>;

#[derive(Debug, Clone)]
enum Op {
    /// Writes a file at a path: a new file, or new content for one there.
    Write {
        dir: usize,
        name: usize,
        len: usize,
        seed: u8,
    },
    /// New content for an existing file, at its own size or another.
    Modify {
        pick: Index,
        len: Option<usize>,
        seed: u8,
    },
    Delete {
        pick: Index,
    },
    /// Moves a file to a path (perhaps in another folder, perhaps onto an
    /// existing file, which it replaces).
    Rename {
        pick: Index,
        dir: usize,
        name: usize,
    },
    Monitor,
    /// A monitor whose stdout and stderr are one pipe whose reader has
    /// gone (a mailer that died): it must do the same work.
    MonitorMuted,
    Close {
        iso: bool,
    },
    Mkiso {
        keep: bool,
    },
    /// `mkiso --disc N` of a disc whose image is recorded verified.
    Rebuild {
        pick: Index,
        keep: bool,
    },
    /// Flips a byte of a staged copy, of a closed or the open disc.
    Rot {
        pick: Index,
        at: Index,
    },
}

fn len() -> impl Strategy<Value = usize> {
    prop_oneof![1 => Just(0usize), 4 => 1..=MAX_LEN]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..DIRS.len(), 0..NAMES.len(), len(), any::<u8>())
            .prop_map(|(dir, name, len, seed)| Op::Write { dir, name, len, seed }),
        3 => (any::<Index>(), prop::option::of(len()), any::<u8>())
            .prop_map(|(pick, len, seed)| Op::Modify { pick, len, seed }),
        2 => any::<Index>().prop_map(|pick| Op::Delete { pick }),
        2 => (any::<Index>(), 0..DIRS.len(), 0..NAMES.len())
            .prop_map(|(pick, dir, name)| Op::Rename { pick, dir, name }),
        4 => Just(Op::Monitor),
        1 => Just(Op::MonitorMuted),
        1 => any::<bool>().prop_map(|iso| Op::Close { iso }),
        1 => any::<bool>().prop_map(|keep| Op::Mkiso { keep }),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(pick, keep)| Op::Rebuild { pick, keep }),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(pick, at)| Op::Rot { pick, at }),
    ]
}

/// The initial tree: (folder, name, length, seed) per file; a path given
/// twice is written twice.
fn initial() -> impl Strategy<Value = Vec<(usize, usize, usize, u8)>> {
    prop::collection::vec((0..DIRS.len(), 0..NAMES.len(), len(), any::<u8>()), 1..=20)
}

fn path_of(dir: usize, name: usize) -> PathBuf {
    Path::new(DIRS[dir]).join(NAMES[name])
}

fn now() -> f64 {
    UNIX_EPOCH.elapsed().unwrap().as_secs_f64()
}

/// What a monitor run saw, and when it ran.
struct Monitored {
    start: f64,
    end: f64,
    tree: Tree,
}

struct World {
    env: TestEnv,
    /// Writes so far: each gets its own content and mtime.
    writes: u64,
    monitors: Vec<Monitored>,
    restores: u64,
    /// Staged copies this test flipped a byte of, until they are repaired
    /// or freed.
    rotten: BTreeSet<PathBuf>,
}

impl World {
    fn new(initial: &[(usize, usize, usize, u8)]) -> World {
        let mut w = World {
            env: TestEnv::new(),
            writes: 0,
            monitors: Vec::new(),
            restores: 0,
            rotten: BTreeSet::new(),
        };
        for &(dir, name, len, seed) in initial {
            w.write(&path_of(dir, name), len, seed);
        }
        w.env.init(&["--disc-size", DISC_SIZE, "--name", "Prop"]);
        w
    }

    fn write(&mut self, rel: &Path, len: usize, seed: u8) {
        self.writes += 1;
        let n = self.writes;
        let data: Vec<u8> = (0..len as u64)
            .map(|i| (i.wrapping_mul(31) ^ (n << 3) ^ u64::from(seed)) as u8)
            .collect();
        let p = self.env.write(rel, &data);
        // Each write gets an mtime of its own, later than every one before,
        // set explicitly: two same-size writes within the filesystem's
        // timestamp granularity (a kernel clock tick) would otherwise share
        // size and mtime, and no scan by size and mtime could tell them
        // apart, while a real user's edits are seconds apart. Whole
        // microseconds, with a varying fraction.
        let when = UNIX_EPOCH
            + Duration::new(
                1_600_000_000 + n * 7,
                ((n * 123_457) % 1_000_000) as u32 * 1000,
            );
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    /// The files now in the watched folder, by catalogue name.
    fn files(&self) -> Vec<Vec<u8>> {
        read_tree(&self.env.watched).into_keys().collect()
    }

    fn rel(name: &[u8]) -> &Path {
        Path::new(os(&name[1..]))
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Write {
                dir,
                name,
                len,
                seed,
            } => self.write(&path_of(dir, name), len, seed),
            Op::Modify { pick, len, seed } => {
                let files = self.files();
                let name = &files[pick.index(files.len())];
                let rel = Self::rel(name).to_path_buf();
                let len = len.unwrap_or_else(|| {
                    std::fs::metadata(self.env.watched.join(&rel))
                        .unwrap()
                        .len() as usize
                });
                self.write(&rel, len, seed);
            }
            Op::Delete { pick } => {
                let files = self.files();
                // Never the last file: a watched folder found empty is taken
                // for an unmounted disk and nothing is recorded as deleted
                // (a documented safeguard), which is not what this property
                // is about.
                if files.len() > 1 {
                    let name = &files[pick.index(files.len())];
                    std::fs::remove_file(self.env.watched.join(Self::rel(name))).unwrap();
                }
            }
            Op::Rename { pick, dir, name } => {
                let files = self.files();
                let from = self
                    .env
                    .watched
                    .join(Self::rel(&files[pick.index(files.len())]));
                let to = self.env.watched.join(path_of(dir, name));
                if from != to {
                    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                    std::fs::rename(&from, &to).unwrap();
                }
            }
            Op::Monitor => self.monitor(),
            Op::MonitorMuted => self.monitor_muted(),
            Op::Close { iso } => self.close(iso),
            Op::Mkiso { keep } => self.mkiso(keep),
            Op::Rebuild { pick, keep } => self.rebuild(pick, keep),
            Op::Rot { pick, at } => self.rot(pick, at),
        }
        self.after_step();
    }

    /// A run that built images exits 0, or 1 when it recorded a version as
    /// damaged (said once, on stderr); never 2.
    fn assert_run(out: &std::process::Output, what: &str) {
        let err = text(&out.stderr);
        match out.status.code() {
            Some(0) => {}
            Some(1) if err.contains("DAMAGED") => {}
            other => panic!("{what} exited {other:?}: {err}"),
        }
    }

    /// Flips a byte of a non-empty staged copy.
    fn rot(&mut self, pick: Index, at: Index) {
        let mut staged: Vec<PathBuf> = walkdir::WalkDir::new(self.env.workdir.join("staging"))
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .filter(|e| {
                e.path()
                    .parent()
                    .unwrap()
                    .parent()
                    .unwrap()
                    .ends_with("files")
            })
            .filter(|e| e.metadata().unwrap().len() > 0)
            .map(|e| e.path().to_path_buf())
            .collect();
        if staged.is_empty() {
            return;
        }
        staged.sort();
        let p = staged[pick.index(staged.len())].clone();
        let mut data = std::fs::read(&p).unwrap();
        let i = at.index(data.len());
        data[i] ^= 0x01;
        std::fs::write(&p, data).unwrap();
        self.rotten.insert(p);
    }

    /// Rebuilds the image of a disc recorded verified.
    fn rebuild(&mut self, pick: Index, keep: bool) {
        let discs = verified_discs(&self.env.catalog());
        if discs.is_empty() {
            return;
        }
        let n = discs[pick.index(discs.len())];
        let staged = self.env.workdir.join(format!("staging/disc-{n:04}"));
        let had_staged = staged.join("manifest.db").is_file();
        let disc = n.to_string();
        let mut args = vec!["--disc", disc.as_str()];
        if keep {
            args.push("--keep-staged");
        }
        let iso = self.env.workdir.join(format!("isos/disc-{n}.iso"));
        let before = std::fs::read(&iso).unwrap();
        let out = self.env.mkiso(&args);
        if out.status.code() != Some(0) {
            // A verified image is never replaced by one that did not pass.
            assert!(
                std::fs::read(&iso).unwrap() == before,
                "disc {n}'s image changed"
            );
        }
        if had_staged {
            Self::assert_run(&out, "mkiso --disc");
        } else {
            // Its copies were freed: refused, and nothing changes.
            assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        }
    }

    /// The invariants that hold after every step.
    fn after_step(&mut self) {
        let conn = self.env.catalog();
        let damaged = damaged_versions(&conn);
        let verified: BTreeSet<i64> = verified_discs(&conn).into_iter().collect();
        // Rotten copies: repaired (MD5 right again), freed with a good
        // image (checked below) or a damaged record, or still waiting.
        let rotten = std::mem::take(&mut self.rotten);
        for p in rotten {
            let id: i64 = p.file_name().unwrap().to_str().unwrap().parse().unwrap();
            let (md5, disc): (String, i64) = conn
                .query_row("SELECT md5, disc_id FROM files WHERE id=?1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap();
            if !p.exists() {
                assert!(
                    verified.contains(&disc) || damaged.contains(&id),
                    "rotten copy {} freed with no verified image and no damaged record",
                    p.display()
                );
                continue;
            }
            if md5_file(&p) != md5 {
                self.rotten.insert(p);
            }
        }
        drop(conn);
        // Every image under its final name is recorded verified and holds
        // every file of its disc with its MD5.
        check_workdir_allowing(&self.env.workdir, &self.rotten);
    }

    fn monitor(&mut self) {
        let start = now();
        let out = self.env.run(&["monitor"]);
        let end = now();
        Self::assert_run(&out, "monitor");
        self.monitors.push(Monitored {
            start,
            end,
            tree: read_tree(&self.env.watched),
        });
    }

    fn monitor_muted(&mut self) {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let start = now();
        let status = self
            .env
            .stage()
            .arg("monitor")
            .stdin(std::process::Stdio::null())
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .status()
            .unwrap();
        let end = now();
        // Exit 1 only when a version was recorded damaged, which it cannot
        // say here; never 2, never a panic.
        assert!(
            matches!(status.code(), Some(0 | 1)),
            "muted monitor exited {status}"
        );
        self.monitors.push(Monitored {
            start,
            end,
            tree: read_tree(&self.env.watched),
        });
    }

    /// Whether the open disc has anything for the discs: files backed up
    /// on it, deletions recorded since the newest closed disc, or folders
    /// recorded (new or changed, as a rename or a new file changes them)
    /// or gone since it was opened.
    fn open_disc_has_news(&self) -> bool {
        let (files, deletions, entries): (i64, i64, i64) = self
            .env
            .catalog()
            .query_row(
                "SELECT
                   (SELECT count(*) FROM files WHERE copied=1 AND disc_id =
                      (SELECT id FROM discs WHERE completed IS NULL)),
                   (SELECT count(*) FROM deletions WHERE deleted >
                      (SELECT coalesce(max(completed), 0) FROM discs)),
                   (SELECT count(*) FROM entries, (SELECT started FROM discs
                      WHERE completed IS NULL) d
                      WHERE timestamp >= d.started OR deleted >= d.started)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        files > 0 || deletions > 0 || entries > 0
    }

    fn close(&mut self, iso: bool) {
        let news = self.open_disc_has_news();
        let args: &[&str] = if iso {
            &["close"]
        } else {
            &["close", "--no-iso"]
        };
        let out = self.env.run(args);
        // A disc that would bring nothing new is refused.
        if news {
            Self::assert_run(&out, "close");
        } else {
            assert_eq!(out.status.code(), Some(2), "close: {}", text(&out.stderr));
        }
    }

    fn mkiso(&mut self, keep: bool) {
        let args: &[&str] = if keep { &["--keep-staged"] } else { &[] };
        let out = self.env.mkiso(args);
        Self::assert_run(&out, "mkiso");
    }

    /// Restores from the images into a fresh folder and reads it back.
    fn restore(&mut self, as_of: Option<&str>) -> Tree {
        self.restores += 1;
        let target = self
            .env
            .dir
            .path()
            .join(format!("restored-{}", self.restores));
        let mut cmd = Command::new(bin("dbackup-restore"));
        cmd.arg("--no-progress")
            .arg("-d")
            .arg(self.env.workdir.join("isos"))
            .arg("--to")
            .arg(&target)
            .env_remove("FAILPOINTS")
            .stdin(Stdio::null());
        if let Some(t) = as_of {
            cmd.arg("--as-of").arg(t);
        }
        let out = cmd.output().expect("run dbackup-restore");
        // Exit 1 only for files whose newest version was recorded damaged
        // (said on stderr; those names are left out of the comparison):
        // every other line of the run is about reading a disc.
        let err = text(&out.stderr);
        let only_damaged = err.lines().all(|l| {
            l.contains("recorded damaged") || l.starts_with("dbackup-restore: reading disc")
        });
        assert!(
            out.status.code() == Some(0)
                || (out.status.code() == Some(1)
                    && err.contains("recorded damaged")
                    && only_damaged),
            "restore --as-of {as_of:?} exited {:?}: {err}",
            out.status.code()
        );
        // A restore with nothing it could write (only damaged versions)
        // creates no target.
        let tree = if target.exists() {
            read_tree(&target)
        } else {
            Tree::new()
        };
        if target.exists() {
            std::fs::remove_dir_all(&target).unwrap();
        }
        tree
    }

    /// Which monitor run recorded time `t`.
    fn monitor_at(&self, t: f64) -> usize {
        self.monitors
            .iter()
            .position(|m| m.start <= t && t <= m.end)
            .unwrap_or_else(|| panic!("recorded time {t} is outside every monitor run"))
    }

    fn check(&mut self) {
        // Every version on an image.
        self.monitor();
        if self.open_disc_has_news() {
            self.close(true);
        }
        self.mkiso(false);
        self.after_step();

        let conn = self.env.catalog();
        // Names with a version recorded damaged: that version is on no
        // disc, so a restore as of its time cannot give it back.
        let skip: BTreeSet<Vec<u8>> = {
            let damaged = damaged_versions(&conn);
            let mut names = BTreeSet::new();
            for id in damaged {
                let name = conn
                    .query_row("SELECT filename FROM files WHERE id=?1", [id], |r| {
                        Ok(name_of(r.get_ref(0)?))
                    })
                    .unwrap();
                names.insert(name);
            }
            names
        };
        // (name, timestamp, md5, mtime) of every version, and (name, time)
        // of every deletion.
        let versions: Vec<(Vec<u8>, f64, String, f64)> = conn
            .prepare("SELECT filename, timestamp, md5, mtime FROM files WHERE copied=1")
            .unwrap()
            .query_map([], |r| {
                Ok((name_of(r.get_ref(0)?), r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let deletions: Vec<(Vec<u8>, f64)> = conn
            .prepare("SELECT filename, deleted FROM deletions")
            .unwrap()
            .query_map([], |r| Ok((name_of(r.get_ref(0)?), r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        drop(conn);

        // What each monitor recorded is exactly how its tree differs from
        // the one before: a version of every new or changed file (with that
        // content and mtime), a deletion of every file gone.
        let mut staged: Vec<BTreeMap<Vec<u8>, f64>> = vec![BTreeMap::new(); self.monitors.len()];
        let mut deleted: Vec<BTreeMap<Vec<u8>, f64>> = vec![BTreeMap::new(); self.monitors.len()];
        for (name, ts, md5, mtime) in &versions {
            let k = self.monitor_at(*ts);
            let (want_md5, want_mtime) = self.monitors[k]
                .tree
                .get(name)
                .unwrap_or_else(|| panic!("monitor {k} backed up {}, not in its tree", show(name)));
            assert_eq!(md5, want_md5, "md5 of {} by monitor {k}", show(name));
            assert!(
                close_mtime(*mtime, *want_mtime),
                "mtime of {} by monitor {k}: {mtime} for {want_mtime} ns",
                show(name)
            );
            let dup = staged[k].insert(name.clone(), *ts);
            assert!(dup.is_none(), "monitor {k} backed up {} twice", show(name));
        }
        for (name, when) in &deletions {
            let k = self.monitor_at(*when);
            let dup = deleted[k].insert(name.clone(), *when);
            assert!(dup.is_none(), "monitor {k} deleted {} twice", show(name));
        }
        let empty = Tree::new();
        for k in 0..self.monitors.len() {
            let before = if k == 0 {
                &empty
            } else {
                &self.monitors[k - 1].tree
            };
            let now = &self.monitors[k].tree;
            let changed: Vec<&Vec<u8>> = now
                .iter()
                .filter(|(n, v)| before.get(*n) != Some(v))
                .map(|(n, _)| n)
                .collect();
            let gone: Vec<&Vec<u8>> = before.keys().filter(|n| !now.contains_key(*n)).collect();
            assert_eq!(
                staged[k].keys().collect::<Vec<_>>(),
                changed,
                "files backed up by monitor {k}"
            );
            assert_eq!(
                deleted[k].keys().collect::<Vec<_>>(),
                gone,
                "files recorded deleted by monitor {k}"
            );
        }

        // As of a time between one monitor and the next: that monitor's tree.
        for k in 0..self.monitors.len() {
            let after = self.monitors.get(k + 1).map_or_else(now, |m| m.start);
            let t = format!("{:.6}", (self.monitors[k].end + after) / 2.0);
            let got = self.restore(Some(&t));
            assert_same(
                &got,
                &self.monitors[k].tree,
                &format!("as of {t} (after monitor {k})"),
                &skip,
            );
        }

        // As of each time recorded: the tree before that monitor, with what
        // the monitor recorded up to that time (one monitor records its
        // batches and its deletions at successive times).
        let mut times: Vec<f64> = staged
            .iter()
            .chain(&deleted)
            .flat_map(|m| m.values().copied())
            .collect();
        times.sort_by(f64::total_cmp);
        times.dedup();
        for t in times {
            let k = self.monitor_at(t);
            let mut want = if k == 0 {
                Tree::new()
            } else {
                self.monitors[k - 1].tree.clone()
            };
            for (name, _) in staged[k].iter().filter(|(_, &ts)| ts <= t) {
                want.insert(name.clone(), self.monitors[k].tree[name].clone());
            }
            for (name, _) in deleted[k].iter().filter(|(_, &d)| d <= t) {
                want.remove(name);
            }
            // `{}` prints the shortest text that parses back to the same f64.
            let t = format!("{t}");
            let got = self.restore(Some(&t));
            assert_same(
                &got,
                &want,
                &format!("as of recorded time {t} (monitor {k})"),
                &skip,
            );
        }

        // Without --as-of: the tree as it is now.
        let got = self.restore(None);
        assert_same(
            &got,
            &read_tree(&self.env.watched),
            "without --as-of",
            &skip,
        );

        // Nothing left that makes the next run fail: it is quiet and 0.
        let out = self.env.run(&["monitor"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    }
}

fn name_of(v: rusqlite::types::ValueRef<'_>) -> Vec<u8> {
    match v {
        rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => b.to_vec(),
        other => panic!("bad name {other:?}"),
    }
}

fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// A REAL of seconds against nanoseconds: the catalogue keeps about a
/// quarter of a microsecond at today's times.
fn close_mtime(secs: f64, nanos: i128) -> bool {
    (secs * 1e9 - nanos as f64).abs() < 1000.0
}

/// Every file below `root`: catalogue name -> (md5, mtime in ns). Anything
/// else but folders is an error.
fn read_tree(root: &Path) -> Tree {
    let mut tree = Tree::new();
    if !root.exists() {
        return tree;
    }
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.unwrap();
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        assert!(ft.is_file(), "not a file: {}", entry.path().display());
        let rel = entry.path().strip_prefix(root).unwrap();
        let mut name = b"/".to_vec();
        name.extend_from_slice(rel.as_os_str().as_bytes());
        let meta = entry.metadata().unwrap();
        let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        tree.insert(name, (md5_file(entry.path()), mtime));
    }
    tree
}

/// The restored tree has exactly the expected files, contents and (to the
/// catalogue's precision) mtimes.
fn assert_same(got: &Tree, want: &Tree, what: &str, skip: &BTreeSet<Vec<u8>>) {
    let keep = |t: &Tree| -> Tree {
        t.iter()
            .filter(|(n, _)| !skip.contains(*n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    };
    let (got, want) = (&keep(got), &keep(want));
    let names = |t: &Tree| t.keys().map(|n| show(n)).collect::<Vec<_>>();
    assert_eq!(names(got), names(want), "files restored {what}");
    for (name, (md5, mtime)) in want {
        let (got_md5, got_mtime) = &got[name];
        assert_eq!(got_md5, md5, "content of {} restored {what}", show(name));
        assert!(
            (got_mtime - mtime).abs() < 1000,
            "mtime of {} restored {what}: {got_mtime} for {mtime} ns",
            show(name)
        );
    }
}

fn config() -> Config {
    binary_property_config(24, 64)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn restore_as_of_any_recorded_time_gives_the_tree_then(
        initial in initial(),
        ops in prop::collection::vec(op(), 0..=20),
    ) {
        let mut world = World::new(&initial);
        for op in &ops {
            world.apply(op);
        }
        world.check();
    }
}
