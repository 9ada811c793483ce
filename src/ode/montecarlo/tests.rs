//! The reducer against exact references: sums with known exact values, variances whose
//! naive formula would cancel, quantiles against sorted data; and the promise that matters
//! most, the same bits for any chunking and any merge order.

use super::exact::{self, ExactSum};
use super::sketch::{self, Sketch};
use super::*;
use crate::rng::{normal_f64, uniform_f64};

/// A small deterministic generator for shuffles and cut points (tests only).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

fn sum_of(values: &[f64]) -> ExactSum {
    let mut s = ExactSum::new();
    values.iter().for_each(|&v| s.add(v));
    s
}

#[test]
fn cancelling_sums_are_exact_in_any_order() {
    let mut values = vec![1e300, 1.0, -1e300];
    for _ in 0..6 {
        assert_eq!(sum_of(&values).to_f64(), 1.0, "{values:?}");
        values.rotate_left(1);
    }
    // Pairs ±x over the whole exponent range, subnormals included, around one small value:
    // the exact sum is that value, in every order.
    let mut rng = Lcg(7);
    let mut values = vec![3.5e-200];
    for i in 0..4000u64 {
        let mant = 1.0 + uniform_f64(1, i, 0);
        let e = (uniform_f64(1, i, 1) * 2090.0) as i32 - 1070;
        let x = mant * 2f64.powi(e / 2) * 2f64.powi(e - e / 2);
        values.extend([x, -x]);
    }
    values.push(f64::MAX);
    values.push(-f64::MAX);
    values.push(f64::from_bits(1)); // the smallest subnormal, and its negative
    values.push(-f64::from_bits(1));
    for _ in 0..5 {
        rng.shuffle(&mut values);
        assert_eq!(sum_of(&values).to_f64(), 3.5e-200);
    }
}

#[test]
fn sums_with_known_exact_values_round_correctly() {
    // 2^53 + 1 is a tie between 2^53 and 2^53 + 2: to even. A 2^-100 more breaks the tie
    // upwards (the sticky bit).
    let p53 = 2f64.powi(53);
    assert_eq!(sum_of(&[p53, 1.0]).to_f64(), p53);
    assert_eq!(sum_of(&[p53, 1.0, 2f64.powi(-100)]).to_f64(), p53 + 2.0);
    assert_eq!(sum_of(&[p53, 3.0]).to_f64(), p53 + 4.0);
    // Ten 0.1s: exactly 1 + 5.55e-17 (0.1 is above 1/10 by 5.55e-18), which rounds to 1,
    // where the running f64 sum gives 0.9999999999999999.
    assert_eq!(sum_of(&[0.1; 10]).to_f64(), 1.0);
    // 1..=n: n(n + 1)/2 exactly, and negative.
    let n = 100_000u64;
    let ints: Vec<f64> = (1..=n).map(|i| -(i as f64)).collect();
    assert_eq!(sum_of(&ints).to_f64(), -((n * (n + 1) / 2) as f64));
    // Overflow beyond f64 but not in the accumulator; back in range after cancelling.
    assert_eq!(sum_of(&[f64::MAX, f64::MAX]).to_f64(), f64::INFINITY);
    assert_eq!(sum_of(&[f64::MAX, f64::MAX, -f64::MAX]).to_f64(), f64::MAX);
    // Subnormal sums: three smallest subnormals are exactly 3 · 2^-1074.
    let tiny = f64::from_bits(1);
    assert_eq!(sum_of(&[tiny, tiny, tiny]).to_f64(), f64::from_bits(3));
    assert!(sum_of(&[1.0, -1.0]).is_zero());
    assert_eq!(ExactSum::new().to_f64(), 0.0);
}

#[test]
fn squares_are_exact_far_beyond_the_two_product_range() {
    // (2^-537)² = 2^-1074 exactly; (1.5 · 2^-537)² = 2.25 · 2^-1074 rounds to 2 · 2^-1074.
    let mut s = ExactSum::new();
    s.add_square(2f64.powi(-537));
    assert_eq!(s.to_f64(), f64::from_bits(1));
    let mut s = ExactSum::new();
    s.add_square(1.5 * 2f64.powi(-537));
    assert_eq!(s.to_f64(), f64::from_bits(2));
    // (1e200)² overflows f64 but not the accumulator: minus (1e200)², plus 9 is 9.
    let mut s = ExactSum::new();
    s.add_square(1e200);
    s.add_square(3.0);
    let mut minus = ExactSum::new();
    minus.add_square(1e200);
    let (neg, base, digits) = minus.magnitude();
    s.merge(&ExactSum::from_digits(!neg, base, &digits));
    assert_eq!(s.to_f64(), 9.0);
    // A square with all 106 bits: (2^53 - 1)² = 2^106 - 2^54 + 1; less 2^106 - 2^54 is 1.
    let m = p(53) - 1.0;
    let mut s = ExactSum::new();
    s.add_square(m);
    s.add(-p(106));
    s.add(p(54));
    assert_eq!(s.to_f64(), 1.0);
}

