//! `phaseflow estimate`: observations of N trajectories (`.npy` [N, n_obs, dim]) → one
//! Levenberg–Marquardt fit per trajectory of the chosen parameters and initial values, on
//! the GPU through forward sensitivities → fitted values, standard errors, covariances,
//! costs and statuses.

use super::ensemble_flags::EnsembleFlags;
use super::error::CliError;
use super::format::seconds;
use super::interrupt;
use super::simulate::{parse_assign, parse_span, positive};
use super::spec_flags::run_spec_error;

mod plot;
use crate::gpu::{AdapterChoice, GpuContext};
use crate::io::OutputDir;
use crate::io::npy::read_npy;
use crate::ode::estimate::shared::estimate_shared;
use crate::ode::estimate::shooting::estimate_shooting;
use crate::ode::estimate::{Estimate, EstimateError, EstimationProblem, fitted_trajectories};
use crate::ode::{Precision, RunOptions, Solver};
use crate::spec::build_problem;
use crate::spec::estimate::{
    Array, FitData, FitInputError, FitRequest, check_segments, estimation_problem, prepare_run,
};
use serde_json::json;
use std::path::{Path, PathBuf};

pub const LONG_ABOUT: &str = "\
Fits parameters and initial values of a system to observations of N trajectories, one fit
per trajectory, on the GPU.

