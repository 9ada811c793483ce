//! `phaseflow simulate`: flags and config → problem → GPU run → summary and `.npy` files.

use super::CliError;
use super::format::{grouped, seconds};
use super::spec::{RunSpec, U0Spec, build_problem};
use crate::gpu::{AdapterChoice, GpuContext};
use crate::io::OutputDir;
use crate::ode::{
    self, InitialStates, Parameters, Precision, Problem, RunOptions, Save, SimError, Solution,
    Solver, StateValues, Tolerance,
};
use crate::schedule::PlanCaps;
use serde_json::json;
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
            save_every: self.save_every,
            out: self.out.clone(),
            seed: self.seed,
            set: to_map(&self.set),
            param: to_map(&self.param),
            sweep: to_map(&self.sweep),
            params_file: self.params.clone(),
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

pub fn run(args: &SimulateArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    let spec = match &args.config {
        Some(path) => RunSpec::from_file(path)?.merge(args.spec()),
        None => args.spec(),
    };
    let problem = build_problem(&spec)?;
    problem.check()?;
    // Prove the output directory writable before spending any time computing.
    let out = spec
        .out
        .as_deref()
        .map(OutputDir::create)
        .transpose()
        .map_err(|e| CliError::Input(e.to_string()))?;

    let ctx = GpuContext::new(choice)?;
    let options = RunOptions {
        workgroup_size: args.workgroup_size,
        caps: PlanCaps {
            max_chunk: args.chunk,
            ..PlanCaps::default()
        },
        ..RunOptions::default()
    };
    let solution = problem.simulate(&ctx, &options)?;

    let mut summary = summary_json(&ctx, &problem, &solution);
    if let Some(mut dir) = out {
        let files = write_outputs(&mut dir, &problem, &solution)
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        summary["files"] = json!(files);
        dir.write_json("run.json", &summary)
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        dir.commit().map_err(|e| CliError::Runtime(e.to_string()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("JSON"));
    } else {
        print_summary(&ctx, &problem, &solution, spec.out.as_deref());
    }
    Ok(())
}

/// What the run integrated and how, by kind of solver.
fn method_json(p: &Problem, s: &Solution) -> serde_json::Value {
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
            let steps = s.steps.as_deref().unwrap_or(&[]);
            let attempts: Vec<u64> = steps.iter().map(|c| c.attempts()).collect();
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
                    "accepted": steps.iter().map(|c| c.accepted as u64).sum::<u64>(),
                    "rejected": steps.iter().map(|c| c.rejected as u64).sum::<u64>(),
                    "rhs_evals": steps.iter().map(|c| c.rhs_evals as u64).sum::<u64>(),
                    "attempts_mean": attempts.iter().sum::<u64>() as f64 / attempts.len().max(1) as f64,
                    "attempts_max": attempts.iter().max(),
                },
            })
        }
    }
}

fn summary_json(ctx: &GpuContext, p: &Problem, s: &Solution) -> serde_json::Value {
    let system = p.system();
    let names = |v: &[crate::model::Var]| v.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
    let counts: serde_json::Map<String, serde_json::Value> = s
        .status_counts()
        .into_iter()
        .map(|(st, c)| {
            (
                serde_json::to_value(st)
                    .expect("JSON")
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                json!(c),
            )
        })
        .collect();
    json!({
        "phaseflow": env!("CARGO_PKG_VERSION"),
        "system": system.name(),
        "equations": system.equations,
        "states": names(&system.states),
        "parameters": names(&system.params),
        "solver": p.solver(),
        "adaptive": p.solver().is_adaptive(),
        "precision": p.precision(),
        "n": s.n,
        "method": method_json(p, s),
        "n_save": s.n_save(),
        "status": counts,
        "adapter": { "name": ctx.summary.name, "backend": ctx.summary.backend, "type": ctx.summary.device_type, "driver": ctx.summary.driver_info },
        "timing": {
            "setup_s": s.stats.setup.as_secs_f64(),
            "solve_s": s.stats.solve.as_secs_f64(),
            "gpu_s": s.stats.gpu.map(|d| d.as_secs_f64()),
            "trajectory_steps": s.stats.trajectory_steps,
            "trajectory_steps_per_s": s.stats.throughput(),
            "chunks": s.stats.chunks,
            "dispatches": s.stats.dispatches,
        },
    })
}

