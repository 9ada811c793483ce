//! `phaseflow basins` as data (a run config with a `[basins]` table, a JSON body, flags
//! turned into a spec): the checked `BasinsProblem` it describes, or one error at the key at
//! fault. The run keeps `simulate`'s names (`set`, `param`, `tspan`, `solver`, `dt`,
//! `precision`, the adaptive controls `rtol`, `atol`, `max_steps`, `dtmin`, `dtmax`, `safety`,
//! `max_growth`, `max_shrink`, `fixed_step`); `[basins]` adds the grid of initial states and
//! how trajectories are labelled. Every other key is refused, since nothing would read it.

use super::error::{FieldError, SpecError};
use super::run::{OrderedMap, RunSpec, U0Spec, lookup, problem_for_system};
use super::unread::refuse_unread;
use crate::model::System;
use crate::ode::Solver;
use crate::ode::basins::{self, BasinsError, BasinsProblem, DEFAULT_MAX_ATTRACTORS, Match, Method};

/// Box side (grid points) of the basin entropy unless told otherwise.
pub const DEFAULT_ENTROPY_BOX: usize = 5;
/// Largest box side of the basin entropy.
pub const MAX_ENTROPY_BOX: u32 = 1000;
/// Saves in the window unless told otherwise.
pub const DEFAULT_SAMPLES: usize = 100;
/// Most points along one grid axis.
pub const MAX_GRID_COUNT: f64 = 1e6;

/// The run-config keys `phaseflow basins` reads besides its table.
pub const READS: [&str; 17] = [
    "system",
    "set",
    "param",
    "tspan",
    "solver",
    "dt",
    "precision",
    "rtol",
    "atol",
    "max_steps",
    "dtmin",
    "dtmax",
    "safety",
    "max_growth",
    "max_shrink",
    "fixed_step",
    "out",
];

/// Why a key that `simulate` reads means nothing to a basins run.
fn why_unread(key: &str, e: FieldError) -> FieldError {
    match key {
        "n" => e
            .text(": the grid (")
            .key("basins.grid")
            .text(") sets the number of trajectories"),
        "u0" | "seed" => e
            .text(": the initial states are the grid, ")
            .key("basins.grid"),
        "sweep" | "params_file" => e
            .text(": one parameter set labels the whole grid; set parameters with ")
            .key("param"),
        "saveat" | "save_every" | "outputs" | "quantiles" | "transient" => e
            .text(": it saves only the stretch at the end of the run that describes attractors (")
            .key("basins.window")
            .text(")"),
        "events" | "section" | "direction" | "points" => e.text(": it records no events"),
        "antithetic" | "brownian_depth" => {
            e.text(": basins of attraction are for deterministic systems")
        }
        "inputs_file" => e.text(": the grid runs without input signals"),
        _ => e,
    }
}

/// `basins.entropy_box`, checked, or its default: the box side of the basin entropy, which
/// the summary (`BasinsResult::summary_json`) is computed with.
pub fn entropy_box(spec: &RunSpec) -> Result<usize, SpecError> {
    match spec.basins.as_ref().and_then(|b| b.entropy_box) {
        None => Ok(DEFAULT_ENTROPY_BOX),
        Some(b) if (1..=MAX_ENTROPY_BOX).contains(&b) => Ok(b as usize),
        Some(b) => Err(FieldError::new(
            "basins.entropy_box",
            format!("must be from 1 to {MAX_ENTROPY_BOX} grid points (got {b})"),
        )
        .into()),
    }
}

/// One grid axis: the state's name, its range and its number of points.
struct GridAxis {
    name: String,
    lo: f64,
    hi: f64,
    count: usize,
}

