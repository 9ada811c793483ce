//! Lyapunov spectra over ensembles (Benettin's method): each trajectory's state and k
//! tangent vectors integrated together by a fixed-step explicit Runge–Kutta method, the
//! tangent stages from the system's sparse symbolic Jacobian, re-orthonormalised by
//! modified Gram–Schmidt at a fixed interval after a transient; the exponents are the mean
//! growth rates ln R_mm / T, each with the standard error of its block means. `problem`
//! says what is computed and refuses what the kernel cannot do, `kernel` generates
//! `shaders/ode/lyapunov/`, `cpu` is the f64 twin the kernel is tested against, `run`
//! plugs the family into `ode::runner`, and `summary` says what a run found, as JSON.
//!
//! Why modified Gram–Schmidt and not Householder: the vectors are few and short (dim·k ≤
//! `MAX_AUGMENTED`), MGS gives R's diagonal directly as the norms it divides by, unrolls to
//! straight-line code with no reflector storage, and its loss of orthogonality (ε times
//! the condition number of the vectors it is given) is kept small by re-orthonormalising
//! often: the vectors' condition number grows like exp((λ1 − λk)·renorm), about 5 for the
//! Lorenz spectrum at renorm = 0.1, so the k-th vector keeps its own direction to well
//! within f32 rounding. Householder would buy orthogonality to ε whatever the condition,
//! which only matters at intervals long enough that the tangent integration itself (in
//! f32) has already lost the smallest directions.

pub mod cpu;
pub mod kernel;
pub mod problem;
pub mod run;
pub mod summary;

pub use problem::{DEFAULT_BLOCKS, LyapunovError, LyapunovProblem, MAX_AUGMENTED, Steps};
pub use run::{LyapunovResult, SpectraSink, lyapunov_spectra, run_lyapunov_into};
