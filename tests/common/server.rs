//! Shared by the tests of `phaseflow serve`: an in-process server's configuration, and the
//! server as a child process (for signals, kills and its memory).
#![allow(dead_code)]

use phaseflow::engine::{EngineConfig, Shutdown};
use phaseflow::serve::{Limits, ServeConfig};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A path under the system's temp dir named after the test binary, the test and the
/// process, removed if an earlier run left it (the server creates it).
pub fn results_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "phaseflow-{}-{name}-{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// An in-process server on a free loopback port: two runners, 256 MiB of device memory,
/// the given limits; no signal handling (the test binary owns its signals).
pub fn config(results: &Path, token: Option<&str>, limits: Limits) -> ServeConfig {
    ServeConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        token: token.map(str::to_string),
        results: results.to_path_buf(),
        limits,
        engine: EngineConfig {
            runners: 2,
            memory: Some(256 << 20),
            ..EngineConfig::default()
        },
        models: Vec::new(),
        on_shutdown: Shutdown::Cancel,
        handle_signals: false,
    }
}

/// `phaseflow serve` as a child process on a free loopback port; killed when dropped.
pub struct ServeProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ServeProcess {
    pub fn start(results: &Path, extra: &[&str]) -> ServeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_phaseflow"))
            .args(["serve", "--addr", "127.0.0.1:0", "--results"])
            .arg(results)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .unwrap();
        ServeProcess { child, addr }
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0);
    }

    /// Waits (at most `limit`) for the process to exit; its exit status.
    pub fn exit_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "the server did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Resident memory in KiB, from /proc (Linux).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
