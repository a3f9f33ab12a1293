//! dbackup-mkiso: build, read back and verify the images of closed discs.

use std::io::Write;

use anyhow::Result;
use clap::Parser;
use dbackup::cli::MkisoArgs;
use dbackup::copies::DiscName;
use dbackup::mkiso::{self, MkisoOptions};
use dbackup::workdir::Workdir;
use dbackup::{exit, output, progress::Progress};

fn main() {
    exit::main_wrapper("dbackup-mkiso", run)
}

fn run() -> Result<i32> {
    let args = MkisoArgs::parse();
    let root = match &args.workdir {
        Some(w) => w.clone(),
        None => std::env::current_dir()?,
    };
    let (mut wd, repairs) = if args.dry_run {
        (Workdir::open_read(&root)?, Default::default())
    } else {
        Workdir::open_write(&root)?
    };
    if !repairs.is_empty() && !args.common.quiet {
        dbackup::say!(
            "dbackup-mkiso: repaired an interrupted run: {} unfinished copies removed",
            repairs.reservations
        );
    }
    let progress = Progress::bar(!args.common.no_progress && !args.json);
    let opts = MkisoOptions {
        disc: args.disc,
        keep_staged: args.keep_staged,
        ecc: args.ecc || wd.settings.ecc,
        dry_run: args.dry_run,
    };
    let mut out = dbackup::output::stdout();
    let reports = mkiso::mkiso(&mut wd, &opts, &progress, &mut |_| {})?;
    let parity = if args.dry_run {
        Default::default()
    } else {
        mkiso::build_parity(&mut wd, &progress)?
    };
    progress.finish();
    let label_all = args.label || mkiso::labels_on(&wd)?;
    let mut code = exit::OK;
    if args.json {
        serde_json::to_writer_pretty(&mut out, &reports)?;
        writeln!(out)?;
        if !parity.built.is_empty() {
            serde_json::to_writer_pretty(&mut out, &parity.built)?;
            writeln!(out)?;
        }
    }
    for r in &reports {
        if args.dry_run {
            if !args.json {
                writeln!(
                    out,
                    "Disc {} would become {} ({}, {})",
                    r.disc,
                    r.path.display(),
                    output::count(r.files, "file", "files"),
                    output::bytes(r.bytes)
                )?;
            }
            continue;
        }
        if !args.json {
            writeln!(out, "{}", mkiso::ready_line(r))?;
        }
        let (lines, damaged) = mkiso::repair_lines(r);
        for line in lines {
            dbackup::say!("dbackup-mkiso: {line}");
        }
        if damaged {
            code = exit::FINDING;
        }
        if let Some(failure) = mkiso::run_hook(&wd, r)? {
            dbackup::say!("dbackup-mkiso: {failure}");
            code = exit::FINDING;
        }
        if label_all && r.verified {
            label(&wd, &DiscName::Data(r.disc), args.json, &mut out)?;
        }
    }
    if mkiso::announce_parity(&wd, &parity, args.json, "dbackup-mkiso", &mut out)? {
        code = exit::FINDING;
    }
    if label_all {
        for p in &parity.built {
            label(&wd, &DiscName::Parity(p.group, p.j), args.json, &mut out)?;
        }
    }
    Ok(code)
}

/// Writes a disc's labels (`--label`): their paths on stdout (on stderr
/// with --json, whose stdout is the images' report), a failure on stderr
/// only, since a label never fails the image.
fn label(wd: &Workdir, disc: &DiscName, json: bool, out: &mut impl Write) -> Result<()> {
    match mkiso::write_label(wd, disc) {
        Ok(line) if json => dbackup::say!("dbackup-mkiso: {line}"),
        Ok(line) => writeln!(out, "{line}")?,
        Err(message) => dbackup::say!("dbackup-mkiso: {message}"),
    }
    Ok(())
}
