//! The fold run by itself on given saves, outside a solver run: what the self-test and
//! the tests compare with the twin.

use super::{FoldData, FoldOutput, NormalFold, twin};
use crate::gpu::GpuContext;
use crate::gpu::layout::buffer;
use crate::gpu::readback::read_bytes;
use crate::ode::device::Precision;
use crate::ode::error::SimError;
use crate::ode::stage::DeviceStage;

/// Folds `saves` ([slot][trajectory][component] for `n` trajectories, the states then
/// their sensitivities) on the device, `per_batch` slots at a time as one chunk in rows
/// wider than the chunk (as a run's last chunk is); returns the output as
/// `DeviceStage::output` holds it and the row length.
pub fn fold_saves(
    ctx: &GpuContext,
    data: FoldData,
    output: FoldOutput,
    precision: Precision,
    saves: &[f64],
    (n, per_batch): (usize, usize),
) -> Result<(Vec<f64>, usize), SimError> {
    use wgpu::BufferUsages as U;
    let width = data.dim * (1 + data.n_fit);
    let n_slots = data.slot_observation.len();
    let per_batch = per_batch.clamp(1, n_slots.max(1));
    let stride = n + 5;
    let saved = buffer(
        ctx,
        "fold check saves",
        (per_batch * stride * width) as u64 * precision.bytes(),
        U::STORAGE | U::COPY_DST,
    );
    let mut fold = NormalFold::new(data, output);
    fold.prepare(ctx, &saved, precision, stride, per_batch)?;
    let chunk = 0..n;
    fold.upload(ctx, &chunk);
    let batches: Vec<_> = (0..n_slots)
        .step_by(per_batch)
        .map(|s| s..(s + per_batch).min(n_slots))
        .collect();
    for (b, slots) in batches.iter().enumerate() {
        let mut rows = vec![0.0; slots.len() * stride * width];
        for (s_local, s) in slots.clone().enumerate() {
            for j in 0..n {
                let from = (s * n + j) * width;
                let to = (s_local * stride + j) * width;
                rows[to..to + width].copy_from_slice(&saves[from..from + width]);
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
    let bytes = read_bytes(ctx, fold.output(), fold.output_bytes(stride, n))?;
    ctx.check_errors()?;
    let out = bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    Ok((out, stride))
}

/// A random fold problem: `n` trajectories, `n_slots` save slots of which three in four
/// hold an observation, a fifth of the observed values missing, random weights (the last
/// state's 0 where there are several), saves in [-2, 2] rounded to `precision`.
pub fn random_case(
    seed: u64,
    (n, n_slots): (usize, usize),
    (dim, n_fit): (usize, usize),
    precision: Precision,
) -> (FoldData, Vec<f64>) {
    use crate::rng::uniform_f64;
    let u = |k: usize, stream: u32| uniform_f64(seed, k as u64, stream);
    let mut slot_observation = Vec::with_capacity(n_slots);
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
    let saves = (0..n_slots * n * dim * (1 + n_fit))
        .map(|k| {
            let v = 4.0 * u(k, 4) - 2.0;
            match precision {
                Precision::F32 => v as f32 as f64,
                Precision::F64 => v,
            }
        })
        .collect();
    let data = FoldData {
        dim,
        n_fit,
        values,
        n_obs,
        weights,
        slot_observation,
    };
    (data, saves)
}

/// The worst deviation of a device output (`out`, rows `stride` long) from the twin, each
/// term's difference over its magnitude (`twin::all_terms` of the absolute values).
/// `Groups` output compares every trajectory's cost and every group's terms.
pub fn worst_deviation(
    data: &FoldData,
    saves: &[f64],
    n: usize,
    output: FoldOutput,
    (out, stride): (&[f64], usize),
) -> f64 {
    let want = twin::all_terms(data, saves, n, false);
    let magnitude = twin::all_terms(data, saves, n, true);
    let terms = twin::terms(data.n_fit);
    let off = |got: f64, want: f64, scale: f64| {
        if got.is_nan() || want.is_nan() {
            f64::INFINITY
        } else {
            (got - want).abs() / scale.max(f64::MIN_POSITIVE)
        }
    };
    let mut worst: f64 = 0.0;
    match output {
        FoldOutput::PerTrajectory => {
            for j in 0..n {
                for t in 0..terms {
                    worst = worst.max(off(out[t * stride + j], want[j][t], magnitude[j][t]));
                }
            }
        }
        FoldOutput::Groups => {
            let cost = terms - 1;
            for j in 0..n {
                worst = worst.max(off(out[j], want[j][cost], magnitude[j][cost]));
            }
            let sums = twin::group_sums(&want, terms);
            let scale = twin::group_sums(&magnitude, terms);
            for (g, group) in sums.iter().enumerate() {
                for t in 0..terms {
                    worst = worst.max(off(out[stride + g * terms + t], group[t], scale[g][t]));
                }
            }
        }
    }
    worst
}
