//! What a submitter holds on a job: a handle that reads progress and cancels, and the job
//! itself, which also receives the result.

use super::error::EngineError;
use super::job::{JobId, JobKind, JobShared, Progress};
use super::queue::Inner;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use tokio::sync::oneshot;

/// A handle on a job that can be cloned and kept (in a server's job table, say): it reads
/// progress and cancels, but does not receive the result.
#[derive(Clone)]
pub struct JobHandle(pub(crate) Arc<JobShared>, pub(crate) Weak<Inner>);

impl JobHandle {
    pub fn id(&self) -> JobId {
        self.0.id
    }

    pub fn kind(&self) -> JobKind {
        self.0.kind
    }

    pub fn progress(&self) -> Progress {
        self.0.progress()
    }

    /// Device memory reserved for the job while it runs.
    pub fn memory(&self) -> u64 {
        self.0.memory
    }

    /// Whether `cancel` was called (the job may still be finishing its work in flight).
    pub fn cancel_requested(&self) -> bool {
        self.0.cancel.load(Ordering::SeqCst)
    }

    /// Asks the job to stop. A queued job never starts; a running one stops after the work
    /// already on the device, releases its buffers and finishes as `Cancelled`.
    pub fn cancel(&self) {
        self.0.cancel.store(true, Ordering::SeqCst);
        if let Some(engine) = self.1.upgrade() {
            engine.drop_cancelled();
        }
    }
}

/// A submitted job: its handle, and the result when it comes.
pub struct Job<T> {
    handle: JobHandle,
    result: oneshot::Receiver<Result<T, EngineError>>,
}

impl<T> Job<T> {
    pub(crate) fn new(
        handle: JobHandle,
        result: oneshot::Receiver<Result<T, EngineError>>,
    ) -> Job<T> {
        Job { handle, result }
    }

    pub fn id(&self) -> JobId {
        self.handle.id()
    }

    pub fn handle(&self) -> JobHandle {
        self.handle.clone()
    }

    pub fn progress(&self) -> Progress {
        self.handle.progress()
    }

    pub fn cancel(&self) {
        self.handle.cancel()
    }

    /// The result, awaited without blocking the executor (any executor: the engine's own
    /// threads do the work).
    pub async fn wait(self) -> Result<T, EngineError> {
        self.result.await.unwrap_or(Err(EngineError::ShutDown))
    }

    /// The result, blocking the calling thread. Not for use inside an async task.
    pub fn wait_blocking(self) -> Result<T, EngineError> {
        self.result
            .blocking_recv()
            .unwrap_or(Err(EngineError::ShutDown))
    }
}
