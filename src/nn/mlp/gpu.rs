//! A network on the device: parameters in f32 buffers, pipelines made once, and per batch
//! size a set of activation buffers and bind groups made once and reused by every pass.
//! Kernels: `shaders/nn/mlp/encode_forward.wgsl`, `shaders/nn/mlp/linear_forward.wgsl`; their CPU
//! twin is `mlp::cpu`.

use super::model::{Activation, Architecture, Matrix, Params};
use crate::gpu::layout::{Binding, bind_group, bind_group_layout, pipeline_layout};
use crate::gpu::readback::with_mapped;
use crate::gpu::shader::{ShaderError, compose};
use crate::gpu::{GpuContext, GpuError};
use crate::nn::train::buffers::{line_grid, storage, to_f32, uniform, zeros};
use std::sync::Arc;

/// WGSL for an activation's derivative, `fn dact(x: f32) -> f32` (the same formulas as
/// `Activation::derivative`).
pub fn derivative_wgsl(act: Activation) -> String {
    let body = match act {
        Activation::None => "1.0",
        Activation::Relu => "select(0.0, 1.0, x > 0.0)",
        Activation::Tanh => "1.0 - tanh(x) * tanh(x)",
        Activation::Gelu => {
            "0.5 * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) + 0.5 * x * (1.0 - tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)) * tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x)"
        }
        Activation::Silu => "(1.0 / (1.0 + exp(-x))) * (1.0 + x * (1.0 - 1.0 / (1.0 + exp(-x))))",
        Activation::Sin => "cos(x)",
    };
    format!("fn dact(x: f32) -> f32 {{\n    return {body};\n}}")
}

/// WGSL for an activation, `fn act(x: f32) -> f32` (the same formulas as
/// `Activation::apply`).
pub fn activation_wgsl(act: Activation) -> String {
    let body = match act {
        Activation::None => "x",
        Activation::Relu => "max(x, 0.0)",
        Activation::Tanh => "tanh(x)",
        Activation::Gelu => {
            "0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))"
        }
        Activation::Silu => "x / (1.0 + exp(-x))",
        Activation::Sin => "sin(x)",
    };
    format!("fn act(x: f32) -> f32 {{\n    return {body};\n}}")
}

/// How matrix products run: in 16×16 tiles through workgroup memory (GPUs), or one
/// invocation per output element (CPU adapters, where workgroup barriers are costly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    Tiled,
    Direct,
}

impl Kernels {
    /// The faster form for an adapter.
    pub fn for_adapter(ctx: &GpuContext) -> Kernels {
        if ctx.cpu_forms() {
            Kernels::Direct
        } else {
            Kernels::Tiled
        }
    }

    /// Dispatch size for an [rows, cols] result.
    pub(crate) fn grid(self, rows: usize, cols: usize) -> (u32, u32, u32) {
        match self {
            Kernels::Tiled => tile_grid(rows, cols),
            Kernels::Direct => {
                let (x, y) = line_grid(rows * cols);
                (x, y, 1)
            }
        }
    }
}

pub fn linear_forward_wgsl(act: Activation, kernels: Kernels) -> Result<String, ShaderError> {
    let file = match kernels {
        Kernels::Tiled => "nn/mlp/linear_forward.wgsl",
        Kernels::Direct => "nn/mlp/linear_forward_direct.wgsl",
    };
    compose(file, &[("ACT", &activation_wgsl(act))])
}

pub fn act_backward_wgsl(act: Activation) -> Result<String, ShaderError> {
    compose(
        "nn/mlp/act_backward.wgsl",
        &[("DACT", &derivative_wgsl(act))],
    )
}

/// C = A·B (`transposed_a` false) or C = Aᵀ·B (true).
pub fn matmul_wgsl(transposed_a: bool, kernels: Kernels) -> Result<String, ShaderError> {
    let at = if transposed_a {
        "a[kk * dims.m + row]"
    } else {
        "a[row * dims.k + kk]"
    };
    let file = match kernels {
        Kernels::Tiled => "nn/mlp/matmul.wgsl",
        Kernels::Direct => "nn/mlp/matmul_direct.wgsl",
    };
    compose(file, &[("A_AT", at)])
}

