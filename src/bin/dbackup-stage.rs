//! dbackup-stage: init, status, monitor, close.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use clap::Parser;
use dbackup::cli::{CopiesCommand, StageArgs, StageCommand};
use dbackup::stage::{self, Event, MonitorOptions};
use dbackup::workdir::{self, Workdir};
use dbackup::{exit, names, output, progress::Progress};

fn main() {
    exit::main_wrapper("dbackup-stage", run)
}

fn run() -> Result<i32> {
    let args = StageArgs::parse();
    let quiet = args.common.quiet;
    // One write per line only on a terminal; in a pipe or a cron mail,
    // lines are batched (a first staging prints one per file). The sink
    // never fails: a closed stdout stops the printing, not the work.
    let mut out: Box<dyn Write> = if std::io::stdout().is_terminal() {
        Box::new(output::stdout())
    } else {
        Box::new(std::io::BufWriter::new(output::stdout()))
    };
    let code = run_with(args, &mut out);
    out.flush()?;
    match code {
        // Quiet means quiet: a run that finds the lock taken says so only
        // by its exit code (the next run from cron catches up).
        Err(e) if quiet && is_busy(&e) => Ok(exit::BUSY),
        other => other,
    }
}

fn is_busy(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<dbackup::error::Error>(),
            Some(dbackup::error::Error::Busy(_))
        )
    })
}

