// The loss of a batch from the forward pass's output pre-activations, in one workgroup
// (a loop over the batch, then one tree reduction): state = [Σ (y − t)², Σ t², loss,
// dL/dy factor]. MSE: loss = Σ (y − t)² / count, factor 2 / count. Relative L2:
// loss = ‖y − t‖ / ‖t‖, factor 1 / (‖y − t‖ ‖t‖). The backward pass reads the factor; the
// host reads the loss only when it asks.
//
// Filled in by nn::mlp::fused: ACT (fn act_out), OUTPUTS, Z_ROW (first row of the output
// layer's z), RELATIVE (true for relative L2).

#include "nn/mlp/fused_step.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> targets: array<f32>;
@group(0) @binding(2) var<storage, read> order: array<u32>;
@group(0) @binding(3) var<storage, read> h: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;

#include "nn/mlp/fused_rows.wgsl"

{{ACT}}

var<workgroup> err: array<f32, 256>;
var<workgroup> norm: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lane: u32) {
    let outputs = {{OUTPUTS}}u;
    var se = 0.0;
    var tt = 0.0;
    for (var k = lane; k < step.batch * outputs; k += 256u) {
        let s = k / outputs;
        let o = k % outputs;
        let r = data_row(s);
        let y = act_out(h[({{Z_ROW}}u + o / 4u) * step.n + s][o % 4u]);
        let t = targets[o * step.m + r];
        se += (y - t) * (y - t);
        tt += t * t;
    }
    err[lane] = se;
    norm[lane] = tt;
    for (var half = 128u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if lane < half {
            err[lane] += err[lane + half];
            norm[lane] += norm[lane + half];
        }
    }
    if lane == 0u {
        let e = err[0];
        let t = norm[0];
        state[0] = e;
        state[1] = t;
        if {{RELATIVE}} {
            state[2] = sqrt(e / t);
            state[3] = select(0.0, 1.0 / (sqrt(e) * sqrt(t)), e > 0.0);
        } else {
            let count = f32(step.batch * outputs);
            state[2] = e / count;
            state[3] = 2.0 / count;
        }
    }
}
