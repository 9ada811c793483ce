//! Fitting an MLP (behind Fourier features) to NumPy arrays: `phaseflow fit`'s `[network]`
//! and `[train]` keys as dicts, its set-up (`spec::fit`), data checks
//! (`spec::fit_data::from_matrices`) and training loop (`nn::fit`) on an engine's device,
//! without the GIL; Ctrl-C stops at the next loss read-back and keeps the network so far.
//! The network is a `phaseflow.MLP`: predict, save as the CLI's checkpoint, load.

use crate::convert::{as_rows, matrix_f64, matrix_of, to_json, whole};
use crate::errors::{gpu_error, spec_error, spec_error_at};
use crate::run::{PyEngine, engine_or_default, json_to_py};
use numpy::{IntoPyArray, PyArrayMethods};
use phaseflow::engine::Engine;
use phaseflow::nn::{AnyTrainer, Architecture, Params, fit, load, predict, save_bytes};
use phaseflow::spec::fit::{FitSettings, NetworkSpec};
use phaseflow::spec::fit_data::from_matrices;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// A trained (or loaded) MLP on an engine's device.
#[pyclass(name = "MLP", module = "phaseflow", frozen)]
pub struct PyMLP {
    engine: Engine,
    arch: Architecture,
    params: Params,
}

#[pymethods]
impl PyMLP {
    /// Loads a checkpoint `phaseflow fit -o` (or `MLP.save`) wrote, on `engine`'s device
    /// (None: `phaseflow.default_engine()`).
    #[staticmethod]
    #[pyo3(signature = (path, engine = None))]
    fn load(py: Python<'_>, path: PathBuf, engine: Option<Bound<'_, PyEngine>>) -> PyResult<PyMLP> {
        let engine = engine_or_default(py, engine)?;
        let engine = engine.get();
        let (arch, params) = py
            .detach(|| load(&path))
            .map_err(|e| spec_error_at(e.to_string(), None))?;
        Ok(PyMLP {
            engine: engine.engine().clone(),
            arch,
            params,
        })
    }

    /// The network's outputs [rows, outputs] for inputs `x` [rows, inputs], on the device.
    fn predict<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        // A 1-D array: one input per row for a one-input network, else one row.
        let x = as_rows(x, "x", self.arch.inputs() != 1)?;
        let x = matrix_of(&matrix_f64(&x, "x")?);
        if x.cols != self.arch.inputs() {
            return Err(spec_error_at(
                format!(
                    "x has {} columns; the network takes {} inputs",
                    x.cols,
                    self.arch.inputs()
                ),
                Some("x".into()),
            ));
        }
        if let Some(k) = x.data.iter().position(|v| !v.is_finite()) {
            return Err(spec_error_at(
                format!(
                    "x has a value that is not finite at row {}, column {}",
                    k / x.cols,
                    k % x.cols
                ),
                Some("x".into()),
            ));
        }
        let ctx = self.engine.context();
        let y = py
            .detach(|| predict(ctx, &self.arch, &self.params, &x))
            .map_err(gpu_error)?;
        Ok(y.data
            .into_pyarray(py)
            .reshape([y.rows, y.cols])?
            .into_any())
    }

    /// Writes the checkpoint (safetensors under PyTorch's names, the architecture in the
    /// metadata), as `phaseflow fit -o` writes model.safetensors.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let bytes = save_bytes(&self.arch, &self.params, &[])
            .map_err(|e| crate::errors::run_error(e.to_string()))?;
        py.detach(|| std::fs::write(&path, bytes)).map_err(|e| {
            crate::errors::run_error(format!("cannot write '{}': {e}", path.display()))
        })
    }

    /// The architecture as a dict (inputs, encoding, layers, activation, ...).
    #[getter]
    fn architecture<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &serde_json::to_value(&self.arch).unwrap_or_default())
    }

    /// Trainable and fixed parameters in all.
    #[getter]
    fn parameters(&self) -> usize {
        self.params.flat().len()
    }

    fn __repr__(&self) -> String {
        format!(
            "MLP(inputs={}, layers={:?}, parameters={})",
            self.arch.inputs(),
            &self.arch.layers[1..],
            self.params.flat().len()
        )
    }
}

/// A dict argument as JSON (the TOML table `key`'s keys), or `None`.
fn table(value: Option<&Bound<'_, PyDict>>, key: &str) -> PyResult<Option<serde_json::Value>> {
    value.map(|d| to_json(d.as_any(), key)).transpose()
}

/// `key`'s mistake (an unknown key, a wrong type) as a `SpecError` naming it.
fn table_error(key: &str) -> impl Fn(serde_json::Error) -> PyErr + '_ {
    move |e| spec_error_at(format!("{key}: {e}"), Some(key.into()))
}

