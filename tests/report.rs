//! The status page: built by the real binary from generated sets, opened in
//! a real headless browser (Chromium), and read back from the DOM the
//! browser made after running the page's script.

mod common;

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A page as Chromium saw it: the DOM after its scripts ran, and what it
/// logged (console messages, script errors, refused scripts).
struct Seen {
    dom: String,
    console: Vec<String>,
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|c| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {c}"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(text(&o.stdout).trim()))
    })
}

fn browser(dir: &Path, extra: &[&str], url: &str) -> (String, String) {
    let Some(chromium) = chromium() else {
        panic!("chromium is needed for the status page tests (tests/run installs it)")
    };
    let profile = tempfile::tempdir_in(dir).unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium: {}", text(&out.stderr));
    (text(&out.stdout), text(&out.stderr))
}

/// Opens `page` (with `#q=...` when `query` is given) and dumps its DOM.
fn open(page: &Path, query: Option<&str>) -> Seen {
    let mut url = format!("file://{}", page.display());
    if let Some(q) = query {
        url.push_str("#q=");
        for b in q.bytes() {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_' {
                url.push(b as char);
            } else {
                url.push_str(&format!("%{b:02X}"));
            }
        }
    }
    let (dom, log) = browser(page.parent().unwrap(), &["--dump-dom"], &url);
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    Seen { dom, console }
}

/// Takes a screenshot of the page into the test's target folder (kept for
/// a look after the run, not compared).
fn screenshot(page: &Path, name: &str) -> PathBuf {
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_file(&shot);
    browser(
        page.parent().unwrap(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2200",
        ],
        &format!("file://{}", page.display()),
    );
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    shot
}

/// The value of attribute `attr` of every element of the dump whose
/// opening tag holds `marker`.
fn attrs(dom: &str, marker: &str, attr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find(marker) {
        let tag_start = rest[..i].rfind('<').unwrap_or(0);
        let tag_end = i + rest[i..].find('>').unwrap_or(rest.len() - i);
        let tag = &rest[tag_start..tag_end];
        let key = format!(" {attr}=\"");
        if let Some(a) = tag.find(&key) {
            let v = &tag[a + key.len()..];
            out.push(v[..v.find('"').unwrap_or(v.len())].to_string());
        }
        rest = &rest[tag_end..];
    }
    out
}

/// The search results of a dumped DOM: (shown name, discs).
fn hits(dom: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for row in dom.split("<tr class=\"hit\">").skip(1) {
        let row = &row[..row.find("</tr>").unwrap_or(row.len())];
        let name = row
            .split("<td class=\"name\">")
            .nth(1)
            .and_then(|r| r.split("</td>").next())
            .unwrap_or_default()
            .to_string();
        let discs = attrs(row, "class=\"discs\"", "data-discs")
            .pop()
            .unwrap_or_default();
        out.push((name, discs));
    }
    out
}

fn title(dom: &str) -> String {
    dom.split("<title>")
        .nth(1)
        .and_then(|r| r.split("</title>").next())
        .unwrap_or_default()
        .to_string()
}

fn summary(dom: &str) -> String {
    dom.split("<p id=\"summary\"")
        .nth(1)
        .and_then(|r| r.split_once('>'))
        .and_then(|(_, r)| r.split("</p>").next())
        .unwrap_or_default()
        .to_string()
}

/// A disc's number, files and bytes.
type DiscRow = (i64, u64, u64);

