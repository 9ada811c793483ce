//! DeepONet on the device, on aligned and unaligned data: inference (`DeepONetNet`) and
//! training (`DeepONetTrainer`). Both nets run the fused MLP kernels, paired so that one
//! dispatch runs the branch over its batch of functions and the trunk over its batch of
//! points (`deeponet::pair`); the combine kernel forms G = B·Tᵀ + b0 and, when training,
//! the MSE loss's partial sums and both nets' output δ, and goes on with both nets' backward
//! passes; then the paired weight gradients (with the loss and b0's gradient), and one
//! Adam dispatch over the one parameter vector. A training step is one command buffer of
//! four dispatches; pipelines, buffers and bind groups are made once. Unaligned data runs
//! the same passes with both nets' batches the same samples in the same order (one
//! permutation stream for both samplers) and a combine kernel that pairs batch entry s of
//! the branch with entry s of the trunk. Kernels: `deeponet::kernels`,
//! `deeponet::pair`; CPU twin: `deeponet::model`.

use super::kernels::{combine_unaligned_wgsl, combine_wgsl};
use super::layout::DeepONetLayout;
use super::model::{DataLayout, DataRef, DeepONetArch, DeepONetParams, check_inputs};
use super::pair::{PER_LANE, forward_pair_wgsl, weight_grad_pair_wgsl};
use crate::gpu::layout::{Binding, bind_group_of, buffer, window};
use crate::gpu::readback::with_mapped;
use crate::gpu::{GpuContext, GpuError};
use crate::nn::mlp::fused::FusedLayout;
use crate::nn::mlp::fused::{LaneSharing, grad_outputs_for};
use crate::nn::mlp::fused_net::{fused_supported, max_batch, step_words};
use crate::nn::mlp::model::Matrix;
use crate::nn::train::Optimizer;
use crate::nn::train::buffers::{params_buffer, read_f32, storage, zeros};
use crate::nn::train::gradients::{gradient_splits, gradient_sum_pass};
use crate::nn::train::optimizer::{adam_pass, state};
use crate::nn::train::pass::{Pass, pipe, profile_passes, storage_ro, storage_rw, submit};
use crate::nn::train::sampler::Sampler;
use wgpu::BufferUsages as U;

/// Invocations per workgroup of DeepONet's kernels (times `PER_LANE`, the unit
/// each net's batch is padded to: `batch_unit`). On CPU adapters one subgroup: a dispatch's workgroups are shared among a few
/// threads, and with 64 a batch of 150 functions is three workgroups on two cores, the
/// last mostly padding (eight made a training step 20% faster on lavapipe). On GPUs 64,
/// a few subgroups.
fn workgroup_size(ctx: &GpuContext) -> usize {
    let subgroup = ctx.adapter.get_info().subgroup_max_size.max(8) as usize;
    if ctx.cpu_forms() {
        subgroup
    } else {
        subgroup.max(64)
    }
}

/// Rows (functions plus points, or twice the samples) a training step or a prediction
/// puts through the two nets from which CPU adapters take the wide kernel forms
/// (`sized_for`). Together they cost about 5 s more compilation on a first run and save
/// about 2 µs per row and step (lavapipe, AVX2: at the antiderivative set-up's 250 rows a
/// step, the forward pass 1.02 -> 0.71 ms and the weight gradients 1.2 -> 1.0 ms), so a
/// run of 250 rows a step earns them back after about 10,000 steps (DeepXDE's length for
/// that set-up), one of 200 after about 12,500. The few functions of tests, the self-test
/// and predictions of one function at fewer than about 184 points compile the narrow
/// forms only.
pub const WIDE_FROM_ROWS: usize = 200;

/// The widest layer DeepONet's forward kernel computes in one block of sums
/// (`FusedLayout::whole_layer`) when `wide`. On CPU adapters 48 outputs, 96 sums with two
/// samples per invocation: each input quad is then loaded once per sample instead of once
/// per 16 outputs, and every load from a storage buffer is a loop over the lanes there (the
/// antiderivative set-up's forward pass went from 1.02 to 0.71 ms on lavapipe for about
/// 1.3 s more compilation; docs/performance.md, "fewer storage loads"). On GPUs 0: the loads
/// hit the cache, and 96 live sums would cost occupancy for nothing measured.
fn whole_layer(ctx: &GpuContext, wide: bool) -> usize {
    if ctx.cpu_forms() && wide { 48 } else { 0 }
}

/// Whether DeepONet's kernels on `ctx` read `layout`'s parameters from uniform bindings
/// (`FusedLayout::uniform_params`): on CPU adapters, where a uniform load is a gather
/// within registers (a scalar load and a splat at a constant index) and a storage load a
/// loop over the lanes with a store-to-load stall per lane and component
/// (docs/performance.md, "where the CPU time goes"), when each net's region fits one
/// uniform binding. GPUs keep storage bindings: their loads of one quad per lane and
/// subgroup broadcasts hit the cache, and a uniform array read at per-lane indices would
/// serialise.
fn uniform_params(ctx: &GpuContext, layout: &DeepONetLayout) -> bool {
    let most = ctx.limits.max_uniform_buffer_binding_size;
    ctx.cpu_forms() && layout.regions_with_bias().iter().all(|r| r.1 <= most)
}

