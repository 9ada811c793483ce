// The kernels' `real` type for f32 runs, with the helpers every kernel uses.
alias real = f32;
const REAL_EPS: f32 = 1.1920929e-7;

fn finite_real(x: real) -> bool {
    return finite_f32(x);
}

fn nan_real() -> real {
    return nan_f32();
}

// f32 kernels use the native functions; nothing to set up (see real_f64.wgsl).
fn math_init(one: real) {}
