//! Writes the generated seeds of the fuzz targets (`fuzz/`): small disc
//! images made with our own ISO writer and `manifest.db` files made with
//! our own catalogue code, plus one in the original dBackup's schema. The
//! output is the same on every run (fixed times, fixed UUID), so nothing
//! binary needs committing: `cargo run --example fuzz-seeds -- fuzz/corpus`.

use std::path::{Path, PathBuf};

use dbackup::catalog::tree::{Attrs, Entry as TreeEntry, EntryKind};
use dbackup::catalog::{Catalog, NewFile, Settings};
use dbackup::disc::{self, DiscInfo};
use dbackup::iso::{write_image, Entry, Source, WriteOptions};
use md5::{Digest, Md5};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// When every seed disc was started and closed (Unix seconds).
const STARTED: f64 = 1_700_000_000.0;
const CLOSED: f64 = 1_700_086_400.0;

/// The files of the seed set: (name, content, disc).
const FILES: &[(&[u8], &[u8], i64)] = &[
    (b"/a.txt", b"hello\n", 1),
    (
        b"/2012/holiday/IMG_0001.JPG",
        b"\xff\xd8\xff\xe0 not really a jpeg",
        1,
    ),
    (b"/sub dir/b c.txt", b"spaces\n", 1),
    (b"/caf\xe9/latin1.txt", b"a name that is not UTF-8\n", 1),
    (b"/ctl/bell\x07.txt", b"a control character\n", 1),
    (b"/a.txt", b"hello again, changed\n", 2),
    (b"/empty", b"", 2),
];

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The catalogue of the seed set with discs 1 and 2 closed and one
/// deletion; `manifest(n)` is its snapshot as disc `n` closed.
fn catalogue(dir: &Path) -> Res<Vec<PathBuf>> {
    let settings = Settings {
        watched: "/seed/watched".into(),
        disc_size: 1 << 30,
        excludes: vec!["*.tmp".into()],
        uuid: "00000000-0000-4000-8000-000000000000".into(),
        name: "seeds".into(),
        ecc: false,
    };
    let live = dir.join("catalog.db");
    let mut cat = Catalog::create(&live, &settings)?;
    // The tree tables, with a version's attrs and every kind of entry.
    cat.ensure_tree_tables()?;
    let attrs = Attrs {
        mode: 0o4755,
        uid: 1000,
        gid: 100,
        owner: Some("someone".into()),
        group: None,
        mtime_sec: 13_569_465_600,
        mtime_nsec: 999_999_999,
    };
    let mut snapshots = Vec::new();
    for disc in [1i64, 2] {
        if disc > 1 {
            cat.start_disc()?;
        }
        let new: Vec<NewFile<'_>> = FILES
            .iter()
            .filter(|f| f.2 == disc)
            .map(|&(name, content, _)| NewFile {
                name,
                size: content.len() as u64,
                mtime: STARTED - 1000.5,
                disc_id: disc,
                desc: "New file",
                timestamp: STARTED + disc as f64,
                attrs: Some(&attrs),
            })
            .collect();
        let ids = cat.reserve(&new)?;
        let done: Vec<(i64, String)> = ids
            .iter()
            .zip(FILES.iter().filter(|f| f.2 == disc))
            .map(|(&id, f)| (id, md5_hex(f.1)))
            .collect();
        cat.finish_copies(&done, &[])?;
        if disc == 2 {
            cat.record_deletions(&ids[1..2], STARTED + 10.0)?;
        }
        if disc == 1 {
            let entry = |name: &[u8], kind, target: &[u8]| TreeEntry {
                name: name.to_vec(),
                kind,
                target: target.to_vec(),
                attrs: attrs.clone(),
            };
            cat.record_entries(
                &[
                    entry(b"/2012", EntryKind::Dir, b""),
                    entry(b"/empty dir", EntryKind::Dir, b""),
                    entry(b"/link", EntryKind::Symlink, b"../../etc/passwd"),
                    entry(b"/caf\xe9/l", EntryKind::Symlink, b"\xff/x"),
                    entry(b"/hard", EntryKind::Hardlink, b"/a.txt"),
                ],
                STARTED + 0.5,
                &[],
                STARTED + 0.5,
            )?;
        }
        cat.complete_disc(disc)?;
        drop(cat);
        // Fixed times, so the snapshot is the same on every run.
        let conn = rusqlite::Connection::open(&live)?;
        conn.execute(
            "UPDATE discs SET started=?1, completed=?2 WHERE completed IS NOT NULL",
            [STARTED, CLOSED],
        )?;
        conn.execute(
            "UPDATE settings SET value=?1 WHERE key='created'",
            [STARTED],
        )?;
        drop(conn);
        cat = Catalog::open(&live)?;
        let snap = dir.join(format!("manifest-{disc}.db"));
        cat.snapshot_to(&snap)?;
        snapshots.push(snap);
    }
    Ok(snapshots)
}

