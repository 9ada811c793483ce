//! What an adaptive ensemble run integrates: the span, the save times and the step-size
//! control, shared by the GPU kernel and its CPU twin.

use super::pair::Pair;
use crate::model::System;
use crate::ode::ensemble::Ensemble;
use crate::ode::solver::Solver;
use crate::precision::Precision;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum ControlError {
    #[error("the time span must go forward: t0 = {t0} is not before t1 = {t1}")]
    EmptySpan { t0: f64, t1: f64 },
    #[error("times must be finite (t0 = {t0}, t1 = {t1})")]
    NonFiniteSpan { t0: f64, t1: f64 },
    #[error("{what} must be a positive, finite number (got {value})")]
    NotPositive { what: &'static str, value: f64 },
    #[error("{what} must be a non-negative, finite number (got {value})")]
    Negative { what: &'static str, value: f64 },
    #[error("{what} has {got} values but the system has {dim} states")]
    WrongLength {
        what: &'static str,
        got: usize,
        dim: usize,
    },
    #[error("{what} must be between {lo} and {hi} (got {value})")]
    OutOfRange {
        what: &'static str,
        lo: f64,
        hi: f64,
        value: f64,
    },
    #[error("save time {time} is outside the span [{t0}, {t1}]; save times must lie in the span")]
    SaveOutsideSpan { time: f64, t0: f64, t1: f64 },
    #[error(
        "save times must increase: save time {index} (counting from 0) is {time}, not after {previous}"
    )]
    SavesNotIncreasing {
        index: usize,
        time: f64,
        previous: f64,
    },
    #[error("a save grid needs a positive step (got {0})")]
    BadSaveStep(f64),
    #[error("'{0}' is a fixed-step solver; adaptive runs need bs3, dp5, tsit5 or dop853")]
    NotAdaptive(&'static str),
    #[error("max_steps must be at least 1")]
    ZeroMaxSteps,
}

/// Relative or absolute tolerance: one value for every state, or one per state.
#[derive(Debug, Clone, PartialEq)]
pub enum Tolerance {
    All(f64),
    PerState(Vec<f64>),
}

impl Tolerance {
    pub fn values(&self, dim: usize) -> Vec<f64> {
        match self {
            Tolerance::All(v) => vec![*v; dim],
            Tolerance::PerState(v) => v.clone(),
        }
    }

    /// `positive`: zero is refused too (an absolute tolerance of 0 makes the error norm
    /// divide by zero wherever a state is 0).
    fn check(&self, what: &'static str, dim: usize, positive: bool) -> Result<(), ControlError> {
        let values = self.values(dim);
        if values.len() != dim {
            return Err(ControlError::WrongLength {
                what,
                got: values.len(),
                dim,
            });
        }
        for value in values {
            if positive && !(value > 0.0 && value.is_finite()) {
                return Err(ControlError::NotPositive { what, value });
            }
            if !(value >= 0.0 && value.is_finite()) {
                return Err(ControlError::Negative { what, value });
            }
        }
        Ok(())
    }
}

/// Step-size control of every trajectory (each keeps its own step size and error history).
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    pub rtol: Tolerance,
    pub atol: Tolerance,
    /// First step; `None` chooses it per trajectory with Hairer's heuristic.
    pub dt_initial: Option<f64>,
    /// Steps below this (or below 4 ulps of t) end the trajectory with a step-size
    /// underflow.
    pub dt_min: f64,
    /// Largest step; `None` allows the whole span.
    pub dt_max: Option<f64>,
    /// Step attempts (accepted and rejected) per trajectory before it stops with "max
    /// steps".
    pub max_steps: u32,
    /// Factor on the optimal step size.
    pub safety: f64,
    /// Largest factor a step size may grow by after an accepted step.
    pub max_growth: f64,
    /// Smallest factor a step size may shrink by.
    pub max_shrink: f64,
    /// How many leading states the error norm and the initial-step heuristic measure;
    /// `None` measures them all. A run with forward sensitivities sets it to the system's
    /// own states to leave the sensitivities out of the error control (CVODES' `errconS`
    /// false), so the steps are those of the plain run.
    pub error_states: Option<usize>,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            rtol: Tolerance::All(1e-6),
            atol: Tolerance::All(1e-6),
            dt_initial: None,
            dt_min: 0.0,
            dt_max: None,
            max_steps: 100_000,
            safety: 0.9,
            max_growth: 10.0,
            max_shrink: 0.2,
            error_states: None,
        }
    }
}

