//! Parameter estimation from Python: observations as NumPy arrays, the fitted quantities
//! as a dict, the model run as `simulate`'s keywords; the fits set up by the library's
//! `spec::estimate` (the CLI's checks and messages) and run by `ode::estimate` on the
//! engine's device, without the GIL, Ctrl-C cancelling between runs.

use crate::convert::{array_f64, matrix_f64, whole};
use crate::errors::{sim_error, spec_error_at};
use crate::run::{PyEngine, build, json_to_py};
use numpy::{IntoPyArray, PyArrayMethods};
use phaseflow::ode::RunOptions;
use phaseflow::ode::estimate::shared::{SharedEstimate, estimate_shared};
use phaseflow::ode::estimate::shooting::estimate_shooting;
use phaseflow::ode::estimate::{Estimate, EstimateError, EstimationProblem};
use phaseflow::spec::estimate::{
    FitData, FitInputError, FitRequest, NOT_FOR_FITS, check_segments, estimation_problem,
    prepare_run, settings_json,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

fn input_error(e: FitInputError) -> PyErr {
    spec_error_at(e.to_string(), Some(e.key.into()))
}

fn estimate_error(e: EstimateError) -> PyErr {
    match e {
        EstimateError::Input(m) => spec_error_at(m, None),
        EstimateError::Sensitivity(s) => spec_error_at(s.to_string(), Some("fit".into())),
        EstimateError::Sim(s) => sim_error(s),
        EstimateError::Cancelled => crate::errors::cancelled("the fits were cancelled"),
    }
}

/// Fits parameters and initial values to observations: one fit per trajectory, or one
/// shared by all (`shared`). Returns a dict of arrays (`phaseflow.estimate` wraps it).
#[pyfunction]
#[pyo3(signature = (
    system, observations, times, fit, *, engine, mask = None, start = None, weights = None,
    shared = false, segments = None, max_iterations = None, sensitivity_error = None, u0 = None,
    params = None, **options
))]
#[allow(clippy::too_many_arguments)]
pub fn estimate_fits<'py>(
    py: Python<'py>,
    system: &Bound<'py, PyAny>,
    observations: &Bound<'py, PyAny>,
    times: &Bound<'py, PyAny>,
    fit: &Bound<'py, PyDict>,
    engine: &PyEngine,
    mask: Option<&Bound<'py, PyAny>>,
    start: Option<&Bound<'py, PyAny>>,
    weights: Option<&Bound<'py, PyDict>>,
    shared: bool,
    segments: Option<&Bound<'py, PyAny>>,
    max_iterations: Option<&Bound<'py, PyAny>>,
    sensitivity_error: Option<String>,
    u0: Option<&Bound<'py, PyAny>>,
    params: Option<&Bound<'py, PyAny>>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let segments = match segments {
        Some(v) => whole(v, "segments", 0..=u32::MAX.into())? as usize,
        None => 1,
    };
    let max_iterations = max_iterations
        .map(|v| whole(v, "max_iterations", 0..=u32::MAX.into()).map(|n| n as u32))
        .transpose()?;
    if let Some(o) = options {
        for (key, why) in NOT_FOR_FITS {
            if o.contains(key)? {
                return Err(spec_error_at(
                    format!("{key} is not a key of a fit: {why}"),
                    Some(key.into()),
                ));
            }
        }
    }
    let data = FitData {
        observations: array_f64(observations, "observations", 3, "[N, n_obs, dim]")?,
        times: array_f64(times, "times", 1, "[n_obs]")?,
        mask: mask
            .map(|m| array_f64(m, "mask", 3, "[N, n_obs, dim]"))
            .transpose()?,
        start: start
            .map(|s| array_f64(s, "start", 2, "[N, n_fit]"))
            .transpose()?,
    };
    let request = FitRequest {
        fit: named_values(fit, "fit")?,
        weights: match weights {
            None => Vec::new(),
            Some(w) => named_values(w, "weights")?
                .into_iter()
                .map(|(name, v)| match v[..] {
                    [w] => Ok((name, w)),
                    _ => Err(spec_error_at(
                        format!("weights {name}: give one number, not {}", v.len()),
                        Some("weights".into()),
                    )),
                })
                .collect::<PyResult<_>>()?,
        },
        sensitivity_error,
        max_iterations,
        shared,
    };
    let u0 = u0.map(|a| matrix_f64(a, "u0")).transpose()?;
    let params = params.map(|a| matrix_f64(a, "params")).transpose()?;
    let (problem, _) = build(system, u0, params, options, &|spec| {
        prepare_run(spec, &data).map_err(input_error)
    })?;
    let ep = estimation_problem(problem, &request, data).map_err(input_error)?;
    ep.check().map_err(estimate_error)?;
    check_segments(segments, &ep, shared).map_err(input_error)?;
    let settings = settings_json(&ep, shared, segments);
    let outcome = run(py, engine, ep, shared, segments)?;
    let out = match outcome {
        Fits::Each(fits) => each_dict(py, fits)?,
        Fits::Shared(fit) => shared_dict(py, fit)?,
    };
    out.set_item("settings", json_to_py(py, &settings)?)?;
    Ok(out)
}

