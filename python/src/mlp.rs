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
use phaseflow::spec::fit::{ExprTarget, FitSettings, NetworkSpec};
use phaseflow::spec::fit_data::{FitData, Kind, from_expression, from_image, from_matrices};
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

/// What is fitted, as `phaseflow.fit` takes it: arrays, an expression or an image.
struct Target<'a, 'py> {
    x: Option<&'a Bound<'py, PyAny>>,
    y: Option<&'a Bound<'py, PyAny>>,
    test: Option<&'a Bound<'py, PyTuple>>,
    expr: Option<String>,
    inputs: Option<&'a Bound<'py, PyAny>>,
    domain: Option<(f64, f64)>,
    points: Option<&'a Bound<'py, PyAny>>,
    image: Option<PathBuf>,
    holdout: bool,
}

/// What diagnostics call the text of `expr` (`SystemError.file`).
const EXPR_NAME: &str = "<expr>";

/// The samples `target` stands for, as `fit --data`, `--expr` and `--image` make them;
/// refusals are named at `phaseflow.fit`'s keywords.
fn fit_data(py: Python<'_>, t: Target<'_, '_>) -> PyResult<FitData> {
    let arrays = t.x.is_some() || t.y.is_some();
    let given = [arrays, t.expr.is_some(), t.image.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(spec_error_at(
            "give what to fit: x and y (arrays), expr (an expression of x, y, z) or image \
             (a PNG's path), one of them"
                .into(),
            Some("x".into()),
        ));
    }
    let only = |key: &str, set: bool, for_what: &str| {
        if set {
            Err(spec_error_at(
                format!("{key} is for {for_what}"),
                Some(key.into()),
            ))
        } else {
            Ok(())
        }
    };
    if t.expr.is_none() {
        only("inputs", t.inputs.is_some(), "expr")?;
        only("domain", t.domain.is_some(), "expr")?;
        only("points", t.points.is_some(), "expr")?;
    }
    only("holdout", t.holdout && t.image.is_none(), "image")?;
    only(
        "test",
        t.test.is_some() && !arrays,
        "x and y (an expression or image makes its own)",
    )?;
    // Keys of the config's [target.expr] / [target.image] become the keywords.
    let keyword = |e: phaseflow::spec::SpecError| match e {
        phaseflow::spec::SpecError::Field(f) => {
            let key = f.field.rsplit('.').next().unwrap_or("expr").to_string();
            spec_error_at(f.to_string().replace(&f.field, &key), Some(key))
        }
        other => spec_error(other),
    };
    if let Some(text) = t.expr {
        let inputs = match t.inputs {
            Some(v) => whole(v, "inputs", 1..=3)? as usize,
            None => 1,
        };
        let points = t
            .points
            .map(|v| whole(v, "points", 2..=u32::MAX.into()).map(|p| p as usize))
            .transpose()?;
        let target = ExprTarget {
            text,
            inputs,
            domain: t.domain.unwrap_or((0.0, 1.0)),
            points,
        };
        return py
            .detach(|| {
                from_expression(
                    &target.text,
                    EXPR_NAME,
                    target.inputs,
                    target.domain,
                    target.points(),
                )
            })
            .map_err(keyword);
    }
    if let Some(path) = t.image {
        // Every refusal of the file (not a PNG, too large, missing) is about `image`.
        return py
            .detach(|| from_image(&path, t.holdout))
            .map_err(|e| match e {
                phaseflow::spec::SpecError::Input(m) => spec_error_at(m, Some("image".into())),
                other => keyword(other),
            });
    }
    let (x, y) = match (t.x, t.y) {
        (Some(x), Some(y)) => (
            matrix_of(&matrix_f64(x, "x")?),
            matrix_of(&matrix_f64(y, "y")?),
        ),
        (_, None) => return Err(spec_error_at("give y with x".into(), Some("y".into()))),
        (None, _) => return Err(spec_error_at("give x with y".into(), Some("x".into()))),
    };
    let test = match t.test {
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
    from_matrices(what, x, y, test).map_err(spec_error)
}

/// Fits an MLP to `y` [m, outputs] as a function of `x` [m, inputs], to an expression or
/// to an image; see `phaseflow.fit`. Returns a dict: `model` (an `MLP`), `steps` and
/// `loss` (the loss curve), `summary`, `interrupted`.
#[pyfunction]
#[pyo3(signature = (
    x = None, y = None, *, engine, test = None, network = None, train = None, seed = None,
    expr = None, inputs = None, domain = None, points = None, image = None, holdout = false
))]
#[allow(clippy::too_many_arguments)]
pub fn fit_mlp<'py>(
    py: Python<'py>,
    x: Option<&Bound<'py, PyAny>>,
    y: Option<&Bound<'py, PyAny>>,
    engine: &PyEngine,
    test: Option<&Bound<'py, PyTuple>>,
    network: Option<&Bound<'py, PyDict>>,
    train: Option<&Bound<'py, PyDict>>,
    seed: Option<&Bound<'py, PyAny>>,
    expr: Option<String>,
    inputs: Option<&Bound<'py, PyAny>>,
    domain: Option<(f64, f64)>,
    points: Option<&Bound<'py, PyAny>>,
    image: Option<PathBuf>,
    holdout: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let seed = match seed {
        Some(v) => whole(v, "seed", 0..=u64::MAX)?,
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
    let target = Target {
        x,
        y,
        test,
        expr,
        inputs,
        domain,
        points,
        image,
        holdout,
    };
    let data = fit_data(py, target)?;
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
            let mut score = serde_json::json!({"mse": mse, "relative_l2": (err / norm).sqrt()});
            // An image's held-out pixels are scored as `fit --image --holdout` scores them.
            if matches!(data.kind, Kind::Image(_)) {
                score["psnr_db"] = phaseflow::io::image::psnr(&p.data, &ty.data).into();
            }
            Some(score)
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
