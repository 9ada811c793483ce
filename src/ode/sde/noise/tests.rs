//! The twin's statistics and the tree's invariants. Tolerances are 5 standard errors of the
//! statistic under the hypothesis (stated per test), so a correct generator fails with
//! probability ~1e-6 per check; the seeds are fixed, so the outcome is reproducible.

use super::*;
use crate::gpu::shader::{compose, validate};
use crate::ode::codegen::real_lib;
use crate::precision::Precision;

const SEED: u64 = 0x0123_4567_89ab_cdef;

/// Standard normal CDF through erfc (Numerical Recipes' Chebyshev fit `erfcc`, fractional
/// error < 1.2e-7 everywhere: far below the KS critical value 6e-4 tested here).
fn phi(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

fn corr(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt()
}

#[test]
fn normals_have_the_standard_normal_moments_and_distribution() {
    // 10^7 draws: 1000 paths × 2500 blocks × 4 lanes.
    let mut xs = Vec::with_capacity(10_000_000);
    for path in 0..1000 {
        for block in 0..2500 {
            xs.extend(normals4(SEED, path, block, TAG_STEPS));
        }
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let m = |p: i32| xs.iter().map(|x| (x - mean).powi(p)).sum::<f64>() / n;
    let (var, m3, m4) = (m(2), m(3), m(4));
    let skew = m3 / var.powf(1.5);
    let kurt = m4 / (var * var) - 3.0;
    // Standard errors for N(0, 1): mean 1/sqrt(n) = 3.2e-4, variance sqrt(2/n) = 4.5e-4,
    // skewness sqrt(6/n) = 7.7e-4, excess kurtosis sqrt(24/n) = 1.5e-3.
    assert!(mean.abs() < 5.0 * (1.0 / n).sqrt(), "mean {mean}");
    assert!((var - 1.0).abs() < 5.0 * (2.0 / n).sqrt(), "variance {var}");
    assert!(skew.abs() < 5.0 * (6.0 / n).sqrt(), "skewness {skew}");
    assert!(
        kurt.abs() < 5.0 * (24.0 / n).sqrt(),
        "excess kurtosis {kurt}"
    );

    // Kolmogorov–Smirnov: sup |F_n - Φ| below the 0.1% critical value 1.95/sqrt(n) = 6.2e-4.
    xs.sort_by(f64::total_cmp);
    let mut d: f64 = 0.0;
    for (i, &x) in xs.iter().enumerate() {
        let f = phi(x);
        d = d.max(((i + 1) as f64 / n - f).max(f - i as f64 / n));
    }
    assert!(d < 1.95 / n.sqrt(), "KS statistic {d}");
    assert!(xs.iter().all(|x| x.is_finite()));
}

#[test]
fn neighbouring_paths_blocks_and_lanes_are_uncorrelated() {
    // 10^6 pairs each: under independence corr has standard error 1/sqrt(n) = 1e-3.
    let (paths, blocks) = (400u32, 625u32);
    let n = (paths * blocks * 4) as usize;
    let (mut a, mut next_path, mut next_block, mut other_lane) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for p in 0..paths {
        for b in 0..blocks {
            let z = normals4(SEED, p, b, TAG_STEPS);
            let zp = normals4(SEED, p + 1, b, TAG_STEPS);
            let zb = normals4(SEED, p, b + 1, TAG_STEPS);
            for lane in 0..4 {
                a.push(z[lane]);
                next_path.push(zp[lane]);
                next_block.push(zb[lane]);
                // The Box–Muller partner (0↔1, 2↔3) and the other pair's lane.
                other_lane.push(z[lane ^ if b % 2 == 0 { 1 } else { 2 }]);
            }
        }
    }
    let bound = 5.0 / (n as f64).sqrt();
    for (name, b) in [
        ("path p+1", &next_path),
        ("block b+1", &next_block),
        ("lane", &other_lane),
    ] {
        let c = corr(&a, b);
        assert!(c.abs() < bound, "{name}: corr {c} (bound {bound})");
    }
    // The step stream and the tree stream of one counter differ.
    assert_ne!(
        normals4(SEED, 3, 5, TAG_STEPS),
        normals4(SEED, 3, 5, TAG_TREE)
    );
}

#[test]
fn stream_tags_never_collide() {
    // Tree groups change bits 8..13; the low byte tells the streams apart.
    let phaf = 0x7068_6166u32;
    for g in 0..(MAX_WIENER as u32).div_ceil(4) {
        let t = tree_tag(g);
        assert_eq!(t & 0xFF, 0x32);
        assert_ne!(t, TAG_STEPS);
        assert_ne!(t, phaf);
        assert!(g == 0 || t != tree_tag(g - 1));
    }
    assert_eq!(TAG_STEPS & 0xFF, 0x31);
    // Bridge tags (events that cut a fixed step): cut and group change bits 8..17 only, so
    // their low byte 0x33 keeps them apart from the steps' and the tree's; within them,
    // every (cut, group) of a grid step has its own tag.
    let mut seen = std::collections::HashSet::new();
    for cut in 0..crate::ode::events::kernel::MAX_CUTS {
        for g in 0..(MAX_WIENER as u32).div_ceil(4) {
            let t = bridge_tag(cut, g);
            assert_eq!(t & 0xFF, 0x33);
            assert_eq!(t >> 18, TAG_BRIDGE >> 18, "no carry past bit 17");
            assert!(seen.insert(t), "cut {cut} group {g}");
        }
    }
}

#[test]
fn antithetic_pairs_are_exactly_negated() {
    let key = NoiseKey {
        seed: SEED,
        antithetic: true,
    };
    let plain = NoiseKey {
        antithetic: false,
        ..key
    };
    assert_eq!(key.path(6), (3, 1.0));
    assert_eq!(key.path(7), (3, -1.0));
    assert_eq!(plain.path(7), (7, 1.0));
    let m = 5;
    let (mut even, mut odd, mut reference) = (vec![0.0; m], vec![0.0; m], vec![0.0; m]);
    for step in [0, 1, 2, 7, 1000, (1 << 24) - 1] {
        step_increments(&key, 10, step, m, 0.1, &mut even);
        step_increments(&key, 11, step, m, 0.1, &mut odd);
        step_increments(&plain, 5, step, m, 0.1, &mut reference);
        for k in 0..m {
            assert_eq!(odd[k], -even[k]);
            assert_eq!(even[k], reference[k], "even trajectory 2p is path p");
        }
    }
    let tree = BrownianTree::new(0.0, 2.0, 12, m).unwrap();
    for t in [0.0, 0.3, 1.0, 1.77, 2.0] {
        tree.at(&key, 10, t, &mut even);
        tree.at(&key, 11, t, &mut odd);
        for k in 0..m {
            assert_eq!(odd[k], -even[k]);
        }
    }
}

#[test]
fn step_increments_follow_the_block_layout() {
    let key = NoiseKey {
        seed: SEED,
        antithetic: false,
    };
    let sqrt_dt = 0.25; // a power of two: the product is exact
    for m in [1usize, 2, 3, 4, 5, 8] {
        let mut out = vec![0.0; m];
        for step in [0u32, 1, 2, 3, 4, 9, 77] {
            step_increments(&key, 42, step, m, sqrt_dt, &mut out);
            for (k, &o) in out.iter().enumerate() {
                let j = step * m as u32 + k as u32;
                let z = normals4(SEED, 42, j >> 2, TAG_STEPS)[(j & 3) as usize];
                assert_eq!(o, sqrt_dt * z, "m {m} step {step} k {k}");
            }
        }
    }
    // 1-D noise: steps 4b..4b+3 are the four lanes of block b.
    let mut w = [0.0];
    let z = normals4(SEED, 42, 6, TAG_STEPS);
    for lane in 0..4 {
        step_increments(&key, 42, 24 + lane, 1, 1.0, &mut w);
        assert_eq!(w[0], z[lane as usize]);
    }
}

/// The kernels' `step_increments` fetches `blocks_per_step(m)` blocks: the most any step's
/// normals touch, found here by brute force over a full cycle of offsets.
#[test]
fn blocks_per_step_is_the_most_a_step_touches() {
    for m in 1..=MAX_WIENER {
        let most = (0..8u32)
            .map(|step| {
                let j = step * m as u32;
                ((j + m as u32 - 1) >> 2) - (j >> 2) + 1
            })
            .max()
            .unwrap();
        assert_eq!(super::wgsl::blocks_per_step(m), most as usize, "m {m}");
    }
}

#[test]
fn tree_arguments_are_checked() {
    assert_eq!(
        BrownianTree::new(0.0, 1.0, 25, 1),
        Err(NoiseError::Depth(25))
    );
    assert!(matches!(
        BrownianTree::new(1.0, 1.0, 4, 1),
        Err(NoiseError::Interval { .. })
    ));
    assert!(matches!(
        BrownianTree::new(0.0, f64::NAN, 4, 1),
        Err(NoiseError::Interval { .. })
    ));
    assert_eq!(
        BrownianTree::new(0.0, 1.0, 4, 0),
        Err(NoiseError::Processes(0))
    );
    assert_eq!(
        BrownianTree::new(0.0, 1.0, 4, 257),
        Err(NoiseError::Processes(257))
    );
    assert!(noise_wgsl(0, Precision::F32).is_err());
    assert!(noise_wgsl(257, Precision::F64).is_err());
}

#[test]
fn tree_end_value_is_sqrt_t_times_node_zero_exactly() {
    let key = NoiseKey {
        seed: SEED,
        antithetic: true,
    };
    let m = 6;
    let mut w = vec![0.0; m];
    for depth in [0, 1, 7, 24] {
        let tree = BrownianTree::new(-1.0, 2.0, depth, m).unwrap();
        for traj in [0u64, 1, 9] {
            let (path, sign) = key.path(traj);
            tree.at(&key, traj, 2.0, &mut w);
            for (k, &wk) in w.iter().enumerate() {
                let z = normals4(SEED, path, 0, tree_tag(k as u32 / 4))[k % 4];
                assert_eq!(wk, 3f64.sqrt() * (sign * z), "depth {depth} k {k}");
            }
            // Clamped beyond the ends; W(t0) = 0.
            let mut beyond = vec![0.0; m];
            tree.at(&key, traj, 5.0, &mut beyond);
            assert_eq!(beyond, w);
            tree.at(&key, traj, -1.0, &mut beyond);
            assert!(beyond.iter().all(|&x| x == 0.0));
        }
    }
}

#[test]
fn tree_values_at_dyadic_points_do_not_depend_on_depth() {
    // [1, 3]: s = (t - 1)/2 is exact for dyadic s, so each depth sees the same point.
    let key = NoiseKey {
        seed: SEED,
        antithetic: false,
    };
    let m = 3;
    for level in [0u32, 1, 3, 8, 13] {
        for i in 0..=(1u32 << level).min(40) {
            let s = i as f64 / (1u64 << level) as f64;
            let t = 1.0 + 2.0 * s;
            let mut first = vec![0.0; m];
            BrownianTree::new(1.0, 3.0, level, m)
                .unwrap()
                .at(&key, 17, t, &mut first);
            for depth in level..=MAX_TREE_DEPTH {
                let mut w = vec![0.0; m];
                BrownianTree::new(1.0, 3.0, depth, m)
                    .unwrap()
                    .at(&key, 17, t, &mut w);
                assert_eq!(w, first, "level {level} i {i} depth {depth}");
            }
        }
    }
}

#[test]
fn tree_is_continuous_at_leaf_edges() {
    let key = NoiseKey {
        seed: SEED,
        antithetic: false,
    };
    let depth = 8;
    let tree = BrownianTree::new(0.0, 1.0, depth, 2).unwrap();
    let (mut at, mut left, mut right) = ([0.0; 2], [0.0; 2], [0.0; 2]);
    let delta = 1e-12;
    for traj in 0..20 {
        for i in 1..(1u32 << depth) {
            let edge = i as f64 / 256.0;
            tree.at(&key, traj, edge, &mut at);
            tree.at(&key, traj, edge - delta, &mut left);
            tree.at(&key, traj, edge + delta, &mut right);
            for k in 0..2 {
                // Within a leaf W is linear with slope |ΔW_leaf| / 2^-8 ≲ 7 · 2^-4 · 2^8
                // ≈ 110, so a step of 1e-12 moves it by ~1e-10; a jump would be ~0.06.
                assert!((left[k] - at[k]).abs() < 1e-9, "traj {traj} edge {i}");
                assert!((right[k] - at[k]).abs() < 1e-9, "traj {traj} edge {i}");
            }
        }
    }
}

#[test]
fn tree_increments_have_variance_length_and_are_uncorrelated() {
    // Endpoints on the leaf grid (depth 12 over [0.5, 2.5], T = 2), where the tree is an
    // exact Brownian motion; 40_000 paths. Variance of an increment of length τ has
    // standard error τ sqrt(2/n) = τ · 7.1e-3; a correlation 1/sqrt(n) = 5e-3.
    let key = NoiseKey {
        seed: SEED ^ 0xfeed,
        antithetic: false,
    };
    let (t0, t1, depth) = (0.5, 2.5, 12u32);
    let tree = BrownianTree::new(t0, t1, depth, 5).unwrap();
    let grid = |i: u32| t0 + 2.0 * i as f64 / 4096.0;
    let cuts = [
        grid(0),
        grid(1),
        grid(1229),
        grid(2048),
        grid(3001),
        grid(4096),
    ];
    let n = 40_000;
    // incs[k][interval] over paths, for processes 0 and 4 (two tree groups).
    let mut incs = vec![vec![Vec::with_capacity(n); cuts.len() - 1]; 2];
    let mut prev = [0.0; 5];
    let mut w = [0.0; 5];
    for traj in 0..n as u64 {
        tree.at(&key, traj, cuts[0], &mut prev);
        for i in 1..cuts.len() {
            tree.at(&key, traj, cuts[i], &mut w);
            for (slot, k) in [0usize, 4].into_iter().enumerate() {
                incs[slot][i - 1].push(w[k] - prev[k]);
            }
            prev = w;
        }
    }
    for (slot, per_interval) in incs.iter().enumerate() {
        for (i, xs) in per_interval.iter().enumerate() {
            let tau = cuts[i + 1] - cuts[i];
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| x * x).sum::<f64>() / n as f64;
            let se = tau * (2.0 / n as f64).sqrt();
            assert!(
                (var - tau).abs() < 5.0 * se,
                "process {slot} interval {i}: var {var} vs {tau}"
            );
            assert!(mean.abs() < 5.0 * (tau / n as f64).sqrt(), "mean {mean}");
        }
        for i in 0..per_interval.len() {
            for j in i + 1..per_interval.len() {
                let c = corr(&per_interval[i], &per_interval[j]);
                assert!(c.abs() < 5.0 / (n as f64).sqrt(), "intervals {i},{j}: {c}");
            }
        }
    }
    // Processes in different tree groups are independent too.
    let c = corr(&incs[0][2], &incs[1][2]);
    assert!(c.abs() < 5.0 / (n as f64).sqrt(), "processes 0 and 4: {c}");
}

/// The generated library validates in both precisions, inside the `real` prelude a kernel
/// gives it (status helpers first, as the ODE kernels include them).
#[test]
fn generated_wgsl_validates() {
    for precision in [Precision::F32, Precision::F64] {
        let prelude = format!(
            "{}\n{}",
            compose("common/status.wgsl", &[]).unwrap(),
            real_lib(precision).unwrap()
        );
        for m in [1, 2, 3, 4, 5, 8, 9] {
            let noise = noise_wgsl(m, precision).unwrap();
            if precision == Precision::F32 {
                assert!(!noise.contains("f64") && !noise.contains("u64"));
            }
            let wgsl = format!("{prelude}\n{noise}");
            validate(
                &format!("noise m={m} {}", precision.wgsl()),
                &wgsl,
                precision == Precision::F64,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
