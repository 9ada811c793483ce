//! The fits of `phaseflow estimate` from what a front-end was given (the CLI's flags and
//! files, Python's keywords and arrays): the model run's defaults, then observations,
//! fitted quantities with bounds and starts, weights and stopping rule, checked with one
//! message per mistake that names the input it is about.

use super::run::RunSpec;
use crate::ode::estimate::{EstimationProblem, Observations, Start, Stopping};
use crate::ode::sensitivity::{ErrorControl, resolve};
use crate::ode::{Precision, Problem, Solver};

/// Tolerance of an adaptive or stiff fit's runs when none is given: tighter than the
/// noise of any real observation, so the fit sees the model, not the integrator.
pub const DEFAULT_TOLERANCE: f64 = 1e-8;

/// A mistake in the input called `key` (`fit`, `times`, `n`, ...): `message` follows the
/// key's name, which each front-end writes its own way (`--fit`, `fit`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key} {message}")]
pub struct FitInputError {
    pub key: &'static str,
    pub message: String,
}

fn bad<T>(key: &'static str, message: String) -> Result<T, FitInputError> {
    Err(FitInputError { key, message })
}

/// A number as a message shows it: in exponent form when plain digits would run long
/// (`1e308`, not 309 digits).
pub fn shown(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-4..1e15).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// What to fit and how.
#[derive(Debug, Clone, Default)]
pub struct FitRequest {
    /// In fitting order: a parameter's name or a state's initial value (`x0`), and
    /// [lo, hi] or [lo, hi, start] (the start defaults to the middle of the bounds).
    pub fit: Vec<(String, Vec<f64>)>,
    /// A state's weight in the cost (default 1).
    pub weights: Vec<(String, f64)>,
    /// "include" (default) or "exclude": whether the runs' error control measures the
    /// sensitivities.
    pub sensitivity_error: Option<String>,
    pub max_iterations: Option<u32>,
    /// One set of values for every trajectory (their costs summed) instead of one each.
    pub shared: bool,
}

/// An array and its shape, as read from a file or handed over by a caller.
#[derive(Debug, Clone, Default)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// The data the fits are made to.
#[derive(Debug, Clone, Default)]
pub struct FitData {
    /// [N, n_obs, dim]; NaN marks a value not observed.
    pub observations: Array,
    /// [n_obs], increasing.
    pub times: Array,
    /// The observations' shape; 0 marks a value not observed.
    pub mask: Option<Array>,
    /// [N, n_fit]: each trajectory's start, columns in `fit`'s order.
    pub start: Option<Array>,
}

impl FitData {
    /// (N, n_obs, dim), checked against the times.
    fn shape(&self) -> Result<(usize, usize, usize), FitInputError> {
        let shape = &self.observations.shape;
        let [n, n_obs, dim] = shape[..] else {
            return bad(
                "observations",
                format!("has shape {shape:?}; it needs [N, n_obs, dim]"),
            );
        };
        if self.times.shape != [n_obs] {
            return bad(
                "times",
                format!(
                    "has shape {:?}, but the observations have {n_obs} times: it needs [{n_obs}]",
                    self.times.shape
                ),
            );
        }
        if let Some(mask) = &self.mask {
            if mask.shape != shape[..] {
                return bad(
                    "mask",
                    format!(
                        "has shape {:?}; it needs the observations' {shape:?}",
                        mask.shape
                    ),
                );
            }
            if let Some(at) = mask.data.iter().position(|&m| m != 0.0 && m != 1.0) {
                let (i, j, k) = (at / (n_obs * dim), at / dim % n_obs, at % dim);
                return bad(
                    "mask",
                    format!(
                        "holds {} at [{i}, {j}, {k}]; it takes 1 (observed) or 0 (not)",
                        shown(mask.data[at])
                    ),
                );
            }
        }
        let t = &self.times.data;
        if let Some(i) = t.iter().position(|v| !v.is_finite()) {
            return bad(
                "times",
                format!("holds {} at index {i}; every time must be finite", t[i]),
            );
        }
        if let Some(i) = t.windows(2).position(|w| w[0] >= w[1]) {
            return bad(
                "times",
                format!(
                    "must increase: {} (index {i}) is followed by {}",
                    shown(t[i]),
                    shown(t[i + 1])
                ),
            );
        }
        Ok((n, n_obs, dim))
    }
}

