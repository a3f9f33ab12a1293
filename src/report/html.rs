//! Renders the status page: one HTML file with its style, script and
//! pictures inline, that opens from disk with no network.
//!
//! Every text that comes from a catalogue (set names, file and folder
//! names, locations, media) goes through [`esc`]; names are first made
//! displayable with control characters and non-UTF-8 bytes escaped. The
//! search index sits in a JSON data block made safe for `<script>`. A
//! Content-Security-Policy lets the page run only its own script (by
//! hash) and load nothing at all, so even a name that slipped through
//! could neither run code nor reach the network.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use sha2::Digest as _;

use super::{DiscPage, ImageState, SetPage};
use crate::error::{Error, Result};
use crate::output;

const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");

/// Months the timeline draws gaps for; past that span only months with
/// something in them are drawn (a clock set to the year 9999 on one
/// version must not make a page of a million bars).
const TIMELINE_MONTHS: usize = 600;

/// Top folders a disc's row lists before folding the rest away.
const TOP_FOLDERS: usize = 5;

/// Text escaped for HTML content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Controls, and the marks that reorder text, as escapes.
            c if c.is_control() || super::reorders_text(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// A catalogue name (bytes) as escaped HTML text.
fn name(bytes: &[u8]) -> String {
    esc(&crate::names::display(bytes, true))
}

fn date(secs: Option<f64>) -> String {
    match secs {
        Some(s) if s.is_finite() => output::time(s).chars().take(10).collect(),
        _ => "-".into(),
    }
}

fn when(secs: Option<f64>) -> String {
    match secs {
        Some(s) if s.is_finite() => output::time(s).replacen('T', " ", 1),
        _ => "never".into(),
    }
}

/// The Content-Security-Policy: our script by its hash, inline style,
/// nothing loaded from anywhere.
fn policy() -> String {
    let hash = sha2::Sha256::digest(JS.as_bytes());
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Writes the whole page for these sets to `out`; `index(i, out)` writes
/// the search index of set `i` (see [`super::index::NameIndex`]), the
/// one part that grows with the files and so is never held whole. `page`
/// names the file in an I/O error.
pub fn render(
    sets: &[SetPage],
    out: &mut dyn Write,
    page: &Path,
    index: &mut dyn FnMut(usize, &mut dyn Write) -> Result<()>,
) -> Result<()> {
    let io = |e: std::io::Error| Error::io(page, e);
    // What is held here is bounded by the discs, folders and months.
    let mut h = String::with_capacity(64 * 1024);
    let title = match sets {
        [one] => format!("dbackup: {}", one.status.Set_name),
        _ => format!("dbackup: {} sets", sets.len()),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"generator\" content=\"dbackup {}\">\
         <title>{}</title><style>{CSS}</style></head><body>\n",
        esc(&policy()),
        env!("CARGO_PKG_VERSION"),
        esc(&title)
    );
    let generated = sets.iter().map(|s| s.generated).reduce(f64::max);
    let _ = writeln!(
        h,
        "<h1>{}</h1><p><small>Made {} by dbackup {} from the catalogue{}; it shows the sets as they were then.</small></p>",
        esc(&title),
        when(generated),
        env!("CARGO_PKG_VERSION"),
        if sets.len() > 1 { "s" } else { "" }
    );
    h.push_str("<div id=\"errors\" hidden></div>\n");
    if sets.len() != 1 {
        overview(&mut h, sets);
    }
    let files: u64 = sets.iter().map(|s| s.index.files()).sum();
    let _ = writeln!(
        h,
        "<div id=\"search\"><label>Which disc holds a file? <input id=\"q\" type=\"search\" \
         placeholder=\"part of a name, or a/path\" autocomplete=\"off\"></label> \
         <small>{} names</small><p id=\"summary\"></p>\
         <table id=\"results\" hidden><thead><tr>{}<th>Name</th><th>Discs</th></tr></thead><tbody></tbody></table></div>",
        files,
        if sets.len() > 1 { "<th>Set</th>" } else { "" }
    );
    for (i, s) in sets.iter().enumerate() {
        set(&mut h, s, i + 1);
    }
    for (i, s) in sets.iter().enumerate() {
        let lost: Vec<String> = s
            .discs
            .iter()
            .filter(|d| d.lost)
            .map(|d| d.id.to_string())
            .collect();
        let _ = write!(
            h,
            "<script type=\"application/json\" class=\"idx\" data-name=\"{}\" data-anchor=\"set-{}\" data-lost=\"{}\">",
            esc(&s.status.Set_name),
            i + 1,
            lost.join(",")
        );
        out.write_all(h.as_bytes()).map_err(io)?;
        h.clear();
        index(i, out)?;
        h.push_str("</script>\n");
    }
    let _ = writeln!(h, "<script>{JS}</script>\n</body></html>");
    out.write_all(h.as_bytes()).map_err(io)
}

/// The index of sets, as the original's page listed them.
fn overview(h: &mut String, sets: &[SetPage]) {
    h.push_str("<h2>Sets</h2><table id=\"sets\"><thead><tr><th>Set</th><th class=\"n\">Files</th><th class=\"n\">Bytes</th><th>Last run</th><th class=\"n\">Discs closed</th><th>Open disc</th></tr></thead><tbody>\n");
    for (i, s) in sets.iter().enumerate() {
        let st = &s.status;
        let _ = writeln!(
            h,
            "<tr class=\"set\" data-uuid=\"{}\"><td><a href=\"#set-{}\">{}</a></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&st.Set_uuid),
            i + 1,
            esc(&st.Set_name),
            st.Files_backed_up,
            esc(&output::bytes(st.Bytes_backed_up)),
            when(st.Last_run),
            st.Discs_closed,
            fill(st)
        );
    }
    h.push_str("</tbody></table>\n");
}

fn fill(st: &crate::status::Status) -> String {
    let pct = st.Disc_Pct_full.min(100);
    format!(
        "<span class=\"bar\" title=\"{pct}%\"><span style=\"width:{pct}%\"></span></span> disc {} {pct}% ({} of {})",
        st.Current_disc,
        esc(&output::bytes(st.Current_usage)),
        esc(&output::bytes(st.Disc_threshold))
    )
}

/// A schedule (`12m`, `90d`) in words, as a page reads it.
fn in_words(every: &str) -> String {
    let unit = match every.chars().last() {
        Some('d') => ("day", "days"),
        Some('w') => ("week", "weeks"),
        Some('m') => ("month", "months"),
        Some('y') => ("year", "years"),
        _ => return every.to_string(),
    };
    match every[..every.len() - 1].parse::<u64>() {
        Ok(n) => output::count(n, unit.0, unit.1),
        Err(_) => every.to_string(),
    }
}

fn list(ids: &[i64]) -> String {
    if ids.is_empty() {
        "none".into()
    } else {
        output::discs(ids)
    }
}

fn set(h: &mut String, s: &SetPage, n: usize) {
    let st = &s.status;
    let _ = writeln!(
        h,
        "<section class=\"set\" id=\"set-{n}\" data-uuid=\"{}\" data-files=\"{}\" data-bytes=\"{}\">",
        esc(&st.Set_uuid),
        st.Files_backed_up,
        st.Bytes_backed_up
    );
    let _ = writeln!(h, "<h2>{}</h2>", esc(&st.Set_name));
    let burn: Vec<i64> = s
        .discs
        .iter()
        .filter(|d| d.image == ImageState::InIsos && !d.lost)
        .filter(|d| d.copies.as_ref().is_none_or(|c| c.held == 0))
        .map(|d| d.id)
        .collect();
    let _ = writeln!(
        h,
        "<dl class=\"facts\"><dt>Set UUID</dt><dd class=\"uuid\">{}</dd><dt>Watched folder</dt><dd class=\"name\">{}</dd>\
         <dt>Backed up</dt><dd><span class=\"files\">{}</span> files, {} (<span class=\"bytes\">{}</span> bytes)</dd>\
         <dt>Last run</dt><dd>{}</dd><dt>Open disc</dt><dd class=\"open\">{}</dd>\
         <dt>Waiting for an image</dt><dd class=\"wait-image\">{}</dd><dt>Waiting for a burn</dt><dd class=\"wait-burn\">{}</dd>\
         <dt>Copies</dt><dd>{} per disc, checked every {}</dd><dt>Parity</dt><dd>{}</dd></dl>",
        esc(&st.Set_uuid),
        esc(&crate::names::display(
            std::os::unix::ffi::OsStrExt::as_bytes(st.Watched_dir.as_os_str()),
            true
        )),
        st.Files_backed_up,
        esc(&output::bytes(st.Bytes_backed_up)),
        st.Bytes_backed_up,
        when(st.Last_run),
        fill(st),
        list(&st.Discs_waiting_for_image),
        list(&burn),
        s.copies_policy,
        esc(&in_words(&s.check_every)),
        esc(&st.Parity)
    );
    attention(h, s);
    timeline(h, s);
    discs(h, s);
    if !s.parity.is_empty() {
        h.push_str("<h3>Parity discs</h3><table class=\"parity\"><thead><tr><th>Disc</th><th>Protects</th><th>Image</th><th>Copies</th></tr></thead><tbody>\n");
        for p in &s.parity {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>discs {}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.label),
                output::discs(&p.protects),
                if p.in_isos { "in isos/" } else { "removed" },
                copies(p.copies.as_ref())
            );
        }
        h.push_str("</tbody></table>\n");
    }
    h.push_str("</section>\n");
}

