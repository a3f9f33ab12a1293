//! The ISO 9660 writer of [`crate::iso`].
//!
//! Writer: deterministic (entries are sorted, every date is
//! [`WriteOptions::timestamp`], no clock, no filesystem order, no host
//! metadata) and streaming (sizes are taken up front, then descriptors, path
//! tables (L and M, primary and Joliet), directories and continuation areas are
//! written, then each file is read once in 1 MiB chunks and written straight
//! through). Continuation areas sit right after the directory that uses them,
//! because libarchive reads images front to back. The last file's data is
//! followed by [`PADDING_BLOCKS`] of zeros, counted in the volume space.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use super::*;

// ---------------------------------------------------------------------------
// Writer: planning
// ---------------------------------------------------------------------------

enum Kind {
    Dir { children: BTreeMap<String, usize> },
    File { size: u64, entry: usize },
}

struct Node {
    name: String,
    parent: usize,
    kind: Kind,
    /// Primary identifier without version (`NAME.EXT` for files).
    iso: Vec<u8>,
    /// Joliet identifier, UCS-2.
    joliet: Vec<u16>,
    /// Rock Ridge fields of this node's record in its parent directory.
    susp: Susp,
    /// For directories: Rock Ridge fields of its `.` and `..` records.
    dot: Susp,
    dotdot: Susp,
    /// Children in primary order / Joliet order (directories only).
    prim_order: Vec<usize>,
    jol_order: Vec<usize>,
}

#[derive(Default, Clone)]
struct Susp {
    inline: Vec<u8>,
    /// Index into the continuation-area blobs.
    cont: Option<usize>,
}

struct CeBlob {
    bytes: Vec<u8>,
    /// Directory whose records point here; the blob is stored right after
    /// that directory's extent, where libarchive's one-pass reader expects it.
    owner: usize,
    block: u64,
    offset: u64,
}

struct Plan {
    nodes: Vec<Node>,
    prim_dirs: Vec<usize>,
    jol_dirs: Vec<usize>,
    files: Vec<usize>,
    ce: Vec<CeBlob>,
    /// Per directory: its continuation area (first block, block count) and blobs.
    ce_area: Vec<(u64, u64)>,
    ce_owned: Vec<Vec<usize>>,
    pt_size: [u64; 2],
    pt_loc: [[u64; 2]; 2], // [primary, joliet][L, M]
    dir_loc: [Vec<u64>; 2],
    dir_size: [Vec<u64>; 2],
    file_loc: Vec<u64>,
    empty_block: Option<u64>,
    data_start: u64,
    total_blocks: u64,
    date7: [u8; 7],
}

fn validate_options(o: &WriteOptions) -> Result<(), IsoError> {
    let bad = |field, reason: &str| {
        Err(IsoError::InvalidOption {
            field,
            reason: reason.to_string(),
        })
    };
    if o.volume_id.is_empty() || o.volume_id.len() > 32 {
        return bad("volume_id", "must be 1 to 32 characters");
    }
    if !o
        .volume_id
        .bytes()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
    {
        return bad("volume_id", "must use only d-characters A-Z, 0-9 and _");
    }
    for (field, v) in [
        ("volume_set_id", &o.volume_set_id),
        ("application_id", &o.application_id),
    ] {
        if v.len() > 128 {
            return bad(field, "must be at most 128 characters");
        }
        if !v.bytes().all(|c| (0x20..0x7f).contains(&c)) {
            return bad(field, "must be printable ASCII");
        }
    }
    Ok(())
}

fn validate_path(p: &str) -> Result<Vec<&str>, IsoError> {
    let err = |reason| IsoError::InvalidPath {
        path: p.to_string(),
        reason,
    };
    if p.is_empty() {
        return Err(err("empty path"));
    }
    if p.contains('\0') {
        return Err(err("contains NUL"));
    }
    let comps: Vec<&str> = p.split('/').collect();
    for c in &comps {
        match *c {
            "" => return Err(err("empty component (leading, trailing or doubled '/')")),
            "." | ".." => return Err(err("'.' and '..' components are not allowed")),
            c if c.len() > MAX_NAME_BYTES => return Err(err("component longer than 255 bytes")),
            _ => {}
        }
    }
    if comps.len() > MAX_WRITE_DEPTH {
        return Err(err("more than 64 components"));
    }
    Ok(comps)
}

fn d_char(c: char) -> u8 {
    match c {
        'a'..='z' => c.to_ascii_uppercase() as u8,
        'A'..='Z' | '0'..='9' | '_' => c as u8,
        _ => b'_',
    }
}

