//! WGSL for a system's right-hand side. The output uses the type alias `real` (defined by
//! the kernel template as f32 or f64) and never the user's names, so no user name can clash
//! with a WGSL keyword.
//!
//! Emitted items: `struct State { x0, x1, ... }`, `struct Params { p0, ... }`, one
//! `powi_N` helper per integer power used, and
//! `fn break_after(t: real, end: real) -> real` (where adaptive steps stop for inputs) and
//! `fn rhs(t: real, s: State, p: Params) -> State`. Inputs become calls of
//! `input_value(first_slot, sensors, t0, inverse_spacing, time)`, which each kernel defines
//! over its own parameter buffer (ode::codegen::accessors).

use super::derive::Program;
use super::expr::{BinOp, Func, Node, powi_steps};
use super::system::System;
use crate::precision::Precision;
use std::collections::BTreeSet;
use std::fmt::Write;

/// The system's WGSL for kernels computing in `precision`: f64 kernels call the f64 math
/// library (`m64_*`) for transcendental functions, which Vulkan lacks for f64.
pub fn emit_system(system: &System, precision: Precision) -> String {
    emit_system_with(system, &[], precision)
}

/// A `Program` (derive.rs) to emit as a WGSL function next to the system's `rhs`.
pub struct ProgramFn<'a> {
    pub program: &'a Program,
    pub fn_name: &'a str,
    pub struct_name: &'a str,
    /// One field name per output, in order.
    pub fields: Vec<String>,
}

/// emit_system plus one function per ProgramFn: `struct {struct_name} { {field}: real, ... }`
/// and `fn {fn_name}(t: real, s: State, p: Params) -> {struct_name}` computing the system's aux,
/// then the lets, then the outputs (field k = outputs[k]); one set of powi_N helpers for all.
/// With no ProgramFn it is byte-identical to emit_system.
pub fn emit_system_with(system: &System, extra: &[ProgramFn], precision: Precision) -> String {
    let mut out = String::new();
    // A comment holds one line: a name is checked when a file is read, and a System built
    // in code may hold anything.
    let shown: String = system
        .name()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let _ = writeln!(out, "// system '{shown}'");
    let fields = |prefix: &str, n: usize| -> String {
        (0..n)
            .map(|i| format!("    {prefix}{i}: real,\n"))
            .collect()
    };
    let _ = writeln!(out, "struct State {{\n{}}}\n", fields("x", system.dim()));
    // WGSL forbids empty structs; a system without parameters gets one unused member.
    let params = if system.n_params() == 0 {
        "    unused: real,\n".to_string()
    } else {
        fields("p", system.n_params())
    };
    let _ = writeln!(out, "struct Params {{\n{params}}}\n");

    let mut powers = BTreeSet::new();
    let mut power = |n: &Node| {
        if let Node::PowInt(_, k) = n
            && k.unsigned_abs() > 1
        {
            powers.insert(k.unsigned_abs());
        }
    };
    system.visit_nodes(&mut power);
    for f in extra {
        let p = f.program;
        p.lets
            .iter()
            .chain(&p.outputs)
            .for_each(|n| n.visit(&mut power));
    }
    for k in powers {
        out.push_str(&powi_function(k));
    }

    out.push_str(&break_after(system));
    let _ = writeln!(out, "fn rhs(t: real, s: State, p: Params) -> State {{");
    let mut emitter = Emitter {
        precision,
        lets: String::new(),
        next: 0,
    };
    system_aux(&mut out, &mut emitter, system);
    let _ = writeln!(out, "    var d: State;");
    for (i, r) in system.rhs.iter().enumerate() {
        let value = emitter.top(r);
        let _ = write!(out, "{}", std::mem::take(&mut emitter.lets));
        let _ = writeln!(out, "    d.x{i} = {value}; // d{}", system.states[i].name);
    }
    out.push_str("    return d;\n}\n");
    for f in extra {
        out.push_str(&program_function(f, system, precision));
    }
    out
}