/// The parameters' binding type in the forward and combine kernels.
fn params_binding(layout: &DeepONetLayout) -> Binding {
    if layout.branch.uniform_params {
        Binding::Uniform
    } else {
        storage_ro()
    }
}

/// `layout` with the kernel forms for `rows` rows a step (or prediction) on `ctx`: the
/// wide ones from `WIDE_FROM_ROWS` on CPU adapters, the narrow ones otherwise. The forms
/// sum in the same order, so they give the same bits; only the time differs.
pub fn sized_for(ctx: &GpuContext, layout: &DeepONetLayout, rows: usize) -> DeepONetLayout {
    let wide = rows >= WIDE_FROM_ROWS;
    layout
        .clone()
        .with_whole_layer(whole_layer(ctx, wide))
        .with_grad_outputs(grad_outputs_for(ctx, wide))
}

/// The unit each net's batch is padded to: the forward and combine kernels run `PER_LANE`
/// samples per invocation.
fn batch_unit(ctx: &GpuContext) -> usize {
    workgroup_size(ctx) * PER_LANE
}

/// One net's data and scratch on the device.
struct NetData {
    step: wgpu::Buffer,
    x: wgpu::Buffer,
    order: wgpu::Buffer,
    scratch: wgpu::Buffer,
    /// Rows of `x`, rows per batch and the padded stride.
    m: usize,
    batch: usize,
    n: usize,
    /// Samples per partial sum of the weight gradients.
    per_split: usize,
    /// The copy of the output layer's z rows (`with_output_copies`).
    outputs: Option<wgpu::Buffer>,
}

impl NetData {
    fn new(
        ctx: &GpuContext,
        layout: &FusedLayout,
        x: &Matrix,
        batch: usize,
        what: &str,
    ) -> Result<NetData, GpuError> {
        let n = batch.next_multiple_of(batch_unit(ctx));
        let most = max_batch(ctx, layout);
        if n > most {
            return Err(GpuError::Unsupported(format!(
                "a batch of {batch} {what} needs more memory than one storage binding of this \
                 adapter holds; at most {most}"
            )));
        }
        let identity: Vec<u32> = (0..x.rows as u32).collect();
        let order = buffer(ctx, "order", 4 * x.rows as u64, U::STORAGE | U::COPY_DST);
        ctx.queue
            .write_buffer(&order, 0, bytemuck::cast_slice(&identity));
        let data = NetData {
            step: buffer(ctx, "step", 32, U::UNIFORM | U::COPY_DST),
            x: storage(ctx, "inputs", &FusedLayout::feature_major(x)),
            order,
            scratch: buffer(
                ctx,
                "activations",
                16 * (layout.rows * n) as u64,
                U::STORAGE,
            ),
            m: x.rows,
            batch,
            n,
            per_split: batch,
            outputs: None,
        };
        data.write_step(ctx, 0, false);
        Ok(data)
    }

    fn write_step(&self, ctx: &GpuContext, base: usize, ordered: bool) {
        let words = step_words(self.n, self.batch, base, self.m, ordered, self.per_split);
        ctx.queue
            .write_buffer(&self.step, 0, bytemuck::cast_slice(&words));
    }
}

/// `layout` with output copies (`DeepONetLayout::output_copies`) where they pay and fit,
/// and their buffers in `nets`: on CPU adapters, for aligned data (the combine kernel's
/// products read the other net's output at an index shared by all lanes), when each net's
/// output rows fit one uniform binding (64 KiB at most: the antiderivative set-up's
/// batches take 26 and 18 KB) and the forward kernel's storage bindings stay within the
/// adapter's limit. On lavapipe (AVX2) the combine pass of `bench deeponet-train` went
/// from a median of 1.04 to 0.81 ms (docs/performance.md, "where the CPU time goes").
fn with_output_copies(
    ctx: &GpuContext,
    layout: DeepONetLayout,
    data: DataLayout,
    nets: [&mut NetData; 2],
) -> DeepONetLayout {
    let quads = (ctx.limits.max_uniform_buffer_binding_size.min(1 << 16) / 16) as usize;
    let rows = [&layout.branch, &layout.trunk].map(FusedLayout::out_rows);
    let fits = nets
        .iter()
        .zip(rows)
        .all(|(net, rows)| rows * net.n <= quads);
    // The forward kernel's storage bindings with the copies: inputs, orders, scratches,
    // copies, and the parameters where they are not uniform.
    let storage = 8 + if layout.branch.uniform_params { 0 } else { 2 };
    let bindable = storage <= ctx.limits.max_storage_buffers_per_shader_stage as usize;
    if !(ctx.cpu_forms() && data == DataLayout::Aligned && fits && bindable) {
        return layout.with_output_copies(0);
    }
    for net in nets {
        net.outputs = Some(buffer(
            ctx,
            "output copy",
            16 * quads as u64,
            U::STORAGE | U::UNIFORM,
        ));
    }
    layout.with_output_copies(quads)
}

