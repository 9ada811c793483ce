//! The two window policies of `Windows`: how one batch of save slots is dispatched,
//! submitted, waited for and copied into a readback-ring slot.

use super::gpu::wait_for;
use crate::gpu::GpuContext;
use crate::gpu::readback::with_mapped;
use crate::gpu::timing::PassTimer;
use crate::ode::device::{UNIFORM_STRIDE, Unit};
use crate::ode::error::SimError;
use crate::ode::options::{RunOptions, Tick};
use crate::ode::stage::DeviceStage;
use crate::schedule::ring::ReadbackRing;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ops::Range;
use std::time::Duration;

/// Submissions of one planned batch on the device at once; the host waits for the oldest
/// before adding another.
const SUBMISSIONS_IN_FLIGHT: usize = 2;

/// Dispatch windows in one submission at most; each has its own uniform slot (and, in an
/// `UntilDone` group, its own counter).
pub(super) const WINDOWS_PER_SUBMIT: usize = 64;

/// The run's pipeline and the buffers the dispatch loop touches.
pub(super) struct Kernel<'a> {
    pub ctx: &'a GpuContext,
    pub label: &'static str,
    pub pipeline: &'a wgpu::ComputePipeline,
    pub bind_group: &'a wgpu::BindGroup,
    pub uniforms: &'a wgpu::Buffer,
    pub saved: &'a wgpu::Buffer,
    pub outcome: &'a wgpu::Buffer,
    /// `Family::results`, cleared and read back like `outcome`.
    pub results: Option<&'a wgpu::Buffer>,
    /// `Family::unfinished` and a 4-byte staging buffer for one of its counters.
    pub unfinished: Option<(&'a wgpu::Buffer, &'a wgpu::Buffer)>,
    pub timer: Option<&'a PassTimer>,
    pub options: &'a RunOptions,
    /// The sink's device stage, recorded behind every batch.
    pub stage: Option<&'a dyn DeviceStage>,
}

/// One batch of save slots of one chunk.
pub(super) struct Batch {
    pub chunk: Range<usize>,
    pub slots: Range<usize>,
    /// The chunk's first batch: its first submission clears the outcome buffer.
    pub first: bool,
    /// The chunk's last batch: it also reads back the outcome.
    pub last: bool,
    pub grid: (u32, u32),
    /// Saves to read back (0 when a device stage reduces them instead).
    pub saved_bytes: u64,
    /// Outcome bytes to read back (0 unless `last`).
    pub outcome_bytes: u64,
    /// Results bytes to read back (0 unless `last`, or the family has none).
    pub results_bytes: u64,
    /// Stage output bytes to read back (0 unless `last` and there is a stage).
    pub stage_bytes: u64,
}

