//! `phaseflow fit`: fit an MLP (optionally behind Fourier features) to an expression, to
//! samples from an `.npy`, or to an image; print the loss curve; write the checkpoint, the
//! loss curve and pictures of the fit.

use super::error::CliError;
use super::format::seconds;
use super::interrupt;
use crate::gpu::{AdapterChoice, GpuContext};
use crate::io::{Chart, Image, OutputDir, Scale, Series};
use crate::nn::{
    Activation, AnyTrainer, Architecture, EncodingKind, Init, Matrix, Params, fit, mlp::cpu,
    predict, save_bytes,
};
use crate::spec::fit::{
    DataTarget, ExprTarget, FitEncoding, FitLoss, FitSpec, FitTarget, ImageTarget,
};
use crate::spec::fit_data::{FitData, INPUT_NAMES, Kind, bounds, grid};
use crate::spec::{SpecError, read_toml, relative_to_config};
use serde_json::json;
use std::path::{Path, PathBuf};

pub const LONG_ABOUT: &str = "Fit an MLP, optionally behind a Fourier-feature encoding, on the \
GPU to one of: an expression of x (and y, z) in the system language sampled on a grid, the \
rows of an .npy file (input columns then output columns), or a PNG image as a function of the \
pixel position. Prints the loss curve; with -o writes model.safetensors (PyTorch state_dict \
layout, architecture in the metadata), loss.csv, loss.png, summary.json and a picture of the \
fit: fit.png for one input, reconstruction.png for images and two-input expressions. \
--config FILE reads the same request from TOML ([target.expr|data|image], [network], [train], \
seed, out); flags given as well override it.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EncodingArg {
    /// B ~ N(0, σ²), σ in cycles per unit of each input's range
    Gaussian,
    /// Log-spaced frequencies up to σ per input
    Positional,
    /// [cos 2πx, sin 2πx]
    Basic,
    /// No encoding: the inputs go straight into the MLP
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LossArg {
    Mse,
    RelL2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum InitArg {
    He,
    Glorot,
    Siren,
}

#[derive(Debug, clap::Args)]
#[command(
    allow_negative_numbers = true,
    group(clap::ArgGroup::new("target").required(true).multiple(true).args(["config", "expr", "data", "image"]))
)]
pub struct FitArgs {
    /// The fit as a TOML file (keys as FitSpec names them); flags given as well override it
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// An expression of x (and y, z with --inputs 2 or 3), e.g.
    /// 'sin(2*pi*3*x) + 0.5*sin(2*pi*17*x)'
    #[arg(long, value_name = "EXPR", allow_hyphen_values = true, conflicts_with_all = ["data", "image"])]
    expr: Option<String>,
    /// Samples: an .npy of shape [n, inputs + outputs]
    #[arg(long, value_name = "FILE.npy", conflicts_with = "image")]
    data: Option<PathBuf>,
    /// A PNG image (grey or RGB) to fit as a function of the pixel position
    #[arg(long, value_name = "FILE.png")]
    image: Option<PathBuf>,

    /// Inputs of the expression (1–3), or leading input columns of --data [default: 1 for
    /// an expression, all columns but the last for --data]
    #[arg(long)]
    inputs: Option<usize>,
    /// Range of every input of the expression [default: 0:1]
    #[arg(long, value_name = "LO:HI", allow_hyphen_values = true)]
    domain: Option<String>,
    /// Grid points per input of the expression; the test set is the cell midpoints
    /// [default: 256, 64 or 16 for 1, 2 or 3 inputs]
    #[arg(long)]
    points: Option<usize>,
    /// Test samples for --data, with the same columns
    #[arg(long, value_name = "FILE.npy")]
    test: Option<PathBuf>,
    /// For --image: train on every other pixel in each direction and report the PSNR on
    /// the other three quarters
    #[arg(long)]
    holdout: bool,