/// Both nets' forward passes in one dispatch: the branch's workgroups first, then the
/// trunk's (`Pass::record_first` runs the branch's alone).
fn forward_pass(
    ctx: &GpuContext,
    layout: &DeepONetLayout,
    params: &wgpu::Buffer,
    [branch, trunk]: [&NetData; 2],
) -> Result<Pass, GpuError> {
    let wg = workgroup_size(ctx);
    let mut bindings = vec![Binding::Uniform, Binding::Uniform];
    bindings.extend([params_binding(layout); 2]);
    bindings.extend([storage_ro(); 4]);
    bindings.extend([storage_rw(); 2]);
    let copies = output_copies(layout, [branch, trunk]);
    bindings.extend(vec![storage_rw(); copies.len()]);
    let (pipeline, l) = pipe(
        ctx,
        "nn/deeponet/forward",
        &forward_pair_wgsl(layout, wg)?,
        &bindings,
    )?;
    let regions = layout.regions();
    let group = bind_group_of(
        ctx,
        "forward",
        &l,
        vec![
            branch.step.as_entire_binding(),
            trunk.step.as_entire_binding(),
            window(params, regions[0]),
            window(params, regions[1]),
            branch.x.as_entire_binding(),
            trunk.x.as_entire_binding(),
            branch.order.as_entire_binding(),
            trunk.order.as_entire_binding(),
            branch.scratch.as_entire_binding(),
            trunk.scratch.as_entire_binding(),
        ]
        .into_iter()
        .chain(copies.iter().map(|b| b.as_entire_binding()))
        .collect(),
    );
    Ok(Pass {
        label: "forward",
        pipeline,
        group,
        size: (((branch.n + trunk.n) / batch_unit(ctx)) as u32, 1, 1),
    })
}

/// The passes after the combine pass: both nets' weight gradients, the loss and b0's
/// gradient into `grad` (and `state`), in one dispatch, or two when the samples are split
/// (`nn::train::gradients::gradient_splits`). Sets each net's `per_split`.
fn weight_grad_passes(
    ctx: &GpuContext,
    layout: &DeepONetLayout,
    data: DataLayout,
    [branch, trunk]: [&mut NetData; 2],
    partial_sums: &wgpu::Buffer,
    grad: &wgpu::Buffer,
    state: &wgpu::Buffer,
) -> Result<Vec<Pass>, GpuError> {
    let (wgsl, groups) = weight_grad_pair_wgsl(layout, data, workgroup_size(ctx))?;
    let splits = gradient_splits(ctx, groups, branch.batch.max(trunk.batch));
    for net in [&mut *branch, &mut *trunk] {
        // A multiple of 8: the weight-gradient tasks run blocks of eight samples.
        net.per_split = net.batch.div_ceil(splits).next_multiple_of(8);
        net.write_step(ctx, 0, false);
    }
    let (pipeline, l) = pipe(
        ctx,
        "nn/deeponet/weight_grad",
        &wgsl,
        &[
            Binding::Uniform,
            Binding::Uniform,
            storage_ro(),
            storage_ro(),
            storage_rw(),
            storage_ro(),
            storage_rw(),
        ],
    )?;
    let copies = (splits > 1).then(|| {
        buffer(
            ctx,
            "partial gradients",
            4 * (splits * layout.len) as u64,
            U::STORAGE,
        )
    });
    let group = bind_group_of(
        ctx,
        "weight gradients",
        &l,
        [
            &branch.step,
            &trunk.step,
            &branch.scratch,
            &trunk.scratch,
            copies.as_ref().unwrap_or(grad),
            partial_sums,
            state,
        ]
        .iter()
        .map(|b| b.as_entire_binding())
        .collect(),
    );
    let mut passes = vec![Pass {
        label: "weight gradients and loss",
        pipeline,
        group,
        size: (groups as u32, splits as u32, 1),
    }];
    if let Some(copies) = &copies {
        passes.push(gradient_sum_pass(
            ctx,
            layout.len,
            splits,
            copies,
            grad.as_entire_binding(),
        )?);
    }
    Ok(passes)
}

/// The nets' output copies, when `layout` has them (`with_output_copies` made both).
fn output_copies<'a>(layout: &DeepONetLayout, nets: [&'a NetData; 2]) -> Vec<&'a wgpu::Buffer> {
    if layout.output_copies == 0 {
        return Vec::new();
    }
    nets.iter().filter_map(|net| net.outputs.as_ref()).collect()
}

