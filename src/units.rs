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
/// (`700M`, `4.3G`, `4GiB`, `512k`; K/M/G/T are powers of 1000, KiB/MiB/GiB/TiB
/// powers of 1024), or a medium name (`cd`, `dvd`, `dvd-dl`, `bd25`, `bd50`,
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
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in size {text:?} (use bytes, K/M/G/T, KiB/MiB/GiB/TiB, or one of: {})",
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
