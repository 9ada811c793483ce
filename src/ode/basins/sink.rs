//! The sink that labels trajectories as their chunks come off the device: per trajectory of
//! the chunk in flight, the minimum and maximum of each state over the saves in the window
//! and the final state; when the chunk is done, each trajectory is classified in grid order.
//! Host memory: 3 × chunk × dim values, one label per grid point, and the attractors.

use super::classify::{Classes, ClassifyError, Clusters, DIVERGED, Found};
use crate::model::Function;
use crate::ode::device::SaveBatch;
use crate::ode::error::SinkError;
use crate::ode::sink::Sink;
use crate::ode::solution::{Status, StepCounts};
use crate::precision::Precision;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How the sink turns a trajectory into a label.
#[derive(Debug, Clone)]
pub enum Labeller {
    /// Features over the window, matched to representatives; trajectories whose features
    /// leave `escape` (|value| above it) diverge.
    Features {
        clusters: Clusters,
        escape: Option<f64>,
    },
    /// An expression of the final state and the parameters (`params`), rounded.
    Expression {
        function: Function,
        params: Vec<f64>,
        classes: Classes,
    },
}

/// What a finished sink holds: provisional labels (`DIVERGED` or the order of appearance),
/// the attractors sorted, and `renumber[provisional]`, each one's final label.
pub struct Labelled {
    pub labels: Vec<i32>,
    pub found: Vec<Found>,
    pub renumber: Vec<i32>,
}

pub struct BasinsSink {
    labeller: Labeller,
    dim: usize,
    /// Save slots from this one on are in the window; the last slot is the final state.
    first_in_window: usize,
    n_slots: usize,
    chunk_start: usize,
    lo: Vec<f64>,
    hi: Vec<f64>,
    last: Vec<f64>,
    /// Provisional labels (order of appearance) for every grid point.
    labels: Vec<i32>,
    error: Option<ClassifyError>,
    /// Set when classification fails, so the runner stops submitting work.
    stop: Arc<AtomicBool>,
}

impl BasinsSink {
    /// A sink for `n` trajectories of `dim` states whose saves are at `times`, of which
    /// those at or after `window_start` make the features.
    pub fn new(
        labeller: Labeller,
        n: usize,
        dim: usize,
        times: &[f64],
        window_start: f64,
        stop: Arc<AtomicBool>,
    ) -> BasinsSink {
        // The final save is always in the window, however rounding put the window's start.
        let first_in_window = times
            .iter()
            .position(|&t| t >= window_start)
            .unwrap_or(times.len().saturating_sub(1));
        BasinsSink {
            labeller,
            dim,
            first_in_window,
            n_slots: times.len(),
            chunk_start: usize::MAX,
            lo: Vec::new(),
            hi: Vec::new(),
            last: Vec::new(),
            labels: vec![DIVERGED; n],
            error: None,
            stop,
        }
    }

    fn reset(&mut self, chunk: &Range<usize>) {
        let len = chunk.len() * self.dim;
        self.chunk_start = chunk.start;
        self.lo = vec![f64::INFINITY; len];
        self.hi = vec![f64::NEG_INFINITY; len];
        self.last = vec![f64::NAN; len];
    }

    /// The labels and attractors, or the classification's error.
    pub fn finish(self) -> Result<Labelled, ClassifyError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let (found, renumber) = match self.labeller {
            Labeller::Features { clusters, .. } => clusters.finish(),
            Labeller::Expression { classes, .. } => classes.finish(),
        };
        Ok(Labelled {
            labels: self.labels,
            found,
            renumber,
        })
    }

    /// Folds one save slot's values (the chunk's, [trajectory][component]) into the window
    /// extremes, and keeps them as the final state if it is the last slot.
    fn update(&mut self, values: impl Iterator<Item = f64>, is_last: bool) {
        for (k, v) in values.enumerate() {
            // A NaN anywhere in the window makes the features NaN: such a trajectory
            // diverged, whatever its other values.
            if v.is_nan() || self.lo[k].is_nan() {
                self.lo[k] = f64::NAN;
                self.hi[k] = f64::NAN;
            } else {
                self.lo[k] = self.lo[k].min(v);
                self.hi[k] = self.hi[k].max(v);
            }
            if is_last {
                self.last[k] = v;
            }
        }
    }

    fn classify(&mut self, index: usize, j: usize, status: Status) -> Result<i32, ClassifyError> {
        let d = self.dim;
        let last = &self.last[j * d..(j + 1) * d];
        match &mut self.labeller {
            Labeller::Features { clusters, escape } => {
                if status != Status::Success {
                    return Ok(clusters.diverged());
                }
                let mut features = Vec::with_capacity(2 * d);
                features.extend_from_slice(&self.lo[j * d..(j + 1) * d]);
                features.extend_from_slice(&self.hi[j * d..(j + 1) * d]);
                if let Some(r) = escape
                    && features.iter().any(|v| v.abs() > *r)
                {
                    return Ok(clusters.diverged());
                }
                clusters.assign(index, &features, last)
            }
            Labeller::Expression {
                function,
                params,
                classes,
            } => {
                if status != Status::Success {
                    return Ok(DIVERGED);
                }
                let mut inputs = last.to_vec();
                inputs.extend_from_slice(params);
                classes.assign(index, function.eval(&inputs), last)
            }
        }
    }
}

impl Sink for BasinsSink {
    fn saves(&mut self, batch: &SaveBatch) -> Result<(), SinkError> {
        if batch.chunk.start != self.chunk_start {
            self.reset(&batch.chunk);
        }
        for (s_local, s) in batch.slots.clone().enumerate() {
            if s < self.first_in_window {
                continue;
            }
            // The slot's [trajectory][component] values are laid out as lo, hi and last
            // are: one pass over the bytes, no per-value dispatch on the precision.
            let bytes = batch.slot(s_local);
            match batch.precision {
                Precision::F32 => self.update(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")) as f64),
                    s + 1 == self.n_slots,
                ),
                Precision::F64 => self.update(
                    bytes
                        .chunks_exact(8)
                        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))),
                    s + 1 == self.n_slots,
                ),
            }
        }
        Ok(())
    }

    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        status: &[Status],
        _: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        if chunk.start != self.chunk_start {
            self.reset(&chunk);
        }
        if self.error.is_some() {
            return Ok(());
        }
        for (j, &st) in status.iter().enumerate() {
            match self.classify(chunk.start + j, j, st) {
                Ok(label) => self.labels[chunk.start + j] = label,
                Err(e) => {
                    // The run cannot succeed any more: stop it (work in flight is still
                    // consumed, and ignored here).
                    self.error = Some(e);
                    self.stop.store(true, Ordering::Relaxed);
                    return Ok(());
                }
            }
        }
        // The next chunk starts afresh, even if it has the same first trajectory (a rerun).
        self.chunk_start = usize::MAX;
        Ok(())
    }
}
