//! `phaseflow simulate`: flags and config → problem → GPU run → summary and `.npy` files.

use super::error::CliError;
use super::format::{grouped, seconds};
use super::interrupt;
use super::progress::Progress;
use super::spec_flags::run_spec_error;
use crate::gpu::{AdapterChoice, GpuContext, GpuError, list_adapters};
use crate::ode::FixedStepProblem;
use crate::ode::run_dir::{DirRun, Prepared, ResumePoint, RunDirError, prepare_run};
use crate::ode::sde::{SdeProblem, Steps as SdeSteps};
use crate::ode::{
    self, Precision, Problem, RunOptions, RunStats, Save, SimError, Solver, Status, Tally,
    Tolerance,
};
use crate::schedule::PlanCaps;
use crate::spec::{Output, RunSpec, U0Spec};
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "\
Integrate an ensemble of trajectories of a system on the GPU.

Each trajectory has its own initial state and parameters. One GPU invocation integrates one
trajectory for many steps; the host only moves whole chunks.

The system is a built-in (see `phaseflow systems`) or a system file. Time span and step
default to the system's suggestion.

Fixed-step solvers (euler, heun, rk4) take steps of --dt; --save-every K keeps every K-th
step. Adaptive solvers (bs3, dp5, tsit5, dop853) control each trajectory's own step size to
--rtol/--atol (per state with NAME=VALUE); --saveat t0:dt:t1 interpolates every trajectory
onto the same times with the method's continuous extension. Either way, without a save
option only the final state is kept (the cheapest mode).

Stiff systems (chemical kinetics, relaxation oscillators, circuits) take the Rosenbrock
solvers rosenbrock23, rodas4 and rodas5p, which solve with the system's symbolic Jacobian,
or auto, which runs each trajectory with tsit5 while it is not stiff and rodas5p while it is.

--precision f64 computes and stores in double precision where the adapter allows it.

Events ([[events]] in a system file, e.g. the built-in bouncing_ball; fixed-step and adaptive
solvers): zero crossings located on each step's continuous extension, or discrete conditions
after a step, that record, terminate or assign; each trajectory keeps its first --events K
(time, event id, state) in events.npy and counts them all in event_counts.npy. --section
\"z = 27\" --direction up adds a Poincaré section; --transient T skips records before t0 + T.

Examples:
  phaseflow simulate lorenz -n 100000 --sweep rho=0:50
  phaseflow simulate lorenz -n 10000 --u0-uniform x=-20:20 --u0-uniform z=0:50 --seed 1 -o out
  phaseflow simulate duffing --sweep gamma=0.2:0.6:200 --sweep omega=1:1.4:50 --save-every 100
  phaseflow simulate my_system.toml -n 1000 --tspan 0:50 --dt 0.01
  phaseflow simulate lorenz -n 100000 --sweep rho=0:50 --solver tsit5 --rtol 1e-6 --atol 1e-6
  phaseflow simulate lorenz --solver dop853 --rtol 1e-12 --atol 1e-12 --precision f64 \
      --saveat 0:0.01:10 -n 1 -o out
  phaseflow simulate lorenz -n 10000 --section \"z = 27\" --direction up --transient 10 \
      --points 50 --tspan 0:60 -o out
  phaseflow simulate --config run.toml

