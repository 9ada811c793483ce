//! Parameter estimation, one fit per trajectory (`ode::estimate`): recovery of Lorenz
//! parameters from noisy observations with standard errors that cover the truth, initial
//! values recovered exactly from noise-free data, missing values, statuses of fits that
//! cannot run, and results independent of chunking.

mod common;
use common::gpu;
use phaseflow::ode::estimate::{
    Estimate, EstimationProblem, FitStatus, Observations, Start, Stopping, estimate,
};
use phaseflow::ode::sensitivity::{ErrorControl, resolve};
use phaseflow::ode::{Parameters, Precision, Problem, RunOptions, Table};
use phaseflow::rng::{normal_f64, uniform_f64};
use phaseflow::spec::{RunSpec, build_problem};

fn problem(text: &str) -> Problem {
    let spec: RunSpec = toml::from_str(text).unwrap();
    build_problem(&spec).unwrap_or_else(|e| panic!("{e}"))
}

/// Simulated observations of `truth` (row-major [N][n_params]) at `times`, with Gaussian
/// noise of standard deviation `sigma` (seeded), NaN where `missing(j, o, i)`.
fn observe(
    base: &Problem,
    truth: &[f64],
    times: &[f64],
    sigma: f64,
    missing: impl Fn(usize, usize, usize) -> bool,
) -> Vec<f64> {
    let mut p = base.clone();
    let n = base.ensemble().n;
    let cols = base.system().n_params();
    let Problem::Adaptive(a) = &mut p else {
        panic!("adaptive")
    };
    a.ensemble.params = Parameters::Table(Table {
        data: truth.to_vec(),
        rows: n,
        cols,
        origin: "truth".into(),
    });
    a.saveat = phaseflow::ode::SaveAt::Times(times.to_vec());
    let sol = p.simulate(gpu(), &RunOptions::default()).unwrap();
    let dim = base.system().dim();
    let mut out = Vec::with_capacity(n * times.len() * dim);
    for j in 0..n {
        for o in 0..times.len() {
            let u = sol.state(o, j);
            for (i, &ui) in u.iter().enumerate().take(dim) {
                let k = ((j * times.len() + o) * dim + i) as u64;
                out.push(if missing(j, o, i) {
                    f64::NAN
                } else {
                    ui + sigma * normal_f64(17, k, 3)
                });
            }
        }
    }
    out
}

fn lorenz_fits(n: usize, precision: &str) -> (Problem, Vec<f64>, Vec<f64>, Vec<f64>) {
    let base = problem(&format!(
        "system = 'lorenz'\nn = {n}\ntspan = [0.0, 1.0]\nsolver = 'tsit5'\nrtol = 1e-10\n\
         atol = 1e-10\nprecision = '{precision}'"
    ));
    let truth: Vec<f64> = (0..n)
        .flat_map(|j| {
            let u = |s| uniform_f64(5, j as u64, s);
            [8.0 + 4.0 * u(0), 20.0 + 15.0 * u(1), 2.0 + 1.3 * u(2)]
        })
        .collect();
    let times: Vec<f64> = (1..=100).map(|k| k as f64 * 0.01).collect();
    let values = observe(&base, &truth, &times, 0.05, |j, o, i| (j + o + i) % 7 == 0);
    (base, truth, times, values)
}

fn lorenz_problem(base: Problem, times: Vec<f64>, values: Vec<f64>) -> EstimationProblem {
    let names: Vec<String> = ["sigma", "rho", "beta"].map(String::from).to_vec();
    let precision = base.precision();
    EstimationProblem {
        targets: resolve(base.system(), &names).unwrap(),
        bounds: vec![(1.0, 30.0), (1.0, 60.0), (0.5, 6.0)],
        start: Start::Same(vec![10.0, 27.0, 2.5]),
        observations: Observations {
            times,
            values,
            weights: vec![1.0; 3],
        },
        error_control: ErrorControl::Include,
        stopping: Stopping::for_precision(precision),
        problem: base,
    }
}

