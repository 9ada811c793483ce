//! `phaseflow lyapunov` as data (a run config with a `[lyapunov]` table, a JSON body, flags
//! turned into a spec): the checked `LyapunovProblem` it describes, or one error at the key
//! at fault. The ensemble keys (`n`, `sweep`, `param`, `set`, `u0`, `params_file`, `seed`)
//! mean what they mean for `simulate`; `solver`, `precision`, `dt`, `tspan` and `transient`
//! keep their names; `[lyapunov]` adds `k`, `time`, `renorm` and `blocks`. Every other key
//! is refused, since nothing would read it.

use super::error::{FieldError, SpecError};
use super::ode_errors::grid_error;
use super::run::{RunSpec, problem_for_system};
use super::unread::refuse_unread;
use crate::model::System;
use crate::ode::Solver;
use crate::ode::lyapunov::problem::check_system;
use crate::ode::lyapunov::{DEFAULT_BLOCKS, LyapunovError, LyapunovProblem};

/// Time integrated before the exponents are measured, unless told otherwise.
pub const DEFAULT_TRANSIENT: f64 = 10.0;
/// Time the exponents are averaged over, unless told otherwise (or a `tspan` is given).
pub const DEFAULT_TIME: f64 = 100.0;
/// Steps of `dt` between re-orthonormalisations, unless `renorm` is given.
pub const DEFAULT_RENORM_STEPS: f64 = 10.0;

/// The run-config keys `phaseflow lyapunov` reads besides its table.
pub const READS: [&str; 14] = [
    "system",
    "n",
    "seed",
    "set",
    "param",
    "sweep",
    "params_file",
    "u0",
    "solver",
    "precision",
    "dt",
    "tspan",
    "transient",
    "out",
];

/// Why a key that `simulate` reads means nothing to a Lyapunov run.
fn why_unread(key: &str, e: FieldError) -> FieldError {
    match key {
        "rtol" | "atol" | "dtmin" | "dtmax" | "max_steps" | "safety" | "max_growth"
        | "max_shrink" | "fixed_step" => e
            .text(": it takes fixed steps of ")
            .key("dt")
            .text(" (an adaptive pair's propagating method, without error control)"),
        "saveat" | "save_every" | "outputs" | "quantiles" => {
            e.text(": it keeps no saves, only each trajectory's exponents and final state")
        }
        "events" | "section" | "direction" | "points" => e.text(
            ": it records no events (`phaseflow orbit-diagram` records a section's crossings)",
        ),
        "antithetic" | "brownian_depth" => e.text(": Lyapunov spectra are computed for ODEs"),
        "inputs_file" => e.text(": its kernel takes no input signals"),
        _ => e,
    }
}

/// The Lyapunov problem `spec` describes for `system` (its `system` key is not read):
/// defaults transient 10, time 100 (or `tspan` T0:T1: the transient from T0, then
/// averaging to T1), renorm 10 steps of `dt`, `DEFAULT_BLOCKS` blocks, rk4, the full
/// spectrum, `dt` the system's suggestion.
pub fn lyapunov_problem(system: System, spec: &RunSpec) -> Result<LyapunovProblem, SpecError> {
    spec.only_analysis(Some("lyapunov"))?;
    refuse_unread(spec, "lyapunov", &READS, why_unread)?;
    let table = spec.lyapunov.clone().unwrap_or_default();
    let k = table.k.unwrap_or(system.dim());
    check_system(&system, k).map_err(|e| refusal(e, &Keys::default()))?;
    let solver = spec.solver.unwrap_or_default();
    if solver.is_sde() || solver.is_stiff() {
        return Err(FieldError::new(
            "solver",
            format!(
                "{}: Lyapunov spectra take an explicit Runge-Kutta method (euler, heun, rk4, or \
                 a pair's fixed step: bs3, dp5, tsit5, dop853)",
                solver.name()
            ),
        )
        .into());
    }
    let dt = spec.dt.or(system.meta.dt).ok_or_else(|| {
        FieldError::at("dt")
            .text(format!("{} suggests no step size; give ", system.name()))
            .key("dt")
    })?;
    let transient = spec.transient.unwrap_or(DEFAULT_TRANSIENT);
    let (t0, time) = averaging(spec.tspan, table.time, transient)?;

    // The ensemble as `simulate` builds it; its span and step are placeholders (the
    // problem's own are checked below), so only the ensemble keys can fail here.
    let ensemble_spec = RunSpec {
        n: spec.n,
        seed: spec.seed,
        set: spec.set.clone(),
        param: spec.param.clone(),
        sweep: spec.sweep.clone(),
        params_file: spec.params_file.clone(),
        u0: spec.u0.clone(),
        solver: Some(Solver::Rk4),
        tspan: Some([0.0, 1.0]),
        dt: Some(1.0),
        ..RunSpec::default()
    };
    let ensemble = problem_for_system(system.clone(), &ensemble_spec)?
        .ensemble()
        .clone();
    let problem = LyapunovProblem {
        ensemble,
        system,
        precision: spec.precision.unwrap_or_default(),
        tableau: solver.step_tableau(),
        t0,
        dt,
        transient,
        time,
        renorm: table.renorm.unwrap_or(DEFAULT_RENORM_STEPS * dt),
        k,
        blocks: table.blocks.unwrap_or(DEFAULT_BLOCKS),
    };
    let keys = Keys {
        time: if spec.tspan.is_some() {
            "tspan"
        } else {
            "lyapunov.time"
        },
        renorm_default: table.renorm.is_none().then_some(problem.renorm),
    };
    problem.check().map_err(|e| refusal(e, &keys))?;
    Ok(problem)
}

