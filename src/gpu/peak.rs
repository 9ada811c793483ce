//! Measured ceilings of an adapter, from microkernels: the FMA rate in f32 (and f64 where
//! the adapter has it) and the device-memory bandwidth of a copy. Benchmarks report their
//! throughput as a share of these (`phaseflow bench peak` prints them). Kernels:
//! `shaders/gpu/peak_fma.wgsl`, `shaders/gpu/peak_copy.wgsl`; the FMA kernel's CPU twin is
//! `fma_twin`.

use super::layout::{Binding, bind_group_layout, bind_group_of, buffer, pipeline_layout};
use super::readback::read_bytes;
use super::shader::{ShaderError, compose};
use super::timing::PassTimer;
use super::{GpuContext, GpuError};
use std::fmt::Write;
use std::time::Instant;
use wgpu::BufferUsages as U;

/// Independent vec4 chains per invocation: enough to hide an FMA unit's latency (on
/// lavapipe 4 chains ran at ~60% and 2 at ~50% of the rate of 8).
const CHAINS: usize = 8;
/// The recurrence's coefficients: a contraction towards c / (1 − m) = 1.
const M: f64 = 0.999;
const C: f64 = 0.001;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Peak {
    /// f32 FMA throughput, flop/s (an FMA is 2 flop).
    pub f32_flops: f64,
    /// The same in f64, where the adapter has SHADER_F64.
    pub f64_flops: Option<f64>,
    /// Copy bandwidth, bytes read plus bytes written per second.
    pub bytes_per_s: f64,
    /// Whether the figures come from GPU timestamps (else wall time).
    pub timestamps: bool,
}

/// Sizes of the microkernels: small on CPU adapters, large enough on GPUs that a dispatch
/// takes milliseconds.
struct Sizes {
    /// Workgroups of 64 along x and y.
    groups: (u32, u32),
    iterations: usize,
    copy_bytes: u64,
}

fn sizes(ctx: &GpuContext) -> Sizes {
    let most = ctx.limits.max_storage_buffer_binding_size;
    if ctx.is_cpu() {
        Sizes {
            groups: (256, 1),
            iterations: 2048,
            copy_bytes: (64 << 20).min(most),
        }
    } else {
        Sizes {
            groups: (4096, 8),
            iterations: 8192,
            copy_bytes: (1 << 30).min(most),
        }
    }
}

/// Start of chain j's component q for invocation start value `start`.
fn chain_start(start: f64, j: usize, q: usize) -> f64 {
    start + 0.1 * q as f64 + 0.05 * j as f64
}

/// The FMA kernel in `real` (f32 or f64).
pub fn fma_wgsl(real: &str, iterations: usize) -> Result<String, ShaderError> {
    let (mut init, mut step, mut sum) = (String::new(), String::new(), Vec::new());
    for j in 0..CHAINS {
        let parts: Vec<String> = (0..4)
            .map(|q| format!("{real}({})", chain_start(0.0, j, q)))
            .collect();
        writeln!(
            init,
            "    var a{j} = vec4<{real}>(start) + vec4<{real}>({});",
            parts.join(", ")
        )
        .unwrap();
        writeln!(step, "        a{j} = a{j} * m + c;").unwrap();
        sum.push(format!("dot(a{j}, vec4<{real}>(1.0))"));
    }
    compose(
        "gpu/peak_fma.wgsl",
        &[
            ("REAL", real),
            ("ITERATIONS", &iterations.to_string()),
            ("INIT", &init),
            ("STEP", &step),
            ("SUM", &sum.join(" + ")),
        ],
    )
}

/// What invocation `i` of the FMA kernel writes, in f64.
pub fn fma_twin(i: u32, iterations: usize) -> f64 {
    let start = (i % 97) as f64 * 0.01;
    let mut total = 0.0;
    for j in 0..CHAINS {
        for q in 0..4 {
            let mut a = chain_start(start, j, q);
            for _ in 0..iterations {
                a = a.mul_add(M, C);
            }
            total += a;
        }
    }
    total
}

/// Seconds of one dispatch of `pipeline`, best of `reps` timed ones after a warm-up:
/// GPU timestamps where the adapter has them, else wall time with a wait.
fn time_dispatch(
    ctx: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    group: &wgpu::BindGroup,
    size: (u32, u32),
    reps: usize,
) -> Result<f64, GpuError> {
    let timer = PassTimer::new(ctx, 1);
    let mut best = f64::INFINITY;
    for rep in 0..=reps {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("peak"),
                timestamp_writes: timer.as_ref().map(|t| t.writes(0)),
            });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(size.0, size.1, 1);
        }
        if let Some(t) = &timer {
            t.resolve(&mut enc, 1);
        }
        let clock = Instant::now();
        ctx.queue.submit([enc.finish()]);
        ctx.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Driver(e.to_string()))?;
        let seconds = match &timer {
            Some(t) => t.read(ctx, 1)?.as_secs_f64(),
            None => clock.elapsed().as_secs_f64(),
        };
        if rep > 0 {
            best = best.min(seconds);
        }
    }
    ctx.check_errors()?;
    Ok(best)
}

