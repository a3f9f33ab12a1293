//! The exact tree, as a property through the real binaries: random
//! watched trees with symbolic links (relative, absolute, dangling, to
//! folders, pointing out of the tree), empty folders, modes (setuid,
//! setgid, sticky), owners (as root), hard links, sparse files and
//! nanosecond mtimes, edited between monitors (rewritten, modified in
//! place through a hard link, deleted, turned from a file into a link and
//! back, folders re-moded and re-timed). A restore from the images as of
//! the time after each monitor gives back, compared by `lstat`, exactly the
//! tree that monitor saw: every name with its kind, content, mode, owner,
//! mtime to the nanosecond, link target, which names share an inode, and
//! a sparse file stays about as small on disk as its data. Nothing is ever
//! written through a link.
//!
//! `PROPTEST_CASES=100 cargo test --features failpoints --test prop_tree`
//! runs more cases than the default.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use common::*;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

/// Folders and names: files and links share names (so a name turns from
/// one into the other); no folder takes a file's name.
const DIRS: &[&str] = &["", "d", "d/e", "empty", "ü s"];
const NAMES: &[&str] = &["a", "b c", "é", "E", "e.txt"];
const FILE_MODES: &[u32] = &[0o644, 0o600, 0o755, 0o444, 0o4755, 0o2750];
const DIR_MODES: &[u32] = &[0o755, 0o700, 0o2775, 0o1777, 0o750];

#[derive(Debug, Clone)]
enum Target {
    /// A file name in the same folder.
    Sibling(usize),
    /// A folder, relative from the link's folder.
    Folder(usize),
    Absolute,
    Dangling,
    /// Out of the restore's target: a restore must never write through it.
    Outside,
}

#[derive(Debug, Clone)]
enum Op {
    /// A new file (a new inode) at a path, with a mode and an mtime of its
    /// own; sparse: a hole of some blocks before the data.
    Write {
        dir: usize,
        name: usize,
        len: usize,
        mode: usize,
        nanos: u32,
        sparse: bool,
        seed: u8,
    },
    /// New content in place (every hard link of it sees it).
    Modify {
        pick: Index,
        seed: u8,
    },
    Mkdir {
        dir: usize,
        mode: usize,
    },
    /// A folder's mode, and its mtime set to the nanosecond.
    Redir {
        dir: usize,
        mode: usize,
        nanos: u32,
    },
    Link {
        dir: usize,
        name: usize,
        target: Target,
    },
    HardLink {
        pick: Index,
        dir: usize,
        name: usize,
    },
    Delete {
        pick: Index,
    },
    /// As root: another owner for a file.
    Chown {
        pick: Index,
        id: u32,
    },
    Monitor,
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        (0..NAMES.len()).prop_map(Target::Sibling),
        (0..DIRS.len()).prop_map(Target::Folder),
        Just(Target::Absolute),
        Just(Target::Dangling),
        Just(Target::Outside),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..DIRS.len(), 0..NAMES.len(), 0..3000usize, 0..FILE_MODES.len(),
              0..1_000_000_000u32, prop::bool::weighted(0.2), any::<u8>())
            .prop_map(|(dir, name, len, mode, nanos, sparse, seed)| Op::Write {
                dir, name, len, mode, nanos, sparse, seed
            }),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(pick, seed)| Op::Modify { pick, seed }),
        1 => (0..DIRS.len(), 0..DIR_MODES.len()).prop_map(|(dir, mode)| Op::Mkdir { dir, mode }),
        2 => (0..DIRS.len(), 0..DIR_MODES.len(), 0..1_000_000_000u32)
            .prop_map(|(dir, mode, nanos)| Op::Redir { dir, mode, nanos }),
        3 => (0..DIRS.len(), 0..NAMES.len(), target())
            .prop_map(|(dir, name, target)| Op::Link { dir, name, target }),
        2 => (any::<Index>(), 0..DIRS.len(), 0..NAMES.len())
            .prop_map(|(pick, dir, name)| Op::HardLink { pick, dir, name }),
        2 => any::<Index>().prop_map(|pick| Op::Delete { pick }),
        1 => (any::<Index>(), 1000..1003u32).prop_map(|(pick, id)| Op::Chown { pick, id }),
        3 => Just(Op::Monitor),
    ]
}

