//! The fused MLP kernels: one dispatch for the whole forward pass, one for the backward
//! pass of the activation gradients, one for every weight gradient. This module holds the
//! device layout they share and generates their WGSL from an architecture (every offset
//! and width baked in as a constant). Templates: `shaders/nn/fused_*.wgsl`; CPU twin:
//! `nn::mlp::cpu`.
//!
//! Layout. Parameters are one f32 vector read as vec4: B as [inputs, F'] and each layer's
//! weight as [out', in'] followed by its bias [out'], where the primed widths are padded
//! (F' and hidden outputs to 16, the last layer's outputs to 8, inputs to 4, cosines and
//! sines of the encoding each to F'). Padding entries are zero and get zero gradients, so
//! the optimiser leaves them at zero. Activations are rows of vec4 in one scratch buffer,
//! addressed as `Scratch` says.

use super::gpu::{activation_wgsl, derivative_wgsl};
use super::model::{Activation, Architecture, Matrix, Params};
use crate::gpu::shader::{ShaderError, compose};
use std::fmt::Write;

/// Which loss the training step minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Mean squared error over all outputs of the batch.
    Mse,
    /// ‖y − t‖ / ‖t‖ over the whole batch.
    RelativeL2,
}

/// Outputs computed per step of the forward kernel's inner loop (two weight loads).
const BLOCK: usize = 16;

/// How the scratch holds row `r` (a vec4 of features) of batch sample `s`, with `n` the
/// padded batch.
///
/// Feature-major: at `r · n + s`. Each row is one run over the batch.
///
/// Blocked: the output layer's z rows stay feature-major at the start (the loss kernel and
/// the host read them as one run), and every other row is blocked by eight samples: the
/// rows of samples 8b..8b+8 form one contiguous block, row r at `r · 8 + col(s)`. A
/// subgroup of eight reads 128 contiguous bytes per row, and a sample's whole column
/// is 16 · 8 · rows bytes that stay in cache from one layer to the next. With the
/// feature-major layout the rows of one sample lie n · 16 bytes apart; on lavapipe a batch
/// of 2^14 then ran the forward pass 1.4× slower (a probe with one 256 → 64 layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scratch {
    pub blocked: bool,
    /// Samples per invocation in the forward and backward kernels: each weight broadcast
    /// serves this many samples per lane (blocked layouts only).
    pub per_lane: usize,
}

impl Scratch {
    /// DeepONet's kernels: one sample per invocation, feature-major.
    pub const FEATURE_MAJOR: Scratch = Scratch {
        blocked: false,
        per_lane: 1,
    };
    /// The fused MLP's kernels.
    pub const BLOCKED: Scratch = Scratch {
        blocked: true,
        per_lane: 4,
    };

    /// Samples per forward or backward workgroup of 64 invocations: the padded batch is a
    /// multiple of this.
    pub fn samples_per_group(self) -> usize {
        64 * self.per_lane
    }
}

/// How the invocations of a cluster of eight get the values they all read (weights,
/// biases, the δ of a block of samples, DeepONet's other net's outputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneSharing {
    /// Lane j loads the j-th of eight values and `subgroupBroadcast` / `subgroupShuffle`
    /// hand it to the others: one load where there would be eight. Needs subgroups of at
    /// least 8 lanes, of any size from there (lanes are numbered within clusters of 8).
    Subgroup,
    /// Every invocation loads every value itself, for adapters without subgroups (or with
    /// subgroups under 8 lanes, or with `PHASEFLOW_SUBGROUPS=off`). The same values reach
    /// the same arithmetic in the same order, so the results are the same bits; on a GPU
    /// the repeated loads hit the cache, on lavapipe they cost more.
    Loads,
}

impl LaneSharing {
    /// What `ctx` can run.
    pub fn for_context(ctx: &crate::gpu::GpuContext) -> LaneSharing {
        if ctx.has_subgroups() {
            LaneSharing::Subgroup
        } else {
            LaneSharing::Loads
        }
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            LaneSharing::Subgroup => "subgroup",
            LaneSharing::Loads => "loads",
        }
    }

    /// The entry point's parameter that numbers the lanes (`lane_id`): within the
    /// subgroup, or (unused for sharing) within the workgroup.
    pub(crate) fn lane_builtin(self) -> &'static str {
        match self {
            LaneSharing::Subgroup => "@builtin(subgroup_invocation_id) lane_id: u32,",
            LaneSharing::Loads => "@builtin(local_invocation_index) lane_id: u32,",
        }
    }
}

/// Samples per step from which a trainer on a CPU adapter takes weight-gradient tasks of
/// 16 outputs (`grad_outputs_for`). Each costs 3 - 5 s more compilation on a first run
/// and saves about 3 µs per sample and step (lavapipe, AVX2: the weight-gradient pass of
/// `bench mlp-train` at batch 2^14 went from 153 to 101 ms): from 1,024 samples a run
/// earns the compilation back within about 1,500 steps, while the small batches of
/// tests, the self-test and quick fits compile the narrow form only.
pub const WIDE_TASKS_FROM_SAMPLES: usize = 1024;

/// Outputs per weight-gradient task (`FusedLayout::grad_outputs`) for a run on `ctx`
/// whose `wide` says it is long enough to repay the wider form's compilation: 16 on CPU
/// adapters, where every load from a storage buffer is a loop over the lanes and a task
/// of 16 outputs loads each input quad once for twice the sums (docs/performance.md,
/// "fewer storage loads"); 8 otherwise, and always on GPUs, where 32 live vec4 sums would
/// cost registers and the loads hit the cache.
pub fn grad_outputs_for(ctx: &crate::gpu::GpuContext, wide: bool) -> usize {
    if ctx.cpu_forms() && wide { 16 } else { 8 }
}

/// The most uniform windows a fused network's parameters are split into
/// (`FusedLayout::with_uniform_windows`); more take storage bindings.
pub const MAX_PARAM_WINDOWS: usize = 4;

