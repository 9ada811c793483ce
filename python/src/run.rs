//! Simulations from Python: keywords → run spec (the config file's keys) → problem, run as a
//! job of an engine, results handed over as NumPy arrays that own the Rust buffers (moved,
//! never copied). Every wait releases the GIL.

use crate::convert::{matrix_f64, matrix_of, to_json, whole};
use crate::errors::{engine_error, gpu_error, spec_error, spec_error_at};
use crate::system::PySystem;
use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use phaseflow::engine::{Engine, EngineConfig, EngineError, Job, JobOptions, JobState};
use phaseflow::gpu::{AdapterChoice, GpuContext};
use phaseflow::model::System;
use phaseflow::ode::adaptive::problem::Tolerance;
use phaseflow::ode::events::log::record_width;
use phaseflow::ode::sensitivity::split_solution;
use phaseflow::ode::{Ensemble, InitialStates, Parameters, Problem, Solution, StateValues, Table};
use phaseflow::spec::{RunSpec, load_system, problem_for_system, sensitivity_run};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The process's first device, never dropped (see `PyEngine::new`).
static KEEP_DRIVER_LOADED: OnceLock<Arc<GpuContext>> = OnceLock::new();

/// Most jobs an engine runs at once: each runner is a thread with its own share of the
/// device's memory, and a few are enough to keep any device busy.
const MAX_RUNNERS: usize = 64;

/// Keys of a run config the Python package does not take (yet), and what to use instead.
const REFUSED: [(&str, &str); 6] = [
    (
        "quantiles",
        "the levels of Monte Carlo statistics: use phaseflow.monte_carlo(system, quantiles=[...], ...)",
    ),
    (
        "out",
        "streaming to a directory is phaseflow.simulate(..., out=DIR), not a job",
    ),
    (
        "outputs",
        "the files of a run directory: give them with out, as phaseflow.simulate(..., out=DIR, \
         outputs=[...]); for Monte Carlo statistics in memory use phaseflow.monte_carlo(...)",
    ),
    (
        "lyapunov",
        "a Lyapunov run's table: use phaseflow.lyapunov(system, lyapunov={...})",
    ),
    (
        "orbit",
        "an orbit diagram's table: use phaseflow.orbit_diagram(system, orbit={...})",
    ),
    (
        "basins",
        "a basins run's table: use phaseflow.basins(system, basins={...})",
    ),
];

/// An engine: one device, its compiled-kernel cache and runner threads. Jobs submitted to
/// it run in order, each within a device-memory budget.
#[pyclass(name = "Engine", module = "phaseflow", frozen)]
pub struct PyEngine {
    engine: Engine,
}

impl PyEngine {
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

#[pymethods]
impl PyEngine {
    /// `adapter`: "auto" (the best), an index in `phaseflow.info()["adapters"]` or part of
    /// a name; `runners`: jobs run at once; `memory`: device bytes all jobs may plan for.
    #[new]
    #[pyo3(signature = (adapter = None, runners = None, memory = None, max_result_bytes = None))]
    fn new(
        py: Python<'_>,
        adapter: Option<&Bound<'_, PyAny>>,
        runners: Option<&Bound<'_, PyAny>>,
        memory: Option<&Bound<'_, PyAny>>,
        max_result_bytes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyEngine> {
        let runners = match runners {
            Some(v) => whole(v, "runners", 1..=MAX_RUNNERS as u64)? as usize,
            None => 2,
        };
        let bytes = |v: Option<&Bound<'_, PyAny>>, key: &str| {
            v.map(|v| whole(v, key, 1..=u64::MAX)).transpose()
        };
        let (memory, max_result_bytes) = (
            bytes(memory, "memory")?,
            bytes(max_result_bytes, "max_result_bytes")?,
        );
        if !(1..=MAX_RUNNERS).contains(&runners) {
            return Err(spec_error_at(
                format!("runners must be from 1 to {MAX_RUNNERS}, not {runners}"),
                Some("runners".into()),
            ));
        }
        // "auto", an index (as phaseflow.info() numbers the adapters) or part of a name.
        let adapter: String = match adapter {
            None => "auto".into(),
            Some(a) => match a.extract::<usize>() {
                Ok(i) => i.to_string(),
                Err(_) => a.extract().map_err(|_| {
                    spec_error_at(
                        "adapter must be \"auto\", an adapter's index or part of its name".into(),
                        Some("adapter".into()),
                    )
                })?,
            },
        };
        let mut config = EngineConfig {
            adapter: AdapterChoice::parse(&adapter),
            runners,
            memory,
            ..EngineConfig::default()
        };
        if let Some(m) = max_result_bytes {
            config.max_result_bytes = m;
        }
        let engine = py
            .detach(|| -> Result<Engine, phaseflow::gpu::GpuError> {
                let ctx = Arc::new(GpuContext::new(&config.adapter)?);
                // The first device stays open until the process ends. Dropping the last
                // one unloads the Vulkan driver (lavapipe) while exit handlers it registered
                // are still to run: Python's shutdown, which drops engines late, then
                // crashed now and then inside libc's exit.
                KEEP_DRIVER_LOADED.get_or_init(|| ctx.clone());
                Ok(Engine::with_context(ctx, config))
            })
            .map_err(gpu_error)?;
        Ok(PyEngine { engine })
    }

