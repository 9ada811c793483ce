//! Any kind of ensemble run (fixed-step, adaptive, stochastic, stiff), for callers (the
//! CLI, servers) that take every kind.

use super::adaptive::problem::{AdaptiveProblem, Control, SaveAt};
use super::adaptive::run::{self as adaptive_run, Adaptive, run_adaptive_into, simulate_adaptive};
use super::ensemble::Ensemble;
use super::error::SimError;
use super::fixed::problem::FixedStepProblem;
use super::fixed::run::{self, FixedStep, run_into, simulate};
use super::options::RunOptions;
use super::runner;
use super::sde::problem::{SdeProblem, Steps};
use super::sde::run::{self as sde_run, plan_sde, run_sde_into, simulate_sde};
use super::sink::Sink;
use super::solution::{RunStats, Solution};
use super::solver::Solver;
use super::stiff::problem::StiffProblem;
use super::stiff::run::{self as stiff_run, plan_stiff, run_stiff_into, simulate_stiff};
use crate::gpu::GpuContext;
use crate::model::System;
use crate::precision::Precision;
use crate::schedule::Plan;

#[derive(Debug, Clone)]
pub enum Problem {
    Fixed(FixedStepProblem),
    Adaptive(AdaptiveProblem),
    Sde(SdeProblem),
    Stiff(StiffProblem),
}

impl Problem {
    pub fn system(&self) -> &System {
        match self {
            Problem::Fixed(p) => &p.system,
            Problem::Adaptive(p) => &p.system,
            Problem::Sde(p) => &p.system,
            Problem::Stiff(p) => &p.system,
        }
    }

    /// The integration's time span [t0, t1].
    pub fn span(&self) -> (f64, f64) {
        use crate::ode::sde::problem::Steps;
        match self {
            Problem::Fixed(p) => (p.grid.t0, p.grid.t1()),
            Problem::Adaptive(p) => (p.t0, p.t1),
            Problem::Stiff(p) => (p.t0, p.t1),
            Problem::Sde(p) => match &p.steps {
                Steps::Fixed { grid, .. } => (grid.t0, grid.t1()),
                Steps::Adaptive { t0, t1, .. } => (*t0, *t1),
            },
        }
    }

    pub fn ensemble(&self) -> &Ensemble {
        match self {
            Problem::Fixed(p) => &p.ensemble,
            Problem::Adaptive(p) => &p.ensemble,
            Problem::Sde(p) => &p.ensemble,
            Problem::Stiff(p) => &p.ensemble,
        }
    }

    /// The ensemble, to give it initial states or parameters the spec cannot carry (arrays
    /// handed over by a program rather than read from files).
    pub fn ensemble_mut(&mut self) -> &mut Ensemble {
        match self {
            Problem::Fixed(p) => &mut p.ensemble,
            Problem::Adaptive(p) => &mut p.ensemble,
            Problem::Sde(p) => &mut p.ensemble,
            Problem::Stiff(p) => &mut p.ensemble,
        }
    }

    pub fn solver(&self) -> Solver {
        match self {
            Problem::Fixed(p) => p.solver,
            Problem::Adaptive(p) => p.solver,
            Problem::Sde(p) => Solver::SDE
                .into_iter()
                .find(|s| s.sde_method() == Some(p.method))
                .expect("every SDE method has a solver name"),
            Problem::Stiff(p) => Solver::STIFF
                .into_iter()
                .find(|s| s.stiff_method() == Some(p.method))
                .expect("every stiff method has a solver name"),
        }
    }

    /// Whether steps are controlled (a pair run with `--fixed-step` is not).
    pub fn is_adaptive(&self) -> bool {
        match self {
            Problem::Adaptive(_) | Problem::Stiff(_) => true,
            Problem::Sde(p) => matches!(p.steps, Steps::Adaptive { .. }),
            Problem::Fixed(_) => false,
        }
    }

    /// Whether the system is stochastic (an SDE run).
    pub fn is_sde(&self) -> bool {
        matches!(self, Problem::Sde(_))
    }

    /// The span, save times and step-size control of a controlled ODE run (an adaptive
    /// pair or a stiff solver).
    pub fn ode_control(&self) -> Option<(f64, f64, &SaveAt, &Control)> {
        match self {
            Problem::Adaptive(p) => Some((p.t0, p.t1, &p.saveat, &p.control)),
            Problem::Stiff(p) => Some((p.t0, p.t1, &p.saveat, &p.control)),
            _ => None,
        }
    }

    /// Whether a stiff solver integrates it (its stats have five columns).
    pub fn is_stiff(&self) -> bool {
        matches!(self, Problem::Stiff(_))
    }

    pub fn precision(&self) -> Precision {
        match self {
            Problem::Fixed(p) => p.precision,
            Problem::Adaptive(p) => p.precision,
            Problem::Sde(p) => p.precision,
            Problem::Stiff(p) => p.precision,
        }
    }

    /// The errors `simulate` would raise before touching the GPU.
    pub fn check(&self) -> Result<(), SimError> {
        match self {
            Problem::Fixed(p) => run::check(p).map(|_| ()),
            Problem::Adaptive(p) => adaptive_run::check(p).map(|_| ()),
            Problem::Sde(p) => sde_run::check(p).map(|_| ()),
            Problem::Stiff(p) => stiff_run::check(p).map(|_| ()),
        }
    }

    /// The save times (fixed step: the times of the saved steps).
    pub fn save_times(&self) -> Result<Vec<f64>, SimError> {
        match self {
            Problem::Fixed(p) => Ok(run::check(p)?.times(&p.grid)),
            Problem::Adaptive(p) => adaptive_run::check(p),
            Problem::Sde(p) => sde_run::check(p),
            Problem::Stiff(p) => stiff_run::check(p),
        }
    }

    /// How the run is cut up on `ctx`.
    pub fn plan(&self, ctx: &GpuContext, options: &RunOptions) -> Result<Plan, SimError> {
        match self {
            Problem::Fixed(p) => runner::plan_run(ctx, &FixedStep::new(p)?, options),
            Problem::Adaptive(p) => runner::plan_run(ctx, &Adaptive::new(p)?, options),
            Problem::Sde(p) => plan_sde(ctx, p, options),
            Problem::Stiff(p) => plan_stiff(ctx, p, options),
        }
    }

    /// Runs, handing results to `sink` as they arrive.
    pub fn run_into(
        &self,
        ctx: &GpuContext,
        options: &RunOptions,
        sink: &mut dyn Sink,
    ) -> Result<RunStats, SimError> {
        match self {
            Problem::Fixed(p) => run_into(ctx, p, options, sink),
            Problem::Adaptive(p) => run_adaptive_into(ctx, p, options, sink),
            Problem::Sde(p) => run_sde_into(ctx, p, options, sink),
            Problem::Stiff(p) => run_stiff_into(ctx, p, options, sink),
        }
    }

    pub fn simulate(&self, ctx: &GpuContext, options: &RunOptions) -> Result<Solution, SimError> {
        match self {
            Problem::Fixed(p) => simulate(ctx, p, options),
            Problem::Adaptive(p) => simulate_adaptive(ctx, p, options),
            Problem::Sde(p) => simulate_sde(ctx, p, options),
            Problem::Stiff(p) => simulate_stiff(ctx, p, options),
        }
    }
}
