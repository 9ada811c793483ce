//! The fixed-step family in the shared runner (`ode::runner`): its kernel, its status
//! buffer, and its window policy: each batch of save slots is cut into dispatch windows of
//! known step counts, all planned before the batch starts, so no step ever waits on the
//! host.

use super::kernel::fixed_step_wgsl;
use super::problem::{FixedStepProblem, SavePlan};
use super::tableau::Tableau;
use crate::gpu::GpuContext;
use crate::gpu::shader::ShaderError;
use crate::model::System;
use crate::ode::device::{Binding, Precision, UniformBytes, buffer};
use crate::ode::ensemble::Ensemble;
use crate::ode::error::SimError;
use crate::ode::events::EventLog;
use crate::ode::events::log as events_log;
use crate::ode::options::RunOptions;
use crate::ode::results::ChunkResults;
use crate::ode::runner::{self, Family, Outcome, Windows};
use crate::ode::sink::Sink;
use crate::ode::solution::{RunStats, Solution};
use crate::schedule::plan::{Plan, windows};
use std::ops::Range;

/// Steps per dispatch window at most, whatever the chunk: lavapipe (llvmpipe) ends any loop
/// of an invocation after 65,535 iterations in all, counted across every loop of the
/// shader, and a step with a save every step costs about four. A longer window left a small
/// ensemble's trajectories silently unfinished (one trajectory of 10^5 steps stopped at
/// 65,535). 8,192 keeps a 2x margin there, and on a GPU it only bounds one thread's
/// sequential work per dispatch (a dispatch per 8,192 steps costs microseconds).
pub const MAX_WINDOW_STEPS: u32 = 8192;

/// Steps per window at most for a kernel with events: a step where an event fires loops
/// through root finding (up to `events::kernel::MAX_ITERATIONS`) and the record order, so
/// windows are shorter to stay within lavapipe's loop budget.
pub const MAX_EVENT_WINDOW_STEPS: u32 = 1024;

/// The fixed-step kernel's own buffers: statuses, and with events the event log.
pub struct Buffers {
    status: wgpu::Buffer,
    results: Option<wgpu::Buffer>,
}

/// The per-dispatch values of `struct Window` in `shaders/ode/fixed/step.wgsl`, in the
/// order `window_uniform` packs them.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowArgs {
    pub n_traj: u32,
    pub stride: u32,
    pub step_begin: u32,
    pub step_end: u32,
    pub n_steps: u32,
    pub save_every: u32,
    pub save_initial: u32,
    pub save_first: u32,
    pub save_count: u32,
    pub t0: f64,
    pub dt: f64,
}

/// `struct Window` as the kernel reads it; the trailing 1.0 is `one`, a real the compiler
/// cannot fold.
pub fn window_uniform(precision: Precision, w: &WindowArgs) -> Vec<u8> {
    UniformBytes::default()
        .u32(w.n_traj)
        .u32(w.stride)
        .u32(w.step_begin)
        .u32(w.step_end)
        .u32(w.n_steps)
        .u32(w.save_every)
        .u32(w.save_initial)
        .u32(w.save_first)
        .u32(w.save_count)
        .real(precision, w.t0)
        .real(precision, w.dt)
        .real(precision, 1.0)
        .finish()
}

/// A checked fixed-step problem, as the runner sees it.
pub struct FixedStep<'a> {
    problem: &'a FixedStepProblem,
    save_plan: SavePlan,
    tableau: Tableau,
}

impl<'a> FixedStep<'a> {
    pub fn new(problem: &'a FixedStepProblem) -> Result<Self, SimError> {
        Ok(FixedStep {
            save_plan: check(problem)?,
            tableau: problem.solver.step_tableau(),
            problem,
        })
    }

    /// Steps per dispatch window for a chunk of `len` trajectories: a window does about
    /// `steps_per_dispatch` trajectory-steps, within the options' floor and
    /// `MAX_WINDOW_STEPS`. Smaller chunks get longer windows.
    fn max_window(&self, options: &RunOptions, len: usize) -> u32 {
        (options.steps_per_dispatch / len as u64)
            .clamp(options.min_window_steps.max(1) as u64, u32::MAX as u64)
            .min(self.window_limit() as u64) as u32
    }

    fn window_limit(&self) -> u32 {
        if self.problem.system.events.is_empty() {
            MAX_WINDOW_STEPS
        } else {
            MAX_EVENT_WINDOW_STEPS
        }
    }

    /// Rows of reals in the results buffer (0 without events).
    fn result_rows(&self) -> usize {
        let s = &self.problem.system;
        if s.events.is_empty() {
            0
        } else {
            events_log::rows(s.event_log.k, s.dim())
        }
    }
}

