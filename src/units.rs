//! Parsing of user-given quantities: disc sizes (bytes, sizes with units,
//! medium names).

/// A medium preset: name, raw capacity in bytes, description.
pub const MEDIA: &[(&str, u64, &str)] = &[
    ("cd", 737_280_000, "CD-R 80 min"),
    ("dvd", 4_700_372_992, "DVD+R single layer"),
    ("dvd-dl", 8_543_666_176, "DVD+R dual layer"),
    ("bd25", 25_025_314_816, "BD-R single layer"),
    ("bd50", 50_050_629_632, "BD-R dual layer"),
    ("bd100", 100_103_356_416, "BD-R XL triple layer"),
];

/// The share of a medium's capacity a preset uses: the rest is left for
/// error-correction data (dvdisaster), as the original did.
pub const PRESET_SHARE: (u64, u64) = (3, 4);

/// Parses a disc size: plain bytes (`3525279744`), a size with a unit
/// (`700M`, `4.3G`, `4GiB`, `512k`; K/M/G/T/P are powers of 1000,
/// KiB/MiB/GiB/TiB/PiB powers of 1024), or a medium name (`cd`, `dvd`, `dvd-dl`, `bd25`, `bd50`,
/// `bd100`) meaning 75% of that medium's capacity.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    if let Some((_, cap, _)) = MEDIA.iter().find(|(name, _, _)| *name == lower) {
        return Ok(cap / PRESET_SHARE.1 * PRESET_SHARE.0);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let mult: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "p" | "pb" => 1_000_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "pib" => 1 << 50,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in size {text:?} (use bytes, K/M/G/T/P, KiB/MiB/GiB/TiB/PiB, or one of: {})",
                media_names()
            ))
        }
    };
    if num.is_empty() {
        return Err(format!(
            "{text:?} is not a size (use bytes, a size like 4.3G or 4GiB, or one of: {})",
            media_names()
        ));
    }
    let bytes = if num.contains('.') {
        let value: f64 = num
            .parse()
            .map_err(|_| format!("{text:?} is not a number"))?;
        let bytes = value * mult as f64;
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Err(format!("size {text:?} is too large"));
        }
        bytes.round() as u64
    } else {
        let value: u64 = num
            .parse()
            .map_err(|_| format!("size {text:?} is too large"))?;
        value
            .checked_mul(mult)
            .ok_or_else(|| format!("size {text:?} is too large"))?
    };
    if bytes == 0 {
        return Err(format!("disc size {text:?} must be more than zero"));
    }
    Ok(bytes)
}

/// Parses a duration: a whole number and `s`, `m` (minutes), `h` or `d`
/// (`90s`, `45m`, `5h`, `1d`), at most 366 days.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{text:?}: a duration is a number and s, m, h or d (90s, 45m, 5h)"))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .filter(|s| (1..=366 * 86_400).contains(s))
    .ok_or_else(|| {
        format!("{text:?}: a duration is a number and s, m (minutes), h or d, from 1s to 366d")
    })?;
    Ok(std::time::Duration::from_secs(secs))
}

/// Parses a point in time: Unix seconds (`1700000000`, `1700000000.5`), a
/// date (`2024-05-01`, meaning its end: 23:59:59.999 local time, so "as of
/// a day" includes that day), a date-time (`2024-05-01T12:00`,
/// `2024-05-01 12:00:30`, local time) or an RFC 3339 / ISO 8601 time with a
/// zone (`2024-05-01T12:00:00Z`, `...+02:00`). Returns Unix seconds.
pub fn parse_when(text: &str) -> Result<f64, String> {
    parse_when_in(text, &jiff::tz::TimeZone::system())
}

