//! Counter-based Gaussian noise for SDE ensembles: Wiener increments of fixed steps and a
//! virtual Brownian tree, each a pure function of (seed, trajectory, step or time). This
//! file is the f64 CPU twin; `wgsl.rs` generates the same functions for kernels.
//!
//! The scheme (kernels and twin rely on it bit for bit, up to floating-point rounding):
//!
//! - Key = `[seed as u32, (seed >> 32) as u32]`. A trajectory's `path` is its index, or
//!   with antithetic pairs `traj >> 1`, and every normal of an odd trajectory is negated.
//! - [`normals4`]: `r = philox4x32([path, block, 0, tag], key)` (Salmon et al., SC 2011)
//!   gives four standard normals by Box–Muller (Box & Muller, Ann. Math. Stat. 1958) on the
//!   pairs (r0, r1) and (r2, r3): `u = (r0 + 1/2) 2^-32` in (0, 1), `v = r1 2^-32` in
//!   [0, 1), `z0 = sqrt(-2 ln u) cos(2πv)`, `z1 = sqrt(-2 ln u) sin(2πv)`.
//! - Step increments: normal number `j = step * m + k` of the trajectory is lane `j & 3` of
//!   block `j >> 2` under [`TAG_STEPS`]; `ΔW_k = sign sqrt(dt) z`. Consecutive steps of
//!   1-D noise share one Philox call per four steps (kernels: `step_increments` with its
//!   block cache, or `step_increments4` for four steps at once, branch-free).
//! - Brownian tree over [t0, t1] with depth L: W(t0) = 0, W(t1) = sqrt(T) Z(node 0); heap
//!   node h (root 1 covers [t0, t1]) places the midpoint by the Brownian bridge,
//!   `W(mid) = (W(a) + W(b))/2 + sqrt((b - a)/4) Z(node h)`; below L levels W is linear
//!   within the leaf. Z(node h) of process k is lane `k & 3` of
//!   `normals4(seed, path, h, tree_tag(k >> 2))`, `tree_tag(g) = TAG_TREE + g * 0x100`.
//!
//! - Bridge normals (events that cut a fixed step, `sde::events`): Z of process k at cut c
//!   of grid step i is lane `k & 3` of `normals4(seed, path, i, bridge_tag(c, k >> 2))`;
//!   W at θ of a (partial) step of length h with increment ΔW is
//!   `θ ΔW + sqrt(θ (1 - θ) h) Z`, the Brownian bridge between the step's ends.
//!
//! Why the streams never collide: counter word 3 holds the tag. TAG_STEPS ends in the byte
//! 0x31, every tree tag in 0x32 (a group g ≤ 63 changes bits 8..13 only), every bridge tag in
//! 0x33, and
//! `rng::uniform_f64` uses "phaf" (low byte 0x66). Within a tag, (path, block) are counter
//! words 0 and 1, so distinct (trajectory pair, block) never share a counter.

use crate::rng::philox4x32;
use std::f64::consts::TAU;

mod scheme;
mod wgsl;
pub use scheme::{
    MAX_TREE_DEPTH, MAX_WIENER, NoiseError, TAG_BRIDGE, TAG_STEPS, TAG_TREE, bridge_tag,
    check_processes, tree_tag,
};
pub use wgsl::{bridge_wgsl, noise_wgsl};

const TWO_POW_M32: f64 = 1.0 / 4_294_967_296.0;

/// The seed and whether trajectories come in antithetic pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseKey {
    pub seed: u64,
    pub antithetic: bool,
}

impl NoiseKey {
    /// Philox's key words.
    pub fn words(&self) -> [u32; 2] {
        [self.seed as u32, (self.seed >> 32) as u32]
    }

    /// (path, sign) of a trajectory: its index and +1, or with antithetic pairs `traj >> 1`
    /// and -1 for odd trajectories. Indices are taken modulo 2^32 (kernels hold them in u32).
    pub fn path(&self, traj: u64) -> (u32, f64) {
        let traj = traj as u32;
        if self.antithetic {
            (traj >> 1, if traj & 1 == 1 { -1.0 } else { 1.0 })
        } else {
            (traj, 1.0)
        }
    }
}

/// Box–Muller on one pair of 32-bit words (the twin of the f64 kernels' `noise_pair`).
fn pair(a: u32, b: u32) -> (f64, f64) {
    let u = (a as f64 + 0.5) * TWO_POW_M32; // (0, 1): ln u is finite
    let v = b as f64 * TWO_POW_M32;
    let r = (-2.0 * u.ln()).sqrt();
    let angle = TAU * v;
    (r * angle.cos(), r * angle.sin())
}

/// Four standard normals of counter `[path, block, 0, tag]` under the seed's key.
pub fn normals4(seed: u64, path: u32, block: u32, tag: u32) -> [f64; 4] {
    let key = [seed as u32, (seed >> 32) as u32];
    let r = philox4x32([path, block, 0, tag], key);
    let (z0, z1) = pair(r[0], r[1]);
    let (z2, z3) = pair(r[2], r[3]);
    [z0, z1, z2, z3]
}

