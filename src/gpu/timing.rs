//! GPU time from timestamp queries: a begin and an end timestamp around each compute pass,
//! resolved on the GPU and read back with the results, so timing adds no extra round trip.

use super::context::{GpuContext, GpuError};
use super::readback::with_mapped;
use std::time::Duration;

pub struct PassTimer {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    readback: wgpu::Buffer,
    passes: u32,
    period_ns: f64,
}

impl PassTimer {
    /// A timer for up to `passes` passes per submission, or `None` where the adapter has
    /// no timestamp queries.
    pub fn new(ctx: &GpuContext, passes: u32) -> Option<PassTimer> {
        if !ctx.has_timestamps() {
            return None;
        }
        let count = 2 * passes;
        let size = 8 * count as u64;
        let buffer = |label, usage| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        Some(PassTimer {
            queries: ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("pass timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            }),
            resolved: buffer(
                "timestamps resolved",
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            ),
            readback: buffer(
                "timestamps readback",
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
            passes,
            period_ns: ctx.queue.get_timestamp_period() as f64,
        })
    }

    /// Timestamp writes for pass `i` of the current submission.
    pub fn writes(&self, i: u32) -> wgpu::ComputePassTimestampWrites<'_> {
        assert!(
            i < self.passes,
            "pass {i} beyond the timer's {} passes",
            self.passes
        );
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(2 * i),
            end_of_pass_write_index: Some(2 * i + 1),
        }
    }

    /// Records the copy of the first `passes` passes' timestamps to the readback buffer.
    pub fn resolve(&self, encoder: &mut wgpu::CommandEncoder, passes: u32) {
        let count = 2 * passes;
        encoder.resolve_query_set(&self.queries, 0..count, &self.resolved, 0);
        encoder.copy_buffer_to_buffer(&self.resolved, 0, &self.readback, 0, 8 * count as u64);
    }

    /// Records the copy of the first `passes` passes' timestamps into `dst` (a readback
    /// ring's staging buffer of at least 16 bytes per pass).
    pub fn resolve_into(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        passes: u32,
        dst: &wgpu::Buffer,
    ) {
        let count = 2 * passes;
        encoder.resolve_query_set(&self.queries, 0..count, &self.resolved, 0);
        encoder.copy_buffer_to_buffer(&self.resolved, 0, dst, 0, 8 * count as u64);
    }

    /// Total time of the passes whose resolved timestamps are `bytes`.
    pub fn duration(&self, bytes: &[u8]) -> Duration {
        let ticks: &[u64] = bytemuck::cast_slice(bytes);
        let total: u64 = ticks.chunks(2).map(|p| p[1].saturating_sub(p[0])).sum();
        Duration::from_nanos((total as f64 * self.period_ns) as u64)
    }

    /// GPU time of each of the first `passes` passes of the last submission.
    pub fn read_each(&self, ctx: &GpuContext, passes: u32) -> Result<Vec<Duration>, GpuError> {
        with_mapped(ctx, &self.readback, 16 * passes as u64, |bytes| {
            let ticks: &[u64] = bytemuck::cast_slice(bytes);
            ticks
                .chunks(2)
                .map(|p| {
                    Duration::from_nanos((p[1].saturating_sub(p[0]) as f64 * self.period_ns) as u64)
                })
                .collect()
        })
    }

    /// Total GPU time of the first `passes` passes of the last submission.
    pub fn read(&self, ctx: &GpuContext, passes: u32) -> Result<Duration, GpuError> {
        with_mapped(ctx, &self.readback, 16 * passes as u64, |bytes| {
            self.duration(bytes)
        })
    }
}
