//! Hostile and corrupt images must give `Err`, never a panic or a hang.
mod isocommon;

use dbackup::iso::{Entry, IsoError, IsoReader, Source};
use isocommon::*;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

fn small_image() -> Vec<u8> {
    let mut entries = Vec::new();
    for (path, len) in [
        ("manifest.db", 3000usize),
        ("MD5SUMS", 100),
        ("README.TXT", 10),
        ("files/4/1234", 5000),
        ("files/4/1235", 0),
        ("files/10/1", 1),
        ("deep/a/b/c/d/e/f/g/h/file", 7),
    ] {
        entries.push(Entry {
            path: path.into(),
            source: Source::Bytes(pattern(len as u64, len)),
        });
    }
    let long = format!("long/{}", "z".repeat(200)); // needs a continuation area
    entries.push(Entry {
        path: long,
        source: Source::Bytes(b"long".to_vec()),
    });
    let mut v = Vec::new();
    dbackup::iso::write_image(&mut v, &entries, &opts(), &mut |_| {}).unwrap();
    v
}

/// Opens `img` and, if that works, reads every file to the end.
fn open_and_read(dir: &Path, img: &[u8]) -> Result<(), IsoError> {
    let path = dir.join("t.iso");
    std::fs::write(&path, img).unwrap();
    let r = IsoReader::open(&path)?;
    let mut buf = vec![0u8; 65536];
    for f in r.files() {
        let mut rd = r.reader(f);
        let mut total = 0u64;
        loop {
            match rd.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(_) => break,
            }
        }
        assert!(total <= f.size);
    }
    Ok(())
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn set_both32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    b[at + 4..at + 8].copy_from_slice(&v.to_be_bytes());
}

const PVD: usize = 16 * 2048;

/// Byte offset of the record named `ident` in the directory at `dir_off`.
fn find_record(img: &[u8], dir_off: usize, ident: &[u8]) -> usize {
    let mut off = dir_off;
    loop {
        let rl = img[off] as usize;
        if rl == 0 {
            off = (off / 2048 + 1) * 2048;
            continue;
        }
        let n = img[off + 32] as usize;
        if &img[off + 33..off + 33 + n] == ident {
            return off;
        }
        off += rl;
        assert!(off < dir_off + 8 * 2048, "record {ident:?} not found");
    }
}

fn root_off(img: &[u8]) -> usize {
    le32(img, PVD + 156 + 2) as usize * 2048
}

fn expect_err(dir: &Path, img: &[u8], what: &str) -> IsoError {
    match open_and_read(dir, img) {
        Err(e) => e,
        Ok(()) => panic!("{what}: corrupt image was accepted"),
    }
}

#[test]
fn pristine_small_image_reads() {
    let t = tmp();
    open_and_read(t.path(), &small_image()).unwrap();
}

/// A file of an image: its path, extents and bytes.
type Listed = (String, Vec<(u64, u64)>, Vec<u8>);

/// Lists `img` (the whole image) with our reader.
fn listing(dir: &Path, img: &[u8]) -> Vec<Listed> {
    let path = dir.join("whole.iso");
    std::fs::write(&path, img).unwrap();
    let r = IsoReader::open(&path).unwrap();
    assert_eq!(r.cut_short(), None);
    r.files()
        .iter()
        .map(|f| {
            (
                f.path.clone(),
                f.extents.clone(),
                read_all(&mut r.reader(f)),
            )
        })
        .collect()
}

