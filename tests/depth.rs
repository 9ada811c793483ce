//! Bounded depth: no system text can overflow a stack. Deeper nesting than the documented
//! limit (`parser::MAX_DEPTH` levels) and larger expressions than `parser::MAX_NODES` are
//! refused with file:line:col and a caret, through the library and through the CLI (exit 2,
//! never a signal); anything just under the limits parses, evaluates, emits a kernel that
//! naga validates, and runs on the GPU in agreement with the CPU twin. The library half runs
//! on threads with small stacks, to show the headroom a 2 MiB thread (the main thread, a
//! server worker) has.

mod common;
use common::*;
use phaseflow::gpu::shader::validate;
use phaseflow::model::parser::{MAX_DEPTH, MAX_NODES};
use phaseflow::model::{Function, Source, System, emit_system, parse_system};
use phaseflow::ode::fixed::kernel::fixed_step_wgsl;
use phaseflow::ode::{Ensemble, InitialStates, Precision, Save, Solver, Status};
use std::process::Command;

/// Stack for the library checks: 256 KiB in release builds, 1 MiB in debug builds (bigger
/// frames); either is far below the 2 MiB of the threads phaseflow runs on.
const SMALL_STACK: usize = if cfg!(debug_assertions) {
    1 << 20
} else {
    256 << 10
};

fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(f)
        .unwrap()
        .join()
        .expect("no panic")
}

/// A system file whose auxiliary `a` and equation for `x` are given; the equations start on
/// line 5.
fn system_file(aux: &str, dx: &str) -> String {
    format!(
        "name = \"deep\"\nstates = {{ x = 1.0 }}\nparameters = {{ k = 0.5 }}\nequations = \"\"\"\n\
         a = {aux}\ndx = {dx}\n\"\"\"\n"
    )
}

fn nest(open: &str, inner: &str, close: &str, n: usize) -> String {
    format!("{}{inner}{}", open.repeat(n), close.repeat(n))
}

/// The hostile corpus: (what, system file text, the message expected).
fn corpus() -> Vec<(&'static str, String, String)> {
    let deep = format!("expression nested deeper than {MAX_DEPTH} levels");
    let big = format!("more than {MAX_NODES} numbers, names and operations");
    vec![
        (
            "parentheses 20000 deep",
            system_file("1", &nest("(", "x", ")", 20_000)),
            deep.clone(),
        ),
        (
            "parentheses 1500 deep",
            system_file("1", &nest("(", "x", ")", 1_500)),
            deep.clone(),
        ),
        (
            "unary minus 10^5",
            system_file("1", &format!("{}x", "-".repeat(100_000))),
            deep.clone(),
        ),
        (
            "^ chain 10^4",
            system_file("1", &vec!["x"; 10_000].join("^")),
            deep.clone(),
        ),
        (
            "sum of 10^5 terms",
            system_file("1", &vec!["x"; 100_000].join("+")),
            big.clone(),
        ),
        (
            "product of 10^5 factors",
            system_file("1", &vec!["x"; 100_000].join("*")),
            big,
        ),
        (
            "200 nested calls",
            system_file("1", &nest("sin(", "x", ")", 200)),
            deep.clone(),
        ),
        (
            "2000 nested calls",
            system_file("1", &nest("sin(", "x", ")", 2_000)),
            deep.clone(),
        ),
        (
            "deep auxiliary definition",
            system_file(&nest("atan2(x, ", "x", ")", 5_000), "a"),
            deep.clone(),
        ),
        (
            "calls and parentheses alternating",
            system_file("1", &nest("exp((", "x", "))", 3_000)),
            deep,
        ),
    ]
}

/// Asserts a rendered message names the file, a line and column, and has a caret.
fn assert_located(what: &str, text: &str, file: &str) {
    let marker = format!("{file}:");
    let at = text
        .find(&marker)
        .unwrap_or_else(|| panic!("{what}: no {marker} in {text}"));
    let rest = &text[at + marker.len()..];
    let line: String = rest.chars().take_while(char::is_ascii_digit).collect();
    assert!(
        line == "5" || line == "6",
        "{what}: line {line:?} in {text}"
    );
    assert!(
        rest[line.len()..].starts_with(':')
            && rest[line.len() + 1..].starts_with(|c: char| c.is_ascii_digit()),
        "{what}: no column in {text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("|") && l.contains('^')),
        "{what}: no caret in {text}"
    );
}

#[test]
fn the_library_refuses_deep_and_huge_expressions_with_a_located_message() {
    on_small_stack(|| {
        for (what, text, expected) in corpus() {
            let err = parse_system(&Source::new("deep.toml", text)).expect_err(what);
            let rendered = err.to_string();
            assert!(rendered.contains(&expected), "{what}: {rendered}");
            assert_located(what, &rendered, "deep.toml");
            // The excerpt of a long line is cut: the message stays short.
            assert!(rendered.len() < 1_000, "{what}: {} bytes", rendered.len());
        }
    });
}

#[test]
fn functions_of_inputs_are_bounded_too() {
    on_small_stack(|| {
        for n in [MAX_DEPTH as usize, 20_000] {
            let text = nest("(", "x", ")", n);
            let err = Function::parse(&Source::new("<target>", text), &["x"]).unwrap_err();
            assert!(err.to_string().contains("nested deeper than"), "{err}");
        }
        let ok = nest("cos(", "x", ")", MAX_DEPTH as usize - 1);
        let f = Function::parse(&Source::new("<target>", ok), &["x"]).unwrap();
        let want = (0..MAX_DEPTH - 1).fold(0.5f64, |v, _| v.cos());
        assert_eq!(f.eval(&[0.5]), want);
    });
}

