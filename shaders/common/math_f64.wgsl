// f64 transcendental functions for kernels that compute in f64. Vulkan (and so naga's
// SPIR-V) only has +, -, *, /, sqrt, fma, floor, abs, min, max, sign and friends for f64;
// everything else is built here from those, with range reduction and polynomials. Bits are
// reached through 64-bit integers (naga bitcasts only between types of equal width), so f64
// kernels need SHADER_INT64 as well as SHADER_F64.
//
// Accuracy against Rust's std (tests/math_f64.rs states and checks the bound per
// function) is a few ulps over the whole double range. Classification is done on the bits,
// because WGSL lets compilers assume floats are finite.
//
// Constants: LN2_HI has 21 trailing zero bits and PIO2_1/PIO2_2/PIO2_3 at least 21, so their
// products with small integers are exact (Cody & Waite); M64_TWO_OVER_PI holds 2/π in
// 24-bit words for Payne–Hanek reduction of huge arguments.

// --- bits ---------------------------------------------------------------------------------

fn m64_hi(x: f64) -> u32 {
    return u32(bitcast<u64>(x) >> 32u);
}

fn m64_lo(x: f64) -> u32 {
    return u32(bitcast<u64>(x) & u64(0xffffffffu));
}

fn m64_make(lo: u32, hi: u32) -> f64 {
    return bitcast<f64>((u64(hi) << 32u) | u64(lo));
}

fn finite_f64(x: f64) -> bool {
    return (m64_hi(x) & 0x7ff00000u) != 0x7ff00000u;
}

fn m64_is_nan(x: f64) -> bool {
    let hi = m64_hi(x);
    return (hi & 0x7ff00000u) == 0x7ff00000u && ((hi & 0x000fffffu) | m64_lo(x)) != 0u;
}

fn m64_is_inf(x: f64) -> bool {
    return (m64_hi(x) & 0x7fffffffu) == 0x7ff00000u && m64_lo(x) == 0u;
}

fn m64_sign_bit(x: f64) -> bool {
    return (m64_hi(x) >> 31u) != 0u;
}

fn nan_f64() -> f64 {
    return m64_make(0u, 0x7ff80000u);
}

fn m64_inf() -> f64 {
    return m64_make(0u, 0x7ff00000u);
}

// |x| with the sign of s.
fn m64_copysign(x: f64, s: f64) -> f64 {
    let hi = (m64_hi(x) & 0x7fffffffu) | (m64_hi(s) & 0x80000000u);
    return m64_make(m64_lo(x), hi);
}

// 2^k for k in [-1022, 1023].
fn m64_pow2(k: i32) -> f64 {
    return m64_make(0u, u32(k + 1023) << 20u);
}

// x * 2^k in two exact steps, so that results in the subnormal range round only once.
fn m64_ldexp(x: f64, k: i32) -> f64 {
    let k1 = clamp(k / 2, -1022, 1023);
    let k2 = clamp(k - k1, -1022, 1023);
    return x * m64_pow2(k1) * m64_pow2(k2);
}

// --- double-double helpers ------------------------------------------------------------------

// Driver compilers may rewrite (a + b) - a as b (legal for them: SPIR-V from naga carries no
// NoContraction), which erases exactly the rounding errors double-double arithmetic
// recovers. Every kernel that includes this library sets m64_one to 1.0 from a buffer at the
// start of main (math_init); multiplying by it hides where a value came from, at the cost of
// one multiply, and changes no value (not even the sign of zero, inf or NaN).
var<private> m64_one: f64;

fn m64_hide(x: f64) -> f64 {
    return x * m64_one;
}

// a + b = s + e exactly, when |a| >= |b|.
fn m64_fast_two_sum(a: f64, b: f64) -> vec2<f64> {
    let s = m64_hide(a + b);
    return vec2<f64>(s, b - (s - a));
}

