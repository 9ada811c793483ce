//! The one runner every method family shares. It owns all of a run that does not depend on
//! the method: planning chunks and batches of save slots, each chunk's upload, the
//! pipeline, bind group and its warm-up in the compile phase, the uniform slots of dispatch
//! windows, submissions and waits (`dispatch`), the readback ring, cancellation, progress
//! ticks, feeding the sink and the run's statistics. A method family (`ode::fixed`,
//! `ode::adaptive`) says the rest by implementing `Family`.

mod dispatch;
mod gpu;

pub use gpu::{precision_available, wait_for, warm_up};

use super::device::{
    Binding, EnsembleBuffers, HostUpload, Precision, Unit, bind_group, bind_group_layout, buffer,
    pipeline_layout,
};
use super::ensemble::Ensemble;
use super::error::{SimError, solution_fits};
use super::options::{RunOptions, Tick};
use super::results::ChunkResults;
use super::sink::{Sink, gather};
use super::solution::{RunStats, Solution, Status, StepCounts};
use super::stage::DeviceStage;
use crate::gpu::shader::ShaderError;
use crate::gpu::timing::PassTimer;
use crate::gpu::{GpuContext, GpuError};
use crate::model::System;
use crate::schedule::plan::{DeviceLimits, Plan, PlanError, RunShape, dispatch_grid, plan};
use crate::schedule::ring::ReadbackRing;
use dispatch::{Batch, Kernel, WINDOWS_PER_SUBMIT};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ops::Range;
use std::time::{Duration, Instant};

/// What a method family tells the runner: its kernel, the buffers it binds after the
/// shared ones, the per-dispatch `struct Window` of its kernel, how a batch is dispatched,
/// and how its per-trajectory outcome (statuses, step counts) is read back.
///
/// Every kernel binds, in order: the window uniform (one dynamic slot per dispatch), the
/// state, the parameters and the saved states of `EnsembleBuffers`; then the family's own
/// buffers (`bindings`, `buffers`).
pub trait Family {
    /// The values of the kernel's `struct Window`, one per dispatch.
    type Window: Copy + Default;
    /// The family's own device buffers, made once per run.
    type Buffers;

    /// Names the pipeline (`ode/<label>`), its bind group and its passes.
    const LABEL: &'static str;

    fn system(&self) -> &System;
    fn ensemble(&self) -> &Ensemble;
    fn precision(&self) -> Precision;
    /// Save slots per trajectory.
    fn n_slots(&self) -> usize;
    /// The time of each save slot.
    fn save_times(&self) -> Vec<f64>;

    /// Device bytes per trajectory beyond state, parameters and saves (counting the ring's
    /// staging copies of what is read back), and the widest of those rows in reals; for
    /// the planner.
    fn extra_per_trajectory(&self, options: &RunOptions) -> (u64, usize);
    /// Refuses a run the device cannot hold for reasons the planner does not see.
    fn fits(&self, _limits: &DeviceLimits) -> Result<(), SimError> {
        Ok(())
    }

    /// Whether the kernel writes the parameters back (events that assign parameters): the
    /// params binding is then read_write.
    fn params_writable(&self) -> bool {
        false
    }
    /// The composed kernel source.
    fn wgsl(&self, workgroup_size: u32) -> Result<String, ShaderError>;
    /// `struct Window` as the kernel reads it (see `device::UniformBytes`).
    fn pack(&self, window: &Self::Window) -> Vec<u8>;
    /// A window that makes the kernel do nothing but compile: one trajectory, no work.
    fn warm_up_window(&self, stride: usize) -> Self::Window;

