//! `phaseflow generate --config generate.toml`: operator-learning data from an ensemble.
//! Input functions (Gaussian random fields or .npy tables) drive a system with inputs, one
//! trajectory per function, and the chosen states at equally spaced times become the
//! labels; written as phaseflow's aligned `.npz` for `phaseflow train deeponet` (or, with
//! `points_per_function`, the training set as unaligned samples at random points).

use super::error::CliError;
use super::format::seconds;
use super::interrupt;
use super::spec_flags::config_error;
use crate::gpu::{AdapterChoice, GpuContext};
use crate::nn::deeponet::data::{write_aligned, write_unaligned};
use crate::nn::deeponet::generate::{GenerateError, Generated, OperatorDataSpec, generate};
use crate::spec::generate::{GenerateSpec, TEST_SEED_OFFSET};
use crate::spec::load_system;
use serde_json::json;
use std::path::PathBuf;

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

/// Generates one data set; a refusal names the config it came from (a device failure
/// is not the config's).
fn run_one(
    ctx: &GpuContext,
    spec: &OperatorDataSpec,
    config: &std::path::Path,
) -> Result<Generated, CliError> {
    let error = |e| match e {
        GenerateError::Sim(s) => CliError::from(s),
        other => CliError::Input(other.to_string()),
    };
    generate(ctx, spec).map_err(|e| match error(e) {
        CliError::Input(m) => CliError::Input(format!("{}: {m}", config.display())),
        other => other,
    })
}

pub fn run(args: &GenerateArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    let config = GenerateSpec::from_file(&args.config)?;
    let in_file = |e| config_error(e, &args.config);
    config.check_sampling().map_err(|e| in_file(e.into()))?;
    let system = load_system(&config.system).map_err(in_file)?;
    let train_spec = config
        .operator_data(&system, config.functions, config.seed, false)
        .map_err(in_file)?;
    let test_spec = (config.test_functions > 0)
        .then(|| {
            config.operator_data(
                &system,
                config.test_functions,
                config.seed.wrapping_add(TEST_SEED_OFFSET),
                true,
            )
        })
        .transpose()
        .map_err(in_file)?;
    // Sizes before any allocation, disk space before any work.
    for spec in std::iter::once(&train_spec).chain(&test_spec) {
        spec.check()
            .map_err(|e| CliError::Input(format!("{}: {e}", args.config.display())))?;
    }
    let out_path = args.out.clone().or(config.out.clone()).ok_or_else(|| {
        CliError::Input("give an output directory: -o DIR or out = \"DIR\" in the config".into())
    })?;
    let estimate = disk_estimate(&train_spec, config.points_per_function)
        + test_spec.as_ref().map_or(0, |t| disk_estimate(t, None))
        + (16 << 10);
    let earlier = super::space::refuse_earlier_results(
        &out_path,
        args.overwrite,
        &["train.npz", "test.npz", "summary.json"],
    )?;
    let mut out = super::space::output_dir(&out_path, estimate, "the data sets")?;
    out.replace_at_commit(earlier);
    let ctx = GpuContext::new(choice)?;
    interrupt::install_handler();

    let mut sets = vec![("train.npz", run_one(&ctx, &train_spec, &args.config)?)];
    if let Some(t) = &test_spec {
        stop_if_interrupted()?;
        sets.push(("test.npz", run_one(&ctx, t, &args.config)?));
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
