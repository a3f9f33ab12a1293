//! Rebuilding a lost data disc's image from its group's surviving images
//! and parity discs, as `docs/parity.md` says a stranger does by hand:
//! the survivors as `disc-N.iso` and the parity discs' `.par2` files in one
//! folder, then stock `par2 repair`.
//!
//! Nothing is copied: the work folder holds links to the survivors' images
//! (as `disc-N.iso`) and to the parity discs (an image as it is, since par2
//! finds its packets wherever they are in a file; a mounted disc's files of
//! our names), and par2 writes the lost image there.
//!
//! Everything from a disc is hostile until checked: a group's layout is
//! taken from a parity disc's own manifest (the one its PAR2 data was made
//! with), and every FileDesc packet in what par2 is given must describe one
//! of the group's discs as that layout records it, so par2 writes no name
//! but ours; the rebuilt image counts only when its size and MD5 are the
//! recorded ones and its own manifest says it is that disc of this set. The
//! work folder is a fresh temp folder (never in a restore's target),
//! removed when done.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use super::par2::{self, Outcome};
use crate::catalog::parity::{read_groups, GroupInfo};
use crate::medium::{Content, DiscSet, Medium};

/// Why a disc could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("disc {0} is in no parity group that the given discs describe: give a parity disc of its group (none is made until the group is full, or ended with dbackup-stage close --parity)")]
    NoGroup(i64),
    #[error("{0}")]
    NotEnough(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}; nothing was written")]
    Par2(#[from] par2::Par2Error),
    #[error("{} already exists; name a new file with --to", .0.display())]
    Exists(PathBuf),
    #[error("interrupted; nothing was written")]
    Interrupted,
}

type Result<T> = std::result::Result<T, RebuildError>;

fn io(path: &Path, source: std::io::Error) -> RebuildError {
    RebuildError::Io {
        path: path.into(),
        source,
    }
}

/// What the given discs can do for one parity group.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Coverage {
    pub group: GroupInfo,
    /// Its data discs given as images (what par2 can read).
    pub images: Vec<i64>,
    /// Its data discs given only as folders (mounted discs): readable for
    /// files, but par2 needs their image.
    pub folders: Vec<i64>,
    /// Its parity discs given (numbers J).
    pub parity: Vec<i64>,
    /// Its data discs not given as images.
    pub missing: Vec<i64>,
}

impl Coverage {
    /// Whether the data discs not given as images can all be rebuilt.
    pub fn can_rebuild(&self) -> bool {
        !self.parity.is_empty() && self.missing.len() <= self.parity.len()
    }

    /// What is needed, in words: `discs 1, 3 and parity disc 1-1`.
    pub fn needs(&self) -> String {
        let data: Vec<String> = self
            .group
            .members
            .iter()
            .map(|m| m.disc)
            .filter(|d| !self.missing.contains(d))
            .map(|d| d.to_string())
            .collect();
        let parity: Vec<String> = self
            .parity
            .iter()
            .map(|j| format!("{}-{j}", self.group.id))
            .collect();
        format!(
            "the images of discs {} and parity disc {}",
            if data.is_empty() {
                "(none)".to_string()
            } else {
                data.join(", ")
            },
            parity.join(", ")
        )
        .replace("discs (none) and ", "no other data disc and ")
    }
}

/// The parity groups the given discs describe: each parity disc's own
/// layout first (what its PAR2 data was made with), then any the data
/// discs' manifests add. By group id.
pub fn groups(set: &DiscSet) -> BTreeMap<i64, GroupInfo> {
    let mut out = BTreeMap::new();
    // Bounded by the discs given.
    for m in set.parity.iter().chain(set.media.iter().rev()) {
        let Ok((groups, _invalid)) = read_groups(m.manifest_path()) else {
            continue;
        };
        for g in groups {
            if let Some((gid, _)) = m.parity {
                if gid != g.id && out.contains_key(&g.id) {
                    continue;
                }
            }
            out.entry(g.id).or_insert(g);
        }
    }
    out
}

