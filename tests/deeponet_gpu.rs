//! DeepONet on the device against its f64 CPU twin (`nn::deeponet`): the loss and every
//! gradient for each split strategy, with encodings, padding and minibatches of functions
//! and points (or of samples, for unaligned data); predictions; Adam steps replayed by the
//! twin; resumed runs.
//!
//! Tolerances as in tests/nn_fused.rs: the kernels compute in f32 with sums of at most a
//! few hundred terms (the products over the latent width, the batch sums over functions
//! and points), whose rounding stays below ~1e-5 of each tensor's largest magnitude; the
//! gradients pass through both nets, so we allow 2e-4 of each tensor's scale, and 2e-5 for
//! the loss and the predictions.

mod common;

use common::{assert_close, gpu, random_matrix};
use phaseflow::gpu::GpuContext;
use phaseflow::nn::deeponet::data::{antiderivative, antiderivative_arch, read_aligned};
use phaseflow::nn::deeponet::trainer::WIDE_FROM_ROWS;
use phaseflow::nn::deeponet::{
    UnalignedData, backward_aligned, backward_unaligned, forward_aligned, forward_unaligned,
};
use phaseflow::nn::{
    Activation, AlignedData, DeepONetArch, DeepONetNet, DeepONetParams, DeepONetTrainConfig,
    DeepONetTrainer, Encoding, EncodingKind, Init, Matrix, NetSpec, Optimizer, Strategy,
    load_deeponet_state, save_deeponet_state_bytes,
};
use phaseflow::rng::uniform_f64;

fn encoding(inputs: usize, features: usize, trainable: bool) -> Option<Encoding> {
    Some(Encoding {
        kind: EncodingKind::Gaussian,
        inputs,
        features,
        two_pi: true,
        order: "cos_then_sin".into(),
        sigma: Some(1.0),
        trainable,
    })
}

struct Case {
    arch: DeepONetArch,
    functions: usize,
    points: usize,
}

/// One test per case of `cases()` for each check, named `CHECK::CASE`, so a failure names
/// the network it broke on.
macro_rules! per_case {
    ($($check:ident),* $(,)?) => {
        $(
            mod $check {
                #[test]
                fn antiderivative_relu() {
                    super::$check(0)
                }
                #[test]
                fn two_outputs_trained_trunk_encoding_tanh() {
                    super::$check(1)
                }
                #[test]
                fn latent_5_split_branch_gelu() {
                    super::$check(2)
                }
                #[test]
                fn fixed_branch_encoding_split_trunk_silu() {
                    super::$check(3)
                }
                #[test]
                fn many_functions_split_gradient_sums_tanh() {
                    super::$check(4)
                }
            }
        )*
    };
}

per_case!(
    loss_and_gradients_match_the_twin,
    predictions_match_the_twin,
    unaligned_loss_and_gradients_match_the_twin,
    unaligned_predictions_match_the_twin,
);

/// `minibatch_gradients_are_the_drawn_batch` on the first three cases, as the loop it
/// replaces did.
mod minibatch_gradients_are_the_drawn_batch {
    #[test]
    fn antiderivative_relu() {
        super::minibatch_gradients_are_the_drawn_batch(0)
    }
    #[test]
    fn two_outputs_trained_trunk_encoding_tanh() {
        super::minibatch_gradients_are_the_drawn_batch(1)
    }
    #[test]
    fn latent_5_split_branch_gelu() {
        super::minibatch_gradients_are_the_drawn_batch(2)
    }
}

