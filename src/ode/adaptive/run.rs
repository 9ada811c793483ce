//! The adaptive family in the shared runner (`ode::runner`): its kernel, its control,
//! counts, save-time and counter buffers, and its window policy: step counts are unknown,
//! so each batch of save slots is dispatched in bounded windows until every trajectory has
//! written the batch's slots (the host learns that from one counter per submission, never
//! per step).

use super::kernel::adaptive_wgsl;
use super::pair::Pair;
use super::problem::{AdaptiveProblem, Control, SaveAt};
use crate::gpu::GpuContext;
use crate::gpu::shader::ShaderError;
use crate::model::System;
use crate::ode::device::{Binding, Precision, UniformBytes, buffer};
use crate::ode::ensemble::Ensemble;
use crate::ode::error::SimError;
use crate::ode::events::EventLog;
use crate::ode::events::log as events_log;
use crate::ode::fixed::run::MAX_WINDOW_STEPS;
use crate::ode::options::RunOptions;
use crate::ode::results::ChunkResults;
use crate::ode::runner::{self, Family, Outcome, Windows};
use crate::ode::sink::Sink;
use crate::ode::solution::{RunStats, Solution, StepCounts};
use crate::schedule::plan::{DeviceLimits, Plan};
use std::ops::Range;

/// Rows of the per-trajectory `counts` buffer read back at the end of a chunk: status,
/// accepted, rejected, rhs evaluations.
pub const COUNT_ROWS: u64 = 4;

/// Rows of the `counts` buffer in all: the four read back, then the kernel's own
/// bookkeeping of the batch in progress.
pub const COUNT_ROWS_ALL: u64 = 6;

/// Rows of the `control` buffer before the `dim` rows of the last accepted step's
/// derivative: t, dt and log2 of the previous error norm.
pub const CONTROL_ROWS: u64 = 3;

/// Counters of the `unfinished` buffer: one per window of a submission.
const MAX_WINDOWS: u64 = 64;

/// The per-dispatch values of `struct Window` in `shaders/ode/adaptive/step.wgsl`, in the
/// order `window_uniform` packs them.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowArgs {
    pub n_traj: u32,
    pub stride: u32,
    pub save_first: u32,
    pub save_end: u32,
    pub n_slots: u32,
    pub max_attempts: u32,
    pub window: u32,
    pub max_steps: u32,
    pub t0: f64,
    pub t1: f64,
    pub dt_initial: f64,
    pub dt_min: f64,
    pub dt_max: f64,
}

/// `struct Window` as the kernel reads it; the trailing 1.0 is `one`, a real the compiler
/// cannot fold.
pub fn window_uniform(precision: Precision, w: &WindowArgs) -> Vec<u8> {
    UniformBytes::default()
        .u32(w.n_traj)
        .u32(w.stride)
        .u32(w.save_first)
        .u32(w.save_end)
        .u32(w.n_slots)
        .u32(w.max_attempts)
        .u32(w.window)
        .u32(w.max_steps)
        .real(precision, w.t0)
        .real(precision, w.t1)
        .real(precision, w.dt_initial)
        .real(precision, w.dt_min)
        .real(precision, w.dt_max)
        .real(precision, 1.0)
        .finish()
}

impl WindowArgs {
    /// One trajectory whose span is empty: it passes the early return (llvmpipe compiles
    /// only then) and ends at once; the chunk's first submission clears what it wrote.
    pub fn warm_up(stride: usize) -> WindowArgs {
        WindowArgs {
            n_traj: 1,
            stride: stride as u32,
            max_steps: 1,
            dt_max: 1.0,
            ..WindowArgs::default()
        }
    }

    /// The window of a controlled family (adaptive pairs, stiff solvers) for a chunk of
    /// `len` trajectories in rows `stride` long and a batch of save slots: about
    /// `steps_per_dispatch` trajectory-steps a dispatch, at most `max_attempts` attempts.
    pub fn controlled(
        options: &RunOptions,
        (len, stride): (usize, usize),
        slots: &Range<usize>,
        n_slots: usize,
        (t0, t1, dt_max): (f64, f64, f64),
        control: &Control,
        max_attempts: u64,
    ) -> WindowArgs {
        let attempts = (options.steps_per_dispatch / len as u64)
            .clamp(options.min_window_steps.max(1) as u64, u32::MAX as u64)
            .min(max_attempts) as u32;
        WindowArgs {
            n_traj: len as u32,
            stride: stride as u32,
            save_first: slots.start as u32,
            save_end: slots.end as u32,
            n_slots: n_slots as u32,
            max_attempts: attempts,
            window: 0,
            max_steps: control.max_steps,
            t0,
            t1,
            dt_initial: control.dt_initial.unwrap_or(0.0),
            dt_min: control.dt_min,
            dt_max,
        }
    }
}

/// A checked adaptive problem, as the runner sees it.
pub struct Adaptive<'a> {
    problem: &'a AdaptiveProblem,
    pair: &'static Pair,
    times: Vec<f64>,
}

/// Attempts per dispatch at most for a kernel with events: an attempt where an event fires
/// loops through root finding and the record order, so dispatches are shorter to stay
/// within lavapipe's loop budget (see `fixed::run::MAX_WINDOW_STEPS`).
pub const MAX_EVENT_ATTEMPTS: u64 = 1024;

/// The adaptive kernel's buffers: the controlled families' own, and with events the log.
pub struct AdaptiveBuffers {
    shared: Buffers,
    results: Option<wgpu::Buffer>,
}

impl Adaptive<'_> {
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

impl<'a> Adaptive<'a> {
    pub fn new(problem: &'a AdaptiveProblem) -> Result<Self, SimError> {
        Ok(Adaptive {
            times: check(problem)?,
            pair: problem.pair()?,
            problem,
        })
    }
}