impl Family for FixedStep<'_> {
    type Window = WindowArgs;
    type Buffers = Buffers;
    const LABEL: &'static str = "fixed_step";

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
        self.save_plan.times(&self.problem.grid)
    }
    fn n_slots(&self) -> usize {
        self.save_plan.n_slots()
    }
    fn extra_per_trajectory(&self, options: &RunOptions) -> (u64, usize) {
        // The event log and the ring's staging copies of it.
        let rows = self.result_rows();
        let bytes = rows as u64 * self.problem.precision.bytes() * (1 + options.ring as u64);
        (bytes, rows)
    }
    fn params_writable(&self) -> bool {
        !self.problem.system.events.is_empty()
    }

    fn wgsl(&self, workgroup_size: u32) -> Result<String, ShaderError> {
        fixed_step_wgsl(
            &self.problem.system,
            &self.tableau,
            workgroup_size,
            self.problem.precision,
        )
    }
    fn pack(&self, window: &WindowArgs) -> Vec<u8> {
        window_uniform(self.problem.precision, window)
    }
    /// One trajectory and no steps: it passes the early return (llvmpipe compiles only
    /// then), loads and stores its state, and neither saves nor finishes; the chunk's
    /// upload and status clear come after.
    fn warm_up_window(&self, stride: usize) -> WindowArgs {
        WindowArgs {
            n_traj: 1,
            stride: stride as u32,
            n_steps: 1,
            save_every: 1,
            ..WindowArgs::default()
        }
    }

    fn bindings(&self) -> Vec<Binding> {
        let mut b = vec![Binding::Storage { read_only: false }]; // status
        if self.result_rows() > 0 {
            b.push(Binding::Storage { read_only: false }); // event log
        }
        b
    }
    fn buffers(&self, ctx: &GpuContext, plan: &Plan) -> Buffers {
        use wgpu::BufferUsages as U;
        let bytes = plan.chunk as u64 * 4;
        let usage = U::STORAGE | U::COPY_SRC | U::COPY_DST;
        let rows = self.result_rows() as u64;
        Buffers {
            status: buffer(ctx, "status", bytes, usage),
            results: (rows > 0).then(|| {
                let size = rows * plan.chunk as u64 * self.problem.precision.bytes();
                buffer(ctx, "event log", size, usage)
            }),
        }
    }
    fn bound<'b>(&self, b: &'b Buffers) -> Vec<&'b wgpu::Buffer> {
        let mut out = vec![&b.status];
        out.extend(b.results.as_ref());
        out
    }
    fn outcome<'b>(&self, b: &'b Buffers) -> &'b wgpu::Buffer {
        &b.status
    }
    fn results<'b>(&self, b: &'b Buffers) -> Option<&'b wgpu::Buffer> {
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
    fn outcome_bytes(&self, _stride: usize, len: usize) -> u64 {
        len as u64 * 4
    }
    fn decode(&self, _stride: usize, len: usize, bytes: &[u8]) -> Outcome {
        Outcome::from_status_codes(len, bytes)
    }

    fn windows(
        &self,
        options: &RunOptions,
        chunk: &Range<usize>,
        stride: usize,
        slots: &Range<usize>,
    ) -> Windows<'_, WindowArgs> {
        let (plan, grid) = (&self.save_plan, &self.problem.grid);
        let steps = batch_windows(plan, slots, self.max_window(options, chunk.len()));
        Windows::Planned(
            steps
                .into_iter()
                .map(|w| {
                    let args = WindowArgs {
                        n_traj: chunk.len() as u32,
                        stride: stride as u32,
                        step_begin: w.start,
                        step_end: w.end,
                        n_steps: plan.n_steps,
                        save_every: plan.every,
                        save_initial: plan.initial as u32,
                        save_first: slots.start as u32,
                        save_count: slots.len() as u32,
                        t0: grid.t0,
                        dt: grid.dt,
                    };
                    (args, w.len() as u64 * chunk.len() as u64)
                })
                .collect(),
        )
    }
    /// Trajectory-steps.
    fn total_work(&self, trajectories: u64, _batches: usize) -> u64 {
        trajectories * self.problem.grid.n_steps as u64
    }
    fn trajectory_steps(&self, len: usize, _outcome: &Outcome) -> u64 {
        len as u64 * self.problem.grid.n_steps as u64
    }
}

/// Checks a problem without touching the GPU: the same errors `simulate` would raise first.
pub fn check(problem: &FixedStepProblem) -> Result<SavePlan, SimError> {
    problem.ensemble.validate(&problem.system)?;
    let save_plan = SavePlan::new(problem.save, problem.grid.n_steps)?;
    Ok(save_plan)
}

/// Integrates every trajectory of the problem on the GPU into memory.
pub fn simulate(
    ctx: &GpuContext,
    problem: &FixedStepProblem,
    options: &RunOptions,
) -> Result<Solution, SimError> {
    runner::simulate(ctx, &FixedStep::new(problem)?, options)
}

/// Integrates every trajectory of the problem on the GPU, handing results to `sink` as
/// they arrive (see `runner::run`).
pub fn run_into(
    ctx: &GpuContext,
    problem: &FixedStepProblem,
    options: &RunOptions,
    sink: &mut dyn Sink,
) -> Result<RunStats, SimError> {
    runner::run(ctx, &FixedStep::new(problem)?, options, sink)
}

/// Dispatch windows of the batch holding save slots `slots`: it integrates from the step
/// of the slot before it (or from the start) to the step of its last slot.
pub(crate) fn batch_windows(
    save_plan: &SavePlan,
    slots: &Range<usize>,
    max_len: u32,
) -> Vec<Range<u32>> {
    let begin = match slots.start {
        0 => 0,
        s => save_plan.step_of_slot(s - 1),
    };
    windows(begin..save_plan.step_of_slot(slots.end - 1), max_len).collect()
}
