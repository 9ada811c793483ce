//! An orbit diagram as a run spec: the run config's ensemble and solver keys, its section
//! keys (`section`, `direction`, `points`, `transient`) and the `[orbit]` table
//! (`maxima`, `observe`, `time`, `tol`), checked into an `OrbitProblem`. Every mistake is a
//! `FieldError` at the key at fault (the CLI names it as its flag, a config file as its
//! key, the server as its JSON path), or diagnostics pointing into the section's text.

use super::error::{FieldError, SpecError};
use super::run::{RunSpec, problem_for_system};
use crate::model::diagnostic::{Diagnostic, Diagnostics, Source, did_you_mean};
use crate::model::{Direction, System};
use crate::ode::error::host_results_fit;
use crate::ode::orbit::maxima::maxima_section;
use crate::ode::orbit::problem::{OrbitKind, OrbitProblem, moves_along_orbit};
use crate::ode::solver::Solver;
use crate::precision::Precision;

/// Defaults of the keys an orbit diagram adds: the transient, the time recorded after it,
/// the points kept per trajectory and the tolerance of distinct values.
pub const DEFAULT_TRANSIENT: f64 = 100.0;
pub const DEFAULT_TIME: f64 = 100.0;
pub const DEFAULT_POINTS: usize = 64;
pub const DEFAULT_TOL: f64 = 1e-3;

