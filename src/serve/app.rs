//! The server's state and its HTTP handlers.

use super::analysis::{self, Size};
use super::conn::{CONNECTION, ConnActivity, working};
use super::error::ApiError;
use super::estimate;
use super::limits::Limits;
use super::metrics;
use super::montecarlo;
use super::request::{json_body, prediction_inputs, simulate_problem};
use super::results::{Finished, ResultStore, npy, solution_arrays};
use crate::engine::{
    Engine, EngineError, Job, JobHandle, JobId, JobOptions, JobState, Model, Progress,
};
use crate::io::Dtype;
use crate::ode::sensitivity::split_solution;
use crate::ode::solution::status_counts_json;
use crate::ode::{Problem, Solution, Solver, StateValues};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

/// A job the server knows: live (its engine handle) or finished and stored (its record).
struct Entry {
    handle: Option<JobHandle>,
    record: Value,
}

pub struct App {
    pub engine: Engine,
    pub store: ResultStore,
    pub limits: Limits,
    pub token: Option<String>,
    jobs: Mutex<BTreeMap<JobId, Entry>>,
    pub models: RwLock<HashMap<String, Model>>,
    responses: Mutex<BTreeMap<u16, u64>>,
    /// Simulate requests being parsed and checked at once.
    checking: tokio::sync::Semaphore,
    /// Ids below this are durably reserved in the results directory.
    reserved_ids: Mutex<JobId>,
    /// Tasks that wait for jobs and store their results; shutdown waits for them.
    pub waiters: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

type Reply = Result<Response, ApiError>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl App {
    pub fn new(
        engine: Engine,
        store: ResultStore,
        stored: BTreeMap<JobId, Value>,
        limits: Limits,
        token: Option<String>,
    ) -> App {
        let jobs = stored
            .into_iter()
            .map(|(id, record)| {
                (
                    id,
                    Entry {
                        handle: None,
                        record,
                    },
                )
            })
            .collect();
        App {
            engine,
            store,
            limits,
            token,
            jobs: Mutex::new(jobs),
            models: RwLock::new(HashMap::new()),
            responses: Mutex::new(BTreeMap::new()),
            reserved_ids: Mutex::new(0),
            checking: tokio::sync::Semaphore::new(CHECKING_AT_ONCE),
            waiters: Mutex::new(Vec::new()),
        }
    }

    fn live_jobs(&self) -> usize {
        lock(&self.jobs)
            .values()
            .filter(|e| e.handle.is_some())
            .count()
    }

    /// The job's record with its progress, from the engine while it is live.
    fn describe(&self, id: JobId) -> Option<Value> {
        let jobs = lock(&self.jobs);
        let e = jobs.get(&id)?;
        let mut v = e.record.clone();
        if let Some(h) = &e.handle {
            let p = h.progress();
            // Succeeded in the engine but not yet on disk: still running as far as a client
            // is concerned (its result cannot be fetched yet).
            let state = match &p.state {
                JobState::Succeeded => "running",
                // Asked to stop, finishing the work in flight.
                JobState::Running | JobState::Queued if h.cancel_requested() => "cancelling",
                s => s.name(),
            };
            v["state"] = json!(state);
            put_progress(&mut v, &p);
        }
        if v["state"] == "succeeded" && v["kind"] != "train" {
            v["result"] = json!(format!("/v1/jobs/{id}/result"));
        }
        Some(v)
    }

    /// Stores how a job ended (called off the async threads: it writes files); `finish`
    /// turns a result into what is stored, given the summary the record had so far.
    fn finish_job<T>(
        &self,
        id: JobId,
        result: Result<T, EngineError>,
        finish: impl FnOnce(T, &Value) -> Finished,
    ) {
        let Some((mut record, progress)) = lock(&self.jobs)
            .get(&id)
            .map(|e| (e.record.clone(), e.handle.as_ref().map(|h| h.progress())))
        else {
            return;
        };
        if let Some(p) = &progress {
            put_progress(&mut record, p);
        }
        record["finished_unix"] = json!(unix_now());
        let arrays = match result {
            Ok(r) => {
                let finished = finish(r, &record["summary"]);
                record["state"] = json!("succeeded");
                record["summary"] = finished.summary;
                record["arrays"] = json!(
                    finished
                        .arrays
                        .iter()
                        .map(|(name, _)| name.clone())
                        .collect::<Vec<_>>()
                );
                finished.arrays
            }
            Err(EngineError::Cancelled { done, total }) => {
                // The progress estimate runs ahead of the trajectories whose chunks finished.
                let reached = record["progress"]["done"].as_u64().unwrap_or(0).max(done);
                record["state"] = json!("cancelled");
                record["error"] = json!(format!(
                    "cancelled after about {reached} of {total} trajectories; a cancelled job \
                     keeps no result"
                ));
                Vec::new()
            }
            Err(e) => {
                record["state"] = json!("failed");
                record["error"] = json!(e.to_string());
                Vec::new()
            }
        };
        if let Err(e) = self.store.save(id, &record, &arrays) {
            log::error!("storing job {id} failed: {e}");
            record["state"] = json!("failed");
            record["error"] = json!(format!("the result could not be stored: {e}"));
            if let Some(o) = record.as_object_mut() {
                o.remove("arrays");
            }
        }
        if let Some(entry) = lock(&self.jobs).get_mut(&id) {
            entry.record = record;
            entry.handle = None;
        }
    }
}

/// A finished simulation as stored; `split` (states, sensitivities, state names) turns an
/// augmented run's saves back into the states and `sensitivities` [n_save, N, dim, n_sens].
fn finished_simulation(
    s: Solution,
    split: Option<(usize, usize, Value)>,
    before: &Value,
) -> Finished {
    let stiff = before["solver"]
        .as_str()
        .and_then(Solver::from_name)
        .is_some_and(Solver::is_stiff);
    let Some((dim, n_sens, names)) = split else {
        return Finished {
            arrays: solution_arrays(&s, stiff),
            summary: summary(before, &s),
        };
    };
    let names = names
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let (s, sens) = split_solution(s, dim, names);
    let mut arrays = solution_arrays(&s, stiff);
    let shape = [s.times.len() as u64, s.n as u64, dim as u64, n_sens as u64];
    let bytes = match &sens {
        StateValues::F32(v) => npy(Dtype::F32, &shape, v),
        StateValues::F64(v) => npy(Dtype::F64, &shape, v),
    };
    // Beside the states, as the CLI writes sensitivities.npy beside states.npy.
    arrays.insert(1, ("sensitivities".to_string(), bytes));
    Finished {
        arrays,
        summary: summary(before, &s),
    }
}

/// A job's progress as its record and status reply show it.
fn put_progress(v: &mut Value, p: &Progress) {
    v["progress"] = json!({"done": p.done, "total": p.total, "fraction": p.fraction()});
    v["elapsed_s"] = json!(p.elapsed_s);
    v["running_s"] = json!(p.running_s);
}

/// What the record says about a finished simulation, beside what the request said.
fn summary(before: &Value, s: &Solution) -> Value {
    let mut v = before.clone();
    v["n_save"] = json!(s.times.len());
    v["status"] = status_counts_json(s.status_counts());
    v["timing"] = json!({
        "setup_s": s.stats.setup.as_secs_f64(),
        "solve_s": s.stats.solve.as_secs_f64(),
        "gpu_s": s.stats.gpu.map(|d| d.as_secs_f64()),
        "trajectory_steps": s.stats.trajectory_steps,
        "trajectory_steps_per_s": s.stats.throughput(),
        "chunks": s.stats.chunks,
    });
    if let Some(log) = &s.events {
        let (fired, recorded) = log.totals();
        v["events"] = json!({"fired": fired, "recorded": recorded, "k": log.k});
    }
    v
}

fn problem_summary(p: &Problem) -> Value {
    let system = p.system();
    json!({
        "system": system.name(),
        "states": system.states.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
        "parameters": system.params.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
        "solver": p.solver(),
        "adaptive": p.is_adaptive(),
        "precision": p.precision(),
        "n": p.ensemble().n,
        // Event ids in events.npy index this list.
        "event_names": system.events.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
    })
}

fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than this server's limit of {limit} bytes"),
            )
        } else {
            // The body stopped arriving: the connection went idle and was closed.
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!("the body did not arrive in full: {}", r.body_text()),
            )
        }
    })
}

