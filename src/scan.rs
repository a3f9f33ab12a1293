//! Walking the watched folder and deciding what changed: every regular file
//! is compared by size and mtime with its latest backed-up version, every
//! folder, symbolic link and further name of a hard-linked file (an entry,
//! see docs/tree.md) with its latest recorded version. Never follows
//! symlinks; applies the set's excludes; reports what it cannot read or
//! back up (special files, unreadable folders) without stopping.

use std::ops::ControlFlow;
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use glob::{MatchOptions, Pattern};

use std::collections::HashMap;

use crate::catalog::tree::{Attrs, Entry, EntryKind, LiveTree};
use crate::catalog::{LiveFiles, Mtime};
use crate::error::{Error, Result};
use crate::owners::Owners;
use crate::{fsutil, names};

/// Compiled exclude patterns. A pattern without a `/` matches a file or
/// folder name at any depth (`*.tmp`, `.cache`); one with a `/` matches the
/// path relative to the watched folder (`photos/raw/**`, a leading `/` is
/// allowed). `*` does not cross `/`; `**` does.
#[derive(Debug, Clone, Default)]
pub struct Excludes {
    by_name: Vec<Pattern>,
    by_path: Vec<Pattern>,
}

const MATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl Excludes {
    /// Compiles the patterns; an invalid one is an error naming it.
    pub fn new(patterns: &[String]) -> Result<Excludes> {
        let mut ex = Excludes::default();
        for p in patterns {
            let trimmed = p.trim_start_matches('/');
            let pat = Pattern::new(trimmed)
                .map_err(|e| Error::Invalid(format!("exclude pattern {p:?}: {e}")))?;
            if p.contains('/') {
                ex.by_path.push(pat);
            } else {
                ex.by_name.push(pat);
            }
        }
        Ok(ex)
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty() && self.by_path.is_empty()
    }

    /// Whether the path (relative to the watched folder) is excluded. A path
    /// is excluded when it or any folder above it matches.
    pub fn is_excluded(&self, rel: &Path) -> bool {
        if self.by_name.is_empty() && self.by_path.is_empty() {
            return false;
        }
        let mut cur = Some(rel);
        while let Some(p) = cur {
            if p.as_os_str().is_empty() {
                break;
            }
            if self.matches_one(p) {
                return true;
            }
            cur = p.parent();
        }
        false
    }

    fn matches_one(&self, rel: &Path) -> bool {
        if let Some(name) = rel.file_name().and_then(|n| n.to_str()) {
            if self.by_name.iter().any(|p| p.matches_with(name, MATCH)) {
                return true;
            }
        }
        self.by_path.iter().any(|p| p.matches_path_with(rel, MATCH))
    }
}

/// A regular file found by the walk that differs from its latest backup.
#[derive(Debug, Clone)]
pub struct Change {
    /// Absolute path in the watched folder.
    pub path: PathBuf,
    /// Catalogue name (`/a/b`).
    pub name: Vec<u8>,
    pub size: u64,
    pub mtime_secs: i64,
    pub mtime_nanos: i64,
    /// Why it is backed up, in the original's words (`New file`, ...).
    pub desc: String,
    /// Mode, owner and exact mtime, when known.
    pub attrs: Option<Attrs>,
}

impl Change {
    /// The mtime as the catalogue stores it.
    pub fn mtime(&self) -> f64 {
        Mtime::from_parts(self.mtime_secs, self.mtime_nanos)
    }
}

/// Something the walk could not back up.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// What the walk saw, beyond the changes it handed on.
#[derive(Debug, Clone, Default)]
pub struct ScanStats {
    pub files: u64,
    pub bytes: u64,
    pub symlinks: u64,
    /// Folders below the watched one.
    pub dirs: u64,
    /// Folders that could not be read: nothing below them counts as deleted.
    pub unreadable_dirs: Vec<Vec<u8>>,
    /// Whether the walk went to the end (not stopped by `on_change`).
    pub complete: bool,
}

/// Where the walk hands what it finds, as it goes.
pub trait Sink {
    /// A new or changed regular file; `Break` stops the walk.
    fn change(&mut self, change: Change) -> Result<ControlFlow<()>>;
    /// Something that cannot be backed up.
    fn skip(&mut self, skipped: Skipped);
    /// A new or changed folder, symbolic link or hard link.
    fn entry(&mut self, entry: Entry) -> Result<()>;
}

/// The attrs of a file, folder or link from its metadata.
pub fn attrs_of(m: &std::fs::Metadata, owners: &mut Owners) -> Attrs {
    attrs_from(&fsutil::Stat::from(m), owners)
}

