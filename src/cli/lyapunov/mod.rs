//! `phaseflow lyapunov`: a system and an ensemble (the sweeps and initial states of
//! `simulate`'s flags) → every trajectory's Lyapunov exponents with their standard errors on
//! the GPU → a summary, `.npy` files and a picture of λ against the swept parameter(s).

mod plot;

use super::ensemble_flags::EnsembleFlags;
use super::error::CliError;
use super::format::seconds;
use super::interrupt;
use super::simulate::{parse_span, positive};
use super::spec_flags::run_spec_error;
use crate::gpu::{AdapterChoice, GpuContext};
use crate::io::OutputDir;
use crate::ode::lyapunov::problem::check_system;
use crate::ode::lyapunov::{DEFAULT_BLOCKS, LyapunovProblem, LyapunovResult, lyapunov_spectra};
use crate::ode::{Parameters, Precision, RunOptions, Solver, Status};
use crate::spec::{RunSpec, load_system, problem_for_system};
use serde_json::json;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "\
Lyapunov exponents of every trajectory of an ensemble, on the GPU (Benettin's method).

Each trajectory integrates its state for --transient, then the state and K tangent vectors
together for --time (or over --tspan T0:T1, the transient included), with one fixed-step
Runge-Kutta method (--solver, rk4 by default) at --dt; the tangent vectors follow the
system's symbolic Jacobian and are re-orthonormalised by modified Gram-Schmidt every
--renorm time units. λ_i = Σ ln R_ii / T, largest first; -k K gives the K largest (default:
the full spectrum). Each exponent comes with a standard error: the spread of its means over
--blocks equal stretches of the averaging time, divided by √blocks.

Trajectories differ as in `simulate`: --sweep PARAM=LO:HI (or a grid with --sweep twice and
LO:HI:COUNT), --param, --set, --params FILE.npy, --u0*, --seed.

Examples:
  phaseflow lyapunov lorenz -n 10000 --sweep rho=0:200 -o lorenz-lyap
  phaseflow lyapunov lorenz --sweep rho=20:200:200 --sweep sigma=5:20:150 -k 1 -o plane
  phaseflow lyapunov rossler -n 1000 --sweep c=2:12 -k 1 --dt 0.01 --time 1000
  phaseflow lyapunov henon_heiles -n 1 --dt 0.01 --time 2000 --precision f64

Output (with -o DIR): lyapunov.npy [N, k] float64 (the exponents, largest first; NaN where
a trajectory did not succeed), lyapunov_error.npy [N, k] float64 (their standard errors),
status.npy [N] u8 (1 success, 4 non-finite), params.npy [N, n_params] float64, final.npy
[N, dim] float64 (each state at the end), lyapunov.png (λ against the swept parameter, one
line per exponent; for a two-parameter grid, λ1 as a colour map over the plane; otherwise
against the trajectory index) and run.json describing the run.";

#[derive(Debug, clap::Args)]
pub struct LyapunovArgs {
    /// A built-in system's name or the path of a system file (.toml)
    system: String,

    /// Exponents: the K largest [default: all, the full spectrum]
    #[arg(short, allow_negative_numbers = true)]
    k: Option<usize>,

    /// Explicit Runge-Kutta method of every step: euler, heun, rk4 [default], or a pair's
    /// propagating method without error control (bs3, dp5, tsit5, dop853)
    #[arg(long, value_enum, hide_possible_values = true)]
    solver: Option<Solver>,

    /// Arithmetic precision (f64 needs an adapter with SHADER_F64); files are float64 either way
    #[arg(long, value_enum)]
    precision: Option<Precision>,

    /// Step size; must divide the transient, the time and --renorm [default: the system's
    /// suggestion]
    #[arg(long, allow_negative_numbers = true, value_parser = positive("dt"))]
    dt: Option<f64>,

    /// Time integrated before the exponents are measured (state only)
    #[arg(long, default_value_t = 10.0, allow_negative_numbers = true)]
    transient: f64,

    /// Time the exponents are averaged over, after the transient [default: 100]
    #[arg(long, allow_negative_numbers = true, conflicts_with = "tspan")]
    time: Option<f64>,

    /// The whole integration T0:T1 instead of --time: the transient from T0, then averaging
    /// to T1
    #[arg(long, value_name = "T0:T1", value_parser = parse_span, allow_hyphen_values = true)]
    tspan: Option<[f64; 2]>,

