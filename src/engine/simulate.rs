//! A simulation as an engine job: the ensemble runs chunk by chunk into host memory; its
//! progress moves with every finished submission (an estimate from the run's work ticks)
//! and every finished chunk (exact), and cancellation reaches the run between submissions.

use super::error::EngineError;
use super::job::JobShared;
use super::queue::Inner;
use crate::gpu::GpuContext;
use crate::ode::{
    FanOut, MemorySink, Problem, ProgressHook, RunOptions, RunStats, Sink, SinkError, Solution,
    Status, StepCounts, Tick,
};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// Reports finished chunks as the job's progress (cancellation reaches the run through
/// `RunOptions::cancel`).
pub(super) struct ProgressSink<'a>(pub(super) &'a JobShared);

impl Sink for ProgressSink<'_> {
    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        _: &[Status],
        _: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        self.0.advance_to(chunk.end as u64);
        Ok(())
    }
}

/// A progress hook that turns the run's work ticks into trajectories done, so that a job
/// of one long chunk does not sit at 0 until its end. Work is uniform across trajectories
/// (trajectory-steps, or trajectory-batches for adaptive runs), so the share of work done
/// is the share of trajectories done; any hook the caller set is still called.
pub(super) fn work_progress(
    shared: &Arc<JobShared>,
    n: usize,
    earlier: Option<ProgressHook>,
) -> ProgressHook {
    let shared = shared.clone();
    let (total, done) = (AtomicU64::new(0), AtomicU64::new(0));
    ProgressHook::new(move |tick| {
        match tick {
            Tick::Total(work) => total.store(work, Ordering::Relaxed),
            Tick::Done(work) => {
                let done = done.fetch_add(work, Ordering::Relaxed) + work;
                let total = total.load(Ordering::Relaxed);
                if total > 0 {
                    shared.advance_to((n as u128 * done as u128 / total as u128) as u64);
                }
            }
            Tick::Compiling | Tick::Compiled(_) => {}
        }
        if let Some(hook) = &earlier {
            (hook.0)(tick);
        }
    })
}

/// `options` with the job's cancel flag and a progress hook that moves the job's count of
/// trajectories done (`n` in all).
pub(super) fn job_options(
    mut options: RunOptions,
    shared: &Arc<JobShared>,
    n: usize,
) -> RunOptions {
    options.cancel = Some(shared.cancel.clone());
    options.progress = Some(work_progress(shared, n, options.progress.take()));
    options
}

/// A run that stopped before its last trajectory was cancelled; its device time counts
/// towards the engine's busy time either way.
pub(super) fn finished(stats: &RunStats, n: usize, inner: &Weak<Inner>) -> Result<(), EngineError> {
    if let Some(inner) = inner.upgrade() {
        inner.add_busy(stats.gpu.unwrap_or(stats.solve), stats.trajectory_steps);
    }
    if stats.completed < n {
        return Err(EngineError::Cancelled {
            done: stats.completed as u64,
            total: n as u64,
        });
    }
    Ok(())
}

pub(super) fn run(
    ctx: &GpuContext,
    problem: &Problem,
    mut options: RunOptions,
    shared: &Arc<JobShared>,
    inner: &Weak<Inner>,
) -> Result<Solution, EngineError> {
    options = job_options(options, shared, problem.ensemble().n);
    let result = (|| {
        let times = problem.save_times()?;
        let system = problem.system();
        let (n, dim) = (problem.ensemble().n, system.dim());
        // The job holds every save (and event record) in memory.
        crate::ode::error::solution_fits(system, times.len(), n, problem.precision())?;
        let mut memory = MemorySink::new(n, dim, times.len(), problem.precision());
        let mut progress = ProgressSink(shared);
        let stats =
            problem.run_into(ctx, &options, &mut FanOut(vec![&mut memory, &mut progress]))?;
        finished(&stats, n, inner)?;
        let names = system.states.iter().map(|v| v.name.clone()).collect();
        Ok(memory.into_solution(dim, names, times, stats))
    })();
    if let Some(inner) = inner.upgrade() {
        inner.finish(shared, &result);
    }
    result
}