    /// The kinds of the family's own bindings, after the four shared ones.
    fn bindings(&self) -> Vec<Binding>;
    fn buffers(&self, ctx: &GpuContext, plan: &Plan) -> Self::Buffers;
    /// The buffers of `bindings`, in the same order.
    fn bound<'a>(&self, buffers: &'a Self::Buffers) -> Vec<&'a wgpu::Buffer>;
    /// The per-trajectory outcome (statuses, step counts): cleared by a chunk's first
    /// submission, read back after its last batch.
    fn outcome<'a>(&self, buffers: &'a Self::Buffers) -> &'a wgpu::Buffer;
    /// Bytes of `outcome` to read back for a chunk of `len` trajectories in rows `stride`
    /// long.
    fn outcome_bytes(&self, stride: usize, len: usize) -> u64;
    /// Decodes what `outcome_bytes` read back.
    fn decode(&self, stride: usize, len: usize, bytes: &[u8]) -> Outcome;
    /// For `Windows::UntilDone` families: the kernel's per-dispatch counters of
    /// trajectories with work left (one u32 per window of a submission).
    fn unfinished<'a>(&self, _buffers: &'a Self::Buffers) -> Option<&'a wgpu::Buffer> {
        None
    }
    /// Per-trajectory results beyond statuses and step counts (event logs, exponents): a
    /// buffer the runner clears when a chunk starts and reads back after its last batch.
    fn results<'a>(&self, _buffers: &'a Self::Buffers) -> Option<&'a wgpu::Buffer> {
        None
    }
    /// Bytes of `results` to read back for a chunk of `len` trajectories in rows `stride`
    /// long (also the size of its staging copies in the readback ring).
    fn results_bytes(&self, _stride: usize, _len: usize) -> u64 {
        0
    }
    /// Decodes what `results_bytes` read back.
    fn decode_results(&self, _stride: usize, _len: usize, _bytes: &[u8]) -> Option<ChunkResults> {
        None
    }

    /// How the batch of save slots `slots` of `chunk` is dispatched.
    fn windows(
        &self,
        options: &RunOptions,
        chunk: &Range<usize>,
        stride: usize,
        slots: &Range<usize>,
    ) -> Windows<'_, Self::Window>;
    /// The run's work for progress ticks (`Tick::Total`), for `trajectories` to run and
    /// `batches` per chunk; `Windows` say how much each dispatch does in the same units.
    fn total_work(&self, trajectories: u64, batches: usize) -> u64;
    /// Trajectory-steps taken by a finished chunk of `len` trajectories.
    fn trajectory_steps(&self, len: usize, outcome: &Outcome) -> u64;
}

/// A window policy: how the dispatches of one batch are chosen.
pub enum Windows<'a, W> {
    /// Every window is known before the batch starts (fixed-step: windows of known step
    /// counts); each with its work in progress units. Submitted in groups, with no host
    /// round trip but the final readback.
    Planned(Vec<(W, u64)>),
    /// Windows `nth(0), nth(1), ...` are dispatched in growing groups until the counter
    /// of the group's last window (`Family::unfinished`) says no trajectory has work left
    /// in the batch (adaptive: step counts are unknown). One counter per submission, never
    /// one per step; progress is trajectories through the batch.
    UntilDone(Box<dyn Fn(u32) -> W + 'a>),
}

/// What a finished chunk reports per trajectory.
pub struct Outcome {
    pub status: Vec<Status>,
    pub steps: Option<Vec<StepCounts>>,
}

impl Outcome {
    /// Statuses only: one u32 code per trajectory (the fixed-step kernels' `status`).
    pub fn from_status_codes(len: usize, bytes: &[u8]) -> Outcome {
        let codes: &[u32] = bytemuck::cast_slice(&bytes[..len * 4]);
        Outcome {
            status: codes.iter().map(|&c| Status::from_code(c)).collect(),
            steps: None,
        }
    }

    /// Statuses and step counts from u32 rows `stride` long: status, accepted, rejected,
    /// right-hand-side evaluations (the adaptive kernels' `counts`).
    pub fn from_count_rows(stride: usize, len: usize, bytes: &[u8]) -> Outcome {
        let words: &[u32] = bytemuck::cast_slice(bytes);
        let row = |r: usize, j: usize| words[r * stride + j];
        Outcome {
            status: (0..len).map(|j| Status::from_code(row(0, j))).collect(),
            steps: Some(
                (0..len)
                    .map(|j| StepCounts {
                        accepted: row(1, j),
                        rejected: row(2, j),
                        rhs_evals: row(3, j),
                        ..StepCounts::default()
                    })
                    .collect(),
            ),
        }
    }
}

