//! Shared rendering helpers so every tool looks alike: byte sizes, times,
//! tables for a terminal and tab-separated rows for scripts.

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
    fn tab_separated_rows_stay_on_their_line() {
        let rows = vec![vec!["1".to_string(), "a\tb\nc".to_string()]];
        assert_eq!(tsv(&["n", "name"], &rows), "n\tname\n1\ta b c\n");
    }
}
