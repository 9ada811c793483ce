//! Ensembles of ODE trajectories: problems, Runge–Kutta tableaus and embedded pairs, the
//! fixed-step and adaptive WGSL kernels with their host drivers, and the CPU f64 twins that
//! tests hold the GPU to.

pub mod adaptive;
pub mod adaptive_cpu;
pub mod adaptive_kernel;
pub mod adaptive_run;
pub mod any;
pub mod cost;
pub mod cpu;
pub mod device;
pub mod ensemble;
pub mod kernel;
pub mod multi;
pub mod pair;
pub mod problem;
pub mod run;
pub mod sink;
pub mod solution;
pub mod stream;
pub mod tableau;

pub use adaptive::{AdaptiveProblem, Control, ControlError, SaveAt, Tolerance};
pub use adaptive_run::{run_adaptive_into, simulate_adaptive};
pub use any::Problem;
pub use device::Precision;
pub use ensemble::{Axis, Ensemble, EnsembleError, InitialStates, Inputs, Parameters, Table};
pub use multi::run_on_devices;
pub use problem::{ProblemError, Save, SavePlan, TimeGrid};
pub use run::{FixedStepProblem, ProgressHook, RunOptions, SimError, Tick, run_into, simulate};
pub use sink::{FanOut, MemorySink, Sink, SinkError, Tally};
pub use solution::{RunStats, Solution, StateValues, Status, StepCounts};
pub use stream::{EnsembleStats, NpySink, TrajectoryStats};
pub use tableau::{Solver, Tableau};