// a * b = p + e exactly (Dekker, with Veltkamp's split). Vulkan does not promise that
// fma is fused, so exact products cannot rely on it. |a|, |b| < 1e290 (no overflow).
fn m64_split(a: f64) -> vec2<f64> {
    let c = m64_hide(f64(134217729.0) * a); // 2^27 + 1
    let h = c - m64_hide(c - a);
    return vec2<f64>(h, a - h);
}

fn m64_two_prod(a: f64, b: f64) -> vec2<f64> {
    let p = m64_hide(a * b);
    let sa = m64_split(a);
    let sb = m64_split(b);
    return vec2<f64>(p, ((sa.x * sb.x - p) + sa.x * sb.y + sa.y * sb.x) + sa.y * sb.y);
}

// a + b = s + e exactly.
fn m64_two_sum(a: f64, b: f64) -> vec2<f64> {
    let s = m64_hide(a + b);
    let bb = m64_hide(s - a);
    return vec2<f64>(s, (a - (s - bb)) + (b - bb));
}

// --- exp, log -------------------------------------------------------------------------------

const M64_LN2_HI: f64 = 6.93147180369123816490e-01;
const M64_LN2_LO: f64 = 1.90821492927058770002e-10;
const M64_INV_LN2: f64 = 1.4426950408889634;
const M64_INV_LN2_LO: f64 = 2.0355273740931033e-17;
const M64_INV_LN10: f64 = 0.4342944819032518;
const M64_INV_LN10_LO: f64 = 1.098319650216765e-17;
const M64_EXP_MAX: f64 = 709.782712893383973096;
const M64_EXP_MIN: f64 = -745.1332191019412076235;

// e^r - 1 for |r| <= 0.35: Taylor series to r^13 (truncation below 5e-18).
fn m64_expm1_small(r: f64) -> f64 {
    var q = f64(1.0 / 6227020800.0);
    q = q * r + f64(1.0 / 479001600.0);
    q = q * r + f64(1.0 / 39916800.0);
    q = q * r + f64(1.0 / 3628800.0);
    q = q * r + f64(1.0 / 362880.0);
    q = q * r + f64(1.0 / 40320.0);
    q = q * r + f64(1.0 / 5040.0);
    q = q * r + f64(1.0 / 720.0);
    q = q * r + f64(1.0 / 120.0);
    q = q * r + f64(1.0 / 24.0);
    q = q * r + f64(1.0 / 6.0);
    q = q * r + f64(0.5);
    return r + r * r * q;
}

// e^(xh + xl) for xh inside [M64_EXP_MIN, M64_EXP_MAX] (slightly beyond overflows to inf
// or underflows to 0 correctly through m64_ldexp); xl is a small correction.
fn m64_exp_dd(xh: f64, xl: f64) -> f64 {
    let k = round(xh * M64_INV_LN2);
    // Exact: k*LN2_HI is exact and close to xh. Hidden, so that no compiler can fold the
    // two subtractions into xh - k*(LN2_HI + LN2_LO), whose rounded product would cost up
    // to half an ulp of k*ln2. That is the suspected cause of the ~210-ulp errors that
    // `phaseflow selftest` found on NVIDIA's Vulkan driver (H200, 580.159) in sinh and cosh
    // near 700 and in pow with results near 1e-281, where exp alone passed. It is not yet
    // confirmed on that driver.
    let hi = m64_hide(xh - k * M64_LN2_HI);
    let r = (hi - k * M64_LN2_LO) + xl;
    return m64_ldexp(f64(1.0) + m64_expm1_small(r), i32(k));
}

fn m64_exp(x: f64) -> f64 {
    if m64_is_nan(x) {
        return x;
    }
    if x > M64_EXP_MAX {
        return m64_inf();
    }
    if x < M64_EXP_MIN {
        return f64(0.0);
    }
    return m64_exp_dd(x, f64(0.0));
}

