// Statements of main() in the adaptive kernels, after the trajectory's counters, state and
// parameters are loaded (i, stride, status, evals, slot, flags, y, p): declares the stages
// `st`, t, h and log_prev (log2 of the last accepted step's error, at least 1e-4: kept as
// a log so that the controller needs one log2 and one exp2 an attempt), and either starts
// the trajectory at t0 (first stage, initial step, a save at t0) or resumes it from
// `control`. Included by ode/adaptive/step.wgsl and
// ode/adaptive/events.wgsl.
    var st: Stages;
    var t: real;
    var h: real;
    var log_prev: f32;

    if (flags & FLAG_STARTED) == 0u {
        t = win.t0;
        st.k0 = rhs(t, y, p);
        evals = 1u;
        log_prev = 0.0;
        flags = FLAG_STARTED;
        if !state_finite(y) || !state_finite(st.k0) {
            status = STATUS_NON_FINITE;
        } else {
            if win.dt_initial > real(0.0) {
                h = win.dt_initial;
            } else {
                h = initial_step(t, y, p, st.k0);
                evals += 1u;
            }
            h = min(h, win.dt_max);
            // Save times increase, so only slot 0 can be at t0, and batch 0 holds it.
            while slot < win.n_slots && save_times[slot] <= t {
                save_state(slot - win.save_first, i, y);
                slot += 1u;
            }
        }
    } else {
        t = control[i];
        h = control[i + stride];
        log_prev = f32(control[i + 2u * stride]);
        st.k0 = load_k0(i);
    }
