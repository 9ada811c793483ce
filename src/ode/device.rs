//! Pieces both ensemble runners (fixed-step and adaptive) use to talk to the device: the
//! run's floating-point precision, buffers and bind-group layouts, uniform packing that
//! follows WGSL's layout rules, and the host-side transposes between row-major trajectories
//! and the kernels' struct-of-arrays buffers.

use super::ensemble::Ensemble;
use super::solution::StateValues;
use crate::gpu::GpuContext;
pub use crate::gpu::layout::{Binding, bind_group, bind_group_layout, buffer, pipeline_layout};
pub use crate::precision::Precision;
use std::ops::Range;

/// The buffers every ensemble kernel has: per-dispatch uniform slots, initial/current
/// states, parameters, one batch of save slots and its staging copy.
pub struct EnsembleBuffers {
    pub uniforms: wgpu::Buffer,
    pub state: wgpu::Buffer,
    pub params: wgpu::Buffer,
    pub saved: wgpu::Buffer,
    pub saved_staging: wgpu::Buffer,
}

impl EnsembleBuffers {
    /// For chunks of `chunk` trajectories, `slots_per_batch` save slots and `windows`
    /// uniform slots.
    pub fn new(
        ctx: &GpuContext,
        (dim, n_params): (usize, usize),
        precision: Precision,
        (chunk, slots_per_batch): (usize, usize),
        windows: usize,
    ) -> EnsembleBuffers {
        use wgpu::BufferUsages as U;
        let row = chunk as u64 * precision.bytes();
        let saved_bytes = (slots_per_batch * dim) as u64 * row;
        EnsembleBuffers {
            uniforms: buffer(
                ctx,
                "windows",
                UNIFORM_STRIDE * windows as u64,
                U::UNIFORM | U::COPY_DST,
            ),
            state: buffer(ctx, "state", dim as u64 * row, U::STORAGE | U::COPY_DST),
            params: buffer(
                ctx,
                "params",
                n_params as u64 * row,
                U::STORAGE | U::COPY_DST,
            ),
            saved: buffer(ctx, "saved", saved_bytes, U::STORAGE | U::COPY_SRC),
            saved_staging: buffer(ctx, "saved staging", saved_bytes, U::MAP_READ | U::COPY_DST),
        }
    }

    /// Where uploads of a chunk's initial states and parameters go.
    pub fn rows(
        &self,
        dim: usize,
        n_params: usize,
        precision: Precision,
        stride: usize,
    ) -> DeviceRows<'_> {
        DeviceRows {
            state: &self.state,
            params: &self.params,
            dim,
            n_params,
            precision,
            stride,
        }
    }
}

/// Uniform slots are bound at dynamic offsets, which must be 256-byte aligned.
pub const UNIFORM_STRIDE: u64 = 256;

/// Packs a uniform struct of scalars the way WGSL lays it out: each member aligned to its
/// size, the struct padded to its largest alignment.
#[derive(Debug, Default)]
pub struct UniformBytes {
    bytes: Vec<u8>,
    align: usize,
}

impl UniformBytes {
    fn pad_to(&mut self, align: usize) {
        self.align = self.align.max(align);
        while !self.bytes.len().is_multiple_of(align) {
            self.bytes.push(0);
        }
    }

    pub fn u32(mut self, v: u32) -> Self {
        self.pad_to(4);
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn real(mut self, precision: Precision, v: f64) -> Self {
        self.pad_to(precision.bytes() as usize);
        precision.push_bytes(v, &mut self.bytes);
        self
    }

    pub fn finish(mut self) -> Vec<u8> {
        let align = self.align.max(4);
        self.pad_to(align);
        self.bytes
    }
}

/// Where a chunk's initial states and parameters go on the device, and in what layout.
pub struct DeviceRows<'a> {
    pub state: &'a wgpu::Buffer,
    pub params: &'a wgpu::Buffer,
    pub dim: usize,
    /// Parameters and input values (`System::n_param_slots`).
    pub n_params: usize,
    pub precision: Precision,
    /// Row length of the struct-of-arrays buffers.
    pub stride: usize,
}

