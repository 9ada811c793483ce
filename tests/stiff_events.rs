//! Events (`[[events]]`, `ode::events`) in the stiff family (`ode::stiff`): every events
//! kernel through naga; ROBER's event time, a dosing impulse and a terminating event
//! against SciPy's Radau at rtol 1e-12; the crossings of a stiff Van der Pol oscillator
//! (μ = 1000) against Radau and the asymptotic period; the GPU against the f64 twin on an
//! ensemble with every action, for each method in f32 and f64; logs that do not depend on
//! chunks, windows or save batches.

mod common;

use common::gpu;
use phaseflow::gpu::shader::validate;
use phaseflow::model::System;
use phaseflow::ode::events::EventLog;
use phaseflow::ode::stiff::cpu;
use phaseflow::ode::stiff::kernel::stiff_wgsl;
use phaseflow::ode::stiff::problem::Jacobians;
use phaseflow::ode::stiff::{StiffMethod, StiffProblem, simulate_stiff};
use phaseflow::ode::{
    Axis, Control, Ensemble, Parameters, Precision, RunOptions, SaveAt, Solution, Status, Tolerance,
};

/// Robertson's kinetics (Hairer & Wanner II, §IV.1) with a threshold `thr` and a `dose`
/// of 0.2 for the events to use.
fn rober(events: &str) -> System {
    rober_at(0.5, events)
}

fn rober_at(thr: f64, events: &str) -> System {
    System::from_equations(
        "rober",
        &[("y1", 1.0), ("y2", 0.0), ("y3", 0.0)],
        &[
            ("k1", 0.04),
            ("k2", 3e7),
            ("k3", 1e4),
            ("thr", thr),
            ("dose", 0.2),
        ],
        "dy1 = -k1*y1 + k3*y2*y3\ndy2 = k1*y1 - k2*y2^2 - k3*y2*y3\ndy3 = k2*y2^2",
    )
    .unwrap()
    .with_events(events)
    .unwrap()
}

/// y1 falls through `thr`: recorded.
const HALF: &str = "[[events]]\nname = \"half\"\ncondition = \"y1 - thr\"\ndirection = \"down\"\n";
/// y1 falls through `thr`: a dose raises it by `dose`.
const DOSE: &str = "[[events]]\nname = \"dose\"\ncondition = \"y1 - thr\"\ndirection = \"down\"\naction = \"assign\"\nassign = \"y1 = y1 + dose\"\n";

/// Van der Pol in Liénard's variables, x' = μ(x − x³/3 − y), y' = x/μ: relaxation
/// oscillations, stiff for large μ; x = 0 is crossed in the middle of each fast jump.
fn van_der_pol(mu: f64) -> System {
    System::from_equations(
        "vdp",
        &[("x", 2.0), ("y", -2.0 / 3.0)],
        &[("mu", mu)],
        "dx = mu*(x - x^3/3 - y)\ndy = x/mu",
    )
    .unwrap()
    .with_events("[[events]]\nname = \"cross\"\ncondition = \"x\"\n")
    .unwrap()
}

fn control(rtol: f64, atol: f64) -> Control {
    Control {
        rtol: Tolerance::All(rtol),
        atol: Tolerance::All(atol),
        ..Control::default()
    }
}

/// The tolerances of a precision: f64 near its working accuracy, f32 where its rounding
/// (6e-8) stays well below the tolerance.
fn tolerances(precision: Precision) -> Control {
    match precision {
        Precision::F64 => control(1e-9, 1e-13),
        Precision::F32 => control(1e-5, 1e-7),
    }
}

fn has(precision: Precision) -> bool {
    precision == Precision::F32 || gpu().has_f64()
}

fn problem(
    system: System,
    method: StiffMethod,
    t1: f64,
    saveat: SaveAt,
    ensemble: Ensemble,
    precision: Precision,
) -> StiffProblem {
    StiffProblem {
        system,
        method,
        t0: 0.0,
        t1,
        saveat,
        control: tolerances(precision),
        ensemble,
        precision,
    }
}

fn run(p: &StiffProblem, options: &RunOptions) -> Solution {
    simulate_stiff(gpu(), p, options).unwrap_or_else(|e| panic!("{e}"))
}

