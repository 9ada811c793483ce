//! The CPU twin of the stiff kernel, in f64: the algorithm of the stiff family (Rosenbrock
//! steps with W = I/(hγ) − J factorised per attempt, their step-size control, dense output,
//! saves and statuses, and `auto`'s switching between Tsit5 and Rodas5P), operation for
//! operation, so tests can hold the GPU to it.
//!
//! Operation orders the kernel matches (sums over non-zero coefficients in ascending j,
//! a coefficient of 1 not multiplied, as `ode::twin::weighted_sum`):
//! - W: diagonal `fac − J_ii` (`fac` where J_ii is a structural zero), off-diagonal
//!   `−J_ij`, with `fac = 1 / (h·γ)`; LU and solve as `lu` documents;
//! - stage argument `U_i = y + (Σ_j a_ij u_j)`, the sum formed first;
//! - stage right side `r_i = (F_i + (Σ_j (c_ij·inv_h)·u_j)) + (γ_i·h)·T`, the c-sum formed
//!   first, the ∂f/∂t term last (only for non-autonomous systems and γ_i ≠ 0);
//! - `y1 = y + (Σ m_i u_i)`, error `Σ e_i u_i`, dense rows `q_k = Σ h_ki u_i`;
//! - `auto`'s ||J||_∞: per row, `|J_ij|` added in ascending j over the structural
//!   non-zeros, then the maximum over rows; Tsit5's estimate `h·sqrt(Σ (k6 − k5)²) /
//!   sqrt(Σ (y1 − g5)²)` (0 when the denominator is 0).
//!
//! Events (`integrate_events`, as `shaders/ode/stiff/events.wgsl`): after an accepted
//! attempt the conditions at its end; a fired event is located on the dense output of the
//! method that took the step (`ode::events::cpu`); a cut moves the step's end before its
//! saves; at commit the records, then (uncut) the next f0, `auto`'s switch, and for an
//! assignment the new state, f0 = f(t*, y*), a reset error history, and the controller's
//! step (or dt_initial; see the events template for why not Hairer's heuristic).

use super::lu;
use super::method::StiffMethod;
use super::problem::Jacobians;
use super::tableau::Rosenbrock;
use crate::model::System;
use crate::model::event::Action;
pub use crate::ode::adaptive::cpu::Outcome;
use crate::ode::adaptive::cpu::dense_weight;
use crate::ode::adaptive::pair::{ErrorEstimate, Pair, TSIT5};
use crate::ode::adaptive::problem::{Control, Exponents};
use crate::ode::events::EventLog;
use crate::ode::events::cpu::{Conditions, Recorder, Scan, any_fires, scan};
use crate::ode::solution::{Status, StepCounts};
use crate::ode::twin::weighted_sum;

/// `auto`: a step's h·ρ estimate (ρ the spectral radius seen by the step) above this marks
/// the step stiff: the threshold of Hairer's DOPRI5 (Hairer & Wanner, Solving ODEs II,
/// §IV.2). Tsit5's stability region meets the negative real axis at −3.51, so a step
/// whose estimate stays above 3.25 is held back by stability, not accuracy.
pub const STIFF_LIMIT: f64 = 3.25;

/// `auto`: consecutive accepted steps on the same side of STIFF_LIMIT before the method
/// switches, so that a transient estimate does not make trajectories flip back and forth.
pub const SWITCH_AFTER: u32 = 15;

/// Everything about a run that is the same for every trajectory.
pub struct Setup<'a> {
    pub system: &'a System,
    pub method: StiffMethod,
    pub jacobians: &'a Jacobians,
    pub control: &'a Control,
    pub t0: f64,
    pub t1: f64,
    pub save_times: &'a [f64],
}

/// The method a trajectory steps with now (`auto` switches; the others stay Stiff).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Explicit,
    Stiff,
}

/// `t + α·h` as the generated code writes it: `t` for α = 0, `t + h` for α = 1.
fn stage_time(t: f64, alpha: f64, h: f64) -> f64 {
    if alpha == 0.0 {
        t
    } else if alpha == 1.0 {
        t + h
    } else {
        t + alpha * h
    }
}

