//! Parameter estimation as an engine job: the fits of an `EstimationProblem` (one per
//! trajectory, by single or multiple shooting, or one shared by all) run on the engine's
//! device within the job's memory budget, cancellable between GPU runs. Progress counts the
//! fits' GPU runs against the most their iteration limit allows, so it moves while the
//! Levenberg–Marquardt loop goes and jumps to the end when every fit has stopped early.

use super::error::EngineError;
use super::job::JobShared;
use super::queue::Inner;
use crate::gpu::GpuContext;
use crate::ode::estimate::shared::{SharedEstimate, estimate_shared};
use crate::ode::estimate::shooting::estimate_shooting;
use crate::ode::estimate::{Estimate, EstimateError, EstimationProblem};
use crate::ode::{ProgressHook, RunOptions, Tick};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// Which fits an estimation job makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FitMode {
    /// One fit per trajectory; `segments` > 1 fits each by multiple shooting.
    Each { segments: usize },
    /// One set of values shared by every trajectory.
    Shared,
}

/// What an estimation job returns.
#[derive(Debug, Clone)]
pub enum Fitted {
    Each(Estimate),
    Shared(SharedEstimate),
}

/// The most GPU runs the fits may make: an evaluation at the start and one per iteration,
/// each one run per segment; multiple shooting then finishes with single shooting.
pub(super) fn run_bound(ep: &EstimationProblem, mode: FitMode) -> u64 {
    let per_fit = ep.stopping.max_iterations as u64 + 1;
    match mode {
        FitMode::Shared | FitMode::Each { segments: 1 } => per_fit,
        FitMode::Each { segments } => per_fit.saturating_mul(segments as u64 + 1),
    }
}

/// Bytes of host memory the result takes: per trajectory its values, standard errors,
/// covariance, cost, iterations and status (a shared fit keeps one set and a cost per
/// trajectory, which this bounds).
pub fn estimate_result_bytes(ep: &EstimationProblem) -> u64 {
    let k = ep.targets.len() as u64;
    (ep.problem.ensemble().n as u64).saturating_mul(8 * (2 * k + k * k + 1) + 4 + 1 + 8)
}

pub(super) fn run(
    ctx: &GpuContext,
    ep: &EstimationProblem,
    mode: FitMode,
    mut options: RunOptions,
    shared: &Arc<JobShared>,
    inner: &Weak<Inner>,
) -> Result<Fitted, EngineError> {
    let total = run_bound(ep, mode);
    options.cancel = Some(shared.cancel.clone());
    // Every GPU run announces its work once (per device) before it starts.
    let runs = AtomicU64::new(0);
    let ticking = shared.clone();
    options.progress = Some(ProgressHook::new(move |tick| {
        if let Tick::Total(_) = tick {
            let started = runs.fetch_add(1, Ordering::Relaxed) + 1;
            // The run under way is not done yet.
            ticking.advance_to((started - 1).min(total.saturating_sub(1)));
        }
    }));
    let fitted = match mode {
        FitMode::Shared => estimate_shared(ctx, ep, &options).map(Fitted::Shared),
        FitMode::Each { segments } => {
            estimate_shooting(ctx, ep, segments, &options).map(Fitted::Each)
        }
    };
    let result = fitted.map_err(|e| match e {
        EstimateError::Cancelled => EngineError::Cancelled {
            done: shared.progress().done,
            total,
        },
        EstimateError::Sim(s) => EngineError::Sim(s),
        other => EngineError::BadInput(other.to_string()),
    });
    if let Ok(fitted) = &result {
        shared.set_done(total);
        if let Some(inner) = inner.upgrade() {
            let solve = match fitted {
                Fitted::Each(e) => e.solve,
                Fitted::Shared(s) => s.solve,
            };
            inner.add_busy(solve, 0);
        }
    }
    if let Some(inner) = inner.upgrade() {
        inner.finish(shared, &result);
    }
    result
}
