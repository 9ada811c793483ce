//! Orders of convergence and agreement with analytic solutions, on the GPU (f32) and the
//! CPU twin (f64).

mod common;
use common::*;
use phaseflow::model::System;
use phaseflow::ode::{Axis, Ensemble, Parameters, Save, SavePlan, Solver, TimeGrid, fixed::cpu};

/// Max over trajectories of the final-state error against x = cos(wt), v = -w sin(wt),
/// with w swept over [0.5, 1.5] across 8 trajectories, on the GPU. The error is measured
/// as sqrt(ex^2 + (ev/w)^2), the distance in the oscillator's own phase plane, which does
/// not depend on where in its cycle the trajectory ends.
fn harmonic_error_gpu(solver: Solver, dt: f64) -> f64 {
    let s = system("harmonic");
    let mut e = Ensemble::new(&s, 8);
    e.params = Parameters::Sweep(vec![Axis::linear(0, 0.5, 1.5)]);
    let t1 = 10.0;
    let p = problem(s, solver, t1, dt, Save::Final, e);
    let sol = run(&p);
    (0..8)
        .map(|j| {
            let w = p.ensemble.params(j..j + 1)[0] as f32 as f64;
            let exact = [(w * t1).cos(), -w * (w * t1).sin()];
            let got = sol.final_state(j);
            (got[0] - exact[0]).hypot((got[1] - exact[1]) / w)
        })
        .fold(0.0, f64::max)
}

fn harmonic_error_cpu(solver: Solver, dt: f64) -> f64 {
    let s = system("harmonic");
    let grid = TimeGrid::from_span(0.0, 10.0, dt).unwrap();
    let plan = SavePlan::new(Save::Final, grid.n_steps).unwrap();
    let (end, _) = cpu::integrate(
        &s,
        &solver.step_tableau(),
        &[1.0, 0.0],
        &[1.0],
        &grid,
        &plan,
    );
    (end[0] - 10f64.cos()).hypot(end[1] + 10f64.sin())
}

/// Asserts that the errors, for dt halving each time, fall at the rate of a method of
/// order p: each ratio within `tolerance` (relative) of `expected` = 2^p.
fn assert_order(label: &str, errors: &[f64], expected: f64, tolerance: f64) {
    let ratios: Vec<f64> = errors.windows(2).map(|w| w[0] / w[1]).collect();
    eprintln!("{label}: errors {errors:?}, ratios {ratios:.3?}");
    for r in ratios {
        assert!(
            (r / expected - 1.0).abs() < tolerance,
            "{label}: errors {errors:?} give ratio {r}, expected about {expected}"
        );
    }
}

/// Step sizes chosen so that the error stays well above f32 round-off (~1e-6 here) on the
/// GPU, yet small enough to be in the asymptotic regime: RK4 errors run 4e-2 → 2e-4.
fn gpu_order_of_convergence(solver: Solver, dts: [f64; 3], expected: f64) {
    let errors: Vec<f64> = dts
        .iter()
        .map(|&dt| harmonic_error_gpu(solver, dt))
        .collect();
    assert_order(solver.name(), &errors, expected, 0.1);
}

/// One `#[test]` per case, named after it (`gpu_orders_of_convergence::rk4`), so that a
/// failure names what broke.
macro_rules! cases {
    ($check:ident: $($name:ident => ($($arg:expr),*);)*) => {
        $(
            #[test]
            fn $name() {
                $check($($arg),*)
            }
        )*
    };
}

mod gpu_orders_of_convergence {
    use super::*;
    cases! { gpu_order_of_convergence:
        euler => (Solver::Euler, [0.02, 0.01, 0.005], 2.0);
        heun => (Solver::Heun, [0.1, 0.05, 0.025], 4.0);
        rk4 => (Solver::Rk4, [0.5, 0.25, 0.125], 16.0);
    }
}

/// In f64 the asymptotic regime can be followed much further.
fn cpu_twin_order_of_convergence(
    solver: Solver,
    dt0: f64,
    count: i32,
    expected: f64,
    tolerance: f64,
) {
    let errors: Vec<f64> = (0..count)
        .map(|k| harmonic_error_cpu(solver, dt0 / 2f64.powi(k)))
        .collect();
    let label = format!("{} (f64)", solver.name());
    assert_order(&label, &errors, expected, tolerance);
}