/// The combine pass (training: `out` gets the partial sums and the pass goes on with both
/// nets' backward passes; prediction: G).
#[allow(clippy::too_many_arguments)]
fn combine_pass(
    ctx: &GpuContext,
    layout: &DeepONetLayout,
    data: DataLayout,
    train: bool,
    params: &wgpu::Buffer,
    targets: &wgpu::Buffer,
    [branch, trunk]: [&NetData; 2],
    out: &wgpu::Buffer,
) -> Result<Pass, GpuError> {
    let wg = workgroup_size(ctx);
    // Aligned: PER_LANE functions (points) per row (column) task over each net's padded
    // batch, a multiple of PER_LANE workgroups (combine.wgsl; prediction: row tasks only).
    let (name, wgsl, tasks) = match data {
        DataLayout::Aligned => (
            "nn/deeponet/combine",
            combine_wgsl(layout, train, wg)?,
            if train {
                (branch.n + trunk.n) / PER_LANE
            } else {
                branch.n / PER_LANE
            },
        ),
        // Batch entry s of both nets is sample s.
        DataLayout::Unaligned => (
            "nn/deeponet/combine_unaligned",
            combine_unaligned_wgsl(layout, train, wg)?,
            branch.n,
        ),
    };
    let copies = output_copies(layout, [branch, trunk]);
    let mut bindings = vec![Binding::Uniform, Binding::Uniform];
    bindings.extend([params_binding(layout); 2]);
    bindings.extend([storage_ro(); 3]);
    bindings.extend([storage_rw(); 3]);
    bindings.extend(vec![Binding::Uniform; copies.len()]);
    let (pipeline, l) = pipe(ctx, name, &wgsl, &bindings)?;
    let [branch_region, trunk_and_bias, _] = layout.regions_with_bias();
    let mut entries = vec![
        branch.step.as_entire_binding(),
        trunk.step.as_entire_binding(),
        window(params, branch_region),
        window(params, trunk_and_bias),
    ];
    entries.extend(
        [
            targets,
            &branch.order,
            &trunk.order,
            &branch.scratch,
            &trunk.scratch,
            out,
        ]
        .into_iter()
        .chain(copies)
        .map(|b| b.as_entire_binding()),
    );
    let group = bind_group_of(ctx, "combine", &l, entries);
    Ok(Pass {
        label: "combine",
        pipeline,
        group,
        size: ((tasks / wg) as u32, 1, 1),
    })
}

/// A prediction on inputs in the network's own units (`DeepONetNet::in_data_units`).
type NetworkPass = fn(&DeepONetNet, &GpuContext, &Matrix, &Matrix) -> Result<Vec<f64>, GpuError>;

/// Predictions of `rows` rows, `chunk` at a time: `record` writes a chunk's uniforms
/// (from its first row and its size) and records its passes, whose results (`per_row`
/// bytes of f32 a row) land in `out`; each chunk is copied into place in one read-back
/// buffer, read once at the end, as f64.
fn predict_in_chunks(
    ctx: &GpuContext,
    rows: usize,
    chunk: usize,
    per_row: u64,
    out: &wgpu::Buffer,
    mut record: impl FnMut(usize, usize, &mut wgpu::ComputePass),
) -> Result<Vec<f64>, GpuError> {
    let total = per_row * rows as u64;
    // One read-back buffer holds them all: past the device's largest buffer the request is
    // refused here, before wgpu would fail (and leave its error to the next call).
    if total > ctx.limits.max_buffer_size {
        return Err(GpuError::Unsupported(format!(
            "the predictions would take {total} bytes on the device; at most {} fit one call: \
             predict fewer functions or points at a time",
            ctx.limits.max_buffer_size
        )));
    }
    let readback = buffer(ctx, "predictions read", total, U::MAP_READ | U::COPY_DST);
    for base in (0..rows).step_by(chunk) {
        let batch = chunk.min(rows - base);
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            record(base, batch, &mut pass);
        }
        enc.copy_buffer_to_buffer(
            out,
            0,
            &readback,
            per_row * base as u64,
            per_row * batch as u64,
        );
        ctx.queue.submit([enc.finish()]);
    }
    with_mapped(ctx, &readback, total, |b| {
        bytemuck::cast_slice::<u8, f32>(b)
            .iter()
            .map(|&v| v as f64)
            .collect()
    })
}

/// A trained DeepONet on the device.
pub struct DeepONetNet {
    pub layout: DeepONetLayout,
    params: wgpu::Buffer,
}

impl DeepONetNet {
    pub fn new(
        ctx: &GpuContext,
        arch: &DeepONetArch,
        params: &DeepONetParams,
    ) -> Result<DeepONetNet, GpuError> {
        arch.check()
            .map_err(|e| GpuError::Unsupported(e.to_string()))?;
        if !(fused_supported(&arch.branch) && fused_supported(&arch.trunk)) {
            return Err(GpuError::Unsupported(
                "DeepONet runs on the fused network kernels, which take hidden widths of at \
                 most 128"
                    .into(),
            ));
        }
        let layout = DeepONetLayout::new(arch).with_sharing(LaneSharing::for_context(ctx));
        let uniform = uniform_params(ctx, &layout);
        let layout = layout.with_uniform_params(uniform);
        let params = params_buffer(ctx, "deeponet parameters", &layout.pack(params), uniform);
        Ok(DeepONetNet { layout, params })
    }

    pub fn params(&self, ctx: &GpuContext) -> Result<DeepONetParams, GpuError> {
        Ok(self
            .layout
            .unpack(&read_f32(ctx, &self.params, self.layout.len)?))
    }

