//! Multiple shooting (van Domselaar & Hemker 1975, Bock 1981): for chaotic systems and
//! long windows, where the cost of a single trajectory through all observations has
//! countless local minima (a trajectory started with parameters a little off leaves the
//! data's trajectory after a few Lyapunov times, and no small step brings it back).
//!
//! The window is cut at observation times into K segments. Segment 0 starts where the
//! run does, from the model's initial state; segment k ≥ 1 starts at its first
//! observation time τ_k from a state s_k of its own, fitted beside the parameters and first
//! set from the data there (or, for states not observed there, from a run of the model at
//! the starting values). Each segment is integrated over its own window only, so no error
//! in the parameters grows for longer than one segment, and the residuals are the
//! observations' as before plus, at each segment's end, the continuity defect
//! u_k(τ_{k+1}) − s_{k+1}, weighted `CONTINUITY_WEIGHT` times the state's weight: a
//! penalty that the fit drives to about zero, where the segments join into one trajectory.
//! Every segment is one GPU run over the fits still going, with the sensitivities to the
//! fitted parameters and to the segment's start, whose saves fold into each fit's normal
//! equations (n_fit + (K−1)·dim unknowns, sparse rows) as they arrive.
//!
//! Levenberg–Marquardt runs on that enlarged problem (`driver`); then the single-shooting
//! fit starts from its parameters and finishes, so that
//! the values, costs, statuses and covariances reported are those of the original least-
//! squares problem, with no trace of the penalty. Segments each window separately, so a
//! non-autonomous system (one whose right-hand side reads t) is integrated at its own times.

use super::driver::{self, Fits};
use super::fold::Folding;
use super::lm::Normal;
use super::{
    Estimate, EstimateError, EstimationProblem, enough, evaluate, into_estimate, observed_slots,
    run_problem, starts, states_and_params,
};
use crate::gpu::GpuContext;
use crate::ode::device::SaveBatch;
use crate::ode::error::SinkError;
use crate::ode::options::RunOptions;
use crate::ode::sensitivity::{Sensitivities, Target, augment};
use crate::ode::sink::Sink;
use crate::ode::solution::{Status, StepCounts};
use std::ops::Range;

/// The weight of a continuity defect, relative to an observation of the same state: large
/// enough that the segments join to well within the noise, small enough that the first
/// iterations, whose defects are large, can still move the parameters.
pub const CONTINUITY_WEIGHT: f64 = 100.0;

/// One segment of the window: integrated from `t0` to `t1`, holding observations `obs`
/// (indices into the observation times); every segment but the last ends where the next
/// starts, at the next one's first observation.
#[derive(Debug, Clone, PartialEq)]
struct Segment {
    t0: f64,
    t1: f64,
    obs: Range<usize>,
    continues: bool,
}

/// The K segments of `ep`'s window: segment k ≥ 1 starts at observation ⌊k·n_obs/K⌋, so
/// that every segment holds at least two observation times.
fn segments(ep: &EstimationProblem, k: usize) -> Result<Vec<Segment>, EstimateError> {
    let times = &ep.observations.times;
    let n_obs = times.len();
    // One segment is single shooting, whatever the number of observations.
    if k == 0 || (k > 1 && k > n_obs / 2) {
        return Err(EstimateError::Input(format!(
            "{k} shooting segments: give at least 1, and at most {} so that each holds at \
             least two of the {n_obs} observation times",
            n_obs / 2
        )));
    }
    let first = |s: usize| s * n_obs / k;
    let (t0, t_end) = ep.problem.span();
    Ok((0..k)
        .map(|s| {
            let obs = first(s)..if s + 1 < k { first(s + 1) } else { n_obs };
            Segment {
                t0: if s == 0 { t0 } else { times[obs.start] },
                t1: if s + 1 < k { times[obs.end] } else { t_end },
                obs,
                continues: s + 1 < k,
            }
        })
        .collect())
}