Output (with -o DIR): states.npy [n_save, N, dim] f32 (f64 with --precision f64),
times.npy [n_save] f64, status.npy [N] u8 (1 success, 2 max steps, 3 step-size underflow,
4 non-finite, 5 singular iteration matrix, 6 terminated by an event, 0 not run: an
interrupted run's trajectories past trajectories_done, whose states are NaN), for adaptive solvers stats.npy [N, 3] u32
(accepted steps, rejected steps, right-hand-side evaluations; stiff solvers add Jacobian
evaluations and method switches: [N, 5]), params.npy [N, n_params] f64 and u0.npy [N, dim] f64 when
they vary across trajectories, and run.json describing the run. run.json exists from the
start (state running), so a run stopped any way (Ctrl-C, a kill) continues with
--resume DIR; result files appear together when the run has finished or was interrupted; a
failed run leaves none. -o onto a directory that holds a run needs --overwrite.

With -o STORE.zarr: a Zarr v3 store (states, time, status, stats, params, u0; xarray opens it)
instead, which M processes can fill at once with --shard I/M (or auto/M in a Slurm array or
Kubernetes Indexed Job); a shard run again continues where it stopped; see `phaseflow store`.

Progress: a bar on a terminal; PHASEFLOW_PROGRESS=lines prints plain lines to stderr.";

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// A built-in system's name or the path of a system file (.toml)
    system: Option<String>,

    /// Read the run from a TOML file (the same keys as these flags); flags override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Number of trajectories (implied by a grid or an input file if not given)
    #[arg(short, long, allow_negative_numbers = true)]
    n: Option<usize>,

    /// Method. ODEs: fixed-step euler, heun, rk4 [default]; adaptive bs3, dp5, tsit5,
    /// dop853; stiff rosenbrock23, rodas4, rodas5p, auto (tsit5 ⇄ rodas5p per trajectory).
    /// SDEs (systems with a noise block): em [default], milstein, euler-heun, platen (weak
    /// order 2); adaptive milstein-adaptive
    #[arg(long, value_enum, hide_possible_values = true)]
    solver: Option<Solver>,

    /// Adaptive solvers: fixed steps of --dt with the pair's propagating method and no error
    /// control (as DiffEqGPU's `adaptive = false`)
    #[arg(long)]
    fixed_step: bool,

    /// Arithmetic and output precision (f64 needs an adapter with SHADER_F64)
    #[arg(long, value_enum)]
    precision: Option<Precision>,

    /// Time span [default: the system's suggestion]
    #[arg(long, value_name = "T0:T1", value_parser = parse_span, allow_hyphen_values = true)]
    tspan: Option<[f64; 2]>,

    /// Step size; must divide the span [default: the system's suggestion]. Adaptive
    /// solvers: the first step [default: chosen per trajectory]
    #[arg(long, allow_negative_numbers = true, value_parser = positive("dt"))]
    dt: Option<f64>,

    /// Fixed-step solvers: save the initial state and every K-th step (and the final state)
    #[arg(long, value_name = "K", allow_negative_numbers = true)]
    save_every: Option<u32>,

    /// Adaptive solvers: save every trajectory at t0, t0+dt, ... up to t1 (interpolated)
    #[arg(long, value_name = "T0:DT:T1", allow_hyphen_values = true)]
    saveat: Option<String>,

    /// Adaptive solvers: relative tolerance, for all states or one (STATE=VALUE) [default: 1e-6;
    /// milstein-adaptive 1e-3]
    #[arg(long, value_name = "[STATE=]VALUE", value_parser = parse_tolerance, allow_hyphen_values = true)]
    rtol: Vec<(String, f64)>,

    /// Adaptive solvers: absolute tolerance, for all states or one (STATE=VALUE) [default: 1e-6;
    /// milstein-adaptive 1e-3]
    #[arg(long, value_name = "[STATE=]VALUE", value_parser = parse_tolerance, allow_hyphen_values = true)]
    atol: Vec<(String, f64)>,

    /// Adaptive solvers: smallest step before a trajectory stops with "step-size underflow"
    #[arg(long, allow_negative_numbers = true, value_parser = non_negative("dtmin"))]
    dtmin: Option<f64>,

    /// Adaptive solvers: largest step [default: the span]
    #[arg(long, allow_negative_numbers = true, value_parser = positive("dtmax"))]
    dtmax: Option<f64>,

    /// Adaptive solvers: step attempts per trajectory before it stops with "max steps"
    /// [default: 100000]
    #[arg(long, allow_negative_numbers = true)]
    max_steps: Option<u32>,

    /// Adaptive solvers: safety factor of the step-size controller [default: 0.9]
    #[arg(long, allow_negative_numbers = true)]
    safety: Option<f64>,

    /// Adaptive solvers: largest factor a step may grow by [default: 10]
    #[arg(long, allow_negative_numbers = true)]
    max_growth: Option<f64>,

    /// Adaptive solvers: smallest factor a step may shrink by [default: 0.2]
    #[arg(long, allow_negative_numbers = true)]
    max_shrink: Option<f64>,

    /// Set the default initial value of a state
    #[arg(long, value_name = "STATE=VALUE", value_parser = parse_assign)]
    set: Vec<(String, Vec<f64>)>,

    /// Set a parameter for every trajectory
    #[arg(long, value_name = "PARAM=VALUE", value_parser = parse_assign)]
    param: Vec<(String, Vec<f64>)>,

    /// Sweep a parameter linearly over the trajectories (LO:HI), or over a grid when
    /// given more than once (LO:HI:COUNT each; the first varies slowest)
    #[arg(long, value_name = "PARAM=LO:HI[:COUNT]", value_parser = parse_assign)]
    sweep: Vec<(String, Vec<f64>)>,

    /// Parameters from an .npy of shape [N, n_params]
    #[arg(long, value_name = "FILE.npy")]
    params: Option<PathBuf>,

    /// Initial states from an .npy of shape [N, dim]
    #[arg(long, value_name = "FILE.npy")]
    u0: Option<PathBuf>,

    /// Input signals of systems that declare inputs, from an .npy of shape
    /// [N, total sensors] (each input's sensor values in declaration order)
    #[arg(long, value_name = "FILE.npy")]
    inputs: Option<PathBuf>,

    /// Initial states uniform at random in a box (repeat per state; others at default)
    #[arg(long, value_name = "STATE=LO:HI", value_parser = parse_assign)]
    u0_uniform: Vec<(String, Vec<f64>)>,

    /// Initial states on a regular grid (repeat per state; the first varies slowest)
    #[arg(long, value_name = "STATE=LO:HI[:COUNT]", value_parser = parse_assign)]
    u0_grid: Vec<(String, Vec<f64>)>,

    /// Trajectory j starts at the default plus j*STEP in one state
    #[arg(long, value_name = "STATE=STEP", value_parser = parse_assign)]
    u0_perturb: Vec<(String, Vec<f64>)>,

    /// Seed of the random initial states and of SDE noise (trajectory i's Wiener path
    /// depends only on the seed and i) [default: 0, so a run repeats exactly]
    #[arg(long, allow_negative_numbers = true)]
    seed: Option<u64>,

    /// SDEs: antithetic pairs: trajectory 2j+1 takes trajectory 2j's increments negated
    #[arg(long)]
    antithetic: bool,

    /// milstein-adaptive: levels of the virtual Brownian tree, 1 to 24: W is exact at 2^L
    /// points of the span and linear between them, so few levels make a coarser path
    /// [default: 16 in f32, 20 in f64]
    #[arg(long, value_name = "LEVELS", allow_negative_numbers = true)]
    brownian_depth: Option<u32>,

    /// Systems with events: records kept per trajectory (events.npy [N, K, 2 + dim]; every
    /// event is counted in event_counts.npy) [default: 64]
    #[arg(long, value_name = "K", allow_negative_numbers = true)]
    events: Option<usize>,

    /// A Poincaré section, e.g. "z = 27": every crossing is recorded (a continuous event
    /// with condition z - 27 added to the system)
    #[arg(long, value_name = "EQUATION", allow_hyphen_values = true)]
    section: Option<String>,

    /// The section's crossing direction: up (- to +), down or both [default: both]
    #[arg(long, value_name = "DIR")]
    direction: Option<String>,

    /// Events before t0 + T are neither recorded nor counted (actions still act)
    #[arg(long, value_name = "T", allow_negative_numbers = true)]
    transient: Option<f64>,

    /// Section points kept per trajectory (the same as --events K) [default: 64]
    #[arg(long, value_name = "K", allow_negative_numbers = true)]
    points: Option<usize>,

    /// Forward sensitivities, comma-separated: parameters and initial values (a state's name
    /// and 0, e.g. rho,beta,x0) to differentiate every trajectory with respect to; written to
    /// sensitivities.npy [n_save, N, dim, n_sens] (ODE solvers; not with events)
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    sensitivities: Vec<String>,

    /// Adaptive solvers with --sensitivities: include (default) measures the sensitivities
    /// in the step's error norm; exclude measures the states only, so the steps are those of
    /// the run without sensitivities
    #[arg(long, value_name = "HOW")]
    sensitivity_error: Option<String>,

    /// Write results as .npy files into this directory (refused if it holds a run already,
    /// unless --overwrite)
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// With -o: replace the run already in DIR as a whole (every file of the old run goes;
    /// a DIR that also holds files a run does not write is refused, nothing removed)
    #[arg(long)]
    overwrite: bool,

    /// Print a JSON summary instead of text
    #[arg(long)]
    json: bool,

    /// Invocations per workgroup (performance only; results do not change)
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    workgroup_size: u32,

    /// Most trajectories per chunk (performance only; results do not change) [default: as
    /// many as fit, but about 2^31 trajectory-steps at most (and at least 4,096
    /// trajectories), so that Ctrl-C loses little]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    chunk: Option<usize>,

    /// Device memory the run may use, e.g. 512M or 2G [default: 1G on GPUs, 256M on CPU
    /// adapters, whose device memory is host memory]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    gpu_memory: Option<u64>,

    /// Units of work in flight: the host consumes one while the device runs the next
    /// (performance only; results do not change)
    #[arg(long, value_name = "K", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=16))]
    ring: u32,

    /// Optional outputs with -o, comma-separated: states (default), trajectory-stats
    /// (per-trajectory min/max/mean over the saves), ensemble-stats (mean/variance across
    /// trajectories per save time), montecarlo (mean, variance, stderr, min, max, quantiles
    /// and counts across trajectories per save time; the same bits for any --chunk or
    /// --devices)
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    outputs: Vec<Output>,

    /// Quantile levels of --outputs montecarlo, comma-separated, each in [0, 1] [default:
    /// 0.01,0.05,0.25,0.5,0.75,0.95,0.99]
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        allow_negative_numbers = true
    )]
    quantiles: Vec<f64>,

    /// No progress bar
    #[arg(short, long)]
    quiet: bool,

    /// Run on several adapters at once: `all`, or a comma-separated list of indices or name
    /// parts from `phaseflow info` (results are the same bytes as on one)
    #[arg(long, value_name = "LIST")]
    devices: Option<String>,

    /// Continue the interrupted (or killed) run in DIR, writing into DIR wherever it now is
    /// (its run.json holds the run); the result is the same bytes as an uninterrupted run
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,

    /// With -o STORE.zarr: compute only shard I of M (from 0) and write only its chunks,
    /// so that M processes fill one store at once; auto/M takes I from
    /// SLURM_ARRAY_TASK_ID (less SLURM_ARRAY_TASK_MIN) or JOB_COMPLETION_INDEX (Kubernetes)
    #[arg(long, value_name = "I/M")]
    shard: Option<String>,

    /// With -o STORE.zarr: trajectories per chunk [default: a power of two giving about
    /// 4 MiB of states per chunk]; shards are made of whole chunks
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=(1u64 << 40)))]
    zarr_chunk: Option<u64>,

    /// With -o STORE.zarr: chunk compression, zstd (level 3), zstd:LEVEL (1-22) or none
    #[arg(long, value_name = "HOW", value_parser = parse_compression)]
    compression: Option<Compression>,
}

