//! Ensembles of ODE trajectories. Each method family is a folder with its problem type,
//! kernel generator, CPU f64 twin and its plug into the shared runner: `fixed/` (fixed-step
//! Runge–Kutta), `adaptive/` (embedded pairs), `sde/` (stochastic methods) and `stiff/`
//! (Rosenbrock methods and automatic switching). What every family shares sits here:
//! `runner` (the chunk × batch × window loop, readback ring, cancellation, progress),
//! `options` and `error`, the ensemble description, device buffers, sinks and solutions.

pub mod adaptive;
pub mod any;
pub mod basins;
pub mod codegen;
pub mod cost;
pub mod device;
pub mod ensemble;
pub mod error;
pub mod estimate;
pub mod events;
pub mod fixed;
#[cfg(test)]
mod layout_check;
pub mod lyapunov;
pub mod montecarlo;
pub mod multi;
pub mod options;
pub mod orbit;
pub mod results;
pub mod run_dir;
pub mod runner;
pub mod sde;
pub mod sensitivity;
pub mod sink;
pub mod solution;
pub mod solver;
pub mod stage;
pub mod stiff;
#[cfg(feature = "zarr")]
pub mod store;
pub mod stream;
pub mod twin;

pub use adaptive::run::{run_adaptive_into, simulate_adaptive};
pub use adaptive::{AdaptiveProblem, Control, ControlError, SaveAt, Tolerance};
pub use any::Problem;
pub use device::Precision;
pub use ensemble::{Axis, Ensemble, EnsembleError, InitialStates, Inputs, Parameters, Table};
pub use error::{SimError, SinkError};
pub use events::EventLog;
pub use fixed::run::{run_into, simulate};
pub use fixed::tableau::Tableau;
pub use fixed::{FixedStepProblem, ProblemError, Save, SavePlan, TimeGrid};
pub use lyapunov::{LyapunovProblem, LyapunovResult, lyapunov_spectra};
pub use montecarlo::{MonteCarlo, MonteCarloResult};
pub use multi::run_on_devices;
pub use options::{ProgressHook, RunOptions, Tick};
pub use results::{ChunkResults, Rows};
pub use sde::{NoiseKey, SdeMethod, SdeProblem};
pub use sink::{FanOut, MemorySink, Sink, Tally};
pub use solution::{RunStats, Solution, StateValues, Status, StepCounts};
pub use solver::Solver;
pub use stiff::{StiffMethod, StiffProblem};
pub use stream::{EnsembleStats, NpySink, SavesNpy, TrajectoryStats};
