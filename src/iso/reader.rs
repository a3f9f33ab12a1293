//! The ISO 9660 reader of [`crate::iso`].
//!
//! Reader: lists every regular file with its byte extents, using Rock Ridge
//! names, else Joliet, else ISO 9660 names without ";1". Everything read from
//! the image is bounds-checked; directory recursion depth, directory loops,
//! continuation chains and the total metadata read are bounded, so corrupt or
//! hostile images give an [`IsoError`], never a panic, a huge allocation or a
//! hang. It also reads xorriso and genisoimage images (including RRIP CL/RE
//! relocated directories).
//!
//! A short image (a file shorter than its volume space: a copy cut short, a
//! disc read to its first bad spot) is not a lost image: as long as its
//! descriptors, path tables and directories are there it opens, and each
//! file whose data lies past the end is listed with [`Unreadable::PastEnd`]
//! instead of failing the whole image. Likewise a file this reader cannot
//! decode (zisofs-compressed, interleaved) is listed as unreadable on its
//! own. Metadata past the end, or data past the volume space, is corrupt.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::Path;

use super::*;

// ---------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------

/// A regular file found in an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoFile {
    /// Full relative path, '/'-separated, no leading '/'.
    pub path: String,
    pub size: u64,
    /// (byte offset in the image, length) of each extent, in file order.
    pub extents: Vec<(u64, u64)>,
    /// Why its data cannot be read, if so; the file is still listed, so
    /// that it can be named.
    pub unreadable: Option<Unreadable>,
}

/// Why a file listed in an image cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// Its data ends at byte `data_end`, past the end of the image, which
    /// is `image_len` bytes of a volume space of `volume_len`.
    PastEnd {
        data_end: u64,
        image_len: u64,
        volume_len: u64,
    },
    /// Rock Ridge ZF: its data is compressed with zisofs.
    Compressed,
    /// Interleaved extents (file unit size or gap not zero).
    Interleaved,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreadable::PastEnd {
                data_end,
                image_len,
                volume_len,
            } => write!(
                f,
                "its data lies past the end of the image, which is cut short \
                 ({image_len} of {volume_len} bytes; the data ends at byte {data_end})"
            ),
            Unreadable::Compressed => write!(f, "compressed with zisofs; not supported"),
            Unreadable::Interleaved => write!(f, "stored interleaved; not supported"),
        }
    }
}

impl Unreadable {
    /// The error a read of such a file gives.
    pub fn io_error(self) -> io::Error {
        let kind = match self {
            Unreadable::PastEnd { .. } => io::ErrorKind::UnexpectedEof,
            Unreadable::Compressed | Unreadable::Interleaved => io::ErrorKind::Unsupported,
        };
        io::Error::new(kind, self.to_string())
    }
}

/// Which tree and names the reader used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    RockRidge,
    Joliet,
    Iso9660,
}

/// Reads an ISO 9660 image through positional reads on a [`File`].
pub struct IsoReader {
    file: File,
    volume_id: String,
    volume_set_id: String,
    names: Names,
    files: Vec<IsoFile>,
    index: HashMap<String, usize>,
    /// Bytes of the image file, and of the volume space its primary volume
    /// descriptor declares.
    len: u64,
    volume_len: u64,
}

/// Streams one file's bytes across its extents.
pub struct IsoFileReader<'a> {
    file: &'a File,
    extents: Vec<(u64, u64)>,
    idx: usize,
    pos: u64,
    unreadable: Option<Unreadable>,
}

impl Read for IsoFileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(u) = self.unreadable {
            return Err(u.io_error());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(&(off, len)) = self.extents.get(self.idx) else {
                return Ok(0);
            };
            if self.pos >= len {
                self.idx += 1;
                self.pos = 0;
                continue;
            }
            let n = (len - self.pos).min(buf.len() as u64) as usize;
            let at = off.checked_add(self.pos).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "extent offset overflows")
            })?;
            let got = self.file.read_at(&mut buf[..n], at)?;
            if got == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "image ends inside a file extent",
                ));
            }
            self.pos += got as u64;
            return Ok(got);
        }
    }
}