/// The scaled RMS norm's weight of component c: `atol + rtol * max(|y|, |y1|)`.
fn scale(rtol: &[f64], atol: &[f64], y: &[f64], y1: &[f64], c: usize) -> f64 {
    atol[c] + rtol[c] * y[c].abs().max(y1[c].abs())
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

/// The buffers one trajectory reuses from step to step.
struct Work {
    dim: usize,
    aux: Vec<f64>,
    scratch: Vec<f64>,
    /// ∂f/∂u at the entries of `Jacobians::state`, and ∂f/∂t densely (zeros if autonomous).
    jv: Vec<f64>,
    tv: Vec<f64>,
    /// W, then its LU factors (row-major).
    w: Vec<f64>,
    pivots: Vec<usize>,
    /// Rosenbrock stage increments u_i, or Tsit5's stage derivatives k_i.
    u: Vec<Vec<f64>>,
    stage: Vec<f64>,
    /// Tsit5's stage-5 argument (for the stiffness estimate).
    g5: Vec<f64>,
    /// The last stage's f (the next f0 when the method is FSAL).
    f_last: Vec<f64>,
    y1: Vec<f64>,
    /// ||J||_∞ of the last Rosenbrock attempt.
    j_norm: f64,
}

/// What an attempt came to, before the step-size decision.
enum Attempt {
    /// The scaled error of the attempt (1 = exactly at tolerance; NaN possible).
    Error(f64),
    /// The trajectory ends here (non-finite Jacobian, singular W).
    Stop(Status),
}

struct Integrator<'a> {
    setup: &'a Setup<'a>,
    /// The parameters: an assigning event may change them for the rest of the trajectory.
    p: Vec<f64>,
    tab: &'static Rosenbrock,
    pair: &'static Pair,
    rtol: Vec<f64>,
    atol: Vec<f64>,
    tsit5_weights: Vec<Vec<f64>>,
    work: Work,
}

/// Integrates one trajectory.
pub fn integrate(setup: &Setup, u0: &[f64], p: &[f64]) -> Outcome {
    integrate_events(setup, u0, p).0
}

