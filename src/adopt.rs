//! Continuing a set made by the original dBackup: `dbackup-stage adopt`
//! takes its working directory (settings.yaml, manifest.db, staging/,
//! isos/, hooks/), keeps every row and id as they are (ids already burned
//! on discs never change), adds our tables and settings, and moves the open
//! disc's staged files to our layout. The original's working directory is
//! backed up first (catalogue and settings copied, staged files hard-linked).
//!
//! settings.yaml is read with a few lines of our own rather than a YAML
//! crate: the original writes three flat `key: value` scalars, and the
//! maintained YAML crates bring far more than that needs.

use std::path::{Path, PathBuf};

use crate::catalog::{self, manifest::Manifest, Settings};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::workdir::{Layout, Lock, Workdir};

/// What `adopt` needs.
#[derive(Debug, Clone)]
pub struct AdoptOptions {
    pub workdir: PathBuf,
    pub dry_run: bool,
    pub name: Option<String>,
}

/// What `adopt` did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AdoptReport {
    pub workdir: PathBuf,
    pub watched: PathBuf,
    pub disc_size: u64,
    pub files: u64,
    pub discs: u64,
    pub open_disc: i64,
    pub staged_files: u64,
    pub leftover_reservations: u64,
    pub backup: Option<PathBuf>,
    pub actions: Vec<String>,
    pub dry_run: bool,
}

/// The original's settings.yaml: `watch_dir`, `disc_size`, `email`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OriginalSettings {
    pub watch_dir: Option<PathBuf>,
    pub disc_size: Option<u64>,
    pub email: Option<String>,
}

/// Reads the flat `key: value` lines of the original's settings.yaml.
pub fn parse_settings(text: &str) -> OriginalSettings {
    let mut s = OriginalSettings::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line == "---" {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        match key.trim() {
            "watch_dir" => s.watch_dir = Some(PathBuf::from(value)),
            "disc_size" => s.disc_size = value.parse().ok(),
            "email" => s.email = Some(value.to_string()),
            _ => {}
        }
    }
    s
}

/// Where the original kept the open disc's files: `staging/files/<d>/<id>`
/// or, as some versions did, `staging/<d>/<id>`.
fn original_staged_root(layout: &Layout) -> Option<PathBuf> {
    let staging = layout.staging();
    if staging.join("files").is_dir() {
        return Some(staging.join("files"));
    }
    let numeric = std::fs::read_dir(&staging).ok()?.flatten().any(|e| {
        e.file_name()
            .to_str()
            .is_some_and(|n| n.parse::<u64>().is_ok())
    });
    numeric.then_some(staging)
}

fn count_files(root: &Path) -> u64 {
    walkdir::WalkDir::new(root)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .count() as u64
}

