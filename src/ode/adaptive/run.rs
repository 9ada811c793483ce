//! Running an adaptive ensemble on the GPU. Buffers, bind group and pipeline are made once
//! per run. Per chunk: one upload; per batch of save slots: dispatches of bounded length
//! until every trajectory has written the batch's slots (the host learns that from one
//! counter per submission, never per step), then one readback.

use super::kernel::adaptive_wgsl;
use super::problem::{AdaptiveProblem, SaveAt};
use crate::gpu::readback::with_mapped;
use crate::gpu::timing::PassTimer;
use crate::gpu::{GpuContext, GpuError};
use crate::ode::device::{
    Binding, EnsembleBuffers, HostUpload, Precision, UNIFORM_STRIDE, UniformBytes, Unit,
    bind_group, bind_group_layout, buffer, pipeline_layout,
};
use crate::ode::error::{SimError, host_output_fits};
use crate::ode::options::{RunOptions, Tick};
use crate::ode::runner::{precision_available, warm_up};
use crate::ode::sink::{Sink, gather};
use crate::ode::solution::{RunStats, Solution, Status, StepCounts};
use crate::schedule::ReadbackRing;
use crate::schedule::plan::{DeviceLimits, Plan, RunShape, dispatch_grid, plan};
use std::ops::Range;
use std::time::{Duration, Instant};

/// Most dispatches recorded into one submission (each has its own uniform slot and
/// counter).
const MAX_WINDOWS: usize = 64;

/// Rows of the per-trajectory `counts` buffer read back at the end of a chunk: status,
/// accepted, rejected, rhs evaluations.
const COUNT_ROWS: u64 = 4;

struct Resources {
    pipeline: std::sync::Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    buffers: EnsembleBuffers,
    counts: wgpu::Buffer,
    unfinished: wgpu::Buffer,
    unfinished_staging: wgpu::Buffer,
    timer: Option<PassTimer>,
    /// Time spent compiling the kernel.
    compile: Duration,
}

impl Resources {
    fn new(
        ctx: &GpuContext,
        problem: &AdaptiveProblem,
        plan: &Plan,
        options: &RunOptions,
        save_times: &[f64],
    ) -> Result<Self, SimError> {
        let system = &problem.system;
        let precision = problem.precision;
        let pair = problem.pair()?;
        let wgsl = adaptive_wgsl(
            system,
            pair,
            &problem.control,
            options.workgroup_size,
            precision,
            problem.saveat != SaveAt::Final,
        )
        .map_err(GpuError::from)?;
        let uniform_size = window_uniform(precision, &WindowArgs::default()).len() as u64;
        let storage = |read_only| Binding::Storage { read_only };
        let layout = bind_group_layout(
            ctx,
            "adaptive",
            &[
                Binding::DynamicUniform(uniform_size),
                storage(false), // state
                storage(true),  // params
                storage(false), // saved
                storage(false), // control
                storage(false), // counts
                storage(true),  // save times
                storage(false), // unfinished
            ],
        );
        let compile_start = options.compiling();
        let pipeline = ctx.pipeline(
            "ode/adaptive",
            &wgsl,
            &pipeline_layout(ctx, &layout),
            precision == Precision::F64,
        )?;

        use wgpu::BufferUsages as U;
        let real = precision.bytes();
        let c = plan.chunk as u64;
        let dim = system.dim() as u64;
        let buffers = EnsembleBuffers::new(
            ctx,
            (system.dim(), system.n_param_slots()),
            precision,
            (plan.chunk, plan.slots_per_batch),
            MAX_WINDOWS,
        );
        let control = buffer(ctx, "control", (3 + dim) * c * real, U::STORAGE);
        let counts = buffer(
            ctx,
            "counts",
            6 * c * 4,
            U::STORAGE | U::COPY_SRC | U::COPY_DST,
        );
        let times = buffer(
            ctx,
            "save times",
            save_times.len() as u64 * real,
            U::STORAGE | U::COPY_DST,
        );
        let mut bytes = Vec::with_capacity(save_times.len() * real as usize);
        for &t in save_times {
            precision.push_bytes(t, &mut bytes);
        }
        ctx.queue.write_buffer(&times, 0, &bytes);
        let unfinished = buffer(
            ctx,
            "unfinished",
            4 * MAX_WINDOWS as u64,
            U::STORAGE | U::COPY_SRC | U::COPY_DST,
        );
        let unfinished_staging = buffer(ctx, "unfinished staging", 4, U::MAP_READ | U::COPY_DST);
        let bind_group = bind_group(
            ctx,
            "adaptive",
            &layout,
            uniform_size,
            &[
                &buffers.uniforms,
                &buffers.state,
                &buffers.params,
                &buffers.saved,
                &control,
                &counts,
                &times,
                &unfinished,
            ],
        );
        ctx.check_errors()?;
        warm_up(
            ctx,
            &pipeline,
            &bind_group,
            &buffers.uniforms,
            // One trajectory whose span is empty: it passes the early return (llvmpipe
            // compiles only then) and ends at once; the chunk's first submission clears
            // what it wrote.
            &window_uniform(
                precision,
                &WindowArgs {
                    n_traj: 1,
                    stride: plan.chunk as u32,
                    max_steps: 1,
                    dt_max: 1.0,
                    ..WindowArgs::default()
                },
            ),
        )?;
        let compile = options.compiled(compile_start);
        Ok(Resources {
            pipeline,
            bind_group,
            buffers,
            counts,
            unfinished,
            unfinished_staging,
            timer: PassTimer::new(ctx, 1),
            compile,
        })
    }
}

