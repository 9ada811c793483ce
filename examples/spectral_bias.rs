//! Spectral bias and its cure through the library API (Tancik et al. 2020, in one
//! dimension): fit f(x) = sin(2π·3x) + 0.5 sin(2π·17x) + 0.25 sin(2π·41x) from 256 uniform
//! points with a 3×64 ReLU MLP, with and without 64 Gaussian Fourier features (σ = 10),
//! and print the test MSE at the 256 midpoints. Saves the encoded network as a checkpoint
//! that PyTorch loads (`spectral_bias.safetensors`).
//!
//!     cargo run --release --example spectral_bias

use phaseflow::gpu::{AdapterChoice, GpuContext};
use phaseflow::nn::{
    self, Activation, AnyTrainer, Architecture, Encoding, EncodingKind, Init, Matrix, Params,
    TrainConfig,
};
use std::f64::consts::TAU;

fn column(values: impl Iterator<Item = f64>) -> Matrix {
    let data: Vec<f64> = values.collect();
    Matrix {
        rows: data.len(),
        cols: 1,
        data,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = GpuContext::new(&AdapterChoice::Best)?;
    let f = |x: f64| {
        (TAU * 3.0 * x).sin() + 0.5 * (TAU * 17.0 * x).sin() + 0.25 * (TAU * 41.0 * x).sin()
    };
    let train_x = column((0..256).map(|i| i as f64 / 256.0));
    let test_x = column((0..256).map(|i| (i as f64 + 0.5) / 256.0));
    let train_y = column(train_x.data.iter().map(|&x| f(x)));
    let test_y = column(test_x.data.iter().map(|&x| f(x)));
    let gaussian = Encoding {
        kind: EncodingKind::Gaussian,
        inputs: 1,
        features: 64,
        two_pi: true,
        order: "cos_then_sin".into(),
        sigma: Some(10.0),
        trainable: false,
    };
    for encoding in [None, Some(gaussian)] {
        let arch = Architecture::mlp(1, encoding, &[64, 64, 64], 1, Activation::Relu);
        let start = Params::init(&arch, Init::He, 1)?;
        let config = TrainConfig::default(); // Adam 1e-3, full batch, MSE
        let mut trainer = AnyTrainer::new(&ctx, &arch, &start, &train_x, &train_y, config)?;
        let report = nn::fit(&ctx, &mut trainer, 5000, 1000, |step, loss| {
            println!("  step {step:>5}  train MSE {loss:.3e}");
            true
        })?;
        let y = nn::predict(&ctx, &arch, &report.params, &test_x)?;
        let test_mse = nn::mlp::cpu::mse(&y, &test_y).0;
        let name = if arch.encoding.is_some() {
            "Gaussian Fourier features"
        } else {
            "no encoding"
        };
        println!(
            "{name}: test MSE {test_mse:.3e} ({} kernels, {:.1} s)",
            report.kernels, report.seconds
        );
        if arch.encoding.is_some() {
            // Under the repository's ignored runs/, never beside the sources.
            let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runs");
            std::fs::create_dir_all(&out)?;
            let path = out.join("spectral_bias.safetensors");
            nn::save(&path, &arch, &report.params, &[])?;
            println!("saved {}", path.display());
        }
    }
    Ok(())
}
