//! A rescan of a catalogue edited by hand: whatever its encoding and
//! indexes, a rescan of an unchanged tree stages nothing and records no
//! deletion (it may refuse the catalogue, saying why).

mod common;

use common::*;
use proptest::prelude::*;
use rusqlite::types::Value;

/// The catalogue rebuilt with text in `encoding`, every table, index and
/// row kept (as `sqlite3 manifest.db .dump` into a database made with
/// `PRAGMA encoding` would).
fn rebuild_in(env: &TestEnv, encoding: &str) {
    let path = env.workdir.join("manifest.db");
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let tmp = env.workdir.join("rebuilt.db");
    let new = rusqlite::Connection::open(&tmp).unwrap();
    new.execute_batch(&format!("PRAGMA encoding='{encoding}'"))
        .unwrap();
    let user_version: i64 = old
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let schema: Vec<(String, String, String)> = old
        .prepare(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type DESC",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    for (kind, _, sql) in &schema {
        if kind == "table" {
            new.execute_batch(sql).unwrap();
        }
    }
    for (kind, name, _) in &schema {
        if kind != "table" || name.starts_with("sqlite_") {
            continue;
        }
        let mut read = old.prepare(&format!("SELECT * FROM \"{name}\"")).unwrap();
        let n = read.column_count();
        let marks = vec!["?"; n].join(",");
        let mut write = new
            .prepare(&format!("INSERT INTO \"{name}\" VALUES ({marks})"))
            .unwrap();
        let mut rows = read.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let values: Vec<Value> = (0..n).map(|i| row.get(i).unwrap()).collect();
            write
                .execute(rusqlite::params_from_iter(values.iter()))
                .unwrap();
        }
    }
    for (kind, _, sql) in &schema {
        if kind != "table" {
            new.execute_batch(sql).unwrap();
        }
    }
    new.pragma_update(None, "user_version", user_version)
        .unwrap();
    drop(new);
    drop(old);
    for tail in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(env.workdir.join(format!("manifest.db{tail}")));
    }
    std::fs::rename(&tmp, &path).unwrap();
}

/// Rows of `files` and `deletions`.
fn rows(env: &TestEnv) -> (i64, i64) {
    let c = env.catalog();
    let n = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    (
        n("SELECT count(*) FROM files"),
        n("SELECT count(*) FROM deletions"),
    )
}

/// A rescan of the unchanged tree: silent, or refused; never a change.
fn rescan_changes_nothing(env: &TestEnv) -> Result<(), TestCaseError> {
    let before = rows(env);
    let out = env.run(&["monitor", "--no-iso"]);
    let stdout = text(&out.stdout);
    if out.status.success() {
        prop_assert_eq!(stdout.trim(), "", "an unchanged rescan printed");
    } else {
        prop_assert!(
            text(&out.stderr).contains("manifest.db"),
            "refused without saying why: {}",
            text(&out.stderr)
        );
    }
    prop_assert_eq!(rows(env), before, "an unchanged rescan wrote: {}", stdout);
    Ok(())
}

fn name() -> impl Strategy<Value = String> {
    // Characters whose UTF-16 order differs from their UTF-8 order (a
    // surrogate pair against U+E000-U+FFFF; in little-endian, low bytes
    // first), around `/`.
    proptest::collection::vec(
        proptest::sample::select(vec!["a", "-", "é", "Ā", "ā", "中", "\u{e000}", "𝄞", "z"]),
        1..4,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// A catalogue whose text is UTF-16 (built by hand) is rescanned as it
    /// stands: no file is staged again, none recorded deleted.
    #[test]
    fn an_unchanged_rescan_of_a_utf16_catalogue_changes_nothing(
        paths in proptest::collection::vec(proptest::collection::vec(name(), 1..3), 2..12),
        encoding in proptest::sample::select(vec!["UTF-16le", "UTF-16be"]),
    ) {
        let env = TestEnv::new();
        for parts in &paths {
            let rel: std::path::PathBuf = parts.iter().collect();
            let p = env.watched.join(&rel);
            // A path whose folder is already a file is left out.
            if p.ancestors().skip(1).any(|a| a.is_file()) || p.is_dir() {
                continue;
            }
            env.write(&rel, rel.to_string_lossy().as_bytes());
        }
        env.init(&[]);
        let out = env.run(&["monitor", "--no-iso"]);
        prop_assert!(out.status.success(), "{}", text(&out.stderr));
        rebuild_in(&env, encoding);
        rescan_changes_nothing(&env)?;
    }
}

/// Without the index of deletions by name, each row of the rescan would
/// read every deletion (hours at a million files): the catalogue is refused,
/// saying how to mend it, and nothing is recorded.
#[test]
fn a_catalogue_without_its_deletions_index_is_refused() {
    let env = TestEnv::new();
    env.write("a", b"a");
    env.write("b", b"b");
    env.init(&[]);
    assert!(env.run(&["monitor", "--no-iso"]).status.success());
    std::fs::remove_file(env.watched.join("b")).unwrap();
    assert!(env.run(&["monitor", "--no-iso"]).status.success());
    env.catalog()
        .execute_batch("DROP INDEX deletions_filename")
        .unwrap();
    let before = rows(&env);
    let out = env.run(&["monitor", "--no-iso"]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("CREATE INDEX deletions_filename"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(rows(&env), before);
    env.catalog()
        .execute_batch("CREATE INDEX deletions_filename ON deletions(filename)")
        .unwrap();
    let out = env.run(&["monitor", "--no-iso"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "");
}

/// A `files` table whose name column was given another collation by hand
/// (`/A` equal to `/a`), its index of names still in byte order: the names
/// are still compared by their bytes, and an unchanged rescan changes
/// nothing.
#[test]
fn a_name_column_with_another_collation_is_compared_by_bytes() {
    let env = TestEnv::new();
    for n in ["A", "a", "B", "b", "c", "é", "É"] {
        env.write(n, n.as_bytes());
    }
    env.init(&[]);
    assert!(env.run(&["monitor", "--no-iso"]).status.success());
    std::fs::remove_file(env.watched.join("b")).unwrap();
    assert!(env.run(&["monitor", "--no-iso"]).status.success());
    env.catalog()
        .execute_batch(
            "PRAGMA legacy_alter_table=ON;
             ALTER TABLE files RENAME TO files_old;
             CREATE TABLE files(id INTEGER PRIMARY KEY, filename TEXT COLLATE NOCASE,
                 timestamp INTEGER, md5 TEXT, size INTEGER, mtime INTEGER, disc_id INTEGER,
                 desc TEXT, copied BOOLEAN);
             INSERT INTO files SELECT * FROM files_old;
             DROP TABLE files_old;
             CREATE INDEX filenames ON files(filename COLLATE BINARY, copied);
             CREATE INDEX files_disc ON files(disc_id);",
        )
        .unwrap();
    rescan_changes_nothing(&env).unwrap();
    // And a change is still seen, once.
    std::fs::write(env.watched.join("B"), b"changed").unwrap();
    let out = env.run(&["monitor", "--no-iso"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("/B: Size changed"), "{stdout}");
    rescan_changes_nothing(&env).unwrap();
}
