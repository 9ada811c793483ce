//! The SDE scenarios. `sde-em` is the Monte Carlo benchmark: Ornstein–Uhlenbeck
//! (θ = 1, μ = 0.5, σ = 0.3, X0 = 1), t ∈ [0, 1], 1,000 Euler–Maruyama steps, f32, final
//! states plus the ensemble's mean and variance. `sde-adaptive` runs milstein-adaptive on
//! geometric Brownian motion (μ = 1, σ = 0.5, S0 = 1, t ∈ [0, 1]) at three tolerances and
//! reports each one's error against the exact solution on the same Brownian path, the
//! figure to hold peers to at equal error. Sampled trajectories are checked against the
//! CPU twin before anything is reported.

use super::harness::{Bench, median};
use super::row::Row;
use super::scenario::Scenario;
use crate::cli::error::CliError;
use crate::model::System;
use crate::model::noise::{Calculus, NoiseKind};
use crate::ode::adaptive::problem::{Control, SaveAt, Tolerance};
use crate::ode::montecarlo::MonteCarlo;
use crate::ode::sde::cpu::{integrate_adaptive, integrate_fixed};
use crate::ode::sde::kernel::Terms;
use crate::ode::sde::noise::BrownianTree;
use crate::ode::sde::run::{initial_step, run_sde_into};
use crate::ode::sde::{NoiseKey, SdeMethod, SdeProblem, Steps};
use crate::ode::{
    Ensemble, FanOut, MemorySink, RunOptions, RunStats, Save, SavePlan, Sink, Status, TimeGrid,
};
use crate::precision::Precision;

/// Trajectories checked against the twin in every run.
const SAMPLE: usize = 16;

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Runtime(format!("benchmark run failed: {e}"))
}

