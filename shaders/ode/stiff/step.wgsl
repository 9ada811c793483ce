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
// and the functions the loop below calls per mode), ACCESS (loads and stores).
#include "common/status.wgsl"

{{REAL_LIB}}

{{SYSTEM}}
{{METHOD}}
#include "ode/adaptive/window.wgsl"

// Each storage binding's comment gives its layout, outermost index first, and may name
// the rows after a colon; `ode::layout_check` holds them to the code that writes them.
#include "ode/window_binding.wgsl"
@group(0) @binding(1) var<storage, read_write> state: array<real>;      // [dim][stride]
@group(0) @binding(2) var<storage, read> params: array<real>;           // [n_params][stride]
@group(0) @binding(3) var<storage, read_write> saved: array<real>;      // [slot][stride][dim]
// [3 + dim][stride]: t, h, previous error, then the first stage of the next step
@group(0) @binding(4) var<storage, read_write> control: array<real>;
// [8][stride]: status, accepted, rejected, rhs evaluations, jacobians, switches, next save slot, flags
@group(0) @binding(5) var<storage, read_write> counts: array<u32>;
@group(0) @binding(6) var<storage, read> save_times: array<real>;
@group(0) @binding(7) var<storage, read_write> unfinished: array<atomic<u32>>;

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
        if status != STATUS_SUCCESS {
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
    let p = load_params(i);
    #include "ode/stiff/resume.wgsl"

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

        let t_new = select(t + hu, stop, last);
        var next = slot;
        var crosses = false;
        // Without dense output the one save slot is t1's, written after the loop: the
        // steps then touch no memory (SIMD CPUs run a loop body's stores on every
        // attempt, masked or not).
        if DENSE_OUTPUT {
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
                        save_state(next - win.save_first, i, tr.y1);
                    } else {
                        save_state(next - win.save_first, i, dense_at(y, tr.y1, hu, (ts - t) / hu, &c, mode));
                    }
                }
                next += 1u;
            }
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
        y = tr.y1;
        t = t_new;
        slot = next;
        evals += next_f0(t, y, p, tr, &c, mode);
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
        if !state_finite(y) || !state_finite(c.f0) {
            status = STATUS_NON_FINITE;
        } else if t < win.t1 && underflow(h, t) {
            status = STATUS_STEP_UNDERFLOW;
        }
    }

    flags = (flags & ~(FLAG_STIFF | (COUNT_MASK << COUNT_SHIFT)))
        | select(0u, FLAG_STIFF, mode == 1u) | (count << COUNT_SHIFT);
    // Reaching t1 saves the state there, as the dense kernels' save loop does before it checks
    // the state: a trajectory whose derivative at t1 is not finite still has its t1 state.
    if !DENSE_OUTPUT && t >= win.t1 && slot < win.n_slots {
        save_state(slot - win.save_first, i, y);
        slot += 1u;
    }
    store_state(i, y);
    #include "ode/stiff/write_back.wgsl"
}
