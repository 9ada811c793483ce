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
