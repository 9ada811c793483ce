//! DeepONet (Lu et al., Nature Machine Intelligence 2021): a branch MLP reads an input
//! function u at m sensors, a trunk MLP reads an output location y, and
//! G(u)(y)_c = Σ_i b_i(u) t_i(y) + b0_c over the latent width p for each output c.
//!
//! Semantics follow DeepXDE's `DeepONetCartesianProd` where it defines them: the branch's
//! last layer is linear, the trunk applies the activation to its last layer too, one bias
//! b0 per output, and several outputs share the nets by splitting their last layers
//! (`split_both`: both nets give p·k values, group c pairs with group c; `split_branch`:
//! the branch gives p·k, the trunk p shared by all outputs; `split_trunk`: the reverse).
//! Parameters are named as a PyTorch module with submodules `branch` and `trunk` (each
//! the `nn.Sequential` of `nn::mlp::model`) and a parameter `b` [k].
//!
//! Data layouts: aligned (every function observed at the same points: G is
//! [functions, points, outputs], a product of the two nets' outputs) and unaligned (one
//! (u, y) pair per sample, DeepXDE's `Triple` data). This module is the f64 CPU twin of
//! both.

use super::scaling::{Affine, Scaling};
use crate::nn::mlp::cpu;
use crate::nn::mlp::model::{Activation, Architecture, Encoding, Init, Matrix, ModelError, Params};
use crate::rng::uniform_f64;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    SplitBoth,
    SplitBranch,
    SplitTrunk,
}

/// The architecture, as a checkpoint's metadata holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeepONetArch {
    pub branch: Architecture,
    pub trunk: Architecture,
    /// p: terms of the sum per output.
    pub latent: usize,
    /// k: outputs per location.
    pub outputs: usize,
    pub strategy: Strategy,
    /// Normalisation of inputs and outputs, when the network was trained on scaled data;
    /// predictions are always in the data's units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<Scaling>,
}

/// Widths and options of one of the two nets.
#[derive(Debug, Clone)]
pub struct NetSpec {
    pub inputs: usize,
    pub hidden: Vec<usize>,
    pub encoding: Option<Encoding>,
}

impl DeepONetArch {
    /// A DeepONet with DeepXDE's conventions: `activation` between hidden layers of both
    /// nets and after the trunk's last layer, none after the branch's.
    pub fn new(
        branch: NetSpec,
        trunk: NetSpec,
        latent: usize,
        outputs: usize,
        strategy: Strategy,
        activation: Activation,
    ) -> DeepONetArch {
        let (b_out, t_out) = match strategy {
            Strategy::SplitBoth => (latent * outputs, latent * outputs),
            Strategy::SplitBranch => (latent * outputs, latent),
            Strategy::SplitTrunk => (latent, latent * outputs),
        };
        let branch = Architecture::mlp(
            branch.inputs,
            branch.encoding,
            &branch.hidden,
            b_out,
            activation,
        );
        let mut trunk = Architecture::mlp(
            trunk.inputs,
            trunk.encoding,
            &trunk.hidden,
            t_out,
            activation,
        );
        trunk.output_activation = activation;
        DeepONetArch {
            branch,
            trunk,
            latent,
            outputs,
            strategy,
            scaling: None,
        }
    }

    pub fn check(&self) -> Result<(), ModelError> {
        self.branch.check()?;
        self.trunk.check()?;
        let (b_out, t_out) = (self.branch.outputs(), self.trunk.outputs());
        let want = match self.strategy {
            Strategy::SplitBoth => (self.latent * self.outputs, self.latent * self.outputs),
            Strategy::SplitBranch => (self.latent * self.outputs, self.latent),
            Strategy::SplitTrunk => (self.latent, self.latent * self.outputs),
        };
        if (b_out, t_out) != want || self.latent == 0 || self.outputs == 0 {
            return Err(ModelError::Shape {
                name: "branch and trunk outputs".into(),
                got: vec![b_out, t_out],
                want: vec![want.0, want.1],
            });
        }
        if let Some(s) = &self.scaling
            && !s.matches(self.sensors(), self.dims(), self.outputs)
        {
            return Err(ModelError::Shape {
                name: "scaling (means and positive standard deviations)".into(),
                got: vec![s.u.cols(), s.y.cols(), s.g.cols()],
                want: vec![self.sensors(), self.dims(), self.outputs],
            });
        }
        Ok(())
    }

