//! Lyapunov spectra on the GPU: every generated kernel passes naga; the kernel against its
//! CPU f64 twin on random ensembles in both precisions; the literature's spectra of Lorenz
//! and Rössler, the trace identity, a linear system's exponents (the real parts of its
//! eigenvalues), the Hamiltonian symmetry of Hénon–Heiles; statuses; results that do not
//! depend on chunks or windows; and the refusals.
//!
//! Sizes are small because lavapipe is a CPU: N of 8 to 64, times of a few hundred. The
//! literature values are long-time limits, so the tests average exponents over a few
//! trajectories started from different points of the attractor (each with its own
//! finite-time fluctuation), which is what makes 2% reachable in a few seconds.

mod common;
use common::cli::{assert_input_error, phaseflow, stdout, temp_dir};
use common::gpu;
use phaseflow::gpu::shader::validate;
use phaseflow::model::{System, builtin};
use phaseflow::ode::fixed::tableau::{EULER, HEUN, RK4};
use phaseflow::ode::lyapunov::cpu::{Spectrum, spectrum};
use phaseflow::ode::lyapunov::kernel::lyapunov_wgsl;
use phaseflow::ode::lyapunov::{LyapunovError, LyapunovProblem, LyapunovResult, lyapunov_spectra};
use phaseflow::ode::{
    Axis, InitialStates, Parameters, Precision, RunOptions, SimError, Solver, Status,
};
use phaseflow::schedule::PlanCaps;

fn system(name: &str) -> System {
    builtin(name).expect("built-in").expect("parses")
}

fn run(p: &LyapunovProblem) -> LyapunovResult {
    lyapunov_spectra(gpu(), p, &RunOptions::default()).unwrap()
}

/// The twin's spectrum of trajectory j.
fn twin(p: &LyapunovProblem, j: usize) -> Spectrum {
    let (steps, jac) = p.check().unwrap();
    let e = &p.ensemble;
    spectrum(
        &p.system,
        &jac,
        &p.tableau,
        &steps,
        p.k,
        &e.states(j..j + 1),
        &e.param_slots(j..j + 1),
    )
}

/// Lorenz at its classic parameters, n trajectories from a box around the attractor.
fn lorenz(n: usize, transient: f64, time: f64, precision: Precision) -> LyapunovProblem {
    let mut p = LyapunovProblem::new(system("lorenz"), n, 0.005, transient, time);
    p.renorm = 0.1;
    p.precision = precision;
    p.ensemble.initial = InitialStates::Uniform {
        seed: 7,
        ranges: vec![(0, -10.0, 10.0), (1, -10.0, 10.0), (2, 10.0, 40.0)],
    };
    p
}

fn mean_column(r: &LyapunovResult, m: usize) -> f64 {
    (0..r.n).map(|j| r.exponents(j)[m]).sum::<f64>() / r.n as f64
}

#[test]
fn kernels_pass_naga() {
    let lorenz = system("lorenz");
    let jac = lorenz.state_jacobian().unwrap();
    for precision in [Precision::F32, Precision::F64] {
        for (tab, k) in [(&RK4, 3), (&RK4, 1), (&EULER, 2), (&HEUN, 3)] {
            let src = lyapunov_wgsl(&lorenz, &jac, tab, k, 64, precision).unwrap();
            validate("lyapunov", &src, precision == Precision::F64)
                .unwrap_or_else(|e| panic!("{} k={k} {precision:?}: {e}", tab.name));
        }
        let tsit5 = Solver::Tsit5.step_tableau();
        let hh = system("henon_heiles");
        let src =
            lyapunov_wgsl(&hh, &hh.state_jacobian().unwrap(), &tsit5, 4, 64, precision).unwrap();
        validate("lyapunov", &src, precision == Precision::F64).unwrap();
    }
    // A row of J with no structural non-zero (dz = 1) is a literal zero, never computed.
    let s =
        System::from_equations("ramp", &[("x", 1.0), ("z", 0.0)], &[], "dx = -x\ndz = 1").unwrap();
    let src = lyapunov_wgsl(
        &s,
        &s.state_jacobian().unwrap(),
        &RK4,
        2,
        64,
        Precision::F32,
    )
    .unwrap();
    assert!(
        src.contains("return State(j.j0_0 * v.x0, real(0.0));"),
        "{src}"
    );
    validate("lyapunov", &src, false).unwrap();
}

