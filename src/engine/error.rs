//! How an engine job can fail, and the text a panic carried (a panic inside a job ends
//! that job as `EngineError::Internal`).

use crate::gpu::GpuError;
use crate::ode::SimError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error("{0}")]
    BadInput(String),
    #[error(
        "the job asks for {asked} bytes of device memory; this engine allows at most {limit} per job"
    )]
    OverBudget { asked: u64, limit: u64 },
    #[error(
        "the results would take {bytes} bytes of host memory; this engine returns at most {limit}"
    )]
    ResultTooLarge { bytes: u64, limit: u64 },
    #[error("{limit} jobs are already queued or running, the most this engine takes; retry later")]
    Busy { limit: usize },
    #[error("cancelled after {done} of {total}")]
    Cancelled { done: u64, total: u64 },
    #[error("the engine has shut down")]
    ShutDown,
    /// A bug inside the job (a panic) ended it; the engine and its other jobs carry on.
    #[error("the job failed on an internal error: {0}")]
    Internal(String),
}

/// The text a panic carried (`panic!("...")` gives a `&str` or a `String`).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
