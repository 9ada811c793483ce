//! Splitting a run into pieces the device can hold: chunks of trajectories (bounded by the
//! storage-binding size, the buffer size, the dispatch grid and a memory budget) and, within
//! a chunk, batches of save slots (bounded the same way), each batch made of dispatch
//! windows short enough that no single dispatch runs for long.

use std::ops::Range;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum PlanError {
    #[error(
        "one trajectory's buffers ({need} bytes) do not fit the device's {limit}-byte storage binding \
         or the memory budget; save less often"
    )]
    TooLarge { need: u64, limit: u64 },
    #[error(
        "the device adds this run's trajectories in groups of {group}, and the memory \
         budget (or chunk cap) holds only {chunk} at once; give the run more device memory"
    )]
    GroupTooLarge { group: usize, chunk: usize },
}

/// What the device allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceLimits {
    pub max_binding: u64,
    pub max_buffer: u64,
    pub max_groups_per_dim: u32,
}

impl DeviceLimits {
    pub fn of(limits: &wgpu::Limits) -> DeviceLimits {
        DeviceLimits {
            max_binding: limits.max_storage_buffer_binding_size,
            max_buffer: limits.max_buffer_size,
            max_groups_per_dim: limits.max_compute_workgroups_per_dimension,
        }
    }
}

/// The shape of a run, for planning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunShape {
    pub n: usize,
    pub dim: usize,
    pub n_params: usize,
    pub n_slots: usize,
    pub bytes_per_real: u64,
    pub workgroup_size: u32,
    /// Further device bytes per trajectory (an adaptive run's controller state).
    pub extra_bytes: u64,
    /// Reals per trajectory in the widest of those further buffers: each is one binding,
    /// so it bounds the chunk like the state does (adaptive: 3 + dim control values).
    pub extra_width: usize,
    /// Readback slots in flight, each with its own staging copy of a batch of saves.
    pub ring: usize,
}

/// Caps the user (or a test) may put on the plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanCaps {
    /// Device memory the run may use, in bytes.
    pub memory_budget: u64,
    pub max_chunk: Option<usize>,
    pub max_slots_per_batch: Option<usize>,
}

impl Default for PlanCaps {
    fn default() -> Self {
        PlanCaps {
            memory_budget: 1 << 30,
            max_chunk: None,
            max_slots_per_batch: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Trajectories per chunk: the row length of every per-trajectory buffer.
    pub chunk: usize,
    /// Save slots held on the device at once.
    pub slots_per_batch: usize,
}

/// A batch should hold at least this many slots (or all of them) before chunks shrink.
const MIN_SLOTS_PER_BATCH: usize = 16;

/// Save slots per batch at most, whatever memory allows: kernels that walk a batch's slots
/// in one invocation (the adaptive kernels' save loop, estimation's fold of the saves)
/// must stay within lavapipe's budget of 65,535 loop iterations per invocation (see
/// `ode::fixed::run::MAX_WINDOW_STEPS`); beyond it lavapipe silently stops the loops. On a
/// GPU it only means another readback unit per 16,384 slots.
pub const MAX_SLOTS_PER_BATCH: usize = 16_384;

pub fn plan(shape: &RunShape, limits: &DeviceLimits, caps: &PlanCaps) -> Result<Plan, PlanError> {
    let bytes = shape.bytes_per_real;
    let elems = (limits.max_binding.min(limits.max_buffer) / bytes) as usize;
    let widest = shape.dim.max(shape.n_params).max(shape.extra_width).max(1);
    let max_grid = limits.max_groups_per_dim as usize
        * limits.max_groups_per_dim as usize
        * shape.workgroup_size as usize;
    let slot_cap = shape
        .n_slots
        .min(caps.max_slots_per_batch.unwrap_or(usize::MAX))
        .clamp(1, MAX_SLOTS_PER_BATCH);
    let s_min = slot_cap.min(MIN_SLOTS_PER_BATCH);

    // Device bytes per trajectory with `s` slots per batch: state, params, saved and one
    // staging copy per ring slot, status and its staging copies.
    let copies = 1 + shape.ring.max(1);
    let per_traj = |s: usize| {
        bytes * (shape.dim + shape.n_params + copies * s * shape.dim + copies) as u64
            + shape.extra_bytes
    };

    let mut chunk = shape
        .n
        .min(elems / widest)
        .min(max_grid)
        .min(caps.max_chunk.unwrap_or(usize::MAX))
        .min(elems / (shape.dim * s_min).max(1));
    chunk = chunk.min((caps.memory_budget / per_traj(s_min)) as usize);
    if chunk == 0 {
        return Err(PlanError::TooLarge {
            need: per_traj(s_min),
            limit: limits.max_binding.min(caps.memory_budget),
        });
    }
    let by_binding = elems / (shape.dim * chunk);
    let by_budget = (((caps.memory_budget / chunk as u64).saturating_sub(shape.extra_bytes)
        / bytes)
        .saturating_sub((shape.dim + shape.n_params + copies) as u64)
        / (copies * shape.dim) as u64) as usize;
    let slots_per_batch = slot_cap.min(by_binding).min(by_budget).max(s_min);
    Ok(Plan {
        chunk,
        slots_per_batch,
    })
}

impl Plan {
    /// The plan in words, for `--verbose`.
    pub fn describe(&self, n: usize, n_slots: usize, ring: usize) -> String {
        format!(
            "{} chunk(s) of up to {} trajectories; {} batch(es) of up to {} save slot(s) per \
             chunk; {} readback slot(s) in flight",
            n.div_ceil(self.chunk),
            self.chunk,
            n_slots.div_ceil(self.slots_per_batch),
            self.slots_per_batch,
            ring.max(1)
        )
    }

    /// Trajectory ranges of the chunks.
    pub fn chunks(&self, n: usize) -> impl Iterator<Item = Range<usize>> + '_ {
        self.chunks_from(0, n)
    }

    /// Trajectory ranges of the chunks of `start..n` (a resumed run starts past the
    /// trajectories already done).
    pub fn chunks_from(&self, start: usize, n: usize) -> impl Iterator<Item = Range<usize>> + '_ {
        (start..n)
            .step_by(self.chunk)
            .map(move |c| c..(c + self.chunk).min(n))
    }

