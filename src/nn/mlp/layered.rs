//! Training on the device: the whole step (forward, loss, backward, optimiser update) is
//! recorded into one command buffer, every buffer and bind group made once; the host reads
//! the loss only when asked.
//! Kernels: `shaders/nn/mlp/{mse,act_backward,matmul,column_sum,encode_backward}.wgsl`
//! and the toolkit's `shaders/nn/train/adam.wgsl`; their CPU twin is
//! `mlp::cpu::{mse, backward}` plus the update rule in `Optimizer`.

use super::gpu::{Batch, GpuNet, act_backward_wgsl, matmul_wgsl};
use super::model::{Matrix, Params};
use crate::gpu::layout::{Binding, bind_group, bind_group_layout, pipeline_layout};
use crate::gpu::readback::with_mapped;
use crate::gpu::shader::compose;
use crate::gpu::{GpuContext, GpuError};
use crate::nn::train::Optimizer;
use crate::nn::train::buffers::{line_grid, read_f64, to_f32, uniform, zeros};
use crate::nn::train::optimizer::{AdamPass, adam_pass, state};
use crate::nn::train::pass::Pass;

/// One parameter tensor a step updates: its gradient and its optimiser pass.
struct Slot {
    grad: wgpu::Buffer,
    adam: AdamPass,
    len: usize,
}

pub struct Trainer {
    pub net: GpuNet,
    pub batch: Batch,
    slots: Vec<Slot>,
    optimizer: Optimizer,
    t: u32,
    partial: wgpu::Buffer,
    partial_read: wgpu::Buffer,
    n_partial: usize,
    // Recorded once, in order.
    backward: Vec<Pass>,
    mse: Pass,
    count: usize,
}

fn dispatch_line(len: usize) -> (u32, u32, u32) {
    let (x, y) = line_grid(len);
    (x, y, 1)
}

fn pass(
    label: &'static str,
    pipeline: std::sync::Arc<wgpu::ComputePipeline>,
    group: wgpu::BindGroup,
    size: (u32, u32, u32),
) -> Pass {
    Pass {
        label,
        pipeline,
        group,
        size,
    }
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
        let mse_pipe = pipe("nn/mlp/mse", compose("nn/mlp/mse.wgsl", &[])?, &mse_layout)?;
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
        let nn = pipe("nn/mlp/matmul_nn", matmul_wgsl(false, kernels)?, &mm_layout)?;
        let tn = pipe("nn/mlp/matmul_tn", matmul_wgsl(true, kernels)?, &mm_layout)?;
        let sum_layout =
            bind_group_layout(ctx, "column_sum", &[Binding::Uniform, s(true), s(false)]);
        let colsum = pipe(
            "nn/mlp/column_sum",
            compose("nn/mlp/column_sum.wgsl", &[])?,
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
                "nn/mlp/act_backward",
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
            backward.push(pass("activation gradient", act, g, dispatch_line(len)));
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
            backward.push(pass(
                "weight gradient",
                tn.clone(),
                g,
                kernels.grid(fan_out, fan_in),
            ));
            // db = column sums of dA.
            let gb = zeros(ctx, "bias gradient", fan_out);
            let dims = uniform(ctx, [n as u32, fan_out as u32, 0, 0]);
            let g = bind_group(ctx, "db", &sum_layout, 0, &[&dims, &grad_h[l + 1], &gb]);
            backward.push(pass(
                "bias gradient",
                colsum.clone(),
                g,
                (fan_out as u32, 1, 1),
            ));
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
                backward.push(pass(
                    "input gradient",
                    nn.clone(),
                    g,
                    kernels.grid(n, fan_in),
                ));
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
                "nn/mlp/encode_backward",
                compose("nn/mlp/encode_backward.wgsl", &[])?,
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
            backward.push(pass(
                "encoding gradient",
                enc,
                g,
                dispatch_line(n * e.features),
            ));
            let gb = zeros(ctx, "B gradient", e.inputs * e.features);
            let dims = uniform(ctx, [e.inputs as u32, n as u32, e.features as u32, 0]);
            let g = bind_group(ctx, "dB", &mm_layout, 0, &[&dims, &batch.x, &dz, &gb]);
            backward.push(pass(
                "B gradient",
                tn.clone(),
                g,
                kernels.grid(e.inputs, e.features),
            ));
            grad_b_enc = Some(gb);
        }

        // Optimiser: one pass per parameter tensor. No clipping here: adam.wgsl's clip
        // factor is never read.
        let no_clip = zeros(ctx, "clip state", state::LEN);
        let mut slots = Vec::new();
        let mut add = |param: &wgpu::Buffer, grad: wgpu::Buffer, len: usize| {
            let adam = adam_pass(ctx, len, param, &grad, &no_clip)?;
            slots.push(Slot { grad, adam, len });
            Ok::<(), GpuError>(())
        };
        if let (Some(gb), Some(b), Some(e)) = (grad_b_enc, &net.b, &arch.encoding) {
            add(b, gb, e.inputs * e.features)?;
        }
        // Slots in `Params::named` order: B, then each layer's weight and bias.
        for (l, (gw, gb)) in grads.into_iter().enumerate() {
            let (gw, gb) = gw.zip(gb).expect("every layer has gradients");
            let (fan_in, fan_out) = (arch.layers[l], arch.layers[l + 1]);
            add(&net.weights[l], gw, fan_in * fan_out)?;
            add(&net.biases[l], gb, fan_out)?;
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
            mse: pass("mse", mse_pipe, mse_group, (gx, gy, 1)),
            count,
        })
    }

    /// Records the loss and the gradients of every parameter (no update).
    fn record_gradients(&self, enc: &mut wgpu::CommandEncoder) {
        self.net.record_forward(enc, &self.batch);
        let mut pass = enc.begin_compute_pass(&Default::default());
        self.mse.record(&mut pass);
        for p in &self.backward {
            p.record(&mut pass);
        }
    }

    /// One optimiser step on the whole batch, recorded into one command buffer; nothing is
    /// read back.
    pub fn step(&mut self, ctx: &GpuContext) {
        self.t += 1;
        for slot in &self.slots {
            let words = self.optimizer.adam_words(slot.len, self.t, false);
            ctx.queue
                .write_buffer(&slot.adam.uniform, 0, bytemuck::cast_slice(&words));
        }
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        self.record_gradients(&mut enc);
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for slot in &self.slots {
                slot.adam.pass.record(&mut pass);
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
