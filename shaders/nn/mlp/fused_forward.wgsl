// The forward pass of a whole MLP, its Fourier encoding included, in one dispatch: each
// invocation runs a few samples (nn::mlp::fused::Scratch::per_lane) layer after layer.
// Activations live in `h` as rows of vec4, blocked by eight samples (nn::mlp::fused::Scratch),
// so each invocation reads and writes only its own samples and no barrier is needed
// between layers. On GPUs weights are shared through the subgroup: in each step lane k
// loads the weight quad of output o0 + k and subgroupBroadcast hands it to every lane,
// which uses it for each of its samples, so weights are read once per subgroup. On CPU
// adapters (lavapipe) the parameters are uniform windows instead and every lane loads each
// quad at the same index: there a uniform load is a gather within registers, a storage load
// a loop over the lanes with a store-to-load stall per lane and component
// (nn::mlp::fused::FusedLayout::uniform_params; docs/performance.md, "where the CPU time
// goes").
// Without subgroups each invocation loads the eight itself (LaneSharing::Loads, same
// results).
//
// The pass stores what the backward pass needs: the encoded input and every layer's
// pre-activation z (the activation is recomputed from z when it is read).
//
// Filled in by nn::mlp::fused: PARAMS (the parameters: storage binding p, or uniform
// windows p, p1, ... from binding 5: FusedLayout::params_bindings), ACT (fn act / act4),
// BODY (the layers, with their offsets), LANE_ID (the lane numbering the sharing uses).

#include "nn/mlp/fused_step.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
{{PARAMS}}
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> order: array<u32>;
@group(0) @binding(4) var<storage, read_write> h: array<vec4<f32>>;

{{ACT}}

#include "nn/mlp/fused_rows.wgsl"

@compute @workgroup_size(64)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    {{LANE_ID}}
) {
    // No early return: every invocation takes part in the broadcasts. The dispatch covers
    // exactly n / per_lane invocations (nn::mlp::fused::Scratch).
    let s = gid.x;
    let n = step.n;
    let lane = lane_id & 7u;
{{BODY}}
}
