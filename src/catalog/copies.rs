//! Copies of discs and the checks made of them (tables `copies` and
//! `checks`): what was burned or recorded by hand, where each copy is,
//! and what each read of a disc found. Made with the first copy or check
//! recorded, in the workdir's catalogue only.
//!
//! They describe physical media, not the data: a dbackup that lacks them
//! reads the set as before (it just does not know a disc has a twin), so
//! they raise no schema version, and a disc's frozen catalogue may carry
//! them as they were when it closed; no reader of a disc looks at them.

use rusqlite::{params, OptionalExtension};

use super::Catalog;
use crate::copies::{CheckResult, DiscName};
use crate::error::{Error, Result};

const COPY_TABLES: &str = "
CREATE TABLE IF NOT EXISTS copies(disc TEXT NOT NULL, copy INTEGER NOT NULL, made REAL NOT NULL,
    how TEXT NOT NULL, drive TEXT, medium TEXT, location TEXT, lost REAL,
    PRIMARY KEY(disc, copy));
CREATE TABLE IF NOT EXISTS checks(id INTEGER PRIMARY KEY, disc TEXT NOT NULL, copy INTEGER,
    started REAL NOT NULL, checked REAL NOT NULL, complete INTEGER NOT NULL,
    files_ok INTEGER NOT NULL, damaged INTEGER NOT NULL, unreadable INTEGER NOT NULL,
    missing INTEGER NOT NULL, names TEXT NOT NULL, next_file INTEGER NOT NULL,
    how TEXT NOT NULL, source TEXT);
CREATE INDEX IF NOT EXISTS checks_disc ON checks(disc, copy);
";

/// The most copies of one disc the catalogue takes: a bound on every
/// loop over them, far above any real shelf.
pub const MAX_COPIES: i64 = 1000;

/// One copy of a disc.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CopyRow {
    pub disc: DiscName,
    pub copy: i64,
    /// When it was burned or recorded (Unix seconds).
    pub made: f64,
    /// `burned` (by dbackup-burn, read back and compared) or `added` (by hand).
    pub how: String,
    pub drive: Option<String>,
    pub medium: Option<String>,
    pub location: Option<String>,
    /// When it was marked lost.
    pub lost: Option<f64>,
}

/// A copy to record.
#[derive(Debug, Clone, Default)]
pub struct NewCopy {
    pub made: f64,
    pub how: &'static str,
    pub drive: Option<String>,
    pub medium: Option<String>,
    pub location: Option<String>,
}

/// One check of a disc (or of one of its copies), as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckRow {
    pub id: i64,
    pub disc: DiscName,
    /// The copy read, when known.
    pub copy: Option<i64>,
    pub started: f64,
    pub checked: f64,
    /// False while a time-limited check has files left: `next_file` is
    /// where the next run goes on (in on-disc order).
    pub complete: bool,
    pub result: CheckResult,
    /// Names of the damaged, unreadable and missing files (first ones).
    pub names: Vec<String>,
    pub next_file: u64,
    /// `verify` or `burn`.
    pub how: String,
    /// What was read (a device, an image, a folder).
    pub source: Option<String>,
}

impl Catalog {
    fn copies_err(&self, e: rusqlite::Error) -> Error {
        self.err(e)
    }

