// The backward pass of a whole MLP for the activation gradients, in one dispatch: each
// invocation runs the samples it ran forward, from the loss back to the first layer (and
// into the Fourier encoding when B is trained). δ_l = dL/dz_l is stored in `h` beside the
// forward pass's values; the weight gradients are sums over samples of δ_l ⊗ a_(l-1) and
// are made by fused_weight_grad.wgsl. Weights are shared through the subgroup (GPUs) or
// read from uniform windows (CPU adapters) as in fused_forward.wgsl, here along columns
// (Wᵀ δ).
//
// Filled in by nn::mlp::fused: PARAMS (as in fused_forward.wgsl, further windows from
// binding 6), ACT (fn act / act4 / dact4 and the output layer's), BODY, LANE_ID (as in
// fused_forward.wgsl).

#include "nn/mlp/fused_step.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
{{PARAMS}}
@group(0) @binding(2) var<storage, read> targets: array<f32>;
@group(0) @binding(3) var<storage, read> order: array<u32>;
@group(0) @binding(4) var<storage, read_write> h: array<vec4<f32>>;
// [sum (y - t)², sum t², loss, dL/dy factor, ...] from fused_loss.wgsl.
@group(0) @binding(5) var<storage, read> state: array<f32>;

{{ACT}}

#include "nn/mlp/fused_rows.wgsl"

@compute @workgroup_size(64)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    {{LANE_ID}}
) {
    let s = gid.x;
    let n = step.n;
    let lane = lane_id & 7u;
    let factor = state[3];
{{BODY}}
}
