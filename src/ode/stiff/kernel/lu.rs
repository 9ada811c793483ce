//! WGSL for the LU factorisation of W = fac·I − J with partial pivoting, unrolled over the
//! structural pattern of W (`STIFF.md`, step c): one struct field per entry that may be
//! non-zero after fill-in, pivot searches only among the rows that may hold a non-zero in
//! the pivot column, row swaps as `select`s and pivot indices replayed in each solve. No
//! private array is indexed dynamically (lavapipe spills such arrays to memory, and GPUs
//! put them in slow local memory). The operations and their order are the CPU twin's
//! (`ode::stiff::lu`): skipped terms are exact zeros there.

use std::fmt::Write;

/// The factorisation's fill-in, computed at generation time: what `lu_factor` and
/// `lu_solve` touch.
#[derive(Debug, Clone, PartialEq)]
pub struct Symbolic {
    pub dim: usize,
    /// Per column k: the candidate pivot rows, k first, then ascending.
    pub candidates: Vec<Vec<usize>>,
    /// Which entries may be non-zero once factorised (L below the diagonal, U on and above).
    pub pattern: Vec<Vec<bool>>,
}

/// One step of the symbolic factorisation, replayed by the generator.
enum Op {
    /// Column k with several candidates: search, singular check, swap of the union of the
    /// candidates' patterns (`cols`).
    Pivot {
        k: usize,
        rows: Vec<usize>,
        cols: Vec<usize>,
    },
    /// Column k with the diagonal its only candidate: singular check only.
    Diagonal { k: usize },
    /// Row i at column k: multiplier, then `cols` (> k) of row i updated from row k;
    /// `fresh[j]` says row i's entry was a structural zero before (fill-in).
    Eliminate {
        k: usize,
        i: usize,
        cols: Vec<(usize, bool)>,
    },
}

/// Entries of W that may be non-zero before factorising: the diagonal (fac − J_ii) and J's
/// structural non-zeros.
fn initial_pattern(dim: usize, entries: &[(usize, usize)]) -> Vec<Vec<bool>> {
    let mut p = vec![vec![false; dim]; dim];
    for (i, row) in p.iter_mut().enumerate() {
        row[i] = true;
    }
    for &(r, c) in entries {
        p[r][c] = true;
    }
    p
}

fn analyse(dim: usize, entries: &[(usize, usize)]) -> (Symbolic, Vec<Op>) {
    let mut p = initial_pattern(dim, entries);
    let mut ops = Vec::new();
    let mut candidates = Vec::with_capacity(dim);
    for k in 0..dim {
        let rows: Vec<usize> = std::iter::once(k)
            .chain((k + 1..dim).filter(|&i| p[i][k]))
            .collect();
        if rows.len() > 1 {
            // After the swap any candidate row may hold any candidate's entries.
            let cols: Vec<usize> = (0..dim)
                .filter(|&j| rows.iter().any(|&r| p[r][j]))
                .collect();
            for &r in &rows {
                for &j in &cols {
                    p[r][j] = true;
                }
            }
            ops.push(Op::Pivot {
                k,
                rows: rows.clone(),
                cols,
            });
        } else {
            ops.push(Op::Diagonal { k });
        }
        for &i in &rows[1..] {
            let cols: Vec<(usize, bool)> = (k + 1..dim)
                .filter(|&j| p[k][j])
                .map(|j| (j, !p[i][j]))
                .collect();
            for &(j, _) in &cols {
                p[i][j] = true;
            }
            ops.push(Op::Eliminate { k, i, cols });
        }
        candidates.push(rows);
    }
    (
        Symbolic {
            dim,
            candidates,
            pattern: p,
        },
        ops,
    )
}

/// The fill-in of W's factorisation for a Jacobian with these structural non-zeros.
pub fn symbolic(dim: usize, entries: &[(usize, usize)]) -> Symbolic {
    analyse(dim, entries).0
}

fn w(i: usize, j: usize) -> String {
    format!("(*lu).w{i}_{j}")
}

