//! `phaseflow train deeponet --config train.toml`: trains a DeepONet on an aligned or
//! unaligned data set (DeepXDE's `.npz` or ours), evaluating on a test file (of either
//! layout) or a held-out share of the training functions (samples, when unaligned), with
//! early stopping on the validation error. Everything appears in the
//! output directory together at the end (or at Ctrl-C, with the best network so far).

use super::fit::parse_schedule;
use super::format::seconds;
use super::{CliError, interrupt};
use crate::gpu::{AdapterChoice, GpuContext};
use crate::io::{Chart, OutputDir, Scale, Series};
use crate::nn::deeponet::DeepONetData;
use crate::nn::deeponet_data::read_data;
use crate::nn::deeponet_scaling::Scaling;
use crate::nn::{
    Activation, AlignedData, DeepONetArch, DeepONetNet, DeepONetParams, DeepONetTrainConfig,
    DeepONetTrainState, DeepONetTrainer, Init, Matrix, NetSpec, Optimizer, Strategy, load_deeponet,
    load_deeponet_state, save_deeponet_bytes, save_deeponet_state_bytes,
};
use crate::spec::{read_toml, relative_to_config};
use serde::Deserialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const LONG_ABOUT: &str = "Train a DeepONet (branch net over the input function's sensor \
values, trunk net over the output location) on an aligned data set (every function observed at \
the same points) or an unaligned one (one (function, location, value) sample per row). Data \
files are .npz: DeepXDE's layouts (aligned: X = (branch inputs, trunk inputs), y; unaligned: \
X_train0, X_train1, y_train) or phaseflow's (aligned: functions, points, values; unaligned: \
sample_functions, sample_points, sample_values); the layout is read from the members. The \
config names the data, the model and the training; paths in it are relative to the config \
file. Writes model.safetensors (PyTorch state_dict names), state.safetensors (where the run \
stands, for --resume), history.csv, loss.png, prediction.png (aligned validation data with \
one coordinate) and summary.json.";

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    #[command(subcommand)]
    model: TrainModel,
}

#[derive(Debug, clap::Subcommand)]
enum TrainModel {
    /// Train a DeepONet from a TOML config
    #[command(long_about = LONG_ABOUT)]
    Deeponet(DeepONetArgs),
}

