// The fixed-step SDE kernels' uniform: the fixed-step window plus the noise key. Included
// by ode/sde/fixed.wgsl and ode/sde/fixed_events.wgsl; `sde::run::fixed_uniform` packs it
// (`ode::layout_check` holds the two together).
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
    traj_base: u32,     // run-wide index of this chunk's first trajectory
    seed_lo: u32,       // the noise key
    seed_hi: u32,
    antithetic: u32,    // 1: trajectory 2j+1 takes path j's increments negated
    t0: real,
    dt: real,
    sqrt_dt: real,
    one: real,         // 1.0, for math_init (the f64 library's compiler barrier)
}
