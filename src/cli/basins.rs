//! `phaseflow basins`: a grid of initial states over two states → one ensemble run → each
//! grid point labelled by the attractor it reaches → summary, `.npy` files and a PNG.

use super::error::CliError;
use super::format::{grouped, seconds};
use super::interrupt;
use super::progress::Progress;
use super::simulate::parse_size;
use super::spec_flags::run_spec_error;
use crate::gpu::{AdapterChoice, GpuContext};
use crate::io::{LabelMap, OutputDir};
use crate::ode::basins::{
    self, BasinsError, BasinsProblem, BasinsResult, DEFAULT_MAX_ATTRACTORS, Match, Method,
};
use crate::ode::{Precision, Problem, RunOptions, Solver};
use crate::schedule::PlanCaps;
use crate::spec::{RunSpec, U0Spec, build_problem};
use serde_json::json;
use std::path::PathBuf;

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

Examples:
  phaseflow basins duffing --param gamma=0 --param delta=0.1 --grid x=-2:2:400 \\
      --grid v=-2:2:400 --tspan 0:200 -o basins
  phaseflow basins duffing --param gamma=0 --grid x=-2:2:200 --grid v=-2:2:200 \\
      --tspan 0:100 --classify 'sign(x)'

Output (with -o DIR): basins.npy [NY, NX] i32 (row k is the second --grid state's k-th
value, column the first's; -1 diverged), attractors.npy [K, dim] f64 (each attractor's first
grid point's final state), features.npy [K, 2·dim] f64 (window minimum of each state, then
maximum; with --classify: [K] the class values), basins.png (the map, the first --grid state
horizontal), basins.json (the grid, each attractor's fraction of it, the basin entropy and
the run).";

#[derive(Debug, clap::Args)]
pub struct BasinsArgs {
    /// A built-in system's name or the path of a system file (.toml)
    system: String,

    /// A grid axis: give exactly two, the first drawn horizontally (columns), the second
    /// vertically (rows)
    #[arg(long, value_name = "STATE=LO:HI:COUNT", value_parser = parse_assign, required = true)]
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
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    entropy_box: u32,

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

/// The grid flags, checked: two different names, each LO:HI:COUNT with a whole COUNT ≥ 1.
fn check_grid(grid: &[(String, Vec<f64>)]) -> Result<(), CliError> {
    if grid.len() != 2 {
        return Err(input(format!(
            "give --grid exactly twice (STATE=LO:HI:COUNT, the first drawn horizontally); \
             {} given",
            grid.len()
        )));
    }
    if grid[0].0 == grid[1].0 {
        return Err(input(format!(
            "--grid {} is given twice; the two axes must vary different states",
            grid[0].0
        )));
    }
    for (name, v) in grid {
        match v[..] {
            [lo, hi, count] if count >= 1.0 && count.fract() == 0.0 && count <= 1e6 => {
                if lo == hi && count > 1.0 {
                    return Err(input(format!(
                        "--grid {name}: the range {lo}:{hi} is empty; give LO < HI"
                    )));
                }
            }
            [_, _, count] => {
                return Err(input(format!(
                    "--grid {name}: the point count must be a whole number from 1 to 1000000, \
                     not {count}"
                )));
            }
            _ => {
                return Err(input(format!(
                    "--grid {name}: expected LO:HI:COUNT, e.g. {name}=-2:2:400"
                )));
            }
        }
    }
    Ok(())
}

impl BasinsArgs {
    /// The run as a spec: the grid as initial states (the second axis slowest, so rows
    /// follow it), the solver defaulting to tsit5.
    fn spec(&self) -> RunSpec {
        let mut grid = toml::map::Map::new();
        for (name, v) in self.grid.iter().rev() {
            grid.insert(
                name.clone(),
                toml::Value::Array(v.iter().map(|&x| toml::Value::Float(x)).collect()),
            );
        }
        RunSpec {
            system: Some(self.system.clone()),
            solver: Some(self.solver.unwrap_or(Solver::Tsit5)),
            tspan: self.tspan,
            dt: self.dt,
            set: to_map(&self.set),
            param: to_map(&self.param),
            u0: Some(U0Spec {
                grid: Some(grid),
                ..U0Spec::default()
            }),
            precision: self.precision,
            rtol: self.rtol.map(toml::Value::Float),
            atol: self.atol.map(toml::Value::Float),
            max_steps: self.max_steps,
            ..RunSpec::default()
        }
    }

