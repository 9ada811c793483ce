// DeepONet's product of the two nets on unaligned data (one (u, y, G) sample per entry):
// G[s, c] = b0[c] + Σ_i B[s, bc(c, i)] · T[s, tc(c, i)], where batch entry s of the branch
// holds the sample's function and entry s of the trunk its location (both nets' batches
// are the same samples in the same order). Read from the fused forward passes' scratch;
// the output layers' activations are applied here.
//
// Training (TRAIN = true): with the MSE loss, dL/dG = 2 (G − target) / count. Each
// invocation writes its sample's output δ for both nets, dL/dB[s] = Σ_c dG[s, c] T[s]
// and dL/dT[s] = (Σ_c dG[s, c] B[s]) · act'(z), with no sums over other samples, and its
// partial sums (Σ (G − target)², dG per output) for weight_grad.wgsl; then both
// nets' backward passes for that sample, in the same invocation.
//
// Prediction (TRAIN = false): each invocation writes G[s, ·] to `out`.
//
// Filled in by nn::deeponet::kernels: PARAMS (the parameters' bindings pb and pt,
// DeepONetLayout::params_bindings), ACT, TRAIN, K (outputs), BQ / TQ (quads of the
// branch and trunk outputs), ZB / ZT (first scratch rows of z of each net's output layer),
// BIASES (b0 from pt), BODY (the unrolled products and δ sums), END (the writes),
// BRANCH_BACKWARD and TRUNK_BACKWARD, WG (invocations per workgroup), LANE_ID
// (nn::mlp::fused::LaneSharing).

#include "nn/deeponet/combine_head.wgsl"

fn sample_task(s: u32) {
    let live = s < sb.batch;
    let at = function_row(s) * {{K}}u;
    let factor = 2.0 / f32(sb.batch * {{K}}u);
    var b: array<vec4<f32>, {{BQ}}>;
    var t: array<vec4<f32>, {{TQ}}>;
    var acc_b: array<vec4<f32>, {{BQ}}>;
    var acc_t: array<vec4<f32>, {{TQ}}>;
    for (var q = 0u; q < {{BQ}}u; q++) {
        b[q] = branch_out4(hb[({{ZB}}u + q) * sb.n + s]);
        acc_b[q] = vec4<f32>(0.0);
    }
    for (var q = 0u; q < {{TQ}}u; q++) {
        t[q] = trunk_out4(ht[({{ZT}}u + q) * st.n + s]);
        acc_t[q] = vec4<f32>(0.0);
    }
    var sse = 0.0;
{{BIASES}}
{{BODY}}
{{END}}
}

@compute @workgroup_size({{WG}})
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    {{LANE_ID}}
) {
    let s = gid.x;
    let lane = lane_id & 7u;
    sample_task(s);
    if {{TRAIN}} {
        branch_backward(s, lane);
        trunk_backward(s, lane);
    }
}
