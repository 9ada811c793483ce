//! Monte Carlo statistics across shards (`--outputs montecarlo` into a store): each shard
//! reduces its own trajectories and, when complete, leaves its accumulators beside its
//! progress file (`shards/I-of-M.montecarlo`, `MonteCarlo::to_bytes`); `store finalize`
//! merges them and writes the statistics as arrays. The accumulators hold exact integer
//! sums and histogram counts (`ode::montecarlo`), so the merged statistics are the same
//! bits as one process's, whatever the number of shards or the order they finish in.
//!
//! A shard continued after a stop feeds its accumulators again from the states the store
//! already holds; a run that keeps no states starts the shard over instead (its other
//! arrays are rewritten with the same bytes).

use super::layout::{Arrays, Layout, MONTECARLO_MOMENTS, MonteCarloArrays};
use super::progress::{SHARDS_DIR, ShardState, write_atomically};
use super::shard::Shard;
use crate::io::fnv::Fnv;
use crate::ode::MonteCarlo;
use crate::precision::Precision;
use serde_json::{Value, json};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where shard `shard`'s accumulators are kept in the store.
pub fn accumulators_path(store: &Path, shard: Shard) -> PathBuf {
    store
        .join(SHARDS_DIR)
        .join(format!("{}-of-{}.montecarlo", shard.index, shard.count))
}

/// Keeps a complete shard's accumulators (before its progress file says complete, so that
/// a complete shard always has them). Returns what its summary records of them: the hash
/// that `merge_shards` checks, so that a damaged file or another shard's copied over is
/// refused rather than merged.
pub fn save(store: &Path, shard: Shard, mc: &MonteCarlo) -> std::io::Result<Value> {
    let bytes = mc.to_bytes();
    write_atomically(&accumulators_path(store, shard), &bytes)?;
    Ok(json!({"bytes": bytes.len(), "fnv1a64": Fnv::hex_of(&bytes)}))
}

/// Whether a complete shard's accumulators are where its summary says, with the bytes it
/// recorded: `Err` says what is wrong.
pub fn check_saved(store: &Path, state: &ShardState) -> Result<Vec<u8>, String> {
    let path = accumulators_path(store, state.shard);
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("its Monte Carlo accumulators ('{}'): {e}", path.display()))?;
    let recorded = state
        .summary
        .as_ref()
        .and_then(|s| s["montecarlo"]["fnv1a64"].as_str());
    if recorded != Some(Fnv::hex_of(&bytes).as_str()) {
        return Err(format!(
            "its Monte Carlo accumulators ('{}') are not the ones it saved (damaged, or \
             another shard's)",
            path.display()
        ));
    }
    Ok(bytes)
}

/// Feeds `mc` the states of trajectories `range` (whole store chunks, all written), read
/// back from the store: the values the device produced, so the same bits as feeding them
/// while running. `Ok(false)`: the store lacks a chunk it should hold (`resume::holds`
/// checks first; this is for a chunk lost in between), and `mc` is partly fed: start the
/// shard over.
pub fn replay(
    arrays: &Arrays,
    layout: &Layout,
    mc: &mut MonteCarlo,
    range: Range<usize>,
) -> Result<bool, String> {
    let Some(states) = arrays.states.as_ref() else {
        return Err("the run keeps no states to replay".into());
    };
    let (t, c, dim) = (layout.traj_chunk, layout.time_chunk, layout.dim);
    let mut rows = Vec::new();
    for b in range.start / t..range.end.div_ceil(t) {
        let (lo, hi) = (range.start.max(b * t), range.end.min((b + 1) * t));
        for tb in 0..layout.time_blocks() {
            let chunk = [tb as u64, b as u64, 0];
            let err = |e: zarrs::array::ArrayError| format!("states: {e}");
            let values: Option<Vec<f64>> = match layout.precision {
                Precision::F32 => states
                    .array
                    .retrieve_chunk_if_exists::<Vec<f32>>(&chunk)
                    .map_err(err)?
                    .map(|v| v.into_iter().map(f64::from).collect()),
                Precision::F64 => states
                    .array
                    .retrieve_chunk_if_exists::<Vec<f64>>(&chunk)
                    .map_err(err)?,
            };
            let Some(values) = values else {
                return Ok(false);
            };
            for s in tb * c..((tb + 1) * c).min(layout.n_save) {
                let at = ((s - tb * c) * t + (lo - b * t)) * dim;
                rows.clear();
                rows.extend_from_slice(&values[at..at + (hi - lo) * dim]);
                mc.add_rows(s, &rows);
            }
        }
    }
    Ok(true)
}