/// What the given discs can rebuild, for every group that has a parity
/// disc among them.
pub fn coverage(set: &DiscSet) -> Vec<Coverage> {
    let groups = groups(set);
    groups
        .into_values()
        .filter_map(|g| {
            let parity: Vec<i64> = set
                .parity
                .iter()
                .filter_map(|m| m.parity)
                .filter(|&(gid, j)| gid == g.id && j <= i64::from(g.m))
                .map(|(_, j)| j)
                .collect();
            if parity.is_empty() {
                return None;
            }
            let mut images = Vec::new();
            let mut folders = Vec::new();
            let mut missing = Vec::new();
            for member in &g.members {
                match set.medium(member.disc).map(|m| &m.content) {
                    Some(Content::Image(_)) => images.push(member.disc),
                    Some(Content::Folder(_)) => {
                        folders.push(member.disc);
                        missing.push(member.disc);
                    }
                    None => missing.push(member.disc),
                }
            }
            Some(Coverage {
                group: g,
                images,
                folders,
                parity,
                missing,
            })
        })
        .collect()
}

/// A disc rebuilt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rebuilt {
    pub disc: i64,
    pub group: i64,
    pub path: PathBuf,
    pub size: u64,
    pub md5: String,
    /// The data discs and parity discs it was rebuilt from.
    pub from_discs: Vec<i64>,
    pub from_parity: Vec<i64>,
}

/// The name a rebuild's work folder starts with.
pub const REBUILD_FOLDER: &str = "dbackup-rebuild-";

/// A disc rebuilt into a private temp folder, removed when dropped.
pub struct Scratch {
    pub rebuilt: Rebuilt,
    _dir: crate::temp::Lease,
}

