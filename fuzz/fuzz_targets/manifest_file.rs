//! Arbitrary bytes as a disc's `manifest.db`: opened as the recovery tools
//! open it, then walked as they walk it (versions, deletions, history as of
//! a time, identity), and `find` and `lost` run against it. A corrupt or
//! hostile SQLite file must give an error or invalid rows, never a panic.

#![no_main]

use dbackup::catalog::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = dbackup_fuzz::scratch();
    let disc = dir.path().join("disc");
    let origin = dir.path().join("origin");
    std::fs::create_dir_all(&disc).expect("cannot create the disc folder");
    std::fs::create_dir_all(&origin).expect("cannot create the origin folder");
    let path = disc.join(dbackup::disc::MANIFEST);
    std::fs::write(&path, data).expect("cannot write the manifest");

    let Ok(manifest) = Manifest::open(&path) else {
        return;
    };
    dbackup_fuzz::walk(&manifest, Some(1.5e9));
    drop(manifest);
    dbackup_fuzz::recovery_tools(&disc, &origin, Some(1.5e9));
});
