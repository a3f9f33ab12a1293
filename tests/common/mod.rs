//! Shared test helpers: a temp watched tree and workdir, running the real
//! binaries, and an invariant check that reads the catalogue and the staged
//! files themselves.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use md5::{Digest, Md5};
use rusqlite::types::ValueRef;

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub watched: PathBuf,
    pub workdir: PathBuf,
}

pub fn bin(name: &str) -> PathBuf {
    match name {
        "dbackup-stage" => PathBuf::from(env!("CARGO_BIN_EXE_dbackup-stage")),
        "dbackup-mkiso" => PathBuf::from(env!("CARGO_BIN_EXE_dbackup-mkiso")),
        "dbackup-find" => PathBuf::from(env!("CARGO_BIN_EXE_dbackup-find")),
        "dbackup-lost" => PathBuf::from(env!("CARGO_BIN_EXE_dbackup-lost")),
        "dbackup-verify" => PathBuf::from(env!("CARGO_BIN_EXE_dbackup-verify")),
        "dbackup-restore" => PathBuf::from(env!("CARGO_BIN_EXE_dbackup-restore")),
        other => panic!("unknown binary {other}"),
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().expect("tempdir");
        let watched = dir.path().join("watched");
        std::fs::create_dir(&watched).unwrap();
        let workdir = dir.path().join("work");
        TestEnv {
            dir,
            watched,
            workdir,
        }
    }

    /// Writes a file (creating folders) under the watched folder.
    pub fn write(&self, rel: impl AsRef<Path>, data: &[u8]) -> PathBuf {
        let p = self.watched.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        p
    }

    pub fn stage(&self) -> Command {
        let mut c = Command::new(bin("dbackup-stage"));
        c.arg("-w").arg(&self.workdir).arg("--no-progress");
        c.env_remove("DBACKUP_WORKDIR").env_remove("FAILPOINTS");
        c
    }

    pub fn tool(&self, name: &str) -> Command {
        let mut c = Command::new(bin(name));
        c.arg("-w").arg(&self.workdir).arg("--no-progress");
        c.env_remove("DBACKUP_WORKDIR").env_remove("FAILPOINTS");
        c
    }

    pub fn mkiso(&self, args: &[&str]) -> Output {
        self.tool("dbackup-mkiso")
            .args(args)
            .output()
            .expect("run dbackup-mkiso")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.stage().args(args).output().expect("run dbackup-stage")
    }

    pub fn init(&self, extra: &[&str]) {
        let mut args = vec!["init", self.watched.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert!(out.status.success(), "init failed: {}", text(&out.stderr));
    }

    pub fn catalog(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.workdir.join("manifest.db")).unwrap()
    }

    /// Asserts the workdir's invariants against the files themselves and
    /// returns the latest backed-up MD5 per name.
    pub fn check_invariants(&self) -> BTreeMap<Vec<u8>, String> {
        check_workdir(&self.workdir)
    }
}

/// The integers of the first column `sql` returns.
fn ids(conn: &rusqlite::Connection, sql: &str) -> Vec<i64> {
    conn.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// Discs the catalogue records as closed.
pub fn closed_discs(conn: &rusqlite::Connection) -> Vec<i64> {
    ids(conn, "SELECT id FROM discs WHERE completed IS NOT NULL")
}

/// Discs whose image the catalogue records as built and read back.
pub fn verified_discs(conn: &rusqlite::Connection) -> Vec<i64> {
    ids(conn, "SELECT disc_id FROM images")
}

/// Where staged file `id` of disc `disc` lives in a workdir.
pub fn staged_path(workdir: &Path, disc: i64, id: i64) -> PathBuf {
    workdir
        .join("staging")
        .join(format!("disc-{disc:04}"))
        .join("files")
        .join((id / 256).to_string())
        .join(id.to_string())
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn md5_file(p: &Path) -> String {
    let data = std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    md5_bytes(&data)
}

/// `len` bytes that look random (xorshift from `state`, which goes on),
/// so that bytes out of place change an MD5.
pub fn random_bytes(state: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            *state as u8
        })
        .collect()
}

