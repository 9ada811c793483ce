// DeepONet's product of the two nets on the aligned (Cartesian-product) layout:
// G[f, y, c] = b0[c] + Σ_i B[f, bc(c, i)] · T[y, tc(c, i)] for every function f of the
// batch and every point y, read from the fused forward passes' scratch (feature-major
// rows of vec4; the branch output's and trunk output's activations are applied here).
//
// Training (TRAIN = true): one invocation per function ("row task") and one per point
// ("column task"), each going on with its net's backward pass; both recompute G instead of sharing it, which costs one extra product
// of the two small outputs and saves a dispatch and a [functions, points] buffer. With the
// MSE loss, dL/dG = 2 (G − target) / count. A row task writes the branch's output δ,
// dL/dB[f] = Σ_y dG[f, y] T[y], and its partial sums (Σ (G − target)², Σ dG per output) for
// weight_grad.wgsl; a column task writes the trunk's output δ,
// dL/dT[y] = (Σ_f dG[f, y] B[f]) · act'(z). The nets' backward passes take it from there
// (one dispatch fewer than a separate backward kernel: on lavapipe 0.03 – 0.05 ms a step).
//
// Prediction (TRAIN = false): row tasks only; each writes G[f, ·, ·] to `out`.
//
// The other net's output, the same for every invocation of a subgroup at each step of the
// loop, is loaded a quad per lane and handed round with subgroupBroadcast (as in
// fused_forward.wgsl): on CPU adapters every load is a loop over the lanes, and this
// makes ceil(quads / 8) loads of what would be `quads`. Without subgroups each invocation
// loads them all (nn::mlp::fused::LaneSharing::Loads).
//
// Filled in by nn::deeponet::kernels: ACT (fn branch_out4 / trunk_out4 and their
// derivatives), TRAIN, K (outputs), BQ / TQ (quads of the branch and trunk outputs), ZB and
// ZT / DT (first scratch rows of z of each net's output layer, and of δ of the trunk's),
// BIASES (b0 from pt),
// DECLARE, LOAD_T / LOAD_B (the shared loads), ROW_BODY, COLUMN_BODY (the unrolled
// products), ROW_END, BRANCH_BACKWARD and TRUNK_BACKWARD, WG (invocations per workgroup),
// LANE_ID (nn::mlp::fused::LaneSharing).

#include "nn/deeponet/combine_head.wgsl"

fn row_task(f: u32, lane: u32) {
    let live = f < sb.batch;
    let rf = function_row(f);
    let factor = 2.0 / f32(sb.batch * st.batch * {{K}}u);
    var b: array<vec4<f32>, {{BQ}}>;
    var acc: array<vec4<f32>, {{BQ}}>;
    for (var q = 0u; q < {{BQ}}u; q++) {
        b[q] = branch_out4(hb[({{ZB}}u + q) * sb.n + f]);
        acc[q] = vec4<f32>(0.0);
    }
    var sse = 0.0;
{{BIASES}}
{{DECLARE}}
    for (var y = 0u; y < st.batch; y++) {
{{LOAD_T}}
        let at = (rf * st.m + point_row(y)) * {{K}}u;
{{ROW_BODY}}
    }
{{ROW_END}}
}

fn column_task(y: u32, lane: u32) {
    let live = y < st.batch;
    let ry = point_row(y);
    let factor = 2.0 / f32(sb.batch * st.batch * {{K}}u);
    var t: array<vec4<f32>, {{TQ}}>;
    var acc: array<vec4<f32>, {{TQ}}>;
    for (var q = 0u; q < {{TQ}}u; q++) {
        t[q] = trunk_out4(ht[({{ZT}}u + q) * st.n + y]);
        acc[q] = vec4<f32>(0.0);
    }
{{BIASES}}
    for (var f = 0u; f < sb.batch; f++) {
{{LOAD_B}}
        let at = (function_row(f) * st.m + ry) * {{K}}u;
{{COLUMN_BODY}}
    }
    for (var q = 0u; q < {{TQ}}u; q++) {
        let z = ht[({{ZT}}u + q) * st.n + y];
        ht[({{DT}}u + q) * st.n + y] = select(vec4<f32>(0.0), acc[q] * dtrunk_out4(z), live);
    }
}

@compute @workgroup_size({{WG}})
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    {{LANE_ID}}
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    // Row tasks run to the branch's batch rounded up to WG, column tasks to the trunk's:
    // both branches are uniform per subgroup. Past them (the padding of the forward
    // kernel's PER_LANE samples per invocation) nothing reads δ or the partial sums.
    let task = gid.x;
    let lane = lane_id & 7u;
    let rows = (sb.batch + {{WG}}u - 1u) / {{WG}}u * {{WG}}u;
    let columns = (st.batch + {{WG}}u - 1u) / {{WG}}u * {{WG}}u;
    if wg.x * {{WG}}u < rows {
        row_task(task, lane);
        if {{TRAIN}} {
            branch_backward(task, lane);
        }
    } else if {{TRAIN}} && wg.x * {{WG}}u < rows + columns {
        column_task(task - rows, lane);
        trunk_backward(task - rows, lane);
    }
}
