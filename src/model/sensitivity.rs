//! Forward sensitivities as a system of their own: the states u, then S = ∂u/∂θ for the
//! chosen parameters and initial values θ, with the variational equations
//!
//! ```text
//! dS_ij/dt = Σ_k (∂f_i/∂u_k) S_kj + ∂f_i/∂θ_j      (the last term only for a parameter)
//! S_ij(t0) = 1 if θ_j is the initial value of u_i, else 0
//! ```
//!
//! built from the symbolic Jacobian (`derive::jacobian`). Every method family then
//! integrates the augmented system with its own kernel and CPU twin, unchanged: the step
//! (tableau, error control, dense output) is applied to u and S together, which is the
//! "simultaneous corrector" of the sensitivity literature (Maly & Petzold 1996) and what
//! differentiating the discrete solver gives for explicit Runge–Kutta methods.
//!
//! S is laid out row-major after the states: component `dim + i·n_sens + j` is ∂u_i/∂θ_j,
//! so a trajectory's saved row ends with its [dim, n_sens] matrix, which is exactly the
//! layout of `sensitivities.npy` [n_save, N, dim, n_sens].

use super::derive::{self, DeriveError, Wrt, add, is_leaf_node, mul};
use super::expr::Node;
use super::system::{Meta, System};
use super::var::{AuxDef, Var};
use thiserror::Error;

/// One quantity to differentiate the solution with respect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A real parameter, by index (not an input's sensor value).
    Param(usize),
    /// The initial value of a state, by index.
    Initial(usize),
}