    /// The basins problem, or the first thing wrong with the flags.
    fn problem(&self) -> Result<BasinsProblem, CliError> {
        check_grid(&self.grid)?;
        for (flag, pairs) in [("--set", &self.set), ("--param", &self.param)] {
            for (i, (name, v)) in pairs.iter().enumerate() {
                if pairs[..i].iter().any(|(other, _)| other == name) {
                    return Err(input(format!("{flag} {name} is given twice; give it once")));
                }
                if v.len() != 1 {
                    return Err(input(format!("{flag} {name}: expected one value")));
                }
            }
        }
        if let Some((name, _)) = self
            .set
            .iter()
            .find(|(n, _)| self.grid.iter().any(|g| &g.0 == n))
        {
            return Err(input(format!(
                "--set {name} and --grid {name} both set state '{name}'; give one"
            )));
        }
        let spec = self.spec();
        // The grid travels as simulate's `u0.grid`: name it as this command's flag.
        let mut run = build_problem(&spec).map_err(|e| match run_spec_error(e, &spec, None) {
            CliError::Input(m) => CliError::Input(m.replace("--u0-grid", "--grid")),
            other => other,
        })?;
        if run.is_sde() {
            return Err(input(format!(
                "{} has a noise block; basins of attraction are for deterministic systems",
                run.system().name()
            )));
        }
        let (t0, t1) = run.span();
        let method = match &self.classify {
            Some(text) => {
                for (flag, given) in [
                    ("--window", self.window.is_some()),
                    ("--samples", self.samples.is_some()),
                    ("--match-atol", self.match_atol.is_some()),
                    ("--match-rtol", self.match_rtol.is_some()),
                    ("--escape", self.escape.is_some()),
                ] {
                    if given {
                        return Err(input(format!(
                            "{flag} applies to matching attractors by their window; \
                             --classify labels by the final state alone"
                        )));
                    }
                }
                basins::save_window(&mut run, 0.0, 1).map_err(basins_error)?;
                Method::Expression(
                    basins::expression(run.system(), text, "--classify")
                        .map_err(CliError::Diagnostics)?,
                )
            }
            None => {
                let window = self.window.unwrap_or((t1 - t0) / 10.0);
                let samples = self.samples.unwrap_or(100);
                if samples == 0 {
                    return Err(input("--samples must be at least 1"));
                }
                if let Some(r) = self.escape
                    && !(r > 0.0 && r.is_finite())
                {
                    return Err(input(format!("--escape must be positive (got {r})")));
                }
                let defaults = Match::default();
                let tol = Match {
                    atol: self.match_atol.unwrap_or(defaults.atol),
                    rtol: self.match_rtol.unwrap_or(defaults.rtol),
                };
                for (flag, v) in [("--match-atol", tol.atol), ("--match-rtol", tol.rtol)] {
                    if !(v >= 0.0 && v.is_finite()) {
                        return Err(input(format!("{flag} must be zero or positive (got {v})")));
                    }
                }
                if !(window >= 0.0 && window.is_finite()) {
                    return Err(input(format!(
                        "--window must be zero or positive (got {window})"
                    )));
                }
                if window > t1 - t0 {
                    return Err(input(format!(
                        "--window {window} is longer than the run (t {t0} → {t1})"
                    )));
                }
                basins::save_window(&mut run, window, samples).map_err(basins_error)?;
                Method::Features {
                    window,
                    tol,
                    escape: self.escape,
                }
            }
        };
        let max_attractors = self.max_attractors.unwrap_or(DEFAULT_MAX_ATTRACTORS);
        if max_attractors == 0 {
            return Err(input("--max-attractors must be at least 1"));
        }
        let problem = BasinsProblem {
            run,
            method,
            max_attractors,
        };
        problem.check().map_err(basins_error)?;
        problem.run.check()?;
        Ok(problem)
    }
}

/// The step settings of the run: the fixed step, or the tolerances.
fn step_settings(run: &Problem) -> serde_json::Value {
    let tol = |t: &crate::ode::Tolerance| match t {
        crate::ode::Tolerance::All(v) => json!(v),
        crate::ode::Tolerance::PerState(v) => json!(v),
    };
    match run {
        Problem::Fixed(p) => json!({"dt": p.grid.dt}),
        Problem::Adaptive(p) => json!({"rtol": tol(&p.control.rtol), "atol": tol(&p.control.atol)}),
        Problem::Stiff(p) => json!({"rtol": tol(&p.control.rtol), "atol": tol(&p.control.atol)}),
        Problem::Sde(_) => json!(null),
    }
}

/// Attractors closer than this many match tolerances (`Match::distance`: in the component
/// farthest apart) are suspected halves of one attractor whose window features have not
/// settled: distinct attractors of the systems people study sit hundreds of tolerances
/// apart, while features still drifting at the run's end spread over a few.
const SPLIT_DISTANCE: f64 = 8.0;

/// Pairs of attractors (labels) whose features lie within `SPLIT_DISTANCE` tolerances of
/// each other, with that distance.
fn split_attractors(a: &[basins::Attractor], method: &Method) -> Vec<(i32, i32, f64)> {
    let Method::Features { tol, .. } = method else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for i in 0..a.len() {
        for j in i + 1..a.len() {
            let d = tol.distance(&a[i].features, &a[j].features);
            if d <= SPLIT_DISTANCE {
                out.push((a[i].label, a[j].label, d));
            }
        }
    }
    out
}

/// One note for all suspected pairs: the closest few named, then how many more.
fn split_warning(pairs: &[(i32, i32, f64)]) -> Option<String> {
    const NAMED: usize = 3;
    let mut sorted = pairs.to_vec();
    sorted.sort_by(|x, y| x.2.total_cmp(&y.2));
    let (a, b, d) = *sorted.first()?;
    let more = match sorted.len() {
        1 => String::new(),
        n => {
            let others: Vec<String> = sorted[1..n.min(NAMED)]
                .iter()
                .map(|(a, b, d)| format!("{a} and {b} ({d:.1})"))
                .collect();
            let rest = n.saturating_sub(NAMED);
            format!(
                "; so do {}{}",
                others.join(", "),
                if rest > 0 {
                    format!(" and {rest} more pairs")
                } else {
                    String::new()
                }
            )
        }
    };
    Some(format!(
        "attractors {a} and {b} differ by only {d:.1} match tolerances{more}: such pairs may \
         be one attractor whose features had not settled by the end of the run (lengthen \
         --tspan or --window, or widen --match-atol/--match-rtol); the basin entropy's \
         fractal test is not claimed"
    ))
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

fn summary_json(
    problem: &BasinsProblem,
    result: &BasinsResult,
    entropy: &basins::BasinEntropy,
    ctx: &GpuContext,
) -> serde_json::Value {
    let g = &result.grid;
    let axis = |a: &crate::ode::Axis, name: &str| json!({"state": name, "lo": a.lo, "hi": a.hi, "count": a.count});
    let method = match &problem.method {
        Method::Features {
            window,
            tol,
            escape,
        } => json!({"kind": "features", "window": window, "match_atol": tol.atol,
                    "match_rtol": tol.rtol, "escape": escape}),
        Method::Expression(f) => json!({"kind": "expression", "expression": f.text}),
    };
    let n = result.labels.len();
    let system = problem.run.system();
    let (t0, t1) = problem.run.span();
    let base = &problem.run.ensemble().base_params;
    let params: serde_json::Map<String, serde_json::Value> = system
        .params
        .iter()
        .zip(base)
        .map(|(p, v)| (p.name.clone(), json!(v)))
        .collect();
    let split = split_attractors(&result.attractors, &problem.method);
    json!({
        "system": system.name(),
        "tspan": [t0, t1],
        "params": params,
        "steps": step_settings(&problem.run),
        "states": problem.run.system().states.iter().map(|v| &v.name).collect::<Vec<_>>(),
        "solver": problem.run.solver().name(),
        "precision": problem.run.precision().name(),
        "x": axis(&g.x, &g.x_name),
        "y": axis(&g.y, &g.y_name),
        "method": method,
        "attractors": result.attractors.iter().map(|a| json!({
            "label": a.label,
            "count": a.count,
            "fraction": a.fraction,
            "representative": {"index": a.representative,
                               g.x_name.clone(): g.x_at(a.representative % g.nx()),
                               g.y_name.clone(): g.y_at(a.representative / g.nx())},
            "final_state": a.final_state,
            "features": a.features,
        })).collect::<Vec<_>>(),
        "diverged": {"count": result.diverged, "fraction": result.diverged_fraction()},
        "basin_entropy": {
            "box": entropy.box_size,
            "boxes": entropy.boxes,
            "boundary_boxes": entropy.boundary_boxes,
            "boundary_fraction": entropy.boundary_fraction(),
            "entropy": if entropy.entropy.is_finite() { json!(entropy.entropy) } else { json!(null) },
            "boundary_entropy": entropy.boundary_entropy,
            // Not claimed when attractors may be split: a spurious boundary between two
            // halves of one attractor would pass the test.
            "fractal_by_log2_test": entropy.fractal() && split.is_empty(),
        },
        "warnings": split_warning(&split).into_iter().collect::<Vec<_>>(),
        "run": {
            "trajectories": n,
            "trajectory_steps": result.stats.trajectory_steps,
            "solve_seconds": result.stats.solve.as_secs_f64(),
            "setup_seconds": result.stats.setup.as_secs_f64(),
            "host_seconds": result.stats.host.as_secs_f64(),
            "points_per_second": n as f64 / result.stats.solve.as_secs_f64().max(1e-12),
            "adapter": ctx.summary.name,
        },
    })
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
    if args.overwrite && args.out.is_none() {
        return Err(input(
            "--overwrite replaces the basins in -o DIR; give -o DIR",
        ));
    }
    if args.chunk == Some(0) {
        return Err(input("--chunk must be at least 1"));
    }
    let problem = args.problem()?;
    if let Some(dir) = &args.out {
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
    let entropy = result.entropy(args.entropy_box as usize);
    let summary = summary_json(&problem, &result, &entropy, &ctx);
    let written = match &args.out {
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

    /// Two attractors within a few match tolerances are flagged (and the pair named); the
    /// Duffing wells, 100 tolerances apart, and expression classes are not.
    #[test]
    fn attractors_a_few_tolerances_apart_are_suspected_halves_of_one() {
        let attractor = |label: i32, features: Vec<f64>| basins::Attractor {
            label,
            count: 1,
            fraction: 0.25,
            representative: 0,
            final_state: vec![0.0; 2],
            features,
        };
        let features = Method::Features {
            window: 10.0,
            tol: Match::default(),
            escape: None,
        };
        let wells = [
            attractor(0, vec![-1.0, 0.0, -1.0, 0.0]),
            attractor(1, vec![1.0, 0.0, 1.0, 0.0]),
        ];
        assert!(split_attractors(&wells, &features).is_empty());
        let drifting = [
            wells[0].clone(),
            attractor(1, vec![-1.05, 0.0, -1.0, 0.0]),
            wells[1].clone(),
        ];
        let split = split_attractors(&drifting, &features);
        assert_eq!(split.len(), 1);
        let (a, b, d) = split[0];
        assert_eq!((a, b), (0, 1));
        // |−1.05 − (−1)| / (0.01 + 0.01·1.05) = 2.44 tolerances.
        assert!((d - 0.05 / 0.0205).abs() < 1e-9, "{d}");
        let note = split_warning(&split).unwrap();
        assert!(
            note.contains("attractors 0 and 1 differ by only 2.4 match"),
            "{note}"
        );
        // Many pairs make one note: the closest three named, the rest counted.
        let many: Vec<(i32, i32, f64)> =
            (0..10).map(|k| (k, k + 1, 7.0 - 0.5 * k as f64)).collect();
        let note = split_warning(&many).unwrap();
        assert!(
            note.starts_with("attractors 9 and 10 differ by only 2.5"),
            "{note}"
        );
        assert!(
            note.contains("so do 8 and 9 (3.0), 7 and 8 (3.5) and 7 more pairs"),
            "{note}"
        );
        assert!(split_warning(&[]).is_none());
    }
}