/// The run's statistics: every shard's accumulators merged. `levels`, `n_save` and `dim`:
/// what the store's record says the run has, checked against each shard's; each shard's
/// file must be the one it recorded and count every one of its trajectories.
pub fn merge_shards(
    store: &Path,
    shards: usize,
    (n_save, dim): (usize, usize),
    levels: &[f64],
) -> Result<MonteCarlo, String> {
    let mut all = MonteCarlo::new(n_save, dim, levels);
    for index in 0..shards {
        let shard = Shard {
            index,
            count: shards,
        };
        let redo = format!("run shard {shard} again (the same command)");
        let state = ShardState::read(store, shard)?
            .filter(ShardState::is_complete)
            .ok_or_else(|| format!("shard {shard} is not complete"))?;
        let bytes =
            check_saved(store, &state).map_err(|e| format!("shard {shard}: {e}: {redo}"))?;
        let path = accumulators_path(store, shard);
        let part = MonteCarlo::from_bytes(&bytes)
            .map_err(|e| format!("'{}': {e}: {redo}", path.display()))?;
        let expected = state.trajectories.len() as u64;
        if n_save * dim > 0 && part.values_per_cell() != Some(expected) {
            return Err(format!(
                "'{}' does not count the {expected} trajectories of shard {shard}: {redo}",
                path.display()
            ));
        }
        all.merge(&part)
            .map_err(|e| format!("'{}': {e}: {redo}", path.display()))?;
    }
    Ok(all)
}

/// Writes the statistics of `mc` as the store's `mc_*` arrays; returns what the root's
/// record says of them.
pub fn write_arrays(
    store: &Path,
    mc: &MonteCarlo,
    time_chunk: usize,
    zstd: Option<i32>,
) -> Result<Value, String> {
    let r = mc.result();
    let nq = r.levels.len();
    let arrays = MonteCarloArrays::new(store, (r.n_save, r.dim, nq), time_chunk, zstd)?;
    let all = arrays
        .moments
        .iter()
        .chain([&arrays.count, &arrays.quantiles, &arrays.quantile]);
    for a in all {
        a.array
            .store_metadata()
            .map_err(|e| format!("{}: {e}", a.name))?;
    }
    let c = time_chunk.max(1);
    let per_time = r.dim;
    for tb in 0..r.n_save.div_ceil(c) {
        let slots = tb * c..((tb + 1) * c).min(r.n_save);
        // A chunk is whole: the last one along time padded with the fill value.
        let pad = |values: &[f64], width: usize, fill: f64| {
            let mut v = values[slots.start * width..slots.end * width].to_vec();
            v.resize(c * width, fill);
            v
        };
        let moments = [&r.mean, &r.var, &r.stderr, &r.min, &r.max];
        for (a, values) in arrays.moments.iter().zip(moments) {
            a.put(&[tb as u64, 0], pad(values, per_time, f64::NAN))
                .map_err(|e| format!("{}: {e}", a.name))?;
        }
        let mut count: Vec<i64> = r.count[slots.start * per_time..slots.end * per_time]
            .iter()
            .map(|&n| n as i64)
            .collect();
        count.resize(c * per_time, 0);
        arrays
            .count
            .put(&[tb as u64, 0], &count)
            .map_err(|e| format!("mc_count: {e}"))?;
        arrays
            .quantiles
            .put(
                &[tb as u64, 0, 0],
                pad(&r.quantiles, nq * per_time, f64::NAN),
            )
            .map_err(|e| format!("mc_quantiles: {e}"))?;
    }
    if nq > 0 {
        arrays
            .quantile
            .put(&[0], &r.levels)
            .map_err(|e| format!("quantile: {e}"))?;
    }
    Ok(json!({
        "quantiles": r.levels,
        "nonfinite_values": r.nonfinite.iter().sum::<u64>(),
        "arrays": MONTECARLO_MOMENTS
            .iter()
            .map(|(name, _)| *name)
            .chain(["mc_count", "mc_quantiles", "quantile"])
            .collect::<Vec<_>>(),
    }))
}
