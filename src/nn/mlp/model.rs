//! An MLP with an optional Fourier-feature encoding in front: its architecture (as JSON, the
//! same description checkpoints carry) and its parameters, named as PyTorch's `state_dict`
//! names those of the equivalent `nn.Sequential` (`encoding.B`, `layers.0.weight` [out, in],
//! `layers.0.bias`, `layers.2.weight`, ...: linear layers at even indices, activations
//! between them).

use crate::rng::{normal_f64, uniform_f64};
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum ModelError {
    #[error("the architecture needs at least two layer widths (input and output), got {0:?}")]
    TooFewLayers(Vec<usize>),
    #[error("layer widths must be at least 1: {0:?}")]
    ZeroWidth(Vec<usize>),
    #[error("the encoding produces {got} features but the first layer takes {want}")]
    EncodingWidth { got: usize, want: usize },
    #[error("parameter '{name}' has shape {got:?}; the architecture needs {want:?}")]
    Shape {
        name: String,
        got: Vec<usize>,
        want: Vec<usize>,
    },
    #[error("parameter '{0}' is missing")]
    Missing(String),
    #[error(
        "the network would have {parameters} parameters ({gib:.1} GiB as f64); at most \
         {MAX_PARAMETERS} are allowed: use narrower or fewer layers"
    )]
    TooLarge { parameters: u128, gib: f64 },
}

/// The most parameters a network may have: checked before any of them is allocated (a
/// width typed with two zeros too many would otherwise abort on the allocation).
pub const MAX_PARAMETERS: u128 = 1 << 28;

/// Element-wise nonlinearity after a linear layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    None,
    Relu,
    Tanh,
    /// GELU in its tanh form (PyTorch's `GELU(approximate="tanh")`).
    Gelu,
    /// x · sigmoid(x).
    Silu,
    /// sin(x), for SIREN-style networks.
    Sin,
}

impl Activation {
    pub const ALL: [Activation; 6] = [
        Activation::None,
        Activation::Relu,
        Activation::Tanh,
        Activation::Gelu,
        Activation::Silu,
        Activation::Sin,
    ];
}

const GELU_K: f64 = 0.7978845608028654; // sqrt(2/pi)
const GELU_C: f64 = 0.044715;

impl Activation {
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => 0.5 * x * (1.0 + (GELU_K * (x + GELU_C * x * x * x)).tanh()),
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::Sin => x.sin(),
        }
    }

    /// d apply / dx at x.
    pub fn derivative(self, x: f64) -> f64 {
        match self {
            Activation::None => 1.0,
            Activation::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Tanh => 1.0 - x.tanh().powi(2),
            Activation::Gelu => {
                let u = GELU_K * (x + GELU_C * x * x * x);
                let t = u.tanh();
                0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_C * x * x)
            }
            Activation::Silu => {
                let s = 1.0 / (1.0 + (-x).exp());
                s * (1.0 + x * (1.0 - s))
            }
            Activation::Sin => x.cos(),
        }
    }
}

/// How inputs become Fourier features: `z = (2π) x B`, features `[cos z, sin z]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingKind {
    /// B ~ N(0, σ²) (Tancik et al. 2020), trainable or fixed.
    Gaussian,
    /// Log-spaced frequencies σ^(j/m) per input (the "positional" encoding).
    Positional,
    /// B = identity: [cos 2πx, sin 2πx].
    Basic,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encoding {
    pub kind: EncodingKind,
    pub inputs: usize,
    /// Columns of B; the encoding outputs twice as many values.
    pub features: usize,
    /// Whether z carries the factor 2π.
    #[serde(default = "yes")]
    pub two_pi: bool,
    /// The only order there is: cosines first, then sines.
    #[serde(default = "cos_then_sin")]
    pub order: String,
    /// Scale of B (Gaussian: standard deviation; positional: largest frequency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma: Option<f64>,
    /// Whether training updates B.
    #[serde(default)]
    pub trainable: bool,
}

fn yes() -> bool {
    true
}

fn cos_then_sin() -> String {
    "cos_then_sin".into()
}

/// The architecture, as stored in a checkpoint's metadata (`architecture`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// "fourier_mlp" with an encoding, "mlp" without.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// Widths from the first linear layer's input to the output.
    pub layers: Vec<usize>,
    pub activation: Activation,
    pub output_activation: Activation,
}

