//! The discs a recovery tool is given: a mounted disc (a folder with
//! `manifest.db` at its root), an image read directly without mounting, or a
//! folder holding images. Each is opened with its own manifest; together
//! they form a [`DiscSet`] whose history comes from the newest manifest.
//! Discs of another set are refused. Recovery tools read only what is here,
//! never a workdir.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::catalog::manifest::{Manifest, ManifestError, SetIdentity};
use crate::disc;
use crate::iso::{IsoError, IsoReader, Unreadable};

/// Why a disc could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MediumError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Iso(#[from] IsoError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{}: not a dbackup disc: {why}", path.display())]
    NotADisc { path: PathBuf, why: String },
    #[error("{} is disc {disc} of set {theirs}, not of set {ours} (the newest disc given); leave it out or give the discs of one set only", path.display())]
    OtherSet {
        path: PathBuf,
        disc: i64,
        theirs: String,
        ours: String,
    },
    #[error("no discs given")]
    NoDiscs,
}

type Result<T> = std::result::Result<T, MediumError>;

/// A disc that could not be opened, and why.
#[derive(Debug)]
pub struct Unusable {
    pub source: PathBuf,
    pub error: MediumError,
}

/// Where a disc's content is.
pub enum Content {
    /// A mounted disc or an extracted copy: a folder.
    Folder(PathBuf),
    /// An image file, read with our own ISO reader.
    Image(IsoReader),
}

impl Content {
    /// Opens a stored file for reading. Unlike a [`Medium`], the content can
    /// be shared between threads, so several workers can read one disc.
    pub fn open(&self, stored: &Stored) -> std::io::Result<Box<dyn Read + Send + '_>> {
        match self {
            Content::Image(r) => match r.find(&stored.rel) {
                Some(f) => Ok(Box::new(r.reader(f))),
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{} is not on the image", stored.rel),
                )),
            },
            Content::Folder(root) => Ok(Box::new(std::fs::File::open(root.join(&stored.rel))?)),
        }
    }
}

/// A file stored on a disc.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Path relative to the disc root (`files/4/1234`).
    pub rel: String,
    pub size: u64,
    /// Where it starts on the medium, for reading in on-disc order (for a
    /// folder, the position its name takes in the image's sorted layout).
    pub order: u128,
    /// Why its data cannot be read from this image (past the end of a
    /// short image, compressed): it is then unreadable whatever its size
    /// says.
    pub unreadable: Option<Unreadable>,
}

/// One disc.
pub struct Medium {
    /// What the user gave (or the image found in a folder they gave).
    pub source: PathBuf,
    pub content: Content,
    /// The disc's own manifest.
    pub manifest: Manifest,
    /// Which disc of the set this is (the highest completed disc of its
    /// manifest); for a parity disc, the newest data disc its manifest knows.
    pub disc: i64,
    /// For a parity disc: its group and its number in the group (`G-J`).
    pub parity: Option<(i64, i64)>,
    pub identity: SetIdentity,
    /// Keeps an image's extracted manifest alive as long as we use it.
    _manifest_copy: Option<crate::temp::Lease>,
}

/// The name an image's manifest copy starts with, in the temp folder.
pub const MANIFEST_COPY: &str = "dbackup-manifest-";

fn io(path: &Path, source: std::io::Error) -> MediumError {
    MediumError::Io {
        path: path.into(),
        source,
    }
}

impl Medium {
    /// Opens what PATH names: one disc (a mounted disc or an image), or every
    /// image (`*.iso`) in a folder without `manifest.db`.
    pub fn open_all(path: &Path) -> Result<Vec<Medium>> {
        Medium::open_each(path)?
            .into_iter()
            .map(|(_, m)| m)
            .collect()
    }

