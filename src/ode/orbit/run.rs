//! An orbit diagram on the GPU: the events run, each chunk's log cut down to the observed
//! values at the section's records as it arrives (`collect::Collector`), so that host
//! memory holds at most N × K values, then the distinct values per trajectory.

use crate::gpu::GpuContext;
use crate::ode::error::SinkError;
use crate::ode::error::{SimError, host_results_fit};
use crate::ode::options::RunOptions;
use crate::ode::orbit::collect::{Collector, StepTotals};
use crate::ode::orbit::diagram::{OrbitDiagram, distinct_values};
use crate::ode::orbit::problem::OrbitProblem;
use crate::ode::sink::{FanOut, Sink};
use crate::ode::solution::{RunStats, Status, StepCounts};
use crate::precision::Precision;
use std::ops::Range;

/// What an orbit-diagram run found. A cancelled run (`stats.completed < n`) holds what the
/// trajectories `0..stats.completed` found; the others have no points and status
/// `Running`.
#[derive(Debug, Clone)]
pub struct OrbitResult {
    /// The observed values at each trajectory's records, in the order they fired, and the
    /// swept parameter's value per trajectory (orbit.npy is `points` padded with NaN to
    /// [N, K]).
    pub diagram: OrbitDiagram,
    /// Points per trajectory (counts.npy).
    pub counts: Vec<u32>,
    /// Distinct values per trajectory at the problem's `tol` (distinct.npy).
    pub distinct: Vec<u32>,
    /// Every parameter of every trajectory, row-major [N, n_params] in the system's
    /// parameter order (params.npy).
    pub params: Vec<f64>,
    /// How each trajectory ended (status.npy).
    pub status: Vec<Status>,
    /// Per trajectory: events that fired after the transient, all of the system's (beyond
    /// K too).
    pub fired: Vec<u32>,
    /// Step totals over all trajectories (adaptive solvers).
    pub steps: StepTotals,
    pub stats: RunStats,
    /// The adapter's name, for the summary.
    pub adapter: String,
}

/// A sink that takes nothing.
struct Nothing;
impl Sink for Nothing {
    fn chunk_done(
        &mut self,
        _: Range<usize>,
        _: &[Status],
        _: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Runs `problem` on the GPU and returns its diagram. `options.cancel` stops it after the
/// work in flight (`stats.completed` says how far it got); `options.progress` is told how
/// it goes. Refused before any work when N × K points would take more than 16 GiB.
pub fn run_orbit_diagram(
    ctx: &GpuContext,
    problem: &OrbitProblem,
    options: &RunOptions,
) -> Result<OrbitResult, SimError> {
    run_orbit_diagram_with(ctx, problem, options, &mut Nothing)
}

/// `run_orbit_diagram`, handing every chunk to `also` as well (a progress display that
/// counts finished trajectories, say).
pub fn run_orbit_diagram_with(
    ctx: &GpuContext,
    problem: &OrbitProblem,
    options: &RunOptions,
    also: &mut dyn Sink,
) -> Result<OrbitResult, SimError> {
    let n = problem.n();
    host_results_fit(
        "the orbit diagram's points",
        "run fewer trajectories or keep fewer points per trajectory",
        n as u64,
        problem.k,
        Precision::F64,
    )?;
    let mut collector = Collector::new(n, problem.section, problem.observe);
    let stats = problem
        .problem
        .run_into(ctx, options, &mut FanOut(vec![&mut collector, also]))?;
    let params = problem.problem.ensemble().params(0..n);
    let cols = problem.problem.system().n_params();
    let values = (0..n)
        .map(|j| params[j * cols + problem.param_index])
        .collect();
    let points = collector.points;
    let counts = points.iter().map(|v| v.len() as u32).collect();
    let distinct = points
        .iter()
        .map(|p| distinct_values(p, problem.tol).len() as u32)
        .collect();
    Ok(OrbitResult {
        diagram: OrbitDiagram {
            parameter: problem.parameter.clone(),
            observed: problem.observed.clone(),
            values,
            points,
        },
        counts,
        distinct,
        params,
        status: collector.status,
        fired: collector.fired,
        steps: collector.steps,
        stats,
        adapter: ctx.summary.name.clone(),
    })
}
