//! `phaseflow serve` over real HTTP on loopback: results identical to the library's, 32
//! concurrent jobs beside a stream of predictions, every bad input refused with the right
//! 4xx and a message, cancellation, and results that survive a restart and a crash.

mod common;

use common::random_matrix;
use common::server::{Client, npz_arrays, results_dir, states_of};
use phaseflow::nn::deeponet::data::antiderivative_arch;
use phaseflow::nn::{DeepONetNet, DeepONetParams, Init, save_deeponet_bytes};
use phaseflow::ode::{Problem, RunOptions};
use phaseflow::serve::{Limits, ServeConfig, Server};
use phaseflow::spec::{RunSpec, build_problem};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// An in-process server taking runs of up to 10^6 trajectories and 64 KiB bodies.
fn config(results: &Path, token: Option<&str>) -> ServeConfig {
    let limits = Limits {
        max_body_bytes: 64 << 10,
        max_n: 1_000_000,
        ..Limits::default()
    };
    common::server::config(results, token, limits)
}

fn library_run(spec: &Value) -> phaseflow::ode::Solution {
    let spec: RunSpec = serde_json::from_value(spec.clone()).unwrap();
    let problem: Problem = build_problem(&spec).unwrap();
    problem
        .simulate(common::gpu(), &RunOptions::default())
        .unwrap()
}

