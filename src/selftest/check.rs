//! One self-test check and its verdict: the worst deviation of a kernel from its CPU twin,
//! measured in the unit its bound is stated in.

use crate::precision::Precision;
use serde::Serialize;

/// Pass, fail or skip, with the numbers behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// Not run on this adapter (no f64, no subgroups), with the reason in `note`.
    Skip,
}

/// One kernel family on one small random problem in one precision.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The kernel family: `fixed`, `adaptive`, `stiff`, `sde`, `lyapunov`,
    /// `estimate-fold`, `math-f64`, `mlp`, `adam`, `deeponet`.
    pub family: &'static str,
    /// What ran: the solver or function and the system or network.
    pub case: String,
    pub precision: Precision,
    pub verdict: Verdict,
    /// The worst deviation from the twin over every value compared (NaN when the run
    /// failed before a comparison).
    pub worst: f64,
    /// The largest deviation that passes, in the same unit.
    pub bound: f64,
    /// What `worst` and `bound` measure (`rel. to state scale`, `ulp`, `tolerances`, …).
    pub unit: &'static str,
    /// Why it failed or was skipped (a mismatched status, an error from the device).
    pub note: String,
}

impl Check {
    /// A comparison's verdict: pass when `worst` is within `bound` and `note` is empty (a
    /// note records a mismatch that is not a number, such as a status).
    pub fn measured(
        family: &'static str,
        case: String,
        precision: Precision,
        (worst, bound, unit): (f64, f64, &'static str),
        note: String,
    ) -> Check {
        let verdict = if worst <= bound && note.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        Check {
            family,
            case,
            precision,
            verdict,
            worst,
            bound,
            unit,
            note,
        }
    }

    /// A check that could not run to a comparison: the device or the host refused it.
    pub fn failed(family: &'static str, case: String, precision: Precision, why: String) -> Check {
        Check {
            family,
            case,
            precision,
            verdict: Verdict::Fail,
            worst: f64::NAN,
            bound: f64::NAN,
            unit: "",
            note: why,
        }
    }

    pub fn skipped(family: &'static str, case: String, precision: Precision, why: &str) -> Check {
        Check {
            family,
            case,
            precision,
            verdict: Verdict::Skip,
            worst: f64::NAN,
            bound: f64::NAN,
            unit: "",
            note: why.into(),
        }
    }
}

/// |got − want| / scale, where NaN matches only NaN (a NaN on one side only is infinitely
/// far: a trajectory that failed on one side and not on the other).
pub fn deviation(got: f64, want: f64, scale: f64) -> f64 {
    match (got.is_nan(), want.is_nan()) {
        (true, true) => 0.0,
        (false, false) => (got - want).abs() / scale,
        _ => f64::INFINITY,
    }
}

/// The largest deviation over a block of values, relative to the largest finite magnitude of
/// `want` (at least 1): a component passing through zero is held to the size of its state,
/// not to zero. Blocks of different lengths are infinitely far apart.
pub fn worst_relative(got: &[f64], want: &[f64]) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    let scale = want
        .iter()
        .filter(|v| v.is_finite())
        .map(|v| v.abs())
        .fold(1.0, f64::max);
    got.iter()
        .zip(want)
        .map(|(&g, &w)| deviation(g, w, scale))
        .fold(0.0, f64::max)
}

/// The largest deviation over a tensor, relative to the tensor's largest |want|.
pub fn worst_tensor(got: &[f64], want: &[f64]) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    let scale = want.iter().map(|v| v.abs()).fold(1e-30, f64::max);
    got.iter()
        .zip(want)
        .map(|(&g, &w)| deviation(g, w, scale))
        .fold(0.0, f64::max)
}

/// Precision as the device sees its inputs: f32 rounds them.
pub fn round(precision: Precision, v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(|x| precision.round(x)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(worst: f64, bound: f64, note: &str) -> Verdict {
        Check::measured(
            "fixed",
            "x".into(),
            Precision::F32,
            (worst, bound, "u"),
            note.into(),
        )
        .verdict
    }

    #[test]
    fn a_check_passes_only_within_its_bound_and_without_a_note() {
        assert_eq!(verdict(1e-7, 1e-4, ""), Verdict::Pass);
        assert_eq!(verdict(1e-4, 1e-4, ""), Verdict::Pass);
        assert_eq!(verdict(2e-4, 1e-4, ""), Verdict::Fail);
        assert_eq!(verdict(f64::NAN, 1e-4, ""), Verdict::Fail);
        assert_eq!(verdict(f64::INFINITY, 1e-4, ""), Verdict::Fail);
        assert_eq!(verdict(0.0, 1e-4, "trajectory 3: status"), Verdict::Fail);
    }

    #[test]
    fn deviations_are_relative_to_the_scale_and_nan_only_matches_nan() {
        // Scale max(1, |want|): 0.5 off a state of size 10 is 0.05.
        assert_eq!(worst_relative(&[10.5, 0.0], &[10.0, 0.0]), 0.05);
        // Small states are held to 1, not to themselves.
        assert_eq!(worst_relative(&[0.002], &[0.001]), 0.001);
        assert_eq!(worst_relative(&[f64::NAN], &[f64::NAN]), 0.0);
        assert_eq!(worst_relative(&[f64::NAN], &[1.0]), f64::INFINITY);
        assert_eq!(worst_relative(&[1.0], &[f64::NAN]), f64::INFINITY);
        assert_eq!(worst_tensor(&[1.0, 2.0], &[1.0, 4.0]), 0.5);
        assert_eq!(worst_tensor(&[f64::NAN], &[1.0]), f64::INFINITY);
        assert_eq!(worst_tensor(&[1.0], &[1.0, 2.0]), f64::INFINITY);
        assert_eq!(worst_relative(&[1.0], &[1.0, 2.0]), f64::INFINITY);
    }
}
