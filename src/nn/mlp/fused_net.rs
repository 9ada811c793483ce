//! The fused MLP on the device: inference (`FusedNet`) and training (`FusedTrainer`). Every
//! pipeline, buffer and bind group is made once; a training step is one command buffer of
//! six or seven dispatches (forward, loss, backward, weight gradients, their sum over
//! splits, clipping, Adam), and the host reads nothing back unless asked.
//! Kernels: `shaders/nn/mlp/fused_*.wgsl` and the toolkit's `shaders/nn/train/`
//! (`grad_clip.wgsl`, `gradient_sum.wgsl`, `adam.wgsl`); CPU twin: `mlp::cpu` and
//! `Optimizer::apply`.

use super::fused::{
    FusedLayout, LaneSharing, Loss, OutputDelta, Scratch, WIDE_TASKS_FROM_SAMPLES, backward_wgsl,
    forward_wgsl, grad_outputs_for, loss_wgsl, weight_grad_wgsl,
};
use super::model::{Architecture, Matrix, Params};
use crate::gpu::layout::{
    Binding, bind_group, bind_group_layout, bind_group_of, buffer, pipeline_layout, window,
};
use crate::gpu::readback::with_mapped;
use crate::gpu::{GpuContext, GpuError};
use crate::nn::train::Optimizer;
use crate::nn::train::buffers::{params_buffer, read_f32, storage};
use crate::nn::train::gradients::{gradient_splits, gradient_sum_pass};
use crate::nn::train::optimizer::{adam_pass, clip_pass, state};
use crate::nn::train::pass::{
    Pass, Pipeline, pipe, profile_passes, storage_ro, storage_rw, submit,
};
use crate::nn::train::sampler::Sampler;
use wgpu::BufferUsages as U;

/// The step uniform every fused kernel reads (`struct Step`).
pub(crate) fn step_words(
    n: usize,
    batch: usize,
    base: usize,
    m: usize,
    ordered: bool,
    per_split: usize,
) -> [u32; 8] {
    [
        n as u32,
        batch as u32,
        base as u32,
        m as u32,
        u32::from(ordered),
        per_split as u32,
        0,
        0,
    ]
}

/// Samples per forward dispatch such that the scratch fits one storage binding.
pub(crate) fn max_batch(ctx: &GpuContext, layout: &FusedLayout) -> usize {
    let per_sample = 16 * layout.rows as u64;
    let by_binding = ctx.limits.max_storage_buffer_binding_size / per_sample;
    let by_buffer = ctx.limits.max_buffer_size / per_sample;
    let group = layout.scratch.samples_per_group();
    let by_grid = 65535 * group;
    ((by_binding.min(by_buffer) as usize).min(by_grid) / group) * group
}

/// The weight-gradient dispatch of one net into `grad` (its whole gradient vector), and
/// the samples per split. The batch is split so that there are enough workgroups to fill
/// the adapter, each summing at least 256 samples; with more than one split, each writes
/// its own copy of the gradient and a second dispatch adds them up.
pub(crate) fn weight_grad_passes(
    ctx: &GpuContext,
    layout: &FusedLayout,
    batch: usize,
    step: &wgpu::Buffer,
    scratch: &wgpu::Buffer,
    grad: wgpu::BindingResource<'_>,
) -> Result<(Vec<Pass>, usize), GpuError> {
    let (grad_src, tasks) = weight_grad_wgsl(layout)?;
    let task_groups = tasks.div_ceil(64);
    // Splits start at blocks of eight samples: the weight-gradient tasks run blocks of
    // eight in both scratch layouts.
    let per_split = batch
        .div_ceil(gradient_splits(ctx, task_groups, batch))
        .next_multiple_of(8);
    let splits = batch.div_ceil(per_split);
    let len = layout.len;
    let (p, l) = pipe(
        ctx,
        "nn/mlp/fused_weight_grad",
        &grad_src,
        &[Binding::Uniform, storage_ro(), storage_rw()],
    )?;
    if splits == 1 {
        let group = bind_group_of(
            ctx,
            "weight gradients",
            &l,
            vec![step.as_entire_binding(), scratch.as_entire_binding(), grad],
        );
        let pass = Pass {
            label: "weight gradients",
            group,
            pipeline: p,
            size: (task_groups as u32, 1, 1),
        };
        return Ok((vec![pass], per_split));
    }
    let partial = buffer(
        ctx,
        "partial gradients",
        4 * (splits * len) as u64,
        U::STORAGE,
    );
    let passes = vec![
        Pass {
            label: "weight gradients",
            group: bind_group(ctx, "weight gradients", &l, 0, &[step, scratch, &partial]),
            pipeline: p,
            size: (task_groups as u32, splits as u32, 1),
        },
        gradient_sum_pass(ctx, len, splits, &partial, grad)?,
    ];
    Ok((passes, per_split))
}

