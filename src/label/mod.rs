//! Printable labels: for one disc, a disc-face label (a 120 mm circle with
//! the 15 mm hub hole) and a case insert (a 120 mm square, the front of a
//! jewel case), both with thin cut lines, on one A4 page written twice:
//! `isos/disc-N.label.svg` and `isos/disc-N.label.pdf` beside the image
//! (`disc-N-copy-C.label.*` for copy C; `parity-G-J.label.*` for a parity
//! disc). This module owns what a label says, its layout and those files;
//! it reads the catalogue and never changes it.
//!
//! A label shows the set's name, the disc (and copy), when the disc was
//! started and closed, the range of its files' modification times, its
//! file count and size, its top folders (most bytes first, as many as fit,
//! then "and K more"), the set's UUID and a QR code holding
//!
//! ```text
//! dbackup:v1:<set-uuid>:<disc>            e.g. dbackup:v1:6f1c…:3
//! dbackup:v1:<set-uuid>:<disc>:<copy>     e.g. dbackup:v1:6f1c…:3:2
//! ```
//!
//! where `<disc>` is the data disc's number, or `parity-G-J` for a parity
//! disc. The QR code has error correction level M and a 4-module quiet zone.
//!
//! One layout ([`layout::page`], a list of positioned text, rectangles,
//! circles and the QR matrix) is drawn by both backends, so the two files
//! cannot drift apart. The SVG keeps every name as it is (invalid UTF-8 as
//! `\xNN`, control characters escaped, all of it XML-escaped). The PDF
//! uses Helvetica, a base-14 font that every reader has, through
//! WinAnsiEncoding; no font is embedded, so a character outside that
//! encoding (a non-Latin name) shows as `?` in the PDF while the SVG keeps
//! it.
//!
//! Crates: `qrcode` (without its image feature) only builds the module
//! matrix, which we draw ourselves as rectangles; `pdf-writer`, from the
//! typst project, writes PDF objects and content streams and nothing more,
//! so a page of rectangles and base-14 text needs no font or image stack.
//!
//! Writes are atomic: each file goes to a temp file with a random name in
//! `isos/` (`.label-*.tmp`, a name no image takes), is synced, renamed
//! into place, and the folder synced.

pub mod layout;
pub mod pdf;
pub mod svg;

use std::path::{Path, PathBuf};

use crate::copies::DiscName;
use crate::error::{Error, Result};
use crate::workdir::Workdir;
use crate::{names, output};

/// Top folders handed to the layout at most; the rest are counted.
const MAX_FOLDERS: usize = 64;

/// What a label says, as printable text (no control characters).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelData {
    pub set_name: String,
    pub uuid: String,
    /// `Disc 3`, `Disc 3 – copy 2`, `Parity disc 2 of group 1`.
    pub title: String,
    /// Short lines for the disc face.
    pub facts: Vec<String>,
    /// Fuller lines for the case insert.
    pub case_facts: Vec<String>,
    /// Heading over the folders (`Top folders`, `Protects`).
    pub folders_heading: String,
    /// (name, size) of the top folders, most bytes first.
    pub folders: Vec<(String, String)>,
    /// Top folders beyond `folders`.
    pub more_folders: u64,
    /// The QR code's text.
    pub payload: String,
}

/// The label files written for a disc.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LabelReport {
    /// `3` or `parity-1-2`.
    pub disc: String,
    pub copy: Option<i64>,
    pub svg: PathBuf,
    pub pdf: PathBuf,
    /// The QR code's text.
    pub payload: String,
}

/// The QR code's text for a disc (and copy) of a set.
pub fn payload(uuid: &str, disc: &DiscName, copy: Option<i64>) -> String {
    match copy {
        Some(c) => format!("dbackup:v1:{uuid}:{}:{c}", disc.key()),
        None => format!("dbackup:v1:{uuid}:{}", disc.key()),
    }
}

/// Where a disc's label files go: beside its image in `isos/`.
pub fn paths(wd: &Workdir, disc: &DiscName, copy: Option<i64>) -> (PathBuf, PathBuf) {
    let stem = match copy {
        Some(c) => format!("{}-copy-{c}", image_stem(disc)),
        None => image_stem(disc),
    };
    let dir = wd.layout.isos();
    (
        dir.join(format!("{stem}.label.svg")),
        dir.join(format!("{stem}.label.pdf")),
    )
}

fn image_stem(disc: &DiscName) -> String {
    let name = disc.image_name();
    name.strip_suffix(".iso").unwrap_or(&name).to_string()
}