fn m64_expm1(x: f64) -> f64 {
    if abs(x) <= f64(0.34) {
        return m64_expm1_small(x);
    }
    if x < f64(-40.0) {
        return f64(-1.0);
    }
    return m64_exp(x) - f64(1.0);
}

// log(x) as a double-double for finite x > 0: x = 2^e * m, m in [sqrt(1/2), sqrt(2)),
// f = m - 1 (exact), log(1 + f) = 2 atanh(s) with s = f / (2 + f) carried to ~2^-100.
fn m64_log_dd(x: f64) -> vec2<f64> {
    var xx = x;
    var e = 0;
    if m64_hi(xx) < 0x00100000u {
        xx = xx * f64(18014398509481984.0); // 2^54: subnormal to normal
        e = -54;
    }
    let hx = m64_hi(xx);
    e += i32(hx >> 20u) - 1023;
    var m = m64_make(m64_lo(xx), (hx & 0x000fffffu) | 0x3ff00000u);
    if m > f64(1.4142135623730951) {
        m = m * f64(0.5);
        e += 1;
    }
    let f = m - f64(1.0);
    let d = m64_fast_two_sum(f64(2.0), f);
    let sh = f / d.x;
    let sd = m64_two_prod(sh, d.x);
    let sl = (((f - sd.x) - sd.y) - sh * d.y) / d.x;
    let z = sh * sh;
    // R(z) = sum_{k=1..11} 2 z^(k-1) / (2k + 1); the series term is s * z * R(z).
    var q = f64(2.0 / 23.0);
    q = q * z + f64(2.0 / 21.0);
    q = q * z + f64(2.0 / 19.0);
    q = q * z + f64(2.0 / 17.0);
    q = q * z + f64(2.0 / 15.0);
    q = q * z + f64(2.0 / 13.0);
    q = q * z + f64(2.0 / 11.0);
    q = q * z + f64(2.0 / 9.0);
    q = q * z + f64(2.0 / 7.0);
    q = q * z + f64(2.0 / 5.0);
    q = q * z + f64(2.0 / 3.0);
    let l1 = m64_fast_two_sum(f64(2.0) * sh, f64(2.0) * sl + sh * z * q);
    let fe = f64(e);
    let s = m64_two_sum(fe * M64_LN2_HI, l1.x);
    return m64_fast_two_sum(s.x, s.y + l1.y + fe * M64_LN2_LO);
}

// NaN for NaN or negative x, -inf for ±0, +inf for +inf; otherwise the finite result.
fn m64_log_special(x: f64) -> vec2<f64> {
    if m64_is_nan(x) || (m64_sign_bit(x) && x != f64(0.0)) {
        return vec2<f64>(nan_f64(), f64(0.0));
    }
    if x == f64(0.0) {
        return vec2<f64>(-m64_inf(), f64(0.0));
    }
    if m64_is_inf(x) {
        return vec2<f64>(x, f64(0.0));
    }
    return m64_log_dd(x);
}

fn m64_log(x: f64) -> f64 {
    return m64_log_special(x).x;
}

// Double-double log times a double-double constant, rounded once at the end.
fn m64_log_scaled(x: f64, ch: f64, cl: f64) -> f64 {
    let l = m64_log_special(x);
    if !finite_f64(l.x) {
        return l.x;
    }
    let p = m64_two_prod(l.x, ch);
    return p.x + (p.y + (l.x * cl + l.y * ch));
}

fn m64_log2(x: f64) -> f64 {
    return m64_log_scaled(x, M64_INV_LN2, M64_INV_LN2_LO);
}

fn m64_log10(x: f64) -> f64 {
    return m64_log_scaled(x, M64_INV_LN10, M64_INV_LN10_LO);
}

// True when y is an odd integer.
fn m64_is_odd_integer(y: f64) -> bool {
    if !finite_f64(y) || floor(y) != y || abs(y) >= f64(9007199254740992.0) {
        return false;
    }
    return floor(y * f64(0.5)) != y * f64(0.5);
}

