//! Ensemble semantics: parameters land on the right trajectory, very large N, statuses,
//! the save grid, and results independent of how the run is cut up.

mod common;
use common::*;
use phaseflow::model::System;
use phaseflow::ode::{
    self, Axis, Ensemble, InitialStates, Parameters, RunOptions, Save, Solver, Status,
};
use phaseflow::schedule::PlanCaps;

/// dx/dt = a, dy/dt = b: after time T the state is exactly (aT, bT) for any RK method, so
/// each trajectory's final state names the parameters it was given.
fn drift() -> System {
    System::from_equations(
        "drift",
        &[("x", 0.0), ("y", 0.0)],
        &[("a", 0.0), ("b", 0.0)],
        "dx = a\ndy = b",
    )
    .unwrap()
}

#[test]
fn sweep_puts_each_value_on_its_trajectory() {
    let s = drift();
    let n = 101;
    let mut e = Ensemble::new(&s, n);
    e.params = Parameters::Sweep(vec![Axis::linear(0, -2.0, 3.0)]);
    let p = problem(s, Solver::Rk4, 1.0, 0.25, Save::Final, e);
    let sol = run(&p);
    for j in 0..n {
        let a = (-2.0 + 5.0 * j as f64 / 100.0) as f32;
        assert_eq!(sol.final_state(j), [a as f64, 0.0], "trajectory {j}");
    }
}

#[test]
fn two_parameter_grid_varies_the_first_axis_slowest() {
    let s = drift();
    let mut e = Ensemble::new(&s, 12);
    e.params = Parameters::Sweep(vec![
        Axis::grid(1, 0.0, 2.0, 3),
        Axis::grid(0, 10.0, 40.0, 4),
    ]);
    let sol = run(&problem(s, Solver::Euler, 1.0, 1.0, Save::Final, e));
    for j in 0..12 {
        let (b, a) = ((j / 4) as f32, 10.0 + 10.0 * (j % 4) as f32);
        assert_eq!(sol.final_state(j), [a as f64, b as f64], "trajectory {j}");
    }
}

/// More trajectories than one dimension of workgroups can cover (65,535 × 64), so the
/// dispatch must use its second dimension; the last trajectories must still be right.
#[test]
fn n_beyond_one_dispatch_dimension() {
    let s = System::from_equations("ramp", &[("x", 0.0)], &[("a", 0.0)], "dx = a").unwrap();
    let n = 65_535 * 64 + 4_321;
    let mut e = Ensemble::new(&s, n);
    e.params = Parameters::Sweep(vec![Axis::linear(0, 0.0, (n - 1) as f64)]);
    let sol = run(&problem(s, Solver::Euler, 1.0, 1.0, Save::Final, e));
    assert_eq!(
        sol.stats.chunks, 1,
        "one chunk, so one dispatch covers all of them"
    );
    for j in [0, 1, 65_535 * 64 - 1, 65_535 * 64, n - 2, n - 1] {
        assert_eq!(sol.final_state(j)[0], j as f64, "trajectory {j}");
    }
    assert!(sol.status.iter().all(|&s| s == Status::Success));
}

/// dx/dt = x^2 blows up at t = 1/x0. Over [0, 0.8], starts above 1.25 become non-finite;
/// the others must be unaffected and match x0 / (1 - x0 t).
#[test]
fn blow_up_marks_only_its_own_trajectory() {
    let s = System::from_equations("blowup", &[("x", 0.1)], &[], "dx = x^2").unwrap();
    let mut e = Ensemble::new(&s, 20);
    e.initial = InitialStates::Grid(vec![Axis::linear(0, 0.1, 2.0)]);
    let p = problem(s, Solver::Rk4, 0.8, 0.001, Save::Every(100), e);
    let sol = run(&p);
    for j in 0..20 {
        let x0 = p.ensemble.states(j..j + 1)[0] as f32 as f64;
        if x0 < 1.2 {
            assert_eq!(sol.status[j], Status::Success, "x0 = {x0}");
            for (slot, &t) in sol.times.iter().enumerate() {
                let exact = x0 / (1.0 - x0 * t);
                let got = sol.state(slot, j)[0];
                assert!(
                    (got - exact).abs() <= 1e-4 * exact,
                    "x0 {x0} t {t}: {got} vs {exact}"
                );
            }
        } else if x0 > 1.3 {
            assert_eq!(sol.status[j], Status::NonFinite, "x0 = {x0}");
            // Saves before the blow-up are finite, the ones after are NaN.
            let blowup = 1.0 / x0;
            for (slot, &t) in sol.times.iter().enumerate() {
                let v = sol.state(slot, j)[0];
                if t < blowup - 0.01 {
                    assert!(v.is_finite(), "x0 {x0} t {t}: {v}");
                } else if t > blowup + 0.1 {
                    assert!(v.is_nan(), "x0 {x0} t {t}: {v}");
                }
            }
        }
    }
    let counts = sol.status_counts();
    assert!(
        counts
            .iter()
            .any(|&(s, c)| s == Status::NonFinite && c >= 6),
        "{counts:?}"
    );
}