/// A dict of names to a number or a sequence of numbers, in the dict's order.
fn named_values(dict: &Bound<'_, PyDict>, key: &str) -> PyResult<Vec<(String, Vec<f64>)>> {
    let mut out = Vec::new();
    for (k, v) in dict.iter() {
        let name: String = k.extract().map_err(|_| {
            spec_error_at(
                format!("{key}: its keys are names (strings)"),
                Some(key.into()),
            )
        })?;
        let values = match v.extract::<f64>() {
            Ok(x) => vec![x],
            Err(_) => v.extract::<Vec<f64>>().map_err(|_| {
                spec_error_at(
                    format!("{key} {name}: give numbers, e.g. (low, high) or (low, high, start)"),
                    Some(key.into()),
                )
            })?,
        };
        out.push((name, values));
    }
    Ok(out)
}

enum Fits {
    Each(Estimate),
    Shared(SharedEstimate),
}

/// Runs the fits on the engine's device in a thread of their own; the caller waits
/// without the GIL, and Ctrl-C cancels them (between GPU submissions) and is re-raised.
fn run(
    py: Python<'_>,
    engine: &PyEngine,
    ep: EstimationProblem,
    shared: bool,
    segments: usize,
) -> PyResult<Fits> {
    let cancel = Arc::new(AtomicBool::new(false));
    let options = RunOptions {
        cancel: Some(cancel.clone()),
        ..RunOptions::default()
    };
    let engine = engine.engine().clone();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("phaseflow-py-estimate".into())
        .spawn(move || {
            let ctx = engine.context();
            let result = if shared {
                estimate_shared(ctx, &ep, &options).map(Fits::Shared)
            } else {
                estimate_shooting(ctx, &ep, segments, &options).map(Fits::Each)
            };
            let _ = tx.send(result);
        })
        .map_err(|e| crate::errors::run_error(format!("no thread to run the fits on: {e}")))?;
    let mut rx = rx;
    loop {
        // The receiver moves into the GIL-free closure and back (it is Send, not Sync).
        let (received, back) = py.detach(move || (rx.recv_timeout(Duration::from_millis(100)), rx));
        rx = back;
        match received {
            Ok(result) => return result.map_err(estimate_error),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(interrupt) = py.check_signals() {
                    cancel.store(true, Ordering::Relaxed);
                    let _ = py.detach(move || rx.recv());
                    return Err(interrupt);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(crate::errors::run_error(
                    "the fits' thread ended without a result".into(),
                ));
            }
        }
    }
}

fn each_dict(py: Python<'_>, fits: Estimate) -> PyResult<Bound<'_, PyDict>> {
    let (n, k) = (fits.status.len(), fits.n_fit());
    let stderr = fits.stderrs();
    let out = PyDict::new(py);
    out.set_item("names", fits.names)?;
    out.set_item("values", fits.values.into_pyarray(py).reshape([n, k])?)?;
    out.set_item("stderr", stderr.into_pyarray(py).reshape([n, k])?)?;
    out.set_item(
        "covariance",
        fits.covariance.into_pyarray(py).reshape([n, k, k])?,
    )?;
    out.set_item("cost", fits.cost.into_pyarray(py))?;
    out.set_item("iterations", fits.iterations.into_pyarray(py))?;
    let codes: Vec<u8> = fits.status.iter().map(|&s| s as u8).collect();
    out.set_item("status", codes.into_pyarray(py))?;
    let observed: Vec<u64> = fits.observed.iter().map(|&m| m as u64).collect();
    out.set_item("observed", observed.into_pyarray(py))?;
    out.set_item("runs", fits.runs)?;
    out.set_item("trajectory_runs", fits.trajectory_runs)?;
    out.set_item("solve_s", fits.solve.as_secs_f64())?;
    Ok(out)
}

fn shared_dict(py: Python<'_>, fit: SharedEstimate) -> PyResult<Bound<'_, PyDict>> {
    let k = fit.values.len();
    let stderr: Vec<f64> = (0..k).map(|c| fit.stderr(c)).collect();
    let out = PyDict::new(py);
    out.set_item("names", fit.names)?;
    out.set_item("values", fit.values.into_pyarray(py))?;
    out.set_item("stderr", stderr.into_pyarray(py))?;
    out.set_item(
        "covariance",
        fit.covariance.into_pyarray(py).reshape([k, k])?,
    )?;
    out.set_item("cost", fit.cost)?;
    out.set_item("trajectory_cost", fit.trajectory_cost.into_pyarray(py))?;
    out.set_item("iterations", fit.iterations)?;
    out.set_item("status", fit.status as u8)?;
    out.set_item("observed", fit.observed)?;
    out.set_item("failed_trajectory", fit.failed_trajectory)?;
    out.set_item("runs", fit.runs)?;
    out.set_item("trajectory_runs", fit.trajectory_runs)?;
    out.set_item("solve_s", fit.solve.as_secs_f64())?;
    Ok(out)
}
