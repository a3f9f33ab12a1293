//! Reading a file of an image (or a disc in its drive) so that a bad spot
//! costs only its sectors: reads go 64 KiB at a time; when one fails, that
//! span is read again sector by sector, each sector up to [`TRIES`] times,
//! and a sector that never reads is noted and skipped, and the rest of the
//! file is still read, so that every unreadable sector of the file is
//! found, as `xorriso -check_media report=files` finds them. The file then
//! ends with a [`BadSectors`] error naming them by LBA. Reads only.

use std::io::{self, Read};

use crate::iso::BLOCK;

/// Reads of one unreadable sector before it is skipped.
pub(super) const TRIES: u32 = 3;
/// Bytes per read while nothing fails.
const SPAN: u64 = 32 * BLOCK;

/// The sectors of one file that could not be read.
#[derive(Debug)]
pub struct BadSectors {
    /// Runs of unreadable sectors, as (first LBA, last LBA), in order.
    pub ranges: Vec<(u64, u64)>,
    /// What the last failed read said (or that the image ends there).
    pub reason: String,
}

impl std::fmt::Display for BadSectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sectors: u64 = self.ranges.iter().map(|(a, b)| b - a + 1).sum();
        let list: Vec<String> = self
            .ranges
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        write!(
            f,
            "{sectors} unreadable sector{} (LBA {}): {}",
            if sectors == 1 { "" } else { "s" },
            list.join(", "),
            self.reason
        )
    }
}

impl std::error::Error for BadSectors {}

/// A positional read of the medium: bytes at an offset, 0 past its end.
pub(super) type ReadAt<'a> = dyn Fn(&mut [u8], u64) -> io::Result<usize> + Sync + 'a;

/// Streams one file's bytes across its extents, skipping the sectors that
/// cannot be read (their bytes read as zeros, and the file ends with
/// [`BadSectors`] so that no MD5 of it is ever taken as good).
pub(super) struct SectorReader<'a> {
    read_at: &'a ReadAt<'a>,
    extents: Vec<(u64, u64)>,
    idx: usize,
    pos: u64,
    /// Runs of sectors skipped, (first LBA, last LBA), in reading order:
    /// at most one per sector read and one per extent.
    bad: Vec<(u64, u64)>,
    /// Where the medium ends, once a read found it: nothing past it is
    /// read (a hostile extent may claim terabytes past the end).
    end: Option<u64>,
    reason: String,
    reported: bool,
}

impl<'a> SectorReader<'a> {
    pub(super) fn new(read_at: &'a ReadAt<'a>, extents: Vec<(u64, u64)>) -> Self {
        SectorReader {
            read_at,
            extents,
            idx: 0,
            pos: 0,
            bad: Vec::new(),
            end: None,
            reason: String::new(),
            reported: false,
        }
    }

