//! The CPU twin of the fixed-step kernel, in f64: the same tableau, the same step times
//! (`t0 + i*dt`), the same save slots and the same status rules. Tests compare the GPU
//! against it; it is also usable on its own for small ensembles.

use super::problem::{SavePlan, TimeGrid};
use super::tableau::Tableau;
use crate::model::System;
use crate::ode::events::EventLog;
use crate::ode::solution::Status;
use crate::ode::twin::weighted_sum;

/// One explicit Runge–Kutta step from `(t, y)` with step `dt`.
pub struct Stepper<'a> {
    system: &'a System,
    tableau: &'a Tableau,
    k: Vec<Vec<f64>>,
    stage: Vec<f64>,
    aux: Vec<f64>,
}

impl<'a> Stepper<'a> {
    pub fn new(system: &'a System, tableau: &'a Tableau) -> Self {
        let dim = system.dim();
        Stepper {
            system,
            tableau,
            k: vec![vec![0.0; dim]; tableau.stages()],
            stage: vec![0.0; dim],
            aux: Vec::new(),
        }
    }

    pub fn step(&mut self, t: f64, dt: f64, y: &mut [f64], p: &[f64]) {
        let tab = self.tableau;
        for i in 0..tab.stages() {
            // Same association as the WGSL: y + dt * (a_i0 k0 + a_i1 k1 + ...).
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
        }
        for (c, yc) in y.iter_mut().enumerate() {
            *yc += dt * weighted_sum(tab.b, &self.k, c).unwrap_or(0.0);
        }
    }
}

/// Integrates one trajectory; returns its saves ([n_slots][dim]) and status.
pub fn integrate(
    system: &System,
    tableau: &Tableau,
    u0: &[f64],
    p: &[f64],
    grid: &TimeGrid,
    plan: &SavePlan,
) -> (Vec<f64>, Status) {
    let dim = system.dim();
    let mut saves = vec![f64::NAN; plan.n_slots() * dim];
    let mut y = u0.to_vec();
    let mut stepper = Stepper::new(system, tableau);
    if plan.initial {
        saves[..dim].copy_from_slice(&y);
    }
    let mut step = 0u32;
    while step < plan.n_steps {
        let next_save = ((step / plan.every + 1) * plan.every).min(plan.n_steps);
        while step < next_save {
            stepper.step(grid.time_of_step(step), grid.dt, &mut y, p);
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

/// The cubic Hermite interpolant at θ of a step of length `h` from `y0` (slope `f0`) to
/// `y1` (slope `f1`), as the kernel's `hermite`.
pub fn hermite(y0: &[f64], h: f64, th: f64, y1: &[f64], f0: &[f64], f1: &[f64]) -> Vec<f64> {
    let th2 = th * th;
    let th3 = th2 * th;
    let h00 = 2.0 * th3 - 3.0 * th2 + 1.0;
    let h10 = th3 - 2.0 * th2 + th;
    let h01 = 3.0 * th2 - 2.0 * th3;
    let h11 = th3 - th2;
    (0..y0.len())
        .map(|c| h00 * y0[c] + h * (h10 * f0[c]) + h01 * y1[c] + h * (h11 * f1[c]))
        .collect()
}

/// One trajectory with events: saves, status and its event log, as the events kernel
/// (`shaders/ode/fixed/events.wgsl`) computes them.
pub fn integrate_events(
    system: &System,
    tableau: &Tableau,
    u0: &[f64],
    p0: &[f64],
    grid: &TimeGrid,
    plan: &SavePlan,
) -> (Vec<f64>, Status, EventLog) {
    use crate::model::event::Action;
    use crate::ode::events::cpu::{Conditions, Recorder, any_fires, scan};
    use crate::ode::events::kernel::MAX_CUTS;
    let dim = system.dim();
    let mut saves = vec![f64::NAN; plan.n_slots() * dim];
    let mut u = u0.to_vec();
    let mut p = p0.to_vec();
    let mut stepper = Stepper::new(system, tableau);
    let mut cond = Conditions::new(system);
    let mut rec = Recorder::new(system, grid.t0);
    let mut aux = Vec::new();
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
            let (mut ta, mut ya, mut h) = (grid.time_of_step(step), u.clone(), grid.dt);
            let mut cuts = 0;
            loop {
                let mut y1 = ya.clone();
                stepper.step(ta, h, &mut y1, &p);
                let g1 = cond.eval(t_end, &y1, &p);
                if cuts < MAX_CUTS && any_fires(system, &g0, &g1) {
                    let mut f0 = vec![0.0; dim];
                    let mut f1 = vec![0.0; dim];
                    system.rhs_f64(ta, &ya, &p, &mut aux, &mut f0);
                    system.rhs_f64(t_end, &y1, &p, &mut aux, &mut f1);
                    let mut at = |th: f64| hermite(&ya, h, th, &y1, &f0, &f1);
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
                        cuts += 1;
                        g0 = cond.eval(tc, &yc, &p);
                        if tc < t_end {
                            (ta, ya, h) = (tc, yc, t_end - tc);
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
