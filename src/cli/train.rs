//! `phaseflow train deeponet --config train.toml`: trains a DeepONet on an aligned or
//! unaligned data set (DeepXDE's `.npz` or ours). The best step (and early stopping) is
//! chosen on a held-out share of the training functions (samples, when unaligned), or on
//! the whole training set when none is held out; a test file (of either layout) is only
//! reported, never chosen on. Everything appears in the output directory together at the
//! end (or at Ctrl-C, with the best network so far); the checkpoint is never lost to a
//! picture that cannot be drawn.

use super::error::CliError;
use super::format::seconds;
use super::interrupt;
use super::spec_flags::config_error;
use crate::gpu::{AdapterChoice, GpuContext};
use crate::io::{Chart, OutputDir, Scale, Series};
use crate::nn::deeponet::DeepONetData;
use crate::nn::deeponet::session::{
    self, Ending, Progress, Record, RunFacts, RunRecord, StepClock, size,
};
use crate::nn::{AlignedData, DeepONetArch, DeepONetNet, DeepONetParams, DeepONetTrainer, Matrix};
use crate::spec::train::{TrainSetup, TrainSetupError, TrainSpec};
use serde_json::json;
use std::ops::ControlFlow;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "Train a DeepONet (branch net over the input function's sensor \
values, trunk net over the output location) on an aligned data set (every function observed at \
the same points) or an unaligned one (one (function, location, value) sample per row). Data \
files are .npz: DeepXDE's layouts (aligned: X = (branch inputs, trunk inputs), y; unaligned: \
X_train0, X_train1, y_train) or phaseflow's (aligned: functions, points, values; unaligned: \
sample_functions, sample_points, sample_values); the layout is read from the members. The \
config names the data, the model and the training; paths in it are relative to the config \
file. The best step is chosen on a held-out validation share ([data] validation), else on the \
training set; a test file ([data] test) is reported at every evaluation but never chosen on. \
Writes model.safetensors (PyTorch state_dict names), state.safetensors (where the run stands, \
for --resume, which writes back into the run's own directory), history.csv, summary.json, \
loss.png and prediction.png (aligned test or validation data with one coordinate; a picture \
that fails is a warning). The results' disk space is claimed before any work.";

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
    /// With -o (or the config's `out`): replace the results of an earlier run there
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Training iterations in all (overrides [train] iterations in the config)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    iterations: Option<u32>,
    /// Go on with the run whose output directory this is (its state.safetensors and
    /// model.safetensors), up to [train] iterations in all; its results are written back
    /// into DIR (the config's `out` is not used)
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Print the summary as JSON instead of text
    #[arg(long)]
    json: bool,
}

/// Every file `train deeponet` may write into its output directory (what `--overwrite`
/// removes).
const FILES: [&str; 6] = [
    "model.safetensors",
    "state.safetensors",
    "history.csv",
    "summary.json",
    "loss.png",
    "prediction.png",
];

/// Where the results go: a resumed run's own directory (given with -o only if it is the
/// same one), else -o, else the config's `out`.
fn output_path(args: &DeepONetArgs, config: &TrainSpec) -> Result<PathBuf, CliError> {
    if let Some(dir) = &args.resume {
        if let Some(o) = &args.out {
            if !session::same_directory(dir, o) {
                return Err(CliError::Input(format!(
                    "--resume continues the run in '{}' and writes there; -o '{}' names \
                     another directory (leave -o out)",
                    dir.display(),
                    o.display()
                )));
            }
        }
        return Ok(dir.clone());
    }
    args.out.clone().or(config.out.clone()).ok_or_else(|| {
        CliError::Input("give an output directory: -o DIR or out = \"DIR\" in the config".into())
    })
}

/// Bytes the results take on disk, about: the checkpoint (f32 parameters), the state
/// (parameters and Adam's two moments) with the run record, the history, two charts and
/// the summary.
fn output_estimate(parameters: usize, evaluations: u32) -> u64 {
    let (p, e) = (parameters as u64, evaluations as u64);
    let checkpoint = 4 * p + (64 << 10);
    let state = 12 * p + 300 * e + (64 << 10);
    let history = 160 * e;
    checkpoint + state + history + 2 * super::space::CHART_BYTES + (16 << 10)
}