/// Refuses data `m` [rows, cols] that one storage binding of this adapter cannot hold (the
/// fused kernels bind the whole of it), before any buffer is made: a clear sentence where
/// the driver would report a binding range past its limit.
fn fits_one_binding(ctx: &GpuContext, what: &str, m: &Matrix) -> Result<(), GpuError> {
    let bytes = 4 * m.rows as u64 * m.cols as u64;
    let limit = ctx.limits.max_storage_buffer_binding_size;
    if bytes > limit {
        return Err(GpuError::Unsupported(format!(
            "the {what} of {} samples take {} MiB in f32, more than one storage binding of \
             this adapter holds ({} MiB); use fewer samples (points, pixels or rows)",
            m.rows,
            bytes.div_ceil(1 << 20),
            limit >> 20
        )));
    }
    Ok(())
}

/// The widest hidden layer the fused kernels take; wider networks use the layer-by-layer
/// kernels (`GpuNet`, `Trainer`). Checked here and by `spec::train` before any work.
pub const MAX_FUSED_WIDTH: usize = 128;

/// Whether the fused kernels can run this network: hidden widths up to
/// `MAX_FUSED_WIDTH`. Any adapter runs them; with subgroups they share loads between
/// lanes (`LaneSharing`).
pub fn fused_supported(arch: &Architecture) -> bool {
    arch.layers[1..].iter().all(|&w| w <= MAX_FUSED_WIDTH)
}

/// `bindings` (a forward or backward kernel's, the parameters second) with the parameters'
/// binding uniform and one more uniform binding per further window where the layout reads
/// them so (`FusedLayout::params_bindings`).
fn with_param_bindings(layout: &FusedLayout, mut bindings: Vec<Binding>) -> Vec<Binding> {
    if layout.uniform_params {
        bindings[1] = Binding::Uniform;
        bindings.extend(vec![Binding::Uniform; layout.windows.len() - 1]);
    }
    bindings
}

/// The resources for `buffers` (the parameters second): whole buffers, the parameters as
/// their first window and the further windows appended where the layout reads uniform
/// windows.
fn with_param_windows<'a, const N: usize>(
    layout: &FusedLayout,
    params: &'a wgpu::Buffer,
    buffers: [&'a wgpu::Buffer; N],
) -> Vec<wgpu::BindingResource<'a>> {
    let mut resources: Vec<_> = buffers.iter().map(|b| b.as_entire_binding()).collect();
    if layout.uniform_params {
        let ranges = layout.window_ranges();
        resources[1] = window(params, ranges[0]);
        resources.extend(ranges[1..].iter().map(|&r| window(params, r)));
    }
    resources
}

/// A network for inference with the fused forward kernel.
pub struct FusedNet {
    pub layout: FusedLayout,
    params: wgpu::Buffer,
    forward: Pipeline,
    forward_layout: wgpu::BindGroupLayout,
}

