//! `phaseflow basins`: a grid of initial states over two states → one ensemble run → each
//! grid point labelled by the attractor it reaches → summary, `.npy` files and a PNG.

use super::error::CliError;
use super::format::{grouped, seconds};
use super::interrupt;
use super::progress::Progress;
use super::simulate::{no_repeats, parse_size};
use super::spec_flags::run_spec_error;
use crate::gpu::{AdapterChoice, GpuContext};
use crate::io::{LabelMap, OutputDir};
use crate::model::{Diagnostics, Source};
use crate::ode::basins::{self, BasinsError, BasinsProblem, BasinsResult, Match, Method};
use crate::ode::{Precision, RunOptions, Solver};
use crate::schedule::PlanCaps;
use crate::spec::basins::{basins_problem, entropy_box};
use crate::spec::{BasinsSpec, RunSpec, SpecError, load_system};
use std::path::{Path, PathBuf};

pub const LONG_ABOUT: &str = "\
Basins of attraction: integrate a grid of initial states over two states (the others at their
defaults or --set values) and label each grid point by the attractor its trajectory reaches.

By default attractors are found without knowing them: per state, the minimum and maximum over
the saves in the last --window time units describe where a trajectory ended up (a fixed point
has min = max, a limit cycle the same extremes whatever its phase), and trajectories whose
descriptions agree within --match-atol + --match-rtol × |value| share an attractor.
Attractors are numbered by their description (the smallest minimum of the first state
first). Trajectories that stop early (non-finite state, step budget) or leave --escape get -1.

--classify EXPR labels by an expression of the final state and the parameters instead,
rounded to the nearest integer (e.g. `sign(x)`): attractors numbered by that value.

