//! `phaseflow fit`: fit an MLP (optionally behind Fourier features) to an expression, to
//! samples from an `.npy`, or to an image; print the loss curve; write the checkpoint, the
//! loss curve and pictures of the fit.

use super::error::CliError;
use super::fit_data::{
    FitData, INPUT_NAMES, Kind, bounds, from_expression, from_image, from_samples,
};
use super::format::seconds;
use super::{interrupt, spec_flags};
use crate::gpu::{AdapterChoice, GpuContext};
use crate::io::{Chart, Image, OutputDir, Scale, Series};
use crate::nn::{
    Activation, AnyTrainer, Architecture, Encoding, EncodingKind, Init, Loss, Matrix, Optimizer,
    Params, TrainConfig, fit, mlp::cpu, predict, save_bytes,
};
use crate::spec::fit::FitSettings;
use serde_json::json;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "Fit an MLP, optionally behind a Fourier-feature encoding, on the \
GPU to one of: an expression of x (and y, z) in the system language sampled on a grid, the \
rows of an .npy file (input columns then output columns), or a PNG image as a function of the \
pixel position. Prints the loss curve; with -o writes model.safetensors (PyTorch state_dict \
layout, architecture in the metadata), loss.csv, loss.png, summary.json and a picture of the \
fit: fit.png for one input, reconstruction.png for images and two-input expressions.";

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
#[command(allow_negative_numbers = true, group(clap::ArgGroup::new("target").required(true).args(["expr", "data", "image"])))]
pub struct FitArgs {
    /// An expression of x (and y, z with --inputs 2 or 3), e.g.
    /// 'sin(2*pi*3*x) + 0.5*sin(2*pi*17*x)'
    #[arg(long, value_name = "EXPR", allow_hyphen_values = true)]
    expr: Option<String>,
    /// Samples: an .npy of shape [n, inputs + outputs]
    #[arg(long, value_name = "FILE.npy")]
    data: Option<PathBuf>,
    /// A PNG image (grey or RGB) to fit as a function of the pixel position
    #[arg(long, value_name = "FILE.png")]
    image: Option<PathBuf>,