    /// Fills `buf` from byte `at` of the medium in one go (short only at
    /// the end of the medium).
    fn read_full(&self, buf: &mut [u8], at: u64) -> io::Result<usize> {
        let mut got = 0;
        // Bounded by buf's length: each pass reads at least one byte or ends.
        while got < buf.len() {
            match (self.read_at)(&mut buf[got..], at + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    /// Whether a test injected a read error at sector `lba`.
    fn injected(lba: u64) -> Option<io::Error> {
        crate::fault::injected_for("verify::sector", &format!("lba:{lba}"))
    }

    /// Notes sectors `first..=last` as unreadable.
    fn note_bad(&mut self, first: u64, last: u64) {
        match self.bad.last_mut() {
            Some((a, l)) if first >= *a && first <= *l + 1 => *l = (*l).max(last),
            _ => self.bad.push((first, last)),
        }
    }

    fn past_the_end(&mut self) {
        self.reason = "past the end of the image (it is cut short)".into();
    }

    /// Reads `buf` from byte `at` one sector at a time, each up to
    /// [`TRIES`] times in all (the sectors in `failed_once` already failed
    /// one); a sector that never reads is zeros and noted.
    fn salvage(&mut self, buf: &mut [u8], at: u64, failed_once: &[u64]) {
        let mut done = 0usize;
        // Bounded by buf's length: each pass covers one sector's share.
        while done < buf.len() {
            let here = at + done as u64;
            let lba = here / BLOCK;
            if self.end.is_some_and(|e| here >= e) {
                // The rest lies past the end of the medium.
                buf[done..].fill(0);
                self.note_bad(lba, (at + buf.len() as u64 - 1) / BLOCK);
                self.past_the_end();
                return;
            }
            let end = ((lba + 1) * BLOCK).min(at + buf.len() as u64);
            let part = &mut buf[done..(end - at) as usize];
            let mut ok = false;
            let tries = TRIES - u32::from(failed_once.contains(&lba));
            // Bounded by TRIES.
            for _ in 0..tries {
                let res = match Self::injected(lba) {
                    Some(e) => Err(e),
                    None => self.read_full(part, here),
                };
                match res {
                    Ok(n) if n == part.len() => {
                        ok = true;
                        break;
                    }
                    // The medium ends here: reading again gives no more.
                    Ok(n) => {
                        self.end = Some(here + n as u64);
                        self.past_the_end();
                        break;
                    }
                    Err(e) => self.reason = e.to_string(),
                }
            }
            if !ok {
                part.fill(0);
                self.note_bad(lba, lba);
            }
            done += part.len();
        }
    }

    /// The runs noted, sorted and merged (a multi-extent file's extents
    /// need not be in disc order).
    fn ranges(&self) -> Vec<(u64, u64)> {
        let mut sorted = self.bad.clone();
        sorted.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(sorted.len());
        for (first, last) in sorted {
            match out.last_mut() {
                Some((_, l)) if first <= *l + 1 => *l = (*l).max(last),
                _ => out.push((first, last)),
            }
        }
        out
    }
}

impl Read for SectorReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Bounded by the extents: each pass moves to the next one or reads.
        loop {
            let Some(&(off, len)) = self.extents.get(self.idx) else {
                if self.bad.is_empty() || self.reported {
                    return Ok(0);
                }
                self.reported = true;
                return Err(io::Error::other(BadSectors {
                    ranges: self.ranges(),
                    reason: std::mem::take(&mut self.reason),
                }));
            };
            if self.pos >= len {
                self.idx += 1;
                self.pos = 0;
                continue;
            }
            let at = off.checked_add(self.pos).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "extent offset overflows")
            })?;
            if self.end.is_some_and(|e| at >= e) {
                // Past the end of the medium: noted whole, never read (and
                // no bytes given for it: the file ends in an error anyway).
                let last = off.saturating_add(len - 1) / BLOCK;
                self.note_bad(at / BLOCK, last);
                self.past_the_end();
                self.pos = len;
                continue;
            }
            // Up to the end of this span of sectors, so that a failed read
            // is read again over whole sectors.
            let span_end = (at / SPAN + 1) * SPAN;
            let n = (len - self.pos).min(span_end - at).min(buf.len() as u64) as usize;
            let chunk = &mut buf[..n];
            let first = at / BLOCK;
            let last = (at + n as u64 - 1) / BLOCK;
            // Each sector's fault is looked up once per read, as each is
            // read once; one that fails counts as that sector's first try.
            let injected: Vec<u64> = (first..=last)
                .filter(|&lba| Self::injected(lba).is_some())
                .collect();
            let whole = injected.is_empty() && matches!(self.read_full(chunk, at), Ok(k) if k == n);
            if !whole {
                self.salvage(chunk, at, &injected);
            }
            self.pos += n as u64;
            return Ok(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A medium of `blocks` sectors, sector `i` filled with `i as u8`,
    /// whose sectors in `fails` fail that many reads (u32::MAX: always);
    /// counts the reads of each sector.
    struct Medium {
        data: Vec<u8>,
        fails: Mutex<HashMap<u64, u32>>,
        reads: Mutex<HashMap<u64, u32>>,
        past_end: Mutex<u32>,
    }

    impl Medium {
        fn new(blocks: u64, fails: &[(u64, u32)]) -> Medium {
            let data = (0..blocks * BLOCK).map(|i| (i / BLOCK) as u8).collect();
            Medium {
                data,
                fails: Mutex::new(fails.iter().copied().collect()),
                reads: Mutex::new(HashMap::new()),
                past_end: Mutex::new(0),
            }
        }

        fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<usize> {
            let end = (at + buf.len() as u64).min(self.data.len() as u64);
            if at >= end {
                *self.past_end.lock().unwrap() += 1;
                return Ok(0);
            }
            for lba in at / BLOCK..=(end - 1) / BLOCK {
                *self.reads.lock().unwrap().entry(lba).or_default() += 1;
                if let Some(left) = self.fails.lock().unwrap().get_mut(&lba) {
                    if *left > 0 {
                        *left = left.saturating_sub(1);
                        return Err(io::Error::from_raw_os_error(libc::EIO));
                    }
                }
            }
            let n = (end - at) as usize;
            buf[..n].copy_from_slice(&self.data[at as usize..end as usize]);
            Ok(n)
        }
    }

    fn read(m: &Medium, extents: Vec<(u64, u64)>) -> (Vec<u8>, Option<BadSectors>) {
        let f = |b: &mut [u8], at: u64| m.read_at(b, at);
        let mut r = SectorReader::new(&f, extents);
        let mut out = Vec::new();
        let mut buf = vec![0u8; 100_000];
        // Bounded: the reader ends after its extents.
        loop {
            match r.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => {
                    let bad = e.into_inner().unwrap().downcast::<BadSectors>().unwrap();
                    assert_eq!(r.read(&mut buf).unwrap(), 0);
                    return (out, Some(*bad));
                }
            }
        }
    }

