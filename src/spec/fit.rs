//! An MLP fit (`phaseflow fit`) as data: what to fit (`target`), the network, how to
//! optimise (`train`), the seed and where to write. Every check names its key as a path from
//! the spec's root (`target.expr.points`, `network.hidden`, `train.lr`); the settings that
//! are wrong whatever the data are checked before any data is read.

use super::error::{FieldError, SpecError};
use super::fit_data::{FitData, Kind, check_expression, from_expression, from_image, from_samples};
use super::schedule::parse_schedule;
use crate::nn::{
    Activation, Architecture, Encoding, EncodingKind, Init, Loss, Optimizer, Params, Schedule,
    TrainConfig,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A whole fit request: `[target]`, `[network]`, `[train]`, `seed` and `out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitSpec {
    pub target: FitTarget,
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default)]
    pub train: FitSettings,
    /// Seed of the initial parameters and the minibatches.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Directory for the checkpoint, curves and pictures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<PathBuf>,
}

fn default_seed() -> u64 {
    1
}

/// What is fitted: one of `expr`, `data` or `image`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FitTarget {
    Expr(ExprTarget),
    Data(DataTarget),
    Image(ImageTarget),
}

/// An expression of x (and y, z) sampled on a grid; the test set is the cell midpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExprTarget {
    /// E.g. `sin(2*pi*3*x) + 0.5*sin(2*pi*17*x)`.
    pub text: String,
    /// 1–3 inputs, named x, y, z.
    #[serde(default = "one")]
    pub inputs: usize,
    /// [LO, HI], the range of every input.
    #[serde(default = "unit_domain")]
    pub domain: (f64, f64),
    /// Grid points per input [default: 256, 64 or 16 for 1, 2 or 3 inputs].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<usize>,
}

fn one() -> usize {
    1
}

fn unit_domain() -> (f64, f64) {
    (0.0, 1.0)
}

impl ExprTarget {
    /// Grid points per input, given or by the number of inputs.
    pub fn points(&self) -> usize {
        self.points.unwrap_or(match self.inputs {
            1 => 256,
            2 => 64,
            _ => 16,
        })
    }
}

/// Rows of an `.npy` of shape [n, inputs + outputs].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataTarget {
    pub file: PathBuf,
    /// Leading input columns [default: all but the last].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<usize>,
    /// Test samples with the same columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<PathBuf>,
}

/// A PNG (grey or RGB) as a function of the pixel position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageTarget {
    pub file: PathBuf,
    /// Train on every other pixel in each direction, test on the other three quarters.
    #[serde(default)]
    pub holdout: bool,
}

/// The Fourier-feature encoding in front of the MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FitEncoding {
    /// B ~ N(0, σ²), σ in cycles per unit of each input's range.
    Gaussian,
    /// Log-spaced frequencies up to σ per input.
    Positional,
    /// [cos 2πx, sin 2πx].
    Basic,
    /// The inputs go straight into the MLP.
    None,
}

/// The network: `[network]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSpec {
    /// Hidden layer widths [default: 64,64,64; 128,128,128,128 for images].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<usize>>,
    pub activation: Activation,
    pub encoding: FitEncoding,
    /// Columns of B (the encoding has twice as many outputs).
    pub features: usize,
    /// Scale of the encoding (Gaussian: standard deviation of B; positional: top
    /// frequency), per unit of each input's range.
    pub sigma: f64,
    /// Train B as well.
    pub train_encoding: bool,
    /// [default: he for relu, siren for sin, glorot otherwise]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<Init>,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            hidden: None,
            activation: Activation::Relu,
            encoding: FitEncoding::Gaussian,
            features: 64,
            sigma: 10.0,
            train_encoding: false,
            init: None,
        }
    }
}

/// The loss a fit minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitLoss {
    Mse,
    RelL2,
}

/// How a fit optimises: `[train]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FitSettings {
    /// Optimiser steps.
    pub steps: u32,
    pub lr: f64,
    /// `constant`, `cosine` or `step:EVERY:GAMMA`.
    pub schedule: String,
    /// Decoupled (AdamW) weight decay.
    pub weight_decay: f64,
    /// Plain SGD with momentum 0.9 instead of Adam.
    pub sgd: bool,
    pub loss: FitLoss,
    /// Samples per step; all of them up to 65,536, else 16,384, when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// Clip the gradient to this global L2 norm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<f64>,
    /// Read the loss back every K steps [default: steps/200].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_every: Option<u32>,
}