    /// Inputs of the expression (1–3), or leading input columns of --data [default: 1 for
    /// an expression, all columns but the last for --data]
    #[arg(long)]
    inputs: Option<usize>,
    /// Range of every input of the expression
    #[arg(
        long,
        value_name = "LO:HI",
        default_value = "0:1",
        allow_hyphen_values = true
    )]
    domain: String,
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
    /// Activation of the hidden layers
    #[arg(long, value_enum, default_value = "relu")]
    activation: Activation,
    /// Fourier-feature encoding in front of the MLP
    #[arg(long, value_enum, default_value = "gaussian")]
    encoding: EncodingArg,
    /// Columns of B (the encoding has twice as many outputs)
    #[arg(long, default_value_t = 64)]
    features: usize,
    /// Scale of the encoding (Gaussian: standard deviation of B; positional: top
    /// frequency), per unit of each input's range
    #[arg(long, default_value_t = 10.0)]
    sigma: f64,
    /// Train B as well
    #[arg(long)]
    train_encoding: bool,
    /// Initialisation of the linear layers [default: he for relu, siren for sin, glorot
    /// otherwise]
    #[arg(long, value_enum)]
    init: Option<InitArg>,

    /// Optimiser steps
    #[arg(long, default_value_t = 5000)]
    steps: u32,
    /// Learning rate
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Learning-rate schedule: constant, cosine (down to 1% over the run), or
    /// step:EVERY:GAMMA
    #[arg(long, default_value = "constant")]
    schedule: String,
    /// Decoupled (AdamW) weight decay
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Plain SGD with momentum 0.9 instead of Adam
    #[arg(long)]
    sgd: bool,
    /// Loss to minimise
    #[arg(long, value_enum, default_value = "mse")]
    loss: LossArg,
    /// Samples per step [default: all of them up to 65,536, else 16,384]
    #[arg(long)]
    batch: Option<usize>,
    /// Clip the gradient to this global L2 norm
    #[arg(long)]
    clip: Option<f64>,
    /// Seed of the initial parameters and the minibatches
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Read the loss back every K steps (the curve's resolution) [default: steps/200]
    #[arg(long, value_name = "K")]
    log_every: Option<u32>,

    /// Write the checkpoint, curves and pictures into this directory
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// With -o: replace the results of an earlier run in DIR
    #[arg(long, requires = "out")]
    overwrite: bool,
    /// Print a JSON summary instead of text
    #[arg(long)]
    json: bool,
    /// Print no loss curve
    #[arg(short, long)]
    quiet: bool,
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

fn load(args: &FitArgs) -> Result<FitData, CliError> {
    if let Some(text) = &args.expr {
        let inputs = args.inputs.unwrap_or(1);
        let points = args.points.unwrap_or(match inputs {
            1 => 256,
            2 => 64,
            _ => 16,
        });
        from_expression(text, inputs, parse_domain(&args.domain)?, points)
    } else if let Some(path) = &args.data {
        from_samples(path, args.test.as_deref(), args.inputs)
    } else {
        let path = args.image.as_ref().expect("clap requires one target");
        from_image(path, args.holdout)
    }
}

fn architecture(args: &FitArgs, data: &FitData) -> Result<Architecture, CliError> {
    let hidden = if args.hidden.is_empty() {
        match data.kind {
            Kind::Image(_) => vec![128; 4],
            _ => vec![64; 3],
        }
    } else {
        args.hidden.clone()
    };
    if hidden.contains(&0) {
        return Err(CliError::Input("--hidden widths must be at least 1".into()));
    }
    let inputs = data.train_x.cols;
    let encoding = match args.encoding {
        EncodingArg::None => None,
        kind => {
            if args.features == 0 || args.sigma.is_nan() || args.sigma <= 0.0 {
                return Err(CliError::Input(
                    "--features must be at least 1 and --sigma positive".into(),
                ));
            }
            let kind = match kind {
                EncodingArg::Gaussian => EncodingKind::Gaussian,
                EncodingArg::Positional => EncodingKind::Positional,
                _ => EncodingKind::Basic,
            };
            // The basic encoding has one frequency per input: B is the identity.
            let features = if kind == EncodingKind::Basic {
                inputs
            } else {
                args.features
            };
            Some(Encoding {
                kind,
                inputs,
                features,
                two_pi: true,
                order: "cos_then_sin".into(),
                sigma: (kind != EncodingKind::Basic).then_some(args.sigma),
                trainable: args.train_encoding,
            })
        }
    };
    let arch = Architecture::mlp(
        inputs,
        encoding,
        &hidden,
        data.train_y.cols,
        args.activation,
    );
    // Before any parameter is allocated: the widths may be absurd.
    arch.check()
        .map_err(|e| CliError::Input(format!("{e} (--hidden, --features)")))?;
    Ok(arch)
}

/// Initial parameters; B's row for each input is divided by that input's range, so σ
/// counts cycles per range whatever the units (the encoding's kernel only depends on
/// differences of inputs, so the range's offset does not matter).
fn initial_params(args: &FitArgs, arch: &Architecture, widths: &[f64]) -> Params {
    let init = match args.init {
        Some(InitArg::He) => Init::He,
        Some(InitArg::Glorot) => Init::Glorot,
        Some(InitArg::Siren) => Init::Siren,
        None => match args.activation {
            Activation::Relu => Init::He,
            Activation::Sin => Init::Siren,
            _ => Init::Glorot,
        },
    };
    let mut params = Params::init(arch, init, args.seed).expect("a checked architecture");
    if let Some(b) = &mut params.b {
        for (row, w) in b.data.chunks_mut(b.cols).zip(widths) {
            row.iter_mut().for_each(|v| *v /= w);
        }
    }
    params
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

/// The settings of the run that are wrong whatever the data: refused before the data is
/// read. A NaN or negative rate, a zero log interval and the like get one sentence each.
fn check_settings(args: &FitArgs) -> Result<(), CliError> {
    args.settings().check().map_err(spec_flags::flag_error)?;
    // Options of another target would be ignored: contradictions, refused.
    let misplaced = [
        (
            "--points",
            args.points.is_some(),
            args.expr.is_some(),
            "--expr",
        ),
        ("--test", args.test.is_some(), args.data.is_some(), "--data"),
        ("--holdout", args.holdout, args.image.is_some(), "--image"),
    ];
    if let Some((flag, _, _, target)) = misplaced.iter().find(|m| m.1 && !m.2) {
        return Err(CliError::Input(format!(
            "{flag} is for {target} only; this fit has another target"
        )));
    }
    Ok(())
}

impl FitArgs {
    /// The optimisation flags as the library's settings.
    fn settings(&self) -> FitSettings {
        FitSettings {
            steps: self.steps,
            lr: self.lr,
            schedule: self.schedule.clone(),
            weight_decay: self.weight_decay,
            batch: self.batch,
            clip: self.clip,
            sigma: self.sigma,
            log_every: self.log_every,
        }
    }
}

/// Bytes the results take on disk, about: the checkpoint (f32 parameters and their
/// metadata), the curve, the charts and pictures, the summary.
fn output_estimate(args: &FitArgs, data: &FitData, params: &Params, log_every: u32) -> u64 {
    let checkpoint = 4 * params.flat().len() as u64 + (64 << 10);
    let curve = 40 * (args.steps / log_every + 2) as u64;
    let picture = match &data.kind {
        Kind::Image(image) => (image.width * image.height * image.channels) as u64 + 4096,
        Kind::Expression { points, .. } if data.train_x.cols == 2 => 2 * (points * points) as u64,
        _ => super::space::CHART_BYTES,
    };
    checkpoint + curve + super::space::CHART_BYTES + picture + (16 << 10)
}

pub fn run(args: &FitArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    check_settings(args)?;
    let data = load(args)?;
    let arch = architecture(args, &data)?;
    let schedule = args.settings().schedule().map_err(spec_flags::flag_error)?;
    let m = data.train_x.rows;
    let batch = match args.batch {
        Some(b) if b > m => {
            return Err(CliError::Input(format!(
                "--batch {b} is more than the {m} training samples; use at most {m}"
            )));
        }
        Some(b) => Some(b),
        None if m > 1 << 16 => Some(1 << 14),
        None => None,
    };
    let config = TrainConfig {
        optimizer: Optimizer {
            sgd: args.sgd,
            lr: args.lr,
            weight_decay: args.weight_decay,
            schedule,
            ..Optimizer::default()
        },
        loss: match args.loss {
            LossArg::Mse => Loss::Mse,
            LossArg::RelL2 => Loss::RelativeL2,
        },
        batch,
        clip: args.clip,
        seed: args.seed,
    };
    config
        .check()
        .map_err(|e| CliError::Input(format!("{e} (--lr, --weight-decay, --schedule, --clip)")))?;
    let log_every = args.log_every.unwrap_or((args.steps / 200).max(1));
    let start = initial_params(args, &arch, &data.widths);
    // Proven writable, with room for the results, before any work.
    let estimate = output_estimate(args, &data, &start, log_every);
    let mut out = match &args.out {
        Some(dir) => Some({
            super::space::refuse_earlier_results(dir, args.overwrite, &FILES)?;
            super::space::output_dir(dir, estimate, "the checkpoint and pictures")?
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
            args.steps,
            per_step,
            if args.sgd { "SGD" } else { "Adam" },
            args.lr
        );
    }
    // At most about 20 lines of curve on the terminal; the files get every point.
    let print_every = log_every * (args.steps / log_every / 20).max(1);
    let report = fit(&ctx, &mut trainer, args.steps, log_every, |step, loss| {
        if text && !args.quiet && (step % print_every == 0 || step == args.steps) {
            println!("  step {step:>8}  loss {loss:.4e}");
        }
        !interrupt::requested()
    })?;
    let interrupted = report.steps < args.steps;
    // A diverged network is no result: every loader refuses NaN weights, so writing it would
    // only hand the user a checkpoint that nothing accepts.
    let diverged = report.curve.last().is_some_and(|c| !c.1.is_finite())
        || report.params.flat().iter().any(|v| !v.is_finite());
    if diverged {
        return Err(CliError::Runtime(format!(
            "training diverged: the loss or the weights are not finite after {} steps, so \
             nothing was written; try a smaller --lr (it was {:e})",
            report.steps, args.lr
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
        "steps_asked": args.steps,
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
            report.steps, args.steps
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
            let g = super::fit_data::grid(2, *points, *lo, *hi, 0.5);
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
