//! The life of a disc after its image: the copies burned or recorded by
//! hand, where each is, and when each was last read and found good.
//!
//! A disc here is a data disc (`3`) or a parity disc (`parity-1-2`), the
//! names of their images without `.iso`. A copy is held until it is
//! marked lost; a data disc is lost when its last copy is (and found again
//! with any copy). The policy (`copies`, default 1) is how many copies of
//! each disc should be held; the schedule (`check_every`, default 12
//! months) how old a copy's last good check may be before it is due.
//! A copy recorded by hand was never read by dbackup: it is due at once.

use std::collections::HashMap;
use std::fmt;

use crate::catalog::copies::{CheckRow, CopyRow};
use crate::error::Result;
use crate::workdir::Workdir;

/// Seconds in the schedule's units.
const DAY: f64 = 86_400.0;
/// A month of the schedule: a twelfth of a Julian year.
const MONTH: f64 = 365.25 * DAY / 12.0;

/// The default check schedule: 12 months.
pub const DEFAULT_CHECK_EVERY: f64 = 12.0 * MONTH;

/// A disc of the set: a data disc or a parity disc.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiscName {
    Data(i64),
    /// Group and parity disc number.
    Parity(i64, i64),
}

impl DiscName {
    /// Parses `3` or `parity-1-2` (also `disc-3`, and either with `.iso`).
    pub fn parse(s: &str) -> std::result::Result<DiscName, String> {
        let t = s.strip_suffix(".iso").unwrap_or(s);
        let number = |d: &str| -> Option<i64> {
            (!d.is_empty() && d.len() <= 12 && d.bytes().all(|b| b.is_ascii_digit()))
                .then(|| d.parse().ok())
                .flatten()
                .filter(|n| *n >= 1)
        };
        if let Some(rest) = t.strip_prefix("parity-") {
            if let Some((g, j)) = rest.split_once('-') {
                if let (Some(g), Some(j)) = (number(g), number(j)) {
                    return Ok(DiscName::Parity(g, j));
                }
            }
        } else if let Some(n) = number(t.strip_prefix("disc-").unwrap_or(t)) {
            return Ok(DiscName::Data(n));
        }
        Err(format!(
            "{s:?} is not a disc: a data disc's number (3) or a parity disc (parity-1-2)"
        ))
    }

    /// The key in the catalogue: `3` or `parity-1-2`.
    pub fn key(&self) -> String {
        match self {
            DiscName::Data(n) => n.to_string(),
            DiscName::Parity(g, j) => format!("parity-{g}-{j}"),
        }
    }

    /// `disc 3` or `parity disc 1-2`.
    pub fn label(&self) -> String {
        match self {
            DiscName::Data(n) => format!("disc {n}"),
            DiscName::Parity(g, j) => format!("parity disc {g}-{j}"),
        }
    }

    /// Its image's file name in `isos/`.
    pub fn image_name(&self) -> String {
        match self {
            DiscName::Data(n) => format!("disc-{n}.iso"),
            DiscName::Parity(g, j) => format!("parity-{g}-{j}.iso"),
        }
    }
}

impl fmt::Display for DiscName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl serde::Serialize for DiscName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.key())
    }
}

/// What a check of a disc found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CheckResult {
    pub files_ok: u64,
    pub damaged: u64,
    pub unreadable: u64,
    pub missing: u64,
}

impl CheckResult {
    /// Nothing wrong found.
    pub fn is_good(&self) -> bool {
        self.damaged == 0 && self.unreadable == 0 && self.missing == 0
    }
}

/// Parses a schedule: a number and a unit, `d` (days), `w` (weeks), `m`
/// (months, a twelfth of a year) or `y` (years): `12m`, `90d`, `2y`.
/// Seconds.
pub fn parse_every(s: &str) -> std::result::Result<f64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u32 = n
        .parse()
        .ok()
        .filter(|n| (1..=1200).contains(n))
        .ok_or_else(|| {
            format!("{s:?}: a schedule is a number from 1 to 1200 and a unit (90d, 6w, 12m, 2y)")
        })?;
    let unit = match unit {
        "d" => DAY,
        "w" => 7.0 * DAY,
        "m" => MONTH,
        "y" => 12.0 * MONTH,
        _ => {
            return Err(format!(
                "{s:?}: the unit is d (days), w (weeks), m (months) or y (years)"
            ))
        }
    };
    Ok(f64::from(n) * unit)
}

/// A schedule from its seconds, in whole months when it is some (`12m`,
/// `24m` for `2y`), else weeks, else days.
pub fn show_every(secs: f64) -> String {
    for (unit, len) in [("m", MONTH), ("w", 7.0 * DAY)] {
        let n = secs / len;
        if (n - n.round()).abs() < 1e-6 && n >= 1.0 {
            return format!("{}{unit}", n.round() as u64);
        }
    }
    format!("{}d", (secs / DAY).round() as u64)
}

/// The time now, Unix seconds. Test builds take `DBACKUP_NOW` (a date or
/// Unix seconds), so a test can see a schedule fall due; other builds
/// ignore it.
pub fn now() -> f64 {
    #[cfg(feature = "failpoints")]
    if let Ok(v) = std::env::var("DBACKUP_NOW") {
        if let Ok(t) = crate::units::parse_when(&v) {
            return t;
        }
    }
    crate::catalog::now()
}

/// A disc with its copies and last checks.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DiscCopies {
    pub disc: DiscName,
    /// Copies not lost.
    pub held: u64,
    /// Fewer held than the policy asks.
    pub below_policy: bool,
    /// The data disc is marked lost.
    pub lost: bool,
    pub copies: Vec<CopyState>,
}

