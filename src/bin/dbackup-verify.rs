//! dbackup-verify: check discs for damage, and the live folder for silent
//! corruption.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};

use anyhow::Result;
use clap::Parser;
use dbackup::cli::VerifyArgs;
use std::time::Instant;

use dbackup::verify::record::{self, Recorder};
use dbackup::verify::{self, Problem, VerifyOptions, VerifyReport};
use dbackup::{exit, names, output, progress::Progress};

fn main() {
    exit::main_wrapper("dbackup-verify", run)
}

fn run() -> Result<i32> {
    let args = VerifyArgs::parse();
    if args.due {
        return due(&args);
    }
    let mut opts = VerifyOptions::from_args(&args)?;
    // Asked for the plan once the discs are open, then told of each disc:
    // one recorder, lent to each in turn.
    let recorder = RefCell::new(match &args.record {
        Some(w) => Some(Recorder::open(w, args.copy)?),
        None => None,
    });
    let time_limited = args.time_limit.is_some();
    opts.deadline = args.time_limit.map(|d| Instant::now() + d);
    let started = dbackup::copies::now();
    let progress = Progress::bar(!args.common.no_progress && !args.json);
    // Problems are lines for people and cron mails: names escaped always,
    // and a stderr that cannot be written to stops nothing.
    let report = verify::verify_each(
        &opts,
        &progress,
        &mut |media| match recorder.borrow_mut().as_mut() {
            Some(rec) => rec.plan(media, time_limited),
            None => Ok(verify::Plan::default()),
        },
        &mut |scope, p| {
            let line = format!("dbackup-verify: {scope}: {}", describe(p, true));
            progress.suspend(|| {
                dbackup::say!("{line}");
            });
        },
        &mut |r| {
            if let Some(rec) = recorder.borrow_mut().as_mut() {
                rec.record(r, started)
                    .map_err(|e| verify::VerifyError::Record(e.to_string()))?;
            }
            Ok(())
        },
    )?;
    progress.finish();
    let code = if report.clean() {
        exit::OK
    } else {
        exit::FINDING
    };
    let recorded = recorder
        .into_inner()
        .map(|r| r.recorded)
        .unwrap_or_default();
    let printed = print(&args, &report, &recorded);
    printed?;
    Ok(code)
}

/// `--due`: the copies due for a check, most overdue first; nothing at
/// all off a terminal when none is (cron mails any output).
fn due(args: &VerifyArgs) -> Result<i32> {
    let root = args.workdir.clone().unwrap_or_default();
    let now = dbackup::copies::now();
    let (list, every) = record::due(&root, now)?;
    let mut out = dbackup::output::stdout();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
    } else if list.is_empty() {
        if std::io::stdout().is_terminal() {
            writeln!(
                out,
                "No copy is due: each was checked good within {}.",
                dbackup::copies::show_every(every)
            )?;
        }
    } else {
        let day = |t: f64| output::time(t).chars().take(10).collect::<String>();
        let mut rows = output::Rows::new(&[
            "disc",
            "copy",
            "location",
            "medium",
            "last good check",
            "due since",
        ]);
        for d in &list {
            rows.push(vec![
                d.disc.clone(),
                d.copy.to_string(),
                names::display(d.location.as_deref().unwrap_or("").as_bytes(), true),
                d.medium.clone().unwrap_or_default(),
                match (d.damaged, d.last_good_check) {
                    (true, Some(t)) => format!("{} (damaged since)", day(t)),
                    (true, None) => "never (damaged)".into(),
                    (false, Some(t)) => day(t),
                    (false, None) => "never".into(),
                },
                day(d.due),
            ]);
        }
        rows.write(&mut out, std::io::stdout().is_terminal())?;
        writeln!(
            out,
            "{} due (checked every {}): verify each with dbackup-verify -d DISC --record {} --copy COPY",
            output::count(list.len() as u64, "copy", "copies"),
            dbackup::copies::show_every(every),
            root.display()
        )?;
    }
    Ok(if list.is_empty() {
        exit::OK
    } else {
        exit::FINDING
    })
}

