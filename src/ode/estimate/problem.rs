//! What a set of fits is (model run, fitted quantities, bounds, starts, observations,
//! stopping rule), its checks before any work, and what the fits give back.

use crate::ode::any::Problem;
use crate::ode::error::SimError;
use crate::ode::sensitivity::{ErrorControl, SensitivityError, Target};
use thiserror::Error;

/// What was observed of each trajectory.
#[derive(Debug, Clone, PartialEq)]
pub struct Observations {
    /// Observation times, increasing, within the run's span.
    pub times: Vec<f64>,
    /// Row-major [N][n_obs][dim]; NaN marks a value not observed.
    pub values: Vec<f64>,
    /// Each state's weight in the cost (1 / its noise variance, when known).
    pub weights: Vec<f64>,
}

/// Where each fit starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// The same values for every trajectory, one per fitted quantity.
    Same(Vec<f64>),
    /// Row-major [N][n_fit].
    PerTrajectory(Vec<f64>),
}

/// When a fit stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stopping {
    pub max_iterations: u32,
    /// Converged when an accepted step lowers the cost by less than this fraction.
    pub ftol: f64,
    /// Converged when a step moves the fitted values by less than this, relative.
    pub xtol: f64,
}

impl Stopping {
    /// Defaults near what the precision can resolve: the cost itself carries the run's
    /// rounding (6e-8 relative in f32).
    pub fn for_precision(precision: crate::precision::Precision) -> Stopping {
        use crate::precision::Precision;
        let (ftol, xtol) = match precision {
            Precision::F64 => (1e-10, 1e-10),
            Precision::F32 => (1e-6, 1e-5),
        };
        Stopping {
            max_iterations: 50,
            ftol,
            xtol,
        }
    }
}

/// A set of fits: the model run, what to fit, the data.
#[derive(Debug, Clone)]
pub struct EstimationProblem {
    /// The run: system, solver, span, precision, and an ensemble of N trajectories whose
    /// parameters and initial states are used where they are not fitted. Adaptive and
    /// stiff runs save at the observation times; a fixed-step run's save grid must hold
    /// them.
    pub problem: Problem,
    /// The parameters and initial values to fit.
    pub targets: Vec<Target>,
    /// Bounds of each fitted quantity; steps are clipped into them.
    pub bounds: Vec<(f64, f64)>,
    pub start: Start,
    pub observations: Observations,
    pub error_control: ErrorControl,
    pub stopping: Stopping,
}

/// How a fit ended; the codes are those of `fit_status.npy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FitStatus {
    /// Not finished (a cancelled run).
    Running = 0,
    Converged = 1,
    MaxIterations = 2,
    /// The model could not be integrated at the starting values (its status was not a
    /// success), so there is nothing to fit from.
    IntegrationFailed = 3,
    /// No step lowers the cost even with the largest damping, or the damping grew so
    /// large that the steps shrank to nothing without an accepted one.
    Stalled = 4,
    /// Fewer observed values (non-missing, with a weight above 0) than fitted quantities:
    /// nothing to fit; the values stay at the start.
    Underdetermined = 5,
}

impl FitStatus {
    pub fn name(self) -> &'static str {
        match self {
            FitStatus::Running => "not_finished",
            FitStatus::Converged => "converged",
            FitStatus::MaxIterations => "max_iterations",
            FitStatus::IntegrationFailed => "integration_failed",
            FitStatus::Stalled => "stalled",
            FitStatus::Underdetermined => "underdetermined",
        }
    }
}

/// Every fit's result.
#[derive(Debug, Clone)]
pub struct Estimate {
    pub names: Vec<String>,
    /// Row-major [N][n_fit].
    pub values: Vec<f64>,
    /// σ²(JᵀWJ)⁻¹ at the fit, row-major [N][n_fit][n_fit]; NaN where it does not exist.
    pub covariance: Vec<f64>,
    /// ½ Σ w r² at the fit.
    pub cost: Vec<f64>,
    pub iterations: Vec<u32>,
    pub status: Vec<FitStatus>,
    /// Observed values per trajectory.
    pub observed: Vec<usize>,
    /// GPU runs made, and trajectory-runs over all of them.
    pub runs: usize,
    pub trajectory_runs: usize,
    /// Wall time of the runs.
    pub solve: std::time::Duration,
}

impl Estimate {
    pub fn n_fit(&self) -> usize {
        self.names.len()
    }

    /// The standard error of fitted quantity `k` of trajectory `j`.
    pub fn stderr(&self, j: usize, k: usize) -> f64 {
        let n = self.n_fit();
        self.covariance[(j * n + k) * n + k].sqrt()
    }

