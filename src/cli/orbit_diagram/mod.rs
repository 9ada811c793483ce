//! `phaseflow orbit-diagram`: one parameter swept over an ensemble → each trajectory's
//! section points (or local maxima of a state) after a transient, from an events run on
//! the GPU → a summary of the distinct values per parameter value, `.npy` files and the
//! classic density picture.

mod collect;
mod maxima;
mod plot;

use super::ensemble_flags::EnsembleFlags;
use super::error::CliError;
use super::format::{grouped, seconds};
use super::interrupt;
use super::progress::Progress;
use super::simulate::{parse_size, parse_span};
use super::spec_flags::run_spec_error;
use crate::gpu::{AdapterChoice, GpuContext};
use crate::io::{Dtype, OutputDir};
use crate::model::diagnostic::did_you_mean;
use crate::model::{Direction, System};
use crate::ode::orbit::{OrbitDiagram, distinct_values};
use crate::ode::{
    FanOut, Parameters, Precision, Problem, RunOptions, RunStats, Solver, Status, Tolerance,
};
use crate::schedule::PlanCaps;
use crate::spec::{RunSpec, load_system, problem_for_system};
use collect::Collector;
use serde_json::json;
use std::collections::BTreeMap;
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
side of x's equation. The system's own events that only record are left out; events that
terminate or assign still act (and share the K records).

The summary counts the distinct values per trajectory (values closer than --tol merged):
1 for a period-1 orbit, 2 after the first period doubling, many for chaos.

Examples:
  phaseflow orbit-diagram rossler --param a=0.1 --param b=0.1 --sweep c=2:20 -n 1000 \\
      --maxima x --transient 500 --time 1000 --points 100 -o rossler-orbit
  phaseflow orbit-diagram lorenz --sweep rho=20:200 -n 2000 --section \"z = rho - 1\" \\
      --direction up --observe x --transient 50 --time 100 -o lorenz-orbit
  phaseflow orbit-diagram duffing --sweep gamma=0.2:0.5 -n 500 --maxima x --precision f64

Output (with -o DIR): orbit.npy [N, K] float64 (the observed state at each trajectory's
records, in the order they fired; NaN past its count), counts.npy [N] u32 (points per
trajectory), distinct.npy [N] u32 (distinct values at --tol), params.npy [N, n_params]
float64, status.npy [N] u8 (1 success, 2 max steps, 3 step-size underflow, 4 non-finite, 6
terminated by an event), orbit.png (the density picture: the parameter across, the observed
state up) and run.json describing the run. Files appear together when the run has
finished; Ctrl-C (or a failure) writes none.";

#[derive(Debug, clap::Args)]
pub struct OrbitArgs {
    /// A built-in system's name or the path of a system file (.toml)
    system: String,

    /// A Poincaré section, e.g. "z = 27" (either side any expression)
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

    /// Time integrated before points are recorded
    #[arg(long, default_value_t = 100.0, allow_negative_numbers = true)]
    transient: f64,

    /// Time points are recorded for, after the transient [default: 100]
    #[arg(long, allow_negative_numbers = true, conflicts_with = "tspan")]
    time: Option<f64>,

    /// The whole integration T0:T1 instead of --time: the transient from T0, then
    /// recording to T1
    #[arg(long, value_name = "T0:T1", value_parser = parse_span, allow_hyphen_values = true)]
    tspan: Option<[f64; 2]>,

    /// Points kept per trajectory (the first K after the transient)
    #[arg(
        long,
        value_name = "K",
        default_value_t = 64,
        allow_negative_numbers = true
    )]
    points: i64,

    /// Values closer than this count as one in the summary and distinct.npy
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    tol: f64,

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

/// Distinct-value counts above this are summarised together (chaos, quasi-periodicity or
/// a long period).
const MANY: usize = 16;

/// What the points are: a section or a state's maxima.
#[derive(Debug, Clone)]
enum Kind {
    Section { equation: String, direction: String },
    Maxima { state: String, equation: String },
}

/// A checked run: the events problem and what to read from its logs.
struct Setup {
    problem: Problem,
    kind: Kind,
    /// The section's event id, and the observed state's index and name.
    section: usize,
    observe: usize,
    observed: String,
    /// The swept parameter's name and index.
    parameter: String,
    param_index: usize,
    k: usize,
    transient: f64,
    span: (f64, f64),
    /// The system's own record-only events, left out of the run.
    dropped: Vec<String>,
}

fn input(m: impl Into<String>) -> CliError {
    CliError::Input(m.into())
}