/// GPU against the f64 twin on a random ensemble of Lorenz over ρ ∈ [0, 60] (fixed points,
/// periodic windows and chaos alike), the full spectrum over a short span.
fn against_twin(precision: Precision, tolerance: f64) {
    let mut p = lorenz(48, 0.5, 3.0, precision);
    p.ensemble.params = Parameters::Sweep(vec![Axis::linear(1, 0.0, 60.0)]);
    let got = run(&p);
    let mut worst = 0.0f64;
    for j in 0..p.ensemble.n {
        let want = twin(&p, j);
        assert_eq!(got.status[j], want.status, "trajectory {j}");
        assert_eq!(want.status, Status::Success);
        for m in 0..p.k {
            let d = (got.exponents(j)[m] - want.exponents[m]).abs();
            let de = (got.errors(j)[m] - want.errors[m]).abs();
            worst = worst.max(d).max(de);
            assert!(
                d <= tolerance && de <= tolerance,
                "{precision:?} trajectory {j} exponent {m}: GPU {} ± {} vs twin {} ± {}",
                got.exponents(j)[m],
                got.errors(j)[m],
                want.exponents[m],
                want.errors[m]
            );
        }
    }
    eprintln!("{precision:?}: worst difference {worst:.2e}");
}

/// f64: the same operations in the same order; differences come from fused or reordered
/// roundings (~1e-16 a step), grown by the flow over t = 3.5 (e^{1.6·3.5} ≈ 300 along the
/// unstable direction at ρ = 60) and averaged over T = 3 in the exponent: far below 1e-9.
#[test]
fn gpu_f64_matches_the_twin() {
    against_twin(Precision::F64, 1e-9);
}

/// f32: rounding of 6e-8 a step, grown by up to e^{1.6·3.5} ≈ 300 in the state, makes the
/// trajectories drift apart by ~2e-5 relative; an exponent averages log-growths over T = 3,
/// so the difference in exponents stays ~1e-4 (measured: below 5e-4); 2e-3 leaves room,
/// while a wrong stage, sign or Gram–Schmidt step moves an exponent by O(0.1–10).
#[test]
fn gpu_f32_matches_the_twin() {
    against_twin(Precision::F32, 2e-3);
}

/// Lorenz (σ = 10, ρ = 28, β = 8/3): λ = (0.9056, 0, −14.5723) (Sprott, "Chaos and
/// Time-Series Analysis", 2003, table A.1). Averaged over 16 trajectories, T = 300 each:
/// the finite-time spread of λ1 over T = 300 is about 0.01 (its block errors say so), so
/// the mean is within ~0.3% and 2% is a safe margin; λ2's bias is O(1/T) = 0.003.
/// The sum of the exponents is the mean of tr J = −(σ + 1 + β) exactly for any T (ln of
/// the volume growth, which RK4 reproduces to O(dt^4)); the 1e-3 is that bound.
fn lorenz_literature(precision: Precision, trace_tolerance: f64) {
    let p = lorenz(16, 20.0, 300.0, precision);
    let r = run(&p);
    assert!(r.status.iter().all(|s| *s == Status::Success));
    let (l1, l2, l3) = (mean_column(&r, 0), mean_column(&r, 1), mean_column(&r, 2));
    eprintln!("{precision:?}: {l1} {l2} {l3}; errors {:?}", r.errors(0));
    assert!((l1 / 0.9056 - 1.0).abs() < 0.02, "λ1 = {l1}");
    assert!((l3 / -14.5723 - 1.0).abs() < 0.02, "λ3 = {l3}");
    assert!(l2.abs() < 0.01, "λ2 = {l2}");
    let trace = -(10.0 + 1.0 + 8.0 / 3.0);
    for j in 0..r.n {
        let sum: f64 = r.exponents(j).iter().sum();
        assert!(
            (sum - trace).abs() < trace_tolerance,
            "trajectory {j}: sum {sum}"
        );
        // Each error is the standard error of a block mean: positive, and well below the
        // exponent's size at T = 300.
        assert!(
            r.errors(j).iter().all(|e| *e > 0.0 && *e < 0.2),
            "{:?}",
            r.errors(j)
        );
    }
}

