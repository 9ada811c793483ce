//! The estimation fold (`ode::estimate::fold`) against its twin: random saves and
//! observations of 150 trajectories (three states, three fitted quantities, missing values,
//! a state of weight 0, unobserved slots) folded in batches of five slots, into every
//! trajectory's normal equations and into groups of 64. The fold computes in f64 whatever
//! the saves' precision, so it needs f64 on the adapter (without it the host folds).

use super::check::Check;
use crate::gpu::GpuContext;
use crate::ode::estimate::fold::FoldOutput;
use crate::ode::estimate::fold::direct::{fold_saves, random_case, worst_deviation};
use crate::precision::Precision;

/// Each term within 1e-13 of its magnitude (the sum of the absolute values it adds): at
/// most about 70 roundings of 2⁻⁵³ separate the device from the twin (see
/// tests/estimate_fold.rs).
const BOUND: f64 = 1e-13;

pub fn fold(ctx: &GpuContext, precision: Precision, seed: u64) -> Result<Vec<Check>, String> {
    const FAMILY: &str = "estimate-fold";
    if !ctx.has_f64() {
        return Ok(vec![Check::skipped(
            FAMILY,
            "all".into(),
            precision,
            "the fold adds in f64, which the adapter lacks (the host folds instead)",
        )]);
    }
    let n = 150;
    let (data, saves) = random_case(seed, (n, 12), (3, 3), precision);
    let mut checks = Vec::new();
    for (output, what) in [
        (FoldOutput::PerTrajectory, "per trajectory"),
        (FoldOutput::Groups, "groups of 64"),
    ] {
        let case = format!("3 states x 3 fitted, {what}");
        checks.push(
            match fold_saves(ctx, data.clone(), output, precision, &saves, (n, 5)) {
                Ok((out, stride)) => {
                    let worst = worst_deviation(&data, &saves, n, output, (&out, stride));
                    Check::measured(
                        FAMILY,
                        case,
                        precision,
                        (worst, BOUND, "rel. to term"),
                        String::new(),
                    )
                }
                Err(e) => Check::failed(FAMILY, case, precision, e.to_string()),
            },
        );
    }
    Ok(checks)
}
