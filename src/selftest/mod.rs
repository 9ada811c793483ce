//! `phaseflow selftest`: every kernel family on the chosen adapter against its CPU twin on
//! small random problems, f32 and f64 where the adapter has f64, with the worst deviation
//! against its bound. What a user runs first on new hardware, and what a bug report attaches:
//! the report also records the adapter, its driver, its subgroup sizes and its limits.
//!
//! The bounds are the ones the test suite states and justifies for each family; a check
//! fails when a value is further from the twin than its bound, when a trajectory's status
//! differs from the twin's, or when the device or the host refuses the run.

pub mod check;
mod estimate;
mod math;
mod nn;
mod ode;

pub use check::{Check, Verdict};

use crate::gpu::{AdapterSummary, GpuContext};
use crate::nn::mlp::fused::LaneSharing;
use crate::precision::Precision;
use serde::Serialize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

/// The families in the order they run, as `--only` names them.
pub const FAMILIES: [&str; 10] = [
    "fixed",
    "adaptive",
    "stiff",
    "sde",
    "lyapunov",
    "estimate-fold",
    "math-f64",
    "mlp",
    "adam",
    "deeponet",
];

#[derive(Debug, Clone)]
pub struct Options {
    /// Seeds every random problem; the same seed gives the same problems anywhere.
    pub seed: u64,
    /// The families to run (all when empty).
    pub only: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 1,
            only: Vec::new(),
        }
    }
}

/// What ran where and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub phaseflow: &'static str,
    pub adapter: AdapterSummary,
    pub subgroup_min_size: u32,
    pub subgroup_max_size: u32,
    /// How the fused network kernels share loads between lanes here: "subgroup"
    /// (subgroups of at least 8 lanes) or "loads" (none shared; `PHASEFLOW_SUBGROUPS=off`
    /// or an adapter without subgroups).
    pub lane_sharing: &'static str,
    pub seed: u64,
    pub checks: Vec<Check>,
    pub seconds: f64,
}

impl Report {
    pub fn count(&self, verdict: Verdict) -> usize {
        self.checks.iter().filter(|c| c.verdict == verdict).count()
    }

    pub fn passed(&self) -> bool {
        self.count(Verdict::Fail) == 0
    }
}

/// Why `run` could not start.
#[derive(Debug, thiserror::Error)]
#[error("unknown self-test family '{0}' (expected one of: {families})", families = FAMILIES.join(", "))]
pub struct UnknownFamily(pub String);

type Family = fn(&GpuContext, Precision, u64) -> Result<Vec<Check>, String>;

/// The precisions a family runs in and how.
fn family(name: &str) -> (Family, &'static [Precision]) {
    const BOTH: &[Precision] = &[Precision::F32, Precision::F64];
    const F32: &[Precision] = &[Precision::F32];
    const F64: &[Precision] = &[Precision::F64];
    match name {
        "fixed" => (ode::fixed, BOTH),
        "adaptive" => (ode::adaptive, BOTH),
        "stiff" => (ode::stiff, BOTH),
        "sde" => (ode::sde, BOTH),
        "lyapunov" => (ode::lyapunov, BOTH),
        "estimate-fold" => (estimate::fold, BOTH),
        "math-f64" => (|ctx, _, seed| math::math_f64(ctx, seed), F64),
        "mlp" => (|ctx, _, seed| nn::mlp(ctx, seed), F32),
        "adam" => (|ctx, _, seed| nn::adam(ctx, seed), F32),
        "deeponet" => (|ctx, _, seed| nn::deeponet(ctx, seed), F32),
        _ => unreachable!("FAMILIES lists every family"),
    }
}

/// Refuses a family name `run` does not know, before anything is opened or printed.
pub fn check_families(only: &[String]) -> Result<(), UnknownFamily> {
    match only.iter().find(|f| !FAMILIES.contains(&f.as_str())) {
        Some(bad) => Err(UnknownFamily(bad.clone())),
        None => Ok(()),
    }
}

/// Runs the chosen families, calling `each` with every check as it completes (for a live
/// table). A panic or a device error inside a family is recorded as a failed check, so the
/// report is always complete.
pub fn run(
    ctx: &GpuContext,
    options: &Options,
    mut each: impl FnMut(&Check),
) -> Result<Report, UnknownFamily> {
    check_families(&options.only)?;
    let start = Instant::now();
    let info = ctx.adapter.get_info();
    let mut checks = Vec::new();
    for name in FAMILIES {
        if !options.only.is_empty() && !options.only.iter().any(|f| f == name) {
            continue;
        }
        let (run_family, precisions) = family(name);
        for &precision in precisions {
            let label = format!("{name} ({})", precision.name());
            let found = if precision == Precision::F64 && !ctx.has_f64() {
                vec![Check::skipped(
                    name,
                    "all".into(),
                    precision,
                    "the adapter has no f64",
                )]
            } else {
                guarded(name, &label, precision, || {
                    run_family(ctx, precision, options.seed)
                })
            };
            let found = with_device_errors(ctx, name, &label, precision, found);
            for c in &found {
                each(c);
            }
            checks.extend(found);
        }
    }
    Ok(Report {
        phaseflow: env!("CARGO_PKG_VERSION"),
        adapter: ctx.summary.clone(),
        subgroup_min_size: info.subgroup_min_size,
        subgroup_max_size: info.subgroup_max_size,
        lane_sharing: LaneSharing::for_context(ctx).name(),
        seed: options.seed,
        checks,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// A family's checks, or one failed check that says why it stopped (a refused set-up or a
/// panic, which a self-test must report rather than die of).
fn guarded(
    name: &'static str,
    label: &str,
    precision: Precision,
    f: impl FnOnce() -> Result<Vec<Check>, String>,
) -> Vec<Check> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(checks)) => checks,
        Ok(Err(why)) => vec![Check::failed(name, label.into(), precision, why)],
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into());
            vec![Check::failed(
                name,
                label.into(),
                precision,
                format!("panicked: {why}"),
            )]
        }
    }
}

/// Validation or out-of-memory errors the device reported while the family ran fail it.
fn with_device_errors(
    ctx: &GpuContext,
    name: &'static str,
    label: &str,
    precision: Precision,
    mut checks: Vec<Check>,
) -> Vec<Check> {
    if let Err(e) = ctx.check_errors() {
        checks.push(Check::failed(name, label.into(), precision, e.to_string()));
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_or_refused_family_is_one_failed_check_not_a_crash() {
        let panicked = guarded("fixed", "fixed (f32)", Precision::F32, || panic!("boom"));
        assert_eq!(panicked.len(), 1);
        assert_eq!(panicked[0].verdict, Verdict::Fail);
        assert_eq!(panicked[0].note, "panicked: boom");
        let refused = guarded("sde", "sde (f64)", Precision::F64, || {
            Err("no system".into())
        });
        assert_eq!(refused[0].verdict, Verdict::Fail);
        assert_eq!(refused[0].note, "no system");
    }

    #[test]
    fn unknown_families_are_refused_by_name() {
        assert!(check_families(&["fixed".into(), "math-f64".into()]).is_ok());
        let e = check_families(&["fixed".into(), "rk4".into()]).unwrap_err();
        assert!(e.to_string().contains("'rk4'"), "{e}");
        assert!(e.to_string().contains("deeponet"), "{e}");
    }
}