/// 200 Lorenz trajectories, each with its own (σ, ρ, β), observed with noise of sd 0.05 at
/// 100 times over t ∈ (0, 1], one value in seven missing: every fit converges, and the
/// truth lies within two reported standard errors in about 95% of the 600 cases. Band:
/// the binomial standard deviation of that fraction is 0.0086, so [0.92, 0.985] is about
/// 3.5σ below and 3.5σ above 0.954 (the two-sided normal coverage of ±2σ).
#[test]
fn lorenz_parameters_are_recovered_within_their_standard_errors() {
    if !gpu().has_f64() {
        return;
    }
    let n = 200;
    let (base, truth, times, values) = lorenz_fits(n, "f64");
    let fits = estimate(
        gpu(),
        &lorenz_problem(base, times, values),
        &RunOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        fits.status.iter().all(|s| *s == FitStatus::Converged),
        "{:?}",
        fits.status
    );
    let mut inside = 0;
    for j in 0..n {
        // 300 values less one in seven missing.
        assert!(
            (250..=260).contains(&fits.observed[j]),
            "{}",
            fits.observed[j]
        );
        for k in 0..3 {
            let (got, want, se) = (fits.values[j * 3 + k], truth[j * 3 + k], fits.stderr(j, k));
            assert!(se > 0.0 && se < 0.1 * want, "#{j} {k}: se {se}");
            inside += usize::from((got - want).abs() <= 2.0 * se);
        }
    }
    let coverage = inside as f64 / (3 * n) as f64;
    assert!((0.92..=0.985).contains(&coverage), "coverage {coverage}");
    // The residual variance estimates the noise: σ² = 2·cost/(m − 3) near 0.05².
    let mean_var: f64 = (0..n)
        .map(|j| 2.0 * fits.cost[j] / (fits.observed[j] - 3) as f64)
        .sum::<f64>()
        / n as f64;
    assert!((mean_var / 0.0025 - 1.0).abs() < 0.03, "σ² {mean_var}");
    assert!(fits.iterations.iter().all(|&i| (1..=30).contains(&i)));
}

/// Noise-free observations of a harmonic oscillator: its frequency and both initial
/// values come back to the data's precision, in f64 and in f32; fits run on the fixed-step
/// RK4 grid too. Bounds: f64 1e-7 (the integration's error, Tsit5 at 1e-10); f32 2e-4
/// (rounding of 6e-8 per step amplified by the fit's conditioning).
#[test]
fn initial_values_and_a_frequency_are_recovered_from_exact_data() {
    for precision in [Precision::F64, Precision::F32] {
        if precision == Precision::F64 && !gpu().has_f64() {
            continue;
        }
        let p = if precision == Precision::F64 {
            "f64"
        } else {
            "f32"
        };
        for solver in [
            "solver = 'tsit5'\nrtol = 1e-10\natol = 1e-10",
            "solver = 'rk4'\ndt = 0.01\nsave_every = 20",
        ] {
            let base = problem(&format!(
                "system = 'harmonic'\nn = 6\ntspan = [0.0, 4.0]\nprecision = '{p}'\n{solver}"
            ));
            let n = 6;
            let truth: Vec<f64> = (0..n)
                .flat_map(|j| [0.8 + 0.1 * j as f64, 1.0 - 0.2 * j as f64, 0.3 * j as f64])
                .collect();
            let times: Vec<f64> = (1..=20).map(|k| k as f64 * 0.2).collect();
            // Observe with the true w, x0, v0: a run whose initial states are set per trajectory.
            let mut obs_problem = base.clone();
            if let Problem::Adaptive(a) = &mut obs_problem {
                a.saveat = phaseflow::ode::SaveAt::Times(times.clone());
            }
            let mut truth_run = obs_problem.clone();
            let e = match &mut truth_run {
                Problem::Adaptive(a) => &mut a.ensemble,
                Problem::Fixed(f) => &mut f.ensemble,
                _ => unreachable!(),
            };
            e.params = Parameters::Table(Table {
                data: (0..n).map(|j| truth[j * 3]).collect(),
                rows: n,
                cols: 1,
                origin: "truth".into(),
            });
            e.initial = phaseflow::ode::InitialStates::Table(Table {
                data: (0..n)
                    .flat_map(|j| [truth[j * 3 + 1], truth[j * 3 + 2]])
                    .collect(),
                rows: n,
                cols: 2,
                origin: "truth".into(),
            });
            let sol = truth_run.simulate(gpu(), &RunOptions::default()).unwrap();
            let save_times = truth_run.save_times().unwrap();
            let slot = |t: f64| {
                save_times
                    .iter()
                    .position(|&x| (x - t).abs() < 1e-9)
                    .expect("on the grid")
            };
            let mut values = Vec::new();
            for j in 0..n {
                for &t in &times {
                    values.extend(sol.state(slot(t), j));
                }
            }
            let names: Vec<String> = ["w", "x0", "v0"].map(String::from).to_vec();
            let ep = EstimationProblem {
                targets: resolve(base.system(), &names).unwrap(),
                bounds: vec![(0.1, 3.0), (-5.0, 5.0), (-5.0, 5.0)],
                start: Start::Same(vec![1.0, 0.5, 0.5]),
                observations: Observations {
                    times: times.clone(),
                    values,
                    weights: vec![1.0, 1.0],
                },
                error_control: ErrorControl::Include,
                stopping: Stopping::for_precision(precision),
                problem: base,
            };
            let fits = estimate(gpu(), &ep, &RunOptions::default()).unwrap();
            let bound = if precision == Precision::F64 {
                1e-7
            } else {
                2e-4
            };
            for j in 0..n {
                assert_eq!(fits.status[j], FitStatus::Converged, "{p} {solver} #{j}");
                for k in 0..3 {
                    let err = (fits.values[j * 3 + k] - truth[j * 3 + k]).abs();
                    assert!(err < bound, "{p} {solver} #{j} {k}: error {err:e}");
                }
            }
        }
    }
}