fn p(e: i32) -> f64 {
    2f64.powi(e)
}

#[test]
fn double_double_conversion_keeps_what_f64_drops() {
    let s = sum_of(&[1e20, 1.0, 2f64.powi(-30)]);
    let (hi, lo, e) = s.to_scaled_dd();
    let (hi, lo) = (exact::ldexp(hi, e), exact::ldexp(lo, e));
    assert_eq!(hi, 1e20);
    // 1 + 2^-30 is below the ulp of 1e20 (16384) and exact in lo.
    assert_eq!(lo, 1.0 + 2f64.powi(-30));
}

#[test]
fn lazy_carries_survive_many_additions() {
    // 2^30 additions would take seconds; the carry logic is the same for the limbs of one
    // merge of two accumulators each near the normalisation limit: emulate with merges.
    let mut a = sum_of(&[u32::MAX as f64 * 4096.0; 1000]);
    for _ in 0..20 {
        let b = a.clone();
        a.merge(&b);
    }
    // 1000 · 2^20 · (2^32 - 1) · 2^12, exactly representable.
    let expect = 1000.0 * p(20) * (u32::MAX as f64) * 4096.0;
    assert_eq!(a.to_f64(), expect);
}

fn reduce(rows: &[f64], n_save: usize, dim: usize, n: usize, levels: &[f64]) -> MonteCarlo {
    let mut mc = MonteCarlo::new(n_save, dim, levels);
    for s in 0..n_save {
        mc.add_rows(s, &rows[s * n * dim..(s + 1) * n * dim]);
    }
    mc
}

#[test]
fn a_variance_far_below_the_mean_is_correct() {
    // mean 1e8, std 1: Σx² ≈ 1e19 · n, so the textbook formula Σx²/n − mean² cancels 16
    // digits and f64 would keep none. The exact numerator keeps them all.
    for (centre, scale) in [(1e8, 1.0), (1e15, 1.0), (-3e10, 1e-3)] {
        let n = 20_000;
        let rows: Vec<f64> = (0..n)
            .map(|j| centre + scale * normal_f64(3, j as u64, 0))
            .collect();
        let r = reduce(&rows, 1, 1, n, &[0.5]).result();
        // Reference: x − centre is exact (Sterbenz: the values are within a factor 2 of
        // centre), so a two-pass variance of the differences in f64 is good to ~1e-15.
        let d: Vec<f64> = rows.iter().map(|x| x - centre).collect();
        let dm = d.iter().sum::<f64>() / n as f64;
        let var = d.iter().map(|x| (x - dm).powi(2)).sum::<f64>() / (n - 1) as f64;
        let rel = (r.var[0] - var).abs() / var;
        assert!(
            rel < 1e-12,
            "centre {centre}: {} vs {var} ({rel:e})",
            r.var[0]
        );
        assert!(((r.mean[0] - centre) - dm).abs() <= 1e-15 * centre.abs());
        assert!((r.stderr[0] - (var / n as f64).sqrt()).abs() <= 1e-12 * r.stderr[0]);
    }
}

