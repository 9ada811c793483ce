//! The chaos scenario `lyapunov` (issue 26): the full Lorenz spectrum (σ = 10, β = 8/3,
//! u0 = (1, 0, 0)) for N values of ρ = linspace(0, 200, N), a transient of 20 then T = 100,
//! RK4 with dt = 0.005 (24,000 steps, 20,000 of them on the state and three tangent
//! vectors), re-orthonormalised every 0.1, in f32 and f64; N = 10^5 by default. Throughput
//! is trajectories per second and trajectory-steps per second of the combined system, the
//! figures the numba peer (`benches/peers/lyapunov_numba.py`) is quoted in, and counted
//! FLOP/s against the `peak` ceiling.
//!
//! Before anything is reported: every trajectory must succeed and keep the trace identity
//! (the exponents sum to −(σ + 1 + β) for every ρ, since ln|det| of the tangent flow grows
//! at tr J), and sampled trajectories must agree with the f64 CPU twin within their own
//! statistical errors (chaotic trajectories of f32 and f64 part ways within t ≈ 20, so
//! only the exponents, not the paths, can agree).

use super::harness::Bench;
use super::row::Row;
use super::scenario::Scenario;
use crate::cli::error::CliError;
use crate::model::System;
use crate::model::expr::{Node, powi_steps};
use crate::ode::lyapunov::cpu::spectrum;
use crate::ode::lyapunov::{LyapunovProblem, LyapunovResult, lyapunov_spectra};
use crate::ode::{Axis, Parameters, RunOptions, SimError, Status, cost};
use crate::precision::Precision;

const DEFAULT_N: usize = 100_000;
const RHO: (f64, f64) = (0.0, 200.0);
const DT: f64 = 0.005;
const TRANSIENT: f64 = 20.0;
const TIME: f64 = 100.0;
const RENORM: f64 = 0.1;
/// Trajectories checked against the twin (both ends and evenly between).
const SAMPLE: usize = 6;
/// |Σλ + σ + 1 + β| for every trajectory. f64: the identity holds to RK4's O(dt^4) (~1e-8)
/// and rounding; f32: each of 1,000 renormalisations adds ln R_mm rounded at 6e-8 of sums
/// up to ~1,500 and Gram–Schmidt in f32 loses ~1e-4 relative a renormalisation at the
/// contraction rates of large ρ, so 0.02 there (a wrong stage breaks it by O(1)).
const TRACE_F64: f64 = 1e-3;
const TRACE_F32: f64 = 2e-2;

/// The peer on the machine the figure is set for (2 vCPUs shared with other work,
/// lavapipe), measured with `benches/peers/lyapunov_numba.py 400` on 2026-12-03 (command,
/// runs and load in the performance note): name, trajectories per second (the faster of
/// its two variants: no allocation in the loop, first).
const PEERS: [(&str, f64); 2] = [
    ("numba tuned (2 threads)", 366.0),
    ("numba numpy-style", 21.0),
];
const PEER_MACHINE: &str = "llvmpipe";

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Runtime(format!("benchmark run failed: {e}"))
}

fn problem(n: usize, precision: Precision) -> Result<LyapunovProblem, CliError> {
    let system = System::from_equations(
        "lorenz",
        &[("x", 1.0), ("y", 0.0), ("z", 0.0)],
        &[("sigma", 10.0), ("rho", 28.0), ("beta", 8.0 / 3.0)],
        "dx = sigma*(y - x)\ndy = x*(rho - z) - y\ndz = x*y - beta*z",
    )
    .map_err(failed)?;
    let mut p = LyapunovProblem::new(system, n, DT, TRANSIENT, TIME);
    p.renorm = RENORM;
    p.precision = precision;
    p.ensemble.params = Parameters::Sweep(vec![Axis::linear(1, RHO.0, RHO.1)]);
    Ok(p)
}