    /// Slot ranges of the batches.
    pub fn batches(&self, n_slots: usize) -> impl Iterator<Item = Range<usize>> + '_ {
        (0..n_slots.div_ceil(self.slots_per_batch))
            .map(move |b| b * self.slots_per_batch..((b + 1) * self.slots_per_batch).min(n_slots))
    }
}

/// Trajectory-steps one chunk should hold at most when a run may be interrupted: a chunk is
/// the unit of work kept on Ctrl-C (its trajectories finish or are redone), so this bounds
/// the work lost: about 3 s on a 2-core CPU adapter, milliseconds on a GPU.
pub const INTERRUPTIBLE_CHUNK_WORK: u64 = 1 << 31;

/// Chunks are never cut below this many trajectories to bound lost work: fewer leave a
/// GPU idle.
pub const MIN_INTERRUPTIBLE_CHUNK: usize = 4096;

/// The most trajectories per chunk such that a chunk holds about
/// `INTERRUPTIBLE_CHUNK_WORK` trajectory-steps of `steps` each (never below
/// `MIN_INTERRUPTIBLE_CHUNK`). Results do not depend on chunking, so this only decides
/// how much work an interruption can lose and how often progress counts trajectories.
pub fn interruptible_chunk(steps: u64) -> usize {
    let by_work = INTERRUPTIBLE_CHUNK_WORK / steps.max(1);
    (by_work as usize).max(MIN_INTERRUPTIBLE_CHUNK)
}

/// Splits `steps` into windows of at most `max_len` steps.
pub fn windows(steps: Range<u32>, max_len: u32) -> impl Iterator<Item = Range<u32>> {
    let max_len = max_len.max(1);
    let mut at = steps.start;
    std::iter::from_fn(move || {
        if at >= steps.end {
            return None;
        }
        let end = steps.end.min(at.saturating_add(max_len));
        let w = at..end;
        at = end;
        Some(w)
    })
}

