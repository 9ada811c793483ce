//! The adaptive family: embedded Runge–Kutta pairs with error control and dense output.
//! `problem` says what is integrated (span, save times, step-size control), `pair` holds
//! the coefficients, `kernel` generates the WGSL of `shaders/ode/adaptive/`, `cpu` is the
//! f64 twin the kernel is tested against, and `run` plugs the family into `ode::runner`.

pub mod cpu;
pub mod kernel;
pub mod pair;
pub mod problem;
pub mod run;

pub use problem::{AdaptiveProblem, Control, ControlError, Exponents, SaveAt, Tolerance};
