use super::*;
use crate::model::expr::{BinOp, Func};
use crate::model::signal::Input;
use crate::model::{builtin, builtin_names};
use crate::rng::uniform_f64;

fn all_states(s: &System) -> Vec<Wrt> {
    (0..s.dim()).map(Wrt::State).collect()
}

fn all_params(s: &System) -> Vec<Wrt> {
    (0..s.n_params()).map(Wrt::Param).collect()
}

/// A uniform number in [-1, 1), reproducible from (seed, index, stream).
fn sym(seed: u64, index: u64, stream: u32) -> f64 {
    2.0 * uniform_f64(seed, index, stream) - 1.0
}

/// A point near the system's defaults: states moved by up to 30% plus 0.5, parameters by
/// up to 20% (keeping their sign, so e.g. rates stay rates), input values in [-1, 1], t in
/// [0, 2).
fn random_point(s: &System, seed: u64, k: u64) -> (f64, Vec<f64>, Vec<f64>) {
    let mut stream = 0;
    let mut next = || {
        stream += 1;
        sym(seed, k, stream)
    };
    let u = s
        .default_state()
        .iter()
        .map(|d| d + next() * (0.3 * d.abs() + 0.5))
        .collect();
    let mut p: Vec<f64> = s
        .default_params()
        .iter()
        .map(|d| d * (1.0 + 0.2 * next()))
        .collect();
    p.extend((0..s.n_input_values()).map(|_| next()));
    let t = 1.0 + next();
    (t, u, p)
}

/// Checks every entry of the Jacobian of `exprs` against central differences at the point.
///
/// Central differences with step h = 1e-6 max(|x|, 1) err by about h^2 |f'''| / 6 (at most
/// ~1e-13 |f'''| scale^2) plus the rounding eps |f| / h (~2e-10 |f| / scale). The tolerance
/// 1e-6 (1 + |J| + |f| / scale) sits four orders above the rounding term and leaves the
/// truncation term room for third derivatives up to ~1e6 times the first, which every system
/// tested has at these points; a wrong rule misses by O(|J|) and fails it.
fn check_fd(s: &System, exprs: &[Node], wrt: &[Wrt], (t, u, p): (f64, &[f64], &[f64])) {
    let jac = jacobian(s, exprs, wrt).unwrap_or_else(|e| panic!("{}: {e}", s.name()));
    assert_eq!((jac.rows, jac.cols), (exprs.len(), wrt.len()));
    let dense = jac.eval_dense(s, t, u, p);
    let plain = Program::of(s, exprs);
    let f = |t: f64, u: &[f64], p: &[f64]| {
        let mut out = vec![0.0; exprs.len()];
        plain.eval(s, t, u, p, &mut Vec::new(), &mut out);
        out
    };
    let f0 = f(t, u, p);
    for (c, &w) in wrt.iter().enumerate() {
        let at = |x: f64| {
            let (mut t, mut u, mut p) = (t, u.to_vec(), p.to_vec());
            match w {
                Wrt::State(i) => u[i] = x,
                Wrt::Param(i) => p[i] = x,
                Wrt::Time => t = x,
            }
            f(t, &u, &p)
        };
        let x0 = match w {
            Wrt::State(i) => u[i],
            Wrt::Param(i) => p[i],
            Wrt::Time => t,
        };
        let scale = x0.abs().max(1.0);
        let h = 1e-6 * scale;
        let (xp, xm) = (x0 + h, x0 - h);
        let (fp, fm) = (at(xp), at(xm));
        for r in 0..exprs.len() {
            let fd = (fp[r] - fm[r]) / (xp - xm);
            let got = dense[r * wrt.len() + c];
            let tol = 1e-6 * (1.0 + got.abs() + f0[r].abs() / scale);
            assert!(
                (got - fd).abs() <= tol,
                "{}: d expr {r} / d {w:?} = {got}, finite differences {fd} (tol {tol}) at t={t} u={u:?} p={p:?}",
                s.name()
            );
            if jac.index(r, c).is_none() {
                assert_eq!(got, 0.0);
            }
        }
    }
}

