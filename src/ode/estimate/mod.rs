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
pub mod shared;
mod sink;

use super::adaptive::SaveAt;
use super::any::Problem;
use super::ensemble::{Ensemble, InitialStates, Inputs, Parameters, Table};
use super::error::SimError;
use super::options::RunOptions;
use super::sensitivity::{ErrorControl, Sensitivities, SensitivityError, Target, augment};
use crate::gpu::GpuContext;
use lm::Normal;
use sink::ObservationSink;
use thiserror::Error;

/// What was observed of each trajectory.
#[derive(Debug, Clone, PartialEq)]
pub struct Observations {
    /// Observation times, increasing, within the run's span.
    pub times: Vec<f64>,
    /// Row-major [N][n_obs][dim]; NaN marks a value not observed.
    pub values: Vec<f64>,
    /// Each state's weight in the cost (1 / its noise variance, when known).
    pub weights: Vec<f64>,
}

/// Where each fit starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// The same values for every trajectory, one per fitted quantity.
    Same(Vec<f64>),
    /// Row-major [N][n_fit].
    PerTrajectory(Vec<f64>),
}

/// When a fit stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stopping {
    pub max_iterations: u32,
    /// Converged when an accepted step lowers the cost by less than this fraction.
    pub ftol: f64,
    /// Converged when a step moves the fitted values by less than this, relative.
    pub xtol: f64,
}

impl Stopping {
    /// Defaults near what the precision can resolve: the cost itself carries the run's
    /// rounding (6e-8 relative in f32).
    pub fn for_precision(precision: crate::precision::Precision) -> Stopping {
        use crate::precision::Precision;
        let (ftol, xtol) = match precision {
            Precision::F64 => (1e-10, 1e-10),
            Precision::F32 => (1e-6, 1e-5),
        };
        Stopping {
            max_iterations: 50,
            ftol,
            xtol,
        }
    }
}

/// A set of fits: the model run, what to fit, the data.
#[derive(Debug, Clone)]
pub struct EstimationProblem {
    /// The run: system, solver, span, precision, and an ensemble of N trajectories whose
    /// parameters and initial states are used where they are not fitted. Adaptive and
    /// stiff runs save at the observation times; a fixed-step run's save grid must hold
    /// them.
    pub problem: Problem,
    /// The parameters and initial values to fit.
    pub targets: Vec<Target>,
    /// Bounds of each fitted quantity; steps are clipped into them.
    pub bounds: Vec<(f64, f64)>,
    pub start: Start,
    pub observations: Observations,
    pub error_control: ErrorControl,
    pub stopping: Stopping,
}

/// How a fit ended; the codes are those of `fit_status.npy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FitStatus {
    /// Not finished (a cancelled run).
    Running = 0,
    Converged = 1,
    MaxIterations = 2,
    /// The model could not be integrated at the starting values (its status was not a
    /// success), so there is nothing to fit from.
    IntegrationFailed = 3,
    /// No step lowers the cost even with the largest damping.
    Stalled = 4,
}

impl FitStatus {
    pub fn name(self) -> &'static str {
        match self {
            FitStatus::Running => "not_finished",
            FitStatus::Converged => "converged",
            FitStatus::MaxIterations => "max_iterations",
            FitStatus::IntegrationFailed => "integration_failed",
            FitStatus::Stalled => "stalled",
        }
    }
}

/// Every fit's result.
#[derive(Debug, Clone)]
pub struct Estimate {
    pub names: Vec<String>,
    /// Row-major [N][n_fit].
    pub values: Vec<f64>,
    /// σ²(JᵀWJ)⁻¹ at the fit, row-major [N][n_fit][n_fit]; NaN where it does not exist.
    pub covariance: Vec<f64>,
    /// ½ Σ w r² at the fit.
    pub cost: Vec<f64>,
    pub iterations: Vec<u32>,
    pub status: Vec<FitStatus>,
    /// Observed values per trajectory.
    pub observed: Vec<usize>,
    /// GPU runs made, and trajectory-runs over all of them.
    pub runs: usize,
    pub trajectory_runs: usize,
    /// Wall time of the runs.
    pub solve: std::time::Duration,
}

