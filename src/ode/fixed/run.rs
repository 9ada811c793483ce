//! Running a fixed-step ensemble on the GPU: buffers, bind group and pipeline made once per
//! run; per chunk one upload, per batch of save slots one submission of dispatch windows
//! and one readback. No step ever waits on the host.

use super::kernel::fixed_step_wgsl;
use super::problem::{FixedStepProblem, SavePlan};
use crate::gpu::timing::PassTimer;
use crate::gpu::{GpuContext, GpuError};
use crate::ode::device::{
    Binding, EnsembleBuffers, HostUpload, Precision, UNIFORM_STRIDE, UniformBytes, Unit,
    bind_group, bind_group_layout, buffer, pipeline_layout,
};
use crate::ode::error::{SimError, host_output_fits};
use crate::ode::options::{RunOptions, Tick};
use crate::ode::runner::{precision_available, wait_for, warm_up};
use crate::ode::sink::{Sink, gather};
use crate::ode::solution::{RunStats, Solution, Status};
use crate::schedule::plan::{DeviceLimits, Plan, RunShape, dispatch_grid, plan, windows};
use crate::schedule::ring::ReadbackRing;
use std::ops::Range;
use std::time::{Duration, Instant};

/// Dispatch windows recorded into one submission at most; each has its own uniform slot.
const WINDOWS_PER_SUBMIT: usize = 64;

/// Steps per dispatch window at most, whatever the chunk: lavapipe (llvmpipe) ends any loop
/// of an invocation after 65,535 iterations in all, counted across every loop of the
/// shader, and a step with a save every step costs about four. A longer window left a small
/// ensemble's trajectories silently unfinished (one trajectory of 10^5 steps stopped at
/// 65,535). 8,192 keeps a 2x margin there, and on a GPU it only bounds one thread's
/// sequential work per dispatch (a dispatch per 8,192 steps costs microseconds).
pub const MAX_WINDOW_STEPS: u32 = 8192;

/// Trajectory-steps per submission at most (about a third of a second on a CPU adapter,
/// milliseconds on a GPU), so that a cancelled run stops soon, concurrent runs take turns
/// often and progress moves within a chunk (it is told as each submission finishes).
const STEPS_PER_SUBMIT: u64 = 1 << 28;

/// Timed passes per batch at most (two timestamps each in one query set).
const MAX_PASSES: usize = 1024;

/// Submissions of one batch on the device at once; the host waits for the oldest before
/// adding another.
const SUBMISSIONS_IN_FLIGHT: usize = 2;

/// The per-dispatch values of `struct Window` in `shaders/ode/fixed_step.wgsl`.
#[derive(Debug, Default, Clone, Copy)]
struct WindowArgs {
    n_traj: u32,
    stride: u32,
    step_begin: u32,
    step_end: u32,
    n_steps: u32,
    save_every: u32,
    save_initial: u32,
    save_first: u32,
    save_count: u32,
    t0: f64,
    dt: f64,
}