/// A Zarr store's chunk compression: a zstd level, or none.
#[derive(Debug, Clone, Copy)]
pub struct Compression(Option<i32>);

fn parse_compression(s: &str) -> Result<Compression, String> {
    crate::ode::store::parse_compression(s).map(Compression)
}

/// Whether -o names a Zarr store (a path ending in .zarr) rather than a run directory.
fn is_zarr(path: &std::path::Path) -> bool {
    // By the name's ending, not `extension()`, which sees none in a name like `.zarr`.
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.to_ascii_lowercase().ends_with(".zarr"))
}

/// A flag's value parser: a positive, finite number.
pub(super) fn positive(what: &'static str) -> impl Fn(&str) -> Result<f64, String> + Clone {
    move |s| match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        Ok(v) => Err(format!("{what} must be positive (got {v})")),
        Err(_) => Err(format!("{what} must be a positive number, not '{s}'")),
    }
}

/// A flag's value parser: zero or a positive, finite number.
fn non_negative(what: &'static str) -> impl Fn(&str) -> Result<f64, String> + Clone {
    move |s| match s.trim().parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        Ok(v) => Err(format!("{what} must be zero or positive (got {v})")),
        Err(_) => Err(format!("{what} must be a number, not '{s}'")),
    }
}

/// Refuses a name given twice to one repeatable flag (`--sweep rho=0:1 --sweep rho=0:2`):
/// the second would silently replace the first.
pub(super) fn no_repeats(flag: &str, pairs: &[(String, Vec<f64>)]) -> Result<(), CliError> {
    for (i, (name, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(other, _)| other == name) {
            let what = if name == "*" {
                format!("{flag} (for every state)")
            } else {
                format!("{flag} {name}")
            };
            return Err(CliError::Input(format!(
                "{what} is given twice; give each once"
            )));
        }
    }
    Ok(())
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

pub(super) fn parse_span(s: &str) -> Result<[f64; 2], String> {
    match parse_numbers(s)?[..] {
        [a, b] => Ok([a, b]),
        _ => Err("expected T0:T1, e.g. 0:10".into()),
    }
}

/// `VALUE` (every state) or `STATE=VALUE`; the state is "*" for every state.
fn parse_tolerance(s: &str) -> Result<(String, f64), String> {
    let (name, value) = s.split_once('=').unwrap_or(("*", s));
    let v = value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("'{}' is not a finite number", value.trim()))?;
    Ok((name.trim().to_string(), v))
}