pub async fn simulate(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Reply {
    start(app, body, accept_simulation).await
}

pub async fn lyapunov(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Reply {
    start(app, body, |app, request| {
        let (problem, ensemble) = analysis::lyapunov_problem(request.clone())?;
        check_size(app, analysis::lyapunov_size(&problem))?;
        let summary = analysis::lyapunov_summary(&problem);
        let job = queue(app, "lyapunov", request, summary, |engine| {
            analysis::submit_lyapunov(engine, &problem)
        })?;
        let finish: Finish<_> =
            Box::new(move |r, before| analysis::lyapunov_finished(&problem, &ensemble, r, before));
        Ok((job, finish))
    })
    .await
}

pub async fn orbit_diagram(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    start(app, body, |app, request| {
        let problem = analysis::orbit_problem(request.clone())?;
        check_size(app, analysis::orbit_size(&problem))?;
        let summary = analysis::orbit_summary(&problem);
        let job = queue(app, "orbit-diagram", request, summary, |engine| {
            analysis::submit_orbit(engine, &problem)
        })?;
        let finish: Finish<_> =
            Box::new(move |r, before| analysis::orbit_finished(&problem, r, before));
        Ok((job, finish))
    })
    .await
}

pub async fn basins(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Reply {
    start(app, body, |app, request| {
        let (problem, entropy_box) = analysis::basins_problem(request.clone())?;
        check_size(app, analysis::basins_size(&problem))?;
        let summary = analysis::basins_summary(&problem);
        let job = queue(app, "basins", request, summary, |engine| {
            analysis::submit_basins(engine, &problem)
        })?;
        let adapter = app.engine.context().summary.name.clone();
        let finish: Finish<_> = Box::new(move |r, before| {
            analysis::basins_finished(&problem, entropy_box, &adapter, r, before)
        });
        Ok((job, finish))
    })
    .await
}

pub async fn estimate(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Reply {
    start(app, body, |app, request| {
        let fits = estimate::estimate_request(request.clone())?;
        check_size(
            app,
            Size {
                n: fits.problem.problem.ensemble().n,
                bytes: fits.result_bytes(),
                key: "observations",
                n_key: "observations",
                hint: "send fewer trajectories per request",
            },
        )?;
        let (problem, mode) = (fits.problem, fits.mode);
        let job = queue(app, "estimate", request, fits.settings, |engine| {
            engine.submit_estimate(problem, mode, JobOptions::default())
        })?;
        Ok((job, Box::new(estimate::estimate_finished) as Finish<_>))
    })
    .await
}

pub async fn monte_carlo(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    start(app, body, |app, request| {
        let mc = montecarlo::monte_carlo_request(request.clone())?;
        check_size(
            app,
            Size {
                n: mc.problem.ensemble().n,
                bytes: mc.result_bytes()?,
                key: if mc.problem.is_adaptive() {
                    "saveat"
                } else {
                    "save_every"
                },
                n_key: "n",
                hint: "save less often (each save time keeps its own statistics)",
            },
        )?;
        let mut summary = problem_summary(&mc.problem);
        summary["quantiles"] = json!(mc.levels);
        let job = queue(app, "monte-carlo", request, summary, |engine| {
            engine.submit_monte_carlo(mc.problem, mc.levels, JobOptions::default())
        })?;
        Ok((job, Box::new(montecarlo::monte_carlo_finished) as Finish<_>))
    })
    .await
}

/// Stores a finished job's result, given the summary its record had so far.
type Finish<T> = Box<dyn FnOnce(T, &Value) -> Finished + Send>;

/// Takes a job request: checks it (`accept`, on a thread of its own), queues it, and
/// leaves a task that stores its result (`finish`) when it ends; answers 202 at once.
async fn start<T: Send + 'static>(
    app: Arc<App>,
    body: Result<Bytes, BytesRejection>,
    accept: impl FnOnce(&App, Value) -> Result<(Job<T>, Finish<T>), ApiError> + Send + 'static,
) -> Reply {
    let body = body_bytes(body, app.limits.max_body_bytes)?;
    let request = json_body(&body)?;
    let _working = working();
    // Checking a request can take long on hostile input; a few at a time, each on its own
    // thread, so that they can neither exhaust threads nor starve the other endpoints.
    let _permit =
        app.checking.acquire().await.map_err(|_| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping")
        })?;
    // Parsing an inline system and planning the run recurse over user text: they run on a
    // thread of their own with a large stack, where a panic is caught too.
    let accepting = app.clone();
    let (job, finish) = on_large_stack(move || accept(&accepting, request)).await?;
    let id = job.id();
    let waiter = {
        let app = app.clone();
        tokio::spawn(async move {
            let result = job.wait().await;
            let app2 = app.clone();
            let _ = tokio::task::spawn_blocking(move || app2.finish_job(id, result, finish)).await;
        })
    };
    let mut waiters = lock(&app.waiters);
    waiters.retain(|w| !w.is_finished());
    waiters.push(waiter);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/v1/jobs/{id}"))],
        Json(json!({"id": id, "state": "queued", "status": format!("/v1/jobs/{id}"), "result": format!("/v1/jobs/{id}/result")})),
    )
        .into_response())
}