impl IsoReader {
    pub fn open(path: &Path) -> Result<Self, IsoError> {
        let file = File::open(path).map_err(|source| IsoError::ImageIo {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_file(file, path)
    }

    /// Reads an already opened image; `path` is only used in errors.
    pub fn from_file(mut file: File, path: &Path) -> Result<Self, IsoError> {
        let io_err = |source| IsoError::ImageIo {
            path: path.to_path_buf(),
            source,
        };
        let meta = file.metadata().map_err(io_err)?;
        // A block device (a disc in its drive) has no length in its
        // metadata; its end is where a seek to the end lands.
        let len = if meta.file_type().is_block_device() {
            file.seek(SeekFrom::End(0)).map_err(io_err)?
        } else {
            meta.len()
        };
        let mut s = Scan {
            file: &file,
            path,
            len,
            volume_len: 0,
            // A valid image never reads more directory or continuation bytes
            // than it holds; this bounds work on hostile images.
            budget: len.saturating_mul(2).saturating_add(1 << 20),
            skip: 0,
            joliet: false,
            rr: false,
            files: Vec::new(),
            path_bytes: 0,
        };
        let (volume_id, volume_set_id, names, root) = s.descriptors()?;
        s.walk(root)?;
        let (files, volume_len) = (s.files, s.volume_len);
        let mut index = HashMap::with_capacity(files.len());
        for (i, f) in files.iter().enumerate() {
            index.entry(f.path.clone()).or_insert(i);
        }
        Ok(IsoReader {
            file,
            volume_id,
            volume_set_id,
            names,
            files,
            index,
            len,
            volume_len,
        })
    }

    /// For a short image: (its length, the volume space it should have),
    /// both in bytes. `None` for a whole image.
    pub fn cut_short(&self) -> Option<(u64, u64)> {
        (self.len < self.volume_len).then_some((self.len, self.volume_len))
    }

    /// Reads image bytes at `offset` (a positional read of the image, for
    /// readers that go sector by sector); 0 at or past the end.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    pub fn volume_id(&self) -> &str {
        &self.volume_id
    }
    pub fn volume_set_id(&self) -> &str {
        &self.volume_set_id
    }
    /// Which names [`files`](Self::files) uses.
    pub fn names(&self) -> Names {
        self.names
    }
    /// Every regular file, in directory order.
    pub fn files(&self) -> &[IsoFile] {
        &self.files
    }
    pub fn find(&self, path: &str) -> Option<&IsoFile> {
        self.index.get(path).and_then(|&i| self.files.get(i))
    }
    /// Streams the bytes of `f` (which should come from this reader).
    pub fn reader(&self, f: &IsoFile) -> IsoFileReader<'_> {
        IsoFileReader {
            file: &self.file,
            extents: f.extents.clone(),
            idx: 0,
            pos: 0,
            unreadable: f.unreadable,
        }
    }
}

struct Scan<'a> {
    file: &'a File,
    path: &'a Path,
    len: u64,
    /// Bytes of the volume space (from the primary volume descriptor).
    volume_len: u64,
    budget: u64,
    skip: usize,
    joliet: bool,
    rr: bool,
    files: Vec<IsoFile>,
    path_bytes: usize,
}

#[derive(Default)]
struct RrInfo {
    name: Vec<u8>,
    has_name: bool,
    mode: Option<u32>,
    relocated: bool,
    child_link: Option<u32>,
    compressed: bool,
}

struct Pending {
    ident: Vec<u8>,
    path: String,
    regular: bool,
    extents: Vec<(u64, u64)>,
    size: u64,
    unreadable: Option<Unreadable>,
}

const MAX_PATH_BYTES: usize = 256 << 20;

