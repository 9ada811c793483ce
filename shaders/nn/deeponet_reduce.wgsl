// Adds deeponet_combine.wgsl's per-function partial sums: the batch's loss into `state`
// ([Σ (G − target)², 0, loss, dL/dG factor], as fused_loss.wgsl) and b0's gradient into
// `grad`. One workgroup; a strided loop over the functions, then a tree reduction per sum.
//
// Filled in by nn::deeponet_gpu: K (outputs), BIAS (float offset of b0 in grad).

#include "nn/fused_step.wgsl"

@group(0) @binding(0) var<uniform> sb: Step;
@group(0) @binding(1) var<uniform> st: Step;
@group(0) @binding(2) var<storage, read> partial: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;

var<workgroup> sums: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lane: u32) {
    for (var j = 0u; j < {{K}}u + 1u; j++) {
        var acc = 0.0;
        for (var f = lane; f < sb.batch; f += 64u) {
            acc += partial[f * ({{K}}u + 1u) + j];
        }
        sums[lane] = acc;
        for (var half = 32u; half > 0u; half >>= 1u) {
            workgroupBarrier();
            if lane < half {
                sums[lane] += sums[lane + half];
            }
        }
        workgroupBarrier();
        if lane == 0u {
            let total = sums[0];
            if j == 0u {
                let count = f32(sb.batch * st.batch * {{K}}u);
                state[0] = total;
                state[2] = total / count;
                state[3] = 2.0 / count;
            } else {
                grad[{{BIAS}}u + j - 1u] = total;
            }
        }
        workgroupBarrier();
    }
}