fn attrs_from(st: &fsutil::Stat, owners: &mut Owners) -> Attrs {
    Attrs {
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        owner: owners.user_name(st.uid).map(str::to_string),
        group: owners.group_name(st.gid).map(str::to_string),
        mtime_sec: st.mtime,
        // The kernel gives 0..1e9; anything else is clamped, never trusted.
        mtime_nsec: st.mtime_nsec.clamp(0, 999_999_999) as u32,
    }
}

/// The order the walk takes a folder's children in: by name, a folder's
/// name as if it ended in `/`. Then the regular files come in the byte
/// order of their whole paths (`/a-b` before `/a/x`, as `-` sorts before
/// `/`), the order [`LiveFiles`] streams the catalogue in.
pub fn walk_order(a: &walkdir::DirEntry, b: &walkdir::DirEntry) -> std::cmp::Ordering {
    let (x, y) = (leaf(a.path()), leaf(b.path()));
    let n = x.len().min(y.len());
    match x[..n].cmp(&y[..n]) {
        std::cmp::Ordering::Equal => {}
        other => return other,
    }
    // One name starts the other: what follows it in each key decides (no
    // name holds a `/`; nothing is less than something).
    let next = |name: &[u8], e: &walkdir::DirEntry| {
        name.get(n)
            .copied()
            .or_else(|| e.file_type().is_dir().then_some(b'/'))
    };
    next(x, a).cmp(&next(y, b))
}

/// The last component of a path walkdir made (`parent.join(name)`), by its
/// bytes: `Path::file_name` parses every component, which cost about a
/// tenth of a rescan when the sort called it for each comparison.
fn leaf(path: &Path) -> &[u8] {
    let b = path.as_os_str().as_bytes();
    match memchr::memrchr(b'/', b) {
        Some(i) => &b[i + 1..],
        None => b,
    }
}

/// `path` relative to `root`, by bytes when `path` begins with them (as
/// every path walkdir makes below `root` does), else by components.
fn relative<'a>(path: &'a Path, root: &Path) -> Option<&'a Path> {
    let (p, r) = (path.as_os_str().as_bytes(), root.as_os_str().as_bytes());
    if let Some(rest) = p.strip_prefix(r) {
        let rest = match rest.first() {
            Some(b'/') => &rest[1..],
            _ if r.ends_with(b"/") || rest.is_empty() => rest,
            // `/w` is not a prefix of `/wx` as a path.
            _ => return path.strip_prefix(root).ok(),
        };
        if !rest.starts_with(b"/") {
            return Some(Path::new(std::ffi::OsStr::from_bytes(rest)));
        }
    }
    path.strip_prefix(root).ok()
}

