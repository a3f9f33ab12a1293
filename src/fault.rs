//! Named fault points: the places where the fault suite makes a step fail
//! the way real machines fail, through the real binaries.
//!
//! Built only with the `failpoints` feature (tests); without it every check
//! is a constant `None` and costs nothing. A test sets, for example,
//! `FAILPOINTS='stage::write=1*return(enospc)'`; the kinds are
//!
//! - `enospc`: the step fails with "No space left on device",
//! - `eio`: the step fails with "Input/output error" (on a read point, the
//!   source or disc could not be read; on a write point, the target could
//!   not be written),
//! - `kill`: the process dies at that instant (SIGKILL, as from `kill -9` or
//!   a power cut, without any cleanup).
//!
//! An optional `:SUFFIX` after the kind limits the fault to the items whose
//! label ends with it (`return(eio:files/0/3)`); `|` separates several
//! (`return(eio:lba:40|lba:97)`). [`POINTS`] lists every point
//! with the kinds that make sense there; the fault suite runs each pair and a
//! test checks the list against the calls in the source.

use std::io;

/// How a step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The filesystem is full.
    NoSpace,
    /// The device reports an I/O error.
    Io,
    /// The process is killed.
    Kill,
}

impl Kind {
    /// The name used in `FAILPOINTS` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::NoSpace => "enospc",
            Kind::Io => "eio",
            Kind::Kill => "kill",
        }
    }

    /// The kind a `FAILPOINTS` argument names.
    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::NoSpace, Kind::Io, Kind::Kill]
            .into_iter()
            .find(|k| k.name() == s)
    }
}

/// A fault point: its name, the step it interrupts, and the kinds it takes.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub name: &'static str,
    pub step: &'static str,
    pub kinds: &'static [Kind],
}

const WRITE: &[Kind] = &[Kind::NoSpace, Kind::Io, Kind::Kill];
const READ: &[Kind] = &[Kind::Io, Kind::Kill];
const SYNC: &[Kind] = &[Kind::Io, Kind::Kill];
const READ_ONLY: &[Kind] = &[Kind::Io];

/// Every fault point in the product.
pub const POINTS: &[Point] = &[
    Point {
        name: "stage::reserve",
        step: "staging: rows reserved (copied=0), nothing copied yet",
        kinds: WRITE,
    },
    Point {
        name: "stage::read",
        step: "staging: reading a source file",
        kinds: READ,
    },
    Point {
        name: "stage::write",
        step: "staging: writing a copy (.partial)",
        kinds: WRITE,
    },
    Point {
        name: "stage::sync",
        step: "staging: flushing the batch's copies to disk",
        kinds: SYNC,
    },
    Point {
        name: "stage::rename",
        step: "staging: renaming a copy into place",
        kinds: WRITE,
    },
    Point {
        name: "stage::commit",
        step: "staging: recording MD5s and copied=1",
        kinds: WRITE,
    },
    Point {
        name: "split::commit",
        step: "staging a split file: recording a part (and, for the last, the whole)",
        kinds: WRITE,
    },
    Point {
        name: "close::completed",
        step: "closing a disc: marked completed, no frozen catalogue yet",
        kinds: WRITE,
    },
    Point {
        name: "close::snapshot",
        step: "closing a disc: frozen catalogue written, not yet renamed",
        kinds: WRITE,
    },
    Point {
        name: "close::next",
        step: "closing a disc: frozen catalogue in place, next disc not opened",
        kinds: WRITE,
    },
    Point {
        name: "mkiso::write",
        step: "image: writing the .partial image",
        kinds: WRITE,
    },
    Point {
        name: "mkiso::sync",
        step: "image: flushing the image to disk",
        kinds: SYNC,
    },
    Point {
        name: "mkiso::rename",
        step: "image: renaming the image into place",
        kinds: WRITE,
    },
    Point {
        name: "mkiso::read_back",
        step: "image: reading a file back from the image",
        kinds: READ,
    },
    Point {
        name: "mkiso::record",
        step: "image: read back, not yet recorded as verified",
        kinds: WRITE,
    },
    Point {
        name: "mkiso::free",
        step: "image: recorded, staged copies being removed",
        kinds: WRITE,
    },
    Point {
        name: "parity::par2",
        step: "parity: par2 computing a group's recovery data",
        kinds: SYNC,
    },
    Point {
        name: "parity::write",
        step: "parity: writing the .partial parity image",
        kinds: WRITE,
    },
    Point {
        name: "parity::rename",
        step: "parity: renaming the parity image into place",
        kinds: WRITE,
    },
    Point {
        name: "parity::record",
        step: "parity: read back, not yet recorded",
        kinds: WRITE,
    },
    Point {
        name: "restore::read",
        step: "restore: reading a file from a disc",
        kinds: READ,
    },
    Point {
        name: "restore::write",
        step: "restore: writing a temp file in the target",
        kinds: WRITE,
    },
    Point {
        name: "restore::sync",
        step: "restore: making a written file durable",
        kinds: SYNC,
    },
    Point {
        name: "restore::rename",
        step: "restore: renaming a checked file to its name",
        kinds: WRITE,
    },
    Point {
        name: "verify::read",
        step: "verify: reading a file from a disc",
        kinds: READ_ONLY,
    },
    Point {
        name: "verify::sector",
        step: "verify: reading one sector of an image or a disc in its drive (label `lba:N`)",
        kinds: READ_ONLY,
    },
];

