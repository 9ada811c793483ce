//! The Lyapunov family in the shared runner (`ode::runner`): its kernel, its status,
//! tangent and results buffers, and the fixed family's window policy (every window's step
//! count is known, so a chunk runs from the first step to the last with no host round trip
//! but the final readback of statuses and exponents). One save slot: the final state.

use super::kernel::{ACC_ROWS, lyapunov_wgsl};
use super::problem::{LyapunovProblem, Steps};
use crate::gpu::GpuContext;
use crate::gpu::shader::ShaderError;
use crate::model::System;
use crate::model::derive::Jacobian;
use crate::ode::device::{Binding, Precision, UniformBytes, buffer};
use crate::ode::ensemble::Ensemble;
use crate::ode::error::SimError;
use crate::ode::fixed::run::MAX_WINDOW_STEPS;
use crate::ode::options::RunOptions;
use crate::ode::results::{ChunkResults, Rows};
use crate::ode::runner::{self, Family, Outcome, Windows};
use crate::ode::sink::Sink;
use crate::ode::solution::{RunStats, Status, StepCounts};
use crate::schedule::plan::{Plan, windows};
use std::ops::Range;

/// The per-dispatch values of `struct Window` in `shaders/ode/lyapunov/step.wgsl`, in the
/// order `window_uniform` packs them.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowArgs {
    pub n_traj: u32,
    pub stride: u32,
    pub step_begin: u32,
    pub step_end: u32,
    pub n_steps: u32,
    pub n_transient: u32,
    pub renorm: u32,
    pub per_block: u32,
    pub n_renorms: u32,
    pub n_blocks: u32,
    pub t0: f64,
    pub dt: f64,
    pub renorm_time: f64,
    pub inv_time: f64,
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
        .u32(w.n_transient)
        .u32(w.renorm)
        .u32(w.per_block)
        .u32(w.n_renorms)
        .u32(w.n_blocks)
        .real(precision, w.t0)
        .real(precision, w.dt)
        .real(precision, w.renorm_time)
        .real(precision, w.inv_time)
        .real(precision, 1.0)
        .finish()
}

/// The family's own buffers: statuses, tangent vectors with their sums, and the results.
pub struct Buffers {
    status: wgpu::Buffer,
    tangent: wgpu::Buffer,
    results: wgpu::Buffer,
}

/// A checked Lyapunov problem, as the runner sees it.
pub struct Lyapunov<'a> {
    problem: &'a LyapunovProblem,
    steps: Steps,
    jacobian: Jacobian,
}

impl<'a> Lyapunov<'a> {
    pub fn new(problem: &'a LyapunovProblem) -> Result<Self, SimError> {
        let (steps, jacobian) = check(problem)?;
        Ok(Lyapunov {
            problem,
            steps,
            jacobian,
        })
    }

    /// Rows of the `tangent` buffer: k vectors of dim, then `ACC_ROWS` sums per exponent.
    fn tangent_rows(&self) -> usize {
        let p = self.problem;
        p.k * p.system.dim() + ACC_ROWS * p.k
    }

    /// Steps per window for a chunk of `len`: about `steps_per_dispatch` trajectory-steps
    /// of the plain system, an augmented step counting k + 1 (the state and k tangent
    /// vectors), within the floor of the options and `MAX_WINDOW_STEPS` (lavapipe's loop
    /// limit: a window of steps with a renormalisation after each runs two loop
    /// iterations a step, 16,384 in all, within its 65,535).
    fn max_window(&self, options: &RunOptions, len: usize) -> u32 {
        let per_step = (self.problem.k + 1) as u64 * len as u64;
        let cap =
            if self.problem.precision == Precision::F64 && calls_functions(&self.problem.system) {
                MAX_WINDOW_STEPS_F64_FUNCTIONS
            } else {
                MAX_WINDOW_STEPS
            };
        (options.steps_per_dispatch / per_step.max(1))
            .clamp(options.min_window_steps.max(1) as u64, u32::MAX as u64)
            .min(cap as u64) as u32
    }
}

