//! The analyses the server runs beside simulations: `POST /v1/lyapunov`,
//! `/v1/orbit-diagram` and `/v1/basins`. A body has the keys of the command's config file
//! (a run config with the command's own table, `lyapunov`, `orbit` or `basins`, which may be
//! left out for its defaults), checked by the same library functions the CLI uses; a
//! finished job keeps the arrays the CLI writes (same names, shapes and types) and the
//! summary its `--json` prints.

use super::error::ApiError;
use super::request::{run_spec, spec_api_error};
use super::results::{Finished, npy, status_npy};
use crate::engine::{Engine, EngineError, Job, JobOptions};
use crate::io::Dtype;
use crate::ode::basins::{BasinsProblem, BasinsResult, Method};
use crate::ode::lyapunov::{LyapunovProblem, LyapunovResult};
use crate::ode::orbit::{OrbitProblem, OrbitResult};
use serde_json::{Value, json};

/// Which analysis a request asks for (by its route).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalysisKind {
    Lyapunov,
    OrbitDiagram,
    Basins,
}

impl AnalysisKind {
    /// The body's key holding the analysis' own settings.
    pub fn table(self) -> &'static str {
        match self {
            AnalysisKind::Lyapunov => "lyapunov",
            AnalysisKind::OrbitDiagram => "orbit",
            AnalysisKind::Basins => "basins",
        }
    }
}

/// `kind`'s body as a run spec holding `kind`'s table (an empty one when left out).
fn spec_with_table(
    kind: AnalysisKind,
    mut body: Value,
) -> Result<(crate::model::System, crate::spec::RunSpec), ApiError> {
    if let Some(map) = body.as_object_mut() {
        map.entry(kind.table()).or_insert_with(|| json!({}));
    }
    run_spec(body)
}

/// What a request's trajectories and their results weigh, to hold against the server's
/// limits: trajectories, result bytes, the key that sets them, and what to change.
pub struct Size {
    pub n: usize,
    pub bytes: u64,
    /// The key that sets the result's size, and the one that sets N (`n` for most).
    pub key: &'static str,
    pub n_key: &'static str,
    pub hint: &'static str,
}

/// A checked Lyapunov request, and its ensemble's keys as the CLI's summary records them.
pub fn lyapunov_problem(body: Value) -> Result<(LyapunovProblem, Value), ApiError> {
    let (system, spec) = spec_with_table(AnalysisKind::Lyapunov, body)?;
    let problem = crate::spec::lyapunov::lyapunov_problem(system, &spec).map_err(spec_api_error)?;
    Ok((problem, crate::spec::lyapunov::ensemble_json(&spec)))
}

pub fn lyapunov_size(p: &LyapunovProblem) -> Size {
    Size {
        n: p.ensemble.n,
        bytes: Engine::lyapunov_result_bytes(p),
        key: "n",
        n_key: "n",
        hint: "run fewer trajectories",
    }
}

/// What the record says of a Lyapunov job on acceptance.
pub fn lyapunov_summary(p: &LyapunovProblem) -> Value {
    json!({
        "system": p.system.name(),
        "states": p.system.states.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
        "parameters": p.system.params.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
        "n": p.ensemble.n,
        "k": p.k,
        "precision": p.precision,
    })
}

pub fn submit_lyapunov(
    engine: &Engine,
    p: &LyapunovProblem,
) -> Result<Job<LyapunovResult>, EngineError> {
    engine.submit_lyapunov(p.clone(), JobOptions::default())
}

/// A finished Lyapunov job: the CLI's `lyapunov.npy`, `lyapunov_error.npy`, `status.npy`,
/// `params.npy` and `final.npy`, and its `--json` summary.
pub fn lyapunov_finished(
    p: &LyapunovProblem,
    ensemble: &Value,
    r: LyapunovResult,
    before: &Value,
) -> Finished {
    let (n, k) = (r.n as u64, r.k as u64);
    let dim = p.system.dim() as u64;
    let params = p.ensemble.params(0..r.n);
    Finished {
        summary: merged(before, {
            let mut s = r.summary_json(p);
            s["ensemble"] = ensemble.clone();
            s
        }),
        arrays: vec![
            ("lyapunov".into(), npy(Dtype::F64, &[n, k], &r.exponents)),
            ("lyapunov_error".into(), npy(Dtype::F64, &[n, k], &r.errors)),
            ("status".into(), status_npy(&r.status)),
            (
                "params".into(),
                npy(Dtype::F64, &[n, p.system.n_params() as u64], &params),
            ),
            ("final".into(), npy(Dtype::F64, &[n, dim], &r.final_states)),
        ],
    }
}

/// A checked orbit-diagram request.
pub fn orbit_problem(body: Value) -> Result<OrbitProblem, ApiError> {
    let (system, spec) = spec_with_table(AnalysisKind::OrbitDiagram, body)?;
    crate::spec::orbit::orbit_problem(system, &spec).map_err(spec_api_error)
}

