//! Results of an ensemble run, in host memory.

use crate::precision::Precision;
use serde::Serialize;
use std::time::Duration;

/// How a trajectory ended. The codes are those written to `status.npy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Status {
    /// Not run: the trajectory was never integrated (a run stopped before its chunk was
    /// done; `status.npy` of an interrupted run holds 0 for those), or, inside a run, not
    /// finished yet.
    #[serde(rename = "not_run")]
    Running = 0,
    Success = 1,
    /// The step budget ran out before the end of the span (adaptive solvers).
    MaxSteps = 2,
    /// The step size fell below its minimum (adaptive solvers).
    StepUnderflow = 3,
    /// The state became NaN or infinite; saves from then on are NaN.
    NonFinite = 4,
    /// W = I/(hγ) − J had a zero pivot (stiff solvers).
    Singular = 5,
    /// An event with action "terminate" ended the trajectory; its final state is the state
    /// at the event, and saves after it are NaN. A success-like end.
    Terminated = 6,
}

/// `{"success": 998, "max_steps": 2}`: status counts by their snake_case names.
pub fn status_counts_json(counts: Vec<(Status, usize)>) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = counts
        .into_iter()
        .map(|(st, c)| {
            let name = serde_json::to_value(st).expect("a unit variant serialises");
            (name.as_str().unwrap_or("").to_string(), c.into())
        })
        .collect();
    serde_json::Value::Object(map)
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Running,
        Status::Success,
        Status::MaxSteps,
        Status::StepUnderflow,
        Status::NonFinite,
        Status::Singular,
        Status::Terminated,
    ];

    pub fn from_code(code: u32) -> Status {
        Status::ALL
            .into_iter()
            .find(|s| *s as u32 == code)
            .unwrap_or(Status::Running)
    }

    /// (status, count) for counts indexed by code, zero counts left out.
    pub fn nonzero(counts: [usize; 7]) -> Vec<(Status, usize)> {
        Status::ALL
            .into_iter()
            .zip(counts)
            .filter(|&(_, c)| c > 0)
            .collect()
    }

    pub fn describe(self) -> &'static str {
        match self {
            Status::Running => "not run",
            Status::Success => "succeeded",
            Status::MaxSteps => "hit max steps",
            Status::StepUnderflow => "had step size underflow",
            Status::NonFinite => "became non-finite",
            Status::Singular => "met a singular iteration matrix",
            Status::Terminated => "were terminated by an event",
        }
    }
}

/// Where the time went, for throughput figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunStats {
    /// Trajectory-steps: trajectories × steps for fixed-step runs, step attempts (accepted
    /// and rejected) summed over trajectories for adaptive ones.
    pub trajectory_steps: u64,
    /// Pipeline and buffer creation, once per run (kernel compilation included).
    pub setup: Duration,
    /// Of the setup: compiling the kernel (naga and the driver). Never part of `gpu`.
    pub compile: Duration,
    /// Wall time from the first upload to the last readback.
    pub solve: Duration,
    /// Sum of compute-pass times from GPU timestamps, where the adapter has them.
    pub gpu: Option<Duration>,
    /// Time the host spent consuming results (the sinks: scatter, transpose, write).
    pub host: Duration,
    pub chunks: usize,
    pub dispatches: usize,
    /// Trajectories `0..completed` are done: all of them unless the run was cancelled.
    pub completed: usize,
}

impl RunStats {
    /// Trajectory-steps per second of solve time.
    pub fn throughput(&self) -> f64 {
        self.trajectory_steps as f64 / self.solve.as_secs_f64().max(1e-12)
    }
}

/// Saved states in the run's precision.
#[derive(Debug, Clone, PartialEq)]
pub enum StateValues {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl StateValues {
    pub fn nan(precision: Precision, len: usize) -> StateValues {
        match precision {
            Precision::F32 => StateValues::F32(vec![f32::NAN; len]),
            Precision::F64 => StateValues::F64(vec![f64::NAN; len]),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StateValues::F32(v) => v.len(),
            StateValues::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> f64 {
        match self {
            StateValues::F32(v) => v[i] as f64,
            StateValues::F64(v) => v[i],
        }
    }

    pub fn precision(&self) -> Precision {
        match self {
            StateValues::F32(_) => Precision::F32,
            StateValues::F64(_) => Precision::F64,
        }
    }

    /// Bitwise equality (NaN equals NaN), for determinism checks.
    pub fn same_bits(&self, other: &StateValues) -> bool {
        match (self, other) {
            (StateValues::F32(a), StateValues::F32(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (StateValues::F64(a), StateValues::F64(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            _ => false,
        }
    }
}

/// Per-trajectory step statistics of an adaptive run, the columns of `stats.npy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct StepCounts {
    pub accepted: u32,
    pub rejected: u32,
    /// Right-hand-side evaluations, the initial-step heuristic's and dense output's included.
    pub rhs_evals: u32,
    /// Jacobian evaluations, each with one factorisation of W (stiff solvers; else 0).
    pub jacobians: u32,
    /// Switches between the explicit and the stiff method (`auto`; else 0).
    pub switches: u32,
}

impl StepCounts {
    /// Columns of `stats.npy` for the explicit families: accepted, rejected, rhs_evals.
    pub const COLUMNS: usize = 3;
    /// Columns for the stiff family: those three, then jacobians and switches.
    pub const STIFF_COLUMNS: usize = 5;

    pub fn attempts(&self) -> u64 {
        self.accepted as u64 + self.rejected as u64
    }

    /// The first `columns` (3 or 5) values of a `stats.npy` row.
    pub fn row(&self, columns: usize) -> impl Iterator<Item = u32> {
        [
            self.accepted,
            self.rejected,
            self.rhs_evals,
            self.jacobians,
            self.switches,
        ]
        .into_iter()
        .take(columns)
    }

    /// A `stats.npy` row back (3 or 5 values).
    pub fn from_row(w: &[u32]) -> StepCounts {
        let at = |i: usize| w.get(i).copied().unwrap_or(0);
        StepCounts {
            accepted: at(0),
            rejected: at(1),
            rhs_evals: at(2),
            jacobians: at(3),
            switches: at(4),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Solution {
    pub n: usize,
    pub dim: usize,
    pub state_names: Vec<String>,
    /// Time of each save slot.
    pub times: Vec<f64>,
    /// Row-major [n_save][n][dim].
    pub states: StateValues,
    pub status: Vec<Status>,
    /// Per trajectory, for adaptive runs.
    pub steps: Option<Vec<StepCounts>>,
    pub stats: RunStats,
    /// The event log of a system with events (`ode::events`), every trajectory.
    pub events: Option<crate::ode::events::EventLog>,
}

impl Solution {
    pub fn n_save(&self) -> usize {
        self.times.len()
    }

    /// State of trajectory `j` at save slot `s`.
    pub fn state(&self, s: usize, j: usize) -> Vec<f64> {
        let at = (s * self.n + j) * self.dim;
        (at..at + self.dim).map(|i| self.states.get(i)).collect()
    }

    pub fn final_state(&self, j: usize) -> Vec<f64> {
        self.state(self.n_save() - 1, j)
    }

    /// How many trajectories ended with each status, in code order, zero counts left out.
    pub fn status_counts(&self) -> Vec<(Status, usize)> {
        let mut counts = [0usize; 7];
        for s in &self.status {
            counts[*s as usize] += 1;
        }
        Status::nonzero(counts)
    }
}