    /// Time between re-orthonormalisations [default: 10 steps]. Long intervals let the
    /// tangent vectors align (they separate like e^{(λ1 − λk)·renorm}), which f32 resolves
    /// only while that stays well under 10^7
    #[arg(long, allow_negative_numbers = true)]
    renorm: Option<f64>,

    /// Stretches of the averaging time whose spread gives each exponent's standard error
    #[arg(long, default_value_t = DEFAULT_BLOCKS)]
    blocks: usize,

    #[command(flatten)]
    ensemble: EnsembleFlags,

    /// Write the results as .npy files and a PNG into this directory
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// With -o: replace the results already in DIR
    #[arg(long)]
    overwrite: bool,

    /// Print a JSON summary instead of text
    #[arg(long)]
    json: bool,

    /// Invocations per workgroup (performance only; results do not change)
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    workgroup_size: u32,
}

/// The files a run writes, so that an output directory holding them needs --overwrite.
const FILES: [&str; 7] = [
    "lyapunov.npy",
    "lyapunov_error.npy",
    "status.npy",
    "params.npy",
    "final.npy",
    "lyapunov.png",
    "run.json",
];

impl LyapunovArgs {
    /// The checked problem.
    fn problem(&self) -> Result<LyapunovProblem, CliError> {
        let system = load_system(&self.system)?;
        let k = self.k.unwrap_or(system.dim());
        check_system(&system, k).map_err(|e| CliError::Input(e.to_string()))?;
        let solver = self.solver.unwrap_or_default();
        if solver.is_sde() || solver.is_stiff() {
            return Err(CliError::Input(format!(
                "--solver {}: Lyapunov spectra take an explicit Runge-Kutta method (euler, \
                 heun, rk4, or a pair's fixed step: bs3, dp5, tsit5, dop853)",
                solver.name()
            )));
        }
        let dt = match (self.dt, system.meta.dt) {
            (Some(dt), _) | (None, Some(dt)) => dt,
            (None, None) => {
                return Err(CliError::Input(format!(
                    "{} suggests no step size; give --dt",
                    system.name()
                )));
            }
        };
        let (t0, time) = match (self.tspan, self.time) {
            (Some([a, b]), _) => (a, b - a - self.transient),
            (None, t) => (0.0, t.unwrap_or(100.0)),
        };
        if let Some([a, b]) = self.tspan
            && b.partial_cmp(&a) != Some(std::cmp::Ordering::Greater)
        {
            return Err(CliError::Input(format!(
                "--tspan {a}:{b} does not run forwards; give T0:T1 with T1 after T0"
            )));
        }
        if let Some([a, b]) = self.tspan
            && b - a <= self.transient
        {
            return Err(CliError::Input(format!(
                "--tspan {a}:{b} leaves no time after the transient of {}; widen it or \
                 shorten --transient",
                self.transient
            )));
        }
        // The ensemble as `simulate` builds it; its span and step are placeholders (the
        // problem's own are checked below), so only the ensemble flags can fail here.
        let flags = self.ensemble.spec(&self.system)?;
        let spec = RunSpec {
            solver: Some(Solver::Rk4),
            tspan: Some([0.0, 1.0]),
            dt: Some(1.0),
            ..flags.clone()
        };
        let any = problem_for_system(system.clone(), &spec)
            .map_err(|e| run_spec_error(e, &flags, None))?;
        let problem = LyapunovProblem {
            ensemble: any.ensemble().clone(),
            system,
            precision: self.precision.unwrap_or_default(),
            tableau: solver.step_tableau(),
            t0,
            dt,
            transient: self.transient,
            time,
            renorm: self.renorm.unwrap_or(10.0 * dt),
            k,
            blocks: self.blocks,
        };
        problem.check().map_err(|e| {
            let mut text = e
                .to_string()
                .replace("transient", "--transient")
                .replace("renorm", "--renorm")
                .replace("blocks must", "--blocks must");
            if let Some(rest) = text.strip_prefix("time ") {
                text = format!("--time {rest}");
            }
            if self.renorm.is_none() && text.contains("--renorm") {
                text.push_str(&format!(
                    " (--renorm was not given: it defaults to 10 steps of --dt, here {})",
                    problem.renorm
                ));
            }
            CliError::Input(text)
        })?;
        Ok(problem)
    }
}

