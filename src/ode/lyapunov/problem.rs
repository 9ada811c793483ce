//! What a Lyapunov-spectrum run computes: the system and ensemble, the fixed-step method
//! and its step, the transient, the averaging time, the re-orthonormalisation interval, how
//! many exponents and how many blocks the convergence estimate averages over; and the
//! checks that refuse what the kernel cannot do.

use crate::model::System;
use crate::model::derive::{DeriveError, Jacobian};
use crate::ode::ensemble::Ensemble;
use crate::ode::fixed::problem::{MAX_STEPS, ProblemError, TimeGrid};
use crate::ode::fixed::tableau::{RK4, Tableau};
use crate::precision::Precision;
use thiserror::Error;

/// Most reals in the augmented state, dim·(k + 1) (the state and k tangent vectors). One
/// invocation keeps it in registers, unrolled: a Runge–Kutta step holds the augmented state,
/// the stage being built and the stages' slopes, so RK4 keeps some 3–6 copies live, and
/// GPUs give a thread about 255 registers before spilling to slow private memory. The
/// driver's compile time also grows faster than the unrolled size (`spec::run::MAX_STATES`:
/// 100 states compile in 9 s on lavapipe, 200 in 83 s). 128 holds a 10-state system's full
/// spectrum (110) and Lorenz-96 with 8 sites (72), and compiles in seconds.
pub const MAX_AUGMENTED: usize = 128;

/// Blocks of the convergence estimate unless told otherwise.
pub const DEFAULT_BLOCKS: usize = 10;

#[derive(Debug, Error, PartialEq)]
pub enum LyapunovError {
    #[error(
        "'{system}' has a noise block: Lyapunov spectra are computed for ODEs (the \
         variational equations of a deterministic flow); remove the noise block"
    )]
    Stochastic { system: String },
    #[error(
        "'{system}' has events that act on the trajectory ({events}): a reset or an end \
         makes the flow jump, and its exponents would need the jump's own linearisation (a \
         saltation matrix), which phaseflow does not compute; remove those [[events]] (or \
         make them action = \"record\") to measure the smooth flow"
    )]
    Events { system: String, events: String },
    #[error(
        "{k} exponents of '{system}' need dim·(k + 1) = {need} reals per trajectory in \
         registers (the state and {k} tangent vectors); at most {MAX_AUGMENTED} are \
         supported: ask for fewer exponents (-k) or use a smaller system"
    )]
    TooLarge {
        system: String,
        k: usize,
        need: usize,
    },
    #[error(
        "the number of exponents k must be between 1 and the {dim} states of '{system}' (got {k})"
    )]
    BadK {
        system: String,
        k: usize,
        dim: usize,
    },
    #[error("Lyapunov spectra need the Jacobian of '{system}': {source}")]
    Jacobian {
        system: String,
        #[source]
        source: DeriveError,
    },
    #[error("{what} must be a finite number {rule} (got {value})")]
    BadTime {
        what: &'static str,
        rule: &'static str,
        value: f64,
    },
    #[error(
        "{what} = {value} is not a whole number of steps of dt = {dt} ({steps:.4} steps); \
         choose values that dt divides"
    )]
    NotWholeSteps {
        what: &'static str,
        value: f64,
        dt: f64,
        steps: f64,
    },
    #[error(
        "the averaging time {time} is not a whole number of renorm intervals of {renorm}; \
         choose a renorm that divides it"
    )]
    RenormDoesNotDivide { time: f64, renorm: f64 },
    #[error(
        "the averaging time {time} holds {renorms} re-orthonormalisation(s) of every {renorm}; \
         the convergence estimate needs at least 2 (a shorter renorm or a longer time)"
    )]
    TooFewRenorms {
        time: f64,
        renorm: f64,
        renorms: u32,
    },
    #[error("blocks must be at least 2 (the estimate is the spread of block means; got {0})")]
    BadBlocks(usize),
    #[error("{0}")]
    Grid(#[from] ProblemError),
}

/// A Lyapunov-spectrum problem over an ensemble: each trajectory integrates its state for
/// `transient`, then the state with `k` tangent vectors for `time`, re-orthonormalising
/// every `renorm`.
#[derive(Debug, Clone)]
pub struct LyapunovProblem {
    pub system: System,
    pub ensemble: Ensemble,
    pub precision: Precision,
    /// The explicit Runge–Kutta method of every step (`ode::fixed::tableau`, or an
    /// adaptive pair's propagating method via `Solver::step_tableau`).
    pub tableau: Tableau,
    pub t0: f64,
    pub dt: f64,
    /// Time integrated before the tangent vectors start (state only).
    pub transient: f64,
    /// Time the exponents are averaged over, after the transient.
    pub time: f64,
    /// Time between re-orthonormalisations (a whole number of steps).
    pub renorm: f64,
    /// Exponents: the k largest (k = dim: the full spectrum).
    pub k: usize,
    /// Blocks of the averaging time whose spread gives each exponent's standard error.
    pub blocks: usize,
}

impl LyapunovProblem {
    /// The full spectrum of `system` with RK4 at `dt`, default blocks, every trajectory at
    /// the system's defaults (`n` of them); the caller sets sweeps on `ensemble`.
    pub fn new(system: System, n: usize, dt: f64, transient: f64, time: f64) -> Self {
        let k = system.dim();
        LyapunovProblem {
            ensemble: Ensemble::new(&system, n),
            system,
            precision: Precision::F32,
            tableau: RK4,
            t0: 0.0,
            dt,
            transient,
            time,
            renorm: 10.0 * dt,
            k,
            blocks: DEFAULT_BLOCKS,
        }
    }

