//! SDE ensembles (`ode::sde`): the GPU against its CPU twin, convergence orders against
//! exact solutions on the same Brownian path, moments against closed forms, and paths that
//! depend only on (seed, trajectory index).

mod common;

use common::{gpu, system};
use phaseflow::gpu::shader::validate;
use phaseflow::model::System;
use phaseflow::model::noise::{Calculus, NoiseKind};
use phaseflow::ode::adaptive::problem::{Control, SaveAt, Tolerance};
use phaseflow::ode::sde::cpu::{integrate_adaptive, integrate_fixed};
use phaseflow::ode::sde::kernel::{Terms, adaptive_wgsl, fixed_wgsl};
use phaseflow::ode::sde::noise::{BrownianTree, NoiseKey, step_increments};
use phaseflow::ode::sde::{SdeMethod, SdeProblem, Steps, simulate_sde};
use phaseflow::ode::{Ensemble, Precision, RunOptions, Save, SavePlan, Solution, Status, TimeGrid};
use phaseflow::schedule::PlanCaps;

const SDE_SYSTEMS: [&str; 5] = [
    "ornstein_uhlenbeck",
    "gbm",
    "stochastic_lorenz",
    "noisy_fitzhugh_nagumo",
    "heston",
];

fn gbm(mu: f64, sigma: f64, calculus: Calculus) -> System {
    System::from_equations_with_noise(
        "gbm_test",
        &[("S", 1.0)],
        &[("mu", mu), ("sigma", sigma)],
        "dS = mu*S",
        "dS = sigma*S",
        NoiseKind::Diagonal,
        calculus,
    )
    .unwrap()
}

fn fixed(
    system: System,
    method: SdeMethod,
    (t1, dt): (f64, f64),
    save: Save,
    n: usize,
    precision: Precision,
) -> SdeProblem {
    SdeProblem {
        ensemble: Ensemble::new(&system, n),
        system,
        method,
        steps: Steps::Fixed {
            grid: TimeGrid::from_span(0.0, t1, dt).unwrap(),
            save,
        },
        noise: NoiseKey {
            seed: 7,
            antithetic: false,
        },
        precision,
    }
}

fn run(p: &SdeProblem) -> Solution {
    simulate_sde(gpu(), p, &RunOptions::default()).unwrap()
}

/// The methods a system's noise admits.
fn methods_for(s: &System) -> Vec<SdeMethod> {
    SdeMethod::ALL
        .into_iter()
        .filter(|m| !m.is_adaptive() && Terms::new(s, *m).is_ok())
        .collect()
}

/// Every generated SDE kernel (each shipped system × each method it admits, fixed and
/// adaptive, both precisions) passes naga.
#[test]
fn every_sde_kernel_validates() {
    let mut count = 0;
    for name in SDE_SYSTEMS {
        let s = system(name);
        for precision in [Precision::F32, Precision::F64] {
            for m in SdeMethod::ALL {
                let Ok(terms) = Terms::new(&s, m) else {
                    continue;
                };
                let wgsl = if m.is_adaptive() {
                    adaptive_wgsl(&s, &terms, &Control::default(), 64, precision)
                } else {
                    fixed_wgsl(&s, &terms, m, 64, precision)
                }
                .unwrap();
                validate(name, &wgsl, precision == Precision::F64)
                    .unwrap_or_else(|e| panic!("{name} {} {precision:?}: {e}", m.name()));
                count += 1;
            }
        }
    }
    // OU, GBM, stochastic Lorenz, FHN admit all five (additive or diagonal separable
    // noise, Itô); Heston (general noise) em only.
    assert!(count >= 2 * (4 * 4 + 1), "{count} kernels");
}