--config FILE reads the run from a TOML run config: simulate's keys for the system, set,
param, tspan, solver, dt, precision, the adaptive controls and out, and a [basins] table
(grid, window, samples, match_atol, match_rtol, escape, max_attractors, classify,
entropy_box); flags override it (--grid replaces the file's grid). Keys the command does
not read are refused.

Examples:
  phaseflow basins duffing --param gamma=0 --param delta=0.1 --grid x=-2:2:400 \\
      --grid v=-2:2:400 --tspan 0:200 -o basins
  phaseflow basins duffing --param gamma=0 --grid x=-2:2:200 --grid v=-2:2:200 \\
      --tspan 0:100 --classify 'sign(x)'
  phaseflow basins --config basins.toml --window 20

Output (with -o DIR): basins.npy [NY, NX] i32 (row k is the second --grid state's k-th
value, column the first's; -1 diverged), attractors.npy [K, dim] f64 (each attractor's first
grid point's final state), features.npy [K, 2·dim] f64 (window minimum of each state, then
maximum; with --classify: [K] the class values), basins.png (the map, the first --grid state
horizontal), basins.json (the grid, each attractor's fraction of it, the basin entropy and
the run).";

#[derive(Debug, clap::Args)]
pub struct BasinsArgs {
    /// A built-in system's name or the path of a system file (.toml) [default: the config
    /// file's `system`]
    system: Option<String>,

    /// Read the run from a TOML run config (simulate's keys and a [basins] table); flags
    /// override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// A grid axis: give exactly two, the first drawn horizontally (columns), the second
    /// vertically (rows)
    #[arg(long, value_name = "STATE=LO:HI:COUNT", value_parser = parse_assign)]
    grid: Vec<(String, Vec<f64>)>,

    /// Set a state's value for every grid point (states not on the grid)
    #[arg(long, value_name = "STATE=VALUE", value_parser = parse_assign)]
    set: Vec<(String, Vec<f64>)>,

    /// Set a parameter
    #[arg(long, value_name = "PARAM=VALUE", value_parser = parse_assign)]
    param: Vec<(String, Vec<f64>)>,

    /// Time span [default: the system's suggestion]
    #[arg(long, value_name = "T0:T1", value_parser = parse_span, allow_hyphen_values = true)]
    tspan: Option<[f64; 2]>,

    /// Method: an adaptive pair (bs3, dp5, tsit5 [default], dop853), a stiff solver
    /// (rosenbrock23, rodas4, rodas5p, auto), or fixed-step euler, heun, rk4 with --dt (they
    /// save every k-th step of the whole run to cover the window, which costs readback)
    #[arg(long, value_enum, hide_possible_values = true)]
    solver: Option<Solver>,

    /// Fixed-step solvers: the step; adaptive: the first step
    #[arg(long, allow_negative_numbers = true)]
    dt: Option<f64>,

    /// Relative tolerance of adaptive solvers [default: 1e-6]
    #[arg(long, allow_negative_numbers = true)]
    rtol: Option<f64>,

    /// Absolute tolerance of adaptive solvers [default: 1e-6]
    #[arg(long, allow_negative_numbers = true)]
    atol: Option<f64>,

    /// Adaptive solvers: step attempts per trajectory [default: 100000]
    #[arg(long, allow_negative_numbers = true)]
    max_steps: Option<u32>,

    /// Arithmetic precision (f64 needs an adapter with SHADER_F64)
    #[arg(long, value_enum)]
    precision: Option<Precision>,

    /// The stretch at the end of the run whose saves describe where a trajectory ended up
    /// [default: a tenth of the span]; 0: the final state alone (fixed points only)
    #[arg(long, value_name = "T", allow_negative_numbers = true)]
    window: Option<f64>,

    /// Saves in the window [default: 100]
    #[arg(long, value_name = "K", allow_negative_numbers = true)]
    samples: Option<usize>,

    /// Absolute tolerance of matching descriptions [default: 0.01]
    #[arg(long, value_name = "TOL", allow_negative_numbers = true)]
    match_atol: Option<f64>,

    /// Relative tolerance of matching descriptions [default: 0.01]
    #[arg(long, value_name = "TOL", allow_negative_numbers = true)]
    match_rtol: Option<f64>,

    /// Label -1 any trajectory with a state beyond ±R in the window
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    escape: Option<f64>,

    /// Stop once more attractors than this are found [default: 64]
    #[arg(long, value_name = "K", allow_negative_numbers = true)]
    max_attractors: Option<usize>,

    /// Label by this expression of the final state and the parameters, rounded
    #[arg(long, value_name = "EXPR", allow_hyphen_values = true)]
    classify: Option<String>,

    /// Box side (grid points) of the basin entropy [default: 5]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    entropy_box: Option<u32>,

    /// Write basins.npy, attractors.npy, features.npy, basins.png and basins.json here
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// With -o: replace the basins already in DIR
    #[arg(long)]
    overwrite: bool,

    /// Print a JSON summary instead of text
    #[arg(long)]
    json: bool,

    /// No progress bar
    #[arg(short, long)]
    quiet: bool,

    /// Most trajectories per chunk (performance only; labels do not change)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    chunk: Option<usize>,

    /// Device memory the run may use, e.g. 512M or 2G [default: 1G on GPUs, 256M on CPU
    /// adapters]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    gpu_memory: Option<u64>,
}

fn parse_numbers(s: &str) -> Result<Vec<f64>, String> {
    s.split(':')
        .map(|p| {
            let p = p.trim();
            p.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("'{p}' is not a finite number"))
        })
        .collect()
}

fn parse_span(s: &str) -> Result<[f64; 2], String> {
    match parse_numbers(s)?[..] {
        [a, b] => Ok([a, b]),
        _ => Err("expected T0:T1, e.g. 0:100".into()),
    }
}

/// `name=v1[:v2[:v3]]`.
fn parse_assign(s: &str) -> Result<(String, Vec<f64>), String> {
    let (name, values) = s.split_once('=').ok_or("expected NAME=VALUE")?;
    Ok((name.trim().to_string(), parse_numbers(values)?))
}

fn input(m: impl Into<String>) -> CliError {
    CliError::Input(m.into())
}

