//! Parity groups in the catalogue (tables `parity_groups`,
//! `parity_members`, `parity_discs`; see `docs/parity.md`), and reading
//! them from a disc's manifest, where they are hostile until checked.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::{now, Catalog};
use crate::error::{Error, Result};
use crate::parity::{Member, Scheme, BLOCKS_PER_MEMBER, MAX_K, MAX_M};

/// The parity tables, made when parity is first turned on.
const PARITY_TABLES: &str = "
CREATE TABLE IF NOT EXISTS parity_groups(id INTEGER PRIMARY KEY, k INTEGER NOT NULL,
    m INTEGER NOT NULL, first_disc INTEGER NOT NULL, last_disc INTEGER, block_size INTEGER,
    state TEXT NOT NULL, completed REAL);
CREATE TABLE IF NOT EXISTS parity_members(disc_id INTEGER PRIMARY KEY,
    group_id INTEGER NOT NULL, size INTEGER, md5 TEXT);
CREATE INDEX IF NOT EXISTS parity_members_group ON parity_members(group_id);
CREATE TABLE IF NOT EXISTS parity_discs(group_id INTEGER NOT NULL, j INTEGER NOT NULL,
    size INTEGER NOT NULL, verified REAL NOT NULL, PRIMARY KEY(group_id, j));
";

/// The schema version the parity tables bring.
pub(super) const PARITY_SCHEMA_VERSION: i64 = 3;

/// A group's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupState {
    /// Taking discs.
    Open,
    /// Its parity is to be built.
    Full,
    /// Every parity disc is built and read back.
    Complete,
}

impl GroupState {
    fn parse(s: &str) -> Option<GroupState> {
        match s {
            "open" => Some(GroupState::Open),
            "full" => Some(GroupState::Full),
            "complete" => Some(GroupState::Complete),
            _ => None,
        }
    }
}

/// A parity group of the workdir's catalogue.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Group {
    pub id: i64,
    pub scheme: Scheme,
    pub state: GroupState,
    /// Its data discs, in order.
    pub discs: Vec<i64>,
    /// Set once the parity discs are being made.
    pub block_size: Option<u64>,
    /// Protected sizes and MD5s, once the parity discs are being made.
    pub members: Vec<Member>,
    /// Parity discs built and read back.
    pub built: Vec<i64>,
}

