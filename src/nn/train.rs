//! Training on the device: the whole step (forward, loss, backward, optimiser update) is
//! recorded into one command buffer, every buffer and bind group made once; the host reads
//! the loss only when asked.
//! Kernels: `shaders/nn/{mse,act_backward,matmul,column_sum,encode_backward,adam}.wgsl`;
//! their CPU twin is `nn::cpu::{mse, backward}` plus the update rule in `Optimizer`.

use super::gpu::{
    Batch, GpuNet, act_backward_wgsl, adam_grid, line_grid, matmul_wgsl, read_f64, to_f32, uniform,
    zeros,
};
use super::model::{Matrix, Params};
use crate::gpu::layout::{Binding, bind_group, bind_group_layout, pipeline_layout};
use crate::gpu::readback::with_mapped;
use crate::gpu::shader::compose;
use crate::gpu::{GpuContext, GpuError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Learning rate over the steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    /// Multiply by `gamma` every `every` steps.
    Step {
        every: u32,
        gamma: f64,
    },
    /// Cosine from the base rate down to `min_lr` over `total` steps.
    Cosine {
        total: u32,
        min_lr: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Optimizer {
    /// Adam (default) or plain SGD with momentum `beta1`.
    pub sgd: bool,
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled (AdamW) weight decay.
    pub weight_decay: f64,
    pub schedule: Schedule,
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer {
            sgd: false,
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
        }
    }
}

/// A setting of the optimiser under which no step can train: refused before the first one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimizerError {
    #[error("the learning rate must be a finite number ≥ 0; got {0}")]
    LearningRate(f64),
    #[error("the weight decay must be a finite number ≥ 0; got {0}")]
    WeightDecay(f64),
    #[error(
        "the weight decay times the learning rate must be below 1 (each step scales the weights \
         by 1 − lr·decay); got {decay} × {lr}"
    )]
    DecayTooLarge { decay: f64, lr: f64 },
    #[error("beta1 and beta2 must lie in [0, 1) and eps be positive and finite; got {0}, {1}, {2}")]
    Moments(f64, f64, f64),
    #[error(
        "a step schedule multiplies the learning rate by a factor in (0, 1] every 1 or more \
         steps; got every {every}, factor {gamma}"
    )]
    StepSchedule { every: u32, gamma: f64 },
    #[error("a cosine schedule's floor must be finite, ≥ 0 and at most the learning rate; got {0}")]
    CosineFloor(f64),
}

impl Optimizer {
    /// Whether every setting can train: a NaN, negative or infinite rate would "train"
    /// to NaN weights without a word, so it is refused here, at every front door. A rate
    /// of 0 is allowed (the parameters stay put: tests read gradients that way); the
    /// command line asks for a positive one.
    pub fn check(&self) -> Result<(), OptimizerError> {
        let lr = self.lr;
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(OptimizerError::LearningRate(lr));
        }
        let decay = self.weight_decay;
        if !(decay.is_finite() && decay >= 0.0) {
            return Err(OptimizerError::WeightDecay(decay));
        }
        if decay * lr >= 1.0 {
            return Err(OptimizerError::DecayTooLarge { decay, lr });
        }
        let unit = |b: f64| (0.0..1.0).contains(&b);
        if !(unit(self.beta1) && unit(self.beta2) && self.eps.is_finite() && self.eps > 0.0) {
            return Err(OptimizerError::Moments(self.beta1, self.beta2, self.eps));
        }
        match self.schedule {
            Schedule::Constant => Ok(()),
            Schedule::Step { every, gamma } => {
                if every == 0 || !(gamma > 0.0 && gamma <= 1.0) {
                    return Err(OptimizerError::StepSchedule { every, gamma });
                }
                Ok(())
            }
            Schedule::Cosine { min_lr, .. } => {
                if !(min_lr.is_finite() && (0.0..=lr).contains(&min_lr)) {
                    return Err(OptimizerError::CosineFloor(min_lr));
                }
                Ok(())
            }
        }
    }
}

