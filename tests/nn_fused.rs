//! The fused MLP kernels against the f64 CPU twin on random inputs: forward outputs,
//! losses (MSE and relative L2) and every gradient, for encodings fixed and trained,
//! every activation, widths that need padding, minibatches; Adam steps with clipping.
//!
//! Tolerances: the kernels compute in f32 with sums of up to 128 terms per output and
//! batch sums of up to about a thousand samples. Relative to the largest magnitude of a
//! tensor, f32 rounding of such sums stays below ~1e-5; we allow 2e-4 for gradients
//! (they pass through several layers of such sums) and 2e-5 for outputs.

mod common;

use common::{assert_close, random_matrix};
use phaseflow::gpu::GpuContext;
use phaseflow::nn::mlp::fused::WIDE_TASKS_FROM_SAMPLES;
use phaseflow::nn::{
    Activation, Architecture, Encoding, EncodingKind, FusedNet, FusedTrainer, Init, Loss, Matrix,
    Optimizer, Params, TrainConfig, mlp::cpu,
};
use phaseflow::rng::uniform_f64;

/// One adapter for the whole file, shared by the tests that run side by side.
fn ctx() -> &'static GpuContext {
    common::gpu()
}

fn arch(
    inputs: usize,
    features: Option<(usize, bool)>,
    hidden: &[usize],
    outputs: usize,
    act: Activation,
) -> Architecture {
    let encoding = features.map(|(f, trainable)| Encoding {
        kind: EncodingKind::Gaussian,
        inputs,
        features: f,
        two_pi: true,
        order: "cos_then_sin".into(),
        sigma: Some(1.5),
        trainable,
    });
    Architecture::mlp(inputs, encoding, hidden, outputs, act)
}

/// Params of `arch` with nonzero random biases (so bias gradients are exercised).
fn params(arch: &Architecture, seed: u64) -> Params {
    let mut p = Params::init(arch, Init::Glorot, seed).unwrap();
    for (l, b) in p.biases.iter_mut().enumerate() {
        for (k, v) in b.iter_mut().enumerate() {
            *v = 0.1 * (2.0 * uniform_f64(seed, k as u64, 90 + l as u32) - 1.0);
        }
    }
    p
}

