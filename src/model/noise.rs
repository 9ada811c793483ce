//! Noise of a stochastic system, dX = f(t, X) dt + g(t, X) dW: the diffusion g as resolved
//! expressions, and the resolution of a noise block written in the system language.
//!
//! A noise block has one line per noisy state, `dx = expression` (diagonal or scalar
//! noise), or one line per state and Wiener process, `dS[k] = expression` (general noise,
//! k = 1 .. wiener). States without a line have no noise. Lines may use states,
//! parameters, inputs, `t`, `pi` and the auxiliary definitions of the equations; they define
//! nothing themselves.

use super::diagnostic::{Diagnostic, Source, did_you_mean};
use super::expr::Node;
use super::parser::{Statement, Target, parse_statements};
use super::resolve::Resolver;
use super::signal::Input;
use super::var::{AuxDef, Var};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

/// How the Wiener processes drive the states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseKind {
    /// One independent Wiener process per state.
    Diagonal,
    /// One Wiener process shared by all states.
    Scalar,
    /// `wiener` processes, each state a combination of them.
    General { wiener: usize },
}

/// Most Wiener processes a general noise may have: far beyond models from papers (Heston
/// needs 2), and a bound on the diffusion matrix a file can ask for (dim × wiener nodes).
pub const MAX_WIENER: usize = 256;

impl NoiseKind {
    /// The names used in system files (`noise_kind = "..."`).
    pub const NAMES: [&'static str; 3] = ["diagonal", "scalar", "general"];

    pub fn name(&self) -> &'static str {
        match self {
            NoiseKind::Diagonal => "diagonal",
            NoiseKind::Scalar => "scalar",
            NoiseKind::General { .. } => "general",
        }
    }
}

/// How the stochastic integral is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Calculus {
    #[default]
    Ito,
    Stratonovich,
}

impl Calculus {
    /// The names used in system files (`calculus = "..."`).
    pub const NAMES: [&'static str; 2] = ["ito", "stratonovich"];

    pub fn name(&self) -> &'static str {
        match self {
            Calculus::Ito => "ito",
            Calculus::Stratonovich => "stratonovich",
        }
    }

