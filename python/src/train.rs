//! DeepONet training from Python: a training config (a dict with the TOML file's keys, or
//! the file's path), data from its files or from NumPy arrays, the loop of
//! `phaseflow train deeponet` (`nn::deeponet::session`: held-out validation, best step,
//! early stopping) on an engine's device, and the run's files when `out` is given.

use crate::convert::{matrix_f64, matrix_of as matrix, to_json, whole};
use crate::deeponet::PyDeepONet;
use crate::errors::{engine_error, gpu_error, spec_error, spec_error_at};
use crate::run::{PyEngine, json_to_py};
use numpy::{IntoPyArray, PyArray1, PyArrayMethods};
use phaseflow::engine::EngineError;
use phaseflow::io::OutputDir;
use phaseflow::nn::deeponet::data::aligned;
use phaseflow::nn::deeponet::session::{self, Progress, RunFacts, RunRecord, StepClock};
use phaseflow::nn::deeponet::{DeepONetData, UnalignedData};
use phaseflow::nn::{DeepONetParams, DeepONetTrainer};
use phaseflow::spec::train::{TrainSetup, TrainSetupError, TrainSpec};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use std::ops::ControlFlow;
use std::path::PathBuf;

/// The files a run writes (what `overwrite` lets it replace).
const FILES: [&str; 4] = [
    "model.safetensors",
    "state.safetensors",
    "history.csv",
    "summary.json",
];

/// The pictures `phaseflow train deeponet` draws beside these files, which a run from
/// Python (drawing none) removes when it writes into the same directory.
const STALE_PICTURES: [&str; 2] = ["loss.png", "prediction.png"];

