//! One parameter set fitted to every trajectory at once: calibrating a model to an
//! ensemble of experiments (kinetic rates from many runs that started differently). The
//! cost is the sum of every trajectory's ½ Σ w r², so its Gauss–Newton matrix and gradient
//! are the sums of the trajectories' own; each iteration is one GPU run of the whole
//! ensemble at the current point with the sensitivities of the shared quantities, whose
//! saves are folded into per-trajectory normal equations as chunks arrive (as for the
//! per-trajectory fits) and then summed in trajectory order, so the result is the same bits
//! for any chunking. Levenberg–Marquardt with bounds on the sum, as in `lm`.
//!
//! Where the device has f64 the sum is reduced there (`fold`, `Folding::Device`): the
//! device folds each trajectory's saves into its normal equations and adds them up in
//! groups of 64, and the host reads back each trajectory's cost and the groups' sums,
//! which it adds in trajectory order. Otherwise the host folds the saves it reads back and
//! adds every trajectory's equations. Either way the saves never accumulate in memory.

use super::fold::Folding;
use super::lm::{self, Normal};
use super::{EstimateError, EstimationProblem, FitStatus, Start, evaluate, evaluate_grouped, norm};
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
    /// The first trajectory that could not be integrated at the point the fit stopped on
    /// (status `IntegrationFailed`).
    pub failed_trajectory: Option<usize>,
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

/// The ensemble at one point: the summed normal equations, each trajectory's cost (NaN
/// where it could not be integrated) and the first trajectory that could not be.
struct Evaluation {
    total: Normal,
    costs: Vec<f64>,
    failed: Option<usize>,
}

fn evaluate_all(
    ctx: &GpuContext,
    ep: &EstimationProblem,
    x: &[f64],
    options: &RunOptions,
    folding: Folding,
) -> Result<Evaluation, EstimateError> {
    if folding == Folding::Device {
        let grouped = evaluate_grouped(ctx, ep, x, options)?;
        let mut total = Normal::zero(x.len());
        for g in &grouped.groups {
            total.merge(g);
        }
        let costs: Vec<f64> = grouped
            .costs
            .iter()
            .zip(&grouped.ok)
            .map(|(&c, &ok)| if ok && c.is_finite() { c } else { f64::NAN })
            .collect();
        let failed = costs.iter().position(|c| c.is_nan());
        return Ok(Evaluation {
            total,
            costs,
            failed,
        });
    }
    let n = ep.problem.ensemble().n;
    let all: Vec<usize> = (0..n).collect();
    let points = vec![x.to_vec(); n];
    let normals = evaluate(ctx, ep, (&all, &points), options, folding)?;
    let mut total = Normal::zero(x.len());
    let mut costs = Vec::with_capacity(n);
    let mut failed = None;
    for (j, f) in normals.into_iter().enumerate() {
        match f {
            Some(f) if f.cost.is_finite() => {
                total.merge(&f);
                costs.push(f.cost);
            }
            _ => {
                failed.get_or_insert(j);
                costs.push(f64::NAN);
            }
        }
    }
    Ok(Evaluation {
        total,
        costs,
        failed,
    })
}

/// Fits one set of the targets' values to every trajectory's observations, reducing on
/// the device where `Folding::for_device` says.
pub fn estimate_shared(
    ctx: &GpuContext,
    ep: &EstimationProblem,
    options: &RunOptions,
) -> Result<SharedEstimate, EstimateError> {
    estimate_shared_folding(ctx, ep, options, Folding::for_device(ctx, ep.targets.len()))
}

/// `estimate_shared`, folding and reducing where `folding` says.
pub fn estimate_shared_folding(
    ctx: &GpuContext,
    ep: &EstimationProblem,
    options: &RunOptions,
    folding: Folding,
) -> Result<SharedEstimate, EstimateError> {
    ep.check()?;
    folding.check(ctx).map_err(EstimateError::Input)?;
    let Start::Same(start) = &ep.start else {
        return Err(EstimateError::Input(
            "a shared fit has one starting point, not one per trajectory".into(),
        ));
    };
    let n = ep.problem.ensemble().n;
    let n_fit = ep.targets.len();
    let started = std::time::Instant::now();
    let names: Vec<String> = ep
        .targets
        .iter()
        .map(|t| t.name(ep.problem.system()))
        .collect();
    let mut x: Vec<f64> = start
        .iter()
        .zip(&ep.bounds)
        .map(|(v, &(lo, hi))| v.clamp(lo, hi))
        .collect();
    let observed: usize = (0..n).map(|j| ep.observed(j)).sum();
    let unfitted = |status, costs, failed_trajectory, runs| SharedEstimate {
        names: names.clone(),
        values: x.clone(),
        covariance: vec![f64::NAN; n_fit * n_fit],
        cost: f64::NAN,
        trajectory_cost: costs,
        iterations: 0,
        status,
        observed,
        failed_trajectory,
        runs,
        trajectory_runs: runs * n,
        solve: started.elapsed(),
    };
    if observed < n_fit {
        return Ok(unfitted(
            FitStatus::Underdetermined,
            vec![f64::NAN; n],
            None,
            0,
        ));
    }
    let (mut runs, mut trajectory_runs) = (1, n);
    let first = evaluate_all(ctx, ep, &x, options, folding)?;
    if first.failed.is_some() {
        return Ok(unfitted(
            FitStatus::IntegrationFailed,
            first.costs,
            first.failed,
            1,
        ));
    }
    let (mut normal, mut costs) = (first.total, first.costs);
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
            // No move the bounds allow is larger than the tolerance (converged), or the
            // damping grown by rejections shrank the step to nothing (stalled).
            break lm::small_step_status(&normal, &x, &ep.bounds, stop.xtol);
        }
        runs += 1;
        trajectory_runs += n;
        let new = evaluate_all(ctx, ep, &trial, options, folding)?;
        match new.failed {
            None if new.total.cost < normal.cost => {
                let decrease = (normal.cost - new.total.cost) / normal.cost;
                x = trial;
                normal = new.total;
                costs = new.costs;
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
        observed,
        failed_trajectory: None,
        runs,
        trajectory_runs,
        solve: started.elapsed(),
    })
}