fn window_uniform(precision: Precision, w: &WindowArgs) -> Vec<u8> {
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

/// Buffers, layout and pipeline of one run, made once and reused by every chunk.
struct Resources {
    pipeline: std::sync::Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    buffers: EnsembleBuffers,
    status: wgpu::Buffer,
    timer: Option<PassTimer>,
    /// Time spent compiling the kernel.
    compile: Duration,
}

impl Resources {
    fn new(
        ctx: &GpuContext,
        problem: &FixedStepProblem,
        plan: &Plan,
        options: &RunOptions,
        passes_per_batch: u32,
    ) -> Result<Self, SimError> {
        let system = &problem.system;
        let precision = problem.precision;
        let tableau = problem.solver.step_tableau();
        let wgsl = fixed_step_wgsl(system, &tableau, options.workgroup_size, precision)
            .map_err(GpuError::from)?;
        let uniform_size = window_uniform(precision, &WindowArgs::default()).len() as u64;
        let storage = |read_only| Binding::Storage { read_only };
        let layout = bind_group_layout(
            ctx,
            "fixed_step",
            &[
                Binding::DynamicUniform(uniform_size),
                storage(false), // state
                storage(true),  // params
                storage(false), // saved
                storage(false), // status
            ],
        );
        let compile_start = options.compiling();
        let pipeline = ctx.pipeline(
            "ode/fixed_step",
            &wgsl,
            &pipeline_layout(ctx, &layout),
            precision == Precision::F64,
        )?;

        use wgpu::BufferUsages as U;
        let c = plan.chunk as u64;
        let buffers = EnsembleBuffers::new(
            ctx,
            (system.dim(), system.n_param_slots()),
            precision,
            (plan.chunk, plan.slots_per_batch),
            WINDOWS_PER_SUBMIT,
        );
        let status = buffer(ctx, "status", c * 4, U::STORAGE | U::COPY_SRC | U::COPY_DST);
        let bind_group = bind_group(
            ctx,
            "fixed_step",
            &layout,
            uniform_size,
            &[
                &buffers.uniforms,
                &buffers.state,
                &buffers.params,
                &buffers.saved,
                &status,
            ],
        );
        ctx.check_errors()?;
        warm_up(
            ctx,
            &pipeline,
            &bind_group,
            &buffers.uniforms,
            // One trajectory and no steps: it passes the early return (llvmpipe compiles
            // only then), loads and stores its state, and neither saves nor finishes; the
            // chunk's upload and status clear come after.
            &window_uniform(
                precision,
                &WindowArgs {
                    n_traj: 1,
                    stride: plan.chunk as u32,
                    n_steps: 1,
                    save_every: 1,
                    ..WindowArgs::default()
                },
            ),
        )?;
        let compile = options.compiled(compile_start);
        Ok(Resources {
            pipeline,
            bind_group,
            buffers,
            status,
            timer: PassTimer::new(ctx, passes_per_batch),
            compile,
        })
    }
}

/// Checks a problem without touching the GPU: the same errors `simulate` would raise first.
pub fn check(problem: &FixedStepProblem) -> Result<SavePlan, SimError> {
    problem.ensemble.validate(&problem.system)?;
    let save_plan = SavePlan::new(problem.save, problem.grid.n_steps)?;
    host_output_fits(
        save_plan.n_slots(),
        problem.ensemble.n,
        problem.system.dim(),
        problem.precision,
    )?;
    Ok(save_plan)
}

/// Integrates every trajectory of the problem on the GPU into memory.
pub fn simulate(
    ctx: &GpuContext,
    problem: &FixedStepProblem,
    options: &RunOptions,
) -> Result<Solution, SimError> {
    let times = check(problem)?.times(&problem.grid);
    gather(
        &problem.system,
        problem.ensemble.n,
        times,
        problem.precision,
        |sink| run_into(ctx, problem, options, sink),
    )
}

/// How a run is cut up on this device.
pub fn plan_run(
    ctx: &GpuContext,
    problem: &FixedStepProblem,
    options: &RunOptions,
) -> Result<Plan, SimError> {
    let save_plan = check(problem)?;
    let system = &problem.system;
    let shape = RunShape {
        n: problem.ensemble.n,
        dim: system.dim(),
        n_params: system.n_param_slots(),
        n_slots: save_plan.n_slots(),
        bytes_per_real: problem.precision.bytes(),
        workgroup_size: options.workgroup_size,
        extra_bytes: 0,
        extra_width: 0,
        ring: options.ring,
    };
    Ok(plan(&shape, &DeviceLimits::of(&ctx.limits), &options.caps)?)
}

/// Integrates every trajectory of the problem on the GPU, handing results to `sink` as
/// they arrive. Units of work (a batch of save slots of a chunk) are read back through a
/// ring of `options.ring` slots, so the host consumes one while the device runs the next.
pub fn run_into(
    ctx: &GpuContext,
    problem: &FixedStepProblem,
    options: &RunOptions,
    sink: &mut dyn Sink,
) -> Result<RunStats, SimError> {
    let setup_start = Instant::now();
    let save_plan = check(problem)?;
    let precision = problem.precision;
    precision_available(ctx, precision)?;
    let system = &problem.system;
    let (n, dim) = (problem.ensemble.n, system.dim());
    let plan = plan_run(ctx, problem, options)?;
    log::info!(
        "plan: {}",
        plan.describe(n, save_plan.n_slots(), options.ring)
    );
    // Windows of the largest chunk: smaller chunks get longer windows, so never more.
    let max_len = |chunk_len: usize| {
        (options.steps_per_dispatch / chunk_len as u64)
            .clamp(options.min_window_steps.max(1) as u64, u32::MAX as u64)
            .min(MAX_WINDOW_STEPS as u64) as u32
    };
    let batches: Vec<Range<usize>> = plan.batches(save_plan.n_slots()).collect();
    let largest = plan.chunk.min(n);
    let most_windows = batches
        .iter()
        .map(|slots| batch_windows(&save_plan, slots, max_len(largest)).len())
        .max()
        .unwrap_or(1);
    let windows_per_submit = ((STEPS_PER_SUBMIT / (largest as u64 * max_len(largest) as u64))
        as usize)
        .max(most_windows.div_ceil(MAX_PASSES))
        .clamp(1, WINDOWS_PER_SUBMIT);
    let passes_per_batch = most_windows.div_ceil(windows_per_submit) as u32;
    let res = Resources::new(ctx, problem, &plan, options, passes_per_batch)?;
    let row_bytes = plan.chunk as u64 * precision.bytes();
    let mut ring: ReadbackRing<Unit> = ReadbackRing::new(
        ctx,
        options.ring,
        &[
            (
                "saved",
                plan.slots_per_batch as u64 * dim as u64 * row_bytes,
            ),
            ("status", plan.chunk as u64 * 4),
            ("timestamps", 16 * passes_per_batch as u64),
        ],
    );
    let mut stats = RunStats {
        setup: setup_start.elapsed(),
        compile: res.compile,
        gpu: res.timer.as_ref().map(|_| std::time::Duration::ZERO),
        ..RunStats::default()
    };
    let steps = problem.grid.n_steps as u64;
    options.tick(Tick::Total((n - options.start.min(n)) as u64 * steps));
    // Work of each unit's submissions that were not waited for one by one: told when the
    // unit is consumed (units are consumed in the order they were submitted).
    let unacknowledged = std::cell::RefCell::new(std::collections::VecDeque::new());

    let solve_start = Instant::now();
    let mut host_time = std::time::Duration::ZERO;
    let mut completed = options.start;
    let mut finished = 0usize;
    let mut consume = |unit: Unit, bytes: &[&[u8]]| -> Result<(), SimError> {
        let started = Instant::now();
        if let Some(work) = unacknowledged.borrow_mut().pop_front() {
            options.tick(Tick::Done(work));
        }
        sink.saves(&unit.saves((n, dim, plan.chunk), precision, bytes[0]))?;
        if unit.last_batch {
            completed = unit.chunk.end;
            finished += unit.chunk.len();
            let codes: &[u32] = bytemuck::cast_slice(&bytes[1][..unit.chunk.len() * 4]);
            let status: Vec<Status> = codes.iter().map(|&c| Status::from_code(c)).collect();
            sink.chunk_done(unit.chunk.clone(), &status, None)?;
        }
        if let (Some(t), Some(total)) = (&res.timer, stats.gpu.as_mut()) {
            *total += t.duration(&bytes[2][..16 * unit.passes as usize]);
        }
        host_time += started.elapsed();
        Ok(())
    };
    let mut host = HostUpload::default();
    let rows = res
        .buffers
        .rows(dim, system.n_param_slots(), precision, plan.chunk);
    let (part, parts) = options.part;
    let mine = plan
        .chunks_from(options.start, n)
        .skip(part)
        .step_by(parts.max(1));
    'chunks: for chunk in mine {
        if options.cancelled() {
            break;
        }
        // Queue writes land after the work already submitted and before the next
        // submission, so the next chunk's upload may be queued while this one runs.
        host.upload(ctx, &problem.ensemble, &rows, chunk.clone());
        let (gx, gy) = dispatch_grid(
            chunk.len(),
            options.workgroup_size,
            ctx.limits.max_compute_workgroups_per_dimension,
        );
        for (b, slots) in batches.iter().enumerate() {
            if options.cancelled() {
                break 'chunks;
            }
            let all = batch_windows(&save_plan, slots, max_len(chunk.len()));
            let groups: Vec<&[Range<u32>]> = all.chunks(windows_per_submit).collect();
            let saved_bytes = slots.len() as u64 * dim as u64 * row_bytes;
            let last_batch = b + 1 == batches.len();
            let (ring_slot, staging) = ring.acquire(ctx, &mut consume)?;
            let mut submission = None;
            let mut in_flight = std::collections::VecDeque::new();
            for (g, group) in groups.iter().enumerate() {
                if in_flight.len() >= SUBMISSIONS_IN_FLIGHT {
                    let (oldest, work) = in_flight.pop_front().expect("in flight");
                    wait_for(ctx, Some(oldest))?;
                    options.tick(Tick::Done(work));
                    if options.cancelled() {
                        // This batch never completes: let what it submitted finish, so that
                        // its buffers are free when the run returns.
                        wait_for(ctx, in_flight.pop_back().map(|(index, _)| index))?;
                        break 'chunks;
                    }
                }
                let uniforms: Vec<u8> = group
                    .iter()
                    .flat_map(|w| {
                        let args = WindowArgs {
                            n_traj: chunk.len() as u32,
                            stride: plan.chunk as u32,
                            step_begin: w.start,
                            step_end: w.end,
                            n_steps: save_plan.n_steps,
                            save_every: save_plan.every,
                            save_initial: save_plan.initial as u32,
                            save_first: slots.start as u32,
                            save_count: slots.len() as u32,
                            t0: problem.grid.t0,
                            dt: problem.grid.dt,
                        };
                        let mut slot = window_uniform(precision, &args);
                        slot.resize(UNIFORM_STRIDE as usize, 0);
                        slot
                    })
                    .collect();
                ctx.queue.write_buffer(&res.buffers.uniforms, 0, &uniforms);

                let mut enc = ctx.device.create_command_encoder(&Default::default());
                if b == 0 && g == 0 {
                    enc.clear_buffer(&res.status, 0, None);
                }
                {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("fixed_step"),
                        timestamp_writes: res.timer.as_ref().map(|t| t.writes(g as u32)),
                    });
                    pass.set_pipeline(&res.pipeline);
                    for w in 0..group.len() {
                        pass.set_bind_group(
                            0,
                            &res.bind_group,
                            &[(w as u64 * UNIFORM_STRIDE) as u32],
                        );
                        pass.dispatch_workgroups(gx, gy, 1);
                    }
                }
                stats.dispatches += group.len();
                // The unit's last submission copies its results (and the timestamps of
                // all its passes) into the ring slot; only that one is ever waited on.
                if g + 1 == groups.len() {
                    enc.copy_buffer_to_buffer(&res.buffers.saved, 0, &staging[0], 0, saved_bytes);
                    if last_batch {
                        let bytes = chunk.len() as u64 * 4;
                        enc.copy_buffer_to_buffer(&res.status, 0, &staging[1], 0, bytes);
                    }
                    if let Some(t) = &res.timer {
                        t.resolve_into(&mut enc, groups.len() as u32, &staging[2]);
                    }
                }
                let index = ctx.queue.submit([enc.finish()]);
                let work: u64 =
                    group.iter().map(|w| w.len() as u64).sum::<u64>() * chunk.len() as u64;
                in_flight.push_back((index.clone(), work));
                submission = Some(index);
            }
            unacknowledged
                .borrow_mut()
                .push_back(in_flight.iter().map(|(_, work)| work).sum::<u64>());
            let status_bytes = if last_batch {
                chunk.len() as u64 * 4
            } else {
                0
            };
            let timestamp_bytes = res.timer.as_ref().map_or(0, |_| 16 * groups.len() as u64);
            ring.submitted(
                ring_slot,
                submission.expect("a batch has at least one window"),
                vec![saved_bytes, status_bytes, timestamp_bytes],
                Unit {
                    chunk: chunk.clone(),
                    slots: slots.clone(),
                    last_batch,
                    passes: groups.len() as u32,
                },
            );
        }
        stats.chunks += 1;
    }
    ring.drain(ctx, &mut consume)?;
    stats.solve = solve_start.elapsed();
    stats.host = host_time;
    stats.completed = completed;
    stats.trajectory_steps = finished as u64 * problem.grid.n_steps as u64;
    Ok(stats)
}

/// Dispatch windows of the batch holding save slots `slots`: it integrates from the step
/// of the slot before it (or from the start) to the step of its last slot.
fn batch_windows(save_plan: &SavePlan, slots: &Range<usize>, max_len: u32) -> Vec<Range<u32>> {
    let begin = match slots.start {
        0 => 0,
        s => save_plan.step_of_slot(s - 1),
    };
    windows(begin..save_plan.step_of_slot(slots.end - 1), max_len).collect()
}