    /// Sensors the branch reads.
    pub fn sensors(&self) -> usize {
        self.branch.inputs()
    }

    /// Coordinates of a location.
    pub fn dims(&self) -> usize {
        self.trunk.inputs()
    }

    /// Column of the branch output and of the trunk output that term i of output c uses.
    fn columns(&self, c: usize, i: usize) -> (usize, usize) {
        let p = self.latent;
        match self.strategy {
            Strategy::SplitBoth => (c * p + i, c * p + i),
            Strategy::SplitBranch => (c * p + i, i),
            Strategy::SplitTrunk => (i, c * p + i),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeepONetParams {
    pub branch: Params,
    pub trunk: Params,
    /// b0, one per output.
    pub bias: Vec<f64>,
}

impl DeepONetParams {
    /// Fresh parameters: each net from `init` with its own seed, b0 = 0.
    pub fn init(arch: &DeepONetArch, init: Init, seed: u64) -> Result<Self, ModelError> {
        arch.check()?;
        Ok(DeepONetParams {
            branch: Params::init(&arch.branch, init, seed.wrapping_mul(2))?,
            trunk: Params::init(&arch.trunk, init, seed.wrapping_mul(2) + 1)?,
            bias: vec![0.0; arch.outputs],
        })
    }

    /// (name, shape, values) in the order of the equivalent PyTorch module's state_dict.
    pub fn named(&self) -> Vec<(String, Vec<usize>, &[f64])> {
        fn prefixed<'a>(prefix: &str, p: &'a Params) -> Vec<(String, Vec<usize>, &'a [f64])> {
            p.named()
                .into_iter()
                .map(|(n, s, v)| (format!("{prefix}.{n}"), s, v))
                .collect()
        }
        let mut out = prefixed("branch", &self.branch);
        out.extend(prefixed("trunk", &self.trunk));
        out.push(("b".into(), vec![self.bias.len()], &self.bias[..]));
        out
    }

    pub fn flat(&self) -> Vec<f64> {
        let mut v = self.branch.flat();
        v.extend(self.trunk.flat());
        v.extend(&self.bias);
        v
    }

    pub fn set_flat(&mut self, values: &[f64]) {
        let (nb, nt) = (self.branch.flat().len(), self.trunk.flat().len());
        self.branch.set_flat(&values[..nb]);
        self.trunk.set_flat(&values[nb..nb + nt]);
        self.bias.copy_from_slice(&values[nb + nt..]);
    }
}

/// An aligned data set: every function observed at the same points.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignedData {
    /// Input functions at the sensors, [functions, sensors].
    pub u: Matrix,
    /// Locations, [points, dims].
    pub y: Matrix,
    /// G(u)(y) as [functions, points, outputs], row-major.
    pub g: Vec<f64>,
    pub outputs: usize,
}

impl AlignedData {
    pub fn functions(&self) -> usize {
        self.u.rows
    }

    pub fn points(&self) -> usize {
        self.y.rows
    }

    /// Whether the shapes fit each other and `arch`; the message says what does not.
    pub fn check(&self, arch: &DeepONetArch) -> Result<(), String> {
        check_inputs(arch, &self.u, &self.y)?;
        if self.outputs != arch.outputs {
            return Err(format!(
                "the data has {} outputs per point; the model has {}",
                self.outputs, arch.outputs
            ));
        }
        if self.g.len() != self.u.rows * self.y.rows * self.outputs {
            return Err(format!(
                "the outputs hold {} values; {} functions × {} points × {} outputs need {}",
                self.g.len(),
                self.u.rows,
                self.y.rows,
                self.outputs,
                self.u.rows * self.y.rows * self.outputs
            ));
        }
        if self.u.rows == 0 || self.y.rows == 0 {
            return Err("the data set is empty".into());
        }
        Ok(())
    }
}

/// How a data set pairs functions with locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataLayout {
    /// Every function at every location (a Cartesian product).
    Aligned,
    /// Sample r: function r at location r.
    Unaligned,
}

