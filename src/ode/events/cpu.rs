//! The CPU twin of `events::kernel`, in f64: the same crossing rule, the same Illinois
//! iteration on the family's continuous extension, the same record order and actions.
//! The families' twins (`fixed::cpu`, `adaptive::cpu`) call it where their kernels call
//! the WGSL.

use super::kernel::MAX_ITERATIONS;
use super::log::{EventLog, record_width};
use crate::model::System;
use crate::model::derive::Program;
use crate::model::event::{EventKind, events_program};

/// Every event's condition, evaluated as the kernels' `event_g`.
pub struct Conditions<'a> {
    system: &'a System,
    program: Program,
    scratch: Vec<f64>,
}

impl<'a> Conditions<'a> {
    pub fn new(system: &'a System) -> Self {
        Conditions {
            system,
            program: events_program(system),
            scratch: Vec::new(),
        }
    }

    pub fn eval(&mut self, t: f64, u: &[f64], p: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.system.events.len()];
        self.program
            .eval(self.system, t, u, p, &mut self.scratch, &mut out);
        out
    }
}

/// Whether event `k` fires on a step from `g0` to `g1` (the kernels' `event_any` term).
pub fn fires(system: &System, k: usize, g0: &[f64], g1: &[f64]) -> bool {
    let e = &system.events[k];
    match e.kind {
        EventKind::Discrete => g1[k] > 0.0,
        EventKind::Continuous => e.direction.crosses(g0[k], g1[k]),
    }
}

pub fn any_fires(system: &System, g0: &[f64], g1: &[f64]) -> bool {
    (0..system.events.len()).any(|k| fires(system, k, g0, g1))
}

/// Each event's θ on the step (2 when it did not fire) and the first cutting event.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    pub theta: Vec<f64>,
    pub cut: Option<usize>,
}

/// Locates the fired events of a step from `t` of length `dt`; `at(θ)` is the family's
/// continuous extension.
pub fn scan(
    cond: &mut Conditions,
    (t, dt): (f64, f64),
    g0: &[f64],
    g1: &[f64],
    p: &[f64],
    at: &mut dyn FnMut(f64) -> Vec<f64>,
) -> Scan {
    let system = cond.system;
    let m = system.events.len();
    let mut theta = vec![2.0; m];
    for k in 0..m {
        if !fires(system, k, g0, g1) {
            continue;
        }
        theta[k] = match system.events[k].kind {
            EventKind::Discrete => 1.0,
            EventKind::Continuous => locate(cond, k, g0[k] < 0.0, (t, dt), (g0[k], g1[k]), p, at),
        };
    }
    let mut cut = None;
    let mut best = 2.0;
    for (k, e) in system.events.iter().enumerate() {
        if e.action.cuts() && theta[k] < best {
            best = theta[k];
            cut = Some(k);
        }
    }
    Scan { theta, cut }
}

/// Illinois on θ ∈ [0, 1], as `event_locate`.
fn locate(
    cond: &mut Conditions,
    k: usize,
    up: bool,
    (t, dt): (f64, f64),
    (g_start, g_end): (f64, f64),
    p: &[f64],
    at: &mut dyn FnMut(f64) -> Vec<f64>,
) -> f64 {
    if g_end == 0.0 {
        return 1.0;
    }
    let tol = 4.0 * f64::EPSILON * 1f64.max(t.abs()) / dt;
    let (mut a, mut b, mut ga, mut gb) = (0.0f64, 1.0f64, g_start, g_end);
    let mut side = 0;
    for _ in 0..MAX_ITERATIONS {
        if b - a <= tol {
            break;
        }
        let mut m = (a * gb - b * ga) / (gb - ga);
        if !(m > a && m < b) {
            m = 0.5 * (a + b);
        }
        let gm = cond.eval(t + m * dt, &at(m), p)[k];
        if (up && gm >= 0.0) || (!up && gm <= 0.0) {
            b = m;
            gb = gm;
            if gm == 0.0 {
                break;
            }
            if side == 1 {
                ga *= 0.5;
            }
            side = 1;
        } else {
            a = m;
            ga = gm;
            if side == -1 {
                gb *= 0.5;
            }
            side = -1;
        }
    }
    b
}

/// One trajectory's log as it is written: the count and the first `k` records.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub k: usize,
    pub dim: usize,
    /// Records before this time are not kept or counted (t0 + transient).
    pub from: f64,
    pub count: u32,
    pub records: Vec<f64>,
}

impl Recorder {
    pub fn new(system: &System, t0: f64) -> Recorder {
        let spec = system.event_log;
        let dim = system.dim();
        Recorder {
            k: spec.k,
            dim,
            from: t0 + spec.transient,
            count: 0,
            records: vec![f64::NAN; spec.k * record_width(dim)],
        }
    }

    /// As `event_record`.
    pub fn record(&mut self, k: usize, te: f64, y: &[f64]) {
        if te < self.from {
            return;
        }
        let n = self.count as usize;
        if n < self.k {
            let w = record_width(self.dim);
            let row = &mut self.records[n * w..(n + 1) * w];
            row[0] = te;
            row[1] = k as f64;
            row[2..].copy_from_slice(y);
        }
        self.count += 1;
    }

    /// As `event_record_all`: the fired events in (θ, index) order, up to the cut.
    pub fn record_all(
        &mut self,
        scan: &Scan,
        (t, dt, t_end): (f64, f64, f64),
        y1: &[f64],
        at: &mut dyn FnMut(f64) -> Vec<f64>,
    ) {
        let mut order: Vec<usize> = (0..scan.theta.len())
            .filter(|&k| scan.theta[k] < 2.0)
            .collect();
        order.sort_by(|&a, &b| scan.theta[a].total_cmp(&scan.theta[b]).then(a.cmp(&b)));
        for k in order {
            if let Some(c) = scan.cut {
                let (tb, tc) = (scan.theta[k], scan.theta[c]);
                if tb > tc || (tb == tc && k > c) {
                    break;
                }
            }
            if scan.theta[k] == 1.0 {
                self.record(k, t_end, y1);
            } else {
                let th = scan.theta[k];
                self.record(k, t + th * dt, &at(th));
            }
            if Some(k) == scan.cut {
                break;
            }
        }
    }

    /// This trajectory as a one-trajectory log.
    pub fn log(&self) -> EventLog {
        EventLog {
            k: self.k,
            dim: self.dim,
            counts: vec![self.count],
            records: self.records.clone(),
        }
    }
}

/// Joins one-trajectory logs into one.
pub fn join(logs: &[EventLog], k: usize, dim: usize) -> EventLog {
    let mut out = EventLog::empty(logs.len(), k, dim);
    for (j, l) in logs.iter().enumerate() {
        out.place(j, l);
    }
    out
}