/// Integrates one trajectory with the system's events (none: `integrate`), as the events
/// kernel does.
pub fn integrate_events(setup: &Setup, u0: &[f64], p: &[f64]) -> (Outcome, EventLog) {
    let mut cond = Conditions::new(setup.system);
    let mut rec = Recorder::new(setup.system, setup.t0);
    let has_events = !setup.system.events.is_empty();
    let Setup {
        system,
        method,
        control,
        t0,
        t1,
        save_times,
        ..
    } = *setup;
    let dim = system.dim();
    let tab = method.tableau();
    let pair = &TSIT5;
    let width = tab.stages().max(pair.stages());
    let mut it = Integrator {
        setup,
        p: p.to_vec(),
        tab,
        pair,
        rtol: control.rtol.values(dim),
        atol: control.atol.values(dim),
        tsit5_weights: pair.dense_weights(),
        work: Work {
            dim,
            aux: Vec::new(),
            scratch: Vec::new(),
            jv: vec![0.0; setup.jacobians.state.entries.len()],
            tv: vec![0.0; dim],
            w: vec![0.0; dim * dim],
            pivots: Vec::with_capacity(dim),
            u: vec![vec![0.0; dim]; width],
            stage: vec![0.0; dim],
            g5: vec![0.0; dim],
            f_last: vec![0.0; dim],
            y1: vec![0.0; dim],
            j_norm: 0.0,
        },
    };
    let mut mode = if method.switches() {
        Mode::Explicit
    } else {
        Mode::Stiff
    };
    // The order the initial-step heuristic assumes: the first method's.
    let first_order = match mode {
        Mode::Explicit => pair.order,
        Mode::Stiff => tab.order,
    };
    let dt_max = control.dt_max.unwrap_or(t1 - t0);

    let mut out = Outcome {
        saves: vec![f64::NAN; save_times.len() * dim],
        status: Status::Running,
        counts: StepCounts::default(),
    };
    let mut y = u0.to_vec();
    let mut t = t0;
    let mut f0 = vec![0.0; dim];
    let mut slot = 0;

    system.rhs_f64(t, &y, p, &mut it.work.aux, &mut f0);
    out.counts.rhs_evals = 1;
    if !all_finite(&y) || !all_finite(&f0) {
        out.status = Status::NonFinite;
        return (out, rec.log());
    }
    let mut h = match control.dt_initial {
        Some(h) => h,
        None => {
            out.counts.rhs_evals += 1;
            it.initial_step(first_order, dt_max, t, &y, &f0)
        }
    }
    .min(dt_max);
    let mut g0 = if has_events {
        cond.eval(t, &y, &it.p)
    } else {
        Vec::new()
    };
    while slot < save_times.len() && save_times[slot] <= t {
        out.saves[slot * dim..(slot + 1) * dim].copy_from_slice(&y);
        slot += 1;
    }
    let mut err_prev = 1.0f64;
    let mut rejected_last = false;
    // `auto`: consecutive accepted steps whose estimate points to the other method.
    let mut count = 0u32;
    let underflow = |h: f64, t: f64| h < control.dt_min.max(4.0 * f64::EPSILON * t.abs());

    loop {
        if t >= t1 {
            out.status = Status::Success;
            break;
        }
        if out.counts.attempts() >= control.max_steps as u64 {
            out.status = Status::MaxSteps;
            break;
        }
        let stop = system.break_after(t, t1);
        let last = h >= stop - t;
        let hu = if last { stop - t } else { h };

        let (attempt, exps) = match mode {
            Mode::Stiff => {
                out.counts.jacobians += 1;
                let a = it.rosenbrock_attempt(t, hu, &y, &f0);
                if matches!(a, Attempt::Error(_)) {
                    out.counts.rhs_evals += tab.evals_per_attempt();
                }
                (a, Exponents::of_order(tab.error_order))
            }
            Mode::Explicit => {
                out.counts.rhs_evals += pair.evals_per_attempt();
                (it.tsit5_attempt(t, hu, &y, &f0), Exponents::of(pair))
            }
        };
        let err = match attempt {
            Attempt::Error(err) => err,
            Attempt::Stop(status) => {
                out.status = status;
                break;
            }
        };

        let accept = err <= 1.0; // false for NaN too
        if !accept {
            out.counts.rejected += 1;
            let fac = if err.is_finite() {
                (control.safety * err.powf(-exps.reject)).max(control.max_shrink)
            } else {
                control.max_shrink
            };
            h = hu * fac;
            rejected_last = true;
            if underflow(h, t) {
                out.status = Status::StepUnderflow;
                break;
            }
            continue;
        }

        let t_end = if last { stop } else { t + hu };
        // Events: located on the step's dense output before its saves, since a cut moves
        // the step's end.
        let (mut t_new, mut y_new) = (t_end, it.work.y1.clone());
        let mut found: Option<(Scan, Vec<f64>)> = None;
        if has_events {
            let g1 = cond.eval(t_end, &it.work.y1, &it.p);
            let sc = if any_fires(system, &g0, &g1) {
                let mut at = |th: f64| it.dense(mode, th, hu, &y);
                let sc = scan(&mut cond, (t, hu), &g0, &g1, &it.p, &mut at);
                if let Some(c) = sc.cut {
                    let th = sc.theta[c];
                    if th != 1.0 {
                        t_new = t + th * hu;
                        y_new = at(th);
                    }
                }
                sc
            } else {
                Scan {
                    theta: Vec::new(),
                    cut: None,
                }
            };
            found = Some((sc, g1));
        }
        while slot < save_times.len() && save_times[slot] <= t_new {
            let dst = &mut out.saves[slot * dim..(slot + 1) * dim];
            if save_times[slot] == t_new {
                dst.copy_from_slice(&y_new);
            } else {
                let theta = (save_times[slot] - t) / hu;
                match mode {
                    Mode::Stiff => it.rosenbrock_dense(theta, &y, dst),
                    Mode::Explicit => it.tsit5_dense(theta, hu, &y, dst),
                }
            }
            slot += 1;
        }

        out.counts.accepted += 1;
        let mut fac = if err == 0.0 {
            control.max_growth
        } else {
            (control.safety * err.powf(-exps.alpha) * err_prev.powf(exps.beta))
                .clamp(control.max_shrink, control.max_growth)
        };
        if rejected_last {
            fac = fac.min(1.0);
        }
        err_prev = err.max(1e-4);
        h = (hu * fac).min(dt_max);

        // `auto`: this step's stiffness estimate (before y moves on) counts towards a
        // switch when it points to the other method.
        let step_mode = mode;
        if method.switches() {
            let towards = match mode {
                Mode::Explicit => it.tsit5_stiffness(hu) > STIFF_LIMIT,
                Mode::Stiff => hu * it.work.j_norm < STIFF_LIMIT,
            };
            count = if towards { count + 1 } else { 0 };
            if count == SWITCH_AFTER {
                mode = match mode {
                    Mode::Explicit => Mode::Stiff,
                    Mode::Stiff => Mode::Explicit,
                };
                count = 0;
                out.counts.switches += 1;
                err_prev = 1.0;
            }
        }

        // The records, from the step as it was taken (before `auto`'s switch).
        let mut cut = None;
        if let Some((sc, g1)) = found {
            if !sc.theta.is_empty() {
                let y1 = it.work.y1.clone();
                let mut at = |th: f64| it.dense(step_mode, th, hu, &y);
                rec.record_all(&sc, (t, hu, t_end), &y1, &mut at);
            }
            g0 = g1;
            cut = sc.cut;
        }

        y.copy_from_slice(&y_new);
        t = t_new;
        rejected_last = false;
        // f at the new point: the step's last stage when its method is FSAL (Tsit5,
        // Rosenbrock23), else one more evaluation; a cut step terminates or restarts below.
        if cut.is_none() {
            if step_mode == Mode::Explicit || tab.fsal() {
                f0.copy_from_slice(&it.work.f_last);
            } else {
                system.rhs_f64(t, &y, &it.p, &mut it.work.aux, &mut f0);
                out.counts.rhs_evals += 1;
            }
        }
        if let Some(c) = cut {
            if system.events[c].action == Action::Terminate {
                out.status = Status::Terminated;
                break;
            }
            // Restart at the event: new state and first stage, the controller's step.
            system.events[c].assign_f64(system, t, &mut y, &mut it.p);
            system.rhs_f64(t, &y, &it.p, &mut it.work.aux, &mut f0);
            out.counts.rhs_evals += 1;
            if let Some(h0) = control.dt_initial {
                h = h0.min(dt_max);
            }
            err_prev = 1.0;
            g0 = cond.eval(t, &y, &it.p);
        }
        if !all_finite(&y) || !all_finite(&f0) {
            out.status = Status::NonFinite;
            break;
        }
        if t < t1 && underflow(h, t) {
            out.status = Status::StepUnderflow;
            break;
        }
    }
    (out, rec.log())
}