/// Files (a part of a split file counts as one) and bytes per disc, and
/// each name's disc (0 for a split one), read from the catalogue
/// directly (not through dbackup).
fn catalogue(workdir: &Path) -> (Vec<DiscRow>, Vec<(Vec<u8>, i64)>) {
    let c = rusqlite::Connection::open(workdir.join("manifest.db")).unwrap();
    let parts = if has_split_tables(&c) {
        "UNION ALL SELECT disc_id, size FROM parts WHERE copied = 1"
    } else {
        ""
    };
    let discs = c
        .prepare(&format!(
            "SELECT d.id, count(f.size), coalesce(sum(f.size),0) FROM discs d
             LEFT JOIN (SELECT disc_id, size FROM files WHERE copied = 1 {parts}) f
               ON f.disc_id = d.id
             GROUP BY d.id ORDER BY d.id"
        ))
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut stmt = c
        .prepare("SELECT filename, disc_id FROM files WHERE copied=1 ORDER BY filename")
        .unwrap();
    let names = stmt
        .query_map([], |r| {
            let name = match r.get_ref(0)? {
                rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                    b.to_vec()
                }
                _ => Vec::new(),
            };
            Ok((name, r.get::<_, Option<i64>>(1)?.unwrap_or(0)))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (discs, names)
}

/// A generated set: `n` files of seeded sizes in a few top folders, over
/// several closed discs, plus hostile names.
fn generated_set(seed: u64, n: usize) -> TestEnv {
    let env = TestEnv::new();
    let tops = ["photos", "music", "scans", "home videos"];
    for i in 0..n {
        let size = 500 + (bytes_of(seed + i as u64, 2)[0] as usize) * 200;
        let top = tops[i % tops.len()];
        env.write(
            format!("{top}/{}/file-{seed}-{i:04}.dat", 2000 + i % 7),
            &bytes_of(seed * 1000 + i as u64, size),
        );
    }
    env.init(&[
        "--disc-size",
        DISC,
        "--name",
        "Family <b>archive</b> & \"co\"",
    ]);
    ok(env.run(&["monitor"]), "monitor");
    ok(env.run(&["close"]), "close");
    env
}

const HOSTILE: &[&[u8]] = &[
    b"<img src=x onerror=document.title='pwned'>.jpg",
    b"<script>document.title='pwned'<\\script>.txt",
    b"quote\"and'apostrophe & amp.txt",
    b"line\nbreak.txt",
    b"not-utf8-\xff\xfe.bin",
];

#[test]
fn the_page_shows_every_disc_and_its_search_names_the_disc_of_a_file() {
    let env = generated_set(7, 200);
    for (i, h) in HOSTILE.iter().enumerate() {
        let p = env.watched.join(os(h));
        std::fs::write(&p, format!("hostile {i}")).unwrap();
    }
    // Larger than a disc: split over several.
    env.write("big/huge.bin", &bytes_of(99, 1_300_000));
    ok(env.run(&["monitor"]), "monitor");
    ok(
        env.run(&["copies", "add", "1", "--location", "shelf <b>A</b>"]),
        "copies add",
    );
    ok(
        env.tool("dbackup-lost").args(["2"]).output().unwrap(),
        "lost 2",
    );
    let page = env.dir.path().join("status.html");
    let out = ok(
        env.run(&["report", "--html", page.to_str().unwrap()]),
        "report",
    );
    assert!(
        text(&out.stdout).contains("status.html"),
        "{}",
        text(&out.stdout)
    );

    let (discs, names) = catalogue(&env.workdir);
    assert!(discs.len() >= 4, "a set of several discs: {discs:?}");
    let seen = open(&page, None);
    assert!(
        seen.console.is_empty(),
        "the page logged: {:?}",
        seen.console
    );
    assert!(
        seen.dom.contains("data-ready=\"1\""),
        "the page's script ran"
    );
    assert_eq!(
        title(&seen.dom),
        "dbackup: Family &lt;b&gt;archive&lt;/b&gt; &amp; \"co\"",
        "a name ran as code"
    );
    // Every disc, with the catalogue's own counts.
    let shown: Vec<(i64, u64, u64)> = attrs(&seen.dom, "class=\"disc", "data-disc")
        .iter()
        .zip(attrs(&seen.dom, "class=\"disc", "data-files"))
        .zip(attrs(&seen.dom, "class=\"disc", "data-bytes"))
        .map(|((d, f), b)| (d.parse().unwrap(), f.parse().unwrap(), b.parse().unwrap()))
        .collect();
    assert_eq!(shown, discs);
    assert_eq!(
        attrs(&seen.dom, "class=\"disc lost\"", "data-disc"),
        vec!["2".to_string()]
    );
    assert_eq!(
        attrs(&seen.dom, "class=\"bad lost-cost\"", "data-disc"),
        vec!["2".to_string()]
    );
    // The set counts versions (a split one once).
    assert_eq!(
        attrs(&seen.dom, "<section class=\"set\"", "data-files"),
        vec![names.len().to_string()]
    );
    // The set's name and a location are text.
    assert!(seen
        .dom
        .contains("Family &lt;b&gt;archive&lt;/b&gt; &amp; \"co\""));
    assert!(seen.dom.contains("shelf &lt;b&gt;A&lt;/b&gt;"));
    assert!(seen.dom.contains("<svg class=\"timeline\""));

    // Any file's name finds it, with its discs.
    for pick in [0, names.len() / 3, names.len() - 1] {
        let (name, disc) = &names[pick];
        let base = name.rsplit(|b| *b == b'/').next().unwrap();
        let Ok(base) = std::str::from_utf8(base) else {
            continue;
        };
        if base.contains(['\n', '<', '"', '\'']) {
            continue;
        }
        let seen = open(&page, Some(base));
        assert!(seen.console.is_empty(), "{:?}", seen.console);
        let found = hits(&seen.dom);
        let want = String::from_utf8_lossy(name).to_string();
        assert!(
            found
                .iter()
                .any(|(n, d)| *n == want && *d == disc.to_string()),
            "searching {base:?}: {found:?} lacks {want} on disc {disc}"
        );
    }
    // A split file names every disc holding a part.
    let parts: Vec<String> = env
        .catalog()
        .prepare(
            "SELECT p.disc_id FROM parts p JOIN files f ON f.id = p.file_id
             WHERE f.filename = '/big/huge.bin' ORDER BY p.part",
        )
        .unwrap()
        .query_map([], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(|d| d.unwrap().to_string())
        .collect();
    assert!(parts.len() >= 2, "{parts:?}");
    let seen = open(&page, Some("huge.bin"));
    assert_eq!(
        hits(&seen.dom),
        vec![("/big/huge.bin".to_string(), parts.join(","))]
    );
    // A path search: a folder and part of a name.
    let seen = open(&page, Some("MUSIC/2003/file-7-00"));
    let found = hits(&seen.dom);
    assert!(!found.is_empty());
    assert!(
        found
            .iter()
            .all(|(n, _)| n.starts_with("/music/2003/file-7-00")),
        "{found:?}"
    );
    let want = names
        .iter()
        .filter(|(n, _)| n.starts_with(b"/music/2003/file-7-00"))
        .count();
    assert_eq!(found.len(), want);
    // A folder alone lists what is under it.
    let seen = open(&page, Some("/scans/2001/"));
    let want = names
        .iter()
        .filter(|(n, _)| n.starts_with(b"/scans/2001/"))
        .count();
    assert_eq!(hits(&seen.dom).len(), want);
    assert!(want > 0);

    // Hostile names are found and shown as text.
    let seen = open(&page, Some("onerror"));
    assert!(seen.console.is_empty(), "{:?}", seen.console);
    let found = hits(&seen.dom);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].0,
        "/&lt;img src=x onerror=document.title='pwned'&gt;.jpg"
    );
    assert!(!seen.dom.contains("<img"), "a name became an element");
    assert!(!title(&seen.dom).contains("pwned"), "a name ran as code");
    let seen = open(&page, Some("script"));
    assert!(hits(&seen.dom)
        .iter()
        .any(|(n, _)| n.starts_with("/&lt;script&gt;document.title")));
    assert_eq!(
        seen.dom.matches("<script").count(),
        2,
        "only the page's own scripts"
    );
    let seen = open(&page, Some("line\\nbreak"));
    assert_eq!(hits(&seen.dom).len(), 1, "a newline shows as \\n");
    let seen = open(&page, Some("not-utf8-\\xff"));
    assert_eq!(
        hits(&seen.dom).len(),
        1,
        "a byte that is not UTF-8 shows as \\xNN"
    );
    // Nothing found says so.
    let seen = open(&page, Some("no-such-name-anywhere"));
    assert!(hits(&seen.dom).is_empty());
    assert!(
        summary(&seen.dom).contains("No backed-up file name"),
        "{}",
        summary(&seen.dom)
    );

    let shot = screenshot(&page, "status-page.png");
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn the_console_check_sees_a_script_error() {
    // The check the page tests rely on: a page whose script fails is seen.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<html><body><script>no_such_function();</script></body></html>",
    )
    .unwrap();
    let seen = open(&page, None);
    assert!(
        seen.console.iter().any(|l| l.contains("no_such_function")),
        "{:?}",
        seen.console
    );
}