fn write_outputs(
    dir: &mut OutputDir,
    p: &Problem,
    s: &Solution,
) -> Result<Vec<serde_json::Value>, crate::io::OutputError> {
    let (n, dim) = (s.n as u64, s.dim as u64);
    let dtype = match s.states.precision() {
        Precision::F32 => "float32",
        Precision::F64 => "float64",
    };
    let mut files = vec![
        json!({"file": "states.npy", "shape": [s.n_save(), s.n, s.dim], "dtype": dtype}),
        json!({"file": "times.npy", "shape": [s.n_save()], "dtype": "float64"}),
        json!({"file": "status.npy", "shape": [s.n], "dtype": "uint8"}),
    ];
    let shape = [s.n_save() as u64, n, dim];
    match &s.states {
        StateValues::F32(v) => dir.write_npy("states.npy", &shape, v)?,
        StateValues::F64(v) => dir.write_npy("states.npy", &shape, v)?,
    }
    dir.write_npy("times.npy", &[s.n_save() as u64], &s.times)?;
    let codes: Vec<u8> = s.status.iter().map(|&st| st as u8).collect();
    dir.write_npy("status.npy", &[n], &codes)?;
    if let Some(steps) = &s.steps {
        let table: Vec<u32> = steps
            .iter()
            .flat_map(|c| [c.accepted, c.rejected, c.rhs_evals])
            .collect();
        dir.write_npy("stats.npy", &[n, 3], &table)?;
        files.push(
            json!({"file": "stats.npy", "shape": [s.n, 3], "dtype": "uint32",
            "columns": ["accepted", "rejected", "rhs_evals"]}),
        );
    }
    let (system, ensemble) = (p.system(), p.ensemble());
    if ensemble.params != Parameters::Default && system.n_params() > 0 {
        let params = ensemble.params(0..s.n);
        dir.write_npy("params.npy", &[n, system.n_params() as u64], &params)?;
        files.push(
            json!({"file": "params.npy", "shape": [s.n, system.n_params()], "dtype": "float64"}),
        );
    }
    if ensemble.initial != InitialStates::Default {
        let u0 = ensemble.states(0..s.n);
        dir.write_npy("u0.npy", &[n, dim], &u0)?;
        files.push(json!({"file": "u0.npy", "shape": [s.n, s.dim], "dtype": "float64"}));
    }
    Ok(files)
}

fn print_summary(ctx: &GpuContext, p: &Problem, s: &Solution, out: Option<&std::path::Path>) {
    let system = p.system();
    let head = format!(
        "{} · {} · {} · {} trajectories",
        system.name(),
        p.solver().name(),
        p.precision().name(),
        grouped(s.n as u64)
    );
    match p {
        Problem::Fixed(f) => {
            let saving = match f.save {
                Save::Final => "final state only".to_string(),
                Save::Every(k) => format!("saving every {k} steps ({} saves)", s.n_save()),
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
    println!(
        "adapter  {} ({}, {})",
        ctx.summary.name, ctx.summary.backend, ctx.summary.device_type
    );
    let gpu = s
        .stats
        .gpu
        .map(|g| format!(", GPU {}", seconds(g.as_secs_f64())))
        .unwrap_or_default();
    let unit = if p.solver().is_adaptive() {
        "step attempts/s"
    } else {
        "trajectory-steps/s"
    };
    println!(
        "solve    {}{gpu} · {:.3e} {unit} · setup {} · {} chunk(s), {} dispatch(es)",
        seconds(s.stats.solve.as_secs_f64()),
        s.stats.throughput(),
        seconds(s.stats.setup.as_secs_f64()),
        s.stats.chunks,
        s.stats.dispatches
    );
    if let Some(steps) = &s.steps {
        let attempts: Vec<u64> = steps.iter().map(|c| c.attempts()).collect();
        let accepted: u64 = steps.iter().map(|c| c.accepted as u64).sum();
        let rejected: u64 = steps.iter().map(|c| c.rejected as u64).sum();
        println!(
            "steps    {} accepted, {} rejected · per trajectory: mean {:.1}, max {} attempts",
            grouped(accepted),
            grouped(rejected),
            attempts.iter().sum::<u64>() as f64 / attempts.len().max(1) as f64,
            grouped(attempts.iter().copied().max().unwrap_or(0))
        );
    }
    let counts: Vec<String> = s
        .status_counts()
        .into_iter()
        .map(|(st, c)| format!("{} {}", grouped(c as u64), st.describe()))
        .collect();
    println!("status   {}", counts.join(", "));
    if let Some(dir) = out {
        let stats = if s.steps.is_some() { ",stats" } else { "" };
        println!(
            "wrote    {}/{{states,times,status{stats}}}.npy and run.json",
            dir.display()
        );
    }
}
