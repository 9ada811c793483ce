// What DeepONet's two combine kernels (combine.wgsl for aligned data,
// combine_unaligned.wgsl) share: bindings, activations (ACT), data rows, and the
// nets' backward passes.

#include "nn/mlp/fused_step.wgsl"

@group(0) @binding(0) var<uniform> sb: Step;
@group(0) @binding(1) var<uniform> st: Step;
// The branch's parameters, and the trunk's followed by b0.
{{PARAMS}}
@group(0) @binding(4) var<storage, read> targets: array<f32>;
@group(0) @binding(5) var<storage, read> order_b: array<u32>;
@group(0) @binding(6) var<storage, read> order_t: array<u32>;
@group(0) @binding(7) var<storage, read_write> hb: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> ht: array<vec4<f32>>;
// Training: [Σ (G − target)², Σ dG per output] per row task (per sample, unaligned).
// Prediction: G.
@group(0) @binding(9) var<storage, read_write> out: array<f32>;

{{ACT}}

#include "nn/deeponet/rows.wgsl"

// Training: the backward passes of the branch (aligned: the functions s + k · sb.n /
// PER_LANE of the row task, sharing each weight load; unaligned: sample s) and the trunk
// (the points of the column task, or the same sample) from the output δ the combine task
// has just written, in the same invocation: fused_backward.wgsl's bodies with their
// bindings renamed (nn::deeponet::pair). Prediction: empty.
fn branch_backward(s: u32, lane: u32) {
    let n = sb.n;
{{BRANCH_BACKWARD}}
}

fn trunk_backward(s: u32, lane: u32) {
    let n = st.n;
{{TRUNK_BACKWARD}}
}
