//! Fuzzing the HTTP run spec in-process (issue 22, item 9): generated JSON bodies go
//! through what `POST /v1/simulate` and `POST /v1/models/NAME/predict` do before anything is
//! queued (JSON parsing, run-spec deserialization, problem building, the size of the
//! results), never over a socket. Every input must give `Ok` or a clean 4xx error; an error
//! that names a field names a key of the request (a JSON path), never the bad value.
//! `PHASEFLOW_FUZZ_CASES=N` runs N inputs per property (`make fuzz`).

mod common;

use phaseflow::engine::Engine;
use phaseflow::nn::deeponet::data::antiderivative_arch;
use phaseflow::serve::estimate::estimate_request;
use phaseflow::serve::montecarlo::monte_carlo_request;
use phaseflow::serve::request::{json_body, prediction_inputs, simulate_problem};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Keys a run spec has, plus the server's own and a few it must refuse.
const KEYS: &[&str] = &[
    "system",
    "n",
    "solver",
    "tspan",
    "dt",
    "fixed_step",
    "save_every",
    "seed",
    "set",
    "param",
    "sweep",
    "u0",
    "precision",
    "rtol",
    "atol",
    "dtmin",
    "dtmax",
    "max_steps",
    "safety",
    "max_growth",
    "max_shrink",
    "saveat",
    "outputs",
    "out",
    "params_file",
    "inputs_file",
    "definition",
    "uniform",
    "grid",
    "perturb",
    "file",
    "x",
    "y",
    "z",
    "rho",
    "sigma",
    "beta",
    "mu",
    "colour",
    "sensitivities",
    "sensitivity_error",
    "observations",
    "times",
    "fit",
    "mask",
    "start",
    "weights",
    "shared",
    "segments",
    "max_iterations",
    "quantiles",
];

/// Valid requests the mutations start from.
fn seeds() -> Vec<Value> {
    vec![
        json!({"system": "lorenz", "n": 100, "sweep": {"rho": [0, 40]}, "tspan": [0, 2], "dt": 0.001, "save_every": 250}),
        json!({"system": "van_der_pol", "n": 50, "solver": "tsit5", "rtol": 1e-7, "atol": 1e-7, "saveat": "0:0.5:5", "tspan": [0, 5], "u0": {"uniform": {"x": [-2, 2]}}, "seed": 7}),
        json!({"system": "lorenz", "n": 9, "u0": {"grid": {"x": [0, 1, 3], "y": [0, 1, 3]}}, "param": {"sigma": 9}, "set": {"z": 1}}),
        json!({"system": {"definition": "name = \"decay\"\nstates = { x = 1.0 }\nparameters = { k = 1.0 }\nequations = \"\"\"\ndx = -k * x\n\"\"\"\n"}, "n": 4, "tspan": [0, 1], "dt": 0.1}),
        json!({"system": "rossler", "n": 3, "solver": "dp5", "saveat": [0, 0.5, 1], "tspan": [0, 1], "rtol": {"x": 1e-6, "*": 1e-5}, "precision": "f64"}),
        json!({"system": "lorenz", "n": 8, "solver": "tsit5", "tspan": [0, 1], "saveat": "0:0.25:1", "sensitivities": ["rho", "x0"], "sensitivity_error": "exclude"}),
    ]
}

/// Valid estimate requests the mutations start from.
fn estimate_seeds() -> Vec<Value> {
    vec![
        json!({"system": "lorenz", "observations": [[[1, 2, 3], [null, 2.5, 3.5]], [[1.1, 2, 3], [1, 2, 3]]], "times": [0.1, 0.2], "fit": {"rho": [1, 60], "x0": [-5, 5, 1]}, "weights": {"z": 0.5}, "max_iterations": 5}),
        json!({"system": "harmonic", "observations": [[[1, 0], [0.5, -0.8], [0, -1], [-0.5, -0.8]]], "times": [0.5, 1, 1.5, 2], "fit": {"w": [0.1, 3]}, "segments": 2, "mask": [[[1, 1], [1, 0], [1, 1], [0, 1]]], "start": [[1.0]]}),
        json!({"system": "van_der_pol", "n": 2, "observations": [[[1, 1]], [[2, 1]]], "times": [1], "fit": {"mu": [0, 3]}, "shared": true, "solver": "rk4", "dt": 0.01}),
    ]
}