/// Trains a DeepONet; see `phaseflow.train_deeponet` for the arguments. Returns a dict:
/// `model` (a `DeepONet` on the engine's device), `history` (arrays per evaluation),
/// `summary`, `written` (paths), `interrupted`.
#[pyfunction]
#[pyo3(signature = (config, *, engine, train = None, test = None, out = None, overwrite = false, iterations = None, callback = None, resume = None))]
#[allow(clippy::too_many_arguments)]
pub fn train_deeponet<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    engine: Bound<'py, PyEngine>,
    train: Option<&Bound<'py, PyAny>>,
    test: Option<&Bound<'py, PyAny>>,
    out: Option<PathBuf>,
    overwrite: bool,
    iterations: Option<&Bound<'py, PyAny>>,
    callback: Option<Py<PyAny>>,
    resume: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut spec = read_spec(config, train.is_some())?;
    let iterations = iterations
        .map(|v| whole(v, "iterations", 1..=u32::MAX.into()).map(|n| n as u32))
        .transpose()?;
    if let Some(n) = iterations {
        if n == 0 {
            return Err(spec_error_at(
                "iterations must be at least 1".into(),
                Some("iterations".into()),
            ));
        }
        spec.train.iterations = n;
    }
    if resume.is_some() && overwrite {
        return Err(spec_error_at(
            "overwrite replaces an earlier run; resume goes on with one (leave overwrite out)"
                .into(),
            Some("overwrite".into()),
        ));
    }
    // A resumed run goes on in its own directory, as `phaseflow train deeponet --resume`.
    let out = match &resume {
        Some(dir) => {
            if let Some(o) = &out
                && !session::same_directory(dir, o)
            {
                return Err(spec_error_at(
                    format!(
                        "resume continues the run in '{}' and writes there; out '{}' names \
                         another directory (leave out unset)",
                        dir.display(),
                        o.display()
                    ),
                    Some("out".into()),
                ));
            }
            Some(dir.clone())
        }
        None => out.or_else(|| spec.out.clone()),
    };
    let setup_error = |e: TrainSetupError| match e {
        TrainSetupError::Field(f) => spec_error(f.into()),
        TrainSetupError::InConfig(m) | TrainSetupError::Data(m) => {
            let key = m
                .split(':')
                .next()
                .filter(|k| k.contains('.'))
                .map(str::to_string);
            spec_error_at(m, key)
        }
    };
    let arrays = |value: Option<&Bound<'py, PyAny>>, key: &str| {
        value.map(|v| data_from_arrays(v, key)).transpose()
    };
    let (train, test) = (arrays(train, "train")?, arrays(test, "test")?);
    let sets = py
        .detach(|| match train {
            Some(t) => spec.sets_from(t, test),
            None => match test {
                Some(_) => Err(TrainSetupError::Data(
                    "give test data as arrays only with training data as arrays".into(),
                )),
                None => spec.read_sets(),
            },
        })
        .map_err(setup_error)?;
    let TrainSetup {
        arch,
        init,
        config: train_config,
        plan,
    } = spec.setup(&sets).map_err(setup_error)?;
    let start = DeepONetParams::init(&arch, init, spec.model.seed)
        .map_err(|e| spec_error_at(e.to_string(), Some("model".into())))?;
    if let Some(dir) = &out
        && dir.exists()
        && !dir.is_dir()
    {
        return Err(spec_error_at(
            format!(
                "out: '{}' is a file; give a directory for the run's files",
                dir.display()
            ),
            Some("out".into()),
        ));
    }
    if let Some(dir) = &out
        && resume.is_none()
        && !overwrite
        && let Some(f) = FILES.iter().find(|f| dir.join(f).exists())
    {
        return Err(spec_error_at(
            format!(
                "'{}' holds the results of an earlier run ({f}); pass overwrite=True to replace \
                 them, or another out",
                dir.display()
            ),
            Some("out".into()),
        ));
    }

    let selection = sets.selection();
    // What a written run records and a resumed one must match (it hashes the data: only
    // when there is a run to write).
    let settings = out.as_ref().map(|_| py.detach(|| spec.fingerprint(&sets)));
    let resumed = match &resume {
        Some(dir) => Some(
            py.detach(|| {
                session::read_resumed(
                    dir,
                    &arch,
                    plan.iterations,
                    selection,
                    settings.as_deref().unwrap_or_default(),
                    "iterations",
                )
            })
            .map_err(|m| spec_error_at(m, Some("resume".into())))?,
        ),
        None => None,
    };
    let engine_ref = engine.get();
    let ctx = engine_ref.engine().context();
    // The loop runs without the GIL; each evaluation takes it briefly for the callback and
    // to see Ctrl-C, which stops the run with the best network so far.
    let mut interrupt: Option<PyErr> = None;
    let (ending, progress, trainer, seconds, timed) = py
        .detach(|| -> Result<_, EngineError> {
            let (mut trainer, mut progress) = match resumed {
                Some(r) => (
                    DeepONetTrainer::resume(ctx, &arch, &r.state, &sets.train, train_config)?,
                    Progress::resumed(r.record, r.best, r.state.step),
                ),
                None => (
                    DeepONetTrainer::new(ctx, &arch, &start, &sets.train, train_config)?,
                    Progress::fresh(),
                ),
            };
            // The rate as the CLI counts it (`StepClock`: after the first evaluation, whose
            // block paid for compiling the kernels).
            let mut clock = StepClock::start(progress.done);
            let ending = session::run(
                ctx,
                &mut trainer,
                &sets,
                plan,
                &mut progress,
                &mut clock,
                |h| {
                    Python::attach(|py| {
                        let stop = |e: PyErr, interrupt: &mut Option<PyErr>| {
                            *interrupt = Some(e);
                            ControlFlow::Break(())
                        };
                        if let Some(cb) = &callback {
                            let record = PyDict::new(py);
                            let filled = (|| -> PyResult<()> {
                                record.set_item("step", h.step)?;
                                record.set_item("batch_mse", h.batch_mse)?;
                                record.set_item(format!("{}_mse", selection.name()), h.mse)?;
                                record.set_item(
                                    format!("{}_mean_rel_l2", selection.name()),
                                    h.mean_rel_l2,
                                )?;
                                if let Some((mse, rel)) = h.test {
                                    record.set_item("test_mse", mse)?;
                                    record.set_item("test_mean_rel_l2", rel)?;
                                }
                                // Several outputs: each one's error as well (a list).
                                if !h.per_output.is_empty() {
                                    record.set_item(
                                        format!("{}_mean_rel_l2_per_output", selection.name()),
                                        h.per_output.clone(),
                                    )?;
                                }
                                if !h.test_per_output.is_empty() {
                                    record.set_item(
                                        "test_mean_rel_l2_per_output",
                                        h.test_per_output.clone(),
                                    )?;
                                }
                                cb.call1(py, (record,))?;
                                Ok(())
                            })();
                            if let Err(e) = filled {
                                return stop(e, &mut interrupt);
                            }
                        }
                        match py.check_signals() {
                            Err(e) => stop(e, &mut interrupt),
                            Ok(()) => ControlFlow::Continue(()),
                        }
                    })
                },
            )?;
            let timed = clock.timed(progress.done);
            Ok((ending, progress, trainer, clock.total(), timed))
        })
        .map_err(engine_error)?;
    if progress.best.is_none() {
        return Err(interrupt.unwrap_or_else(|| {
            engine_error(EngineError::Internal("a run without an evaluation".into()))
        }));
    }
    // Nothing is written or returned for a network that diverged at every evaluation.
    progress
        .check_best(spec.train.lr)
        .map_err(crate::errors::run_error)?;
    // summary.json as the CLI writes it (the same function), with how the run ended.
    let facts = RunFacts {
        iterations_asked: plan.iterations,
        ending,
        seconds,
        timed,
        validation_share: spec.data.validation,
    };
    let mut summary_json = py
        .detach(|| session::summary(ctx, &arch, &sets, &progress, &facts))
        .map_err(gpu_error)?;
    summary_json["interrupted"] = interrupt.is_some().into();
    summary_json["resumed_from"] = resume.as_ref().map(|d| d.display().to_string()).into();
    let Progress {
        history,
        best,
        since_best,
        ..
    } = progress;
    let (best_error, best_step, params) = best.expect("checked above");

    let result = PyDict::new(py);
    let columns = PyDict::new(py);
    let column =
        |pick: &dyn Fn(&session::Record) -> f64| -> Vec<f64> { history.iter().map(pick).collect() };
    let steps: Vec<u32> = history.iter().map(|h| h.step).collect();
    columns.set_item("step", steps.into_pyarray(py))?;
    columns.set_item("batch_mse", column(&|h| h.batch_mse).into_pyarray(py))?;
    columns.set_item(
        format!("{}_mse", selection.name()),
        column(&|h| h.mse).into_pyarray(py),
    )?;
    columns.set_item(
        format!("{}_mean_rel_l2", selection.name()),
        column(&|h| h.mean_rel_l2).into_pyarray(py),
    )?;
    if sets.test.is_some() {
        let nan = f64::NAN;
        columns.set_item(
            "test_mse",
            column(&|h| h.test.map_or(nan, |t| t.0)).into_pyarray(py),
        )?;
        columns.set_item(
            "test_mean_rel_l2",
            column(&|h| h.test.map_or(nan, |t| t.1)).into_pyarray(py),
        )?;
    }
    // Several outputs: [evaluations, outputs] arrays of each output's error.
    let per_output = |pick: &dyn Fn(&session::Record) -> &Vec<f64>| -> Option<Vec<Vec<f64>>> {
        let width = history.iter().map(|h| pick(h).len()).max().unwrap_or(0);
        (width > 1).then(|| {
            history
                .iter()
                .map(|h| {
                    let mut row = pick(h).clone();
                    row.resize(width, f64::NAN);
                    row
                })
                .collect()
        })
    };
    if let Some(rows) = per_output(&|h| &h.per_output) {
        let rows = numpy::PyArray2::from_vec2(py, &rows)?;
        columns.set_item(format!("{}_mean_rel_l2_per_output", selection.name()), rows)?;
    }
    if let Some(rows) = per_output(&|h| &h.test_per_output) {
        let rows = numpy::PyArray2::from_vec2(py, &rows)?;
        columns.set_item("test_mean_rel_l2_per_output", rows)?;
    }
    result.set_item("history", columns)?;

    let mut written: Vec<String> = Vec::new();
    if let Some(dir) = &out {
        let record = RunRecord {
            selection,
            history,
            best_step,
            best_error,
            since_best,
            settings,
        };
        written = py
            .detach(|| -> Result<Vec<PathBuf>, String> {
                let mut files = OutputDir::create(dir).map_err(|e| e.to_string())?;
                session::write_checkpoints(
                    &mut files,
                    ctx,
                    &arch,
                    &params,
                    &trainer,
                    &record,
                    &summary_json,
                )
                .map_err(|e| e.to_string())?;
                let written = files.commit().map_err(|e| e.to_string())?;
                // The CLI's pictures of an earlier run there would show another network.
                for stale in STALE_PICTURES {
                    let _ = std::fs::remove_file(dir.join(stale));
                }
                Ok(written)
            })
            .map_err(pyo3::exceptions::PyOSError::new_err)?
            .into_iter()
            .map(|p| p.display().to_string())
            .collect();
    }
    result.set_item("summary", json_to_py(py, &summary_json)?)?;
    result.set_item("written", written)?;
    let model = PyDeepONet::from_parts(py, engine_ref, arch, params)?;
    result.set_item("model", Bound::new(py, model)?)?;
    // Ctrl-C (or a callback's exception) is raised after the best network so far is
    // written: the run is kept, as with the CLI.
    if let Some(e) = interrupt {
        return Err(e);
    }
    Ok(result)
}

