//! Jacobians as the stiff solvers and users see them: `System::state_jacobian` and
//! `System::time_jacobian` of every built-in system against central differences, random
//! expressions over every function of the language against central differences (and
//! printed back to text by `model::print` without changing their value), the Lorenz and
//! ROBER Jacobians derived by hand, the `jacobian` key of system files (accepted when right,
//! refused at file:line:column when wrong or malformed), and `systems show --jacobian`.

#[path = "common/cli.rs"]
mod cli;
use cli::{phaseflow, stderr, stdout};

use phaseflow::model::derive::{Jacobian, Program, Wrt, jacobian};
use phaseflow::model::expr::{Func, Node};
use phaseflow::model::print::{number, print_node, print_program};
use phaseflow::model::{Diagnostics, Source, System, builtin, builtin_names, parse_system};
use phaseflow::rng::uniform_f64;

/// A uniform number in [-1, 1), reproducible from (seed, index, stream).
fn sym(seed: u64, index: u64, stream: u32) -> f64 {
    2.0 * uniform_f64(seed, index, stream) - 1.0
}

/// A point near a system's defaults: states moved by up to 30% plus 0.3, parameters by up
/// to 20% (keeping their sign), input values in [-1, 1], t inside the suggested span.
fn point(s: &System, seed: u64, k: u64) -> (f64, Vec<f64>, Vec<f64>) {
    let mut stream = 0;
    let mut next = || {
        stream += 1;
        sym(seed, k, stream)
    };
    let u = s
        .default_state()
        .iter()
        .map(|d| d + next() * (0.3 * d.abs() + 0.3))
        .collect();
    let mut p: Vec<f64> = s
        .default_params()
        .iter()
        .map(|d| d * (1.0 + 0.2 * next()))
        .collect();
    p.extend((0..s.n_input_values()).map(|_| next()));
    let (a, b) = s.meta.tspan.unwrap_or((0.0, 1.0));
    let t = a + 0.5 * (1.0 + next()) * (b - a);
    (t, u, p)
}

/// f(t, u, p) through the system's own right-hand side.
fn rhs(s: &System, t: f64, u: &[f64], p: &[f64]) -> Vec<f64> {
    let mut du = vec![0.0; s.dim()];
    s.rhs_f64(t, u, p, &mut Vec::new(), &mut du);
    du
}

/// The central difference (f(x + h) - f(x - h)) / (2h) of every row, and the same with h/2.
fn central(f: &dyn Fn(f64) -> Vec<f64>, x: f64, h: f64) -> (Vec<f64>, Vec<f64>) {
    let d = |h: f64| {
        let (xp, xm) = (x + h, x - h);
        let (fp, fm) = (f(xp), f(xm));
        fp.iter()
            .zip(&fm)
            .map(|(a, b)| (a - b) / (xp - xm))
            .collect::<Vec<_>>()
    };
    (d(h), d(h / 2.0))
}

/// How far a correct derivative may be from a central difference with step h at x:
/// truncation h^2 |f'''| / 6, estimated by Richardson's difference between steps h and h/2
/// (|D(h) - D(h/2)| = (3/4) h^2 |f'''| / 6 + O(h^4), so a factor 4 covers it with room), plus
/// rounding: each of f(x ± h) errs by a few ulp of the terms it adds, at most ~1e3 eps of
/// `mag` (the row's |f| plus |J| |x| over its columns, a bound on the terms' size), divided
/// by 2h. A wrong derivative misses by O(|J|), far beyond both.
fn fd_tolerance(d_h: f64, d_h2: f64, mag: f64, h: f64) -> f64 {
    4.0 * (d_h - d_h2).abs() + 1e3 * f64::EPSILON * mag / h + 1e-12
}