/// Steps per window at most in f64 when the system calls functions (sin, exp, ...):
/// phaseflow's f64 math library loops inside them (argument reduction, series), and a step
/// of the state and its tangent vectors calls each function at every stage of the state
/// and of the Jacobian, so 8,192 steps overran lavapipe's 65,535 loop iterations and left
/// trajectories unfinished (the pendulum's exponents came out 0 or wrong). 256 steps of
/// even a dozen calls of 20 iterations stay far below it.
const MAX_WINDOW_STEPS_F64_FUNCTIONS: u32 = 256;

/// Whether any equation of `system` calls a function.
fn calls_functions(system: &crate::model::System) -> bool {
    let mut any = false;
    system.visit_nodes(&mut |n| any |= matches!(n, crate::model::expr::Node::Call(..)));
    any
}

impl Family for Lyapunov<'_> {
    type Window = WindowArgs;
    type Buffers = Buffers;
    const LABEL: &'static str = "lyapunov";

    fn system(&self) -> &System {
        &self.problem.system
    }
    fn ensemble(&self) -> &Ensemble {
        &self.problem.ensemble
    }
    fn precision(&self) -> Precision {
        self.problem.precision
    }
    fn n_slots(&self) -> usize {
        1
    }
    fn save_times(&self) -> Vec<f64> {
        vec![self.steps.grid.t1()]
    }
    /// The tangent rows, and the results with their staging copies in the ring.
    fn extra_per_trajectory(&self, options: &RunOptions) -> (u64, usize) {
        let real = self.problem.precision.bytes();
        let results = 2 * self.problem.k as u64 * real * (1 + options.ring as u64);
        (
            self.tangent_rows() as u64 * real + results,
            self.tangent_rows(),
        )
    }

    fn wgsl(&self, workgroup_size: u32) -> Result<String, ShaderError> {
        let p = self.problem;
        lyapunov_wgsl(
            &p.system,
            &self.jacobian,
            &p.tableau,
            p.k,
            workgroup_size,
            p.precision,
        )
    }
    fn pack(&self, window: &WindowArgs) -> Vec<u8> {
        window_uniform(self.problem.precision, window)
    }
    /// One trajectory and no steps, inside the transient: it passes the early return
    /// (llvmpipe compiles only then), loads and stores its state and finishes nothing.
    fn warm_up_window(&self, stride: usize) -> WindowArgs {
        WindowArgs {
            n_traj: 1,
            stride: stride as u32,
            n_steps: 2,
            n_transient: 1,
            renorm: 1,
            per_block: 1,
            n_renorms: 1,
            n_blocks: 1,
            ..WindowArgs::default()
        }
    }

    fn bindings(&self) -> Vec<Binding> {
        vec![Binding::Storage { read_only: false }; 3] // status, tangent, results
    }
    fn buffers(&self, ctx: &GpuContext, plan: &Plan) -> Buffers {
        use wgpu::BufferUsages as U;
        let real = self.problem.precision.bytes();
        let rows = |n: usize| (n as u64 * plan.chunk as u64 * real).max(4);
        let usage = U::STORAGE | U::COPY_SRC | U::COPY_DST;
        Buffers {
            status: buffer(ctx, "status", plan.chunk as u64 * 4, usage),
            tangent: buffer(ctx, "tangent", rows(self.tangent_rows()), U::STORAGE),
            results: buffer(ctx, "results", rows(2 * self.problem.k), usage),
        }
    }
    fn bound<'b>(&self, b: &'b Buffers) -> Vec<&'b wgpu::Buffer> {
        vec![&b.status, &b.tangent, &b.results]
    }
    fn outcome<'b>(&self, b: &'b Buffers) -> &'b wgpu::Buffer {
        &b.status
    }
    fn outcome_bytes(&self, _stride: usize, len: usize) -> u64 {
        len as u64 * 4
    }
    fn decode(&self, _stride: usize, len: usize, bytes: &[u8]) -> Outcome {
        Outcome::from_status_codes(len, bytes)
    }
    fn results<'b>(&self, b: &'b Buffers) -> Option<&'b wgpu::Buffer> {
        Some(&b.results)
    }
    fn results_bytes(&self, stride: usize, _len: usize) -> u64 {
        2 * self.problem.k as u64 * stride as u64 * self.problem.precision.bytes()
    }
    /// Rows of 2k per trajectory: the exponents, then their standard errors.
    fn decode_results(&self, stride: usize, len: usize, bytes: &[u8]) -> Option<ChunkResults> {
        let width = 2 * self.problem.k;
        let value = |r: usize, j: usize| -> f64 {
            let at = r * stride + j;
            match self.problem.precision {
                Precision::F32 => {
                    let b: [u8; 4] = bytes[4 * at..4 * at + 4].try_into().expect("4 bytes");
                    f32::from_le_bytes(b) as f64
                }
                Precision::F64 => {
                    let b: [u8; 8] = bytes[8 * at..8 * at + 8].try_into().expect("8 bytes");
                    f64::from_le_bytes(b)
                }
            }
        };
        let mut values = Vec::with_capacity(width * len);
        for j in 0..len {
            values.extend((0..width).map(|r| value(r, j)));
        }
        Some(ChunkResults::Rows(Rows { width, values }))
    }

    fn windows(
        &self,
        options: &RunOptions,
        chunk: &Range<usize>,
        stride: usize,
        _slots: &Range<usize>,
    ) -> Windows<'_, WindowArgs> {
        let s = &self.steps;
        let grid = &s.grid;
        let max = self.max_window(options, chunk.len());
        let inv_time = 1.0 / (s.main() as f64 * grid.dt);
        Windows::Planned(
            windows(0..grid.n_steps, max)
                .map(|w| {
                    let args = WindowArgs {
                        n_traj: chunk.len() as u32,
                        stride: stride as u32,
                        step_begin: w.start,
                        step_end: w.end,
                        n_steps: grid.n_steps,
                        n_transient: s.transient,
                        renorm: s.renorm,
                        per_block: s.per_block,
                        n_renorms: s.renorms,
                        n_blocks: s.blocks(),
                        t0: grid.t0,
                        dt: grid.dt,
                        renorm_time: s.renorm as f64 * grid.dt,
                        inv_time,
                    };
                    (args, w.len() as u64 * chunk.len() as u64)
                })
                .collect(),
        )
    }
    /// Trajectory-steps (transient and averaging alike).
    fn total_work(&self, trajectories: u64, _batches: usize) -> u64 {
        trajectories * self.steps.grid.n_steps as u64
    }
    fn trajectory_steps(&self, len: usize, _outcome: &Outcome) -> u64 {
        len as u64 * self.steps.grid.n_steps as u64
    }
}

