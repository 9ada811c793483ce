//! `bench basins`: basins of attraction of the unforced double-well Duffing oscillator
//! (x'' + 0.1 x' − x + x³ = 0, the built-in `duffing` with γ = 0) on a square grid over
//! (x, v) ∈ [−2, 2]², t ∈ [0, 200], Tsit5 at rtol = atol = 1e-6 in f32, classified by the
//! window features (the last 20 time units, 100 saves). Throughput in grid points per
//! second. Before anything is reported, sampled grid points are integrated by the CPU twin
//! (f64, the same method and saves) and their features must match the attractor the GPU run
//! gave them; the two basins must hold the same share of the grid (the system's point
//! symmetry (x, v) → (−x, −v) swaps them).

use super::harness::{Bench, median};
use super::row::Row;
use super::scenario::Scenario;
use crate::cli::error::CliError;
use crate::ode::adaptive::cpu::{self as adaptive_cpu, Setup};
use crate::ode::basins::{self, BasinsProblem, BasinsResult, Match, Method};
use crate::ode::{
    AdaptiveProblem, Axis, Control, Ensemble, InitialStates, Problem, RunOptions, SaveAt, Solver,
    Status, Tolerance, cost,
};
use crate::precision::Precision;

/// Grid points checked against the twin in every run.
const SAMPLE: usize = 16;
const WINDOW: f64 = 20.0;

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Runtime(format!("benchmark run failed: {e}"))
}

/// The problem on a `side` × `side` grid.
fn problem(side: usize) -> Result<BasinsProblem, CliError> {
    let system = crate::model::builtin("duffing")
        .ok_or_else(|| failed("the built-in duffing is missing"))?
        .map_err(failed)?;
    let mut ensemble = Ensemble::new(&system, side * side);
    for (name, value) in [("gamma", 0.0), ("delta", 0.1)] {
        let i = system
            .param_index(name)
            .ok_or_else(|| failed(format!("duffing has no {name}")))?;
        ensemble.base_params[i] = value;
    }
    ensemble.initial = InitialStates::Grid(vec![
        Axis::grid(1, -2.0, 2.0, side),
        Axis::grid(0, -2.0, 2.0, side),
    ]);
    let mut run = Problem::Adaptive(AdaptiveProblem {
        system,
        solver: Solver::Tsit5,
        t0: 0.0,
        t1: 200.0,
        saveat: SaveAt::Final,
        control: Control {
            rtol: Tolerance::All(1e-6),
            atol: Tolerance::All(1e-6),
            ..Control::default()
        },
        ensemble,
        precision: Precision::F32,
    });
    basins::save_window(&mut run, WINDOW, 100).map_err(failed)?;
    Ok(BasinsProblem {
        run,
        method: Method::Features {
            window: WINDOW,
            tol: Match::default(),
            escape: None,
        },
        max_attractors: 8,
    })
}

/// Both corners of the grid and evenly between.
fn sampled(n: usize) -> Vec<usize> {
    let m = SAMPLE.min(n);
    let mut js: Vec<usize> = (0..m)
        .map(|k| if m == 1 { 0 } else { k * (n - 1) / (m - 1) })
        .collect();
    js.dedup();
    js
}

/// The twin's window features of grid point `j` (from the f32-rounded inputs the GPU gets).
fn twin_features(problem: &BasinsProblem, j: usize) -> Result<Vec<f64>, CliError> {
    let Problem::Adaptive(a) = &problem.run else {
        unreachable!("the scenario builds an adaptive run")
    };
    let times = problem.run.save_times().map_err(failed)?;
    let setup = Setup {
        system: &a.system,
        pair: a.solver.pair().expect("a pair"),
        control: &a.control,
        t0: a.t0,
        t1: a.t1,
        save_times: &times,
    };
    let rounded = |v: Vec<f64>| -> Vec<f64> { v.into_iter().map(|x| x as f32 as f64).collect() };
    let e = &a.ensemble;
    let out = adaptive_cpu::integrate(
        &setup,
        &rounded(e.states(j..j + 1)),
        &rounded(e.param_slots(j..j + 1)),
    );
    if out.status != Status::Success {
        return Err(CliError::Runtime(format!(
            "self-check failed: the twin's grid point {j} ended with '{}'",
            out.status.describe()
        )));
    }
    let dim = a.system.dim();
    let mut lo = vec![f64::INFINITY; dim];
    let mut hi = vec![f64::NEG_INFINITY; dim];
    for (s, &t) in times.iter().enumerate() {
        if t >= a.t1 - WINDOW {
            for c in 0..dim {
                lo[c] = lo[c].min(out.saves[s * dim + c]);
                hi[c] = hi[c].max(out.saves[s * dim + c]);
            }
        }
    }
    lo.extend(hi);
    Ok(lo)
}

