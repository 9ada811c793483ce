//! `POST /v1/estimate`: parameter estimation as a job. A body has the keys of a run config
//! for the model run (system, solver, tolerances, `sweep`/`set` for what is not fitted,
//! ...) and the fit's own keys, with the data inline:
//! `observations` [N][n_obs][dim] (`null` marks a value not observed), `times` [n_obs],
//! optional `mask` (the observations' shape, 0 not observed) and `start` [N][n_fit], `fit`
//! (`{"rho": [lo, hi] | [lo, hi, start], ...}` in fitting order), `weights` (`{"x": 0.5}`),
//! `shared`, `segments`, `max_iterations` and `sensitivity_error`. They are checked by the
//! library's `spec::estimate`, as the CLI's flags and Python's keywords are, and a finished
//! job keeps the arrays `phaseflow estimate -o` writes.

use super::error::ApiError;
use super::request::{run_spec, spec_api_error};
use super::results::{Finished, npy};
use crate::engine::{FitMode, Fitted, estimate_result_bytes};
use crate::io::Dtype;
use crate::ode::estimate::EstimationProblem;
use crate::spec::estimate::{
    Array, FitData, FitInputError, FitRequest, NOT_FOR_FITS, check_segments, estimation_problem,
    prepare_run, settings_json,
};
use crate::spec::problem_for_system;
use serde_json::{Map, Value, json};

/// A checked estimate request: the fits, how they are made, and their settings as resolved.
pub struct EstimateRequest {
    pub problem: EstimationProblem,
    pub mode: FitMode,
    pub settings: Value,
}

impl EstimateRequest {
    pub fn result_bytes(&self) -> u64 {
        estimate_result_bytes(&self.problem)
    }
}

fn input_error(e: FitInputError) -> ApiError {
    ApiError::invalid(e.to_string()).field(e.key)
}

/// A nested list of numbers of rank `rank` as an array; `null` reads as NaN where
/// `missing` allows it. The list must be rectangular.
fn array(
    value: Value,
    key: &str,
    rank: usize,
    layout: &str,
    missing: bool,
) -> Result<Array, ApiError> {
    let bad = |at: &str, m: String| ApiError::invalid(m).field(at);
    let mut shape: Vec<usize> = Vec::with_capacity(rank);
    // The shape from the first element at each depth.
    let mut probe = &value;
    for depth in 0..rank {
        let list = probe.as_array().ok_or_else(|| {
            let found = match probe {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                _ => "an object",
            };
            bad(
                key,
                format!(
                    "'{key}' must be lists nested {rank} deep ({layout}); at depth {depth} there \
                     is {found}, not a list"
                ),
            )
        })?;
        if list.is_empty() {
            return Err(bad(
                key,
                format!("'{key}' has an empty list at depth {depth}; it needs {layout}"),
            ));
        }
        shape.push(list.len());
        probe = &list[0];
    }
    let mut data = Vec::with_capacity(shape.iter().product());
    // Depth-first over the rank levels, checking every list against the shape.
    fn walk(
        v: &Value,
        depth: usize,
        shape: &[usize],
        at: &mut String,
        missing: bool,
        data: &mut Vec<f64>,
    ) -> Result<(), ApiError> {
        if depth == shape.len() {
            return match v {
                Value::Number(x) => {
                    let x = x.as_f64().unwrap_or(f64::NAN);
                    data.push(x);
                    Ok(())
                }
                Value::Null if missing => {
                    data.push(f64::NAN);
                    Ok(())
                }
                _ => Err(ApiError::invalid(format!(
                    "{at} is not a number{}",
                    if missing { " or null" } else { "" }
                ))
                .field(at)),
            };
        }
        let Some(list) = v.as_array().filter(|l| l.len() == shape[depth]) else {
            return Err(ApiError::invalid(format!(
                "{at} is not a list of {} (the lists must be rectangular, shape {shape:?})",
                shape[depth]
            ))
            .field(at));
        };
        for (i, item) in list.iter().enumerate() {
            let len = at.len();
            at.push_str(&format!("[{i}]"));
            walk(item, depth + 1, shape, at, missing, data)?;
            at.truncate(len);
        }
        Ok(())
    }
    let mut at = key.to_string();
    walk(&value, 0, &shape, &mut at, missing, &mut data)?;
    Ok(Array { shape, data })
}

/// `{"name": [numbers] | number, ...}` in the order sent.
fn named_values(value: Value, key: &str) -> Result<Vec<(String, Vec<f64>)>, ApiError> {
    let Value::Object(map) = value else {
        return Err(ApiError::invalid(format!(
            "'{key}' must be an object of names to numbers, e.g. {{\"rho\": [1, 60]}}"
        ))
        .field(key));
    };
    let mut out = Vec::new();
    for (name, v) in map {
        let at = format!("{key}.{name}");
        let numbers = match &v {
            Value::Number(x) => vec![x.as_f64().unwrap_or(f64::NAN)],
            Value::Array(list) => list
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    x.as_f64().ok_or_else(|| {
                        ApiError::invalid(format!("{at}[{i}] is not a number"))
                            .field(&format!("{at}[{i}]"))
                    })
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(ApiError::invalid(format!(
                    "{at} must be a number or a list of numbers"
                ))
                .field(&at));
            }
        };
        out.push((name, numbers));
    }
    Ok(out)
}

fn take<T: serde::de::DeserializeOwned>(
    map: &mut Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Option<T>, ApiError> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("'{key}' must be {what}")).field(key)),
    }
}