/// Primary (ISO 9660 level 3) identifier candidates: (base, ext, is_file).
fn iso_parts(name: &str, is_file: bool) -> (Vec<u8>, Vec<u8>) {
    if !is_file {
        let mut b: Vec<u8> = name.chars().map(d_char).collect();
        b.truncate(31);
        return (b, Vec::new());
    }
    let (base, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
        _ => (name, ""),
    };
    let mut e: Vec<u8> = ext.chars().map(d_char).collect();
    e.truncate(8);
    let mut b: Vec<u8> = base.chars().map(d_char).collect();
    b.truncate(30 - e.len());
    if b.is_empty() && e.is_empty() {
        b.push(b'_');
    }
    (b, e)
}

fn iso_join(base: &[u8], ext: &[u8], is_file: bool) -> Vec<u8> {
    let mut v = base.to_vec();
    if is_file {
        v.push(b'.');
        v.extend_from_slice(ext);
    }
    v
}

fn joliet_units(name: &str) -> Vec<u16> {
    let mut v: Vec<u16> = name
        .chars()
        .map(|c| match c {
            '*' | '/' | ':' | ';' | '?' | '\\' => u16::from(b'_'),
            c if (c as u32) < 0x20 || (c as u32) > 0xFFFF => u16::from(b'_'),
            c => c as u32 as u16,
        })
        .collect();
    v.truncate(64);
    v
}

/// ECMA-119 9.3 ordering: name part then extension, shorter padded with spaces.
fn ident_cmp(a: &[u16], b: &[u16], a_file: bool, b_file: bool) -> Ordering {
    fn split(v: &[u16], file: bool) -> (&[u16], &[u16]) {
        if !file {
            return (v, &[]);
        }
        match v.iter().rposition(|&c| c == u16::from(b'.')) {
            Some(i) => (&v[..i], &v[i + 1..]),
            None => (v, &[]),
        }
    }
    fn padded(a: &[u16], b: &[u16]) -> Ordering {
        for i in 0..a.len().max(b.len()) {
            let x = a.get(i).copied().unwrap_or(0x20);
            let y = b.get(i).copied().unwrap_or(0x20);
            if x != y {
                return x.cmp(&y);
            }
        }
        Ordering::Equal
    }
    let (an, ae) = split(a, a_file);
    let (bn, be) = split(b, b_file);
    padded(an, bn)
        .then_with(|| padded(ae, be))
        .then_with(|| a.cmp(b))
}

fn px(mode: u32, nlink: u32, serial: u32) -> Vec<u8> {
    let mut v = vec![b'P', b'X', 44, 1];
    for x in [mode, nlink, 0, 0, serial] {
        v.extend_from_slice(&both32(x));
    }
    v
}

fn tf(d: &[u8; 7]) -> Vec<u8> {
    // MODIFY | ACCESS | ATTRIBUTES, short form.
    let mut v = vec![b'T', b'F', 26, 1, 0x0E];
    for _ in 0..3 {
        v.extend_from_slice(d);
    }
    v
}

fn nm(name: &[u8]) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = name.chunks(250).collect();
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let mut v = vec![b'N', b'M', (5 + c.len()) as u8, 1, u8::from(i + 1 < n)];
            v.extend_from_slice(c);
            v
        })
        .collect()
}

fn er() -> Vec<u8> {
    const ID: &[u8] = b"RRIP_1991A";
    const DES: &[u8] =
        b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
    const SRC: &[u8] = b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";
    let len = 8 + ID.len() + DES.len() + SRC.len();
    let mut v = vec![
        b'E',
        b'R',
        len as u8,
        1,
        ID.len() as u8,
        DES.len() as u8,
        SRC.len() as u8,
        1,
    ];
    v.extend_from_slice(ID);
    v.extend_from_slice(DES);
    v.extend_from_slice(SRC);
    v
}

const CE_LEN: usize = 28;

fn ce_entry(block: u64, offset: u64, len: u64) -> Vec<u8> {
    let mut v = vec![b'C', b'E', CE_LEN as u8, 1];
    for x in [block, offset, len] {
        v.extend_from_slice(&both32(x as u32));
    }
    v
}

/// Splits SUSP entries between the record (at most `avail` bytes including a
/// CE entry) and a continuation blob.
fn split_susp(
    owner: usize,
    entries: Vec<Vec<u8>>,
    forced: Vec<Vec<u8>>,
    avail: usize,
    ce: &mut Vec<CeBlob>,
) -> Result<Susp, IsoError> {
    let total: usize = entries.iter().map(Vec::len).sum();
    if forced.is_empty() && total <= avail {
        return Ok(Susp {
            inline: entries.concat(),
            cont: None,
        });
    }
    let mut inline = Vec::new();
    let mut rest = Vec::new();
    let mut spilled = false;
    for e in entries {
        if !spilled && inline.len() + e.len() + CE_LEN <= avail {
            inline.extend_from_slice(&e);
        } else {
            spilled = true;
            rest.extend_from_slice(&e);
        }
    }
    for e in forced {
        rest.extend_from_slice(&e);
    }
    if rest.len() > BLOCK_US {
        return Err(IsoError::Internal(
            "continuation area entry larger than a block",
        ));
    }
    ce.push(CeBlob {
        bytes: rest,
        owner,
        block: 0,
        offset: 0,
    });
    Ok(Susp {
        inline,
        cont: Some(ce.len() - 1),
    })
}

