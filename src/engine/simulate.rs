//! A simulation as an engine job: the ensemble runs chunk by chunk into host memory, each
//! finished chunk is reported as progress, and cancellation reaches the run between chunks.

use super::error::EngineError;
use super::job::JobShared;
use super::queue::Inner;
use crate::gpu::GpuContext;
use crate::ode::{
    FanOut, MemorySink, Problem, RunOptions, Sink, SinkError, Solution, Status, StepCounts,
};
use std::ops::Range;
use std::sync::Weak;

/// Reports finished chunks as the job's progress (cancellation reaches the run through
/// `RunOptions::cancel`).
struct ProgressSink<'a>(&'a JobShared);

impl Sink for ProgressSink<'_> {
    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        _: &[Status],
        _: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        self.0.set_done(chunk.end as u64);
        Ok(())
    }
}

pub(super) fn run(
    ctx: &GpuContext,
    problem: &Problem,
    mut options: RunOptions,
    shared: &JobShared,
    inner: &Weak<Inner>,
) -> Result<Solution, EngineError> {
    options.cancel = Some(shared.cancel.clone());
    let result = (|| {
        let times = problem.save_times()?;
        let system = problem.system();
        let (n, dim) = (problem.ensemble().n, system.dim());
        let mut memory = MemorySink::new(n, dim, times.len(), problem.precision());
        let mut progress = ProgressSink(shared);
        let stats =
            problem.run_into(ctx, &options, &mut FanOut(vec![&mut memory, &mut progress]))?;
        if let Some(inner) = inner.upgrade() {
            inner.add_busy(stats.gpu.unwrap_or(stats.solve), stats.trajectory_steps);
        }
        if stats.completed < n {
            return Err(EngineError::Cancelled {
                done: stats.completed as u64,
                total: n as u64,
            });
        }
        let names = system.states.iter().map(|v| v.name.clone()).collect();
        Ok(memory.into_solution(dim, names, times, stats))
    })();
    if let Some(inner) = inner.upgrade() {
        inner.finish(shared, &result);
    }
    result
}
