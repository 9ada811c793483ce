//! Events (`[[events]]`, `ode::events`) in the fixed-step and adaptive families: closed
//! forms (a dropped and a bouncing ball, Poincaré points of oscillators), terminate and
//! continue, discrete resets, logs bit-identical across chunks, windows, batches and K, the
//! GPU against the f64 twin in f32 and f64, and every events kernel through naga.

mod common;

use common::gpu;
use phaseflow::model::{Direction, System};
use phaseflow::ode::adaptive::cpu as acpu;
use phaseflow::ode::events::EventLog;
use phaseflow::ode::fixed::cpu as fcpu;
use phaseflow::ode::{
    self, AdaptiveProblem, Control, Ensemble, FixedStepProblem, InitialStates, Precision,
    RunOptions, Save, SaveAt, SavePlan, Solution, Solver, Status, Table, TimeGrid, Tolerance,
};

const G: f64 = 9.81;

/// y' = v, v' = -g with the given events; heights from the ensemble.
fn ball(events: &str) -> System {
    System::from_equations(
        "ball",
        &[("y", 1.0), ("v", 0.0)],
        &[("g", G), ("e", 0.8)],
        "dy = v\ndv = -g\n",
    )
    .unwrap()
    .with_events(events)
    .unwrap()
}

const IMPACT_TERMINATE: &str = "[[events]]\nname = \"ground\"\ncondition = \"y\"\ndirection = \"down\"\naction = \"terminate\"\n";
const IMPACT_BOUNCE: &str = "[[events]]\nname = \"bounce\"\ncondition = \"y\"\ndirection = \"down\"\naction = \"assign\"\nassign = \"v = -e*v\"\n";

/// Trajectory j starts at rest at height heights[j].
fn heights(system: &System, heights: &[f64]) -> Ensemble {
    let mut e = Ensemble::new(system, heights.len());
    e.initial = InitialStates::Table(Table {
        data: heights.iter().flat_map(|&h| [h, 0.0]).collect(),
        rows: heights.len(),
        cols: 2,
        origin: "test".into(),
    });
    e
}

fn fixed(
    system: System,
    ensemble: Ensemble,
    t1: f64,
    dt: f64,
    save: Save,
    precision: Precision,
) -> FixedStepProblem {
    FixedStepProblem {
        system,
        solver: Solver::Rk4,
        grid: TimeGrid::from_span(0.0, t1, dt).unwrap(),
        save,
        ensemble,
        precision,
    }
}

fn adaptive(
    system: System,
    ensemble: Ensemble,
    t1: f64,
    saveat: SaveAt,
    precision: Precision,
) -> AdaptiveProblem {
    AdaptiveProblem {
        system,
        solver: Solver::Tsit5,
        t0: 0.0,
        t1,
        saveat,
        control: Control {
            rtol: Tolerance::All(1e-10),
            atol: Tolerance::All(1e-10),
            ..Control::default()
        },
        ensemble,
        precision,
    }
}

fn run_fixed(p: &FixedStepProblem, options: &RunOptions) -> Solution {
    ode::simulate(gpu(), p, options).unwrap()
}

fn run_adaptive(p: &AdaptiveProblem, options: &RunOptions) -> Solution {
    ode::simulate_adaptive(gpu(), p, options).unwrap()
}

/// The fixed twin's log and statuses for every trajectory (inputs rounded as the GPU sees
/// them).
fn fixed_twin(p: &FixedStepProblem) -> (Vec<Status>, EventLog, Vec<Vec<f64>>) {
    let plan = SavePlan::new(p.save, p.grid.n_steps).unwrap();
    let tab = p.solver.step_tableau();
    let round = |v: Vec<f64>| match p.precision {
        Precision::F32 => v.iter().map(|&x| x as f32 as f64).collect(),
        Precision::F64 => v,
    };
    let mut logs = Vec::new();
    let mut status = Vec::new();
    let mut saves = Vec::new();
    for j in 0..p.ensemble.n {
        let u0 = round(p.ensemble.states(j..j + 1));
        let pp = round(p.ensemble.param_slots(j..j + 1));
        let (s, st, log) = fcpu::integrate_events(&p.system, &tab, &u0, &pp, &p.grid, &plan);
        logs.push(log);
        status.push(st);
        saves.push(s);
    }
    let log = phaseflow::ode::events::cpu::join(&logs, p.system.event_log.k, p.system.dim());
    (status, log, saves)
}