#[test]
fn moments_of_small_samples_are_exact_or_nan() {
    let r = reduce(
        &[1.0, 2.0, 4.0, f64::NAN, 7.0, f64::INFINITY],
        1,
        1,
        6,
        &[0.5],
    )
    .result();
    assert_eq!(r.count, vec![4]);
    assert_eq!(r.nonfinite, vec![2]);
    assert_eq!(r.mean, vec![3.5]);
    // Σ(x − 3.5)² = 6.25 + 2.25 + 0.25 + 12.25 = 21; / 3 = 7.
    assert_eq!(r.var, vec![7.0]);
    assert_eq!(r.stderr, vec![(7.0f64 / 4.0).sqrt()]);
    assert_eq!((r.min[0], r.max[0]), (1.0, 7.0));
    // One value: a mean but no variance; none: NaN everywhere.
    let r = reduce(&[5.0, f64::NAN], 2, 1, 1, &[0.5]).result();
    assert_eq!(r.mean[0], 5.0);
    assert!(r.var[0].is_nan() && r.stderr[0].is_nan());
    assert_eq!(r.quantiles[0], 5.0); // the midpoint clamped to [min, max]
    assert!(r.mean[1].is_nan() && r.min[1].is_nan() && r.quantiles[1].is_nan());
    assert_eq!((r.count[1], r.nonfinite[1]), (0, 1));
    // The largest values: the mean of two f64::MAX is f64::MAX (the sum itself is not an
    // f64), their variance 0.
    let r = reduce(&[f64::MAX, f64::MAX], 1, 1, 2, &[0.5]).result();
    assert_eq!((r.mean[0], r.var[0]), (f64::MAX, 0.0));
}

#[test]
fn quantiles_are_within_the_stated_relative_accuracy() {
    // 1..=1000: the value of rank ceil(q · 1000) is that rank itself.
    let levels = [0.0, 0.001, 0.01, 0.25, 0.5, 0.7519, 0.99, 1.0];
    let rows: Vec<f64> = (1..=1000).map(|i| i as f64).collect();
    let r = reduce(&rows, 1, 1, 1000, &levels).result();
    for (i, q) in levels.iter().enumerate() {
        let exact = ((q * 1000.0).ceil()).max(1.0);
        let got = r.quantiles[i];
        assert!(
            (got - exact).abs() <= exact * 2f64.powi(-8),
            "q {q}: {got} vs {exact}"
        );
    }
    assert_eq!((r.quantiles[0], r.quantiles[7]), (1.0, 1000.0)); // clamped to min, max
    // A log-normal sample of both signs, against its own sorted order statistics.
    let n = 50_000;
    let rows: Vec<f64> = (0..n)
        .map(|j| {
            let sign = if j % 3 == 0 { -1.0 } else { 1.0 };
            sign * (3.0 * normal_f64(9, j as u64, 0)).exp()
        })
        .collect();
    let levels = DEFAULT_QUANTILES;
    let r = reduce(&rows, 1, 1, n, &levels).result();
    let mut sorted = rows.clone();
    sorted.sort_by(f64::total_cmp);
    for (i, q) in levels.iter().enumerate() {
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        let exact = sorted[rank - 1];
        let got = r.quantiles[i];
        assert!(
            (got - exact).abs() <= exact.abs() * 2f64.powi(-8),
            "q {q}: {got} vs {exact}"
        );
    }
    // The standard normal's median and quartiles, for the record: within sampling error.
    let rows: Vec<f64> = (0..n).map(|j| normal_f64(5, j as u64, 0)).collect();
    let r = reduce(&rows, 1, 1, n, &[0.25, 0.5, 0.75]).result();
    // Φ⁻¹(0.75) = 0.6745; the sampling std of a quartile at n = 5e4 is about 0.006, and of
    // the median about 0.0056: 0.03 is five of them plus the bucket width.
    assert!((r.quantiles[0] + 0.6745).abs() < 0.03, "{}", r.quantiles[0]);
    assert!(r.quantiles[1].abs() < 0.03, "{}", r.quantiles[1]);
    assert!((r.quantiles[2] - 0.6745).abs() < 0.03, "{}", r.quantiles[2]);
}

#[test]
fn buckets_follow_the_order_of_values() {
    let xs = [
        -f64::MAX,
        -1e10,
        -1.0,
        -1e-299,
        0.0,
        1e-301,
        1e-299,
        1.0,
        1.0 + 1.0 / 128.0,
        1e10,
        f64::MAX,
    ];
    let keys: Vec<u32> = xs.iter().map(|&x| sketch::bucket(x)).collect();
    assert!(keys.windows(2).all(|w| w[0] <= w[1]), "{keys:?}");
    assert_eq!(sketch::bucket(-0.0), sketch::bucket(1e-301));
    assert!(keys[7] < keys[8]); // 1 and 1 + 2^-7: neighbouring buckets
    // The top bucket's midpoint is finite: 1.99609375 · 2^1023 < f64::MAX.
    assert!(sketch::midpoint(sketch::bucket(f64::MAX)).is_finite());
    assert_eq!(sketch::midpoint(sketch::bucket(1.0)), 1.0 + 1.0 / 256.0);
    assert_eq!(sketch::midpoint(sketch::bucket(-1.0)), -(1.0 + 1.0 / 256.0));
    let mut s = Sketch::new();
    s.add_sorted_keys(&[3, 3, 5]);
    let mut t = Sketch::new();
    t.add_sorted_keys(&[1, 5, 5, 9]);
    let mut a = s.clone();
    a.merge(&t);
    let mut b = t.clone();
    b.merge(&s);
    assert_eq!(a, b);
    assert_eq!((a.total(), a.buckets()), (7, 4));
}