fn ou_problem(n: usize) -> Result<SdeProblem, CliError> {
    let system = crate::model::builtin("ornstein_uhlenbeck")
        .ok_or_else(|| failed("the built-in ornstein_uhlenbeck is missing"))?
        .map_err(failed)?;
    Ok(SdeProblem {
        ensemble: Ensemble::new(&system, n),
        system,
        method: SdeMethod::EulerMaruyama,
        steps: Steps::Fixed {
            grid: TimeGrid::from_span(0.0, 1.0, 1e-3).map_err(failed)?,
            save: Save::Final,
        },
        noise: NoiseKey {
            seed: 1,
            antithetic: false,
        },
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

/// One run into memory and the Monte Carlo reducer.
fn run_once(
    bench: &Bench,
    problem: &SdeProblem,
) -> Result<(MemorySink, MonteCarlo, RunStats), CliError> {
    let (n, dim) = (problem.ensemble.n, problem.system.dim());
    let n_save = crate::ode::sde::run::check(problem).map_err(failed)?.len();
    let mut memory = MemorySink::new(n, dim, n_save, problem.precision);
    let mut stats = MonteCarlo::new(n_save, dim, &[0.05, 0.5, 0.95]);
    let run = {
        let mut fan = FanOut(vec![&mut memory as &mut dyn Sink, &mut stats]);
        run_sde_into(bench.ctx, problem, &RunOptions::default(), &mut fan).map_err(failed)?
    };
    Ok((memory, stats, run))
}

/// `sde-em`: throughput in path-steps per second, with the twin and moment checks.
fn em(bench: &Bench, n: usize) -> Result<Row, CliError> {
    let problem = ou_problem(n)?;
    let (memory, mc, first) = run_once(bench, &problem)?;
    let sol = memory.into_solution(1, vec!["x".into()], vec![1.0], first.clone());
    if let Some(j) = sol.status.iter().position(|s| *s != Status::Success) {
        return Err(CliError::Runtime(format!(
            "self-check failed: path {j} ended with '{}'",
            sol.status[j].describe()
        )));
    }
    // The twin: f32 rounding over 1,000 steps of this contracting SDE stays near 1e-6.
    let terms = Terms::new(&problem.system, problem.method).map_err(failed)?;
    let Steps::Fixed { grid, save } = &problem.steps else {
        unreachable!("sde-em takes fixed steps")
    };
    let plan = SavePlan::new(*save, grid.n_steps).map_err(failed)?;
    let mut worst = 0.0f64;
    for j in sampled(n) {
        let u0: Vec<f64> = problem
            .ensemble
            .states(j..j + 1)
            .iter()
            .map(|&x| x as f32 as f64)
            .collect();
        let p: Vec<f64> = problem
            .ensemble
            .param_slots(j..j + 1)
            .iter()
            .map(|&x| x as f32 as f64)
            .collect();
        let (twin, _) = integrate_fixed(
            &problem.system,
            &terms,
            problem.method,
            &problem.noise,
            j as u64,
            (&u0, &p),
            grid,
            &plan,
        );
        let d = (sol.final_state(j)[0] - twin[0]).abs() / twin[0].abs().max(1.0);
        if d.is_nan() || d > 1e-4 {
            return Err(CliError::Runtime(format!(
                "self-check failed: path {j} differs from the CPU twin by {d:.2e}"
            )));
        }
        worst = worst.max(d);
    }
    // Moments against EM's own exact moments for this linear SDE (mean μ + (1 − θh)^n (X0 −
    // μ), variance σ²h Σ (1 − θh)^{2k}), within 5 standard errors.
    let r = mc.result();
    let (theta, mu, sigma, x0, h) = (1.0f64, 0.5, 0.3, 1.0, 1e-3);
    let em_mean = mu + (1.0 - theta * h).powi(1000) * (x0 - mu);
    let em_var: f64 = (0..1000)
        .map(|k| sigma * sigma * h * (1.0 - theta * h).powi(2 * k))
        .sum();
    let (mean, var) = (r.mean[0], r.var[0]);
    let se_mean = (em_var / n as f64).sqrt();
    let se_var = (2.0 / (n as f64 - 1.0)).sqrt() * em_var;
    if (mean - em_mean).abs() > 5.0 * se_mean || (var - em_var).abs() > 5.0 * se_var {
        return Err(CliError::Runtime(format!(
            "self-check failed: mean {mean} variance {var} against EM's exact {em_mean} {em_var}"
        )));
    }
    let mut runs = vec![first];
    while runs.len() < bench.reps.min(3) && runs[0].solve.as_secs_f64() < 1.0 {
        runs.push(run_once(bench, &problem)?.2);
    }
    let mut solves: Vec<f64> = runs.iter().map(|r| r.solve.as_secs_f64()).collect();
    let mid = median(&mut solves);
    let stats = runs
        .iter()
        .find(|r| r.solve.as_secs_f64() == mid)
        .expect("the median is one of the runs");
    let mut row = Row::new(
        Scenario::SdeEm,
        "em, final + mean/var",
        n,
        stats.solve.as_secs_f64(),
        (stats.trajectory_steps as f64, "path-steps"),
        format!(
            "{} paths = twin ± {worst:.1e}; moments within 5 SE",
            sampled(n).len()
        ),
    );
    row.gpu_seconds = stats.gpu.map(|g| g.as_secs_f64());
    row.note = Some(format!(
        "mean {mean:.6} (EM exact {em_mean:.6}, SE {se_mean:.1e}), variance {var:.6} \
         (EM exact {em_var:.6}); median of {} runs",
        runs.len()
    ));
    Ok(row)
}

fn gbm() -> Result<System, CliError> {
    System::from_equations_with_noise(
        "gbm",
        &[("S", 1.0)],
        &[("mu", 1.0), ("sigma", 0.5)],
        "dS = mu*S",
        "dS = sigma*S",
        NoiseKind::Diagonal,
        Calculus::Ito,
    )
    .map_err(failed)
}

/// `sde-adaptive`: milstein-adaptive on GBM at rtol = atol = 1e-2, 1e-3, 1e-4; the error is
/// the mean over all paths of |S_T − S0 exp((μ − σ²/2)T + σ W_T)|, W_T the Brownian tree's
/// root (the path the run sampled).
fn adaptive(bench: &Bench, n: usize) -> Result<Vec<Row>, CliError> {
    let system = gbm()?;
    let mut rows = Vec::new();
    for tol in [1e-2, 1e-3, 1e-4] {
        let control = Control {
            rtol: Tolerance::All(tol),
            atol: Tolerance::All(tol),
            ..Control::default()
        };
        let depth = crate::ode::sde::DEFAULT_TREE_DEPTH_F32;
        let problem = SdeProblem {
            ensemble: Ensemble::new(&system, n),
            system: system.clone(),
            method: SdeMethod::MilsteinAdaptive,
            steps: Steps::Adaptive {
                t0: 0.0,
                t1: 1.0,
                saveat: SaveAt::Final,
                control: control.clone(),
                depth,
            },
            noise: NoiseKey {
                seed: 1,
                antithetic: false,
            },
            precision: Precision::F32,
        };
        let (memory, _, stats) = run_once(bench, &problem)?;
        let sol = memory.into_solution(1, vec!["S".into()], vec![1.0], stats.clone());
        let tree = BrownianTree {
            t0: 0.0,
            t1: 1.0,
            depth,
            m: 1,
        };
        let exact = |j: usize| {
            let mut w = [0.0];
            tree.at(&problem.noise, j as u64, 1.0, &mut w);
            (0.875f64 + 0.5 * w[0]).exp()
        };
        let mut error = 0.0;
        for j in 0..n {
            if sol.status[j] != Status::Success {
                return Err(CliError::Runtime(format!(
                    "self-check failed: path {j} ended with '{}'",
                    sol.status[j].describe()
                )));
            }
            error += (sol.final_state(j)[0] - exact(j)).abs() / n as f64;
        }
        // The twin in f64 takes the same kind of steps; the f32 run may decide a step
        // differently after rounding, so the two agree to the tolerance's scale.
        let terms = Terms::new(&problem.system, problem.method).map_err(failed)?;
        let dt0 = initial_step(&problem);
        for j in sampled(n) {
            let out = integrate_adaptive(
                &problem.system,
                &terms,
                &problem.noise,
                j as u64,
                (&[1.0], &[1.0, 0.5]),
                &tree,
                &[1.0],
                (&control, dt0),
            );
            let d = (sol.final_state(j)[0] - out.saves[0]).abs();
            if d.is_nan() || d > 50.0 * tol * out.saves[0].abs().max(1.0) {
                return Err(CliError::Runtime(format!(
                    "self-check failed: path {j} differs from the CPU twin by {d:.2e} at tolerance {tol:e}"
                )));
            }
        }
        let attempts = stats.trajectory_steps as f64;
        let mut row = Row::new(
            Scenario::SdeAdaptive,
            &format!("milstein-adaptive {tol:e}"),
            n,
            stats.solve.as_secs_f64(),
            (attempts, "step attempts"),
            format!("{} paths = twin at tolerance scale", sampled(n).len()),
        );
        row.gpu_seconds = stats.gpu.map(|g| g.as_secs_f64());
        row.error = Some(error);
        row.note = Some(format!(
            "{:.1} attempts per path; error = mean |S_T − exact on the same path|",
            attempts / n as f64
        ));
        rows.push(row);
    }
    Ok(rows)
}

pub fn run(bench: &Bench, scenario: Scenario, size: Option<usize>) -> Result<Vec<Row>, CliError> {
    Ok(match scenario {
        Scenario::SdeEm => vec![em(bench, size.unwrap_or(1_000_000))?],
        Scenario::SdeAdaptive => adaptive(bench, size.unwrap_or(65_536))?,
        _ => unreachable!("not an SDE scenario"),
    })
}
