//! Shared rendering helpers so every tool looks alike: byte sizes, times,
//! tables for a terminal and tab-separated rows for scripts; and the only
//! way the tools write to stdout and stderr, which can never stop or alter
//! the work.
//!
//! Printing must not change what a run does: a mailer that died, a pipe into
//! `head` or a closed terminal leaves the backup to happen all the same and
//! the exit code to say what happened. So [`stdout`] and [`stderr`] hand out
//! writers that never fail: the first error ends printing to that stream
//! (nothing more is tried there) and is remembered. A reader that went away
//! (`EPIPE`) is the reader's choice and changes nothing else; any other
//! failure to write results (a full disk under `> file`, say) is told on
//! stderr at the end and turns a clean exit into an error (see
//! [`crate::exit::main_wrapper`]), since the results asked for were not all
//! delivered. [`guard_standard_streams`] makes sure that fds 0, 1 and 2 are
//! open, so that no file the run opens (the catalogue!) can take one of
//! their numbers and receive its messages.

use std::io::{self, Write};
use std::sync::atomic::{AtomicI32, Ordering};

/// A byte count for people: `3.2 GiB`, `512 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A count with its noun in the right number: `1 file`, `2 files`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A list of discs for a table cell: runs of consecutive discs as a
/// range, the rest joined by commas: `3`, `3-5`, `3,5`, `3-5,7`. The list
/// is shown in the order given (a split file's discs ascend); a disc given
/// twice in a row is shown once.
pub fn discs(list: &[i64]) -> String {
    let mut out = String::new();
    let mut i = 0;
    // Bounded: each pass takes at least one disc of the list.
    while i < list.len() {
        let start = list[i];
        let mut end = start;
        let mut j = i + 1;
        while j < list.len() && (list[j] == end || end.checked_add(1) == Some(list[j])) {
            end = list[j];
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if end == start {
            out.push_str(&start.to_string());
        } else if end.checked_sub(1) == Some(start) {
            out.push_str(&format!("{start},{end}"));
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i = j;
    }
    out
}

/// Unix seconds as a local ISO 8601 time (`2026-11-26T08:22:18+01:00`).
pub fn time(secs: f64) -> String {
    time_in(secs, &jiff::tz::TimeZone::system())
}

/// Unix seconds as ISO 8601 in the given zone.
pub fn time_in(secs: f64, tz: &jiff::tz::TimeZone) -> String {
    if !secs.is_finite() {
        return "?".into();
    }
    match jiff::Timestamp::from_second(secs.floor() as i64) {
        Ok(ts) => ts
            .to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
        Err(_) => format!("{secs}"),
    }
}

/// Rows of a report, shown as a [`table`] on a terminal and as [`tsv`]
/// lines otherwise (for scripts and pipes), so every tool looks alike.
pub struct Rows {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<usize>,
}

impl Rows {
    pub fn new(headers: &[&str]) -> Rows {
        Rows {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            right: Vec::new(),
        }
    }

    /// Right-aligns these columns (numbers) on a terminal.
    pub fn right(mut self, columns: &[usize]) -> Rows {
        self.right = columns.to_vec();
        self
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Writes the rows: a table when `terminal`, else tab-separated lines.
    pub fn write(&self, out: &mut dyn std::io::Write, terminal: bool) -> std::io::Result<()> {
        let headers: Vec<&str> = self.headers.iter().map(String::as_str).collect();
        if terminal {
            writeln!(out, "{}", table(&headers, &self.rows, &self.right))
        } else {
            out.write_all(tsv(&headers, &self.rows).as_bytes())
        }
    }
}

/// A table for people on a terminal, in the style every tool shares;
/// the columns listed in `right` are right-aligned (numbers).
pub fn table(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    use comfy_table::{presets, CellAlignment, ContentArrangement, Table};
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED.with_rounded_corners())
        .set_header(header.to_vec());
    // Fit long cells to the terminal, unless its width is unknown or too
    // small to be meaningful.
    if t.width().is_some_and(|w| w >= 60) {
        t.set_content_arrangement(ContentArrangement::Dynamic);
    }
    for row in rows {
        t.add_row(row.clone());
    }
    for &i in right {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t.to_string()
}

/// [`table`] (with a line break after it) when `styled` (stdout is a
/// terminal), [`tsv`] otherwise.
pub fn render(header: &[&str], rows: &[Vec<String>], right: &[usize], styled: bool) -> String {
    if styled {
        let mut out = table(header, rows, right);
        out.push('\n');
        out
    } else {
        tsv(header, rows)
    }
}

/// The same rows for scripts: a header line, then one line per row, cells
/// separated by tabs (tabs and line breaks inside a cell become spaces).
pub fn tsv(header: &[&str], rows: &[Vec<String>]) -> String {
    let clean = |c: &str| c.replace(['\t', '\n', '\r'], " ");
    let mut out = header.join("\t");
    out.push('\n');
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| clean(c)).collect();
        out.push_str(&cells.join("\t"));
        out.push('\n');
    }
    out
}

/// Which standard stream a [`Sink`] writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// The first error met writing results to stdout, as an errno (0: none;
/// -1: an error without one). EPIPE is not kept: a reader that closed the
/// pipe asked for no more.
static STDOUT_ERROR: AtomicI32 = AtomicI32::new(0);
/// Whether a write to stdout or stderr already failed in this process, so
/// that later writers do not try again (bit 0: stdout, bit 1: stderr).
static BROKEN: AtomicI32 = AtomicI32::new(0);

impl Stream {
    fn bit(self) -> i32 {
        match self {
            Stream::Out => 1,
            Stream::Err => 2,
        }
    }

    fn broken(self) -> bool {
        BROKEN.load(Ordering::Relaxed) & self.bit() != 0
    }

    fn fail(self, e: &io::Error) {
        BROKEN.fetch_or(self.bit(), Ordering::Relaxed);
        if self == Stream::Out && e.kind() != io::ErrorKind::BrokenPipe {
            let errno = e.raw_os_error().unwrap_or(-1);
            let _ = STDOUT_ERROR.compare_exchange(0, errno, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
}

/// A writer to stdout or stderr that never returns an error: see the module
/// header. Writes go straight to the stream (wrap it in a `BufWriter` to
/// batch them).
pub struct Sink {
    stream: Stream,
}

/// The tools' stdout, for results.
pub fn stdout() -> Sink {
    Sink {
        stream: Stream::Out,
    }
}

/// The tools' stderr, for messages.
pub fn stderr() -> Sink {
    Sink {
        stream: Stream::Err,
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.stream.broken() {
            let r = match self.stream {
                Stream::Out => io::stdout().lock().write_all(buf),
                Stream::Err => io::stderr().lock().write_all(buf),
            };
            if let Err(e) = r {
                self.stream.fail(&e);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.stream.broken() {
            let r = match self.stream {
                Stream::Out => io::stdout().lock().flush(),
                Stream::Err => io::stderr().lock().flush(),
            };
            if let Err(e) = r {
                self.stream.fail(&e);
            }
        }
        Ok(())
    }
}

/// Prints one line on stderr; never fails, never panics (unlike
/// `eprintln!`, which panics when stderr is closed).
pub fn say(line: impl std::fmt::Display) {
    // One write per line, so lines of two threads never interleave.
    let _ = stderr().write_all(format!("{line}\n").as_bytes());
}

/// The error met writing results to stdout, if any (a closed pipe is none).
pub fn stdout_error() -> Option<io::Error> {
    match STDOUT_ERROR.load(Ordering::Relaxed) {
        0 => None,
        -1 => Some(io::Error::other("write failed")),
        errno => Some(io::Error::from_raw_os_error(errno)),
    }
}

/// Opens `/dev/null` on any of fds 0, 1 and 2 that is closed (a daemon may
/// start us so), before the run opens anything: otherwise the catalogue
/// could be given fd 1 and receive every line meant for stdout.
pub fn guard_standard_streams() {
    for fd in 0..=2 {
        // SAFETY: fcntl(F_GETFD) only queries the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            let flags = if fd == 0 {
                libc::O_RDONLY
            } else {
                libc::O_WRONLY
            };
            // SAFETY: a constant NUL-terminated path; open returns the
            // lowest free descriptor, which is `fd` since all below it are
            // open (checked in order).
            let got = unsafe { libc::open(c"/dev/null".as_ptr(), flags | libc::O_CLOEXEC) };
            if got >= 0 && got != fd {
                // SAFETY: both descriptors are ours.
                unsafe {
                    libc::dup2(got, fd);
                    libc::close(got);
                }
            } else if got == fd {
                // Standard streams are inherited by the commands we run
                // (the disc-ready command), so they keep no CLOEXEC.
                // SAFETY: fd is ours.
                unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3_435_973_837), "3.2 GiB");
    }

    #[test]
    fn times() {
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(time_in(0.0, &utc), "1970-01-01T00:00:00+00:00");
        assert_eq!(time_in(1_795_678_938.5, &utc), "2026-11-26T07:42:18+00:00");
        assert_eq!(time_in(f64::NAN, &utc), "?");
    }

    #[test]
    fn disc_lists() {
        assert_eq!(discs(&[]), "");
        assert_eq!(discs(&[4]), "4");
        assert_eq!(discs(&[3, 4]), "3,4");
        assert_eq!(discs(&[3, 4, 5]), "3-5");
        assert_eq!(discs(&[3, 5]), "3,5");
        assert_eq!(discs(&[3, 4, 5, 7, 9, 10, 11]), "3-5,7,9-11");
        assert_eq!(discs(&[3, 3, 4, 5]), "3-5");
        assert_eq!(
            discs(&[i64::MAX - 1, i64::MAX]),
            format!("{},{}", i64::MAX - 1, i64::MAX)
        );
    }

    #[test]
    fn tab_separated_rows_stay_on_their_line() {
        let rows = vec![vec!["1".to_string(), "a\tb\nc".to_string()]];
        assert_eq!(tsv(&["n", "name"], &rows), "n\tname\n1\ta b c\n");
    }
}
