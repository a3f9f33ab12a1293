//! The layout of a disc, shared by the staging area and the images: where
//! the file with a given id lives (`files/<id div 256>/<id>`), and the names
//! of the disc's fixed files. No other module does this path arithmetic.

use std::path::PathBuf;

/// The catalogue snapshot at the root of every disc.
pub const MANIFEST: &str = "manifest.db";
/// The folder holding the backed-up files.
pub const FILES_DIR: &str = "files";
/// Files per folder under `files/`.
pub const FILES_PER_DIR: i64 = 256;

/// The folder (relative to the disc root) holding file `id`: `files/<id div 256>`.
pub fn file_dir(id: i64) -> PathBuf {
    PathBuf::from(FILES_DIR).join((id.div_euclid(FILES_PER_DIR)).to_string())
}

/// The path (relative to the disc root) of file `id`: `files/<id div 256>/<id>`.
pub fn file_path(id: i64) -> PathBuf {
    file_dir(id).join(id.to_string())
}

/// The path (relative to the disc root) of part `part` (1, 2, ...) of split
/// file `id`: `files/<id div 256>/<id>.<part>`, beside where the whole file
/// would be, and never a name a whole file takes.
pub fn part_path(id: i64, part: u32) -> PathBuf {
    file_dir(id).join(format!("{id}.{part}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_sit_beside_where_the_whole_file_would() {
        assert_eq!(part_path(1234, 1), PathBuf::from("files/4/1234.1"));
        assert_eq!(part_path(255, 20), PathBuf::from("files/0/255.20"));
    }

    #[test]
    fn layout_matches_the_original() {
        assert_eq!(file_path(1), PathBuf::from("files/0/1"));
        assert_eq!(file_path(255), PathBuf::from("files/0/255"));
        assert_eq!(file_path(256), PathBuf::from("files/1/256"));
        assert_eq!(file_path(1234), PathBuf::from("files/4/1234"));
    }
}

/// Sector size of an image: every file takes whole sectors.
pub const SECTOR: u64 = 2048;
/// What one file adds besides its sectors, estimated: its catalogue row and
/// index entries, its directory records (Rock Ridge and Joliet), its line in
/// MD5SUMS.
pub const PER_FILE_OVERHEAD: u64 = 512;
/// What every image holds besides its files: system area, descriptors, path
/// tables, root folders, README.TXT (128 KiB), and the zero padding after
/// the last file ([`crate::iso::PADDING_BLOCKS`], 300 KiB).
pub const FIXED_OVERHEAD: u64 = (128 << 10) + crate::iso::PADDING_BLOCKS * SECTOR;

/// What a file of `size` bytes adds to a disc's image.
pub fn file_cost(size: u64) -> u64 {
    size.div_ceil(SECTOR) * SECTOR + PER_FILE_OVERHEAD
}

/// What a disc's image takes, estimated from what is staged on it and the
/// catalogue's size: kept at or under the disc size, so an image always fits.
pub fn usage(staged: &crate::catalog::DiscUsage, catalog_bytes: u64) -> u64 {
    staged.sector_bytes + staged.files * PER_FILE_OVERHEAD + FIXED_OVERHEAD + catalog_bytes
}

/// The plain-text guide at the root of every disc.
pub const README: &str = "README.TXT";
/// The recovery script at the root of every disc (Python 3.6+, standard
/// library only): recovers a disc or a whole set, names and mtimes included.
pub const RECOVER: &str = "RECOVER.PY";
/// The script itself, the same on every disc.
pub const RECOVER_SCRIPT: &str = include_str!("disc/RECOVER.PY");
/// The disc's files in `md5sum -c` format, the fixed files included.
pub const MD5SUMS: &str = "MD5SUMS";
/// The fixed files every image holds at its root.
pub const FIXED_FILES: [&str; 4] = [MANIFEST, README, RECOVER, MD5SUMS];

/// What the README on a disc says about its set and itself.
#[derive(Debug, Clone)]
pub struct DiscInfo<'a> {
    pub set_name: &'a str,
    pub set_uuid: &'a str,
    pub disc: i64,
    /// When the disc was closed (Unix seconds).
    pub closed: f64,
    /// Whole files on the disc.
    pub files: u64,
    /// Parts of split files on the disc.
    pub parts: u64,
    pub bytes: u64,
}

