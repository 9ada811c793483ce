//! Time-dependent inputs u(t): per-trajectory signals interpolated between sensors, on the
//! GPU (fixed-step and adaptive) against exact integrals and the CPU twin.

mod common;
use common::*;
use phaseflow::model::{Input, System};
use phaseflow::ode::adaptive::cpu::{self as adaptive_cpu, Setup};
use phaseflow::ode::{
    self, AdaptiveProblem, Control, Ensemble, Inputs, Precision, RunOptions, Save, SaveAt, Solver,
    Status, Table, Tolerance,
};

fn random_inputs(n: usize, cols: usize, seed: u64) -> Inputs {
    Inputs::Table(Table {
        data: random_matrix(n, cols, seed, 0).data,
        rows: n,
        cols,
        origin: "random inputs".into(),
    })
}

/// ds/dt = u(t) with u linear between 100 sensors on [0, 1] and RK4 steps that never
/// straddle a sensor: each step is exact, so the saves at the sensor times are the
/// cumulative trapezoid sums of the sensor values. f32 adds ~990 steps of rounding
/// (~6e-8 each, relative to |s| ≤ 1): 5e-6 absolute is ~2× the random-walk bound seen.
#[test]
fn antiderivative_is_the_cumulative_trapezoid_sum() {
    let s = system("antiderivative");
    let n = 300; // more than one workgroup, so trajectories' slots must not mix
    let mut e = Ensemble::new(&s, n);
    e.inputs = random_inputs(n, 100, 3);
    let p = problem(s, Solver::Rk4, 1.0, 1.0 / 990.0, Save::Every(10), e);
    let sol = run(&p);
    assert_eq!(sol.n_save(), 100);
    let h = 1.0 / 99.0;
    let mut worst = 0.0f64;
    for j in 0..n {
        let u = f32_round(&p.ensemble.param_slots(j..j + 1));
        let mut exact = 0.0;
        for k in 0..100 {
            if k > 0 {
                exact += 0.5 * h * (u[k - 1] + u[k]);
            }
            let got = sol.state(k, j)[0];
            worst = worst.max((got - exact).abs());
            assert!(
                (got - exact).abs() < 5e-6,
                "trajectory {j} sensor {k}: {got} vs {exact}"
            );
        }
        let (cpu, status) = cpu_twin(&p, j);
        assert_eq!(status, Status::Success);
        assert!((cpu[99] - exact).abs() < 1e-13, "{} vs {exact}", cpu[99]);
    }
    eprintln!("worst |gpu - trapezoid| = {worst:.2e}");
}

/// The same input evaluated at another time (a delay), and an input's span shorter than
/// the run (held at its last value afterwards).
#[test]
fn inputs_at_shifted_times_and_past_their_span() {
    let s = System::from_equations_with_inputs(
        "delay",
        &[("x", 0.0), ("y", 0.0)],
        &[("lag", 0.25)],
        vec![Input::new("u", 11, (0.0, 1.0))],
        "dx = u(t - lag)\ndy = u",
    )
    .unwrap();
    let n = 8;
    let mut e = Ensemble::new(&s, n);
    e.inputs = random_inputs(n, 11, 5);
    let p = problem(s, Solver::Rk4, 2.0, 0.01, Save::Every(10), e);
    let sol = run(&p);
    for j in 0..n {
        let slots = f32_round(&p.ensemble.param_slots(j..j + 1));
        let u = &slots[1..]; // after the parameter 'lag'
        // y(2) = trapezoid over [0, 1] + u_last × 1; x(2) = u_0 × 0.25 + trapezoid + u_last × 0.75.
        let trapezoid: f64 = (1..11).map(|k| 0.05 * (u[k] + u[k - 1])).sum();
        let y = trapezoid + u[10];
        let x = 0.25 * u[0] + trapezoid + 0.75 * u[10];
        let got = sol.final_state(j);
        assert!((got[1] - y).abs() < 2e-5, "{} vs {y}", got[1]);
        assert!((got[0] - x).abs() < 2e-5, "{} vs {x}", got[0]);
    }
}

/// Adaptive Tsit5 on the forced pendulum with a different signal per trajectory. Steps stop
/// at sensor times (`System::break_after`), so no step straddles a kink of the
/// interpolant: in f64 the GPU and the CPU twin take the same steps and agree to the last
/// bit (seen: 0), and the end state is within the tolerance's reach of a fine f32 RK4
/// reference (seen ≤ 3.6e-7, about the reference's own rounding; bound 2e-6). Without the
/// stops the error estimate misses the kinks and the twin ended 1.5e-4 away.
#[test]
fn adaptive_runs_follow_each_trajectorys_signal() {
    let s = system("forced_pendulum");
    let n = 16;
    let mut e = Ensemble::new(&s, n);
    e.inputs = random_inputs(n, 100, 7);
    let control = Control {
        rtol: Tolerance::All(1e-6),
        atol: Tolerance::All(1e-6),
        ..Control::default()
    };
    let saveat = SaveAt::grid(0.0, 0.25, 1.0).unwrap();
    let p = AdaptiveProblem {
        system: s.clone(),
        solver: Solver::Tsit5,
        t0: 0.0,
        t1: 1.0,
        saveat: saveat.clone(),
        control: control.clone(),
        ensemble: e.clone(),
        precision: Precision::F64,
    };
    let sol = ode::simulate_adaptive(gpu(), &p, &RunOptions::default()).unwrap();
    let reference = run(&problem(s, Solver::Rk4, 1.0, 1.0 / 9900.0, Save::Final, e));
    let times = saveat.times(1.0);
    let last = sol.n_save() - 1;
    for j in 0..n {
        assert_eq!(sol.status[j], Status::Success);
        let twin = adaptive_cpu::integrate(
            &Setup {
                system: &p.system,
                pair: Solver::Tsit5.pair().unwrap(),
                control: &control,
                t0: 0.0,
                t1: 1.0,
                save_times: &times,
            },
            &p.ensemble.states(j..j + 1),
            &p.ensemble.param_slots(j..j + 1),
        );
        assert_eq!(
            twin.counts,
            sol.steps.as_ref().unwrap()[j],
            "trajectory {j}"
        );
        for c in 0..2 {
            let g = sol.state(last, j)[c];
            let t = twin.saves[last * 2 + c];
            let r = reference.final_state(j)[c];
            assert!((g - t).abs() < 1e-12, "trajectory {j}: gpu {g} twin {t}");
            assert!(
                (g - r).abs() < 2e-6,
                "trajectory {j}: gpu {g} reference {r}"
            );
        }
    }
}