    /// The adapter this engine runs on (the fields of `phaseflow.info()`'s adapters).
    #[getter]
    fn adapter<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(
            py,
            &serde_json::to_value(&self.engine.context().summary).unwrap_or_default(),
        )
    }

    /// Submits a simulation and returns at once with its `Job`. Takes the keywords of
    /// `phaseflow.simulate`.
    #[pyo3(signature = (system, u0 = None, params = None, **options))]
    fn submit(
        &self,
        py: Python<'_>,
        system: &Bound<'_, PyAny>,
        u0: Option<&Bound<'_, PyAny>>,
        params: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyJob> {
        let (problem, spec) = build_with_tables(py, system, u0, params, options)?;
        let settings = settings(&problem, &spec);
        let ensemble = problem.ensemble().clone();
        let dims = (problem.system().dim(), problem.system().n_params());
        // With sensitivities the job integrates the augmented system, whose saves the
        // result splits into the states and S.
        let (problem, sensitivities) = match sensitivity_run(&spec, &problem).map_err(spec_error)? {
            Some(run) => {
                let names = problem
                    .system()
                    .states
                    .iter()
                    .map(|v| v.name.clone())
                    .collect();
                let split = Split {
                    dim: run.dim,
                    state_names: names,
                    targets: run.names.clone(),
                };
                (run.problem, Some(split))
            }
            None => (problem, None),
        };
        let engine = self.engine.clone();
        let job = py
            .detach(move || engine.submit_simulate(problem, JobOptions::default()))
            .map_err(engine_error)?;
        Ok(PyJob {
            handle: job.handle(),
            outcome: Mutex::new(Outcome::waiting_on(job, self.engine.clone(), |s| {
                Done::Solution(Box::new(s))
            })),
            settings,
            ensemble,
            dims,
            sensitivities,
        })
    }

    /// Submits a Monte Carlo run (`phaseflow.simulate`'s keywords, and the quantile
    /// `levels`): statistics per save time and state, no paths kept. Returns its `Job`.
    #[pyo3(signature = (system, u0 = None, params = None, quantiles = None, **options))]
    fn submit_monte_carlo(
        &self,
        py: Python<'_>,
        system: &Bound<'_, PyAny>,
        u0: Option<&Bound<'_, PyAny>>,
        params: Option<&Bound<'_, PyAny>>,
        quantiles: Option<Vec<f64>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyJob> {
        crate::montecarlo::submit(py, &self.engine, system, u0, params, quantiles, options)
    }

    /// Submits a Lyapunov-spectrum run (`phaseflow lyapunov`'s keys, its own as
    /// `lyapunov={...}`) and returns its `Job` at once.
    #[pyo3(signature = (system, u0 = None, params = None, **options))]
    fn submit_lyapunov(
        &self,
        py: Python<'_>,
        system: &Bound<'_, PyAny>,
        u0: Option<&Bound<'_, PyAny>>,
        params: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyJob> {
        let kind = crate::analysis::Kind::Lyapunov;
        crate::analysis::submit(py, &self.engine, kind, system, u0, params, options)
    }

    /// Submits an orbit diagram (`phaseflow orbit-diagram`'s keys, its own as
    /// `orbit={...}`) and returns its `Job` at once.
    #[pyo3(signature = (system, u0 = None, params = None, **options))]
    fn submit_orbit_diagram(
        &self,
        py: Python<'_>,
        system: &Bound<'_, PyAny>,
        u0: Option<&Bound<'_, PyAny>>,
        params: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyJob> {
        let kind = crate::analysis::Kind::Orbit;
        crate::analysis::submit(py, &self.engine, kind, system, u0, params, options)
    }

    /// Submits a basins-of-attraction run (`phaseflow basins`' keys, its own as
    /// `basins={...}`) and returns its `Job` at once.
    #[pyo3(signature = (system, **options))]
    fn submit_basins(
        &self,
        py: Python<'_>,
        system: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyJob> {
        let kind = crate::analysis::Kind::Basins;
        crate::analysis::submit(py, &self.engine, kind, system, None, None, options)
    }

    fn __repr__(&self) -> String {
        let s = &self.engine.context().summary;
        format!("Engine(adapter='{}', backend={})", s.name, s.backend)
    }
}

/// A submitted simulation or analysis: its progress, a way to cancel it, and its result.
#[pyclass(name = "Job", module = "phaseflow", frozen)]
pub struct PyJob {
    handle: phaseflow::engine::JobHandle,
    outcome: Mutex<Outcome>,
    settings: serde_json::Value,
    /// Kept to give every trajectory's initial state and parameters on request.
    ensemble: Ensemble,
    /// (states, parameters) of the system.
    dims: (usize, usize),
    /// How to split an augmented run's saves, when the run has sensitivities.
    sensitivities: Option<Split>,
}

/// An augmented run's layout: the system's own states, then S row-major.
struct Split {
    dim: usize,
    state_names: Vec<String>,
    /// The targets' names (`rho`, `x0`), S's last axis.
    targets: Vec<String>,
}

#[pymethods]
impl PyJob {
    /// `{"state", "done", "total", "elapsed_s", "running_s"}`: `done` counts trajectories.
    fn progress<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(
            py,
            &serde_json::to_value(self.handle.progress()).unwrap_or_default(),
        )
    }

    /// Whether the job has finished (succeeded, failed or been cancelled).
    fn done(&self) -> bool {
        self.handle.progress().state.is_finished()
    }

    /// Asks the job to stop; `result()` then raises `CancelledError`.
    fn cancel(&self) {
        self.handle.cancel()
    }

    /// Waits up to `timeout` seconds (None: until it finishes) without holding the GIL;
    /// returns whether it has finished. Ctrl-C while waiting cancels the job.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        if timeout.is_some_and(f64::is_nan) {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "timeout is NaN; give seconds, or None to wait until the job finishes",
            ));
        }
        let until = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.clamp(0.0, 1e9)));
        loop {
            // Slices of at most a tenth of a second without the GIL, so that Ctrl-C is seen
            // soon; the result itself wakes the wait at once.
            let slice = until.map_or(SIGNAL_SLICE, |u| {
                u.saturating_duration_since(Instant::now())
                    .min(SIGNAL_SLICE)
            });
            if py.detach(|| self.lock().receive(slice)) {
                return Ok(true);
            }
            if let Err(e) = py.check_signals() {
                self.handle.cancel();
                return Err(e);
            }
            if until.is_some_and(|u| Instant::now() >= u) {
                return Ok(false);
            }
        }
    }

    /// The result as a dict of arrays and settings (`phaseflow.Result` wraps it); waits for
    /// the job first. Raises the job's error, or `CancelledError`.
    fn result<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.wait(py, None)?;
        let outcome = std::mem::replace(&mut *self.lock(), Outcome::Taken);
        match outcome {
            Outcome::Ready(result) => match *result {
                Ok(Done::Analysis(finished)) => finished.into_dict(py),
                Ok(Done::Solution(solution)) => match &self.sensitivities {
                    None => solution_dict(py, *solution, &self.settings),
                    Some(split) => {
                        let (solution, sens) = py.detach(|| {
                            split_solution(*solution, split.dim, split.state_names.clone())
                        });
                        let shape = [
                            solution.times.len(),
                            solution.n,
                            split.dim,
                            split.targets.len(),
                        ];
                        let out = solution_dict(py, solution, &self.settings)?;
                        match sens {
                            StateValues::F32(v) => {
                                out.set_item("sensitivities", v.into_pyarray(py).reshape(shape)?)?
                            }
                            StateValues::F64(v) => {
                                out.set_item("sensitivities", v.into_pyarray(py).reshape(shape)?)?
                            }
                        }
                        out.set_item("sensitivity_names", split.targets.clone())?;
                        Ok(out)
                    }
                },
                Err(e) => Err(engine_error(e)),
            },
            Outcome::Taken | Outcome::Waiting(_) => Err(spec_error_at(
                "this job's result was already taken".into(),
                None,
            )),
        }
    }

    /// The initial states and parameters of every trajectory, [N, dim] and [N, n_params]:
    /// a result's coordinates (a sweep's values), computed when asked for.
    fn tables<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let (n, (dim, np)) = (self.ensemble.n, self.dims);
        let (states, params) =
            py.detach(|| (self.ensemble.states(0..n), self.ensemble.params(0..n)));
        // The table's own width: parameters, and any input sensor values after them.
        let np = params.len().checked_div(n).unwrap_or(np);
        Ok((
            states.into_pyarray(py).reshape([n, dim])?.into_any(),
            params.into_pyarray(py).reshape([n, np])?.into_any(),
        ))
    }

    /// The job's state name: queued, running, succeeded, failed or cancelled.
    #[getter]
    fn state(&self) -> &'static str {
        match self.handle.progress().state {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed(_) => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

/// Longest wait without looking for Ctrl-C.
const SIGNAL_SLICE: Duration = Duration::from_millis(100);

/// A job's result: on its way (a waiter thread forwards it from the engine), arrived, or
/// handed to Python.
pub enum Outcome {
    Waiting(mpsc::Receiver<Result<Done, EngineError>>),
    Ready(Box<Result<Done, EngineError>>),
    Taken,
}

/// What a finished job gives: a simulation's solution, or an analysis' result.
pub enum Done {
    Solution(Box<Solution>),
    Analysis(crate::analysis::Finished),
}

impl Outcome {
    /// A thread waits on the engine's one-shot result and forwards it to a channel, which a
    /// wait with a timeout can sleep on (and be woken by the moment the result arrives).
    /// The thread holds `engine` until the result is in: an engine whose last Python
    /// reference is gone would otherwise cancel the job it still owes.
    pub fn waiting_on<T: Send + 'static>(
        job: Job<T>,
        engine: Engine,
        done: impl FnOnce(T) -> Done + Send + 'static,
    ) -> Outcome {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("phaseflow-py-job".into())
            .spawn(move || {
                let _ = tx.send(job.wait_blocking().map(done));
                drop(engine);
            })
            .map_or_else(
                |e| {
                    Outcome::Ready(Box::new(Err(EngineError::Internal(format!(
                        "no thread to wait on the job: {e}"
                    )))))
                },
                |_| Outcome::Waiting(rx),
            )
    }

    /// Waits up to `slice` for the result; true once it is here (or taken).
    fn receive(&mut self, slice: Duration) -> bool {
        let Outcome::Waiting(rx) = self else {
            return true;
        };
        match rx.recv_timeout(slice) {
            Ok(result) => *self = Outcome::Ready(Box::new(result)),
            Err(mpsc::RecvTimeoutError::Timeout) => return false,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                *self = Outcome::Ready(Box::new(Err(EngineError::ShutDown)))
            }
        }
        true
    }
}