/// The summary on stdout.
fn print(
    args: &VerifyArgs,
    report: &VerifyReport,
    recorded: &[record::Recorded],
) -> std::io::Result<()> {
    let mut out = dbackup::output::stdout();
    if args.json {
        let mut value = serde_json::to_value(report)?;
        if args.record.is_some() {
            if let Some(map) = value.as_object_mut() {
                map.insert("recorded".into(), serde_json::to_value(recorded)?);
            }
        }
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
        return Ok(());
    }
    let tty = std::io::stdout().is_terminal();
    let (header, rows) = summary(report, tty);
    if tty {
        writeln!(
            out,
            "{}",
            output::table(&header, &rows, &[2, 3, 4, 5, 6, 7, 8, 10, 11])
        )?;
    } else {
        write!(out, "{}", output::tsv(&header, &rows))?;
    }
    for d in &report.discs {
        if let (Some(p), Some(verdict)) = (&d.parity, &d.par2) {
            writeln!(out, "parity disc {p}: {verdict}")?;
        }
        if d.resumed_from > 0 {
            writeln!(
                out,
                "{}: went on after the {} files an earlier run checked",
                label(d),
                d.resumed_from
            )?;
        }
        if let Some(at) = d.stopped_at {
            writeln!(
                out,
                "{}: time limit reached after {at} of {} files; the next run with --record goes on from there",
                label(d),
                d.to_read
            )?;
        }
    }
    if !report.not_begun.is_empty() {
        writeln!(
            out,
            "time limit reached: not begun: {}; the next run with --record takes them before the discs checked since{}",
            report.not_begun.join(", "),
            if report.discs.iter().any(|d| d.stopped_at.is_some()) {
                ", after it finishes the disc it stopped on"
            } else {
                ""
            }
        )?;
    }
    for r in recorded {
        let copy = r.copy.map(|c| format!(" copy {c}")).unwrap_or_default();
        let what = if !r.complete {
            "recorded, unfinished".to_string()
        } else if r.good {
            "recorded good".to_string()
        } else {
            format!(
                "recorded DAMAGED ({} damaged, {} unreadable, {} missing)",
                r.result.damaged, r.result.unreadable, r.result.missing
            )
        };
        let name = match r.disc.strip_prefix("parity-") {
            Some(p) => format!("parity disc {p}"),
            None => format!("disc {}", r.disc),
        };
        let note = r
            .note
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        writeln!(out, "{name}{copy}: {what}{note}")?;
        for m in &r.remedies {
            writeln!(out, "  what can save it: {m}")?;
        }
    }
    if args.record.is_none() {
        for d in report.discs.iter().filter(|d| !d.clean()) {
            writeln!(
                out,
                "{}: what can save it: another copy of it; its dvdisaster data, if its image was made with it (dvdisaster -f); its parity group, if the set has parity (dbackup-lost --rebuild). With --record WORKDIR the workdir says which of these there are",
                label(d)
            )?;
        }
    }
    Ok(())
}

fn label(d: &dbackup::verify::DiscReport) -> String {
    match &d.parity {
        Some(p) => format!("parity disc {p}"),
        None => format!("disc {}", d.disc),
    }
}

/// One problem as a line: `files/0/3 (/2012/a.jpg): damaged: MD5 … instead of …`.
fn describe(p: &Problem, escape: bool) -> String {
    let show = |s: &str| names::display(s.as_bytes(), escape);
    let what = match &p.filename {
        Some(name) if *name != p.path && !p.path.ends_with(name.as_str()) => {
            format!("{} ({})", show(&p.path), show(name))
        }
        _ => show(&p.path),
    };
    format!("{what}: {}: {}", p.problem.describe(), show(&p.detail))
}

/// A disc's parts of split files: `ok/checked`, and how many are of a
/// version that is no backup; `-` with none.
fn parts(d: &dbackup::verify::DiscReport) -> String {
    if d.parts.is_empty() {
        return "-".into();
    }
    let ok = d.parts.iter().filter(|p| p.ok).count();
    let mut cell = format!("{ok}/{} ok", d.parts.len());
    if d.not_a_backup > 0 {
        cell.push_str(&format!(", {} no backup", d.not_a_backup));
    }
    cell
}

/// The summary: one row per disc, and one for the origin. On a terminal,
/// sizes for people; otherwise plain numbers for scripts.
fn summary(report: &VerifyReport, tty: bool) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "disc",
        "source",
        "files",
        "ok",
        "damaged",
        "missing",
        "unreadable",
        "unknown",
        "changed",
        "manifest",
        "bytes",
        "MB/s",
        "parts",
    ];
    let bytes = |n: u64| {
        if tty {
            output::bytes(n)
        } else {
            n.to_string()
        }
    };
    let sound = |ok: bool| if ok { "ok" } else { "damaged" }.to_string();
    let mut rows = Vec::new();
    for u in &report.unusable {
        let mut row = vec!["?".to_string(), names::display(u.source.as_bytes(), true)];
        row.extend(std::iter::repeat_n("-".to_string(), 7));
        row.extend(["unusable".to_string(), "-".into(), "-".into(), "-".into()]);
        rows.push(row);
    }
    for d in &report.discs {
        rows.push(vec![
            match &d.parity {
                Some(p) => format!("P{p}"),
                None => d.disc.to_string(),
            },
            names::display(d.source.as_bytes(), true),
            d.files.to_string(),
            d.ok.to_string(),
            d.damaged.to_string(),
            d.missing.to_string(),
            d.unreadable.to_string(),
            d.unknown.to_string(),
            "-".into(),
            sound(d.manifest_ok),
            bytes(d.bytes),
            format!("{:.1}", d.mb_per_s()),
            parts(d),
        ]);
    }
    if let Some(o) = &report.origin {
        rows.push(vec![
            "origin".into(),
            names::display(o.path.as_bytes(), true),
            o.files.to_string(),
            o.ok.to_string(),
            o.silent_corruption.to_string(),
            o.missing.to_string(),
            o.unreadable.to_string(),
            "-".into(),
            o.changed.to_string(),
            sound(o.manifest_ok),
            bytes(o.bytes),
            format!("{:.1}", o.mb_per_s()),
            "-".into(),
        ]);
    }
    (header, rows)
}