impl Optimizer {
    /// The `struct Step` of adam.wgsl for step `t` over `len` parameters; `clip`: the
    /// gradient is first scaled by grad_clip.wgsl's factor.
    pub(super) fn adam_words(&self, len: usize, t: u32, clip: bool) -> [u32; 12] {
        [
            len as u32,
            t,
            (self.lr_at(t) as f32).to_bits(),
            (self.beta1 as f32).to_bits(),
            (self.beta2 as f32).to_bits(),
            (self.eps as f32).to_bits(),
            (self.weight_decay as f32).to_bits(),
            u32::from(clip),
            u32::from(self.sgd),
            0,
            0,
            0,
        ]
    }

    /// The learning rate at step `t` (from 1).
    pub fn lr_at(&self, t: u32) -> f64 {
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Step { every, gamma } => {
                self.lr * gamma.powi((t - 1) as i32 / every.max(1) as i32)
            }
            Schedule::Cosine { total, min_lr } => {
                let f = ((t - 1) as f64 / total.max(1) as f64).min(1.0);
                min_lr + 0.5 * (self.lr - min_lr) * (1.0 + (std::f64::consts::PI * f).cos())
            }
        }
    }
}

impl Optimizer {
    /// The update rule of `shaders/nn/adam.wgsl` in f64 (its CPU twin), for step `t`.
    pub fn apply(&self, t: u32, p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64]) {
        let lr = self.lr_at(t);
        for i in 0..p.len() {
            let mut pi = p[i] * (1.0 - lr * self.weight_decay);
            if self.sgd {
                m[i] = self.beta1 * m[i] + g[i];
                pi -= lr * m[i];
            } else {
                m[i] = self.beta1 * m[i] + (1.0 - self.beta1) * g[i];
                v[i] = self.beta2 * v[i] + (1.0 - self.beta2) * g[i] * g[i];
                let mhat = m[i] / (1.0 - self.beta1.powi(t as i32));
                let vhat = v[i] / (1.0 - self.beta2.powi(t as i32));
                pi -= lr * mhat / (vhat.sqrt() + self.eps);
            }
            p[i] = pi;
        }
    }
}

/// The parameters a step updates: (parameter, gradient, first moment, second moment, len).
struct Slot {
    grad: wgpu::Buffer,
    step: wgpu::Buffer,
    group: wgpu::BindGroup,
    len: usize,
}

type Pipeline = Arc<wgpu::ComputePipeline>;

pub struct Trainer {
    pub net: GpuNet,
    pub batch: Batch,
    slots: Vec<Slot>,
    optimizer: Optimizer,
    t: u32,
    partial: wgpu::Buffer,
    partial_read: wgpu::Buffer,
    n_partial: usize,
    // Recorded once: (pipeline, bind group, dispatch size) in order.
    backward: Vec<(Pipeline, wgpu::BindGroup, (u32, u32, u32))>,
    adam: Pipeline,
    mse: (Pipeline, wgpu::BindGroup, (u32, u32, u32)),
    count: usize,
}

fn dispatch_line(len: usize) -> (u32, u32, u32) {
    let (x, y) = line_grid(len);
    (x, y, 1)
}