/// Simulate requests checked at once (each on a thread of its own); more wait their turn.
const CHECKING_AT_ONCE: usize = 8;

/// Stack of the threads that parse and plan requests: deep enough for any input the
/// parser accepts, so a refusal, never an overflow, ends a hostile one.
const REQUEST_STACK: usize = 256 << 20;

/// Runs `work` on a fresh thread with `REQUEST_STACK` bytes of stack; a panic in it is a
/// 500 for this request alone.
async fn on_large_stack<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("phaseflow-request".into())
        .stack_size(REQUEST_STACK)
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .unwrap_or_else(|panic| Err(internal_error(&*panic)));
            let _ = tx.send(result);
        })
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("no thread for the request: {e}; retry later"),
            )
        })?;
    rx.await.unwrap_or_else(|_| {
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request's thread ended without an answer",
        ))
    })
}

/// The 500 for a panic: what it said, and that the server carries on.
fn internal_error(panic: &(dyn std::any::Any + Send)) -> ApiError {
    let said = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    log::error!("a request failed on an internal error: {said}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("internal error ({said}); the server carries on, please report this request"),
    )
}

/// Checks a simulate request, reserves its id durably, queues it and stores its first
/// record; the job is accepted once this returns.
fn accept_simulation(
    app: &App,
    request: Value,
) -> Result<(Job<Solution>, Finish<Solution>), ApiError> {
    let checked = simulate_problem(request.clone())?;
    let problem = checked.run_problem();
    let n = problem.ensemble().n;
    if n > app.limits.max_n {
        return Err(ApiError::invalid(format!(
            "n = {n} trajectories is more than this server's limit of {}",
            app.limits.max_n
        ))
        .field("n"));
    }
    let bytes = Engine::result_bytes(problem).map_err(|e| ApiError::invalid(e.to_string()))?;
    if bytes > app.limits.max_output_bytes {
        // Which key to change: the event records' if they are most of it, else the saves'.
        let system = problem.system();
        let records = (problem.ensemble().n as u64)
            .saturating_mul(system.event_log.k as u64)
            .saturating_mul(crate::ode::events::log::record_width(system.dim()) as u64)
            .saturating_mul(problem.precision().bytes());
        let (field, hint) = if !system.events.is_empty() && records >= bytes / 2 {
            let key = if request.get("points").is_some() {
                "points"
            } else {
                "events"
            };
            (
                key,
                "keep fewer event records per trajectory or run fewer trajectories",
            )
        } else if checked.sensitivities.is_some() {
            (
                "sensitivities",
                "ask for fewer sensitivities, save less often or run fewer trajectories",
            )
        } else if problem.is_adaptive() {
            ("saveat", "save less often or run fewer trajectories")
        } else {
            ("save_every", "save less often or run fewer trajectories")
        };
        return Err(ApiError::invalid(format!(
            "the results would take {bytes} bytes, more than this server's limit of {}; {hint}",
            app.limits.max_output_bytes
        ))
        .field(field));
    }
    let mut summary = problem_summary(&checked.problem);
    // The job integrates the augmented system; its saves are split back into the states
    // and S when it finishes.
    let split = checked.sensitivities.as_ref().map(|run| {
        summary["sensitivities"] = json!({
            "names": run.names,
            "error_control": checked.sensitivity_error,
            "equations": run.problem.system().dim(),
        });
        (run.dim, run.n_sens(), summary["states"].clone())
    });
    let problem = problem.clone();
    let job = queue(app, "simulate", request, summary, |engine| {
        engine.submit_simulate(problem, JobOptions::default())
    })?;
    Ok((
        job,
        Box::new(move |s, before| finished_simulation(s, split, before)),
    ))
}

