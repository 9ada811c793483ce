//! The CPU twin of `fold_normals.wgsl`, in f64 and in the kernel's order: each
//! trajectory's terms summed over the observed values in slot and state order, and each
//! group's terms added as the kernel's binary tree of 64 lanes.

use super::data::FoldData;

/// Trajectories per group of a shared fit's device sums (the kernel's workgroup).
pub const GROUP: usize = 64;

/// Terms of a fold over `n_fit` quantities: JᵀWJ's upper triangle, JᵀWr, the cost.
pub fn terms(n_fit: usize) -> usize {
    n_fit * (n_fit + 1) / 2 + n_fit + 1
}

/// Adds one observed value to a trajectory's `acc` (`terms(n_fit)` long): residual
/// `r` = √w (u − y) and gradient row `row` = √w S.
pub fn add(acc: &mut [f64], r: f64, row: &[f64]) {
    let n_fit = row.len();
    let mut t = 0;
    for a in 0..n_fit {
        for b in a..n_fit {
            acc[t] += row[a] * row[b];
            t += 1;
        }
    }
    for a in 0..n_fit {
        acc[t + a] += row[a] * r;
    }
    acc[t + n_fit] += 0.5 * r * r;
}

/// One trajectory's terms: `saved(slot, component)` its saves (the states, then
/// S[state][quantity]), `observation[slot]` the observation a save slot holds,
/// `value(o, i)` the observed value of state `i` at observation `o` (`None` where it does
/// not count), `sqrt_weight[i]` √w of state `i`.
pub fn trajectory(
    n_fit: usize,
    sqrt_weight: &[f64],
    observation: &[Option<usize>],
    saved: impl Fn(usize, usize) -> f64,
    value: impl Fn(usize, usize) -> Option<f64>,
) -> Vec<f64> {
    let dim = sqrt_weight.len();
    let mut acc = vec![0.0; terms(n_fit)];
    let mut row = vec![0.0; n_fit];
    for (slot, o) in observation.iter().enumerate() {
        let Some(o) = *o else { continue };
        for (i, &sw) in sqrt_weight.iter().enumerate() {
            let Some(y) = value(o, i) else { continue };
            let r = sw * (saved(slot, i) - y);
            for (k, x) in row.iter_mut().enumerate() {
                *x = sw * saved(slot, dim + i * n_fit + k);
            }
            add(&mut acc, r, &row);
        }
    }
    acc
}

/// The sum of up to `GROUP` values (the rest zero) as the kernel's tree adds them: lane
/// l takes lane l + h for h = 32, 16, …, 1.
pub fn tree_sum(values: &[f64]) -> f64 {
    assert!(values.len() <= GROUP);
    let mut lanes = [0.0; GROUP];
    lanes[..values.len()].copy_from_slice(values);
    let mut half = GROUP / 2;
    while half > 0 {
        for l in 0..half {
            lanes[l] += lanes[l + half];
        }
        half /= 2;
    }
    lanes[0]
}

/// Each group's terms from its trajectories' (`per_trajectory[j]`, groups of `GROUP`
/// consecutive trajectories).
pub fn group_sums(per_trajectory: &[Vec<f64>], terms: usize) -> Vec<Vec<f64>> {
    per_trajectory
        .chunks(GROUP)
        .map(|group| {
            (0..terms)
                .map(|t| tree_sum(&group.iter().map(|acc| acc[t]).collect::<Vec<_>>()))
                .collect()
        })
        .collect()
}

/// Every trajectory's terms for saves [slot][trajectory][component] of `n` trajectories
/// over the observations of `data`; with `magnitude`, the same fold of |u| and −|y|,
/// which sums the absolute values of every product (a bound on each term's rounding).
pub fn all_terms(data: &FoldData, saves: &[f64], n: usize, magnitude: bool) -> Vec<Vec<f64>> {
    let width = data.dim * (1 + data.n_fit);
    let sqrt_w: Vec<f64> = data.weights.iter().map(|w| w.max(0.0).sqrt()).collect();
    (0..n)
        .map(|j| {
            trajectory(
                data.n_fit,
                &sqrt_w,
                &data.slot_observation,
                |s, c| {
                    let v = saves[(s * n + j) * width + c];
                    if magnitude { v.abs() } else { v }
                },
                |o, i| {
                    data.value(j, o, i)
                        .map(|y| if magnitude { -y.abs() } else { y })
                },
            )
        })
        .collect()
}