impl Catalog {
    /// Whether the catalogue has the parity tables.
    pub fn has_parity_tables(&self) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type='table'
                 AND name IN ('parity_groups', 'parity_members', 'parity_discs')",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n == 3)
            .map_err(|e| self.err(e))
    }

    /// The scheme of the next group, or None when parity is off.
    pub fn parity_scheme(&self) -> Result<Option<Scheme>> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM settings WHERE key='parity'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        match v {
            None => Ok(None),
            Some(v) => Scheme::parse_setting(&v).map_err(|why| Error::Corrupt {
                path: self.path.clone(),
                why: format!("setting 'parity': {why}"),
            }),
        }
    }

    /// Turns parity on with `scheme` for groups not yet started, or off.
    /// Turning it on makes the tables and raises the schema version in the
    /// same transaction; turning it off ends the open group, so the discs
    /// already in it are protected still.
    pub fn set_parity(&mut self, scheme: Option<Scheme>) -> Result<()> {
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(map)?;
        if scheme.is_some() {
            tx.execute_batch(PARITY_TABLES).map_err(map)?;
            let v: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(map)?;
            tx.pragma_update(None, "user_version", v.max(PARITY_SCHEMA_VERSION))
                .map_err(map)?;
        }
        let value = scheme.map_or_else(|| "off".to_string(), |s| s.to_string());
        tx.execute(
            "INSERT INTO settings(key, value) VALUES ('parity', ?1)
             ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            [value],
        )
        .map_err(map)?;
        if scheme.is_none() && has_tables(&tx).map_err(map)? {
            end_open(&tx).map_err(map)?;
        }
        tx.commit().map_err(map)
    }

    /// Ends the open group now (`close --parity`): it becomes full with the
    /// discs it has. Returns its id, or None when no group is open.
    pub fn end_open_group(&mut self) -> Result<Option<i64>> {
        if !self.has_parity_tables()? {
            return Ok(None);
        }
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(map)?;
        let id = end_open(&tx).map_err(map)?;
        tx.commit().map_err(map)?;
        Ok(id)
    }

    /// Every parity group, in order.
    pub fn parity_groups(&self) -> Result<Vec<Group>> {
        if !self.has_parity_tables()? {
            return Ok(Vec::new());
        }
        let rows = self.query_all(
            "SELECT id, k, m, block_size, state FROM parity_groups ORDER BY id",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            },
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, k, m, block_size, state) in rows {
            let corrupt = |why: String| Error::Corrupt {
                path: self.path.clone(),
                why: format!("parity group {id}: {why}"),
            };
            let state =
                GroupState::parse(&state).ok_or_else(|| corrupt(format!("state '{state}'")))?;
            let members = self.query_all(
                "SELECT disc_id, size, md5 FROM parity_members WHERE group_id=?1 ORDER BY disc_id",
                [id],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<i64>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                },
            )?;
            let built = self.query_all(
                "SELECT j FROM parity_discs WHERE group_id=?1 ORDER BY j",
                [id],
                |r| r.get::<_, i64>(0),
            )?;
            out.push(Group {
                id,
                scheme: Scheme {
                    k: u32::try_from(k).map_err(|_| corrupt(format!("k {k}")))?,
                    m: u32::try_from(m).map_err(|_| corrupt(format!("m {m}")))?,
                },
                state,
                discs: members.iter().map(|m| m.0).collect(),
                block_size: block_size.and_then(|b| u64::try_from(b).ok()),
                members: members
                    .iter()
                    .filter_map(|(disc, size, md5)| {
                        Some(Member {
                            disc: *disc,
                            size: u64::try_from((*size)?).ok()?,
                            md5: md5.clone()?,
                        })
                    })
                    .collect(),
                built,
            });
        }
        Ok(out)
    }

    /// Records a group's layout, just before its parity discs are made:
    /// the block size and every member's protected size and MD5.
    pub fn record_parity_layout(
        &mut self,
        group: i64,
        block_size: u64,
        members: &[Member],
    ) -> Result<()> {
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(map)?;
        tx.execute(
            "UPDATE parity_groups SET block_size=?2 WHERE id=?1",
            params![group, block_size as i64],
        )
        .map_err(map)?;
        for m in members {
            tx.execute(
                "UPDATE parity_members SET size=?3, md5=?4 WHERE group_id=?1 AND disc_id=?2",
                params![group, m.disc, m.size as i64, m.md5],
            )
            .map_err(map)?;
        }
        tx.commit().map_err(map)
    }

    /// Records parity disc `j` of `group` as built and read back; the
    /// group is complete once it has them all.
    pub fn record_parity_disc(&mut self, group: i64, j: i64, size: u64) -> Result<()> {
        let path = self.path.clone();
        let map = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(map)?;
        let t = now();
        tx.execute(
            "INSERT OR REPLACE INTO parity_discs(group_id, j, size, verified) VALUES (?1, ?2, ?3, ?4)",
            params![group, j, size as i64, t],
        )
        .map_err(map)?;
        tx.execute(
            "UPDATE parity_groups SET state='complete', completed=?2
             WHERE id=?1 AND state='full'
               AND (SELECT count(*) FROM parity_discs WHERE group_id=?1) >= m",
            params![group, t],
        )
        .map_err(map)?;
        tx.commit().map_err(map)
    }
}

fn has_tables(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type='table'
         AND name IN ('parity_groups', 'parity_members', 'parity_discs')",
        [],
        |r| r.get::<_, i64>(0),
    )
    // All three must be tables: a view (hostile, from a disc) could run
    // any query, never ending, on our behalf.
    .map(|n| n == 3)
}

fn end_open(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    let open: Option<i64> = conn
        .query_row(
            "SELECT id FROM parity_groups WHERE state='open' ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = open {
        conn.execute(
            "UPDATE parity_groups SET state='full',
               last_disc=(SELECT max(disc_id) FROM parity_members WHERE group_id=?1)
             WHERE id=?1",
            [id],
        )?;
    }
    Ok(open)
}

/// Puts a disc just closed into the open group (starting one with the
/// current scheme when none is open), in the closing's transaction; the
/// group is full once it has its `k`. Nothing when parity is off.
pub(super) fn join_group(conn: &Connection, disc: i64) -> rusqlite::Result<()> {
    if !has_tables(conn)? {
        return Ok(());
    }
    let already: Option<i64> = conn
        .query_row(
            "SELECT group_id FROM parity_members WHERE disc_id=?1",
            [disc],
            |r| r.get(0),
        )
        .optional()?;
    if already.is_some() {
        return Ok(());
    }
    let open: Option<(i64, i64)> = conn
        .query_row(
            "SELECT id, k FROM parity_groups WHERE state='open' ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (group, k) = match open {
        Some(g) => g,
        None => {
            let setting: Option<String> = conn
                .query_row("SELECT value FROM settings WHERE key='parity'", [], |r| {
                    r.get(0)
                })
                .optional()?;
            let Some(Ok(Some(scheme))) = setting.map(|s| Scheme::parse_setting(&s)) else {
                return Ok(());
            };
            conn.execute(
                "INSERT INTO parity_groups(k, m, first_disc, last_disc, block_size, state)
                 VALUES (?1, ?2, ?3, NULL, NULL, 'open')",
                params![scheme.k, scheme.m, disc],
            )?;
            (conn.last_insert_rowid(), i64::from(scheme.k))
        }
    };
    conn.execute(
        "INSERT INTO parity_members(disc_id, group_id, size, md5) VALUES (?1, ?2, NULL, NULL)",
        params![disc, group],
    )?;
    conn.execute(
        "UPDATE parity_groups SET state='full', last_disc=?2
         WHERE id=?1 AND (SELECT count(*) FROM parity_members WHERE group_id=?1) >= ?3",
        params![group, disc, k],
    )?;
    Ok(())
}