/// `let a{i} = ...;` for each of the system's auxiliaries, as `rhs` begins.
fn system_aux(out: &mut String, emitter: &mut Emitter, system: &System) {
    for (i, a) in system.aux.iter().enumerate() {
        let value = emitter.top(&a.value);
        let _ = write!(out, "{}", std::mem::take(&mut emitter.lets));
        let _ = writeln!(out, "    let a{i} = {value}; // {}", a.name);
    }
}

/// A program's struct and function. Lets are named `a{n_system_aux + k}`, the name the
/// emitter gives `Node::Aux`, so they continue the system's auxiliaries.
fn program_function(f: &ProgramFn, system: &System, precision: Precision) -> String {
    let program = f.program;
    assert_eq!(
        f.fields.len(),
        program.outputs.len(),
        "{}: one field name per output",
        f.fn_name
    );
    let mut out = String::new();
    // WGSL forbids empty structs: a program without outputs gets one unused member.
    let fields: String = if f.fields.is_empty() {
        "    unused: real,\n".into()
    } else {
        f.fields
            .iter()
            .map(|n| format!("    {n}: real,\n"))
            .collect()
    };
    let (s, name) = (f.struct_name, f.fn_name);
    let _ = writeln!(out, "\nstruct {s} {{\n{fields}}}\n");
    let _ = writeln!(out, "fn {name}(t: real, s: State, p: Params) -> {s} {{");
    let mut emitter = Emitter {
        precision,
        lets: String::new(),
        next: 0,
    };
    system_aux(&mut out, &mut emitter, system);
    for (k, l) in program.lets.iter().enumerate() {
        let value = emitter.top(l);
        let _ = write!(out, "{}", std::mem::take(&mut emitter.lets));
        let _ = writeln!(out, "    let a{} = {value};", program.n_system_aux + k);
    }
    let _ = writeln!(out, "    var o: {s};");
    for (field, n) in f.fields.iter().zip(&program.outputs) {
        let value = emitter.top(n);
        let _ = write!(out, "{}", std::mem::take(&mut emitter.lets));
        let _ = writeln!(out, "    o.{field} = {value};");
    }
    out.push_str("    return o;\n}\n");
    out
}

/// `fn break_after(t, end) -> real`, the first sensor time of any input after `t` (or
/// `end`), computed as `Signal::next_sensor` does; adaptive kernels stop their steps there.
fn break_after(system: &System) -> String {
    let mut out = String::new();
    if !system.inputs.is_empty() {
        out.push_str(NEXT_SENSOR);
    }
    out.push_str("fn break_after(t: real, end: real) -> real {\n    var e = end;\n");
    for k in 0..system.inputs.len() {
        let s = system.signal(k);
        let _ = writeln!(
            out,
            "    e = next_sensor(t, {}, {}, {}, e);",
            literal(s.t0),
            literal(s.spacing()),
            literal((s.sensors - 1) as f64)
        );
    }
    out.push_str("    return e;\n}\n\n");
    out
}

const NEXT_SENSOR: &str =
    "fn next_sensor(t: real, t0: real, h: real, last: real, end: real) -> real {
    var k = max(floor((t - t0) / h), real(-1.0)) + real(1.0);
    if k > real(0.0) && t0 + (k - real(1.0)) * h > t {
        k -= real(1.0);
    }
    if t0 + k * h <= t {
        k += real(1.0);
    }
    if k > last {
        return end;
    }
    return min(t0 + k * h, end);
}

";

/// `x^k` by the same squarings and products as the f64 evaluator (`expr::powi`).
fn powi_function(k: u32) -> String {
    let (squarings, bits) = powi_steps(k);
    let mut body = String::from("    let q0 = x;\n");
    for j in 1..=squarings {
        let _ = writeln!(body, "    let q{j} = q{} * q{};", j - 1, j - 1);
    }
    let product = bits
        .iter()
        .map(|b| format!("q{b}"))
        .collect::<Vec<_>>()
        .join(" * ");
    format!("fn powi_{k}(x: real) -> real {{\n{body}    return {product};\n}}\n\n")
}

/// The most levels of nesting one emitted WGSL expression may have; a deeper subtree is
/// bound to a `let` first and used by name. naga's WGSL front end recurses on nested
/// expressions and gives up (or overflows its stack) long before the 100 levels the system
/// language allows (`parser::MAX_DEPTH`), and drivers have limits of their own; a chain of
/// `let`s is flat, whatever the depth of the equation. A `let` is only a name for a value,
/// so the operations and their rounding are the same as inline.
pub const INLINE_LEVELS: u32 = 8;

