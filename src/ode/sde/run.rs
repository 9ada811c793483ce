//! The SDE family in the shared runner (`ode::runner`): fixed-step methods plug in like the
//! ODE fixed-step family (windows of known step counts, planned before a batch starts),
//! milstein-adaptive like the adaptive family (bounded windows until every trajectory has
//! written the batch's slots). Both carry the noise key and the chunk's first trajectory
//! index in their window, so increments are keyed by the run-wide trajectory index.

use super::events::{adaptive_kernel, fixed_kernel};
use super::kernel::Terms;
use super::problem::{SdeCheckError, SdeError, SdeProblem, Steps};
use crate::gpu::GpuContext;
use crate::gpu::shader::ShaderError;
use crate::model::System;
use crate::ode::device::{Binding, Precision, UniformBytes, buffer};
use crate::ode::ensemble::Ensemble;
use crate::ode::error::SimError;
use crate::ode::events::EventLog;
use crate::ode::events::kernel::MAX_ITERATIONS;
use crate::ode::events::log as events_log;
use crate::ode::fixed::problem::SavePlan;
use crate::ode::fixed::run::{MAX_EVENT_WINDOW_STEPS, MAX_WINDOW_STEPS, batch_windows};
use crate::ode::options::RunOptions;
use crate::ode::results::ChunkResults;
use crate::ode::runner::{self, Family, Outcome, Windows};
use crate::ode::sink::Sink;
use crate::ode::solution::{RunStats, Solution, StepCounts};
use crate::schedule::plan::{DeviceLimits, Plan};
use std::ops::Range;

/// The first step of milstein-adaptive, as a fraction of the span, when none is given: the
/// controller grows it tenfold per accepted step, so starting small costs a few steps.
pub const INITIAL_STEP_FRACTION: f64 = 1e-3;

/// The noise key in a window: seed halves and the antithetic flag.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoiseArgs {
    pub traj_base: u32,
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub antithetic: u32,
}

impl NoiseArgs {
    fn of(problem: &SdeProblem, chunk: &Range<usize>) -> NoiseArgs {
        NoiseArgs {
            traj_base: chunk.start as u32,
            seed_lo: problem.noise.seed as u32,
            seed_hi: (problem.noise.seed >> 32) as u32,
            antithetic: problem.noise.antithetic as u32,
        }
    }
}

/// The per-dispatch values of `struct Window` in `shaders/ode/sde/fixed.wgsl`.
#[derive(Debug, Default, Clone, Copy)]
pub struct FixedWindow {
    pub n_traj: u32,
    pub stride: u32,
    pub step_begin: u32,
    pub step_end: u32,
    pub n_steps: u32,
    pub save_every: u32,
    pub save_initial: u32,
    pub save_first: u32,
    pub save_count: u32,
    pub noise: NoiseArgs,
    pub t0: f64,
    pub dt: f64,
}

pub fn fixed_uniform(precision: Precision, w: &FixedWindow) -> Vec<u8> {
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
        .u32(w.noise.traj_base)
        .u32(w.noise.seed_lo)
        .u32(w.noise.seed_hi)
        .u32(w.noise.antithetic)
        .real(precision, w.t0)
        .real(precision, w.dt)
        .real(precision, w.dt.sqrt())
        .real(precision, 1.0)
        .finish()
}

/// A checked SDE problem, as the runner sees it.
pub struct SdeRun<'a> {
    problem: &'a SdeProblem,
    terms: Terms,
    times: Vec<f64>,
    save_plan: Option<SavePlan>,
}

impl<'a> SdeRun<'a> {
    pub fn new(problem: &'a SdeProblem) -> Result<Self, SimError> {
        let times = check(problem)?;
        let save_plan = match &problem.steps {
            Steps::Fixed { grid, save } => Some(SavePlan::new(*save, grid.n_steps)?),
            Steps::Adaptive { .. } => None,
        };
        Ok(SdeRun {
            terms: terms_of(problem)?,
            problem,
            times,
            save_plan,
        })
    }