    /// Hidden layer widths [default: 64,64,64; 128,128,128,128 for images]
    #[arg(long, value_delimiter = ',', value_name = "W,W,...")]
    hidden: Vec<usize>,
    /// Activation of the hidden layers [default: relu]
    #[arg(long, value_enum)]
    activation: Option<Activation>,
    /// Fourier-feature encoding in front of the MLP [default: gaussian]
    #[arg(long, value_enum)]
    encoding: Option<EncodingArg>,
    /// Columns of B (the encoding has twice as many outputs) [default: 64]
    #[arg(long)]
    features: Option<usize>,
    /// Scale of the encoding (Gaussian: standard deviation of B; positional: top
    /// frequency), per unit of each input's range [default: 10]
    #[arg(long)]
    sigma: Option<f64>,
    /// Train B as well
    #[arg(long)]
    train_encoding: bool,
    /// Initialisation of the linear layers [default: he for relu, siren for sin, glorot
    /// otherwise]
    #[arg(long, value_enum)]
    init: Option<InitArg>,

    /// Optimiser steps [default: 5000]
    #[arg(long)]
    steps: Option<u32>,
    /// Learning rate [default: 0.001]
    #[arg(long)]
    lr: Option<f64>,
    /// Learning-rate schedule: constant, cosine (down to 1% over the run), or
    /// step:EVERY:GAMMA [default: constant]
    #[arg(long)]
    schedule: Option<String>,
    /// Decoupled (AdamW) weight decay [default: 0]
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Plain SGD with momentum 0.9 instead of Adam
    #[arg(long)]
    sgd: bool,
    /// Loss to minimise [default: mse]
    #[arg(long, value_enum)]
    loss: Option<LossArg>,
    /// Samples per step [default: all of them up to 65,536, else 16,384]
    #[arg(long)]
    batch: Option<usize>,
    /// Clip the gradient to this global L2 norm
    #[arg(long)]
    clip: Option<f64>,
    /// Seed of the initial parameters and the minibatches [default: 1]
    #[arg(long)]
    seed: Option<u64>,
    /// Read the loss back every K steps (the curve's resolution) [default: steps/200]
    #[arg(long, value_name = "K")]
    log_every: Option<u32>,

    /// Write the checkpoint, curves and pictures into this directory
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// With -o (or the config's out): replace the results of an earlier run in DIR
    #[arg(long)]
    overwrite: bool,
    /// Print a JSON summary instead of text
    #[arg(long)]
    json: bool,
    /// Print no loss curve
    #[arg(short, long)]
    quiet: bool,
}

/// What diagnostics call the text of `--expr`.
const EXPR_NAME: &str = "<--expr>";

/// The `fit` flag that sets FitSpec key `key` (a dotted path: `target.expr.points` →
/// `--points`, `train.weight_decay` → `--weight-decay`, `out` → `-o`).
pub fn fit_flag(key: &str) -> String {
    let mut parts = key.rsplit('.');
    let last = parts.next().unwrap_or(key);
    match (last, parts.next()) {
        ("text", _) => "--expr".into(),
        ("file", Some("data")) => "--data".into(),
        ("file", _) => "--image".into(),
        ("out", None) => "-o".into(),
        (name, _) => format!("--{}", name.replace('_', "-")),
    }
}

fn parse_domain(s: &str) -> Result<(f64, f64), CliError> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || {
        CliError::Input(format!(
            "--domain must be LO:HI, e.g. 0:1 or -2:2; got '{s}'"
        ))
    };
    if parts.len() != 2 {
        return Err(bad());
    }
    let lo = parts[0].trim().parse().map_err(|_| bad())?;
    let hi = parts[1].trim().parse().map_err(|_| bad())?;
    Ok((lo, hi))
}

