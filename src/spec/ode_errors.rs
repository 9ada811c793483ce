//! The ode library's own checks (`Control::validate`, `AdaptiveProblem::check`,
//! `TimeGrid::from_span`, `SaveAt::grid`) say what is wrong in the library's words; a spec
//! names the key that holds the bad value. These turn the library's errors into field
//! errors at the run spec's keys, so every front-end can name them its own way.

use super::error::FieldError;
use crate::ode::{ControlError, ProblemError};

/// The run-spec key a `Control` check names (`dt (the initial step)` is `dt`).
fn control_key(what: &str) -> &str {
    what.split(' ').next().unwrap_or(what)
}

/// A failed adaptive check as an error at the key that holds the value.
pub fn control_error(e: ControlError) -> FieldError {
    match e {
        ControlError::EmptySpan { t0, t1 } => FieldError::new(
            "tspan",
            format!("must go forward: its start {t0} is not before its end {t1}"),
        ),
        ControlError::NonFiniteSpan { t0, t1 } => FieldError::new(
            "tspan",
            format!("must hold finite times (got {t0} and {t1})"),
        ),
        ControlError::NotPositive { what, value } => FieldError::new(
            control_key(what),
            format!("must be a positive, finite number (got {value})"),
        ),
        ControlError::Negative { what, value } => FieldError::new(
            control_key(what),
            format!("must be a non-negative, finite number (got {value})"),
        ),
        ControlError::WrongLength { what, got, dim } => FieldError::new(
            control_key(what),
            format!("has {got} values but the system has {dim} states"),
        ),
        ControlError::OutOfRange {
            what,
            lo,
            hi,
            value,
        } => FieldError::new(
            control_key(what),
            format!("must be above {lo} and at most {hi} (got {value})"),
        ),
        ControlError::SaveOutsideSpan { time, t0, t1 } => FieldError::new(
            "saveat",
            format!(
                "holds time {time}, outside the span from {t0} to {t1}; save times must lie in the span"
            ),
        ),
        ControlError::SavesNotIncreasing {
            index,
            time,
            previous,
        } => FieldError::at("saveat")
            .text("save times must increase, but ")
            .key("saveat")
            .text(format!("[{index}] = {time} is not after "))
            .key("saveat")
            .text(format!("[{}] = {previous}", index - 1)),
        ControlError::BadSaveStep(step) => FieldError::new(
            "saveat",
            format!("needs a positive step between save times (got {step})"),
        ),
        ControlError::NotAdaptive(name) => FieldError::new(
            "solver",
            format!(
                "'{name}' is a fixed-step solver; adaptive runs need bs3, dp5, tsit5 or dop853"
            ),
        ),
        ControlError::ZeroMaxSteps => FieldError::new("max_steps", "must be at least 1"),
    }
}

/// A failed fixed-step check as an error at the key that holds the value.
pub fn grid_error(e: ProblemError) -> FieldError {
    match e {
        ProblemError::EmptySpan { t0, t1 } => FieldError::new(
            "tspan",
            format!("must go forward: its start {t0} is not before its end {t1}"),
        ),
        ProblemError::NonFiniteSpan { t0, t1 } => FieldError::new(
            "tspan",
            format!("must hold finite times (got {t0} and {t1})"),
        ),
        ProblemError::BadDt(dt) => FieldError::new(
            "dt",
            format!("must be a positive, finite number (got {dt})"),
        ),
        ProblemError::NotWholeSteps {
            span,
            dt,
            steps,
            suggestion,
        } => FieldError::new(
            "dt",
            format!(
                "{dt} does not divide the span t1 - t0 = {span} ({steps:.4} steps); choose a \
                 step that does, e.g. {suggestion}"
            ),
        ),
        ProblemError::TooManySteps { steps, max } => FieldError::new(
            "dt",
            format!(
                "gives {steps} steps, more than the {max} steps one run can take; use a larger \
                 step or a shorter span"
            ),
        ),
        ProblemError::ZeroSaveEvery => FieldError::new("save_every", "must be at least 1"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_checks_name_the_spec_key() {
        let e = control_error(ControlError::NotPositive {
            what: "dt (the initial step)",
            value: -1.0,
        });
        assert_eq!(e.field, "dt");
        let e = control_error(ControlError::SavesNotIncreasing {
            index: 2,
            time: 1.0,
            previous: 2.0,
        });
        assert_eq!(
            e.to_string(),
            "save times must increase, but saveat[2] = 1 is not after saveat[1] = 2"
        );
        assert_eq!(grid_error(ProblemError::BadDt(0.0)).field, "dt");
    }
}
