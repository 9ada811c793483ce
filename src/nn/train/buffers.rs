//! Device buffers every trainer makes and reads: f32 storage, zeroed storage, small
//! uniforms, read-backs, and the 1-D dispatch grid.

use crate::gpu::layout::buffer;
use crate::gpu::readback::read_bytes;
use crate::gpu::{GpuContext, GpuError};
use wgpu::util::DeviceExt;

/// A 1-D dispatch of 64-wide workgroups over `len` items.
pub fn line_grid(len: usize) -> (u32, u32) {
    let groups = len.div_ceil(64).max(1) as u32;
    (groups.min(65535), groups.div_ceil(65535))
}

pub fn storage(ctx: &GpuContext, label: &str, values: &[f32]) -> wgpu::Buffer {
    let data: &[f32] = if values.is_empty() { &[0.0] } else { values };
    params_buffer(ctx, label, data, false)
}

/// A parameter vector: storage, and uniform as well where kernels read it from uniform
/// windows (`FusedLayout::uniform_params`).
pub fn params_buffer(ctx: &GpuContext, label: &str, values: &[f32], uniform: bool) -> wgpu::Buffer {
    use wgpu::BufferUsages as U;
    let extra = if uniform { U::UNIFORM } else { U::empty() };
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(values),
            usage: U::STORAGE | U::COPY_DST | U::COPY_SRC | extra,
        })
}

pub fn zeros(ctx: &GpuContext, label: &str, len: usize) -> wgpu::Buffer {
    use wgpu::BufferUsages as U;
    buffer(
        ctx,
        label,
        4 * len as u64,
        U::STORAGE | U::COPY_DST | U::COPY_SRC,
    )
}

pub fn uniform(ctx: &GpuContext, words: [u32; 4]) -> wgpu::Buffer {
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("dims"),
            contents: bytemuck::cast_slice(&words),
            usage: wgpu::BufferUsages::UNIFORM,
        })
}

/// The first `len` f32 values of a storage buffer (one copy and one map).
pub fn read_f32(ctx: &GpuContext, src: &wgpu::Buffer, len: usize) -> Result<Vec<f32>, GpuError> {
    let bytes = read_bytes(ctx, src, 4 * len as u64)?;
    Ok(bytemuck::cast_slice(&bytes).to_vec())
}

/// The same, as f64.
pub fn read_f64(ctx: &GpuContext, src: &wgpu::Buffer, len: usize) -> Result<Vec<f64>, GpuError> {
    Ok(read_f32(ctx, src, len)?
        .into_iter()
        .map(f64::from)
        .collect())
}

pub fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}
