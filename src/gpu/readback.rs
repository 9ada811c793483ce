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
