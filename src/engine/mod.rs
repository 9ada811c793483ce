//! The engine a process embeds: one device, its pipeline cache, and runner threads that take
//! submitted jobs in order, each within a device-memory budget. Any thread may submit; the
//! async methods never block the caller's executor (the work happens on the engine's own
//! threads), and each has a blocking twin. There are no globals: two engines in one process
//! are independent.
//!
//! Fairness: jobs start in submission order as runners and memory budget allow, and running
//! jobs share the device submission by submission. Each keeps at most its ring of units in
//! flight and waits for the oldest before adding another, so a small job that starts
//! beside a huge one finishes in about its own time, not after the huge one.

mod job;
mod model;
mod train;

pub use job::{Job, JobHandle, JobId, JobKind, JobOptions, JobState, Progress, ProgressCallback};
pub use model::{MAX_INPUT, Model, check_input_value, check_prediction_values};
pub use train::{TrainOutcome, TrainRequest};

use crate::gpu::{AdapterChoice, GpuContext, GpuError};
use crate::ode::{
    FanOut, MemorySink, Problem, RunOptions, SimError, Sink, SinkError, Solution, Status,
    StepCounts,
};
use crate::schedule::PlanCaps;
use job::JobShared;
use std::collections::VecDeque;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::oneshot;

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

/// Runner and batcher threads get a large stack: a job compiles kernels from user
/// expressions, and a deep expression must end in a located refusal, never an overflow.
pub(crate) const WORKER_STACK: usize = 64 << 20;

/// How an engine runs its jobs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub adapter: AdapterChoice,
    /// Jobs that run at once; the others wait in order of submission.
    pub runners: usize,
    /// Device memory all running jobs together may plan for [default: 512 MiB on a CPU
    /// adapter, whose device memory is host memory; 4 GiB on a GPU].
    pub memory: Option<u64>,
    /// Device memory one job may plan for [default: `memory` / `runners`].
    pub job_memory: Option<u64>,
    /// Jobs queued and running at most; more are refused with `EngineError::Busy`.
    pub max_jobs: usize,
    /// Host memory one simulation's results may take.
    pub max_result_bytes: u64,
    /// Most prediction requests merged into one device pass.
    pub predict_batch: usize,
    /// Compiled pipelines the device keeps for reuse [default: the context's own,
    /// `gpu::DEFAULT_PIPELINE_CACHE`].
    pub pipeline_cache: Option<usize>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            adapter: AdapterChoice::Best,
            runners: 2,
            memory: None,
            job_memory: None,
            max_jobs: 256,
            max_result_bytes: 4 << 30,
            predict_batch: 256,
            pipeline_cache: None,
        }
    }
}

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

#[derive(Default)]
struct Counters {
    submitted: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    gpu_busy_ns: AtomicU64,
    trajectory_steps: AtomicU64,
    predictions: AtomicU64,
    prediction_batches: AtomicU64,
    predict_busy_ns: AtomicU64,
}

/// What a runner does with a job: run it on the device, or (`None`) resolve it without
/// running because it was cancelled while queued or the engine is shutting down.
type Work = Box<dyn FnOnce(Option<&GpuContext>) + Send>;

struct Pending {
    shared: Arc<JobShared>,
    work: Work,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Pending>,
    running: usize,
    reserved: u64,
    shutdown: bool,
    /// The jobs on the device now, so that a cancelling shutdown reaches them too.
    active: Vec<Arc<JobShared>>,
}

pub(crate) struct Inner {
    ctx: Arc<GpuContext>,
    config: EngineConfig,
    memory: u64,
    job_memory: u64,
    queue: Mutex<Queue>,
    wake: Condvar,
    counters: Counters,
    next_id: AtomicU64,
    runners: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// The engine: cheap to clone (a reference count), `Send + Sync`.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
    _owner: Arc<Owner>,
}

/// Dropped with the last `Engine` clone: cancels what is left and lets the runners go.
struct Owner(Arc<Inner>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.begin_shutdown(true);
    }
}

/// What `Engine::shutdown` does with jobs that have not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Run every queued and running job to its end.
    Finish,
    /// Cancel them: queued jobs never start, running ones stop after the work in flight.
    Cancel,
}