/// Offsets (floats for parameters, vec4 rows for the scratch) of one network on the device.
#[derive(Debug, Clone, PartialEq)]
pub struct FusedLayout {
    pub arch: Architecture,
    pub scratch: Scratch,
    /// How the kernels share loads between lanes; `Subgroup` unless set (`with_sharing`).
    pub sharing: LaneSharing,
    /// The widest layer (padded outputs) whose forward pass keeps all its sums at once, so
    /// that each input quad is loaded once per sample rather than once per block of 16
    /// (or 8) outputs; 0 unless set (`with_whole_layer`): always blocks.
    pub whole_layer: usize,
    /// Whether the kernels read the parameters from a uniform binding (`with_uniform_params`),
    /// every lane at the same index: on lavapipe a load from a uniform buffer at a uniform
    /// index is one scalar load and a splat, while every storage load is a loop over the
    /// lanes with a branch and a bounds check per lane and component. The weights' loads
    /// and broadcasts then give way to uniform loads. False unless set.
    pub uniform_params: bool,
    /// Where each uniform window of the parameters starts (floats) when `uniform_params`:
    /// window 0 is the binding `p`, window i `p{i}` (`with_uniform_windows`). `[0]`
    /// otherwise.
    pub windows: Vec<usize>,
    /// Outputs per weight-gradient task: 8, or 16 where a layer's padded outputs allow
    /// (`with_grad_outputs`), so that each input quad a task loads serves twice as many
    /// sums.
    pub grad_outputs: usize,
    /// Padded encoding features F' (0 without an encoding).
    pub f_pad: usize,
    pub in_pad: Vec<usize>,
    pub out_pad: Vec<usize>,
    pub b_off: usize,
    pub w_off: Vec<usize>,
    pub bias_off: Vec<usize>,
    /// Floats in the parameter vector.
    pub len: usize,
    /// Scratch rows (vec4): the output layer's z (first, so that it is feature-major in
    /// both layouts), the encoded (or copied) input, the raw input when B is trained, the
    /// other layers' z, each layer's δ, the encoding's gradients.
    pub h0_row: usize,
    pub x_row: usize,
    pub z_row: Vec<usize>,
    pub d_row: Vec<usize>,
    pub g_row: usize,
    pub e_row: usize,
    pub rows: usize,
}

fn round(v: usize, to: usize) -> usize {
    v.div_ceil(to) * to
}

impl FusedLayout {
    /// The layout of DeepONet's nets (feature-major scratch).
    pub fn new(arch: &Architecture) -> FusedLayout {
        FusedLayout::with_scratch(arch, Scratch::FEATURE_MAJOR)
    }

    pub fn with_scratch(arch: &Architecture, scratch: Scratch) -> FusedLayout {
        let n = arch.n_linear();
        let f_pad = arch.encoding.as_ref().map_or(0, |e| round(e.features, 16));
        let out_pad: Vec<usize> = (0..n)
            .map(|l| {
                let w = arch.layers[l + 1];
                if l + 1 == n {
                    round(w, 8)
                } else {
                    round(w, BLOCK)
                }
            })
            .collect();
        let in_pad: Vec<usize> = (0..n)
            .map(|l| match (l, &arch.encoding) {
                (0, Some(_)) => 2 * f_pad,
                (0, None) => round(arch.layers[0], 4),
                _ => out_pad[l - 1],
            })
            .collect();
        let mut at = 0;
        let b_off = at;
        if let Some(e) = &arch.encoding {
            at += e.inputs * f_pad;
        }
        let (mut w_off, mut bias_off) = (Vec::new(), Vec::new());
        for l in 0..n {
            w_off.push(at);
            at += out_pad[l] * in_pad[l];
            bias_off.push(at);
            at += out_pad[l];
        }
        // Slack past the last bias. The forward pass's bias broadcast read one quad past an
        // 8-wide last layer; its loads are clamped to the layer's own quads now, and the
        // slack is kept rather than move the offsets that follow.
        let len = round(at, 4) + 16;

        let mut rows = 0;
        let mut take = |r: usize| {
            let start = rows;
            rows += r;
            start
        };
        let z_last = take(out_pad[n - 1] / 4);
        let h0_row = take(in_pad[0] / 4);
        let trained_b = arch.encoding.as_ref().is_some_and(|e| e.trainable);
        let x_row = if trained_b {
            take(arch.inputs().div_ceil(4))
        } else {
            0
        };
        let mut z_row: Vec<usize> = out_pad[..n - 1].iter().map(|&o| take(o / 4)).collect();
        z_row.push(z_last);
        let d_row = out_pad.iter().map(|&o| take(o / 4)).collect();
        let (g_row, e_row) = if trained_b {
            (take(in_pad[0] / 4), take(f_pad / 4))
        } else {
            (0, 0)
        };
        FusedLayout {
            arch: arch.clone(),
            scratch,
            sharing: LaneSharing::Subgroup,
            whole_layer: 0,
            uniform_params: false,
            windows: vec![0],
            grad_outputs: 8,
            f_pad,
            in_pad,
            out_pad,
            b_off,
            w_off,
            bias_off,
            len,
            h0_row,
            x_row,
            z_row,
            d_row,
            g_row,
            e_row,
            rows,
        }
    }

    /// This layout with its kernels sharing loads as `sharing` says.
    pub fn with_sharing(mut self, sharing: LaneSharing) -> FusedLayout {
        self.sharing = sharing;
        self
    }

    /// This layout with layers of at most `outputs` (padded) outputs computed in one block
    /// in the forward pass (`whole_layer`).
    pub fn with_whole_layer(mut self, outputs: usize) -> FusedLayout {
        self.whole_layer = outputs;
        self
    }

    /// This layout with the parameters read from one uniform binding (`uniform_params`):
    /// the caller checks that the whole vector fits one (DeepONet's nets, each bound as a
    /// window of their own); a network that may not fit takes `with_uniform_windows`.
    pub fn with_uniform_params(mut self, uniform: bool) -> FusedLayout {
        self.uniform_params = uniform;
        self
    }

    /// This layout with its parameters read from uniform windows (`uniform_params`) of at
    /// most `max_bytes` each, starting at multiples of `align_bytes`: the vector split
    /// where the encoding's B and each layer's weights and bias meet, into at most
    /// `MAX_PARAM_WINDOWS` windows. Unchanged (storage) when a part is larger than a window
    /// or a boundary is not aligned.
    pub fn with_uniform_windows(mut self, max_bytes: u64, align_bytes: u64) -> FusedLayout {
        let most = (max_bytes / 4) as usize;
        let align = (align_bytes / 4).max(1) as usize;
        let mut bounds = vec![0];
        bounds.extend(self.w_off.iter().copied());
        bounds.push(self.len);
        let mut starts = vec![0];
        for part in bounds.windows(2) {
            let (from, to) = (part[0], part[1]);
            if to - from > most {
                return self;
            }
            if to - starts[starts.len() - 1] > most {
                if !from.is_multiple_of(align) {
                    return self;
                }
                starts.push(from);
            }
        }
        if starts.len() > MAX_PARAM_WINDOWS {
            return self;
        }
        self.uniform_params = true;
        self.windows = starts;
        self
    }

    /// The binding holding the parameter at `float` and its window's first quad: `p` and 0
    /// for storage.
    fn param_window(&self, float: usize) -> (String, usize) {
        let i = self.windows.iter().rposition(|&w| w <= float).unwrap_or(0);
        let name = if i == 0 {
            "p".to_string()
        } else {
            format!("p{i}")
        };
        (name, self.windows[i] / 4)
    }

    /// Each parameter window's (offset, size) in bytes, as the host binds them.
    pub fn window_ranges(&self) -> Vec<(u64, u64)> {
        let mut ends = self.windows[1..].to_vec();
        ends.push(self.len);
        self.windows
            .iter()
            .zip(ends)
            .map(|(&from, to)| (4 * from as u64, 4 * (to - from) as u64))
            .collect()
    }

