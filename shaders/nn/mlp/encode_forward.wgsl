// Fourier features: z = scale · x B (x [n, inputs], B [inputs, features]) and
// h = [cos z, sin z] ([n, 2·features], cosines first); z is kept for the backward pass.
// One invocation per (sample, feature).

struct Dims {
    n: u32,
    inputs: u32,
    features: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> bm: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<f32>;
@group(0) @binding(4) var<storage, read_write> h: array<f32>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let id = (wg.y * groups.x + wg.x) * 64u + lane;
    if id >= dims.n * dims.features {
        return;
    }
    let row = id / dims.features;
    let f = id % dims.features;
    var acc = 0.0;
    for (var i = 0u; i < dims.inputs; i++) {
        acc += x[row * dims.inputs + i] * bm[i * dims.features + f];
    }
    let zf = dims.scale * acc;
    z[id] = zf;
    h[row * 2u * dims.features + f] = cos(zf);
    h[row * 2u * dims.features + dims.features + f] = sin(zf);
}
