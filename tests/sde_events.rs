//! Events (`[[events]]`) in the SDE kernels: every kernel through naga (and a system without
//! events keeps its kernel), the GPU against the f64 twin on random problems with every
//! action and both kinds, in f32 and f64, first-passage probabilities of Brownian motion
//! against the reflection principle (terminate) and reset counts against the same closed
//! form (assign), a never-firing event that leaves the paths alone, and logs bit-identical
//! across chunks and windows.

mod common;

use common::gpu;
use phaseflow::gpu::shader::validate;
use phaseflow::model::System;
use phaseflow::model::noise::{Calculus, NoiseKind};
use phaseflow::ode::adaptive::problem::{Control, SaveAt, Tolerance};
use phaseflow::ode::events::EventLog;
use phaseflow::ode::events::cpu::join;
use phaseflow::ode::sde::cpu_events::{integrate_adaptive_events, integrate_fixed_events};
use phaseflow::ode::sde::events::{adaptive_kernel, fixed_kernel};
use phaseflow::ode::sde::kernel::{Terms, adaptive_wgsl, fixed_wgsl};
use phaseflow::ode::sde::noise::{BrownianTree, NoiseKey};
use phaseflow::ode::sde::run::initial_step;
use phaseflow::ode::sde::{SdeMethod, SdeProblem, Steps, simulate_sde};
use phaseflow::ode::{
    Ensemble, InitialStates, Precision, RunOptions, Save, SavePlan, Solution, Status, TimeGrid,
};

/// dx = mu dt + sigma dW (Itô, or Stratonovich for euler-heun: the same process, additive
/// noise) with `events`.
fn drifting(calculus: Calculus, events: &str) -> System {
    System::from_equations_with_noise(
        "drift_bm",
        &[("x", 0.0)],
        &[("mu", 0.0), ("sigma", 1.0), ("a", 1.0)],
        "dx = mu",
        "dx = sigma",
        NoiseKind::Diagonal,
        calculus,
    )
    .unwrap()
    .with_events(events)
    .unwrap()
}

/// A noisy leaky integrate-and-fire neuron with multiplicative noise in a second state:
/// v relaxes to I, w is a GBM-like state; v resets at threshold (continuous, assign), a
/// record at v = 0.5 (both directions), a discrete event that halves w when it exceeds 2.
fn neuron(calculus: Calculus) -> System {
    System::from_equations_with_noise(
        "noisy_lif",
        &[("v", 0.0), ("w", 1.0)],
        &[("I", 1.2), ("tau", 0.5), ("sigma", 0.4), ("s", 0.5)],
        "dv = (I - v) / tau\ndw = 0.1*w",
        "dv = sigma\ndw = s*w",
        NoiseKind::Diagonal,
        calculus,
    )
    .unwrap()
    .with_events(
        "[[events]]\nname = \"spike\"\ncondition = \"v - 1\"\ndirection = \"up\"\naction = \"assign\"\nassign = \"v = 0\"\n\
         [[events]]\nname = \"half\"\ncondition = \"v - 0.5\"\n\
         [[events]]\nname = \"cap\"\nkind = \"discrete\"\ncondition = \"w - 2\"\naction = \"assign\"\nassign = \"w = 0.5*w\\ns = 0.9*s\"\n",
    )
    .unwrap()
}

fn problem(system: System, method: SdeMethod, t1: f64, dt: f64, n: usize) -> SdeProblem {
    SdeProblem {
        ensemble: Ensemble::new(&system, n),
        steps: if method.is_adaptive() {
            Steps::Adaptive {
                t0: 0.0,
                t1,
                saveat: SaveAt::Final,
                control: Control {
                    rtol: Tolerance::All(1e-3),
                    atol: Tolerance::All(1e-3),
                    dt_max: Some(dt),
                    ..Control::default()
                },
                depth: 16,
            }
        } else {
            Steps::Fixed {
                grid: TimeGrid::from_span(0.0, t1, dt).unwrap(),
                save: Save::Every(10),
            }
        },
        system,
        method,
        noise: NoiseKey {
            seed: 11,
            antithetic: false,
        },
        precision: Precision::F64,
    }
}

