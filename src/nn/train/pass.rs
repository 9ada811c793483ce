//! Recorded dispatches: a `Pass` (pipeline, bind group, grid) is made once and recorded
//! into every step's command buffer; `submit` runs a list of them in one compute pass and
//! `profile_passes` times each one.

use crate::gpu::layout::{Binding, bind_group_layout, pipeline_layout};
use crate::gpu::timing::PassTimer;
use crate::gpu::{GpuContext, GpuError};
use std::sync::Arc;

pub type Pipeline = Arc<wgpu::ComputePipeline>;

/// One recorded dispatch.
pub struct Pass {
    pub label: &'static str,
    pub pipeline: Pipeline,
    pub group: wgpu::BindGroup,
    pub size: (u32, u32, u32),
}

impl Pass {
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.group, &[]);
        pass.dispatch_workgroups(self.size.0, self.size.1, self.size.2);
    }

    /// Records this pass with only its first `x` workgroups along x.
    pub fn record_first(&self, pass: &mut wgpu::ComputePass<'_>, x: u32) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.group, &[]);
        pass.dispatch_workgroups(x.min(self.size.0), self.size.1, self.size.2);
    }
}

/// Records `passes` into one compute pass and submits it.
pub fn submit<'a>(ctx: &GpuContext, passes: impl IntoIterator<Item = &'a Pass>) {
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        for p in passes {
            p.record(&mut pass);
        }
    }
    ctx.queue.submit([enc.finish()]);
}

/// Runs `passes` once, each in its own timed compute pass (`record` records pass i), and
/// gives each one's GPU time, or `None` where the adapter has no timestamp queries.
pub fn profile_passes(
    ctx: &GpuContext,
    passes: &[&Pass],
    record: impl Fn(usize, &Pass, &mut wgpu::ComputePass<'_>),
) -> Result<Option<Vec<(&'static str, std::time::Duration)>>, GpuError> {
    let count = passes.len() as u32;
    let Some(timer) = PassTimer::new(ctx, count) else {
        return Ok(None);
    };
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    for (i, p) in passes.iter().enumerate() {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(p.label),
            timestamp_writes: Some(timer.writes(i as u32)),
        });
        record(i, p, &mut pass);
    }
    timer.resolve(&mut enc, count);
    ctx.queue.submit([enc.finish()]);
    let each = timer.read_each(ctx, count)?;
    Ok(Some(passes.iter().map(|p| p.label).zip(each).collect()))
}

pub fn storage_rw() -> Binding {
    Binding::Storage { read_only: false }
}

pub fn storage_ro() -> Binding {
    Binding::Storage { read_only: true }
}

/// A pipeline and its bind-group layout.
pub fn pipe(
    ctx: &GpuContext,
    label: &str,
    wgsl: &str,
    bindings: &[Binding],
) -> Result<(Pipeline, wgpu::BindGroupLayout), GpuError> {
    let l = bind_group_layout(ctx, label, bindings);
    let p = ctx.pipeline(label, wgsl, &pipeline_layout(ctx, &l), false)?;
    Ok((p, l))
}