/// The GPU against the twin for every shipped system and every fixed-step method it admits:
/// same increments, same formulas. f64 agrees to rounding accumulated over 200 steps;
/// f32 to a few ulps of f32 per step (2e-4 relative to max(1, |x|) over 200 steps).
#[test]
fn gpu_matches_the_twin_for_every_method() {
    for name in SDE_SYSTEMS {
        let s = system(name);
        for m in methods_for(&s) {
            for (precision, tol) in [(Precision::F64, 1e-9), (Precision::F32, 2e-4)] {
                let dt = s.meta.dt.unwrap_or(1e-3);
                let p = fixed(
                    s.clone(),
                    m,
                    (200.0 * dt, dt),
                    Save::Every(50),
                    64,
                    precision,
                );
                let sol = run(&p);
                let terms = Terms::new(&p.system, m).unwrap();
                let Steps::Fixed { grid, save } = &p.steps else {
                    unreachable!()
                };
                let plan = SavePlan::new(*save, grid.n_steps).unwrap();
                for j in [0usize, 1, 17, 63] {
                    let round = |v: Vec<f64>| match precision {
                        Precision::F32 => v.iter().map(|&x| x as f32 as f64).collect(),
                        Precision::F64 => v,
                    };
                    let u0 = round(p.ensemble.states(j..j + 1));
                    let pp = round(p.ensemble.param_slots(j..j + 1));
                    let (saves, status) = integrate_fixed(
                        &p.system,
                        &terms,
                        m,
                        &p.noise,
                        j as u64,
                        (&u0, &pp),
                        grid,
                        &plan,
                    );
                    assert_eq!(
                        sol.status[j],
                        status,
                        "{name} {} {precision:?} #{j}",
                        m.name()
                    );
                    for slot in 0..plan.n_slots() {
                        let got = sol.state(slot, j);
                        for (c, g) in got.iter().enumerate() {
                            let w = saves[slot * s.dim() + c];
                            assert!(
                                (g - w).abs() <= tol * w.abs().max(1.0),
                                "{name} {} {precision:?} traj {j} slot {slot} state {c}: gpu {g} twin {w}",
                                m.name()
                            );
                        }
                    }
                }
            }
        }
    }
}

/// W(T) of trajectory j on the fixed grid, summed from the same increments as the run.
fn w_at_end(key: &NoiseKey, j: u64, grid: &TimeGrid) -> f64 {
    let mut dw = [0.0];
    let mut w = 0.0;
    for step in 0..grid.n_steps {
        step_increments(key, j, step, 1, grid.dt.sqrt(), &mut dw);
        w += dw[0];
    }
    w
}

/// Least-squares slope of log(err) against log(dt).
fn slope(dts: &[f64], errs: &[f64]) -> f64 {
    let xs: Vec<f64> = dts.iter().map(|d| d.ln()).collect();
    let ys: Vec<f64> = errs.iter().map(|e| e.ln()).collect();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    cov / var
}

/// Strong order on GBM (μ = 1, σ = 0.5, T = 1): E|X_N − X(T)| with X(T) exact on the same
/// Brownian path, over dt = 2^-4 … 2^-9, on the GPU (f64, 2,000 paths) and on the twin (400
/// paths). Slopes: EM 0.5 ± 0.1, Milstein 1.0 ± 0.1, Euler–Heun on the Stratonovich GBM
/// 1.0 ± 0.1. (With 2,000 paths each error's relative standard error is about 2%, which
/// moves a slope over this ladder by about 0.01.)
#[test]
fn strong_orders_on_gbm() {
    let dts: Vec<f64> = (4..=9).map(|k| 0.5f64.powi(k)).collect();
    let cases = [
        (SdeMethod::EulerMaruyama, Calculus::Ito, 0.5),
        (SdeMethod::Milstein, Calculus::Ito, 1.0),
        (SdeMethod::EulerHeun, Calculus::Stratonovich, 1.0),
    ];
    for (method, calculus, order) in cases {
        let s = gbm(1.0, 0.5, calculus);
        let exact = |w: f64| match calculus {
            Calculus::Ito => (1.0f64 - 0.125 + 0.5 * w).exp(),
            Calculus::Stratonovich => (1.0f64 + 0.5 * w).exp(),
        };
        let (mut gpu_err, mut cpu_err) = (Vec::new(), Vec::new());
        for &dt in &dts {
            let p = fixed(
                s.clone(),
                method,
                (1.0, dt),
                Save::Final,
                2000,
                Precision::F64,
            );
            let Steps::Fixed { grid, save } = &p.steps else {
                unreachable!()
            };
            let sol = run(&p);
            let e: f64 = (0..2000)
                .map(|j| (sol.final_state(j)[0] - exact(w_at_end(&p.noise, j as u64, grid))).abs())
                .sum::<f64>()
                / 2000.0;
            gpu_err.push(e);
            let terms = Terms::new(&s, method).unwrap();
            let plan = SavePlan::new(*save, grid.n_steps).unwrap();
            let e: f64 = (0..400)
                .map(|j| {
                    let (x, _) = integrate_fixed(
                        &s,
                        &terms,
                        method,
                        &p.noise,
                        j,
                        (&[1.0], &[1.0, 0.5]),
                        grid,
                        &plan,
                    );
                    (x[0] - exact(w_at_end(&p.noise, j, grid))).abs()
                })
                .sum::<f64>()
                / 400.0;
            cpu_err.push(e);
        }
        for (who, errs) in [("gpu", &gpu_err), ("twin", &cpu_err)] {
            let k = slope(&dts, errs);
            assert!(
                (k - order).abs() <= 0.1,
                "{} {who}: slope {k:.3} (want {order} ± 0.1), errors {errs:?}",
                method.name()
            );
        }
    }
}

