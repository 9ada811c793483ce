// C = op(A) · op(B) for row-major f32 matrices, in 16×16 output tiles with 16×16 tiles of
// A and B staged in workgroup memory. The backward pass uses two forms:
//   NN: C[m, p] = A[m, k] · B[k, p]        (dX = dA · W)
//   TN: C[m, p] = A[k, m]ᵀ · B[k, p]       (dW = dAᵀ · X, summing over the batch)
// C is overwritten, or accumulated into when `accumulate` is 1.
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

var<workgroup> as_: array<array<f32, 16>, 16>;
var<workgroup> bs: array<array<f32, 16>, 16>;

fn a_at(row: u32, kk: u32) -> f32 {
    return {{A_AT}};
}

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row = (wg.y + wg.z * 65535u) * 16u + lid.y;
    let col = wg.x * 16u + lid.x;
    var acc = 0.0;
    for (var k0 = 0u; k0 < dims.k; k0 += 16u) {
        let ka = k0 + lid.x;
        let kb = k0 + lid.y;
        as_[lid.y][lid.x] = select(0.0, a_at(row, ka), row < dims.m && ka < dims.k);
        bs[lid.y][lid.x] = select(0.0, b[kb * dims.p + col], kb < dims.k && col < dims.p);
        workgroupBarrier();
        for (var j = 0u; j < 16u; j++) {
            acc += as_[lid.y][j] * bs[j][lid.x];
        }
        workgroupBarrier();
    }
    if row < dims.m && col < dims.p {
        let at = row * dims.p + col;
        if dims.accumulate == 1u {
            c[at] += acc;
        } else {
            c[at] = acc;
        }
    }
}