impl Scan<'_> {
    fn corrupt(&self, reason: impl Into<String>) -> IsoError {
        IsoError::Corrupt {
            path: self.path.to_path_buf(),
            reason: reason.into(),
        }
    }

    fn read(&mut self, off: u64, len: usize, what: &str) -> Result<Vec<u8>, IsoError> {
        let end = off.checked_add(len as u64);
        if end.is_none_or(|e| e > self.len) {
            let short = if self.len < self.volume_len {
                format!(
                    ", which is cut short ({} of {} bytes): its metadata is not all there",
                    self.len, self.volume_len
                )
            } else {
                format!(" ({} bytes)", self.len)
            };
            return Err(self.corrupt(format!(
                "{what} at byte {off} (+{len}) lies beyond the end of the image{short}"
            )));
        }
        if len as u64 > self.budget {
            return Err(self.corrupt("directory data exceeds the image size (loop or overlap)"));
        }
        self.budget -= len as u64;
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, off)
            .map_err(|source| IsoError::ImageIo {
                path: self.path.to_path_buf(),
                source,
            })?;
        Ok(buf)
    }

    /// Returns (volume id, volume set id, names, root (block, size)).
    fn descriptors(&mut self) -> Result<(String, String, Names, (u32, u32)), IsoError> {
        let not_iso = |reason: &str| IsoError::NotIso {
            path: self.path.to_path_buf(),
            reason: reason.to_string(),
        };
        if self.len < 17 * BLOCK {
            return Err(not_iso("shorter than 17 blocks"));
        }
        let mut pvd: Option<Vec<u8>> = None;
        let mut svd: Option<Vec<u8>> = None;
        for i in 0..64u64 {
            let off = (16 + i) * BLOCK;
            if off + BLOCK > self.len {
                return Err(self.corrupt("volume descriptor set is not terminated"));
            }
            let d = self.read(off, BLOCK_US, "volume descriptor")?;
            if &d[1..6] != b"CD001" {
                if i == 0 {
                    return Err(not_iso("no CD001 signature at block 16"));
                }
                return Err(self.corrupt(format!(
                    "bad volume descriptor signature at block {}",
                    16 + i
                )));
            }
            match d[0] {
                1 if pvd.is_none() => pvd = Some(d),
                2 if svd.is_none()
                    && d[88] == b'%'
                    && d[89] == b'/'
                    && matches!(d[90], b'@' | b'C' | b'E') =>
                {
                    svd = Some(d)
                }
                255 => break,
                _ => {}
            }
            if i == 63 {
                return Err(self.corrupt("volume descriptor set is not terminated"));
            }
        }
        let Some(pvd) = pvd else {
            return Err(self.corrupt("no primary volume descriptor"));
        };
        let bs = le16(&pvd, 128).unwrap_or(0);
        if u64::from(bs) != BLOCK {
            return Err(IsoError::Unsupported {
                path: self.path.to_path_buf(),
                reason: format!("logical block size {bs}"),
            });
        }
        // A file shorter than its volume space is read all the same: what
        // lies past the end is found file by file (see the module header).
        self.volume_len = u64::from(le32(&pvd, 80).unwrap_or(0)) * BLOCK;
        let text = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .trim_end_matches([' ', '\0'])
                .to_string()
        };
        let volume_id = text(&pvd[40..72]);
        let volume_set_id = text(&pvd[190..318]);
        let root_of = |d: &[u8]| (le32(d, 158).unwrap_or(0), le32(d, 166).unwrap_or(0));
        let proot = root_of(&pvd);
        // Rock Ridge: the root's "." record starts its system use area with SP.
        let first = self.read(u64::from(proot.0) * BLOCK, BLOCK_US, "root directory")?;
        let Some(rec) = record(&first).filter(|r| r.ident == [0] && r.loc == proot.0) else {
            return Err(self.corrupt("root directory does not start with its '.' record"));
        };
        if rec.sua.len() >= 7 && &rec.sua[..2] == b"SP" && rec.sua[4..6] == [0xBE, 0xEF] {
            self.rr = true;
            self.skip = usize::from(rec.sua[6]);
        }
        let (names, root) = if self.rr {
            (Names::RockRidge, proot)
        } else if let Some(svd) = &svd {
            self.joliet = true;
            (Names::Joliet, root_of(svd))
        } else {
            (Names::Iso9660, proot)
        };
        Ok((volume_id, volume_set_id, names, root))
    }

    fn susp(&mut self, sua: &[u8]) -> Result<RrInfo, IsoError> {
        let mut info = RrInfo::default();
        let mut area: Vec<u8> = sua.get(self.skip..).unwrap_or(&[]).to_vec();
        for _hop in 0..32 {
            let mut next = None;
            let mut pos = 0usize;
            while pos + 4 <= area.len() {
                let l = usize::from(area[pos + 2]);
                if l < 4 || pos + l > area.len() {
                    break;
                }
                let data = &area[pos + 4..pos + l];
                match &area[pos..pos + 2] {
                    // NM flags CURRENT/PARENT (0x06) name "." / "..": ignored.
                    b"NM" if !data.is_empty() && data[0] & 0x06 == 0 => {
                        info.name.extend_from_slice(&data[1..]);
                        info.has_name = true;
                        if info.name.len() > 4096 {
                            return Err(self.corrupt("Rock Ridge name longer than 4096 bytes"));
                        }
                    }
                    b"PX" => info.mode = le32(data, 0),
                    b"RE" => info.relocated = true,
                    b"CL" => info.child_link = le32(data, 0),
                    b"ZF" => info.compressed = true,
                    b"CE" => {
                        if let (Some(b), Some(o), Some(n)) =
                            (le32(data, 0), le32(data, 8), le32(data, 16))
                        {
                            next = Some((b, o, n));
                        }
                    }
                    b"ST" => break,
                    _ => {}
                }
                pos += l;
            }
            let Some((b, o, n)) = next else {
                return Ok(info);
            };
            if n > 65_536 {
                return Err(self.corrupt("continuation area longer than 64 KiB"));
            }
            let off = u64::from(b) * BLOCK + u64::from(o);
            area = self.read(off, n as usize, "continuation area")?;
        }
        Err(self.corrupt("too many chained continuation areas"))
    }

    fn name_of(&self, ident: &[u8]) -> String {
        let s = if self.joliet {
            let units = ident
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect::<String>()
        } else {
            String::from_utf8_lossy(ident).into_owned()
        };
        let mut s = match s.rfind(';') {
            Some(i) if s[i + 1..].bytes().all(|b| b.is_ascii_digit()) => s[..i].to_string(),
            _ => s,
        };
        if !self.joliet && s.ends_with('.') && s.len() > 1 {
            s.pop();
        }
        s
    }

    fn walk(&mut self, root: (u32, u32)) -> Result<(), IsoError> {
        let mut visited = HashSet::new();
        let mut stack = vec![DirRef {
            loc: root.0,
            ear: 0,
            size: root.1,
            path: String::new(),
            depth: 0,
        }];
        while let Some(DirRef {
            loc,
            ear,
            size,
            path: prefix,
            depth,
        }) = stack.pop()
        {
            if depth > MAX_READ_DEPTH {
                return Err(
                    self.corrupt(format!("directories nested deeper than {MAX_READ_DEPTH}"))
                );
            }
            if !visited.insert(loc) {
                return Err(self.corrupt(format!("directory loop at block {loc}")));
            }
            self.dir(loc, ear, size, &prefix, depth, &mut stack)?;
        }
        Ok(())
    }

    fn dir(
        &mut self,
        loc: u32,
        ear: u8,
        size: u32,
        prefix: &str,
        depth: u32,
        stack: &mut Vec<DirRef>,
    ) -> Result<(), IsoError> {
        let here = if prefix.is_empty() { "/" } else { prefix };
        let base = (u64::from(loc) + u64::from(ear)) * BLOCK;
        let mut pending: Option<Pending> = None;
        let mut first = true;
        let sectors = u64::from(size).div_ceil(BLOCK);
        let mut s = 0u64;
        while s < sectors {
            let n = (sectors - s).min(64);
            let chunk = self.read(base + s * BLOCK, (n * BLOCK) as usize, "directory")?;
            for (i, sec) in chunk.chunks_exact(BLOCK_US).enumerate() {
                let sec_start = (s + i as u64) * BLOCK;
                let limit = (u64::from(size) - sec_start).min(BLOCK) as usize;
                let sec = &sec[..limit];
                let mut off = 0usize;
                while off < sec.len() {
                    let rl = usize::from(sec[off]);
                    if rl == 0 {
                        break;
                    }
                    let Some(raw) = sec.get(off..off + rl) else {
                        return Err(self.corrupt(format!(
                            "directory {here}: record crosses a block boundary"
                        )));
                    };
                    let Some(rec) = record(raw) else {
                        return Err(self
                            .corrupt(format!("directory {here}: malformed record of {rl} bytes")));
                    };
                    if first && (rec.ident != [0] || rec.loc != loc) {
                        return Err(self.corrupt(format!(
                            "directory {here} does not start with its '.' record"
                        )));
                    }
                    first = false;
                    self.entry(&rec, prefix, here, depth, stack, &mut pending)?;
                    off += rl;
                }
            }
            s += n;
        }
        if pending.is_some() {
            return Err(self.corrupt(format!("directory {here}: unterminated multi-extent file")));
        }
        Ok(())
    }

    fn entry(
        &mut self,
        rec: &Rec<'_>,
        prefix: &str,
        here: &str,
        depth: u32,
        stack: &mut Vec<DirRef>,
        pending: &mut Option<Pending>,
    ) -> Result<(), IsoError> {
        if rec.ident == [0] || rec.ident == [1] {
            if pending.is_some() {
                return Err(
                    self.corrupt(format!("directory {here}: multi-extent file interrupted"))
                );
            }
            return Ok(());
        }
        let rr = if self.rr {
            self.susp(rec.sua)?
        } else {
            RrInfo::default()
        };
        if rr.relocated {
            return Ok(()); // shown where its CL entry points
        }
        let name = if rr.has_name {
            String::from_utf8_lossy(&rr.name).into_owned()
        } else {
            self.name_of(rec.ident)
        };
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return Err(self.corrupt(format!("directory {here}: invalid name {name:?}")));
        }
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        self.path_bytes += path.len();
        if self.path_bytes > MAX_PATH_BYTES {
            return Err(self.corrupt("too many or too long paths"));
        }
        let is_dir = rec.flags & 0x02 != 0 || rr.child_link.is_some();
        if is_dir {
            if pending.is_some() || rec.flags & 0x80 != 0 {
                return Err(self.corrupt(format!("{path}: directory inside a multi-extent file")));
            }
            let (loc, ear, size) = match rr.child_link {
                Some(cl) => {
                    // The relocated directory's size is in its own "." record.
                    let first =
                        self.read(u64::from(cl) * BLOCK, BLOCK_US, "relocated directory")?;
                    match record(&first) {
                        Some(r) if r.ident == [0] => (cl, 0, r.size),
                        _ => return Err(self.corrupt(format!("{path}: bad relocated directory"))),
                    }
                }
                None => (rec.loc, rec.ear, rec.size),
            };
            stack.push(DirRef {
                loc,
                ear,
                size,
                path,
                depth: depth + 1,
            });
            return Ok(());
        }
        if rec.flags & 0x04 != 0 {
            return Ok(()); // associated file
        }
        let regular = rr.mode.is_none_or(|m| m & 0o170_000 == 0o100_000);
        // A file we cannot decode is listed as such, on its own: the
        // image's other files are still read.
        let mut unreadable = None;
        if regular && rec.size > 0 {
            if rec.unit != 0 || rec.gap != 0 {
                unreadable = Some(Unreadable::Interleaved);
            } else if rr.compressed {
                unreadable = Some(Unreadable::Compressed);
            }
        }
        let off = (u64::from(rec.loc) + u64::from(rec.ear)) * BLOCK;
        let len = u64::from(rec.size);
        let end = off.saturating_add(len);
        if regular && len > 0 && end > self.len {
            // Past the end of a short image, but inside its volume space:
            // this file's data was cut off. Past both: corrupt.
            if end > self.volume_len {
                return Err(
                    self.corrupt(format!("{path}: data extends beyond the end of the image"))
                );
            }
            unreadable = unreadable.or(Some(Unreadable::PastEnd {
                data_end: end,
                image_len: self.len,
                volume_len: self.volume_len,
            }));
        }
        let p = match pending.take() {
            Some(mut p) => {
                if p.ident != rec.ident {
                    return Err(self.corrupt(format!("{path}: multi-extent file interrupted")));
                }
                p.size = p.size.saturating_add(len);
                p.extents.push((off, len));
                p.unreadable = p.unreadable.or(unreadable);
                p
            }
            None => Pending {
                ident: rec.ident.to_vec(),
                path,
                regular,
                extents: vec![(off, len)],
                size: len,
                unreadable,
            },
        };
        if rec.flags & 0x80 != 0 {
            *pending = Some(p);
            return Ok(());
        }
        if p.regular {
            // Each extent lies within the image, but a multi-extent file
            // could repeat one many times: a small hostile image would then
            // hold a file of terabytes, and copying it out (its manifest)
            // would fill the disk. No real file is larger than its image
            // (or, for a short image, its volume space; such a file is
            // never read).
            if p.size > self.len.max(self.volume_len)
                || (p.unreadable.is_none() && p.size > self.len)
            {
                return Err(self.corrupt(format!(
                    "{}: {} bytes, more than the whole image",
                    p.path, p.size
                )));
            }
            let extents = p.extents.into_iter().filter(|e| e.1 > 0).collect();
            self.files.push(IsoFile {
                path: p.path,
                size: p.size,
                extents,
                unreadable: p.unreadable,
            });
        }
        Ok(())
    }
}

struct DirRef {
    loc: u32,
    ear: u8,
    size: u32,
    path: String,
    depth: u32,
}

struct Rec<'b> {
    loc: u32,
    size: u32,
    ear: u8,
    flags: u8,
    unit: u8,
    gap: u8,
    ident: &'b [u8],
    sua: &'b [u8],
}

fn record(r: &[u8]) -> Option<Rec<'_>> {
    let rl = usize::from(*r.first()?);
    let r = r.get(..rl)?;
    if rl < 34 {
        return None;
    }
    let id_len = usize::from(r[32]);
    let ident = r.get(33..33 + id_len)?;
    if ident.is_empty() {
        return None;
    }
    let sua_start = 33 + id_len + usize::from(id_len % 2 == 0);
    Some(Rec {
        loc: le32(r, 2)?,
        size: le32(r, 10)?,
        ear: r[1],
        flags: r[25],
        unit: r[26],
        gap: r[27],
        ident,
        sua: r.get(sua_start..).unwrap_or(&[]),
    })
}