impl Estimate {
    pub fn n_fit(&self) -> usize {
        self.names.len()
    }

    /// The standard error of fitted quantity `k` of trajectory `j`.
    pub fn stderr(&self, j: usize, k: usize) -> f64 {
        let n = self.n_fit();
        self.covariance[(j * n + k) * n + k].sqrt()
    }
}

#[derive(Debug, Error)]
pub enum EstimateError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Sensitivity(#[from] SensitivityError),
    #[error("{0}")]
    Sim(#[from] SimError),
    #[error("interrupted")]
    Cancelled,
}

impl EstimationProblem {
    /// Shapes, bounds and times, before any work.
    pub fn check(&self) -> Result<(), EstimateError> {
        let bad = |m: String| Err(EstimateError::Input(m));
        let system = self.problem.system();
        let (n, dim, n_fit) = (self.problem.ensemble().n, system.dim(), self.targets.len());
        let obs = &self.observations;
        if n_fit == 0 {
            return bad("name at least one parameter or initial value to fit".into());
        }
        if self.bounds.len() != n_fit {
            return bad(format!(
                "{} bounds for {n_fit} fitted values",
                self.bounds.len()
            ));
        }
        for (k, &(lo, hi)) in self.bounds.iter().enumerate() {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return bad(format!(
                    "the bounds of '{}' are [{lo}, {hi}]: they need finite low < high",
                    self.targets[k].name(system)
                ));
            }
        }
        let starts = match &self.start {
            Start::Same(v) => (v.len(), n_fit),
            Start::PerTrajectory(v) => (v.len(), n * n_fit),
        };
        if starts.0 != starts.1 {
            return bad(format!(
                "{} starting values where {} are needed",
                starts.0, starts.1
            ));
        }
        if obs.times.is_empty() {
            return bad("no observation times".into());
        }
        if let Some(w) = obs
            .times
            .windows(2)
            .find(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
        {
            return bad(format!(
                "observation times must increase: {} is followed by {}",
                w[0], w[1]
            ));
        }
        let (t0, t1) = self.problem.span();
        let (first, last) = (obs.times[0], obs.times[obs.times.len() - 1]);
        if !(first >= t0 && last <= t1) {
            return bad(format!(
                "observation times run from {first} to {last}, outside the span [{t0}, {t1}]"
            ));
        }
        if obs.values.len() != n * obs.times.len() * dim {
            return bad(format!(
                "{} observed values, where N × n_obs × dim = {n} × {} × {dim} are needed",
                obs.values.len(),
                obs.times.len()
            ));
        }
        if let Some(v) = obs.values.iter().find(|v| v.is_infinite()) {
            return bad(format!(
                "an observed value is infinite ({v}); NaN marks a missing one"
            ));
        }
        if obs.weights.len() != dim || obs.weights.iter().any(|w| !(*w >= 0.0 && w.is_finite())) {
            return bad(format!(
                "the weights need one finite value >= 0 per state ({dim})"
            ));
        }
        Ok(())
    }
}

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
    let all: Vec<usize> = (0..n).collect();
    let mut runs = 1;
    let mut trajectory_runs = n;
    let first = evaluate(ctx, ep, &all, &x, options)?;
    let mut status = vec![FitStatus::Running; n];
    let mut normal: Vec<Normal> = Vec::with_capacity(n);
    for (j, f) in first.into_iter().enumerate() {
        match f {
            Some(f) if f.cost.is_finite() => normal.push(f),
            _ => {
                status[j] = FitStatus::IntegrationFailed;
                normal.push(Normal::zero(n_fit));
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
                        // No move the bounds allow is larger than the tolerance.
                        status[j] = FitStatus::Converged;
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
        if status[j] == FitStatus::IntegrationFailed {
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
                if *s == FitStatus::IntegrationFailed {
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
