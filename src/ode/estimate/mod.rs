//! Parameter estimation, one fit per trajectory: each trajectory of an ensemble has its
//! own observations (values of the states at given times, any of them missing) and fits
//! its own parameters and initial values by Levenberg–Marquardt. Residuals and their
//! Jacobians come from one GPU run per iteration of every fit still going, with the
//! forward sensitivities (`ode::sensitivity`) of the fitted quantities: the run's saves,
//! at the observation times, are folded into each trajectory's normal equations as chunks
//! arrive (`ObservationSink`), so memory holds N small matrices, never the saves. Where
//! the device has f64 it does the folding itself (`fold`) and only the matrices come back.
//!
//! Each fit converges, stalls or runs out of iterations on its own; fits that are done
//! leave the ensemble, so later runs are smaller. Results do not depend on chunking: each
//! run's saves are the same bits however it is cut, and the host's arithmetic is f64 in a
//! fixed order. `shared` fits one set of values to every trajectory at once.

mod driver;
pub mod fold;
pub mod lm;
mod problem;
pub mod shared;
pub mod shooting;
mod sink;

pub use problem::{
    Estimate, EstimateError, EstimationProblem, FitStatus, Observations, Start, Stopping,
};

use super::adaptive::SaveAt;
use super::any::Problem;
use super::ensemble::{Ensemble, InitialStates, Inputs, Parameters, Table};
use super::fixed::problem::TimeGrid;
use super::options::RunOptions;
use super::sensitivity::{Sensitivities, Target, augment};
use crate::gpu::GpuContext;
use driver::{Fits, norm};
use fold::{FoldOutput, Folding};
use lm::Normal;
use sink::{Grouped, ObservationSink};

/// Each fit's initial state and parameters at its point: the ensemble's, with the fitted
/// quantities in `points[a]` (trajectory `active[a]`) put in.
fn states_and_params(
    ep: &EstimationProblem,
    active: &[usize],
    points: &[Vec<f64>],
) -> (Vec<f64>, Vec<f64>) {
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
    (states, params)
}

/// The model run for the fits `active` from `states` and `params` (row-major, one row
/// each), saving at `saves` (adaptive and stiff runs; a fixed-step run saves on its grid),
/// over `window` instead of the problem's span where one is given (a shooting segment).
fn run_problem(
    ep: &EstimationProblem,
    active: &[usize],
    states: Vec<f64>,
    params: Vec<f64>,
    window: Option<(f64, f64)>,
    saves: Vec<f64>,
) -> Result<Problem, EstimateError> {
    let base = ep.problem.ensemble();
    let system = ep.problem.system();
    let (dim, n_params) = (system.dim(), system.n_params());
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
    let saveat = SaveAt::Times(saves);
    Ok(match ep.problem.clone() {
        Problem::Fixed(mut p) => {
            p.ensemble = ensemble;
            if let Some((t0, t1)) = window {
                p.grid = TimeGrid::from_span(t0, t1, p.grid.dt).map_err(|e| {
                    EstimateError::Input(format!(
                        "the shooting segment from t = {t0} to {t1} is not whole steps of \
                         dt = {}: {e}",
                        p.grid.dt
                    ))
                })?;
            }
            Problem::Fixed(p)
        }
        Problem::Adaptive(mut p) => {
            p.ensemble = ensemble;
            p.saveat = saveat;
            if let Some((t0, t1)) = window {
                (p.t0, p.t1) = (t0, t1);
            }
            Problem::Adaptive(p)
        }
        Problem::Stiff(mut p) => {
            p.ensemble = ensemble;
            p.saveat = saveat;
            if let Some((t0, t1)) = window {
                (p.t0, p.t1) = (t0, t1);
            }
            Problem::Stiff(p)
        }
        Problem::Sde(_) => {
            return Err(EstimateError::Input(
                "estimation fits ordinary differential equations, not stochastic ones".into(),
            ));
        }
    })
}

/// The problem run for the fits still going: `points[a]` holds the fitted values of
/// trajectory `active[a]`.
fn evaluation_problem(
    ep: &EstimationProblem,
    active: &[usize],
    points: &[Vec<f64>],
) -> Result<Problem, EstimateError> {
    let (states, params) = states_and_params(ep, active, points);
    run_problem(
        ep,
        active,
        states,
        params,
        None,
        ep.observations.times.clone(),
    )
}

