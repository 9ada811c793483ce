//! Where a continued shard starts: its progress file says how far the store holds its
//! trajectories, and the store is checked to hold them before that is believed. A chunk
//! lost since (a file removed, a copy that missed some) makes the shard start over, with
//! a warning, rather than leave a hole that reads as the fill value.

use super::layout::{Arrays, Layout};
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

/// Whether the store holds a final status for every trajectory of `done` (whole store
/// chunks): a chunk of statuses is written only once all of its trajectories have one, and
/// a finished trajectory's status is never `not_run` (0, the fill value).
pub fn holds(arrays: &Arrays, layout: &Layout, done: Range<usize>) -> Result<bool, String> {
    let t = layout.traj_chunk;
    for b in done.start / t..done.end.div_ceil(t) {
        let len = ((b + 1) * t).min(layout.n) - b * t;
        match block_status(arrays, b, len)? {
            Some(s) if !s.contains(&(Status::Running as u8)) => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}
