//! A run (simulation) request as the user states it (a config file, flags, or a JSON body sent to
//! `phaseflow serve`), and its translation into a checked `Problem`. Every way of getting it
//! wrong ends here as one sentence naming the key, never later in the middle of a run.

use super::analysis::{BasinsSpec, LyapunovSpec, OrbitSpec};
use super::config_file::{read_toml, relative_to_config};
use super::error::{FieldError, SpecError};
use super::ode_errors::{control_error, grid_error};
use crate::io::read_matrix;
use crate::model::diagnostic::did_you_mean;
use crate::model::{System, builtin, builtin_names, load_system_file};
use crate::ode::montecarlo::{DEFAULT_QUANTILES, quantile_levels_error};
use crate::ode::sde::{
    NoiseKey, SdeCheckError, SdeError, SdeMethod, SdeProblem, Steps as SdeSteps, default_tree_depth,
};
use crate::ode::stiff::{StiffError, StiffProblem};
use crate::ode::{
    AdaptiveProblem, Axis, Control, Ensemble, FixedStepProblem, InitialStates, Inputs, Parameters,
    Precision, Problem, Save, SaveAt, Solver, Table, TimeGrid, Tolerance,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Optional outputs of a run written to a directory; times.npy, status.npy and run.json are
/// always written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Output {
    /// states.npy: every saved state [n_save, N, dim]
    States,
    /// trajectory_{min,max,mean}.npy [N, dim]: over each trajectory's saves
    TrajectoryStats,
    /// ensemble_{mean,var,count}.npy [n_save, dim]: across trajectories per save time
    EnsembleStats,
    /// mc_{mean,var,stderr,min,max,count}.npy [n_save, dim] and mc_quantiles.npy
    /// [n_save, n_q, dim] (levels: `quantiles`): across trajectories per save time, the
    /// same bits however the run is chunked or split across devices
    Montecarlo,
}

/// toml's map keeps insertion order (the `preserve_order` feature), so grid axes come out
/// in the order the user wrote them.
pub type OrderedMap = toml::map::Map<String, toml::Value>;

/// Everything `phaseflow simulate` accepts; the config file's keys have the same names.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// A built-in system's name or the path of a system file.
    pub system: Option<String>,
    pub n: Option<usize>,
    pub solver: Option<Solver>,
    pub tspan: Option<[f64; 2]>,
    pub dt: Option<f64>,
    /// Adaptive solvers: take fixed steps of `dt` with the pair's propagating method, no
    /// error control (DiffEqGPU's `adaptive = false`).
    pub fixed_step: Option<bool>,
    pub save_every: Option<u32>,
    pub out: Option<PathBuf>,
    pub seed: Option<u64>,
    /// Initial-state overrides: name → value.
    #[serde(default)]
    pub set: OrderedMap,
    /// Parameter overrides: name → value.
    #[serde(default)]
    pub param: OrderedMap,
    /// Parameter sweeps: name → [lo, hi] or [lo, hi, count].
    #[serde(default)]
    pub sweep: OrderedMap,
    pub params_file: Option<PathBuf>,
    /// Input signals' sensor values: an .npy [N, total sensors].
    pub inputs_file: Option<PathBuf>,
    pub u0: Option<U0Spec>,
    pub precision: Option<Precision>,
    /// Adaptive solvers: a number for every state, a list (one per state) or a table of
    /// state names ("*" for the others).
    pub rtol: Option<toml::Value>,
    pub atol: Option<toml::Value>,
    pub dtmin: Option<f64>,
    pub dtmax: Option<f64>,
    pub max_steps: Option<u32>,
    pub safety: Option<f64>,
    pub max_growth: Option<f64>,
    pub max_shrink: Option<f64>,
    /// Adaptive solvers: "t0:dt:t1" or a list of times.
    pub saveat: Option<toml::Value>,
    /// Optional outputs with `out` (default: states).
    pub outputs: Option<Vec<Output>>,
    /// SDE solvers: trajectory 2j+1 takes trajectory 2j's Wiener increments negated
    /// (antithetic variates).
    pub antithetic: Option<bool>,
    /// milstein-adaptive: levels of the virtual Brownian tree (1 to 24; leaves of
    /// 2^-depth of the span; default 16 in f32, 20 in f64).
    pub brownian_depth: Option<u32>,
    /// Quantile levels of the `montecarlo` output, each in [0, 1] (default
    /// 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99).
    pub quantiles: Option<Vec<f64>>,
    /// Systems with events: records kept per trajectory (default 64).
    pub events: Option<usize>,
    /// A Poincaré section "z = 27": a continuous record event added to the system.
    pub section: Option<String>,
    /// The section's crossing direction: "up", "down" or "both" (default).
    pub direction: Option<String>,
    /// Events before t0 + transient are neither recorded nor counted.
    pub transient: Option<f64>,
    /// Section points kept per trajectory (the same as `events` for a section).
    pub points: Option<usize>,
    /// Forward sensitivities: the parameters and initial values (a state's name and 0,
    /// `x0`) to differentiate the solution with respect to (`sensitivities.npy`).
    pub sensitivities: Option<Vec<String>>,
    /// "include" (default) or "exclude": whether an adaptive run's error control measures
    /// the sensitivities as well as the states.
    pub sensitivity_error: Option<String>,
    /// `phaseflow lyapunov`'s own keys; a run with this table is a Lyapunov run, not a
    /// simulation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lyapunov: Option<LyapunovSpec>,
    /// `phaseflow orbit-diagram`'s own keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orbit: Option<OrbitSpec>,
    /// `phaseflow basins`' own keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basins: Option<BasinsSpec>,
}

/// `over`'s table laid over `base`'s, key by key.
fn merge_table<T>(base: Option<T>, over: Option<T>, merge: fn(T, T) -> T) -> Option<T> {
    match (base, over) {
        (Some(b), Some(o)) => Some(merge(b, o)),
        (b, o) => o.or(b),
    }
}

/// How initial states vary across the ensemble (at most one of these).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct U0Spec {
    /// name → [lo, hi]: uniform random in a box.
    pub uniform: Option<OrderedMap>,
    /// name → [lo, hi, count]: a regular grid.
    pub grid: Option<OrderedMap>,
    /// name → step: trajectory j starts at default + j*step.
    pub perturb: Option<OrderedMap>,
    /// An .npy of shape [N, dim].
    pub file: Option<PathBuf>,
}

impl RunSpec {
    /// Reads a run config; problems point into the file.
    pub fn from_file(path: &Path) -> Result<RunSpec, SpecError> {
        let mut spec: RunSpec = read_toml(path)?;
        let u0_file = spec.u0.as_mut().and_then(|u| u.file.as_mut());
        relative_to_config(
            path,
            [
                spec.params_file.as_mut(),
                spec.inputs_file.as_mut(),
                spec.out.as_mut(),
                u0_file,
            ]
            .into_iter()
            .flatten(),
            spec.system.as_mut(),
        );
        Ok(spec)
    }

    /// A spec from JSON (an HTTP body, a Python call's keywords). A refusal names the JSON
    /// path of the bad key (`sweep.rho`, `tspan[1]`), never the bad value; an unknown key
    /// is named at its place (`u0.unifrom`), the message saying what was expected.
    pub fn from_json(value: serde_json::Value) -> Result<RunSpec, FieldError> {
        super::config_file::from_json(value, "run spec")
    }

