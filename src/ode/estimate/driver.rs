//! The Levenberg–Marquardt loop over many independent fits: each fit still going proposes
//! a damped step from its normal equations, every proposal is evaluated in one call (one
//! GPU run, or one per segment), and each fit accepts, rejects, converges or gives up on
//! its own. What a point's normal equations are is the caller's: single shooting (the
//! parent module's evaluation) or multiple shooting (the shooting module's).

use super::lm::{self, Normal};
use super::problem::{EstimateError, FitStatus, Stopping};

/// Where every fit stands when the loop ends.
pub(super) struct Fits {
    pub x: Vec<Vec<f64>>,
    pub normal: Vec<Normal>,
    pub status: Vec<FitStatus>,
    pub iterations: Vec<u32>,
    /// Calls of the evaluation, and fit-evaluations over all of them.
    pub runs: usize,
    pub trajectory_runs: usize,
}

pub(super) fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Runs the fits from `start` (inside `bounds`), where `enough[j]` says whether fit `j` has
/// anything to fit from (`Underdetermined` otherwise). `evaluate(active, points)` gives the
/// normal equations of fits `active` at `points`, `None` where the model could not be
/// integrated.
pub(super) fn levenberg_marquardt(
    start: Vec<Vec<f64>>,
    enough: &[bool],
    bounds: &[(f64, f64)],
    stop: Stopping,
    mut evaluate: impl FnMut(&[usize], &[Vec<f64>]) -> Result<Vec<Option<Normal>>, EstimateError>,
) -> Result<Fits, EstimateError> {
    let n = start.len();
    let n_unknowns = bounds.len();
    let mut x = start;
    let mut status = vec![FitStatus::Running; n];
    let mut normal: Vec<Normal> = vec![Normal::zero(n_unknowns); n];
    let all: Vec<usize> = (0..n)
        .filter(|&j| {
            if !enough[j] {
                status[j] = FitStatus::Underdetermined;
            }
            enough[j]
        })
        .collect();
    let mut runs = 0;
    let mut trajectory_runs = 0;
    if !all.is_empty() {
        runs = 1;
        trajectory_runs = all.len();
        let starts: Vec<Vec<f64>> = all.iter().map(|&j| x[j].clone()).collect();
        let first = evaluate(&all, &starts)?;
        for (&j, f) in all.iter().zip(first) {
            match f {
                Some(f) if f.cost.is_finite() => normal[j] = f,
                _ => status[j] = FitStatus::IntegrationFailed,
            }
        }
    }
    let mut lambda = vec![1e-3; n];
    let mut iterations = vec![0u32; n];
    loop {
        // Each fit still going proposes a step; the proposals are evaluated together.
        let mut active = Vec::new();
        let mut trials = Vec::new();
        for j in 0..n {
            if status[j] != FitStatus::Running {
                continue;
            }
            if iterations[j] >= stop.max_iterations {
                status[j] = FitStatus::MaxIterations;
                continue;
            }
            if normal[j].cost == 0.0 {
                status[j] = FitStatus::Converged;
                continue;
            }
            match lm::damped_step(&normal[j], lambda[j]) {
                Some(step) => {
                    let trial = lm::clip(&x[j], &step, bounds);
                    let moved: Vec<f64> = trial.iter().zip(&x[j]).map(|(a, b)| a - b).collect();
                    if norm(&moved) <= stop.xtol * (norm(&x[j]) + stop.xtol) {
                        // No move the bounds allow is larger than the tolerance: converged,
                        // unless the damping, grown by rejections, shrank the step to nothing.
                        status[j] = lm::small_step_status(&normal[j], &x[j], bounds, stop.xtol);
                        continue;
                    }
                    active.push(j);
                    trials.push(trial);
                }
                None => {
                    lambda[j] *= 10.0;
                    iterations[j] += 1;
                    if lambda[j] > 1e16 {
                        status[j] = FitStatus::Stalled;
                    }
                }
            }
        }
        if active.is_empty() {
            if status.iter().all(|s| *s != FitStatus::Running) {
                break;
            }
            continue;
        }
        runs += 1;
        trajectory_runs += active.len();
        let results = evaluate(&active, &trials)?;
        for ((j, trial), result) in active.into_iter().zip(trials).zip(results) {
            iterations[j] += 1;
            let old = normal[j].cost;
            match result {
                Some(new) if new.cost.is_finite() && new.cost < old => {
                    let decrease = (old - new.cost) / old;
                    let moved: Vec<f64> = trial.iter().zip(&x[j]).map(|(a, b)| a - b).collect();
                    let small_step = norm(&moved) <= stop.xtol * (norm(&x[j]) + stop.xtol);
                    x[j] = trial;
                    normal[j] = new;
                    lambda[j] = (lambda[j] / 10.0).max(1e-12);
                    if decrease <= stop.ftol || small_step {
                        status[j] = FitStatus::Converged;
                    }
                }
                _ => {
                    lambda[j] *= 10.0;
                    if lambda[j] > 1e16 {
                        status[j] = FitStatus::Stalled;
                    }
                }
            }
        }
    }
    Ok(Fits {
        x,
        normal,
        status,
        iterations,
        runs,
        trajectory_runs,
    })
}