    /// Every standard error, row-major [N][n_fit].
    pub fn stderrs(&self) -> Vec<f64> {
        let (n, k) = (self.status.len(), self.n_fit());
        (0..n)
            .flat_map(|j| (0..k).map(move |c| (j, c)))
            .map(|(j, c)| self.stderr(j, c))
            .collect()
    }

    /// How many fits ended in each status, by name (statuses no fit ended in left out).
    pub fn status_counts_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut counts = serde_json::Map::new();
        for s in [
            FitStatus::Converged,
            FitStatus::MaxIterations,
            FitStatus::IntegrationFailed,
            FitStatus::Stalled,
            FitStatus::Underdetermined,
        ] {
            let c = self.status.iter().filter(|x| **x == s).count();
            if c > 0 {
                counts.insert(s.name().into(), c.into());
            }
        }
        counts
    }
}

#[derive(Debug, Error)]
pub enum EstimateError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Sensitivity(#[from] SensitivityError),
    #[error("{0}")]
    Sim(#[from] SimError),
    #[error("interrupted")]
    Cancelled,
}

impl EstimationProblem {
    /// Values trajectory `j` has observed (not missing, weight above 0).
    pub fn observed(&self, j: usize) -> usize {
        let obs = &self.observations;
        let dim = obs.weights.len();
        let row = obs.times.len() * dim;
        obs.values[j * row..(j + 1) * row]
            .iter()
            .enumerate()
            .filter(|(k, y)| !y.is_nan() && obs.weights[k % dim] > 0.0)
            .count()
    }

    /// Shapes, bounds and times, before any work.
    pub fn check(&self) -> Result<(), EstimateError> {
        let bad = |m: String| Err(EstimateError::Input(m));
        let system = self.problem.system();
        let (n, dim, n_fit) = (self.problem.ensemble().n, system.dim(), self.targets.len());
        let obs = &self.observations;
        if n_fit == 0 {
            return bad("name at least one parameter or initial value to fit".into());
        }
        if self.bounds.len() != n_fit {
            return bad(format!(
                "{} bounds for {n_fit} fitted values",
                self.bounds.len()
            ));
        }
        for (k, &(lo, hi)) in self.bounds.iter().enumerate() {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return bad(format!(
                    "the bounds of '{}' are [{lo}, {hi}]: they need finite low < high",
                    self.targets[k].name(system)
                ));
            }
        }
        let starts = match &self.start {
            Start::Same(v) => (v.len(), n_fit),
            Start::PerTrajectory(v) => (v.len(), n * n_fit),
        };
        if starts.0 != starts.1 {
            return bad(format!(
                "{} starting values where {} are needed",
                starts.0, starts.1
            ));
        }
        // The ensemble's files (--u0, --params) must have the system's columns before any
        // trajectory is read from them.
        self.problem
            .ensemble()
            .validate(system)
            .map_err(|e| EstimateError::Input(e.to_string()))?;
        self.problem
            .check()
            .map_err(|e| EstimateError::Input(e.to_string()))?;
        if obs.times.is_empty() {
            return bad("no observation times".into());
        }
        if let Some(t) = obs.times.iter().find(|t| !t.is_finite()) {
            return bad(format!(
                "an observation time is {t}; every one must be finite"
            ));
        }
        if let Some(w) = obs
            .times
            .windows(2)
            .find(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
        {
            return bad(format!(
                "observation times must increase: {} is followed by {}",
                w[0], w[1]
            ));
        }
        let (t0, t1) = self.problem.span();
        let (first, last) = (obs.times[0], obs.times[obs.times.len() - 1]);
        if !(first >= t0 && last <= t1) {
            return bad(format!(
                "observation times run from {first} to {last}, outside the span [{t0}, {t1}]"
            ));
        }
        if obs.values.len() != n * obs.times.len() * dim {
            return bad(format!(
                "{} observed values, where N × n_obs × dim = {n} × {} × {dim} are needed",
                obs.values.len(),
                obs.times.len()
            ));
        }
        if let Some(v) = obs.values.iter().find(|v| v.is_infinite()) {
            return bad(format!(
                "an observed value is infinite ({v}); NaN marks a missing one"
            ));
        }
        if obs.weights.iter().all(|w| *w == 0.0) {
            return bad("every state's weight is 0: nothing would be fitted".into());
        }
        if obs.weights.len() != dim || obs.weights.iter().any(|w| !(*w >= 0.0 && w.is_finite())) {
            return bad(format!(
                "the weights need one finite value >= 0 per state ({dim})"
            ));
        }
        Ok(())
    }
}
