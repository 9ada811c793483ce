//! `phaseflow serve` against hostile clients and hostile events (issue 22): ids that stay
//! unique across a SIGKILL, SIGTERM cancelling running jobs (and `--drain` finishing them),
//! slow clients dropped, a promised huge body refused at once, every framework error as
//! the documented JSON, `where.field` as a JSON path, a case-insensitive auth scheme, no
//! server paths in messages, deep nesting that leaves the server alive, a panicking job
//! failing alone, non-finite prediction inputs refused by server, library and CLI, and
//! concurrent uploads under one name that all land, a busy port refused first, and model
//! names at start held to the upload rules.

mod common;

use common::random_matrix;
use common::server::{ServeProcess, results_dir};
use phaseflow::engine::{Engine, EngineConfig, EngineError, JobOptions, ProgressCallback};
use phaseflow::nn::deeponet::data::antiderivative_arch;
use phaseflow::nn::{DeepONetParams, Init, Matrix, save_deeponet_bytes};
use phaseflow::serve::{Limits, ServeConfig, Server};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An in-process server whose clients get one second of silence and 64 KiB bodies.
fn config(results: &Path, token: Option<&str>) -> ServeConfig {
    let limits = Limits {
        max_body_bytes: 64 << 10,
        idle_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    common::server::config(results, token, limits)
}

/// One HTTP/1.1 exchange over a fresh connection, written by hand so that tests can send
/// what no client library would. Returns (status, body); status 0 when the server closed
/// the connection without an answer.
fn exchange(addr: SocketAddr, raw: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    // The server may answer (and close) before it has read everything we send.
    let _ = s.write_all(raw);
    read_response(&mut s)
}

fn read_response(s: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if let Some(body) = complete_body(&out) {
                    let status = std::str::from_utf8(&out[9..12]).unwrap().parse().unwrap();
                    return (status, body);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no answer from the server: {e}"),
        }
    }
    if out.is_empty() {
        return (0, out);
    }
    let status = std::str::from_utf8(&out[9..12]).unwrap().parse().unwrap();
    let body = complete_body(&out).unwrap_or_default();
    (status, body)
}

/// The body once head and `content-length` bytes of body have arrived.
fn complete_body(out: &[u8]) -> Option<Vec<u8>> {
    let end = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let body = &out[end + 4..];
    (body.len() >= len).then(|| body[..len].to_vec())
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn call(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call_with(addr, method, path, &[], body)
}

fn call_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let (status, bytes) = exchange(addr, &request(method, path, headers, &body));
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Asserts the documented error body: `{"error": {"status": S, "message": "..."}}`.
fn assert_error(status: u16, body: &[u8], want: u16) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|_| {
        panic!(
            "{want}: the body is not JSON: {:?}",
            String::from_utf8_lossy(body)
        )
    });
    assert_eq!(status, want, "{v}");
    assert_eq!(v["error"]["status"], want, "{v}");
    assert!(!v["error"]["message"].as_str().unwrap().is_empty(), "{v}");
    v
}

fn submit(addr: SocketAddr, spec: Value) -> u64 {
    let (status, v) = call(addr, "POST", "/v1/simulate", Some(spec));
    assert_eq!(status, 202, "{v}");
    v["id"].as_u64().unwrap()
}

fn state_of(addr: SocketAddr, id: u64) -> Value {
    let (status, v) = call(addr, "GET", &format!("/v1/jobs/{id}"), None);
    assert_eq!(status, 200, "{v}");
    v
}

