// y = act(x · Wᵀ + b), one invocation per output element with no workgroup memory: the
// form for CPU adapters (lavapipe), where workgroup barriers are costly and caches do what
// the tiles of linear_forward.wgsl do on a GPU. Same bindings and results.
//
// Filled in by nn::mlp::gpu: ACT (fn act(x: f32) -> f32).

struct Dims {
    n: u32,
    inputs: u32,
    outputs: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> pre: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

{{ACT}}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let id = (wg.y * groups.x + wg.x) * 64u + lane;
    if id >= dims.n * dims.outputs {
        return;
    }
    let row = id / dims.outputs;
    let col = id % dims.outputs;
    var acc = 0.0;
    for (var k = 0u; k < dims.inputs; k++) {
        acc += x[row * dims.inputs + k] * w[col * dims.inputs + k];
    }
    let a = acc + b[col];
    pre[id] = a;
    y[id] = act(a);
}
