//! The CPU twin of the adaptive kernel, in f64. It defines what the kernel computes: the
//! same stages, error norm, PI controller, initial-step heuristic, dense output, save rules
//! and statuses, operation for operation, so tests can hold the GPU to it.

use super::pair::{ErrorEstimate, Pair};
use super::problem::{Control, Exponents};
use crate::model::System;
use crate::model::event::Action;
use crate::ode::events::EventLog;
use crate::ode::events::cpu::{Conditions, Recorder, Scan, any_fires, scan};
use crate::ode::solution::{Status, StepCounts};
use crate::ode::twin::weighted_sum;

/// One trajectory's saves ([slot][dim], NaN where never reached), status and counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub saves: Vec<f64>,
    pub status: Status,
    pub counts: StepCounts,
}

/// Everything about a run that is the same for every trajectory.
pub struct Setup<'a> {
    pub system: &'a System,
    pub pair: &'a Pair,
    pub control: &'a Control,
    pub t0: f64,
    pub t1: f64,
    pub save_times: &'a [f64],
}

/// `t + c·h` as the kernel's generator writes it (`adaptive::kernel::stage_time`): `t` for
/// c = 0 and `t + h` for c = 1, so both round the same way.
fn stage_time(t: f64, c: f64, h: f64) -> f64 {
    if c == 0.0 {
        t
    } else if c == 1.0 {
        t + h
    } else {
        t + c * h
    }
}

