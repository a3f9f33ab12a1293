//! Images written by `iso::write_image`, checked with independent readers
//! (libarchive's bsdtar, 7-Zip, xorriso/libisofs, isoinfo) and with our reader;
//! and images made by xorriso/genisoimage read with our reader.
mod isocommon;

use dbackup::iso::{
    image_size, write_image, Entry, IsoError, IsoReader, Names, Source, WriteOptions,
};
use isocommon::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Writes the sample tree to `dir/img.iso`; returns (image path, expected tree).
fn sample_image(dir: &Path) -> (std::path::PathBuf, BTreeMap<String, Vec<u8>>) {
    let tree = sample();
    let entries = build(&dir.join("src"), &tree);
    let img = dir.join("img.iso");
    let (n, progress) = write_to(&img, &entries, &opts());
    assert_eq!(n, std::fs::metadata(&img).unwrap().len());
    assert_eq!(n % 2048, 0);
    assert_eq!(n, image_size(&entries, &opts()).unwrap());
    let total: u64 = tree.values().map(|v| v.len() as u64).sum();
    assert_eq!(progress, total, "progress must report every file byte once");
    (img, tree)
}

#[test]
fn our_reader_round_trips() {
    let t = tmp();
    let (img, tree) = sample_image(t.path());
    let r = IsoReader::open(&img).unwrap();
    assert_eq!(r.volume_id(), "DBACKUP_0001");
    assert_eq!(r.volume_set_id(), "6f1c1d2e-8a4b-4c3d-9e2f-0123456789ab");
    assert_eq!(r.names(), Names::RockRidge);
    let got: BTreeSet<&str> = r.files().iter().map(|f| f.path.as_str()).collect();
    let want: BTreeSet<&str> = tree.keys().map(String::as_str).collect();
    assert_eq!(got, want);
    for (path, data) in &tree {
        let f = r.find(path).unwrap();
        assert_eq!(f.size, data.len() as u64, "{path}");
        assert_eq!(&read_all(&mut r.reader(f)), data, "{path}");
    }
    assert!(r.find("files/4").is_none());
    assert!(r.find("nope").is_none());
}

#[test]
fn bsdtar_lists_and_extracts() {
    let t = tmp();
    let (img, tree) = sample_image(t.path());
    let listed: BTreeSet<String> = run_stdout("bsdtar", &["-tf", p(&img)])
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .collect();
    for path in tree.keys() {
        assert!(
            listed.contains(path),
            "bsdtar does not list {path}: {listed:?}"
        );
    }
    let out = t.path().join("bsdtar");
    std::fs::create_dir(&out).unwrap();
    run("bsdtar", &["-xf", p(&img), "-C", p(&out)]);
    assert_eq!(read_tree(&out), tree);
}