/// Writes the SVG and PDF labels of `disc` (copy `copy`) into `isos/`.
/// Only a closed data disc, or a parity disc that was built, has one.
pub fn write_labels(wd: &Workdir, disc: &DiscName, copy: Option<i64>) -> Result<LabelReport> {
    let data = gather(wd, disc, copy)?;
    let (svg_doc, pdf_doc) = render(&data)?;
    let (svg_path, pdf_path) = paths(wd, disc, copy);
    let dir = wd.layout.isos();
    if !dir.is_dir() {
        // A set whose images were never built: `isos/` is made here, and
        // the workdir synced so the folder outlives a crash with its files.
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        crate::fsutil::sync_dir(&wd.layout.root)?;
    }
    write_atomic(&svg_path, svg_doc.as_bytes())?;
    write_atomic(&pdf_path, &pdf_doc)?;
    Ok(LabelReport {
        disc: disc.key(),
        copy,
        svg: svg_path,
        pdf: pdf_path,
        payload: data.payload,
    })
}

/// The SVG and the PDF of a label.
pub fn render(data: &LabelData) -> Result<(String, Vec<u8>)> {
    let code =
        qrcode::QrCode::with_error_correction_level(data.payload.as_bytes(), qrcode::EcLevel::M)
            .map_err(|e| Error::Invalid(format!("QR code of {:?}: {e}", data.payload)))?;
    let width = code.width();
    let dark: Vec<bool> = code
        .to_colors()
        .into_iter()
        .map(|c| c == qrcode::Color::Dark)
        .collect();
    let items = layout::page(data, width, &dark);
    let title = format!("{} – {}", data.set_name, data.title);
    Ok((svg::render(&items, &title), pdf::render(&items, &title)))
}

/// What the label of `disc` says, from the catalogue.
pub fn gather(wd: &Workdir, disc: &DiscName, copy: Option<i64>) -> Result<LabelData> {
    if let Some(c) = copy.filter(|c| *c < 1) {
        return Err(Error::Invalid(format!(
            "copy {c}: copies are numbered from 1"
        )));
    }
    let settings = &wd.settings;
    let set_name = printable(settings.name.as_bytes());
    let uuid = printable(settings.uuid.as_bytes());
    let copy_part = copy.map(|c| format!(" – copy {c}")).unwrap_or_default();
    let payload = payload(&settings.uuid, disc, copy);
    match *disc {
        DiscName::Data(n) => {
            let row = wd
                .catalog
                .discs()?
                .into_iter()
                .find(|d| d.id == n)
                .ok_or_else(|| Error::Invalid(format!("disc {n} does not exist in this set")))?;
            let completed = row.completed.ok_or_else(|| {
                Error::Invalid(format!(
                    "disc {n} is still open: it gets a label once it is closed (dbackup-stage close)"
                ))
            })?;
            let contents = wd.catalog.disc_contents(n)?;
            let written = format!("{} – {}", date(row.started), date(Some(completed)));
            let dated = match (contents.oldest_mtime, contents.newest_mtime) {
                (Some(a), Some(b)) => Some(format!("{} – {}", date(Some(a)), date(Some(b)))),
                _ => None,
            };
            let size = format!(
                "{}, {}",
                output::count(contents.files, "file", "files"),
                output::bytes(contents.bytes)
            );
            let mut facts = vec![format!("Written {written}")];
            let mut case_facts = vec![format!("Written {written}")];
            if let Some(d) = &dated {
                facts.push(format!("Files dated {d}"));
                case_facts.push(format!("Files dated {d}"));
            }
            facts.push(size.clone());
            case_facts.push(size);
            let total = contents.folders.len();
            let folders = contents
                .folders
                .iter()
                .take(MAX_FOLDERS)
                .map(|f| {
                    let name = if f.name.is_empty() {
                        "(top level)".to_string()
                    } else {
                        printable(&f.name)
                    };
                    (name, output::bytes(f.bytes))
                })
                .collect::<Vec<_>>();
            Ok(LabelData {
                set_name,
                uuid,
                title: format!("Disc {n}{copy_part}"),
                facts,
                case_facts,
                folders_heading: "Top folders".into(),
                more_folders: total.saturating_sub(MAX_FOLDERS) as u64,
                folders,
                payload,
            })
        }
        DiscName::Parity(g, j) => {
            let group = wd
                .catalog
                .parity_groups()?
                .into_iter()
                .find(|gr| gr.id == g)
                .ok_or_else(|| {
                    Error::Invalid(format!("parity group {g} does not exist in this set"))
                })?;
            if !group.built.contains(&j) {
                return Err(Error::Invalid(format!(
                    "parity disc {g}-{j} has not been built (dbackup-mkiso builds it once its group is full)"
                )));
            }
            let protects = format!("Protects discs {}", output::discs(&group.discs));
            let scheme = format!(
                "Group {g}: {} data discs, {} parity discs",
                group.scheme.k, group.scheme.m
            );
            let facts = vec![protects.clone(), scheme.clone()];
            Ok(LabelData {
                set_name,
                uuid,
                title: format!("Parity disc {j} of group {g}{copy_part}"),
                facts: facts.clone(),
                case_facts: facts,
                folders_heading: String::new(),
                folders: Vec::new(),
                more_folders: 0,
                payload,
            })
        }
    }
}

