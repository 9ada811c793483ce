//! DeepXDE's aligned antiderivative DeepONet through the library: train on DeepXDE's
//! published training set (`tests/data/antiderivative_aligned_train.npz`, or a path
//! given as the first argument) with its set-up (branch [100, 40, 40], trunk [1, 40, 40],
//! ReLU, Adam 1e-3, 10,000 full-batch iterations) and report DeepXDE's metric, the mean
//! relative L2 error, on 1,000 test functions drawn the same way (GRF, length scale 0.2;
//! labels by a left Riemann sum).
//!
//!     cargo run --release --example antiderivative

use phaseflow::gpu::{AdapterChoice, GpuContext};
use phaseflow::nn::deeponet::data::{antiderivative, antiderivative_arch, read_aligned};
use phaseflow::nn::{DeepONetParams, DeepONetTrainConfig, DeepONetTrainer, Init};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/antiderivative_aligned_train.npz"
        )
        .into()
    });
    let ctx = GpuContext::new(&AdapterChoice::Best)?;
    let train = read_aligned(path.as_ref())?;
    // The published training functions are as smooth as a GRF with length scale 0.5 (see
    // tests/deeponet_data.rs), though the example is usually described with 0.2.
    let tests = [
        (0.5, antiderivative(100, 0.5, 1000, 2)?),
        (0.2, antiderivative(100, 0.2, 1000, 2)?),
    ];
    let arch = antiderivative_arch(100);
    let start = DeepONetParams::init(&arch, Init::Glorot, 1)?;
    let mut trainer =
        DeepONetTrainer::new(&ctx, &arch, &start, &train, DeepONetTrainConfig::default())?;
    let clock = Instant::now();
    for step in 1..=10_000 {
        trainer.step(&ctx);
        if step % 2000 == 0 {
            println!("step {step:>6}  train MSE {:.3e}", trainer.loss(&ctx)?);
        }
    }
    let seconds = clock.elapsed().as_secs_f64();
    println!(
        "{seconds:.2} s for 10,000 iterations ({:.3} s per 1,000)",
        seconds / 10.0
    );
    for (l, test) in &tests {
        let m = trainer.net.evaluate(&ctx, test)?;
        println!(
            "test set (GRF l = {l}): MSE {:.3e}, mean relative L2 {:.4}",
            m.mse, m.mean_relative_l2
        );
    }
    Ok(())
}