impl Engine {
    /// Opens the adapter `config.adapter` names and starts the runners.
    pub fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        let ctx = GpuContext::new(&config.adapter)?;
        Ok(Engine::with_context(Arc::new(ctx), config))
    }

    /// An engine on a device the caller already opened.
    pub fn with_context(ctx: Arc<GpuContext>, config: EngineConfig) -> Engine {
        if let Some(n) = config.pipeline_cache {
            ctx.set_pipeline_cache_capacity(n);
        }
        let runners = config.runners.max(1);
        let memory = config
            .memory
            .unwrap_or(if ctx.is_cpu() { 512 << 20 } else { 4 << 30 });
        let job_memory = config
            .job_memory
            .unwrap_or(memory / runners as u64)
            .min(memory);
        let inner = Arc::new(Inner {
            ctx,
            config: EngineConfig { runners, ..config },
            memory,
            job_memory,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            counters: Counters::default(),
            next_id: AtomicU64::new(1),
            runners: Mutex::new(Vec::new()),
        });
        let handles = (0..runners)
            .map(|i| {
                let inner = inner.clone();
                std::thread::Builder::new()
                    .name(format!("phaseflow-runner-{i}"))
                    .stack_size(WORKER_STACK)
                    .spawn(move || inner.run_jobs())
                    .expect("spawning a runner thread")
            })
            .collect();
        *inner.runners.lock().unwrap_or_else(|p| p.into_inner()) = handles;
        Engine {
            _owner: Arc::new(Owner(inner.clone())),
            inner,
        }
    }

    pub fn context(&self) -> &GpuContext {
        &self.inner.ctx
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Device memory all running jobs may plan for together, and one job alone.
    pub fn budgets(&self) -> (u64, u64) {
        (self.inner.memory, self.inner.job_memory)
    }

    /// The first job number this engine will hand out is `first`; a server restarted over
    /// its old results directory sets it past the ids it has already used.
    pub fn continue_ids_from(&self, first: JobId) {
        self.inner.next_id.fetch_max(first, Ordering::SeqCst);
    }

    /// The id the next submitted job will get (a server reserves it durably first).
    pub fn next_id(&self) -> JobId {
        self.inner.next_id.load(Ordering::SeqCst)
    }

    /// Bytes of host memory the results of `problem` take in a `Solution`.
    pub fn result_bytes(problem: &Problem) -> Result<u64, SimError> {
        let slots = problem.save_times()?.len() as u64;
        let n = problem.ensemble().n as u64;
        let real = problem.precision().bytes();
        // Per trajectory beside the states: a status byte and, for adaptive runs, three u32
        // step counters.
        Ok(slots * n * problem.system().dim() as u64 * real + n * 13)
    }

    /// Queues a simulation; returns at once. Errors in the problem, a budget it cannot fit
    /// or a full queue are reported here, before anything is queued.
    pub fn submit_simulate(
        &self,
        problem: Problem,
        opts: JobOptions,
    ) -> Result<Job<Solution>, EngineError> {
        problem.check()?;
        let memory = self.inner.job_budget(&opts)?;
        let bytes = Engine::result_bytes(&problem)?;
        if bytes > self.inner.config.max_result_bytes {
            return Err(EngineError::ResultTooLarge {
                bytes,
                limit: self.inner.config.max_result_bytes,
            });
        }
        let options = RunOptions {
            caps: PlanCaps {
                memory_budget: memory,
                ..PlanCaps::default()
            },
            ..RunOptions::default()
        };
        // A problem whose smallest chunk cannot fit the budget fails now, not in the queue.
        problem.plan(&self.inner.ctx, &options)?;
        let n = problem.ensemble().n as u64;
        self.inner.submit(
            JobKind::Simulate,
            n,
            memory,
            &opts,
            move |ctx, shared, inner| simulate_job(ctx, &problem, options, shared, inner),
        )
    }

    /// Runs a simulation to its end without blocking the caller's executor.
    pub async fn simulate(
        &self,
        problem: Problem,
        opts: JobOptions,
    ) -> Result<Solution, EngineError> {
        self.submit_simulate(problem, opts)?.wait().await
    }

    /// `simulate`, blocking the calling thread.
    pub fn simulate_blocking(
        &self,
        problem: Problem,
        opts: JobOptions,
    ) -> Result<Solution, EngineError> {
        self.submit_simulate(problem, opts)?.wait_blocking()
    }

    /// Queues a DeepONet training run; returns at once.
    pub fn submit_train(
        &self,
        request: TrainRequest,
        opts: JobOptions,
    ) -> Result<Job<TrainOutcome>, EngineError> {
        request.check()?;
        let memory = self.inner.job_budget(&opts)?;
        let total = request.steps as u64;
        self.inner.submit(
            JobKind::Train,
            total,
            memory,
            &opts,
            move |ctx, shared, inner| train::run(ctx, &request, shared, inner),
        )
    }

    pub async fn train(
        &self,
        request: TrainRequest,
        opts: JobOptions,
    ) -> Result<TrainOutcome, EngineError> {
        self.submit_train(request, opts)?.wait().await
    }

    pub fn train_blocking(
        &self,
        request: TrainRequest,
        opts: JobOptions,
    ) -> Result<TrainOutcome, EngineError> {
        self.submit_train(request, opts)?.wait_blocking()
    }

    /// A trained DeepONet placed on the device, answering predictions with batching.
    pub fn load_model(
        &self,
        arch: &crate::nn::DeepONetArch,
        params: &crate::nn::DeepONetParams,
    ) -> Result<Model, EngineError> {
        Model::load(self.inner.clone(), arch, params)
    }

    /// G for every function (rows of `u`) at every point (rows of `y`), as
    /// [functions, points, outputs]; requests arriving together share device passes.
    pub async fn predict(
        &self,
        model: &Model,
        u: crate::nn::Matrix,
        y: crate::nn::Matrix,
    ) -> Result<Vec<f64>, EngineError> {
        model.predict(u, y).await
    }

    pub fn predict_blocking(
        &self,
        model: &Model,
        u: crate::nn::Matrix,
        y: crate::nn::Matrix,
    ) -> Result<Vec<f64>, EngineError> {
        model.predict_blocking(u, y)
    }

    pub fn stats(&self) -> EngineStats {
        let q = self.inner.lock_queue();
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EngineStats {
            queued: q.pending.len(),
            running: q.running,
            submitted: get(&c.submitted),
            succeeded: get(&c.succeeded),
            failed: get(&c.failed),
            cancelled: get(&c.cancelled),
            reserved_bytes: q.reserved,
            device_bytes: self.device_bytes(),
            gpu_busy_s: get(&c.gpu_busy_ns) as f64 * 1e-9,
            trajectory_steps: get(&c.trajectory_steps),
            predictions: get(&c.predictions),
            prediction_batches: get(&c.prediction_batches),
            predict_busy_s: get(&c.predict_busy_ns) as f64 * 1e-9,
        }
    }

    /// Bytes in device buffers now, as the driver layer counts them. (No poll here: a poll
    /// can wait behind another thread's wait for the device, and this is called from
    /// request handlers.)
    pub fn device_bytes(&self) -> i64 {
        self.inner
            .ctx
            .device
            .get_internal_counters()
            .hal
            .buffer_memory
            .read() as i64
    }

    /// Stops taking jobs, finishes or cancels those left (`how`), and waits for the runners.
    /// Blocks; from async code call it where blocking is allowed.
    pub fn shutdown(&self, how: Shutdown) {
        self.inner.begin_shutdown(how == Shutdown::Cancel);
        let handles: Vec<_> =
            std::mem::take(&mut *self.inner.runners.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }
}

impl Inner {
    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn job_budget(&self, opts: &JobOptions) -> Result<u64, EngineError> {
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

    fn new_job(&self, kind: JobKind, total: u64, memory: u64, opts: &JobOptions) -> Arc<JobShared> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        Arc::new(JobShared::new(id, kind, total, memory, opts))
    }

    /// Queues `run` as a job of `total` units within `memory`; a job resolved without
    /// running (cancelled while queued, or at shutdown) ends as `Cancelled`.
    fn submit<T: Send + 'static>(
        self: &Arc<Self>,
        kind: JobKind,
        total: u64,
        memory: u64,
        opts: &JobOptions,
        run: impl FnOnce(&GpuContext, &JobShared, &Weak<Inner>) -> Result<T, EngineError>
        + Send
        + 'static,
    ) -> Result<Job<T>, EngineError> {
        let (tx, rx) = oneshot::channel();
        let shared = self.new_job(kind, total, memory, opts);
        let runner_view = shared.clone();
        let inner = Arc::downgrade(self);
        let work: Work = Box::new(move |ctx| {
            let result = match ctx {
                // A panic in the job (or in its progress callback) fails this job only.
                Some(ctx) => catch_unwind(AssertUnwindSafe(|| {
                    runner_view.set_state(JobState::Running);
                    run(ctx, &runner_view, &inner)
                }))
                .unwrap_or_else(|panic| {
                    let message = panic_message(&*panic);
                    log::error!("job {} failed on a panic: {message}", runner_view.id);
                    if let Some(inner) = inner.upgrade() {
                        inner.counters.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    // Quietly: the progress callback may be what panicked.
                    runner_view.set_state_quiet(JobState::Failed(message.clone()));
                    Err(EngineError::Internal(message))
                }),
                None => Err(EngineError::Cancelled { done: 0, total }),
            };
            let _ = tx.send(result);
        });
        self.enqueue(shared.clone(), work)?;
        Ok(Job::new(JobHandle(shared, Arc::downgrade(self)), rx))
    }

    fn enqueue(&self, shared: Arc<JobShared>, work: Work) -> Result<(), EngineError> {
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
    fn drop_cancelled(&self) {
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

    fn begin_shutdown(&self, cancel: bool) {
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
    fn run_jobs(self: Arc<Self>) {
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
    fn finish(&self, shared: &JobShared, result: &Result<impl Sized, EngineError>) {
        let (state, counter) = match result {
            Ok(_) => (JobState::Succeeded, &self.counters.succeeded),
            Err(EngineError::Cancelled { .. }) => (JobState::Cancelled, &self.counters.cancelled),
            Err(e) => (JobState::Failed(e.to_string()), &self.counters.failed),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        shared.set_state(state);
    }

    fn add_busy(&self, gpu: Duration, trajectory_steps: u64) {
        self.counters
            .gpu_busy_ns
            .fetch_add(gpu.as_nanos() as u64, Ordering::Relaxed);
        self.counters
            .trajectory_steps
            .fetch_add(trajectory_steps, Ordering::Relaxed);
    }
}

/// Reports finished chunks as the job's progress (cancellation reaches the run through
/// `RunOptions::cancel`).
struct ProgressSink<'a>(&'a JobShared);

impl Sink for ProgressSink<'_> {
    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        _: &[Status],
        _: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        self.0.set_done(chunk.end as u64);
        Ok(())
    }
}

fn simulate_job(
    ctx: &GpuContext,
    problem: &Problem,
    mut options: RunOptions,
    shared: &JobShared,
    inner: &Weak<Inner>,
) -> Result<Solution, EngineError> {
    options.cancel = Some(shared.cancel.clone());
    let result = (|| {
        let times = problem.save_times()?;
        let system = problem.system();
        let (n, dim) = (problem.ensemble().n, system.dim());
        let mut memory = MemorySink::new(n, dim, times.len(), problem.precision());
        let mut progress = ProgressSink(shared);
        let stats =
            problem.run_into(ctx, &options, &mut FanOut(vec![&mut memory, &mut progress]))?;
        if let Some(inner) = inner.upgrade() {
            inner.add_busy(stats.gpu.unwrap_or(stats.solve), stats.trajectory_steps);
        }
        if stats.completed < n {
            return Err(EngineError::Cancelled {
                done: stats.completed as u64,
                total: n as u64,
            });
        }
        let names = system.states.iter().map(|v| v.name.clone()).collect();
        Ok(memory.into_solution(dim, names, times, stats))
    })();
    if let Some(inner) = inner.upgrade() {
        inner.finish(shared, &result);
    }
    result
}