/// An unaligned data set: sample r pairs function `u[r]` with location `y[r]` and value
/// `g[r]` (DeepXDE's `Triple` data).
#[derive(Debug, Clone, PartialEq)]
pub struct UnalignedData {
    /// Input functions at the sensors, [samples, sensors].
    pub u: Matrix,
    /// Locations, [samples, dims].
    pub y: Matrix,
    /// G(u)(y), [samples, outputs].
    pub g: Matrix,
}

impl UnalignedData {
    pub fn samples(&self) -> usize {
        self.u.rows
    }

    pub fn outputs(&self) -> usize {
        self.g.cols
    }

    /// Whether the shapes fit each other and `arch`; the message says what does not.
    pub fn check(&self, arch: &DeepONetArch) -> Result<(), String> {
        check_inputs(arch, &self.u, &self.y)?;
        if self.g.cols != arch.outputs {
            return Err(format!(
                "the data has {} outputs per sample; the model has {}",
                self.g.cols, arch.outputs
            ));
        }
        if self.y.rows != self.u.rows || self.g.rows != self.u.rows {
            return Err(format!(
                "an unaligned data set needs as many locations and values as functions; it has \
                 {} functions, {} locations and {} values",
                self.u.rows, self.y.rows, self.g.rows
            ));
        }
        if self.u.rows == 0 {
            return Err("the data set is empty".into());
        }
        Ok(())
    }

    /// The rows `lo..hi` as a data set of their own.
    pub fn rows(&self, lo: usize, hi: usize) -> UnalignedData {
        UnalignedData {
            u: self.u.row_range(lo, hi),
            y: self.y.row_range(lo, hi),
            g: self.g.row_range(lo, hi),
        }
    }
}

/// A data set of either layout, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum DeepONetData {
    Aligned(AlignedData),
    Unaligned(UnalignedData),
}

impl DeepONetData {
    pub fn as_ref(&self) -> DataRef<'_> {
        match self {
            DeepONetData::Aligned(d) => DataRef::Aligned(d),
            DeepONetData::Unaligned(d) => DataRef::Unaligned(d),
        }
    }
}

/// A data set of either layout, borrowed: what trainers and metrics take (`&AlignedData`
/// and `&UnalignedData` convert into it).
#[derive(Debug, Clone, Copy)]
pub enum DataRef<'a> {
    Aligned(&'a AlignedData),
    Unaligned(&'a UnalignedData),
}

impl<'a> From<&'a AlignedData> for DataRef<'a> {
    fn from(d: &'a AlignedData) -> Self {
        DataRef::Aligned(d)
    }
}

impl<'a> From<&'a UnalignedData> for DataRef<'a> {
    fn from(d: &'a UnalignedData) -> Self {
        DataRef::Unaligned(d)
    }
}

impl<'a> From<&'a DeepONetData> for DataRef<'a> {
    fn from(d: &'a DeepONetData) -> Self {
        d.as_ref()
    }
}

impl<'a> DataRef<'a> {
    pub fn layout(self) -> DataLayout {
        match self {
            DataRef::Aligned(_) => DataLayout::Aligned,
            DataRef::Unaligned(_) => DataLayout::Unaligned,
        }
    }

    /// Branch inputs, trunk inputs and G's values (row-major, `outputs` per location).
    pub fn parts(self) -> (&'a Matrix, &'a Matrix, &'a [f64]) {
        match self {
            DataRef::Aligned(d) => (&d.u, &d.y, &d.g),
            DataRef::Unaligned(d) => (&d.u, &d.y, &d.g.data),
        }
    }

    pub fn outputs(self) -> usize {
        match self {
            DataRef::Aligned(d) => d.outputs,
            DataRef::Unaligned(d) => d.outputs(),
        }
    }

    pub fn check(self, arch: &DeepONetArch) -> Result<(), String> {
        match self {
            DataRef::Aligned(d) => d.check(arch),
            DataRef::Unaligned(d) => d.check(arch),
        }
    }

    /// DeepXDE's mean relative L2 error of predictions `g` (laid out as the data's values)
    /// per function (`mean_relative_l2`, `mean_relative_l2_by_function`).
    pub fn mean_relative_l2(self, g: &[f64]) -> f64 {
        match self {
            DataRef::Aligned(d) => mean_relative_l2(g, &d.g, d.points() * d.outputs),
            DataRef::Unaligned(d) => mean_relative_l2_by_function(&d.u, g, &d.g.data, d.outputs()),
        }
    }