fn tolerance_value(pairs: &[(String, f64)]) -> Option<toml::Value> {
    match pairs {
        [] => None,
        [(name, v)] if name == "*" => Some(toml::Value::Float(*v)),
        _ => Some(toml::Value::Table(
            pairs
                .iter()
                .map(|(k, v)| (k.clone(), toml::Value::Float(*v)))
                .collect(),
        )),
    }
}

/// `name=v1[:v2[:v3]]`.
pub(super) fn parse_assign(s: &str) -> Result<(String, Vec<f64>), String> {
    let (name, values) = s.split_once('=').ok_or("expected NAME=VALUE")?;
    Ok((name.trim().to_string(), parse_numbers(values)?))
}

pub(super) fn to_map(pairs: &[(String, Vec<f64>)]) -> toml::map::Map<String, toml::Value> {
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

impl SimulateArgs {
    /// The flags as a spec, to be laid over the config file's; a name repeated within one
    /// flag is refused.
    fn checked_spec(&self) -> Result<RunSpec, CliError> {
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
        let tolerances = |flag, pairs: &[(String, f64)]| {
            let named: Vec<(String, Vec<f64>)> =
                pairs.iter().map(|(k, v)| (k.clone(), vec![*v])).collect();
            no_repeats(flag, &named)
        };
        tolerances("--rtol", &self.rtol)?;
        tolerances("--atol", &self.atol)?;
        Ok(self.spec())
    }

    /// The flags as a spec, to be laid over the config file's.
    fn spec(&self) -> RunSpec {
        let some_map = |pairs: &[(String, Vec<f64>)]| (!pairs.is_empty()).then(|| to_map(pairs));
        let u0 = U0Spec {
            uniform: some_map(&self.u0_uniform),
            grid: some_map(&self.u0_grid),
            perturb: some_map(&self.u0_perturb),
            file: self.u0.clone(),
        };
        let any_u0 =
            u0.uniform.is_some() || u0.grid.is_some() || u0.perturb.is_some() || u0.file.is_some();
        RunSpec {
            system: self.system.clone(),
            n: self.n,
            solver: self.solver,
            tspan: self.tspan,
            dt: self.dt,
            fixed_step: self.fixed_step.then_some(true),
            save_every: self.save_every,
            out: self.out.clone(),
            seed: self.seed,
            set: to_map(&self.set),
            param: to_map(&self.param),
            sweep: to_map(&self.sweep),
            params_file: self.params.clone(),
            inputs_file: self.inputs.clone(),
            u0: any_u0.then_some(u0),
            precision: self.precision,
            rtol: tolerance_value(&self.rtol),
            atol: tolerance_value(&self.atol),
            dtmin: self.dtmin,
            dtmax: self.dtmax,
            max_steps: self.max_steps,
            safety: self.safety,
            max_growth: self.max_growth,
            max_shrink: self.max_shrink,
            saveat: self.saveat.clone().map(toml::Value::String),
            outputs: (!self.outputs.is_empty()).then(|| self.outputs.clone()),
            antithetic: self.antithetic.then_some(true),
            brownian_depth: self.brownian_depth,
            quantiles: (!self.quantiles.is_empty()).then(|| self.quantiles.clone()),
            events: self.events,
            section: self.section.clone(),
            direction: self.direction.clone(),
            transient: self.transient,
            points: self.points,
            sensitivities: (!self.sensitivities.is_empty()).then(|| self.sensitivities.clone()),
            sensitivity_error: self.sensitivity_error.clone(),
            lyapunov: None,
            orbit: None,
            basins: None,
        }
    }
}

impl From<SimError> for CliError {
    fn from(e: SimError) -> Self {
        match e {
            SimError::Gpu(g) => g.into(),
            other => CliError::Input(other.to_string()),
        }
    }
}

/// The run's spec, from run.json (--resume) or from the config and flags, checked for
/// contradictions between options.
fn run_spec(args: &SimulateArgs, resume: Option<&ResumePoint>) -> Result<RunSpec, CliError> {
    if let Some(point) = resume {
        if !args.spec().is_empty() || args.config.is_some() || args.overwrite {
            return Err(CliError::Input(
                "--resume takes the run from DIR/run.json; give it only with performance \
                 options (--chunk, --ring, --gpu-memory, --workgroup-size, --devices, -q, --json)"
                    .into(),
            ));
        }
        return Ok(point.spec.clone());
    }
    let flags = args.checked_spec()?;
    let spec = match &args.config {
        Some(path) => RunSpec::from_file(path)?.merge(flags),
        None => flags,
    };
    if args.overwrite && spec.out.is_none() {
        return Err(CliError::Input(
            "--overwrite replaces the run in -o DIR; give -o DIR".into(),
        ));
    }
    let zarr = spec.out.as_deref().is_some_and(is_zarr);
    for (given, flag) in [
        (args.shard.is_some(), "--shard"),
        (args.zarr_chunk.is_some(), "--zarr-chunk"),
        (args.compression.is_some(), "--compression"),
    ] {
        if given && !zarr {
            return Err(CliError::Input(format!(
                "{flag} is for Zarr stores: give -o with a path ending in .zarr"
            )));
        }
    }
    Ok(spec)
}

/// The most trajectories per chunk: --chunk, or as many as keep the work an interruption
/// can lose bounded (`ode::run_dir::interruptible_chunk_of`).
fn chunk_cap(args: &SimulateArgs, problem: &Problem) -> usize {
    args.chunk
        .unwrap_or_else(|| crate::ode::run_dir::interruptible_chunk_of(problem))
}

pub fn run(args: &SimulateArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    if let Some(store) = args.resume.as_deref().filter(|p| is_zarr(p)) {
        return Err(CliError::Input(format!(
            "--resume continues a run directory; a Zarr store continues when the command that \
             wrote it (with its --shard) runs again: each shard starts from its last whole \
             chunk (`phaseflow store status {}` says where each stands)",
            store.display()
        )));
    }
    let resume = args.resume.as_deref().map(ResumePoint::read).transpose()?;
    let spec = run_spec(args, resume.as_ref())?;
    let spec_error = |e: RunDirError| match e {
        RunDirError::Spec(e) => run_spec_error(e, &args.spec(), args.config.as_deref()),
        other => other.into(),
    };
    let prepared = prepare_run(spec, resume.as_ref(), args.overwrite).map_err(spec_error)?;
    let devices = open_devices(args.devices.as_deref(), choice)?;
    let ctx = &devices[0];
    let (problem, spec) = (&prepared.problem, &prepared.spec);
    let n = problem.ensemble().n;

    let progress_display = Progress::new(prepared.remaining(), args.quiet || args.json);
    let options = RunOptions {
        workgroup_size: args.workgroup_size,
        caps: PlanCaps {
            max_chunk: Some(chunk_cap(args, prepared.run_problem())),
            memory_budget: args.gpu_memory.unwrap_or_else(|| default_gpu_memory(ctx)),
            ..PlanCaps::default()
        },
        ring: args.ring as usize,
        cancel: Some(interrupt::token()),
        progress: Some(progress_display.hook()),
        ..RunOptions::default()
    };
    interrupt::install_handler();
    let mut progress = progress_display;
    if let Some(store) = spec.out.as_deref().filter(|p| is_zarr(p)) {
        return run_zarr(args, &prepared, store, &devices, options, progress);
    }
    let outcome = prepared.run(&devices, options, &mut progress);
    progress.finish();
    let DirRun {
        summary,
        tally,
        stats,
        complete,
        unfinished,
    } = outcome.map_err(spec_error)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("JSON"));
    } else {
        print_summary(
            &devices,
            problem,
            &tally,
            &stats,
            prepared.times.len(),
            spec.out.as_deref(),
        );
        if let Some(run) = &prepared.sensitivities {
            println!(
                "sensitivities: d({})/d({}) · {} equations per trajectory · error control: {}{}",
                problem
                    .system()
                    .states
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                run.names.join(", "),
                run.problem.system().dim(),
                spec.sensitivity_error.as_deref().unwrap_or("include"),
                if spec.out.is_some() {
                    " · sensitivities.npy [n_save, N, dim, n_sens]"
                } else {
                    ""
                }
            );
        }
    }
    if unfinished > 0 {
        return Err(CliError::Runtime(format!(
            "{unfinished} of {n} trajectories came back unfinished (status \"not run\") although \
             their chunks were done, so the run is marked \"failed\", not complete; this is a \
             phaseflow or driver bug: please report it with run.json and `phaseflow info --json`"
        )));
    }
    if !complete {
        let how = match spec.out.as_deref() {
            Some(dir) => format!(
                "in {} the {} trajectories not run have status 0 (\"not run\") and NaN \
                 states, and run.json says \"interrupted\"; continue with \
                 `phaseflow simulate --resume {}`",
                dir.display(),
                n - stats.completed,
                dir.display()
            ),
            None => "nothing was written (no -o)".into(),
        };
        return Err(CliError::Interrupted(format!(
            "interrupted after {} of {} trajectories; {how}",
            stats.completed, n
        )));
    }
    Ok(())
}