/// The per-dispatch values of `struct Window` in `shaders/ode/adaptive.wgsl`.
#[derive(Debug, Default, Clone, Copy)]
struct WindowArgs {
    n_traj: u32,
    stride: u32,
    save_first: u32,
    save_end: u32,
    n_slots: u32,
    max_attempts: u32,
    window: u32,
    max_steps: u32,
    t0: f64,
    t1: f64,
    dt_initial: f64,
    dt_min: f64,
    dt_max: f64,
}

fn window_uniform(precision: Precision, w: &WindowArgs) -> Vec<u8> {
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

/// Checks a problem without touching the GPU; returns the save times.
pub fn check(problem: &AdaptiveProblem) -> Result<Vec<f64>, SimError> {
    let times = problem.check()?;
    problem.ensemble.validate(&problem.system)?;
    host_output_fits(
        times.len(),
        problem.ensemble.n,
        problem.system.dim(),
        problem.precision,
    )?;
    Ok(times)
}

/// Integrates every trajectory of an adaptive problem on the GPU into memory.
pub fn simulate_adaptive(
    ctx: &GpuContext,
    problem: &AdaptiveProblem,
    options: &RunOptions,
) -> Result<Solution, SimError> {
    let times = check(problem)?;
    gather(
        &problem.system,
        problem.ensemble.n,
        times,
        problem.precision,
        |sink| run_adaptive_into(ctx, problem, options, sink),
    )
}

/// How an adaptive run is cut up on this device.
pub fn plan_adaptive(
    ctx: &GpuContext,
    problem: &AdaptiveProblem,
    options: &RunOptions,
) -> Result<Plan, SimError> {
    let times = check(problem)?;
    let system = &problem.system;
    let (dim, real) = (system.dim(), problem.precision.bytes());
    if times.len() as u64 * real > DeviceLimits::of(&ctx.limits).max_binding {
        return Err(SimError::TooManySaves(times.len()));
    }
    let shape = RunShape {
        n: problem.ensemble.n,
        dim,
        n_params: system.n_param_slots(),
        n_slots: times.len(),
        bytes_per_real: real,
        workgroup_size: options.workgroup_size,
        // control rows, counts and their staging copies
        extra_bytes: (3 + dim as u64) * real + (6 + COUNT_ROWS * options.ring as u64) * 4,
        // the control rows are the widest (the counts are COUNT_ROWS u32s)
        extra_width: 3 + dim,
        ring: options.ring,
    };
    Ok(plan(&shape, &DeviceLimits::of(&ctx.limits), &options.caps)?)
}

/// Integrates every trajectory of an adaptive problem on the GPU, handing results to `sink`
/// as they arrive (see `run::run_into`).
pub fn run_adaptive_into(
    ctx: &GpuContext,
    problem: &AdaptiveProblem,
    options: &RunOptions,
    sink: &mut dyn Sink,
) -> Result<RunStats, SimError> {
    let setup_start = Instant::now();
    let times = check(problem)?;
    let precision = problem.precision;
    precision_available(ctx, precision)?;
    let system = &problem.system;
    let (n, dim) = (problem.ensemble.n, system.dim());
    let real = precision.bytes();
    let plan = plan_adaptive(ctx, problem, options)?;
    log::info!("plan: {}", plan.describe(n, times.len(), options.ring));
    let res = Resources::new(ctx, problem, &plan, options, &times)?;
    let row_bytes = plan.chunk as u64 * real;
    let mut ring: ReadbackRing<Unit> = ReadbackRing::new(
        ctx,
        options.ring,
        &[
            (
                "saved",
                plan.slots_per_batch as u64 * dim as u64 * row_bytes,
            ),
            ("counts", COUNT_ROWS * plan.chunk as u64 * 4),
        ],
    );
    let mut stats = RunStats {
        setup: setup_start.elapsed(),
        compile: res.compile,
        gpu: res.timer.as_ref().map(|_| Duration::ZERO),
        ..RunStats::default()
    };
    let batches: Vec<Range<usize>> = plan.batches(times.len()).collect();
    options.tick(Tick::Total(
        (n - options.start.min(n)) as u64 * batches.len() as u64,
    ));

    let solve_start = Instant::now();
    let mut attempts = 0u64;
    let mut host_time = std::time::Duration::ZERO;
    let mut completed = options.start;
    let mut consume = |unit: Unit, bytes: &[&[u8]]| -> Result<(), SimError> {
        let started = Instant::now();
        sink.saves(&unit.saves((n, dim, plan.chunk), precision, bytes[0]))?;
        if unit.last_batch {
            completed = unit.chunk.end;
            let words: &[u32] = bytemuck::cast_slice(bytes[1]);
            let row = |r: usize, j: usize| words[r * plan.chunk + j];
            let len = unit.chunk.len();
            let status: Vec<Status> = (0..len).map(|j| Status::from_code(row(0, j))).collect();
            let steps: Vec<StepCounts> = (0..len)
                .map(|j| StepCounts {
                    accepted: row(1, j),
                    rejected: row(2, j),
                    rhs_evals: row(3, j),
                })
                .collect();
            attempts += steps.iter().map(StepCounts::attempts).sum::<u64>();
            sink.chunk_done(unit.chunk.clone(), &status, Some(&steps))?;
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
        host.upload(ctx, &problem.ensemble, &rows, chunk.clone());
        let (gx, gy) = dispatch_grid(
            chunk.len(),
            options.workgroup_size,
            ctx.limits.max_compute_workgroups_per_dimension,
        );
        let max_attempts = (options.steps_per_dispatch / chunk.len() as u64)
            .clamp(options.min_window_steps.max(1) as u64, u32::MAX as u64)
            as u32;
        let args = WindowArgs {
            n_traj: chunk.len() as u32,
            stride: plan.chunk as u32,
            n_slots: times.len() as u32,
            max_attempts,
            max_steps: problem.control.max_steps,
            t0: problem.t0,
            t1: problem.t1,
            dt_initial: problem.control.dt_initial.unwrap_or(0.0),
            dt_min: problem.control.dt_min,
            dt_max: problem.dt_max(),
            ..WindowArgs::default()
        };
        let mut first_submission = true;
        for (b, slots) in batches.iter().enumerate() {
            if options.cancelled() {
                break 'chunks;
            }
            let args = WindowArgs {
                save_first: slots.start as u32,
                save_end: slots.end as u32,
                ..args
            };
            // Dispatch windows until no trajectory has work left in this batch; the group
            // grows so that long batches cost few round trips.
            let mut group = 1usize;
            let mut through = 0u64;
            loop {
                let uniforms: Vec<u8> = (0..group)
                    .flat_map(|w| {
                        let mut slot = window_uniform(
                            precision,
                            &WindowArgs {
                                window: w as u32,
                                ..args
                            },
                        );
                        slot.resize(UNIFORM_STRIDE as usize, 0);
                        slot
                    })
                    .collect();
                ctx.queue.write_buffer(&res.buffers.uniforms, 0, &uniforms);
                let mut enc = ctx.device.create_command_encoder(&Default::default());
                if first_submission {
                    enc.clear_buffer(&res.counts, 0, None);
                    first_submission = false;
                }
                enc.clear_buffer(&res.unfinished, 0, Some(4 * group as u64));
                {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("adaptive"),
                        timestamp_writes: res.timer.as_ref().map(|t| t.writes(0)),
                    });
                    pass.set_pipeline(&res.pipeline);
                    for w in 0..group {
                        pass.set_bind_group(
                            0,
                            &res.bind_group,
                            &[(w as u64 * UNIFORM_STRIDE) as u32],
                        );
                        pass.dispatch_workgroups(gx, gy, 1);
                    }
                }
                let last = 4 * (group as u64 - 1);
                enc.copy_buffer_to_buffer(&res.unfinished, last, &res.unfinished_staging, 0, 4);
                if let Some(t) = &res.timer {
                    t.resolve(&mut enc, 1);
                }
                ctx.queue.submit([enc.finish()]);
                stats.dispatches += group;
                // Earlier units' results are consumed while this group runs; then the one
                // counter says whether the batch needs more.
                ring.drain(ctx, &mut consume)?;
                let left = with_mapped(ctx, &res.unfinished_staging, 4, |b| {
                    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
                })?;
                if let (Some(t), Some(total)) = (&res.timer, stats.gpu.as_mut()) {
                    *total += t.read(ctx, 1)?;
                }
                // Trajectories through this batch so far, told as progress.
                let now_through = chunk.len().saturating_sub(left as usize) as u64;
                options.tick(Tick::Done(now_through.saturating_sub(through)));
                through = through.max(now_through);
                if left == 0 {
                    break;
                }
                group = (group * 2).min(MAX_WINDOWS);
            }

            let saved_bytes = slots.len() as u64 * dim as u64 * row_bytes;
            let last_batch = b + 1 == batches.len();
            let count_bytes = if last_batch {
                COUNT_ROWS * plan.chunk as u64 * 4
            } else {
                0
            };
            let (ring_slot, staging) = ring.acquire(ctx, &mut consume)?;
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            enc.copy_buffer_to_buffer(&res.buffers.saved, 0, &staging[0], 0, saved_bytes);
            if last_batch {
                enc.copy_buffer_to_buffer(&res.counts, 0, &staging[1], 0, count_bytes);
            }
            ring.submitted(
                ring_slot,
                ctx.queue.submit([enc.finish()]),
                vec![saved_bytes, count_bytes],
                Unit {
                    chunk: chunk.clone(),
                    slots: slots.clone(),
                    last_batch,
                    passes: 0,
                },
            );
        }
        stats.chunks += 1;
    }
    ring.drain(ctx, &mut consume)?;
    stats.solve = solve_start.elapsed();
    stats.host = host_time;
    stats.completed = completed;
    stats.trajectory_steps = attempts;
    Ok(stats)
}