pub fn md5_bytes(data: &[u8]) -> String {
    let d = Md5::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every `copied=1` row has its staged file with its MD5 and size; no
/// reservations remain; no staged file lacks a `copied=1` row; no partial
/// files; every closed disc has its snapshot, and exactly one disc is open.
pub fn check_workdir(workdir: &Path) -> BTreeMap<Vec<u8>, String> {
    check_workdir_allowing(workdir, &BTreeSet::new())
}

/// Versions the catalogue records as damaged.
pub fn damaged_versions(conn: &rusqlite::Connection) -> BTreeSet<i64> {
    let exists: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='damaged'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    if exists == 0 {
        return BTreeSet::new();
    }
    let ids: BTreeSet<i64> = conn
        .prepare("SELECT file_id FROM damaged")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    ids
}

/// [`check_workdir`], where the staged copies in `rotten` (flipped by a
/// test) may differ from their MD5, and versions recorded damaged are on
/// no image. Also: only verified images carry the final name.
pub fn check_workdir_allowing(
    workdir: &Path,
    rotten: &BTreeSet<PathBuf>,
) -> BTreeMap<Vec<u8>, String> {
    let conn = rusqlite::Connection::open(workdir.join("manifest.db")).unwrap();
    let splits = has_split_tables(&conn);
    let reservations: i64 = conn
        .query_row(
            if splits {
                "SELECT (SELECT count(*) FROM files WHERE copied=0
                         AND id NOT IN (SELECT file_id FROM splits))
                      + (SELECT count(*) FROM parts WHERE copied=0)"
            } else {
                "SELECT count(*) FROM files WHERE copied=0"
            },
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(reservations, 0, "reservations left behind");
    let open: i64 = conn
        .query_row(
            "SELECT count(*) FROM discs WHERE completed IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(open, 1, "exactly one open disc");
    let mut verified_images: BTreeSet<i64> = verified_discs(&conn).into_iter().collect();
    // Discs of an adopted original set: their images were made before, and
    // no staged copy is left.
    let closed_discs = closed_discs(&conn);
    for &d in &closed_discs {
        let staged = workdir.join("staging").join(format!("disc-{d:04}"));
        let iso = workdir.join("isos").join(format!("disc-{d}.iso"));
        if !staged.exists() && iso.is_file() {
            verified_images.insert(d);
        }
    }
    // No image under its final name that is not recorded verified (images
    // of an adopted original set, with no staged copy left, aside), and
    // nothing half-written left beside them.
    if let Ok(rd) = std::fs::read_dir(workdir.join("isos")) {
        for e in rd {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".partial"), "partial image left: {name}");
            if let Some(n) = name
                .strip_prefix("disc-")
                .and_then(|r| r.strip_suffix(".iso"))
                .and_then(|n| n.parse::<i64>().ok())
            {
                assert!(
                    verified_images.contains(&n),
                    "{name} is there but not recorded verified"
                );
            }
        }
    }
    let damaged = damaged_versions(&conn);
    let mut stmt = conn
        .prepare("SELECT id, filename, md5, size, disc_id FROM files WHERE copied=1 ORDER BY id")
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut extracted: BTreeMap<i64, tempfile::TempDir> = BTreeMap::new();
    let mut expected = BTreeSet::new();
    let mut latest = BTreeMap::new();
    while let Some(r) = rows.next().unwrap() {
        let id: i64 = r.get(0).unwrap();
        let name = match r.get_ref(1).unwrap() {
            ValueRef::Text(b) | ValueRef::Blob(b) => b.to_vec(),
            _ => panic!("bad name"),
        };
        let md5: String = r.get(2).unwrap();
        let size: i64 = r.get(3).unwrap();
        let Some(disc) = r.get::<_, Option<i64>>(4).unwrap() else {
            // A split version: its parts, put together, are the file.
            assert!(splits, "row {id} is on no disc");
            if damaged.contains(&id) {
                continue;
            }
            let (whole, bytes) = check_parts(
                workdir,
                &conn,
                id,
                &verified_images,
                &mut extracted,
                &mut expected,
            );
            assert_eq!(bytes, size, "the parts of {id} hold its size");
            assert_eq!(whole, md5, "the parts of {id} put together have its MD5");
            latest.insert(name, md5);
            continue;
        };
        let path = staged_path(workdir, disc, id);
        if damaged.contains(&id) {
            // On no image; its rotten staged copy may wait to be freed.
            if path.exists() {
                expected.insert(path);
            }
            continue;
        }
        if verified_images.contains(&disc) {
            // A disc whose image is recorded verified: every file is in the
            // image with its MD5 (extracted once per disc by an independent
            // reader), whether or not its staged copy was freed yet.
            let dir = extracted.entry(disc).or_insert_with(|| {
                let iso = workdir.join("isos").join(format!("disc-{disc}.iso"));
                let dir = tempfile::tempdir().unwrap();
                bsdtar_extract(&iso, dir.path());
                dir
            });
            let p = dir
                .path()
                .join("files")
                .join((id / 256).to_string())
                .join(id.to_string());
            assert_eq!(
                md5_file(&p),
                md5,
                "md5 of {} in disc {disc}'s image",
                p.display()
            );
            if !path.exists() {
                latest.insert(name, md5);
                continue;
            }
        }
        let meta = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("row {id} has no staged file {}: {e}", path.display()));
        if !rotten.contains(&path) {
            assert_eq!(meta.len() as i64, size, "size of {}", path.display());
            assert_eq!(md5_file(&path), md5, "md5 of {}", path.display());
        }
        expected.insert(path);
        latest.insert(name, md5);
    }
    if splits {
        // The parts of versions that are no backup (abandoned) or not yet
        // (staging) are on their discs all the same.
        let unfinished: Vec<i64> = conn
            .prepare("SELECT file_id FROM splits WHERE state != 'complete'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        for id in unfinished {
            check_parts(
                workdir,
                &conn,
                id,
                &verified_images,
                &mut extracted,
                &mut expected,
            );
        }
    }
    for d in closed_discs {
        if verified_images.contains(&d) {
            let iso = workdir.join("isos").join(format!("disc-{d}.iso"));
            assert!(iso.is_file(), "verified image of disc {d} is missing");
            continue;
        }
        let snap = workdir
            .join("staging")
            .join(format!("disc-{d:04}"))
            .join("manifest.db");
        assert!(snap.is_file(), "closed disc {d} has no snapshot");
    }
    for entry in walkdir::WalkDir::new(workdir.join("staging")) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let p = entry.path();
        let name = p.file_name().unwrap().to_string_lossy();
        assert!(
            !name.ends_with(".partial"),
            "partial file left: {}",
            p.display()
        );
        if name == "manifest.db" {
            continue;
        }
        assert!(expected.contains(p), "orphan staged file {}", p.display());
    }
    latest
}