/// Where averaging starts and how long it lasts: from 0 for `time` (default 100), or
/// `tspan`'s T0 with whatever the transient leaves of it.
fn averaging(
    tspan: Option<[f64; 2]>,
    time: Option<f64>,
    transient: f64,
) -> Result<(f64, f64), FieldError> {
    let Some([a, b]) = tspan else {
        return Ok((0.0, time.unwrap_or(DEFAULT_TIME)));
    };
    let span = || FieldError::at("tspan").key("tspan").text(" ");
    let written = |e: FieldError| e.form(format!("{a}:{b}"), format!("[{a}, {b}]"));
    if time.is_some() {
        return Err(FieldError::at("lyapunov.time")
            .text("give either ")
            .key("tspan")
            .text(" or ")
            .key("lyapunov.time")
            .text(
                ", not both: the span is the transient and then the averaging time, so either \
                 one sets the other",
            ));
    }
    if !(a.is_finite() && b.is_finite()) {
        return Err(written(span()).text(" must hold finite times"));
    }
    if b <= a {
        return Err(written(span())
            .text(" does not run forwards; give ")
            .form("T0:T1", "[t0, t1]")
            .text(" with the end after the start"));
    }
    if b - a <= transient {
        return Err(written(span())
            .text(format!(
                " leaves no time after the transient of {transient}; widen it or shorten "
            ))
            .key("transient"));
    }
    Ok((a, b - a - transient))
}

/// The keys a Lyapunov check's words stand for in this spec.
#[derive(Default)]
struct Keys {
    /// `tspan` when the averaging time came from it, else `lyapunov.time`.
    time: &'static str,
    /// The renorm interval when it was not given (it defaulted to 10 steps).
    renorm_default: Option<f64>,
}

/// The key that holds the value a `LyapunovError` names.
fn key_of(what: &str, keys: &Keys) -> &'static str {
    match what {
        "dt" => "dt",
        "time" => keys.time,
        "renorm" => "lyapunov.renorm",
        "transient" => "transient",
        _ => "tspan", // t0
    }
}