/// Rebuilds data disc `disc` from the given discs into a fresh temp folder
/// under `scratch` (which must have room for the group's recovery files and
/// one image), checked: size, MD5 and its own manifest.
pub fn rebuild_in(set: &DiscSet, disc: i64, scratch: &Path) -> Result<Scratch> {
    let cov = coverage(set)
        .into_iter()
        .find(|c| c.group.protects(disc))
        .ok_or(RebuildError::NoGroup(disc))?;
    if !cov.missing.contains(&disc) {
        return Err(RebuildError::Invalid(format!(
            "disc {disc} is given as an image, so there is nothing to rebuild; to rebuild it anyway (e.g. its image is damaged), leave it out of the discs given"
        )));
    }
    if !cov.can_rebuild() {
        let folders = if cov.folders.is_empty() {
            String::new()
        } else {
            format!(
                " (given as a mounted folder: {}; par2 needs the image, e.g. dd if=/dev/sr0 of=disc-N.iso bs=2048)",
                list(&cov.folders)
            )
        };
        return Err(RebuildError::NotEnough(format!(
            "parity group {} cannot rebuild disc {disc}: its data discs not given as images are {}{folders}, {} in all, and parity discs given are {} of its {}; a group rebuilds at most as many data discs as it has parity discs given",
            cov.group.id,
            list(&cov.missing),
            cov.missing.len(),
            cov.parity.len(),
            cov.group.m
        )));
    }
    par2::tool()?;
    let member = cov
        .group
        .members
        .iter()
        .find(|m| m.disc == disc)
        .cloned()
        .ok_or(RebuildError::NoGroup(disc))?;
    // Leased: the folder of a killed rebuild, image and all, is swept by
    // the next rebuild beside it.
    let dir = crate::temp::folder_in(scratch, REBUILD_FOLDER).map_err(|e| io(scratch, e))?;
    let work = dir.path();
    let index = super::par2_index(cov.group.id);
    // The parity discs, linked in as par2 files, never copied: an image as
    // it is (par2 finds its packets inside it), a mounted disc's files of
    // our names. Every FileDesc packet par2 could see must describe one of
    // the group's discs as its layout records it, so that par2 writes no
    // name but ours.
    let mut linked_index = false;
    let mut described: Vec<par2::FileDesc> = Vec::new();
    for m in set
        .parity
        .iter()
        .filter(|m| m.parity.is_some_and(|(g, _)| g == cov.group.id))
    {
        let j = m.parity.map(|(_, j)| j).unwrap_or_default();
        let files: Vec<(PathBuf, String)> = match &m.content {
            Content::Image(_) => {
                if m.file(&index).is_none() {
                    continue;
                }
                let name = if linked_index {
                    format!("parity-{}.disc-{j}.par2", cov.group.id)
                } else {
                    index.clone()
                };
                vec![(m.source.clone(), name)]
            }
            Content::Folder(root) => m
                .root_files()
                .into_iter()
                .filter(|n| is_par2_name(n, cov.group.id))
                .filter(|n| *n != index || !linked_index)
                .map(|n| (root.join(&n), n))
                .collect(),
        };
        for (src, name) in files {
            if work.join(&name).exists() {
                continue;
            }
            let mut f = std::fs::File::open(&src).map_err(|e| io(&src, e))?;
            let descs = par2::scan_file_descs(&mut f).map_err(|e| io(&src, e))?;
            check_descs(&descs, &cov.group, &m.label())?;
            described.extend(descs);
            let src = std::fs::canonicalize(&src).map_err(|e| io(&src, e))?;
            let link = work.join(&name);
            std::os::unix::fs::symlink(&src, &link).map_err(|e| io(&link, e))?;
            if name == index {
                linked_index = true;
            }
        }
    }
    if !linked_index {
        return Err(RebuildError::Invalid(format!(
            "no parity disc of group {} given holds its index {index}",
            cov.group.id
        )));
    }
    if let Some(m) = cov.group.members.iter().find(|m| {
        !described
            .iter()
            .any(|d| d.name == super::member_name(m.disc))
    }) {
        return Err(RebuildError::Invalid(format!(
            "the PAR2 data of parity group {} does not describe disc {}; the parity disc is damaged or not ours",
            cov.group.id, m.disc
        )));
    }
    // The survivors: links to their images, under the names par2 knows.
    for &d in &cov.images {
        let Some(m) = set.medium(d) else { continue };
        let src = std::fs::canonicalize(&m.source).map_err(|e| io(&m.source, e))?;
        let link = work.join(super::member_name(d));
        std::os::unix::fs::symlink(&src, &link).map_err(|e| io(&link, e))?;
    }
    let repaired = par2::repair(work, &index);
    if crate::interrupt::requested() {
        return Err(RebuildError::Interrupted);
    }
    match repaired? {
        Outcome::NotRepairable => {
            return Err(RebuildError::NotEnough(format!(
                "par2 cannot rebuild disc {disc}: the survivors and parity discs given hold too little of group {} (a damaged survivor or parity disc costs blocks)",
                cov.group.id
            )))
        }
        Outcome::Whole | Outcome::Repairable => {}
    }
    let path = work.join(super::member_name(disc));
    // Flushed, then read back from the file system: the MD5 is of what a
    // later read gets.
    std::fs::File::open(&path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(&path, e))?;
    let (size, md5) = md5_file(&path)?;
    if size != member.size || md5 != member.md5 {
        return Err(RebuildError::Invalid(format!(
            "the rebuilt image of disc {disc} is {size} bytes with MD5 {md5}, not the recorded {} bytes with MD5 {}; it was not kept",
            member.size, member.md5
        )));
    }
    check_is_disc(&path, disc, set)?;
    Ok(Scratch {
        rebuilt: Rebuilt {
            disc,
            group: cov.group.id,
            path,
            size,
            md5,
            from_discs: cov.images.clone(),
            from_parity: cov.parity.clone(),
        },
        _dir: dir,
    })
}

