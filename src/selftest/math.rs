//! The f64 math library (`shaders/common/math_f64.wgsl`), which every f64 kernel calls for
//! its transcendental functions, against Rust's std on random arguments over each
//! function's working range plus its edge cases. Bounds in ulps as tests/math_f64.rs states
//! and justifies them: 2 for results from one reduction and a polynomial (exp, log, pow,
//! sin, cos, atan), 4 with a quotient or a second rounded step on top.

use super::check::Check;
use crate::gpu::GpuContext;
use crate::gpu::math_f64::evaluate;
use crate::model::expr::Func;
use crate::precision::Precision;
use crate::rng::uniform_f64;

/// Arguments per function.
const M: u64 = 4096;

/// Distance in units in the last place; NaN matches only NaN, and zeros must agree in sign.
fn ulps(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if a == b {
        return if a == 0.0 && a.is_sign_negative() != b.is_sign_negative() {
            f64::INFINITY
        } else {
            0.0
        };
    }
    let key = |x: f64| {
        let bits = x.to_bits() as i64;
        if bits < 0 { i64::MIN - bits } else { bits }
    };
    (key(a) as i128 - key(b) as i128).unsigned_abs() as f64
}

const EDGES: [f64; 12] = [
    0.0,
    -0.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    f64::MIN_POSITIVE,
    5e-324,
    1.0,
    -1.0,
    f64::MAX,
    1e300,
    -1e-300,
];

/// `M` arguments: magnitudes log-uniform in [10^lo, 10^hi] (both signs when `signed`) or,
/// for `linear`, uniform in [lo, hi].
fn arguments(seed: u64, stream: u32, (lo, hi): (f64, f64), linear: bool, signed: bool) -> Vec<f64> {
    (0..M)
        .map(|i| {
            let u = uniform_f64(seed, i, stream);
            let x = if linear {
                lo + (hi - lo) * u
            } else {
                10f64.powf(lo + (hi - lo) * u)
            };
            if signed && uniform_f64(seed, i, stream + 1) < 0.5 {
                -x
            } else {
                x
            }
        })
        .collect()
}

/// Every function of the library with its ranges and bound.
pub fn math_f64(ctx: &GpuContext, seed: u64) -> Result<Vec<Check>, String> {
    let unary: [(Func, (f64, f64), bool, f64); 13] = [
        (Func::Exp, (-745.0, 709.7), true, 2.0),
        (Func::Log, (-307.0, 308.0), false, 2.0),
        (Func::Log2, (-307.0, 308.0), false, 4.0),
        (Func::Log10, (-307.0, 308.0), false, 4.0),
        (Func::Sin, (-20.0, 20.0), true, 2.0),
        (Func::Cos, (-20.0, 20.0), true, 2.0),
        (Func::Tan, (-20.0, 20.0), true, 4.0),
        (Func::Atan, (-30.0, 30.0), false, 2.0),
        (Func::Asin, (-1.0, 1.0), true, 4.0),
        (Func::Acos, (-1.0, 1.0), true, 4.0),
        (Func::Sinh, (-700.0, 700.0), true, 4.0),
        (Func::Cosh, (-700.0, 700.0), true, 4.0),
        (Func::Tanh, (-20.0, 20.0), true, 4.0),
    ];
    let mut checks = Vec::new();
    for (k, (func, range, linear, bound)) in unary.into_iter().enumerate() {
        let stream = 10 * k as u32;
        let signed = !linear && func == Func::Atan;
        let mut args: Vec<(f64, f64)> = arguments(seed, stream, range, linear, signed)
            .into_iter()
            .chain(EDGES)
            .map(|x| (x, 0.0))
            .collect();
        if func == Func::Log {
            args.push((-2.0, 0.0)); // NaN
        }
        checks.push(compare(ctx, func, &args, bound));
    }
    // atan2 over every quadrant; pow over bases and exponents whose results span the range.
    let ys = arguments(seed, 200, (-20.0, 20.0), false, true);
    let xs = arguments(seed, 210, (-20.0, 20.0), false, true);
    let mut pairs: Vec<(f64, f64)> = ys.into_iter().zip(xs).collect();
    pairs.extend(
        EDGES
            .iter()
            .flat_map(|&y| EDGES.iter().map(move |&x| (y, x))),
    );
    checks.push(compare(ctx, Func::Atan2, &pairs, 4.0));
    let bases = arguments(seed, 220, (-5.0, 5.0), false, false);
    let exps = arguments(seed, 230, (-60.0, 60.0), true, false);
    let mut pairs: Vec<(f64, f64)> = bases.into_iter().zip(exps).collect();
    pairs.extend((0..200).map(|i| (-1.0 - i as f64 * 0.37, (i % 41) as f64 - 20.0)));
    checks.push(compare(ctx, Func::Pow, &pairs, 2.0));
    Ok(checks)
}

fn compare(ctx: &GpuContext, func: Func, args: &[(f64, f64)], bound: f64) -> Check {
    let names = ["a.x", "a.y"];
    let call = format!("m64_{}({})", func.name(), names[..func.arity()].join(", "));
    let case = func.name().to_string();
    let got = match evaluate(ctx, &call, args) {
        Ok(got) => got,
        Err(e) => return Check::failed("math-f64", case, Precision::F64, e.to_string()),
    };
    let mut worst = 0.0f64;
    let mut note = String::new();
    for (&(x, y), &g) in args.iter().zip(&got) {
        let want = func.eval(&[x, y]);
        let e = ulps(g, want);
        if e > worst {
            worst = e;
            if e > bound {
                note = format!("at {x:e}, {y:e}: {g:e}, std {want:e}");
            }
        }
    }
    Check::measured(
        "math-f64",
        case,
        Precision::F64,
        (worst, bound, "ulp"),
        note,
    )
}
