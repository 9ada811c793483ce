//! A system of ODEs: named states with defaults, named parameters with defaults, auxiliary
//! definitions and one right-hand side per state, resolved and checked once.

use super::diagnostic::{Diagnostics, Source};
use super::event_types::{Event, EventLogSpec};
use super::expr::{Env, Node};
use super::noise::{Calculus, Noise, NoiseKind, NoiseSource, depends_on, resolve_noise};
use super::parser::parse_statements;
pub use super::resolve::is_identifier;
pub(crate) use super::resolve::resolve_expression;
use super::resolve::{Resolver, signal_of};
use super::signal::{Input, Signal};
pub use super::var::{AuxDef, RESERVED, Var};
use std::ops::Range;
use std::sync::Arc;

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
    /// ∂f/∂u as the user wrote it (`jacobian = """..."""` in a system file), checked against
    /// the symbolic Jacobian when it was loaded; `None` when the symbolic one is used.
    pub hand_jacobian: Option<HandJacobian>,
    /// Events (`[[events]]`, see `model::event`), in the order given: their index is the
    /// event id in logs.
    pub events: Vec<Event>,
    /// How many events each trajectory records, from when (run settings; see
    /// `model::event::EventLogSpec`).
    pub event_log: EventLogSpec,
}

/// A Jacobian ∂f/∂u given by hand, one line `d(dx)/d(y) = expression` per entry that is
/// not zero (see `model::jacobian`, which resolves and checks it).
#[derive(Debug, Clone, PartialEq)]
pub struct HandJacobian {
    /// The entries given, (equation's state, state), in row-major order.
    pub entries: Vec<(usize, usize)>,
    /// Entry k's value, over the system's states, parameters, inputs, `t` and auxiliaries.
    pub values: Vec<Node>,
    /// The block as written.
    pub text: String,
}

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
            hand_jacobian: None,
            events: Vec::new(),
            event_log: EventLogSpec::default(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::diagnostic::Diagnostic;
    use crate::model::expr::Func;

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