fn same_bits(a: &Estimate, b: &Estimate) -> bool {
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    bits(&a.values) == bits(&b.values)
        && bits(&a.covariance) == bits(&b.covariance)
        && a.iterations == b.iterations
        && a.status == b.status
}

/// Fits do not depend on how the runs are cut into chunks; a fit whose model cannot be
/// integrated at its start says so (and the others go on); a fit given one iteration
/// stops at it.
#[test]
fn fits_are_chunking_invariant_and_report_their_statuses() {
    let (base, _, times, values) = lorenz_fits(24, "f32");
    let ep = lorenz_problem(base, times, values);
    let whole = estimate(gpu(), &ep, &RunOptions::default()).unwrap();
    let cut = RunOptions {
        caps: phaseflow::schedule::PlanCaps {
            max_chunk: Some(5),
            max_slots_per_batch: Some(7),
            ..Default::default()
        },
        ..RunOptions::default()
    };
    assert!(same_bits(&whole, &estimate(gpu(), &ep, &cut).unwrap()));
    assert!(whole.status.iter().all(|s| *s == FitStatus::Converged));

    // Trajectory 3 starts where Lorenz blows up in f32 within the span (ρ = 1e30).
    let mut starts: Vec<f64> = (0..24).flat_map(|_| [10.0, 27.0, 2.5]).collect();
    starts[3 * 3 + 1] = 1e30;
    let bad = EstimationProblem {
        start: Start::PerTrajectory(starts),
        bounds: vec![(1.0, 30.0), (1.0, 1e31), (0.5, 6.0)],
        stopping: Stopping {
            max_iterations: 1,
            ..ep.stopping
        },
        ..ep
    };
    let fits = estimate(gpu(), &bad, &RunOptions::default()).unwrap();
    assert_eq!(fits.status[3], FitStatus::IntegrationFailed);
    assert!(fits.cost[3].is_nan() && fits.stderr(3, 0).is_nan());
    assert!(
        fits.status
            .iter()
            .enumerate()
            .all(|(j, s)| j == 3 || *s == FitStatus::MaxIterations)
    );
    assert!(
        fits.iterations
            .iter()
            .enumerate()
            .all(|(j, &i)| i == u32::from(j != 3))
    );
}

