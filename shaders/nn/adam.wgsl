// One Adam step (Kingma & Ba 2015) with bias correction and decoupled weight decay
// (AdamW, Loshchilov & Hutter 2019) for every element of one parameter tensor; plain SGD
// when beta1 = beta2 = 0 and eps = 1 (then the update is lr · g).

struct Step {
    len: u32,
    t: u32,          // step number, from 1
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    clip: u32,       // 1: g is first multiplied by state[4] (grad_clip.wgsl)
    sgd: u32,        // 1: plain SGD (with momentum beta1)
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> state: array<f32>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let i = (wg.y * groups.x + wg.x) * 64u + lane;
    if i >= step.len {
        return;
    }
    let g = grad[i] * select(1.0, state[4], step.clip == 1u);
    var p = param[i] * (1.0 - step.lr * step.weight_decay);
    if step.sgd == 1u {
        let mi = step.beta1 * m[i] + g;
        m[i] = mi;
        p -= step.lr * mi;
    } else {
        let mi = step.beta1 * m[i] + (1.0 - step.beta1) * g;
        let vi = step.beta2 * v[i] + (1.0 - step.beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        let mhat = mi / (1.0 - pow(step.beta1, f32(step.t)));
        let vhat = vi / (1.0 - pow(step.beta2, f32(step.t)));
        p -= step.lr * mhat / (sqrt(vhat) + step.eps);
    }
    param[i] = p;
}