    pub fn terms(&self) -> &Terms {
        &self.terms
    }

    fn has_events(&self) -> bool {
        !self.problem.system.events.is_empty()
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

    /// Device bytes per trajectory of the event log and the ring's staging copies of it.
    fn result_bytes(&self, options: &RunOptions) -> u64 {
        self.result_rows() as u64 * self.problem.precision.bytes() * (1 + options.ring as u64)
    }

    fn results_buffer(&self, ctx: &GpuContext, plan: &Plan) -> Option<wgpu::Buffer> {
        use wgpu::BufferUsages as U;
        let rows = self.result_rows() as u64;
        (rows > 0).then(|| {
            let size = rows * plan.chunk as u64 * self.problem.precision.bytes();
            buffer(
                ctx,
                "event log",
                size,
                U::STORAGE | U::COPY_SRC | U::COPY_DST,
            )
        })
    }

    fn decode_events(&self, stride: usize, len: usize, bytes: &[u8]) -> Option<ChunkResults> {
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
}

/// The symbolic terms of the problem's method, or why the method cannot take the system.
fn terms_of(problem: &SdeProblem) -> Result<Terms, SimError> {
    Terms::new(&problem.system, problem.method)
        .map_err(|e| SimError::from(SdeCheckError::from(SdeError::from(e))))
}

/// Checks a problem without touching the GPU; returns the save times.
pub fn check(problem: &SdeProblem) -> Result<Vec<f64>, SimError> {
    let times = problem.check()?;
    // Terms::new refuses what the method cannot integrate (e.g. platen's separability).
    terms_of(problem)?;
    problem.ensemble.validate(&problem.system)?;
    Ok(times)
}

/// Fixed-step methods in the runner.
pub struct SdeFixed<'a>(pub SdeRun<'a>);

impl SdeFixed<'_> {
    fn max_window(&self, options: &RunOptions, len: usize) -> u32 {
        // With events, a step where one fires loops through root finding and the record
        // order: shorter windows stay within lavapipe's loop budget (`fixed::run`).
        let limit = if self.0.has_events() {
            MAX_EVENT_WINDOW_STEPS
        } else {
            MAX_WINDOW_STEPS
        };
        (options.steps_per_dispatch / len as u64)
            .clamp(options.min_window_steps.max(1) as u64, u32::MAX as u64)
            .min(limit as u64) as u32
    }
}

/// The fixed-step kernel's own buffers: statuses, and with events the event log.
pub struct FixedBuffers {
    status: wgpu::Buffer,
    results: Option<wgpu::Buffer>,
}