#[test]
fn a_script_smuggled_into_the_page_is_refused_by_its_policy() {
    // The page runs only its own script (by hash): one added to it, as a
    // name that escaped its escaping would be, does not run.
    let env = generated_set(3, 10);
    let page = env.dir.path().join("p.html");
    ok(
        env.run(&["report", "--html", page.to_str().unwrap()]),
        "report",
    );
    let html = std::fs::read_to_string(&page).unwrap();
    let smuggled = html.replacen(
        "<div id=\"errors\"",
        "<script>document.title='pwned'</script><div id=\"errors\"",
        1,
    );
    std::fs::write(&page, smuggled).unwrap();
    let seen = open(&page, None);
    assert!(
        !seen.dom.contains("<title>pwned"),
        "the smuggled script ran"
    );
    assert!(
        seen.dom.contains("data-ready=\"1\""),
        "the page's own script still runs"
    );
    assert!(
        seen.console
            .iter()
            .any(|l| l.contains("Content Security Policy")),
        "{:?}",
        seen.console
    );
}

#[test]
fn one_page_shows_several_sets_and_searches_them_all() {
    let a = generated_set(11, 30);
    let b = generated_set(12, 30);
    b.write("only-in-b/special-file.txt", b"b");
    ok(b.run(&["monitor"]), "monitor b");
    let page = a.dir.path().join("all.html");
    let out = Command::new(bin("dbackup-stage"))
        .args(["report", "--json", "--html", page.to_str().unwrap()])
        .arg("-w")
        .arg(&a.workdir)
        .arg("-w")
        .arg(&b.workdir)
        .env_remove("DBACKUP_WORKDIR")
        .output()
        .unwrap();
    let out = ok(out, "report of two sets");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sets"], 2);
    let uuid = |e: &TestEnv| {
        let o = ok(e.run(&["config", "uuid"]), "uuid");
        text(&o.stdout).trim().to_string()
    };
    let seen = open(&page, Some("special-file"));
    assert!(seen.console.is_empty(), "{:?}", seen.console);
    assert_eq!(
        attrs(&seen.dom, "<tr class=\"set\"", "data-uuid"),
        vec![uuid(&a), uuid(&b)]
    );
    let found = hits(&seen.dom);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "/only-in-b/special-file.txt");
    assert!(
        seen.dom.contains("<td>Family"),
        "the set is named in the hit"
    );
    // A workdir given before `report` and others after it would be
    // dropped by the parser: refused rather than leaving a set out.
    let out = a
        .stage()
        .args(["report", "--html", page.to_str().unwrap()])
        .arg("-w")
        .arg(&b.workdir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("after `report`"),
        "{}",
        text(&out.stderr)
    );
    // Other commands take one workdir.
    let out = a
        .stage()
        .arg("-w")
        .arg(&b.workdir)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("only `report`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_set_page_is_rewritten_after_runs_that_change_something_and_only_then() {
    let env = generated_set(5, 10);
    let page = env.dir.path().join("www").join("set.html");
    std::fs::create_dir(page.parent().unwrap()).unwrap();
    let out = ok(
        env.run(&["config", "report_html", page.to_str().unwrap()]),
        "config report_html",
    );
    assert!(text(&out.stdout).contains("set.html"));
    assert!(page.is_file(), "written at once");
    let cfg = ok(env.run(&["config", "report-html"]), "show it");
    assert_eq!(text(&cfg.stdout).trim(), page.to_str().unwrap());
    // Nothing changed: not rewritten, and nothing printed.
    std::fs::remove_file(&page).unwrap();
    let out = ok(env.run(&["monitor", "--cron"]), "quiet monitor");
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert!(!page.exists(), "rewritten though nothing changed");
    // A new file: rewritten, and the file is in it.
    env.write("new/fresh-photo.jpg", b"new");
    ok(env.run(&["monitor", "--cron"]), "monitor");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("fresh-photo.jpg"));
    // No temp file is left beside it.
    let left: Vec<_> = std::fs::read_dir(page.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("set.html")]);
    // A page that cannot be written changes nothing of the backup.
    std::fs::remove_dir_all(page.parent().unwrap()).unwrap();
    env.write("new/second.jpg", b"second");
    let out = env.run(&["monitor", "--cron"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("status page was not rewritten"));
    let (_, names) = catalogue(&env.workdir);
    assert!(
        names.iter().any(|(n, _)| n == b"/new/second.jpg"),
        "staged anyway"
    );
    // '' turns it off.
    ok(env.run(&["config", "report_html", ""]), "off");
    env.write("new/third.jpg", b"third");
    let out = ok(env.run(&["monitor", "--cron"]), "monitor");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn a_failed_rewrite_leaves_the_old_page_whole() {
    let env = generated_set(9, 10);
    let page = env.dir.path().join("keep.html");
    ok(
        env.run(&["report", "--html", page.to_str().unwrap()]),
        "report",
    );
    let before = std::fs::read(&page).unwrap();
    let out = env
        .stage()
        .env("FAILPOINTS", "report::write=return(enospc)")
        .args(["report", "--html", page.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&page).unwrap(), before);
    let left: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("keep"))
        .collect();
    assert_eq!(left, vec!["keep.html".to_string()], "a temp file was left");
    // A folder given as the page is refused with a clear message.
    let out = env.run(&["report", "--html", env.dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is a folder"),
        "{}",
        text(&out.stderr)
    );
}

mod search_property {
    //! The page's search against a plain model of it, over generated
    //! trees whose names mix cases, letters whose lower case is longer
    //! (`İ`), markup, quotes, newlines and bytes that are not UTF-8, and
    //! over queries cut from those names: a name is a hit when its base
    //! name holds the query, or with a `/` in the query when its path
    //! does (both lower-cased, as shown).
    use super::*;
    use proptest::prelude::*;

    fn piece() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(b"a".to_vec()),
                Just(b"B".to_vec()),
                Just(b"x".to_vec()),
                Just(b".".to_vec()),
                Just(b" ".to_vec()),
                Just("İ".as_bytes().to_vec()),
                Just("é".as_bytes().to_vec()),
                Just(b"<".to_vec()),
                Just(b"'".to_vec()),
                Just(b"\n".to_vec()),
                Just(b"\xff".to_vec()),
            ],
            1..5,
        )
        .prop_map(|v| v.concat())
    }

    fn tree() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
        proptest::collection::vec(proptest::collection::vec(piece(), 1..4), 1..25)
    }

    fn shown(bytes: &[u8]) -> String {
        dbackup::names::display(bytes, true)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
        #[test]
        fn the_search_finds_exactly_the_names_a_model_finds(
            paths in tree(),
            picks in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..4, 1usize..6, any::<bool>()), 4),
        ) {
            let env = TestEnv::new();
            let mut names: Vec<Vec<Vec<u8>>> = Vec::new();
            for p in paths {
                // A component "." or ".." is no name; a folder cannot
                // also be a file.
                if p.iter().any(|c| c == b"." || c == b"..") {
                    continue;
                }
                if names.iter().any(|n| n.starts_with(&p) || p.starts_with(n)) {
                    continue;
                }
                let rel: std::path::PathBuf = p.iter().map(|c| os(c)).collect();
                let full = env.watched.join(&rel);
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                std::fs::write(&full, b"x").unwrap();
                names.push(p);
            }
            prop_assume!(!names.is_empty());
            env.init(&["--disc-size", DISC]);
            ok(env.run(&["monitor"]), "monitor");
            let page = env.dir.path().join("p.html");
            ok(env.run(&["report", "--html", page.to_str().unwrap()]), "report");
            // (path as shown, base name as shown), lower-cased.
            let model: Vec<(String, String)> = names
                .iter()
                .map(|p| {
                    let path: String = p.iter().map(|c| format!("/{}", shown(c))).collect();
                    (path.to_lowercase(), shown(p.last().unwrap()).to_lowercase())
                })
                .collect();
            for (which, from, len, with_path) in &picks {
                let (path, base) = &model[which.index(model.len())];
                let source = if *with_path { path } else { base };
                let chars: Vec<char> = source.chars().collect();
                let from = (*from).min(chars.len().saturating_sub(1));
                let q: String = chars[from..(from + len).min(chars.len())].iter().collect();
                let q = q.trim().to_string();
                if q.is_empty() {
                    continue;
                }
                let want: std::collections::BTreeSet<String> = model
                    .iter()
                    .filter(|(p, b)| if q.contains('/') { p.contains(&q) } else { b.contains(&q) })
                    .map(|(p, _)| p.clone())
                    .collect();
                let seen = open(&page, Some(&q));
                prop_assert!(seen.console.is_empty(), "{:?}", seen.console);
                let got: std::collections::BTreeSet<String> = hits(&seen.dom)
                    .into_iter()
                    .map(|(n, _)| unescape(&n).to_lowercase())
                    .collect();
                prop_assert_eq!(&got, &want, "query {:?}", q);
            }
        }
    }

    /// The text of HTML as the DOM dump serialises it.
    fn unescape(s: &str) -> String {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&nbsp;", "\u{a0}")
            .replace("&amp;", "&")
    }
}

