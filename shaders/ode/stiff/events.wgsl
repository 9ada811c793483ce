// Stiff ensembles with events (`[[events]]`, ode::events): the kernel of step.wgsl, plus
// after each accepted attempt the events' conditions, and where one fires, its location on
// the step's dense output (the Rosenbrock method's, or Tsit5's while `auto` uses it).
// Events are found before the step's saves (a terminating or assigning event cuts the
// step, which moves its end), and recorded and acted on only when the step is committed: a
// step redone by the next batch of saves records nothing the first time. After an
// assignment the first stage f(t, y) is renewed and the error history reset; the step size
// goes on from the controller (or dt_initial): Hairer's initial-step heuristic, which the
// adaptive kernel restarts with, measures the stiff eigenvalue with its explicit Euler step
// and proposes steps far below what a Rosenbrock method needs (below f32's resolution of t
// late in a run), while a too large step is only rejected. Every attempt evaluates J and
// factorises W afresh, so nothing else carries over. A system without events never gets
// this kernel.
//
// Stiff ensembles: Rosenbrock–Wanner methods, and `auto` switching each trajectory between
// Tsit5 and Rodas5P. One invocation integrates one trajectory with its own time, step size,
// error history, method, save cursor and counters, all kept on the device between
// dispatches; a trajectory that has finished returns at once. Each attempt evaluates the
// Jacobian and factorises W = I/(h*gamma) - J with partial pivoting, unrolled over the
// Jacobian's sparsity in registers. Saves land on the requested times through the step's
// dense output.
//
// A dispatch makes at most `max_attempts` step attempts per trajectory and writes the save
// slots of one batch [save_first, save_end). A step that would also cover a slot of a later
// batch is not committed: its own batch's slots are written, and the next batch redoes the
// identical step. So results do not depend on how slots are batched or dispatches cut.
//
// Filled in by ode::stiff::kernel: REAL_LIB, WORKGROUP_SIZE, SYSTEM (model::wgsl: rhs and
// the Jacobians), METHOD (the method's attempt, LU, controller, dense output, initial step,
// and the functions the loop below calls per mode), ACCESS (loads and stores), EVENTS
// (ode::events::kernel).
#include "common/status.wgsl"

{{REAL_LIB}}

{{SYSTEM}}
{{METHOD}}
#include "ode/adaptive/window.wgsl"

// Each storage binding's comment gives its layout, outermost index first, and may name
// the rows after a colon; `ode::layout_check` holds them to the code that writes them.
#include "ode/window_binding.wgsl"
@group(0) @binding(1) var<storage, read_write> state: array<real>;      // [dim][stride]
@group(0) @binding(2) var<storage, read_write> params: array<real>;     // [n_params][stride]
@group(0) @binding(3) var<storage, read_write> saved: array<real>;      // [slot][stride][dim]
// [3 + dim][stride]: t, h, previous error, then the first stage of the next step
@group(0) @binding(4) var<storage, read_write> control: array<real>;
// [8][stride]: status, accepted, rejected, rhs evaluations, jacobians, switches, next save slot, flags
@group(0) @binding(5) var<storage, read_write> counts: array<u32>;
@group(0) @binding(6) var<storage, read> save_times: array<real>;
@group(0) @binding(7) var<storage, read_write> unfinished: array<atomic<u32>>;
// [2 + K * (2 + dim)][stride]: count low 16 bits, count high 16 bits, then K records of
// t, event id, state
@group(0) @binding(8) var<storage, read_write> results: array<real>;

const FLAG_STARTED: u32 = 1u;
const FLAG_REJECTED: u32 = 2u;
// The method in use (auto): set while the Rosenbrock method takes the steps.
const FLAG_STIFF: u32 = 4u;
// (flags >> COUNT_SHIFT) & COUNT_MASK: consecutive steps whose stiffness estimate argued
// for the other method (auto).
const COUNT_SHIFT: u32 = 3u;
const COUNT_MASK: u32 = 31u;
// flags >> WAIT_SHIFT: the save_end of a batch whose slots this trajectory has all written
// but whose next step belongs to a later batch; it waits for that batch.
const WAIT_SHIFT: u32 = 8u;
const LOW_FLAGS: u32 = 255u;

