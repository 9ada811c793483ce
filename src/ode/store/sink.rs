//! Streams a shard's results into the store's chunks as they come off the device. A chunk
//! is written once, whole, when every value in it has arrived (the scheduler's chunks need
//! not line up with the store's), so no chunk is ever read back and rewritten, and memory
//! holds only the chunks still being filled. After each of the scheduler's chunks the
//! shard's progress file records how far the store holds every value: a shard killed at
//! any moment is continued from there.

use super::layout::{Arrays, Layout};
use super::progress::ShardProgress;
use crate::ode::device::SaveBatch;
use crate::ode::results::ChunkResults;
use crate::ode::{Sink, SinkError, Status, StepCounts};
use crate::precision::Precision;
use std::collections::BTreeMap;
use std::ops::Range;
use zarrs::array::ArrayBytes;

/// A chunk being filled: its bytes (the fill value where nothing arrived yet) and how many
/// rows of it (trajectory × save time) are in.
struct Filling<T> {
    values: Vec<T>,
    rows: usize,
}

pub struct StoreSink<'a> {
    layout: Layout,
    arrays: &'a Arrays,
    /// `states` chunks by (trajectory block, time block), as raw little-endian bytes.
    states: BTreeMap<(usize, usize), Filling<u8>>,
    /// `status` and `stats` chunks by trajectory block.
    status: BTreeMap<usize, Filling<u8>>,
    stats: BTreeMap<usize, Filling<u32>>,
    /// `events` chunks (records as f64, cast to the run's precision when written) and
    /// their `event_counts`, by trajectory block.
    events: BTreeMap<usize, (Filling<f64>, Vec<u32>)>,
    progress: &'a mut ShardProgress,
    /// The store's path, for messages.
    root: String,
}

/// A failed write of array `what` (a chunk) in the store at `root`.
fn store_error(root: &str, what: &str, e: impl std::fmt::Display) -> SinkError {
    SinkError::Io {
        path: format!("{root}/{what}"),
        source: std::io::Error::other(e.to_string()),
    }
}

impl<'a> StoreSink<'a> {
    pub fn new(
        layout: Layout,
        arrays: &'a Arrays,
        progress: &'a mut ShardProgress,
        root: &std::path::Path,
    ) -> Self {
        StoreSink {
            layout,
            arrays,
            states: BTreeMap::new(),
            status: BTreeMap::new(),
            stats: BTreeMap::new(),
            events: BTreeMap::new(),
            progress,
            root: root.display().to_string(),
        }
    }

    /// Trajectories of block `b` (the last may be short).
    fn block(&self, b: usize) -> Range<usize> {
        let t = self.layout.traj_chunk;
        b * t..((b + 1) * t).min(self.layout.n)
    }

    /// Save slots of time block `s`.
    fn time_block(&self, s: usize) -> Range<usize> {
        let c = self.layout.time_chunk;
        s * c..((s + 1) * c).min(self.layout.n_save)
    }

    /// Blocks that `chunk` touches.
    fn blocks_of(&self, chunk: &Range<usize>) -> Range<usize> {
        let t = self.layout.traj_chunk;
        chunk.start / t..chunk.end.div_ceil(t)
    }

    /// The first trajectory from which the store may lack values: the start of the first
    /// block still being filled, else `done`.
    fn durable(&self, done: usize) -> usize {
        let t = self.layout.traj_chunk;
        let first = [
            self.states.keys().next().map(|k| k.0),
            self.status.keys().next().copied(),
            self.stats.keys().next().copied(),
            self.events.keys().next().copied(),
        ];
        first
            .into_iter()
            .flatten()
            .map(|b| b * t)
            .fold(done, usize::min)
    }

    fn nan_chunk(&self) -> Vec<u8> {
        let len = self.layout.time_chunk * self.layout.traj_chunk * self.layout.dim;
        match self.layout.precision {
            Precision::F32 => bytemuck::cast_slice(&vec![f32::NAN; len]).to_vec(),
            Precision::F64 => bytemuck::cast_slice(&vec![f64::NAN; len]).to_vec(),
        }
    }
}

