// Statements of main() in the adaptive SDE kernels, after the trajectory's counters, state
// and parameters are loaded (i, stride, status, slot, flags, y, p): declares t, h and W(t),
// and either starts the trajectory at t0 (W = 0, a save at t0) or resumes it from
// `control`. Included by ode/sde/adaptive.wgsl and ode/sde/adaptive_events.wgsl.
    var t: real;
    var h: real;
    var w: Wiener;

    if (flags & FLAG_STARTED) == 0u {
        t = win.t0;
        h = min(win.dt_initial, win.dt_max);
        w = wiener_zero();
        flags = FLAG_STARTED;
        if !state_finite(y) {
            status = STATUS_NON_FINITE;
        } else {
            // Save times increase, so only slot 0 can be at t0, and batch 0 holds it.
            while slot < win.n_slots && save_times[slot] <= t {
                save_state(slot - win.save_first, i, y);
                slot += 1u;
            }
        }
    } else {
        t = control[i];
        h = control[i + stride];
        w = load_w(i);
    }
