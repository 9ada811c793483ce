//! A system of ODEs: named states with defaults, named parameters with defaults, auxiliary
//! definitions and one right-hand side per state, resolved and checked once.

use super::diagnostic::{Diagnostic, Diagnostics, Source, did_you_mean};
use super::expr::{BinOp, Env, Func, MAX_UNROLLED_POWER, Node};
use super::noise::{Calculus, Noise, NoiseKind, NoiseSource, depends_on, resolve_noise};
use super::parser::{Expr, ExprKind, Statement, Target, parse_statements};
use super::signal::{Input, Signal};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

/// A state or parameter: its name, default value, and where it was declared.
#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    pub name: String,
    pub default: f64,
    /// Span of the name in the system's source, for messages.
    pub span: Option<Range<usize>>,
}

impl Var {
    pub fn new(name: impl Into<String>, default: f64) -> Var {
        Var {
            name: name.into(),
            default,
            span: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuxDef {
    pub name: String,
    pub value: Node,
}

/// Descriptive fields of a system, as given in its file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    pub name: String,
    pub description: String,
    pub reference: String,
    /// Suggested time span and step, used when a run does not give its own.
    pub tspan: Option<(f64, f64)>,
    pub dt: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct System {
    pub meta: Meta,
    pub states: Vec<Var>,
    pub params: Vec<Var>,
    /// Time-dependent inputs; their sensor values follow the parameters in each
    /// trajectory's parameter slots.
    pub inputs: Vec<Input>,
    pub aux: Vec<AuxDef>,
    /// One right-hand side per state, in state order.
    pub rhs: Vec<Node>,
    /// The equations as the user wrote them.
    pub equations: String,
    /// The diffusion of a stochastic system (dX = f dt + g dW, `rhs` being f); `None` for
    /// an ODE.
    pub noise: Option<Noise>,
}

/// Names with a fixed meaning in every system.
pub const RESERVED: [&str; 2] = ["t", "pi"];

impl System {
    /// Resolves and checks `source.text[range]` against the given states, parameters and
    /// inputs.
    pub fn build(
        meta: Meta,
        vars: (Vec<Var>, Vec<Var>, Vec<Input>),
        source: &Arc<Source>,
        range: Range<usize>,
    ) -> Result<System, Diagnostics> {
        System::build_with_noise(meta, vars, source, range, None)
    }

    /// `build`, and the noise block of a stochastic system, resolved against the same
    /// declarations and the equations' auxiliaries.
    pub fn build_with_noise(
        meta: Meta,
        (states, params, inputs): (Vec<Var>, Vec<Var>, Vec<Input>),
        source: &Arc<Source>,
        range: Range<usize>,
        noise: Option<&NoiseSource>,
    ) -> Result<System, Diagnostics> {
        let statements = parse_statements(source, range.clone()).map_err(Diagnostics)?;
        let mut r = Resolver::new(source, &states, &params, &inputs);
        r.check_declarations();
        let (aux, rhs, mut aux_used, aux_spans) = r.resolve(&statements, range.clone());
        let mut noise_errors = Vec::new();
        let noise = noise.and_then(|spec| {
            resolve_noise(
                spec,
                (&states, &params, &inputs),
                &aux,
                &mut aux_used,
                &mut noise_errors,
            )
        });
        r.check_unused_derivative_names(&aux, &aux_used, &aux_spans);
        r.errors.append(&mut noise_errors);
        if !r.errors.is_empty() {
            return Err(Diagnostics(r.errors));
        }
        Ok(System {
            meta,
            equations: source.text[range].trim_matches('\n').to_string(),
            states,
            params,
            inputs,
            aux,
            rhs: rhs
                .into_iter()
                .map(|n| n.expect("checked: every state has an equation"))
                .collect(),
            noise,
        })
    }

    /// A system from an equation string alone, e.g. for tests and the library API.
    pub fn from_equations(
        name: &str,
        states: &[(&str, f64)],
        params: &[(&str, f64)],
        equations: &str,
    ) -> Result<System, Diagnostics> {
        System::from_equations_with_inputs(name, states, params, Vec::new(), equations)
    }

    /// A system with time-dependent inputs from an equation string.
    pub fn from_equations_with_inputs(
        name: &str,
        states: &[(&str, f64)],
        params: &[(&str, f64)],
        inputs: Vec<Input>,
        equations: &str,
    ) -> Result<System, Diagnostics> {
        let source = Source::new(format!("<{name} equations>"), equations);
        let vars = |v: &[(&str, f64)]| v.iter().map(|&(n, d)| Var::new(n, d)).collect();
        let meta = Meta {
            name: name.to_string(),
            ..Meta::default()
        };
        System::build(
            meta,
            (vars(states), vars(params), inputs),
            &source,
            0..equations.len(),
        )
    }

    /// A stochastic system from strings: the equations give the drift, `noise` the
    /// diffusion (see `model::noise`), e.g. for tests and the library API.
    pub fn from_equations_with_noise(
        name: &str,
        states: &[(&str, f64)],
        params: &[(&str, f64)],
        equations: &str,
        noise: &str,
        kind: NoiseKind,
        calculus: Calculus,
    ) -> Result<System, Diagnostics> {
        let source = Source::new(format!("<{name} equations>"), equations);
        let vars = |v: &[(&str, f64)]| v.iter().map(|&(n, d)| Var::new(n, d)).collect();
        let meta = Meta {
            name: name.to_string(),
            ..Meta::default()
        };
        let spec = NoiseSource {
            source: Source::new(format!("<{name} noise>"), noise),
            range: 0..noise.len(),
            kind,
            calculus,
        };
        System::build_with_noise(
            meta,
            (vars(states), vars(params), Vec::new()),
            &source,
            0..equations.len(),
            Some(&spec),
        )
    }

    pub fn name(&self) -> &str {
        &self.meta.name
    }

    /// Wiener processes driving the system: 0 without noise.
    pub fn n_wiener(&self) -> usize {
        self.noise.as_ref().map_or(0, |n| n.n_wiener(self.dim()))
    }

    /// Whether the system has noise and no diffusion entry depends on a state, directly or
    /// through an auxiliary definition (exact, unlike the conservative
    /// `Noise::is_additive`).
    pub fn noise_is_additive(&self) -> bool {
        let Some(noise) = &self.noise else {
            return false;
        };
        // An auxiliary depends on a state if its value does, or an earlier one it uses does.
        let mut stateful: Vec<bool> = Vec::with_capacity(self.aux.len());
        for def in &self.aux {
            let s = depends_on(&def.value, &|n| match n {
                Node::State(_) => true,
                Node::Aux(i) => stateful.get(*i).copied().unwrap_or(true),
                _ => false,
            });
            stateful.push(s);
        }
        noise.g.iter().all(|g| {
            !depends_on(g, &|n| match n {
                Node::State(_) => true,
                Node::Aux(i) => stateful.get(*i).copied().unwrap_or(true),
                _ => false,
            })
        })
    }

    pub fn dim(&self) -> usize {
        self.states.len()
    }

    pub fn n_params(&self) -> usize {
        self.params.len()
    }

    /// Values each trajectory carries besides its state: the parameters, then every
    /// input's sensor values.
    pub fn n_param_slots(&self) -> usize {
        self.n_params() + self.n_input_values()
    }

    /// Sensor values of all inputs together.
    pub fn n_input_values(&self) -> usize {
        self.inputs.iter().map(|i| i.sensors).sum()
    }

    /// Every input's default at each of its sensors, in slot order.
    pub fn default_inputs(&self) -> Vec<f64> {
        self.inputs
            .iter()
            .flat_map(|i| std::iter::repeat_n(i.default, i.sensors))
            .collect()
    }

    /// The first sensor time of any input after `t`, or `end`: where adaptive steps stop
    /// (the CPU twin of the kernels' `break_after`).
    pub fn break_after(&self, t: f64, end: f64) -> f64 {
        (0..self.inputs.len()).fold(end, |e, k| self.signal(k).next_sensor(t, e))
    }

    /// Where input `k`'s values sit among the parameter slots.
    pub fn signal(&self, k: usize) -> Signal {
        signal_of(self.params.len(), &self.inputs, k)
    }

    pub fn state_index(&self, name: &str) -> Option<usize> {
        self.states.iter().position(|v| v.name == name)
    }

    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|v| v.name == name)
    }

    pub fn default_state(&self) -> Vec<f64> {
        self.states.iter().map(|v| v.default).collect()
    }

    pub fn default_params(&self) -> Vec<f64> {
        self.params.iter().map(|v| v.default).collect()
    }

    /// Whether any right-hand side depends on time (a non-autonomous system), directly or
    /// through an input.
    pub fn uses_time(&self) -> bool {
        let mut found = false;
        let mut check = |n: &Node| found |= matches!(n, Node::Time | Node::Input(..));
        self.visit_nodes(&mut check);
        found
    }

    /// Every node of every expression, auxiliaries first, then the drift, then the
    /// diffusion, for code generators.
    pub fn visit_nodes(&self, f: &mut impl FnMut(&Node)) {
        self.aux.iter().for_each(|a| a.value.visit(f));
        self.rhs.iter().for_each(|r| r.visit(f));
        if let Some(noise) = &self.noise {
            noise.g.iter().for_each(|g| g.visit(f));
        }
    }

    /// The right-hand side in f64: `du = f(t, u, p)`, `p` being the parameter slots
    /// (parameters, then input values). `aux` is scratch space, reused
    /// between calls so that reference integrators do not allocate per step.
    pub fn rhs_f64(&self, t: f64, u: &[f64], p: &[f64], aux: &mut Vec<f64>, du: &mut [f64]) {
        self.eval_aux(t, u, p, aux);
        let env = Env {
            t,
            states: u,
            params: p,
            aux,
        };
        for (d, r) in du.iter_mut().zip(&self.rhs) {
            *d = r.eval(&env);
        }
    }

    /// The flat diffusion g in f64 (same layout as `Noise::g`); `aux` as in `rhs_f64`.
    /// Without noise, `g` is left as it is (it should then be empty).
    pub fn diffusion_f64(&self, t: f64, u: &[f64], p: &[f64], aux: &mut Vec<f64>, g: &mut [f64]) {
        let Some(noise) = &self.noise else { return };
        self.eval_aux(t, u, p, aux);
        let env = Env {
            t,
            states: u,
            params: p,
            aux,
        };
        for (out, n) in g.iter_mut().zip(&noise.g) {
            *out = n.eval(&env);
        }
    }

    fn eval_aux(&self, t: f64, u: &[f64], p: &[f64], aux: &mut Vec<f64>) {
        aux.clear();
        for def in &self.aux {
            let v = def.value.eval(&Env {
                t,
                states: u,
                params: p,
                aux,
            });
            aux.push(v);
        }
    }
}

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

