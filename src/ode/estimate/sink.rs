//! Folds an augmented run's saves (states and sensitivities) at the observation times into
//! each fit's normal equations as chunks arrive: on the host from the saves read back, or
//! on the device (`fold`), whose sums are what comes back.

use super::fold::{FoldData, FoldOutput, GROUP, NormalFold, normal_from_terms, twin};
use super::lm::Normal;
use super::problem::EstimationProblem;
use crate::ode::device::SaveBatch;
use crate::ode::error::SinkError;
use crate::ode::sink::Sink;
use crate::ode::solution::{Status, StepCounts};
use crate::ode::stage::DeviceStage;
use std::ops::Range;

pub(super) struct ObservationSink<'a> {
    ep: &'a EstimationProblem,
    /// The run's trajectory i is fit `active[i]`.
    active: &'a [usize],
    /// The observation each save slot holds, if any.
    of_slot: Vec<Option<usize>>,
    /// Where the device folds the saves, if it does (`None`: the host folds).
    device: Option<FoldOutput>,
    normals: Vec<Normal>,
    ok: Vec<bool>,
    row: Vec<f64>,
    /// A device fold into groups: each trajectory's cost, and each group's equations.
    costs: Vec<f64>,
    groups: Vec<Normal>,
}

/// A shared fit's run folded into groups: the groups' normal equations in trajectory
/// order, each trajectory's cost, and whether its integration succeeded.
pub(super) struct Grouped {
    pub groups: Vec<Normal>,
    pub costs: Vec<f64>,
    pub ok: Vec<bool>,
}

impl<'a> ObservationSink<'a> {
    /// A sink that folds on the host (`device` None) or has the device fold.
    pub fn new(
        ep: &'a EstimationProblem,
        active: &'a [usize],
        of_slot: Vec<Option<usize>>,
        device: Option<FoldOutput>,
    ) -> ObservationSink<'a> {
        let n_fit = ep.targets.len();
        let per_trajectory = device != Some(FoldOutput::Groups);
        ObservationSink {
            ep,
            active,
            of_slot,
            device,
            normals: if per_trajectory {
                vec![Normal::zero(n_fit); active.len()]
            } else {
                Vec::new()
            },
            ok: vec![false; active.len()],
            row: vec![0.0; n_fit],
            costs: vec![f64::NAN; if per_trajectory { 0 } else { active.len() }],
            groups: Vec::new(),
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

    /// What a device fold into groups gave.
    pub fn into_grouped(self) -> Grouped {
        Grouped {
            groups: self.groups,
            costs: self.costs,
            ok: self.ok,
        }
    }

    /// Observed values of the run's trajectory `j`.
    fn count(&self, j: usize) -> usize {
        self.ep.observed(self.active[j])
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

    fn device_stage(&mut self) -> Option<Box<dyn DeviceStage>> {
        let output = self.device?;
        let obs = &self.ep.observations;
        let (dim, n_obs) = (obs.weights.len(), obs.times.len());
        let values = self
            .active
            .iter()
            .flat_map(|&fit| obs.values[fit * n_obs * dim..(fit + 1) * n_obs * dim].iter())
            .copied()
            .collect();
        let data = FoldData {
            dim,
            n_fit: self.ep.targets.len(),
            values,
            n_obs,
            weights: obs.weights.clone(),
            slot_observation: self.of_slot.clone(),
        };
        Some(Box::new(NormalFold::new(data, output)))
    }

    fn staged(
        &mut self,
        chunk: Range<usize>,
        stride: usize,
        bytes: &[u8],
    ) -> Result<(), SinkError> {
        let n_fit = self.ep.targets.len();
        let terms = twin::terms(n_fit);
        let out: Vec<f64> = bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        match self.device {
            Some(FoldOutput::PerTrajectory) => {
                for (local, j) in chunk.enumerate() {
                    let row: Vec<f64> = (0..terms).map(|t| out[t * stride + local]).collect();
                    self.normals[j] = normal_from_terms(&row, n_fit, self.count(j));
                }
            }
            Some(FoldOutput::Groups) => {
                self.costs[chunk.clone()].copy_from_slice(&out[..chunk.len()]);
                for (g, first) in chunk.clone().step_by(GROUP).enumerate() {
                    let members = first..(first + GROUP).min(chunk.end);
                    let count = members.map(|j| self.count(j)).sum();
                    let at = stride + g * terms;
                    self.groups
                        .push(normal_from_terms(&out[at..at + terms], n_fit, count));
                }
            }
            None => {}
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