/// `struct Lu`, `fn lu_factor(fac: real, jv: Jac, lu: ptr<function, Lu>) -> bool` (false:
/// an exactly zero pivot, W is singular) and `fn lu_solve(lu: ptr<function, Lu>, r: State)
/// -> State`. `jac_field(r, c)` names J's entry in `struct Jac`. Back substitution
/// multiplies by 1/U_ii, formed once per factorisation, where the twin (`ode::stiff::lu`)
/// divides by U_ii: a rounding apart (≤ 1 ulp per row), and the kernel's largest cost saved.
pub fn lu_wgsl(
    dim: usize,
    entries: &[(usize, usize)],
    jac_field: &dyn Fn(usize, usize) -> String,
) -> String {
    let (sym, ops) = analyse(dim, entries);
    let mut s = String::new();

    // struct Lu: the final pattern, then one pivot index per column that searches.
    s.push_str("struct Lu {\n");
    for i in 0..dim {
        for j in 0..dim {
            if sym.pattern[i][j] {
                let _ = writeln!(s, "    w{i}_{j}: real,");
            }
        }
    }
    for i in 0..dim {
        let _ = writeln!(s, "    r{i}: real,");
    }
    for (k, rows) in sym.candidates.iter().enumerate() {
        if rows.len() > 1 {
            let _ = writeln!(s, "    piv{k}: u32,");
        }
    }
    s.push_str("}\n\n");

    // lu_factor: W's initial entries, then the columns in order.
    s.push_str("fn lu_factor(fac: real, jv: Jac, lu: ptr<function, Lu>) -> bool {\n");
    let mut p = initial_pattern(dim, entries);
    let cells = || (0..dim).flat_map(|i| (0..dim).map(move |j| (i, j)));
    for (i, j) in cells() {
        if p[i][j] {
            let structural = entries.binary_search(&(i, j)).is_ok();
            let value = match (i == j, structural) {
                (true, true) => format!("fac - jv.{}", jac_field(i, j)),
                (true, false) => "fac".into(),
                (false, _) => format!("-jv.{}", jac_field(i, j)),
            };
            let _ = writeln!(s, "    {} = {value};", w(i, j));
        }
    }
    // Entries that only fill in start at zero.
    for (i, j) in cells() {
        if sym.pattern[i][j] && !p[i][j] {
            let _ = writeln!(s, "    {} = real(0.0);", w(i, j));
        }
    }
    // From here on every field of the final pattern holds its value (zero where the
    // current pattern has none), so reading a field is always right; `p` only decides which
    // operations can be skipped.
    for op in &ops {
        match op {
            Op::Diagonal { k } => {
                let _ = writeln!(
                    s,
                    "    // column {k}: the diagonal is the only candidate\n    if {} == real(0.0) {{\n        return false;\n    }}",
                    w(*k, *k)
                );
            }
            Op::Pivot { k, rows, cols } => {
                let k = *k;
                let _ = writeln!(
                    s,
                    "    // column {k}: pivot among rows {rows:?} (first largest |w|)\n    {{\n        var best = abs({});\n        var piv = {k}u;",
                    w(k, k)
                );
                for &r in &rows[1..] {
                    let _ = writeln!(
                        s,
                        "        let a{r} = abs({});\n        let b{r} = a{r} > best;\n        best = select(best, a{r}, b{r});\n        piv = select(piv, {r}u, b{r});",
                        w(r, k)
                    );
                }
                let _ = writeln!(
                    s,
                    "        if best == real(0.0) {{\n            return false;\n        }}\n        (*lu).piv{k} = piv;"
                );
                // Swap rows k and piv over every column any candidate may hold.
                for &j in cols {
                    let val = |r: usize| {
                        if p[r][j] {
                            w(r, j)
                        } else {
                            "real(0.0)".to_string()
                        }
                    };
                    let mut new_k = val(k);
                    for &r in &rows[1..] {
                        new_k = format!("select({new_k}, {}, piv == {r}u)", val(r));
                    }
                    // Both new values are read before either row is written.
                    let _ = writeln!(s, "        let o{j} = {};", val(k));
                    let _ = writeln!(s, "        let n{j} = {new_k};");
                    for &r in &rows[1..] {
                        let _ = writeln!(
                            s,
                            "        {} = select({}, o{j}, piv == {r}u);",
                            w(r, j),
                            val(r)
                        );
                    }
                    let _ = writeln!(s, "        {} = n{j};", w(k, j));
                }
                s.push_str("    }\n");
                for &r in rows {
                    for &j in cols {
                        p[r][j] = true;
                    }
                }
            }
            Op::Eliminate { k, i, cols } => {
                let (k, i) = (*k, *i);
                let _ = writeln!(
                    s,
                    "    {{\n        let l = {} / {};\n        {} = l;",
                    w(i, k),
                    w(k, k),
                    w(i, k)
                );
                for &(j, fresh) in cols {
                    let old = if fresh {
                        "real(0.0)".to_string()
                    } else {
                        w(i, j)
                    };
                    let _ = writeln!(s, "        {} = {old} - l * {};", w(i, j), w(k, j));
                    p[i][j] = true;
                }
                s.push_str("    }\n");
            }
        }
    }
    // U's reciprocal diagonal, formed once per factorisation: each of the method's solves
    // multiplies by it (a division per row and solve costs lavapipe's f64 path about a third
    // of a Rodas5P attempt on ROBER).
    for i in 0..dim {
        let _ = writeln!(s, "    (*lu).r{i} = real(1.0) / {};", w(i, i));
    }
    s.push_str("    return true;\n}\n\n");

    // lu_solve: the swaps in order, forward substitution (unit L), back substitution.
    s.push_str("fn lu_solve(lu: ptr<function, Lu>, r: State) -> State {\n");
    for c in 0..dim {
        let _ = writeln!(s, "    var b{c} = r.x{c};");
    }
    for (k, rows) in sym.candidates.iter().enumerate() {
        if rows.len() < 2 {
            continue;
        }
        let mut new_k = format!("b{k}");
        for &r in &rows[1..] {
            new_k = format!("select({new_k}, b{r}, (*lu).piv{k} == {r}u)");
        }
        let _ = writeln!(s, "    {{\n        let o = b{k};\n        let n = {new_k};");
        for &r in &rows[1..] {
            let _ = writeln!(s, "        b{r} = select(b{r}, o, (*lu).piv{k} == {r}u);");
        }
        let _ = writeln!(s, "        b{k} = n;\n    }}");
    }
    for i in 1..dim {
        let terms: String = (0..i)
            .filter(|&j| sym.pattern[i][j])
            .map(|j| format!(" - {} * b{j}", w(i, j)))
            .collect();
        if !terms.is_empty() {
            let _ = writeln!(s, "    b{i} = b{i}{terms};");
        }
    }
    for i in (0..dim).rev() {
        let terms: String = (i + 1..dim)
            .filter(|&j| sym.pattern[i][j])
            .map(|j| format!(" - {} * b{j}", w(i, j)))
            .collect();
        let _ = writeln!(s, "    b{i} = (b{i}{terms}) * (*lu).r{i};");
    }
    let _ = writeln!(
        s,
        "    return State({});\n}}\n",
        (0..dim)
            .map(|c| format!("b{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diagonal_jacobian_needs_no_pivoting_and_fills_nothing() {
        let sym = symbolic(3, &[(0, 0), (2, 2)]);
        assert!(sym.candidates.iter().all(|c| c.len() == 1));
        for (i, row) in sym.pattern.iter().enumerate() {
            for (j, &nz) in row.iter().enumerate() {
                assert_eq!(nz, i == j);
            }
        }
    }

    #[test]
    fn an_arrow_fills_in_after_the_first_swap() {
        // Row 0 and column 0 full: column 0's candidates are every row, and the swap may
        // bring row 0's entries into any of them, so W fills in completely.
        let entries = [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0)];
        let sym = symbolic(3, &entries);
        assert_eq!(sym.candidates[0], vec![0, 1, 2]);
        assert!(sym.pattern.iter().flatten().all(|&nz| nz));
        // ROBER: column 0 has rows 0 and 1; row 2 only depends on y2.
        let rober = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 1)];
        let sym = symbolic(3, &rober);
        assert_eq!(sym.candidates, vec![vec![0, 1], vec![1, 2], vec![2]]);
    }
}
