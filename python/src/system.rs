//! `phaseflow.System`: a built-in system, a system file, or equations given as strings,
//! checked on construction with the CLI's messages.

use crate::convert::to_json;
use crate::errors::{spec_error_at, system_error, system_error_in};
use phaseflow::model::diagnostic::{Diagnostic, Diagnostics, Source};
use phaseflow::model::print::print_program;
use phaseflow::model::{System, builtin, builtin_names, load_system_file, parse_system};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use std::path::PathBuf;

/// A system of equations: its states, parameters and right-hand sides.
#[pyclass(name = "System", module = "phaseflow", frozen)]
pub struct PySystem {
    pub inner: System,
    pub origin: Origin,
}

/// Where a system came from: what a run directory or store is told, so that it records
/// this system and not another of the same name.
#[derive(Debug, Clone)]
pub enum Origin {
    Builtin,
    File(PathBuf),
    /// The system-file text `from_equations` assembled.
    Text(String),
}

/// What a source is called when `from_equations` assembles a system definition.
const ASSEMBLED: &str = "<from_equations>";

#[pymethods]
impl PySystem {
    /// A built-in system by name (`phaseflow.systems()` lists them).
    #[staticmethod]
    fn builtin(name: &str) -> PyResult<PySystem> {
        match builtin(name) {
            Some(Ok(inner)) => Ok(PySystem {
                inner,
                origin: Origin::Builtin,
            }),
            Some(Err(d)) => Err(system_error(&d)),
            None => {
                let names = builtin_names();
                let hint =
                    match phaseflow::model::diagnostic::did_you_mean(name, names.iter().copied()) {
                        Some(m) => format!("did you mean '{m}'?"),
                        None => format!("built-in systems: {}", names.join(", ")),
                    };
                Err(spec_error_at(
                    format!("no built-in system '{name}'; {hint}"),
                    Some("system".into()),
                ))
            }
        }
    }

    /// A system file (TOML: states, parameters, equations, ...).
    #[staticmethod]
    fn from_file(path: PathBuf) -> PyResult<PySystem> {
        load_system_file(&path)
            .map(|inner| PySystem {
                inner,
                origin: Origin::File(path.clone()),
            })
            .map_err(|d| system_error_in(&d, Some(&path)))
    }

    /// A system from its parts: `states` and `parameters` map names to default values (or
    /// list the names, each defaulting to 0), `equations` is one line `dx = ...` per state. Other system-file keys (`noise`,
    /// `events`, `jacobian`, `tspan`, `dt`, `inputs`, ...) may be given as keywords.
    /// Mistakes in a string point into that string (`.file` is `<equations>`).
    #[staticmethod]
    #[pyo3(signature = (states, parameters, equations, name = "system", **extra))]
    fn from_equations(
        states: &Bound<'_, PyAny>,
        parameters: &Bound<'_, PyAny>,
        equations: &str,
        name: &str,
        extra: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PySystem> {
        let mut doc = toml::Table::new();
        doc.insert("name".into(), toml::Value::String(name.into()));
        let states = defaults(states, "states")?;
        let parameters = defaults(parameters, "parameters")?;
        for (key, value) in [("states", states), ("parameters", parameters)] {
            check_defaults(&value, key)?;
            doc.insert(key.into(), toml_value(&value.into_any(), key)?);
        }
        doc.insert("equations".into(), toml::Value::String(equations.into()));
        let mut strings = vec![("equations".to_string(), equations.to_string())];
        if let Some(extra) = extra {
            for (k, v) in extra.iter() {
                let key: String = k.extract()?;
                if let Ok(s) = v.extract::<String>() {
                    strings.push((key.clone(), s));
                }
                doc.insert(key.clone(), toml_value(&v, &key)?);
            }
        }
        let text = toml::to_string(&doc)
            .map_err(|e| spec_error_at(format!("cannot assemble the system: {e}"), None))?;
        let source = Source::new(ASSEMBLED, text);
        parse_system(&source)
            .map(|inner| PySystem {
                inner,
                origin: Origin::Text(source.text.clone()),
            })
            .map_err(|d| {
                if let Some(e) = at_declared_name(&d, &source) {
                    return e;
                }
                system_error(&point_into_strings(d, &source, &strings))
            })
    }

    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The system-file text `from_equations` assembled (what a run directory copies as
    /// system.toml); `None` for a built-in or a file.
    #[getter]
    fn assembled_text(&self) -> Option<&str> {
        match &self.origin {
            Origin::Text(text) => Some(text),
            _ => None,
        }
    }

    #[getter]
    fn description(&self) -> &str {
        &self.inner.meta.description
    }

    /// State names, in the order of the state axis of results.
    #[getter]
    fn states(&self) -> Vec<String> {
        self.inner.states.iter().map(|v| v.name.clone()).collect()
    }

    /// Parameter names, in the order of the columns of `params`.
    #[getter]
    fn parameters(&self) -> Vec<String> {
        self.inner.params.iter().map(|v| v.name.clone()).collect()
    }

    /// Default initial state, name → value.
    #[getter]
    fn state_defaults<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for v in &self.inner.states {
            d.set_item(&v.name, v.default)?;
        }
        Ok(d)
    }

    /// Default parameters, name → value.
    #[getter]
    fn parameter_defaults<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for v in &self.inner.params {
            d.set_item(&v.name, v.default)?;
        }
        Ok(d)
    }