/// Checks `j` (rows = states' equations, one column per `wrt`) against central differences
/// of the right-hand side at (t, u, p).
fn check_against_fd(s: &System, j: &Jacobian, wrt: &[Wrt], (t, u, p): (f64, &[f64], &[f64])) {
    let dense = j.eval_dense(s, t, u, p);
    let f0 = rhs(s, t, u, p);
    let cols = wrt.len();
    for (c, &w) in wrt.iter().enumerate() {
        let x0 = match w {
            Wrt::State(i) => u[i],
            Wrt::Param(i) => p[i],
            Wrt::Time => t,
        };
        let at = |x: f64| {
            let (mut t, mut u, mut p) = (t, u.to_vec(), p.to_vec());
            match w {
                Wrt::State(i) => u[i] = x,
                Wrt::Param(i) => p[i] = x,
                Wrt::Time => t = x,
            }
            rhs(s, t, &u, &p)
        };
        // h ≈ eps^(1/3) of the variable's scale balances truncation and rounding.
        let h = 1e-5 * x0.abs().max(1.0);
        let (d_h, d_h2) = central(&at, x0, h);
        for r in 0..s.dim() {
            let got = dense[r * cols + c];
            let mag = f0[r].abs()
                + (0..cols)
                    .map(|q| dense[r * cols + q].abs() * u.get(q).map_or(1.0, |x| x.abs().max(1.0)))
                    .sum::<f64>();
            let tol = fd_tolerance(d_h[r], d_h2[r], mag, h);
            assert!(
                (got - d_h2[r]).abs() <= tol,
                "{}: d(d{})/d({w:?}) = {got}, central differences {} (tol {tol:e}) at t={t} u={u:?} p={p:?}",
                s.name(),
                s.states[r].name,
                d_h2[r]
            );
            if j.index(r, c).is_none() {
                assert_eq!(got, 0.0);
            }
        }
    }
}

#[test]
fn every_builtin_state_and_time_jacobian_matches_central_differences() {
    for name in builtin_names() {
        let s = builtin(name).unwrap().unwrap();
        let ju = s.state_jacobian().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((ju.rows, ju.cols), (s.dim(), s.dim()), "{name}");
        let states: Vec<Wrt> = (0..s.dim()).map(Wrt::State).collect();
        // ∂f/∂t exists unless time enters through an input (piecewise linear).
        let jt = s.time_jacobian();
        assert_eq!(jt.is_err(), !s.inputs.is_empty(), "{name}");
        for k in 0..8 {
            let (t, u, p) = point(&s, 25, k);
            check_against_fd(&s, &ju, &states, (t, &u, &p));
            if let Ok(jt) = &jt {
                check_against_fd(&s, jt, &[Wrt::Time], (t, &u, &p));
            }
        }
        if !s.uses_time() {
            assert!(jt.unwrap().entries.is_empty(), "{name} is autonomous");
        }
    }
}

/// The new stiff systems' sparsity: counted by hand from their equations.
#[test]
fn stiff_catalog_sparsity() {
    for (name, dim, nonzero) in [
        ("rober", 3, 7),
        ("van_der_pol_stiff", 2, 3),
        ("orego", 3, 7),
        // 3 entries per row, except dPfr's 2 and dPfrX2's 5.
        ("hires", 8, 25),
        // Each u_i, v_i couples to itself, its partner and its neighbours of the same kind
        // (none beyond the boundary): 20 rows × 4 - 4 missing neighbours.
        ("brusselator_stiff", 20, 76),
        ("pollu", 20, 82),
    ] {
        let s = builtin(name).unwrap().unwrap();
        assert_eq!(s.dim(), dim, "{name}");
        let j = s.state_jacobian().unwrap();
        assert_eq!(j.entries.len(), nonzero, "{name}: {:?}", j.entries);
        assert!(s.time_jacobian().unwrap().entries.is_empty(), "{name}");
        assert!(!s.meta.reference.is_empty() && s.meta.tspan.is_some() && s.meta.dt.is_some());
    }
    let s = builtin("rober").unwrap().unwrap();
    assert_eq!(s.meta.tspan, Some((0.0, 1e5)));
    assert_eq!(s.default_state(), [1.0, 0.0, 0.0]);
    assert_eq!(s.default_params(), [0.04, 3e7, 1e4]);
    let s = builtin("hires").unwrap().unwrap();
    assert_eq!(s.meta.tspan, Some((0.0, 321.8122)));
    assert_eq!(s.default_state()[7], 0.0057);
    let s = builtin("pollu").unwrap().unwrap();
    assert_eq!(s.n_params(), 25);
    assert_eq!(s.aux.len(), 25, "one auxiliary per reaction");
}

/// Random expression text over states x, y, z, parameters p, q and t, using `depth` more
/// levels at most. Arguments are guarded into each function's domain, away from poles and
/// from the ends of asin/acos where the derivative is unbounded.
struct Gen {
    seed: u64,
    draws: u64,
    used: std::collections::HashSet<Func>,
}