Each trajectory j has its own observations (--observations FILE.npy [N, n_obs, dim], at the
times of --times FILE.npy [n_obs]; NaN, or 0 in --mask FILE.npy of the same shape, marks a
value not observed) and fits the quantities named by --fit NAME=LO:HI[:START] (a parameter,
or a state's initial value as STATE0; repeat the flag) within their bounds, by
Levenberg-Marquardt on the weighted least-squares cost 1/2 sum w_i (u_i(t) - y_i(t))^2
(--weights STATE=W, default 1). Every iteration of every fit still going is one GPU run of
the system with its forward sensitivities, whose saves at the observation times give each
fit's residuals and Jacobian. Fits converge, stall or reach --max-iterations on their own.
Starting values: START in --fit, else the middle of the bounds, or --start FILE.npy
[N, n_fit]. Quantities not fitted come from the ensemble flags (--set, --param, --params,
--u0 FILE.npy, ...), as in `simulate`.

The run: --solver (tsit5 by default; any ODE solver, stiff ones included), --rtol/--atol,
--dt (fixed-step solvers: every observation time must be on the grid), --tspan (default: 0
to the last observation time), --precision.

Examples:
  phaseflow estimate lorenz --observations obs.npy --times t.npy \\
      --fit sigma=1:30 --fit rho=1:60 --fit beta=0.5:6 -o fits
  phaseflow estimate harmonic --observations obs.npy --times t.npy --fit w=0.1:3:1 \\
      --fit x0=-5:5 --precision f64

Output (with -o DIR): estimates.npy [N, n_fit] float64 (the fitted values), stderr.npy
[N, n_fit] float64 (standard errors: the square roots of the covariance's diagonal),
covariance.npy [N, n_fit, n_fit] float64 (sigma^2 (J^T W J)^-1 with sigma^2 = 2 cost /
(m - n_fit), m the values observed; NaN where it does not exist), cost.npy [N] float64,
iterations.npy [N] uint32, fit_status.npy [N] u8 (1 converged, 2 max iterations, 3 the model
could not be integrated at the start, 4 stalled, 5 underdetermined: fewer values observed
than quantities fitted), fit.png (the model at the fitted values against the observations
for trajectories 0-2 and the worst fit) and run.json describing the run.

With --shared, one set of the --fit quantities is fitted to all N trajectories at once
(calibrating one model to many experiments that started differently): the cost is the sum
of every trajectory's, each iteration one GPU run of the whole ensemble. Output:
estimates.npy [n_fit], stderr.npy [n_fit], covariance.npy [n_fit, n_fit], trajectory_cost.npy
[N] (each trajectory's share of the cost at the fit: where an outlier shows), fit.png and
run.json (with the status, iterations and cost).

With --segments K (multiple shooting), the window is cut at observation times into K
segments; each segment after the first starts from a state of its own, fitted beside the
--fit quantities and joined to the previous segment's end by a penalty, so that no error in
the parameters grows for longer than one segment. Then the usual fit finishes from there,
so the outputs are the same kind as without it. For chaotic systems over windows of
several Lyapunov times, where a single trajectory's fit ends in a local minimum.";

#[derive(Debug, clap::Args)]
pub struct EstimateArgs {
    /// A built-in system's name or the path of a system file (.toml)
    system: String,

    /// Observations, an .npy of shape [N, n_obs, dim] (NaN: not observed)
    #[arg(long, value_name = "FILE.npy")]
    observations: PathBuf,

    /// The observation times, an .npy of shape [n_obs], increasing
    #[arg(long, value_name = "FILE.npy")]
    times: PathBuf,

    /// Which observed values count, an .npy of the observations' shape (0: not observed)
    #[arg(long, value_name = "FILE.npy")]
    mask: Option<PathBuf>,

    /// A quantity to fit, its bounds and optionally its start: a parameter, or a state's
    /// initial value as STATE0 (repeat the flag)
    #[arg(long, value_name = "NAME=LO:HI[:START]", value_parser = parse_assign, required = true)]
    fit: Vec<(String, Vec<f64>)>,

    /// Starting values per trajectory, an .npy of shape [N, n_fit] (columns in --fit order)
    #[arg(long, value_name = "FILE.npy")]
    start: Option<PathBuf>,

    /// Fit one set of the --fit quantities to every trajectory at once (their costs summed)
    /// instead of one set per trajectory
    #[arg(long)]
    shared: bool,

    /// Multiple shooting: cut the window at observation times into K segments, each
    /// started from a state fitted with the parameters (for chaotic systems and long
    /// windows, where one trajectory through all the data has many local minima)
    #[arg(long, value_name = "K", default_value_t = 1)]
    segments: usize,

    /// A state's weight in the cost (repeat per state) [default: 1]
    #[arg(long, value_name = "STATE=W", value_parser = parse_assign)]
    weights: Vec<(String, Vec<f64>)>,

    #[command(flatten)]
    ensemble: EnsembleFlags,

    /// ODE solver [default: tsit5]
    #[arg(long, value_enum)]
    solver: Option<Solver>,

    /// Fixed-step size (fixed-step solvers), or the first step (adaptive ones)
    #[arg(long, value_parser = positive("--dt"))]
    dt: Option<f64>,

    /// Relative tolerance (adaptive and stiff solvers) [default: 1e-8]
    #[arg(long, value_parser = positive("--rtol"))]
    rtol: Option<f64>,

    /// Absolute tolerance (adaptive and stiff solvers) [default: 1e-8]
    #[arg(long, value_parser = positive("--atol"))]
    atol: Option<f64>,

    /// Time span T0:T1 [default: 0 to the last observation time]
    #[arg(long, value_name = "T0:T1", value_parser = parse_span, allow_hyphen_values = true)]
    tspan: Option<[f64; 2]>,

    /// f32 or f64
    #[arg(long, value_enum, default_value = "f64")]
    precision: Precision,

    /// Most Levenberg-Marquardt iterations per fit
    #[arg(long, default_value_t = 50)]
    max_iterations: u32,

    /// Whether the step's error control measures the sensitivities (include) or the states
    /// only (exclude)
    #[arg(long, value_name = "HOW", default_value = "include")]
    sensitivity_error: String,

    /// Write the results as .npy files into this directory
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// With -o: replace the results already in DIR
    #[arg(long)]
    overwrite: bool,

    /// Print a JSON summary instead of text
    #[arg(long)]
    json: bool,
}

/// The files per-trajectory fits write.
const EACH_FILES: [&str; 7] = [
    "estimates.npy",
    "stderr.npy",
    "covariance.npy",
    "cost.npy",
    "iterations.npy",
    "fit_status.npy",
    "fit.png",
];
/// The files a shared fit writes.
const SHARED_FILES: [&str; 5] = [
    "estimates.npy",
    "stderr.npy",
    "covariance.npy",
    "trajectory_cost.npy",
    "fit.png",
];

/// Every file either kind of fit writes: one of them in DIR means results are there.
fn all_files() -> impl Iterator<Item = &'static str> {
    let shared_only = SHARED_FILES.into_iter().filter(|f| !EACH_FILES.contains(f));
    EACH_FILES.into_iter().chain(shared_only)
}

fn input(e: impl std::fmt::Display) -> CliError {
    CliError::Input(e.to_string())
}

fn read(path: &Path, what: &str) -> Result<Array, CliError> {
    read_npy(path)
        .map(|(shape, data)| Array { shape, data })
        .map_err(|e| input(format!("{what} '{}': {e}", path.display())))
}

/// A mistake in an input, named by its flag.
fn flag_error(e: FitInputError) -> CliError {
    let flag = match e.key {
        "n" => "-n".to_string(),
        key => format!("--{}", key.replace('_', "-")),
    };
    input(format!("{flag} {}", e.message))
}

/// The fits the flags describe.
fn problem(args: &EstimateArgs) -> Result<EstimationProblem, CliError> {
    let data = FitData {
        observations: read(&args.observations, "--observations")?,
        times: read(&args.times, "--times")?,
        mask: args
            .mask
            .as_deref()
            .map(|m| read(m, "--mask"))
            .transpose()?,
        start: args
            .start
            .as_deref()
            .map(|s| read(s, "--start"))
            .transpose()?,
    };
    let mut spec = args.ensemble.spec_of(Some(&args.system))?;
    spec.solver = args.solver.or(spec.solver);
    spec.dt = args.dt.or(spec.dt);
    spec.precision = Some(args.precision);
    if let Some(span) = args.tspan {
        spec.tspan = Some(span);
    }
    for (tol, given) in [(&mut spec.rtol, args.rtol), (&mut spec.atol, args.atol)] {
        if let Some(v) = given {
            *tol = Some(toml::Value::Float(v));
        }
    }
    prepare_run(&mut spec, &data).map_err(flag_error)?;
    let base = build_problem(&spec).map_err(|e| run_spec_error(e, &spec, None))?;
    let mut weights = Vec::new();
    for (name, v) in &args.weights {
        match v[..] {
            [w] => weights.push((name.clone(), w)),
            _ => {
                return Err(input(format!(
                    "--weights {name}: give one finite value >= 0"
                )));
            }
        }
    }
    let request = FitRequest {
        fit: args.fit.clone(),
        weights,
        sensitivity_error: Some(args.sensitivity_error.clone()),
        max_iterations: Some(args.max_iterations),
        shared: args.shared,
    };
    estimation_problem(base, &request, data).map_err(flag_error)
}

pub fn run(args: &EstimateArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    let ep = problem(args)?;
    ep.check().map_err(input)?;
    check_segments(args.segments, &ep, args.shared).map_err(flag_error)?;
    let out = match &args.out {
        Some(dir) => {
            refuse_other_run(dir)?;
            if !args.overwrite
                && let Some(f) = all_files().find(|f| dir.join(f).exists())
            {
                return Err(input(format!(
                    "'{}' holds results already ({f}); give --overwrite to replace them",
                    dir.display()
                )));
            }
            Some(OutputDir::create(dir).map_err(input)?)
        }
        None if args.overwrite => {
            return Err(input(
                "--overwrite replaces the results in -o DIR; give -o DIR",
            ));
        }
        None => None,
    };
    let ctx = GpuContext::new(choice)?;
    let options = RunOptions {
        cancel: Some(interrupt::token()),
        ..RunOptions::default()
    };
    interrupt::install_handler();
    if args.shared {
        return run_shared(args, &ctx, &ep, &options, out);
    }
    let fits = estimate_shooting(&ctx, &ep, args.segments, &options).map_err(cli_error)?;
    let summary = summary_json(args, &ep, &fits);
    if let Some(mut dir) = out {
        write(&mut dir, &fits)?;
        let k = fits.n_fit();
        let values = |j: usize| fits.values[j * k..(j + 1) * k].to_vec();
        let caption = |j: usize| {
            let fitted: Vec<String> = (0..k)
                .map(|c| {
                    let se = fits.stderr(j, c);
                    let value = significant(fits.values[j * k + c]);
                    match se.is_finite() {
                        true => format!("{} = {value} ± {se:.2e}", fits.names[c]),
                        false => format!("{} = {value}", fits.names[c]),
                    }
                })
                .collect();
            format!(
                "#{j} · {} · {}",
                fitted.join(", "),
                fits.status[j].name().replace('_', " ")
            )
        };
        let png = picture(&ctx, &ep, &fits.cost, values, caption, &options)?;
        dir.write_bytes("fit.png", &png)
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        commit(dir, &summary, &EACH_FILES)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("JSON"));
    } else {
        print_text(&ep, &fits, args.out.as_deref());
    }
    Ok(())
}

fn summary_json(args: &EstimateArgs, ep: &EstimationProblem, fits: &Estimate) -> serde_json::Value {
    let n = fits.status.len();
    let (t0, t1) = ep.problem.span();
    json!({
        "command": "estimate",
        "system": ep.problem.system().name(),
        "solver": ep.problem.solver().name(),
        "precision": ep.problem.precision().name(),
        "tspan": [t0, t1],
        "trajectories": n,
        "observation_times": ep.observations.times.len(),
        "fitted": fits.names,
        "bounds": ep.bounds,
        "weights": ep.observations.weights,
        "sensitivity_error": args.sensitivity_error,
        "max_iterations": ep.stopping.max_iterations,
        "ftol": ep.stopping.ftol,
        "xtol": ep.stopping.xtol,
        "segments": args.segments,
        "status": fits.status_counts_json(),
        "gpu_runs": fits.runs,
        "trajectory_runs": fits.trajectory_runs,
        "seconds": fits.solve.as_secs_f64(),
        "fits_per_second": n as f64 / fits.solve.as_secs_f64().max(1e-12),
        "observations": args.observations,
        "times": args.times,
    })
}

fn write(dir: &mut OutputDir, fits: &Estimate) -> Result<(), CliError> {
    let io = |e: crate::io::output::OutputError| CliError::Runtime(e.to_string());
    let (n, k) = (fits.status.len(), fits.n_fit());
    let (n64, k64) = (n as u64, k as u64);
    let stderr = fits.stderrs();
    dir.write_npy("estimates.npy", &[n64, k64], &fits.values)
        .map_err(io)?;
    dir.write_npy("stderr.npy", &[n64, k64], &stderr)
        .map_err(io)?;
    dir.write_npy("covariance.npy", &[n64, k64, k64], &fits.covariance)
        .map_err(io)?;
    dir.write_npy("cost.npy", &[n64], &fits.cost).map_err(io)?;
    dir.write_npy("iterations.npy", &[n64], &fits.iterations)
        .map_err(io)?;
    let codes: Vec<u8> = fits.status.iter().map(|&s| s as u8).collect();
    dir.write_npy("fit_status.npy", &[n64], &codes)
        .map_err(io)?;
    Ok(())
}

fn print_text(ep: &EstimationProblem, fits: &Estimate, out: Option<&Path>) {
    let n = fits.status.len();
    println!(
        "{} · {} · {} · {n} fits of {} over {} observation times",
        ep.problem.system().name(),
        ep.problem.solver().name(),
        ep.problem.precision().name(),
        fits.names.join(", "),
        ep.observations.times.len()
    );
    let counts: Vec<String> = fits
        .status_counts_json()
        .into_iter()
        .map(|(k, v)| format!("{v} {}", k.replace('_', " ")))
        .collect();
    println!("status   {}", counts.join(", "));
    println!(
        "solve    {} · {} GPU runs ({} trajectory-runs) · {:.1} fits/s",
        seconds(fits.solve.as_secs_f64()),
        fits.runs,
        fits.trajectory_runs,
        n as f64 / fits.solve.as_secs_f64().max(1e-12)
    );
    for j in 0..n.min(4) {
        let values: Vec<String> = (0..fits.n_fit())
            .map(|k| {
                format!(
                    "{} = {:.6} ± {:.2e}",
                    fits.names[k],
                    fits.values[j * fits.n_fit() + k],
                    fits.stderr(j, k)
                )
            })
            .collect();
        println!(
            "#{j}       {} · cost {:.4e} · {} iterations",
            values.join(", "),
            fits.cost[j],
            fits.iterations[j]
        );
    }
    if let Some(dir) = out {
        println!("wrote    {}/ (files listed in the README)", dir.display());
    }
}

/// `fit.png`: the model at the fitted values (`values(j)`) against trajectory j's
/// observations, for a few trajectories chosen by `plot::samples` from their costs.
fn picture(
    ctx: &GpuContext,
    ep: &EstimationProblem,
    costs: &[f64],
    values: impl Fn(usize) -> Vec<f64>,
    caption: impl Fn(usize) -> String,
    options: &RunOptions,
) -> Result<Vec<u8>, CliError> {
    let chosen = plot::samples(costs);
    let points: Vec<Vec<f64>> = chosen.iter().map(|&j| values(j)).collect();
    let fitted = fitted_trajectories(ctx, ep, &chosen, &points, plot::curve_times(ep), options)
        .map_err(cli_error)?;
    let panels: Vec<plot::Panel> = chosen
        .iter()
        .map(|&j| plot::Panel {
            trajectory: j,
            caption: caption(j),
        })
        .collect();
    plot::picture(ep, &panels, &fitted).map_err(|e| CliError::Runtime(format!("fit.png: {e}")))
}

/// Five significant digits, as a caption shows a fitted value (plain, or in e-notation far
/// from 1).
fn significant(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return v.to_string();
    }
    let magnitude = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&magnitude) {
        return format!("{v:.4e}");
    }
    let decimals = (4 - magnitude).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Writes run.json, moves the results into place and removes the files of the other kind
