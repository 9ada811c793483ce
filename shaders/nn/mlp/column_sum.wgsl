// c[j] = Σ_r a[r, j] for a [rows, cols]: one workgroup per column, 64 lanes over strided
// rows, then a tree in workgroup memory. The bias gradient is the column sum of dA.

struct Dims {
    rows: u32,
    cols: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;

var<workgroup> sums: array<f32, 64>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let j = wg.x;
    var acc = 0.0;
    for (var r = lane; r < dims.rows; r += 64u) {
        acc += a[r * dims.cols + j];
    }
    sums[lane] = acc;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if lane < s {
            sums[lane] += sums[lane + s];
        }
        workgroupBarrier();
    }
    if lane == 0u {
        c[j] = sums[0];
    }
}