impl Sink for StoreSink<'_> {
    fn saves(&mut self, batch: &SaveBatch) -> Result<(), SinkError> {
        let Some(states) = self.arrays.states.as_ref() else {
            return Ok(());
        };
        let (t, c, dim) = (
            self.layout.traj_chunk,
            self.layout.time_chunk,
            self.layout.dim,
        );
        let w = self.layout.precision.bytes() as usize;
        for b in self.blocks_of(&batch.chunk) {
            let block = self.block(b);
            let lo = block.start.max(batch.chunk.start);
            let hi = block.end.min(batch.chunk.end);
            let from = (lo - batch.chunk.start) * dim * w..(hi - batch.chunk.start) * dim * w;
            for s in batch.slots.clone() {
                let key = (b, s / c);
                if !self.states.contains_key(&key) {
                    let values = self.nan_chunk();
                    self.states.insert(key, Filling { values, rows: 0 });
                }
                let whole = block.len() * self.time_block(s / c).len();
                let f = self.states.get_mut(&key).expect("inserted");
                let at = ((s % c) * t + (lo - block.start)) * dim * w;
                let row = batch.slot(s - batch.slots.start);
                f.values[at..at + from.len()].copy_from_slice(&row[from.clone()]);
                f.rows += hi - lo;
                if f.rows == whole {
                    let f = self.states.remove(&key).expect("present");
                    states
                        .put(&[key.1 as u64, b as u64, 0], ArrayBytes::new_flen(f.values))
                        .map_err(|e| store_error(&self.root, "states", e))?;
                }
            }
        }
        Ok(())
    }

    fn results(&mut self, chunk: Range<usize>, results: &ChunkResults) -> Result<(), SinkError> {
        let (ChunkResults::Events(log), Some((records, counts))) =
            (results, self.arrays.events.as_ref())
        else {
            return Ok(());
        };
        let (t, width) = (self.layout.traj_chunk, self.layout.event_width());
        for b in self.blocks_of(&chunk) {
            let block = self.block(b);
            let (lo, hi) = (block.start.max(chunk.start), block.end.min(chunk.end));
            let (f, n) = self.events.entry(b).or_insert_with(|| {
                let values = vec![f64::NAN; t * width];
                (Filling { values, rows: 0 }, vec![0; t])
            });
            let from = (lo - chunk.start) * width..(hi - chunk.start) * width;
            let at = (lo - block.start) * width;
            f.values[at..at + from.len()].copy_from_slice(&log.records[from]);
            n[lo - block.start..hi - block.start]
                .copy_from_slice(&log.counts[lo - chunk.start..hi - chunk.start]);
            f.rows += hi - lo;
            if f.rows == block.len() {
                let (f, n) = self.events.remove(&b).expect("present");
                let at = [b as u64, 0, 0];
                let stored = match self.layout.precision {
                    // No records kept: the array has no chunks, only its shape.
                    _ if width == 0 => Ok(()),
                    Precision::F32 => {
                        let v: Vec<f32> = f.values.iter().map(|&x| x as f32).collect();
                        records.put(&at, &v)
                    }
                    Precision::F64 => records.put(&at, &f.values),
                };
                stored.map_err(|e| store_error(&self.root, "events", e))?;
                counts
                    .put(&[b as u64], &n)
                    .map_err(|e| store_error(&self.root, "event_counts", e))?;
            }
        }
        Ok(())
    }

    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        status: &[Status],
        steps: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        let t = self.layout.traj_chunk;
        for b in self.blocks_of(&chunk) {
            let block = self.block(b);
            let (lo, hi) = (block.start.max(chunk.start), block.end.min(chunk.end));
            let f = self.status.entry(b).or_insert_with(|| Filling {
                values: vec![0; t],
                rows: 0,
            });
            for j in lo..hi {
                f.values[j - block.start] = status[j - chunk.start] as u8;
            }
            f.rows += hi - lo;
            if f.rows == block.len() {
                let f = self.status.remove(&b).expect("present");
                self.arrays
                    .status
                    .put(&[b as u64], &f.values)
                    .map_err(|e| store_error(&self.root, "status", e))?;
            }
            if let (Some(cols), Some(steps), Some(array)) =
                (self.layout.stats_columns, steps, self.arrays.stats.as_ref())
            {
                let f = self.stats.entry(b).or_insert_with(|| Filling {
                    values: vec![0; t * cols],
                    rows: 0,
                });
                for j in lo..hi {
                    let at = (j - block.start) * cols;
                    for (k, v) in steps[j - chunk.start].row(cols).enumerate() {
                        f.values[at + k] = v;
                    }
                }
                f.rows += hi - lo;
                if f.rows == block.len() {
                    let f = self.stats.remove(&b).expect("present");
                    array
                        .put(&[b as u64, 0], &f.values)
                        .map_err(|e| store_error(&self.root, "stats", e))?;
                }
            }
        }
        let durable = self.durable(chunk.end);
        self.progress
            .advance(durable)
            .map_err(|e| store_error(&self.root, "the shard's progress file", e))
    }
}
