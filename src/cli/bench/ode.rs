//! The ODE ensemble scenarios. All integrate Lorenz as the published GPU ensemble benchmark
//! sets it up (σ = 10, β = 2.666, u0 = (1, 0, 0), ρ swept linearly, t ∈ [0, 1], f32).
//! Below ρ = 24.74 there is no chaos, and over one time unit even ρ = 50 amplifies
//! rounding only a few-fold, so f32 results can be held to the f64 twin tightly. Before a run is reported, sampled trajectories (both ends of the sweep and
//! evenly between) are checked against the CPU twin of the same method; every run's
//! error against an independent reference (DOP853 in f64 at 1e-12 on the CPU) is reported
//! too, since speed at unequal error means nothing.

use super::harness::{Bench, median};
use super::row::Row;
use super::scenario::Scenario;
use crate::cli::error::CliError;
use crate::io::{Dtype, NpyStream, read_npy};
use crate::model::{System, builtin};
use crate::ode::adaptive::cpu::{self as adaptive_cpu, Setup};
use crate::ode::{
    AdaptiveProblem, Axis, Control, Ensemble, FixedStepProblem, NpySink, Parameters, Problem,
    RunOptions, RunStats, Save, SaveAt, SavePlan, SimError, Solution, Solver, Status, TimeGrid,
    Tolerance, cost,
};
use crate::precision::Precision;

/// Trajectories checked against the twin and the reference in every run.
const SAMPLE: usize = 16;
/// f32 results against the f64 twin, relative to max(1, |state|): f32 rounding over 1,000
/// steps of this non-chaotic problem stays near 1e-6 (seen: ≤ 2e-6); a wrong coefficient
/// or operator shows up at 1e-2 or more.
const TWIN_TOLERANCE: f64 = 1e-4;

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Runtime(format!("benchmark run failed: {e}"))
}

/// Lorenz with the benchmark's β and ρ = linspace(lo, hi, n).
fn lorenz(n: usize, rho: (f64, f64)) -> (System, Ensemble) {
    let system = builtin("lorenz")
        .expect("a built-in system")
        .expect("it parses");
    let mut ensemble = Ensemble::new(&system, n);
    let beta = system.param_index("beta").expect("lorenz has beta");
    let rho_index = system.param_index("rho").expect("lorenz has rho");
    ensemble.base_params[beta] = 2.666;
    ensemble.params = Parameters::Sweep(vec![Axis::linear(rho_index, rho.0, rho.1)]);
    (system, ensemble)
}

fn fixed(n: usize, rho: (f64, f64), solver: Solver, save: Save) -> Problem {
    let (system, ensemble) = lorenz(n, rho);
    Problem::Fixed(FixedStepProblem {
        system,
        solver,
        grid: TimeGrid::from_span(0.0, 1.0, 1e-3).expect("a valid grid"),
        save,
        ensemble,
        precision: Precision::F32,
    })
}

fn adaptive(n: usize, tolerance: f64) -> Problem {
    let (system, ensemble) = lorenz(n, (0.0, 21.0));
    Problem::Adaptive(AdaptiveProblem {
        system,
        solver: Solver::Tsit5,
        t0: 0.0,
        t1: 1.0,
        saveat: SaveAt::Final,
        control: Control {
            rtol: Tolerance::All(tolerance),
            atol: Tolerance::All(tolerance),
            ..Control::default()
        },
        ensemble,
        precision: Precision::F32,
    })
}

/// Both ends of the ensemble and evenly between.
fn sampled(n: usize) -> Vec<usize> {
    let m = SAMPLE.min(n);
    let mut js: Vec<usize> = (0..m)
        .map(|k| if m == 1 { 0 } else { k * (n - 1) / (m - 1) })
        .collect();
    js.dedup();
    js
}

fn rounded(v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(|x| x as f32 as f64).collect()
}

/// The f64 twin's saves ([slot][dim]) for trajectory `j`, from the f32-rounded inputs the
/// GPU gets: the same method, step rules and save slots.
fn twin(problem: &Problem, j: usize) -> Vec<f64> {
    let e = problem.ensemble();
    let (u0, p) = (
        rounded(e.states(j..j + 1)),
        rounded(e.param_slots(j..j + 1)),
    );
    match problem {
        Problem::Fixed(f) => {
            let plan = SavePlan::new(f.save, f.grid.n_steps).expect("checked");
            let tableau = f.solver.step_tableau();
            crate::ode::fixed::cpu::integrate(&f.system, &tableau, &u0, &p, &f.grid, &plan).0
        }
        Problem::Adaptive(a) => {
            let pair = a.solver.pair().expect("an adaptive solver");
            let times = [a.t1];
            let setup = Setup {
                system: &a.system,
                pair,
                control: &a.control,
                t0: a.t0,
                t1: a.t1,
                save_times: &times,
            };
            adaptive_cpu::integrate(&setup, &u0, &p).saves
        }
        Problem::Sde(_) | Problem::Stiff(_) => {
            unreachable!("the ODE scenarios build explicit ODE problems")
        }
    }
}