fn run(p: &SdeProblem, options: &RunOptions) -> Solution {
    simulate_sde(gpu(), p, options).unwrap()
}

/// The twin's statuses and log for every trajectory (inputs rounded as the GPU sees them).
fn twin(p: &SdeProblem) -> (Vec<Status>, EventLog) {
    let terms = Terms::new(&p.system, p.method).unwrap();
    let round = |v: Vec<f64>| match p.precision {
        Precision::F32 => v.iter().map(|&x| x as f32 as f64).collect(),
        Precision::F64 => v,
    };
    let mut logs = Vec::new();
    let mut status = Vec::new();
    for j in 0..p.ensemble.n {
        let u0 = round(p.ensemble.states(j..j + 1));
        let pp = round(p.ensemble.param_slots(j..j + 1));
        let (st, log) = match &p.steps {
            Steps::Fixed { grid, save } => {
                let plan = SavePlan::new(*save, grid.n_steps).unwrap();
                let (_, st, log) = integrate_fixed_events(
                    &p.system,
                    &terms,
                    p.method,
                    &p.noise,
                    j as u64,
                    (&u0, &pp),
                    grid,
                    &plan,
                );
                (st, log)
            }
            Steps::Adaptive {
                t0,
                t1,
                control,
                depth,
                ..
            } => {
                let tree = BrownianTree::new(*t0, *t1, *depth, terms.m).unwrap();
                let (out, log) = integrate_adaptive_events(
                    &p.system,
                    &terms,
                    &p.noise,
                    j as u64,
                    (&u0, &pp),
                    &tree,
                    &[*t1],
                    (control, initial_step(p)),
                );
                (out.status, log)
            }
        };
        logs.push(log);
        status.push(st);
    }
    (status, join(&logs, p.system.event_log.k, p.system.dim()))
}

fn methods(calculus: Calculus) -> Vec<SdeMethod> {
    match calculus {
        Calculus::Ito => vec![
            SdeMethod::EulerMaruyama,
            SdeMethod::Milstein,
            SdeMethod::Platen,
            SdeMethod::MilsteinAdaptive,
        ],
        Calculus::Stratonovich => vec![SdeMethod::EulerHeun, SdeMethod::MilsteinAdaptive],
    }
}

#[test]
fn every_sde_events_kernel_passes_naga_and_a_plain_system_keeps_its_kernel() {
    let mut count = 0;
    for calculus in [Calculus::Ito, Calculus::Stratonovich] {
        let s = neuron(calculus);
        let t = drifting(
            calculus,
            "[[events]]\ncondition = \"x - a\"\naction = \"terminate\"\n",
        );
        for sys in [&s, &t] {
            for m in methods(calculus) {
                let terms = Terms::new(sys, m).unwrap();
                for precision in [Precision::F32, Precision::F64] {
                    let wgsl = if m.is_adaptive() {
                        adaptive_kernel(sys, &terms, &Control::default(), 64, precision)
                    } else {
                        fixed_kernel(sys, &terms, m, 64, precision)
                    }
                    .unwrap();
                    assert!(wgsl.contains("fn event_scan"), "{}", m.name());
                    validate("sde events", &wgsl, precision == Precision::F64)
                        .unwrap_or_else(|e| panic!("{} {precision:?}: {e}", m.name()));
                    count += 1;
                }
            }
        }
    }
    assert_eq!(count, 2 * 2 * (4 + 2));
    // Without events: exactly the kernel `sde::kernel` made before events existed.
    let plain = common::system("ornstein_uhlenbeck");
    let mut plain_count = 0;
    for m in SdeMethod::ALL {
        // OU is Itô: every method but euler-heun takes it.
        let Ok(terms) = Terms::new(&plain, m) else {
            continue;
        };
        for precision in [Precision::F32, Precision::F64] {
            let (a, b) = if m.is_adaptive() {
                let c = Control::default();
                (
                    adaptive_kernel(&plain, &terms, &c, 64, precision).unwrap(),
                    adaptive_wgsl(&plain, &terms, &c, 64, precision).unwrap(),
                )
            } else {
                (
                    fixed_kernel(&plain, &terms, m, 64, precision).unwrap(),
                    fixed_wgsl(&plain, &terms, m, 64, precision).unwrap(),
                )
            };
            assert_eq!(a, b);
            assert!(!a.contains("event_") && !a.contains("bridge_normals"));
            plain_count += 1;
        }
    }
    assert_eq!(plain_count, 2 * 4);
}

