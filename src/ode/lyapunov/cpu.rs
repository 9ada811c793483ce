//! The CPU twin of the Lyapunov kernel, in f64: the same tableau, step times, tangent
//! stages, modified Gram–Schmidt, blocks and status rules, operation for operation where
//! the order matters (stage sums as `ode::twin::weighted_sum`, the Jacobian–vector products
//! row by row over the structurally non-zero entries in column order, dot products left to
//! right), so the kernel's f64 run agrees with it to rounding. Tests hold the GPU to it; it
//! is usable on its own for a few trajectories.

use super::problem::{Steps, initial_tangent};
use crate::model::System;
use crate::model::derive::Jacobian;
use crate::ode::fixed::cpu::Stepper;
use crate::ode::fixed::tableau::Tableau;
use crate::ode::solution::Status;
use crate::ode::twin::weighted_sum;

/// One trajectory's exponents (largest first, as Gram–Schmidt orders them) and the standard
/// error of each; NaN unless the status is `Success`.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    pub exponents: Vec<f64>,
    pub errors: Vec<f64>,
    pub status: Status,
}

/// What a trajectory carries through the run besides its state: the tangent vectors and the
/// sums the exponents and their errors come from (the kernel's `struct Acc`).
struct Tangent {
    /// k vectors of `dim`, vector-major.
    q: Vec<Vec<f64>>,
    /// Σ ln R_mm over the whole averaging time.
    total: Vec<f64>,
    /// Σ ln R_mm in the current block.
    block: Vec<f64>,
    /// Welford's running mean and sum of squared deviations of the block exponents.
    mean: Vec<f64>,
    m2: Vec<f64>,
}

/// The augmented Runge–Kutta step: the state and the k tangent vectors through the same
/// stages, each tangent stage J(t_i, y_i)·q_i.
struct AugStepper<'a> {
    system: &'a System,
    jacobian: &'a Jacobian,
    tableau: &'a Tableau,
    /// Slopes of the state per stage, and of each tangent vector per stage ([m][stage]).
    k: Vec<Vec<f64>>,
    g: Vec<Vec<Vec<f64>>>,
    stage: Vec<f64>,
    qstage: Vec<f64>,
    jac: Vec<f64>,
    aux: Vec<f64>,
}

impl<'a> AugStepper<'a> {
    fn new(system: &'a System, jacobian: &'a Jacobian, tableau: &'a Tableau, k: usize) -> Self {
        let (dim, s) = (system.dim(), tableau.stages());
        AugStepper {
            system,
            jacobian,
            tableau,
            k: vec![vec![0.0; dim]; s],
            g: vec![vec![vec![0.0; dim]; s]; k],
            stage: vec![0.0; dim],
            qstage: vec![0.0; dim],
            jac: vec![0.0; jacobian.entries.len()],
            aux: Vec::new(),
        }
    }

    fn step(&mut self, t: f64, dt: f64, y: &mut [f64], q: &mut [Vec<f64>], p: &[f64]) {
        let tab = self.tableau;
        for i in 0..tab.stages() {
            for (c, s) in self.stage.iter_mut().enumerate() {
                *s = match weighted_sum(tab.a[i], &self.k, c) {
                    Some(sum) => y[c] + dt * sum,
                    None => y[c],
                };
            }
            let ti = if tab.c[i] == 0.0 {
                t
            } else {
                t + tab.c[i] * dt
            };
            self.system
                .rhs_f64(ti, &self.stage, p, &mut self.aux, &mut self.k[i]);
            self.jacobian.program.eval(
                self.system,
                ti,
                &self.stage,
                p,
                &mut self.aux,
                &mut self.jac,
            );
            for (m, qm) in q.iter().enumerate() {
                for (c, (s, v)) in self.qstage.iter_mut().zip(qm).enumerate() {
                    *s = match weighted_sum(tab.a[i], &self.g[m], c) {
                        Some(sum) => v + dt * sum,
                        None => *v,
                    };
                }
                jv(
                    &self.jacobian.entries,
                    &self.jac,
                    &self.qstage,
                    &mut self.g[m][i],
                );
            }
        }
        for (c, yc) in y.iter_mut().enumerate() {
            *yc += dt * weighted_sum(tab.b, &self.k, c).unwrap_or(0.0);
        }
        for (m, qm) in q.iter_mut().enumerate() {
            for (c, v) in qm.iter_mut().enumerate() {
                *v += dt * weighted_sum(tab.b, &self.g[m], c).unwrap_or(0.0);
            }
        }
    }
}

/// J·v over the structural non-zeros (row-major entries, so each row's terms in column
/// order, summed left to right); rows without entries are zero.
fn jv(entries: &[(usize, usize)], values: &[f64], v: &[f64], out: &mut [f64]) {
    let mut sums: Vec<Option<f64>> = vec![None; out.len()];
    for (&(r, c), &j) in entries.iter().zip(values) {
        let term = j * v[c];
        sums[r] = Some(sums[r].map_or(term, |s| s + term));
    }
    for (o, s) in out.iter_mut().zip(sums) {
        *o = s.unwrap_or(0.0);
    }
}

