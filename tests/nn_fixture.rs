//! The PyTorch fixture (`tests/data/torch_mlp_fixture*.safetensors`): loading it and
//! evaluating its inputs reproduces its outputs, its loss and its gradients; a checkpoint
//! written here has the same names, shapes and metadata, and reads back unchanged.

use phaseflow::nn::checkpoint::read_tensors;
use phaseflow::nn::mlp::gpu::Kernels;
use phaseflow::nn::{GpuNet, Matrix, Optimizer, Trainer, load, mlp::cpu, save};
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn matrix(t: &(Vec<usize>, Vec<f64>)) -> Matrix {
    Matrix {
        rows: t.0[0],
        cols: t.0[1],
        data: t.1.clone(),
    }
}

/// The fixture's numbers were computed in f64 from the stored f32 weights; the CPU twin
/// does the same arithmetic in a possibly different summation order: 1e-12 relative for
/// outputs and loss, 1e-10 for gradients (sums over 256 samples).
#[test]
fn the_pytorch_fixture_evaluates_to_its_outputs_and_gradients() {
    let (arch, params) = load(&data("torch_mlp_fixture.safetensors")).unwrap();
    assert_eq!(arch.layers, vec![64, 64, 64, 3]);
    assert_eq!(arch.encoding.as_ref().unwrap().features, 32);
    let (io, _) = read_tensors(&data("torch_mlp_fixture_io.safetensors")).unwrap();
    let x = matrix(&io["inputs_f64"]);
    let want = matrix(&io["outputs_f64"]);
    let fwd = cpu::forward(&arch, &params, &x);
    let scale = want.data.iter().map(|v| v.abs()).fold(0.0, f64::max);
    for (g, w) in fwd.y.data.iter().zip(&want.data) {
        assert!((g - w).abs() <= 1e-12 * scale, "{g} vs {w}");
    }
    // loss = mean of y^2: the MSE against zero.
    let zero = Matrix::zeros(want.rows, want.cols);
    let (loss, dy) = cpu::mse(&fwd.y, &zero);
    let want_loss = io["loss"].1[0];
    assert!(
        (loss - want_loss).abs() <= 1e-12 * want_loss,
        "{loss} vs {want_loss}"
    );
    let grads = cpu::backward(&arch, &params, &fwd, &x, &dy);
    for (name, shape, values) in grads.named() {
        let (want_shape, want) = &io[&format!("grad.{name}")];
        assert_eq!(&shape, want_shape, "{name}");
        let scale = want.iter().map(|v| v.abs()).fold(0.0, f64::max);
        for (g, w) in values.iter().zip(want) {
            assert!((g - w).abs() <= 1e-10 * scale, "{name}: {g} vs {w}");
        }
    }
}

#[test]
fn checkpoints_round_trip_in_pytorch_layout() {
    let fixture = data("torch_mlp_fixture.safetensors");
    let (arch, params) = load(&fixture).unwrap();
    let dir = std::env::temp_dir().join(format!("phaseflow-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mlp.safetensors");
    save(&path, &arch, &params, &[("note", "round trip".into())]).unwrap();
    let (arch2, params2) = load(&path).unwrap();
    assert_eq!(arch, arch2);
    // Stored as f32, as PyTorch stores them: the fixture's values come back exactly.
    assert_eq!(params, params2);
    let (ours, meta) = read_tensors(&path).unwrap();
    let (theirs, _) = read_tensors(&fixture).unwrap();
    let mut a: Vec<_> = ours.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
    let mut b: Vec<_> = theirs
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "same names and shapes as PyTorch's state_dict");
    assert!(meta["architecture"].contains("\"fourier_mlp\""));
    assert_eq!(meta["note"], "round trip");
    std::fs::remove_dir_all(&dir).unwrap();
}

mod common;

/// The fixture on the GPU (f32), with both forms of the matrix kernels: outputs agree with
/// the f64 reference to the precision of f32 arithmetic. Error budget: z = 2π x·B reaches
/// ~|60| here, so cos/sin of an f32 argument carry ~60 × 6e-8 ≈ 4e-6 absolute; 64-term dot
/// products add ~64 × 6e-8 relative per layer, and tanh does not amplify. Measured 1.8e-6
/// absolute; bound 2e-5.
#[test]
fn the_fixture_on_the_gpu_matches_its_outputs() {
    let ctx = common::gpu();
    let (arch, params) = load(&data("torch_mlp_fixture.safetensors")).unwrap();
    let (io, _) = read_tensors(&data("torch_mlp_fixture_io.safetensors")).unwrap();
    let x = matrix(&io["inputs"]);
    let want = matrix(&io["outputs_f64"]);
    for kernels in [Kernels::Tiled, Kernels::Direct] {
        let net = GpuNet::with_kernels(ctx, &arch, &params, kernels).unwrap();
        let batch = net.batch(ctx, x.rows);
        let got = net.forward(ctx, &batch, &x).unwrap();
        let worst = got
            .data
            .iter()
            .zip(&want.data)
            .map(|(g, w)| (g - w).abs())
            .fold(0.0, f64::max);
        println!("{kernels:?}: worst {worst:e}");
        assert!(worst < 2e-5, "{kernels:?}: {worst:e}");
    }
}

/// The fixture's gradients on the GPU, with both kernel forms: the loss mean(y²) and the
/// gradient of every parameter, B included, against the f64 reference. f32 sums over 256
/// samples of products of ~1e-6-accurate factors: measured ≤ 5.2e-6 of each tensor's
/// largest entry; bound 1e-4.
#[test]
fn the_fixture_gradients_on_the_gpu() {
    let ctx = common::gpu();
    let (mut arch, params) = load(&data("torch_mlp_fixture.safetensors")).unwrap();
    arch.encoding.as_mut().unwrap().trainable = true;
    let (io, _) = read_tensors(&data("torch_mlp_fixture_io.safetensors")).unwrap();
    let x = matrix(&io["inputs"]);
    let zero = Matrix::zeros(x.rows, 3);
    let want_loss = io["loss"].1[0];
    for kernels in [Kernels::Tiled, Kernels::Direct] {
        let net = GpuNet::with_kernels(ctx, &arch, &params, kernels).unwrap();
        let trainer = Trainer::new(ctx, net, &x, &zero, Optimizer::default()).unwrap();
        let (loss, grads) = trainer.gradients(ctx).unwrap();
        assert!(
            (loss - want_loss).abs() < 1e-5 * want_loss,
            "{loss} vs {want_loss}"
        );
        for (name, _, values) in grads.named() {
            let want = &io[&format!("grad.{name}")].1;
            let scale = want.iter().map(|v| v.abs()).fold(0.0, f64::max);
            let worst = values
                .iter()
                .zip(want)
                .map(|(g, w)| (g - w).abs())
                .fold(0.0, f64::max);
            println!(
                "{kernels:?} {name}: worst {:e} of scale {scale:e}",
                worst / scale
            );
            assert!(
                worst <= 1e-4 * scale,
                "{kernels:?} {name}: {worst:e} vs {scale:e}"
            );
        }
    }
}
