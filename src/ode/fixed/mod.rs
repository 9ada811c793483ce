//! The fixed-step family: explicit Runge–Kutta methods on a uniform time grid. `problem`
//! says what is integrated (grid, saves), `tableau` holds the coefficients, `kernel`
//! generates the WGSL of `shaders/ode/fixed/`, `cpu` is the f64 twin the kernel is tested
//! against, and `run` plugs the family into `ode::runner`.

pub mod cpu;
pub mod kernel;
pub mod problem;
pub mod run;
pub mod tableau;

pub use problem::{FixedStepProblem, ProblemError, Save, SavePlan, TimeGrid};
pub use tableau::Tableau;