/// Refuses an analysis whose trajectories or results exceed the server's limits.
fn check_size(app: &App, size: Size) -> Result<(), ApiError> {
    let n = size.n;
    if n > app.limits.max_n {
        return Err(ApiError::invalid(format!(
            "n = {n} trajectories is more than this server's limit of {}",
            app.limits.max_n
        ))
        .field(size.n_key));
    }
    if size.bytes > app.limits.max_output_bytes {
        return Err(ApiError::invalid(format!(
            "the results would take {} bytes, more than this server's limit of {}; {}",
            size.bytes, app.limits.max_output_bytes, size.hint
        ))
        .field(size.key));
    }
    Ok(())
}

/// Queues a checked job: refuses it when the server has as many live jobs as it takes,
/// reserves its id durably, and stores its first record; the job is accepted once this
/// returns.
fn queue<T: Send + 'static>(
    app: &App,
    kind: &str,
    request: Value,
    summary: Value,
    submit: impl FnOnce(&Engine) -> Result<Job<T>, EngineError>,
) -> Result<Job<T>, ApiError> {
    if app.live_jobs() >= app.limits.max_jobs {
        return Err(EngineError::Busy {
            limit: app.limits.max_jobs,
        }
        .into());
    }
    let stored = |e: std::io::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the results directory cannot record the job: {}", e.kind()),
        )
    };
    // The id is on disk before it is handed out; the lock keeps concurrent submissions
    // within what is reserved.
    let job: Job<T> = {
        let mut reserved = lock(&app.reserved_ids);
        let next = app.engine.next_id();
        if next >= *reserved {
            let bound = next + ID_BLOCK;
            app.store.reserve_ids(bound).map_err(stored)?;
            *reserved = bound;
        }
        submit(&app.engine)?
    };
    let id = job.id();
    let record = json!({
        "id": id,
        "kind": kind,
        "state": "queued",
        "submitted_unix": unix_now(),
        "request": request,
        "summary": summary,
    });
    if let Err(e) = app.store.save_accepted(id, &record) {
        job.cancel();
        return Err(stored(e));
    }
    lock(&app.jobs).insert(
        id,
        Entry {
            handle: Some(job.handle()),
            record,
        },
    );
    Ok(job)
}