/// The body as checked fits.
pub fn estimate_request(mut body: Value) -> Result<EstimateRequest, ApiError> {
    let map = body
        .as_object_mut()
        .ok_or_else(|| ApiError::invalid("the body must be a JSON object"))?;
    for (key, why) in NOT_FOR_FITS {
        if map.contains_key(key) {
            return Err(
                ApiError::invalid(format!("'{key}' is not a key of a fit: {why}")).field(key),
            );
        }
    }
    let required = |map: &mut Map<String, Value>, key: &str, what: &str| {
        map.remove(key).ok_or_else(|| {
            ApiError::invalid(format!("no '{key}' given: a fit needs {what}")).field(key)
        })
    };
    let observations = required(map, "observations", "the observed values [N][n_obs][dim]")?;
    let times = required(map, "times", "the observation times [n_obs]")?;
    let fit = required(
        map,
        "fit",
        "the quantities to fit with their bounds, e.g. {\"rho\": [1, 60]}",
    )?;
    let data = FitData {
        observations: array(observations, "observations", 3, "[N][n_obs][dim]", true)?,
        times: array(times, "times", 1, "[n_obs]", false)?,
        mask: map
            .remove("mask")
            .map(|m| array(m, "mask", 3, "[N][n_obs][dim]", false))
            .transpose()?,
        start: map
            .remove("start")
            .map(|s| array(s, "start", 2, "[N][n_fit]", false))
            .transpose()?,
    };
    let weights = match map.remove("weights") {
        None => Vec::new(),
        Some(w) => named_values(w, "weights")?
            .into_iter()
            .map(|(name, v)| match v[..] {
                [w] => Ok((name, w)),
                _ => Err(ApiError::invalid(format!(
                    "weights.{name}: give one number, not {}",
                    v.len()
                ))
                .field(&format!("weights.{name}"))),
            })
            .collect::<Result<_, _>>()?,
    };
    let shared = take::<bool>(map, "shared", "true or false")?.unwrap_or(false);
    let segments = take::<usize>(map, "segments", "a whole number of at least 1")?.unwrap_or(1);
    let request = FitRequest {
        fit: named_values(fit, "fit")?,
        weights,
        sensitivity_error: take(map, "sensitivity_error", "\"include\" or \"exclude\"")?,
        max_iterations: take(map, "max_iterations", "a whole number")?,
        shared,
    };
    let (system, mut spec) = run_spec(body)?;
    prepare_run(&mut spec, &data).map_err(input_error)?;
    spec.only_analysis(None).map_err(spec_api_error)?;
    let base = problem_for_system(system, &spec).map_err(spec_api_error)?;
    let problem = estimation_problem(base, &request, data).map_err(input_error)?;
    problem
        .check()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    check_segments(segments, &problem, shared).map_err(input_error)?;
    let mode = if shared {
        FitMode::Shared
    } else {
        FitMode::Each { segments }
    };
    let settings = settings_json(&problem, shared, segments);
    Ok(EstimateRequest {
        problem,
        mode,
        settings,
    })
}

/// A finished estimation: `phaseflow estimate -o`'s arrays (`estimates`, `stderr`,
/// `covariance`, `cost`, `iterations`, `fit_status`; a shared fit's `estimates`, `stderr`,
/// `covariance`, `trajectory_cost`) and a summary with the status counts and run counts.
pub fn estimate_finished(fitted: Fitted, before: &Value) -> Finished {
    let mut summary = before.clone();
    match fitted {
        Fitted::Each(fits) => {
            let (n, k) = (fits.status.len() as u64, fits.n_fit() as u64);
            let codes: Vec<u8> = fits.status.iter().map(|&s| s as u8).collect();
            summary["status"] = Value::Object(fits.status_counts_json());
            summary["gpu_runs"] = json!(fits.runs);
            summary["trajectory_runs"] = json!(fits.trajectory_runs);
            summary["seconds"] = json!(fits.solve.as_secs_f64());
            Finished {
                summary,
                arrays: vec![
                    ("estimates".into(), npy(Dtype::F64, &[n, k], &fits.values)),
                    ("stderr".into(), npy(Dtype::F64, &[n, k], &fits.stderrs())),
                    (
                        "covariance".into(),
                        npy(Dtype::F64, &[n, k, k], &fits.covariance),
                    ),
                    ("cost".into(), npy(Dtype::F64, &[n], &fits.cost)),
                    ("iterations".into(), npy(Dtype::U32, &[n], &fits.iterations)),
                    ("fit_status".into(), npy(Dtype::U8, &[n], &codes)),
                ],
            }
        }
        Fitted::Shared(fit) => {
            let k = fit.values.len() as u64;
            let stderr: Vec<f64> = (0..fit.values.len()).map(|i| fit.stderr(i)).collect();
            summary["status"] = json!(fit.status.name());
            summary["estimates"] = json!(fit.values);
            summary["stderr"] = json!(stderr);
            summary["iterations"] = json!(fit.iterations);
            summary["cost"] = json!(fit.cost);
            summary["observed_values"] = json!(fit.observed);
            summary["failed_trajectory"] = json!(fit.failed_trajectory);
            summary["gpu_runs"] = json!(fit.runs);
            summary["trajectory_runs"] = json!(fit.trajectory_runs);
            summary["seconds"] = json!(fit.solve.as_secs_f64());
            let n = fit.trajectory_cost.len() as u64;
            Finished {
                summary,
                arrays: vec![
                    ("estimates".into(), npy(Dtype::F64, &[k], &fit.values)),
                    ("stderr".into(), npy(Dtype::F64, &[k], &stderr)),
                    (
                        "covariance".into(),
                        npy(Dtype::F64, &[k, k], &fit.covariance),
                    ),
                    (
                        "trajectory_cost".into(),
                        npy(Dtype::F64, &[n], &fit.trajectory_cost),
                    ),
                ],
            }
        }
    }
}