fn to_map(pairs: &[(String, Vec<f64>)]) -> toml::map::Map<String, toml::Value> {
    pairs
        .iter()
        .map(|(k, v)| {
            let value = match v[..] {
                [x] => toml::Value::Float(x),
                _ => toml::Value::Array(v.iter().map(|&x| toml::Value::Float(x)).collect()),
            };
            (k.clone(), value)
        })
        .collect()
}

impl BasinsArgs {
    /// The flags as a spec, to be laid over the config file's: the run at its run-config
    /// keys, the grid (in the order given) and the labelling in `[basins]`. A name given
    /// twice to one flag is refused here, since a table keeps one value per name.
    fn flags(&self) -> Result<RunSpec, CliError> {
        if let [(a, _), (b, _)] = &self.grid[..]
            && a == b
        {
            return Err(input(format!(
                "--grid {a} is given twice; the two axes must vary different states"
            )));
        }
        for (flag, pairs) in [("--set", &self.set), ("--param", &self.param)] {
            no_repeats(flag, pairs)?;
            if let Some((name, _)) = pairs.iter().find(|(_, v)| v.len() != 1) {
                return Err(input(format!("{flag} {name}: expected one value")));
            }
        }
        if self.grid.len() > 2 {
            return Err(input(format!(
                "give --grid exactly twice (STATE=LO:HI:COUNT, the first drawn horizontally); \
                 {} given",
                self.grid.len()
            )));
        }
        Ok(RunSpec {
            system: self.system.clone(),
            solver: self.solver,
            tspan: self.tspan,
            dt: self.dt,
            set: to_map(&self.set),
            param: to_map(&self.param),
            precision: self.precision,
            rtol: self.rtol.map(toml::Value::Float),
            atol: self.atol.map(toml::Value::Float),
            max_steps: self.max_steps,
            out: self.out.clone(),
            basins: Some(BasinsSpec {
                grid: to_map(&self.grid),
                window: self.window,
                samples: self.samples,
                match_atol: self.match_atol,
                match_rtol: self.match_rtol,
                escape: self.escape,
                max_attractors: self.max_attractors,
                classify: self.classify.clone(),
                entropy_box: self.entropy_box,
            }),
            ..RunSpec::default()
        })
    }

    /// The run's spec (the config file with the flags laid over it; --grid replaces the
    /// file's grid whole) and the basins problem, or the first thing wrong with them.
    fn problem(&self) -> Result<(RunSpec, BasinsProblem), CliError> {
        let flags = self.flags()?;
        let config = self.config.as_deref();
        let spec = match config {
            Some(path) => {
                let mut file = RunSpec::from_file(path)?;
                if !self.grid.is_empty()
                    && let Some(b) = file.basins.as_mut()
                {
                    b.grid.clear();
                }
                file.merge(flags.clone())
            }
            None => flags.clone(),
        };
        let name = spec.system.as_deref().ok_or_else(|| no_system(config))?;
        // The expression's own diagnostics point into its text: name it as --classify, or
        // as the file's key after the file's path.
        let classify_name = match (self.classify.is_some(), config) {
            (false, Some(path)) => format!("{}: basins.classify", path.display()),
            _ => "--classify".to_string(),
        };
        let error = |e: SpecError| match e {
            SpecError::Diagnostics(d) => {
                CliError::Diagnostics(renamed(d, "basins.classify", &classify_name))
            }
            e => run_spec_error(e, &flags, config),
        };
        let system = load_system(name).map_err(error)?;
        let problem = basins_problem(system, &spec).map_err(error)?;
        Ok((spec, problem))
    }
}

/// Diagnostics with the source called `from` called `to`.
fn renamed(mut d: Diagnostics, from: &str, to: &str) -> Diagnostics {
    for one in &mut d.0 {
        if let Some(source) = &one.source
            && source.name == from
        {
            one.source = Some(Source::new(to, source.text.clone()));
        }
    }
    d
}