fn adaptive_twin(p: &AdaptiveProblem) -> (Vec<Status>, EventLog) {
    let times = p.check().unwrap();
    let pair = p.pair().unwrap();
    let setup = acpu::Setup {
        system: &p.system,
        pair,
        control: &p.control,
        t0: p.t0,
        t1: p.t1,
        save_times: &times,
    };
    let round = |v: Vec<f64>| match p.precision {
        Precision::F32 => v.iter().map(|&x| x as f32 as f64).collect(),
        Precision::F64 => v,
    };
    let mut logs = Vec::new();
    let mut status = Vec::new();
    for j in 0..p.ensemble.n {
        let u0 = round(p.ensemble.states(j..j + 1));
        let pp = round(p.ensemble.param_slots(j..j + 1));
        let (out, log) = acpu::integrate_events(&setup, &u0, &pp);
        logs.push(log);
        status.push(out.status);
    }
    (
        status,
        phaseflow::ode::events::cpu::join(&logs, p.system.event_log.k, p.system.dim()),
    )
}

fn same_bits(a: &EventLog, b: &EventLog) -> bool {
    a.k == b.k
        && a.counts == b.counts
        && a.records.len() == b.records.len()
        && a.records
            .iter()
            .zip(&b.records)
            .all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Logs of the GPU and the twin: same counts, records within `tol` (times and states).
fn assert_logs_close(name: &str, gpu: &EventLog, twin: &EventLog, tol: f64) {
    assert_eq!(gpu.counts, twin.counts, "{name}: counts");
    for j in 0..gpu.len() {
        for (r, (a, b)) in gpu.records_of(j).zip(twin.records_of(j)).enumerate() {
            assert_eq!(a[1], b[1], "{name}: trajectory {j} record {r} id");
            for c in [0].into_iter().chain(2..a.len()) {
                assert!(
                    (a[c] - b[c]).abs() <= tol * (1.0 + b[c].abs()),
                    "{name}: trajectory {j} record {r} column {c}: {} vs twin {}",
                    a[c],
                    b[c]
                );
            }
        }
    }
}

#[test]
fn dropped_ball_lands_at_the_closed_form_time_fixed_rk4_f64() {
    let hs = [1.0, 2.0, 5.0, 0.3];
    let s = ball(IMPACT_TERMINATE);
    let p = fixed(
        s.clone(),
        heights(&s, &hs),
        2.0,
        0.01,
        Save::Every(10),
        Precision::F64,
    );
    let sol = run_fixed(&p, &RunOptions::default());
    let log = sol.events.as_ref().expect("a log");
    for (j, &h) in hs.iter().enumerate() {
        assert_eq!(sol.status[j], Status::Terminated, "trajectory {j}");
        assert_eq!(log.counts[j], 1);
        let rec = log.record(j, 0);
        let t = (2.0 * h / G).sqrt();
        assert!((rec[0] - t).abs() < 1e-10, "h = {h}: {} vs {t}", rec[0]);
        assert_eq!(rec[1], 0.0);
        assert!(rec[2].abs() < 1e-9, "height at impact {}", rec[2]);
        // Saves after the impact are NaN, those before are the free fall.
        for (s, &ts) in sol.times.iter().enumerate() {
            let y = sol.state(s, j)[0];
            if ts > t {
                assert!(y.is_nan(), "save at {ts} after impact at {t}: {y}");
            } else {
                assert!(
                    (y - (h - 0.5 * G * ts * ts)).abs() < 1e-12,
                    "save at {ts}: {y}"
                );
            }
        }
    }
    let (status, twin, _) = fixed_twin(&p);
    assert_eq!(status, sol.status);
    assert_logs_close("drop f64", log, &twin, 1e-12);
}

/// Impact times of a ball dropped from h with restitution e: t1 = sqrt(2h/g), then gaps
/// 2·e^k·v1/g with v1 = g·t1.
fn bounce_times(h: f64, e: f64, n: usize) -> Vec<f64> {
    let t1 = (2.0 * h / G).sqrt();
    let v1 = G * t1;
    let mut t = vec![t1];
    for k in 1..n {
        let last = t[k - 1];
        t.push(last + 2.0 * e.powi(k as i32) * v1 / G);
    }
    t
}

#[test]
fn bouncing_ball_has_the_analytic_impact_times_fixed_and_adaptive() {
    let hs = [1.0, 2.5];
    let s = ball(IMPACT_BOUNCE);
    let pf = fixed(
        s.clone(),
        heights(&s, &hs),
        3.0,
        0.01,
        Save::Final,
        Precision::F64,
    );
    let pa = adaptive(
        s.clone(),
        heights(&s, &hs),
        3.0,
        SaveAt::Final,
        Precision::F64,
    );
    let sols = [
        ("rk4", run_fixed(&pf, &RunOptions::default())),
        ("tsit5", run_adaptive(&pa, &RunOptions::default())),
    ];
    for (name, sol) in &sols {
        let log = sol.events.as_ref().unwrap();
        for (j, &h) in hs.iter().enumerate() {
            assert_eq!(sol.status[j], Status::Success, "{name}");
            let want: Vec<f64> = bounce_times(h, 0.8, 40)
                .into_iter()
                .filter(|&t| t <= 3.0)
                .collect();
            assert!(
                want.len() >= 3,
                "{name}: at least three bounces in the span"
            );
            assert_eq!(log.counts[j] as usize, want.len(), "{name} h = {h}");
            for (r, rec) in log.records_of(j).enumerate() {
                // Errors grow with each bounce (each impact velocity inherits the last
                // impact's location error), but stay far below a step.
                assert!(
                    (rec[0] - want[r]).abs() < 1e-9,
                    "{name} h = {h} bounce {r}: {} vs {}",
                    rec[0],
                    want[r]
                );
            }
        }
    }
    let (_, twin, _) = fixed_twin(&pf);
    assert_logs_close(
        "bounce rk4",
        sols[0].1.events.as_ref().unwrap(),
        &twin,
        1e-12,
    );
    let (_, twin) = adaptive_twin(&pa);
    assert_logs_close(
        "bounce tsit5",
        sols[1].1.events.as_ref().unwrap(),
        &twin,
        1e-9,
    );
}

#[test]
fn terminate_stops_and_record_continues() {
    let hs = [1.0, 2.0];
    let stop = ball(IMPACT_TERMINATE);
    let go = ball(&IMPACT_TERMINATE.replace("terminate", "record"));
    for (sys, status) in [(stop, Status::Terminated), (go, Status::Success)] {
        let p = fixed(
            sys.clone(),
            heights(&sys, &hs),
            1.0,
            0.01,
            Save::Every(1),
            Precision::F64,
        );
        let sol = run_fixed(&p, &RunOptions::default());
        let log = sol.events.as_ref().unwrap();
        for (j, &h) in hs.iter().enumerate() {
            assert_eq!(sol.status[j], status);
            let t = (2.0 * h / G).sqrt();
            assert_eq!(log.counts[j], u32::from(t <= 1.0), "h = {h}");
            let last = sol.final_state(j)[0];
            match (status, t <= 1.0) {
                // Terminated: no state after the impact; the record holds the final state.
                (Status::Terminated, true) => {
                    assert!(last.is_nan());
                    assert!(log.record(j, 0)[2].abs() < 1e-9);
                }
                // Recorded only: the ball falls through the ground, free fall to t = 1.
                _ => assert!((last - (h - 0.5 * G)).abs() < 1e-12, "{last}"),
            }
        }
        let (st, twin, _) = fixed_twin(&p);
        assert_eq!(st, sol.status);
        assert_logs_close("terminate/record", log, &twin, 1e-12);
    }
}

#[test]
fn integrate_and_fire_resets_on_a_discrete_event() {
    let s = common::system("integrate_fire");
    let p = fixed(
        s.clone(),
        Ensemble::new(&s, 2),
        10.0,
        0.001,
        Save::Final,
        Precision::F64,
    );
    let sol = run_fixed(&p, &RunOptions::default());
    let log = sol.events.as_ref().unwrap();
    // Spikes every tau ln(I / (I - 1)) = ln 3 in the continuous limit; a discrete event
    // fires at the end of the first step past the threshold, so each period is late by
    // less than one step.
    let period = 3f64.ln();
    assert_eq!(log.counts[0] as usize, (10.0 / period) as usize);
    let mut last = 0.0;
    for (r, rec) in log.records_of(0).enumerate() {
        let gap = rec[0] - last;
        assert!(
            gap >= period - 1e-9 && gap < period + 0.001,
            "spike {r}: gap {gap}"
        );
        assert!(
            rec[2] > 1.0 && rec[2] < 1.0 + 0.001,
            "recorded before the reset: {}",
            rec[2]
        );
        last = rec[0];
    }
    let (_, twin, _) = fixed_twin(&p);
    assert_logs_close("integrate-and-fire", log, &twin, 1e-12);
}

/// Lorenz with a section z = 27 (up) keeping k records.
fn lorenz_section(k: usize) -> System {
    let mut s = common::system("lorenz")
        .with_section("z = 27", Direction::Up)
        .unwrap();
    s.event_log.k = k;
    s
}

fn random_lorenz(s: &System, n: usize) -> Ensemble {
    let mut e = Ensemble::new(s, n);
    e.initial = InitialStates::Uniform {
        seed: 7,
        ranges: vec![(0, -10.0, 10.0), (1, -10.0, 10.0), (2, 10.0, 40.0)],
    };
    e
}

#[test]
fn logs_are_the_same_bits_across_chunks_windows_batches_and_k() {
    let n = 96;
    let base = RunOptions::default();
    let variants = |o: &RunOptions| -> Vec<RunOptions> {
        let mut small_chunks = o.clone();
        small_chunks.caps.max_chunk = Some(40);
        let mut short_windows = o.clone();
        short_windows.steps_per_dispatch = 1;
        short_windows.min_window_steps = 3;
        let mut batches = o.clone();
        batches.caps.max_slots_per_batch = Some(3);
        vec![small_chunks, short_windows, batches]
    };
    for precision in [Precision::F32, Precision::F64] {
        let s = lorenz_section(8);
        let pf = fixed(
            s.clone(),
            random_lorenz(&s, n),
            5.0,
            0.005,
            Save::Every(100),
            precision,
        );
        let pa = adaptive(
            s.clone(),
            random_lorenz(&s, n),
            5.0,
            SaveAt::Times((0..=10).map(|i| 0.5 * i as f64).collect()),
            precision,
        );
        let mut pa = pa;
        pa.control.rtol = Tolerance::All(1e-6);
        pa.control.atol = Tolerance::All(1e-6);
        let ref_f = run_fixed(&pf, &base);
        let ref_a = run_adaptive(&pa, &base);
        let (lf, la) = (ref_f.events.clone().unwrap(), ref_a.events.clone().unwrap());
        assert!(
            lf.totals().0 > n as u64 * 2,
            "the section is crossed: {:?}",
            lf.totals()
        );
        for o in variants(&base) {
            assert!(
                same_bits(run_fixed(&pf, &o).events.as_ref().unwrap(), &lf),
                "fixed {precision:?}"
            );
            assert!(
                same_bits(run_adaptive(&pa, &o).events.as_ref().unwrap(), &la),
                "adaptive {precision:?}"
            );
        }
        // A larger K only appends.
        let mut pf2 = pf.clone();
        pf2.system.event_log.k = 12;
        let big = run_fixed(&pf2, &base).events.unwrap();
        assert_eq!(big.counts, lf.counts);
        for j in 0..n {
            for r in 0..lf.recorded(j) {
                assert!(
                    big.record(j, r)
                        .iter()
                        .zip(lf.record(j, r))
                        .all(|(a, b)| a.to_bits() == b.to_bits())
                );
            }
        }
    }
}

#[test]
fn an_event_on_a_save_time_and_window_boundary_is_found_once() {
    // Condition t - 0.5 crosses zero exactly at the end of step 4 (dt = 0.125), which is a
    // save time and, with windows of 4 steps, a window boundary.
    let s = System::from_equations("clock", &[("x", 0.0)], &[], "dx = 1\n")
        .unwrap()
        .with_events("[[events]]\ncondition = \"t - 0.5\"\ndirection = \"up\"\n[[events]]\ncondition = \"x - 0.5\"\n")
        .unwrap();
    let p = fixed(
        s.clone(),
        Ensemble::new(&s, 3),
        1.0,
        0.125,
        Save::Every(4),
        Precision::F64,
    );
    let o = RunOptions {
        steps_per_dispatch: 1,
        min_window_steps: 4,
        ..RunOptions::default()
    };
    let sol = run_fixed(&p, &o);
    let log = sol.events.unwrap();
    assert_eq!(log.counts, vec![2, 2, 2]);
    for rec in log.records_of(0) {
        assert_eq!(rec[0], 0.5);
    }
    let pa = adaptive(
        s.clone(),
        Ensemble::new(&s, 3),
        1.0,
        SaveAt::Times(vec![0.0, 0.5, 1.0]),
        Precision::F64,
    );
    let sol = run_adaptive(&pa, &RunOptions::default());
    let log = sol.events.unwrap();
    assert_eq!(log.counts, vec![2, 2, 2]);
    for rec in log.records_of(1) {
        assert!((rec[0] - 0.5).abs() < 1e-14, "{}", rec[0]);
    }
}

#[test]
fn poincare_points_of_a_harmonic_oscillator_and_a_linear_centre() {
    // x'' = -w^2 x from x = A, v = 0: x = A cos(wt), v = -A w sin(wt). The section x = 0
    // going up is crossed where cos turns positive, wt = 3π/2 + 2πk: t_k = (2k + 3/2)π/w
    // with v = A w.
    let w = 2.0;
    let osc = common::system("harmonic")
        .with_section("x = 0", Direction::Up)
        .unwrap();
    let mut e = Ensemble::new(&osc, 3);
    e.base_params = vec![w];
    e.initial = InitialStates::Table(Table {
        data: vec![1.0, 0.0, 0.5, 0.0, 3.0, 0.0],
        rows: 3,
        cols: 2,
        origin: "test".into(),
    });
    let amplitudes = [1.0, 0.5, 3.0];
    // x' = -w y, y' = w x from (r, 0): x = r cos(wt), y = r sin(wt). The section y = 0 going
    // up is crossed at wt = 2πk (k ≥ 1) with x = r.
    let centre = System::from_equations(
        "centre",
        &[("x", 1.0), ("y", 0.0)],
        &[("w", w)],
        "dx = -w*y\ndy = w*x\n",
    )
    .unwrap()
    .with_section("y = 0", Direction::Up)
    .unwrap();
    let mut ec = Ensemble::new(&centre, 3);
    ec.initial = InitialStates::Table(Table {
        data: vec![1.0, 0.0, 0.5, 0.0, 3.0, 0.0],
        rows: 3,
        cols: 2,
        origin: "test".into(),
    });

    let t1 = 10.0;
    for (sys, ens, t_of, point) in [
        (
            osc,
            e,
            (|k: f64| (2.0 * k + 1.5) * std::f64::consts::PI / 2.0) as fn(f64) -> f64,
            [0.0, 1.0 * w],
        ),
        (
            centre,
            ec,
            (|k: f64| (k + 1.0) * 2.0 * std::f64::consts::PI / 2.0) as fn(f64) -> f64,
            [1.0, 0.0],
        ),
    ] {
        let pf = fixed(
            sys.clone(),
            ens.clone(),
            t1,
            0.001,
            Save::Final,
            Precision::F64,
        );
        let pa = adaptive(sys.clone(), ens, t1, SaveAt::Final, Precision::F64);
        for (name, sol, tol) in [
            ("rk4", run_fixed(&pf, &RunOptions::default()), 1e-10),
            ("tsit5", run_adaptive(&pa, &RunOptions::default()), 1e-8),
        ] {
            let log = sol.events.unwrap();
            for (j, a) in amplitudes.iter().enumerate() {
                let expected = (0..)
                    .map(|k| t_of(k as f64))
                    .take_while(|&t| t <= t1)
                    .count();
                assert_eq!(log.counts[j] as usize, expected, "{} {name}", sys.name());
                for (k, rec) in log.records_of(j).enumerate() {
                    assert!(
                        (rec[0] - t_of(k as f64)).abs() < tol,
                        "{} {name}: t {} vs {}",
                        sys.name(),
                        rec[0],
                        t_of(k as f64)
                    );
                    for c in 0..2 {
                        assert!(
                            (rec[2 + c] - a * point[c]).abs() < tol * 10.0 * a,
                            "{} {name}: state {c} {}",
                            sys.name(),
                            rec[2 + c]
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn gpu_matches_the_twin_on_random_ensembles_f32_and_f64() {
    let n = 64;
    let s = ball(IMPACT_BOUNCE);
    let mut e = Ensemble::new(&s, n);
    // Heights, speeds and restitutions that keep the bounces away from the Zeno point (where
    // infinitely many bounces accumulate) within the span.
    e.initial = InitialStates::Uniform {
        seed: 3,
        ranges: vec![(0, 1.0, 3.0), (1, -1.0, 0.0)],
    };
    e.params = phaseflow::ode::Parameters::Sweep(vec![phaseflow::ode::Axis::linear(1, 0.6, 0.95)]);
    let lorenz = lorenz_section(16);
    for precision in [Precision::F64, Precision::F32] {
        // f64: the twin computes the same operations; differences are roundings of the
        // device's f64 and fused operations (1e-9 after a few located events). f32: 1e-7
        // relative roundings per operation, amplified over the bounces, 1e-3.
        let tol = match precision {
            Precision::F64 => 1e-9,
            Precision::F32 => 2e-3,
        };
        let pf = fixed(s.clone(), e.clone(), 1.5, 0.01, Save::Every(10), precision);
        let sol = run_fixed(&pf, &RunOptions::default());
        let (st, twin, _) = fixed_twin(&pf);
        assert_eq!(st, sol.status);
        assert_logs_close(
            &format!("ball rk4 {precision:?}"),
            sol.events.as_ref().unwrap(),
            &twin,
            tol,
        );
        let mut pa = adaptive(s.clone(), e.clone(), 1.5, SaveAt::Final, precision);
        if precision == Precision::F32 {
            pa.control.rtol = Tolerance::All(1e-5);
            pa.control.atol = Tolerance::All(1e-5);
        }
        let sol = run_adaptive(&pa, &RunOptions::default());
        let (st, twin) = adaptive_twin(&pa);
        assert_eq!(st, sol.status);
        assert_logs_close(
            &format!("ball tsit5 {precision:?}"),
            sol.events.as_ref().unwrap(),
            &twin,
            tol * 10.0,
        );
        // Lorenz is chaotic: a short span keeps f32 and the twin on the same crossings.
        let pl = fixed(
            lorenz.clone(),
            random_lorenz(&lorenz, n),
            1.5,
            0.005,
            Save::Final,
            precision,
        );
        let sol = run_fixed(&pl, &RunOptions::default());
        let (_, twin, _) = fixed_twin(&pl);
        assert_logs_close(
            &format!("lorenz rk4 {precision:?}"),
            sol.events.as_ref().unwrap(),
            &twin,
            tol * 10.0,
        );
    }
}

#[test]
fn every_events_kernel_passes_naga() {
    use phaseflow::gpu::shader::validate;
    use phaseflow::ode::adaptive::kernel::adaptive_wgsl;
    use phaseflow::ode::fixed::kernel::fixed_step_wgsl;
    // Every kind of event: continuous in each direction, discrete, record, terminate, and
    // assignments to states and parameters; conditions with time and auxiliaries.
    let s = System::from_equations("all", &[("x", 1.0), ("v", 0.0)], &[("k", 1.0), ("c", 0.1)], "f = -k*x - c*v\ndx = v\ndv = f\n")
        .unwrap()
        .with_events(
            "[[events]]\ncondition = \"x\"\ndirection = \"up\"\n\
             [[events]]\ncondition = \"f + sin(t)\"\ndirection = \"down\"\naction = \"assign\"\nassign = \"v = -v\\nk = 1.01*k\"\n\
             [[events]]\ncondition = \"v - 10\"\naction = \"terminate\"\n\
             [[events]]\nkind = \"discrete\"\ncondition = \"x^2 - 4\"\naction = \"assign\"\nassign = \"x = 0\"\n",
        )
        .unwrap();
    for precision in [Precision::F32, Precision::F64] {
        for solver in [Solver::Euler, Solver::Heun, Solver::Rk4, Solver::Tsit5] {
            let wgsl = fixed_step_wgsl(&s, &solver.step_tableau(), 64, precision).unwrap();
            validate("fixed events", &wgsl, precision == Precision::F64)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        for solver in [Solver::Bs3, Solver::Dp5, Solver::Tsit5, Solver::Dop853] {
            for dense in [false, true] {
                let wgsl = adaptive_wgsl(
                    &s,
                    solver.pair().unwrap(),
                    &Control::default(),
                    64,
                    precision,
                    dense,
                )
                .unwrap();
                validate("adaptive events", &wgsl, precision == Precision::F64)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
    // Without events the kernels are the plain templates.
    let plain = common::system("lorenz");
    let wgsl = fixed_step_wgsl(&plain, &Solver::Rk4.step_tableau(), 64, Precision::F32).unwrap();
    assert!(!wgsl.contains("event_") && !wgsl.contains("results"));
}