/// One shard of the run (the whole run without --shard) into a Zarr store.
fn run_zarr(
    args: &SimulateArgs,
    prepared: &Prepared,
    store: &std::path::Path,
    devices: &[GpuContext],
    options: RunOptions,
    mut progress: Progress,
) -> Result<(), CliError> {
    use crate::ode::store::{Shard, StoreOptions, run_store};
    let shard = match args.shard.as_deref() {
        Some(s) => Shard::parse(s).map_err(|e| CliError::Input(format!("--shard {e}")))?,
        None => Shard::WHOLE,
    };
    let store_options = StoreOptions {
        shard,
        chunk_trajectories: args.zarr_chunk.map(|c| c as usize),
        zstd: args.compression.map_or(Some(3), |c| c.0),
        overwrite: args.overwrite,
    };
    let outcome = run_store(
        prepared,
        store,
        &store_options,
        devices,
        options,
        &mut progress,
    );
    progress.finish();
    let run = outcome.map_err(CliError::from)?;
    let (range, of) = (&run.shard.trajectories, shard.count);
    if args.json {
        let mut summary = run.summary.clone();
        if let Some(f) = &run.finalized {
            summary["finalized"] = f.clone();
        }
        println!("{}", serde_json::to_string_pretty(&summary).expect("JSON"));
    } else if run.already_complete {
        println!(
            "{}: shard {shard} (trajectories {}..{}) was already complete; nothing to do",
            store.display(),
            range.start,
            range.end
        );
    } else {
        print_summary(
            devices,
            &prepared.problem,
            &run.tally,
            &run.stats,
            prepared.times.len(),
            None,
        );
        println!(
            "shard {shard}: trajectories {}..{} into {}",
            range.start,
            range.end,
            store.display()
        );
    }
    if !args.json {
        match &run.finalized {
            Some(_) => println!(
                "{}: all {of} shard(s) complete; summary and consolidated metadata written",
                store.display()
            ),
            None if run.shard.is_complete() => {
                let status = crate::ode::store::StoreStatus::read(store).ok();
                let damaged: Vec<String> = status
                    .iter()
                    .flat_map(|s| &s.damaged)
                    .map(|(shard, e)| format!("{shard} ({e})"))
                    .collect();
                if !damaged.is_empty() {
                    println!(
                        "{}: not finalized: damaged shard(s) {}; run them again",
                        store.display(),
                        damaged.join(", ")
                    );
                } else if status.is_some_and(|s| s.finalized) {
                    println!("{}: complete (finalized earlier)", store.display());
                } else {
                    println!(
                        "{}: other shards not complete yet; the last to finish finalizes the \
                         store (`phaseflow store status {}`)",
                        store.display(),
                        store.display()
                    );
                }
            }
            None => {}
        }
    }
    if !run.shard.is_complete() {
        // Monte Carlo statistics without states cannot be fed again from the store: such a
        // shard starts over (see `ode::store`), and saying "continue" would mislead.
        let again = match prepared.outputs.contains(&Output::States) {
            true => "continue",
            false => "start it over (its statistics are not kept until it completes)",
        };
        return Err(CliError::Interrupted(format!(
            "shard {shard} interrupted: the store holds its trajectories {}..{} of {}..{}; run \
             the same command again to {again}",
            range.start, run.shard.done, range.start, range.end
        )));
    }
    Ok(())
}