impl Family for SdeFixed<'_> {
    type Window = FixedWindow;
    type Buffers = FixedBuffers;
    const LABEL: &'static str = "sde_fixed";

    fn system(&self) -> &System {
        &self.0.problem.system
    }
    fn ensemble(&self) -> &Ensemble {
        &self.0.problem.ensemble
    }
    fn precision(&self) -> Precision {
        self.0.problem.precision
    }
    fn n_slots(&self) -> usize {
        self.0.times.len()
    }
    fn save_times(&self) -> Vec<f64> {
        self.0.times.clone()
    }
    fn extra_per_trajectory(&self, options: &RunOptions) -> (u64, usize) {
        (self.0.result_bytes(options), self.0.result_rows())
    }
    fn params_writable(&self) -> bool {
        self.0.has_events()
    }
    fn wgsl(&self, workgroup_size: u32) -> Result<String, ShaderError> {
        let p = self.0.problem;
        fixed_kernel(
            &p.system,
            &self.0.terms,
            p.method.fixed(),
            workgroup_size,
            p.precision,
        )
    }
    fn pack(&self, w: &FixedWindow) -> Vec<u8> {
        fixed_uniform(self.0.problem.precision, w)
    }
    fn warm_up_window(&self, stride: usize) -> FixedWindow {
        FixedWindow {
            n_traj: 1,
            stride: stride as u32,
            n_steps: 1,
            save_every: 1,
            ..FixedWindow::default()
        }
    }
    fn bindings(&self) -> Vec<Binding> {
        let mut b = vec![Binding::Storage { read_only: false }]; // status
        if self.0.has_events() {
            b.push(Binding::Storage { read_only: false }); // event log
        }
        b
    }
    fn buffers(&self, ctx: &GpuContext, plan: &Plan) -> FixedBuffers {
        use wgpu::BufferUsages as U;
        FixedBuffers {
            status: buffer(
                ctx,
                "status",
                plan.chunk as u64 * 4,
                U::STORAGE | U::COPY_SRC | U::COPY_DST,
            ),
            results: self.0.results_buffer(ctx, plan),
        }
    }
    fn bound<'b>(&self, b: &'b FixedBuffers) -> Vec<&'b wgpu::Buffer> {
        let mut out = vec![&b.status];
        out.extend(b.results.as_ref());
        out
    }
    fn outcome<'b>(&self, b: &'b FixedBuffers) -> &'b wgpu::Buffer {
        &b.status
    }
    fn results<'b>(&self, b: &'b FixedBuffers) -> Option<&'b wgpu::Buffer> {
        b.results.as_ref()
    }
    fn results_bytes(&self, stride: usize, _len: usize) -> u64 {
        self.0.result_rows() as u64 * stride as u64 * self.0.problem.precision.bytes()
    }
    fn decode_results(&self, stride: usize, len: usize, bytes: &[u8]) -> Option<ChunkResults> {
        self.0.decode_events(stride, len, bytes)
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
    ) -> Windows<'_, FixedWindow> {
        let Steps::Fixed { grid, .. } = &self.0.problem.steps else {
            unreachable!("SdeFixed runs fixed steps")
        };
        let plan = self.0.save_plan.as_ref().expect("a fixed-step save plan");
        let noise = NoiseArgs::of(self.0.problem, chunk);
        let steps = batch_windows(plan, slots, self.max_window(options, chunk.len()));
        Windows::Planned(
            steps
                .into_iter()
                .map(|w| {
                    let args = FixedWindow {
                        n_traj: chunk.len() as u32,
                        stride: stride as u32,
                        step_begin: w.start,
                        step_end: w.end,
                        n_steps: plan.n_steps,
                        save_every: plan.every,
                        save_initial: plan.initial as u32,
                        save_first: slots.start as u32,
                        save_count: slots.len() as u32,
                        noise,
                        t0: grid.t0,
                        dt: grid.dt,
                    };
                    (args, w.len() as u64 * chunk.len() as u64)
                })
                .collect(),
        )
    }
    fn total_work(&self, trajectories: u64, _batches: usize) -> u64 {
        trajectories * self.n_steps() as u64
    }
    fn trajectory_steps(&self, len: usize, _outcome: &Outcome) -> u64 {
        len as u64 * self.n_steps() as u64
    }
}

impl SdeFixed<'_> {
    fn n_steps(&self) -> u32 {
        self.0.save_plan.map_or(0, |p| p.n_steps)
    }
}

/// Rows of the adaptive kernel's `counts`: status, accepted, rejected, drift evaluations
/// (read back), then the save cursor and flags.
const COUNT_ROWS: u64 = 4;
const COUNT_ROWS_ALL: u64 = 6;
/// Counters of the `unfinished` buffer: one per window of a submission.
const MAX_WINDOWS: u64 = 64;

