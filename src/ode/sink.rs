//! Where an ensemble run's results go as they come off the device. The runners hand every
//! batch of save slots and every finished chunk to a `Sink`; what happens then (gather in
//! memory, stream to disk, reduce) is the sink's business, so a run never needs its whole
//! output in memory unless the caller asks for that.

use super::device::{Precision, SaveBatch};
use super::error::{SimError, SinkError};
use super::events::EventLog;
use super::results::ChunkResults;
use super::solution::{RunStats, Solution, StateValues, Status, StepCounts};
use super::stage::DeviceStage;
use crate::model::System;
use std::ops::Range;

pub trait Sink {
    /// One batch of save slots of one chunk, in the device layout (see `SaveBatch`).
    /// Batches of a chunk arrive in slot order; chunks arrive in trajectory order. Sinks
    /// that only follow chunks (tallies, progress, checkpoints) keep this default.
    fn saves(&mut self, _batch: &SaveBatch) -> Result<(), SinkError> {
        Ok(())
    }

    /// A chunk has finished: its statuses, and its step counts for adaptive runs. Comes
    /// after all of the chunk's batches.
    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        status: &[Status],
        steps: Option<&[StepCounts]>,
    ) -> Result<(), SinkError>;

    /// A chunk's per-trajectory results beyond statuses and step counts (event logs,
    /// exponents), for families that have them. Comes after the chunk's batches and
    /// before its `chunk_done`. Sinks that do not use them keep this default.
    fn results(&mut self, _chunk: Range<usize>, _results: &ChunkResults) -> Result<(), SinkError> {
        Ok(())
    }

    /// A reduction of the saves for the device to do instead of reading them back (see
    /// `stage`), asked for once when a run starts. With one, the runner never calls
    /// `saves`: it hands each chunk's stage output to `staged` instead.
    fn device_stage(&mut self) -> Option<Box<dyn DeviceStage>> {
        None
    }

    /// A chunk's stage output, as `DeviceStage::output_bytes` read back for rows `stride`
    /// long. Comes after the chunk's batches and before its `chunk_done`.
    fn staged(
        &mut self,
        _chunk: Range<usize>,
        _stride: usize,
        _bytes: &[u8],
    ) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Several sinks fed the same results, in order.
pub struct FanOut<'a>(pub Vec<&'a mut dyn Sink>);

impl Sink for FanOut<'_> {
    fn saves(&mut self, batch: &SaveBatch) -> Result<(), SinkError> {
        self.0.iter_mut().try_for_each(|s| s.saves(batch))
    }

    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        status: &[Status],
        steps: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        self.0
            .iter_mut()
            .try_for_each(|s| s.chunk_done(chunk.clone(), status, steps))
    }

    fn results(&mut self, chunk: Range<usize>, results: &ChunkResults) -> Result<(), SinkError> {
        self.0
            .iter_mut()
            .try_for_each(|s| s.results(chunk.clone(), results))
    }
}

/// Runs `run` into a `MemorySink` and returns the gathered `Solution`.
pub fn gather(
    system: &System,
    n: usize,
    times: Vec<f64>,
    precision: Precision,
    run: impl FnOnce(&mut dyn Sink) -> Result<RunStats, SimError>,
) -> Result<Solution, SimError> {
    let dim = system.dim();
    let mut sink = MemorySink::new(n, dim, times.len(), precision);
    let stats = run(&mut sink)?;
    let names = system.states.iter().map(|v| v.name.clone()).collect();
    Ok(sink.into_solution(dim, names, times, stats))
}

/// Gathers everything into a `Solution` (memory grows with N × saves).
pub struct MemorySink {
    states: StateValues,
    status: Vec<Status>,
    steps: Option<Vec<StepCounts>>,
    events: Option<EventLog>,
}

impl MemorySink {
    pub fn new(n: usize, dim: usize, n_slots: usize, precision: Precision) -> MemorySink {
        MemorySink {
            states: StateValues::nan(precision, n_slots * n * dim),
            status: vec![Status::Running; n],
            steps: None,
            events: None,
        }
    }

    pub fn into_solution(
        self,
        dim: usize,
        state_names: Vec<String>,
        times: Vec<f64>,
        stats: RunStats,
    ) -> Solution {
        Solution {
            n: self.status.len(),
            dim,
            state_names,
            times,
            states: self.states,
            status: self.status,
            steps: self.steps,
            stats,
            events: self.events,
        }
    }
}

impl Sink for MemorySink {
    fn saves(&mut self, batch: &SaveBatch) -> Result<(), SinkError> {
        batch.scatter(&mut self.states);
        Ok(())
    }

    fn results(&mut self, chunk: Range<usize>, results: &ChunkResults) -> Result<(), SinkError> {
        if let ChunkResults::Events(log) = results {
            let n = self.status.len();
            self.events
                .get_or_insert_with(|| EventLog::empty(n, log.k, log.dim))
                .place(chunk.start, log);
        }
        Ok(())
    }

    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        status: &[Status],
        steps: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        self.status[chunk.clone()].copy_from_slice(status);
        if let Some(steps) = steps {
            let n = self.status.len();
            self.steps
                .get_or_insert_with(|| vec![StepCounts::default(); n])[chunk]
                .copy_from_slice(steps);
        }
        Ok(())
    }
}

/// Counts statuses and step totals only: what a summary needs, in constant memory.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub status: [usize; 7],
    pub accepted: u64,
    pub rejected: u64,
    pub rhs_evals: u64,
    /// Jacobian evaluations (stiff solvers).
    pub jacobians: u64,
    /// Trajectories that switched method at least once, and switches in all (`auto`).
    pub switched: u64,
    pub switches: u64,
    pub max_attempts: u64,
    pub trajectories: usize,
    /// Events fired (after the transient) and records kept, over all trajectories.
    pub events_fired: u64,
    pub events_recorded: u64,
}

impl Sink for Tally {
    fn chunk_done(
        &mut self,
        _: Range<usize>,
        status: &[Status],
        steps: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        for s in status {
            self.status[*s as usize] += 1;
        }
        self.trajectories += status.len();
        for c in steps.unwrap_or(&[]) {
            self.accepted += c.accepted as u64;
            self.rejected += c.rejected as u64;
            self.rhs_evals += c.rhs_evals as u64;
            self.jacobians += c.jacobians as u64;
            self.switches += c.switches as u64;
            self.switched += u64::from(c.switches > 0);
            self.max_attempts = self.max_attempts.max(c.attempts());
        }
        Ok(())
    }

    fn results(&mut self, _: Range<usize>, results: &ChunkResults) -> Result<(), SinkError> {
        self.count_events(results);
        Ok(())
    }
}

impl Tally {
    /// Counts a chunk's events (see `Sink::results`).
    fn count_events(&mut self, results: &ChunkResults) {
        if let ChunkResults::Events(log) = results {
            let (fired, kept) = log.totals();
            self.events_fired += fired;
            self.events_recorded += kept;
        }
    }

    /// Statuses with non-zero counts, in code order.
    pub fn status_counts(&self) -> Vec<(Status, usize)> {
        Status::nonzero(self.status)
    }
}