/// of fit that an earlier run left (`--overwrite`), so DIR never mixes two runs.
fn commit(
    mut dir: OutputDir,
    summary: &serde_json::Value,
    written: &[&str],
) -> Result<(), CliError> {
    let runtime = |e: crate::io::output::OutputError| CliError::Runtime(e.to_string());
    dir.write_json("run.json", summary).map_err(runtime)?;
    let path = dir.path().to_path_buf();
    dir.commit().map_err(runtime)?;
    for stale in all_files().filter(|f| !written.contains(f)) {
        let file = path.join(stale);
        if file.exists() {
            std::fs::remove_file(&file).map_err(|e| {
                CliError::Runtime(format!("could not remove '{}': {e}", file.display()))
            })?;
        }
    }
    Ok(())
}

/// A failed estimation as the CLI reports it: Ctrl-C, or the user's input (what
/// sensitivities cannot do, events or stiff with exclude, is the user's choice too), or a
/// runtime failure.
fn cli_error(e: EstimateError) -> CliError {
    match e {
        EstimateError::Cancelled => {
            CliError::Interrupted("interrupted; nothing was written".into())
        }
        EstimateError::Input(m) => CliError::Input(m),
        EstimateError::Sensitivity(e) => CliError::Input(e.to_string()),
        e => CliError::Runtime(e.to_string()),
    }
}