/// Weak order 1 on OU (θ = 1, μ = 0.5, σ = 0.3, X0 = 1, T = 1, dt = 1/64, 200,000 paths):
/// mean and variance at T against the closed forms within 5 standard errors plus EM's own
/// bias, which for this linear SDE is known exactly: its mean is μ + (1 − θh)^n (X0 − μ)
/// and its variance σ²h Σ_k (1 − θh)^{2k}.
#[test]
fn ou_moments_match_closed_forms() {
    let s = system("ornstein_uhlenbeck");
    let (theta, mu, sigma, x0, h, n_paths) = (1.0f64, 0.5f64, 0.3f64, 1.0f64, 1.0 / 64.0, 200_000);
    let p = fixed(
        s,
        SdeMethod::EulerMaruyama,
        (1.0, h),
        Save::Final,
        n_paths,
        Precision::F32,
    );
    let sol = run(&p);
    let xs: Vec<f64> = (0..n_paths).map(|j| sol.final_state(j)[0]).collect();
    let n = n_paths as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let exact_mean = mu + (x0 - mu) * (-theta).exp();
    let exact_var = sigma * sigma / (2.0 * theta) * (1.0 - (-2.0 * theta).exp());
    let steps = 64;
    let em_mean = mu + (1.0 - theta * h).powi(steps) * (x0 - mu);
    let em_var: f64 = (0..steps)
        .map(|k| sigma * sigma * h * (1.0 - theta * h).powi(2 * k))
        .sum();
    // Standard errors: of the mean sqrt(var/n); of the variance sqrt(2/(n-1)) var (normal).
    let se_mean = (exact_var / n).sqrt();
    let se_var = (2.0 / (n - 1.0)).sqrt() * exact_var;
    assert!(
        (mean - exact_mean).abs() <= 5.0 * se_mean + (em_mean - exact_mean).abs(),
        "mean {mean} vs {exact_mean} (EM's {em_mean}, SE {se_mean:.2e})"
    );
    assert!(
        (var - exact_var).abs() <= 5.0 * se_var + (em_var - exact_var).abs(),
        "variance {var} vs {exact_var} (EM's {em_var}, SE {se_var:.2e})"
    );
    // And the band is tight enough to mean something: EM's bias here is under 2 SE.
    assert!((em_mean - exact_mean).abs() < 0.01);
}

