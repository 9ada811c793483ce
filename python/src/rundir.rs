//! `simulate(..., out=DIR)` from Python: the run streamed into a run directory as
//! `phaseflow simulate -o DIR` writes it (the library's `ode::run_dir`: the same files,
//! run.json, fingerprint and resumability), on the engine's device, outside its queue,
//! without the GIL; Ctrl-C stops it between chunks, leaving a directory that
//! `phaseflow simulate --resume DIR` continues.

use crate::convert::to_json;
use crate::errors::{spec_error, spec_error_at};
use crate::run::{PyEngine, json_to_py};
use crate::system::{Origin, PySystem};
use phaseflow::ode::RunOptions;
use phaseflow::ode::run_dir::{
    Prepared, ResumePoint, RunDirError, interruptible_chunk_of, prepare_run,
};
use phaseflow::schedule::PlanCaps;
use phaseflow::spec::RunSpec;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

pub fn dir_error(e: RunDirError) -> PyErr {
    match e {
        RunDirError::Spec(e) => spec_error(e),
        RunDirError::Input(m) => spec_error_at(m, Some("out".into())),
        RunDirError::Runtime(m) => crate::errors::run_error(m),
        RunDirError::Sim(e) => crate::errors::sim_error(e),
    }
}

/// The system as a run directory records it: a built-in's name or a file's path (its text
/// is copied into the directory for `--resume`). A `System` built from equations has no
/// file: `phaseflow.simulate` writes its text (`System.assembled_text`) to a private
/// temporary file and passes that path.
pub fn system_name(system: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = system.cast::<PySystem>() {
        let s = s.get();
        return match &s.origin {
            Origin::Builtin => Ok(s.inner.name().to_string()),
            Origin::File(path) => Ok(path.display().to_string()),
            Origin::Text(_) => Err(spec_error_at(
                "system: a System built from equations goes to a run directory or store \
                 through phaseflow.simulate, which writes its text to a file"
                    .into(),
                Some("system".into()),
            )),
        };
    }
    if let Ok(name) = system.cast::<PyString>() {
        return Ok(name.to_string());
    }
    if system.hasattr("__fspath__")? {
        let path: std::path::PathBuf = system.extract()?;
        return Ok(path.display().to_string());
    }
    Err(spec_error_at(
        "system: give a System, a built-in's name or a system file's path".into(),
        Some("system".into()),
    ))
}

/// Runs into `options["out"]`; returns a dict: `path`, `summary` (run.json), `complete`,
/// `interrupted`.
#[pyfunction]
#[pyo3(signature = (system, *, engine, overwrite = false, **options))]
pub fn simulate_to_dir<'py>(
    py: Python<'py>,
    system: &Bound<'py, PyAny>,
    engine: &PyEngine,
    overwrite: bool,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let spec = out_spec(system, options)?;
    let out = spec
        .out
        .clone()
        .ok_or_else(|| spec_error_at("out: give the directory".into(), Some("out".into())))?;
    let prepared = py
        .detach(|| prepare_run(spec, None, overwrite))
        .map_err(dir_error)?;
    run_prepared(py, engine, prepared, out)
}

/// The spec of a run written to `out`: the system by name or path, and the keywords.
pub fn out_spec(
    system: &Bound<'_, PyAny>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<RunSpec> {
    let name = system_name(system)?;
    let mut json = match options {
        Some(o) => to_json(o.as_any(), "")?,
        None => serde_json::Value::Object(Default::default()),
    };
    let map = json.as_object_mut().expect("keywords are a dict");
    for key in ["lyapunov", "orbit", "basins"] {
        if map.contains_key(key) {
            return Err(spec_error_at(
                format!("{key}: an analysis' table does not go to simulate"),
                Some(key.into()),
            ));
        }
    }
    map.insert("system".into(), name.into());
    RunSpec::from_json(json).map_err(|f| spec_error(f.into()))
}

