//! Name resolution of equations (and noise blocks): names become state, parameter, input
//! and auxiliary indices, with every mistake reported as a diagnostic pointing into the
//! source.

use super::diagnostic::{Diagnostic, Diagnostics, Source, did_you_mean};
use super::expr::{BinOp, Func, MAX_UNROLLED_POWER, Node};
use super::parser::{Expr, ExprKind, Statement, Target};
use super::signal::{Input, Signal};
use super::var::{AuxDef, RESERVED, Var};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

/// Resolves a single expression whose names are `inputs` (as parameters) and `pi`.
pub(crate) fn resolve_expression(
    source: &Arc<Source>,
    expr: &Expr,
    inputs: &[Var],
) -> Result<Node, Diagnostics> {
    let mut r = Resolver::new(source, &[], inputs, &[]);
    let node = r.expr(expr, &mut []);
    match node {
        Some(n) if r.errors.is_empty() => Ok(n.fold()),
        _ => Err(Diagnostics(r.errors)),
    }
}

/// Resolves names in one source; `model::noise` uses it for noise blocks too.
pub(super) struct Resolver<'a> {
    source: &'a Arc<Source>,
    pub(super) states: &'a [Var],
    params: &'a [Var],
    inputs: &'a [Input],
    /// Auxiliaries defined so far: name → index.
    pub(super) aux_names: HashMap<String, usize>,
    /// Auxiliaries defined on a later line: name → span of that definition.
    later_aux: HashMap<String, Range<usize>>,
    /// State index → span of its equation's target.
    equation_targets: HashMap<usize, Range<usize>>,
    pub(super) errors: Vec<Diagnostic>,
}

enum Role {
    Equation(usize),
    Aux(String),
}