fn run_with(args: StageArgs, out: &mut Box<dyn Write>) -> Result<i32> {
    // clap keeps only the workdirs given on one side of the subcommand's
    // name: a set given before `report` and others after it would be left
    // off the page without a word.
    let given = std::env::args_os()
        .skip(1)
        .filter(|a| {
            let a = a.as_encoded_bytes();
            a == b"-w"
                || a == b"--workdir"
                || a.starts_with(b"--workdir=")
                || (a.starts_with(b"-w") && !a.starts_with(b"--"))
        })
        .count();
    if given > args.workdir.len() {
        anyhow::bail!(
            "give every workdir (-w) after `report`, not some before it: {given} given, {} seen",
            args.workdir.len()
        );
    }
    let root = match args.workdir.as_slice() {
        [] => std::env::current_dir()?,
        [w] => w.clone(),
        more if matches!(args.command, StageCommand::Report { .. }) => more[0].clone(),
        more => anyhow::bail!(
            "give one workdir (-w), not {}: only `report` shows several sets",
            more.len()
        ),
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
            parity,
            copies,
        } => {
            if parity.is_some() {
                dbackup::parity::par2::tool()
                    .map_err(|e| anyhow::anyhow!("{e}; no workdir was made"))?;
            }
            let report = workdir::init(&workdir::InitOptions {
                workdir: root,
                watched,
                disc_size,
                excludes: exclude,
                name,
                ecc,
                on_disc_ready,
                parity,
                copies,
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
            if let Some(s) = parity {
                writeln!(
                    out,
                    "Parity: {s} (groups of {} data discs, each with {})",
                    s.k,
                    output::count(u64::from(s.m), "parity disc", "parity discs")
                )?;
            }
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
                                .map(|x| match x {
                                    serde_json::Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                })
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
            let quiet = args.common.quiet;
            let mut print = |line: String, to_stdout: bool| {
                progress.suspend(|| {
                    if to_stdout {
                        let _ = writeln!(out, "{line}");
                    } else {
                        dbackup::say!("dbackup-stage: {line}");
                    }
                })
            };
            let per_file = !cron && !json;
            let report = stage::monitor(
                &mut wd,
                &repairs,
                &MonitorOptions {
                    dry_run,
                    images: !no_iso && !dry_run,
                },
                &progress,
                &mut |ev| {
                    match ev {
                    // Names are escaped wherever they go: a newline or an
                    // escape sequence in a name must not reach a cron mail
                    // or a terminal as itself.
                    Event::Staged { path, desc, .. } if per_file => {
                        print(format!("{}: {desc}", show(path, true)), true)
                    }
                    Event::Deleted { path } if per_file => {
                        print(format!("{}: Deleted", show(path, true)), true)
                    }
                    Event::Skipped(s) => print(
                        format!("{}: skipped: {}", show(&s.path, true), s.reason),
                        false,
                    ),
                    Event::DiscClosed { disc, files, bytes } if per_file => print(
                        format!(
                            "Disc {disc} closed: {}, {}{}",
                            output::count(files, "file", "files"),
                            output::bytes(bytes),
                            waits(no_iso || dry_run)
                        ),
                        true,
                    ),
                    Event::Abandoned { path, why } if !quiet => print(
                        format!(
                            "{}: its split copy begun earlier is no backup ({why}); its parts stay on their discs",
                            show(path, true)
                        ),
                        false,
                    ),
                    Event::Repaired(r) if !quiet => print(
                        format!(
                            "repaired an interrupted run: {} removed{}",
                            output::count(
                                r.reservations as u64,
                                "unfinished copy",
                                "unfinished copies"
                            ),
                            r.finished_close
                                .map(|d| format!(", closing of disc {d} finished"))
                                .unwrap_or_default()
                        ),
                        false,
                    ),
                    _ => {}
                }
                },
            )?;
            if dry_run && report.changed() && !quiet {
                dbackup::say!("dbackup-stage: dry run: nothing was changed");
            }
            let mut code = if report.skipped_files > 0 {
                exit::FINDING
            } else {
                exit::OK
            };
            // Images of every closed disc still waiting for one: those this
            // run closed, and any an interrupted run left. Not after a full
            // filesystem: an image needs room too.
            // Images built between the parts of a split file come first.
            let mut ready = report.images.clone();
            let mut parity_ready = Vec::new();
            if !ready.is_empty() {
                code = code.max(announce(&wd, &ready, json || cron, out)?);
            }
            if report.no_space.is_none()
                && !dry_run
                && !no_iso
                && (!dbackup::mkiso::pending(&wd)?.is_empty() || dbackup::mkiso::parity_due(&wd)?)
            {
                let (c, r, p) = images(&mut wd, &progress, json || cron, out)?;
                code = code.max(c);
                ready.extend(r);
                parity_ready = p;
            }
            if json {
                let mut value = serde_json::to_value(&report)?;
                if let Some(map) = value.as_object_mut() {
                    map.insert("parity_images".into(), serde_json::to_value(&parity_ready)?);
                }
                serde_json::to_writer_pretty(&mut out, &value)?;
                writeln!(out)?;
            } else if cron && (report.changed() || !ready.is_empty() || !parity_ready.is_empty()) {
                writeln!(out, "{}", cron_line(&report, &ready, &parity_ready))?;
            }
            if !dry_run {
                labels(&wd, &ready, &parity_ready, json || cron, out)?;
            }
            if !dry_run && (report.changed() || !ready.is_empty() || !parity_ready.is_empty()) {
                refresh_page(&root);
            }
            if let Some(msg) = &report.no_space {
                dbackup::say!("dbackup-stage: error: {msg}");
                dbackup::say!("dbackup-stage: hint: free some space (e.g. burn and verify waiting disc images) and run again; nothing staged was lost");
                return Ok(exit::NO_SPACE);
            }
            Ok(code)
        }
        StageCommand::Close {
            json,
            no_iso,
            parity,
        } => {
            let (mut wd, repairs) = Workdir::open_write(&root)?;
            if !repairs.is_empty() && !args.common.quiet {
                dbackup::say!(
                    "dbackup-stage: repaired an interrupted run: {} removed",
                    output::count(
                        repairs.reservations as u64,
                        "unfinished copy",
                        "unfinished copies"
                    )
                );
            }
            // With --parity an empty open disc is left open: the group
            // ends with the discs it has.
            let closed = if parity && stage::open_disc_is_empty(&wd)? {
                None
            } else {
                Some(stage::close(&mut wd)?)
            };
            let group = if parity {
                let g = wd.catalog.end_open_group()?;
                if g.is_none() && closed.is_none() {
                    anyhow::bail!(
                        "there is no open parity group to end and the open disc is empty; nothing to close"
                    );
                }
                g
            } else {
                None
            };
            if json {
                let (disc, files, bytes) = closed
                    .as_ref()
                    .map(|(d, u)| (Some(*d), u.files, u.bytes))
                    .unwrap_or((None, 0, 0));
                serde_json::to_writer_pretty(
                    &mut out,
                    &serde_json::json!({"closed": disc, "files": files, "bytes": bytes, "open_disc": wd.open_disc()?, "parity_group_ended": group}),
                )?;
                writeln!(out)?;
            } else {
                if let Some((disc, usage)) = &closed {
                    writeln!(
                        out,
                        "Disc {disc} closed: {}, {}{}",
                        output::count(usage.files, "file", "files"),
                        output::bytes(usage.bytes),
                        waits(no_iso)
                    )?;
                }
                if let Some(g) = group {
                    writeln!(
                        out,
                        "Parity group {g} ended{}",
                        if no_iso {
                            "; its parity discs wait for dbackup-mkiso"
                        } else {
                            "; building its parity discs"
                        }
                    )?;
                }
                writeln!(out, "Current Disc: {}", wd.open_disc()?)?;
            }
            if no_iso {
                drop(wd);
                refresh_page(&root);
                return Ok(exit::OK);
            }
            let progress = Progress::bar(!args.common.no_progress && !json);
            let (code, ready, parity_ready) = images(&mut wd, &progress, json, out)?;
            labels(&wd, &ready, &parity_ready, json, out)?;
            drop(wd);
            refresh_page(&root);
            Ok(code)
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
                    "{} on {} kept; {} removed; Current Disc: {}",
                    output::count(report.files, "backed-up file", "backed-up files"),
                    output::count(report.discs, "disc", "discs"),
                    output::count(
                        report.leftover_reservations,
                        "unfinished reservation",
                        "unfinished reservations"
                    ),
                    report.open_disc
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
        StageCommand::Report { html, json } => {
            let roots = if args.workdir.is_empty() {
                vec![root]
            } else {
                args.workdir.clone()
            };
            let w = dbackup::report::write_html(&html, &roots)?;
            if json {
                serde_json::to_writer_pretty(&mut out, &w)?;
                writeln!(out)?;
            } else if !args.common.quiet {
                writeln!(
                    out,
                    "{}: {} of {}, {}, in {:.1} s",
                    w.path.display(),
                    output::count(w.sets, "set", "sets"),
                    output::count(w.files, "name", "names"),
                    output::bytes(w.bytes),
                    w.seconds
                )?;
            }
            Ok(exit::OK)
        }
        StageCommand::Config { key, values } => config(&root, key.as_deref(), values, out),
        StageCommand::Copies { action, json } => copies(&root, action, json, out),
        StageCommand::Label { disc, copy, json } => label(&root, &disc, copy, json, out),
    }
}

/// `copies`: the list, or a copy recorded, moved, lost or found.
fn copies(
    root: &std::path::Path,
    action: Option<CopiesCommand>,
    json: bool,
    out: &mut impl Write,
) -> Result<i32> {
    use dbackup::copies::{self as cp, Shelf};
    let Some(action) = action else {
        let wd = Workdir::open_read(root)?;
        let shelf = Shelf::read(&wd)?;
        if json {
            serde_json::to_writer_pretty(&mut *out, &shelf.discs)?;
            writeln!(out)?;
            return Ok(exit::OK);
        }
        let now = cp::now();
        let mut rows = output::Rows::new(&[
            "Disc",
            "Copy",
            "Made",
            "Medium",
            "Location",
            "Last good check",
            "Next check",
        ])
        .right(&[1]);
        let day = |t: f64| output::time(t).chars().take(10).collect::<String>();
        for d in &shelf.discs {
            if d.copies.is_empty() {
                let what = if d.lost { "lost" } else { "no copy recorded" };
                rows.push(vec![
                    d.disc.key(),
                    "-".into(),
                    what.into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
            for c in &d.copies {
                let lost = c.copy.lost.map(|t| format!("lost {}", day(t)));
                rows.push(vec![
                    d.disc.key(),
                    c.copy.copy.to_string(),
                    format!("{} ({})", day(c.copy.made), c.copy.how),
                    c.copy.medium.clone().unwrap_or_default(),
                    names::display(c.copy.location.as_deref().unwrap_or("").as_bytes(), true),
                    match (&c.last_check, c.last_good_check) {
                        (Some(k), _) if !k.good && k.complete => {
                            format!("{} DAMAGED", day(k.checked))
                        }
                        (_, Some(t)) => day(t),
                        _ => "never".into(),
                    },
                    lost.unwrap_or_else(|| {
                        if c.due <= now {
                            "due now".into()
                        } else {
                            day(c.due)
                        }
                    }),
                ]);
            }
        }
        rows.write(out, std::io::stdout().is_terminal())?;
        let below: Vec<String> = shelf.below_policy().iter().map(|d| d.disc.key()).collect();
        writeln!(
            out,
            "Policy: {} per disc, checked every {}. {}",
            output::count(shelf.policy, "copy", "copies"),
            cp::show_every(shelf.every),
            if below.is_empty() {
                "Every disc is held in enough copies.".to_string()
            } else {
                format!("Below it: {}.", below.join(", "))
            }
        )?;
        return Ok(exit::OK);
    };
    let (mut wd, _) = Workdir::open_write(root)?;
    let shelf = Shelf::read(&wd)?;
    let known = |disc: &cp::DiscName| -> Result<()> {
        if shelf.discs.iter().any(|d| &d.disc == disc) {
            Ok(())
        } else {
            anyhow::bail!(
                "{} is not a closed disc of this set (see dbackup-stage copies)",
                disc.label()
            )
        }
    };
    let existing = |wd: &Workdir, disc: &cp::DiscName, copy: i64| -> Result<_> {
        known(disc)?;
        wd.catalog.copy(disc, copy)?.ok_or_else(|| {
            anyhow::anyhow!(
                "{} has no copy {copy} (see dbackup-stage copies)",
                disc.label()
            )
        })
    };
    match action {
        CopiesCommand::Add {
            disc,
            location,
            medium,
        } => {
            known(&disc)?;
            let n = wd.catalog.add_copy(
                &disc,
                &dbackup::catalog::copies::NewCopy {
                    made: cp::now(),
                    how: "added",
                    drive: None,
                    medium,
                    location: location.clone(),
                },
            )?;
            writeln!(
                out,
                "{} copy {n} recorded{}; it was never read back: check it with dbackup-verify -d DISC --record {} --copy {n}",
                disc.label(),
                location
                    .map(|l| format!(" at {}", names::display(l.as_bytes(), true)))
                    .unwrap_or_default(),
                wd.layout.root.display()
            )?;
        }
        CopiesCommand::Move {
            disc,
            copy,
            location,
        } => {
            existing(&wd, &disc, copy)?;
            wd.catalog.move_copy(&disc, copy, &location)?;
            writeln!(
                out,
                "{} copy {copy} is now at {}",
                disc.label(),
                names::display(location.as_bytes(), true)
            )?;
        }
        CopiesCommand::Lost { disc, copy } => {
            let c = existing(&wd, &disc, copy)?;
            if c.lost.is_some() {
                anyhow::bail!("{} copy {copy} is already marked lost", disc.label());
            }
            let others = wd
                .catalog
                .held_copies(&disc)?
                .iter()
                .filter(|k| k.copy != copy)
                .count();
            if let (cp::DiscName::Data(n), 0) = (&disc, others) {
                anyhow::bail!(
                    "copy {copy} is disc {n}'s last copy: losing it loses the disc. Run dbackup-lost {n} --copy {copy}: it marks both, says what that cost, and with --restage protects again what can be"
                );
            }
            let held = wd.catalog.set_copy_lost(&disc, copy, Some(cp::now()))?;
            if held > 0 {
                let left = wd.catalog.held_copies(&disc)?;
                writeln!(
                    out,
                    "{} copy {copy} marked lost; the disc is still held: {}",
                    disc.label(),
                    dbackup::lost::where_held(&left)
                )?;
            } else if wd.layout.isos().join(disc.image_name()).is_file() {
                writeln!(
                    out,
                    "{} copy {copy} marked lost; it was the last copy held; its image can be burned again from isos/{}",
                    disc.label(),
                    disc.image_name()
                )?;
            } else {
                writeln!(
                    out,
                    "{} copy {copy} marked lost; it was the last copy held, and its image is no longer in isos/ to burn another",
                    disc.label()
                )?;
            }
        }
        CopiesCommand::Found { disc, copy } => {
            let c = existing(&wd, &disc, copy)?;
            if c.lost.is_none() {
                anyhow::bail!("{} copy {copy} is not marked lost", disc.label());
            }
            wd.catalog.set_copy_lost(&disc, copy, None)?;
            writeln!(out, "{} copy {copy} found again", disc.label())?;
        }
    }
    Ok(exit::OK)
}

/// `config`: every setting, one setting, or a change to one.
fn config(
    root: &std::path::Path,
    key: Option<&str>,
    values: Vec<String>,
    out: &mut impl Write,
) -> Result<i32> {
    let key = key.map(|k| match k {
        "check-every" => "check_every",
        "report-html" => "report_html",
        k => k,
    });
    let Some(key) = key else {
        let wd = Workdir::open_read(root)?;
        for (k, v) in settings_shown(&wd)? {
            writeln!(out, "{k}: {v}")?;
        }
        return Ok(exit::OK);
    };
    if values.is_empty() {
        let wd = Workdir::open_read(root)?;
        match key {
            "excludes" => {
                for p in &wd.settings.excludes {
                    writeln!(out, "{p}")?;
                }
            }
            "disc_size" => writeln!(out, "{}", wd.settings.disc_size)?,
            _ => {
                let v = settings_shown(&wd)?
                    .into_iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                writeln!(out, "{v}")?;
            }
        }
        return Ok(exit::OK);
    }
    let one = |values: &[String]| -> Result<String> {
        match values {
            [v] => Ok(v.clone()),
            _ => anyhow::bail!("{key} takes one value, not {}", values.len()),
        }
    };
    let (mut wd, _) = Workdir::open_write(root)?;
    match key {
        "disc_size" => {
            let v = one(&values)?;
            let bytes = dbackup::units::parse_size(&v).map_err(|e| anyhow::anyhow!("{e}"))?;
            wd.set_disc_size(bytes)?;
        }
        "excludes" => {
            let list = if values == [""] { Vec::new() } else { values };
            wd.set_excludes(list)?;
        }
        "ecc" | "labels" => {
            let v = match one(&values)?.as_str() {
                "on" | "yes" | "true" | "1" => "on",
                "off" | "no" | "false" | "0" => "off",
                other => anyhow::bail!("{key} is on or off, not {other:?}"),
            };
            wd.catalog.set_setting_text(key, v)?;
        }
        "on_disc_ready" => wd
            .catalog
            .set_setting_text("on_disc_ready", &one(&values)?)?,
        "parity" => {
            let scheme = dbackup::parity::Scheme::parse_setting(&one(&values)?)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if scheme.is_some() {
                dbackup::parity::par2::tool()?;
            }
            wd.catalog.set_parity(scheme)?;
        }
        "copies" => {
            let v = one(&values)?;
            let c: u64 = v
                .parse()
                .ok()
                .filter(|c| (1..=100).contains(c))
                .ok_or_else(|| anyhow::anyhow!("copies is a number from 1 to 100, not {v:?}"))?;
            wd.catalog.set_copies_policy(c)?;
        }
        "check_every" => {
            let v = one(&values)?;
            let secs = dbackup::copies::parse_every(&v).map_err(|e| anyhow::anyhow!("{e}"))?;
            wd.catalog
                .set_setting_text("check_every", &dbackup::copies::show_every(secs))?;
        }
        "report_html" => {
            let value = if values.iter().all(String::is_empty) {
                String::new()
            } else {
                let cwd = std::env::current_dir()?;
                let abs = |p: &String| cwd.join(p);
                let html = abs(&values[0]);
                if html.is_dir() {
                    anyhow::bail!("{}: is a folder; give the page's file name", html.display());
                }
                let others: Vec<std::path::PathBuf> = values[1..].iter().map(abs).collect();
                for o in &others {
                    Workdir::open_read(o).map_err(|e| {
                        anyhow::anyhow!("{}: not a workdir to show: {e}", o.display())
                    })?;
                }
                // Written first, so a wrong path is refused now (and not
                // kept), not in every cron mail after.
                let mut roots = vec![root.to_path_buf()];
                roots.extend(others.iter().cloned());
                let w = dbackup::report::write_html(&html, &roots)?;
                writeln!(
                    out,
                    "{}: written, and rewritten after every run that changes something",
                    w.path.display()
                )?;
                serde_json::to_string(&dbackup::report::PageSetting { html, others })?
            };
            wd.catalog
                .set_setting_text(dbackup::report::SETTING, &value)?;
        }
        other => anyhow::bail!("{other} is fixed when the set is created and cannot be changed"),
    }
    Ok(exit::OK)
}

/// Every setting as `config` shows it, in a fixed order.
fn settings_shown(wd: &Workdir) -> Result<Vec<(&'static str, String)>> {
    let s = &wd.settings;
    Ok(vec![
        ("watched", show(&s.watched, true)),
        ("name", names::display(s.name.as_bytes(), true)),
        ("uuid", s.uuid.clone()),
        (
            "disc_size",
            format!("{} ({})", s.disc_size, output::bytes(s.disc_size)),
        ),
        ("excludes", serde_json::to_string(&s.excludes)?),
        ("ecc", (if s.ecc { "on" } else { "off" }).to_string()),
        (
            "labels",
            (if dbackup::mkiso::labels_on(wd)? {
                "on"
            } else {
                "off"
            })
            .to_string(),
        ),
        (
            "parity",
            wd.catalog
                .parity_scheme()?
                .map_or_else(|| "off".to_string(), |s| s.to_string()),
        ),
        ("copies", wd.catalog.copy_policy()?.0.to_string()),
        (
            "check_every",
            dbackup::copies::show_every(wd.catalog.copy_policy()?.1),
        ),
        (
            "report_html",
            match dbackup::report::page_setting(&wd.catalog)? {
                None => String::new(),
                Some(p) => std::iter::once(&p.html)
                    .chain(&p.others)
                    .map(|p| show(p, true))
                    .collect::<Vec<_>>()
                    .join(" "),
            },
        ),
        (
            "on_disc_ready",
            names::display(
                wd.catalog
                    .setting_text("on_disc_ready")?
                    .unwrap_or_default()
                    .as_bytes(),
                true,
            ),
        ),
    ])
}

/// Writes the labels of the images a run built when the set asks for them
/// (`config labels on`): their paths on stdout unless `brief` (cron, JSON);
/// a label that cannot be written is said on stderr and fails nothing.
fn labels(
    wd: &Workdir,
    ready: &[dbackup::mkiso::ImageReport],
    parity: &[dbackup::mkiso::ParityReport],
    brief: bool,
    out: &mut impl Write,
) -> Result<()> {
    if !dbackup::mkiso::labels_on(wd)? {
        return Ok(());
    }
    let discs = ready
        .iter()
        .filter(|r| r.verified)
        .map(|r| dbackup::copies::DiscName::Data(r.disc))
        .chain(
            parity
                .iter()
                .map(|p| dbackup::copies::DiscName::Parity(p.group, p.j)),
        );
    for disc in discs {
        match dbackup::mkiso::write_label(wd, &disc) {
            Ok(line) if !brief => writeln!(out, "{line}")?,
            Ok(_) => {}
            Err(message) => dbackup::say!("dbackup-stage: {message}"),
        }
    }
    Ok(())
}

/// Rewrites the status page the set's `report_html` names, if any. A page
/// that cannot be written is said on stderr and changes nothing else: the
/// run's work and exit status stand.
fn refresh_page(root: &std::path::Path) {
    if let Err(e) = dbackup::report::refresh(root) {
        dbackup::say!("dbackup-stage: warning: the status page was not rewritten: {e}");
    }
}

/// The one line `monitor --cron` prints when something happened.
fn cron_line(
    report: &stage::MonitorReport,
    ready: &[dbackup::mkiso::ImageReport],
    parity: &[dbackup::mkiso::ParityReport],
) -> String {
    let mut parts = vec![format!(
        "{} staged ({})",
        output::count(report.staged_files, "file", "files"),
        output::bytes(report.staged_bytes)
    )];
    if report.deleted_files > 0 {
        parts.push(format!("{} deleted", report.deleted_files));
    }
    if report.entries_recorded > 0 {
        parts.push(format!(
            "{} recorded",
            output::count(
                report.entries_recorded,
                "folder or link",
                "folders and links"
            )
        ));
    }
    if report.entries_deleted > 0 {
        parts.push(format!(
            "{} gone",
            output::count(
                report.entries_deleted,
                "folder or link",
                "folders and links"
            )
        ));
    }
    if report.skipped_files > 0 {
        parts.push(format!("{} skipped", report.skipped_files));
    }
    if !report.closed_discs.is_empty() {
        let ids: Vec<String> = report.closed_discs.iter().map(|d| d.to_string()).collect();
        parts.push(format!(
            "{} {} closed",
            if ids.len() == 1 { "disc" } else { "discs" },
            ids.join(", ")
        ));
    }
    for r in ready {
        parts.push(format!(
            "disc {} ready to burn: {}",
            r.disc,
            show(&r.path, true)
        ));
    }
    for r in parity {
        parts.push(format!(
            "parity disc {}-{} ready to burn: {}",
            r.group,
            r.j,
            show(&r.path, true)
        ));
    }
    format!(
        "dbackup: {}; disc {} is {}% full",
        parts.join(", "),
        report.open_disc,
        report.open_disc_usage * 100 / report.disc_size.max(1)
    )
}

/// Builds and verifies the images of discs just closed, as dbackup-mkiso
/// does, and tells the user (and the on_disc_ready command); `brief` leaves
/// the ready lines to the caller. Returns the exit code and the images.
fn images(
    wd: &mut Workdir,
    progress: &Progress,
    brief: bool,
    out: &mut impl Write,
) -> Result<(
    i32,
    Vec<dbackup::mkiso::ImageReport>,
    Vec<dbackup::mkiso::ParityReport>,
)> {
    let opts = dbackup::mkiso::MkisoOptions {
        ecc: wd.settings.ecc,
        ..Default::default()
    };
    let reports = dbackup::mkiso::mkiso(wd, &opts, progress, &mut |_| {})?;
    let mut code = announce(wd, &reports, brief, out)?;
    let pass = dbackup::mkiso::build_parity(wd, progress)?;
    progress.finish();
    if dbackup::mkiso::announce_parity(wd, &pass, brief, "dbackup-stage", out)? {
        code = code.max(exit::FINDING);
    }
    Ok((code, reports, pass.built))
}

/// Tells the user of images built (and the on_disc_ready command); `brief`
/// leaves the ready lines to the caller. Returns the exit code.
fn announce(
    wd: &Workdir,
    reports: &[dbackup::mkiso::ImageReport],
    brief: bool,
    out: &mut impl Write,
) -> Result<i32> {
    let mut code = exit::OK;
    for r in reports {
        if !brief {
            writeln!(out, "{}", dbackup::mkiso::ready_line(r))?;
        }
        let (lines, damaged) = dbackup::mkiso::repair_lines(r);
        for line in lines {
            dbackup::say!("dbackup-stage: {line}");
        }
        if damaged {
            code = exit::FINDING;
        }
        if let Some(failure) = dbackup::mkiso::run_hook(wd, r)? {
            dbackup::say!("dbackup-stage: {failure}");
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

/// `label`: writes a disc's SVG and PDF labels and prints their paths.
fn label(
    root: &std::path::Path,
    disc: &dbackup::copies::DiscName,
    copy: Option<i64>,
    json: bool,
    out: &mut impl Write,
) -> Result<i32> {
    let wd = Workdir::open_read(root)?;
    let report = dbackup::label::write_labels(&wd, disc, copy)?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", report.svg.display())?;
        writeln!(out, "{}", report.pdf.display())?;
    }
    Ok(exit::OK)
}