/// The twin's outcomes and joined log, from the inputs as the device sees them.
fn twin(p: &StiffProblem) -> (Vec<cpu::Outcome>, EventLog) {
    let round = |v: Vec<f64>| -> Vec<f64> { v.into_iter().map(|x| p.precision.round(x)).collect() };
    let times = round(p.saveat.times(p.t1));
    let jacobians = Jacobians::of(&p.system).unwrap();
    let setup = cpu::Setup {
        system: &p.system,
        method: p.method,
        jacobians: &jacobians,
        control: &p.control,
        t0: p.t0,
        t1: p.t1,
        save_times: &times,
    };
    let mut outs = Vec::new();
    let mut logs = Vec::new();
    for j in 0..p.ensemble.n {
        let (out, log) = cpu::integrate_events(
            &setup,
            &round(p.ensemble.states(j..j + 1)),
            &round(p.ensemble.param_slots(j..j + 1)),
        );
        outs.push(out);
        logs.push(log);
    }
    let log = phaseflow::ode::events::cpu::join(&logs, p.system.event_log.k, p.system.dim());
    (outs, log)
}

/// GPU and twin logs: the same counts and ids, times within `dt` and states within `dy`
/// (absolute). Returns the worst time and state deviations.
fn assert_logs_close(name: &str, gpu: &EventLog, twin: &EventLog, dt: f64, dy: f64) -> (f64, f64) {
    assert_eq!(gpu.counts, twin.counts, "{name}: counts");
    let (mut wt, mut wy) = (0.0f64, 0.0f64);
    for j in 0..gpu.len() {
        for (r, (a, b)) in gpu.records_of(j).zip(twin.records_of(j)).enumerate() {
            assert_eq!(a[1], b[1], "{name}: trajectory {j} record {r} id");
            wt = wt.max((a[0] - b[0]).abs());
            for c in 2..a.len() {
                wy = wy.max((a[c] - b[c]).abs());
            }
            assert!(
                (a[0] - b[0]).abs() <= dt,
                "{name}: trajectory {j} record {r}: t {} vs twin {}",
                a[0],
                b[0]
            );
        }
    }
    assert!(wy <= dy, "{name}: states {wy:e}");
    println!("{name}: vs twin: times within {wt:e}, states within {wy:e}");
    (wt, wy)
}

#[test]
fn every_stiff_events_kernel_passes_naga_and_plain_kernels_are_untouched() {
    // Every kind of event: continuous in each direction, discrete, record, terminate, and
    // assignments to states and parameters; conditions with time and auxiliaries; a
    // non-autonomous right-hand side (∂f/∂t in the stages).
    let s = System::from_equations(
        "all",
        &[("x", 1.0), ("v", 0.0)],
        &[("k", 1.0), ("c", 0.1)],
        "f = -k*x - c*v + sin(t)\ndx = v\ndv = f\n",
    )
    .unwrap()
    .with_events(
        "[[events]]\ncondition = \"x\"\ndirection = \"up\"\n\
         [[events]]\ncondition = \"f + sin(t)\"\ndirection = \"down\"\naction = \"assign\"\nassign = \"v = -v\\nk = 1.01*k\"\n\
         [[events]]\ncondition = \"v - 10\"\naction = \"terminate\"\n\
         [[events]]\nkind = \"discrete\"\ncondition = \"x^2 - 4\"\naction = \"assign\"\nassign = \"x = 0\"\n",
    )
    .unwrap();
    let discrete_only = rober(
        "[[events]]\nkind = \"discrete\"\ncondition = \"y3 - 0.5\"\naction = \"terminate\"\n",
    );
    for precision in [Precision::F32, Precision::F64] {
        for method in StiffMethod::ALL {
            for dense in [false, true] {
                for sys in [&s, &discrete_only] {
                    let label = format!(
                        "{} {} {precision:?} dense={dense}",
                        sys.name(),
                        method.name()
                    );
                    let wgsl = stiff_wgsl(sys, method, &Control::default(), 64, precision, dense)
                        .unwrap_or_else(|e| panic!("{label}: {e}"));
                    assert!(wgsl.contains("fn event_locate") && wgsl.contains("@binding(8)"));
                    validate(&label, &wgsl, precision == Precision::F64)
                        .unwrap_or_else(|e| panic!("{label}: {e}"));
                }
            }
        }
    }
    // A continuous event needs the dense-output rows even when only the final state is
    // saved; discrete events do not.
    let lean = |sys: &System| {
        stiff_wgsl(
            sys,
            StiffMethod::Rodas4,
            &Control::default(),
            64,
            Precision::F32,
            false,
        )
        .unwrap()
    };
    assert!(lean(&s).contains("(*c).q0 ="));
    assert!(!lean(&discrete_only).contains("(*c).q0 ="));
    // Without events the kernels are the plain template's.
    let plain = common::system("rober");
    for method in StiffMethod::ALL {
        let wgsl = stiff_wgsl(
            &plain,
            method,
            &Control::default(),
            64,
            Precision::F32,
            true,
        )
        .unwrap();
        assert!(!wgsl.contains("event_") && !wgsl.contains("@binding(8)"));
        assert!(wgsl.contains("var<storage, read> params"));
    }
}

