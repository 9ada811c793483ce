// Per-trajectory status codes, shared by every ODE kernel. The host's `ode::Status` has
// the same numbers; they are also the codes in status.npy.
const STATUS_RUNNING: u32 = 0u;
const STATUS_SUCCESS: u32 = 1u;
const STATUS_MAX_STEPS: u32 = 2u;
const STATUS_STEP_UNDERFLOW: u32 = 3u;
const STATUS_NON_FINITE: u32 = 4u;
const STATUS_SINGULAR: u32 = 5u;
// An event with action "terminate" ended the trajectory (ode::events).
const STATUS_TERMINATED: u32 = 6u;

// NaN and ±inf have an all-ones exponent. Tested on the bits because WGSL lets compilers
// assume floats are finite, which may fold `x != x` away.
fn finite_f32(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

fn nan_f32() -> f32 {
    return bitcast<f32>(0x7fc00000u);
}