#[test]
fn lorenz_spectrum_f64() {
    lorenz_literature(Precision::F64, 1e-3);
}

/// f32: the same limits, and the trace identity to 1e-3 relative (1.4e-2 absolute): each
/// of the 3000 renormalisations adds ln R_mm rounded to ~1e-7 of |ln R_mm| ≲ 1.5 to sums
/// of size up to 4400, so the sums carry ~1e-4 of rounding, ~1e-6 in the exponent; the
/// loss that matters is Gram–Schmidt's in f32 (ε·e^{15.5·0.1} per step), ~1e-4 relative.
#[test]
fn lorenz_spectrum_f32() {
    lorenz_literature(Precision::F32, 1.4e-2);
}

/// Rössler (a = b = 0.2, c = 5.7): λ1 = 0.0714 (Sprott 2003, table A.1). λ1 is small and
/// converges slowly (the orbit's period is about 6), so 16 trajectories run T = 2000 each;
/// their spread is then ~0.004, a third of the 5% asked for. k = 1: the largest only.
#[test]
fn rossler_largest_exponent() {
    let mut p = LyapunovProblem::new(system("rossler"), 16, 0.01, 50.0, 2000.0);
    p.k = 1;
    p.renorm = 1.0;
    p.precision = Precision::F64;
    p.ensemble.initial = InitialStates::Uniform {
        seed: 3,
        ranges: vec![(0, -5.0, 5.0), (1, -5.0, 5.0), (2, 0.0, 1.0)],
    };
    let r = run(&p);
    assert!(r.status.iter().all(|s| *s == Status::Success));
    let l1 = mean_column(&r, 0);
    eprintln!("rössler λ1 = {l1}, error {:?}", r.errors(0));
    assert!((l1 / 0.0714 - 1.0).abs() < 0.05, "λ1 = {l1}");
}

/// A linear system's exponents are the real parts of its eigenvalues, whatever the state:
/// A = [[−0.2, 1, 0], [−1, −0.2, 0], [0, 0.5, −1.5]] has −0.2 ± i and −1.5, so the spectrum
/// is (−0.2, −0.2, −1.5). The rotation makes Gram–Schmidt's R_mm oscillate, a bias of
/// O(1/T) that T = 400 brings under 2e-3; RK4's own error at dt = 0.01 is ~1e-10.
#[test]
fn linear_system_exponents_are_eigenvalue_real_parts() {
    let s = System::from_equations(
        "linear",
        &[("x", 1.0), ("y", 0.0), ("z", 1.0)],
        &[("a", -0.2), ("w", 1.0), ("c", 0.5), ("d", -1.5)],
        "dx = a*x + w*y\ndy = -w*x + a*y\ndz = c*y + d*z",
    )
    .unwrap();
    for precision in [Precision::F32, Precision::F64] {
        let mut p = LyapunovProblem::new(s.clone(), 4, 0.01, 0.0, 400.0);
        p.renorm = 0.5;
        p.precision = precision;
        p.ensemble.params = Parameters::Sweep(vec![Axis::linear(0, -0.2, 0.1)]);
        let r = run(&p);
        for j in 0..r.n {
            let a = -0.2 + 0.3 * j as f64 / 3.0;
            let want = [a.max(-1.5), a.max(-1.5).min(a), a.min(-1.5)];
            let got = r.exponents(j);
            for m in 0..3 {
                assert!(
                    (got[m] - want[m]).abs() < 2e-3,
                    "{precision:?} a = {a}: {got:?} vs {want:?}"
                );
            }
        }
    }
}