impl Architecture {
    /// An MLP from `inputs` inputs (through `encoding`, when there is one) over the
    /// `hidden` widths to `outputs` outputs, `activation` after every hidden layer and
    /// none after the last.
    pub fn mlp(
        inputs: usize,
        encoding: Option<Encoding>,
        hidden: &[usize],
        outputs: usize,
        activation: Activation,
    ) -> Architecture {
        let mut layers = vec![encoding.as_ref().map_or(inputs, |e| 2 * e.features)];
        layers.extend_from_slice(hidden);
        layers.push(outputs);
        Architecture {
            kind: if encoding.is_some() {
                "fourier_mlp"
            } else {
                "mlp"
            }
            .into(),
            encoding,
            layers,
            activation,
            output_activation: Activation::None,
        }
    }

    pub fn check(&self) -> Result<(), ModelError> {
        if self.layers.len() < 2 {
            return Err(ModelError::TooFewLayers(self.layers.clone()));
        }
        if self.layers.contains(&0) {
            return Err(ModelError::ZeroWidth(self.layers.clone()));
        }
        if let Some(e) = &self.encoding
            && 2 * e.features as u128 != self.layers[0] as u128
        {
            return Err(ModelError::EncodingWidth {
                got: 2 * e.features,
                want: self.layers[0],
            });
        }
        let parameters = self.parameter_count();
        if parameters > MAX_PARAMETERS {
            return Err(ModelError::TooLarge {
                parameters,
                gib: parameters as f64 * 8.0 / (1u64 << 30) as f64,
            });
        }
        Ok(())
    }

    /// Weights and biases of the linear layers and the encoding's matrix, counted without
    /// overflow whatever the widths.
    pub fn parameter_count(&self) -> u128 {
        let linear: u128 = self
            .layers
            .windows(2)
            .map(|w| w[0] as u128 * w[1] as u128 + w[1] as u128)
            .sum();
        let encoding = self
            .encoding
            .as_ref()
            .map_or(0, |e| e.inputs as u128 * e.features as u128);
        linear + encoding
    }

    /// Inputs the network takes (before any encoding).
    pub fn inputs(&self) -> usize {
        self.encoding.as_ref().map_or(self.layers[0], |e| e.inputs)
    }

    pub fn outputs(&self) -> usize {
        *self.layers.last().expect("checked")
    }

    pub fn n_linear(&self) -> usize {
        self.layers.len() - 1
    }

    /// The neural-core benchmark's network (`phaseflow bench mlp-*`, `benches/kernels.rs`):
    /// Gaussian Fourier features of two inputs (64 frequencies, σ = 10, 128 outputs) →
    /// 3 × 64 ReLU → 1.
    pub fn benchmark_fourier_mlp() -> Architecture {
        let encoding = Encoding {
            kind: EncodingKind::Gaussian,
            inputs: 2,
            features: 64,
            two_pi: true,
            order: "cos_then_sin".into(),
            sigma: Some(10.0),
            trainable: false,
        };
        Architecture::mlp(2, Some(encoding), &[64, 64, 64], 1, Activation::Relu)
    }

    /// Counted operations of one sample's forward pass, for benchmark reports (the
    /// conventions of `ode::cost`: an FMA is two, a function one): the encoding's B v, 2π and
    /// one cos and one sin per feature; per linear layer a product and a sum per weight
    /// (the bias is the first sum); one per activated output.
    pub fn forward_flops(&self) -> u64 {
        let encoding = self.encoding.as_ref().map_or(0, |e| {
            (2 * e.inputs * e.features + usize::from(e.two_pi) * e.features + 2 * e.features) as u64
        });
        let layers: u64 = self
            .layers
            .windows(2)
            .enumerate()
            .map(|(l, w)| {
                let activated = self.activation_after(l) != Activation::None;
                (2 * w[0] * w[1] + if activated { w[1] } else { 0 }) as u64
            })
            .sum();
        encoding + layers
    }

