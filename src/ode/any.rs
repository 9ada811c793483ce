//! Either kind of ensemble run, for callers (the CLI, servers) that take both.

use super::adaptive::AdaptiveProblem;
use super::adaptive_run::{self, simulate_adaptive};
use super::device::Precision;
use super::ensemble::Ensemble;
use super::run::{self, FixedStepProblem, RunOptions, SimError, simulate};
use super::solution::Solution;
use super::tableau::Solver;
use crate::gpu::GpuContext;
use crate::model::System;

#[derive(Debug, Clone)]
pub enum Problem {
    Fixed(FixedStepProblem),
    Adaptive(AdaptiveProblem),
}

impl Problem {
    pub fn system(&self) -> &System {
        match self {
            Problem::Fixed(p) => &p.system,
            Problem::Adaptive(p) => &p.system,
        }
    }

    pub fn ensemble(&self) -> &Ensemble {
        match self {
            Problem::Fixed(p) => &p.ensemble,
            Problem::Adaptive(p) => &p.ensemble,
        }
    }

    pub fn solver(&self) -> Solver {
        match self {
            Problem::Fixed(p) => p.solver,
            Problem::Adaptive(p) => p.solver,
        }
    }

    pub fn precision(&self) -> Precision {
        match self {
            Problem::Fixed(p) => p.precision,
            Problem::Adaptive(p) => p.precision,
        }
    }

    /// The errors `simulate` would raise before touching the GPU.
    pub fn check(&self) -> Result<(), SimError> {
        match self {
            Problem::Fixed(p) => run::check(p).map(|_| ()),
            Problem::Adaptive(p) => adaptive_run::check(p).map(|_| ()),
        }
    }

    pub fn simulate(&self, ctx: &GpuContext, options: &RunOptions) -> Result<Solution, SimError> {
        match self {
            Problem::Fixed(p) => simulate(ctx, p, options),
            Problem::Adaptive(p) => simulate_adaptive(ctx, p, options),
        }
    }
}