impl Gen {
    fn r(&mut self) -> f64 {
        self.draws += 1;
        uniform_f64(self.seed, self.draws, 0)
    }

    fn pick(&mut self, n: usize) -> usize {
        ((self.r() * n as f64) as usize).min(n - 1)
    }

    fn leaf(&mut self) -> String {
        match self.pick(7) {
            0 => "x".into(),
            1 => "y".into(),
            2 => "z".into(),
            3 => "p".into(),
            4 => "q".into(),
            5 => "t".into(),
            _ => number((self.r() * 40.0 - 20.0).round() / 8.0),
        }
    }

    fn expr(&mut self, depth: u32) -> String {
        if depth == 0 || self.r() < 0.2 {
            return self.leaf();
        }
        let d = depth - 1;
        match self.pick(9) {
            0 => format!("({} + {})", self.expr(d), self.expr(d)),
            1 => format!("({} - {})", self.expr(d), self.expr(d)),
            2 => format!("{}*{}", self.expr(d), self.expr(d)),
            3 => format!("{}/(1.5 + sin({}))", self.expr(d), self.expr(d)),
            4 => format!("(1.5 + cos({}))^{}", self.expr(d), self.pick(7) as i32 - 3),
            5 => format!("-{}", self.expr(d)),
            _ => self.call(d),
        }
    }

    fn call(&mut self, d: u32) -> String {
        let f = Func::ALL[self.pick(Func::ALL.len())];
        self.used.insert(f);
        let a = self.expr(d);
        let n = f.name();
        match f {
            Func::Sin | Func::Cos | Func::Atan | Func::Tanh | Func::Abs | Func::Sign => {
                format!("{n}({a})")
            }
            Func::Floor | Func::Ceil => format!("{n}({a})"),
            Func::Tan => format!("tan(0.5*sin({a}))"),
            Func::Asin | Func::Acos => format!("{n}(0.9*sin({a}))"),
            Func::Sinh | Func::Cosh | Func::Exp => format!("{n}(2*sin({a}))"),
            Func::Log | Func::Log2 | Func::Log10 | Func::Sqrt => format!("{n}(1.5 + sin({a}))"),
            Func::Atan2 => format!("atan2({a}, 2 + sin({}))", self.expr(d)),
            Func::Min | Func::Max => format!("{n}({a}, {})", self.expr(d)),
            Func::Clamp => format!(
                "clamp({a}, -0.5 + 0.2*sin({}), 0.5 + 0.2*cos({}))",
                self.expr(d),
                self.expr(d)
            ),
            Func::Pow => format!("pow(1.5 + sin({a}), 2*sin({}))", self.expr(d)),
        }
    }
}

fn random_system(g: &mut Gen) -> System {
    let eqs = format!(
        "dx = {}\ndy = {}\ndz = {}\n",
        g.expr(4),
        g.expr(4),
        g.expr(4)
    );
    System::from_equations(
        "random",
        &[("x", 0.3), ("y", -0.2), ("z", 0.7)],
        &[("p", 1.1), ("q", -0.6)],
        &eqs,
    )
    .unwrap_or_else(|e| panic!("{e}\n{eqs}"))
}

