//! Parameter estimation, one fit per trajectory: each trajectory of an ensemble has its
//! own observations (values of the states at given times, any of them missing) and fits
//! its own parameters and initial values by Levenberg–Marquardt. Residuals and their
//! Jacobians come from one GPU run per iteration of every fit still going, with the
//! forward sensitivities (`ode::sensitivity`) of the fitted quantities: the run's saves,
//! at the observation times, are folded into each trajectory's normal equations as chunks
//! arrive (`ObservationSink`), so memory holds N small matrices, never the saves.
//!
//! Each fit converges, stalls or runs out of iterations on its own; fits that are done
//! leave the ensemble, so later runs are smaller. Results do not depend on chunking: each
//! run's saves are the same bits however it is cut, and the host's arithmetic is f64 in a
//! fixed order. `shared` fits one set of values to every trajectory at once.

pub mod lm;
mod problem;
pub mod shared;
mod sink;

pub use problem::{
    Estimate, EstimateError, EstimationProblem, FitStatus, Observations, Start, Stopping,
};

use super::adaptive::SaveAt;
use super::any::Problem;
use super::ensemble::{Ensemble, InitialStates, Inputs, Parameters, Table};
use super::options::RunOptions;
use super::sensitivity::{Sensitivities, Target, augment};
use crate::gpu::GpuContext;
use lm::Normal;
use sink::ObservationSink;

/// The problem run for the fits still going: `points[a]` holds the fitted values of
/// trajectory `active[a]`.
fn evaluation_problem(
    ep: &EstimationProblem,
    active: &[usize],
    points: &[Vec<f64>],
) -> Result<Problem, EstimateError> {
    let base = ep.problem.ensemble();
    let system = ep.problem.system();
    let (dim, n_params) = (system.dim(), system.n_params());
    let mut states = Vec::with_capacity(active.len() * dim);
    let mut params = Vec::with_capacity(active.len() * n_params);
    for (&j, x) in active.iter().zip(points) {
        let mut u = base.states(j..j + 1);
        let mut p = base.params(j..j + 1);
        for (t, v) in ep.targets.iter().zip(x) {
            match *t {
                Target::Param(q) => p[q] = *v,
                Target::Initial(i) => u[i] = *v,
            }
        }
        states.extend(u);
        params.extend(p);
    }
    let table = |data: Vec<f64>, cols: usize, origin: &str| Table {
        data,
        rows: active.len(),
        cols,
        origin: origin.into(),
    };
    let inputs = match &base.inputs {
        Inputs::Default => Inputs::Default,
        Inputs::Table(t) => Inputs::Table(Table {
            data: active
                .iter()
                .flat_map(|&j| t.data[j * t.cols..(j + 1) * t.cols].iter().copied())
                .collect(),
            rows: active.len(),
            cols: t.cols,
            origin: t.origin.clone(),
        }),
    };
    let ensemble = Ensemble {
        n: active.len(),
        initial: InitialStates::Table(table(states, dim, "the fits' initial states")),
        params: if n_params > 0 {
            Parameters::Table(table(params, n_params, "the fits' parameters"))
        } else {
            Parameters::Default
        },
        inputs,
        ..base.clone()
    };
    let saveat = SaveAt::Times(ep.observations.times.clone());
    Ok(match ep.problem.clone() {
        Problem::Fixed(mut p) => {
            p.ensemble = ensemble;
            Problem::Fixed(p)
        }
        Problem::Adaptive(mut p) => {
            p.ensemble = ensemble;
            p.saveat = saveat;
            Problem::Adaptive(p)
        }
        Problem::Stiff(mut p) => {
            p.ensemble = ensemble;
            p.saveat = saveat;
            Problem::Stiff(p)
        }
        Problem::Sde(_) => {
            return Err(EstimateError::Input(
                "estimation fits ordinary differential equations, not stochastic ones".into(),
            ));
        }
    })
}

/// The save slot of each observation time (`None` for save times not observed).
fn observed_slots(save_times: &[f64], obs: &[f64]) -> Result<Vec<Option<usize>>, EstimateError> {
    let mut of_slot = vec![None; save_times.len()];
    for (o, &t) in obs.iter().enumerate() {
        let slot = save_times
            .iter()
            .position(|&s| (s - t).abs() <= 1e-9 * t.abs().max(1.0))
            .ok_or_else(|| {
                EstimateError::Input(format!(
                    "observation time {t} is not a save time of the fixed-step grid; choose dt \
                     and save_every so that every observation time is on it, or use an \
                     adaptive solver (which saves at the observation times)"
                ))
            })?;
        of_slot[slot] = Some(o);
    }
    Ok(of_slot)
}

