//! WGSL of the noise scheme (see `noise.rs`) for SDE kernels, generated for m processes.
//!
//! The kernel supplies `real` and, for f64, the math library (`codegen::real_lib`), and calls
//! `noise_setup` once per invocation before anything else here. f32 kernels get no f64 or
//! u64: Philox's 32x32→64 multiply runs on 16-bit halves (`rng::mulhi_halves` is its
//! twin).
//!
//! f32 differs from the twin at f32 rounding level, by construction: its uniforms are the
//! twin's rounded to f32 (`u32 → f32` rounds to 24 significant bits, so u and v - 1/2 are
//! within 2^-24 *relative* of the twin's: ln u is within ~6e-8 absolute even for the
//! smallest u, where dropping the low 8 bits would not be), and ln, cos, sin are the
//! device's f32 functions; the angle is reduced to [-π, π] exactly (`v - 1/2`, negating
//! both results), the range where Vulkan states its bounds. f64 uses the same 32 bits and
//! the f64 library (`m64_log`, `m64_cos`, `m64_sin`, ≤ 2 ulp), so it matches the twin to a
//! few ulps per operation.

use super::scheme::{
    MAX_TREE_DEPTH, NoiseError, TAG_BRIDGE, TAG_STEPS, TAG_TREE, bridge_tag, check_processes,
};
use crate::precision::Precision;
use std::fmt::Write;

/// Philox4x32-10, shared by both precisions: u32 arithmetic only, branch-free, unrolled.
fn philox() -> String {
    let mut rounds = String::new();
    for round in 0..10 {
        if round > 0 {
            rounds.push_str("    k = k + PHILOX_W;\n");
        }
        rounds.push_str("    c = philox_round(c, k);\n");
    }
    format!(
        r"// Philox4x32-10 (Salmon et al., SC 2011); the twin is rng::philox4x32.
const PHILOX_M: vec2<u32> = vec2<u32>(0xD2511F53u, 0xCD9E8D57u);
const PHILOX_W: vec2<u32> = vec2<u32>(0x9E3779B9u, 0xBB67AE85u);

// High words of PHILOX_M * x per lane from 16-bit halves (Hacker's Delight §8-2 mulhu; the
// twin is rng::mulhi_halves): WGSL has no mulhi, f32 kernels no 64-bit integers. No partial sum
// overflows u32.
fn philox_mulhi(x: vec2<u32>) -> vec2<u32> {{
    let lo16 = vec2<u32>(0xFFFFu);
    let s16 = vec2<u32>(16u);
    let ml = vec2<u32>(0x1F53u, 0x8D57u);
    let mh = vec2<u32>(0xD251u, 0xCD9Eu);
    let xl = x & lo16;
    let xh = x >> s16;
    let t = mh * xl + ((ml * xl) >> s16);
    let w = ml * xh + (t & lo16);
    return mh * xh + (t >> s16) + (w >> s16);
}}

fn philox_round(c: vec4<u32>, k: vec2<u32>) -> vec4<u32> {{
    let x = vec2<u32>(c.x, c.z);
    let hi = philox_mulhi(x);
    let lo = PHILOX_M * x;
    return vec4<u32>(hi.y ^ c.y ^ k.x, lo.y, hi.x ^ c.w ^ k.y, lo.x);
}}

fn philox4x32(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {{
    var c = counter;
    var k = key;
{rounds}    return c;
}}
"
    )
}

/// Box–Muller on one pair of words, per precision.
fn pair(precision: Precision) -> &'static str {
    match precision {
        Precision::F32 => {
            r"// Box–Muller in f32 on the twin's uniforms rounded to f32: u = (f32(r0) + 1/2) 2^-32
// in (0, 1] and v - 1/2 = f32(r1 - 2^31) 2^-32 in [-1/2, 1/2], each within 2^-24 relative
// of the twin's (u may round up to 1, giving z = 0), and cos(2πv) = -cos(2π(v - 1/2))
// (likewise sin) keeps the angle in [-π, π].
fn noise_pair(a: u32, b: u32) -> vec2<f32> {
    let u = (f32(a) + 0.5) * 2.3283064365386963e-10;
    let w = f32(bitcast<i32>(b ^ 0x80000000u)) * 2.3283064365386963e-10;
    let r = sqrt(-2.0 * log(u));
    let angle = 6.2831855 * w;
    return vec2<f32>(-r * cos(angle), -r * sin(angle));
}
"
        }
        Precision::F64 => {
            r"// Box–Muller on 32-bit uniforms, the twin's arithmetic: u = (r0 + 1/2) 2^-32, v = r1 2^-32.
fn noise_pair(a: u32, b: u32) -> vec2<f64> {
    let u = (f64(a) + 0.5) * 2.3283064365386963e-10;
    let v = f64(b) * 2.3283064365386963e-10;
    let r = sqrt(-2.0 * m64_log(u));
    let angle = 6.283185307179586 * v;
    return vec2<f64>(r * m64_cos(angle), r * m64_sin(angle));
}
"
        }
    }
}