/// Logs of the GPU and the twin: the same counts and ids, times and states within `tol`
/// (relative to max(1, |value|)), except on at most `parted` trajectories whose counts
/// differ: there only the first record is held to `tol` (the paths agree at least up to
/// the first event).
fn assert_logs_close(name: &str, gpu: &EventLog, twin: &EventLog, tol: f64, parted: usize) {
    let close = |j: usize, r: usize, a: &[f64], b: &[f64]| {
        assert_eq!(a[1], b[1], "{name}: trajectory {j} record {r} id");
        for c in [0].into_iter().chain(2..a.len()) {
            assert!(
                (a[c] - b[c]).abs() <= tol * (1.0 + b[c].abs()),
                "{name}: trajectory {j} record {r} column {c}: {} vs twin {}",
                a[c],
                b[c]
            );
        }
    };
    let apart: Vec<usize> = (0..gpu.len())
        .filter(|&j| gpu.counts[j] != twin.counts[j])
        .collect();
    if apart.len() > parted {
        let j = apart[0];
        let rows = |l: &EventLog| {
            l.records_of(j)
                .map(|r| format!("{r:?}"))
                .collect::<Vec<_>>()
        };
        panic!(
            "{name}: {} trajectories with other counts than the twin; trajectory {j}: {} vs \
             twin {}\ngpu:  {:#?}\ntwin: {:#?}",
            apart.len(),
            gpu.counts[j],
            twin.counts[j],
            rows(gpu),
            rows(twin)
        );
    }
    let mut records = 0;
    for j in 0..gpu.len() {
        let pairs = gpu.records_of(j).zip(twin.records_of(j));
        let keep = if apart.contains(&j) { 1 } else { usize::MAX };
        for (r, (a, b)) in pairs.take(keep).enumerate() {
            close(j, r, a, b);
            records += 1;
        }
    }
    assert!(records > gpu.len(), "{name}: {records} records");
}

/// Random initial states and currents; every method each calculus admits, fixed and
/// adaptive, f64 and f32. The twin draws the same increments, bridge normals and tree
/// values, so the event times and counts are equal. f64: roundings of the device's f64
/// library and fused operations, 1e-9 after dozens of events. f32: the increments
/// themselves agree to ~1e-7 relative (f32 Box–Muller on the twin's uniforms), which a span
/// of 2 with resets keeps below 1e-4 in times and states; over a short span (t1 = 2,
/// 32 trajectories) no crossing of a fixed-step path is near enough to its threshold for
/// that to change a count. milstein-adaptive: the device's tree values differ from the
/// twin's by ~1e-10 (f64; tests/sde.rs), and one accept/reject decision that flips on that
/// puts the path on other steps, which moves later events by the tolerance's scale (1e-3);
/// a coarse tree (depth 4, as tests/sde.rs's lockstep check) keeps most paths in lockstep,
/// and at most 1 in 8 may part after its first event.
#[test]
fn gpu_matches_the_twin_f64_and_f32() {
    for calculus in [Calculus::Ito, Calculus::Stratonovich] {
        let s = neuron(calculus);
        for m in methods(calculus).into_iter().rev() {
            for (precision, tol) in [(Precision::F64, 1e-9), (Precision::F32, 1e-4)] {
                let mut p = problem(s.clone(), m, 2.0, 0.01, 32);
                p.precision = precision;
                if let Steps::Adaptive { depth, .. } = &mut p.steps {
                    *depth = 4;
                }
                let parted = if m.is_adaptive() { 4 } else { 0 };
                p.ensemble.initial = InitialStates::Uniform {
                    seed: 5,
                    ranges: vec![(0, -0.5, 0.9), (1, 0.5, 1.5)],
                };
                let sol = run(&p, &RunOptions::default());
                let (st, log) = twin(&p);
                assert_eq!(sol.status, st, "{} {precision:?}", m.name());
                let name = format!("{} {calculus:?} {precision:?}", m.name());
                assert_logs_close(&name, sol.events.as_ref().unwrap(), &log, tol, parted);
                // Every trajectory spikes, and resets happen (ids 0 and 1 both appear).
                let l = sol.events.as_ref().unwrap();
                assert!(l.counts.iter().all(|&c| c >= 2), "{name}: {:?}", l.counts);
            }
        }
    }
}

