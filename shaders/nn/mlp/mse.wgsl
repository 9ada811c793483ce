// Mean squared error: g = 2 (y − t) / count, element-wise, and the sum of (y − t)² per
// workgroup in `partial` (the host adds those up only when it wants the loss).

struct Dims {
    len: u32,
    _p0: u32,
    _p1: u32,
    inv_count: f32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<f32>;
@group(0) @binding(3) var<storage, read_write> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> partial: array<f32>;

var<workgroup> sums: array<f32, 64>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let group = wg.y * groups.x + wg.x;
    let i = group * 64u + lane;
    var d = 0.0;
    if i < dims.len {
        d = y[i] - t[i];
        g[i] = 2.0 * d * dims.inv_count;
    }
    sums[lane] = d * d;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if lane < s {
            sums[lane] += sums[lane + s];
        }
        workgroupBarrier();
    }
    if lane == 0u {
        partial[group] = sums[0];
    }
}
