//! Ctrl-C (and SIGTERM, SIGHUP: a batch scheduler's stop): the first one asks the command
//! to stop after the work in flight and save what is done; the second quits at once.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Once};

/// Set by the first Ctrl-C; shared with the runs it stops.
static CANCEL: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// The flag the first Ctrl-C sets, for `RunOptions::cancel`.
pub fn token() -> Arc<AtomicBool> {
    CANCEL.clone()
}

pub fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            // Not eprintln: a closed stderr must not panic the handler.
            let mut err = std::io::stderr();
            if CANCEL.swap(true, Ordering::SeqCst) {
                let _ = writeln!(err, "\ninterrupted twice: quitting now");
                // Exiting skips the output directories' clean-up; an empty one a run made
                // would stay behind.
                crate::io::output::remove_made_if_empty();
                std::process::exit(130);
            }
            let _ = writeln!(
                err,
                "\ninterrupted: stopping after the work in flight (Ctrl-C again quits at \
                 once)"
            );
        });
    });
}

pub fn requested() -> bool {
    CANCEL.load(Ordering::SeqCst)
}
