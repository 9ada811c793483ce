//! Training data for operator networks from phaseflow's own ensembles: input functions
//! (Gaussian random fields or a user's table) become the input signals u(t) of a system
//! with inputs, one trajectory per function, all integrated in one ensemble run on the GPU;
//! the chosen states at equally spaced output times are the labels G(u)(t).
//!
//! The branch input of function f is its sensor values (every input's, in declaration
//! order); the trunk input is the output time. This module sits beside the ensemble engine
//! (it uses `ode` to make data for `nn`), the one place where the two meet.

use super::grf::{Grf, GrfError};
use super::model::AlignedData;
use crate::gpu::GpuContext;
use crate::model::System;
use crate::model::signal::linspace;
use crate::nn::mlp::model::Matrix;
use crate::ode::{
    Ensemble, FixedStepProblem, Inputs, Precision, RunOptions, Save, SimError, Solver, Status,
    Table, TimeGrid, simulate,
};
use std::time::Instant;

/// Where one input signal's functions come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalSource {
    /// `offset + scale · v`, v a zero-mean, unit-variance Gaussian random field with the RBF
    /// kernel (length scale in time units) sampled at the input's sensor times.
    Grf {
        length_scale: f64,
        scale: f64,
        offset: f64,
    },
    /// One row per function: the input's values at its sensors.
    Table(Matrix),
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct OperatorDataSpec {
    pub system: System,
    /// Initial state and parameters shared by every function.
    pub initial: Vec<f64>,
    pub params: Vec<f64>,
    /// One source per input of the system, in declaration order.
    pub signals: Vec<SignalSource>,
    pub functions: usize,
    /// Keys the random fields: function f of input k uses stream k of this seed.
    pub seed: u64,
    /// Output times: `points` equally spaced from t0 to t1, both included.
    pub t0: f64,
    pub t1: f64,
    pub points: usize,
    /// Fixed steps between output times. Choose it so that steps do not straddle sensor
    /// times (e.g. the sensors on the output grid): each step is then exact for the
    /// piecewise-linear input.
    pub steps_per_point: u32,
    pub solver: Solver,
    /// States whose values are the outputs, by index.
    pub outputs: Vec<usize>,
    pub precision: Precision,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{0}")]
    Spec(String),
    #[error("input '{input}': {source}")]
    Grf { input: String, source: GrfError },
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error(
        "{count} of {total} trajectories did not finish (the first, function {first}: {status:?}); \
         the inputs drive the system somewhere it cannot go: use smaller signals or smaller steps"
    )]
    Failed {
        count: usize,
        total: usize,
        first: usize,
        status: Status,
    },
    #[error(
        "generating {functions} functions at {points} points would take {gib:.1} GiB of host \
         memory (inputs, saved states, labels and random-field kernels); at most {max} GiB: \
         generate fewer functions, points or sensors"
    )]
    TooLarge {
        functions: usize,
        points: usize,
        gib: f64,
        max: u64,
    },
}

/// The most host memory generating one data set may take (the ensemble's saved states
/// have the same bound).
pub const MAX_HOST_BYTES: u64 = 16 << 30;

/// A generated data set and what it cost.
#[derive(Debug)]
pub struct Generated {
    pub data: AlignedData,
    /// Seconds sampling the input functions (host) and integrating them (GPU, with
    /// uploads and readback).
    pub sample_seconds: f64,
    pub simulate_seconds: f64,
}

impl OperatorDataSpec {
    /// Bytes of host memory generating takes at the least, as f64 (no overflow): every
    /// function's sensor values (sampled, then handed to the ensemble), the saved states
    /// and the labels (f64), and each random field's kernel matrix and factor.
    pub fn host_bytes(&self) -> f64 {
        let s = &self.system;
        let (f, p) = (self.functions as f64, self.points as f64);
        let inputs = 2.0 * f * s.n_input_values() as f64;
        let states = f * p * s.dim() as f64;
        let labels = f * p * self.outputs.len() as f64;
        let kernels: f64 = s
            .inputs
            .iter()
            .zip(&self.signals)
            .filter(|(_, source)| matches!(source, SignalSource::Grf { .. }))
            .map(|(input, _)| 2.0 * (input.sensors as f64).powi(2))
            .sum();
        8.0 * (inputs + states + labels + kernels)
    }

