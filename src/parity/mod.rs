//! Parity discs: PAR2 recovery data for a group of K data discs, on M discs
//! of their own, so that any M discs of the group's K+M can be lost and
//! rebuilt byte-identical (see `docs/parity.md`, the format and its rules).
//!
//! This module holds what both sides share: the scheme (`K+M`), the block
//! layout, names, the ISO size a member is protected over, and the parity
//! disc's README. The PAR2 work itself is done by the stock `par2` tool
//! (par2cmdline, see [`par2`]): the discs promise that a stranger rebuilds a
//! lost disc with it, and running the very tool that promise names keeps
//! our parity and theirs one and the same. Building in the workdir is
//! `mkiso::parity`; rebuilding from discs is [`rebuild`].

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

pub mod par2;
pub mod rebuild;

/// Every member is at most this many PAR2 blocks: the block size is the
/// largest member's ISO size over this, and each parity disc holds this
/// many recovery blocks. Few large blocks keep PAR2's work (which grows
/// with data times recovery blocks) near a plain read of the images; 8
/// still lets a scratched survivor lose only the blocks it cannot read.
pub const BLOCKS_PER_MEMBER: u64 = 8;
/// The most data discs a group may have.
pub const MAX_K: u32 = 64;
/// The most parity discs a group may have.
pub const MAX_M: u32 = 8;
/// A disc sector, the unit block sizes are rounded to.
const SECTOR: u64 = 2048;

/// A parity scheme: groups of `k` data discs, each with `m` parity discs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Scheme {
    pub k: u32,
    pub m: u32,
}

impl Scheme {
    /// Parses `K+M` (`4+1`, `8+2`).
    pub fn parse(s: &str) -> Result<Scheme, String> {
        let bad = || {
            format!("parity scheme '{s}' is not K+M (data discs + parity discs per group, e.g. 4+1 or 8+2)")
        };
        let (k, m) = s.trim().split_once('+').ok_or_else(bad)?;
        let k: u32 = k.trim().parse().map_err(|_| bad())?;
        let m: u32 = m.trim().parse().map_err(|_| bad())?;
        if !(1..=MAX_K).contains(&k) {
            return Err(format!(
                "parity scheme '{s}': a group has 1 to {MAX_K} data discs"
            ));
        }
        if !(1..=MAX_M).contains(&m) {
            return Err(format!(
                "parity scheme '{s}': a group has 1 to {MAX_M} parity discs"
            ));
        }
        Ok(Scheme { k, m })
    }

    /// Parses a `parity` setting: `off` or `K+M`.
    pub fn parse_setting(s: &str) -> Result<Option<Scheme>, String> {
        if s.trim().eq_ignore_ascii_case("off") {
            Ok(None)
        } else {
            Scheme::parse(s).map(Some)
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.k, self.m)
    }
}

/// The PAR2 block size for members whose largest ISO size is `largest`:
/// every member is at most [`BLOCKS_PER_MEMBER`] blocks, each a whole
/// number of sectors (so a multiple of 4, as PAR2 requires).
pub fn block_size(largest: u64) -> u64 {
    let per = largest.div_ceil(BLOCKS_PER_MEMBER).max(1);
    per.div_ceil(SECTOR) * SECTOR
}

/// Recovery blocks for `m` parity discs.
pub fn recovery_blocks(m: u32) -> u64 {
    BLOCKS_PER_MEMBER * u64::from(m)
}

/// The image name of parity disc `j` of group `g`: `parity-3-1.iso`.
pub fn image_name(group: i64, j: i64) -> String {
    format!("parity-{group}-{j}.iso")
}

/// The volume id of parity disc `j` of group `g`: `DBACKUP_P0003_1`.
pub fn volume_id(group: i64, j: i64) -> String {
    format!("DBACKUP_P{group:04}_{j}")
}

/// The PAR2 index's name on a parity disc: `parity-3.par2`.
pub fn par2_index(group: i64) -> String {
    format!("parity-{group}.par2")
}

/// The name PAR2 knows data disc `n` by: `disc-7.iso`.
pub fn member_name(disc: i64) -> String {
    format!("disc-{disc}.iso")
}

/// The setting a parity disc's manifest carries: `G-J`.
pub const THIS_PARITY_DISC: &str = "this_parity_disc";

/// Parses a `this_parity_disc` value `G-J` (hostile: from a disc).
pub fn parse_this(value: &str) -> Option<(i64, i64)> {
    let (g, j) = value.split_once('-')?;
    let g: i64 = g.parse().ok()?;
    let j: i64 = j.parse().ok()?;
    (g >= 1 && (1..=i64::from(MAX_M)).contains(&j)).then_some((g, j))
}

/// The bytes an image is protected over: its ISO volume's size (the volume
/// space size of its primary volume descriptor, in 2048-byte blocks), which
/// leaves out dvdisaster data appended after it. Checked against the file:
/// never more than it holds.
pub fn iso_size(path: &Path) -> std::io::Result<u64> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut pvd = [0u8; 2048];
    f.seek(SeekFrom::Start(16 * SECTOR))?;
    f.read_exact(&mut pvd)?;
    let invalid = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {why}", path.display()),
        )
    };
    if pvd[0] != 1 || &pvd[1..6] != b"CD001" {
        return Err(invalid("no ISO 9660 primary volume descriptor"));
    }
    let blocks = u32::from_le_bytes([pvd[80], pvd[81], pvd[82], pvd[83]]);
    let size = u64::from(blocks) * SECTOR;
    if size == 0 || size > len {
        return Err(invalid(&format!(
            "its volume claims {size} bytes, the file holds {len}"
        )));
    }
    Ok(size)
}