/// The scaled RMS norm's weights: `atol + rtol * max(|a|, |b|)`.
fn scale(rtol: &[f64], atol: &[f64], a: &[f64], b: &[f64], c: usize) -> f64 {
    atol[c] + rtol[c] * a[c].abs().max(b[c].abs())
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

/// Integrates one trajectory.
pub fn integrate(setup: &Setup, u0: &[f64], p: &[f64]) -> Outcome {
    integrate_events(setup, u0, p).0
}

/// Integrates one trajectory with the system's events (none: `integrate`), as the events
/// kernel does: events are located after an accepted step, before its saves (a cut moves
/// the step's end), and recorded and acted on when the step is committed.
pub fn integrate_events(setup: &Setup, u0: &[f64], p0: &[f64]) -> (Outcome, EventLog) {
    let mut p = p0.to_vec();
    let mut cond = Conditions::new(setup.system);
    let mut rec = Recorder::new(setup.system, setup.t0);
    let has_events = !setup.system.events.is_empty();
    let Setup {
        system,
        pair,
        control,
        t0,
        t1,
        save_times,
    } = *setup;
    let dim = system.dim();
    let n_stages = pair.stages();
    let fsal = n_stages - 1;
    let rtol = control.rtol.values(dim);
    let atol = control.atol.values(dim);
    let exps = Exponents::of(pair);
    let dt_max = control.dt_max.unwrap_or(t1 - t0);
    let weights = pair.dense_weights();

    let mut k = vec![vec![0.0; dim]; pair.all_stages()];
    let mut stage = vec![0.0; dim];
    let mut y1 = vec![0.0; dim];
    let mut aux = Vec::new();
    let mut out = Outcome {
        saves: vec![f64::NAN; save_times.len() * dim],
        status: Status::Running,
        counts: StepCounts::default(),
    };
    let mut y = u0.to_vec();
    let mut t = t0;
    let mut slot = 0;

    system.rhs_f64(t, &y, &p, &mut aux, &mut k[0]);
    out.counts.rhs_evals = 1;
    if !all_finite(&y) || !all_finite(&k[0]) {
        out.status = Status::NonFinite;
        return (out, rec.log());
    }
    let mut h = match control.dt_initial {
        Some(h) => h,
        None => {
            out.counts.rhs_evals += 1;
            initial_step(setup, (&rtol, &atol), dt_max, t, &y, &p, &mut k)
        }
    }
    .min(dt_max);
    let mut g0 = if has_events {
        cond.eval(t, &y, &p)
    } else {
        Vec::new()
    };
    while slot < save_times.len() && save_times[slot] <= t {
        out.saves[slot * dim..(slot + 1) * dim].copy_from_slice(&y);
        slot += 1;
    }
    let mut err_prev = 1.0f64;
    let mut rejected_last = false;
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

        // Stages 1..fsal; the last is evaluated at the new state (FSAL).
        for i in 1..n_stages {
            for (c, s) in stage.iter_mut().enumerate() {
                *s = match weighted_sum(pair.a[i], &k, c) {
                    Some(sum) => y[c] + hu * sum,
                    None => y[c],
                };
            }
            if i == fsal {
                y1.copy_from_slice(&stage);
            }
            let ti = stage_time(t, pair.c[i], hu);
            system.rhs_f64(ti, &stage, &p, &mut aux, &mut k[i]);
        }
        out.counts.rhs_evals += pair.evals_per_attempt();
        let err = error_norm(
            pair,
            control.norm_states(y.len()),
            &rtol,
            &atol,
            hu,
            &y,
            &y1,
            &k,
        );

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
        let mut dense_ready = false;
        // Events: located on the step's dense output before its saves, since a cut moves
        // the step's end.
        let (mut t_new, mut y_new) = (t_end, y1.clone());
        let mut found: Option<(Scan, Vec<f64>)> = None;
        if has_events {
            let g1 = cond.eval(t_end, &y1, &p);
            if any_fires(system, &g0, &g1) {
                extra_stages(setup, t, hu, &y, &p, &mut k, &mut aux);
                dense_ready = true;
                let mut at = |th: f64| {
                    let mut o = vec![0.0; dim];
                    interpolate(&weights, th, hu, &y, &k, &mut o);
                    o
                };
                let sc = scan(&mut cond, (t, hu), &g0, &g1, &p, &mut at);
                if let Some(c) = sc.cut {
                    let th = sc.theta[c];
                    if th != 1.0 {
                        t_new = t + th * hu;
                        y_new = at(th);
                    }
                }
                found = Some((sc, g1));
            } else {
                found = Some((
                    Scan {
                        theta: Vec::new(),
                        cut: None,
                    },
                    g1,
                ));
            }
        }
        while slot < save_times.len() && save_times[slot] <= t_new {
            let dst = &mut out.saves[slot * dim..(slot + 1) * dim];
            if save_times[slot] == t_new {
                dst.copy_from_slice(&y_new);
            } else {
                if !dense_ready {
                    extra_stages(setup, t, hu, &y, &p, &mut k, &mut aux);
                    out.counts.rhs_evals += pair.extra_c.len() as u32;
                    dense_ready = true;
                }
                let theta = (save_times[slot] - t) / hu;
                interpolate(&weights, theta, hu, &y, &k, dst);
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
        let mut terminated = false;
        if let Some((sc, g1)) = found {
            if !sc.theta.is_empty() {
                let mut at = |th: f64| {
                    let mut o = vec![0.0; dim];
                    interpolate(&weights, th, hu, &y, &k, &mut o);
                    o
                };
                rec.record_all(&sc, (t, hu, t_end), &y1, &mut at);
            }
            g0 = g1;
            if let Some(c) = sc.cut {
                terminated = system.events[c].action == Action::Terminate;
                if !terminated {
                    // Restart at the event: new state, first stage and step size.
                    system.events[c].assign_f64(system, t_new, &mut y_new, &mut p);
                    system.rhs_f64(t_new, &y_new, &p, &mut aux, &mut k[fsal]);
                    out.counts.rhs_evals += 1;
                    h = match control.dt_initial {
                        Some(h) => h,
                        None => {
                            out.counts.rhs_evals += 1;
                            let mut kk = vec![k[fsal].clone(), vec![0.0; dim]];
                            initial_step(setup, (&rtol, &atol), dt_max, t_new, &y_new, &p, &mut kk)
                        }
                    }
                    .min(dt_max);
                    err_prev = 1.0;
                    g0 = cond.eval(t_new, &y_new, &p);
                }
            }
        }
        y.copy_from_slice(&y_new);
        let (first, rest) = k.split_at_mut(1);
        first[0].copy_from_slice(&rest[fsal - 1]);
        t = t_new;
        rejected_last = false;
        if terminated {
            out.status = Status::Terminated;
            break;
        }
        if !all_finite(&y) || !all_finite(&k[0]) {
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

/// The scaled error of a step attempt (1 = exactly at tolerance).
/// Over the leading `m` states (see `Control::error_states`).
#[allow(clippy::too_many_arguments)]
fn error_norm(
    pair: &Pair,
    m: usize,
    rtol: &[f64],
    atol: &[f64],
    h: f64,
    y: &[f64],
    y1: &[f64],
    k: &[Vec<f64>],
) -> f64 {
    let dim = m;
    match pair.error {
        ErrorEstimate::Single(e) => {
            let mut acc = 0.0;
            for c in 0..dim {
                let q = (h * weighted_sum(e, k, c).unwrap_or(0.0)) / scale(rtol, atol, y, y1, c);
                acc += q * q;
            }
            (acc / dim as f64).sqrt()
        }
        ErrorEstimate::Dop853 { e5, e3 } => {
            let (mut s5, mut s3) = (0.0, 0.0);
            for c in 0..dim {
                let sc = scale(rtol, atol, y, y1, c);
                let q5 = weighted_sum(e5, k, c).unwrap_or(0.0) / sc;
                let q3 = weighted_sum(e3, k, c).unwrap_or(0.0) / sc;
                s5 += q5 * q5;
                s3 += q3 * q3;
            }
            let mut deno = s5 + 0.01 * s3;
            if deno <= 0.0 {
                deno = 1.0;
            }
            h.abs() * s5 / (dim as f64 * deno).sqrt()
        }
    }
}

/// The dense-output stages beyond the main ones (DOP853's three).
fn extra_stages(
    setup: &Setup,
    t: f64,
    h: f64,
    y: &[f64],
    p: &[f64],
    k: &mut [Vec<f64>],
    aux: &mut Vec<f64>,
) {
    let pair = setup.pair;
    let mut stage = vec![0.0; y.len()];
    for i in pair.stages()..pair.all_stages() {
        for (c, s) in stage.iter_mut().enumerate() {
            *s = match weighted_sum(pair.row(i), k, c) {
                Some(sum) => y[c] + h * sum,
                None => y[c],
            };
        }
        let mut ki = vec![0.0; y.len()];
        setup
            .system
            .rhs_f64(stage_time(t, pair.node(i), h), &stage, p, aux, &mut ki);
        k[i] = ki;
    }
}

/// `w_i(θ)` by Horner's rule: `θ * (W0 + θ * (W1 + ...))`, as the kernel computes it.
pub fn dense_weight(w: &[f64], theta: f64) -> f64 {
    let mut acc = w[w.len() - 1];
    for &c in w[..w.len() - 1].iter().rev() {
        acc = c + theta * acc;
    }
    theta * acc
}

/// `y + h * sum_i w_i(θ) k_i` over the stages whose weight polynomial is not zero.
fn interpolate(
    weights: &[Vec<f64>],
    theta: f64,
    h: f64,
    y: &[f64],
    k: &[Vec<f64>],
    out: &mut [f64],
) {
    let w: Vec<f64> = weights
        .iter()
        .map(|wi| {
            if wi.iter().all(|&c| c == 0.0) {
                0.0
            } else {
                dense_weight(wi, theta)
            }
        })
        .collect();
    for (c, o) in out.iter_mut().enumerate() {
        let mut acc: Option<f64> = None;
        for (i, wi) in weights.iter().enumerate() {
            if wi.iter().any(|&v| v != 0.0) {
                let term = w[i] * k[i][c];
                acc = Some(acc.map_or(term, |a| a + term));
            }
        }
        *o = y[c] + h * acc.unwrap_or(0.0);
    }
}

/// Hairer's starting step size (Solving ODEs I, §II.4): a first guess from the sizes of y0
/// and f0, refined with one explicit Euler step. Uses `k[1]` as scratch.
fn initial_step(
    setup: &Setup,
    (rtol, atol): (&[f64], &[f64]),
    dt_max: f64,
    t0: f64,
    y0: &[f64],
    p: &[f64],
    k: &mut [Vec<f64>],
) -> f64 {
    let dim = y0.len();
    // The sizes measured: the leading `m` states (see `Control::error_states`).
    let m = setup.control.norm_states(dim);
    let sc: Vec<f64> = (0..m).map(|c| atol[c] + rtol[c] * y0[c].abs()).collect();
    let rms =
        |f: &dyn Fn(usize) -> f64| ((0..m).map(|c| f(c) * f(c)).sum::<f64>() / m as f64).sqrt();
    let d0 = rms(&|c| y0[c] / sc[c]);
    let d1 = rms(&|c| k[0][c] / sc[c]);
    let mut h0 = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    };
    h0 = h0.min(dt_max);
    let y1: Vec<f64> = (0..dim).map(|c| y0[c] + h0 * k[0][c]).collect();
    let mut aux = Vec::new();
    let mut f1 = vec![0.0; dim];
    setup.system.rhs_f64(t0 + h0, &y1, p, &mut aux, &mut f1);
    k[1].copy_from_slice(&f1);
    let d2 = rms(&|c| (f1[c] - k[0][c]) / sc[c]) / h0;
    let d = d1.max(d2);
    let h1 = if d <= 1e-15 {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d).powf(1.0 / setup.pair.order as f64)
    };
    (100.0 * h0).min(h1)
}