/// Random expressions of every function, differentiated with respect to states,
/// parameters and time, against central differences. Where an expression has a kink
/// (abs, sign, floor, ceil, min, max, clamp) within h of the point, central differences
/// measure the jump rather than the derivative; Richardson's difference then exceeds the
/// tolerance's scale, and such (point, column) pairs are skipped and counted: most are
/// checked.
#[test]
fn random_expressions_of_every_function_match_central_differences() {
    let mut g = Gen {
        seed: 2025,
        draws: 0,
        used: Default::default(),
    };
    let (mut checked, mut skipped) = (0, 0);
    let wrt = [
        Wrt::State(0),
        Wrt::State(1),
        Wrt::State(2),
        Wrt::Param(0),
        Wrt::Param(1),
        Wrt::Time,
    ];
    for _ in 0..60 {
        let s = random_system(&mut g);
        let j = jacobian(&s, &s.rhs, &wrt).unwrap();
        for k in 0..6 {
            let (t, u, p) = point(&s, 77, k);
            let dense = j.eval_dense(&s, t, &u, &p);
            let f0 = rhs(&s, t, &u, &p);
            for (c, &w) in wrt.iter().enumerate() {
                let x0 = [u[0], u[1], u[2], p[0], p[1], t][c];
                let at = |x: f64| {
                    let (mut t, mut u, mut p) = (t, u.clone(), p.clone());
                    match w {
                        Wrt::State(i) => u[i] = x,
                        Wrt::Param(i) => p[i] = x,
                        Wrt::Time => t = x,
                    }
                    rhs(&s, t, &u, &p)
                };
                let h = 1e-5 * x0.abs().max(1.0);
                let (d_h, d_h2) = central(&at, x0, h);
                for r in 0..3 {
                    let got = dense[r * wrt.len() + c];
                    let mag = f0[r].abs()
                        + dense[r * wrt.len()..(r + 1) * wrt.len()]
                            .iter()
                            .map(|v| v.abs())
                            .sum::<f64>();
                    // A kink within h: the two steps disagree at first order.
                    if (d_h[r] - d_h2[r]).abs() > 1e-3 * (1.0 + got.abs()) {
                        skipped += 1;
                        continue;
                    }
                    let tol = fd_tolerance(d_h[r], d_h2[r], mag, h);
                    assert!(
                        (got - d_h2[r]).abs() <= tol,
                        "d(d{})/d({w:?}) = {got}, central differences {} (tol {tol:e})\n{}",
                        s.states[r].name,
                        d_h2[r],
                        s.equations
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(g.used.len(), Func::ALL.len(), "{:?}", g.used);
    assert!(
        skipped * 20 < checked,
        "{skipped} skipped, {checked} checked"
    );
}

/// Printing a resolved expression and parsing it back gives the same value to the bit:
/// the printer's parentheses keep every operation and its order (see `model::print`).
#[test]
fn printed_expressions_parse_back_to_the_same_values() {
    let mut g = Gen {
        seed: 7,
        draws: 0,
        used: Default::default(),
    };
    let mut systems: Vec<System> = (0..40).map(|_| random_system(&mut g)).collect();
    systems.extend(
        builtin_names()
            .into_iter()
            .map(|n| builtin(n).unwrap().unwrap()),
    );
    for s in &systems {
        let mut text: Vec<String> = s
            .aux
            .iter()
            .map(|a| format!("{} = {}", a.name, print_node(s, &a.value)))
            .collect();
        text.extend(
            s.states
                .iter()
                .zip(&s.rhs)
                .map(|(v, r)| format!("d{} = {}", v.name, print_node(s, r))),
        );
        let text = text.join("\n");
        let states: Vec<(&str, f64)> = s
            .states
            .iter()
            .map(|v| (v.name.as_str(), v.default))
            .collect();
        let params: Vec<(&str, f64)> = s
            .params
            .iter()
            .map(|v| (v.name.as_str(), v.default))
            .collect();
        let back =
            System::from_equations_with_inputs("back", &states, &params, s.inputs.clone(), &text)
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", s.name()));
        for k in 0..4 {
            let (t, u, p) = point(s, 3, k);
            let (a, b) = (rhs(s, t, &u, &p), rhs(&back, t, &u, &p));
            assert_eq!(
                a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{}: {a:?} vs {b:?}\n{}\nprinted:\n{text}",
                s.name(),
                s.equations
            );
        }
    }
}

#[test]
fn printer_writes_what_papers_write() {
    let s = System::from_equations(
        "p",
        &[("x", 1.0), ("y", 2.0)],
        &[("k", 3.0)],
        "a = x*y\ndx = -(x + y) - -x + k*(-y) + x^-2 + (x^2)^3 + (-x)^2 + x/(y*k) + x/y*k\n\
         dy = 3e7*x + 8.375e-6 + pi*x - 2*a + atan2(y, -x) + 0.5",
    )
    .unwrap();
    assert_eq!(
        print_node(&s, &s.rhs[0]),
        "-(x + y) - (-x) + k*(-y) + x^-2 + (x^2)^3 + (-x)^2 + x/(y*k) + x/y*k"
    );
    assert_eq!(
        print_node(&s, &s.rhs[1]),
        "3e7*x + 8.375e-6 + pi*x - 2*a + atan2(y, -x) + 0.5"
    );
    assert_eq!(number(4.44e11), "4.44e11");
    assert_eq!(number(1000.0), "1000");
    assert_eq!(number(10000.0), "10000");
    assert_eq!(number(1e5), "1e5");
    assert_eq!(number(0.0007), "0.0007");
    assert_eq!(number(-2.5), "-2.5");
}

/// A program's shared lets print once as temporaries, a short or single-use one in place.
#[test]
fn programs_print_shared_subexpressions_once() {
    let s = System::from_equations(
        "p",
        &[("x", 1.0), ("y", 2.0)],
        &[],
        "dx = sin(exp(x) + cos(y)*x)\ndy = y",
    )
    .unwrap();
    let long = s.rhs[0].clone();
    let program = Program {
        n_system_aux: 0,
        lets: vec![long, Node::State(1)],
        outputs: vec![Node::Aux(0), Node::Aux(0), Node::Aux(1), Node::Aux(1)],
    };
    let text = print_program(&s, &program);
    let shared = "sin(exp(x) + cos(y)*x)".to_string();
    assert_eq!(text.temporaries, [("j1".to_string(), shared)]);
    assert_eq!(text.outputs, ["j1", "j1", "y", "y"]);
    // A system with a state j1 gets other names.
    let s = System::from_equations(
        "p",
        &[("j1", 1.0), ("x", 1.0), ("y", 2.0)],
        &[],
        "dj1 = j1\ndx = x\ndy = y",
    )
    .unwrap();
    let text = print_program(&s, &program);
    assert_eq!(text.temporaries[0].0, "tmp1");
}

fn lorenz() -> System {
    builtin("lorenz").unwrap().unwrap()
}

/// The Lorenz Jacobian derived by hand, entry by entry, exactly: each entry is at most one
/// operation on the point's values, the same one the symbolic Jacobian does.
#[test]
fn lorenz_jacobian_equals_the_hand_derived_one() {
    let s = lorenz();
    let j = s.state_jacobian().unwrap();
    assert_eq!(
        j.entries,
        [
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 1),
            (1, 2),
            (2, 0),
            (2, 1),
            (2, 2)
        ]
    );
    for k in 0..20 {
        let (t, u, p) = point(&s, 41, k);
        let (x, y, z) = (u[0], u[1], u[2]);
        let (sigma, rho, beta) = (p[0], p[1], p[2]);
        let hand = [[-sigma, sigma, 0.0], [rho - z, -1.0, -x], [y, x, -beta]];
        let got = j.eval_dense(&s, t, &u, &p);
        for r in 0..3 {
            for c in 0..3 {
                assert_eq!(
                    got[r * 3 + c],
                    hand[r][c],
                    "d(d{})/d({})",
                    s.states[r].name,
                    s.states[c].name
                );
            }
        }
    }
}

/// The ROBER Jacobian derived by hand, entry by entry. 2*k2*y2 and the symbolic k2*(2*y2)
/// round differently in general only through the product's order; multiplying by 2 is
/// exact, so both are one rounding of the same real number and agree to the bit, as do the
/// other entries (one operation each, or two for d(dy2)/d(y2), done in the same order).
#[test]
fn rober_jacobian_equals_the_hand_derived_one() {
    let s = builtin("rober").unwrap().unwrap();
    let j = s.state_jacobian().unwrap();
    assert_eq!(
        j.entries,
        [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 1)]
    );
    for k in 0..20 {
        let (t, u, p) = point(&s, 43, k);
        let (y2, y3) = (u[1], u[2]);
        let (k1, k2, k3) = (p[0], p[1], p[2]);
        let hand = [
            [-k1, k3 * y3, k3 * y2],
            [k1, -(2.0 * k2 * y2) - k3 * y3, -(k3 * y2)],
            [0.0, 2.0 * k2 * y2, 0.0],
        ];
        let got = j.eval_dense(&s, t, &u, &p);
        for r in 0..3 {
            for c in 0..3 {
                assert_eq!(got[r * 3 + c], hand[r][c], "d(dy{})/d(y{})", r + 1, c + 1);
            }
        }
        // Mass conservation: the columns sum to zero (d/dt of y1 + y2 + y3 is 0 for all
        // y), up to the rounding of a sum of three entries of one or two roundings each:
        // a few eps of the largest term.
        let largest = 2.0 * k2 * y2.abs() + k3 * (y2.abs() + y3.abs()) + k1;
        for c in 0..3 {
            let sum: f64 = (0..3).map(|r| got[r * 3 + c]).sum();
            assert!(sum.abs() <= 8.0 * f64::EPSILON * largest, "{sum}");
        }
    }
}

const LORENZ_FILE: &str = r#"name = "lorenz_by_hand"
states = { x = 1.0, y = 0.0, z = 0.0 }
parameters = { sigma = 10.0, rho = 28.0, beta = 2.6666666666666665 }
equations = """
dx = sigma*(y - x)
dy = x*(rho - z) - y
dz = x*y - beta*z
"""
jacobian = """
d(dx)/d(x) = -sigma
d(dx)/d(y) = sigma
d(dy)/d(x) = rho - z
d(dy)/d(y) = -1
d(dy)/d(z) = -x
d(dz)/d(x) = y
d(dz)/d(y) = x
d(dz)/d(z) = -beta
"""
"#;

fn parse(text: &str) -> Result<System, Diagnostics> {
    parse_system(&Source::new("hand.toml", text))
}

#[test]
fn a_right_hand_jacobian_is_accepted_and_used() {
    let s = parse(LORENZ_FILE).unwrap();
    let hand = s.hand_jacobian.as_ref().expect("kept");
    assert_eq!(hand.entries.len(), 8);
    assert!(hand.text.starts_with("d(dx)/d(x) = -sigma"));
    let used = s.state_jacobian().unwrap();
    let symbolic = s.symbolic_state_jacobian().unwrap();
    assert_eq!(used.entries, symbolic.entries);
    // The hand program is the one used: its outputs are the expressions written.
    assert_eq!(used.program.outputs[0], Node::Neg(Box::new(Node::Param(0))));
    for k in 0..5 {
        let (t, u, p) = point(&s, 5, k);
        assert_eq!(
            used.eval_dense(&s, t, &u, &p),
            symbolic.eval_dense(&s, t, &u, &p)
        );
    }
}

/// A hand Jacobian may use the equations' auxiliaries; an entry written as 0 is left out;
/// the library API resolves a block the same way.
#[test]
fn hand_jacobians_may_use_auxiliaries() {
    let s = System::from_equations(
        "rober",
        &[("y1", 1.0), ("y2", 0.0), ("y3", 0.0)],
        &[("k1", 0.04), ("k2", 3e7), ("k3", 1e4)],
        "r1 = k1*y1\nr2 = k2*y2^2\nr3 = k3*y2*y3\ndy1 = -r1 + r3\ndy2 = r1 - r2 - r3\ndy3 = r2\n",
    )
    .unwrap()
    .with_hand_jacobian(
        "d(dy1)/d(y1) = -k1; d(dy1)/d(y2) = k3*y3; d(dy1)/d(y3) = k3*y2
         d(dy2)/d(y1) = k1
         d(dy2)/d(y2) = -2*r2/y2 - k3*y3   # 2 k2 y2, through the auxiliary
         d(dy2)/d(y3) = -k3*y2
         d(dy3)/d(y1) = 0
         d(dy3)/d(y2) = 2*k2*y2",
    )
    .unwrap();
    let j = s.state_jacobian().unwrap();
    assert_eq!(j.entries.len(), 7, "the written zero is not an entry");
    assert_eq!(j.index(2, 0), None);
}

/// Problem, what its message says, and where (line, column) it points in the file.
fn refused(text: &str) -> (String, (usize, usize), String) {
    let e = parse(text).expect_err("refused");
    let d = e.first();
    (
        d.message.clone(),
        d.position().expect("points into the file"),
        e.to_string(),
    )
}

#[test]
fn a_wrong_hand_jacobian_is_refused_where_it_is_written() {
    // A sign slip in d(dy)/d(x), line 12 of the file.
    let (message, at, shown) =
        refused(&LORENZ_FILE.replace("d(dy)/d(x) = rho - z", "d(dy)/d(x) = rho + z"));
    assert!(
        message.starts_with("d(dy)/d(x) does not match the equations"),
        "{message}"
    );
    assert_eq!(at, (12, 1));
    assert!(shown.contains("hand.toml:12:1"), "{shown}");
    assert!(
        shown.contains("the equations give d(dy)/d(x) = rho - z"),
        "{shown}"
    );
    // A wrong coefficient far below the entry's size is still caught (1e-6 relative).
    let (message, at, _) = refused(&LORENZ_FILE.replace("= -beta", "= -beta*1.000001"));
    assert!(
        message.starts_with("d(dz)/d(z) does not match"),
        "{message}"
    );
    assert_eq!(at, (17, 1));
    // A missing entry: reported at its row's first entry, with the derivative to add.
    let (message, at, shown) = refused(&LORENZ_FILE.replace("d(dz)/d(x) = y\n", ""));
    assert!(
        message.starts_with("the hand Jacobian has no entry d(dz)/d(x)"),
        "{message}"
    );
    assert_eq!(at, (15, 1));
    assert!(
        shown.contains("the equations give d(dz)/d(x) = y"),
        "{shown}"
    );
    // An entry the equations do not have.
    let (message, at, _) =
        refused(&LORENZ_FILE.replace("d(dz)/d(z) = -beta", "d(dz)/d(z) = -beta\nd(dx)/d(z) = 0.5"));
    assert!(
        message.starts_with("d(dx)/d(z) does not match"),
        "{message}"
    );
    assert_eq!(at, (18, 1));
}

#[test]
fn a_malformed_hand_jacobian_is_refused_with_positions() {
    let with = |lines: &str| {
        LORENZ_FILE.replace(
            "d(dz)/d(z) = -beta\n",
            &format!("d(dz)/d(z) = -beta\n{lines}\n"),
        )
    };
    // Line 18 is the first line after the eight good ones.
    let cases: &[(&str, &str, (usize, usize))] = &[
        (
            "d(dw)/d(x) = 1",
            "'dw' is not an equation of the system",
            (18, 3),
        ),
        (
            "d(x)/d(x) = 1",
            "'x' is a state; its equation is 'dx'",
            (18, 3),
        ),
        (
            "d(dx)/d(w) = 1",
            "'w' is not a state of the system",
            (18, 9),
        ),
        ("d(dx)/d(rho) = 1", "'rho' is a parameter", (18, 9)),
        (
            "d(dx)/d(t) = 1",
            "only derivatives with respect to states",
            (18, 9),
        ),
        (
            "d(dx)/d(x) = -sigma",
            "a second entry for d(dx)/d(x)",
            (18, 1),
        ),
        ("d(dx)/d(y) = sigam", "unknown name 'sigam'", (18, 14)),
        ("d(dx/d(y) = 1", "expected ')' to close d(dx)", (18, 5)),
        ("d(dx) = 1", "expected '/' after d(dx)", (18, 7)),
        ("dx/d(y) = 1", "expected d(dx)", (18, 1)),
        ("d(dx)/d(y) 1", "expected '='", (18, 12)),
        ("d(dx)/d(y) = (x + 1", "unclosed '('", (18, 14)),
        ("d(dx)/d(y) = 2 x", "expected an operator here", (18, 16)),
    ];
    for (line, message, at) in cases {
        let e = parse(&with(line)).expect_err(line);
        let d = e.first();
        assert!(d.message.contains(message), "{line}: {}", e);
        assert_eq!(d.position(), Some(*at), "{line}: {e}");
    }
    // Every mistake at once, each at its own line.
    let e = parse(&with("d(dw)/d(x) = 1\nd(dx)/d(w) = 1")).unwrap_err();
    assert_eq!(e.0.len(), 2, "{e}");
    assert_eq!(e.0[1].position(), Some((19, 9)));
    // An empty block.
    let e = parse(&LORENZ_FILE.replace(
        &LORENZ_FILE[LORENZ_FILE.find("jacobian").unwrap()..],
        "jacobian = \"\"\"\n\"\"\"\n",
    ))
    .unwrap_err();
    assert!(
        e.first()
            .message
            .contains("the jacobian block has no lines"),
        "{e}"
    );
    // Not a string.
    let e = parse(&format!(
        "{}jacobian = 3\n",
        &LORENZ_FILE[..LORENZ_FILE.find("jacobian").unwrap()]
    ))
    .unwrap_err();
    assert!(
        e.first().message.contains("'jacobian' must be a string"),
        "{e}"
    );
    // A string with escapes is read as its own source, named after the key.
    let e = parse(&format!(
        "{}jacobian = \"d(dx)/d(x) = -sigma\\nd(dq)/d(x) = 1\"\n",
        &LORENZ_FILE[..LORENZ_FILE.find("jacobian").unwrap()]
    ))
    .unwrap_err();
    assert!(e.to_string().contains("hand.toml (jacobian):2:3"), "{e}");
}

/// A hand Jacobian of a system whose symbolic Jacobian cannot be derived (an input read at
/// a state) cannot be checked, so it is refused rather than trusted.
#[test]
fn an_uncheckable_hand_jacobian_is_refused() {
    let inputs = vec![phaseflow::model::Input::new("u", 10, (0.0, 1.0))];
    let s =
        System::from_equations_with_inputs("i", &[("x", 0.5)], &[], inputs, "dx = u(x)").unwrap();
    let e = s.with_hand_jacobian("d(dx)/d(x) = 1").unwrap_err();
    assert!(e.first().message.contains("cannot be checked"), "{e}");
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("phaseflow-jacobian-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn systems_show_prints_the_jacobian() {
    let o = phaseflow(&["systems", "show", "lorenz", "--jacobian"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("jacobian ∂f/∂u (symbolic, derived from the equations): 8 of 9 entries structurally non-zero"), "{out}");
    for line in [
        "    d(dx)/d(x) = -sigma\n",
        "    d(dy)/d(x) = rho - z\n",
        "    d(dz)/d(z) = -beta\n",
    ] {
        assert!(out.contains(line), "{line} in {out}");
    }
    assert!(
        !out.contains("d(dx)/d(z)"),
        "structural zeros are not printed"
    );
    assert!(out.contains("jacobian ∂f/∂t: zero"), "{out}");
    // Without the flag, no Jacobian.
    let o = phaseflow(&["systems", "show", "lorenz"]);
    assert!(!stdout(&o).contains("∂f/∂u"));

    // ∂f/∂t where the equations depend on t; the reason where it cannot be derived.
    let out = stdout(&phaseflow(&["systems", "show", "duffing", "--jacobian"]));
    assert!(
        out.contains("jacobian ∂f/∂t (symbolic): 1 of 2 entries"),
        "{out}"
    );
    assert!(out.contains("    d(dv)/d(t) = "), "{out}");
    let out = stdout(&phaseflow(&[
        "systems",
        "show",
        "forced_pendulum",
        "--jacobian",
    ]));
    assert!(
        out.contains("jacobian ∂f/∂t: cannot be derived: input 'u'"),
        "{out}"
    );

    // ROBER, the way a chemist writes it.
    let out = stdout(&phaseflow(&["systems", "show", "rober", "--jacobian"]));
    assert!(
        out.contains("    d(dy2)/d(y2) = -k2*(2*y2) - k3*y3\n"),
        "{out}"
    );

    // JSON.
    let o = phaseflow(&["systems", "show", "rober", "--jacobian", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["jacobian"]["source"], "symbolic");
    assert_eq!(v["jacobian"]["state"]["nonzero"], 7);
    assert_eq!(v["jacobian"]["state"]["size"], 9);
    assert_eq!(v["jacobian"]["state"]["entries"][1]["row"], "y1");
    assert_eq!(v["jacobian"]["state"]["entries"][1]["col"], "y2");
    assert_eq!(v["jacobian"]["state"]["entries"][1]["expression"], "k3*y3");
    assert_eq!(v["jacobian"]["time"]["nonzero"], 0);
    assert!(v["hand_jacobian"].is_null());
}

#[test]
fn systems_show_says_which_jacobian_is_used() {
    let path = temp_file("hand.toml", LORENZ_FILE);
    let o = phaseflow(&["systems", "show", path.to_str().unwrap(), "--jacobian"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("jacobian ∂f/∂u (given by hand in the system file, checked"),
        "{out}"
    );
    let out = stdout(&phaseflow(&["systems", "show", path.to_str().unwrap()]));
    assert!(out.contains("jacobian:   given by hand"), "{out}");
    let o = phaseflow(&[
        "systems",
        "show",
        path.to_str().unwrap(),
        "--json",
        "--jacobian",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["jacobian"]["source"], "hand");
    assert!(
        v["hand_jacobian"]
            .as_str()
            .unwrap()
            .starts_with("d(dx)/d(x)")
    );

    // A wrong one is refused by every command that loads the file: exit 2, the position.
    let bad = temp_file(
        "bad.toml",
        &LORENZ_FILE.replace("d(dy)/d(x) = rho - z", "d(dy)/d(x) = rho + z"),
    );
    let o = phaseflow(&["systems", "show", bad.to_str().unwrap(), "--jacobian"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("d(dy)/d(x) does not match the equations"),
        "{err}"
    );
    assert!(err.contains("bad.toml:12:1"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