/// Space for system use fields in a record with an identifier of `id_len` bytes.
fn sua_avail(id_len: usize) -> usize {
    254 - (33 + id_len + usize::from(id_len.is_multiple_of(2)))
}

const S_IFDIR: u32 = 0o040_755;
const S_IFREG: u32 = 0o100_644;

fn plan(entries: &[Entry], opts: &WriteOptions) -> Result<Plan, IsoError> {
    validate_options(opts)?;
    let d7 = date7(opts.timestamp);

    // 1. Tree, built from entries sorted by path so input order never matters.
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| entries[a].path.cmp(&entries[b].path));
    let mut nodes = vec![Node {
        name: String::new(),
        parent: 0,
        kind: Kind::Dir {
            children: BTreeMap::new(),
        },
        iso: vec![0],
        joliet: vec![0],
        susp: Susp::default(),
        dot: Susp::default(),
        dotdot: Susp::default(),
        prim_order: Vec::new(),
        jol_order: Vec::new(),
    }];
    let mut sizes = vec![0u64; entries.len()];
    for &ei in &order {
        let e = &entries[ei];
        let comps = validate_path(&e.path)?;
        sizes[ei] = match &e.source {
            Source::Bytes(b) => b.len() as u64,
            Source::File(p) => {
                let m = std::fs::metadata(p).map_err(|source| IsoError::SourceIo {
                    path: p.clone(),
                    source,
                })?;
                if !m.is_file() {
                    return Err(IsoError::SourceIo {
                        path: p.clone(),
                        source: io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
                    });
                }
                m.len()
            }
        };
        let mut cur = 0usize;
        for (i, c) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            let existing = match &nodes[cur].kind {
                Kind::Dir { children } => children.get(*c).copied(),
                Kind::File { .. } => {
                    return Err(IsoError::PathConflict {
                        path: e.path.clone(),
                    });
                }
            };
            match (existing, last) {
                (Some(n), false) => cur = n,
                (Some(n), true) => {
                    return Err(match nodes[n].kind {
                        Kind::File { .. } => IsoError::DuplicatePath {
                            path: e.path.clone(),
                        },
                        Kind::Dir { .. } => IsoError::PathConflict {
                            path: e.path.clone(),
                        },
                    });
                }
                (None, _) => {
                    let kind = if last {
                        Kind::File {
                            size: sizes[ei],
                            entry: ei,
                        }
                    } else {
                        Kind::Dir {
                            children: BTreeMap::new(),
                        }
                    };
                    let id = nodes.len();
                    nodes.push(Node {
                        name: (*c).to_string(),
                        parent: cur,
                        kind,
                        iso: Vec::new(),
                        joliet: Vec::new(),
                        susp: Susp::default(),
                        dot: Susp::default(),
                        dotdot: Susp::default(),
                        prim_order: Vec::new(),
                        jol_order: Vec::new(),
                    });
                    if let Kind::Dir { children } = &mut nodes[cur].kind {
                        children.insert((*c).to_string(), id);
                    }
                    cur = id;
                }
            }
        }
    }
    if u32::try_from(nodes.len()).is_err() {
        return Err(IsoError::TooLarge("too many entries".into()));
    }

    // 2. Names per directory (unique, deterministic: children in name order).
    for d in 0..nodes.len() {
        let kids: Vec<usize> = match &nodes[d].kind {
            Kind::Dir { children } => children.values().copied().collect(),
            Kind::File { .. } => continue,
        };
        let mut seen_iso = HashSet::new();
        let mut seen_jol = HashSet::new();
        // Next counter to try per colliding candidate, so that many names
        // sharing a long prefix cost O(n), not O(n^2).
        let mut next_iso: HashMap<Vec<u8>, u32> = HashMap::new();
        let mut next_jol: HashMap<Vec<u16>, u32> = HashMap::new();
        for &k in &kids {
            let is_file = matches!(nodes[k].kind, Kind::File { .. });
            let (base, ext) = iso_parts(&nodes[k].name, is_file);
            let mut id = iso_join(&base, &ext, is_file);
            let limit = if is_file { 30 - ext.len() } else { 31 };
            if !seen_iso.insert(id.clone()) {
                let n = next_iso.entry(id.clone()).or_insert(1);
                loop {
                    let suffix = n.to_string();
                    *n += 1;
                    let mut b = base.clone();
                    b.truncate(limit.saturating_sub(suffix.len()));
                    b.extend_from_slice(suffix.as_bytes());
                    let candidate = iso_join(&b, &ext, is_file);
                    if seen_iso.insert(candidate.clone()) {
                        id = candidate;
                        break;
                    }
                }
            }
            let units = joliet_units(&nodes[k].name);
            let mut j = units.clone();
            if !seen_jol.insert(j.clone()) {
                let n = next_jol.entry(units.clone()).or_insert(1);
                loop {
                    let suffix: Vec<u16> = n.to_string().bytes().map(u16::from).collect();
                    *n += 1;
                    let mut candidate = units.clone();
                    candidate.truncate(64 - suffix.len());
                    candidate.extend_from_slice(&suffix);
                    if seen_jol.insert(candidate.clone()) {
                        j = candidate;
                        break;
                    }
                }
            }
            nodes[k].iso = id;
            nodes[k].joliet = j;
        }
        let is_file = |k: usize| matches!(nodes[k].kind, Kind::File { .. });
        let wide: HashMap<usize, Vec<u16>> = kids
            .iter()
            .map(|&k| (k, nodes[k].iso.iter().map(|&c| u16::from(c)).collect()))
            .collect();
        let mut p = kids.clone();
        p.sort_by(|&a, &b| ident_cmp(&wide[&a], &wide[&b], is_file(a), is_file(b)));
        let mut j = kids;
        j.sort_by(|&a, &b| ident_cmp(&nodes[a].joliet, &nodes[b].joliet, is_file(a), is_file(b)));
        nodes[d].prim_order = p;
        nodes[d].jol_order = j;
    }

    // 3. Directory lists in path-table (breadth-first) order.
    let bfs = |by_joliet: bool| -> Vec<usize> {
        let mut out = vec![0usize];
        let mut q = VecDeque::from([0usize]);
        while let Some(d) = q.pop_front() {
            let ord = if by_joliet {
                &nodes[d].jol_order
            } else {
                &nodes[d].prim_order
            };
            for &k in ord {
                if matches!(nodes[k].kind, Kind::Dir { .. }) {
                    out.push(k);
                    q.push_back(k);
                }
            }
        }
        out
    };
    let prim_dirs = bfs(false);
    let jol_dirs = bfs(true);
    if prim_dirs.len() > 65_535 {
        return Err(IsoError::TooLarge(
            "more than 65535 directories (path table limit)".into(),
        ));
    }
    let mut files = Vec::new();
    let mut stack = vec![0usize];
    while let Some(d) = stack.pop() {
        if let Kind::Dir { children } = &nodes[d].kind {
            for &k in children.values().rev() {
                match nodes[k].kind {
                    Kind::Dir { .. } => stack.push(k),
                    Kind::File { .. } => {}
                }
            }
            // files of this directory in name order, before its subdirectories
            files.extend(
                children
                    .values()
                    .filter(|&&k| matches!(nodes[k].kind, Kind::File { .. })),
            );
        }
    }

    // 4. Rock Ridge fields (independent of block locations).
    let mut ce = Vec::new();
    let nlink = |n: &Node| match &n.kind {
        Kind::Dir { children } => {
            2 + children
                .values()
                .filter(|&&k| matches!(nodes[k].kind, Kind::Dir { .. }))
                .count() as u32
        }
        Kind::File { .. } => 1,
    };
    let mut susps = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let serial = i as u32 + 1;
        let is_dir = matches!(n.kind, Kind::Dir { .. });
        let mode = if is_dir { S_IFDIR } else { S_IFREG };
        let mut named = Susp::default();
        if i != 0 {
            let mut e = vec![px(mode, nlink(n), serial), tf(&d7)];
            e.extend(nm(n.name.as_bytes()));
            let id_len = n.iso.len() + if is_dir { 0 } else { 2 };
            named = split_susp(n.parent, e, Vec::new(), sua_avail(id_len), &mut ce)?;
        }
        let (mut dot, mut dotdot) = (Susp::default(), Susp::default());
        if is_dir {
            let mut e = Vec::new();
            if i == 0 {
                e.push(vec![b'S', b'P', 7, 1, 0xBE, 0xEF, 0]);
            }
            e.push(px(mode, nlink(n), serial));
            e.push(tf(&d7));
            let forced = if i == 0 { vec![er()] } else { Vec::new() };
            dot = split_susp(i, e, forced, sua_avail(1), &mut ce)?;
            let p = &nodes[n.parent];
            let e = vec![px(S_IFDIR, nlink(p), n.parent as u32 + 1), tf(&d7)];
            dotdot = split_susp(i, e, Vec::new(), sua_avail(1), &mut ce)?;
        }
        susps.push((named, dot, dotdot));
    }
    for (n, (a, b, c)) in nodes.iter_mut().zip(susps) {
        n.susp = a;
        n.dot = b;
        n.dotdot = c;
    }

    // 5. Block layout: descriptors, path tables,
    //    primary directories (each followed by its continuation area), Joliet
    //    directories, file data.
    let mut next = 16 + 3; // PVD, Joliet SVD, terminator
    let pt_size = [
        path_table_size(&nodes, &prim_dirs, false),
        path_table_size(&nodes, &jol_dirs, true),
    ];
    let mut pt_loc = [[0u64; 2]; 2];
    for (ns, size) in pt_size.iter().enumerate() {
        for slot in &mut pt_loc[ns] {
            *slot = next;
            next += blocks_for(*size);
        }
    }
    let mut p = Plan {
        nodes,
        prim_dirs,
        jol_dirs,
        files,
        ce,
        ce_area: Vec::new(),
        ce_owned: Vec::new(),
        pt_size,
        pt_loc,
        dir_loc: [Vec::new(), Vec::new()],
        dir_size: [Vec::new(), Vec::new()],
        file_loc: Vec::new(),
        empty_block: None,
        data_start: 0,
        total_blocks: 0,
        date7: d7,
    };
    let n = p.nodes.len();
    p.dir_loc = [vec![0; n], vec![0; n]];
    p.dir_size = [vec![0; n], vec![0; n]];
    p.file_loc = vec![0; n];
    p.ce_area = vec![(0, 0); n];
    p.ce_owned = vec![Vec::new(); n];
    for (i, b) in p.ce.iter().enumerate() {
        p.ce_owned[b.owner].push(i);
    }
    // Directory sizes do not depend on locations: measure with zero locations.
    for ns in 0..2 {
        let dirs = if ns == 0 {
            p.prim_dirs.clone()
        } else {
            p.jol_dirs.clone()
        };
        for &d in &dirs {
            p.dir_size[ns][d] = dir_bytes(&p, ns == 1, d)?.len() as u64;
        }
        for &d in &dirs {
            p.dir_loc[ns][d] = next;
            next += p.dir_size[ns][d] / BLOCK;
            if ns == 0 {
                next = place_ce(&mut p.ce, &p.ce_owned[d], next);
                p.ce_area[d] = (p.dir_loc[0][d] + p.dir_size[0][d] / BLOCK, 0);
                p.ce_area[d].1 = next - p.ce_area[d].0;
            }
        }
    }
    p.data_start = next;
    let any_empty = p
        .files
        .iter()
        .any(|&f| matches!(p.nodes[f].kind, Kind::File { size: 0, .. }));
    if any_empty {
        // One shared zero block for empty files, as libisofs does.
        p.empty_block = Some(next);
        next += 1;
    }
    for i in 0..p.files.len() {
        let f = p.files[i];
        if let Kind::File { size, .. } = p.nodes[f].kind {
            p.file_loc[f] = if size == 0 {
                p.empty_block.unwrap_or(0)
            } else {
                next
            };
            next += blocks_for(size);
        }
    }
    // Zeros after the last file, inside the volume space (see PADDING_BLOCKS).
    next += PADDING_BLOCKS;
    if next > u64::from(u32::MAX) {
        return Err(IsoError::TooLarge(format!(
            "{next} blocks exceed the 32-bit volume space size"
        )));
    }
    p.total_blocks = next;
    Ok(p)
}