fn lorenz_params_table(rows: usize, row: impl Fn(usize) -> Vec<f64>) -> Parameters {
    let data: Vec<f64> = (0..rows).flat_map(&row).collect();
    let cols = data.len() / rows;
    Parameters::Table(ode::Table {
        data,
        rows,
        cols,
        origin: "test".into(),
    })
}

/// A NaN in the inputs is refused before any work.
#[test]
fn nan_input_is_refused_before_running() {
    let s = system("lorenz");
    let mut e = Ensemble::new(&s, 64);
    e.params = lorenz_params_table(64, |j| {
        vec![10.0, if j == 17 { f64::NAN } else { 28.0 }, 8.0 / 3.0]
    });
    assert!(ode::fixed::run::check(&problem(s, Solver::Rk4, 1.0, 0.01, Save::Final, e)).is_err());
}

/// A NaN that arises inside one trajectory (here 0/0 in its right-hand side, k = 0 for
/// trajectory 17 only) marks that trajectory and leaves every other one bit-identical to
/// a clean run.
#[test]
fn nan_in_one_trajectory_is_contained() {
    let poisoned = System::from_equations(
        "lorenz_nan",
        &[("x", 1.0), ("y", 0.0), ("z", 0.0)],
        &[
            ("sigma", 10.0),
            ("rho", 28.0),
            ("beta", 8.0 / 3.0),
            ("k", 1.0),
        ],
        "r = rho*k/k\ndx = sigma*(y - x)\ndy = x*(r - z) - y\ndz = x*y - beta*z",
    )
    .unwrap();
    let mut e = Ensemble::new(&poisoned, 64);
    e.params = lorenz_params_table(64, |j| {
        vec![10.0, 28.0, 8.0 / 3.0, if j == 17 { 0.0 } else { 1.0 }]
    });
    let sol = run(&problem(poisoned, Solver::Rk4, 1.0, 0.01, Save::Final, e));
    let lorenz = system("lorenz");
    let clean = run(&problem(
        lorenz.clone(),
        Solver::Rk4,
        1.0,
        0.01,
        Save::Final,
        Ensemble::new(&lorenz, 64),
    ));
    for j in 0..64 {
        if j == 17 {
            assert_eq!(sol.status[j], Status::NonFinite);
        } else {
            assert_eq!(sol.status[j], Status::Success);
            assert_eq!(sol.final_state(j), clean.final_state(j));
        }
    }
}

#[test]
fn saves_land_exactly_on_the_requested_grid() {
    let s = system("harmonic");
    let p = problem(
        s.clone(),
        Solver::Rk4,
        1.0,
        0.1,
        Save::Every(3),
        Ensemble::new(&s, 2),
    );
    let sol = run(&p);
    assert_eq!(
        sol.times,
        vec![0.0, 0.30000000000000004, 0.6000000000000001, 0.9, 1.0]
    );
    for (slot, step) in [0u32, 3, 6, 9, 10].into_iter().enumerate() {
        assert_eq!(sol.times[slot], 0.0 + step as f64 * 0.1);
    }
    // Slot 0 is the initial state, bit for bit.
    assert_eq!(sol.state(0, 1), [1.0, 0.0]);
    let (cpu, _) = cpu_twin(&p, 0);
    for slot in 0..5 {
        assert!((sol.state(slot, 0)[0] - cpu[slot * 2]).abs() < 1e-6);
    }
}

