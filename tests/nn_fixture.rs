//! The PyTorch fixture (`../shared/data/torch_mlp_fixture*.safetensors`): loading it and
//! evaluating its inputs reproduces its outputs, its loss and its gradients; a checkpoint
//! written here has the same names, shapes and metadata, and reads back unchanged.

use phaseflow::nn::checkpoint::read_tensors;
use phaseflow::nn::{Matrix, cpu, load, save};
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
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