/// What the picture shows: the swept parameters' names and each trajectory's values.
fn swept(problem: &LyapunovProblem) -> Vec<(String, Vec<f64>, Option<usize>)> {
    let Parameters::Sweep(axes) = &problem.ensemble.params else {
        return Vec::new();
    };
    let n = problem.ensemble.n;
    let params = problem.ensemble.params(0..n);
    let cols = problem.system.n_params();
    axes.iter()
        .map(|a| {
            (
                problem.system.params[a.index].name.clone(),
                (0..n).map(|j| params[j * cols + a.index]).collect(),
                a.count,
            )
        })
        .collect()
}

/// The ensemble flags as run-config keys (`n`, `sweep`, `param`, `set`, `u0`, `seed`), the
/// unset ones left out, so that run.json says which trajectories ran.
fn ensemble_json(spec: &RunSpec) -> serde_json::Value {
    let mut v = serde_json::to_value(spec).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.retain(|key, value| {
            key != "system" && !value.is_null() && !value.as_object().is_some_and(|m| m.is_empty())
        });
    }
    v
}

fn summary(
    problem: &LyapunovProblem,
    r: &LyapunovResult,
    ensemble: serde_json::Value,
) -> serde_json::Value {
    let ok: Vec<usize> = (0..r.n)
        .filter(|&j| r.status[j] == Status::Success)
        .collect();
    let column = |m: usize| -> serde_json::Value {
        let v: Vec<f64> = ok.iter().map(|&j| r.exponents(j)[m]).collect();
        if v.is_empty() {
            return json!(null);
        }
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        json!({"mean": mean, "min": min, "max": max})
    };
    // Chaotic: the largest exponent positive by more than three standard errors.
    let chaotic = ok
        .iter()
        .filter(|&&j| r.exponents(j)[0] > 3.0 * r.errors(j)[0])
        .count();
    let s = &r.stats;
    let blocks = problem
        .steps()
        .map_or(problem.blocks as u32, |st| st.blocks());
    let warnings = warnings(problem, r, &ok, blocks);
    json!({
        "system": problem.system.name(),
        "n": r.n,
        "k": r.k,
        "solver": problem.tableau.name,
        "precision": problem.precision,
        "ensemble": ensemble,
        "tspan": [problem.t0, problem.t0 + problem.transient + problem.time],
        "dt": problem.dt,
        "transient": problem.transient,
        "time": problem.time,
        "renorm": problem.renorm,
        "blocks": blocks,
        "status": crate::ode::solution::status_counts_json(
            Status::ALL
                .into_iter()
                .map(|st| (st, r.status.iter().filter(|&&x| x == st).count()))
                .filter(|&(_, c)| c > 0)
                .collect()
        ),
        "chaotic": chaotic,
        "exponents": (0..r.k).map(column).collect::<Vec<_>>(),
        "seconds": {"solve": s.solve.as_secs_f64(), "compile": s.compile.as_secs_f64(),
                    "setup": s.setup.as_secs_f64()},
        "trajectory_steps": s.trajectory_steps,
        "trajectories_per_second": r.n as f64 / s.solve.as_secs_f64().max(1e-12),
        "warnings": warnings,
        // A few trajectories: each one's exponents and standard errors, as the text prints.
        "trajectories": (r.n <= 8).then(|| (0..r.n).map(|j| json!({
            "exponents": r.exponents(j), "errors": r.errors(j)
        })).collect::<Vec<_>>()),
    })
}

/// Out-of-order exponents are printed 3 combined standard errors apart or more.
const ORDER_SIGMAS: f64 = 3.0;
/// f32 keeps about 7 digits: tangent vectors that separate by more than e^12 (1.6e5)
/// between renormalisations leave the smaller ones with 2 or fewer.
const F32_SEPARATION: f64 = 12.0;