/// The per-dispatch values of `struct Window` in `shaders/ode/sde/adaptive.wgsl`.
#[derive(Debug, Default, Clone, Copy)]
pub struct AdaptiveWindow {
    pub n_traj: u32,
    pub stride: u32,
    pub save_first: u32,
    pub save_end: u32,
    pub n_slots: u32,
    pub max_attempts: u32,
    pub window: u32,
    pub max_steps: u32,
    pub noise: NoiseArgs,
    pub depth: u32,
    pub t0: f64,
    pub t1: f64,
    pub dt_initial: f64,
    pub dt_min: f64,
    pub dt_max: f64,
}

pub fn adaptive_uniform(precision: Precision, w: &AdaptiveWindow) -> Vec<u8> {
    UniformBytes::default()
        .u32(w.n_traj)
        .u32(w.stride)
        .u32(w.save_first)
        .u32(w.save_end)
        .u32(w.n_slots)
        .u32(w.max_attempts)
        .u32(w.window)
        .u32(w.max_steps)
        .u32(w.noise.traj_base)
        .u32(w.noise.seed_lo)
        .u32(w.noise.seed_hi)
        .u32(w.noise.antithetic)
        .u32(w.depth)
        .real(precision, w.t0)
        .real(precision, w.t1)
        .real(precision, w.dt_initial)
        .real(precision, w.dt_min)
        .real(precision, w.dt_max)
        .real(precision, 1.0)
        .finish()
}

/// Step attempts per dispatch window at most. lavapipe (llvmpipe) ends an invocation's
/// loops after 65,535 iterations in all, counted across every loop of the shader (see
/// `fixed::run::MAX_WINDOW_STEPS`), and an attempt here costs one iteration of the step
/// loop and `depth` of the Brownian tree's descent: a longer window would cut a descent
/// short and read a wrong W, silently. Half the limit keeps a 2x margin; on a GPU it only
/// bounds one thread's sequential work per dispatch.
pub fn max_window_attempts(depth: u32) -> u64 {
    32_768 / (depth as u64 + 2)
}

/// Step attempts per dispatch window at most for a kernel with events: an accepted step
/// where an event fires may also run the root finding of one event (up to
/// `events::kernel::MAX_ITERATIONS`) and a second descent of the tree (W at the event), so
/// the budget of `max_window_attempts` is shared by that much more.
pub fn max_event_window_attempts(depth: u32) -> u64 {
    32_768 / (2 * depth as u64 + 2 + MAX_ITERATIONS as u64)
}

/// milstein-adaptive in the runner.
pub struct SdeAdaptive<'a>(pub SdeRun<'a>);

pub struct AdaptiveBuffers {
    /// Per trajectory: t, h, then W(t) of each process.
    control: wgpu::Buffer,
    counts: wgpu::Buffer,
    times: wgpu::Buffer,
    unfinished: wgpu::Buffer,
    /// The event log (systems with events).
    results: Option<wgpu::Buffer>,
}

/// The first step of a problem's adaptive trajectories.
pub fn initial_step(problem: &SdeProblem) -> f64 {
    match &problem.steps {
        Steps::Adaptive {
            t0, t1, control, ..
        } => control
            .dt_initial
            .unwrap_or((t1 - t0) * INITIAL_STEP_FRACTION),
        Steps::Fixed { grid, .. } => grid.dt,
    }
}

