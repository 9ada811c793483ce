//! The estimation fold on the device (`fold_normals.wgsl`) against its CPU twin on random
//! saves and observations, and the fits that use it against the same fits folded on the
//! host.

mod common;
use common::*;
use phaseflow::gpu::readback::read_bytes;
use phaseflow::ode::Precision;
use phaseflow::ode::estimate::fold::{FoldData, FoldOutput, GROUP, NormalFold, twin};
use phaseflow::ode::stage::DeviceStage;
use phaseflow::rng::uniform_f64;

/// A random fold problem: `n` trajectories, `n_slots` save slots of which about three in
/// four hold an observation, a fifth of the observed values missing, random weights with
/// the last state's 0 where there are several states, and random saves in [-2, 2].
struct Case {
    data: FoldData,
    n: usize,
    n_slots: usize,
    /// [slot][trajectory][component], rounded to the run's precision.
    saves: Vec<f64>,
}

fn case(n: usize, n_slots: usize, dim: usize, n_fit: usize, precision: Precision) -> Case {
    let seed = (n * 31 + dim * 7 + n_fit) as u64;
    let u = |k: usize, stream: u32| uniform_f64(seed, k as u64, stream);
    let mut slot_observation = Vec::new();
    let mut n_obs = 0;
    for s in 0..n_slots {
        if s % 4 == 1 {
            slot_observation.push(None);
        } else {
            slot_observation.push(Some(n_obs));
            n_obs += 1;
        }
    }
    let values = (0..n * n_obs * dim)
        .map(|k| {
            if u(k, 1) < 0.2 {
                f64::NAN
            } else {
                4.0 * u(k, 2) - 2.0
            }
        })
        .collect();
    let weights = (0..dim)
        .map(|i| {
            if dim > 1 && i + 1 == dim {
                0.0
            } else {
                0.5 + 1.5 * u(i, 3)
            }
        })
        .collect();
    let width = dim * (1 + n_fit);
    let saves = (0..n_slots * n * width)
        .map(|k| {
            let v = 4.0 * u(k, 4) - 2.0;
            match precision {
                Precision::F32 => v as f32 as f64,
                Precision::F64 => v,
            }
        })
        .collect();
    Case {
        data: FoldData {
            dim,
            n_fit,
            values,
            n_obs,
            weights,
            slot_observation,
        },
        n,
        n_slots,
        saves,
    }
}

/// Folds the case's saves on the device in batches of `per_batch` slots, as one chunk of
/// every trajectory in rows `stride` long; returns the output and the stride.
fn device_fold(
    c: &Case,
    output: FoldOutput,
    precision: Precision,
    per_batch: usize,
) -> (Vec<f64>, usize) {
    use wgpu::BufferUsages as U;
    let ctx = gpu();
    let (n, width) = (c.n, c.data.dim * (1 + c.data.n_fit));
    // A stride wider than the chunk, as the runner's rows are for a last, short chunk.
    let stride = n + 5;
    let saved = phaseflow::gpu::layout::buffer(
        ctx,
        "test saved",
        (per_batch * stride * width) as u64 * precision.bytes(),
        U::STORAGE | U::COPY_DST,
    );
    let data = FoldData {
        values: c.data.values.clone(),
        weights: c.data.weights.clone(),
        slot_observation: c.data.slot_observation.clone(),
        ..c.data
    };
    let mut fold = NormalFold::new(data, output);
    fold.prepare(ctx, &saved, precision, stride, per_batch)
        .unwrap_or_else(|e| panic!("{e}"));
    let chunk = 0..n;
    fold.upload(ctx, &chunk);
    let batches: Vec<_> = (0..c.n_slots)
        .step_by(per_batch)
        .map(|s| s..(s + per_batch).min(c.n_slots))
        .collect();
    for (b, slots) in batches.iter().enumerate() {
        let mut rows = vec![0.0; slots.len() * stride * width];
        for (s_local, s) in slots.clone().enumerate() {
            for j in 0..n {
                let from = (s * n + j) * width;
                let to = (s_local * stride + j) * width;
                rows[to..to + width].copy_from_slice(&c.saves[from..from + width]);
            }
        }
        let bytes: Vec<u8> = match precision {
            Precision::F32 => rows
                .iter()
                .flat_map(|&v| (v as f32).to_le_bytes())
                .collect(),
            Precision::F64 => rows.iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        ctx.queue.write_buffer(&saved, 0, &bytes);
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        fold.record(ctx, &mut enc, &chunk, slots, b == 0, b + 1 == batches.len());
        ctx.queue.submit([enc.finish()]);
    }
    let bytes = read_bytes(ctx, fold.output(), fold.output_bytes(stride, n)).unwrap();
    let out = bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (out, stride)
}

/// Every trajectory's terms from the twin, and a bound on each term's magnitude: the same
/// fold of |u| and −|y|, which sums the absolute values of every product (the cost's
/// terms are positive either way).
fn twin_terms(c: &Case) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let width = c.data.dim * (1 + c.data.n_fit);
    let sqrt_w: Vec<f64> = c.data.weights.iter().map(|w| w.sqrt()).collect();
    let fold = |j: usize, magnitude: bool| {
        twin::trajectory(
            c.data.n_fit,
            &sqrt_w,
            &c.data.slot_observation,
            |s, comp| {
                let v = c.saves[(s * c.n + j) * width + comp];
                if magnitude { v.abs() } else { v }
            },
            |o, i| {
                c.data
                    .value(j, o, i)
                    .map(|y| if magnitude { -y.abs() } else { y })
            },
        )
    };
    (
        (0..c.n).map(|j| fold(j, false)).collect(),
        (0..c.n).map(|j| fold(j, true)).collect(),
    )
}