    /// Like [`Medium::open_all`], with each disc's own outcome, so that one
    /// that cannot be opened does not hide the others. Fails only when PATH
    /// itself cannot be used.
    pub fn open_each(path: &Path) -> Result<Vec<(PathBuf, Result<Medium>)>> {
        let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
        if meta.is_dir() {
            if path.join(disc::MANIFEST).is_file() {
                return Ok(vec![(path.into(), Medium::open_folder(path))]);
            }
            let mut images: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| io(path, e))?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("iso")) && p.is_file()
                })
                .collect();
            images.sort();
            if images.is_empty() {
                return Err(MediumError::NotADisc {
                    path: path.into(),
                    why: "no manifest.db at its root and no .iso images in it".into(),
                });
            }
            Ok(images
                .into_iter()
                .map(|p| {
                    let m = Medium::open_image(&p);
                    (p, m)
                })
                .collect())
        } else {
            Ok(vec![(path.into(), Medium::open_image(path))])
        }
    }

    /// A mounted disc: a folder with `manifest.db` at its root.
    pub fn open_folder(root: &Path) -> Result<Medium> {
        let manifest = Manifest::open(&root.join(disc::MANIFEST))?;
        Medium::finish(root.into(), Content::Folder(root.into()), manifest, None)
    }

    /// An image, read directly: its manifest is copied to a temp file, since
    /// SQLite reads files, not byte ranges of an image.
    pub fn open_image(path: &Path) -> Result<Medium> {
        let reader = IsoReader::open(path)?;
        let Some(entry) = reader.find(disc::MANIFEST) else {
            return Err(MediumError::NotADisc {
                path: path.into(),
                why: "the image has no manifest.db".into(),
            });
        };
        // Without its manifest a disc cannot be told apart or checked: a
        // short image whose manifest was cut off is unusable, and says so.
        if let Some(why) = entry.unreadable {
            return Err(MediumError::NotADisc {
                path: path.into(),
                why: format!("its manifest.db cannot be read: {why}"),
            });
        }
        // Leased: a copy left by a killed run is swept by the next one.
        let tmp =
            crate::temp::file(MANIFEST_COPY, ".db").map_err(|e| io(&std::env::temp_dir(), e))?;
        std::io::copy(&mut reader.reader(entry), &mut tmp.file()).map_err(|e| io(path, e))?;
        let manifest = Manifest::open(tmp.path())?;
        // A test's pause with the copy in use.
        fail::fail_point!("medium::manifest_copied");
        Medium::finish(path.into(), Content::Image(reader), manifest, Some(tmp))
    }

    fn finish(
        source: PathBuf,
        content: Content,
        manifest: Manifest,
        copy: Option<crate::temp::Lease>,
    ) -> Result<Medium> {
        let disc = manifest.this_disc()?.ok_or_else(|| MediumError::NotADisc {
            path: source.clone(),
            why: "its manifest has no completed disc".into(),
        })?;
        let identity = manifest.identity();
        let parity = match manifest.setting(crate::parity::THIS_PARITY_DISC) {
            None => None,
            Some(v) => {
                Some(
                    crate::parity::parse_this(&v).ok_or_else(|| MediumError::NotADisc {
                        path: source.clone(),
                        why: format!(
                        "its manifest names it parity disc {v:?}, which is no parity disc's name"
                    ),
                    })?,
                )
            }
        };
        Ok(Medium {
            source,
            content,
            manifest,
            disc,
            parity,
            identity,
            _manifest_copy: copy,
        })
    }

    /// The stored file with id `id`, if the disc has it.
    pub fn stored(&self, id: i64) -> Option<Stored> {
        let rel = disc::file_path(id).to_string_lossy().into_owned();
        self.stored_at(rel, folder_order(id))
    }

    /// Part `part` of split file `id`, if the disc has it.
    pub fn stored_part(&self, id: i64, part: u32) -> Option<Stored> {
        let rel = disc::part_path(id, part).to_string_lossy().into_owned();
        // `<id>.<k>` sorts right after `<id>` and before `<id>0`.
        self.stored_at(rel, folder_order(id).saturating_add(u128::from(part)))
    }

    /// The regular file at `rel` on the disc; `order` is its place in a
    /// folder's layout.
    fn stored_at(&self, rel: String, order: u128) -> Option<Stored> {
        match &self.content {
            Content::Image(r) => r.find(&rel).map(|f| Stored {
                rel,
                size: f.size,
                order: u128::from(f.extents.first().map(|e| e.0).unwrap_or(0)),
                unreadable: f.unreadable,
            }),
            Content::Folder(root) => {
                let meta = std::fs::symlink_metadata(root.join(&rel)).ok()?;
                meta.is_file().then_some(Stored {
                    order,
                    rel,
                    size: meta.len(),
                    unreadable: None,
                })
            }
        }
    }

    /// Every file under `files/` on the disc (to find those the manifest
    /// does not know).
    pub fn stored_files(&self) -> Result<Vec<Stored>> {
        match &self.content {
            Content::Image(r) => Ok(r
                .files()
                .iter()
                .filter(|f| f.path.starts_with("files/"))
                .map(|f| Stored {
                    rel: f.path.clone(),
                    size: f.size,
                    order: u128::from(f.extents.first().map(|e| e.0).unwrap_or(0)),
                    unreadable: f.unreadable,
                })
                .collect()),
            Content::Folder(root) => {
                let base = root.join(disc::FILES_DIR);
                let mut out = Vec::new();
                if !base.is_dir() {
                    return Ok(out);
                }
                for entry in walkdir::WalkDir::new(&base).follow_links(false) {
                    let entry = entry.map_err(|e| {
                        io(
                            &base,
                            e.into_io_error()
                                .unwrap_or_else(|| std::io::Error::other("walk failed")),
                        )
                    })?;
                    if !entry.file_type().is_file() {
                        continue;
                    }
                    let rel = entry
                        .path()
                        .strip_prefix(root)
                        .unwrap_or(entry.path())
                        .to_string_lossy()
                        .into_owned();
                    let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                    let order = entry
                        .file_name()
                        .to_str()
                        .and_then(|n| {
                            let (id, part) = n.split_once('.').unwrap_or((n, "0"));
                            Some(
                                folder_order(id.parse::<i64>().ok()?)
                                    .saturating_add(u128::from(part.parse::<u32>().ok()?)),
                            )
                        })
                        .unwrap_or(u128::MAX);
                    out.push(Stored {
                        rel,
                        size,
                        order,
                        unreadable: None,
                    });
                }
                Ok(out)
            }
        }
    }

    /// Opens a stored file for reading.
    pub fn open(&self, stored: &Stored) -> std::io::Result<Box<dyn Read + Send + '_>> {
        self.content.open(stored)
    }

    /// A short label for messages: `disc 3 (/media/cdrom)`, or
    /// `parity disc 1-1 (...)`.
    pub fn label(&self) -> String {
        match self.parity {
            Some((g, j)) => format!("parity disc {g}-{j} ({})", self.source.display()),
            None => format!("disc {} ({})", self.disc, self.source.display()),
        }
    }

    /// The name users know the disc by: `disc 3` or `parity disc 1-2`.
    pub fn name(&self) -> String {
        match self.parity {
            Some((g, j)) => format!("parity disc {g}-{j}"),
            None => format!("disc {}", self.disc),
        }
    }

    /// The file its manifest is read from (for an image, a temp copy).
    pub fn manifest_path(&self) -> &Path {
        self.manifest.path()
    }

    /// A regular file at `rel` on the disc (e.g. `parity-1.par2`).
    pub fn file(&self, rel: &str) -> Option<Stored> {
        self.stored_at(rel.to_string(), 0)
    }

    /// The names of the regular files at the disc's root.
    pub fn root_files(&self) -> Vec<String> {
        match &self.content {
            Content::Image(r) => r
                .files()
                .iter()
                .filter(|f| !f.path.contains('/'))
                .map(|f| f.path.clone())
                .collect(),
            Content::Folder(root) => std::fs::read_dir(root)
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                        .filter_map(|e| e.file_name().to_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// Where file `id` sits in an image's layout, which stores folders and names
/// in sorted order (`files/0/1`, `files/0/10`, `files/0/100`, `files/0/11`):
/// reading a mounted disc in this order reads it front to back.
fn folder_order(id: i64) -> u128 {
    // Each name as a base-11 number of 18 digits (digit+1, 0 = past the
    // end), so that comparing keys compares the names as strings.
    fn key(s: &str) -> u128 {
        let mut v = 0u128;
        let mut digits = s.bytes();
        for _ in 0..18 {
            v = v * 11 + digits.next().map(|b| u128::from(b - b'0') + 1).unwrap_or(0);
        }
        v
    }
    let dir = id.div_euclid(disc::FILES_PER_DIR).max(0);
    key(&dir.to_string()) * 11u128.pow(18) + key(&id.max(0).to_string())
}

/// The discs given to a recovery tool.
pub struct DiscSet {
    /// One per disc number, in disc order.
    pub media: Vec<Medium>,
    /// Index in `media` of the newest disc, whose manifest is the history.
    pub newest: usize,
    /// Discs given twice (same number): their sources, left out.
    pub duplicates: Vec<PathBuf>,
    /// Parity discs given, by group then number (duplicates left out).
    pub parity: Vec<Medium>,
    /// The set's identity, as the history's disc told it when opened.
    ours: SetIdentity,
}

impl DiscSet {
    /// Opens every path (see [`Medium::open_all`]), takes the history from the
    /// newest disc, and refuses discs of another set.
    pub fn open(paths: &[PathBuf]) -> Result<DiscSet> {
        let mut media = Vec::new();
        for p in paths {
            media.extend(Medium::open_all(p)?);
        }
        DiscSet::from_media(media)
    }

    /// For checking discs: like [`DiscSet::open`], but a disc that cannot be
    /// opened (a damaged image, an unreadable manifest) is set aside with the
    /// reason, so the others are still read. Fails when none can be opened.
    pub fn open_lenient(paths: &[PathBuf]) -> Result<(DiscSet, Vec<Unusable>)> {
        let mut media = Vec::new();
        let mut unusable = Vec::new();
        for p in paths {
            for (source, m) in Medium::open_each(p)? {
                match m {
                    Ok(m) => media.push(m),
                    Err(error) => unusable.push(Unusable { source, error }),
                }
            }
        }
        if media.is_empty() && !unusable.is_empty() {
            return Err(unusable.swap_remove(0).error);
        }
        Ok((DiscSet::from_media(media)?, unusable))
    }

    fn from_media(media: Vec<Medium>) -> Result<DiscSet> {
        let (mut parity, mut media): (Vec<Medium>, Vec<Medium>) =
            media.into_iter().partition(|m| m.parity.is_some());
        if media.is_empty() && parity.is_empty() {
            return Err(MediumError::NoDiscs);
        }
        media.sort_by_key(|m| m.disc);
        parity.sort_by_key(|m| (m.parity, std::cmp::Reverse(m.disc)));
        // Every disc must belong to the set of the newest one, checked
        // before duplicates are dropped: a disc 1 of another set is not a
        // copy of ours. With parity discs alone, the first's set.
        let ours = media
            .last()
            .or(parity.first())
            .map(|m| m.identity.clone())
            .ok_or(MediumError::NoDiscs)?;
        for m in media.iter().chain(&parity) {
            if !m.identity.same_set(&ours) {
                return Err(MediumError::OtherSet {
                    path: m.source.clone(),
                    disc: m.disc,
                    theirs: m.identity.describe(),
                    ours: ours.describe(),
                });
            }
        }
        let mut duplicates = Vec::new();
        let mut unique: Vec<Medium> = Vec::with_capacity(media.len());
        for m in media {
            if unique.last().is_some_and(|u| u.disc == m.disc) {
                duplicates.push(m.source);
            } else {
                unique.push(m);
            }
        }
        let mut parity_unique: Vec<Medium> = Vec::with_capacity(parity.len());
        for m in parity {
            if parity_unique.last().is_some_and(|u| u.parity == m.parity) {
                duplicates.push(m.source);
            } else {
                parity_unique.push(m);
            }
        }
        let newest = unique.len().saturating_sub(1);
        Ok(DiscSet {
            media: unique,
            newest,
            duplicates,
            parity: parity_unique,
            ours,
        })
    }

    /// Adds a data disc found later (an image rebuilt from parity); when it
    /// is the newest, its manifest becomes the history. One already given
    /// is kept.
    pub fn add(&mut self, m: Medium) {
        let at = self.media.partition_point(|x| x.disc < m.disc);
        if self.media.get(at).is_some_and(|x| x.disc == m.disc) {
            return;
        }
        self.media.insert(at, m);
        self.newest = self.media.len() - 1;
    }

    /// The disc whose manifest is the set's history: the newest data disc
    /// given, or with parity discs alone, the first of them. A set holds at
    /// least one disc (restore lets go of the discs at its drive only after
    /// planning, and asks for no history after).
    pub fn history_medium(&self) -> &Medium {
        match self.media.get(self.newest) {
            Some(m) => m,
            // `from_media` keeps at least one disc, data or parity.
            None => &self.parity[0],
        }
    }

    /// The manifest holding the set's history (see [`Self::history_medium`]).
    pub fn history(&self) -> &Manifest {
        &self.history_medium().manifest
    }

    /// The set's identity, as the history's disc told it.
    pub fn identity(&self) -> &SetIdentity {
        &self.ours
    }

    /// The given disc with number `disc`.
    pub fn medium(&self, disc: i64) -> Option<&Medium> {
        self.media.iter().find(|m| m.disc == disc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image of `entries` by our writer, read back.
    fn image_of(entries: &[crate::iso::Entry]) -> (tempfile::NamedTempFile, IsoReader) {
        let opts = crate::iso::WriteOptions {
            volume_id: "T".into(),
            volume_set_id: "T".into(),
            application_id: "T".into(),
            timestamp: 0,
        };
        let tmp = tempfile::NamedTempFile::new().unwrap();
        crate::iso::write_image(tmp.as_file(), entries, &opts, &mut |_| {}).unwrap();
        let reader = IsoReader::open(tmp.path()).unwrap();
        (tmp, reader)
    }

    #[test]
    fn folder_order_is_the_order_our_writer_lays_files_out() {
        use crate::iso::{Entry, Source};
        let ids = [1i64, 2, 10, 11, 100, 255, 256, 300, 1234, 2560, 70000];
        let entries: Vec<Entry> = ids
            .iter()
            .map(|&id| Entry {
                path: disc::file_path(id).to_string_lossy().into_owned(),
                source: Source::Bytes(vec![1; 10]),
            })
            .collect();
        let (_tmp, reader) = image_of(&entries);
        let mut by_extent = ids.to_vec();
        by_extent.sort_by_key(|&id| {
            reader
                .find(&disc::file_path(id).to_string_lossy())
                .unwrap()
                .extents[0]
                .0
        });
        let mut by_key = ids.to_vec();
        by_key.sort_by_key(|&id| folder_order(id));
        assert_eq!(by_key, by_extent);
    }

    /// A part (`<id>.<k>`, one per version on a disc) takes its place
    /// between whole files the way the writer lays it out.
    #[test]
    fn parts_take_their_place_in_a_folders_order() {
        use crate::iso::{Entry, Source};
        let items: [(i64, u32); 8] = [
            (1, 0),
            (1, 3),
            (10, 0),
            (10, 1),
            (100, 0),
            (11, 2),
            (2, 1),
            (256, 7),
        ];
        let rel = |(id, part): (i64, u32)| {
            if part == 0 {
                disc::file_path(id)
            } else {
                disc::part_path(id, part)
            }
            .to_string_lossy()
            .into_owned()
        };
        let entries: Vec<Entry> = items
            .iter()
            .map(|&it| Entry {
                path: rel(it),
                source: Source::Bytes(vec![1; 10]),
            })
            .collect();
        let (_tmp, reader) = image_of(&entries);
        let mut by_extent = items.to_vec();
        by_extent.sort_by_key(|&it| reader.find(&rel(it)).unwrap().extents[0].0);
        let mut by_key = items.to_vec();
        by_key.sort_by_key(|&(id, part)| folder_order(id) + u128::from(part));
        assert_eq!(by_key, by_extent);
    }
}
