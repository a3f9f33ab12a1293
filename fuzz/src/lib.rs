//! What the fuzz targets share: a scratch folder per input, and the walk a
//! recovery tool makes over a manifest read from a disc.

use std::path::Path;

use dbackup::catalog::manifest::Manifest;
use dbackup::history::{self, Matcher};

/// A fresh folder for one input, in memory when the machine has a tmpfs
/// at `/dev/shm` (restores flush the filesystem; on a tmpfs that is free).
pub fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("dbackup-fuzz-");
        b
    };
    if shm.is_dir() {
        if let Ok(d) = builder.tempdir_in(shm) {
            return d;
        }
    }
    builder.tempdir().expect("cannot create a scratch folder")
}

/// Patterns the history walk is tried with: every file, names in any
/// folder, paths from the root, case folded or not.
const PATTERNS: &[(&[&str], bool)] = &[
    (&[], false),
    (&["*.jpg"], true),
    (&["a/**"], false),
    (&["**/*[0-9]?", "x"], false),
];

/// Everything `find`, `restore` and `lost` read from a manifest: discs,
/// identity, every version in both orders, deletions, each disc's
/// versions, latest ids, the history as of a few times, the tree's
/// folders, links and attributes, and the integrity check. Nothing here may panic, whatever the manifest holds.
pub fn walk(m: &Manifest, as_of: Option<f64>) {
    let discs = m.discs().unwrap_or_default();
    let _ = m.this_disc();
    let identity = m.identity();
    let _ = identity.describe();
    let _ = identity.same_set(&identity);
    let _ = m.setting("uuid");
    let mut names = Vec::new();
    let _ = m.for_each_version(&mut |v| {
        let _ = v.recorded_mtime().as_f64();
        if names.len() < 16 {
            names.push(v.name);
        }
    });
    let _ = m.for_each_version_by_name(None, &mut |_| {});
    let _ = m.deletions();
    for d in discs.iter().take(16) {
        let _ = m.disc_versions(d.id);
    }
    for n in &names {
        let _ = dbackup::names::display(n, true);
        let _ = dbackup::restore::name_parts(n);
    }
    for (patterns, ignore_case) in PATTERNS {
        let patterns: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        let Ok(matcher) = Matcher::new(&patterns, *ignore_case) else {
            continue;
        };
        for when in [None, as_of] {
            if let Ok(sel) = history::select(m, &matcher, when) {
                for f in &sel.files {
                    let _ = f.current();
                    let _ = f.display(true);
                }
            }
        }
    }
    if let Ok(tree) = m.tree() {
        let _ = tree.unusable();
        let mut ids = Vec::new();
        let _ = tree.for_each_entry(&mut |e| {
            let _ = dbackup::restore::name_parts(&e.name);
            if ids.len() < 16 {
                ids.push(e.id);
            }
        });
        for id in ids.into_iter().chain([0, 1, -1, i64::MAX]) {
            let _ = tree.file_attrs(id);
        }
        for (patterns, ignore_case) in PATTERNS {
            let patterns: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
            let Ok(matcher) = Matcher::new(&patterns, *ignore_case) else {
                continue;
            };
            for when in [None, as_of] {
                let _ = history::for_each_entry(&tree, &matcher, when, &mut |_| {});
            }
        }
    }
    let _ = m.integrity_check();
}

/// Runs `find` and `lost --manifest ... --what-if` as the tools do on the
/// disc folder `disc` (its `manifest.db` at the root). `origin` is an
/// empty folder standing for the watched folder.
pub fn recovery_tools(disc: &Path, origin: &Path, as_of: Option<f64>) {
    use dbackup::find::{find, FindOptions};
    use dbackup::lost::{lost, LostOptions, Source};
    for deleted in [false, true] {
        let _ = find(&FindOptions {
            discs: vec![disc.to_path_buf()],
            patterns: Vec::new(),
            ignore_case: false,
            all_versions: true,
            as_of,
            deleted,
        });
    }
    let manifest = disc.join(dbackup::disc::MANIFEST);
    let discs: Vec<i64> = Manifest::open(&manifest)
        .and_then(|m| m.discs())
        .map(|ds| {
            ds.iter()
                .filter(|d| d.completed.is_some())
                .map(|d| d.id)
                .take(8)
                .collect()
        })
        .unwrap_or_default();
    let _ = lost(
        &LostOptions {
            source: Source::Manifest(manifest),
            discs,
            origin: Some(origin.to_path_buf()),
            what_if: true,
            restage: false,
            found: false,
            copy: None,
        },
        &dbackup::progress::Progress::hidden(),
    );
}
