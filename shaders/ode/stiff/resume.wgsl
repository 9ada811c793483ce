// Statements of main() in the stiff kernels, after the trajectory's counters, state and
// parameters are loaded (i, stride, status, evals, slot, flags, y, p): declares the carry
// `c`, t, h, err_prev, mode and count, and either starts the trajectory at t0 (first stage,
// initial step, method, a save at t0) or resumes it from `control` and `flags`. Included by
// ode/stiff/step.wgsl and ode/stiff/events.wgsl.
    var c: Carry;
    var t: real;
    var h: real;
    var err_prev: real;
    var mode: u32;
    var count: u32;

    if (flags & FLAG_STARTED) == 0u {
        t = win.t0;
        c.f0 = rhs(t, y, p);
        evals = 1u;
        err_prev = real(1.0);
        flags = FLAG_STARTED;
        mode = INITIAL_MODE;
        count = 0u;
        if !state_finite(y) || !state_finite(c.f0) {
            status = STATUS_NON_FINITE;
        } else {
            if win.dt_initial > real(0.0) {
                h = win.dt_initial;
            } else {
                h = initial_step(t, y, p, c.f0);
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
        err_prev = control[i + 2u * stride];
        c.f0 = load_f0(i);
        mode = select(0u, 1u, (flags & FLAG_STIFF) != 0u);
        count = (flags >> COUNT_SHIFT) & COUNT_MASK;
    }