/// `basins.grid`, checked: two states of `system`, each `[lo, hi, count]` with a whole
/// count from 1 to a million and a non-empty range when it has several points.
fn grid_axes(system: &System, grid: &OrderedMap) -> Result<Vec<GridAxis>, FieldError> {
    if grid.len() != 2 {
        return Err(FieldError::at("basins.grid")
            .text("give ")
            .form(
                "--grid exactly twice (STATE=LO:HI:COUNT, the first drawn horizontally)",
                "basins.grid two states, each = [lo, hi, count] (the first drawn horizontally)",
            )
            .text(format!("; {} given", grid.len())));
    }
    let states: Vec<String> = system.states.iter().map(|v| v.name.clone()).collect();
    let mut axes = Vec::new();
    for (name, value) in grid {
        lookup(&states, name, "state", "basins.grid", system.name()).map_err(|e| match e {
            SpecError::Field(f) => f,
            other => FieldError::at("basins.grid").text(other.to_string()),
        })?;
        let key = format!("basins.grid.{name}");
        let at = || FieldError::at(key.as_str()).key(key.as_str());
        let numbers: Option<Vec<f64>> = match value {
            toml::Value::Array(a) => a
                .iter()
                .map(|x| match x {
                    toml::Value::Float(f) => Some(*f),
                    toml::Value::Integer(i) => Some(*i as f64),
                    _ => None,
                })
                .collect(),
            _ => None,
        };
        let [lo, hi, count] = numbers.as_deref().unwrap_or_default()[..] else {
            return Err(at().text(": expected ").form(
                format!("LO:HI:COUNT, e.g. {name}=-2:2:400"),
                format!("[lo, hi, count], e.g. {name} = [-2, 2, 400]"),
            ));
        };
        if !(lo.is_finite() && hi.is_finite()) {
            return Err(at().text(format!(": the range must be finite (got {lo} and {hi})")));
        }
        if !(count >= 1.0 && count.fract() == 0.0 && count <= MAX_GRID_COUNT) {
            return Err(at().text(format!(
                ": the point count must be a whole number from 1 to 1000000, not {count}"
            )));
        }
        if lo == hi && count > 1.0 {
            return Err(at()
                .text(": the range ")
                .form(format!("{lo}:{hi}"), format!("[{lo}, {hi}]"))
                .text(" is empty; give ")
                .form("LO < HI", "lo < hi"));
        }
        axes.push(GridAxis {
            name: name.clone(),
            lo,
            hi,
            count: count as usize,
        });
    }
    Ok(axes)
}

/// The basins problem `spec` describes for `system` (its `system` key is not read):
/// defaults tsit5, the system's span, a window of a tenth of the span with 100 saves,
/// matching within 0.01 + 0.01·|value|, at most `DEFAULT_MAX_ATTRACTORS` attractors.
pub fn basins_problem(system: System, spec: &RunSpec) -> Result<BasinsProblem, SpecError> {
    spec.only_analysis(Some("basins"))?;
    refuse_unread(spec, "basins", &READS, why_unread)?;
    entropy_box(spec)?;
    let table = spec.basins.clone().unwrap_or_default();
    if system.noise.is_some() {
        return Err(FieldError::at("system")
            .text(format!(
                "{} has a noise block; basins of attraction are for deterministic systems",
                system.name()
            ))
            .into());
    }
    let axes = grid_axes(&system, &table.grid)?;
    if let Some(a) = axes.iter().find(|a| spec.set.contains_key(&a.name)) {
        let name = &a.name;
        return Err(FieldError::at(format!("basins.grid.{name}"))
            .key(format!("set.{name}"))
            .text(" and ")
            .key(format!("basins.grid.{name}"))
            .text(format!(" both set state '{name}'; give one"))
            .into());
    }
    // The grid travels as simulate's `u0.grid`, the second axis first (slowest), so that
    // rows follow it.
    let grid: OrderedMap = axes
        .iter()
        .rev()
        .map(|a| {
            let v = [a.lo, a.hi, a.count as f64].map(toml::Value::Float);
            (a.name.clone(), toml::Value::Array(v.to_vec()))
        })
        .collect();
    let run_spec = RunSpec {
        solver: Some(spec.solver.unwrap_or(Solver::Tsit5)),
        tspan: spec.tspan,
        dt: spec.dt,
        set: spec.set.clone(),
        param: spec.param.clone(),
        u0: Some(U0Spec {
            grid: Some(grid),
            ..U0Spec::default()
        }),
        precision: spec.precision,
        rtol: spec.rtol.clone(),
        atol: spec.atol.clone(),
        max_steps: spec.max_steps,
        dtmin: spec.dtmin,
        dtmax: spec.dtmax,
        safety: spec.safety,
        max_growth: spec.max_growth,
        max_shrink: spec.max_shrink,
        fixed_step: spec.fixed_step,
        ..RunSpec::default()
    };
    let mut run = problem_for_system(system, &run_spec)?;
    let (t0, t1) = run.span();
    let method = match &table.classify {
        Some(text) => {
            for (key, given) in [
                ("basins.window", table.window.is_some()),
                ("basins.samples", table.samples.is_some()),
                ("basins.match_atol", table.match_atol.is_some()),
                ("basins.match_rtol", table.match_rtol.is_some()),
                ("basins.escape", table.escape.is_some()),
            ] {
                if given {
                    return Err(FieldError::at(key)
                        .key(key)
                        .text(" applies to matching attractors by their window; ")
                        .key("basins.classify")
                        .text(" labels by the final state alone")
                        .into());
                }
            }
            basins::save_window(&mut run, 0.0, 1).map_err(problem_error)?;
            Method::Expression(
                basins::expression(run.system(), text, "basins.classify")
                    .map_err(SpecError::Diagnostics)?,
            )
        }
        None => {
            let window = table.window.unwrap_or((t1 - t0) / 10.0);
            let samples = table.samples.unwrap_or(DEFAULT_SAMPLES);
            if samples == 0 {
                return Err(FieldError::new("basins.samples", "must be at least 1").into());
            }
            if let Some(r) = table.escape
                && !(r > 0.0 && r.is_finite())
            {
                return Err(FieldError::new(
                    "basins.escape",
                    format!("must be positive (got {r})"),
                )
                .into());
            }
            let defaults = Match::default();
            let tol = Match {
                atol: table.match_atol.unwrap_or(defaults.atol),
                rtol: table.match_rtol.unwrap_or(defaults.rtol),
            };
            for (key, v) in [
                ("basins.match_atol", tol.atol),
                ("basins.match_rtol", tol.rtol),
            ] {
                if !(v >= 0.0 && v.is_finite()) {
                    return Err(FieldError::new(
                        key,
                        format!("must be zero or positive (got {v})"),
                    )
                    .into());
                }
            }
            if !(window >= 0.0 && window.is_finite()) {
                return Err(FieldError::new(
                    "basins.window",
                    format!("must be zero or positive (got {window})"),
                )
                .into());
            }
            if window > t1 - t0 {
                return Err(FieldError::new(
                    "basins.window",
                    format!("{window} is longer than the run (t {t0} → {t1})"),
                )
                .into());
            }
            basins::save_window(&mut run, window, samples).map_err(problem_error)?;
            Method::Features {
                window,
                tol,
                escape: table.escape,
            }
        }
    };
    let max_attractors = table.max_attractors.unwrap_or(DEFAULT_MAX_ATTRACTORS);
    if max_attractors == 0 {
        return Err(FieldError::new("basins.max_attractors", "must be at least 1").into());
    }
    let problem = BasinsProblem {
        run,
        method,
        max_attractors,
    };
    problem.check().map_err(problem_error)?;
    problem
        .run
        .check()
        .map_err(|e| SpecError::Input(e.to_string()))?;
    Ok(problem)
}

