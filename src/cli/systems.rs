//! `phaseflow systems`: the built-in catalog.

use super::error::CliError;
use crate::model::derive::{DeriveError, Jacobian};
use crate::model::print::{ProgramText, print_program};
use crate::model::{NoiseKind, System, builtin_names};
use crate::spec::load_system;
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct SystemsArgs {
    #[command(subcommand)]
    action: Option<Action>,
    /// Print JSON instead of text
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Print a system's equations, states, parameters and reference
    Show {
        /// A built-in name or the path of a system file
        system: String,
        /// Also print the Jacobian ∂f/∂u (and ∂f/∂t when it is not zero): one line per
        /// entry that is not structurally zero, d(dx)/d(y) = expression
        #[arg(long)]
        jacobian: bool,
    },
}

fn to_json(s: &System) -> serde_json::Value {
    let vars = |v: &[crate::model::Var]| {
        v.iter()
            .map(|v| json!({"name": v.name, "default": v.default}))
            .collect::<Vec<_>>()
    };
    json!({
        "name": s.name(),
        "description": s.meta.description,
        "reference": s.meta.reference,
        "dim": s.dim(),
        "states": vars(&s.states),
        "parameters": vars(&s.params),
        "inputs": s.inputs.iter().map(|i| json!({
            "name": i.name, "sensors": i.sensors, "span": [i.t0, i.t1], "default": i.default,
        })).collect::<Vec<_>>(),
        "equations": s.equations,
        "tspan": s.meta.tspan.map(|(a, b)| [a, b]),
        "dt": s.meta.dt,
        "non_autonomous": s.uses_time(),
        "hand_jacobian": s.hand_jacobian.as_ref().map(|h| &h.text),
        "events": s.events.iter().map(|e| json!({
            "name": e.name,
            "kind": format!("{:?}", e.kind).to_lowercase(),
            "direction": e.direction.name(),
            "action": format!("{:?}", e.action).to_lowercase(),
            "condition": e.condition_text,
            "assign": e.assign_text,
        })).collect::<Vec<_>>(),
        "noise": s.noise.as_ref().map(|n| json!({
            "kind": n.kind.name(),
            "calculus": n.calculus.name(),
            "wiener": n.n_wiener(s.dim()),
            "additive": s.noise_is_additive(),
            "lines": n.text,
        })),
    })
}

/// The noise of a stochastic system, for `systems show`: kind, calculus, Wiener processes
/// and the diffusion lines as written.
fn print_noise(s: &System) {
    let Some(n) = &s.noise else { return };
    let m = n.n_wiener(s.dim());
    let kind = match n.kind {
        NoiseKind::Diagonal => "diagonal (one Wiener process per state)".to_string(),
        NoiseKind::Scalar => "scalar (one Wiener process for all states)".to_string(),
        NoiseKind::General { .. } => "general (dS[k]: state S's coefficient of dW_k)".to_string(),
    };
    let additive = if s.noise_is_additive() {
        "additive"
    } else {
        "multiplicative"
    };
    println!();
    println!("noise:      {kind}, {additive}");
    println!("calculus:   {}", n.calculus.name());
    println!("wiener:     {m} process{}", if m == 1 { "" } else { "es" });
    println!();
    for line in n.text.lines() {
        println!("    {line}");
    }
}

/// One Jacobian as `systems show --jacobian` shows it: its entries' names and expressions
/// and the temporaries they share.
struct JacobianText {
    /// (equation's state, variable) names of each structurally non-zero entry.
    entries: Vec<(String, String)>,
    text: ProgramText,
    size: usize,
}

impl JacobianText {
    fn new(s: &System, j: &Jacobian, col_name: impl Fn(usize) -> String) -> JacobianText {
        JacobianText {
            entries: j
                .entries
                .iter()
                .map(|&(r, c)| (s.states[r].name.clone(), col_name(c)))
                .collect(),
            text: print_program(s, &j.program),
            size: j.rows * j.cols,
        }
    }

    fn state(s: &System, j: &Jacobian) -> JacobianText {
        JacobianText::new(s, j, |c| s.states[c].name.clone())
    }

    fn time(s: &System, j: &Jacobian) -> JacobianText {
        JacobianText::new(s, j, |_| "t".into())
    }

    fn lines(&self) -> Vec<String> {
        let temporaries = self
            .text
            .temporaries
            .iter()
            .map(|(n, e)| format!("{n} = {e}"));
        let entries = self
            .entries
            .iter()
            .zip(&self.text.outputs)
            .map(|((r, c), e)| format!("d(d{r})/d({c}) = {e}"));
        temporaries.chain(entries).collect()
    }

    fn summary(&self) -> String {
        let shared = match self.text.temporaries.len() {
            0 => String::new(),
            1 => ", sharing 1 temporary".into(),
            k => format!(", sharing {k} temporaries"),
        };
        format!(
            "{} of {} entries structurally non-zero{shared}",
            self.entries.len(),
            self.size
        )
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "nonzero": self.entries.len(),
            "size": self.size,
            "temporaries": self.text.temporaries.iter()
                .map(|(n, e)| json!({"name": n, "expression": e}))
                .collect::<Vec<_>>(),
            "entries": self.entries.iter().zip(&self.text.outputs)
                .map(|((r, c), e)| json!({"row": r, "col": c, "expression": e}))
                .collect::<Vec<_>>(),
        })
    }
}

