// One Adam step (Kingma & Ba 2015) with bias correction and decoupled weight decay
// (AdamW, Loshchilov & Hutter 2019) for every element of one parameter tensor, or plain
// SGD with momentum beta1 when `sgd` is 1. Host side: Optimizer::adam_words writes `Step`,
// Optimizer::apply is the CPU twin (src/nn/train/optimizer.rs).

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

// Each invocation updates PER consecutive elements: on CPU adapters the fixed cost of an
// invocation (and of a workgroup) outweighs the update itself. nn::train::optimizer::adam_grid sizes
// the dispatch.
const PER: u32 = 4u;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let first = ((wg.y * groups.x + wg.x) * 64u + lane) * PER;
    let scale = select(1.0, state[4], step.clip == 1u);
    let decay = 1.0 - step.lr * step.weight_decay;
    let c1 = 1.0 - pow(step.beta1, f32(step.t));
    let c2 = 1.0 - pow(step.beta2, f32(step.t));
    for (var i = first; i < min(first + PER, step.len); i++) {
        let g = grad[i] * scale;
        var p = param[i] * decay;
        if step.sgd == 1u {
            let mi = step.beta1 * m[i] + g;
            m[i] = mi;
            p -= step.lr * mi;
        } else {
            let mi = step.beta1 * m[i] + (1.0 - step.beta1) * g;
            let vi = step.beta2 * v[i] + (1.0 - step.beta2) * g * g;
            m[i] = mi;
            v[i] = vi;
            p -= step.lr * (mi / c1) / (sqrt(vi / c2) + step.eps);
        }
        param[i] = p;
    }
}
