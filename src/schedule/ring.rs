//! A ring of K readback slots. Each unit of work copies its results into the staging
//! buffers of one slot; the host maps and consumes a slot only when it needs it again (or at
//! the end), so while it consumes unit i the device is already running units i+1 .. i+K-1.
//! Waits are on a unit's own submission, never on "everything submitted so far".

use crate::gpu::{GpuContext, GpuError};
use std::collections::VecDeque;
use std::sync::mpsc;

/// One slot: its staging buffers (MAP_READ | COPY_DST), one per kind of result.
struct Slot {
    buffers: Vec<wgpu::Buffer>,
}

struct InFlight<T> {
    slot: usize,
    submission: wgpu::SubmissionIndex,
    /// Bytes to read from each of the slot's buffers.
    sizes: Vec<u64>,
    mapped: Vec<mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>>,
    payload: T,
}

pub struct ReadbackRing<T> {
    slots: Vec<Slot>,
    free: VecDeque<usize>,
    in_flight: VecDeque<InFlight<T>>,
}

impl<T> ReadbackRing<T> {
    /// `k` slots, each with staging buffers of the given sizes.
    pub fn new(ctx: &GpuContext, k: usize, sizes: &[(&str, u64)]) -> ReadbackRing<T> {
        let slots = (0..k.max(1))
            .map(|s| Slot {
                buffers: sizes
                    .iter()
                    .map(|(label, size)| {
                        ctx.device.create_buffer(&wgpu::BufferDescriptor {
                            label: Some(&format!("{label} staging {s}")),
                            size: (*size).max(4).next_multiple_of(4),
                            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                            mapped_at_creation: false,
                        })
                    })
                    .collect(),
            })
            .collect::<Vec<_>>();
        ReadbackRing {
            free: (0..slots.len()).collect(),
            slots,
            in_flight: VecDeque::new(),
        }
    }

    /// A free slot for the next unit, consuming the oldest unit in flight first when all
    /// slots are taken. Returns the slot and its staging buffers.
    pub fn acquire<E: From<GpuError>>(
        &mut self,
        ctx: &GpuContext,
        consume: &mut impl FnMut(T, &[&[u8]]) -> Result<(), E>,
    ) -> Result<(usize, &[wgpu::Buffer]), E> {
        if self.free.is_empty() {
            self.consume_oldest(ctx, consume)?;
        }
        let slot = self.free.pop_front().expect("a slot was freed");
        Ok((slot, &self.slots[slot].buffers))
    }

    /// Records that `submission` copies the unit's results into `slot`'s buffers (the
    /// first `sizes[i]` bytes of buffer i), and asks for them to be mapped when it is done.
    pub fn submitted(
        &mut self,
        slot: usize,
        submission: wgpu::SubmissionIndex,
        sizes: Vec<u64>,
        payload: T,
    ) {
        let mapped = self.slots[slot]
            .buffers
            .iter()
            .zip(&sizes)
            .filter(|(_, size)| **size > 0)
            .map(|(buffer, &size)| {
                let (tx, rx) = mpsc::channel();
                buffer
                    .slice(..size)
                    .map_async(wgpu::MapMode::Read, move |r| {
                        let _ = tx.send(r);
                    });
                rx
            })
            .collect();
        self.in_flight.push_back(InFlight {
            slot,
            submission,
            sizes,
            mapped,
            payload,
        });
    }

    /// Consumes every unit in flight, oldest first.
    pub fn drain<E: From<GpuError>>(
        &mut self,
        ctx: &GpuContext,
        consume: &mut impl FnMut(T, &[&[u8]]) -> Result<(), E>,
    ) -> Result<(), E> {
        while !self.in_flight.is_empty() {
            self.consume_oldest(ctx, consume)?;
        }
        Ok(())
    }

    fn consume_oldest<E: From<GpuError>>(
        &mut self,
        ctx: &GpuContext,
        consume: &mut impl FnMut(T, &[&[u8]]) -> Result<(), E>,
    ) -> Result<(), E> {
        let unit = self.in_flight.pop_front().expect("a unit in flight");
        let readback = |e: String| GpuError::Readback(e);
        ctx.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(unit.submission),
                timeout: None,
            })
            .map_err(|e| readback(e.to_string()))?;
        for rx in &unit.mapped {
            rx.recv()
                .map_err(|e| readback(e.to_string()))?
                .map_err(|e| readback(e.to_string()))?;
        }
        let buffers = &self.slots[unit.slot].buffers;
        let result = {
            let views = buffers
                .iter()
                .zip(&unit.sizes)
                .filter(|(_, size)| **size > 0)
                .map(|(b, &size)| b.slice(..size).get_mapped_range())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| readback(e.to_string()))?;
            let mut bytes: Vec<&[u8]> = Vec::with_capacity(buffers.len());
            let mut views = views.iter();
            for &size in &unit.sizes {
                bytes.push(if size > 0 {
                    views.next().expect("a view per mapped buffer")
                } else {
                    &[]
                });
            }
            consume(unit.payload, &bytes)
        };
        for (b, &size) in buffers.iter().zip(&unit.sizes) {
            if size > 0 {
                b.unmap();
            }
        }
        self.free.push_back(unit.slot);
        ctx.check_errors()?;
        result
    }
}