impl<'a> Resolver<'a> {
    pub(super) fn new(
        source: &'a Arc<Source>,
        states: &'a [Var],
        params: &'a [Var],
        inputs: &'a [Input],
    ) -> Resolver<'a> {
        Resolver {
            source,
            states,
            params,
            inputs,
            aux_names: HashMap::new(),
            later_aux: HashMap::new(),
            equation_targets: HashMap::new(),
            errors: Vec::new(),
        }
    }

    pub(super) fn error(
        &mut self,
        message: impl Into<String>,
        span: Range<usize>,
        hint: Option<String>,
    ) {
        let mut d = Diagnostic::new(message, self.source, span);
        d.hint = hint;
        self.errors.push(d);
    }

    fn declaration_error(&mut self, message: String, var: &Var, hint: &str) {
        let mut d = match &var.span {
            Some(s) => Diagnostic::new(message, self.source, s.clone()),
            None => Diagnostic::bare(message),
        };
        d.hint = Some(hint.to_string());
        self.errors.push(d);
    }

    pub(super) fn check_declarations(&mut self) {
        if self.states.is_empty() {
            self.errors.push(
                Diagnostic::bare("the system has no states")
                    .with_hint("declare them, e.g. states = { x = 1.0 }"),
            );
        }
        let mut seen: HashMap<&str, &str> = HashMap::new();
        let input_vars: Vec<Var> = self
            .inputs
            .iter()
            .map(|i| Var {
                name: i.name.clone(),
                default: i.default,
                span: i.span.clone(),
            })
            .collect();
        for (input, var) in self.inputs.iter().zip(&input_vars) {
            if let Some(problem) = input.problem() {
                self.declaration_error(
                    problem,
                    var,
                    "inputs = { u = { sensors = 100, span = [0.0, 1.0] } }",
                );
            }
        }
        let all = self
            .states
            .iter()
            .map(|v| (v, "state"))
            .chain(self.params.iter().map(|v| (v, "parameter")))
            .chain(input_vars.iter().map(|v| (v, "input")));
        for (var, kind) in all {
            let name = var.name.as_str();
            if !is_identifier(name) {
                self.declaration_error(
                    format!("'{name}' is not a valid {kind} name"),
                    var,
                    "names start with a letter or '_' and contain only letters, digits and '_'",
                );
            } else if RESERVED.contains(&name) {
                self.declaration_error(
                    format!("'{name}' is reserved and cannot be a {kind}"),
                    var,
                    "'t' is time and 'pi' is 3.14159...; choose another name",
                );
            } else if Func::from_name(name).is_some() {
                self.declaration_error(
                    format!("'{name}' is a built-in function and cannot be a {kind}"),
                    var,
                    "choose another name",
                );
            } else if let Some(prev) = seen.insert(name, kind) {
                self.declaration_error(
                    format!("'{name}' is declared twice (as a {prev} and as a {kind})"),
                    var,
                    "each name may be declared once",
                );
            }
        }
    }

    /// The auxiliaries and right-hand sides, with which auxiliaries were used and where
    /// each is defined (for `check_unused_derivative_names`).
    #[allow(clippy::type_complexity)]
    pub(super) fn resolve(
        &mut self,
        statements: &[Statement],
        range: Range<usize>,
    ) -> (Vec<AuxDef>, Vec<Option<Node>>, Vec<bool>, Vec<Range<usize>>) {
        let mut aux = Vec::new();
        let mut rhs: Vec<Option<Node>> = vec![None; self.states.len()];
        let mut aux_used = Vec::new();
        let mut aux_spans: Vec<Range<usize>> = Vec::new();

        // Roles first, so a name used before its definition gets the right message.
        let roles: Vec<Option<Role>> = statements.iter().map(|s| self.role(s)).collect();
        for (s, role) in statements.iter().zip(&roles) {
            if let Some(Role::Aux(name)) = role {
                self.later_aux
                    .entry(name.clone())
                    .or_insert(s.target_span.clone());
            }
        }

        for (s, role) in statements.iter().zip(roles) {
            let Some(role) = role else { continue };
            let value = self.expr(&s.value, &mut aux_used);
            match role {
                Role::Equation(i) => {
                    if let Some(first) = self.equation_targets.get(&i).cloned() {
                        let (line, _) = self.source.line_col(first.start);
                        self.error(
                            format!("a second equation for state '{}'", self.states[i].name),
                            s.target_span.clone(),
                            Some(format!("the first one is on line {line}; keep one")),
                        );
                    } else {
                        self.equation_targets.insert(i, s.target_span.clone());
                        rhs[i] = value.map(Node::fold);
                    }
                }
                Role::Aux(name) => {
                    if let Some(&first_index) = self.aux_names.get(&name) {
                        let first: Range<usize> = aux_spans[first_index].clone();
                        let (line, _) = self.source.line_col(first.start);
                        self.error(
                            format!("'{name}' is defined twice"),
                            s.target_span.clone(),
                            Some(format!("the first definition is on line {line}")),
                        );
                        continue;
                    }
                    self.later_aux.remove(&name);
                    self.aux_names.insert(name.clone(), aux.len());
                    aux_used.push(false);
                    aux_spans.push(s.target_span.clone());
                    aux.push(AuxDef {
                        name,
                        value: value.map(Node::fold).unwrap_or(Node::Const(0.0)),
                    });
                }
            }
        }

        if statements.is_empty() && self.errors.is_empty() {
            let end = range.end.min(range.start + 1);
            self.error(
                "the system has no equations",
                range.start..end,
                Some("write one line per state, e.g. dx = -x".into()),
            );
        } else {
            for (i, r) in rhs.iter().enumerate() {
                if r.is_none() && !self.equation_targets.contains_key(&i) {
                    let name = self.states[i].name.clone();
                    let var = self.states[i].clone();
                    self.declaration_error(
                        format!("state '{name}' has no equation"),
                        &var,
                        &format!("add a line 'd{name} = ...' to the equations"),
                    );
                }
            }
        }
        (aux, rhs, aux_used, aux_spans)
    }

    /// A `dw = ...` that is never used, in the equations or the noise block, was almost
    /// certainly meant as an equation.
    pub(super) fn check_unused_derivative_names(
        &mut self,
        aux: &[AuxDef],
        aux_used: &[bool],
        aux_spans: &[Range<usize>],
    ) {
        let state_names: Vec<&str> = self.states.iter().map(|v| v.name.as_str()).collect();
        for (i, def) in aux.iter().enumerate() {
            if aux_used[i] || def.name.len() < 2 || !def.name.starts_with('d') {
                continue;
            }
            let wanted = &def.name[1..];
            let hint = match did_you_mean(wanted, state_names.iter().copied()) {
                Some(s) => format!(
                    "did you mean 'd{s}'? The states are: {}",
                    state_names.join(", ")
                ),
                None => format!(
                    "the states are: {}; declare '{wanted}' as a state, or use '{}' in an equation if it is a helper",
                    state_names.join(", "),
                    def.name
                ),
            };
            self.error(
                format!("equation for unknown state '{wanted}'"),
                aux_spans[i].clone(),
                Some(hint),
            );
        }
    }

    /// What a statement defines, or `None` after reporting why it can't be used.
    fn role(&mut self, s: &Statement) -> Option<Role> {
        let span = s.target_span.clone();
        let state_names: Vec<&str> = self.states.iter().map(|v| v.name.as_str()).collect();
        match &s.target {
            Target::Derivative(name) => match self.states.iter().position(|v| &v.name == name) {
                Some(i) => Some(Role::Equation(i)),
                None => {
                    let hint = match did_you_mean(name, state_names.iter().copied()) {
                        Some(m) => format!("did you mean '{m}'?"),
                        None => format!("the states are: {}", state_names.join(", ")),
                    };
                    self.error(
                        format!("equation for unknown state '{name}'"),
                        span,
                        Some(hint),
                    );
                    None
                }
            },
            Target::Indexed { index_span, .. } => {
                self.error(
                    "'[k]' picks a Wiener process, which only a general noise block has",
                    index_span.clone(),
                    Some("equations give the drift: write dx = ...".into()),
                );
                None
            }
            Target::Plain(name) => {
                if let Some(i) = name
                    .strip_prefix('d')
                    .and_then(|rest| self.states.iter().position(|v| v.name == rest))
                {
                    return Some(Role::Equation(i));
                }
                if self.states.iter().any(|v| &v.name == name) {
                    self.error(
                        format!("'{name}' is a state; its equation is written 'd{name} = ...'"),
                        span,
                        Some(format!("write d{name} = ... (or {name}' = ...)")),
                    );
                    None
                } else if self.inputs.iter().any(|v| &v.name == name) {
                    self.error(
                        format!("'{name}' is an input and cannot be assigned"),
                        span,
                        Some(
                            "inputs get their values from the run; use another name for a helper"
                                .into(),
                        ),
                    );
                    None
                } else if self.params.iter().any(|v| &v.name == name) {
                    self.error(
                        format!("'{name}' is a parameter and cannot be assigned"),
                        span,
                        Some("parameters get their values from the run; use another name for a helper".into()),
                    );
                    None
                } else if RESERVED.contains(&name.as_str()) || Func::from_name(name).is_some() {
                    self.error(
                        format!("'{name}' is reserved and cannot be assigned"),
                        span,
                        Some("choose another name".into()),
                    );
                    None
                } else {
                    Some(Role::Aux(name.clone()))
                }
            }
        }
    }

    pub(super) fn expr(&mut self, e: &Expr, aux_used: &mut [bool]) -> Option<Node> {
        let span = e.span.clone();
        Some(match &e.kind {
            ExprKind::Num(v) => {
                if v.abs() > f32::MAX as f64 {
                    self.error(
                        format!(
                            "the number {v:e} is too large for single precision (largest is 3.4e38)"
                        ),
                        span,
                        None,
                    );
                    return None;
                }
                Node::Const(*v)
            }
            ExprKind::Name(name) => self.name(name, span, aux_used)?,
            ExprKind::Neg(x) => Node::Neg(Box::new(self.expr(x, aux_used)?)),
            ExprKind::Binary(BinOp::Pow, base, exp) => {
                let b = self.expr(base, aux_used);
                let x = self.expr(exp, aux_used);
                power(b?, x?)
            }
            ExprKind::Binary(op, a, b) => {
                let a = self.expr(a, aux_used);
                let b = self.expr(b, aux_used);
                Node::Bin(*op, Box::new(a?), Box::new(b?))
            }
            ExprKind::Call {
                func,
                func_span,
                args,
            } => {
                let resolved: Vec<Option<Node>> =
                    args.iter().map(|a| self.expr(a, aux_used)).collect();
                if let Some(k) = self.inputs.iter().position(|i| &i.name == func) {
                    if resolved.len() != 1 {
                        self.error(
                            format!(
                                "input '{func}' takes one argument (a time), but {} were given",
                                resolved.len()
                            ),
                            span,
                            Some(format!("write {func}(t), or {func} alone for the same")),
                        );
                        return None;
                    }
                    let at = resolved.into_iter().next()??;
                    return Some(Node::Input(self.signal(k), Box::new(at)));
                }
                let Some(f) = Func::from_name(func) else {
                    let known = self.is_known_name(func);
                    let names: Vec<&str> = Func::ALL.iter().map(|f| f.name()).collect();
                    let hint = if known {
                        format!("'{func}' is a value; multiplication is written {func}*(...)")
                    } else {
                        match did_you_mean(func, names.iter().copied()) {
                            Some(m) => format!("did you mean '{m}'?"),
                            None => format!("the functions are: {}", names.join(", ")),
                        }
                    };
                    let what = if known {
                        "is not a function"
                    } else {
                        "is not a known function"
                    };
                    self.error(format!("'{func}' {what}"), func_span.clone(), Some(hint));
                    return None;
                };
                if args.len() != f.arity() {
                    let plural = if f.arity() == 1 { "" } else { "s" };
                    self.error(
                        format!(
                            "{func} takes {} argument{plural}, but {} were given",
                            f.arity(),
                            args.len()
                        ),
                        span,
                        Some(format!("call it as {}", f.signature())),
                    );
                    return None;
                }
                let args: Vec<Node> = resolved.into_iter().collect::<Option<_>>()?;
                if f == Func::Pow {
                    let mut it = args.into_iter();
                    let (b, x) = (it.next()?, it.next()?);
                    power(b, x)
                } else {
                    Node::Call(f, args)
                }
            }
        })
    }

    fn is_known_name(&self, name: &str) -> bool {
        RESERVED.contains(&name)
            || self.inputs.iter().any(|v| v.name == name)
            || self.states.iter().any(|v| v.name == name)
            || self.params.iter().any(|v| v.name == name)
            || self.aux_names.contains_key(name)
    }

    fn signal(&self, k: usize) -> Signal {
        signal_of(self.params.len(), self.inputs, k)
    }

    fn name(&mut self, name: &str, span: Range<usize>, aux_used: &mut [bool]) -> Option<Node> {
        if name == "t" {
            return Some(Node::Time);
        }
        if name == "pi" {
            return Some(Node::Const(std::f64::consts::PI));
        }
        if let Some(i) = self.states.iter().position(|v| v.name == name) {
            return Some(Node::State(i));
        }
        if let Some(i) = self.params.iter().position(|v| v.name == name) {
            return Some(Node::Param(i));
        }
        if let Some(k) = self.inputs.iter().position(|v| v.name == name) {
            return Some(Node::Input(self.signal(k), Box::new(Node::Time)));
        }
        if let Some(&i) = self.aux_names.get(name) {
            aux_used[i] = true;
            return Some(Node::Aux(i));
        }
        if let Some(def) = self.later_aux.get(name).cloned() {
            let (line, _) = self.source.line_col(def.start);
            self.error(
                format!("'{name}' is used before it is defined"),
                span,
                Some(format!(
                    "it is defined on line {line}; move that line above this one"
                )),
            );
            return None;
        }
        if let Some(rest) = name.strip_prefix('d')
            && self.states.iter().any(|v| v.name == rest)
        {
            self.error(
                format!(
                    "'{name}' is the derivative of '{rest}' and cannot be used on a right-hand side"
                ),
                span,
                Some(format!(
                    "define a helper, e.g. v = ..., and use it in both d{rest} and here"
                )),
            );
            return None;
        }
        if Func::from_name(name).is_some() {
            self.error(
                format!("'{name}' is a function and needs arguments"),
                span,
                Some(format!("call it as {}", Func::from_name(name)?.signature())),
            );
            return None;
        }
        let candidates: Vec<&str> = RESERVED
            .iter()
            .copied()
            .chain(self.states.iter().map(|v| v.name.as_str()))
            .chain(self.params.iter().map(|v| v.name.as_str()))
            .chain(self.inputs.iter().map(|v| v.name.as_str()))
            .chain(self.aux_names.keys().map(String::as_str))
            .collect();
        let hint = match did_you_mean(name, candidates.iter().copied()) {
            Some(m) => format!("did you mean '{m}'?"),
            None => {
                let mut known: Vec<&str> = candidates.clone();
                known.sort_unstable();
                format!(
                    "known names are: {}; declare '{name}' as a parameter if it is one",
                    known.join(", ")
                )
            }
        };
        self.error(format!("unknown name '{name}'"), span, Some(hint));
        None
    }
}

/// Input `k`'s place among parameter slots: after the `n_params` parameters and the
/// sensors of the inputs before it.
pub(super) fn signal_of(n_params: usize, inputs: &[Input], k: usize) -> Signal {
    let input = &inputs[k];
    Signal {
        first: n_params + inputs[..k].iter().map(|i| i.sensors).sum::<usize>(),
        sensors: input.sensors,
        t0: input.t0,
        t1: input.t1,
    }
}

/// `base^exponent`: small constant integer powers become multiplications, `^0.5` becomes
/// `sqrt`, anything else is a general `pow` (defined for positive bases only).
fn power(base: Node, exponent: Node) -> Node {
    if let Node::Const(n) = exponent.clone().fold() {
        if n.fract() == 0.0 && n.abs() <= MAX_UNROLLED_POWER as f64 {
            return Node::PowInt(Box::new(base), n as i32);
        }
        if n == 0.5 {
            return Node::Call(Func::Sqrt, vec![base]);
        }
    }
    Node::Call(Func::Pow, vec![base, exponent])
}

pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
