//! The CPU twin of the SDE kernels, in f64: the same increments (`sde::noise`), the same
//! method formulas in the same order (`sde::kernel`), the same step times, save slots,
//! controller and status rules. Any single trajectory of a GPU run can be replayed here.

use super::kernel::Terms;
use super::method::SdeMethod;
use super::noise::{BrownianTree, NoiseKey, step_increments};
use crate::model::System;
use crate::model::noise::Calculus;
use crate::ode::adaptive::problem::Control;
use crate::ode::fixed::problem::{SavePlan, TimeGrid};
use crate::ode::solution::{Status, StepCounts};

/// One method's steps for one system, with its scratch space.
pub struct SdeStepper<'a> {
    system: &'a System,
    terms: &'a Terms,
    method: SdeMethod,
    aux: Vec<f64>,
    scratch: Vec<f64>,
    f0: Vec<f64>,
    f1: Vec<f64>,
    g0: Vec<f64>,
    g1: Vec<f64>,
    gg: Vec<f64>,
    yb: Vec<f64>,
    yp: Vec<f64>,
    ym: Vec<f64>,
    mc: Vec<f64>,
}

// Loops over components index several parallel arrays (state, drift, diffusion, Milstein
// terms) at once, component by component as the generated WGSL reads.
#[allow(clippy::needless_range_loop)]
impl<'a> SdeStepper<'a> {
    pub fn new(system: &'a System, terms: &'a Terms, method: SdeMethod) -> Self {
        let dim = system.dim();
        let n_g = terms.g.outputs.len();
        SdeStepper {
            system,
            terms,
            method,
            aux: Vec::new(),
            scratch: Vec::new(),
            f0: vec![0.0; dim],
            f1: vec![0.0; dim],
            g0: vec![0.0; n_g],
            g1: vec![0.0; n_g],
            gg: vec![0.0; dim],
            yb: vec![0.0; dim],
            yp: vec![0.0; dim],
            ym: vec![0.0; dim],
            mc: vec![0.0; dim],
        }
    }

    /// Σ_k G[i][k] ΔW_k over the row's non-zero entries in ascending k, as `noise_sum`.
    fn noise_sum(terms: &Terms, i: usize, g: &[f64], dw: &[f64]) -> Option<f64> {
        terms
            .row(i)
            .into_iter()
            .map(|(e, k)| g[e] * dw[k])
            .reduce(|a, b| a + b)
    }

    fn milstein_term(&self, i: usize, h: f64, dw: &[f64]) -> Option<f64> {
        if self.terms.gdg_zero[i] {
            return None;
        }
        let w = dw[self.terms.process_of(i)];
        Some(match self.terms.calculus {
            Calculus::Ito => 0.5 * self.gg[i] * (w * w - h),
            Calculus::Stratonovich => 0.5 * self.gg[i] * (w * w),
        })
    }

    fn eval_g(&mut self, t: f64, y: &[f64], p: &[f64], which: u8) {
        let out = match which {
            0 => &mut self.g0,
            1 => &mut self.g1,
            _ => &mut self.gg,
        };
        let program = if which == 2 {
            self.terms.gdg.as_ref().expect("gdg is built for Milstein")
        } else {
            &self.terms.g
        };
        program.eval(self.system, t, y, p, &mut self.scratch, out);
    }