/// A catalogue as the original dBackup wrote it: its two tables only,
/// REAL times despite the INTEGER type, whole-second mtimes.
fn original(path: &Path) -> Res<()> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "CREATE TABLE discs(id INTEGER PRIMARY KEY, started INTEGER, completed INTEGER, available BOOLEAN);
         CREATE TABLE files(id INTEGER PRIMARY KEY, filename TEXT, timestamp INTEGER, md5 TEXT,
                            size INTEGER, mtime INTEGER, disc_id INTEGER, desc TEXT, copied BOOLEAN);
         CREATE INDEX filenames ON files(filename, copied);",
    )?;
    conn.execute(
        "INSERT INTO discs VALUES (1, ?1, ?2, 1), (2, ?2, NULL, 1)",
        [STARTED, CLOSED],
    )?;
    conn.execute(
        "INSERT INTO files VALUES (1, '/a.txt', ?1, ?2, 6, 1699999000, 1, 'New file', 1),
                                  (2, '/b.txt', ?1, NULL, 3, 1699999000, 2, 'New file', 0)",
        rusqlite::params![STARTED, md5_hex(b"hello\n")],
    )?;
    Ok(())
}

/// The image of disc `n` as mkiso lays it out.
fn image(out: &Path, n: i64, manifest: &Path) -> Res<()> {
    let files: Vec<(i64, &[u8])> = FILES
        .iter()
        .enumerate()
        .filter(|(_, f)| f.2 == n)
        .map(|(i, f)| (i as i64 + 1, f.1))
        .collect();
    let md5s: Vec<(i64, String)> = files.iter().map(|(id, c)| (*id, md5_hex(c))).collect();
    let info = DiscInfo {
        set_name: "seeds",
        set_uuid: "00000000-0000-4000-8000-000000000000",
        disc: n,
        closed: CLOSED,
        files: files.len() as u64,
        parts: 0,
        bytes: files.iter().map(|f| f.1.len() as u64).sum(),
    };
    let manifest = std::fs::read(manifest)?;
    let texts = disc::texts(&info);
    let md5sums = disc::md5sums(
        &md5_hex(&manifest),
        &texts,
        md5s.iter()
            .map(|(id, m)| (disc::file_path(*id), m.as_str())),
    );
    let mut entries = vec![Entry {
        path: disc::MANIFEST.into(),
        source: Source::Bytes(manifest),
    }];
    for (name, data) in texts {
        entries.push(Entry {
            path: name.into(),
            source: Source::Bytes(data),
        });
    }
    entries.push(Entry {
        path: disc::MD5SUMS.into(),
        source: Source::Bytes(md5sums.into_bytes()),
    });
    for (id, content) in &files {
        entries.push(Entry {
            path: disc::file_path(*id).to_string_lossy().into_owned(),
            source: Source::Bytes(content.to_vec()),
        });
    }
    let opts = WriteOptions {
        volume_id: disc::volume_id(n),
        volume_set_id: info.set_uuid.into(),
        application_id: "DBACKUP".into(),
        timestamp: CLOSED as i64,
    };
    let file = std::fs::File::create(out)?;
    write_image(&file, &entries, &opts, &mut |_| {})?;
    Ok(())
}

/// A tiny image without a manifest, with deep folders and a long name.
fn odd_image(out: &Path) -> Res<()> {
    let entries = vec![
        Entry {
            path: "a/b/c/d/e/f/g/h/deep.txt".into(),
            source: Source::Bytes(b"deep\n".to_vec()),
        },
        Entry {
            path: format!("{}.txt", "long-name-".repeat(20)),
            source: Source::Bytes(Vec::new()),
        },
    ];
    let opts = WriteOptions {
        volume_id: "ODD".into(),
        volume_set_id: "odd".into(),
        application_id: "DBACKUP".into(),
        timestamp: 0,
    };
    write_image(&std::fs::File::create(out)?, &entries, &opts, &mut |_| {})?;
    Ok(())
}

fn main() -> Res<()> {
    let corpus = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .ok_or("usage: fuzz-seeds CORPUS_DIR (e.g. fuzz/corpus)")?,
    );
    let isos = corpus.join("iso_reader");
    let manifests = corpus.join("manifest_file");
    std::fs::create_dir_all(&isos)?;
    std::fs::create_dir_all(&manifests)?;
    let tmp = tempfile::tempdir()?;
    let snapshots = catalogue(tmp.path())?;
    for (i, snap) in snapshots.iter().enumerate() {
        let n = i as i64 + 1;
        std::fs::copy(snap, manifests.join(format!("gen-ours-disc-{n}.db")))?;
        image(&isos.join(format!("gen-ours-disc-{n}.iso")), n, snap)?;
    }
    original(&manifests.join("gen-original.db"))?;
    odd_image(&isos.join("gen-odd.iso"))?;
    eprintln!("seeds written under {}", corpus.display());
    Ok(())
}
