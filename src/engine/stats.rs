//! What an engine has done since it started: the counters its threads bump, and the
//! snapshot `Engine::stats` reads from them.

use std::sync::atomic::AtomicU64;

/// Counters since the engine started (what a server's /metrics reports).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct EngineStats {
    pub queued: usize,
    pub running: usize,
    pub submitted: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Device memory reserved by running jobs' budgets.
    pub reserved_bytes: u64,
    /// Device memory in buffers right now, as the driver layer counts it.
    pub device_bytes: i64,
    /// GPU time of finished simulation and training jobs (timestamps where the adapter has
    /// them, else wall time).
    pub gpu_busy_s: f64,
    pub trajectory_steps: u64,
    pub predictions: u64,
    pub prediction_batches: u64,
    pub predict_busy_s: f64,
}

/// The live counters behind `EngineStats`, bumped by runners and prediction batchers.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) submitted: AtomicU64,
    pub(super) succeeded: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) cancelled: AtomicU64,
    pub(super) gpu_busy_ns: AtomicU64,
    pub(super) trajectory_steps: AtomicU64,
    pub(super) predictions: AtomicU64,
    pub(super) prediction_batches: AtomicU64,
    pub(super) predict_busy_ns: AtomicU64,
}
