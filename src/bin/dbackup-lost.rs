//! dbackup-lost: what a lost disc cost, and protect again what still can be.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use clap::Parser;
use dbackup::cli::LostArgs;
use dbackup::lost::{self, Entry, LostOptions, LostReport, Source};
use dbackup::{exit, names, output, progress::Progress};

fn main() {
    exit::main_wrapper("dbackup-lost", run)
}

fn run() -> Result<i32> {
    let args = LostArgs::parse();
    if args.rebuild {
        return rebuild(&args);
    }
    let source = match &args.manifest {
        Some(m) => Source::Manifest(m.clone()),
        None => Source::Workdir(match &args.workdir {
            Some(w) => w.clone(),
            None => std::env::current_dir()?,
        }),
    };
    let progress = Progress::bar(!args.common.no_progress && !args.json);
    progress.message("checking the origin");
    let report = lost::lost(
        &LostOptions {
            source,
            discs: args.discs.clone(),
            origin: args.origin.clone(),
            what_if: args.what_if,
            restage: args.restage,
            found: args.found,
            copy: args.copy,
        },
        &progress,
    )?;
    progress.finish();
    let code = if report.found
        || (report.unrecoverable.is_empty() && report.restage_problems.is_empty())
    {
        exit::OK
    } else {
        exit::FINDING
    };
    let printed = print(&args, &report);
    printed?;
    Ok(code)
}

/// The problems on stderr (a failure to write them is ignored), then the
/// report on stdout. Names and notes are shown with control characters
/// escaped, on a terminal and in a pipe alike (cron mails a pipe);
/// `--json` has them exact.
fn print(args: &LostArgs, report: &LostReport) -> std::io::Result<()> {
    let mut err = dbackup::output::stderr();
    if !report.found {
        for p in &report.restage_problems {
            let _ = writeln!(
                err,
                "dbackup-lost: not staged again: {}",
                names::display(p.as_bytes(), true)
            );
        }
        if report.invalid_rows > 0 {
            let _ = writeln!(
                err,
                "dbackup-lost: warning: {} malformed manifest rows were left out",
                report.invalid_rows
            );
        }
    }
    let mut out = dbackup::output::stdout();
    let discs = report
        .discs
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(h) = &report.still_held {
        if args.json {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "Disc {} copy {} {}; disc {} is still held: {}. Nothing is lost.",
                h.disc,
                h.copy,
                if report.marked {
                    "marked lost"
                } else {
                    "would be marked lost (nothing marked)"
                },
                h.disc,
                lost::where_held(&h.held)
            )?;
        }
        return Ok(());
    }
    if report.found {
        if args.json {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        } else {
            writeln!(out, "Disc(s) {discs} marked available again.")?;
        }
        return Ok(());
    }
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        let terminal = std::io::stdout().is_terminal();
        let t = &report.totals;
        if report.marked {
            writeln!(out, "Disc(s) {discs} marked lost.")?;
        } else {
            writeln!(
                out,
                "What losing disc(s) {discs} would cost (nothing marked):"
            )?;
        }
        let mut summary = output::Rows::new(&["category", "files", "bytes", "meaning"]);
        for (name, c, meaning) in [
            (
                "unrecoverable",
                t.unrecoverable,
                "gone for good: no copy anywhere",
            ),
            (
                "recoverable from parity",
                t.recoverable_from_parity,
                "its disc can be rebuilt from its group's other discs and parity disc",
            ),
            ("renamed, safe", t.renamed, "the same content is elsewhere"),
            (
                "re-protectable",
                t.reprotectable,
                "the origin still holds it; --restage stages it again",
            ),
            (
                "history only",
                t.history_only,
                "an older version; a newer one exists",
            ),
            (
                "damaged",
                t.damaged,
                "recorded damaged before it reached the disc: no backup",
            ),
        ] {
            summary.push(vec![
                name.into(),
                c.files.to_string(),
                if terminal {
                    output::bytes(c.bytes)
                } else {
                    c.bytes.to_string()
                },
                meaning.into(),
            ]);
        }
        summary.write(&mut out, terminal)?;
        let list = |out: &mut dyn Write, title: &str, entries: &[Entry]| -> std::io::Result<()> {
            if entries.is_empty() {
                return Ok(());
            }
            writeln!(out, "\n{title}:")?;
            let mut rows = output::Rows::new(&["path", "id", "disc", "size", "md5", "note"]);
            for e in entries {
                rows.push(vec![
                    names::display(&e.filename, true),
                    e.id.to_string(),
                    output::discs(&e.discs),
                    e.size.to_string(),
                    e.md5.clone(),
                    names::display(e.note.as_deref().unwrap_or_default().as_bytes(), true),
                ]);
            }
            rows.write(out, terminal)
        };
        list(&mut out, "Unrecoverable", &report.unrecoverable)?;
        list(
            &mut out,
            "Recoverable from parity",
            &report.recoverable_from_parity,
        )?;
        list(&mut out, "Renamed or moved, safe", &report.renamed)?;
        list(&mut out, "Re-protectable", &report.reprotectable)?;
        list(&mut out, "History only", &report.history_only)?;
        list(
            &mut out,
            "Recorded damaged (no backup, never on the disc)",
            &report.damaged,
        )?;
        list(
            &mut out,
            if report.marked {
                "Unfinished split files abandoned (no backup yet; the next monitor takes them again)"
            } else {
                "Unfinished split files that would be abandoned (no backup yet)"
            },
            &report.unfinished,
        )?;
        if args.restage {
            writeln!(
                out,
                "\nStaged again: {} ({}); they will be on a disc after its image is made.",
                output::count(report.restaged, "file", "files"),
                output::bytes(report.restaged_bytes)
            )?;
        }
    }
    Ok(())
}