fn cases() -> Vec<Case> {
    let net = |inputs, hidden: &[usize], encoding| NetSpec {
        inputs,
        hidden: hidden.to_vec(),
        encoding,
    };
    vec![
        // DeepXDE's antiderivative network, with batches that need padding.
        Case {
            arch: DeepONetArch::new(
                net(100, &[40], None),
                net(1, &[40], None),
                40,
                1,
                Strategy::SplitBoth,
                Activation::Relu,
            ),
            functions: 70,
            points: 37,
        },
        // Two outputs, a trained Fourier encoding in the trunk, two hidden branch layers.
        Case {
            arch: DeepONetArch::new(
                net(12, &[16, 16], None),
                net(2, &[24], encoding(2, 8, true)),
                8,
                2,
                Strategy::SplitBoth,
                Activation::Tanh,
            ),
            functions: 65,
            points: 80,
        },
        // Latent width 5: the columns of outputs 1 and 2 do not start quads.
        Case {
            arch: DeepONetArch::new(
                net(9, &[20], None),
                net(3, &[18], None),
                5,
                3,
                Strategy::SplitBranch,
                Activation::Gelu,
            ),
            functions: 20,
            points: 130,
        },
        Case {
            arch: DeepONetArch::new(
                net(6, &[16], encoding(6, 10, false)),
                net(1, &[12, 12], None),
                6,
                2,
                Strategy::SplitTrunk,
                Activation::Silu,
            ),
            functions: 90,
            points: 5,
        },
        // Small nets over many functions: the weight gradients are summed in splits of
        // the samples (nn::train::gradients::gradient_splits), b0's gradient in the first.
        Case {
            arch: DeepONetArch::new(
                net(4, &[8], None),
                net(1, &[8], None),
                8,
                1,
                Strategy::SplitBoth,
                Activation::Tanh,
            ),
            functions: 600,
            points: 3,
        },
    ]
}

fn params(arch: &DeepONetArch, seed: u64) -> DeepONetParams {
    let mut p = DeepONetParams::init(arch, Init::Glorot, seed).unwrap();
    for (c, b) in p.bias.iter_mut().enumerate() {
        *b = 0.2 * c as f64 - 0.1;
    }
    for net in [&mut p.branch, &mut p.trunk] {
        for (l, b) in net.biases.iter_mut().enumerate() {
            for (k, v) in b.iter_mut().enumerate() {
                *v = 0.1 * (2.0 * uniform_f64(seed, k as u64, 70 + l as u32) - 1.0);
            }
        }
    }
    p
}

fn data(case: &Case, seed: u64) -> AlignedData {
    let a = &case.arch;
    AlignedData {
        u: random_matrix(case.functions, a.sensors(), seed, 1),
        y: random_matrix(case.points, a.dims(), seed, 2),
        g: random_matrix(case.functions, case.points * a.outputs, seed, 3).data,
        outputs: a.outputs,
    }
}

/// Rows `rows` of `m`, in that order.
fn pick(m: &Matrix, rows: &[usize]) -> Matrix {
    Matrix {
        rows: rows.len(),
        cols: m.cols,
        data: rows
            .iter()
            .flat_map(|&r| m.data[r * m.cols..(r + 1) * m.cols].to_vec())
            .collect(),
    }
}

/// The rows `fs` of `d`'s functions and `ps` of its points, as a data set of their own.
fn subset(d: &AlignedData, fs: &[usize], ps: &[usize]) -> AlignedData {
    let k = d.outputs;
    let mut g = Vec::new();
    for &f in fs {
        for &p in ps {
            let at = (f * d.points() + p) * k;
            g.extend_from_slice(&d.g[at..at + k]);
        }
    }
    AlignedData {
        u: pick(&d.u, fs),
        y: pick(&d.y, ps),
        g,
        outputs: k,
    }
}

/// MSE and its gradient from the twin.
fn twin(a: &DeepONetArch, p: &DeepONetParams, d: &AlignedData) -> (f64, DeepONetParams) {
    let fwd = forward_aligned(a, p, &d.u, &d.y);
    let n = d.g.len() as f64;
    let loss = fwd
        .g
        .iter()
        .zip(&d.g)
        .map(|(g, t)| (g - t).powi(2))
        .sum::<f64>()
        / n;
    let dg: Vec<f64> = fwd
        .g
        .iter()
        .zip(&d.g)
        .map(|(g, t)| 2.0 * (g - t) / n)
        .collect();
    (loss, backward_aligned(a, p, &fwd, &d.u, &d.y, &dg))
}

