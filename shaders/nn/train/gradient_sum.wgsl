// Adds the per-split partial gradients of mlp/fused_weight_grad.wgsl and deeponet/weight_grad.wgsl: g[i] = Σ_k part[k·len + i].

struct Dims {
    len: u32,
    splits: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = (wg.y * groups.x + wg.x) * 64u + lane;
    if i >= dims.len {
        return;
    }
    var acc = 0.0;
    for (var k = 0u; k < dims.splits; k++) {
        acc += part[k * dims.len + i];
    }
    g[i] = acc;
}
