//! What every scenario family measures with: the device and options of a bench run,
//! timing over repetitions, and the self-checks against a CPU twin that gate a report.

use crate::cli::error::CliError;
use crate::gpu::GpuContext;
use std::time::Instant;

/// What a scenario's runs share: the device and the options.
pub(super) struct Bench<'a> {
    pub(super) ctx: &'a GpuContext,
    pub(super) reps: usize,
    pub(super) compare: bool,
}

pub(super) fn sync(ctx: &GpuContext) -> Result<(), CliError> {
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| CliError::Runtime(format!("waiting for the GPU failed: {e}")))?;
    Ok(())
}

fn rel_diff(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-30)
}

/// Seconds per call of `step`, over `reps` calls and the device work they queued.
pub(super) fn time(ctx: &GpuContext, reps: usize, mut step: impl FnMut()) -> Result<f64, CliError> {
    let start = Instant::now();
    for _ in 0..reps {
        step();
    }
    sync(ctx)?;
    Ok(start.elapsed().as_secs_f64() / reps as f64)
}

/// Outputs within 1e-4 of the twin's largest magnitude (`got` may run longer than `want`):
/// the worst difference relative to that scale, as the report's check.
pub(super) fn check_outputs(got: &[f64], want: &[f64]) -> Result<f64, CliError> {
    let scale = want.iter().map(|v| v.abs()).fold(1e-30, f64::max);
    let worst = want
        .iter()
        .zip(got)
        .map(|(w, g)| (w - g).abs())
        .fold(0.0, f64::max)
        / scale;
    if worst > 1e-4 {
        return Err(CliError::Runtime(format!(
            "self-check failed: outputs differ from the CPU twin by {worst:.2e}"
        )));
    }
    Ok(worst)
}

/// A loss within 1e-4 of the twin's (f32 sums over the batch), as the report's check.
pub(super) fn check_loss(got: f64, want: f64) -> Result<String, CliError> {
    let diff = rel_diff(got, want);
    if diff > 1e-4 {
        return Err(CliError::Runtime(format!(
            "self-check failed: device loss {got} vs CPU twin {want}"
        )));
    }
    Ok(format!("loss {got:.6e} = twin ± {diff:.1e}"))
}

/// The median of some timings (sorted in place).
pub(super) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