/// One name as `lstat` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File {
        md5: String,
        mode: u32,
        owner: (u32, u32),
        mtime: (i64, i64),
    },
    Dir {
        mode: u32,
        owner: (u32, u32),
        mtime: (i64, i64),
    },
    Link {
        target: Vec<u8>,
    },
}

/// A tree: name -> node, the sets of names that share an inode, and the
/// sparse files (allocated well below their size).
#[derive(Debug, Clone, Default, PartialEq)]
struct Snapshot {
    nodes: BTreeMap<Vec<u8>, Node>,
    links: BTreeSet<BTreeSet<Vec<u8>>>,
    sparse: BTreeSet<Vec<u8>>,
}

fn is_sparse(m: &std::fs::Metadata) -> bool {
    m.len() > 16384 && m.blocks() * 512 < m.len() / 2
}

fn snapshot(root: &Path) -> Snapshot {
    let mut snap = Snapshot::default();
    let mut inodes: BTreeMap<(u64, u64), BTreeSet<Vec<u8>>> = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap();
        let mut name = b"/".to_vec();
        name.extend_from_slice(rel.as_os_str().as_bytes());
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        let node = if m.file_type().is_symlink() {
            Node::Link {
                target: std::fs::read_link(e.path())
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            }
        } else if m.is_dir() {
            Node::Dir {
                mode: m.mode() & 0o7777,
                owner: (m.uid(), m.gid()),
                mtime: (m.mtime(), m.mtime_nsec()),
            }
        } else {
            assert!(m.is_file(), "{}", e.path().display());
            if is_sparse(&m) {
                snap.sparse.insert(name.clone());
            }
            if m.nlink() > 1 {
                inodes
                    .entry((m.dev(), m.ino()))
                    .or_default()
                    .insert(name.clone());
            }
            Node::File {
                md5: md5_file(e.path()),
                mode: m.mode() & 0o7777,
                owner: (m.uid(), m.gid()),
                mtime: (m.mtime(), m.mtime_nsec()),
            }
        };
        snap.nodes.insert(name, node);
    }
    snap.links = inodes.into_values().filter(|s| s.len() > 1).collect();
    snap
}

struct World {
    env: TestEnv,
    /// A folder beside the target that a link points into: nothing may
    /// ever appear in it.
    outside: PathBuf,
    writes: u64,
    /// Each monitor's start and end times and the tree it saw.
    monitors: Vec<(f64, f64, Snapshot)>,
    restores: u64,
    root: bool,
}

fn now() -> f64 {
    UNIX_EPOCH.elapsed().unwrap().as_secs_f64()
}

fn set_mtime(p: &Path, secs: u64, nanos: u32) {
    let t = UNIX_EPOCH + Duration::new(secs, nanos);
    // A folder's mtime is set through a handle on the folder.
    let f = std::fs::File::open(p).unwrap();
    f.set_modified(t).unwrap();
}

impl World {
    fn new() -> World {
        let env = TestEnv::new();
        let outside = env.dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        World {
            env,
            outside,
            writes: 0,
            monitors: Vec::new(),
            restores: 0,
            root: is_root(),
        }
    }

    fn path(&self, dir: usize, name: usize) -> PathBuf {
        self.env.watched.join(DIRS[dir]).join(NAMES[name])
    }

