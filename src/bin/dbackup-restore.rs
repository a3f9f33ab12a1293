//! dbackup-restore: restore files as they were, from discs or images.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use clap::Parser;
use dbackup::cli::RestoreArgs;
use dbackup::restore::{
    self, DamagedFile, DiscState, Event, Plan, Report, RestoreOptions, TerminalPrompt,
};
use dbackup::{exit, names, output, progress::Progress};

fn main() {
    exit::main_wrapper("dbackup-restore", run)
}

fn run() -> Result<i32> {
    let args = RestoreArgs::parse();
    let opts = RestoreOptions::from_args(&args, std::io::stdin().is_terminal())?;
    if !args.dry_run {
        // Ctrl-C stops between files, leaving no temp file in the target.
        dbackup::interrupt::install("dbackup-restore");
    }
    let tty = std::io::stdout().is_terminal();
    let quiet = args.common.quiet;
    let progress = Progress::bar(!args.common.no_progress && !args.dry_run && !args.json);
    let mut out = dbackup::output::stdout();
    let report = restore::restore(&opts, &mut TerminalPrompt, &progress, &mut |ev| match ev {
        Event::Planned(plan) => {
            for d in &plan.duplicates {
                dbackup::say!(
                    "dbackup-restore: {} is a disc given twice; left out",
                    d.display()
                );
            }
            if plan.invalid_rows > 0 {
                dbackup::say!(
                    "dbackup-restore: {} manifest rows could not be used and were left out",
                    plan.invalid_rows
                );
            }
            if plan.entries.invalid_rows > 0 {
                dbackup::say!(
                    "dbackup-restore: {} rows of folders and links could not be used and were left out",
                    plan.entries.invalid_rows
                );
            }
            for why in &plan.entries.unusable {
                dbackup::say!(
                    "dbackup-restore: the manifest's {why}: folders, links, modes and owners not read from it"
                );
            }
            if plan.entries.conflicts > 0 {
                dbackup::say!(
                    "dbackup-restore: {} names are held by a file and a folder or link at once; the more recent was taken",
                    plan.entries.conflicts
                );
            }
            for u in &plan.unusable {
                dbackup::say!(
                    "dbackup-restore: {}: unusable, left out like a disc not given: {}",
                    u.source.display(),
                    u.reason
                );
            }
            for r in &plan.refused {
                dbackup::say!(
                    "dbackup-restore: {}: {}",
                    names::display(&r.raw_name, true),
                    r.reason
                );
            }
            for d in &plan.damaged {
                dbackup::say!(
                    "dbackup-restore: {}: {}",
                    names::display(&d.raw_name, true),
                    damaged_text(d)
                );
            }
            if !args.json && (args.dry_run || !quiet) {
                let text = plan_text(plan, tty);
                let _ = progress.suspend(|| out.write_all(text.as_bytes()));
            }
        }
        Event::Rebuilt(r) => {
            if !quiet && !args.json {
                dbackup::say!(
                    "dbackup-restore: disc {} rebuilt from parity (discs {}, parity disc {}): {} bytes, MD5 {} as recorded",
                    r.disc,
                    output::discs(&r.from_discs),
                    r.from_parity
                        .iter()
                        .map(|j| format!("{}-{j}", r.group))
                        .collect::<Vec<_>>()
                        .join(", "),
                    r.size,
                    r.md5
                );
            }
        }
        Event::DiscStarted {
            disc,
            files,
            parts,
            bytes,
        } => {
            if !quiet && !args.json {
                let parts = match parts {
                    0 => String::new(),
                    n => format!(
                        " and {}",
                        output::count(n, "part of a split file", "parts of split files")
                    ),
                };
                progress.println(&format!(
                    "dbackup-restore: reading disc {disc}: {}{parts}, {}",
                    output::count(files, "file", "files"),
                    output::bytes(bytes)
                ));
            }
        }
        Event::LinkCopied { name, why } => progress.println(&format!(
            "dbackup-restore: {}: {why}",
            names::display(name, true)
        )),
        Event::Failed(f) => progress.println(&format!(
            "dbackup-restore: {}: {}",
            names::display(&f.raw_name, true),
            f.reason
        )),
    })?;
    progress.finish();
    // The exit code comes from the report: stdout is a sink whose failure
    // stops the printing, never changes what the run did or says.
    if args.json {
        let _ = serde_json::to_writer_pretty(&mut out, &report);
        let _ = writeln!(out);
    } else if !report.dry_run {
        let _ = out.write_all(summary_text(&report, tty).as_bytes());
    }
    if report.nothing_matched() && !quiet && !args.json {
        dbackup::say!("dbackup-restore: nothing matched");
    }
    let t = &report.tree;
    if t.invalid_attrs > 0 {
        dbackup::say!(
            "dbackup-restore: {} with recorded modes or times that could not be used: given their recorded mtime and default modes",
            output::count(t.invalid_attrs, "file", "files")
        );
    }
    if t.owners_refused + t.modes_refused > 0 {
        dbackup::say!(
            "dbackup-restore: the target's filesystem refused {} owners and {} modes; those files, folders and links are restored without them",
            t.owners_refused,
            t.modes_refused
        );
    }
    if let Some(s) = &report.stopped {
        dbackup::say!("dbackup-restore: stopped: {}", s.reason);
    }
    if !report.dry_run && report.failed_files() > 0 && !args.json {
        let by_kind = report.failures_by_kind();
        let what: Vec<String> = by_kind
            .iter()
            .map(|(k, t)| format!("{} {}", t.files, k.label()))
            .collect();
        dbackup::say!(
            "dbackup-restore: {} not restored ({})",
            output::count(report.failed_files() as u64, "file", "files"),
            what.join(", ")
        );
    }
    Ok(report.exit_code())
}