/// The config: a dict with the TOML file's keys, or a path to the file. With arrays for
/// the training data, `[data] train` may be left out.
fn read_spec(config: &Bound<'_, PyAny>, arrays: bool) -> PyResult<TrainSpec> {
    if config.is_instance_of::<PyString>() || config.hasattr("__fspath__")? {
        let path: PathBuf = config.extract()?;
        return TrainSpec::from_file(&path).map_err(spec_error);
    }
    if !config.is_instance_of::<PyDict>() {
        return Err(spec_error_at(
            "config must be a dict (the training config's keys) or a config file's path".into(),
            Some("config".into()),
        ));
    }
    let mut json = to_json(config, "")?;
    if arrays && let Some(map) = json.as_object_mut() {
        let data = map
            .entry("data")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let Some(data) = data.as_object_mut() {
            if data.contains_key("train") {
                return Err(spec_error_at(
                    "give the training data as arrays (train=...) or as data.train in the \
                     config, not both"
                        .into(),
                    Some("data.train".into()),
                ));
            }
            data.insert("train".into(), "<arrays>".into());
        }
    }
    TrainSpec::from_json(json).map_err(|f| spec_error(f.into()))
}

/// Aligned data from `(functions [F, sensors], points [P, dims], values [F, P] or
/// [F, P, outputs])`.
/// Unaligned samples (DeepXDE's `Triple`): sample r pairs function `u[r]` with location
/// `y[r]` and value `g[r]`, as `{"u": [S, sensors], "y": [S, dims], "g": [S] or [S, k]}`.
fn unaligned_from_dict(d: &Bound<'_, PyDict>, key: &str) -> PyResult<DeepONetData> {
    if let Some(other) = d
        .keys()
        .iter()
        .filter_map(|k| k.extract::<String>().ok())
        .find(|k| !["u", "y", "g"].contains(&k.as_str()))
    {
        return Err(spec_error_at(
            format!("{key}: unknown key '{other}'; unaligned samples are {{\"u\", \"y\", \"g\"}}"),
            Some(key.into()),
        ));
    }
    let part = |name: &str| -> PyResult<Bound<'_, PyAny>> {
        d.get_item(name)?.ok_or_else(|| {
            spec_error_at(
                format!("{key}: no '{name}'; unaligned samples need u [S, sensors], y [S, dims] and g [S, outputs]"),
                Some(key.into()),
            )
        })
    };
    let u = matrix(&matrix_f64(&part("u")?, &format!("{key}.u"))?);
    let y = matrix(&matrix_f64(&part("y")?, &format!("{key}.y"))?);
    let g_any = part("g")?;
    let g_shaped = match g_any
        .getattr("ndim")
        .ok()
        .and_then(|n| n.extract::<usize>().ok())
    {
        Some(1) => g_any.call_method1("reshape", ((-1i64, 1i64),))?,
        _ => g_any,
    };
    let g = matrix(&matrix_f64(&g_shaped, &format!("{key}.g"))?);
    if u.rows != y.rows || u.rows != g.rows || u.rows == 0 {
        return Err(spec_error_at(
            format!(
                "{key}: u, y and g hold {}, {} and {} samples; one row each per sample, at \
                 least one",
                u.rows, y.rows, g.rows
            ),
            Some(key.into()),
        ));
    }
    for (name, m) in [("u", &u), ("y", &y), ("g", &g)] {
        if let Some(k) = m.data.iter().position(|v| !v.is_finite()) {
            return Err(spec_error_at(
                format!(
                    "{key}.{name} has a value that is not finite at row {}, column {}",
                    k / m.cols.max(1),
                    k % m.cols.max(1)
                ),
                Some(key.into()),
            ));
        }
    }
    Ok(DeepONetData::Unaligned(UnalignedData { u, y, g }))
}

