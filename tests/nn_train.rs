//! Training on the GPU: optimiser steps against the CPU twin, and the spectral-bias
//! experiment of Tancik et al. (2020) in one dimension.

mod common;
use phaseflow::nn::cpu;
use phaseflow::nn::{
    Activation, Architecture, Encoding, EncodingKind, GpuNet, Init, Matrix, Optimizer, Params,
    Schedule, Trainer,
};

fn mlp(encoding: Option<Encoding>, hidden: &[usize], act: Activation) -> Architecture {
    let first = encoding.as_ref().map_or(1, |e| 2 * e.features);
    let mut layers = vec![first];
    layers.extend_from_slice(hidden);
    layers.push(1);
    Architecture {
        kind: if encoding.is_some() {
            "fourier_mlp"
        } else {
            "mlp"
        }
        .into(),
        encoding,
        layers,
        activation: act,
        output_activation: Activation::None,
    }
}

fn column(values: impl Iterator<Item = f64>) -> Matrix {
    let data: Vec<f64> = values.collect();
    Matrix {
        rows: data.len(),
        cols: 1,
        data,
    }
}

/// Three Adam steps and three SGD-with-momentum steps (with weight decay and a step
/// schedule) on the GPU against the same steps on the CPU twin. f32 against f64 over three
/// steps of size ~lr: 1e-5 absolute on parameters of size ~0.5.
#[test]
fn optimiser_steps_match_the_cpu_twin() {
    let ctx = common::gpu();
    let arch = mlp(
        Some(Encoding {
            kind: EncodingKind::Gaussian,
            inputs: 1,
            features: 4,
            two_pi: true,
            order: "cos_then_sin".into(),
            sigma: Some(1.0),
            trainable: true,
        }),
        &[8, 8],
        Activation::Tanh,
    );
    let x = column((0..32).map(|i| i as f64 / 32.0));
    let t = column((0..32).map(|i| (i as f64 / 5.0).sin()));
    for optimizer in [
        Optimizer {
            lr: 1e-2,
            weight_decay: 0.01,
            ..Optimizer::default()
        },
        Optimizer {
            sgd: true,
            lr: 0.05,
            beta1: 0.9,
            schedule: Schedule::Step {
                every: 2,
                gamma: 0.5,
            },
            ..Optimizer::default()
        },
    ] {
        let start = Params::init(&arch, Init::Glorot, 5).unwrap();
        let net = GpuNet::new(ctx, &arch, &start).unwrap();
        let mut trainer = Trainer::new(ctx, net, &x, &t, optimizer).unwrap();
        let mut p = start.clone();
        let len = p.flat().len();
        let (mut m, mut v) = (vec![0.0; len], vec![0.0; len]);
        for step in 1..=3 {
            trainer.step(ctx);
            let fwd = cpu::forward(&arch, &p, &x);
            let (_, dy) = cpu::mse(&fwd.y, &t);
            let g = cpu::backward(&arch, &p, &fwd, &x, &dy).flat();
            let mut flat = p.flat();
            optimizer.apply(step, &mut flat, &g, &mut m, &mut v);
            p.set_flat(&flat);
        }
        let gpu = trainer.params(ctx).unwrap().flat();
        let worst = gpu
            .iter()
            .zip(p.flat())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-5, "{optimizer:?}: {worst:e}");
        assert_ne!(gpu, start.flat(), "the parameters moved");
    }
}
