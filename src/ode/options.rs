//! How a run is carried out (workgroup size, caps, ring depth, cancellation, the part of a
//! multi-device run) and what it reports while it goes: knobs that never change results.

use crate::schedule::plan::PlanCaps;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Knobs that change how a run is carried out, never its results.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub workgroup_size: u32,
    pub caps: PlanCaps,
    /// Trajectory-steps per dispatch, so that no dispatch runs long enough to trip a
    /// display driver's watchdog (about 0.3 s on a slow integrated GPU).
    pub steps_per_dispatch: u64,
    /// Fewest steps per dispatch window whatever the budget above says: very short windows
    /// leave each workgroup too little work (on lavapipe, 26-step windows at N = 10^7 ran
    /// at 40% of the speed of 256-step ones).
    pub min_window_steps: u32,
    /// Units of work in flight (readback slots): while the device runs one, the host
    /// consumes the results of the one before.
    pub ring: usize,
    /// First trajectory to integrate; those before it are already done (a resumed run).
    pub start: usize,
    /// Trajectory at which to stop (exclusive): those from it on are left to another
    /// process (a shard of a run, see `ode::store`). `None`: the ensemble's end.
    pub end: Option<usize>,
    /// Set to stop the run: no new work is submitted, the work in flight is finished and
    /// consumed, and `RunStats::completed` says how far it got.
    pub cancel: Option<Arc<AtomicBool>>,
    /// (i, d): run only every d-th chunk from the i-th on (device i of d, see `ode::multi`).
    pub part: (usize, usize),
    /// Told how the run goes while it goes (compilation, work done), for progress displays.
    pub progress: Option<ProgressHook>,
}

/// What a run reports while it goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tick {
    /// The kernel is being compiled (naga, then the driver): long for large systems.
    Compiling,
    /// The kernel compiled in this time (part of the setup, never of the GPU time).
    Compiled(Duration),
    /// The whole run's work, in units of the run's kind: trajectory-steps for fixed-step
    /// runs, trajectory-batches (a trajectory through one batch of save slots) for adaptive
    /// ones. Sent once per device; the value is the same for every device.
    Total(u64),
    /// This much more work is done (a dispatch group, or a batch, has finished).
    Done(u64),
}

/// A callback for `Tick`s, called from the thread that drives a device (with several
/// devices, from several threads at once).
#[derive(Clone)]
pub struct ProgressHook(pub Arc<dyn Fn(Tick) + Send + Sync>);

impl ProgressHook {
    pub fn new(f: impl Fn(Tick) + Send + Sync + 'static) -> ProgressHook {
        ProgressHook(Arc::new(f))
    }
}

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHook")
    }
}

impl RunOptions {
    pub(crate) fn tick(&self, tick: Tick) {
        if let Some(hook) = &self.progress {
            (hook.0)(tick);
        }
    }

    /// Starts the compile phase (told to the progress hook); `compiled` ends it.
    pub(crate) fn compiling(&self) -> Instant {
        self.tick(Tick::Compiling);
        Instant::now()
    }

    /// Ends the compile phase begun at `started`; returns its length.
    pub(crate) fn compiled(&self, started: Instant) -> Duration {
        let took = started.elapsed();
        self.tick(Tick::Compiled(took));
        took
    }

    /// Where this run stops for an ensemble of `n`: `end`, at most `n`.
    pub fn stop(&self, n: usize) -> usize {
        self.end.map_or(n, |e| e.min(n))
    }

    pub(crate) fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            workgroup_size: 64,
            caps: PlanCaps::default(),
            steps_per_dispatch: 1 << 28,
            min_window_steps: 256,
            ring: 3,
            start: 0,
            end: None,
            cancel: None,
            part: (0, 1),
            progress: None,
        }
    }
}
