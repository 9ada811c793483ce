//! Device-side steps of a run that are not a batch: the adaptor check, the warm-up
//! dispatch of the compile phase, and waiting for a submission.

use crate::gpu::{GpuContext, GpuError};
use crate::ode::error::SimError;
use crate::precision::Precision;

/// f64 runs need an adapter that has f64 (and i64) shaders.
pub fn precision_available(ctx: &GpuContext, precision: Precision) -> Result<(), SimError> {
    if precision == Precision::F64 && !ctx.has_f64() {
        return Err(GpuError::NoF64(ctx.summary.name.clone()).into());
    }
    Ok(())
}

/// Drivers may compile a pipeline only when it first runs (lavapipe does, and for a large
/// system that takes minutes): one tiny dispatch that does no work (`uniform` says how)
/// makes it happen now, in the compile phase, instead of inside the first timed pass where
/// it would count as GPU time.
pub fn warm_up(
    ctx: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    bind_group: &wgpu::BindGroup,
    uniforms: &wgpu::Buffer,
    uniform: &[u8],
) -> Result<(), SimError> {
    ctx.queue.write_buffer(uniforms, 0, uniform);
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("warm-up"),
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind_group, &[0]);
        pass.dispatch_workgroups(1, 1, 1);
    }
    let index = ctx.queue.submit([enc.finish()]);
    wait_for(ctx, Some(index))?;
    ctx.check_errors()?;
    Ok(())
}

pub fn wait_for(
    ctx: &GpuContext,
    submission: Option<wgpu::SubmissionIndex>,
) -> Result<(), SimError> {
    if let Some(index) = submission {
        ctx.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(index),
                timeout: None,
            })
            .map_err(|e| GpuError::Readback(e.to_string()))?;
    }
    Ok(())
}