/// Options of another target would be ignored: contradictions, refused.
fn refuse_misplaced(args: &FitArgs, target: &FitTarget) -> Result<(), CliError> {
    let (is_expr, is_data, is_image) = (
        matches!(target, FitTarget::Expr(_)),
        matches!(target, FitTarget::Data(_)),
        matches!(target, FitTarget::Image(_)),
    );
    let misplaced = [
        ("--points", args.points.is_some(), is_expr, "--expr"),
        ("--domain", args.domain.is_some(), is_expr, "--expr"),
        ("--test", args.test.is_some(), is_data, "--data"),
        ("--holdout", args.holdout, is_image, "--image"),
        (
            "--inputs",
            args.inputs.is_some(),
            !is_image,
            "--expr or --data",
        ),
    ];
    if let Some((flag, _, _, target)) = misplaced.iter().find(|m| m.1 && !m.2) {
        return Err(CliError::Input(format!(
            "{flag} is for {target} only; this fit has another target"
        )));
    }
    Ok(())
}

impl FitArgs {
    /// The target a flag names, if one does.
    fn flag_target(&self) -> Option<FitTarget> {
        if let Some(text) = &self.expr {
            Some(FitTarget::Expr(ExprTarget {
                text: text.clone(),
                inputs: 1,
                domain: (0.0, 1.0),
                points: None,
            }))
        } else if let Some(file) = &self.data {
            Some(FitTarget::Data(DataTarget {
                file: file.clone(),
                inputs: None,
                test: None,
            }))
        } else {
            self.image.as_ref().map(|file| {
                FitTarget::Image(ImageTarget {
                    file: file.clone(),
                    holdout: false,
                })
            })
        }
    }

    /// The fit these flags (over the config file's, if any) ask for, and the keys the flags
    /// set (for naming a bad key as the user gave it).
    fn spec(&self) -> Result<(FitSpec, Vec<&'static str>), CliError> {
        let mut set = Vec::new();
        let mut spec = match &self.config {
            Some(path) => {
                let mut spec: FitSpec = read_toml(path).map_err(|e| config_error(e, path))?;
                relative_to_config(
                    path,
                    spec.target.paths_mut().into_iter().chain(&mut spec.out),
                    None,
                );
                spec
            }
            None => FitSpec::new(
                self.flag_target()
                    .expect("clap requires a target or --config"),
            ),
        };
        // A target flag replaces the file's whole target (its points, test file and the
        // like belong to the target it names).
        if self.config.is_some()
            && let Some(target) = self.flag_target()
        {
            spec.target = target;
            set.push("target");
        }
        refuse_misplaced(self, &spec.target)?;
        match &mut spec.target {
            FitTarget::Expr(e) => {
                if let Some(n) = self.inputs {
                    e.inputs = n;
                    set.push("target.expr.inputs");
                }
                if let Some(d) = &self.domain {
                    e.domain = parse_domain(d)?;
                    set.push("target.expr.domain");
                }
                if self.points.is_some() {
                    e.points = self.points;
                    set.push("target.expr.points");
                }
            }
            FitTarget::Data(d) => {
                if self.inputs.is_some() {
                    d.inputs = self.inputs;
                    set.push("target.data.inputs");
                }
                if self.test.is_some() {
                    d.test = self.test.clone();
                    set.push("target.data.test");
                }
            }
            FitTarget::Image(i) => {
                if self.holdout {
                    i.holdout = true;
                    set.push("target.image.holdout");
                }
            }
        }
        let (n, t) = (&mut spec.network, &mut spec.train);
        macro_rules! flag {
            ($field:expr, $value:expr, $key:literal) => {
                if let Some(v) = $value {
                    $field = v;
                    set.push($key);
                }
            };
        }
        flag!(
            n.hidden,
            (!self.hidden.is_empty()).then(|| Some(self.hidden.clone())),
            "network.hidden"
        );
        flag!(n.activation, self.activation, "network.activation");
        flag!(
            n.encoding,
            self.encoding.map(|e| match e {
                EncodingArg::Gaussian => FitEncoding::Gaussian,
                EncodingArg::Positional => FitEncoding::Positional,
                EncodingArg::Basic => FitEncoding::Basic,
                EncodingArg::None => FitEncoding::None,
            }),
            "network.encoding"
        );
        flag!(n.features, self.features, "network.features");
        flag!(n.sigma, self.sigma, "network.sigma");
        flag!(
            n.train_encoding,
            self.train_encoding.then_some(true),
            "network.train_encoding"
        );
        flag!(
            n.init,
            self.init.map(|i| Some(match i {
                InitArg::He => Init::He,
                InitArg::Glorot => Init::Glorot,
                InitArg::Siren => Init::Siren,
            })),
            "network.init"
        );
        flag!(t.steps, self.steps, "train.steps");
        flag!(t.lr, self.lr, "train.lr");
        flag!(t.schedule, self.schedule.clone(), "train.schedule");
        flag!(t.weight_decay, self.weight_decay, "train.weight_decay");
        flag!(t.sgd, self.sgd.then_some(true), "train.sgd");
        flag!(
            t.loss,
            self.loss.map(|l| match l {
                LossArg::Mse => FitLoss::Mse,
                LossArg::RelL2 => FitLoss::RelL2,
            }),
            "train.loss"
        );
        flag!(t.batch, self.batch.map(Some), "train.batch");
        flag!(t.clip, self.clip.map(Some), "train.clip");
        flag!(t.log_every, self.log_every.map(Some), "train.log_every");
        flag!(spec.seed, self.seed, "seed");
        flag!(spec.out, self.out.clone().map(Some), "out");
        if self.overwrite && spec.out.is_none() {
            return Err(CliError::Input(
                "--overwrite needs -o (or out in the --config file)".into(),
            ));
        }
        Ok((spec, set))
    }

