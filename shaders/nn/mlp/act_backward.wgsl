// g = g · act'(pre), element-wise: the gradient through a layer's activation.
//
// Filled in by nn::mlp::gpu: DACT (fn dact(x: f32) -> f32, the derivative).

struct Dims {
    len: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> pre: array<f32>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;

{{DACT}}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = (wg.y * groups.x + wg.x) * 64u + lane;
    if i < dims.len {
        g[i] = g[i] * dact(pre[i]);
    }
}