/// Continues an interrupted run directory (as `phaseflow simulate --resume DIR`): its spec
/// and inputs from the directory alone, its fingerprint checked, trajectories from the
/// first not done.
#[pyfunction]
#[pyo3(signature = (path, *, engine))]
pub fn resume_dir<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    engine: &PyEngine,
) -> PyResult<Bound<'py, PyDict>> {
    let resume_error = |e: RunDirError| match e {
        RunDirError::Input(m) => spec_error_at(
            m.trim_start_matches("--resume: ").to_string(),
            Some("path".into()),
        ),
        other => dir_error(other),
    };
    let point = ResumePoint::read(&path).map_err(resume_error)?;
    let prepared = py
        .detach(|| prepare_run(point.spec.clone(), Some(&point), false))
        .map_err(resume_error)?;
    run_prepared(py, engine, prepared, path)
}

/// Runs a prepared run on the engine's device on a thread of its own, waiting without the
/// GIL; Ctrl-C stops it after the chunks in flight and is re-raised.
fn run_prepared<'py>(
    py: Python<'py>,
    engine: &PyEngine,
    prepared: Prepared,
    out: std::path::PathBuf,
) -> PyResult<Bound<'py, PyDict>> {
    let max_chunk = interruptible_chunk_of(prepared.run_problem());
    let (outcome, interrupt) = in_background(py, engine, max_chunk, move |ctx, options| {
        let mut nothing = phaseflow::ode::Tally::default();
        prepared.run(std::slice::from_ref(ctx), options, &mut nothing)
    })?;
    let run = outcome.map_err(dir_error)?;
    if let Some(e) = interrupt {
        return Err(e);
    }
    if run.unfinished > 0 {
        return Err(crate::errors::run_error(format!(
            "{} trajectories came back unfinished although their chunks were done; run.json \
             says failed (a phaseflow or driver bug: please report it)",
            run.unfinished
        )));
    }
    let result = PyDict::new(py);
    result.set_item("path", out)?;
    result.set_item("summary", json_to_py(py, &run.summary)?)?;
    result.set_item("complete", run.complete)?;
    Ok(result)
}

/// Runs `work` on the engine's device (with run options of at most `max_chunk`
/// trajectories per chunk and the engine's memory budget) on a thread of its own, waiting
/// without the GIL. Ctrl-C sets the run's cancel flag, so that it stops after the chunks in
/// flight; the work's outcome comes back with the interruption to re-raise.
pub fn in_background<T: Send + 'static>(
    py: Python<'_>,
    engine: &PyEngine,
    max_chunk: usize,
    work: impl FnOnce(&phaseflow::gpu::GpuContext, RunOptions) -> Result<T, RunDirError>
    + Send
    + 'static,
) -> PyResult<(Result<T, RunDirError>, Option<PyErr>)> {
    let engine = engine.engine().clone();
    let cancel = Arc::new(AtomicBool::new(false));
    let options = RunOptions {
        caps: PlanCaps {
            max_chunk: Some(max_chunk),
            memory_budget: engine.budgets().1,
            ..PlanCaps::default()
        },
        cancel: Some(cancel.clone()),
        ..RunOptions::default()
    };
    let (tx, rx) = mpsc::channel::<Result<T, RunDirError>>();
    std::thread::Builder::new()
        .name("phaseflow-py-rundir".into())
        .spawn(move || {
            let _ = tx.send(work(engine.context(), options));
        })
        .map_err(|e| crate::errors::run_error(format!("no thread to run on: {e}")))?;
    let mut rx = rx;
    let mut interrupt = None;
    let outcome = loop {
        let (received, back) = py.detach(move || (rx.recv_timeout(Duration::from_millis(100)), rx));
        rx = back;
        match received {
            Ok(result) => break result,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if interrupt.is_none()
                    && let Err(e) = py.check_signals()
                {
                    cancel.store(true, Ordering::Relaxed);
                    interrupt = Some(e);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(crate::errors::run_error(
                    "the run's thread ended without a result".into(),
                ));
            }
        }
    };
    Ok((outcome, interrupt))
}