/// The devices to run on: the one --adapter chooses, or --devices (a list of indices or
/// name parts from `phaseflow info`, or `all`).
fn open_devices(list: Option<&str>, choice: &AdapterChoice) -> Result<Vec<GpuContext>, CliError> {
    let choices: Vec<AdapterChoice> = match list.map(str::trim) {
        None => vec![choice.clone()],
        Some("all") => (0..list_adapters().len())
            .map(AdapterChoice::Index)
            .collect(),
        Some(items) => items.split(',').map(AdapterChoice::parse).collect(),
    };
    if choices.is_empty() {
        return Err(GpuError::NoAdapter.into());
    }
    choices
        .iter()
        .map(|c| GpuContext::new(c).map_err(CliError::from))
        .collect()
}

/// Device memory a run may use unless --gpu-memory says otherwise. On a CPU adapter
/// (lavapipe) device memory is host memory, so the default stays small there.
fn default_gpu_memory(ctx: &GpuContext) -> u64 {
    if ctx.is_cpu() { 256 << 20 } else { 1 << 30 }
}

/// `512M`, `2G`, `1.5GiB`, `1000000` (bytes).
pub(super) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a size like 512M or 2G"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1u64,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => return Err(format!("unknown size unit '{other}' (use K, M, G or T)")),
    };
    let bytes = value * scale as f64;
    if !(bytes >= 1.0 && bytes.is_finite()) {
        return Err(format!("'{s}' is not a positive size"));
    }
    Ok(bytes as u64)
}