impl Family for SdeAdaptive<'_> {
    type Window = AdaptiveWindow;
    type Buffers = AdaptiveBuffers;
    const LABEL: &'static str = "sde_adaptive";

    fn system(&self) -> &System {
        &self.0.problem.system
    }
    fn ensemble(&self) -> &Ensemble {
        &self.0.problem.ensemble
    }
    fn precision(&self) -> Precision {
        self.0.problem.precision
    }
    fn n_slots(&self) -> usize {
        self.0.times.len()
    }
    fn save_times(&self) -> Vec<f64> {
        self.0.times.clone()
    }
    fn extra_per_trajectory(&self, options: &RunOptions) -> (u64, usize) {
        let m = self.0.terms.m as u64;
        let real = self.0.problem.precision.bytes();
        (
            (2 + m) * real
                + (COUNT_ROWS_ALL + COUNT_ROWS * options.ring as u64) * 4
                + self.0.result_bytes(options),
            // the widest binding in reals: control, results or the u32 counters
            (2 + m as usize)
                .max(self.0.result_rows())
                .max((COUNT_ROWS_ALL * 4).div_ceil(real) as usize),
        )
    }
    fn params_writable(&self) -> bool {
        self.0.has_events()
    }
    fn fits(&self, limits: &DeviceLimits) -> Result<(), SimError> {
        if self.0.times.len() as u64 * self.0.problem.precision.bytes() > limits.max_binding {
            return Err(SimError::TooManySaves(self.0.times.len()));
        }
        Ok(())
    }
    fn wgsl(&self, workgroup_size: u32) -> Result<String, ShaderError> {
        let p = self.0.problem;
        let Steps::Adaptive { control, .. } = &p.steps else {
            unreachable!("SdeAdaptive runs adaptive steps")
        };
        adaptive_kernel(
            &p.system,
            &self.0.terms,
            control,
            workgroup_size,
            p.precision,
        )
    }
    fn pack(&self, w: &AdaptiveWindow) -> Vec<u8> {
        adaptive_uniform(self.0.problem.precision, w)
    }
    fn warm_up_window(&self, stride: usize) -> AdaptiveWindow {
        AdaptiveWindow {
            n_traj: 1,
            stride: stride as u32,
            max_steps: 1,
            depth: 1,
            dt_max: 1.0,
            dt_initial: 1.0,
            ..AdaptiveWindow::default()
        }
    }
    fn bindings(&self) -> Vec<Binding> {
        let storage = |read_only| Binding::Storage { read_only };
        let mut b = vec![
            storage(false),
            storage(false),
            storage(true),
            storage(false),
        ];
        if self.0.has_events() {
            b.push(storage(false)); // event log
        }
        b
    }
    fn buffers(&self, ctx: &GpuContext, plan: &Plan) -> AdaptiveBuffers {
        use wgpu::BufferUsages as U;
        let precision = self.0.problem.precision;
        let real = precision.bytes();
        let c = plan.chunk as u64;
        let m = self.0.terms.m as u64;
        let control = buffer(ctx, "control", (2 + m) * c * real, U::STORAGE);
        let readable = U::STORAGE | U::COPY_SRC | U::COPY_DST;
        let counts = buffer(ctx, "counts", COUNT_ROWS_ALL * c * 4, readable);
        let times = buffer(
            ctx,
            "save times",
            self.0.times.len() as u64 * real,
            U::STORAGE | U::COPY_DST,
        );
        let mut bytes = Vec::with_capacity(self.0.times.len() * real as usize);
        for &t in &self.0.times {
            precision.push_bytes(t, &mut bytes);
        }
        ctx.queue.write_buffer(&times, 0, &bytes);
        let unfinished = buffer(ctx, "unfinished", 4 * MAX_WINDOWS, readable);
        AdaptiveBuffers {
            control,
            counts,
            times,
            unfinished,
            results: self.0.results_buffer(ctx, plan),
        }
    }
    fn bound<'b>(&self, b: &'b AdaptiveBuffers) -> Vec<&'b wgpu::Buffer> {
        let mut out = vec![&b.control, &b.counts, &b.times, &b.unfinished];
        out.extend(b.results.as_ref());
        out
    }
    fn results<'b>(&self, b: &'b AdaptiveBuffers) -> Option<&'b wgpu::Buffer> {
        b.results.as_ref()
    }
    fn results_bytes(&self, stride: usize, _len: usize) -> u64 {
        self.0.result_rows() as u64 * stride as u64 * self.0.problem.precision.bytes()
    }
    fn decode_results(&self, stride: usize, len: usize, bytes: &[u8]) -> Option<ChunkResults> {
        self.0.decode_events(stride, len, bytes)
    }
    fn outcome<'b>(&self, b: &'b AdaptiveBuffers) -> &'b wgpu::Buffer {
        &b.counts
    }
    fn outcome_bytes(&self, stride: usize, _len: usize) -> u64 {
        COUNT_ROWS * stride as u64 * 4
    }
    fn decode(&self, stride: usize, len: usize, bytes: &[u8]) -> Outcome {
        Outcome::from_count_rows(stride, len, bytes)
    }
    fn unfinished<'b>(&self, b: &'b AdaptiveBuffers) -> Option<&'b wgpu::Buffer> {
        Some(&b.unfinished)
    }
    fn windows(
        &self,
        options: &RunOptions,
        chunk: &Range<usize>,
        stride: usize,
        slots: &Range<usize>,
    ) -> Windows<'_, AdaptiveWindow> {
        let p = self.0.problem;
        let Steps::Adaptive {
            t0,
            t1,
            control,
            depth,
            ..
        } = &p.steps
        else {
            unreachable!("SdeAdaptive runs adaptive steps")
        };
        let max_attempts = (options.steps_per_dispatch / chunk.len() as u64)
            .clamp(options.min_window_steps.max(1) as u64, u32::MAX as u64)
            .min(if self.0.has_events() {
                max_event_window_attempts(*depth)
            } else {
                max_window_attempts(*depth)
            }) as u32;
        let args = AdaptiveWindow {
            n_traj: chunk.len() as u32,
            stride: stride as u32,
            save_first: slots.start as u32,
            save_end: slots.end as u32,
            n_slots: self.0.times.len() as u32,
            max_attempts,
            window: 0,
            max_steps: control.max_steps,
            noise: NoiseArgs::of(p, chunk),
            depth: *depth,
            t0: *t0,
            t1: *t1,
            dt_initial: initial_step(p),
            dt_min: control.dt_min,
            dt_max: control.dt_max.unwrap_or(t1 - t0),
        };
        Windows::UntilDone(Box::new(move |window| AdaptiveWindow { window, ..args }))
    }
    fn total_work(&self, trajectories: u64, batches: usize) -> u64 {
        trajectories * batches as u64
    }
    fn trajectory_steps(&self, _len: usize, outcome: &Outcome) -> u64 {
        outcome
            .steps
            .iter()
            .flatten()
            .map(StepCounts::attempts)
            .sum()
    }
}

