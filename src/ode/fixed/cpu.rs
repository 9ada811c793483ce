//! The CPU twin of the fixed-step kernel, in f64: the same tableau, the same step times
//! (`t0 + i*dt`), the same save slots and the same status rules. Tests compare the GPU
//! against it; it is also usable on its own for small ensembles.

use super::problem::{SavePlan, TimeGrid};
use super::tableau::Tableau;
use crate::model::System;
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