/// Every tensor within 2e-4 of its scale; a fixed encoding's B has no gradient.
fn assert_gradients(name: &str, a: &DeepONetArch, got: &DeepONetParams, want: &DeepONetParams) {
    let fixed = |net: &str| {
        let arch = if net == "branch" { &a.branch } else { &a.trunk };
        arch.encoding.as_ref().is_some_and(|e| !e.trainable)
    };
    for ((tensor, _, g), (_, _, w)) in got.named().iter().zip(want.named()) {
        let net = tensor.split('.').next().unwrap_or("");
        if tensor.ends_with("encoding.B") && fixed(net) {
            assert!(g.iter().all(|v| *v == 0.0), "{name}: {tensor} is fixed");
        } else {
            assert_close(&format!("{name} {tensor}"), g, w, 2e-4);
        }
    }
}

fn loss_and_gradients_match_the_twin(i: usize) {
    loss_and_gradients_match_the_twin_on(gpu(), i)
}

/// The kernels GPUs run (storage parameters shared through subgroup broadcasts, forward
/// passes in blocks, tasks of eight outputs, workgroups of 64) against the twin on this
/// adapter: on a CPU adapter the other tests run the forms made for it.
#[test]
fn gpu_kernel_forms_match_the_twin() {
    let ctx = common::gpu_with_gpu_forms();
    for i in [0, 1, 4] {
        loss_and_gradients_match_the_twin_on(ctx, i);
        let case = &cases()[i];
        let p = params(&case.arch, 50 + i as u64);
        let d = data(case, 60 + i as u64);
        let net = DeepONetNet::new(ctx, &case.arch, &p).unwrap();
        assert!(!net.layout.branch.uniform_params);
        let got = net.predict(ctx, &d.u, &d.y).unwrap();
        let want = forward_aligned(&case.arch, &p, &d.u, &d.y).g;
        assert_close(&format!("gpu forms, case {i}"), &got, &want, 2e-5);
    }
}

/// Past one uniform binding (the antiderivative network's 10 output quads for 432 padded
/// functions: 69 KB) the combine kernel reads the branch's outputs from the scratch again,
/// and the loss, gradients and predictions still match the twin.
#[test]
fn output_copies_fall_back_past_one_uniform_binding() {
    let ctx = gpu();
    let case = Case {
        functions: 420,
        points: 9,
        ..cases().swap_remove(0)
    };
    let (a, p, d) = (&case.arch, params(&case.arch, 70), data(&case, 71));
    let trainer = DeepONetTrainer::new(ctx, a, &p, &d, DeepONetTrainConfig::default()).unwrap();
    assert_eq!(trainer.net.layout.output_copies, 0);
    let (loss, grad) = trainer.gradients(ctx).unwrap();
    let (want_loss, want) = twin(a, &p, &d);
    assert!(
        (loss - want_loss).abs() <= 2e-5 * want_loss,
        "loss {loss} vs {want_loss}"
    );
    assert_gradients("420 functions", a, &grad, &want);
    let got = trainer.net.predict(ctx, &d.u, &d.y).unwrap();
    let want = forward_aligned(a, &p, &d.u, &d.y).g;
    assert_close("420 functions", &got, &want, 2e-5);
}

fn loss_and_gradients_match_the_twin_on(ctx: &GpuContext, i: usize) {
    {
        let case = &cases()[i];
        let a = &case.arch;
        let p = params(a, 10 + i as u64);
        let d = data(case, 20 + i as u64);
        let trainer = DeepONetTrainer::new(ctx, a, &p, &d, DeepONetTrainConfig::default()).unwrap();
        let name = format!("case {i}");
        // Every case's outputs fit the uniform copies CPU adapters take
        // (DeepONetLayout::output_copies); the GPU forms read them from the scratch.
        let copies = trainer.net.layout.output_copies > 0;
        assert_eq!(copies, ctx.cpu_forms(), "{name}: output copies");
        let (loss, grad) = trainer.gradients(ctx).unwrap();
        let (want_loss, want) = twin(a, &p, &d);
        assert!(
            (loss - want_loss).abs() <= 2e-5 * want_loss,
            "{name}: loss {loss} vs {want_loss}"
        );
        assert_gradients(&name, a, &grad, &want);
    }
}

