//! What an SDE ensemble run integrates: the system with its noise, the method, the noise
//! key (seed, antithetic pairs) and either a fixed time grid or adaptive control over a
//! virtual Brownian tree.

use super::method::{MethodError, SdeMethod};
use super::noise::{MAX_TREE_DEPTH, MAX_WIENER, NoiseKey};
use crate::model::System;
use crate::ode::adaptive::problem::{Control, ControlError, SaveAt};
use crate::ode::ensemble::Ensemble;
use crate::ode::fixed::problem::{ProblemError, Save, SavePlan, TimeGrid};
use crate::precision::Precision;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum SdeError {
    #[error(transparent)]
    Method(#[from] MethodError),
    #[error(
        "the Brownian tree's depth must be between 1 and {MAX_TREE_DEPTH} (got {0}); its leaves \
         are 2^-depth of the span"
    )]
    Depth(u32),
    #[error("{0} Wiener processes; at most {MAX_WIENER} are supported")]
    TooManyWiener(usize),
    #[error(
        "antithetic variates pair trajectory 2j+1 with 2j, so n must be even (got {0}); the \
         last trajectory would have no partner and bias the pairs' mean"
    )]
    OddAntithetic(usize),
    #[error("{0} is an adaptive method; it takes no fixed dt (or run it with fixed_step)")]
    AdaptiveWithGrid(&'static str),
    #[error("{0} takes fixed steps; tolerances and saveat apply to milstein-adaptive")]
    FixedWithControl(&'static str),
}

/// Default depth of the virtual Brownian tree in f64: leaves of 2^-20 of the span (about
/// 10^-6), far below the steps a tolerance of 1e-6 takes, so the linear interpolation
/// inside a leaf never decides a step; each query costs `depth` Philox blocks per four
/// processes.
pub const DEFAULT_TREE_DEPTH: u32 = 20;

/// Default depth in f32: an f32 time near the end of the span resolves about 2^-24 of it,
/// so leaves finer than 2^-16 would be placed to no better than a tenth of a leaf (at
/// 2^-20, to a sixteenth of its width: measured, the endpoint error on GBM doubled).
pub const DEFAULT_TREE_DEPTH_F32: u32 = 16;

/// The default depth of a run in `precision`.
pub fn default_tree_depth(precision: Precision) -> u32 {
    match precision {
        Precision::F32 => DEFAULT_TREE_DEPTH_F32,
        Precision::F64 => DEFAULT_TREE_DEPTH,
    }
}

/// How steps are taken.
#[derive(Debug, Clone, PartialEq)]
pub enum Steps {
    /// A uniform grid; increments of step i are keyed by i.
    Fixed { grid: TimeGrid, save: Save },
    /// Controlled steps over [t0, t1] with increments from a virtual Brownian tree of
    /// `depth` levels; steps land exactly on the save times.
    Adaptive {
        t0: f64,
        t1: f64,
        saveat: SaveAt,
        control: Control,
        depth: u32,
    },
}

/// An SDE ensemble problem.
#[derive(Debug, Clone)]
pub struct SdeProblem {
    pub system: System,
    pub method: SdeMethod,
    pub steps: Steps,
    pub noise: NoiseKey,
    pub ensemble: Ensemble,
    pub precision: Precision,
}

/// Why a problem is refused before it runs.
#[derive(Debug, Error)]
pub enum SdeCheckError {
    #[error(transparent)]
    Sde(#[from] SdeError),
    #[error(transparent)]
    Grid(#[from] ProblemError),
    #[error(transparent)]
    Control(#[from] ControlError),
}

impl SdeProblem {
    /// Wiener processes of the system's noise (0 without noise).
    pub fn n_wiener(&self) -> usize {
        self.system.n_wiener()
    }

    /// Checks everything but the ensemble; returns the save times.
    pub fn check(&self) -> Result<Vec<f64>, SdeCheckError> {
        self.method.check(&self.system).map_err(SdeError::from)?;
        if self.n_wiener() > MAX_WIENER {
            return Err(SdeError::TooManyWiener(self.n_wiener()).into());
        }
        if self.noise.antithetic && self.ensemble.n % 2 == 1 {
            return Err(SdeError::OddAntithetic(self.ensemble.n).into());
        }
        match &self.steps {
            Steps::Fixed { grid, save } => {
                if self.method.is_adaptive() {
                    return Err(SdeError::AdaptiveWithGrid(self.method.name()).into());
                }
                Ok(SavePlan::new(*save, grid.n_steps)?.times(grid))
            }
            Steps::Adaptive {
                t0,
                t1,
                saveat,
                control,
                depth,
            } => {
                if !self.method.is_adaptive() {
                    return Err(SdeError::FixedWithControl(self.method.name()).into());
                }
                if !(1..=MAX_TREE_DEPTH).contains(depth) {
                    return Err(SdeError::Depth(*depth).into());
                }
                let (t0, t1) = (*t0, *t1);
                if !t0.is_finite() || !t1.is_finite() {
                    return Err(ControlError::NonFiniteSpan { t0, t1 }.into());
                }
                if t1 <= t0 {
                    return Err(ControlError::EmptySpan { t0, t1 }.into());
                }
                control.validate(self.system.dim())?;
                let times = saveat.times(t1);
                for (index, &time) in times.iter().enumerate() {
                    if !(time >= t0 && time <= t1) {
                        return Err(ControlError::SaveOutsideSpan { time, t0, t1 }.into());
                    }
                    if index > 0 && time <= times[index - 1] {
                        return Err(ControlError::SavesNotIncreasing {
                            index,
                            time,
                            previous: times[index - 1],
                        }
                        .into());
                    }
                }
                Ok(times)
            }
        }
    }

    /// The span [t0, t1].
    pub fn span(&self) -> (f64, f64) {
        match &self.steps {
            Steps::Fixed { grid, .. } => (grid.t0, grid.t1()),
            Steps::Adaptive { t0, t1, .. } => (*t0, *t1),
        }
    }
}
