//! The stiff family in the shared runner (`ode::runner`): its kernel, its control, counts,
//! save-time and counter buffers, and the adaptive family's window policy (step counts are
//! unknown, so each batch of save slots is dispatched in bounded windows until every
//! trajectory has written the batch's slots; the uniform is the adaptive kernel's). A
//! system with events adds the per-trajectory event log (`ode::events::log`) as results.

use super::kernel::stiff_wgsl;
use super::problem::StiffProblem;
use crate::gpu::GpuContext;
use crate::gpu::shader::ShaderError;
use crate::model::System;
use crate::ode::adaptive::problem::SaveAt;
use crate::ode::adaptive::run::{Buffers, MAX_EVENT_ATTEMPTS, WindowArgs, window_uniform};
use crate::ode::device::{Binding, Precision, buffer};
use crate::ode::ensemble::Ensemble;
use crate::ode::error::SimError;
use crate::ode::events::EventLog;
use crate::ode::events::log as events_log;
use crate::ode::options::RunOptions;
use crate::ode::results::ChunkResults;
use crate::ode::runner::{self, Family, Outcome, Windows};
use crate::ode::sink::Sink;
use crate::ode::solution::{RunStats, Solution, StepCounts};
use crate::schedule::Plan;
use crate::schedule::plan::DeviceLimits;
use std::ops::Range;

/// Rows of the per-trajectory `counts` buffer read back at the end of a chunk: status,
/// accepted, rejected, rhs evaluations, Jacobian evaluations, method switches.
pub const COUNT_ROWS: u64 = 6;

/// Rows of the `counts` buffer in all: the six read back, then the kernel's own
/// bookkeeping (next save slot; flags with the method in use, the switch counter and the
/// batch a trajectory waits for).
pub const COUNT_ROWS_ALL: u64 = 8;

/// Rows of the `control` buffer before the `dim` rows of the next attempt's first stage:
/// t, dt and the previous error norm.
pub const CONTROL_ROWS: u64 = 3;

/// Step attempts per dispatch window at most. lavapipe (llvmpipe) ends an invocation's
/// loops after 65,535 iterations in all, counted across every loop of the shader (see
/// `fixed::run::MAX_WINDOW_STEPS`); an attempt costs one iteration of the step loop and at
/// least one of the save loop, and the generated attempt itself has no loop (everything is
/// unrolled). 8,192 keeps a wide margin for the save slots of a batch; on a GPU it only
/// bounds one thread's sequential work per dispatch.
pub const MAX_WINDOW_ATTEMPTS: u64 = 8192;

/// The kernel keeps the batch a trajectory waits for in the bits of its flags above the
/// low eight (`WAIT_SHIFT` in the template).
const MAX_SLOTS: usize = 1 << 24;

/// A checked stiff problem, as the runner sees it.
pub struct Stiff<'a> {
    problem: &'a StiffProblem,
    times: Vec<f64>,
}

impl<'a> Stiff<'a> {
    pub fn new(problem: &'a StiffProblem) -> Result<Self, SimError> {
        Ok(Stiff {
            times: check(problem)?,
            problem,
        })
    }

    /// Rows of reals in the event log (0 without events).
    fn result_rows(&self) -> usize {
        let s = &self.problem.system;
        if s.events.is_empty() {
            0
        } else {
            events_log::rows(s.event_log.k, s.dim())
        }
    }
}

/// The stiff kernel's buffers: the controlled families' own, and with events the log.
pub struct StiffBuffers {
    shared: Buffers,
    results: Option<wgpu::Buffer>,
}

