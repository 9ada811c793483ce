//! What a stiff ensemble run integrates: the same span, save times and step-size control
//! as the adaptive family, a stiff method, and the Jacobians the method needs.

use super::method::{MAX_STIFF_DIM, StiffMethod};
use crate::model::System;
use crate::model::derive::{DeriveError, Jacobian, Wrt, jacobian};
use crate::ode::adaptive::problem::{Control, ControlError, SaveAt};
use crate::ode::ensemble::Ensemble;
use crate::precision::Precision;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum StiffError {
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(
        "the stiff solvers take systems of at most {MAX_STIFF_DIM} states (W = I/(hγ) − J is \
         factorised in each GPU thread's private memory); '{system}' has {dim}"
    )]
    TooLarge { system: String, dim: usize },
    #[error("the stiff solvers need the Jacobian of '{system}': {source}")]
    Jacobian {
        system: String,
        #[source]
        source: DeriveError,
    },
    #[error(
        "'{system}' has a noise block: it is a stochastic system, and the stiff solvers \
         integrate ODEs; use an SDE method (em, milstein, euler-heun, platen, milstein-adaptive)"
    )]
    Stochastic { system: String },
}

/// A stiff ensemble problem.
#[derive(Debug, Clone)]
pub struct StiffProblem {
    pub system: System,
    pub method: StiffMethod,
    pub t0: f64,
    pub t1: f64,
    pub saveat: SaveAt,
    pub control: Control,
    pub ensemble: Ensemble,
    pub precision: Precision,
}

/// ∂f/∂u (dim × dim) and ∂f/∂t (dim × 1; no entries for an autonomous system), sparse,
/// simplified and CSE'd.
#[derive(Debug, Clone)]
pub struct Jacobians {
    pub state: Jacobian,
    pub time: Jacobian,
}

impl Jacobians {
    pub fn of(system: &System) -> Result<Jacobians, StiffError> {
        let wrap = |source| StiffError::Jacobian {
            system: system.name().to_string(),
            source,
        };
        Ok(Jacobians {
            state: system.state_jacobian().map_err(wrap)?,
            time: jacobian(system, &system.rhs, &[Wrt::Time]).map_err(wrap)?,
        })
    }

    /// Whether f depends on t (∂f/∂t has structural non-zeros).
    pub fn non_autonomous(&self) -> bool {
        !self.time.entries.is_empty()
    }
}

/// Whether the stiff solvers take a system: an ODE of at most `MAX_STIFF_DIM` states whose
/// Jacobians can be derived (which it returns).
pub fn check_system(system: &System) -> Result<Jacobians, StiffError> {
    let name = system.name().to_string();
    if system.noise.is_some() {
        return Err(StiffError::Stochastic { system: name });
    }
    let dim = system.dim();
    if dim > MAX_STIFF_DIM {
        return Err(StiffError::TooLarge { system: name, dim });
    }
    Jacobians::of(system)
}

impl StiffProblem {
    /// Checks everything but the ensemble; returns the save times.
    pub fn check(&self) -> Result<Vec<f64>, StiffError> {
        check_system(&self.system)?;
        Ok(crate::ode::adaptive::problem::check_span(
            self.t0,
            self.t1,
            &self.saveat,
            &self.control,
            self.system.dim(),
        )?)
    }

    /// The largest step: dt_max, or the whole span.
    pub fn dt_max(&self) -> f64 {
        self.control.dt_max.unwrap_or(self.t1 - self.t0)
    }
}