/// Rebuilds data disc `disc` and writes its image to `to` (a new file),
/// crash-safe: par2 writes it in a fresh work folder beside `to`; flushed,
/// read back and checked, it takes its name by a hard link, never
/// replacing a file, and the work folder is removed.
pub fn rebuild_to(set: &DiscSet, disc: i64, to: &Path) -> Result<Rebuilt> {
    if to.exists() {
        return Err(RebuildError::Exists(to.into()));
    }
    let parent = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let scratch = rebuild_in(set, disc, &parent)?;
    let from = &scratch.rebuilt.path;
    // An image to burn, readable like the workdir's images.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(from, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| io(from, e))?;
    }
    if crate::interrupt::requested() {
        return Err(RebuildError::Interrupted);
    }
    // The checked image (flushed and read back by `rebuild_in`) takes its
    // name by a link in the same folder: never replacing a file, and the
    // work folder, image and all, goes when `scratch` is dropped.
    std::fs::hard_link(from, to).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            RebuildError::Exists(to.into())
        } else {
            io(to, e)
        }
    })?;
    crate::fsutil::sync_dir(&parent).map_err(|e| RebuildError::Invalid(e.to_string()))?;
    Ok(Rebuilt {
        path: to.into(),
        ..scratch.rebuilt.clone()
    })
}

/// Whether `name` is one of group `g`'s PAR2 files as we name them.
fn is_par2_name(name: &str, g: i64) -> bool {
    if name == super::par2_index(g) {
        return true;
    }
    let Some(rest) = name
        .strip_prefix(&format!("parity-{g}.vol"))
        .and_then(|r| r.strip_suffix(".par2"))
    else {
        return false;
    };
    let Some((a, b)) = rest.split_once('+') else {
        return false;
    };
    !a.is_empty()
        && !b.is_empty()
        && a.len() < 8
        && b.len() < 8
        && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
}

/// Every FileDesc packet found on a parity disc must describe one of the
/// group's data discs exactly as the layout records it: then the only
/// names par2 will write are ours.
fn check_descs(descs: &[par2::FileDesc], g: &GroupInfo, disc: &str) -> Result<()> {
    for d in descs {
        let ours = g
            .members
            .iter()
            .any(|m| d.name == super::member_name(m.disc) && d.size == m.size && d.md5 == m.md5);
        if !ours {
            return Err(RebuildError::Invalid(format!(
                "{disc}: its PAR2 data describes a file {:?} of {} bytes that is none of parity group {}'s discs as its manifest records them; that parity disc is damaged or not ours",
                d.name, d.size, g.id
            )));
        }
    }
    Ok(())
}

/// The rebuilt image must be that disc of this set.
fn check_is_disc(path: &Path, disc: i64, set: &DiscSet) -> Result<()> {
    let m = Medium::open_image(path).map_err(|e| {
        RebuildError::Invalid(format!(
            "the rebuilt image of disc {disc} cannot be read: {e}"
        ))
    })?;
    if m.disc != disc || m.parity.is_some() || !m.identity.same_set(set.identity()) {
        return Err(RebuildError::Invalid(format!(
            "the rebuilt image is not disc {disc} of this set (its manifest says {})",
            m.label()
        )));
    }
    Ok(())
}

fn md5_file(path: &Path) -> Result<(u64, String)> {
    let mut f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    // Bounded by the file's size.
    loop {
        let k = f.read(&mut buf).map_err(|e| io(path, e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, crate::mkiso::hex(&h.finalize())))
}

fn list(d: &[i64]) -> String {
    d.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_par2_names_are_taken_from_a_disc() {
        assert!(is_par2_name("parity-3.par2", 3));
        assert!(is_par2_name("parity-3.vol0+8.par2", 3));
        assert!(is_par2_name("parity-3.vol16+8.par2", 3));
        for bad in [
            "parity-4.par2",
            "parity-3.vol0+8.par2.x",
            "parity-3.vol+8.par2",
            "parity-3.vol0+.par2",
            "parity-3.vol0+8/../x.par2",
            "parity-3.vol0-8.par2",
            "disc-1.iso",
            "../parity-3.par2",
            "parity-3.vol123456789+1.par2",
        ] {
            assert!(!is_par2_name(bad, 3), "{bad}");
        }
    }
}