/// With batches of functions and points, a step with learning rate 0 leaves the
/// parameters alone, and the gradients are those of the batch it drew.
fn minibatch_gradients_are_the_drawn_batch(i: usize) {
    let ctx = gpu();
    {
        let case = &cases()[i];
        let a = &case.arch;
        let p = params(a, 30 + i as u64);
        let d = data(case, 40 + i as u64);
        let config = DeepONetTrainConfig {
            optimizer: Optimizer {
                lr: 0.0,
                ..Optimizer::default()
            },
            functions_per_batch: Some(case.functions / 3),
            points_per_batch: Some(case.points / 2),
            samples_per_batch: None,
            seed: 5,
        };
        let mut trainer = DeepONetTrainer::new(ctx, a, &p, &d, config).unwrap();
        let mut seen = vec![false; case.functions];
        for step in 0..4 {
            trainer.step(ctx);
            let (fs, ps) = trainer.batch_rows();
            assert_eq!((fs.len(), ps.len()), (case.functions / 3, case.points / 2));
            fs.iter().for_each(|&f| seen[f] = true);
            if step == 0 || step == 3 {
                let (loss, grad) = trainer.gradients(ctx).unwrap();
                let (want_loss, want) = twin(a, &p, &subset(&d, &fs, &ps));
                let name = format!("case {i} step {step}");
                assert!(
                    (loss - want_loss).abs() <= 2e-5 * want_loss,
                    "{name}: loss {loss} vs {want_loss}"
                );
                assert_gradients(&name, a, &grad, &want);
            }
        }
        // Three batches of a third make an epoch; the fourth starts a new permutation.
        assert!(seen.iter().filter(|s| **s).count() >= 3 * (case.functions / 3));
    }
}

fn predictions_match_the_twin(i: usize) {
    let ctx = gpu();
    {
        let case = &cases()[i];
        let a = &case.arch;
        let p = params(a, 50 + i as u64);
        let d = data(case, 60 + i as u64);
        let net = DeepONetNet::new(ctx, a, &p).unwrap();
        let got = net.predict(ctx, &d.u, &d.y).unwrap();
        let want = forward_aligned(a, &p, &d.u, &d.y).g;
        assert_close(&format!("case {i}"), &got, &want, 2e-5);
        // One function: the low-latency path is the same computation.
        let one = Matrix {
            rows: 1,
            cols: d.u.cols,
            data: d.u.data[..d.u.cols].to_vec(),
        };
        let got = net.predict(ctx, &one, &d.y).unwrap();
        assert_close(
            &format!("case {i}, one function"),
            &got,
            &want[..case.points * a.outputs],
            2e-5,
        );
    }
}

/// Five Adam steps on minibatches, replayed by the twin on the same batches: the
/// parameters agree to a small fraction of the learning rate (each Adam step moves a
/// parameter by about lr, and f32 rounding of the gradients changes that by far less).
#[test]
fn adam_steps_are_replayed_by_the_twin() {
    let ctx = gpu();
    let case = &cases()[1];
    let a = &case.arch;
    let p0 = params(a, 80);
    let d = data(case, 81);
    let optimizer = Optimizer {
        lr: 1e-2,
        weight_decay: 0.01,
        ..Optimizer::default()
    };
    let config = DeepONetTrainConfig {
        optimizer,
        functions_per_batch: Some(32),
        points_per_batch: Some(40),
        samples_per_batch: None,
        seed: 9,
    };
    let mut trainer = DeepONetTrainer::new(ctx, a, &p0, &d, config).unwrap();
    let mut p = p0.clone();
    let n = p.flat().len();
    let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
    for t in 1..=5 {
        trainer.step(ctx);
        let (fs, ps) = trainer.batch_rows();
        let (_, g) = twin(a, &p, &subset(&d, &fs, &ps));
        let mut x = p.flat();
        optimizer.apply(t, &mut x, &g.flat(), &mut m, &mut v);
        p.set_flat(&x);
    }
    let got = trainer.params(ctx).unwrap().flat();
    let worst = got
        .iter()
        .zip(p.flat())
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max);
    assert!(worst < 0.01 * optimizer.lr, "worst {worst:e}");
    assert!(
        got.iter()
            .zip(p0.flat())
            .any(|(g, w)| (g - w).abs() > 2.0 * optimizer.lr),
        "the parameters moved"
    );
}