/// Values that exercise everything: a few scales, signs, both zeros, subnormals, NaN and
/// infinities; [n_save, n, dim] row-major.
fn awkward_values(n_save: usize, n: usize, dim: usize) -> Vec<f64> {
    let mut v = Vec::with_capacity(n_save * n * dim);
    for s in 0..n_save {
        for j in 0..n {
            for c in 0..dim {
                let i = ((s * n + j) * dim + c) as u64;
                let z = normal_f64(11, i, 0);
                let x = match (j + c) % 29 {
                    0 => f64::NAN,
                    1 => f64::INFINITY,
                    2 => -0.0,
                    3 => 0.0,
                    4 => f64::from_bits(1 + j as u64),
                    5 => 1e250 * z,
                    _ => 1e6 * (c as f64 + 1.0) + z * 10f64.powi((s % 5) as i32 - 2),
                };
                v.push(x);
            }
        }
    }
    v
}

fn result_bits(r: &MonteCarloResult) -> Vec<u64> {
    let mut bits = Vec::new();
    for a in [&r.mean, &r.var, &r.stderr, &r.min, &r.max, &r.quantiles] {
        bits.extend(a.iter().map(|x| x.to_bits()));
    }
    bits.extend(&r.count);
    bits.extend(&r.nonfinite);
    bits
}

/// Values of trajectories `range`: [n_save][range][dim].
fn block(all: &[f64], n: usize, dim: usize, n_save: usize, range: Range<usize>) -> MonteCarlo {
    let mut mc = MonteCarlo::new(n_save, dim, &DEFAULT_QUANTILES);
    for s in 0..n_save {
        mc.add_rows(
            s,
            &all[(s * n + range.start) * dim..(s * n + range.end) * dim],
        );
    }
    mc
}

#[test]
fn any_chunking_and_merge_order_gives_the_same_bits() {
    let (n_save, n, dim) = (7, 3000, 3);
    let all = awkward_values(n_save, n, dim);
    let reference = result_bits(&block(&all, n, dim, n_save, 0..n).result());
    let mut rng = Lcg(2024);
    for trial in 0..12 {
        // Random cut points, 1 to 40 pieces.
        let pieces = 1 + rng.below(40);
        let mut cuts: Vec<usize> = (0..pieces - 1).map(|_| rng.below(n + 1)).collect();
        cuts.extend([0, n]);
        cuts.sort_unstable();
        let mut parts: Vec<MonteCarlo> = cuts
            .windows(2)
            .map(|w| block(&all, n, dim, n_save, w[0]..w[1]))
            .collect();
        rng.shuffle(&mut parts);
        let merged = if trial % 2 == 0 {
            // Left fold in a random order.
            let mut acc = MonteCarlo::new(n_save, dim, &DEFAULT_QUANTILES);
            for p in &parts {
                acc.merge(p).unwrap();
            }
            acc
        } else {
            // Random pairs merged until one is left (a tree of devices or processes).
            while parts.len() > 1 {
                let i = rng.below(parts.len());
                let a = parts.swap_remove(i);
                let j = rng.below(parts.len());
                parts[j].merge(&a).unwrap();
            }
            parts.pop().unwrap()
        };
        assert_eq!(
            result_bits(&merged.result()),
            reference,
            "trial {trial}: {pieces} pieces"
        );
    }
}