    #[test]
    fn a_sector_that_fails_fewer_times_than_the_tries_is_read() {
        let m = Medium::new(100, &[(40, TRIES - 1)]);
        let (data, bad) = read(&m, vec![(10 * BLOCK, 60 * BLOCK)]);
        assert!(bad.is_none());
        assert_eq!(data, m.data[(10 * BLOCK) as usize..(70 * BLOCK) as usize]);
    }

    #[test]
    fn every_bad_sector_is_found_and_each_is_tried_a_bounded_number_of_times() {
        let m = Medium::new(200, &[(40, u32::MAX), (41, u32::MAX), (97, u32::MAX)]);
        let (data, bad) = read(&m, vec![(10 * BLOCK, 150 * BLOCK - 5)]);
        let bad = bad.expect("bad sectors reported");
        assert_eq!(bad.ranges, vec![(40, 41), (97, 97)]);
        assert!(bad
            .to_string()
            .starts_with("3 unreadable sectors (LBA 40-41, 97): "));
        // Every byte of the file is delivered, the bad sectors as zeros.
        assert_eq!(data.len() as u64, 150 * BLOCK - 5);
        for (i, b) in data.iter().enumerate() {
            let lba = 10 + i as u64 / BLOCK;
            let want = if [40, 41, 97].contains(&lba) {
                0
            } else {
                lba as u8
            };
            assert_eq!(*b, want, "byte {i}");
        }
        // Each bad sector TRIES times on its own, after the span's read,
        // which stopped at the first of them.
        let reads = m.reads.lock().unwrap();
        assert_eq!(reads[&40], 1 + TRIES);
        assert_eq!(reads[&41], TRIES);
        assert_eq!(reads[&97], 1 + TRIES);
    }

    #[test]
    fn the_end_of_a_short_medium_is_bad_sectors_read_once_each() {
        let m = Medium::new(50, &[]);
        let (data, bad) = read(&m, vec![(40 * BLOCK, 20 * BLOCK)]);
        let bad = bad.unwrap();
        assert_eq!(bad.ranges, vec![(50, 59)]);
        assert!(bad.reason.contains("past the end"), "{bad}");
        assert_eq!(data.len() as u64, 20 * BLOCK);
        // The span's read, then the first sector past the end once: the
        // end is known, and nothing past it is read again.
        assert_eq!(*m.past_end.lock().unwrap(), 2);
    }

    /// A hostile extent claiming a terabyte past the end of a small medium
    /// ends at once: one run of sectors, a few reads, no data for it.
    #[test]
    fn an_extent_of_a_terabyte_past_the_end_ends_at_once() {
        let m = Medium::new(50, &[]);
        let tb = 1u64 << 40;
        let (data, bad) = read(&m, vec![(45 * BLOCK, tb), (10 * BLOCK, tb)]);
        let bad = bad.unwrap();
        // Both extents run past the end; what lies inside is read.
        assert_eq!(bad.ranges, vec![(50, 45 + tb / BLOCK - 1)]);
        // What lies inside (5 + 40 sectors), and at most the rest of one
        // span of reads (as zeros) per extent where the end was met.
        assert!(
            data.len() as u64 <= (5 + 40) * BLOCK + 2 * SPAN,
            "{}",
            data.len()
        );
        assert!(*m.past_end.lock().unwrap() <= 3);
    }

    #[test]
    fn multi_extent_files_are_read_across_their_extents() {
        let m = Medium::new(100, &[(70, u32::MAX)]);
        let (data, bad) = read(&m, vec![(10 * BLOCK, 3 * BLOCK), (68 * BLOCK, 5 * BLOCK)]);
        assert_eq!(bad.unwrap().ranges, vec![(70, 70)]);
        assert_eq!(data.len() as u64, 8 * BLOCK);
    }
}