/// Counted operations of an expression tree (`ode::cost`'s conventions).
fn node_flops(n: &Node) -> u64 {
    let mut count = 0u64;
    n.visit(&mut |node| {
        count += match node {
            Node::Neg(_) | Node::Bin(..) | Node::Call(..) => 1,
            Node::PowInt(_, k) => {
                let (sq, bits) = powi_steps(k.unsigned_abs());
                sq as u64 + bits.len().saturating_sub(1) as u64 + u64::from(*k < 0)
            }
            _ => 0,
        }
    });
    count
}

/// Counted operations of one step of the combined system (state and k tangent vectors),
/// its share of a renormalisation included, and of one plain step of the transient.
fn step_flops(p: &LyapunovProblem) -> Result<(u64, u64), CliError> {
    let (steps, jac) = p.check().map_err(failed)?;
    let (dim, k) = (p.system.dim() as u64, p.k as u64);
    let plain = cost::fixed_step_flops(&p.system, &p.tableau);
    let jac_flops: u64 = jac
        .program
        .lets
        .iter()
        .chain(&jac.program.outputs)
        .map(node_flops)
        .sum();
    let nnz = jac.entries.len() as u64;
    let rows = (0..p.system.dim())
        .filter(|r| jac.entries.iter().any(|e| e.0 == *r))
        .count() as u64;
    let stages = p.tableau.stages() as u64;
    // J·v: a product per entry, a sum per entry beyond the first of its row.
    let tangent = stages * (jac_flops + k * (2 * nnz - rows))
        + k * (plain - stages * cost::rhs_flops(&p.system));
    // Gram–Schmidt: k(k−1)/2 projections (a dot and an axpy: 4·dim), k norms (2·dim + sqrt
    // + log + reciprocal) and scalings (dim); the sums: 2k.
    let mgs = k * (k - 1) / 2 * 4 * dim + k * (3 * dim + 3) + 2 * k;
    Ok((plain + tangent + mgs / steps.renorm as u64, plain))
}

fn check(p: &LyapunovProblem, r: &LyapunovResult) -> Result<String, CliError> {
    if let Some(j) = r.status.iter().position(|s| *s != Status::Success) {
        return Err(CliError::Runtime(format!(
            "self-check failed: trajectory {j} ended with '{}'",
            r.status[j].describe()
        )));
    }
    let trace = -(10.0 + 1.0 + 8.0 / 3.0);
    let limit = match p.precision {
        Precision::F32 => TRACE_F32,
        Precision::F64 => TRACE_F64,
    };
    let mut worst_trace = 0.0f64;
    for j in 0..r.n {
        let d = (r.exponents(j).iter().sum::<f64>() - trace).abs();
        if d.is_nan() || d > limit {
            return Err(CliError::Runtime(format!(
                "self-check failed: trajectory {j}'s exponents {:?} sum to {:.6}, not {trace:.6}",
                r.exponents(j),
                r.exponents(j).iter().sum::<f64>()
            )));
        }
        worst_trace = worst_trace.max(d);
    }
    let (steps, jac) = p.check().map_err(failed)?;
    let m = SAMPLE.min(r.n);
    let mut js: Vec<usize> = (0..m)
        .map(|i| if m == 1 { 0 } else { i * (r.n - 1) / (m - 1) })
        .collect();
    js.dedup();
    let mut worst = 0.0f64;
    for &j in &js {
        let e = &p.ensemble;
        let want = spectrum(
            &p.system,
            &jac,
            &p.tableau,
            &steps,
            p.k,
            &e.states(j..j + 1),
            &e.param_slots(j..j + 1),
        );
        for i in 0..p.k {
            // Statistically the same: within 5 combined standard errors, plus 2e-3 for
            // exponents whose blocks barely vary (fixed points: errors ~1e-6).
            let (g, w) = (r.exponents(j)[i], want.exponents[i]);
            let allowed = 5.0 * (r.errors(j)[i] + want.errors[i]) + 2e-3;
            let d = (g - w).abs();
            if d.is_nan() || d > allowed {
                return Err(CliError::Runtime(format!(
                    "self-check failed: trajectory {j} (ρ = {:.3}) exponent {} is {g:.5}, the \
                     CPU twin's {w:.5} (allowed {allowed:.1e})",
                    e.params(j..j + 1)[1],
                    i + 1
                )));
            }
            worst = worst.max(d / allowed);
        }
    }
    Ok(format!(
        "{} trajectories = twin within {:.0}% of 5σ; all sum to tr J ± {worst_trace:.0e}",
        js.len(),
        100.0 * worst
    ))
}