/// The orbit diagram `spec` describes for `system` (its `system` key is not read). `spec`
/// may hold an `[orbit]` table (absent, every key there takes its default) and no other
/// analysis table.
pub fn orbit_problem(mut system: System, spec: &RunSpec) -> Result<OrbitProblem, SpecError> {
    spec.only_analysis(Some("orbit"))?;
    refuse_unread(spec)?;
    let orbit = spec.orbit.clone().unwrap_or_default();
    if system.noise.is_some() {
        return Err(FieldError::at("system")
            .text(format!(
                "{} has a noise block; orbit diagrams are for deterministic systems",
                system.name()
            ))
            .into());
    }
    let kind = match (&spec.section, &orbit.maxima) {
        (Some(_), Some(_)) => {
            return Err(FieldError::at("orbit.maxima")
                .text("give either ")
                .key("section")
                .form(" EQUATION", "")
                .text(" or ")
                .key("orbit.maxima")
                .form(" STATE", "")
                .text(", not both")
                .into());
        }
        (None, None) => {
            return Err(FieldError::at("section")
                .text("give ")
                .key("section")
                .form(" EQUATION", "")
                .text(" (e.g. ")
                .key("section")
                .form(" \"z = 27\"", " = \"z = 27\"")
                .text(") or ")
                .key("orbit.maxima")
                .form(" STATE", "")
                .text(" (e.g. ")
                .key("orbit.maxima")
                .form(" x", " = \"x\"")
                .text("): where the points are recorded")
                .into());
        }
        (Some(s), None) => OrbitKind::Section {
            equation: s.clone(),
            direction: spec.direction.clone().unwrap_or_else(|| "both".into()),
        },
        (None, Some(state)) => {
            if spec.direction.is_some() {
                return Err(FieldError::at("direction")
                    .key("direction")
                    .text(" applies to ")
                    .key("section")
                    .text("; ")
                    .key("orbit.maxima")
                    .text(" is the derivative's zero crossed downwards")
                    .into());
            }
            let i = state_index(&system, state, "orbit.maxima")?;
            // dx/dt that cannot change along an orbit never crosses zero: no maxima.
            if !moves_along_orbit(&system, &system.rhs[i]) {
                return Err(FieldError::at("orbit.maxima")
                    .key("orbit.maxima")
                    .form(format!(" {state}"), format!(" = \"{state}\""))
                    .text(format!(
                        ": d{state}/dt = {} depends on neither the state nor t, so {state} \
                         has no maxima along an orbit; choose a state whose derivative varies",
                        crate::model::print::print_node(&system, &system.rhs[i])
                    ))
                    .into());
            }
            OrbitKind::Maxima {
                state: state.clone(),
                equation: maxima_section(&system, i),
            }
        }
    };
    let observed = match (&orbit.observe, &kind) {
        (Some(s), _) => s.clone(),
        (None, OrbitKind::Maxima { state, .. }) => state.clone(),
        (None, OrbitKind::Section { .. }) => {
            return Err(FieldError::at("orbit.observe")
                .text("give ")
                .key("orbit.observe")
                .form(" STATE", "")
                .text(": the state whose values at the section are drawn")
                .into());
        }
    };
    let observe = state_index(&system, &observed, "orbit.observe")?;
    let k = spec.points.unwrap_or(DEFAULT_POINTS);
    if k < 1 {
        return Err(FieldError::new("points", format!("must be at least 1 (got {k})")).into());
    }
    let tol = orbit.tol.unwrap_or(DEFAULT_TOL);
    if !(tol >= 0.0 && tol.is_finite()) {
        return Err(
            FieldError::new("orbit.tol", format!("must be zero or positive (got {tol})")).into(),
        );
    }
    let transient = spec.transient.unwrap_or(DEFAULT_TRANSIENT);
    if !(transient >= 0.0 && transient.is_finite()) {
        return Err(FieldError::new(
            "transient",
            format!("must be zero or positive (got {transient})"),
        )
        .into());
    }
    let (t0, t1) = match (spec.tspan, orbit.time) {
        (Some(_), Some(_)) => {
            return Err(FieldError::at("orbit.time")
                .text("give either ")
                .key("tspan")
                .text(" or ")
                .key("orbit.time")
                .text(", not both")
                .into());
        }
        (Some([a, b]), None) => {
            if b - a <= transient || (b - a).is_nan() {
                return Err(FieldError::at("tspan")
                    .key("tspan")
                    .form(format!(" {a}:{b}"), format!(" = [{a}, {b}]"))
                    .text(format!(
                        " leaves no time after the transient of {transient}; widen it or \
                         shorten "
                    ))
                    .key("transient")
                    .into());
            }
            (a, b)
        }
        (None, time) => {
            let time = time.unwrap_or(DEFAULT_TIME);
            if !(time > 0.0 && time.is_finite()) {
                return Err(FieldError::new(
                    "orbit.time",
                    format!("must be positive (got {time})"),
                )
                .into());
            }
            (0.0, transient + time)
        }
    };
    let (parameter, param_index) = swept_parameter(&system, spec)?;
    if spec.params_file.is_some() {
        return Err(FieldError::at("params_file")
            .key("params_file")
            .text(" gives every parameter per trajectory; the diagram's parameter comes from ")
            .key("sweep")
            .text(", so give ")
            .key("param")
            .text(" for the others instead")
            .into());
    }
    let solver = spec.solver.unwrap_or(Solver::Tsit5);
    if solver.is_stiff() || solver.is_sde() {
        return Err(FieldError::at("solver")
            .key("solver")
            .form(
                format!(" {}", solver.name()),
                format!(" = \"{}\"", solver.name()),
            )
            .text(
                ": the points are located as events, which the fixed-step (euler, heun, rk4) \
                 and adaptive (bs3, dp5, tsit5, dop853) solvers handle; choose one of those",
            )
            .into());
    }
    // Record-only events of the system change nothing in the dynamics but would take
    // record slots from the section; events that act stay.
    let dropped: Vec<String> = system
        .events
        .iter()
        .filter(|e| !e.action.cuts())
        .map(|e| e.name.clone())
        .collect();
    system.events.retain(|e| e.action.cuts());
    let (equation, direction) = match &kind {
        OrbitKind::Section {
            equation,
            direction,
        } => (equation.clone(), direction.clone()),
        OrbitKind::Maxima { equation, .. } => (equation.clone(), Direction::Down.name().into()),
    };
    let events = RunSpec {
        solver: Some(solver),
        tspan: Some([t0, t1]),
        section: Some(equation),
        direction: Some(direction),
        transient: Some(transient),
        points: Some(k),
        orbit: None,
        ..spec.clone()
    };
    let problem = problem_for_system(system, &events)?;
    let section = problem.system().events.len() - 1;
    if let OrbitKind::Section { equation, .. } = &kind
        && !moves_along_orbit(
            problem.system(),
            &problem.system().events[section].condition,
        )
    {
        return Err(still_section(equation));
    }
    problem
        .check()
        .map_err(|e| SpecError::Input(e.to_string()))?;
    let n = problem.ensemble().n;
    // The points are held in host memory, N × K values at most.
    if host_results_fit("", "", n as u64, k, Precision::F64).is_err() {
        return Err(FieldError::at("points")
            .text(format!(
                "{n} trajectories × {k} points would take {:.1} GiB of host memory; lower ",
                (n as f64 * k as f64 * 8.0) / (1u64 << 30) as f64
            ))
            .key("n")
            .text(" or ")
            .key("points")
            .into());
    }
    Ok(OrbitProblem {
        problem,
        kind,
        section,
        observe,
        observed,
        parameter,
        param_index,
        k,
        transient,
        span: (t0, t1),
        tol,
        dropped,
    })
}

/// Run-config keys a simulation reads and an orbit diagram does not, with why: a key that
/// would be ignored is a mistake, not a default.
const UNREAD: [(&str, &str); 11] = [
    ("saveat", "chooses a simulation's save times"),
    ("save_every", "chooses a simulation's save times"),
    ("outputs", "chooses a simulation's output files"),
    (
        "quantiles",
        "sets the levels of a simulation's montecarlo output",
    ),
    (
        "events",
        "sets the records a simulation keeps; the points kept here are `points`",
    ),
    ("inputs_file", "gives input signals' values per trajectory"),
    ("antithetic", "pairs the noise of stochastic trajectories"),
    (
        "brownian_depth",
        "sizes the Brownian tree of stochastic runs",
    ),
    (
        "fixed_step",
        "takes an adaptive pair's steps without error control",
    ),
    (
        "sensitivities",
        "asks a simulation for its forward sensitivities",
    ),
    (
        "sensitivity_error",
        "sets the error control of a simulation's sensitivities",
    ),
];