// x^y with the special cases of C99's pow (which Rust's powf follows).
fn m64_pow(x: f64, y: f64) -> f64 {
    if y == f64(0.0) || x == f64(1.0) {
        return f64(1.0);
    }
    if m64_is_nan(x) || m64_is_nan(y) {
        return nan_f64();
    }
    let ax = abs(x);
    let odd = m64_is_odd_integer(y);
    if m64_is_inf(y) {
        if ax == f64(1.0) {
            return f64(1.0);
        }
        if (ax > f64(1.0)) == (y > f64(0.0)) {
            return m64_inf();
        }
        return f64(0.0);
    }
    if x == f64(0.0) {
        if y < f64(0.0) {
            return select(m64_inf(), m64_copysign(m64_inf(), x), odd);
        }
        return select(f64(0.0), x, odd);
    }
    if m64_is_inf(x) {
        let mag = select(f64(0.0), m64_inf(), y > f64(0.0));
        return select(mag, -mag, m64_sign_bit(x) && odd);
    }
    if x < f64(0.0) && floor(y) != y {
        return nan_f64();
    }
    let sign = select(f64(1.0), f64(-1.0), x < f64(0.0) && odd);
    let l = m64_log_dd(ax);
    let ph = y * l.x;
    if ph > M64_EXP_MAX + f64(1.0) {
        return sign * m64_inf();
    }
    if ph < M64_EXP_MIN - f64(1.0) {
        return sign * f64(0.0);
    }
    // |ph| <= 746 here, so |y| is only huge when log(x) is tiny; then y*l.x needs no split.
    var pl = y * l.y;
    if abs(y) < f64(1e290) {
        pl += m64_two_prod(y, l.x).y;
    }
    return sign * m64_exp_dd(ph, pl);
}

// --- hyperbolic ------------------------------------------------------------------------------

// e^|x| / 2 without overflowing before the result does.
fn m64_half_exp(ax: f64) -> f64 {
    let h = m64_exp(f64(0.5) * ax);
    return (f64(0.5) * h) * h;
}

fn m64_sinh(x: f64) -> f64 {
    let ax = abs(x);
    if !finite_f64(x) || ax < f64(1e-300) {
        return x;
    }
    var r: f64;
    if ax < f64(22.0) {
        let e = m64_expm1(ax);
        r = f64(0.5) * (e + e / (e + f64(1.0)));
    } else {
        r = m64_half_exp(ax);
    }
    return m64_copysign(r, x);
}

fn m64_cosh(x: f64) -> f64 {
    let ax = abs(x);
    if m64_is_nan(x) {
        return x;
    }
    if ax < f64(22.0) {
        let e = m64_exp(ax);
        return f64(0.5) * (e + f64(1.0) / e);
    }
    return m64_half_exp(ax);
}

fn m64_tanh(x: f64) -> f64 {
    let ax = abs(x);
    if m64_is_nan(x) || ax < f64(1e-300) {
        return x;
    }
    var r: f64;
    if ax > f64(22.0) {
        r = f64(1.0);
    } else if ax >= f64(0.5) {
        r = f64(1.0) - f64(2.0) / (m64_expm1(f64(2.0) * ax) + f64(2.0));
    } else {
        let e = m64_expm1(f64(-2.0) * ax);
        r = -e / (e + f64(2.0));
    }
    return m64_copysign(r, x);
}

// --- trigonometric ---------------------------------------------------------------------------

const M64_PIO2_H: f64 = 1.5707963267948966;
const M64_PIO2_L: f64 = 6.123233995736766e-17;
const M64_PIO4_H: f64 = 0.7853981633974483;
const M64_PIO4_L: f64 = 3.061616997868383e-17;
const M64_PI_H: f64 = 3.141592653589793;
const M64_PI_L: f64 = 1.2246467991473532e-16;
const M64_PIO2_1: f64 = 1.57079632673412561417e+00;
const M64_PIO2_2: f64 = 6.07710050630396597660e-11;
const M64_PIO2_3: f64 = 2.02226624871116645580e-21;
const M64_PIO2_3T: f64 = 8.4784276603689e-32;