impl FusedNet {
    pub fn new(
        ctx: &GpuContext,
        arch: &Architecture,
        params: &Params,
    ) -> Result<FusedNet, GpuError> {
        if !fused_supported(arch) {
            return Err(GpuError::Unsupported(format!(
                "the fused network kernels need hidden widths of at most {MAX_FUSED_WIDTH}; \
                     use nn::GpuNet and nn::Trainer"
            )));
        }
        let mut layout = FusedLayout::with_scratch(arch, Scratch::BLOCKED)
            .with_sharing(LaneSharing::for_context(ctx));
        if ctx.cpu_forms() {
            layout = layout.with_uniform_windows(
                ctx.limits.max_uniform_buffer_binding_size,
                u64::from(ctx.limits.min_uniform_buffer_offset_alignment),
            );
        }
        let mut bindings = vec![Binding::Uniform, storage_ro(), storage_ro(), storage_ro()];
        bindings.push(storage_rw());
        let forward_layout = bind_group_layout(
            ctx,
            "fused forward",
            &with_param_bindings(&layout, bindings),
        );
        let forward = ctx.pipeline(
            "nn/mlp/fused_forward",
            &forward_wgsl(&layout)?,
            &pipeline_layout(ctx, &forward_layout),
            false,
        )?;
        let params = params_buffer(
            ctx,
            "parameters",
            &layout.pack(params),
            layout.uniform_params,
        );
        Ok(FusedNet {
            layout,
            params,
            forward,
            forward_layout,
        })
    }

    /// The network's outputs for `x` [rows, inputs], in chunks that fit the device.
    pub fn predict(&self, ctx: &GpuContext, x: &Matrix) -> Result<Matrix, GpuError> {
        let arch = &self.layout.arch;
        let rows = x.rows;
        let per_group = self.layout.scratch.samples_per_group();
        let chunk = max_batch(ctx, &self.layout)
            .min(rows.div_ceil(per_group) * per_group)
            .max(per_group);
        let chunks = rows.div_ceil(chunk);
        let last = arch.n_linear() - 1;
        let out_q = self.layout.out_pad[last] / 4;
        fits_one_binding(ctx, "inputs", x)?;
        let data = storage(ctx, "inputs", &FusedLayout::feature_major(x));
        let order = buffer(ctx, "order", 4, U::STORAGE);
        let scratch = buffer(
            ctx,
            "activations",
            16 * (self.layout.rows * chunk) as u64,
            U::STORAGE | U::COPY_SRC,
        );
        let step = buffer(ctx, "step", 32, U::UNIFORM | U::COPY_DST);
        let group = bind_group_of(
            ctx,
            "fused forward",
            &self.forward_layout,
            with_param_windows(
                &self.layout,
                &self.params,
                [&step, &self.params, &data, &order, &scratch],
            ),
        );
        let chunk_bytes = 16 * (out_q * chunk) as u64;
        let readback = buffer(
            ctx,
            "outputs",
            chunk_bytes * chunks as u64,
            U::MAP_READ | U::COPY_DST,
        );
        for k in 0..chunks {
            let base = k * chunk;
            let batch = chunk.min(rows - base);
            ctx.queue.write_buffer(
                &step,
                0,
                bytemuck::cast_slice(&step_words(chunk, batch, base, rows, false, 0)),
            );
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&self.forward);
                pass.set_bind_group(0, &group, &[]);
                pass.dispatch_workgroups((chunk / per_group) as u32, 1, 1);
            }
            enc.copy_buffer_to_buffer(
                &scratch,
                16 * (self.layout.z_row[last] * chunk) as u64,
                &readback,
                chunk_bytes * k as u64,
                chunk_bytes,
            );
            ctx.queue.submit([enc.finish()]);
        }
        let outputs = arch.outputs();
        let act = arch.output_activation;
        let data = with_mapped(ctx, &readback, chunk_bytes * chunks as u64, |b| {
            let z: &[f32] = bytemuck::cast_slice(b);
            let mut y = vec![0.0; rows * outputs];
            for (r, row) in y.chunks_mut(outputs).enumerate() {
                let (k, s) = (r / chunk, r % chunk);
                for (o, v) in row.iter_mut().enumerate() {
                    let at = ((k * out_q + o / 4) * chunk + s) * 4 + o % 4;
                    *v = act.apply(z[at] as f64);
                }
            }
            y
        })?;
        Ok(Matrix {
            rows,
            cols: outputs,
            data,
        })
    }

    /// The current parameters, read back.
    pub fn params(&self, ctx: &GpuContext) -> Result<Params, GpuError> {
        Ok(self
            .layout
            .unpack(&read_f32(ctx, &self.params, self.layout.len)?))
    }
}