    /// The declarations of the parameters' bindings: `p` at `first`, and the further
    /// uniform windows from `more`.
    pub(crate) fn params_bindings(&self, first: u32, more: u32) -> String {
        self.window_ranges()
            .iter()
            .enumerate()
            .map(|(i, &(_, size))| {
                let (binding, name) = match i {
                    0 => (first, "p".to_string()),
                    _ => (more + i as u32 - 1, format!("p{i}")),
                };
                self.params_binding(binding, &name, (size / 16) as usize)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether the forward and backward bodies share weight and bias loads between lanes
    /// (each lane loads one quad and broadcasts it), rather than each lane loading every
    /// quad itself at the same index as the others.
    fn shares_weights(&self) -> bool {
        self.sharing == LaneSharing::Subgroup && !self.uniform_params
    }

    /// The declaration of the parameters' binding `name` (`binding`), `quads` vec4 long when
    /// uniform: a storage array, or a sized uniform one (`uniform_params`).
    pub(crate) fn params_binding(&self, binding: u32, name: &str, quads: usize) -> String {
        if self.uniform_params {
            format!("@group(0) @binding({binding}) var<uniform> {name}: array<vec4<f32>, {quads}>;")
        } else {
            format!("@group(0) @binding({binding}) var<storage, read> {name}: array<vec4<f32>>;")
        }
    }

    /// This layout with weight-gradient tasks of `outputs` (8 or 16) outputs where the
    /// layers allow (`grad_outputs`).
    pub fn with_grad_outputs(mut self, outputs: usize) -> FusedLayout {
        self.grad_outputs = outputs;
        self
    }

    /// Rows of the output layer's z: the first rows, feature-major in both layouts.
    pub(crate) fn out_rows(&self) -> usize {
        self.out_pad[self.out_pad.len() - 1] / 4
    }

    /// Whether scratch row `r` is blocked by eight samples (`Scratch`).
    fn is_blocked(&self, r: usize) -> bool {
        self.scratch.blocked && r >= self.out_rows()
    }

    /// vec4 per block of eight samples in the blocked rows.
    fn block_len(&self) -> usize {
        8 * (self.rows - self.out_rows())
    }

    /// WGSL: the column of sample `s` (an expression) in the blocked rows, row r at
    /// r · 8 + column; they start after the n · out_rows vec4 of the feature-major rows.
    fn column(&self, s: &str) -> String {
        format!(
            "n * {o}u - {back}u + ({s} >> 3u) * {block}u + ({s} & 7u)",
            o = self.out_rows(),
            back = 8 * self.out_rows(),
            block = self.block_len()
        )
    }

    /// WGSL: the scratch index of row `row` (an expression; a row in the same layout as
    /// row `first`) of the invocation's sample `k`.
    fn at(&self, first: usize, row: &str, k: usize) -> String {
        if self.is_blocked(first) {
            format!("({row}) * 8u + col{k}")
        } else {
            format!("({row}) * n + s{k}")
        }
    }

    /// WGSL: the step from one row to the next of row `first`'s layout.
    fn stride(&self, first: usize) -> &'static str {
        if self.is_blocked(first) { "8u" } else { "n" }
    }

    /// WGSL defining the invocation's samples `s0`, `s1`, … (invocation `s` takes samples
    /// s + k · n / per_lane), with `row_fn` their data rows `row0`, …, and when blocked their
    /// columns `col0`, … (row r of sample k at r · 8 + col_k).
    fn samples_prelude(&self, row_fn: Option<&str>) -> String {
        let per = self.scratch.per_lane;
        let mut b = String::new();
        for k in 0..per {
            if k == 0 {
                writeln!(b, "    let s0 = s;").unwrap();
            } else {
                writeln!(b, "    let s{k} = s + {k}u * (n / {per}u);").unwrap();
            }
            if let Some(f) = row_fn {
                writeln!(b, "    let row{k} = {f}(s{k});").unwrap();
            }
            if self.scratch.blocked {
                writeln!(b, "    let col{k} = {};", self.column(&format!("s{k}"))).unwrap();
            }
        }
        b
    }

    fn trained_b(&self) -> bool {
        self.arch.encoding.as_ref().is_some_and(|e| e.trainable)
    }

    /// Where input column `c` of layer 0 sits in its padded row (sines start at F').
    fn col0(&self, c: usize) -> usize {
        match &self.arch.encoding {
            Some(e) if c >= e.features => self.f_pad + c - e.features,
            _ => c,
        }
    }

    fn col(&self, l: usize, c: usize) -> usize {
        if l == 0 { self.col0(c) } else { c }
    }

    /// The parameters in device layout.
    pub fn pack(&self, p: &Params) -> Vec<f32> {
        let mut out = vec![0.0f32; self.len];
        if let (Some(b), Some(_)) = (&p.b, &self.arch.encoding) {
            for i in 0..b.rows {
                for f in 0..b.cols {
                    out[self.b_off + i * self.f_pad + f] = b.at(i, f) as f32;
                }
            }
        }
        for (l, (w, bias)) in p.weights.iter().zip(&p.biases).enumerate() {
            for o in 0..w.rows {
                for c in 0..w.cols {
                    out[self.w_off[l] + o * self.in_pad[l] + self.col(l, c)] = w.at(o, c) as f32;
                }
                out[self.bias_off[l] + o] = bias[o] as f32;
            }
        }
        out
    }

    /// Parameters (or gradients) from the device layout.
    pub fn unpack(&self, v: &[f32]) -> Params {
        let mut p = Params::zeros(&self.arch);
        if let Some(b) = p.b.as_mut() {
            let cols = b.cols;
            for i in 0..b.rows {
                for f in 0..cols {
                    b.data[i * cols + f] = v[self.b_off + i * self.f_pad + f] as f64;
                }
            }
        }
        for l in 0..p.weights.len() {
            let (rows, cols) = (p.weights[l].rows, p.weights[l].cols);
            for o in 0..rows {
                for c in 0..cols {
                    p.weights[l].data[o * cols + c] =
                        v[self.w_off[l] + o * self.in_pad[l] + self.col(l, c)] as f64;
                }
                p.biases[l][o] = v[self.bias_off[l] + o] as f64;
            }
        }
        p
    }

    /// Reads `x` [rows, cols] as feature-major f32 [cols][rows], the data layout of the
    /// kernels.
    pub fn feature_major(x: &Matrix) -> Vec<f32> {
        let mut out = vec![0.0f32; x.rows * x.cols];
        for r in 0..x.rows {
            for c in 0..x.cols {
                out[c * x.rows + r] = x.at(r, c) as f32;
            }
        }
        out
    }
}

/// `name`, `name4`, `dname` and `dname4`: activation `a` and its derivative, for scalars
/// and quads.
pub(crate) fn activation_fns(name: &str, a: Activation) -> String {
    let act = activation_wgsl(a).replace("fn act(", &format!("fn {name}("));
    let dact = derivative_wgsl(a).replace("fn dact(", &format!("fn d{name}("));
    format!(
        "{act}\n{dact}\nfn {name}4(v: vec4<f32>) -> vec4<f32> {{\n    return vec4<f32>({name}(v.x), {name}(v.y), {name}(v.z), {name}(v.w));\n}}\nfn d{name}4(v: vec4<f32>) -> vec4<f32> {{\n    return vec4<f32>(d{name}(v.x), d{name}(v.y), d{name}(v.z), d{name}(v.w));\n}}\n"
    )
}

/// `act`, `act4` (hidden layers) and `act_out`, `act_out4` (the output layer), with their
/// derivatives `dact4`, `dact_out4`.
pub(crate) fn activations(arch: &Architecture) -> String {
    let named = activation_fns;
    format!(
        "{}\n{}",
        named("act", arch.activation),
        named("act_out", arch.output_activation)
    )
}

fn scale(arch: &Architecture) -> f32 {
    match &arch.encoding {
        Some(e) if e.two_pi => 2.0 * std::f32::consts::PI,
        _ => 1.0,
    }
}

/// WGSL float literal that reads back exactly.
pub(crate) fn lit(v: f32) -> String {
    format!("{v:?}")
}

pub(crate) const COMPONENTS: [&str; 4] = ["x", "y", "z", "w"];

/// The forward kernel for `layout`.
pub fn forward_wgsl(layout: &FusedLayout) -> Result<String, ShaderError> {
    compose(
        "nn/mlp/fused_forward.wgsl",
        &[
            ("ACT", &activations(&layout.arch)),
            ("PARAMS", &layout.params_bindings(1, 5)),
            ("BODY", &forward_body(layout, "data_row", None)),
            ("LANE_ID", layout.sharing.lane_builtin()),
        ],
    )
}

/// The forward pass of the invocation's samples (`Scratch::per_lane` of them, from
/// invocation `s`; lane `lane` of its group of eight; padded batch `n`), reading bindings
/// `p`, `x`, `h` and `step`, calling `act4` and `row_fn` (sample → data row): the body of
/// fused_forward.wgsl, and of DeepONet's paired kernel under other names
/// (`nn::deeponet::pair`).
///
/// `copy_to`: a buffer the output layer's z rows go to instead of the scratch,
/// feature-major (row q of sample s at q · n + s), for DeepONet's combine kernel to bind
/// as a uniform array (`DeepONetLayout::output_copies`); nothing else reads them there.
pub(crate) fn forward_body(layout: &FusedLayout, row_fn: &str, copy_to: Option<&str>) -> String {
    let arch = &layout.arch;
    let per = layout.scratch.per_lane;
    let shared = layout.shares_weights();
    let mut b = layout.samples_prelude(Some(row_fn));
    let d = arch.inputs();
    for k in 0..per {
        for j in 0..d {
            writeln!(b, "    let x{k}_{j} = x[{j}u * step.m + row{k}];").unwrap();
        }
    }
    let quad = |k: usize, q: usize| -> String {
        let c: Vec<String> = (0..4)
            .map(|e| {
                let j = 4 * q + e;
                if j < d {
                    format!("x{k}_{j}")
                } else {
                    "0.0".into()
                }
            })
            .collect();
        format!("vec4<f32>({})", c.join(", "))
    };
    match &arch.encoding {
        Some(_) => {
            let fq = layout.f_pad / 4;
            let bq = layout.b_off / 4;
            writeln!(b, "    for (var fq = 0u; fq < {fq}u; fq++) {{").unwrap();
            let (pb, base) = layout.param_window(layout.b_off);
            for j in 0..d {
                writeln!(b, "        let b{j} = {pb}[{}u + fq];", bq + j * fq - base).unwrap();
            }
            for k in 0..per {
                let terms: Vec<String> = (0..d).map(|j| format!("b{j} * x{k}_{j}")).collect();
                writeln!(
                    b,
                    "        {{ let z = {} * ({}); h[{}] = cos(z); h[{}] = sin(z); }}",
                    lit(scale(arch)),
                    terms.join(" + "),
                    layout.at(layout.h0_row, &format!("{}u + fq", layout.h0_row), k),
                    layout.at(layout.h0_row, &format!("{}u + fq", layout.h0_row + fq), k),
                )
                .unwrap();
            }
            writeln!(b, "    }}").unwrap();
            if layout.trained_b() {
                for k in 0..per {
                    for q in 0..d.div_ceil(4) {
                        let at = layout.at(layout.x_row, &format!("{}u", layout.x_row + q), k);
                        writeln!(b, "    h[{at}] = {};", quad(k, q)).unwrap();
                    }
                }
            }
        }
        None => {
            for k in 0..per {
                for q in 0..layout.in_pad[0] / 4 {
                    let at = layout.at(layout.h0_row, &format!("{}u", layout.h0_row + q), k);
                    writeln!(b, "    h[{at}] = {};", quad(k, q)).unwrap();
                }
            }
        }
    }
    for l in 0..arch.n_linear() {
        let in_q = layout.in_pad[l] / 4;
        let out = layout.out_pad[l];
        // The last layer is padded to 8 only: blocks of 16 would run past it.
        let block = if out <= layout.whole_layer {
            out
        } else if out.is_multiple_of(BLOCK) {
            BLOCK
        } else {
            8
        };
        let input_row = if l == 0 {
            layout.h0_row
        } else {
            layout.z_row[l - 1]
        };
        let input = |k: usize| {
            if l == 0 {
                format!("h[at{k}]")
            } else {
                format!("act4(h[at{k}])")
            }
        };
        writeln!(
            b,
            "    // layer {l}: {} -> {}",
            arch.layers[l],
            arch.layers[l + 1]
        )
        .unwrap();
        writeln!(b, "    for (var o0 = 0u; o0 < {out}u; o0 += {block}u) {{").unwrap();
        let (p, base) = layout.param_window(layout.w_off[l]);
        let bias_q = layout.bias_off[l] / 4 - base;
        // Lane j loads bias quad j of the block (of each eight), or the last one.
        let bias_quads = block / 4;
        if shared {
            for r in 0..bias_quads.div_ceil(8) {
                writeln!(
                    b,
                    "        let bq{r} = {p}[{bias_q}u + (o0 >> 2u) + min(lane + {}u, {}u)];",
                    8 * r,
                    bias_quads - 1
                )
                .unwrap();
            }
        }
        for j in 0..block {
            let quad = if shared {
                format!("subgroupBroadcast(bq{}, {}u)", j / 32, (j / 4) % 8)
            } else {
                format!("{p}[{bias_q}u + (o0 >> 2u) + {}u]", j / 4)
            };
            writeln!(b, "        let b{j} = {quad}.{};", COMPONENTS[j % 4]).unwrap();
        }
        for k in 0..per {
            for j in 0..block {
                writeln!(b, "        var c{k}_{j} = b{j};").unwrap();
            }
            writeln!(
                b,
                "        var at{k} = {};",
                layout.at(input_row, &format!("{input_row}u"), k)
            )
            .unwrap();
        }
        // Lane j's index, or (each lane loading all eight) the first lane's.
        let own = if shared { " + lane" } else { "" };
        for w in 0..block / 8 {
            writeln!(
                b,
                "        var w{w} = {}u + (o0 + {}u{own}) * {in_q}u;",
                layout.w_off[l] / 4 - base,
                8 * w
            )
            .unwrap();
        }
        // Each sum is assigned once per iteration, its four products nested in one
        // expression: lavapipe keeps a variable assigned in a loop in memory and stores it
        // under the execution mask (load, blend, store) at every assignment.
        writeln!(b, "        for (var iq = 0u; iq < {in_q}u; iq++) {{").unwrap();
        for k in 0..per {
            writeln!(
                b,
                "            let a{k} = {};\n            at{k} += {};",
                input(k),
                layout.stride(input_row)
            )
            .unwrap();
        }
        for w in 0..block / 8 {
            let load = if shared {
                format!("{p}[w{w}]")
            } else {
                format!("w{w}")
            };
            writeln!(
                b,
                "            let wl{w} = {load};\n            w{w} += 1u;"
            )
            .unwrap();
            for j in 0..8 {
                let c = 8 * w + j;
                let u = if shared {
                    format!("subgroupBroadcast(wl{w}, {j}u)")
                } else {
                    format!("{p}[wl{w} + {}u]", j * in_q)
                };
                let mut line = format!("            {{ let u = {u};");
                for k in 0..per {
                    write!(
                        line,
                        " c{k}_{c} = fma(u.w, a{k}.w, fma(u.z, a{k}.z, fma(u.y, a{k}.y, fma(u.x, a{k}.x, c{k}_{c}))));"
                    )
                    .unwrap();
                }
                line.push_str(" }");
                writeln!(b, "{line}").unwrap();
            }
        }
        writeln!(b, "        }}").unwrap();
        for k in 0..per {
            for q in 0..block / 4 {
                let at = layout.at(
                    layout.z_row[l],
                    &format!("{}u + (o0 >> 2u) + {q}u", layout.z_row[l]),
                    k,
                );
                let sums = format!(
                    "vec4<f32>(c{k}_{}, c{k}_{}, c{k}_{}, c{k}_{})",
                    4 * q,
                    4 * q + 1,
                    4 * q + 2,
                    4 * q + 3
                );
                match copy_to.filter(|_| l + 1 == arch.n_linear()) {
                    Some(copy) => writeln!(
                        b,
                        "        {copy}[((o0 >> 2u) + {q}u) * n + s{k}] = {sums};"
                    ),
                    None => writeln!(b, "        h[{at}] = {sums};"),
                }
                .unwrap();
            }
        }
        writeln!(b, "    }}").unwrap();
    }
    b
}

/// Where the backward pass finds the output layer's δ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputDelta {
    /// Computed from the targets and the loss state (`fused_loss.wgsl`).
    FromLoss,
    /// Already in the scratch's last δ rows, written by another kernel (DeepONet's
    /// combine kernel, which owns the loss of the two nets).
    Given,
}

/// The backward kernel (activation gradients) for `layout`.
pub fn backward_wgsl(layout: &FusedLayout, delta: OutputDelta) -> Result<String, ShaderError> {
    compose(
        "nn/mlp/fused_backward.wgsl",
        &[
            ("ACT", &activations(&layout.arch)),
            ("PARAMS", &layout.params_bindings(1, 6)),
            ("BODY", &backward_body(layout, delta)),
            ("LANE_ID", layout.sharing.lane_builtin()),
        ],
    )
}

/// The backward pass of the invocation's samples, as `forward_body` (with `FromLoss`,
/// also `targets`, `factor` and `data_row`).
pub(crate) fn backward_body(layout: &FusedLayout, delta: OutputDelta) -> String {
    let arch = &layout.arch;
    let per = layout.scratch.per_lane;
    let shared = layout.shares_weights();
    let n_lin = arch.n_linear();
    let last = n_lin - 1;
    let outputs = arch.outputs();
    let from_loss = delta == OutputDelta::FromLoss;
    let mut b = layout.samples_prelude(from_loss.then_some("data_row"));
    // Output layer: δ = factor · (y − t) · act_out'(z), zero for padding.
    if from_loss {
        for k in 0..per {
            // Padding samples get δ = 0, so they add nothing to any gradient.
            writeln!(b, "    let live{k} = s{k} < step.batch;").unwrap();
        }
        writeln!(
            b,
            "    for (var oq = 0u; oq < {}u; oq++) {{",
            layout.out_pad[last] / 4
        )
        .unwrap();
        for k in 0..per {
            let z_at = layout.at(
                layout.z_row[last],
                &format!("{}u + oq", layout.z_row[last]),
                k,
            );
            let d_at = layout.at(
                layout.d_row[last],
                &format!("{}u + oq", layout.d_row[last]),
                k,
            );
            writeln!(
                b,
                "        {{\n        let z = h[{z_at}];\n        var t = vec4<f32>(0.0);\n        var keep = vec4<bool>(false);"
            )
            .unwrap();
            for (e, c) in COMPONENTS.iter().enumerate() {
                writeln!(
                    b,
                    "        {{ let o = oq * 4u + {e}u; keep.{c} = live{k} && o < {outputs}u; t.{c} = targets[min(o, {}u) * step.m + row{k}]; }}",
                    outputs - 1,
                )
                .unwrap();
            }
            writeln!(
                b,
                "        h[{d_at}] = select(vec4<f32>(0.0), factor * (act_out4(z) - t) * dact_out4(z), keep);\n        }}"
            )
            .unwrap();
        }
        writeln!(b, "    }}").unwrap();
    }
    // Hidden layers, then (when B is trained) the encoding's input gradient g = W0ᵀ δ0.
    let first = if layout.trained_b() { 0 } else { 1 };
    for l in (first..n_lin).rev() {
        let in_q = layout.in_pad[l] / 4;
        let out_q = layout.out_pad[l] / 4;
        let (p, base) = layout.param_window(layout.w_off[l]);
        let w = layout.w_off[l] / 4 - base;
        let d_row = layout.d_row[l];
        writeln!(b, "    // δ into layer {l}'s input").unwrap();
        writeln!(
            b,
            "    for (var i0 = 0u; i0 < {}u; i0 += 16u) {{",
            layout.in_pad[l]
        )
        .unwrap();
        for k in 0..per {
            for c in 0..16 {
                writeln!(b, "        var c{k}_{c} = 0.0;").unwrap();
            }
            writeln!(
                b,
                "        var at{k} = {};",
                layout.at(d_row, &format!("{d_row}u"), k)
            )
            .unwrap();
        }
        // Lane 4r + q's index, or (each lane loading all eight) lane 0's.
        let own = if shared {
            format!(" + (lane >> 2u) * {in_q}u + (lane & 3u)")
        } else {
            String::new()
        };
        writeln!(
            b,
            "        var w0 = {w}u + (i0 >> 2u){own};\n        var w1 = w0 + {}u;",
            2 * in_q
        )
        .unwrap();
        writeln!(b, "        for (var oq = 0u; oq < {out_q}u; oq++) {{").unwrap();
        for k in 0..per {
            writeln!(
                b,
                "            let d{k} = h[at{k}];\n            at{k} += {};",
                layout.stride(d_row)
            )
            .unwrap();
        }
        let (wa, wb) = if shared {
            (format!("{p}[w0]"), format!("{p}[w1]"))
        } else {
            ("w0".into(), "w1".into())
        };
        writeln!(
            b,
            "            let wa = {wa};\n            let wb = {wb};\n            w0 += {s}u;\n            w1 += {s}u;",
            s = 4 * in_q
        )
        .unwrap();
        // Lane 4r + q of wa holds W[o0 + r][i0 + 4q ..], of wb W[o0 + 2 + r][...].
        for (src, rows) in [("wa", [0, 1]), ("wb", [2, 3])] {
            for (r, &row) in rows.iter().enumerate() {
                for q in 0..4 {
                    let dr = COMPONENTS[row];
                    let u = if shared {
                        format!("subgroupBroadcast({src}, {}u)", 4 * r + q)
                    } else {
                        format!("{p}[{src} + {}u]", r * in_q + q)
                    };
                    let mut line = format!("            {{ let u = {u};");
                    for k in 0..per {
                        for (e, comp) in COMPONENTS.iter().enumerate() {
                            let c = 4 * q + e;
                            write!(line, " c{k}_{c} = fma(u.{comp}, d{k}.{dr}, c{k}_{c});")
                                .unwrap();
                        }
                    }
                    line.push_str(" }");
                    writeln!(b, "{line}").unwrap();
                }
            }
        }
        writeln!(b, "        }}").unwrap();
        for k in 0..per {
            for q in 0..4 {
                let v = format!(
                    "vec4<f32>(c{k}_{}, c{k}_{}, c{k}_{}, c{k}_{})",
                    4 * q,
                    4 * q + 1,
                    4 * q + 2,
                    4 * q + 3
                );
                let row = |r: usize| layout.at(r, &format!("{r}u + (i0 >> 2u) + {q}u"), k);
                if l == 0 {
                    writeln!(b, "        h[{}] = {v};", row(layout.g_row)).unwrap();
                } else {
                    writeln!(
                        b,
                        "        {{ let zq = h[{}]; h[{}] = {v} * dact4(zq); }}",
                        row(layout.z_row[l - 1]),
                        row(layout.d_row[l - 1])
                    )
                    .unwrap();
                }
            }
        }
        writeln!(b, "    }}").unwrap();
    }
    if layout.trained_b() {
        // e = dL/dz of the encoding: scale · (cos z · g_sin − sin z · g_cos).
        let fq = layout.f_pad / 4;
        let (g, h0, e) = (layout.g_row, layout.h0_row, layout.e_row);
        writeln!(b, "    for (var fq = 0u; fq < {fq}u; fq++) {{").unwrap();
        for k in 0..per {
            let at = |r: usize, plus: usize| layout.at(r, &format!("{}u + fq", r + plus), k);
            writeln!(
                b,
                "        {{\n        let gc = h[{}];\n        let gs = h[{}];\n        let cz = h[{}];\n        let sz = h[{}];\n        h[{}] = {scale} * (cz * gs - sz * gc);\n        }}",
                at(g, 0),
                at(g, fq),
                at(h0, 0),
                at(h0, fq),
                at(e, 0),
                scale = lit(scale(arch))
            )
            .unwrap();
        }
        writeln!(b, "    }}").unwrap();
    }
    b
}

/// One group of weight-gradient tasks: δ rows × input rows of one layer (or B).
struct GradGroup {
    d_row: usize,
    a_row: usize,
    /// Apply the hidden activation to the inputs (they are stored as z).
    act: bool,
    blocks: usize,
    in_q: usize,
    outputs: usize,
    inputs: usize,
    /// Float index of gradient (o, i): off + o · o_stride + i · i_stride.
    off: usize,
    o_stride: usize,
    i_stride: usize,
    /// The column map of layer 0's padded input (cosines, then sines at F').
    col0: Option<(usize, usize)>,
    bias: Option<usize>,
}

impl GradGroup {
    /// Pairs of input quads: a task covers 8 outputs × 8 inputs.
    fn pairs(&self) -> usize {
        self.in_q.div_ceil(2)
    }
}

fn grad_groups(layout: &FusedLayout) -> Vec<GradGroup> {
    let arch = &layout.arch;
    let mut groups = Vec::new();
    if let (Some(e), true) = (&arch.encoding, layout.trained_b()) {
        // dB[j][f] = Σ x_j e_f: outputs are features, inputs are the raw inputs.
        groups.push(GradGroup {
            d_row: layout.e_row,
            a_row: layout.x_row,
            act: false,
            blocks: layout.f_pad / 8,
            in_q: e.inputs.div_ceil(4),
            outputs: e.features,
            inputs: e.inputs,
            off: layout.b_off,
            o_stride: 1,
            i_stride: layout.f_pad,
            col0: None,
            bias: None,
        });
    }
    for l in 0..arch.n_linear() {
        let col0 = match (&arch.encoding, l) {
            (Some(e), 0) => Some((e.features, layout.f_pad)),
            _ => None,
        };
        groups.push(GradGroup {
            d_row: layout.d_row[l],
            a_row: if l == 0 {
                layout.h0_row
            } else {
                layout.z_row[l - 1]
            },
            act: l > 0,
            blocks: layout.out_pad[l] / 8,
            in_q: layout.in_pad[l] / 4,
            outputs: arch.layers[l + 1],
            inputs: arch.layers[l],
            off: layout.w_off[l],
            o_stride: layout.in_pad[l],
            i_stride: 1,
            col0,
            bias: Some(layout.bias_off[l]),
        });
    }
    groups
}

/// The weight-gradient kernel for `layout`, and its number of tasks.
pub fn weight_grad_wgsl(layout: &FusedLayout) -> Result<(String, usize), ShaderError> {
    let parts = weight_grad_parts(layout);
    let wgsl = compose(
        "nn/mlp/fused_weight_grad.wgsl",
        &[
            ("ACT", &activations(&layout.arch)),
            ("LEN", &layout.len.to_string()),
            ("BODY", &parts.body),
            ("DISPATCH", &parts.dispatch),
            ("LANE_IDS", lane_ids(layout.sharing)),
            ("TASK", task(layout.sharing)),
        ],
    )?;
    Ok((wgsl, parts.tasks))
}

/// The weight-gradient kernel's entry parameters that number its lanes.
fn lane_ids(sharing: LaneSharing) -> &'static str {
    match sharing {
        LaneSharing::Subgroup => {
            "@builtin(subgroup_id) subgroup: u32,\n    @builtin(subgroup_size) size: u32,\n    @builtin(subgroup_invocation_id) lane_id: u32,"
        }
        LaneSharing::Loads => "@builtin(local_invocation_index) lane_id: u32,",
    }
}