#[test]
fn results_over_http_equal_the_library_and_bad_inputs_get_4xx() {
    let dir = results_dir("main");
    let server = Server::start(config(&dir, None)).unwrap();
    let c = Client::new(&server, None);

    // Fixed step with saves, and adaptive with saveat: npz, npy and JSON all match.
    let fixed = json!({"system": "lorenz", "n": 300, "sweep": {"rho": [0, 40]}, "tspan": [0, 2], "dt": 0.001, "save_every": 250});
    let adaptive = json!({"system": "van_der_pol", "n": 50, "solver": "tsit5", "rtol": 1e-7, "atol": 1e-7, "saveat": "0:0.5:5", "tspan": [0, 5], "u0": {"uniform": {"x": [-2, 2]}}, "seed": 7});
    for (k, spec) in [fixed, adaptive].iter().enumerate() {
        let id = c.submit(spec.clone());
        let done = c.wait(id);
        assert_eq!(done["state"], "succeeded", "{done}");
        let want = library_run(spec);
        let want_states: Vec<f64> = (0..want.states.len()).map(|i| want.states.get(i)).collect();
        let (status, npz) = c.send("GET", &format!("/v1/jobs/{id}/result"), None);
        assert_eq!(status, 200);
        let arrays = npz_arrays(&npz, &dir.join(format!("check-{k}")));
        assert_eq!(states_of(&arrays["states"]), want_states);
        assert_eq!(states_of(&arrays["times"]), want.times);
        let codes: Vec<f64> = want.status.iter().map(|&s| s as u8 as f64).collect();
        assert_eq!(states_of(&arrays["status"]), codes);
        assert_eq!(arrays.contains_key("steps"), k == 1);
        let (status, npy) = c.send("GET", &format!("/v1/jobs/{id}/result?format=npy"), None);
        assert_eq!(status, 200);
        assert_eq!(&npy[..6], b"\x93NUMPY");
        let (status, js) = c.json("GET", &format!("/v1/jobs/{id}/result?format=json"), None);
        assert_eq!(status, 200);
        let flat: Vec<f64> = js["states"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| {
                s.as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|t| t.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
            })
            .collect();
        // JSON carries shortest round-trip decimals; serde_json's default parser may be
        // one ulp off in f64 (it is not built with float_roundtrip), far below f32's ulp.
        assert_eq!(flat.len(), want_states.len());
        let worst = flat
            .iter()
            .zip(&want_states)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1e-300))
            .fold(0.0, f64::max);
        assert!(worst < 1e-15, "JSON states differ by {worst:e}");
    }

    // Every bad input: the status, the words of the message and where it points.
    let bad: Vec<(Vec<u8>, u16, &str, Value)> = vec![
        (b"{\"system\": \"lorenz\", \"n\": 10,}".to_vec(), 400, "not valid JSON", json!({"line": 1, "column": 30})),
        (json!({"system": "lorenzz", "n": 10}).to_string().into_bytes(), 422, "Did you mean 'lorenz'", json!({"field": "system"})),
        (
            json!({"system": {"definition": "name = \"decay\"\nstates = { x = 1.0 }\nparameters = { k = 1.0 }\nequations = \"\"\"\ndx = -k * * x\n\"\"\"\n"}, "n": 4, "tspan": [0, 1], "dt": 0.1}).to_string().into_bytes(),
            422,
            "",
            json!({"field": "system.definition", "line": 5}),
        ),
        (json!({"system": "lorenz", "n": 1_000_000_000_000u64}).to_string().into_bytes(), 422, "limit of 1000000", json!({"field": "n"})),
        (json!({"system": "lorenz", "n": 1000, "save_every": 1, "tspan": [0, 100], "dt": 0.001}).to_string().into_bytes(), 422, "bytes", json!({"field": "save_every"})),
        (json!({"system": "lorenz", "nn": 10}).to_string().into_bytes(), 422, "unknown field", json!({"field": "nn"})),
        (json!({"system": "lorenz", "params_file": "/etc/passwd"}).to_string().into_bytes(), 422, "files on the server", json!({"field": "params_file"})),
        (json!({"system": "lorenz", "n": 4, "sensitivities": ["rhoo"]}).to_string().into_bytes(), 422, "rhoo", json!({"field": "sensitivities"})),
        (json!({"system": "lorenz", "n": 4, "sensitivities": ["rho"], "sensitivity_error": "sideways"}).to_string().into_bytes(), 422, "include or exclude", json!({"field": "sensitivity_error"})),
        (vec![b' '; 100 << 10], 413, "limit of 65536 bytes", Value::Null),
    ];
    for (body, status, words, at) in bad {
        let (got, bytes) = c.send("POST", "/v1/simulate", Some(body));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(got, status, "{v}");
        assert_eq!(v["error"]["status"], status);
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{message}");
        if let Value::Object(want) = at {
            for (k, w) in want {
                assert_eq!(v["error"]["where"][&k], w, "{v}");
            }
        }
    }
    // The bad equation's column points at the second '*'.
    let (_, v) = c.json("POST", "/v1/simulate", Some(json!({"system": {"definition": "name = \"decay\"\nstates = { x = 1.0 }\nparameters = { k = 1.0 }\nequations = \"\"\"\ndx = -k * * x\n\"\"\"\n"}, "n": 4, "tspan": [0, 1], "dt": 0.1})));
    assert_eq!(v["error"]["where"]["text"], "dx = -k * * x", "{v}");
    assert!(
        v["error"]["where"]["caret"]
            .as_str()
            .unwrap()
            .ends_with('^')
    );
    assert_eq!(c.json("GET", "/v1/jobs/999", None).0, 404);
    assert_eq!(c.json("GET", "/v1/jobs/1/result?format=xml", None).0, 422);
    assert_eq!(c.json("GET", "/v1/nothing", None).0, 404);

    // Still serving, and /metrics counts it all.
    let id = c.submit(json!({"system": "rossler", "n": 10}));
    assert_eq!(c.wait(id)["state"], "succeeded");
    let (status, text) = c.send("GET", "/metrics", None);
    assert_eq!(status, 200);
    let text = String::from_utf8(text).unwrap();
    for line in [
        "phaseflow_jobs_finished_total{state=\"succeeded\"} 3",
        "phaseflow_jobs_queued 0",
        "phaseflow_http_responses_total{code=\"413\"} 1",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    assert!(text.contains("phaseflow_trajectory_steps_per_second "));
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn concurrent_jobs_and_predictions_are_all_correct() {
    let dir = results_dir("load");
    let server = Server::start(config(&dir, None)).unwrap();
    let c = Client::new(&server, None);

    let arch = antiderivative_arch(20);
    let params = DeepONetParams::init(&arch, Init::Glorot, 11).unwrap();
    let bytes = save_deeponet_bytes(&arch, &params, &[]).unwrap();
    let (status, v) = c.send("POST", "/v1/models?name=anti", Some(bytes));
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&v));
    assert_eq!(
        c.json(
            "POST",
            "/v1/models?name=bad",
            Some(json!({"not": "a model"}))
        )
        .0,
        422
    );
    let net = DeepONetNet::new(common::gpu(), &arch, &params).unwrap();
    let y = random_matrix(100, 1, 3, 0);

    let specs: Vec<Value> = (0..32)
        .map(|k| json!({"system": "lorenz", "n": 200 + 10 * k, "sweep": {"rho": [0, 10 + k]}, "tspan": [0, 1], "dt": 0.001, "save_every": 100}))
        .collect();
    std::thread::scope(|s| {
        let predictor = s.spawn(|| {
            for k in 0..40 {
                let u = random_matrix(1, 20, 100 + k, 0);
                let body = json!({"u": u.data, "y": y.data});
                let (status, v) = c.json("POST", "/v1/models/anti/predict", Some(body));
                assert_eq!(status, 200, "{v}");
                assert_eq!(v["shape"], json!([1, 100, 1]));
                let want = net.predict(common::gpu(), &u, &y).unwrap();
                let got: Vec<f64> = v["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect();
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
                }
            }
        });
        let ids: Vec<u64> = std::thread::scope(|t| {
            let hs: Vec<_> = specs
                .iter()
                .map(|sp| t.spawn(|| c.submit(sp.clone())))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (id, spec) in ids.iter().zip(&specs) {
            assert_eq!(c.wait(*id)["state"], "succeeded");
            let (status, npz) = c.send("GET", &format!("/v1/jobs/{id}/result"), None);
            assert_eq!(status, 200);
            let arrays = npz_arrays(&npz, &dir.join(format!("check-{id}")));
            let want = library_run(spec);
            let want_states: Vec<f64> =
                (0..want.states.len()).map(|i| want.states.get(i)).collect();
            assert_eq!(states_of(&arrays["states"]), want_states, "job {id}");
        }
        predictor.join().unwrap();
    });
    // Wrong shapes and unknown models.
    let (status, v) = c.json(
        "POST",
        "/v1/models/anti/predict",
        Some(json!({"u": [[1.0, 2.0]], "y": [0.5]})),
    );
    assert_eq!(status, 422);
    assert_eq!(v["error"]["where"]["field"], "u[0]");
    assert_eq!(
        c.json("POST", "/v1/models/nope/predict", Some(json!({}))).0,
        404
    );
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tokens_cancellation_and_restart() {
    let dir = results_dir("restart");
    // Beyond loopback only with a token.
    let mut open = config(&dir, None);
    open.addr = "0.0.0.0:0".parse().unwrap();
    assert!(matches!(
        Server::start(open),
        Err(phaseflow::serve::ServeError::InsecureBind(_))
    ));

    let server = Server::start(config(&dir, Some("s3cret"))).unwrap();
    let c = Client::new(&server, Some("s3cret"));
    let wrong = Client::new(&server, Some("guess"));
    let none = Client::new(&server, None);
    let (status, v) = wrong.json("POST", "/v1/simulate", Some(json!({"system": "lorenz"})));
    assert_eq!(status, 401);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wrong bearer token")
    );
    assert_eq!(none.json("GET", "/v1/jobs", None).0, 401);
    assert_eq!(none.json("GET", "/healthz", None).0, 200);

    let kept = c.submit(json!({"system": "lorenz", "n": 100, "save_every": 1000}));
    assert_eq!(c.wait(kept)["state"], "succeeded");
    let (_, before) = c.send("GET", &format!("/v1/jobs/{kept}/result"), None);
    let arch = antiderivative_arch(10);
    let params = DeepONetParams::init(&arch, Init::Glorot, 2).unwrap();
    let model = save_deeponet_bytes(&arch, &params, &[]).unwrap();
    assert_eq!(c.send("POST", "/v1/models?name=kept", Some(model)).0, 201);

    // A long job, cancelled while it runs.
    let long =
        c.submit(json!({"system": "lorenz", "n": 1_000_000, "tspan": [0, 100], "dt": 0.001}));
    let started = Instant::now();
    while c.json("GET", &format!("/v1/jobs/{long}"), None).1["state"] != "running" {
        assert!(started.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, v) = c.json("DELETE", &format!("/v1/jobs/{long}"), None);
    assert_eq!((status, v["state"].as_str()), (202, Some("cancelling")));
    let ended = c.wait(long);
    assert_eq!(ended["state"], "cancelled", "{ended}");
    assert_eq!(
        c.json("GET", &format!("/v1/jobs/{long}/result"), None).0,
        409
    );
    let started = Instant::now();
    loop {
        let (_, text) = c.send("GET", "/metrics", None);
        let text = String::from_utf8(text).unwrap();
        if text.contains("phaseflow_device_memory_reserved_bytes 0\n") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.stop();

    // What a crash mid-write leaves behind is removed at the next start.
    std::fs::create_dir_all(dir.join(".partial-77")).unwrap();
    std::fs::write(dir.join(".partial-77/states.npy"), b"half").unwrap();
    let server = Server::start(config(&dir, Some("s3cret"))).unwrap();
    let c = Client::new(&server, Some("s3cret"));
    assert!(!dir.join(".partial-77").exists());
    let (status, after) = c.send("GET", &format!("/v1/jobs/{kept}/result"), None);
    assert_eq!(status, 200);
    assert_eq!(after, before);
    assert_eq!(
        c.json("GET", &format!("/v1/jobs/{long}"), None).1["state"],
        "cancelled"
    );
    // Uploaded models are loaded again.
    let (_, models) = c.json("GET", "/v1/models", None);
    assert_eq!(models["models"][0]["name"], "kept", "{models}");
    assert_eq!(models["models"][0]["sensors"], 10);
    // New jobs get new ids.
    let next = c.submit(json!({"system": "lorenz", "n": 10}));
    assert!(next > long);
    // DELETE of a finished job removes its result.
    assert_eq!(c.json("DELETE", &format!("/v1/jobs/{kept}"), None).0, 200);
    assert_eq!(c.json("GET", &format!("/v1/jobs/{kept}"), None).0, 404);
    assert!(!dir.join(kept.to_string()).exists());
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn event_logs_over_http_equal_the_library() {
    let dir = results_dir("events");
    let server = Server::start(config(&dir, None)).unwrap();
    let c = Client::new(&server, None);
    // A system with its own events (impacts with a reset), and a section added by the spec.
    let ball = json!({"system": "bouncing_ball", "n": 20, "sweep": {"e": [0.5, 0.9]}, "tspan": [0, 5], "dt": 0.001, "events": 8});
    let section = json!({"system": "lorenz", "n": 30, "solver": "tsit5", "tspan": [0, 20], "section": "z = 27", "direction": "up", "transient": 5, "points": 16, "precision": "f64"});
    for (k, spec) in [ball, section].iter().enumerate() {
        let id = c.submit(spec.clone());
        let done = c.wait(id);
        assert_eq!(done["state"], "succeeded", "{done}");
        let want = library_run(spec);
        let log = want.events.as_ref().expect("a run with events has a log");
        let (status, npz) = c.send("GET", &format!("/v1/jobs/{id}/result"), None);
        assert_eq!(status, 200);
        let arrays = npz_arrays(&npz, &dir.join(format!("check-{k}")));
        let got = states_of(&arrays["events"]);
        assert_eq!(got.len(), log.records.len());
        let f32_run = k == 0;
        for (a, b) in got.iter().zip(&log.records) {
            let b = if f32_run { *b as f32 as f64 } else { *b };
            assert!(a == &b || (a.is_nan() && b.is_nan()), "{a} vs {b}");
        }
        let counts: Vec<f64> = log.counts.iter().map(|&c| c as f64).collect();
        assert_eq!(states_of(&arrays["event_counts"]), counts);
        assert!(
            counts.iter().all(|&c| c >= 2.0),
            "every trajectory fires: {counts:?}"
        );
        let fired: f64 = counts.iter().sum();
        assert_eq!(
            done["summary"]["events"]["fired"].as_f64(),
            Some(fired),
            "{done}"
        );

        // JSON: per trajectory only its recorded rows.
        let (status, js) = c.json("GET", &format!("/v1/jobs/{id}/result?format=json"), None);
        assert_eq!(status, 200);
        let rows = js["events"].as_array().unwrap();
        assert_eq!(rows.len(), log.len());
        for (j, r) in rows.iter().enumerate() {
            assert_eq!(r.as_array().unwrap().len(), log.recorded(j));
        }
        let (status, npy) = c.send(
            "GET",
            &format!("/v1/jobs/{id}/result?format=npy&array=event_counts"),
            None,
        );
        assert_eq!((status, &npy[..6]), (200, &b"\x93NUMPY"[..]));
    }
    // Event records count against the output limit, refused before any work, at the key.
    let (status, v) = c.json("POST", "/v1/simulate", Some(json!({"system": "lorenz", "n": 100000, "section": "z = 27", "points": 65536, "tspan": [0, 1]})));
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"]["where"]["field"], "points", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fewer event records"),
        "{v}"
    );
    // A system without events has no event arrays: 404 names the array.
    let id = c.submit(json!({"system": "lorenz", "n": 4, "tspan": [0, 0.1], "dt": 0.01}));
    assert_eq!(c.wait(id)["state"], "succeeded");
    let (status, body) = c.send(
        "GET",
        &format!("/v1/jobs/{id}/result?format=npy&array=events"),
        None,
    );
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("no array 'events'"));
}

/// Sensitivities over HTTP: an adaptive f64 and a fixed-step f32 job give the library's
/// states and S bit for bit (`sensitivities` [n_save, N, dim, n_sens] beside `states`), the
/// record names the targets, JSON nests S by save, trajectory, state and target, and a run
/// whose S would pass the output limit is refused at the key.
#[test]
fn sensitivities_over_http_equal_the_library() {
    let dir = results_dir("sensitivities");
    let server = Server::start(config(&dir, None)).unwrap();
    let c = Client::new(&server, None);
    let adaptive = json!({"system": "lorenz", "n": 16, "solver": "tsit5", "precision": "f64", "tspan": [0, 1], "saveat": 0.25, "sweep": {"rho": [20, 30]}, "sensitivities": ["rho", "x0"]});
    let fixed = json!({"system": "harmonic", "n": 8, "solver": "rk4", "tspan": [0, 2], "dt": 0.01, "save_every": 50, "sweep": {"w": [0.5, 2]}, "sensitivities": ["w"], "precision": "f32"});
    for (k, spec) in [adaptive, fixed].iter().enumerate() {
        let id = c.submit(spec.clone());
        let done = c.wait(id);
        assert_eq!(done["state"], "succeeded", "{done}");
        let names: Vec<String> = serde_json::from_value(spec["sensitivities"].clone()).unwrap();
        assert_eq!(done["summary"]["sensitivities"]["names"], json!(names));
        assert_eq!(
            done["summary"]["states"].as_array().unwrap().len(),
            if k == 0 { 3 } else { 2 }
        );

        let run_spec: RunSpec = serde_json::from_value(spec.clone()).unwrap();
        let problem = build_problem(&run_spec).unwrap();
        let want = phaseflow::spec::sensitivity_run(&run_spec, &problem)
            .unwrap()
            .unwrap()
            .simulate(common::gpu(), &RunOptions::default())
            .unwrap();
        let (status, npz) = c.send("GET", &format!("/v1/jobs/{id}/result"), None);
        assert_eq!(status, 200);
        let arrays = npz_arrays(&npz, &dir.join(format!("check-{k}")));
        let names_in_order: Vec<&String> = arrays.keys().collect();
        assert!(names_in_order.contains(&&"sensitivities".to_string()));
        let (dim, n_sens) = (problem.system().dim(), names.len());
        let n_save = want.solution.times.len();
        match &arrays["sensitivities"] {
            phaseflow::io::NpzValue::Array { shape, .. } => {
                assert_eq!(
                    shape,
                    &[n_save, spec["n"].as_u64().unwrap() as usize, dim, n_sens]
                )
            }
            other => panic!("{other:?}"),
        }
        let as_f64 = |v: &phaseflow::ode::StateValues| -> Vec<f64> {
            match v {
                phaseflow::ode::StateValues::F32(v) => v.iter().map(|&x| x as f64).collect(),
                phaseflow::ode::StateValues::F64(v) => v.clone(),
            }
        };
        assert_eq!(states_of(&arrays["states"]), as_f64(&want.solution.states));
        let s = states_of(&arrays["sensitivities"]);
        assert_eq!(s, as_f64(&want.sensitivities));
        assert!(s.iter().all(|x| x.is_finite()) && s.iter().any(|x| *x != 0.0));

        let (status, js) = c.json("GET", &format!("/v1/jobs/{id}/result?format=json"), None);
        assert_eq!(status, 200, "{js}");
        assert_eq!(js["sensitivity_names"], json!(names));
        let last = &js["sensitivities"][n_save - 1][1];
        assert_eq!(last.as_array().unwrap().len(), dim);
        let at = |save: usize, j: usize, i: usize, p: usize| {
            s[((save * spec["n"].as_u64().unwrap() as usize + j) * dim + i) * n_sens + p]
        };
        assert_eq!(
            last[dim - 1][n_sens - 1].as_f64(),
            Some(at(n_save - 1, 1, dim - 1, n_sens - 1))
        );
    }
    // S multiplies what a run returns; the refusal names the key that added it.
    let (status, v) = c.json("POST", "/v1/simulate", Some(json!({"system": "lorenz", "n": 200000, "tspan": [0, 1], "dt": 0.01, "save_every": 1, "sensitivities": ["rho", "sigma", "beta", "x0", "y0", "z0"]})));
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"]["where"]["field"], "sensitivities", "{v}");
}

/// Monte Carlo statistics over HTTP: the reducer's bits (the library's `MonteCarlo` sink
/// over the same run), the CLI's array names without `mc_`, JSON nested by shape, and
/// refusals at their key.
#[test]
fn monte_carlo_over_http_equals_the_reducer() {
    use phaseflow::ode::MonteCarlo;
    let dir = results_dir("monte-carlo");
    let server = Server::start(config(&dir, None)).unwrap();
    let c = Client::new(&server, None);
    let spec = json!({"system": "gbm", "n": 4000, "tspan": [0, 1], "dt": 0.01, "save_every": 25, "quantiles": [0.1, 0.5, 0.9]});
    let (status, v) = c.json("POST", "/v1/monte-carlo", Some(spec.clone()));
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_u64().unwrap();
    let done = c.wait(id);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["kind"], "monte-carlo");
    assert_eq!(done["summary"]["status"]["success"], 4000, "{done}");

    let mut run_spec: RunSpec = serde_json::from_value(spec.clone()).unwrap();
    run_spec.quantiles = None;
    let problem = build_problem(&run_spec).unwrap();
    let mut want = MonteCarlo::new(5, 1, &[0.1, 0.5, 0.9]);
    problem
        .run_into(common::gpu(), &RunOptions::default(), &mut want)
        .unwrap();
    let want = want.result();
    let (status, npz) = c.send("GET", &format!("/v1/jobs/{id}/result"), None);
    assert_eq!(status, 200);
    let got = npz_arrays(&npz, &dir.join("check"));
    assert_eq!(states_of(&got["mean"]), want.mean);
    assert_eq!(states_of(&got["var"]), want.var);
    assert_eq!(states_of(&got["quantiles"]), want.quantiles);
    let count: Vec<f64> = want.count.iter().map(|&c| c as f64).collect();
    assert_eq!(states_of(&got["count"]), count);
    assert_eq!(states_of(&got["levels"]), [0.1, 0.5, 0.9]);
    // E[S(1)] = e^0.05 for this geometric Brownian motion: within 4 standard errors.
    let (mean, se) = (want.mean[4], want.stderr[4]);
    assert!((mean - 0.05f64.exp()).abs() < 4.0 * se, "{mean} ± {se}");

    let (status, js) = c.json("GET", &format!("/v1/jobs/{id}/result?format=json"), None);
    assert_eq!(status, 200, "{js}");
    assert_eq!(js["shapes"]["quantiles"], json!([5, 3, 1]));
    assert_eq!(js["count"][4][0], json!(4000));

    for (body, field, words) in [
        (
            json!({"system": "gbm", "quantiles": [0.5, 2]}),
            "quantiles",
            "between 0 and 1",
        ),
        (
            json!({"system": "lorenz", "sensitivities": ["rho"]}),
            "sensitivities",
            "/v1/simulate",
        ),
        (
            json!({"system": "gbm", "outputs": ["montecarlo"]}),
            "outputs",
            "files on the server",
        ),
        (
            json!({"system": "lorenz", "lyapunov": {}}),
            "lyapunov",
            "lyapunov",
        ),
        (
            json!({"system": "lorenz", "n": 1_000_000, "dt": 0.001, "save_every": 1, "tspan": [0, 100]}),
            "save_every",
            "save less often",
        ),
        (
            json!({"system": "gbm", "n": 1_000_000_000_000u64}),
            "n",
            "limit of",
        ),
    ] {
        let (status, v) = c.json("POST", "/v1/monte-carlo", Some(body));
        assert_eq!(status, 422, "{field}: {v}");
        assert_eq!(v["error"]["where"]["field"], field, "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{field}: {message}");
    }
}

