//! Event logs: what the kernels write per trajectory and how the host reads it back.
//!
//! The device keeps, per chunk, a results buffer of `rows(k, dim)` rows of reals, each
//! `stride` long (struct-of-arrays, so neighbouring invocations write neighbouring words):
//! rows 0 and 1 hold the count of events that fired (after the transient) as two 16-bit
//! halves, low first, since f32 holds integers exactly only to 2^24; then record `r`
//! (r < k) is rows `2 + r·(2 + dim) ..`: time, event id, the state at the event.

use crate::precision::Precision;

/// Rows before the records: the count's two halves.
pub const COUNT_ROWS: usize = 2;

/// Reals per record: t, event id, then the state.
pub fn record_width(dim: usize) -> usize {
    2 + dim
}

/// Rows of the results buffer for `k` records of a `dim`-state system.
pub fn rows(k: usize, dim: usize) -> usize {
    COUNT_ROWS + k * record_width(dim)
}

/// The events of a set of trajectories, trajectory-major.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLog {
    /// Records kept per trajectory.
    pub k: usize,
    pub dim: usize,
    /// Events that fired per trajectory (after the transient); may exceed `k`.
    pub counts: Vec<u32>,
    /// `[n][k][2 + dim]`: t, event id, state; NaN rows past the count.
    pub records: Vec<f64>,
}

impl EventLog {
    /// An empty log for `n` trajectories: no events, every record NaN.
    pub fn empty(n: usize, k: usize, dim: usize) -> EventLog {
        EventLog {
            k,
            dim,
            counts: vec![0; n],
            records: vec![f64::NAN; n * k * record_width(dim)],
        }
    }

    /// Trajectories in the log.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Records kept for trajectory `j`: min(count, k).
    pub fn recorded(&self, j: usize) -> usize {
        (self.counts[j] as usize).min(self.k)
    }

    /// Record `r` of trajectory `j`: [t, id, state...].
    pub fn record(&self, j: usize, r: usize) -> &[f64] {
        let w = record_width(self.dim);
        let at = (j * self.k + r) * w;
        &self.records[at..at + w]
    }

    /// The kept records of trajectory `j`, in the order they fired.
    pub fn records_of(&self, j: usize) -> impl Iterator<Item = &[f64]> {
        (0..self.recorded(j)).map(move |r| self.record(j, r))
    }

    /// Trajectories `range` of the log, as a log of its own.
    pub fn slice(&self, range: std::ops::Range<usize>) -> EventLog {
        let w = self.k * record_width(self.dim);
        EventLog {
            k: self.k,
            dim: self.dim,
            counts: self.counts[range.clone()].to_vec(),
            records: self.records[range.start * w..range.end * w].to_vec(),
        }
    }

    /// Writes `part` (trajectories `at..at + part.len()`) into this log.
    pub fn place(&mut self, at: usize, part: &EventLog) {
        let w = self.k * record_width(self.dim);
        self.counts[at..at + part.len()].copy_from_slice(&part.counts);
        self.records[at * w..(at + part.len()) * w].copy_from_slice(&part.records);
    }

    /// Events fired and records kept over every trajectory.
    pub fn totals(&self) -> (u64, u64) {
        let fired = self.counts.iter().map(|&c| c as u64).sum();
        let kept = (0..self.len()).map(|j| self.recorded(j) as u64).sum();
        (fired, kept)
    }

    /// Reads a chunk's results buffer back: `len` trajectories of rows `stride` long, in
    /// `precision`. Records past a trajectory's count are NaN whatever the buffer holds.
    pub fn decode(
        bytes: &[u8],
        precision: Precision,
        (stride, len): (usize, usize),
        (k, dim): (usize, usize),
    ) -> EventLog {
        let value = |row: usize, j: usize| -> f64 {
            let i = row * stride + j;
            match precision {
                Precision::F32 => {
                    f32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes")) as f64
                }
                Precision::F64 => {
                    f64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8 bytes"))
                }
            }
        };
        let w = record_width(dim);
        let mut log = EventLog::empty(len, k, dim);
        for j in 0..len {
            let count = value(0, j) as u32 | ((value(1, j) as u32) << 16);
            log.counts[j] = count;
            for r in 0..(count as usize).min(k) {
                for c in 0..w {
                    log.records[(j * k + r) * w + c] = value(COUNT_ROWS + r * w + c, j);
                }
            }
        }
        log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_counts_halves_and_records() {
        let (stride, len, k, dim) = (3, 2, 2, 1);
        let rows = rows(k, dim);
        let mut words = vec![0f32; rows * stride];
        // Trajectory 1: 65,537 events fired, the first two kept.
        words[1] = 1.0;
        words[stride + 1] = 1.0;
        for (r, rec) in [[0.5f32, 0.0, 7.0], [1.5, 1.0, 8.0]].iter().enumerate() {
            for (c, v) in rec.iter().enumerate() {
                words[(2 + r * 3 + c) * stride + 1] = *v;
            }
        }
        let log = EventLog::decode(
            bytemuck::cast_slice(&words),
            Precision::F32,
            (stride, len),
            (k, dim),
        );
        assert_eq!(log.counts, vec![0, 65_537]);
        assert_eq!(log.recorded(1), 2);
        assert_eq!(log.record(1, 1), &[1.5, 1.0, 8.0]);
        assert!(log.record(0, 0).iter().all(|v| v.is_nan()));
        assert_eq!(log.totals(), (65_537, 2));
    }
}