/// Σ a_c b_c left to right.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut s = a[0] * b[0];
    for c in 1..a.len() {
        s += a[c] * b[c];
    }
    s
}

/// Modified Gram–Schmidt in place: each vector loses its components along the ones before
/// it (as already orthonormalised), then is scaled to unit length; returns ln R_mm.
pub fn mgs(q: &mut [Vec<f64>]) -> Vec<f64> {
    let mut logs = Vec::with_capacity(q.len());
    for m in 0..q.len() {
        let (done, rest) = q.split_at_mut(m);
        let v = &mut rest[0];
        for u in done.iter() {
            let r = dot(u, v);
            for (vc, uc) in v.iter_mut().zip(u) {
                *vc -= r * uc;
            }
        }
        let norm = dot(v, v).sqrt();
        let inv = 1.0 / norm;
        for vc in v.iter_mut() {
            *vc *= inv;
        }
        logs.push(norm.ln());
    }
    logs
}

/// The exponents of one trajectory from initial state `u0` with parameter slots `p`.
pub fn spectrum(
    system: &System,
    jacobian: &Jacobian,
    tableau: &Tableau,
    steps: &Steps,
    k: usize,
    u0: &[f64],
    p: &[f64],
) -> Spectrum {
    let dim = system.dim();
    let grid = &steps.grid;
    let failed = || Spectrum {
        exponents: vec![f64::NAN; k],
        errors: vec![f64::NAN; k],
        status: Status::NonFinite,
    };
    let mut y = u0.to_vec();
    let mut plain = Stepper::new(system, tableau);
    for step in 0..steps.transient {
        plain.step(grid.time_of_step(step), grid.dt, &mut y, p);
    }
    if y.iter().any(|v| !v.is_finite()) {
        return failed();
    }
    let mut tan = Tangent {
        q: initial_tangent(dim, k),
        total: vec![0.0; k],
        block: vec![0.0; k],
        mean: vec![0.0; k],
        m2: vec![0.0; k],
    };
    let mut aug = AugStepper::new(system, jacobian, tableau, k);
    let renorm_time = steps.renorm as f64 * grid.dt;
    let mut step = steps.transient;
    for r in 1..=steps.renorms {
        for _ in 0..steps.renorm {
            aug.step(grid.time_of_step(step), grid.dt, &mut y, &mut tan.q, p);
            step += 1;
        }
        let logs = mgs(&mut tan.q);
        if y.iter().chain(&logs).any(|v| !v.is_finite()) {
            return failed();
        }
        for (m, l) in logs.iter().enumerate() {
            tan.total[m] += l;
            tan.block[m] += l;
        }
        if r % steps.per_block == 0 || r == steps.renorms {
            let count = r - ((r - 1) / steps.per_block) * steps.per_block;
            let b = ((r - 1) / steps.per_block + 1) as f64;
            let block_time = count as f64 * renorm_time;
            for m in 0..k {
                let x = tan.block[m] / block_time;
                let d = x - tan.mean[m];
                tan.mean[m] += d / b;
                tan.m2[m] += d * (x - tan.mean[m]);
                tan.block[m] = 0.0;
            }
        }
    }
    let inv_time = 1.0 / (steps.main() as f64 * grid.dt);
    let nb = steps.blocks() as f64;
    Spectrum {
        exponents: tan.total.iter().map(|s| s * inv_time).collect(),
        errors: tan
            .m2
            .iter()
            .map(|m2| (m2 / (nb * (nb - 1.0))).sqrt())
            .collect(),
        status: Status::Success,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gram–Schmidt leaves orthonormal vectors and R's diagonal: for a triangular
    /// arrangement the logs are those of the known diagonal.
    #[test]
    fn mgs_orthonormalises_and_returns_the_diagonal() {
        // Columns of Q0·R with Q0 = identity: v0 = 2 e0, v1 = 3 e0 + 5 e1, v2 = e0 + e1 + 4 e2.
        let mut q = vec![
            vec![2.0, 0.0, 0.0],
            vec![3.0, 5.0, 0.0],
            vec![1.0, 1.0, 4.0],
        ];
        let logs = mgs(&mut q);
        for (got, want) in logs.iter().zip([2.0f64, 5.0, 4.0]) {
            assert!((got - want.ln()).abs() < 1e-15, "{logs:?}");
        }
        for a in 0..3 {
            for b in 0..3 {
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((dot(&q[a], &q[b]) - want).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn jv_skips_structural_zeros() {
        // [[1, 2], [0, 3]] · (4, 5) = (14, 15); a row without entries is zero.
        let mut out = [f64::NAN; 3];
        jv(
            &[(0, 0), (0, 1), (1, 1)],
            &[1.0, 2.0, 3.0],
            &[4.0, 5.0],
            &mut out,
        );
        assert_eq!(out, [14.0, 15.0, 0.0]);
    }
}