#[test]
fn the_page_never_replaces_what_it_must_not() {
    let env = generated_set(21, 5);
    let catalogue_before = std::fs::read(env.workdir.join("manifest.db")).unwrap();
    let fifo = env.dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let iso = env.workdir.join("isos").join("disc-1.iso");
    for (target, why) in [
        (env.workdir.join("manifest.db"), "inside the workdir"),
        (iso.clone(), "inside the workdir"),
        (env.workdir.join("page.html"), "inside the workdir"),
        (env.watched.join("status.html"), "inside the watched folder"),
        (fifo.clone(), "not a regular file"),
        (env.dir.path().to_path_buf(), "is a folder"),
        (
            env.dir.path().join("no-such-folder/p.html"),
            "no-such-folder",
        ),
    ] {
        for args in [
            vec!["report", "--html", target.to_str().unwrap()],
            vec!["config", "report_html", target.to_str().unwrap()],
        ] {
            let out = env.run(&args);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{args:?}: {}",
                text(&out.stdout)
            );
            assert!(
                text(&out.stderr).contains(why),
                "{args:?}: {}",
                text(&out.stderr)
            );
        }
    }
    assert_eq!(
        std::fs::read(env.workdir.join("manifest.db")).unwrap(),
        catalogue_before
    );
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(!env.watched.join("status.html").exists());
    // A refused page is not kept as the setting.
    let cfg = ok(env.run(&["config", "report_html"]), "config");
    assert_eq!(text(&cfg.stdout).trim(), "");
    // A symbolic link is followed: its target is replaced, the link stays.
    let real = env.dir.path().join("real.html");
    let link = env.dir.path().join("link.html");
    std::fs::write(&real, "old").unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    ok(
        env.run(&["report", "--html", link.to_str().unwrap()]),
        "report via a link",
    );
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&real)
        .unwrap()
        .starts_with("<!DOCTYPE html>"));
    // A name as long as a name can be.
    let long = env.dir.path().join(format!("{}.html", "p".repeat(250)));
    ok(
        env.run(&["report", "--html", long.to_str().unwrap()]),
        "a long name",
    );
    // A set given twice is shown once.
    let twice = env.dir.path().join("twice.html");
    let out = Command::new(bin("dbackup-stage"))
        .args(["report", "--json", "--html", twice.to_str().unwrap(), "-w"])
        .arg(&env.workdir)
        .arg("-w")
        .arg(&env.workdir)
        .env_remove("DBACKUP_WORKDIR")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&ok(out, "twice").stdout).unwrap();
    assert_eq!(v["sets"], 1);
}

