//! The set's settings and run state, in table `settings`.

use std::path::PathBuf;

use rusqlite::{params, OptionalExtension};

use super::{now, Catalog};
use crate::error::{Error, Result};
use crate::names;

/// The setting that records how far the original's whole-second mtimes go:
/// rows with an id up to it were adopted and compare at whole seconds; every
/// later row is ours and compares at the precision it was stored with.
pub const WHOLE_SECOND_MTIMES: &str = "whole_second_mtimes_through";

/// Writes a set's settings (and when it was created) into `settings`.
pub(super) fn put_settings(
    tx: &rusqlite::Transaction<'_>,
    settings: &Settings,
) -> rusqlite::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let mut put = tx.prepare("INSERT OR REPLACE INTO settings(key, value) VALUES (?1, ?2)")?;
    put.execute(params![
        "watched",
        names::to_sql(settings.watched.as_os_str().as_bytes())
    ])?;
    put.execute(params!["disc_size", settings.disc_size as i64])?;
    put.execute(params![
        "excludes",
        serde_json::to_string(&settings.excludes).unwrap_or_else(|_| "[]".into())
    ])?;
    put.execute(params!["uuid", settings.uuid])?;
    put.execute(params!["name", settings.name])?;
    put.execute(params!["ecc", if settings.ecc { "on" } else { "off" }])?;
    put.execute(params!["created", now()])?;
    Ok(())
}

/// The settings of a set, in table `settings`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The watched folder, absolute.
    pub watched: PathBuf,
    /// Bytes a disc may hold before it is closed.
    pub disc_size: u64,
    /// Glob patterns left out of the backup.
    pub excludes: Vec<String>,
    /// The set's UUID, written on every disc so tools never mix two sets.
    pub uuid: String,
    /// A human name for the set.
    pub name: String,
    /// Whether images get dvdisaster error-correction data.
    pub ecc: bool,
}

impl Catalog {
    /// The set's settings.
    pub fn settings(&self) -> Result<Settings> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM settings")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut watched = None;
        let mut disc_size = None;
        let mut excludes = Vec::new();
        let mut uuid = String::new();
        let mut name = String::new();
        let mut ecc = false;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let key: String = row.get(0).map_err(|e| self.err(e))?;
            let value = row.get_ref(1).map_err(|e| self.err(e))?;
            match key.as_str() {
                "watched" => {
                    use std::os::unix::ffi::OsStrExt;
                    watched = names::from_sql(value)
                        .map(|b| PathBuf::from(std::ffi::OsStr::from_bytes(&b)));
                }
                "disc_size" => disc_size = value.as_i64().ok().filter(|v| *v > 0),
                "excludes" => {
                    excludes = value
                        .as_str()
                        .ok()
                        .and_then(|s| serde_json::from_str(s).ok())
                        .unwrap_or_default()
                }
                "uuid" => uuid = value.as_str().unwrap_or_default().to_string(),
                "name" => name = value.as_str().unwrap_or_default().to_string(),
                "ecc" => ecc = value.as_str().is_ok_and(|v| v == "on"),
                _ => {}
            }
        }
        let corrupt = |why: &str| Error::Corrupt {
            path: self.path.clone(),
            why: why.into(),
        };
        Ok(Settings {
            watched: watched.ok_or_else(|| corrupt("setting 'watched' is missing"))?,
            disc_size: disc_size.ok_or_else(|| corrupt("setting 'disc_size' is missing"))? as u64,
            excludes,
            uuid,
            name,
            ecc,
        })
    }

    /// Sets the size of discs not yet closed.
    pub fn set_disc_size(&self, bytes: u64) -> Result<()> {
        let v = i64::try_from(bytes)
            .map_err(|_| Error::Invalid(format!("disc size {bytes} is too large")))?;
        self.put_setting("disc_size", v)
    }

    /// Replaces the exclude patterns.
    pub fn set_excludes(&self, patterns: &[String]) -> Result<()> {
        let json = serde_json::to_string(patterns)
            .map_err(|e| Error::Invalid(format!("exclude patterns: {e}")))?;
        self.put_setting("excludes", json)
    }

    /// Reads a free-form state value from `settings` (e.g. `last_run`).
    pub fn state_f64(&self, key: &str) -> Result<Option<f64>> {
        self.conn
            .query_row("SELECT value FROM settings WHERE key=?1", [key], |r| {
                r.get::<_, Option<f64>>(0)
            })
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// Writes a state value into `settings`.
    pub fn set_state_f64(&self, key: &str, value: f64) -> Result<()> {
        self.put_setting(key, value)
    }

    /// A free-form text setting (e.g. `on_disc_ready`).
    pub fn setting_text(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM settings WHERE key=?1", [key], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// Sets a free-form text setting.
    pub fn set_setting_text(&self, key: &str, value: &str) -> Result<()> {
        self.put_setting(key, value)
    }

    /// The highest file id whose mtime is the original dBackup's whole
    /// seconds (0 for a set that was never adopted). Recorded by `adopt`;
    /// for a set adopted before it was, the rows older than the adoption.
    pub fn whole_second_mtimes_through(&self) -> Result<i64> {
        let recorded: Option<i64> = self
            .conn
            .query_row(
                "SELECT value FROM settings WHERE key=?1",
                [WHOLE_SECOND_MTIMES],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))?;
        if let Some(id) = recorded {
            return Ok(id);
        }
        self.conn
            .query_row(
                "SELECT coalesce(max(id), 0) FROM files WHERE copied=1 AND timestamp <=
                   (SELECT value FROM settings WHERE key='adopted')",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.err(e))
    }
}
