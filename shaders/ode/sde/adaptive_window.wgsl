// The adaptive SDE kernels' uniform (milstein-adaptive): the adaptive window plus the noise
// key and the Brownian tree's depth. Included by ode/sde/adaptive.wgsl and
// ode/sde/adaptive_events.wgsl; `sde::run::adaptive_uniform` packs it (`ode::layout_check`
// holds the two together).
struct Window {
    n_traj: u32,       // trajectories in this chunk
    stride: u32,       // row length of the struct-of-arrays buffers (chunk capacity)
    save_first: u32,   // run-wide slot number of saved[] slot 0
    save_end: u32,     // one past the last run-wide slot saved[] holds
    n_slots: u32,      // save slots of the whole run
    max_attempts: u32, // step attempts per trajectory in this dispatch
    window: u32,       // this dispatch's counter in unfinished[]
    max_steps: u32,    // step attempts per trajectory in the whole run
    traj_base: u32,    // run-wide index of this chunk's first trajectory
    seed_lo: u32,      // the noise key
    seed_hi: u32,
    antithetic: u32,   // 1: trajectory 2j+1 takes path j negated
    depth: u32,        // levels of the Brownian tree
    t0: real,
    t1: real,
    dt_initial: real,
    dt_min: real,
    dt_max: real,
    one: real,         // 1.0, for math_init (the f64 library's compiler barrier)
}
