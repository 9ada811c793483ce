// Fixed-step SDE methods with events (`[[events]]`, ode::events): the kernel of fixed.wgsl,
// plus after each step the events' conditions, and where one fires, its location on the
// step's chord (`sde_lerp`: a Brownian path has no smoother continuous extension), its
// record and its action. A terminating or assigning event cuts the step at t*; after an
// assignment the grid step is finished by the method's step from t* over the rest of the
// Brownian increment, W(t_end) - W(t*), with W(t*) drawn from the Brownian bridge between
// the step's ends (`bridge_normals`, its own Philox stream), so the path stays one path.
// A system without events never gets this kernel (fixed.wgsl is unchanged).
//
// Filled in by ode::sde::events: REAL_LIB, WORKGROUP_SIZE, SYSTEM (model::wgsl with the
// diffusion and the events' programs), NOISE (sde::noise with bridge_normals and
// wiener_rest), STEP (sde_step of one method), ACCESS, EVENTS (ode::events::kernel and
// sde_lerp).
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
@group(0) @binding(2) var<storage, read_write> params: array<real>; // [n_params][stride]
@group(0) @binding(3) var<storage, read_write> saved: array<real>;  // [slot][stride][dim]
@group(0) @binding(4) var<storage, read_write> status: array<u32>;  // [stride]
// [2 + K * (2 + dim)][stride]: count low 16 bits, count high 16 bits, then K records of
// t, event id, state
@group(0) @binding(5) var<storage, read_write> results: array<real>;

{{ACCESS}}
{{EVENTS}}
#include "ode/fixed/saves.wgsl"

struct GridStep {
    u: State,
    g0: array<real, N_EVENTS>,
    n_rec: u32,
    stopped: bool,   // a terminating event
    advanced: bool,  // ... at the grid point itself
}

// Grid step `step` from u (whose step with increments dw_first gave y1, g1) where an event
// fired: records, and after each cut the action and the method's step from the event to
// the grid point over the rest of the increment.
fn event_grid_step(i: u32, step: u32, u: State, y1_first: State, dw_first: Wiener, g0_in: array<real, N_EVENTS>, g1_first: array<real, N_EVENTS>, p: ptr<function, Params>, n_rec: u32) -> GridStep {
    let t_end = win.t0 + real(step + 1u) * win.dt;
    var o: GridStep;
    o.n_rec = n_rec;
    o.stopped = false;
    o.advanced = false;
    var ta = win.t0 + real(step) * win.dt;
    var ya = u;
    var h = win.dt;
    var dw = dw_first;
    var y1 = y1_first;
    var g0 = g0_in;
    var g1 = g1_first;
    var cuts = 0u;
    loop {
        if cuts < EVENT_MAX_CUTS && event_any(g0, g1) {
            let scan = event_scan(ta, h, g0, g1, ya, *p, y1);
            o.n_rec = event_record_all(i, o.n_rec, scan, ta, h, t_end, ya, y1, *p, y1);
            if scan.cut != EVENT_NONE {
                var sc = scan;
                let th = sc.theta[scan.cut];
                var tc = t_end;
                var yc = y1;
                if th != real(1.0) {
                    tc = ta + th * h;
                    yc = sde_lerp(ya, th, y1);
                }
                if event_action(scan.cut) == ACTION_TERMINATE {
                    o.u = yc;
                    o.g0 = g0;
                    o.stopped = true;
                    o.advanced = th == real(1.0);
                    return o;
                }
                event_apply(scan.cut, tc, &yc, p);
                g0 = event_g(tc, yc, *p);
                if tc < t_end {
                    // W(tc) by the bridge over [ta, ta + h]; the rest of the increment
                    // finishes the grid step.
                    let s = sqrt(th * (real(1.0) - th) * h);
                    dw = wiener_rest(dw, th, s, bridge_normals(step, cuts));
                    cuts += 1u;
                    ta = tc;
                    ya = yc;
                    h = t_end - tc;
                    y1 = sde_step(ta, h, sqrt(h), ya, *p, dw);
                    g1 = event_g(t_end, y1, *p);
                    continue;
                }
                o.u = yc;
                o.g0 = g0;
                return o;
            }
        }
        o.u = y1;
        o.g0 = g1;
        return o;
    }
    return o;
}