/// Workgroup counts (x, y) covering `n` invocations with at most `max_per_dim` per side,
/// and fewer than `y` workgroups beyond the last invocation: the rows are made as even
/// as they can be. (A full first row would have cost a third of a 2²³-trajectory chunk:
/// 131,072 workgroups took a grid of 65,535 × 3, and lavapipe runs a workgroup whose
/// invocations have all returned through the whole step loop, masked.)
pub fn dispatch_grid(n: usize, workgroup_size: u32, max_per_dim: u32) -> (u32, u32) {
    let groups = n.div_ceil(workgroup_size as usize).max(1);
    let y = groups.div_ceil(max_per_dim.max(1) as usize);
    (groups.div_ceil(y) as u32, y as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAVAPIPE: DeviceLimits = DeviceLimits {
        max_binding: 128 << 20,
        max_buffer: 2 << 30,
        max_groups_per_dim: 65535,
    };

    fn shape(n: usize, dim: usize, n_slots: usize) -> RunShape {
        RunShape {
            n,
            dim,
            n_params: 3,
            n_slots,
            bytes_per_real: 4,
            workgroup_size: 64,
            extra_bytes: 0,
            extra_width: 0,
            ring: 1,
        }
    }

    #[test]
    fn interruptible_chunks_bound_the_work_of_one_chunk() {
        // 10^4 steps: 214,748 trajectories (the benchmark's 10^5 stay one chunk).
        assert_eq!(interruptible_chunk(10_000), 214_748);
        // 10^6 steps: the floor.
        assert_eq!(interruptible_chunk(1_000_000), MIN_INTERRUPTIBLE_CHUNK);
        assert_eq!(interruptible_chunk(0), INTERRUPTIBLE_CHUNK_WORK as usize);
    }

    #[test]
    fn small_runs_are_one_chunk_one_batch() {
        let p = plan(&shape(100_000, 3, 1), &LAVAPIPE, &PlanCaps::default()).unwrap();
        assert_eq!(
            p,
            Plan {
                chunk: 100_000,
                slots_per_batch: 1
            }
        );
    }

    #[test]
    fn large_runs_respect_binding_and_budget() {
        let caps = PlanCaps::default();
        let p = plan(&shape(10_000_000, 6, 1), &LAVAPIPE, &caps).unwrap();
        assert!(p.chunk * 6 * 4 <= 128 << 20);
        let p = plan(&shape(1_000_000, 3, 1001), &LAVAPIPE, &caps).unwrap();
        assert!(p.slots_per_batch * 3 * p.chunk * 4 <= 128 << 20, "{p:?}");
        assert!(p.slots_per_batch >= 16);
        let per_traj = 4 * (3 + 3 + 2 * p.slots_per_batch * 3 + 2) as u64;
        assert!(per_traj * p.chunk as u64 <= caps.memory_budget, "{p:?}");
    }

    /// An adaptive run's control rows (3 + dim reals a trajectory) are one binding: at
    /// N = 8,388,608 Lorenz's would be 192 MiB, so the chunk must shrink to fit 128 MiB.
    #[test]
    fn wide_extra_buffers_bound_the_chunk() {
        let mut s = shape(8_388_608, 3, 1);
        s.extra_width = 6;
        s.extra_bytes = 6 * 4 + 40;
        let p = plan(&s, &LAVAPIPE, &PlanCaps::default()).unwrap();
        assert!(p.chunk * 6 * 4 <= 128 << 20, "{p:?}");
    }

    #[test]
    fn chunks_batches_and_windows_cover_everything_once() {
        let p = Plan {
            chunk: 4,
            slots_per_batch: 3,
        };
        assert_eq!(p.chunks(10).collect::<Vec<_>>(), vec![0..4, 4..8, 8..10]);
        assert_eq!(p.batches(7).collect::<Vec<_>>(), vec![0..3, 3..6, 6..7]);
        assert_eq!(
            windows(5..12, 3).collect::<Vec<_>>(),
            vec![5..8, 8..11, 11..12]
        );
        assert_eq!(dispatch_grid(65535 * 64, 64, 65535), (65535, 1));
        assert_eq!(dispatch_grid(65535 * 64 + 1, 64, 65535), (32768, 2));
        assert_eq!(dispatch_grid(10, 64, 65535), (1, 1));
    }

    /// Every grid covers its workgroups with fewer than one per row left over, within
    /// the side limit (2²³ trajectories: 43,691 × 3, not 65,535 × 3).
    #[test]
    fn grids_waste_less_than_a_workgroup_per_row() {
        assert_eq!(dispatch_grid(1 << 23, 64, 65535), (43691, 3));
        for n in [
            1usize,
            63,
            64,
            65,
            1 << 20,
            65535 * 64 * 2 + 7,
            1 << 23,
            123_456_789,
            1 << 31,
        ] {
            for max in [1u32, 7, 65535] {
                let groups = n.div_ceil(64);
                let (x, y) = dispatch_grid(n, 64, max);
                assert!(x <= max && y <= groups as u32, "{n} {max}: {x} x {y}");
                let cover = x as usize * y as usize;
                assert!(
                    cover >= groups && cover - groups < y as usize,
                    "{n} {max}: {x} x {y}"
                );
            }
        }
    }
}
