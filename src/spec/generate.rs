//! Operator-learning data as its config file states it (`phaseflow generate --config`):
//! a system driven by input functions, how many functions, where to save the solutions.

use super::config_file::{read_toml, relative_to_config};
use super::error::{FieldError, SpecError};
use super::run::lookup;
use super::validate;
use crate::io::read_matrix;
use crate::model::System;
use crate::nn::Matrix;
use crate::nn::deeponet::generate::{OperatorDataSpec, SignalSource};
use crate::ode::{Precision, Solver};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A generation config: the system, the functions, the output times, `[inputs.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateSpec {
    /// A built-in system with inputs, or a system file.
    pub system: String,
    #[serde(deserialize_with = "validate::at_least_one")]
    pub functions: usize,
    #[serde(default)]
    pub test_functions: usize,
    #[serde(default = "one")]
    pub seed: u64,
    /// Output times span; the system's `tspan` by default.
    pub tspan: Option<[f64; 2]>,
    #[serde(default = "hundred")]
    pub points: usize,
    #[serde(default = "ten", deserialize_with = "validate::at_least_one")]
    pub steps_per_point: u32,
    /// Write the training set unaligned: each function at this many of the `points`
    /// times, drawn at random.
    pub points_per_function: Option<usize>,
    #[serde(default)]
    pub solver: Solver,
    /// State names; every state by default.
    pub outputs: Option<Vec<String>>,
    #[serde(default)]
    pub precision: Precision,
    #[serde(default)]
    pub parameters: BTreeMap<String, f64>,
    #[serde(default)]
    pub initial: BTreeMap<String, f64>,
    #[serde(default)]
    pub inputs: BTreeMap<String, InputSpec>,
    pub out: Option<PathBuf>,
}

/// One input signal: a random field (`length_scale`, `scale`, `offset`) or tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    #[serde(default, deserialize_with = "validate::positive_if_given")]
    pub length_scale: Option<f64>,
    #[serde(default = "one_f", deserialize_with = "validate::finite")]
    pub scale: f64,
    #[serde(default, deserialize_with = "validate::finite")]
    pub offset: f64,
    pub file: Option<PathBuf>,
    pub test_file: Option<PathBuf>,
}

fn one() -> u64 {
    1
}
fn one_f() -> f64 {
    1.0
}
fn hundred() -> usize {
    100
}
fn ten() -> u32 {
    10
}

/// The test functions' generator key: far from any seed a user would pick for training.
pub const TEST_SEED_OFFSET: u64 = 0x9E37_79B9_7F4A_7C15;

impl GenerateSpec {
    /// A generation config from JSON (a Python call's dict): paths as given (relative to the
    /// working directory).
    pub fn from_json(value: serde_json::Value) -> Result<GenerateSpec, FieldError> {
        super::config_file::from_json(value, "generation config")
    }

    /// Reads a generation config; problems point into the file, paths are relative to it.
    pub fn from_file(path: &Path) -> Result<GenerateSpec, SpecError> {
        let mut config: GenerateSpec = read_toml(path)?;
        let inputs = config
            .inputs
            .values_mut()
            .flat_map(|i| [i.file.as_mut(), i.test_file.as_mut()]);
        relative_to_config(
            path,
            inputs.chain([config.out.as_mut()]).flatten(),
            Some(&mut config.system),
        );
        Ok(config)
    }

    /// `points_per_function`, where given, picks from 1 up to `points` times.
    pub fn check_sampling(&self) -> Result<(), FieldError> {
        if self.points < 2 {
            return Err(FieldError::new(
                "points",
                format!(
                    "must be at least 2 (output times from the span's start to its end); got {}",
                    self.points
                ),
            ));
        }
        match self.points_per_function {
            Some(k) if !(1..=self.points).contains(&k) => Err(FieldError::new(
                "points_per_function",
                "must be between 1 and ",
            )
            .key("points")
            .text(format!(" ({}), got {k}", self.points))),
            _ => Ok(()),
        }
    }

    /// The spec for `count` functions with `seed`; `test` picks the inputs' test tables.
    pub fn operator_data(
        &self,
        system: &System,
        count: usize,
        seed: u64,
        test: bool,
    ) -> Result<OperatorDataSpec, SpecError> {
        let sname = system.name();
        if system.inputs.is_empty() {
            return Err(FieldError::at("system")
                .key("system")
                .text(format!(
                    " = '{sname}' has no inputs; operator data needs a system driven by u(t) \
                     (declare inputs = {{ u = {{ sensors = 100, span = [0.0, 1.0] }} }} in its \
                     file)"
                ))
                .into());
        }
        let names = |v: &[crate::model::Var]| v.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
        let (state_names, param_names) = (names(&system.states), names(&system.params));
        let mut initial = system.default_state();
        for (name, &v) in &self.initial {
            initial[lookup(&state_names, name, "state", "initial", sname)?] = v;
        }
        let mut params = system.default_params();
        for (name, &v) in &self.parameters {
            params[lookup(&param_names, name, "parameter", "parameters", sname)?] = v;
        }
        let outputs = match &self.outputs {
            None => (0..system.dim()).collect(),
            Some(list) => list
                .iter()
                .map(|n| lookup(&state_names, n, "state", "outputs", sname))
                .collect::<Result<_, _>>()?,
        };
        let input_names: Vec<String> = system.inputs.iter().map(|i| i.name.clone()).collect();
        for name in self.inputs.keys() {
            lookup(&input_names, name, "input", "inputs", sname)?;
        }
        let mut signals = Vec::new();
        for input in &system.inputs {
            let c = self.inputs.get(&input.name).ok_or_else(|| {
                FieldError::at(format!("inputs.{}", input.name)).text(format!(
                    "the config has no [inputs.{0}]; give {0}'s functions, e.g. \
                     [inputs.{0}] length_scale = 0.2",
                    input.name
                ))
            })?;
            let (file, file_key) = if test {
                (&c.test_file, "test_file")
            } else {
                (&c.file, "file")
            };
            signals.push(match (c.length_scale, file) {
                (Some(l), None) if c.file.is_none() => SignalSource::Grf {
                    length_scale: l,
                    scale: c.scale,
                    offset: c.offset,
                },
                (None, Some(path)) => {
                    let (data, rows, cols) = read_matrix(path).map_err(|e| {
                        FieldError::at(format!("inputs.{}.{file_key}", input.name))
                            .text(e.to_string())
                    })?;
                    SignalSource::Table(Matrix { rows, cols, data })
                }
                (None, None) if test => {
                    return Err(FieldError::at(format!("inputs.{}.test_file", input.name))
                        .text(format!(
                            "[inputs.{}] needs test_file for the test functions",
                            input.name
                        ))
                        .into());
                }
                _ => {
                    return Err(FieldError::at(format!("inputs.{}", input.name))
                        .text(format!(
                            "[inputs.{}] needs either length_scale (a random field) or file \
                             (an .npy of [functions, {}])",
                            input.name, input.sensors
                        ))
                        .into());
                }
            });
        }
        let (t0, t1) = match (self.tspan, system.meta.tspan) {
            (Some([a, b]), _) => (a, b),
            (None, Some(span)) => span,
            (None, None) => {
                return Err(FieldError::at("tspan")
                    .text(format!("{sname} suggests no time span; give "))
                    .key("tspan")
                    .text(" = [t0, t1]")
                    .into());
            }
        };
        if self.solver.tableau().is_none() {
            return Err(FieldError::at("solver")
                .key("solver")
                .text(format!(
                    " '{}' is adaptive; data generation uses a fixed-step solver (rk4, heun, \
                     euler) with steps that land on the output times",
                    self.solver.name()
                ))
                .into());
        }
        Ok(OperatorDataSpec {
            system: system.clone(),
            initial,
            params,
            signals,
            functions: count,
            seed,
            t0,
            t1,
            points: self.points,
            steps_per_point: self.steps_per_point,
            solver: self.solver,
            outputs,
            precision: self.precision,
        })
    }
}