    /// G for every function (rows of `u`) at every point (rows of `y`), as
    /// [functions, points, outputs]. The trunk runs once; the functions go through in
    /// chunks that fit the adapter's bindings. One function at many points is the
    /// low-latency case (three dispatches and one read-back); many functions the
    /// throughput case.
    /// With a `Scaling` in the architecture, inputs are scaled on the way in and outputs
    /// restored on the way out: the result is in the data's units either way.
    pub fn predict(&self, ctx: &GpuContext, u: &Matrix, y: &Matrix) -> Result<Vec<f64>, GpuError> {
        let arch = &self.layout.arch;
        check_inputs(arch, u, y).map_err(GpuError::Unsupported)?;
        self.in_data_units(ctx, u, y, Self::predict_network)
    }

    /// `network` on the inputs in the network's units, its outputs back in the data's.
    fn in_data_units(
        &self,
        ctx: &GpuContext,
        u: &Matrix,
        y: &Matrix,
        network: NetworkPass,
    ) -> Result<Vec<f64>, GpuError> {
        match &self.layout.arch.scaling {
            None => network(self, ctx, u, y),
            Some(s) => {
                let (u, y) = s.inputs(u, y);
                let mut g = network(self, ctx, &u, &y)?;
                s.g.restore(&mut g);
                Ok(g)
            }
        }
    }

    /// The network's own outputs for its own (scaled) inputs.
    fn predict_network(
        &self,
        ctx: &GpuContext,
        u: &Matrix,
        y: &Matrix,
    ) -> Result<Vec<f64>, GpuError> {
        let arch = &self.layout.arch;
        let k = arch.outputs;
        let (nf, ny) = (u.rows, y.rows);
        if nf == 0 || ny == 0 {
            return Ok(Vec::new());
        }
        let bl = &self.layout.branch;
        let per_function = 4 * (ny * k) as u64;
        let by_out = (ctx.limits.max_storage_buffer_binding_size / per_function) as usize;
        let (wg, unit) = (workgroup_size(ctx), batch_unit(ctx));
        let chunk = (max_batch(ctx, bl).min(by_out) / unit * unit).min(nf.next_multiple_of(wg));
        if chunk == 0 {
            return Err(GpuError::Unsupported(format!(
                "{ny} points × {k} outputs of one function do not fit one storage binding"
            )));
        }
        let mut trunk = NetData::new(ctx, &self.layout.trunk, y, ny, "points")?;
        let mut branch = NetData::new(ctx, bl, u, chunk.min(nf), "functions")?;
        let out = buffer(
            ctx,
            "predictions",
            per_function * chunk as u64,
            U::STORAGE | U::COPY_SRC,
        );
        let layout = sized_for(ctx, &self.layout, branch.n + trunk.n);
        let layout =
            with_output_copies(ctx, layout, DataLayout::Aligned, [&mut branch, &mut trunk]);
        let forward = forward_pass(ctx, &layout, &self.params, [&branch, &trunk])?;
        let combine = combine_pass(
            ctx,
            &layout,
            DataLayout::Aligned,
            false,
            &self.params,
            &branch.x,
            [&branch, &trunk],
            &out,
        )?;
        predict_in_chunks(ctx, nf, chunk, per_function, &out, |base, batch, pass| {
            let words = step_words(branch.n, batch, base, nf, false, 0);
            ctx.queue
                .write_buffer(&branch.step, 0, bytemuck::cast_slice(&words));
            // The trunk's points are the same for every chunk: it runs with the first.
            if base == 0 {
                forward.record(pass);
            } else {
                forward.record_first(pass, (branch.n / batch_unit(ctx)) as u32);
            }
            combine.record(pass);
        })
    }

    /// G for unaligned samples: row r of `u` [samples, sensors] at row r of `y`
    /// [samples, dims], as [samples, outputs], in the data's units as `predict`.
    pub fn predict_samples(
        &self,
        ctx: &GpuContext,
        u: &Matrix,
        y: &Matrix,
    ) -> Result<Vec<f64>, GpuError> {
        let arch = &self.layout.arch;
        check_inputs(arch, u, y).map_err(GpuError::Unsupported)?;
        if u.rows != y.rows {
            return Err(GpuError::Unsupported(format!(
                "unaligned samples pair each function with one location; got {} functions and \
                 {} locations",
                u.rows, y.rows
            )));
        }
        self.in_data_units(ctx, u, y, Self::predict_samples_network)
    }