    /// Whether the spec can be generated: sizes, signals, outputs; before any allocation.
    pub fn check(&self) -> Result<(), GenerateError> {
        let bad = |m: String| Err(GenerateError::Spec(m));
        let s = &self.system;
        if s.inputs.is_empty() {
            return bad(format!(
                "system '{}' has no inputs; operator data needs a system driven by u(t)",
                s.name()
            ));
        }
        if self.signals.len() != s.inputs.len() {
            return bad(format!(
                "system '{}' has {} inputs but {} signal sources were given",
                s.name(),
                s.inputs.len(),
                self.signals.len()
            ));
        }
        if self.functions == 0 {
            return bad("at least one function is needed".into());
        }
        if self.points < 2 || self.steps_per_point == 0 {
            return bad("at least 2 output points and 1 step per point are needed".into());
        }
        if self.outputs.is_empty() || self.outputs.iter().any(|&o| o >= s.dim()) {
            return bad(format!("outputs must be states of '{}'", s.name()));
        }
        if self.initial.len() != s.dim() || self.params.len() != s.n_params() {
            return bad("the initial state or parameters do not match the system".into());
        }
        let bytes = self.host_bytes();
        if bytes > MAX_HOST_BYTES as f64 {
            return Err(GenerateError::TooLarge {
                functions: self.functions,
                points: self.points,
                gib: bytes / (1u64 << 30) as f64,
                max: MAX_HOST_BYTES >> 30,
            });
        }
        for (input, source) in s.inputs.iter().zip(&self.signals) {
            match source {
                SignalSource::Grf {
                    length_scale,
                    scale,
                    offset,
                } => {
                    if !(length_scale.is_finite() && *length_scale > 0.0) {
                        return bad(format!(
                            "input '{}': the length scale must be positive",
                            input.name
                        ));
                    }
                    if !(scale.is_finite() && offset.is_finite()) {
                        return bad(format!(
                            "input '{}': scale and offset must be finite",
                            input.name
                        ));
                    }
                }
                SignalSource::Table(m) => {
                    if m.rows != self.functions || m.cols != input.sensors {
                        return bad(format!(
                            "input '{}': the table is [{}, {}] but [{}, {}] (functions, sensors) is needed",
                            input.name, m.rows, m.cols, self.functions, input.sensors
                        ));
                    }
                    if let Some(v) = m.data.iter().find(|v| !v.is_finite()) {
                        return bad(format!("input '{}': the table holds {v}", input.name));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every function's sensor values, [functions, total sensors].
    fn sample_inputs(&self) -> Result<Matrix, GenerateError> {
        let n = self.functions;
        let width = self.system.n_input_values();
        let mut u = Matrix {
            rows: n,
            cols: width,
            data: vec![0.0; n * width],
        };
        let mut col = 0;
        for (k, (input, source)) in self.system.inputs.iter().zip(&self.signals).enumerate() {
            let values = match source {
                SignalSource::Table(m) => m.clone(),
                SignalSource::Grf {
                    length_scale,
                    scale,
                    offset,
                } => {
                    let grf = Grf::rbf(&input.times(), *length_scale).map_err(|source| {
                        GenerateError::Grf {
                            input: input.name.clone(),
                            source,
                        }
                    })?;
                    let mut m = grf.sample_stream(self.seed, k as u32, n);
                    m.data.iter_mut().for_each(|v| *v = offset + scale * *v);
                    m
                }
            };
            for f in 0..n {
                let row = &values.data[f * input.sensors..(f + 1) * input.sensors];
                u.data[f * width + col..f * width + col + input.sensors].copy_from_slice(row);
            }
            col += input.sensors;
        }
        Ok(u)
    }

    /// The ensemble problem that integrates every function `u` [functions, total sensors].
    pub fn problem(&self, u: &Matrix) -> Result<FixedStepProblem, GenerateError> {
        let steps = (self.points - 1) as f64 * self.steps_per_point as f64;
        let grid = TimeGrid::from_span(self.t0, self.t1, (self.t1 - self.t0) / steps)
            .map_err(SimError::from)?;
        let mut ensemble = Ensemble::new(&self.system, self.functions);
        ensemble.base_state = self.initial.clone();
        ensemble.base_params = self.params.clone();
        ensemble.inputs = Inputs::Table(Table {
            data: u.data.clone(),
            rows: u.rows,
            cols: u.cols,
            origin: "the sampled input functions".into(),
        });
        Ok(FixedStepProblem {
            system: self.system.clone(),
            solver: self.solver,
            grid,
            save: Save::Every(self.steps_per_point),
            ensemble,
            precision: self.precision,
        })
    }

    /// The output times, [points, 1].
    pub fn times(&self) -> Matrix {
        Matrix {
            rows: self.points,
            cols: 1,
            data: linspace(self.t0, self.t1, self.points),
        }
    }
}

/// Samples the input functions, integrates the system once per function on the GPU and
/// gathers the outputs. Any trajectory that does not finish is an error: a data set with
/// holes would train a network on NaN.
pub fn generate(ctx: &GpuContext, spec: &OperatorDataSpec) -> Result<Generated, GenerateError> {
    spec.check()?;
    let started = Instant::now();
    let u = spec.sample_inputs()?;
    let sample_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let problem = spec.problem(&u)?;
    let solution = simulate(ctx, &problem, &RunOptions::default())?;
    let failed: Vec<usize> = (0..spec.functions)
        .filter(|&f| solution.status[f] != Status::Success)
        .collect();
    if let Some(&first) = failed.first() {
        return Err(GenerateError::Failed {
            count: failed.len(),
            total: spec.functions,
            first,
            status: solution.status[first],
        });
    }
    let (nf, np, k) = (spec.functions, spec.points, spec.outputs.len());
    let mut g = Vec::with_capacity(nf * np * k);
    for f in 0..nf {
        for p in 0..np {
            let state = solution.state(p, f);
            g.extend(spec.outputs.iter().map(|&o| state[o]));
        }
    }
    let simulate_seconds = started.elapsed().as_secs_f64();
    Ok(Generated {
        data: AlignedData {
            u,
            y: spec.times(),
            g,
            outputs: k,
        },
        sample_seconds,
        simulate_seconds,
    })
}
