//! The f64 math library (`shaders/common/math_f64.wgsl`) against Rust's std, its CPU twin:
//! every function over wide input ranges and its edge cases (±0, ±inf, NaN, subnormals,
//! huge arguments), to a stated bound in ulps.
//!
//! The bounds are what the constructions give: results assembled from a double-double
//! reduction and a polynomial rounded once or twice (exp, log, pow, sin, cos, atan: ≤ 2
//! ulp); a quotient or a second rounded step on top (tan, asin, acos, atan2, log2, log10,
//! the hyperbolic functions: ≤ 4 ulp). One exception, stated: beyond |x| = 2^20·π/2 the
//! trigonometric functions reduce with Payne–Hanek into a double-double, which holds the
//! reduced argument to ~1e-31 absolute; where x lies so close to a multiple of π/2 that
//! the result is below ~1e-15, that absolute error (not the ulp bound) is what holds. std
//! itself (glibc) is within 1 ulp of the truth.

mod common;
use common::gpu;
use phaseflow::gpu::math_f64::evaluate;
use phaseflow::model::expr::Func;
use phaseflow::rng::uniform_f64;

/// Distance in units in the last place; NaN matches only NaN.
fn ulps(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if a == b {
        return 0.0; // also +0 == -0 for everything but the sign checks below
    }
    let key = |x: f64| {
        let bits = x.to_bits() as i64;
        if bits < 0 { i64::MIN - bits } else { bits }
    };
    (key(a) as i128 - key(b) as i128).unsigned_abs() as f64
}

/// Magnitudes log-uniform in [10^lo, 10^hi], both signs when `signed`.
fn spread(seed: u64, n: usize, lo: f64, hi: f64, signed: bool) -> Vec<f64> {
    (0..n as u64)
        .map(|i| {
            let m = 10f64.powf(lo + (hi - lo) * uniform_f64(seed, i, 0));
            if signed && uniform_f64(seed, i, 1) < 0.5 {
                -m
            } else {
                m
            }
        })
        .collect()
}

fn uniform(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n as u64)
        .map(|i| lo + (hi - lo) * uniform_f64(seed, i, 0))
        .collect()
}

const EDGES: [f64; 14] = [
    0.0,
    -0.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    f64::MIN_POSITIVE,
    5e-324,
    -5e-324,
    1.0,
    -1.0,
    f64::MAX,
    f64::MIN,
    1e300,
    -1e-300,
];

/// Runs `func` on the device for every input and returns the worst ulp error and where.
fn worst(func: Func, args: &[(f64, f64)]) -> (f64, (f64, f64), f64, f64) {
    let names = ["a.x", "a.y"];
    let call = format!("m64_{}({})", func.name(), names[..func.arity()].join(", "));
    let got = evaluate(gpu(), &call, args).unwrap_or_else(|e| panic!("{e}"));
    let mut worst = (0.0, (0.0, 0.0), 0.0, 0.0);
    for (&(x, y), &g) in args.iter().zip(&got) {
        let want = func.eval(&[x, y]);
        let e = ulps(g, want);
        // Signed zeros must match too.
        let e = if g == 0.0 && want == 0.0 && g.is_sign_negative() != want.is_sign_negative() {
            f64::INFINITY
        } else {
            e
        };
        if e > worst.0 {
            worst = (e, (x, y), g, want);
        }
    }
    worst
}

fn check(func: Func, args: Vec<(f64, f64)>, bound: f64) {
    check_with_floor(func, args, bound, 0.0);
}

/// As `check`, but an absolute error up to `floor` also passes (for tan: in 1/tan).
fn check_with_floor(func: Func, mut args: Vec<(f64, f64)>, bound: f64, floor: f64) {
    if !gpu().has_f64() {
        eprintln!("skipped: the adapter has no f64");
        return;
    }
    if floor > 0.0 {
        let got = evaluate(gpu(), &format!("m64_{}(a.x)", func.name()), &args).unwrap();
        args = args
            .into_iter()
            .zip(got)
            .filter(|&((x, _), g)| {
                // Near tan's poles the small quantity is cot = 1/tan.
                let w = func.eval(&[x]);
                let near = (g - w).abs() <= floor
                    || (func == Func::Tan && (1.0 / g - 1.0 / w).abs() <= floor);
                !near
            })
            .map(|(a, _)| a)
            .collect();
    }
    let (e, at, got, want) = worst(func, &args);
    println!("{}: worst {e} ulp over {} inputs", func.name(), args.len());
    assert!(
        e <= bound,
        "{}{:?}: got {got:e}, std {want:e}: {e} ulp > {bound}",
        func.name(),
        at
    );
}

