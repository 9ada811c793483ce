//! The Jacobian ∂f/∂u of a system's right-hand side, as the stiff solvers use it: the
//! symbolic one (`model::derive`), or one the user wrote in the system file, which is
//! resolved here and refused unless it agrees with the symbolic one.
//!
//! A hand-written Jacobian is a block of lines `d(dx)/d(y) = expression`, the derivative of
//! equation `dx` with respect to state `y`; entries not given are zero. Expressions are in
//! the equations' language and may use their auxiliaries. Since a wrong Jacobian would make
//! a stiff solver converge slowly or to nothing while looking plausible, every hand
//! Jacobian is evaluated next to the symbolic one at `CHECK_POINTS` points near the
//! defaults, and the first entry that differs is reported where it is written.

use super::derive::{DeriveError, Jacobian, Program, Wrt, jacobian};
use super::diagnostic::{Diagnostic, Diagnostics, Source, did_you_mean};
use super::expr::Node;
use super::parser::{JacobianLine, parse_jacobian_lines};
use super::print::{number, print_node};
use super::resolve::Resolver;
use super::system::{HandJacobian, System};
use crate::rng::uniform_f64;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

/// Points at which a hand Jacobian is compared with the symbolic one.
pub const CHECK_POINTS: u64 = 8;

/// How closely a hand entry must match the symbolic one: |a - b| ≤ CHECK_RTOL · max(|a|,
/// |b|, 1). Two correct forms of one derivative differ by a few roundings of the terms they
/// add (1e-16 relative each, more where terms cancel); a wrong coefficient, sign or
/// variable misses by far more than 1e-8.
pub const CHECK_RTOL: f64 = 1e-8;

impl System {
    /// ∂f/∂u over every state, sparse: the hand-written Jacobian when the system has one
    /// (checked against the symbolic one when it was loaded), else the symbolic one,
    /// simplified and CSE'd.
    pub fn state_jacobian(&self) -> Result<Jacobian, DeriveError> {
        match &self.hand_jacobian {
            Some(hand) => Ok(hand.jacobian(self)),
            None => self.symbolic_state_jacobian(),
        }
    }

    /// ∂f/∂u derived from the equations, whether or not a hand Jacobian is given.
    pub fn symbolic_state_jacobian(&self) -> Result<Jacobian, DeriveError> {
        let states: Vec<Wrt> = (0..self.dim()).map(Wrt::State).collect();
        jacobian(self, &self.rhs, &states)
    }

    /// ∂f/∂t as a single column (`dim` rows), derived from the equations: no entries for an
    /// autonomous system; an error when f depends on time through an input.
    pub fn time_jacobian(&self) -> Result<Jacobian, DeriveError> {
        jacobian(self, &self.rhs, &[Wrt::Time])
    }

    /// The system with a hand-written Jacobian (the lines of a `jacobian` block), resolved
    /// and checked as a system file's is; e.g. for tests and the library API.
    pub fn with_hand_jacobian(mut self, text: &str) -> Result<System, Diagnostics> {
        let source = Source::new(format!("<{} jacobian>", self.name()), text);
        self.hand_jacobian = Some(resolve_hand_jacobian(&self, &source, 0..text.len())?);
        Ok(self)
    }
}

impl HandJacobian {
    /// As a `derive::Jacobian` with the given sparsity, its program computing the given
    /// expressions (after the system's auxiliaries, shared subexpressions computed once).
    pub fn jacobian(&self, system: &System) -> Jacobian {
        let program = Program {
            n_system_aux: system.aux.len(),
            lets: Vec::new(),
            outputs: self.values.clone(),
        }
        .cse();
        Jacobian {
            rows: system.dim(),
            cols: system.dim(),
            entries: self.entries.clone(),
            program,
        }
    }
}

