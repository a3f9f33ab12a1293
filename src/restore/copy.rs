//! The checked copy of one file from a disc into an open temp file: read
//! in chunks, written (aligned blocks of zeros skipped, left as holes),
//! hashed (on a second thread for large files; every byte, holes too),
//! the size and MD5 compared with the manifest, the recorded mtime set.
//! It knows nothing of names or of the target's folders.

use std::io::{Read, Write};

use md5::{Digest, Md5};

use crate::medium::{Medium, Stored};
use crate::progress::Progress;

use super::execute::{fail, write_fail, Failure};
use super::plan::Item;
use super::report::FailKind;

/// How much of a file is written before its writeback is started.
const WRITEBACK_CHUNK: u64 = 1 << 20;

/// Files at least this large are hashed on a second thread while this one
/// reads the disc and writes the target, so a restore uses both cores as
/// verifying does; the disc is still read in order, one file after the
/// other. Smaller files are not worth a thread.
const PARALLEL_HASH_MIN: u64 = 4 << 20;

/// Chunks read at a time.
pub(super) const CHUNK: usize = 1 << 20;

/// Where the copy loop sends what it read, to be hashed.
pub(super) trait ChunkHasher {
    /// A buffer to read the next chunk into.
    fn buffer(&mut self) -> Vec<u8>;
    /// Hashes a chunk (its length is what was read); false if hashing
    /// stopped.
    fn hash(&mut self, chunk: Vec<u8>) -> bool;
    /// Takes back a buffer that was not used.
    fn give_back(&mut self, chunk: Vec<u8>);
}

/// Hashing in the copying thread, with one buffer.
struct Inline<'b> {
    md5: Md5,
    buf: &'b mut Vec<u8>,
}

impl ChunkHasher for Inline<'_> {
    fn buffer(&mut self) -> Vec<u8> {
        let mut b = std::mem::take(self.buf);
        b.resize(CHUNK, 0);
        b
    }

    fn hash(&mut self, chunk: Vec<u8>) -> bool {
        self.md5.update(&chunk);
        *self.buf = chunk;
        true
    }

    fn give_back(&mut self, chunk: Vec<u8>) {
        *self.buf = chunk;
    }
}

/// Chunks in flight to the hashing thread at most.
const IN_FLIGHT: usize = 4;

/// Hashing on another thread: chunks go over a bounded channel and their
/// buffers come back to be read into again. Buffers are kept from one file
/// to the next (`pool`): a fresh megabyte for every chunk would cost more
/// in page faults than the copy.
struct Threaded<'p> {
    chunks: std::sync::mpsc::SyncSender<Vec<u8>>,
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    pool: &'p mut Vec<Vec<u8>>,
    made: usize,
}

impl ChunkHasher for Threaded<'_> {
    fn buffer(&mut self) -> Vec<u8> {
        let mut b = match self.spare.try_recv() {
            Ok(b) => b,
            Err(_) => match self.pool.pop() {
                Some(b) => b,
                // Enough buffers exist: wait for one to come back.
                None if self.made >= IN_FLIGHT + 2 => self.spare.recv().unwrap_or_default(),
                None => {
                    self.made += 1;
                    Vec::new()
                }
            },
        };
        b.resize(CHUNK, 0);
        b
    }

    fn hash(&mut self, chunk: Vec<u8>) -> bool {
        self.chunks.send(chunk).is_ok()
    }

    fn give_back(&mut self, _chunk: Vec<u8>) {}
}

