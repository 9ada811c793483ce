// The forward passes of DeepONet's branch net (one invocation per PER_LANE functions of
// the batch) and trunk net (per PER_LANE points) in one dispatch: the first
// sb.n / PER_LANE invocations run the branch, the next st.n / PER_LANE the trunk. Each
// body is fused_forward.wgsl's for that net (nn::mlp::fused::forward_body) with its
// bindings renamed (p → pb, x → xb, h → hb, step → sb, and t for the trunk;
// nn::deeponet::pair). One dispatch instead of two saves lavapipe a
// dispatch's fixed cost, 0.03 – 0.05 ms, a fifth of a small net's pass.
// Prediction dispatches only the branch's workgroups when the trunk has already run.
//
// Filled in by nn::deeponet::pair: PARAMS (the parameters' bindings pb and pt, storage or
// uniform: DeepONetLayout::params_bindings), OUTPUTS (the buffers the nets' output rows go
// to instead of the scratch, ob and ot, for the combine kernel to read as uniforms, or
// nothing: DeepONetLayout::output_bindings), ACT (each net's activations, prefixed),
// BRANCH and TRUNK (the bodies), WG (invocations per workgroup), PER_LANE (samples per invocation,
// nn::deeponet::pair's constant; sb.n and st.n are multiples of WG · PER_LANE),
// LANE_ID (nn::mlp::fused::LaneSharing).

#include "nn/mlp/fused_step.wgsl"

@group(0) @binding(0) var<uniform> sb: Step;
@group(0) @binding(1) var<uniform> st: Step;
{{PARAMS}}
@group(0) @binding(4) var<storage, read> xb: array<f32>;
@group(0) @binding(5) var<storage, read> xt: array<f32>;
@group(0) @binding(6) var<storage, read> order_b: array<u32>;
@group(0) @binding(7) var<storage, read> order_t: array<u32>;
@group(0) @binding(8) var<storage, read_write> hb: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> ht: array<vec4<f32>>;
{{OUTPUTS}}

{{ACT}}

#include "nn/deeponet/rows.wgsl"

fn branch_forward(s: u32, lane: u32) {
    let n = sb.n;
{{BRANCH}}
}

fn trunk_forward(s: u32, lane: u32) {
    let n = st.n;
{{TRUNK}}
}

@compute @workgroup_size({{WG}})
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    {{LANE_ID}}
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    // Both branches are uniform per subgroup; no early return, every invocation takes part
    // in the broadcasts. Invocation s of a net runs its samples s + k · n / PER_LANE.
    let task = gid.x;
    let lane = lane_id & 7u;
    if wg.x * {{WG}}u < sb.n / {{PER_LANE}}u {
        branch_forward(task, lane);
    } else {
        trunk_forward(task - sb.n / {{PER_LANE}}u, lane);
    }
}
