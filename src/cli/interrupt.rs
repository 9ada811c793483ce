//! Ctrl-C: the first one asks the command to stop after the work in flight and save what
//! is done; the second quits at once.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first Ctrl-C.
pub static CANCEL: AtomicBool = AtomicBool::new(false);

pub fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if CANCEL.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted twice: quitting now");
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupted: finishing the work in flight and saving what is done \
                 (Ctrl-C again quits at once)"
            );
        });
    });
}

pub fn requested() -> bool {
    CANCEL.load(Ordering::SeqCst)
}
