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
/// exits with the code the outcome maps to. A closed stdout (e.g. `| head`)
/// ends the program quietly.
pub fn main_wrapper(name: &str, body: impl FnOnce() -> anyhow::Result<i32>) -> ! {
    let scenario = fail::FailScenario::setup();
    let code = match body() {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                OK
            } else {
                let code = code_for(&err);
                let mut stderr = std::io::stderr().lock();
                let mut shown = err.to_string();
                let _ = write!(stderr, "{name}: error: {shown}");
                // Errors that already print their cause are not repeated.
                for cause in err.chain().skip(1) {
                    let cause = cause.to_string();
                    if !shown.contains(&cause) {
                        let _ = write!(stderr, ": {cause}");
                        shown.push_str(&cause);
                    }
                }
                let _ = writeln!(stderr);
                if let Some(hint) = hint_for(&err) {
                    let _ = writeln!(stderr, "{name}: hint: {hint}");
                }
                code
            }
        }
    };
    scenario.teardown();
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
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

/// The exit code of a run whose report was just printed: the report's own
/// `code`, whatever became of the printing. A reader that closed the pipe
/// early (`| head`) does not change what the run found; only an output that
/// failed for another reason (a full disk, say) on a run that found nothing
/// wrong is an error, so a script is not told all is well when it got no
/// answer.
pub fn after_printing(code: i32, printed: std::io::Result<()>) -> anyhow::Result<i32> {
    match printed {
        Err(e) if code == OK && e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_keeps_the_reports_code() {
        let pipe = || Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        let full = || Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
        for code in [OK, FINDING] {
            assert_eq!(after_printing(code, Ok(())).unwrap(), code);
            assert_eq!(after_printing(code, pipe()).unwrap(), code);
        }
        assert_eq!(after_printing(FINDING, full()).unwrap(), FINDING);
        assert!(after_printing(OK, full()).is_err());
    }
}
