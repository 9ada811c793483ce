//! `POST /v1/estimate` over real HTTP: per-trajectory, multiple-shooting and shared fits
//! give the library's arrays bit for bit, the record carries the settings and status
//! counts, and every bad input gets a 422 at its key before any work.

mod common;

use common::gpu;
use common::server::{Client, npz_arrays, results_dir, states_of};
use phaseflow::ode::estimate::shared::estimate_shared;
use phaseflow::ode::estimate::shooting::estimate_shooting;
use phaseflow::ode::estimate::{EstimationProblem, FitStatus};
use phaseflow::ode::{Problem, RunOptions, SaveAt};
use phaseflow::rng::normal_f64;
use phaseflow::serve::{Limits, Server};
use phaseflow::spec::estimate::{Array, FitData, FitRequest, estimation_problem, prepare_run};
use phaseflow::spec::{RunSpec, build_problem};
use serde_json::{Value, json};

const N: usize = 12;
const N_OBS: usize = 40;

/// [N][n_obs][dim], None where not observed (JSON null).
type Observed = Vec<Vec<Vec<Option<f64>>>>;

/// Lorenz runs with rho = 22 + j (sigma, beta at their defaults), observed at 40 times in
/// (0, 1] with noise sd 0.05; one value in seven missing (None).
fn observations(rho: impl Fn(usize) -> f64) -> (Vec<f64>, Observed) {
    let times: Vec<f64> = (1..=N_OBS).map(|k| k as f64 / N_OBS as f64).collect();
    let spec: RunSpec = serde_json::from_value(json!({
        "system": "lorenz", "n": N, "solver": "tsit5", "precision": "f64",
        "tspan": [0, 1], "rtol": 1e-10, "atol": 1e-10,
    }))
    .unwrap();
    let mut problem = build_problem(&spec).unwrap();
    let Problem::Adaptive(a) = &mut problem else {
        panic!("adaptive")
    };
    let rows: Vec<f64> = (0..N).flat_map(|j| [10.0, rho(j), 8.0 / 3.0]).collect();
    a.ensemble.params = phaseflow::ode::Parameters::Table(phaseflow::ode::Table {
        data: rows,
        rows: N,
        cols: 3,
        origin: "truth".into(),
    });
    a.saveat = SaveAt::Times(times.clone());
    let sol = problem.simulate(gpu(), &RunOptions::default()).unwrap();
    let values = (0..N)
        .map(|j| {
            (0..N_OBS)
                .map(|o| {
                    let u = sol.state(o, j);
                    (0..3)
                        .map(|i| {
                            let k = ((j * N_OBS + o) * 3 + i) as u64;
                            ((j + o + i) % 7 != 3).then(|| u[i] + 0.05 * normal_f64(3, k, 1))
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    (times, values)
}

/// The fits a body describes, built by the library as the CLI builds them.
fn library_problem(body: &Value, times: &[f64], values: &Observed) -> EstimationProblem {
    let mut spec: RunSpec = serde_json::from_value(json!({"system": "lorenz"})).unwrap();
    if let Some(p) = body.get("precision") {
        spec.precision = serde_json::from_value(p.clone()).unwrap();
    }
    let data = FitData {
        observations: Array {
            shape: vec![N, N_OBS, 3],
            data: values
                .iter()
                .flatten()
                .flatten()
                .map(|v| v.unwrap_or(f64::NAN))
                .collect(),
        },
        times: Array {
            shape: vec![N_OBS],
            data: times.to_vec(),
        },
        mask: None,
        start: None,
    };
    prepare_run(&mut spec, &data).unwrap();
    let base = build_problem(&spec).unwrap();
    let fit = body["fit"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::from_value(v.clone()).unwrap()))
        .collect();
    let request = FitRequest {
        fit,
        shared: body.get("shared").is_some_and(|s| s == true),
        ..FitRequest::default()
    };
    estimation_problem(base, &request, data).unwrap()
}

fn array(
    arrays: &std::collections::BTreeMap<String, phaseflow::io::NpzValue>,
    name: &str,
) -> Vec<f64> {
    states_of(&arrays[name])
}

#[test]
fn fits_over_http_equal_the_library() {
    let dir = results_dir("estimate");
    let limits = Limits {
        max_body_bytes: 1 << 20,
        ..Limits::default()
    };
    let server = Server::start(common::server::config(&dir, None, limits)).unwrap();
    let c = Client::new(&server, None);
    let (times, values) = observations(|j| 22.0 + j as f64);
    let base = json!({"system": "lorenz", "observations": values, "times": times, "fit": {"rho": [10, 40], "beta": [1, 4]}});

    // One fit per trajectory, then two shooting segments each.
    for segments in [1usize, 2] {
        let mut body = base.clone();
        body["segments"] = json!(segments);
        let (status, v) = c.json("POST", "/v1/estimate", Some(body.clone()));
        assert_eq!(status, 202, "{v}");
        let id = v["id"].as_u64().unwrap();
        let done = c.wait(id);
        assert_eq!(done["state"], "succeeded", "{done}");
        assert_eq!(done["kind"], "estimate");
        let summary = &done["summary"];
        assert_eq!(summary["fitted"], json!(["rho", "beta"]), "{done}");
        assert_eq!(summary["segments"], json!(segments));
        assert_eq!(summary["solver"], "tsit5");
        assert_eq!(summary["status"]["converged"], json!(N), "{done}");
        assert_eq!(
            done["progress"]["done"], done["progress"]["total"],
            "{done}"
        );

        let ep = library_problem(&body, &times, &values);
        let want = estimate_shooting(gpu(), &ep, segments, &RunOptions::default()).unwrap();
        let (status, npz) = c.send("GET", &format!("/v1/jobs/{id}/result"), None);
        assert_eq!(status, 200);
        let got = npz_arrays(&npz, &dir.join(format!("check-{segments}")));
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            [
                "cost",
                "covariance",
                "estimates",
                "fit_status",
                "iterations",
                "stderr"
            ]
        );
        assert_eq!(array(&got, "estimates"), want.values);
        assert_eq!(array(&got, "stderr"), want.stderrs());
        assert_eq!(array(&got, "cost"), want.cost);
        let iterations: Vec<f64> = want.iterations.iter().map(|&i| i as f64).collect();
        assert_eq!(array(&got, "iterations"), iterations);
        assert!(want.status.iter().all(|s| *s == FitStatus::Converged));
        // The truth within a few standard errors: the fits are real.
        for j in 0..N {
            let (rho, se) = (want.values[2 * j], want.stderr(j, 0));
            assert!(
                (rho - (22.0 + j as f64)).abs() < 5.0 * se + 1e-3,
                "{j}: {rho} ± {se}"
            );
        }

        let (status, js) = c.json("GET", &format!("/v1/jobs/{id}/result?format=json"), None);
        assert_eq!(status, 200, "{js}");
        assert_eq!(js["shapes"]["covariance"], json!([N, 2, 2]));
        assert_eq!(js["estimates"][3][0].as_f64(), Some(want.values[6]));
        assert_eq!(js["fit_status"][0], json!(FitStatus::Converged as u8));
    }

    // One shared set fitted to runs that share rho = 28.
    let (times, values) = observations(|_| 28.0);
    let mut body = base.clone();
    body["observations"] = json!(values);
    body["shared"] = json!(true);
    let (status, v) = c.json("POST", "/v1/estimate", Some(body.clone()));
    assert_eq!(status, 202, "{v}");
    let done = c.wait(v["id"].as_u64().unwrap());
    assert_eq!(done["state"], "succeeded", "{done}");
    let ep = library_problem(&body, &times, &values);
    let want = estimate_shared(gpu(), &ep, &RunOptions::default()).unwrap();
    assert_eq!(done["summary"]["status"], "converged", "{done}");
    assert_eq!(done["summary"]["estimates"], json!(want.values));
    assert!(
        (want.values[0] - 28.0).abs() < 3.0 * want.stderr(0),
        "{:?}",
        want.values
    );
    let (status, npz) = c.send("GET", &format!("/v1/jobs/{}/result", v["id"]), None);
    assert_eq!(status, 200);
    let got = npz_arrays(&npz, &dir.join("check-shared"));
    assert_eq!(array(&got, "trajectory_cost"), want.trajectory_cost);
    assert_eq!(array(&got, "covariance"), want.covariance);

    // Bad inputs: 422 at the key, nothing queued.
    let with = |key: &str, value: Value| {
        let mut b = base.clone();
        b[key] = value;
        b
    };
    let without = |key: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(key);
        b
    };
    let mut ragged = values.clone();
    ragged[1].pop();
    let cases = [
        (without("observations"), "observations", "no 'observations'"),
        (without("fit"), "fit", "no 'fit'"),
        (
            with("observations", json!(ragged)),
            "observations[1]",
            "rectangular",
        ),
        (
            with("observations", json!([[1, 2, 3]])),
            "observations",
            "depth 2",
        ),
        (
            with("times", json!([0.1, null])),
            "times[1]",
            "not a number",
        ),
        (with("times", json!([0.5])), "times", "[40]"),
        (
            with(
                "times",
                json!((0..40).map(|i| 1.0 - i as f64 / 40.0).collect::<Vec<_>>()),
            ),
            "times",
            "must increase",
        ),
        (
            with("weights", json!({"x": 0, "y": 0, "z": 0})),
            "weights",
            "0 for every state",
        ),
        (
            with("fit", json!({"rho": [0.0, 1e300, 2e300]})),
            "fit",
            "(got 0:1e300:2e300)",
        ),
        (with("fit", json!({"rhoo": [1, 2]})), "fit", "rhoo"),
        (with("fit", json!({"rho": [40, 10]})), "fit", "LO < HI"),
        (with("fit", json!({"rho": "wide"})), "fit.rho", "number"),
        (with("fit", json!({})), "fit", "names nothing"),
        (
            with("weights", json!({"w": 1})),
            "weights",
            "'w' is not a state",
        ),
        (with("segments", json!(0)), "segments", "at least 1"),
        (with("segments", json!(-2)), "segments", "whole number"),
        (with("segments", json!(100)), "segments", "at most 20"),
        (with("shared", json!("yes")), "shared", "true or false"),
        (with("start", json!([[1, 2]])), "start", "[N, n_fit]"),
        (with("saveat", json!([0.5])), "saveat", "observation times"),
        (
            with("sensitivities", json!(["rho"])),
            "sensitivities",
            "not a key of a fit",
        ),
        (
            with("quantiles", json!([0.5])),
            "quantiles",
            "not a key of a fit",
        ),
        (
            with("sensitivity_error", json!("sideways")),
            "sensitivity_error",
            "include or exclude",
        ),
        (with("solvr", json!("rk4")), "solvr", "unknown field"),
        (
            with("params_file", json!("/etc/passwd")),
            "params_file",
            "files on the server",
        ),
        (with("n", json!(3)), "n", "hold 12 trajectories"),
    ];
    let jobs_before = c.json("GET", "/v1/jobs", None).1;
    for (body, field, words) in cases {
        let (status, v) = c.json("POST", "/v1/estimate", Some(body));
        assert_eq!(status, 422, "{field}: {v}");
        assert_eq!(v["error"]["where"]["field"], field, "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{field}: {message}");
    }
    // Many segments: each fit's unknowns (and their dense normal equations) are bounded
    // before any work, however few the trajectories.
    let long = json!({"system": "lorenz", "observations": [vec![[0.0, 0.0, 0.0]; 600]],
        "times": (1..=600).map(|k| k as f64 * 1e-3).collect::<Vec<_>>(),
        "fit": {"rho": [1, 2]}, "segments": 200});
    let (status, v) = c.json("POST", "/v1/estimate", Some(long));
    assert_eq!(
        (status, &v["error"]["where"]["field"]),
        (422, &json!("segments")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("598 unknowns"),
        "{v}"
    );
    let mut both = base.clone();
    both["shared"] = json!(true);
    both["segments"] = json!(2);
    let (status, v) = c.json("POST", "/v1/estimate", Some(both));
    assert_eq!(
        (status, &v["error"]["where"]["field"]),
        (422, &json!("segments")),
        "{v}"
    );
    assert_eq!(c.json("GET", "/v1/jobs", None).1, jobs_before);
    server.stop();
}