/// Fits every trajectory by multiple shooting over `segments` segments (see the module
/// comment); one segment is single shooting, `super::estimate` itself.
pub fn estimate_shooting(
    ctx: &GpuContext,
    ep: &EstimationProblem,
    segments: usize,
    options: &RunOptions,
) -> Result<Estimate, EstimateError> {
    if segments == 1 {
        return super::estimate(ctx, ep, options);
    }
    ep.check()?;
    let segs = self::segments(ep, segments)?;
    let started = std::time::Instant::now();
    let layout = Layout::new(ep, segs);
    let enough = enough(ep);
    let theta = starts(ep);
    let start = layout.starting_points(ctx, ep, &theta, &enough, options)?;
    let mut bounds = ep.bounds.clone();
    bounds.resize(layout.n_unknowns(), (f64::NEG_INFINITY, f64::INFINITY));
    let shooting =
        driver::levenberg_marquardt(start, &enough, &bounds, ep.stopping, |active, points| {
            layout.evaluate(ctx, ep, active, points, options)
        })?;
    let n_fit = ep.targets.len();
    let theta: Vec<Vec<f64>> = shooting.x.iter().map(|x| x[..n_fit].to_vec()).collect();
    let finish =
        driver::levenberg_marquardt(theta, &enough, &ep.bounds, ep.stopping, |active, points| {
            evaluate(
                ctx,
                ep,
                (active, points),
                options,
                Folding::for_device(ctx, ep.targets.len()),
            )
        })?;
    let k = layout.segs.len();
    let fits = Fits {
        iterations: finish
            .iterations
            .iter()
            .zip(&shooting.iterations)
            .map(|(a, b)| a + b)
            .collect(),
        // One run for the starting states, then one per segment for each evaluation.
        runs: 1 + k * shooting.runs + finish.runs,
        trajectory_runs: enough.iter().filter(|e| **e).count()
            + k * shooting.trajectory_runs
            + finish.trajectory_runs,
        ..finish
    };
    Ok(into_estimate(ep, fits, started))
}

/// Where the unknowns of a multiple-shooting fit are: the fitted quantities (n_fit), then
/// each segment's start after the first (dim each).
struct Layout {
    segs: Vec<Segment>,
    n_fit: usize,
    dim: usize,
    /// The sensitivities every segment run computes: the fitted parameters, then every
    /// state's initial value.
    targets: Vec<Target>,
    /// Each continuity defect's weight, per state.
    continuity: Vec<f64>,
}

impl Layout {
    fn new(ep: &EstimationProblem, segs: Vec<Segment>) -> Layout {
        let dim = ep.problem.system().dim();
        let mut targets: Vec<Target> = ep
            .targets
            .iter()
            .filter(|t| matches!(t, Target::Param(_)))
            .copied()
            .collect();
        targets.extend((0..dim).map(Target::Initial));
        // A state the data do not see (weight 0) still has to join up.
        let w = &ep.observations.weights;
        let largest = w.iter().copied().fold(0.0, f64::max);
        let continuity = w
            .iter()
            .map(|&w| CONTINUITY_WEIGHT * if w > 0.0 { w } else { largest })
            .collect();
        Layout {
            segs,
            n_fit: ep.targets.len(),
            dim,
            targets,
            continuity,
        }
    }

    fn n_unknowns(&self) -> usize {
        self.n_fit + (self.segs.len() - 1) * self.dim
    }

    /// Where segment `k`'s start s_k sits among the unknowns (k ≥ 1).
    fn start_of(&self, k: usize) -> usize {
        self.n_fit + (k - 1) * self.dim
    }

    /// The unknown each sensitivity column of segment `k` is the derivative by: a fitted
    /// parameter's, the segment's start (k ≥ 1) or a fitted initial value (k = 0), or none
    /// (an initial value segment 0 does not fit).
    fn columns(&self, ep: &EstimationProblem, k: usize) -> Vec<Option<usize>> {
        let fitted = |t: Target| ep.targets.iter().position(|f| *f == t);
        self.targets
            .iter()
            .map(|&t| match t {
                Target::Param(_) => fitted(t),
                Target::Initial(_) if k == 0 => fitted(t),
                Target::Initial(i) => Some(self.start_of(k) + i),
            })
            .collect()
    }