mod cpu_twin_orders_of_convergence {
    use super::*;
    cases! { cpu_twin_order_of_convergence:
        euler => (Solver::Euler, 0.01, 4, 2.0, 0.02);
        heun => (Solver::Heun, 0.01, 4, 4.0, 0.02);
        rk4 => (Solver::Rk4, 0.1, 4, 16.0, 0.02);
        // The pairs' propagating methods in fixed steps
        tsit5 => (Solver::Tsit5, 0.1, 3, 32.0, 0.1);
        dp5 => (Solver::Dp5, 0.1, 3, 32.0, 0.1);
        dop853 => (Solver::Dop853, 0.5, 3, 256.0, 0.1);
    }
}

/// Logistic growth from 0.1 with r = K = 1 against its closed form, RK4 on the GPU.
/// RK4's truncation error at dt = 0.01 is ~1e-10, so what remains is f32 round-off of a
/// quantity of size ~1: allow 2e-6 (about 30 ulps).
#[test]
fn gpu_rk4_matches_logistic_closed_form() {
    let s = system("logistic");
    let p = problem(
        s,
        Solver::Rk4,
        10.0,
        0.01,
        Save::Every(50),
        Ensemble::new(&system("logistic"), 4),
    );
    let sol = run(&p);
    for (slot, &t) in sol.times.iter().enumerate() {
        let exact = 0.1 * t.exp() / (1.0 + 0.1 * (t.exp() - 1.0));
        for j in 0..4 {
            let got = sol.state(slot, j)[0];
            assert!((got - exact).abs() < 2e-6, "t={t}: {got} vs {exact}");
        }
    }
}

/// A system defined inline, as a library user would.
#[test]
fn inline_system_through_the_library() {
    let s = System::from_equations("decay", &[("x", 1.0)], &[("k", 0.5)], "dx = -k*x").unwrap();
    let p = problem(
        s.clone(),
        Solver::Rk4,
        2.0,
        0.01,
        Save::Final,
        Ensemble::new(&s, 3),
    );
    let sol = run(&p);
    let exact = (-1.0f64).exp();
    assert!((sol.final_state(2)[0] - exact).abs() < 1e-6);
}

/// f64 fixed-step kernels against the CPU twin on systems that use the f64 math library
/// (pendulum: sin; duffing: cos of t; aizawa: powers). Both sides do the same operations
/// in the same order from the same f64 inputs; what remains is the math library's few ulps
/// and the driver's freedom to fuse multiply-adds, amplified over 200 steps: measured
/// ≤ 2.2e-16 (lorenz and aizawa bit-identical), bound 1e-11 relative to the state's scale.
#[test]
fn f64_fixed_step_matches_the_cpu_twin() {
    if !gpu().has_f64() {
        return;
    }
    for name in ["pendulum", "duffing", "aizawa", "lorenz"] {
        let s = system(name);
        let dt = s.meta.dt.unwrap();
        let mut e = Ensemble::new(&s, 4);
        e.initial = phaseflow::ode::InitialStates::Perturb {
            state: 0,
            step: 0.1,
        };
        let mut p = problem(s, Solver::Rk4, 200.0 * dt, dt, Save::Every(50), e);
        p.precision = phaseflow::ode::Precision::F64;
        let sol = run(&p);
        let plan = SavePlan::new(p.save, p.grid.n_steps).unwrap();
        let mut worst = 0.0f64;
        for j in 0..4 {
            let (cpu, _) = cpu::integrate(
                &p.system,
                Solver::Rk4.tableau().unwrap(),
                &p.ensemble.states(j..j + 1),
                &p.ensemble.params(j..j + 1),
                &p.grid,
                &plan,
            );
            for slot in 0..sol.n_save() {
                let g = sol.state(slot, j);
                let c = &cpu[slot * sol.dim..(slot + 1) * sol.dim];
                let scale = c.iter().map(|v| v.abs()).fold(1.0, f64::max);
                for d in 0..sol.dim {
                    worst = worst.max((g[d] - c[d]).abs() / scale);
                }
            }
        }
        println!("{name}: {worst:e}");
        assert!(worst < 1e-11, "{name}: {worst:e}");
    }
}
