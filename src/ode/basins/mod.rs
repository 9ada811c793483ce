//! Basins of attraction: a grid of initial states over two states (the others fixed), every
//! grid point one trajectory of an ordinary ensemble run, each labelled by the attractor it
//! reaches. No kernel of its own: any ODE family runs the grid and a sink (`sink`) labels
//! trajectories chunk by chunk, so memory holds labels and attractors, never the saves.
//!
//! Labelling (`classify`): by default attractor-agnostic features, per state the minimum
//! and maximum over the saves in the run's last `window` time units, matched greedily to
//! representatives within an absolute plus relative tolerance; or a user expression of the
//! final state, rounded. Trajectories that stop early or turn non-finite get −1. Attractors
//! are numbered by their own features (or value), ascending, so labels do not depend on
//! chunking or on how the grid is scanned. `entropy` gives the basin entropy of the map, and
//! `summary` what a run found, as JSON.
//!
//! ```no_run
//! use phaseflow::{gpu, model, ode};
//! use phaseflow::ode::basins::{self, BasinsProblem, Match, Method};
//! let ctx = gpu::GpuContext::new(&gpu::AdapterChoice::Best).unwrap();
//! let system = model::builtin("duffing").unwrap().unwrap();
//! let mut ensemble = ode::Ensemble::new(&system, 400 * 400);
//! ensemble.base_params[system.param_index("gamma").unwrap()] = 0.0; // unforced
//! // Rows over v (slowest), columns over x.
//! ensemble.initial = ode::InitialStates::Grid(vec![
//!     ode::Axis::grid(1, -2.0, 2.0, 400),
//!     ode::Axis::grid(0, -2.0, 2.0, 400),
//! ]);
//! let mut run = ode::Problem::Adaptive(ode::AdaptiveProblem {
//!     system,
//!     solver: ode::Solver::Tsit5,
//!     t0: 0.0,
//!     t1: 200.0,
//!     saveat: ode::SaveAt::Final,
//!     control: ode::Control::default(),
//!     ensemble,
//!     precision: ode::Precision::F32,
//! });
//! basins::save_window(&mut run, 20.0, 100).unwrap();
//! let problem = BasinsProblem {
//!     run,
//!     method: Method::Features { window: 20.0, tol: Match::default(), escape: None },
//!     max_attractors: basins::DEFAULT_MAX_ATTRACTORS,
//! };
//! let result = basins::run_basins(&ctx, &problem, &ode::RunOptions::default()).unwrap();
//! println!("{:?}", result.fractions());
//! ```

pub mod classify;
pub mod entropy;
pub mod problem;
pub mod sink;
pub mod summary;

pub use classify::{ClassifyError, DIVERGED, Match};
pub use entropy::{BasinEntropy, basin_entropy};
pub use problem::{
    Attractor, BasinsError, BasinsProblem, BasinsResult, DEFAULT_MAX_ATTRACTORS, Grid, Method,
    expression, run_basins, run_basins_into, save_window,
};
pub use sink::BasinsSink;
