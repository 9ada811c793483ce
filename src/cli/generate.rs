//! `phaseflow generate --config generate.toml`: operator-learning data from an ensemble.
//! Input functions (Gaussian random fields or .npy tables) drive a system with inputs, one
//! trajectory per function, and the chosen states at equally spaced times become the
//! labels; written as phaseflow's aligned `.npz` for `phaseflow train deeponet` (or, with
//! `points_per_function`, the training set as unaligned samples at random points).

use super::format::seconds;
use super::train::{at_least_one, finite, positive_if_given};
use super::{CliError, interrupt};
use crate::gpu::{AdapterChoice, GpuContext};
use crate::io::read_matrix;
use crate::model::System;
use crate::nn::Matrix;
use crate::nn::deeponet_data::{write_aligned, write_unaligned};
use crate::nn::deeponet_generate::{
    GenerateError, Generated, OperatorDataSpec, SignalSource, generate,
};
use crate::ode::{Precision, Solver};
use crate::spec::{load_system, lookup, read_toml, relative_to_config};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const LONG_ABOUT: &str = "Generate training data for an operator network from an ensemble \
run: each input function (a Gaussian random field sampled at the input's sensors, or a row of \
an .npy) drives the system's input signal u(t) (linear between sensors), all functions are \
integrated together on the GPU, and the chosen states at `points` equally spaced times are the \
labels. Writes train.npz (and test.npz with `test_functions`) in phaseflow's aligned layout \
(functions [F, sensors], points [P, 1], values [F, P, outputs]) and summary.json. With \
`points_per_function = K` the training set is unaligned instead: each function observed at K of \
the times drawn at random (sample_functions [F·K, sensors], sample_points [F·K, 1], \
sample_values [F·K, outputs]); the test set stays aligned.";

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// The generation config (TOML: system, functions, points, [inputs.NAME], out)
    #[arg(long, short)]
    config: PathBuf,
    /// Output directory (overrides `out` in the config)
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Replace the results of an earlier run in the output directory
    #[arg(long)]
    overwrite: bool,
    /// Print the summary as JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// A built-in system with inputs, or a system file.
    system: String,
    #[serde(deserialize_with = "at_least_one")]
    functions: usize,
    #[serde(default)]
    test_functions: usize,
    #[serde(default = "one")]
    seed: u64,
    /// Output times span; the system's `tspan` by default.
    tspan: Option<[f64; 2]>,
    #[serde(default = "hundred")]
    points: usize,
    #[serde(default = "ten", deserialize_with = "at_least_one")]
    steps_per_point: u32,
    /// Write the training set unaligned: each function at this many of the `points`
    /// times, drawn at random.
    points_per_function: Option<usize>,
    #[serde(default)]
    solver: Solver,
    /// State names; every state by default.
    outputs: Option<Vec<String>>,
    #[serde(default)]
    precision: Precision,
    #[serde(default)]
    parameters: BTreeMap<String, f64>,
    #[serde(default)]
    initial: BTreeMap<String, f64>,
    #[serde(default)]
    inputs: BTreeMap<String, InputConfig>,
    out: Option<PathBuf>,
}

/// One input signal: a random field (`length_scale`, `scale`, `offset`) or tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputConfig {
    #[serde(default, deserialize_with = "positive_if_given")]
    length_scale: Option<f64>,
    #[serde(default = "one_f", deserialize_with = "finite")]
    scale: f64,
    #[serde(default, deserialize_with = "finite")]
    offset: f64,
    file: Option<PathBuf>,
    test_file: Option<PathBuf>,
}

fn one() -> u64 {
    1
}
fn one_f() -> f64 {
    1.0
}
fn hundred() -> usize {
    100
}
fn ten() -> u32 {
    10
}

/// The test functions' generator key: far from any seed a user would pick for training.
pub const TEST_SEED_OFFSET: u64 = 0x9E37_79B9_7F4A_7C15;

fn read_config(path: &Path) -> Result<Config, CliError> {
    let mut config: Config = read_toml(path)?;
    let inputs = config
        .inputs
        .values_mut()
        .flat_map(|i| [i.file.as_mut(), i.test_file.as_mut()]);
    relative_to_config(
        path,
        inputs.chain([config.out.as_mut()]).flatten(),
        Some(&mut config.system),
    );
    Ok(config)
}

