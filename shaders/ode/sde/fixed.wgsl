// Fixed-step SDE methods over an ensemble. One invocation integrates one trajectory through
// a window of steps with its state in registers. Step i's Wiener increments are a pure
// function of (seed, trajectory, i) (counter-based Philox, `NOISE`), so a trajectory's
// path never depends on the chunk, the window or the device it ran on.
//
// Filled in by ode::sde::kernel: REAL_LIB, WORKGROUP_SIZE, SYSTEM (State, Params, rhs,
// diffusion and for Milstein gdg, from model::wgsl), NOISE (Wiener, noise_setup,
// step_increments from ode::sde::noise), STEP (sde_step of one method), ACCESS (loads and
// stores per component).
#include "common/status.wgsl"

{{REAL_LIB}}

{{SYSTEM}}
{{NOISE}}
{{STEP}}
#include "ode/sde/fixed_window.wgsl"

// Each storage binding's comment gives its layout, outermost index first; `ode::layout_check`
// holds them to the code that writes them.
#include "ode/window_binding.wgsl"
@group(0) @binding(1) var<storage, read_write> state: array<real>;  // [dim][stride]
@group(0) @binding(2) var<storage, read> params: array<real>;       // [n_params][stride]
@group(0) @binding(3) var<storage, read_write> saved: array<real>;  // [slot][stride][dim]
@group(0) @binding(4) var<storage, read_write> status: array<u32>;  // [stride]

{{ACCESS}}
// Step `step` of the grid (its time t0 + step*dt, never an accumulated sum).
fn one_step(step: u32, u: State, p: Params, dw: Wiener) -> State {
    return sde_step(win.t0 + real(step) * win.dt, win.dt, win.sqrt_dt, u, p, dw);
}

#include "ode/fixed/saves.wgsl"

@compute @workgroup_size({{WORKGROUP_SIZE}})
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    win = window_uniform;
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
    noise_setup(win.seed_lo, win.seed_hi, win.traj_base + i, win.antithetic);
    var u = load_state(i);
    let p = load_params(i);
    var step = win.step_begin;
    if step == 0u && win.save_initial == 1u {
        save_state(0u, i, u); // a batch that starts at step 0 starts at slot 0
    }
    while step < win.step_end {
        let next_save = min((step / win.save_every + 1u) * win.save_every, win.n_steps);
        let stop = min(next_save, win.step_end);
        // Single steps up to a multiple of four, then four steps per Philox round
        // (`step_increments4`), then the rest: three loops rather than a branch, because
        // drivers that run both sides of a uniform branch under a mask (lavapipe) would
        // pay for both.
        while step < stop && (step & 3u) != 0u {
            u = one_step(step, u, p, step_increments(step, win.sqrt_dt));
            step += 1u;
        }
        while step + 4u <= stop {
            let dw = step_increments4(step >> 2u, win.sqrt_dt);
            u = one_step(step, u, p, dw[0]);
            u = one_step(step + 1u, u, p, dw[1]);
            u = one_step(step + 2u, u, p, dw[2]);
            u = one_step(step + 3u, u, p, dw[3]);
            step += 4u;
        }
        while step < stop {
            u = one_step(step, u, p, step_increments(step, win.sqrt_dt));
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