/// Places the continuation blobs `owned` by one directory from block `start`
/// (none crossing a block boundary) and returns the next free block.
fn place_ce(ce: &mut [CeBlob], owned: &[usize], start: u64) -> u64 {
    let (mut blk, mut off, mut any) = (start, 0u64, false);
    for &i in owned {
        let Some(b) = ce.get_mut(i) else { continue };
        let len = b.bytes.len() as u64;
        if off + len > BLOCK {
            blk += 1;
            off = 0;
        }
        b.block = blk;
        b.offset = off;
        off += len;
        any = true;
    }
    if any {
        blk + 1
    } else {
        start
    }
}

fn ident_bytes(n: &Node, joliet: bool) -> Vec<u8> {
    if joliet {
        n.joliet.iter().flat_map(|c| c.to_be_bytes()).collect()
    } else {
        n.iso.clone()
    }
}

fn path_table_size(nodes: &[Node], dirs: &[usize], joliet: bool) -> u64 {
    dirs.iter()
        .map(|&d| {
            let l = if d == 0 {
                1
            } else {
                ident_bytes(&nodes[d], joliet).len()
            };
            (8 + l + l % 2) as u64
        })
        .sum()
}

fn path_table(p: &Plan, joliet: bool, big_endian: bool) -> Vec<u8> {
    let ns = usize::from(joliet);
    let dirs = if joliet { &p.jol_dirs } else { &p.prim_dirs };
    let mut number = HashMap::new();
    for (i, &d) in dirs.iter().enumerate() {
        number.insert(d, i as u16 + 1);
    }
    let mut out = Vec::new();
    for &d in dirs {
        let id = if d == 0 {
            vec![0]
        } else {
            ident_bytes(&p.nodes[d], joliet)
        };
        let loc = p.dir_loc[ns][d] as u32;
        let parent = number.get(&p.nodes[d].parent).copied().unwrap_or(1);
        out.push(id.len() as u8);
        out.push(0);
        if big_endian {
            out.extend_from_slice(&loc.to_be_bytes());
            out.extend_from_slice(&parent.to_be_bytes());
        } else {
            out.extend_from_slice(&loc.to_le_bytes());
            out.extend_from_slice(&parent.to_le_bytes());
        }
        out.extend_from_slice(&id);
        if id.len() % 2 == 1 {
            out.push(0);
        }
    }
    out
}