/// A run stopped after some steps, saved to a file and resumed takes exactly the steps the
/// uninterrupted run takes: the same parameters and Adam moments to the bit, with
/// minibatches whose epochs end inside each part.
#[test]
fn a_resumed_run_takes_the_same_steps() {
    let ctx = gpu();
    let case = &cases()[1];
    let a = &case.arch;
    let p0 = params(a, 90);
    let d = data(case, 91);
    let config = DeepONetTrainConfig {
        optimizer: Optimizer {
            lr: 1e-2,
            ..Optimizer::default()
        },
        functions_per_batch: Some(30),
        points_per_batch: Some(35),
        samples_per_batch: None,
        seed: 4,
    };
    let mut straight = DeepONetTrainer::new(ctx, a, &p0, &d, config.clone()).unwrap();
    straight.run(ctx, 11);
    let mut first = DeepONetTrainer::new(ctx, a, &p0, &d, config.clone()).unwrap();
    first.run(ctx, 5);
    let saved = first.state(ctx).unwrap();
    assert_eq!(saved.step, 5);
    let path = std::env::temp_dir().join(format!("resume-{}.safetensors", std::process::id()));
    std::fs::write(&path, save_deeponet_state_bytes(a, &saved, &[]).unwrap()).unwrap();
    let (arch, loaded, _) = load_deeponet_state(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(&arch, a);
    assert_eq!(loaded, saved, "the state survives the file");
    let mut resumed = DeepONetTrainer::resume(ctx, a, &loaded, &d, config).unwrap();
    resumed.run(ctx, 6);
    let (want, got) = (straight.state(ctx).unwrap(), resumed.state(ctx).unwrap());
    assert_eq!(got.step, 11);
    assert_eq!(got.samplers, want.samplers);
    assert!(want.samplers[0].0 >= 3, "epochs ended: {:?}", want.samplers);
    assert_eq!(got.params.flat(), want.params.flat());
    for k in 0..2 {
        assert_eq!(got.moments[k].flat(), want.moments[k].flat());
    }
    assert!(
        got.params.flat() != saved.params.flat(),
        "the resumed run moved"
    );
}

/// DeepXDE's aligned antiderivative example with its set-up (branch [100, 40, 40], trunk
/// [1, 40, 40], ReLU, Glorot init, Adam 1e-3, 10,000 full-batch iterations on the
/// published 150 functions). DeepXDE reaches 1.1–1.5% mean relative L2 on its test set;
/// ours is 1,000 functions drawn like the training functions (GRF, length scale 0.5: see
/// tests/deeponet_data.rs) with left-Riemann labels. Seen here: 1.23%.
#[test]
fn antiderivative_reaches_deepxde_accuracy() {
    let ctx = gpu();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/antiderivative_aligned_train.npz"
    );
    let train = read_aligned(path.as_ref()).unwrap();
    let test = antiderivative(100, 0.5, 1000, 2).unwrap();
    let arch = antiderivative_arch(100);
    let start = DeepONetParams::init(&arch, Init::Glorot, 1).unwrap();
    let mut trainer =
        DeepONetTrainer::new(ctx, &arch, &start, &train, DeepONetTrainConfig::default()).unwrap();
    let before = trainer.net.evaluate(ctx, &test).unwrap();
    trainer.run(ctx, 10_000);
    let after = trainer.net.evaluate(ctx, &test).unwrap();
    assert!(before.mean_relative_l2 > 0.5, "{before:?}");
    assert!(after.mean_relative_l2 <= 0.015, "{after:?}");
    assert!(trainer.loss(ctx).unwrap() < 1e-4);
}

/// Unaligned samples for `case`: as many as its functions and points together, with the
/// first function and location repeated further down.
fn unaligned(case: &Case, seed: u64) -> UnalignedData {
    let a = &case.arch;
    let n = case.functions + case.points;
    let mut d = UnalignedData {
        u: random_matrix(n, a.sensors(), seed, 1),
        y: random_matrix(n, a.dims(), seed, 2),
        g: random_matrix(n, a.outputs, seed, 3),
    };
    let (m, dims) = (a.sensors(), a.dims());
    let (u0, y0) = (d.u.data[..m].to_vec(), d.y.data[..dims].to_vec());
    d.u.data[(n - 1) * m..].copy_from_slice(&u0);
    d.y.data[(n - 2) * dims..(n - 1) * dims].copy_from_slice(&y0);
    d
}