impl Default for FitSettings {
    fn default() -> Self {
        FitSettings {
            steps: 5000,
            lr: 1e-3,
            schedule: "constant".into(),
            weight_decay: 0.0,
            sgd: false,
            loss: FitLoss::Mse,
            batch: None,
            clip: None,
            log_every: None,
        }
    }
}

fn positive_finite(field: &str, v: f64) -> Result<(), FieldError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("must be a positive, finite number; got {v}"),
        ))
    }
}

impl FitSettings {
    /// The first wrong setting, at its key under `train`: a step count or interval of 0, a
    /// rate that is not a positive, finite number, a decay or clipping norm the optimiser
    /// cannot use, a schedule it cannot read.
    pub fn check(&self) -> Result<(), FieldError> {
        if self.steps == 0 {
            return Err(FieldError::new("train.steps", "must be at least 1"));
        }
        if self.log_every == Some(0) {
            return Err(FieldError::new(
                "train.log_every",
                "must be at least 1 (the loss is read back every K steps)",
            ));
        }
        if self.batch == Some(0) {
            return Err(FieldError::new("train.batch", "must be at least 1"));
        }
        positive_finite("train.lr", self.lr)?;
        // The optimiser's own checks, each at the key it is about.
        let optimizer = self.optimizer()?;
        optimizer.check().map_err(|e| {
            use crate::nn::OptimizerError as E;
            let field = match e {
                E::LearningRate(_) => "train.lr",
                E::WeightDecay(_) | E::DecayTooLarge { .. } => "train.weight_decay",
                _ => "train.schedule",
            };
            FieldError::at(field)
                .text(e.to_string())
                .text(" (")
                .key(field)
                .text(")")
        })?;
        if let Some(c) = self.clip
            && !(c.is_finite() && c > 0.0)
        {
            return Err(FieldError::at("train.clip")
                .text(format!(
                    "the gradient clipping norm must be a positive, finite number; got {c} ("
                ))
                .key("train.clip")
                .text(")"));
        }
        Ok(())
    }

    /// The learning-rate schedule over `steps`.
    pub fn schedule(&self) -> Result<Schedule, FieldError> {
        parse_schedule(&self.schedule, self.steps, "train.schedule")
    }

    /// The optimiser these settings ask for.
    pub fn optimizer(&self) -> Result<Optimizer, FieldError> {
        Ok(Optimizer {
            sgd: self.sgd,
            lr: self.lr,
            weight_decay: self.weight_decay,
            schedule: self.schedule()?,
            ..Optimizer::default()
        })
    }

    /// Read the loss back every this many steps.
    pub fn log_every(&self) -> u32 {
        self.log_every.unwrap_or((self.steps / 200).max(1))
    }

    /// The trainer's settings for `m` training samples: a batch larger than the data is
    /// refused; without one, all samples up to 65,536, else 16,384 per step.
    pub fn train_config(&self, m: usize, seed: u64) -> Result<TrainConfig, FieldError> {
        let batch = match self.batch {
            Some(b) if b > m => {
                return Err(FieldError::at("train.batch")
                    .key("train.batch")
                    .text(format!(
                        " {b} is more than the {m} training samples; use at most {m}"
                    )));
            }
            Some(b) => Some(b),
            None if m > 1 << 16 => Some(1 << 14),
            None => None,
        };
        Ok(TrainConfig {
            optimizer: self.optimizer()?,
            loss: match self.loss {
                FitLoss::Mse => Loss::Mse,
                FitLoss::RelL2 => Loss::RelativeL2,
            },
            batch,
            clip: self.clip,
            seed,
        })
    }
}

impl NetworkSpec {
    /// What is wrong whatever the data: a hidden width of 0, an encoding without features
    /// or with a scale that is not a positive, finite number.
    pub fn check(&self) -> Result<(), FieldError> {
        if let Some(hidden) = &self.hidden
            && hidden.contains(&0)
        {
            return Err(FieldError::new(
                "network.hidden",
                "widths must be at least 1",
            ));
        }
        if self.encoding != FitEncoding::None {
            if self.features == 0 {
                return Err(FieldError::new("network.features", "must be at least 1"));
            }
            positive_finite("network.sigma", self.sigma)?;
        }
        Ok(())
    }