#[test]
fn every_builtin_system_matches_finite_differences() {
    for name in builtin_names() {
        let s = builtin(name).unwrap().unwrap();
        let mut wrt = all_states(&s);
        wrt.extend(all_params(&s));
        if s.inputs.is_empty() {
            wrt.push(Wrt::Time);
        }
        for k in 0..10 {
            let (t, u, p) = random_point(&s, 24, k);
            check_fd(&s, &s.rhs, &wrt, (t, &u, &p));
        }
    }
}

/// Every function of the language, integer powers of both signs, general powers in all
/// their forms, time and parameters inside functions, and auxiliaries built on auxiliaries.
const EVERY_FUNC: &str = "
a = sin(x)*cos(y) + tan(z)
b = asin(x) + acos(x/2) + atan(y*z)
c = atan2(y, x) + sinh(z) + cosh(x) + tanh(y - z) + a
e = exp(x*y) + log(y) + log2(z) + log10(x + y)
g = sqrt(x + z) + abs(x - y) + sign(y - x)*z + floor(4*x) + ceil(3*y) - abs(b)
h = min(x, y*z) + max(x*x, z) + clamp(x, y - 1, z) + clamp(y, 0.9, 1.1)
k = pow(x, y) + pow(x + y, y) + pow(2.5, z) + pow(x, q) + x^1.5 + pow(y, q*x)
dx = a*b + c^3 - e/g + q*t
dy = h^-2 + a^2*x + x^4/(1 + y^2) - sin(w*t)*k
dz = k*c - b + g/(1 + h^2) + min(t, x) + max(q, y) - 1/(x*z)
";

fn every_func() -> System {
    System::from_equations(
        "every_func",
        &[("x", 0.5), ("y", 1.0), ("z", 0.7)],
        &[("q", 1.3), ("w", 0.7)],
        EVERY_FUNC,
    )
    .unwrap()
}

#[test]
fn every_function_matches_finite_differences() {
    let s = every_func();
    let used: std::collections::HashSet<Func> = {
        let mut set = std::collections::HashSet::new();
        s.visit_nodes(&mut |n| {
            if let Node::Call(f, _) = n {
                set.insert(*f);
            }
        });
        set
    };
    assert_eq!(used.len(), Func::ALL.len(), "{used:?}");
    let wrt = [
        Wrt::State(0),
        Wrt::State(1),
        Wrt::State(2),
        Wrt::Param(0),
        Wrt::Param(1),
        Wrt::Time,
    ];
    for k in 0..40 {
        let r = |stream| uniform_f64(7, k, stream);
        let u = [0.2 + 0.6 * r(0), 0.5 + r(1), 0.3 + 0.9 * r(2)];
        let p = [1.3 + 0.2 * r(3), 0.7 + 0.2 * r(4)];
        let t = 2.0 * r(5);
        check_fd(&s, &s.rhs, &wrt, (t, &u, &p));
    }
}

#[test]
fn lorenz_sparsity_and_parameter_and_time_columns() {
    let s = builtin("lorenz").unwrap().unwrap();
    let j = jacobian(&s, &s.rhs, &all_states(&s)).unwrap();
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
    assert_eq!(j.index(0, 2), None);
    assert_eq!(j.index(1, 2), Some(4));
    // At (1, 2, 3), σ = 10, ρ = 28, β = 8/3: the textbook Jacobian, exactly (each entry is
    // one operation on these values or none).
    let p = [10.0, 28.0, 8.0 / 3.0];
    let dense = j.eval_dense(&s, 0.0, &[1.0, 2.0, 3.0], &p);
    let expected = [-10.0, 10.0, 0.0, 25.0, -1.0, -1.0, 2.0, 1.0, -8.0 / 3.0];
    assert_eq!(dense, expected);

    // d/dσ only in the first row, d/dρ in the second, d/dβ in the third.
    let jp = jacobian(&s, &s.rhs, &all_params(&s)).unwrap();
    assert_eq!(jp.entries, [(0, 0), (1, 1), (2, 2)]);
    assert_eq!(
        jp.eval_dense(&s, 0.0, &[1.0, 2.0, 3.0], &p),
        [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -3.0]
    );
    // Autonomous: no time column at all.
    let jt = jacobian(&s, &s.rhs, &[Wrt::Time]).unwrap();
    assert!(jt.entries.is_empty());
    for k in 0..10 {
        let (t, u, p) = random_point(&s, 3, k);
        let wrt = [Wrt::Param(0), Wrt::Param(1), Wrt::Param(2), Wrt::Time];
        check_fd(&s, &s.rhs, &wrt, (t, &u, &p));
    }
}