/// Checks a problem without touching the GPU: the same errors a run would raise first.
pub fn check(problem: &LyapunovProblem) -> Result<(Steps, Jacobian), SimError> {
    problem.ensemble.validate(&problem.system)?;
    Ok(problem.check()?)
}

/// Every trajectory's exponents, largest first, and their standard errors.
#[derive(Debug, Clone)]
pub struct LyapunovResult {
    pub n: usize,
    pub k: usize,
    /// Row-major [n][k]; NaN where a trajectory did not succeed.
    pub exponents: Vec<f64>,
    /// Row-major [n][k]: the standard error of each exponent (the spread of its block
    /// means over √B).
    pub errors: Vec<f64>,
    pub status: Vec<Status>,
    /// Row-major [n][dim]: each trajectory's state at the end.
    pub final_states: Vec<f64>,
    pub stats: RunStats,
}

impl LyapunovResult {
    /// Trajectory `j`'s exponents.
    pub fn exponents(&self, j: usize) -> &[f64] {
        &self.exponents[j * self.k..(j + 1) * self.k]
    }

    /// Trajectory `j`'s standard errors.
    pub fn errors(&self, j: usize) -> &[f64] {
        &self.errors[j * self.k..(j + 1) * self.k]
    }
}

/// Gathers a run's exponents, errors, statuses and final states in memory.
pub struct SpectraSink {
    n: usize,
    k: usize,
    dim: usize,
    exponents: Vec<f64>,
    errors: Vec<f64>,
    status: Vec<Status>,
    final_states: Vec<f64>,
}