/// The weight-gradient kernel's task: numbered along the subgroups, so that each
/// cluster of eight lanes holds eight consecutive tasks whatever the subgroup size, or
/// (nothing shared) along the workgroup.
fn task(sharing: LaneSharing) -> &'static str {
    match sharing {
        LaneSharing::Subgroup => "wg.x * 64u + subgroup * size + lane_id",
        LaneSharing::Loads => "wg.x * 64u + lane_id",
    }
}

/// The pieces of a weight-gradient kernel: one function `group{k}` per layer (reading
/// `h` and `step`, writing `g`, calling `act4`), the chain that sends task `t` to its
/// group, and the number of tasks.
pub(crate) struct WeightGradParts {
    pub body: String,
    pub dispatch: String,
    pub tasks: usize,
}

/// A weight-gradient group function, and its number of tasks.
///
/// Task t is output block ob = t / per and input pair ip = t % per, where per is the pairs
/// rounded up to 8, so that the eight tasks of a cluster of eight lanes (lane `lane` of
/// the cluster starting at subgroup lane `cl`) share their output block and so their δ
/// rows. The task loops over blocks of eight samples (s0 is a multiple of 8; samples past
/// the batch up to the next multiple of 8 have δ = 0): lane j loads the block's sample j
/// of the two δ rows and shuffles it to the others, so each lane makes two loads of its
/// own and a quarter of one shared load per sample, where it made four. On lavapipe every
/// load is a loop over the lanes, and the pass took 35 ms at batch 2^14 with the four
/// loads (blocked scratch); DeepONet's feature-major scratch took the same way (issue 30,
/// docs/performance.md). Each sum is assigned once per block, its eight products nested
/// (lavapipe stores a variable assigned in a loop at every assignment). The bias sums
/// (Σ δ) ride along in every task and the task with ip = 0 writes them.
///
/// The scratch's geometry: blocked, row r of sample s at r · 8 + `column(s)`, the next
/// block of eight samples `block_len` further on; feature-major, row r of sample s at
/// r · n + s.
fn shared_delta_group(k: usize, layout: &FusedLayout, g: &GradGroup) -> (String, usize) {
    let (row, col, advance) = if layout.scratch.blocked {
        ("8u", layout.column("s0"), layout.block_len())
    } else {
        ("n", "s0".to_string(), 8)
    };
    // δ quads (four outputs each) per task: 4 where the layout asks for 16 outputs and
    // the layer's padded outputs are a multiple of 16, else 2.
    let quads = if layout.grad_outputs == 16 && (8 * g.blocks).is_multiple_of(16) {
        4
    } else {
        2
    };
    let outs = 4 * quads;
    let blocks = 8 * g.blocks / outs;
    let pairs = g.pairs();
    let per = pairs.div_ceil(8) * 8;
    let mut loads = String::new();
    for e in 0..8 {
        let (a, b) = if g.act {
            (format!("act4(h[ad + {e}u])"), format!("act4(h[ae + {e}u])"))
        } else {
            (format!("h[ad + {e}u]"), format!("h[ae + {e}u]"))
        };
        writeln!(loads, "        let a{e} = {a};\n        let b{e} = {b};").unwrap();
        for r in 0..quads {
            let d = match layout.sharing {
                LaneSharing::Subgroup => format!("subgroupShuffle(dl{r}, cl + {e}u)"),
                LaneSharing::Loads => format!("h[dd + {r}u * {row} + {e}u]"),
            };
            writeln!(loads, "        let d{r}_{e} = {d};").unwrap();
        }
    }
    // Sum j (output 4r + component) of input quad a (c) and b (e).
    let mut sums = String::new();
    for (acc, src) in [("c", "a"), ("e", "b")] {
        for r in 0..quads {
            for (m, comp) in COMPONENTS.iter().enumerate() {
                let j = 4 * r + m;
                let mut expr = format!("{acc}{j}");
                for e in 0..8 {
                    expr = format!("fma(vec4<f32>(d{r}_{e}.{comp}), {src}{e}, {expr})");
                }
                writeln!(sums, "        {acc}{j} = {expr};").unwrap();
            }
        }
    }
    for r in 0..quads {
        let terms: Vec<String> = (0..8).map(|e| format!("d{r}_{e}")).collect();
        writeln!(sums, "        u{r} += {};", terms.join(" + ")).unwrap();
    }
    let mut decl = String::new();
    for j in 0..outs {
        writeln!(
            decl,
            "    var c{j} = vec4<f32>(0.0);\n    var e{j} = vec4<f32>(0.0);"
        )
        .unwrap();
    }
    let mut arrays = format!(
        "    var acc: array<vec4<f32>, {outs}>;\n    var bcc: array<vec4<f32>, {outs}>;\n    var bias: array<vec4<f32>, {quads}>;\n"
    );
    for j in 0..outs {
        writeln!(arrays, "    acc[{j}] = c{j};\n    bcc[{j}] = e{j};").unwrap();
    }
    for r in 0..quads {
        writeln!(decl, "    var u{r} = vec4<f32>(0.0);").unwrap();
        writeln!(arrays, "    bias[{r}] = u{r};").unwrap();
    }
    let bias_write = match g.bias {
        Some(off) => format!(
            "    if ip == 0u {{\n        for (var k = 0u; k < {outs}u; k++) {{\n            let o = ob * {outs}u + k;\n            if o < {o}u {{\n                g[base + {off}u + o] = bias[k >> 2u][k & 3u];\n            }}\n        }}\n    }}\n",
            o = g.outputs
        ),
        None => String::new(),
    };
    let lane_loads: String = match layout.sharing {
        LaneSharing::Subgroup => (0..quads)
            .map(|r| format!("        let dl{r} = h[dd + {r}u * {row} + lane];\n"))
            .collect(),
        LaneSharing::Loads => String::new(),
    };
    let mut f = String::new();
    write!(
        f,
        "fn group{k}(t: u32, s0: u32, s1: u32, base: u32, lane: u32, cl: u32) {{
    let ob = t / {per}u;
    let ip = t % {per}u;
    let n = step.n;
{decl}    // Lanes past the pairs load the last pair and write nothing; the second quad of the
    // last pair may lie past the inputs: its sums are not written.
    let col = {col};
    var ad = ({a_row}u + min(2u * ip, {last_q}u)) * {row} + col;
    var ae = ({a_row}u + min(2u * ip + 1u, {last_q}u)) * {row} + col;
    var dd = ({d_row}u + {quads}u * ob) * {row} + col;
    for (var s = s0; s < s1; s += 8u) {{
{lane_loads}{loads}{sums}        ad += {advance}u;
        ae += {advance}u;
        dd += {advance}u;
    }}
{arrays}{bias_write}    if ip >= {pairs}u {{
        return;
    }}
{writes}}}

