// Weight and bias gradients of every layer in one dispatch: sums over the samples of
// δ_l ⊗ a_(l-1) (and of δ_l for the bias). One invocation per task: 8 outputs × 8 inputs
// of one layer, over one split of the samples (nn::mlp::fused::blocked_group; tasks of 8 × 4
// took 15% longer on lavapipe); x of the dispatch runs over tasks, y over splits. Each
// split writes its partial sums to its own copy of the gradient vector (`g` at
// split · LEN), which train/gradient_sum.wgsl adds up; with one split `g` is the gradient itself.
//
// Filled in by nn::mlp::fused: ACT (fn act4), LEN (floats per gradient vector), BODY (one
// function per layer), DISPATCH (the task → layer chain), LANE_IDS and TASK (subgroup
// numbering, or the workgroup's without subgroups: nn::mlp::fused::LaneSharing).

#include "nn/mlp/fused_step.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> h: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;

{{ACT}}

{{BODY}}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    {{LANE_IDS}}
) {
    // Tasks are numbered along the subgroups, so that each cluster of eight lanes holds
    // eight consecutive tasks (those of one output block) whatever the subgroup size
    // (nn::mlp::fused::task). No early return: the lanes of a cluster share their loads.
    // Each layer has a multiple of 8 tasks.
    let t = {{TASK}};
    let lane = lane_id & 7u;
    let cl = lane_id & ~7u;
    let s0 = wg.y * step.per_split;
    let s1 = min(s0 + step.per_split, step.batch);
    let base = wg.y * {{LEN}}u;
{{DISPATCH}}
}
