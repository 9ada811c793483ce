//! Streams event logs to `events.npy` [N, K, 2 + dim] (t, event id, state; the run's
//! precision; NaN rows past each trajectory's count) and `event_counts.npy` [N] u32 (events
//! that fired after the transient, which may exceed K), chunk by chunk: host memory is one
//! chunk's log, whatever N·K.

use super::log::EventLog;
use crate::io::{Dtype, NpyStream};
use crate::ode::error::SinkError;
use crate::ode::results::ChunkResults;
use crate::ode::sink::Sink;
use crate::precision::Precision;
use std::ops::Range;

pub struct EventSink {
    pub records: NpyStream,
    pub counts: NpyStream,
    precision: Precision,
}

impl EventSink {
    pub fn new(records: NpyStream, counts: NpyStream, precision: Precision) -> EventSink {
        EventSink {
            records,
            counts,
            precision,
        }
    }

    /// The shapes and dtypes of the two files for `n` trajectories.
    pub fn files(
        n: usize,
        k: usize,
        dim: usize,
        precision: Precision,
    ) -> [(&'static str, Dtype, Vec<u64>); 2] {
        let real = match precision {
            Precision::F32 => Dtype::F32,
            Precision::F64 => Dtype::F64,
        };
        [
            ("events.npy", real, vec![n as u64, k as u64, 2 + dim as u64]),
            ("event_counts.npy", Dtype::U32, vec![n as u64]),
        ]
    }

    pub fn finish(self) -> Result<(), SinkError> {
        for s in [self.records, self.counts] {
            let path = s.path().display().to_string();
            s.finish()
                .map_err(|source| SinkError::Io { path, source })?;
        }
        Ok(())
    }

    fn write(&mut self, chunk: Range<usize>, log: &EventLog) -> Result<(), SinkError> {
        let width = log.k * (2 + log.dim);
        let err = |s: &NpyStream| {
            let path = s.path().display().to_string();
            move |source| SinkError::Io { path, source }
        };
        let bytes: Vec<u8> = match self.precision {
            Precision::F32 => {
                let v: Vec<f32> = log.records.iter().map(|&x| x as f32).collect();
                bytemuck::cast_slice(&v).to_vec()
            }
            Precision::F64 => bytemuck::cast_slice(&log.records).to_vec(),
        };
        self.records
            .write_at((chunk.start * width) as u64, &bytes)
            .map_err(err(&self.records))?;
        self.counts
            .write_at(chunk.start as u64, bytemuck::cast_slice(&log.counts))
            .map_err(err(&self.counts))?;
        Ok(())
    }
}

impl Sink for EventSink {
    fn chunk_done(
        &mut self,
        _: Range<usize>,
        _: &[crate::ode::solution::Status],
        _: Option<&[crate::ode::solution::StepCounts]>,
    ) -> Result<(), SinkError> {
        Ok(())
    }

    fn results(&mut self, chunk: Range<usize>, results: &ChunkResults) -> Result<(), SinkError> {
        match results {
            ChunkResults::Events(log) => self.write(chunk, log),
            _ => Ok(()),
        }
    }
}
