//! Adaptive ensembles: every pair against its CPU f64 twin, accuracy against analytic and
//! independent high-accuracy solutions (work–precision), statuses, dense output on the
//! requested grid, and independence from chunking, batching and dispatch windows.

mod common;
use common::{gpu, system};
use phaseflow::model::System;
use phaseflow::ode::adaptive::cpu::{self as adaptive_cpu, Setup};
use phaseflow::ode::{
    self, AdaptiveProblem, Control, Ensemble, InitialStates, Parameters, Precision, RunOptions,
    Save, SaveAt, SavePlan, Solution, Solver, Status, Table, TimeGrid, Tolerance,
};
use phaseflow::schedule::PlanCaps;
use phaseflow::schedule::plan::DeviceLimits;

fn control(tol: f64) -> Control {
    Control {
        rtol: Tolerance::All(tol),
        atol: Tolerance::All(tol),
        ..Control::default()
    }
}

fn problem(
    system: System,
    solver: Solver,
    t1: f64,
    saveat: SaveAt,
    tol: f64,
    ensemble: Ensemble,
    precision: Precision,
) -> AdaptiveProblem {
    AdaptiveProblem {
        system,
        solver,
        t0: 0.0,
        t1,
        saveat,
        control: control(tol),
        ensemble,
        precision,
    }
}