",
        a_row = g.a_row,
        last_q = g.in_q - 1,
        d_row = g.d_row,
        writes = weight_writes(g, outs),
    )
    .unwrap();
    (f, blocks * per)
}

/// WGSL writing a task's `outs` × 8 weight gradients (output block `ob`, input pair `ip`)
/// into `g` at `base`, skipping padding.
fn weight_writes(g: &GradGroup, outs: usize) -> String {
    format!(
        "    for (var k = 0u; k < {outs}u; k++) {{
        let o = ob * {outs}u + k;
        for (var e = 0u; e < 8u; e++) {{
            let i = ip * 8u + e;
            if o < {o}u && i < {in_end}u && {real} {{
                let v = select(bcc[k][e & 3u], acc[k][e & 3u], e < 4u);
                g[base + {off}u + o * {os}u + i * {is}u] = v;
            }}
        }}
    }}
",
        o = g.outputs,
        in_end = 4 * g.in_q,
        real = real_inputs(g),
        off = g.off,
        os = g.o_stride,
        is = g.i_stride,
    )
}

/// WGSL: whether padded input column `i` of group `g` holds a real input: all below
/// `inputs`, except in layer 0 with an encoding, where cosines and sines are padded
/// separately.
fn real_inputs(g: &GradGroup) -> String {
    match g.col0 {
        Some((features, f_pad)) => {
            format!(
                "(i < {features}u || (i >= {f_pad}u && i < {}u))",
                f_pad + features
            )
        }
        None => format!("i < {}u", g.inputs),
    }
}