/// The fault a test injected at `point`, if any. For `kill` the process
/// ends here and this never returns.
#[inline]
pub fn injected(point: &str) -> Option<io::Error> {
    injected_for(point, "")
}

/// Like [`injected`], for the item called `label` (a `:SUFFIX` in the
/// fault's argument must match its end).
#[cfg(feature = "failpoints")]
pub fn injected_for(point: &str, label: &str) -> Option<io::Error> {
    let arg = fail::eval(point, |arg| arg.unwrap_or_default())?;
    let (kind, suffix) = match arg.split_once(':') {
        Some((k, s)) => (k, s),
        None => (arg.as_str(), ""),
    };
    if !suffix.split('|').any(|s| label.ends_with(s)) {
        return None;
    }
    match Kind::parse(kind).unwrap_or(Kind::Io) {
        Kind::NoSpace => Some(io::Error::from_raw_os_error(libc::ENOSPC)),
        Kind::Io => Some(io::Error::from_raw_os_error(libc::EIO)),
        Kind::Kill => {
            // SAFETY: kill(2) on our own pid with a constant signal has no
            // memory-safety preconditions.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            // SIGKILL cannot be caught; should delivery lag, stop anyway.
            std::process::abort()
        }
    }
}

/// Without the `failpoints` feature nothing is ever injected.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn injected_for(_point: &str, _label: &str) -> Option<io::Error> {
    None
}

/// A writer whose writes fail where a test injected a fault at `point`.
pub struct Writer<W> {
    inner: W,
    point: &'static str,
}

impl<W> Writer<W> {
    pub fn new(inner: W, point: &'static str) -> Self {
        Writer { inner, point }
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: io::Write> io::Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(e) = injected(self.point) {
            return Err(e);
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_is_named_once_and_takes_a_kind() {
        let mut names: Vec<&str> = POINTS.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), POINTS.len());
        assert!(POINTS.iter().all(|p| !p.kinds.is_empty()));
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for k in [Kind::NoSpace, Kind::Io, Kind::Kill] {
            assert_eq!(Kind::parse(k.name()), Some(k));
        }
        assert_eq!(Kind::parse("nope"), None);
    }

    #[test]
    fn every_point_is_checked_in_the_source_and_none_is_unlisted() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut used = std::collections::BTreeSet::new();
        for entry in walkdir::WalkDir::new(&src) {
            let entry = entry.unwrap();
            if entry.path().extension().is_none_or(|e| e != "rs")
                || entry.path().ends_with("fault.rs")
            {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap();
            // The point's name is the first string literal of each call.
            for call in [
                "fault::injected(",
                "fault::injected_for(",
                "fault::Writer::new(",
            ] {
                for (i, _) in text.match_indices(call) {
                    let rest = &text[i + call.len()..];
                    let Some(open) = rest.find('"') else { continue };
                    let name = &rest[open + 1..];
                    if let Some(end) = name.find('"') {
                        used.insert(name[..end].to_string());
                    }
                }
            }
        }
        let listed: std::collections::BTreeSet<String> =
            POINTS.iter().map(|p| p.name.to_string()).collect();
        assert_eq!(used, listed);
    }
}
