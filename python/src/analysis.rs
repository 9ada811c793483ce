//! Lyapunov spectra, orbit diagrams and basins of attraction from Python: keywords read as
//! the command's config file (its own table as `lyapunov=`, `orbit=` or `basins=`), built
//! by the library's spec functions (the CLI's checks and messages), run as engine jobs
//! (progress, cancel, Ctrl-C as for simulations); results are the arrays the CLI writes,
//! under the same names, and its `--json` summary.

use crate::convert::matrix_f64;
use crate::errors::{engine_error, spec_error, spec_error_at};
use crate::run::{Done, PyJob, json_to_py, rows, spec_of, with_arrays};
use numpy::{IntoPyArray, PyArrayMethods};
use phaseflow::engine::{Engine, JobOptions};
use phaseflow::ode::Status;
use phaseflow::ode::basins::{BasinsProblem, BasinsResult, Method};
use phaseflow::ode::lyapunov::{LyapunovProblem, LyapunovResult};
use phaseflow::ode::orbit::{OrbitProblem, OrbitResult};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// One of the arrays of a finished analysis, in the type the CLI writes it.
pub enum Values {
    F64(Vec<f64>),
    U32(Vec<u32>),
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

/// A finished analysis: its arrays (name, shape, values) and summary.
pub struct Finished {
    kind: &'static str,
    arrays: Vec<(&'static str, Vec<usize>, Values)>,
    summary: serde_json::Value,
}

impl Finished {
    pub fn new(
        kind: &'static str,
        arrays: Vec<(&'static str, Vec<usize>, Values)>,
        summary: serde_json::Value,
    ) -> Finished {
        Finished {
            kind,
            arrays,
            summary,
        }
    }

    /// A dict of arrays moved into NumPy, with `kind` and `summary`.
    pub fn into_dict(self, py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
        let out = PyDict::new(py);
        out.set_item("kind", self.kind)?;
        for (name, shape, values) in self.arrays {
            match values {
                Values::F64(v) => out.set_item(name, v.into_pyarray(py).reshape(shape)?)?,
                Values::U32(v) => out.set_item(name, v.into_pyarray(py).reshape(shape)?)?,
                Values::U8(v) => out.set_item(name, v.into_pyarray(py).reshape(shape)?)?,
                Values::I32(v) => out.set_item(name, v.into_pyarray(py).reshape(shape)?)?,
                Values::I64(v) => out.set_item(name, v.into_pyarray(py).reshape(shape)?)?,
            }
        }
        out.set_item("summary", json_to_py(py, &self.summary)?)?;
        Ok(out)
    }
}

fn status(s: &[Status]) -> Values {
    Values::U8(s.iter().map(|&x| x as u8).collect())
}

/// Which analysis, by the key of its table.
#[derive(Clone, Copy)]
pub enum Kind {
    Lyapunov,
    Orbit,
    Basins,
}

impl Kind {
    fn table(self) -> &'static str {
        match self {
            Kind::Lyapunov => "lyapunov",
            Kind::Orbit => "orbit",
            Kind::Basins => "basins",
        }
    }
}

/// Submits an analysis to `engine`; returns its job at once.
pub fn submit(
    py: Python<'_>,
    engine: &Engine,
    kind: Kind,
    system: &Bound<'_, PyAny>,
    u0: Option<&Bound<'_, PyAny>>,
    params: Option<&Bound<'_, PyAny>>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<PyJob> {
    // Arrays of initial states or parameters, as arguments or keywords (a basins run's
    // keywords all go to `options`; a `u0` table is the spec's and is refused by it).
    let array_in_options = |key: &str| -> bool {
        options
            .and_then(|o| o.get_item(key).ok().flatten())
            .is_some_and(|v| !v.is_instance_of::<PyDict>())
    };
    if matches!(kind, Kind::Basins)
        && let Some(key) = [
            ("u0", u0.is_some() || array_in_options("u0")),
            ("params", params.is_some() || array_in_options("params")),
        ]
        .into_iter()
        .find_map(|(k, given)| given.then_some(k))
    {
        return Err(spec_error_at(
            format!(
                "{key}: a basins run takes its initial states from basins.grid and one \
                 parameter set (param = {{...}}), not arrays"
            ),
            Some(key.into()),
        ));
    }
    let u0 = u0.map(|a| matrix_f64(a, "u0")).transpose()?;
    let params = params.map(|a| matrix_f64(a, "params")).transpose()?;
    let (system, spec) = spec_of(
        system,
        u0.is_some(),
        params.is_some(),
        rows(&u0, &params)?,
        options,
        Some(kind.table()),
    )?;
    let submitted = engine.clone();
    let options = JobOptions::default;
    match kind {
        Kind::Lyapunov => {
            let mut p =
                phaseflow::spec::lyapunov::lyapunov_problem(system, &spec).map_err(spec_error)?;
            with_arrays(&mut p.ensemble, u0, params)?;
            let dims = (p.system.dim(), p.system.n_params());
            let ensemble = p.ensemble.clone();
            let job = py
                .detach(|| submitted.submit_lyapunov(p.clone(), options()))
                .map_err(engine_error)?;
            Ok(PyJob::analysis(
                job,
                engine.clone(),
                ensemble,
                dims,
                move |r| lyapunov(&p, r),
            ))
        }
        Kind::Orbit => {
            let mut p = phaseflow::spec::orbit::orbit_problem(system, &spec).map_err(spec_error)?;
            with_arrays(p.problem.ensemble_mut(), u0, params)?;
            let s = p.problem.system();
            let dims = (s.dim(), s.n_params());
            let ensemble = p.problem.ensemble().clone();
            let job = py
                .detach(|| submitted.submit_orbit_diagram(p.clone(), options()))
                .map_err(engine_error)?;
            Ok(PyJob::analysis(
                job,
                engine.clone(),
                ensemble,
                dims,
                move |r| orbit(&p, r),
            ))
        }
        Kind::Basins => {
            let entropy_box = phaseflow::spec::basins::entropy_box(&spec).map_err(spec_error)?;
            let p = phaseflow::spec::basins::basins_problem(system, &spec).map_err(spec_error)?;
            let s = p.run.system();
            let dims = (s.dim(), s.n_params());
            let ensemble = p.run.ensemble().clone();
            let job = py
                .detach(|| submitted.submit_basins(p.clone(), options()))
                .map_err(engine_error)?;
            let adapter = engine.context().summary.name.clone();
            Ok(PyJob::analysis(
                job,
                engine.clone(),
                ensemble,
                dims,
                move |r| basins(&p, entropy_box, &adapter, r),
            ))
        }
    }
}

/// The CLI's lyapunov.npy, lyapunov_error.npy, status.npy, params.npy and final.npy.
fn lyapunov(p: &LyapunovProblem, r: LyapunovResult) -> Done {
    let (n, k, dim) = (r.n, r.k, p.system.dim());
    let summary = r.summary_json(p);
    let params = p.ensemble.params(0..n);
    let n_params = params.len().checked_div(n).unwrap_or(0);
    Done::Analysis(Finished {
        kind: "lyapunov",
        arrays: vec![
            ("lyapunov", vec![n, k], Values::F64(r.exponents)),
            ("lyapunov_error", vec![n, k], Values::F64(r.errors)),
            ("status", vec![n], status(&r.status)),
            ("params", vec![n, n_params], Values::F64(params)),
            ("final", vec![n, dim], Values::F64(r.final_states)),
        ],
        summary,
    })
}

/// The CLI's orbit.npy [N, K] (NaN past each count), counts.npy, distinct.npy, params.npy
/// and status.npy.
fn orbit(p: &OrbitProblem, r: OrbitResult) -> Done {
    let (n, k) = (p.n(), p.k);
    let summary = r.summary_json(p);
    let mut points = vec![f64::NAN; n * k];
    for (row, got) in points.chunks_mut(k.max(1)).zip(&r.diagram.points) {
        row[..got.len()].copy_from_slice(got);
    }
    let n_params = r.params.len().checked_div(n).unwrap_or(0);
    Done::Analysis(Finished {
        kind: "orbit",
        arrays: vec![
            ("orbit", vec![n, k], Values::F64(points)),
            ("counts", vec![n], Values::U32(r.counts)),
            ("distinct", vec![n], Values::U32(r.distinct)),
            ("params", vec![n, n_params], Values::F64(r.params)),
            ("status", vec![n], status(&r.status)),
        ],
        summary,
    })
}

/// The CLI's basins.npy [NY, NX] int32, attractors.npy [K, dim] and features.npy
/// ([K, 2·dim], or [K] for a classifying expression).
fn basins(p: &BasinsProblem, entropy_box: usize, adapter: &str, r: BasinsResult) -> Done {
    let mut summary = r.summary_json(p, entropy_box);
    summary["run"]["adapter"] = serde_json::json!(adapter);
    let (k, d) = (r.attractors.len(), p.run.system().dim());
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
    let feature_shape = match &p.method {
        Method::Features { .. } => vec![k, 2 * d],
        Method::Expression(_) => vec![k],
    };
    let (ny, nx) = (r.grid.ny(), r.grid.nx());
    Done::Analysis(Finished {
        kind: "basins",
        arrays: vec![
            ("basins", vec![ny, nx], Values::I32(r.labels)),
            ("attractors", vec![k, d], Values::F64(finals)),
            ("features", feature_shape, Values::F64(features)),
        ],
        summary,
    })
}