/// Ids reserved on disk at a time (one synced write per this many jobs; a crash skips at
/// most this many ids, and never repeats one).
const ID_BLOCK: JobId = 16;

fn job_id(raw: &str) -> Result<JobId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("'{raw}' is not a job id (a whole number)")))
}

pub async fn list_jobs(State(app): State<Arc<App>>) -> Reply {
    let ids: Vec<JobId> = lock(&app.jobs).keys().copied().collect();
    let jobs: Vec<Value> = ids
        .into_iter()
        .filter_map(|id| app.describe(id))
        .map(|v| json!({"id": v["id"], "kind": v["kind"], "state": v["state"]}))
        .collect();
    Ok(Json(json!({ "jobs": jobs })).into_response())
}

pub async fn job_status(State(app): State<Arc<App>>, Path(raw): Path<String>) -> Reply {
    let id = job_id(&raw)?;
    let mut v = app
        .describe(id)
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    if let Some(o) = v.as_object_mut() {
        o.remove("request");
    }
    Ok(Json(v).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultQuery {
    format: Option<String>,
    array: Option<String>,
}

pub async fn job_result(
    State(app): State<Arc<App>>,
    Path(raw): Path<String>,
    Query(q): Query<ResultQuery>,
) -> Reply {
    let _working = working();
    let id = job_id(&raw)?;
    let v = app
        .describe(id)
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    let state = v["state"].as_str().unwrap_or("");
    if state != "succeeded" {
        let how = match state {
            "queued" | "running" => format!(
                "job {id} is {state} ({:.0}% done); ask again when GET /v1/jobs/{id} says succeeded",
                100.0 * v["progress"]["fraction"].as_f64().unwrap_or(0.0)
            ),
            _ => format!(
                "job {id} {state}; it has no result ({})",
                v["error"].as_str().unwrap_or("")
            ),
        };
        return Err(ApiError::new(StatusCode::CONFLICT, how));
    }
    let format = q.format.as_deref().unwrap_or("npz");
    let io = |e: std::io::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the result failed: {e}"),
        )
    };
    let octets = |bytes: Vec<u8>, name: String| {
        (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            bytes,
        )
            .into_response()
    };
    let app2 = app.clone();
    match format {
        "npz" => {
            let record = v.clone();
            let bytes = tokio::task::spawn_blocking(move || app2.store.npz(id, &record))
                .await
                .map_err(|e| io(std::io::Error::other(e)))?
                .map_err(io)?;
            Ok(octets(bytes, format!("job-{id}.npz")))
        }
        "npy" => {
            let names = app.store.array_names(id, &v);
            let array = q
                .array
                .unwrap_or_else(|| names.first().cloned().unwrap_or_default());
            if !names.contains(&array) {
                return Err(ApiError::not_found(format!(
                    "job {id} has no array '{array}'; its arrays are {}",
                    names.join(", ")
                )));
            }
            let bytes = app.store.npy(id, &array).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    ApiError::not_found(format!("job {id} has no array '{array}'"))
                } else {
                    io(e)
                }
            })?;
            Ok(octets(bytes, format!("job-{id}-{array}.npy")))
        }
        "json" => {
            let size = app.store.json_bytes(id, &v);
            if size > app.limits.max_json_bytes {
                return Err(ApiError::invalid(format!(
                    "the result's arrays take {size} bytes, too many for JSON (limit {}); ask \
                     for format=npz or format=npy",
                    app.limits.max_json_bytes
                ))
                .field("format"));
            }
            let out = if v["kind"] == "simulate" {
                app.store.json(id, &v)
            } else {
                app.store.analysis_json(id, &v)
            };
            let out = out.map_err(|e| {
                // Never the server's own paths in a message.
                let root = app.store.root().display().to_string();
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "reading the stored result failed: {}",
                        e.replace(&root, "<results>")
                    ),
                )
            })?;
            Ok(Json(out).into_response())
        }
        other => Err(
            ApiError::invalid(format!("unknown format '{other}'; use npz, npy or json"))
                .field("format"),
        ),
    }
}