fn unary(parts: &[Vec<f64>]) -> Vec<(f64, f64)> {
    parts
        .iter()
        .flatten()
        .chain(EDGES.iter())
        .map(|&x| (x, 0.0))
        .collect()
}

#[test]
fn exp_and_log() {
    check(
        Func::Exp,
        unary(&[
            uniform(1, 20000, -745.2, 709.8),
            spread(2, 5000, -300.0, 0.0, true),
            uniform(3, 5000, -1.0, 1.0),
        ]),
        2.0,
    );
    let positive = [
        spread(4, 20000, -307.0, 308.0, false),
        uniform(5, 5000, 0.5, 2.0),
        spread(6, 1000, -323.0, -308.0, false), // subnormal
        spread(7, 1000, -3.0, 3.0, true),       // negatives give NaN
    ];
    check(Func::Log, unary(&positive), 2.0);
    check(Func::Log2, unary(&positive), 4.0);
    check(Func::Log10, unary(&positive), 4.0);
}

#[test]
fn trigonometric() {
    let args = [
        uniform(8, 20000, -10.0, 10.0),
        spread(9, 10000, -8.0, 6.0, true),
        vec![
            std::f64::consts::FRAC_PI_2,
            std::f64::consts::PI,
            1647099.0,
            -1647099.5,
        ],
    ];
    check(Func::Sin, unary(&args), 2.0);
    check(Func::Cos, unary(&args), 2.0);
    check(Func::Tan, unary(&args), 4.0);
    // Payne–Hanek range, with the hardest case for doubles (closest to a multiple of π/2).
    let huge = [
        spread(10, 10000, 6.3, 308.0, true),
        vec![1e22, 6381956970095103.0 * 2f64.powi(797)],
    ];
    check_with_floor(Func::Sin, unary(&huge), 2.0, 1e-30);
    check_with_floor(Func::Cos, unary(&huge), 2.0, 1e-30);
    check_with_floor(Func::Tan, unary(&huge), 4.0, 1e-30);
    let wide = [
        spread(11, 20000, -300.0, 300.0, true),
        uniform(12, 5000, -3.0, 3.0),
    ];
    check(Func::Atan, unary(&wide), 2.0);
    let unit = [
        uniform(13, 20000, -1.0, 1.0),
        spread(14, 2000, -300.0, 0.0, true),
    ];
    check(Func::Asin, unary(&unit), 4.0);
    check(Func::Acos, unary(&unit), 4.0);
    let ys = spread(15, 20000, -20.0, 20.0, true);
    let xs = spread(16, 20000, -20.0, 20.0, true);
    let mut pairs: Vec<(f64, f64)> = ys.into_iter().zip(xs).collect();
    for &y in &EDGES {
        for &x in &EDGES {
            pairs.push((y, x));
        }
    }
    check(Func::Atan2, pairs, 4.0);
}

#[test]
fn hyperbolic() {
    let args = [
        uniform(17, 20000, -720.0, 720.0),
        spread(18, 10000, -300.0, 1.0, true),
    ];
    check(Func::Sinh, unary(&args), 4.0);
    check(Func::Cosh, unary(&args), 4.0);
    check(Func::Tanh, unary(&args), 4.0);
}

#[test]
fn pow() {
    let bases = spread(19, 20000, -5.0, 5.0, false);
    let exps = uniform(20, 20000, -60.0, 60.0);
    let mut pairs: Vec<(f64, f64)> = bases.into_iter().zip(exps).collect();
    // Negative bases with integer exponents, results near overflow and underflow.
    pairs.extend((0..2000).map(|i| (-1.0 - i as f64 * 0.37, (i % 41) as f64 - 20.0)));
    pairs.extend(uniform(21, 2000, 1.0, 1e10).into_iter().map(|b| {
        let e = 700.0 / b.ln();
        (b, e)
    }));
    pairs.extend(
        uniform(22, 2000, 1.0, 1e10)
            .into_iter()
            .map(|b| (b, -740.0 / b.ln())),
    );
    let specials = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        2.0,
        -2.0,
        3.0,
        -3.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1e-300,
        1e300,
    ];
    for &x in &specials {
        for &y in &specials {
            pairs.push((x, y));
        }
    }
    check(Func::Pow, pairs, 2.0);
}
