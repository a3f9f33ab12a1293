//! ISO 9660 images for dbackup discs: a streaming writer and a hardened reader.
//!
//! This module owns the on-disc format of a dbackup volume: ECMA-119 (ISO 9660)
//! interchange level 3 with Rock Ridge (SUSP SP/CE/ER and RRIP PX/TF/NM, ER
//! "RRIP_1991A" as mkisofs and xorriso write it) so names keep their exact
//! bytes and case, plus a Joliet tree (UCS-2 level 3, names up to 64
//! characters) for readers that ignore Rock Ridge (7-Zip, Windows). Files of
//! 4 GiB and more become multi-extent files: several directory records, all but
//! the last flagged multi-extent, each extent but the last 0xFFFFF800 bytes.
//!
//! The writer is [`writer`], the reader [`reader`]; this module holds what
//! both share: the block size, the entry and option types, the error type
//! and the byte and date helpers.
//!
//! Why our own code and not `hadris-iso =3.0.0-rc.2`: we evaluated it and it
//! works (bsdtar, 7z and xorriso read its level 3 + Rock Ridge + Joliet output,
//! it is deterministic, streams in 64 KiB chunks, and its reader survived 60k
//! mutated images). But its writer targets a positional block device, not
//! `std::io::Write` (an adapter must rely on its write order; its own
//! `FileDevice` fsyncs at the end and ran at 0.57x xorriso on a 4.5 GiB image),
//! it has no file-data progress hook, its reader is a generic node/cursor
//! filesystem API rather than files with byte extents, and it would pin an
//! exact pre-release pulling ~35k lines over seven crates (plus async-lock,
//! event-listener, spin, bytemuck and a proc-macro chain). A backup format that
//! must stay readable for decades is better served by code we own, checked
//! against three independent readers (libarchive, 7-Zip, libisofs).

mod reader;
mod writer;

pub use reader::{IsoFile, IsoFileReader, IsoReader, Names, Unreadable};
pub use writer::{image_size, write_image};

use std::io;
use std::path::PathBuf;

/// Logical block (sector) size; the only one this module writes or reads.
pub const BLOCK: u64 = 2048;
const BLOCK_US: usize = 2048;
/// Zero blocks after the last file's data: 150 (300 KiB), as genisoimage
/// pads and close to xorriso's 300 KiB. A drive may fail to read the last
/// sectors of a disc written track-at-once (the run-out blocks), and a copy
/// read with `dd` up to the first error then loses only zeros; the
/// padding is inside the volume space, so that the image is exactly its
/// volume space (what `isosize` and our parity discs' `dd ... count=`
/// read) and a short image that lost only padding is seen as whole in its
/// files. Every prediction of an image's size counts it ([`image_size`],
/// and the disc usage of `crate::disc::FIXED_OVERHEAD`).
pub const PADDING_BLOCKS: u64 = 150;
/// Largest extent of a multi-extent file: the largest multiple of 2048 below 4 GiB.
pub const MAX_EXTENT: u64 = 0xFFFF_F800;
const CHUNK: usize = 1 << 20;
const ZEROS: [u8; BLOCK_US] = [0; BLOCK_US];
/// Deepest entry path the writer accepts (in components).
const MAX_WRITE_DEPTH: usize = 64;
/// Deepest directory the reader descends into.
const MAX_READ_DEPTH: u32 = 128;
const MAX_NAME_BYTES: usize = 255;

/// Where a file's bytes come from.
pub enum Source {
    /// A file on the host, read once while the image is written.
    File(PathBuf),
    /// Bytes in memory (small files such as a manifest).
    Bytes(Vec<u8>),
}

/// One regular file of the image.
pub struct Entry {
    /// Relative, '/'-separated path inside the image, e.g. `files/4/1234`.
    pub path: String,
    pub source: Source,
}