/// ROBER's y1 falls through 0.5 at t* = 268.3247260154891: SciPy 1.x `solve_ivp`, Radau,
/// rtol 1e-12, atol 1e-16, analytic Jacobian, terminal event y1 − 0.5 (direction −1);
/// state there (0.5, 3.908379360222246e-06, 0.49999609162064157).
const ROBER_HALF: f64 = 268.3247260154891;

/// |y1'| at t*: k1·y1 − k3·y2·y3 = 0.02 − 1e4 · 3.9084e-6 · 0.5 = 4.6e-4. y1 decays slowly
/// there, so a state error δ moves the crossing by δ / 4.6e-4.
const ROBER_SLOPE: f64 = 4.6e-4;

/// The event time against Radau and against the twin, and the recorded state on the
/// section. A controlled method's global error is a modest multiple of rtol·|y| (≤ 100 as
/// measured in `stiff_gpu`); the bound allows 100·rtol·y1 / |y1'| in time.
fn rober_half_time(method: StiffMethod, precision: Precision) {
    if !has(precision) {
        return;
    }
    let s = rober(HALF);
    let p = problem(
        s.clone(),
        method,
        400.0,
        SaveAt::Final,
        Ensemble::new(&s, 4),
        precision,
    );
    let sol = run(&p, &RunOptions::default());
    let log = sol.events.as_ref().unwrap();
    let rtol = p.control.rtol.values(3)[0];
    let bound = 100.0 * rtol * 0.5 / ROBER_SLOPE;
    let label = format!("{} {precision:?}", method.name());
    for j in 0..4 {
        assert_eq!(sol.status[j], Status::Success, "{label}");
        assert_eq!(log.counts[j], 1, "{label}");
        let rec = log.record(j, 0);
        let err = (rec[0] - ROBER_HALF).abs();
        println!(
            "{label}: t* = {} (Radau {ROBER_HALF}), error {err:e}, bound {bound:e}",
            rec[0]
        );
        assert!(err <= bound, "{label}: t* = {}", rec[0]);
        // On the section: y1 = 0.5 to the location's precision (y1' is slow, so a bracket
        // of a few ulps of t moves y1 by far less than one ulp of y1's precision).
        assert!(
            (rec[2] - 0.5).abs() <= 8.0 * p.precision.eps(),
            "{label}: {rec:?}"
        );
    }
    let (outs, twin_log) = twin(&p);
    assert_eq!(outs[0].status, Status::Success);
    // The twin takes the same steps in f64 (times agree to roundings amplified by the
    // slow crossing: 1e-6 is 1e-9 relative); in f32 to the f32 global error.
    let (dt, dy) = match precision {
        Precision::F64 => (1e-6, 1e-9),
        Precision::F32 => (bound, 100.0 * rtol),
    };
    assert_logs_close(&label, log, &twin_log, dt, dy);
}

/// Dosing: whenever y1 falls to 0.8 a dose of 0.2 is added. Radau at rtol 1e-12 (atol
/// 1e-16), integrated piecewise between terminal events with y1 += 0.2 at each: doses at
/// t = 16.422178329017054, 77.9476145207146, 224.70417874071575, and at t = 400 the state
/// (0.8517635091150622, 4.473244739993239e-06, 0.7482320176401965).
const DOSE_TIMES: [f64; 3] = [16.422178329017054, 77.9476145207146, 224.70417874071575];
const DOSE_FINAL: [f64; 3] = [
    0.8517635091150622,
    4.473244739993239e-06,
    0.7482320176401965,
];

