// The adaptive kernels' uniform: the run's span and step limits, and the batch of save
// slots this dispatch writes. Included by ode/adaptive/{step,events}.wgsl and
// ode/stiff/{step,events}.wgsl (the stiff kernels take the adaptive window:
// `adaptive::run::window_uniform` packs it; `ode::layout_check` holds the two together).
struct Window {
    n_traj: u32,       // trajectories in this chunk
    stride: u32,       // row length of the struct-of-arrays buffers (chunk capacity)
    save_first: u32,   // run-wide slot number of saved[] slot 0
    save_end: u32,     // one past the last run-wide slot saved[] holds
    n_slots: u32,      // save slots of the whole run
    max_attempts: u32, // step attempts per trajectory in this dispatch
    window: u32,       // this dispatch's counter in unfinished[]
    max_steps: u32,    // step attempts per trajectory in the whole run
    t0: real,
    t1: real,
    dt_initial: real,  // 0: Hairer's heuristic
    dt_min: real,
    dt_max: real,
    one: real,         // 1.0, for math_init (the f64 library's compiler barrier)
}