fn sua_bytes(p: &Plan, s: &Susp) -> Vec<u8> {
    let mut v = s.inline.clone();
    if let Some(b) = s.cont.and_then(|i| p.ce.get(i)) {
        v.extend(ce_entry(b.block, b.offset, b.bytes.len() as u64));
    }
    v
}

fn push_record(
    out: &mut Vec<u8>,
    id: &[u8],
    loc: u64,
    len: u64,
    flags: u8,
    date: &[u8; 7],
    sua: &[u8],
) -> Result<(), IsoError> {
    let pad = usize::from(id.len().is_multiple_of(2));
    let mut rl = 33 + id.len() + pad + sua.len();
    rl += rl % 2;
    if rl > 255 {
        return Err(IsoError::Internal("directory record longer than 255 bytes"));
    }
    out.push(rl as u8);
    out.push(0);
    out.extend_from_slice(&both32(loc as u32));
    out.extend_from_slice(&both32(len as u32));
    out.extend_from_slice(date);
    out.push(flags);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&both16(1));
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    out.resize(out.len() + pad, 0);
    out.extend_from_slice(sua);
    if (33 + id.len() + pad + sua.len()) % 2 == 1 {
        out.push(0);
    }
    Ok(())
}

/// The bytes of directory `d` in the primary (`joliet == false`) or Joliet
/// tree, padded to whole blocks; records never cross a block boundary.
fn dir_bytes(p: &Plan, joliet: bool, d: usize) -> Result<Vec<u8>, IsoError> {
    let ns = usize::from(joliet);
    let mut recs: Vec<Vec<u8>> = Vec::new();
    let node = &p.nodes[d];
    let rr = |s: &Susp| if joliet { Vec::new() } else { sua_bytes(p, s) };
    let mut r = Vec::new();
    push_record(
        &mut r,
        &[0],
        p.dir_loc[ns][d],
        p.dir_size[ns][d],
        2,
        &p.date7,
        &rr(&node.dot),
    )?;
    recs.push(std::mem::take(&mut r));
    let par = node.parent;
    push_record(
        &mut r,
        &[1],
        p.dir_loc[ns][par],
        p.dir_size[ns][par],
        2,
        &p.date7,
        &rr(&node.dotdot),
    )?;
    recs.push(std::mem::take(&mut r));
    let order = if joliet {
        &node.jol_order
    } else {
        &node.prim_order
    };
    for &k in order {
        let kid = &p.nodes[k];
        let mut id = ident_bytes(kid, joliet);
        let sua = rr(&kid.susp);
        match kid.kind {
            Kind::Dir { .. } => {
                push_record(
                    &mut r,
                    &id,
                    p.dir_loc[ns][k],
                    p.dir_size[ns][k],
                    2,
                    &p.date7,
                    &sua,
                )?;
                recs.push(std::mem::take(&mut r));
            }
            Kind::File { size, .. } => {
                if !joliet {
                    id.extend_from_slice(b";1");
                }
                let loc = p.file_loc[k];
                let parts = size.div_ceil(MAX_EXTENT).max(1);
                for i in 0..parts {
                    let len = (size - i * MAX_EXTENT).min(MAX_EXTENT);
                    let flags = if i + 1 < parts { 0x80 } else { 0 };
                    let at = loc + i * (MAX_EXTENT / BLOCK);
                    push_record(&mut r, &id, at, len, flags, &p.date7, &sua)?;
                    recs.push(std::mem::take(&mut r));
                }
            }
        }
    }
    let mut out = Vec::new();
    for rec in recs {
        let used = out.len() % BLOCK_US;
        if used + rec.len() > BLOCK_US {
            out.resize(out.len() + BLOCK_US - used, 0);
        }
        out.extend_from_slice(&rec);
    }
    out.resize(out.len().div_ceil(BLOCK_US) * BLOCK_US, 0);
    Ok(out)
}