/// Whether the catalogue has the tables of split files.
pub fn has_split_tables(conn: &rusqlite::Connection) -> bool {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN ('splits','parts')",
        [],
        |r| r.get::<_, i64>(0),
    )
    .unwrap()
        == 2
}

/// Where part `part` of split file `id` is staged on disc `disc`.
pub fn staged_part_path(workdir: &Path, disc: i64, id: i64, part: i64) -> PathBuf {
    staged_path(workdir, disc, id).with_file_name(format!("{id}.{part}"))
}

/// Checks every recorded part of split version `id`: staged with its MD5,
/// or in its disc's verified image (read by bsdtar) with it. Returns the
/// MD5 and size of the parts put together, in order.
fn check_parts(
    workdir: &Path,
    conn: &rusqlite::Connection,
    id: i64,
    verified_images: &BTreeSet<i64>,
    extracted: &mut BTreeMap<i64, tempfile::TempDir>,
    expected: &mut BTreeSet<PathBuf>,
) -> (String, i64) {
    let parts: Vec<(i64, i64, i64, String)> = conn
        .prepare("SELECT part, disc_id, size, md5 FROM parts WHERE file_id=?1 AND copied=1 ORDER BY part")
        .unwrap()
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut whole = Md5::new();
    let mut bytes = 0;
    for (part, disc, size, md5) in parts {
        let staged = staged_part_path(workdir, disc, id, part);
        let from = if staged.exists() {
            expected.insert(staged.clone());
            staged
        } else {
            assert!(
                verified_images.contains(&disc),
                "part {part} of {id} is neither staged nor in a verified image of disc {disc}"
            );
            let dir = extracted.entry(disc).or_insert_with(|| {
                let iso = workdir.join("isos").join(format!("disc-{disc}.iso"));
                let dir = tempfile::tempdir().unwrap();
                bsdtar_extract(&iso, dir.path());
                dir
            });
            dir.path()
                .join("files")
                .join((id / 256).to_string())
                .join(format!("{id}.{part}"))
        };
        let data = std::fs::read(&from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        assert_eq!(data.len() as i64, size, "size of {}", from.display());
        assert_eq!(md5_bytes(&data), md5, "md5 of {}", from.display());
        whole.update(&data);
        bytes += size;
    }
    (
        whole
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        bytes,
    )
}

/// Pre-repair invariant: whatever the state, every `copied=1` row has its
/// staged file with the right MD5 (reservations and partial files may wait
/// for the repair). A disc whose image is recorded verified may have had its
/// staged copies freed: its image must be there.
pub fn check_copied_rows(workdir: &Path) {
    let conn = rusqlite::Connection::open(workdir.join("manifest.db")).unwrap();
    let verified = verified_discs(&conn);
    let mut stmt = conn
        .prepare("SELECT id, md5, disc_id FROM files WHERE copied=1 AND disc_id IS NOT NULL")
        .unwrap();
    let rows: Vec<(i64, String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    for (id, md5, disc) in rows {
        let p = staged_path(workdir, disc, id);
        if verified.contains(&disc) && !p.exists() {
            let iso = workdir.join(format!("isos/disc-{disc}.iso"));
            assert!(iso.is_file(), "disc {disc} verified but its image is gone");
            continue;
        }
        assert_eq!(md5_file(&p), md5, "copied=1 row {id} wrong after a failure");
    }
    if has_split_tables(&conn) {
        let parts: Vec<(i64, i64, i64, String)> = conn
            .prepare("SELECT file_id, part, disc_id, md5 FROM parts WHERE copied=1")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        for (id, part, disc, md5) in parts {
            let p = staged_part_path(workdir, disc, id, part);
            if verified.contains(&disc) && !p.exists() {
                let iso = workdir.join(format!("isos/disc-{disc}.iso"));
                assert!(iso.is_file(), "disc {disc} verified but its image is gone");
                continue;
            }
            assert_eq!(
                md5_file(&p),
                md5,
                "recorded part {id}.{part} wrong after a failure"
            );
        }
    }
}

/// Every regular file under `watched` (catalogue name -> md5).
pub fn tree_md5s(watched: &Path) -> BTreeMap<Vec<u8>, String> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(watched) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(watched).unwrap();
            let mut name = b"/".to_vec();
            name.extend_from_slice(rel.as_os_str().as_bytes());
            out.insert(name, md5_file(entry.path()));
        }
    }
    out
}

