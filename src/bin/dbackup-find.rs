//! dbackup-find: where is my file?

use std::io::{IsTerminal, Write};

use anyhow::Result;
use clap::Parser;
use dbackup::cli::FindArgs;
use dbackup::find::{self, FindOptions};
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
    if !args.common.quiet {
        for d in &report.duplicates {
            eprintln!(
                "dbackup-find: {} is a disc given twice; left out",
                d.display()
            );
        }
        for (id, disc, name) in &report.damaged {
            eprintln!(
                "dbackup-find: {} (file {id}, disc {disc}) is recorded damaged: that version is no backup and on no disc",
                dbackup::names::display(name, std::io::IsTerminal::is_terminal(&std::io::stderr()))
            );
        }
        if report.invalid_rows > 0 {
            eprintln!(
                "dbackup-find: warning: {} malformed rows in the manifest of disc {} were left out",
                report.invalid_rows, report.history_disc
            );
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report.found)?;
        writeln!(out)?;
    } else {
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
            let name = names::display(&f.filename, terminal);
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
                    f.disc.to_string(),
                    f.availability.as_str().into(),
                    f.md5.clone(),
                    f.desc.clone(),
                ]
            } else if args.deleted {
                vec![
                    name,
                    f.deleted.map(time).unwrap_or_default(),
                    f.versions.to_string(),
                    time(f.timestamp),
                    size,
                    f.disc.to_string(),
                    f.availability.as_str().into(),
                ]
            } else {
                vec![
                    name,
                    f.versions.to_string(),
                    time(f.timestamp),
                    size,
                    f.disc.to_string(),
                    f.availability.as_str().into(),
                ]
            };
            rows.push(row);
        }
        if !rows.is_empty() {
            rows.write(&mut out, terminal)?;
        }
    }
    if report.found.is_empty() {
        if !args.common.quiet && !args.json {
            eprintln!("dbackup-find: nothing matched");
        }
        return Ok(exit::FINDING);
    }
    Ok(exit::OK)
}