fn fill_text(field: &mut [u8], s: &str, joliet: bool) {
    if joliet {
        for pair in field.chunks_mut(2) {
            pair[0] = 0;
            if let Some(b) = pair.get_mut(1) {
                *b = b' ';
            }
        }
        for (pair, c) in field.chunks_exact_mut(2).zip(s.encode_utf16()) {
            pair.copy_from_slice(&c.to_be_bytes());
        }
    } else {
        field.fill(b' ');
        for (b, c) in field.iter_mut().zip(s.bytes()) {
            *b = c;
        }
    }
}

fn volume_descriptor(p: &Plan, opts: &WriteOptions, joliet: bool) -> Vec<u8> {
    let ns = usize::from(joliet);
    let mut v = vec![0u8; BLOCK_US];
    v[0] = if joliet { 2 } else { 1 };
    v[1..6].copy_from_slice(b"CD001");
    v[6] = 1;
    fill_text(&mut v[8..40], "", joliet);
    fill_text(&mut v[40..72], &opts.volume_id, joliet);
    v[80..88].copy_from_slice(&both32(p.total_blocks as u32));
    if joliet {
        v[88..91].copy_from_slice(b"%/E");
    }
    v[120..124].copy_from_slice(&both16(1));
    v[124..128].copy_from_slice(&both16(1));
    v[128..132].copy_from_slice(&both16(BLOCK as u16));
    v[132..140].copy_from_slice(&both32(p.pt_size[ns] as u32));
    v[140..144].copy_from_slice(&(p.pt_loc[ns][0] as u32).to_le_bytes());
    v[148..152].copy_from_slice(&(p.pt_loc[ns][1] as u32).to_be_bytes());
    let mut root = Vec::new();
    // A 34-byte record cannot exceed 255 bytes; the error is unreachable.
    let _ = push_record(
        &mut root,
        &[0],
        p.dir_loc[ns][0],
        p.dir_size[ns][0],
        2,
        &p.date7,
        &[],
    );
    v[156..190].copy_from_slice(&root[..34]);
    fill_text(&mut v[190..318], &opts.volume_set_id, joliet);
    fill_text(&mut v[318..446], "", joliet);
    fill_text(&mut v[446..574], "", joliet);
    fill_text(&mut v[574..702], &opts.application_id, joliet);
    for r in [702..739, 739..776, 776..813] {
        fill_text(&mut v[r], "", joliet);
    }
    let d = date17(opts.timestamp);
    v[813..830].copy_from_slice(&d);
    v[830..847].copy_from_slice(&d);
    v[847..863].fill(b'0'); // expiration: not specified
    v[864..880].fill(b'0'); // effective: not specified
    v[881] = 1;
    v
}

