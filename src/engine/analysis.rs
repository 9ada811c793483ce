//! Lyapunov spectra, orbit diagrams and basins of attraction as engine jobs: the ensemble runs chunk by
//! chunk on the engine's device into the analysis' own in-memory result, with the same
//! progress (the run's work ticks) and cancellation (between submissions) as a simulation.
//! A job that was cancelled part-way ends as `Cancelled`, never as a partial result.

use super::error::EngineError;
use super::job::JobShared;
use super::queue::Inner;
use super::simulate::{finished, job_options};
use crate::gpu::GpuContext;
use crate::ode::RunOptions;
use crate::ode::basins::{BasinsError, BasinsProblem, BasinsResult, run_basins};
use crate::ode::lyapunov::{LyapunovProblem, LyapunovResult, lyapunov_spectra};
use crate::ode::orbit::{OrbitProblem, OrbitResult, run_orbit_diagram};
use std::sync::{Arc, Weak};

pub(super) fn lyapunov(
    ctx: &GpuContext,
    problem: &LyapunovProblem,
    options: RunOptions,
    shared: &Arc<JobShared>,
    inner: &Weak<Inner>,
) -> Result<LyapunovResult, EngineError> {
    let n = problem.ensemble.n;
    let options = job_options(options, shared, n);
    let result = lyapunov_spectra(ctx, problem, &options)
        .map_err(EngineError::from)
        .and_then(|r| finished(&r.stats, n, inner).map(|()| r));
    if let Some(inner) = inner.upgrade() {
        inner.finish(shared, &result);
    }
    result
}

pub(super) fn orbit(
    ctx: &GpuContext,
    problem: &OrbitProblem,
    options: RunOptions,
    shared: &Arc<JobShared>,
    inner: &Weak<Inner>,
) -> Result<OrbitResult, EngineError> {
    let n = problem.n();
    let options = job_options(options, shared, n);
    let result = run_orbit_diagram(ctx, problem, &options)
        .map_err(EngineError::from)
        .and_then(|r| finished(&r.stats, n, inner).map(|()| r));
    if let Some(inner) = inner.upgrade() {
        inner.finish(shared, &result);
    }
    result
}

pub(super) fn basins(
    ctx: &GpuContext,
    problem: &BasinsProblem,
    options: RunOptions,
    shared: &Arc<JobShared>,
    inner: &Weak<Inner>,
) -> Result<BasinsResult, EngineError> {
    let n = problem.run.ensemble().n;
    let options = job_options(options, shared, n);
    let result = run_basins(ctx, problem, &options)
        .map_err(basins_error)
        .and_then(|r| finished(&r.stats, n, inner).map(|()| r));
    if let Some(inner) = inner.upgrade() {
        inner.finish(shared, &result);
    }
    result
}

/// A basins failure as the engine reports it: the run's own errors keep their kind.
pub(super) fn basins_error(e: BasinsError) -> EngineError {
    match e {
        BasinsError::Sim(s) => EngineError::Sim(s),
        other => EngineError::BadInput(other.to_string()),
    }
}
