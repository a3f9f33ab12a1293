//! Checking a parity disc: its own files against its `MD5SUMS` (each read
//! whole and hashed), its manifest's integrity, and, when every data disc of
//! its group is given as an image, that stock `par2 verify` finds the
//! group's images to be exactly what the disc protects.

use std::io::Read;
use std::time::Instant;

use md5::{Digest, Md5};

use super::{DiscReport, Kind, Problem};
use crate::catalog::parity::GroupInfo;
use crate::disc;
use crate::medium::{Content, DiscSet, Medium};
use crate::parity::par2::{self, Outcome};
use crate::progress::Progress;

/// The most `MD5SUMS` may weigh (ours is a few lines).
const MAX_MD5SUMS: u64 = 1 << 20;

/// Verifies parity disc `m` (one of `set.parity`).
pub(super) fn verify_parity_disc(
    m: &Medium,
    set: &DiscSet,
    progress: &Progress,
    on_problem: &mut dyn FnMut(&str, &Problem),
) -> DiscReport {
    let started = Instant::now();
    let (g, j) = m.parity.unwrap_or_default();
    let mut r = DiscReport {
        // No data disc: the parity disc is named by `parity`.
        disc: 0,
        parity: Some(format!("{g}-{j}")),
        ..DiscReport::of(m)
    };
    progress.message(format!("parity disc {g}-{j}: verifying"));
    r.check_manifest(m, on_problem);
    // Its files, as MD5SUMS lists them.
    let listed = match read_md5sums(m) {
        Ok(l) => l,
        Err(why) => {
            let kind = if m.file(disc::MD5SUMS).is_some() {
                Kind::Damaged
            } else {
                Kind::Missing
            };
            r.add(Problem::at(disc::MD5SUMS, kind, why), on_problem);
            Vec::new()
        }
    };
    for (name, want) in &listed {
        r.files += 1;
        let problem = match m.file(name) {
            None => Some((
                Kind::Missing,
                "listed in MD5SUMS, not on the disc".to_string(),
            )),
            Some(stored) => match hash(m, &stored) {
                Err(e) => Some((Kind::Unreadable, e.to_string())),
                Ok((n, got)) => {
                    r.bytes += n;
                    progress.add_bytes(n);
                    (got != *want).then(|| {
                        (
                            Kind::Damaged,
                            format!("MD5 {got} instead of {want} (MD5SUMS)"),
                        )
                    })
                }
            },
        };
        match problem {
            None => r.ok += 1,
            Some((kind, detail)) => r.add(Problem::at(name.clone(), kind, detail), on_problem),
        }
    }
    for name in m.root_files() {
        if name != disc::MD5SUMS && !listed.iter().any(|(n, _)| *n == name) {
            r.add(
                Problem::at(name, Kind::Unknown, "not listed in MD5SUMS".into()),
                on_problem,
            );
        }
    }
    // With the group's data images: par2's own verdict.
    let group = crate::parity::rebuild::groups(set).remove(&g);
    r.par2 = Some(match group {
        None => "not checked: the disc's manifest records no layout for its group".into(),
        Some(info) => par2_verdict(m, set, &info, &mut r, on_problem),
    });
    r.seconds = started.elapsed().as_secs_f64();
    r
}

/// Runs `par2 verify` with this disc's PAR2 files and the group's images.
fn par2_verdict(
    m: &Medium,
    set: &DiscSet,
    g: &GroupInfo,
    r: &mut DiscReport,
    on_problem: &mut dyn FnMut(&str, &Problem),
) -> String {
    let not_images: Vec<i64> = g
        .members
        .iter()
        .map(|x| x.disc)
        .filter(|&d| !matches!(set.medium(d).map(|x| &x.content), Some(Content::Image(_))))
        .collect();
    if !not_images.is_empty() {
        return format!(
            "not checked against the data discs: give the images of discs {} too",
            crate::output::discs(&not_images)
        );
    }
    if par2::tool().is_err() {
        return "not checked against the data discs: par2 is not installed".into();
    }
    let run = || -> std::io::Result<Outcome> {
        let dir = crate::temp::folder("dbackup-verify-parity-")?;
        let index = crate::parity::par2_index(g.id);
        for name in m.root_files() {
            if !name.starts_with(&format!("parity-{}.", g.id)) || !name.ends_with(".par2") {
                continue;
            }
            if name.contains('/') {
                continue;
            }
            let Some(stored) = m.file(&name) else {
                continue;
            };
            let mut from = m.open(&stored)?;
            let mut to = std::fs::File::create(dir.path().join(&name))?;
            std::io::copy(&mut (&mut from).take(stored.size), &mut to)?;
        }
        for x in &g.members {
            if let Some(d) = set.medium(x.disc) {
                let src = std::fs::canonicalize(&d.source)?;
                std::os::unix::fs::symlink(
                    src,
                    dir.path().join(crate::parity::member_name(x.disc)),
                )?;
            }
        }
        par2::verify(dir.path(), &index).map_err(std::io::Error::other)
    };
    match run() {
        Ok(Outcome::Whole) => {
            r.par2_whole = Some(true);
            format!(
                "ok: par2 verify finds the images of discs {} whole",
                crate::output::discs(&g.members.iter().map(|x| x.disc).collect::<Vec<_>>())
            )
        }
        Ok(outcome) => {
            let detail = format!(
                "par2 verify: the group's data images are not all what this disc protects ({}); verify each data disc, and rebuild a damaged one with dbackup-lost N --rebuild, leaving its image out of the discs given",
                if outcome == Outcome::Repairable {
                    "parity can repair them"
                } else {
                    "too much differs for parity to repair them"
                }
            );
            // The damage is a data disc's: told, listed, not counted here.
            r.par2_whole = Some(false);
            let p = Problem::at(
                format!("images of parity group {}", g.id),
                Kind::Damaged,
                detail.clone(),
            );
            on_problem(&r.label(), &p);
            r.problems.push(p);
            detail
        }
        Err(e) => {
            let detail = format!("par2 verify could not run: {e}");
            r.add(
                Problem::at(
                    crate::parity::par2_index(g.id),
                    Kind::Unreadable,
                    detail.clone(),
                ),
                on_problem,
            );
            detail
        }
    }
}

/// `MD5SUMS` as `md5sum -c` reads it: `<32 hex>  <name>` lines; only plain
/// names at the disc's root (hostile until checked).
fn read_md5sums(m: &Medium) -> Result<Vec<(String, String)>, String> {
    let stored = m
        .file(disc::MD5SUMS)
        .ok_or_else(|| "the disc has no MD5SUMS".to_string())?;
    let mut text = String::new();
    m.open(&stored)
        .map_err(|e| e.to_string())?
        .take(MAX_MD5SUMS)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot be read: {e}"))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (md5, name) = line
            .split_once("  ")
            .ok_or_else(|| format!("a line is not `MD5  NAME`: {line:?}"))?;
        if md5.len() != 32
            || !md5.bytes().all(|b| b.is_ascii_hexdigit())
            || name.is_empty()
            || name.contains('/')
            || name == "."
            || name == ".."
        {
            return Err(format!("a line is not `MD5  NAME`: {line:?}"));
        }
        out.push((name.to_string(), md5.to_ascii_lowercase()));
    }
    Ok(out)
}

fn hash(m: &Medium, stored: &crate::medium::Stored) -> std::io::Result<(u64, String)> {
    let mut r = m.open(stored)?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    // Bounded by the file's size on the disc.
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, crate::mkiso::hex(&h.finalize())))
}
