//! Throwaway: dumps composed ODE kernels (comments and blank lines stripped) to
//! $KERNEL_DUMP, to prove a template refactor leaves the generated code unchanged.

use phaseflow::model::{Direction, System};
use phaseflow::ode::sde::events as sde_kernel;
use phaseflow::ode::sde::kernel::Terms;
use phaseflow::ode::{Control, Precision, Solver};
use phaseflow::spec::run::load_system;

fn strip(wgsl: &str) -> String {
    let mut out = String::new();
    for line in wgsl.lines() {
        let code = match line.find("//") {
            Some(c) => &line[..c],
            None => line,
        };
        let code = code.trim_end();
        if !code.trim().is_empty() {
            out.push_str(code);
            out.push('\n');
        }
    }
    out
}

/// `mode`: "final", "dense" (adaptive and stiff) or "fixed" (a pair's fixed-step kernel).
fn compose(system: &System, solver: Solver, precision: Precision, mode: &str) -> String {
    let control = Control::default();
    let dense = mode == "dense";
    let r = if let Some(method) = solver.sde_method() {
        match Terms::new(system, method) {
            Err(e) => return format!("ERROR terms: {e}"),
            Ok(terms) => {
                if method.is_adaptive() && mode != "fixed" {
                    sde_kernel::adaptive_kernel(system, &terms, &control, 64, precision)
                } else {
                    sde_kernel::fixed_kernel(system, &terms, method.fixed(), 64, precision)
                }
            }
        }
    } else if let Some(method) = solver.stiff_method() {
        phaseflow::ode::stiff::kernel::stiff_wgsl(system, method, &control, 64, precision, dense)
    } else if let (Some(pair), false) = (solver.pair(), mode == "fixed") {
        phaseflow::ode::adaptive::kernel::adaptive_wgsl(
            system, pair, &control, 64, precision, dense,
        )
    } else {
        phaseflow::ode::fixed::kernel::fixed_step_wgsl(
            system,
            &solver.step_tableau(),
            64,
            precision,
        )
    };
    match r {
        Ok(w) => w,
        Err(e) => format!("ERROR: {e}"),
    }
}

fn modes(solver: Solver) -> &'static [&'static str] {
    if solver.is_stiff() {
        &["final", "dense"]
    } else if solver.is_adaptive() {
        &["final", "dense", "fixed"]
    } else if solver == Solver::MilsteinAdaptive {
        &["final", "fixed"]
    } else {
        &["final"]
    }
}

#[test]
#[ignore]
fn dump_kernels() {
    let dir = std::env::var("KERNEL_DUMP").expect("KERNEL_DUMP");
    std::fs::create_dir_all(&dir).unwrap();
    use Solver::*;
    let cases: &[(&str, Option<&str>, &[Solver])] = &[
        ("lorenz", None, &[Euler, Heun, Rk4, Bs3, Dp5, Tsit5, Dop853]),
        (
            "bouncing_ball",
            None,
            &[Euler, Rk4, Tsit5, Dop853, Rosenbrock23, Rodas5P, Auto],
        ),
        ("integrate_fire", None, &[Rk4, Tsit5, Rodas5P]),
        ("rober", None, &[Rosenbrock23, Rodas4, Rodas5P, Auto]),
        ("rober", Some("y1 = 0.5"), &[Rosenbrock23, Rodas5P, Auto]),
        ("van_der_pol_stiff", None, &[Rodas5P, Auto]),
        ("hires", None, &[Rosenbrock23]),
        (
            "lorenz",
            Some("z = 27"),
            &[Euler, Rk4, Tsit5, Dop853, Dp5, Rosenbrock23, Rodas5P, Auto],
        ),
        (
            "ornstein_uhlenbeck",
            None,
            &[Em, Milstein, EulerHeun, Platen, MilsteinAdaptive],
        ),
        (
            "ornstein_uhlenbeck",
            Some("x = 0.5"),
            &[Em, Milstein, MilsteinAdaptive],
        ),
        (
            "heston",
            None,
            &[Em, Milstein, EulerHeun, Platen, MilsteinAdaptive],
        ),
        ("gbm", None, &[Em, Milstein, MilsteinAdaptive]),
        ("stochastic_lorenz", None, &[Em, Milstein, MilsteinAdaptive]),
        (
            "stochastic_lorenz",
            Some("z = 27"),
            &[Em, EulerHeun, Platen, Milstein, MilsteinAdaptive],
        ),
        ("noisy_fitzhugh_nagumo", None, &[Em, MilsteinAdaptive]),
    ];
    let mut n = 0;
    for &(name, section, solvers) in cases {
        let mut system = load_system(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(s) = section {
            system = system
                .with_section(s, Direction::Both)
                .unwrap_or_else(|e| panic!("{name} {s}: {e:?}"));
        }
        for &solver in solvers {
            for precision in [Precision::F32, Precision::F64] {
                for &mode in modes(solver) {
                    let wgsl = compose(&system, solver, precision, mode);
                    let file = format!(
                        "{dir}/{name}{}_{}_{}_{}.wgsl",
                        section.map_or(String::new(), |_| "_section".into()),
                        solver.name(),
                        precision.name(),
                        mode
                    );
                    std::fs::write(&file, strip(&wgsl)).unwrap();
                    n += 1;
                }
            }
        }
    }
    // The Lyapunov kernel.
    for (name, k) in [("lorenz", 3), ("rossler", 2)] {
        let system = load_system(name).unwrap();
        let jacobian = phaseflow::ode::lyapunov::problem::check_system(&system, k).unwrap();
        for solver in [Rk4, Euler, Tsit5] {
            for precision in [Precision::F32, Precision::F64] {
                let wgsl = phaseflow::ode::lyapunov::kernel::lyapunov_wgsl(
                    &system,
                    &jacobian,
                    &solver.step_tableau(),
                    k,
                    64,
                    precision,
                )
                .unwrap_or_else(|e| format!("ERROR: {e}"));
                let file = format!(
                    "{dir}/lyapunov_{name}_{k}_{}_{}.wgsl",
                    solver.name(),
                    precision.name()
                );
                std::fs::write(&file, strip(&wgsl)).unwrap();
                n += 1;
            }
        }
    }
    eprintln!("{n} kernels dumped to {dir}");
}
