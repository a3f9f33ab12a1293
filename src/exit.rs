//! The exit-code contract shared by every dbackup binary, and the `main`
//! wrapper that maps a library outcome to it. [`CONTRACT`] is the one
//! statement of it: the man pages' EXIT STATUS sections are generated from
//! it, and a test checks that this table and the README's say the same.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success: everything asked for was done |
//! | 1 | a negative finding: the run went to its end, and what it found is on stderr or in the report; stage: files skipped (unreadable, special, too big even in parts for discs this small, changed while copied), the disc-ready command failed, a version was recorded damaged, or a full parity group cannot be protected (a member's image is gone from `isos/`); mkiso: the disc-ready command failed (the image still counts), a version was recorded damaged (its staged copy rotted and no good copy was left; the rest is imaged), or a full parity group cannot be protected (a member's image is gone from `isos/`); find: nothing matched; verify: a file damaged, missing or unreadable, a disc unusable, or (--origin) originals silently corrupted or missing, or (--due) a copy is due for a check; restore: a file not restored (its disc missing, lost or unusable, damaged or unreadable, a refused name, a different file kept, stopped at the drive, its newest version recorded damaged), or nothing matched; lost: data unrecoverable, or files that could not be staged again; burn: the medium was burned but its read-back failed or does not match the image: the copy is not recorded |
//! | 2 | error: the run stopped (bad arguments, a missing or corrupt workdir or catalogue, a disc of another set, an I/O error, or results that could not be written to stdout for another reason than a closed pipe, such as a full disk under `> file`); what it finished before stays finished and checked, and nothing half-done carries a final name; stage: a refused init; mkiso: an image that failed its read-back (it keeps a temp name; the staged copies are kept), or a parity image that could not be built (no `par2`, par2 failed, it would not fit the medium); lost: with --rebuild, the disc could not be rebuilt (more lost than parity, a survivor given only mounted, damaged parity data, `--to` exists): nothing written; verify: no disc given could be used, or (--record) the discs are of another set than the workdir, or a check could not be recorded; restore: discs that cannot be read, a target that cannot be created, or the target's filesystem full (the files restored so far are whole); burn: nothing recorded (no verified image, no xorriso, no blank medium or too small a one, or the burn failed: then the medium may be spoiled) |
//! | 3 | stage, mkiso: the workdir's filesystem is full: the run stopped cleanly, and everything staged so far is intact |
//! | 75 | stage, mkiso, lost: another run holds the workdir's lock (EX_TEMPFAIL): nothing was done, and the next run catches up |
//! | 130 | restore, lost, burn: interrupted (Ctrl-C, SIGTERM, SIGHUP); restore: the files already written are whole and named, the one in hand is dropped, and the same command resumes; lost: with --rebuild: nothing written, its work folder removed; burn: xorriso was killed and waited for, nothing recorded; the medium may be spoiled |

use std::io::Write;

/// Everything asked for was done.
pub const OK: i32 = 0;
/// A negative finding: files skipped, damage found, nothing matched.
pub const FINDING: i32 = 1;
/// An error: the run stopped (what it finished before stays finished).
pub const ERROR: i32 = 2;
/// The workdir's filesystem is full.
pub const NO_SPACE: i32 = 3;
/// Another run holds the lock.
pub const BUSY: i32 = 75;
/// Interrupted by a signal.
pub const INTERRUPTED: i32 = 130;

/// One exit code: what it means for every tool that returns it, and what
/// it means besides for some of them.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    pub code: i32,
    /// The tools that return it (short names: `stage` for dbackup-stage);
    /// `None`: all of them.
    pub only: Option<&'static [&'static str]>,
    pub meaning: &'static str,
    /// (tool, what the code means there), where a tool says more.
    pub by_tool: &'static [(&'static str, &'static str)],
}

impl Status {
    /// Whether `tool` (a short name) returns this code.
    pub fn applies_to(&self, tool: &str) -> bool {
        self.only.is_none_or(|t| t.contains(&tool))
    }

    /// The meaning for `tool`, or for every tool (`None`), as one sentence
    /// or a few: the general meaning, then the tools' own.
    pub fn describe(&self, tool: Option<&str>) -> String {
        let mut out = match (tool, self.only) {
            (None, Some(tools)) => format!("{}: {}", tools.join(", "), self.meaning),
            _ => self.meaning.to_string(),
        };
        for (t, what) in self.by_tool {
            match tool {
                None => out.push_str(&format!("; {t}: {what}")),
                Some(x) if x == *t => out.push_str(&format!("; here: {what}")),
                Some(_) => {}
            }
        }
        out
    }
}