/// The device's fold of the saves into normal equations (`Folding::Device`, the default
/// where the device has f64) and the host's give the same fits: the same statuses and
/// iterations, and values, costs and standard errors that differ only by the rounding of
/// sums taken in another order (relative 1e-9, where the fits' own spread is 1e-3), for
/// 24 Lorenz fits and for a shared fit to 200 Lotka–Volterra runs (three whole groups of
/// 64 and a partial one) cut into chunks of 64.
#[test]
fn device_and_host_folds_give_the_same_fits() {
    use phaseflow::ode::estimate::estimate_folding;
    use phaseflow::ode::estimate::fold::Folding;
    use phaseflow::ode::estimate::shared::estimate_shared_folding;
    if !gpu().has_f64() {
        return;
    }
    let close = |what: &str, a: f64, b: f64| {
        assert!(
            (a - b).abs() <= 1e-9 * a.abs().max(b.abs()),
            "{what}: {a} vs {b}"
        );
    };
    let (base, _, times, values) = lorenz_fits(24, "f64");
    let ep = lorenz_problem(base, times, values);
    let options = RunOptions::default();
    let device = estimate_folding(gpu(), &ep, &options, Folding::Device).unwrap();
    let host = estimate_folding(gpu(), &ep, &options, Folding::Host).unwrap();
    assert_eq!(device.status, host.status);
    assert_eq!(device.iterations, host.iterations);
    assert_eq!(device.observed, host.observed);
    for (k, (a, b)) in device.values.iter().zip(&host.values).enumerate() {
        close(&format!("value {k}"), *a, *b);
    }
    for j in 0..24 {
        close(&format!("cost {j}"), device.cost[j], host.cost[j]);
        close(&format!("se {j}"), device.stderr(j, 1), host.stderr(j, 1));
    }

    let n = 200;
    let ep = lotka_volterra_fit(n);
    let cut = RunOptions {
        caps: phaseflow::schedule::PlanCaps {
            max_chunk: Some(64),
            ..Default::default()
        },
        ..RunOptions::default()
    };
    let device = estimate_shared_folding(gpu(), &ep, &cut, Folding::Device).unwrap();
    let host = estimate_shared_folding(gpu(), &ep, &cut, Folding::Host).unwrap();
    assert_eq!(device.status, FitStatus::Converged);
    assert_eq!(device.status, host.status);
    assert_eq!(device.iterations, host.iterations);
    assert_eq!(device.observed, host.observed);
    close("cost", device.cost, host.cost);
    for k in 0..4 {
        close(&format!("value {k}"), device.values[k], host.values[k]);
        close(&format!("se {k}"), device.stderr(k), host.stderr(k));
    }
    for j in 0..n {
        close(
            &format!("trajectory cost {j}"),
            device.trajectory_cost[j],
            host.trajectory_cost[j],
        );
    }
}

#[test]
fn bad_shapes_are_refused_before_any_work() {
    let (base, _, times, values) = lorenz_fits(2, "f32");
    let ep = lorenz_problem(base, times, values);
    let msg = |ep: EstimationProblem| {
        estimate(gpu(), &ep, &RunOptions::default())
            .unwrap_err()
            .to_string()
    };
    let mut short = ep.clone();
    short.observations.values.pop();
    assert!(msg(short).contains("N × n_obs × dim = 2 × 100 × 3"));
    let mut late = ep.clone();
    late.observations.times[99] = 2.0;
    assert!(msg(late).contains("outside the span [0, 1]"));
    let mut bounds = ep.clone();
    bounds.bounds[1] = (5.0, 5.0);
    assert!(msg(bounds).contains("'rho' are [5, 5]"));
}

/// Lotka–Volterra (a, b, c, d) = (1.5, 1, 1, 3) behind 1,000 runs from different initial
/// states (uniform in [0.5, 2.5]²), each observed with noise of sd 0.05 at 20 times over
/// (0, 5], one value in seven missing.
fn lotka_volterra_runs(n: usize) -> (Problem, Vec<f64>, Vec<f64>) {
    let system = phaseflow::model::System::from_equations(
        "lotka_volterra",
        &[("x", 1.0), ("y", 1.0)],
        &[("a", 1.5), ("b", 1.0), ("c", 1.0), ("d", 3.0)],
        "dx = a*x - b*x*y\ndy = c*x*y - d*y",
    )
    .unwrap();
    let run = |tol: f64| {
        let spec: RunSpec = toml::from_str(&format!(
            "n = {n}\ntspan = [0.0, 5.0]\nsolver = 'tsit5'\nprecision = 'f64'\nrtol = {tol:e}\n\
             atol = {tol:e}\nseed = 3\n[u0]\nuniform = {{ x = [0.5, 2.5], y = [0.5, 2.5] }}"
        ))
        .unwrap();
        phaseflow::spec::problem_for_system(system.clone(), &spec).unwrap()
    };
    let truth: Vec<f64> = (0..n).flat_map(|_| [1.5, 1.0, 1.0, 3.0]).collect();
    let times: Vec<f64> = (1..=20).map(|k| k as f64 * 0.25).collect();
    let values = observe(&run(1e-11), &truth, &times, 0.05, |j, o, i| {
        (j + o + i) % 7 == 0
    });
    (run(1e-9), times, values)
}

