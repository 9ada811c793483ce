//! The JSON bodies the server takes, checked into engine inputs. A simulate request has the
//! keys of a run config (`phaseflow simulate --config`), except that nothing may name a file
//! on the server: the system is a built-in's name or its definition inline.

use super::error::ApiError;
use crate::engine::check_input_value;
use crate::model::diagnostic::{Source, did_you_mean};
use crate::model::{System, builtin, builtin_names, parse_system};
use crate::nn::{DeepONetArch, Matrix};
use crate::ode::Problem;
use crate::ode::sensitivity::SensitivityRun;
use crate::spec::{RunSpec, SpecError, problem_for_system, sensitivity_run};
use serde_json::Value;

/// Keys of a run config that read or write server files.
const FILE_KEYS: [&str; 4] = ["params_file", "inputs_file", "out", "outputs"];

/// Parses a body as JSON (400 with line and column if it is not).
pub fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::malformed(&e))
}

/// A checked simulate request: the problem as asked (what the record describes) and, when
/// it asks for `sensitivities`, the run on the augmented system that the job integrates.
pub struct SimulateRequest {
    pub problem: Problem,
    pub sensitivities: Option<SensitivityRun>,
    /// `include` or `exclude`, as the run's summary records it.
    pub sensitivity_error: &'static str,
}

impl SimulateRequest {
    /// What the job runs: the augmented problem when there are sensitivities.
    pub fn run_problem(&self) -> &Problem {
        self.sensitivities
            .as_ref()
            .map_or(&self.problem, |run| &run.problem)
    }
}

/// `{"system": "lorenz" | {"definition": "<system file TOML>"}, "n": ..., ...}` → problem,
/// with the checks and messages of `simulate --config` (sensitivities included).
pub fn simulate_problem(body: Value) -> Result<SimulateRequest, ApiError> {
    let (system, spec) = run_spec(body)?;
    spec.only_analysis(None).map_err(spec_api_error)?;
    let problem = problem_for_system(system, &spec).map_err(spec_api_error)?;
    let sensitivities = sensitivity_run(&spec, &problem).map_err(spec_api_error)?;
    let sensitivity_error = match spec.sensitivity_error.as_deref() {
        Some("exclude") => "exclude",
        _ => "include",
    };
    Ok(SimulateRequest {
        problem,
        sensitivities,
        sensitivity_error,
    })
}

/// A body with a run config's keys: its system (a built-in's name or a definition
/// inline) and the rest as a run spec. No key may name a file on the server.
pub fn run_spec(mut body: Value) -> Result<(System, RunSpec), ApiError> {
    let map = body
        .as_object_mut()
        .ok_or_else(|| ApiError::invalid("the body must be a JSON object"))?;
    for key in FILE_KEYS {
        if map.contains_key(key) {
            return Err(ApiError::invalid(format!(
                "'{key}' names files on the server, which requests may not do; send values \
                 inline (sweeps, generators) and fetch results from /v1/jobs/{{id}}/result"
            ))
            .field(key));
        }
    }
    if map
        .get("u0")
        .and_then(|u| u.as_object())
        .is_some_and(|u| u.contains_key("file"))
    {
        return Err(ApiError::invalid(
            "'u0.file' names a file on the server; use u0.uniform, u0.grid or u0.perturb",
        )
        .field("u0.file"));
    }
    let system = system(map.remove("system"))?;
    let spec = RunSpec::from_json(body).map_err(|f| {
        let err = ApiError::invalid(f.to_string());
        if f.field.is_empty() {
            err
        } else {
            err.field(&f.field)
        }
    })?;
    Ok((system, spec))
}

/// A spec's refusal as a 422 whose `where.field` is the key at fault.
pub fn spec_api_error(e: SpecError) -> ApiError {
    match e {
        // The spec names its keys as JSON paths already (`rtol`, `sweep.rho`).
        SpecError::Field(f) => ApiError::invalid(f.to_string()).field(&f.field),
        SpecError::Input(m) => {
            let field = field_of_message(&m).map(str::to_string);
            let err = ApiError::invalid(m);
            match field {
                Some(f) => err.field(&f),
                None => err,
            }
        }
        // A section's mistakes point into its own text (`with_section` names it so).
        // A section's and a classifying expression's mistakes point into their own text,
        // which `with_section` and `basins::expression` name after their key.
        SpecError::Diagnostics(d) => {
            let field = match d.first().source.as_ref().map(|s| s.name.as_str()) {
                Some("--section") => "section",
                Some("basins.classify") => "basins.classify",
                _ => "system",
            };
            ApiError::from_diagnostics(field, &d)
        }
    }
}

/// The run spec's keys that a problem's own checks may open a message with (`dt must be
/// positive`, `atol must be ...`).
const SPEC_KEYS: &[&str] = &[
    "tspan",
    "dt",
    "save_every",
    "rtol",
    "atol",
    "dtmin",
    "dtmax",
    "max_steps",
    "safety",
    "max_growth",
    "max_shrink",
    "saveat",
];

