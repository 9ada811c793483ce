//! The neural-core scenarios: `mlp-train` (full Adam steps of the Fourier-feature MLP) and
//! `mlp-infer` (its forward pass over a large batch, host transfers included).

use super::harness::{Bench, check_loss, check_outputs, time};
use super::row::Row;
use super::scenario::Scenario;
use crate::cli::error::CliError;
use crate::nn::{
    Architecture, FusedNet, FusedTrainer, GpuNet, Init, Matrix, Optimizer, Params, TrainConfig,
    Trainer, mlp::cpu,
};
use crate::rng::uniform_f64;

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

/// Bytes a training step must move at the least: the batch's inputs and targets read,
/// and per parameter the weight read, its gradient written and read, Adam's two moments
/// read and written and the weight written (7 accesses of 4 bytes).
fn training_bytes(arch: &Architecture, params: &Params, batch: usize) -> f64 {
    let data = batch * (arch.inputs() + arch.outputs()) * 4;
    let weights: usize = params.weights.iter().map(|w| w.data.len()).sum::<usize>()
        + params.biases.iter().map(Vec::len).sum::<usize>();
    (data + 7 * 4 * weights) as f64
}

pub fn run(bench: &Bench, scenario: Scenario, size: Option<usize>) -> Result<Vec<Row>, CliError> {
    let ctx = bench.ctx;
    let arch = Architecture::benchmark_fourier_mlp();
    let params = Params::init(&arch, Init::He, 1).expect("a valid architecture");
    let mut rows = Vec::new();
    match scenario {
        Scenario::MlpTrain => {
            let batch = size.unwrap_or(1 << 14);
            let (x, t) = samples(batch);
            // Self-check of each form: the first step's loss against the f64 twin.
            let want = cpu::mse(&cpu::forward(&arch, &params, &x).y, &t).0;
            let mut trainer =
                FusedTrainer::new(ctx, &arch, &params, &x, &t, TrainConfig::default())?;
            trainer.step(ctx);
            let check = check_loss(trainer.loss(ctx)?, want)?;
            let seconds = time(ctx, bench.reps, || trainer.step(ctx))?;
            let work = (batch as f64, "samples");
            let mut row = Row::new(scenario, "fused", batch, seconds, work, check);
            row.flops = Some(batch as f64 * arch.training_flops() as f64);
            row.bytes = Some(training_bytes(&arch, &params, batch));
            row.set_passes(trainer.profile(ctx)?);
            rows.push(row);
            if bench.compare {
                let net = GpuNet::new(ctx, &arch, &params)?;
                let mut layered = Trainer::new(ctx, net, &x, &t, Optimizer::default())?;
                layered.step(ctx);
                let check = check_loss(layered.loss(ctx)?, want)?;
                let seconds = time(ctx, bench.reps.min(3), || layered.step(ctx))?;
                let mut row = Row::new(scenario, "layer by layer", batch, seconds, work, check);
                row.flops = rows[0].flops;
                row.bytes = rows[0].bytes;
                row.note = Some(format!(
                    "fused / layer by layer: {:.1}×",
                    rows[0].throughput() / row.throughput()
                ));
                rows.push(row);
            }
        }
        Scenario::MlpInfer => {
            let batch = size.unwrap_or(1 << 20);
            let (x, _) = samples(batch);
            let net = FusedNet::new(ctx, &arch, &params)?;
            let y = net.predict(ctx, &x)?;
            let head = 512.min(batch);
            let x_head = Matrix {
                rows: head,
                cols: 2,
                data: x.data[..2 * head].to_vec(),
            };
            let want = cpu::forward(&arch, &params, &x_head).y;
            let worst = check_outputs(&y.data, &want.data)?;
            let mut failed = None;
            let seconds = time(ctx, bench.reps.min(3), || {
                if let Err(e) = net.predict(ctx, &x) {
                    failed = Some(e);
                }
            })?;
            if let Some(e) = failed {
                return Err(e.into());
            }
            let check = format!("{head} outputs = twin ± {worst:.1e}");
            let work = (batch as f64, "samples");
            let mut row = Row::new(scenario, "fused", batch, seconds, work, check);
            row.flops = Some(batch as f64 * arch.forward_flops() as f64);
            row.bytes = Some((batch * (arch.inputs() + arch.outputs()) * 4) as f64);
            row.note = Some("wall time includes the host's upload and read-back".into());
            rows.push(row);
        }
        _ => unreachable!("not a neural-core scenario"),
    }
    Ok(rows)
}