/// The own buffers of a controlled family's kernel (adaptive pairs, stiff solvers), bound
/// in this order after the shared ones.
pub struct Buffers {
    /// Per trajectory: the family's control rows (t, h, error history, first stage).
    control: wgpu::Buffer,
    /// u32 count rows per trajectory (status and step counts first).
    counts: wgpu::Buffer,
    /// The run's save times.
    times: wgpu::Buffer,
    /// Trajectories with work left after each window of a submission.
    unfinished: wgpu::Buffer,
}

impl Buffers {
    /// `control_rows` reals and `count_rows` u32s per trajectory of a chunk, and the save
    /// times uploaded once.
    pub fn new(
        ctx: &GpuContext,
        plan: &Plan,
        precision: Precision,
        control_rows: u64,
        count_rows: u64,
        times: &[f64],
    ) -> Buffers {
        use wgpu::BufferUsages as U;
        let real = precision.bytes();
        let c = plan.chunk as u64;
        let control = buffer(ctx, "control", control_rows * c * real, U::STORAGE);
        let readable = U::STORAGE | U::COPY_SRC | U::COPY_DST;
        let counts = buffer(ctx, "counts", count_rows * c * 4, readable);
        let times_buffer = buffer(
            ctx,
            "save times",
            times.len() as u64 * real,
            U::STORAGE | U::COPY_DST,
        );
        let mut bytes = Vec::with_capacity(times.len() * real as usize);
        for &t in times {
            precision.push_bytes(t, &mut bytes);
        }
        ctx.queue.write_buffer(&times_buffer, 0, &bytes);
        let unfinished = buffer(ctx, "unfinished", 4 * MAX_WINDOWS, readable);
        Buffers {
            control,
            counts,
            times: times_buffer,
            unfinished,
        }
    }

    /// The bindings' kinds, in `bound` order.
    pub fn bindings() -> Vec<Binding> {
        let storage = |read_only| Binding::Storage { read_only };
        vec![
            storage(false), // control
            storage(false), // counts
            storage(true),  // save times
            storage(false), // unfinished
        ]
    }

    pub fn bound(&self) -> Vec<&wgpu::Buffer> {
        vec![&self.control, &self.counts, &self.times, &self.unfinished]
    }

    /// The counts buffer, whose first rows are read back.
    pub fn counts(&self) -> &wgpu::Buffer {
        &self.counts
    }

    pub fn unfinished(&self) -> &wgpu::Buffer {
        &self.unfinished
    }
}

impl Family for Adaptive<'_> {
    type Window = WindowArgs;
    type Buffers = AdaptiveBuffers;
    const LABEL: &'static str = "adaptive";

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
            // the widest binding: the control rows, the log, or (in f32, for fewer than
            // three states) the COUNT_ROWS_ALL u32 counters, counted here in reals
            (CONTROL_ROWS as usize + dim)
                .max(log as usize)
                .max((COUNT_ROWS_ALL * 4).div_ceil(real) as usize),
        )
    }
    fn params_writable(&self) -> bool {
        !self.problem.system.events.is_empty()
    }
    fn fits(&self, limits: &DeviceLimits) -> Result<(), SimError> {
        if self.times.len() as u64 * self.problem.precision.bytes() > limits.max_binding {
            return Err(SimError::TooManySaves(self.times.len()));
        }
        Ok(())
    }

    fn wgsl(&self, workgroup_size: u32) -> Result<String, ShaderError> {
        let p = self.problem;
        adaptive_wgsl(
            &p.system,
            self.pair,
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
    fn buffers(&self, ctx: &GpuContext, plan: &Plan) -> AdaptiveBuffers {
        use wgpu::BufferUsages as U;
        let p = self.problem;
        let rows = self.result_rows() as u64;
        AdaptiveBuffers {
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
    fn bound<'b>(&self, b: &'b AdaptiveBuffers) -> Vec<&'b wgpu::Buffer> {
        let mut out = b.shared.bound();
        out.extend(b.results.as_ref());
        out
    }
    fn outcome<'b>(&self, b: &'b AdaptiveBuffers) -> &'b wgpu::Buffer {
        b.shared.counts()
    }
    fn results<'b>(&self, b: &'b AdaptiveBuffers) -> Option<&'b wgpu::Buffer> {
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
        Outcome::from_count_rows(stride, len, bytes)
    }
    fn unfinished<'b>(&self, b: &'b AdaptiveBuffers) -> Option<&'b wgpu::Buffer> {
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
            // Within lavapipe's loop budget: a small ensemble would otherwise loop through
            // all its attempts in one dispatch (see `MAX_WINDOW_STEPS`).
            if p.system.events.is_empty() {
                MAX_WINDOW_STEPS as u64
            } else {
                MAX_EVENT_ATTEMPTS
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
pub fn check(problem: &AdaptiveProblem) -> Result<Vec<f64>, SimError> {
    let times = problem.check()?;
    problem.ensemble.validate(&problem.system)?;
    Ok(times)
}

/// Integrates every trajectory of the problem on the GPU into memory.
pub fn simulate_adaptive(
    ctx: &GpuContext,
    problem: &AdaptiveProblem,
    options: &RunOptions,
) -> Result<Solution, SimError> {
    runner::simulate(ctx, &Adaptive::new(problem)?, options)
}

/// Integrates every trajectory of an adaptive problem on the GPU, handing results to `sink`
/// as they arrive (see `runner::run`).
pub fn run_adaptive_into(
    ctx: &GpuContext,
    problem: &AdaptiveProblem,
    options: &RunOptions,
    sink: &mut dyn Sink,
) -> Result<RunStats, SimError> {
    runner::run(ctx, &Adaptive::new(problem)?, options, sink)
}