/// How a `FusedTrainer` trains.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub optimizer: Optimizer,
    pub loss: Loss,
    /// Samples per step; `None` is the whole data set (full batch). Minibatches are drawn
    /// without replacement from a fresh permutation every epoch; a last partial batch is
    /// dropped.
    pub batch: Option<usize>,
    /// Clip the gradient to this global L2 norm.
    pub clip: Option<f64>,
    /// Seed of the minibatch permutations.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            optimizer: Optimizer::default(),
            loss: Loss::Mse,
            batch: None,
            clip: None,
            seed: 0,
        }
    }
}

/// A `TrainConfig` that cannot train.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainConfigError {
    #[error(transparent)]
    Optimizer(#[from] crate::nn::train::OptimizerError),
    #[error("a batch must hold at least 1 sample")]
    EmptyBatch,
    #[error("the gradient clipping norm must be a positive, finite number; got {0}")]
    Clip(f64),
}

impl TrainConfig {
    /// Whether these settings can train (the optimiser's, a batch of at least one sample,
    /// a positive clipping norm); checked by `FusedTrainer::new` before any upload.
    pub fn check(&self) -> Result<(), TrainConfigError> {
        self.optimizer.check()?;
        if self.batch == Some(0) {
            return Err(TrainConfigError::EmptyBatch);
        }
        if let Some(c) = self.clip
            && !(c.is_finite() && c > 0.0)
        {
            return Err(TrainConfigError::Clip(c));
        }
        Ok(())
    }
}

pub struct FusedTrainer {
    pub net: FusedNet,
    config: TrainConfig,
    /// Samples in the data set, per step, and the padded stride.
    m: usize,
    batch: usize,
    n: usize,
    grad: wgpu::Buffer,
    state: wgpu::Buffer,
    step_uniform: wgpu::Buffer,
    adam_uniform: wgpu::Buffer,
    order: wgpu::Buffer,
    per_split: usize,
    gradient_passes: Vec<Pass>,
    update_passes: Vec<Pass>,
    t: u32,
    sampler: Sampler,
}

