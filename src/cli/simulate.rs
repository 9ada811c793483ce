//! `phaseflow simulate`: flags and config → problem → GPU run → summary and `.npy` files.

use super::CliError;
use super::format::{grouped, seconds};
use super::interrupt;
use super::outputs::{Output, Outputs};
use super::progress::Progress;
use crate::gpu::{AdapterChoice, GpuContext, GpuError, list_adapters};
use crate::io::OutputDir;
use crate::ode::{
    self, FanOut, Precision, Problem, RunOptions, RunStats, Save, SimError, Sink, Solver, Tally,
    Tolerance, run_on_devices,
};
use crate::schedule::PlanCaps;
use crate::spec::{RunSpec, U0Spec, build_problem};
use serde_json::json;
use std::path::{Path, PathBuf};

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

--precision f64 computes and stores in double precision where the adapter allows it.

Examples:
  phaseflow simulate lorenz -n 100000 --sweep rho=0:50
  phaseflow simulate lorenz -n 10000 --u0-uniform x=-20:20 --u0-uniform z=0:50 --seed 1 -o out
  phaseflow simulate duffing --sweep gamma=0.2:0.6:200 --sweep omega=1:1.4:50 --save-every 100
  phaseflow simulate my_system.toml -n 1000 --tspan 0:50 --dt 0.01
  phaseflow simulate lorenz -n 100000 --sweep rho=0:50 --solver tsit5 --rtol 1e-6 --atol 1e-6
  phaseflow simulate lorenz --solver dop853 --rtol 1e-12 --atol 1e-12 --precision f64 \
      --saveat 0:0.01:10 -n 1 -o out
  phaseflow simulate --config run.toml

Output (with -o DIR): states.npy [n_save, N, dim] f32 (f64 with --precision f64),
times.npy [n_save] f64, status.npy [N] u8 (1 success, 2 max steps, 3 step-size underflow,
4 non-finite), for adaptive solvers stats.npy [N, 3] u32 (accepted steps, rejected steps,
right-hand-side evaluations), params.npy [N, n_params] f64 and u0.npy [N, dim] f64 when
they vary across trajectories, and run.json describing the run. Files appear together when
the run has finished; a failed run leaves none.";

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// A built-in system's name or the path of a system file (.toml)
    system: Option<String>,

    /// Read the run from a TOML file (the same keys as these flags); flags override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Number of trajectories (implied by a grid or an input file if not given)
    #[arg(short, long)]
    n: Option<usize>,

    /// Runge–Kutta method: fixed-step euler, heun, rk4 [default]; adaptive bs3, dp5, tsit5,
    /// dop853
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
    #[arg(long)]
    dt: Option<f64>,

    /// Fixed-step solvers: save the initial state and every K-th step (and the final state)
    #[arg(long, value_name = "K")]
    save_every: Option<u32>,

    /// Adaptive solvers: save every trajectory at t0, t0+dt, ... up to t1 (interpolated)
    #[arg(long, value_name = "T0:DT:T1", allow_hyphen_values = true)]
    saveat: Option<String>,

    /// Adaptive solvers: relative tolerance, for all states or one (STATE=VALUE) [default: 1e-6]
    #[arg(long, value_name = "[STATE=]VALUE", value_parser = parse_tolerance)]
    rtol: Vec<(String, f64)>,

    /// Adaptive solvers: absolute tolerance, for all states or one (STATE=VALUE) [default: 1e-6]
    #[arg(long, value_name = "[STATE=]VALUE", value_parser = parse_tolerance)]
    atol: Vec<(String, f64)>,

    /// Adaptive solvers: smallest step before a trajectory stops with "step-size underflow"
    #[arg(long)]
    dtmin: Option<f64>,

    /// Adaptive solvers: largest step [default: the span]
    #[arg(long)]
    dtmax: Option<f64>,

    /// Adaptive solvers: step attempts per trajectory before it stops with "max steps"
    /// [default: 100000]
    #[arg(long)]
    max_steps: Option<u32>,

    /// Adaptive solvers: safety factor of the step-size controller [default: 0.9]
    #[arg(long)]
    safety: Option<f64>,

    /// Adaptive solvers: largest factor a step may grow by [default: 10]
    #[arg(long)]
    max_growth: Option<f64>,

    /// Adaptive solvers: smallest factor a step may shrink by [default: 0.2]
    #[arg(long)]
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

    /// Seed of the random initial states
    #[arg(long)]
    seed: Option<u64>,

    /// Write results as .npy files into this directory
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Print a JSON summary instead of text
    #[arg(long)]
    json: bool,

    /// Invocations per workgroup (performance only; results do not change)
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    workgroup_size: u32,

    /// Most trajectories per chunk (performance only; results do not change)
    #[arg(long, value_name = "N")]
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
    /// trajectories per save time)
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    outputs: Vec<Output>,

    /// No progress bar
    #[arg(short, long)]
    quiet: bool,

    /// Run on several adapters at once: `all`, or a comma-separated list of indices or name
    /// parts from `phaseflow info` (results are the same bytes as on one)
    #[arg(long, value_name = "LIST")]
    devices: Option<String>,

    /// Continue the interrupted run whose output directory is DIR (its run.json holds the
    /// run); the result is the same bytes as an uninterrupted run
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
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
fn parse_assign(s: &str) -> Result<(String, Vec<f64>), String> {
    let (name, values) = s.split_once('=').ok_or("expected NAME=VALUE")?;
    Ok((name.trim().to_string(), parse_numbers(values)?))
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

impl SimulateArgs {
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

/// The spec and progress of an interrupted run, from its run.json.
fn resume_spec(dir: &Path) -> Result<(RunSpec, usize), CliError> {
    let path = dir.join("run.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CliError::Input(format!(
            "--resume: cannot read '{}': {e}; give the output directory of an interrupted run",
            path.display()
        ))
    })?;
    let run: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Input(format!("--resume: '{}' is not JSON: {e}", path.display())))?;
    if run["complete"] == json!(true) {
        return Err(CliError::Input(format!(
            "--resume: the run in '{}' is already complete",
            dir.display()
        )));
    }
    let spec: RunSpec = serde_json::from_value(run["spec"].clone()).map_err(|e| {
        CliError::Input(format!(
            "--resume: '{}' does not describe a resumable run ({e})",
            path.display()
        ))
    })?;
    let done = run["trajectories_done"].as_u64().ok_or_else(|| {
        CliError::Input(format!(
            "--resume: '{}' does not say how many trajectories are done",
            path.display()
        ))
    })?;
    Ok((spec, done as usize))
}