/// Emits the expressions of one `rhs` function: `lets` collects the bindings that must
/// precede the expression being emitted, `next` numbers them (`e0`, `e1`, ...) uniquely
/// within the function.
struct Emitter {
    precision: Precision,
    lets: String,
    next: usize,
}

impl Emitter {
    /// The WGSL expression of a whole right-hand side or auxiliary; the bindings it needs
    /// are left in `lets`.
    fn top(&mut self, n: &Node) -> String {
        self.expr(n).0
    }

    /// The WGSL for `n` and its nesting in levels (0 for a name or literal). Every compound
    /// is parenthesised, so WGSL's precedence rules never matter.
    fn expr(&mut self, n: &Node) -> (String, u32) {
        match n {
            Node::Const(v) => (self.constant(*v), 0),
            Node::State(i) => (format!("s.x{i}"), 0),
            Node::Param(i) => (format!("p.p{i}"), 0),
            Node::Aux(i) => (format!("a{i}"), 0),
            Node::Time => ("t".into(), 0),
            Node::Input(s, at) => {
                let (at, h) = self.operand(at);
                let text = format!(
                    "input_value({}u, {}u, {}, {}, {at})",
                    s.first,
                    s.sensors,
                    literal(s.t0),
                    literal(s.inverse_spacing()),
                );
                (text, h + 1)
            }
            Node::Neg(x) => {
                let (x, h) = self.operand(x);
                (format!("(-{x})"), h + 1)
            }
            Node::Bin(op, a, b) => {
                let o = match op {
                    BinOp::Add => "+",
                    BinOp::Sub => "-",
                    BinOp::Mul => "*",
                    BinOp::Div => "/",
                    BinOp::Pow => unreachable!("Pow is lowered before emission"),
                };
                let (a, ha) = self.operand(a);
                let (b, hb) = self.operand(b);
                (format!("({a} {o} {b})"), ha.max(hb) + 1)
            }
            Node::PowInt(x, k) => {
                if *k == 0 {
                    return ("real(1.0)".into(), 0);
                }
                let (x, h) = self.operand(x);
                let base = match k.unsigned_abs() {
                    1 => x,
                    m => format!("powi_{m}({x})"),
                };
                let text = if *k < 0 {
                    format!("(real(1.0) / {base})")
                } else {
                    base
                };
                (text, h + 1)
            }
            Node::Call(f, args) => {
                let mut h = 0;
                let mut a = Vec::with_capacity(args.len());
                for arg in args {
                    let (text, ha) = self.operand(arg);
                    h = h.max(ha);
                    a.push(text);
                }
                let text = match (f, self.precision) {
                    (Func::Log10, Precision::F32) => {
                        format!("(log({}) * real(0.4342944819032518))", a[0])
                    }
                    (f, Precision::F64) if f.needs_f64_library() => {
                        format!("m64_{}({})", f.name(), a.join(", "))
                    }
                    (f, _) => format!("{}({})", f.name(), a.join(", ")),
                };
                (text, h + 1)
            }
        }
    }

    /// A folded constant as this precision holds it. f32 kernels get the f32 value: WGSL
    /// refuses a literal that f32 cannot represent (`sinh(128)` folds to 1.9e55, `exp(-800)`
    /// to 0 in f64 but 1e-300 is no f32), and f32 arithmetic would have given the rounded
    /// value (infinity, zero) anyway.
    fn constant(&self, v: f64) -> String {
        match self.precision {
            Precision::F32 => literal(v as f32 as f64),
            Precision::F64 => literal(v),
        }
    }

    /// A child of a node: inline when shallow, else bound to a `let` and used by name.
    fn operand(&mut self, n: &Node) -> (String, u32) {
        let (text, levels) = self.expr(n);
        if levels < INLINE_LEVELS {
            return (text, levels);
        }
        let name = format!("e{}", self.next);
        self.next += 1;
        let _ = writeln!(self.lets, "    let {name} = {text};");
        (name, 0)
    }
}