/// Φ, the standard normal CDF (erfc by Numerical Recipes' Chebyshev fit, |ε| < 1.2e-7).
fn phi(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.26551223
        + t * (1.00002368
            + t * (0.37409196
                + t * (0.09678418
                    + t * (-0.18628806
                        + t * (0.27886807
                            + t * (-1.13520398
                                + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

/// Broadie, Glasserman & Kou (Math. Finance 7, 1997): a barrier monitored every dt acts
/// like a continuous barrier shifted outwards by β σ sqrt(dt), β = −ζ(1/2)/sqrt(2π).
const BGK_BETA: f64 = 0.5826;

/// P(sup_{t ≤ T} σ W(t) ≥ level) = 2 (1 − Φ(level / (σ sqrt(T)))), the reflection principle.
fn passage(level: f64, sigma: f64, t: f64) -> f64 {
    2.0 * (1.0 - phi(level / (sigma * t.sqrt())))
}

/// Driftless Brownian motion from 0, σ = 1, terminated at x = a = 1 before T = 1: the
/// fraction terminated is P = 2 (1 − Φ(1)) = 0.3173 for continuous monitoring; a step of
/// dt = 1e-3 locates crossings of the discrete path only, which acts as a barrier at
/// a + β sqrt(dt) (BGK): 0.3084. The band is 4 binomial standard deviations of N = 8000
/// (±0.021); the BGK value is used because the unshifted one is 1.7 of those away. The
/// adaptive method has no drift or Milstein term to control here, so it runs at its
/// dt_max = 1e-3 over the tree. Every terminated trajectory stopped on the barrier.
#[test]
fn first_passage_of_brownian_motion_matches_the_reflection_principle() {
    let n = 8000;
    let dt: f64 = 1e-3;
    let s = drifting(
        Calculus::Ito,
        "[[events]]\ncondition = \"x - a\"\ndirection = \"up\"\naction = \"terminate\"\n",
    );
    let expected = passage(1.0 + BGK_BETA * dt.sqrt(), 1.0, 1.0);
    let band = 4.0 * (expected * (1.0 - expected) / n as f64).sqrt();
    for m in [SdeMethod::EulerMaruyama, SdeMethod::MilsteinAdaptive] {
        for precision in [Precision::F64, Precision::F32] {
            let mut p = problem(s.clone(), m, 1.0, dt, n);
            p.precision = precision;
            let sol = run(&p, &RunOptions::default());
            let log = sol.events.as_ref().unwrap();
            let stopped = sol
                .status
                .iter()
                .filter(|&&s| s == Status::Terminated)
                .count();
            let frac = stopped as f64 / n as f64;
            assert!(
                (frac - expected).abs() < band,
                "{} {precision:?}: {frac} terminated, expected {expected} ± {band}",
                m.name()
            );
            for j in 0..n {
                let terminated = sol.status[j] == Status::Terminated;
                assert_eq!(log.counts[j], terminated as u32, "trajectory {j}");
                assert!(terminated || sol.status[j] == Status::Success);
                if terminated {
                    let r = log.record(j, 0);
                    assert!(
                        r[0] > 0.0 && r[0] <= 1.0 && (r[2] - 1.0).abs() < 1e-5,
                        "{r:?}"
                    );
                }
            }
        }
    }
}

/// Driftless Brownian motion from 0, σ = 1, reset to 0 each time it reaches a = 0.5: by the
/// strong Markov property the resets by T = 1 number at least k exactly when σ W reaches
/// k·a, so P(N ≥ k) = 2 (1 − Φ(k a)) (0.617, 0.317, 0.134 for k = 1, 2, 3). With discrete
/// monitoring each passage acts as a barrier shifted by β sqrt(dt) (BGK), so k·(a + β
/// sqrt(dt)). The restart after a reset draws the rest of the grid step's increment from
/// the Brownian bridge (fixed steps) or the tree (adaptive): too little noise there would
/// bias P(N ≥ 2) and P(N ≥ 3). Bands: 4 binomial standard deviations of N = 8000.
#[test]
fn reset_counts_of_brownian_motion_match_the_reflection_principle() {
    let n = 8000;
    let dt: f64 = 1e-3;
    let s = drifting(
        Calculus::Ito,
        "[[events]]\ncondition = \"x - a\"\ndirection = \"up\"\naction = \"assign\"\nassign = \"x = 0\"\n",
    );
    for m in [
        SdeMethod::EulerMaruyama,
        SdeMethod::Platen,
        SdeMethod::MilsteinAdaptive,
    ] {
        for precision in [Precision::F64, Precision::F32] {
            let mut p = problem(s.clone(), m, 1.0, dt, n);
            p.system.params[2].default = 0.5;
            p.ensemble = Ensemble::new(&p.system, n);
            p.precision = precision;
            let sol = run(&p, &RunOptions::default());
            let log = sol.events.as_ref().unwrap();
            assert!(sol.status.iter().all(|&s| s == Status::Success));
            for k in 1..=3u32 {
                let expected = passage(k as f64 * (0.5 + BGK_BETA * dt.sqrt()), 1.0, 1.0);
                let band = 4.0 * (expected * (1.0 - expected) / n as f64).sqrt();
                let frac = log.counts.iter().filter(|&&c| c >= k).count() as f64 / n as f64;
                assert!(
                    (frac - expected).abs() < band,
                    "{} {precision:?}: P(N >= {k}) = {frac}, expected {expected} ± {band}",
                    m.name()
                );
            }
        }
    }
}

/// An event that never fires changes nothing: the same statuses and final states as the
/// kernel without events (the same increments, the same step formula; f64 to rounding of
/// the two compiled kernels), and empty logs.
#[test]
fn a_never_firing_event_leaves_the_paths_alone() {
    let plain = common::system("ornstein_uhlenbeck");
    let with = plain
        .clone()
        .with_events("[[events]]\ncondition = \"x - 1e6\"\naction = \"terminate\"\n")
        .unwrap();
    for m in [
        SdeMethod::EulerMaruyama,
        SdeMethod::Platen,
        SdeMethod::MilsteinAdaptive,
    ] {
        let a = run(
            &problem(plain.clone(), m, 1.0, 0.01, 64),
            &RunOptions::default(),
        );
        let b = run(
            &problem(with.clone(), m, 1.0, 0.01, 64),
            &RunOptions::default(),
        );
        assert_eq!(a.status, b.status);
        assert!(b.events.as_ref().unwrap().counts.iter().all(|&c| c == 0));
        for j in 0..64 {
            let (x, y) = (a.final_state(j)[0], b.final_state(j)[0]);
            assert!(
                (x - y).abs() <= 1e-12 * (1.0 + x.abs()),
                "{} {j}: {x} vs {y}",
                m.name()
            );
        }
    }
}

fn same_bits(a: &EventLog, b: &EventLog) -> bool {
    a.counts == b.counts
        && a.records
            .iter()
            .zip(&b.records)
            .all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Logs do not depend on chunks, windows or save batches (increments are keyed by the
/// run-wide trajectory and step, bridge normals by step and cut, tree values by time).
#[test]
fn logs_are_the_same_bits_across_chunks_windows_and_batches() {
    let base = RunOptions::default();
    let mut small_chunks = base.clone();
    small_chunks.caps.max_chunk = Some(24);
    let mut short_windows = base.clone();
    short_windows.steps_per_dispatch = 1;
    short_windows.min_window_steps = 7;
    let mut batches = base.clone();
    batches.caps.max_slots_per_batch = Some(3);
    for m in [SdeMethod::Milstein, SdeMethod::MilsteinAdaptive] {
        for precision in [Precision::F32, Precision::F64] {
            let mut p = problem(neuron(Calculus::Ito), m, 2.0, 0.01, 64);
            p.precision = precision;
            if let Steps::Adaptive { saveat, .. } = &mut p.steps {
                *saveat = SaveAt::Times((0..=8).map(|i| 0.25 * i as f64).collect());
            }
            let reference = run(&p, &base);
            let log = reference.events.as_ref().unwrap();
            assert!(log.counts.iter().sum::<u32>() > 64 * 2);
            for o in [&small_chunks, &short_windows, &batches] {
                let other = run(&p, o);
                assert_eq!(other.status, reference.status);
                assert!(
                    same_bits(other.events.as_ref().unwrap(), log),
                    "{} {precision:?}",
                    m.name()
                );
            }
        }
    }
}

/// `phaseflow simulate` on an SDE system file with [[events]] writes events.npy
/// [N, K, 2 + dim] and event_counts.npy [N], for a fixed-step and the adaptive method.
#[test]
fn simulate_writes_the_event_log_of_an_sde_system_file() {
    use common::cli::{phaseflow, stderr, temp_dir};
    use phaseflow::io::npy::read_npy;
    let dir = temp_dir("sde_events");
    let file = dir.join("noisy_fire.toml");
    std::fs::write(
        &file,
        "name = \"noisy_fire\"\nstates = { v = 0.0 }\nparameters = { I = 1.5, sigma = 0.3 }\n\
         tspan = [0.0, 5.0]\ndt = 0.001\nequations = \"\"\"\ndv = I - v\n\"\"\"\n\
         noise = \"\"\"\ndv = sigma\n\"\"\"\n\n[[events]]\nname = \"spike\"\ncondition = \"v - 1\"\n\
         direction = \"up\"\naction = \"assign\"\nassign = \"v = 0\"\n",
    )
    .unwrap();
    for solver in ["em", "milstein-adaptive"] {
        let out = dir.join(solver);
        let o = phaseflow(&[
            "simulate",
            file.to_str().unwrap(),
            "--solver",
            solver,
            "-n",
            "3",
            "--events",
            "4",
            "-q",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{solver}: {}", stderr(&o));
        let (shape, records) = read_npy(&out.join("events.npy")).unwrap();
        assert_eq!(shape, vec![3, 4, 3]);
        let (shape, counts) = read_npy(&out.join("event_counts.npy")).unwrap();
        assert_eq!(shape, vec![3]);
        // I = 1.5 drives v from 0 to 1 in ln 3 ≈ 1.1 s without noise: a few spikes in 5 s.
        for j in 0..3 {
            assert!(
                counts[j] >= 2.0 && counts[j] <= 12.0,
                "{solver}: {counts:?}"
            );
            let first = &records[j * 12..j * 12 + 3];
            assert!(first[0] > 0.0 && first[0] < 5.0, "{first:?}");
            assert_eq!(first[1], 0.0);
            assert!((first[2] - 1.0).abs() < 1e-4, "{first:?}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
