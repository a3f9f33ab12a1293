//! Shared rendering helpers so every tool looks alike: byte sizes, times,
//! tables.

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

/// A table: drawn with comfy-table for people (`styled`, i.e. stdout is a
/// terminal), tab-separated with a header line for scripts otherwise.
/// Columns listed in `right` are right-aligned when drawn. Cells are
/// printed as given: callers escape names for terminals.
pub fn table(header: &[&str], rows: &[Vec<String>], right: &[usize], styled: bool) -> String {
    if !styled {
        let mut out = header.join("\t");
        out.push('\n');
        for row in rows {
            // A tab or newline inside a cell would break the columns.
            let cells: Vec<String> = row.iter().map(|c| c.replace(['\t', '\n'], " ")).collect();
            out.push_str(&cells.join("\t"));
            out.push('\n');
        }
        return out;
    }
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED.with_rounded_corners())
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    for row in rows {
        t.add_row(row.clone());
    }
    // A terminal that reports no width (or a tiny one) would squeeze every
    // column to a letter: draw at full width instead.
    if t.width().is_none_or(|w| w < 40) {
        t.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    }
    for &i in right {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    let mut out = t.to_string();
    out.push('\n');
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
    fn tables_are_tab_separated_for_scripts() {
        let rows = vec![vec!["1".to_string(), "a\tb".to_string()]];
        assert_eq!(
            table(&["n", "name"], &rows, &[0], false),
            "n\tname\n1\ta b\n"
        );
        let drawn = table(&["n", "name"], &rows, &[0], true);
        assert!(drawn.contains("name") && drawn.contains('│'), "{drawn}");
    }
}