/// Polls (at most `limit`) until the job's state is not one of `from`.
fn wait_past(addr: SocketAddr, id: u64, from: &[&str], limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let v = state_of(addr, id);
        if !from.contains(&v["state"].as_str().unwrap()) {
            return v;
        }
        assert!(started.elapsed() < limit, "job {id} still {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const LONG_JOB: &str = r#"{"system": "lorenz", "n": 1000000, "tspan": [0, 100], "dt": 0.001}"#;

fn record(results: &Path, id: u64) -> Value {
    let text = std::fs::read_to_string(results.join(id.to_string()).join("job.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn ids_are_never_handed_out_twice_across_a_sigkill() {
    let dir = results_dir("kill");
    let mut first = ServeProcess::start(&dir, &["--max-n", "1000000"]);
    let small = json!({"system": "lorenz", "n": 7, "tspan": [0, 1], "dt": 0.01});
    let done: Vec<u64> = (0..3).map(|_| submit(first.addr, small.clone())).collect();
    for &id in &done {
        let v = wait_past(
            first.addr,
            id,
            &["queued", "running"],
            Duration::from_secs(60),
        );
        assert_eq!(v["state"], "succeeded", "{v}");
    }
    let (_, before) = exchange(
        first.addr,
        &request("GET", &format!("/v1/jobs/{}/result", done[0]), &[], b""),
    );
    // A long job, running when the server is killed.
    let long = submit(first.addr, serde_json::from_str(LONG_JOB).unwrap());
    wait_past(first.addr, long, &["queued"], Duration::from_secs(60));
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let second = ServeProcess::start(&dir, &["--max-n", "1000000"]);
    let new: Vec<u64> = (0..3).map(|_| submit(second.addr, small.clone())).collect();
    let old: Vec<u64> = done.iter().copied().chain([long]).collect();
    for id in &new {
        assert!(
            !old.contains(id),
            "id {id} handed out again: old {old:?}, new {new:?}"
        );
    }
    // The killed job is reported as lost, not as someone else's result or unknown.
    let lost = state_of(second.addr, long);
    assert_eq!(lost["state"], "failed", "{lost}");
    assert!(
        lost["error"]
            .as_str()
            .unwrap()
            .contains("killed or crashed"),
        "{lost}"
    );
    // The finished jobs' results are served as before.
    let (status, after) = exchange(
        second.addr,
        &request("GET", &format!("/v1/jobs/{}/result", done[0]), &[], b""),
    );
    assert_eq!(status, 200);
    assert_eq!(after, before);
    for &id in &new {
        let v = wait_past(
            second.addr,
            id,
            &["queued", "running"],
            Duration::from_secs(60),
        );
        assert_eq!(v["summary"]["n"], 7, "{v}");
    }
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_cancels_running_jobs_and_drain_finishes_them() {
    let dir = results_dir("term");
    let mut server = ServeProcess::start(&dir, &["--max-n", "1000000"]);
    let long = submit(server.addr, serde_json::from_str(LONG_JOB).unwrap());
    wait_past(server.addr, long, &["queued"], Duration::from_secs(60));
    server.signal(libc::SIGTERM);
    // A 10^6-trajectory job over 10^5 steps takes hours here; cancelled, it ends in seconds.
    let status = server.exit_within(Duration::from_secs(20));
    assert!(status.success(), "{status}");
    let r = record(&dir, long);
    assert_eq!(r["state"], "cancelled", "{r}");

    // With --drain the running job is finished, and stored as succeeded.
    let mut server = ServeProcess::start(&dir, &["--max-n", "1000000", "--drain"]);
    let spec = json!({"system": "lorenz", "n": 2000, "tspan": [0, 5], "dt": 0.001});
    let id = submit(server.addr, spec);
    assert!(id > long);
    wait_past(server.addr, id, &["queued"], Duration::from_secs(60));
    server.signal(libc::SIGTERM);
    let status = server.exit_within(Duration::from_secs(120));
    assert!(status.success(), "{status}");
    let r = record(&dir, id);
    assert_eq!(r["state"], "succeeded", "{r}");
    assert_eq!(r["progress"]["done"], 2000, "{r}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn slow_clients_are_dropped_and_a_promised_huge_body_is_refused_at_once() {
    let dir = results_dir("slow");
    let server = Server::start(config(&dir, None)).unwrap();
    let addr = server.addr();

    // Half a header block, then silence: closed without an answer (idle timeout 1 s).
    let (status, _) = exchange(addr, b"GET /healthz HTTP/1.1\r\nHo");
    assert_eq!(status, 0);
    // Headers and half the promised body: the body times out, 408 as JSON.
    let (status, body) = exchange(
        addr,
        b"POST /v1/simulate HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\n{\"sys",
    );
    assert_error(status, &body, 408);
    // Nothing at all: closed.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(idle.read(&mut [0u8; 16]).unwrap_or(0), 0);

    // 10 GB promised: 413 before a byte of the body is sent.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(b"POST /v1/simulate HTTP/1.1\r\nhost: t\r\ncontent-length: 10000000000\r\n\r\n")
        .unwrap();
    let (status, body) = read_response(&mut s);
    let v = assert_error(status, &body, 413);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("65536"),
        "{v}"
    );
    // Still serving.
    assert_eq!(call(addr, "GET", "/healthz", None).0, 200);
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_framework_error_is_the_documented_json() {
    let dir = results_dir("json");
    let server = Server::start(config(&dir, None)).unwrap();
    let addr = server.addr();
    let cases: Vec<(Vec<u8>, u16)> = vec![
        // Wrong method: 405.
        (request("GET", "/v1/simulate", &[], b""), 405),
        (request("DELETE", "/healthz", &[], b""), 405),
        // No such endpoint: 404.
        (request("GET", "/v2/nothing", &[], b""), 404),
        // A query key the endpoint does not take: the framework's 400.
        (
            request("GET", "/v1/jobs/1/result?colour=red", &[], b""),
            400,
        ),
        // Not JSON, and JSON with a wrong type: 400 and 422.
        (request("POST", "/v1/simulate", &[], b"{\"n\": 1,"), 400),
        (request("POST", "/v1/simulate", &[], b"[1, 2]"), 422),
        // A body over the limit, sent in full: 413.
        (
            request("POST", "/v1/simulate", &[], &vec![b' '; 100 << 10]),
            413,
        ),
        // A URI over our limit (414 from the router) and over hyper's (414 from hyper).
        (
            request("GET", &format!("/v1/jobs?{}", "a".repeat(10_000)), &[], b""),
            414,
        ),
        (
            request("GET", &format!("/v1/jobs?{}", "a".repeat(70_000)), &[], b""),
            414,
        ),
        // Not HTTP at all: hyper's 400.
        (b"GARBAGE\r\n\r\n".to_vec(), 400),
    ];
    for (raw, want) in cases {
        let (status, body) = exchange(addr, &raw);
        assert_error(status, &body, want);
    }
    let (status, body) = exchange(
        addr,
        &request("GET", "/v1/jobs/1/result?colour=red", &[], b""),
    );
    let v = assert_error(status, &body, 400);
    assert_eq!(v["error"]["where"]["field"], "colour", "{v}");
    // 405 and 404 point at the README section that exists.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for (method, path) in [("GET", "/v1/simulate"), ("GET", "/v2/nothing")] {
        let (_, body) = exchange(addr, &request(method, path, &[], b""));
        let v: Value = serde_json::from_slice(&body).unwrap();
        let message = v["error"]["message"].as_str().unwrap_or_default();
        let section = message.split('`').nth(1).unwrap_or_default();
        assert!(
            !section.is_empty() && readme.contains(&format!("### `{section}`")),
            "{message}"
        );
    }
    assert_eq!(call(addr, "GET", "/healthz", None).0, 200);
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn spec_errors_name_json_keys_never_command_line_flags() {
    let dir = results_dir("keys");
    let server = Server::start(config(&dir, None)).unwrap();
    let addr = server.addr();
    // (request, where.field, words the message must hold)
    let cases = [
        (
            json!({"system": "lorenz", "n": 4, "tspan": [0, 1], "dt": 0.01, "rtol": 1e-6}),
            "rtol",
            "rtol applies to adaptive solvers (bs3, dp5, tsit5, dop853, milstein-adaptive) without fixed_step",
        ),
        (
            json!({"system": "lorenz", "n": 4, "solver": "dp5", "tspan": [0, 1],
                   "dtmin": 0.1, "dtmax": 0.01}),
            "dtmin",
            "dtmin 0.1 is above dtmax 0.01",
        ),
        (
            json!({"system": "lorenz", "n": 4, "sweep": {"rho": [0, 1]}, "param": {"rho": 2}}),
            "sweep.rho",
            "sweep.rho and param.rho both set parameter 'rho'",
        ),
        (
            json!({"system": "lorenz", "n": 4, "u0": {"uniform": {"x": [0, 1, 2]}}}),
            "u0.uniform.x",
            "u0.uniform.x must be [lo, hi]",
        ),
        // Checks the ode library makes (span, step, save times, tolerances, ensemble
        // boxes and axes) name the key too.
        (
            json!({"system": "lorenz", "n": 10, "dt": 0.3}),
            "dt",
            "dt 0.3 does not divide the span",
        ),
        (
            json!({"system": "lorenz", "n": 10, "tspan": [1, 0]}),
            "tspan",
            "tspan must go forward",
        ),
        (
            json!({"system": "lorenz", "n": 10, "solver": "tsit5", "saveat": [0, 2, 1]}),
            "saveat",
            "saveat[2] = 1 is not after saveat[1] = 2",
        ),
        (
            json!({"system": "lorenz", "n": 10, "solver": "tsit5", "saveat": [0, 20]}),
            "saveat",
            "outside the span",
        ),
        (
            json!({"system": "lorenz", "n": 10, "u0": {"uniform": {"x": [1, 0]}}}),
            "u0.uniform.x",
            "u0.uniform.x must be a box of finite bounds, low ≤ high",
        ),
        (
            json!({"system": "lorenz", "n": 10, "solver": "tsit5", "rtol": {"*": 1e-3, "x": -1}}),
            "rtol.x",
            "rtol.x must be a non-negative, finite number",
        ),
        (
            json!({"system": "lorenz", "n": 10, "solver": "tsit5", "safety": 2}),
            "safety",
            "safety must be above 0 and at most 1",
        ),
        (
            json!({"system": "lorenz", "n": 10, "sweep": {"rho": [0]}}),
            "sweep.rho",
            "sweep.rho must be [lo, hi] or [lo, hi, count]",
        ),
        (
            json!({"system": "lorenz", "n": 4, "sweep": {"rho": [0, 1], "beta": [0, 1, 2]}}),
            "sweep.rho",
            "sweep.rho must be [lo, hi, count]",
        ),
        (
            json!({"system": "lorenz", "n": 4, "u0": {"grid": {"x": [0, 1], "y": [0, 1, 2]}}}),
            "u0.grid.x",
            "u0.grid.x must be [lo, hi, count]",
        ),
        // Contradictions are refused, never resolved silently.
        (
            json!({"system": "lorenz", "n": 4, "set": {"x": 3}, "u0": {"uniform": {"x": [0, 1]}}}),
            "u0.uniform.x",
            "u0.uniform.x and set.x both set state 'x'",
        ),
        (
            json!({"system": "lorenz", "n": 4, "fixed_step": true}),
            "fixed_step",
            "fixed_step applies to adaptive solvers",
        ),
        (
            json!({"system": "lorenz", "tspan": [0, 1]}),
            "n",
            "give the number of trajectories with n",
        ),
    ];
    for (spec, field, words) in cases {
        let (status, v) = call(addr, "POST", "/v1/simulate", Some(spec.clone()));
        assert_eq!(status, 422, "{spec}: {v}");
        assert_eq!(v["error"]["where"]["field"], field, "{spec}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{spec}: {message}");
        assert!(!message.contains("--"), "{spec}: a flag in {message}");
        assert!(!message.contains(" -n"), "{spec}: a flag in {message}");
        assert!(
            !message.contains("lo:hi"),
            "{spec}: flag syntax in {message}"
        );
    }
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn where_field_is_the_json_path_of_the_bad_key_never_its_value() {
    let dir = results_dir("field");
    let server = Server::start(config(&dir, None)).unwrap();
    let addr = server.addr();
    let cases = [
        (json!({"system": "lorenz", "solver": "rk5"}), "solver"),
        (json!({"system": "lorenz", "tspan": [0, "one"]}), "tspan[1]"),
        (json!({"system": "lorenz", "n": -3}), "n"),
        (
            json!({"system": "lorenz", "u0": {"uniform": {"x": [0, 1]}, "colour": 1}}),
            "u0.colour",
        ),
        (
            json!({"system": "lorenz", "n": 4, "sweep": {"rho": "many"}}),
            "sweep.rho",
        ),
        (
            json!({"system": "lorenz", "n": 4, "sweep": {"rhoo": [1, 2]}}),
            "sweep.rhoo",
        ),
        (
            json!({"system": "lorenz", "n": 4, "param": {"sigma": "ten"}}),
            "param.sigma",
        ),
    ];
    for (spec, field) in cases {
        let (status, v) = call(addr, "POST", "/v1/simulate", Some(spec.clone()));
        assert_eq!(status, 422, "{spec}: {v}");
        assert_eq!(v["error"]["where"]["field"], field, "{spec}: {v}");
    }
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_auth_scheme_is_case_insensitive_and_messages_hold_no_server_paths() {
    let dir = results_dir("auth");
    let server = Server::start(config(&dir, Some("s3cret"))).unwrap();
    let addr = server.addr();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let auth = format!("{scheme} s3cret");
        let (status, v) = call_with(addr, "GET", "/v1/jobs", &[("authorization", &auth)], None);
        assert_eq!(status, 200, "{scheme}: {v}");
    }
    for wrong in ["Basic s3cret", "Bearer s3cre", "s3cret", "Bearer"] {
        let (status, body) = exchange(
            addr,
            &request("GET", "/v1/jobs", &[("authorization", wrong)], b""),
        );
        assert_error(status, &body, 401);
    }
    // A bad upload: the message speaks of the upload, never of files under --results.
    let auth = [("authorization", "bearer s3cret")];
    let (status, body) = exchange(
        addr,
        &request(
            "POST",
            "/v1/models?name=junk",
            &auth,
            b"not a checkpoint at all",
        ),
    );
    let v = assert_error(status, &body, 422);
    let message = v["error"]["message"].as_str().unwrap();
    let root = dir.display().to_string();
    assert!(!message.contains(&root), "{message}");
    assert!(!message.contains(".partial"), "{message}");
    assert!(message.contains("the uploaded model"), "{message}");
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A system whose one equation is `expr`.
fn system_with(expr: &str) -> Value {
    let definition = format!(
        "name = \"deep\"\nstates = {{ x = 1.0 }}\nequations = \"\"\"\ndx = {expr}\n\"\"\"\n"
    );
    json!({"system": {"definition": definition}, "n": 4, "tspan": [0, 1], "dt": 0.1})
}

/// Deep nesting over HTTP leaves the server alive. Each input is either refused (4xx JSON
/// pointing at a line and column: the parser's documented depth limit, helper A's part of
/// issue 22) or accepted and run to a clean end; /healthz answers after each.
#[test]
fn deep_nesting_over_http_never_takes_the_server_down() {
    let dir = results_dir("deep");
    let mut cfg = config(&dir, None);
    cfg.limits.max_body_bytes = 1 << 20;
    let server = Server::start(cfg).unwrap();
    let addr = server.addr();
    let corpus = [
        format!("{}x{}", "(".repeat(1_500), ")".repeat(1_500)),
        format!("{}x{}", "(".repeat(20_000), ")".repeat(20_000)),
        format!("{}x", "-".repeat(20_000)),
        format!("{}x{}", "sin(".repeat(2_000), ")".repeat(2_000)),
    ];
    for expr in &corpus {
        let (status, v) = call(addr, "POST", "/v1/simulate", Some(system_with(expr)));
        match status {
            202 => {
                let id = v["id"].as_u64().unwrap();
                let end = wait_past(addr, id, &["queued", "running"], Duration::from_secs(300));
                assert!(
                    ["succeeded", "failed"].contains(&end["state"].as_str().unwrap()),
                    "{end}"
                );
            }
            400..=499 => {
                assert_eq!(v["error"]["status"], status, "{v}");
                assert!(v["error"]["where"]["line"].as_u64().is_some(), "{v}");
                assert!(v["error"]["where"]["column"].as_u64().is_some(), "{v}");
            }
            _ => panic!("{} levels: {status} {v}", expr.len()),
        }
        assert_eq!(call(addr, "GET", "/healthz", None).0, 200);
    }
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_panic_inside_a_job_fails_that_job_alone() {
    let engine = Engine::new(EngineConfig {
        runners: 1,
        memory: Some(128 << 20),
        ..EngineConfig::default()
    })
    .unwrap();
    let problem = |n| {
        let spec: phaseflow::spec::RunSpec = serde_json::from_value(
            json!({"system": "lorenz", "n": n, "tspan": [0, 1], "dt": 0.01}),
        )
        .unwrap();
        phaseflow::spec::build_problem(&spec).unwrap()
    };
    let explode: ProgressCallback = Arc::new(|_| panic!("a progress callback gave up"));
    let bad = engine.simulate_blocking(
        problem(16),
        JobOptions {
            on_progress: Some(explode),
            ..JobOptions::default()
        },
    );
    match bad {
        Err(EngineError::Internal(m)) => assert!(m.contains("gave up"), "{m}"),
        other => panic!("expected an internal error, got {:?}", other.map(|s| s.n)),
    }
    // The runner lives on: the next job runs to its end.
    let good = engine
        .simulate_blocking(problem(32), JobOptions::default())
        .unwrap();
    assert_eq!(good.n, 32);
    let stats = engine.stats();
    assert_eq!((stats.failed, stats.succeeded), (1, 1));
}

fn nan_model() -> (phaseflow::nn::DeepONetArch, DeepONetParams) {
    let arch = antiderivative_arch(4);
    let params = DeepONetParams::init(&arch, Init::Glorot, 3).unwrap();
    (arch, params)
}

#[test]
fn non_finite_prediction_inputs_are_refused_by_library_server_and_cli() {
    let (arch, params) = nan_model();
    let y = random_matrix(3, 1, 5, 0);

    // Library: the engine's model refuses, naming the row and column.
    let engine = Engine::new(EngineConfig::default()).unwrap();
    let model = engine.load_model(&arch, &params).unwrap();
    for (bad, said) in [
        (f64::NAN, "is NaN"),
        (1e300, "f32"),
        (f64::NEG_INFINITY, "f32"),
    ] {
        let mut u = random_matrix(2, 4, 1, 0);
        u.data[4 + 3] = bad;
        match model.predict_blocking(u, y.clone()) {
            Err(EngineError::BadInput(m)) => {
                assert!(m.contains("u row 1, column 3") && m.contains(said), "{m}")
            }
            other => panic!(
                "{bad}: expected a refusal, got {:?}",
                other.map(|v| v.len())
            ),
        }
    }
    let mut far = y.clone();
    far.data[2] = -1e39;
    let m = model
        .predict_blocking(random_matrix(1, 4, 1, 0), far)
        .unwrap_err()
        .to_string();
    assert!(m.contains("y row 2, column 0"), "{m}");

    // Server: 422 whose where.field is the value's JSON path.
    let dir = results_dir("nan");
    // Answers of at most 1,000 values (24 JSON bytes each), to test the size refusal.
    let mut small_answers = config(&dir, None);
    small_answers.limits.max_json_bytes = 24 * 1000;
    let server = Server::start(small_answers).unwrap();
    let addr = server.addr();
    let bytes = save_deeponet_bytes(&arch, &params, &[]).unwrap();
    let (status, _) = exchange(addr, &request("POST", "/v1/models?name=m", &[], &bytes));
    assert_eq!(status, 201);
    let (status, v) = call(
        addr,
        "POST",
        "/v1/models/m/predict",
        Some(json!({"u": [[0.0, 0.1, 0.2, 1e300]], "y": [0.5]})),
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"]["where"]["field"], "u[0][3]", "{v}");
    let (status, v) = call(
        addr,
        "POST",
        "/v1/models/m/predict",
        Some(json!({"u": [0.0, 0.1, 0.2, 0.3], "y": [0.5, 1e39]})),
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"]["where"]["field"], "y[1]", "{v}");
    // An unknown key is refused, as /v1/simulate refuses one, not ignored.
    let (status, v) = call(
        addr,
        "POST",
        "/v1/models/m/predict",
        Some(json!({"u": [0.0, 0.1, 0.2, 0.3], "y": [0.5], "z": 1})),
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"]["where"]["field"], "z", "{v}");
    // Rows nested one level too deep are named as such (they read "u[0] has 1 values").
    let (status, v) = call(
        addr,
        "POST",
        "/v1/models/m/predict",
        Some(json!({"u": [[[0.0, 0.1, 0.2, 0.3]]], "y": [0.5]})),
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"]["where"]["field"], "u[0][0]", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nested two deep at most"),
        "{v}"
    );
    // An answer larger than the limit is refused before any device work; one at the
    // limit is answered.
    let points: Vec<f64> = (0..500).map(|k| k as f64 / 500.0).collect();
    let functions = vec![vec![0.0, 0.1, 0.2, 0.3]; 3];
    let (status, v) = call(
        addr,
        "POST",
        "/v1/models/m/predict",
        Some(json!({"u": functions, "y": points})),
    );
    assert_eq!(status, 422, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("1500 values") && message.contains("at most 1000"),
        "{v}"
    );
    let (status, v) = call(
        addr,
        "POST",
        "/v1/models/m/predict",
        Some(json!({"u": functions[..2], "y": points})),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["values"].as_array().unwrap().len(), 1000);
    server.stop();

    // CLI: exit 2, naming the file, row and column.
    std::fs::create_dir_all(&dir).unwrap();
    let checkpoint = dir.join("model.safetensors");
    std::fs::write(&checkpoint, &bytes).unwrap();
    let write = |name: &str, m: &Matrix| {
        let mut b =
            phaseflow::io::npy_header(phaseflow::io::Dtype::F64, &[m.rows as u64, m.cols as u64]);
        b.extend_from_slice(
            &m.data
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<_>>(),
        );
        let path = dir.join(name);
        std::fs::write(&path, b).unwrap();
        path
    };
    let mut u = random_matrix(3, 4, 1, 0);
    u.data[2 * 4 + 1] = f64::NAN;
    // `phaseflow predict` on two .npy files: its exit code and stderr.
    let predict = |functions: &Path, points: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_phaseflow"))
            .arg("predict")
            .arg(&checkpoint)
            .arg("--functions")
            .arg(functions)
            .arg("--points")
            .arg(points)
            .arg("-o")
            .arg(dir.join("g.npy"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let functions = write("u.npy", &u);
    let points = write("y.npy", &y);
    let (code, stderr) = predict(&functions, &points);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("u row 2, column 1") && stderr.contains("NaN"),
        "{stderr}"
    );
    assert!(stderr.contains("u.npy"), "{stderr}");
    assert!(!dir.join("g.npy").exists());
    // No points at all: refused, naming the file (it printed a rate of nothing).
    let functions = write("u.npy", &random_matrix(3, 4, 1, 0));
    let no_points = write(
        "y0.npy",
        &Matrix {
            rows: 0,
            cols: 1,
            data: Vec::new(),
        },
    );
    let (code, stderr) = predict(&functions, &no_points);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("y0.npy") && stderr.contains("no points"),
        "{stderr}"
    );
    assert!(!dir.join("g.npy").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Concurrent uploads under one name (helper-51's ten parallel curls): every one is
/// stored (201; they shared a partial file, and some got 500 or a valid file refused as
/// "not a DeepONet checkpoint"), and the model served is the one whose file is kept, so a
/// restart serves what was served.
#[test]
fn concurrent_uploads_under_one_name_all_land_and_agree() {
    let dir = results_dir("uploads");
    let server = Server::start(config(&dir, None)).unwrap();
    let addr = server.addr();
    let arch = antiderivative_arch(4);
    let uploads: Vec<Vec<u8>> = (0..8)
        .map(|seed| {
            let params = DeepONetParams::init(&arch, Init::Glorot, seed).unwrap();
            save_deeponet_bytes(&arch, &params, &[]).unwrap()
        })
        .collect();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = uploads
            .iter()
            .map(|bytes| {
                s.spawn(move || {
                    exchange(addr, &request("POST", "/v1/models?name=race", &[], bytes)).0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses, vec![201; 8]);
    let (status, v) = call(addr, "GET", "/v1/models", None);
    assert_eq!(status, 200);
    assert_eq!(v["models"].as_array().unwrap().len(), 1, "{v}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("models"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, vec!["race.safetensors".to_string()]);
    let (kept_arch, kept) =
        phaseflow::nn::load_deeponet(&dir.join("models").join("race.safetensors")).unwrap();
    let u = [0.0, 0.1, 0.2, 0.3];
    let y = [0.25, 0.75];
    let (status, v) = call(
        addr,
        "POST",
        "/v1/models/race/predict",
        Some(json!({"u": u, "y": y})),
    );
    assert_eq!(status, 200, "{v}");
    let want = phaseflow::nn::deeponet::forward_aligned(
        &kept_arch,
        &kept,
        &Matrix {
            rows: 1,
            cols: 4,
            data: u.to_vec(),
        },
        &Matrix {
            rows: 2,
            cols: 1,
            data: y.to_vec(),
        },
    )
    .g;
    let got: Vec<f64> = serde_json::from_value(v["values"].clone()).unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= 1e-5 * w.abs().max(1.0),
            "{got:?} vs {want:?}"
        );
    }
}

/// A busy port is refused before anything else is done (exit 1, the address named): no
/// results directory is made and no device opened, so nothing is left to tear down (a
/// server that failed after opening lavapipe once crashed at exit).
#[test]
fn a_busy_port_is_refused_before_any_other_work() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let results = std::env::temp_dir().join(format!("pf-busy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&results);
    let o = Command::new(env!("CARGO_BIN_EXE_phaseflow"))
        .args(["serve", "--addr", &addr, "--results"])
        .arg(&results)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(!results.exists(), "the results directory was made first");
}

/// `serve --model NAME=FILE` takes the names uploads take (a name with '/' was served at a
/// path that answered 404), once each (a repeated name kept the last file in silence):
/// exit 2 before anything is opened.
#[test]
fn model_names_at_start_follow_the_upload_rules() {
    for (args, message) in [
        (
            &["--model", "a/b=m.safetensors"][..],
            "a model name is 1 to 64 letters",
        ),
        (
            &["--model", "m=a.safetensors", "--model", "m=b.safetensors"][..],
            "--model 'm' is given twice",
        ),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_phaseflow"))
            .arg("serve")
            .args(args)
            .args(["--addr", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(message), "{err}");
    }
}

/// A `--model` file that cannot be read is refused before the results directory is made
/// (it was left behind, empty, with a `models/` folder in it) and the device opened.
#[test]
fn an_unreadable_model_is_refused_before_the_results_directory_is_made() {
    let results = std::env::temp_dir().join(format!("pf-badmodel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&results);
    let o = Command::new(env!("CARGO_BIN_EXE_phaseflow"))
        .args(["serve", "--addr", "127.0.0.1:0", "--model"])
        .arg("m=/nonexistent/m.safetensors")
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("model 'm'") && err.contains("/nonexistent/m.safetensors"),
        "{err}"
    );
    assert!(!results.exists(), "the results directory was made first");
}
