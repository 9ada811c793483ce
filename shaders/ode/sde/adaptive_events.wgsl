// milstein-adaptive with events (`[[events]]`, ode::events): the kernel of adaptive.wgsl,
// plus after each accepted step the events' conditions, and where one fires, its location
// on the step's chord (`sde_lerp`: a Brownian path has no smoother continuous extension),
// its record and its action. A terminating or assigning event cuts the step at t*; after an
// assignment the trajectory restarts there with W(t*) read from the virtual Brownian tree
// (so the cut step and the restart sample one Brownian path) and the initial step size.
// Saves are written before the action (as the ODE adaptive kernel does). A system without
// events never gets this kernel (adaptive.wgsl is unchanged).
//
// Adaptive SDE steps over an ensemble (milstein-adaptive). One invocation integrates one
// trajectory with its own time, step size and save cursor, kept on the device between
// dispatches. Increments come from a virtual Brownian tree (`NOISE`): W at any time is a
// pure function of (seed, trajectory, time), so rejected steps, retried steps and steps
// cut at save times all sample the same Brownian path. Steps land exactly on the save
// times (no interpolation of a stochastic path).
//
// A dispatch makes at most `max_attempts` step attempts per trajectory and writes the save
// slots of one batch [save_first, save_end); a trajectory whose next slot belongs to a later
// batch waits for it.
//
// Filled in by ode::sde::events: REAL_LIB, WORKGROUP_SIZE, SYSTEM (model::wgsl, with
// diffusion, gdg and the events' programs), NOISE (Wiener, noise_setup, tree_setup,
// brownian_at), METHOD (sde_attempt and the controller's constants), ACCESS (loads and
// stores, W's rows), EVENTS (ode::events::kernel and sde_lerp).
#include "common/status.wgsl"

{{REAL_LIB}}

{{SYSTEM}}
{{NOISE}}
{{METHOD}}
#include "ode/sde/adaptive_window.wgsl"

// Each storage binding's comment gives its layout, outermost index first, and may name
// the rows after a colon; `ode::layout_check` holds them to the code that writes them.
#include "ode/window_binding.wgsl"
@group(0) @binding(1) var<storage, read_write> state: array<real>;      // [dim][stride]
@group(0) @binding(2) var<storage, read_write> params: array<real>;     // [n_params][stride]
@group(0) @binding(3) var<storage, read_write> saved: array<real>;      // [slot][stride][dim]
// [2 + m][stride]: t, h, then W(t) of each Wiener process
@group(0) @binding(4) var<storage, read_write> control: array<real>;
// [6][stride]: status, accepted, rejected, drift evaluations, next save slot, flags
@group(0) @binding(5) var<storage, read_write> counts: array<u32>;
@group(0) @binding(6) var<storage, read> save_times: array<real>;
@group(0) @binding(7) var<storage, read_write> unfinished: array<atomic<u32>>;
// [2 + K * (2 + dim)][stride]: count low 16 bits, count high 16 bits, then K records of
// t, event id, state
@group(0) @binding(8) var<storage, read_write> results: array<real>;

