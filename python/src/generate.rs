//! Operator-learning data from Python: a generation config (a dict with the TOML file's
//! keys, or its path) run as `phaseflow generate` runs it (input functions drive a system
//! with inputs, all integrated together on the device), handed back as NumPy arrays.

use crate::convert::to_json;
use crate::errors::{sim_error, spec_error, spec_error_at};
use crate::run::{PyEngine, json_to_py};
use crate::system::PySystem;
use numpy::{IntoPyArray, PyArray1, PyArrayMethods};
use phaseflow::model::System;
use phaseflow::nn::deeponet::generate::{GenerateError, generate};
use phaseflow::nn::deeponet::{AlignedData, UnalignedData};
use phaseflow::spec::generate::{GenerateSpec, TEST_SEED_OFFSET};
use phaseflow::spec::load_system;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use std::path::PathBuf;

/// Generates a training set (and a test set with `test_functions`); see
/// `phaseflow.generate_deeponet_data`. Returns `{"train": (functions, points, values) or
/// the unaligned (sample_functions, sample_points, sample_values), "test": ... or None,
/// "layout", "summary"}`.
#[pyfunction]
#[pyo3(signature = (config, *, engine))]
pub fn generate_deeponet_data<'py>(
    py: Python<'py>,
    config: &Bound<'py, PyAny>,
    engine: Bound<'py, PyEngine>,
) -> PyResult<Bound<'py, PyDict>> {
    let (spec, system) = read_spec(config)?;
    spec.check_sampling().map_err(|f| spec_error(f.into()))?;
    let train_spec = spec
        .operator_data(&system, spec.functions, spec.seed, false)
        .map_err(spec_error)?;
    let test_spec = (spec.test_functions > 0)
        .then(|| {
            spec.operator_data(
                &system,
                spec.test_functions,
                spec.seed.wrapping_add(TEST_SEED_OFFSET),
                true,
            )
        })
        .transpose()
        .map_err(spec_error)?;
    // Sizes before any allocation.
    for s in std::iter::once(&train_spec).chain(&test_spec) {
        s.check().map_err(generate_error)?;
    }
    let ctx = engine.get().engine().context();
    let (train, test) = py
        .detach(|| -> Result<_, GenerateError> {
            let train = generate(ctx, &train_spec)?;
            let test = test_spec.as_ref().map(|t| generate(ctx, t)).transpose()?;
            Ok((train, test))
        })
        .map_err(generate_error)?;
    let out = PyDict::new(py);
    let unaligned = spec
        .points_per_function
        .map(|k| train.data.to_unaligned(k, spec.seed));
    let summary = serde_json::json!({
        "system": system.name(),
        "outputs": train_spec.outputs.iter().map(|&o| &system.states[o].name).collect::<Vec<_>>(),
        "functions": spec.functions,
        "test_functions": spec.test_functions,
        "points": train_spec.points,
        "seed": spec.seed,
        "sample_seconds": train.sample_seconds + test.as_ref().map_or(0.0, |t| t.sample_seconds),
        "simulate_seconds": train.simulate_seconds + test.as_ref().map_or(0.0, |t| t.simulate_seconds),
    });
    match unaligned {
        Some(samples) => {
            out.set_item("layout", "unaligned")?;
            out.set_item("train", unaligned_tuple(py, samples)?)?;
        }
        None => {
            out.set_item("layout", "aligned")?;
            out.set_item("train", aligned_tuple(py, train.data)?)?;
        }
    }
    match test {
        Some(t) => out.set_item("test", aligned_tuple(py, t.data)?)?,
        None => out.set_item("test", py.None())?,
    }
    out.set_item("summary", json_to_py(py, &summary)?)?;
    Ok(out)
}

/// The config and its system: a dict (whose `system` may be a `phaseflow.System`) or a
/// config file's path.
fn read_spec(config: &Bound<'_, PyAny>) -> PyResult<(GenerateSpec, System)> {
    let spec = if config.is_instance_of::<PyString>() || config.hasattr("__fspath__")? {
        let path: PathBuf = config.extract()?;
        GenerateSpec::from_file(&path).map_err(spec_error)?
    } else if let Ok(dict) = config.cast::<PyDict>() {
        let dict = dict.copy()?;
        let mut given: Option<System> = None;
        if let Some(s) = dict.get_item("system")?
            && let Ok(s) = s.cast::<PySystem>()
        {
            given = Some(s.get().inner.clone());
            dict.set_item("system", s.get().inner.name())?;
        }
        let spec = GenerateSpec::from_json(to_json(dict.as_any(), "")?)
            .map_err(|f| spec_error(f.into()))?;
        if let Some(system) = given {
            return Ok((spec, system));
        }
        spec
    } else {
        return Err(spec_error_at(
            "config must be a dict (the generation config's keys) or a config file's path".into(),
            Some("config".into()),
        ));
    };
    let system = load_system(&spec.system).map_err(spec_error)?;
    Ok((spec, system))
}

fn generate_error(e: GenerateError) -> PyErr {
    match e {
        GenerateError::Sim(s) => sim_error(s),
        other => spec_error_at(other.to_string(), None),
    }
}

/// (functions [F, sensors], points [P, 1], values [F, P, outputs]), moved into NumPy.
fn aligned_tuple<'py>(py: Python<'py>, d: AlignedData) -> PyResult<Bound<'py, PyTuple>> {
    let (f, p, k) = (d.functions(), d.points(), d.outputs);
    let matrix = |m: phaseflow::nn::Matrix| -> PyResult<Bound<'py, PyAny>> {
        let a: Bound<'py, PyArray1<f64>> = m.data.into_pyarray(py);
        Ok(a.reshape([m.rows, m.cols])?.into_any())
    };
    let values: Bound<'py, PyArray1<f64>> = d.g.into_pyarray(py);
    PyTuple::new(
        py,
        [
            matrix(d.u)?,
            matrix(d.y)?,
            values.reshape([f, p, k])?.into_any(),
        ],
    )
}

/// (sample_functions [S, sensors], sample_points [S, 1], sample_values [S, outputs]).
fn unaligned_tuple<'py>(py: Python<'py>, d: UnalignedData) -> PyResult<Bound<'py, PyTuple>> {
    let matrix = |m: phaseflow::nn::Matrix| -> PyResult<Bound<'py, PyAny>> {
        let a: Bound<'py, PyArray1<f64>> = m.data.into_pyarray(py);
        Ok(a.reshape([m.rows, m.cols])?.into_any())
    };
    PyTuple::new(py, [matrix(d.u)?, matrix(d.y)?, matrix(d.g)?])
}