pub async fn delete_job(State(app): State<Arc<App>>, Path(raw): Path<String>) -> Reply {
    let id = job_id(&raw)?;
    let handle = {
        let jobs = lock(&app.jobs);
        let e = jobs
            .get(&id)
            .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
        e.handle.clone()
    };
    match handle {
        Some(h) => {
            h.cancel();
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({"id": id, "state": "cancelling"})),
            )
                .into_response())
        }
        None => {
            if app.store.root().join(id.to_string()).exists() {
                app.store.delete(id).map_err(|e| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("deleting failed: {e}"),
                    )
                })?;
            }
            lock(&app.jobs).remove(&id);
            Ok(Json(json!({"id": id, "deleted": true})).into_response())
        }
    }
}

fn model_json(name: &str, m: &Model) -> Value {
    let a = m.arch();
    json!({
        "name": name,
        "sensors": a.sensors(),
        "dims": a.dims(),
        "outputs": a.outputs,
        "parameters": m.parameters(),
        "predict": format!("/v1/models/{name}/predict"),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelQuery {
    name: Option<String>,
}

/// Whether `name` can name a model (uploads and `serve --model`): it is a URL path segment.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Loads a model file into the engine (shared by uploads and the server's start).
pub fn load_model(app: &App, name: &str, path: &std::path::Path) -> Result<Model, ApiError> {
    let (arch, params) = crate::nn::load_deeponet(path)
        .map_err(|e| ApiError::invalid(format!("not a DeepONet checkpoint: {e}")))?;
    install_model(app, name, &arch, &params)
}

/// Places a checkpoint already read on the device and serves it under `name`.
pub fn install_model(
    app: &App,
    name: &str,
    arch: &crate::nn::DeepONetArch,
    params: &crate::nn::DeepONetParams,
) -> Result<Model, ApiError> {
    let model = app.engine.load_model(arch, params)?;
    app.models
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.to_string(), model.clone());
    Ok(model)
}

pub async fn upload_model(
    State(app): State<Arc<App>>,
    Query(q): Query<ModelQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let body = body_bytes(body, app.limits.max_model_bytes)?;
    let _working = working();
    let name = q.name.ok_or_else(|| {
        ApiError::invalid("give the model a name: POST /v1/models?name=NAME").field("name")
    })?;
    if !valid_name(&name) {
        return Err(
            ApiError::invalid("a model name is 1 to 64 letters, digits, '-' or '_'").field("name"),
        );
    }
    let app2 = app.clone();
    let n2 = name.clone();
    let model = tokio::task::spawn_blocking(move || -> Result<Model, ApiError> {
        // One upload at a time: concurrent uploads under one name shared the partial file
        // (one renamed it away under another: 500s, and a valid file refused as "not a
        // checkpoint"), and the model served and the file kept could come from different
        // uploads. Uploads are rare and their time is the file's write and load.
        static UPLOADS: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = UPLOADS.lock().unwrap_or_else(|p| p.into_inner());
        let dir = app2.store.models();
        let partial = dir.join(format!(".partial-{n2}.safetensors"));
        let write_err = |e: std::io::Error| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("storing the model failed: {}", e.kind()),
            )
        };
        std::fs::write(&partial, &body).map_err(write_err)?;
        // The checkpoint reader names the file it read; a client sees "the upload".
        let loaded = load_model(&app2, &n2, &partial).map_err(|mut e| {
            e.message = e
                .message
                .replace(&partial.display().to_string(), "the uploaded model");
            e
        });
        match loaded {
            Ok(m) => {
                std::fs::rename(&partial, dir.join(format!("{n2}.safetensors")))
                    .map_err(write_err)?;
                Ok(m)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                Err(e)
            }
        }
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok((StatusCode::CREATED, Json(model_json(&name, &model))).into_response())
}

pub async fn list_models(State(app): State<Arc<App>>) -> Reply {
    let models = app.models.read().unwrap_or_else(|p| p.into_inner());
    let mut list: Vec<Value> = models.iter().map(|(n, m)| model_json(n, m)).collect();
    list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(Json(json!({ "models": list })).into_response())
}

pub async fn predict(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let body = body_bytes(body, app.limits.max_body_bytes)?;
    let _working = working();
    let model = app
        .models
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&name)
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no model '{name}'; POST /v1/models?name={name} loads one"
            ))
        })?;
    let request = json_body(&body)?;
    let (u, y) = prediction_inputs(&request, model.arch())?;
    let shape = [u.rows, y.rows, model.arch().outputs];
    refuse_large_prediction(shape, app.limits.max_json_bytes)?;
    let values = model.predict(u, y).await?;
    Ok(Json(json!({ "shape": shape, "values": values })).into_response())
}