/// A name or setting as text that is safe to draw: invalid UTF-8 as
/// `\xNN`, control characters escaped.
fn printable(bytes: &[u8]) -> String {
    names::display(bytes, true)
}

/// A local calendar date (`2026-11-26`), `?` when unknown.
fn date(secs: Option<f64>) -> String {
    let Some(secs) = secs.filter(|s| s.is_finite()) else {
        return "?".into();
    };
    match jiff::Timestamp::from_second(secs.floor() as i64) {
        Ok(ts) => ts
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d")
            .to_string(),
        Err(_) => "?".into(),
    }
}

/// Writes a label file atomically beside the image (temp `.label-*.tmp`).
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    crate::fsutil::write_atomic_beside(path, data, ".label-", "label::write")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LabelData {
        LabelData {
            set_name: "Family <photos> & \"more\"".into(),
            uuid: "6f1c2d3e-0000-4000-8000-123456789abc".into(),
            title: "Disc 3".into(),
            facts: vec!["Written 2026-01-01 – 2026-02-01".into(), "3 files".into()],
            case_facts: vec!["Written 2026-01-01 – 2026-02-01".into()],
            folders_heading: "Top folders".into(),
            folders: (0..30)
                .map(|i| (format!("folder {i}"), output::bytes(1000 * i)))
                .collect(),
            more_folders: 5,
            payload: payload(
                "6f1c2d3e-0000-4000-8000-123456789abc",
                &DiscName::Data(3),
                None,
            ),
        }
    }

    #[test]
    fn atomic_writes_replace_whole_files_and_leave_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disc-1.label.svg");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new and longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new and longer");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("disc-1.label.svg")]);
        // A folder in the way: an error, and the temp file is gone too.
        let blocked = dir.path().join("disc-2.label.svg");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write_atomic(&blocked, b"data").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn payload_names_set_disc_and_copy() {
        let u = "u-u";
        assert_eq!(payload(u, &DiscName::Data(3), None), "dbackup:v1:u-u:3");
        assert_eq!(
            payload(u, &DiscName::Data(3), Some(2)),
            "dbackup:v1:u-u:3:2"
        );
        assert_eq!(
            payload(u, &DiscName::Parity(1, 2), None),
            "dbackup:v1:u-u:parity-1-2"
        );
    }

    #[test]
    fn both_backends_draw_the_same_items() {
        let (svg, pdf) = render(&sample()).unwrap();
        assert!(svg.contains("Family &lt;photos&gt; &amp; &quot;more&quot;"));
        assert!(!svg.contains("<photos>"));
        assert!(pdf.starts_with(b"%PDF-"));
        // Folders that do not fit are counted, never drawn off the insert.
        assert!(svg.contains("and "), "{svg}");
        let texts = svg.matches("<text ").count();
        let pdf_texts = pdf.windows(3).filter(|w| w == b" Tj").count();
        assert_eq!(texts, pdf_texts);
    }

    #[test]
    fn every_text_stays_on_the_page() {
        let mut data = sample();
        data.set_name = "W".repeat(300);
        let code = qrcode::QrCode::new(data.payload.as_bytes()).unwrap();
        let items = layout::page(&data, code.width(), &vec![false; code.width().pow(2)]);
        for item in &items {
            if let layout::Item::Text {
                x,
                text,
                size,
                bold,
                anchor,
                ..
            } = item
            {
                let w = layout::text_width(text, *size, *bold);
                let start = match anchor {
                    layout::Anchor::Start => *x,
                    layout::Anchor::Middle => x - w / 2.0,
                    layout::Anchor::End => x - w,
                };
                assert!(start >= 0.0 && start + w <= layout::PAGE_W, "{text}");
            }
        }
    }
}