    /// The spec with every path absolute, as stored in run.json for `--resume`.
    pub fn absolute(mut self) -> RunSpec {
        let abs = |p: &mut PathBuf| {
            if let Ok(a) = std::path::absolute(&*p) {
                *p = a;
            }
        };
        for p in [
            self.params_file.as_mut(),
            self.inputs_file.as_mut(),
            self.out.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            abs(p);
        }
        if let Some(p) = self.u0.as_mut().and_then(|u| u.file.as_mut()) {
            abs(p);
        }
        if let Some(sys) = self.system.as_mut()
            && builtin(sys).is_none()
            && let Ok(a) = std::path::absolute(&*sys)
        {
            *sys = a.display().to_string();
        }
        self
    }

    /// Whether no field is set (performance flags are not part of a spec).
    pub fn is_empty(&self) -> bool {
        serde_json::to_value(self)
            .map(|v| {
                v.as_object().is_some_and(|m| {
                    m.values()
                        .all(|x| x.is_null() || x.as_object().is_some_and(|o| o.is_empty()))
                })
            })
            .unwrap_or(false)
    }

    /// Fields set in `over` replace those here; tables are merged key by key.
    pub fn merge(mut self, over: RunSpec) -> RunSpec {
        self.drop_what_over_replaces(&over);
        macro_rules! take {
            ($($f:ident),*) => { $( if over.$f.is_some() { self.$f = over.$f; } )* };
        }
        take!(
            system,
            n,
            solver,
            tspan,
            dt,
            fixed_step,
            save_every,
            out,
            seed,
            params_file,
            inputs_file,
            u0,
            precision,
            rtol,
            atol,
            dtmin,
            dtmax,
            max_steps,
            safety,
            max_growth,
            max_shrink,
            saveat,
            outputs,
            antithetic,
            brownian_depth,
            quantiles,
            events,
            section,
            direction,
            transient,
            points,
            sensitivities,
            sensitivity_error
        );
        self.set.extend(over.set);
        self.param.extend(over.param);
        self.sweep.extend(over.sweep);
        self.lyapunov = merge_table(self.lyapunov, over.lyapunov, LyapunovSpec::merge);
        self.orbit = merge_table(self.orbit, over.orbit, OrbitSpec::merge);
        self.basins = merge_table(self.basins, over.basins, BasinsSpec::merge);
        self
    }

    /// Clears the keys that a key set in `over` stands in for, so that a flag replaces a
    /// file's key it excludes as it replaces the same key: the span given as `tspan` or as
    /// an analysis' `time`, the points as a `section` or as `orbit.maxima`, and the count
    /// as `n` or as counted axes (a sweep or u0 grid `[lo, hi, count]`).
    fn drop_what_over_replaces(&mut self, over: &RunSpec) {
        let over_time = over.lyapunov.as_ref().is_some_and(|l| l.time.is_some())
            || over.orbit.as_ref().is_some_and(|o| o.time.is_some());
        if over_time {
            self.tspan = None;
        }
        if over.tspan.is_some() {
            if let Some(l) = self.lyapunov.as_mut() {
                l.time = None;
            }
            if let Some(o) = self.orbit.as_mut() {
                o.time = None;
            }
        }
        if over.orbit.as_ref().is_some_and(|o| o.maxima.is_some()) {
            self.section = None;
            self.direction = None;
        }
        if over.section.is_some()
            && let Some(o) = self.orbit.as_mut()
        {
            o.maxima = None;
        }
        let counted = |m: &OrderedMap| {
            m.values()
                .any(|v| v.as_array().is_some_and(|a| a.len() == 3))
        };
        let over_counts = counted(&over.sweep)
            || over
                .u0
                .as_ref()
                .and_then(|u| u.grid.as_ref())
                .is_some_and(|g| !g.is_empty());
        if over_counts && over.n.is_none() {
            self.n = None;
        }
    }

    /// The analysis table this spec holds (`lyapunov`, `orbit` or `basins`), if any.
    pub fn analysis(&self) -> Option<&'static str> {
        [
            ("lyapunov", self.lyapunov.is_some()),
            ("orbit", self.orbit.is_some()),
            ("basins", self.basins.is_some()),
        ]
        .into_iter()
        .find_map(|(name, set)| set.then_some(name))
    }

    /// Refuses every analysis table but `allowed` (None: a simulation, which takes none):
    /// a table that the command would ignore is a mistake, not a default.
    pub fn only_analysis(&self, allowed: Option<&str>) -> Result<(), SpecError> {
        for (name, set) in [
            ("lyapunov", self.lyapunov.is_some()),
            ("orbit", self.orbit.is_some()),
            ("basins", self.basins.is_some()),
        ] {
            if set && Some(name) != allowed {
                let command = if name == "orbit" {
                    "orbit-diagram"
                } else {
                    name
                };
                let here = allowed.map_or("simulate".to_string(), |a| {
                    if a == "orbit" {
                        "orbit-diagram".into()
                    } else {
                        a.to_string()
                    }
                });
                return Err(FieldError::at(name)
                    .key(name)
                    .text(format!(
                        " holds the keys of `phaseflow {command}` (POST /v1/{command}), which \
                         `{here}` does not read; run it with `phaseflow {command}` or leave \
                         the table out"
                    ))
                    .into());
            }
        }
        Ok(())
    }
}

/// The quantile levels of the `montecarlo` output: `quantiles`, checked, or the defaults.
/// `quantiles` without that output is refused: it would silently do nothing.
pub fn quantile_levels(spec: &RunSpec) -> Result<Vec<f64>, SpecError> {
    let Some(levels) = &spec.quantiles else {
        return Ok(DEFAULT_QUANTILES.to_vec());
    };
    if let Some(why) = quantile_levels_error(levels) {
        return Err(FieldError::new("quantiles", why).into());
    }
    let montecarlo = spec
        .outputs
        .as_ref()
        .is_some_and(|o| o.contains(&Output::Montecarlo));
    if !montecarlo {
        return Err(FieldError::at("quantiles")
            .key("quantiles")
            .text(" sets the levels of the montecarlo output; add montecarlo to ")
            .key("outputs")
            .text(" or leave ")
            .key("quantiles")
            .text(" out")
            .into());
    }
    Ok(levels.clone())
}

/// Loads a system by built-in name or file path.
pub fn load_system(name: &str) -> Result<System, SpecError> {
    if let Some(result) = builtin(name) {
        return result.map_err(SpecError::Diagnostics);
    }
    let path = Path::new(name);
    if path.exists() || name.ends_with(".toml") {
        return load_system_file(path).map_err(SpecError::Diagnostics);
    }
    let names = builtin_names();
    let hint = match did_you_mean(name, names.iter().copied()) {
        Some(m) => format!("did you mean '{m}'?"),
        None => format!("built-in systems: {}", names.join(", ")),
    };
    Err(FieldError::at("system")
        .text(format!(
            "unknown system '{name}' (not a built-in and no such file); {hint}"
        ))
        .into())
}