fn bytes(n: u64, tty: bool) -> String {
    if tty {
        output::bytes(n)
    } else {
        n.to_string()
    }
}

fn plan_text(plan: &Plan, tty: bool) -> String {
    let mut s = String::new();
    let when = match plan.as_of {
        Some(t) => format!("as of {}", output::time(t)),
        None => "as last backed up".into(),
    };
    let set = match (&plan.set.name, &plan.set.uuid) {
        (Some(n), _) => format!("set \"{n}\""),
        (None, Some(u)) => format!("set {u}"),
        (None, None) => "an original dBackup set".into(),
    };
    s.push_str(&format!(
        "Restore plan: {}, {} from {set}, {when}, to {}\n",
        output::count(plan.files, "file", "files"),
        output::bytes(plan.bytes),
        plan.target.display()
    ));
    let e = &plan.entries;
    if e.count() > 0 {
        s.push_str(&format!(
            "And {}, {}, {}.\n",
            output::count(e.dirs, "folder", "folders"),
            output::count(e.symlinks, "symbolic link", "symbolic links"),
            output::count(e.hardlinks, "hard link", "hard links")
        ));
    }
    if !e.hardlink_copies.is_empty() {
        s.push_str(&format!(
            "{} to files not chosen: restored as copies (counted among the files).\n",
            output::count(e.hardlink_copies.len() as u64, "hard link", "hard links")
        ));
    }
    if plan.deleted_left_out > 0 {
        s.push_str(&format!(
            "{} recorded deleted by then left out.\n",
            output::count(plan.deleted_left_out, "file", "files")
        ));
    }
    if e.deleted_left_out > 0 {
        s.push_str(&format!(
            "{} recorded deleted by then left out.\n",
            output::count(e.deleted_left_out, "folder or link", "folders and links")
        ));
    }
    let with_parts = !plan.split.is_empty();
    let rows: Vec<Vec<String>> = plan
        .discs
        .iter()
        .map(|d| {
            let state = match d.state {
                DiscState::Given if d.marked_lost => "given (marked lost)".to_string(),
                DiscState::Given => "given".to_string(),
                DiscState::Drive => "to insert in the drive".to_string(),
                DiscState::Missing => "missing: not given".to_string(),
                DiscState::Lost => "lost: marked lost".to_string(),
                DiscState::Parity => format!(
                    "{}: rebuilt from {}",
                    if d.marked_lost {
                        "marked lost"
                    } else {
                        "not given"
                    },
                    d.rebuilt_from.as_deref().unwrap_or("parity")
                ),
            };
            let state = if d.needed {
                state
            } else {
                format!("{state}; not read (only parts of files that cannot be restored)")
            };
            let mut row = vec![d.disc.to_string(), d.files.to_string()];
            if with_parts {
                row.push(d.parts.to_string());
            }
            row.extend([
                bytes(d.bytes, tty),
                state,
                d.source
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ]);
            row
        })
        .collect();
    if with_parts {
        s.push_str(&output::render(
            &["disc", "files", "parts", "bytes", "state", "source"],
            &rows,
            &[0, 1, 2, 3],
            tty,
        ));
    } else {
        s.push_str(&output::render(
            &["disc", "files", "bytes", "state", "source"],
            &rows,
            &[0, 1, 2],
            tty,
        ));
    }
    if with_parts {
        s.push_str(&format!(
            "{} in parts across discs (counted once among the files, each part in its disc's bytes):\n",
            output::count(plan.split.len() as u64, "file is stored", "files are stored")
        ));
        for f in &plan.split {
            let discs: Vec<String> = f.discs.iter().map(|d| d.to_string()).collect();
            let done = match f.parts_done {
                0 => String::new(),
                n => format!(", {n} already checked by an earlier run"),
            };
            let needs = if f.restorable() {
                String::new()
            } else {
                let n: Vec<String> = f.needs.iter().map(|d| d.to_string()).collect();
                format!("; cannot be restored without disc(s) {}", n.join(", "))
            };
            // Escaped even when piped: one name per line, whatever it holds.
            s.push_str(&format!(
                "  {}: {} parts on discs {}{done}{needs}\n",
                names::display(&f.raw_name, true),
                f.parts,
                discs.join(", ")
            ));
        }
    }
    for m in &plan.missing {
        s.push_str(&format!(
            "Disc {} is needed but not given: {}, {} cannot be restored without it.\n",
            m.disc,
            output::count(m.files, "file", "files"),
            output::bytes(m.bytes)
        ));
    }
    for l in &plan.lost {
        s.push_str(&format!(
            "Disc {} is marked lost: it costs {}, {}:\n",
            l.disc,
            output::count(l.files, "file", "files"),
            output::bytes(l.bytes)
        ));
        for f in &l.costs {
            let older = match &f.older_version {
                Some(o) => format!(
                    " (an older version from {} is on disc {}: --as-of)",
                    output::time(o.recorded),
                    o.disc
                ),
                None => String::new(),
            };
            // Escaped even when piped: one name per line, whatever it holds.
            s.push_str(&format!("  {}{older}\n", names::display(&f.raw_name, true)));
        }
    }
    if !plan.damaged.is_empty() {
        s.push_str(&format!(
            "{} with a newest version recorded damaged (no backup):\n",
            output::count(plan.damaged.len() as u64, "file", "files")
        ));
        for d in &plan.damaged {
            s.push_str(&format!(
                "  {}: {}\n",
                names::display(&d.raw_name, true),
                damaged_text(d)
            ));
        }
    }
    if !plan.refused.is_empty() {
        s.push_str(&format!(
            "{} names are refused: they could lead outside the target.\n",
            plan.refused.len()
        ));
    }
    if plan.drive.is_some()
        && plan
            .discs
            .iter()
            .any(|d| d.state == DiscState::Drive && d.needed)
    {
        let wanted: Vec<String> = plan
            .discs
            .iter()
            .filter(|d| d.state == DiscState::Drive && d.needed)
            .map(|d| d.disc.to_string())
            .collect();
        s.push_str(&format!(
            "Discs to insert in the drive, in this order: {}\n",
            wanted.join(", ")
        ));
    }
    s
}