/// Why a stiff f32 run with tight tolerances may have failed: f32 resolves about 6e-8
/// relative, and a Rosenbrock step at rtol ≤ 1e-6 asks its W solve and error estimate for
/// a few units in the last place, so steps shrink until they underflow (ROBER with doses in
/// f32 at rtol 1e-6 dies after four or five). Said only when some trajectory failed.
fn f32_stiff_note(p: &Problem, tally: &Tally) -> Option<String> {
    if !p.is_stiff() || p.precision() != Precision::F32 {
        return None;
    }
    let (_, _, _, control) = p.ode_control()?;
    let tightest = match &control.rtol {
        Tolerance::All(v) => *v,
        Tolerance::PerState(v) => v.iter().copied().fold(f64::INFINITY, f64::min),
    };
    let failed = tally.status_counts().into_iter().any(|(st, c)| {
        c > 0
            && matches!(
                st,
                Status::MaxSteps | Status::StepUnderflow | Status::NonFinite | Status::Singular
            )
    });
    (failed && tightest <= 1e-6).then(|| {
        format!(
            "rtol {tightest:e} is within a few f32 roundings (f32 resolves about 6e-8); \
             stiff steps at such tolerances can shrink until they underflow: try \
             --precision f64, or rtol 1e-5 or looser in f32"
        )
    })
}

