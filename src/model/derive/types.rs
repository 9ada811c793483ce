//! The types every part of `model::derive` shares: programs, what to differentiate with
//! respect to, and what cannot be differentiated.

use crate::model::expr::Node;
use crate::model::system::System;

/// Straight-line code over a system: the system's own aux definitions (evaluated first,
/// as in System::rhs_f64), then `lets` in order, then `outputs`. In `lets` and `outputs`,
/// Node::Aux(i) is system aux i for i < n_system_aux and lets[i - n_system_aux] beyond.
/// A let refers only to system auxiliaries and earlier lets.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub n_system_aux: usize,
    pub lets: Vec<Node>,
    pub outputs: Vec<Node>,
}

/// A variable to differentiate with respect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wrt {
    State(usize),
    /// A real parameter (`i < system.n_params()`), not an input's sensor value.
    Param(usize),
    Time,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeriveError {
    #[error(
        "input '{input}' has no derivative with respect to time: inputs are piecewise-linear \
         interpolations of sensor values, with kinks at the sensor times; \
         differentiate a system without inputs, or use finite differences in t"
    )]
    TimeThroughInput { input: String },
    #[error(
        "input '{input}' is read at a time that depends on {wrt}; inputs can only be \
         differentiated where they are read at t or at a constant time"
    )]
    InputArgument { input: String, wrt: String },
    #[error("cannot differentiate with respect to {0}")]
    BadVariable(String),
    #[error("the expression refers to {0}, which does not exist")]
    OutOfRange(String),
}

/// How messages name a variable: by its name in the system.
/// How a message names a variable of differentiation.
pub(super) fn wrt_name(system: &System, w: Wrt) -> String {
    match w {
        Wrt::State(i) => match system.states.get(i) {
            Some(v) => format!("state '{}'", v.name),
            None => format!("state {i}"),
        },
        Wrt::Param(i) => match system.params.get(i) {
            Some(v) => format!("parameter '{}'", v.name),
            None => format!("parameter {i}"),
        },
        Wrt::Time => "time".into(),
    }
}
