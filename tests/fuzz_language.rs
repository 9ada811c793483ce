//! Fuzzing the system language: arbitrary text into the system-file and expression parsers,
//! and random expression trees printed, parsed and evaluated. Every property asserts that
//! nothing panics (a clean `Err` is fine) plus what must hold when the text parses: the CPU
//! evaluator agrees bit for bit with a direct evaluation of the generated tree, and the
//! emitted kernel passes naga.
//!
//! `make test` runs a few thousand inputs; `make fuzz` (PHASEFLOW_FUZZ_CASES) runs it long.

mod common;

use phaseflow::gpu::shader::validate;
use phaseflow::model::expr::{Func, powi};
use phaseflow::model::parser::{MAX_DEPTH, parse_expression};
use phaseflow::model::{Function, Source, System, parse_system};
use phaseflow::ode::Solver;
use phaseflow::ode::fixed::kernel::fixed_step_wgsl;
use phaseflow::precision::Precision;
use proptest::prelude::*;

/// Pieces of the language (and near misses), so that random text reaches deep into the
/// parser rather than stopping at the first byte.
const TOKENS: &[&str] = &[
    "x", "y", "k", "t", "pi", "dx", "dy", "x'", "dy/dt", "u", "sin", "atan2", "clamp", "pow",
    "sinn", "(", ")", "(", ")", "+", "-", "*", "/", "^", "**", ",", "=", "'", ";", "\n", " ",
    "#c\n", "1", "0", "2.5", "1e-3", "1e400", "3e38", ".5", "1.", "1e", "0x1f", "//", "==", "!",
    "\"", "\u{e9}", "\t", "_a1",
];

fn token_soup(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..max).prop_map(|t| t.concat())
}

/// A system file around random equations, or wholly random text.
fn system_file_text() -> impl Strategy<Value = String> {
    prop_oneof![
        token_soup(60).prop_map(|eqs| format!(
            "name = \"f\"\nstates = {{ x = 1.0, y = 0.5 }}\nparameters = {{ k = 2.0 }}\n\
             inputs = {{ u = {{ sensors = 4, span = [0.0, 1.0] }} }}\n\
             equations = \"\"\"\n{eqs}\n\"\"\"\n"
        )),
        prop::collection::vec(any::<u8>(), 0..300)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        prop::collection::vec(
            prop::sample::select(
                &[
                    "name",
                    "states",
                    "=",
                    "{",
                    "}",
                    "[",
                    "]",
                    "\"",
                    "\"\"\"",
                    "x",
                    "1.0",
                    ",",
                    "\n",
                    "equations",
                    "dx = -x",
                    "tspan",
                    "dt",
                    "inputs",
                    "sensors",
                    "span",
                ][..]
            ),
            0..40
        )
        .prop_map(|t| t.join(" ")),
    ]
}

/// An expression tree over the states x, y, the parameter k, t and pi.
#[derive(Debug, Clone)]
enum Tree {
    Num(f64),
    Var(&'static str),
    Neg(Box<Tree>),
    Bin(char, Box<Tree>, Box<Tree>),
    Call(Func, Vec<Tree>),
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        prop::sample::select(&[0.0, 1.0, 2.0, 3.0, 0.5, 0.25, 1e-3, 7.5, 64.0, 65.0, 1e30][..])
            .prop_map(Tree::Num),
        prop::sample::select(&["x", "y", "k", "t", "pi"][..]).prop_map(Tree::Var),
    ];
    leaf.prop_recursive(6, 48, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|a| Tree::Neg(Box::new(a))),
            (
                prop::sample::select(&['+', '-', '*', '/', '^'][..]),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(op, a, b)| Tree::Bin(op, Box::new(a), Box::new(b))),
            (
                prop::sample::select(&Func::ALL[..]),
                prop::collection::vec(inner, 3)
            )
                .prop_map(|(f, mut args)| {
                    args.truncate(f.arity());
                    Tree::Call(f, args)
                }),
        ]
    })
}

/// Fully parenthesised text, so the parser's grouping is the tree's.
fn print(t: &Tree) -> String {
    match t {
        Tree::Num(v) => format!("{v:?}"),
        Tree::Var(n) => n.to_string(),
        Tree::Neg(a) => format!("(-{})", print(a)),
        Tree::Bin(op, a, b) => format!("({} {op} {})", print(a), print(b)),
        Tree::Call(f, args) => {
            let args: Vec<String> = args.iter().map(print).collect();
            format!("{}({})", f.name(), args.join(", "))
        }
    }
}

struct Point {
    t: f64,
    x: f64,
    y: f64,
    k: f64,
}

/// Whether a subtree folds to a constant: no variables, or a power with a constant exponent
/// of 0 (`x^0` is 1 for every x).
fn is_constant(t: &Tree) -> bool {
    let power =
        |a: &Tree, b: &Tree| is_constant(b) && (reference(b, &ANYWHERE) == 0.0 || is_constant(a));
    match t {
        Tree::Num(_) | Tree::Var("pi") => true,
        Tree::Var(_) => false,
        Tree::Neg(a) => is_constant(a),
        Tree::Bin('^', a, b) => power(a, b),
        Tree::Bin(_, a, b) => is_constant(a) && is_constant(b),
        Tree::Call(Func::Pow, args) => power(&args[0], &args[1]),
        Tree::Call(_, args) => args.iter().all(is_constant),
    }
}

/// Where a constant subtree is evaluated (it does not matter where).
const ANYWHERE: Point = Point {
    t: 0.0,
    x: 0.0,
    y: 0.0,
    k: 0.0,
};