    /// The same for each output on its own: with outputs of different scales the joint
    /// figure hides the small one.
    pub fn mean_relative_l2_per_output(self, g: &[f64]) -> Vec<f64> {
        match self {
            DataRef::Aligned(d) => mean_relative_l2_per_output(g, &d.g, d.points(), d.outputs),
            DataRef::Unaligned(d) => {
                let k = d.outputs();
                let pick = |v: &[f64], c: usize| -> Vec<f64> {
                    v.iter().skip(c).step_by(k).copied().collect()
                };
                (0..k)
                    .map(|c| {
                        mean_relative_l2_by_function(&d.u, &pick(g, c), &pick(&d.g.data, c), 1)
                    })
                    .collect()
            }
        }
    }
}

/// A `Scaling` from and for data sets (here, beside the data types, so that `scaling`
/// needs nothing of this file).
impl Scaling {
    /// Fitted to a training set (of unaligned data, over its samples).
    pub fn fit<'a>(data: impl Into<DataRef<'a>>) -> Scaling {
        let data = data.into();
        let (u, y, g) = data.parts();
        Scaling {
            u: Affine::fit(&u.data, u.cols),
            y: Affine::fit(&y.data, y.cols),
            g: Affine::fit(g, data.outputs()),
        }
    }

    /// A data set in the network's units.
    pub fn apply(&self, data: DataRef) -> DeepONetData {
        let (u, y, g) = data.parts();
        let (u, y) = self.inputs(u, y);
        let mut g = g.to_vec();
        self.g.scale(&mut g);
        match data {
            DataRef::Aligned(d) => DeepONetData::Aligned(AlignedData {
                u,
                y,
                g,
                outputs: d.outputs,
            }),
            DataRef::Unaligned(d) => DeepONetData::Unaligned(UnalignedData {
                u,
                y,
                g: Matrix {
                    rows: d.g.rows,
                    cols: d.g.cols,
                    data: g,
                },
            }),
        }
    }
}

impl AlignedData {
    /// Unaligned samples that observe each function at `per_function` of the points,
    /// drawn at random without replacement (seeded; function f's draws depend only on
    /// `seed` and f), in function order.
    pub fn to_unaligned(&self, per_function: usize, seed: u64) -> UnalignedData {
        let (nf, ny, k) = (self.functions(), self.points(), self.outputs);
        let per = per_function.min(ny);
        let (m, dims) = (self.u.cols, self.y.cols);
        let mut d = UnalignedData {
            u: Matrix::zeros(nf * per, m),
            y: Matrix::zeros(nf * per, dims),
            g: Matrix::zeros(nf * per, k),
        };
        for f in 0..nf {
            // A partial Fisher–Yates shuffle: the first `per` entries are the draws.
            let mut points: Vec<usize> = (0..ny).collect();
            for i in 0..per {
                let r = uniform_f64(seed, (f * ny + i) as u64, 17);
                let j = i + ((r * (ny - i) as f64) as usize).min(ny - i - 1);
                points.swap(i, j);
            }
            for (i, &p) in points[..per].iter().enumerate() {
                let r = f * per + i;
                d.u.data[r * m..(r + 1) * m].copy_from_slice(&self.u.data[f * m..(f + 1) * m]);
                d.y.data[r * dims..(r + 1) * dims]
                    .copy_from_slice(&self.y.data[p * dims..(p + 1) * dims]);
                let at = (f * ny + p) * k;
                d.g.data[r * k..(r + 1) * k].copy_from_slice(&self.g[at..at + k]);
            }
        }
        d
    }
}

/// Whether input functions `u` [functions, sensors] and points `y` [points, dims] fit
/// `arch`; the message says what does not.
pub fn check_inputs(arch: &DeepONetArch, u: &Matrix, y: &Matrix) -> Result<(), String> {
    if u.cols != arch.sensors() {
        return Err(format!(
            "the input functions have {} sensor values each; the branch net reads {}",
            u.cols,
            arch.sensors()
        ));
    }
    if y.cols != arch.dims() {
        return Err(format!(
            "the points have {} coordinates; the trunk net reads {}",
            y.cols,
            arch.dims()
        ));
    }
    Ok(())
}