{{ACCESS}}
{{EVENTS}}
#include "ode/adaptive/early_stop.wgsl"

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
    let stride = win.stride;
    var status = counts[i];
    if status != STATUS_RUNNING {
        if status == STATUS_TERMINATED {
            // Slots before the event were written when it ended; NaN from its next slot.
            save_nan_from(counts[i + 6u * stride], i);
        } else if status != STATUS_SUCCESS {
            save_nan_from(win.save_first, i);
        }
        return;
    }
    var accepted = counts[i + stride];
    var rejected = counts[i + 2u * stride];
    var evals = counts[i + 3u * stride];
    var jacobians = counts[i + 4u * stride];
    var switches = counts[i + 5u * stride];
    var slot = counts[i + 6u * stride];
    var flags = counts[i + 7u * stride];
    if (flags >> WAIT_SHIFT) == win.save_end {
        return;
    }
    var y = load_state(i);
    var p = load_params(i);
    var n_rec = event_count_load(i);
    #include "ode/stiff/resume.wgsl"

    // The conditions at the dispatch's start, from the stored state: the same bits as the
    // previous dispatch's last committed step computed.
    var g0 = event_g(t, y, p);
    var budget = win.max_attempts;
    let final_batch = win.save_end == win.n_slots;
    while status == STATUS_RUNNING {
        if t >= win.t1 {
            status = STATUS_SUCCESS;
            break;
        }
        if (slot >= win.save_end && !final_batch) || budget == 0u {
            break;
        }
        if accepted + rejected >= win.max_steps {
            status = STATUS_MAX_STEPS;
            break;
        }
        // Steps end at t1 and at the inputs' sensor times (kinks of their interpolants).
        let stop = break_after(t, win.t1);
        let last = h >= stop - t;
        let hu = select(h, stop - t, last);
        let tr = try_step(t, hu, y, p, &c, mode);
        budget -= 1u;
        // Each Rosenbrock attempt evaluates J and factorises W once.
        let jac_evals = select(0u, 1u, mode == 1u);
        if tr.status != STATUS_RUNNING {
            // A non-finite Jacobian or an exactly singular W: no retry.
            jacobians += jac_evals;
            status = tr.status;
            break;
        }

        if !(tr.err <= real(1.0)) {
            rejected += 1u;
            jacobians += jac_evals;
            evals += attempt_evals(mode);
            h = hu * reject_factor_m(tr.err, mode);
            flags |= FLAG_REJECTED;
            if underflow(h, t) {
                status = STATUS_STEP_UNDERFLOW;
            }
            continue;
        }

        let t_end = select(t + hu, stop, last);
        var t_new = t_end;
        var y_new = tr.y1;
        let g1 = event_g(t_end, tr.y1, p);
        let fired = event_any(g0, g1);
        var scan: EventScan;
        scan.cut = EVENT_NONE;
        if fired {
            scan = event_scan(t, hu, g0, g1, y, p, tr.y1, &c, mode);
            if scan.cut != EVENT_NONE {
                var sc = scan;
                let th = sc.theta[scan.cut];
                if th != real(1.0) {
                    t_new = t + th * hu;
                    y_new = dense_at(y, tr.y1, hu, th, &c, mode);
                }
            }
        }
        var next = slot;
        var crosses = false;
        while next < win.n_slots {
            let ts = save_times[next];
            if ts > t_new {
                break;
            }
            if next >= win.save_end {
                crosses = true;
                break;
            }
            if next >= win.save_first {
                if ts == t_new {
                    save_state(next - win.save_first, i, y_new);
                } else if DENSE_OUTPUT {
                    save_state(next - win.save_first, i, dense_at(y, tr.y1, hu, (ts - t) / hu, &c, mode));
                }
            }
            next += 1u;
        }
        if crosses {
            flags = (flags & LOW_FLAGS) | (win.save_end << WAIT_SHIFT);
            break; // redone, whole, by the next batch
        }

        accepted += 1u;
        jacobians += jac_evals;
        evals += attempt_evals(mode);
        h = min(hu * accept_factor_m(tr.err, err_prev, (flags & FLAG_REJECTED) != 0u, mode), win.dt_max);
        err_prev = max(tr.err, real(1e-4));
        flags &= ~FLAG_REJECTED;
        let estimate = stiffness(hu, y, tr, &c, mode);
        if fired {
            n_rec = event_record_all(i, n_rec, scan, t, hu, t_end, y, tr.y1, p, tr.y1, &c, mode);
        }
        g0 = g1;
        let cut = scan.cut != EVENT_NONE;
        y = y_new;
        t = t_new;
        slot = next;
        if !cut {
            // A cut step's f at its end is no use: it terminates or restarts below.
            evals += next_f0(t, y, p, tr, &c, mode);
        }
        if AUTO {
            // Tsit5 counts steps that look stiff, the Rosenbrock method steps that do not.
            let other = select(estimate > STIFF_LIMIT, estimate < STIFF_LIMIT, mode == 1u);
            count = select(0u, count + 1u, other);
            if count >= SWITCH_AFTER {
                mode = 1u - mode;
                count = 0u;
                switches += 1u;
                err_prev = real(1.0);
            }
        }
        var terminated = false;
        if cut {
            terminated = event_action(scan.cut) == ACTION_TERMINATE;
            if !terminated {
                // Restart at the event: new state and first stage, the controller's step.
                event_apply(scan.cut, t, &y, &p);
                c.f0 = rhs(t, y, p);
                evals += 1u;
                if win.dt_initial > real(0.0) {
                    h = min(win.dt_initial, win.dt_max);
                }
                err_prev = real(1.0);
                g0 = event_g(t, y, p);
            }
        }
        if terminated {
            status = STATUS_TERMINATED;
        } else if !state_finite(y) || !state_finite(c.f0) {
            status = STATUS_NON_FINITE;
        } else if t < win.t1 && underflow(h, t) {
            status = STATUS_STEP_UNDERFLOW;
        }
    }

    flags = (flags & ~(FLAG_STIFF | (COUNT_MASK << COUNT_SHIFT)))
        | select(0u, FLAG_STIFF, mode == 1u) | (count << COUNT_SHIFT);
    store_state(i, y);
    event_store_params(i, p);
    event_count_store(i, n_rec);
    #include "ode/stiff/write_back.wgsl"
}