/// Bytes a predicted value takes in the JSON answer at most (`-1.2345678901234567e-300,`).
const JSON_BYTES_PER_VALUE: u64 = 24;

/// A prediction's answer is spelled out as JSON, functions × points × outputs values: a small
/// body (a few functions, many points) could otherwise ask for gigabytes of answer. Refused
/// (422) above `max_json_bytes`, with the count, before any device work.
fn refuse_large_prediction(shape: [usize; 3], max_json_bytes: u64) -> Result<(), ApiError> {
    let values = shape
        .iter()
        .map(|&d| d as u64)
        .fold(1u64, u64::saturating_mul);
    let most = max_json_bytes / JSON_BYTES_PER_VALUE;
    if values > most {
        return Err(ApiError::invalid(format!(
            "this prediction would answer {} functions × {} points × {} outputs = {values} \
             values; one request may ask for at most {most}: send fewer functions or points \
             per request",
            shape[0], shape[1], shape[2]
        ))
        .field("y"));
    }
    Ok(())
}

pub async fn healthz(State(app): State<Arc<App>>) -> Reply {
    let s = app.engine.stats();
    Ok(Json(json!({
        "status": "ok",
        "adapter": app.engine.context().summary.name,
        "jobs": {"queued": s.queued, "running": s.running},
    }))
    .into_response())
}

