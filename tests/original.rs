//! The helper that builds the original dBackup's discs makes what
//! original-format.md describes.

mod common;

use common::*;

#[test]
fn original_discs_have_the_original_format() {
    let dir = tempfile::tempdir().unwrap();
    let discs = original_set(
        dir.path(),
        &[
            vec![("/2012/IMG_0001.jpg", b"one".to_vec())],
            vec![("/2012/IMG_0002.jpg", b"two".to_vec())],
        ],
    );
    let conn = rusqlite::Connection::open(discs[1].join("manifest.db")).unwrap();
    let (name, ts, mtime, disc): (String, String, String, i64) = conn
        .query_row(
            "SELECT filename, typeof(timestamp), typeof(mtime), disc_id FROM files WHERE id=2",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (name.as_str(), ts.as_str(), mtime.as_str(), disc),
        ("/2012/IMG_0002.jpg", "real", "integer", 2)
    );
    let completed: i64 = conn
        .query_row(
            "SELECT count(*) FROM discs WHERE completed IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(completed, 2);
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type='table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 2, "only discs and files");
    assert_eq!(std::fs::read(discs[0].join("files/0/1")).unwrap(), b"one");
    // Disc 1's snapshot knows only disc 1.
    let conn = rusqlite::Connection::open(discs[0].join("manifest.db")).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM files WHERE copied=1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 1);
    let leftover: i64 = conn
        .query_row("SELECT count(*) FROM files WHERE copied=0", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(leftover, 1);
}
