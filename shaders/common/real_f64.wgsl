// The kernels' `real` type for f64 runs, with the helpers every kernel uses. Transcendental
// functions of f64 systems come from the math library (the emitter calls m64_*).
#include "common/math_f64.wgsl"

alias real = f64;
const REAL_EPS: f64 = 2.220446049250313e-16;

fn finite_real(x: real) -> bool {
    return finite_f64(x);
}

fn nan_real() -> real {
    return nan_f64();
}

// Called first thing in main with 1.0 read from a buffer (see m64_hide).
fn math_init(one: real) {
    m64_one = one;
}
