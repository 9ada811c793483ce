//! One piece of work submitted to the engine: its identity, its state as it moves from the
//! queue to the device to a result, its progress, and the flag that cancels it.

use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Engine-wide job number, unique for the engine's lifetime.
pub type JobId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Simulate,
    Train,
    Lyapunov,
    OrbitDiagram,
    Basins,
    /// Parameter estimation: `done` and `total` count GPU runs, not trajectories.
    Estimate,
    /// Statistics of an ensemble, its paths not kept.
    MonteCarlo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "error")]
pub enum JobState {
    /// Waiting for a free runner and for its memory budget to fit.
    Queued,
    Running,
    Succeeded,
    Failed(String),
    /// Stopped by `cancel`; the device memory it held has been released.
    Cancelled,
}

impl JobState {
    pub fn is_finished(&self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }

    pub fn name(&self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed(_) => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

/// Where a job stands. `done` and `total` count trajectories for simulations and steps for
/// training.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub id: JobId,
    pub kind: JobKind,
    #[serde(flatten)]
    pub state: JobState,
    pub done: u64,
    pub total: u64,
    /// Seconds since submission.
    pub elapsed_s: f64,
    /// Seconds spent running (zero while queued).
    pub running_s: f64,
}

impl Progress {
    pub fn fraction(&self) -> f64 {
        self.done as f64 / self.total.max(1) as f64
    }
}

pub type ProgressCallback = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How one job is run; the defaults come from the engine's configuration.
#[derive(Clone, Default)]
pub struct JobOptions {
    /// Device memory this job may plan for (at most the engine's per-job budget).
    pub memory: Option<u64>,
    /// Called from the engine's runner thread as the job moves on (after each chunk of
    /// trajectories or each block of training steps); keep it short.
    pub on_progress: Option<ProgressCallback>,
}

/// The shared part of a job: what its handles and its runner both see.
pub(crate) struct JobShared {
    pub id: JobId,
    pub kind: JobKind,
    pub total: u64,
    pub memory: u64,
    pub cancel: Arc<AtomicBool>,
    done: AtomicU64,
    state: Mutex<JobState>,
    submitted: Instant,
    times: Mutex<(Option<Instant>, Option<Instant>)>,
    on_progress: Option<ProgressCallback>,
}

impl JobShared {
    pub fn new(id: JobId, kind: JobKind, total: u64, memory: u64, opts: &JobOptions) -> Self {
        JobShared {
            id,
            kind,
            total,
            memory,
            cancel: Arc::new(AtomicBool::new(false)),
            done: AtomicU64::new(0),
            state: Mutex::new(JobState::Queued),
            submitted: Instant::now(),
            times: Mutex::new((None, None)),
            on_progress: opts.on_progress.clone(),
        }
    }

    pub fn state(&self) -> JobState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_state(&self, state: JobState) {
        self.set_state_quiet(state);
        self.notify();
    }

    /// `set_state` without calling the progress callback.
    pub fn set_state_quiet(&self, state: JobState) {
        {
            let mut times = self.times.lock().unwrap_or_else(|p| p.into_inner());
            match state {
                JobState::Running => times.0 = Some(Instant::now()),
                ref s if s.is_finished() => times.1 = Some(Instant::now()),
                _ => {}
            }
        }
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    pub fn set_done(&self, done: u64) {
        self.done.store(done.min(self.total), Ordering::Relaxed);
        self.notify();
    }

    /// Raises `done` to `done` (never lowers it: estimates from within a chunk and exact
    /// counts from finished chunks arrive interleaved); reports only a change.
    pub fn advance_to(&self, done: u64) {
        let done = done.min(self.total);
        if self.done.fetch_max(done, Ordering::Relaxed) < done {
            self.notify();
        }
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    fn notify(&self) {
        if let Some(f) = &self.on_progress {
            f(&self.progress());
        }
    }

    pub fn progress(&self) -> Progress {
        let (started, finished) = *self.times.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let running = match (started, finished) {
            (Some(s), Some(f)) => f - s,
            (Some(s), None) => now - s,
            _ => Duration::ZERO,
        };
        Progress {
            id: self.id,
            kind: self.kind,
            state: self.state(),
            done: self.done.load(Ordering::Relaxed),
            total: self.total,
            elapsed_s: (finished.unwrap_or(now) - self.submitted).as_secs_f64(),
            running_s: running.as_secs_f64(),
        }
    }
}