// ---------------------------------------------------------------------------
// Writer: output
// ---------------------------------------------------------------------------

struct Out<W: Write> {
    w: W,
    pos: u64,
}

impl<W: Write> Out<W> {
    fn put(&mut self, b: &[u8]) -> Result<(), IsoError> {
        self.w.write_all(b).map_err(IsoError::Output)?;
        self.pos += b.len() as u64;
        Ok(())
    }
    fn pad(&mut self) -> Result<(), IsoError> {
        let r = (self.pos % BLOCK) as usize;
        if r != 0 {
            self.put(&ZEROS[r..])?;
        }
        Ok(())
    }
    fn expect_block(&self, block: u64) -> Result<(), IsoError> {
        if self.pos == block * BLOCK {
            Ok(())
        } else {
            Err(IsoError::Internal(
                "output position does not match the layout",
            ))
        }
    }
}

/// Total image size in bytes that [`write_image`] will produce, without
/// writing anything (stats `Source::File` entries).
pub fn image_size(entries: &[Entry], opts: &WriteOptions) -> Result<u64, IsoError> {
    Ok(plan(entries, opts)?.total_blocks * BLOCK)
}

/// Writes the image streaming: never a whole file in memory; files are read
/// once in 1 MiB chunks. `progress` is called after every chunk of file data
/// with the number of file bytes just written (a delta; the calls sum to the
/// total size of all entries). Returns the number of bytes written.
pub fn write_image<W: Write>(
    out: W,
    entries: &[Entry],
    opts: &WriteOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, IsoError> {
    let p = plan(entries, opts)?;
    let mut o = Out { w: out, pos: 0 };
    let mut head = vec![0u8; 16 * BLOCK_US];
    head.extend(volume_descriptor(&p, opts, false));
    head.extend(volume_descriptor(&p, opts, true));
    let mut term = vec![0u8; BLOCK_US];
    term[0] = 255;
    term[1..6].copy_from_slice(b"CD001");
    term[6] = 1;
    head.extend(term);
    o.put(&head)?;
    for (ns, joliet) in [(0, false), (1, true)] {
        for (i, big) in [(0, false), (1, true)] {
            o.expect_block(p.pt_loc[ns][i])?;
            o.put(&path_table(&p, joliet, big))?;
            o.pad()?;
        }
    }
    for (ns, joliet) in [(0, false), (1, true)] {
        let dirs = if joliet { &p.jol_dirs } else { &p.prim_dirs };
        for &d in dirs {
            o.expect_block(p.dir_loc[ns][d])?;
            o.put(&dir_bytes(&p, joliet, d)?)?;
            let (start, count) = p.ce_area[d];
            if !joliet && count > 0 {
                let mut area = vec![0u8; (count * BLOCK) as usize];
                for b in p.ce_owned[d].iter().filter_map(|&i| p.ce.get(i)) {
                    let at = ((b.block - start) * BLOCK + b.offset) as usize;
                    if let Some(dst) = area.get_mut(at..at + b.bytes.len()) {
                        dst.copy_from_slice(&b.bytes);
                    }
                }
                o.put(&area)?;
            }
        }
    }
    o.expect_block(p.data_start)?;
    if p.empty_block.is_some() {
        o.put(&ZEROS)?;
    }
    let mut buf = vec![0u8; CHUNK];
    for &f in &p.files {
        let Kind::File { size, entry } = p.nodes[f].kind else {
            continue;
        };
        if size == 0 {
            continue;
        }
        o.expect_block(p.file_loc[f])?;
        match &entries[entry].source {
            Source::Bytes(b) => {
                for c in b.chunks(CHUNK) {
                    o.put(c)?;
                    progress(c.len() as u64);
                }
            }
            Source::File(path) => copy_file(&mut o, path, size, &mut buf, progress)?,
        }
        o.pad()?;
    }
    for _ in 0..PADDING_BLOCKS {
        o.put(&ZEROS)?;
    }
    o.expect_block(p.total_blocks)?;
    o.w.flush().map_err(IsoError::Output)?;
    Ok(o.pos)
}

fn copy_file<W: Write>(
    o: &mut Out<W>,
    path: &Path,
    size: u64,
    buf: &mut [u8],
    progress: &mut dyn FnMut(u64),
) -> Result<(), IsoError> {
    let io_err = |source| IsoError::SourceIo {
        path: path.to_path_buf(),
        source,
    };
    let mut f = File::open(path).map_err(io_err)?;
    let mut left = size;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let mut got = 0;
        while got < want {
            match f.read(&mut buf[got..want]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        if got == 0 {
            return Err(IsoError::SourceChanged {
                path: path.to_path_buf(),
                expected: size,
                found: size - left,
            });
        }
        o.put(&buf[..got])?;
        progress(got as u64);
        left -= got as u64;
    }
    let mut probe = [0u8; 1];
    loop {
        match f.read(&mut probe) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                let found = f.metadata().map(|m| m.len()).unwrap_or(size + 1);
                return Err(IsoError::SourceChanged {
                    path: path.to_path_buf(),
                    expected: size,
                    found: found.max(size + 1),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_names() {
        assert_eq!(
            iso_parts("manifest.db", true),
            (b"MANIFEST".to_vec(), b"DB".to_vec())
        );
        assert_eq!(iso_parts("MD5SUMS", true), (b"MD5SUMS".to_vec(), vec![]));
        assert_eq!(iso_parts(".hidden", true).0, b"_HIDDEN".to_vec());
        assert_eq!(iso_parts("a.b.c", false).0, b"A_B_C".to_vec());
        let long = "x".repeat(100) + ".extension";
        let (b, e) = iso_parts(&long, true);
        assert_eq!(b.len() + e.len(), 30);
    }

    #[test]
    fn ordering_pads_with_spaces() {
        let u = |s: &str| s.bytes().map(u16::from).collect::<Vec<_>>();
        assert_eq!(ident_cmp(&u("A.B"), &u("AB.C"), true, true), Ordering::Less);
        assert_eq!(ident_cmp(&u("A"), &u("A_"), false, false), Ordering::Less);
    }
}
