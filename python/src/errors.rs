//! phaseflow's errors as Python exceptions, with the same messages as the command line:
//! a system file's mistakes carry `.file`, `.line` and `.column`, a run spec's carry `.key`.

use phaseflow::engine::EngineError;
use phaseflow::gpu::GpuError;
use phaseflow::model::diagnostic::Diagnostics;
use phaseflow::ode::SimError;

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::{PyErr, create_exception};

create_exception!(
    phaseflow,
    PhaseflowError,
    PyException,
    "Base class of every error phaseflow raises."
);
create_exception!(
    phaseflow,
    SystemError,
    PhaseflowError,
    "A system definition is wrong; `.file`, `.line` and `.column` point at the mistake."
);
create_exception!(
    phaseflow,
    SpecError,
    PhaseflowError,
    "A run setting is wrong; `.key` names it as in a config file (`rtol`, `sweep.rho`)."
);
create_exception!(
    phaseflow,
    NoAdapterError,
    PhaseflowError,
    "No GPU adapter (Vulkan, Metal or DX12; Mesa's lavapipe on a machine without a GPU)."
);
create_exception!(
    phaseflow,
    CancelledError,
    PhaseflowError,
    "The job was cancelled (`Job.cancel()`, or Ctrl-C while waiting for it)."
);
create_exception!(
    phaseflow,
    RunError,
    PhaseflowError,
    "A run failed on the device (a driver error, a kernel that did not compile, memory)."
);

/// Sets attributes on a new exception instance, then hands it back as the error to raise.
fn with_attrs(err: PyErr, attrs: &[(&str, Option<Py<PyAny>>)]) -> PyErr {
    Python::attach(|py| {
        let value = err.value(py);
        for (name, v) in attrs {
            // Setting an attribute on a fresh exception instance cannot fail.
            let _ = match v {
                Some(v) => value.setattr(*name, v),
                None => value.setattr(*name, py.None()),
            };
        }
    });
    err
}

/// A system definition's diagnostics: the message shows file:line:column, the line and a
/// caret, exactly as the CLI prints it; the first mistake's position is on the exception.
pub fn system_error(d: &Diagnostics) -> PyErr {
    system_error_in(d, None)
}

/// `system_error` for a system read from `path`: a mistake about the file as a whole (it
/// cannot be read, it is not UTF-8) has no source text, and `.file` is then the path.
pub fn system_error_in(d: &Diagnostics, path: Option<&std::path::Path>) -> PyErr {
    let first = d.first();
    let (file, pos) = (
        first
            .source
            .as_ref()
            .map(|s| s.name.clone())
            .or_else(|| path.map(|p| p.display().to_string())),
        first.position(),
    );
    Python::attach(|py| {
        let err = SystemError::new_err(d.to_string());
        let obj = |v: Option<Py<PyAny>>| v;
        with_attrs(
            err,
            &[
                (
                    "file",
                    obj(file.map(|f| f.into_pyobject(py).unwrap().into_any().unbind())),
                ),
                (
                    "line",
                    obj(pos.map(|p| p.0.into_pyobject(py).unwrap().into_any().unbind())),
                ),
                (
                    "column",
                    obj(pos.map(|p| p.1.into_pyobject(py).unwrap().into_any().unbind())),
                ),
            ],
        )
    })
}

/// A spec error with the key at fault (`None` when the message is about no one key).
pub fn spec_error_at(message: String, key: Option<String>) -> PyErr {
    Python::attach(|py| {
        let key = key
            .filter(|k| !k.is_empty())
            .map(|k| k.into_pyobject(py).unwrap().into_any().unbind());
        with_attrs(SpecError::new_err(message), &[("key", key)])
    })
}

pub fn spec_error(e: phaseflow::spec::SpecError) -> PyErr {
    match e {
        phaseflow::spec::SpecError::Field(f) => spec_error_at(f.to_string(), Some(f.field)),
        phaseflow::spec::SpecError::Input(m) => spec_error_at(m, None),
        phaseflow::spec::SpecError::Diagnostics(d) => system_error(&d),
    }
}

pub fn gpu_error(e: GpuError) -> PyErr {
    match e {
        GpuError::NoAdapter | GpuError::NoSuchAdapter { .. } => {
            NoAdapterError::new_err(e.to_string())
        }
        // A request this device cannot take (too large for its buffers, a missing feature):
        // the caller's to change.
        GpuError::Unsupported(m) => spec_error_at(m, None),
        other => RunError::new_err(other.to_string()),
    }
}

pub fn sim_error(e: SimError) -> PyErr {
    match e {
        SimError::Gpu(g) => gpu_error(g),
        // A problem that fails its own checks (tolerances, grids, table sizes, memory
        // limits) is the caller's input, as the CLI has it.
        other => spec_error_at(other.to_string(), None),
    }
}

pub fn engine_error(e: EngineError) -> PyErr {
    match e {
        EngineError::Sim(s) => sim_error(s),
        EngineError::Gpu(g) => gpu_error(g),
        EngineError::Cancelled { .. } => CancelledError::new_err(e.to_string()),
        EngineError::BadInput(m) => spec_error_at(m, None),
        e @ (EngineError::OverBudget { .. } | EngineError::ResultTooLarge { .. }) => {
            spec_error_at(e.to_string(), None)
        }
        other => RunError::new_err(other.to_string()),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("PhaseflowError", py.get_type::<PhaseflowError>())?;
    m.add("SystemError", py.get_type::<SystemError>())?;
    m.add("SpecError", py.get_type::<SpecError>())?;
    m.add("NoAdapterError", py.get_type::<NoAdapterError>())?;
    m.add("CancelledError", py.get_type::<CancelledError>())?;
    m.add("RunError", py.get_type::<RunError>())?;
    Ok(())
}

pub fn cancelled(message: &str) -> PyErr {
    CancelledError::new_err(message.to_string())
}

pub fn run_error(message: String) -> PyErr {
    RunError::new_err(message)
}
