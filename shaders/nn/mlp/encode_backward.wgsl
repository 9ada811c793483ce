// From the gradient of the features h = [cos z, sin z] to that of z (times the encoding's
// scale, so that dB = xᵀ · dz): dz = scale · (−dh_cos · sin z + dh_sin · cos z).

struct Dims {
    n: u32,
    features: u32,
    _p0: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> dh: array<f32>;
@group(0) @binding(3) var<storage, read_write> dz: array<f32>;

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
    let zf = z[id];
    let dcos = dh[row * 2u * dims.features + f];
    let dsin = dh[row * 2u * dims.features + dims.features + f];
    dz[id] = dims.scale * (-dcos * sin(zf) + dsin * cos(zf));
}
