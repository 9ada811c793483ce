//! `phaseflow simulate`: flags and config → problem → GPU run → summary and `.npy` files.

use super::CliError;
use super::format::{grouped, seconds};
use super::spec::{RunSpec, U0Spec, build_problem};
use crate::gpu::{AdapterChoice, GpuContext};
use crate::io::OutputDir;
use crate::ode::{
    self, FixedStepProblem, InitialStates, Parameters, RunOptions, Save, SimError, Solution, Solver,
};
use crate::schedule::PlanCaps;
use serde_json::json;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "\
Integrate an ensemble of trajectories of a system on the GPU.

Each trajectory has its own initial state and parameters. One GPU invocation integrates one
trajectory for many steps; the host only moves whole chunks.

The system is a built-in (see `phaseflow systems`) or a system file. Time span and step
default to the system's suggestion. Without --save-every only the final state is kept.

Examples:
  phaseflow simulate lorenz -n 100000 --sweep rho=0:50
  phaseflow simulate lorenz -n 10000 --u0-uniform x=-20:20 --u0-uniform z=0:50 --seed 1 -o out
  phaseflow simulate duffing --sweep gamma=0.2:0.6:200 --sweep omega=1:1.4:50 --save-every 100
  phaseflow simulate my_system.toml -n 1000 --tspan 0:50 --dt 0.01
  phaseflow simulate --config run.toml

Output (with -o DIR): states.npy [n_save, N, dim] f32, times.npy [n_save] f64,
status.npy [N] u8 (1 success, 4 non-finite), params.npy [N, n_params] f64 and u0.npy
[N, dim] f64 when they vary across trajectories, and run.json describing the run.
Files appear together when the run has finished; a failed run leaves none.";

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

    /// Runge–Kutta method
    #[arg(long, value_enum)]
    solver: Option<Solver>,

    /// Time span [default: the system's suggestion]
    #[arg(long, value_name = "T0:T1", value_parser = parse_span, allow_hyphen_values = true)]
    tspan: Option<[f64; 2]>,

    /// Step size; must divide the span [default: the system's suggestion]
    #[arg(long)]
    dt: Option<f64>,

    /// Save the initial state and every K-th step (and the final state)
    #[arg(long, value_name = "K")]
    save_every: Option<u32>,

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
    ode::run::check(&problem)?;
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
    let solution = ode::simulate(&ctx, &problem, &options)?;

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

fn summary_json(ctx: &GpuContext, p: &FixedStepProblem, s: &Solution) -> serde_json::Value {
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
        "system": p.system.name(),
        "equations": p.system.equations,
        "states": names(&p.system.states),
        "parameters": names(&p.system.params),
        "solver": p.solver,
        "precision": "f32",
        "n": s.n,
        "t0": p.grid.t0,
        "t1": p.grid.t1(),
        "dt": p.grid.dt,
        "steps": p.grid.n_steps,
        "save_every": match p.save { Save::Final => None, Save::Every(k) => Some(k) },
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
    p: &FixedStepProblem,
    s: &Solution,
) -> Result<Vec<serde_json::Value>, crate::io::OutputError> {
    let (n, dim) = (s.n as u64, s.dim as u64);
    let mut files = vec![
        json!({"file": "states.npy", "shape": [s.n_save(), s.n, s.dim], "dtype": "float32"}),
        json!({"file": "times.npy", "shape": [s.n_save()], "dtype": "float64"}),
        json!({"file": "status.npy", "shape": [s.n], "dtype": "uint8"}),
    ];
    dir.write_npy("states.npy", &[s.n_save() as u64, n, dim], &s.states)?;
    dir.write_npy("times.npy", &[s.n_save() as u64], &s.times)?;
    let codes: Vec<u8> = s.status.iter().map(|&st| st as u8).collect();
    dir.write_npy("status.npy", &[n], &codes)?;
    if p.ensemble.params != Parameters::Default && p.system.n_params() > 0 {
        let params = p.ensemble.params(0..s.n);
        dir.write_npy("params.npy", &[n, p.system.n_params() as u64], &params)?;
        files.push(
            json!({"file": "params.npy", "shape": [s.n, p.system.n_params()], "dtype": "float64"}),
        );
    }
    if p.ensemble.initial != InitialStates::Default {
        let u0 = p.ensemble.states(0..s.n);
        dir.write_npy("u0.npy", &[n, dim], &u0)?;
        files.push(json!({"file": "u0.npy", "shape": [s.n, s.dim], "dtype": "float64"}));
    }
    Ok(files)
}

fn print_summary(
    ctx: &GpuContext,
    p: &FixedStepProblem,
    s: &Solution,
    out: Option<&std::path::Path>,
) {
    let saving = match p.save {
        Save::Final => "final state only".to_string(),
        Save::Every(k) => format!("saving every {k} steps ({} saves)", s.n_save()),
    };
    println!(
        "{} · {} · f32 · {} trajectories × {} steps (dt {}, t {} → {}) · {}",
        p.system.name(),
        p.solver.name(),
        grouped(s.n as u64),
        grouped(p.grid.n_steps as u64),
        p.grid.dt,
        p.grid.t0,
        p.grid.t1(),
        saving
    );
    println!(
        "adapter  {} ({}, {})",
        ctx.summary.name, ctx.summary.backend, ctx.summary.device_type
    );
    let gpu = s
        .stats
        .gpu
        .map(|g| format!(", GPU {}", seconds(g.as_secs_f64())))
        .unwrap_or_default();
    println!(
        "solve    {}{gpu} · {:.3e} trajectory-steps/s · setup {} · {} chunk(s), {} dispatch(es)",
        seconds(s.stats.solve.as_secs_f64()),
        s.stats.throughput(),
        seconds(s.stats.setup.as_secs_f64()),
        s.stats.chunks,
        s.stats.dispatches
    );
    let counts: Vec<String> = s
        .status_counts()
        .into_iter()
        .map(|(st, c)| format!("{} {}", grouped(c as u64), st.describe()))
        .collect();
    println!("status   {}", counts.join(", "));
    if let Some(dir) = out {
        println!(
            "wrote    {}/{{states,times,status}}.npy and run.json",
            dir.display()
        );
    }
}