/// The spec for `count` functions with `seed`; `test` picks the inputs' test tables.
fn spec(
    config: &Config,
    system: &System,
    count: usize,
    seed: u64,
    test: bool,
) -> Result<OperatorDataSpec, CliError> {
    let sname = system.name();
    if system.inputs.is_empty() {
        return Err(CliError::Input(format!(
            "{sname} has no inputs; operator data needs a system driven by u(t) (declare \
             inputs = {{ u = {{ sensors = 100, span = [0.0, 1.0] }} }} in its file)"
        )));
    }
    let names = |v: &[crate::model::Var]| v.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
    let (state_names, param_names) = (names(&system.states), names(&system.params));
    let mut initial = system.default_state();
    for (name, &v) in &config.initial {
        initial[lookup(&state_names, name, "state", "[initial]", sname)?] = v;
    }
    let mut params = system.default_params();
    for (name, &v) in &config.parameters {
        params[lookup(&param_names, name, "parameter", "[parameters]", sname)?] = v;
    }
    let outputs = match &config.outputs {
        None => (0..system.dim()).collect(),
        Some(list) => list
            .iter()
            .map(|n| lookup(&state_names, n, "state", "outputs", sname))
            .collect::<Result<_, _>>()?,
    };
    let input_names: Vec<String> = system.inputs.iter().map(|i| i.name.clone()).collect();
    for name in config.inputs.keys() {
        lookup(&input_names, name, "input", "[inputs]", sname)?;
    }
    let mut signals = Vec::new();
    for input in &system.inputs {
        let c = config.inputs.get(&input.name).ok_or_else(|| {
            CliError::Input(format!(
                "the config has no [inputs.{0}]; give {0}'s functions, e.g. \
                 [inputs.{0}] length_scale = 0.2",
                input.name
            ))
        })?;
        let file = if test { &c.test_file } else { &c.file };
        signals.push(match (c.length_scale, file) {
            (Some(l), None) if c.file.is_none() => SignalSource::Grf {
                length_scale: l,
                scale: c.scale,
                offset: c.offset,
            },
            (None, Some(path)) => {
                let (data, rows, cols) =
                    read_matrix(path).map_err(|e| CliError::Input(e.to_string()))?;
                SignalSource::Table(Matrix { rows, cols, data })
            }
            (None, None) if test => {
                return Err(CliError::Input(format!(
                    "[inputs.{}] needs test_file for the test functions",
                    input.name
                )));
            }
            _ => {
                return Err(CliError::Input(format!(
                    "[inputs.{}] needs either length_scale (a random field) or file (an .npy \
                     of [functions, {}])",
                    input.name, input.sensors
                )));
            }
        });
    }
    let (t0, t1) = match (config.tspan, system.meta.tspan) {
        (Some([a, b]), _) => (a, b),
        (None, Some(span)) => span,
        (None, None) => {
            return Err(CliError::Input(format!(
                "{sname} suggests no time span; give tspan = [t0, t1]"
            )));
        }
    };
    if config.solver.tableau().is_none() {
        return Err(CliError::Input(format!(
            "solver '{}' is adaptive; data generation uses a fixed-step solver (rk4, heun, \
             euler) with steps that land on the output times",
            config.solver.name()
        )));
    }
    Ok(OperatorDataSpec {
        system: system.clone(),
        initial,
        params,
        signals,
        functions: count,
        seed,
        t0,
        t1,
        points: config.points,
        steps_per_point: config.steps_per_point,
        solver: config.solver,
        outputs,
        precision: config.precision,
    })
}

/// Bytes of one data set's `.npz` (stored f64 arrays): aligned, or unaligned with
/// `per_function` samples of each function.
fn disk_estimate(spec: &OperatorDataSpec, per_function: Option<usize>) -> u64 {
    let (f, p) = (spec.functions as u64, spec.points as u64);
    let (sensors, outputs) = (
        spec.system.n_input_values() as u64,
        spec.outputs.len() as u64,
    );
    let values = match per_function {
        Some(k) => f * k as u64 * (sensors + 1 + outputs),
        None => f * sensors + p + f * p * outputs,
    };
    8 * values + 4096
}

/// After Ctrl-C nothing is written: a data set cut short would look complete.
fn stop_if_interrupted() -> Result<(), CliError> {
    if interrupt::requested() {
        return Err(CliError::Interrupted(
            "interrupted: no data set written".into(),
        ));
    }
    Ok(())
}

fn run_one(ctx: &GpuContext, spec: &OperatorDataSpec) -> Result<Generated, CliError> {
    generate(ctx, spec).map_err(|e| match e {
        GenerateError::Sim(s) => CliError::from(s),
        other => CliError::Input(other.to_string()),
    })
}