fn print_summary(
    devices: &[GpuContext],
    p: &Problem,
    tally: &Tally,
    stats: &RunStats,
    n_save: usize,
    out: Option<&std::path::Path>,
) {
    let system = p.system();
    let head = format!(
        "{} · {} · {} · {} trajectories",
        system.name(),
        p.solver().name(),
        p.precision().name(),
        grouped(p.ensemble().n as u64)
    );
    match p {
        Problem::Fixed(FixedStepProblem { grid, save, .. })
        | Problem::Sde(SdeProblem {
            steps: SdeSteps::Fixed { grid, save },
            ..
        }) => {
            let saving = match save {
                Save::Final => "final state only".to_string(),
                Save::Every(k) => format!("saving every {k} steps ({n_save} saves)"),
            };
            println!(
                "{head} × {} steps (dt {}, t {} → {}) · {saving}",
                grouped(grid.n_steps as u64),
                grid.dt,
                grid.t0,
                grid.t1(),
            );
        }
        Problem::Sde(SdeProblem {
            steps:
                SdeSteps::Adaptive {
                    t0,
                    t1,
                    control,
                    saveat,
                    ..
                },
            ..
        }) => {
            let tol = |t: &Tolerance| match t {
                Tolerance::All(v) => format!("{v:e}"),
                Tolerance::PerState(v) => format!("{v:?}"),
            };
            let saving = match saveat {
                ode::SaveAt::Final => "final state only".to_string(),
                ode::SaveAt::Times(t) => format!("{} save times", t.len()),
            };
            println!(
                "{head} · t {t0} → {t1} · rtol {} atol {} · {saving}",
                tol(&control.rtol),
                tol(&control.atol)
            );
        }
        Problem::Adaptive(_) | Problem::Stiff(_) => {
            let (t0, t1, saveat, control) = p.ode_control().expect("a controlled ODE run");
            let tol = |t: &Tolerance| match t {
                Tolerance::All(v) => format!("{v:e}"),
                Tolerance::PerState(v) => format!("{v:?}"),
            };
            let saving = match saveat {
                ode::SaveAt::Final => "final state only".to_string(),
                ode::SaveAt::Times(t) => format!("{} save times", t.len()),
            };
            println!(
                "{head} · t {t0} → {t1} · rtol {} atol {} · {saving}",
                tol(&control.rtol),
                tol(&control.atol)
            );
        }
    }
    if !p.system().events.is_empty() {
        println!(
            "events   {} fired, {} recorded (at most {} per trajectory)",
            grouped(tally.events_fired),
            grouped(tally.events_recorded),
            p.system().event_log.k
        );
    }
    for ctx in devices {
        println!(
            "adapter  {} ({}, {})",
            ctx.summary.name, ctx.summary.backend, ctx.summary.device_type
        );
    }
    let gpu = stats
        .gpu
        .map(|g| format!(", GPU {}", seconds(g.as_secs_f64())))
        .unwrap_or_default();
    println!(
        "compile  {} (the kernel, before any work; not GPU time)",
        seconds(stats.compile.as_secs_f64())
    );
    let unit = if p.is_adaptive() {
        "step attempts/s"
    } else {
        "trajectory-steps/s"
    };
    println!(
        "solve    {}{gpu}, host {} · {:.3e} {unit} · setup {} · {} chunk(s), {} dispatch(es)",
        seconds(stats.solve.as_secs_f64()),
        seconds(stats.host.as_secs_f64()),
        stats.throughput(),
        seconds(stats.setup.as_secs_f64()),
        stats.chunks,
        stats.dispatches
    );
    if p.is_adaptive() {
        println!(
            "steps    {} accepted, {} rejected · per trajectory: mean {:.1}, max {} attempts",
            grouped(tally.accepted),
            grouped(tally.rejected),
            (tally.accepted + tally.rejected) as f64 / tally.trajectories.max(1) as f64,
            grouped(tally.max_attempts)
        );
    }
    if p.is_stiff() {
        println!(
            "stiff    {} Jacobians · {} switches in {} trajectories",
            grouped(tally.jacobians),
            grouped(tally.switches),
            grouped(tally.switched)
        );
    }
    let counts: Vec<String> = tally
        .status_counts()
        .into_iter()
        .map(|(st, c)| format!("{} {}", grouped(c as u64), st.describe()))
        .collect();
    println!("status   {}", counts.join(", "));
    if let Some(note) = f32_stiff_note(p, tally) {
        println!("note     {note}");
    }
    if let Some(dir) = out {
        println!("wrote    {}/ (files listed in run.json)", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::build_problem;

    fn problem(toml: &str) -> Problem {
        let spec: RunSpec = toml::from_str(toml).unwrap();
        build_problem(&spec).unwrap()
    }

    /// The f32 note comes with a stiff f32 run at rtol ≤ 1e-6 that lost a trajectory, and
    /// with nothing else.
    #[test]
    fn the_f32_note_needs_stiff_f32_tight_tolerances_and_a_failure() {
        let mut failed = Tally::default();
        failed.status[Status::Success as usize] = 3;
        failed.status[Status::StepUnderflow as usize] = 1;
        let mut fine = Tally::default();
        fine.status[Status::Success as usize] = 4;
        let tight = problem("system = 'rober'\nn = 4\nsolver = 'rosenbrock23'\nrtol = 1e-6");
        let note = f32_stiff_note(&tight, &failed).expect("a note");
        assert!(
            note.contains("rtol 1e-6") && note.contains("--precision f64"),
            "{note}"
        );
        assert!(f32_stiff_note(&tight, &fine).is_none());
        let loose = problem("system = 'rober'\nn = 4\nsolver = 'rosenbrock23'\nrtol = 1e-4");
        assert!(f32_stiff_note(&loose, &failed).is_none());
        let f64_run = problem(
            "system = 'rober'\nn = 4\nsolver = 'rosenbrock23'\nrtol = 1e-6\nprecision = 'f64'",
        );
        assert!(f32_stiff_note(&f64_run, &failed).is_none());
        let explicit = problem("system = 'rober'\nn = 4\nsolver = 'tsit5'\nrtol = 1e-6");
        assert!(f32_stiff_note(&explicit, &failed).is_none());
    }
}