/// `--rebuild`: one lost data disc's image written again from its group's
/// survivors and parity discs.
fn rebuild(args: &LostArgs) -> Result<i32> {
    let [disc] = args.discs[..] else {
        anyhow::bail!("--rebuild rebuilds one disc at a time; name one DISC");
    };
    let Some(to) = &args.to else {
        anyhow::bail!("--rebuild needs --to FILE");
    };
    // Ctrl-C stops between steps, and the work folder is removed.
    dbackup::interrupt::install("dbackup-lost");
    let progress = Progress::bar(!args.common.no_progress && !args.json);
    progress.message(format!("rebuilding disc {disc} with par2"));
    let (set, unusable) = dbackup::medium::DiscSet::open_lenient(&args.disc)?;
    for u in &unusable {
        dbackup::say!(
            "dbackup-lost: warning: {} left out: {}",
            u.source.display(),
            u.error
        );
    }
    let rebuilt = dbackup::parity::rebuild::rebuild_to(&set, disc, to);
    progress.finish();
    let rebuilt = match rebuilt {
        Err(dbackup::parity::rebuild::RebuildError::Interrupted) => {
            dbackup::say!("dbackup-lost: interrupted; nothing was written");
            return Ok(exit::INTERRUPTED);
        }
        r => r?,
    };
    let mut out = dbackup::output::stdout();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &rebuilt)?;
        writeln!(out)?;
    } else if !args.common.quiet {
        writeln!(
            out,
            "Disc {} rebuilt: {} ({}, MD5 {}, read back and checked), from discs {} and parity disc {}. Burn it with: xorriso -as cdrecord -v dev=/dev/sr0 -dao {}",
            rebuilt.disc,
            rebuilt.path.display(),
            output::bytes(rebuilt.size),
            rebuilt.md5,
            output::discs(&rebuilt.from_discs),
            rebuilt
                .from_parity
                .iter()
                .map(|j| format!("{}-{j}", rebuilt.group))
                .collect::<Vec<_>>()
                .join(", "),
            dbackup::mkiso::shell_quoted(&rebuilt.path)
        )?;
    }
    Ok(exit::OK)
}
