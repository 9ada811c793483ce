//! A DeepONet training run as its config file states it (`phaseflow train deeponet
//! --config`): the data, the model and the optimisation. Ranges are checked while the file
//! is read, so a bad value points at its place in the file.

use super::config_file::{read_toml, relative_to_config};
use super::error::{FieldError, SpecError};
use super::schedule::parse_schedule;
use super::validate;
use crate::io::fnv::Fnv;
use crate::nn::deeponet::DeepONetData;
use crate::nn::deeponet::data::read_data;
use crate::nn::deeponet::scaling::Scaling;
use crate::nn::deeponet::session::{Plan, Sets};
use crate::nn::{
    Activation, DeepONetArch, DeepONetTrainConfig, Init, NetSpec, Optimizer, OptimizerError,
    Strategy,
};
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

impl TrainSpec {
    /// What decides a run's steps besides its architecture, hashed: the validation share,
    /// `[model]`, `[train]` but for `iterations` and `patience` (how far to go), and the
    /// training and validation data, whether read from files or handed over as arrays. A
    /// resumed run must give the same (`session::read_resumed`).
    pub fn fingerprint(&self, sets: &Sets) -> String {
        let mut h = Fnv::new();
        let t = TrainingSpec {
            iterations: 0,
            patience: 0,
            ..self.train.clone()
        };
        h.bytes(format!("{:?}|{:?}|{:?};", self.data.validation, self.model, t).as_bytes());
        for d in std::iter::once(&sets.train).chain(&sets.validation) {
            let parts: Vec<&[f64]> = match d {
                DeepONetData::Aligned(a) => vec![&a.u.data, &a.y.data, &a.g],
                DeepONetData::Unaligned(u) => vec![&u.u.data, &u.y.data, &u.g.data],
            };
            for p in parts {
                h.bytes(format!("{};", p.len()).as_bytes());
                for v in p {
                    h.bytes(&v.to_le_bytes());
                }
            }
        }
        format!("{:016x}", h.value())
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

    /// A training config from JSON (a Python call's dict): paths as given (relative to the
    /// working directory).
    pub fn from_json(value: serde_json::Value) -> Result<TrainSpec, FieldError> {
        super::config_file::from_json(value, "training config")
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

/// What a training config gives once its data are read: the network (its input widths
/// and normalisation from the training data), the initialisation, the optimiser and the
/// loop's plan.
pub struct TrainSetup {
    pub arch: DeepONetArch,
    pub init: Init,
    pub config: DeepONetTrainConfig,
    pub plan: Plan,
}

/// Why a training config cannot run.
#[derive(Debug)]
pub enum TrainSetupError {
    /// A value at a key of the config.
    Field(FieldError),
    /// A problem the config file should be named with ("train.lr: ...").
    InConfig(String),
    /// A problem of the data themselves.
    Data(String),
}

impl TrainSpec {
    /// The data sets `[data]` names: the training file, split when `validation` holds a
    /// share out, and the test file.
    pub fn read_sets(&self) -> Result<Sets, TrainSetupError> {
        let load = |path: &Path, key: &str| {
            read_data(path).map_err(|e| TrainSetupError::InConfig(format!("{key}: {e}")))
        };
        let all = load(&self.data.train, "data.train")?;
        self.sets_from(all, None)
    }

    /// The data sets from a training set in hand (and a test set in hand, else the
    /// config's test file).
    pub fn sets_from(
        &self,
        train: DeepONetData,
        test: Option<DeepONetData>,
    ) -> Result<Sets, TrainSetupError> {
        let test = match test {
            Some(t) => Some(t),
            None => self
                .data
                .test
                .as_deref()
                .map(|p| {
                    read_data(p).map_err(|e| TrainSetupError::InConfig(format!("data.test: {e}")))
                })
                .transpose()?,
        };
        Sets::new(train, self.data.validation, test).map_err(TrainSetupError::Data)
    }

    /// The network, initialisation, optimiser and plan for these data sets, every setting
    /// checked against them.
    pub fn setup(&self, sets: &Sets) -> Result<TrainSetup, TrainSetupError> {
        self.check().map_err(TrainSetupError::Field)?;
        let train = &sets.train;
        let m = &self.model;
        let t = &self.train;
        let (u, y, _) = train.as_ref().parts();
        let mut arch = DeepONetArch::new(
            NetSpec {
                inputs: u.cols,
                hidden: m.branch.clone(),
                encoding: None,
            },
            NetSpec {
                inputs: y.cols,
                hidden: m.trunk.clone(),
                encoding: None,
            },
            m.latent,
            train.as_ref().outputs(),
            m.strategy,
            m.activation,
        );
        if m.normalize {
            arch.scaling = Some(Scaling::fit(train));
        }
        sets.check(&arch).map_err(TrainSetupError::Data)?;
        let init = match m.init.as_str() {
            "glorot" => Init::Glorot,
            "he" => Init::He,
            other => {
                return Err(TrainSetupError::InConfig(format!(
                    "model.init must be \"glorot\" or \"he\", not \"{other}\""
                )));
            }
        };
        let schedule = parse_schedule(&t.schedule, t.iterations, "train.schedule")
            .map_err(TrainSetupError::Field)?;
        let config = DeepONetTrainConfig {
            optimizer: Optimizer {
                lr: t.lr,
                weight_decay: t.weight_decay,
                schedule,
                ..Optimizer::default()
            },
            functions_per_batch: t.functions_per_batch,
            points_per_batch: t.points_per_batch,
            samples_per_batch: t.samples_per_batch,
            seed: t.seed,
        };
        config
            .optimizer
            .check()
            .map_err(|e| TrainSetupError::InConfig(format!("{}: {e}", optimizer_key(&e))))?;
        // Empty batches are refused where the file says them; what is left is the layout.
        config.check(train.as_ref().layout()).map_err(|e| {
            TrainSetupError::InConfig(format!(
                "train.functions_per_batch and train.points_per_batch are for aligned data, \
                 train.samples_per_batch for unaligned data: {e}"
            ))
        })?;
        // Its messages open with the batch key's name.
        config
            .check_sizes(train)
            .map_err(|e| TrainSetupError::InConfig(format!("train.{e}")))?;
        Ok(TrainSetup {
            arch,
            init,
            config,
            plan: Plan {
                iterations: t.iterations,
                evaluate_every: t.evaluate_every,
                patience: t.patience,
            },
        })
    }
}

/// The training config key an optimiser check is about.
fn optimizer_key(e: &OptimizerError) -> &'static str {
    match e {
        OptimizerError::LearningRate(_) => "train.lr",
        OptimizerError::WeightDecay(_) | OptimizerError::DecayTooLarge { .. } => {
            "train.weight_decay"
        }
        OptimizerError::Moments(..) => "train",
        _ => "train.schedule",
    }
}
