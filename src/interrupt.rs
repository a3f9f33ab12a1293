//! Ctrl-C and termination requests (SIGINT, SIGTERM, SIGHUP) for the tools
//! that write outside the workdir: a flag that long loops check, so that a
//! restore stops between files, finishes the files already written and
//! removes its temp file instead of leaving it in the target. A second
//! request ends the process at once (exit 130).
//!
//! Staging needs none of this: every step of its protocol is safe to cut
//! at any instant, and the next run repairs.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Catches interrupt and termination signals from now on. `tool` names the
/// program in the message printed at the first request.
pub fn install(tool: &'static str) {
    // The handler runs on its own thread, so it may print.
    let _ = ctrlc::set_handler(move || {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            std::process::exit(crate::exit::INTERRUPTED);
        }
        crate::say!(
            "{tool}: interrupted: stopping; the files already written are kept, the file in hand is dropped (again to stop at once)"
        );
    });
}

/// Whether an interrupt was requested.
#[inline]
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}
