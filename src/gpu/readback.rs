//! Moving bytes back from the device: map a MAP_READ buffer, look at it, unmap.

use super::context::{GpuContext, GpuError};

/// Maps `buffer[..size]` for reading, waits for the GPU, and hands the bytes to `f`. The
/// mapping is released before returning, whatever `f` does.
pub fn with_mapped<R>(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    size: u64,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, GpuError> {
    let slice = buffer.slice(..size);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    rx.recv()
        .map_err(|e| GpuError::Readback(e.to_string()))?
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    let result = {
        let view = slice
            .get_mapped_range()
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        f(&view)
    };
    buffer.unmap();
    ctx.check_errors()?;
    Ok(result)
}

/// The first `bytes` of a storage buffer (one copy to a staging buffer and one map).
pub fn read_bytes(ctx: &GpuContext, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>, GpuError> {
    let staging = super::layout::buffer(
        ctx,
        "read",
        bytes,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    );
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
    ctx.queue.submit([enc.finish()]);
    with_mapped(ctx, &staging, bytes, |b| b.to_vec())
}