/// Sets what the fits' run needs on `spec` where it was left open: N (from the
/// observations; a given N must agree), the solver (tsit5), f64, the span (0 to the last
/// observation time), tolerances (`DEFAULT_TOLERANCE`) and, for fixed-step solvers, a save
/// at every step (the observation times must be on the grid).
pub fn prepare_run(spec: &mut RunSpec, data: &FitData) -> Result<(), FitInputError> {
    let (n, _, _) = data.shape()?;
    if let Some(given) = spec.n
        && given != n
    {
        return bad(
            "n",
            format!("is {given}, but the observations hold {n} trajectories"),
        );
    }
    spec.n = Some(n);
    let solver = *spec.solver.get_or_insert(Solver::Tsit5);
    let precision = *spec.precision.get_or_insert(Precision::F64);
    if spec.tspan.is_none() {
        let last = data.times.data.last().copied().unwrap_or(0.0);
        spec.tspan = Some([0.0, last]);
    }
    if solver.pair().is_some() || solver.stiff_method().is_some() {
        for (key, tol) in [("rtol", &mut spec.rtol), ("atol", &mut spec.atol)] {
            let value = tol.get_or_insert(toml::Value::Float(DEFAULT_TOLERANCE));
            if precision == Precision::F32
                && let Some(v) = value.as_float().filter(|v| *v < 1e-7)
            {
                return bad(
                    key,
                    format!(
                        "{v:e} is below what f32 resolves (6e-8 relative): the runs would fail \
                         or stop short; use 1e-7 or more, or f64"
                    ),
                );
            }
        }
    } else if spec.save_every.is_none() && spec.saveat.is_none() {
        spec.save_every = Some(1);
    }
    Ok(())
}

/// The fits `request` asks for of `problem` (built from the spec `prepare_run` completed)
/// to `data`. `EstimationProblem::check` still runs before any work.
pub fn estimation_problem(
    problem: Problem,
    request: &FitRequest,
    data: FitData,
) -> Result<EstimationProblem, FitInputError> {
    let (n, _, dim) = data.shape()?;
    let system = problem.system();
    if system.dim() != dim {
        return bad(
            "observations",
            format!(
                "has {dim} values per time, but {} has {} states",
                system.name(),
                system.dim()
            ),
        );
    }
    if request.fit.is_empty() {
        return bad(
            "fit",
            "names nothing: give at least one parameter or initial value to fit".into(),
        );
    }
    let names: Vec<String> = request.fit.iter().map(|(k, _)| k.clone()).collect();
    if let Some(name) = names
        .iter()
        .enumerate()
        .find(|(i, n)| names[..*i].contains(n))
        .map(|(_, n)| n)
    {
        return bad("fit", format!("'{name}' is named twice"));
    }
    let targets = resolve(system, &names).map_err(|e| FitInputError {
        key: "fit",
        message: e.to_string(),
    })?;
    let mut bounds = Vec::new();
    let mut same = Vec::new();
    for (name, v) in &request.fit {
        let (lo, hi, start) = match v[..] {
            [lo, hi] => (lo, hi, 0.5 * (lo + hi)),
            [lo, hi, s] => (lo, hi, s),
            _ => {
                return bad(
                    "fit",
                    format!("{name}: give LO:HI or LO:HI:START, not {} numbers", v.len()),
                );
            }
        };
        if !(lo.is_finite() && hi.is_finite() && start.is_finite()) {
            return bad(
                "fit",
                format!(
                    "{name}: the bounds and start must be finite (got {}:{}:{})",
                    shown(lo),
                    shown(hi),
                    shown(start)
                ),
            );
        }
        if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) || !(lo..=hi).contains(&start) {
            return bad(
                "fit",
                format!(
                    "{name}: the bounds need LO < HI and the start within them (got {}:{}:{})",
                    shown(lo),
                    shown(hi),
                    shown(start)
                ),
            );
        }
        bounds.push((lo, hi));
        same.push(start);
    }
    let k = targets.len();
    let start = match data.start {
        None => Start::Same(same),
        Some(_) if request.shared => {
            return bad(
                "start",
                "gives each trajectory its own start; a shared fit has one (START in fit)".into(),
            );
        }
        Some(s) => {
            if s.shape != [n, k] {
                return bad(
                    "start",
                    format!("has shape {:?}; it needs [N, n_fit] = [{n}, {k}]", s.shape),
                );
            }
            for (at, v) in s.data.iter().enumerate() {
                let (lo, hi) = bounds[at % k];
                if !(lo..=hi).contains(v) {
                    return bad(
                        "start",
                        format!(
                            "row {}, column {} ({}) is {}, outside its bounds [{}, {}]",
                            at / k,
                            at % k,
                            names[at % k],
                            shown(*v),
                            shown(lo),
                            shown(hi)
                        ),
                    );
                }
            }
            Start::PerTrajectory(s.data)
        }
    };
    let mut weights = vec![1.0; dim];
    for (name, w) in &request.weights {
        let Some(i) = system.state_index(name) else {
            return bad(
                "weights",
                format!("'{name}' is not a state of {}", system.name()),
            );
        };
        if !(w.is_finite() && *w >= 0.0) {
            return bad(
                "weights",
                format!("{name}: give one finite value >= 0, not {w}"),
            );
        }
        weights[i] = *w;
    }
    if weights.iter().all(|w| *w == 0.0) {
        return bad(
            "weights",
            "are 0 for every state: no observation would count".into(),
        );
    }
    let error_control = match request.sensitivity_error.as_deref() {
        None => ErrorControl::Include,
        Some(name) => ErrorControl::from_name(name).ok_or_else(|| FitInputError {
            key: "sensitivity_error",
            message: format!("is '{name}'; it is include or exclude"),
        })?,
    };
    let mut stopping = Stopping::for_precision(problem.precision());
    if let Some(m) = request.max_iterations {
        stopping.max_iterations = m;
    }
    let mut values = data.observations.data;
    if let Some(mask) = data.mask {
        for (v, keep) in values.iter_mut().zip(mask.data) {
            if keep == 0.0 {
                *v = f64::NAN;
            }
        }
    }
    Ok(EstimationProblem {
        targets,
        bounds,
        start,
        observations: Observations {
            times: data.times.data,
            values,
            weights,
        },
        error_control,
        stopping,
        problem,
    })
}

