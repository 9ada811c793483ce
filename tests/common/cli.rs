//! Shared by the tests that drive the `phaseflow` binary as a user would: running it,
//! reading what it printed, fresh scratch directories, and the shape of a refusal.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

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

/// Starts `args` with progress printed as lines, and returns once `chunks` chunks have
/// finished (their lines read), with the child still running and its stderr reader.
pub fn start_and_wait_for_chunks(
    args: &[String],
    chunks: usize,
) -> (Child, BufReader<std::process::ChildStderr>) {
    let finished = |line: &str, seen: usize| seen + usize::from(line.contains("chunk finished"));
    start_and_wait_for(args, finished, chunks)
}

/// Starts `args` with progress printed as lines and reads them until `count` (fed each
/// line and the count so far) reaches `target`.
pub fn start_and_wait_for(
    args: &[String],
    count: impl Fn(&str, usize) -> usize,
    target: usize,
) -> (Child, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_phaseflow"))
        .args(args.iter().filter(|a| *a != "-q"))
        .env("PHASEFLOW_PROGRESS", "lines")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut seen = 0;
    let mut line = String::new();
    while seen < target {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the run ended early"
        );
        seen = count(&line, seen);
    }
    (child, reader)
}

/// Sends `sig` to the child, reads the rest of its stderr and waits for it: its exit code
/// and the rest of its messages.
pub fn signal_and_wait(
    mut child: Child,
    mut reader: BufReader<std::process::ChildStderr>,
    sig: libc::c_int,
) -> (Option<i32>, String) {
    // SAFETY: signals our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
    (child.wait().unwrap().code(), rest)
}