/// The dose times and the final state against Radau and the twin. Restarts renew f0 and
/// the step size; the final state's error is the global error, a modest multiple of
/// rtol·|y| (bound 100·rtol on values ≤ 1, atol-scaled for y2 ~ 4e-6).
fn dosing(method: StiffMethod, precision: Precision) {
    if !has(precision) {
        return;
    }
    let s = rober_at(0.8, DOSE);
    let p = problem(
        s.clone(),
        method,
        400.0,
        SaveAt::Times(vec![0.0, 100.0, 200.0, 400.0]),
        Ensemble::new(&s, 2),
        precision,
    );
    let sol = run(&p, &RunOptions::default());
    let log = sol.events.as_ref().unwrap();
    let rtol = p.control.rtol.values(3)[0];
    let label = format!("dosing {} {precision:?}", method.name());
    for j in 0..2 {
        assert_eq!(sol.status[j], Status::Success, "{label}");
        assert_eq!(log.counts[j], 3, "{label}");
        for (r, &want) in DOSE_TIMES.iter().enumerate() {
            let rec = log.record(j, r);
            // y1' at the doses is far from slow (−0.032 at the first), so the bound of
            // `rober_half_time` is generous here.
            let bound = 100.0 * rtol * 0.8 / ROBER_SLOPE;
            assert!(
                (rec[0] - want).abs() <= bound,
                "{label}: dose {r} at {}",
                rec[0]
            );
            // Recorded before the dose: y1 on the threshold.
            assert!(
                (rec[2] - 0.8).abs() <= 8.0 * p.precision.eps(),
                "{label}: {rec:?}"
            );
        }
        let last = sol.final_state(j);
        let mut worst = 0.0f64;
        for c in 0..3 {
            let e = (last[c] - DOSE_FINAL[c]).abs() / (rtol * DOSE_FINAL[c].abs().max(1e-3));
            worst = worst.max(e);
        }
        println!(
            "{label}: doses at {:?}, final state within {worst:.2} rtol",
            (0..3).map(|r| log.record(j, r)[0]).collect::<Vec<_>>()
        );
        assert!(worst <= 100.0, "{label}: final {last:?}");
        // The mass balance survives the doses: y1 + y2 + y3 = 1 + 3·0.2.
        let mass: f64 = last.iter().sum();
        assert!((mass - 1.6).abs() <= 100.0 * rtol, "{label}: mass {mass}");
    }
    let (outs, twin_log) = twin(&p);
    for (j, out) in outs.iter().enumerate() {
        assert_eq!(sol.status[j], out.status, "{label}");
    }
    let (dt, dy) = match precision {
        Precision::F64 => (1e-6, 1e-9),
        Precision::F32 => (100.0 * rtol * 0.8 / ROBER_SLOPE, 100.0 * rtol),
    };
    assert_logs_close(&label, log, &twin_log, dt, dy);
}

/// A terminating event at y1 = 0.5: status Terminated, saves after t* NaN, those before
/// kept, the record holding the state at t*.
fn terminate(method: StiffMethod, precision: Precision) {
    if !has(precision) {
        return;
    }
    let s = rober(&HALF.replace("name = \"half\"", "name = \"stop\"\naction = \"terminate\""));
    let p = problem(
        s.clone(),
        method,
        1000.0,
        SaveAt::Times(vec![0.0, 100.0, 200.0, 300.0, 1000.0]),
        Ensemble::new(&s, 2),
        precision,
    );
    let sol = run(&p, &RunOptions::default());
    let log = sol.events.as_ref().unwrap();
    let rtol = p.control.rtol.values(3)[0];
    let label = format!("terminate {} {precision:?}", method.name());
    for j in 0..2 {
        assert_eq!(sol.status[j], Status::Terminated, "{label}");
        assert_eq!(log.counts[j], 1, "{label}");
        let rec = log.record(j, 0);
        assert!(
            (rec[0] - ROBER_HALF).abs() <= 100.0 * rtol * 0.5 / ROBER_SLOPE,
            "{label}: {rec:?}"
        );
        for slot in 0..3 {
            assert!(
                sol.state(slot, j).iter().all(|v| v.is_finite()),
                "{label} slot {slot}"
            );
        }
        for slot in 3..5 {
            assert!(
                sol.state(slot, j).iter().all(|v| v.is_nan()),
                "{label} slot {slot}"
            );
        }
    }
    let (outs, twin_log) = twin(&p);
    assert_eq!(outs[0].status, Status::Terminated);
    assert!(outs[0].saves[3 * 3..].iter().all(|v| v.is_nan()));
    let (dt, dy) = match precision {
        Precision::F64 => (1e-6, 1e-9),
        Precision::F32 => (100.0 * rtol * 0.5 / ROBER_SLOPE, 100.0 * rtol),
    };
    assert_logs_close(&label, log, &twin_log, dt, dy);
}