/// The volume id of disc `n`: `DBACKUP_0007`.
pub fn volume_id(disc: i64) -> String {
    format!("DBACKUP_{disc:04}")
}

/// The fixed text files of a disc, as (name, content): `README.TXT` and
/// `RECOVER.PY`. With the catalogue and `MD5SUMS` they are every fixed file.
pub fn texts(info: &DiscInfo<'_>) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (README, readme(info).into_bytes()),
        (RECOVER, RECOVER_SCRIPT.as_bytes().to_vec()),
    ]
}

/// `MD5SUMS`, as `md5sum -c` reads it: the catalogue (`manifest_md5`), the
/// fixed texts, then one `md5  files/<d>/<id>` line per file. Never empty,
/// so `md5sum -c MD5SUMS` succeeds on a disc that carries only deletions;
/// it cannot list itself.
pub fn md5sums<'a>(
    manifest_md5: &str,
    texts: &[(&str, Vec<u8>)],
    files: impl IntoIterator<Item = (PathBuf, &'a str)>,
) -> String {
    use md5::{Digest, Md5};
    let mut out = format!("{manifest_md5}  {MANIFEST}\n");
    for (name, data) in texts {
        let digest = Md5::digest(data);
        for b in digest {
            out.push_str(&format!("{b:02x}"));
        }
        out.push_str("  ");
        out.push_str(name);
        out.push('\n');
    }
    for (rel, md5) in files {
        out.push_str(md5);
        out.push_str("  ");
        out.push_str(&rel.to_string_lossy());
        out.push('\n');
    }
    out
}

