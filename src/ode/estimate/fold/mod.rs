//! The fold of a fit's saves into normal equations on the device (`fold_normals.wgsl`,
//! a `DeviceStage`): after each batch of an augmented run, every trajectory adds its
//! observed values' residuals and gradient rows to its own JᵀWJ, JᵀWr and cost, in f64;
//! after the chunk's last batch the device writes either every trajectory's sums (one fit
//! per trajectory) or every trajectory's cost and the sums of each group of 64 (a shared
//! fit, whose host then adds a few groups instead of every trajectory's saves).
//!
//! What comes back per trajectory is (n_fit² + 3 n_fit + 2)/2 numbers, or its cost and a
//! 64th of that, instead of its states and sensitivities at every observation. The groups
//! are fixed runs of 64 trajectories (chunks are cut in whole groups) added in a fixed
//! tree, so a run gives the same bits however it is chunked. The fold needs f64 on the
//! device (`Folding::for_device`); without it the host folds the saves it reads back.

mod data;
pub mod direct;
pub mod twin;

pub use data::FoldData;

use super::lm::Normal;
use crate::gpu::layout::{Binding, bind_group, bind_group_layout, buffer, pipeline_layout};
use crate::gpu::shader::compose;
use crate::gpu::{GpuContext, GpuError};
use crate::ode::device::Precision;
use crate::ode::error::SimError;
use crate::ode::stage::DeviceStage;
use crate::schedule::plan::dispatch_grid;
use std::ops::Range;
use std::sync::Arc;

pub use twin::GROUP;

/// Where an estimation run's saves are folded into normal equations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folding {
    /// On the device (`NormalFold`); needs f64 there.
    Device,
    /// On the host, from the saves read back.
    Host,
}

/// Fitted quantities the device folds at most. The kernel keeps (n² + 3n + 2)/2 f64 sums
/// per trajectory in registers and writes the fold of every state out: 91 sums at 12,
/// already more than a GPU keeps without spilling, while the generated kernel grows with
/// n² × the states. Beyond it the host folds, whose cost does not depend on the kernel.
pub const MAX_DEVICE_FIT: usize = 12;

impl Folding {
    /// `Device` where the device has f64 and the fit has at most `MAX_DEVICE_FIT`
    /// quantities, `Host` otherwise.
    pub fn for_device(ctx: &GpuContext, n_fit: usize) -> Folding {
        if ctx.has_f64() && n_fit <= MAX_DEVICE_FIT {
            Folding::Device
        } else {
            Folding::Host
        }
    }

    /// Refuses `Device` on a device without f64 (the fold adds in f64).
    pub fn check(self, ctx: &GpuContext) -> Result<(), String> {
        if self == Folding::Device && !ctx.has_f64() {
            return Err(format!(
                "folding on the device needs f64 shaders, which '{}' lacks; fold on the host",
                ctx.summary.name
            ));
        }
        Ok(())
    }
}

/// What the device writes after a chunk's last batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoldOutput {
    /// Every trajectory's terms, [term][stride].
    PerTrajectory,
    /// Every trajectory's cost [stride], then each group's terms [group][term].
    Groups,
}

/// A trajectory's or a group's normal equations from its fold terms (JᵀWJ's upper
/// triangle, JᵀWr, the cost), over `count` observed values.
pub fn normal_from_terms(terms: &[f64], n_fit: usize, count: usize) -> Normal {
    let mut normal = Normal::zero(n_fit);
    let mut t = 0;
    for a in 0..n_fit {
        for b in a..n_fit {
            normal.jtj[a * n_fit + b] = terms[t];
            normal.jtj[b * n_fit + a] = terms[t];
            t += 1;
        }
    }
    normal.jtr.copy_from_slice(&terms[t..t + n_fit]);
    normal.cost = terms[t + n_fit];
    normal.count = count;
    normal
}

/// The device half: kernel, buffers and bind group, made by `prepare`.
struct Device {
    pipeline: Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    uniform: wgpu::Buffer,
    observed: wgpu::Buffer,
    counted: wgpu::Buffer,
    out: wgpu::Buffer,
    stride: usize,
}

/// The fold as a `DeviceStage`.
pub struct NormalFold {
    data: FoldData,
    output: FoldOutput,
    device: Option<Device>,
}

impl NormalFold {
    pub fn new(data: FoldData, output: FoldOutput) -> NormalFold {
        NormalFold {
            data,
            output,
            device: None,
        }
    }

    fn terms(&self) -> usize {
        twin::terms(self.data.n_fit)
    }

    /// Reals of `out` for rows `stride` long.
    fn out_len(&self, stride: usize) -> usize {
        match self.output {
            FoldOutput::PerTrajectory => self.terms() * stride,
            FoldOutput::Groups => stride + stride.div_ceil(GROUP) * self.terms(),
        }
    }
}