/// Weak orders on GBM (μ = 1, σ = 0.5, T = 1): the bias E[X_N] − e^{μT} estimated as the
/// mean of X_N − X(T) over 100,000 paths (X(T) exact on the same path has mean e^{μT}
/// exactly, so the difference is an unbiased, low-variance estimate of the bias). Slopes
/// over dt = 1/4 … 1/32: EM 1 ± 0.2, Platen 2 ± 0.3.
#[test]
fn weak_orders_on_gbm() {
    let dts: Vec<f64> = (2..=5).map(|k| 0.5f64.powi(k)).collect();
    let s = gbm(1.0, 0.5, Calculus::Ito);
    let n = 100_000;
    for (method, order, band) in [
        (SdeMethod::EulerMaruyama, 1.0, 0.2),
        (SdeMethod::Platen, 2.0, 0.3),
    ] {
        let mut biases = Vec::new();
        for &dt in &dts {
            let p = fixed(s.clone(), method, (1.0, dt), Save::Final, n, Precision::F64);
            let Steps::Fixed { grid, .. } = &p.steps else {
                unreachable!()
            };
            let sol = run(&p);
            let diffs: Vec<f64> = (0..n)
                .map(|j| {
                    let w = w_at_end(&p.noise, j as u64, grid);
                    sol.final_state(j)[0] - (1.0f64 - 0.125 + 0.5 * w).exp()
                })
                .collect();
            let mean = diffs.iter().sum::<f64>() / n as f64;
            let sd = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
            // The estimate must stand well clear of its own noise for a slope to mean
            // anything.
            assert!(
                mean.abs() > 5.0 * sd / (n as f64).sqrt(),
                "{} dt {dt}: bias {mean:.3e} within noise {sd:.3e}",
                method.name()
            );
            biases.push(mean.abs());
        }
        let k = slope(&dts, &biases);
        assert!(
            (k - order).abs() <= band,
            "{}: weak slope {k:.3} (want {order} ± {band}), biases {biases:?}",
            method.name()
        );
    }
}

/// A trajectory's path depends only on the seed and its index: the same results
/// bit for bit with chunks of 97, batches of 2 slots and 5-step windows, and trajectory i
/// of N = 10 equals trajectory i of N = 10^6.
#[test]
fn paths_depend_only_on_seed_and_index() {
    let s = system("stochastic_lorenz");
    let p = fixed(
        s,
        SdeMethod::Milstein,
        (0.5, 0.005),
        Save::Every(7),
        1000,
        Precision::F32,
    );
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
    let pieces = simulate_sde(gpu(), &p, &options).unwrap();
    assert!(pieces.stats.chunks > 10, "{:?}", pieces.stats);
    assert_eq!(whole.status, pieces.status);
    assert!(whole.states.same_bits(&pieces.states));
    let wide = simulate_sde(
        gpu(),
        &p,
        &RunOptions {
            workgroup_size: 256,
            ..RunOptions::default()
        },
    )
    .unwrap();
    assert!(whole.states.same_bits(&wide.states));

    let ou = system("ornstein_uhlenbeck");
    let small = run(&fixed(
        ou.clone(),
        SdeMethod::EulerMaruyama,
        (1.0, 0.1),
        Save::Final,
        10,
        Precision::F32,
    ));
    let large = run(&fixed(
        ou,
        SdeMethod::EulerMaruyama,
        (1.0, 0.1),
        Save::Final,
        1_000_000,
        Precision::F32,
    ));
    for j in 0..10 {
        assert_eq!(
            small.final_state(j)[0].to_bits(),
            large.final_state(j)[0].to_bits(),
            "trajectory {j}"
        );
    }
    // Different seeds give different paths.
    let mut other = fixed(
        system("ornstein_uhlenbeck"),
        SdeMethod::EulerMaruyama,
        (1.0, 0.1),
        Save::Final,
        10,
        Precision::F32,
    );
    other.noise.seed = 8;
    let other = run(&other);
    assert_ne!(other.final_state(0)[0], small.final_state(0)[0]);
}

