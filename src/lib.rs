//! phaseflow: a headless GPU compute engine. WGSL compute shaders run through wgpu integrate
//! huge ensembles of ODE trajectories (fixed-step or adaptive, f32 or f64); a host-side
//! planner cuts runs into pieces the device can hold.
//!
//! Cargo features (all on by default): `cli`, the `phaseflow` binary (clap, indicatif,
//! ctrlc, env_logger, and `plot`); `serve`, the HTTP server (axum, tokio's
//! runtime and network stack); `plot`, PNG line charts in `io::plot` (plotters). With
//! `default-features = false` the crate is the engine alone: models, ODE and neural-network
//! kernels, the planner, readers, [`engine::Engine`] (whose async methods need only tokio's
//! runtime-free channels) and the request types of [`spec`].
//!
//! ```no_run
//! use phaseflow::{gpu, model, ode};
//! let ctx = gpu::GpuContext::new(&gpu::AdapterChoice::Best).unwrap();
//! let system = model::builtin("lorenz").unwrap().unwrap();
//! let mut ensemble = ode::Ensemble::new(&system, 1000);
//! ensemble.params = ode::Parameters::Sweep(vec![ode::Axis::linear(1, 0.0, 50.0)]);
//! // Adaptive Tsit5, each trajectory with its own step size, saved on a common grid.
//! let problem = ode::AdaptiveProblem {
//!     system,
//!     solver: ode::Solver::Tsit5,
//!     t0: 0.0,
//!     t1: 10.0,
//!     saveat: ode::SaveAt::grid(0.0, 0.1, 10.0).unwrap(),
//!     control: ode::Control {
//!         rtol: ode::Tolerance::All(1e-6),
//!         atol: ode::Tolerance::All(1e-6),
//!         ..ode::Control::default()
//!     },
//!     ensemble,
//!     precision: ode::Precision::F32,
//! };
//! let solution = ode::simulate_adaptive(&ctx, &problem, &ode::RunOptions::default()).unwrap();
//! println!("{:?} {:?}", solution.final_state(0), solution.status_counts());
//! ```

#[cfg(feature = "cli")]
pub mod cli;
mod embedded;
pub mod engine;
pub mod gpu;
pub mod io;
pub mod model;
pub mod nn;
pub mod ode;
pub mod precision;
pub mod rng;
pub mod schedule;
pub mod selftest;
#[cfg(feature = "serve")]
pub mod serve;
pub mod spec;

pub use precision::Precision;
