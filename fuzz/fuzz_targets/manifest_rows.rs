//! A manifest built row by row from structured input, with the real schema
//! (ours, the original's, or one without column types so any value fits
//! anywhere), holding what a damaged or crafted disc could: wrong SQLite
//! types, NULLs, huge and negative sizes and ids, hostile names (`..`,
//! absolute paths, NUL bytes, control characters, non-UTF-8 bytes, very
//! long ones), and the tree's folders, links and attributes
//! (docs/tree.md) with the same. The recovery walk runs over it, and then a real restore
//! from it into a target folder in which symbolic links to the outside may
//! have been planted. Property: nothing is ever written outside the target
//! (the folder beside it and the disc stay exactly as they were).

#![no_main]

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use arbitrary::Arbitrary;
use dbackup::history::Matcher;
use dbackup::progress::Progress;
use dbackup::restore::{self, Prompt, RestoreOptions};
use libfuzzer_sys::fuzz_target;
use md5::{Digest, Md5};
use rusqlite::types::Value;

#[derive(Arbitrary, Debug, Clone)]
enum Val {
    Null,
    Int(i64),
    Small(u8),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Max,
    Min,
    MinusOne,
    Huge,
}

impl Val {
    fn sql(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Int(i) => Value::Integer(*i),
            Val::Small(i) => Value::Integer(i64::from(*i)),
            Val::Real(f) => Value::Real(*f),
            Val::Text(s) => Value::Text(s.clone()),
            Val::Blob(b) => Value::Blob(b.clone()),
            Val::Max => Value::Integer(i64::MAX),
            Val::Min => Value::Integer(i64::MIN),
            Val::MinusOne => Value::Integer(-1),
            Val::Huge => Value::Real(1.0e300),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum Name {
    Text(String),
    Bytes(Vec<u8>),
    /// `/` and then each part joined by `/`.
    Parts(Vec<Part>),
    Val(Val),
}

#[derive(Arbitrary, Debug, Clone)]
enum Part {
    Plain(String),
    Dot,
    DotDot,
    Empty,
    Nul,
    Control(u8),
    Latin1,
    Long(u16),
    Common(u8),
}

const COMMON: &[&str] = &[
    "a",
    "b",
    "x.jpg",
    "IMG_0001.JPG",
    "etc",
    "passwd",
    "link",
    "d",
];

impl Name {
    fn sql(&self) -> Value {
        match self {
            Name::Text(s) => Value::Text(s.clone()),
            Name::Bytes(b) => Value::Blob(b.clone()),
            Name::Val(v) => v.sql(),
            Name::Parts(parts) => {
                let mut out = Vec::new();
                for p in parts {
                    out.push(b'/');
                    match p {
                        Part::Plain(s) => out.extend_from_slice(s.as_bytes()),
                        Part::Dot => out.push(b'.'),
                        Part::DotDot => out.extend_from_slice(b".."),
                        Part::Empty => {}
                        Part::Nul => out.extend_from_slice(b"a\0b"),
                        Part::Control(c) => out.extend_from_slice(&[b'c', c & 0x1f, b'\x7f']),
                        Part::Latin1 => out.extend_from_slice(b"caf\xe9"),
                        Part::Long(n) => {
                            out.extend(std::iter::repeat_n(b'l', usize::from(*n % 600)))
                        }
                        Part::Common(i) => {
                            out.extend_from_slice(COMMON[usize::from(*i) % COMMON.len()].as_bytes())
                        }
                    }
                }
                match std::str::from_utf8(&out) {
                    Ok(s) => Value::Text(s.to_string()),
                    Err(_) => Value::Blob(out),
                }
            }
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum Md5Val {
    /// The MD5 of the stored content: a file that restores.
    OfContent,
    Upper,
    Val(Val),
}

#[derive(Arbitrary, Debug, Clone)]
enum Id {
    /// The next id (1, 2, ...): on disc as `files/0/1`...
    Next,
    Val(Val),
}

#[derive(Arbitrary, Debug)]
struct DiscIn {
    id: Val,
    started: Val,
    completed: Val,
    available: Val,
}

#[derive(Arbitrary, Debug)]
struct FileIn {
    id: Id,
    name: Name,
    timestamp: Val,
    md5: Md5Val,
    size: Option<Val>,
    mtime: Val,
    /// `None`: disc 1, the disc given.
    disc: Option<Val>,
    desc: Val,
    copied: Option<Val>,
    /// What the disc holds at `files/<id div 256>/<id>` (the first bytes).
    content: Option<Vec<u8>>,
}

#[derive(Arbitrary, Debug)]
enum Kind {
    Dir,
    Symlink,
    Hardlink,
    Val(Val),
}

/// An `entries` row (docs/tree.md): a folder, a link (its target any
/// name, many of them outside the target) or a hard link.
#[derive(Arbitrary, Debug)]
struct EntryIn {
    name: Name,
    kind: Kind,
    timestamp: Val,
    deleted: Val,
    target: Name,
    attrs: [Val; 7],
}

#[derive(Arbitrary, Debug)]
enum Schema {
    Ours,
    Original,
    Untyped,
}

#[derive(Arbitrary, Debug)]
enum Plant {
    /// A link to the outside folder where a folder of a file's path goes.
    LinkToFolder { file: u8, depth: u8 },
    /// A link to the outside file where a file goes.
    LinkToFile { file: u8 },
    /// A regular file where a folder goes.
    FileAsFolder { file: u8, depth: u8 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    schema: Schema,
    discs: Vec<DiscIn>,
    files: Vec<FileIn>,
    deletions: Vec<(Name, Val, Val)>,
    settings: Vec<(Val, Val)>,
    /// The tree's tables: made when there are rows for them.
    entries: Vec<EntryIn>,
    attrs: Vec<(Id, [Val; 7])>,
    pattern: Option<String>,
    ignore_case: bool,
    as_of: Option<f64>,
    overwrite: bool,
    plants: Vec<Plant>,
}

const ORIGINAL: &str = "
CREATE TABLE discs(id INTEGER PRIMARY KEY, started INTEGER, completed INTEGER, available BOOLEAN);
CREATE TABLE files(id INTEGER PRIMARY KEY, filename TEXT, timestamp INTEGER, md5 TEXT,
                   size INTEGER, mtime INTEGER, disc_id INTEGER, desc TEXT, copied BOOLEAN);
CREATE INDEX filenames ON files(filename, copied);
";
const UNTYPED: &str = "
CREATE TABLE discs(id, started, completed, available);
CREATE TABLE files(id, filename, timestamp, md5, size, mtime, disc_id, desc, copied);
CREATE TABLE settings(key, value);
CREATE TABLE deletions(id, filename, deleted, file_id);
";

/// The tree's tables without column types, so any value fits.
const TREE: &str = "
CREATE TABLE IF NOT EXISTS attrs(file_id, mode, uid, gid, owner, grp, mtime_sec, mtime_nsec);
CREATE TABLE IF NOT EXISTS entries(id INTEGER PRIMARY KEY, filename, kind, timestamp, deleted, target,
                     mode, uid, gid, owner, grp, mtime_sec, mtime_nsec);
";

/// Bytes stored per file at most, and rows of each kind.
const MAX_CONTENT: usize = 4096;
const MAX_ROWS: usize = 64;

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Builds the disc folder: `manifest.db` and the stored files.
fn build_disc(input: &Input, disc: &Path) -> rusqlite::Result<()> {
    let conn = rusqlite::Connection::open(disc.join(dbackup::disc::MANIFEST))?;
    conn.execute_batch(match input.schema {
        Schema::Ours => dbackup::catalog::SCHEMA,
        Schema::Original => ORIGINAL,
        Schema::Untyped => UNTYPED,
    })?;
    // Disc 1 is the disc given: completed, so the folder opens as a disc.
    let _ = conn.execute(
        "INSERT INTO discs(id, started, completed, available) VALUES (1, 1.0e9, 1.1e9, 1)",
        [],
    );
    for d in input.discs.iter().take(MAX_ROWS) {
        let _ = conn.execute(
            "INSERT INTO discs(id, started, completed, available) VALUES (?1, ?2, ?3, ?4)",
            [
                d.id.sql(),
                d.started.sql(),
                d.completed.sql(),
                d.available.sql(),
            ],
        );
    }
    let mut next = 0i64;
    for f in input.files.iter().take(MAX_ROWS) {
        next += 1;
        let id = match &f.id {
            Id::Next => Value::Integer(next),
            Id::Val(v) => v.sql(),
        };
        let content: &[u8] = f.content.as_deref().unwrap_or(b"");
        let content = &content[..content.len().min(MAX_CONTENT)];
        let md5 = match &f.md5 {
            Md5Val::OfContent => Value::Text(md5_hex(content)),
            Md5Val::Upper => Value::Text(md5_hex(content).to_uppercase()),
            Md5Val::Val(v) => v.sql(),
        };
        let size = match &f.size {
            None => Value::Integer(content.len() as i64),
            Some(v) => v.sql(),
        };
        let disc_id = f.disc.as_ref().map_or(Value::Integer(1), Val::sql);
        let copied = f.copied.as_ref().map_or(Value::Integer(1), Val::sql);
        let _ = conn.execute(
            "INSERT INTO files(id, filename, timestamp, md5, size, mtime, disc_id, desc, copied)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            [
                id.clone(),
                f.name.sql(),
                f.timestamp.sql(),
                md5,
                size,
                f.mtime.sql(),
                disc_id,
                f.desc.sql(),
                copied,
            ],
        );
        if let (Value::Integer(id), Some(_)) = (id, &f.content) {
            let at = disc.join(dbackup::disc::file_path(id));
            if let Some(parent) = at.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = std::fs::write(at, content);
        }
    }
    for (name, deleted, file_id) in input.deletions.iter().take(MAX_ROWS) {
        let _ = conn.execute(
            "INSERT INTO deletions(filename, deleted, file_id) VALUES (?1, ?2, ?3)",
            [name.sql(), deleted.sql(), file_id.sql()],
        );
    }
    if !input.entries.is_empty() || !input.attrs.is_empty() {
        let _ = conn.execute_batch(TREE);
    }
    for e in input.entries.iter().take(MAX_ROWS) {
        let kind = match &e.kind {
            Kind::Dir => Value::Text("dir".into()),
            Kind::Symlink => Value::Text("symlink".into()),
            Kind::Hardlink => Value::Text("hardlink".into()),
            Kind::Val(v) => v.sql(),
        };
        let mut row = vec![
            e.name.sql(),
            kind,
            e.timestamp.sql(),
            e.deleted.sql(),
            e.target.sql(),
        ];
        row.extend(e.attrs.iter().map(Val::sql));
        let _ = conn.execute(
            "INSERT INTO entries(filename, kind, timestamp, deleted, target,
                                 mode, uid, gid, owner, grp, mtime_sec, mtime_nsec)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            rusqlite::params_from_iter(row),
        );
    }
    for (i, (id, attrs)) in input.attrs.iter().take(MAX_ROWS).enumerate() {
        let id = match id {
            Id::Next => Value::Integer(i as i64 + 1),
            Id::Val(v) => v.sql(),
        };
        let mut row = vec![id];
        row.extend(attrs.iter().map(Val::sql));
        let _ = conn.execute(
            "INSERT INTO attrs VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params_from_iter(row),
        );
    }
    for (key, value) in input.settings.iter().take(8) {
        let _ = conn.execute(
            "INSERT INTO settings(key, value) VALUES (?1, ?2)",
            [key.sql(), value.sql()],
        );
    }
    Ok(())
}

/// Everything below `root`, as (relative path, kind, content or link
/// target), never following links.
fn tree(root: &Path) -> BTreeMap<PathBuf, (char, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let entry = if meta.file_type().is_symlink() {
                let to = std::fs::read_link(&path).unwrap_or_default();
                ('l', to.as_os_str().as_bytes().to_vec())
            } else if meta.is_dir() {
                stack.push(path);
                ('d', Vec::new())
            } else {
                ('f', std::fs::read(e.path()).unwrap_or_default())
            };
            out.insert(rel, entry);
        }
    }
    out
}

/// The path below the target where file `i`'s first `depth + 1` folders
/// (or, with `depth` past its folders, the file itself) go, if its name is
/// one a restore accepts.
fn planted_path(input: &Input, i: u8, depth: Option<u8>) -> Option<PathBuf> {
    let f = input.files.get(usize::from(i))?;
    let name = match f.name.sql() {
        Value::Text(s) => s.into_bytes(),
        Value::Blob(b) => b,
        _ => return None,
    };
    let parts = restore::name_parts(&name).ok()?;
    let n = match depth {
        Some(d) => (usize::from(d) + 1).min(parts.len().saturating_sub(1)),
        None => parts.len(),
    };
    if n == 0 {
        return None;
    }
    let mut p = PathBuf::new();
    for part in &parts[..n] {
        p.push(std::ffi::OsStr::from_bytes(part.as_bytes()));
    }
    Some(p)
}

struct NoAnswer;

impl Prompt for NoAnswer {
    fn ask(&mut self, _question: &str) -> Option<String> {
        None
    }
    fn tell(&mut self, _line: &str) {}
}

fuzz_target!(|input: Input| {
    let dir = dbackup_fuzz::scratch();
    let disc = dir.path().join("disc");
    let origin = dir.path().join("origin");
    let sandbox = dir.path().join("sandbox");
    let target = sandbox.join("target");
    let outside = sandbox.join("outside");
    for d in [&disc, &origin, &target, &outside.join("d")] {
        std::fs::create_dir_all(d).expect("cannot create the scratch folders");
    }
    std::fs::write(outside.join("keep"), b"outside").expect("cannot write the outside file");
    if build_disc(&input, &disc).is_err() {
        return;
    }

    // Every name a restore accepts stays below the target.
    for f in &input.files {
        let name = match f.name.sql() {
            Value::Text(s) => s.into_bytes(),
            Value::Blob(b) => b,
            _ => continue,
        };
        if let Ok(parts) = restore::name_parts(&name) {
            assert!(!parts.is_empty());
            for p in &parts {
                let b = p.as_bytes();
                assert!(!b.is_empty() && b != b"." && b != b".." && !b.contains(&b'/'));
            }
        }
    }

    // What a hostile target could hold: links leading out, files in the way.
    for plant in input.plants.iter().take(4) {
        let (at, link_to) = match *plant {
            Plant::LinkToFolder { file, depth } => (
                planted_path(&input, file, Some(depth)),
                Some(outside.join("d")),
            ),
            Plant::LinkToFile { file } => {
                (planted_path(&input, file, None), Some(outside.join("keep")))
            }
            Plant::FileAsFolder { file, depth } => (planted_path(&input, file, Some(depth)), None),
        };
        let Some(at) = at.map(|p| target.join(p)) else {
            continue;
        };
        if let Some(parent) = at.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let _ = match link_to {
            Some(to) => std::os::unix::fs::symlink(to, &at),
            None => std::fs::write(&at, b"in the way"),
        };
    }

    let as_of = input.as_of.filter(|t| t.is_finite());
    if let Ok(m) = dbackup::catalog::manifest::Manifest::open(&disc.join(dbackup::disc::MANIFEST)) {
        dbackup_fuzz::walk(&m, as_of);
    }
    dbackup_fuzz::recovery_tools(&disc, &origin, as_of);

    let Ok(matcher) = Matcher::new(
        &input.pattern.iter().cloned().collect::<Vec<_>>(),
        input.ignore_case,
    ) else {
        return;
    };
    let disc_before = tree(&disc);
    let outside_before = tree(&outside);
    let opts = RestoreOptions {
        discs: vec![disc.clone()],
        target: target.clone(),
        matcher,
        as_of,
        dry_run: false,
        overwrite: input.overwrite,
        // Both ways, without another input field.
        no_mode: input.ignore_case,
        no_owner: input.ignore_case,
        drive: None,
        interactive: false,
        // Both ways of reporting what was not restored, without another input field.
        list_failed: input.overwrite,
        // No parity disc is given: nothing is rebuilt.
        rebuild_in: None,
    };
    let _ = restore::restore(&opts, &mut NoAnswer, &Progress::hidden(), &mut |_| {});

    // Nothing written outside the target: the disc, the folder beside the
    // target and the scratch folder itself are as they were.
    assert_eq!(tree(&disc), disc_before, "the restore changed the disc");
    assert_eq!(
        tree(&outside),
        outside_before,
        "the restore wrote outside the target"
    );
    let mut top: Vec<_> = std::fs::read_dir(dir.path())
        .expect("scratch folder")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["disc", "origin", "sandbox"],
        "the restore wrote beside the target"
    );
    let mut beside: Vec<_> = std::fs::read_dir(&sandbox)
        .expect("sandbox")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    beside.sort();
    assert_eq!(
        beside,
        ["outside", "target"],
        "the restore wrote beside the target"
    );
    assert!(std::fs::read_dir(&origin).expect("origin").next().is_none());
});