/// The composed kernel for `dim` states, `n_fit` quantities and saves in `precision`.
pub fn fold_wgsl(
    dim: usize,
    n_fit: usize,
    precision: Precision,
    output: FoldOutput,
) -> Result<String, crate::gpu::shader::ShaderError> {
    let saved = match precision {
        Precision::F32 => "f32",
        Precision::F64 => "f64",
    };
    let body = FoldBody::new(dim, n_fit);
    compose(
        "ode/estimate/fold_normals.wgsl",
        &[
            ("DIM", &dim.to_string()),
            ("N_FIT", &n_fit.to_string()),
            ("TERMS", &twin::terms(n_fit).to_string()),
            ("SAVED", saved),
            (
                "PER_TRAJECTORY",
                if output == FoldOutput::PerTrajectory {
                    "true"
                } else {
                    "false"
                },
            ),
            ("DECLARE", &body.declare),
            ("LOAD", &body.load),
            ("FOLD_STATES", &body.fold_states),
            ("STORE_SUMS", &body.store_sums),
            ("STORE_OUT", &body.store_out),
            ("COST", &body.cost),
            ("PACK", &body.pack),
        ],
    )
}

/// The generated parts of the kernel: the terms as scalars `a0, a1, …` (which stay in
/// registers, where an array indexed in loops would go to slow private memory on GPUs and
/// on lavapipe), and the fold of each state written out.
struct FoldBody {
    declare: String,
    load: String,
    fold_states: String,
    store_sums: String,
    store_out: String,
    cost: String,
    pack: String,
}

impl FoldBody {
    fn new(dim: usize, n_fit: usize) -> FoldBody {
        use std::fmt::Write;
        let terms = twin::terms(n_fit);
        let each = |f: &dyn Fn(usize) -> String| (0..terms).map(f).collect::<String>();
        let mut fold_states = String::new();
        for i in 0..dim {
            let pad = "            ";
            let _ = writeln!(fold_states, "{pad}{{");
            let _ = writeln!(
                fold_states,
                "{pad}    let at = (o * DIM + {i}u) * stride + j;"
            );
            let _ = writeln!(fold_states, "{pad}    if counted[at] != 0u {{");
            let _ = writeln!(fold_states, "{pad}        let sw = sqrt_weight[{i}u];");
            let _ = writeln!(
                fold_states,
                "{pad}        let r = sw * (f64(saved[row_at + {i}u]) - observed[at]);"
            );
            for k in 0..n_fit {
                let _ = writeln!(
                    fold_states,
                    "{pad}        let g{k} = sw * f64(saved[row_at + {}u]);",
                    dim + i * n_fit + k
                );
            }
            let mut t = 0;
            for a in 0..n_fit {
                for b in a..n_fit {
                    let _ = writeln!(fold_states, "{pad}        a{t} += g{a} * g{b};");
                    t += 1;
                }
            }
            for a in 0..n_fit {
                let _ = writeln!(fold_states, "{pad}        a{} += g{a} * r;", t + a);
            }
            let _ = writeln!(
                fold_states,
                "{pad}        a{} += f64(0.5) * r * r;",
                t + n_fit
            );
            let _ = writeln!(fold_states, "{pad}    }}");
            let _ = writeln!(fold_states, "{pad}}}");
        }
        FoldBody {
            declare: each(&|t| format!("    var a{t} = f64(0.0);\n")),
            load: each(&|t| format!("            a{t} = sums[{t}u * stride + j];\n")),
            fold_states,
            store_sums: each(&|t| format!("            sums[{t}u * stride + j] = a{t};\n")),
            store_out: each(&|t| format!("            out[{t}u * stride + j] = a{t};\n")),
            cost: format!("a{}", terms - 1),
            pack: each(&|t| format!("    acc[{t}] = a{t};\n")),
        }
    }
}

impl DeviceStage for NormalFold {
    fn group(&self) -> usize {
        match self.output {
            // Every trajectory's own sums: any chunking gives the same.
            FoldOutput::PerTrajectory => 1,
            FoldOutput::Groups => GROUP,
        }
    }

    fn per_trajectory(&self, ring: usize) -> (u64, u64) {
        let values = (self.data.n_obs * self.data.dim) as u64;
        let terms = self.terms() as u64;
        let out = match self.output {
            FoldOutput::PerTrajectory => 8 * terms,
            FoldOutput::Groups => 8 + (8 * terms).div_ceil(GROUP as u64),
        };
        // Observed values (f64) and their mask (u32), the sums, the output and its
        // staging copies.
        let bytes = 12 * values + 8 * terms + out * (1 + ring as u64);
        (bytes, (8 * values).max(8 * terms))
    }

