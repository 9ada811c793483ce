//! The store's root group (`zarr.json`): the run it holds, in attributes xarray shows, and
//! whether it is complete. Every shard of a run writes the same root and the same array
//! metadata, so whichever starts first creates the store and the others find it as theirs.

use super::layout::{Arrays, Layout, names};
use super::progress::{read_json, write_json_atomically};
use crate::ode::Problem;
use crate::ode::run_dir::{Prepared, RunDirError, stored_spec};
use serde_json::{Map, Value, json};
use std::path::Path;

/// The keys of the root's run record that two processes must agree on to write one store:
/// the run itself, how it is cut into shards and chunks, and the quantile levels whose
/// accumulators the shards merge.
pub const SAME_RUN: [&str; 4] = ["fingerprint", "shards", "layout", "quantiles"];

/// The root group's metadata for a run cut into `shards` shards (state "running").
pub fn root_json(prepared: &Prepared, layout: &Layout, shards: usize) -> Value {
    let problem = &prepared.problem;
    let system = problem.system();
    let spec = serde_json::to_value(stored_spec(&prepared.spec)).expect("JSON");
    let mut attrs = Map::new();
    attrs.insert(
        "title".into(),
        json!(format!("phaseflow ensemble of {}", system.name())),
    );
    attrs.insert("system".into(), json!(system.name()));
    attrs.insert("solver".into(), json!(problem.solver()));
    attrs.insert("precision".into(), json!(problem.precision()));
    attrs.insert("n".into(), json!(layout.n));
    // The settings people filter runs by, flat (xarray shows nested values as text).
    for key in ["tspan", "dt", "rtol", "atol", "seed", "saveat"] {
        if let Some(v) = spec.get(key).filter(|v| !v.is_null()) {
            attrs.insert(key.into(), v.clone());
        }
    }
    attrs.insert("phaseflow_version".into(), json!(env!("CARGO_PKG_VERSION")));
    attrs.insert("phaseflow_commit".into(), json!(env!("PHASEFLOW_COMMIT")));
    attrs.insert(
        "phaseflow".into(),
        json!({
            "state": "running",
            "complete": false,
            "fingerprint": prepared.fingerprint(),
            "shards": shards,
            "layout": layout.json(),
            "outputs": prepared.outputs,
            "quantiles": prepared
                .outputs
                .contains(&crate::spec::Output::Montecarlo)
                .then(|| prepared.quantile_levels()),
            "states": names(&system.states),
            "parameters": names(&system.params),
            "spec": spec,
            "system_text": prepared.system_text(),
        }),
    );
    json!({"zarr_format": 3, "node_type": "group", "attributes": attrs})
}

/// The `phaseflow` attributes of the store at `path`, `None` when it has no root yet.
pub fn read_root(path: &Path) -> Result<Option<Value>, String> {
    read_json(&path.join("zarr.json"))
}

/// The run record of a root, or why the folder is not a phaseflow store.
pub fn run_record<'a>(path: &Path, root: &'a Value) -> Result<&'a Value, String> {
    root.get("attributes")
        .and_then(|a| a.get("phaseflow"))
        .filter(|p| p.get("fingerprint").is_some())
        .ok_or_else(|| {
            format!(
                "'{}' is a Zarr group that phaseflow did not write; choose another path",
                path.display()
            )
        })
}

/// Makes the store at `path` ready for `root` (this run, cut into its shards): creates it,
/// or finds it holding the same run; `overwrite` (unsharded runs only) replaces a store
/// that holds another run. Then writes every array's metadata.
pub fn open_or_create(
    path: &Path,
    root: &Value,
    arrays: &Arrays,
    overwrite: bool,
) -> Result<(), RunDirError> {
    let input = RunDirError::Input;
    if path.exists() && !path.is_dir() {
        return Err(input(format!(
            "'{}' is a file; a Zarr store is a folder: choose another path",
            path.display()
        )));
    }
    let ours = &root["attributes"]["phaseflow"];
    match read_root(path).map_err(input)? {
        Some(found) => {
            let record = run_record(path, &found).map_err(input)?;
            // --overwrite replaces even a store of this very run: the way to compute it
            // again from scratch (a store only continues otherwise).
            let same = SAME_RUN.iter().all(|k| record[k] == ours[k]);
            if !same && !overwrite {
                return Err(input(differs(path, record, ours)));
            }
            if overwrite {
                remove_run(path).map_err(input)?;
            }
        }
        None if has_foreign_files(path) => {
            return Err(input(format!(
                "'{}' holds files and is not a Zarr store; choose another path",
                path.display()
            )));
        }
        None => {}
    }
    let create = |e: std::io::Error| input(format!("cannot write '{}': {e}", path.display()));
    std::fs::create_dir_all(path).map_err(create)?;
    if read_root(path).map_err(input)?.is_none() {
        create_exclusively(&path.join("zarr.json"), root).map_err(create)?;
    }
    // Another process may have created the root first, for another run: the store is
    // whichever root won, and a process whose run it is not writes nothing.
    let found = read_root(path).map_err(input)?.unwrap_or(Value::Null);
    let record = run_record(path, &found).map_err(input)?;
    if SAME_RUN.iter().any(|k| record[k] != ours[k]) {
        return Err(input(differs(path, record, ours)));
    }
    for a in arrays.all() {
        let dir = path.join(a.name);
        std::fs::create_dir_all(&dir).map_err(create)?;
        let meta = serde_json::to_value(a.array.metadata()).expect("JSON");
        write_json_atomically(&dir.join("zarr.json"), &meta).map_err(create)?;
    }
    Ok(())
}

