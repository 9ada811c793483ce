// Fixed-step explicit Runge–Kutta over an ensemble. One invocation integrates one
// trajectory through a window of steps with its state in registers; the host never sees
// individual steps. Buffers are struct-of-arrays (component-major, row length `stride`),
// so neighbouring invocations read and write neighbouring words.
//
// Filled in by ode::fixed::kernel: REAL_LIB (common/real_f32.wgsl or real_f64.wgsl: the `real`
// type and its helpers), WORKGROUP_SIZE, SYSTEM (State, Params, rhs from model::wgsl), STEP
// (rk_step from the tableau), ACCESS (loads and stores per component).
#include "common/status.wgsl"

{{REAL_LIB}}

{{SYSTEM}}
{{STEP}}
#include "ode/fixed/window.wgsl"

// Each storage binding's comment gives its layout, outermost index first; `ode::layout_check`
// holds them to the code that writes them.
@group(0) @binding(0) var<uniform> win: Window;
@group(0) @binding(1) var<storage, read_write> state: array<real>;  // [dim][stride]
@group(0) @binding(2) var<storage, read> params: array<real>;       // [n_params][stride]
@group(0) @binding(3) var<storage, read_write> saved: array<real>;  // [slot][stride][dim]
@group(0) @binding(4) var<storage, read_write> status: array<u32>;  // [stride]

{{ACCESS}}
#include "ode/fixed/saves.wgsl"

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
        save_nan_from(win.save_first, i);
        return;
    }
    var u = load_state(i);
    let p = load_params(i);
    var step = win.step_begin;
    if step == 0u && win.save_initial == 1u {
        save_state(0u, i, u); // a batch that starts at step 0 starts at slot 0
    }
    while step < win.step_end {
        // Integer division once per save interval, not per step: the inner loop is the
        // hot path and has nothing in it but the Runge–Kutta step.
        let next_save = min((step / win.save_every + 1u) * win.save_every, win.n_steps);
        let stop = min(next_save, win.step_end);
        while step < stop {
            u = rk_step(win.t0 + real(step) * win.dt, win.dt, u, p);
            step += 1u;
        }
        if step == next_save {
            if !state_finite(u) {
                status[i] = STATUS_NON_FINITE;
                store_state(i, u);
                save_nan_from(slot_of_step(step), i);
                return;
            }
            save_state(slot_of_step(step) - win.save_first, i, u);
        }
    }
    store_state(i, u);
    if step == win.n_steps {
        status[i] = STATUS_SUCCESS;
    }
}
