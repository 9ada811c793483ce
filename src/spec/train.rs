//! A DeepONet training run as its config file states it (`phaseflow train deeponet
//! --config`): the data, the model and the optimisation. Ranges are checked while the file
//! is read, so a bad value points at its place in the file.

use super::config_file::{read_toml, relative_to_config};
use super::error::{FieldError, SpecError};
use super::validate;
use crate::nn::{Activation, Strategy};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A training config: `[data]`, `[model]`, `[train]` and `out`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    pub data: TrainDataSpec,
    #[serde(default)]
    pub model: ModelSpec,
    #[serde(default)]
    pub train: TrainingSpec,
    pub out: Option<PathBuf>,
}

/// `[data]`: the data sets (`.npz`, aligned or unaligned).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainDataSpec {
    pub train: PathBuf,
    /// Reported at every evaluation and at the end; never used to choose the best step.
    pub test: Option<PathBuf>,
    /// Share of the training functions (samples, when unaligned) held out for validation:
    /// the best step is chosen on it (on the training set itself when 0).
    #[serde(default, deserialize_with = "validate::share")]
    pub validation: f64,
}

/// `[model]`: the DeepONet's shape and initialisation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSpec {
    pub branch: Vec<usize>,
    pub trunk: Vec<usize>,
    pub latent: usize,
    pub activation: Activation,
    pub strategy: Strategy,
    pub init: String,
    pub seed: u64,
    /// Scale inputs and outputs to zero mean and unit spread (fitted on the training data,
    /// stored in the checkpoint).
    pub normalize: bool,
}

impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec {
            branch: vec![40],
            trunk: vec![40],
            latent: 40,
            activation: Activation::Relu,
            strategy: Strategy::SplitBoth,
            init: "glorot".into(),
            seed: 1,
            normalize: false,
        }
    }
}

/// `[train]`: the optimisation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingSpec {
    #[serde(deserialize_with = "validate::at_least_one")]
    pub iterations: u32,
    #[serde(deserialize_with = "validate::positive")]
    pub lr: f64,
    pub schedule: String,
    #[serde(deserialize_with = "validate::non_negative")]
    pub weight_decay: f64,
    #[serde(deserialize_with = "validate::batch")]
    pub functions_per_batch: Option<usize>,
    #[serde(deserialize_with = "validate::batch")]
    pub points_per_batch: Option<usize>,
    #[serde(deserialize_with = "validate::batch")]
    pub samples_per_batch: Option<usize>,
    #[serde(deserialize_with = "validate::at_least_one")]
    pub evaluate_every: u32,
    /// Stop after this many evaluations without a better validation error (0: never).
    pub patience: u32,
    pub seed: u64,
}

impl Default for TrainingSpec {
    fn default() -> Self {
        TrainingSpec {
            iterations: 10_000,
            lr: 1e-3,
            schedule: "constant".into(),
            weight_decay: 0.0,
            functions_per_batch: None,
            points_per_batch: None,
            samples_per_batch: None,
            evaluate_every: 1000,
            patience: 0,
            seed: 0,
        }
    }
}

/// The widest hidden layer the fused network kernels (which DeepONet training runs on)
/// take.
pub use crate::nn::mlp::MAX_FUSED_WIDTH;

impl TrainSpec {
    /// What the file's types cannot say: the model's widths, its initialisation and
    /// the optimiser's settings together, each an error at its key.
    pub fn check(&self) -> Result<(), FieldError> {
        let m = &self.model;
        for (key, widths) in [("model.branch", &m.branch), ("model.trunk", &m.trunk)] {
            for (i, &w) in widths.iter().enumerate() {
                if w == 0 || w > MAX_FUSED_WIDTH {
                    return Err(FieldError::new(
                        format!("{key}[{i}]"),
                        format!(
                            "= {w}: hidden widths must be from 1 to {MAX_FUSED_WIDTH}, the widest \
                             the fused network kernels that train a DeepONet take"
                        ),
                    ));
                }
            }
        }
        if m.latent == 0 {
            return Err(FieldError::new("model.latent", "must be at least 1"));
        }
        if !["glorot", "he"].contains(&m.init.as_str()) {
            return Err(FieldError::new(
                "model.init",
                format!("must be \"glorot\" or \"he\", not \"{}\"", m.init),
            ));
        }
        let t = &self.train;
        if t.weight_decay * t.lr >= 1.0 {
            return Err(FieldError::at("train.weight_decay")
                .key("train.weight_decay")
                .text(" × ")
                .key("train.lr")
                .text(format!(
                    " must be below 1 (each step scales the weights by 1 − lr·decay); got {} × {}",
                    t.weight_decay, t.lr
                )));
        }
        Ok(())
    }

    /// Reads a training config; problems point into the file, paths are relative to it.
    pub fn from_file(path: &Path) -> Result<TrainSpec, SpecError> {
        let mut config: TrainSpec = read_toml(path)?;
        relative_to_config(
            path,
            [
                Some(&mut config.data.train),
                config.data.test.as_mut(),
                config.out.as_mut(),
            ]
            .into_iter()
            .flatten(),
            None,
        );
        Ok(config)
    }
}