    /// One fixed step of `h` from `(t, y)` with increments `dw`.
    pub fn step(&mut self, t: f64, h: f64, sqrt_h: f64, y: &mut [f64], p: &[f64], dw: &[f64]) {
        let terms = self.terms;
        let dim = y.len();
        let add = |a: f64, b: Option<f64>| b.map_or(a, |b| a + b);
        match self.method {
            SdeMethod::EulerMaruyama | SdeMethod::Milstein | SdeMethod::MilsteinAdaptive => {
                self.system.rhs_f64(t, y, p, &mut self.aux, &mut self.f0);
                self.eval_g(t, y, p, 0);
                let milstein = self.method != SdeMethod::EulerMaruyama;
                if milstein && terms.gdg.is_some() {
                    self.eval_g(t, y, p, 2);
                }
                for i in 0..dim {
                    let base = add(
                        y[i] + h * self.f0[i],
                        Self::noise_sum(terms, i, &self.g0, dw),
                    );
                    y[i] = if milstein {
                        add(base, self.milstein_term(i, h, dw))
                    } else {
                        base
                    };
                }
            }
            SdeMethod::EulerHeun => {
                self.system.rhs_f64(t, y, p, &mut self.aux, &mut self.f0);
                self.eval_g(t, y, p, 0);
                for i in 0..dim {
                    self.yb[i] = add(
                        y[i] + h * self.f0[i],
                        Self::noise_sum(terms, i, &self.g0, dw),
                    );
                }
                let yb = std::mem::take(&mut self.yb);
                self.system
                    .rhs_f64(t + h, &yb, p, &mut self.aux, &mut self.f1);
                self.eval_g(t + h, &yb, p, 1);
                self.yb = yb;
                for i in 0..dim {
                    let drift = y[i] + 0.5 * h * (self.f0[i] + self.f1[i]);
                    y[i] = match (
                        Self::noise_sum(terms, i, &self.g0, dw),
                        Self::noise_sum(terms, i, &self.g1, dw),
                    ) {
                        (Some(a), Some(b)) => drift + 0.5 * (a + b),
                        _ => drift,
                    };
                }
            }
            SdeMethod::Platen => {
                self.system.rhs_f64(t, y, p, &mut self.aux, &mut self.f0);
                self.eval_g(t, y, p, 0);
                for i in 0..dim {
                    let a = y[i] + h * self.f0[i];
                    self.yb[i] = add(a, Self::noise_sum(terms, i, &self.g0, dw));
                    match terms.row(i).first() {
                        Some(&(e, _)) => {
                            self.yp[i] = a + self.g0[e] * sqrt_h;
                            self.ym[i] = a - self.g0[e] * sqrt_h;
                        }
                        None => {
                            self.yp[i] = a;
                            self.ym[i] = a;
                        }
                    }
                }
                let (yb, yp, ym) = (
                    std::mem::take(&mut self.yb),
                    std::mem::take(&mut self.yp),
                    std::mem::take(&mut self.ym),
                );
                self.system
                    .rhs_f64(t + h, &yb, p, &mut self.aux, &mut self.f1);
                // g at the two supporting values Υ±, one after the other in g1.
                self.eval_g(t + h, &yp, p, 1);
                let gp = self.g1.clone();
                self.eval_g(t + h, &ym, p, 1);
                let gm = &self.g1;
                for i in 0..dim {
                    let drift = y[i] + 0.5 * h * (self.f0[i] + self.f1[i]);
                    y[i] = match terms.row(i).first() {
                        Some(&(e, k)) => {
                            let w = dw[k];
                            drift
                                + 0.25 * (gp[e] + gm[e] + 2.0 * self.g0[e]) * w
                                + 0.25 * (gp[e] - gm[e]) * (w * w - h) / sqrt_h
                        }
                        None => drift,
                    };
                }
                (self.yb, self.yp, self.ym) = (yb, yp, ym);
            }
        }
    }

    /// One attempt of milstein-adaptive: writes the new state into `y1` and returns the
    /// scaled RMS error estimate (as `sde_attempt`).
    #[allow(clippy::too_many_arguments)]
    pub fn attempt(
        &mut self,
        t: f64,
        h: f64,
        y: &[f64],
        p: &[f64],
        dw: &[f64],
        control: &Control,
        y1: &mut [f64],
    ) -> f64 {
        let terms = self.terms;
        let dim = y.len();
        self.system.rhs_f64(t, y, p, &mut self.aux, &mut self.f0);
        self.eval_g(t, y, p, 0);
        if terms.gdg.is_some() {
            self.eval_g(t, y, p, 2);
        }
        for i in 0..dim {
            self.mc[i] = self.milstein_term(i, h, dw).unwrap_or(0.0);
        }
        for i in 0..dim {
            let base = y[i] + h * self.f0[i];
            let base = match Self::noise_sum(terms, i, &self.g0, dw) {
                Some(n) => base + n,
                None => base,
            };
            y1[i] = base + self.mc[i];
        }
        self.system
            .rhs_f64(t + h, y1, p, &mut self.aux, &mut self.f1);
        let (rtol, atol) = (control.rtol.values(dim), control.atol.values(dim));
        let mut acc = 0.0;
        for c in 0..dim {
            let sc = atol[c] + rtol[c] * y[c].abs().max(y1[c].abs());
            let q = (self.mc[c].abs() + (0.5 * h * (self.f1[c] - self.f0[c])).abs()) / sc;
            acc += q * q;
        }
        (acc / dim as f64).sqrt()
    }
}

