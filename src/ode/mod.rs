//! Ensembles of ODE trajectories: problems, Runge–Kutta tableaus, the WGSL kernel and its
//! host driver, and the CPU f64 twin that tests hold the GPU to.

pub mod cpu;
pub mod ensemble;
pub mod kernel;
pub mod problem;
pub mod run;
pub mod solution;
pub mod tableau;

pub use ensemble::{Axis, Ensemble, EnsembleError, InitialStates, Parameters, Table};
pub use problem::{ProblemError, Save, SavePlan, TimeGrid};
pub use run::{FixedStepProblem, RunOptions, SimError, simulate};
pub use solution::{RunStats, Solution, Status};
pub use tableau::{Solver, Tableau};