    /// One sample's share of a training step: the forward pass, the loss gradient (two per
    /// output), the activation gradients (a product and a sum per weight, below the first
    /// layer, and one product per activated output) and the weight gradients (a product
    /// and a sum per weight, one sum per bias). A fixed encoding has no backward pass;
    /// the optimiser's update is per step, not per sample, and left out.
    pub fn training_flops(&self) -> u64 {
        let mut backward = 2 * self.outputs() as u64;
        for (l, w) in self.layers.windows(2).enumerate() {
            let activated = self.activation_after(l) != Activation::None;
            backward += (2 * w[0] * w[1] + w[1]) as u64 + if activated { w[1] as u64 } else { 0 };
            if l > 0 {
                backward += 2 * (w[0] * w[1]) as u64;
            }
        }
        if let Some(e) = self.encoding.as_ref().filter(|e| e.trainable) {
            backward += (4 * e.inputs * e.features + 2 * e.features) as u64;
        }
        self.forward_flops() + backward
    }

    /// The activation after linear layer `l`.
    pub fn activation_after(&self, l: usize) -> Activation {
        if l + 1 == self.n_linear() {
            self.output_activation
        } else {
            self.activation
        }
    }
}

/// A row-major matrix of f64.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Matrix {
    pub fn zeros(rows: usize, cols: usize) -> Matrix {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    pub fn at(&self, r: usize, c: usize) -> f64 {
        self.data[r * self.cols + c]
    }

    /// Rows `lo..hi`.
    pub fn row_range(&self, lo: usize, hi: usize) -> Matrix {
        Matrix {
            rows: hi - lo,
            cols: self.cols,
            data: self.data[lo * self.cols..hi * self.cols].to_vec(),
        }
    }
}

/// A tensor by name: (shape, values).
pub type NamedTensor = (Vec<usize>, Vec<f64>);

/// Parameters of a network (f64 on the host; the device holds f32 copies).
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Encoding matrix B [inputs, features].
    pub b: Option<Matrix>,
    /// Weights [out, in] per linear layer.
    pub weights: Vec<Matrix>,
    pub biases: Vec<Vec<f64>>,
}

/// How the linear layers are initialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// Glorot/Xavier uniform (tanh, sigmoid-like, linear).
    Glorot,
    /// He/Kaiming uniform (ReLU-like).
    He,
    /// SIREN (Sitzmann et al. 2020): first layer U(-1/in, 1/in), others
    /// U(-sqrt(6/in)/30, sqrt(6/in)/30), for sin activations with ω0 = 30 folded in.
    Siren,
}

impl Params {
    /// Fresh parameters: weights from `init`, biases zero, B from the encoding's kind.
    pub fn init(arch: &Architecture, init: Init, seed: u64) -> Result<Params, ModelError> {
        arch.check()?;
        let b = arch.encoding.as_ref().map(|e| encoding_matrix(e, seed));
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for l in 0..arch.n_linear() {
            let (fan_in, fan_out) = (arch.layers[l], arch.layers[l + 1]);
            let bound = match init {
                Init::Glorot => (6.0 / (fan_in + fan_out) as f64).sqrt(),
                Init::He => (6.0 / fan_in as f64).sqrt(),
                Init::Siren if l == 0 => 1.0 / fan_in as f64,
                Init::Siren => (6.0 / fan_in as f64).sqrt() / 30.0,
            };
            let stream = 16 + 2 * l as u32;
            let data = (0..fan_out * fan_in)
                .map(|k| bound * (2.0 * uniform_f64(seed, k as u64, stream) - 1.0))
                .collect();
            weights.push(Matrix {
                rows: fan_out,
                cols: fan_in,
                data,
            });
            biases.push(vec![0.0; fan_out]);
        }
        Ok(Params { b, weights, biases })
    }

    /// Zero parameters of the architecture's shapes (to be filled with `set_flat`).
    pub fn zeros(arch: &Architecture) -> Params {
        Params {
            b: arch
                .encoding
                .as_ref()
                .map(|e| Matrix::zeros(e.inputs, e.features)),
            weights: (0..arch.n_linear())
                .map(|l| Matrix::zeros(arch.layers[l + 1], arch.layers[l]))
                .collect(),
            biases: arch.layers[1..].iter().map(|&w| vec![0.0; w]).collect(),
        }
    }

