//! A reduction of a run's saves that the device does itself, after each batch, instead of
//! reading the saves back: the runner records it behind the batch's last dispatches, reads
//! back only its output after each chunk's last batch, and hands that to the sink
//! (`Sink::staged`). Estimation uses it to fold the saves at the observation times into
//! normal equations, so that a fit's readback is a few numbers per trajectory, or per
//! group of trajectories, instead of every state and sensitivity at every observation.
//!
//! A sink offers a stage (`Sink::device_stage`); the stage owns its kernel, buffers and
//! the data it reads beside the saves, and the sink decodes what the stage wrote.

use super::device::Precision;
use super::error::SimError;
use crate::gpu::GpuContext;
use std::ops::Range;

pub trait DeviceStage {
    /// Trajectories the stage reduces together. Chunks are cut in whole groups (the
    /// runner rounds the plan's chunk down to a multiple, and refuses a plan below one
    /// group), so that the groups, and the results, do not depend on chunking.
    fn group(&self) -> usize;

    /// Device bytes per trajectory of the stage's own buffers, counting `ring` staging
    /// copies of its output, and the widest of its per-trajectory rows in bytes (one
    /// storage binding holds a chunk of them): for the planner.
    fn per_trajectory(&self, ring: usize) -> (u64, u64);

    /// Makes the stage's kernel, buffers and bind group, once per run, over the runner's
    /// buffer of saved states (`saved`: batches of `slots_per_batch` slots of rows `stride`
    /// long, each row the run's states in `precision`).
    fn prepare(
        &mut self,
        ctx: &GpuContext,
        saved: &wgpu::Buffer,
        precision: Precision,
        stride: usize,
        slots_per_batch: usize,
    ) -> Result<(), SimError>;

    /// Queues the upload of what the stage needs for `chunk` (before its first batch).
    fn upload(&self, ctx: &GpuContext, chunk: &Range<usize>);

    /// Records the stage's work on the batch of save slots `slots` of `chunk`, after the
    /// batch's integration in the same encoder; `first` and `last` say whether it is the
    /// chunk's first and last batch (the last writes the output). The runner submits each
    /// batch's encoder before it records the next batch, so a stage may write its window
    /// with `queue.write_buffer` here.
    fn record(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        chunk: &Range<usize>,
        slots: &Range<usize>,
        first: bool,
        last: bool,
    );

    /// The buffer read back after a chunk's last batch.
    fn output(&self) -> &wgpu::Buffer;

    /// Bytes of `output` to read back for a chunk of `len` trajectories (rows `stride`
    /// long); also the size of its staging copies.
    fn output_bytes(&self, stride: usize, len: usize) -> u64;
}
