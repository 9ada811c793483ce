use std::process::ExitCode;

fn main() -> ExitCode {
    quiet_wsi_warning();
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        // println! panics when standard output cannot be written (a full disk, /dev/full):
        // that is the environment's failure, not a bug, so say so and exit 1 like any
        // failed write (exit happens here: nothing after the failed print can be trusted).
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if let Some(reason) = message.strip_prefix("failed printing to stdout: ") {
            eprintln!("error: could not write to standard output: {reason}");
            std::process::exit(1);
        }
        eprintln!("error: internal error in phaseflow ({info}); please report it");
    }));
    phaseflow::cli::main()
}

/// Mesa's Vulkan window-system code prints "XDG_RUNTIME_DIR is invalid" on headless
/// machines where the variable is unset. phaseflow never opens a window, so give it a
/// private directory to find and keep the output clean.
fn quiet_wsi_warning() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    let user = std::env::var("USER").unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("phaseflow-runtime-{user}"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.is_dir() && std::fs::DirBuilder::new().mode(0o700).create(&dir).is_err() {
            return;
        }
    }
    // SAFETY: called first thing in main, before any thread exists.
    unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
}
