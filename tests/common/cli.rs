//! Shared by the tests that drive the `phaseflow` binary as a user would: running it,
//! reading what it printed, fresh scratch directories, and the shape of a refusal.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the release binary with `args` and waits for it.
pub fn phaseflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_phaseflow"))
        .args(args)
        .output()
        .expect("binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A fresh, empty directory under the system's temp dir, named after the test binary, the
/// test and the process, so that test binaries running at once never share one.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "phaseflow-{}-{name}-{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Asserts exit code 2 and one clear message containing `expected`: no panic, no backtrace.
pub fn assert_input_error(o: &Output, expected: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains(expected), "expected '{expected}' in: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}