/// The shared fit of (a, b, c, d) to `n` Lotka–Volterra runs, from (1.2, 0.8, 0.8, 2.5)
/// within [0.1, 10] each.
fn lotka_volterra_fit(n: usize) -> EstimationProblem {
    let (base, times, values) = lotka_volterra_runs(n);
    let names: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
    EstimationProblem {
        targets: resolve(base.system(), &names).unwrap(),
        bounds: vec![(0.1, 10.0); 4],
        start: Start::Same(vec![1.2, 0.8, 0.8, 2.5]),
        observations: Observations {
            times,
            values,
            weights: vec![1.0; 2],
        },
        error_control: ErrorControl::Include,
        stopping: Stopping::for_precision(Precision::F64),
        problem: base,
    }
}

/// One set of rates fitted to all 1,000 runs at once: it converges, lies within 4 of its
/// standard errors of the truth in every rate (each fails with probability 6e-5 if the
/// covariance is right; a wrong sum or Jacobian is off by far more), the standard errors
/// are small (about 0.05/√(34,000 values)·scale), σ² = 2·cost/(m − 4) estimates 0.05² within
/// 3% (its relative sd is √(2/m) ≈ 0.8%), and each run's share of the cost adds up to the
/// whole. The result is the same bits for any chunking, and a per-trajectory start is
/// refused.
#[test]
fn one_rate_set_fitted_to_many_runs_recovers_the_rates() {
    use phaseflow::ode::estimate::shared::estimate_shared;
    if !gpu().has_f64() {
        return;
    }
    let n = 1000;
    let ep = lotka_volterra_fit(n);
    let fit = estimate_shared(gpu(), &ep, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fit.status, FitStatus::Converged, "{fit:?}");
    assert!(fit.iterations < 20, "{}", fit.iterations);
    let truth = [1.5, 1.0, 1.0, 3.0];
    for (k, want) in truth.iter().enumerate() {
        let (got, se) = (fit.values[k], fit.stderr(k));
        assert!(se > 0.0 && se < 0.01 * want, "{}: se {se}", fit.names[k]);
        assert!(
            (got - want).abs() <= 4.0 * se,
            "{}: {got} ± {se}",
            fit.names[k]
        );
    }
    assert!(
        (33_000..=35_000).contains(&fit.observed),
        "{}",
        fit.observed
    );
    let sigma2 = 2.0 * fit.cost / (fit.observed - 4) as f64;
    assert!((sigma2 / 0.0025 - 1.0).abs() < 0.03, "σ² {sigma2}");
    let shares: f64 = fit.trajectory_cost.iter().sum();
    assert_eq!(fit.trajectory_cost.len(), n);
    assert!(
        (shares - fit.cost).abs() <= 1e-12 * fit.cost,
        "{shares} vs {}",
        fit.cost
    );

    let cut = RunOptions {
        caps: phaseflow::schedule::PlanCaps {
            max_chunk: Some(97),
            ..Default::default()
        },
        ..RunOptions::default()
    };
    let again = estimate_shared(gpu(), &ep, &cut).unwrap();
    assert_eq!(again.values, fit.values);
    assert_eq!(again.cost.to_bits(), fit.cost.to_bits());
    assert_eq!(again.iterations, fit.iterations);

    let per = EstimationProblem {
        start: Start::PerTrajectory(vec![1.0; 4 * n]),
        ..ep
    };
    let e = estimate_shared(gpu(), &per, &RunOptions::default()).unwrap_err();
    assert!(e.to_string().contains("one starting point"), "{e}");
}