    pub fn from_name(name: &str) -> Option<Calculus> {
        match name {
            "ito" => Some(Calculus::Ito),
            "stratonovich" => Some(Calculus::Stratonovich),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Noise {
    pub kind: NoiseKind,
    pub calculus: Calculus,
    /// Flat diffusion matrix: Diagonal and Scalar: g[i] for state i (dim entries; state i's
    /// noise multiplies Wiener process i (Diagonal) or the one process (Scalar));
    /// General: g[i * m + k] for state i and Wiener process k (dim * m entries).
    /// A state with no noise line has Node::Const(0.0).
    pub g: Vec<Node>,
    /// The noise block as written.
    pub text: String,
}

impl Noise {
    /// Wiener processes driving a system of `dim` states.
    pub fn n_wiener(&self, dim: usize) -> usize {
        match self.kind {
            NoiseKind::Diagonal => dim,
            NoiseKind::Scalar => 1,
            NoiseKind::General { wiener } => wiener,
        }
    }

    /// No g depends on a state (additive noise). Conservative: an auxiliary definition
    /// counts as state-dependent, since `Noise` alone does not see the auxiliaries
    /// (`System::noise_is_additive` looks through them). `false` is always safe: a method
    /// for multiplicative noise is correct for additive noise too.
    pub fn is_additive(&self) -> bool {
        self.g
            .iter()
            .all(|g| !depends_on(g, &|n| matches!(n, Node::State(_) | Node::Aux(_))))
    }

    /// Which entries of `g` are not identically zero: (state, Wiener process) for each,
    /// the process being 0-based (for display and code generators).
    pub fn nonzero(&self, dim: usize) -> Vec<(usize, usize)> {
        let at = |j: usize| match self.kind {
            NoiseKind::General { wiener } => (j / wiener, j % wiener),
            NoiseKind::Scalar => (j, 0),
            NoiseKind::Diagonal => (j, j),
        };
        debug_assert_eq!(
            self.g.len(),
            dim * if matches!(self.kind, NoiseKind::General { .. }) {
                self.n_wiener(dim)
            } else {
                1
            }
        );
        self.g
            .iter()
            .enumerate()
            .filter(|(_, g)| **g != Node::Const(0.0))
            .map(|(j, _)| at(j))
            .collect()
    }
}

/// Whether any node of `n` satisfies `hit`.
pub(crate) fn depends_on(n: &Node, hit: &dyn Fn(&Node) -> bool) -> bool {
    let mut found = false;
    n.visit(&mut |x| found |= hit(x));
    found
}

/// A noise block to resolve: `source.text[range]`, and the kind and calculus given with it.
#[derive(Debug, Clone)]
pub struct NoiseSource {
    pub source: Arc<Source>,
    pub range: Range<usize>,
    pub kind: NoiseKind,
    pub calculus: Calculus,
}

/// Resolves a noise block against a system's declarations and auxiliaries. `aux_used`
/// (one flag per auxiliary) is set for every auxiliary a noise line uses, so that the check
/// for a mistyped `dw = ...` equation counts those uses. Problems are appended to `errors`;
/// the noise is returned only when there are none of its own.
pub(crate) fn resolve_noise(
    spec: &NoiseSource,
    (states, params, inputs): (&[Var], &[Var], &[Input]),
    aux: &[AuxDef],
    aux_used: &mut [bool],
    errors: &mut Vec<Diagnostic>,
) -> Option<Noise> {
    let statements = match parse_statements(&spec.source, spec.range.clone()) {
        Ok(s) => s,
        Err(mut e) => {
            errors.append(&mut e);
            return None;
        }
    };
    let mut r = Resolver::new(&spec.source, states, params, inputs);
    for (i, def) in aux.iter().enumerate() {
        r.aux_names.entry(def.name.clone()).or_insert(i);
    }
    let dim = states.len();
    let (m, general) = match spec.kind {
        NoiseKind::General { wiener } => {
            if !(1..=MAX_WIENER).contains(&wiener) {
                r.errors.push(Diagnostic::bare(format!(
                    "general noise needs 1 to {MAX_WIENER} Wiener processes, not {wiener}"
                )));
                return finish(r, errors, None);
            }
            (wiener, true)
        }
        NoiseKind::Scalar => (1, false),
        NoiseKind::Diagonal => (1, false),
    };
    let mut g = vec![Node::Const(0.0); dim * m];
    // Entry of g → span of the target that set it.
    let mut given: HashMap<usize, Range<usize>> = HashMap::new();

    if statements.is_empty() {
        let end = spec.range.end.min(spec.range.start + 1);
        r.error(
            "the noise block has no lines",
            spec.range.start..end,
            Some("write one line per noisy state, e.g. dx = sigma*x, or remove 'noise'".into()),
        );
    }
    for s in &statements {
        let slot = target_slot(&mut r, s, general, m);
        // Resolve the expression even for a bad target, so its own mistakes show too.
        let value = r.expr(&s.value, aux_used);
        let Some(j) = slot else { continue };
        if let Some(first) = given.get(&j) {
            let (line, _) = spec.source.line_col(first.start);
            let state = &states[j / m].name;
            let what = if general {
                format!(
                    "a second noise line for state '{state}' and Wiener process {}",
                    j % m + 1
                )
            } else {
                format!("a second noise line for state '{state}'")
            };
            r.error(
                what,
                s.target_span.clone(),
                Some(format!("the first one is on line {line}; keep one")),
            );
            continue;
        }
        given.insert(j, s.target_span.clone());
        if let Some(v) = value {
            g[j] = v.fold();
        }
    }
    let text = spec.source.text[spec.range.clone()]
        .trim_matches('\n')
        .to_string();
    let noise = Noise {
        kind: spec.kind,
        calculus: spec.calculus,
        g,
        text,
    };
    finish(r, errors, Some(noise))
}

fn finish(r: Resolver, errors: &mut Vec<Diagnostic>, noise: Option<Noise>) -> Option<Noise> {
    let clean = r.errors.is_empty();
    errors.extend(r.errors);
    noise.filter(|_| clean)
}

/// The entry of g a noise line sets (state i, process k: `i * m + k`), or `None` after
/// reporting why its target is wrong.
fn target_slot(r: &mut Resolver, s: &Statement, general: bool, m: usize) -> Option<usize> {
    let span = s.target_span.clone();
    let state_names: Vec<String> = r.states.iter().map(|v| v.name.clone()).collect();
    let names = || state_names.join(", ");
    let state_of = |name: &str| {
        name.strip_prefix('d')
            .and_then(|rest| state_names.iter().position(|v| v == rest))
    };
    let unknown = |r: &mut Resolver, name: &str| {
        if state_names.iter().any(|v| v == name) {
            r.error(
                format!("'{name}' is a state; its noise is written 'd{name} = ...'"),
                span.clone(),
                Some(format!("write d{name} = ...")),
            );
            return;
        }
        match name.strip_prefix('d').filter(|rest| !rest.is_empty()) {
            Some(rest) => {
                let hint = match did_you_mean(rest, state_names.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean 'd{s}'? The states are: {}", names()),
                    None => format!("the states are: {}", names()),
                };
                r.error(
                    format!("noise for unknown state '{rest}'"),
                    span.clone(),
                    Some(hint),
                );
            }
            None => r.error(
                format!("'{name}' cannot be defined in the noise block"),
                span.clone(),
                Some(
                    "noise lines read dx = expression for a state x; define helpers in \
                     the equations, the noise block may use them"
                        .into(),
                ),
            ),
        }
    };
    match &s.target {
        Target::Plain(name) => {
            let Some(i) = state_of(name) else {
                unknown(r, name);
                return None;
            };
            if general {
                r.error(
                    format!("general noise needs the Wiener process: write '{name}[k] = ...'"),
                    span,
                    Some(format!("k runs from 1 to wiener = {m}")),
                );
                return None;
            }
            Some(i)
        }
        Target::Derivative(name) => {
            r.error(
                format!("the noise of '{name}' is written 'd{name} = ...'"),
                span,
                Some(format!(
                    "{name}' and d{name}/dt are for equations; the noise block gives the \
                     coefficient of dW"
                )),
            );
            None
        }
        Target::Indexed {
            name,
            index,
            index_span,
        } => {
            let Some(i) = state_of(name) else {
                unknown(r, name);
                return None;
            };
            if !general {
                r.error(
                    "'[k]' picks a Wiener process, which only general noise has",
                    index_span.clone(),
                    Some(format!(
                        "write {name} = ... for diagonal or scalar noise, or set \
                         noise_kind = \"general\" and wiener = N"
                    )),
                );
                return None;
            }
            if *index > m {
                r.error(
                    format!("Wiener process {index} is out of range"),
                    index_span.clone(),
                    Some(format!("with wiener = {m}, k runs from 1 to {m}")),
                );
                return None;
            }
            Some(i * m + index - 1)
        }
    }
}