impl Outcome {
    /// Statuses and step counts from the first `rows` u32 rows (each `stride` long) of a
    /// counts buffer: status, accepted, rejected, right-hand-side evaluations, then, where
    /// there are that many rows, Jacobian evaluations and method switches (the stiff
    /// kernels' `counts`).
    pub fn from_count_rows_n(stride: usize, len: usize, bytes: &[u8], rows: usize) -> Outcome {
        let mut out = Outcome::from_count_rows(stride, len, bytes);
        let words: &[u32] = bytemuck::cast_slice(bytes);
        if let Some(steps) = out.steps.as_mut() {
            for (j, s) in steps.iter_mut().enumerate() {
                if rows > 4 {
                    s.jacobians = words[4 * stride + j];
                }
                if rows > 5 {
                    s.switches = words[5 * stride + j];
                }
            }
        }
        out
    }
}

/// Progress units (trajectory-steps) per submission at most, for `Windows::Planned`
/// (about a third of a second on a CPU adapter, milliseconds on a GPU), so that a
/// cancelled run stops soon, concurrent runs take turns often and progress moves within a
/// chunk (it is told as each submission finishes).
const WORK_PER_SUBMIT: u64 = 1 << 28;

/// Timed passes per batch at most (two timestamps each in one query set).
const MAX_PASSES: usize = 1024;

/// How a run is cut up on this device.
pub fn plan_run<F: Family>(
    ctx: &GpuContext,
    family: &F,
    options: &RunOptions,
) -> Result<Plan, SimError> {
    plan_with_stage(ctx, family, options, None)
}

/// `plan_run` for a run with a device stage, whose buffers count too.
fn plan_with_stage<F: Family>(
    ctx: &GpuContext,
    family: &F,
    options: &RunOptions,
    stage: Option<&dyn DeviceStage>,
) -> Result<Plan, SimError> {
    let limits = DeviceLimits::of(&ctx.limits);
    family.fits(&limits)?;
    let system = family.system();
    let (mut extra_bytes, mut extra_width) = family.extra_per_trajectory(options);
    if let Some(stage) = stage {
        let (bytes, row) = stage.per_trajectory(options.ring);
        extra_bytes += bytes;
        extra_width = extra_width.max(row.div_ceil(family.precision().bytes()) as usize);
    }
    let shape = RunShape {
        n: family.ensemble().n,
        dim: system.dim(),
        n_params: system.n_param_slots(),
        n_slots: family.n_slots(),
        bytes_per_real: family.precision().bytes(),
        workgroup_size: options.workgroup_size,
        extra_bytes,
        extra_width,
        ring: options.ring,
    };
    Ok(plan(&shape, &limits, &options.caps)?)
}

/// The chunk of a run with a device stage: whole groups of `group` trajectories unless the
/// run is one chunk, so that every chunking of the run reduces the same groups. A plan
/// below one group (only a tiny memory budget or chunk cap gives one) is refused.
fn staged_chunk(chunk: usize, n: usize, group: usize) -> Result<usize, PlanError> {
    if chunk >= n {
        Ok(chunk)
    } else if chunk >= group {
        Ok(chunk - chunk % group)
    } else {
        Err(PlanError::GroupTooLarge { group, chunk })
    }
}

/// Integrates every trajectory of a family's problem on the GPU into memory.
pub fn simulate<F: Family>(
    ctx: &GpuContext,
    family: &F,
    options: &RunOptions,
) -> Result<Solution, SimError> {
    let system = family.system();
    // Only an in-memory run holds every save; sinks that stream or reduce do not.
    solution_fits(
        system,
        family.n_slots(),
        family.ensemble().n,
        family.precision(),
    )?;
    gather(
        system,
        family.ensemble().n,
        family.save_times(),
        family.precision(),
        |sink| run(ctx, family, options, sink),
    )
}