/// A basins check that the keys above did not catch (they catch all a spec can set).
fn problem_error(e: BasinsError) -> SpecError {
    SpecError::Input(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ode::{InitialStates, Problem};

    /// The unforced double well as a system file would give it: x'' = x − x³ − δ·x'.
    fn double_well() -> System {
        System::from_equations(
            "double_well",
            &[("x", 0.0), ("v", 0.0)],
            &[("delta", 0.3)],
            "dx = v\ndv = x - x^3 - delta*v",
        )
        .unwrap()
    }

    fn spec(text: &str) -> RunSpec {
        toml::from_str(text).unwrap()
    }

    const GRID: &str = "[basins.grid]\nx = [-2, 2, 20]\nv = [-1, 1, 10]\n";

    #[test]
    fn a_grid_and_defaults_make_the_commands_problem() {
        let p = basins_problem(double_well(), &spec(&format!("tspan = [0, 50]\n{GRID}"))).unwrap();
        let Problem::Adaptive(run) = &p.run else {
            panic!("tsit5 is adaptive")
        };
        assert_eq!(run.solver, Solver::Tsit5);
        assert_eq!(p.max_attractors, DEFAULT_MAX_ATTRACTORS);
        let Method::Features {
            window,
            tol,
            escape,
        } = &p.method
        else {
            panic!("features by default")
        };
        assert_eq!((*window, *tol, *escape), (5.0, Match::default(), None));
        assert_eq!(run.saveat.times(50.0).len(), DEFAULT_SAMPLES + 1);
        let g = p.grid().unwrap();
        assert_eq!(
            (g.x_name.as_str(), g.nx(), g.y_name.as_str(), g.ny()),
            ("x", 20, "v", 10)
        );
        assert!(matches!(run.ensemble.initial, InitialStates::Grid(_)));
        assert_eq!(run.ensemble.n, 200);
        assert_eq!(entropy_box(&spec(GRID)).unwrap(), DEFAULT_ENTROPY_BOX);

        let p = basins_problem(
            double_well(),
            &spec(&format!(
                "tspan = [0, 50]\nsolver = 'rk4'\ndt = 0.01\n{GRID}[basins]\nclassify = 'sign(x)'\n\
                 max_attractors = 3\nentropy_box = 2"
            )),
        )
        .unwrap();
        assert!(matches!(p.method, Method::Expression(_)));
        assert_eq!(p.max_attractors, 3);
    }

    #[test]
    fn bad_values_are_refused_at_their_keys() {
        let g = GRID;
        let cases = [
            (
                "tspan = [0, 50]\n[basins.grid]\nx = [-2, 2, 20]",
                "basins.grid",
                "1 given",
            ),
            (
                "tspan = [0, 50]\n[basins]\nwindow = 1",
                "basins.grid",
                "0 given",
            ),
            (
                "tspan = [0, 50]\n[basins.grid]\nx = [-2, 2, 20]\nq = [0, 1, 3]",
                "basins.grid.q",
                "'q' is not a state of double_well",
            ),
            (
                "tspan = [0, 50]\n[basins.grid]\nx = [-2, 2, 2.5]\nv = [0, 1, 3]",
                "basins.grid.x",
                "whole number from 1 to 1000000, not 2.5",
            ),
            (
                "tspan = [0, 50]\n[basins.grid]\nx = [-2, 2]\nv = [0, 1, 3]",
                "basins.grid.x",
                "expected [lo, hi, count]",
            ),
            (
                "tspan = [0, 50]\n[basins.grid]\nx = [1, 1, 5]\nv = [0, 1, 3]",
                "basins.grid.x",
                "the range [1, 1] is empty",
            ),
            (
                &format!("tspan = [0, 50]\nset = {{ x = 1 }}\n{g}"),
                "basins.grid.x",
                "set.x and basins.grid.x both set state 'x'",
            ),
            (
                &format!("tspan = [0, 50]\n{g}[basins]\nwindow = 500"),
                "basins.window",
                "500 is longer than the run (t 0 → 50)",
            ),
            (
                &format!("tspan = [0, 50]\n{g}[basins]\nwindow = -1"),
                "basins.window",
                "zero or positive",
            ),
            (
                &format!("tspan = [0, 50]\n{g}[basins]\nsamples = 0"),
                "basins.samples",
                "at least 1",
            ),
            (
                &format!("tspan = [0, 50]\n{g}[basins]\nescape = 0"),
                "basins.escape",
                "positive",
            ),
            (
                &format!("tspan = [0, 50]\n{g}[basins]\nmatch_atol = -1"),
                "basins.match_atol",
                "zero or positive",
            ),
            (
                &format!("tspan = [0, 50]\n{g}[basins]\nmax_attractors = 0"),
                "basins.max_attractors",
                "at least 1",
            ),
            (
                &format!("tspan = [0, 50]\n{g}[basins]\nentropy_box = 0"),
                "basins.entropy_box",
                "from 1 to 1000",
            ),
            (
                &format!("tspan = [0, 50]\n{g}[basins]\nclassify = 'x'\nwindow = 3"),
                "basins.window",
                "basins.window applies to matching attractors by their window; basins.classify",
            ),
            (
                &format!("tspan = [0, 50]\nn = 5\n{g}"),
                "n",
                "the grid (basins.grid) sets",
            ),
            (
                &format!("tspan = [0, 50]\nsaveat = '0:1:50'\n{g}"),
                "saveat",
                "not read",
            ),
            (
                &format!("tspan = [0, 50]\n[sweep]\ndelta = [0, 1]\n{g}"),
                "sweep",
                "with param",
            ),
            (
                &format!("tspan = [0, 50]\ntransient = 5\n{g}"),
                "transient",
                "basins.window",
            ),
            (
                &format!("tspan = [0, 50]\n[param]\ndeltaa = 1\n{g}"),
                "param.deltaa",
                "'delta'",
            ),
            (
                &format!("tspan = [0, 50]\nsolver = 'em'\ndt = 0.01\n{g}"),
                "solver",
                "no noise block",
            ),
            (
                &format!("tspan = [0, 50]\n{g}[lyapunov]\nk = 1"),
                "lyapunov",
                "`basins` does not",
            ),
        ];
        for (text, key, words) in cases {
            match basins_problem(double_well(), &spec(text)) {
                Err(SpecError::Field(e)) => {
                    assert_eq!(e.field, key, "{text:?}: {e}");
                    assert!(e.to_string().contains(words), "{text:?}: {e}");
                }
                Err(other) => panic!("{text:?}: {other} names no key"),
                Ok(_) => panic!("{text:?} was accepted"),
            }
        }
        let e = basins_problem(
            double_well(),
            &spec(&format!(
                "tspan = [0, 50]\n{g}[basins]\nclassify = 'sign(z)'"
            )),
        )
        .unwrap_err();
        assert!(
            matches!(&e, SpecError::Diagnostics(_)) && e.to_string().contains("unknown name 'z'"),
            "{e}"
        );
    }
}
