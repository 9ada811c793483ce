//! Forward sensitivities (`simulate --sensitivities`): closed forms (exponential decay, the
//! harmonic oscillator with respect to its frequency and initial state), central
//! differences on Lorenz, the GPU against the f64 twin on the augmented system, error
//! control with and without the sensitivities, fixed, adaptive and stiff, f32 and f64.

mod common;
use common::gpu;
use phaseflow::ode::adaptive::cpu::{self as adaptive_cpu, Setup};
use phaseflow::ode::sensitivity::{SensitivityRun, SensitivitySolution};
use phaseflow::ode::{self, Precision, Problem, RunOptions, Status};
use phaseflow::spec::{RunSpec, build_problem, sensitivity_run};

fn spec(text: &str) -> RunSpec {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
}

fn sens_run(text: &str) -> SensitivityRun {
    let spec = spec(text);
    let problem = build_problem(&spec).unwrap_or_else(|e| panic!("{e}"));
    sensitivity_run(&spec, &problem)
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("sensitivities asked for")
}

fn solve(run: &SensitivityRun) -> SensitivitySolution {
    run.simulate(gpu(), &RunOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn has(precision: Precision) -> bool {
    precision == Precision::F32 || gpu().has_f64()
}

fn precision_name(p: Precision) -> &'static str {
    match p {
        Precision::F32 => "f32",
        Precision::F64 => "f64",
    }
}

/// Worst |got − want| over every trajectory, save and (state, target), with `want` from
/// `exact(t, j, i, k)`.
fn worst_error(sol: &SensitivitySolution, exact: impl Fn(f64, usize, usize, usize) -> f64) -> f64 {
    let s = &sol.solution;
    let mut worst: f64 = 0.0;
    for (slot, &t) in s.times.iter().enumerate() {
        for j in 0..s.n {
            assert_eq!(s.status[j], Status::Success);
            for i in 0..s.dim {
                for k in 0..sol.names.len() {
                    let got = sol.get(slot, j, i, k);
                    worst = worst.max((got - exact(t, j, i, k)).abs());
                }
            }
        }
    }
    worst
}

/// x = x0 cos(wt) + (v0/w) sin(wt), v = dx/dt, with x0 = 1, v0 = 0.5 and w swept over
/// [0.5, 2]: the derivatives with respect to w, x0 and v0 in closed form.
///
/// Bounds (|S| ≤ 10 here). f64: RK4 at dt = 1e-3 over t ≤ 5 has a global error ~1e-12,
/// Tsit5 at 1e-10 ~1e-9; bound 1e-7. f32: rounding of 6e-8 per step over 500 (RK4, dt
/// 0.01) or a few hundred (Tsit5 at 1e-6) steps, grown by |S|: bound 2e-3. A wrong term
/// of the variational equations (a missing ∂f/∂w, a transposed J) is off by O(1).
#[test]
fn the_harmonic_oscillator_matches_its_closed_form() {
    let (x0, v0) = (1.0, 0.5);
    let exact = |t: f64, w: f64, i: usize, k: usize| -> f64 {
        let (s, c) = (w * t).sin_cos();
        match (i, k) {
            // d/dw
            (0, 0) => -x0 * t * s - v0 / (w * w) * s + v0 / w * t * c,
            (1, 0) => -x0 * s - x0 * w * t * c - v0 * t * s,
            // d/dx0
            (0, 1) => c,
            (1, 1) => -w * s,
            // d/dv0
            (0, 2) => s / w,
            (1, 2) => c,
            _ => unreachable!(),
        }
    };
    for precision in [Precision::F64, Precision::F32] {
        if !has(precision) {
            continue;
        }
        let p = precision_name(precision);
        let (dt, tol, bound) = match precision {
            Precision::F64 => (1e-3, 1e-10, 1e-7),
            Precision::F32 => (1e-2, 1e-6, 2e-3),
        };
        for solver in [
            format!("solver = 'rk4'\ndt = {dt}\nsave_every = 50"),
            format!("solver = 'tsit5'\nrtol = {tol}\natol = {tol}\nsaveat = '0:0.5:5'"),
        ] {
            let run = sens_run(&format!(
                "system = 'harmonic'\nn = 7\ntspan = [0.0, 5.0]\nprecision = '{p}'\n\
                 sensitivities = ['w', 'x0', 'v0']\n{solver}\n\
                 [set]\nx = {x0}\nv = {v0}\n[sweep]\nw = [0.5, 2.0]"
            ));
            let sol = solve(&run);
            assert_eq!(sol.names, ["w", "x0", "v0"]);
            assert!(sol.solution.n_save() > 5);
            let w = |j: usize| 0.5 + 1.5 * j as f64 / 6.0;
            let worst = worst_error(&sol, |t, j, i, k| exact(t, w(j), i, k));
            assert!(worst < bound, "{p} {solver}: worst {worst:.3e}");
        }
    }
}

/// x' = -k x: x = x0 e^{-kt}, ∂x/∂k = -t x, ∂x/∂x0 = e^{-kt}; a system file of its own.
/// Bounds as for the oscillator (|S| ≤ 1.1 here).
#[test]
fn exponential_decay_matches_its_closed_form() {
    let dir = std::env::temp_dir().join(format!("phaseflow-sens-decay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("decay.toml");
    std::fs::write(
        &file,
        "name = 'decay'\nstates = { x = 2.0 }\nparameters = { k = 0.7 }\nequations = 'dx = -k*x'\n",
    )
    .unwrap();
    for precision in [Precision::F64, Precision::F32] {
        if !has(precision) {
            continue;
        }
        let p = precision_name(precision);
        let bound = match precision {
            Precision::F64 => 1e-8,
            Precision::F32 => 1e-5,
        };
        for solver in [
            "solver = 'rk4'\ndt = 0.01\nsave_every = 25",
            "solver = 'dp5'\nrtol = 1e-9\natol = 1e-9\nsaveat = '0:0.25:3'",
        ] {
            let run = sens_run(&format!(
                "system = '{}'\nn = 5\ntspan = [0.0, 3.0]\nprecision = '{p}'\n\
                 sensitivities = ['k', 'x0']\n{solver}\n[sweep]\nk = [0.1, 1.5]",
                file.display()
            ));
            let sol = solve(&run);
            let k = |j: usize| 0.1 + 1.4 * j as f64 / 4.0;
            let worst = worst_error(&sol, |t, j, _, target| {
                let e = (-k(j) * t).exp();
                if target == 0 { -t * 2.0 * e } else { e }
            });
            assert!(worst < bound, "{p} {solver}: worst {worst:.3e}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The final state of `problem` with one parameter or initial value moved by `h` (rho is
/// swept: both ends of its axis move).
fn perturbed_final(problem: &Problem, target: &str, h: f64) -> Vec<Vec<f64>> {
    let mut p = problem.clone();
    let e = match &mut p {
        Problem::Fixed(f) => &mut f.ensemble,
        Problem::Adaptive(a) => &mut a.ensemble,
        _ => unreachable!(),
    };
    let system = problem.system();
    match target {
        "rho" => match &mut e.params {
            ode::Parameters::Sweep(axes) => {
                axes[0].lo += h;
                axes[0].hi += h;
            }
            _ => unreachable!(),
        },
        name if system.param_index(name).is_some() => {
            e.base_params[system.param_index(name).unwrap()] += h
        }
        name => {
            let i = system.state_index(name.trim_end_matches('0')).unwrap();
            e.base_state[i] += h;
        }
    }
    let sol = p.simulate(gpu(), &RunOptions::default()).unwrap();
    (0..sol.n).map(|j| sol.final_state(j)).collect()
}

/// Lorenz over t ∈ [0, 1] (ρ swept over [20, 30]), all three parameters and all three
/// initial values, in f64, against central differences of the run itself.
///
/// RK4 (dt 1e-4): the augmented step is the exact derivative of the RK4 map, so the only
/// differences are the difference quotient's: O(h²)·|u'''| ≈ 1e-10 and rounding
/// 1e-16·|u|/h ≈ 2e-9 with h = 1e-6; bound 1e-6 relative to |S|. Tsit5 at 1e-11 (error
/// control includes S): the quotient differentiates step-size choices too, each off by the
/// local error (~1e-11) over h = 1e-5: bound 1e-4 relative.
#[test]
fn lorenz_sensitivities_match_central_differences() {
    if !gpu().has_f64() {
        return;
    }
    let targets = ["sigma", "rho", "beta", "x0", "y0", "z0"];
    for (solver, h, rel) in [
        ("solver = 'rk4'\ndt = 1e-4\nsave_every = 10000", 1e-6, 1e-6),
        (
            "solver = 'tsit5'\nrtol = 1e-11\natol = 1e-11\nsaveat = [1.0]",
            1e-5,
            1e-4,
        ),
    ] {
        let text = format!(
            "system = 'lorenz'\nn = 6\ntspan = [0.0, 1.0]\nprecision = 'f64'\n\
             sensitivities = {targets:?}\n{solver}\n[sweep]\nrho = [20.0, 30.0]"
        );
        let run = sens_run(&text);
        let base = build_problem(&spec(&text)).unwrap();
        let sol = solve(&run);
        let last = sol.solution.n_save() - 1;
        for (k, target) in targets.iter().enumerate() {
            let up = perturbed_final(&base, target, h);
            let down = perturbed_final(&base, target, -h);
            for j in 0..sol.solution.n {
                let scale = (0..3)
                    .map(|i| sol.get(last, j, i, k).abs())
                    .fold(1.0, f64::max);
                for i in 0..3 {
                    let fd = (up[j][i] - down[j][i]) / (2.0 * h);
                    let got = sol.get(last, j, i, k);
                    assert!(
                        (got - fd).abs() <= rel * scale,
                        "{solver} d{i}/d{target} trajectory {j}: {got} vs {fd}"
                    );
                }
            }
        }
    }
}

/// The augmented kernel against the adaptive family's f64 twin on the augmented system,
/// saves of states and sensitivities alike. Bounds as in `tests/adaptive.rs`: f64 1e-11,
/// f32 5e-4 relative to the largest value.
#[test]
fn the_augmented_kernel_matches_the_twin() {
    for precision in [Precision::F64, Precision::F32] {
        if !has(precision) {
            continue;
        }
        let p = precision_name(precision);
        let (tol, bound) = match precision {
            Precision::F64 => (1e-9, 1e-11),
            Precision::F32 => (1e-6, 5e-4),
        };
        for error in ["include", "exclude"] {
            let run = sens_run(&format!(
                "system = 'van_der_pol'\nn = 4\ntspan = [0.0, 4.0]\nprecision = '{p}'\n\
                 solver = 'tsit5'\nrtol = {tol}\natol = {tol}\nsaveat = '0:0.5:4'\n\
                 sensitivities = ['mu', 'x0']\nsensitivity_error = '{error}'\n\
                 [sweep]\nmu = [0.5, 2.0]"
            ));
            let Problem::Adaptive(a) = &run.problem else {
                panic!("adaptive")
            };
            let gpu_sol = ode::simulate_adaptive(gpu(), a, &RunOptions::default()).unwrap();
            let round =
                |v: Vec<f64>| -> Vec<f64> { v.into_iter().map(|x| precision.round(x)).collect() };
            let times = round(a.saveat.times(a.t1));
            let setup = Setup {
                system: &a.system,
                pair: a.solver.pair().unwrap(),
                control: &a.control,
                t0: a.t0,
                t1: a.t1,
                save_times: &times,
            };
            for j in 0..a.ensemble.n {
                let twin = adaptive_cpu::integrate(
                    &setup,
                    &round(a.ensemble.states(j..j + 1)),
                    &round(a.ensemble.param_slots(j..j + 1)),
                );
                let got: Vec<f64> = (0..times.len()).flat_map(|s| gpu_sol.state(s, j)).collect();
                common::assert_close(&format!("{p} {error} #{j}"), &got, &twin.saves, bound);
                if precision == Precision::F64 {
                    let steps = gpu_sol.steps.as_ref().unwrap()[j];
                    assert_eq!(steps.accepted, twin.counts.accepted, "{error} #{j}");
                }
            }
        }
    }
}

/// With the sensitivities left out of the error control the steps are the plain run's: the
/// twin's states are bit-identical and its step counts equal, and the GPU's step counts
/// equal the plain GPU run's. Included, they are held to the tolerance too: more steps.
#[test]
fn excluding_the_sensitivities_keeps_the_plain_runs_steps() {
    for precision in [Precision::F64, Precision::F32] {
        if !has(precision) {
            continue;
        }
        let p = precision_name(precision);
        let base = format!(
            "system = 'lorenz'\nn = 8\ntspan = [0.0, 3.0]\nprecision = '{p}'\nsolver = 'dp5'\n\
             rtol = 1e-6\natol = 1e-6\nsaveat = '0:0.5:3'\n[sweep]\nrho = [10.0, 40.0]"
        );
        let plain = build_problem(&spec(&base)).unwrap();
        let plain_sol = plain.simulate(gpu(), &RunOptions::default()).unwrap();
        let with = |error: &str| {
            sens_run(&format!(
                "sensitivities = ['rho', 'z0']\nsensitivity_error = '{error}'\n{base}"
            ))
        };
        let excluded = with("exclude");
        let ex = solve(&excluded);
        let included = solve(&with("include"));
        let steps = |s: &ode::Solution| -> Vec<u32> {
            s.steps
                .as_ref()
                .unwrap()
                .iter()
                .map(|c| c.accepted)
                .collect()
        };
        assert_eq!(steps(&ex.solution), steps(&plain_sol), "{p}");
        let (more, total): (u32, u32) = (
            steps(&included.solution).iter().sum(),
            steps(&plain_sol).iter().sum(),
        );
        assert!(
            more > total,
            "{p}: included {more} vs plain {total} accepted steps"
        );
        // The twins: the same steps and the same bits.
        let (Problem::Adaptive(a_plain), Problem::Adaptive(a_ex)) = (&plain, &excluded.problem)
        else {
            panic!("adaptive")
        };
        let times = a_plain.saveat.times(a_plain.t1);
        fn setup<'a>(a: &'a ode::AdaptiveProblem, times: &'a [f64]) -> Setup<'a> {
            Setup {
                system: &a.system,
                pair: a.solver.pair().unwrap(),
                control: &a.control,
                t0: a.t0,
                t1: a.t1,
                save_times: times,
            }
        }
        for j in [0, 5] {
            let u = a_plain.ensemble.states(j..j + 1);
            let pr = a_plain.ensemble.param_slots(j..j + 1);
            let t_plain = adaptive_cpu::integrate(&setup(a_plain, &times), &u, &pr);
            let t_ex =
                adaptive_cpu::integrate(&setup(a_ex, &times), &a_ex.ensemble.states(j..j + 1), &pr);
            assert_eq!(t_plain.counts.accepted, t_ex.counts.accepted);
            let aug = a_ex.system.dim();
            for (s, row) in t_plain.saves.chunks(3).enumerate() {
                assert_eq!(row, &t_ex.saves[s * aug..s * aug + 3], "slot {s}");
            }
        }
    }
}

/// A stiff run (Robertson, rodas5p, f64) with respect to a rate, against central
/// differences: bound 1e-4 relative (the quotient differentiates step choices, each off by
/// the local error ~1e-10, over h = 1e-6 relative to k1).
#[test]
fn stiff_sensitivities_match_central_differences() {
    if !gpu().has_f64() {
        return;
    }
    let text = "system = 'rober'\nn = 1\ntspan = [0.0, 10.0]\nprecision = 'f64'\n\
                solver = 'rodas5p'\nrtol = 1e-10\natol = 1e-14\nsaveat = [10.0]\n\
                sensitivities = ['k1']";
    let run = sens_run(text);
    let sol = solve(&run);
    let base = build_problem(&spec(text)).unwrap();
    let k1 = base.ensemble().base_params[base.system().param_index("k1").unwrap()];
    let h = 1e-6 * k1;
    let moved = |d: f64| {
        let mut p = base.clone();
        let Problem::Stiff(s) = &mut p else {
            panic!("stiff")
        };
        s.ensemble.base_params[0] += d;
        p.simulate(gpu(), &RunOptions::default())
            .unwrap()
            .final_state(0)
    };
    let (up, down) = (moved(h), moved(-h));
    assert_eq!(base.system().param_index("k1"), Some(0));
    for i in 0..3 {
        let fd = (up[i] - down[i]) / (2.0 * h);
        let got = sol.get(0, 0, i, 0);
        assert!(
            (got - fd).abs() <= 1e-4 * fd.abs().max(1e-12),
            "d{i}/dk1: {got} vs {fd}"
        );
    }
}

/// Saves are cut into chunks and batches as the device allows; the split of states and
/// sensitivities does not depend on it.
#[test]
fn sensitivities_do_not_depend_on_chunking() {
    let run = sens_run(
        "system = 'lorenz'\nn = 37\ntspan = [0.0, 2.0]\nsolver = 'rk4'\ndt = 0.001\n\
         save_every = 100\nsensitivities = ['rho', 'x0']\n[sweep]\nrho = [0.0, 50.0]",
    );
    let whole = solve(&run);
    let options = RunOptions {
        caps: phaseflow::schedule::PlanCaps {
            max_chunk: Some(8),
            max_slots_per_batch: Some(3),
            ..Default::default()
        },
        ..RunOptions::default()
    };
    let cut = run.simulate(gpu(), &options).unwrap();
    assert!(whole.sensitivities.same_bits(&cut.sensitivities));
    assert!(whole.solution.states.same_bits(&cut.solution.states));
}