fn refuse_unread(spec: &RunSpec) -> Result<(), SpecError> {
    let set = [
        spec.saveat.is_some(),
        spec.save_every.is_some(),
        spec.outputs.is_some(),
        spec.quantiles.is_some(),
        spec.events.is_some(),
        spec.inputs_file.is_some(),
        spec.antithetic.is_some(),
        spec.brownian_depth.is_some(),
        spec.fixed_step.is_some(),
        spec.sensitivities.is_some(),
        spec.sensitivity_error.is_some(),
    ];
    match UNREAD.iter().zip(set).find(|(_, set)| *set) {
        Some(((key, what), _)) => Err(FieldError::new(
            *key,
            format!("{what}; an orbit diagram does not read it, so leave it out"),
        )
        .into()),
        None => Ok(()),
    }
}

/// The index of state `name`, or an error at `key` naming the states there are.
fn state_index(system: &System, name: &str, key: &str) -> Result<usize, SpecError> {
    system.state_index(name).ok_or_else(|| {
        let names: Vec<&str> = system.states.iter().map(|v| v.name.as_str()).collect();
        let hint = match did_you_mean(name, names.iter().copied()) {
            Some(m) => format!("did you mean '{m}'? "),
            None => String::new(),
        };
        FieldError::at(key)
            .key(key)
            .form(format!(" {name}"), format!(" = \"{name}\""))
            .text(format!(
                ": {} has no state '{name}'; {hint}its states are {}",
                system.name(),
                names.join(", ")
            ))
            .into()
    })
}

/// The one swept parameter's name and index. A range given high to low is refused: the
/// rows would only come out in reverse (every trajectory starts from the same state), while
/// the summary's range and the picture's axis run from low to high, so the user's order
/// could not be kept everywhere; one order everywhere is clearer than a silent flip.
fn swept_parameter(system: &System, spec: &RunSpec) -> Result<(String, usize), SpecError> {
    let name = match spec.sweep.keys().collect::<Vec<_>>()[..] {
        [name] => name.clone(),
        [] => {
            return Err(FieldError::at("sweep")
                .text("give ")
                .key("sweep")
                .form(
                    " PARAM=LO:HI (with -n N) or PARAM=LO:HI:COUNT",
                    " (a table, PARAM = [lo, hi] with n, or [lo, hi, count])",
                )
                .text(": the parameter drawn across the diagram")
                .into());
        }
        _ => {
            return Err(FieldError::at("sweep")
                .text("an orbit diagram sweeps one parameter; give ")
                .key("sweep")
                .text(" once (fix others with ")
                .key("param")
                .text(")")
                .into());
        }
    };
    let key = format!("sweep.{name}");
    let index = system.param_index(&name).ok_or_else(|| {
        let names: Vec<&str> = system.params.iter().map(|v| v.name.as_str()).collect();
        let hint = match did_you_mean(&name, names.iter().copied()) {
            Some(m) => format!("did you mean '{m}'? "),
            None => String::new(),
        };
        FieldError::at(key.clone()).key(key.clone()).text(format!(
            ": {} has no parameter '{name}'; {hint}its parameters are {}",
            system.name(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
    })?;
    let range: Vec<f64> = match &spec.sweep[&name] {
        toml::Value::Array(a) => a
            .iter()
            .filter_map(|v| match v {
                toml::Value::Float(f) => Some(*f),
                toml::Value::Integer(i) => Some(*i as f64),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    // Malformed ranges are the run spec's to refuse (problem_for_system).
    if let [lo, hi, ref rest @ ..] = range[..]
        && lo > hi
    {
        let count: String = rest.iter().map(|c| format!(":{c}")).collect();
        let list: String = rest.iter().map(|c| format!(", {c}")).collect();
        return Err(FieldError::at(key.clone())
            .key(key)
            .text(format!(
                " runs from {lo} down to {hi}; an orbit diagram's parameter runs upwards (its \
                 rows, its summary and its picture's axis), so give it as "
            ))
            .form(
                format!("{name}={hi}:{lo}{count}"),
                format!("[{hi}, {lo}{list}]"),
            )
            .into());
    }
    Ok((name, index))
}

/// A section whose condition cannot change along an orbit ("1 = 2", parameters only): it
/// is never crossed, so the run would record nothing.
fn still_section(equation: &str) -> SpecError {
    let source = Source::new("--section", equation);
    SpecError::Diagnostics(Diagnostics::from(
        Diagnostic::new(
            "this section depends on neither the state nor t, so no orbit crosses it and no \
             point would be recorded",
            &source,
            0..equation.len(),
        )
        .with_hint("make it a condition on the states, e.g. \"z = 27\""),
    ))
}