    fn predict_samples_network(
        &self,
        ctx: &GpuContext,
        u: &Matrix,
        y: &Matrix,
    ) -> Result<Vec<f64>, GpuError> {
        let k = self.layout.arch.outputs;
        let n = u.rows;
        if n == 0 {
            return Ok(Vec::new());
        }
        let per_sample = 4 * k as u64;
        let by_out = (ctx.limits.max_storage_buffer_binding_size / per_sample) as usize;
        let (wg, unit) = (workgroup_size(ctx), batch_unit(ctx));
        let most = max_batch(ctx, &self.layout.branch).min(max_batch(ctx, &self.layout.trunk));
        let chunk = (most.min(by_out) / unit * unit).min(n.next_multiple_of(wg));
        if chunk == 0 {
            return Err(GpuError::Unsupported(
                "one workgroup of samples does not fit one storage binding".into(),
            ));
        }
        let nets = [
            NetData::new(ctx, &self.layout.branch, u, chunk.min(n), "samples")?,
            NetData::new(ctx, &self.layout.trunk, y, chunk.min(n), "samples")?,
        ];
        let out = buffer(
            ctx,
            "predictions",
            per_sample * chunk as u64,
            U::STORAGE | U::COPY_SRC,
        );
        let layout = sized_for(ctx, &self.layout, nets[0].n + nets[1].n).with_output_copies(0);
        let forward = forward_pass(ctx, &layout, &self.params, [&nets[0], &nets[1]])?;
        let combine = combine_pass(
            ctx,
            &layout,
            DataLayout::Unaligned,
            false,
            &self.params,
            &nets[0].x,
            [&nets[0], &nets[1]],
            &out,
        )?;
        predict_in_chunks(ctx, n, chunk, per_sample, &out, |base, batch, pass| {
            for net in &nets {
                let words = step_words(net.n, batch, base, n, false, 0);
                ctx.queue
                    .write_buffer(&net.step, 0, bytemuck::cast_slice(&words));
            }
            forward.record(pass);
            combine.record(pass);
        })
    }

    /// Predictions for every value of `data`, laid out as its values.
    pub fn predict_data<'a>(
        &self,
        ctx: &GpuContext,
        data: impl Into<DataRef<'a>>,
    ) -> Result<Vec<f64>, GpuError> {
        let data = data.into();
        let (u, y, _) = data.parts();
        match data.layout() {
            DataLayout::Aligned => self.predict(ctx, u, y),
            DataLayout::Unaligned => self.predict_samples(ctx, u, y),
        }
    }

    /// MSE and DeepXDE's mean relative L2 error on `data` (per function; see
    /// `DataRef::mean_relative_l2`).
    pub fn evaluate<'a>(
        &self,
        ctx: &GpuContext,
        data: impl Into<DataRef<'a>>,
    ) -> Result<Metrics, GpuError> {
        let data = data.into();
        let g = self.predict_data(ctx, data)?;
        let (_, _, target) = data.parts();
        let mse = g
            .iter()
            .zip(target)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            / g.len().max(1) as f64;
        // With several outputs the joint error is ruled by the largest (a temperature in
        // kelvin beside a concentration near 0.1): each output's is kept beside it.
        let per_output = match data.outputs() {
            0 | 1 => Vec::new(),
            _ => data.mean_relative_l2_per_output(&g),
        };
        Ok(Metrics {
            mse,
            mean_relative_l2: data.mean_relative_l2(&g),
            per_output,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub mse: f64,
    pub mean_relative_l2: f64,
    /// The mean relative L2 of each output on its own (empty for one output).
    pub per_output: Vec<f64>,
}

/// How a `DeepONetTrainer` trains. The loss is the MSE over the batch's functions, points
/// and outputs, as DeepXDE's default.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeepONetTrainConfig {
    pub optimizer: Optimizer,
    /// Functions per step; `None`: all. Drawn without replacement from a fresh
    /// permutation each epoch; a last partial batch is dropped.
    pub functions_per_batch: Option<usize>,
    /// Points per step, likewise (each step's functions are seen at the same points).
    pub points_per_batch: Option<usize>,
    /// Samples per step for unaligned data, likewise (aligned data takes functions and
    /// points per batch instead).
    pub samples_per_batch: Option<usize>,
    /// Seed of the permutations.
    pub seed: u64,
}

impl DeepONetTrainConfig {
    /// Whether the batch options fit data of `layout`: functions and points per batch for
    /// aligned data, samples per batch for unaligned data.
    pub fn check(&self, layout: DataLayout) -> Result<(), String> {
        self.optimizer.check().map_err(|e| e.to_string())?;
        let batches = [
            ("functions_per_batch", self.functions_per_batch),
            ("points_per_batch", self.points_per_batch),
            ("samples_per_batch", self.samples_per_batch),
        ];
        if let Some((name, _)) = batches.iter().find(|b| b.1 == Some(0)) {
            return Err(format!("{name} must be at least 1"));
        }
        match layout {
            DataLayout::Aligned if self.samples_per_batch.is_some() => Err(
                "aligned data takes functions and points per batch, not samples per batch".into(),
            ),
            DataLayout::Unaligned
                if self.functions_per_batch.is_some() || self.points_per_batch.is_some() =>
            {
                Err(
                    "unaligned data takes samples per batch, not functions or points per batch"
                        .into(),
                )
            }
            _ => Ok(()),
        }
    }
}

impl DeepONetTrainConfig {
    /// Whether the batches fit `data`: a batch larger than the data would silently be the
    /// whole data, so it is refused instead (checked by `DeepONetTrainer::new`; callers
    /// call it first to refuse before any work).
    pub fn check_sizes<'a>(&self, data: impl Into<DataRef<'a>>) -> Result<(), String> {
        let data = data.into();
        let (u, y, _) = data.parts();
        let (nf, ny) = (u.rows, y.rows);
        let too_big = [
            (
                "functions_per_batch",
                self.functions_per_batch,
                nf,
                "functions",
            ),
            ("points_per_batch", self.points_per_batch, ny, "points"),
            ("samples_per_batch", self.samples_per_batch, nf, "samples"),
        ]
        .into_iter()
        .find(|(_, asked, all, _)| asked.is_some_and(|a| a > *all));
        match too_big {
            Some((name, Some(asked), all, what)) => Err(format!(
                "{name} = {asked} is more than the {all} {what} of the training data"
            )),
            _ => Ok(()),
        }
    }
}