/// Hénon–Heiles is Hamiltonian: its spectrum is symmetric about zero (λ1 = −λ4, λ2 = −λ3 =
/// 0 along the flow and the energy). The sum is exactly 0 (tr J = 0); the pairs cancel up
/// to finite-time biases that shrink like 1/T (measured: 4e-3 at T = 500, 1.3e-3 at T =
/// 2000), so T = 4000 and 2e-3.
#[test]
fn henon_heiles_spectrum_is_symmetric() {
    let mut p = LyapunovProblem::new(system("henon_heiles"), 4, 0.01, 10.0, 4000.0);
    p.renorm = 0.5;
    p.precision = Precision::F64;
    // Energy 1/6 (x = 0, y = −0.2, p_y = 0, p_x from H = 1/6): the chaotic sea; the
    // default state (energy 0.106) lies on a regular torus, where every exponent is ~0.
    p.ensemble.base_state = vec![
        0.0,
        -0.2,
        (2.0f64 * (1.0 / 6.0 - 0.02 - 0.008 / 3.0)).sqrt(),
        0.0,
    ];
    p.ensemble.initial = InitialStates::Perturb {
        state: 0,
        step: 1e-3,
    };
    let r = run(&p);
    for j in 0..r.n {
        let l = r.exponents(j);
        eprintln!("hénon–heiles {j}: {l:?}");
        assert!(l[0] > 0.02, "{l:?}: chaotic orbit expected");
        assert!((l[0] + l[3]).abs() < 2e-3, "{l:?}");
        assert!((l[1] + l[2]).abs() < 2e-3, "{l:?}");
        assert!(l.iter().sum::<f64>().abs() < 1e-6, "{l:?}");
    }
}

/// A trajectory that blows up ends "non-finite" with NaN exponents, its neighbours
/// untouched: dx = a·x² from x = 1 reaches infinity at t = 1/a, inside the run for a ≥ 0.5.
#[test]
fn blow_up_is_non_finite_and_neighbours_succeed() {
    let s = System::from_equations(
        "blowup",
        &[("x", 1.0), ("y", 1.0)],
        &[("a", 0.0)],
        "dx = a*x^2\ndy = -y",
    )
    .unwrap();
    for precision in [Precision::F32, Precision::F64] {
        let mut p = LyapunovProblem::new(s.clone(), 5, 0.01, 0.5, 3.0);
        p.renorm = 0.1;
        p.precision = precision;
        p.ensemble.params = Parameters::Sweep(vec![Axis::linear(0, 0.0, 1.0)]);
        let r = run(&p);
        // a = 0, 0.25: finite up to t = 3.5 (x = 1/(1 − a t)); a = 0.5, 0.75, 1: blow up.
        for j in 0..5 {
            let want = twin(&p, j);
            let expect = if j < 2 {
                Status::Success
            } else {
                Status::NonFinite
            };
            assert_eq!(
                (r.status[j], want.status),
                (expect, expect),
                "{precision:?} {j}"
            );
            if j < 2 {
                assert!(r.exponents(j).iter().all(|v| v.is_finite()));
            } else {
                assert!(r.exponents(j).iter().chain(r.errors(j)).all(|v| v.is_nan()));
            }
        }
        // a = 0: J = diag(0, −1); over T = 3 the exponents carry the O(1/T) imprint of
        // the initial vectors (ln of their cosines with the axes, /T), which the twin has too.
        let want = twin(&p, 0);
        for m in 0..2 {
            assert!(
                (r.exponents(0)[m] - want.exponents[m]).abs() < 1e-4,
                "{:?}",
                r.exponents(0)
            );
        }
    }
}

