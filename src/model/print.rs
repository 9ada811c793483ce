//! Resolved expressions back to text in the system language, for people: states,
//! parameters, inputs and auxiliaries by their names, numbers in their shortest exact form,
//! and only the parentheses the parser needs to rebuild the same operations in the same
//! order, so that the text parsed back evaluates to the same value, to the bit. (The one
//! liberty: `-(a*b)` is written `-a*b`, which parses as `(-a)*b`, equal to the bit.)
//!
//! Precedence, loosest first, as `model::parser` reads it: `+ -` (left-associative),
//! `* /` (left-associative), unary `-`, `^` (right-associative, its exponent a unary).

use super::derive::Program;
use super::expr::{BinOp, Node};
use super::system::{System, Var};
use std::collections::HashSet;

/// Binding strength of what an operand is printed as; an operand weaker than its position
/// needs parentheses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Prec {
    Sum = 1,
    Product = 2,
    Unary = 3,
    Power = 4,
    Atom = 5,
}

/// A program's lets (see `derive::Program`) as a printer shows them: substituted into the
/// one expression that uses them, or under a name of their own.
#[derive(Debug, Clone)]
enum Let {
    Inline(Node),
    Named(String),
}

/// Prints nodes of one system (and, optionally, the lets of one of its programs).
pub struct Printer<'a> {
    system: &'a System,
    lets: Vec<Let>,
}

/// A program as text: the temporaries its outputs share (name and expression, in the order
/// they are computed) and one expression per output.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramText {
    pub temporaries: Vec<(String, String)>,
    pub outputs: Vec<String>,
}

/// `n` as text, over the system's names.
pub fn print_node(system: &System, n: &Node) -> String {
    Printer::new(system).print(n)
}

/// Longest text of a shared let that is still written out at each use: repeating `k2*(2*y2)`
/// reads more easily than looking up a temporary.
const SHORT: usize = 20;

/// A program's outputs as text. A let used once, or short (`SHORT`), is written out where it
/// is used; a longer one used more than once (a shared subexpression) is printed once as a
/// temporary `j1`, `j2`, ... (another prefix if the system already has such names), and
/// referred to by that name.
pub fn print_program(system: &System, program: &Program) -> ProgramText {
    let n_sys = program.n_system_aux;
    let mut uses = vec![0usize; program.lets.len()];
    for n in program.lets.iter().chain(&program.outputs) {
        n.visit(&mut |x| {
            if let Node::Aux(i) = x
                && *i >= n_sys
                && let Some(u) = uses.get_mut(i - n_sys)
            {
                *u += 1;
            }
        });
    }
    let prefix = temporary_prefix(system, program.lets.len());
    let mut printer = Printer::new(system);
    let mut temporaries = Vec::new();
    for (k, value) in program.lets.iter().enumerate() {
        // Lets refer only to earlier lets, which `printer` already knows.
        let text = printer.print(value);
        if uses[k] <= 1 || text.len() <= SHORT {
            printer.lets.push(Let::Inline(value.clone()));
        } else {
            let name = format!("{prefix}{}", temporaries.len() + 1);
            temporaries.push((name.clone(), text));
            printer.lets.push(Let::Named(name));
        }
    }
    let outputs = program.outputs.iter().map(|n| printer.print(n)).collect();
    ProgramText {
        temporaries,
        outputs,
    }
}

/// The first of `j`, `tmp`, `tmp_` ... that, followed by 1 ..= count, names nothing in the
/// system, so a temporary is never mistaken for a state, parameter or auxiliary.
fn temporary_prefix(system: &System, count: usize) -> String {
    let taken: HashSet<&str> = system
        .states
        .iter()
        .chain(&system.params)
        .map(|v| v.name.as_str())
        .chain(system.inputs.iter().map(|i| i.name.as_str()))
        .chain(system.aux.iter().map(|a| a.name.as_str()))
        .collect();
    let free = |p: &str| (1..=count).all(|k| !taken.contains(format!("{p}{k}").as_str()));
    let mut prefix = "j".to_string();
    if free(&prefix) {
        return prefix;
    }
    prefix = "tmp".into();
    while !free(&prefix) {
        prefix.push('_');
    }
    prefix
}