/// Resolves the Jacobian block `source.text[range]` against `system` and checks it against
/// the symbolic Jacobian. Every problem points into the block: syntax, names, duplicate
/// entries and the first entry that does not match.
pub fn resolve_hand_jacobian(
    system: &System,
    source: &Arc<Source>,
    range: Range<usize>,
) -> Result<HandJacobian, Diagnostics> {
    let lines = parse_jacobian_lines(source, range.clone()).map_err(Diagnostics)?;
    let mut r = Resolver::new(source, &system.states, &system.params, &system.inputs);
    for (i, def) in system.aux.iter().enumerate() {
        r.aux_names.entry(def.name.clone()).or_insert(i);
    }
    let mut aux_used = vec![false; system.aux.len()];
    if lines.is_empty() {
        let end = range.end.min(range.start + 1);
        r.error(
            "the jacobian block has no lines",
            range.start..end,
            Some(
                "write one line per non-zero entry, e.g. d(dx)/d(y) = sigma, or remove 'jacobian'"
                    .into(),
            ),
        );
    }
    // (row, col) → (value, span of its line's target).
    let mut given: HashMap<(usize, usize), (Node, Range<usize>)> = HashMap::new();
    for line in &lines {
        let row = row_of(&mut r, system, line);
        let col = col_of(&mut r, system, line);
        let value = r.expr(&line.value, &mut aux_used);
        let (Some(row), Some(col), Some(value)) = (row, col, value) else {
            continue;
        };
        if let Some((_, first)) = given.get(&(row, col)) {
            let (first_line, _) = source.line_col(first.start);
            r.error(
                format!(
                    "a second entry for d(d{})/d({})",
                    system.states[row].name, system.states[col].name
                ),
                line.target_span.clone(),
                Some(format!("the first one is on line {first_line}; keep one")),
            );
            continue;
        }
        given.insert((row, col), (value.fold(), line.target_span.clone()));
    }
    if !r.errors.is_empty() {
        return Err(Diagnostics(r.errors));
    }
    let mut keys: Vec<(usize, usize)> = given.keys().copied().collect();
    keys.sort_unstable();
    let spans: HashMap<(usize, usize), Range<usize>> =
        keys.iter().map(|k| (*k, given[k].1.clone())).collect();
    // An entry written as a constant 0 is a structural zero, as if left out.
    let (entries, values): (Vec<_>, Vec<_>) = keys
        .into_iter()
        .map(|k| (k, given[&k].0.clone()))
        .filter(|(_, v)| !matches!(v, Node::Const(z) if *z == 0.0))
        .unzip();
    let hand = HandJacobian {
        entries,
        values,
        text: source.text[range.clone()].trim_matches('\n').to_string(),
    };
    check(system, &hand, source, &range, &spans)?;
    Ok(hand)
}

/// The state whose equation `line.row` (`dx`) names, or `None` after reporting why not.
fn row_of(r: &mut Resolver, system: &System, line: &JacobianLine) -> Option<usize> {
    let names: Vec<&str> = system.states.iter().map(|v| v.name.as_str()).collect();
    let equations: Vec<String> = names.iter().map(|n| format!("d{n}")).collect();
    if let Some(i) = line
        .row
        .strip_prefix('d')
        .and_then(|rest| names.iter().position(|n| *n == rest))
    {
        return Some(i);
    }
    let (message, hint) = if names.contains(&line.row.as_str()) {
        (
            format!("'{}' is a state; its equation is 'd{}'", line.row, line.row),
            format!(
                "write d(d{})/d({}) for the derivative of equation d{} with respect to {}",
                line.row, line.col, line.row, line.col
            ),
        )
    } else {
        let hint = match did_you_mean(&line.row, equations.iter().map(String::as_str)) {
            Some(m) => format!(
                "did you mean '{m}'? The equations are: {}",
                equations.join(", ")
            ),
            None => format!("the equations are: {}", equations.join(", ")),
        };
        (
            format!("'{}' is not an equation of the system", line.row),
            hint,
        )
    };
    r.error(message, line.row_span.clone(), Some(hint));
    None
}