pub(crate) fn weight_grad_parts(layout: &FusedLayout) -> WeightGradParts {
    let groups = grad_groups(layout);
    let mut body = String::new();
    let mut dispatch = String::new();
    let mut first = 0;
    for (k, g) in groups.iter().enumerate() {
        let (f, tasks) = shared_delta_group(k, layout, g);
        body.push_str(&f);
        let end = first + tasks;
        writeln!(
            dispatch,
            "    if t >= {first}u && t < {end}u {{\n        group{k}(t - {first}u, s0, s1, base, lane, cl);\n    }}"
        )
        .unwrap();
        first = end;
    }
    WeightGradParts {
        body,
        dispatch,
        tasks: first,
    }
}

/// The loss kernel for `layout`.
pub fn loss_wgsl(layout: &FusedLayout, loss: Loss) -> Result<String, ShaderError> {
    let last = layout.arch.n_linear() - 1;
    compose(
        "nn/mlp/fused_loss.wgsl",
        &[
            ("ACT", &activations(&layout.arch)),
            ("OUTPUTS", &layout.arch.outputs().to_string()),
            ("Z_ROW", &layout.z_row[last].to_string()),
            (
                "RELATIVE",
                if loss == Loss::RelativeL2 {
                    "true"
                } else {
                    "false"
                },
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::mlp::model::{Encoding, EncodingKind, Init};

    #[test]
    fn uniform_windows_split_where_layers_meet() {
        // The benchmark network: B 2 x 64, then 128 -> 64 -> 64 -> 64 -> 1 (8 padded),
        // about 69 KB: two windows of at most 64 KiB, the second from layer 2's weights.
        let layout =
            FusedLayout::with_scratch(&Architecture::benchmark_fourier_mlp(), Scratch::BLOCKED);
        let windowed = layout.clone().with_uniform_windows(65536, 32);
        assert!(windowed.uniform_params);
        assert_eq!(windowed.windows, vec![0, layout.w_off[2]]);
        let ranges = windowed.window_ranges();
        assert_eq!(ranges[0], (0, 4 * layout.w_off[2] as u64));
        assert_eq!(ranges[1].0 + ranges[1].1, 4 * layout.len as u64);
        assert!(ranges.iter().all(|r| r.1 <= 65536));
        // Layer 2 and its bias lie in window 1: p1, from its first quad.
        assert_eq!(
            windowed.param_window(layout.bias_off[2]),
            ("p1".into(), layout.w_off[2] / 4)
        );
        assert_eq!(windowed.param_window(layout.bias_off[1]), ("p".into(), 0));
        // Layer 0's weights (128 x 64 floats) do not fit 16 KiB; a 4 KiB alignment does not
        // meet layer 2's offset; one window would not hold them all: storage.
        for (most, align) in [(16384, 32), (65536, 4096)] {
            let kept = layout.clone().with_uniform_windows(most, align);
            assert!(
                !kept.uniform_params && kept.windows == vec![0],
                "{most} {align}"
            );
        }
        assert_eq!(layout.window_ranges(), vec![(0, 4 * layout.len as u64)]);
    }

    fn arch(encoding: bool, trainable: bool) -> Architecture {
        Architecture {
            kind: if encoding { "fourier_mlp" } else { "mlp" }.into(),
            encoding: encoding.then(|| Encoding {
                kind: EncodingKind::Gaussian,
                inputs: 3,
                features: 10,
                two_pi: true,
                order: "cos_then_sin".into(),
                sigma: Some(2.0),
                trainable,
            }),
            layers: vec![if encoding { 20 } else { 3 }, 24, 5],
            activation: Activation::Tanh,
            output_activation: Activation::None,
        }
    }

    #[test]
    fn pack_and_unpack_are_inverse_and_padding_is_zero() {
        for (enc, tr) in [(false, false), (true, false), (true, true)] {
            let a = arch(enc, tr);
            let layout = FusedLayout::new(&a);
            let p = Params::init(&a, Init::Glorot, 7).unwrap();
            let packed = layout.pack(&p);
            let back = layout.unpack(&packed);
            for (x, y) in p.flat().iter().zip(back.flat()) {
                assert_eq!(*x as f32 as f64, y);
            }
            let nonzero = packed.iter().filter(|v| **v != 0.0).count();
            let real = p.flat().iter().filter(|v| **v as f32 != 0.0).count();
            assert_eq!(nonzero, real, "padding must stay zero");
            assert_eq!(layout.len % 4, 0);
        }
    }

    #[test]
    fn widths_are_padded_for_the_kernels() {
        let layout = FusedLayout::new(&arch(true, true));
        assert_eq!(layout.f_pad, 16);
        assert_eq!(layout.in_pad, vec![32, 32]);
        assert_eq!(layout.out_pad, vec![32, 8]);
        // Every scratch region is disjoint.
        let mut regions = vec![
            (layout.h0_row, layout.in_pad[0] / 4),
            (layout.x_row, 1),
            (layout.g_row, layout.in_pad[0] / 4),
            (layout.e_row, layout.f_pad / 4),
        ];
        for l in 0..2 {
            regions.push((layout.z_row[l], layout.out_pad[l] / 4));
            regions.push((layout.d_row[l], layout.out_pad[l] / 4));
        }
        regions.sort();
        for w in regions.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "{regions:?}");
        }
        assert_eq!(regions.last().map(|r| r.0 + r.1), Some(layout.rows));
    }
}
