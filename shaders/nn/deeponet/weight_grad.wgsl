// Everything DeepONet's gradient still needs after the backward passes, in one dispatch:
// workgroup 0 adds up the combine kernel's per-function partial sums (the batch's loss
// into `state`, as fused_loss.wgsl writes it: [Σ (G − target)², 0, loss, dL/dG factor],
// and b0's gradient), and the other workgroups run the weight-gradient tasks of the
// branch, then of the trunk (fused_weight_grad.wgsl's groups, renamed as in
// forward.wgsl). y of the dispatch runs over splits of the samples; with more
// than one split, `g` holds one copy of the gradient per split, which train/gradient_sum.wgsl
// adds up (the loss workgroup writes b0's sums into copy 0; the other copies' b0 stays 0).
//
// Filled in by nn::deeponet::pair: ACT, K (outputs), COUNT (values in the batch's loss:
// functions × points × outputs, or samples × outputs for unaligned data, where the per-
// function sums above are per sample), BIAS (float offset of b0), LEN
// (floats per gradient copy), TRUNK_OFF (float offset of the trunk's region), TB and TT
// (the branch's and the trunk's tasks), BRANCH and TRUNK (their group functions),
// BRANCH_DISPATCH and TRUNK_DISPATCH (task → group chains; the trunk's reads its task as
// `u` and its gradient copy at `trunk_base`), WG, LANE_IDS, TASK, LANE and CLUSTER (the
// task's numbering and its lane and cluster within the subgroup, or the workgroup's
// numbering without subgroups: nn::mlp::fused::LaneSharing).
//
// The samples of a split start at a multiple of 8 (each net's per_split is one): the
// group functions run blocks of eight samples, and samples past the batch have δ = 0.

#include "nn/mlp/fused_step.wgsl"

@group(0) @binding(0) var<uniform> sb: Step;
@group(0) @binding(1) var<uniform> st: Step;
@group(0) @binding(2) var<storage, read> hb: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> ht: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> g: array<f32>;
// [Σ (G − target)², Σ dG per output] per function, from combine.wgsl.
@group(0) @binding(5) var<storage, read> partial: array<f32>;
@group(0) @binding(6) var<storage, read_write> state: array<f32>;
var<workgroup> sums: array<f32, {{WG}}>;

{{ACT}}

{{BRANCH}}

{{TRUNK}}

fn add_partial_sums(lane: u32) {
    for (var j = 0u; j < {{K}}u + 1u; j++) {
        var acc = 0.0;
        for (var f = lane; f < sb.batch; f += {{WG}}u) {
            acc += partial[f * ({{K}}u + 1u) + j];
        }
        sums[lane] = acc;
        for (var half = {{WG}}u / 2u; half > 0u; half >>= 1u) {
            workgroupBarrier();
            if lane < half {
                sums[lane] += sums[lane + half];
            }
        }
        workgroupBarrier();
        if lane == 0u {
            let total = sums[0];
            if j == 0u {
                let count = f32({{COUNT}});
                state[0] = total;
                state[2] = total / count;
                state[3] = 2.0 / count;
            } else {
                g[{{BIAS}}u + j - 1u] = total;
            }
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size({{WG}})
fn main(
    @builtin(local_invocation_index) local: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
    {{LANE_IDS}}
) {
    if wg.x == 0u {
        if wg.y == 0u {
            add_partial_sums(local);
        }
        return;
    }
    // Tasks are numbered along the subgroups, so that each cluster of eight lanes holds
    // eight consecutive tasks (of one output block: every group has a multiple of 8
    // tasks) whatever the subgroup size, as in fused_weight_grad.wgsl. No early return:
    // the lanes of a cluster share their δ loads.
    let t = {{TASK}};
    let lane = {{LANE}};
    let cl = {{CLUSTER}};
    let base = wg.y * {{LEN}}u;
    if t < {{TB}}u {
        let s0 = wg.y * sb.per_split;
        let s1 = min(s0 + sb.per_split, sb.batch);
{{BRANCH_DISPATCH}}
    } else if t < {{TB}}u + {{TT}}u {
        let s0 = wg.y * st.per_split;
        let s1 = min(s0 + st.per_split, st.batch);
        let u = t - {{TB}}u;
        let trunk_base = base + {{TRUNK_OFF}}u;
{{TRUNK_DISPATCH}}
    }
}