/// What needs the user: lost discs and their cost, checks due, discs
/// below the copies policy, damaged versions, split files in progress.
fn attention(h: &mut String, s: &SetPage) {
    let st = &s.status;
    let mut any = false;
    for l in &s.lost {
        any = true;
        let image = s
            .discs
            .iter()
            .any(|d| d.id == l.disc && d.image == ImageState::InIsos);
        let _ = write!(
            h,
            "<div class=\"bad lost-cost\" data-disc=\"{}\" data-unrecoverable=\"{}\"><b>Disc {} is lost.</b> \
             {} ({}) only on it{}; {} ({}) its parity group can rebuild; \
             {} ({}) on other discs; {} ({}) superseded by newer ones at hand. \
             <small>From the catalogue alone: <code>dbackup-lost {} --what-if</code> tells which the watched folder still holds.</small>",
            l.disc,
            l.unrecoverable.files,
            l.disc,
            output::count(l.unrecoverable.files, "file", "files"),
            esc(&output::bytes(l.unrecoverable.bytes)),
            if l.unrecoverable.files > 0 { " (unless the watched folder still has them)" } else { "" },
            output::count(l.recoverable_from_parity.files, "file", "files"),
            esc(&output::bytes(l.recoverable_from_parity.bytes)),
            output::count(l.elsewhere.files, "file", "files"),
            esc(&output::bytes(l.elsewhere.bytes)),
            output::count(l.history_only.files, "older version", "older versions"),
            esc(&output::bytes(l.history_only.bytes)),
            l.disc
        );
        if image {
            let _ = write!(
                h,
                " <b>Its image is still in isos/:</b> burn it again (<code>dbackup-burn --disc {} --device DEV</code>) and record it found (<code>dbackup-lost {} --found</code>).",
                l.disc, l.disc
            );
        }
        if !l.examples.is_empty() {
            h.push_str("<ul>");
            for e in &l.examples {
                let _ = write!(h, "<li class=\"name\">{}</li>", esc(e));
            }
            if l.unrecoverable.files as usize > l.examples.len() {
                let _ = write!(
                    h,
                    "<li>and {} more</li>",
                    l.unrecoverable.files as usize - l.examples.len()
                );
            }
            h.push_str("</ul>");
        }
        h.push_str("</div>\n");
    }
    for d in &st.Damaged_versions {
        any = true;
        let _ = writeln!(
            h,
            "<div class=\"bad\">Version {} of <span class=\"name\">{}</span> (disc {}) rotted before it reached a disc: {}</div>",
            d.id,
            esc(&d.filename),
            d.disc,
            esc(&d.reason)
        );
    }
    if !s.due.is_empty() {
        any = true;
        h.push_str(
            "<div class=\"warn due\"><b>Due a check</b> (<code>dbackup-verify --due</code>):<ul>",
        );
        for d in &s.due {
            let _ = write!(
                h,
                "<li data-disc=\"{}\">{} copy {}{}: last good check {}, due since {}</li>",
                esc(&d.disc),
                esc(&d.disc),
                d.copy,
                d.location
                    .as_deref()
                    .map(|l| format!(" at {}", esc(l)))
                    .unwrap_or_default(),
                d.last_good_check.map_or("never".into(), |t| date(Some(t))),
                date(Some(d.due))
            );
        }
        h.push_str("</ul></div>\n");
    }
    if !s.below_policy.is_empty() {
        any = true;
        let _ = writeln!(
            h,
            "<div class=\"warn below\">Held in fewer copies than the policy asks ({}): <span class=\"below-discs\">{}</span> (<code>dbackup-burn</code> makes more; <code>dbackup-stage copies add</code> records one burned by hand).</div>",
            s.copies_policy,
            esc(&s.below_policy.join(", "))
        );
    }
    for sp in &st.Split_files_in_progress {
        any = true;
        let _ = writeln!(
            h,
            "<div class=\"warn\"><span class=\"name\">{}</span> is larger than a disc and still being staged: {} of {} (no backup yet).</div>",
            esc(&sp.filename),
            esc(&output::bytes(sp.staged)),
            esc(&output::bytes(sp.size))
        );
    }
    if !any {
        h.push_str("<div class=\"ok\">Nothing needs you: no disc lost, no check due, every disc held in enough copies.</div>\n");
    }
}