    /// Checks everything but the ensemble; returns the step plan and the Jacobian.
    pub fn check(&self) -> Result<(Steps, Jacobian), LyapunovError> {
        let jacobian = check_system(&self.system, self.k)?;
        Ok((self.steps()?, jacobian))
    }

    /// The step counts of the run.
    pub fn steps(&self) -> Result<Steps, LyapunovError> {
        let positive = |what, value: f64| {
            if value > 0.0 && value.is_finite() {
                Ok(())
            } else {
                Err(LyapunovError::BadTime {
                    what,
                    rule: "above zero",
                    value,
                })
            }
        };
        positive("dt", self.dt)?;
        positive("time", self.time)?;
        positive("renorm", self.renorm)?;
        if !(self.transient >= 0.0 && self.transient.is_finite()) {
            return Err(LyapunovError::BadTime {
                what: "transient",
                rule: "of zero or more",
                value: self.transient,
            });
        }
        if !self.t0.is_finite() {
            return Err(LyapunovError::BadTime {
                what: "t0",
                rule: "",
                value: self.t0,
            });
        }
        if self.blocks < 2 {
            return Err(LyapunovError::BadBlocks(self.blocks));
        }
        let whole = |what, value: f64| -> Result<u32, LyapunovError> {
            let steps = value / self.dt;
            let n = steps.round();
            if (steps - n).abs() > 1e-9 * steps.max(1.0) {
                return Err(LyapunovError::NotWholeSteps {
                    what,
                    value,
                    dt: self.dt,
                    steps,
                });
            }
            if n > MAX_STEPS as f64 {
                return Err(ProblemError::TooManySteps {
                    steps: n,
                    max: MAX_STEPS,
                }
                .into());
            }
            Ok(n as u32)
        };
        let transient = whole("transient", self.transient)?;
        let main = whole("time", self.time)?;
        let renorm = whole("renorm", self.renorm)?.max(1);
        if main % renorm != 0 {
            return Err(LyapunovError::RenormDoesNotDivide {
                time: self.time,
                renorm: self.renorm,
            });
        }
        let renorms = main / renorm;
        if renorms < 2 {
            return Err(LyapunovError::TooFewRenorms {
                time: self.time,
                renorm: self.renorm,
                renorms,
            });
        }
        let total = transient as u64 + main as u64;
        if total > MAX_STEPS {
            return Err(ProblemError::TooManySteps {
                steps: total as f64,
                max: MAX_STEPS,
            }
            .into());
        }
        // Blocks of whole renormalisations: ceil(renorms / blocks) each, the last one
        // shorter when they do not divide (at most `blocks` blocks, at least 2).
        let per_block = renorms.div_ceil(self.blocks.min(renorms as usize) as u32);
        Ok(Steps {
            grid: TimeGrid {
                t0: self.t0,
                dt: self.dt,
                n_steps: transient + main,
            },
            transient,
            renorm,
            renorms,
            per_block,
        })
    }
}

/// A run's steps: the grid of all steps (transient first), then renormalisations every
/// `renorm` steps of the averaging part, grouped in blocks of `per_block`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Steps {
    pub grid: TimeGrid,
    pub transient: u32,
    pub renorm: u32,
    pub renorms: u32,
    pub per_block: u32,
}

impl Steps {
    /// Steps of the averaging part.
    pub fn main(&self) -> u32 {
        self.grid.n_steps - self.transient
    }

    /// Blocks of the convergence estimate.
    pub fn blocks(&self) -> u32 {
        self.renorms.div_ceil(self.per_block)
    }
}

/// The tangent vectors every trajectory starts from when its transient ends: k orthonormal
/// vectors in general position (Gaussian entries of a fixed seed, orthonormalised by
/// Gram–Schmidt in f64), the same for every trajectory and every run. Not the unit vectors:
/// those can lie in an invariant subspace of the tangent flow, e.g. Lorenz at ρ = 0 from
/// (x, 0, 0), where J·e_x = −σ·e_x exactly, so the first vector would never turn towards the
/// leading direction and λ1 would come out as −σ instead of −1.
pub fn initial_tangent(dim: usize, k: usize) -> Vec<Vec<f64>> {
    let mut q: Vec<Vec<f64>> = (0..k)
        .map(|m| {
            (0..dim)
                .map(|c| crate::rng::normal_f64(0x1a9u64, (m * dim + c) as u64, 0))
                .collect()
        })
        .collect();
    for m in 0..k {
        let (done, rest) = q.split_at_mut(m);
        let v = &mut rest[0];
        for u in done.iter() {
            let r: f64 = u.iter().zip(v.iter()).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(vc, uc)| *vc -= r * uc);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
    }
    q
}

/// Whether the Lyapunov kernel takes a system and `k` exponents: an ODE whose augmented
/// state fits `MAX_AUGMENTED` and whose Jacobian can be derived (which it returns).
pub fn check_system(system: &System, k: usize) -> Result<Jacobian, LyapunovError> {
    let name = system.name().to_string();
    if system.noise.is_some() {
        return Err(LyapunovError::Stochastic { system: name });
    }
    // Record-only events leave the flow alone (and the Lyapunov kernel does not log them).
    let acting: Vec<_> = system
        .events
        .iter()
        .filter(|e| e.action != crate::model::event::Action::Record)
        .collect();
    if !acting.is_empty() {
        let events = acting
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(LyapunovError::Events {
            system: name,
            events,
        });
    }
    let dim = system.dim();
    if k == 0 || k > dim {
        return Err(LyapunovError::BadK {
            system: name,
            k,
            dim,
        });
    }
    let need = dim * (k + 1);
    if need > MAX_AUGMENTED {
        return Err(LyapunovError::TooLarge {
            system: name,
            k,
            need,
        });
    }
    system
        .state_jacobian()
        .map_err(|source| LyapunovError::Jacobian {
            system: name,
            source,
        })
}
