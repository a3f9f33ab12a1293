//! dbackup-find: where is my file?

use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;

use anyhow::Result;
use clap::Parser;
use dbackup::cli::FindArgs;
use dbackup::find::{self, Availability, FindOptions, FindReport, Found};
use dbackup::{exit, names, output};

fn main() {
    exit::main_wrapper("dbackup-find", run)
}

fn run() -> Result<i32> {
    let args = FindArgs::parse();
    let report = find::find(&FindOptions {
        discs: args.discs.discs.clone(),
        patterns: args.select.patterns.clone(),
        ignore_case: args.select.ignore_case,
        all_versions: args.all_versions,
        as_of: args.select.as_of,
        deleted: args.deleted,
    })?;
    let code = if report.found.is_empty() {
        exit::FINDING
    } else {
        exit::OK
    };
    let printed = print(&args, &report);
    printed?;
    Ok(code)
}

/// Messages on stderr (a failure to write them is ignored) and the rows
/// on stdout. Names are shown with control characters escaped, on a
/// terminal and in a pipe alike (cron mails a pipe); `--json` has them
/// exact.
fn print(args: &FindArgs, report: &FindReport) -> std::io::Result<()> {
    let mut err = dbackup::output::stderr();
    if !args.common.quiet {
        for d in &report.duplicates {
            let _ = writeln!(
                err,
                "dbackup-find: {} is a disc given twice; left out",
                names::display(d.as_os_str().as_bytes(), true)
            );
        }
        for (id, disc, name) in &report.damaged {
            dbackup::say!(
                "dbackup-find: {} (file {id}, disc {disc}) is recorded damaged: that version is no backup and on no disc",
                dbackup::names::display(name, true)
            );
        }
        if report.invalid_rows > 0 {
            let _ = writeln!(
                err,
                "dbackup-find: warning: {} malformed rows in the manifest of disc {} were left out",
                report.invalid_rows, report.history_disc
            );
        }
    }
    if report.found.is_empty() && !args.common.quiet && !args.json {
        let _ = writeln!(err, "dbackup-find: nothing matched");
    }
    let mut out = dbackup::output::stdout();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report.found)?;
        writeln!(out)?;
        return Ok(());
    }
    let terminal = std::io::stdout().is_terminal();
    let time = |t: f64| output::time(t);
    let mut rows = if args.all_versions {
        output::Rows::new(&[
            "path",
            "id",
            "backed up",
            "size",
            "disc",
            "disc is",
            "md5",
            "why",
        ])
    } else if args.deleted {
        output::Rows::new(&[
            "path",
            "deleted",
            "versions",
            "last backup",
            "size",
            "disc",
            "disc is",
        ])
    } else {
        output::Rows::new(&["path", "versions", "last backup", "size", "disc", "disc is"])
    };
    for f in &report.found {
        let name = names::display(&f.filename, true);
        let size = if terminal {
            output::bytes(f.size)
        } else {
            f.size.to_string()
        };
        let row = if args.all_versions {
            vec![
                name,
                f.id.to_string(),
                time(f.timestamp),
                size,
                output::discs(&f.discs),
                availability(f),
                f.md5.clone(),
                names::display(f.desc.as_bytes(), true),
            ]
        } else if args.deleted {
            vec![
                name,
                f.deleted.map(time).unwrap_or_default(),
                f.versions.to_string(),
                time(f.timestamp),
                size,
                output::discs(&f.discs),
                availability(f),
            ]
        } else {
            vec![
                name,
                f.versions.to_string(),
                time(f.timestamp),
                size,
                output::discs(&f.discs),
                availability(f),
            ]
        };
        rows.push(row);
    }
    if !rows.is_empty() {
        rows.write(&mut out, terminal)?;
    }
    Ok(())
}

/// The "disc is" cell: for a whole file, where its disc is; for a split
/// file, which of its discs are lost or not given (`lost: 4; not given: 6`),
/// since every one is needed.
fn availability(f: &Found) -> String {
    if f.parts.is_empty() || f.availability == Availability::Given {
        return f.availability.as_str().into();
    }
    let mut said = Vec::new();
    for kind in [
        Availability::Lost,
        Availability::NotGiven,
        Availability::Parity,
    ] {
        let mut discs: Vec<i64> = f
            .parts
            .iter()
            .filter(|p| p.availability == kind)
            .map(|p| p.disc)
            .collect();
        discs.dedup();
        if !discs.is_empty() {
            said.push(format!("{}: {}", kind.as_str(), output::discs(&discs)));
        }
    }
    said.join("; ")
}
