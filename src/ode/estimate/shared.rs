//! One parameter set fitted to every trajectory at once: calibrating a model to an
//! ensemble of experiments (kinetic rates from many runs that started differently). The
//! cost is the sum of every trajectory's ½ Σ w r², so its Gauss–Newton matrix and gradient
//! are the sums of the trajectories' own; each iteration is one GPU run of the whole
//! ensemble at the current point with the sensitivities of the shared quantities, whose
//! saves are folded into per-trajectory normal equations as chunks arrive (as for the
//! per-trajectory fits) and then summed in trajectory order, so the result is the same bits
//! for any chunking. Levenberg–Marquardt with bounds on the sum, as in `lm`.
//!
//! The sum is taken on the host from the per-trajectory normal equations (n_fit² + n_fit
//! numbers a trajectory); the saves themselves never accumulate in memory.

use super::lm::{self, Normal};
use super::{EstimateError, EstimationProblem, FitStatus, Start, evaluate, norm};
use crate::gpu::GpuContext;
use crate::ode::options::RunOptions;

/// The shared fit's result.
#[derive(Debug, Clone)]
pub struct SharedEstimate {
    pub names: Vec<String>,
    /// The fitted values, one per quantity.
    pub values: Vec<f64>,
    /// σ²(Σ JᵀWJ)⁻¹ with σ² = 2·cost / (m − n_fit), row-major [n_fit][n_fit]; NaN where it
    /// does not exist.
    pub covariance: Vec<f64>,
    /// ½ Σ w r² over every trajectory at the fit.
    pub cost: f64,
    /// Each trajectory's share of the cost at the fit (NaN where it could not be
    /// integrated): where an outlying experiment shows.
    pub trajectory_cost: Vec<f64>,
    pub iterations: u32,
    pub status: FitStatus,
    /// Observed values over all trajectories.
    pub observed: usize,
    pub runs: usize,
    pub trajectory_runs: usize,
    pub solve: std::time::Duration,
}

impl SharedEstimate {
    /// The standard error of fitted quantity `k`.
    pub fn stderr(&self, k: usize) -> f64 {
        self.covariance[k * self.values.len() + k].sqrt()
    }
}

/// The ensemble's summed normal equations at `x` and each trajectory's cost, or `None`
/// when some trajectory could not be integrated there.
fn evaluate_all(
    ctx: &GpuContext,
    ep: &EstimationProblem,
    x: &[f64],
    options: &RunOptions,
) -> Result<Option<(Normal, Vec<f64>)>, EstimateError> {
    let n = ep.problem.ensemble().n;
    let all: Vec<usize> = (0..n).collect();
    let points = vec![x.to_vec(); n];
    let normals = evaluate(ctx, ep, &all, &points, options)?;
    let mut total = Normal::zero(x.len());
    let mut costs = Vec::with_capacity(n);
    for f in normals {
        match f {
            Some(f) if f.cost.is_finite() => {
                total.merge(&f);
                costs.push(f.cost);
            }
            _ => return Ok(None),
        }
    }
    Ok(Some((total, costs)))
}

/// Fits one set of the targets' values to every trajectory's observations.
pub fn estimate_shared(
    ctx: &GpuContext,
    ep: &EstimationProblem,
    options: &RunOptions,
) -> Result<SharedEstimate, EstimateError> {
    ep.check()?;
    let Start::Same(start) = &ep.start else {
        return Err(EstimateError::Input(
            "a shared fit has one starting point, not one per trajectory".into(),
        ));
    };
    let n = ep.problem.ensemble().n;
    let n_fit = ep.targets.len();
    let started = std::time::Instant::now();
    let names = ep
        .targets
        .iter()
        .map(|t| t.name(ep.problem.system()))
        .collect();
    let mut x: Vec<f64> = start
        .iter()
        .zip(&ep.bounds)
        .map(|(v, &(lo, hi))| v.clamp(lo, hi))
        .collect();
    let (mut runs, mut trajectory_runs) = (1, n);
    let Some((mut normal, mut costs)) = evaluate_all(ctx, ep, &x, options)? else {
        return Ok(SharedEstimate {
            names,
            values: x,
            covariance: vec![f64::NAN; n_fit * n_fit],
            cost: f64::NAN,
            trajectory_cost: vec![f64::NAN; n],
            iterations: 0,
            status: FitStatus::IntegrationFailed,
            observed: 0,
            runs,
            trajectory_runs,
            solve: started.elapsed(),
        });
    };
    let stop = ep.stopping;
    let (mut lambda, mut iterations) = (1e-3, 0u32);
    let status = loop {
        if iterations >= stop.max_iterations {
            break FitStatus::MaxIterations;
        }
        if normal.cost == 0.0 {
            break FitStatus::Converged;
        }
        iterations += 1;
        let Some(step) = lm::damped_step(&normal, lambda) else {
            lambda *= 10.0;
            if lambda > 1e16 {
                break FitStatus::Stalled;
            }
            continue;
        };
        let trial = lm::clip(&x, &step, &ep.bounds);
        let moved: Vec<f64> = trial.iter().zip(&x).map(|(a, b)| a - b).collect();
        let small_step = norm(&moved) <= stop.xtol * (norm(&x) + stop.xtol);
        if small_step {
            // No move the bounds allow is larger than the tolerance.
            break FitStatus::Converged;
        }
        runs += 1;
        trajectory_runs += n;
        match evaluate_all(ctx, ep, &trial, options)? {
            Some((new, new_costs)) if new.cost < normal.cost => {
                let decrease = (normal.cost - new.cost) / normal.cost;
                x = trial;
                normal = new;
                costs = new_costs;
                lambda = (lambda / 10.0).max(1e-12);
                if decrease <= stop.ftol {
                    break FitStatus::Converged;
                }
            }
            _ => {
                lambda *= 10.0;
                if lambda > 1e16 {
                    break FitStatus::Stalled;
                }
            }
        }
    };
    Ok(SharedEstimate {
        names,
        values: x,
        covariance: lm::covariance(&normal),
        cost: normal.cost,
        trajectory_cost: costs,
        iterations,
        status,
        observed: normal.count,
        runs,
        trajectory_runs,
        solve: started.elapsed(),
    })
}