/// Equations at the limits: each of the deepest forms the language accepts, a long sum and
/// a long product, in one system with a parameter.
const LIMIT_STATES: [(&str, f64); 4] = [("x", 0.5), ("y", -0.25), ("z", 1.0), ("w", 0.1)];

fn limit_equations() -> String {
    let levels = MAX_DEPTH as usize;
    // -k * 98 nested calls around x: 100 levels.
    let calls = nest("sin(", "x", ")", levels - 2);
    // Parentheses, unary minus, ^ and * alternating, 99 levels in all (each round adds a
    // parenthesis and an operator).
    let mut mixed = "y".to_string();
    for i in 0..(levels - 2) / 2 {
        mixed = match i % 3 {
            0 => format!("(-{mixed})"),
            1 => format!("(0.999^{mixed})"),
            _ => format!("(k*{mixed})"),
        };
    }
    // 400 distinct terms, alternating signs: grouped in halves.
    let sum: Vec<String> = (0..400)
        .map(|i| {
            format!(
                "{}z*{}",
                if i % 2 == 0 { "+" } else { "-" },
                1.0 + i as f64 * 1e-3
            )
        })
        .collect();
    let product = vec!["(1 + 0.001*w)"; 100].join("*");
    format!(
        "dx = -k*{calls}\ndy = {mixed}\ndz = -1e-3*({})\ndw = -w*{product}/w\n",
        sum.concat()
    )
}

fn limit_system() -> System {
    System::from_equations("limits", &LIMIT_STATES, &[("k", 0.5)], &limit_equations())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn expressions_at_the_limit_evaluate_and_emit_on_a_small_stack() {
    let (du, wgsl) = on_small_stack(|| {
        let s = limit_system();
        let copy = s.clone();
        assert_eq!(copy, s);
        let mut du = [0.0; 4];
        let u: Vec<f64> = LIMIT_STATES.iter().map(|v| v.1).collect();
        s.rhs_f64(0.0, &u, &[0.5], &mut Vec::new(), &mut du);
        (du, emit_system(&s, Precision::F32))
    });
    // dx: -k sin^98(0.5), computed the same way here.
    let sin98 = (0..MAX_DEPTH - 2).fold(0.5f64, |v, _| v.sin());
    assert_eq!(du[0], -0.5 * sin98);
    // dz: -1e-3 z (sum of (-1)^i (1 + i 1e-3)) = -1e-3 * -0.2 = 2e-4 (to rounding).
    assert!((du[2] - 2e-4).abs() < 1e-15, "{}", du[2]);
    // dw: -(1 + 1e-4)^100.
    assert!((du[3] + 1.0001f64.powi(100)).abs() < 1e-12, "{}", du[3]);
    assert!(du[1].is_finite());
    // The emitted WGSL is flat: deep subtrees are named by lets.
    assert!(wgsl.contains("let e0 = "), "{wgsl}");
}

#[test]
fn kernels_at_the_limit_validate_and_match_the_cpu_twin() {
    let s = limit_system();
    for precision in [Precision::F32, Precision::F64] {
        let wgsl = fixed_step_wgsl(&s, &Solver::Rk4.step_tableau(), 64, precision).unwrap();
        validate("limits", &wgsl, precision == Precision::F64).unwrap_or_else(|e| panic!("{e}"));
    }
    let n = 8;
    let mut e = Ensemble::new(&s, n);
    let ranges = LIMIT_STATES
        .iter()
        .enumerate()
        .map(|(i, &(_, v))| (i, v - 0.05, v + 0.05))
        .collect();
    e.initial = InitialStates::Uniform { seed: 3, ranges };
    let p = problem(s, Solver::Rk4, 0.1, 0.01, Save::Every(5), e);
    let sol = run(&p);
    for j in 0..n {
        let (cpu, status) = cpu_twin(&p, j);
        assert_eq!(status, Status::Success);
        assert_eq!(sol.status[j], Status::Success);
        let scale = cpu.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for slot in 0..sol.n_save() {
            for c in 0..sol.dim {
                let (g, r) = (sol.state(slot, j)[c], cpu[slot * sol.dim + c]);
                assert!(
                    (g - r).abs() <= 1e-4 * scale,
                    "trajectory {j} slot {slot} component {c}: gpu {g} cpu {r}"
                );
            }
        }
    }
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("phaseflow-depth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn simulate(path: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_phaseflow"))
        .arg("simulate")
        .arg(path)
        .args(["-n", "2", "--tspan", "0:0.01", "--dt", "0.001"])
        .output()
        .expect("binary runs")
}

#[test]
fn the_cli_refuses_the_corpus_with_exit_2_and_never_a_signal() {
    for (i, (what, text, expected)) in corpus().into_iter().enumerate() {
        let path = temp_file(&format!("deep{i}.toml"), &text);
        let out = simulate(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{what}: {:?}\n{stderr}",
            out.status
        );
        assert!(stderr.contains(&expected), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        assert_located(what, &stderr, &path.display().to_string());
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn the_cli_runs_a_system_just_under_the_limit() {
    let eq = format!("-k*{}", nest("sin(", "x", ")", MAX_DEPTH as usize - 2));
    let path = temp_file("under.toml", &system_file("1", &eq));
    let out = simulate(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    std::fs::remove_file(&path).unwrap();
}