pub fn orbit_size(p: &OrbitProblem) -> Size {
    Size {
        n: p.n(),
        bytes: Engine::orbit_result_bytes(p),
        key: "points",
        n_key: "n",
        hint: "keep fewer points per trajectory or run fewer trajectories",
    }
}

pub fn orbit_summary(p: &OrbitProblem) -> Value {
    let system = p.problem.system();
    json!({
        "system": system.name(),
        "states": system.states.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
        "parameters": system.params.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
        "n": p.n(),
        "k": p.k,
        "points": p.describe(),
        "solver": p.problem.solver(),
        "precision": p.problem.precision(),
    })
}

pub fn submit_orbit(engine: &Engine, p: &OrbitProblem) -> Result<Job<OrbitResult>, EngineError> {
    engine.submit_orbit_diagram(p.clone(), JobOptions::default())
}

/// A finished orbit diagram: the CLI's `orbit.npy` [N, K] (NaN past each count),
/// `counts.npy`, `distinct.npy`, `params.npy` and `status.npy`, and its `--json` summary.
pub fn orbit_finished(p: &OrbitProblem, r: OrbitResult, before: &Value) -> Finished {
    let (n, k) = (p.n(), p.k);
    let mut points = vec![f64::NAN; n * k];
    for (row, got) in points.chunks_mut(k.max(1)).zip(&r.diagram.points) {
        row[..got.len()].copy_from_slice(got);
    }
    let n_params = p.problem.system().n_params() as u64;
    Finished {
        summary: merged(before, r.summary_json(p)),
        arrays: vec![
            (
                "orbit".into(),
                npy(Dtype::F64, &[n as u64, k as u64], &points),
            ),
            ("counts".into(), npy(Dtype::U32, &[n as u64], &r.counts)),
            ("distinct".into(), npy(Dtype::U32, &[n as u64], &r.distinct)),
            (
                "params".into(),
                npy(Dtype::F64, &[n as u64, n_params], &r.params),
            ),
            ("status".into(), status_npy(&r.status)),
        ],
    }
}

/// A checked basins request, with the box size of its basin entropy.
pub fn basins_problem(body: Value) -> Result<(BasinsProblem, usize), ApiError> {
    let (system, spec) = spec_with_table(AnalysisKind::Basins, body)?;
    let entropy_box = crate::spec::basins::entropy_box(&spec).map_err(spec_api_error)?;
    let problem = crate::spec::basins::basins_problem(system, &spec).map_err(spec_api_error)?;
    Ok((problem, entropy_box))
}

pub fn basins_size(p: &BasinsProblem) -> Size {
    Size {
        n: p.run.ensemble().n,
        bytes: 4 * p.run.ensemble().n as u64,
        key: "basins.grid",
        n_key: "basins.grid",
        hint: "use a coarser grid",
    }
}

pub fn basins_summary(p: &BasinsProblem) -> Value {
    let system = p.run.system();
    json!({
        "system": system.name(),
        "states": system.states.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
        "n": p.run.ensemble().n,
        "solver": p.run.solver(),
        "precision": p.run.precision(),
    })
}

pub fn submit_basins(engine: &Engine, p: &BasinsProblem) -> Result<Job<BasinsResult>, EngineError> {
    engine.submit_basins(p.clone(), JobOptions::default())
}

/// A finished basins job: the CLI's `basins.npy` [NY, NX] int32, `attractors.npy`
/// [K, dim] and `features.npy` ([K, 2·dim], or [K] for a classifying expression), and its
/// `--json` summary.
pub fn basins_finished(
    p: &BasinsProblem,
    entropy_box: usize,
    adapter: &str,
    r: BasinsResult,
    before: &Value,
) -> Finished {
    let g = &r.grid;
    let (k, d) = (r.attractors.len() as u64, p.run.system().dim() as u64);
    let finals: Vec<f64> = r
        .attractors
        .iter()
        .flat_map(|a| a.final_state.iter().copied())
        .collect();
    let features: Vec<f64> = r
        .attractors
        .iter()
        .flat_map(|a| a.features.iter().copied())
        .collect();
    let feature_shape: Vec<u64> = match &p.method {
        Method::Features { .. } => vec![k, 2 * d],
        Method::Expression(_) => vec![k],
    };
    Finished {
        summary: merged(before, {
            let mut s = r.summary_json(p, entropy_box);
            s["run"]["adapter"] = json!(adapter);
            s
        }),
        arrays: vec![
            (
                "basins".into(),
                npy(Dtype::I32, &[g.ny() as u64, g.nx() as u64], &r.labels),
            ),
            ("attractors".into(), npy(Dtype::F64, &[k, d], &finals)),
            (
                "features".into(),
                npy(Dtype::F64, &feature_shape, &features),
            ),
        ],
    }
}

/// `before`'s keys with `after`'s laid over them.
fn merged(before: &Value, after: Value) -> Value {
    let mut out = before.clone();
    if let (Some(o), Value::Object(a)) = (out.as_object_mut(), after) {
        o.extend(a);
    }
    out
}