/// The analyses over HTTP: a Lyapunov and a basins job give the library's arrays (the
/// CLI's files, same names and shapes) and summaries; their tables' mistakes, a table sent
/// to the wrong endpoint, and an array a job does not have get 422 at the key.
#[test]
fn analyses_over_http_equal_the_library() {
    use phaseflow::ode::basins::run_basins;
    use phaseflow::ode::lyapunov::lyapunov_spectra;
    use phaseflow::ode::orbit::run_orbit_diagram;
    use phaseflow::spec::orbit::orbit_problem;
    use phaseflow::spec::{basins::basins_problem, load_system, lyapunov::lyapunov_problem};
    let dir = results_dir("analyses");
    let server = Server::start(config(&dir, None)).unwrap();
    let c = Client::new(&server, None);
    let post = |path: &str, body: Value| {
        let (status, v) = c.json("POST", path, Some(body));
        assert_eq!(status, 202, "{v}");
        v["id"].as_u64().unwrap()
    };

    let lyap = json!({"system": "lorenz", "n": 16, "sweep": {"rho": [20, 30]}, "dt": 0.01,
        "transient": 2, "lyapunov": {"time": 10, "k": 2}});
    let id = post("/v1/lyapunov", lyap.clone());
    let done = c.wait(id);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["kind"], "lyapunov");
    let spec: RunSpec = serde_json::from_value(lyap).unwrap();
    let problem = lyapunov_problem(load_system("lorenz").unwrap(), &spec).unwrap();
    let want = lyapunov_spectra(common::gpu(), &problem, &RunOptions::default()).unwrap();
    let (status, npz) = c.send("GET", &format!("/v1/jobs/{id}/result"), None);
    assert_eq!(status, 200);
    let arrays = npz_arrays(&npz, &dir.join("lyapunov"));
    let names: Vec<&str> = arrays.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["final", "lyapunov", "lyapunov_error", "params", "status"]
    );
    assert_eq!(states_of(&arrays["lyapunov"]), want.exponents);
    assert_eq!(states_of(&arrays["final"]), want.final_states);
    let rho: Vec<f64> = states_of(&arrays["params"])
        .chunks(3)
        .map(|p| p[1])
        .collect();
    assert_eq!((rho[0], rho[15]), (20.0, 30.0));
    // JSON: [n][k] nested, status as integers.
    let (status, js) = c.json("GET", &format!("/v1/jobs/{id}/result?format=json"), None);
    assert_eq!(status, 200, "{js}");
    assert_eq!(js["shapes"]["lyapunov"], json!([16, 2]));
    assert_eq!(js["lyapunov"][3][0].as_f64(), Some(want.exponents[6]));
    assert_eq!(js["status"][0], json!(1));
    // The summary is the CLI's --json, with the ensemble's keys.
    assert_eq!(
        done["summary"]["ensemble"]["sweep"]["rho"],
        json!([20, 30]),
        "{done}"
    );
    let (status, v) = c.json(
        "GET",
        &format!("/v1/jobs/{id}/result?format=npy&array=states"),
        None,
    );
    assert_eq!(status, 404, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("its arrays are lyapunov, lyapunov_error, status, params, final"),
        "{v}"
    );

    let well = "name = \"double_well\"\nstates = { x = 0.0, v = 0.0 }\nparameters = { delta = 0.2 }\nequations = \"\"\"\ndx = v\ndv = -delta*v + x - x^3\n\"\"\"\n";
    let basins = json!({"system": {"definition": well}, "tspan": [0, 100],
        "basins": {"grid": {"x": [-2, 2, 12], "v": [-2, 2, 10]}, "window": 10}});
    let id = post("/v1/basins", basins.clone());
    let done = c.wait(id);
    assert_eq!(done["state"], "succeeded", "{done}");
    let mut spec: RunSpec = serde_json::from_value(json!({"tspan": [0, 100],
        "basins": {"grid": {"x": [-2, 2, 12], "v": [-2, 2, 10]}, "window": 10}}))
    .unwrap();
    spec.system = None;
    let system =
        phaseflow::model::parse_system(&phaseflow::model::diagnostic::Source::new("well", well))
            .unwrap();
    let problem = basins_problem(system, &spec).unwrap();
    let want = run_basins(common::gpu(), &problem, &RunOptions::default()).unwrap();
    let (_, npz) = c.send("GET", &format!("/v1/jobs/{id}/result"), None);
    let arrays = npz_arrays(&npz, &dir.join("basins"));
    let labels: Vec<f64> = want.labels.iter().map(|&l| l as f64).collect();
    assert_eq!(states_of(&arrays["basins"]), labels);
    assert_eq!(
        done["summary"]["attractors"].as_array().map(Vec::len),
        Some(2),
        "{done}"
    );
    // The grid's first state is drawn across, in the order the body gives it: labels are
    // [NY, NX] = [v's count, x's count].
    match &arrays["basins"] {
        phaseflow::io::NpzValue::Array { shape, .. } => assert_eq!(shape, &[10, 12]),
        other => panic!("{other:?}"),
    }

    let orbit = json!({"system": "rossler", "n": 8, "sweep": {"c": [2, 6]}, "transient": 50,
        "points": 16, "orbit": {"maxima": "x", "time": 100}});
    let id = post("/v1/orbit-diagram", orbit.clone());
    let done = c.wait(id);
    assert_eq!(done["state"], "succeeded", "{done}");
    let spec: RunSpec = serde_json::from_value(orbit).unwrap();
    let problem = orbit_problem(load_system("rossler").unwrap(), &spec).unwrap();
    let want = run_orbit_diagram(common::gpu(), &problem, &RunOptions::default()).unwrap();
    let (_, npz) = c.send("GET", &format!("/v1/jobs/{id}/result"), None);
    let arrays = npz_arrays(&npz, &dir.join("orbit"));
    let got = states_of(&arrays["orbit"]);
    assert_eq!(got.len(), 8 * 16);
    for (j, points) in want.diagram.points.iter().enumerate() {
        assert!(!points.is_empty());
        assert_eq!(&got[j * 16..j * 16 + points.len()], &points[..]);
        assert!(
            got[j * 16 + points.len()..(j + 1) * 16]
                .iter()
                .all(|v| v.is_nan())
        );
    }
    let counts: Vec<f64> = want.counts.iter().map(|&c| c as f64).collect();
    assert_eq!(states_of(&arrays["counts"]), counts);

    // Mistakes, at their keys.
    for (path, body, field) in [
        (
            "/v1/lyapunov",
            json!({"system": "lorenz", "lyapunov": {"kk": 1}}),
            "lyapunov.kk",
        ),
        (
            "/v1/lyapunov",
            json!({"system": "lorenz", "lyapunov": {"k": 9}}),
            "lyapunov.k",
        ),
        (
            "/v1/lyapunov",
            json!({"system": "lorenz", "orbit": {}}),
            "orbit",
        ),
        (
            "/v1/lyapunov",
            json!({"system": "lorenz", "saveat": [1, 2]}),
            "saveat",
        ),
        (
            "/v1/simulate",
            json!({"system": "lorenz", "lyapunov": {}}),
            "lyapunov",
        ),
        (
            "/v1/orbit-diagram",
            json!({"system": "rossler", "sweep": {"c": [2, 6]}, "orbit": {"maxima": "w"}}),
            "orbit.maxima",
        ),
        (
            "/v1/orbit-diagram",
            json!({"system": "rossler", "n": 4, "sweep": {"c": [2, 6]}, "orbit": {"maxima": "x"}, "rtol": "x"}),
            "rtol",
        ),
        (
            "/v1/basins",
            json!({"system": "lorenz", "basins": {"grid": {"q": [0, 1, 4], "x": [0, 1, 4]}}}),
            "basins.grid.q",
        ),
        (
            "/v1/basins",
            json!({"system": "lorenz", "basins": {"grid": {"x": [0, 1, 4]}}}),
            "basins.grid",
        ),
        (
            "/v1/basins",
            json!({"system": "duffing", "tspan": [0, 10], "basins": {"grid": {"x": [-2, 2, 3], "v": [-2, 2, 3]}, "classify": "sign(q)"}}),
            "basins.classify",
        ),
    ] {
        let (status, v) = c.json("POST", path, Some(body.clone()));
        assert_eq!(status, 422, "{path} {body}: {v}");
        assert_eq!(v["error"]["where"]["field"], field, "{path} {body}: {v}");
    }
}