fn unaligned_rows(d: &UnalignedData, rows: &[usize]) -> UnalignedData {
    UnalignedData {
        u: pick(&d.u, rows),
        y: pick(&d.y, rows),
        g: pick(&d.g, rows),
    }
}

/// MSE over samples and outputs and its gradient from the twin.
fn unaligned_twin(
    a: &DeepONetArch,
    p: &DeepONetParams,
    d: &UnalignedData,
) -> (f64, DeepONetParams) {
    let fwd = forward_unaligned(a, p, &d.u, &d.y);
    let n = d.g.data.len() as f64;
    let e: Vec<f64> = fwd
        .g
        .data
        .iter()
        .zip(&d.g.data)
        .map(|(g, t)| g - t)
        .collect();
    let loss = e.iter().map(|e| e * e).sum::<f64>() / n;
    let dg: Vec<f64> = e.iter().map(|e| 2.0 * e / n).collect();
    (loss, backward_unaligned(a, p, &fwd, &d.u, &d.y, &dg))
}

/// Unaligned data, all samples in one batch, then minibatches of samples: the loss and
/// every gradient against the twin on the samples drawn (the branch and the trunk see the
/// same samples in the same order).
fn unaligned_loss_and_gradients_match_the_twin(i: usize) {
    let ctx = gpu();
    {
        let case = &cases()[i];
        let a = &case.arch;
        let p = params(a, 110 + i as u64);
        let d = unaligned(case, 120 + i as u64);
        let name = format!("unaligned case {i}");
        let trainer = DeepONetTrainer::new(ctx, a, &p, &d, DeepONetTrainConfig::default()).unwrap();
        let (loss, grad) = trainer.gradients(ctx).unwrap();
        let (want_loss, want) = unaligned_twin(a, &p, &d);
        assert!(
            (loss - want_loss).abs() <= 2e-5 * want_loss,
            "{name}: loss {loss} vs {want_loss}"
        );
        assert_gradients(&name, a, &grad, &want);

        let config = DeepONetTrainConfig {
            optimizer: Optimizer {
                lr: 0.0,
                ..Optimizer::default()
            },
            samples_per_batch: Some(d.samples() / 3),
            seed: 6,
            ..DeepONetTrainConfig::default()
        };
        let mut trainer = DeepONetTrainer::new(ctx, a, &p, &d, config).unwrap();
        for step in 0..4 {
            trainer.step(ctx);
            let (fs, ps) = trainer.batch_rows();
            assert_eq!(fs, ps, "{name}: the nets see the same samples");
            assert_eq!(fs.len(), d.samples() / 3);
            if step == 3 {
                let (loss, grad) = trainer.gradients(ctx).unwrap();
                let (want_loss, want) = unaligned_twin(a, &p, &unaligned_rows(&d, &fs));
                assert!(
                    (loss - want_loss).abs() <= 2e-5 * want_loss,
                    "{name} step {step}: loss {loss} vs {want_loss}"
                );
                assert_gradients(&format!("{name} step {step}"), a, &grad, &want);
            }
        }
    }
}

fn unaligned_predictions_match_the_twin(i: usize) {
    let ctx = gpu();
    let case = &cases()[i];
    let a = &case.arch;
    let p = params(a, 130 + i as u64);
    let d = unaligned(case, 140 + i as u64);
    let net = DeepONetNet::new(ctx, a, &p).unwrap();
    let got = net.predict_samples(ctx, &d.u, &d.y).unwrap();
    let want = forward_unaligned(a, &p, &d.u, &d.y).g.data;
    assert_close(&format!("unaligned case {i}"), &got, &want, 2e-5);
    // All the samples take the wide kernel forms on CPU adapters, a few the narrow ones
    // (`sized_for`); both sum in the same order, so a sample's prediction is the same
    // bits whatever comes along with it.
    // (Case 3's 95 samples stay narrow.)
    let few = 5;
    if 2 * d.samples() >= WIDE_FROM_ROWS {
        let head = unaligned_rows(&d, &(0..few).collect::<Vec<_>>());
        let alone = net.predict_samples(ctx, &head.u, &head.y).unwrap();
        assert_eq!(
            alone,
            got[..few * a.outputs],
            "unaligned case {i}: the first {few} samples"
        );
    }
}

