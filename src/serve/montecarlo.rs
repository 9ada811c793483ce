//! `POST /v1/monte-carlo`: an ensemble's statistics per save time and state, its paths
//! never stored. A body has the keys of a run config and `quantiles` (the levels, default
//! 0.01 … 0.99); a finished job keeps the arrays `simulate --outputs montecarlo` writes,
//! without their `mc_` prefix.

use super::error::ApiError;
use super::request::{run_spec, spec_api_error};
use super::results::{Finished, npy};
use crate::engine::{MonteCarloRun, monte_carlo_bytes};
use crate::io::Dtype;
use crate::ode::Problem;
use crate::ode::montecarlo::{DEFAULT_QUANTILES, quantile_levels_error};
use crate::ode::solution::status_counts_json;
use crate::spec::problem_for_system;
use serde_json::{Value, json};

/// A checked request: the run and its quantile levels.
pub struct MonteCarloRequest {
    pub problem: Problem,
    pub levels: Vec<f64>,
}

impl MonteCarloRequest {
    pub fn result_bytes(&self) -> Result<u64, ApiError> {
        monte_carlo_bytes(&self.problem).map_err(|e| ApiError::invalid(e.to_string()))
    }
}

pub fn monte_carlo_request(body: Value) -> Result<MonteCarloRequest, ApiError> {
    let (system, mut spec) = run_spec(body)?;
    spec.only_analysis(None).map_err(spec_api_error)?;
    for (key, set) in [
        ("sensitivities", spec.sensitivities.is_some()),
        ("sensitivity_error", spec.sensitivity_error.is_some()),
    ] {
        if set {
            return Err(ApiError::invalid(format!(
                "'{key}': Monte Carlo statistics are of the states; ask /v1/simulate for \
                 sensitivities"
            ))
            .field(key));
        }
    }
    // The levels are this job's own: the run spec ties `quantiles` to a run directory's
    // `outputs`, which requests do not have.
    let levels = spec
        .quantiles
        .take()
        .unwrap_or_else(|| DEFAULT_QUANTILES.to_vec());
    if let Some(why) = quantile_levels_error(&levels) {
        return Err(ApiError::invalid(format!("'quantiles' {why}")).field("quantiles"));
    }
    let problem = problem_for_system(system, &spec).map_err(spec_api_error)?;
    Ok(MonteCarloRequest { problem, levels })
}

/// A finished job: `times`, `mean`, `var`, `stderr`, `min`, `max` [n_save, dim] (float64),
/// `quantiles` [n_save, n_levels, dim], `count` [n_save, dim] int64 and `levels`; the
/// summary adds the status counts, the values left out as non-finite and the timing.
pub fn monte_carlo_finished(r: MonteCarloRun, before: &Value) -> Finished {
    let s = r.statistics;
    let shape = [s.n_save as u64, s.dim as u64];
    let mut summary = before.clone();
    summary["status"] = status_counts_json(r.tally.status_counts());
    summary["trajectories"] = json!(r.tally.trajectories);
    summary["nonfinite"] = json!(s.nonfinite.iter().sum::<u64>());
    summary["timing"] = json!({
        "solve_s": r.stats.solve.as_secs_f64(),
        "gpu_s": r.stats.gpu.map(|d| d.as_secs_f64()),
        "chunks": r.stats.chunks,
    });
    let count: Vec<i64> = s.count.iter().map(|&c| c as i64).collect();
    Finished {
        summary,
        arrays: vec![
            (
                "times".into(),
                npy(Dtype::F64, &[s.n_save as u64], &r.times),
            ),
            ("mean".into(), npy(Dtype::F64, &shape, &s.mean)),
            ("var".into(), npy(Dtype::F64, &shape, &s.var)),
            ("stderr".into(), npy(Dtype::F64, &shape, &s.stderr)),
            ("min".into(), npy(Dtype::F64, &shape, &s.min)),
            ("max".into(), npy(Dtype::F64, &shape, &s.max)),
            (
                "quantiles".into(),
                npy(
                    Dtype::F64,
                    &[s.n_save as u64, s.levels.len() as u64, s.dim as u64],
                    &s.quantiles,
                ),
            ),
            ("count".into(), npy(Dtype::I64, &shape, &count)),
            (
                "levels".into(),
                npy(Dtype::F64, &[s.levels.len() as u64], &s.levels),
            ),
        ],
    }
}
