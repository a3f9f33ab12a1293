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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_original() {
        assert_eq!(file_path(1), PathBuf::from("files/0/1"));
        assert_eq!(file_path(255), PathBuf::from("files/0/255"));
        assert_eq!(file_path(256), PathBuf::from("files/1/256"));
        assert_eq!(file_path(1234), PathBuf::from("files/4/1234"));
    }
}