/// Antithetic pairs: OU under EM is linear in its increments, so the mean of a pair is
/// the deterministic EM solution exactly (to f64 rounding), and the two differ.
#[test]
fn antithetic_pairs_mirror_each_other() {
    let s = system("ornstein_uhlenbeck");
    let mut p = fixed(
        s.clone(),
        SdeMethod::EulerMaruyama,
        (1.0, 0.01),
        Save::Final,
        64,
        Precision::F64,
    );
    p.noise.antithetic = true;
    let sol = run(&p);
    let (theta, mu, x0) = (1.0f64, 0.5f64, 1.0f64);
    let mut det = x0;
    for _ in 0..100 {
        det += 0.01 * theta * (mu - det);
    }
    for j in 0..32 {
        let (a, b) = (sol.final_state(2 * j)[0], sol.final_state(2 * j + 1)[0]);
        assert!(
            ((a + b) / 2.0 - det).abs() < 1e-12,
            "pair {j}: {a} {b} vs {det}"
        );
        assert!((a - b).abs() > 1e-3, "pair {j} identical");
    }
}

/// milstein-adaptive on GBM (μ = 1, σ = 0.5, 256 paths, f64), at rtol = atol = 1e-2 and 1e-5.
///
/// Against the twin, on a tree of 2^4 leaves: both take the same steps and agree to 1e-10,
/// but for at most 2% of paths. On the default tree (2^20 leaves) they may part: a step
/// time that differs in its last bit (the device may fuse a multiply-add) reads W inside a
/// leaf where W's slope is ~2^10, so the next error estimate and step differ a little more,
/// and so on; both stay solutions on the same path within 20x the tolerance.
///
/// One Brownian path: W(T) is the tree's root whatever the steps, and the endpoint error
/// against the exact GBM solution on that path shrinks with the tolerance (by more than
/// 10x on average) on the GPU and on the twin.
#[test]
fn adaptive_steps_sample_one_brownian_path() {
    let s = gbm(1.0, 0.5, Calculus::Ito);
    let n = 256;
    let terms = Terms::new(&s, SdeMethod::MilsteinAdaptive).unwrap();
    let tree = BrownianTree {
        t0: 0.0,
        t1: 1.0,
        depth: 20,
        m: 1,
    };
    let key = NoiseKey {
        seed: 11,
        antithetic: false,
    };
    let problem = |tol: f64, times: Vec<f64>, depth: u32| SdeProblem {
        ensemble: Ensemble::new(&s, n),
        system: s.clone(),
        method: SdeMethod::MilsteinAdaptive,
        steps: Steps::Adaptive {
            t0: 0.0,
            t1: 1.0,
            saveat: SaveAt::Times(times),
            control: Control {
                rtol: Tolerance::All(tol),
                atol: Tolerance::All(tol),
                ..Control::default()
            },
            depth,
        },
        noise: key,
        precision: Precision::F64,
    };
    let control_of = |p: &SdeProblem| match &p.steps {
        Steps::Adaptive { control, .. } => control.clone(),
        Steps::Fixed { .. } => unreachable!(),
    };
    let exact = |j: usize| {
        let mut w = [0.0];
        tree.at(&key, j as u64, 1.0, &mut w);
        (1.0f64 - 0.125 + 0.5 * w[0]).exp()
    };

    // Lockstep with the twin on a save grid and a coarse tree; within 20x the tolerance on
    // the fine one.
    let grid: Vec<f64> = (0..=20).map(|i| i as f64 / 20.0).collect();
    for (tol, depth) in [(1e-2, 4), (1e-5, 4), (1e-2, 20), (1e-5, 20)] {
        let p = problem(tol, grid.clone(), depth);
        let tree = BrownianTree { depth, ..tree };
        let sol = run(&p);
        let control = control_of(&p);
        let dt0 = phaseflow::ode::sde::run::initial_step(&p);
        let mut parted = 0;
        for j in 0..n {
            let out = integrate_adaptive(
                &s,
                &terms,
                &key,
                j as u64,
                (&[1.0], &[1.0, 0.5]),
                &tree,
                &grid,
                (&control, dt0),
            );
            assert_eq!(sol.status[j], Status::Success);
            assert_eq!(out.status, Status::Success);
            let steps = sol.steps.as_ref().unwrap()[j];
            let same_steps =
                (steps.accepted, steps.rejected) == (out.counts.accepted, out.counts.rejected);
            let worst = out
                .saves
                .iter()
                .enumerate()
                .map(|(k, want)| (sol.state(k, j)[0] - want).abs() / want.abs().max(1.0))
                .fold(0.0, f64::max);
            if !same_steps || worst > 1e-10 {
                parted += 1;
            }
            assert!(
                worst < 20.0 * tol,
                "traj {j}: {worst:.2e} from the twin at {tol}"
            );
        }
        if depth == 4 {
            assert!(
                parted <= n / 50,
                "{parted} of {n} paths parted from the twin at {tol}"
            );
        }
    }

    // One path at two tolerances, final state only.
    let mut gpu_err = Vec::new();
    let mut cpu_err = Vec::new();
    for tol in [1e-2, 1e-5] {
        let p = problem(tol, vec![1.0], 20);
        let sol = run(&p);
        let control = control_of(&p);
        let dt0 = phaseflow::ode::sde::run::initial_step(&p);
        let (mut g, mut c) = (0.0, 0.0);
        for j in 0..n {
            assert_eq!(sol.status[j], Status::Success);
            let out = integrate_adaptive(
                &s,
                &terms,
                &key,
                j as u64,
                (&[1.0], &[1.0, 0.5]),
                &tree,
                &[1.0],
                (&control, dt0),
            );
            let mut w = [0.0];
            tree.at(&key, j as u64, 1.0, &mut w);
            assert_eq!(w[0], out.w[0], "W(T) is the tree's root");
            g += (sol.final_state(j)[0] - exact(j)).abs() / n as f64;
            c += (out.saves[0] - exact(j)).abs() / n as f64;
        }
        gpu_err.push(g);
        cpu_err.push(c);
    }
    assert!(
        gpu_err[1] < gpu_err[0] / 10.0,
        "GPU errors at 1e-2 and 1e-5: {gpu_err:?}"
    );
    assert!(
        cpu_err[1] < cpu_err[0] / 10.0,
        "twin errors at 1e-2 and 1e-5: {cpu_err:?}"
    );
    // At 1e-5 both are far closer to the exact solution than the tolerance's scale.
    assert!(
        gpu_err[1] < 1e-2 && cpu_err[1] < 1e-2,
        "{gpu_err:?} {cpu_err:?}"
    );
}