/// A copy with what its checks found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CopyState {
    #[serde(flatten)]
    pub copy: CopyRow,
    /// The newest complete check that found nothing wrong (a burn's
    /// read-back counts).
    pub last_good_check: Option<f64>,
    /// The newest check of it, good or not.
    pub last_check: Option<LastCheck>,
    /// When it is next due (its last good check plus the schedule; now
    /// for a copy never checked).
    pub due: f64,
}

/// The newest check of a copy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LastCheck {
    pub checked: f64,
    pub complete: bool,
    pub good: bool,
    pub result: CheckResult,
    pub names: Vec<String>,
}

/// Every disc of the set that can have copies (closed data discs and
/// parity discs built), with its copies; the policy and schedule.
pub struct Shelf {
    pub discs: Vec<DiscCopies>,
    pub policy: u64,
    pub every: f64,
}

impl Shelf {
    /// Reads the workdir's discs, copies and checks.
    pub fn read(wd: &Workdir) -> Result<Shelf> {
        let cat = &wd.catalog;
        let (policy, every) = cat.copy_policy()?;
        let mut names: Vec<(DiscName, bool)> = cat
            .discs()?
            .into_iter()
            .filter(|d| d.completed.is_some())
            .map(|d| (DiscName::Data(d.id), !d.available))
            .collect();
        for g in cat.parity_groups()? {
            for j in &g.built {
                names.push((DiscName::Parity(g.id, *j), false));
            }
        }
        let copies = cat.copies(None)?;
        let checks = cat.checks()?;
        let mut by_disc: HashMap<&DiscName, Vec<&CopyRow>> = HashMap::new();
        for c in &copies {
            by_disc.entry(&c.disc).or_default().push(c);
        }
        let mut by_copy: HashMap<(&DiscName, i64), Vec<&CheckRow>> = HashMap::new();
        for k in &checks {
            if let Some(copy) = k.copy {
                by_copy.entry((&k.disc, copy)).or_default().push(k);
            }
        }
        // Copies of discs the set no longer shows (none today) are kept
        // out of the list rather than failing it.
        let discs = names
            .into_iter()
            .map(|(disc, lost)| {
                let states: Vec<CopyState> = by_disc
                    .get(&disc)
                    .map(|v| v.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .map(|c| {
                        let mine = by_copy
                            .get(&(&c.disc, c.copy))
                            .map(|v| v.as_slice())
                            .unwrap_or_default();
                        copy_state(c, mine, every)
                    })
                    .collect();
                let held = states.iter().filter(|c| c.copy.lost.is_none()).count() as u64;
                DiscCopies {
                    below_policy: held < policy,
                    held,
                    lost,
                    copies: states,
                    disc,
                }
            })
            .collect();
        Ok(Shelf {
            discs,
            policy,
            every,
        })
    }

    /// The copies held whose last good check is older than the schedule
    /// (or that were never checked), most overdue first.
    pub fn due(&self, now: f64) -> Vec<(&DiscCopies, &CopyState)> {
        let mut out: Vec<(&DiscCopies, &CopyState)> = self
            .discs
            .iter()
            .flat_map(|d| d.copies.iter().map(move |c| (d, c)))
            .filter(|(_, c)| c.copy.lost.is_none() && c.due <= now)
            .collect();
        out.sort_by(|a, b| {
            a.1.due
                .total_cmp(&b.1.due)
                .then_with(|| a.0.disc.cmp(&b.0.disc))
                .then(a.1.copy.copy.cmp(&b.1.copy.copy))
        });
        out
    }

    /// The discs held in fewer copies than the policy asks (lost discs
    /// left out: they have none to copy from).
    pub fn below_policy(&self) -> Vec<&DiscCopies> {
        self.discs
            .iter()
            .filter(|d| d.below_policy && !d.lost)
            .collect()
    }
}

fn copy_state(c: &CopyRow, checks: &[&CheckRow], every: f64) -> CopyState {
    let last_good_check = checks
        .iter()
        .filter(|k| k.complete && k.result.is_good())
        .map(|k| k.checked)
        .reduce(f64::max);
    // The checks come oldest first.
    let last_check = checks.last().map(|k| LastCheck {
        checked: k.checked,
        complete: k.complete,
        good: k.complete && k.result.is_good(),
        result: k.result,
        names: k.names.clone(),
    });
    CopyState {
        due: last_good_check.map_or(c.made, |t| t + every),
        last_good_check,
        last_check,
        copy: c.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disc_names_round_trip_and_refuse_the_rest() {
        for (s, d) in [
            ("3", DiscName::Data(3)),
            ("disc-3.iso", DiscName::Data(3)),
            ("parity-1-2", DiscName::Parity(1, 2)),
            ("parity-10-1.iso", DiscName::Parity(10, 1)),
        ] {
            assert_eq!(DiscName::parse(s), Ok(d.clone()), "{s}");
            assert_eq!(DiscName::parse(&d.key()), Ok(d));
        }
        for bad in [
            "",
            "0",
            "-1",
            "3a",
            "parity-1",
            "parity--2",
            "parity-1-0",
            "p1-1",
            "9999999999999",
        ] {
            assert!(DiscName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schedules_parse_and_show_as_written() {
        for s in ["90d", "6w", "12m", "2y", "1m"] {
            let secs = parse_every(s).unwrap();
            let shown = show_every(secs);
            assert_eq!(parse_every(&shown).unwrap(), secs, "{s} -> {shown}");
        }
        assert_eq!(show_every(parse_every("1y").unwrap()), "12m");
        assert_eq!(show_every(parse_every("90d").unwrap()), "90d");
        for bad in ["", "12", "m", "0m", "12x", "1201d", "-1m", "1.5y"] {
            assert!(parse_every(bad).is_err(), "{bad}");
        }
    }
}