/// Buffers, layout and pipeline of one run, made once and reused by every chunk.
struct Resources<B> {
    pipeline: std::sync::Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    buffers: EnsembleBuffers,
    family: B,
    timer: Option<PassTimer>,
    /// Time spent compiling the kernel.
    compile: Duration,
}

impl<B> Resources<B> {
    fn new<F: Family<Buffers = B>>(
        ctx: &GpuContext,
        family: &F,
        plan: &Plan,
        options: &RunOptions,
        passes_per_batch: u32,
    ) -> Result<Self, SimError> {
        let system = family.system();
        let precision = family.precision();
        let wgsl = family
            .wgsl(options.workgroup_size)
            .map_err(GpuError::from)?;
        let uniform_size = family.pack(&F::Window::default()).len() as u64;
        let storage = |read_only| Binding::Storage { read_only };
        let mut kinds = vec![
            Binding::DynamicUniform(uniform_size),
            storage(false),                     // state
            storage(!family.params_writable()), // params
            storage(false),                     // saved
        ];
        kinds.extend(family.bindings());
        let layout = bind_group_layout(ctx, F::LABEL, &kinds);
        let compile_start = options.compiling();
        let pipeline = ctx.pipeline(
            &format!("ode/{}", F::LABEL),
            &wgsl,
            &pipeline_layout(ctx, &layout),
            precision == Precision::F64,
        )?;
        let buffers = EnsembleBuffers::new(
            ctx,
            (system.dim(), system.n_param_slots()),
            precision,
            (plan.chunk, plan.slots_per_batch),
            WINDOWS_PER_SUBMIT,
        );
        let own = family.buffers(ctx, plan);
        let mut bound = vec![
            &buffers.uniforms,
            &buffers.state,
            &buffers.params,
            &buffers.saved,
        ];
        bound.extend(family.bound(&own));
        let bind_group = bind_group(ctx, F::LABEL, &layout, uniform_size, &bound);
        ctx.check_errors()?;
        warm_up(
            ctx,
            &pipeline,
            &bind_group,
            &buffers.uniforms,
            &family.pack(&family.warm_up_window(plan.chunk)),
        )?;
        let compile = options.compiled(compile_start);
        Ok(Resources {
            pipeline,
            bind_group,
            buffers,
            family: own,
            timer: PassTimer::new(ctx, passes_per_batch),
            compile,
        })
    }
}