/// The state `line.col` names, or `None` after reporting why not.
fn col_of(r: &mut Resolver, system: &System, line: &JacobianLine) -> Option<usize> {
    if let Some(i) = system.state_index(&line.col) {
        return Some(i);
    }
    let names: Vec<&str> = system.states.iter().map(|v| v.name.as_str()).collect();
    let (message, hint) = if line.col == "t" {
        (
            "only derivatives with respect to states can be given".to_string(),
            "∂f/∂t is always derived from the equations".to_string(),
        )
    } else if system.param_index(&line.col).is_some() {
        (
            format!(
                "'{}' is a parameter; only derivatives with respect to states can be given",
                line.col
            ),
            format!("the states are: {}", names.join(", ")),
        )
    } else {
        let hint = match did_you_mean(&line.col, names.iter().copied()) {
            Some(m) => format!("did you mean '{m}'? The states are: {}", names.join(", ")),
            None => format!("the states are: {}", names.join(", ")),
        };
        (format!("'{}' is not a state of the system", line.col), hint)
    };
    r.error(message, line.col_span.clone(), Some(hint));
    None
}

/// Point `k` of the check: states and parameters `d·(1 + 0.1r) + 0.1r` around their
/// defaults `d` (r uniform in [-1, 1), fresh for each value), so that zero defaults and
/// products of defaults are moved too; input values likewise around their defaults; `t`
/// inside the suggested span (or within 0.1 of 0).
fn check_point(system: &System, k: u64) -> (f64, Vec<f64>, Vec<f64>) {
    let mut stream = 0u32;
    let mut next = || {
        stream += 1;
        2.0 * uniform_f64(0x6a61_636f, k, stream) - 1.0
    };
    let mut around = |d: f64| d * (1.0 + 0.1 * next()) + 0.1 * next();
    let u: Vec<f64> = system
        .default_state()
        .into_iter()
        .map(&mut around)
        .collect();
    let p: Vec<f64> = system
        .default_params()
        .into_iter()
        .chain(system.default_inputs())
        .map(&mut around)
        .collect();
    let r = 0.5 * (next() + 1.0);
    let t = match system.meta.tspan {
        Some((a, b)) => a + r * (b - a),
        None => 0.1 * (2.0 * r - 1.0),
    };
    (t, u, p)
}

/// Whether a hand value `a` matches the symbolic `b`; `None` where the symbolic value is
/// not finite (outside the equations' domain, e.g. a square root of a negative state),
/// where nothing can be compared.
fn matches(a: f64, b: f64) -> Option<bool> {
    if !b.is_finite() {
        return None;
    }
    Some(a.is_finite() && (a - b).abs() <= CHECK_RTOL * a.abs().max(b.abs()).max(1.0))
}

