//! The CPU twin of the SDE kernels with events (`shaders/ode/sde/fixed_events.wgsl`,
//! `shaders/ode/sde/adaptive_events.wgsl`), in f64: the same steps and increments as
//! `sde::cpu`, the events of `events::cpu` located on the step's chord, the same Brownian
//! bridge normals where a fixed step is cut, and W at a cut of an adaptive step from the
//! same virtual Brownian tree.

use super::cpu::{AdaptiveOutcome, SdeStepper};
use super::kernel::Terms;
use super::method::SdeMethod;
use super::noise::{BrownianTree, NoiseKey, bridge_normals, step_increments};
use crate::model::System;
use crate::model::event::Action;
use crate::ode::adaptive::problem::Control;
use crate::ode::events::EventLog;
use crate::ode::events::cpu::{Conditions, Recorder, any_fires, scan};
use crate::ode::events::kernel::MAX_CUTS;
use crate::ode::fixed::problem::{SavePlan, TimeGrid};
use crate::ode::solution::{Status, StepCounts};

/// The chord of a step at θ, as the kernels' `sde_lerp`.
pub fn lerp(y0: &[f64], th: f64, y1: &[f64]) -> Vec<f64> {
    y0.iter().zip(y1).map(|(a, b)| a + th * (b - a)).collect()
}

/// One fixed-step trajectory with events: saves ([n_slots][dim]), status and event log, as
/// the events kernel computes them.
#[allow(clippy::too_many_arguments)]
pub fn integrate_fixed_events(
    system: &System,
    terms: &Terms,
    method: SdeMethod,
    key: &NoiseKey,
    traj: u64,
    (u0, p0): (&[f64], &[f64]),
    grid: &TimeGrid,
    plan: &SavePlan,
) -> (Vec<f64>, Status, EventLog) {
    let dim = system.dim();
    let m = terms.m;
    let mut saves = vec![f64::NAN; plan.n_slots() * dim];
    let mut u = u0.to_vec();
    let mut p = p0.to_vec();
    let mut stepper = SdeStepper::new(system, terms, method);
    let mut cond = Conditions::new(system);
    let mut rec = Recorder::new(system, grid.t0);
    let mut dw0 = vec![0.0; m];
    let mut z = vec![0.0; m];
    let sqrt_dt = grid.dt.sqrt();
    if plan.initial {
        saves[..dim].copy_from_slice(&u);
    }
    let mut g0 = cond.eval(grid.time_of_step(0), &u, &p);
    let mut step = 0u32;
    let mut stopped = false;
    while step < plan.n_steps && !stopped {
        let next_save = ((step / plan.every + 1) * plan.every).min(plan.n_steps);
        while step < next_save {
            let t_end = grid.time_of_step(step + 1);
            step_increments(key, traj, step, m, sqrt_dt, &mut dw0);
            let (mut ta, mut ya, mut h, mut sqrt_h) =
                (grid.time_of_step(step), u.clone(), grid.dt, sqrt_dt);
            let mut dw = dw0.clone();
            let mut cuts = 0;
            loop {
                let mut y1 = ya.clone();
                stepper.step(ta, h, sqrt_h, &mut y1, &p, &dw);
                let g1 = cond.eval(t_end, &y1, &p);
                if cuts < MAX_CUTS && any_fires(system, &g0, &g1) {
                    let mut at = |th: f64| lerp(&ya, th, &y1);
                    let sc = scan(&mut cond, (ta, h), &g0, &g1, &p, &mut at);
                    rec.record_all(&sc, (ta, h, t_end), &y1, &mut at);
                    if let Some(c) = sc.cut {
                        let th = sc.theta[c];
                        let (tc, mut yc) = if th == 1.0 {
                            (t_end, y1.clone())
                        } else {
                            (ta + th * h, at(th))
                        };
                        if system.events[c].action == Action::Terminate {
                            u = yc;
                            stopped = true;
                            if th == 1.0 {
                                step += 1;
                            }
                            break;
                        }
                        system.events[c].assign_f64(system, tc, &mut yc, &mut p);
                        g0 = cond.eval(tc, &yc, &p);
                        if tc < t_end {
                            // W(tc) by the bridge over [ta, ta + h]; the rest of the
                            // increment finishes the grid step.
                            let s = (th * (1.0 - th) * h).sqrt();
                            bridge_normals(key, traj, step, cuts, m, &mut z);
                            for k in 0..m {
                                dw[k] -= th * dw[k] + s * z[k];
                            }
                            cuts += 1;
                            h = t_end - tc;
                            (ta, ya, sqrt_h) = (tc, yc, h.sqrt());
                            continue;
                        }
                        u = yc;
                        break;
                    }
                }
                u = y1;
                g0 = g1;
                break;
            }
            if stopped {
                break;
            }
            step += 1;
        }
        if step == next_save {
            if u.iter().any(|v| !v.is_finite()) {
                return (saves, Status::NonFinite, rec.log());
            }
            let slot = plan.slot_of_step(step);
            saves[slot * dim..(slot + 1) * dim].copy_from_slice(&u);
        }
    }
    let status = if stopped {
        Status::Terminated
    } else {
        Status::Success
    };
    (saves, status, rec.log())
}