impl Family for Stiff<'_> {
    type Window = WindowArgs;
    type Buffers = StiffBuffers;
    const LABEL: &'static str = "stiff";

    fn system(&self) -> &System {
        &self.problem.system
    }
    fn ensemble(&self) -> &Ensemble {
        &self.problem.ensemble
    }
    fn precision(&self) -> Precision {
        self.problem.precision
    }
    fn save_times(&self) -> Vec<f64> {
        self.times.clone()
    }
    fn n_slots(&self) -> usize {
        self.times.len()
    }
    fn extra_per_trajectory(&self, options: &RunOptions) -> (u64, usize) {
        let dim = self.problem.system.dim();
        let real = self.problem.precision.bytes();
        let log = self.result_rows() as u64;
        (
            // control rows, counts and the ring's staging copies of the counts; the event
            // log and its staging copies
            (CONTROL_ROWS + dim as u64) * real
                + (COUNT_ROWS_ALL + COUNT_ROWS * options.ring as u64) * 4
                + log * real * (1 + options.ring as u64),
            (CONTROL_ROWS as usize + dim)
                .max(COUNT_ROWS_ALL as usize)
                .max(log as usize),
        )
    }
    fn params_writable(&self) -> bool {
        !self.problem.system.events.is_empty()
    }
    fn fits(&self, limits: &DeviceLimits) -> Result<(), SimError> {
        let n = self.times.len();
        if n >= MAX_SLOTS || n as u64 * self.problem.precision.bytes() > limits.max_binding {
            return Err(SimError::TooManySaves(n));
        }
        Ok(())
    }

    fn wgsl(&self, workgroup_size: u32) -> Result<String, ShaderError> {
        let p = self.problem;
        stiff_wgsl(
            &p.system,
            p.method,
            &p.control,
            workgroup_size,
            p.precision,
            p.saveat != SaveAt::Final,
        )
    }
    fn pack(&self, window: &WindowArgs) -> Vec<u8> {
        window_uniform(self.problem.precision, window)
    }
    fn warm_up_window(&self, stride: usize) -> WindowArgs {
        WindowArgs::warm_up(stride)
    }

    fn bindings(&self) -> Vec<Binding> {
        let mut b = Buffers::bindings();
        if self.result_rows() > 0 {
            b.push(Binding::Storage { read_only: false }); // event log
        }
        b
    }
    fn buffers(&self, ctx: &GpuContext, plan: &Plan) -> StiffBuffers {
        use wgpu::BufferUsages as U;
        let p = self.problem;
        let rows = self.result_rows() as u64;
        StiffBuffers {
            shared: Buffers::new(
                ctx,
                plan,
                p.precision,
                CONTROL_ROWS + p.system.dim() as u64,
                COUNT_ROWS_ALL,
                &self.times,
            ),
            results: (rows > 0).then(|| {
                let size = rows * plan.chunk as u64 * p.precision.bytes();
                buffer(
                    ctx,
                    "event log",
                    size,
                    U::STORAGE | U::COPY_SRC | U::COPY_DST,
                )
            }),
        }
    }
    fn bound<'b>(&self, b: &'b StiffBuffers) -> Vec<&'b wgpu::Buffer> {
        let mut out = b.shared.bound();
        out.extend(b.results.as_ref());
        out
    }
    fn outcome<'b>(&self, b: &'b StiffBuffers) -> &'b wgpu::Buffer {
        b.shared.counts()
    }
    fn results<'b>(&self, b: &'b StiffBuffers) -> Option<&'b wgpu::Buffer> {
        b.results.as_ref()
    }
    fn results_bytes(&self, stride: usize, _len: usize) -> u64 {
        self.result_rows() as u64 * stride as u64 * self.problem.precision.bytes()
    }
    fn decode_results(&self, stride: usize, len: usize, bytes: &[u8]) -> Option<ChunkResults> {
        let s = &self.problem.system;
        (self.result_rows() > 0).then(|| {
            ChunkResults::Events(EventLog::decode(
                bytes,
                self.problem.precision,
                (stride, len),
                (s.event_log.k, s.dim()),
            ))
        })
    }
    fn outcome_bytes(&self, stride: usize, _len: usize) -> u64 {
        COUNT_ROWS * stride as u64 * 4
    }
    fn decode(&self, stride: usize, len: usize, bytes: &[u8]) -> Outcome {
        Outcome::from_count_rows_n(stride, len, bytes, COUNT_ROWS as usize)
    }
    fn unfinished<'b>(&self, b: &'b StiffBuffers) -> Option<&'b wgpu::Buffer> {
        Some(b.shared.unfinished())
    }

    fn windows(
        &self,
        options: &RunOptions,
        chunk: &Range<usize>,
        stride: usize,
        slots: &Range<usize>,
    ) -> Windows<'_, WindowArgs> {
        let p = self.problem;
        let args = WindowArgs::controlled(
            options,
            (chunk.len(), stride),
            slots,
            self.times.len(),
            (p.t0, p.t1, p.dt_max()),
            &p.control,
            // An attempt where an event fires loops through root finding and the record
            // order: shorter dispatches keep lavapipe's loop budget.
            if p.system.events.is_empty() {
                MAX_WINDOW_ATTEMPTS
            } else {
                MAX_EVENT_ATTEMPTS.min(MAX_WINDOW_ATTEMPTS)
            },
        );
        Windows::UntilDone(Box::new(move |window| WindowArgs { window, ..args }))
    }
    /// Trajectory-batches: a trajectory through one batch of save slots.
    fn total_work(&self, trajectories: u64, batches: usize) -> u64 {
        trajectories * batches as u64
    }
    /// Step attempts, accepted and rejected.
    fn trajectory_steps(&self, _len: usize, outcome: &Outcome) -> u64 {
        outcome
            .steps
            .iter()
            .flatten()
            .map(StepCounts::attempts)
            .sum()
    }
}

/// Checks a problem without touching the GPU; returns the save times.
pub fn check(problem: &StiffProblem) -> Result<Vec<f64>, SimError> {
    let times = problem.check()?;
    problem.ensemble.validate(&problem.system)?;
    Ok(times)
}

/// How the run is cut up on `ctx`.
pub fn plan_stiff(
    ctx: &GpuContext,
    problem: &StiffProblem,
    options: &RunOptions,
) -> Result<Plan, SimError> {
    runner::plan_run(ctx, &Stiff::new(problem)?, options)
}

/// Integrates every trajectory of the problem on the GPU into memory.
pub fn simulate_stiff(
    ctx: &GpuContext,
    problem: &StiffProblem,
    options: &RunOptions,
) -> Result<Solution, SimError> {
    runner::simulate(ctx, &Stiff::new(problem)?, options)
}

/// Integrates every trajectory on the GPU, handing results to `sink` as they arrive.
pub fn run_stiff_into(
    ctx: &GpuContext,
    problem: &StiffProblem,
    options: &RunOptions,
    sink: &mut dyn Sink,
) -> Result<RunStats, SimError> {
    runner::run(ctx, &Stiff::new(problem)?, options, sink)
}

#[cfg(test)]
mod tests {
    use crate::gpu::shader::expand;

    /// The stiff kernels read the adaptive kernel's window uniform (`window_uniform` packs
    /// it), so the templates must declare the same `struct Window`.
    #[test]
    fn the_window_struct_is_the_adaptive_ones() {
        let window = |path: &str| -> String {
            let text = expand(path).unwrap();
            let body = text.split("struct Window {").nth(1).unwrap();
            body.split('}').next().unwrap().to_string()
        };
        for template in [
            super::super::kernel::TEMPLATE,
            super::super::kernel::EVENTS_TEMPLATE,
        ] {
            assert_eq!(
                window(template),
                window(crate::ode::adaptive::kernel::TEMPLATE),
                "{template}"
            );
        }
    }
}