fn check(
    system: &System,
    hand: &HandJacobian,
    source: &Arc<Source>,
    range: &Range<usize>,
    spans: &HashMap<(usize, usize), Range<usize>>,
) -> Result<(), Diagnostics> {
    let block = range.start..range.end.min(range.start + 1);
    let symbolic = system.symbolic_state_jacobian().map_err(|e| {
        Diagnostic::new(
            format!("the hand Jacobian cannot be checked: {e}"),
            source,
            block.clone(),
        )
        .with_hint("remove 'jacobian'; a hand Jacobian is only used once it is checked")
    })?;
    let hand_jacobian = hand.jacobian(system);
    let n = system.dim();
    let name = |i: usize| system.states[i].name.as_str();
    let entry = |(r, c): (usize, usize)| format!("d(d{})/d({})", name(r), name(c));
    let symbolic_text = |e: (usize, usize)| match symbolic.index(e.0, e.1) {
        Some(k) => symbolic_entry(system, &symbolic.program, k),
        None => "0".to_string(),
    };
    let mut compared = vec![false; n * n];
    for k in 0..CHECK_POINTS {
        let (t, u, p) = check_point(system, k);
        let a = hand_jacobian.eval_dense(system, t, &u, &p);
        let b = symbolic.eval_dense(system, t, &u, &p);
        for (i, (&a, &b)) in a.iter().zip(&b).enumerate() {
            let e = (i / n, i % n);
            match matches(a, b) {
                None => continue,
                Some(true) => compared[i] = true,
                Some(false) => {
                    let at = point_text(system, k, (t, &u, &p));
                    let d = match spans.get(&e) {
                        Some(span) => Diagnostic::new(
                            format!(
                                "{} does not match the equations: it is {} where the \
                                 derivative of the equations is {} (at {at})",
                                entry(e),
                                number(a),
                                number(b)
                            ),
                            source,
                            span.clone(),
                        ),
                        // Pointed at the row's first entry, where the missing one
                        // belongs, or at the block when the row has none.
                        None => Diagnostic::new(
                            format!(
                                "the hand Jacobian has no entry {}, but the derivative of \
                                 the equations is not zero there: it is {} (at {at})",
                                entry(e),
                                number(b)
                            ),
                            source,
                            hand.entries
                                .iter()
                                .find(|(r, _)| *r == e.0)
                                .and_then(|k| spans.get(k).cloned())
                                .unwrap_or_else(|| block.clone()),
                        ),
                    };
                    return Err(d
                        .with_hint(format!(
                            "the equations give {} = {}",
                            entry(e),
                            symbolic_text(e)
                        ))
                        .into());
                }
            }
        }
    }
    // An entry compared nowhere was not checked at all: refuse rather than trust it.
    if let Some(i) = (0..n * n).find(|&i| {
        !compared[i]
            && (hand.entries.contains(&(i / n, i % n)) || symbolic.index(i / n, i % n).is_some())
    }) {
        let e = (i / n, i % n);
        let span = spans.get(&e).cloned().unwrap_or(block);
        return Err(Diagnostic::new(
            format!(
                "{} cannot be checked: the derivative of the equations is not finite at any \
                 of the {CHECK_POINTS} test points near the defaults",
                entry(e)
            ),
            source,
            span,
        )
        .with_hint(
            "change the states' or parameters' defaults to values inside the equations' domain",
        )
        .into());
    }
    Ok(())
}

/// Symbolic entry `k` as text with every let written out, for a message.
fn symbolic_entry(system: &System, program: &Program, k: usize) -> String {
    let mut lets: Vec<Node> = Vec::with_capacity(program.lets.len());
    let n_sys = program.n_system_aux;
    for l in &program.lets {
        let inlined = substitute(l, n_sys, &lets);
        lets.push(inlined);
    }
    print_node(system, &substitute(&program.outputs[k], n_sys, &lets))
}

/// `n` with every reference to a let (Aux(i), i ≥ n_sys) replaced by the let's tree.
fn substitute(n: &Node, n_sys: usize, lets: &[Node]) -> Node {
    let s = |x: &Node| Box::new(substitute(x, n_sys, lets));
    match n {
        Node::Aux(i) if *i >= n_sys => lets.get(i - n_sys).cloned().unwrap_or(Node::Aux(*i)),
        Node::Neg(x) => Node::Neg(s(x)),
        Node::Bin(op, a, b) => Node::Bin(*op, s(a), s(b)),
        Node::PowInt(x, k) => Node::PowInt(s(x), *k),
        Node::Call(f, args) => Node::Call(
            *f,
            args.iter().map(|a| substitute(a, n_sys, lets)).collect(),
        ),
        Node::Input(signal, at) => Node::Input(*signal, s(at)),
        leaf => leaf.clone(),
    }
}

/// A point of the check, for a message: its values when there are few, else its number.
fn point_text(system: &System, k: u64, (t, u, p): (f64, &[f64], &[f64])) -> String {
    if system.dim() + system.n_params() > 10 {
        return format!("test point {} of {CHECK_POINTS} near the defaults", k + 1);
    }
    let mut parts: Vec<String> = system
        .states
        .iter()
        .zip(u)
        .chain(system.params.iter().zip(p))
        .map(|(v, x)| format!("{} = {x}", v.name))
        .collect();
    if system.uses_time() {
        parts.push(format!("t = {t}"));
    }
    parts.join(", ")
}