impl FusedTrainer {
    /// A trainer for `x` [m, inputs] against `target` [m, outputs].
    pub fn new(
        ctx: &GpuContext,
        arch: &Architecture,
        params: &Params,
        x: &Matrix,
        target: &Matrix,
        config: TrainConfig,
    ) -> Result<FusedTrainer, GpuError> {
        config
            .check()
            .map_err(|e| GpuError::Unsupported(e.to_string()))?;
        let mut net = FusedNet::new(ctx, arch, params)?;
        let m = x.rows;
        let batch = config.batch.unwrap_or(m).min(m).max(1);
        let wide = batch >= WIDE_TASKS_FROM_SAMPLES;
        net.layout.grad_outputs = grad_outputs_for(ctx, wide);
        let layout = net.layout.clone();
        let per_group = layout.scratch.samples_per_group();
        let n = batch.div_ceil(per_group) * per_group;
        let most = max_batch(ctx, &layout);
        if n > most {
            return Err(GpuError::Unsupported(format!(
                "a batch of {batch} samples needs more memory than one storage binding of this adapter holds; at most {most}"
            )));
        }
        let s = storage_ro;
        let w = storage_rw;
        let pipe = |label: &str, wgsl: &str, bindings: &[Binding]| pipe(ctx, label, wgsl, bindings);

        fits_one_binding(ctx, "inputs", x)?;
        fits_one_binding(ctx, "targets", target)?;
        let xs = storage(ctx, "inputs", &FusedLayout::feature_major(x));
        let ts = storage(ctx, "targets", &FusedLayout::feature_major(target));
        let identity: Vec<u32> = (0..m as u32).collect();
        let order = buffer(ctx, "order", 4 * m as u64, U::STORAGE | U::COPY_DST);
        ctx.queue
            .write_buffer(&order, 0, bytemuck::cast_slice(&identity));
        let scratch = buffer(
            ctx,
            "activations",
            16 * (layout.rows * n) as u64,
            U::STORAGE,
        );
        let state = buffer(
            ctx,
            "loss state",
            4 * state::LEN as u64,
            U::STORAGE | U::COPY_SRC | U::COPY_DST,
        );
        let step_uniform = buffer(ctx, "step", 32, U::UNIFORM | U::COPY_DST);
        let len = layout.len;
        let grad = buffer(ctx, "gradient", 4 * len as u64, U::STORAGE | U::COPY_SRC);

        let mut gradient_passes = Vec::new();
        let (p, l) = pipe(
            "nn/mlp/fused_forward",
            &forward_wgsl(&layout)?,
            &with_param_bindings(&layout, vec![Binding::Uniform, s(), s(), s(), w()]),
        )?;
        gradient_passes.push(Pass {
            label: "forward",
            group: bind_group_of(
                ctx,
                "forward",
                &l,
                with_param_windows(
                    &layout,
                    &net.params,
                    [&step_uniform, &net.params, &xs, &order, &scratch],
                ),
            ),
            pipeline: p,
            size: ((n / per_group) as u32, 1, 1),
        });
        let (p, l) = pipe(
            "nn/mlp/fused_loss",
            &loss_wgsl(&layout, config.loss)?,
            &[Binding::Uniform, s(), s(), s(), w()],
        )?;
        gradient_passes.push(Pass {
            label: "loss",
            group: bind_group(
                ctx,
                "loss",
                &l,
                0,
                &[&step_uniform, &ts, &order, &scratch, &state],
            ),
            pipeline: p,
            size: (1, 1, 1),
        });
        let (p, l) = pipe(
            "nn/mlp/fused_backward",
            &backward_wgsl(&layout, OutputDelta::FromLoss)?,
            &with_param_bindings(&layout, vec![Binding::Uniform, s(), s(), s(), w(), s()]),
        )?;
        gradient_passes.push(Pass {
            label: "backward",
            group: bind_group_of(
                ctx,
                "backward",
                &l,
                with_param_windows(
                    &layout,
                    &net.params,
                    [&step_uniform, &net.params, &ts, &order, &scratch, &state],
                ),
            ),
            pipeline: p,
            size: ((n / per_group) as u32, 1, 1),
        });
        let (passes, per_split) = weight_grad_passes(
            ctx,
            &layout,
            batch,
            &step_uniform,
            &scratch,
            grad.as_entire_binding(),
        )?;
        gradient_passes.extend(passes);

        let mut update_passes = Vec::new();
        if let Some(max_norm) = config.clip {
            update_passes.push(clip_pass(ctx, len, max_norm, &grad, &state)?);
        }
        let adam = adam_pass(ctx, len, &net.params, &grad, &state)?;
        update_passes.push(adam.pass);
        let adam_uniform = adam.uniform;
        ctx.check_errors()?;
        let trainer = FusedTrainer {
            net,
            config,
            m,
            batch,
            n,
            grad,
            state,
            step_uniform,
            adam_uniform,
            order,
            per_split,
            gradient_passes,
            update_passes,
            t: 0,
            sampler: Sampler::new(m, batch, 40),
        };
        trainer.write_step(ctx, 0);
        Ok(trainer)
    }