/// The same run cut into many chunks, many batches and many short dispatch windows gives
/// bit-identical results.
#[test]
fn results_do_not_depend_on_chunks_batches_or_windows() {
    let s = system("lorenz");
    let mut e = Ensemble::new(&s, 1000);
    e.initial = InitialStates::Uniform {
        seed: 3,
        ranges: vec![(0, -10.0, 10.0), (2, 10.0, 30.0)],
    };
    e.params = Parameters::Sweep(vec![Axis::linear(1, 0.0, 50.0)]);
    let p = problem(s, Solver::Rk4, 2.0, 0.005, Save::Every(37), e);
    let whole = run(&p);
    let options = RunOptions {
        caps: PlanCaps {
            max_chunk: Some(97),
            max_slots_per_batch: Some(2),
            ..PlanCaps::default()
        },
        steps_per_dispatch: 97 * 5,
        min_window_steps: 1,
        ..RunOptions::default()
    };
    let pieces = ode::simulate(gpu(), &p, &options).unwrap();
    assert!(
        pieces.stats.chunks > 10 && pieces.stats.dispatches > 100,
        "{:?}",
        pieces.stats
    );
    assert_eq!(whole.times, pieces.times);
    assert_eq!(whole.status, pieces.status);
    assert!(whole.states.same_bits(&pieces.states));
    // One-step windows: each batch spans several submissions of 64 windows, which are
    // not waited on one by one; results and timing still come back whole.
    let one_step = RunOptions {
        steps_per_dispatch: 1,
        min_window_steps: 1,
        ..RunOptions::default()
    };
    let many = ode::simulate(gpu(), &p, &one_step).unwrap();
    assert_eq!(many.stats.dispatches, 400);
    assert!(whole.states.same_bits(&many.states));
    if gpu().has_timestamps() {
        assert!(many.stats.gpu.unwrap() > std::time::Duration::ZERO);
    }
    // And a different workgroup size changes nothing either.
    let wide = ode::simulate(
        gpu(),
        &p,
        &RunOptions {
            workgroup_size: 256,
            ..RunOptions::default()
        },
    )
    .unwrap();
    assert!(whole.states.same_bits(&wide.states));
    // Nor does the number of readback slots in flight (K), with many small units.
    for ring in [1, 2, 5] {
        let k = RunOptions {
            ring,
            ..options.clone()
        };
        let sol = ode::simulate(gpu(), &p, &k).unwrap();
        assert!(whole.states.same_bits(&sol.states), "ring {ring}");
        assert_eq!(whole.status, sol.status, "ring {ring}");
    }
}

/// Small ensembles over long spans: one trajectory may run a whole window of steps in one
/// invocation, and lavapipe ends an invocation's loops after 65,535 iterations in all, so a
/// window of 10^5 steps used to stop early and leave the trajectory unfinished. Every
/// trajectory must finish, on the closed form, and a save every step past 2^14 saves must
/// hold the twin's values.
#[test]
fn small_ensembles_over_long_spans_finish() {
    let s = system("harmonic");
    // 10^5 steps of 1e-3 with RK4: x = cos(100), y = -sin(100) to the method's 1e-13 error
    // plus f32 rounding over 10^5 steps (about 1e-3 here).
    let p = problem(
        s.clone(),
        Solver::Rk4,
        100.0,
        1e-3,
        Save::Final,
        Ensemble::new(&s, 1),
    );
    let sol = run(&p);
    assert_eq!(sol.status, vec![Status::Success]);
    let end = sol.final_state(0);
    assert!((end[0] - 100f64.cos()).abs() < 5e-3, "{end:?}");
    assert!((end[1] + 100f64.sin()).abs() < 5e-3, "{end:?}");

    // 20,000 steps saved every step.
    let p = problem(
        s.clone(),
        Solver::Rk4,
        20.0,
        1e-3,
        Save::Every(1),
        Ensemble::new(&s, 3),
    );
    let sol = run(&p);
    assert!(sol.status.iter().all(|&st| st == Status::Success));
    let (cpu, _) = cpu_twin(&p, 2);
    for slot in [16_384, 16_385, 20_000] {
        let got = sol.state(slot, 2);
        assert!(
            (got[0] - cpu[slot * 2]).abs() < 1e-3 && (got[1] - cpu[slot * 2 + 1]).abs() < 1e-3,
            "slot {slot}: {got:?} vs {:?}",
            &cpu[slot * 2..slot * 2 + 2]
        );
    }
}
