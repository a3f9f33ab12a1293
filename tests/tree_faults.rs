//! A further name of a hard-linked file is recorded as a `hardlink` entry
//! only when the name it points to holds a backed-up version: when the
//! first name's copy fails, the catalogue must not say the second name's
//! content is stored under a name that has none.

#![cfg(feature = "failpoints")]

mod common;

use common::*;

#[test]
fn a_hard_link_to_a_first_name_whose_copy_failed_is_not_recorded_as_a_link() {
    let env = TestEnv::new();
    let a = env.write("a", b"content");
    std::fs::hard_link(&a, env.watched.join("b")).unwrap();
    env.init(&[]);
    let out = env
        .stage()
        .args(["monitor", "--cron"])
        .env("FAILPOINTS", "stage::read=return(io)")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(err.contains("Input/output error"), "{err}");
    let conn = env.catalog();
    let dangling: i64 = conn
        .query_row(
            "SELECT count(*) FROM entries e WHERE kind='hardlink' AND deleted IS NULL
             AND NOT EXISTS (SELECT 1 FROM files f WHERE f.filename = e.target AND f.copied = 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        dangling, 0,
        "/b recorded as another name of /a, which has no backed-up version: {err}"
    );
    drop(conn);
    // The next run backs /a up and records /b as its other name.
    let out = env.run(&["monitor", "--cron"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let target: String = env
        .catalog()
        .query_row(
            "SELECT target FROM entries WHERE filename='/b' AND kind='hardlink'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(target, "/a");
}