// Grid step `step` from w.u with increments dw: one method step and the conditions at its
// end; the rest (event_grid_step) only where something fires.
fn advance(i: u32, step: u32, w: GridStep, dw: Wiener, p: ptr<function, Params>) -> GridStep {
    let y1 = sde_step(win.t0 + real(step) * win.dt, win.dt, win.sqrt_dt, w.u, *p, dw);
    let g1 = event_g(win.t0 + real(step + 1u) * win.dt, y1, *p);
    if event_any(w.g0, g1) {
        return event_grid_step(i, step, w.u, y1, dw, w.g0, g1, p, w.n_rec);
    }
    var o = w;
    o.u = y1;
    o.g0 = g1;
    return o;
}

@compute @workgroup_size({{WORKGROUP_SIZE}})
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    win = window_uniform;
    math_init(win.one);
    let i = (wg.y * groups.x + wg.x) * {{WORKGROUP_SIZE}}u + lane;
    if i >= win.n_traj {
        return;
    }
    traj = i;
    let before = status[i];
    if before == STATUS_TERMINATED {
        // Ended by an event before this window: the slots after its first step are NaN
        // (those before were written, or made NaN, when it ended).
        save_nan_from(slot_of_step(min((win.step_begin / win.save_every + 1u) * win.save_every, win.n_steps)), i);
        return;
    }
    if before != STATUS_RUNNING {
        save_nan_from(win.save_first, i);
        return;
    }
    noise_setup(win.seed_lo, win.seed_hi, win.traj_base + i, win.antithetic);
    var p = load_params(i);
    var w: GridStep;
    w.u = load_state(i);
    w.n_rec = event_count_load(i);
    w.stopped = false;
    w.advanced = false;
    var step = win.step_begin;
    if step == 0u && win.save_initial == 1u {
        save_state(0u, i, w.u);
    }
    // The conditions at the window's start, from the stored state: the same bits as the
    // previous window's last step computed.
    w.g0 = event_g(win.t0 + real(step) * win.dt, w.u, p);
    while step < win.step_end && !w.stopped {
        let next_save = min((step / win.save_every + 1u) * win.save_every, win.n_steps);
        let stop = min(next_save, win.step_end);
        // As fixed.wgsl: single steps up to a multiple of four, then four steps per Philox
        // round (`step_increments4`, the same values as `step_increments`), then the rest.
        // A terminating event stops the walk at its step (past it if at the grid point).
        while step < stop && (step & 3u) != 0u && !w.stopped {
            w = advance(i, step, w, step_increments(step, win.sqrt_dt), &p);
            step += select(1u, u32(w.advanced), w.stopped);
        }
        while step + 4u <= stop && !w.stopped {
            var dw = step_increments4(step >> 2u, win.sqrt_dt);
            for (var k = 0u; k < 4u && !w.stopped; k++) {
                w = advance(i, step, w, dw[k], &p);
                step += select(1u, u32(w.advanced), w.stopped);
            }
        }
        while step < stop && !w.stopped {
            w = advance(i, step, w, step_increments(step, win.sqrt_dt), &p);
            step += select(1u, u32(w.advanced), w.stopped);
        }
        if step == next_save {
            if !state_finite(w.u) {
                status[i] = STATUS_NON_FINITE;
                store_state(i, w.u);
                event_count_store(i, w.n_rec);
                save_nan_from(slot_of_step(step), i);
                return;
            }
            save_state(slot_of_step(step) - win.save_first, i, w.u);
        }
    }
    let u = w.u;
    let n_rec = w.n_rec;
    let stopped = w.stopped;
    store_state(i, u);
    event_store_params(i, p);
    event_count_store(i, n_rec);
    if stopped {
        status[i] = STATUS_TERMINATED;
        // Saves after the event are NaN, as after any early stop.
        if step < win.n_steps {
            save_nan_from(slot_of_step(min((step / win.save_every + 1u) * win.save_every, win.n_steps)), i);
        }
    } else if step == win.n_steps {
        status[i] = STATUS_SUCCESS;
    }
}