mod reference {
    use super::*;
    macro_rules! cases {
        ($($name:ident: $m:expr),*) => {$(
            mod $name {
                use super::*;
                #[test]
                fn half_f32() { rober_half_time($m, Precision::F32) }
                #[test]
                fn half_f64() { rober_half_time($m, Precision::F64) }
                #[test]
                fn dosing_f32() { dosing($m, Precision::F32) }
                #[test]
                fn dosing_f64() { dosing($m, Precision::F64) }
                #[test]
                fn terminate_f32() { terminate($m, Precision::F32) }
                #[test]
                fn terminate_f64() { terminate($m, Precision::F64) }
            }
        )*};
    }
    cases!(rosenbrock23: StiffMethod::Rosenbrock23, rodas4: StiffMethod::Rodas4,
        rodas5p: StiffMethod::Rodas5P, auto: StiffMethod::Auto);
}

/// A random-ish ensemble with every action for each method and precision against the
/// twin: doses at thresholds swept over [0.55, 0.95] (so trajectories restart at different
/// times and counts), a record of y3 rising through 0.25, statuses, counts and event
/// times. f64: the same algorithm, roundings only (the controller's factor in f32 on the
/// device moves step sizes by ~1e-7 relative, and with them the crossings' brackets) —
/// times within 1e-6 absolute (≤ 1e-8 relative at t ≥ 16) and states within 1e-9. f32:
/// the device's global error, 100·rtol in y over |y'| ≥ 4.6e-4 in time (`ROBER_SLOPE`).
fn ensemble_matches_the_twin(method: StiffMethod, precision: Precision) {
    if !has(precision) {
        return;
    }
    let s = rober_at(
        0.8,
        &format!(
            "{DOSE}[[events]]\nname = \"y3\"\ncondition = \"y3 - 0.25\"\ndirection = \"up\"\n"
        ),
    );
    let mut e = Ensemble::new(&s, 8);
    e.params = Parameters::Sweep(vec![Axis::linear(
        s.param_index("thr").unwrap(),
        0.55,
        0.95,
    )]);
    let p = problem(
        s,
        method,
        300.0,
        SaveAt::grid(0.0, 50.0, 300.0).unwrap(),
        e,
        precision,
    );
    let sol = run(&p, &RunOptions::default());
    let log = sol.events.as_ref().unwrap();
    let (outs, twin_log) = twin(&p);
    let label = format!("ensemble {} {precision:?}", method.name());
    for (j, out) in outs.iter().enumerate() {
        assert_eq!(sol.status[j], out.status, "{label} {j}");
        assert_eq!(sol.status[j], Status::Success, "{label} {j}");
    }
    // Thresholds above y1's path fire often, low ones not at all: counts differ.
    let (fired, _) = twin_log.totals();
    assert!(
        fired >= 8 && twin_log.counts.iter().any(|&c| c != twin_log.counts[0]),
        "{:?}",
        twin_log.counts
    );
    let rtol = p.control.rtol.values(3)[0];
    let (dt, dy) = match precision {
        Precision::F64 => (1e-6, 1e-9),
        Precision::F32 => (100.0 * rtol / ROBER_SLOPE, 100.0 * rtol),
    };
    assert_logs_close(&label, log, &twin_log, dt, dy);
}

mod twin_ensembles {
    use super::*;
    macro_rules! cases {
        ($($name:ident: $m:expr),*) => {$(
            mod $name {
                use super::*;
                #[test]
                fn f32() { ensemble_matches_the_twin($m, Precision::F32) }
                #[test]
                fn f64() { ensemble_matches_the_twin($m, Precision::F64) }
            }
        )*};
    }
    cases!(rosenbrock23: StiffMethod::Rosenbrock23, rodas4: StiffMethod::Rodas4,
        rodas5p: StiffMethod::Rodas5P, auto: StiffMethod::Auto);
}