/// Host-side upload buffers, reused by every chunk of a run.
#[derive(Default)]
pub struct HostUpload {
    f32s: Vec<f32>,
    f64s: Vec<f64>,
}

/// Rows below which one thread fills a chunk's columns: spawning costs more than it saves.
const ROWS_PER_THREAD: usize = 1 << 15;

impl HostUpload {
    /// Writes the chunk's initial states and parameters, struct-of-arrays in the run's
    /// precision. On a fast GPU this preparation is most of a large single-chunk run's wall
    /// time, so each trajectory's row goes straight into its columns (no row-major copy,
    /// no per-value byte vectors), and large chunks are split across the host's cores.
    pub fn upload(
        &mut self,
        ctx: &GpuContext,
        ensemble: &Ensemble,
        to: &DeviceRows,
        chunk: Range<usize>,
    ) {
        let state = |j: usize, row: &mut [f64]| ensemble.state_row(j, row);
        self.write(
            ctx,
            to.state,
            (to.dim, to.stride, to.precision),
            &chunk,
            &state,
        );
        if to.n_params > 0 {
            let params = |j: usize, row: &mut [f64]| ensemble.param_row(j, row);
            self.write(
                ctx,
                to.params,
                (to.n_params, to.stride, to.precision),
                &chunk,
                &params,
            );
        }
    }

    fn write(
        &mut self,
        ctx: &GpuContext,
        buffer: &wgpu::Buffer,
        (cols, stride, precision): (usize, usize, Precision),
        chunk: &Range<usize>,
        row: &(dyn Fn(usize, &mut [f64]) + Sync),
    ) {
        let bytes: &[u8] = match precision {
            Precision::F32 => {
                fill_columns(&mut self.f32s, (cols, stride), chunk, row, |v| v as f32);
                bytemuck::cast_slice(&self.f32s)
            }
            Precision::F64 => {
                fill_columns(&mut self.f64s, (cols, stride), chunk, row, |v| v);
                bytemuck::cast_slice(&self.f64s)
            }
        };
        ctx.queue.write_buffer(buffer, 0, bytes);
    }
}

/// `out` as [cols][stride] with row `j - chunk.start` of every column from `row(j)`,
/// converted by `conv`; the columns' tails past the chunk are zero.
fn fill_columns<T: Copy + Default + Send>(
    out: &mut Vec<T>,
    (cols, stride): (usize, usize),
    chunk: &Range<usize>,
    row: &(dyn Fn(usize, &mut [f64]) + Sync),
    conv: fn(f64) -> T,
) {
    out.clear();
    out.resize(cols * stride, T::default());
    let len = chunk.len();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(len / ROWS_PER_THREAD)
        .max(1);
    // Each thread gets the same contiguous block of rows in every column.
    let bounds: Vec<usize> = (0..=threads).map(|t| t * len / threads).collect();
    let mut blocks: Vec<Vec<&mut [T]>> = (0..threads).map(|_| Vec::with_capacity(cols)).collect();
    for column in out.chunks_mut(stride.max(1)).take(cols) {
        let mut rest = &mut column[..len];
        for (t, block) in blocks.iter_mut().enumerate() {
            let (mine, after) = std::mem::take(&mut rest).split_at_mut(bounds[t + 1] - bounds[t]);
            block.push(mine);
            rest = after;
        }
    }
    let fill = |first: usize, mut segments: Vec<&mut [T]>| {
        let mut values = vec![0.0; cols];
        let rows = segments.first().map_or(0, |s| s.len());
        for k in 0..rows {
            row(first + k, &mut values);
            for (segment, &v) in segments.iter_mut().zip(&values) {
                segment[k] = conv(v);
            }
        }
    };
    if threads == 1 {
        if let Some(block) = blocks.pop() {
            fill(chunk.start, block);
        }
        return;
    }
    std::thread::scope(|scope| {
        for (t, block) in blocks.into_iter().enumerate() {
            let first = chunk.start + bounds[t];
            let fill = &fill;
            scope.spawn(move || fill(first, block));
        }
    });
}