fn peers_line(bench: &Bench, throughput: f64) -> String {
    let figures = PEERS
        .iter()
        .map(|(name, rate)| format!("{name} {rate:.0}/s"))
        .collect::<Vec<_>>()
        .join(", ");
    if !bench.ctx.summary.name.contains(PEER_MACHINE) {
        return format!(
            "; peers measured on a 2-core lavapipe host, not this adapter (rerun \
             benches/peers/lyapunov_numba.py here for ratios): {figures}"
        );
    }
    let ratios = PEERS
        .iter()
        .map(|(name, rate)| format!("{:.1}× {name} ({rate:.0}/s)", throughput / rate))
        .collect::<Vec<_>>()
        .join(", ");
    format!("; {ratios}")
}

fn lyapunov_row(bench: &Bench, n: usize, precision: Precision) -> Result<Row, CliError> {
    if precision == Precision::F64 && !bench.ctx.summary.shader_f64 {
        return Err(CliError::Input(format!(
            "bench lyapunov runs in f64 too, and '{}' has no f64 shaders",
            bench.ctx.summary.name
        )));
    }
    let p = problem(n, precision)?;
    let options = RunOptions::default();
    let run = || {
        lyapunov_spectra(bench.ctx, &p, &options).map_err(|e| match e {
            too_large @ SimError::OutputTooLarge { .. } => CliError::Input(too_large.to_string()),
            other => failed(other),
        })
    };
    let r = run()?;
    let check = check(&p, &r)?;
    let mut runs = vec![r.stats.clone()];
    while runs.len() < bench.reps.min(3) && runs[0].solve.as_secs_f64() < 2.0 {
        runs.push(run()?.stats);
    }
    let mut solves: Vec<f64> = runs.iter().map(|s| s.solve.as_secs_f64()).collect();
    solves.sort_by(f64::total_cmp);
    let mid = solves[solves.len() / 2];
    let stats = runs
        .iter()
        .find(|s| s.solve.as_secs_f64() == mid)
        .expect("the median is one of the runs");
    let (aug, plain) = step_flops(&p)?;
    let (steps, _) = p.check().map_err(failed)?;
    let per_trajectory = steps.main() as f64 * aug as f64 + steps.transient as f64 * plain as f64;
    let mut row = Row::new(
        Scenario::Lyapunov,
        "rk4 full spectrum",
        n,
        mid,
        (n as f64, "trajectories"),
        check,
    );
    row.precision = precision;
    row.gpu_seconds = stats.gpu.map(|g| g.as_secs_f64());
    row.flops = Some(n as f64 * per_trajectory);
    row.bytes = Some(cost::compulsory_bytes(&p.system, n, 1, precision.bytes()) as f64);
    let total_steps = stats.trajectory_steps as f64;
    row.note = Some(format!(
        "{:.3e} trajectory-steps/s ({} steps a trajectory, {} of them on state + 3 tangent \
         vectors: {aug} flop a step, {plain} for the state alone); median of {} runs \
         ({:.3}–{:.3} s){}",
        total_steps / mid,
        steps.grid.n_steps,
        steps.main(),
        runs.len(),
        solves[0],
        solves[solves.len() - 1],
        peers_line(bench, n as f64 / mid)
    ));
    Ok(row)
}

pub fn run(bench: &Bench, scenario: Scenario, size: Option<usize>) -> Result<Vec<Row>, CliError> {
    let n = size.unwrap_or(DEFAULT_N);
    Ok(match scenario {
        Scenario::Lyapunov => vec![
            lyapunov_row(bench, n, Precision::F32)?,
            lyapunov_row(bench, n, Precision::F64)?,
        ],
        _ => unreachable!("not a chaos scenario"),
    })
}