/// Integrates trajectory `traj` (its run-wide index) with fixed steps; returns its saves
/// ([n_slots][dim]) and status.
#[allow(clippy::too_many_arguments)]
pub fn integrate_fixed(
    system: &System,
    terms: &Terms,
    method: SdeMethod,
    key: &NoiseKey,
    traj: u64,
    (u0, p): (&[f64], &[f64]),
    grid: &TimeGrid,
    plan: &SavePlan,
) -> (Vec<f64>, Status) {
    let dim = system.dim();
    let mut saves = vec![f64::NAN; plan.n_slots() * dim];
    let mut y = u0.to_vec();
    let mut stepper = SdeStepper::new(system, terms, method);
    let mut dw = vec![0.0; terms.m];
    let sqrt_dt = grid.dt.sqrt();
    if plan.initial {
        saves[..dim].copy_from_slice(&y);
    }
    let mut step = 0u32;
    while step < plan.n_steps {
        let next_save = ((step / plan.every + 1) * plan.every).min(plan.n_steps);
        while step < next_save {
            step_increments(key, traj, step, terms.m, sqrt_dt, &mut dw);
            stepper.step(grid.time_of_step(step), grid.dt, sqrt_dt, &mut y, p, &dw);
            step += 1;
        }
        if y.iter().any(|v| !v.is_finite()) {
            return (saves, Status::NonFinite);
        }
        let slot = plan.slot_of_step(step);
        saves[slot * dim..(slot + 1) * dim].copy_from_slice(&y);
    }
    (saves, Status::Success)
}

/// What an adaptive trajectory ends with.
pub struct AdaptiveOutcome {
    pub saves: Vec<f64>,
    pub status: Status,
    pub counts: StepCounts,
    /// W at the last accepted time, per process (for tests: the exact solution on the path).
    pub w: Vec<f64>,
    pub t: f64,
}

/// Integrates trajectory `traj` with milstein-adaptive over the Brownian tree `tree`, its
/// steps landing on `times`; the same controller and statuses as the kernel.
#[allow(clippy::too_many_arguments)]
pub fn integrate_adaptive(
    system: &System,
    terms: &Terms,
    key: &NoiseKey,
    traj: u64,
    (u0, p): (&[f64], &[f64]),
    tree: &BrownianTree,
    times: &[f64],
    (control, dt_initial): (&Control, f64),
) -> AdaptiveOutcome {
    let dim = system.dim();
    let (t0, t1) = (tree.t0, tree.t1);
    let dt_max = control.dt_max.unwrap_or(t1 - t0);
    let mut saves = vec![f64::NAN; times.len() * dim];
    let mut y = u0.to_vec();
    let mut y1 = vec![0.0; dim];
    let mut stepper = SdeStepper::new(system, terms, SdeMethod::MilsteinAdaptive);
    let (mut w, mut w_new, mut dw) = (vec![0.0; terms.m], vec![0.0; terms.m], vec![0.0; terms.m]);
    let mut counts = StepCounts::default();
    let mut t = t0;
    let mut h = dt_initial.min(dt_max);
    let mut slot = 0;
    let underflow = |h: f64, t: f64| h < control.dt_min.max(4.0 * f64::EPSILON * t.abs());
    let (safety, grow, shrink) = (control.safety, control.max_growth, control.max_shrink);
    let mut status = Status::Running;
    if y.iter().any(|v| !v.is_finite()) {
        status = Status::NonFinite;
    }
    while status == Status::Running && slot < times.len() && times[slot] <= t {
        saves[slot * dim..(slot + 1) * dim].copy_from_slice(&y);
        slot += 1;
    }
    while status == Status::Running {
        if t >= t1 {
            status = Status::Success;
            break;
        }
        if counts.accepted + counts.rejected >= control.max_steps {
            status = Status::MaxSteps;
            break;
        }
        let stop = if slot < times.len() {
            times[slot].min(t1)
        } else {
            t1
        };
        let last = h >= stop - t;
        let hu = if last { stop - t } else { h };
        let t_new = if last { stop } else { t + hu };
        tree.at(key, traj, t_new, &mut w_new);
        for k in 0..terms.m {
            dw[k] = w_new[k] - w[k];
        }
        let err = stepper.attempt(t, hu, &y, p, &dw, control, &mut y1);
        counts.rhs_evals += 2;
        if !(err.is_finite() && err <= 1.0) {
            counts.rejected += 1;
            let fr = safety / err.sqrt();
            h = hu
                * if err.is_finite() && fr >= shrink {
                    fr
                } else {
                    shrink
                };
            if underflow(h, t) {
                status = Status::StepUnderflow;
            }
            continue;
        }
        counts.accepted += 1;
        let fa = if err > 0.0 {
            (safety / err.sqrt()).clamp(shrink, grow)
        } else {
            grow
        };
        h = (hu * fa).min(dt_max);
        y.copy_from_slice(&y1);
        t = t_new;
        w.copy_from_slice(&w_new);
        if y.iter().any(|v| !v.is_finite()) {
            status = Status::NonFinite;
            break;
        }
        if last && slot < times.len() && times[slot] == t {
            saves[slot * dim..(slot + 1) * dim].copy_from_slice(&y);
            slot += 1;
        }
        if t < t1 && underflow(h, t) {
            status = Status::StepUnderflow;
        }
    }
    AdaptiveOutcome {
        saves,
        status,
        counts,
        w,
        t,
    }
}