/// The key a problem-check message opens with, if any.
fn field_of_message(message: &str) -> Option<&str> {
    let first = message.split(' ').next()?;
    SPEC_KEYS.iter().copied().find(|k| *k == first)
}

fn system(value: Option<Value>) -> Result<System, ApiError> {
    match value {
        None => Err(ApiError::invalid(
            "no system given: send \"system\": \"<built-in name>\" or \"system\": {\"definition\": \"<system TOML>\"}",
        )
        .field("system")),
        Some(Value::String(name)) => match builtin(&name) {
            Some(Ok(s)) => Ok(s),
            Some(Err(d)) => Err(ApiError::from_diagnostics("system", &d)),
            None => {
                let names = builtin_names();
                let hint = did_you_mean(&name, names.iter().copied())
                    .map(|s| format!(" Did you mean '{s}'?"))
                    .unwrap_or_default();
                Err(ApiError::invalid(format!(
                    "unknown system '{name}'.{hint} Built-in systems: {}; or send its definition \
                     as {{\"definition\": \"...\"}}",
                    names.join(", ")
                ))
                .field("system"))
            }
        },
        Some(Value::Object(o)) => match o.get("definition") {
            Some(Value::String(text)) if o.len() == 1 => {
                let source = Source::new("system.definition", text.clone());
                parse_system(&source)
                    .map_err(|d| ApiError::from_diagnostics("system.definition", &d))
            }
            _ => Err(ApiError::invalid(
                "'system' as an object takes exactly one key, \"definition\", whose value is the \
                 text of a system file",
            )
            .field("system")),
        },
        Some(_) => Err(ApiError::invalid(
            "'system' must be a built-in's name or {\"definition\": \"...\"}",
        )
        .field("system")),
    }
}

/// Rows of numbers: `[[..], [..]]`, or a flat list read as rows of `width` (one function's
/// sensor values, or points of one coordinate).
fn matrix(value: Option<&Value>, field: &str, width: usize) -> Result<Matrix, ApiError> {
    let bad = |m: String| ApiError::invalid(m).field(field);
    let rows = value
        .and_then(Value::as_array)
        .ok_or_else(|| bad(format!("'{field}' must be a list of numbers or of rows")))?;
    // Each value is a number the device can hold (finite in f32); `where.field` is its
    // JSON path, e.g. `u[3][1]`.
    let number = |v: &Value, at: String| -> Result<f64, ApiError> {
        let x = v
            .as_f64()
            .ok_or_else(|| ApiError::invalid(format!("{at} is not a number")).field(&at))?;
        check_input_value(x).map_err(|why| ApiError::invalid(format!("{at} {why}")).field(&at))?;
        Ok(x)
    };
    let mut data = Vec::new();
    let n_rows;
    if rows.first().is_some_and(Value::is_array) {
        n_rows = rows.len();
        for (i, row) in rows.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let row = row
                .as_array()
                .ok_or_else(|| ApiError::invalid(format!("{at} is not a list")).field(&at))?;
            if let Some(j) = row.iter().position(Value::is_array) {
                let at = format!("{at}[{j}]");
                return Err(ApiError::invalid(format!(
                    "{at} is a list; '{field}' is a list of numbers or a list of rows of \
                     numbers, nested two deep at most"
                ))
                .field(&at));
            }
            if row.len() != width {
                return Err(ApiError::invalid(format!(
                    "{at} has {} values; the model needs {width}",
                    row.len()
                ))
                .field(&at));
            }
            for (j, v) in row.iter().enumerate() {
                data.push(number(v, format!("{field}[{i}][{j}]"))?);
            }
        }
    } else {
        if rows.is_empty() || rows.len() % width != 0 {
            return Err(bad(format!(
                "'{field}' has {} values, not a positive multiple of the model's {width}",
                rows.len()
            )));
        }
        n_rows = rows.len() / width;
        for (j, v) in rows.iter().enumerate() {
            data.push(number(v, format!("{field}[{j}]"))?);
        }
    }
    if n_rows == 0 {
        return Err(bad(format!("'{field}' is empty")));
    }
    Ok(Matrix {
        rows: n_rows,
        cols: width,
        data,
    })
}

/// `{"u": functions × sensors, "y": points × dims}` for `arch`.
pub fn prediction_inputs(body: &Value, arch: &DeepONetArch) -> Result<(Matrix, Matrix), ApiError> {
    // A misspelt key would otherwise be ignored, as /v1/simulate refuses it.
    if let Some(map) = body.as_object()
        && let Some(key) = map.keys().find(|k| !["u", "y"].contains(&k.as_str()))
    {
        return Err(ApiError::invalid(format!(
            "unknown key `{key}`; a prediction request holds `u` (sensor values) and `y` (points)"
        ))
        .field(key));
    }
    Ok((
        matrix(body.get("u"), "u", arch.sensors())?,
        matrix(body.get("y"), "y", arch.dims())?,
    ))
}
