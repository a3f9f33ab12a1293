//! Printable labels (`dbackup-stage label`, `dbackup-mkiso --label`),
//! checked with independent programs: the SVG parses as XML (Python's
//! minidom), the PDF renders (pdftoppm) and the QR code in the rendered
//! page decodes (zbarimg) to the documented payload; so does the QR code of
//! the SVG as chromium draws it; the PDF's text reads back with pdftotext.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn have(program: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        eprintln!("skipping part of this test: {program} is not installed (tests/run installs it)");
    }
    found
}

/// A hostile top folder name: markup, quotes, `&`, a newline and a byte
/// that is not UTF-8 (a name cannot hold `/`, so the closing tag is in the
/// set's name instead).
const HOSTILE: &[u8] = b"<script>alert(1) \"q\" 'a' & b\nc\xff";

/// A set with disc 1 closed (no image yet) and disc 2 open.
fn closed_set(name: &str) -> TestEnv {
    let env = TestEnv::new();
    env.write("2012/Photo 01.JPG", &bytes_of(1, 40_000));
    env.write("2012/Photo 02.JPG", &bytes_of(2, 30_000));
    env.write("notes/read me.txt", b"hello");
    let hostile = env.watched.join(OsStr::from_bytes(HOSTILE));
    std::fs::create_dir(&hostile).unwrap();
    std::fs::write(hostile.join("f"), bytes_of(3, 50_000)).unwrap();
    env.init(&["--disc-size", "700M", "--name", name]);
    ok(env.run(&["monitor", "--no-iso"]), "monitor");
    ok(env.run(&["close", "--no-iso"]), "close");
    env
}

fn uuid(env: &TestEnv) -> String {
    env.catalog()
        .query_row("SELECT value FROM settings WHERE key='uuid'", [], |r| {
            r.get(0)
        })
        .unwrap()
}

/// The paths `label` printed, one a line.
fn printed_paths(out: &std::process::Output) -> Vec<PathBuf> {
    text(&out.stdout).lines().map(PathBuf::from).collect()
}

fn parses_as_xml(svg: &Path) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import xml.dom.minidom,sys\n\
             d = xml.dom.minidom.parse(sys.argv[1])\n\
             assert not d.getElementsByTagName('script'), 'a script element'\n",
        )
        .arg(svg)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{} is not well-formed XML: {}",
        svg.display(),
        text(&out.stderr)
    );
}