/// Chunks, windows and the ring change how the run is cut, never its results (f64, to the
/// bit): the tangent vectors and sums survive window boundaries in their buffer.
#[test]
fn results_do_not_depend_on_chunks_or_windows() {
    let mut p = lorenz(40, 0.5, 2.0, Precision::F64);
    p.ensemble.params = Parameters::Sweep(vec![Axis::linear(1, 10.0, 40.0)]);
    let whole = run(&p);
    let options = RunOptions {
        caps: PlanCaps {
            max_chunk: Some(16),
            ..PlanCaps::default()
        },
        // Windows of 7 steps: boundaries inside the transient, on its end and between
        // renormalisations.
        steps_per_dispatch: 7 * 4 * 16,
        min_window_steps: 1,
        ring: 1,
        ..RunOptions::default()
    };
    let cut = lyapunov_spectra(gpu(), &p, &options).unwrap();
    assert!(cut.stats.chunks >= 3 && cut.stats.dispatches > 3 * 400 / 7);
    assert_eq!(whole.status, cut.status);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&whole.exponents), bits(&cut.exponents));
    assert_eq!(bits(&whole.errors), bits(&cut.errors));
    assert_eq!(bits(&whole.final_states), bits(&cut.final_states));
}

#[test]
fn refusals_say_why() {
    let err = |p: &LyapunovProblem| match lyapunov_spectra(gpu(), p, &RunOptions::default()) {
        Err(SimError::Lyapunov(e)) => e,
        other => panic!("expected a Lyapunov error, got {:?}", other.map(|r| r.n)),
    };
    let mut p = lorenz(2, 1.0, 2.0, Precision::F32);
    p.k = 4;
    assert!(matches!(err(&p), LyapunovError::BadK { k: 4, dim: 3, .. }));
    p.k = 3;
    p.renorm = 0.0123;
    assert!(matches!(
        err(&p),
        LyapunovError::NotWholeSteps { what: "renorm", .. }
    ));
    p.renorm = 2.0;
    assert!(matches!(err(&p), LyapunovError::TooFewRenorms { .. }));
    p.renorm = 0.3; // whole steps, but 2.0 is not a whole number of 0.3s
    let e = err(&p);
    assert!(
        matches!(e, LyapunovError::RenormDoesNotDivide { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("renorm intervals of 0.3"), "{e}");
    p.renorm = 0.1;
    p.transient = -1.0;
    assert!(matches!(
        err(&p),
        LyapunovError::BadTime {
            what: "transient",
            ..
        }
    ));
    p.transient = 1.0;
    p.blocks = 1;
    assert!(matches!(err(&p), LyapunovError::BadBlocks(1)));

    let noisy = system("stochastic_lorenz");
    let p = LyapunovProblem::new(noisy, 2, 0.01, 1.0, 2.0);
    let e = err(&p);
    assert!(matches!(e, LyapunovError::Stochastic { .. }));
    assert!(e.to_string().contains("noise block"), "{e}");

    // Lorenz-96 with 40 sites: the full spectrum needs 40·41 reals.
    let states: Vec<(String, f64)> = (0..40).map(|i| (format!("x{i}"), 1.0)).collect();
    let eqs: String = (0..40)
        .map(|i| {
            format!(
                "dx{i} = (x{} - x{})*x{} - x{i} + 8\n",
                (i + 1) % 40,
                (i + 38) % 40,
                (i + 39) % 40
            )
        })
        .collect();
    let st: Vec<(&str, f64)> = states.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let big = System::from_equations("l96", &st, &[], &eqs).unwrap();
    let p = LyapunovProblem::new(big, 2, 0.01, 1.0, 2.0);
    let e = err(&p);
    assert!(
        matches!(e, LyapunovError::TooLarge { need: 1640, .. }),
        "{e}"
    );
}

/// `phaseflow lyapunov` writes the files it names, in their shapes, and its exponents are
/// the library's.
#[test]
fn cli_writes_spectra_and_picture() {
    let dir = temp_dir("lyap-cli");
    let out = dir.join("run");
    let o = phaseflow(&[
        "lyapunov",
        "lorenz",
        "-n",
        "6",
        "--sweep",
        "rho=20:40",
        "--dt",
        "0.005",
        "--transient",
        "2",
        "--time",
        "4",
        "--renorm",
        "0.1",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::cli::stderr(&o));
    assert!(
        stdout(&o).contains("status: {\"success\":6}"),
        "{}",
        stdout(&o)
    );
    let (shape, lambda) = phaseflow::io::read_npy(&out.join("lyapunov.npy")).unwrap();
    assert_eq!(shape, [6, 3]);
    let (shape, _) = phaseflow::io::read_npy(&out.join("lyapunov_error.npy")).unwrap();
    assert_eq!(shape, [6, 3]);
    let (shape, params) = phaseflow::io::read_npy(&out.join("params.npy")).unwrap();
    assert_eq!(shape, [6, 3]);
    assert_eq!((params[1], params[5 * 3 + 1]), (20.0, 40.0));
    let png = std::fs::read(out.join("lyapunov.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // The library's run of the same problem gives the same numbers (f32 on both sides).
    let mut p = LyapunovProblem::new(system("lorenz"), 6, 0.005, 2.0, 4.0);
    p.renorm = 0.1;
    p.ensemble.params = Parameters::Sweep(vec![Axis::linear(1, 20.0, 40.0)]);
    let r = run(&p);
    assert_eq!(lambda, r.exponents);
    // A second run into the same directory needs --overwrite.
    let again = phaseflow(&[
        "lyapunov",
        "lorenz",
        "-n",
        "2",
        "--time",
        "1",
        "--renorm",
        "0.1",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_input_error(&again, "--overwrite");
    // Two swept parameters on a grid: a colour map.
    let grid = dir.join("grid");
    let o = phaseflow(&[
        "lyapunov",
        "lorenz",
        "--sweep",
        "rho=10:40:4",
        "--sweep",
        "sigma=5:15:3",
        "-k",
        "1",
        "--transient",
        "1",
        "--time",
        "2",
        "--renorm",
        "0.1",
        "-o",
        grid.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::cli::stderr(&o));
    let (shape, _) = phaseflow::io::read_npy(&grid.join("lyapunov.npy")).unwrap();
    assert_eq!(shape, [12, 1]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_refuses_bad_input_with_one_message() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["lyapunov", "lorenz", "-n", "2", "-k", "4"],
            "between 1 and the 3 states",
        ),
        (&["lyapunov", "stochastic_lorenz", "-n", "2"], "noise block"),
        (
            &["lyapunov", "lorenz", "-n", "2", "--renorm", "0.0123"],
            "whole number of steps",
        ),
        (
            &["lyapunov", "lorenz", "-n", "2", "--sweep", "rhoo=0:1"],
            "rhoo",
        ),
        (
            &["lyapunov", "lorenz", "-n", "2", "--solver", "rodas5p"],
            "explicit Runge-Kutta",
        ),
        (
            &[
                "lyapunov",
                "lorenz",
                "-n",
                "2",
                "--tspan",
                "0:5",
                "--transient",
                "10",
            ],
            "--tspan",
        ),
        (&["lyapunov", "nosuchsystem", "-n", "2"], "unknown system"),
    ];
    for (args, expected) in cases {
        assert_input_error(&phaseflow(args), expected);
    }
}

/// dx = −sin(x) settles on x = 0, where its exponent is f'(0) = −cos 0 = −1 exactly (after
/// a transient of 20 the state is below 1e-8, so the finite-time mean is −1 to 1e-6). In f64
/// sin and cos come from phaseflow's own math library, whose loops once overran lavapipe's
/// loop budget within a long window: the trajectory came back unfinished with exponent 0,
/// or wrong and marked a success. Both precisions, over many windows.
#[test]
fn functions_of_the_state_in_f64_finish_every_window() {
    let s = System::from_equations("k_sin", &[("x", 0.5)], &[], "dx = -sin(x)").unwrap();
    for precision in [Precision::F32, Precision::F64] {
        let mut p = LyapunovProblem::new(s.clone(), 1, 0.01, 20.0, 300.0);
        p.precision = precision;
        let r = run(&p);
        assert_eq!(
            r.status[0],
            phaseflow::ode::Status::Success,
            "{precision:?}"
        );
        let got = r.exponents(0)[0];
        assert!((got + 1.0).abs() < 1e-4, "{precision:?}: {got}");
    }
}