    /// Regular files now, by path, in name order.
    fn files(&self) -> Vec<PathBuf> {
        walkdir::WalkDir::new(&self.env.watched)
            .sort_by_file_name()
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().to_path_buf())
            .collect()
    }

    /// Files and links, which a delete can take.
    fn leaves(&self) -> Vec<PathBuf> {
        walkdir::WalkDir::new(&self.env.watched)
            .sort_by_file_name()
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| !e.file_type().is_dir())
            .map(|e| e.path().to_path_buf())
            .collect()
    }

    /// Makes room at `p` for a new file or link: what is there (a file or
    /// a link, never followed) goes.
    fn clear(p: &Path) {
        if std::fs::symlink_metadata(p).is_ok() {
            std::fs::remove_file(p).unwrap();
        }
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    }

    fn apply(&mut self, op: &Op) {
        match op {
            &Op::Write {
                dir,
                name,
                len,
                mode,
                nanos,
                sparse,
                seed,
            } => {
                self.writes += 1;
                let p = self.path(dir, name);
                Self::clear(&p);
                let data = bytes_of(u64::from(seed) ^ (self.writes << 8), len);
                {
                    use std::io::{Seek, SeekFrom, Write};
                    let mut f = std::fs::File::create(&p).unwrap();
                    if sparse {
                        // A hole of 64 KiB, then the data, then a hole.
                        f.seek(SeekFrom::Start(64 << 10)).unwrap();
                        f.write_all(&data).unwrap();
                        f.set_len((64 << 10) + len as u64 + (32 << 10)).unwrap();
                    } else {
                        f.write_all(&data).unwrap();
                    }
                }
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(FILE_MODES[mode]))
                    .unwrap();
                set_mtime(&p, 1_600_000_000 + self.writes * 11, nanos);
            }
            Op::Modify { pick, seed } => {
                let files = self.files();
                if files.is_empty() {
                    return;
                }
                let p = &files[pick.index(files.len())];
                let m = std::fs::metadata(p).unwrap();
                self.writes += 1;
                let mut data = std::fs::read(p).unwrap();
                data.push(*seed);
                // In place: the inode and its other names keep it (a
                // read-only mode is lifted for the write and put back).
                let mode = m.mode() & 0o7777;
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | 0o200)).unwrap();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .and_then(|mut f| std::io::Write::write_all(&mut f, &data))
                    .unwrap();
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
                set_mtime(p, 1_600_000_000 + self.writes * 11, 7);
                assert_eq!(std::fs::metadata(p).unwrap().ino(), m.ino());
            }
            &Op::Mkdir { dir, mode } => {
                let p = self.env.watched.join(DIRS[dir]);
                if DIRS[dir].is_empty() {
                    return;
                }
                std::fs::create_dir_all(&p).unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(DIR_MODES[mode]))
                    .unwrap();
            }
            &Op::Redir { dir, mode, nanos } => {
                let p = self.env.watched.join(DIRS[dir]);
                if DIRS[dir].is_empty() || !p.is_dir() {
                    return;
                }
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(DIR_MODES[mode]))
                    .unwrap();
                set_mtime(&p, 1_500_000_000 + u64::from(nanos % 1000), nanos);
            }
            Op::Link { dir, name, target } => {
                let p = self.path(*dir, *name);
                Self::clear(&p);
                let t: Vec<u8> = match target {
                    Target::Sibling(n) => NAMES[*n].as_bytes().to_vec(),
                    Target::Folder(d) => {
                        let depth = DIRS[*dir].split('/').filter(|c| !c.is_empty()).count();
                        let mut t = "../".repeat(depth);
                        t.push_str(DIRS[*d]);
                        if t.is_empty() {
                            t.push('.');
                        }
                        t.into_bytes()
                    }
                    Target::Absolute => b"/etc/hostname".to_vec(),
                    Target::Dangling => b"no such/name".to_vec(),
                    Target::Outside => {
                        // Deep enough to leave any target this test uses.
                        let mut t = "../".repeat(12).into_bytes();
                        t.extend_from_slice(self.outside.as_os_str().as_bytes());
                        t
                    }
                };
                symlink(std::ffi::OsStr::from_bytes(&t), &p).unwrap();
            }
            Op::HardLink { pick, dir, name } => {
                let files = self.files();
                if files.is_empty() {
                    return;
                }
                let from = files[pick.index(files.len())].clone();
                let to = self.path(*dir, *name);
                if from == to {
                    return;
                }
                Self::clear(&to);
                std::fs::hard_link(&from, &to).unwrap();
            }
            Op::Delete { pick } => {
                let leaves = self.leaves();
                // Never the last one: an empty watched folder is taken for
                // an unmounted disk (a documented safeguard).
                if leaves.len() > 1 {
                    std::fs::remove_file(&leaves[pick.index(leaves.len())]).unwrap();
                }
            }
            Op::Chown { pick, id } => {
                let files = self.files();
                if !self.root || files.is_empty() {
                    return;
                }
                let p = &files[pick.index(files.len())];
                std::os::unix::fs::chown(p, Some(*id), Some(*id + 1)).unwrap();
                // An owner change alone makes no new version (docs/tree.md):
                // the content changes with it, as a user's edit would.
                self.apply(&Op::Modify {
                    pick: *pick,
                    seed: *id as u8,
                });
            }
            Op::Monitor => self.monitor(),
        }
    }

    fn monitor(&mut self) {
        let start = now();
        let out = self.env.run(&["monitor"]);
        assert_eq!(out.status.code(), Some(0), "monitor: {}", text(&out.stderr));
        let end = now();
        self.monitors
            .push((start, end, snapshot(&self.env.watched)));
        // The clock moves on before the next edit.
        std::thread::sleep(Duration::from_millis(5));
    }

    fn restore(&mut self, as_of: Option<f64>) -> Snapshot {
        self.restores += 1;
        let target = self.env.dir.path().join(format!("r/{}", self.restores));
        let mut cmd = Command::new(bin("dbackup-restore"));
        cmd.arg("--no-progress")
            .arg("-d")
            .arg(self.env.workdir.join("isos"))
            .arg("--to")
            .arg(&target)
            .env_remove("FAILPOINTS")
            .stdin(Stdio::null());
        if let Some(t) = as_of {
            cmd.arg("--as-of").arg(format!("{t:.6}"));
        }
        let out = cmd.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "restore --as-of {as_of:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let got = if target.exists() {
            snapshot(&target)
        } else {
            Snapshot::default()
        };
        assert_eq!(
            std::fs::read_dir(&self.outside).unwrap().count(),
            0,
            "a restore wrote through a link"
        );
        got
    }

    fn check(&mut self) {
        self.monitor();
        let out = self.env.run(&["close"]);
        assert!(
            matches!(out.status.code(), Some(0 | 2)),
            "close: {}",
            text(&out.stderr)
        );
        ok(self.env.mkiso(&[]), "mkiso");
        let monitors = self.monitors.clone();
        // As of a time between monitor k and the next: the tree k saw; the
        // last one's without --as-of.
        for (k, (_, end, want)) in monitors.iter().enumerate() {
            let as_of = monitors.get(k + 1).map(|next| (end + next.0) / 2.0);
            let got = self.restore(as_of);
            assert_same(&got, want, &format!("as of after monitor {k}"));
        }
    }
}