    /// A spec error as the user wrote it: without a config file every key as its flag;
    /// with one, the keys the flags set as flags and the others as the file names them,
    /// led by the file's name when the key at fault came from the file.
    fn error(&self, e: impl Into<SpecError>, set: &[&str]) -> CliError {
        let e = e.into();
        let SpecError::Field(field) = &e else {
            return e.into();
        };
        let Some(path) = &self.config else {
            return CliError::Input(field.render_with(fit_flag, true));
        };
        // Values are written as the key at fault was given: flag syntax for a flag.
        let message = field.render_with(
            |k| {
                if by_flag(k, set) {
                    fit_flag(k)
                } else {
                    k.to_string()
                }
            },
            by_flag(&field.field, set),
        );
        if by_flag(&field.field, set) {
            CliError::Input(message)
        } else {
            CliError::Input(format!("{}: {message}", path.display()))
        }
    }
}

/// Whether `key` was set by a flag (a target flag sets the whole target).
fn by_flag(key: &str, set: &[&str]) -> bool {
    set.iter()
        .any(|k| key == *k || key.starts_with(&format!("{k}.")))
}

fn config_error(e: SpecError, path: &Path) -> CliError {
    super::spec_flags::config_error(e, path)
}

/// Errors on held-out data: MSE, relative L2 and (images) PSNR.
struct TestScore {
    mse: f64,
    rel_l2: f64,
    psnr: Option<f64>,
}

fn score(y: &Matrix, target: &Matrix, image: bool) -> TestScore {
    let mse = cpu::mse(y, target).0;
    let norm = target.data.iter().map(|v| v * v).sum::<f64>().sqrt();
    let diff = y
        .data
        .iter()
        .zip(&target.data)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    let psnr = image.then(|| crate::io::image::psnr(&y.data, &target.data));
    TestScore {
        mse,
        rel_l2: diff / norm.max(1e-300),
        psnr,
    }
}

/// Bytes the results take on disk, about: the checkpoint (f32 parameters and their
/// metadata), the curve, the charts and pictures, the summary.
fn output_estimate(steps: u32, data: &FitData, params: &Params, log_every: u32) -> u64 {
    let checkpoint = 4 * params.flat().len() as u64 + (64 << 10);
    let curve = 40 * (steps / log_every + 2) as u64;
    let picture = match &data.kind {
        Kind::Image(image) => (image.width * image.height * image.channels) as u64 + 4096,
        Kind::Expression { points, .. } if data.train_x.cols == 2 => 2 * (points * points) as u64,
        _ => super::space::CHART_BYTES,
    };
    checkpoint + curve + super::space::CHART_BYTES + picture + (16 << 10)
}

