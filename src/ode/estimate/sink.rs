//! Folds an augmented run's saves (states and sensitivities) at the observation times into
//! each fit's normal equations as chunks arrive.

use super::lm::Normal;
use super::problem::EstimationProblem;
use crate::ode::device::SaveBatch;
use crate::ode::error::SinkError;
use crate::ode::sink::Sink;
use crate::ode::solution::{Status, StepCounts};
use std::ops::Range;

pub(super) struct ObservationSink<'a> {
    ep: &'a EstimationProblem,
    /// The run's trajectory i is fit `active[i]`.
    active: &'a [usize],
    /// The observation each save slot holds, if any.
    of_slot: Vec<Option<usize>>,
    normals: Vec<Normal>,
    ok: Vec<bool>,
    row: Vec<f64>,
}

impl<'a> ObservationSink<'a> {
    pub fn new(
        ep: &'a EstimationProblem,
        active: &'a [usize],
        of_slot: Vec<Option<usize>>,
    ) -> ObservationSink<'a> {
        let n_fit = ep.targets.len();
        ObservationSink {
            ep,
            active,
            of_slot,
            normals: vec![Normal::zero(n_fit); active.len()],
            ok: vec![false; active.len()],
            row: vec![0.0; n_fit],
        }
    }

    /// Each fit's normal equations, `None` where the integration did not succeed.
    pub fn into_normals(self) -> Vec<Option<Normal>> {
        self.normals
            .into_iter()
            .zip(self.ok)
            .map(|(n, ok)| ok.then_some(n))
            .collect()
    }
}

impl Sink for ObservationSink<'_> {
    fn saves(&mut self, batch: &SaveBatch) -> Result<(), SinkError> {
        let obs = &self.ep.observations;
        let dim = obs.weights.len();
        let (n_obs, n_fit) = (obs.times.len(), self.ep.targets.len());
        for (s_local, slot) in batch.slots.clone().enumerate() {
            let Some(o) = self.of_slot[slot] else {
                continue;
            };
            for (local, run_j) in batch.chunk.clone().enumerate() {
                let fit = self.active[run_j];
                for i in 0..dim {
                    let y = obs.values[(fit * n_obs + o) * dim + i];
                    if y.is_nan() || obs.weights[i] == 0.0 {
                        continue;
                    }
                    let sw = obs.weights[i].sqrt();
                    let r = sw * (batch.get(s_local, i, local) - y);
                    for k in 0..n_fit {
                        self.row[k] = sw * batch.get(s_local, dim + i * n_fit + k, local);
                    }
                    self.normals[run_j].add(r, &self.row);
                }
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
        for (j, s) in chunk.zip(status) {
            self.ok[j] = *s == Status::Success;
        }
        Ok(())
    }
}