/// The distinct texts of the QR codes zbarimg finds in an image.
fn qr_texts(png: &Path) -> BTreeSet<String> {
    let out = Command::new("zbarimg")
        .args(["-q", "--raw"])
        .arg(png)
        .output()
        .expect("run zbarimg");
    assert!(
        out.status.success(),
        "zbarimg found no code in {}: {}",
        png.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The QR codes of a PDF's page rendered at 150 dpi.
fn pdf_qr(pdf: &Path, tmp: &Path) -> BTreeSet<String> {
    let prefix = tmp.join("page");
    let out = Command::new("pdftoppm")
        .args(["-r", "150", "-png", "-singlefile"])
        .arg(pdf)
        .arg(&prefix)
        .output()
        .expect("run pdftoppm");
    assert!(out.status.success(), "pdftoppm: {}", text(&out.stderr));
    qr_texts(&tmp.join("page.png"))
}

/// The QR codes of an SVG as chromium draws it, or None when chromium
/// made no screenshot (said on stderr).
fn svg_qr(svg: &Path, tmp: &Path) -> Option<BTreeSet<String>> {
    let png = tmp.join("svg.png");
    let profile = tmp.join("chromium-profile");
    let out = Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,1200")
        .arg(format!("file://{}", svg.display()))
        .output()
        .expect("run chromium");
    if !png.is_file() {
        eprintln!(
            "chromium made no screenshot of {} (exit {:?}): {}",
            svg.display(),
            out.status.code(),
            text(&out.stderr)
        );
        return None;
    }
    Some(qr_texts(&png))
}

#[test]
fn labels_parse_render_and_their_qr_codes_decode() {
    let env = closed_set("Family photos");
    let uuid = uuid(&env);
    let out = ok(env.run(&["label", "1"]), "label 1");
    let isos = env.workdir.join("isos");
    let svg = isos.join("disc-1.label.svg");
    let pdf = isos.join("disc-1.label.pdf");
    assert_eq!(printed_paths(&out), vec![svg.clone(), pdf.clone()]);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    let doc = std::fs::read_to_string(&svg).unwrap();
    assert!(doc.contains("Family photos"), "{doc}");
    assert!(doc.contains(">Disc 1<"), "{doc}");
    assert!(doc.contains(&uuid));
    assert!(doc.contains(">2012<"), "top folder missing: {doc}");
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    // No temp file is left beside them.
    let left: Vec<_> = std::fs::read_dir(&isos)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.as_bytes().starts_with(b"."))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    if have("python3") {
        parses_as_xml(&svg);
    }
    let tmp = tempfile::tempdir().unwrap();
    let expected: BTreeSet<String> = [format!("dbackup:v1:{uuid}:1")].into();
    if have("pdftoppm") && have("zbarimg") {
        assert_eq!(pdf_qr(&pdf, tmp.path()), expected);
    }
    if have("chromium") && have("zbarimg") && have("timeout") {
        if let Some(found) = svg_qr(&svg, tmp.path()) {
            assert_eq!(found, expected);
        }
    }

    // A copy: its own files, and the copy in the QR code.
    let out = ok(env.run(&["label", "1", "--copy", "2"]), "label 1 --copy 2");
    let svg2 = isos.join("disc-1-copy-2.label.svg");
    let pdf2 = isos.join("disc-1-copy-2.label.pdf");
    assert_eq!(printed_paths(&out), vec![svg2.clone(), pdf2.clone()]);
    let doc2 = std::fs::read_to_string(&svg2).unwrap();
    assert!(doc2.contains("copy 2"), "{doc2}");
    if have("pdftoppm") && have("zbarimg") {
        let tmp = tempfile::tempdir().unwrap();
        let expected: BTreeSet<String> = [format!("dbackup:v1:{uuid}:1:2")].into();
        assert_eq!(pdf_qr(&pdf2, tmp.path()), expected);
    }
}

#[test]
fn hostile_names_are_escaped_in_the_svg() {
    let env = closed_set("<script>alert(1)</script> & \"x\"");
    let out = ok(env.run(&["label", "1"]), "label 1");
    let svg = printed_paths(&out)[0].clone();
    let doc = std::fs::read(&svg).unwrap();
    let doc = String::from_utf8(doc).expect("the SVG is UTF-8");
    assert!(!doc.contains("<script"), "{doc}");
    assert!(
        doc.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;"),
        "set name not escaped: {doc}"
    );
    // The folder's bytes: markup escaped, the newline and the byte that
    // is not UTF-8 shown as escapes, never as themselves.
    assert!(
        doc.contains("&lt;script&gt;alert(1) &quot;q&quot; &apos;a&apos; &amp; b\\nc\\xff"),
        "folder name not escaped: {doc}"
    );
    assert!(!doc.contains("b\nc"));
    if have("python3") {
        parses_as_xml(&svg);
    }
    // The PDF has no such characters to fear, but must still render.
    if have("pdftoppm") && have("zbarimg") {
        let tmp = tempfile::tempdir().unwrap();
        let pdf = printed_paths(&out)[1].clone();
        let expected: BTreeSet<String> = [format!("dbackup:v1:{}:1", uuid(&env))].into();
        assert_eq!(pdf_qr(&pdf, tmp.path()), expected);
    }
}

#[test]
fn json_names_the_files_and_the_payload() {
    let env = closed_set("Family photos");
    let out = ok(
        env.run(&["label", "1", "--copy", "3", "--json"]),
        "label --json",
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["disc"], "1");
    assert_eq!(v["copy"], 3);
    assert_eq!(
        v["payload"],
        format!("dbackup:v1:{}:1:3", uuid(&env)).as_str()
    );
    for key in ["svg", "pdf"] {
        let p = PathBuf::from(v[key].as_str().unwrap());
        assert!(p.is_file(), "{}", p.display());
        assert_eq!(p.parent().unwrap(), env.workdir.join("isos"));
    }
}

#[test]
fn missing_and_open_discs_get_no_label() {
    let env = closed_set("Family photos");
    let out = env.run(&["label", "99"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("disc 99 does not exist"),
        "{}",
        text(&out.stderr)
    );
    let out = env.run(&["label", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("disc 2 is still open"),
        "{}",
        text(&out.stderr)
    );
    let out = env.run(&["label", "1", "--copy", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(!env.workdir.join("isos/disc-2.label.svg").exists());
    assert!(!env.workdir.join("isos/disc-99.label.svg").exists());
}

#[test]
fn mkiso_label_writes_the_labels_beside_the_image() {
    let env = closed_set("Family photos");
    let out = ok(env.mkiso(&["--label"]), "mkiso --label");
    let isos = env.workdir.join("isos");
    assert!(isos.join("disc-1.iso").is_file());
    let svg = isos.join("disc-1.label.svg");
    let pdf = isos.join("disc-1.label.pdf");
    assert!(svg.is_file() && pdf.is_file());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Disc 1 ready: "), "{stdout}");
    assert!(stdout.contains(&svg.display().to_string()), "{stdout}");
    if have("pdftoppm") && have("zbarimg") {
        let tmp = tempfile::tempdir().unwrap();
        let expected: BTreeSet<String> = [format!("dbackup:v1:{}:1", uuid(&env))].into();
        assert_eq!(pdf_qr(&pdf, tmp.path()), expected);
    }
}

#[test]
fn a_label_that_cannot_be_written_does_not_fail_the_image() {
    let env = closed_set("Family photos");
    // A folder where the SVG goes: renaming a file over it fails, even
    // for root.
    std::fs::create_dir_all(env.workdir.join("isos/disc-1.label.svg/x")).unwrap();
    let out = env.mkiso(&["--label"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(env.workdir.join("isos/disc-1.iso").is_file());
    assert!(
        text(&out.stderr).contains("label was not written"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_parity_disc_gets_a_label_naming_what_it_protects() {
    if !have("par2") {
        return;
    }
    let env = TestEnv::new();
    for i in 0..3u64 {
        env.write(format!("f{i}"), &bytes_of(i + 1, 450_000));
    }
    env.init(&["--disc-size", "1100K", "--parity", "2+1"]);
    ok(env.run(&["monitor"]), "monitor");
    let isos = env.workdir.join("isos");
    assert!(isos.join("parity-1-1.iso").is_file());
    let out = ok(env.run(&["label", "parity-1-1"]), "label parity-1-1");
    let svg = isos.join("parity-1-1.label.svg");
    let pdf = isos.join("parity-1-1.label.pdf");
    assert_eq!(printed_paths(&out), vec![svg.clone(), pdf.clone()]);
    let doc = std::fs::read_to_string(&svg).unwrap();
    assert!(doc.contains("Parity disc 1 of group 1"), "{doc}");
    assert!(doc.contains("Protects discs 1,2"), "{doc}");
    if have("pdftoppm") && have("zbarimg") {
        let tmp = tempfile::tempdir().unwrap();
        let expected: BTreeSet<String> = [format!("dbackup:v1:{}:parity-1-1", uuid(&env))].into();
        assert_eq!(pdf_qr(&pdf, tmp.path()), expected);
    }
    // One not built yet, and a group that does not exist.
    for disc in ["parity-1-2", "parity-9-1"] {
        let out = env.run(&["label", disc]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    }
}

/// The text of a PDF as pdftotext reads it.
fn pdf_text(pdf: &Path) -> String {
    let out = Command::new("pdftotext")
        .arg(pdf)
        .arg("-")
        .output()
        .expect("run pdftotext");
    assert!(out.status.success(), "pdftotext: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn the_pdf_keeps_latin_text_and_marks_what_its_font_lacks() {
    let env = closed_set("Fotos de família 写真");
    let out = ok(env.run(&["label", "1"]), "label 1");
    let paths = printed_paths(&out);
    let doc = std::fs::read_to_string(&paths[0]).unwrap();
    assert!(doc.contains("Fotos de família 写真"), "{doc}");
    if have("pdftotext") {
        let t = pdf_text(&paths[1]);
        assert!(t.contains("Fotos de família ??"), "{t}");
        assert!(t.contains("Disc 1"), "{t}");
        assert!(t.contains("Top folders"), "{t}");
        assert!(t.contains(&uuid(&env)), "{t}");
    }
}

#[test]
fn with_labels_on_every_image_built_gets_its_labels() {
    let env = TestEnv::new();
    env.write("a.txt", b"a");
    env.init(&["--disc-size", DISC]);
    ok(env.run(&["config", "labels", "on"]), "config labels on");
    let cfg = ok(env.run(&["config", "labels"]), "show it");
    assert_eq!(text(&cfg.stdout).trim(), "on");
    ok(env.run(&["monitor"]), "monitor");
    let out = ok(env.run(&["close"]), "close");
    let isos = env.workdir.join("isos");
    assert!(
        isos.join("disc-1.label.svg").is_file(),
        "{}",
        text(&out.stdout)
    );
    assert!(isos.join("disc-1.label.pdf").is_file());
    assert!(text(&out.stdout).contains("disc-1.label.svg"));
    // Off: the next image gets none.
    ok(env.run(&["config", "labels", "off"]), "off");
    env.write("b.txt", b"b");
    ok(env.run(&["monitor"]), "monitor");
    ok(env.run(&["close"]), "close");
    assert!(!isos.join("disc-2.label.svg").exists());
}