/// One data disc a parity disc protects, as its README lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    pub disc: i64,
    /// Protected bytes (the ISO size), a whole number of sectors.
    pub size: u64,
    pub md5: String,
}

/// What a parity disc's README says of it.
pub struct ParityInfo<'a> {
    pub set_name: &'a str,
    pub set_uuid: &'a str,
    pub group: i64,
    pub j: i64,
    pub m: i64,
    pub members: &'a [Member],
    pub block_size: u64,
    pub recovery_file: &'a str,
    pub made: f64,
}

/// `README.TXT` of a parity disc: what it protects and how a stranger
/// rebuilds a lost disc with `dd` and `par2`.
pub fn readme(info: &ParityInfo<'_>) -> String {
    let made = crate::output::time_in(info.made, &jiff::tz::TimeZone::UTC);
    let g = info.group;
    let index = par2_index(g);
    let mut list = String::new();
    for m in info.members {
        list.push_str(&format!(
            "  disc {:<5} {:>10} sectors ({} bytes)  MD5 {}\n",
            m.disc,
            m.size / SECTOR,
            m.size,
            m.md5
        ));
    }
    let first = info.members.first().map(|m| m.disc).unwrap_or(0);
    let sectors = info.members.first().map(|m| m.size / SECTOR).unwrap_or(0);
    format!(
        "\
THIS IS A PARITY DISC MADE BY DBACKUP
=====================================

Set:          {set} (UUID {uuid})
Parity disc:  {j} of {m} of group {g} (made {made} UTC)

It holds no files of its own: it holds PAR2 recovery data for the data
discs of group {g}. With this disc, up to {m} discs of the group (data or
parity discs) can be lost, cracked or unreadable, and every lost data disc
can be rebuilt, byte for byte, with the stock `par2` tool (par2cmdline;
Debian/Ubuntu: apt-get install par2).

It protects these data discs (sectors of 2048 bytes, the MD5 of exactly
those bytes):

{list}
Rebuilding a lost data disc
---------------------------
1. Make an empty folder and go there:  mkdir rebuild && cd rebuild
2. Read every surviving data disc of the list into disc-N.iso (N its
   number), exactly the sectors listed, e.g. for disc {first}:
     dd if=/dev/sr0 of=disc-{first}.iso bs=2048 count={sectors}
   (readom dev=/dev/sr0 f=disc-{first}.iso works too; a longer read is
   fine, par2 finds the data in it.)
3. Copy this disc's .par2 files into the folder, and those of the group's
   other parity discs you still have:
     cp /media/cdrom/*.par2 .
4. Run:  par2 repair {index}
   par2 writes each lost disc-N.iso again. Check it:  md5sum disc-N.iso
   must print the MD5 listed above. Burn it as any disc image.

dbackup does the same in one step: dbackup-lost N --rebuild --disc ...
--to disc-N.iso, and dbackup-restore rebuilds a lost disc by itself when
given the survivors' images and this disc.

A disc written with dvdisaster error-correction data is protected over its
ISO part (the sectors listed); the rebuilt image has no dvdisaster data:
add it again with dvdisaster if you want it.

What is on this disc
--------------------
  README.TXT     this text
  MD5SUMS        the MD5 of every other file:  md5sum -c MD5SUMS
  manifest.db    the set's catalogue as of this disc's making (SQLite)
  {index:<14} the PAR2 index of group {g}
  {rec:<14} recovery blocks (PAR2 block size {bs} bytes)
",
        set = info.set_name,
        uuid = info.set_uuid,
        j = info.j,
        m = info.m,
        rec = info.recovery_file,
        bs = info.block_size,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_parse_and_refuse_what_cannot_be_built() {
        assert_eq!(Scheme::parse("4+1"), Ok(Scheme { k: 4, m: 1 }));
        assert_eq!(
            Scheme::parse(" 8+2 ").map(|s| s.to_string()),
            Ok("8+2".into())
        );
        for bad in [
            "", "4", "4+", "+1", "0+1", "4+0", "65+1", "4+9", "4+1+1", "-1+1", "a+b",
        ] {
            assert!(Scheme::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(Scheme::parse_setting("off"), Ok(None));
    }

    /// Whatever the sizes, every member fits in BLOCKS_PER_MEMBER blocks,
    /// so M parity discs' blocks cover any M members lost.
    #[test]
    fn every_member_is_at_most_eight_sector_aligned_blocks() {
        for largest in [
            1u64,
            2047,
            2048,
            2049,
            16383,
            16384,
            16385,
            1 << 30,
            25_025_314_816,
        ] {
            let b = block_size(largest);
            assert_eq!(b % SECTOR, 0);
            assert!(largest.div_ceil(b) <= BLOCKS_PER_MEMBER, "{largest}");
            assert!(b < largest.div_ceil(BLOCKS_PER_MEMBER) + SECTOR);
        }
    }

    #[test]
    fn a_parity_disc_names_itself_apart_from_data_discs() {
        assert_eq!(image_name(3, 1), "parity-3-1.iso");
        assert_eq!(volume_id(3, 1), "DBACKUP_P0003_1");
        assert_ne!(volume_id(1, 1), crate::disc::volume_id(1));
        assert_eq!(parse_this("3-1"), Some((3, 1)));
        for bad in ["", "3", "0-1", "3-0", "3-9", "x-1", "3-1-1"] {
            assert_eq!(parse_this(bad), None, "{bad:?}");
        }
    }
}
