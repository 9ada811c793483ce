//! The SDE methods and what each needs of a system's noise: its calculus (Itô or
//! Stratonovich), its structure (diagonal, scalar, general) and, for Milstein and the weak
//! order 2 scheme, the symbolic derivative of the diffusion.

use crate::model::System;
use crate::model::noise::{Calculus, Noise, NoiseKind};
use thiserror::Error;

/// A method for dX = f(t, X) dt + G(t, X) dW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SdeMethod {
    /// Euler–Maruyama (Itô): strong order 0.5, weak order 1, any noise.
    EulerMaruyama,
    /// Milstein with the symbolic ∂g/∂x (Itô or Stratonovich): strong order 1 for diagonal
    /// and scalar noise.
    Milstein,
    /// Stochastic Heun, the Euler–Heun predictor–corrector (Stratonovich): strong order 1
    /// for commutative noise, 0.5 in general; any noise.
    EulerHeun,
    /// Platen's explicit weak order 2.0 scheme (Kloeden & Platen, Numerical Solution of
    /// SDEs, 1992, eq. 15.1.1; Itô): scalar noise, or diagonal noise whose g_i depends on
    /// no state but x_i (then the scheme's cross terms vanish and it acts per component).
    Platen,
    /// Milstein with step-size control (Itô or Stratonovich; diagonal or scalar noise): the
    /// local error is estimated by the Milstein correction plus the drift's trapezoidal
    /// defect, and every increment comes from a virtual Brownian tree, so any sequence of
    /// accepted and rejected steps samples one Brownian path.
    MilsteinAdaptive,
}

#[derive(Debug, Error, PartialEq)]
pub enum MethodError {
    #[error(
        "{method} integrates SDEs, but {system} has no noise block, so it is an ODE; choose an \
         ODE solver, or give the system a `noise = \"\"\"...\"\"\"` block"
    )]
    NoNoise {
        method: &'static str,
        system: String,
    },
    #[error("{system} is a stochastic system (it has a noise block); choose an SDE solver: {hint}")]
    OdeSolverOnSde { system: String, hint: &'static str },
    #[error("{method} integrates {wants} SDEs, but {system} is written in the {got} sense; {hint}")]
    Calculus {
        method: &'static str,
        system: String,
        wants: &'static str,
        got: &'static str,
        hint: &'static str,
    },
    #[error("{method} needs {needs} noise, but {system} has {got} noise; {hint}")]
    NoiseKind {
        method: &'static str,
        system: String,
        needs: &'static str,
        got: &'static str,
        hint: &'static str,
    },
    #[error(
        "{method} needs each diagonal diffusion g_i to depend on no state but x_i (or scalar \
         noise): in {system}, g of '{row}' depends on '{col}', whose cross terms need Lévy \
         areas; use {hint}"
    )]
    NotSeparable {
        method: &'static str,
        system: String,
        row: String,
        col: String,
        hint: &'static str,
    },
    #[error("{method} needs ∂g/∂x, but the diffusion of {system} cannot be differentiated: {why}")]
    Derivative {
        method: &'static str,
        system: String,
        why: String,
    },
}

