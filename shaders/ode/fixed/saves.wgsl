// Save slots of the fixed-step kernels: the slot a step's save goes to, and NaN in the
// slots after an early stop. Needs the fixed-step `win` (save_every, save_initial,
// save_first, save_count) and ACCESS's save_nan. Included by ode/fixed/step.wgsl,
// ode/fixed/events.wgsl, ode/sde/fixed.wgsl and ode/sde/fixed_events.wgsl.
fn slot_of_step(step: u32) -> u32 {
    return (step + win.save_every - 1u) / win.save_every - (1u - win.save_initial);
}

// Slots from `first` (run-wide) to the end of this batch become NaN.
fn save_nan_from(first: u32, i: u32) {
    for (var s = max(first, win.save_first); s < win.save_first + win.save_count; s++) {
        save_nan(s - win.save_first, i);
    }
}