#[test]
fn duffing_parameter_and_time_columns() {
    let s = builtin("duffing").unwrap().unwrap();
    // dv = -delta*v - alpha*x - beta*x^3 + gamma*cos(omega*t)
    let jt = jacobian(&s, &s.rhs, &[Wrt::Time]).unwrap();
    assert_eq!(jt.entries, [(1, 0)]);
    let jp = jacobian(&s, &s.rhs, &all_params(&s)).unwrap();
    assert_eq!(jp.entries, [(1, 0), (1, 1), (1, 2), (1, 3), (1, 4)]);
    let (t, u, p) = (0.7, [0.3, -0.2], [0.3, -1.0, 1.0, 0.5, 1.2]);
    // d/dt = -gamma omega sin(omega t), to rounding.
    let dt = jt.eval_dense(&s, t, &u, &p)[1];
    assert!(
        (dt - (-0.5 * 1.2 * (1.2f64 * 0.7).sin())).abs() < 1e-15,
        "{dt}"
    );
    let mut wrt = all_params(&s);
    wrt.push(Wrt::Time);
    for k in 0..10 {
        let (t, u, p) = random_point(&s, 5, k);
        check_fd(&s, &s.rhs, &wrt, (t, &u, &p));
    }
}

#[test]
fn a_diagonal_system_has_only_diagonal_entries() {
    let s = System::from_equations(
        "diag",
        &[("x", 1.0), ("y", 1.0), ("z", 1.0)],
        &[("k", 2.0)],
        "r = k^2\ndx = -r*x^2\ndy = sin(y) + k\ndz = exp(z) - t\n",
    )
    .unwrap();
    let j = jacobian(&s, &s.rhs, &all_states(&s)).unwrap();
    assert_eq!(j.entries, [(0, 0), (1, 1), (2, 2)]);
    // r does not depend on the states, so no let holds its (zero) derivative.
    assert!(j.program.lets.is_empty(), "{:?}", j.program);
}

#[test]
fn auxiliary_derivatives_are_lets_built_once() {
    let s = System::from_equations(
        "chain",
        &[("x", 0.3), ("y", 0.4)],
        &[],
        "a = x*y\nb = sin(a)\nc = b*b + a\ndx = c\ndy = c*x + exp(b)\n",
    )
    .unwrap();
    let j = jacobian(&s, &s.rhs, &all_states(&s)).unwrap();
    assert_eq!(j.entries, [(0, 0), (0, 1), (1, 0), (1, 1)]);
    // dc/dx is used by both rows: it is a let, so no output repeats its tree.
    let dc_dx = &j.program.outputs[0];
    assert!(matches!(dc_dx, Node::Aux(i) if *i >= 3), "{dc_dx:?}");
    for k in 0..5 {
        let (t, u, p) = random_point(&s, 11, k);
        check_fd(&s, &s.rhs, &all_states(&s), (t, &u, &p));
    }
}

fn bin(op: BinOp, a: Node, b: Node) -> Node {
    Node::Bin(op, Box::new(a), Box::new(b))
}