var<private> M64_TWO_OVER_PI: array<u32, 56> = array<u32, 56>(
    0xa2f983u, 0x6e4e44u, 0x1529fcu, 0x2757d1u, 0xf534ddu, 0xc0db62u, 0x95993cu, 0x439041u,
    0xfe5163u, 0xabdebbu, 0xc561b7u, 0x246e3au, 0x424dd2u, 0xe00649u, 0x2eea09u, 0xd1921cu,
    0xfe1debu, 0x1cb129u, 0xa73ee8u, 0x8235f5u, 0x2ebb44u, 0x84e99cu, 0x7026b4u, 0x5f7e41u,
    0x3991d6u, 0x398353u, 0x39f49cu, 0x845f8bu, 0xbdf928u, 0x3b1ff8u, 0x97ffdeu, 0x05980fu,
    0xef2f11u, 0x8b5a0au, 0x6d1f6du, 0x367ecfu, 0x27cb09u, 0xb74f46u, 0x3f669eu, 0x5fea2du,
    0x7527bau, 0xc7ebe5u, 0xf17b3du, 0x0739f7u, 0x8a5292u, 0xea6bfbu, 0x5fb11fu, 0x8d5d08u,
    0x560330u, 0x46fc7bu, 0x6babf0u, 0xcfbc20u, 0x9af436u, 0x1da9e3u, 0x91615eu, 0xe61b08u,
);

// x = n * π/2 + r with |r| <= ~π/4: returns (r_hi, r_lo, n mod 4) for finite x.
struct M64Reduced {
    hi: f64,
    lo: f64,
    quadrant: u32,
}

fn m64_rem_pio2(x: f64) -> M64Reduced {
    let ax = abs(x);
    if ax <= M64_PIO4_H {
        return M64Reduced(x, f64(0.0), 0u);
    }
    if ax < f64(1647099.3291652855) { // 2^20 * π/2: Cody–Waite with exact products
        let n = round(x * f64(0.6366197723675814));
        var s = m64_two_sum(x - n * M64_PIO2_1, -(n * M64_PIO2_2));
        s = m64_fast_two_sum(s.x, s.y - n * M64_PIO2_3 - n * M64_PIO2_3T);
        return M64Reduced(s.x, s.y, u32(i32(n) & 3));
    }
    return m64_rem_pio2_large(x);
}

