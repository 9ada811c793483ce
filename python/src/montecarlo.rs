//! Monte Carlo statistics from Python: `simulate`'s keywords, run as an engine job whose
//! ensemble streams through the library's `MonteCarlo` reducer, so N may be far larger
//! than the paths could be in memory. The arrays are those of the CLI's `montecarlo`
//! output (`mc_mean.npy`, ... without the prefix), the same bits.

use crate::analysis::{Finished, Values};
use crate::errors::{engine_error, spec_error_at};
use crate::run::{Done, PyJob, build_with_tables, settings};
use phaseflow::engine::{Engine, JobOptions, MonteCarloRun};
use phaseflow::ode::montecarlo::{DEFAULT_QUANTILES, quantile_levels_error};
use phaseflow::ode::solution::status_counts_json;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Submits the run; returns its job at once.
pub fn submit(
    py: Python<'_>,
    engine: &Engine,
    system: &Bound<'_, PyAny>,
    u0: Option<&Bound<'_, PyAny>>,
    params: Option<&Bound<'_, PyAny>>,
    quantiles: Option<Vec<f64>>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<PyJob> {
    let levels = quantiles.unwrap_or_else(|| DEFAULT_QUANTILES.to_vec());
    if let Some(why) = quantile_levels_error(&levels) {
        return Err(spec_error_at(
            format!("quantiles {why}"),
            Some("quantiles".into()),
        ));
    }
    let (problem, spec) = build_with_tables(py, system, u0, params, options)?;
    if spec.sensitivities.is_some() {
        return Err(spec_error_at(
            "sensitivities: Monte Carlo statistics are of the states; use \
             phaseflow.simulate(..., sensitivities=[...])"
                .into(),
            Some("sensitivities".into()),
        ));
    }
    let mut summary = settings(&problem, &spec);
    summary["quantiles"] = levels.clone().into();
    let ensemble = problem.ensemble().clone();
    let dims = (problem.system().dim(), problem.system().n_params());
    let submitted = engine.clone();
    let job = py
        .detach(move || submitted.submit_monte_carlo(problem, levels, JobOptions::default()))
        .map_err(engine_error)?;
    Ok(PyJob::analysis(
        job,
        engine.clone(),
        ensemble,
        dims,
        move |r| Done::Analysis(finished(r, summary)),
    ))
}

/// The statistics as arrays: [n_save, dim] each, the quantiles [n_save, n_levels, dim],
/// the finite values counted (int64) and the save times; the summary adds status counts.
fn finished(r: MonteCarloRun, mut summary: serde_json::Value) -> Finished {
    let s = r.statistics;
    let shape = vec![s.n_save, s.dim];
    summary["status"] = status_counts_json(r.tally.status_counts());
    summary["trajectories"] = r.tally.trajectories.into();
    summary["nonfinite"] = s.nonfinite.iter().sum::<u64>().into();
    summary["solve_s"] = r.stats.solve.as_secs_f64().into();
    summary["gpu_s"] = r.stats.gpu.map(|d| d.as_secs_f64()).into();
    Finished::new(
        "montecarlo",
        vec![
            ("times", vec![s.n_save], Values::F64(r.times)),
            ("mean", shape.clone(), Values::F64(s.mean)),
            ("var", shape.clone(), Values::F64(s.var)),
            ("stderr", shape.clone(), Values::F64(s.stderr)),
            ("min", shape.clone(), Values::F64(s.min)),
            ("max", shape.clone(), Values::F64(s.max)),
            (
                "quantiles",
                vec![s.n_save, s.levels.len(), s.dim],
                Values::F64(s.quantiles),
            ),
            (
                "count",
                shape,
                Values::I64(s.count.iter().map(|&c| c as i64).collect()),
            ),
            ("levels", vec![s.levels.len()], Values::F64(s.levels)),
        ],
        summary,
    )
}