/// A short image is not a lost image. Cut at every block boundary and at
/// odd bytes around each file: before its 17th block it is no image; once
/// every directory is in (the data starts), it always opens; when it opens,
/// every file is listed, each file whose data lies inside reads whole with
/// its bytes, and exactly those whose data passes the cut are unreadable,
/// reading as an error, never as fewer bytes.
#[test]
fn short_images_lose_only_the_files_past_the_cut() {
    let t = tmp();
    let img = small_image();
    let whole = listing(t.path(), &img);
    let data_start = whole
        .iter()
        .flat_map(|(_, e, _)| e.iter().map(|x| x.0))
        .min()
        .unwrap() as usize;
    let mut cuts: Vec<usize> = (0..img.len() / 2048).map(|b| b * 2048).collect();
    for (_, extents, _) in &whole {
        for &(off, len) in extents {
            let (off, len) = (off as usize, len as usize);
            cuts.extend([off + 1, off + len - 1, off + len, off + len + 1]);
        }
    }
    cuts.extend([1, 100, 17 * 2048 + 5, img.len() - 1, img.len() - 2047]);
    cuts.retain(|&c| c < img.len());
    let mut opened = 0;
    for cut in cuts {
        let path = t.path().join("t.iso");
        std::fs::write(&path, &img[..cut]).unwrap();
        let r = match IsoReader::open(&path) {
            Err(e) => {
                assert!(
                    cut < data_start,
                    "cut at {cut} (data from {data_start}): {e}"
                );
                assert!(
                    matches!(e, IsoError::NotIso { .. } | IsoError::Corrupt { .. }),
                    "cut at {cut}: {e}"
                );
                if cut < 17 * 2048 {
                    assert!(matches!(e, IsoError::NotIso { .. }), "cut at {cut}: {e}");
                }
                continue;
            }
            Ok(r) => r,
        };
        opened += 1;
        assert_eq!(r.cut_short(), Some((cut as u64, img.len() as u64)));
        assert_eq!(r.files().len(), whole.len(), "cut at {cut}");
        for (name, extents, bytes) in &whole {
            let f = r
                .find(name)
                .unwrap_or_else(|| panic!("cut at {cut}: {name} not listed"));
            assert_eq!(&f.extents, extents);
            let past = extents.iter().any(|&(o, l)| o + l > cut as u64);
            let mut data = Vec::new();
            let read = r.reader(f).read_to_end(&mut data);
            if past {
                assert!(
                    matches!(f.unreadable, Some(dbackup::iso::Unreadable::PastEnd { .. })),
                    "cut at {cut}: {name} should be past the end: {f:?}"
                );
                let e = read.expect_err("a file past the end reads as an error");
                assert!(e.to_string().contains("past the end"), "{e}");
            } else {
                assert_eq!(f.unreadable, None, "cut at {cut}: {name}");
                read.unwrap();
                assert_eq!(&data, bytes, "cut at {cut}: {name}");
            }
        }
    }
    assert!(opened > 10, "only {opened} cuts opened");
}

#[test]
fn garbage_is_not_iso() {
    let t = tmp();
    assert!(matches!(
        expect_err(t.path(), &[], "empty"),
        IsoError::NotIso { .. }
    ));
    let junk = pattern(77, 200_000);
    assert!(matches!(
        expect_err(t.path(), &junk, "junk"),
        IsoError::NotIso { .. }
    ));
    let zeros = vec![0u8; 200_000];
    assert!(matches!(
        expect_err(t.path(), &zeros, "zeros"),
        IsoError::NotIso { .. }
    ));
}