pub fn run(args: &FitArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    let (spec, set) = args.spec()?;
    // Wrong whatever the data: refused before any is read.
    spec.check().map_err(|e| args.error(e, &set))?;
    let data = spec
        .target
        .load(EXPR_NAME)
        .map_err(|e| args.error(e, &set))?;
    let arch = spec
        .network
        .architecture(&data)
        .map_err(|e| args.error(e, &set))?;
    let m = data.train_x.rows;
    let config = spec
        .train
        .train_config(m, spec.seed)
        .map_err(|e| args.error(e, &set))?;
    let batch = config.batch;
    let steps = spec.train.steps;
    let lr = spec.train.lr;
    let log_every = spec.train.log_every();
    let start = spec
        .network
        .initial_params(&arch, &data.widths, spec.seed)
        .map_err(|e| args.error(e, &set))?;
    // Proven writable, with room for the results, before any work.
    let estimate = output_estimate(steps, &data, &start, log_every);
    let mut out = match &spec.out {
        Some(dir) => Some({
            let earlier = super::space::refuse_earlier_results(dir, args.overwrite, &FILES)?;
            let mut out = super::space::output_dir(dir, estimate, "the checkpoint and pictures")?;
            out.replace_at_commit(earlier);
            out
        }),
        None => None,
    };
    let ctx = GpuContext::new(choice)?;
    let mut trainer = AnyTrainer::new(&ctx, &arch, &start, &data.train_x, &data.train_y, config)?;
    let per_step = batch.unwrap_or(m);
    interrupt::install_handler();
    let text = !args.json;
    if text {
        println!("fitting {}", data.what);
        println!(
            "network: {} → {} ({}), {} parameters; {} kernels on {}",
            describe_encoding(&arch),
            arch.layers[1..]
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join(" → "),
            format!("{:?}", arch.activation).to_lowercase(),
            start.flat().len(),
            trainer.kernels(),
            ctx.summary.name
        );
        println!(
            "{} steps of {} samples, {}, lr {}",
            steps,
            per_step,
            if spec.train.sgd { "SGD" } else { "Adam" },
            lr
        );
    }
    // At most about 20 lines of curve on the terminal; the files get every point.
    let print_every = log_every * (steps / log_every / 20).max(1);
    let report = fit(&ctx, &mut trainer, steps, log_every, |step, loss| {
        if text && !args.quiet && (step % print_every == 0 || step == steps) {
            println!("  step {step:>8}  loss {loss:.4e}");
        }
        !interrupt::requested()
    })?;
    let interrupted = report.steps < steps;
    // A diverged network is no result: every loader refuses NaN weights, so writing it would
    // only hand the user a checkpoint that nothing accepts.
    let diverged = report.curve.last().is_some_and(|c| !c.1.is_finite())
        || report.params.flat().iter().any(|v| !v.is_finite());
    if diverged {
        return Err(CliError::Runtime(format!(
            "training diverged: the loss or the weights are not finite after {} steps, so \
             nothing was written; try a smaller --lr (it was {:e})",
            report.steps, lr
        )));
    }
    let samples_per_s = report.steps as f64 * per_step as f64 / report.seconds;
    let test = match &data.test {
        Some((x, y)) => {
            let p = predict(&ctx, &arch, &report.params, x)?;
            Some(score(&p, y, matches!(data.kind, Kind::Image(_))))
        }
        None => None,
    };
    let final_loss = report.curve.last().map_or(f64::NAN, |c| c.1);
    let summary = json!({
        "what": data.what,
        "architecture": arch,
        "kernels": report.kernels,
        "adapter": ctx.summary,
        "steps": report.steps,
        "steps_asked": steps,
        "batch": per_step,
        "seconds": report.seconds,
        "samples_per_s": samples_per_s,
        "final_loss": final_loss,
        "test": test.as_ref().map(|t| json!({"mse": t.mse, "relative_l2": t.rel_l2, "psnr_db": t.psnr})),
    });
    if let Some(dir) = &mut out {
        write_outputs(dir, &ctx, &data, &arch, &report, &summary)?;
    }
    let written = match out {
        Some(dir) => dir.commit().map_err(|e| CliError::Runtime(e.to_string()))?,
        None => Vec::new(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("JSON"));
    } else {
        println!(
            "trained {} steps in {} ({:.3e} samples/s); final loss {final_loss:.4e}",
            report.steps,
            seconds(report.seconds),
            samples_per_s
        );
        if let Some(t) = &test {
            let psnr = t
                .psnr
                .map_or(String::new(), |p| format!(", PSNR {p:.2} dB"));
            println!(
                "test: MSE {:.4e}, relative L2 {:.4e}{psnr}",
                t.mse, t.rel_l2
            );
        }
        for p in &written {
            println!("wrote {}", p.display());
        }
    }
    if interrupted {
        return Err(CliError::Interrupted(format!(
            "interrupted after {} of {} steps; what was written is the network after those steps",
            report.steps, steps
        )));
    }
    Ok(())
}

