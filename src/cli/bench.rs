//! `phaseflow bench`: named scenarios that check their own result before timing it.
//! `peak` measures the adapter's ceilings (`gpu::peak`). The neural-core scenarios: `mlp-train` (full Adam steps of the Fourier-feature
//! MLP) and `mlp-infer` (its forward pass over a large batch); DeepONet's
//! `deeponet-train` (iterations of DeepXDE's aligned antiderivative example) and
//! `deeponet-infer` (one function at 100 points, and many functions).

mod deeponet;

use super::CliError;
use crate::gpu::{AdapterChoice, GpuContext};
use crate::nn::{
    Activation, Architecture, Encoding, EncodingKind, FusedNet, FusedTrainer, GpuNet, Init, Matrix,
    Optimizer, Params, TrainConfig, Trainer, cpu,
};
use crate::rng::uniform_f64;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Measured ceilings of the adapter: f32 (and f64) FMA rate and copy bandwidth, from
    /// microkernels checked against their CPU twin
    Peak,
    /// Training throughput: Gaussian Fourier features (128 outputs) → 3×64 ReLU → 1,
    /// full Adam steps on batches of --batch samples (default 16384)
    MlpTrain,
    /// Inference throughput of the same network on --batch samples (default 1048576)
    MlpInfer,
    /// DeepONet training: DeepXDE's aligned antiderivative set-up (150 functions × 100
    /// points, branch [100, 40, 40], trunk [1, 40, 40], ReLU), full-batch Adam iterations
    DeeponetTrain,
    /// DeepONet inference with the same network: latency of one function at 100 points,
    /// and throughput over --batch functions (default 10000)
    DeeponetInfer,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// What to measure
    #[arg(value_enum)]
    pub(super) scenario: Scenario,
    /// Samples per batch (functions for deeponet-infer)
    #[arg(long)]
    pub(super) batch: Option<usize>,
    /// Timed repetitions after one untimed warm-up (at most 3 for inference and for the
    /// layer-by-layer comparison, which take seconds each)
    #[arg(long, default_value_t = 10)]
    pub(super) reps: usize,
    /// Also time the layer-by-layer kernels, for the ratio
    #[arg(long)]
    compare: bool,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

/// The network of the neural-core benchmark.
pub fn benchmark_mlp() -> Architecture {
    Architecture {
        kind: "fourier_mlp".into(),
        encoding: Some(Encoding {
            kind: EncodingKind::Gaussian,
            inputs: 2,
            features: 64,
            two_pi: true,
            order: "cos_then_sin".into(),
            sigma: Some(10.0),
            trainable: false,
        }),
        layers: vec![128, 64, 64, 64, 1],
        activation: Activation::Relu,
        output_activation: Activation::None,
    }
}

fn samples(n: usize) -> (Matrix, Matrix) {
    let x: Vec<f64> = (0..2 * n).map(|k| uniform_f64(1, k as u64, 0)).collect();
    let t = (0..n)
        .map(|r| (6.0 * x[2 * r]).sin() * (4.0 * x[2 * r + 1]).cos())
        .collect();
    (
        Matrix {
            rows: n,
            cols: 2,
            data: x,
        },
        Matrix {
            rows: n,
            cols: 1,
            data: t,
        },
    )
}

fn sync(ctx: &GpuContext) -> Result<(), CliError> {
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| CliError::Runtime(format!("waiting for the GPU failed: {e}")))?;
    Ok(())
}

fn rel_diff(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-30)
}

