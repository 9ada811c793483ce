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
    #[error("{what} would take {gib:.1} GiB of host memory; {hint}")]
    OutputTooLarge {
        /// What the host would hold: "the saved states", "the exponents and final states".
        what: &'static str,
        gib: f64,
        /// What to change.
        hint: &'static str,
    },
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
    host_results_fit(
        "the saved states",
        "save less often or run fewer trajectories",
        (n_slots as u64).saturating_mul(n as u64),
        dim,
        precision,
    )
}

/// An in-memory `Solution` of `system`: its saves, and for a system with events every
/// trajectory's event records (kept as f64), must both fit.
pub(crate) fn solution_fits(
    system: &crate::model::System,
    n_slots: usize,
    n: usize,
    precision: Precision,
) -> Result<(), SimError> {
    host_output_fits(n_slots, n, system.dim(), precision)?;
    if system.events.is_empty() {
        return Ok(());
    }
    host_results_fit(
        "the event records",
        "keep fewer records per trajectory (events, points), run fewer trajectories, or \
         stream them to disk (-o DIR)",
        (n as u64).saturating_mul(system.event_log.k as u64),
        crate::ode::events::log::record_width(system.dim()),
        Precision::F64,
    )
}

/// Results held in host memory, `rows` of `width` reals (per trajectory, or per save and
/// trajectory), refused above `MAX_HOST_OUTPUT` with a message naming `what` they are.
pub(crate) fn host_results_fit(
    what: &'static str,
    hint: &'static str,
    rows: u64,
    width: usize,
    precision: Precision,
) -> Result<(), SimError> {
    let bytes = rows
        .saturating_mul(width as u64)
        .saturating_mul(precision.bytes());
    if bytes > MAX_HOST_OUTPUT {
        return Err(SimError::OutputTooLarge {
            what,
            gib: bytes as f64 / (1u64 << 30) as f64,
            hint,
        });
    }
    Ok(())
}
