// The adaptive kernels' early stops: a step size too small to move t, and NaN in the save
// slots of this batch after a trajectory stopped. Needs the adaptive `win` (dt_min,
// save_first, save_end) and ACCESS's save_nan. Included by ode/adaptive/{step,events}.wgsl,
// ode/stiff/{step,events}.wgsl and ode/sde/{adaptive,adaptive_events}.wgsl.
fn underflow(h: real, t: real) -> bool {
    return h < max(win.dt_min, real(4.0) * REAL_EPS * abs(t));
}

// Slots of this batch from `first` (run-wide) on become NaN: the trajectory stopped early.
fn save_nan_from(first: u32, i: u32) {
    for (var s = max(first, win.save_first); s < win.save_end; s++) {
        save_nan(s - win.save_first, i);
    }
}