pub fn run(args: &TrainArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    let TrainModel::Deeponet(args) = &args.model;
    let mut config = TrainSpec::from_file(&args.config)?;
    if let Some(n) = args.iterations {
        config.train.iterations = n;
    }
    config
        .check()
        .map_err(|e| config_error(e.into(), &args.config))?;
    let file = args.config.display();
    let setup_error = |e: TrainSetupError| match e {
        TrainSetupError::Field(f) => config_error(f.into(), &args.config),
        TrainSetupError::InConfig(m) => CliError::Input(format!("{file}: {m}")),
        // The data come from the files the config names: it is named too.
        TrainSetupError::Data(m) => CliError::Input(format!("{file}: {m}")),
    };
    let sets = config.read_sets().map_err(setup_error)?;
    let selection = sets.selection();
    let train = &sets.train;
    let m = &config.model;
    let t = &config.train;
    let TrainSetup {
        arch,
        init,
        config: train_config,
        plan,
    } = config.setup(&sets).map_err(setup_error)?;
    let settings = config.fingerprint(&sets);
    let resumed = match &args.resume {
        Some(dir) => Some(
            session::read_resumed(
                dir,
                &arch,
                t.iterations,
                selection,
                &settings,
                "iterations (or --iterations)",
            )
            .map_err(CliError::Input)?,
        ),
        None => None,
    };
    let out_path = output_path(args, &config)?;
    let earlier = match args.resume {
        None => super::space::refuse_earlier_results(&out_path, args.overwrite, &FILES)?,
        Some(_) => Vec::new(),
    };
    let start = DeepONetParams::init(&arch, init, m.seed)
        .map_err(|e| CliError::Input(format!("{file}: {e}")))?;
    // Proven writable, with room for the results, before any work.
    let estimate = output_estimate(start.flat().len(), t.iterations.div_ceil(t.evaluate_every));
    let mut out = super::space::output_dir(&out_path, estimate, "the checkpoint and state")?;
    out.replace_at_commit(earlier);

    let ctx = GpuContext::new(choice)?;
    let mut trainer = match &resumed {
        Some(r) => DeepONetTrainer::resume(&ctx, &arch, &r.state, train, train_config)?,
        None => DeepONetTrainer::new(&ctx, &arch, &start, train, train_config)?,
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
        let mut line = format!("data: training {}", size(train));
        if let Some(v) = &sets.validation {
            line += &format!("; held-out validation {}", size(v));
        }
        if let Some(test) = &sets.test {
            line += &format!("; test {}", size(test));
        }
        println!("{line}; best step chosen on the {} set", selection.name());
    }
    interrupt::install_handler();
    let mut progress = match resumed {
        Some(r) => {
            if text {
                println!(
                    "resuming at step {} of {} (best {} mean rel. L2 so far {:.4} at step {})",
                    r.state.step,
                    t.iterations,
                    selection.name(),
                    r.record.best_error,
                    r.record.best_step
                );
            }
            Progress::resumed(r.record, r.best, r.state.step)
        }
        None => Progress::fresh(),
    };
    // Steps taken by this process (a resumed run's earlier ones took other seconds).
    let first_step = progress.done;
    let mut clock = StepClock::start(first_step);
    let ending = session::run(
        &ctx,
        &mut trainer,
        &sets,
        plan,
        &mut progress,
        &mut clock,
        |h| {
            if text {
                let test = h.test.map_or(String::new(), |(mse, rel)| {
                    format!(
                        "  test MSE {mse:.4e}  mean rel. L2 {rel:.4}{}",
                        each_output(&h.test_per_output)
                    )
                });
                println!(
                    "  step {:>8}  batch MSE{} {:.4e}  {} MSE {:.4e}  mean rel. L2 {:.4}{}{test}",
                    h.step,
                    if m.normalize { " (scaled)" } else { "" },
                    h.batch_mse,
                    selection.name(),
                    h.mse,
                    h.mean_rel_l2,
                    each_output(&h.per_output)
                );
            }
            if interrupt::requested() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )?;
    let train_seconds = clock.total();
    let (rate_seconds, rate_steps) = clock.timed(progress.done);
    let rate_from = if clock.warm(progress.done) {
        " after the first evaluation"
    } else {
        ""
    };
    progress.check_best(t.lr).map_err(CliError::Runtime)?;
    let stopped_early = ending == Ending::StoppedEarly;
    let interrupted = progress.done < t.iterations && !stopped_early;
    let mut summary = session::summary(
        &ctx,
        &arch,
        &sets,
        &progress,
        &RunFacts {
            iterations_asked: t.iterations,
            ending,
            seconds: train_seconds,
            timed: (rate_seconds, rate_steps),
            validation_share: config.data.validation,
        },
    )?;
    summary["data"]["train"] = json!(config.data.train);
    summary["data"]["test"] = json!(config.data.test);
    summary["resumed_from"] = json!(args.resume);
    let Progress {
        history,
        best,
        since_best,
        done,
    } = progress;
    let (best_err, best_step, params) = best.expect("at least one evaluation");
    let (reported_name, reported) = sets.reported();
    let per_output: Vec<f64> = serde_json::from_value(
        summary[format!("{reported_name}_mean_relative_l2_per_output")].clone(),
    )
    .unwrap_or_default();
    let record = RunRecord {
        selection,
        history,
        best_step,
        best_error: best_err,
        since_best,
        settings: Some(settings),
    };
    // The checkpoint and state first: a picture that fails later costs only itself.
    session::write_checkpoints(&mut out, &ctx, &arch, &params, &trainer, &record, &summary)
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    write_pictures(&mut out, &ctx, &arch, &params, reported, &record);
    let written = out.commit().map_err(|e| CliError::Runtime(e.to_string()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("JSON"));
    } else {
        println!(
            "trained to iteration {done} in {} ({:.3} s per 1,000{rate_from}, evaluations \
             included); best {} mean relative L2 {best_err:.4} at step {best_step}{}",
            seconds(train_seconds),
            1e3 * rate_seconds / rate_steps.max(1) as f64,
            selection.name(),
            if stopped_early {
                " (stopped early)"
            } else {
                ""
            }
        );
        if let Some(rel) = summary["test_mean_relative_l2"].as_f64() {
            println!("  test mean relative L2 of that network: {rel:.4}");
        }
        if per_output.len() > 1 {
            let each: Vec<String> = per_output.iter().map(|e| format!("{e:.4}")).collect();
            let worst = per_output.iter().copied().fold(0.0, f64::max);
            println!(
                "  mean relative L2 per output ({reported_name}): {} (worst {worst:.4})",
                each.join(", ")
            );
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

/// Each output's error after the joint one, which the largest output rules: ` [a, b]`,
/// nothing for one output.
fn each_output(errors: &[f64]) -> String {
    match errors.len() {
        0 | 1 => String::new(),
        _ => {
            let each: Vec<String> = errors.iter().map(|e| format!("{e:.4}")).collect();
            format!(" [{}]", each.join(", "))
        }
    }
}

/// loss.png and prediction.png: one that cannot be drawn or written is a warning.
fn write_pictures(
    dir: &mut OutputDir,
    ctx: &GpuContext,
    arch: &DeepONetArch,
    params: &DeepONetParams,
    reported: &DeepONetData,
    record: &RunRecord,
) {
    let plot = |e: crate::io::PlotError| CliError::Runtime(e.to_string());
    let history = &record.history;
    let series = |label: String, pick: &dyn Fn(&Record) -> Option<f64>| Series {
        label,
        points: history
            .iter()
            .filter_map(|h| pick(h).map(|v| (h.step as f64, v)))
            .collect(),
    };
    let sel = record.selection.name();
    let mut lines = vec![
        series("batch MSE".into(), &|h| Some(h.batch_mse)),
        series(format!("{sel} MSE"), &|h| Some(h.mse)),
        series(format!("{sel} mean relative L2"), &|h| Some(h.mean_rel_l2)),
    ];
    if history.iter().any(|h| h.test.is_some()) {
        lines.push(series("test MSE".into(), &|h| h.test.map(|t| t.0)));
        lines.push(series("test mean relative L2".into(), &|h| {
            h.test.map(|t| t.1)
        }));
    }
    let chart = Chart {
        title: "DeepONet training".into(),
        x_label: "iteration".into(),
        y_label: "error".into(),
        x_scale: Scale::Linear,
        y_scale: Scale::Log,
        series: lines,
    };
    super::fit::picture_or_warn(dir, "loss.png", chart.to_png().map_err(plot));
    // Predicted against true curves for the first reported functions (one coordinate,
    // first output).
    if let (DeepONetData::Aligned(shown), 1) = (reported, arch.dims()) {
        let png = prediction_chart(ctx, arch, params, shown).and_then(|c| c.to_png().map_err(plot));
        super::fit::picture_or_warn(dir, "prediction.png", png);
    }
}

fn prediction_chart(
    ctx: &GpuContext,
    arch: &DeepONetArch,
    params: &DeepONetParams,
    data: &AlignedData,
) -> Result<Chart, CliError> {
    let net = DeepONetNet::new(ctx, arch, params)?;
    let shown = data.functions().min(3);
    let u = Matrix {
        rows: shown,
        cols: data.u.cols,
        data: data.u.data[..shown * data.u.cols].to_vec(),
    };
    let g = net.predict(ctx, &u, &data.y)?;
    let (ny, k) = (data.points(), data.outputs);
    let mut curves = Vec::new();
    for f in 0..shown {
        let line = |values: &[f64]| -> Vec<(f64, f64)> {
            (0..ny)
                .map(|p| (data.y.data[p], values[(f * ny + p) * k]))
                .collect()
        };
        curves.push(Series {
            label: format!("function {f}: true"),
            points: line(&data.g),
        });
        curves.push(Series {
            label: format!("function {f}: DeepONet"),
            points: line(&g),
        });
    }
    Ok(Chart {
        title: "true and predicted functions".into(),
        x_label: "y".into(),
        y_label: "G(u)(y)".into(),
        x_scale: Scale::Linear,
        y_scale: Scale::Linear,
        series: curves,
    })
}
