// DeepONet's product of the two nets on the aligned (Cartesian-product) layout:
// G[f, y, c] = b0[c] + Σ_i B[f, bc(c, i)] · T[y, tc(c, i)] for every function f of the
// batch and every point y, read from the fused forward passes' scratch or output copies
// (feature-major rows of vec4; the branch output's and trunk output's activations are
// applied here).
//
// Training (TRAIN = true): "row tasks" over functions and "column tasks" over points, each
// going on with its net's backward pass; both recompute G instead of sharing it, which
// costs one extra product of the two small outputs and saves a dispatch and a
// [functions, points] buffer. With the MSE loss, dL/dG = 2 (G − target) / count. A row
// task writes the branch's output δ, dL/dB[f] = Σ_y dG[f, y] T[y], and its partial sums
// (Σ (G − target)², Σ dG per output) for weight_grad.wgsl; a column task writes the
// trunk's output δ, dL/dT[y] = (Σ_f dG[f, y] B[f]) · act'(z). The nets' backward passes
// take it from there (one dispatch fewer than a separate backward kernel: on lavapipe
// 0.03 – 0.05 ms a step).
//
// Prediction (TRAIN = false): row tasks only; each writes G[f, ·, ·] to `out`.
//
// Each invocation runs PER_LANE functions (points) as the forward kernel does: invocation
// i of the row tasks the functions i + s · sb.n / PER_LANE (s < PER_LANE), so that each
// quad of the other net's output it loads serves PER_LANE products. That quad, the same
// for every invocation of a subgroup at each step of the loop, is loaded a quad per lane
// and handed round with subgroupBroadcast (as in fused_forward.wgsl), and the data row of
// each step (`point_row` / `function_row`, a load from the sampler's order) is loaded
// eight steps at a time, one per lane, and handed round with subgroupShuffle: on CPU
// adapters every load is a loop over the lanes (docs/performance.md, "where a DeepONet
// step goes"). Without subgroups each invocation loads them all
// (nn::mlp::fused::LaneSharing::Loads).
//
// With output copies (CPU adapters: DeepONetLayout::output_copies), each net's output rows
// come from a uniform array the forward kernel has filled (ob, ot) instead of the scratch,
// and every lane loads the other net's quads itself: on lavapipe a uniform load is a gather
// within registers, where a storage load is a loop over the lanes with a store-to-load stall
// per lane and component (docs/performance.md, "where the CPU time goes").
//
// Filled in by nn::deeponet::kernels: PARAMS (the parameters' bindings pb and pt, storage
// or uniform: DeepONetLayout::params_bindings), OUTPUTS (the output copies' bindings ob
// and ot, or nothing: DeepONetLayout::output_bindings), ACT (fn branch_out4 /
// trunk_out4 and their derivatives), TRAIN, K (outputs), PER_LANE (nn::deeponet::pair's constant), BIASES
// (b0 from pt), ROW_START / COLUMN_START (each slot's sample, data row, the other
// output's activations and accumulators), ROWS_T / ROWS_B (the shared data rows of eight
// steps) and ROW_T / ROW_B (this step's), LOAD_T / LOAD_B (the shared output loads),
// ROW_BODY, COLUMN_BODY (the unrolled products, a block per slot), ROW_END and
// COLUMN_END (each slot's δ and partial sums), BRANCH_BACKWARD and TRUNK_BACKWARD, WG
// (invocations per workgroup), LANE_ID (nn::mlp::fused::LaneSharing).

#include "nn/deeponet/combine_head.wgsl"

{{OUTPUTS}}

fn row_task(i: u32, lane: u32) {
    let half = sb.n / {{PER_LANE}}u;
    let factor = 2.0 / f32(sb.batch * st.batch * {{K}}u);
{{ROW_START}}
{{BIASES}}
    for (var first = 0u; first < st.batch; first += 8u) {
{{ROWS_T}}
        let count = min(8u, st.batch - first);
        for (var j = 0u; j < count; j++) {
            let y = first + j;
{{ROW_T}}
{{LOAD_T}}
{{ROW_BODY}}
        }
    }
{{ROW_END}}
}

fn column_task(i: u32, lane: u32) {
    let half = st.n / {{PER_LANE}}u;
    let factor = 2.0 / f32(sb.batch * st.batch * {{K}}u);
{{COLUMN_START}}
{{BIASES}}
    for (var first = 0u; first < sb.batch; first += 8u) {
{{ROWS_B}}
        let count = min(8u, sb.batch - first);
        for (var j = 0u; j < count; j++) {
            let f = first + j;
{{ROW_B}}
{{LOAD_B}}
{{COLUMN_BODY}}
        }
    }
{{COLUMN_END}}
}

@compute @workgroup_size({{WG}})
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    {{LANE_ID}}
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    // sb.n and st.n are multiples of WG · PER_LANE, so both branches are uniform per
    // subgroup. Samples past a batch (the padding) write zero δ and partial sums, which
    // nothing reads.
    let task = gid.x;
    let lane = lane_id & 7u;
    let rows = sb.n / {{PER_LANE}}u;
    let columns = st.n / {{PER_LANE}}u;
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
