//! Arbitrary bytes as a disc image: our ISO reader lists it, every file is
//! read (bounded), and the `medium` layer opens it as a disc (manifest
//! extracted and opened, stored files listed and read). A hostile image
//! must give an error, never a panic, a hang or a huge allocation.

#![no_main]

use std::io::Read;

use dbackup::iso::IsoReader;
use dbackup::medium::{DiscSet, Medium};
use libfuzzer_sys::fuzz_target;

/// Bytes read from the files of one image at most: overlapping extents
/// can make a small image hold many large files.
const READ_BUDGET: u64 = 8 << 20;

fn read_bounded(r: impl Read, budget: &mut u64) {
    let mut sink = Vec::new();
    let got = r.take(*budget).read_to_end(&mut sink).unwrap_or(0);
    *budget = budget.saturating_sub(got as u64);
}

fuzz_target!(|data: &[u8]| {
    let dir = dbackup_fuzz::scratch();
    let image = dir.path().join("disc.iso");
    std::fs::write(&image, data).expect("cannot write the image");

    let mut budget = READ_BUDGET;
    if let Ok(reader) = IsoReader::open(&image) {
        let _ = (reader.volume_id(), reader.volume_set_id(), reader.names());
        // A file fits the image; in an image cut short, a file past its
        // end fits the volume space it should have, and is unreadable.
        let image = data.len() as u64;
        let space = reader.cut_short().map_or(image, |(_, volume)| volume);
        for f in reader.files() {
            assert!(
                f.size <= space && (f.size <= image || f.unreadable.is_some()),
                "{}: {} bytes, larger than the image ({image} bytes)",
                f.path,
                f.size
            );
            assert!(!f.path.starts_with('/') && !f.path.split('/').any(|c| c == ".."));
            assert_eq!(reader.find(&f.path).map(|g| &g.path), Some(&f.path));
            read_bounded(reader.reader(f), &mut budget);
        }
        let _ = reader.find(dbackup::disc::MANIFEST);
    }

    if let Ok(medium) = Medium::open_image(&image) {
        let _ = medium.label();
        if let Ok(stored) = medium.stored_files() {
            for s in stored.iter().take(64) {
                if let Ok(r) = medium.open(s) {
                    read_bounded(r, &mut budget);
                }
            }
        }
        for id in [0, 1, 2, 255, 256, -1, i64::MAX, i64::MIN] {
            let _ = medium.stored(id);
        }
        dbackup_fuzz::walk(&medium.manifest, Some(1.0e9));
        drop(medium);
        let _ = DiscSet::open(&[image.clone()]);
    }
});
