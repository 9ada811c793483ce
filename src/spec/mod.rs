//! What a user asks for, as data: runs (simulations), DeepONet training, operator-data
//! generation, MLP fits and learning-rate schedules. Every front-end (the CLI's flags and config
//! files, the HTTP server's JSON bodies, a program embedding the library) fills in these
//! serde types and gets a checked problem back, or a `SpecError` it renders its own way.
//! Nothing here knows about command-line flags.

pub mod analysis;
pub mod basins;
mod config_file;
mod error;
pub mod estimate;
pub mod fit;
pub mod fit_data;
pub mod generate;
pub mod lyapunov;
mod ode_errors;
pub mod orbit;
pub mod run;
mod schedule;
pub mod sensitivity;
pub mod train;
mod unread;
pub mod validate;

pub use analysis::{BasinsSpec, LyapunovSpec, OrbitSpec};
pub use config_file::{read_toml, relative_to_config};
pub use error::{FieldError, SpecError};
pub use ode_errors::{control_error, grid_error};
pub use orbit::orbit_problem;
pub use run::{
    MAX_SAVE_TIMES, MAX_STATES, Output, RunSpec, U0Spec, build_problem, load_system, lookup,
    problem_for_system,
};
pub use schedule::parse_schedule;
pub use sensitivity::sensitivity_run;
