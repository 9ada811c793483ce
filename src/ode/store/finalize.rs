//! `store status` and `store finalize`: which shards of a store are complete, and, once all
//! are, the run's summary (status counts over every trajectory, the shards' work summed)
//! and consolidated metadata written into the root, which then says "complete".

use super::progress::{ShardState, write_json_atomically};
use super::root::{read_root, run_record};
use super::shard::Shard;
use crate::ode::Status;
use serde_json::{Map, Value, json};
use std::path::Path;
use std::sync::Arc;
use zarrs::array::Array;
use zarrs::filesystem::FilesystemStore;

/// Where a store stands.
#[derive(Debug, Clone)]
pub struct StoreStatus {
    pub n: usize,
    pub shards: usize,
    /// Each shard's progress, `None` for shards not started.
    pub progress: Vec<(Shard, Option<ShardState>)>,
    /// The root says complete (finalized).
    pub finalized: bool,
    pub fingerprint: String,
    /// Shards that say complete but whose status chunks are missing from the store, or
    /// whose Monte Carlo accumulators are missing or not the ones they saved, with what is
    /// wrong: their state reads "damaged", and running them again mends them.
    pub damaged: Vec<(Shard, String)>,
}

impl StoreStatus {
    pub fn read(path: &Path) -> Result<StoreStatus, String> {
        let root = read_root(path)?.ok_or_else(|| {
            format!(
                "'{}' is not a Zarr store (no zarr.json in it)",
                path.display()
            )
        })?;
        let record = run_record(path, &root)?;
        let bad = || format!("'{}': its zarr.json lacks the run's record", path.display());
        let shards = record["shards"]
            .as_u64()
            .filter(|&m| (1..=super::shard::MAX_SHARDS as u64).contains(&m))
            .ok_or_else(bad)? as usize;
        let n = root["attributes"]["n"].as_u64().ok_or_else(bad)? as usize;
        let fingerprint = record["fingerprint"].as_str().ok_or_else(bad)?.to_string();
        let progress = (0..shards)
            .map(|index| {
                let shard = Shard {
                    index,
                    count: shards,
                };
                ShardState::read(path, shard)
                    .map(|p| (shard, p.filter(|p| p.fingerprint == fingerprint)))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let mut status = StoreStatus {
            n,
            shards,
            progress,
            finalized: record["complete"] == json!(true),
            fingerprint,
            damaged: Vec::new(),
        };
        let montecarlo = wants_montecarlo(record);
        for (shard, p) in &mut status.progress {
            let Some(p) = p.as_mut().filter(|p| p.is_complete()) else {
                continue;
            };
            if let Err(e) = intact(path, p, montecarlo) {
                p.state = "damaged".into();
                status.damaged.push((*shard, e));
            }
        }
        Ok(status)
    }

    /// The shards that have started.
    pub fn started(&self) -> impl Iterator<Item = &ShardState> {
        self.progress.iter().filter_map(|(_, p)| p.as_ref())
    }

    /// Shards not complete, with what they are doing.
    pub fn missing(&self) -> Vec<String> {
        self.progress
            .iter()
            .filter(|(_, p)| !p.as_ref().is_some_and(ShardState::is_complete))
            .map(|(s, p)| match (p, self.problem(*s)) {
                (None, _) => format!("{s} (not started)"),
                (Some(_), Some(e)) => format!("{s} (damaged: {e}; run it again)"),
                (Some(p), None) => format!(
                    "{s} ({}, {} of {} trajectories)",
                    // A killed process leaves "running" behind: it cannot say otherwise.
                    match p.state.as_str() {
                        "running" => "running, or killed",
                        other => other,
                    },
                    p.done.saturating_sub(p.trajectories.start),
                    p.trajectories.len()
                ),
            })
            .collect()
    }

    /// What is wrong with a damaged shard.
    fn problem(&self, shard: Shard) -> Option<&str> {
        self.damaged
            .iter()
            .find(|(s, _)| *s == shard)
            .map(|(_, e)| e.as_str())
    }

    pub fn json(&self) -> Value {
        let shards: Vec<Value> = self
            .progress
            .iter()
            .map(|(s, p)| match p {
                Some(p) => {
                    let mut v = p.json();
                    if let Some(e) = self.problem(*s) {
                        v["problem"] = json!(e);
                    }
                    v
                }
                None => json!({"shard": s.index, "of": s.count, "state": "not started"}),
            })
            .collect();
        let done: usize = self.started().map(|p| p.done - p.trajectories.start).sum();
        json!({
            "n": self.n,
            "trajectories_done": done,
            "shards": shards,
            "complete_shards": self.progress.iter().filter(|(_, p)| p.as_ref().is_some_and(ShardState::is_complete)).count(),
            "finalized": self.finalized,
        })
    }
}

/// Whether a shard that says complete still has what it wrote: a status chunk for each of
/// its trajectories' blocks, and (`montecarlo`) the accumulators it saved. `Err` says
/// what is missing. Stats only (no chunk is read), so `store status` stays quick.
pub fn intact(path: &Path, state: &ShardState, montecarlo: bool) -> Result<(), String> {
    let (array, t) = status_array(path)?;
    let range = &state.trajectories;
    let mut lost = 0;
    for b in range.start / t..range.end.div_ceil(t) {
        let found =
            super::layout::has_chunk(&array, &[b as u64]).map_err(|e| format!("status: {e}"))?;
        if !found {
            lost += range.end.min((b + 1) * t) - range.start.max(b * t);
        }
    }
    if lost > 0 {
        return Err(format!(
            "{lost} of its {} trajectories have no status in the store (chunks lost)",
            range.len()
        ));
    }
    if montecarlo {
        super::montecarlo::check_saved(path, state)?;
    }
    Ok(())
}

/// The store's `status` array and its chunk length along trajectories.
fn status_array(path: &Path) -> Result<(Array<FilesystemStore>, usize), String> {
    let store = Arc::new(FilesystemStore::new(path).map_err(|e| e.to_string())?);
    let array = Array::open(store, "/status").map_err(|e| format!("status: {e}"))?;
    let t = array
        .chunk_shape(&[0])
        .map_err(|e| format!("status: {e}"))?
        .first()
        .map_or(1, |c| c.get() as usize);
    Ok((array, t))
}

/// Status counts of the trajectories in `range`, read from the store's `status` array.
pub fn status_counts(path: &Path, range: std::ops::Range<usize>) -> Result<[usize; 7], String> {
    let (array, t) = status_array(path)?;
    let mut counts = [0usize; 7];
    for b in range.start / t..range.end.div_ceil(t) {
        let codes: Vec<u8> = array
            .retrieve_chunk(&[b as u64])
            .map_err(|e| e.to_string())?;
        let lo = range.start.max(b * t);
        let hi = range.end.min((b + 1) * t);
        for &c in &codes[lo - b * t..hi - b * t] {
            counts[Status::from_code(c as u32) as usize] += 1;
        }
    }
    Ok(counts)
}

/// Writes the run's summary and consolidated metadata into the root of a store whose
/// shards are all complete; refuses, naming the shards missing, when they are not.
/// Finalizing twice writes the same root.
pub fn finalize(path: &Path) -> Result<Value, String> {
    let status = StoreStatus::read(path)?;
    let missing = status.missing();
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(10).map(String::as_str).collect();
        let how = match status.shards {
            1 => "run it again (the same command)".to_string(),
            m => format!("run them (the same command with --shard I/{m})"),
        };
        return Err(format!(
            "'{}' is not complete: {} of {} shard(s) have not finished: {}{}; {how} and \
             finalize again",
            path.display(),
            missing.len(),
            status.shards,
            shown.join(", "),
            if missing.len() > 10 { ", …" } else { "" },
        ));
    }
    let counts = status_counts(path, 0..status.n)?;
    // Every shard says complete, yet trajectories without a final status: chunks missing
    // from the store (deleted, or progress files edited). Never a run to call complete.
    let not_run = counts[Status::Running as usize];
    if not_run > 0 {
        return Err(format!(
            "'{}': every shard says complete, but {not_run} of {} trajectories have no \
             status (their chunks are missing); remove the progress files of the shards \
             that hold them (shards/I-of-M.json) and run those shards again",
            path.display(),
            status.n
        ));
    }
    let mut root = read_root(path)?.expect("read above");
    let mut steps = 0u64;
    let mut gpu_s = 0.0;
    let mut solve_s: f64 = 0.0;
    for p in status.started() {
        let t = p.summary.as_ref().map(|s| &s["timing"]);
        steps += t.and_then(|t| t["trajectory_steps"].as_u64()).unwrap_or(0);
        gpu_s += t.and_then(|t| t["gpu_s"].as_f64()).unwrap_or(0.0);
        solve_s = solve_s.max(t.and_then(|t| t["solve_s"].as_f64()).unwrap_or(0.0));
    }
    let montecarlo = montecarlo_of(path, &root, &status)?;
    let record = &mut root["attributes"]["phaseflow"];
    if let Some(m) = montecarlo {
        record["montecarlo"] = m;
    }
    record["state"] = json!("complete");
    record["complete"] = json!(true);
    record["status"] = crate::ode::solution::status_counts_json(Status::nonzero(counts));
    record["work"] = json!({
        "trajectory_steps": steps,
        "gpu_s_summed_over_shards": gpu_s,
        "slowest_shard_solve_s": solve_s,
    });
    root["consolidated_metadata"] = consolidated(path)?;
    write_json_atomically(&path.join("zarr.json"), &root)
        .map_err(|e| format!("cannot write '{}': {e}", path.join("zarr.json").display()))?;
    Ok(root["attributes"]["phaseflow"].clone())
}

/// With `--outputs montecarlo`, merges the shards' accumulators and writes the statistics
/// arrays; returns what the record says of them.
fn montecarlo_of(path: &Path, root: &Value, status: &StoreStatus) -> Result<Option<Value>, String> {
    let record = &root["attributes"]["phaseflow"];
    if !wants_montecarlo(record) {
        return Ok(None);
    }
    let bad = || format!("'{}': its zarr.json lacks the run's record", path.display());
    let levels: Vec<f64> = record["quantiles"]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|q| q.as_f64().ok_or_else(bad))
        .collect::<Result<_, _>>()?;
    let dim = record["states"].as_array().ok_or_else(bad)?.len();
    let layout = &record["layout"];
    let time_chunk = layout["chunk_times"].as_u64().ok_or_else(bad)? as usize;
    let compression = layout["compression"].as_str().ok_or_else(bad)?;
    let zstd = super::layout::parse_compression(compression).map_err(|_| bad())?;
    let n_save = n_save_of(path)?;
    let mc = super::montecarlo::merge_shards(path, status.shards, (n_save, dim), &levels)?;
    super::montecarlo::write_arrays(path, &mc, time_chunk, zstd).map(Some)
}