/// FMA rate in `real`: flop/s, after checking every invocation's result against the twin
/// (which depends on the invocation only through i mod 97; f32: the recurrence contracts,
/// so rounding stays near eps / (1 − m) ≈ 6e-5 relative).
fn fma_rate(ctx: &GpuContext, f64: bool, reps: usize) -> Result<f64, GpuError> {
    let s = sizes(ctx);
    let real = if f64 { "f64" } else { "f32" };
    let wgsl = fma_wgsl(real, s.iterations).map_err(|e| GpuError::Unsupported(e.to_string()))?;
    let l = bind_group_layout(
        ctx,
        "peak fma",
        &[
            Binding::Storage { read_only: true },
            Binding::Storage { read_only: false },
        ],
    );
    let pipeline = ctx.pipeline("gpu/peak_fma", &wgsl, &pipeline_layout(ctx, &l), f64)?;
    let width = if f64 { 8 } else { 4 };
    let coefficients: Vec<u8> = if f64 {
        bytemuck::cast_slice(&[M, C]).to_vec()
    } else {
        bytemuck::cast_slice(&[M as f32, C as f32, 0.0, 0.0]).to_vec()
    };
    let coeff = buffer(ctx, "peak coefficients", 16, U::STORAGE | U::COPY_DST);
    ctx.queue.write_buffer(&coeff, 0, &coefficients);
    let invocations = 64 * s.groups.0 as u64 * s.groups.1 as u64;
    let out = buffer(
        ctx,
        "peak out",
        width * invocations,
        U::STORAGE | U::COPY_SRC,
    );
    let group = bind_group_of(
        ctx,
        "peak fma",
        &l,
        vec![coeff.as_entire_binding(), out.as_entire_binding()],
    );
    let seconds = time_dispatch(ctx, &pipeline, &group, s.groups, reps)?;
    let bytes = read_bytes(ctx, &out, width * invocations)?;
    let got: Vec<f64> = if f64 {
        bytemuck::cast_slice::<u8, f64>(&bytes).to_vec()
    } else {
        bytemuck::cast_slice::<u8, f32>(&bytes)
            .iter()
            .map(|&v| v as f64)
            .collect()
    };
    let tolerance = if f64 { 1e-9 } else { 1e-3 };
    let twin: Vec<f64> = (0..97).map(|i| fma_twin(i, s.iterations)).collect();
    for (i, g) in got.iter().enumerate() {
        let want = twin[i % 97];
        if (g - want).abs() > tolerance * want.abs() {
            return Err(GpuError::Driver(format!(
                "peak self-check failed: {real} invocation {i} gave {g}, the twin {want}"
            )));
        }
    }
    Ok(invocations as f64 * (CHAINS * 4 * 2 * s.iterations) as f64 / seconds)
}

/// Copy bandwidth in bytes/s, after checking the copy.
fn copy_rate(ctx: &GpuContext, reps: usize) -> Result<f64, GpuError> {
    let bytes = sizes(ctx).copy_bytes / 16 * 16;
    let l = bind_group_layout(
        ctx,
        "peak copy",
        &[
            Binding::Storage { read_only: true },
            Binding::Storage { read_only: false },
        ],
    );
    let wgsl =
        compose("gpu/peak_copy.wgsl", &[]).map_err(|e| GpuError::Unsupported(e.to_string()))?;
    let pipeline = ctx.pipeline("gpu/peak_copy", &wgsl, &pipeline_layout(ctx, &l), false)?;
    let src = buffer(ctx, "peak source", bytes, U::STORAGE | U::COPY_DST);
    let pattern: Vec<f32> = (0..(1 << 16)).map(|k| k as f32).collect();
    for offset in (0..bytes).step_by(4 << 16) {
        let n = ((bytes - offset) / 4).min(1 << 16) as usize;
        ctx.queue
            .write_buffer(&src, offset, bytemuck::cast_slice(&pattern[..n]));
    }
    let dst = buffer(ctx, "peak destination", bytes, U::STORAGE | U::COPY_SRC);
    let group = bind_group_of(
        ctx,
        "peak copy",
        &l,
        vec![src.as_entire_binding(), dst.as_entire_binding()],
    );
    let groups = ((bytes / 16 / 64) as u32).clamp(1, 4096);
    let seconds = time_dispatch(ctx, &pipeline, &group, (groups, 1), reps)?;
    let copied = read_bytes(ctx, &dst, bytes)?;
    let values: &[f32] = bytemuck::cast_slice(&copied);
    if let Some(k) = (0..values.len()).find(|&k| values[k] != (k % (1 << 16)) as f32) {
        return Err(GpuError::Driver(format!(
            "peak self-check failed: the copy's float {k} is {}",
            values[k]
        )));
    }
    Ok(2.0 * bytes as f64 / seconds)
}

/// Measures the ceilings: the best of `reps` timed dispatches of each microkernel.
pub fn measure(ctx: &GpuContext, reps: usize) -> Result<Peak, GpuError> {
    let reps = reps.max(1);
    Ok(Peak {
        f32_flops: fma_rate(ctx, false, reps)?,
        f64_flops: if ctx.has_f64() {
            Some(fma_rate(ctx, true, reps)?)
        } else {
            None
        },
        bytes_per_s: copy_rate(ctx, reps)?,
        timestamps: ctx.has_timestamps(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The twin starts where the kernel does and contracts to the fixed point
    /// c / (1 − m) = 1 in each of the 32 components.
    #[test]
    fn fma_twin_starts_at_the_chain_starts_and_converges_to_one() {
        let starts: f64 = (0..CHAINS)
            .flat_map(|j| (0..4).map(move |q| chain_start(0.05, j, q)))
            .sum();
        assert!((fma_twin(5, 0) - starts).abs() < 1e-12);
        assert!((fma_twin(5, 100_000) - 32.0).abs() < 1e-9);
    }
}
