// Weight and bias gradients of every layer in one dispatch: sums over the samples of
// δ_l ⊗ a_(l-1) (and of δ_l for the bias). One invocation per task: 8 outputs × 8 inputs
// (or 8 biases) of one layer, over one split of the samples (four loads per sample for 64
// products; with 8 × 4 it was three for 32, and the pass took 15% longer on lavapipe); x of the dispatch runs over
// tasks, y over splits. Each split writes its partial sums to its own copy of the
// gradient vector (`g` at split · LEN), which fused_reduce.wgsl adds up; with one split
// `g` is the gradient itself.
//
// Filled in by nn::fused: ACT (fn act4), LEN (floats per gradient vector), TASKS (the
// number of tasks), BODY (one function per layer), DISPATCH (the task → layer chain).

#include "nn/fused_step.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> h: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;

{{ACT}}

{{BODY}}

@compute @workgroup_size(64)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let t = gid.x;
    if t >= {{TASKS}}u {
        return;
    }
    let s0 = wg.y * step.per_split;
    let s1 = min(s0 + step.per_split, step.batch);
    let base = wg.y * {{LEN}}u;
{{DISPATCH}}
}