pub async fn metrics(State(app): State<Arc<App>>) -> Reply {
    let models = app.models.read().unwrap_or_else(|p| p.into_inner()).len();
    let mut text = metrics::render(&app.engine.stats(), &lock(&app.responses), models);
    metrics::render_pipeline_cache(&mut text, &app.engine.context().pipeline_cache_stats());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// Bytes of a URI the server reads; a longer one gets 414.
pub const MAX_URI_BYTES: usize = 8 << 10;

/// In front of every route: the bearer-token check (everything but /healthz), refusals
/// that need no body (a promised body over the limit, an overlong URI), a panic turned
/// into a 500, every error body made the documented JSON, and the count by status.
pub async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let response = match refuse_early(&app, &request) {
        Some(refusal) => {
            // The request's body (if any) stays unread, so this connection cannot carry
            // another request: saying so keeps a client from reusing it for its next one.
            let mut response = refusal.into_response();
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            response
        }
        None => match CatchPanic(Box::pin(within_connection(next, request))).await {
            Ok(response) => as_json_error(response).await,
            Err(panic) => internal_error(&*panic).into_response(),
        },
    };
    *lock(&app.responses)
        .entry(response.status().as_u16())
        .or_default() += 1;
    response
}

/// Runs the request with its connection known to `conn::working`.
async fn within_connection(next: Next, request: Request) -> Response {
    let connection = request
        .extensions()
        .get::<axum::extract::ConnectInfo<ConnActivity>>()
        .map(|c| c.0.clone());
    match connection {
        Some(c) => CONNECTION.scope(c, next.run(request)).await,
        None => next.run(request).await,
    }
}

/// A refusal decided from the request line and headers alone.
fn refuse_early(app: &App, request: &Request) -> Option<ApiError> {
    let uri = request.uri();
    let uri_len = uri.path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Some(ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!("the URI has {uri_len} bytes; this server reads at most {MAX_URI_BYTES}"),
        ));
    }
    if let Some(token) = &app.token
        && uri.path() != "/healthz"
    {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            let why = if given.is_some() {
                "wrong bearer token"
            } else {
                "this server needs 'Authorization: Bearer <token>'"
            };
            return Some(ApiError::new(StatusCode::UNAUTHORIZED, why));
        }
    }
    // A body promised beyond the limit is refused before a byte of it is read.
    let limit = if uri.path() == "/v1/models" {
        app.limits.max_model_bytes
    } else {
        app.limits.max_body_bytes
    };
    let promised = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match promised {
        Some(bytes) if bytes > limit as u64 => Some(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than this server's limit of {limit} bytes"),
        )),
        _ => None,
    }
}

/// The token of an `Authorization` value whose scheme is Bearer, in any letter case
/// (RFC 9110: schemes are case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// An error response that is not already the documented JSON (the framework's own 400,
/// 404, 405, 415, 422) made into it, keeping the framework's words.
async fn as_json_error(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    ApiError::framework(status, &text).into_response()
}

/// A handler's future, with a panic in it caught as `Err` (the connection and the server
/// carry on; the client gets a 500).
struct CatchPanic<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for CatchPanic<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see the README's `phaseflow serve` section")
}