/// The language's documented semantics, evaluated directly: `^` (and `pow`) with a constant
/// integer exponent up to 64 is repeated multiplication, with a constant 0.5 a square root,
/// else `powf`.
fn reference(t: &Tree, at: &Point) -> f64 {
    let power = |base: &Tree, exponent: &Tree| {
        let b = reference(base, at);
        let e = reference(exponent, at);
        if is_constant(exponent) {
            if e.fract() == 0.0 && e.abs() <= 64.0 {
                return powi(b, e as i32);
            }
            if e == 0.5 {
                return b.sqrt();
            }
        }
        b.powf(e)
    };
    match t {
        Tree::Num(v) => *v,
        Tree::Var(n) => match *n {
            "x" => at.x,
            "y" => at.y,
            "k" => at.k,
            "t" => at.t,
            _ => std::f64::consts::PI,
        },
        Tree::Neg(a) => -reference(a, at),
        Tree::Bin('^', a, b) => power(a, b),
        Tree::Bin(op, a, b) => {
            let (a, b) = (reference(a, at), reference(b, at));
            match op {
                '+' => a + b,
                '-' => a - b,
                '*' => a * b,
                _ => a / b,
            }
        }
        Tree::Call(Func::Pow, args) => power(&args[0], &args[1]),
        Tree::Call(f, args) => {
            let v: Vec<f64> = args.iter().map(|a| reference(a, at)).collect();
            f.eval(&v)
        }
    }
}

fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn two_equation_system(a: &Tree, b: &Tree) -> Result<System, String> {
    let eqs = format!("dx = {}\ndy = {}\n", print(a), print(b));
    System::from_equations("f", &[("x", 1.0), ("y", 0.5)], &[("k", 2.0)], &eqs)
        .map_err(|e| format!("{eqs}\n{e}"))
}

/// Nesting of one kind, `levels` deep, around `@` (a place for more).
fn nested(kind: u8, levels: usize) -> String {
    match kind % 4 {
        0 => format!("{}@{}", "(".repeat(levels), ")".repeat(levels)),
        1 => format!("{}@{}", "exp(".repeat(levels), ")".repeat(levels)),
        2 => format!("{}@", "-".repeat(levels)),
        _ => vec!["@"; levels + 1].join("^"),
    }
}

proptest! {
    #![proptest_config(common::fuzz::config(20000))]

    #[test]
    fn system_files_parse_or_fail_cleanly(text in system_file_text()) {
        if let Err(e) = parse_system(&Source::new("fuzz.toml", text.as_str())) {
            // Every message renders (positions inside the text).
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn expressions_parse_or_fail_cleanly(text in token_soup(40)) {
        let src = Source::new("<expr>", text.as_str());
        let _ = parse_expression(&src);
        if let Ok(f) = Function::parse(&src, &["x", "y"]) {
            let _ = f.eval(&[0.3, -2.0]);
        }
        if let Ok(s) = System::from_equations("f", &[("x", 1.0), ("y", 0.0)], &[("k", 1.0)], &text) {
            let mut du = [0.0; 2];
            s.rhs_f64(0.1, &[0.5, 0.25], &[1.0], &mut Vec::new(), &mut du);
        }
    }

    #[test]
    fn printed_trees_parse_and_evaluate_as_generated(a in tree(), b in tree()) {
        let system = two_equation_system(&a, &b).map_err(TestCaseError::fail)?;
        let at = Point { t: 0.3, x: 0.7, y: -1.3, k: 2.0 };
        let mut du = [0.0; 2];
        system.rhs_f64(at.t, &[at.x, at.y], &[at.k], &mut Vec::new(), &mut du);
        let want = [reference(&a, &at), reference(&b, &at)];
        prop_assert!(
            same(du[0], want[0]) && same(du[1], want[1]),
            "{} / {}: {du:?} vs {want:?}", print(&a), print(&b)
        );
    }

    #[test]
    fn nesting_is_accepted_up_to_the_limit_and_refused_beyond(
        kinds in prop::collection::vec((any::<u8>(), 1usize..60), 1..6)
    ) {
        // Several kinds of nesting wrapped around each other, up to about 300 levels.
        let mut text = "x".to_string();
        for (kind, levels) in &kinds {
            text = nested(*kind, *levels).replacen('@', &format!("({text})"), 1).replace('@', "x");
        }
        let src = Source::new("<expr>", text.as_str());
        match parse_expression(&src) {
            Ok(_) => {
                let f = Function::parse(&src, &["x"]).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let _ = f.eval(&[0.5]);
            }
            Err(d) => {
                prop_assert!(
                    d.message.contains(&format!("deeper than {MAX_DEPTH} levels")),
                    "{text}: {}", d.message
                );
                prop_assert!(d.to_string().contains('^'));
            }
        }
    }
}

proptest! {
    // Each case composes and validates two kernels with naga: fewer cases.
    #![proptest_config(common::fuzz::config(600))]

    #[test]
    fn kernels_of_random_trees_pass_naga(a in tree(), b in tree()) {
        let system = two_equation_system(&a, &b).map_err(TestCaseError::fail)?;
        for precision in [Precision::F32, Precision::F64] {
            let wgsl = fixed_step_wgsl(&system, &Solver::Rk4.step_tableau(), 64, precision)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            validate("fuzz", &wgsl, precision == Precision::F64)
                .map_err(|e| TestCaseError::fail(format!("{} / {}\n{e}", print(&a), print(&b))))?;
        }
    }
}
