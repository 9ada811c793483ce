// Fixed-step explicit Runge–Kutta with events (`[[events]]`, ode::events): the kernel of
// step.wgsl, plus after each step the events' conditions, and where one fires, its
// location on the cubic Hermite interpolant of the step, its record, and its action. A
// terminating or assigning event cuts the step; after an assignment a partial step from
// the event to the grid point finishes it, and the run continues on the grid. A system
// without events never gets this kernel (step.wgsl is unchanged).
//
// Filled in by ode::fixed::kernel: REAL_LIB, WORKGROUP_SIZE, SYSTEM (model::wgsl with the
// events' programs), STEP (rk_step), ACCESS, EVENTS (ode::events::kernel and `hermite`).
#include "common/status.wgsl"

{{REAL_LIB}}

{{SYSTEM}}
{{STEP}}
#include "ode/fixed/window.wgsl"

// Each storage binding's comment gives its layout, outermost index first; `ode::layout_check`
// holds them to the code that writes them.
@group(0) @binding(0) var<uniform> win: Window;
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

// Grid step `step` from u (whose first attempt gave y1, g1) where an event fired: records,
// and after each cut the action and a partial step from the event to the grid point.
fn event_grid_step(i: u32, step: u32, u: State, y1_first: State, g0_in: array<real, N_EVENTS>, g1_first: array<real, N_EVENTS>, p: ptr<function, Params>, n_rec: u32) -> GridStep {
    let t_end = win.t0 + real(step + 1u) * win.dt;
    var o: GridStep;
    o.n_rec = n_rec;
    o.stopped = false;
    o.advanced = false;
    var ta = win.t0 + real(step) * win.dt;
    var ya = u;
    var h = win.dt;
    var y1 = y1_first;
    var g0 = g0_in;
    var g1 = g1_first;
    var cuts = 0u;
    loop {
        if cuts < EVENT_MAX_CUTS && event_any(g0, g1) {
            let f0 = rhs(ta, ya, *p);
            let f1 = rhs(t_end, y1, *p);
            let scan = event_scan(ta, h, g0, g1, ya, *p, y1, f0, f1);
            o.n_rec = event_record_all(i, o.n_rec, scan, ta, h, t_end, ya, y1, *p, y1, f0, f1);
            if scan.cut != EVENT_NONE {
                var sc = scan;
                let th = sc.theta[scan.cut];
                var tc = t_end;
                var yc = y1;
                if th != real(1.0) {
                    tc = ta + th * h;
                    yc = hermite(ya, h, th, y1, f0, f1);
                }
                if event_action(scan.cut) == ACTION_TERMINATE {
                    o.u = yc;
                    o.g0 = g0;
                    o.stopped = true;
                    o.advanced = th == real(1.0);
                    return o;
                }
                event_apply(scan.cut, tc, &yc, p);
                cuts += 1u;
                g0 = event_g(tc, yc, *p);
                if tc < t_end {
                    ta = tc;
                    ya = yc;
                    h = t_end - tc;
                    y1 = rk_step(ta, h, ya, *p);
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

@compute @workgroup_size({{WORKGROUP_SIZE}})
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
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
    var u = load_state(i);
    var p = load_params(i);
    var n_rec = event_count_load(i);
    var step = win.step_begin;
    if step == 0u && win.save_initial == 1u {
        save_state(0u, i, u);
    }
    // The conditions at the window's start, from the stored state: the same bits as the
    // previous window's last step computed.
    var g0 = event_g(win.t0 + real(step) * win.dt, u, p);
    var stopped = false;
    while step < win.step_end && !stopped {
        let next_save = min((step / win.save_every + 1u) * win.save_every, win.n_steps);
        let stop = min(next_save, win.step_end);
        while step < stop {
            // The common step: one Runge–Kutta step and the conditions at its end; the
            // rest only where something fires.
            let t_end = win.t0 + real(step + 1u) * win.dt;
            let y1 = rk_step(win.t0 + real(step) * win.dt, win.dt, u, p);
            let g1 = event_g(t_end, y1, p);
            if event_any(g0, g1) {
                let o = event_grid_step(i, step, u, y1, g0, g1, &p, n_rec);
                u = o.u;
                g0 = o.g0;
                n_rec = o.n_rec;
                if o.stopped {
                    stopped = true;
                    if o.advanced {
                        step += 1u;
                    }
                    break;
                }
            } else {
                u = y1;
                g0 = g1;
            }
            step += 1u;
        }
        if step == next_save {
            if !state_finite(u) {
                status[i] = STATUS_NON_FINITE;
                store_state(i, u);
                event_count_store(i, n_rec);
                save_nan_from(slot_of_step(step), i);
                return;
            }
            save_state(slot_of_step(step) - win.save_first, i, u);
        }
    }
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
