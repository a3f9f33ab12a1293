//! Reading files front to back while threads compute their MD5s: one
//! reader (so a drive never seeks between files) feeds a few hashers, each
//! file going whole to the least busy one. Reads only; what a result means
//! is the caller's business.

use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use md5::{Digest, Md5};

use crate::progress::Progress;

/// What reading one file gave.
pub(super) struct Outcome {
    /// Bytes read (up to the error, if any).
    pub bytes: u64,
    /// The MD5 in lowercase hex, or the error that stopped the read.
    pub result: io::Result<String>,
}

/// Threads computing MD5s: one reader feeds them.
pub(super) const HASHERS: usize = 2;
/// Bytes per read.
const BUFFER: usize = 1 << 20;
/// Buffers in flight between the reader and the hashers: enough to hold a
/// typical photo or song for each hasher while the reader runs ahead.
const BUFFERS: usize = 32;

/// What the reader hands a hasher.
enum Chunk {
    /// Item `i` begins.
    Start(usize),
    /// Its next bytes: the first `n` of the buffer.
    Data(Vec<u8>, usize),
    /// It ended.
    End,
    /// Reading it failed.
    Failed(io::Error),
}

/// Reads `items` one after the other in the order given, with one reader
/// (so a drive reads front to back and never seeks between files), while
/// `hashers` threads compute the MD5s, each file going whole to the least
/// busy one. `done` runs on the calling thread for each item as it finishes.
pub(super) fn hash_all<T, R>(
    items: &[T],
    hashers: usize,
    open: impl Fn(&T) -> io::Result<R> + Send,
    label: impl Fn(&T) -> &str + Send,
    progress: &Progress,
    mut done: impl FnMut(&T, Outcome),
) where
    T: Sync,
    R: Read,
{
    let hashers = hashers.max(1);
    let queued: Vec<AtomicUsize> = (0..hashers).map(|_| AtomicUsize::new(0)).collect();
    std::thread::scope(|s| {
        let (results, finished) = mpsc::channel();
        let (give_back, pool) = mpsc::channel();
        let mut queues = Vec::with_capacity(hashers);
        for queued in &queued {
            let (tx, rx) = mpsc::channel();
            queues.push(tx);
            let (results, give_back) = (results.clone(), give_back.clone());
            s.spawn(move || hash_chunks(rx, queued, give_back, results));
        }
        drop((results, give_back));
        let queued = &queued;
        s.spawn(move || {
            let mut buffers = Buffers {
                pool,
                made: 0,
                spare: None,
            };
            for (i, item) in items.iter().enumerate() {
                let h = (0..hashers)
                    .min_by_key(|&h| queued[h].load(Ordering::Relaxed))
                    .unwrap_or(0);
                let send = |c: Chunk| {
                    if matches!(c, Chunk::Data(..)) {
                        queued[h].fetch_add(1, Ordering::Relaxed);
                    }
                    queues[h].send(c).is_ok()
                };
                if !send(Chunk::Start(i)) {
                    return;
                }
                let last = match open(item) {
                    Ok(mut reader) => {
                        read_chunks(&mut reader, &mut buffers, label(item), progress, &send)
                    }
                    Err(e) => Some(Chunk::Failed(e)),
                };
                if !last.is_some_and(send) {
                    return;
                }
            }
        });
        for (i, outcome) in finished {
            done(&items[i], outcome);
        }
    });
}

/// The reader's buffers: at most [`BUFFERS`], handed back by the hashers.
struct Buffers {
    pool: mpsc::Receiver<Vec<u8>>,
    made: usize,
    spare: Option<Vec<u8>>,
}

impl Buffers {
    /// A free buffer, waiting for one when all are in use; `None` when the
    /// hashers are gone.
    fn take(&mut self) -> Option<Vec<u8>> {
        if let Some(b) = self.spare.take() {
            return Some(b);
        }
        if let Ok(b) = self.pool.try_recv() {
            return Some(b);
        }
        if self.made < BUFFERS {
            self.made += 1;
            return Some(vec![0u8; BUFFER]);
        }
        self.pool.recv().ok()
    }
}

/// Reads one file, sending its bytes on; returns how it ended (`End` or
/// `Failed`), or `None` when the hashers are gone.
fn read_chunks(
    reader: &mut impl Read,
    buffers: &mut Buffers,
    label: &str,
    progress: &Progress,
    send: &impl Fn(Chunk) -> bool,
) -> Option<Chunk> {
    loop {
        if let Some(e) = injected_read_error(label) {
            return Some(Chunk::Failed(e));
        }
        let mut buf = buffers.take()?;
        match reader.read(&mut buf) {
            Ok(0) => {
                buffers.spare = Some(buf);
                return Some(Chunk::End);
            }
            Ok(n) => {
                progress.add_bytes(n as u64);
                if !send(Chunk::Data(buf, n)) {
                    return None;
                }
            }
            Err(e) => {
                buffers.spare = Some(buf);
                if e.kind() != io::ErrorKind::Interrupted {
                    return Some(Chunk::Failed(e));
                }
            }
        }
    }
}

/// One hasher: MD5s of the files the reader sends it, one after the other.
fn hash_chunks(
    chunks: mpsc::Receiver<Chunk>,
    queued: &AtomicUsize,
    give_back: mpsc::Sender<Vec<u8>>,
    results: mpsc::Sender<(usize, Outcome)>,
) {
    let mut current: Option<(usize, Md5, u64)> = None;
    for chunk in chunks {
        let finished = match chunk {
            Chunk::Start(i) => {
                current = Some((i, Md5::new(), 0));
                None
            }
            Chunk::Data(buf, n) => {
                queued.fetch_sub(1, Ordering::Relaxed);
                if let Some((_, h, bytes)) = &mut current {
                    h.update(&buf[..n]);
                    *bytes += n as u64;
                }
                let _ = give_back.send(buf);
                None
            }
            Chunk::End => current.take().map(|(i, h, bytes)| {
                let md5 = crate::mkiso::hex(&h.finalize());
                (
                    i,
                    Outcome {
                        bytes,
                        result: Ok(md5),
                    },
                )
            }),
            Chunk::Failed(e) => current.take().map(|(i, _, bytes)| {
                (
                    i,
                    Outcome {
                        bytes,
                        result: Err(e),
                    },
                )
            }),
        };
        if let Some(f) = finished {
            if results.send(f).is_err() {
                return;
            }
        }
    }
}

/// For tests: `FAILPOINTS=verify::read=return(eio:files/0/3)` makes reading
/// that file fail with EIO (`return(eio)`: every file).
fn injected_read_error(label: &str) -> Option<io::Error> {
    crate::fault::injected_for("verify::read", label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_reads_every_item_once_in_any_worker_count() {
        let items: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; i as usize * 1000]).collect();
        for hashers in [1, 2, 3] {
            let mut seen = vec![None; items.len()];
            hash_all(
                &items,
                hashers,
                |d| Ok(std::io::Cursor::new(d.clone())),
                |_| "",
                &Progress::hidden(),
                |d, o| {
                    let i = d.first().copied().unwrap_or(0) as usize;
                    assert_eq!(o.bytes, d.len() as u64);
                    seen[i] = Some(o.result.unwrap());
                },
            );
            for (i, d) in items.iter().enumerate() {
                assert_eq!(
                    seen[i].as_deref(),
                    Some(crate::mkiso::hex(&Md5::digest(d)).as_str())
                );
            }
        }
    }
}