impl Integrator<'_> {
    /// One Rosenbrock attempt from (t, y) with step h (STIFF.md steps a–e): leaves y1, the
    /// stage increments and the last stage's f in `work`, returns the scaled error.
    fn rosenbrock_attempt(&mut self, t: f64, h: f64, y: &[f64], f0: &[f64]) -> Attempt {
        let Setup {
            system, jacobians, ..
        } = *self.setup;
        let tab = self.tab;
        let p = &self.p;
        let ws = &mut self.work;
        let dim = ws.dim;

        // a. The Jacobians at (t, y).
        let state = &jacobians.state;
        state
            .program
            .eval(system, t, y, p, &mut ws.scratch, &mut ws.jv);
        let non_autonomous = jacobians.non_autonomous();
        if non_autonomous {
            let mut tvals = vec![0.0; jacobians.time.entries.len()];
            jacobians
                .time
                .program
                .eval(system, t, y, p, &mut ws.scratch, &mut tvals);
            ws.tv.iter_mut().for_each(|v| *v = 0.0);
            for (&(r, _), v) in jacobians.time.entries.iter().zip(&tvals) {
                ws.tv[r] = *v;
            }
        }
        if !all_finite(&ws.jv) || !all_finite(&ws.tv) {
            return Attempt::Stop(Status::NonFinite);
        }
        // ||J||_∞ for `auto`'s stiffness estimate: row sums of |J_ij| in entry order.
        let mut norm = 0.0f64;
        let mut row = usize::MAX;
        let mut acc = 0.0;
        for (&(r, _), v) in state.entries.iter().zip(&ws.jv) {
            if r != row {
                norm = norm.max(acc);
                acc = 0.0;
                row = r;
            }
            acc += v.abs();
        }
        ws.j_norm = norm.max(acc);

        // b. W = fac·I − J, structural zeros exactly 0.
        let fac = 1.0 / (h * tab.gamma);
        ws.w.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..dim {
            ws.w[i * dim + i] = fac;
        }
        for (&(r, c), v) in state.entries.iter().zip(&ws.jv) {
            ws.w[r * dim + c] = if r == c { fac - v } else { -v };
        }

        // c. LU with partial pivoting; a zero pivot ends the trajectory.
        match lu::factor(&mut ws.w, dim) {
            Ok(piv) => ws.pivots = piv,
            Err(lu::Singular { .. }) => return Attempt::Stop(Status::Singular),
        }

        // d. The stages.
        let inv_h = 1.0 / h;
        let s = tab.stages();
        for i in 0..s {
            for (c, (st, yc)) in ws.stage.iter_mut().zip(y).enumerate() {
                *st = match weighted_sum(tab.a[i], &ws.u, c) {
                    Some(sum) => yc + sum,
                    None => *yc,
                };
            }
            if i == 0 {
                ws.f_last.copy_from_slice(f0);
            } else {
                let ti = stage_time(t, tab.alpha[i], h);
                system.rhs_f64(ti, &ws.stage, p, &mut ws.aux, &mut ws.f_last);
            }
            let g = tab.gammas[i] * h;
            let mut r = vec![0.0; dim];
            for (c, rc) in r.iter_mut().enumerate() {
                let mut sum: Option<f64> = None;
                for (j, &cij) in tab.c[i].iter().enumerate() {
                    if cij != 0.0 {
                        let term = (cij * inv_h) * ws.u[j][c];
                        sum = Some(sum.map_or(term, |x| x + term));
                    }
                }
                let mut v = match sum {
                    Some(sum) => ws.f_last[c] + sum,
                    None => ws.f_last[c],
                };
                if non_autonomous && tab.gammas[i] != 0.0 {
                    v += g * ws.tv[c];
                }
                *rc = v;
            }
            lu::solve(&ws.w, dim, &ws.pivots, &mut r);
            ws.u[i] = r;
        }
        // Unused stage rows (a wider Tsit5 buffer under `auto`) must not enter the sums.
        let u = &ws.u[..s];

        // e. The new state and the scaled error.
        for (c, (y1c, yc)) in ws.y1.iter_mut().zip(y).enumerate() {
            *y1c = match weighted_sum(tab.m, u, c) {
                Some(sum) => yc + sum,
                None => *yc,
            };
        }
        let mut acc = 0.0;
        for c in 0..dim {
            let q = weighted_sum(tab.e, u, c).unwrap_or(0.0)
                / scale(&self.rtol, &self.atol, y, &ws.y1, c);
            acc += q * q;
        }
        Attempt::Error((acc / dim as f64).sqrt())
    }

    /// The dense output at θ of the step just accepted from y, by the method that took it.
    fn dense(&self, mode: Mode, theta: f64, h: f64, y: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; y.len()];
        match mode {
            Mode::Stiff => self.rosenbrock_dense(theta, y, &mut out),
            Mode::Explicit => self.tsit5_dense(theta, h, y, &mut out),
        }
        out
    }

    /// The Rosenbrock dense output at θ of the step just accepted from y:
    /// `(1−θ) y + θ (y1 + (1−θ)(q0 + θ (q1 + θ q2)))`, rows the method lacks left out.
    fn rosenbrock_dense(&self, theta: f64, y: &[f64], out: &mut [f64]) {
        let tab = self.tab;
        let ws = &self.work;
        let u = &ws.u[..tab.stages()];
        for (c, o) in out.iter_mut().enumerate() {
            let mut poly: Option<f64> = None;
            for row in tab.h.iter().rev() {
                let q = weighted_sum(row, u, c).unwrap_or(0.0);
                poly = Some(match poly {
                    Some(inner) => q + theta * inner,
                    None => q,
                });
            }
            let inner = match poly {
                Some(poly) => ws.y1[c] + (1.0 - theta) * poly,
                None => ws.y1[c],
            };
            *o = (1.0 - theta) * y[c] + theta * inner;
        }
    }

    /// One Tsit5 attempt, exactly as the adaptive twin (`adaptive::cpu`) takes it: k0 = f0,
    /// stages 1..6 with the last at (t + h, y1) (FSAL), the scaled RMS of h·Σ e_i k_i.
    fn tsit5_attempt(&mut self, t: f64, h: f64, y: &[f64], f0: &[f64]) -> Attempt {
        let pair = self.pair;
        let system = self.setup.system;
        let p = &self.p;
        let ws = &mut self.work;
        let dim = ws.dim;
        let n = pair.stages();
        let fsal = n - 1;
        ws.u[0].copy_from_slice(f0);
        for i in 1..n {
            for (c, (st, yc)) in ws.stage.iter_mut().zip(y).enumerate() {
                *st = match weighted_sum(pair.a[i], &ws.u[..n], c) {
                    Some(sum) => yc + h * sum,
                    None => *yc,
                };
            }
            if i == fsal {
                ws.y1.copy_from_slice(&ws.stage);
            }
            // The stage at t + h before the FSAL one (Tsit5's stage 5) feeds the
            // stiffness estimate.
            if i == fsal - 1 {
                ws.g5.copy_from_slice(&ws.stage);
            }
            let ti = stage_time(t, pair.c[i], h);
            let mut k = std::mem::take(&mut ws.u[i]);
            system.rhs_f64(ti, &ws.stage, p, &mut ws.aux, &mut k);
            ws.u[i] = k;
        }
        ws.f_last.copy_from_slice(&ws.u[fsal]);
        let ErrorEstimate::Single(e) = pair.error else {
            unreachable!("Tsit5 has a single error estimate")
        };
        let mut acc = 0.0;
        for c in 0..dim {
            let q = (h * weighted_sum(e, &ws.u[..n], c).unwrap_or(0.0))
                / scale(&self.rtol, &self.atol, y, &ws.y1, c);
            acc += q * q;
        }
        Attempt::Error((acc / dim as f64).sqrt())
    }

    /// Tsit5's continuous extension at θ, as the adaptive twin's `interpolate`:
    /// `y + h Σ_i w_i(θ) k_i` over the stages whose weight polynomial is not zero.
    fn tsit5_dense(&self, theta: f64, h: f64, y: &[f64], out: &mut [f64]) {
        let weights = &self.tsit5_weights;
        let live = |wi: &Vec<f64>| wi.iter().any(|&v| v != 0.0);
        let w: Vec<f64> = weights
            .iter()
            .map(|wi| {
                if live(wi) {
                    dense_weight(wi, theta)
                } else {
                    0.0
                }
            })
            .collect();
        for (c, o) in out.iter_mut().enumerate() {
            let mut acc: Option<f64> = None;
            for (i, wi) in weights.iter().enumerate() {
                if live(wi) {
                    let term = w[i] * self.work.u[i][c];
                    acc = Some(acc.map_or(term, |a| a + term));
                }
            }
            *o = y[c] + h * acc.unwrap_or(0.0);
        }
    }

    /// `auto`'s estimate of h·ρ after an accepted Tsit5 step (Hairer & Wanner, Solving
    /// ODEs II, §IV.2, for DOPRI5): the last two stages are both at t + h, so
    /// ||k6 − k5|| / ||y1 − g5|| estimates the dominant eigenvalue's modulus.
    fn tsit5_stiffness(&self, h: f64) -> f64 {
        let ws = &self.work;
        let n = self.pair.stages();
        let (k5, k6) = (&ws.u[n - 2], &ws.u[n - 1]);
        let mut num = 0.0;
        let mut den = 0.0;
        for c in 0..ws.dim {
            let dk = k6[c] - k5[c];
            let dy = ws.y1[c] - ws.g5[c];
            num += dk * dk;
            den += dy * dy;
        }
        if den == 0.0 {
            0.0
        } else {
            h * num.sqrt() / den.sqrt()
        }
    }

    /// Hairer's starting step size (Solving ODEs I, §II.4), as the adaptive twin's
    /// `initial_step`, for a method of the given order: a first guess from the sizes of y0
    /// and f0, refined with one explicit Euler step (one evaluation).
    fn initial_step(&mut self, order: u32, dt_max: f64, t: f64, y0: &[f64], f0: &[f64]) -> f64 {
        let dim = y0.len();
        let (rtol, atol) = (&self.rtol, &self.atol);
        let sc: Vec<f64> = (0..dim).map(|c| atol[c] + rtol[c] * y0[c].abs()).collect();
        let rms = |f: &dyn Fn(usize) -> f64| {
            ((0..dim).map(|c| f(c) * f(c)).sum::<f64>() / dim as f64).sqrt()
        };
        let d0 = rms(&|c| y0[c] / sc[c]);
        let d1 = rms(&|c| f0[c] / sc[c]);
        let mut h0 = if d0 < 1e-5 || d1 < 1e-5 {
            1e-6
        } else {
            0.01 * d0 / d1
        };
        h0 = h0.min(dt_max);
        let y1: Vec<f64> = (0..dim).map(|c| y0[c] + h0 * f0[c]).collect();
        let mut f1 = vec![0.0; dim];
        self.setup
            .system
            .rhs_f64(t + h0, &y1, &self.p, &mut self.work.aux, &mut f1);
        let d2 = rms(&|c| (f1[c] - f0[c]) / sc[c]) / h0;
        let d = d1.max(d2);
        let h1 = if d <= 1e-15 {
            (h0 * 1e-3).max(1e-6)
        } else {
            (0.01 / d).powf(1.0 / order as f64)
        };
        (100.0 * h0).min(h1)
    }
}
