//! Zarr stores from Python: `simulate(..., out="run.zarr", shard=...)` runs a shard (or the
//! whole run) into a store as `phaseflow simulate -o run.zarr --shard I/M` does (the
//! library's `ode::store`), and `phaseflow.dask` creates a store and hands its shards to
//! Dask workers. `store_status` and `finalize_store` are `phaseflow store status|finalize`.

use crate::errors::spec_error_at;
use crate::run::{PyEngine, json_to_py};
use crate::rundir::{dir_error, in_background, out_spec};
use phaseflow::ode::run_dir::{interruptible_chunk_of, prepare_run};
use phaseflow::ode::store::{
    Layout, Shard, StoreOptions, StoreStatus, create_store as create, finalize, parse_compression,
    run_store,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The store options from the keywords: `shard` ("I/M", "auto/M" or (I, M)), `zarr_chunk`
/// and `compression` (as the CLI's flags).
fn store_options(
    shard: Option<&Bound<'_, PyAny>>,
    zarr_chunk: Option<usize>,
    compression: Option<&str>,
    overwrite: bool,
) -> PyResult<StoreOptions> {
    let at = |key: &str, m: String| spec_error_at(format!("{key}: {m}"), Some(key.into()));
    let shard = match shard {
        None => Shard::WHOLE,
        Some(s) => match s.extract::<(usize, usize)>() {
            Ok((i, m)) => Shard::parse(&format!("{i}/{m}")).map_err(|e| at("shard", e))?,
            Err(_) => {
                let text: String = s
                    .extract()
                    .map_err(|_| at("shard", "give \"I/M\", \"auto/M\" or (I, M)".into()))?;
                Shard::parse(&text).map_err(|e| at("shard", e))?
            }
        },
    };
    if zarr_chunk == Some(0) {
        return Err(at(
            "zarr_chunk",
            "give at least 1 trajectory per chunk".into(),
        ));
    }
    let zstd = match compression {
        None => Some(3),
        Some(c) => parse_compression(c).map_err(|e| at("compression", e))?,
    };
    Ok(StoreOptions {
        shard,
        chunk_trajectories: zarr_chunk,
        zstd,
        overwrite,
    })
}

/// Runs a shard (the whole run without `shard`) into the store `options["out"]`; returns a
/// dict: `path`, `summary` (the shard's), `shard` (its progress), `complete` (the shard),
/// `already_complete`, `finalized` (the root's record when this call finalized the store).
#[pyfunction]
#[pyo3(signature = (system, *, engine, shard = None, zarr_chunk = None, compression = None, overwrite = false, **options))]
#[allow(clippy::too_many_arguments)]
pub fn simulate_to_store<'py>(
    py: Python<'py>,
    system: &Bound<'py, PyAny>,
    engine: &PyEngine,
    shard: Option<&Bound<'py, PyAny>>,
    zarr_chunk: Option<usize>,
    compression: Option<&str>,
    overwrite: bool,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let store = store_options(shard, zarr_chunk, compression, overwrite)?;
    let spec = out_spec(system, options)?;
    let out = spec.out.clone().expect("the caller gives out");
    let prepared = py
        .detach(|| prepare_run(spec, None, false))
        .map_err(dir_error)?;
    let max_chunk = interruptible_chunk_of(prepared.run_problem());
    let path = out.clone();
    let (outcome, interrupt) = in_background(py, engine, max_chunk, move |ctx, options| {
        let mut nothing = phaseflow::ode::Tally::default();
        run_store(
            &prepared,
            &path,
            &store,
            std::slice::from_ref(ctx),
            options,
            &mut nothing,
        )
    })?;
    let run = outcome.map_err(dir_error)?;
    if let Some(e) = interrupt {
        return Err(e);
    }
    let result = PyDict::new(py);
    result.set_item("path", out)?;
    result.set_item("summary", json_to_py(py, &run.summary)?)?;
    result.set_item("shard", json_to_py(py, &run.shard.json())?)?;
    result.set_item("complete", run.shard.is_complete())?;
    result.set_item("already_complete", run.already_complete)?;
    let finalized = match &run.finalized {
        Some(f) => Some(json_to_py(py, f)?),
        None => None,
    };
    result.set_item("finalized", finalized)?;
    Ok(result)
}