pub fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Extracts an image with bsdtar (libarchive), an independent reader.
pub fn bsdtar_extract(iso: &Path, dest: &Path) {
    let out = Command::new("bsdtar")
        .arg("-xf")
        .arg(iso)
        .arg("-C")
        .arg(dest)
        .output()
        .expect("bsdtar is installed");
    assert!(
        out.status.success(),
        "bsdtar -xf {}: {}",
        iso.display(),
        text(&out.stderr)
    );
}

/// Builds the discs of a set made by the original dBackup, with Python's
/// sqlite3 module and the original's layout: one folder per disc (as if
/// mounted), each with `files/<id div 256>/<id>` and a `manifest.db`
/// snapshot of the history so far (its own disc completed). Names have the
/// leading slash, timestamps are REAL, mtimes whole seconds, no settings,
/// no deletions, and on each disc a leftover `copied=0` row (`/never/copied`). `discs[i]` lists the
/// (name, content) pairs staged on disc i+1. Returns the disc folders.
pub fn original_set(root: &Path, discs: &[Vec<(&str, Vec<u8>)>]) -> Vec<PathBuf> {
    let mut rows = Vec::new(); // (id, name, md5, size, disc)
    let mut next_id = 1i64;
    let mut folders = Vec::new();
    let db = root.join("original-live.db");
    let script = r#"
import sqlite3, sys, json, shutil
db, start, rows_json, disc, out = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
c = sqlite3.connect(db)
c.execute("CREATE TABLE IF NOT EXISTS discs(id INTEGER PRIMARY KEY, started INTEGER, completed INTEGER, available BOOLEAN)")
c.execute("CREATE TABLE IF NOT EXISTS files(id INTEGER PRIMARY KEY, filename TEXT, timestamp INTEGER, md5 TEXT, size INTEGER, mtime INTEGER, disc_id INTEGER, desc TEXT, copied BOOLEAN)")
c.execute("CREATE INDEX IF NOT EXISTS filenames ON files(filename, copied)")
c.execute("INSERT INTO discs VALUES (?, ?, NULL, 1)", (disc, start + disc * 1000.25))
for (i, name, md5, size) in json.loads(rows_json):
    c.execute("INSERT INTO files VALUES (?,?,?,?,?,?,?,?,1)", (i, name, start + disc * 1000.5 + i, md5, size, int(start) - 86400, disc, "New file"))
c.execute("UPDATE discs SET completed=? WHERE id=?", (start + disc * 1000.75, disc))
# A reservation whose copy never finished: no reader may take it for a backup.
c.execute("INSERT INTO files(id, filename, timestamp, md5, size, mtime, disc_id, desc, copied) VALUES (100000 + ?, '/never/copied', ?, NULL, 5, 0, ?, 'New file', 0)", (disc, start, disc))
c.commit()
c.close()
shutil.copyfile(db, out)
c = sqlite3.connect(db)
c.execute("DELETE FROM files WHERE copied=0")
c.commit()
"#;
    for (d, files) in discs.iter().enumerate() {
        let disc = d as i64 + 1;
        let folder = root.join(format!("original-disc-{disc}"));
        let mut these = Vec::new();
        for (name, content) in files {
            let id = next_id;
            next_id += 1;
            let p = folder
                .join("files")
                .join((id / 256).to_string())
                .join(id.to_string());
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
            let md5 = md5_bytes(content);
            these.push(serde_json::json!([id, name, md5, content.len()]));
            rows.push((id, name.to_string(), md5, content.len(), disc));
        }
        std::fs::create_dir_all(&folder).unwrap();
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&db)
            .arg("1300000000.5")
            .arg(serde_json::Value::Array(these).to_string())
            .arg(disc.to_string())
            .arg(folder.join("manifest.db"))
            .output()
            .expect("python3 is installed");
        assert!(out.status.success(), "python3: {}", text(&out.stderr));
        folders.push(folder);
    }
    folders
}