fn check_gradients(ctx: &GpuContext, a: &Architecture, loss: Loss, m: usize, seed: u64) {
    let p = params(a, seed);
    let x = random_matrix(m, a.inputs(), seed, 1);
    let t = random_matrix(m, a.outputs(), seed, 2);
    let trainer = FusedTrainer::new(
        ctx,
        a,
        &p,
        &x,
        &t,
        TrainConfig {
            loss,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    // The cases cover both weight-gradient forms on CPU adapters (`grad_outputs_for`).
    let wide = ctx.cpu_forms() && m >= WIDE_TASKS_FROM_SAMPLES;
    assert_eq!(trainer.net.layout.uniform_params, ctx.cpu_forms());
    assert_eq!(trainer.net.layout.grad_outputs, if wide { 16 } else { 8 });
    let (gpu_loss, gpu_grads) = trainer.gradients(ctx).unwrap();
    let fwd = cpu::forward(a, &p, &x);
    let (want_loss, dy) = match loss {
        Loss::Mse => cpu::mse(&fwd.y, &t),
        Loss::RelativeL2 => cpu::relative_l2(&fwd.y, &t),
    };
    let want = cpu::backward(a, &p, &fwd, &x, &dy);
    let label = format!("{:?} {:?} {:?}", a.layers, a.activation, loss);
    assert!(
        (gpu_loss - want_loss).abs() <= 2e-5 * want_loss,
        "{label}: loss {gpu_loss} vs {want_loss}"
    );
    for ((name, _, g), (_, _, w)) in gpu_grads.named().iter().zip(want.named()) {
        let trained = name != "encoding.B" || a.encoding.as_ref().is_some_and(|e| e.trainable);
        if trained {
            assert_close(&format!("{label} {name}"), g, w, 2e-4);
        } else {
            assert!(
                g.iter().all(|v| *v == 0.0),
                "{label}: a fixed B has no gradient"
            );
        }
    }
}

/// The networks of `fused_gradients_match_the_cpu_twin` and their sample counts.
fn gradient_case(k: usize) -> (Architecture, usize) {
    let (inputs, enc, hidden, outputs, act, m) = match k {
        0 => (
            2,
            Some((64, false)),
            vec![64, 64, 64],
            1,
            Activation::Relu,
            // Past `WIDE_TASKS_FROM_SAMPLES`: weight-gradient tasks of 16 outputs on CPU
            // adapters, through layers of 64 and the encoding's 128 inputs.
            1030,
        ),
        1 => (3, Some((10, true)), vec![24, 17], 5, Activation::Tanh, 130),
        2 => (1, None, vec![32, 32], 2, Activation::Gelu, 64),
        // The spectral-bias test's network without its encoding.
        3 => (1, None, vec![64, 64, 64], 1, Activation::Relu, 256),
        4 => (3, None, vec![20], 3, Activation::Silu, 77),
        5 => (2, Some((8, true)), vec![16, 16], 1, Activation::Sin, 200),
        // Enough samples for the weight gradients to be summed in several splits, each
        // starting at a block of eight samples, the last one ending inside a block.
        6 => (2, Some((16, false)), vec![32], 2, Activation::Relu, 1100),
        _ => unreachable!("no gradient case {k}"),
    };
    (arch(inputs, enc, &hidden, outputs, act), m)
}

/// The kernels GPUs run (storage parameters shared through subgroup broadcasts, tasks of
/// eight outputs) against the twin on this adapter: on a CPU adapter the other tests run
/// the forms made for it (uniform parameter windows, tasks of 16 outputs).
#[test]
fn gpu_kernel_forms_match_the_cpu_twin() {
    let ctx = common::gpu_with_gpu_forms();
    for k in [0, 1, 6] {
        let (a, m) = gradient_case(k);
        check_gradients(ctx, &a, Loss::Mse, m, 60 + k as u64);
        let p = params(&a, 70 + k as u64);
        let x = random_matrix(m, a.inputs(), 70 + k as u64, 1);
        let got = FusedNet::new(ctx, &a, &p)
            .unwrap()
            .predict(ctx, &x)
            .unwrap();
        assert_close(
            &format!("case {k} outputs"),
            &got.data,
            &cpu::forward(&a, &p, &x).y.data,
            2e-5,
        );
    }
}

/// Case `k` of `gradient_case` with `loss` (seed k for the MSE, 10 + k for relative L2).
fn fused_gradients_match_the_cpu_twin(k: usize, loss: Loss) {
    let ctx = ctx();
    let (a, m) = gradient_case(k);
    let seed = match loss {
        Loss::Mse => k as u64,
        Loss::RelativeL2 => 10 + k as u64,
    };
    check_gradients(ctx, &a, loss, m, seed);
}

/// One test per network and loss, named after both, so a failure says which.
macro_rules! gradient_tests {
    ($($name:ident: $k:expr, $loss:ident;)*) => {
        mod fused_gradients_match_the_cpu_twin {
            use super::*;
            $(
                #[test]
                fn $name() {
                    super::fused_gradients_match_the_cpu_twin($k, Loss::$loss);
                }
            )*
        }
    };
}

gradient_tests! {
    relu_fixed_encoding_mse: 0, Mse;
    relu_fixed_encoding_relative_l2: 0, RelativeL2;
    tanh_trained_encoding_padded_mse: 1, Mse;
    tanh_trained_encoding_padded_relative_l2: 1, RelativeL2;
    gelu_no_encoding_mse: 2, Mse;
    gelu_no_encoding_relative_l2: 2, RelativeL2;
    relu_spectral_bias_net_mse: 3, Mse;
    relu_spectral_bias_net_relative_l2: 3, RelativeL2;
    silu_one_layer_mse: 4, Mse;
    silu_one_layer_relative_l2: 4, RelativeL2;
    sin_trained_encoding_mse: 5, Mse;
    sin_trained_encoding_relative_l2: 5, RelativeL2;
    relu_split_gradient_sums_mse: 6, Mse;
    relu_split_gradient_sums_relative_l2: 6, RelativeL2;
}

#[test]
fn fused_inference_matches_the_cpu_twin_across_chunks() {
    let ctx = ctx();
    let a = arch(2, Some((32, false)), &[64, 48], 3, Activation::Tanh);
    let p = params(&a, 3);
    let x = random_matrix(5000, 2, 3, 4);
    let net = FusedNet::new(ctx, &a, &p).unwrap();
    let y = net.predict(ctx, &x).unwrap();
    let want = cpu::forward(&a, &p, &x).y;
    assert_close("outputs", &y.data, &want.data, 2e-5);
}

/// Adam (with clipping) on minibatches: the device's parameters follow the CPU twin that
/// replays the same batches, within f32 accumulation over the steps.
#[test]
fn fused_adam_steps_on_minibatches_follow_the_twin() {
    let ctx = ctx();
    let a = arch(2, Some((16, true)), &[32, 32], 1, Activation::Tanh);
    let p0 = params(&a, 5);
    let m = 256;
    let x = random_matrix(m, 2, 5, 1);
    let t = random_matrix(m, 1, 5, 2);
    let optimizer = Optimizer {
        lr: 3e-3,
        weight_decay: 1e-3,
        ..Optimizer::default()
    };
    let clip = 0.05;
    let mut trainer = FusedTrainer::new(
        ctx,
        &a,
        &p0,
        &x,
        &t,
        TrainConfig {
            optimizer,
            batch: Some(64),
            clip: Some(clip),
            seed: 9,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    // The twin replays the same batches (the trainer tells which rows it drew).
    let mut p = p0.flat();
    let (mut m1, mut m2) = (vec![0.0; p.len()], vec![0.0; p.len()]);
    let mut params = p0.clone();
    let mut clipped = 0;
    let mut seen = std::collections::BTreeSet::new();
    for step in 1..=10u32 {
        trainer.step(ctx);
        let rows = trainer.batch_rows();
        seen.extend(rows.iter().copied());
        let pick = |src: &Matrix| Matrix {
            rows: rows.len(),
            cols: src.cols,
            data: rows
                .iter()
                .flat_map(|&r| src.data[r * src.cols..(r + 1) * src.cols].to_vec())
                .collect(),
        };
        let (xb, tb) = (pick(&x), pick(&t));
        let fwd = cpu::forward(&a, &params, &xb);
        let (loss, dy) = cpu::mse(&fwd.y, &tb);
        let got_loss = trainer.loss(ctx).unwrap();
        assert!(
            (got_loss - loss).abs() <= 1e-4 * loss,
            "step {step}: loss {got_loss} vs {loss}"
        );
        let g = cpu::backward(&a, &params, &fwd, &xb, &dy).flat();
        let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
        let got_norm = trainer.grad_norm(ctx).unwrap().unwrap();
        assert!(
            (got_norm - norm).abs() <= 1e-4 * norm,
            "step {step}: norm {got_norm} vs {norm}"
        );
        let scale = if norm > clip {
            clipped += 1;
            clip / norm
        } else {
            1.0
        };
        let g: Vec<f64> = g.iter().map(|v| v * scale).collect();
        optimizer.apply(step, &mut p, &g, &mut m1, &mut m2);
        params.set_flat(&p);
        let got = trainer.params(ctx).unwrap().flat();
        // Adam moves every parameter by about lr per step; f32 state drifts by far less
        // than 1% of that.
        let worst = got
            .iter()
            .zip(&p)
            .map(|(g, w)| (g - w).abs())
            .fold(0.0, f64::max);
        assert!(
            worst < 0.01 * optimizer.lr,
            "step {step}: worst {worst:.3e}"
        );
    }
    assert!(clipped > 0, "the test should exercise clipping");
    // Ten batches of 64 from 256 rows: two and a half epochs, every row drawn.
    assert_eq!(seen.len(), m);
}

/// Without subgroups (`PHASEFLOW_SUBGROUPS=off`, or an adapter that has none) every lane
/// loads the weights, biases and δ it needs instead of taking them from the lane that
/// loaded them: the same values reach the same sums in the same order, so the outputs,
/// the loss, every gradient and a few Adam steps with clipping on minibatches are the same
/// bits as with subgroups.
#[test]
fn fused_kernels_without_subgroups_give_the_same_bits() {
    let (with, without) = (ctx(), common::gpu_without_subgroups());
    assert!(!without.has_subgroups());
    for k in [1, 5, 6] {
        let (a, m) = gradient_case(k);
        let p = params(&a, 40 + k as u64);
        let x = random_matrix(m, a.inputs(), 40 + k as u64, 1);
        let t = random_matrix(m, a.outputs(), 40 + k as u64, 2);
        let y = |ctx| {
            FusedNet::new(ctx, &a, &p)
                .unwrap()
                .predict(ctx, &x)
                .unwrap()
        };
        assert_eq!(y(with).data, y(without).data, "case {k}: outputs");
        for loss in [Loss::Mse, Loss::RelativeL2] {
            let gradients = |ctx| {
                let config = TrainConfig {
                    loss,
                    ..TrainConfig::default()
                };
                let trainer = FusedTrainer::new(ctx, &a, &p, &x, &t, config).unwrap();
                let (loss, g) = trainer.gradients(ctx).unwrap();
                (loss, g.flat())
            };
            let (l1, g1) = gradients(with);
            let (l2, g2) = gradients(without);
            assert_eq!(l1.to_bits(), l2.to_bits(), "case {k} {loss:?}: loss");
            assert_eq!(g1, g2, "case {k} {loss:?}: gradients");
            assert!(g1.iter().any(|v| *v != 0.0));
        }
        let steps = |ctx| {
            let config = TrainConfig {
                batch: Some(m / 3),
                clip: Some(0.05),
                seed: 3,
                ..TrainConfig::default()
            };
            let mut trainer = FusedTrainer::new(ctx, &a, &p, &x, &t, config).unwrap();
            for _ in 0..4 {
                trainer.step(ctx);
            }
            trainer.params(ctx).unwrap().flat()
        };
        let after = steps(with);
        assert_eq!(after, steps(without), "case {k}: Adam steps");
        assert_ne!(after, p.flat(), "case {k}: the steps moved the parameters");
    }
}
