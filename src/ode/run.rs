//! Running a fixed-step ensemble on the GPU: buffers, bind group and pipeline made once per
//! run; per chunk one upload, per batch of save slots one submission of dispatch windows
//! and one readback. No step ever waits on the host.

use super::ensemble::{Ensemble, EnsembleError};
use super::kernel::fixed_step_wgsl;
use super::problem::{ProblemError, Save, SavePlan, TimeGrid};
use super::solution::{RunStats, Solution, Status};
use super::tableau::Solver;
use crate::gpu::readback::with_mapped;
use crate::gpu::timing::PassTimer;
use crate::gpu::{GpuContext, GpuError};
use crate::model::System;
use crate::schedule::plan::{
    DeviceLimits, Plan, PlanCaps, PlanError, RunShape, dispatch_grid, plan, windows,
};
use std::ops::Range;
use std::time::Instant;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SimError {
    #[error(transparent)]
    Problem(#[from] ProblemError),
    #[error(transparent)]
    Ensemble(#[from] EnsembleError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(
        "the saved states would take {gib:.1} GiB of host memory; save less often or run fewer trajectories"
    )]
    OutputTooLarge { gib: f64 },
}

/// A fixed-step ensemble problem.
#[derive(Debug, Clone)]
pub struct FixedStepProblem {
    pub system: System,
    pub solver: Solver,
    pub grid: TimeGrid,
    pub save: Save,
    pub ensemble: Ensemble,
}

/// Knobs that change how a run is carried out, never its results.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    pub workgroup_size: u32,
    pub caps: PlanCaps,
    /// Trajectory-steps per dispatch, so that no dispatch runs long enough to trip a
    /// display driver's watchdog (about 0.3 s on a slow integrated GPU).
    pub steps_per_dispatch: u64,
    /// Fewest steps per dispatch window whatever the budget above says: very short windows
    /// leave each workgroup too little work (on lavapipe, 26-step windows at N = 10^7 ran
    /// at 40% of the speed of 256-step ones).
    pub min_window_steps: u32,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            workgroup_size: 64,
            caps: PlanCaps::default(),
            steps_per_dispatch: 1 << 28,
            min_window_steps: 256,
        }
    }
}

/// Host-side results are refused above this size (the in-memory `Solution` holds them all).
const MAX_HOST_OUTPUT: u64 = 16 << 30;

/// Dispatch windows recorded into one submission; each has its own uniform slot.
const WINDOWS_PER_SUBMIT: usize = 64;

/// Uniform slots are bound at dynamic offsets, which must be 256-byte aligned.
const UNIFORM_STRIDE: u64 = 256;

/// Mirrors `struct Window` in `shaders/ode/fixed_step.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct WindowUniform {
    n_traj: u32,
    stride: u32,
    step_begin: u32,
    step_end: u32,
    n_steps: u32,
    save_every: u32,
    save_initial: u32,
    save_first: u32,
    save_count: u32,
    t0: f32,
    dt: f32,
    _pad: u32,
}

/// Buffers, layout and pipeline of one run, made once and reused by every chunk.
struct Resources {
    pipeline: std::sync::Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    uniforms: wgpu::Buffer,
    state: wgpu::Buffer,
    params: wgpu::Buffer,
    saved: wgpu::Buffer,
    status: wgpu::Buffer,
    saved_staging: wgpu::Buffer,
    status_staging: wgpu::Buffer,
    timer: Option<PassTimer>,
}

impl Resources {
    fn new(
        ctx: &GpuContext,
        problem: &FixedStepProblem,
        plan: &Plan,
        options: &RunOptions,
        passes_per_batch: u32,
    ) -> Result<Self, SimError> {
        let dev = &ctx.device;
        let system = &problem.system;
        let wgsl = fixed_step_wgsl(system, problem.solver.tableau(), options.workgroup_size)
            .map_err(GpuError::from)?;

        let storage = |binding, read_only| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = dev.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("fixed_step"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: wgpu::BufferSize::new(size_of::<WindowUniform>() as u64),
                    },
                    count: None,
                },
                storage(1, false),
                storage(2, true),
                storage(3, false),
                storage(4, false),
            ],
        });
        let pipeline_layout = dev.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("fixed_step"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = ctx.pipeline("ode/fixed_step", &wgsl, &pipeline_layout, false)?;

        let real = 4u64;
        let c = plan.chunk as u64;
        let buffer = |label: &str, size: u64, usage| {
            dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size.max(4),
                usage,
                mapped_at_creation: false,
            })
        };
        use wgpu::BufferUsages as U;
        let saved_bytes = plan.slots_per_batch as u64 * system.dim() as u64 * c * real;
        let uniforms = buffer(
            "windows",
            UNIFORM_STRIDE * WINDOWS_PER_SUBMIT as u64,
            U::UNIFORM | U::COPY_DST,
        );
        let state = buffer(
            "state",
            system.dim() as u64 * c * real,
            U::STORAGE | U::COPY_DST,
        );
        let params = buffer(
            "params",
            system.n_params() as u64 * c * real,
            U::STORAGE | U::COPY_DST,
        );
        let saved = buffer("saved", saved_bytes, U::STORAGE | U::COPY_SRC);
        let status = buffer("status", c * 4, U::STORAGE | U::COPY_SRC | U::COPY_DST);
        let saved_staging = buffer("saved staging", saved_bytes, U::MAP_READ | U::COPY_DST);
        let status_staging = buffer("status staging", c * 4, U::MAP_READ | U::COPY_DST);

        let bind_group = dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("fixed_step"),
            layout: &layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &uniforms,
                        offset: 0,
                        size: wgpu::BufferSize::new(size_of::<WindowUniform>() as u64),
                    }),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: state.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: params.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: saved.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: status.as_entire_binding(),
                },
            ],
        });
        ctx.check_errors()?;
        Ok(Resources {
            pipeline,
            bind_group,
            uniforms,
            state,
            params,
            saved,
            status,
            saved_staging,
            status_staging,
            timer: PassTimer::new(ctx, passes_per_batch),
        })
    }
}