fn assert_same(got: &Snapshot, want: &Snapshot, what: &str) {
    let show = |n: &[u8]| String::from_utf8_lossy(n).into_owned();
    let names = |s: &Snapshot| s.nodes.keys().map(|n| show(n)).collect::<Vec<_>>();
    assert_eq!(names(got), names(want), "names restored {what}");
    for (name, node) in &want.nodes {
        assert_eq!(&got.nodes[name], node, "{} restored {what}", show(name));
    }
    assert_eq!(got.links, want.links, "hard links restored {what}");
    // A sparse file stays sparse (runs of zeros in another may become holes).
    let dense: Vec<String> = want
        .sparse
        .difference(&got.sparse)
        .map(|n| show(n))
        .collect();
    assert!(
        dense.is_empty(),
        "sparse files restored dense {what}: {dense:?}"
    );
}

fn config() -> Config {
    binary_property_config(32, 64)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn restore_as_of_each_monitor_gives_the_exact_tree_then(
        initial in prop::collection::vec(op(), 1..=12),
        ops in prop::collection::vec(op(), 0..=16),
    ) {
        let mut world = World::new();
        for op in initial.iter().filter(|o| !matches!(o, Op::Monitor)) {
            world.apply(op);
        }
        // Something to back up, so the watched folder is never empty.
        world.apply(&Op::Write {
            dir: 0, name: 0, len: 10, mode: 0, nanos: 1, sparse: false, seed: 0,
        });
        world.env.init(&["--name", "Tree"]);
        for op in &ops {
            world.apply(op);
        }
        world.check();
    }
}

#[test]
fn a_link_out_of_the_target_and_a_file_below_its_name() {
    // The tree a hostile catalogue could describe is made here for real
    // at two times: `/x` a folder with a file, later `/x` a link out.
    let mut w = World::new();
    w.env.write("x/f", b"inside");
    w.env.init(&[]);
    w.monitor();
    std::fs::remove_file(w.env.watched.join("x/f")).unwrap();
    std::fs::remove_dir(w.env.watched.join("x")).unwrap();
    symlink(&w.outside, w.env.watched.join("x")).unwrap();
    w.env.write("keep", b"k");
    w.check();
}