/// Every file `fit -o` may write (what `--overwrite` removes).
const FILES: [&str; 6] = [
    "model.safetensors",
    "loss.csv",
    "summary.json",
    "loss.png",
    "reconstruction.png",
    "fit.png",
];

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn describe_encoding(arch: &Architecture) -> String {
    match &arch.encoding {
        None => plural(arch.layers[0], "input"),
        Some(e) => {
            let kind = match e.kind {
                EncodingKind::Gaussian => "Gaussian",
                EncodingKind::Positional => "positional",
                EncodingKind::Basic => "basic",
            };
            let sigma = e.sigma.map_or(String::new(), |s| format!(", σ = {s}"));
            format!(
                "{} → {kind} Fourier features ({}{sigma})",
                plural(e.inputs, "input"),
                2 * e.features
            )
        }
    }
}

fn plot_error(e: impl std::fmt::Display) -> CliError {
    CliError::Runtime(e.to_string())
}

/// Stages a picture; one that cannot be drawn or written costs only itself, with a
/// warning, never the checkpoint and curve staged before it.
pub(super) fn picture_or_warn(dir: &mut OutputDir, name: &str, png: Result<Vec<u8>, CliError>) {
    let written = png.and_then(|bytes| {
        dir.write_bytes(name, &bytes)
            .map_err(|e| CliError::Runtime(e.to_string()))
    });
    if let Err(e) = written {
        eprintln!("warning: {name} not written: {e}");
    }
}

/// The checkpoint, curve and summary first (a failure there fails the run), then the
/// pictures (a failure there is a warning).
fn write_outputs(
    dir: &mut OutputDir,
    ctx: &GpuContext,
    data: &FitData,
    arch: &Architecture,
    report: &crate::nn::FitReport,
    summary: &serde_json::Value,
) -> Result<(), CliError> {
    let io = |e: crate::io::OutputError| CliError::Runtime(e.to_string());
    let checkpoint = save_bytes(arch, &report.params, &[("fit", summary.to_string())])
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    dir.write_bytes("model.safetensors", &checkpoint)
        .map_err(io)?;
    let csv: String = std::iter::once("step,loss\n".to_string())
        .chain(report.curve.iter().map(|(s, l)| format!("{s},{l:e}\n")))
        .collect();
    dir.write_bytes("loss.csv", csv.as_bytes()).map_err(io)?;
    dir.write_json("summary.json", summary).map_err(io)?;
    let chart = Chart {
        title: "training loss".into(),
        x_label: "step".into(),
        y_label: "loss".into(),
        x_scale: Scale::Linear,
        y_scale: Scale::Log,
        series: vec![Series {
            label: String::new(),
            points: report.curve.iter().map(|&(s, l)| (s as f64, l)).collect(),
        }],
    };
    picture_or_warn(dir, "loss.png", chart.to_png().map_err(plot_error));
    match picture(ctx, data, arch, &report.params) {
        Ok(Some((name, png))) => picture_or_warn(dir, name, Ok(png)),
        Ok(None) => {}
        Err(e) => picture_or_warn(dir, "the picture of the fit", Err(e)),
    }
    Ok(())
}

