//! Where a continued shard starts: its progress file says how far the store holds its
//! trajectories, and the store is checked to hold them, in every array, before that is
//! believed. A chunk lost since (a file removed, a copy that missed some) makes the shard
//! start over, with a warning, rather than leave a hole that reads as the fill value.

use super::layout::{Arrays, Layout, StoreArray};
use crate::ode::Status;
use std::ops::Range;

/// The statuses of store chunk `b` along trajectories (its first `len` rows), `None` when
/// the chunk is not in the store.
pub fn block_status(arrays: &Arrays, b: usize, len: usize) -> Result<Option<Vec<u8>>, String> {
    let found = arrays
        .status
        .array
        .retrieve_chunk_if_exists::<Vec<u8>>(&[b as u64])
        .map_err(|e| format!("status: {e}"))?;
    Ok(found.map(|mut v| {
        v.truncate(len);
        v
    }))
}

/// Whether the store holds every chunk of trajectories `done` (whole store chunks) in
/// every array a shard writes along trajectories, and a final status for each of those
/// trajectories (never `not_run`, the fill value). Chunks are written even when they hold
/// only fill values (`StoreArray::put`), so a chunk absent is a chunk lost.
pub fn holds(arrays: &Arrays, layout: &Layout, done: Range<usize>) -> Result<bool, String> {
    let t = layout.traj_chunk;
    let mut per_block: Vec<&StoreArray> = vec![&arrays.status, &arrays.u0];
    per_block.extend(arrays.stats.iter().chain(&arrays.params));
    if let Some((records, counts)) = &arrays.events {
        per_block.push(counts);
        if layout.event_records != Some(0) {
            per_block.push(records);
        }
    }
    for b in done.start / t..done.end.div_ceil(t) {
        for a in &per_block {
            let at: Vec<u64> = std::iter::once(b as u64)
                .chain(std::iter::repeat_n(0, a.array.dimensionality() - 1))
                .collect();
            if !a.has_chunk(&at)? {
                return Ok(false);
            }
        }
        if let Some(states) = &arrays.states {
            for tb in 0..layout.time_blocks() {
                if !states.has_chunk(&[tb as u64, b as u64, 0])? {
                    return Ok(false);
                }
            }
        }
        let len = ((b + 1) * t).min(layout.n) - b * t;
        match block_status(arrays, b, len)? {
            Some(s) if !s.contains(&(Status::Running as u8)) => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}