    fn check_declarations(&mut self) {
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
    fn resolve(
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
    fn check_unused_derivative_names(
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
fn signal_of(n_params: usize, inputs: &[Input], k: usize) -> Signal {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lorenz_with(eqs: &str) -> Result<System, Diagnostics> {
        System::from_equations(
            "lorenz",
            &[("x", 1.0), ("y", 0.0), ("z", 0.0)],
            &[("sigma", 10.0), ("rho", 28.0), ("beta", 8.0 / 3.0)],
            eqs,
        )
    }

    const LORENZ: &str = "dx = sigma*(y - x)\ndy = x*(rho - z) - y\ndz = x*y - beta*z\n";

    #[test]
    fn lorenz_evaluates_in_f64() {
        let s = lorenz_with(LORENZ).unwrap();
        let mut du = [0.0; 3];
        s.rhs_f64(
            0.0,
            &[1.0, 2.0, 3.0],
            &[10.0, 28.0, 8.0 / 3.0],
            &mut Vec::new(),
            &mut du,
        );
        assert_eq!(du, [10.0, 1.0 * (28.0 - 3.0) - 2.0, 2.0 - 8.0]);
        assert!(!s.uses_time());
    }

    #[test]
    fn auxiliaries_and_derivative_forms() {
        let s = System::from_equations(
            "osc",
            &[("x", 1.0), ("v", 0.0)],
            &[("w", 2.0)],
            "r = w^2\nx' = v\ndv/dt = -r*x + 0*t\n",
        )
        .unwrap();
        let mut du = [0.0; 2];
        s.rhs_f64(0.0, &[0.5, 0.0], &[2.0], &mut Vec::new(), &mut du);
        assert_eq!(du, [0.0, -2.0]);
        assert!(s.uses_time());
    }

    fn first_error(eqs: &str) -> Diagnostic {
        lorenz_with(eqs).unwrap_err().0.remove(0)
    }

    #[test]
    fn unknown_name_suggests_the_closest() {
        let d = first_error("dx = sigam*(y - x)\ndy = -y\ndz = -z\n");
        assert_eq!(d.message, "unknown name 'sigam'");
        assert_eq!(d.hint.as_deref(), Some("did you mean 'sigma'?"));
        assert_eq!(d.position(), Some((1, 6)));
    }

    #[test]
    fn each_error_kind_is_reported() {
        let cases: &[(&str, &str)] = &[
            ("dx = -x\ndy = -y\n", "state 'z' has no equation"),
            (
                "dx = -x\ndy = -y\ndz = -z\ndw = 1\n",
                "equation for unknown state 'w'",
            ),
            (
                "dx = -x\ndy = -y\ndz = -z\nw' = 1\n",
                "equation for unknown state 'w'",
            ),
            (
                "dx = -x\ndx = 2\ndy = -y\ndz = -z\n",
                "a second equation for state 'x'",
            ),
            (
                "a = 1\na = 2\ndx = a\ndy = -y\ndz = -z\n",
                "'a' is defined twice",
            ),
            ("dx = x // 2\ndy = -y\ndz = -z\n", "'//' is not an operator"),
            ("dx = x == 2\ndy = -y\ndz = -z\n", "'==' is not an operator"),
            (
                "dx = r\nr = 1\ndy = -y\ndz = -z\n",
                "'r' is used before it is defined",
            ),
            (
                "dx = sine(x)\ndy = -y\ndz = -z\n",
                "'sine' is not a known function",
            ),
            (
                "dx = atan2(x)\ndy = -y\ndz = -z\n",
                "atan2 takes 2 arguments, but 1 were given",
            ),
            ("dx = y(x)\ndy = -y\ndz = -z\n", "'y' is not a function"),
            (
                "rho = 1\ndx = -x\ndy = -y\ndz = -z\n",
                "'rho' is a parameter and cannot be assigned",
            ),
            (
                "x = 1\ndy = -y\ndz = -z\n",
                "'x' is a state; its equation is written 'dx = ...'",
            ),
            (
                "dx = dy\ndy = -y\ndz = -z\n",
                "'dy' is the derivative of 'y'",
            ),
            (
                "dx = 1e39\ndy = -y\ndz = -z\n",
                "too large for single precision",
            ),
            (
                "dx = sin\ndy = -y\ndz = -z\n",
                "'sin' is a function and needs arguments",
            ),
            ("", "the system has no equations"),
        ];
        for (eqs, expected) in cases {
            let errs = lorenz_with(eqs).expect_err(eqs);
            assert!(
                errs.0.iter().any(|d| d.message.contains(expected)),
                "for {eqs:?} expected '{expected}', got:\n{errs}"
            );
        }
    }

    #[test]
    fn bad_declarations() {
        let e = System::from_equations("s", &[("t", 0.0)], &[], "dt = 1").unwrap_err();
        assert!(e.0[0].message.contains("'t' is reserved"), "{e}");
        let e = System::from_equations("s", &[("x", 0.0)], &[("x", 1.0)], "dx = 1").unwrap_err();
        assert!(e.0[0].message.contains("declared twice"), "{e}");
        let e = System::from_equations("s", &[("2x", 0.0)], &[], "dx = 1").unwrap_err();
        assert!(e.0[0].message.contains("not a valid state name"), "{e}");
    }

    #[test]
    fn powers_lower_to_multiplication_sqrt_or_pow() {
        let s = System::from_equations(
            "p",
            &[("x", 1.0)],
            &[],
            "a = x^2\nb = x^-3\nc = x^0.5\ndx = a + b + c + x^1.5",
        )
        .unwrap();
        assert!(matches!(s.aux[0].value, Node::PowInt(_, 2)));
        assert!(matches!(s.aux[1].value, Node::PowInt(_, -3)));
        assert!(matches!(s.aux[2].value, Node::Call(Func::Sqrt, _)));
        // -x^2 is -(x^2): negative for any x.
        let s = System::from_equations("p", &[("x", 1.0)], &[], "dx = -x^2").unwrap();
        let mut du = [0.0];
        s.rhs_f64(0.0, &[-3.0], &[], &mut Vec::new(), &mut du);
        assert_eq!(du[0], -9.0);
    }
}
