//! Trained DeepONets from Python: a checkpoint (model.safetensors, as `phaseflow train
//! deeponet` writes it) placed on an engine's device, answering predictions for NumPy
//! arrays. Requests from several Python threads share device passes (the engine batches).

use crate::convert::{as_rows, matrix_f64, matrix_of as matrix};
use crate::errors::{engine_error, spec_error_at};
use crate::run::{PyEngine, engine_or_default, json_to_py};
use numpy::{IntoPyArray, PyArray1, PyArrayMethods};
use phaseflow::engine::{Model, check_prediction_values};
use phaseflow::nn::{DeepONetArch, DeepONetParams, load_deeponet, save_deeponet_bytes};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

/// A trained DeepONet on a device: G(u)(y) for input functions u (sensor values) at
/// locations y.
#[pyclass(name = "DeepONet", module = "phaseflow", frozen)]
pub struct PyDeepONet {
    model: Model,
    arch: DeepONetArch,
    /// Kept for `save` and `weights`: the device copy is f32 and not read back.
    params: DeepONetParams,
}

impl PyDeepONet {
    /// A network in hand (a training run's best) placed on `engine`'s device.
    pub fn from_parts(
        py: Python<'_>,
        engine: &PyEngine,
        arch: DeepONetArch,
        params: DeepONetParams,
    ) -> PyResult<PyDeepONet> {
        let model = py
            .detach(|| engine.engine().load_model(&arch, &params))
            .map_err(engine_error)?;
        Ok(PyDeepONet {
            model,
            arch,
            params,
        })
    }
}

#[pymethods]
impl PyDeepONet {
    /// A checkpoint written by `phaseflow train deeponet` (model.safetensors), placed on
    /// `engine`'s device (None: `phaseflow.default_engine()`).
    #[staticmethod]
    #[pyo3(signature = (path, engine = None))]
    fn load(
        py: Python<'_>,
        path: PathBuf,
        engine: Option<Bound<'_, PyEngine>>,
    ) -> PyResult<PyDeepONet> {
        let engine = engine_or_default(py, engine)?;
        let (arch, params) = py
            .detach(|| load_deeponet(&path))
            .map_err(|e| spec_error_at(e.to_string(), None))?;
        PyDeepONet::from_parts(py, engine.get(), arch, params)
    }

    /// G for every function (rows of `functions`, [F, sensors]) at every point (rows of
    /// `points`, [P, dims]): an array [F, P, outputs] (f64 in the data's units; the device
    /// computes in f32).
    fn predict<'py>(
        &self,
        py: Python<'py>,
        functions: &Bound<'py, PyAny>,
        points: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // A 1-D array is one function, and points of a one-dimensional domain (or one
        // point of a wider one).
        let functions = as_rows(functions, "functions", true)?;
        let points = as_rows(points, "points", self.arch.dims() != 1)?;
        let u = matrix(&matrix_f64(&functions, "functions")?);
        let y = matrix(&matrix_f64(&points, "points")?);
        // Widths first, each named by its argument: the sensors are the functions' columns,
        // the coordinates the points'.
        for (key, given, want) in [
            ("functions", u.cols, self.arch.sensors()),
            ("points", y.cols, self.arch.dims()),
        ] {
            if given != want {
                let what = if key == "functions" {
                    "sensor values"
                } else {
                    "coordinates"
                };
                return Err(spec_error_at(
                    format!("{key} has {given} columns; this network takes {want} {what}"),
                    Some(key.into()),
                ));
            }
        }
        check_prediction_values(&u, &y).map_err(|e| {
            let key = if e.starts_with('u') {
                "functions"
            } else {
                "points"
            };
            spec_error_at(format!("{key}: {e}"), Some(key.into()))
        })?;
        let (f, p, k) = (u.rows, y.rows, self.arch.outputs);
        let g = py
            .detach(|| self.model.predict_blocking(u, y))
            .map_err(engine_error)?;
        let array: Bound<'py, PyArray1<f64>> = g.into_pyarray(py);
        Ok(array.reshape([f, p, k])?.into_any())
    }

    /// Sensor values each input function has (the branch net's inputs).
    #[getter]
    fn sensors(&self) -> usize {
        self.arch.sensors()
    }

    /// Coordinates of a location (the trunk net's inputs).
    #[getter]
    fn dims(&self) -> usize {
        self.arch.dims()
    }

    /// Outputs per location.
    #[getter]
    fn outputs(&self) -> usize {
        self.arch.outputs
    }

    /// Trainable parameters.
    #[getter]
    fn parameters(&self) -> usize {
        self.model.parameters()
    }

    /// The architecture as the checkpoint's metadata holds it (branch, trunk, latent,
    /// outputs, strategy, scaling).
    #[getter]
    fn architecture<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &serde_json::to_value(&self.arch).unwrap_or_default())
    }

    /// The weights by their PyTorch state_dict names ("branch.layers.0.weight", ..., "b"),
    /// as f64 arrays of their PyTorch shapes.
    fn weights<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (name, shape, values) in self.params.named() {
            let array: Bound<'py, PyArray1<f64>> = values.to_vec().into_pyarray(py);
            out.set_item(name, array.reshape(shape)?)?;
        }
        Ok(out)
    }

    /// Writes the network as a checkpoint (safetensors, f32 weights under PyTorch's names,
    /// the architecture in the metadata): `DeepONet.load` and `phaseflow predict` read it,
    /// and so do `safetensors.torch.load_file` and `safetensors.numpy.load_file`.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| {
            let bytes =
                save_deeponet_bytes(&self.arch, &self.params, &[]).map_err(|e| e.to_string())?;
            // Written beside the target and renamed: a failed write leaves no half a file.
            let partial = path.with_extension("safetensors.partial");
            std::fs::write(&partial, bytes)
                .and_then(|()| std::fs::rename(&partial, &path))
                .map_err(|e| {
                    let _ = std::fs::remove_file(&partial);
                    format!("{}: {e}", path.display())
                })
        })
        .map_err(pyo3::exceptions::PyOSError::new_err)
    }

    fn __repr__(&self) -> String {
        format!(
            "DeepONet(sensors={}, dims={}, outputs={}, parameters={})",
            self.arch.sensors(),
            self.arch.dims(),
            self.arch.outputs,
            self.model.parameters()
        )
    }
}
