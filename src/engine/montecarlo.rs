//! Monte Carlo statistics as an engine job: the ensemble streams through a `MonteCarlo`
//! reducer (per save time and state: count, mean, variance, standard error, extremes,
//! quantiles), so the job holds statistics, never paths, and N may far exceed what host
//! memory could keep. The statistics are the same bits however the run was chunked.

use super::error::EngineError;
use super::job::JobShared;
use super::queue::Inner;
use super::simulate::{ProgressSink, finished, job_options};
use crate::gpu::GpuContext;
use crate::ode::{FanOut, MonteCarlo, MonteCarloResult, Problem, RunOptions, RunStats, Tally};
use std::sync::{Arc, Weak};

/// A finished Monte Carlo job.
#[derive(Debug, Clone)]
pub struct MonteCarloRun {
    pub statistics: MonteCarloResult,
    /// The save times, the statistics' first axis.
    pub times: Vec<f64>,
    /// Status counts and step totals over every trajectory.
    pub tally: Tally,
    pub stats: RunStats,
}

/// Host bytes the reducer typically reaches for `problem` (see `MonteCarlo::typical_bytes`).
pub fn monte_carlo_bytes(problem: &Problem) -> Result<u64, crate::ode::SimError> {
    let n_save = problem.save_times()?.len();
    Ok(MonteCarlo::typical_bytes(
        n_save,
        problem.system().dim(),
        problem.ensemble().n,
    ))
}

pub(super) fn run(
    ctx: &GpuContext,
    problem: &Problem,
    levels: &[f64],
    options: RunOptions,
    shared: &Arc<JobShared>,
    inner: &Weak<Inner>,
) -> Result<MonteCarloRun, EngineError> {
    let n = problem.ensemble().n;
    let options = job_options(options, shared, n);
    let result = (|| {
        let times = problem.save_times()?;
        let mut statistics = MonteCarlo::new(times.len(), problem.system().dim(), levels);
        let mut tally = Tally::default();
        let mut progress = ProgressSink(shared);
        let stats = problem.run_into(
            ctx,
            &options,
            &mut FanOut(vec![&mut statistics, &mut tally, &mut progress]),
        )?;
        finished(&stats, n, inner)?;
        Ok(MonteCarloRun {
            statistics: statistics.result(),
            times,
            tally,
            stats,
        })
    })();
    if let Some(inner) = inner.upgrade() {
        inner.finish(shared, &result);
    }
    result
}