#[test]
fn text_reordering_marks_and_a_bad_address_do_not_fool_the_page() {
    let env = generated_set(22, 3);
    env.write("evil\u{202e}txt.exe", b"x");
    ok(env.run(&["monitor"]), "monitor");
    let page = env.dir.path().join("p.html");
    ok(
        env.run(&["report", "--html", page.to_str().unwrap()]),
        "report",
    );
    let seen = open(&page, Some("evil"));
    assert_eq!(hits(&seen.dom)[0].0, "/evil\\u{202e}txt.exe");
    // A `#q=` that is not %-encoding is searched as typed, without error.
    let (dom, log) = browser(
        env.dir.path(),
        &["--dump-dom"],
        &format!("file://{}#q=%", page.display()),
    );
    assert!(!log.contains(":CONSOLE"), "{log}");
    assert!(dom.contains("data-ready=\"1\""));
}

/// The search index reads the names twice, the second time while the page
/// is written: a run that stages between the two passes changes neither,
/// for both read one snapshot of the catalogue.
#[test]
fn a_run_between_the_index_passes_changes_neither() {
    let env = generated_set(6, 10);
    let file = Path::new("page.html");
    let (page, wd) = dbackup::report::gather(&env.workdir).unwrap();
    let files = page.index.files();
    env.write("new/fresh-photo.jpg", b"new");
    ok(env.run(&["monitor", "--cron"]), "monitor");
    let mut out = Vec::new();
    dbackup::report::html::render(std::slice::from_ref(&page), &mut out, file, &mut |_, w| {
        page.index.write_script_json(&wd.catalog, w, file)
    })
    .unwrap();
    let html = String::from_utf8(out).unwrap();
    assert!(
        !html.contains("fresh-photo.jpg"),
        "the second pass saw a later name"
    );
    assert!(html.contains(&format!("{{\"files\":{files},")));
    drop(wd);
    let (later, _) = dbackup::report::gather(&env.workdir).unwrap();
    assert_eq!(later.index.files(), files + 1, "the run staged it");
}