/// The number at key `field`.
fn number(v: &toml::Value, field: &str) -> Result<f64, SpecError> {
    match v {
        toml::Value::Float(f) => Ok(*f),
        toml::Value::Integer(i) => Ok(*i as f64),
        other => Err(FieldError::new(field, format!("must be a number, not {other}")).into()),
    }
}

fn numbers(v: &toml::Value, field: &str) -> Result<Vec<f64>, SpecError> {
    match v {
        toml::Value::Array(a) => a.iter().map(|x| number(x, field)).collect(),
        other => Ok(vec![number(other, field)?]),
    }
}

/// The index of `name` among a system's `names` (its states, parameters or inputs, as
/// `kind` says), for an entry of the table at key `field`; an unknown name is an error at
/// `field.name` with the names there are.
pub fn lookup(
    names: &[String],
    name: &str,
    kind: &str,
    field: &str,
    system: &str,
) -> Result<usize, SpecError> {
    names.iter().position(|n| n == name).ok_or_else(|| {
        let hint = match did_you_mean(name, names.iter().map(String::as_str)) {
            Some(m) => format!("did you mean '{m}'? "),
            None => String::new(),
        };
        let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        let known = if names.is_empty() {
            "(none)".to_string()
        } else {
            names.join(", ")
        };
        FieldError::at(format!("{field}.{name}"))
            .key(field)
            .text(format!(
                ": '{name}' is not {article} {kind} of {system}; {hint}its {kind}s are: {known}"
            ))
            .into()
    })
}

/// `[lo, hi]` or `[lo, hi, count]` for axis `name`.
fn axis(index: usize, values: &[f64], field: &str, need_count: bool) -> Result<Axis, SpecError> {
    let count = |c: f64| -> Result<usize, SpecError> {
        if c >= 1.0 && c.fract() == 0.0 {
            Ok(c as usize)
        } else {
            Err(FieldError::at(field)
                .key(field)
                .text(format!(
                    ": the point count must be a whole number ≥ 1, not {c}"
                ))
                .into())
        }
    };
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(FieldError::new(field, format!("must hold finite numbers (got {v})")).into());
    }
    match values {
        [lo, hi] if !need_count => Ok(Axis::linear(index, *lo, *hi)),
        [lo, hi, c] => Ok(Axis::grid(index, *lo, *hi, count(*c)?)),
        _ if need_count => Err(FieldError::new(field, "must be ")
            .form("lo:hi:count", "[lo, hi, count]")
            .text(": with several axes, each gives its number of points")
            .into()),
        _ => Err(FieldError::new(field, "must be ")
            .form("lo:hi or lo:hi:count", "[lo, hi] or [lo, hi, count]")
            .into()),
    }
}

fn table(path: &Path, field: &str) -> Result<Table, SpecError> {
    let (data, rows, cols) =
        read_matrix(path).map_err(|e| FieldError::at(field).key(field).text(format!(": {e}")))?;
    Ok(Table {
        data,
        rows,
        cols,
        origin: path.display().to_string(),
    })
}

/// A tolerance given as a number, a per-state list or a table of state names.
fn tolerance(
    v: &toml::Value,
    field: &str,
    states: &[String],
    system: &str,
    default: f64,
) -> Result<Tolerance, SpecError> {
    // rtol may be 0 (pure absolute control); atol may not (the error norm would divide by
    // zero wherever a state is 0), as `Control::validate` has it.
    let positive = field == "atol";
    let checked = |x: f64, at: String| -> Result<f64, FieldError> {
        let ok = x.is_finite() && if positive { x > 0.0 } else { x >= 0.0 };
        if ok {
            Ok(x)
        } else {
            let what = if positive { "positive" } else { "non-negative" };
            Err(FieldError::new(
                at,
                format!("must be a {what}, finite number (got {x})"),
            ))
        }
    };
    match v {
        toml::Value::Array(_) => {
            let values = numbers(v, field)?;
            for &x in &values {
                checked(x, field.to_string())?;
            }
            Ok(Tolerance::PerState(values))
        }
        toml::Value::Table(map) => {
            let all = map
                .get("*")
                .map(|x| Ok::<f64, SpecError>(checked(number(x, field)?, format!("{field}.*"))?))
                .transpose()?;
            let mut values = vec![all.unwrap_or(default); states.len()];
            for (name, x) in map.iter().filter(|(k, _)| *k != "*") {
                let i = lookup(states, name, "state", field, system)?;
                let at = format!("{field}.{name}");
                values[i] = checked(number(x, &at)?, at)?;
            }
            Ok(Tolerance::PerState(values))
        }
        other => Ok(Tolerance::All(checked(
            number(other, field)?,
            field.to_string(),
        )?)),
    }
}

/// Most save times a run may ask for (as many as fixed-step runs may take steps), checked
/// before the list of times is made: `0:1e-9:1` would need 8 GB for the times alone.
pub const MAX_SAVE_TIMES: usize = 1 << 24;

/// The number of times `lo, lo + step, ...` up to `hi`, refused (with the size) above
/// `MAX_SAVE_TIMES` and when the grid runs backwards.
fn save_grid_size(text: &str, lo: f64, step: f64, hi: f64) -> Result<(), SpecError> {
    if hi < lo {
        return Err(FieldError::new(
            "saveat",
            format!(
                "'{text}' runs backwards: its end {hi} is before its start {lo}; write \
                 t0:dt:t1 with t0 ≤ t1"
            ),
        )
        .into());
    }
    if step.is_nan() || step <= 0.0 {
        return Ok(()); // SaveAt::grid says what is wrong with the step
    }
    // As SaveAt::grid counts: a time within 1e-9 steps of the end is the end.
    let steps = (hi - lo) / step;
    let count = (steps + 1e-9 * steps.max(1.0)).floor() + 1.0;
    if count > MAX_SAVE_TIMES as f64 {
        return Err(FieldError::new(
            "saveat",
            format!(
                "'{text}' asks for {count:.0} save times ({:.1} GB for the times alone); at \
                 most {MAX_SAVE_TIMES} are allowed: use a larger step or a shorter range",
                count * 8.0 / 1e9
            ),
        )
        .into());
    }
    Ok(())
}

fn bad_grid(text: &str) -> FieldError {
    FieldError::new(
        "saveat",
        format!("'{text}' must be t0:dt:t1, e.g. 0:0.01:10"),
    )
}