/// Walks `root`, looks up every regular file it sees in `live` (in name
/// order, see [`walk_order`]) and every entry in `tree`, and hands each new
/// or changed regular file and entry, and each problem, to `sink` as it
/// goes. Memory stays flat however large the tree, but for the folders and
/// links in `tree` and the first names of files with several links whose
/// other names are still to come.
pub fn walk(
    root: &Path,
    excludes: &Excludes,
    live: &mut LiveFiles,
    tree: &mut LiveTree,
    sink: &mut dyn Sink,
) -> Result<ScanStats> {
    let mut owners = Owners::new();
    // First name of each inode with several links, and how many of its
    // links are still to come: bounded by such files seen but not yet
    // seen whole.
    let mut inodes: HashMap<(u64, u64), (Vec<u8>, u64)> = HashMap::new();
    let mut stats = ScanStats::default();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by(walk_order)
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || excludes.is_empty()
                || e.path()
                    .strip_prefix(root)
                    .map(|rel| !excludes.is_excluded(rel))
                    .unwrap_or(true)
        });
    let mut folder = Folder::default();
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(err) => {
                let path = err.path().unwrap_or(root).to_path_buf();
                if err.depth() == 0 {
                    return Err(Error::Invalid(format!(
                        "cannot read the watched folder {}: {}",
                        root.display(),
                        err.io_error()
                            .map(|e| e.to_string())
                            .unwrap_or_else(|| err.to_string())
                    )));
                }
                let reason = match err.io_error() {
                    Some(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        "vanished during the scan".to_string()
                    }
                    Some(e) => format!("cannot read folder: {e}"),
                    None => err.to_string(),
                };
                if let Ok(rel) = path.strip_prefix(root) {
                    stats.unreadable_dirs.push(names::from_relative(rel));
                }
                sink.skip(Skipped { path, reason });
                continue;
            }
        };
        let ft = entry.file_type();
        let path = entry.path();
        let Some(rel) = relative(path, root) else {
            continue;
        };
        if ft.is_dir() || ft.is_symlink() {
            if entry.depth() == 0 {
                continue;
            }
            let name = names::from_relative(rel);
            let meta = match std::fs::symlink_metadata(path) {
                Ok(m) => m,
                Err(err) => {
                    sink.skip(Skipped {
                        path: path.to_path_buf(),
                        reason: match err.kind() {
                            std::io::ErrorKind::NotFound => "vanished during the scan".into(),
                            _ => format!("cannot read: {err}"),
                        },
                    });
                    continue;
                }
            };
            let (kind, target) = if ft.is_dir() {
                stats.dirs += 1;
                (EntryKind::Dir, Vec::new())
            } else {
                stats.symlinks += 1;
                match std::fs::read_link(path) {
                    Ok(t) => (EntryKind::Symlink, t.into_os_string().into_vec()),
                    Err(err) => {
                        sink.skip(Skipped {
                            path: path.to_path_buf(),
                            reason: format!("cannot read the link: {err}"),
                        });
                        continue;
                    }
                }
            };
            let e = Entry {
                name,
                kind,
                target,
                attrs: attrs_of(&meta, &mut owners),
            };
            if tree.observe(&e) {
                sink.entry(e)?;
            }
            continue;
        }
        if !ft.is_file() {
            sink.skip(Skipped {
                path: path.to_path_buf(),
                reason: format!("not a regular file ({})", kind_of(&ft)),
            });
            continue;
        }
        let name = names::from_relative(rel);
        let meta = match folder.stat(path) {
            Ok(m) => m,
            Err(err) => {
                // Known but unreadable: looked up, it does not count as
                // deleted.
                live.lookup(&name)?;
                let reason = match err.kind() {
                    std::io::ErrorKind::NotFound => "vanished during the scan".to_string(),
                    _ => format!("cannot read: {err}"),
                };
                sink.skip(Skipped {
                    path: path.to_path_buf(),
                    reason,
                });
                continue;
            }
        };
        if meta.nlink > 1 {
            match inodes.entry((meta.dev, meta.ino)) {
                std::collections::hash_map::Entry::Occupied(mut first) => {
                    // Another name of a file seen earlier in this scan:
                    // stored once, under its first name.
                    let target = first.get().0.clone();
                    first.get_mut().1 -= 1;
                    if first.get().1 == 0 {
                        first.remove();
                    }
                    let e = Entry {
                        name,
                        kind: EntryKind::Hardlink,
                        target,
                        attrs: attrs_from(&meta, &mut owners),
                    };
                    if tree.observe(&e) {
                        sink.entry(e)?;
                    }
                    continue;
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((name.clone(), meta.nlink - 1));
                }
            }
        }
        stats.files += 1;
        stats.bytes += meta.size;
        let (secs, nanos) = (meta.mtime, meta.mtime_nsec);
        let desc = match live.lookup(&name)? {
            Some(e) => {
                let size_same = e.size == meta.size;
                let mtime_same = e.mtime.matches(secs, nanos);
                if size_same && mtime_same {
                    continue;
                }
                let mut parts = Vec::new();
                if !size_same {
                    parts.push(format!("Size changed: {} -> {}", e.size, meta.size));
                }
                if !mtime_same {
                    let now = Mtime::Exact(secs, nanos.clamp(0, 999_999_999) as u32);
                    parts.push(format!(
                        "Modification time changed: {} -> {}",
                        e.mtime.display(),
                        now.display()
                    ));
                }
                parts.join(" | ")
            }
            None => "New file".to_string(),
        };
        let flow = sink.change(Change {
            path: path.to_path_buf(),
            name,
            size: meta.size,
            mtime_secs: secs,
            mtime_nanos: nanos,
            desc,
            attrs: Some(attrs_from(&meta, &mut owners)),
        })?;
        if flow.is_break() {
            return Ok(stats);
        }
    }
    stats.complete = true;
    Ok(stats)
}

/// The folder of the files being stated, held open: walkdir lists a
/// folder's files one after the other, so each folder is opened about once.
#[derive(Default)]
struct Folder {
    open: Option<(Vec<u8>, std::fs::File)>,
}

impl Folder {
    /// Size and mtime of the file at `path` (not following a link).
    fn stat(&mut self, path: &Path) -> std::io::Result<fsutil::Stat> {
        // The folder and the name by bytes (see `leaf`).
        let bytes = path.as_os_str().as_bytes();
        let Some(i) = memchr::memrchr(b'/', bytes) else {
            return by_path(path);
        };
        let (dir, name) = (&bytes[..i.max(1)], &bytes[i + 1..]);
        if name.is_empty() {
            return by_path(path);
        }
        if self.open.as_ref().is_none_or(|(p, _)| p.as_slice() != dir) {
            self.open = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                .open(Path::new(std::ffi::OsStr::from_bytes(dir)))
                .ok()
                .map(|f| (dir.to_vec(), f));
        }
        match &self.open {
            Some((_, f)) => fsutil::stat_at(f.as_fd(), std::ffi::OsStr::from_bytes(name)),
            None => by_path(path),
        }
    }
}