/// What the aligned forward pass keeps for the backward pass.
pub struct AlignedForward {
    pub branch: cpu::Forward,
    pub trunk: cpu::Forward,
    /// G [functions, points, outputs], row-major.
    pub g: Vec<f64>,
}

/// G for every function (rows of `u` [functions, sensors]) at every location (rows of `y`
/// [points, dims]).
pub fn forward_aligned(
    arch: &DeepONetArch,
    p: &DeepONetParams,
    u: &Matrix,
    y: &Matrix,
) -> AlignedForward {
    let branch = cpu::forward(&arch.branch, &p.branch, u);
    let trunk = cpu::forward(&arch.trunk, &p.trunk, y);
    let (nf, ny, k) = (u.rows, y.rows, arch.outputs);
    let mut g = vec![0.0; nf * ny * k];
    for f in 0..nf {
        for j in 0..ny {
            for c in 0..k {
                let mut acc = p.bias[c];
                for i in 0..arch.latent {
                    let (bc, tc) = arch.columns(c, i);
                    acc += branch.y.at(f, bc) * trunk.y.at(j, tc);
                }
                g[(f * ny + j) * k + c] = acc;
            }
        }
    }
    AlignedForward { branch, trunk, g }
}

/// Gradients of a loss whose gradient with respect to G is `dg` (same layout as G).
pub fn backward_aligned(
    arch: &DeepONetArch,
    p: &DeepONetParams,
    fwd: &AlignedForward,
    u: &Matrix,
    y: &Matrix,
    dg: &[f64],
) -> DeepONetParams {
    let (nf, ny, k) = (u.rows, y.rows, arch.outputs);
    let (bo, to) = (fwd.branch.y.cols, fwd.trunk.y.cols);
    let mut db = Matrix::zeros(nf, bo);
    let mut dt = Matrix::zeros(ny, to);
    let mut dbias = vec![0.0; k];
    for f in 0..nf {
        for j in 0..ny {
            for c in 0..k {
                let d = dg[(f * ny + j) * k + c];
                dbias[c] += d;
                for i in 0..arch.latent {
                    let (bc, tc) = arch.columns(c, i);
                    db.data[f * bo + bc] += d * fwd.trunk.y.at(j, tc);
                    dt.data[j * to + tc] += d * fwd.branch.y.at(f, bc);
                }
            }
        }
    }
    DeepONetParams {
        branch: cpu::backward(&arch.branch, &p.branch, &fwd.branch, u, &db),
        trunk: cpu::backward(&arch.trunk, &p.trunk, &fwd.trunk, y, &dt),
        bias: dbias,
    }
}

/// What the unaligned forward pass keeps for the backward pass.
pub struct UnalignedForward {
    pub branch: cpu::Forward,
    pub trunk: cpu::Forward,
    /// G [samples, outputs].
    pub g: Matrix,
}

/// G for unaligned samples: row r pairs function `u[r]` with location `y[r]`; [n, outputs].
pub fn forward_unaligned(
    arch: &DeepONetArch,
    p: &DeepONetParams,
    u: &Matrix,
    y: &Matrix,
) -> UnalignedForward {
    let branch = cpu::forward(&arch.branch, &p.branch, u);
    let trunk = cpu::forward(&arch.trunk, &p.trunk, y);
    let k = arch.outputs;
    let mut g = Matrix::zeros(u.rows, k);
    for r in 0..u.rows {
        for c in 0..k {
            let mut acc = p.bias[c];
            for i in 0..arch.latent {
                let (bc, tc) = arch.columns(c, i);
                acc += branch.y.at(r, bc) * trunk.y.at(r, tc);
            }
            g.data[r * k + c] = acc;
        }
    }
    UnalignedForward { branch, trunk, g }
}

