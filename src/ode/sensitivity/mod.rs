//! Forward sensitivities S = ∂u/∂θ of every trajectory, integrated beside it: the run's
//! problem becomes the same problem on the augmented system of u and S
//! (`model::sensitivity`), so each explicit family (fixed steps, adaptive pairs) and the
//! stiff family integrate it with their own kernels, and their CPU twins are the twins.
//! The augmented run's saves are split again as they arrive (`split`): the states go to
//! the run's usual sinks, S to its own ([n_save, N, dim, n_sens]).
//!
//! Error control (adaptive runs): with `ErrorControl::Include` (the default) the step's
//! error norm measures u and S, as integrating the augmented system naively does
//! (DifferentialEquations.jl's `ForwardSensitivity`, Diffrax); with `Exclude` it measures
//! u only (CVODES with `errconS` false), so the steps, and the states, are those of the
//! run without sensitivities and S is as accurate as those steps make it.

mod split;

pub use crate::model::sensitivity::{SensitivityError, Target, resolve};
pub use split::{SplitSink, split_solution};

use super::adaptive::Tolerance;
use super::any::Problem;
use super::ensemble::{Ensemble, InitialStates, Table};
use super::error::SimError;
use super::options::RunOptions;
use super::solution::{Solution, StateValues};
use crate::gpu::GpuContext;
use crate::model::System;
use crate::model::sensitivity::sensitivity_system;

/// Whether an adaptive run's error control measures the sensitivities too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorControl {
    #[default]
    Include,
    Exclude,
}

impl ErrorControl {
    pub fn from_name(name: &str) -> Option<ErrorControl> {
        match name {
            "include" => Some(ErrorControl::Include),
            "exclude" => Some(ErrorControl::Exclude),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ErrorControl::Include => "include",
            ErrorControl::Exclude => "exclude",
        }
    }
}

/// What to differentiate with respect to, and how the steps are controlled.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensitivities {
    pub targets: Vec<Target>,
    pub error_control: ErrorControl,
}

/// A run with sensitivities: the augmented problem to integrate, and how to read it.
#[derive(Debug, Clone)]
pub struct SensitivityRun {
    /// The problem on the augmented system (states, then S row-major).
    pub problem: Problem,
    /// The system's own states.
    pub dim: usize,
    /// Each target's name (`rho`, `x0`), in the order of S's columns.
    pub names: Vec<String>,
}

impl SensitivityRun {
    pub fn n_sens(&self) -> usize {
        self.names.len()
    }

    /// Runs the augmented problem and splits its solution (in memory: N × saves × dim ×
    /// (1 + n_sens) values, twice while it is split).
    pub fn simulate(
        &self,
        ctx: &GpuContext,
        options: &RunOptions,
    ) -> Result<SensitivitySolution, SimError> {
        let solution = self.problem.simulate(ctx, options)?;
        let names = self.problem.system().states[..self.dim]
            .iter()
            .map(|v| v.name.clone())
            .collect();
        let (solution, sensitivities) = split_solution(solution, self.dim, names);
        Ok(SensitivitySolution {
            solution,
            sensitivities,
            names: self.names.clone(),
        })
    }
}

/// A run's states and their sensitivities.
#[derive(Debug, Clone)]
pub struct SensitivitySolution {
    pub solution: Solution,
    /// Row-major [n_save][N][dim][n_sens].
    pub sensitivities: StateValues,
    /// The targets' names, S's last axis.
    pub names: Vec<String>,
}

impl SensitivitySolution {
    /// ∂u_i/∂θ_k of trajectory `j` at save slot `s`.
    pub fn get(&self, s: usize, j: usize, i: usize, k: usize) -> f64 {
        let (n, dim, ns) = (self.solution.n, self.solution.dim, self.names.len());
        self.sensitivities.get(((s * n + j) * dim + i) * ns + k)
    }
}

/// `problem` with the sensitivities integrated beside its states.
pub fn augment(
    problem: &Problem,
    sens: &Sensitivities,
) -> Result<SensitivityRun, SensitivityError> {
    let system = problem.system();
    let unsupported = |what: &str| Err(SensitivityError::Unsupported(what.to_string()));
    if problem.is_sde() {
        return unsupported(
            "are for ordinary differential equations: the pathwise derivatives of a \
             stochastic system are not computed",
        );
    }
    if !system.events.is_empty() {
        return unsupported(
            "are not computed for systems with events or a section: where an \
             event's time depends on the parameters the sensitivities jump (a saltation \
             matrix), and phaseflow does not apply that jump",
        );
    }
    if problem.is_stiff() && sens.error_control == ErrorControl::Exclude {
        return Err(SensitivityError::ExcludeWithStiff);
    }
    let dim = system.dim();
    let n_sens = sens.targets.len();
    let augmented = sensitivity_system(system, &sens.targets)?;
    let start = augmented.default_state()[dim..].to_vec();
    let ensemble = augment_ensemble(problem.ensemble(), &start);
    let widen = |tol: &Tolerance| match tol {
        Tolerance::All(v) => Tolerance::All(*v),
        // ∂u_i/∂θ_j is held to u_i's tolerance.
        Tolerance::PerState(v) => Tolerance::PerState(
            v.iter()
                .copied()
                .chain((0..dim).flat_map(|i| std::iter::repeat_n(v[i], n_sens)))
                .collect(),
        ),
    };
    let with_system = |s: &mut System| *s = augmented.clone();
    let problem = match problem.clone() {
        Problem::Fixed(mut p) => {
            with_system(&mut p.system);
            p.ensemble = ensemble;
            Problem::Fixed(p)
        }
        Problem::Adaptive(mut p) => {
            with_system(&mut p.system);
            p.ensemble = ensemble;
            p.control.rtol = widen(&p.control.rtol);
            p.control.atol = widen(&p.control.atol);
            if sens.error_control == ErrorControl::Exclude {
                p.control.error_states = Some(dim);
            }
            Problem::Adaptive(p)
        }
        Problem::Stiff(mut p) => {
            with_system(&mut p.system);
            p.ensemble = ensemble;
            p.control.rtol = widen(&p.control.rtol);
            p.control.atol = widen(&p.control.atol);
            Problem::Stiff(p)
        }
        Problem::Sde(_) => unreachable!("refused above"),
    };
    Ok(SensitivityRun {
        problem,
        dim,
        names: sens.targets.iter().map(|t| t.name(system)).collect(),
    })
}

/// The ensemble with every initial state followed by S(t0), the same for all trajectories.
fn augment_ensemble(ensemble: &Ensemble, start: &[f64]) -> Ensemble {
    let mut out = ensemble.clone();
    out.base_state.extend_from_slice(start);
    if let InitialStates::Table(t) = &ensemble.initial {
        let cols = t.cols + start.len();
        let mut data = Vec::with_capacity(t.rows * cols);
        for row in t.data.chunks(t.cols.max(1)).take(t.rows) {
            data.extend_from_slice(row);
            data.extend_from_slice(start);
        }
        out.initial = InitialStates::Table(Table {
            data,
            rows: t.rows,
            cols,
            origin: t.origin.clone(),
        });
    }
    out
}