pub fn run(args: &SimulateArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    let (spec, done) = match &args.resume {
        Some(dir) => {
            if !args.spec().is_empty() || args.config.is_some() {
                return Err(CliError::Input(
                    "--resume takes the run from DIR/run.json; give it only with performance \
                     options (--chunk, --ring, --gpu-memory, --workgroup-size, -q, --json)"
                        .into(),
                ));
            }
            let (spec, done) = resume_spec(dir)?;
            (spec, Some(done))
        }
        None => match &args.config {
            Some(path) => (RunSpec::from_file(path)?.merge(args.spec()), None),
            None => (args.spec(), None),
        },
    };
    let problem = build_problem(&spec)?;
    let times = problem.save_times()?;
    let n = problem.ensemble().n;
    let outputs_wanted = spec.outputs.clone().unwrap_or_else(|| vec![Output::States]);
    // Every output file is created, and its space claimed, before any computing.
    let mut outputs = match spec.out.as_deref() {
        Some(dir) => {
            let dir = match done {
                Some(_) => OutputDir::reopen(dir),
                None => OutputDir::create(dir),
            }
            .map_err(|e| CliError::Input(e.to_string()))?;
            Some(Outputs::open(
                dir,
                &problem,
                times.len(),
                &outputs_wanted,
                done,
            )?)
        }
        None => None,
    };
    let mut tally = match (outputs.as_mut(), done) {
        (Some(o), Some(d)) => o.tally_prefix(d)?,
        _ => Tally::default(),
    };

    let devices = open_devices(args.devices.as_deref(), choice)?;
    let ctx = &devices[0];
    let options = RunOptions {
        workgroup_size: args.workgroup_size,
        caps: PlanCaps {
            max_chunk: args.chunk,
            memory_budget: args.gpu_memory.unwrap_or_else(|| default_gpu_memory(ctx)),
            ..PlanCaps::default()
        },
        ring: args.ring as usize,
        start: done.unwrap_or(0),
        cancel: Some(interrupt::token()),
        ..RunOptions::default()
    };
    interrupt::install_handler();
    let mut progress = Progress::new(n - options.start, times.len(), args.quiet || args.json);
    let stats = {
        let mut sinks: Vec<&mut dyn Sink> = vec![&mut tally, &mut progress];
        if let Some(o) = outputs.as_mut() {
            sinks.extend(o.sinks());
        }
        run_on_devices(&devices, &problem, &options, &mut FanOut(sinks))
    };
    progress.finish();
    let stats = stats?;
    let complete = stats.completed == n;

    let mut summary = summary_json(ctx, &problem, &tally, &stats, times.len());
    summary["devices"] = json!(devices.iter().map(|d| &d.summary.name).collect::<Vec<_>>());
    summary["complete"] = json!(complete);
    summary["trajectories_done"] = json!(stats.completed);
    summary["spec"] = serde_json::to_value(spec.clone().absolute()).expect("JSON");
    if let Some(o) = outputs {
        o.finish(&problem, &times, summary.clone(), complete)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("JSON"));
    } else {
        print_summary(
            &devices,
            &problem,
            &tally,
            &stats,
            times.len(),
            spec.out.as_deref(),
        );
    }
    if !complete {
        let how = match spec.out.as_deref() {
            Some(dir) => format!(
                "the files in {} are marked partial in run.json; continue with \
                 `phaseflow simulate --resume {}`",
                dir.display(),
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

/// What the run integrated and how, by kind of solver.
fn method_json(p: &Problem, tally: &Tally) -> serde_json::Value {
    match p {
        Problem::Fixed(f) => json!({
            "t0": f.grid.t0,
            "t1": f.grid.t1(),
            "dt": f.grid.dt,
            "steps": f.grid.n_steps,
            "save_every": match f.save { Save::Final => None, Save::Every(k) => Some(k) },
        }),
        Problem::Adaptive(a) => {
            let tol = |t: &Tolerance| match t {
                Tolerance::All(v) => json!(v),
                Tolerance::PerState(v) => json!(v),
            };
            let c = &a.control;
            json!({
                "t0": a.t0,
                "t1": a.t1,
                "rtol": tol(&c.rtol),
                "atol": tol(&c.atol),
                "dt_initial": c.dt_initial,
                "dtmin": c.dt_min,
                "dtmax": a.dt_max(),
                "max_steps": c.max_steps,
                "safety": c.safety,
                "max_growth": c.max_growth,
                "max_shrink": c.max_shrink,
                "saveat": match &a.saveat { ode::SaveAt::Final => None, ode::SaveAt::Times(t) => Some(t.len()) },
                "steps": {
                    "accepted": tally.accepted,
                    "rejected": tally.rejected,
                    "rhs_evals": tally.rhs_evals,
                    "attempts_mean": (tally.accepted + tally.rejected) as f64 / tally.trajectories.max(1) as f64,
                    "attempts_max": tally.max_attempts,
                },
            })
        }
    }
}

fn summary_json(
    ctx: &GpuContext,
    p: &Problem,
    tally: &Tally,
    stats: &RunStats,
    n_save: usize,
) -> serde_json::Value {
    let system = p.system();
    let names = |v: &[crate::model::Var]| v.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
    json!({
        "phaseflow": env!("CARGO_PKG_VERSION"),
        "system": system.name(),
        "equations": system.equations,
        "states": names(&system.states),
        "parameters": names(&system.params),
        "solver": p.solver(),
        "adaptive": p.is_adaptive(),
        "precision": p.precision(),
        "n": p.ensemble().n,
        "method": method_json(p, tally),
        "n_save": n_save,
        "status": ode::solution::status_counts_json(tally.status_counts()),
        "adapter": { "name": ctx.summary.name, "backend": ctx.summary.backend, "type": ctx.summary.device_type, "driver": ctx.summary.driver_info },
        "timing": {
            "setup_s": stats.setup.as_secs_f64(),
            "solve_s": stats.solve.as_secs_f64(),
            "gpu_s": stats.gpu.map(|d| d.as_secs_f64()),
            "host_s": stats.host.as_secs_f64(),
            "trajectory_steps": stats.trajectory_steps,
            "trajectory_steps_per_s": stats.throughput(),
            "chunks": stats.chunks,
            "dispatches": stats.dispatches,
        },
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
        Problem::Fixed(f) => {
            let saving = match f.save {
                Save::Final => "final state only".to_string(),
                Save::Every(k) => format!("saving every {k} steps ({n_save} saves)"),
            };
            println!(
                "{head} × {} steps (dt {}, t {} → {}) · {saving}",
                grouped(f.grid.n_steps as u64),
                f.grid.dt,
                f.grid.t0,
                f.grid.t1(),
            );
        }
        Problem::Adaptive(a) => {
            let tol = |t: &Tolerance| match t {
                Tolerance::All(v) => format!("{v:e}"),
                Tolerance::PerState(v) => format!("{v:?}"),
            };
            let saving = match &a.saveat {
                ode::SaveAt::Final => "final state only".to_string(),
                ode::SaveAt::Times(t) => format!("{} save times", t.len()),
            };
            println!(
                "{head} · t {} → {} · rtol {} atol {} · {saving}",
                a.t0,
                a.t1,
                tol(&a.control.rtol),
                tol(&a.control.atol)
            );
        }
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
    let counts: Vec<String> = tally
        .status_counts()
        .into_iter()
        .map(|(st, c)| format!("{} {}", grouped(c as u64), st.describe()))
        .collect();
    println!("status   {}", counts.join(", "));
    if let Some(dir) = out {
        println!("wrote    {}/ (files listed in run.json)", dir.display());
    }
}
