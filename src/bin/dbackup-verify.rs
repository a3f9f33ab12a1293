//! dbackup-verify: check discs for damage, and the live folder for silent
//! corruption.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use clap::Parser;
use dbackup::cli::VerifyArgs;
use dbackup::verify::{self, Problem, VerifyOptions, VerifyReport};
use dbackup::{exit, names, output, progress::Progress};

fn main() {
    exit::main_wrapper("dbackup-verify", run)
}

fn run() -> Result<i32> {
    let args = VerifyArgs::parse();
    let opts = VerifyOptions::from_args(&args)?;
    let progress = Progress::bar(!args.common.no_progress && !args.json);
    // Problems are lines for people and cron mails: names escaped always,
    // and a stderr that cannot be written to stops nothing.
    let report = verify::verify(&opts, &progress, &mut |scope, p| {
        let line = format!("dbackup-verify: {scope}: {}", describe(p, true));
        progress.suspend(|| {
            dbackup::say!("{line}");
        });
    })?;
    progress.finish();
    let code = if report.clean() {
        exit::OK
    } else {
        exit::FINDING
    };
    let printed = print(&args, &report);
    printed?;
    Ok(code)
}

/// The summary on stdout.
fn print(args: &VerifyArgs, report: &VerifyReport) -> std::io::Result<()> {
    let mut out = dbackup::output::stdout();
    if args.json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
    } else {
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
        }
    }
    Ok(())
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