/// A failed Lyapunov check as an error at the key that holds the value.
fn refusal(e: LyapunovError, keys: &Keys) -> SpecError {
    let about_renorm = matches!(
        &e,
        LyapunovError::RenormDoesNotDivide { .. }
            | LyapunovError::TooFewRenorms { .. }
            | LyapunovError::BadTime { what: "renorm", .. }
            | LyapunovError::NotWholeSteps { what: "renorm", .. }
    );
    let field = match e {
        LyapunovError::Stochastic { .. }
        | LyapunovError::Events { .. }
        | LyapunovError::Jacobian { .. } => FieldError::at("system").text(e.to_string()),
        LyapunovError::TooLarge { system, k, need } => FieldError::at("lyapunov.k")
            .text(format!(
                "{k} exponents of '{system}' need dim·(k + 1) = {need} reals per trajectory in \
                 registers (the state and {k} tangent vectors); at most {} are supported: ask \
                 for fewer exponents (",
                crate::ode::lyapunov::MAX_AUGMENTED
            ))
            .key("lyapunov.k")
            .text(") or use a smaller system"),
        LyapunovError::BadK { system, k, dim } => FieldError::new(
            "lyapunov.k",
            format!(
                "(the number of exponents) must be between 1 and the {dim} states of \
                 '{system}' (got {k})"
            ),
        ),
        LyapunovError::BadTime { what, rule, value } => FieldError::new(
            key_of(what, keys),
            format!("must be a finite number {rule} (got {value})"),
        ),
        LyapunovError::NotWholeSteps {
            what,
            value,
            dt,
            steps,
        } => {
            let key = key_of(what, keys);
            let e = FieldError::at(key).key(key);
            // The averaging time from a span is the span less the transient.
            let e = if key == "tspan" {
                e.text(format!(" leaves an averaging time of {value}, which"))
            } else {
                e.text(format!(" = {value}"))
            };
            e.text(" is not a whole number of steps of ")
                .key("dt")
                .text(format!(
                    " = {dt} ({steps:.4} steps); choose values that {dt} divides"
                ))
        }
        LyapunovError::RenormDoesNotDivide { time, renorm } => FieldError::at("lyapunov.renorm")
            .key("lyapunov.renorm")
            .text(format!(
                " = {renorm} does not divide the averaging time {time} ("
            ))
            .key(keys.time)
            .text("); choose an interval that does"),
        LyapunovError::TooFewRenorms {
            time,
            renorm,
            renorms,
        } => FieldError::at("lyapunov.renorm")
            .key("lyapunov.renorm")
            .text(format!(
                " = {renorm} fits {renorms} time(s) in the averaging time {time}; the \
                 convergence estimate needs at least 2: shorten it or lengthen "
            ))
            .key(keys.time),
        LyapunovError::BadBlocks(b) => FieldError::new(
            "lyapunov.blocks",
            format!("must be at least 2 (the estimate is the spread of block means; got {b})"),
        ),
        LyapunovError::Grid(g) => grid_error(g),
    };
    match keys.renorm_default {
        Some(renorm) if about_renorm => field
            .text(" (")
            .key("lyapunov.renorm")
            .text(" was not given: it defaults to 10 steps of ")
            .key("dt")
            .text(format!(", here {renorm})"))
            .into(),
        _ => field.into(),
    }
}