/// Where a training run stands, to go on with it later exactly as if it had not stopped
/// (`DeepONetTrainer::state`, `DeepONetTrainer::resume`; saved by
/// `nn::save_deeponet_state_bytes`).
#[derive(Debug, Clone, PartialEq)]
pub struct DeepONetTrainState {
    /// Steps taken.
    pub step: u32,
    pub params: DeepONetParams,
    /// Adam's first and second moments, shaped as the parameters.
    pub moments: [DeepONetParams; 2],
    /// The function and point samplers: (permutations drawn, position in the current one).
    pub samplers: [(u64, usize); 2],
}

pub struct DeepONetTrainer {
    pub net: DeepONetNet,
    config: DeepONetTrainConfig,
    /// The branch's data (functions) and the trunk's (points), with their samplers.
    nets: [(NetData, Sampler); 2],
    grad: wgpu::Buffer,
    state: wgpu::Buffer,
    adam_uniform: wgpu::Buffer,
    /// Adam's first and second moments.
    moments: [wgpu::Buffer; 2],
    /// Forward, combine (with backward) and weight gradients; then the update.
    gradient_passes: Vec<Pass>,
    update: Pass,
    t: u32,
    // Keeps the targets alive beside the bind groups that read them.
    _targets: wgpu::Buffer,
}

