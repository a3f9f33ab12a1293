//! dbackup-stage: init, status, monitor, close.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use clap::Parser;
use dbackup::cli::{StageArgs, StageCommand};
use dbackup::stage::{self, Event, MonitorOptions};
use dbackup::workdir::{self, Workdir};
use dbackup::{exit, names, output, progress::Progress};

fn main() {
    exit::main_wrapper("dbackup-stage", run)
}

fn run() -> Result<i32> {
    let stdout = std::io::stdout();
    // One write per line only on a terminal; in a pipe or a cron mail,
    // lines are batched (a first staging prints one per file).
    let mut out: Box<dyn Write> = if stdout.is_terminal() {
        Box::new(stdout.lock())
    } else {
        Box::new(std::io::BufWriter::new(stdout.lock()))
    };
    let code = run_with(&mut out);
    out.flush()?;
    code
}

fn run_with(out: &mut Box<dyn Write>) -> Result<i32> {
    let args = StageArgs::parse();
    let root = match &args.workdir {
        Some(w) => w.clone(),
        None => std::env::current_dir()?,
    };
    let mut out = out;
    match args.command {
        StageCommand::Init {
            watched,
            disc_size,
            exclude,
            name,
            ecc,
            on_disc_ready,
        } => {
            let report = workdir::init(&workdir::InitOptions {
                workdir: root,
                watched,
                disc_size,
                excludes: exclude,
                name,
                ecc,
                on_disc_ready,
            })?;
            writeln!(out, "Staging directory created:")?;
            writeln!(out, "Staging dir: {}", report.workdir.display())?;
            writeln!(out, "Watched dir: {}", report.watched.display())?;
            writeln!(out, "Current Disc: {}", report.current_disc)?;
            writeln!(out, "Set: {} ({})", report.name, report.uuid)?;
            writeln!(
                out,
                "Disc size: {} ({})",
                report.disc_size,
                output::bytes(report.disc_size)
            )?;
            Ok(exit::OK)
        }
        StageCommand::Status { json } => {
            let wd = Workdir::open_read(&root)?;
            let st = dbackup::status::status(&wd)?;
            if json {
                serde_json::to_writer_pretty(&mut out, &st)?;
                writeln!(out)?;
            } else {
                let value = serde_json::to_value(&st)?;
                if let serde_json::Value::Object(map) = value {
                    for (k, v) in map {
                        let text = match v {
                            serde_json::Value::String(s) => s,
                            serde_json::Value::Null => "never".into(),
                            serde_json::Value::Array(a) if a.is_empty() => "none".into(),
                            serde_json::Value::Array(a) => a
                                .iter()
                                .map(|x| x.to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                            other if k == "Last_run" => {
                                output::time(other.as_f64().unwrap_or(f64::NAN))
                            }
                            other => other.to_string(),
                        };
                        writeln!(out, "{k}: {text}")?;
                    }
                }
            }
            Ok(exit::OK)
        }
        StageCommand::Monitor {
            cron,
            dry_run,
            json,
            no_iso,
        } => {
            let progress = Progress::bar(!args.common.no_progress && !json);
            let (mut wd, repairs) = if dry_run {
                (Workdir::open_read(&root)?, Default::default())
            } else {
                Workdir::open_write(&root)?
            };
            let tty = std::io::stdout().is_terminal();
            let quiet = args.common.quiet;
            let mut io_err = None;
            let mut print = |line: String, to_stdout: bool| {
                progress.suspend(|| {
                    if to_stdout {
                        if let Err(e) = writeln!(out, "{line}") {
                            io_err.get_or_insert(e);
                        }
                    } else {
                        eprintln!("dbackup-stage: {line}");
                    }
                })
            };
            let per_file = !cron && !json;
            let report = stage::monitor(
                &mut wd,
                &repairs,
                &MonitorOptions { dry_run },
                &progress,
                &mut |ev| match ev {
                    Event::Staged { path, desc, .. } if per_file => {
                        print(format!("{}: {desc}", show(path, tty)), true)
                    }
                    Event::Deleted { path } if per_file => {
                        print(format!("{}: Deleted", show(path, tty)), true)
                    }
                    Event::Skipped(s) => print(
                        format!("{}: skipped: {}", show(&s.path, true), s.reason),
                        false,
                    ),
                    Event::DiscClosed { disc, files, bytes } if !json => print(
                        format!(
                            "Disc {disc} closed: {files} files, {}{}",
                            output::bytes(bytes),
                            waits(no_iso || dry_run)
                        ),
                        true,
                    ),
                    Event::Repaired(r) if !quiet => print(
                        format!(
                            "repaired an interrupted run: {} unfinished copies removed{}",
                            r.reservations,
                            r.finished_close
                                .map(|d| format!(", closing of disc {d} finished"))
                                .unwrap_or_default()
                        ),
                        false,
                    ),
                    _ => {}
                },
            )?;
            if let Some(e) = io_err {
                return Err(e.into());
            }
            if json {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            } else if cron && report.changed() {
                let mut parts = vec![format!(
                    "{} files staged ({})",
                    report.staged_files,
                    output::bytes(report.staged_bytes)
                )];
                if report.deleted_files > 0 {
                    parts.push(format!("{} deleted", report.deleted_files));
                }
                if report.skipped_files > 0 {
                    parts.push(format!("{} skipped", report.skipped_files));
                }
                writeln!(
                    out,
                    "dbackup: {}; disc {} is {}% full",
                    parts.join(", "),
                    report.open_disc,
                    report.open_disc_usage * 100 / report.disc_size.max(1)
                )?;
            }
            if dry_run && report.changed() && !quiet {
                eprintln!("dbackup-stage: dry run: nothing was changed");
            }
            if let Some(msg) = &report.no_space {
                eprintln!("dbackup-stage: error: {msg}");
                eprintln!("dbackup-stage: hint: free some space (e.g. burn and verify waiting disc images) and run again; nothing staged was lost");
                return Ok(exit::NO_SPACE);
            }
            let mut code = if report.skipped_files > 0 {
                exit::FINDING
            } else {
                exit::OK
            };
            // Images of every closed disc still waiting for one: those this
            // run closed, and any an interrupted run left.
            if !dry_run && !no_iso && !dbackup::mkiso::pending(&wd)?.is_empty() {
                code = code.max(images(&mut wd, &progress, json, out)?);
            }
            Ok(code)
        }
        StageCommand::Close { json, no_iso } => {
            let (mut wd, repairs) = Workdir::open_write(&root)?;
            if !repairs.is_empty() && !args.common.quiet {
                eprintln!(
                    "dbackup-stage: repaired an interrupted run: {} unfinished copies removed",
                    repairs.reservations
                );
            }
            let (disc, usage) = stage::close(&mut wd)?;
            if json {
                serde_json::to_writer_pretty(
                    &mut out,
                    &serde_json::json!({"closed": disc, "files": usage.files, "bytes": usage.bytes, "open_disc": wd.open_disc()?}),
                )?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "Disc {disc} closed: {} files, {}{}",
                    usage.files,
                    output::bytes(usage.bytes),
                    waits(no_iso)
                )?;
                writeln!(out, "Current Disc: {}", wd.open_disc()?)?;
            }
            if no_iso {
                return Ok(exit::OK);
            }
            let progress = Progress::bar(!args.common.no_progress && !json);
            images(&mut wd, &progress, json, out)
        }
        StageCommand::Adopt { dry_run, name } => {
            let report = dbackup::adopt::adopt(&dbackup::adopt::AdoptOptions {
                workdir: root,
                dry_run,
                name,
            })?;
            if dry_run {
                writeln!(out, "Would adopt {}:", report.workdir.display())?;
            } else {
                writeln!(out, "Adopted {}:", report.workdir.display())?;
            }
            for a in &report.actions {
                writeln!(out, "  - {a}")?;
            }
            if !dry_run {
                writeln!(
                    out,
                    "{} backed-up files on {} discs kept; {} unfinished reservations removed; Current Disc: {}",
                    report.files, report.discs, report.leftover_reservations, report.open_disc
                )?;
                if let Some(b) = &report.backup {
                    writeln!(
                        out,
                        "The original working directory was backed up to {}",
                        b.display()
                    )?;
                }
            }
            Ok(exit::OK)
        }
        StageCommand::Config { key, value } => {
            let (wd, _) = Workdir::open_write(&root)?;
            match (key.as_deref(), value) {
                (None, _) => {
                    writeln!(out, "ecc: {}", if wd.settings.ecc { "on" } else { "off" })?;
                    writeln!(
                        out,
                        "on_disc_ready: {}",
                        wd.catalog
                            .setting_text("on_disc_ready")?
                            .unwrap_or_default()
                    )?;
                }
                (Some(k), None) => {
                    let v = if k == "ecc" {
                        (if wd.settings.ecc { "on" } else { "off" }).to_string()
                    } else {
                        wd.catalog.setting_text(k)?.unwrap_or_default()
                    };
                    writeln!(out, "{v}")?;
                }
                (Some("ecc"), Some(v)) => {
                    let v = match v.as_str() {
                        "on" | "yes" | "true" | "1" => "on",
                        "off" | "no" | "false" | "0" => "off",
                        other => anyhow::bail!("ecc is on or off, not {other:?}"),
                    };
                    wd.catalog.set_setting_text("ecc", v)?;
                }
                (Some(k), Some(v)) => wd.catalog.set_setting_text(k, &v)?,
            }
            Ok(exit::OK)
        }
    }
}

