//! Typed errors of the capture side, each carrying the path it concerns, and
//! the exit code each maps to. Binaries add context with `anyhow` at the edge.

use std::path::PathBuf;

use crate::exit;

/// Result with the library's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named path.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed on the catalogue.
    #[error("catalogue {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The catalogue exists but is not one we can use.
    #[error("catalogue {} is unusable: {why}", path.display())]
    Corrupt { path: PathBuf, why: String },
    /// The folder is not a dbackup workdir.
    #[error("{} is not a dbackup workdir (no manifest.db)", .0.display())]
    NotWorkdir(PathBuf),
    /// A request that cannot be carried out as asked (bad argument, refused init).
    #[error("{0}")]
    Invalid(String),
    /// Another run holds the workdir's lock.
    #[error("another dbackup run holds the lock on {}; try again later", .0.display())]
    Busy(PathBuf),
    /// The workdir's filesystem has no room for the next file.
    #[error("not enough free space on the filesystem of {}: {needed} bytes needed, {available} available", path.display())]
    NoSpace {
        path: PathBuf,
        needed: u64,
        available: u64,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The exit code of the shared contract this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Busy(_) => exit::BUSY,
            Error::NoSpace { .. } => exit::NO_SPACE,
            Error::Io { source, .. } if crate::fsutil::is_no_space(source) => exit::NO_SPACE,
            _ => exit::ERROR,
        }
    }

    /// What the user could do next, when there is something useful to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::NotWorkdir(_) => Some(
                "create one with `dbackup-stage -w DIR init WATCHED`, or point -w/DBACKUP_WORKDIR at an existing one".into(),
            ),
            Error::NoSpace { .. } => Some(
                "free some space (e.g. burn and verify waiting disc images) and run again; nothing staged was lost".into(),
            ),
            Error::Io { source, .. } if crate::fsutil::is_no_space(source) => Some(
                "free some space (e.g. burn and verify waiting disc images) and run again; nothing staged was lost".into(),
            ),
            Error::Corrupt { .. } => Some(
                "the newest disc holds a copy of the catalogue (manifest.db) as of when it was closed".into(),
            ),
            _ => None,
        }
    }
}
