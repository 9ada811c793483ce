// The fixed-step kernels' uniform: which steps this dispatch takes and which saves it writes.
// Included by ode/fixed/step.wgsl and ode/fixed/events.wgsl; `fixed::run::window_uniform`
// packs it (`ode::layout_check` holds the two together).
struct Window {
    n_traj: u32,        // trajectories in this chunk
    stride: u32,        // row length of the struct-of-arrays buffers (chunk capacity)
    step_begin: u32,    // first step of this window, counted from the start of the run
    step_end: u32,      // one past the last step of this window
    n_steps: u32,       // steps in the whole run
    save_every: u32,    // a save whenever the step count is a multiple of this, and at the end
    save_initial: u32,  // 1 if slot 0 holds the initial state
    save_first: u32,    // run-wide slot number of saved[] slot 0 in this batch
    save_count: u32,    // slots saved[] holds in this batch
    t0: real,
    dt: real,
    one: real,         // 1.0, for math_init (the f64 library's compiler barrier)
}