pub fn encode_forward_wgsl() -> Result<String, ShaderError> {
    compose("nn/mlp/encode_forward.wgsl", &[])
}

/// Dispatch size for 16×16 output tiles of an [n, cols] result.
pub(crate) fn tile_grid(n: usize, cols: usize) -> (u32, u32, u32) {
    let row_tiles = n.div_ceil(16) as u32;
    (
        cols.div_ceil(16) as u32,
        row_tiles.min(65535),
        row_tiles.div_ceil(65535),
    )
}

pub struct GpuNet {
    pub arch: Architecture,
    pub kernels: Kernels,
    pub(crate) b: Option<wgpu::Buffer>,
    pub(crate) weights: Vec<wgpu::Buffer>,
    pub(crate) biases: Vec<wgpu::Buffer>,
    encode: Option<(Arc<wgpu::ComputePipeline>, wgpu::BindGroupLayout)>,
    linear: Vec<Arc<wgpu::ComputePipeline>>,
    linear_layout: wgpu::BindGroupLayout,
}

/// Buffers and bind groups for batches of `n` samples.
pub struct Batch {
    pub n: usize,
    pub(crate) x: wgpu::Buffer,
    /// Input of each linear layer, then the output.
    pub(crate) h: Vec<wgpu::Buffer>,
    /// Pre-activations of each linear layer.
    pub(crate) pre: Vec<wgpu::Buffer>,
    pub(crate) enc_z: Option<wgpu::Buffer>,
    encode_group: Option<wgpu::BindGroup>,
    linear_groups: Vec<wgpu::BindGroup>,
    readback: wgpu::Buffer,
}

impl GpuNet {
    /// The network on `ctx`, with the kernels that suit the adapter.
    pub fn new(ctx: &GpuContext, arch: &Architecture, params: &Params) -> Result<GpuNet, GpuError> {
        GpuNet::with_kernels(ctx, arch, params, Kernels::for_adapter(ctx))
    }

    pub fn with_kernels(
        ctx: &GpuContext,
        arch: &Architecture,
        params: &Params,
        kernels: Kernels,
    ) -> Result<GpuNet, GpuError> {
        let s = |read_only| Binding::Storage { read_only };
        let linear_layout = bind_group_layout(
            ctx,
            "linear",
            &[
                Binding::Uniform,
                s(true),
                s(true),
                s(true),
                s(false),
                s(false),
            ],
        );
        let mut linear = Vec::new();
        for l in 0..arch.n_linear() {
            let wgsl = linear_forward_wgsl(arch.activation_after(l), kernels)?;
            linear.push(ctx.pipeline(
                "nn/mlp/linear_forward",
                &wgsl,
                &pipeline_layout(ctx, &linear_layout),
                false,
            )?);
        }
        let encode = match &arch.encoding {
            Some(_) => {
                let layout = bind_group_layout(
                    ctx,
                    "encode",
                    &[Binding::Uniform, s(true), s(true), s(false), s(false)],
                );
                let p = ctx.pipeline(
                    "nn/mlp/encode_forward",
                    &encode_forward_wgsl()?,
                    &pipeline_layout(ctx, &layout),
                    false,
                )?;
                Some((p, layout))
            }
            None => None,
        };
        let net = GpuNet {
            arch: arch.clone(),
            kernels,
            b: params
                .b
                .as_ref()
                .map(|b| storage(ctx, "B", &to_f32(&b.data))),
            weights: params
                .weights
                .iter()
                .map(|w| storage(ctx, "weight", &to_f32(&w.data)))
                .collect(),
            biases: params
                .biases
                .iter()
                .map(|b| storage(ctx, "bias", &to_f32(b)))
                .collect(),
            encode,
            linear,
            linear_layout,
        };
        ctx.check_errors()?;
        Ok(net)
    }