fn run(p: &AdaptiveProblem) -> Solution {
    ode::simulate_adaptive(gpu(), p, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// The CPU twin's outcome for trajectory `j`, from the inputs as the device sees them.
fn twin(p: &AdaptiveProblem, j: usize) -> adaptive_cpu::Outcome {
    let round = |v: Vec<f64>| -> Vec<f64> { v.into_iter().map(|x| p.precision.round(x)).collect() };
    let times = round(p.saveat.times(p.t1));
    let setup = Setup {
        system: &p.system,
        pair: p.solver.pair().unwrap(),
        control: &p.control,
        t0: p.t0,
        t1: p.t1,
        save_times: &times,
    };
    adaptive_cpu::integrate(
        &setup,
        &round(p.ensemble.states(j..j + 1)),
        &round(p.ensemble.param_slots(j..j + 1)),
    )
}

/// Every pair, in f32 and f64, on four systems (chaotic, stiff-ish, forced, trigonometric),
/// eight random starts each, saved on a grid through the continuous extension.
///
/// Tolerances. f64: both sides take the same steps (the controller's factor is computed in
/// f32 on the device and f64 on the CPU, so step sizes differ by ~1e-7 relative, which moves
/// the solution by ~1e-7 of the local error), and the device's transcendental functions are
/// within a few ulps: measured ≤ 2.5e-13 relative to the state's scale, bound 1e-11, which
/// still catches any wrong coefficient (those show at the tolerance, 1e-9). f32: the
/// device's rounding (6e-8) accumulates over hundreds of steps and is amplified by the
/// dynamics over the span: measured ≤ 6.3e-5 (DOP853, whose few large steps each carry many
/// roundings), bound 5e-4.
fn pair_matches_its_cpu_twin(name: &str, t1: f64, solver: Solver, precision: Precision) {
    let (tol, bound) = match precision {
        Precision::F32 => (1e-6, 5e-4),
        Precision::F64 => (1e-9, 1e-11),
    };
    if precision == Precision::F64 && !gpu().has_f64() {
        return;
    }
    let s = system(name);
    let mut ensemble = Ensemble::new(&s, 8);
    ensemble.initial = InitialStates::Uniform {
        seed: 3,
        ranges: (0..s.dim())
            .map(|c| (c, s.default_state()[c] - 0.5, s.default_state()[c] + 0.5))
            .collect(),
    };
    let saveat = SaveAt::grid(0.0, t1 / 8.0, t1).unwrap();
    let p = problem(s, solver, t1, saveat, tol, ensemble, precision);
    let sol = run(&p);
    let mut worst = 0.0f64;
    for j in 0..8 {
        let cpu = twin(&p, j);
        assert_eq!(sol.status[j], cpu.status, "{name}/{solver:?} {j}");
        assert_eq!(cpu.status, Status::Success);
        for slot in 0..sol.n_save() {
            let g = sol.state(slot, j);
            let c = &cpu.saves[slot * sol.dim..(slot + 1) * sol.dim];
            let scale = c.iter().map(|v| v.abs()).fold(1.0, f64::max);
            for d in 0..sol.dim {
                worst = worst.max((g[d] - c[d]).abs() / scale);
            }
        }
    }
    println!("{name} {} {precision:?}: worst {worst:e}", solver.name());
    assert!(worst <= bound, "{name} {solver:?} {precision:?}: {worst:e}");

    // The final-state kernel (no dense output; its one slot is written after the step
    // loop) takes the same steps as the dense one: the same bits at t1 and the same
    // counts of accepted and rejected steps. In f64 those counts are the twin's too.
    let mut last = p.clone();
    last.saveat = SaveAt::Final;
    let fin = run(&last);
    let (dense_steps, fin_steps) = (sol.steps.as_ref().unwrap(), fin.steps.as_ref().unwrap());
    for j in 0..8 {
        assert_eq!(fin.status[j], Status::Success, "{name}/{solver:?} {j}");
        assert!(
            fin.final_state(j)
                .iter()
                .zip(sol.final_state(j))
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name}/{solver:?} {precision:?} {j}: final-state kernel {:?} against {:?}",
            fin.final_state(j),
            sol.final_state(j)
        );
        assert_eq!(
            (fin_steps[j].accepted, fin_steps[j].rejected),
            (dense_steps[j].accepted, dense_steps[j].rejected),
            "{name}/{solver:?} {precision:?} {j}"
        );
        if precision == Precision::F64 {
            let cpu = twin(&last, j).counts;
            assert_eq!(
                (fin_steps[j].accepted, fin_steps[j].rejected),
                (cpu.accepted, cpu.rejected),
                "{name}/{solver:?} {j}: steps against the twin's"
            );
        }
    }
}

/// One `#[test]` per case, named after what it runs (`twin::lorenz::dp5::f64`), so that a
/// failure names what broke: `per_precision!(|precision| ...)` makes `f32` and `f64`,
/// `per_pair!(|solver| ...)` a module per adaptive pair.
macro_rules! per_precision {
    ($check:expr) => {
        #[test]
        fn f32() {
            ($check)(Precision::F32)
        }
        #[test]
        fn f64() {
            ($check)(Precision::F64)
        }
    };
}

macro_rules! per_pair {
    ($($pair:ident: $solver:expr),* => $body:ident!($check:expr)) => {
        $(
            mod $pair {
                use super::*;
                const SOLVER: Solver = $solver;
                $body!($check);
            }
        )*
    };
}

/// A module per adaptive pair, each with the tests `$body!($check)` makes for `SOLVER`.
macro_rules! every_pair {
    ($body:ident!($check:expr)) => {
        per_pair!(bs3: Solver::Bs3, dp5: Solver::Dp5, tsit5: Solver::Tsit5, dop853: Solver::Dop853
            => $body!($check));
    };
}

/// A test (`$check` itself) in a module.
macro_rules! single {
    ($check:expr) => {
        #[test]
        fn run() {
            ($check)()
        }
    };
}

mod twin {
    use super::*;
    mod lorenz {
        use super::*;
        every_pair!(per_precision!(|p| pair_matches_its_cpu_twin(
            "lorenz", 2.0, SOLVER, p
        )));
    }
    mod van_der_pol {
        use super::*;
        every_pair!(per_precision!(|p| pair_matches_its_cpu_twin(
            "van_der_pol",
            3.0,
            SOLVER,
            p
        )));
    }
    mod duffing {
        use super::*;
        every_pair!(per_precision!(|p| pair_matches_its_cpu_twin(
            "duffing", 3.0, SOLVER, p
        )));
    }
    mod pendulum {
        use super::*;
        every_pair!(per_precision!(|p| pair_matches_its_cpu_twin(
            "pendulum", 3.0, SOLVER, p
        )));
    }
}

/// Global error against closed-form solutions falls as the tolerance tightens, for every
/// pair, at the save points (dense output) and at the end: a work–precision check.
fn error_falls_with_tolerance(analytic: &str, solver: Solver) {
    if !gpu().has_f64() {
        return;
    }
    let decay = System::from_equations("decay", &[("x", 1.0)], &[], "dx = -0.5*x").unwrap();
    let oscillator =
        System::from_equations("osc", &[("x", 1.0), ("v", 0.0)], &[], "dx = v\ndv = -x").unwrap();
    let exact_decay = |t: f64| vec![(-0.5 * t).exp()];
    let exact_osc = |t: f64| vec![t.cos(), -t.sin()];
    type Exact<'a> = &'a dyn Fn(f64) -> Vec<f64>;
    let (s, exact): (&System, Exact) = match analytic {
        "decay" => (&decay, &exact_decay),
        _ => (&oscillator, &exact_osc),
    };
    let mut errors = Vec::new();
    let mut work = Vec::new();
    for tol in [1e-4, 1e-6, 1e-8, 1e-10] {
        let saveat = SaveAt::grid(0.0, 0.37, 10.0).unwrap();
        let p = problem(
            s.clone(),
            solver,
            10.0,
            saveat,
            tol,
            Ensemble::new(s, 1),
            Precision::F64,
        );
        let sol = run(&p);
        assert_eq!(sol.status[0], Status::Success);
        let mut err = 0.0f64;
        for (slot, &t) in sol.times.iter().enumerate() {
            let want = exact(t);
            for (g, w) in sol.state(slot, 0).iter().zip(&want) {
                err = err.max((g - w).abs());
            }
        }
        errors.push(err);
        work.push(sol.steps.as_ref().unwrap()[0].rhs_evals);
    }
    println!(
        "{} {}: errors {errors:?} evals {work:?}",
        s.name(),
        solver.name()
    );
    for k in 1..errors.len() {
        assert!(
            errors[k] < errors[k - 1] && work[k] > work[k - 1],
            "{} {}: {errors:?} {work:?}",
            s.name(),
            solver.name()
        );
    }
    // Tolerance proportionality: within two orders of magnitude of the tolerance.
    assert!(errors[0] < 1e-2 && errors[3] < 1e-8, "{errors:?}");
}

mod error_falls_with_tolerance {
    use super::*;
    mod decay {
        use super::*;
        every_pair!(single!(|| error_falls_with_tolerance("decay", SOLVER)));
    }
    mod oscillator {
        use super::*;
        every_pair!(single!(|| error_falls_with_tolerance("oscillator", SOLVER)));
    }
}

/// Lorenz from (1, 0, 0) with the classic parameters, f64, rtol = atol = 1e-12: the state at
/// t = 5 agrees to 1e-7 relative with a reference computed on the CPU by DOP853 at 1e-14,
/// itself cross-checked against classic RK4 with 250,000 fixed steps.
fn lorenz_f64_matches_an_independent_reference(solver: Solver) {
    if !gpu().has_f64() {
        return;
    }
    let s = system("lorenz");
    let (u0, p) = (s.default_state(), s.default_params());
    let tight = control(1e-14);
    let t5 = [5.0];
    let setup = Setup {
        system: &s,
        pair: Solver::Dop853.pair().unwrap(),
        control: &tight,
        t0: 0.0,
        t1: 5.0,
        save_times: &t5,
    };
    let reference = adaptive_cpu::integrate(&setup, &u0, &p);
    assert_eq!(reference.status, Status::Success);
    let grid = TimeGrid::from_span(0.0, 5.0, 2e-5).unwrap();
    let plan = SavePlan::new(Save::Final, grid.n_steps).unwrap();
    let (rk4, _) =
        ode::fixed::cpu::integrate(&s, Solver::Rk4.tableau().unwrap(), &u0, &p, &grid, &plan);
    let rel = |a: &[f64], b: &[f64]| {
        let scale = b.iter().map(|v| v.abs()).fold(0.0, f64::max);
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
            / scale
    };
    let cross = rel(&rk4, &reference.saves);
    assert!(cross < 1e-9, "references disagree: {cross:e}");
    let pr = problem(
        s.clone(),
        solver,
        5.0,
        SaveAt::Final,
        1e-12,
        Ensemble::new(&s, 1),
        Precision::F64,
    );
    let sol = run(&pr);
    let err = rel(&sol.final_state(0), &reference.saves);
    println!("{}: {err:e} (references agree to {cross:e})", solver.name());
    assert!(err < 1e-7, "{}: {err:e}", solver.name());
}

/// Every pair but BS3.
mod lorenz_f64_matches_an_independent_reference {
    use super::*;
    per_pair!(dp5: Solver::Dp5, tsit5: Solver::Tsit5, dop853: Solver::Dop853
        => single!(|| lorenz_f64_matches_an_independent_reference(SOLVER)));
}

/// One ensemble in which each status is produced by a trajectory built to trigger it, while
/// its neighbours succeed and are exactly what they are without the bad ones.
fn statuses_come_from_trajectories_built_for_them(precision: Precision) {
    let s = System::from_equations(
        "traps",
        &[("x", 1.0), ("y", 0.0)],
        &[("a", 0.0), ("b", 1.0), ("w", 1.0)],
        "dx = y*sqrt(b) + a*x^2\ndy = -w^2*x",
    )
    .unwrap();
    // (a, b, w): fine; finite-time blow-up; sqrt of a negative; too fast to finish.
    let rows = [
        [0.0, 1.0, 1.0],
        [1.0, 1.0, 1.0],
        [0.0, 1.0, 1.5],
        [0.0, -1.0, 1.0],
        [0.0, 1.0, 400.0],
        [0.0, 1.0, 2.0],
    ];
    let expected = [
        Status::Success,
        Status::StepUnderflow,
        Status::Success,
        Status::NonFinite,
        Status::MaxSteps,
        Status::Success,
    ];
    let table = |rows: &[[f64; 3]]| Table {
        data: rows.iter().flatten().copied().collect(),
        rows: rows.len(),
        cols: 3,
        origin: "test".into(),
    };
    if precision == Precision::F64 && !gpu().has_f64() {
        return;
    }
    let mut ensemble = Ensemble::new(&s, rows.len());
    ensemble.params = Parameters::Table(table(&rows));
    let mut p = problem(
        s.clone(),
        Solver::Tsit5,
        3.0,
        SaveAt::grid(0.0, 0.5, 3.0).unwrap(),
        1e-6,
        ensemble,
        precision,
    );
    p.control.max_steps = 2000;
    let sol = run(&p);
    assert_eq!(sol.status, expected, "{precision:?}");
    let steps = sol.steps.as_ref().unwrap();
    assert_eq!(steps[4].accepted + steps[4].rejected, 2000);
    for (j, &want) in expected.iter().enumerate() {
        let cpu = twin(&p, j);
        assert_eq!(cpu.status, want, "CPU twin {j} {precision:?}");
        for slot in 0..sol.n_save() {
            let finite = sol.state(slot, j).iter().all(|v| v.is_finite());
            if want == Status::Success {
                assert!(finite, "{j} slot {slot}");
            }
        }
        if want != Status::Success {
            // Saves after the trajectory stopped are NaN.
            assert!(sol.final_state(j).iter().all(|v| v.is_nan()), "{j}");
        }
    }
    assert!(
        sol.state(0, 3).iter().all(|v| v.is_nan()),
        "NaN from the start"
    );
    // The final-state kernel, whose one slot is written after the step loop: the same
    // statuses and counts, the same bits where a trajectory succeeds, NaN where it stopped.
    let mut last = p.clone();
    last.saveat = SaveAt::Final;
    let fin = run(&last);
    assert_eq!(fin.status, expected, "final state only, {precision:?}");
    assert_eq!(fin.steps, sol.steps, "final state only, {precision:?}");
    for (j, &want) in expected.iter().enumerate() {
        if want == Status::Success {
            assert_eq!(fin.final_state(j), sol.final_state(j), "{j}");
        } else {
            assert!(fin.final_state(j).iter().all(|v| v.is_nan()), "{j}");
        }
    }
    // The good trajectories alone give the same bits.
    let good: Vec<[f64; 3]> = [0, 2, 5].iter().map(|&j| rows[j]).collect();
    let mut alone = p.clone();
    alone.ensemble = Ensemble::new(&s, good.len());
    alone.ensemble.params = Parameters::Table(table(&good));
    let clean = run(&alone);
    for (k, &j) in [0, 2, 5].iter().enumerate() {
        for slot in 0..sol.n_save() {
            assert_eq!(sol.state(slot, j), clean.state(slot, k));
        }
        assert_eq!(steps[j], clean.steps.as_ref().unwrap()[k]);
    }
}

mod statuses_come_from_trajectories_built_for_them {
    use super::*;
    per_precision!(statuses_come_from_trajectories_built_for_them);
}

/// Saves land on the requested times, the last one on the final step exactly; final-state
/// runs report exactly t1.
#[test]
fn saves_land_on_the_requested_grid() {
    let s = system("van_der_pol");
    let grid = SaveAt::grid(0.25, 0.125, 4.0).unwrap();
    let SaveAt::Times(requested) = grid.clone() else {
        unreachable!()
    };
    let p = problem(
        s.clone(),
        Solver::Dp5,
        4.0,
        grid,
        1e-6,
        Ensemble::new(&s, 3),
        Precision::F32,
    );
    let sol = run(&p);
    assert_eq!(sol.times, requested);
    let fin = problem(
        s.clone(),
        Solver::Dp5,
        4.0,
        SaveAt::Final,
        1e-6,
        Ensemble::new(&s, 3),
        Precision::F32,
    );
    let end = run(&fin);
    assert_eq!(end.times, vec![4.0]);
    // Same steps either way (saving never changes the steps), so the same end state.
    assert_eq!(sol.final_state(0), end.final_state(0));
    assert_eq!(
        sol.steps.as_ref().unwrap()[0].accepted,
        end.steps.as_ref().unwrap()[0].accepted
    );
}

/// The same run, cut into many chunks, save batches and short dispatch windows, gives the
/// same bits and the same statistics. Saves are denser than steps, so most steps cover
/// several save times and many cross from one batch into the next (and are redone there).
#[test]
fn results_do_not_depend_on_chunks_batches_or_windows() {
    let s = system("lorenz");
    let rho = s.param_index("rho").unwrap();
    let mut ensemble = Ensemble::new(&s, 1000);
    ensemble.params = Parameters::Sweep(vec![ode::Axis::linear(rho, 0.0, 50.0)]);
    let p = problem(
        s,
        Solver::Tsit5,
        10.0,
        SaveAt::grid(0.0, 0.01, 10.0).unwrap(),
        1e-6,
        ensemble,
        Precision::F32,
    );
    let whole = run(&p);
    let options = RunOptions {
        caps: PlanCaps {
            max_chunk: Some(300),
            max_slots_per_batch: Some(7),
            ..PlanCaps::default()
        },
        steps_per_dispatch: 3000,
        min_window_steps: 1,
        ..RunOptions::default()
    };
    let pieces = ode::simulate_adaptive(gpu(), &p, &options).unwrap();
    assert!(
        pieces.stats.chunks == 4 && pieces.stats.dispatches > 100,
        "{:?}",
        pieces.stats
    );
    assert_eq!(whole.status, pieces.status);
    assert_eq!(whole.steps, pieces.steps);
    assert!(whole.states.same_bits(&pieces.states));
    assert!(whole.status.iter().all(|&s| s == Status::Success));
    for ring in [1, 5] {
        let k = RunOptions {
            ring,
            ..options.clone()
        };
        let sol = ode::simulate_adaptive(gpu(), &p, &k).unwrap();
        assert!(whole.states.same_bits(&sol.states), "ring {ring}");
        assert_eq!(whole.steps, sol.steps, "ring {ring}");
    }
}

/// One trajectory saved at 65,560 times: more loop iterations than lavapipe lets one
/// invocation make (65,535), which used to leave the last 119 saves at zero; each save is
/// the logistic curve's exact value within the tolerance's reach, the last one included.
#[test]
fn a_lone_trajectory_saves_every_one_of_65560_times() {
    let s = system("logistic");
    let (n_save, t1) = (65_560, 12.0);
    let grid = SaveAt::grid(0.0, t1 / (n_save - 1) as f64, t1).unwrap();
    let p = problem(
        s.clone(),
        Solver::Tsit5,
        t1,
        grid,
        1e-8,
        Ensemble::new(&s, 1),
        Precision::F64,
    );
    let sol = run(&p);
    assert_eq!(sol.n_save(), n_save);
    // r = 1, K = 1, x0 = 0.1.
    let exact = |t: f64| 0.1 * t.exp() / (1.0 + 0.1 * (t.exp() - 1.0));
    for k in 0..n_save {
        let err = (sol.state(k, 0)[0] - exact(sol.times[k])).abs();
        assert!(
            err < 1e-6,
            "save {k} at t = {}: error {err:e}",
            sol.times[k]
        );
    }
}

/// A chunk as large as the caps allow still fits every binding: in f32 a one-state
/// system's widest per-trajectory binding is its six u32 counters (24 bytes), not its
/// control rows (16), and 6,000,000 trajectories of counters (144 MB) exceed lavapipe's
/// 128 MiB binding. The plan once sized the chunk by the control rows and wgpu refused
/// the bind group (found by review). Each trajectory still ends on the logistic curve.
#[test]
fn the_counts_binding_bounds_the_chunk() {
    let s = system("logistic");
    let n = 6_000_000;
    let p = problem(
        s.clone(),
        Solver::Tsit5,
        1.0,
        SaveAt::Final,
        1e-5,
        Ensemble::new(&s, n),
        Precision::F32,
    );
    let options = RunOptions {
        caps: PlanCaps {
            max_chunk: Some(n),
            ..PlanCaps::default()
        },
        ..RunOptions::default()
    };
    let sol = ode::simulate_adaptive(gpu(), &p, &options).unwrap_or_else(|e| panic!("{e}"));
    let limit = DeviceLimits::of(&gpu().limits).max_binding;
    assert!(
        (sol.stats.chunks as u64) >= (24 * n as u64).div_ceil(limit),
        "{:?}",
        sol.stats
    );
    // r = 1, K = 1, x0 = 0.1 at t = 1.
    let exact = 0.1 * 1f64.exp() / (1.0 + 0.1 * (1f64.exp() - 1.0));
    for j in [0, 1, n / 2, n - 1] {
        assert_eq!(sol.status[j], Status::Success, "{j}");
        let x = sol.final_state(j)[0];
        assert!((x - exact).abs() < 1e-4, "{j}: {x} against {exact}");
    }
}
