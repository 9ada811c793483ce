// y = act(x · Wᵀ + b) for a batch: x [n, inputs], W [outputs, inputs] (PyTorch's layout),
// b [outputs]; the pre-activation is kept for the backward pass. 16×16 output tiles, with
// 16×16 tiles of x and W staged in workgroup memory.
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

var<workgroup> xs: array<array<f32, 16>, 16>;
var<workgroup> ws: array<array<f32, 16>, 16>;

{{ACT}}

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    // Row tiles beyond 65,535 continue in z.
    let row = (wg.y + wg.z * 65535u) * 16u + lid.y;
    let col = wg.x * 16u + lid.x;
    let w_row = wg.x * 16u + lid.y;
    var acc = 0.0;
    for (var k0 = 0u; k0 < dims.inputs; k0 += 16u) {
        let k = k0 + lid.x;
        xs[lid.y][lid.x] = select(0.0, x[row * dims.inputs + k], row < dims.n && k < dims.inputs);
        ws[lid.y][lid.x] = select(0.0, w[w_row * dims.inputs + k], w_row < dims.outputs && k < dims.inputs);
        workgroupBarrier();
        for (var j = 0u; j < 16u; j++) {
            acc += xs[lid.y][j] * ws[lid.x][j];
        }
        workgroupBarrier();
    }
    if row < dims.n && col < dims.outputs {
        let a = acc + b[col];
        pre[row * dims.outputs + col] = a;
        y[row * dims.outputs + col] = act(a);
    }
}