/// What one readback slot holds: one batch of save slots of one chunk, with the chunk's
/// statuses (and step counts) when it is the chunk's last batch.
#[derive(Debug, Clone)]
pub struct Unit {
    pub chunk: Range<usize>,
    pub slots: Range<usize>,
    pub last_batch: bool,
    /// Compute passes whose timestamps travel with it (fixed-step runs).
    pub passes: u32,
}

impl Unit {
    /// The unit's saves, read back into `bytes`, for a run of `n` trajectories of `dim`
    /// states whose device rows are `stride` long.
    pub fn saves<'a>(
        &self,
        (n, dim, stride): (usize, usize, usize),
        precision: Precision,
        bytes: &'a [u8],
    ) -> SaveBatch<'a> {
        SaveBatch {
            slots: self.slots.clone(),
            chunk: self.chunk.clone(),
            stride,
            n,
            dim,
            precision,
            bytes,
        }
    }
}

/// A batch of save slots read back from the device: layout [slot][stride][dim] in the
/// run's precision, of which the chunk's trajectories are the first `chunk.len()` rows.
pub struct SaveBatch<'a> {
    /// Run-wide slot numbers of the batch.
    pub slots: Range<usize>,
    /// Trajectories of the chunk.
    pub chunk: Range<usize>,
    /// Row length of the device buffer.
    pub stride: usize,
    pub n: usize,
    pub dim: usize,
    pub precision: Precision,
    pub bytes: &'a [u8],
}

impl SaveBatch<'_> {
    /// The chunk's states at the batch's `s_local`-th slot, [trajectory][component], as raw
    /// little-endian values: exactly the bytes this block has in `states.npy`.
    pub fn slot(&self, s_local: usize) -> &[u8] {
        let w = self.precision.bytes() as usize;
        let at = s_local * self.stride * self.dim * w;
        &self.bytes[at..at + self.chunk.len() * self.dim * w]
    }

    /// The value of component `c` of the chunk's `j`-th trajectory at slot `s_local`.
    pub fn get(&self, s_local: usize, c: usize, j: usize) -> f64 {
        let k = j * self.dim + c;
        let slot = self.slot(s_local);
        match self.precision {
            Precision::F32 => {
                f32::from_le_bytes(slot[4 * k..4 * k + 4].try_into().expect("4 bytes")) as f64
            }
            Precision::F64 => {
                f64::from_le_bytes(slot[8 * k..8 * k + 8].try_into().expect("8 bytes"))
            }
        }
    }

    /// Copies the batch into the solution's [slot][n][dim].
    pub fn scatter(&self, out: &mut StateValues) {
        fn go<T: bytemuck::Pod>(b: &SaveBatch, out: &mut [T]) {
            for (s_local, s) in b.slots.clone().enumerate() {
                let at = (s * b.n + b.chunk.start) * b.dim;
                let src: &[T] = bytemuck::cast_slice(b.slot(s_local));
                out[at..at + src.len()].copy_from_slice(src);
            }
        }
        match out {
            StateValues::F32(v) => go(self, v),
            StateValues::F64(v) => go(self, v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniforms_follow_wgsl_alignment() {
        let f32s = UniformBytes::default()
            .u32(1)
            .real(Precision::F32, 2.0)
            .finish();
        assert_eq!(f32s.len(), 8);
        let f64s = UniformBytes::default()
            .u32(1)
            .real(Precision::F64, 2.0)
            .u32(3)
            .finish();
        // u32 at 0, f64 at 8, u32 at 16, padded to 24.
        assert_eq!(f64s.len(), 24);
        assert_eq!(&f64s[8..16], &2.0f64.to_le_bytes());
        assert_eq!(&f64s[16..20], &3u32.to_le_bytes());
    }
}
