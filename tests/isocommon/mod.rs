#![allow(dead_code)]
use dbackup::iso::{write_image, Entry, Source, WriteOptions};
use std::collections::BTreeMap;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn opts() -> WriteOptions {
    WriteOptions {
        volume_id: "DBACKUP_0001".into(),
        volume_set_id: "6f1c1d2e-8a4b-4c3d-9e2f-0123456789ab".into(),
        application_id: "DBACKUP TEST".into(),
        timestamp: 1_700_000_000,
    }
}

/// Deterministic pseudo-random bytes.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The sample tree: relative path -> content. `manifest.db` is given as bytes.
pub fn sample() -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    let long150 = format!("{}.txt", "L".repeat(146));
    let long255 = "n".repeat(255);
    let files: Vec<(String, Vec<u8>)> = vec![
        ("manifest.db".into(), pattern(1, 40_000)),
        ("README.TXT".into(), b"Read me.\n".to_vec()),
        ("readme.txt".into(), b"lower case twin\n".to_vec()),
        (
            "MD5SUMS".into(),
            b"d41d8cd98f00b204e9800998ecf8427e  empty\n".to_vec(),
        ),
        ("files/4/1234".into(), pattern(2, 100_000)),
        ("files/4/1235".into(), pattern(3, 2048)),
        ("files/4/1236".into(), pattern(4, 2049)),
        ("files/4/big".into(), pattern(5, 3 * 1024 * 1024 + 17)),
        ("files/10/99".into(), pattern(6, 1)),
        ("files/empty".into(), Vec::new()),
        ("empty1".into(), Vec::new()),
        ("empty2".into(), Vec::new()),
        ("Mixed Case.With.Dots.txt".into(), b"mixed".to_vec()),
        (
            "unicode-\u{e9}-\u{540d}\u{524d}.bin".into(),
            b"utf8".to_vec(),
        ),
        (
            "a_long_file_name_exceeding_thirty_characters.data".into(),
            b"long".to_vec(),
        ),
        (format!("long/{long150}"), b"150".to_vec()),
        (format!("long/{long255}"), b"255".to_vec()),
        ("deep/a/b/c/d/e/f/g/h/i/file".into(), b"deep".to_vec()),
    ];
    for (k, v) in files {
        m.insert(k, v);
    }
    m
}

/// Creates the tree under `root` and returns entries (manifest.db from memory).
pub fn build(root: &Path, tree: &BTreeMap<String, Vec<u8>>) -> Vec<Entry> {
    let mut out = Vec::new();
    for (rel, data) in tree {
        if rel == "manifest.db" {
            out.push(Entry {
                path: rel.clone(),
                source: Source::Bytes(data.clone()),
            });
            continue;
        }
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        out.push(Entry {
            path: rel.clone(),
            source: Source::File(p),
        });
    }
    out
}

pub fn write_to(path: &Path, entries: &[Entry], o: &WriteOptions) -> (u64, u64) {
    let f = std::fs::File::create(path).unwrap();
    let mut prog = 0u64;
    let n = write_image(BufWriter::new(f), entries, o, &mut |d| prog += d).unwrap();
    (n, prog)
}

pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

pub fn run_stdout(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// All regular files under `dir`, relative path -> content.
pub fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_str().unwrap().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

pub fn read_all(r: &mut impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}

pub fn pb(x: &Path, s: &str) -> PathBuf {
    x.join(s)
}