impl Kernel<'_> {
    /// Writes one uniform slot per window, each padded to the dynamic-offset stride.
    fn write_windows<W>(&self, windows: impl Iterator<Item = W>, pack: &dyn Fn(&W) -> Vec<u8>) {
        let uniforms: Vec<u8> = windows
            .flat_map(|w| {
                let mut slot = pack(&w);
                slot.resize(UNIFORM_STRIDE as usize, 0);
                slot
            })
            .collect();
        self.ctx.queue.write_buffer(self.uniforms, 0, &uniforms);
    }

    /// Records one compute pass of `count` dispatches, window `w` reading uniform slot `w`.
    fn record_pass(
        &self,
        enc: &mut wgpu::CommandEncoder,
        count: usize,
        grid: (u32, u32),
        timed_as: u32,
    ) {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(self.label),
            timestamp_writes: self.timer.map(|t| t.writes(timed_as)),
        });
        pass.set_pipeline(self.pipeline);
        for w in 0..count {
            pass.set_bind_group(0, self.bind_group, &[(w as u64 * UNIFORM_STRIDE) as u32]);
            pass.dispatch_workgroups(grid.0, grid.1, 1);
        }
    }

    /// Records the device stage's work on the batch, if there is one, and the copy of the
    /// batch's saves (and, after the chunk's last batch, its outcome and stage output) into
    /// a ring slot's staging buffers.
    fn copy_results(
        &self,
        enc: &mut wgpu::CommandEncoder,
        batch: &Batch,
        staging: &[wgpu::Buffer],
    ) {
        if let Some(stage) = self.stage {
            stage.record(
                self.ctx,
                enc,
                &batch.chunk,
                &batch.slots,
                batch.first,
                batch.last,
            );
        }
        if batch.saved_bytes > 0 {
            enc.copy_buffer_to_buffer(self.saved, 0, &staging[0], 0, batch.saved_bytes);
        }
        if batch.last {
            enc.copy_buffer_to_buffer(self.outcome, 0, &staging[1], 0, batch.outcome_bytes);
            if let (Some(results), true) = (self.results, batch.results_bytes > 0) {
                enc.copy_buffer_to_buffer(results, 0, &staging[3], 0, batch.results_bytes);
            }
            if let (Some(stage), true) = (self.stage, batch.stage_bytes > 0) {
                enc.copy_buffer_to_buffer(stage.output(), 0, &staging[4], 0, batch.stage_bytes);
            }
        }
    }

    /// Clears what a chunk's first submission starts from: the outcome and the results.
    fn clear_outcome(&self, enc: &mut wgpu::CommandEncoder) {
        enc.clear_buffer(self.outcome, 0, None);
        if let Some(results) = self.results {
            enc.clear_buffer(results, 0, None);
        }
    }

    fn unit(batch: &Batch, passes: u32) -> Unit {
        Unit {
            chunk: batch.chunk.clone(),
            slots: batch.slots.clone(),
            last_batch: batch.last,
            passes,
        }
    }
}

/// `Windows::Planned`: the windows in groups of `per_submit`, at most
/// `SUBMISSIONS_IN_FLIGHT` submissions on the device; the last one also copies the results
/// (and every pass's timestamps) into a ring slot, and only that one is read back. Returns
/// false when the run was cancelled mid-batch.
#[allow(clippy::too_many_arguments)]
pub(super) fn planned<W: Copy, C: FnMut(Unit, &[&[u8]]) -> Result<(), SimError>>(
    k: &Kernel,
    batch: &Batch,
    windows: &[(W, u64)],
    pack: &dyn Fn(&W) -> Vec<u8>,
    per_submit: usize,
    ring: &mut ReadbackRing<Unit>,
    consume: &mut C,
    unacknowledged: &RefCell<VecDeque<u64>>,
    dispatches: &mut usize,
) -> Result<bool, SimError> {
    let groups: Vec<&[(W, u64)]> = windows.chunks(per_submit).collect();
    let (ring_slot, staging) = ring.acquire(k.ctx, consume)?;
    let mut submission = None;
    let mut in_flight = VecDeque::new();
    for (g, group) in groups.iter().enumerate() {
        if in_flight.len() >= SUBMISSIONS_IN_FLIGHT {
            let (oldest, work) = in_flight.pop_front().expect("in flight");
            wait_for(k.ctx, Some(oldest))?;
            k.options.tick(Tick::Done(work));
            if k.options.cancelled() {
                // This batch never completes: let what it submitted finish, so that its
                // buffers are free when the run returns.
                wait_for(k.ctx, in_flight.pop_back().map(|(index, _)| index))?;
                return Ok(false);
            }
        }
        k.write_windows(group.iter().map(|&(w, _)| w), pack);
        let mut enc = k.ctx.device.create_command_encoder(&Default::default());
        if batch.first && g == 0 {
            k.clear_outcome(&mut enc);
        }
        k.record_pass(&mut enc, group.len(), batch.grid, g as u32);
        *dispatches += group.len();
        if g + 1 == groups.len() {
            k.copy_results(&mut enc, batch, staging);
            if let Some(t) = k.timer {
                t.resolve_into(&mut enc, groups.len() as u32, &staging[2]);
            }
        }
        let index = k.ctx.queue.submit([enc.finish()]);
        let work: u64 = group.iter().map(|&(_, work)| work).sum();
        in_flight.push_back((index.clone(), work));
        submission = Some(index);
    }
    unacknowledged
        .borrow_mut()
        .push_back(in_flight.iter().map(|(_, work)| work).sum::<u64>());
    let timestamp_bytes = k.timer.map_or(0, |_| 16 * groups.len() as u64);
    ring.submitted(
        ring_slot,
        submission.expect("a batch has at least one window"),
        vec![
            batch.saved_bytes,
            batch.outcome_bytes,
            timestamp_bytes,
            batch.results_bytes,
            batch.stage_bytes,
        ],
        Kernel::unit(batch, groups.len() as u32),
    );
    Ok(true)
}

