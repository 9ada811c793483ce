//! The augmented run's results split back into states and sensitivities.

use crate::ode::device::SaveBatch;
use crate::ode::error::SinkError;
use crate::ode::results::ChunkResults;
use crate::ode::sink::Sink;
use crate::ode::solution::{Solution, StateValues, Status, StepCounts};
use std::ops::Range;

/// Feeds `states` the first `dim` components of every saved row and `sens` the rest
/// (the row-major [dim, n_sens] matrix S), each as a batch of its own; statuses and step
/// counts go to both. Host memory: one batch of each.
pub struct SplitSink<'a> {
    dim: usize,
    states: &'a mut dyn Sink,
    sens: Option<&'a mut dyn Sink>,
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl<'a> SplitSink<'a> {
    /// `sens`: `None` drops the sensitivities (a run that keeps no saves).
    pub fn new(
        dim: usize,
        states: &'a mut dyn Sink,
        sens: Option<&'a mut dyn Sink>,
    ) -> SplitSink<'a> {
        SplitSink {
            dim,
            states,
            sens,
            head: Vec::new(),
            tail: Vec::new(),
        }
    }
}

impl Sink for SplitSink<'_> {
    fn saves(&mut self, batch: &SaveBatch) -> Result<(), SinkError> {
        let w = batch.precision.bytes() as usize;
        let (head_w, row_w) = (self.dim * w, batch.dim * w);
        let rows = batch.chunk.len();
        self.head.clear();
        self.tail.clear();
        for s_local in 0..batch.slots.len() {
            for row in batch.slot(s_local).chunks_exact(row_w).take(rows) {
                self.head.extend_from_slice(&row[..head_w]);
                self.tail.extend_from_slice(&row[head_w..]);
            }
        }
        // Compact batches: a slot's rows follow each other (stride = the chunk's length).
        fn part<'b>(batch: &SaveBatch, dim: usize, bytes: &'b [u8]) -> SaveBatch<'b> {
            SaveBatch {
                slots: batch.slots.clone(),
                chunk: batch.chunk.clone(),
                stride: batch.chunk.len(),
                n: batch.n,
                dim,
                precision: batch.precision,
                bytes,
            }
        }
        self.states.saves(&part(batch, self.dim, &self.head))?;
        let tail = part(batch, batch.dim - self.dim, &self.tail);
        match self.sens.as_mut() {
            Some(sens) => sens.saves(&tail),
            None => Ok(()),
        }
    }

    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        status: &[Status],
        steps: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        self.states.chunk_done(chunk.clone(), status, steps)?;
        match self.sens.as_mut() {
            Some(sens) => sens.chunk_done(chunk, status, steps),
            None => Ok(()),
        }
    }

    fn results(&mut self, chunk: Range<usize>, results: &ChunkResults) -> Result<(), SinkError> {
        self.states.results(chunk, results)
    }
}

/// An augmented run's solution as the states' solution and S, row-major
/// [n_save][n][dim][n_sens] in the run's precision.
pub fn split_solution(
    mut solution: Solution,
    dim: usize,
    state_names: Vec<String>,
) -> (Solution, StateValues) {
    let aug = solution.dim;
    let rows = solution.states.len() / aug.max(1);
    fn split<T: Copy>(v: &[T], aug: usize, dim: usize, rows: usize) -> (Vec<T>, Vec<T>) {
        let mut head = Vec::with_capacity(rows * dim);
        let mut tail = Vec::with_capacity(rows * (aug - dim));
        for row in v.chunks_exact(aug) {
            head.extend_from_slice(&row[..dim]);
            tail.extend_from_slice(&row[dim..]);
        }
        (head, tail)
    }
    let (states, sens) = match &solution.states {
        StateValues::F32(v) => {
            let (h, t) = split(v, aug, dim, rows);
            (StateValues::F32(h), StateValues::F32(t))
        }
        StateValues::F64(v) => {
            let (h, t) = split(v, aug, dim, rows);
            (StateValues::F64(h), StateValues::F64(t))
        }
    };
    solution.states = states;
    solution.dim = dim;
    solution.state_names = state_names;
    (solution, sens)
}
