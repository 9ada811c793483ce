//! Arithmetic the CPU twins of every family share, written to match the WGSL generators
//! operation for operation (`ode::codegen`), so that twin and kernel round alike.

/// `sum_j coef_j * k[j][c]` over the non-zero coefficients in ascending `j`, a coefficient
/// of 1 not multiplied: the same operations in the same order as the WGSL generator's
/// `codegen::weighted`. `None` when every coefficient is zero.
pub fn weighted_sum(coefs: &[f64], k: &[Vec<f64>], c: usize) -> Option<f64> {
    let mut acc = None;
    for (j, &a) in coefs.iter().enumerate() {
        if a != 0.0 {
            let term = if a == 1.0 { k[j][c] } else { a * k[j][c] };
            acc = Some(acc.map_or(term, |x: f64| x + term));
        }
    }
    acc
}