const FLAG_STARTED: u32 = 1u;
// Drift evaluations per attempt: at t and at the new state.
const EVALS_PER_ATTEMPT: u32 = 2u;

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
            save_nan_from(counts[i + 4u * stride], i);
        } else if status != STATUS_SUCCESS {
            save_nan_from(win.save_first, i);
        }
        return;
    }
    var accepted = counts[i + stride];
    var rejected = counts[i + 2u * stride];
    var evals = counts[i + 3u * stride];
    var slot = counts[i + 4u * stride];
    var flags = counts[i + 5u * stride];
    if slot >= win.save_end && slot < win.n_slots {
        return; // waits for the batch holding its next slot
    }
    noise_setup(win.seed_lo, win.seed_hi, win.traj_base + i, win.antithetic);
    tree_setup(win.t0, win.t1, win.depth);
    var y = load_state(i);
    var p = load_params(i);
    var n_rec = event_count_load(i);
    #include "ode/sde/adaptive_resume.wgsl"

    // The conditions at the dispatch's start, from the stored state: the same bits as the
    // previous dispatch's last accepted step computed.
    var g0 = event_g(t, y, p);
    var budget = win.max_attempts;
    while status == STATUS_RUNNING {
        if t >= win.t1 {
            status = STATUS_SUCCESS;
            break;
        }
        if (slot >= win.save_end && slot < win.n_slots) || budget == 0u {
            break;
        }
        if accepted + rejected >= win.max_steps {
            status = STATUS_MAX_STEPS;
            break;
        }
        // Steps end on the next save time (and at t1).
        var stop = win.t1;
        if slot < win.n_slots {
            stop = min(save_times[slot], win.t1);
        }
        let last = h >= stop - t;
        let hu = select(h, stop - t, last);
        let t_new = select(t + hu, stop, last);
        let w_new = brownian_at(t_new);
        let trial = sde_attempt(t, hu, y, p, wiener_sub(w_new, w));
        budget -= 1u;
        evals += EVALS_PER_ATTEMPT;

        if !(finite_real(trial.err) && trial.err <= real(1.0)) {
            rejected += 1u;
            let fr = SAFETY / sqrt(trial.err);
            h = hu * select(MAX_SHRINK, fr, finite_real(trial.err) && fr >= MAX_SHRINK);
            if underflow(h, t) {
                status = STATUS_STEP_UNDERFLOW;
            }
            continue;
        }

        accepted += 1u;
        var fa = MAX_GROWTH;
        if trial.err > real(0.0) {
            fa = clamp(SAFETY / sqrt(trial.err), MAX_SHRINK, MAX_GROWTH);
        }
        h = min(hu * fa, win.dt_max);
        // Events on the accepted step: a cut moves its end to the event, where W is read
        // from the tree, so the restart continues the same Brownian path.
        let g1 = event_g(t_new, trial.y1, p);
        var t_end = t_new;
        var y_end = trial.y1;
        var w_end = w_new;
        var cut = EVENT_NONE;
        if event_any(g0, g1) {
            let scan = event_scan(t, hu, g0, g1, y, p, trial.y1);
            n_rec = event_record_all(i, n_rec, scan, t, hu, t_new, y, trial.y1, p, trial.y1);
            cut = scan.cut;
            if cut != EVENT_NONE {
                var sc = scan;
                let th = sc.theta[cut];
                if th != real(1.0) {
                    t_end = t + th * hu;
                    y_end = sde_lerp(y, th, trial.y1);
                    w_end = brownian_at(t_end);
                }
            }
        }
        y = y_end;
        t = t_end;
        w = w_end;
        g0 = g1;
        if !state_finite(y) {
            status = STATUS_NON_FINITE;
            break;
        }
        // Saves before the action: a cut step ends on a save time only if the event is there.
        if last && slot < win.n_slots && save_times[slot] == t {
            if slot >= win.save_first {
                save_state(slot - win.save_first, i, y);
            }
            slot += 1u;
        }
        if cut != EVENT_NONE {
            if event_action(cut) == ACTION_TERMINATE {
                status = STATUS_TERMINATED;
                break;
            }
            // Restart at the event: new state (and parameters), the initial step size.
            event_apply(cut, t, &y, &p);
            g0 = event_g(t, y, p);
            h = min(win.dt_initial, win.dt_max);
            if !state_finite(y) {
                status = STATUS_NON_FINITE;
                break;
            }
        }
        if t < win.t1 && underflow(h, t) {
            status = STATUS_STEP_UNDERFLOW;
        }
    }

    store_state(i, y);
    event_store_params(i, p);
    event_count_store(i, n_rec);
    #include "ode/sde/adaptive_write_back.wgsl"
}