impl Control {
    /// The number of leading states the error norm measures (see `error_states`).
    pub fn norm_states(&self, dim: usize) -> usize {
        self.error_states.map_or(dim, |m| m.clamp(1, dim.max(1)))
    }

    pub fn validate(&self, dim: usize) -> Result<(), ControlError> {
        self.rtol.check("rtol", dim, false)?;
        self.atol.check("atol", dim, true)?;
        let positive = |what, value: f64| {
            if value > 0.0 && value.is_finite() {
                Ok(())
            } else {
                Err(ControlError::NotPositive { what, value })
            }
        };
        if let Some(dt) = self.dt_initial {
            positive("dt (the initial step)", dt)?;
        }
        if let Some(dt) = self.dt_max {
            positive("dtmax", dt)?;
        }
        if !(self.dt_min >= 0.0 && self.dt_min.is_finite()) {
            return Err(ControlError::Negative {
                what: "dtmin",
                value: self.dt_min,
            });
        }
        if self.max_steps == 0 {
            return Err(ControlError::ZeroMaxSteps);
        }
        let range = |what, value: f64, lo: f64, hi: f64| {
            if value > lo && value <= hi {
                Ok(())
            } else {
                Err(ControlError::OutOfRange {
                    what,
                    lo,
                    hi,
                    value,
                })
            }
        };
        range("safety", self.safety, 0.0, 1.0)?;
        range("max_growth", self.max_growth, 1.0, 1e6)?;
        range("max_shrink", self.max_shrink, 0.0, 1.0)?;
        Ok(())
    }
}

/// The PI controller's exponents for a pair, as in Hairer's DOPRI5 (Hairer, Nørsett &
/// Wanner, Solving ODEs I, §II.4; Gustafsson's PI control): `factor = safety *
/// err^-alpha * err_prev^beta` with `beta = 0.2/(q+1)`, `alpha = 1/(q+1) - 0.75 beta`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exponents {
    pub alpha: f64,
    pub beta: f64,
    /// Exponent after a rejection (plain I control): `safety * err^-reject`.
    pub reject: f64,
}

impl Exponents {
    pub fn of(pair: &Pair) -> Exponents {
        Exponents::of_order(pair.error_order)
    }

    /// The exponents for an error estimate of order `error_order` (k = error_order + 1),
    /// for any embedded method (the stiff family's Rosenbrock methods too).
    pub fn of_order(error_order: u32) -> Exponents {
        let k = (error_order + 1) as f64;
        let beta = 0.2 / k;
        Exponents {
            alpha: 1.0 / k - 0.75 * beta,
            beta,
            reject: 1.0 / k,
        }
    }
}

/// Which times every trajectory reports.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SaveAt {
    /// Only the end of the span: no interpolation at all (the cheapest mode).
    #[default]
    Final,
    /// These times (increasing, inside the span), interpolated with the method's
    /// continuous extension; a time equal to t1 is the final step's state exactly.
    Times(Vec<f64>),
}