/// The index of state `name`, or a message naming `flag` and the states there are.
fn state_index(system: &System, name: &str, flag: &str) -> Result<usize, CliError> {
    system.state_index(name).ok_or_else(|| {
        let names: Vec<&str> = system.states.iter().map(|v| v.name.as_str()).collect();
        let hint = match did_you_mean(name, names.iter().copied()) {
            Some(m) => format!("did you mean '{m}'? "),
            None => String::new(),
        };
        input(format!(
            "{flag} {name}: {} has no state '{name}'; {hint}its states are {}",
            system.name(),
            names.join(", ")
        ))
    })
}

impl OrbitArgs {
    fn setup(&self) -> Result<Setup, CliError> {
        let mut system = load_system(&self.system)?;
        if system.noise.is_some() {
            return Err(input(format!(
                "{} has a noise block; orbit diagrams are for deterministic systems",
                system.name()
            )));
        }
        let kind = match (&self.section, &self.maxima) {
            (Some(_), Some(_)) => {
                return Err(input(
                    "give either --section EQUATION or --maxima STATE, not both",
                ));
            }
            (None, None) => {
                return Err(input(
                    "give --section EQUATION (e.g. --section \"z = 27\") or --maxima STATE \
                     (e.g. --maxima x): where the points are recorded",
                ));
            }
            (Some(s), None) => Kind::Section {
                equation: s.clone(),
                direction: self.direction.clone().unwrap_or_else(|| "both".into()),
            },
            (None, Some(state)) => {
                if self.direction.is_some() {
                    return Err(input(
                        "--direction applies to --section; --maxima is the derivative's \
                         zero crossed downwards",
                    ));
                }
                let i = state_index(&system, state, "--maxima")?;
                Kind::Maxima {
                    state: state.clone(),
                    equation: maxima::maxima_section(&system, i),
                }
            }
        };
        let observed = match (&self.observe, &kind) {
            (Some(s), _) => s.clone(),
            (None, Kind::Maxima { state, .. }) => state.clone(),
            (None, Kind::Section { .. }) => {
                return Err(input(
                    "give --observe STATE: the state whose values at the section are drawn",
                ));
            }
        };
        let observe = state_index(&system, &observed, "--observe")?;
        if self.points < 1 {
            return Err(input(format!(
                "--points must be at least 1 (got {})",
                self.points
            )));
        }
        let k = self.points as usize;
        if !(self.tol >= 0.0 && self.tol.is_finite()) {
            return Err(input(format!(
                "--tol must be zero or positive (got {})",
                self.tol
            )));
        }
        if !(self.transient >= 0.0 && self.transient.is_finite()) {
            return Err(input(format!(
                "--transient must be zero or positive (got {})",
                self.transient
            )));
        }
        let (t0, t1) = match (self.tspan, self.time) {
            (Some([a, b]), _) => {
                if b - a <= self.transient {
                    return Err(input(format!(
                        "--tspan {a}:{b} leaves no time after the transient of {}; widen it \
                         or shorten --transient",
                        self.transient
                    )));
                }
                (a, b)
            }
            (None, time) => {
                let time = time.unwrap_or(100.0);
                if !(time > 0.0 && time.is_finite()) {
                    return Err(input(format!("--time must be positive (got {time})")));
                }
                (0.0, self.transient + time)
            }
        };
        let flags = self.ensemble.spec(&self.system)?;
        let parameter = match flags.sweep.keys().collect::<Vec<_>>()[..] {
            [name] => name.clone(),
            [] => {
                return Err(input(
                    "give --sweep PARAM=LO:HI (with -n N) or PARAM=LO:HI:COUNT: the parameter \
                     drawn across the diagram",
                ));
            }
            _ => {
                return Err(input(
                    "an orbit diagram sweeps one parameter; give --sweep once (fix others \
                     with --param)",
                ));
            }
        };
        let param_index = system.param_index(&parameter).ok_or_else(|| {
            let names: Vec<&str> = system.params.iter().map(|v| v.name.as_str()).collect();
            let hint = match did_you_mean(&parameter, names.iter().copied()) {
                Some(m) => format!("did you mean '{m}'? "),
                None => String::new(),
            };
            input(format!(
                "--sweep {parameter}: {} has no parameter '{parameter}'; {hint}its parameters \
                 are {}",
                system.name(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ))
        })?;
        if flags.params_file.is_some() {
            return Err(input(
                "--params gives every parameter per trajectory; the diagram's parameter comes \
                 from --sweep, so give --param for the others instead",
            ));
        }
        // Record-only events of the system change nothing in the dynamics but would take
        // record slots from the section; events that act stay.
        let dropped: Vec<String> = system
            .events
            .iter()
            .filter(|e| !e.action.cuts())
            .map(|e| e.name.clone())
            .collect();
        system.events.retain(|e| e.action.cuts());
        let (equation, direction) = match &kind {
            Kind::Section {
                equation,
                direction,
            } => (equation.clone(), direction.clone()),
            Kind::Maxima { equation, .. } => (equation.clone(), Direction::Down.name().into()),
        };
        let solver = self.solver.unwrap_or(Solver::Tsit5);
        if solver.is_stiff() || solver.is_sde() {
            return Err(input(format!(
                "--solver {}: the points are located as events, which the fixed-step (euler, \
                 heun, rk4) and adaptive (bs3, dp5, tsit5, dop853) solvers handle; choose one \
                 of those",
                solver.name()
            )));
        }
        let spec = RunSpec {
            solver: Some(solver),
            tspan: Some([t0, t1]),
            dt: self.dt,
            precision: self.precision,
            rtol: self.rtol.map(toml::Value::Float),
            atol: self.atol.map(toml::Value::Float),
            max_steps: self.max_steps,
            section: Some(equation),
            direction: Some(direction),
            transient: Some(self.transient),
            points: Some(k),
            ..flags.clone()
        };
        // The flags the user gave, so that an error names them (--solver, --points, ...).
        let given = RunSpec {
            solver: self.solver,
            tspan: self.tspan,
            dt: self.dt,
            precision: self.precision,
            rtol: spec.rtol.clone(),
            atol: spec.atol.clone(),
            max_steps: self.max_steps,
            section: self.section.clone(),
            direction: self.direction.clone(),
            points: Some(k),
            transient: Some(self.transient),
            ..flags
        };
        let problem = problem_for_system(system, &spec).map_err(|e| {
            match run_spec_error(e, &given, None) {
                // A maxima condition is ours, not the user's --section.
                CliError::Input(m) if self.maxima.is_some() => {
                    CliError::Input(m.replace("--section", "--maxima"))
                }
                other => other,
            }
        })?;
        problem.check()?;
        let n = problem.ensemble().n;
        // The points are held in host memory (N × K values at most) for the picture and
        // the summary.
        crate::ode::error::host_output_fits(k, n, 1, Precision::F64).map_err(|_| {
            input(format!(
                "{} trajectories × {k} points would take {:.1} GiB of host memory; lower -n \
                 or --points",
                grouped(n as u64),
                (n as f64 * k as f64 * 8.0) / (1u64 << 30) as f64
            ))
        })?;
        let section = problem.system().events.len() - 1;
        Ok(Setup {
            problem,
            kind,
            section,
            observe,
            observed,
            parameter,
            param_index,
            k,
            transient: self.transient,
            span: (t0, t1),
            dropped,
        })
    }
}

/// The x label and title words for what the points are.
fn describe(s: &Setup) -> (String, String) {
    match &s.kind {
        Kind::Maxima { state, .. } if *state == s.observed => (
            format!("{state} at its maxima"),
            format!("maxima of {state}"),
        ),
        Kind::Maxima { state, .. } => (
            format!("{} at maxima of {state}", s.observed),
            format!("{} at maxima of {state}", s.observed),
        ),
        Kind::Section {
            equation,
            direction,
        } => (
            format!("{} at {equation} ({direction})", s.observed),
            format!("{} at {equation} ({direction})", s.observed),
        ),
    }
}

/// Per trajectory: how many distinct values its points take at `tol`.
fn distinct_counts(points: &[Vec<f64>], tol: f64) -> Vec<u32> {
    points
        .iter()
        .map(|p| distinct_values(p, tol).len() as u32)
        .collect()
}

/// Trajectories by their number of distinct values: (values, trajectories) up to MANY,
/// then the count above MANY, and the count with no points.
fn histogram(distinct: &[u32]) -> (BTreeMap<u32, usize>, usize, usize) {
    let mut by = BTreeMap::new();
    let (mut many, mut none) = (0, 0);
    for &d in distinct {
        match d as usize {
            0 => none += 1,
            d if d > MANY => many += 1,
            d => *by.entry(d as u32).or_insert(0) += 1,
        }
    }
    (by, many, none)
}

/// The method's settings for run.json.
fn method_json(p: &Problem) -> serde_json::Value {
    let tol = |t: &Tolerance| match t {
        Tolerance::All(v) => json!(v),
        Tolerance::PerState(v) => json!(v),
    };
    match p {
        Problem::Fixed(f) => json!({"dt": f.grid.dt, "steps": f.grid.n_steps}),
        _ => match p.ode_control() {
            Some((_, _, _, c)) => json!({
                "rtol": tol(&c.rtol),
                "atol": tol(&c.atol),
                "dt_initial": c.dt_initial,
                "max_steps": c.max_steps,
            }),
            None => json!(null),
        },
    }
}

struct Outcome {
    diagram: OrbitDiagram,
    distinct: Vec<u32>,
    status: Vec<Status>,
    fired: Vec<u32>,
    steps: collect::StepTotals,
    stats: RunStats,
}

fn summary(s: &Setup, o: &Outcome, tol: f64, adapter: &str) -> serde_json::Value {
    let p = &s.problem;
    let system = p.system();
    let n = o.diagram.values.len();
    let (by, many, none) = histogram(&o.distinct);
    let full = o.diagram.points.iter().filter(|v| v.len() == s.k).count();
    let mut status = [0usize; 7];
    for st in &o.status {
        status[*st as usize] += 1;
    }
    let ((lo, hi), _) = o.diagram.extent();
    let what = match &s.kind {
        Kind::Section {
            equation,
            direction,
        } => json!({"kind": "section", "section": equation, "direction": direction}),
        Kind::Maxima { state, equation } => json!({"kind": "maxima", "state": state,
            "section": equation, "direction": "down"}),
    };
    // Whether fired counts are section crossings alone (no other events share the log).
    let only_section = system.events.len() == 1;
    json!({
        "phaseflow": env!("CARGO_PKG_VERSION"),
        "system": system.name(),
        "equations": system.equations,
        "states": system.states.iter().map(|v| &v.name).collect::<Vec<_>>(),
        "parameters": system.params.iter().map(|v| &v.name).collect::<Vec<_>>(),
        "base_parameters": p.ensemble().base_params,
        "n": n,
        "sweep": {"parameter": s.parameter, "lo": lo, "hi": hi},
        "points": what,
        "observe": s.observed,
        "dropped_record_events": s.dropped,
        "tspan": [s.span.0, s.span.1],
        "transient": s.transient,
        "points_per_trajectory": s.k,
        "solver": p.solver().name(),
        "adaptive": p.is_adaptive(),
        "precision": p.precision().name(),
        "method": method_json(p),
        "status": crate::ode::solution::status_counts_json(Status::nonzero(status)),
        "trajectories_with_k_points": full,
        "crossings_beyond_k": if only_section {
            json!(o.fired.iter().map(|&c| (c as u64).saturating_sub(s.k as u64)).sum::<u64>())
        } else {
            json!(null)
        },
        "distinct_values": {
            "tol": tol,
            "by_count": by.iter().map(|(d, c)| json!({"values": d, "trajectories": c}))
                .collect::<Vec<_>>(),
            "more_than": MANY,
            "trajectories_with_more": many,
            "trajectories_without_points": none,
        },
        "steps": {"accepted": o.steps.accepted, "rejected": o.steps.rejected,
                  "attempts_max": o.steps.max_attempts},
        "timing": {
            "setup_s": o.stats.setup.as_secs_f64(),
            "compile_s": o.stats.compile.as_secs_f64(),
            "solve_s": o.stats.solve.as_secs_f64(),
            "host_s": o.stats.host.as_secs_f64(),
            "chunks": o.stats.chunks,
        },
        "adapter": adapter,
    })
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

fn print_text(s: &Setup, o: &Outcome, tol: f64, adapter: &str) {
    let p = &s.problem;
    let n = o.diagram.values.len();
    let ((lo, hi), _) = o.diagram.extent();
    let (_, what) = describe(s);
    println!(
        "{} · {} · {} · {} trajectories, {} ∈ [{lo}, {hi}] · {what} · t {} → {}, recorded \
         after {} · at most {} points each",
        p.system().name(),
        p.solver().name(),
        p.precision().name(),
        grouped(n as u64),
        s.parameter,
        s.span.0,
        s.span.1,
        s.span.0 + s.transient,
        s.k
    );
    if let Kind::Maxima { equation, .. } = &s.kind {
        println!("section  {equation} crossed downwards");
    }
    if !s.dropped.is_empty() {
        println!(
            "note     the system's record-only events ({}) are left out",
            s.dropped.join(", ")
        );
    }
    let full = o.diagram.points.iter().filter(|v| v.len() == s.k).count();
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
    let (by, many, none) = histogram(&o.distinct);
    let mut parts: Vec<String> = by
        .iter()
        .map(|(d, c)| format!("{d}: {}", grouped(*c as u64)))
        .collect();
    if many > 0 {
        parts.push(format!("more than {MANY}: {}", grouped(many as u64)));
    }
    if none > 0 {
        parts.push(format!("none: {}", grouped(none as u64)));
    }
    println!(
        "distinct values of {} (tol {tol}) → trajectories: {}",
        s.observed,
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
            brief(&o.diagram.points[j], tol)
        );
    }
    let solve = o.stats.solve.as_secs_f64();
    println!(
        "solve    {} ({:.0} trajectories/s), compile {} on {adapter}",
        seconds(solve),
        n as f64 / solve.max(1e-12),
        seconds(o.stats.compile.as_secs_f64())
    );
}

fn write(
    dir: &mut OutputDir,
    s: &Setup,
    o: &Outcome,
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
    let counts: Vec<u32> = o.diagram.points.iter().map(|v| v.len() as u32).collect();
    dir.write_npy("counts.npy", &[n as u64], &counts)
        .map_err(io)?;
    dir.write_npy("distinct.npy", &[n as u64], &o.distinct)
        .map_err(io)?;
    let n_params = s.problem.system().n_params();
    let params = s.problem.ensemble().params(0..n);
    dir.write_npy("params.npy", &[n as u64, n_params as u64], &params)
        .map_err(io)?;
    let codes: Vec<u8> = o.status.iter().map(|&st| st as u8).collect();
    dir.write_npy("status.npy", &[n as u64], &codes)
        .map_err(io)?;
    let (y_label, what) = describe(s);
    let title = format!("{}{}: {what}", s.problem.system().name(), fixed_params(s));
    let png = plot::picture(&o.diagram, &title, &y_label)
        .map_err(|e| CliError::Runtime(format!("drawing orbit.png failed: {e}")))?;
    dir.write_bytes("orbit.png", &png).map_err(io)?;
    dir.write_json("run.json", summary).map_err(io)?;
    Ok(())
}

pub fn run(args: &OrbitArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    if args.overwrite && args.out.is_none() {
        return Err(input(
            "--overwrite replaces the results in -o DIR; give -o DIR",
        ));
    }
    if args.chunk == Some(0) {
        return Err(input("--chunk must be at least 1"));
    }
    let setup = args.setup()?;
    // The directory is made (and proved writable) before any work.
    let out = match &args.out {
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
    let n = setup.problem.ensemble().n;
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
    let mut collector = Collector::new(n, setup.section, setup.observe);
    let mut display = progress;
    let stats = setup.problem.run_into(
        &ctx,
        &options,
        &mut FanOut(vec![&mut collector, &mut display]),
    );
    display.finish();
    let stats = stats?;
    if stats.completed < n {
        return Err(CliError::Interrupted(format!(
            "interrupted after {} of {n} trajectories; nothing was written",
            stats.completed
        )));
    }
    let values = swept_values(&setup);
    let distinct = distinct_counts(&collector.points, args.tol);
    let outcome = Outcome {
        diagram: OrbitDiagram {
            parameter: setup.parameter.clone(),
            observed: setup.observed.clone(),
            values,
            points: collector.points,
        },
        distinct,
        status: collector.status,
        fired: collector.fired,
        steps: collector.steps,
        stats,
    };
    let s = summary(&setup, &outcome, args.tol, &ctx.summary.name);
    if let Some(mut dir) = out {
        write(&mut dir, &setup, &outcome, &s)?;
        dir.commit().map_err(|e| CliError::Runtime(e.to_string()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s).expect("JSON"));
    } else {
        print_text(&setup, &outcome, args.tol, &ctx.summary.name);
        if let Some(dir) = &args.out {
            println!("wrote    {}/ ({})", dir.display(), FILES.join(", "));
        }
    }
    Ok(())
}

/// The other parameters' values for the picture's title, " (a = 0.1, b = 0.1)", when
/// they are few enough to read.
fn fixed_params(s: &Setup) -> String {
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

/// The swept parameter's value per trajectory.
fn swept_values(s: &Setup) -> Vec<f64> {
    let e = s.problem.ensemble();
    let cols = s.problem.system().n_params();
    debug_assert!(matches!(e.params, Parameters::Sweep(_)));
    let params = e.params(0..e.n);
    (0..e.n).map(|j| params[j * cols + s.param_index]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_sorts_trajectories_by_distinct_values() {
        let (by, many, none) = histogram(&[1, 1, 2, 4, 0, 17, 40, 16]);
        assert_eq!(
            by.into_iter().collect::<Vec<_>>(),
            vec![(1, 2), (2, 1), (4, 1), (16, 1)]
        );
        assert_eq!((many, none), (2, 1));
    }

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