/// Adopts an original dBackup working directory.
pub fn adopt(opts: &AdoptOptions) -> Result<AdoptReport> {
    let layout =
        Layout::new(std::path::absolute(&opts.workdir).map_err(|e| Error::io(&opts.workdir, e))?);
    let catalog_path = layout.catalog();
    let yaml = layout.root.join("settings.yaml");
    if !catalog_path.is_file() || !yaml.is_file() {
        return Err(Error::Invalid(format!(
            "{} is not an original dBackup working directory (it needs manifest.db and settings.yaml)",
            layout.root.display()
        )));
    }
    if !catalog::is_original(&catalog_path)? {
        return Err(Error::Invalid(format!(
            "{} is already a dbackup workdir; nothing to adopt",
            layout.root.display()
        )));
    }
    let text = std::fs::read_to_string(&yaml).map_err(|e| Error::io(&yaml, e))?;
    let original = parse_settings(&text);
    let watched = original
        .watch_dir
        .clone()
        .ok_or_else(|| Error::Invalid(format!("{}: no watch_dir", yaml.display())))?;
    let disc_size = original.disc_size.unwrap_or(3_525_279_744);
    let view = Manifest::open(&catalog_path).map_err(|e| Error::Invalid(e.to_string()))?;
    let discs = view.discs().map_err(|e| Error::Invalid(e.to_string()))?;
    let open = discs
        .iter()
        .filter(|d| d.completed.is_none())
        .map(|d| d.id)
        .max();
    let mut files = 0u64;
    view.for_each_version(&mut |_| files += 1)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    drop(view);
    let staged_root = original_staged_root(&layout);
    let staged_files = staged_root.as_deref().map(count_files).unwrap_or(0);
    let stamp = catalog::now().floor() as i64;
    let backup = layout.root.join(format!(".dbackup-adopt-backup-{stamp}"));
    let mut report = AdoptReport {
        workdir: layout.root.clone(),
        watched: watched.clone(),
        disc_size,
        files,
        discs: discs.len() as u64,
        open_disc: open.unwrap_or(0),
        staged_files,
        dry_run: opts.dry_run,
        ..Default::default()
    };
    report.actions.push(format!(
        "back up manifest.db, settings.yaml and hooks/ to {} (staged files hard-linked)",
        backup.display()
    ));
    report.actions.push(format!(
        "add tables settings, deletions, images to manifest.db, keeping its {files} backed-up rows and {} discs as they are",
        discs.len()
    ));
    report.actions.push(format!(
        "record the watched folder {} and disc size {disc_size}",
        watched.display()
    ));
    match open {
        Some(d) if staged_files > 0 => report.actions.push(format!(
            "move the {staged_files} staged files of open disc {d} to {}",
            layout.disc_dir(d).join("files").display()
        )),
        Some(d) => report.actions.push(format!("keep disc {d} open")),
        None => report.actions.push("open the next disc".into()),
    }
    report
        .actions
        .push("remove reservations whose copy never finished (copied=0), as after a crash".into());
    if !watched.is_dir() {
        report.actions.push(format!(
            "note: the watched folder {} does not exist here",
            watched.display()
        ));
    }
    if opts.dry_run {
        return Ok(report);
    }

    // From here on, hold the lock.
    let lock = Lock::acquire(&layout)?;
    std::fs::create_dir_all(&backup).map_err(|e| Error::io(&backup, e))?;
    for name in ["manifest.db", "settings.yaml"] {
        let from = layout.root.join(name);
        std::fs::copy(&from, backup.join(name)).map_err(|e| Error::io(&from, e))?;
    }
    for dir in ["hooks", "staging"] {
        let from = layout.root.join(dir);
        if !from.is_dir() {
            continue;
        }
        for e in walkdir::WalkDir::new(&from).into_iter().flatten() {
            let rel = e.path().strip_prefix(&layout.root).unwrap_or(e.path());
            let to = backup.join(rel);
            if e.file_type().is_dir() {
                std::fs::create_dir_all(&to).map_err(|err| Error::io(&to, err))?;
            } else if e.file_type().is_file() && std::fs::hard_link(e.path(), &to).is_err() {
                std::fs::copy(e.path(), &to).map_err(|err| Error::io(&to, err))?;
            }
        }
    }
    fsutil::sync_filesystem(&backup)?;
    report.backup = Some(backup);

    let settings = Settings {
        watched,
        disc_size,
        excludes: Vec::new(),
        uuid: uuid::Uuid::new_v4().to_string(),
        name: opts.name.clone().unwrap_or_else(|| {
            report
                .watched
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "adopted".into())
        }),
        ecc: false,
    };
    catalog::upgrade_original(&catalog_path, &settings)?;
    if let (Some(d), Some(root)) = (open, staged_root) {
        let target = layout.disc_dir(d).join("files");
        std::fs::create_dir_all(&target).map_err(|e| Error::io(&target, e))?;
        for e in std::fs::read_dir(&root)
            .map_err(|e| Error::io(&root, e))?
            .flatten()
        {
            let name = e.file_name();
            if name.to_str().is_some_and(|n| n.parse::<u64>().is_ok()) && e.path().is_dir() {
                let to = target.join(&name);
                std::fs::rename(e.path(), &to).map_err(|err| Error::io(&to, err))?;
            }
        }
        fsutil::sync_dir(&target)?;
        if root != layout.staging() {
            // The original's now empty `staging/files`.
            let _ = std::fs::remove_dir(&root);
        }
        fsutil::sync_dir(&layout.staging())?;
    }
    std::fs::create_dir_all(layout.isos()).map_err(|e| Error::io(layout.isos(), e))?;
    drop(lock);
    // Opening for writing repairs: leftover reservations go, and a set
    // whose discs are all closed gets an open one.
    let (wd, repairs) = Workdir::open_write(&layout.root)?;
    report.leftover_reservations = repairs.reservations as u64;
    report.open_disc = wd.open_disc()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_originals_settings() {
        let s = parse_settings(
            "---\nwatch_dir: /tmp/watched-dir\ndisc_size: 3525279744\nemail: 'your.email@address.here'\n",
        );
        assert_eq!(s.watch_dir, Some(PathBuf::from("/tmp/watched-dir")));
        assert_eq!(s.disc_size, Some(3_525_279_744));
        assert_eq!(s.email.as_deref(), Some("your.email@address.here"));
        let s = parse_settings("watch_dir: \"/a b/c\"\n# comment\ndisc_size: lots\n");
        assert_eq!(s.watch_dir, Some(PathBuf::from("/a b/c")));
        assert_eq!(s.disc_size, None);
    }
}