    /// Each fit's first point: its starting values, then each segment's start from the
    /// data observed there and, for states not observed, from one run of the model at the
    /// starting values (0 where that run has no finite value).
    fn starting_points(
        &self,
        ctx: &GpuContext,
        ep: &EstimationProblem,
        theta: &[Vec<f64>],
        enough: &[bool],
        options: &RunOptions,
    ) -> Result<Vec<Vec<f64>>, EstimateError> {
        let all: Vec<usize> = (0..theta.len()).filter(|&j| enough[j]).collect();
        let taus: Vec<f64> = self.segs[1..].iter().map(|s| s.t0).collect();
        let mut simulated = vec![f64::NAN; theta.len() * taus.len() * self.dim];
        if !all.is_empty() {
            let points: Vec<Vec<f64>> = all.iter().map(|&j| theta[j].clone()).collect();
            let (states, params) = states_and_params(ep, &all, &points);
            let problem = run_problem(ep, &all, states, params, None, taus.clone())?;
            let slots = observed_slots(&problem.save_times()?, &taus)?;
            let sol = problem.simulate(ctx, options)?;
            if sol.stats.completed < all.len() {
                return Err(EstimateError::Cancelled);
            }
            for (slot, o) in slots.iter().enumerate() {
                let Some(o) = *o else { continue };
                for (a, &j) in all.iter().enumerate() {
                    let at = (j * taus.len() + o) * self.dim;
                    simulated[at..at + self.dim].copy_from_slice(&sol.state(slot, a));
                }
            }
        }
        let obs = &ep.observations;
        let n_obs = obs.times.len();
        Ok(theta
            .iter()
            .enumerate()
            .map(|(j, th)| {
                let mut x = th.clone();
                for (o, seg) in self.segs[1..].iter().enumerate() {
                    for i in 0..self.dim {
                        let y = obs.values[(j * n_obs + seg.obs.start) * self.dim + i];
                        let u = simulated[(j * taus.len() + o) * self.dim + i];
                        x.push(if !y.is_nan() && obs.weights[i] > 0.0 {
                            y
                        } else if u.is_finite() {
                            u
                        } else {
                            0.0
                        });
                    }
                }
                x
            })
            .collect())
    }

    /// The normal equations of fits `active` at `points`: one run per segment.
    fn evaluate(
        &self,
        ctx: &GpuContext,
        ep: &EstimationProblem,
        active: &[usize],
        points: &[Vec<f64>],
        options: &RunOptions,
    ) -> Result<Vec<Option<Normal>>, EstimateError> {
        let theta: Vec<Vec<f64>> = points.iter().map(|x| x[..self.n_fit].to_vec()).collect();
        let (first_states, params) = states_and_params(ep, active, &theta);
        let mut normals = vec![Normal::zero(self.n_unknowns()); active.len()];
        let mut ok = vec![true; active.len()];
        let times = &ep.observations.times;
        let sens = Sensitivities {
            targets: self.targets.clone(),
            error_control: ep.error_control,
        };
        for (k, seg) in self.segs.iter().enumerate() {
            let states = if k == 0 {
                first_states.clone()
            } else {
                let at = self.start_of(k);
                points
                    .iter()
                    .flat_map(|x| x[at..at + self.dim].iter().copied())
                    .collect()
            };
            let mut saves = times[seg.obs.clone()].to_vec();
            if seg.continues {
                saves.push(seg.t1);
            }
            let problem = run_problem(
                ep,
                active,
                states,
                params.clone(),
                Some((seg.t0, seg.t1)),
                saves,
            )?;
            let run = augment(&problem, &sens)?;
            let save_times = run.problem.save_times()?;
            let observed = observed_slots(&save_times, &times[seg.obs.clone()])?;
            let end = if seg.continues {
                observed_slots(&save_times, &[seg.t1])?
                    .iter()
                    .position(Option::is_some)
            } else {
                None
            };
            let roles = observed
                .iter()
                .enumerate()
                .map(|(slot, o)| match o {
                    Some(o) => Some(Role::Observation(seg.obs.start + o)),
                    None if Some(slot) == end => Some(Role::Continuity),
                    None => None,
                })
                .collect();
            let mut sink = SegmentSink {
                ep,
                layout: self,
                k,
                active,
                points,
                roles,
                columns: self.columns(ep, k),
                normals: &mut normals,
                ok: &mut ok,
                index: Vec::new(),
                value: Vec::new(),
            };
            let stats = run.problem.run_into(ctx, options, &mut sink)?;
            if stats.completed < active.len() {
                return Err(EstimateError::Cancelled);
            }
        }
        Ok(normals
            .into_iter()
            .zip(ok)
            .map(|(n, ok)| ok.then_some(n))
            .collect())
    }
}

/// What a segment run's save slot is for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    /// The values of observation `o` (an index into all the observation times).
    Observation(usize),
    /// The segment's end, to join the next segment's start.
    Continuity,
}

/// Folds one segment run's saves into the fits' normal equations.
struct SegmentSink<'a> {
    ep: &'a EstimationProblem,
    layout: &'a Layout,
    k: usize,
    active: &'a [usize],
    points: &'a [Vec<f64>],
    roles: Vec<Option<Role>>,
    columns: Vec<Option<usize>>,
    normals: &'a mut [Normal],
    ok: &'a mut [bool],
    index: Vec<usize>,
    value: Vec<f64>,
}