impl DeepONetTrainer {
    /// A trainer on `data` of either layout (`&AlignedData` or `&UnalignedData`).
    pub fn new<'a>(
        ctx: &GpuContext,
        arch: &DeepONetArch,
        params: &DeepONetParams,
        data: impl Into<DataRef<'a>>,
        config: DeepONetTrainConfig,
    ) -> Result<DeepONetTrainer, GpuError> {
        let data = data.into();
        data.check(arch).map_err(GpuError::Unsupported)?;
        // Checks the architecture, scaling included, before the data is scaled with it.
        let mut net = DeepONetNet::new(ctx, arch, params)?;
        // The network learns the data in its own units (see `predict`).
        let scaled;
        let data = match &arch.scaling {
            Some(s) => {
                scaled = s.apply(data);
                scaled.as_ref()
            }
            None => data,
        };
        let layout = net.layout.clone();
        let (u, y, g) = data.parts();
        let (nf, ny) = (u.rows, y.rows);
        config.check(data.layout()).map_err(GpuError::Unsupported)?;
        config.check_sizes(data).map_err(GpuError::Unsupported)?;
        let batch = |asked: Option<usize>, all: usize| asked.unwrap_or(all).clamp(1, all);
        // Unaligned: both nets take the same samples in the same order (one permutation
        // stream for both samplers).
        let (fb, pb, streams, what) = match data.layout() {
            DataLayout::Aligned => (
                batch(config.functions_per_batch, nf),
                batch(config.points_per_batch, ny),
                [50, 51],
                ["functions", "points"],
            ),
            DataLayout::Unaligned => {
                let b = batch(config.samples_per_batch, nf);
                (b, b, [50, 50], ["samples", "samples"])
            }
        };
        let mut branch = NetData::new(ctx, &layout.branch, u, fb, what[0])?;
        let mut trunk = NetData::new(ctx, &layout.trunk, y, pb, what[1])?;
        let layout = sized_for(ctx, &layout, branch.n + trunk.n);
        let layout = with_output_copies(ctx, layout, data.layout(), [&mut branch, &mut trunk]);
        net.layout = layout.clone();
        let targets = storage(
            ctx,
            "targets",
            &g.iter().map(|&v| v as f32).collect::<Vec<_>>(),
        );
        let grad = zeros(ctx, "gradient", layout.len);
        let state = buffer(
            ctx,
            "loss state",
            4 * state::LEN as u64,
            U::STORAGE | U::COPY_SRC,
        );
        let partial = buffer(
            ctx,
            "partial sums",
            4 * (branch.n * (arch.outputs + 1)) as u64,
            U::STORAGE,
        );

        let params_buf = &net.params;
        let head = vec![
            forward_pass(ctx, &layout, params_buf, [&branch, &trunk])?,
            combine_pass(
                ctx,
                &layout,
                data.layout(),
                true,
                params_buf,
                &targets,
                [&branch, &trunk],
                &partial,
            )?,
        ];
        let gradient_passes: Vec<Pass> = head
            .into_iter()
            .chain(weight_grad_passes(
                ctx,
                &layout,
                data.layout(),
                [&mut branch, &mut trunk],
                &partial,
                &grad,
                &state,
            )?)
            .collect();
        let adam = adam_pass(ctx, layout.len, params_buf, &grad, &state)?;
        ctx.check_errors()?;
        Ok(DeepONetTrainer {
            net,
            config,
            nets: [
                (branch, Sampler::new(nf, fb, streams[0])),
                (trunk, Sampler::new(ny, pb, streams[1])),
            ],
            grad,
            state,
            adam_uniform: adam.uniform,
            moments: adam.moments,
            gradient_passes,
            update: adam.pass,
            t: 0,
            _targets: targets,
        })
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u32 {
        self.t
    }

    /// Where this run stands (parameters, Adam's moments, step, samplers), read back.
    pub fn state(&self, ctx: &GpuContext) -> Result<DeepONetTrainState, GpuError> {
        let layout = &self.net.layout;
        let read = |b: &wgpu::Buffer| -> Result<DeepONetParams, GpuError> {
            Ok(layout.unpack(&read_f32(ctx, b, layout.len)?))
        };
        Ok(DeepONetTrainState {
            step: self.t,
            params: self.params(ctx)?,
            moments: [read(&self.moments[0])?, read(&self.moments[1])?],
            samplers: [self.nets[0].1.position(), self.nets[1].1.position()],
        })
    }

    /// A trainer that goes on from `state` (of a run on the same architecture, data and
    /// config): the steps it takes are those the run would have taken next.
    pub fn resume<'a>(
        ctx: &GpuContext,
        arch: &DeepONetArch,
        state: &DeepONetTrainState,
        data: impl Into<DataRef<'a>>,
        config: DeepONetTrainConfig,
    ) -> Result<DeepONetTrainer, GpuError> {
        let seed = config.seed;
        let mut trainer = DeepONetTrainer::new(ctx, arch, &state.params, data, config)?;
        let layout = &trainer.net.layout;
        for (buffer, m) in trainer.moments.iter().zip(&state.moments) {
            ctx.queue
                .write_buffer(buffer, 0, bytemuck::cast_slice(&layout.pack(m)));
        }
        for ((net, sampler), position) in trainer.nets.iter_mut().zip(state.samplers) {
            let order = sampler.restore(seed, position).ok_or_else(|| {
                GpuError::Unsupported(format!(
                    "the saved sampler position {position:?} does not fit {} rows of data",
                    net.m
                ))
            })?;
            ctx.queue
                .write_buffer(&net.order, 0, bytemuck::cast_slice(order));
        }
        trainer.t = state.step;
        Ok(trainer)
    }

    /// Picks the next batch of functions and points and writes the step's uniforms.
    fn prepare(&mut self, ctx: &GpuContext) {
        for (data, sampler) in &mut self.nets {
            if sampler.active() {
                let (base, fresh) = sampler.next(self.config.seed);
                if let Some(order) = fresh {
                    ctx.queue
                        .write_buffer(&data.order, 0, bytemuck::cast_slice(order));
                }
                data.write_step(ctx, base, true);
            }
        }
        self.t += 1;
        let words = self
            .config
            .optimizer
            .adam_words(self.net.layout.len, self.t, false);
        ctx.queue
            .write_buffer(&self.adam_uniform, 0, bytemuck::cast_slice(&words));
    }

    /// One optimiser step on the next batch, recorded into one command buffer; nothing is
    /// read back.
    pub fn step(&mut self, ctx: &GpuContext) {
        self.prepare(ctx);
        submit(ctx, self.gradient_passes.iter().chain([&self.update]));
    }

    /// `count` optimiser steps.
    pub fn run(&mut self, ctx: &GpuContext, count: usize) {
        for _ in 0..count {
            self.step(ctx);
        }
    }

    /// The loss of the last step's batch (before its update), read back.
    pub fn loss(&self, ctx: &GpuContext) -> Result<f64, GpuError> {
        Ok(read_f32(ctx, &self.state, state::LEN)?[state::LOSS] as f64)
    }

    /// The loss and gradients at the current parameters on the current batch (no update).
    pub fn gradients(&self, ctx: &GpuContext) -> Result<(f64, DeepONetParams), GpuError> {
        submit(ctx, &self.gradient_passes);
        let g = read_f32(ctx, &self.grad, self.net.layout.len)?;
        Ok((self.loss(ctx)?, self.net.layout.unpack(&g)))
    }

    pub fn params(&self, ctx: &GpuContext) -> Result<DeepONetParams, GpuError> {
        self.net.params(ctx)
    }

    /// The functions and points (data rows) of the last step's batch.
    pub fn batch_rows(&self) -> (Vec<usize>, Vec<usize>) {
        (self.nets[0].1.rows(), self.nets[1].1.rows())
    }

    /// One step with every dispatch in its own timed pass: each dispatch's GPU time, or
    /// `None` where the adapter has no timestamp queries.
    pub fn profile(
        &mut self,
        ctx: &GpuContext,
    ) -> Result<Option<Vec<(&'static str, std::time::Duration)>>, GpuError> {
        self.prepare(ctx);
        let passes: Vec<&Pass> = self.gradient_passes.iter().chain([&self.update]).collect();
        profile_passes(ctx, &passes, |_, p, pass| p.record(pass))
    }
}
