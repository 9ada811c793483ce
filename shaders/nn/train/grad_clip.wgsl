// Gradient clipping by global norm, in one workgroup: state[5] = ‖g‖ and state[4] =
// min(1, max_norm / ‖g‖), the factor adam.wgsl applies to every gradient.

struct Dims {
    len: u32,
    _p0: u32,
    _p1: u32,
    max_norm: f32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;

var<workgroup> sums: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lane: u32) {
    var acc = 0.0;
    for (var i = lane; i < dims.len; i += 256u) {
        acc += g[i] * g[i];
    }
    sums[lane] = acc;
    for (var half = 128u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if lane < half {
            sums[lane] += sums[lane + half];
        }
    }
    if lane == 0u {
        let norm = sqrt(sums[0]);
        state[5] = norm;
        state[4] = select(1.0, dims.max_norm / norm, norm > dims.max_norm);
    }
}