/// Copies a stored file into `out` while computing its MD5, then (when it
/// matches) sets the recorded mtime; the fsync comes with its batch.
pub(super) fn copy_checked(
    medium: &Medium,
    stored: &Stored,
    v: &Item,
    out: &mut std::fs::File,
    buf: &mut Vec<u8>,
    pool: &mut Vec<Vec<u8>>,
    progress: &Progress,
) -> std::result::Result<(), Failure> {
    let read_fail = |e: std::io::Error| {
        fail(
            FailKind::Unreadable,
            format!("reading it from {}: {e}", medium.label()),
        )
    };
    let mut r = medium.open(stored).map_err(read_fail)?;
    let (copied, digest) = if v.size < PARALLEL_HASH_MIN {
        let mut inline = Inline {
            md5: Md5::new(),
            buf,
        };
        let copied = copy_loop(&mut *r, out, 0, &mut inline, progress, &read_fail);
        let digest = inline.md5.finalize();
        // After a failed read or write the buffer was not handed back:
        // the caller reads into it again.
        if buf.len() < CHUNK {
            buf.resize(CHUNK, 0);
        }
        (copied, Some(digest))
    } else {
        std::thread::scope(|s| {
            let (chunks_tx, chunks_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
            let (spare_tx, spare_rx) = std::sync::mpsc::channel();
            let hasher = s.spawn(move || {
                let mut md5 = Md5::new();
                for chunk in chunks_rx {
                    md5.update(&chunk);
                    // The copy loop may be gone; the buffer is then dropped.
                    let _ = spare_tx.send(chunk);
                }
                md5.finalize()
            });
            let made = pool.len();
            let mut threaded = Threaded {
                chunks: chunks_tx,
                spare: spare_rx,
                pool,
                made,
            };
            let copied = copy_loop(&mut *r, out, 0, &mut threaded, progress, &read_fail);
            let Threaded {
                chunks,
                spare,
                pool,
                ..
            } = threaded;
            drop(chunks);
            let digest = hasher.join().ok();
            // The hasher has given every buffer back: keep them.
            pool.extend(spare.try_iter());
            (copied, digest)
        })
    };
    let total = copied?;
    let Some(digest) = digest else {
        return Err(fail(FailKind::Unreadable, "hashing it failed"));
    };
    if total != v.size || digest[..] != v.md5 {
        let md5 = crate::mkiso::hex(&digest);
        return Err(fail(
            FailKind::Damaged,
            format!(
                "damaged on {}: {total} bytes with MD5 {md5}, the manifest says {} bytes with MD5 {}",
                medium.label(),
                v.size,
                crate::mkiso::hex(&v.md5)
            ),
        ));
    }
    out.set_modified(system_time(v.mtime))
        .map_err(|e| write_fail("setting its modification time", e))?;
    Ok(())
}

/// Reads `r` to its end in chunks, writing each to `out` (from its offset
/// `base`, where it stands) and handing it to `hasher`; returns how many
/// bytes were copied.
pub(super) fn copy_loop(
    r: &mut dyn Read,
    out: &mut std::fs::File,
    base: u64,
    hasher: &mut dyn ChunkHasher,
    progress: &Progress,
    read_fail: &dyn Fn(std::io::Error) -> Failure,
) -> std::result::Result<u64, Failure> {
    let mut total = 0u64;
    let mut flushed = 0u64;
    loop {
        if crate::interrupt::requested() {
            return Err(fail(FailKind::NotReached, "interrupted"));
        }
        let mut chunk = hasher.buffer();
        let read = match crate::fault::injected("restore::read") {
            Some(e) => Err(e),
            None => r.read(&mut chunk),
        };
        let n = match read {
            Ok(0) => {
                hasher.give_back(chunk);
                // A run of zero blocks at the end is a hole too: the
                // length says where the file ends.
                out.set_len(base + total)
                    .map_err(|e| write_fail("writing", e))?;
                return Ok(total);
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_fail(e)),
        };
        chunk.truncate(n);
        match crate::fault::injected("restore::write") {
            Some(e) => Err(e),
            None => write_sparse(out, base + total, &chunk),
        }
        .map_err(|e| write_fail("writing", e))?;
        if !hasher.hash(chunk) {
            return Err(fail(FailKind::Unreadable, "hashing it failed"));
        }
        total += n as u64;
        progress.add_bytes(n as u64);
        // Every few MiB, start writing what came so far: the disk writes
        // while we read and hash, and the fsync below has little left.
        if total - flushed >= WRITEBACK_CHUNK {
            crate::fsutil::start_writeback(out, base + flushed, total - flushed);
            flushed = total;
        }
    }
}

/// Blocks of this many bytes (aligned in the file) that hold only zeros
/// are not written: they stay holes, read back as zeros.
const HOLE_BLOCK: usize = 4096;

/// Writes `data` at `offset` of `out`, which stands there and holds
/// nothing from there on (a new file, or one cut to `offset`), skipping
/// aligned blocks of zeros; leaves `out` standing after `data`.
fn write_sparse(out: &mut std::fs::File, offset: u64, data: &[u8]) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    // Bytes from `pending` on are still to be written, in one call.
    let mut pending = 0usize;
    let mut at = 0usize;
    // Bounded by `data`: every pass moves `at` forward by at least one byte.
    while at < data.len() {
        let pos = offset + at as u64;
        let end = (at + HOLE_BLOCK - (pos % HOLE_BLOCK as u64) as usize).min(data.len());
        let block = &data[at..end];
        if block.len() == HOLE_BLOCK && block.iter().all(|&b| b == 0) {
            out.write_all(&data[pending..at])?;
            out.seek(SeekFrom::Current(HOLE_BLOCK as i64))?;
            pending = end;
        }
        at = end;
    }
    out.write_all(&data[pending..])
}

/// Unix seconds (REAL with a fraction, or whole) as a time to set.
pub(super) fn system_time(secs: f64) -> std::time::SystemTime {
    use std::time::{Duration, UNIX_EPOCH};
    if !secs.is_finite() {
        return UNIX_EPOCH;
    }
    let whole = secs.floor();
    let mut nanos = ((secs - whole) * 1e9).round() as u64;
    let mut whole = whole as i64;
    if nanos >= 1_000_000_000 {
        whole += 1;
        nanos -= 1_000_000_000;
    }
    if whole >= 0 {
        UNIX_EPOCH + Duration::new(whole as u64, nanos as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(whole.unsigned_abs()) + Duration::from_nanos(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtimes_keep_their_fraction() {
        use std::time::UNIX_EPOCH;
        let t = system_time(1_700_000_000.123_456);
        let d = t.duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(d.as_secs(), 1_700_000_000);
        assert!((d.subsec_nanos() as i64 - 123_456_000).abs() < 500);
        assert_eq!(
            system_time(1_300_000_000.0)
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_300_000_000
        );
        assert!(system_time(-1.5) < UNIX_EPOCH);
    }
}
