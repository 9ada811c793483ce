//! Stochastic differential equations dX = f(t, X) dt + G(t, X) dW over ensembles: the
//! methods (`method`), the problem (`problem`), counter-based noise and the virtual
//! Brownian tree (`noise`), the kernels (`kernel`, `shaders/ode/sde/`; with events
//! `events`), their CPU twin (`cpu`, `cpu_events`) and their plug into the shared runner (`run`).

pub mod cpu;
pub mod cpu_events;
pub mod events;
pub mod kernel;
pub mod method;
pub mod noise;
pub mod problem;
pub mod run;

pub use method::{MethodError, SdeMethod};
pub use noise::NoiseKey;
pub use problem::{
    DEFAULT_TREE_DEPTH, DEFAULT_TREE_DEPTH_F32, SdeCheckError, SdeError, SdeProblem, Steps,
    default_tree_depth,
};
pub use run::{plan_sde, run_sde_into, simulate_sde};
