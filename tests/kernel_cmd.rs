//! `phaseflow kernel`: what it prints is exactly the generator's output (what goes to naga
//! and the driver), that text validates, `--list` names every family, and bad input gets
//! one clear message with exit code 2.

mod common;

use common::cli::{assert_input_error, phaseflow, stderr, stdout};
use common::system;
use phaseflow::gpu::shader::validate;
use phaseflow::ode::adaptive::kernel::adaptive_wgsl;
use phaseflow::ode::fixed::kernel::fixed_step_wgsl;
use phaseflow::ode::{Control, Precision, Solver, Tolerance};

/// Runs `phaseflow kernel ARGS`, asserts success, and returns what it printed after
/// checking it with naga.
fn printed_kernel(args: &[&str], f64: bool) -> String {
    let mut all = vec!["kernel"];
    all.extend_from_slice(args);
    let o = phaseflow(&all);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    let wgsl = stdout(&o);
    validate(&format!("{args:?}"), &wgsl, f64).unwrap_or_else(|e| panic!("{e}"));
    wgsl
}

#[test]
fn fixed_step_kernels_are_the_generators_output() {
    for (name, solver, precision) in [
        ("lorenz", Solver::Rk4, Precision::F32),
        ("van_der_pol", Solver::Euler, Precision::F64),
        ("antiderivative", Solver::Heun, Precision::F32),
    ] {
        let wgsl = printed_kernel(
            &[
                name,
                "--solver",
                solver.name(),
                "--precision",
                precision.name(),
            ],
            precision == Precision::F64,
        );
        let want = fixed_step_wgsl(&system(name), &solver.step_tableau(), 64, precision).unwrap();
        assert_eq!(wgsl, want, "{name} {}", solver.name());
    }
    // Another workgroup size, and an adaptive pair in fixed steps.
    let wgsl = printed_kernel(
        &[
            "lorenz",
            "--solver",
            "tsit5",
            "--fixed-step",
            "--workgroup-size",
            "256",
        ],
        false,
    );
    let want = fixed_step_wgsl(
        &system("lorenz"),
        &Solver::Tsit5.step_tableau(),
        256,
        Precision::F32,
    )
    .unwrap();
    assert_eq!(wgsl, want);
    // The default solver is RK4, as for `simulate`.
    assert_eq!(printed_kernel(&["lorenz"], false), {
        fixed_step_wgsl(
            &system("lorenz"),
            &Solver::Rk4.step_tableau(),
            64,
            Precision::F32,
        )
        .unwrap()
    });
}

#[test]
fn adaptive_kernels_are_the_generators_output_with_and_without_dense_output() {
    for dense in [false, true] {
        let mut args = vec!["rossler", "--solver", "dp5", "--precision", "f64"];
        if dense {
            args.push("--dense");
        }
        let wgsl = printed_kernel(&args, true);
        let pair = Solver::Dp5.pair().unwrap();
        let want = adaptive_wgsl(
            &system("rossler"),
            pair,
            &Control::default(),
            64,
            Precision::F64,
            dense,
        )
        .unwrap();
        assert_eq!(wgsl, want, "dense={dense}");
    }
    // Tolerances are compiled into the kernel.
    let wgsl = printed_kernel(
        &[
            "lorenz", "--solver", "tsit5", "--rtol", "1e-9", "--atol", "1e-8",
        ],
        false,
    );
    let control = Control {
        rtol: Tolerance::All(1e-9),
        atol: Tolerance::All(1e-8),
        ..Control::default()
    };
    let want = adaptive_wgsl(
        &system("lorenz"),
        Solver::Tsit5.pair().unwrap(),
        &control,
        64,
        Precision::F32,
        false,
    )
    .unwrap();
    assert_eq!(wgsl, want);
    assert_ne!(
        wgsl,
        printed_kernel(&["lorenz", "--solver", "tsit5"], false)
    );
}

#[test]
fn a_system_file_works_like_a_built_in() {
    let dir = common::cli::temp_dir("kernel-file");
    let path = dir.join("decay.toml");
    std::fs::write(
        &path,
        "name = \"decay\"\nstates = { x = 1.0 }\nparameters = { k = 0.5 }\n\
         equations = \"\"\"\ndx = -k * x\n\"\"\"\n",
    )
    .unwrap();
    let wgsl = printed_kernel(&[path.to_str().unwrap(), "--solver", "euler"], false);
    assert!(wgsl.contains("fn "), "{wgsl}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn list_names_every_kernel_family() {
    let o = phaseflow(&["kernel", "--list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for family in [
        "ode fixed",
        "ode adaptive",
        "nn mlp forward",
        "nn mlp backward",
        "nn mlp weight-grad",
        "nn mlp fused",
        "nn train",
        "nn deeponet",
        "gpu peak",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(family)),
            "{family} in:\n{text}"
        );
    }
    // One line per family.
    assert!(text.lines().all(|l| l.contains(".wgsl")), "{text}");
}

#[test]
fn bad_input_gets_one_message_and_exit_code_2() {
    assert_input_error(&phaseflow(&["kernel", "no_such_system"]), "unknown system");
    assert_input_error(
        &phaseflow(&["kernel", "lorenz", "--solver", "rk4", "--dense"]),
        "--dense applies to the adaptive kernel",
    );
    assert_input_error(
        &phaseflow(&[
            "kernel",
            "lorenz",
            "--solver",
            "tsit5",
            "--fixed-step",
            "--rtol",
            "1e-3",
        ]),
        "--rtol applies to the adaptive kernel",
    );
    assert_input_error(
        &phaseflow(&["kernel", "lorenz", "--solver", "tsit5", "--rtol", "-1"]),
        "--rtol must be a non-negative",
    );
    assert_input_error(&phaseflow(&["kernel", "lorenz", "--solver", "rk5"]), "rk5");
    assert_input_error(&phaseflow(&["kernel"]), "SYSTEM");
    let dir = common::cli::temp_dir("kernel-bad");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "name = \"bad\"\nstates = { x = 1.0 }\nequations = \"\"\"\ndx = -q * x\n\"\"\"\n",
    )
    .unwrap();
    let o = phaseflow(&["kernel", path.to_str().unwrap()]);
    assert_input_error(&o, "q");
    assert!(stdout(&o).is_empty(), "no kernel printed for a bad system");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A reader that stops early (`phaseflow kernel lorenz | head -1`) ends the command quietly,
/// as a Unix filter does: no "internal error" about a broken pipe on stderr.
#[cfg(unix)]
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_phaseflow"))
        .args(["kernel", "lorenz", "--solver", "rk4", "--precision", "f64"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("phaseflow starts");
    // Close the read end before the kernel (tens of kilobytes) is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("phaseflow ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("internal error"), "{err}");
    assert!(!err.contains("Broken pipe"), "{err}");
}
