//! The stiff family in the shared runner (`ode::runner`).

use super::problem::StiffProblem;
use crate::gpu::GpuContext;
use crate::ode::error::SimError;
use crate::ode::options::RunOptions;
use crate::ode::sink::Sink;
use crate::ode::solution::{RunStats, Solution};
use crate::schedule::Plan;

/// Checks a problem without touching the GPU; returns the save times.
pub fn check(problem: &StiffProblem) -> Result<Vec<f64>, SimError> {
    let times = problem.check()?;
    problem.ensemble.validate(&problem.system)?;
    Ok(times)
}

/// How the run is cut up on `ctx`.
pub fn plan_stiff(
    _ctx: &GpuContext,
    problem: &StiffProblem,
    _options: &RunOptions,
) -> Result<Plan, SimError> {
    check(problem)?;
    todo!("kernel helper")
}

/// Integrates every trajectory of the problem on the GPU into memory.
pub fn simulate_stiff(
    _ctx: &GpuContext,
    problem: &StiffProblem,
    _options: &RunOptions,
) -> Result<Solution, SimError> {
    check(problem)?;
    todo!("kernel helper")
}

/// Integrates every trajectory on the GPU, handing results to `sink` as they arrive.
pub fn run_stiff_into(
    _ctx: &GpuContext,
    problem: &StiffProblem,
    _options: &RunOptions,
    _sink: &mut dyn Sink,
) -> Result<RunStats, SimError> {
    check(problem)?;
    todo!("kernel helper")
}