fn by_path(path: &Path) -> std::io::Result<fsutil::Stat> {
    Ok(fsutil::Stat::from(&std::fs::symlink_metadata(path)?))
}

fn kind_of(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_by_name_and_by_path() {
        let ex = Excludes::new(&[
            "*.tmp".into(),
            ".cache".into(),
            "photos/raw/**".into(),
            "/top.txt".into(),
        ])
        .unwrap();
        assert!(ex.is_excluded(Path::new("a/b/x.tmp")));
        assert!(ex.is_excluded(Path::new(".cache")));
        assert!(ex.is_excluded(Path::new("deep/.cache/file")));
        assert!(ex.is_excluded(Path::new("photos/raw/2012/a.nef")));
        assert!(ex.is_excluded(Path::new("top.txt")));
        assert!(!ex.is_excluded(Path::new("sub/top.txt")));
        assert!(!ex.is_excluded(Path::new("photos/a.jpg")));
        assert!(!ex.is_excluded(Path::new("x.tmpl")));
    }

    /// Collects what the walk hands on.
    #[derive(Default)]
    struct Collect {
        changes: Vec<Vec<u8>>,
    }

    impl Sink for Collect {
        fn change(&mut self, change: Change) -> Result<ControlFlow<()>> {
            self.changes.push(change.name);
            Ok(ControlFlow::Continue(()))
        }
        fn skip(&mut self, _: Skipped) {}
        fn entry(&mut self, _: Entry) -> Result<()> {
            Ok(())
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// The walk hands on regular files in the byte order of their whole
        /// names, whatever bytes sort around `/` in them: the order the
        /// catalogue is streamed in.
        #[test]
        fn files_come_in_the_byte_order_of_their_names(
            paths in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::collection::vec(
                        proptest::sample::select(vec![b'!', b'-', b'.', b'0', b'a', 0xff, 0x01]),
                        1..3,
                    ),
                    1..4,
                ),
                1..25,
            )
        ) {
            use std::os::unix::ffi::OsStrExt;
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("w");
            std::fs::create_dir(&root).unwrap();
            for parts in &paths {
                let mut p = root.clone();
                for (i, part) in parts.iter().enumerate() {
                    // `.` and `..` are no names.
                    let mut part = part.clone();
                    if part.iter().all(|&b| b == b'.') {
                        part.push(b'a');
                    }
                    p.push(std::ffi::OsStr::from_bytes(&part));
                    if i + 1 < parts.len() {
                        if p.is_file() {
                            break;
                        }
                        let _ = std::fs::create_dir(&p);
                    } else if !p.exists() {
                        std::fs::write(&p, b"x").unwrap();
                    }
                }
            }
            let settings = crate::catalog::Settings {
                watched: root.clone(),
                disc_size: 1 << 30,
                excludes: Vec::new(),
                uuid: "u".into(),
                name: "n".into(),
                ecc: false,
            };
            let cat = crate::catalog::Catalog::create(&dir.path().join("m.db"), &settings).unwrap();
            let mut live = cat.live_files().unwrap();
            let mut tree = LiveTree::default();
            let mut sink = Collect::default();
            walk(&root, &Excludes::default(), &mut live, &mut tree, &mut sink).unwrap();
            let mut sorted = sink.changes.clone();
            sorted.sort();
            proptest::prop_assert_eq!(&sink.changes, &sorted);
            proptest::prop_assert!(!sink.changes.is_empty());
        }
    }

    #[test]
    fn relative_paths_by_bytes_agree_with_components() {
        for (root, path) in [
            ("/w", "/w"),
            ("/w", "/w/a"),
            ("/w", "/w/a/b"),
            ("/w/", "/w/a"),
            ("/w", "/wx/a"),
            ("/", "/a"),
            ("/w/.", "/w/./a"),
            ("w", "w/a"),
            ("/w", "/other"),
        ] {
            let (root, path) = (Path::new(root), Path::new(path));
            assert_eq!(
                relative(path, root),
                path.strip_prefix(root).ok(),
                "{path:?} below {root:?}"
            );
        }
    }

    #[test]
    fn bad_pattern_is_an_error() {
        assert!(Excludes::new(&["[".into()]).is_err());
    }
}