/// The model at fitted values, for drawing it against the data: trajectories `samples`
/// run from `values[a]` (the fitted quantities of `samples[a]`, in `ep.targets` order),
/// saved at `times` (an adaptive or stiff run; a fixed-step run saves on its own grid).
/// One GPU run of `samples.len()` trajectories, without sensitivities.
pub fn fitted_trajectories(
    ctx: &GpuContext,
    ep: &EstimationProblem,
    samples: &[usize],
    values: &[Vec<f64>],
    times: Vec<f64>,
    options: &RunOptions,
) -> Result<super::Solution, EstimateError> {
    let (states, params) = states_and_params(ep, samples, values);
    let problem = run_problem(ep, samples, states, params, None, times)?;
    let solution = problem.simulate(ctx, options)?;
    if solution.stats.completed < samples.len() {
        return Err(EstimateError::Cancelled);
    }
    Ok(solution)
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

/// One GPU run at `points` for the fits `active`, its saves folded into an
/// `ObservationSink` (on the device as `device` says, or on the host).
fn fold_run<T>(
    ctx: &GpuContext,
    ep: &EstimationProblem,
    (active, points): (&[usize], &[Vec<f64>]),
    options: &RunOptions,
    device: Option<FoldOutput>,
    finish: impl for<'a> FnOnce(ObservationSink<'a>) -> T,
) -> Result<T, EstimateError> {
    let problem = evaluation_problem(ep, active, points)?;
    let sens = Sensitivities {
        targets: ep.targets.clone(),
        error_control: ep.error_control,
    };
    let run = augment(&problem, &sens)?;
    let slots = observed_slots(&run.problem.save_times()?, &ep.observations.times)?;
    let mut sink = ObservationSink::new(ep, active, slots, device);
    let stats = run.problem.run_into(ctx, options, &mut sink)?;
    if stats.completed < active.len() {
        return Err(EstimateError::Cancelled);
    }
    Ok(finish(sink))
}

/// One GPU run at `points` for the fits `active`: each one's normal equations, `None`
/// where its integration did not succeed.
fn evaluate(
    ctx: &GpuContext,
    ep: &EstimationProblem,
    (active, points): (&[usize], &[Vec<f64>]),
    options: &RunOptions,
    folding: Folding,
) -> Result<Vec<Option<Normal>>, EstimateError> {
    let device = (folding == Folding::Device).then_some(FoldOutput::PerTrajectory);
    fold_run(ctx, ep, (active, points), options, device, |sink| {
        sink.into_normals()
    })
}

/// One GPU run of every trajectory at `x` (a shared fit), folded on the device into
/// groups of trajectories.
fn evaluate_grouped(
    ctx: &GpuContext,
    ep: &EstimationProblem,
    x: &[f64],
    options: &RunOptions,
) -> Result<Grouped, EstimateError> {
    let all: Vec<usize> = (0..ep.problem.ensemble().n).collect();
    let points = vec![x.to_vec(); all.len()];
    fold_run(
        ctx,
        ep,
        (&all, &points),
        options,
        Some(FoldOutput::Groups),
        |sink| sink.into_grouped(),
    )
}

/// Runs every fit (see the module comment), folding where `Folding::for_device` says.
pub fn estimate(
    ctx: &GpuContext,
    ep: &EstimationProblem,
    options: &RunOptions,
) -> Result<Estimate, EstimateError> {
    estimate_folding(ctx, ep, options, Folding::for_device(ctx, ep.targets.len()))
}

/// `estimate`, folding the saves where `folding` says.
pub fn estimate_folding(
    ctx: &GpuContext,
    ep: &EstimationProblem,
    options: &RunOptions,
    folding: Folding,
) -> Result<Estimate, EstimateError> {
    ep.check()?;
    folding.check(ctx).map_err(EstimateError::Input)?;
    let started = std::time::Instant::now();
    let fits = driver::levenberg_marquardt(
        starts(ep),
        &enough(ep),
        &ep.bounds,
        ep.stopping,
        |active, points| evaluate(ctx, ep, (active, points), options, folding),
    )?;
    Ok(into_estimate(ep, fits, started))
}

/// Each fit's start, clamped into the bounds.
fn starts(ep: &EstimationProblem) -> Vec<Vec<f64>> {
    let n_fit = ep.targets.len();
    (0..ep.problem.ensemble().n)
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
        .collect()
}

/// Whether each fit has as many observed values as quantities to fit (with fewer there is
/// nothing to fit from).
fn enough(ep: &EstimationProblem) -> Vec<bool> {
    (0..ep.problem.ensemble().n)
        .map(|j| ep.observed(j) >= ep.targets.len())
        .collect()
}

/// The result of fits that ended at `fits`, begun at `started`.
fn into_estimate(ep: &EstimationProblem, fits: Fits, started: std::time::Instant) -> Estimate {
    let n_fit = ep.targets.len();
    let Fits {
        x,
        normal,
        status,
        iterations,
        runs,
        trajectory_runs,
    } = fits;
    let names = ep
        .targets
        .iter()
        .map(|t| t.name(ep.problem.system()))
        .collect();
    let mut covariance = Vec::with_capacity(x.len() * n_fit * n_fit);
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
    Estimate {
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
    }
}
