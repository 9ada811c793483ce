//! The engine's core: one device, the queue of submitted jobs, the runner threads that
//! take them in order as the memory budget allows, and the counters they keep.
//! (The fairness this gives is described in the `engine` module's documentation.)

use super::config::EngineConfig;
use super::error::EngineError;
use super::job::{JobKind, JobOptions, JobShared, JobState};
use super::stats::Counters;
use crate::gpu::GpuContext;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Runner and batcher threads get a large stack: a job compiles kernels from user
/// expressions, and a deep expression must end in a located refusal, never an overflow.
pub(crate) const WORKER_STACK: usize = 64 << 20;

/// What a runner does with a job: run it on the device, or (`None`) resolve it without
/// running because it was cancelled while queued or the engine is shutting down.
pub(super) type Work = Box<dyn FnOnce(Option<&GpuContext>) + Send>;

pub(super) struct Pending {
    pub(super) shared: Arc<JobShared>,
    pub(super) work: Work,
}

/// The jobs waiting for a runner, and what the running ones hold.
#[derive(Default)]
pub(super) struct Queue {
    pub(super) pending: VecDeque<Pending>,
    pub(super) running: usize,
    pub(super) reserved: u64,
    pub(super) shutdown: bool,
    /// The jobs on the device now, so that a cancelling shutdown reaches them too.
    pub(super) active: Vec<Arc<JobShared>>,
}

/// The shared core of an engine: its device, queue, runners and counters. `Engine` holds
/// it strongly; jobs, handles and model batchers reach it as needed.
pub(crate) struct Inner {
    pub(super) ctx: Arc<GpuContext>,
    pub(super) config: EngineConfig,
    pub(super) memory: u64,
    pub(super) job_memory: u64,
    pub(super) queue: Mutex<Queue>,
    pub(super) wake: Condvar,
    pub(super) counters: Counters,
    pub(super) next_id: AtomicU64,
    pub(super) runners: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Inner {
    pub(super) fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn job_budget(&self, opts: &JobOptions) -> Result<u64, EngineError> {
        match opts.memory {
            Some(m) if m > self.job_memory => Err(EngineError::OverBudget {
                asked: m,
                limit: self.job_memory,
            }),
            Some(0) => Err(EngineError::BadInput(
                "a job's memory budget must be more than 0 bytes".into(),
            )),
            Some(m) => Ok(m),
            None => Ok(self.job_memory),
        }
    }

    pub(super) fn new_job(
        &self,
        kind: JobKind,
        total: u64,
        memory: u64,
        opts: &JobOptions,
    ) -> Arc<JobShared> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        Arc::new(JobShared::new(id, kind, total, memory, opts))
    }

    pub(super) fn enqueue(&self, shared: Arc<JobShared>, work: Work) -> Result<(), EngineError> {
        let mut q = self.lock_queue();
        if q.shutdown {
            return Err(EngineError::ShutDown);
        }
        if q.pending.len() + q.running >= self.config.max_jobs {
            return Err(EngineError::Busy {
                limit: self.config.max_jobs,
            });
        }
        self.counters.submitted.fetch_add(1, Ordering::Relaxed);
        q.pending.push_back(Pending { shared, work });
        drop(q);
        self.wake.notify_all();
        Ok(())
    }

    /// Resolves queued jobs that were cancelled (all of them once `shutdown` is set), so
    /// that their waiters hear at once rather than when a runner frees up.
    pub(super) fn drop_cancelled(&self) {
        let mut q = self.lock_queue();
        let all = q.shutdown;
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut q.pending)
            .into_iter()
            .partition(|p| all || p.shared.cancelled());
        q.pending = kept.into();
        drop(q);
        for p in gone {
            p.shared.set_state(JobState::Cancelled);
            self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
            (p.work)(None);
        }
    }

    pub(super) fn begin_shutdown(&self, cancel: bool) {
        let mut q = self.lock_queue();
        q.shutdown = true;
        if cancel {
            for shared in q.pending.iter().map(|p| &p.shared).chain(&q.active) {
                shared.cancel.store(true, Ordering::SeqCst);
            }
        }
        drop(q);
        if cancel {
            self.drop_cancelled();
        }
        self.wake.notify_all();
    }

    /// A runner: takes the job at the head of the queue once its budget fits beside the
    /// running jobs', runs it, and returns its budget.
    pub(super) fn run_jobs(self: Arc<Self>) {
        loop {
            let next = {
                let mut q = self.lock_queue();
                loop {
                    if let Some(head) = q.pending.front()
                        && q.reserved + head.shared.memory <= self.memory
                    {
                        let p = q.pending.pop_front().expect("head exists");
                        q.running += 1;
                        q.reserved += p.shared.memory;
                        q.active.push(p.shared.clone());
                        break Some(p);
                    }
                    if q.shutdown && q.pending.is_empty() {
                        break None;
                    }
                    q = self.wake.wait(q).unwrap_or_else(|p| p.into_inner());
                }
            };
            let Some(Pending { shared, work }) = next else {
                return;
            };
            if shared.cancelled() {
                // A panicking progress callback must not end the runner.
                let _ = catch_unwind(AssertUnwindSafe(|| shared.set_state(JobState::Cancelled)));
                self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
                work(None);
            } else {
                work(Some(&self.ctx));
            }
            // A stopped run may leave uploads queued for a submission that never came; an
            // empty submission flushes them, and the poll frees what the job dropped.
            self.ctx.queue.submit([]);
            let _ = self.ctx.device.poll(wgpu::PollType::Poll);
            let mut q = self.lock_queue();
            q.running -= 1;
            q.reserved -= shared.memory;
            q.active.retain(|a| !Arc::ptr_eq(a, &shared));
            drop(q);
            self.wake.notify_all();
        }
    }

    /// Records how a job ended.
    pub(super) fn finish(&self, shared: &JobShared, result: &Result<impl Sized, EngineError>) {
        let (state, counter) = match result {
            Ok(_) => (JobState::Succeeded, &self.counters.succeeded),
            Err(EngineError::Cancelled { .. }) => (JobState::Cancelled, &self.counters.cancelled),
            Err(e) => (JobState::Failed(e.to_string()), &self.counters.failed),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        shared.set_state(state);
    }

    pub(super) fn add_busy(&self, gpu: Duration, trajectory_steps: u64) {
        self.counters
            .gpu_busy_ns
            .fetch_add(gpu.as_nanos() as u64, Ordering::Relaxed);
        self.counters
            .trajectory_steps
            .fetch_add(trajectory_steps, Ordering::Relaxed);
    }
}
