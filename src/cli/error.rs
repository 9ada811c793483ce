//! The command line's error: what went wrong, sorted by who can fix it, with the exit code
//! each kind gives; library errors (specs, the GPU) convert into it.

use crate::gpu::GpuError;
use crate::model::Diagnostics;

/// What went wrong, sorted by who can fix it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The user's input is wrong (exit 2).
    #[error("{0}")]
    Input(String),
    /// The user's system or config has errors with positions (exit 2).
    #[error("{0}")]
    Diagnostics(Diagnostics),
    /// No usable GPU (exit 3).
    #[error("{0}")]
    NoGpu(String),
    /// The run itself failed (exit 1).
    #[error("{0}")]
    Runtime(String),
    /// Stopped by Ctrl-C; what was done is saved and marked partial (exit 130).
    #[error("{0}")]
    Interrupted(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Runtime(_) => 1,
            CliError::Input(_) | CliError::Diagnostics(_) => 2,
            CliError::NoGpu(_) => 3,
            CliError::Interrupted(_) => 130,
        }
    }
}

impl From<crate::spec::SpecError> for CliError {
    fn from(e: crate::spec::SpecError) -> Self {
        match e {
            // Keys of a config file (train, generate) as the file names them; `simulate`
            // names its keys as flags (spec_flags).
            crate::spec::SpecError::Field(f) => CliError::Input(f.to_string()),
            crate::spec::SpecError::Input(m) => CliError::Input(m),
            crate::spec::SpecError::Diagnostics(d) => CliError::Diagnostics(d),
        }
    }
}

impl From<GpuError> for CliError {
    fn from(e: GpuError) -> Self {
        match e {
            GpuError::NoAdapter | GpuError::NoSuchAdapter { .. } | GpuError::Device { .. } => {
                CliError::NoGpu(e.to_string())
            }
            // What was asked is beyond this adapter (a batch too large, a feature it lacks):
            // the request must change, so it is bad input.
            GpuError::Unsupported(m) => CliError::Input(m),
            other => CliError::Runtime(other.to_string()),
        }
    }
}

impl From<crate::ode::run_dir::RunDirError> for CliError {
    fn from(e: crate::ode::run_dir::RunDirError) -> Self {
        use crate::ode::run_dir::RunDirError;
        match e {
            RunDirError::Input(m) => CliError::Input(m),
            RunDirError::Runtime(m) => CliError::Runtime(m),
            RunDirError::Spec(e) => e.into(),
            RunDirError::Sim(e) => e.into(),
        }
    }
}
