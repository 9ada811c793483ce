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

mod analysis;
mod config;
mod error;
mod estimate;
mod handle;
mod job;
mod model;
mod montecarlo;
mod queue;
mod simulate;
mod stats;
mod train;

pub use config::EngineConfig;
pub use error::EngineError;
pub use estimate::{FitMode, Fitted, estimate_result_bytes};
pub use handle::{Job, JobHandle};
pub use job::{JobId, JobKind, JobOptions, JobState, Progress, ProgressCallback};
pub use model::{MAX_INPUT, Model, check_input_value, check_prediction_values};
pub use montecarlo::{MonteCarloRun, monte_carlo_bytes};
pub use stats::EngineStats;
pub use train::{TrainOutcome, TrainRequest};

use crate::gpu::GpuContext;
use crate::ode::basins::{BasinsProblem, BasinsResult};
use crate::ode::lyapunov::{LyapunovProblem, LyapunovResult};
use crate::ode::orbit::{OrbitProblem, OrbitResult};
use crate::ode::{Problem, RunOptions, SimError, Solution};
use crate::schedule::PlanCaps;
use error::panic_message;
use job::JobShared;
use queue::{Inner, Queue, WORKER_STACK, Work};
use stats::Counters;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use tokio::sync::oneshot;

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
        // step counters; for a system with events, K records of (t, id, state) and a u32
        // count.
        let system = problem.system();
        let events = if system.events.is_empty() {
            0
        } else {
            let width = crate::ode::events::log::record_width(system.dim()) as u64;
            n.saturating_mul(system.event_log.k as u64)
                .saturating_mul(width * real)
                .saturating_add(4 * n)
        };
        Ok((slots * n * system.dim() as u64 * real + n * 13).saturating_add(events))
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
        self.submit(
            JobKind::Simulate,
            n,
            memory,
            &opts,
            move |ctx, shared, inner| simulate::run(ctx, &problem, options, shared, inner),
        )
    }

    /// Queues a Monte Carlo run: the ensemble's statistics per save time and state, with
    /// quantiles at `levels` (see `ode::montecarlo::quantile_levels_error`), and no paths
    /// kept. Refused up front as `submit_simulate` refuses, and when the reducer's typical
    /// size passes the host limit.
    pub fn submit_monte_carlo(
        &self,
        problem: Problem,
        levels: Vec<f64>,
        opts: JobOptions,
    ) -> Result<Job<MonteCarloRun>, EngineError> {
        if let Some(why) = crate::ode::montecarlo::quantile_levels_error(&levels) {
            return Err(EngineError::BadInput(format!("quantiles {why}")));
        }
        problem.check()?;
        let memory = self.inner.job_budget(&opts)?;
        self.check_result_bytes(monte_carlo_bytes(&problem)?)?;
        let options = Engine::job_run_options(memory);
        problem.plan(&self.inner.ctx, &options)?;
        let n = problem.ensemble().n as u64;
        self.submit(
            JobKind::MonteCarlo,
            n,
            memory,
            &opts,
            move |ctx, shared, inner| {
                montecarlo::run(ctx, &problem, &levels, options, shared, inner)
            },
        )
    }

    /// `submit_monte_carlo`, waited for on the calling thread.
    pub fn monte_carlo_blocking(
        &self,
        problem: Problem,
        levels: Vec<f64>,
        opts: JobOptions,
    ) -> Result<MonteCarloRun, EngineError> {
        self.submit_monte_carlo(problem, levels, opts)?
            .wait_blocking()
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

    /// The run options of a job within `memory` bytes of device memory.
    fn job_run_options(memory: u64) -> RunOptions {
        RunOptions {
            caps: PlanCaps {
                memory_budget: memory,
                ..PlanCaps::default()
            },
            ..RunOptions::default()
        }
    }

    /// Refuses results over the engine's host-memory limit before anything is queued.
    fn check_result_bytes(&self, bytes: u64) -> Result<(), EngineError> {
        let limit = self.inner.config.max_result_bytes;
        if bytes > limit {
            return Err(EngineError::ResultTooLarge { bytes, limit });
        }
        Ok(())
    }

    /// Bytes of host memory a Lyapunov result takes: exponents, errors and final states in
    /// f64, and a status byte, per trajectory.
    pub fn lyapunov_result_bytes(problem: &LyapunovProblem) -> u64 {
        let row = 2 * problem.k + problem.system.dim();
        (problem.ensemble.n as u64).saturating_mul(8 * row as u64 + 1)
    }

    /// Queues the Lyapunov spectra of an ensemble; returns at once. A problem the kernel
    /// cannot run, a budget its smallest chunk cannot fit or a result over the host limit
    /// is refused here, before anything is queued.
    pub fn submit_lyapunov(
        &self,
        problem: LyapunovProblem,
        opts: JobOptions,
    ) -> Result<Job<LyapunovResult>, EngineError> {
        crate::ode::lyapunov::run::check(&problem)?;
        let memory = self.inner.job_budget(&opts)?;
        self.check_result_bytes(Engine::lyapunov_result_bytes(&problem))?;
        let options = Engine::job_run_options(memory);
        let family = crate::ode::lyapunov::run::Lyapunov::new(&problem)?;
        crate::ode::runner::plan_run(&self.inner.ctx, &family, &options)?;
        let n = problem.ensemble.n as u64;
        self.submit(
            JobKind::Lyapunov,
            n,
            memory,
            &opts,
            move |ctx, shared, inner| analysis::lyapunov(ctx, &problem, options, shared, inner),
        )
    }

    /// `submit_lyapunov`, waited for on the calling thread.
    pub fn lyapunov_blocking(
        &self,
        problem: LyapunovProblem,
        opts: JobOptions,
    ) -> Result<LyapunovResult, EngineError> {
        self.submit_lyapunov(problem, opts)?.wait_blocking()
    }

    /// Bytes of host memory an orbit diagram's result takes: K points per trajectory, its
    /// parameters, counts and status.
    pub fn orbit_result_bytes(problem: &OrbitProblem) -> u64 {
        let n_params = problem.problem.system().n_params() as u64;
        (problem.n() as u64).saturating_mul(8 * (problem.k as u64 + n_params) + 13)
    }

    /// Queues an orbit diagram; returns at once, refusing up front what `submit_lyapunov`
    /// refuses.
    pub fn submit_orbit_diagram(
        &self,
        problem: OrbitProblem,
        opts: JobOptions,
    ) -> Result<Job<OrbitResult>, EngineError> {
        problem.problem.check()?;
        let memory = self.inner.job_budget(&opts)?;
        self.check_result_bytes(Engine::orbit_result_bytes(&problem))?;
        let options = Engine::job_run_options(memory);
        problem.problem.plan(&self.inner.ctx, &options)?;
        let n = problem.n() as u64;
        self.submit(
            JobKind::OrbitDiagram,
            n,
            memory,
            &opts,
            move |ctx, shared, inner| analysis::orbit(ctx, &problem, options, shared, inner),
        )
    }

    /// `submit_orbit_diagram`, waited for on the calling thread.
    pub fn orbit_diagram_blocking(
        &self,
        problem: OrbitProblem,
        opts: JobOptions,
    ) -> Result<OrbitResult, EngineError> {
        self.submit_orbit_diagram(problem, opts)?.wait_blocking()
    }

    /// Queues a basins-of-attraction run; returns at once, refusing up front what
    /// `submit_lyapunov` refuses.
    pub fn submit_basins(
        &self,
        problem: BasinsProblem,
        opts: JobOptions,
    ) -> Result<Job<BasinsResult>, EngineError> {
        problem.check().map_err(analysis::basins_error)?;
        problem.run.check()?;
        let memory = self.inner.job_budget(&opts)?;
        // A label per grid point; the saves stream through a chunk's window statistics.
        self.check_result_bytes(4 * problem.run.ensemble().n as u64)?;
        let options = Engine::job_run_options(memory);
        problem.run.plan(&self.inner.ctx, &options)?;
        let n = problem.run.ensemble().n as u64;
        self.submit(
            JobKind::Basins,
            n,
            memory,
            &opts,
            move |ctx, shared, inner| analysis::basins(ctx, &problem, options, shared, inner),
        )
    }

    /// `submit_basins`, waited for on the calling thread.
    pub fn basins_blocking(
        &self,
        problem: BasinsProblem,
        opts: JobOptions,
    ) -> Result<BasinsResult, EngineError> {
        self.submit_basins(problem, opts)?.wait_blocking()
    }

    /// Queues parameter estimation (`mode`: one fit per trajectory, by single or multiple
    /// shooting, or one shared fit); returns at once. Inputs the fits cannot take, a budget
    /// the fits' runs cannot plan in, or a result over the host limit are refused here.
    pub fn submit_estimate(
        &self,
        problem: crate::ode::estimate::EstimationProblem,
        mode: FitMode,
        opts: JobOptions,
    ) -> Result<Job<Fitted>, EngineError> {
        problem
            .check()
            .map_err(|e| EngineError::BadInput(e.to_string()))?;
        let memory = self.inner.job_budget(&opts)?;
        self.check_result_bytes(estimate_result_bytes(&problem))?;
        let options = Engine::job_run_options(memory);
        problem.problem.plan(&self.inner.ctx, &options)?;
        let total = estimate::run_bound(&problem, mode);
        self.submit(
            JobKind::Estimate,
            total,
            memory,
            &opts,
            move |ctx, shared, inner| estimate::run(ctx, &problem, mode, options, shared, inner),
        )
    }

    /// `submit_estimate`, waited for on the calling thread.
    pub fn estimate_blocking(
        &self,
        problem: crate::ode::estimate::EstimationProblem,
        mode: FitMode,
        opts: JobOptions,
    ) -> Result<Fitted, EngineError> {
        self.submit_estimate(problem, mode, opts)?.wait_blocking()
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
        self.submit(
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

    /// Queues `run` as a job of `total` units within `memory`; a job resolved without
    /// running (cancelled while queued, or at shutdown) ends as `Cancelled`. (Here rather
    /// than in `queue`: the `Job` it returns holds a handle back on the queue.)
    fn submit<T: Send + 'static>(
        &self,
        kind: JobKind,
        total: u64,
        memory: u64,
        opts: &JobOptions,
        run: impl FnOnce(&GpuContext, &Arc<JobShared>, &Weak<Inner>) -> Result<T, EngineError>
        + Send
        + 'static,
    ) -> Result<Job<T>, EngineError> {
        let (tx, rx) = oneshot::channel();
        let shared = self.inner.new_job(kind, total, memory, opts);
        let runner_view = shared.clone();
        let inner = Arc::downgrade(&self.inner);
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
        self.inner.enqueue(shared.clone(), work)?;
        Ok(Job::new(JobHandle(shared, Arc::downgrade(&self.inner)), rx))
    }
}