/// The WGSL noise library for m Wiener processes (1 ≤ m ≤ 256), for a kernel that defines
/// `real` (and for f64 the math library, `m64_one` set by `math_init`) before it:
///
/// - `struct Wiener { w0: real, .., w{m-1}: real }`
/// - `fn noise_setup(seed_lo: u32, seed_hi: u32, traj: u32, antithetic: u32)`: first, once
///   per invocation (sets key, path and sign; empties the block cache).
/// - `fn step_increments(step: u32, sqrt_dt: real) -> Wiener`: ΔW of one step, any order.
/// - `fn step_increments4(quad: u32, sqrt_dt: real) -> array<Wiener, 4>`: steps 4 quad ..
///   4 quad + 3, the same values, branch-free.
/// - `fn tree_setup(t0: real, t1: real, depth: u32)` (after `noise_setup`) and
///   `fn brownian_at(t: real) -> Wiener`: W(t) of the virtual Brownian tree.
///
/// Philox calls: `step_increments` m/4 per step over consecutive steps where the driver
/// skips branches no lane takes, `blocks_per_step(m)` per step where it runs both sides
/// under a mask (lavapipe), exactly m/4 for m a multiple of 4; `step_increments4` m per four
/// steps; `tree_setup` ceil(m/4), `brownian_at` depth · ceil(m/4). Other names it defines
/// start with `philox_`, `noise_`, `tree_`, `PHILOX_` or `NOISE_`.
pub fn noise_wgsl(m: usize, precision: Precision) -> Result<String, NoiseError> {
    check_processes(m)?;
    let groups = m.div_ceil(4);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// ---- SDE noise for {m} Wiener process(es), {} (generated by ode::sde::noise)",
        precision.wgsl()
    );
    s.push_str(&philox());
    s.push_str(pair(precision));
    let fields: Vec<String> = (0..m).map(|k| format!("w{k}: real")).collect();
    let _ = write!(
        s,
        r"
const NOISE_TAG_STEPS: u32 = {TAG_STEPS:#x}u;
const NOISE_TAG_TREE: u32 = {TAG_TREE:#x}u; // + 0x100 per group of four processes

struct Wiener {{ {} }}

var<private> noise_key: vec2<u32>;
var<private> noise_path: u32;
var<private> noise_sign: real;
// The block of step normals held in noise_cache (0xffffffff: none; real blocks are < 2^30).
var<private> noise_block: u32;
var<private> noise_cache: vec4<real>;

// Call first, once per trajectory: the seed's words, the trajectory index, and 1 for
// antithetic pairs (trajectories 2p and 2p + 1 share path p, odd ones negated).
fn noise_setup(seed_lo: u32, seed_hi: u32, traj: u32, antithetic: u32) {{
    noise_key = vec2<u32>(seed_lo, seed_hi);
    let anti = antithetic != 0u;
    noise_path = select(traj, traj >> 1u, anti);
    noise_sign = select(real(1.0), real(-1.0), anti && (traj & 1u) == 1u);
    noise_block = 0xffffffffu;
}}

// The first two normals of counter (path, block, 0, tag), times the sign.
fn noise_normals2(block: u32, tag: u32) -> vec2<real> {{
    let r = philox4x32(vec4<u32>(noise_path, block, 0u, tag), noise_key);
    return noise_pair(r.x, r.y) * noise_sign;
}}

// All four normals of counter (path, block, 0, tag), times the sign.
fn noise_normals4(block: u32, tag: u32) -> vec4<real> {{
    let r = philox4x32(vec4<u32>(noise_path, block, 0u, tag), noise_key);
    return vec4<real>(noise_pair(r.x, r.y), noise_pair(r.z, r.w)) * noise_sign;
}}
",
        fields.join(", ")
    );
    s.push_str(&steps(m));
    s.push_str(&tree(m, groups));
    Ok(s)
}

/// `fn bridge_normals(step: u32, cut: u32) -> Wiener`: the standard normals (sign included)
/// of the Brownian bridge at cut `cut` of grid step `step` (the twin is
/// `noise::bridge_normals`), for kernels with events only: a kernel without them stays
/// exactly what `noise_wgsl` makes. One Philox call per group of four processes.
pub fn bridge_wgsl(m: usize) -> String {
    let mut s = format!(
        "// Brownian bridge normals of events that cut a step (tag {TAG_BRIDGE:#x} + (cut * 64 + group) << 8)\nfn bridge_normals(step: u32, cut: u32) -> Wiener {{\n"
    );
    let lanes = ["x", "y", "z", "w"];
    let mut args = Vec::new();
    for g in 0..m.div_ceil(4) {
        let base = bridge_tag(0, g as u32);
        let used = (m - 4 * g).min(4);
        let call = if used <= 2 {
            "noise_normals2"
        } else {
            "noise_normals4"
        };
        let _ = writeln!(
            s,
            "    let z{g} = {call}(step, {base:#x}u + ((cut * 64u) << 8u));"
        );
        for lane in lanes.iter().take(used) {
            args.push(format!("z{g}.{lane}"));
        }
    }
    let _ = writeln!(s, "    return Wiener({});\n}}", args.join(", "));
    s
}

/// The most blocks one step's m normals touch: they start at lane `j & 3`, a multiple of
/// gcd(m, 4), so at lane 4 - gcd(m, 4) at worst.
pub(super) fn blocks_per_step(m: usize) -> usize {
    let g = [4, 1, 2, 1][m % 4];
    (4 - g + m - 1) / 4 + 1
}

/// `step_increments` (normal j = step * m + k is lane j & 3 of block j >> 2) and the
/// branch-free `step_increments4`.
fn steps(m: usize) -> String {
    let mut s = String::new();
    let lanes = ["x", "y", "z", "w"];
    if m.is_multiple_of(4) {
        // Whole blocks per step: no cache to consult.
        let q = m / 4;
        let _ = writeln!(
            s,
            "\n// The m increments of `step`, times sqrt(dt) and the sign: {q} Philox call(s)."
        );
        s.push_str("fn step_increments(step: u32, sqrt_dt: real) -> Wiener {\n");
        let mut args = Vec::new();
        for g in 0..q {
            let _ = writeln!(
                s,
                "    let z{g} = sqrt_dt * noise_normals4(step * {q}u + {g}u, NOISE_TAG_STEPS);"
            );
            for lane in lanes {
                args.push(format!("z{g}.{lane}"));
            }
        }
        let _ = writeln!(s, "    return Wiener({});\n}}", args.join(", "));
    } else {
        // The first block may be the cached one (the last block of the previous step); the
        // others are new. Each block is one `if`: a driver that skips branches no lane takes
        // makes m/4 Philox calls per step over consecutive steps, one that runs both sides
        // under a mask (lavapipe) `blocks_per_step(m)`.
        let nb = blocks_per_step(m);
        let _ = write!(
            s,
            r"
// The m increments of `step`, times sqrt(dt) and the sign. Any order of steps is right;
// consecutive steps reuse the cached block.
fn step_increments(step: u32, sqrt_dt: real) -> Wiener {{
    let j = step * {m}u;
    let first = j >> 2u;
    if first != noise_block {{
        noise_cache = noise_normals4(first, NOISE_TAG_STEPS);
        noise_block = first;
    }}
    let o = j & 3u;
"
        );
        if nb == 1 {
            let args: Vec<String> = (0..m)
                .map(|k| format!("sqrt_dt * noise_cache[o + {k}u]"))
                .collect();
            let _ = writeln!(s, "    return Wiener({});\n}}", args.join(", "));
        } else {
            let _ = writeln!(
                s,
                "    let last = (j + {}u) >> 2u;\n    var z: array<vec4<real>, {nb}>;\n    z[0] = noise_cache;",
                m - 1
            );
            for i in 1..nb {
                let _ = writeln!(
                    s,
                    "    if first + {i}u <= last {{\n        z[{i}] = noise_normals4(first + {i}u, NOISE_TAG_STEPS);\n    }}"
                );
            }
            s.push_str("    noise_cache = z[last - first];\n    noise_block = last;\n");
            let args: Vec<String> = (0..m)
                .map(|k| format!("sqrt_dt * z[(o + {k}u) >> 2u][(o + {k}u) & 3u]"))
                .collect();
            let _ = writeln!(s, "    return Wiener({});\n}}", args.join(", "));
        }
    }
    // Four steps at once: exactly m Philox calls and no branch, for kernels that unroll
    // their step loop by four (drivers that run both sides of every branch).
    let _ = write!(
        s,
        r"
// The increments of steps 4 quad .. 4 quad + 3: {m} Philox call(s), no branch. Equal to
// step_increments of each step.
fn step_increments4(quad: u32, sqrt_dt: real) -> array<Wiener, 4> {{
    let block = quad * {m}u;
"
    );
    for b in 0..m {
        let _ = writeln!(
            s,
            "    let z{b} = sqrt_dt * noise_normals4(block + {b}u, NOISE_TAG_STEPS);"
        );
    }
    let steps: Vec<String> = (0..4)
        .map(|i| {
            let args: Vec<String> = (0..m)
                .map(|k| {
                    let idx = i * m + k;
                    format!("z{}.{}", idx / 4, lanes[idx % 4])
                })
                .collect();
            format!("Wiener({})", args.join(", "))
        })
        .collect();
    let _ = writeln!(s, "    return array<Wiener, 4>({});\n}}", steps.join(", "));
    s
}

/// `tree_setup` and `brownian_at`: one Philox call per group of four processes per level.
fn tree(m: usize, groups: usize) -> String {
    // Normals of node `h` for group g: only the pairs the group uses.
    let node = |s: &mut String, h: &str| {
        for g in 0..groups {
            let used = (m - 4 * g).min(4);
            let tag = format!("NOISE_TAG_TREE + {:#x}u", g << 8);
            if used <= 2 {
                let _ = writeln!(s, "        let z{g} = noise_normals2({h}, {tag});");
            } else {
                let _ = writeln!(s, "        let z{g} = noise_normals4({h}, {tag});");
            }
        }
    };
    let z = |k: usize| format!("z{}.{}", k / 4, ["x", "y", "z", "w"][k % 4]);
    let mut s = String::new();
    let _ = write!(
        s,
        r"
var<private> tree_t0: real;
var<private> tree_span: real;
var<private> tree_depth: u32;
var<private> tree_w1: Wiener; // W(t1) = sqrt(t1 - t0) Z(node 0)

// After noise_setup: the tree over [t0, t1] with 2^depth leaves (depth capped at {MAX_TREE_DEPTH}).
fn tree_setup(t0: real, t1: real, depth: u32) {{
    tree_t0 = t0;
    tree_span = t1 - t0;
    tree_depth = min(depth, {MAX_TREE_DEPTH}u);
    let root = sqrt(tree_span);
    {{
"
    );
    node(&mut s, "0u");
    let w1: Vec<String> = (0..m).map(|k| format!("root * {}", z(k))).collect();
    let _ = write!(
        s,
        r"        tree_w1 = Wiener({});
    }}
}}

// W(t) of every process (t clamped to [t0, t1]): bridges down the heap to the leaf of t,
// then linear within it. A pure function of (seed, path, t).
fn brownian_at(t: real) -> Wiener {{
    let leaves = 1u << tree_depth;
    let s = clamp((t - tree_t0) / tree_span, real(0.0), real(1.0));
    let scaled = s * real(leaves);
    let pos = min(u32(scaled), leaves - 1u);
    let frac = scaled - real(pos);
    var wa = Wiener({});
    var wb = tree_w1;
    var h = 1u;
    var variance = real(0.25) * tree_span; // of the midpoint given both ends
    for (var level = 1u; level <= tree_depth; level++) {{
        let sd = sqrt(variance);
        let right = ((pos >> (tree_depth - level)) & 1u) == 1u;
",
        w1.join(", "),
        vec!["real(0.0)"; m].join(", ")
    );
    node(&mut s, "h");
    for k in 0..m {
        let _ = writeln!(
            s,
            "        let mid{k} = real(0.5) * (wa.w{k} + wb.w{k}) + sd * {};",
            z(k)
        );
        let _ = writeln!(
            s,
            "        wa.w{k} = select(wa.w{k}, mid{k}, right);\n        wb.w{k} = select(mid{k}, wb.w{k}, right);"
        );
    }
    let out: Vec<String> = (0..m)
        .map(|k| format!("g * wa.w{k} + frac * wb.w{k}"))
        .collect();
    let _ = write!(
        s,
        r"        h = 2u * h + u32(right);
        variance = real(0.5) * variance;
    }}
    // (1 - frac) a + frac b: exact at both leaf ends (continuity; W(t1) exact).
    let g = real(1.0) - frac;
    return Wiener({});
}}
",
        out.join(", ")
    );
    s
}