/// The independent reference's final state for trajectory `j`: DOP853 in f64 at rtol =
/// atol = 1e-12 from the exact (unrounded) inputs: the problem as posed.
fn reference(problem: &Problem, j: usize) -> Result<Vec<f64>, CliError> {
    let e = problem.ensemble();
    let control = Control {
        rtol: Tolerance::All(1e-12),
        atol: Tolerance::All(1e-12),
        max_steps: 1_000_000,
        ..Control::default()
    };
    let times = [1.0];
    let setup = Setup {
        system: problem.system(),
        pair: Solver::Dop853.pair().expect("a pair"),
        control: &control,
        t0: 0.0,
        t1: 1.0,
        save_times: &times,
    };
    let out = adaptive_cpu::integrate(&setup, &e.states(j..j + 1), &e.param_slots(j..j + 1));
    if out.status != Status::Success {
        return Err(CliError::Runtime(format!(
            "the reference for trajectory {j} ended with '{}'",
            out.status.describe()
        )));
    }
    Ok(out.saves)
}

/// Largest difference relative to max(1, |reference|) over a state.
fn distance(got: &[f64], want: &[f64]) -> f64 {
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max)
        / scale
}

/// Reads back saved states: slot-major [n_save][n][dim], as `Solution` and states.npy
/// hold them.
struct Saved<'a> {
    n: usize,
    dim: usize,
    n_save: usize,
    value: &'a dyn Fn(usize) -> f64,
}

impl Saved<'_> {
    fn trajectory(&self, j: usize) -> Vec<f64> {
        (0..self.n_save)
            .flat_map(|s| (0..self.dim).map(move |c| (s * self.n + j) * self.dim + c))
            .map(|i| (self.value)(i))
            .collect()
    }
}

/// The self-check: sampled trajectories against the twin (every save), and their final
/// states against the reference. Returns the check line and the achieved error.
fn check(problem: &Problem, saved: &Saved, statuses: &[Status]) -> Result<(String, f64), CliError> {
    let n = problem.ensemble().n;
    if let Some(j) = statuses.iter().position(|s| *s != Status::Success) {
        return Err(CliError::Runtime(format!(
            "self-check failed: trajectory {j} ended with '{}'",
            statuses[j].describe()
        )));
    }
    let (mut worst, mut error) = (0.0f64, 0.0f64);
    let js = sampled(n);
    for &j in &js {
        let got = saved.trajectory(j);
        let d = distance(&got, &twin(problem, j));
        if d.is_nan() || d > TWIN_TOLERANCE {
            return Err(CliError::Runtime(format!(
                "self-check failed: trajectory {j} differs from the CPU twin by {d:.2e}"
            )));
        }
        worst = worst.max(d);
        let end = &got[got.len() - saved.dim..];
        error = error.max(distance(end, &reference(problem, j)?));
    }
    Ok((
        format!("{} trajectories = twin ± {worst:.1e}", js.len()),
        error,
    ))
}

fn solution_check(problem: &Problem, sol: &Solution) -> Result<(String, f64), CliError> {
    let value = |i: usize| sol.states.get(i);
    let saved = Saved {
        n: sol.n,
        dim: sol.dim,
        n_save: sol.n_save(),
        value: &value,
    };
    check(problem, &saved, &sol.status)
}

/// A row from a run's statistics: trajectory-steps (fixed) or step attempts (adaptive),
/// counted operations and compulsory bytes.
fn row(scenario: Scenario, what: &str, problem: &Problem, stats: &RunStats, n_saves: usize) -> Row {
    let system = problem.system();
    let n = problem.ensemble().n;
    let per_step = match problem {
        Problem::Fixed(f) => cost::fixed_step_flops(system, &f.solver.step_tableau()),
        Problem::Adaptive(a) => {
            cost::adaptive_attempt_flops(system, a.solver.pair().expect("a pair"))
        }
        Problem::Sde(_) | Problem::Stiff(_) => {
            unreachable!("the ODE scenarios build explicit ODE problems")
        }
    };
    let unit = if problem.is_adaptive() {
        "step attempts"
    } else {
        "trajectory-steps"
    };
    let steps = stats.trajectory_steps as f64;
    let seconds = stats.solve.as_secs_f64();
    let mut row = Row::new(scenario, what, n, seconds, (steps, unit), String::new());
    row.gpu_seconds = stats.gpu.map(|g| g.as_secs_f64());
    row.flops = Some(steps * per_step as f64);
    row.bytes = Some(cost::compulsory_bytes(system, n, n_saves, 4) as f64);
    row
}

