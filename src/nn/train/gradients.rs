//! Gradients summed over splits of a batch: how many splits a weight-gradient dispatch
//! gets, and the pass that adds the splits' copies (`shaders/nn/train/gradient_sum.wgsl`).

use super::buffers::uniform;
use super::pass::{Pass, pipe, storage_ro, storage_rw};
use crate::gpu::layout::{Binding, bind_group_of};
use crate::gpu::shader::compose;
use crate::gpu::{GpuContext, GpuError};

/// How many splits of the samples a weight-gradient dispatch of `task_groups` workgroups
/// over `batch` samples should have: enough workgroups to fill the adapter, each summing
/// at least 256 samples.
pub fn gradient_splits(ctx: &GpuContext, task_groups: usize, batch: usize) -> usize {
    let want: usize = if ctx.cpu_forms() { 16 } else { 1024 };
    // Below 256 samples per split the extra dispatch that adds the splits costs more than
    // the parallelism gains (DeepONet's branch batches of ~150 functions).
    want.div_ceil(task_groups).clamp(1, (batch / 256).max(1))
}

/// gradient_sum.wgsl's `struct Dims`.
pub(crate) fn gradient_sum_words(len: usize, splits: usize) -> [u32; 4] {
    [len as u32, splits as u32, 0, 0]
}

/// The pass that adds `splits` copies of a `len`-float gradient in `partial` into `grad`.
pub fn gradient_sum_pass(
    ctx: &GpuContext,
    len: usize,
    splits: usize,
    partial: &wgpu::Buffer,
    grad: wgpu::BindingResource<'_>,
) -> Result<Pass, GpuError> {
    let (p, l) = pipe(
        ctx,
        "nn/train/gradient_sum",
        &compose("nn/train/gradient_sum.wgsl", &[])?,
        &[Binding::Uniform, storage_ro(), storage_rw()],
    )?;
    let dims = uniform(ctx, gradient_sum_words(len, splits));
    let groups = len.div_ceil(64) as u32;
    Ok(Pass {
        label: "gradient sum",
        group: bind_group_of(
            ctx,
            "gradient sum",
            &l,
            vec![dims.as_entire_binding(), partial.as_entire_binding(), grad],
        ),
        pipeline: p,
        size: (groups.min(65535), groups.div_ceil(65535), 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::train::words_by_field;

    #[test]
    fn gradient_sum_words_follow_the_kernel_dims_struct() {
        let words = gradient_sum_words(300, 7);
        let at = words_by_field("nn/train/gradient_sum.wgsl", "Dims", &words);
        assert_eq!((at("len"), at("splits")), (300, 7));
    }
}