#[test]
fn the_sink_decodes_device_batches_in_either_precision() {
    let (n_save, n, dim) = (4, 500, 2);
    let all = awkward_values(n_save, n, dim);
    for precision in [Precision::F64, Precision::F32] {
        let values: Vec<f64> = match precision {
            Precision::F64 => all.clone(),
            Precision::F32 => all.iter().map(|&x| x as f32 as f64).collect(),
        };
        let direct = block(&values, n, dim, n_save, 0..n).result();
        let mut sink = MonteCarlo::new(n_save, dim, &DEFAULT_QUANTILES);
        // Chunks of 137 trajectories, two save slots per batch, a device row stride wider
        // than the chunk (as the readback buffers have).
        for start in (0..n).step_by(137) {
            let chunk = start..(start + 137).min(n);
            let stride = 150;
            for s0 in (0..n_save).step_by(2) {
                let mut bytes = Vec::new();
                for s in s0..s0 + 2 {
                    let mut row =
                        values[(s * n + chunk.start) * dim..(s * n + chunk.end) * dim].to_vec();
                    row.resize(stride * dim, -1.0);
                    for x in row {
                        match precision {
                            Precision::F64 => bytes.extend(x.to_le_bytes()),
                            Precision::F32 => bytes.extend((x as f32).to_le_bytes()),
                        }
                    }
                }
                let batch = SaveBatch {
                    slots: s0..s0 + 2,
                    chunk: chunk.clone(),
                    stride,
                    n,
                    dim,
                    precision,
                    bytes: &bytes,
                };
                sink.saves(&batch).unwrap();
            }
        }
        assert_eq!(result_bits(&sink.result()), result_bits(&direct));
    }
}

#[test]
fn merging_different_shapes_or_levels_is_refused() {
    let mut a = MonteCarlo::new(3, 2, &DEFAULT_QUANTILES);
    let e = a
        .merge(&MonteCarlo::new(3, 1, &DEFAULT_QUANTILES))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("3 save times × 2 components here, 3 × 1"),
        "{e}"
    );
    let e = a.merge(&MonteCarlo::new(3, 2, &[0.5])).unwrap_err();
    assert!(e.to_string().contains("quantile levels differ"), "{e}");
}

#[test]
fn quantile_levels_are_checked() {
    assert_eq!(quantile_levels_error(&DEFAULT_QUANTILES), None);
    assert!(quantile_levels_error(&[]).unwrap().contains("at least one"));
    assert!(
        quantile_levels_error(&[0.5, 1.5])
            .unwrap()
            .contains("got 1.5")
    );
    assert!(
        quantile_levels_error(&[f64::NAN])
            .unwrap()
            .contains("got NaN")
    );
    assert!(
        quantile_levels_error(&[0.5; 101])
            .unwrap()
            .contains("at most 100")
    );
    for unordered in [[0.9, 0.1], [0.5, 0.5]] {
        assert!(
            quantile_levels_error(&unordered)
                .unwrap()
                .contains("increasing order, each once")
        );
    }
}

#[test]
fn memory_grows_with_the_data_range_only() {
    // One scale and sign: a handful of limbs and at most 2^7 buckets per binade.
    let rows: Vec<f64> = (0..100_000).map(|j| 1.0 + uniform_f64(1, j, 0)).collect();
    let mc = reduce(&rows, 1, 1, rows.len(), &[0.5]);
    let bytes = mc.memory_bytes();
    // 128 buckets · 12 bytes + the cell: about 1.8 KB.
    assert!(bytes < 2500, "{bytes} bytes");
    assert_eq!(
        std::mem::size_of::<Cell>(),
        144,
        "the figure in the module docs"
    );
    assert_eq!(
        MonteCarlo::base_bytes(1000, 3),
        3000 * std::mem::size_of::<Cell>() as u64
    );
    // The typical figure covers a normal sample's spread (measured by `throughput`: 20.6
    // KB per save time for 10^4 values of N(5, 10²)).
    let normal: Vec<f64> = (0..10_000)
        .map(|j| 5.0 + 10.0 * normal_f64(1, j, 0))
        .collect();
    let mc = reduce(&normal, 1, 1, normal.len(), &[0.5]);
    assert!((mc.memory_bytes() as u64) < MonteCarlo::typical_bytes(1, 1, normal.len()));
}

