//! The fused network kernels (MLP forward, backward and weight gradients, Adam, DeepONet)
//! against their f64 CPU twins on random networks and data. The weight-gradient kernel
//! shares values across subgroup lanes, so these checks are the ones a new subgroup size
//! breaks first.
//!
//! Bounds as tests/nn_fused.rs and tests/deeponet_gpu.rs justify them: the kernels compute
//! in f32 with sums of at most a few hundred terms per output and batch sums of about a
//! thousand samples, whose rounding stays below ~1e-5 of each tensor's largest magnitude;
//! 2e-5 for outputs and losses, 2e-4 for gradients (they pass through several such sums),
//! and for Adam a hundredth of the learning rate (each step moves a parameter by about lr).

use super::check::{Check, deviation, worst_tensor};
use crate::gpu::GpuContext;
use crate::nn::deeponet::{backward_aligned, forward_aligned};
use crate::nn::mlp::cpu;
use crate::nn::{
    Activation, AlignedData, Architecture, DeepONetArch, DeepONetNet, DeepONetParams,
    DeepONetTrainConfig, DeepONetTrainer, Encoding, EncodingKind, FusedNet, FusedTrainer, Init,
    Loss, Matrix, NetSpec, Optimizer, Params, Strategy, TrainConfig,
};
use crate::precision::Precision;
use crate::rng::uniform_f64;

const OUTPUTS: f64 = 2e-5;
const GRADIENTS: f64 = 2e-4;

fn matrix(rows: usize, cols: usize, seed: u64, stream: u32) -> Matrix {
    Matrix {
        rows,
        cols,
        data: (0..rows * cols)
            .map(|k| 2.0 * uniform_f64(seed, k as u64, stream) - 1.0)
            .collect(),
    }
}

fn gaussian(inputs: usize, features: usize, trainable: bool) -> Encoding {
    Encoding {
        kind: EncodingKind::Gaussian,
        inputs,
        features,
        two_pi: true,
        order: "cos_then_sin".into(),
        sigma: Some(1.5),
        trainable,
    }
}

/// Glorot weights with non-zero random biases, so that bias gradients are exercised.
fn params(arch: &Architecture, seed: u64) -> Result<Params, String> {
    let mut p = Params::init(arch, Init::Glorot, seed).map_err(|e| e.to_string())?;
    for (l, b) in p.biases.iter_mut().enumerate() {
        for (k, v) in b.iter_mut().enumerate() {
            *v = 0.1 * (2.0 * uniform_f64(seed, k as u64, 90 + l as u32) - 1.0);
        }
    }
    Ok(p)
}

/// Networks that cover what the kernels special-case: a trained encoding with widths that
/// need padding, no encoding, several activations, and enough samples for the weight
/// gradients to be summed in several splits, the last ending inside a block of lanes.
fn networks() -> Vec<(&'static str, Architecture, usize, Loss)> {
    vec![
        (
            "3→enc10→24→17→5 tanh",
            Architecture::mlp(
                3,
                Some(gaussian(3, 10, true)),
                &[24, 17],
                5,
                Activation::Tanh,
            ),
            130,
            Loss::Mse,
        ),
        (
            "1→32→32→2 gelu",
            Architecture::mlp(1, None, &[32, 32], 2, Activation::Gelu),
            64,
            Loss::RelativeL2,
        ),
        (
            "2→enc16→32→2 relu",
            Architecture::mlp(2, Some(gaussian(2, 16, false)), &[32], 2, Activation::Relu),
            1100,
            Loss::Mse,
        ),
    ]
}

/// One named tensor as `Params::named` lists it: name, shape, values.
type Named<'a> = (String, Vec<usize>, &'a [f64]);