    /// The architecture for `data`; its size is checked before any parameter exists.
    pub fn architecture(&self, data: &FitData) -> Result<Architecture, FieldError> {
        self.check()?;
        let hidden = self.hidden.clone().unwrap_or_else(|| match data.kind {
            Kind::Image(_) => vec![128; 4],
            _ => vec![64; 3],
        });
        let inputs = data.train_x.cols;
        let kind = match self.encoding {
            FitEncoding::None => None,
            FitEncoding::Gaussian => Some(EncodingKind::Gaussian),
            FitEncoding::Positional => Some(EncodingKind::Positional),
            FitEncoding::Basic => Some(EncodingKind::Basic),
        };
        let encoding = kind.map(|kind| Encoding {
            kind,
            inputs,
            // The basic encoding has one frequency per input: B is the identity.
            features: if kind == EncodingKind::Basic {
                inputs
            } else {
                self.features
            },
            two_pi: true,
            order: "cos_then_sin".into(),
            sigma: (kind != EncodingKind::Basic).then_some(self.sigma),
            trainable: self.train_encoding,
        });
        let arch = Architecture::mlp(
            inputs,
            encoding,
            &hidden,
            data.train_y.cols,
            self.activation,
        );
        // The widths may be absurd: refused before any allocation.
        arch.check().map_err(|e| {
            FieldError::at("network.hidden")
                .text(format!("{e} ("))
                .key("network.hidden")
                .text(", ")
                .key("network.features")
                .text(")")
        })?;
        Ok(arch)
    }

    /// The initialisation asked for, or the one that suits the activation.
    pub fn init(&self) -> Init {
        self.init.unwrap_or(match self.activation {
            Activation::Relu => Init::He,
            Activation::Sin => Init::Siren,
            _ => Init::Glorot,
        })
    }

    /// Initial parameters; B's row for each input is divided by that input's range, so σ
    /// counts cycles per range whatever the units (the encoding's kernel only depends on
    /// differences of inputs, so the range's offset does not matter).
    pub fn initial_params(
        &self,
        arch: &Architecture,
        widths: &[f64],
        seed: u64,
    ) -> Result<Params, SpecError> {
        let mut params =
            Params::init(arch, self.init(), seed).map_err(|e| SpecError::Input(e.to_string()))?;
        if let Some(b) = &mut params.b {
            for (row, w) in b.data.chunks_mut(b.cols).zip(widths) {
                row.iter_mut().for_each(|v| *v /= w);
            }
        }
        Ok(params)
    }
}

impl FitTarget {
    /// What is wrong with the target before any file is read or expression parsed.
    pub fn check(&self) -> Result<(), FieldError> {
        match self {
            FitTarget::Expr(e) => check_expression(e.inputs, e.domain, e.points()),
            FitTarget::Data(d) if d.inputs == Some(0) => {
                Err(FieldError::new("target.data.inputs", "must be at least 1"))
            }
            _ => Ok(()),
        }
    }

    /// The samples the target stands for; `expr_name` is what diagnostics call an
    /// expression's text (the command line: `<--expr>`).
    pub fn load(&self, expr_name: &str) -> Result<FitData, SpecError> {
        match self {
            FitTarget::Expr(e) => {
                from_expression(&e.text, expr_name, e.inputs, e.domain, e.points())
            }
            FitTarget::Data(d) => from_samples(&d.file, d.test.as_deref(), d.inputs),
            FitTarget::Image(i) => from_image(&i.file, i.holdout),
        }
    }

    /// The files the target reads, for a config file's relative paths.
    pub fn paths_mut(&mut self) -> Vec<&mut PathBuf> {
        match self {
            FitTarget::Expr(_) => Vec::new(),
            FitTarget::Data(d) => std::iter::once(&mut d.file)
                .chain(d.test.as_mut())
                .collect(),
            FitTarget::Image(i) => vec![&mut i.file],
        }
    }
}

impl FitSpec {
    /// A fit of `target` with every other key at its default.
    pub fn new(target: FitTarget) -> FitSpec {
        FitSpec {
            target,
            network: NetworkSpec::default(),
            train: FitSettings::default(),
            seed: default_seed(),
            out: None,
        }
    }