/// Checks a problem without touching the GPU: the same errors `simulate` would raise first.
pub fn check(problem: &FixedStepProblem) -> Result<SavePlan, SimError> {
    problem.ensemble.validate(&problem.system)?;
    let save_plan = SavePlan::new(problem.save, problem.grid.n_steps)?;
    let bytes =
        save_plan.n_slots() as u64 * problem.ensemble.n as u64 * problem.system.dim() as u64 * 4;
    if bytes > MAX_HOST_OUTPUT {
        return Err(SimError::OutputTooLarge {
            gib: bytes as f64 / (1u64 << 30) as f64,
        });
    }
    Ok(save_plan)
}

/// Integrates every trajectory of the problem on the GPU.
pub fn simulate(
    ctx: &GpuContext,
    problem: &FixedStepProblem,
    options: &RunOptions,
) -> Result<Solution, SimError> {
    let setup_start = Instant::now();
    let save_plan = check(problem)?;
    let system = &problem.system;
    let (n, dim) = (problem.ensemble.n, system.dim());
    let shape = RunShape {
        n,
        dim,
        n_params: system.n_params(),
        n_slots: save_plan.n_slots(),
        bytes_per_real: 4,
        workgroup_size: options.workgroup_size,
    };
    let plan = plan(&shape, &DeviceLimits::of(&ctx.limits), &options.caps)?;
    log::info!(
        "plan: {} chunk(s) of up to {} trajectories, {} save slot(s) per batch",
        n.div_ceil(plan.chunk),
        plan.chunk,
        plan.slots_per_batch
    );
    // Windows of the largest chunk: smaller chunks get longer windows, so never more.
    let max_len = |chunk_len: usize| {
        (options.steps_per_dispatch / chunk_len as u64)
            .clamp(options.min_window_steps.max(1) as u64, u32::MAX as u64) as u32
    };
    let batches: Vec<Range<usize>> = plan.batches(save_plan.n_slots()).collect();
    let passes_per_batch = batches
        .iter()
        .map(|slots| batch_windows(&save_plan, slots, max_len(plan.chunk.min(n))).len())
        .max()
        .unwrap_or(1)
        .div_ceil(WINDOWS_PER_SUBMIT) as u32;
    let res = Resources::new(ctx, problem, &plan, options, passes_per_batch)?;
    let setup = setup_start.elapsed();

    let solve_start = Instant::now();
    let mut out = Solution {
        n,
        dim,
        state_names: system.states.iter().map(|v| v.name.clone()).collect(),
        times: save_plan.times(&problem.grid),
        states: vec![f32::NAN; save_plan.n_slots() * n * dim],
        status: vec![Status::Running; n],
        stats: RunStats {
            trajectory_steps: n as u64 * problem.grid.n_steps as u64,
            setup,
            ..RunStats::default()
        },
    };
    let mut gpu_time = res.timer.as_ref().map(|_| std::time::Duration::ZERO);
    let mut host = HostUpload::default();
    for chunk in plan.chunks(n) {
        host.upload(ctx, &res, problem, &plan, chunk.clone());
        let (gx, gy) = dispatch_grid(
            chunk.len(),
            options.workgroup_size,
            ctx.limits.max_compute_workgroups_per_dimension,
        );
        for (b, slots) in batches.iter().enumerate() {
            let all = batch_windows(&save_plan, slots, max_len(chunk.len()));
            let groups: Vec<&[Range<u32>]> = all.chunks(WINDOWS_PER_SUBMIT).collect();
            let saved_bytes = (slots.len() * dim * plan.chunk * 4) as u64;
            let last_batch = b + 1 == batches.len();
            for (g, group) in groups.iter().enumerate() {
                let uniforms: Vec<u8> = group
                    .iter()
                    .flat_map(|w| {
                        let u = WindowUniform {
                            n_traj: chunk.len() as u32,
                            stride: plan.chunk as u32,
                            step_begin: w.start,
                            step_end: w.end,
                            n_steps: save_plan.n_steps,
                            save_every: save_plan.every,
                            save_initial: save_plan.initial as u32,
                            save_first: slots.start as u32,
                            save_count: slots.len() as u32,
                            t0: problem.grid.t0 as f32,
                            dt: problem.grid.dt as f32,
                            _pad: 0,
                        };
                        let mut slot = bytemuck::bytes_of(&u).to_vec();
                        slot.resize(UNIFORM_STRIDE as usize, 0);
                        slot
                    })
                    .collect();
                // Queue writes land before the next submission and after the previous
                // ones, so the slots can be rewritten while earlier groups still run.
                ctx.queue.write_buffer(&res.uniforms, 0, &uniforms);

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
                out.stats.dispatches += group.len();
                // Only the batch's last submission is waited on: its results and the
                // timestamps of all its passes come back together.
                let last_of_batch = g + 1 == groups.len();
                if last_of_batch {
                    enc.copy_buffer_to_buffer(&res.saved, 0, &res.saved_staging, 0, saved_bytes);
                    if last_batch {
                        let bytes = chunk.len() as u64 * 4;
                        enc.copy_buffer_to_buffer(&res.status, 0, &res.status_staging, 0, bytes);
                    }
                    if let Some(t) = &res.timer {
                        t.resolve(&mut enc, groups.len() as u32);
                    }
                }
                ctx.queue.submit([enc.finish()]);
            }
            with_mapped(ctx, &res.saved_staging, saved_bytes, |bytes| {
                scatter_saves(
                    bytemuck::cast_slice(bytes),
                    &mut out.states,
                    &plan,
                    slots,
                    &chunk,
                    n,
                    dim,
                )
            })?;
            if let (Some(t), Some(total)) = (&res.timer, gpu_time.as_mut()) {
                *total += t.read(ctx, groups.len() as u32)?;
            }
        }
        with_mapped(ctx, &res.status_staging, chunk.len() as u64 * 4, |bytes| {
            let codes: &[u32] = bytemuck::cast_slice(bytes);
            for (s, &c) in out.status[chunk.clone()].iter_mut().zip(codes) {
                *s = Status::from_code(c);
            }
        })?;
        out.stats.chunks += 1;
    }
    out.stats.solve = solve_start.elapsed();
    out.stats.gpu = gpu_time;
    Ok(out)
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

/// Host-side upload buffers, reused by every chunk of a run.
#[derive(Default)]
struct HostUpload {
    rows: Vec<f64>,
    soa: Vec<f32>,
}

impl HostUpload {
    /// Writes the chunk's initial states and parameters, transposed to struct-of-arrays f32.
    fn upload(
        &mut self,
        ctx: &GpuContext,
        res: &Resources,
        problem: &FixedStepProblem,
        plan: &Plan,
        chunk: Range<usize>,
    ) {
        let system = &problem.system;
        problem.ensemble.fill_states(chunk.clone(), &mut self.rows);
        self.transpose(system.dim(), plan.chunk);
        ctx.queue
            .write_buffer(&res.state, 0, bytemuck::cast_slice(&self.soa));
        if system.n_params() > 0 {
            problem.ensemble.fill_params(chunk, &mut self.rows);
            self.transpose(system.n_params(), plan.chunk);
            ctx.queue
                .write_buffer(&res.params, 0, bytemuck::cast_slice(&self.soa));
        }
    }

    /// `rows` ([j][cols] f64) into `soa` ([cols][stride] f32).
    fn transpose(&mut self, cols: usize, stride: usize) {
        self.soa.clear();
        self.soa.resize(cols * stride, 0.0);
        for (j, row) in self.rows.chunks(cols).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                self.soa[c * stride + j] = v as f32;
            }
        }
    }
}

/// Copies one batch's slots from the device layout [slot][dim][chunk] into the solution's
/// [slot][n][dim].
fn scatter_saves(
    saved: &[f32],
    out: &mut [f32],
    plan: &Plan,
    slots: &Range<usize>,
    chunk: &Range<usize>,
    n: usize,
    dim: usize,
) {
    for (s_local, s) in slots.clone().enumerate() {
        for c in 0..dim {
            let src = &saved[(s_local * dim + c) * plan.chunk..][..chunk.len()];
            for (j, &v) in src.iter().enumerate() {
                out[(s * n + chunk.start + j) * dim + c] = v;
            }
        }
    }
}