/// The loss and every named gradient tensor against the twin's, as one check: the loss is
/// held to the outputs' bound (in units of the gradients' one), each tensor to `GRADIENTS`
/// of its largest value, a tensor `fixed` names must have a zero gradient, and lists that
/// differ in names or length are infinitely far apart.
fn gradients_check(
    family: &'static str,
    case: String,
    (got_loss, want_loss): (f64, f64),
    (got, want): (&[Named], &[Named]),
    fixed: impl Fn(&str) -> bool,
) -> Check {
    let mut worst = deviation(got_loss, want_loss, want_loss) * (GRADIENTS / OUTPUTS);
    let mut note = String::new();
    if got.len() != want.len() {
        worst = f64::INFINITY;
        note = format!("{} tensors, twin {}", got.len(), want.len());
    }
    for ((tensor, _, g), (twin_tensor, _, w)) in got.iter().zip(want) {
        let e = if tensor != twin_tensor {
            f64::INFINITY
        } else if fixed(tensor) {
            if g.iter().all(|v| *v == 0.0) {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            worst_tensor(g, w)
        };
        if e > worst {
            worst = e;
            if e > GRADIENTS {
                note = format!("worst in {tensor}");
            }
        }
    }
    Check::measured(
        family,
        case,
        Precision::F32,
        (worst, GRADIENTS, "rel. to tensor"),
        note,
    )
}

/// Predictions of the fused forward kernel and, per network, the loss and every gradient of
/// the backward and weight-gradient kernels.
pub fn mlp(ctx: &GpuContext, seed: u64) -> Result<Vec<Check>, String> {
    let mut checks = Vec::new();
    for (name, a, m, loss) in networks() {
        let p = params(&a, seed)?;
        let x = matrix(m, a.inputs(), seed, 1);
        let want = cpu::forward(&a, &p, &x);
        let case = format!("forward {name}");
        match FusedNet::new(ctx, &a, &p).and_then(|net| net.predict(ctx, &x)) {
            Ok(y) => checks.push(Check::measured(
                "mlp",
                case,
                Precision::F32,
                (
                    worst_tensor(&y.data, &want.y.data),
                    OUTPUTS,
                    "rel. to tensor",
                ),
                String::new(),
            )),
            Err(e) => checks.push(Check::failed("mlp", case, Precision::F32, e.to_string())),
        }
        let t = matrix(m, a.outputs(), seed, 2);
        let case = format!("gradients {name} {loss:?}");
        let config = TrainConfig {
            loss,
            ..TrainConfig::default()
        };
        let got = FusedTrainer::new(ctx, &a, &p, &x, &t, config).and_then(|tr| tr.gradients(ctx));
        let (got_loss, got) = match got {
            Ok(g) => g,
            Err(e) => {
                checks.push(Check::failed("mlp", case, Precision::F32, e.to_string()));
                continue;
            }
        };
        let (want_loss, dy) = match loss {
            Loss::Mse => cpu::mse(&want.y, &t),
            Loss::RelativeL2 => cpu::relative_l2(&want.y, &t),
        };
        let grads = cpu::backward(&a, &p, &want, &x, &dy);
        let fixed_b = a.encoding.as_ref().is_some_and(|e| !e.trainable);
        checks.push(gradients_check(
            "mlp",
            case,
            (got_loss, want_loss),
            (&got.named(), &grads.named()),
            |tensor| fixed_b && tensor == "encoding.B",
        ));
    }
    Ok(checks)
}

/// Five Adam steps with weight decay and gradient clipping on minibatches of 64 from 256
/// samples, replayed by the twin on the batches the trainer drew.
pub fn adam(ctx: &GpuContext, seed: u64) -> Result<Vec<Check>, String> {
    let a = Architecture::mlp(
        2,
        Some(gaussian(2, 16, true)),
        &[32, 32],
        1,
        Activation::Tanh,
    );
    let p0 = params(&a, seed)?;
    let m = 256;
    let x = matrix(m, 2, seed, 1);
    let t = matrix(m, 1, seed, 2);
    let optimizer = Optimizer {
        lr: 3e-3,
        weight_decay: 1e-3,
        ..Optimizer::default()
    };
    let config = TrainConfig {
        optimizer,
        batch: Some(64),
        clip: Some(0.05),
        seed,
        ..TrainConfig::default()
    };
    let case = "5 steps, batches of 64, clipping".to_string();
    let bound = 0.01 * optimizer.lr;
    let mut trainer = match FusedTrainer::new(ctx, &a, &p0, &x, &t, config) {
        Ok(tr) => tr,
        Err(e) => {
            return Ok(vec![Check::failed(
                "adam",
                case,
                Precision::F32,
                e.to_string(),
            )]);
        }
    };
    let mut flat = p0.flat();
    let (mut m1, mut m2) = (vec![0.0; flat.len()], vec![0.0; flat.len()]);
    let mut twin = p0.clone();
    let mut worst = 0.0f64;
    for step in 1..=5u32 {
        trainer.step(ctx);
        let rows = trainer.batch_rows();
        let pick = |src: &Matrix| Matrix {
            rows: rows.len(),
            cols: src.cols,
            data: rows
                .iter()
                .flat_map(|&r| src.data[r * src.cols..(r + 1) * src.cols].to_vec())
                .collect(),
        };
        let (xb, tb) = (pick(&x), pick(&t));
        let fwd = cpu::forward(&a, &twin, &xb);
        let (_, dy) = cpu::mse(&fwd.y, &tb);
        let g = cpu::backward(&a, &twin, &fwd, &xb, &dy).flat();
        let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
        let scale = if norm > 0.05 { 0.05 / norm } else { 1.0 };
        let g: Vec<f64> = g.iter().map(|v| v * scale).collect();
        optimizer.apply(step, &mut flat, &g, &mut m1, &mut m2);
        twin.set_flat(&flat);
        let got = match trainer.params(ctx) {
            Ok(p) => p.flat(),
            Err(e) => {
                return Ok(vec![Check::failed(
                    "adam",
                    case,
                    Precision::F32,
                    e.to_string(),
                )]);
            }
        };
        if got.len() != flat.len() {
            worst = f64::INFINITY;
        }
        for (&g, &w) in got.iter().zip(&flat) {
            worst = worst.max(deviation(g, w, 1.0));
        }
    }
    Ok(vec![Check::measured(
        "adam",
        case,
        Precision::F32,
        (worst, bound, "absolute"),
        String::new(),
    )])
}

/// DeepONet: the loss and every gradient of the aligned trainer and the predictions, on
/// DeepXDE's antiderivative network (batches that need padding) and on a two-output network
/// with a trained trunk encoding and latent width 5 (columns that do not start quads).
pub fn deeponet(ctx: &GpuContext, seed: u64) -> Result<Vec<Check>, String> {
    let net = |inputs, hidden: &[usize], encoding| NetSpec {
        inputs,
        hidden: hidden.to_vec(),
        encoding,
    };
    let cases = [
        (
            "antiderivative 100→40·1→40 relu",
            DeepONetArch::new(
                net(100, &[40], None),
                net(1, &[40], None),
                40,
                1,
                Strategy::SplitBoth,
                Activation::Relu,
            ),
            70,
            37,
        ),
        (
            "2 outputs, latent 5, trunk enc8",
            DeepONetArch::new(
                net(12, &[16, 16], None),
                net(2, &[24], Some(gaussian(2, 8, true))),
                5,
                2,
                Strategy::SplitBranch,
                Activation::Tanh,
            ),
            65,
            80,
        ),
    ];
    let mut checks = Vec::new();
    for (name, a, functions, points) in cases {
        let mut p = DeepONetParams::init(&a, Init::Glorot, seed).map_err(|e| e.to_string())?;
        for (c, b) in p.bias.iter_mut().enumerate() {
            *b = 0.2 * c as f64 - 0.1;
        }
        let d = AlignedData {
            u: matrix(functions, a.sensors(), seed, 1),
            y: matrix(points, a.dims(), seed, 2),
            g: matrix(functions, points * a.outputs, seed, 3).data,
            outputs: a.outputs,
        };
        let fwd = forward_aligned(&a, &p, &d.u, &d.y);
        let case = format!("predict {name}");
        match DeepONetNet::new(ctx, &a, &p).and_then(|n| n.predict(ctx, &d.u, &d.y)) {
            Ok(got) => checks.push(Check::measured(
                "deeponet",
                case,
                Precision::F32,
                (worst_tensor(&got, &fwd.g), OUTPUTS, "rel. to tensor"),
                String::new(),
            )),
            Err(e) => checks.push(Check::failed(
                "deeponet",
                case,
                Precision::F32,
                e.to_string(),
            )),
        }
        // The twin's MSE over every (function, point, output), as the trainer's loss.
        let flat = |v: &[f64]| Matrix {
            rows: 1,
            cols: v.len(),
            data: v.to_vec(),
        };
        let (want_loss, dg) = cpu::mse(&flat(&fwd.g), &flat(&d.g));
        let dg = dg.data;
        let want = backward_aligned(&a, &p, &fwd, &d.u, &d.y, &dg);
        let case = format!("gradients {name}");
        let got = DeepONetTrainer::new(ctx, &a, &p, &d, DeepONetTrainConfig::default())
            .and_then(|tr| tr.gradients(ctx));
        let (got_loss, got) = match got {
            Ok(g) => g,
            Err(e) => {
                checks.push(Check::failed(
                    "deeponet",
                    case,
                    Precision::F32,
                    e.to_string(),
                ));
                continue;
            }
        };
        let fixed = |net: &str| {
            let spec = if net == "branch" { &a.branch } else { &a.trunk };
            spec.encoding.as_ref().is_some_and(|e| !e.trainable)
        };
        checks.push(gradients_check(
            "deeponet",
            case,
            (got_loss, want_loss),
            (&got.named(), &want.named()),
            |tensor| {
                tensor.ends_with("encoding.B") && fixed(tensor.split('.').next().unwrap_or(""))
            },
        ));
    }
    Ok(checks)
}