/// fit.png (one input, one output: target and network over the range) or
/// reconstruction.png (images; two-input expressions: target beside network).
fn picture(
    ctx: &GpuContext,
    data: &FitData,
    arch: &Architecture,
    params: &Params,
) -> Result<Option<(&'static str, Vec<u8>)>, CliError> {
    let (x, y) = (&data.train_x, &data.train_y);
    match &data.kind {
        Kind::Image(image) => {
            let all = Matrix {
                rows: image.width * image.height,
                cols: 2,
                data: image.pixel_centres(),
            };
            let p = predict(ctx, arch, params, &all)?;
            let img = Image {
                data: p.data,
                ..image.clone()
            };
            Ok(Some((
                "reconstruction.png",
                img.to_png().map_err(plot_error)?,
            )))
        }
        Kind::Expression {
            function,
            lo,
            hi,
            points,
        } if x.cols == 2 => {
            // Target | network on the test grid, grey scaled to the target's range.
            let g = grid(2, *points, *lo, *hi, 0.5);
            let p = predict(ctx, arch, params, &g)?;
            let t: Vec<f64> = g.data.chunks(2).map(|r| function.eval(r)).collect();
            let (tmin, tmax) = bounds(&t);
            let span = (tmax - tmin).max(1e-300);
            let n = *points;
            let mut pixels = vec![0.0; 2 * n * n];
            for r in 0..n {
                for c in 0..n {
                    // Row 0 of the picture is the top: the largest y.
                    let k = (n - 1 - r) * n + c;
                    pixels[r * 2 * n + c] = (t[k] - tmin) / span;
                    pixels[r * 2 * n + n + c] = (p.data[k] - tmin) / span;
                }
            }
            let img = Image {
                width: 2 * n,
                height: n,
                channels: 1,
                data: pixels,
            };
            Ok(Some((
                "reconstruction.png",
                img.to_png().map_err(plot_error)?,
            )))
        }
        _ if x.cols == 1 && y.cols == 1 => {
            let (lo, hi) = bounds(&x.data);
            let dense = Matrix {
                rows: 2048,
                cols: 1,
                data: (0..2048)
                    .map(|i| lo + (hi - lo) * i as f64 / 2047.0)
                    .collect(),
            };
            let p = predict(ctx, arch, params, &dense)?;
            let target = match &data.kind {
                Kind::Expression { function, .. } => Series {
                    label: format!("f({})", INPUT_NAMES[0]),
                    points: dense
                        .data
                        .iter()
                        .map(|&v| (v, function.eval(&[v])))
                        .collect(),
                },
                _ => {
                    let mut pts: Vec<(f64, f64)> =
                        x.data.iter().copied().zip(y.data.iter().copied()).collect();
                    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                    Series {
                        label: "samples".into(),
                        points: pts,
                    }
                }
            };
            let chart = Chart {
                title: "fit".into(),
                x_label: INPUT_NAMES[0].into(),
                y_label: "value".into(),
                x_scale: Scale::Linear,
                y_scale: Scale::Linear,
                series: vec![
                    target,
                    Series {
                        label: "network".into(),
                        points: dense.data.iter().copied().zip(p.data).collect(),
                    },
                ],
            };
            Ok(Some(("fit.png", chart.to_png().map_err(plot_error)?)))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_spec_keys_become_fit_flags() {
        let cases = [
            ("target.expr.text", "--expr"),
            ("target.expr.points", "--points"),
            ("target.data.file", "--data"),
            ("target.data.inputs", "--inputs"),
            ("target.image.file", "--image"),
            ("network.train_encoding", "--train-encoding"),
            ("train.weight_decay", "--weight-decay"),
            ("train.log_every", "--log-every"),
            ("seed", "--seed"),
            ("out", "-o"),
        ];
        for (key, flag) in cases {
            assert_eq!(fit_flag(key), flag, "{key}");
        }
        assert!(by_flag("target.expr.points", &["target"]));
        assert!(!by_flag("train.lr", &["train.lr_floor", "target"]));
    }
}
