//! The stiff family in the shared runner (`ode::runner`): its kernel, its control, counts,
//! save-time and counter buffers, and the adaptive family's window policy (step counts are
//! unknown, so each batch of save slots is dispatched in bounded windows until every
//! trajectory has written the batch's slots; the uniform is the adaptive kernel's).

use super::kernel::stiff_wgsl;
use super::problem::StiffProblem;
use crate::gpu::GpuContext;
use crate::gpu::shader::ShaderError;
use crate::model::System;
use crate::ode::adaptive::problem::SaveAt;
use crate::ode::adaptive::run::{WindowArgs, window_uniform};
use crate::ode::device::{Binding, Precision, buffer};
use crate::ode::ensemble::Ensemble;
use crate::ode::error::SimError;
use crate::ode::options::RunOptions;
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

/// Counters of the `unfinished` buffer: one per window of a submission.
const MAX_WINDOWS: u64 = 64;

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
}

/// The stiff kernel's own buffers, bound in this order after the shared ones.
pub struct Buffers {
    /// Per trajectory: `CONTROL_ROWS` rows, then the first stage's `dim`.
    control: wgpu::Buffer,
    /// `COUNT_ROWS_ALL` u32 rows per trajectory.
    counts: wgpu::Buffer,
    /// The run's save times.
    times: wgpu::Buffer,
    /// Trajectories with work left after each window of a submission.
    unfinished: wgpu::Buffer,
}

impl Family for Stiff<'_> {
    type Window = WindowArgs;
    type Buffers = Buffers;
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
        (
            (CONTROL_ROWS + dim as u64) * real
                + (COUNT_ROWS_ALL + COUNT_ROWS * options.ring as u64) * 4,
            (CONTROL_ROWS as usize + dim).max(COUNT_ROWS_ALL as usize),
        )
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
    /// One trajectory whose span is empty: it passes the early return (llvmpipe compiles
    /// only then) and ends at once; the chunk's first submission clears what it wrote.
    fn warm_up_window(&self, stride: usize) -> WindowArgs {
        WindowArgs {
            n_traj: 1,
            stride: stride as u32,
            max_steps: 1,
            dt_max: 1.0,
            ..WindowArgs::default()
        }
    }

    fn bindings(&self) -> Vec<Binding> {
        let storage = |read_only| Binding::Storage { read_only };
        vec![
            storage(false), // control
            storage(false), // counts
            storage(true),  // save times
            storage(false), // unfinished
        ]
    }
    fn buffers(&self, ctx: &GpuContext, plan: &Plan) -> Buffers {
        use wgpu::BufferUsages as U;
        let precision = self.problem.precision;
        let real = precision.bytes();
        let c = plan.chunk as u64;
        let dim = self.problem.system.dim() as u64;
        let control = buffer(ctx, "control", (CONTROL_ROWS + dim) * c * real, U::STORAGE);
        let readable = U::STORAGE | U::COPY_SRC | U::COPY_DST;
        let counts = buffer(ctx, "counts", COUNT_ROWS_ALL * c * 4, readable);
        let times = buffer(
            ctx,
            "save times",
            self.times.len() as u64 * real,
            U::STORAGE | U::COPY_DST,
        );
        let mut bytes = Vec::with_capacity(self.times.len() * real as usize);
        for &t in &self.times {
            precision.push_bytes(t, &mut bytes);
        }
        ctx.queue.write_buffer(&times, 0, &bytes);
        let unfinished = buffer(ctx, "unfinished", 4 * MAX_WINDOWS, readable);
        Buffers {
            control,
            counts,
            times,
            unfinished,
        }
    }
    fn bound<'b>(&self, b: &'b Buffers) -> Vec<&'b wgpu::Buffer> {
        vec![&b.control, &b.counts, &b.times, &b.unfinished]
    }
    fn outcome<'b>(&self, b: &'b Buffers) -> &'b wgpu::Buffer {
        &b.counts
    }
    fn outcome_bytes(&self, stride: usize, _len: usize) -> u64 {
        COUNT_ROWS * stride as u64 * 4
    }
    fn decode(&self, stride: usize, len: usize, bytes: &[u8]) -> Outcome {
        Outcome::from_count_rows_n(stride, len, bytes, COUNT_ROWS as usize)
    }
    fn unfinished<'b>(&self, b: &'b Buffers) -> Option<&'b wgpu::Buffer> {
        Some(&b.unfinished)
    }

    fn windows(
        &self,
        options: &RunOptions,
        chunk: &Range<usize>,
        stride: usize,
        slots: &Range<usize>,
    ) -> Windows<'_, WindowArgs> {
        let p = self.problem;
        // Step attempts per window: about `steps_per_dispatch` trajectory-steps a dispatch.
        let max_attempts = (options.steps_per_dispatch / chunk.len() as u64)
            .clamp(options.min_window_steps.max(1) as u64, u32::MAX as u64)
            .min(MAX_WINDOW_ATTEMPTS) as u32;
        let args = WindowArgs {
            n_traj: chunk.len() as u32,
            stride: stride as u32,
            save_first: slots.start as u32,
            save_end: slots.end as u32,
            n_slots: self.times.len() as u32,
            max_attempts,
            window: 0,
            max_steps: p.control.max_steps,
            t0: p.t0,
            t1: p.t1,
            dt_initial: p.control.dt_initial.unwrap_or(0.0),
            dt_min: p.control.dt_min,
            dt_max: p.dt_max(),
        };
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
    use crate::gpu::shader::shader_file;

    /// The stiff kernel reads the adaptive kernel's window uniform (`window_uniform` packs
    /// it), so both templates must declare the same `struct Window`.
    #[test]
    fn the_window_struct_is_the_adaptive_ones() {
        let window = |path: &str| -> String {
            let text = shader_file(path).unwrap();
            let body = text.split("struct Window {").nth(1).unwrap();
            body.split('}').next().unwrap().to_string()
        };
        assert_eq!(
            window(super::super::kernel::TEMPLATE),
            window(crate::ode::adaptive::kernel::TEMPLATE)
        );
    }
}