/// Mismatched rows are refused with a message, not a panic.
#[test]
fn unaligned_predictions_refuse_mismatched_rows() {
    let ctx = gpu();
    let case = &cases()[0];
    let d = unaligned(case, 1);
    let net = DeepONetNet::new(ctx, &case.arch, &params(&case.arch, 1)).unwrap();
    let e = net
        .predict_samples(ctx, &d.u, &d.y.row_range(0, 3))
        .unwrap_err()
        .to_string();
    assert!(e.contains("pair each function with one location"), "{e}");
}

/// Aligned options for unaligned data (and the reverse) are refused.
#[test]
fn batch_options_must_fit_the_layout() {
    let ctx = gpu();
    let case = &cases()[2];
    let a = &case.arch;
    let p = params(a, 3);
    let config = DeepONetTrainConfig {
        functions_per_batch: Some(4),
        ..DeepONetTrainConfig::default()
    };
    let e = DeepONetTrainer::new(ctx, a, &p, &unaligned(case, 4), config)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("unaligned data takes samples per batch"), "{e}");
    let config = DeepONetTrainConfig {
        samples_per_batch: Some(4),
        ..DeepONetTrainConfig::default()
    };
    let e = DeepONetTrainer::new(ctx, a, &p, &data(case, 5), config)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("aligned data takes functions and points per batch"),
        "{e}"
    );
}

/// Without subgroups (every lane loading the weights and the other net's outputs itself)
/// DeepONet's kernels give the same bits as with them: the loss and gradients on aligned
/// and unaligned data, predictions, and Adam steps on minibatches.
#[test]
fn kernels_without_subgroups_give_the_same_bits() {
    let (with, without) = (gpu(), common::gpu_without_subgroups());
    assert!(!without.has_subgroups());
    for (i, case) in cases().iter().enumerate().take(3) {
        let a = &case.arch;
        let p = params(a, 130 + i as u64);
        let d = data(case, 140 + i as u64);
        let u = unaligned(case, 150 + i as u64);
        let aligned = |ctx| {
            let t = DeepONetTrainer::new(ctx, a, &p, &d, DeepONetTrainConfig::default()).unwrap();
            let (loss, g) = t.gradients(ctx).unwrap();
            (loss.to_bits(), g.flat())
        };
        assert_eq!(aligned(with), aligned(without), "case {i}: aligned");
        let unaligned = |ctx| {
            let t = DeepONetTrainer::new(ctx, a, &p, &u, DeepONetTrainConfig::default()).unwrap();
            let (loss, g) = t.gradients(ctx).unwrap();
            (loss.to_bits(), g.flat())
        };
        assert_eq!(unaligned(with), unaligned(without), "case {i}: unaligned");
        let predict = |ctx| {
            DeepONetNet::new(ctx, a, &p)
                .unwrap()
                .predict(ctx, &d.u, &d.y)
                .unwrap()
        };
        assert_eq!(predict(with), predict(without), "case {i}: predictions");
        let steps = |ctx| {
            let config = DeepONetTrainConfig {
                functions_per_batch: Some(case.functions / 2),
                points_per_batch: Some(case.points / 2),
                seed: 4,
                ..DeepONetTrainConfig::default()
            };
            let mut t = DeepONetTrainer::new(ctx, a, &p, &d, config).unwrap();
            for _ in 0..3 {
                t.step(ctx);
            }
            t.params(ctx).unwrap().flat()
        };
        let after = steps(with);
        assert_eq!(after, steps(without), "case {i}: Adam steps");
        assert_ne!(after, p.flat(), "case {i}: the steps moved the parameters");
    }
}