/// Runs held in memory: up to `reps` runs (while they take under a second each), the
/// median run reported; the first run's results are the ones checked.
fn in_memory(
    bench: &Bench,
    scenario: Scenario,
    what: &str,
    problem: &Problem,
) -> Result<Row, CliError> {
    let options = RunOptions::default();
    let sol = problem.simulate(bench.ctx, &options).map_err(|e| match e {
        // A size the host cannot hold is the request's fault, found before any work.
        too_large @ SimError::OutputTooLarge { .. } => CliError::Input(too_large.to_string()),
        other => failed(other),
    })?;
    let (check, error) = solution_check(problem, &sol)?;
    let mut runs = vec![sol.stats];
    while runs.len() < bench.reps.min(3) && runs[0].solve.as_secs_f64() < 1.0 {
        runs.push(problem.simulate(bench.ctx, &options).map_err(failed)?.stats);
    }
    let mut solves: Vec<f64> = runs.iter().map(|r| r.solve.as_secs_f64()).collect();
    let mid = median(&mut solves);
    let stats = runs
        .iter()
        .find(|r| r.solve.as_secs_f64() == mid)
        .expect("the median is one of the runs");
    let n_saves = problem.save_times().map_err(failed)?.len();
    let mut row = row(scenario, what, problem, stats, n_saves);
    row.check = check;
    row.error = Some(error);
    if runs.len() > 1 {
        row.note = Some(format!(
            "median of {} runs (solve {:.3}–{:.3} s)",
            runs.len(),
            solves[0],
            solves[solves.len() - 1]
        ));
    }
    Ok(row)
}