/// The contract, in order of code. The table at the head of this module
/// and the README's are this, rendered by [`Status::describe`].
pub const CONTRACT: &[Status] = &[
    Status {
        code: OK,
        only: None,
        meaning: "success: everything asked for was done",
        by_tool: &[],
    },
    Status {
        code: FINDING,
        only: None,
        meaning: "a negative finding: the run went to its end, and what it found is on stderr or in the report",
        by_tool: &[
            ("stage", "files skipped (unreadable, special, too big even in parts for discs this small, changed while copied), the disc-ready command failed, a version was recorded damaged, or a full parity group cannot be protected (a member's image is gone from `isos/`)"),
            ("mkiso", "the disc-ready command failed (the image still counts), a version was recorded damaged (its staged copy rotted and no good copy was left; the rest is imaged), or a full parity group cannot be protected (a member's image is gone from `isos/`)"),
            ("find", "nothing matched"),
            ("verify", "a file damaged, missing or unreadable, a disc unusable, or (--origin) originals silently corrupted or missing, or (--due) a copy is due for a check"),
            ("restore", "a file not restored (its disc missing, lost or unusable, damaged or unreadable, a refused name, a different file kept, stopped at the drive, its newest version recorded damaged), or nothing matched"),
            ("lost", "data unrecoverable, or files that could not be staged again"),
            ("burn", "the medium was burned but its read-back failed or does not match the image: the copy is not recorded"),
        ],
    },
    Status {
        code: ERROR,
        only: None,
        meaning: "error: the run stopped (bad arguments, a missing or corrupt workdir or catalogue, a disc of another set, an I/O error, or results that could not be written to stdout for another reason than a closed pipe, such as a full disk under `> file`); what it finished before stays finished and checked, and nothing half-done carries a final name",
        by_tool: &[
            ("stage", "a refused init"),
            ("mkiso", "an image that failed its read-back (it keeps a temp name; the staged copies are kept), or a parity image that could not be built (no `par2`, par2 failed, it would not fit the medium)"),
            ("lost", "with --rebuild, the disc could not be rebuilt (more lost than parity, a survivor given only mounted, damaged parity data, `--to` exists): nothing written"),
            ("verify", "no disc given could be used, or (--record) the discs are of another set than the workdir, or a check could not be recorded"),
            ("restore", "discs that cannot be read, a target that cannot be created, or the target's filesystem full (the files restored so far are whole)"),
            ("burn", "nothing recorded (no verified image, no xorriso, no blank medium or too small a one, or the burn failed: then the medium may be spoiled)"),
        ],
    },
    Status {
        code: NO_SPACE,
        only: Some(&["stage", "mkiso"]),
        meaning: "the workdir's filesystem is full: the run stopped cleanly, and everything staged so far is intact",
        by_tool: &[],
    },
    Status {
        code: BUSY,
        only: Some(&["stage", "mkiso", "lost"]),
        meaning: "another run holds the workdir's lock (EX_TEMPFAIL): nothing was done, and the next run catches up",
        by_tool: &[],
    },
    Status {
        code: INTERRUPTED,
        only: Some(&["restore", "lost", "burn"]),
        meaning: "interrupted (Ctrl-C, SIGTERM, SIGHUP)",
        by_tool: &[
            ("restore", "the files already written are whole and named, the one in hand is dropped, and the same command resumes"),
            ("lost", "with --rebuild: nothing written, its work folder removed"),
            ("burn", "xorriso was killed and waited for, nothing recorded; the medium may be spoiled"),
        ],
    },
];

/// Runs a binary's body, prints an error as `NAME: error: ...` on stderr and
/// exits with the code the outcome maps to. Printing never decides the
/// code: stdout and stderr are [`crate::output`] sinks that never fail, so
/// a closed pipe (`| head`, a mailer that died) leaves the work and its
/// exit code as they would have been. Results that could not be written
/// for another reason (a full disk under `> file`) turn a clean run into
/// an error, since what was asked for was not all delivered.
pub fn main_wrapper(name: &str, body: impl FnOnce() -> anyhow::Result<i32>) -> ! {
    crate::output::guard_standard_streams();
    let scenario = fail::FailScenario::setup();
    let code = match body() {
        Ok(code) => code,
        Err(err) => {
            let code = code_for(&err);
            let mut shown = err.to_string();
            let mut line = format!("{name}: error: {shown}");
            // Errors that already print their cause are not repeated.
            for cause in err.chain().skip(1) {
                let cause = cause.to_string();
                if !shown.contains(&cause) {
                    line.push_str(&format!(": {cause}"));
                    shown.push_str(&cause);
                }
            }
            crate::output::say(line);
            if let Some(hint) = hint_for(&err) {
                crate::output::say(format!("{name}: hint: {hint}"));
            }
            code
        }
    };
    scenario.teardown();
    let _ = crate::output::stdout().flush();
    let code = match crate::output::stdout_error() {
        Some(e) => {
            crate::output::say(format!(
                "{name}: error: could not write the results to standard output: {e}"
            ));
            // A clean run whose results were lost is an error; a finding
            // keeps its code, which says more.
            if code == OK {
                ERROR
            } else {
                code
            }
        }
        None => code,
    };
    std::process::exit(code)
}

fn code_for(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<crate::error::Error>() {
            return e.exit_code();
        }
    }
    ERROR
}

fn hint_for(err: &anyhow::Error) -> Option<String> {
    err.chain()
        .find_map(|c| c.downcast_ref::<crate::error::Error>())
        .and_then(|e| e.hint())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table at the head of this module is [`CONTRACT`].
    #[test]
    fn the_module_table_is_the_contract() {
        let source = include_str!("exit.rs");
        for s in CONTRACT {
            let row = format!("//! | {} | {} |", s.code, s.describe(None));
            assert!(source.contains(&row), "missing: {row}");
        }
        let rows = source.lines().filter(|l| l.starts_with("//! | ")).count();
        assert_eq!(rows, CONTRACT.len() + 1, "one row per code and a header");
    }

    #[test]
    fn every_tool_has_the_codes_it_returns() {
        for tool in [
            "stage", "mkiso", "find", "verify", "restore", "lost", "burn",
        ] {
            let codes: Vec<i32> = CONTRACT
                .iter()
                .filter(|s| s.applies_to(tool))
                .map(|s| s.code)
                .collect();
            assert!(
                codes.starts_with(&[OK, FINDING, ERROR]),
                "{tool}: {codes:?}"
            );
        }
        assert!(!CONTRACT[3].applies_to("find"));
        assert_eq!(
            CONTRACT[1].describe(Some("find")),
            format!("{}; here: nothing matched", CONTRACT[1].meaning)
        );
    }
}
