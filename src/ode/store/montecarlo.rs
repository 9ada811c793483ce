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
use super::progress::{SHARDS_DIR, write_atomically};
use super::shard::Shard;
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
/// a complete shard always has them).
pub fn save(store: &Path, shard: Shard, mc: &MonteCarlo) -> std::io::Result<()> {
    write_atomically(&accumulators_path(store, shard), &mc.to_bytes())
}

/// Feeds `mc` the states of trajectories `range` (whole store chunks, all written), read
/// back from the store: the values the device produced, so the same bits as feeding them
/// while running.
pub fn replay(
    arrays: &Arrays,
    layout: &Layout,
    mc: &mut MonteCarlo,
    range: Range<usize>,
) -> Result<(), String> {
    let Some(states) = arrays.states.as_ref() else {
        return Err("the run keeps no states to replay".into());
    };
    let (t, c, dim) = (layout.traj_chunk, layout.time_chunk, layout.dim);
    let mut rows = Vec::new();
    for b in range.start / t..range.end.div_ceil(t) {
        let (lo, hi) = (range.start.max(b * t), range.end.min((b + 1) * t));
        for tb in 0..layout.time_blocks() {
            let chunk = [tb as u64, b as u64, 0];
            let values: Vec<f64> = match layout.precision {
                Precision::F32 => states
                    .array
                    .retrieve_chunk::<Vec<f32>>(&chunk)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(f64::from)
                    .collect(),
                Precision::F64 => states
                    .array
                    .retrieve_chunk::<Vec<f64>>(&chunk)
                    .map_err(|e| e.to_string())?,
            };
            for s in tb * c..((tb + 1) * c).min(layout.n_save) {
                let at = ((s - tb * c) * t + (lo - b * t)) * dim;
                rows.clear();
                rows.extend_from_slice(&values[at..at + (hi - lo) * dim]);
                mc.add_rows(s, &rows);
            }
        }
    }
    Ok(())
}

/// The run's statistics: every shard's accumulators merged. `levels`, `n_save` and `dim`:
/// what the store's record says the run has, checked against each shard's.
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
        let path = accumulators_path(store, shard);
        let redo = format!(
            "remove its progress file ({}) and run shard {shard} again",
            super::progress::ShardState::path(store, shard).display()
        );
        let bytes = std::fs::read(&path).map_err(|e| {
            format!(
                "shard {shard} says complete, but its Monte Carlo accumulators ('{}') cannot \
                 be read ({e}): {redo}",
                path.display()
            )
        })?;
        let part = MonteCarlo::from_bytes(&bytes)
            .map_err(|e| format!("'{}': {e}: {redo}", path.display()))?;
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
            a.array
                .store_chunk(&[tb as u64, 0], pad(values, per_time, f64::NAN))
                .map_err(|e| format!("{}: {e}", a.name))?;
        }
        let mut count: Vec<i64> = r.count[slots.start * per_time..slots.end * per_time]
            .iter()
            .map(|&n| n as i64)
            .collect();
        count.resize(c * per_time, 0);
        arrays
            .count
            .array
            .store_chunk(&[tb as u64, 0], &count)
            .map_err(|e| format!("mc_count: {e}"))?;
        arrays
            .quantiles
            .array
            .store_chunk(
                &[tb as u64, 0, 0],
                pad(&r.quantiles, nq * per_time, f64::NAN),
            )
            .map_err(|e| format!("mc_quantiles: {e}"))?;
    }
    if nq > 0 {
        arrays
            .quantile
            .array
            .store_chunk(&[0], &r.levels)
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
