//! dbackup: incremental backups of a growing folder onto write-once optical
//! discs, and recovery from a pile of those discs.
//!
//! The binaries in `src/bin` are thin: they parse arguments (see [`cli`]), call
//! one library function that returns a report, render it and map the outcome to
//! an exit code (see [`exit`]).

/// Prints a line on stderr like `eprintln!`, but never fails and never
/// panics: a closed stderr must not stop the work (see [`output`]).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::say(format_args!($($arg)*))
    };
}

pub mod adopt;
pub mod burn;
pub mod catalog;
pub mod cli;
pub mod copies;
pub mod disc;
pub mod error;
pub mod exit;
pub mod fault;
pub mod find;
pub mod fsutil;
pub mod history;
pub mod interrupt;
pub mod iso;
pub mod label;
pub mod lost;
pub mod medium;
pub mod mkiso;
pub mod names;
pub mod output;
pub mod owners;
pub mod parity;
pub mod progress;
pub mod report;
pub mod restore;
pub mod scan;
pub mod stage;
pub mod status;
pub mod temp;
pub mod units;
pub mod verify;
pub mod workdir;
