//! LU factorisation with partial pivoting of a dense dim × dim f64 matrix, in place, and
//! the solve: the CPU twin's half of STIFF.md step (c). The kernel's generated code
//! performs the same operations in the same order (it only leaves out the ones on
//! structural zeros, whose results are the same: `l * 0` and `x - 0` are exact), so both
//! factor W = I/(hγ) − J to the same bits.

/// A zero pivot: W is singular (to the last bit) at this column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Singular {
    pub column: usize,
}

/// Factors the row-major `w` (dim × dim) in place into L (unit diagonal, strictly below
/// the diagonal) and U (on and above it), returning the pivot row chosen at each column.
///
/// At column k the pivot is the first row i >= k with the largest |w[i][k]| (a later row
/// replaces it only when strictly larger, so ties keep the earlier row, as the kernel's
/// `select` chain does). A pivot that is exactly 0 stops the factorisation: there is no
/// retry with another step size, the trajectory ends `Singular`.
pub fn factor(w: &mut [f64], dim: usize) -> Result<Vec<usize>, Singular> {
    debug_assert_eq!(w.len(), dim * dim);
    let mut pivots = Vec::with_capacity(dim);
    for k in 0..dim {
        let mut p = k;
        let mut best = w[k * dim + k].abs();
        for i in k + 1..dim {
            let v = w[i * dim + k].abs();
            if v > best {
                best = v;
                p = i;
            }
        }
        if w[p * dim + k] == 0.0 {
            return Err(Singular { column: k });
        }
        if p != k {
            for j in 0..dim {
                w.swap(k * dim + j, p * dim + j);
            }
        }
        pivots.push(p);
        let pivot = w[k * dim + k];
        for i in k + 1..dim {
            let l = w[i * dim + k] / pivot;
            w[i * dim + k] = l;
            for j in k + 1..dim {
                w[i * dim + j] -= l * w[k * dim + j];
            }
        }
    }
    Ok(pivots)
}

/// Solves `W x = b` in place from `factor`'s output: the row swaps in the order they were
/// made, forward substitution with L (unit diagonal) subtracting one term at a time in
/// ascending column, then back substitution with U from the last row up.
pub fn solve(lu: &[f64], dim: usize, pivots: &[usize], b: &mut [f64]) {
    for (k, &p) in pivots.iter().enumerate() {
        b.swap(k, p);
    }
    for i in 1..dim {
        let mut acc = b[i];
        for j in 0..i {
            acc -= lu[i * dim + j] * b[j];
        }
        b[i] = acc;
    }
    for i in (0..dim).rev() {
        let mut acc = b[i];
        for j in i + 1..dim {
            acc -= lu[i * dim + j] * b[j];
        }
        b[i] = acc / lu[i * dim + i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so failures reproduce.
    fn rng(state: &mut u64) -> f64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        (*state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    fn mat_vec(a: &[f64], dim: usize, x: &[f64]) -> Vec<f64> {
        (0..dim)
            .map(|i| (0..dim).map(|j| a[i * dim + j] * x[j]).sum())
            .collect()
    }

    #[test]
    fn random_systems_are_solved_to_a_backward_stable_residual() {
        let mut s = 0x9e3779b97f4a7c15;
        for dim in [1, 2, 3, 5, 8, 20, 32] {
            for _ in 0..20 {
                let a: Vec<f64> = (0..dim * dim).map(|_| rng(&mut s)).collect();
                let x: Vec<f64> = (0..dim).map(|_| rng(&mut s)).collect();
                let b = mat_vec(&a, dim, &x);
                let mut lu = a.clone();
                let piv = factor(&mut lu, dim).expect("random matrices are regular");
                let mut sol = b.clone();
                solve(&lu, dim, &piv, &mut sol);
                // Partial pivoting is backward stable: the residual is a modest multiple of
                // dim * eps * |A| |x| (Higham, Accuracy and Stability, Thm 9.5; growth
                // factors of random matrices are small).
                let r = mat_vec(&a, dim, &sol);
                let norm_a = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let norm_x = sol.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                for i in 0..dim {
                    let bound = 64.0 * dim as f64 * f64::EPSILON * norm_a * norm_x * dim as f64;
                    assert!(
                        (r[i] - b[i]).abs() <= bound,
                        "dim {dim}: residual {}",
                        r[i] - b[i]
                    );
                }
            }
        }
    }

    #[test]
    fn a_zero_leading_entry_is_pivoted_away() {
        // [[0, 2], [3, 1]] x = [4, 5] -> x = (1, 2); without the swap the first pivot is 0.
        let mut lu = vec![0.0, 2.0, 3.0, 1.0];
        let piv = factor(&mut lu, 2).unwrap();
        assert_eq!(piv, vec![1, 1]);
        let mut b = vec![4.0, 5.0];
        solve(&lu, 2, &piv, &mut b);
        assert_eq!(b, vec![1.0, 2.0]);
    }

    #[test]
    fn ties_keep_the_first_row() {
        let mut lu = vec![2.0, 1.0, -2.0, 3.0];
        assert_eq!(factor(&mut lu, 2).unwrap(), vec![0, 1]);
        let mut lu = vec![1.0, 1.0, -2.0, 3.0, 2.0, 5.0, 0.5, 0.0, 1.0];
        assert_eq!(factor(&mut lu, 3).unwrap()[0], 1);
    }

    #[test]
    fn singular_matrices_name_the_zero_column() {
        assert_eq!(factor(&mut [0.0], 1), Err(Singular { column: 0 }));
        // Second row twice the first: the elimination leaves an exact 0 on the diagonal of
        // the last column.
        let mut lu = vec![1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 1.0, 0.0, 1.0];
        assert_eq!(factor(&mut lu, 3), Err(Singular { column: 2 }));
        assert_eq!(
            factor(&mut [1.0, 2.0, 2.0, 4.0], 2),
            Err(Singular { column: 1 })
        );
    }
}