#[test]
fn targeted_corruptions_are_errors() {
    let t = tmp();
    let d = t.path();
    let base = small_image();
    let root = root_off(&base);
    let case = |f: &dyn Fn(&mut Vec<u8>), what: &str| {
        let mut img = base.clone();
        f(&mut img);
        let e = expect_err(d, &img, what);
        eprintln!("{what}: {e}");
        e
    };
    let e = case(&|i| i[PVD + 1] = b'X', "bad signature");
    assert!(matches!(e, IsoError::NotIso { .. }));
    let e = case(
        &|i| i[PVD + 128..PVD + 132].copy_from_slice(&[0, 2, 2, 0]),
        "block size 512",
    );
    assert!(matches!(e, IsoError::Unsupported { .. }));
    // A volume space larger than the file is a short image: every file
    // lies inside, so every file is read.
    let mut huge = base.clone();
    set_both32(&mut huge, PVD + 80, u32::MAX);
    open_and_read(d, &huge).unwrap();
    // An interleaved file (a file unit size) is unreadable alone.
    let mut inter = base.clone();
    let r = find_record(&inter, root, b"README.TXT;1");
    inter[r + 26] = 1;
    let path = d.join("interleaved.iso");
    std::fs::write(&path, &inter).unwrap();
    let reader = IsoReader::open(&path).unwrap();
    let f = reader.find("README.TXT").unwrap();
    assert_eq!(
        f.unreadable,
        Some(dbackup::iso::Unreadable::Interleaved),
        "{f:?}"
    );
    assert!(reader.reader(f).read_to_end(&mut Vec::new()).is_err());
    let md5sums = reader.find("MD5SUMS").unwrap();
    assert_eq!(read_all(&mut reader.reader(md5sums)), pattern(100, 100));
    case(
        &|i| set_both32(i, PVD + 156 + 2, 0x00FF_FFFF),
        "root beyond end",
    );
    case(
        &|i| set_both32(i, PVD + 156 + 10, u32::MAX),
        "root size huge",
    );
    case(&|i| i[root] = 5, "record length too short");
    case(
        &|i| i[root] = 255,
        "record crosses block or runs past its end",
    );
    case(
        &|i| {
            let r = find_record(i, root, b"FILES");
            let l = le32(i, PVD + 158);
            set_both32(i, r + 2, l)
        },
        "directory loop",
    );
    case(
        &|i| {
            let r = find_record(i, root, b"MD5SUMS.;1");
            set_both32(i, r + 10, u32::MAX)
        },
        "file beyond end",
    );
    case(
        &|i| {
            let r = find_record(i, root, b"README.TXT;1");
            i[r + 25] |= 0x80
        },
        "multi-extent interrupted",
    );
    case(
        &|i| {
            let files = le32(i, find_record(i, root, b"FILES") + 2) as usize * 2048;
            let four = le32(i, find_record(i, files, b"4") + 2) as usize * 2048;
            let r = find_record(i, four, b"1235.;1");
            i[r + 25] |= 0x80
        },
        "multi-extent unterminated",
    );
    case(
        &|i| {
            let r = find_record(i, root, b"README.TXT;1");
            let nm = r + i[r..r + 255].windows(2).position(|w| w == b"NM").unwrap();
            i[nm + 6] = b'/';
        },
        "slash in Rock Ridge name",
    );
    case(
        &|i| {
            let r = find_record(i, root, b"README.TXT;1");
            let nm = r + i[r..r + 255].windows(2).position(|w| w == b"NM").unwrap();
            i[nm + 5..nm + 15].copy_from_slice(b"..\0\0\0\0\0\0\0\0");
            i[nm + 2] = 7;
        },
        "dot-dot Rock Ridge name",
    );
    // The 200-byte name of long/zzz... spills into a continuation area.
    let long_ce = |i: &[u8]| {
        let dir = le32(i, find_record(i, root, b"LONG") + 2) as usize * 2048;
        dir + i[dir..dir + 2048]
            .windows(4)
            .position(|w| w == b"CE\x1c\x01")
            .unwrap()
    };
    case(
        &|i| {
            let ce = long_ce(i);
            set_both32(i, ce + 4, 0x00FF_FFFF)
        },
        "continuation area beyond end",
    );
    case(
        &|i| {
            let ce = long_ce(i);
            set_both32(i, ce + 20, 0x0100_0000)
        },
        "continuation area too long",
    );
    case(
        &|i| {
            // A CE entry that points at itself: must stop, not loop.
            let ce = long_ce(i);
            set_both32(i, ce + 4, (ce / 2048) as u32);
            set_both32(i, ce + 12, (ce % 2048) as u32);
            set_both32(i, ce + 20, 28);
        },
        "continuation loop",
    );
    case(&|i| i[18 * 2048] = 3, "unterminated descriptor set");
    case(
        &|i| {
            // Two extents of one file, each the whole image: a file larger
            // than its image (repeated, such extents make a small image
            // hold terabytes).
            let files = le32(i, find_record(i, root, b"FILES") + 2) as usize * 2048;
            let four = le32(i, find_record(i, files, b"4") + 2) as usize * 2048;
            let first = find_record(i, four, b"1234.;1");
            let second = find_record(i, four, b"1235.;1");
            let rl = i[first] as usize;
            assert_eq!(rl, i[second] as usize);
            i.copy_within(first..first + rl, second);
            let whole = i.len() as u32;
            for r in [first, second] {
                set_both32(i, r + 2, 0);
                set_both32(i, r + 10, whole);
            }
            i[first + 25] |= 0x80;
        },
        "multi-extent file larger than the image",
    );
}

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn fuzz(iterations: u64, seed: u64) {
    let t = tmp();
    let base = small_image();
    let r = IsoReader::open(&{
        let p = t.path().join("base.iso");
        std::fs::write(&p, &base).unwrap();
        p
    })
    .unwrap();
    // Metadata: descriptors, path tables, directories, continuation areas.
    let meta_end = r
        .files()
        .iter()
        .flat_map(|f| f.extents.iter())
        .map(|e| e.0)
        .min()
        .unwrap() as usize;
    let mut next = rng(seed);
    let (mut errs, mut oks) = (0, 0);
    for it in 0..iterations {
        let mut img = base.clone();
        if next().is_multiple_of(4) {
            // Hide Rock Ridge (break the SP entry) so the Joliet tree is walked.
            let root = root_off(&img);
            img[root + 34] = b'X';
        }
        for _ in 0..1 + next() % 8 {
            let at = PVD + (next() as usize) % (meta_end - PVD);
            img[at] = match next() % 4 {
                0 => 0xFF,
                1 => 0,
                _ => next() as u8,
            };
        }
        if next().is_multiple_of(16) {
            img.truncate((next() as usize) % img.len());
        }
        let start = Instant::now();
        match open_and_read(t.path(), &img) {
            Ok(()) => oks += 1,
            Err(_) => errs += 1,
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "iteration {it} took too long"
        );
    }
    eprintln!("fuzz: {errs} errors, {oks} accepted");
    assert!(
        errs > 0 && oks > 0,
        "expected a mix of rejected and harmless corruptions"
    );
}

#[test]
fn random_corruption_never_panics() {
    fuzz(3000, 0x5EED);
}

/// Longer run: `cargo test --release -- --ignored long_random_corruption`.
#[test]
#[ignore]
fn long_random_corruption() {
    fuzz(200_000, 0xDEAD_BEEF);
}