/// `README.TXT`: what this disc is and how to recover from it by hand, with
/// nothing but `sqlite3` (or Python's sqlite3 module), `md5sum` and a file
/// manager.
pub fn readme(info: &DiscInfo<'_>) -> String {
    let closed = crate::output::time_in(info.closed, &jiff::tz::TimeZone::UTC);
    let holds = match info.parts {
        0 => format!("{} backed-up files, {} bytes", info.files, info.bytes),
        1 => format!(
            "{} backed-up files and 1 part of a split file, {} bytes",
            info.files, info.bytes
        ),
        parts => format!(
            "{} backed-up files and {parts} parts of split files, {} bytes",
            info.files, info.bytes
        ),
    };
    format!(
        "\
THIS IS A BACKUP DISC MADE BY DBACKUP
=====================================

Set name:   {name}
Set UUID:   {uuid}
Disc:       {disc}
Closed:     {closed} (UTC)
Holds:      {holds}

dbackup keeps a folder (photos, music, documents) backed up onto write-once
discs. Each disc holds the files that were new or changed while it was
open, and a complete catalogue of the whole set up to that day. You do not
need dbackup to get your files back: this text tells you how.

WHAT IS ON THIS DISC
--------------------
  manifest.db   The catalogue: a SQLite 3 database. It lists every backed-up
                version of every file of the set, on this disc and on all
                earlier discs.
  files/        The backed-up files, renamed to numbers: the file with id N
                is files/<N div 256>/<N> (integer division; no extension).
                Id 1 is files/0/1, id 1234 is files/4/1234. A file larger
                than a disc is split: part K of id N is files/<N div 256>/<N>.K
                (see FILES LARGER THAN A DISC).
  RECOVER.PY    A script that recovers this disc, or the whole set, with
                names and modification times (needs only Python 3).
  MD5SUMS       The MD5 checksum of every file on this disc but itself.
  README.TXT    This text.

RECOVERING EVERYTHING
---------------------
With Python 3 (3.6 or later; Linux and macOS have it), on a Unix-like
system (not Windows: there, follow RECOVERING A FILE BY HAND), from a
terminal:

  python3 /media/cdrom/RECOVER.PY --to ~/recovered

recovers the latest version of every file that this disc holds, under its
original name and with its modification time, into ~/recovered, and lists
the files it could not get (those on other discs). For a whole set, copy
each disc into a folder of its own (an image file is extracted with
`mkdir -p discs/3 && bsdtar -xf disc-3.iso -C discs/3`) and give them all,
or a folder holding them:

  python3 /media/cdrom/RECOVER.PY --to ~/recovered discs/1 discs/2 ...
  python3 /media/cdrom/RECOVER.PY --to ~/recovered discs

The newest catalogue among them is used. Every file is checked against its
MD5 before it gets its name (a file split into parts is joined from the
discs of all its parts, each part and the whole checked); files recorded as
deleted are left out; files already in the target are kept; running it
again with more discs fills in the rest. Exit status 0 means everything was
recovered. From newer discs (see FOLDERS, LINKS, MODES AND EXACT TIMES) it
also restores folders (empty ones too), symbolic and hard links, modes,
exact modification times and, run as root, owners; --no-mode and
--no-owner leave modes and owners to the defaults.

THE CATALOGUE (manifest.db)
---------------------------
Table files, one row per backed-up version of a file:
  id        number of the copy: its name under files/
  filename  the original path, relative to the backed-up folder, starting
            with '/', e.g. /2012/holiday/IMG_0001.jpg. A name that is not
            valid UTF-8 is stored as a BLOB of its exact bytes.
  timestamp when the copy was made (Unix time: seconds since 1970-01-01 UTC)
  md5       MD5 checksum of the content (lowercase hex)
  size      size in bytes
  mtime     the file's modification time (Unix time; may have a fraction)
  disc_id   the number of the disc that holds the copy; empty (NULL) for
            a file split into parts on several discs (table parts says where)
  desc      why the copy was made (New file, Size changed, ...)
  copied    1 for a finished copy. Rows with copied=0 are NOT backups: ignore
            them.
Table discs: id, started, completed (Unix times), available (0 = marked lost).
Table deletions: filename, deleted (Unix time the file was first seen
missing), file_id (its latest version then).
Table damaged (if present): file ids whose copy was damaged before the disc
was made, so no disc holds them.
Table settings: key/value pairs, among them the set's name and uuid.
Table splits (if present): file_id, state, why. One row per file split into
  parts. Only state 'complete' is a backup. 'staging': its later parts were
  still to come when this disc was made (a later disc completes it);
  'abandoned': the file changed before its last part was written (why says
  so). A version whose state is not 'complete' is NO BACKUP, even with parts
  on discs.
Table parts (if present): file_id, part (1, 2, ...), disc_id (the disc that
  holds the part), offset and size (which bytes of the file it holds), md5
  (of the part), copied (1 for a finished part).
Table attrs (if present): one row per version of a file, file_id its id:
  mode (permission bits as a number: printf('%o', mode) shows 644, 755;
  with setuid 4000, setgid 2000, sticky 1000), uid and gid (owner and group
  numbers), owner and grp (their names; empty when they had none),
  mtime_sec and mtime_nsec (the exact modification time: Unix seconds, and
  nanoseconds 0 to 999999999 to add to them). A version without a row has
  only the mtime of table files.
Table entries (if present): what is not a file's content, one row per
  version of a name: id, filename (as in files), kind, target, timestamp
  (when the row was recorded), deleted (empty while the name is as the row
  says; else when it was seen gone or changed), and mode, uid, gid, owner,
  grp, mtime_sec, mtime_nsec as in attrs. kind is one of:
    dir       a folder (every folder, empty or not)
    symlink   a symbolic link; target is its target, as bytes (a BLOB)
    hardlink  another name of a file; target is the filename (as in files)
              of its first name, under which its content is backed up
  The row of a name now is its row with the highest timestamp, if its
  deleted is empty. When table files also has the name, not deleted, the
  more recent of the two (timestamp) says what the name is.

RECOVERING A FILE BY HAND
-------------------------
1. Find the file in the catalogue of the newest disc you have (the newest
   catalogue knows every disc). With the sqlite3 command-line tool, reading
   the disc without writing to it:

     sqlite3 'file:/media/cdrom/manifest.db?immutable=1' \\
       \"SELECT id, disc_id, md5, size, mtime, filename FROM files
          WHERE CAST(filename AS TEXT) LIKE '%IMG_0001%' AND copied=1
          ORDER BY id\"

   Each row is one version; the last (highest id) is the newest. A row
   with an empty disc_id is a file split into parts: see FILES LARGER THAN
   A DISC. Write CAST(filename AS TEXT) LIKE, not filename LIKE: names that
   are not UTF-8 are BLOBs, which a plain LIKE never matches in many builds
   of sqlite3. hex(filename) shows a name's exact bytes.
   Without sqlite3, Python's built-in module does the same:

     python3 -c \"import sqlite3; c=sqlite3.connect('file:/media/cdrom/manifest.db?immutable=1', uri=True); c.text_factory=bytes; print(c.execute(\\\"SELECT id, disc_id, md5, mtime, filename FROM files WHERE CAST(filename AS TEXT) LIKE '%IMG_0001%' AND copied=1\\\").fetchall())\"

2. Say the row reads id 1234 on disc 5. Insert disc 5 (its label and this
   README say its number), and copy files/4/1234 (1234 div 256 = 4) to where
   you want it, giving it back its name:

     cp /media/cdrom/files/4/1234 ~/IMG_0001.jpg

3. Check it: `md5sum ~/IMG_0001.jpg` must print the md5 from the catalogue.

4. Give it back its modification time, the mtime column (say 1341234567.25):

     touch -d @1341234567.25 ~/IMG_0001.jpg

   Newer discs also have it to the nanosecond, and the file's mode: see
   FOLDERS, LINKS, MODES AND EXACT TIMES.

FILES LARGER THAN A DISC
------------------------
A file too large for one disc is split into parts on consecutive discs:
part 1 on one disc, part 2 on the next, and so on. Each part is a plain file
(part K of id N is files/<N div 256>/<N>.K), listed in MD5SUMS. Joined in
part order with cat, the parts are the file. RECOVER.PY does this when it is
given all the discs of the parts.

By hand: use the catalogue of the disc holding the last part, or of any
later disc (an earlier disc's catalogue shows the file as 'staging', and
the query below finds nothing there). List the parts, in order:

     sqlite3 -header 'file:/media/cdrom/manifest.db?immutable=1' \\
       \"SELECT f.id, p.part, p.disc_id,
          'files/' || (f.id / 256) || '/' || f.id || '.' || p.part AS path,
          p.size, p.md5 AS part_md5, f.md5 AS whole_md5, f.mtime
        FROM files f JOIN splits s ON s.file_id = f.id
          JOIN parts p ON p.file_id = f.id
        WHERE s.state = 'complete' AND f.copied = 1 AND p.copied = 1
          AND CAST(f.filename AS TEXT) LIKE '%holiday.mp4%'
        ORDER BY f.id, p.part\"

Each row is one part; rows with the same id are one version, the highest id
the newest. Say id 1234 has 3 parts, on discs 3, 4 and 5. Insert each disc
in turn, copy its part and check it:

     mkdir -p ~/parts
     cp /media/cdrom/files/4/1234.1 ~/parts/   # part 1, from disc 3
     md5sum ~/parts/1234.1                     # must print part_md5 of part 1

and the same for files/4/1234.2 from disc 4 and files/4/1234.3 from disc 5.

Then join them in part order (1, 2, 3, ... 10, 11: not `cat 1234.*`, which
puts 1234.10 before 1234.2), check the whole and give back its mtime:

     cat ~/parts/1234.1 ~/parts/1234.2 ~/parts/1234.3 > ~/holiday.mp4
     md5sum ~/holiday.mp4                      # must print whole_md5
     touch -d @1341234567.25 ~/holiday.mp4     # the mtime column

With many parts: for k in $(seq 1 20); do cat ~/parts/1234.$k; done > FILE
On Windows: copy /b 1234.1+1234.2+1234.3 FILE, and certutil -hashfile FILE MD5.

FOLDERS, LINKS, MODES AND EXACT TIMES
-------------------------------------
Discs whose catalogue has the tables attrs and entries (see THE CATALOGUE)
know more than the files: RECOVER.PY restores it all. By hand, with the
sqlite3 tool, each query below lists the rows that hold their name now.

The symbolic links and their targets (hex(target) gives the exact bytes):

     sqlite3 'file:/media/cdrom/manifest.db?immutable=1' \\
       \"SELECT filename, CAST(target AS TEXT) FROM entries e
        WHERE kind = 'symlink' AND deleted IS NULL
          AND timestamp = (SELECT max(timestamp) FROM entries
                           WHERE filename = e.filename)\"

   For a row /photos/latest|2012/holiday:
     ln -s '2012/holiday' ~/recovered/photos/latest

The empty folders (mkdir -p ~/recovered/NAME for each; the other folders
come back with the files in them):

     sqlite3 'file:/media/cdrom/manifest.db?immutable=1' \\
       \"SELECT filename FROM entries e
        WHERE kind = 'dir' AND deleted IS NULL
          AND timestamp = (SELECT max(timestamp) FROM entries
                           WHERE filename = e.filename)
          AND NOT EXISTS (SELECT 1 FROM entries x WHERE x.deleted IS NULL
            AND substr(hex(x.filename), 1, length(hex(e.filename)) + 2)
                = hex(e.filename) || '2F')
          AND NOT EXISTS (SELECT 1 FROM files f WHERE f.copied = 1
            AND substr(hex(f.filename), 1, length(hex(e.filename)) + 2)
                = hex(e.filename) || '2F'
            AND NOT EXISTS (SELECT 1 FROM deletions d
              WHERE d.filename = f.filename AND d.file_id >= f.id))\"

The hard links, each with the name of the file it is another name of:

     sqlite3 'file:/media/cdrom/manifest.db?immutable=1' \\
       \"SELECT filename, CAST(target AS TEXT) FROM entries e
        WHERE kind = 'hardlink' AND deleted IS NULL
          AND timestamp = (SELECT max(timestamp) FROM entries
                           WHERE filename = e.filename)\"

   Recover the file of the target first, then, for a row /b.jpg|/a.jpg:
     ln ~/recovered/a.jpg ~/recovered/b.jpg     # or cp, on another drive

A file's exact modification time and its mode (the last row is the newest
version, as in RECOVERING A FILE BY HAND):

     sqlite3 'file:/media/cdrom/manifest.db?immutable=1' \\
       \"SELECT f.id, printf('%o', a.mode) AS mode,
          a.mtime_sec || '.' || printf('%09d', a.mtime_nsec) AS mtime,
          a.owner, a.grp, f.filename
        FROM files f JOIN attrs a ON a.file_id = f.id
        WHERE CAST(f.filename AS TEXT) LIKE '%IMG_0001%' AND f.copied = 1
        ORDER BY f.id\"

   For a row 1234|644|1341234567.123456789|ann|ann|/2012/IMG_0001.jpg:
     chown ann:ann ~/IMG_0001.jpg     # as root, if you want; first,
     chmod 644 ~/IMG_0001.jpg         # as chown clears setuid
     touch -d @1341234567.123456789 ~/IMG_0001.jpg
   (Before 1970 mtime_sec is negative and the nanoseconds still count
   forward: -5 and 250000000 is @-4.75.) A folder's are in entries: set
   them last, after what is inside it, since adding a file changes them.

CHECKING THIS DISC
------------------
From the root of this disc:  md5sum -c MD5SUMS
Every line must end in OK.

The set UUID above is also in the catalogue (table settings, key uuid) and in
the disc's volume set id; discs of one set share it.
",
        name = info.set_name,
        uuid = info.set_uuid,
        disc = info.disc,
        closed = closed,
        holds = holds,
    )
}