/// One milstein-adaptive trajectory with events over the Brownian tree `tree`, its steps
/// landing on `times`: the same controller, statuses and events as the events kernel.
#[allow(clippy::too_many_arguments)]
pub fn integrate_adaptive_events(
    system: &System,
    terms: &Terms,
    key: &NoiseKey,
    traj: u64,
    (u0, p0): (&[f64], &[f64]),
    tree: &BrownianTree,
    times: &[f64],
    (control, dt_initial): (&Control, f64),
) -> (AdaptiveOutcome, EventLog) {
    let dim = system.dim();
    let m = terms.m;
    let (t0, t1) = (tree.t0, tree.t1);
    let dt_max = control.dt_max.unwrap_or(t1 - t0);
    let mut saves = vec![f64::NAN; times.len() * dim];
    let mut y = u0.to_vec();
    let mut p = p0.to_vec();
    let mut y1 = vec![0.0; dim];
    let mut stepper = SdeStepper::new(system, terms, SdeMethod::MilsteinAdaptive);
    let mut cond = Conditions::new(system);
    let mut rec = Recorder::new(system, t0);
    let (mut w, mut w_new, mut dw) = (vec![0.0; m], vec![0.0; m], vec![0.0; m]);
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
    let mut g0 = cond.eval(t, &y, &p);
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
        for k in 0..m {
            dw[k] = w_new[k] - w[k];
        }
        let err = stepper.attempt(t, hu, &y, &p, &dw, control, &mut y1);
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
        let g1 = cond.eval(t_new, &y1, &p);
        let (mut t_end, mut y_end) = (t_new, y1.clone());
        let mut cut = None;
        let mut w_end = w_new.clone();
        if any_fires(system, &g0, &g1) {
            let mut at = |th: f64| lerp(&y, th, &y1);
            let sc = scan(&mut cond, (t, hu), &g0, &g1, &p, &mut at);
            rec.record_all(&sc, (t, hu, t_new), &y1, &mut at);
            cut = sc.cut;
            if let Some(c) = cut {
                let th = sc.theta[c];
                if th != 1.0 {
                    t_end = t + th * hu;
                    y_end = at(th);
                    tree.at(key, traj, t_end, &mut w_end);
                }
            }
        }
        (y, t, w, g0) = (y_end, t_end, w_end, g1);
        if y.iter().any(|v| !v.is_finite()) {
            status = Status::NonFinite;
            break;
        }
        if last && slot < times.len() && times[slot] == t {
            saves[slot * dim..(slot + 1) * dim].copy_from_slice(&y);
            slot += 1;
        }
        if let Some(c) = cut {
            if system.events[c].action == Action::Terminate {
                status = Status::Terminated;
                break;
            }
            system.events[c].assign_f64(system, t, &mut y, &mut p);
            g0 = cond.eval(t, &y, &p);
            h = dt_initial.min(dt_max);
            if y.iter().any(|v| !v.is_finite()) {
                status = Status::NonFinite;
                break;
            }
        }
        if t < t1 && underflow(h, t) {
            status = Status::StepUnderflow;
        }
    }
    (
        AdaptiveOutcome {
            saves,
            status,
            counts,
            w,
            t,
        },
        rec.log(),
    )
}