/// `--shared`: one set of values fitted to every trajectory.
fn run_shared(
    args: &EstimateArgs,
    ctx: &GpuContext,
    ep: &EstimationProblem,
    options: &RunOptions,
    out: Option<OutputDir>,
) -> Result<(), CliError> {
    let fit = estimate_shared(ctx, ep, options).map_err(cli_error)?;
    let k = fit.values.len();
    let stderr: Vec<f64> = (0..k).map(|i| fit.stderr(i)).collect();
    let (t0, t1) = ep.problem.span();
    let summary = json!({
        "command": "estimate",
        "shared": true,
        "system": ep.problem.system().name(),
        "solver": ep.problem.solver().name(),
        "precision": ep.problem.precision().name(),
        "tspan": [t0, t1],
        "trajectories": fit.trajectory_cost.len(),
        "observation_times": ep.observations.times.len(),
        "observed_values": fit.observed,
        "fitted": fit.names,
        "estimates": fit.values,
        "stderr": stderr,
        "bounds": ep.bounds,
        "weights": ep.observations.weights,
        "sensitivity_error": args.sensitivity_error,
        "max_iterations": ep.stopping.max_iterations,
        "ftol": ep.stopping.ftol,
        "xtol": ep.stopping.xtol,
        "status": fit.status.name(),
        "failed_trajectory": fit.failed_trajectory,
        "iterations": fit.iterations,
        "cost": fit.cost,
        "gpu_runs": fit.runs,
        "trajectory_runs": fit.trajectory_runs,
        "seconds": fit.solve.as_secs_f64(),
        "observations": args.observations,
        "times": args.times,
    });
    if let Some(mut dir) = out {
        let io = |e: crate::io::output::OutputError| CliError::Runtime(e.to_string());
        let (k64, n64) = (k as u64, fit.trajectory_cost.len() as u64);
        dir.write_npy("estimates.npy", &[k64], &fit.values)
            .map_err(io)?;
        dir.write_npy("stderr.npy", &[k64], &stderr).map_err(io)?;
        dir.write_npy("covariance.npy", &[k64, k64], &fit.covariance)
            .map_err(io)?;
        dir.write_npy("trajectory_cost.npy", &[n64], &fit.trajectory_cost)
            .map_err(io)?;
        let caption = |j: usize| format!("#{j} · its cost {:.4e}", fit.trajectory_cost[j]);
        let values = |_| fit.values.clone();
        let png = picture(ctx, ep, &fit.trajectory_cost, values, caption, options)?;
        dir.write_bytes("fit.png", &png).map_err(io)?;
        commit(dir, &summary, &SHARED_FILES)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("JSON"));
        return Ok(());
    }
    println!(
        "{} · {} · {} · one fit of {} to {} trajectories ({} values observed)",
        ep.problem.system().name(),
        ep.problem.solver().name(),
        ep.problem.precision().name(),
        fit.names.join(", "),
        fit.trajectory_cost.len(),
        fit.observed
    );
    println!(
        "status   {} after {} iterations · cost {:.6e}",
        fit.status.name().replace('_', " "),
        fit.iterations,
        fit.cost
    );
    if let Some(j) = fit.failed_trajectory {
        println!("failed   trajectory {j} could not be integrated at the start");
    }
    println!(
        "solve    {} · {} GPU runs ({} trajectory-runs)",
        seconds(fit.solve.as_secs_f64()),
        fit.runs,
        fit.trajectory_runs
    );
    for (i, name) in fit.names.iter().enumerate() {
        println!("{name:<8} {:.8} ± {:.2e}", fit.values[i], stderr[i]);
    }
    if let Some(dir) = &args.out {
        println!("wrote    {}/ (files listed in the README)", dir.display());
    }
    Ok(())
}

/// A directory holding another command's run (a `run.json` that is not an estimate's) is
/// refused even with --overwrite: its files would stay beside the estimates.
fn refuse_other_run(dir: &Path) -> Result<(), CliError> {
    let Ok(text) = std::fs::read_to_string(dir.join("run.json")) else {
        return Ok(());
    };
    let command = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["command"].as_str().map(str::to_string));
    if command.as_deref() == Some("estimate") {
        return Ok(());
    }
    Err(input(format!(
        "'{}' holds another run (its run.json is not an estimate's); choose another directory",
        dir.display()
    )))
}