/// A parity group as a disc's manifest tells it, checked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupInfo {
    pub id: i64,
    pub k: u32,
    pub m: u32,
    pub block_size: u64,
    /// Its data discs with their protected sizes and MD5s, in order.
    pub members: Vec<Member>,
    /// Parity discs the manifest records as built (a parity disc's own
    /// manifest, made before them, records none of its group's).
    pub built: Vec<i64>,
}

impl GroupInfo {
    /// Whether disc `n` is one of the group's data discs.
    pub fn protects(&self, disc: i64) -> bool {
        self.members.iter().any(|m| m.disc == disc)
    }
}

/// The parity groups a disc's manifest at `path` records with a layout,
/// each checked (docs/parity.md); a group that fails a check is left out
/// and counted. A manifest without the tables has none.
pub fn read_groups(path: &Path) -> std::result::Result<(Vec<GroupInfo>, u64), rusqlite::Error> {
    groups_of(&super::manifest::open_immutable(path)?)
}

/// Like [`read_groups`], on an open manifest or catalogue.
pub fn groups_of(conn: &Connection) -> std::result::Result<(Vec<GroupInfo>, u64), rusqlite::Error> {
    if !has_tables(conn)? {
        return Ok((Vec::new(), 0));
    }
    let mut stmt = conn.prepare(
        "SELECT id, k, m, block_size FROM parity_groups
         WHERE block_size IS NOT NULL ORDER BY id LIMIT 100000",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get_ref(0)?.as_i64().ok(),
                r.get_ref(1)?.as_i64().ok(),
                r.get_ref(2)?.as_i64().ok(),
                r.get_ref(3)?.as_i64().ok(),
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut groups = Vec::new();
    let mut invalid = 0u64;
    for (id, k, m, bs) in rows {
        let (Some(id), Some(k), Some(m), Some(bs)) = (id, k, m, bs) else {
            invalid += 1;
            continue;
        };
        match check_group(conn, id, k, m, bs)? {
            Some(g) => groups.push(g),
            None => invalid += 1,
        }
    }
    Ok((groups, invalid))
}

fn check_group(
    conn: &Connection,
    id: i64,
    k: i64,
    m: i64,
    bs: i64,
) -> rusqlite::Result<Option<GroupInfo>> {
    let (Ok(k), Ok(m), Ok(block_size)) = (u32::try_from(k), u32::try_from(m), u64::try_from(bs))
    else {
        return Ok(None);
    };
    if !(1..=MAX_K).contains(&k)
        || !(1..=MAX_M).contains(&m)
        || block_size == 0
        || !block_size.is_multiple_of(4)
    {
        return Ok(None);
    }
    let mut stmt = conn.prepare(
        "SELECT disc_id, size, md5 FROM parity_members WHERE group_id=?1 ORDER BY disc_id LIMIT 65",
    )?;
    let rows = stmt
        .query_map([id], |r| {
            Ok((
                r.get_ref(0)?.as_i64().ok(),
                r.get_ref(1)?.as_i64().ok(),
                r.get_ref(2)?.as_str().ok().map(str::to_string),
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if rows.is_empty() || rows.len() > MAX_K as usize {
        return Ok(None);
    }
    let mut members = Vec::with_capacity(rows.len());
    for (disc, size, md5) in rows {
        let (Some(disc), Some(size), Some(md5)) = (disc, size, md5) else {
            return Ok(None);
        };
        let Ok(size) = u64::try_from(size) else {
            return Ok(None);
        };
        let consecutive = members
            .last()
            .is_none_or(|prev: &Member| prev.disc.checked_add(1) == Some(disc));
        if disc < 1
            || size == 0
            || size.div_ceil(block_size) > BLOCKS_PER_MEMBER
            || md5.len() != 32
            || !md5.bytes().all(|b| b.is_ascii_hexdigit())
            || !consecutive
        {
            return Ok(None);
        }
        members.push(Member {
            disc,
            size,
            md5: md5.to_ascii_lowercase(),
        });
    }
    let mut stmt =
        conn.prepare("SELECT j FROM parity_discs WHERE group_id=?1 ORDER BY j LIMIT 9")?;
    let built = stmt
        .query_map([id], |r| Ok(r.get_ref(0)?.as_i64().ok()))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .filter(|j| (1..=i64::from(m)).contains(j))
        .collect();
    Ok(Some(GroupInfo {
        id,
        k,
        m,
        block_size,
        members,
        built,
    }))
}