/// Gradients of a loss whose gradient with respect to G is `dg` [samples, outputs]: each
/// sample's δ reaches only its own branch and trunk rows.
pub fn backward_unaligned(
    arch: &DeepONetArch,
    p: &DeepONetParams,
    fwd: &UnalignedForward,
    u: &Matrix,
    y: &Matrix,
    dg: &[f64],
) -> DeepONetParams {
    let k = arch.outputs;
    let (bo, to) = (fwd.branch.y.cols, fwd.trunk.y.cols);
    let mut db = Matrix::zeros(u.rows, bo);
    let mut dt = Matrix::zeros(y.rows, to);
    let mut dbias = vec![0.0; k];
    for r in 0..u.rows {
        for c in 0..k {
            let d = dg[r * k + c];
            dbias[c] += d;
            for i in 0..arch.latent {
                let (bc, tc) = arch.columns(c, i);
                db.data[r * bo + bc] += d * fwd.trunk.y.at(r, tc);
                dt.data[r * to + tc] += d * fwd.branch.y.at(r, bc);
            }
        }
    }
    DeepONetParams {
        branch: cpu::backward(&arch.branch, &p.branch, &fwd.branch, u, &db),
        trunk: cpu::backward(&arch.trunk, &p.trunk, &fwd.trunk, y, &dt),
        bias: dbias,
    }
}

/// DeepXDE's "mean l2 relative error": the mean over functions of ‖G_f − T_f‖ / ‖T_f‖,
/// each norm over all of that function's points and outputs. `per_function` values each.
pub fn mean_relative_l2(g: &[f64], target: &[f64], per_function: usize) -> f64 {
    let (mut sum, mut count) = (0.0, 0);
    for (gf, tf) in g.chunks(per_function).zip(target.chunks(per_function)) {
        let diff: f64 = gf.iter().zip(tf).map(|(a, b)| (a - b) * (a - b)).sum();
        let norm: f64 = tf.iter().map(|b| b * b).sum();
        sum += (diff / norm).sqrt();
        count += 1;
    }
    sum / count.max(1) as f64
}

/// DeepXDE's metric for unaligned samples (`g`, `target` [samples, outputs]), per function:
/// samples whose sensor values (rows of `u`) are identical belong to one function and
/// share one norm. When every function has one sample this is DeepXDE's per-sample mean
/// for its `Triple` data; when the samples are an aligned set laid out flat it is the
/// aligned figure. A function whose targets are all zero has no relative error and is
/// left out of the mean (DeepXDE's would be infinite).
pub fn mean_relative_l2_by_function(u: &Matrix, g: &[f64], target: &[f64], outputs: usize) -> f64 {
    let mut groups: std::collections::HashMap<Vec<u64>, (f64, f64)> = Default::default();
    for (r, (gr, tr)) in g.chunks(outputs).zip(target.chunks(outputs)).enumerate() {
        let key = u.data[r * u.cols..(r + 1) * u.cols]
            .iter()
            .map(|v| v.to_bits())
            .collect();
        let (diff, norm) = groups.entry(key).or_default();
        for (a, b) in gr.iter().zip(tr) {
            *diff += (a - b) * (a - b);
            *norm += b * b;
        }
    }
    let ratios: Vec<f64> = groups
        .values()
        .filter(|(_, norm)| *norm > 0.0)
        .map(|(diff, norm)| (diff / norm).sqrt())
        .collect();
    ratios.iter().sum::<f64>() / ratios.len().max(1) as f64
}

