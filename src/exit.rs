//! The exit-code contract shared by every dbackup binary, and the `main`
//! wrapper that maps a library outcome to it.
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success: everything asked for was done |
//! | 1    | a negative finding: some files were skipped (monitor), damage found (verify), nothing matched (find), data unrecoverable (lost) |
//! | 2    | error: bad arguments, missing or corrupt workdir or catalogue; nothing was written |
//! | 3    | out of space: the workdir's filesystem is full; everything staged so far is intact |
//! | 75   | busy: another run holds the workdir's lock (EX_TEMPFAIL) |
//! | 130  | interrupted |

use std::io::Write;

/// Everything asked for was done.
pub const OK: i32 = 0;
/// A negative finding: files skipped, damage found, nothing matched.
pub const FINDING: i32 = 1;
/// An error; nothing was written.
pub const ERROR: i32 = 2;
/// The workdir's filesystem is full.
pub const NO_SPACE: i32 = 3;
/// Another run holds the lock.
pub const BUSY: i32 = 75;
/// Interrupted by a signal.
pub const INTERRUPTED: i32 = 130;

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
        Some(e) if code == OK => {
            crate::output::say(format!(
                "{name}: error: could not write the results to standard output: {e}"
            ));
            ERROR
        }
        _ => code,
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