/// Leaves chosen to hurt: huge, tiny, negative, NaN-like strings, wrong types.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |x| x.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(1e-300),
            Just(1e300),
            Just(-1e308),
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            Just(1e-9),
            Just(4294967296.0)
        ]
        .prop_map(Value::from),
        prop_oneof![
            Just("NaN"),
            Just("nan"),
            Just("inf"),
            Just("-Infinity"),
            Just("1e999"),
            Just("0:1e-12:1"),
            Just("0:0:1"),
            Just("1:-1:0"),
            Just("0:1:1e300"),
            Just("lorenz"),
            Just("rk4"),
            Just("tsit5"),
            Just("f64"),
            Just("states"),
            Just(""),
        ]
        .prop_map(Value::from),
        "[a-z_:0-9.\\-]{0,12}".prop_map(Value::from),
    ]
}

/// Any JSON value, nested a few levels, with keys mostly a run spec's.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_string),
        1 => "[a-z_]{1,8}",
    ];
    leaf().prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A valid request with one to three changes: a key replaced, removed or added.
fn mutated_spec() -> impl Strategy<Value = Value> {
    mutated(seeds())
}

fn mutated(seeds: Vec<Value>) -> impl Strategy<Value = Value> {
    let change = (
        proptest::sample::select(KEYS),
        0..3u8,
        json_value(),
        proptest::option::of(proptest::sample::select(KEYS)),
    );
    (
        proptest::sample::select(seeds),
        proptest::collection::vec(change, 1..4),
    )
        .prop_map(|(mut spec, changes)| {
            for (key, how, value, inner) in changes {
                let map = spec.as_object_mut().unwrap();
                match (how, inner) {
                    // Replace (or add) a top-level key, or one key inside an object.
                    (0, Some(k)) if map.get(key).is_some_and(Value::is_object) => {
                        map.get_mut(key).unwrap()[k] = value;
                    }
                    (0 | 1, _) => {
                        map.insert(key.to_string(), value);
                    }
                    _ => {
                        map.remove(key);
                    }
                }
            }
            spec
        })
}

/// What the server does with a simulate body before queueing it; panics if anything is
/// not a clean refusal.
fn check_simulate(body: &[u8]) {
    let Ok(request) = json_body(body) else {
        return;
    };
    let checked = simulate_problem(request.clone()).map(|problem| {
        // The size check the server makes before accepting must not blow up either.
        let _ = Engine::result_bytes(problem.run_problem());
    });
    check_refusal(&request, checked);
}

/// What the server does with an estimate body before queueing it.
fn check_estimate(body: &[u8]) {
    let Ok(request) = json_body(body) else {
        return;
    };
    let checked = estimate_request(request.clone()).map(|fits| {
        let _ = fits.result_bytes();
    });
    check_refusal(&request, checked);
}

/// What the server does with a Monte Carlo body before queueing it.
fn check_monte_carlo(body: &[u8]) {
    let Ok(request) = json_body(body) else {
        return;
    };
    let checked = monte_carlo_request(request.clone()).and_then(|mc| mc.result_bytes().map(|_| ()));
    check_refusal(&request, checked);
}

/// A refusal is a 4xx with a message, and the field it names is a key of the request.
fn check_refusal(request: &Value, checked: Result<(), phaseflow::serve::error::ApiError>) {
    match checked {
        Ok(()) => {}
        Err(e) => {
            assert!(
                (400..500).contains(&e.status.as_u16()),
                "{}: {}",
                e.status,
                e.message
            );
            assert!(!e.message.is_empty());
            if let Some(field) = e.at.as_ref().and_then(|a| a.get("field")) {
                let field = field.as_str().expect("where.field is a string");
                let head = field
                    .split(['.', '['])
                    .next()
                    .expect("a path has a first key");
                let known = KEYS.contains(&head)
                    || request.get(head).is_some()
                    || ["system", "u", "y"].contains(&head);
                assert!(known, "where.field '{field}' is no key of {request}");
            }
        }
    }
}