/// Integrates every trajectory of the problem on the GPU, handing results to `sink`.
pub fn run_sde_into(
    ctx: &GpuContext,
    problem: &SdeProblem,
    options: &RunOptions,
    sink: &mut dyn Sink,
) -> Result<RunStats, SimError> {
    let run = SdeRun::new(problem)?;
    if matches!(problem.steps, Steps::Adaptive { .. }) {
        runner::run(ctx, &SdeAdaptive(run), options, sink)
    } else {
        runner::run(ctx, &SdeFixed(run), options, sink)
    }
}

/// Integrates every trajectory of the problem on the GPU into memory.
pub fn simulate_sde(
    ctx: &GpuContext,
    problem: &SdeProblem,
    options: &RunOptions,
) -> Result<Solution, SimError> {
    let run = SdeRun::new(problem)?;
    if matches!(problem.steps, Steps::Adaptive { .. }) {
        runner::simulate(ctx, &SdeAdaptive(run), options)
    } else {
        runner::simulate(ctx, &SdeFixed(run), options)
    }
}

/// How the run is cut up on `ctx`.
pub fn plan_sde(
    ctx: &GpuContext,
    problem: &SdeProblem,
    options: &RunOptions,
) -> Result<Plan, SimError> {
    let run = SdeRun::new(problem)?;
    if matches!(problem.steps, Steps::Adaptive { .. }) {
        runner::plan_run(ctx, &SdeAdaptive(run), options)
    } else {
        runner::plan_run(ctx, &SdeFixed(run), options)
    }
}