impl Target {
    /// The target's name: the parameter's, or the state's with a `0` (`x0`).
    pub fn name(self, system: &System) -> String {
        match self {
            Target::Param(i) => system.params[i].name.clone(),
            Target::Initial(i) => format!("{}0", system.states[i].name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum SensitivityError {
    #[error(
        "'{name}' is neither a parameter of {system} ({params}) nor an initial value \
         (a state's name followed by 0: {initials})"
    )]
    Unknown {
        name: String,
        system: String,
        params: String,
        initials: String,
    },
    #[error("'{0}' is named twice")]
    Repeated(String),
    #[error("name at least one parameter or initial value")]
    Empty,
    #[error("{0}")]
    Derive(#[from] DeriveError),
    /// A run the sensitivities cannot be added to (a stochastic system, events, ...); the
    /// text reads after the word "sensitivities".
    #[error("sensitivities {0}")]
    Unsupported(String),
    /// Error control of the states alone asked of a stiff solver, which controls all.
    #[error(
        "sensitivity error control \"exclude\" is for the explicit adaptive solvers: the stiff \
         solvers control the error of every component"
    )]
    ExcludeWithStiff,
}

/// Resolves names to targets: a parameter's name, or a state's name followed by `0`
/// (`x0`) or `(0)` (`x(0)`) for its initial value. A parameter named like that wins.
pub fn resolve(system: &System, names: &[String]) -> Result<Vec<Target>, SensitivityError> {
    if names.is_empty() {
        return Err(SensitivityError::Empty);
    }
    let mut out = Vec::with_capacity(names.len());
    for raw in names {
        let name = raw.trim();
        let target = if let Some(i) = system.param_index(name) {
            Target::Param(i)
        } else {
            let state = name
                .strip_suffix("(0)")
                .or_else(|| name.strip_suffix('0'))
                .and_then(|s| system.state_index(s.trim()));
            match state {
                Some(i) => Target::Initial(i),
                None => {
                    let list = |v: Vec<String>| {
                        if v.is_empty() {
                            "none".to_string()
                        } else {
                            v.join(", ")
                        }
                    };
                    return Err(SensitivityError::Unknown {
                        name: name.to_string(),
                        system: system.name().to_string(),
                        params: list(system.params.iter().map(|p| p.name.clone()).collect()),
                        initials: list(
                            system
                                .states
                                .iter()
                                .map(|s| format!("{}0", s.name))
                                .collect(),
                        ),
                    });
                }
            }
        };
        if out.contains(&target) {
            return Err(SensitivityError::Repeated(target.name(system)));
        }
        out.push(target);
    }
    Ok(out)
}

/// The name of component ∂u_i/∂θ_j in the augmented system.
fn component_name(system: &System, i: usize, target: Target) -> String {
    format!("d{}/d{}", system.states[i].name, target.name(system))
}

/// The system of u and S (see the module comment). Its events, noise and hand-written
/// Jacobian are not carried over: the callers refuse systems with events or noise, and the
/// augmented system's Jacobian is derived symbolically like any other.
pub fn sensitivity_system(system: &System, targets: &[Target]) -> Result<System, SensitivityError> {
    if targets.is_empty() {
        return Err(SensitivityError::Empty);
    }
    let dim = system.dim();
    let n_sens = targets.len();
    // Columns: every state, then each parameter target once.
    let params: Vec<usize> = targets
        .iter()
        .filter_map(|t| match t {
            Target::Param(q) => Some(*q),
            Target::Initial(_) => None,
        })
        .collect();
    let wrt: Vec<Wrt> = (0..dim)
        .map(Wrt::State)
        .chain(params.iter().map(|&q| Wrt::Param(q)))
        .collect();
    let jac = derive::jacobian(system, &system.rhs, &wrt)?;

    // The Jacobian program's lets follow the system's auxiliaries, as its `Aux` indices
    // expect; then each entry that is not a leaf becomes an auxiliary of its own, since a
    // ∂f_i/∂u_k is used once per target.
    let mut aux = system.aux.clone();
    aux.extend(jac.program.lets.iter().enumerate().map(|(k, n)| AuxDef {
        name: format!("_dlet{k}"),
        value: n.clone(),
    }));
    let mut entry = vec![None; dim * wrt.len()];
    for (k, (&(r, c), value)) in jac.entries.iter().zip(&jac.program.outputs).enumerate() {
        let node = if is_leaf_node(value) {
            value.clone()
        } else {
            aux.push(AuxDef {
                name: format!("_djac{k}"),
                value: value.clone(),
            });
            Node::Aux(aux.len() - 1)
        };
        entry[r * wrt.len() + c] = Some(node);
    }

    let s_index = |k: usize, j: usize| dim + k * n_sens + j;
    let mut rhs = system.rhs.clone();
    let mut states = system.states.clone();
    for i in 0..dim {
        for (j, &target) in targets.iter().enumerate() {
            let mut sum = Node::Const(0.0);
            for k in 0..dim {
                if let Some(jik) = &entry[i * wrt.len() + k] {
                    sum = add(sum, mul(jik.clone(), Node::State(s_index(k, j))));
                }
            }
            if let Target::Param(q) = target {
                let col = dim + params.iter().position(|&p| p == q).expect("listed");
                if let Some(fiq) = &entry[i * wrt.len() + col] {
                    sum = add(sum, fiq.clone());
                }
            }
            rhs.push(sum);
            let start = f64::from(u8::from(target == Target::Initial(i)));
            states.push(Var::new(component_name(system, i, target), start));
        }
    }
    Ok(System {
        meta: Meta {
            name: format!("{} with sensitivities", system.name()),
            ..system.meta.clone()
        },
        states,
        params: system.params.clone(),
        inputs: system.inputs.clone(),
        aux,
        rhs,
        equations: system.equations.clone(),
        noise: None,
        hand_jacobian: None,
        events: Vec::new(),
        event_log: system.event_log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lorenz() -> System {
        crate::model::builtin("lorenz")
            .expect("built in")
            .expect("parses")
    }

    #[test]
    fn names_resolve_to_parameters_then_initial_values() {
        let s = lorenz();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let t = resolve(&s, &names(&["rho", "x0", "z(0)"])).unwrap();
        let rho = s.param_index("rho").unwrap();
        assert_eq!(
            t,
            vec![Target::Param(rho), Target::Initial(0), Target::Initial(2)]
        );
        let e = resolve(&s, &names(&["gamma"])).unwrap_err().to_string();
        assert!(
            e.contains("'gamma'") && e.contains("rho") && e.contains("x0"),
            "{e}"
        );
        let e = resolve(&s, &names(&["x0", "x(0)"])).unwrap_err();
        assert_eq!(e, SensitivityError::Repeated("x0".into()));
        assert_eq!(resolve(&s, &[]).unwrap_err(), SensitivityError::Empty);
    }

    /// The augmented right-hand side against J·S + ∂f/∂θ from central differences of the
    /// system's own f64 evaluator, at a random point.
    #[test]
    fn the_variational_equations_match_finite_differences() {
        let s = lorenz();
        let names: Vec<String> = ["sigma", "rho", "beta", "x0", "y0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let targets = resolve(&s, &names).unwrap();
        let aug = sensitivity_system(&s, &targets).unwrap();
        let (dim, ns) = (3, targets.len());
        assert_eq!(aug.dim(), dim * (1 + ns));
        let mut rng = 0x2545F4914F6CDD1Du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let u: Vec<f64> = (0..aug.dim()).map(|_| 5.0 * next()).collect();
        let p = vec![10.0 + next(), 28.0 + next(), 8.0 / 3.0 + next()];
        let mut du = vec![0.0; aug.dim()];
        aug.rhs_f64(0.3, &u, &p, &mut Vec::new(), &mut du);
        let f = |u: &[f64], p: &[f64]| {
            let mut out = vec![0.0; dim];
            s.rhs_f64(0.3, u, p, &mut Vec::new(), &mut out);
            out
        };
        let base = f(&u[..dim], &p);
        assert_eq!(
            &du[..dim],
            &base[..],
            "the states' own equations are unchanged"
        );
        let h = 1e-6;
        for (j, &t) in targets.iter().enumerate() {
            for i in 0..dim {
                // J·S_j by a central difference along S_j, plus ∂f/∂p.
                let sj: Vec<f64> = (0..dim).map(|k| u[dim + k * ns + j]).collect();
                let shifted = |sign: f64| {
                    let v: Vec<f64> = (0..dim).map(|k| u[k] + sign * h * sj[k]).collect();
                    f(&v, &p)[i]
                };
                let mut want = (shifted(1.0) - shifted(-1.0)) / (2.0 * h);
                if let Target::Param(q) = t {
                    let mut pp = p.clone();
                    pp[q] += h;
                    let up = f(&u[..dim], &pp)[i];
                    pp[q] -= 2.0 * h;
                    want += (up - f(&u[..dim], &pp)[i]) / (2.0 * h);
                }
                let got = du[dim + i * ns + j];
                // Lorenz is quadratic: central differences are exact up to rounding,
                // about 1e-16·|f|/h ≈ 1e-8 here.
                assert!(
                    (got - want).abs() < 1e-6 * (1.0 + want.abs()),
                    "{i},{j}: {got} vs {want}"
                );
            }
        }
        // The initial sensitivities: the identity's columns for initial values.
        let start = aug.default_state();
        assert_eq!(start[dim + 3], 1.0, "dx/dx0 starts at 1");
        assert_eq!(start[dim + 2 * ns + 4], 0.0, "dz/dy0 starts at 0");
        assert_eq!(start[dim + ns + 4], 1.0, "dy/dy0 starts at 1");
        assert_eq!(aug.states[dim + ns].name, "dy/dsigma");
    }
}