/// Van der Pol with μ = 1000 started on the slow manifold at x = 2: the crossings of x = 0
/// (both directions) by SciPy's Radau at rtol 1e-12, atol 1e-14 (analytic Jacobian; at
/// rtol 1e-10 the same to 3e-11 relative). Their spacing, 807.2006 (half the period
/// 1614.401), matches the asymptotic relaxation period
/// T ≈ (3 − 2 ln 2) μ + 3 α μ^(−1/3) = 1613.71 + 0.70 = 1614.41, with α = 2.3381 the first
/// zero of −Ai (Grasman, Asymptotic Methods for Relaxation Oscillations, Springer 1987;
/// Dorodnitsyn 1947).
const VDP_CROSSINGS: [f64; 4] = [
    807.0847408158792,
    1614.2853037200457,
    2421.4858666242144,
    3228.686429528383,
];

/// The same at μ = 100 (Radau, rtol 1e-12; at 1e-10 the same to 2e-11 relative), for f32:
/// at μ = 1000 the jumps take steps below f32's resolution of t ≈ 800 (4·ε·t = 4e-4), and
/// every f32 run, with or without events, stops with a step-size underflow.
const VDP_CROSSINGS_100: [f64; 4] = [
    81.17237790053852,
    162.59091344672456,
    244.0094489929105,
    325.42798453909637,
];

/// The crossings on the GPU against Radau and the twin, with `auto` (which switches to
/// Rodas5P on the slow branches and may go back to Tsit5 in the jumps) and Rodas5P. Times
/// are dominated by the phase error accumulated along the slow branches, a modest multiple
/// of rtol·t (bound 100·rtol·t). x at the recorded time is 0 up to the location's bracket,
/// 4·eps·t in time, over which x moves at |x'| = μ·|y| ≈ 2μ/3: bound μ·8·eps·t.
fn vdp_crossings(method: StiffMethod, precision: Precision) {
    if !has(precision) {
        return;
    }
    let (mu, crossings) = match precision {
        Precision::F64 => (1000.0, VDP_CROSSINGS),
        Precision::F32 => (100.0, VDP_CROSSINGS_100),
    };
    let t1 = 3.3 * mu;
    let s = van_der_pol(mu);
    let p = problem(
        s.clone(),
        method,
        t1,
        SaveAt::Final,
        Ensemble::new(&s, 2),
        precision,
    );
    let sol = run(&p, &RunOptions::default());
    let log = sol.events.as_ref().unwrap();
    let rtol = p.control.rtol.values(2)[0];
    let label = format!("vdp {} {precision:?}", method.name());
    for j in 0..2 {
        assert_eq!(sol.status[j], Status::Success, "{label}");
        assert_eq!(log.counts[j] as usize, crossings.len(), "{label}");
        for (r, &want) in crossings.iter().enumerate() {
            let got = log.record(j, r)[0];
            println!(
                "{label}: crossing {r} at {got} (Radau {want}), error {:e}",
                got - want
            );
            assert!(
                (got - want).abs() <= 100.0 * rtol * want,
                "{label}: {got} vs {want}"
            );
            let x = log.record(j, r)[2];
            assert!(
                x.abs() <= mu * 8.0 * p.precision.eps() * want,
                "{label}: x = {x}"
            );
            // Alternating directions: the first jump goes from x = 2 down to −2, so y there
            // is +2/3, then −2/3.
            let y = log.record(j, r)[3];
            let want_y = if r % 2 == 0 { 2.0 / 3.0 } else { -2.0 / 3.0 };
            assert!((y - want_y).abs() < 1e-2, "{label}: y = {y}");
        }
    }
    let (_, twin_log) = twin(&p);
    let (dt, dy) = match precision {
        Precision::F64 => (1e-6 * t1, 1e-6),
        Precision::F32 => (100.0 * rtol * t1, mu * 8.0 * p.precision.eps() * t1),
    };
    assert_logs_close(&label, log, &twin_log, dt, dy);
}