    /// Everything that can be checked before any data is read.
    pub fn check(&self) -> Result<(), FieldError> {
        self.train.check()?;
        self.network.check()?;
        self.target.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(text: &str) -> FitSpec {
        FitSpec::new(FitTarget::Expr(ExprTarget {
            text: text.into(),
            inputs: 1,
            domain: (0.0, 1.0),
            points: None,
        }))
    }

    #[test]
    fn each_bad_setting_is_named() {
        type Spoil = fn(&mut FitSpec);
        let bad: [(Spoil, &str); 12] = [
            (|s| s.train.steps = 0, "train.steps"),
            (|s| s.train.log_every = Some(0), "train.log_every"),
            (|s| s.train.batch = Some(0), "train.batch"),
            (|s| s.train.lr = f64::NAN, "train.lr"),
            (|s| s.train.weight_decay = -1.0, "train.weight_decay"),
            (|s| s.train.weight_decay = 2000.0, "train.weight_decay"),
            (|s| s.train.clip = Some(0.0), "train.clip"),
            (|s| s.train.schedule = "step:0:0.5".into(), "train.schedule"),
            (|s| s.network.sigma = -1.0, "network.sigma"),
            (|s| s.network.hidden = Some(vec![8, 0]), "network.hidden"),
            (|s| s.network.features = 0, "network.features"),
            (
                |s| {
                    if let FitTarget::Expr(e) = &mut s.target {
                        e.points = Some(1)
                    }
                },
                "target.expr.points",
            ),
        ];
        for (spoil, field) in bad {
            let mut spec = expr("x");
            spoil(&mut spec);
            let e = spec.check().unwrap_err();
            assert_eq!(e.field, field, "{e}");
            // A message names only the key at fault.
            assert!(e.keys().all(|k| k == field), "{e}");
        }
        assert!(expr("x").check().is_ok());
        let mut odd = expr("x");
        odd.train.schedule = "sometimes".into();
        let e = odd.check().unwrap_err();
        assert!(e.to_string().starts_with("train.schedule must be"), "{e}");
        // Without an encoding its scale is not used, so not checked.
        let mut plain = expr("x");
        plain.network.encoding = FitEncoding::None;
        plain.network.sigma = f64::NAN;
        assert!(plain.check().is_ok());
    }

    #[test]
    fn defaults_are_the_command_lines() {
        let spec: FitSpec = toml::from_str("[target.expr]\ntext = 'sin(x)'").unwrap();
        assert_eq!(spec, expr("sin(x)"));
        let FitTarget::Expr(e) = &spec.target else {
            unreachable!()
        };
        assert_eq!((e.points(), e.domain), (256, (0.0, 1.0)));
        assert_eq!(spec.seed, 1);
        assert_eq!((spec.train.steps, spec.train.lr), (5000, 1e-3));
        assert_eq!(spec.train.log_every(), 25);
        assert_eq!((spec.network.features, spec.network.sigma), (64, 10.0));
        assert_eq!(spec.network.init(), Init::He);
    }

    #[test]
    fn specs_round_trip_and_refuse_unknown_keys() {
        let text = r#"
            seed = 7
            out = "fit-out"
            [target.image]
            file = "cat.png"
            holdout = true
            [network]
            hidden = [32, 32]
            activation = "sin"
            encoding = "positional"
            init = "siren"
            [train]
            steps = 100
            loss = "rel_l2"
            schedule = "cosine"
        "#;
        let spec: FitSpec = toml::from_str(text).unwrap();
        assert!(matches!(&spec.target, FitTarget::Image(i) if i.holdout));
        assert_eq!(spec.train.loss, FitLoss::RelL2);
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<FitSpec>(&json).unwrap(), spec);
        for bad in [
            "[target.expr]\ntext = 'x'\npoint = 3",
            "[target.expr]\ntext = 'x'\n[train]\nrate = 1",
            "[target.expr]\ntext = 'x'\n[network]\nwidth = 1",
            "[target.data]\nfile = 'a.npy'\nholdout = true",
            "sigma = 3\n[target.expr]\ntext = 'x'",
        ] {
            assert!(toml::from_str::<FitSpec>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_batch_larger_than_the_data_is_refused() {
        let settings = FitSettings {
            batch: Some(100),
            ..FitSettings::default()
        };
        let e = settings.train_config(32, 1).unwrap_err();
        assert_eq!(e.field, "train.batch");
        assert!(
            e.to_string().contains("more than the 32 training samples"),
            "{e}"
        );
        assert_eq!(
            FitSettings::default()
                .train_config(1 << 17, 1)
                .unwrap()
                .batch,
            Some(1 << 14)
        );
    }
}