    /// The equations as written.
    #[getter]
    fn equations(&self) -> &str {
        &self.inner.equations
    }

    /// Whether the system is stochastic (has a `noise` term).
    #[getter]
    fn stochastic(&self) -> bool {
        self.inner.noise.is_some()
    }

    /// ∂f/∂u as text: `{"entries": {(equation_state, state): expression}, "temporaries":
    /// [(name, expression)]}` over the structurally non-zero entries (the hand-written
    /// Jacobian when the system gives one); `None` when it cannot be derived.
    fn jacobian<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Ok(j) = self.inner.state_jacobian() else {
            return Ok(None);
        };
        let text = print_program(&self.inner, &j.program);
        let names = self.states();
        let entries = PyDict::new(py);
        for (&(r, c), expr) in j.entries.iter().zip(&text.outputs) {
            entries.set_item(PyTuple::new(py, [&names[r], &names[c]])?, expr)?;
        }
        let temporaries = PyList::empty(py);
        for (name, expr) in &text.temporaries {
            temporaries.append((name, expr))?;
        }
        let out = PyDict::new(py);
        out.set_item("entries", entries)?;
        out.set_item("temporaries", temporaries)?;
        Ok(Some(out))
    }

    fn __repr__(&self) -> String {
        format!(
            "System('{}', states={:?}, parameters={:?})",
            self.inner.name(),
            self.states(),
            self.parameters()
        )
    }
}

/// The names of the built-in systems.
#[pyfunction]
pub fn systems() -> Vec<&'static str> {
    builtin_names()
}

/// A Python value as TOML, through JSON (which the spec's conversion already checks).
fn toml_value(value: &Bound<'_, PyAny>, key: &str) -> PyResult<toml::Value> {
    let json = to_json(value, key)?;
    json_to_toml(&json).ok_or_else(|| {
        spec_error_at(
            format!("{key} has a null (None) value, which a system cannot hold"),
            Some(key.to_string()),
        )
    })
}