/// What happened to a file whose newest version was recorded damaged.
fn damaged_text(d: &DamagedFile) -> String {
    let then = match &d.older_version {
        Some(o) => format!(
            "restoring the older version of {} from disc {}",
            output::time(o.recorded),
            o.disc
        ),
        None => "no older version: not restored".into(),
    };
    format!(
        "the version of {} on disc {} was recorded damaged before it reached a disc (no backup); {then}",
        output::time(d.recorded),
        d.disc
    )
}

fn summary_text(report: &Report, tty: bool) -> String {
    let mut rows = vec![
        vec![
            "restored".to_string(),
            report.restored.files.to_string(),
            bytes(report.restored.bytes, tty),
        ],
        vec![
            "already there".to_string(),
            report.skipped_existing.files.to_string(),
            bytes(report.skipped_existing.bytes, tty),
        ],
    ];
    let t = &report.tree;
    for (what, n) in [
        ("folders", t.dirs),
        ("symbolic links", t.symlinks),
        ("hard links", t.hardlinks),
        ("hard links as copies", t.hardlinks_copied.len() as u64),
        ("links already there", t.already_there),
    ] {
        if n > 0 {
            rows.push(vec![
                format!("restored: {what}"),
                n.to_string(),
                String::new(),
            ]);
        }
    }
    for (kind, t) in report.failures_by_kind() {
        rows.push(vec![
            format!("not restored: {}", kind.label()),
            t.files.to_string(),
            bytes(t.bytes, tty),
        ]);
    }
    output::render(&["outcome", "files", "bytes"], &rows, &[1, 2], tty)
}