    /// Buffers and bind groups for batches of `n` samples, made once and reused.
    pub fn batch(&self, ctx: &GpuContext, n: usize) -> Batch {
        let arch = &self.arch;
        let x = zeros(ctx, "x", n * arch.inputs());
        let h: Vec<wgpu::Buffer> = arch
            .layers
            .iter()
            .map(|&w| zeros(ctx, "activations", n * w))
            .collect();
        let pre: Vec<wgpu::Buffer> = arch.layers[1..]
            .iter()
            .map(|&w| zeros(ctx, "pre-activations", n * w))
            .collect();
        let (enc_z, encode_group) = match (&self.encode, &arch.encoding, &self.b) {
            (Some((_, layout)), Some(e), Some(b)) => {
                let z = zeros(ctx, "z", n * e.features);
                let scale = if e.two_pi {
                    2.0 * std::f32::consts::PI
                } else {
                    1.0
                };
                let dims = uniform(
                    ctx,
                    [
                        n as u32,
                        e.inputs as u32,
                        e.features as u32,
                        scale.to_bits(),
                    ],
                );
                let group = bind_group(ctx, "encode", layout, 0, &[&dims, &x, b, &z, &h[0]]);
                (Some(z), Some(group))
            }
            _ => (None, None),
        };
        let linear_groups = (0..arch.n_linear())
            .map(|l| {
                let dims = uniform(
                    ctx,
                    [
                        n as u32,
                        arch.layers[l] as u32,
                        arch.layers[l + 1] as u32,
                        0,
                    ],
                );
                // Without an encoding, the first layer reads x directly.
                let input = if l == 0 && self.encode.is_none() {
                    &x
                } else {
                    &h[l]
                };
                bind_group(
                    ctx,
                    "linear",
                    &self.linear_layout,
                    0,
                    &[
                        &dims,
                        input,
                        &self.weights[l],
                        &self.biases[l],
                        &pre[l],
                        &h[l + 1],
                    ],
                )
            })
            .collect();
        let readback = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("output readback"),
            size: (4 * n * arch.outputs()).max(4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Batch {
            n,
            x,
            h,
            pre,
            enc_z,
            encode_group,
            linear_groups,
            readback,
        }
    }

    /// Records the forward pass of `batch` (its `x` already written).
    pub fn record_forward(&self, encoder: &mut wgpu::CommandEncoder, batch: &Batch) {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        if let (Some((pipeline, _)), Some(group), Some(e)) =
            (&self.encode, &batch.encode_group, &self.arch.encoding)
        {
            let groups = (batch.n * e.features).div_ceil(64) as u32;
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(groups.min(65535), groups.div_ceil(65535), 1);
        }
        for (l, group) in batch.linear_groups.iter().enumerate() {
            let (gx, gy, gz) = self.kernels.grid(batch.n, self.arch.layers[l + 1]);
            pass.set_pipeline(&self.linear[l]);
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(gx, gy, gz);
        }
    }

    /// The network's outputs for `x` [n, inputs] (n = the batch's size).
    pub fn forward(&self, ctx: &GpuContext, batch: &Batch, x: &Matrix) -> Result<Matrix, GpuError> {
        ctx.queue
            .write_buffer(&batch.x, 0, bytemuck::cast_slice(&to_f32(&x.data)));
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        self.record_forward(&mut enc, batch);
        let out = batch.h.last().expect("an output buffer");
        let bytes = (4 * batch.n * self.arch.outputs()) as u64;
        enc.copy_buffer_to_buffer(out, 0, &batch.readback, 0, bytes);
        ctx.queue.submit([enc.finish()]);
        let data = with_mapped(ctx, &batch.readback, bytes, |b| {
            bytemuck::cast_slice::<u8, f32>(b)
                .iter()
                .map(|&v| v as f64)
                .collect()
        })?;
        Ok(Matrix {
            rows: batch.n,
            cols: self.arch.outputs(),
            data,
        })
    }
}