    fn prepare(
        &mut self,
        ctx: &GpuContext,
        saved: &wgpu::Buffer,
        precision: Precision,
        stride: usize,
        _slots_per_batch: usize,
    ) -> Result<(), SimError> {
        use wgpu::BufferUsages as U;
        let d = &self.data;
        let wgsl = fold_wgsl(d.dim, d.n_fit, precision, self.output).map_err(GpuError::from)?;
        let storage = |read_only| Binding::Storage { read_only };
        let layout = bind_group_layout(
            ctx,
            "fold normals",
            &[
                Binding::Uniform,
                storage(true),
                storage(true),
                storage(true),
                storage(true),
                storage(true),
                storage(false),
                storage(false),
            ],
        );
        let pipeline = ctx.pipeline(
            "ode/estimate/fold_normals",
            &wgsl,
            &pipeline_layout(ctx, &layout),
            true,
        )?;
        let values = (d.n_obs * d.dim * stride) as u64;
        let uniform = buffer(ctx, "fold window", 32, U::UNIFORM | U::COPY_DST);
        let observed = buffer(ctx, "fold observed", 8 * values, U::STORAGE | U::COPY_DST);
        let counted = buffer(ctx, "fold counted", 4 * values, U::STORAGE | U::COPY_DST);
        let slots: Vec<u32> = d
            .slot_observation
            .iter()
            .map(|o| o.map_or(u32::MAX, |o| o as u32))
            .collect();
        let slot_observation = buffer(
            ctx,
            "fold slot observation",
            4 * slots.len() as u64,
            U::STORAGE | U::COPY_DST,
        );
        ctx.queue
            .write_buffer(&slot_observation, 0, bytemuck::cast_slice(&slots));
        let sqrt_weight: Vec<f64> = d.weights.iter().map(|w| w.max(0.0).sqrt()).collect();
        let weights = buffer(
            ctx,
            "fold sqrt weight",
            8 * d.dim as u64,
            U::STORAGE | U::COPY_DST,
        );
        ctx.queue
            .write_buffer(&weights, 0, bytemuck::cast_slice(&sqrt_weight));
        let sums = buffer(
            ctx,
            "fold sums",
            8 * (self.terms() * stride) as u64,
            U::STORAGE,
        );
        let out = buffer(
            ctx,
            "fold out",
            8 * self.out_len(stride) as u64,
            U::STORAGE | U::COPY_SRC,
        );
        let bind_group = bind_group(
            ctx,
            "fold normals",
            &layout,
            0,
            &[
                &uniform,
                saved,
                &observed,
                &counted,
                &slot_observation,
                &weights,
                &sums,
                &out,
            ],
        );
        ctx.check_errors()?;
        self.device = Some(Device {
            pipeline,
            bind_group,
            uniform,
            observed,
            counted,
            out,
            stride,
        });
        Ok(())
    }

    fn upload(&self, ctx: &GpuContext, chunk: &Range<usize>) {
        let device = self.device.as_ref().expect("prepared");
        let d = &self.data;
        let stride = device.stride;
        let mut observed = vec![0.0f64; d.n_obs * d.dim * stride];
        let mut counted = vec![0u32; observed.len()];
        for (local, j) in chunk.clone().enumerate() {
            for o in 0..d.n_obs {
                for i in 0..d.dim {
                    if let Some(y) = d.value(j, o, i) {
                        let at = (o * d.dim + i) * stride + local;
                        observed[at] = y;
                        counted[at] = 1;
                    }
                }
            }
        }
        ctx.queue
            .write_buffer(&device.observed, 0, bytemuck::cast_slice(&observed));
        ctx.queue
            .write_buffer(&device.counted, 0, bytemuck::cast_slice(&counted));
    }

    fn record(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        chunk: &Range<usize>,
        slots: &Range<usize>,
        first: bool,
        last: bool,
    ) {
        let device = self.device.as_ref().expect("prepared");
        let grid = dispatch_grid(
            chunk.len(),
            GROUP as u32,
            ctx.limits.max_compute_workgroups_per_dimension,
        );
        let window: [u32; 8] = [
            device.stride as u32,
            chunk.len() as u32,
            slots.start as u32,
            slots.len() as u32,
            first as u32,
            last as u32,
            grid.0,
            0,
        ];
        ctx.queue
            .write_buffer(&device.uniform, 0, bytemuck::cast_slice(&window));
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("fold normals"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&device.pipeline);
        pass.set_bind_group(0, &device.bind_group, &[]);
        pass.dispatch_workgroups(grid.0, grid.1, 1);
    }

    fn output(&self) -> &wgpu::Buffer {
        &self.device.as_ref().expect("prepared").out
    }

    fn output_bytes(&self, stride: usize, len: usize) -> u64 {
        let reals = match self.output {
            FoldOutput::PerTrajectory => self.terms() * stride,
            FoldOutput::Groups => stride + len.div_ceil(GROUP) * self.terms(),
        };
        8 * reals as u64
    }
}