pub(super) struct Row {
    what: String,
    batch: usize,
    seconds: f64,
    samples_per_s: f64,
    pub(super) check: String,
    /// GPU time of each dispatch of one step (timestamp queries), where measured.
    pub(super) passes: Vec<(&'static str, f64)>,
    /// A line of the scenario's own figures.
    pub(super) note: Option<String>,
}

impl Row {
    pub(super) fn new(what: &str, batch: usize, seconds: f64, check: String) -> Row {
        Row {
            what: what.into(),
            batch,
            seconds,
            samples_per_s: batch as f64 / seconds,
            check,
            passes: Vec::new(),
            note: None,
        }
    }
}

/// Seconds per call of `step`, over `reps` calls and the device work they queued.
pub(super) fn time(ctx: &GpuContext, reps: usize, mut step: impl FnMut()) -> Result<f64, CliError> {
    let start = Instant::now();
    for _ in 0..reps {
        step();
    }
    sync(ctx)?;
    Ok(start.elapsed().as_secs_f64() / reps as f64)
}

/// Outputs within 1e-4 of the twin's largest magnitude (`got` may run longer than `want`):
/// the worst difference relative to that scale, as the report's check.
pub(super) fn check_outputs(got: &[f64], want: &[f64]) -> Result<f64, CliError> {
    let scale = want.iter().map(|v| v.abs()).fold(1e-30, f64::max);
    let worst = want
        .iter()
        .zip(got)
        .map(|(w, g)| (w - g).abs())
        .fold(0.0, f64::max)
        / scale;
    if worst > 1e-4 {
        return Err(CliError::Runtime(format!(
            "self-check failed: outputs differ from the CPU twin by {worst:.2e}"
        )));
    }
    Ok(worst)
}

/// A loss within 1e-4 of the twin's (f32 sums over the batch), as the report's check.
pub(super) fn check_loss(got: f64, want: f64) -> Result<String, CliError> {
    let diff = rel_diff(got, want);
    if diff > 1e-4 {
        return Err(CliError::Runtime(format!(
            "self-check failed: device loss {got} vs CPU twin {want}"
        )));
    }
    Ok(format!("loss {got:.6e} = twin ± {diff:.1e}"))
}

pub fn run(args: &BenchArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    let ctx = GpuContext::new(choice)?;
    if args.scenario == Scenario::Peak {
        return peak(&ctx, args);
    }
    if matches!(
        args.scenario,
        Scenario::DeeponetTrain | Scenario::DeeponetInfer
    ) {
        return deeponet::run(&ctx, args);
    }
    let arch = benchmark_mlp();
    let params = Params::init(&arch, Init::He, 1).expect("a valid architecture");
    let reps = args.reps.max(1);
    let mut rows = Vec::new();
    match args.scenario {
        Scenario::MlpTrain => {
            let batch = args.batch.unwrap_or(1 << 14);
            let (x, t) = samples(batch);
            // Self-check of each form: the first step's loss against the f64 twin.
            let want = cpu::mse(&cpu::forward(&arch, &params, &x).y, &t).0;
            let mut trainer =
                FusedTrainer::new(&ctx, &arch, &params, &x, &t, TrainConfig::default())?;
            trainer.step(&ctx);
            let check = check_loss(trainer.loss(&ctx)?, want)?;
            let seconds = time(&ctx, reps, || trainer.step(&ctx))?;
            let mut row = Row::new("fused", batch, seconds, check);
            if let Some(passes) = trainer.profile(&ctx)? {
                row.passes = passes
                    .into_iter()
                    .map(|(label, t)| (label, t.as_secs_f64()))
                    .collect();
            }
            rows.push(row);
            if args.compare {
                let net = GpuNet::new(&ctx, &arch, &params)?;
                let mut layered = Trainer::new(&ctx, net, &x, &t, Optimizer::default())?;
                layered.step(&ctx);
                let check = check_loss(layered.loss(&ctx)?, want)?;
                let seconds = time(&ctx, reps.min(3), || layered.step(&ctx))?;
                rows.push(Row::new("layer by layer", batch, seconds, check));
            }
        }
        Scenario::MlpInfer => {
            let batch = args.batch.unwrap_or(1 << 20);
            let (x, _) = samples(batch);
            let net = FusedNet::new(&ctx, &arch, &params)?;
            let y = net.predict(&ctx, &x)?;
            let head = 512.min(batch);
            let x_head = Matrix {
                rows: head,
                cols: 2,
                data: x.data[..2 * head].to_vec(),
            };
            let want = cpu::forward(&arch, &params, &x_head).y;
            let worst = check_outputs(&y.data, &want.data)?;
            let mut failed = None;
            let seconds = time(&ctx, reps.min(3), || {
                if let Err(e) = net.predict(&ctx, &x) {
                    failed = Some(e);
                }
            })?;
            if let Some(e) = failed {
                return Err(e.into());
            }
            let check = format!("{head} outputs = twin ± {worst:.1e}");
            rows.push(Row::new("fused", batch, seconds, check));
        }
        Scenario::Peak | Scenario::DeeponetTrain | Scenario::DeeponetInfer => {
            unreachable!("handled above")
        }
    }
    report(&ctx, args, &rows);
    Ok(())
}

/// `peak`: the adapter's ceilings, each the best of --reps dispatches.
fn peak(ctx: &GpuContext, args: &BenchArgs) -> Result<(), CliError> {
    let p = crate::gpu::peak::measure(ctx, args.reps.min(5))?;
    if args.json {
        let value = serde_json::json!({
            "scenario": "peak",
            "adapter": ctx.summary,
            "version": env!("CARGO_PKG_VERSION"),
            "commit": env!("PHASEFLOW_COMMIT"),
            "peak": p,
        });
        println!("{}", serde_json::to_string_pretty(&value).expect("JSON"));
    } else {
        println!(
            "peak on {} ({}), {} time",
            ctx.summary.name,
            ctx.summary.device_type,
            if p.timestamps {
                "GPU timestamp"
            } else {
                "wall"
            }
        );
        println!("f32 FMA     {:>10.1} GFLOP/s", p.f32_flops / 1e9);
        match p.f64_flops {
            Some(f) => println!("f64 FMA     {:>10.1} GFLOP/s", f / 1e9),
            None => println!("f64 FMA     {:>10}", "no SHADER_F64"),
        }
        println!(
            "copy        {:>10.1} GB/s (read + written)",
            p.bytes_per_s / 1e9
        );
        println!("checks: every microkernel's output matches its CPU twin");
    }
    Ok(())
}

pub(super) fn report(ctx: &GpuContext, args: &BenchArgs, rows: &[Row]) {
    let name = match args.scenario {
        Scenario::Peak => "peak",
        Scenario::MlpTrain => "mlp-train",
        Scenario::MlpInfer => "mlp-infer",
        Scenario::DeeponetTrain => "deeponet-train",
        Scenario::DeeponetInfer => "deeponet-infer",
    };
    if args.json {
        let value = serde_json::json!({
            "scenario": name,
            "adapter": ctx.summary,
            "version": env!("CARGO_PKG_VERSION"),
            "commit": env!("PHASEFLOW_COMMIT"),
            "results": rows.iter().map(|r| serde_json::json!({
                "kernels": r.what,
                "batch": r.batch,
                "seconds": r.seconds,
                "samples_per_s": r.samples_per_s,
                "check": r.check,
                "note": r.note,
                "gpu_seconds_per_pass": r.passes.iter()
                    .map(|(l, t)| serde_json::json!({"pass": l, "seconds": t}))
                    .collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&value).expect("JSON"));
    } else {
        println!(
            "{name} on {} ({})",
            ctx.summary.name, ctx.summary.device_type
        );
        println!(
            "{:<16} {:>9} {:>12} {:>14}  check",
            "kernels", "batch", "ms/step", "samples/s"
        );
        for r in rows {
            println!(
                "{:<16} {:>9} {:>12.2} {:>14.4e}  {}",
                r.what,
                r.batch,
                1e3 * r.seconds,
                r.samples_per_s,
                r.check
            );
        }
        for r in rows.iter() {
            if let Some(note) = &r.note {
                println!("{}: {note}", r.what);
            }
        }
        for r in rows.iter().filter(|r| !r.passes.is_empty()) {
            let parts: Vec<String> = r
                .passes
                .iter()
                .map(|(l, t)| format!("{l} {:.2}", 1e3 * t))
                .collect();
            println!("{} GPU ms per pass: {}", r.what, parts.join(", "));
        }
        if args.scenario == Scenario::MlpTrain && rows.len() == 2 {
            println!(
                "fused / layer by layer: {:.1}×",
                rows[0].samples_per_s / rows[1].samples_per_s
            );
        }
    }
}
