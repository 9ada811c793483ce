//! `phaseflow systems`: the built-in catalog.

use super::error::CliError;
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
        Some(Action::Show { system }) => {
            let s = load_system(system)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&to_json(&s)).expect("JSON")
                );
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
        }
    }
    Ok(())
}