/// A chunk as large as the caps allow still fits every binding: in f32 one-noise GBM's
/// widest per-path binding is its six u32 counters (24 bytes), not its control rows (12),
/// and 6,000,000 paths of counters (144 MB) exceed lavapipe's 128 MiB binding. The plan
/// once sized the chunk by the control rows and wgpu refused the bind group.
#[test]
fn the_counts_binding_bounds_the_adaptive_chunk() {
    let s = gbm(1.0, 0.5, Calculus::Ito);
    let n = 6_000_000;
    let p = SdeProblem {
        ensemble: Ensemble::new(&s, n),
        system: s.clone(),
        method: SdeMethod::MilsteinAdaptive,
        steps: Steps::Adaptive {
            t0: 0.0,
            t1: 0.1,
            saveat: SaveAt::Final,
            control: Control {
                rtol: Tolerance::All(1e-2),
                atol: Tolerance::All(1e-2),
                ..Control::default()
            },
            depth: 8,
        },
        noise: NoiseKey {
            seed: 5,
            antithetic: false,
        },
        precision: Precision::F32,
    };
    let options = RunOptions {
        caps: PlanCaps {
            max_chunk: Some(n),
            ..PlanCaps::default()
        },
        ..RunOptions::default()
    };
    let sol = simulate_sde(gpu(), &p, &options).unwrap_or_else(|e| panic!("{e}"));
    let limit = phaseflow::schedule::plan::DeviceLimits::of(&gpu().limits).max_binding;
    assert!(
        (sol.stats.chunks as u64) >= (24 * n as u64).div_ceil(limit),
        "{:?}",
        sol.stats
    );
    // Every path succeeded and stayed near S0 = 1 over t = 0.1 (σ√t ≈ 0.16).
    for j in [0, 1, n / 2, n - 1] {
        assert_eq!(sol.status[j], Status::Success, "{j}");
        let x = sol.final_state(j)[0];
        assert!(x > 0.2 && x < 5.0, "{j}: {x}");
    }
}
