//! Shared rendering helpers so every tool looks alike: byte sizes, times.

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

/// Rows of a report, shown as a table on a terminal and as tab-separated
/// lines otherwise (for scripts and pipes), so every tool looks alike.
pub struct Rows {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Rows {
    pub fn new(headers: &[&str]) -> Rows {
        Rows {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Writes the rows: a table when `terminal`, else one tab-separated line
    /// per row (headers first), tabs and newlines in cells escaped.
    pub fn write(&self, out: &mut dyn std::io::Write, terminal: bool) -> std::io::Result<()> {
        if terminal {
            let mut table = comfy_table::Table::new();
            table
                .load_style(comfy_table::presets::UTF8_HORIZONTAL_ONLY)
                .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
                .set_header(&self.headers);
            for r in &self.rows {
                table.add_row(r);
            }
            writeln!(out, "{table}")
        } else {
            let clean = |c: &String| c.replace('\t', "\\t").replace('\n', "\\n");
            writeln!(
                out,
                "{}",
                self.headers
                    .iter()
                    .map(clean)
                    .collect::<Vec<_>>()
                    .join("\t")
            )?;
            for r in &self.rows {
                writeln!(
                    out,
                    "{}",
                    r.iter().map(clean).collect::<Vec<_>>().join("\t")
                )?;
            }
            Ok(())
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
}