/// Neither the command line nor the config file names the system.
fn no_system(config: Option<&Path>) -> CliError {
    input(match config {
        Some(path) => format!(
            "{} names no system: give `system = \"duffing\"` (a built-in, see `phaseflow \
             systems`, or a system file) in it, or name one: phaseflow basins SYSTEM --config {}",
            path.display(),
            path.display()
        ),
        None => "no system given: phaseflow basins SYSTEM (a built-in, see `phaseflow \
                 systems`, or a system file) --grid ... --grid ..., or --config FILE with \
                 `system` in it"
            .into(),
    })
}

fn basins_error(e: BasinsError) -> CliError {
    match e {
        BasinsError::Sim(s) => s.into(),
        other => CliError::Input(other.to_string()),
    }
}

/// `v` with `digits` decimals, never "-0.00": a value that rounds to zero has no sign.
fn fixed(v: f64, digits: usize) -> String {
    let s = format!("{v:.digits$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// A short description of an attractor from its features: a point, or the box it spans.
fn describe(result: &BasinsResult, k: usize, names: &[String], tol: Option<Match>) -> String {
    let a = &result.attractors[k];
    let d = names.len();
    let Some(tol) = tol else {
        let at: Vec<String> = names
            .iter()
            .zip(&a.final_state)
            .map(|(n, v)| format!("{n} = {}", fixed(*v, 4)))
            .collect();
        return format!("value {} (e.g. ending at {})", a.features[0], at.join(", "));
    };
    let (lo, hi) = a.features.split_at(d);
    if is_point(&a.features, d, tol) {
        let at: Vec<String> = names
            .iter()
            .zip(&a.final_state)
            .map(|(n, v)| format!("{n} = {}", fixed(*v, 4)))
            .collect();
        format!("fixed point at {}", at.join(", "))
    } else {
        let ranges: Vec<String> = names
            .iter()
            .zip(lo.iter().zip(hi))
            .map(|(n, (l, h))| format!("{n} ∈ [{}, {}]", fixed(*l, 3), fixed(*h, 3)))
            .collect();
        format!("oscillation over {}", ranges.join(", "))
    }
}

/// Whether an attractor's window minimum and maximum agree in every state (a fixed point).
fn is_point(features: &[f64], dim: usize, tol: Match) -> bool {
    let (lo, hi) = features.split_at(dim);
    lo.iter()
        .zip(hi)
        .all(|(l, h)| tol.distance(&[*l], &[*h]) <= 1.0)
}

/// An attractor's legend entry: its label and share, then what it is, a line per state
/// for a cycle (the first three states).
fn legend_text(result: &BasinsResult, k: usize, names: &[String], tol: Option<Match>) -> String {
    let a = &result.attractors[k];
    let head = format!("{}: {:.1}%", a.label, 100.0 * a.fraction);
    let Some(tol) = tol else {
        return format!("{head}, value {}", a.features[0]);
    };
    let d = names.len();
    let (lo, hi) = a.features.split_at(d);
    let more = if d > 3 { "\n  …" } else { "" };
    if is_point(&a.features, d, tol) {
        let at: Vec<String> = names
            .iter()
            .take(3)
            .enumerate()
            .map(|(c, n)| format!("{n}={}", fixed(a.final_state[c], 2)))
            .collect();
        format!("{head}, fixed point\n  {}{more}", at.join(" "))
    } else {
        let ranges: Vec<String> = names
            .iter()
            .take(3)
            .enumerate()
            .map(|(c, n)| format!("  {n} ∈ [{}, {}]", fixed(lo[c], 2), fixed(hi[c], 2)))
            .collect();
        format!("{head}, oscillating\n{}{more}", ranges.join("\n"))
    }
}

/// What -o DIR gets.
const FILES: [&str; 5] = [
    "basins.npy",
    "attractors.npy",
    "features.npy",
    "basins.png",
    "basins.json",
];

/// Refuses a DIR that holds basins already, unless --overwrite: checked before any work.
fn check_out(dir: &std::path::Path, overwrite: bool) -> Result<(), CliError> {
    if !overwrite && let Some(f) = FILES.iter().find(|f| dir.join(f).exists()) {
        return Err(input(format!(
            "{} already holds basins ({f}); give --overwrite to replace them, or another -o",
            dir.display()
        )));
    }
    Ok(())
}

fn write_outputs(
    dir: &std::path::Path,
    problem: &BasinsProblem,
    result: &BasinsResult,
    names: &[String],
    tol: Option<Match>,
    summary: &serde_json::Value,
) -> Result<Vec<PathBuf>, CliError> {
    let io = |e: crate::io::OutputError| CliError::Runtime(e.to_string());
    let mut out = OutputDir::create(dir).map_err(|e| input(e.to_string()))?;
    let g = &result.grid;
    let (k, d) = (result.attractors.len(), names.len());
    out.write_npy(
        "basins.npy",
        &[g.ny() as u64, g.nx() as u64],
        &result.labels,
    )
    .map_err(io)?;
    let finals: Vec<f64> = result
        .attractors
        .iter()
        .flat_map(|a| a.final_state.iter().copied())
        .collect();
    out.write_npy("attractors.npy", &[k as u64, d as u64], &finals)
        .map_err(io)?;
    let features: Vec<f64> = result
        .attractors
        .iter()
        .flat_map(|a| a.features.iter().copied())
        .collect();
    let shape: Vec<u64> = match &problem.method {
        Method::Features { .. } => vec![k as u64, 2 * d as u64],
        Method::Expression(_) => vec![k as u64],
    };
    out.write_npy("features.npy", &shape, &features)
        .map_err(io)?;
    let mut legend: Vec<(i32, String)> = (0..k)
        .map(|i| (i as i32, legend_text(result, i, names, tol)))
        .collect();
    if result.diverged > 0 {
        legend.push((
            -1,
            format!("-1: {:.1}%, diverged", 100.0 * result.diverged_fraction()),
        ));
    }
    let map = LabelMap {
        title: format!("basins of attraction: {}", problem.run.system().name()),
        x_label: g.x_name.clone(),
        y_label: g.y_name.clone(),
        x: (g.x.lo, g.x.hi),
        y: (g.y.lo, g.y.hi),
        nx: g.nx(),
        ny: g.ny(),
        labels: &result.labels,
        legend,
    };
    let png = map
        .to_png()
        .map_err(|e| CliError::Runtime(format!("drawing basins.png failed: {e}")))?;
    out.write_bytes("basins.png", &png).map_err(io)?;
    out.write_json("basins.json", summary).map_err(io)?;
    out.commit().map_err(io)
}

pub fn run(args: &BasinsArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    if args.chunk == Some(0) {
        return Err(input("--chunk must be at least 1"));
    }
    let (spec, problem) = args.problem()?;
    if args.overwrite && spec.out.is_none() {
        return Err(input(
            "--overwrite replaces the basins in -o DIR; give -o DIR",
        ));
    }
    let entropy_box = entropy_box(&spec)?;
    if let Some(dir) = &spec.out {
        check_out(dir, args.overwrite)?;
    }
    let ctx = GpuContext::new(choice)?;
    let n = problem.run.ensemble().n;
    let progress = Progress::new(n, args.quiet || args.json);
    let options = RunOptions {
        caps: PlanCaps {
            max_chunk: args.chunk,
            memory_budget: args.gpu_memory.unwrap_or(if ctx.is_cpu() {
                256 << 20
            } else {
                1 << 30
            }),
            ..PlanCaps::default()
        },
        cancel: Some(interrupt::token()),
        progress: Some(progress.hook()),
        ..RunOptions::default()
    };
    interrupt::install_handler();
    let mut display = progress;
    let result = basins::run_basins_into(&ctx, &problem, &options, &mut display);
    display.finish();
    let result = result.map_err(basins_error)?;
    if result.stats.completed < n {
        return Err(CliError::Interrupted(format!(
            "interrupted after {} of {n} grid points; nothing was written",
            result.stats.completed
        )));
    }
    let names: Vec<String> = problem
        .run
        .system()
        .states
        .iter()
        .map(|v| v.name.clone())
        .collect();
    let tol = match &problem.method {
        Method::Features { tol, .. } => Some(*tol),
        Method::Expression(_) => None,
    };
    let entropy = result.entropy(entropy_box);
    // The library's summary, with the adapter the run used.
    let mut summary = result.summary_json(&problem, entropy_box);
    summary["run"]["adapter"] = ctx.summary.name.clone().into();
    let written = match &spec.out {
        Some(dir) => write_outputs(dir, &problem, &result, &names, tol, &summary)?,
        None => Vec::new(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("JSON"));
        return Ok(());
    }
    let g = &result.grid;
    let (t0, t1) = problem.run.span();
    let how = match &problem.method {
        Method::Features { window, .. } => format!("window {window}"),
        Method::Expression(f) => format!("classified by {}", f.text),
    };
    println!(
        "{} · {} · {} · {} × {} grid: {} ∈ [{}, {}] × {} ∈ [{}, {}] · t {t0} → {t1} · {how}",
        problem.run.system().name(),
        problem.run.solver().name(),
        problem.run.precision().name(),
        g.nx(),
        g.ny(),
        g.x_name,
        g.x.lo,
        g.x.hi,
        g.y_name,
        g.y.lo,
        g.y.hi
    );
    println!(
        "{} attractor{}:",
        result.attractors.len(),
        if result.attractors.len() == 1 {
            ""
        } else {
            "s"
        }
    );
    for (k, a) in result.attractors.iter().enumerate() {
        println!(
            "  {:>3}  {:>6.2}% of the grid ({} point{}): {}",
            a.label,
            100.0 * a.fraction,
            grouped(a.count as u64),
            if a.count == 1 { "" } else { "s" },
            describe(&result, k, &names, tol)
        );
    }
    println!(
        "  {:>3}  {:>6.2}% {} ({} point{})",
        -1,
        100.0 * result.diverged_fraction(),
        match problem.method {
            // Also a classifying expression that came out NaN or infinite.
            Method::Expression(_) => "diverged, stopped early, or the expression not finite",
            Method::Features { .. } => "diverged or stopped early",
        },
        grouped(result.diverged as u64),
        if result.diverged == 1 { "" } else { "s" }
    );
    if entropy.boxes > 0 {
        println!(
            "basin entropy ({e} × {e} boxes): S_b = {:.4}, S_bb = {:.4}{}; {:.1}% of boxes on a \
             boundary",
            entropy.entropy,
            entropy.boundary_entropy,
            if entropy.fractal() && summary["warnings"].as_array().is_none_or(|w| w.is_empty()) {
                " > ln 2: the boundary is fractal"
            } else {
                ""
            },
            100.0 * entropy.boundary_fraction(),
            e = entropy.box_size
        );
    }
    for w in summary["warnings"].as_array().into_iter().flatten() {
        println!("note: {}", w.as_str().unwrap_or_default());
    }
    let solve = result.stats.solve.as_secs_f64();
    println!(
        "{} grid points in {} ({:.3e} points/s; setup {}) on {}",
        grouped(n as u64),
        seconds(solve),
        n as f64 / solve.max(1e-12),
        seconds(result.stats.setup.as_secs_f64()),
        ctx.summary.name
    );
    for f in written {
        println!("wrote {}", f.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_that_round_to_zero_have_no_sign() {
        assert_eq!(fixed(-0.00001, 4), "0.0000");
        assert_eq!(fixed(-0.0, 2), "0.00");
        assert_eq!(fixed(-0.5, 2), "-0.50");
        assert_eq!(fixed(-1e-3, 2), "0.00");
        assert_eq!(fixed(-1e-3, 3), "-0.001");
    }
}
