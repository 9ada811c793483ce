//! What can go wrong with a run directory.

/// Why a run directory cannot be used or written.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// The user's input: a directory holding something else, a resume whose settings do
    /// not match, outputs the host could not hold; nothing was run.
    #[error("{0}")]
    Input(String),
    /// Writing the results failed while the run went on.
    #[error("{0}")]
    Runtime(String),
    /// The run's spec is wrong (its key, or the system's diagnostics).
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// The run could not be set up or failed on the device.
    #[error(transparent)]
    Sim(#[from] crate::ode::SimError),
}