/// Which ∂f/∂u the solvers use: the hand-written one (checked when loaded) or the symbolic.
fn jacobian_source(s: &System) -> &'static str {
    if s.hand_jacobian.is_some() {
        "hand"
    } else {
        "symbolic"
    }
}

/// ∂f/∂u and ∂f/∂t as text (or the reason one cannot be derived).
type Jacobians = (
    Result<JacobianText, DeriveError>,
    Result<JacobianText, DeriveError>,
);

fn jacobians(s: &System) -> Jacobians {
    (
        s.state_jacobian().map(|j| JacobianText::state(s, &j)),
        s.time_jacobian().map(|j| JacobianText::time(s, &j)),
    )
}

fn jacobian_json(s: &System) -> serde_json::Value {
    let (state, time) = jacobians(s);
    let part = |r: Result<JacobianText, DeriveError>| match r {
        Ok(j) => j.to_json(),
        Err(e) => json!({"error": e.to_string()}),
    };
    json!({
        "source": jacobian_source(s),
        "state": part(state),
        "time": part(time),
    })
}

fn print_jacobian(s: &System) {
    let (state, time) = jacobians(s);
    let how = if s.hand_jacobian.is_some() {
        "given by hand in the system file, checked against the equations' derivative"
    } else {
        "symbolic, derived from the equations"
    };
    println!();
    match state {
        Ok(j) => {
            println!("jacobian ∂f/∂u ({how}): {}", j.summary());
            for line in j.lines() {
                println!("    {line}");
            }
        }
        Err(e) => println!("jacobian ∂f/∂u: cannot be derived: {e}"),
    }
    match time {
        Ok(j) if j.entries.is_empty() => {
            println!("jacobian ∂f/∂t: zero (the equations do not depend on t)");
        }
        Ok(j) => {
            println!("jacobian ∂f/∂t (symbolic): {}", j.summary());
            for line in j.lines() {
                println!("    {line}");
            }
        }
        Err(e) => println!("jacobian ∂f/∂t: cannot be derived: {e}"),
    }
}

pub fn run(args: &SystemsArgs) -> Result<(), CliError> {
    match &args.action {
        None => {
            let systems: Vec<System> = builtin_names()
                .into_iter()
                .map(load_system)
                .collect::<Result<_, _>>()?;
            if args.json {
                let all: Vec<_> = systems.iter().map(to_json).collect();
                println!("{}", serde_json::to_string_pretty(&all).expect("JSON"));
                return Ok(());
            }
            let width = systems.iter().map(|s| s.name().len()).max().unwrap_or(0);
            for s in &systems {
                // "SDE" marks a stochastic system; an ODE gets as many spaces.
                let kind = if s.noise.is_some() { "SDE" } else { "   " };
                println!(
                    "{:width$}  dim {}  {kind}  {}",
                    s.name(),
                    s.dim(),
                    s.meta.description
                );
            }
            println!(
                "\nSDE: a stochastic system (dX = f dt + g dW).\n\
                 `phaseflow systems show NAME` prints the equations (and the noise)."
            );
        }
        Some(Action::Show { system, jacobian }) => {
            let s = load_system(system)?;
            if args.json {
                let mut v = to_json(&s);
                if *jacobian {
                    v["jacobian"] = jacobian_json(&s);
                }
                println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
                return Ok(());
            }
            let vars = |v: &[crate::model::Var]| {
                v.iter()
                    .map(|v| format!("{} = {}", v.name, v.default))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!("{}: {}", s.name(), s.meta.description);
            println!("reference:  {}", s.meta.reference);
            println!("states:     {}", vars(&s.states));
            println!(
                "parameters: {}",
                if s.params.is_empty() {
                    "(none)".into()
                } else {
                    vars(&s.params)
                }
            );
            for i in &s.inputs {
                println!(
                    "input:      {}(t), {} sensors on [{}, {}], linear between them, default {}",
                    i.name, i.sensors, i.t0, i.t1, i.default
                );
            }
            if let (Some((a, b)), Some(dt)) = (s.meta.tspan, s.meta.dt) {
                println!("suggested:  t from {a} to {b}, dt = {dt}");
            }
            println!();
            for line in s.equations.lines() {
                println!("    {line}");
            }
            print_noise(&s);
            print_events(&s);
            if *jacobian {
                print_jacobian(&s);
            } else if s.hand_jacobian.is_some() {
                println!(
                    "\njacobian:   given by hand (checked against the equations' derivative); \
                     --jacobian prints it"
                );
            }
        }
    }
    Ok(())
}

/// A system's events, one line each (and its assignment lines).
fn print_events(s: &crate::model::System) {
    use crate::model::{Action, EventKind};
    for e in &s.events {
        let when = match e.kind {
            EventKind::Continuous => {
                format!("{} = 0 crossed {}", e.condition_text, e.direction.name())
            }
            EventKind::Discrete => format!("{} > 0 after a step", e.condition_text),
        };
        let action = match e.action {
            Action::Record => "record".to_string(),
            Action::Terminate => "terminate".to_string(),
            Action::Assign => format!(
                "assign {}",
                e.assign_text
                    .lines()
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        println!("\nevent {}: when {when}: {action}", e.name);
    }
}