/// Run keys a fit sets itself or has no use for, with the reason a refusal gives.
pub const NOT_FOR_FITS: [(&str, &str); 5] = [
    ("saveat", "the fits' runs save at the observation times"),
    ("quantiles", "fits have no Monte Carlo statistics"),
    (
        "sensitivities",
        "the fits' runs differentiate with respect to what `fit` names",
    ),
    ("events", "fits are of systems without events"),
    ("section", "fits are of systems without events"),
];

/// Most unknowns of one multiple-shooting fit (the fitted quantities and every segment's
/// start): its normal equations are dense, so time grows as the cube and memory as the
/// square of this (256: a 0.5 MB matrix, a millisecond per factorisation).
pub const MAX_SHOOTING_UNKNOWNS: usize = 256;

/// Host memory all fits' normal equations may take together under multiple shooting.
pub const MAX_SHOOTING_BYTES: u64 = 2 << 30;

/// Refuses a number of shooting segments the observations cannot carry (each segment
/// after the first starts at an observation time and needs a second one), segments with a
/// shared fit (multiple shooting fits each trajectory on its own), and more segments than
/// `ep`'s fits can hold as dense normal equations (`MAX_SHOOTING_UNKNOWNS` per fit,
/// `MAX_SHOOTING_BYTES` in all).
pub fn check_segments(
    segments: usize,
    ep: &EstimationProblem,
    shared: bool,
) -> Result<(), FitInputError> {
    let n_obs = ep.observations.times.len();
    // Compared as K > n_obs / 2, never 2·K > n_obs: K may be any usize.
    if segments == 0 || (segments > 1 && segments > n_obs / 2) {
        return bad(
            "segments",
            format!(
                "{segments}: give at least 1, and at most {} so that each segment holds at \
                 least two of the {n_obs} observation times",
                n_obs / 2
            ),
        );
    }
    if shared && segments > 1 {
        return bad(
            "segments",
            "fits each trajectory on its own (multiple shooting); it does not combine with a \
             shared fit"
                .into(),
        );
    }
    let (n_fit, dim, n) = (
        ep.targets.len(),
        ep.problem.system().dim(),
        ep.problem.ensemble().n,
    );
    let unknowns = (segments - 1).saturating_mul(dim).saturating_add(n_fit);
    let bytes = (unknowns as u64)
        .saturating_mul(unknowns as u64)
        .saturating_mul(8)
        .saturating_mul(n as u64);
    if segments > 1 && (unknowns > MAX_SHOOTING_UNKNOWNS || bytes > MAX_SHOOTING_BYTES) {
        let most = (MAX_SHOOTING_UNKNOWNS.saturating_sub(n_fit) / dim.max(1)).max(1) + 1;
        return bad(
            "segments",
            format!(
                "{segments}: each fit would have {unknowns} unknowns ({n_fit} fitted, {dim} per \
                 segment start), {:.1} GiB of normal equations for {n} trajectories; at most \
                 {MAX_SHOOTING_UNKNOWNS} unknowns and {} GiB are allowed, so use at most \
                 {most} segments (fewer with many trajectories)",
                bytes as f64 / (1u64 << 30) as f64,
                MAX_SHOOTING_BYTES >> 30
            ),
        );
    }
    Ok(())
}

/// The fits' set-up as resolved (defaults filled in), as front-ends record it beside the
/// results: system, solver, precision, span, counts, what is fitted within which bounds,
/// weights, error control, stopping rule, shared or not, segments.
pub fn settings_json(ep: &EstimationProblem, shared: bool, segments: usize) -> serde_json::Value {
    let (t0, t1) = ep.problem.span();
    let system = ep.problem.system();
    serde_json::json!({
        "system": system.name(),
        "solver": ep.problem.solver().name(),
        "precision": ep.problem.precision().name(),
        "tspan": [t0, t1],
        "n": ep.problem.ensemble().n,
        "observation_times": ep.observations.times.len(),
        "fitted": ep.targets.iter().map(|t| t.name(system)).collect::<Vec<_>>(),
        "bounds": ep.bounds,
        "weights": ep.observations.weights,
        "state_names": system.states.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
        "sensitivity_error": ep.error_control.name(),
        "max_iterations": ep.stopping.max_iterations,
        "ftol": ep.stopping.ftol,
        "xtol": ep.stopping.xtol,
        "shared": shared,
        "segments": segments,
        "phaseflow_version": env!("CARGO_PKG_VERSION"),
    })
}