/// Whether the run's record (the root's `phaseflow` attribute) asks for Monte Carlo
/// statistics.
fn wants_montecarlo(record: &Value) -> bool {
    record["outputs"]
        .as_array()
        .is_some_and(|o| o.contains(&json!("montecarlo")))
}

/// The run's save times, from the shape of the store's `time` array.
fn n_save_of(path: &Path) -> Result<usize, String> {
    let store = Arc::new(FilesystemStore::new(path).map_err(|e| e.to_string())?);
    let time = Array::open(store, "/time").map_err(|e| e.to_string())?;
    Ok(time.shape().first().copied().unwrap_or(0) as usize)
}

/// Every array's metadata in one place (zarr-python's inline consolidated metadata), so
/// that opening the store reads one file.
fn consolidated(path: &Path) -> Result<Value, String> {
    let mut metadata = Map::new();
    let mut names: Vec<String> = std::fs::read_dir(path)
        .map_err(|e| format!("cannot read '{}': {e}", path.display()))?
        .flatten()
        .filter(|e| e.path().join("zarr.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        if let Some(v) = super::progress::read_json(&path.join(&name).join("zarr.json"))? {
            metadata.insert(name, v);
        }
    }
    Ok(json!({"kind": "inline", "must_understand": false, "metadata": metadata}))
}
