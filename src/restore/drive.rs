//! Asking for discs at one drive: the prompt (a terminal, or a test's
//! script) and the loop that waits until the disc asked for, of this set,
//! is in the drive. Nothing here reads files or writes the target.

use std::io::Write;

use crate::medium::Medium;
use crate::progress::Progress;

use super::plan::Plan;

/// Asks the person at the drive; the binary implements it on the terminal.
pub trait Prompt {
    /// Shows `question` and waits for a line; `None` at end of input.
    fn ask(&mut self, question: &str) -> Option<String>;
    /// Shows a line.
    fn tell(&mut self, line: &str);
}

/// Asks on stderr and reads answers from stdin.
pub struct TerminalPrompt;

impl Prompt for TerminalPrompt {
    fn ask(&mut self, question: &str) -> Option<String> {
        let mut err = crate::output::stderr();
        let _ = write!(err, "{question}");
        let _ = err.flush();
        let mut line = String::new();
        match std::io::stdin().read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line),
        }
    }

    fn tell(&mut self, line: &str) {
        crate::say!("{line}");
    }
}

/// Asks for `disc` at the drive until it is there; `Err` with why when the
/// person stops or input ends.
pub(super) fn ask_for_disc(
    plan: &Plan,
    disc: i64,
    prompt: &mut dyn Prompt,
    progress: &Progress,
) -> std::result::Result<Medium, String> {
    let Some(drive) = &plan.drive else {
        return Err("no drive".into());
    };
    let label = plan.set.disc_label(disc);
    loop {
        let question = format!("Insert {label} in the drive, then press Enter (q to stop): ");
        let answer = progress.suspend(|| prompt.ask(&question));
        let Some(answer) = answer else {
            return Err(format!(
                "no answer (end of input) when {label} was asked for"
            ));
        };
        if matches!(answer.trim(), "q" | "Q" | "quit") {
            return Err(format!("q answered when {label} was asked for"));
        }
        let line = match Medium::open_folder(drive) {
            Ok(m)
                if plan
                    .set
                    .identity
                    .as_ref()
                    .is_none_or(|id| m.identity.same_set(id)) =>
            {
                if m.disc == disc {
                    return Ok(m);
                }
                format!(
                    "The drive holds {}, not disc {disc}.",
                    plan.set.disc_label(m.disc)
                )
            }
            Ok(m) => format!(
                "The drive holds disc {} of another set, {}.",
                m.disc,
                m.identity.describe()
            ),
            Err(e) => format!("No dbackup disc found at {}: {e}", drive.display()),
        };
        progress.suspend(|| prompt.tell(&line));
    }
}
