//! `phaseflow orbit-diagram`: flags and a config file → a run spec → `orbit_problem` →
//! `run_orbit_diagram` on the GPU → a summary, `.npy` files and the classic density
//! picture (`plot`).

mod plot;

use super::error::CliError;
use super::format::{grouped, seconds};
use super::interrupt;
use super::progress::Progress;
use super::simulate::{no_repeats, parse_assign, parse_size, parse_span, to_map};
use super::spec_flags::run_spec_error;
use crate::gpu::{AdapterChoice, GpuContext};
use crate::io::{Dtype, OutputDir};
use crate::ode::orbit::{
    MANY, OrbitKind, OrbitProblem, OrbitResult, distinct_histogram, distinct_values,
    run_orbit_diagram_with,
};
use crate::ode::{Precision, RunOptions, Solver, Status};
use crate::schedule::PlanCaps;
use crate::spec::{OrbitSpec, RunSpec, U0Spec, load_system, orbit_problem};
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "\
Orbit (bifurcation) diagram: sweep one parameter over an ensemble and record, per trajectory,
where its orbit pierces a section (--section \"z = 27\") or the local maxima of a state
(--maxima x), after a transient; the observed state's values there, drawn against the
parameter, make the classic picture of period doubling and chaos.

Every trajectory integrates from t0 for --transient and then --time (or over --tspan T0:T1,
the transient included) with --solver (tsit5 by default; any fixed-step or adaptive ODE
solver), on the GPU; the section is a continuous event located on each step's continuous
extension, and each trajectory keeps its first --points K records after t0 + transient.
--maxima x is the section dx/dt = 0 crossed downwards: its condition is the right-hand
side of x's equation. A section must depend on the state (or t); one that cannot change
along an orbit (\"1 = 2\", parameters only) is refused. The system's own events that only
record are left out; events that terminate or assign still act (and share the K records).

One parameter is swept, once: --sweep c=LO:HI with -n N, or c=LO:HI:COUNT, from low to
high (a range given high to low is refused, so that the rows, the summary and the
picture's axis all run the same way); fix the others with --param.

The summary counts the distinct values per trajectory (values closer than --tol merged):
1 for a period-1 orbit, 2 after the first period doubling, many for chaos.

--config FILE reads a run config: simulate's keys (system, n, sweep, param, set, u0, seed,
solver, dt, rtol, atol, max_steps, precision, tspan, out) with section, direction, points
and transient, and an [orbit] table of maxima, observe, time and tol; flags override it,
and SYSTEM may be left out when the file names one.

Examples:
  phaseflow orbit-diagram rossler --param a=0.1 --param b=0.1 --sweep c=2:20 -n 1000 \\
      --maxima x --transient 500 --time 1000 --points 100 -o rossler-orbit
  phaseflow orbit-diagram lorenz --sweep rho=20:200 -n 2000 --section \"z = rho - 1\" \\
      --direction up --observe x --transient 50 --time 100 -o lorenz-orbit
  phaseflow orbit-diagram duffing --sweep gamma=0.2:0.5 -n 500 --maxima x --precision f64
  phaseflow orbit-diagram --config rossler-orbit.toml --points 200

Output (with -o DIR): orbit.npy [N, K] float64 (the observed state at each trajectory's
records, in the order they fired; NaN past its count), counts.npy [N] u32 (points per
trajectory), distinct.npy [N] u32 (distinct values at --tol), params.npy [N, n_params]
float64, status.npy [N] u8 (1 success, 2 max steps, 3 step-size underflow, 4 non-finite, 6
terminated by an event), orbit.png (the density picture: the parameter across, the observed
state up) and run.json describing the run. Files appear together when the run has
finished; Ctrl-C (or a failure) writes none.";

#[derive(Debug, clap::Args)]
pub struct OrbitArgs {
    /// A built-in system's name or the path of a system file (.toml); may be left out with
    /// --config when the file names one
    system: Option<String>,

    /// Read the run from a TOML run config (simulate's keys and an [orbit] table); flags
    /// override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// A Poincaré section, e.g. "z = 27" (either side any expression of the states, t
    /// and parameters)
    #[arg(long, value_name = "EQUATION", allow_hyphen_values = true)]
    section: Option<String>,

    /// The section's crossing direction: up (- to +), down or both [default: both]
    #[arg(long, value_name = "DIR")]
    direction: Option<String>,

    /// Record the local maxima of this state instead of a section (dSTATE/dt = 0 crossed
    /// downwards)
    #[arg(long, value_name = "STATE")]
    maxima: Option<String>,

    /// The state whose values are drawn [default: the --maxima state]
    #[arg(long, value_name = "STATE")]
    observe: Option<String>,

    /// Time integrated before points are recorded [default: 100]
    #[arg(long, allow_negative_numbers = true)]
    transient: Option<f64>,

    /// Time points are recorded for, after the transient [default: 100]
    #[arg(long, allow_negative_numbers = true, conflicts_with = "tspan")]
    time: Option<f64>,

    /// The whole integration T0:T1 instead of --time: the transient from T0, then
    /// recording to T1
    #[arg(long, value_name = "T0:T1", value_parser = parse_span, allow_hyphen_values = true)]
    tspan: Option<[f64; 2]>,

    /// Points kept per trajectory (the first K after the transient) [default: 64]
    #[arg(long, value_name = "K", allow_negative_numbers = true)]
    points: Option<i64>,

    /// Values closer than this count as one in the summary and distinct.npy [default:
    /// 0.001]
    #[arg(long, allow_negative_numbers = true)]
    tol: Option<f64>,

    /// Method: an adaptive pair (bs3, dp5, tsit5 [default], dop853) or fixed-step euler,
    /// heun, rk4 with --dt
    #[arg(long, value_enum, hide_possible_values = true)]
    solver: Option<Solver>,

    /// Fixed-step solvers: the step [default: the system's suggestion]; adaptive: the
    /// first step
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

    /// Arithmetic precision (f64 needs an adapter with SHADER_F64); files are float64
    /// either way
    #[arg(long, value_enum)]
    precision: Option<Precision>,

    /// Number of trajectories (implied by a sweep with a COUNT if not given)
    #[arg(short, long, allow_negative_numbers = true)]
    n: Option<usize>,

    /// The parameter drawn across the diagram, from low to high: PARAM=LO:HI spread over
    /// -n N trajectories, or PARAM=LO:HI:COUNT (one parameter, given once)
    #[arg(long, value_name = "PARAM=LO:HI[:COUNT]", value_parser = parse_assign)]
    sweep: Vec<(String, Vec<f64>)>,

    /// Set a parameter for every trajectory
    #[arg(long, value_name = "PARAM=VALUE", value_parser = parse_assign)]
    param: Vec<(String, Vec<f64>)>,

    /// Set the default initial value of a state
    #[arg(long, value_name = "STATE=VALUE", value_parser = parse_assign)]
    set: Vec<(String, Vec<f64>)>,

    /// Initial states from an .npy of shape [N, dim]
    #[arg(long, value_name = "FILE.npy")]
    u0: Option<PathBuf>,

    /// Initial states uniform at random in a box (repeat per state; others at default)
    #[arg(long, value_name = "STATE=LO:HI", value_parser = parse_assign)]
    u0_uniform: Vec<(String, Vec<f64>)>,

    /// Initial states on a regular grid (repeat per state; the first varies slowest)
    #[arg(long, value_name = "STATE=LO:HI[:COUNT]", value_parser = parse_assign)]
    u0_grid: Vec<(String, Vec<f64>)>,

    /// Trajectory j starts at the default plus j*STEP in one state
    #[arg(long, value_name = "STATE=STEP", value_parser = parse_assign)]
    u0_perturb: Vec<(String, Vec<f64>)>,

    /// Seed of the random initial states [default: 0]
    #[arg(long, allow_negative_numbers = true)]
    seed: Option<u64>,

    /// Write the results as .npy files and a PNG into this directory
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// With -o: replace the results already in DIR
    #[arg(long)]
    overwrite: bool,

    /// Print a JSON summary instead of text
    #[arg(long)]
    json: bool,

    /// No progress bar
    #[arg(short, long)]
    quiet: bool,

    /// Most trajectories per chunk (performance only; results do not change)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    chunk: Option<usize>,

    /// Device memory the run may use, e.g. 512M or 2G [default: 1G on GPUs, 256M on CPU
    /// adapters]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    gpu_memory: Option<u64>,
}

/// The files a run writes, so that an output directory holding them needs --overwrite.
const FILES: [&str; 7] = [
    "orbit.npy",
    "counts.npy",
    "distinct.npy",
    "params.npy",
    "status.npy",
    "orbit.png",
    "run.json",
];

fn input(m: impl Into<String>) -> CliError {
    CliError::Input(m.into())
}

impl OrbitArgs {
    /// The flags as a run spec, to be laid over the config file's; a name repeated within
    /// one flag is refused.
    fn spec(&self) -> Result<RunSpec, CliError> {
        for (flag, pairs) in [
            ("--sweep", &self.sweep),
            ("--param", &self.param),
            ("--set", &self.set),
            ("--u0-uniform", &self.u0_uniform),
            ("--u0-grid", &self.u0_grid),
            ("--u0-perturb", &self.u0_perturb),
        ] {
            no_repeats(flag, pairs)?;
        }
        let points = match self.points {
            Some(k) if k < 0 => {
                return Err(input(format!("--points must be at least 1 (got {k})")));
            }
            k => k.map(|k| k as usize),
        };
        let some_map = |pairs: &[(String, Vec<f64>)]| (!pairs.is_empty()).then(|| to_map(pairs));
        let u0 = U0Spec {
            uniform: some_map(&self.u0_uniform),
            grid: some_map(&self.u0_grid),
            perturb: some_map(&self.u0_perturb),
            file: self.u0.clone(),
        };
        let any_u0 =
            u0.uniform.is_some() || u0.grid.is_some() || u0.perturb.is_some() || u0.file.is_some();
        let orbit = OrbitSpec {
            maxima: self.maxima.clone(),
            observe: self.observe.clone(),
            time: self.time,
            tol: self.tol,
        };
        Ok(RunSpec {
            system: self.system.clone(),
            n: self.n,
            seed: self.seed,
            set: to_map(&self.set),
            param: to_map(&self.param),
            sweep: to_map(&self.sweep),
            u0: any_u0.then_some(u0),
            solver: self.solver,
            tspan: self.tspan,
            dt: self.dt,
            precision: self.precision,
            rtol: self.rtol.map(toml::Value::Float),
            atol: self.atol.map(toml::Value::Float),
            max_steps: self.max_steps,
            section: self.section.clone(),
            direction: self.direction.clone(),
            transient: self.transient,
            points,
            out: self.out.clone(),
            orbit: (orbit != OrbitSpec::default()).then_some(orbit),
            ..RunSpec::default()
        })
    }
}

/// The y label and the title's words for what the points are.
fn labels(p: &OrbitProblem) -> (String, String) {
    let what = p.describe();
    match &p.kind {
        OrbitKind::Maxima { state, .. } if *state == p.observed => {
            (format!("{state} at its maxima"), what)
        }
        _ => (what.clone(), what),
    }
}

/// A trajectory's values for the text summary: all of them when few, else their range.
fn brief(points: &[f64], tol: f64) -> String {
    let d = distinct_values(points, tol);
    match d.len() {
        0 => "no points".into(),
        1..=4 => {
            let v: Vec<String> = d.iter().map(|x| format!("{x:.4}")).collect();
            format!("{} distinct: {}", d.len(), v.join(", "))
        }
        len => format!("{len} distinct in [{:.4}, {:.4}]", d[0], d[len - 1]),
    }
}

fn print_text(s: &OrbitProblem, o: &OrbitResult) {
    let p = &s.problem;
    let n = o.diagram.values.len();
    let ((lo, hi), _) = o.diagram.extent();
    println!(
        "{} · {} · {} · {} trajectories, {} ∈ [{lo}, {hi}] · {} · t {} → {}, recorded \
         after {} · at most {} points each",
        p.system().name(),
        p.solver().name(),
        p.precision().name(),
        grouped(n as u64),
        s.parameter,
        s.describe(),
        s.span.0,
        s.span.1,
        s.span.0 + s.transient,
        s.k
    );
    if let OrbitKind::Maxima { equation, .. } = &s.kind {
        println!("section  {equation} crossed downwards");
    }
    if !s.dropped.is_empty() {
        println!(
            "note     the system's record-only events ({}) are left out",
            s.dropped.join(", ")
        );
    }
    let full = o.counts.iter().filter(|&&c| c as usize == s.k).count();
    println!(
        "points   {} of {} trajectories have all {}",
        grouped(full as u64),
        grouped(n as u64),
        s.k
    );
    let failed = o.status.iter().filter(|&&st| st != Status::Success).count();
    if failed > 0 {
        // Their points stop where they stopped: say so, with the statuses.
        let mut status = [0usize; 7];
        for st in &o.status {
            status[*st as usize] += 1;
        }
        let counts: Vec<String> = Status::nonzero(status)
            .into_iter()
            .filter(|(st, _)| *st != Status::Success)
            .map(|(st, c)| format!("{}: {}", st.describe(), grouped(c as u64)))
            .collect();
        println!(
            "status   {} of {} trajectories did not succeed ({}); their points end where \
             they stopped (status.npy)",
            grouped(failed as u64),
            grouped(n as u64),
            counts.join(", ")
        );
    }
    let h = distinct_histogram(&o.distinct);
    let mut parts: Vec<String> =
        h.by.iter()
            .map(|(d, c)| format!("{d}: {}", grouped(*c as u64)))
            .collect();
    if h.many > 0 {
        parts.push(format!("more than {MANY}: {}", grouped(h.many as u64)));
    }
    if h.none > 0 {
        parts.push(format!("none: {}", grouped(h.none as u64)));
    }
    println!(
        "distinct values of {} (tol {}) → trajectories: {}",
        s.observed,
        s.tol,
        parts.join(", ")
    );
    // A few parameter values across the range, in order.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| o.diagram.values[i].total_cmp(&o.diagram.values[j]));
    let shown: Vec<usize> = if n <= 12 {
        order
    } else {
        (0..9).map(|m| order[m * (n - 1) / 8]).collect()
    };
    for j in shown {
        println!(
            "  {} = {:<10.6} {}",
            s.parameter,
            o.diagram.values[j],
            brief(&o.diagram.points[j], s.tol)
        );
    }
    let solve = o.stats.solve.as_secs_f64();
    println!(
        "solve    {} ({:.0} trajectories/s), compile {} on {}",
        seconds(solve),
        n as f64 / solve.max(1e-12),
        seconds(o.stats.compile.as_secs_f64()),
        o.adapter
    );
}

fn write(
    dir: &mut OutputDir,
    s: &OrbitProblem,
    o: &OrbitResult,
    summary: &serde_json::Value,
) -> Result<(), CliError> {
    let io = |e: crate::io::OutputError| CliError::Runtime(e.to_string());
    let n = o.diagram.values.len();
    let k = s.k;
    // orbit.npy row block by row block, NaN-padded: no second N × K copy in memory.
    let mut stream = dir
        .stream_npy("orbit.npy", Dtype::F64, &[n as u64, k as u64])
        .map_err(io)?;
    let block = (1 << 16) / k + 1;
    let mut start = 0;
    while start < n {
        let end = (start + block).min(n);
        let mut rows = vec![f64::NAN; (end - start) * k];
        for (r, pts) in o.diagram.points[start..end].iter().enumerate() {
            rows[r * k..r * k + pts.len()].copy_from_slice(pts);
        }
        stream
            .write_at((start * k) as u64, bytemuck::cast_slice(&rows))
            .map_err(|e| CliError::Runtime(format!("writing orbit.npy failed: {e}")))?;
        start = end;
    }
    stream
        .finish()
        .map_err(|e| CliError::Runtime(format!("writing orbit.npy failed: {e}")))?;
    dir.write_npy("counts.npy", &[n as u64], &o.counts)
        .map_err(io)?;
    dir.write_npy("distinct.npy", &[n as u64], &o.distinct)
        .map_err(io)?;
    let n_params = s.problem.system().n_params();
    dir.write_npy("params.npy", &[n as u64, n_params as u64], &o.params)
        .map_err(io)?;
    let codes: Vec<u8> = o.status.iter().map(|&st| st as u8).collect();
    dir.write_npy("status.npy", &[n as u64], &codes)
        .map_err(io)?;
    let (y_label, what) = labels(s);
    let title = format!("{}{}: {what}", s.problem.system().name(), fixed_params(s));
    let png = plot::picture(&o.diagram, &title, &y_label)
        .map_err(|e| CliError::Runtime(format!("drawing orbit.png failed: {e}")))?;
    dir.write_bytes("orbit.png", &png).map_err(io)?;
    dir.write_json("run.json", summary).map_err(io)?;
    Ok(())
}

pub fn run(args: &OrbitArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    if args.chunk == Some(0) {
        return Err(input("--chunk must be at least 1"));
    }
    let flags = args.spec()?;
    let config = args.config.as_deref();
    let spec = match config {
        Some(path) => RunSpec::from_file(path)?.merge(flags.clone()),
        None => flags.clone(),
    };
    if args.overwrite && spec.out.is_none() {
        return Err(input(
            "--overwrite replaces the results in -o DIR; give -o DIR",
        ));
    }
    let fail = |e| run_spec_error(e, &flags, config);
    let name = spec.system.as_deref().ok_or_else(|| {
        input(
            "give SYSTEM: a built-in's name (see `phaseflow systems`) or a system file, or \
             name it as `system` in the --config file",
        )
    })?;
    let problem = orbit_problem(load_system(name).map_err(fail)?, &spec).map_err(fail)?;
    // The directory is made (and proved writable) before any work.
    let out = match &spec.out {
        Some(dir) => {
            if !args.overwrite
                && let Some(f) = FILES.iter().find(|f| dir.join(f).exists())
            {
                return Err(input(format!(
                    "'{}' holds results already ({f}); give --overwrite to replace them",
                    dir.display()
                )));
            }
            Some(OutputDir::create(dir).map_err(|e| input(e.to_string()))?)
        }
        None => None,
    };
    let ctx = GpuContext::new(choice)?;
    let n = problem.n();
    let mut progress = Progress::new(n, args.quiet || args.json);
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
    let result = run_orbit_diagram_with(&ctx, &problem, &options, &mut progress);
    progress.finish();
    let result = result?;
    if result.stats.completed < n {
        return Err(CliError::Interrupted(format!(
            "interrupted after {} of {n} trajectories; nothing was written",
            result.stats.completed
        )));
    }
    let summary = result.summary_json(&problem);
    if let Some(mut dir) = out {
        write(&mut dir, &problem, &result, &summary)?;
        dir.commit().map_err(|e| CliError::Runtime(e.to_string()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("JSON"));
    } else {
        print_text(&problem, &result);
        if let Some(dir) = &spec.out {
            println!("wrote    {}/ ({})", dir.display(), FILES.join(", "));
        }
    }
    Ok(())
}

/// The other parameters' values for the picture's title, " (a = 0.1, b = 0.1)", when
/// they are few enough to read.
fn fixed_params(s: &OrbitProblem) -> String {
    let system = s.problem.system();
    let base = &s.problem.ensemble().base_params;
    let others: Vec<String> = system
        .params
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != s.param_index)
        .map(|(i, v)| format!("{} = {}", v.name, base[i]))
        .collect();
    if others.is_empty() || others.len() > 4 {
        return String::new();
    }
    format!(" ({})", others.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brief_lists_few_values_and_ranges_many() {
        assert_eq!(
            brief(&[1.0, 1.0001, 2.0], 1e-3),
            "2 distinct: 1.0000, 2.0000"
        );
        let many: Vec<f64> = (0..10).map(|i| i as f64).collect();
        assert_eq!(brief(&many, 1e-3), "10 distinct in [0.0000, 9.0000]");
        assert_eq!(brief(&[], 1e-3), "no points");
    }
}
