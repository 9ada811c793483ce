//! The orbit diagram's sink: from each chunk's event log it keeps, per trajectory, the
//! observed state at the section's records (the system's own events are skipped), so that
//! host memory holds at most N × K values, never the whole log of every trajectory.

use crate::ode::error::SinkError;
use crate::ode::results::ChunkResults;
use crate::ode::sink::Sink;
use crate::ode::solution::{Status, StepCounts};
use std::ops::Range;

pub struct Collector {
    /// The section's event id (its index among the system's events) and the observed
    /// state's index.
    section: usize,
    observe: usize,
    /// Per trajectory: the observed values at its first K section records.
    pub points: Vec<Vec<f64>>,
    /// Per trajectory: events that fired after the transient (all events of the system).
    pub fired: Vec<u32>,
    pub status: Vec<Status>,
    pub steps: StepTotals,
}

/// Step totals over all trajectories (adaptive runs).
#[derive(Debug, Default, Clone, Copy)]
pub struct StepTotals {
    pub accepted: u64,
    pub rejected: u64,
    pub max_attempts: u64,
}

impl Collector {
    pub fn new(n: usize, section: usize, observe: usize) -> Collector {
        Collector {
            section,
            observe,
            points: vec![Vec::new(); n],
            fired: vec![0; n],
            status: vec![Status::Running; n],
            steps: StepTotals::default(),
        }
    }
}

impl Sink for Collector {
    fn results(&mut self, chunk: Range<usize>, results: &ChunkResults) -> Result<(), SinkError> {
        let ChunkResults::Events(log) = results else {
            return Ok(());
        };
        for (i, j) in chunk.enumerate() {
            // Event ids are small integers, exact in f32 and f64.
            let mut row: Vec<f64> = log
                .records_of(i)
                .filter(|r| r[1] == self.section as f64)
                .map(|r| r[2 + self.observe])
                .collect();
            row.shrink_to_fit();
            self.points[j] = row;
            self.fired[j] = log.counts[i];
        }
        Ok(())
    }

    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        status: &[Status],
        steps: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        self.status[chunk].copy_from_slice(status);
        for c in steps.unwrap_or(&[]) {
            self.steps.accepted += c.accepted as u64;
            self.steps.rejected += c.rejected as u64;
            self.steps.max_attempts = self.steps.max_attempts.max(c.attempts());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ode::events::EventLog;

    #[test]
    fn keeps_the_observed_state_of_the_section_records_only() {
        // Two trajectories of a 2-state system, K = 3; event 0 is the system's own, event 1
        // the section.
        let mut log = EventLog::empty(2, 3, 2);
        let recs = [
            // trajectory 0: own event, two section crossings
            [0.5, 0.0, 9.0, 9.0],
            [1.0, 1.0, 1.5, 27.0],
            [2.0, 1.0, 2.5, 27.0],
            // trajectory 1: one section crossing
            [0.7, 1.0, -3.0, 27.0],
        ];
        log.counts = vec![5, 1];
        let w = 4;
        for (r, rec) in recs[..3].iter().enumerate() {
            log.records[r * w..(r + 1) * w].copy_from_slice(rec);
        }
        log.records[3 * w..4 * w].copy_from_slice(&recs[3]);
        let mut c = Collector::new(4, 1, 0);
        c.results(2..4, &ChunkResults::Events(log)).unwrap();
        c.chunk_done(2..4, &[Status::Success, Status::NonFinite], None)
            .unwrap();
        assert_eq!(c.points[2], vec![1.5, 2.5]);
        assert_eq!(c.points[3], vec![-3.0]);
        assert!(c.points[0].is_empty());
        assert_eq!(c.fired, vec![0, 0, 5, 1]);
        assert_eq!(c.status[3], Status::NonFinite);
        assert_eq!(c.status[0], Status::Running);
    }
}
