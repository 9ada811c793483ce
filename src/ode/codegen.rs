//! WGSL pieces every method family's kernel is built from: the `real` library of a
//! precision, stage sums in the order the CPU twins sum them, and the loads, stores and
//! saves of one trajectory in the struct-of-arrays buffers.

use crate::gpu::shader::{ShaderError, compose};
use crate::model::wgsl::literal;
use crate::precision::Precision;
use std::fmt::Write;

/// The `real` type and its helpers (`finite_real`, `nan_real`, `REAL_EPS`; for f64 also the
/// math library) for a precision.
pub fn real_lib(precision: Precision) -> Result<String, ShaderError> {
    compose(&format!("common/real_{}.wgsl", precision.wgsl()), &[])
}

/// `sum_j coef_j * k_j.x{c}` over non-zero coefficients, in ascending j (the CPU twin sums
/// in the same order); `None` if all are zero.
pub fn weighted(coefs: &[f64], c: usize) -> Option<String> {
    let terms: Vec<String> = coefs
        .iter()
        .enumerate()
        .filter(|&(_, &a)| a != 0.0)
        .map(|(j, &a)| {
            if a == 1.0 {
                format!("k{j}.x{c}")
            } else {
                format!("{} * k{j}.x{c}", literal(a))
            }
        })
        .collect();
    (!terms.is_empty()).then(|| terms.join(" + "))
}

pub fn combine(coefs: &[f64], dim: usize) -> String {
    let parts: Vec<String> = (0..dim)
        .map(|c| match weighted(coefs, c) {
            Some(sum) => format!("y.x{c} + dt * ({sum})"),
            None => format!("y.x{c}"),
        })
        .collect();
    format!("State({})", parts.join(", "))
}

/// Input signals (model::signal): the same interpolation as `Signal::eval`, reading the
/// sensor values that follow the parameters in this trajectory's parameter slots.
const INPUT_VALUE: &str =
    "// The trajectory this invocation integrates, set once by main(); input_value reads it.
var<private> traj: u32;

fn input_value(first: u32, m: u32, t0: real, inverse_spacing: real, t: real) -> real {
    let s = clamp((t - t0) * inverse_spacing, real(0.0), real(m - 1u));
    let j = min(u32(s), m - 2u);
    let f = s - real(j);
    let a = params[traj + (first + j) * win.stride];
    let b = params[traj + (first + j + 1u) * win.stride];
    return a + f * (b - a);
}

";

/// Loads, stores and saves of one trajectory's components, plus the finiteness test. State
/// and parameters are struct-of-arrays ([component][stride]); saves are [slot][stride][dim],
/// the file's own layout, so a slot of a chunk reaches disk as one contiguous block (each
/// invocation writes `dim` adjacent values and its neighbours the next ones, so the writes
/// stay coalesced).
pub fn accessors(dim: usize, n_params: usize) -> String {
    let offset = |c: usize| match c {
        0 => String::new(),
        1 => " + win.stride".into(),
        c => format!(" + {c}u * win.stride"),
    };
    let list = |n: usize, f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>().join(", ");
    let lines = |n: usize, f: &dyn Fn(usize) -> String| {
        (0..n)
            .map(|c| format!("    {};\n", f(c)))
            .collect::<String>()
    };

    let mut s = String::new();
    let _ = writeln!(
        s,
        "fn load_state(i: u32) -> State {{\n    return State({});\n}}\n",
        list(dim, &|c| format!("state[i{}]", offset(c)))
    );
    let _ = writeln!(
        s,
        "fn store_state(i: u32, u: State) {{\n{}}}\n",
        lines(dim, &|c| format!("state[i{}] = u.x{c}", offset(c)))
    );
    let params = if n_params == 0 {
        "real(0.0)".to_string()
    } else {
        list(n_params, &|c| format!("params[i{}]", offset(c)))
    };
    let _ = writeln!(
        s,
        "fn load_params(i: u32) -> Params {{\n    return Params({params});\n}}\n"
    );
    s.push_str(INPUT_VALUE);
    let _ = writeln!(
        s,
        "fn save_state(slot: u32, i: u32, u: State) {{\n    let base = (slot * win.stride + i) * {dim}u;\n{}}}\n",
        lines(dim, &|c| format!("saved[base + {c}u] = u.x{c}"))
    );
    let _ = writeln!(
        s,
        "fn save_nan(slot: u32, i: u32) {{\n    let base = (slot * win.stride + i) * {dim}u;\n{}}}\n",
        lines(dim, &|c| format!("saved[base + {c}u] = nan_real()"))
    );
    let _ = writeln!(
        s,
        "fn state_finite(u: State) -> bool {{\n    return {};\n}}",
        (0..dim)
            .map(|c| format!("finite_real(u.x{c})"))
            .collect::<Vec<_>>()
            .join(" && ")
    );
    s
}