// Payne–Hanek: |x| = X * 2^E with X a 53-bit integer split into three 24-bit pieces; the
// product with 2/π is summed column by column (each column exact in f64), keeping only its
// value modulo 8 and carrying the integer part out as the quadrant, so the fraction keeps
// full relative precision even when |x| is very close to a multiple of π/2.
fn m64_rem_pio2_large(x: f64) -> M64Reduced {
    let hx = m64_hi(x) & 0x7fffffffu;
    let e = i32(hx >> 20u) - 1075; // |x| = X * 2^e
    let mant_hi = (hx & 0x000fffffu) | 0x00100000u; // top 21 bits of X
    let mant_lo = m64_lo(x);
    // X = x0 * 2^48 + x1 * 2^24 + x2
    let x0 = f64(mant_hi >> 16u);
    let x1 = f64(((mant_hi & 0xffffu) << 8u) | (mant_lo >> 24u));
    let x2 = f64(mant_lo & 0xffffffu);
    // Column m (words i + j = m) weighs 2^(e + 24 - 24m); columns of weight >= 8 vanish mod 8.
    let m0 = max(0, (e + 22 + 23) / 24);
    var acc = vec2<f64>(f64(0.0), f64(0.0));
    var quadrant = 0.0lf;
    for (var m = m0; m < m0 + 9; m++) {
        var col = x0 * f64(M64_TWO_OVER_PI[m]);
        if m >= 1 {
            col += x1 * f64(M64_TWO_OVER_PI[m - 1]);
        }
        if m >= 2 {
            col += x2 * f64(M64_TWO_OVER_PI[m - 2]);
        }
        var term = m64_ldexp(col, e + 24 - 24 * m);
        term -= f64(8.0) * floor(term * f64(0.125));
        let s = m64_two_sum(acc.x, term);
        acc = m64_fast_two_sum(s.x, s.y + acc.y);
        let whole = floor(acc.x);
        quadrant += whole;
        acc = m64_fast_two_sum(acc.x - whole, acc.y);
    }
    if acc.x >= f64(0.5) {
        acc = m64_fast_two_sum(acc.x - f64(1.0), acc.y);
        quadrant += f64(1.0);
    }
    let q = quadrant - f64(8.0) * floor(quadrant * f64(0.125));
    let rp = m64_two_prod(acc.x, M64_PIO2_H);
    let r = m64_fast_two_sum(rp.x, rp.y + (acc.x * M64_PIO2_L + acc.y * M64_PIO2_H));
    var n = u32(q) & 3u;
    if x < f64(0.0) {
        return M64Reduced(-r.x, -r.y, (4u - n) & 3u);
    }
    return M64Reduced(r.x, r.y, n);
}

// sin(rh + rl) for |rh| <= ~π/4: Taylor series to r^19.
fn m64_sin_kernel(rh: f64, rl: f64) -> f64 {
    let z = rh * rh;
    var p = f64(-1.0 / 121645100408832000.0);
    p = p * z + f64(1.0 / 355687428096000.0);
    p = p * z + f64(-1.0 / 1307674368000.0);
    p = p * z + f64(1.0 / 6227020800.0);
    p = p * z + f64(-1.0 / 39916800.0);
    p = p * z + f64(1.0 / 362880.0);
    p = p * z + f64(-1.0 / 5040.0);
    p = p * z + f64(1.0 / 120.0);
    p = p * z + f64(-1.0 / 6.0);
    return rh + (rh * z * p + rl * (f64(1.0) - f64(0.5) * z));
}

// cos(rh + rl) for |rh| <= ~π/4: Taylor series to r^20, with 1 - z/2 rounded once.
fn m64_cos_kernel(rh: f64, rl: f64) -> f64 {
    let z = rh * rh;
    var q = f64(1.0 / 2432902008176640000.0);
    q = q * z + f64(-1.0 / 6402373705728000.0);
    q = q * z + f64(1.0 / 20922789888000.0);
    q = q * z + f64(-1.0 / 87178291200.0);
    q = q * z + f64(1.0 / 479001600.0);
    q = q * z + f64(-1.0 / 3628800.0);
    q = q * z + f64(1.0 / 40320.0);
    q = q * z + f64(-1.0 / 720.0);
    q = q * z + f64(1.0 / 24.0);
    let hz = f64(0.5) * z;
    let w = m64_hide(f64(1.0) - hz);
    return w + (((f64(1.0) - w) - hz) + (z * z * q - rh * rl));
}

fn m64_sin(x: f64) -> f64 {
    if !finite_f64(x) {
        return nan_f64();
    }
    if x == f64(0.0) {
        return x; // keeps the sign of zero
    }
    let r = m64_rem_pio2(x);
    switch r.quadrant {
        case 0u: { return m64_sin_kernel(r.hi, r.lo); }
        case 1u: { return m64_cos_kernel(r.hi, r.lo); }
        case 2u: { return -m64_sin_kernel(r.hi, r.lo); }
        default: { return -m64_cos_kernel(r.hi, r.lo); }
    }
}