#[test]
fn cse_hoists_a_repeated_subtree_and_keeps_every_value() {
    let s = builtin("lorenz").unwrap().unwrap();
    let shared = Node::Call(
        Func::Sin,
        vec![bin(BinOp::Mul, Node::State(0), Node::State(1))],
    );
    let program = Program {
        n_system_aux: 0,
        lets: vec![],
        outputs: vec![
            bin(BinOp::Add, shared.clone(), Node::Const(1.0)),
            bin(BinOp::Mul, shared.clone(), Node::Param(0)),
            Node::State(2),
        ],
    };
    let shared_program = program.clone().cse();
    // sin(x*y) is computed once; x*y only inside it, so it is not a let of its own.
    assert_eq!(shared_program.lets, [shared]);
    assert_eq!(
        shared_program.outputs,
        [
            bin(BinOp::Add, Node::Aux(0), Node::Const(1.0)),
            bin(BinOp::Mul, Node::Aux(0), Node::Param(0)),
            Node::State(2),
        ]
    );
    for k in 0..5 {
        let (t, u, p) = random_point(&s, 9, k);
        let (mut a, mut b) = ([0.0; 3], [0.0; 3]);
        program.eval(&s, t, &u, &p, &mut Vec::new(), &mut a);
        shared_program.eval(&s, t, &u, &p, &mut Vec::new(), &mut b);
        // The same operations in the same order: equal to the bit.
        assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits));
    }
}

#[test]
fn cse_drops_dead_lets_and_renumbers_the_rest() {
    let s = System::from_equations("one", &[("x", 1.0)], &[], "a = 2*x\ndx = a").unwrap();
    let square = bin(BinOp::Mul, Node::State(0), Node::State(0));
    let program = Program {
        n_system_aux: 1,
        // let 0 is dead; let 1 is x*x; let 2 uses let 1 and the system's aux.
        lets: vec![
            Node::Call(Func::Exp, vec![Node::State(0)]),
            square.clone(),
            bin(BinOp::Add, Node::Aux(2), Node::Aux(0)),
        ],
        outputs: vec![Node::Aux(3), bin(BinOp::Sub, Node::Aux(3), Node::Aux(2))],
    };
    let c = program.clone().cse();
    assert_eq!(
        c.lets,
        [square, bin(BinOp::Add, Node::Aux(1), Node::Aux(0))]
    );
    assert_eq!(
        c.outputs,
        [Node::Aux(2), bin(BinOp::Sub, Node::Aux(2), Node::Aux(1))]
    );
    let (mut a, mut b) = ([0.0; 2], [0.0; 2]);
    program.eval(&s, 0.0, &[1.5], &[], &mut Vec::new(), &mut a);
    c.eval(&s, 0.0, &[1.5], &[], &mut Vec::new(), &mut b);
    assert_eq!(a, b);
    // a = 2x = 3, let 1 = x^2 = 2.25, let 2 = 2.25 + 3.
    assert_eq!(a, [5.25, 3.0]);
}