/// Bytes backed up per month as bars, discs closed as dots above them.
fn timeline(h: &mut String, s: &SetPage) {
    h.push_str("<h3>Timeline</h3>");
    if s.months.is_empty() {
        h.push_str("<p>Nothing backed up yet.</p>\n");
        return;
    }
    let months = fill_months(&s.months);
    let (w, top, base) = (1000.0_f64, 20.0_f64, 150.0_f64);
    let n = months.len().max(1) as f64;
    // A bar is at most 60 units wide: a young set's one month is no wall.
    let step = (w / n).min(60.0);
    let max = months.iter().map(|m| m.1).max().unwrap_or(0).max(1) as f64;
    let _ = write!(
        h,
        "<svg class=\"timeline\" viewBox=\"0 0 {w} 180\" role=\"img\" aria-label=\"bytes backed up per month\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    let _ = write!(
        h,
        "<text x=\"4\" y=\"14\" font-size=\"11\">most in a month: {}</text>",
        esc(&output::bytes(max as u64))
    );
    let mut last_year = String::new();
    for (i, (label, bytes, files, closed)) in months.iter().enumerate() {
        let x = i as f64 * step;
        let bh = (*bytes as f64 / max) * (base - top);
        let _ = write!(
            h,
            "<rect class=\"month\" data-month=\"{label}\" data-bytes=\"{bytes}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#2f7d4f\"><title>{label}: {files} files, {}; {closed} discs closed</title></rect>",
            x + step * 0.1,
            base - bh,
            (step * 0.8).max(0.5),
            bh,
            esc(&output::bytes(*bytes))
        );
        if *closed > 0 {
            let _ = write!(
                h,
                "<circle class=\"closed\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{:.1}\" fill=\"#345\"><title>{label}: {closed} discs closed</title></circle>",
                x + step / 2.0,
                (base - bh - 6.0).max(top),
                (step * 0.3).clamp(1.5, 5.0)
            );
        }
        let year = &label[..label.len().min(4)];
        if year != last_year {
            let _ = write!(
                h,
                "<text x=\"{:.1}\" y=\"172\" font-size=\"11\">{}</text>",
                x,
                esc(year)
            );
            last_year = year.to_string();
        }
    }
    h.push_str("</svg>\n");
}

