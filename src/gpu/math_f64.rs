//! Host side of the f64 math library (`shaders/common/math_f64.wgsl`): evaluates library
//! calls on the device, so tests can hold each function to Rust's std (its CPU twin).

use super::context::{GpuContext, GpuError};
use super::layout::{Binding, bind_group, bind_group_layout, buffer, pipeline_layout};
use super::readback::with_mapped;
use super::shader::compose;
use wgpu::util::DeviceExt;

pub const PROBE: &str = "common/math_f64_probe.wgsl";

/// The probe kernel for one WGSL call expression over `a.x` (and `a.y`).
pub fn probe_wgsl(call: &str) -> Result<String, super::shader::ShaderError> {
    compose(PROBE, &[("CALL", call)])
}

/// Evaluates `call` (e.g. `m64_sin(a.x)`, `m64_pow(a.x, a.y)`) for every argument pair.
pub fn evaluate(ctx: &GpuContext, call: &str, args: &[(f64, f64)]) -> Result<Vec<f64>, GpuError> {
    if !ctx.has_f64() {
        return Err(GpuError::NoF64(ctx.summary.name.clone()));
    }
    let wgsl = probe_wgsl(call)?;
    let dev = &ctx.device;
    // args[0] is the runtime 1.0 the library's compiler barrier needs (m64_hide).
    let flat: Vec<f64> = std::iter::once((1.0, 1.0))
        .chain(args.iter().copied())
        .flat_map(|(x, y)| [x, y])
        .collect();
    let input = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("math args"),
        contents: bytemuck::cast_slice(&flat),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let bytes = (args.len() * 8) as u64;
    use wgpu::BufferUsages as U;
    let output = buffer(ctx, "math results", bytes, U::STORAGE | U::COPY_SRC);
    let staging = buffer(ctx, "math staging", bytes, U::MAP_READ | U::COPY_DST);
    let storage = |read_only| Binding::Storage { read_only };
    let layout = bind_group_layout(ctx, "math probe", &[storage(true), storage(false)]);
    let pipeline = ctx.pipeline(
        "math_f64_probe",
        &wgsl,
        &pipeline_layout(ctx, &layout),
        true,
    )?;
    // No uniform here: binding 0 is bound whole like the rest.
    let bind_group = bind_group(ctx, "math probe", &layout, 0, &[&input, &output]);
    let groups = args.len().div_ceil(64) as u32;
    let (gx, gy) = (groups.min(65535), groups.div_ceil(65535));
    let mut enc = dev.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(gx, gy, 1);
    }
    enc.copy_buffer_to_buffer(&output, 0, &staging, 0, bytes);
    ctx.queue.submit([enc.finish()]);
    with_mapped(ctx, &staging, bytes, |b| {
        bytemuck::cast_slice::<u8, f64>(b).to_vec()
    })
}
