//! phaseflow: a headless GPU compute engine. WGSL compute shaders run through wgpu integrate
//! huge ensembles of ODE trajectories; a host-side planner cuts runs into pieces the device
//! can hold.
//!
//! ```no_run
//! use phaseflow::{gpu, model, ode};
//! let ctx = gpu::GpuContext::new(&gpu::AdapterChoice::Best).unwrap();
//! let system = model::builtin("lorenz").unwrap().unwrap();
//! let mut ensemble = ode::Ensemble::new(&system, 1000);
//! ensemble.params = ode::Parameters::Sweep(vec![ode::Axis::linear(1, 0.0, 50.0)]);
//! let problem = ode::FixedStepProblem {
//!     system,
//!     solver: ode::Solver::Rk4,
//!     grid: ode::TimeGrid::from_span(0.0, 10.0, 1e-3).unwrap(),
//!     save: ode::Save::Final,
//!     ensemble,
//! };
//! let solution = ode::simulate(&ctx, &problem, &ode::RunOptions::default()).unwrap();
//! println!("{:?}", solution.final_state(0));
//! ```

pub mod cli;
mod embedded;
pub mod gpu;
pub mod io;
pub mod model;
pub mod ode;
pub mod rng;
pub mod schedule;