#[cfg(test)]
mod md5sums_tests {
    use super::*;

    #[test]
    fn md5sums_lists_the_fixed_files_and_is_never_empty() {
        let texts = vec![(README, b"abc".to_vec()), (RECOVER, Vec::new())];
        let m = md5sums("0123456789abcdef0123456789abcdef", &texts, []);
        assert_eq!(
            m,
            "0123456789abcdef0123456789abcdef  manifest.db\n\
             900150983cd24fb0d6963f7d28e17f72  README.TXT\n\
             d41d8cd98f00b204e9800998ecf8427e  RECOVER.PY\n"
        );
        let m = md5sums("x", &texts, [(file_path(1234), "y")]);
        assert!(m.ends_with("\ny  files/4/1234\n"), "{m}");
        assert!(!m.contains(MD5SUMS), "MD5SUMS cannot list itself");
    }

    #[test]
    fn readme_counts_parts_apart_from_whole_files() {
        let info = |files, parts| DiscInfo {
            set_name: "s",
            set_uuid: "u",
            disc: 3,
            closed: 0.0,
            files,
            parts,
            bytes: 9,
        };
        let holds = |files, parts| {
            let r = readme(&info(files, parts));
            r.lines()
                .find(|l| l.starts_with("Holds:"))
                .unwrap()
                .to_string()
        };
        assert_eq!(holds(5, 0), "Holds:      5 backed-up files, 9 bytes");
        assert_eq!(
            holds(0, 1),
            "Holds:      0 backed-up files and 1 part of a split file, 9 bytes"
        );
        assert_eq!(
            holds(2, 4),
            "Holds:      2 backed-up files and 4 parts of split files, 9 bytes"
        );
    }
}