    fn write_step(&self, ctx: &GpuContext, base: usize) {
        let words = step_words(
            self.n,
            self.batch,
            base,
            self.m,
            self.sampler.active(),
            self.per_split,
        );
        ctx.queue
            .write_buffer(&self.step_uniform, 0, bytemuck::cast_slice(&words));
    }

    /// Samples per step.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The data rows of the last step's batch.
    pub fn batch_rows(&self) -> Vec<usize> {
        self.sampler.rows()
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u32 {
        self.t
    }

    /// One optimiser step on the next batch, recorded into one command buffer; nothing is
    /// read back.
    pub fn step(&mut self, ctx: &GpuContext) {
        self.prepare(ctx);
        submit(ctx, self.gradient_passes.iter().chain(&self.update_passes));
    }

    /// Picks the next batch and writes the step's uniforms.
    fn prepare(&mut self, ctx: &GpuContext) {
        if self.sampler.active() {
            let (base, fresh) = self.sampler.next(self.config.seed);
            if let Some(order) = fresh {
                ctx.queue
                    .write_buffer(&self.order, 0, bytemuck::cast_slice(order));
            }
            self.write_step(ctx, base);
        }
        self.t += 1;
        let words = self.config.optimizer.adam_words(
            self.net.layout.len,
            self.t,
            self.config.clip.is_some(),
        );
        ctx.queue
            .write_buffer(&self.adam_uniform, 0, bytemuck::cast_slice(&words));
    }

    /// One step with every dispatch in its own timed pass: each dispatch's GPU time, or
    /// `None` where the adapter has no timestamp queries.
    pub fn profile(
        &mut self,
        ctx: &GpuContext,
    ) -> Result<Option<Vec<(&'static str, std::time::Duration)>>, GpuError> {
        // The same bookkeeping as `step`, then the dispatches one pass each.
        self.prepare(ctx);
        let passes: Vec<&Pass> = self
            .gradient_passes
            .iter()
            .chain(&self.update_passes)
            .collect();
        profile_passes(ctx, &passes, |_, p, pass| p.record(pass))
    }

    /// The loss of the last step's batch (before its update), read back.
    pub fn loss(&self, ctx: &GpuContext) -> Result<f64, GpuError> {
        Ok(read_f32(ctx, &self.state, state::LEN)?[state::LOSS] as f64)
    }

    /// The global gradient norm of the last step (before clipping); only with clipping.
    pub fn grad_norm(&self, ctx: &GpuContext) -> Result<Option<f64>, GpuError> {
        if self.config.clip.is_none() {
            return Ok(None);
        }
        Ok(Some(
            read_f32(ctx, &self.state, state::LEN)?[state::NORM] as f64,
        ))
    }

    /// The loss and gradients at the current parameters on the current batch (no update).
    pub fn gradients(&self, ctx: &GpuContext) -> Result<(f64, Params), GpuError> {
        submit(ctx, &self.gradient_passes);
        let g = read_f32(ctx, &self.grad, self.net.layout.len)?;
        Ok((self.loss(ctx)?, self.net.layout.unpack(&g)))
    }

    pub fn params(&self, ctx: &GpuContext) -> Result<Params, GpuError> {
        self.net.params(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::train::words_by_field;

    #[test]
    fn step_words_follow_the_fused_step_struct() {
        let words = step_words(64, 50, 3, 1000, true, 16);
        let at = words_by_field("nn/mlp/fused_step.wgsl", "Step", &words);
        let named = ["n", "batch", "base", "m", "ordered", "per_split"].map(at);
        assert_eq!(named, [64, 50, 3, 1000, 1, 16]);
    }
}