/// Fits an MLP to `y` [m, outputs] as a function of `x` [m, inputs]; see `phaseflow.fit`.
/// Returns a dict: `model` (an `MLP`), `steps` and `loss` (the loss curve), `summary`,
/// `interrupted`.
#[pyfunction]
#[pyo3(signature = (x, y, *, engine, test = None, network = None, train = None, seed = None))]
#[allow(clippy::too_many_arguments)]
pub fn fit_mlp<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    engine: &PyEngine,
    test: Option<&Bound<'py, PyTuple>>,
    network: Option<&Bound<'py, PyDict>>,
    train: Option<&Bound<'py, PyDict>>,
    seed: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let seed = match seed {
        Some(v) => whole(v, "seed", u64::MAX)?,
        None => 1,
    };
    let network: NetworkSpec = match table(network, "network")? {
        Some(v) => serde_json::from_value(v).map_err(table_error("network"))?,
        None => NetworkSpec::default(),
    };
    let settings: FitSettings = match table(train, "train")? {
        Some(v) => serde_json::from_value(v).map_err(table_error("train"))?,
        None => FitSettings::default(),
    };
    network.check().map_err(|e| spec_error(e.into()))?;
    settings.check().map_err(|e| spec_error(e.into()))?;
    let (x, y) = (
        matrix_of(&matrix_f64(x, "x")?),
        matrix_of(&matrix_f64(y, "y")?),
    );
    let test = match test {
        None => None,
        Some(t) if t.len() == 2 => Some((
            matrix_of(&matrix_f64(&t.get_item(0)?, "test")?),
            matrix_of(&matrix_f64(&t.get_item(1)?, "test")?),
        )),
        Some(_) => {
            return Err(spec_error_at(
                "test must be a pair (x_test, y_test)".into(),
                Some("test".into()),
            ));
        }
    };
    let what = format!(
        "{} samples ({} inputs → {} outputs)",
        x.rows, x.cols, y.cols
    );
    let data = from_matrices(what, x, y, test).map_err(spec_error)?;
    let arch = network
        .architecture(&data)
        .map_err(|e| spec_error(e.into()))?;
    let m = data.train_x.rows;
    let config = settings
        .train_config(m, seed)
        .map_err(|e| spec_error(e.into()))?;
    let start = network
        .initial_params(&arch, &data.widths, seed)
        .map_err(spec_error)?;
    let (steps, log_every) = (settings.steps, settings.log_every());
    let per_step = config.batch.unwrap_or(m);
    let engine = engine.engine().clone();
    let ctx = engine.context();
    let stop = AtomicBool::new(false);
    let report = py
        .detach(|| {
            let mut trainer =
                AnyTrainer::new(ctx, &arch, &start, &data.train_x, &data.train_y, config)?;
            fit(ctx, &mut trainer, steps, log_every, |_, _| {
                // Ctrl-C is seen at each loss read-back, with the GIL taken briefly.
                let interrupted = Python::attach(|py| py.check_signals().is_err());
                if interrupted {
                    stop.store(true, Ordering::Relaxed);
                }
                !interrupted
            })
        })
        .map_err(gpu_error)?;
    let diverged = report.curve.last().is_some_and(|c| !c.1.is_finite())
        || report.params.flat().iter().any(|v| !v.is_finite());
    if diverged {
        return Err(crate::errors::run_error(format!(
            "training diverged: the loss or the weights are not finite after {} steps; try a \
             smaller train['lr'] (it was {:e})",
            report.steps, settings.lr
        )));
    }
    let test_score = match &data.test {
        Some((tx, ty)) => {
            let p = py
                .detach(|| predict(ctx, &arch, &report.params, tx))
                .map_err(gpu_error)?;
            let (mut err, mut norm) = (0.0, 0.0);
            for (a, b) in p.data.iter().zip(&ty.data) {
                err += (a - b) * (a - b);
                norm += b * b;
            }
            let mse = err / ty.data.len().max(1) as f64;
            Some(serde_json::json!({"mse": mse, "relative_l2": (err / norm).sqrt()}))
        }
        None => None,
    };
    let summary = serde_json::json!({
        "what": data.what,
        "architecture": arch,
        "kernels": report.kernels,
        "steps": report.steps,
        "steps_asked": steps,
        "batch": per_step,
        "seconds": report.seconds,
        "samples_per_s": report.steps as f64 * per_step as f64 / report.seconds,
        "final_loss": report.curve.last().map_or(f64::NAN, |c| c.1),
        "test": test_score,
        "seed": seed,
    });
    let out = PyDict::new(py);
    let (curve_steps, curve_loss): (Vec<u32>, Vec<f64>) = report.curve.iter().copied().unzip();
    out.set_item("steps", curve_steps.into_pyarray(py))?;
    out.set_item("loss", curve_loss.into_pyarray(py))?;
    out.set_item("summary", json_to_py(py, &summary)?)?;
    out.set_item("interrupted", stop.load(Ordering::Relaxed))?;
    out.set_item(
        "model",
        PyMLP {
            engine,
            arch,
            params: report.params,
        },
    )?;
    Ok(out)
}