/// The m increments of step `step` (ΔW_k, already times sqrt(dt) and sign) into
/// `out[..m]`. Panics if `out` is shorter than m. Valid while `step * m < 2^32`
/// (e.g. m ≤ 256 and fewer than 2^24 steps); beyond, numbers repeat, as in the kernels.
pub fn step_increments(
    key: &NoiseKey,
    traj: u64,
    step: u32,
    m: usize,
    sqrt_dt: f64,
    out: &mut [f64],
) {
    let (path, sign) = key.path(traj);
    let mut cached: Option<(u32, [f64; 4])> = None;
    for (k, o) in out[..m].iter_mut().enumerate() {
        let j = step.wrapping_mul(m as u32).wrapping_add(k as u32);
        let block = j >> 2;
        let z = match cached {
            Some((b, z)) if b == block => z,
            _ => {
                let z = normals4(key.seed, path, block, TAG_STEPS);
                cached = Some((block, z));
                z
            }
        };
        *o = sqrt_dt * (sign * z[(j & 3) as usize]);
    }
}

/// The m standard normals (sign included) of the Brownian bridge at cut `cut` of grid step
/// `step` into `out[..m]`, as the kernels' `bridge_normals`.
pub fn bridge_normals(key: &NoiseKey, traj: u64, step: u32, cut: u32, m: usize, out: &mut [f64]) {
    let (path, sign) = key.path(traj);
    for (g, chunk) in out[..m].chunks_mut(4).enumerate() {
        let z = normals4(key.seed, path, step, bridge_tag(cut, g as u32));
        for (o, zk) in chunk.iter_mut().zip(z) {
            *o = sign * zk;
        }
    }
}

/// A virtual Brownian tree: W of m processes at any time of [t0, t1], refined by bridges to
/// `depth` levels and linear within the 2^depth leaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BrownianTree {
    pub t0: f64,
    pub t1: f64,
    pub depth: u32,
    pub m: usize,
}

impl BrownianTree {
    /// A checked tree: finite t0 < t1, depth ≤ [`MAX_TREE_DEPTH`], 1 ≤ m ≤ [`MAX_WIENER`].
    pub fn new(t0: f64, t1: f64, depth: u32, m: usize) -> Result<BrownianTree, NoiseError> {
        if !(t0.is_finite() && t1.is_finite() && t0 < t1) {
            return Err(NoiseError::Interval { t0, t1 });
        }
        if depth > MAX_TREE_DEPTH {
            return Err(NoiseError::Depth(depth));
        }
        check_processes(m)?;
        Ok(BrownianTree { t0, t1, depth, m })
    }

    /// The normals of heap node `h` for all m processes (sign included).
    fn node(&self, seed: u64, path: u32, sign: f64, h: u32, z: &mut [f64]) {
        for (g, chunk) in z[..self.m].chunks_mut(4).enumerate() {
            let n = normals4(seed, path, h, tree_tag(g as u32));
            for (zk, nk) in chunk.iter_mut().zip(n) {
                *zk = sign * nk;
            }
        }
    }

    /// W(t) of every process for trajectory `traj` (sign included) into `out[..m]`; t is
    /// clamped to [t0, t1] (a NaN t gives NaN). Panics if `out` is shorter than m. The depth
    /// is capped at [`MAX_TREE_DEPTH`], as in the kernels.
    pub fn at(&self, key: &NoiseKey, traj: u64, t: f64, out: &mut [f64]) {
        let m = self.m.min(MAX_WIENER);
        let out = &mut out[..m];
        let (path, sign) = key.path(traj);
        let depth = self.depth.min(MAX_TREE_DEPTH);
        let span = self.t1 - self.t0;
        let leaves = 1u32 << depth;
        let s = ((t - self.t0) / span).clamp(0.0, 1.0);
        let scaled = s * leaves as f64;
        let pos = (scaled as u32).min(leaves - 1);
        let frac = scaled - pos as f64;

        let tree = BrownianTree { m, ..*self };
        let mut z = [0.0; MAX_WIENER];
        let mut wa = [0.0; MAX_WIENER];
        let mut wb = [0.0; MAX_WIENER];
        tree.node(key.seed, path, sign, 0, &mut z);
        let root = span.sqrt();
        for k in 0..m {
            wb[k] = root * z[k];
        }
        // Variance of the midpoint given the ends: (b - a)/4, halved at every level.
        let mut var = 0.25 * span;
        let mut h = 1u32;
        for level in 1..=depth {
            let sd = var.sqrt();
            tree.node(key.seed, path, sign, h, &mut z);
            let right = (pos >> (depth - level)) & 1 == 1;
            for k in 0..m {
                let mid = 0.5 * (wa[k] + wb[k]) + sd * z[k];
                if right {
                    wa[k] = mid;
                } else {
                    wb[k] = mid;
                }
            }
            h = 2 * h + right as u32;
            var *= 0.5;
        }
        // (1 - frac) a + frac b, not a + frac (b - a): exact at both ends of a leaf, so W is
        // continuous at leaf edges and W(t1) is exactly sqrt(T) Z(node 0).
        let g = 1.0 - frac;
        for (k, o) in out.iter_mut().enumerate() {
            *o = g * wa[k] + frac * wb[k];
        }
    }
}

#[cfg(test)]
mod tests;