#[test]
fn vdp_crossings_auto_f64() {
    vdp_crossings(StiffMethod::Auto, Precision::F64)
}
#[test]
fn vdp_crossings_auto_f32() {
    vdp_crossings(StiffMethod::Auto, Precision::F32)
}
#[test]
fn vdp_crossings_rodas5p_f64() {
    vdp_crossings(StiffMethod::Rodas5P, Precision::F64)
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

/// Records are made only when a step is committed, so logs are the same bits whatever
/// the chunks, dispatch windows and save batches (a step redone by the next batch records
/// once); a larger K only appends.
#[test]
fn logs_are_the_same_bits_across_chunks_windows_batches_and_k() {
    let precision = Precision::F32;
    let s = rober_at(0.8, DOSE);
    let mut e = Ensemble::new(&s, 24);
    e.params = Parameters::Sweep(vec![Axis::linear(
        s.param_index("thr").unwrap(),
        0.55,
        0.95,
    )]);
    let mut p = problem(
        s,
        StiffMethod::Rodas5P,
        300.0,
        SaveAt::grid(0.0, 10.0, 300.0).unwrap(),
        e,
        precision,
    );
    p.system.event_log.k = 2;
    let base = RunOptions::default();
    let reference = run(&p, &base).events.unwrap();
    assert!(reference.totals().0 > 24, "{:?}", reference.totals());
    let mut small_chunks = base.clone();
    small_chunks.caps.max_chunk = Some(10);
    let mut short_windows = base.clone();
    short_windows.steps_per_dispatch = 1;
    short_windows.min_window_steps = 3;
    let mut batches = base.clone();
    batches.caps.max_slots_per_batch = Some(3);
    for (name, o) in [
        ("chunks", small_chunks),
        ("windows", short_windows),
        ("batches", batches),
    ] {
        assert!(
            same_bits(run(&p, &o).events.as_ref().unwrap(), &reference),
            "{name}"
        );
    }
    p.system.event_log.k = 6;
    let big = run(&p, &base).events.unwrap();
    assert_eq!(big.counts, reference.counts);
    for j in 0..24 {
        for r in 0..reference.recorded(j) {
            assert!(
                big.record(j, r)
                    .iter()
                    .zip(reference.record(j, r))
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            );
        }
    }
}

/// `phaseflow simulate` with a stiff solver on a system file with `[[events]]` writes the
/// log: ROBER with y1 = 0.5 recorded, found at Radau's time.
#[test]
fn simulate_with_a_stiff_solver_writes_the_event_log() {
    use common::cli::{phaseflow, stderr, stdout, temp_dir};
    use phaseflow::io::npy::read_npy;
    let dir = temp_dir("stiff_events");
    let file = dir.join("rober_half.toml");
    std::fs::write(
        &file,
        "name = \"rober_half\"\nstates = { y1 = 1.0, y2 = 0.0, y3 = 0.0 }\n\
         parameters = { k1 = 0.04, k2 = 3.0e7, k3 = 1.0e4 }\ntspan = [0.0, 400.0]\n\
         equations = \"\"\"\ndy1 = -k1*y1 + k3*y2*y3\ndy2 = k1*y1 - k2*y2^2 - k3*y2*y3\n\
         dy3 = k2*y2^2\n\"\"\"\n\n[[events]]\nname = \"half\"\ncondition = \"y1 - 0.5\"\n\
         direction = \"down\"\n",
    )
    .unwrap();
    let out = dir.join("run");
    for solver in ["rodas5p", "auto"] {
        let o = phaseflow(&[
            "simulate",
            file.to_str().unwrap(),
            "--solver",
            solver,
            "-n",
            "3",
            "--events",
            "2",
            "--precision",
            "f64",
            "--rtol",
            "1e-9",
            "--atol",
            "1e-13",
            "-q",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{solver}: {}", stderr(&o));
        assert!(stdout(&o).contains("events   3 fired"), "{}", stdout(&o));
        let (shape, records) = read_npy(&out.join("events.npy")).unwrap();
        assert_eq!(shape, vec![3, 2, 5]);
        let (shape, counts) = read_npy(&out.join("event_counts.npy")).unwrap();
        assert_eq!(shape, vec![3]);
        assert_eq!(counts, vec![1.0; 3]);
        for j in 0..3 {
            let rec = &records[j * 10..j * 10 + 5];
            assert!(
                (rec[0] - ROBER_HALF).abs() < 100.0 * 1e-9 * 0.5 / ROBER_SLOPE,
                "{rec:?}"
            );
            assert_eq!(rec[1], 0.0);
            // The second row is past the count: NaN.
            assert!(records[j * 10 + 5..j * 10 + 10].iter().all(|v| v.is_nan()));
        }
        let _ = std::fs::remove_dir_all(&out);
    }
    let _ = std::fs::remove_dir_all(dir);
}