/// The ensemble keys of `spec` (`n`, `seed`, `set`, `param`, `sweep`, `params_file`, `u0`)
/// that are set, as JSON: which trajectories ran, for a run's summary.
pub fn ensemble_json(spec: &RunSpec) -> serde_json::Value {
    const ENSEMBLE: [&str; 7] = ["n", "seed", "set", "param", "sweep", "params_file", "u0"];
    let mut v = serde_json::to_value(spec).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.retain(|key, value| {
            ENSEMBLE.contains(&key.as_str())
                && !value.is_null()
                && !value.as_object().is_some_and(|m| m.is_empty())
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builtin;

    fn lorenz() -> System {
        builtin("lorenz").unwrap().unwrap()
    }

    fn spec(text: &str) -> RunSpec {
        toml::from_str(text).unwrap()
    }

    fn refused(system: System, text: &str) -> FieldError {
        match lyapunov_problem(system, &spec(text)) {
            Err(SpecError::Field(f)) => f,
            Err(other) => panic!("{text:?}: {other} names no key"),
            Ok(_) => panic!("{text:?} was accepted"),
        }
    }

    #[test]
    fn defaults_are_the_commands() {
        let p =
            lyapunov_problem(lorenz(), &spec("n = 4\ndt = 0.01\n[sweep]\nrho = [0, 30]")).unwrap();
        assert_eq!((p.t0, p.transient, p.time), (0.0, 10.0, 100.0));
        assert_eq!((p.k, p.blocks, p.tableau.name), (3, DEFAULT_BLOCKS, "rk4"));
        assert!((p.renorm - 0.1).abs() < 1e-15);
        assert_eq!(p.ensemble.n, 4);
        assert_eq!(p.ensemble.params(3..4)[1], 30.0);

        let p = lyapunov_problem(
            lorenz(),
            &spec(
                "n = 1\ndt = 0.01\ntspan = [5, 40]\ntransient = 5\nsolver = 'tsit5'\n\
                 precision = 'f64'\n[lyapunov]\nk = 2\nrenorm = 0.5\nblocks = 5",
            ),
        )
        .unwrap();
        assert_eq!((p.t0, p.transient, p.time), (5.0, 5.0, 30.0));
        assert_eq!((p.k, p.blocks, p.renorm), (2, 5, 0.5));
        assert_eq!(p.tableau.name, "tsit5");
        assert_eq!(p.precision, crate::ode::Precision::F64);
    }

    #[test]
    fn bad_values_are_refused_at_their_keys() {
        let cases = [
            (
                "n = 2\n[lyapunov]\nk = 4",
                "lyapunov.k",
                "between 1 and the 3 states",
            ),
            ("n = 2\n[lyapunov]\nk = 0", "lyapunov.k", "(got 0)"),
            (
                "n = 2\n[lyapunov]\ntime = -1",
                "lyapunov.time",
                "above zero (got -1)",
            ),
            (
                "n = 2\ndt = 0.01\n[lyapunov]\nrenorm = 0.0123",
                "lyapunov.renorm",
                "not a whole number of steps of dt",
            ),
            (
                "n = 2\ndt = 0.01\n[lyapunov]\nrenorm = 0.3",
                "lyapunov.renorm",
                "does not divide the averaging time 100",
            ),
            (
                "n = 2\ndt = 0.01\n[lyapunov]\ntime = 0.1",
                "lyapunov.renorm",
                "renorm was not given: it defaults to 10 steps of dt, here 0.1",
            ),
            (
                "n = 2\n[lyapunov]\nblocks = 1",
                "lyapunov.blocks",
                "at least 2",
            ),
            (
                "n = 2\ntransient = -1",
                "transient",
                "zero or more (got -1)",
            ),
            (
                "n = 2\ndt = 0.03",
                "transient",
                "whole number of steps of dt",
            ),
            (
                "n = 2\ntspan = [0, 5]",
                "tspan",
                "leaves no time after the transient of 10",
            ),
            ("n = 2\ntspan = [5, 0]", "tspan", "does not run forwards"),
            (
                "n = 2\ntspan = [0, 30]\n[lyapunov]\ntime = 5",
                "lyapunov.time",
                "not both",
            ),
            (
                "n = 2\ndt = 0.01\ntspan = [0, 20.005]",
                "tspan",
                "leaves an averaging time of",
            ),
            (
                "n = 2\nsolver = 'rodas5p'",
                "solver",
                "explicit Runge-Kutta",
            ),
            (
                "n = 2\n[sweep]\nrhoo = [0, 1]",
                "sweep.rhoo",
                "did you mean 'rho'?",
            ),
            ("n = 0", "n", "at least 1"),
            (
                "n = 2\nsaveat = '0:1:10'",
                "saveat",
                "not read by `phaseflow lyapunov`",
            ),
            ("n = 2\nrtol = 1e-6", "rtol", "fixed steps of dt"),
            ("n = 2\nsection = 'z = 27'", "section", "records no events"),
            ("n = 2\ninputs_file = 'u.npy'", "inputs_file", "not read"),
            (
                "n = 2\n[orbit]\nmaxima = 'z'",
                "orbit",
                "phaseflow orbit-diagram",
            ),
            (
                "n = 2\n[basins]\nwindow = 1",
                "basins",
                "`lyapunov` does not read",
            ),
        ];
        for (text, key, words) in cases {
            let e = refused(lorenz(), text);
            assert_eq!(e.field, key, "{text:?}: {e}");
            assert!(e.to_string().contains(words), "{text:?}: {e}");
        }
        let noisy = builtin("stochastic_lorenz").unwrap().unwrap();
        let e = refused(noisy, "n = 2");
        assert_eq!(e.field, "system");
        assert!(e.to_string().contains("noise block"), "{e}");
        let undated = System::from_equations("s", &[("x", 1.0)], &[], "dx = -x").unwrap();
        let e = refused(undated, "n = 2");
        assert_eq!(e.to_string(), "s suggests no step size; give dt");
    }

    #[test]
    fn the_ensemble_keys_say_which_trajectories_ran() {
        let s = spec("n = 3\ndt = 0.01\nseed = 2\n[sweep]\nrho = [0, 1]\n[lyapunov]\nk = 1");
        assert_eq!(
            ensemble_json(&s),
            serde_json::json!({"n": 3, "seed": 2, "sweep": {"rho": [0, 1]}})
        );
    }
}