impl Trainer {
    /// A trainer for full batches of `x` [n, inputs] against `target` [n, outputs].
    pub fn new(
        ctx: &GpuContext,
        net: GpuNet,
        x: &Matrix,
        target: &Matrix,
        optimizer: Optimizer,
    ) -> Result<Trainer, GpuError> {
        optimizer
            .check()
            .map_err(|e| GpuError::Unsupported(e.to_string()))?;
        let n = x.rows;
        let arch = net.arch.clone();
        let batch = net.batch(ctx, n);
        ctx.queue
            .write_buffer(&batch.x, 0, bytemuck::cast_slice(&to_f32(&x.data)));
        let target_buf = zeros(ctx, "target", n * arch.outputs());
        ctx.queue
            .write_buffer(&target_buf, 0, bytemuck::cast_slice(&to_f32(&target.data)));
        let grad_h: Vec<wgpu::Buffer> = arch
            .layers
            .iter()
            .map(|&w| zeros(ctx, "input gradient", n * w))
            .collect();
        let s = |read_only| Binding::Storage { read_only };
        let pipe = |label: &str, wgsl: String, layout: &wgpu::BindGroupLayout| {
            ctx.pipeline(label, &wgsl, &pipeline_layout(ctx, layout), false)
        };

        // Loss.
        let count = n * arch.outputs();
        let mse_layout = bind_group_layout(
            ctx,
            "mse",
            &[Binding::Uniform, s(true), s(true), s(false), s(false)],
        );
        let mse_pipe = pipe("nn/mse", compose("nn/mse.wgsl", &[])?, &mse_layout)?;
        let (gx, gy) = line_grid(count);
        let n_partial = (gx * gy) as usize;
        let partial = zeros(ctx, "loss partials", n_partial);
        let partial_read = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("loss readback"),
            size: 4 * n_partial as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let dims = uniform(ctx, [count as u32, 0, 0, (1.0 / count as f32).to_bits()]);
        let last = arch.n_linear();
        let mse_group = bind_group(
            ctx,
            "mse",
            &mse_layout,
            0,
            &[&dims, &batch.h[last], &target_buf, &grad_h[last], &partial],
        );

        // Backward.
        let act_layout =
            bind_group_layout(ctx, "act_backward", &[Binding::Uniform, s(true), s(false)]);
        let mm_layout = bind_group_layout(
            ctx,
            "matmul",
            &[Binding::Uniform, s(true), s(true), s(false)],
        );
        let kernels = net.kernels;
        let nn = pipe("nn/matmul_nn", matmul_wgsl(false, kernels)?, &mm_layout)?;
        let tn = pipe("nn/matmul_tn", matmul_wgsl(true, kernels)?, &mm_layout)?;
        let sum_layout =
            bind_group_layout(ctx, "column_sum", &[Binding::Uniform, s(true), s(false)]);
        let colsum = pipe(
            "nn/column_sum",
            compose("nn/column_sum.wgsl", &[])?,
            &sum_layout,
        )?;
        let mut backward = Vec::new();
        // (dW, db) per layer.
        let mut grads: Vec<(Option<wgpu::Buffer>, Option<wgpu::Buffer>)> =
            (0..last).map(|_| (None, None)).collect();
        let layer_input = |l: usize| -> &wgpu::Buffer {
            if l == 0 && arch.encoding.is_none() {
                &batch.x
            } else {
                &batch.h[l]
            }
        };
        for l in (0..last).rev() {
            let (fan_in, fan_out) = (arch.layers[l], arch.layers[l + 1]);
            let act = pipe(
                "nn/act_backward",
                act_backward_wgsl(arch.activation_after(l))?,
                &act_layout,
            )?;
            let len = n * fan_out;
            let dims = uniform(ctx, [len as u32, 0, 0, 0]);
            let g = bind_group(
                ctx,
                "act",
                &act_layout,
                0,
                &[&dims, &batch.pre[l], &grad_h[l + 1]],
            );
            backward.push((act, g, dispatch_line(len)));
            // dW = dAᵀ · input: [out, in], summing over the batch.
            let gw = zeros(ctx, "weight gradient", fan_out * fan_in);
            let dims = uniform(ctx, [fan_out as u32, n as u32, fan_in as u32, 0]);
            let g = bind_group(
                ctx,
                "dW",
                &mm_layout,
                0,
                &[&dims, &grad_h[l + 1], layer_input(l), &gw],
            );
            backward.push((tn.clone(), g, kernels.grid(fan_out, fan_in)));
            // db = column sums of dA.
            let gb = zeros(ctx, "bias gradient", fan_out);
            let dims = uniform(ctx, [n as u32, fan_out as u32, 0, 0]);
            let g = bind_group(ctx, "db", &sum_layout, 0, &[&dims, &grad_h[l + 1], &gb]);
            backward.push((colsum.clone(), g, (fan_out as u32, 1, 1)));
            // d input = dA · W: [n, in].
            if l > 0 || arch.encoding.is_some() {
                let dims = uniform(ctx, [n as u32, fan_out as u32, fan_in as u32, 0]);
                let g = bind_group(
                    ctx,
                    "dX",
                    &mm_layout,
                    0,
                    &[&dims, &grad_h[l + 1], &net.weights[l], &grad_h[l]],
                );
                backward.push((nn.clone(), g, kernels.grid(n, fan_in)));
            }
            grads[l] = (Some(gw), Some(gb));
        }
        // Encoding: dz from dh, then dB = xᵀ · dz.
        let mut grad_b_enc = None;
        if let (Some(e), Some(z)) = (arch.encoding.as_ref().filter(|e| e.trainable), &batch.enc_z) {
            let enc_layout = bind_group_layout(
                ctx,
                "encode_backward",
                &[Binding::Uniform, s(true), s(true), s(false)],
            );
            let enc = pipe(
                "nn/encode_backward",
                compose("nn/encode_backward.wgsl", &[])?,
                &enc_layout,
            )?;
            let scale: f32 = if e.two_pi {
                2.0 * std::f32::consts::PI
            } else {
                1.0
            };
            let dz = zeros(ctx, "dz", n * e.features);
            let dims = uniform(ctx, [n as u32, e.features as u32, 0, scale.to_bits()]);
            let g = bind_group(ctx, "dz", &enc_layout, 0, &[&dims, z, &grad_h[0], &dz]);
            backward.push((enc, g, dispatch_line(n * e.features)));
            let gb = zeros(ctx, "B gradient", e.inputs * e.features);
            let dims = uniform(ctx, [e.inputs as u32, n as u32, e.features as u32, 0]);
            let g = bind_group(ctx, "dB", &mm_layout, 0, &[&dims, &batch.x, &dz, &gb]);
            backward.push((tn.clone(), g, kernels.grid(e.inputs, e.features)));
            grad_b_enc = Some(gb);
        }

        // Optimiser: one bind group per parameter tensor.
        let adam_layout = bind_group_layout(
            ctx,
            "adam",
            &[
                Binding::Uniform,
                s(false),
                s(true),
                s(false),
                s(false),
                s(true),
            ],
        );
        // No clipping here: adam.wgsl's clip factor is never read.
        let no_clip = zeros(ctx, "clip state", 8);
        let adam = pipe("nn/adam", compose("nn/adam.wgsl", &[])?, &adam_layout)?;
        let step_buffer = || {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("adam step"),
                size: 48,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let mut slots = Vec::new();
        let mut add = |param: &wgpu::Buffer, grad: wgpu::Buffer, len: usize| {
            let (m, v) = (zeros(ctx, "adam m", len), zeros(ctx, "adam v", len));
            let step = step_buffer();
            let group = bind_group(
                ctx,
                "adam",
                &adam_layout,
                0,
                &[&step, param, &grad, &m, &v, &no_clip],
            );
            slots.push(Slot {
                grad,
                step,
                group,
                len,
            });
        };
        if let (Some(gb), Some(b), Some(e)) = (grad_b_enc, &net.b, &arch.encoding) {
            add(b, gb, e.inputs * e.features);
        }
        // Slots in `Params::named` order: B, then each layer's weight and bias.
        for (l, (gw, gb)) in grads.into_iter().enumerate() {
            let (gw, gb) = gw.zip(gb).expect("every layer has gradients");
            let (fan_in, fan_out) = (arch.layers[l], arch.layers[l + 1]);
            add(&net.weights[l], gw, fan_in * fan_out);
            add(&net.biases[l], gb, fan_out);
        }
        ctx.check_errors()?;
        Ok(Trainer {
            net,
            batch,
            slots,
            optimizer,
            t: 0,
            partial,
            partial_read,
            n_partial,
            backward,
            adam,
            mse: (mse_pipe, mse_group, (gx, gy, 1)),
            count,
        })
    }

    /// Records the loss and the gradients of every parameter (no update).
    fn record_gradients(&self, enc: &mut wgpu::CommandEncoder) {
        self.net.record_forward(enc, &self.batch);
        let mut pass = enc.begin_compute_pass(&Default::default());
        let (p, g, (x, y, z)) = &self.mse;
        pass.set_pipeline(p);
        pass.set_bind_group(0, g, &[]);
        pass.dispatch_workgroups(*x, *y, *z);
        for (p, g, (x, y, z)) in &self.backward {
            pass.set_pipeline(p);
            pass.set_bind_group(0, g, &[]);
            pass.dispatch_workgroups(*x, *y, *z);
        }
    }

    /// One optimiser step on the whole batch, recorded into one command buffer; nothing is
    /// read back.
    pub fn step(&mut self, ctx: &GpuContext) {
        self.t += 1;
        for slot in &self.slots {
            let words = self.optimizer.adam_words(slot.len, self.t, false);
            ctx.queue
                .write_buffer(&slot.step, 0, bytemuck::cast_slice(&words));
        }
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        self.record_gradients(&mut enc);
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.adam);
            for slot in &self.slots {
                let (x, y, z) = adam_grid(slot.len);
                pass.set_bind_group(0, &slot.group, &[]);
                pass.dispatch_workgroups(x, y, z);
            }
        }
        ctx.queue.submit([enc.finish()]);
    }

    /// The loss of the last step's forward pass (a read back from the device).
    pub fn loss(&self, ctx: &GpuContext) -> Result<f64, GpuError> {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(
            &self.partial,
            0,
            &self.partial_read,
            0,
            4 * self.n_partial as u64,
        );
        ctx.queue.submit([enc.finish()]);
        let sum = with_mapped(ctx, &self.partial_read, 4 * self.n_partial as u64, |b| {
            bytemuck::cast_slice::<u8, f32>(b)
                .iter()
                .map(|&v| v as f64)
                .sum::<f64>()
        })?;
        Ok(sum / self.count as f64)
    }

    /// The loss and gradients at the current parameters, read back (for tests).
    pub fn gradients(&self, ctx: &GpuContext) -> Result<(f64, Params), GpuError> {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        self.record_gradients(&mut enc);
        ctx.queue.submit([enc.finish()]);
        let loss = self.loss(ctx)?;
        let mut values = Vec::new();
        // A fixed encoding has no gradient slot: its gradient reads as zero.
        if let Some(e) = self.net.arch.encoding.as_ref().filter(|e| !e.trainable) {
            values.resize(e.inputs * e.features, 0.0);
        }
        for slot in &self.slots {
            values.extend(read_f64(ctx, &slot.grad, slot.len)?);
        }
        let mut p = self.params(ctx)?;
        p.set_flat(&values);
        Ok((loss, p))
    }

    /// The current parameters, read back.
    pub fn params(&self, ctx: &GpuContext) -> Result<Params, GpuError> {
        let arch = &self.net.arch;
        let mut values = Vec::new();
        if let (Some(b), Some(e)) = (&self.net.b, &arch.encoding) {
            values.extend(read_f64(ctx, b, e.inputs * e.features)?);
        }
        for l in 0..arch.n_linear() {
            values.extend(read_f64(
                ctx,
                &self.net.weights[l],
                arch.layers[l] * arch.layers[l + 1],
            )?);
            values.extend(read_f64(ctx, &self.net.biases[l], arch.layers[l + 1])?);
        }
        let mut p = Params::zeros(arch);
        p.set_flat(&values);
        Ok(p)
    }
}
