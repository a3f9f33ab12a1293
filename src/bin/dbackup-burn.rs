//! dbackup-burn: burn a disc's verified image, read it back, record the copy.

use std::io::Write;

use anyhow::Result;
use clap::Parser;
use dbackup::burn::{self, BurnError, BurnOptions};
use dbackup::cli::BurnArgs;
use dbackup::{exit, progress::Progress};

fn main() {
    exit::main_wrapper("dbackup-burn", run)
}

fn run() -> Result<i32> {
    let args = BurnArgs::parse();
    let workdir = match &args.workdir {
        Some(w) => w.clone(),
        None => std::env::current_dir()?,
    };
    burn::install_interrupt();
    let progress = Progress::bar(!args.common.no_progress && !args.json);
    let report = burn::burn(
        &BurnOptions {
            workdir,
            disc: args.disc.clone(),
            device: args.device.clone(),
            location: args.location.clone(),
            speed: args.speed.clone(),
            dry_run: args.dry_run,
        },
        &progress,
    );
    progress.finish();
    let report = match report {
        Ok(r) => r,
        // A medium that failed its read-back and an interrupt have codes
        // of their own; the rest are errors (exit 2) told by the wrapper.
        Err(e) if e.burned_but_not_matched() || matches!(e, BurnError::Interrupted) => {
            dbackup::say!("dbackup-burn: error: {e}");
            return Ok(e.exit_code());
        }
        // The library's own errors keep their hints (not a workdir ...).
        Err(BurnError::Dbackup(e)) => return Err(e.into()),
        Err(e) => return Err(e.into()),
    };
    let mut out = dbackup::output::stdout();
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        v["shell_command"] = report.shell_command().into();
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else if args.dry_run {
        writeln!(out, "{}", report.shell_command())?;
    } else if !args.common.quiet {
        writeln!(out, "{}", report.line())?;
    }
    Ok(exit::OK)
}
