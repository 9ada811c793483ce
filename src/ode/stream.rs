//! Sinks that write results to disk as they arrive and reductions that need no per-step
//! output, all in memory that does not grow with N or with the number of saves (except the
//! ensemble statistics, which keep one accumulator per save time and component).

use super::device::{Precision, SaveBatch};
use super::error::SinkError;
use super::sink::Sink;
use super::solution::{Status, StepCounts};
use crate::io::{Dtype, NpyStream};
use std::ops::Range;

fn io_error(stream: &NpyStream) -> impl FnOnce(std::io::Error) -> SinkError + '_ {
    move |source| SinkError::Io {
        path: stream.path().display().to_string(),
        source,
    }
}

fn real_dtype(precision: Precision) -> Dtype {
    match precision {
        Precision::F32 => Dtype::F32,
        Precision::F64 => Dtype::F64,
    }
}

/// Streams `states.npy` [n_save, N, dim], `status.npy` [N] and, for adaptive runs,
/// `stats.npy` [N, 3] (stiff runs: [N, 5], see `StepCounts::row`). The device already lays saves out as the file does, so each slot of
/// a chunk is one write straight from the mapped readback buffer: no host copy at all.
pub struct NpySink {
    pub states: Option<NpyStream>,
    pub status: NpyStream,
    pub stats: Option<NpyStream>,
    /// Columns of `stats.npy`: `StepCounts::COLUMNS` or `STIFF_COLUMNS`.
    pub stats_columns: usize,
}

impl NpySink {
    /// Streams to create with `OutputDir::stream_npy`; their shapes are the caller's.
    pub fn new(states: Option<NpyStream>, status: NpyStream, stats: Option<NpyStream>) -> Self {
        NpySink {
            states,
            status,
            stats,
            stats_columns: StepCounts::COLUMNS,
        }
    }

    /// Writes `columns` stats columns (`StepCounts::STIFF_COLUMNS` for stiff runs).
    pub fn with_stats_columns(self, columns: usize) -> Self {
        NpySink {
            stats_columns: columns,
            ..self
        }
    }

    /// The dtype `states.npy` has for a precision.
    pub fn states_dtype(precision: Precision) -> Dtype {
        real_dtype(precision)
    }

    pub fn finish(self) -> Result<(), SinkError> {
        for s in [self.states, Some(self.status), self.stats]
            .into_iter()
            .flatten()
        {
            let path = s.path().display().to_string();
            s.finish()
                .map_err(|source| SinkError::Io { path, source })?;
        }
        Ok(())
    }
}

/// Writes a batch into a stream of shape [n_save, N, batch.dim]: one write per slot.
fn write_saves(stream: &mut NpyStream, batch: &SaveBatch) -> Result<(), SinkError> {
    for (s_local, s) in batch.slots.clone().enumerate() {
        let at = ((s * batch.n + batch.chunk.start) * batch.dim) as u64;
        stream
            .write_at(at, batch.slot(s_local))
            .map_err(io_error(stream))?;
    }
    Ok(())
}

impl Sink for NpySink {
    fn saves(&mut self, batch: &SaveBatch) -> Result<(), SinkError> {
        match self.states.as_mut() {
            Some(states) => write_saves(states, batch),
            None => Ok(()),
        }
    }

    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        status: &[Status],
        steps: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        let codes: Vec<u8> = status.iter().map(|&s| s as u8).collect();
        self.status
            .write_at(chunk.start as u64, &codes)
            .map_err(io_error(&self.status))?;
        if let (Some(stats), Some(steps)) = (self.stats.as_mut(), steps) {
            let columns = self.stats_columns;
            let table: Vec<u32> = steps.iter().flat_map(|c| c.row(columns)).collect();
            stats
                .write_at((columns * chunk.start) as u64, bytemuck::cast_slice(&table))
                .map_err(io_error(stats))?;
        }
        Ok(())
    }
}

/// Streams one more array of saves, [n_save, N, width] in the run's precision (the
/// sensitivities of `ode::sensitivity`, fed by a `SplitSink`), straight from the batches.
pub struct SavesNpy(pub NpyStream);

impl SavesNpy {
    pub fn finish(self) -> Result<(), SinkError> {
        let path = self.0.path().display().to_string();
        self.0
            .finish()
            .map_err(|source| SinkError::Io { path, source })
    }
}

impl Sink for SavesNpy {
    fn saves(&mut self, batch: &SaveBatch) -> Result<(), SinkError> {
        write_saves(&mut self.0, batch)
    }