/// Within 1e-13 of the term's magnitude: each term is a sum of at most 60 f64 products
/// (and a tree of six additions), each rounded once on either side, or not at all where
/// the device fuses a multiply-add, so the two differ by at most about 70 · 2⁻⁵³ ≈ 8e-15
/// of the sum of the absolute values.
fn assert_term(what: &str, got: f64, want: f64, magnitude: f64) {
    assert!(
        (got - want).abs() <= 1e-13 * magnitude + 1e-300,
        "{what}: device {got} vs twin {want} (magnitude {magnitude})"
    );
}

/// Each trajectory's JᵀWJ, JᵀWr and cost, and the groups' sums, against the twin: f32
/// and f64 saves, one batch and several (the sums carried between batches), a partial
/// last group, unobserved slots, missing values and a weight of 0.
#[test]
fn the_device_fold_matches_its_twin() {
    let ctx = gpu();
    if !ctx.has_f64() {
        return;
    }
    for precision in [Precision::F32, Precision::F64] {
        for (n, n_slots, dim, n_fit, per_batch) in
            [(150, 12, 3, 3, 5), (64, 9, 1, 1, 9), (70, 7, 2, 5, 3)]
        {
            let c = case(n, n_slots, dim, n_fit, precision);
            let terms = twin::terms(n_fit);
            let (want, magnitude) = twin_terms(&c);
            let what =
                |j: usize, t: usize| format!("{precision:?} {dim}x{n_fit} trajectory {j} term {t}");

            let (out, stride) = device_fold(&c, FoldOutput::PerTrajectory, precision, per_batch);
            for j in 0..n {
                for t in 0..terms {
                    assert_term(
                        &what(j, t),
                        out[t * stride + j],
                        want[j][t],
                        magnitude[j][t],
                    );
                }
                // Not a fold of nothing: every trajectory has observed values.
                assert!(want[j][terms - 1] > 0.0, "{}", what(j, terms - 1));
            }

            let (out, stride) = device_fold(&c, FoldOutput::Groups, precision, per_batch);
            for j in 0..n {
                assert_term(
                    &what(j, terms - 1),
                    out[j],
                    want[j][terms - 1],
                    magnitude[j][terms - 1],
                );
            }
            let groups = twin::group_sums(&want, terms);
            let group_magnitude = twin::group_sums(&magnitude, terms);
            assert_eq!(groups.len(), n.div_ceil(GROUP));
            for (g, sums) in groups.iter().enumerate() {
                for t in 0..terms {
                    assert_term(
                        &format!("{precision:?} {dim}x{n_fit} group {g} term {t}"),
                        out[stride + g * terms + t],
                        sums[t],
                        group_magnitude[g][t],
                    );
                }
            }
        }
    }
}