fn data_from_arrays(value: &Bound<'_, PyAny>, key: &str) -> PyResult<DeepONetData> {
    if let Ok(d) = value.cast::<PyDict>() {
        return unaligned_from_dict(d, key);
    }
    let parts = value.cast::<PyTuple>().ok().filter(|t| t.len() == 3).ok_or_else(|| {
        spec_error_at(
            format!(
                "{key} must be a tuple (functions [F, sensors], points [P, dims], values [F, P] \
                 or [F, P, outputs]) for aligned data, or a dict {{\"u\": [S, sensors], \"y\": \
                 [S, dims], \"g\": [S] or [S, outputs]}} for unaligned samples"
            ),
            Some(key.into()),
        )
    })?;
    let u = matrix(&matrix_f64(&parts.get_item(0)?, &format!("{key}[0]"))?);
    let y = matrix(&matrix_f64(&parts.get_item(1)?, &format!("{key}[1]"))?);
    let py = value.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", "float64")?;
    let g = py
        .import("numpy")?
        .call_method("ascontiguousarray", (parts.get_item(2)?,), Some(&kwargs))
        .map_err(|e| spec_error_at(format!("{key}[2]: {e}"), Some(key.into())))?;
    let shape: Vec<usize> = g.getattr("shape")?.extract()?;
    let outputs = match shape[..] {
        [f, p] if f == u.rows && p == y.rows => 1,
        [f, p, k] if f == u.rows && p == y.rows => k,
        _ => {
            return Err(spec_error_at(
                format!(
                    "{key}[2] (values) has shape {shape:?}; with {} functions and {} points it \
                     must be [{}, {}] or [{}, {}, outputs]",
                    u.rows, y.rows, u.rows, y.rows, u.rows, y.rows
                ),
                Some(key.into()),
            ));
        }
    };
    let flat = g
        .call_method0("ravel")?
        .cast_into::<PyArray1<f64>>()?
        .readonly()
        .as_slice()?
        .to_vec();
    aligned(u, y, flat, outputs)
        .map(DeepONetData::Aligned)
        .map_err(|e| spec_error_at(format!("{key}: {e}"), Some(key.into())))
}