/// The WGSL for one node, with the `let` bindings it needs before it (see `INLINE_LEVELS`).
pub fn expr(n: &Node, precision: Precision) -> (String, String) {
    let mut emitter = Emitter {
        precision,
        lets: String::new(),
        next: 0,
    };
    let text = emitter.top(n);
    (emitter.lets, text)
}

/// A literal that WGSL parses as the same number (shortest round-trip form); non-finite
/// folded constants are spelled by their bits, as WGSL has no literal for them.
pub fn literal(v: f64) -> String {
    if v.is_nan() {
        return "real(bitcast<f32>(0x7fc00000u))".into();
    }
    if v.is_infinite() {
        let bits = if v > 0.0 {
            "0x7f800000u"
        } else {
            "0xff800000u"
        };
        return format!("real(bitcast<f32>({bits}))");
    }
    let mut s = format!("{v:?}");
    if !s.contains(['.', 'e', 'E']) {
        s.push_str(".0");
    }
    format!("real({s})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_valid_wgsl_numbers() {
        assert_eq!(literal(10.0), "real(10.0)");
        assert_eq!(literal(-2.5), "real(-2.5)");
        assert_eq!(literal(1e-10), "real(1e-10)");
        assert_eq!(literal(8.0 / 3.0), "real(2.6666666666666665)");
    }

    #[test]
    fn powers_become_helpers() {
        let s = System::from_equations("p", &[("x", 1.0)], &[], "dx = x^5 - x^-2").unwrap();
        let w = emit_system(&s, Precision::F32);
        assert!(w.contains("fn powi_5(x: real) -> real"), "{w}");
        assert!(w.contains("let q2 = q1 * q1;"), "{w}");
        assert!(w.contains("return q0 * q2;"), "{w}");
        assert!(w.contains("(real(1.0) / powi_2(s.x0))"), "{w}");
        assert!(!w.contains("pow("), "{w}");
    }

    #[test]
    fn constants_beyond_f32_and_deep_nesting_give_valid_kernels() {
        use crate::gpu::shader::validate;
        use crate::ode::Solver;
        use crate::ode::fixed::kernel::fixed_step_wgsl;
        let deep = format!("{}x{}", "sin(".repeat(99), ")".repeat(99));
        let eqs = format!(
            "dx = sinh(128) - sinh(128) * x + 1e-38 * exp(-800) + 3e-42 + x*1e-45 + exp(-740)*x\ndy = {deep}\n"
        );
        let s = System::from_equations("c", &[("x", 1.0), ("y", 0.0)], &[], &eqs).unwrap();
        for precision in [Precision::F32, Precision::F64] {
            let f64 = precision == Precision::F64;
            let wgsl = fixed_step_wgsl(&s, &Solver::Rk4.step_tableau(), 64, precision).unwrap();
            validate("constants", &wgsl, f64).unwrap_or_else(|e| panic!("{e}"));
        }
        // No emitted expression nests deeper than INLINE_LEVELS calls.
        let w = emit_system(&s, Precision::F32);
        assert!(w.contains("let e0 = "), "{w}");
        let most = w.lines().map(|l| l.matches("sin(").count()).max().unwrap();
        assert!(most <= INLINE_LEVELS as usize, "{most}");
    }

    #[test]
    fn constant_operands_reach_no_math_function() {
        // naga evaluates calls of constants at compile time and has no f64 versions of
        // most math functions: `sqrt(real(1.0))` failed an f64 kernel.
        use crate::gpu::shader::validate;
        use crate::ode::Solver;
        use crate::ode::fixed::kernel::fixed_step_wgsl;
        let eqs = "c = 2*pi\nh = c\ndx = sqrt(x^0) + sin(c)*x + exp(h) + pow(2, x^0) + sqrt(c) + abs(h)*floor(c)\n";
        let s = System::from_equations("k", &[("x", 1.0)], &[], eqs).unwrap();
        for precision in [Precision::F32, Precision::F64] {
            let f64 = precision == Precision::F64;
            let wgsl = fixed_step_wgsl(&s, &Solver::Rk4.step_tableau(), 64, precision).unwrap();
            validate("constant operands", &wgsl, f64).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