/// Months from the first to the last, gaps filled (up to
/// [`TIMELINE_MONTHS`]): (label, bytes, files, discs closed).
fn fill_months(months: &[crate::catalog::contents::Month]) -> Vec<(String, u64, u64, u64)> {
    let parse = |m: &str| -> Option<(i64, i64)> {
        let (y, mo) = m.split_once('-')?;
        Some((y.parse().ok()?, mo.parse().ok()?))
    };
    let all = || {
        months
            .iter()
            .map(|m| (m.month.clone(), m.bytes, m.files, m.discs_closed))
            .collect()
    };
    let (Some(first), Some(last)) = (
        months.first().and_then(|m| parse(&m.month)),
        months.last().and_then(|m| parse(&m.month)),
    ) else {
        return all();
    };
    let span = (last.0 - first.0) * 12 + (last.1 - first.1) + 1;
    if span <= 0 || span as usize > TIMELINE_MONTHS {
        return all();
    }
    let mut out = Vec::with_capacity(span as usize);
    let (mut y, mut mo) = first;
    for _ in 0..span {
        let label = format!("{y:04}-{mo:02}");
        match months.iter().find(|m| m.month == label) {
            Some(m) => out.push((label, m.bytes, m.files, m.discs_closed)),
            None => out.push((label, 0, 0, 0)),
        }
        mo += 1;
        if mo > 12 {
            mo = 1;
            y += 1;
        }
    }
    out
}

fn image(d: &DiscPage) -> &'static str {
    match d.image {
        ImageState::Open => "open: taking files",
        ImageState::WaitingForImage => "closed, waiting for its image",
        ImageState::InIsos => "image verified, in isos/",
        ImageState::Removed => "image verified, removed from isos/",
        ImageState::Unknown => "closed",
    }
}