impl SaveAt {
    /// `lo, lo + step, ...` up to `hi` (included when it is a whole number of steps from
    /// `lo`, to a relative 1e-9; each time is `lo + i*step`, never an accumulated sum).
    pub fn grid(lo: f64, step: f64, hi: f64) -> Result<SaveAt, ControlError> {
        if !(step > 0.0 && step.is_finite()) {
            return Err(ControlError::BadSaveStep(step));
        }
        let n = (hi - lo) / step;
        let count = (n + 1e-9 * n.abs().max(1.0)).floor() as usize + 1;
        let mut times: Vec<f64> = (0..count).map(|i| lo + i as f64 * step).collect();
        if let Some(last) = times.last_mut()
            && (*last - hi).abs() <= 1e-9 * step
        {
            *last = hi;
        }
        Ok(SaveAt::Times(times))
    }

    /// The save times for a span.
    pub fn times(&self, t1: f64) -> Vec<f64> {
        match self {
            SaveAt::Final => vec![t1],
            SaveAt::Times(t) => t.clone(),
        }
    }
}

/// An adaptive ensemble problem.
#[derive(Debug, Clone)]
pub struct AdaptiveProblem {
    pub system: System,
    pub solver: Solver,
    pub t0: f64,
    pub t1: f64,
    pub saveat: SaveAt,
    pub control: Control,
    pub ensemble: Ensemble,
    pub precision: Precision,
}

impl AdaptiveProblem {
    pub fn pair(&self) -> Result<&'static Pair, ControlError> {
        self.solver
            .pair()
            .ok_or(ControlError::NotAdaptive(self.solver.name()))
    }

    /// Checks everything but the ensemble; returns the save times.
    pub fn check(&self) -> Result<Vec<f64>, ControlError> {
        self.pair()?;
        check_span(
            self.t0,
            self.t1,
            &self.saveat,
            &self.control,
            self.system.dim(),
        )
    }

    /// The largest step: dt_max, or the whole span.
    pub fn dt_max(&self) -> f64 {
        self.control.dt_max.unwrap_or(self.t1 - self.t0)
    }
}

/// Checks a span, its save times and a control (every controlled family's problem);
/// returns the save times.
pub fn check_span(
    t0: f64,
    t1: f64,
    saveat: &SaveAt,
    control: &Control,
    dim: usize,
) -> Result<Vec<f64>, ControlError> {
    if !t0.is_finite() || !t1.is_finite() {
        return Err(ControlError::NonFiniteSpan { t0, t1 });
    }
    if t1 <= t0 {
        return Err(ControlError::EmptySpan { t0, t1 });
    }
    control.validate(dim)?;
    let times = saveat.times(t1);
    for (index, &time) in times.iter().enumerate() {
        if !(time >= t0 && time <= t1) {
            return Err(ControlError::SaveOutsideSpan { time, t0, t1 });
        }
        if index > 0 && time <= times[index - 1] {
            return Err(ControlError::SavesNotIncreasing {
                index,
                time,
                previous: times[index - 1],
            });
        }
    }
    Ok(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_grids_end_exactly_on_their_last_point() {
        let SaveAt::Times(t) = SaveAt::grid(0.0, 0.1, 1.0).unwrap() else {
            panic!()
        };
        assert_eq!(t.len(), 11);
        assert_eq!(t[10], 1.0);
        assert_eq!(t[3], 0.30000000000000004); // 3 * 0.1, not 0.1 + 0.1 + 0.1
        let SaveAt::Times(t) = SaveAt::grid(0.0, 0.3, 1.0).unwrap() else {
            panic!()
        };
        assert_eq!(t.len(), 4);
        assert!(SaveAt::grid(0.0, 0.0, 1.0).is_err());
    }

    #[test]
    fn controls_are_checked() {
        let mut c = Control::default();
        assert!(c.validate(3).is_ok());
        c.rtol = Tolerance::PerState(vec![1e-6; 2]);
        assert!(matches!(
            c.validate(3),
            Err(ControlError::WrongLength { .. })
        ));
        c.rtol = Tolerance::All(-1.0);
        assert!(c.validate(3).is_err());
        let c = Control {
            safety: 1.5,
            ..Control::default()
        };
        assert!(matches!(
            c.validate(1),
            Err(ControlError::OutOfRange { .. })
        ));
    }
}