proptest! {
    #![proptest_config(common::fuzz::config(2000))]

    #[test]
    fn any_json_body_is_accepted_or_refused_cleanly(v in json_value()) {
        check_simulate(v.to_string().as_bytes());
    }

    #[test]
    fn mutated_run_specs_are_accepted_or_refused_cleanly(v in mutated_spec()) {
        check_simulate(v.to_string().as_bytes());
    }

    #[test]
    fn mutated_estimate_bodies_are_accepted_or_refused_cleanly(v in mutated(estimate_seeds())) {
        check_estimate(v.to_string().as_bytes());
    }

    #[test]
    fn mutated_monte_carlo_bodies_are_accepted_or_refused_cleanly(v in mutated(seeds())) {
        check_monte_carlo(v.to_string().as_bytes());
    }

    #[test]
    fn any_json_estimate_body_is_accepted_or_refused_cleanly(v in json_value()) {
        check_estimate(v.to_string().as_bytes());
    }

    #[test]
    fn deeply_nested_json_is_refused_cleanly(depth in 1usize..20_000, object in any::<bool>()) {
        let (open, close) = if object { ("{\"n\":", "}") } else { ("[", "]") };
        let body = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        check_simulate(body.as_bytes());
        let wrapped = format!("{{\"system\": \"lorenz\", \"sweep\": {body}}}");
        check_simulate(wrapped.as_bytes());
    }

    #[test]
    fn raw_bytes_are_refused_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_simulate(&bytes);
    }

    #[test]
    fn prediction_bodies_are_accepted_or_refused_cleanly(
        u in json_value(),
        y in json_value(),
    ) {
        let arch = antiderivative_arch(4);
        let body = json!({"u": u, "y": y});
        match prediction_inputs(&body, &arch) {
            Ok((u, y)) => {
                prop_assert_eq!(u.data.len(), u.rows * 4);
                prop_assert_eq!(y.data.len(), y.rows);
                prop_assert!(u.data.iter().chain(&y.data).all(|x| (*x as f32).is_finite()));
            }
            Err(e) => {
                prop_assert_eq!(e.status.as_u16(), 422);
                let field = e.at.as_ref().and_then(|a| a["field"].as_str()).unwrap_or("");
                prop_assert!(field.starts_with('u') || field.starts_with('y'), "{}", field);
            }
        }
    }
}

/// Requests whose results would be huge are refused before anything of that size is
/// allocated (the server checks their size before accepting them).
#[test]
fn huge_save_grids_are_refused_before_allocating() {
    for spec in [
        json!({"system": "van_der_pol", "n": 1, "solver": "tsit5", "saveat": "0:1e-12:1", "tspan": [0, 1]}),
        json!({"system": "van_der_pol", "n": 1, "solver": "tsit5", "saveat": "0:1e-9:1", "tspan": [0, 1]}),
        json!({"system": "lorenz", "n": 1, "tspan": [0, 1e12], "dt": 1e-9, "save_every": 1}),
        json!({"system": "lorenz", "n": 1, "tspan": [0, 1], "dt": 1e-12, "save_every": 1}),
    ] {
        check_simulate(spec.to_string().as_bytes());
    }
}

/// The seeds are valid requests, so the mutations start from bodies that get through.
#[test]
fn the_seeds_are_accepted() {
    for seed in seeds() {
        assert!(simulate_problem(seed.clone()).is_ok(), "{seed}");
    }
    for seed in estimate_seeds() {
        if let Err(e) = estimate_request(seed.clone()) {
            panic!("{seed}: {}", e.message);
        }
    }
}