/// [`parse_when`] in a given time zone (for tests).
pub fn parse_when_in(text: &str, tz: &jiff::tz::TimeZone) -> Result<f64, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "{text:?} is not a time: use a date (2024-05-01), a date-time (2024-05-01T12:00) or Unix seconds"
        )
    };
    if t.is_empty() {
        return Err(bad());
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !t.contains('-') {
        let v: f64 = t.parse().map_err(|_| bad())?;
        return if v.is_finite() { Ok(v) } else { Err(bad()) };
    }
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Ok(ts.as_second() as f64 + f64::from(ts.subsec_nanosecond()) / 1e9);
    }
    let normalized = t.replacen(' ', "T", 1);
    if let Ok(dt) = normalized.parse::<jiff::civil::DateTime>() {
        let zoned = dt.to_zoned_datetime(tz.clone()).map_err(|_| bad())?;
        let ts = zoned.timestamp();
        // A bare date means the whole day.
        if !t.contains(['T', ' ', ':']) {
            let end = dt
                .date()
                .tomorrow()
                .map_err(|_| bad())?
                .to_zoned_datetime(tz.clone())
                .map_err(|_| bad())?
                .timestamp();
            return Ok(end.as_second() as f64 - 0.001);
        }
        return Ok(ts.as_second() as f64 + f64::from(ts.subsec_nanosecond()) / 1e9);
    }
    Err(bad())
}

fn media_names() -> String {
    MEDIA
        .iter()
        .map(|(n, _, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_three_quarters_of_the_medium() {
        assert_eq!(parse_size("dvd"), Ok(3_525_279_744));
        assert_eq!(parse_size("DVD"), Ok(3_525_279_744));
        assert_eq!(parse_size("cd"), Ok(552_960_000));
        assert_eq!(parse_size("bd25"), Ok(18_768_986_112));
    }

    #[test]
    fn units() {
        assert_eq!(parse_size("700M"), Ok(700_000_000));
        assert_eq!(parse_size("4.3G"), Ok(4_300_000_000));
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("12345"), Ok(12345));
        assert_eq!(parse_size("1 MiB"), Ok(1 << 20));
    }

    #[test]
    fn times() {
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(parse_when_in("1700000000", &utc), Ok(1_700_000_000.0));
        assert_eq!(parse_when_in("1700000000.5", &utc), Ok(1_700_000_000.5));
        assert_eq!(
            parse_when_in("2023-11-14T22:13:20", &utc),
            Ok(1_700_000_000.0)
        );
        assert_eq!(
            parse_when_in("2023-11-14 22:13:20", &utc),
            Ok(1_700_000_000.0)
        );
        assert_eq!(
            parse_when_in("2023-11-14T23:13:20+01:00", &utc),
            Ok(1_700_000_000.0)
        );
        // A date means the end of that day.
        assert_eq!(parse_when_in("1970-01-01", &utc), Ok(86_399.999));
        assert!(parse_when_in("yesterday", &utc).is_err());
        assert!(parse_when_in("", &utc).is_err());
        assert!(parse_when_in("2023-13-45", &utc).is_err());
    }

    proptest::proptest! {
        /// What the byte formatter prints (status, close and mkiso show disc
        /// sizes with it) parses back as a disc size to within the rounding
        /// of its one decimal, whatever the unit it picks (up to PiB).
        #[test]
        fn printed_sizes_parse_back(n in 1u64..(1 << 62)) {
            let printed = crate::output::bytes(n);
            let parsed = parse_size(&printed).unwrap();
            let unit = if n < 1024 { 1 } else { 1u64 << (10 * ((63 - n.leading_zeros()) / 10)) };
            proptest::prop_assert!(
                parsed.abs_diff(n) <= unit / 20 + 1,
                "{n} printed as {printed} parses as {parsed}"
            );
            if n < 1024 {
                proptest::prop_assert_eq!(parsed, n);
            }
        }

        /// Unix seconds printed the shortest way that reads back as the same
        /// float parse to exactly that time: a recorded timestamp given to
        /// --as-of selects that very record.
        #[test]
        fn unix_seconds_parse_back_exactly(t in 0.0f64..1e10) {
            proptest::prop_assert_eq!(parse_when_in(&format!("{t}"), &jiff::tz::TimeZone::UTC), Ok(t));
        }
    }

    #[test]
    fn rejects_nonsense() {
        assert!(parse_size("").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("12parsecs").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("1e300G").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert!(parse_size("1.5.3G").is_err());
    }
}