/// Integrates every trajectory of a family's problem on the GPU, handing results to `sink`
/// as they arrive. Units of work (a batch of save slots of a chunk) are read back through
/// a ring of `options.ring` slots, so the host consumes one while the device runs the next.
pub fn run<F: Family>(
    ctx: &GpuContext,
    family: &F,
    options: &RunOptions,
    sink: &mut dyn Sink,
) -> Result<RunStats, SimError> {
    let setup_start = Instant::now();
    let precision = family.precision();
    precision_available(ctx, precision)?;
    let system = family.system();
    let (n, dim, n_slots) = (family.ensemble().n, system.dim(), family.n_slots());
    let mut stage = sink.device_stage();
    let mut plan = plan_with_stage(ctx, family, options, stage.as_deref())?;
    if let Some(stage) = &stage {
        plan.chunk = staged_chunk(plan.chunk, n, stage.group())?;
    }
    log::info!("plan: {}", plan.describe(n, n_slots, options.ring));
    let batches: Vec<Range<usize>> = plan.batches(n_slots).collect();

    // Group planned windows so that a submission does at most WORK_PER_SUBMIT and a batch
    // times at most MAX_PASSES passes; sized by the largest chunk, the one with the most
    // work per window.
    let largest = 0..plan.chunk.min(n);
    let (mut most_windows, mut most_work) = (0usize, 0u64);
    for slots in &batches {
        if let Windows::Planned(all) = family.windows(options, &largest, plan.chunk, slots) {
            most_windows = most_windows.max(all.len());
            most_work = all.iter().map(|&(_, work)| work).fold(most_work, u64::max);
        }
    }
    let windows_per_submit = ((WORK_PER_SUBMIT / most_work.max(1)) as usize)
        .max(most_windows.div_ceil(MAX_PASSES))
        .clamp(1, WINDOWS_PER_SUBMIT);
    let passes_per_batch = most_windows.div_ceil(windows_per_submit).max(1) as u32;

    let res = Resources::new(ctx, family, &plan, options, passes_per_batch)?;
    if let Some(stage) = stage.as_mut() {
        stage.prepare(
            ctx,
            &res.buffers.saved,
            precision,
            plan.chunk,
            plan.slots_per_batch,
        )?;
    }
    let stage = stage.as_deref();
    // With a device stage the saves stay on the device.
    let row_bytes = match stage {
        Some(_) => 0,
        None => plan.chunk as u64 * precision.bytes(),
    };
    let mut ring: ReadbackRing<Unit> = ReadbackRing::new(
        ctx,
        options.ring,
        &[
            (
                "saved",
                plan.slots_per_batch as u64 * dim as u64 * row_bytes,
            ),
            ("outcome", family.outcome_bytes(plan.chunk, plan.chunk)),
            ("timestamps", 16 * passes_per_batch as u64),
            ("results", family.results_bytes(plan.chunk, plan.chunk)),
            (
                "stage",
                stage.map_or(0, |s| s.output_bytes(plan.chunk, plan.chunk)),
            ),
        ],
    );
    let mut stats = RunStats {
        setup: setup_start.elapsed(),
        compile: res.compile,
        gpu: res.timer.as_ref().map(|_| Duration::ZERO),
        ..RunStats::default()
    };
    options.tick(Tick::Total(family.total_work(
        (options.stop(n) - options.start.min(options.stop(n))) as u64,
        batches.len(),
    )));
    // Work of each unit's submissions that were not waited for one by one: told when the
    // unit is consumed (units are consumed in the order they were submitted).
    let unacknowledged = RefCell::new(VecDeque::new());
    let gpu_time = Cell::new(Duration::ZERO);

    let solve_start = Instant::now();
    let mut host_time = Duration::ZERO;
    let mut completed = options.start;
    let mut trajectory_steps = 0u64;
    let mut consume = |unit: Unit, bytes: &[&[u8]]| -> Result<(), SimError> {
        let started = Instant::now();
        if let Some(work) = unacknowledged.borrow_mut().pop_front() {
            options.tick(Tick::Done(work));
        }
        if stage.is_none() {
            sink.saves(&unit.saves((n, dim, plan.chunk), precision, bytes[0]))?;
        }
        if unit.last_batch {
            completed = unit.chunk.end;
            let len = unit.chunk.len();
            let outcome = family.decode(plan.chunk, len, bytes[1]);
            if let Some(results) = family.decode_results(plan.chunk, len, bytes[3]) {
                sink.results(unit.chunk.clone(), &results)?;
            }
            if stage.is_some() {
                sink.staged(unit.chunk.clone(), plan.chunk, bytes[4])?;
            }
            trajectory_steps += family.trajectory_steps(len, &outcome);
            sink.chunk_done(
                unit.chunk.clone(),
                &outcome.status,
                outcome.steps.as_deref(),
            )?;
        }
        // Timestamps travel with planned batches only (`dispatch::until_done` reads its
        // own as it goes).
        if let (Some(t), true) = (&res.timer, unit.passes > 0) {
            gpu_time.set(gpu_time.get() + t.duration(&bytes[2][..16 * unit.passes as usize]));
        }
        host_time += started.elapsed();
        Ok(())
    };
    let unfinished = family.unfinished(&res.family);
    let unfinished_staging = unfinished.map(|_| {
        use wgpu::BufferUsages as U;
        buffer(ctx, "unfinished staging", 4, U::MAP_READ | U::COPY_DST)
    });
    let kernel = Kernel {
        ctx,
        label: F::LABEL,
        pipeline: &res.pipeline,
        bind_group: &res.bind_group,
        uniforms: &res.buffers.uniforms,
        saved: &res.buffers.saved,
        outcome: family.outcome(&res.family),
        results: family.results(&res.family),
        unfinished: unfinished.zip(unfinished_staging.as_ref()),
        timer: res.timer.as_ref(),
        options,
        stage,
    };
    let mut host = HostUpload::default();
    let rows = res
        .buffers
        .rows(dim, system.n_param_slots(), precision, plan.chunk);
    let (part, parts) = options.part;
    let mine = plan
        .chunks_from(options.start, options.stop(n))
        .skip(part)
        .step_by(parts.max(1));
    'chunks: for chunk in mine {
        if options.cancelled() {
            break;
        }
        // Queue writes land after the work already submitted and before the next
        // submission, so the next chunk's upload may be queued while this one runs.
        host.upload(ctx, family.ensemble(), &rows, chunk.clone());
        if let Some(stage) = stage {
            stage.upload(ctx, &chunk);
        }
        let grid = dispatch_grid(
            chunk.len(),
            options.workgroup_size,
            ctx.limits.max_compute_workgroups_per_dimension,
        );
        for (b, slots) in batches.iter().enumerate() {
            if options.cancelled() {
                break 'chunks;
            }
            let last = b + 1 == batches.len();
            let batch = Batch {
                chunk: chunk.clone(),
                slots: slots.clone(),
                first: b == 0,
                last,
                grid,
                saved_bytes: slots.len() as u64 * dim as u64 * row_bytes,
                outcome_bytes: if last {
                    family.outcome_bytes(plan.chunk, chunk.len())
                } else {
                    0
                },
                results_bytes: if last {
                    family.results_bytes(plan.chunk, chunk.len())
                } else {
                    0
                },
                stage_bytes: match (stage, last) {
                    (Some(stage), true) => stage.output_bytes(plan.chunk, chunk.len()),
                    _ => 0,
                },
            };
            let pack = |w: &F::Window| family.pack(w);
            let finished = match family.windows(options, &chunk, plan.chunk, slots) {
                Windows::Planned(windows) => dispatch::planned(
                    &kernel,
                    &batch,
                    &windows,
                    &pack,
                    windows_per_submit,
                    &mut ring,
                    &mut consume,
                    &unacknowledged,
                    &mut stats.dispatches,
                )?,
                Windows::UntilDone(nth) => dispatch::until_done(
                    &kernel,
                    &batch,
                    &*nth,
                    &pack,
                    &mut ring,
                    &mut consume,
                    &gpu_time,
                    &mut stats.dispatches,
                )?,
            };
            if !finished {
                break 'chunks;
            }
        }
        stats.chunks += 1;
    }
    ring.drain(ctx, &mut consume)?;
    if let Some(gpu) = stats.gpu.as_mut() {
        *gpu += gpu_time.get();
    }
    stats.solve = solve_start.elapsed();
    stats.host = host_time;
    stats.completed = completed;
    stats.trajectory_steps = trajectory_steps;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::staged_chunk;

    /// A staged run's chunks are whole groups (or the whole run); a chunk below one group
    /// is refused.
    #[test]
    fn staged_chunks_are_whole_groups() {
        assert_eq!(staged_chunk(1000, 1000, 64).unwrap(), 1000);
        assert_eq!(staged_chunk(97, 1000, 64).unwrap(), 64);
        assert_eq!(staged_chunk(200, 1000, 64).unwrap(), 192);
        assert_eq!(staged_chunk(24, 24, 64).unwrap(), 24);
        assert_eq!(staged_chunk(5, 24, 1).unwrap(), 5);
        let e = staged_chunk(5, 1000, 64).unwrap_err().to_string();
        assert!(e.contains("groups of 64") && e.contains("only 5"), "{e}");
    }
}