fn m64_cos(x: f64) -> f64 {
    if !finite_f64(x) {
        return nan_f64();
    }
    let r = m64_rem_pio2(x);
    switch r.quadrant {
        case 0u: { return m64_cos_kernel(r.hi, r.lo); }
        case 1u: { return -m64_sin_kernel(r.hi, r.lo); }
        case 2u: { return -m64_cos_kernel(r.hi, r.lo); }
        default: { return m64_sin_kernel(r.hi, r.lo); }
    }
}

fn m64_tan(x: f64) -> f64 {
    if !finite_f64(x) {
        return nan_f64();
    }
    if x == f64(0.0) {
        return x;
    }
    let r = m64_rem_pio2(x);
    let s = m64_sin_kernel(r.hi, r.lo);
    let c = m64_cos_kernel(r.hi, r.lo);
    if (r.quadrant & 1u) == 0u {
        return s / c;
    }
    return -c / s;
}

// atan(t) for |t| <= tan(π/8): Taylor series to t^43 (truncation below 1e-17 relative).
fn m64_atan_kernel(t: f64) -> f64 {
    let z = t * t;
    var p = f64(-1.0 / 43.0);
    for (var k = 20; k >= 1; k--) {
        let odd = f64(2 * k + 1);
        p = p * z + select(f64(1.0), f64(-1.0), (k & 1) == 1) / odd;
    }
    return t + t * z * p;
}

fn m64_atan(x: f64) -> f64 {
    if m64_is_nan(x) {
        return x;
    }
    var ax = abs(x);
    var r: f64;
    if ax > f64(1e17) {
        r = M64_PIO2_H;
    } else if ax > f64(2.414213562373095) { // tan(3π/8): π/2 - atan(1/ax)
        r = M64_PIO2_H - (m64_atan_kernel(f64(1.0) / ax) - M64_PIO2_L);
    } else if ax > f64(0.41421356237309503) { // tan(π/8): π/4 + atan((ax-1)/(ax+1))
        r = M64_PIO4_H + (m64_atan_kernel((ax - f64(1.0)) / (ax + f64(1.0))) + M64_PIO4_L);
    } else {
        r = m64_atan_kernel(ax);
    }
    return m64_copysign(r, x);
}

fn m64_atan2(y: f64, x: f64) -> f64 {
    if m64_is_nan(x) || m64_is_nan(y) {
        return nan_f64();
    }
    let neg_x = m64_sign_bit(x);
    if y == f64(0.0) {
        return select(y, m64_copysign(M64_PI_H, y), neg_x);
    }
    if x == f64(0.0) {
        return m64_copysign(M64_PIO2_H, y);
    }
    if m64_is_inf(x) {
        if m64_is_inf(y) {
            return m64_copysign(select(M64_PIO4_H, f64(2.356194490192345), neg_x), y);
        }
        return m64_copysign(select(f64(0.0), M64_PI_H, neg_x), y);
    }
    if m64_is_inf(y) {
        return m64_copysign(M64_PIO2_H, y);
    }
    let a = m64_atan(abs(y / x));
    if neg_x {
        return m64_copysign(M64_PI_H - (a - M64_PI_L), y);
    }
    return m64_copysign(a, y);
}

fn m64_asin(x: f64) -> f64 {
    let ax = abs(x);
    if m64_is_nan(x) || ax > f64(1.0) {
        return nan_f64();
    }
    if ax < f64(1e-300) {
        return x;
    }
    // 1 - x^2 = (1 - |x|)(1 + |x|): 1 - |x| is exact for |x| >= 1/2.
    let c = sqrt((f64(1.0) - ax) * (f64(1.0) + ax));
    if c == f64(0.0) {
        return m64_copysign(M64_PIO2_H, x);
    }
    return m64_copysign(m64_atan(ax / c), x);
}

fn m64_acos(x: f64) -> f64 {
    let ax = abs(x);
    if m64_is_nan(x) || ax > f64(1.0) {
        return nan_f64();
    }
    return m64_atan2(sqrt((f64(1.0) - ax) * (f64(1.0) + ax)), x);
}
