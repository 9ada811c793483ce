//! The server's state and its HTTP handlers.

use super::error::ApiError;
use super::request::{json_body, prediction_inputs, simulate_problem};
use super::results::ResultStore;
use super::{Limits, metrics};
use crate::engine::{
    Engine, EngineError, Job, JobHandle, JobId, JobOptions, JobState, Model, Progress,
};
use crate::ode::solution::status_counts_json;
use crate::ode::{Problem, Solution};
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
                s => s.name(),
            };
            v["state"] = json!(state);
            put_progress(&mut v, &p);
        }
        if v["state"] == "succeeded" && v["kind"] == "simulate" {
            v["result"] = json!(format!("/v1/jobs/{id}/result"));
        }
        Some(v)
    }

    /// Stores how a job ended (called off the async threads: it writes files).
    fn finish_job(&self, id: JobId, result: Result<Solution, EngineError>) {
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
        let solution = match result {
            Ok(s) => {
                record["state"] = json!("succeeded");
                record["summary"] = summary(&record["summary"], &s);
                Some(s)
            }
            Err(EngineError::Cancelled { done, total }) => {
                record["state"] = json!("cancelled");
                record["error"] = json!(format!("cancelled after {done} of {total} trajectories"));
                None
            }
            Err(e) => {
                record["state"] = json!("failed");
                record["error"] = json!(e.to_string());
                None
            }
        };
        if let Err(e) = self.store.save(id, &record, solution.as_ref()) {
            log::error!("storing job {id} failed: {e}");
            record["state"] = json!("failed");
            record["error"] = json!(format!("the result could not be stored: {e}"));
        }
        if let Some(entry) = lock(&self.jobs).get_mut(&id) {
            entry.record = record;
            entry.handle = None;
        }
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
            ApiError::new(StatusCode::BAD_REQUEST, r.body_text())
        }
    })
}

pub async fn simulate(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Reply {
    let body = body_bytes(body, app.limits.max_body_bytes)?;
    let request = json_body(&body)?;
    let problem = simulate_problem(request.clone())?;
    let n = problem.ensemble().n;
    if n > app.limits.max_n {
        return Err(ApiError::invalid(format!(
            "n = {n} trajectories is more than this server's limit of {}",
            app.limits.max_n
        ))
        .field("n"));
    }
    let bytes = Engine::result_bytes(&problem).map_err(|e| ApiError::invalid(e.to_string()))?;
    if bytes > app.limits.max_output_bytes {
        return Err(ApiError::invalid(format!(
            "the results would take {bytes} bytes, more than this server's limit of {}; save \
             less often or run fewer trajectories",
            app.limits.max_output_bytes
        ))
        .field(if problem.is_adaptive() {
            "saveat"
        } else {
            "save_every"
        }));
    }
    if app.live_jobs() >= app.limits.max_jobs {
        return Err(EngineError::Busy {
            limit: app.limits.max_jobs,
        }
        .into());
    }
    let summary = problem_summary(&problem);
    let job: Job<Solution> = app.engine.submit_simulate(problem, JobOptions::default())?;
    let id = job.id();
    let record = json!({
        "id": id,
        "kind": "simulate",
        "state": "queued",
        "submitted_unix": unix_now(),
        "request": request,
        "summary": summary,
    });
    lock(&app.jobs).insert(
        id,
        Entry {
            handle: Some(job.handle()),
            record,
        },
    );
    let waiter = {
        let app = app.clone();
        tokio::spawn(async move {
            let result = job.wait().await;
            let app2 = app.clone();
            let _ = tokio::task::spawn_blocking(move || app2.finish_job(id, result)).await;
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
            let bytes = tokio::task::spawn_blocking(move || app2.store.npz(id))
                .await
                .map_err(|e| io(std::io::Error::other(e)))?
                .map_err(io)?;
            Ok(octets(bytes, format!("job-{id}.npz")))
        }
        "npy" => {
            let array = q.array.unwrap_or_else(|| "states".into());
            if !super::results::ARRAYS.contains(&array.as_str()) {
                return Err(ApiError::invalid(format!(
                    "no array '{array}'; the arrays are states, times, status and (adaptive) steps"
                ))
                .field("array"));
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
            let size = app.store.states_bytes(id);
            if size > app.limits.max_json_bytes {
                return Err(ApiError::invalid(format!(
                    "the states take {size} bytes, too many for JSON (limit {}); ask for \
                     format=npz or format=npy",
                    app.limits.max_json_bytes
                ))
                .field("format"));
            }
            let out = app
                .store
                .json(id, &v)
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
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

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Loads a model file into the engine (shared by uploads and the server's start).
pub fn load_model(app: &App, name: &str, path: &std::path::Path) -> Result<Model, ApiError> {
    let (arch, params) = crate::nn::load_deeponet(path)
        .map_err(|e| ApiError::invalid(format!("not a DeepONet checkpoint: {e}")))?;
    let model = app.engine.load_model(&arch, &params)?;
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
        let dir = app2.store.models();
        let partial = dir.join(format!(".partial-{n2}.safetensors"));
        let write_err = |e: std::io::Error| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("storing the model failed: {e}"),
            )
        };
        std::fs::write(&partial, &body).map_err(write_err)?;
        let loaded = load_model(&app2, &n2, &partial);
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
    let values = model.predict(u, y).await?;
    Ok(Json(json!({ "shape": shape, "values": values })).into_response())
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
    let text = metrics::render(&app.engine.stats(), &lock(&app.responses), models);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// Bearer-token check (everything but /healthz) and the response count by status.
pub async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let open = request.uri().path() == "/healthz";
    let response = match (&app.token, open) {
        (Some(token), false) => {
            let given = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
                next.run(request).await
            } else {
                let why = if given.is_some() {
                    "wrong bearer token"
                } else {
                    "this server needs 'Authorization: Bearer <token>'"
                };
                ApiError::new(StatusCode::UNAUTHORIZED, why).into_response()
            }
        }
        _ => next.run(request).await,
    };
    *lock(&app.responses)
        .entry(response.status().as_u16())
        .or_default() += 1;
    response
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see the README's Serving section")
}