#[derive(Debug, clap::Args)]
pub struct DeepONetArgs {
    /// The training config (TOML: [data], [model], [train], out)
    #[arg(long, short)]
    config: PathBuf,
    /// Output directory (overrides `out` in the config)
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Go on with the run whose output directory this is (its state.safetensors and
    /// model.safetensors), up to [train] iterations in all
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Print the summary as JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    data: DataConfig,
    #[serde(default)]
    model: ModelConfig,
    #[serde(default)]
    train: TrainConfig,
    out: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataConfig {
    train: PathBuf,
    test: Option<PathBuf>,
    /// Share of the training functions (samples, when unaligned) held out for validation
    /// when there is no test file.
    #[serde(default)]
    validation: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ModelConfig {
    branch: Vec<usize>,
    trunk: Vec<usize>,
    latent: usize,
    activation: Activation,
    strategy: Strategy,
    init: String,
    seed: u64,
    /// Scale inputs and outputs to zero mean and unit spread (fitted on the training data,
    /// stored in the checkpoint).
    normalize: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            branch: vec![40],
            trunk: vec![40],
            latent: 40,
            activation: Activation::Relu,
            strategy: Strategy::SplitBoth,
            init: "glorot".into(),
            seed: 1,
            normalize: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TrainConfig {
    iterations: u32,
    lr: f64,
    schedule: String,
    weight_decay: f64,
    functions_per_batch: Option<usize>,
    points_per_batch: Option<usize>,
    samples_per_batch: Option<usize>,
    evaluate_every: u32,
    /// Stop after this many evaluations without a better validation error (0: never).
    patience: u32,
    seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            iterations: 10_000,
            lr: 1e-3,
            schedule: "constant".into(),
            weight_decay: 0.0,
            functions_per_batch: None,
            points_per_batch: None,
            samples_per_batch: None,
            evaluate_every: 1000,
            patience: 0,
            seed: 0,
        }
    }
}

fn read_config(path: &Path) -> Result<Config, CliError> {
    let mut config: Config = read_toml(path)?;
    relative_to_config(
        path,
        [
            Some(&mut config.data.train),
            config.data.test.as_mut(),
            config.out.as_mut(),
        ]
        .into_iter()
        .flatten(),
        None,
    );
    Ok(config)
}

fn load(path: &Path) -> Result<DeepONetData, CliError> {
    read_data(path).map_err(|e| CliError::Input(e.to_string()))
}

/// The first functions (samples, when unaligned) of `d` as training data and the rest as
/// validation data.
fn split(d: DeepONetData, share: f64) -> Result<(DeepONetData, DeepONetData), CliError> {
    if !(share > 0.0 && share < 1.0) {
        return Err(CliError::Input(format!(
            "[data] validation must be a share of the functions between 0 and 1, got {share}"
        )));
    }
    let (n, what) = match &d {
        DeepONetData::Aligned(a) => (a.functions(), "function"),
        DeepONetData::Unaligned(u) => (u.samples(), "sample"),
    };
    if n < 2 {
        return Err(CliError::Input(format!(
            "{n} {what} is too few to hold some out for validation"
        )));
    }
    let keep = n - ((n as f64 * share).round() as usize).clamp(1, n - 1);
    Ok(match d {
        DeepONetData::Aligned(d) => {
            let per = d.points() * d.outputs;
            let part = |lo: usize, hi: usize| {
                DeepONetData::Aligned(AlignedData {
                    u: d.u.row_range(lo, hi),
                    y: d.y.clone(),
                    g: d.g[lo * per..hi * per].to_vec(),
                    outputs: d.outputs,
                })
            };
            (part(0, keep), part(keep, n))
        }
        DeepONetData::Unaligned(d) => (
            DeepONetData::Unaligned(d.rows(0, keep)),
            DeepONetData::Unaligned(d.rows(keep, n)),
        ),
    })
}

/// "150 functions × 100 points" or "10000 samples".
fn size(d: &DeepONetData) -> String {
    match d {
        DeepONetData::Aligned(a) => format!("{} functions × {} points", a.functions(), a.points()),
        DeepONetData::Unaligned(u) => format!("{} unaligned samples", u.samples()),
    }
}

fn size_json(d: &DeepONetData) -> serde_json::Value {
    match d {
        DeepONetData::Aligned(a) => json!({"functions": a.functions(), "points": a.points()}),
        DeepONetData::Unaligned(u) => json!({"samples": u.samples()}),
    }
}

/// One evaluation: (step, train loss, validation MSE, validation mean relative L2).
type Record = (u32, f64, f64, f64);

/// The run's own record beside the trainer's state in state.safetensors (`run`).
#[derive(serde::Serialize, Deserialize)]
struct RunRecord {
    history: Vec<Record>,
    best_step: u32,
    best_error: f64,
    since_best: u32,
}

/// Where a run left off, read from its output directory for `--resume`.
struct Resumed {
    state: DeepONetTrainState,
    record: RunRecord,
    best: DeepONetParams,
}

fn read_resumed(dir: &Path, arch: &DeepONetArch, iterations: u32) -> Result<Resumed, CliError> {
    let input = |e: crate::nn::CheckpointError| CliError::Input(e.to_string());
    let path = dir.join("state.safetensors");
    let (saved_arch, state, meta) = load_deeponet_state(&path).map_err(input)?;
    if &saved_arch != arch {
        return Err(CliError::Input(format!(
            "'{}' was trained with another architecture or normalisation than this config \
             and data give; resume with the config and data of that run",
            path.display()
        )));
    }
    let record: RunRecord = meta
        .get("run")
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(|| {
            CliError::Input(format!(
                "'{}' has no readable run record (metadata 'run')",
                path.display()
            ))
        })?;
    if state.step >= iterations {
        return Err(CliError::Input(format!(
            "the run in '{}' has already taken {} steps and [train] iterations = {iterations}; \
             raise iterations to go on",
            dir.display(),
            state.step
        )));
    }
    let (_, best) = load_deeponet(&dir.join("model.safetensors")).map_err(input)?;
    Ok(Resumed {
        state,
        record,
        best,
    })
}

pub fn run(args: &TrainArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    let TrainModel::Deeponet(args) = &args.model;
    let config = read_config(&args.config)?;
    let train_all = load(&config.data.train)?;
    let (train, validation, held_out) = match &config.data.test {
        Some(p) => (train_all, load(p)?, false),
        None if config.data.validation > 0.0 => {
            let (t, v) = split(train_all, config.data.validation)?;
            (t, v, true)
        }
        None => {
            return Err(CliError::Input(
                "the config needs [data] test = \"file.npz\" or [data] validation = 0.1 (a share \
                 of the training functions held out)"
                    .into(),
            ));
        }
    };
    let m = &config.model;
    let t = &config.train;
    if m.latent == 0 || m.branch.contains(&0) || m.trunk.contains(&0) {
        return Err(CliError::Input(
            "[model] widths and latent must be at least 1".into(),
        ));
    }
    if t.iterations == 0 || t.evaluate_every == 0 {
        return Err(CliError::Input(
            "[train] iterations and evaluate_every must be at least 1".into(),
        ));
    }
    let (u, y, _) = train.as_ref().parts();
    let mut arch = DeepONetArch::new(
        NetSpec {
            inputs: u.cols,
            hidden: m.branch.clone(),
            encoding: None,
        },
        NetSpec {
            inputs: y.cols,
            hidden: m.trunk.clone(),
            encoding: None,
        },
        m.latent,
        train.as_ref().outputs(),
        m.strategy,
        m.activation,
    );
    if m.normalize {
        arch.scaling = Some(Scaling::fit(&train));
    }
    validation.as_ref().check(&arch).map_err(|e| {
        CliError::Input(format!("the test data does not fit the training data: {e}"))
    })?;
    let init = match m.init.as_str() {
        "glorot" => Init::Glorot,
        "he" => Init::He,
        other => {
            return Err(CliError::Input(format!(
                "[model] init must be \"glorot\" or \"he\", got \"{other}\""
            )));
        }
    };
    let schedule = parse_schedule(&t.schedule, t.iterations)?;
    let train_config = DeepONetTrainConfig {
        optimizer: Optimizer {
            lr: t.lr,
            weight_decay: t.weight_decay,
            schedule,
            ..Optimizer::default()
        },
        functions_per_batch: t.functions_per_batch,
        points_per_batch: t.points_per_batch,
        samples_per_batch: t.samples_per_batch,
        seed: t.seed,
    };
    train_config.check(train.as_ref().layout()).map_err(|e| {
        CliError::Input(format!(
            "[train] functions_per_batch and points_per_batch are for aligned data, \
             samples_per_batch for unaligned data: {e}"
        ))
    })?;
    let resumed = match &args.resume {
        Some(dir) => Some(read_resumed(dir, &arch, t.iterations)?),
        None => None,
    };
    let out_path = args.out.clone().or(config.out.clone()).ok_or_else(|| {
        CliError::Input("give an output directory: -o DIR or out = \"DIR\" in the config".into())
    })?;
    // Proven writable before any work.
    let mut out = OutputDir::create(&out_path).map_err(|e| CliError::Input(e.to_string()))?;

    let ctx = GpuContext::new(choice)?;
    let start =
        DeepONetParams::init(&arch, init, m.seed).map_err(|e| CliError::Input(e.to_string()))?;
    let mut trainer = match &resumed {
        Some(r) => DeepONetTrainer::resume(&ctx, &arch, &r.state, &train, train_config)?,
        None => DeepONetTrainer::new(&ctx, &arch, &start, &train, train_config)?,
    };
    let text = !args.json;
    if text {
        println!(
            "DeepONet: branch {} → {:?} → {}, trunk {} → {:?} → {}, {} parameters, on {}",
            arch.sensors(),
            m.branch,
            arch.branch.outputs(),
            arch.dims(),
            m.trunk,
            arch.trunk.outputs(),
            start.flat().len(),
            ctx.summary.name
        );
        println!(
            "data: training {}; {} {}",
            size(&train),
            if held_out {
                "held-out validation"
            } else {
                "test"
            },
            size(&validation)
        );
    }
    interrupt::install_handler();
    let clock = Instant::now();
    let (mut history, mut best, mut since_best, mut done) = match resumed {
        Some(r) => {
            if text {
                println!(
                    "resuming at step {} of {} (best validation mean rel. L2 so far {:.4} at \
                     step {})",
                    r.state.step, t.iterations, r.record.best_error, r.record.best_step
                );
            }
            let best = (r.record.best_error, r.record.best_step, r.best);
            (
                r.record.history,
                Some(best),
                r.record.since_best,
                r.state.step,
            )
        }
        None => (Vec::new(), None, 0, 0),
    };
    let mut stopped_early = false;
    // Steps taken by this process (a resumed run's earlier ones took other seconds).
    let first_step = done;
    while done < t.iterations {
        let n = t.evaluate_every.min(t.iterations - done);
        trainer.run(&ctx, n as usize);
        done += n;
        let loss = trainer.loss(&ctx)?;
        let metrics = trainer.net.evaluate(&ctx, &validation)?;
        history.push((done, loss, metrics.mse, metrics.mean_relative_l2));
        if text {
            println!(
                "  step {done:>8}  train MSE{} {loss:.4e}  validation MSE {:.4e}  mean rel. L2 {:.4}",
                if m.normalize { " (scaled)" } else { "" },
                metrics.mse,
                metrics.mean_relative_l2
            );
        }
        if best.as_ref().is_none_or(|b| metrics.mean_relative_l2 < b.0) {
            best = Some((metrics.mean_relative_l2, done, trainer.params(&ctx)?));
            since_best = 0;
        } else {
            since_best += 1;
        }
        if t.patience > 0 && since_best >= t.patience {
            stopped_early = true;
            break;
        }
        if interrupt::requested() {
            break;
        }
    }
    let train_seconds = clock.elapsed().as_secs_f64();
    let (best_err, best_step, params) = best.expect("at least one evaluation");
    let interrupted = done < t.iterations && !stopped_early;
    let best_g = DeepONetNet::new(&ctx, &arch, &params)?.predict_data(&ctx, &validation)?;
    let per_output = validation.as_ref().mean_relative_l2_per_output(&best_g);
    let summary = json!({
        "architecture": arch,
        "adapter": ctx.summary,
        "data": {
            "train": config.data.train,
            "train_size": size_json(&train),
            "validation": if held_out { json!(config.data.validation) } else { json!(config.data.test) },
            "validation_size": size_json(&validation),
        },
        "iterations": done,
        "iterations_asked": t.iterations,
        "stopped_early": stopped_early,
        "resumed_from": args.resume,
        "seconds": train_seconds,
        "seconds_per_1000_iterations": 1e3 * train_seconds / (done - first_step).max(1) as f64,
        "best_step": best_step,
        "validation_mean_relative_l2": best_err,
        "validation_mean_relative_l2_per_output": per_output,
        "validation_mse": history.iter().find(|h| h.0 == best_step).map(|h| h.2),
        "final_train_mse": history.last().map(|h| h.1),
    });
    let record = RunRecord {
        history,
        best_step,
        best_error: best_err,
        since_best,
    };
    let state = save_deeponet_state_bytes(
        &arch,
        &trainer.state(&ctx)?,
        &[("run", serde_json::to_string(&record).expect("JSON"))],
    )
    .map_err(|e| CliError::Runtime(e.to_string()))?;
    out.write_bytes("state.safetensors", &state)
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    write_outputs(
        &mut out,
        &ctx,
        &arch,
        &params,
        &validation,
        &record.history,
        &summary,
    )?;
    let written = out.commit().map_err(|e| CliError::Runtime(e.to_string()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("JSON"));
    } else {
        println!(
            "trained to iteration {done} in {} ({:.3} s per 1,000, evaluations included); best \
             validation mean relative L2 {best_err:.4} at step {best_step}{}",
            seconds(train_seconds),
            1e3 * train_seconds / (done - first_step).max(1) as f64,
            if stopped_early {
                " (stopped early)"
            } else {
                ""
            }
        );
        if per_output.len() > 1 {
            let each: Vec<String> = per_output.iter().map(|e| format!("{e:.4}")).collect();
            println!("  per output: {}", each.join(", "));
        }
        for p in &written {
            println!("wrote {}", p.display());
        }
    }
    if interrupted {
        return Err(CliError::Interrupted(format!(
            "interrupted after {done} of {} iterations; the model written is the best so far",
            t.iterations
        )));
    }
    Ok(())
}

fn write_outputs(
    dir: &mut OutputDir,
    ctx: &GpuContext,
    arch: &DeepONetArch,
    params: &DeepONetParams,
    validation: &DeepONetData,
    history: &[Record],
    summary: &serde_json::Value,
) -> Result<(), CliError> {
    let io = |e: crate::io::OutputError| CliError::Runtime(e.to_string());
    let plot = |e: crate::io::PlotError| CliError::Runtime(e.to_string());
    let checkpoint = save_deeponet_bytes(arch, params, &[("train", summary.to_string())])
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    dir.write_bytes("model.safetensors", &checkpoint)
        .map_err(io)?;
    let csv: String =
        std::iter::once("step,train_mse,validation_mse,validation_mean_rel_l2\n".into())
            .chain(
                history
                    .iter()
                    .map(|(s, l, m, r)| format!("{s},{l:e},{m:e},{r:e}\n")),
            )
            .collect();
    dir.write_bytes("history.csv", csv.as_bytes()).map_err(io)?;
    let series = |label: &str, pick: fn(&Record) -> f64| Series {
        label: label.into(),
        points: history.iter().map(|h| (h.0 as f64, pick(h))).collect(),
    };
    let chart = Chart {
        title: "DeepONet training".into(),
        x_label: "iteration".into(),
        y_label: "error".into(),
        x_scale: Scale::Linear,
        y_scale: Scale::Log,
        series: vec![
            series("train MSE", |h| h.1),
            series("validation MSE", |h| h.2),
            series("validation mean relative L2", |h| h.3),
        ],
    };
    dir.write_bytes("loss.png", &chart.to_png().map_err(plot)?)
        .map_err(io)?;
    // Predicted against true curves for the first validation functions (one coordinate,
    // first output).
    if let (DeepONetData::Aligned(validation), 1) = (validation, arch.dims()) {
        let net = crate::nn::DeepONetNet::new(ctx, arch, params)?;
        let shown = validation.functions().min(3);
        let u = Matrix {
            rows: shown,
            cols: validation.u.cols,
            data: validation.u.data[..shown * validation.u.cols].to_vec(),
        };
        let g = net.predict(ctx, &u, &validation.y)?;
        let (ny, k) = (validation.points(), validation.outputs);
        let mut curves = Vec::new();
        for f in 0..shown {
            let line = |values: &[f64]| -> Vec<(f64, f64)> {
                (0..ny)
                    .map(|p| (validation.y.data[p], values[(f * ny + p) * k]))
                    .collect()
            };
            curves.push(Series {
                label: format!("function {f}: true"),
                points: line(&validation.g),
            });
            curves.push(Series {
                label: format!("function {f}: DeepONet"),
                points: line(&g),
            });
        }
        let chart = Chart {
            title: "validation functions: true and predicted".into(),
            x_label: "y".into(),
            y_label: "G(u)(y)".into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            series: curves,
        };
        dir.write_bytes("prediction.png", &chart.to_png().map_err(plot)?)
            .map_err(io)?;
    }
    dir.write_json("summary.json", summary).map_err(io)?;
    Ok(())
}