/// Builds and verifies the images of discs just closed, as dbackup-mkiso
/// does, and tells the user (and the on_disc_ready command).
fn images(wd: &mut Workdir, progress: &Progress, json: bool, out: &mut impl Write) -> Result<i32> {
    let opts = dbackup::mkiso::MkisoOptions {
        ecc: wd.settings.ecc,
        ..Default::default()
    };
    let reports = dbackup::mkiso::mkiso(wd, &opts, progress, &mut |_| {})?;
    progress.finish();
    let mut code = exit::OK;
    for r in &reports {
        if !json {
            writeln!(out, "{}", dbackup::mkiso::ready_line(r))?;
        }
        let (lines, damaged) = dbackup::mkiso::repair_lines(r);
        for line in lines {
            eprintln!("dbackup-stage: {line}");
        }
        if damaged {
            code = exit::FINDING;
        }
        if let Some(failure) = dbackup::mkiso::run_hook(wd, r)? {
            eprintln!("dbackup-stage: {failure}");
            code = exit::FINDING;
        }
    }
    Ok(code)
}

/// What a closed disc waits for: its image comes next, unless left to
/// dbackup-mkiso.
fn waits(no_iso: bool) -> &'static str {
    if no_iso {
        "; it waits in the workdir for its image (dbackup-mkiso)"
    } else {
        "; building its image"
    }
}

fn show(path: &std::path::Path, tty: bool) -> String {
    use std::os::unix::ffi::OsStrExt;
    names::display(path.as_os_str().as_bytes(), tty)
}