/// 7-Zip reads the Joliet tree, whose names are limited to 64 UCS-2 characters.
fn joliet_view(path: &str) -> String {
    path.split('/')
        .map(|c| {
            let u: Vec<u16> = c.encode_utf16().take(64).collect();
            String::from_utf16(&u).unwrap()
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn sevenzip_lists_and_extracts() {
    let t = tmp();
    let (img, tree) = sample_image(t.path());
    let want: BTreeMap<String, Vec<u8>> = tree
        .iter()
        .map(|(k, v)| (joliet_view(k), v.clone()))
        .collect();
    let listing = run_stdout("7z", &["l", "-slt", p(&img)]);
    let mut files = BTreeSet::new();
    let mut path = None;
    for line in listing.lines() {
        if let Some(x) = line.strip_prefix("Path = ") {
            path = Some(x.to_string());
        }
        if line == "Folder = -" {
            files.insert(path.take().unwrap());
        }
    }
    assert_eq!(files, want.keys().cloned().collect::<BTreeSet<_>>());
    let out = t.path().join("7z");
    run("7z", &["x", "-y", &format!("-o{}", p(&out)), p(&img)]);
    assert_eq!(read_tree(&out), want);
}

#[test]
fn xorriso_lists_and_extracts() {
    let t = tmp();
    let (img, tree) = sample_image(t.path());
    let toc = run("xorriso", &["-indev", p(&img), "-toc"]);
    for bad in ["WARNING", "SORRY", "FAILURE", "FATAL", "MISHAP"] {
        assert!(!toc.contains(bad), "xorriso complains: {toc}");
    }
    let listed: BTreeSet<String> =
        run_stdout("xorriso", &["-indev", p(&img), "-find", "/", "-type", "f"])
            .lines()
            .map(|l| l.trim_matches('\'').trim_start_matches('/').to_string())
            .collect();
    assert_eq!(listed, tree.keys().cloned().collect::<BTreeSet<_>>());
    let out = t.path().join("xorriso");
    run(
        "xorriso",
        &[
            "-osirrox",
            "on",
            "-indev",
            p(&img),
            "-extract",
            "/",
            p(&out),
        ],
    );
    assert_eq!(read_tree(&out), tree);
}

#[test]
fn isoinfo_reports_volume_and_path_tables() {
    let t = tmp();
    let (img, _) = sample_image(t.path());
    let d = run_stdout("isoinfo", &["-d", "-i", p(&img)]);
    assert!(d.contains("Volume id: DBACKUP_0001"), "{d}");
    assert!(d.contains("Logical block size is: 2048"), "{d}");
    assert!(
        d.contains("Volume set id: 6f1c1d2e-8a4b-4c3d-9e2f-0123456789ab"),
        "{d}"
    );
    assert!(d.contains("Application id: DBACKUP TEST"), "{d}");
    assert!(d.contains("Joliet with UCS level 3 found"), "{d}");
    assert!(d.contains("Rock Ridge signatures version 1 found"), "{d}");
    let blocks = std::fs::metadata(&img).unwrap().len() / 2048;
    assert!(d.contains(&format!("Volume size is: {blocks}")), "{d}");
    // Path tables (isoinfo reads the L table of the PVD, and of the SVD with -J).
    let pt = run_stdout("isoinfo", &["-p", "-i", p(&img)]);
    for name in ["DEEP", "FILES", "LONG", " 4", " 10", " I"] {
        assert!(pt.contains(name), "primary path table lacks {name}: {pt}");
    }
    let ptj = run_stdout("isoinfo", &["-p", "-J", "-i", p(&img)]);
    for name in ["deep", "files", "long"] {
        assert!(ptj.contains(name), "Joliet path table lacks {name}: {ptj}");
    }
    // Rock Ridge listing keeps exact names.
    let l = run_stdout("isoinfo", &["-R", "-l", "-i", p(&img)]);
    for name in ["manifest.db", "README.TXT", "readme.txt", "MD5SUMS", "1234"] {
        assert!(l.contains(name), "isoinfo -R -l lacks {name}");
    }
}

#[test]
fn deterministic_and_order_independent() {
    let t = tmp();
    let tree = sample();
    let mut entries = build(&t.path().join("src"), &tree);
    let a = t.path().join("a.iso");
    let b = t.path().join("b.iso");
    write_to(&a, &entries, &opts());
    entries.reverse();
    // Touch every source file: host mtimes must not leak into the image.
    for e in &entries {
        if let Source::File(p) = &e.source {
            let f = std::fs::File::options().append(true).open(p).unwrap();
            f.set_modified(std::time::SystemTime::now()).unwrap();
        }
    }
    write_to(&b, &entries, &opts());
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "images differ"
    );
    // Writing into memory gives the same bytes too.
    let mut mem = Vec::new();
    write_image(&mut mem, &entries, &opts(), &mut |_| {}).unwrap();
    assert!(mem == std::fs::read(&a).unwrap());
    // The timestamp is the only date source.
    let mut o = opts();
    o.timestamp += 1;
    let mut other = Vec::new();
    write_image(&mut other, &entries, &o, &mut |_| {}).unwrap();
    assert!(other != mem);
}

#[test]
fn empty_image() {
    let t = tmp();
    let img = t.path().join("empty.iso");
    let (n, prog) = write_to(&img, &[], &opts());
    assert_eq!(prog, 0);
    assert!(n >= 20 * 2048);
    let r = IsoReader::open(&img).unwrap();
    assert!(r.files().is_empty());
    run("xorriso", &["-indev", p(&img), "-toc"]);
    assert!(run_stdout("bsdtar", &["-tf", p(&img)])
        .lines()
        .all(|l| l == "."));
}

/// A tree made with an external tool, read by our reader.
fn check_external(
    tree: BTreeMap<String, Vec<u8>>,
    args: &[&str],
    names: Names,
    expect: impl Fn(&str) -> String,
) {
    let t = tmp();
    let src = t.path().join("src");
    build(&src, &tree);
    // manifest.db comes from memory in `build`; put it on disk for the tool.
    std::fs::write(src.join("manifest.db"), &tree["manifest.db"]).unwrap();
    let img = t.path().join("ext.iso");
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["-o", p(&img), p(&src)]);
    run(a[0], &a[1..]);
    let r = IsoReader::open(&img).unwrap();
    assert_eq!(r.names(), names);
    let got: BTreeMap<String, Vec<u8>> = r
        .files()
        .iter()
        .map(|f| (f.path.clone(), read_all(&mut r.reader(f))))
        .collect();
    let want: BTreeMap<String, Vec<u8>> =
        tree.iter().map(|(k, v)| (expect(k), v.clone())).collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    assert!(got == want);
}

#[test]
fn reads_xorriso_rock_ridge_joliet_image() {
    // Default xorriso relocates the 11-level deep directory (RRIP CL/RE).
    check_external(
        sample(),
        &[
            "xorriso",
            "-as",
            "mkisofs",
            "-quiet",
            "-r",
            "-J",
            "-iso-level",
            "3",
        ],
        Names::RockRidge,
        |k| k.to_string(),
    );
}

#[test]
fn reads_genisoimage_rock_ridge_joliet_image() {
    check_external(
        sample(),
        &["genisoimage", "-quiet", "-r", "-J"],
        Names::RockRidge,
        |k| k.to_string(),
    );
}

#[test]
fn reads_joliet_only_image() {
    // (xorriso always adds Rock Ridge; genisoimage without -r does not.)
    check_external(
        sample(),
        &["genisoimage", "-quiet", "-J", "-joliet-long", "-D"],
        Names::Joliet,
        |k| {
            k.split('/')
                .map(|c| c.chars().take(103).collect::<String>())
                .collect::<Vec<_>>()
                .join("/")
        },
    );
}

#[test]
fn reads_plain_iso9660_image() {
    let mut tree = BTreeMap::new();
    for (k, v) in [
        ("A.TXT", "a"),
        ("MD5SUMS", "m"),
        ("DIR/B.DAT", "b"),
        ("DIR/SUB/C", "c"),
    ] {
        tree.insert(k.to_string(), v.as_bytes().to_vec());
    }
    tree.insert("manifest.db".into(), b"manifest".to_vec());
    check_external(tree, &["genisoimage", "-quiet"], Names::Iso9660, |k| {
        if k == "manifest.db" {
            "MANIFEST.DB".into()
        } else {
            k.to_string()
        }
    });
}

#[test]
fn write_rejects_bad_input() {
    let t = tmp();
    let f = t.path().join("f");
    std::fs::write(&f, b"x").unwrap();
    let e = |path: &str| Entry {
        path: path.into(),
        source: Source::Bytes(b"x".to_vec()),
    };
    let w = |entries: &[Entry], o: &WriteOptions| {
        write_image(std::io::sink(), entries, o, &mut |_| {}).unwrap_err()
    };
    for bad in ["", "/abs", "a//b", "a/", "a/./b", "../x", "a/../b", "nul\0"] {
        assert!(
            matches!(w(&[e(bad)], &opts()), IsoError::InvalidPath { .. }),
            "{bad:?}"
        );
    }
    let long = "x".repeat(256);
    assert!(matches!(
        w(&[e(&long)], &opts()),
        IsoError::InvalidPath { .. }
    ));
    assert!(
        matches!(w(&[e("a"), e("a")], &opts()), IsoError::DuplicatePath { path } if path == "a")
    );
    assert!(matches!(
        w(&[e("a"), e("a/b")], &opts()),
        IsoError::PathConflict { .. }
    ));
    assert!(matches!(
        w(&[e("a/b"), e("a")], &opts()),
        IsoError::PathConflict { .. }
    ));
    for vid in ["", "lower", "WITH SPACE", &"A".repeat(33)] {
        let mut o = opts();
        o.volume_id = vid.into();
        assert!(
            matches!(
                w(&[], &o),
                IsoError::InvalidOption {
                    field: "volume_id",
                    ..
                }
            ),
            "{vid:?}"
        );
    }
    let mut o = opts();
    o.volume_set_id = "x".repeat(129);
    assert!(matches!(
        w(&[], &o),
        IsoError::InvalidOption {
            field: "volume_set_id",
            ..
        }
    ));
    let mut o = opts();
    o.application_id = "caf\u{e9}".into();
    assert!(matches!(
        w(&[], &o),
        IsoError::InvalidOption {
            field: "application_id",
            ..
        }
    ));
    let missing = t.path().join("missing");
    let err = w(
        &[Entry {
            path: "m".into(),
            source: Source::File(missing.clone()),
        }],
        &opts(),
    );
    assert!(
        matches!(&err, IsoError::SourceIo { path, .. } if *path == missing),
        "{err}"
    );
    let dir = Entry {
        path: "d".into(),
        source: Source::File(t.path().to_path_buf()),
    };
    assert!(matches!(w(&[dir], &opts()), IsoError::SourceIo { .. }));
}

#[test]
fn write_detects_source_files_changing_size() {
    let t = tmp();
    let a = t.path().join("a");
    let b = t.path().join("b");
    std::fs::write(&a, vec![1u8; 5000]).unwrap();
    for (grow, expect_found_more) in [(true, true), (false, false)] {
        std::fs::write(&b, vec![2u8; 5000]).unwrap();
        let entries = vec![
            Entry {
                path: "a".into(),
                source: Source::File(a.clone()),
            },
            Entry {
                path: "b".into(),
                source: Source::File(b.clone()),
            },
        ];
        let bb = b.clone();
        let mut done = false;
        // "a" is written first; while it is, "b" changes size.
        let mut progress = move |_n: u64| {
            if !done {
                let f = std::fs::File::options().write(true).open(&bb).unwrap();
                f.set_len(if grow { 6000 } else { 100 }).unwrap();
                done = true;
            }
        };
        let err = write_image(std::io::sink(), &entries, &opts(), &mut progress).unwrap_err();
        match err {
            IsoError::SourceChanged {
                path,
                expected,
                found,
            } => {
                assert_eq!(path, b);
                assert_eq!(expected, 5000);
                assert_eq!(found > expected, expect_found_more);
            }
            other => panic!("unexpected {other}"),
        }
    }
}

#[test]
fn write_reports_output_errors() {
    struct Full(usize);
    impl std::io::Write for Full {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.0 < b.len() {
                return Err(std::io::Error::other("disc full"));
            }
            self.0 -= b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let entries = vec![Entry {
        path: "x".into(),
        source: Source::Bytes(vec![0; 100_000]),
    }];
    let err = write_image(Full(60_000), &entries, &opts(), &mut |_| {}).unwrap_err();
    assert!(matches!(err, IsoError::Output(_)));
}

#[test]
fn many_files_and_name_collisions() {
    // Names that collide once mapped to ISO 9660 / Joliet identifiers.
    let mut entries = Vec::new();
    let mut want = BTreeMap::new();
    for i in 0..300u32 {
        for name in [
            format!("{i}"),
            format!("Name-{i}.txt"),
            format!("name_{i}.TXT"),
            format!("name+{i}.txt"),
        ] {
            let path = format!("files/{}/{}", i % 7, name);
            let data = pattern(u64::from(i), (i as usize * 37) % 5000);
            want.insert(path.clone(), data.clone());
            entries.push(Entry {
                path,
                source: Source::Bytes(data),
            });
        }
    }
    let long = |c: char, tail: &str| format!("{}{tail}", c.to_string().repeat(70));
    for tail in ["1", "2", "3"] {
        let path = format!("j/{}", long('q', tail)); // collide after 64 Joliet chars
        want.insert(path.clone(), tail.as_bytes().to_vec());
        entries.push(Entry {
            path,
            source: Source::Bytes(tail.as_bytes().to_vec()),
        });
    }
    let t = tmp();
    let img = t.path().join("many.iso");
    write_to(&img, &entries, &opts());
    let r = IsoReader::open(&img).unwrap();
    let got: BTreeMap<String, Vec<u8>> = r
        .files()
        .iter()
        .map(|f| (f.path.clone(), read_all(&mut r.reader(f))))
        .collect();
    assert!(got == want);
    let out = t.path().join("x");
    run(
        "xorriso",
        &[
            "-osirrox",
            "on",
            "-indev",
            p(&img),
            "-extract",
            "/",
            p(&out),
        ],
    );
    assert!(read_tree(&out) == want);
    let out = t.path().join("b");
    std::fs::create_dir(&out).unwrap();
    run("bsdtar", &["-xf", p(&img), "-C", p(&out)]);
    assert!(read_tree(&out) == want);
    // 7-Zip (Joliet): every file is present, distinct, with the right bytes.
    let out = t.path().join("7");
    run("7z", &["x", "-y", &format!("-o{}", p(&out)), p(&img)]);
    let seven = read_tree(&out);
    assert_eq!(seven.len(), want.len());
    let toc = run("xorriso", &["-indev", p(&img), "-toc"]);
    assert!(!toc.contains("WARNING") && !toc.contains("SORRY"), "{toc}");
}

#[test]
fn thousands_of_names_with_a_long_common_prefix() {
    // All map to the same 30-char ISO name and 64-char Joliet name.
    let prefix = "a_very_long_common_prefix_shared_by_every_chunk_file_in_this_directory_";
    let entries: Vec<Entry> = (0..20_000)
        .map(|i| Entry {
            path: format!("files/{prefix}{i:05}.chunk"),
            source: Source::Bytes(format!("{i}").into_bytes()),
        })
        .collect();
    let t = tmp();
    let img = t.path().join("prefix.iso");
    let start = std::time::Instant::now();
    write_to(&img, &entries, &opts());
    assert!(
        start.elapsed().as_secs() < 20,
        "writer too slow: {:?}",
        start.elapsed()
    );
    let r = IsoReader::open(&img).unwrap();
    assert_eq!(r.files().len(), entries.len());
    let f = r.find(&format!("files/{prefix}12345.chunk")).unwrap();
    assert_eq!(read_all(&mut r.reader(f)), b"12345");
    let listed = run_stdout("bsdtar", &["-tf", p(&img)]);
    assert_eq!(
        listed.lines().filter(|l| l.ends_with(".chunk")).count(),
        entries.len()
    );
    let toc = run("xorriso", &["-indev", p(&img), "-toc"]);
    assert!(!toc.contains("WARNING") && !toc.contains("SORRY"), "{toc}");
}

/// The last file is followed by exactly `PADDING_BLOCKS` zero blocks, inside
/// the volume space (the image is its volume space, as isoinfo reports);
/// bsdtar, 7z and xorriso read the padded image (the tests above extract
/// it), and xorriso checks it to its end without complaint.
#[test]
fn images_end_with_padding_inside_the_volume_space() {
    let t = tmp();
    let (img, _) = sample_image(t.path());
    let bytes = std::fs::read(&img).unwrap();
    let r = IsoReader::open(&img).unwrap();
    let data_end = r
        .files()
        .iter()
        .flat_map(|f| f.extents.iter().map(|&(o, l)| o + l))
        .max()
        .unwrap()
        .div_ceil(2048)
        * 2048;
    let pad = dbackup::iso::PADDING_BLOCKS * 2048;
    assert_eq!(bytes.len() as u64, data_end + pad);
    assert!(bytes[data_end as usize..].iter().all(|&b| b == 0));
    let pvd_blocks = u32::from_le_bytes(bytes[16 * 2048 + 80..16 * 2048 + 84].try_into().unwrap());
    assert_eq!(u64::from(pvd_blocks) * 2048, bytes.len() as u64);
    let checked = run("xorriso", &["-indev", p(&img), "-check_media", "--"]);
    let blocks = bytes.len() / 2048;
    assert!(
        checked.contains(&format!("0 , {blocks:>10} , + good")),
        "{checked}"
    );
}