/// `Windows::UntilDone`: groups of 1, 2, 4, ... windows until the counter of a group's
/// last window says no trajectory has work left in the batch, so that long batches cost
/// few round trips; then one copy of the results into a ring slot. Earlier units are
/// consumed while each group runs. Always finishes the batch (returns true).
#[allow(clippy::too_many_arguments)]
pub(super) fn until_done<W, C: FnMut(Unit, &[&[u8]]) -> Result<(), SimError>>(
    k: &Kernel,
    batch: &Batch,
    nth: &dyn Fn(u32) -> W,
    pack: &dyn Fn(&W) -> Vec<u8>,
    ring: &mut ReadbackRing<Unit>,
    consume: &mut C,
    gpu_time: &Cell<Duration>,
    dispatches: &mut usize,
) -> Result<bool, SimError> {
    let (unfinished, staging) = k
        .unfinished
        .expect("a family that dispatches until done has an unfinished counter");
    let len = batch.chunk.len();
    let mut group = 1usize;
    let mut through = 0u64;
    let mut first = batch.first;
    loop {
        k.write_windows((0..group as u32).map(nth), pack);
        let mut enc = k.ctx.device.create_command_encoder(&Default::default());
        if first {
            k.clear_outcome(&mut enc);
            first = false;
        }
        enc.clear_buffer(unfinished, 0, Some(4 * group as u64));
        k.record_pass(&mut enc, group, batch.grid, 0);
        let last = 4 * (group as u64 - 1);
        enc.copy_buffer_to_buffer(unfinished, last, staging, 0, 4);
        if let Some(t) = k.timer {
            t.resolve(&mut enc, 1);
        }
        k.ctx.queue.submit([enc.finish()]);
        *dispatches += group;
        // Earlier units' results are consumed while this group runs; then the one
        // counter says whether the batch needs more.
        ring.drain(k.ctx, consume)?;
        let left = with_mapped(k.ctx, staging, 4, |b| {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        })?;
        if let Some(t) = k.timer {
            gpu_time.set(gpu_time.get() + t.read(k.ctx, 1)?);
        }
        // Trajectories through this batch so far, told as progress.
        let now_through = len.saturating_sub(left as usize) as u64;
        k.options
            .tick(Tick::Done(now_through.saturating_sub(through)));
        through = through.max(now_through);
        if left == 0 {
            break;
        }
        group = (group * 2).min(WINDOWS_PER_SUBMIT);
    }
    let (ring_slot, slot_buffers) = ring.acquire(k.ctx, consume)?;
    let mut enc = k.ctx.device.create_command_encoder(&Default::default());
    k.copy_results(&mut enc, batch, slot_buffers);
    ring.submitted(
        ring_slot,
        k.ctx.queue.submit([enc.finish()]),
        vec![
            batch.saved_bytes,
            batch.outcome_bytes,
            0,
            batch.results_bytes,
            batch.stage_bytes,
        ],
        Kernel::unit(batch, 0),
    );
    Ok(true)
}
