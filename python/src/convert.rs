//! Python values to JSON, so that keyword arguments become a run spec through the same
//! serde types as a config file or an HTTP body (and are refused with the same messages).

use crate::errors::spec_error_at;
use numpy::PyArrayMethods;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use serde_json::{Map, Number, Value};

/// A whole-number keyword within `range`, taken from any Python integer (NumPy's too), so
/// that a negative, fractional or out-of-range one is a `SpecError` at `key` that says what
/// the keyword takes, not a bare `OverflowError` or `TypeError`.
pub fn whole(
    value: &Bound<'_, PyAny>,
    key: &str,
    range: std::ops::RangeInclusive<u64>,
) -> PyResult<u64> {
    let (min, max) = (*range.start(), *range.end());
    let refuse = |shown: String| {
        spec_error_at(
            format!("{key} must be a whole number from {min} to {max}, not {shown}"),
            Some(key.into()),
        )
    };
    let shown = || {
        value
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "that".into())
    };
    if value.is_instance_of::<PyBool>() {
        return Err(refuse(shown()));
    }
    match value.extract::<i64>() {
        Ok(v) if v >= 0 && range.contains(&(v as u64)) => Ok(v as u64),
        Ok(v) => Err(refuse(v.to_string())),
        Err(_) => match value.extract::<u64>() {
            Ok(v) if range.contains(&v) => Ok(v),
            _ => Err(refuse(shown())),
        },
    }
}

/// Deepest nesting accepted: run specs nest three levels (`u0.uniform.x`); a deeper or
/// self-referencing value is refused, never a stack overflow.
const MAX_DEPTH: usize = 16;

/// `value` as JSON; `key` is its path in the spec, for messages.
pub fn to_json(value: &Bound<'_, PyAny>, key: &str) -> PyResult<Value> {
    convert(value, key, 0)
}

fn convert(value: &Bound<'_, PyAny>, key: &str, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(spec_error_at(
            format!("{key} is nested more than {MAX_DEPTH} levels deep"),
            Some(key.to_string()),
        ));
    }
    if value.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: Python's bool is an int.
    if value.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(value.extract()?));
    }
    if value.is_instance_of::<PyInt>() {
        return match value.extract::<i64>() {
            Ok(i) => Ok(Value::from(i)),
            Err(_) => match value.extract::<u64>() {
                Ok(u) => Ok(Value::from(u)),
                Err(_) => Err(spec_error_at(
                    format!("{key} is an integer too large for any setting"),
                    Some(key.to_string()),
                )),
            },
        };
    }
    if value.is_instance_of::<PyFloat>() {
        return float(value.extract()?, key);
    }
    if value.is_instance_of::<PyString>() {
        return Ok(Value::String(value.extract()?));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in dict.iter() {
            let name: String = k.extract().map_err(|_| {
                spec_error_at(
                    format!("{key} has a key that is not a string: {}", repr(&k)),
                    Some(key.to_string()),
                )
            })?;
            let path = if key.is_empty() {
                name.clone()
            } else {
                format!("{key}.{name}")
            };
            map.insert(name, convert(&v, &path, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, v) in value.try_iter()?.enumerate() {
            items.push(convert(&v?, &format!("{key}[{i}]"), depth + 1)?);
        }
        return Ok(Value::Array(items));
    }
    // NumPy scalars and arrays (a sweep's bounds as np.float32, saveat as np.linspace).
    // A class (np.float64 itself) has these methods unbound: calling them fails, and the
    // value is refused below like any other that is not a number.
    if !value.is_instance_of::<PyType>() {
        // A path (pathlib.Path, os.PathLike): its text, as a config file would hold it.
        if let Ok(path) = value.call_method0("__fspath__")
            && path.is_instance_of::<PyString>()
        {
            return Ok(Value::String(path.extract()?));
        }
        if let Ok(plain) = value.call_method0("tolist")
            && !plain.is(value)
        {
            return convert(&plain, key, depth + 1);
        }
        if let Ok(i) = value.call_method0("__index__") {
            return convert(&i, key, depth + 1);
        }
        if let Ok(x) = value
            .call_method0("__float__")
            .and_then(|f| f.extract::<f64>())
        {
            return float(x, key);
        }
    }
    Err(spec_error_at(
        format!(
            "{key} cannot be {} (give numbers, strings, lists or dicts)",
            repr(&value.get_type().into_any())
        ),
        Some(key.to_string()),
    ))
}

fn float(x: f64, key: &str) -> PyResult<Value> {
    Number::from_f64(x).map(Value::Number).ok_or_else(|| {
        spec_error_at(
            format!("{key} must be a finite number, not {x}"),
            Some(key.to_string()),
        )
    })
}

fn repr(v: &Bound<'_, PyAny>) -> String {
    v.repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unprintable>".into())
}

/// Any array-like (a NumPy array of any numeric dtype, nested lists) as a C-ordered f64
/// matrix, converted by NumPy itself; anything else, or another number of dimensions, is
/// a `SpecError` naming `key`.
pub fn matrix_f64<'py>(
    value: &Bound<'py, PyAny>,
    key: &str,
) -> PyResult<numpy::PyReadonlyArray2<'py, f64>> {
    let array = contiguous_f64(value, key, 2, "[rows, columns]")?;
    Ok(array.cast_into::<numpy::PyArray2<f64>>()?.readonly())
}