impl SdeMethod {
    pub const ALL: [SdeMethod; 5] = [
        SdeMethod::EulerMaruyama,
        SdeMethod::Milstein,
        SdeMethod::EulerHeun,
        SdeMethod::Platen,
        SdeMethod::MilsteinAdaptive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SdeMethod::EulerMaruyama => "em",
            SdeMethod::Milstein => "milstein",
            SdeMethod::EulerHeun => "euler-heun",
            SdeMethod::Platen => "platen",
            SdeMethod::MilsteinAdaptive => "milstein-adaptive",
        }
    }

    /// Strong and weak orders for the noise the method accepts.
    pub fn orders(self) -> (f64, f64) {
        match self {
            SdeMethod::EulerMaruyama => (0.5, 1.0),
            SdeMethod::Milstein | SdeMethod::MilsteinAdaptive => (1.0, 1.0),
            SdeMethod::EulerHeun => (1.0, 1.0),
            SdeMethod::Platen => (1.0, 2.0),
        }
    }

    pub fn is_adaptive(self) -> bool {
        self == SdeMethod::MilsteinAdaptive
    }

    /// The method a fixed step of this one takes (`fixed_step` on an adaptive method).
    pub fn fixed(self) -> SdeMethod {
        match self {
            SdeMethod::MilsteinAdaptive => SdeMethod::Milstein,
            m => m,
        }
    }

    /// Whether the method evaluates `gdg` (g times ∂g/∂x, see `kernel::gdg_program`).
    pub fn needs_gdg(self) -> bool {
        matches!(self, SdeMethod::Milstein | SdeMethod::MilsteinAdaptive)
    }

    /// The method for a system's noise when none is named: euler-heun for Stratonovich
    /// systems, em otherwise.
    pub fn default_for(noise: Option<&Noise>) -> SdeMethod {
        match noise.map(|n| n.calculus) {
            Some(Calculus::Stratonovich) => SdeMethod::EulerHeun,
            _ => SdeMethod::EulerMaruyama,
        }
    }

    /// The fallback a refusal suggests for a system's calculus.
    pub fn fallback(calculus: Calculus) -> &'static str {
        match calculus {
            Calculus::Ito => "em",
            Calculus::Stratonovich => "euler-heun",
        }
    }

    /// Refuses a system the method cannot integrate, with what to use instead.
    pub fn check(self, system: &System) -> Result<&Noise, MethodError> {
        let name = || system.name().to_string();
        let noise = system.noise.as_ref().ok_or_else(|| MethodError::NoNoise {
            method: self.name(),
            system: name(),
        })?;
        let calculus = |c: Calculus| match c {
            Calculus::Ito => "Itô",
            Calculus::Stratonovich => "Stratonovich",
        };
        let kind = match noise.kind {
            NoiseKind::Diagonal => "diagonal",
            NoiseKind::Scalar => "scalar",
            NoiseKind::General { .. } => "general",
        };
        let wants = match self {
            SdeMethod::EulerMaruyama | SdeMethod::Platen => Some(Calculus::Ito),
            SdeMethod::EulerHeun => Some(Calculus::Stratonovich),
            SdeMethod::Milstein | SdeMethod::MilsteinAdaptive => None,
        };
        let general = matches!(noise.kind, NoiseKind::General { .. });
        if let Some(w) = wants
            && w != noise.calculus
        {
            return Err(MethodError::Calculus {
                method: self.name(),
                system: name(),
                wants: calculus(w),
                got: calculus(noise.calculus),
                // Only methods that take this system's noise: with general noise, milstein
                // and platen are refused below.
                hint: match (w, general) {
                    (Calculus::Ito, false) => {
                        "use euler-heun or milstein (or declare calculus = \"ito\")"
                    }
                    (Calculus::Ito, true) => "use euler-heun (or declare calculus = \"ito\")",
                    (Calculus::Stratonovich, false) => {
                        "use em, milstein or platen (or declare calculus = \"stratonovich\")"
                    }
                    (Calculus::Stratonovich, true) => {
                        "use em (or declare calculus = \"stratonovich\")"
                    }
                },
            });
        }
        if general && matches!(self, SdeMethod::Milstein | SdeMethod::MilsteinAdaptive) {
            return Err(MethodError::NoiseKind {
                method: self.name(),
                system: name(),
                needs: "diagonal or scalar",
                got: kind,
                hint: match noise.calculus {
                    Calculus::Ito => "its Lévy areas are not simulated; use em",
                    Calculus::Stratonovich => "its Lévy areas are not simulated; use euler-heun",
                },
            });
        }
        if general && self == SdeMethod::Platen {
            return Err(MethodError::NoiseKind {
                method: self.name(),
                system: name(),
                needs: "scalar or diagonal",
                got: kind,
                hint: "use em",
            });
        }
        Ok(noise)
    }
}
