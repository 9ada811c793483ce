//! Shared by the tests of `phaseflow serve`: an in-process server's configuration, and the
//! server as a child process (for signals, kills and its memory).
#![allow(dead_code)]

use phaseflow::engine::{EngineConfig, Shutdown};
use phaseflow::serve::{Limits, ServeConfig, Server};
use serde_json::Value;
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

/// A blocking HTTP client of an in-process server (4xx and 5xx are answers, not errors).
pub struct Client {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
}

impl Client {
    pub fn new(server: &Server, token: Option<&str>) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            base: format!("http://{}", server.addr()),
            agent,
            token: token.map(str::to_string),
        }
    }

    pub fn send(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> (u16, Vec<u8>) {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut response = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            ("DELETE", _) => {
                let mut r = self.agent.delete(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            (_, body) => {
                let mut r = self.agent.post(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send(body.unwrap_or_default())
            }
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap();
        (status, bytes)
    }

    pub fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, bytes) = self.send(method, path, body.map(|b| b.to_string().into_bytes()));
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub fn submit(&self, spec: Value) -> u64 {
        let (status, v) = self.json("POST", "/v1/simulate", Some(spec));
        assert_eq!(status, 202, "{v}");
        v["id"].as_u64().unwrap()
    }

    /// Polls until the job has finished; returns its final state.
    pub fn wait(&self, id: u64) -> Value {
        let started = Instant::now();
        loop {
            let (status, v) = self.json("GET", &format!("/v1/jobs/{id}"), None);
            assert_eq!(status, 200, "{v}");
            if !["queued", "running", "cancelling"].contains(&v["state"].as_str().unwrap()) {
                return v;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "job {id}: {v}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The arrays of an `.npz` from the server.
pub fn npz_arrays(
    bytes: &[u8],
    dir: &Path,
) -> std::collections::BTreeMap<String, phaseflow::io::NpzValue> {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("result.npz");
    std::fs::write(&path, bytes).unwrap();
    phaseflow::io::read_npz(&path).unwrap()
}

pub fn states_of(v: &phaseflow::io::NpzValue) -> Vec<f64> {
    match v {
        phaseflow::io::NpzValue::Array { data, .. } => data.clone(),
        other => panic!("not an array: {other:?}"),
    }
}