/// What the user should know about the figures: fewer blocks than asked (they must hold
/// whole renormalisations), exponents that did not converge into order, and tangent
/// vectors that separated beyond what f32 resolves between renormalisations.
fn warnings(
    problem: &LyapunovProblem,
    r: &LyapunovResult,
    ok: &[usize],
    blocks: u32,
) -> Vec<String> {
    let mut out = Vec::new();
    if blocks as usize != problem.blocks {
        out.push(format!(
            "the standard errors come from {blocks} blocks, not the {} asked for: blocks hold \
             whole re-orthonormalisations (of every {}), and there are {} of them",
            problem.blocks,
            problem.renorm,
            problem.steps().map_or(0, |st| st.renorms)
        ));
    }
    let failed = r.n - ok.len();
    if failed > 0 {
        out.push(format!(
            "{} did not succeed (see status; their exponents are NaN): the state or the \
             tangent vectors overflowed; a smaller --dt or a shorter --renorm may help",
            plural(failed, "trajectory", "trajectories")
        ));
    }
    let unordered = ok
        .iter()
        .filter(|&&j| {
            let (l, e) = (r.exponents(j), r.errors(j));
            (1..r.k).any(|i| l[i] - l[i - 1] > ORDER_SIGMAS * (e[i] + e[i - 1]))
        })
        .count();
    if unordered > 0 {
        out.push(format!(
            "the exponents of {} are out of order (a later one larger by more than \
             {ORDER_SIGMAS} standard errors): they have not converged; average over a longer \
             --time",
            plural(unordered, "trajectory", "trajectories")
        ));
    }
    if problem.precision == Precision::F32 && r.k > 1 {
        let spread = ok
            .iter()
            .map(|&j| (r.exponents(j)[0] - r.exponents(j)[r.k - 1]) * problem.renorm)
            .fold(0.0f64, f64::max);
        if spread > F32_SEPARATION {
            out.push(format!(
                "between re-orthonormalisations the tangent vectors separate by at least \
                 e^{spread:.0} (from these exponents, which the separation itself makes too \
                 small), more than f32 resolves (e^{F32_SEPARATION}): the smaller exponents \
                 are likely wrong; shorten --renorm or use --precision f64"
            ));
        }
    }
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn print_text(problem: &LyapunovProblem, r: &LyapunovResult, s: &serde_json::Value) {
    let solve = r.stats.solve.as_secs_f64();
    println!(
        "{}: {} of {}, {} dt = {} ({} steps each), {}",
        problem.system.name(),
        plural(r.k, "exponent", "exponents"),
        plural(r.n, "trajectory", "trajectories"),
        problem.tableau.name,
        problem.dt,
        r.stats.trajectory_steps / r.n.max(1) as u64,
        match problem.precision {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    );
    println!(
        "solve {} ({:.0} trajectories/s), compile {}",
        seconds(solve),
        r.n as f64 / solve.max(1e-12),
        seconds(r.stats.compile.as_secs_f64())
    );
    println!("status: {}", s["status"]);
    if r.n <= 8 {
        for j in 0..r.n {
            let cells: Vec<String> = r
                .exponents(j)
                .iter()
                .zip(r.errors(j))
                .map(|(l, e)| format!("{l:.4} ± {e:.4}"))
                .collect();
            println!("  {j}: {}", cells.join(", "));
        }
    } else {
        for m in 0..r.k {
            let c = &s["exponents"][m];
            println!(
                "  λ{}: mean {:.4}, min {:.4}, max {:.4}",
                m + 1,
                c["mean"].as_f64().unwrap_or(f64::NAN),
                c["min"].as_f64().unwrap_or(f64::NAN),
                c["max"].as_f64().unwrap_or(f64::NAN)
            );
        }
        println!("chaotic (λ1 > 3 standard errors): {}", s["chaotic"]);
    }
    for w in s["warnings"].as_array().into_iter().flatten() {
        println!("note: {}", w.as_str().unwrap_or_default());
    }
}

pub fn run(args: &LyapunovArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    if args.overwrite && args.out.is_none() {
        return Err(CliError::Input(
            "--overwrite replaces the results in -o DIR; give -o DIR".into(),
        ));
    }
    let problem = args.problem()?;
    // The directory is made (and proved writable) before any work.
    let out = match &args.out {
        Some(dir) => {
            if !args.overwrite
                && let Some(f) = FILES.iter().find(|f| dir.join(f).exists())
            {
                return Err(CliError::Input(format!(
                    "'{}' holds results already ({f}); give --overwrite to replace them",
                    dir.display()
                )));
            }
            Some(OutputDir::create(dir).map_err(|e| CliError::Input(e.to_string()))?)
        }
        None => None,
    };
    let ctx = GpuContext::new(choice)?;
    let options = RunOptions {
        workgroup_size: args.workgroup_size,
        cancel: Some(interrupt::token()),
        ..RunOptions::default()
    };
    interrupt::install_handler();
    let r = lyapunov_spectra(&ctx, &problem, &options)?;
    if r.stats.completed < r.n {
        // The output directory, if this run made it, goes with the unwritten results.
        return Err(CliError::Interrupted(format!(
            "interrupted after {} of {} trajectories; nothing was written",
            r.stats.completed, r.n
        )));
    }
    let s = summary(
        &problem,
        &r,
        ensemble_json(&args.ensemble.spec(&args.system)?),
    );
    if let Some(mut dir) = out {
        write(&mut dir, &problem, &r, &s)?;
        dir.commit().map_err(|e| CliError::Runtime(e.to_string()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s).expect("JSON"));
    } else {
        print_text(&problem, &r, &s);
    }
    Ok(())
}

fn write(
    dir: &mut OutputDir,
    problem: &LyapunovProblem,
    r: &LyapunovResult,
    s: &serde_json::Value,
) -> Result<(), CliError> {
    let io = |e: crate::io::output::OutputError| CliError::Runtime(e.to_string());
    let (n, k) = (r.n as u64, r.k as u64);
    let n_params = problem.system.n_params() as u64;
    dir.write_npy("lyapunov.npy", &[n, k], &r.exponents)
        .map_err(io)?;
    dir.write_npy("lyapunov_error.npy", &[n, k], &r.errors)
        .map_err(io)?;
    let codes: Vec<u8> = r.status.iter().map(|&st| st as u8).collect();
    dir.write_npy("status.npy", &[n], &codes).map_err(io)?;
    let params = problem.ensemble.params(0..r.n);
    dir.write_npy("params.npy", &[n, n_params], &params)
        .map_err(io)?;
    let dim = problem.system.dim() as u64;
    dir.write_npy("final.npy", &[n, dim], &r.final_states)
        .map_err(io)?;
    let png = plot::picture(problem, r, &swept(problem)).map_err(CliError::Runtime)?;
    dir.write_bytes("lyapunov.png", &png).map_err(io)?;
    dir.write_json("run.json", s).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(exponents: Vec<f64>, errors: Vec<f64>, k: usize) -> LyapunovResult {
        let n = exponents.len() / k;
        LyapunovResult {
            n,
            k,
            exponents,
            errors,
            status: vec![Status::Success; n],
            final_states: vec![0.0; 3 * n],
            stats: Default::default(),
        }
    }

    /// Each warning appears exactly when its condition holds: fewer blocks than asked,
    /// exponents out of order beyond their errors, f32 tangent vectors separating by more
    /// than e^12 between renormalisations.
    #[test]
    fn warnings_say_what_the_figures_cannot_be_trusted_for() {
        let lorenz = crate::model::builtin("lorenz").unwrap().unwrap();
        // 100 renormalisations in 30 blocks: 4 each, so 25 blocks.
        let mut p = LyapunovProblem::new(lorenz, 1, 0.01, 1.0, 10.0);
        p.blocks = 30;
        let good = result(vec![0.9, 0.0, -14.5], vec![0.01; 3], 3);
        let w = warnings(&p, &good, &[0], 25);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("25 blocks, not the 30 asked for"), "{w:?}");
        p.blocks = 25;
        assert!(warnings(&p, &good, &[0], 25).is_empty());

        // λ2 above λ1 by 0.2 with errors 0.01: out of order; with errors 0.1, within.
        let unordered = result(vec![0.1, 0.3, -14.0], vec![0.01; 3], 3);
        let w = warnings(&p, &unordered, &[0], 25);
        assert!(w.len() == 1 && w[0].contains("exponents of 1 trajectory are out of order"));
        let noisy = result(vec![0.1, 0.3, -14.0], vec![0.1; 3], 3);
        assert!(warnings(&p, &noisy, &[0], 25).is_empty());
        // A failed trajectory is not judged, only counted.
        let w = warnings(&p, &unordered, &[], 25);
        assert!(
            w.len() == 1 && w[0].starts_with("1 trajectory did not succeed"),
            "{w:?}"
        );

        // Renormalising every 1.0 with λ1 − λ3 = 15.4: e^15 in f32 warns, in f64 not.
        p.renorm = 1.0;
        let w = warnings(&p, &good, &[0], 25);
        assert!(w.len() == 1 && w[0].contains("e^15"), "{w:?}");
        p.precision = Precision::F64;
        assert!(warnings(&p, &good, &[0], 25).is_empty());
    }
}