    /// (PyTorch name, shape, values) of every parameter, in state_dict order.
    pub fn named(&self) -> Vec<(String, Vec<usize>, &[f64])> {
        let mut out = Vec::new();
        if let Some(b) = &self.b {
            out.push(("encoding.B".to_string(), vec![b.rows, b.cols], &b.data[..]));
        }
        for (l, (w, bias)) in self.weights.iter().zip(&self.biases).enumerate() {
            out.push((
                format!("layers.{}.weight", 2 * l),
                vec![w.rows, w.cols],
                &w.data[..],
            ));
            out.push((
                format!("layers.{}.bias", 2 * l),
                vec![bias.len()],
                &bias[..],
            ));
        }
        out
    }

    /// Parameters from named tensors, checked against the architecture.
    pub fn from_named(
        arch: &Architecture,
        get: &dyn Fn(&str) -> Option<NamedTensor>,
    ) -> Result<Params, ModelError> {
        arch.check()?;
        let fetch = |name: &str, want: Vec<usize>| -> Result<Vec<f64>, ModelError> {
            let (shape, data) = get(name).ok_or_else(|| ModelError::Missing(name.into()))?;
            if shape != want {
                return Err(ModelError::Shape {
                    name: name.into(),
                    got: shape,
                    want,
                });
            }
            Ok(data)
        };
        let b = match &arch.encoding {
            Some(e) => Some(Matrix {
                rows: e.inputs,
                cols: e.features,
                data: fetch("encoding.B", vec![e.inputs, e.features])?,
            }),
            None => None,
        };
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for l in 0..arch.n_linear() {
            let (i, o) = (arch.layers[l], arch.layers[l + 1]);
            weights.push(Matrix {
                rows: o,
                cols: i,
                data: fetch(&format!("layers.{}.weight", 2 * l), vec![o, i])?,
            });
            biases.push(fetch(&format!("layers.{}.bias", 2 * l), vec![o])?);
        }
        Ok(Params { b, weights, biases })
    }

    /// Every parameter in `named` order, flattened (for optimisers and tests).
    pub fn flat(&self) -> Vec<f64> {
        self.named()
            .into_iter()
            .flat_map(|(_, _, v)| v.to_vec())
            .collect()
    }

    /// The inverse of `flat`.
    pub fn set_flat(&mut self, values: &[f64]) {
        let mut at = 0;
        let mut take = |dst: &mut [f64]| {
            dst.copy_from_slice(&values[at..at + dst.len()]);
            at += dst.len();
        };
        if let Some(b) = self.b.as_mut() {
            take(&mut b.data);
        }
        for (w, bias) in self.weights.iter_mut().zip(self.biases.iter_mut()) {
            take(&mut w.data);
            take(bias);
        }
    }
}

/// B for an encoding: Gaussian N(0, σ²) (σ default 10), positional log-spaced σ^(j/m)
/// along each input, basic identity.
fn encoding_matrix(e: &Encoding, seed: u64) -> Matrix {
    let mut b = Matrix::zeros(e.inputs, e.features);
    match e.kind {
        EncodingKind::Gaussian => {
            let sigma = e.sigma.unwrap_or(10.0);
            for (k, v) in b.data.iter_mut().enumerate() {
                *v = sigma * normal_f64(seed, k as u64, 2);
            }
        }
        EncodingKind::Positional => {
            let sigma = e.sigma.unwrap_or(10.0);
            let per = (e.features / e.inputs).max(1);
            for f in 0..e.features {
                let (i, j) = (f / per, f % per);
                if i < e.inputs {
                    b.data[i * e.features + f] = sigma.powf(j as f64 / per as f64);
                }
            }
        }
        EncodingKind::Basic => {
            for i in 0..e.inputs.min(e.features) {
                b.data[i * e.features + i] = 1.0;
            }
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [1, 4, 1] ReLU by hand. Forward: 2·1·4 + 4 activations, then 2·4·1: 20. Backward:
    /// loss 2; first layer's weight gradients 2·4 + 4 biases + 4 activation derivatives
    /// (16); second layer's weight gradients 2·4 + 1 and δ for the layer below 2·4 (17).
    #[test]
    fn operations_counted_by_hand() {
        let a = Architecture::mlp(1, None, &[4], 1, Activation::Relu);
        assert_eq!(a.forward_flops(), 20);
        assert_eq!(a.training_flops(), 20 + 2 + 16 + 17);
    }
}