impl SpectraSink {
    pub fn new(n: usize, k: usize, dim: usize) -> SpectraSink {
        SpectraSink {
            n,
            k,
            dim,
            exponents: vec![f64::NAN; n * k],
            errors: vec![f64::NAN; n * k],
            status: vec![Status::Running; n],
            final_states: vec![f64::NAN; n * dim],
        }
    }

    pub fn into_result(self, stats: RunStats) -> LyapunovResult {
        LyapunovResult {
            n: self.n,
            k: self.k,
            exponents: self.exponents,
            errors: self.errors,
            status: self.status,
            final_states: self.final_states,
            stats,
        }
    }
}

impl Sink for SpectraSink {
    fn saves(
        &mut self,
        batch: &crate::ode::device::SaveBatch,
    ) -> Result<(), crate::ode::SinkError> {
        for j in batch.chunk.clone() {
            for c in 0..self.dim {
                self.final_states[j * self.dim + c] = batch.get(0, c, j - batch.chunk.start);
            }
        }
        Ok(())
    }

    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        status: &[Status],
        _steps: Option<&[StepCounts]>,
    ) -> Result<(), crate::ode::SinkError> {
        self.status[chunk].copy_from_slice(status);
        Ok(())
    }

    fn results(
        &mut self,
        chunk: Range<usize>,
        results: &ChunkResults,
    ) -> Result<(), crate::ode::SinkError> {
        // The Lyapunov family reports rows only; other results are not for this sink.
        let ChunkResults::Rows(rows) = results else {
            return Ok(());
        };
        let k = self.k;
        for (i, j) in chunk.enumerate() {
            let row = rows.row(i);
            self.exponents[j * k..(j + 1) * k].copy_from_slice(&row[..k]);
            self.errors[j * k..(j + 1) * k].copy_from_slice(&row[k..2 * k]);
        }
        Ok(())
    }
}

/// Computes every trajectory's Lyapunov exponents on the GPU, into memory.
pub fn lyapunov_spectra(
    ctx: &GpuContext,
    problem: &LyapunovProblem,
    options: &RunOptions,
) -> Result<LyapunovResult, SimError> {
    let family = Lyapunov::new(problem)?;
    // Exponents and errors (2k), final states and statuses of every trajectory, in memory.
    let row = 2 * problem.k + problem.system.dim() + 1;
    crate::ode::error::host_results_fit(
        "the exponents, their errors and the final states",
        "run fewer trajectories",
        problem.ensemble.n as u64,
        row,
        Precision::F64,
    )?;
    let mut sink = SpectraSink::new(problem.ensemble.n, problem.k, problem.system.dim());
    let stats = runner::run(ctx, &family, options, &mut sink)?;
    Ok(sink.into_result(stats))
}

/// Computes every trajectory's exponents on the GPU, handing each chunk's results
/// (`ChunkResults::Rows` of 2k: exponents, then errors), statuses and final states to
/// `sink` as they arrive.
pub fn run_lyapunov_into(
    ctx: &GpuContext,
    problem: &LyapunovProblem,
    options: &RunOptions,
    sink: &mut dyn Sink,
) -> Result<RunStats, SimError> {
    runner::run(ctx, &Lyapunov::new(problem)?, options, sink)
}