/// `ode-stream`: the saves written to .npy in a temporary directory by the streaming
/// sink, then read back from the file for the check.
fn streamed(bench: &Bench, problem: &Problem) -> Result<Row, CliError> {
    let dir = std::env::temp_dir().join(format!("phaseflow-bench-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(failed)?;
    let result = stream_into(bench, problem, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn stream_into(bench: &Bench, problem: &Problem, dir: &std::path::Path) -> Result<Row, CliError> {
    let (n, dim) = (problem.ensemble().n, problem.system().dim());
    let n_save = problem.save_times().map_err(failed)?.len();
    let states_path = dir.join("states.npy");
    let shape = [n_save as u64, n as u64, dim as u64];
    let states = NpyStream::create(&states_path, Dtype::F32, &shape).map_err(failed)?;
    let status =
        NpyStream::create(&dir.join("status.npy"), Dtype::U8, &[n as u64]).map_err(failed)?;
    let mut sink = NpySink::new(Some(states), status, None);
    let stats = problem
        .run_into(bench.ctx, &RunOptions::default(), &mut sink)
        .map_err(failed)?;
    sink.finish().map_err(failed)?;
    let bytes = std::fs::metadata(&states_path).map_err(failed)?.len();

    let (_, values) = read_npy(&states_path).map_err(failed)?;
    let (_, codes) = read_npy(&dir.join("status.npy")).map_err(failed)?;
    let statuses: Vec<Status> = codes.iter().map(|&c| Status::from_code(c as u32)).collect();
    let value = |i: usize| values[i];
    let saved = Saved {
        n,
        dim,
        n_save,
        value: &value,
    };
    let (check, error) = check(problem, &saved, &statuses)?;
    let mut row = row(Scenario::OdeStream, "rk4 to .npy", problem, &stats, n_save);
    row.check = format!("read back from disk: {check}");
    row.error = Some(error);
    let host = stats.host.as_secs_f64();
    row.note = Some(format!(
        "{:.0} MB written at {:.0} MB/s of wall time; the host spent {:.2} s writing beside {} s of GPU work",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / row.seconds,
        host,
        row.gpu_seconds
            .map(|g| format!("{g:.2}"))
            .unwrap_or_else(|| "-".into())
    ));
    Ok(row)
}

/// The size the published figures are for, and the figures (Utkarsh et al., "Automated
/// translation and accelerated solving of differential equations on multiple GPU
/// platforms", 2024: wall time of the whole ensemble solve on an NVIDIA V100).
const PUBLISHED_N: usize = 8_388_608;
const PUBLISHED: [&str; 2] = [
    "DiffEqGPU.jl 145 ms, MPGOS (RK4) 94 ms, Diffrax 10.0 s, torchdiffeq 14.4 s",
    "DiffEqGPU.jl 69.5 ms, Diffrax 2.6 s",
];

/// `paper-lorenz`: N = 8, 32, ... up to `largest`, fixed-step and adaptive Tsit5, each run
/// checked and its error measured.
fn paper(bench: &Bench, largest: usize, rows: &mut Vec<Row>) -> Result<(), CliError> {
    let mut n = 8;
    let mut sizes = Vec::new();
    while n <= largest {
        sizes.push(n);
        n *= 4;
    }
    if sizes.last() != Some(&largest) {
        sizes.push(largest);
    }
    for n in sizes {
        let cases = [
            (
                "tsit5 dt=1e-3",
                fixed(n, (0.0, 21.0), Solver::Tsit5, Save::Final),
            ),
            ("tsit5 tol=1e-8", adaptive(n, 1e-8)),
        ];
        for ((what, problem), published) in cases.into_iter().zip(PUBLISHED) {
            let mut row = in_memory(bench, Scenario::PaperLorenz, what, &problem)?;
            if n == PUBLISHED_N {
                let note = row
                    .note
                    .take()
                    .map(|n| format!("{n}; "))
                    .unwrap_or_default();
                row.note = Some(format!("{note}published at this N on a V100: {published}"));
            }
            rows.push(row);
        }
    }
    Ok(())
}

pub fn run(bench: &Bench, scenario: Scenario, size: Option<usize>) -> Result<Vec<Row>, CliError> {
    let mut rows = Vec::new();
    match scenario {
        Scenario::OdeFixed => {
            let problem = fixed(
                size.unwrap_or(1 << 20),
                (0.0, 21.0),
                Solver::Rk4,
                Save::Final,
            );
            rows.push(in_memory(bench, scenario, "rk4 dt=1e-3", &problem)?);
        }
        Scenario::OdeAdaptive => {
            let problem = adaptive(size.unwrap_or(1 << 20), 1e-6);
            rows.push(in_memory(bench, scenario, "tsit5 tol=1e-6", &problem)?);
        }
        Scenario::OdeSweep => {
            let n = size.unwrap_or(1 << 16);
            let problem = fixed(n, (0.0, 50.0), Solver::Rk4, Save::Every(10));
            rows.push(in_memory(bench, scenario, "rk4 save/10", &problem)?);
        }
        Scenario::OdeStream => {
            let n = size.unwrap_or(1 << 18);
            let problem = fixed(n, (0.0, 50.0), Solver::Rk4, Save::Every(10));
            rows.push(streamed(bench, &problem)?);
        }
        Scenario::PaperLorenz => paper(bench, size.unwrap_or(8_388_608), &mut rows)?,
        _ => unreachable!("not an ODE scenario"),
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The self-check passes the twin's own results and refuses them with one value off
    /// by 1e-3 relative, or a trajectory that did not finish.
    #[test]
    fn self_check_refuses_a_wrong_result() {
        let problem = fixed(40, (0.0, 21.0), Solver::Rk4, Save::Every(500));
        let (n, dim, n_save) = (40, 3, 3);
        let mut values = vec![0.0; n_save * n * dim];
        for j in 0..n {
            let saves = twin(&problem, j);
            for s in 0..n_save {
                for c in 0..dim {
                    values[(s * n + j) * dim + c] = saves[s * dim + c];
                }
            }
        }
        let statuses = vec![Status::Success; n];
        let check_values = |values: &[f64], statuses: &[Status]| {
            let value = |i: usize| values[i];
            let saved = Saved {
                n,
                dim,
                n_save,
                value: &value,
            };
            check(&problem, &saved, statuses)
        };
        let (line, error) = check_values(&values, &statuses).unwrap();
        assert!(line.starts_with("16 trajectories = twin ± 0.0"), "{line}");
        // The twin runs f32-rounded inputs in f64 with RK4: 1e-9 or so from the reference.
        assert!(error < 1e-6, "{error}");
        let last = (2 * n + 39) * dim + 1;
        let mut wrong = values.clone();
        wrong[last] *= 1.001;
        assert!(check_values(&wrong, &statuses).is_err());
        let mut stopped = statuses.clone();
        stopped[7] = Status::NonFinite;
        assert!(check_values(&values, &stopped).is_err());
    }
}