/// Runs `cmd` with stdout a pipe whose reader is gone before the tool
/// starts, and stderr the same (`close_stderr`) or captured: `(exit code,
/// stderr)`. The reader is dropped before the spawn, so every write the
/// tool makes meets a closed pipe.
pub fn with_closed_output(mut cmd: Command, close_stderr: bool) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    cmd.stdin(std::process::Stdio::null());
    if close_stderr {
        cmd.stdout(writer.try_clone().expect("pipe")).stderr(writer);
        (cmd.status().expect("spawn").code(), String::new())
    } else {
        cmd.stdout(writer);
        let out = cmd.output().expect("spawn");
        (out.status.code(), text(&out.stderr))
    }
}

/// A sparse file of `size` bytes with a few blocks of data (`seed`) spread
/// over it, so every part holds something of its own.
pub fn sparse(path: &Path, size: u64, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    f.set_len(size).unwrap();
    let mut at = 0u64;
    let mut i = 0u8;
    while at < size {
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(at)).unwrap();
        let block: Vec<u8> = (0..4096u32)
            .map(|k| (k as u8).wrapping_mul(31) ^ seed ^ i)
            .collect();
        let n = block.len().min((size - at) as usize);
        std::io::Write::write_all(&mut f, &block[..n]).unwrap();
        at += 300_001;
        i = i.wrapping_add(1);
    }
}

/// Bytes per disc of [`full_discs`]: one file of [`FULL`] bytes fills a
/// disc (with the image's padding and catalogue), two do not fit.
pub const DISC: &str = "1307200";
pub const FULL: usize = 600_000;

/// `n` bytes from a seeded xorshift generator: no two seeds share a run.
pub fn bytes_of(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `out`, after asserting it exited 0 (saying `what` and its output if not).
pub fn ok(out: Output, what: &str) -> Output {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// A set of `discs` closed discs with verified images, one full file
/// (`f00`, `f01`, ...) each, made with `extra` init arguments.
pub fn full_discs(discs: usize, extra: &[&str]) -> TestEnv {
    let env = TestEnv::new();
    for i in 0..discs {
        env.write(format!("f{i:02}"), &bytes_of(i as u64 + 1, FULL));
    }
    let mut args = vec!["--disc-size", DISC];
    args.extend_from_slice(extra);
    env.init(&args);
    ok(env.run(&["monitor"]), "monitor");
    // The last file is on the open disc: close it too.
    ok(env.run(&["close"]), "close");
    env
}

/// The config of a property that drives the binaries: `PROPTEST_CASES`
/// cases (else `default_cases`), shrinking only `shrink_iters` steps, since
/// each case runs the binaries many times.
#[allow(dead_code)]
pub fn binary_property_config(
    default_cases: u32,
    shrink_iters: u32,
) -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    proptest::test_runner::Config {
        cases,
        max_shrink_iters: shrink_iters,
        ..proptest::test_runner::Config::default()
    }
}