    fn chunk_done(
        &mut self,
        _: Range<usize>,
        _: &[Status],
        _: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Per trajectory, over its save times: the minimum, maximum and mean of each component
/// (of the finite values; NaN where there are none), streamed to three [N, dim] f64 files
/// as chunks finish. Host memory: 4 × chunk × dim values.
pub struct TrajectoryStats {
    pub min: NpyStream,
    pub max: NpyStream,
    pub mean: NpyStream,
    dim: usize,
    chunk_start: usize,
    lo: Vec<f64>,
    hi: Vec<f64>,
    sum: Vec<f64>,
    count: Vec<u32>,
}

impl TrajectoryStats {
    pub fn new(min: NpyStream, max: NpyStream, mean: NpyStream, dim: usize) -> Self {
        TrajectoryStats {
            min,
            max,
            mean,
            dim,
            chunk_start: usize::MAX,
            lo: Vec::new(),
            hi: Vec::new(),
            sum: Vec::new(),
            count: Vec::new(),
        }
    }

    fn reset(&mut self, chunk: &Range<usize>) {
        let len = chunk.len() * self.dim;
        self.chunk_start = chunk.start;
        self.lo = vec![f64::INFINITY; len];
        self.hi = vec![f64::NEG_INFINITY; len];
        self.sum = vec![0.0; len];
        self.count = vec![0; len];
    }

    pub fn finish(self) -> Result<(), SinkError> {
        for s in [self.min, self.max, self.mean] {
            let path = s.path().display().to_string();
            s.finish()
                .map_err(|source| SinkError::Io { path, source })?;
        }
        Ok(())
    }
}

impl Sink for TrajectoryStats {
    fn saves(&mut self, batch: &SaveBatch) -> Result<(), SinkError> {
        if batch.chunk.start != self.chunk_start {
            self.reset(&batch.chunk);
        }
        for s_local in 0..batch.slots.len() {
            for c in 0..self.dim {
                for j in 0..batch.chunk.len() {
                    let v = batch.get(s_local, c, j);
                    if v.is_finite() {
                        let k = j * self.dim + c;
                        self.lo[k] = self.lo[k].min(v);
                        self.hi[k] = self.hi[k].max(v);
                        self.sum[k] += v;
                        self.count[k] += 1;
                    }
                }
            }
        }
        Ok(())
    }

    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        _: &[Status],
        _: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        if chunk.start != self.chunk_start {
            self.reset(&chunk);
        }
        let none = |k: usize, v: f64| if self.count[k] == 0 { f64::NAN } else { v };
        let lo: Vec<f64> = (0..self.lo.len()).map(|k| none(k, self.lo[k])).collect();
        let hi: Vec<f64> = (0..self.hi.len()).map(|k| none(k, self.hi[k])).collect();
        let mean: Vec<f64> = (0..self.sum.len())
            .map(|k| none(k, self.sum[k] / self.count[k].max(1) as f64))
            .collect();
        let at = (chunk.start * self.dim) as u64;
        for (stream, values) in [
            (&mut self.min, lo),
            (&mut self.max, hi),
            (&mut self.mean, mean),
        ] {
            stream
                .write_at(at, bytemuck::cast_slice(&values))
                .map_err(io_error(stream))?;
        }
        Ok(())
    }
}

/// Across the ensemble, per save time and component: the mean and sample variance of the
/// finite values and how many there were. Welford's update in trajectory order, so the
/// result is the same bits however the run is cut into chunks. Memory: 3 × n_save × dim.
pub struct EnsembleStats {
    dim: usize,
    count: Vec<u64>,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl EnsembleStats {
    pub fn new(n_save: usize, dim: usize) -> Self {
        EnsembleStats {
            dim,
            count: vec![0; n_save * dim],
            mean: vec![0.0; n_save * dim],
            m2: vec![0.0; n_save * dim],
        }
    }

    /// (mean [n_save, dim], variance [n_save, dim], finite count [n_save, dim]).
    pub fn result(&self) -> (Vec<f64>, Vec<f64>, Vec<u32>) {
        let mean = (0..self.mean.len())
            .map(|k| {
                if self.count[k] == 0 {
                    f64::NAN
                } else {
                    self.mean[k]
                }
            })
            .collect();
        let var = (0..self.m2.len())
            .map(|k| match self.count[k] {
                0 | 1 => f64::NAN,
                c => self.m2[k] / (c - 1) as f64,
            })
            .collect();
        let count = self.count.iter().map(|&c| c as u32).collect();
        (mean, var, count)
    }
}

impl Sink for EnsembleStats {
    fn saves(&mut self, batch: &SaveBatch) -> Result<(), SinkError> {
        for (s_local, s) in batch.slots.clone().enumerate() {
            for c in 0..self.dim {
                let k = s * self.dim + c;
                for j in 0..batch.chunk.len() {
                    let v = batch.get(s_local, c, j);
                    if v.is_finite() {
                        self.count[k] += 1;
                        let delta = v - self.mean[k];
                        self.mean[k] += delta / self.count[k] as f64;
                        self.m2[k] += delta * (v - self.mean[k]);
                    }
                }
            }
        }
        Ok(())
    }

    fn chunk_done(
        &mut self,
        _: Range<usize>,
        _: &[Status],
        _: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        Ok(())
    }
}