impl SegmentSink<'_> {
    /// The gradient row of state `i` of the run's trajectory `local` at `s_local`, scaled
    /// by `scale`, as (unknown, value) pairs in `index`/`value`.
    fn row(&mut self, batch: &SaveBatch, s_local: usize, local: usize, i: usize, scale: f64) {
        let (dim, n_sens) = (self.layout.dim, self.columns.len());
        self.index.clear();
        self.value.clear();
        for (c, col) in self.columns.iter().enumerate() {
            if let Some(col) = *col {
                self.index.push(col);
                self.value
                    .push(scale * batch.get(s_local, dim + i * n_sens + c, local));
            }
        }
    }
}

impl Sink for SegmentSink<'_> {
    fn saves(&mut self, batch: &SaveBatch) -> Result<(), SinkError> {
        let obs = &self.ep.observations;
        let dim = self.layout.dim;
        let n_obs = obs.times.len();
        for (s_local, slot) in batch.slots.clone().enumerate() {
            let Some(role) = self.roles[slot] else {
                continue;
            };
            for (local, run_j) in batch.chunk.clone().enumerate() {
                for i in 0..dim {
                    let u = batch.get(s_local, i, local);
                    let (sw, target) = match role {
                        Role::Observation(o) => {
                            let fit = self.active[run_j];
                            let y = obs.values[(fit * n_obs + o) * dim + i];
                            if y.is_nan() || obs.weights[i] == 0.0 {
                                continue;
                            }
                            (obs.weights[i].sqrt(), y)
                        }
                        Role::Continuity => {
                            let next = self.layout.start_of(self.k + 1) + i;
                            (self.layout.continuity[i].sqrt(), self.points[run_j][next])
                        }
                    };
                    self.row(batch, s_local, local, i, sw);
                    if role == Role::Continuity {
                        self.index.push(self.layout.start_of(self.k + 1) + i);
                        self.value.push(-sw);
                    }
                    self.normals[run_j].add_sparse(sw * (u - target), &self.index, &self.value);
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
            self.ok[j] &= *s == Status::Success;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(times: Vec<f64>) -> EstimationProblem {
        let spec: crate::spec::RunSpec = toml::from_str(
            "system = 'lorenz'\nn = 2\ntspan = [0.0, 2.0]\nsolver = 'tsit5'\nrtol = 1e-8",
        )
        .unwrap();
        let problem = crate::spec::build_problem(&spec).unwrap();
        let n_obs = times.len();
        EstimationProblem {
            targets: vec![Target::Param(1)],
            bounds: vec![(1.0, 60.0)],
            start: super::super::Start::Same(vec![28.0]),
            observations: super::super::Observations {
                times,
                values: vec![0.0; 2 * n_obs * 3],
                weights: vec![1.0, 1.0, 0.0],
            },
            error_control: Default::default(),
            stopping: super::super::Stopping::for_precision(problem.precision()),
            problem,
        }
    }

    /// Seven observations in three segments: starts at observations 0 (the span's start),
    /// 2 and 4; each segment ends at the next one's first observation, the last at the
    /// span's end. A state with weight 0 still joins with the largest weight.
    #[test]
    fn segments_start_at_observations_and_join_the_next() {
        let ep = problem(vec![0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]);
        let segs = segments(&ep, 3).unwrap();
        let want = [
            (0.0, 0.75, 0..2, true),
            (0.75, 1.25, 2..4, true),
            (1.25, 2.0, 4..7, false),
        ];
        for (s, (t0, t1, obs, continues)) in segs.iter().zip(want) {
            assert_eq!(
                *s,
                Segment {
                    t0,
                    t1,
                    obs,
                    continues
                }
            );
        }
        let layout = Layout::new(&ep, segs);
        assert_eq!(layout.n_unknowns(), 1 + 2 * 3);
        assert_eq!(layout.continuity, [100.0, 100.0, 100.0]);
        // ρ, then x0, y0, z0: segment 0 fits none of the initial values; segment 2's start
        // is unknowns 4..7.
        assert_eq!(layout.columns(&ep, 0), [Some(0), None, None, None]);
        assert_eq!(layout.columns(&ep, 2), [Some(0), Some(4), Some(5), Some(6)]);
        let err = segments(&ep, 4).unwrap_err().to_string();
        assert!(err.contains("at most 3"), "{err}");
        assert!(segments(&ep, 0).is_err());
        assert!(segments(&ep, usize::MAX).is_err());
        // One segment needs no second observation.
        assert_eq!(segments(&problem(vec![1.0]), 1).unwrap().len(), 1);
    }
}
