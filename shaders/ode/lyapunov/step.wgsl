// Lyapunov spectra over an ensemble (Benettin's method). One invocation integrates one
// trajectory through a window of steps with its state and k tangent vectors in registers:
// first the transient (state only), then the state and the tangent vectors together by the
// same explicit Runge–Kutta stages, re-orthonormalising the vectors by modified
// Gram–Schmidt every `renorm` steps and summing ln R_mm. The host never sees a step.
//
// Filled in by ode::lyapunov::kernel: REAL_LIB, WORKGROUP_SIZE, SYSTEM (State, Params, rhs,
// and the sparse Jacobian `jac`), STEP (rk_step for the transient; Tangent, Growth, Acc,
// aug_step, mgs and the block updates), ACCESS (loads and stores per component).
#include "common/status.wgsl"

{{REAL_LIB}}

{{SYSTEM}}
{{STEP}}
struct Window {
    n_traj: u32,       // trajectories in this chunk
    stride: u32,       // row length of the struct-of-arrays buffers (chunk capacity)
    step_begin: u32,   // first step of this window, counted from the start of the run
    step_end: u32,     // one past the last step of this window
    n_steps: u32,      // steps in the whole run (transient and averaging)
    n_transient: u32,  // steps of the transient
    renorm: u32,       // steps between re-orthonormalisations
    per_block: u32,    // re-orthonormalisations per block of the convergence estimate
    n_renorms: u32,    // re-orthonormalisations in the run
    n_blocks: u32,     // blocks in the run
    t0: real,
    dt: real,
    renorm_time: real, // renorm * dt
    inv_time: real,    // 1 / (averaging time)
    one: real,         // 1.0, for math_init (the f64 library's compiler barrier)
}

// Each storage binding's comment gives its layout, outermost index first; `ode::layout_check`
// holds them to the code that writes them.
@group(0) @binding(0) var<uniform> win: Window;
@group(0) @binding(1) var<storage, read_write> state: array<real>;    // [dim][stride]
@group(0) @binding(2) var<storage, read> params: array<real>;         // [n_params][stride]
@group(0) @binding(3) var<storage, read_write> saved: array<real>;    // [slot][stride][dim]: one slot, the final state
@group(0) @binding(4) var<storage, read_write> status: array<u32>;    // [stride]
@group(0) @binding(5) var<storage, read_write> tangent: array<real>;  // [k*dim + 4*k][stride]: vectors, s, b, mean, m2
@group(0) @binding(6) var<storage, read_write> results: array<real>;  // [2*k][stride]: exponents, errors

{{ACCESS}}
fn fail(i: u32, u: State) {
    status[i] = STATUS_NON_FINITE;
    store_state(i, u);
    save_nan(0u, i);
    store_nan_results(i);
}

@compute @workgroup_size({{WORKGROUP_SIZE}})
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    math_init(win.one);
    // Two-dimensional dispatch, so one chunk may hold more than 65,535 workgroups.
    let i = (wg.y * groups.x + wg.x) * {{WORKGROUP_SIZE}}u + lane;
    if i >= win.n_traj {
        return;
    }
    traj = i;
    if status[i] != STATUS_RUNNING {
        return;
    }
    var u = load_state(i);
    let p = load_params(i);
    var step = win.step_begin;
    var q: Tangent;
    var acc: Acc;
    if step <= win.n_transient {
        let stop = min(win.n_transient, win.step_end);
        while step < stop {
            u = rk_step(win.t0 + real(step) * win.dt, win.dt, u, p);
            step += 1u;
        }
        if step < win.n_transient {
            store_state(i, u);
            return;
        }
        if !state_finite(u) {
            fail(i, u);
            return;
        }
        // The transient ends here (again, harmlessly, when a window starts on it).
        q = initial_tangent();
    } else {
        q = load_tangent(i);
        acc = load_acc(i);
    }
    while step < win.step_end {
        // Integer division once per re-orthonormalisation, not per step.
        let next = ((step - win.n_transient) / win.renorm + 1u) * win.renorm + win.n_transient;
        let stop = min(next, win.step_end);
        while step < stop {
            let a = aug_step(win.t0 + real(step) * win.dt, win.dt, u, q, p);
            u = a.y;
            q = a.q;
            step += 1u;
        }
        if step == next {
            let o = mgs(q);
            q = o.q;
            if !(state_finite(u) && growth_finite(o.g)) {
                fail(i, u);
                return;
            }
            accumulate(&acc, o.g);
            let r = (step - win.n_transient) / win.renorm; // 1-based
            if r % win.per_block == 0u || r == win.n_renorms {
                let done = (r - 1u) / win.per_block;
                close_block(&acc, real(done + 1u), real(r - done * win.per_block) * win.renorm_time);
            }
        }
    }
    store_state(i, u);
    store_tangent(i, q);
    store_acc(i, acc);
    if step == win.n_steps {
        save_state(0u, i, u); // the one save slot: the final state
        store_results(i, acc, win.inv_time, real(win.n_blocks));
        status[i] = STATUS_SUCCESS;
    }
}