/// Sampled points' twin features against their attractors, and the basins' balance.
fn check(problem: &BasinsProblem, r: &BasinsResult) -> Result<String, CliError> {
    if r.attractors.len() != 2 || r.diverged > 0 {
        return Err(CliError::Runtime(format!(
            "self-check failed: {} attractors and {} diverged points, not two wells",
            r.attractors.len(),
            r.diverged
        )));
    }
    let tol = Match::default();
    let mut worst = 0.0f64;
    let js = sampled(r.labels.len());
    for &j in &js {
        let f = twin_features(problem, j)?;
        let a = &r.attractors[r.labels[j] as usize];
        let d = tol.distance(&f, &a.features);
        if d.is_nan() || d > 1.0 {
            return Err(CliError::Runtime(format!(
                "self-check failed: grid point {j} has label {} but the CPU twin ends at \
                 {f:?}, not {:?}",
                a.label, a.features
            )));
        }
        worst = worst.max(d);
    }
    let f = r.fractions();
    if (f[0] - f[1]).abs() > 0.01 {
        return Err(CliError::Runtime(format!(
            "self-check failed: the symmetric wells' basins hold {:.4} and {:.4} of the grid",
            f[0], f[1]
        )));
    }
    Ok(format!(
        "{} points' twin features in their basin (≤ {worst:.2} of the tolerance); shares {:.4}/{:.4}",
        js.len(),
        f[0],
        f[1]
    ))
}

pub(super) fn run(bench: &Bench, size: Option<usize>) -> Result<Vec<Row>, CliError> {
    let side = (size.unwrap_or(1_000_000) as f64).sqrt().round().max(2.0) as usize;
    let problem = problem(side)?;
    let once = || basins::run_basins(bench.ctx, &problem, &RunOptions::default()).map_err(failed);
    let first = once()?;
    let check_line = check(&problem, &first)?;
    let mut runs = vec![first];
    while runs.len() < bench.reps.min(3) && runs[0].stats.solve.as_secs_f64() < 5.0 {
        runs.push(once()?);
    }
    for r in &runs[1..] {
        if r.labels != runs[0].labels {
            return Err(CliError::Runtime(
                "self-check failed: repeated runs gave different labels".into(),
            ));
        }
    }
    let mut solves: Vec<f64> = runs.iter().map(|r| r.stats.solve.as_secs_f64()).collect();
    let mid = median(&mut solves);
    let r = runs
        .iter()
        .find(|r| r.stats.solve.as_secs_f64() == mid)
        .expect("the median is one of the runs");
    let n = side * side;
    let mut row = Row::new(
        Scenario::Basins,
        "tsit5 1e-6, window features",
        n,
        mid,
        (n as f64, "grid points"),
        check_line,
    );
    row.gpu_seconds = r.stats.gpu.map(|g| g.as_secs_f64());
    let system = problem.run.system();
    let per_attempt = cost::adaptive_attempt_flops(system, Solver::Tsit5.pair().expect("a pair"));
    row.flops = Some(per_attempt as f64 * r.stats.trajectory_steps as f64);
    let e = r.entropy(5);
    row.note = Some(format!(
        "{side} × {side} grid; {:.3e} step attempts/s ({:.0} per point); basins {:.4}/{:.4}; \
         basin entropy S_b = {:.3}, S_bb = {:.3}, {:.1}% boundary boxes; median of {} runs",
        r.stats.trajectory_steps as f64 / mid,
        r.stats.trajectory_steps as f64 / n as f64,
        r.attractors[0].fraction,
        r.attractors[1].fraction,
        e.entropy,
        e.boundary_entropy,
        100.0 * e.boundary_fraction(),
        runs.len()
    ));
    Ok(vec![row])
}
