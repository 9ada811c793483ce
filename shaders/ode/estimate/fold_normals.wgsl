// Folds one batch of an augmented run's saves (each row: the DIM states, then their
// sensitivities S[state][fitted quantity]) at the observation times into each
// trajectory's normal equations, in f64 whatever the run's precision, one invocation per
// trajectory: per observed value the weighted residual r = √w (u − y) and gradient row
// g = √w S add g·gᵀ to JᵀWJ (upper triangle), r·g to JᵀWr and r²/2 to the cost, in slot
// order and state order, as the host's fold (`lm::Normal::add`) does. The sums are the
// generated scalars a0, a1, ... (registers, not an indexed array) and wait in `sums`
// between batches; the chunk's last batch writes the output:
//   PER_TRAJECTORY: every trajectory's sums, [term][stride];
//   otherwise: every trajectory's cost [stride], then each workgroup's sums of its 64
//   trajectories [group][term], added as a fixed binary tree so that the same
//   trajectories always give the same bits.
// Terms: JᵀWJ's upper triangle row by row, then JᵀWr, then the cost.

struct Fold {
    // Row length of the run's per-trajectory buffers.
    stride: u32,
    // Trajectories of this chunk.
    len: u32,
    // Run-wide number of the batch's first save slot, and the batch's slots.
    slot0: u32,
    slots: u32,
    // 1 on the chunk's first batch (the sums start at zero) and on its last (write out).
    first: u32,
    last: u32,
    // Workgroups along x of the dispatch grid.
    groups_x: u32,
}

const DIM: u32 = {{DIM}}u;
const N_FIT: u32 = {{N_FIT}}u;
const COMPONENTS: u32 = DIM * (1u + N_FIT);
const TERMS: u32 = {{TERMS}}u;
const GROUP: u32 = 64u;
const PER_TRAJECTORY: bool = {{PER_TRAJECTORY}};
const NO_OBSERVATION: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> fold: Fold;
// The run's saved states: [slot in batch][stride][COMPONENTS].
@group(0) @binding(1) var<storage, read> saved: array<{{SAVED}}>;
// The chunk's observed values, [observation][state][stride].
@group(0) @binding(2) var<storage, read> observed: array<f64>;
// 1 where that value is observed with a positive weight, 0 where it is not.
@group(0) @binding(3) var<storage, read> counted: array<u32>;
// Each run-wide save slot's observation, or NO_OBSERVATION.
@group(0) @binding(4) var<storage, read> slot_observation: array<u32>;
// √w of each state.
@group(0) @binding(5) var<storage, read> sqrt_weight: array<f64>;
// The sums so far, [term][stride].
@group(0) @binding(6) var<storage, read_write> sums: array<f64>;
@group(0) @binding(7) var<storage, read_write> out: array<f64>;

var<workgroup> tree: array<f64, GROUP>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let group = wid.x + wid.y * fold.groups_x;
    if group * GROUP >= fold.len {
        return;
    }
    let j = group * GROUP + lane;
    let stride = fold.stride;
{{DECLARE}}
    if j < fold.len {
        if fold.first == 0u {
{{LOAD}}
        }
        for (var s = 0u; s < fold.slots; s++) {
            let o = slot_observation[fold.slot0 + s];
            if o == NO_OBSERVATION {
                continue;
            }
            let row_at = (s * stride + j) * COMPONENTS;
{{FOLD_STATES}}
        }
        if fold.last == 0u {
{{STORE_SUMS}}
        } else if PER_TRAJECTORY {
{{STORE_OUT}}
        } else {
            out[j] = {{COST}};
        }
    }
    if fold.last == 0u || PER_TRAJECTORY {
        return;
    }
    var acc: array<f64, TERMS>;
{{PACK}}
    for (var t = 0u; t < TERMS; t++) {
        tree[lane] = acc[t];
        workgroupBarrier();
        for (var half = GROUP / 2u; half > 0u; half /= 2u) {
            if lane < half {
                tree[lane] += tree[lane + half];
            }
            workgroupBarrier();
        }
        if lane == 0u {
            out[stride + group * TERMS + t] = tree[0];
        }
        workgroupBarrier();
    }
}
