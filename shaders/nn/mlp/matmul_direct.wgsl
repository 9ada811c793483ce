// C = op(A) · B, one invocation per element of C with no workgroup memory: the form for
// CPU adapters (see linear_forward_direct.wgsl). Same bindings and results as matmul.wgsl.
//
// Filled in by nn::mlp::gpu: A_AT (how element (row, kk) of the left factor is addressed).

struct Dims {
    m: u32,
    k: u32,
    p: u32,
    accumulate: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

fn a_at(row: u32, kk: u32) -> f32 {
    return {{A_AT}};
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let id = (wg.y * groups.x + wg.x) * 64u + lane;
    if id >= dims.m * dims.p {
        return;
    }
    let row = id / dims.p;
    let col = id % dims.p;
    var acc = 0.0;
    for (var kk = 0u; kk < dims.k; kk++) {
        acc += a_at(row, kk) * b[kk * dims.p + col];
    }
    if dims.accumulate == 1u {
        c[id] += acc;
    } else {
        c[id] = acc;
    }
}