/// Removes what a run wrote into the store at `path` (`--overwrite`): its arrays, shard
/// files and root. A store that also holds anything else (a user's notes, plots) is
/// refused and left untouched, as a run directory is.
fn remove_run(path: &Path) -> Result<(), String> {
    let entries = std::fs::read_dir(path)
        .map_err(|e| format!("cannot read '{}': {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
    let ours = |name: &str| {
        name == "zarr.json"
            || name == super::progress::SHARDS_DIR
            || super::layout::ARRAY_NAMES.contains(&name)
            || (name.starts_with(".zarr.json.") && name.ends_with(".writing"))
    };
    let foreign: Vec<String> = entries
        .iter()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !ours(name))
        .collect();
    if !foreign.is_empty() {
        return Err(format!(
            "'{}' also holds what no run writes ({}); --overwrite leaves it untouched: move \
             those out, or write to another path",
            path.display(),
            foreign.join(", ")
        ));
    }
    for e in entries {
        let p = e.path();
        let removed = match e.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
            _ => std::fs::remove_file(&p),
        };
        removed.map_err(|err| format!("cannot remove '{}': {err}", p.display()))?;
    }
    Ok(())
}

/// Writes `value` as `path` only if no file is there: whole under a temporary name, then
/// linked into place, which fails rather than replaces when another process was first.
fn create_exclusively(path: &Path, value: &Value) -> std::io::Result<()> {
    let tmp = path.with_file_name(format!(".zarr.json.{}.writing", std::process::id()));
    let text = serde_json::to_string_pretty(value).expect("JSON") + "\n";
    std::fs::write(&tmp, text)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// Why a store is not this run's, naming what differs.
fn differs(path: &Path, found: &Value, ours: &Value) -> String {
    let what = if found["outputs"] != ours["outputs"] {
        format!(
            "a run with the outputs {}, not {}",
            found["outputs"], ours["outputs"]
        )
    } else if found["fingerprint"] != ours["fingerprint"] {
        "another run (its system, ensemble or settings differ)".to_string()
    } else if found["shards"] != ours["shards"] {
        format!(
            "this run cut into {} shard(s), not {}",
            found["shards"], ours["shards"]
        )
    } else if found["layout"] != ours["layout"] {
        format!(
            "this run chunked as {}, not {}",
            found["layout"], ours["layout"]
        )
    } else {
        format!(
            "this run with Monte Carlo quantiles {}, not {}",
            found["quantiles"], ours["quantiles"]
        )
    };
    format!(
        "'{}' holds {what}; write to another path, or give --overwrite to replace it (unsharded \
         runs only)",
        path.display()
    )
}

/// Whether the folder holds anything but the temporary files of a root being written.
fn has_foreign_files(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !(name.starts_with(".zarr.json.") && name.ends_with(".writing"))
        })
    })
}

/// The coordinates (save times, state and parameter names): the same for every shard.
pub fn write_coordinates(arrays: &Arrays, problem: &Problem, times: &[f64]) -> Result<(), String> {
    let system = problem.system();
    if !times.is_empty() {
        arrays.time.put(&[0], times).map_err(|e| e.to_string())?;
    }
    arrays
        .state
        .put(&[0], names(&system.states))
        .map_err(|e| e.to_string())?;
    if let Some(p) = &arrays.parameter {
        p.put(&[0], names(&system.params))
            .map_err(|e| e.to_string())?;
    }
    if let Some(f) = &arrays.field {
        let mut fields = vec!["t".to_string(), "event".to_string()];
        fields.extend(names(&system.states));
        f.put(&[0], fields).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The problem's per-trajectory parameters and initial states for the blocks of `range`.
pub fn write_inputs(
    arrays: &Arrays,
    layout: &Layout,
    problem: &Problem,
    range: std::ops::Range<usize>,
) -> Result<(), String> {
    let ensemble = problem.ensemble();
    let t = layout.traj_chunk;
    let pad = |mut v: Vec<f64>, cols: usize| {
        v.resize(t * cols, f64::NAN);
        v
    };
    for b in range.start / t..range.end.div_ceil(t) {
        let rows = b * t..((b + 1) * t).min(layout.n);
        if let Some(p) = &arrays.params {
            let v = pad(ensemble.params(rows.clone()), layout.n_params);
            p.put(&[b as u64, 0], &v).map_err(|e| e.to_string())?;
        }
        let v = pad(ensemble.states(rows), layout.dim);
        arrays
            .u0
            .put(&[b as u64, 0], &v)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