fn json_to_toml(v: &serde_json::Value) -> Option<toml::Value> {
    use serde_json::Value as J;
    Some(match v {
        J::Null => return None,
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(a) => toml::Value::Array(a.iter().map(json_to_toml).collect::<Option<_>>()?),
        J::Object(o) => toml::Value::Table(
            o.iter()
                .map(|(k, v)| Some((k.clone(), json_to_toml(v)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

/// Diagnostics that point into the assembled definition, moved into the caller's own
/// strings where they fall inside one (an equation's mistake is reported at its line and
/// column in `equations`, not in a TOML text the caller never wrote).
/// A diagnostic on a `name = value` line of the `[states]` or `[parameters]` table the
/// dicts were assembled into (a reserved name, say) as a `SpecError` at `states.NAME`: the
/// caller wrote no such text to point into.
fn at_declared_name(d: &Diagnostics, source: &std::sync::Arc<Source>) -> Option<PyErr> {
    let diag = d.first();
    if !diag
        .source
        .as_ref()
        .is_some_and(|s| std::sync::Arc::ptr_eq(s, source))
    {
        return None;
    }
    let text = &source.text;
    let start = text
        .get(..diag.span.start)?
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let name = line.split('=').next()?.trim().trim_matches('"');
    let section = text[..start]
        .lines()
        .rev()
        .find(|l| l.starts_with('['))?
        .trim_matches(|c| c == '[' || c == ']');
    if !matches!(section, "states" | "parameters") || name.is_empty() {
        return None;
    }
    let key = format!("{section}.{name}");
    let hint = diag
        .hint
        .as_ref()
        .map_or(String::new(), |h| format!(" ({h})"));
    Some(spec_error_at(
        format!("{key}: {}{hint}", diag.message),
        Some(key),
    ))
}

fn point_into_strings(
    d: Diagnostics,
    source: &std::sync::Arc<Source>,
    strings: &[(String, String)],
) -> Diagnostics {
    let moved =
        d.0.into_iter()
            .map(|diag| {
                let in_assembled = diag
                    .source
                    .as_ref()
                    .is_some_and(|s| std::sync::Arc::ptr_eq(s, source));
                if !in_assembled {
                    // A string with escapes is already its own source, named after its key.
                    return rename_key_source(diag, strings);
                }
                for (key, text) in strings {
                    if text.is_empty() {
                        continue;
                    }
                    if let Some(at) = find_value(&source.text, key, text)
                        && diag.span.start >= at
                        && diag.span.end <= at + text.len()
                    {
                        let own = Source::new(format!("<{key}>"), text.clone());
                        let span = diag.span.start - at..diag.span.end - at;
                        let mut moved = Diagnostic::new(diag.message.clone(), &own, span);
                        moved.hint = diag.hint.clone();
                        return moved;
                    }
                }
                diag
            })
            .collect();
    Diagnostics(moved)
}

/// A diagnostic on a string the system file decoded into a source of its own ("<from_equations>
/// (equations)") is named as the caller knows it: `<equations>`.
fn rename_key_source(diag: Diagnostic, strings: &[(String, String)]) -> Diagnostic {
    let Some(src) = diag.source.as_ref() else {
        return diag;
    };
    for (key, text) in strings {
        if src.name == format!("{ASSEMBLED} ({key})") && src.text == *text {
            let own = Source::new(format!("<{key}>"), text.clone());
            let mut moved = Diagnostic::new(diag.message.clone(), &own, diag.span.clone());
            moved.hint = diag.hint.clone();
            return moved;
        }
    }
    diag
}

/// Byte offset of `key`'s string value in the assembled text, where it appears verbatim.
fn find_value(text: &str, key: &str, value: &str) -> Option<usize> {
    let at_key = text
        .find(&format!("\n{key} = "))
        .map(|i| i + 1)
        .or_else(|| text.starts_with(&format!("{key} = ")).then_some(0))?;
    text[at_key..].find(value).map(|i| at_key + i)
}

/// The names and default values of `states` or `parameters`, checked here so that a mistake
/// names the argument (`states.x`), not a line of the system text assembled from them.
/// `value` as a dict of name → default: a dict as it is, a list or tuple of names with
/// defaults of 0.
fn defaults<'py>(value: &Bound<'py, PyAny>, key: &str) -> PyResult<Bound<'py, PyDict>> {
    if let Ok(d) = value.cast::<PyDict>() {
        return Ok(d.clone());
    }
    let names = (value.is_instance_of::<pyo3::types::PyList>()
        || value.is_instance_of::<pyo3::types::PyTuple>())
    .then(|| value.extract::<Vec<String>>().ok())
    .flatten()
    .ok_or_else(|| {
        spec_error_at(
            format!(
                "{key} must map names to default values ({{\"x\": 1.0}}) or list the names \
                 ([\"x\", \"y\"], each 0 by default)"
            ),
            Some(key.into()),
        )
    })?;
    let d = PyDict::new(value.py());
    for name in names {
        if d.contains(&name)? {
            return Err(spec_error_at(
                format!("{key}: '{name}' is listed twice"),
                Some(key.into()),
            ));
        }
        d.set_item(name, 0.0)?;
    }
    Ok(d)
}

fn check_defaults(values: &Bound<'_, PyDict>, key: &str) -> PyResult<()> {
    for (name, value) in values.iter() {
        let name: String = name.extract().map_err(|_| {
            spec_error_at(
                format!("{key}: its keys are names (strings)"),
                Some(key.into()),
            )
        })?;
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(spec_error_at(
                format!(
                    "{key}: '{name}' is not a valid name: names start with a letter or '_' and \
                     contain only letters, digits and '_'"
                ),
                Some(key.into()),
            ));
        }
        let number = (!value.is_instance_of::<pyo3::types::PyBool>())
            .then(|| value.extract::<f64>().ok())
            .flatten()
            .filter(|v| v.is_finite());
        if number.is_none() {
            let shown = value.repr().map(|r| r.to_string()).unwrap_or_default();
            return Err(spec_error_at(
                format!("{key}.{name} is {shown}; its default must be a finite number"),
                Some(format!("{key}.{name}")),
            ));
        }
    }
    Ok(())
}
