// Adaptive embedded Runge–Kutta over an ensemble. One invocation integrates one trajectory
// with its own time, step size, error history and save cursor, all kept on the device
// between dispatches; a trajectory that has finished returns at once. Saves land on the
// requested times through the method's continuous extension.
//
// A dispatch makes at most `max_attempts` step attempts per trajectory and writes the save
// slots of one batch [save_first, save_end). A step that would also cover a slot of a later
// batch is not committed: its own batch's slots are written, and the next batch redoes the
// identical step. So results do not depend on how slots are batched or dispatches cut.
//
// Filled in by ode::adaptive::kernel: REAL_LIB, WORKGROUP_SIZE, SYSTEM (model::wgsl), METHOD
// (stages, error norm, controller, dense output and initial step of one pair and control),
// ACCESS (loads and stores per component).
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
// [3 + dim][stride]: t, h, log2 of the previous error, then the first stage of the next step (FSAL)
@group(0) @binding(4) var<storage, read_write> control: array<real>;
// [6][stride]: status, accepted, rejected, rhs evaluations, next save slot, flags
@group(0) @binding(5) var<storage, read_write> counts: array<u32>;
@group(0) @binding(6) var<storage, read> save_times: array<real>;
@group(0) @binding(7) var<storage, read_write> unfinished: array<atomic<u32>>;

const FLAG_STARTED: u32 = 1u;
const FLAG_REJECTED: u32 = 2u;
// flags >> WAIT_SHIFT: the save_end of a batch whose slots this trajectory has all written
// but whose next step belongs to a later batch; it waits for that batch.
const WAIT_SHIFT: u32 = 2u;

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
    var slot = counts[i + 4u * stride];
    var flags = counts[i + 5u * stride];
    if (flags >> WAIT_SHIFT) == win.save_end {
        return;
    }
    var y = load_state(i);
    let p = load_params(i);
    #include "ode/adaptive/resume.wgsl"

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
        let trial = attempt(t, hu, y, p, &st);
        budget -= 1u;
        let ok = trial.err <= real(1.0);
        let log_err = log2(f32(trial.err));
        let fac = step_factor(trial.err, log_err, log_prev, ok, (flags & FLAG_REJECTED) != 0u);

        if !ok {
            rejected += 1u;
            evals += EVALS_PER_ATTEMPT;
            h = hu * fac;
            flags |= FLAG_REJECTED;
            if underflow(h, t) {
                status = STATUS_STEP_UNDERFLOW;
            }
            continue;
        }

        let t_new = select(t + hu, stop, last);
        var next = slot;
        var dense_ready = false;
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
                        save_state(next - win.save_first, i, trial.y1);
                    } else {
                        if !dense_ready {
                            dense_stages(t, hu, y, p, &st);
                            dense_ready = true;
                        }
                        save_state(next - win.save_first, i, interpolate(y, hu, (ts - t) / hu, &st));
                    }
                }
                next += 1u;
            }
        }
        if crosses {
            flags = (flags & ((1u << WAIT_SHIFT) - 1u)) | (win.save_end << WAIT_SHIFT);
            break; // redone, whole, by the next batch
        }

        accepted += 1u;
        evals += EVALS_PER_ATTEMPT + select(0u, EXTRA_EVALS, dense_ready);
        h = min(hu * fac, win.dt_max);
        log_prev = max(log_err, LOG2_MIN_ERR);
        flags &= ~FLAG_REJECTED;
        y = trial.y1;
        take_fsal(&st);
        t = t_new;
        slot = next;
        if !state_finite(y) || !state_finite(st.k0) {
            status = STATUS_NON_FINITE;
        } else if t < win.t1 && underflow(h, t) {
            status = STATUS_STEP_UNDERFLOW;
        }
    }

    // Reaching t1 saves the state there, as the dense kernels' save loop does before it checks
    // the state: a trajectory whose derivative at t1 is not finite still has its t1 state.
    if !DENSE_OUTPUT && t >= win.t1 && slot < win.n_slots {
        save_state(slot - win.save_first, i, y);
        slot += 1u;
    }
    store_state(i, y);
    #include "ode/adaptive/write_back.wgsl"
}