    /// Whether the catalogue has the copy tables.
    pub fn has_copy_tables(&self) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type='table'
                 AND name IN ('copies', 'checks')",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n == 2)
            .map_err(|e| self.copies_err(e))
    }

    fn make_copy_tables(&self) -> Result<()> {
        self.conn
            .execute_batch(COPY_TABLES)
            .map_err(|e| self.copies_err(e))
    }

    /// Records a new copy of `disc`; its number (one more than the highest
    /// so far, lost ones included, so a number never names two copies).
    /// A data disc marked lost is available again.
    pub fn add_copy(&mut self, disc: &DiscName, c: &NewCopy) -> Result<i64> {
        self.add_copy_checked(disc, c, None).map(|(n, _)| n)
    }

    /// [`Catalog::add_copy`], with its first check (a burn's read-back,
    /// whose `copy` is set to the new number) in the same transaction, so
    /// a burned copy is never recorded without it. The copy's number and
    /// the check's id.
    pub fn add_copy_checked(
        &mut self,
        disc: &DiscName,
        c: &NewCopy,
        check: Option<&CheckRow>,
    ) -> Result<(i64, Option<i64>)> {
        self.make_copy_tables()?;
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        // Immediate: the number is read and used under the write lock, so a
        // writer that commits in between (a burn's record comes after the
        // medium is spent) is waited for instead of failing this one.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(map)?;
        let next: i64 = tx
            .query_row(
                "SELECT coalesce(max(copy), 0) + 1 FROM copies WHERE disc=?1",
                [disc.key()],
                |r| r.get(0),
            )
            .map_err(map)?;
        fail::fail_point!("catalog::add_copy");
        if next > MAX_COPIES {
            return Err(Error::Invalid(format!(
                "{} has {MAX_COPIES} copies recorded already",
                disc.label()
            )));
        }
        tx.execute(
            "INSERT INTO copies(disc, copy, made, how, drive, medium, location, lost)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
            params![
                disc.key(),
                next,
                c.made,
                c.how,
                c.drive,
                c.medium,
                c.location
            ],
        )
        .map_err(map)?;
        // A disc is held while any copy of it is: a new copy of a data disc
        // marked lost makes it available again.
        if let DiscName::Data(n) = disc {
            tx.execute("UPDATE discs SET available=1 WHERE id=?1", [n])
                .map_err(map)?;
        }
        let check_id = match check {
            Some(k) => {
                let mut k = k.clone();
                k.copy = Some(next);
                insert_check(&tx, &k).map_err(map)?;
                Some(tx.last_insert_rowid())
            }
            None => None,
        };
        tx.commit().map_err(map)?;
        Ok((next, check_id))
    }

    /// Every copy recorded (of `disc`, or of every disc), in disc then
    /// copy order.
    pub fn copies(&self, disc: Option<&DiscName>) -> Result<Vec<CopyRow>> {
        if !self.has_copy_tables()? {
            return Ok(Vec::new());
        }
        let key = disc.map(DiscName::key);
        let rows = self.query_all(
            "SELECT disc, copy, made, how, drive, medium, location, lost FROM copies
             WHERE ?1 IS NULL OR disc=?1",
            [key],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    CopyRow {
                        disc: DiscName::Data(0),
                        copy: r.get(1)?,
                        made: r.get(2)?,
                        how: r.get(3)?,
                        drive: r.get(4)?,
                        medium: r.get(5)?,
                        location: r.get(6)?,
                        lost: r.get(7)?,
                    },
                ))
            },
        )?;
        // A row whose key names no disc (edited by hand) is no copy of any
        // disc: left out, rather than failing every tool that lists
        // copies over a table that holds no data.
        let mut out = Vec::with_capacity(rows.len());
        for (key, mut row) in rows {
            if let Ok(disc) = DiscName::parse(&key) {
                row.disc = disc;
                out.push(row);
            }
        }
        out.sort_by(|a, b| (&a.disc, a.copy).cmp(&(&b.disc, b.copy)));
        Ok(out)
    }

    /// The copies of `disc` not marked lost, in copy order.
    pub fn held_copies(&self, disc: &DiscName) -> Result<Vec<CopyRow>> {
        let mut v = self.copies(Some(disc))?;
        v.retain(|c| c.lost.is_none());
        Ok(v)
    }

    /// One copy, if recorded.
    pub fn copy(&self, disc: &DiscName, copy: i64) -> Result<Option<CopyRow>> {
        Ok(self
            .copies(Some(disc))?
            .into_iter()
            .find(|c| c.copy == copy))
    }

    /// Sets where a copy is.
    pub fn move_copy(&self, disc: &DiscName, copy: i64, location: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE copies SET location=?3 WHERE disc=?1 AND copy=?2",
                params![disc.key(), copy, location],
            )
            .map(|_| ())
            .map_err(|e| self.copies_err(e))
    }

    /// Marks a copy lost, or found again (`None`); a copy of a data disc
    /// marked lost that is found makes the disc available again, in the
    /// same transaction. Marking a copy lost never marks its disc lost:
    /// losing a disc's last copy is `dbackup-lost`'s (it first abandons
    /// the split files still being staged onto it). Returns the copies
    /// still held.
    pub fn set_copy_lost(&mut self, disc: &DiscName, copy: i64, lost: Option<f64>) -> Result<u64> {
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(map)?;
        tx.execute(
            "UPDATE copies SET lost=?3 WHERE disc=?1 AND copy=?2",
            params![disc.key(), copy, lost],
        )
        .map_err(map)?;
        let held: i64 = tx
            .query_row(
                "SELECT count(*) FROM copies WHERE disc=?1 AND lost IS NULL",
                [disc.key()],
                |r| r.get(0),
            )
            .map_err(map)?;
        if let (DiscName::Data(n), None) = (disc, lost) {
            tx.execute("UPDATE discs SET available=1 WHERE id=?1", [n])
                .map_err(map)?;
        }
        tx.commit().map_err(map)?;
        Ok(held as u64)
    }

    /// Records a check; its id.
    pub fn add_check(&mut self, c: &CheckRow) -> Result<i64> {
        self.make_copy_tables()?;
        insert_check(&self.conn, c).map_err(|e| self.copies_err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Replaces a check's findings (a time-limited check that went on).
    pub fn update_check(&mut self, c: &CheckRow) -> Result<()> {
        let names = serde_json::to_string(&c.names).unwrap_or_else(|_| "[]".into());
        self.conn
            .execute(
                "UPDATE checks SET checked=?2, complete=?3, files_ok=?4, damaged=?5,
                    unreadable=?6, missing=?7, names=?8, next_file=?9, source=?10
                 WHERE id=?1",
                params![
                    c.id,
                    c.checked,
                    c.complete as i64,
                    c.result.files_ok as i64,
                    c.result.damaged as i64,
                    c.result.unreadable as i64,
                    c.result.missing as i64,
                    names,
                    c.next_file as i64,
                    c.source
                ],
            )
            .map(|_| ())
            .map_err(|e| self.copies_err(e))
    }

    /// Every check recorded, oldest first.
    pub fn checks(&self) -> Result<Vec<CheckRow>> {
        if !self.has_copy_tables()? {
            return Ok(Vec::new());
        }
        let rows = self.query_all(
            "SELECT id, disc, copy, started, checked, complete, files_ok, damaged, unreadable,
                    missing, names, next_file, how, source
             FROM checks ORDER BY checked, id",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(10)?,
                    CheckRow {
                        id: r.get(0)?,
                        disc: DiscName::Data(0),
                        copy: r.get(2)?,
                        started: r.get(3)?,
                        checked: r.get(4)?,
                        complete: r.get::<_, i64>(5)? != 0,
                        result: CheckResult {
                            files_ok: r.get::<_, i64>(6)?.max(0) as u64,
                            damaged: r.get::<_, i64>(7)?.max(0) as u64,
                            unreadable: r.get::<_, i64>(8)?.max(0) as u64,
                            missing: r.get::<_, i64>(9)?.max(0) as u64,
                        },
                        names: Vec::new(),
                        next_file: r.get::<_, i64>(11)?.max(0) as u64,
                        how: r.get(12)?,
                        source: r.get(13)?,
                    },
                ))
            },
        )?;
        // As for copies: a row naming no disc is left out.
        let mut out = Vec::with_capacity(rows.len());
        for (key, names, mut row) in rows {
            if let Ok(disc) = DiscName::parse(&key) {
                row.disc = disc;
                row.names = serde_json::from_str(&names).unwrap_or_default();
                out.push(row);
            }
        }
        Ok(out)
    }

    /// The copy policy (`copies`, default 1) and check schedule in seconds
    /// (`check_every`, default 12 months).
    pub fn copy_policy(&self) -> Result<(u64, f64)> {
        let copies = self
            .conn
            .query_row("SELECT value FROM settings WHERE key='copies'", [], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map_err(|e| self.copies_err(e))?
            .filter(|c| *c >= 1)
            .unwrap_or(1) as u64;
        let every = match self.setting_text("check_every")? {
            Some(v) => crate::copies::parse_every(&v).map_err(|why| Error::Corrupt {
                path: self.path.clone(),
                why: format!("setting 'check_every': {why}"),
            })?,
            None => crate::copies::DEFAULT_CHECK_EVERY,
        };
        Ok((copies, every))
    }

    /// Sets the copy policy.
    pub fn set_copies_policy(&self, copies: u64) -> Result<()> {
        self.put_setting("copies", copies as i64)
    }
}

fn insert_check(conn: &rusqlite::Connection, c: &CheckRow) -> rusqlite::Result<usize> {
    let names = serde_json::to_string(&c.names).unwrap_or_else(|_| "[]".into());
    conn.execute(
        "INSERT INTO checks(disc, copy, started, checked, complete, files_ok, damaged,
            unreadable, missing, names, next_file, how, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            c.disc.key(),
            c.copy,
            c.started,
            c.checked,
            c.complete as i64,
            c.result.files_ok as i64,
            c.result.damaged as i64,
            c.result.unreadable as i64,
            c.result.missing as i64,
            names,
            c.next_file as i64,
            c.how,
            c.source
        ],
    )
}