/// Volume-level settings. All dates in the image come from `timestamp`.
pub struct WriteOptions {
    /// Volume identifier: 1 to 32 d-characters (`A-Z`, `0-9`, `_`).
    pub volume_id: String,
    /// Volume set identifier (we store the backup set UUID): up to 128 printable ASCII.
    pub volume_set_id: String,
    /// Application identifier: up to 128 printable ASCII.
    pub application_id: String,
    /// Unix seconds used for every date in the image.
    pub timestamp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("invalid entry path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("duplicate entry path {path:?}")]
    DuplicatePath { path: String },
    #[error("entry path {path:?} is used both as a file and as a directory")]
    PathConflict { path: String },
    #[error("invalid write option {field}: {reason}")]
    InvalidOption { field: &'static str, reason: String },
    #[error("image limit exceeded: {0}")]
    TooLarge(String),
    #[error("cannot read source file {path}: {source}")]
    SourceIo { path: PathBuf, source: io::Error },
    #[error(
        "source file {path} changed size while writing the image: planned {expected} bytes, found {found}"
    )]
    SourceChanged {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("writing the image failed: {0}")]
    Output(#[source] io::Error),
    #[error("cannot read image {path}: {source}")]
    ImageIo { path: PathBuf, source: io::Error },
    #[error("{path} is not an ISO 9660 image: {reason}")]
    NotIso { path: PathBuf, reason: String },
    #[error("corrupt ISO 9660 image {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("unsupported ISO 9660 image {path}: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("internal error laying out the image: {0}")]
    Internal(&'static str),
}

// ---------------------------------------------------------------------------
// Little helpers shared by writer and reader
// ---------------------------------------------------------------------------

fn both32(v: u32) -> [u8; 8] {
    let l = v.to_le_bytes();
    let b = v.to_be_bytes();
    [l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3]]
}

fn both16(v: u16) -> [u8; 4] {
    let l = v.to_le_bytes();
    let b = v.to_be_bytes();
    [l[0], l[1], b[0], b[1]]
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn blocks_for(bytes: u64) -> u64 {
    bytes.div_ceil(BLOCK)
}

/// Civil UTC date of unix seconds, clamped to years `lo..=hi`.
fn civil(ts: i64, lo: i64, hi: i64) -> [i64; 6] {
    // Clamp far enough out that the arithmetic cannot overflow.
    let ts = ts.clamp(-62_135_596_800, 253_402_300_799);
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if year < lo {
        [lo, 1, 1, 0, 0, 0]
    } else if year > hi {
        [hi, 12, 31, 23, 59, 59]
    } else {
        [year, month, day, secs / 3600, secs % 3600 / 60, secs % 60]
    }
}

/// 7-byte directory record / Rock Ridge TF date (UTC).
fn date7(ts: i64) -> [u8; 7] {
    let c = civil(ts, 1900, 2155);
    [
        (c[0] - 1900) as u8,
        c[1] as u8,
        c[2] as u8,
        c[3] as u8,
        c[4] as u8,
        c[5] as u8,
        0,
    ]
}

/// 17-byte volume descriptor date (UTC).
fn date17(ts: i64) -> [u8; 17] {
    let c = civil(ts, 1, 9999);
    let s = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}00",
        c[0], c[1], c[2], c[3], c[4], c[5]
    );
    let mut out = [0u8; 17];
    out[..16].copy_from_slice(&s.as_bytes()[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(&date17(0)[..16], b"1970010100000000");
        assert_eq!(&date17(1_700_000_000)[..16], b"2023111422132000");
        assert_eq!(date7(1_700_000_000), [123, 11, 14, 22, 13, 20, 0]);
        assert_eq!(date7(i64::MIN)[0], 0);
        assert_eq!(date7(i64::MAX), [255, 12, 31, 23, 59, 59, 0]);
        assert_eq!(&date17(i64::MAX)[..4], b"9999");
        assert_eq!(&date17(-86_400)[..8], b"19691231");
    }
}