pub fn run(args: &GenerateArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    let config = read_config(&args.config)?;
    let system = load_system(&config.system)?;
    let train_spec = spec(&config, &system, config.functions, config.seed, false)?;
    let test_spec = (config.test_functions > 0)
        .then(|| {
            spec(
                &config,
                &system,
                config.test_functions,
                config.seed.wrapping_add(TEST_SEED_OFFSET),
                true,
            )
        })
        .transpose()?;
    if let Some(k) = config.points_per_function
        && !(1..=config.points).contains(&k)
    {
        return Err(CliError::Input(format!(
            "points_per_function must be between 1 and points ({}), got {k}",
            config.points
        )));
    }
    // Sizes before any allocation, disk space before any work.
    for spec in std::iter::once(&train_spec).chain(&test_spec) {
        spec.check().map_err(|e| CliError::Input(e.to_string()))?;
    }
    let out_path = args.out.clone().or(config.out.clone()).ok_or_else(|| {
        CliError::Input("give an output directory: -o DIR or out = \"DIR\" in the config".into())
    })?;
    let estimate = disk_estimate(&train_spec, config.points_per_function)
        + test_spec.as_ref().map_or(0, |t| disk_estimate(t, None))
        + (16 << 10);
    super::space::refuse_earlier_results(
        &out_path,
        args.overwrite,
        &["train.npz", "test.npz", "summary.json"],
    )?;
    let mut out = super::space::output_dir(&out_path, estimate, "the data sets")?;
    let ctx = GpuContext::new(choice)?;
    interrupt::install_handler();

    let mut sets = vec![("train.npz", run_one(&ctx, &train_spec)?)];
    if let Some(t) = &test_spec {
        stop_if_interrupted()?;
        sets.push(("test.npz", run_one(&ctx, t)?));
    }
    stop_if_interrupted()?;
    let mut files = Vec::new();
    // The training set's draws of points: a stream of their own beside the functions'.
    let unaligned = config
        .points_per_function
        .map(|k| sets[0].1.data.to_unaligned(k, config.seed));
    for (i, (name, set)) in sets.iter().enumerate() {
        out.stage(name, |p| {
            match (&unaligned, i) {
                (Some(samples), 0) => write_unaligned(p, samples),
                _ => write_aligned(p, &set.data),
            }
            .map_err(std::io::Error::other)
        })
        .map_err(|e| CliError::Runtime(e.to_string()))?;
        files.push(json!({
            "file": name,
            "layout": if unaligned.is_some() && i == 0 { "unaligned" } else { "aligned" },
            "samples": match (&unaligned, i) {
                (Some(s), 0) => s.samples(),
                _ => set.data.functions() * set.data.points(),
            },
            "functions": set.data.functions(),
            "sample_seconds": set.sample_seconds,
            "simulate_seconds": set.simulate_seconds,
        }));
    }
    let inputs: Vec<_> = system
        .inputs
        .iter()
        .map(|i| json!({"name": i.name, "sensors": i.sensors, "span": [i.t0, i.t1]}))
        .collect();
    let summary = json!({
        "system": system.name(),
        "inputs": inputs,
        "outputs": train_spec.outputs.iter().map(|&o| &system.states[o].name).collect::<Vec<_>>(),
        "points": train_spec.points,
        "tspan": [train_spec.t0, train_spec.t1],
        "solver": train_spec.solver.name(),
        "steps_per_point": train_spec.steps_per_point,
        "seed": config.seed,
        "adapter": ctx.summary.name,
        "files": files,
    });
    out.write_json("summary.json", &summary)
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    out.commit().map_err(|e| CliError::Runtime(e.to_string()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("JSON"));
    } else {
        for (i, (name, set)) in sets.iter().enumerate() {
            let points = match (&unaligned, i) {
                (Some(_), 0) => format!(
                    "{} random points each (unaligned, of {})",
                    config.points_per_function.unwrap_or(0),
                    set.data.points()
                ),
                _ => format!("{} points", set.data.points()),
            };
            println!(
                "{name}: {} functions × {points} of {} ({} sensor values each); sampling {}, \
                 integrating {}",
                set.data.functions(),
                system.name(),
                set.data.u.cols,
                seconds(set.sample_seconds),
                seconds(set.simulate_seconds)
            );
        }
        println!("wrote {}", out_path.display());
    }
    Ok(())
}