#[test]
fn inputs_differentiate_where_they_are_read_at_t() {
    let s = builtin("forced_pendulum").unwrap().unwrap();
    // ds2 = -k*sin(s1) + u(t): u is a function of t alone.
    let j = jacobian(&s, &s.rhs, &all_states(&s)).unwrap();
    assert_eq!(j.entries, [(0, 1), (1, 0)]);
    let e = jacobian(&s, &s.rhs, &[Wrt::Time]).unwrap_err();
    assert_eq!(e, DeriveError::TimeThroughInput { input: "u".into() });
    assert!(e.to_string().contains("input 'u'"), "{e}");
    assert!(e.to_string().contains("time"), "{e}");
    // The sensor values after the parameters are not parameters.
    let e = jacobian(&s, &s.rhs, &[Wrt::Param(1)]).unwrap_err();
    assert!(matches!(e, DeriveError::BadVariable(_)), "{e}");
    assert!(e.to_string().contains("input values"), "{e}");
    assert!(jacobian(&s, &s.rhs, &[Wrt::State(2)]).is_err());

    let inputs = vec![Input::new("u", 10, (0.0, 1.0))];
    let read_at = |at: &str| {
        System::from_equations_with_inputs(
            "i",
            &[("x", 0.5)],
            &[("p", 0.1)],
            inputs.clone(),
            &format!("v = u({at})\ndx = v*x"),
        )
        .unwrap()
    };
    // Read at a state: no derivative with respect to that state, but one for p.
    let s = read_at("x");
    let e = jacobian(&s, &s.rhs, &[Wrt::State(0)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "input 'u' is read at a time that depends on state 'x'; inputs can only be \
         differentiated where they are read at t or at a constant time"
    );
    assert!(
        jacobian(&s, &s.rhs, &[Wrt::Param(0)])
            .unwrap()
            .entries
            .is_empty()
    );
    // Read at a constant time: constant in t as well.
    let s = read_at("0.5");
    let j = jacobian(&s, &s.rhs, &[Wrt::State(0), Wrt::Time]).unwrap();
    assert_eq!(j.entries, [(0, 0)]);
    let s = read_at("2*t");
    assert!(jacobian(&s, &s.rhs, &[Wrt::Time]).is_err());
}

#[test]
fn out_of_range_expressions_are_errors() {
    let s = builtin("lorenz").unwrap().unwrap();
    for bad in [Node::State(3), Node::Param(3), Node::Aux(0)] {
        let e = jacobian(&s, std::slice::from_ref(&bad), &[Wrt::State(0)]).unwrap_err();
        assert!(matches!(e, DeriveError::OutOfRange(_)), "{bad:?}: {e}");
    }
}

#[test]
fn program_of_evaluates_the_expressions_themselves() {
    let s = every_func();
    let exprs = [
        bin(BinOp::Mul, Node::Aux(6), Node::Param(0)),
        Node::State(1),
        Node::Const(0.25),
    ];
    let program = Program::of(&s, &exprs);
    let (u, p) = ([0.4, 0.9, 0.8], [1.3, 0.7]);
    let mut out = [0.0; 3];
    program.eval(&s, 0.5, &u, &p, &mut Vec::new(), &mut out);
    let mut aux = Vec::new();
    s.rhs_f64(0.5, &u, &p, &mut aux, &mut [0.0; 3]);
    assert_eq!(out, [aux[6] * 1.3, 0.9, 0.25]);
}

mod wgsl {
    use super::*;
    use crate::gpu::shader::{compose, validate};
    use crate::model::wgsl::{ProgramFn, emit_system, emit_system_with};
    use crate::ode::codegen::real_lib;
    use crate::precision::Precision;

    /// A stand-in for the kernels' `input_value`, which reads their parameter buffer.
    const INPUT_STUB: &str =
        "fn input_value(first: u32, m: u32, t0: real, inverse_spacing: real, t: real) -> real {
    return t0 + inverse_spacing * t + real(first + m);
}
";

    /// The status helpers and real-type library (as kernels include them), the system with its programs, and an entry point calling them.
    fn module(s: &System, programs: &[ProgramFn], precision: Precision) -> String {
        let mut m = compose("common/status.wgsl", &[]).unwrap();
        m.push_str(&real_lib(precision).unwrap());
        m.push_str(INPUT_STUB);
        m.push_str(&emit_system_with(s, programs, precision));
        m.push_str("\n@compute @workgroup_size(1)\nfn main() {\n");
        m.push_str("    let d = rhs(real(0.0), State(), Params());\n");
        for (k, f) in programs.iter().enumerate() {
            m.push_str(&format!(
                "    let o{k} = {}(real(0.0), State(), Params());\n",
                f.fn_name
            ));
        }
        m.push_str("}\n");
        m
    }

    fn jacobian_fn<'a>(j: &'a Jacobian, name: &'a str, s: &'a str) -> ProgramFn<'a> {
        ProgramFn {
            program: &j.program,
            fn_name: name,
            struct_name: s,
            fields: j.entries.iter().map(|(r, c)| format!("j{r}_{c}")).collect(),
        }
    }

    #[test]
    fn jacobians_emit_valid_wgsl_in_both_precisions() {
        let mut systems: Vec<System> = builtin_names()
            .into_iter()
            .map(|n| builtin(n).unwrap().unwrap())
            .collect();
        systems.push(every_func());
        for s in &systems {
            let js = jacobian(s, &s.rhs, &all_states(s)).unwrap();
            let jp = jacobian(s, &s.rhs, &all_params(s)).unwrap();
            let diffusion = Program::of(s, &s.rhs[..1]);
            let none = Program::of(s, &[]);
            let programs = [
                jacobian_fn(&js, "jac_u", "JacU"),
                jacobian_fn(&jp, "jac_p", "JacP"),
                ProgramFn {
                    program: &diffusion,
                    fn_name: "diffusion",
                    struct_name: "Diffusion",
                    fields: vec!["g0".into()],
                },
                ProgramFn {
                    program: &none,
                    fn_name: "nothing",
                    struct_name: "Nothing",
                    fields: vec![],
                },
            ];
            for precision in [Precision::F32, Precision::F64] {
                let plain = emit_system(s, precision);
                assert_eq!(emit_system_with(s, &[], precision), plain);
                let wgsl = module(s, &programs, precision);
                // The system's own functions are unchanged (programs may add powi helpers
                // before them).
                let with = emit_system_with(s, &programs, precision);
                let own = &plain[plain.find("fn break_after").unwrap()..];
                assert!(with.contains(own), "{}", s.name());
                let label = format!("{} jacobians", s.name());
                validate(&label, &wgsl, precision == Precision::F64)
                    .unwrap_or_else(|e| panic!("{e}\n{wgsl}"));
            }
        }
    }

    #[test]
    fn deep_expressions_differentiate_and_emit() {
        // The chain rule through 99 nested calls (the language's nesting limit is 100)
        // gives a product as deep as the expression; the emitter binds it to lets.
        let deep = format!("{}x{}", "sin(".repeat(99), ")".repeat(99));
        let s =
            System::from_equations("deep", &[("x", 0.3)], &[], &format!("dx = {deep}")).unwrap();
        let j = jacobian(&s, &s.rhs, &[Wrt::State(0)]).unwrap();
        for k in 0..5 {
            let (t, u, p) = random_point(&s, 13, k);
            check_fd(&s, &s.rhs, &[Wrt::State(0)], (t, &u, &p));
        }
        let f = jacobian_fn(&j, "jac", "Jac");
        for precision in [Precision::F32, Precision::F64] {
            let wgsl = module(&s, std::slice::from_ref(&f), precision);
            validate("deep jacobian", &wgsl, precision == Precision::F64)
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn program_functions_compute_aux_lets_then_outputs() {
        let s = System::from_equations(
            "chain",
            &[("x", 0.3), ("y", 0.4)],
            &[],
            "a = x*y\nb = sin(a)\ndx = b*b\ndy = b*x\n",
        )
        .unwrap();
        let j = jacobian(&s, &s.rhs, &all_states(&s)).unwrap();
        let w = emit_system_with(&s, &[jacobian_fn(&j, "jac", "Jac")], Precision::F64);
        let f = &w[w.find("fn jac(").unwrap()..];
        assert!(
            f.starts_with("fn jac(t: real, s: State, p: Params) -> Jac {\n"),
            "{f}"
        );
        assert!(f.contains("    let a0 = (s.x0 * s.x1); // a\n"), "{f}");
        assert!(f.contains("    let a1 = m64_sin(a0); // b\n"), "{f}");
        assert!(f.contains("    let a2 = "), "{f}");
        assert!(f.contains("    o.j1_1 = "), "{f}");
        assert!(f.ends_with("    return o;\n}\n"), "{f}");
        assert!(w.contains("struct Jac {\n    j0_0: real,\n"), "{w}");
    }
}