/// One GPU run at `points` for the fits `active`: each one's normal equations, `None`
/// where its integration did not succeed.
fn evaluate(
    ctx: &GpuContext,
    ep: &EstimationProblem,
    active: &[usize],
    points: &[Vec<f64>],
    options: &RunOptions,
) -> Result<Vec<Option<Normal>>, EstimateError> {
    let problem = evaluation_problem(ep, active, points)?;
    let sens = Sensitivities {
        targets: ep.targets.clone(),
        error_control: ep.error_control,
    };
    let run = augment(&problem, &sens)?;
    let slots = observed_slots(&run.problem.save_times()?, &ep.observations.times)?;
    let mut sink = ObservationSink::new(ep, active, slots);
    let stats = run.problem.run_into(ctx, options, &mut sink)?;
    if stats.completed < active.len() {
        return Err(EstimateError::Cancelled);
    }
    Ok(sink.into_normals())
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Runs every fit (see the module comment).
pub fn estimate(
    ctx: &GpuContext,
    ep: &EstimationProblem,
    options: &RunOptions,
) -> Result<Estimate, EstimateError> {
    ep.check()?;
    let n = ep.problem.ensemble().n;
    let n_fit = ep.targets.len();
    let started = std::time::Instant::now();
    let mut x: Vec<Vec<f64>> = (0..n)
        .map(|j| {
            let s = match &ep.start {
                Start::Same(v) => v.clone(),
                Start::PerTrajectory(v) => v[j * n_fit..(j + 1) * n_fit].to_vec(),
            };
            s.iter()
                .zip(&ep.bounds)
                .map(|(v, &(lo, hi))| v.clamp(lo, hi))
                .collect()
        })
        .collect();
    let mut status = vec![FitStatus::Running; n];
    let mut normal: Vec<Normal> = vec![Normal::zero(n_fit); n];
    // A fit with fewer observed values than quantities has nothing to fit from.
    let all: Vec<usize> = (0..n)
        .filter(|&j| {
            let enough = ep.observed(j) >= n_fit;
            if !enough {
                status[j] = FitStatus::Underdetermined;
            }
            enough
        })
        .collect();
    let mut runs = 0;
    let mut trajectory_runs = 0;
    if !all.is_empty() {
        runs = 1;
        trajectory_runs = all.len();
        let starts: Vec<Vec<f64>> = all.iter().map(|&j| x[j].clone()).collect();
        let first = evaluate(ctx, ep, &all, &starts, options)?;
        for (&j, f) in all.iter().zip(first) {
            match f {
                Some(f) if f.cost.is_finite() => normal[j] = f,
                _ => status[j] = FitStatus::IntegrationFailed,
            }
        }
    }
    let mut lambda = vec![1e-3; n];
    let mut iterations = vec![0u32; n];
    let stop = ep.stopping;
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
                    let trial = lm::clip(&x[j], &step, &ep.bounds);
                    let moved: Vec<f64> = trial.iter().zip(&x[j]).map(|(a, b)| a - b).collect();
                    if norm(&moved) <= stop.xtol * (norm(&x[j]) + stop.xtol) {
                        // No move the bounds allow is larger than the tolerance: converged,
                        // unless the damping, grown by rejections, shrank the step to nothing.
                        status[j] = lm::small_step_status(&normal[j], &x[j], &ep.bounds, stop.xtol);
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
        let results = evaluate(ctx, ep, &active, &trials, options)?;
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
    let names = ep
        .targets
        .iter()
        .map(|t| t.name(ep.problem.system()))
        .collect();
    let mut covariance = Vec::with_capacity(n * n_fit * n_fit);
    for (j, f) in normal.iter().enumerate() {
        if matches!(
            status[j],
            FitStatus::IntegrationFailed | FitStatus::Underdetermined
        ) {
            covariance.extend(std::iter::repeat_n(f64::NAN, n_fit * n_fit));
        } else {
            covariance.extend(lm::covariance(f));
        }
    }
    Ok(Estimate {
        names,
        values: x.concat(),
        covariance,
        cost: normal
            .iter()
            .zip(&status)
            .map(|(f, s)| {
                if matches!(s, FitStatus::IntegrationFailed | FitStatus::Underdetermined) {
                    f64::NAN
                } else {
                    f.cost
                }
            })
            .collect(),
        iterations,
        status,
        observed: normal.iter().map(|f| f.count).collect(),
        runs,
        trajectory_runs,
        solve: started.elapsed(),
    })
}