/// Host throughput of the reducer through the `Sink` path, single core: 10^7 values into
/// 1000 save times × 1 component (10^4 trajectories, chunks of 2,500). Run with
/// `cargo test --release --lib montecarlo::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn throughput() {
    let (n_save, n, chunk) = (1000, 10_000, 2500);
    let values: Vec<f64> = (0..n_save * n)
        .map(|i| 5.0 + 10.0 * normal_f64(1, i as u64, 0))
        .collect();
    for precision in [Precision::F64, Precision::F32] {
        let mut mc = MonteCarlo::new(n_save, 1, &DEFAULT_QUANTILES);
        // Device layout per chunk: [slot][trajectory], all slots of the chunk in one batch.
        let batches: Vec<(Range<usize>, Vec<u8>)> = (0..n)
            .step_by(chunk)
            .map(|start| {
                let mut bytes = Vec::new();
                for s in 0..n_save {
                    for &x in &values[s * n + start..s * n + start + chunk] {
                        match precision {
                            Precision::F64 => bytes.extend(x.to_le_bytes()),
                            Precision::F32 => bytes.extend((x as f32).to_le_bytes()),
                        }
                    }
                }
                (start..start + chunk, bytes)
            })
            .collect();
        let t = std::time::Instant::now();
        for (range, bytes) in &batches {
            let batch = SaveBatch {
                slots: 0..n_save,
                chunk: range.clone(),
                stride: chunk,
                n,
                dim: 1,
                precision,
                bytes,
            };
            mc.saves(&batch).unwrap();
        }
        let fed = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let r = mc.result();
        let out = t.elapsed().as_secs_f64();
        let total = (n_save * n) as f64;
        println!(
            "{precision:?}: {:.1} M values/s ({fed:.3} s for 1e7), result() {out:.3} s, \
             memory {:.2} MB ({} bytes per save time), mean[0] {}",
            total / fed / 1e6,
            mc.memory_bytes() as f64 / 1e6,
            mc.memory_bytes() / n_save,
            r.mean[0]
        );
    }
}

#[test]
fn parts_sent_as_bytes_merge_to_the_same_bits() {
    let (n_save, n, dim) = (3, 900, 2);
    let all = awkward_values(n_save, n, dim);
    let reference = result_bits(&block(&all, n, dim, n_save, 0..n).result());
    // Three "processes" each reduce a third, send their bytes; the receiver merges them in
    // another order.
    let sent: Vec<Vec<u8>> = [0..300, 300..600, 600..900]
        .into_iter()
        .map(|r| block(&all, n, dim, n_save, r).to_bytes())
        .collect();
    let mut merged = MonteCarlo::from_bytes(&sent[2]).unwrap();
    assert_eq!(merged.values_per_cell(), Some(300));
    for b in [&sent[0], &sent[1]] {
        merged.merge(&MonteCarlo::from_bytes(b).unwrap()).unwrap();
    }
    assert_eq!(result_bits(&merged.result()), reference);
    // Every cell counts every trajectory fed, NaN values included (what a store's merge
    // checks against each shard's range).
    assert_eq!(merged.values_per_cell(), Some(n as u64));
    // A round trip keeps everything, the empty reducer included.
    let whole = block(&all, n, dim, n_save, 0..n);
    let again = MonteCarlo::from_bytes(&whole.to_bytes()).unwrap();
    assert_eq!(again.to_bytes(), whole.to_bytes());
    let empty = MonteCarlo::new(2, 3, &[0.5]);
    assert_eq!(
        MonteCarlo::from_bytes(&empty.to_bytes())
            .unwrap()
            .to_bytes(),
        empty.to_bytes()
    );
}

#[test]
fn damaged_bytes_are_refused_never_trusted() {
    let (n_save, n, dim) = (2, 40, 2);
    let all = awkward_values(n_save, n, dim);
    let good = block(&all, n, dim, n_save, 0..n).to_bytes();
    // Every truncation is an error with a reason.
    for len in 0..good.len() {
        let e = MonteCarlo::from_bytes(&good[..len]).unwrap_err();
        assert!(
            e.to_string().starts_with("not Monte Carlo statistics: "),
            "{e}"
        );
    }
    let mut long = good.clone();
    long.push(0);
    assert!(
        MonteCarlo::from_bytes(&long)
            .unwrap_err()
            .to_string()
            .contains("1 bytes after")
    );
    // Flipped bytes: refused, or read as some other valid reducer, whose result() and merge
    // then work; never a panic or a huge allocation.
    let mut rng = Lcg(99);
    for _ in 0..3000 {
        let mut bad = good.clone();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(bad.len());
            bad[i] ^= 1 << rng.below(8);
        }
        if let Ok(mut mc) = MonteCarlo::from_bytes(&bad) {
            let _ = mc.result();
            let copy = mc.clone();
            let _ = mc.merge(&copy);
        }
    }
    // A shape nothing backs.
    let mut huge = good[..8].to_vec();
    huge.extend(u64::MAX.to_le_bytes());
    huge.extend(2u64.to_le_bytes());
    huge.extend(1u64.to_le_bytes());
    huge.extend(0.5f64.to_le_bytes());
    let e = MonteCarlo::from_bytes(&huge).unwrap_err().to_string();
    assert!(e.contains("overflows"), "{e}");
}