fn copies(c: Option<&crate::copies::DiscCopies>) -> String {
    let Some(c) = c else { return "-".into() };
    if c.copies.is_empty() {
        return "none recorded".into();
    }
    c.copies
        .iter()
        .map(|k| {
            format!(
                "<span class=\"copy\">#{} {}{}{}</span>",
                k.copy.copy,
                k.copy
                    .location
                    .as_deref()
                    .map(esc)
                    .unwrap_or_else(|| "(no location)".into()),
                k.copy
                    .medium
                    .as_deref()
                    .map(|m| format!(", {}", esc(m)))
                    .unwrap_or_default(),
                if k.copy.lost.is_some() { " (lost)" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

fn last_check(c: Option<&crate::copies::DiscCopies>) -> String {
    let Some(c) = c else { return "-".into() };
    let best = c
        .copies
        .iter()
        .filter(|k| k.copy.lost.is_none())
        .filter_map(|k| k.last_check.as_ref())
        .max_by(|a, b| a.checked.total_cmp(&b.checked));
    match best {
        None => "never".into(),
        Some(k) if k.good && k.complete => format!("{} good", date(Some(k.checked))),
        Some(k) if k.good => format!("{} partial, good so far", date(Some(k.checked))),
        Some(k) => format!(
            "{} <b>{} damaged, {} unreadable, {} missing</b>",
            date(Some(k.checked)),
            k.result.damaged,
            k.result.unreadable,
            k.result.missing
        ),
    }
}

fn discs(h: &mut String, s: &SetPage) {
    h.push_str("<h3>Discs</h3><table class=\"discs\"><thead><tr><th class=\"n\">Disc</th><th>Started</th><th>Closed</th><th class=\"n\">Files</th><th class=\"n\">Size</th><th>Image</th><th>Copies</th><th>Last check</th><th>Holds</th></tr></thead><tbody>\n");
    for d in &s.discs {
        let c = &d.contents;
        let _ = write!(
            h,
            "<tr class=\"disc{}\" data-disc=\"{}\" data-files=\"{}\" data-bytes=\"{}\" data-lost=\"{}\"><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"state\">{}{}</td><td>{}</td><td>{}</td><td>",
            if d.lost { " lost" } else { "" },
            d.id,
            c.files,
            c.bytes,
            d.lost,
            d.id,
            date(d.started),
            date(d.completed),
            c.files,
            esc(&output::bytes(c.bytes)),
            if d.lost { "LOST; " } else { "" },
            image(d),
            copies(d.copies.as_ref()),
            last_check(d.copies.as_ref())
        );
        let folder = |f: &crate::catalog::contents::Folder| {
            format!(
                "<li><span class=\"name\">{}</span> <small>{}, {}</small></li>",
                if f.name.is_empty() {
                    "(top level)".to_string()
                } else {
                    name(&f.name)
                },
                output::count(f.files, "file", "files"),
                esc(&output::bytes(f.bytes))
            )
        };
        h.push_str("<ul class=\"folders\">");
        for f in c.folders.iter().take(TOP_FOLDERS) {
            h.push_str(&folder(f));
        }
        h.push_str("</ul>");
        if c.folders.len() > TOP_FOLDERS {
            let _ = write!(
                h,
                "<details><summary>{} more folders</summary><ul>",
                c.folders.len() - TOP_FOLDERS
            );
            for f in &c.folders[TOP_FOLDERS..] {
                h.push_str(&folder(f));
            }
            h.push_str("</ul></details>");
        }
        h.push_str("</td></tr>\n");
    }
    h.push_str("</tbody></table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            esc("<script>\"a\"&'b'\n</script>"),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;\\n&lt;/script&gt;"
        );
    }

    #[test]
    fn schedules_read_as_words() {
        assert_eq!(in_words("12m"), "12 months");
        assert_eq!(in_words("1y"), "1 year");
        assert_eq!(in_words("90d"), "90 days");
        assert_eq!(in_words("odd"), "odd");
    }

    #[test]
    fn far_apart_months_are_not_filled() {
        let m = |s: &str| crate::catalog::contents::Month {
            month: s.into(),
            files: 1,
            bytes: 1,
            discs_closed: 0,
        };
        assert_eq!(fill_months(&[m("2020-11"), m("2021-02")]).len(), 4);
        assert_eq!(fill_months(&[m("1970-01"), m("9999-12")]).len(), 2);
    }
}