/// Save times: "t0:dt:t1" or a list of numbers.
fn save_times(v: &toml::Value) -> Result<SaveAt, SpecError> {
    match v {
        toml::Value::String(text) => {
            let parts: Vec<f64> = text
                .split(':')
                .map(|p| p.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
                .collect::<Option<Vec<f64>>>()
                .ok_or_else(|| bad_grid(text))?;
            match parts[..] {
                [lo, step, hi] => {
                    save_grid_size(text, lo, step, hi)?;
                    SaveAt::grid(lo, step, hi).map_err(|e| control_error(e).into())
                }
                _ => Err(bad_grid(text).into()),
            }
        }
        other => {
            let times = numbers(other, "saveat")?;
            // No save time would save nothing and integrate nothing; the final state alone
            // is what leaving saveat out gives.
            if times.is_empty() {
                return Err(FieldError::new(
                    "saveat",
                    "lists no times; give at least one, or leave saveat out to save the final \
                     state",
                )
                .into());
            }
            if times.len() > MAX_SAVE_TIMES {
                return Err(FieldError::new(
                    "saveat",
                    format!(
                        "lists {} save times; at most {MAX_SAVE_TIMES} are allowed",
                        times.len()
                    ),
                )
                .into());
            }
            Ok(SaveAt::Times(times))
        }
    }
}

/// The adaptive problem a spec describes.
fn adaptive_problem(
    spec: &RunSpec,
    system: System,
    (t0, t1): (f64, f64),
    ensemble: Ensemble,
) -> Result<AdaptiveProblem, SpecError> {
    let (control, saveat) = adaptive_control(spec, &system)?;
    let problem = AdaptiveProblem {
        system,
        solver: spec.solver.unwrap_or_default(),
        t0,
        t1,
        saveat,
        control,
        ensemble,
        precision: spec.precision.unwrap_or_default(),
    };
    problem.check().map_err(control_error)?;
    Ok(problem)
}

/// The stiff problem a spec describes: a Rosenbrock method (or auto switching) with the
/// adaptive pairs' control and save times.
fn stiff_problem(
    spec: &RunSpec,
    system: System,
    (t0, t1): (f64, f64),
    ensemble: Ensemble,
) -> Result<StiffProblem, SpecError> {
    let solver = spec.solver.unwrap_or(Solver::Rodas5P);
    if spec.fixed_step == Some(true) {
        return Err(FieldError::new(
            "fixed_step",
            format!(
                "applies to the explicit pairs (bs3, dp5, tsit5, dop853); {} always controls \
                 its steps",
                solver.name()
            ),
        )
        .into());
    }
    let (control, saveat) = adaptive_control(spec, &system)?;
    let problem = StiffProblem {
        system,
        method: solver.stiff_method().expect("a stiff solver"),
        t0,
        t1,
        saveat,
        control,
        ensemble,
        precision: spec.precision.unwrap_or_default(),
    };
    problem.check().map_err(|e| match e {
        StiffError::Control(e) => control_error(e),
        e => FieldError::new("solver", e.to_string()),
    })?;
    Ok(problem)
}

/// The step-size control and save times of an adaptive run (ODE pair or milstein-adaptive).
fn adaptive_control(spec: &RunSpec, system: &System) -> Result<(Control, SaveAt), SpecError> {
    let sname = system.name().to_string();
    let states: Vec<String> = system.states.iter().map(|v| v.name.clone()).collect();
    if spec.save_every.is_some() {
        return Err(FieldError::new(
            "save_every",
            "counts fixed steps; adaptive solvers save at times: use ",
        )
        .key("saveat")
        .form(" t0:dt:t1", " = \"t0:dt:t1\" or a list of times")
        .into());
    }
    let defaults = Control::default();
    let tol = |v: &Option<toml::Value>, field: &str, default: &Tolerance| match v {
        Some(v) => tolerance(v, field, &states, &sname, 1e-6),
        None => Ok(default.clone()),
    };
    let control = Control {
        rtol: tol(&spec.rtol, "rtol", &defaults.rtol)?,
        atol: tol(&spec.atol, "atol", &defaults.atol)?,
        dt_initial: spec.dt,
        dt_min: spec.dtmin.unwrap_or(defaults.dt_min),
        dt_max: spec.dtmax,
        max_steps: spec.max_steps.unwrap_or(defaults.max_steps),
        safety: spec.safety.unwrap_or(defaults.safety),
        max_growth: spec.max_growth.unwrap_or(defaults.max_growth),
        max_shrink: spec.max_shrink.unwrap_or(defaults.max_shrink),
        error_states: None,
    };
    if let Some(max) = control.dt_max
        && control.dt_min > max
    {
        return Err(
            FieldError::new("dtmin", format!("{} is above ", control.dt_min))
                .key("dtmax")
                .text(format!(
                    " {max}: no step could satisfy both; make dtmin ≤ dtmax"
                ))
                .into(),
        );
    }
    let saveat = match &spec.saveat {
        Some(v) => save_times(v)?,
        None => SaveAt::Final,
    };
    Ok((control, saveat))
}

/// The SDE problem of a stochastic system (or an SDE solver): the method, the noise key and
/// fixed steps or adaptive control. A stochastic system without a solver takes em.
fn sde_problem(
    spec: &RunSpec,
    system: System,
    (t0, t1): (f64, f64),
    ensemble: Ensemble,
) -> Result<SdeProblem, SpecError> {
    let sname = system.name().to_string();
    let default = SdeMethod::default_for(system.noise.as_ref());
    let solver = spec.solver.unwrap_or_else(|| {
        Solver::SDE
            .into_iter()
            .find(|s| s.sde_method() == Some(default))
            .unwrap_or(Solver::Em)
    });
    let Some(method) = solver.sde_method() else {
        return Err(FieldError::new(
            "solver",
            format!(
                "{} is an ODE solver, but {sname} is stochastic (it has a noise block); choose \
                 em, milstein, euler-heun, platen or milstein-adaptive",
                solver.name()
            ),
        )
        .into());
    };
    let noise = NoiseKey {
        seed: spec.seed.unwrap_or(0),
        antithetic: spec.antithetic.unwrap_or(false),
    };
    let precision = spec.precision.unwrap_or_default();
    let problem = if method.is_adaptive() && spec.fixed_step != Some(true) {
        if spec.brownian_depth == Some(0) {
            return Err(FieldError::new("brownian_depth", "must be at least 1").into());
        }
        let (mut control, saveat) = adaptive_control(spec, &system)?;
        // A strong order 1 method takes about 1/tol steps: the ODE pairs' 1e-6 would mean
        // 10^6 attempts a path. Given tolerances are kept.
        if spec.rtol.is_none() {
            control.rtol = Tolerance::All(SDE_DEFAULT_TOLERANCE);
        }
        if spec.atol.is_none() {
            control.atol = Tolerance::All(SDE_DEFAULT_TOLERANCE);
        }
        SdeProblem {
            system,
            method,
            steps: SdeSteps::Adaptive {
                t0,
                t1,
                saveat,
                control,
                depth: spec.brownian_depth.unwrap_or(default_tree_depth(precision)),
            },
            noise,
            ensemble,
            precision,
        }
    } else {
        if spec.fixed_step == Some(true) && !method.is_adaptive() {
            return Err(FieldError::new(
                "fixed_step",
                format!(
                    "applies to milstein-adaptive; {} takes fixed steps already",
                    method.name()
                ),
            )
            .into());
        }
        if spec.brownian_depth.is_some() {
            return Err(FieldError::new(
                "brownian_depth",
                "applies to milstein-adaptive (fixed steps draw their increments per step)",
            )
            .into());
        }
        fixed_only(spec, method.name())?;
        let (grid, save) = fixed_grid(spec, &system, (t0, t1))?;
        SdeProblem {
            system,
            method: method.fixed(),
            steps: SdeSteps::Fixed { grid, save },
            noise,
            ensemble,
            precision,
        }
    };
    problem.check().map_err(sde_error)?;
    // What the method needs of the noise beyond its kind (commutative diagonal noise, a
    // differentiable diffusion) shows when its symbolic terms are built.
    crate::ode::sde::kernel::Terms::new(&problem.system, problem.method)
        .map_err(|e| FieldError::new("solver", e.to_string()))?;
    Ok(problem)
}

/// milstein-adaptive's rtol and atol when none are given.
pub const SDE_DEFAULT_TOLERANCE: f64 = 1e-3;

/// An SDE problem's refusal, naming the key at fault.
fn sde_error(e: SdeCheckError) -> SpecError {
    match e {
        SdeCheckError::Grid(e) => grid_error(e).into(),
        SdeCheckError::Control(e) => control_error(e).into(),
        SdeCheckError::Sde(SdeError::Depth(d)) => FieldError::new(
            "brownian_depth",
            format!(
                "must be between 1 and {} (got {d})",
                crate::ode::sde::noise::MAX_TREE_DEPTH
            ),
        )
        .into(),
        SdeCheckError::Sde(e @ SdeError::Method(_)) => {
            FieldError::new("solver", e.to_string()).into()
        }
        SdeCheckError::Sde(e) => SpecError::Input(e.to_string()),
    }
}

/// Refuses adaptive-only keys on a fixed-step run.
fn fixed_only(spec: &RunSpec, solver: &str) -> Result<(), SpecError> {
    let adaptive_only = [
        ("rtol", spec.rtol.is_some()),
        ("atol", spec.atol.is_some()),
        ("saveat", spec.saveat.is_some()),
        ("dtmin", spec.dtmin.is_some()),
        ("dtmax", spec.dtmax.is_some()),
        ("max_steps", spec.max_steps.is_some()),
        ("safety", spec.safety.is_some()),
        ("max_growth", spec.max_growth.is_some()),
        ("max_shrink", spec.max_shrink.is_some()),
    ];
    if let Some((key, _)) = adaptive_only.iter().find(|(_, given)| *given) {
        return Err(FieldError::new(
            *key,
            "applies to adaptive solvers (bs3, dp5, tsit5, dop853, milstein-adaptive) without ",
        )
        .key("fixed_step")
        .text(format!("; {solver} takes fixed steps of "))
        .key("dt")
        .into());
    }
    Ok(())
}

/// The time grid and saves of a fixed-step run.
fn fixed_grid(
    spec: &RunSpec,
    system: &System,
    (t0, t1): (f64, f64),
) -> Result<(TimeGrid, Save), SpecError> {
    let sname = system.name();
    let dt = spec.dt.or(system.meta.dt).ok_or_else(|| {
        FieldError::at("dt")
            .text(format!("{sname} suggests no step; give "))
            .key("dt")
    })?;
    let grid = TimeGrid::from_span(t0, t1, dt).map_err(grid_error)?;
    let save = match spec.save_every {
        None => Save::Final,
        Some(0) => return Err(FieldError::new("save_every", "must be at least 1").into()),
        Some(k) => Save::Every(k),
    };
    Ok((grid, save))
}

/// The problem a spec describes. Names, sizes and ranges are checked here; the values in
/// input tables are checked once, by `Problem::check`, before any work starts.
pub fn build_problem(spec: &RunSpec) -> Result<Problem, SpecError> {
    spec.only_analysis(None)?;
    let system_name = spec.system.as_deref().ok_or_else(|| {
        FieldError::at("system")
            .text("no system given; name a built-in (see `phaseflow systems`) or a system file")
    })?;
    problem_for_system(load_system(system_name)?, spec)
}

/// Most states a system may have in a run. The GPU kernel is one function unrolled over
/// the states, and the driver's compile time grows much faster than the states (measured
/// on lavapipe: 10 states 0.45 s, 50 states 4.0 s, 100 states 8.7 s, 200 states 83 s, 500
/// states over 4 minutes; README, `simulate`), so larger systems are refused at once
/// instead of compiling for minutes.
pub const MAX_STATES: usize = 100;

/// The problem `spec` describes for `system` (its `system` key is not read): for callers
/// that hold the system already, such as a server given the equations inline.
pub fn problem_for_system(system: System, spec: &RunSpec) -> Result<Problem, SpecError> {
    // Every family handles events: fixed-step, adaptive, stiff and SDE.
    let problem = problem_of_system(with_event_settings(system, spec)?, spec)?;
    let (t0, t1) = problem.span();
    let transient = problem.system().event_log.transient;
    if !problem.system().events.is_empty() && transient > 0.0 && t0 + transient >= t1 {
        return Err(FieldError::new(
            "transient",
            format!(
                "is {transient}, but the run ends at t = {t1} (from t0 = {t0}): no event would be \
                 recorded; shorten the transient or lengthen the span"
            ),
        )
        .into());
    }
    Ok(problem)
}

/// Most event records one trajectory may keep (`events`, `points`).
pub const MAX_EVENT_RECORDS: usize = 1 << 16;

/// The system with the spec's section added and its event-log settings applied.
fn with_event_settings(mut system: System, spec: &RunSpec) -> Result<System, SpecError> {
    use crate::model::event::{Direction, EventLogSpec};
    if let Some(section) = &spec.section {
        let direction = match spec.direction.as_deref() {
            None => Direction::Both,
            Some(d) => Direction::from_name(d).ok_or_else(|| {
                FieldError::new("direction", format!("is '{d}'; it is up, down or both"))
            })?,
        };
        system = system
            .with_section(section, direction)
            .map_err(SpecError::Diagnostics)?;
    } else if spec.direction.is_some() {
        return Err(FieldError::new("direction", "applies to a section; give ")
            .key("section")
            .text(" too")
            .into());
    }
    if spec.events.is_some() && spec.points.is_some() {
        return Err(FieldError::at("events")
            .text("give either ")
            .key("events")
            .text(" or ")
            .key("points")
            .text(", not both")
            .into());
    }
    let k_key = if spec.points.is_some() {
        "points"
    } else {
        "events"
    };
    let k = spec.points.or(spec.events);
    if system.events.is_empty() && (k.is_some() || spec.transient.is_some()) {
        let key = if spec.transient.is_some() {
            "transient"
        } else {
            k_key
        };
        return Err(FieldError::new(
            key,
            format!(
                "applies to systems with events, and {} has none; add [[events]] to its file, \
                 or a section",
                system.name()
            ),
        )
        .into());
    }
    let mut log = EventLogSpec::default();
    if let Some(k) = k {
        if k > MAX_EVENT_RECORDS {
            return Err(FieldError::new(
                k_key,
                format!("must be at most {MAX_EVENT_RECORDS} records per trajectory (got {k})"),
            )
            .into());
        }
        log.k = k;
    }
    if let Some(t) = spec.transient {
        if !(t >= 0.0 && t.is_finite()) {
            return Err(FieldError::new(
                "transient",
                format!("must be a non-negative, finite time (got {t})"),
            )
            .into());
        }
        log.transient = t;
    }
    system.event_log = log;
    Ok(system)
}

fn problem_of_system(system: System, spec: &RunSpec) -> Result<Problem, SpecError> {
    quantile_levels(spec)?;
    let sname = system.name().to_string();
    if system.dim() > MAX_STATES {
        return Err(SpecError::Input(format!(
            "{sname} has {} states; at most {MAX_STATES} are supported, since compiling the \
             kernel grows much faster than the number of states (200 states take over a \
             minute on a CPU adapter)",
            system.dim()
        )));
    }
    let state_names: Vec<String> = system.states.iter().map(|v| v.name.clone()).collect();
    let param_names: Vec<String> = system.params.iter().map(|v| v.name.clone()).collect();

    let (t0, t1) = match (spec.tspan, system.meta.tspan) {
        (Some([a, b]), _) => (a, b),
        (None, Some(span)) => span,
        (None, None) => {
            return Err(FieldError::at("tspan")
                .text(format!("{sname} suggests no time span; give "))
                .key("tspan")
                .into());
        }
    };

    let mut ensemble = Ensemble::new(&system, spec.n.unwrap_or(0));
    for (name, v) in &spec.set {
        let i = lookup(&state_names, name, "state", "set", &sname)?;
        ensemble.base_state[i] = number(v, &format!("set.{name}"))?;
    }
    for (name, v) in &spec.param {
        let i = lookup(&param_names, name, "parameter", "param", &sname)?;
        ensemble.base_params[i] = number(v, &format!("param.{name}"))?;
    }

    if !spec.sweep.is_empty() && spec.params_file.is_some() {
        return Err(FieldError::at("sweep")
            .text("give either ")
            .key("sweep")
            .text(" or ")
            .key("params_file")
            .text(", not both")
            .into());
    }
    if !spec.sweep.is_empty() {
        let mut axes = Vec::new();
        for (name, v) in &spec.sweep {
            let i = lookup(&param_names, name, "parameter", "sweep", &sname)?;
            // A fixed value for a swept parameter would be silently replaced by the sweep.
            if spec.param.contains_key(name) {
                return Err(FieldError::at(format!("sweep.{name}"))
                    .key(format!("sweep.{name}"))
                    .text(" and ")
                    .key(format!("param.{name}"))
                    .text(format!(" both set parameter '{name}'; give one"))
                    .into());
            }
            let field = format!("sweep.{name}");
            axes.push(axis(i, &numbers(v, &field)?, &field, spec.sweep.len() > 1)?);
        }
        ensemble.params = Parameters::Sweep(axes);
    }
    if let Some(path) = &spec.params_file {
        ensemble.params = Parameters::Table(table(path, "params_file")?);
    }
    match (&spec.inputs_file, system.inputs.is_empty()) {
        (Some(path), false) => ensemble.inputs = Inputs::Table(table(path, "inputs_file")?),
        (Some(_), true) => {
            return Err(FieldError::new(
                "inputs_file",
                format!("was given, but {sname} has no inputs"),
            )
            .into());
        }
        (None, _) => {}
    }

    if let Some(u0) = &spec.u0 {
        let given = [
            u0.uniform.is_some(),
            u0.grid.is_some(),
            u0.perturb.is_some(),
            u0.file.is_some(),
        ];
        if given.iter().filter(|&&g| g).count() > 1 {
            return Err(FieldError::at("u0")
                .text("give one way of varying initial states: ")
                .key("u0.uniform")
                .text(", ")
                .key("u0.grid")
                .text(", ")
                .key("u0.perturb")
                .text(" or ")
                .key("u0.file")
                .into());
        }
        // A state that a box or a grid varies would silently lose its fixed value.
        for (kind, map) in [("uniform", &u0.uniform), ("grid", &u0.grid)] {
            if let Some(name) = map
                .iter()
                .flatten()
                .map(|(k, _)| k)
                .find(|k| spec.set.contains_key(*k))
            {
                return Err(FieldError::at(format!("u0.{kind}.{name}"))
                    .key(format!("u0.{kind}.{name}"))
                    .text(" and ")
                    .key(format!("set.{name}"))
                    .text(format!(" both set state '{name}'; give one"))
                    .into());
            }
        }
        if let Some(map) = &u0.uniform {
            let mut ranges = Vec::new();
            for (name, v) in map {
                let i = lookup(&state_names, name, "state", "u0.uniform", &sname)?;
                let field = format!("u0.uniform.{name}");
                match numbers(v, &field)?[..] {
                    [lo, hi] if lo.is_finite() && hi.is_finite() && lo <= hi => {
                        ranges.push((i, lo, hi))
                    }
                    [lo, hi] => {
                        return Err(FieldError::new(
                            field,
                            format!(
                                "must be a box of finite bounds, low ≤ high (got {lo} and {hi})"
                            ),
                        )
                        .into());
                    }
                    _ => {
                        return Err(FieldError::new(field, "must be ")
                            .form("lo:hi", "[lo, hi]")
                            .into());
                    }
                }
            }
            ensemble.initial = InitialStates::Uniform {
                seed: spec.seed.unwrap_or(0),
                ranges,
            };
        } else if let Some(map) = &u0.grid {
            let mut axes = Vec::new();
            for (name, v) in map {
                let i = lookup(&state_names, name, "state", "u0.grid", &sname)?;
                let field = format!("u0.grid.{name}");
                axes.push(axis(i, &numbers(v, &field)?, &field, map.len() > 1)?);
            }
            ensemble.initial = InitialStates::Grid(axes);
        } else if let Some(map) = &u0.perturb {
            let (name, v) = map
                .iter()
                .next()
                .ok_or_else(|| FieldError::new("u0.perturb", "needs name=step"))?;
            if map.len() > 1 {
                return Err(FieldError::new("u0.perturb", "takes one state").into());
            }
            let state = lookup(&state_names, name, "state", "u0.perturb", &sname)?;
            ensemble.initial = InitialStates::Perturb {
                state,
                step: number(v, &format!("u0.perturb.{name}"))?,
            };
        } else if let Some(path) = &u0.file {
            ensemble.initial = InitialStates::Table(table(path, "u0.file")?);
        }
    }

    // N may be implied by a grid or a table; if given too, it must agree.
    match (spec.n, ensemble.implied_size()) {
        (Some(n), Some(m)) if n != m => {
            return Err(FieldError::new(
                "n",
                format!("{n} disagrees with the {m} trajectories the grid or input file implies"),
            )
            .into());
        }
        (None, Some(m)) => ensemble.n = m,
        (None, None) => {
            return Err(FieldError::at("n")
                .text("give the number of trajectories with ")
                .key("n")
                .into());
        }
        _ => {}
    }
    if ensemble.n == 0 {
        return Err(FieldError::at("n")
            .text("the number of trajectories must be at least 1 (")
            .key("n")
            .text(" 0 given)")
            .into());
    }
    let solver = spec.solver.unwrap_or_default();
    if system.noise.is_some() || spec.solver.is_some_and(Solver::is_sde) {
        return sde_problem(spec, system, (t0, t1), ensemble).map(Problem::Sde);
    }
    for (key, given) in [
        ("antithetic", spec.antithetic.is_some()),
        ("brownian_depth", spec.brownian_depth.is_some()),
    ] {
        if given {
            return Err(FieldError::new(
                key,
                format!("applies to stochastic systems; {sname} has no noise block"),
            )
            .into());
        }
    }
    if solver.is_stiff() {
        return stiff_problem(spec, system, (t0, t1), ensemble).map(Problem::Stiff);
    }
    if !solver.is_adaptive() && spec.fixed_step == Some(true) {
        return Err(FieldError::new(
            "fixed_step",
            format!(
                "applies to adaptive solvers (bs3, dp5, tsit5, dop853); {} takes fixed steps \
                 already",
                solver.name()
            ),
        )
        .into());
    }
    if solver.is_adaptive() && spec.fixed_step != Some(true) {
        return adaptive_problem(spec, system, (t0, t1), ensemble).map(Problem::Adaptive);
    }
    fixed_only(spec, solver.name())?;
    let (grid, save) = fixed_grid(spec, &system, (t0, t1))?;
    Ok(Problem::Fixed(FixedStepProblem {
        system,
        solver,
        grid,
        save,
        ensemble,
        precision: spec.precision.unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ode::stiff::StiffMethod;

    fn spec(toml_text: &str) -> RunSpec {
        toml::from_str(toml_text).unwrap()
    }

    /// Stochastic systems route to the SDE family: the default method follows the
    /// calculus, milstein-adaptive's tolerances default to 1e-3, and every mismatch between
    /// solver and system is refused naming the solver.
    #[test]
    fn sde_specs_build_sde_problems_or_say_why_not() {
        use crate::model::noise::{Calculus, NoiseKind};
        let p = build_problem(&spec(
            "system = 'ornstein_uhlenbeck'\nn = 4\nseed = 9\nantithetic = true",
        ))
        .unwrap();
        let Problem::Sde(p) = p else {
            panic!("OU is an SDE")
        };
        assert_eq!(p.method, SdeMethod::EulerMaruyama);
        assert_eq!(
            p.noise,
            NoiseKey {
                seed: 9,
                antithetic: true
            }
        );
        let strat = |eqs: &str| {
            System::from_equations_with_noise(
                "s",
                &[("x", 1.0), ("y", 1.0)],
                &[("s", 0.5)],
                "dx = -x\ndy = -y",
                eqs,
                NoiseKind::Diagonal,
                Calculus::Stratonovich,
            )
            .unwrap()
        };
        let base = spec("n = 2\ntspan = [0, 1]\ndt = 0.01");
        let Problem::Sde(p) = problem_for_system(strat("dx = s*x"), &base).unwrap() else {
            panic!("an SDE")
        };
        assert_eq!(p.method, SdeMethod::EulerHeun);
        let adaptive = spec("system = 'gbm'\nn = 2\nsolver = 'milstein-adaptive'");
        let Problem::Sde(p) = build_problem(&adaptive).unwrap() else {
            panic!("an SDE")
        };
        let SdeSteps::Adaptive { control, depth, .. } = &p.steps else {
            panic!("adaptive")
        };
        assert_eq!(control.rtol, Tolerance::All(SDE_DEFAULT_TOLERANCE));
        assert_eq!(*depth, 16);

        let err = |s: &RunSpec| build_problem(s).unwrap_err().to_string();
        assert!(
            err(&spec("system = 'gbm'\nn = 2\nsolver = 'rk4'"))
                .starts_with("solver rk4 is an ODE solver, but gbm is stochastic")
        );
        assert!(
            err(&spec("system = 'lorenz'\nn = 2\nsolver = 'em'"))
                .starts_with("solver em integrates SDEs, but lorenz has no noise block")
        );
        assert!(
            err(&spec("system = 'lorenz'\nn = 2\nantithetic = true"))
                .starts_with("antithetic applies to stochastic systems")
        );
        assert!(err(&spec("system = 'heston'\nn = 2\nsolver = 'milstein'")).contains("use em"));
        // Heston is Itô with general noise: euler-heun is refused, and of the Itô methods
        // only em takes general noise.
        let heun = err(&spec("system = 'heston'\nn = 2\nsolver = 'euler-heun'"));
        assert!(heun.contains("use em (or declare"), "{heun}");
        let odd = err(&spec(
            "system = 'ornstein_uhlenbeck'\nn = 3\nantithetic = true",
        ));
        assert!(odd.contains("n must be even (got 3)"), "{odd}");
        assert!(
            err(&spec(
                "system = 'gbm'\nn = 2\nsolver = 'milstein-adaptive'\nbrownian_depth = 25"
            ))
            .starts_with("brownian_depth must be between 1 and 24")
        );
        let crossed = problem_for_system(
            strat("dx = s*y"),
            &spec("n = 2\ntspan = [0, 1]\ndt = 0.01\nsolver = 'milstein'"),
        );
        let e = crossed.unwrap_err().to_string();
        assert!(
            e.contains("g of 'x' depends on 'y'") && e.contains("use euler-heun"),
            "{e}"
        );
    }

    /// Stiff solvers build stiff problems with the pairs' control; every mismatch is
    /// refused naming the key at fault.
    #[test]
    fn stiff_solvers_route_to_the_stiff_family() {
        let p = build_problem(&spec(
            "system = 'van_der_pol'\nn = 3\nsolver = 'rodas5p'\nrtol = 1e-8\nsaveat = '0:1:10'\ntspan = [0, 10]",
        ))
        .unwrap();
        let Problem::Stiff(p) = p else {
            panic!("rodas5p is stiff")
        };
        assert_eq!(p.method, StiffMethod::Rodas5P);
        assert_eq!(p.control.rtol, Tolerance::All(1e-8));
        assert_eq!(p.saveat.times(10.0).len(), 11);
        let auto = build_problem(&spec("system = 'lorenz'\nn = 2\nsolver = 'auto'")).unwrap();
        assert!(matches!(
            auto,
            Problem::Stiff(StiffProblem {
                method: StiffMethod::Auto,
                ..
            })
        ));
        assert_eq!(auto.solver(), Solver::Auto);

        let err = |s: &str| build_problem(&spec(s)).unwrap_err().to_string();
        let e = err("system = 'lorenz'\nn = 2\nsolver = 'rodas4'\nfixed_step = true");
        assert!(
            e.starts_with("fixed_step applies to the explicit pairs"),
            "{e}"
        );
        let e = err("system = 'gbm'\nn = 2\nsolver = 'rosenbrock23'");
        assert!(
            e.starts_with("solver rosenbrock23 is an ODE solver, but gbm is stochastic"),
            "{e}"
        );
        let e = err("system = 'lorenz'\nn = 2\nsolver = 'rodas5p'\nsave_every = 3");
        assert!(e.starts_with("save_every counts fixed steps"), "{e}");
        let wide: Vec<(String, f64)> = (0..40).map(|i| (format!("x{i}"), 1.0)).collect();
        let names: Vec<(&str, f64)> = wide.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        let eqs: String = (0..40).map(|i| format!("dx{i} = -x{i}\n")).collect();
        let system = System::from_equations("wide", &names, &[], &eqs).unwrap();
        let e = problem_for_system(system, &spec("n = 1\ntspan = [0, 1]\nsolver = 'rodas5p'"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("at most 32 states") && e.contains("'wide' has 40"),
            "{e}"
        );
    }

    #[test]
    fn a_sweep_spec_builds_the_problem() {
        let p = build_problem(&spec(
            "system = 'lorenz'\nn = 11\ndt = 0.01\ntspan = [0, 1]\n[sweep]\nrho = [0, 50]\n[param]\nsigma = 12",
        ))
        .unwrap();
        let Problem::Fixed(p) = p else {
            panic!("rk4 is fixed-step")
        };
        assert_eq!(p.grid.n_steps, 100);
        assert_eq!(p.ensemble.params(10..11), vec![12.0, 50.0, 8.0 / 3.0]);
    }

    #[test]
    fn an_adaptive_spec_builds_tolerances_and_saves() {
        let p = build_problem(&spec(
            "system = 'lorenz'\nn = 2\nsolver = 'tsit5'\ntspan = [0, 1]\nsaveat = '0:0.25:1'\n\
             atol = 1e-9\nprecision = 'f64'\n[rtol]\n'*' = 1e-7\nz = 1e-8",
        ))
        .unwrap();
        let Problem::Adaptive(p) = p else {
            panic!("tsit5 is adaptive")
        };
        assert_eq!(p.control.rtol, Tolerance::PerState(vec![1e-7, 1e-7, 1e-8]));
        assert_eq!(p.control.atol, Tolerance::All(1e-9));
        assert_eq!(p.saveat, SaveAt::Times(vec![0.0, 0.25, 0.5, 0.75, 1.0]));
        assert_eq!(p.precision, Precision::F64);
    }

    /// A key given over a file replaces the file's keys it excludes.
    #[test]
    fn merged_keys_replace_what_they_exclude() {
        let file: RunSpec = toml::from_str(
            "n = 40\nsection = 'z = 1'\ndirection = 'up'\n[lyapunov]\ntime = 5\n[orbit]\ntime = 3",
        )
        .unwrap();
        let over: RunSpec =
            toml::from_str("tspan = [0, 9]\n[sweep]\nc = [2, 6, 10]\n[orbit]\nmaxima = 'x'")
                .unwrap();
        let m = file.clone().merge(over);
        assert_eq!(m.n, None);
        assert_eq!(m.tspan, Some([0.0, 9.0]));
        assert_eq!(m.lyapunov.unwrap().time, None);
        let orbit = m.orbit.unwrap();
        assert_eq!((orbit.time, orbit.maxima.as_deref()), (None, Some("x")));
        assert_eq!((m.section, m.direction), (None, None));
        // And the other way round: a time over a file's tspan, a section over maxima.
        let file: RunSpec = toml::from_str("tspan = [0, 9]\n[orbit]\nmaxima = 'x'").unwrap();
        let over: RunSpec = toml::from_str("section = 'z = 1'\n[orbit]\ntime = 4").unwrap();
        let m = file.merge(over);
        assert_eq!(m.tspan, None);
        assert_eq!(m.orbit.unwrap().maxima, None);
        // An uncounted sweep keeps the file's n.
        let file: RunSpec = toml::from_str("n = 40").unwrap();
        let over: RunSpec = toml::from_str("[sweep]\nc = [2, 6]").unwrap();
        assert_eq!(file.merge(over).n, Some(40));
    }

    #[test]
    fn quantile_levels_default_or_as_given() {
        let levels = |text: &str| quantile_levels(&spec(text)).unwrap();
        assert_eq!(
            levels("outputs = ['montecarlo']"),
            DEFAULT_QUANTILES.to_vec()
        );
        assert_eq!(
            levels("outputs = ['states', 'montecarlo']\nquantiles = [0.1, 0.9]"),
            vec![0.1, 0.9]
        );
        // Increasing, each once: they index the `quantile` coordinate.
        let e = quantile_levels(&spec("outputs = ['montecarlo']\nquantiles = [0.9, 0.1]"));
        assert!(e.unwrap_err().to_string().contains("increasing order"));
    }

    #[test]
    fn mistakes_get_one_clear_sentence() {
        let cases = [
            ("system = 'lorenzz'\nn = 1", "did you mean 'lorenz'?"),
            ("system = 'lorenz'\nn = 0", "at least 1"),
            ("system = 'lorenz'", "give the number of trajectories"),
            (
                "system = 'lorenz'\nn = 2\nsolver = 'tsit5'\nsaveat = []",
                "lists no times",
            ),
            (
                "system = 'lorenz'\nn = 5\n[sweep]\nrh = [0, 1]",
                "'rh' is not a parameter of lorenz; did you mean 'rho'?",
            ),
            (
                "system = 'lorenz'\nn = 5\n[sweep]\nrho = [0, 1]\nbeta = [0, 1, 5]",
                "sweep.rho must be [lo, hi, count]",
            ),
            (
                "system = 'lorenz'\nn = 7\n[sweep]\nrho = [0, 1, 2]\nbeta = [0, 1, 3]",
                "disagrees",
            ),
            (
                "system = 'lorenz'\nn = 5\ndt = 0.3\ntspan = [0, 1]",
                "dt 0.3 does not divide the span",
            ),
            (
                "system = 'lorenz'\nn = 5\n[u0]\nuniform = { q = [0, 1] }",
                "'q' is not a state of lorenz",
            ),
            (
                "system = 'lorenz'\nn = 5\nrtol = 1e-8",
                "rtol applies to adaptive solvers",
            ),
            (
                "system = 'lorenz'\nn = 5\nsolver = 'dp5'\nsave_every = 3",
                "use saveat = \"t0:dt:t1\"",
            ),
            (
                "system = 'lorenz'\nn = 5\nsolver = 'dp5'\nsaveat = '0:0.1:99'",
                "outside the span",
            ),
            (
                "system = 'lorenz'\nn = 5\nsolver = 'dp5'\n[rtol]\nw = 1e-3",
                "'w' is not a state of lorenz",
            ),
            (
                "system = 'lorenz'\nn = 5\nsolver = 'dp5'\nsaveat = '1:0.1:0'",
                "runs backwards",
            ),
            (
                "system = 'lorenz'\nn = 5\nsolver = 'dp5'\nsaveat = '0:1e-9:1'",
                "asks for 1000000001 save times (8.0 GB",
            ),
            (
                "system = 'lorenz'\nn = 5\nsolver = 'dp5'\n[rtol]\n'*' = 1e-3\nx = -1",
                "rtol.x must be a non-negative",
            ),
            (
                "system = 'lorenz'\nn = 5\nset = { x = 3 }\n[u0]\nuniform = { x = [0, 1] }",
                "u0.uniform.x and set.x both set state 'x'",
            ),
            (
                "system = 'lorenz'\nn = 5\nfixed_step = true",
                "fixed_step applies to adaptive solvers",
            ),
            (
                "system = 'lorenz'\nn = 5\nsolver = 'dp5'\ndtmin = 0.1\ndtmax = 0.01",
                "dtmin 0.1 is above dtmax 0.01",
            ),
            (
                "system = 'lorenz'\nn = 5\nquantiles = [0.5]",
                "quantiles sets the levels of the montecarlo output; add montecarlo to outputs",
            ),
            (
                "system = 'lorenz'\nn = 5\noutputs = ['montecarlo']\nquantiles = [0.5, 2]",
                "quantiles must hold levels between 0 and 1 (got 2)",
            ),
            (
                "system = 'lorenz'\nn = 5\noutputs = ['montecarlo']\nquantiles = []",
                "quantiles needs at least one level",
            ),
        ];
        for (text, expected) in cases {
            let err = build_problem(&spec(text)).unwrap_err();
            assert!(
                matches!(err, SpecError::Field(_)),
                "{text:?}: {err} names no key"
            );
            let err = err.to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }
}
