//! The errors of an ensemble run, shared by every method family and every sink, and the
//! host-memory check every run makes before it starts.

use super::adaptive::problem::ControlError;
use super::ensemble::EnsembleError;
use super::fixed::problem::ProblemError;
use super::lyapunov::problem::LyapunovError;
use super::sde::problem::SdeCheckError;
use super::stiff::problem::StiffError;
use crate::gpu::GpuError;
use crate::precision::Precision;
use crate::schedule::plan::PlanError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SimError {
    #[error(transparent)]
    Problem(#[from] ProblemError),
    #[error(transparent)]
    Ensemble(#[from] EnsembleError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Sde(#[from] SdeCheckError),
    #[error(transparent)]
    Stiff(#[from] StiffError),
    #[error(transparent)]
    Lyapunov(#[from] LyapunovError),
    #[error(
        "the saved states would take {gib:.1} GiB of host memory; save less often or run fewer trajectories"
    )]
    OutputTooLarge { gib: f64 },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("{0} save times do not fit one device buffer; save less often")]
    TooManySaves(usize),
}

#[derive(Debug, Error)]
pub enum SinkError {
    #[error("writing '{path}' failed: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Host-side results are refused above this size (the in-memory `Solution` holds them all).
const MAX_HOST_OUTPUT: u64 = 16 << 30;

/// The in-memory `Solution` holds every saved state: refuse runs whose saves would not fit.
pub(crate) fn host_output_fits(
    n_slots: usize,
    n: usize,
    dim: usize,
    precision: Precision,
) -> Result<(), SimError> {
    let bytes = (n_slots as u64)
        .saturating_mul(n as u64)
        .saturating_mul(dim as u64)
        .saturating_mul(precision.bytes());
    if bytes > MAX_HOST_OUTPUT {
        return Err(SimError::OutputTooLarge {
            gib: bytes as f64 / (1u64 << 30) as f64,
        });
    }
    Ok(())
}