/// `value` as a C-ordered f64 NumPy array of `ndim` dimensions (`layout` names them, for
/// the message), or a `SpecError` naming `key`.
fn contiguous_f64<'py>(
    value: &Bound<'py, PyAny>,
    key: &str,
    ndim: usize,
    layout: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let py = value.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", "float64")?;
    let array = py
        .import("numpy")?
        .call_method("ascontiguousarray", (value,), Some(&kwargs))
        .map_err(|e| {
            spec_error_at(
                format!("{key}: not an array of numbers ({e})"),
                Some(key.into()),
            )
        })?;
    let got: usize = array.getattr("ndim")?.extract()?;
    if got != ndim {
        let shape = array.getattr("shape")?.str()?.to_string();
        return Err(spec_error_at(
            format!("{key}: expected a {ndim}-D array {layout}, got shape {shape}"),
            Some(key.into()),
        ));
    }
    Ok(array)
}

/// `value` as the library's shaped array (copied out of NumPy), `ndim` dimensions.
pub fn array_f64(
    value: &Bound<'_, PyAny>,
    key: &str,
    ndim: usize,
    layout: &str,
) -> PyResult<phaseflow::spec::estimate::Array> {
    use numpy::PyUntypedArrayMethods;
    let array = contiguous_f64(value, key, ndim, layout)?
        .cast_into::<numpy::PyArrayDyn<f64>>()?
        .readonly();
    Ok(phaseflow::spec::estimate::Array {
        shape: array.shape().to_vec(),
        data: array.as_array().iter().copied().collect(),
    })
}

/// A read-only f64 matrix as the library's `Matrix` (copied: the library keeps its own).
pub fn matrix_of(array: &numpy::PyReadonlyArray2<'_, f64>) -> phaseflow::nn::Matrix {
    use numpy::PyUntypedArrayMethods;
    let shape = array.shape();
    let data = array
        .as_slice()
        .map(<[f64]>::to_vec)
        .unwrap_or_else(|_| array.as_array().iter().copied().collect());
    phaseflow::nn::Matrix {
        rows: shape[0],
        cols: shape[1],
        data,
    }
}

/// `value` as NumPy has it, a 1-D array made 2-D: one row (`one_row`) or one column.
pub fn as_rows<'py>(
    value: &Bound<'py, PyAny>,
    key: &str,
    one_row: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let array = value
        .py()
        .import("numpy")?
        .call_method1("asarray", (value,))
        .map_err(|e| {
            spec_error_at(
                format!("{key}: not an array of numbers ({e})"),
                Some(key.into()),
            )
        })?;
    if array.getattr("ndim")?.extract::<usize>()? != 1 {
        return Ok(array);
    }
    let shape: (i64, i64) = if one_row { (1, -1) } else { (-1, 1) };
    array.call_method1("reshape", (shape,))
}
