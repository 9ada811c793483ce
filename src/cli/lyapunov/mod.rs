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
use crate::ode::lyapunov::summary::plural;
use crate::ode::lyapunov::{LyapunovProblem, LyapunovResult, lyapunov_spectra};
use crate::ode::{Parameters, Precision, RunOptions, Solver};
use crate::spec::lyapunov::{ensemble_json, lyapunov_problem};
use crate::spec::{LyapunovSpec, RunSpec, load_system};
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

--config FILE reads the run from a TOML run config: simulate's keys for the ensemble, the
system, solver, precision, dt, tspan, transient and out, and a [lyapunov] table with k, time,
renorm and blocks; flags override it. Keys the command does not read are refused.

Examples:
  phaseflow lyapunov lorenz -n 10000 --sweep rho=0:200 -o lorenz-lyap
  phaseflow lyapunov lorenz --sweep rho=20:200:200 --sweep sigma=5:20:150 -k 1 -o plane
  phaseflow lyapunov rossler -n 1000 --sweep c=2:12 -k 1 --dt 0.01 --time 1000
  phaseflow lyapunov henon_heiles -n 1 --dt 0.01 --time 2000 --precision f64
  phaseflow lyapunov --config lyapunov.toml -n 100

Output (with -o DIR): lyapunov.npy [N, k] float64 (the exponents, largest first; NaN where
a trajectory did not succeed), lyapunov_error.npy [N, k] float64 (their standard errors),
status.npy [N] u8 (1 success, 4 non-finite), params.npy [N, n_params] float64, final.npy
[N, dim] float64 (each state at the end), lyapunov.png (λ against the swept parameter, one
line per exponent; for a two-parameter grid, λ1 as a colour map over the plane; otherwise
against the trajectory index) and run.json describing the run.";

#[derive(Debug, clap::Args)]
pub struct LyapunovArgs {
    /// A built-in system's name or the path of a system file (.toml) [default: the config
    /// file's `system`]
    system: Option<String>,

    /// Read the run from a TOML run config (simulate's keys and a [lyapunov] table); flags
    /// override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

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

    /// Time integrated before the exponents are measured (state only) [default: 10]
    #[arg(long, allow_negative_numbers = true)]
    transient: Option<f64>,

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
    /// [default: 10]
    #[arg(long)]
    blocks: Option<usize>,

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
    /// The flags as a spec, to be laid over the config file's: the ensemble flags as
    /// `simulate`'s, the rest at their run-config keys and in `[lyapunov]`.
    fn flags(&self) -> Result<RunSpec, CliError> {
        let ensemble = self.ensemble.spec_of(self.system.as_deref())?;
        Ok(RunSpec {
            solver: self.solver,
            precision: self.precision,
            dt: self.dt,
            tspan: self.tspan,
            transient: self.transient,
            out: self.out.clone(),
            lyapunov: Some(LyapunovSpec {
                k: self.k,
                time: self.time,
                renorm: self.renorm,
                blocks: self.blocks,
            }),
            ..ensemble
        })
    }

    /// The run's spec (the config file with the flags laid over it) and the checked
    /// problem; errors name flags for what the flags set and the file's keys otherwise.
    fn problem(&self) -> Result<(RunSpec, LyapunovProblem), CliError> {
        let flags = self.flags()?;
        let config = self.config.as_deref();
        let spec = match config {
            Some(path) => RunSpec::from_file(path)?.merge(flags.clone()),
            None => flags.clone(),
        };
        let name = spec.system.as_deref().ok_or_else(|| no_system(config))?;
        let error = |e| run_spec_error(e, &flags, config);
        let system = load_system(name).map_err(error)?;
        let problem = lyapunov_problem(system, &spec).map_err(error)?;
        Ok((spec, problem))
    }
}

/// Neither the command line nor the config file names the system.
fn no_system(config: Option<&std::path::Path>) -> CliError {
    CliError::Input(match config {
        Some(path) => format!(
            "{} names no system: give `system = \"lorenz\"` (a built-in, see `phaseflow \
             systems`, or a system file) in it, or name one: phaseflow lyapunov SYSTEM --config \
             {}",
            path.display(),
            path.display()
        ),
        None => "no system given: phaseflow lyapunov SYSTEM (a built-in, see `phaseflow \
                 systems`, or a system file), or --config FILE with `system` in it"
            .into(),
    })
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
    let (spec, problem) = args.problem()?;
    if args.overwrite && spec.out.is_none() {
        return Err(CliError::Input(
            "--overwrite replaces the results in -o DIR; give -o DIR".into(),
        ));
    }
    // The directory is made (and proved writable) before any work.
    let out = match &spec.out {
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
    // The library's summary, with the ensemble as the run's keys gave it.
    let mut s = r.summary_json(&problem);
    s["ensemble"] = ensemble_json(&spec);
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