/// `mean_relative_l2` of each output on its own, for [functions, points, outputs] data:
/// with outputs of different scales the joint figure hides the small one.
pub fn mean_relative_l2_per_output(
    g: &[f64],
    target: &[f64],
    points: usize,
    outputs: usize,
) -> Vec<f64> {
    let pick =
        |v: &[f64], c: usize| -> Vec<f64> { v.iter().skip(c).step_by(outputs).copied().collect() };
    (0..outputs)
        .map(|c| mean_relative_l2(&pick(g, c), &pick(target, c), points))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::EncodingKind;

    fn random(rows: usize, cols: usize, seed: u64) -> Matrix {
        Matrix {
            rows,
            cols,
            data: (0..rows * cols)
                .map(|i| 2.0 * uniform_f64(seed, i as u64, 5) - 1.0)
                .collect(),
        }
    }

    fn arch(strategy: Strategy, outputs: usize, encoded: bool) -> DeepONetArch {
        let encoding = encoded.then(|| Encoding {
            kind: EncodingKind::Gaussian,
            inputs: 2,
            features: 3,
            two_pi: true,
            order: "cos_then_sin".into(),
            sigma: Some(1.0),
            trainable: true,
        });
        DeepONetArch::new(
            NetSpec {
                inputs: 5,
                hidden: vec![7, 6],
                encoding: None,
            },
            NetSpec {
                inputs: 2,
                hidden: vec![6],
                encoding,
            },
            4,
            outputs,
            strategy,
            Activation::Tanh,
        )
    }

    /// Loss = mean of (G − T)² over everything, so dG = 2 (G − T) / count.
    fn loss_and_grad(
        a: &DeepONetArch,
        p: &DeepONetParams,
        u: &Matrix,
        y: &Matrix,
        t: &[f64],
    ) -> (f64, DeepONetParams) {
        let fwd = forward_aligned(a, p, u, y);
        let n = t.len() as f64;
        let loss = fwd
            .g
            .iter()
            .zip(t)
            .map(|(g, t)| (g - t).powi(2))
            .sum::<f64>()
            / n;
        let dg: Vec<f64> = fwd
            .g
            .iter()
            .zip(t)
            .map(|(g, t)| 2.0 * (g - t) / n)
            .collect();
        (loss, backward_aligned(a, p, &fwd, u, y, &dg))
    }

    /// The largest difference between `grad` and central differences of `loss` at `p`
    /// over every parameter (h = 1e-6: the error of the difference, ~h² · third
    /// derivative, and rounding, ~1e-16 / h, both near 1e-10).
    fn worst_difference(
        p: &DeepONetParams,
        grad: &DeepONetParams,
        loss: impl Fn(&DeepONetParams) -> f64,
    ) -> f64 {
        let (x0, g) = (p.flat(), grad.flat());
        let h = 1e-6;
        let mut worst: f64 = 0.0;
        for i in 0..x0.len() {
            let mut q = p.clone();
            let mut x = x0.clone();
            x[i] += h;
            q.set_flat(&x);
            let up = loss(&q);
            x[i] -= 2.0 * h;
            q.set_flat(&x);
            let down = loss(&q);
            worst = worst.max(((up - down) / (2.0 * h) - g[i]).abs());
        }
        worst
    }

    /// Every parameter's gradient against central differences (`worst_difference`).
    #[test]
    fn gradients_match_central_differences() {
        for (strategy, outputs, encoded) in [
            (Strategy::SplitBoth, 1, false),
            (Strategy::SplitBoth, 2, true),
            (Strategy::SplitBranch, 3, false),
            (Strategy::SplitTrunk, 2, true),
        ] {
            let a = arch(strategy, outputs, encoded);
            let mut p = DeepONetParams::init(&a, Init::Glorot, 3).unwrap();
            p.bias
                .iter_mut()
                .enumerate()
                .for_each(|(c, b)| *b = 0.1 * c as f64);
            let (u, y) = (random(3, 5, 1), random(4, 2, 2));
            let t = random(3, 4 * outputs, 3).data;
            let (_, grad) = loss_and_grad(&a, &p, &u, &y, &t);
            let worst = worst_difference(&p, &grad, |q| loss_and_grad(&a, q, &u, &y, &t).0);
            assert!(worst < 1e-8, "{strategy:?} {outputs}: {worst:e}");
        }
    }

    /// The unaligned backward pass against central differences (as above), with samples
    /// that repeat a function and a location.
    #[test]
    fn unaligned_gradients_match_central_differences() {
        for (strategy, outputs, encoded) in [
            (Strategy::SplitBoth, 1, true),
            (Strategy::SplitBranch, 2, false),
            (Strategy::SplitTrunk, 3, true),
        ] {
            let a = arch(strategy, outputs, encoded);
            let mut p = DeepONetParams::init(&a, Init::Glorot, 5).unwrap();
            p.bias
                .iter_mut()
                .enumerate()
                .for_each(|(c, b)| *b = 0.1 * c as f64 - 0.05);
            let (mut u, mut y) = (random(6, 5, 11), random(6, 2, 12));
            let (u0, y0) = (u.data[..5].to_vec(), y.data[..2].to_vec());
            u.data[15..20].copy_from_slice(&u0);
            y.data[8..10].copy_from_slice(&y0);
            let t = random(6, outputs, 13).data;
            let loss_and_grad = |q: &DeepONetParams| {
                let fwd = forward_unaligned(&a, q, &u, &y);
                let n = t.len() as f64;
                let loss: f64 = fwd
                    .g
                    .data
                    .iter()
                    .zip(&t)
                    .map(|(g, t)| (g - t).powi(2))
                    .sum();
                let dg: Vec<f64> = fwd
                    .g
                    .data
                    .iter()
                    .zip(&t)
                    .map(|(g, t)| 2.0 * (g - t) / n)
                    .collect();
                (loss / n, backward_unaligned(&a, q, &fwd, &u, &y, &dg))
            };
            let worst = worst_difference(&p, &loss_and_grad(&p).1, |q| loss_and_grad(q).0);
            assert!(worst < 1e-8, "{strategy:?} {outputs}: {worst:e}");
        }
    }

    /// The unaligned form of the aligned data gives the same values; the relative error
    /// is DeepXDE's per-function mean.
    #[test]
    fn unaligned_agrees_with_aligned_and_metric_is_per_function() {
        let a = arch(Strategy::SplitBranch, 2, true);
        let p = DeepONetParams::init(&a, Init::Glorot, 9).unwrap();
        let (u, y) = (random(3, 5, 4), random(4, 2, 5));
        let aligned = forward_aligned(&a, &p, &u, &y).g;
        let mut uu = Matrix::zeros(12, 5);
        let mut yy = Matrix::zeros(12, 2);
        for f in 0..3 {
            for j in 0..4 {
                let r = f * 4 + j;
                uu.data[r * 5..r * 5 + 5].copy_from_slice(&u.data[f * 5..f * 5 + 5]);
                yy.data[r * 2..r * 2 + 2].copy_from_slice(&y.data[j * 2..j * 2 + 2]);
            }
        }
        let unaligned = forward_unaligned(&a, &p, &uu, &yy).g;
        for (x, z) in aligned.iter().zip(&unaligned.data) {
            assert!((x - z).abs() < 1e-15);
        }
        let t = [1.0, 0.0, 0.0, 2.0];
        let g = [1.5, 0.0, 0.0, 2.0];
        assert!((mean_relative_l2(&g, &t, 2) - 0.25).abs() < 1e-15);
        // The same values as four one-output samples of two functions (rows 0, 1 and
        // 2, 3), in another order; a third function with zero targets is left out.
        let u2 = Matrix {
            rows: 6,
            cols: 1,
            data: vec![7.0, 8.0, 7.0, 8.0, 9.0, 9.0],
        };
        let (g2, t2) = (
            [1.5, 0.0, 0.0, 2.0, 1.0, 3.0],
            [1.0, 0.0, 0.0, 2.0, 0.0, 0.0],
        );
        assert!((mean_relative_l2_by_function(&u2, &g2, &t2, 1) - 0.25).abs() < 1e-15);
        // Two of the four points of each function, each value where the aligned set has it.
        let data = AlignedData {
            u: u.clone(),
            y: y.clone(),
            g: aligned.clone(),
            outputs: 2,
        };
        let un = data.to_unaligned(2, 3);
        assert_eq!((un.samples(), un.outputs()), (6, 2));
        for r in 0..6 {
            let f = r / 2;
            assert_eq!(un.u.data[r * 5..r * 5 + 5], u.data[f * 5..f * 5 + 5]);
            let j = (0..4).find(|&j| y.data[j * 2..j * 2 + 2] == un.y.data[r * 2..r * 2 + 2]);
            let j = j.expect("a point of the aligned set");
            assert_eq!(
                un.g.data[r * 2..r * 2 + 2],
                aligned[(f * 4 + j) * 2..(f * 4 + j) * 2 + 2]
            );
        }
        assert_ne!(un.y.data[..2], un.y.data[2..4], "drawn without replacement");
        let named: Vec<String> = p.named().into_iter().map(|(n, _, _)| n).collect();
        assert_eq!(named[0], "branch.layers.0.weight");
        assert!(named.contains(&"trunk.encoding.B".to_string()));
        assert_eq!(named.last().map(String::as_str), Some("b"));
    }
}
