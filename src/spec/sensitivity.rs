//! The `sensitivities` and `sensitivity_error` keys of a run: the problem on the system
//! augmented with S = ∂u/∂θ (`ode::sensitivity`), checked before any work.

use super::error::{FieldError, SpecError};
use super::run::{MAX_STATES, RunSpec};
use crate::ode::Problem;
use crate::ode::sensitivity::{
    ErrorControl, Sensitivities, SensitivityError, SensitivityRun, augment, resolve,
};

/// The run with sensitivities `spec` asks for on `problem` (built by `build_problem`), or
/// `None` when it asks for none.
pub fn sensitivity_run(
    spec: &RunSpec,
    problem: &Problem,
) -> Result<Option<SensitivityRun>, SpecError> {
    let Some(names) = &spec.sensitivities else {
        if spec.sensitivity_error.is_some() {
            return Err(
                FieldError::new("sensitivity_error", "applies to sensitivities; give ")
                    .key("sensitivities")
                    .text(" too")
                    .into(),
            );
        }
        return Ok(None);
    };
    let error_control = match spec.sensitivity_error.as_deref() {
        None => ErrorControl::Include,
        Some(name) => ErrorControl::from_name(name).ok_or_else(|| {
            FieldError::new(
                "sensitivity_error",
                format!("is '{name}'; it is include or exclude"),
            )
        })?,
    };
    if let Some(outputs) = &spec.outputs
        && !outputs.contains(&super::run::Output::States)
    {
        // sensitivities.npy is written beside states.npy; without it they would be
        // computed and dropped.
        return Err(FieldError::new(
            "sensitivities",
            "are written beside the states (sensitivities.npy): add states to ",
        )
        .key("outputs")
        .into());
    }
    let system = problem.system();
    let targets = resolve(system, names).map_err(|e| FieldError::new("sensitivities", e))?;
    let dim = system.dim();
    let total = dim * (1 + targets.len());
    if total > MAX_STATES {
        return Err(FieldError::new(
            "sensitivities",
            format!(
                "ask for {} sensitivities of {dim} states: {total} equations in all, above the \
                 {MAX_STATES} a kernel may have; ask for fewer",
                targets.len()
            ),
        )
        .into());
    }
    let sens = Sensitivities {
        targets,
        error_control,
    };
    match augment(problem, &sens) {
        Ok(run) => Ok(Some(run)),
        Err(SensitivityError::ExcludeWithStiff) => Err(FieldError::new(
            "sensitivity_error",
            "is \"exclude\", which is for the explicit adaptive solvers: the stiff solvers \
             control the error of every component (use \"include\")",
        )
        .into()),
        Err(SensitivityError::Unsupported(m)) => Err(FieldError::new("sensitivities", m).into()),
        Err(e) => Err(FieldError::new("sensitivities", e).into()),
    }
}