/// Creates the store `options["out"]` for the run cut into `shards` shards (default
/// `max_shards`; never more than the store has chunks along trajectories) (its root, array
/// metadata and coordinates; nothing computed, no device needed), or finds it so.
/// Returns a dict: `path`, `n`, `n_save`, `dim`, `n_params`, `precision`,
/// `chunk_trajectories`, `adaptive`, `ranges` (each shard's [start, end)).
#[pyfunction]
#[pyo3(signature = (system, *, shards = None, max_shards = 64, zarr_chunk = None, compression = None, **options))]
pub fn create_store<'py>(
    py: Python<'py>,
    system: &Bound<'py, PyAny>,
    shards: Option<usize>,
    max_shards: usize,
    zarr_chunk: Option<usize>,
    compression: Option<&str>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut store = store_options(None, zarr_chunk, compression, false)?;
    let spec = out_spec(system, options)?;
    let out = spec.out.clone().expect("the caller gives out");
    let prepared = py
        .detach(|| prepare_run(spec, None, false))
        .map_err(dir_error)?;
    let blocks = Layout::new(
        &prepared.problem,
        prepared.times.len(),
        store.chunk_trajectories,
        store.zstd,
    )
    .blocks();
    // No shard without trajectories: each is one task that must run for the store to be
    // complete.
    let shards = shards.unwrap_or(max_shards).clamp(1, blocks.max(1));
    let count = Shard::parse(&format!("0/{shards}"))
        .map_err(|e| spec_error_at(format!("shards: {e}"), Some("shards".into())))?
        .count;
    store.shard = Shard { index: 0, count };
    let layout = py
        .detach(|| create(&prepared, &out, &store))
        .map_err(dir_error)?;
    let ranges: Vec<(usize, usize)> = (0..count)
        .map(|index| {
            let r = Shard { index, count }.trajectories(layout.n, layout.traj_chunk);
            (r.start, r.end)
        })
        .collect();
    let result = PyDict::new(py);
    result.set_item("path", out)?;
    result.set_item("n", layout.n)?;
    result.set_item("n_save", layout.n_save)?;
    result.set_item("dim", layout.dim)?;
    result.set_item("n_params", layout.n_params)?;
    result.set_item(
        "precision",
        match layout.precision {
            phaseflow::precision::Precision::F32 => "f32",
            phaseflow::precision::Precision::F64 => "f64",
        },
    )?;
    result.set_item("chunk_trajectories", layout.traj_chunk)?;
    result.set_item("adaptive", layout.stats_columns.is_some())?;
    result.set_item("shards", count)?;
    result.set_item("ranges", ranges)?;
    result.set_item("event_records", layout.event_records)?;
    let outputs: Vec<String> = prepared
        .outputs
        .iter()
        .filter_map(|o| serde_json::to_value(o).ok()?.as_str().map(str::to_string))
        .collect();
    let montecarlo = outputs.iter().any(|o| o == "montecarlo");
    result.set_item("outputs", outputs)?;
    result.set_item(
        "quantiles",
        montecarlo.then(|| prepared.quantile_levels().to_vec()),
    )?;
    Ok(result)
}

/// Where a store stands (`phaseflow store status --json`).
#[pyfunction]
pub fn store_status(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Bound<'_, PyAny>> {
    let status = StoreStatus::read(&path).map_err(|e| spec_error_at(e, Some("path".into())))?;
    json_to_py(py, &status.json())
}

/// Finalizes a store whose shards are all complete (`phaseflow store finalize`); returns
/// the root's record.
#[pyfunction]
pub fn finalize_store(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Bound<'_, PyAny>> {
    let record = py
        .detach(|| finalize(&path))
        .map_err(|e| spec_error_at(e, Some("path".into())))?;
    json_to_py(py, &record)
}