impl<'a> Printer<'a> {
    pub fn new(system: &'a System) -> Printer<'a> {
        Printer {
            system,
            lets: Vec::new(),
        }
    }

    pub fn print(&self, n: &Node) -> String {
        let mut out = String::new();
        self.write(n, &mut out);
        out
    }

    /// How `n` binds as an operand.
    fn prec(&self, n: &Node) -> Prec {
        match n {
            Node::Const(v) if v.is_sign_negative() && !v.is_nan() => Prec::Unary,
            Node::Neg(_) => Prec::Unary,
            Node::Bin(BinOp::Add | BinOp::Sub, ..) => Prec::Sum,
            Node::Bin(..) => Prec::Product,
            Node::PowInt(..) => Prec::Power,
            Node::Aux(i) => match self.let_of(*i) {
                Some(Let::Inline(x)) => self.prec(x),
                _ => Prec::Atom,
            },
            _ => Prec::Atom,
        }
    }

    fn let_of(&self, aux: usize) -> Option<&Let> {
        aux.checked_sub(self.system.aux.len())
            .and_then(|k| self.lets.get(k))
    }

    /// Writes `n`, in parentheses when it binds less tightly than `min`.
    fn operand(&self, n: &Node, min: Prec, out: &mut String) {
        if self.prec(n) < min {
            out.push('(');
            self.write(n, out);
            out.push(')');
        } else {
            self.write(n, out);
        }
    }

    fn write(&self, n: &Node, out: &mut String) {
        match n {
            Node::Const(v) => out.push_str(&number(*v)),
            Node::State(i) => out.push_str(&self.name(self.system.states.get(*i), "x", *i)),
            Node::Param(i) => out.push_str(&self.name(self.system.params.get(*i), "p", *i)),
            Node::Time => out.push('t'),
            Node::Aux(i) => match (self.system.aux.get(*i), self.let_of(*i)) {
                (Some(a), _) => out.push_str(&a.name),
                (None, Some(Let::Inline(x))) => self.write(x, out),
                (None, Some(Let::Named(name))) => out.push_str(name),
                (None, None) => out.push_str(&format!("aux{i}")),
            },
            Node::Neg(x) => {
                out.push('-');
                // `-a*b` parses as `(-a)*b`, another tree but the same value to the bit
                // (negation is exact and commutes with `*` and `/`), so a product needs no
                // parentheses; a sum does. `--x` parses, but `-(-x)` reads better.
                let min = if matches!(self.prec(x), Prec::Unary) {
                    Prec::Power
                } else {
                    Prec::Product
                };
                self.operand(x, min, out);
            }
            Node::Bin(op, a, b) => {
                let (symbol, prec) = match op {
                    BinOp::Add => (" + ", Prec::Sum),
                    BinOp::Sub => (" - ", Prec::Sum),
                    BinOp::Mul => ("*", Prec::Product),
                    BinOp::Div => ("/", Prec::Product),
                    BinOp::Pow => ("^", Prec::Power),
                };
                // Left-associative: the left operand may be as loose as the operator, the
                // right one must bind tighter. A negative right operand is bracketed for
                // the eye (`a - (-b)`, `a*(-b)`), though the parser would take it bare.
                self.operand(a, prec, out);
                out.push_str(symbol);
                if self.prec(b) == Prec::Unary {
                    out.push('(');
                    self.write(b, out);
                    out.push(')');
                } else {
                    let right = if prec == Prec::Sum {
                        Prec::Product
                    } else {
                        Prec::Power
                    };
                    self.operand(b, right, out);
                }
            }
            Node::PowInt(x, k) => {
                // Right-associative: a power as the base needs parentheses.
                self.operand(x, Prec::Atom, out);
                out.push('^');
                out.push_str(&k.to_string());
            }
            Node::Call(f, args) => {
                out.push_str(f.name());
                out.push('(');
                for (k, a) in args.iter().enumerate() {
                    if k > 0 {
                        out.push_str(", ");
                    }
                    self.write(a, out);
                }
                out.push(')');
            }
            Node::Input(signal, at) => {
                let name = (0..self.system.inputs.len())
                    .find(|&k| self.system.signal(k).first == signal.first)
                    .map_or("input", |k| self.system.inputs[k].name.as_str());
                out.push_str(name);
                out.push('(');
                self.write(at, out);
                out.push(')');
            }
        }
    }

    /// A state's or parameter's name; an index the system lacks (a bug elsewhere) prints
    /// as `x3` or `p3` rather than panicking.
    fn name(&self, var: Option<&'a Var>, kind: &str, i: usize) -> String {
        var.map_or_else(|| format!("{kind}{i}"), |v| v.name.clone())
    }
}

/// A number as the language writes it, exactly: Rust's shortest round-trip form, in
/// exponent notation when that is at least three characters shorter (`3e7`, `4.44e11`,
/// `8.375e-6`, but `10000` and `0.0007`), and `pi` for π.
pub fn number(v: f64) -> String {
    if v == std::f64::consts::PI {
        return "pi".into();
    }
    if v == -std::f64::consts::PI {
        return "-pi".into();
    }
    if !v.is_finite() {
        // Not in the language (only a constant folded from e.g. log(-1) can be one).
        return format!("{v}");
    }
    let plain = format!("{v}");
    let exp = format!("{v:e}");
    if exp.len() + 3 <= plain.len() {
        exp
    } else {
        plain
    }
}