impl PyJob {
    /// The job of an analysis, whose result `done` turns into its arrays.
    pub fn analysis<T: Send + 'static>(
        job: Job<T>,
        engine: Engine,
        ensemble: Ensemble,
        dims: (usize, usize),
        done: impl FnOnce(T) -> Done + Send + 'static,
    ) -> PyJob {
        PyJob {
            handle: job.handle(),
            outcome: Mutex::new(Outcome::waiting_on(job, engine, done)),
            settings: serde_json::Value::Null,
            ensemble,
            dims,
            sensitivities: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Outcome> {
        self.outcome.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The problem a call asks for: its system (a `System`, a built-in's name or a file) and
/// its keywords read as a run spec, with arrays of initial states or parameters on top.
/// `prepare` completes the spec before the problem is built (what a fit's run needs).
pub fn build(
    system: &Bound<'_, PyAny>,
    u0: Option<PyReadonlyArray2<'_, f64>>,
    params: Option<PyReadonlyArray2<'_, f64>>,
    options: Option<&Bound<'_, PyDict>>,
    prepare: &dyn Fn(&mut RunSpec) -> PyResult<()>,
) -> PyResult<(Problem, RunSpec)> {
    let (system, mut spec) = spec_of(
        system,
        u0.is_some(),
        params.is_some(),
        rows(&u0, &params)?,
        options,
        None,
    )?;
    prepare(&mut spec)?;
    let mut problem = problem_for_system(system, &spec).map_err(spec_error)?;
    with_arrays(problem.ensemble_mut(), u0, params)?;
    problem.check().map_err(array_error)?;
    Ok((problem, spec))
}

/// `build` for a call whose `u0` may be the run config's table (`uniform`, `grid`,
/// `perturb`, `file`), which goes to the spec, or an array of initial states.
pub fn build_with_tables(
    py: Python<'_>,
    system: &Bound<'_, PyAny>,
    u0: Option<&Bound<'_, PyAny>>,
    params: Option<&Bound<'_, PyAny>>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<(Problem, RunSpec)> {
    let options = match options {
        Some(o) => o.copy()?,
        None => PyDict::new(py),
    };
    let u0 = match u0 {
        Some(table) if table.is_instance_of::<PyDict>() => {
            options.set_item("u0", table)?;
            None
        }
        other => other.map(|a| matrix_f64(a, "u0")).transpose()?,
    };
    let params = params.map(|a| matrix_f64(a, "params")).transpose()?;
    build(system, u0, params, Some(&options), &|_| Ok(()))
}

/// The engine a call names, or `phaseflow.default_engine()`.
pub fn engine_or_default<'py>(
    py: Python<'py>,
    engine: Option<Bound<'py, PyEngine>>,
) -> PyResult<Bound<'py, PyEngine>> {
    match engine {
        Some(e) => Ok(e),
        None => Ok(py
            .import("phaseflow")?
            .getattr("default_engine")?
            .call0()?
            .cast_into::<PyEngine>()?),
    }
}

/// Trajectories the arrays give (their rows, which must agree), and the first one's key.
pub fn rows(
    u0: &Option<PyReadonlyArray2<'_, f64>>,
    params: &Option<PyReadonlyArray2<'_, f64>>,
) -> PyResult<Option<(usize, &'static str)>> {
    let mut rows: Option<(usize, &'static str)> = None;
    for (key, array) in [("u0", u0), ("params", params)] {
        let Some(array) = array else { continue };
        let r = array.shape()[0];
        match rows {
            Some((m, other)) if m != r => {
                return Err(spec_error_at(
                    format!("{key} has {r} rows but {other} has {m}: one row per trajectory"),
                    Some(key.into()),
                ));
            }
            _ => rows = Some((r, key)),
        }
    }
    Ok(rows)
}

/// The ensemble with the arrays' initial states and parameters.
pub fn with_arrays(
    ensemble: &mut Ensemble,
    u0: Option<PyReadonlyArray2<'_, f64>>,
    params: Option<PyReadonlyArray2<'_, f64>>,
) -> PyResult<()> {
    if let Some(u0) = u0 {
        ensemble.initial = InitialStates::Table(table(&u0, "u0")?);
    }
    if let Some(params) = params {
        ensemble.params = Parameters::Table(table(&params, "params")?);
    }
    Ok(())
}

/// A problem's own check failing: an array of the wrong width is named by its key.
pub fn array_error(e: phaseflow::ode::SimError) -> PyErr {
    let message = e.to_string();
    match ["u0", "params"]
        .into_iter()
        .find(|k| message.contains(&format!("the {k} array")))
    {
        Some(key) => spec_error_at(message, Some(key.into())),
        None => crate::errors::sim_error(e),
    }
}

/// The system and run spec of a call: `options` read as the config file's keys, with `n`
/// from the arrays' `rows`; `analysis` names the one analysis table the call may hold.
pub fn spec_of(
    system: &Bound<'_, PyAny>,
    has_u0: bool,
    has_params: bool,
    rows: Option<(usize, &'static str)>,
    options: Option<&Bound<'_, PyDict>>,
    analysis: Option<&str>,
) -> PyResult<(System, RunSpec)> {
    let (system, name) = if let Ok(s) = system.cast::<PySystem>() {
        let inner = s.get().inner.clone();
        let name = inner.name().to_string();
        (inner, name)
    } else if let Ok(name) = system.cast::<PyString>() {
        let name = name.to_string();
        (load_system(&name).map_err(spec_error)?, name)
    } else if system.hasattr("__fspath__")? {
        let path: std::path::PathBuf = system.extract()?;
        let name = path.display().to_string();
        (load_system(&name).map_err(spec_error)?, name)
    } else {
        return Err(spec_error_at(
            "system must be a phaseflow.System, a built-in's name or a system file's path".into(),
            Some("system".into()),
        ));
    };
    let mut json = match options {
        Some(o) => to_json(o.as_any(), "")?,
        None => serde_json::Value::Object(Default::default()),
    };
    let map = json.as_object_mut().expect("keywords are a dict");
    for (key, why) in REFUSED {
        if map.contains_key(key) && Some(key) != analysis {
            return Err(spec_error_at(format!("{key}: {why}"), Some(key.into())));
        }
    }
    for (key, given) in [("u0", has_u0), ("params", has_params)] {
        let file = if key == "u0" {
            "u0.file"
        } else {
            "params_file"
        };
        let clash = if key == "u0" {
            map.contains_key("u0")
        } else {
            map.contains_key("params_file") || map.contains_key("sweep")
        };
        if given && clash {
            return Err(spec_error_at(
                format!(
                    "give {key} as an array or as the spec's own keys ({file}, sweep, ...), not both"
                ),
                Some(key.into()),
            ));
        }
    }
    // Arrays give the ensemble's size; `n`, when given too, must agree with their rows.
    if let Some((r, key)) = rows {
        match map.get("n").map(serde_json::Value::as_u64) {
            None => {
                map.insert("n".into(), r.into());
            }
            Some(Some(n)) if n != r as u64 => {
                return Err(spec_error_at(
                    format!("n = {n} disagrees with the {r} rows of {key}"),
                    Some("n".into()),
                ));
            }
            // Equal, or not a count at all: the spec's own check says what n must be.
            Some(_) => {}
        }
    }
    map.insert("system".into(), serde_json::Value::String(name));
    if let Some(table) = analysis {
        // The analysis' own table, empty for its defaults.
        map.entry(table).or_insert_with(|| serde_json::json!({}));
    }
    let spec = RunSpec::from_json(json).map_err(|f| spec_error(f.into()))?;
    spec.only_analysis(analysis).map_err(spec_error)?;
    Ok((system, spec))
}

fn table(array: &PyReadonlyArray2<'_, f64>, key: &str) -> PyResult<Table> {
    let m = matrix_of(array);
    if let Some(bad) = m.data.iter().position(|x| !x.is_finite()) {
        return Err(spec_error_at(
            format!(
                "{key}[{}, {}] is {}; every value must be finite",
                bad / m.cols.max(1),
                bad % m.cols.max(1),
                m.data[bad]
            ),
            Some(key.into()),
        ));
    }
    Ok(Table {
        data: m.data,
        rows: m.rows,
        cols: m.cols,
        origin: format!("the {key} array"),
    })
}

/// The run's settings, for a result's attributes (and xarray's `attrs`).
pub fn settings(problem: &Problem, spec: &RunSpec) -> serde_json::Value {
    let mut v = serde_json::to_value(spec).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.retain(|_, v| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty()));
        map.insert("system".into(), problem.system().name().into());
        map.insert("solver".into(), problem.solver().name().into());
        map.insert(
            "precision".into(),
            serde_json::to_value(problem.precision()).unwrap_or_default(),
        );
        map.insert("n".into(), problem.ensemble().n.into());
        // What the run resolved where the call left it to defaults: its span, its step (a
        // fixed-step run) or its tolerances (adaptive and stiff runs).
        let (t0, t1) = problem.span();
        map.insert("tspan".into(), serde_json::json!([t0, t1]));
        let tolerance = |t: &Tolerance| match t {
            Tolerance::All(v) => serde_json::json!(v),
            Tolerance::PerState(v) => serde_json::json!(v),
        };
        let control = match problem {
            Problem::Fixed(p) => {
                map.insert("dt".into(), p.grid.dt.into());
                None
            }
            Problem::Adaptive(p) => Some(&p.control),
            Problem::Stiff(p) => Some(&p.control),
            Problem::Sde(_) => None,
        };
        if let Some(c) = control {
            map.insert("rtol".into(), tolerance(&c.rtol));
            map.insert("atol".into(), tolerance(&c.atol));
            map.insert("max_steps".into(), c.max_steps.into());
        }
        let names = |vars: &[phaseflow::model::var::Var]| -> Vec<String> {
            vars.iter().map(|v| v.name.clone()).collect()
        };
        map.insert("state_names".into(), names(&problem.system().states).into());
        map.insert(
            "parameter_names".into(),
            names(&problem.system().params).into(),
        );
        let system = problem.system();
        if !system.events.is_empty() {
            // Event ids in `events` index these names.
            let names: Vec<&str> = system.events.iter().map(|e| e.name.as_str()).collect();
            map.insert("event_names".into(), names.into());
            map.insert("events".into(), system.event_log.k.into());
            map.insert("transient".into(), system.event_log.transient.into());
        }
        map.insert("phaseflow_version".into(), env!("CARGO_PKG_VERSION").into());
    }
    v
}

/// A solution as a dict: arrays moved into NumPy (states [n_save, N, dim] in the run's
/// precision, times, status as uint8, steps [N, 5] for adaptive and stiff runs), stats and
/// settings.
fn solution_dict<'py>(
    py: Python<'py>,
    solution: Solution,
    settings: &serde_json::Value,
) -> PyResult<Bound<'py, PyDict>> {
    let Solution {
        n,
        dim,
        state_names,
        times,
        states,
        status,
        steps,
        stats,
        events,
    } = solution;
    let n_save = times.len();
    let out = PyDict::new(py);
    let shape = [n_save, n, dim];
    match states {
        StateValues::F32(v) => out.set_item("states", v.into_pyarray(py).reshape(shape)?)?,
        StateValues::F64(v) => out.set_item("states", v.into_pyarray(py).reshape(shape)?)?,
    }
    out.set_item("times", times.into_pyarray(py))?;
    let status: Vec<u8> = status.into_iter().map(|s| s as u8).collect();
    out.set_item("status", status.into_pyarray(py))?;
    if let Some(steps) = steps {
        let flat: Vec<u32> = steps
            .iter()
            .flat_map(|s| [s.accepted, s.rejected, s.rhs_evals, s.jacobians, s.switches])
            .collect();
        let array: Bound<'py, PyArray1<u32>> = flat.into_pyarray(py);
        out.set_item("steps", array.reshape([n, 5])?)?;
    }
    if let Some(log) = events {
        // [N, k, 2 + dim]: t, event id, state; NaN rows past each trajectory's count.
        let width = record_width(log.dim);
        out.set_item(
            "events",
            log.records.into_pyarray(py).reshape([n, log.k, width])?,
        )?;
        out.set_item("event_counts", log.counts.into_pyarray(py))?;
    }
    out.set_item("state_names", state_names)?;
    let stats_dict = PyDict::new(py);
    stats_dict.set_item("trajectory_steps", stats.trajectory_steps)?;
    stats_dict.set_item("setup_s", stats.setup.as_secs_f64())?;
    stats_dict.set_item("compile_s", stats.compile.as_secs_f64())?;
    stats_dict.set_item("solve_s", stats.solve.as_secs_f64())?;
    stats_dict.set_item("gpu_s", stats.gpu.map(|g| g.as_secs_f64()))?;
    stats_dict.set_item("host_s", stats.host.as_secs_f64())?;
    stats_dict.set_item("chunks", stats.chunks)?;
    stats_dict.set_item("dispatches", stats.dispatches)?;
    stats_dict.set_item("throughput", stats.throughput())?;
    out.set_item("stats", stats_dict)?;
    out.set_item("settings", json_to_py(py, settings)?)?;
    Ok(out)
}

/// Adapters on this machine, and the one `Engine()` would choose.
#[pyfunction]
pub fn info(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let adapters = py.detach(phaseflow::gpu::list_adapters);
    let chosen = phaseflow::gpu::chosen_index(&AdapterChoice::Best).ok();
    let v = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "adapters": adapters,
        "best": chosen,
    });
    if adapters.is_empty() {
        return Err(gpu_error(phaseflow::gpu::GpuError::NoAdapter));
    }
    json_to_py(py, &v)
}

pub fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => py.None().into_bound(py),
        J::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        J::String(s) => s.into_pyobject(py)?.into_any(),
        J::Array(a) => {
            let list = pyo3::types::PyList::empty(py);
            for x in a {
                list.append(json_to_py(py, x)?)?;
            }
            list.into_any()
        }
        J::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}
