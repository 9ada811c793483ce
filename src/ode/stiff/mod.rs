//! Stiff systems: linearly implicit Rosenbrock–Wanner methods with embedded error
//! estimates and dense output, and automatic switching between an explicit pair (Tsit5)
//! and a Rosenbrock method per trajectory. `method` names the methods, `tableau` holds
//! their coefficients (shared by the kernel generator and the twin), `lu` is the
//! factorisation of W = I/(hγ) − J with partial pivoting over the Jacobian's sparsity,
//! `problem` says what is integrated, `kernel` generates `shaders/ode/stiff/`, `cpu` is the
//! f64 twin and `run` plugs the family into `ode::runner`.

pub mod cpu;
pub mod kernel;
pub mod lu;
pub mod method;
pub mod problem;
pub mod run;
pub mod tableau;

pub use method::{MAX_STIFF_DIM, StiffMethod};
pub use problem::{StiffError, StiffProblem};
pub use run::{plan_stiff, run_stiff_into, simulate_stiff};
pub use tableau::Rosenbrock;
