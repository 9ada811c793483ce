//! WGSL for the Lyapunov kernel (`shaders/ode/lyapunov/step.wgsl`): the system's
//! right-hand side and its sparse symbolic Jacobian, the state-only Runge–Kutta step of the
//! transient (`fixed::kernel::rk_step`), the augmented step that carries k tangent vectors
//! through the same stages (each tangent stage J(t_i, y_i)·q_i, structural zeros of J never
//! computed), modified Gram–Schmidt, and the block sums of the convergence estimate; all
//! unrolled, mirroring the CPU twin (`ode::lyapunov::cpu`) operation for operation.

use super::problem::initial_tangent;
use crate::gpu::shader::{ShaderError, compose};
use crate::model::System;
use crate::model::derive::Jacobian;
use crate::model::wgsl::{ProgramFn, emit_system_with, literal};
use crate::ode::codegen::{accessors, real_lib};
use crate::ode::fixed::kernel::rk_step;
use crate::ode::fixed::tableau::Tableau;
use crate::precision::Precision;
use std::fmt::Write;

pub const TEMPLATE: &str = "ode/lyapunov/step.wgsl";

/// Rows of the `tangent` buffer per exponent after the `dim` rows of its vector: the total
/// Σ ln R_mm, the current block's sum, and Welford's mean and M2 of the block exponents.
pub const ACC_ROWS: usize = 4;

/// The complete kernel for one system × Jacobian × tableau × k × workgroup size × precision.
pub fn lyapunov_wgsl(
    system: &System,
    jacobian: &Jacobian,
    tableau: &Tableau,
    k: usize,
    workgroup_size: u32,
    precision: Precision,
) -> Result<String, ShaderError> {
    let dim = system.dim();
    let fields = jacobian
        .entries
        .iter()
        .map(|&(r, c)| format!("j{r}_{c}"))
        .collect();
    let programs = [ProgramFn {
        program: &jacobian.program,
        fn_name: "jac",
        struct_name: "Jac",
        fields,
    }];
    let system_wgsl = emit_system_with(system, &programs, precision);
    let mut step = rk_step(tableau, dim);
    step.push('\n');
    step.push_str(&tangent_code(jacobian, tableau, dim, k, precision));
    let mut access = accessors(dim, system.n_params());
    access.push_str(&tangent_access(dim, k));
    compose(
        TEMPLATE,
        &[
            ("REAL_LIB", &real_lib(precision)?),
            ("WORKGROUP_SIZE", &workgroup_size.to_string()),
            ("SYSTEM", &system_wgsl),
            ("STEP", &step),
            ("ACCESS", &access),
        ],
    )
}

/// `Σ_j coef_j · name(j)` over non-zero coefficients in ascending j, a coefficient of 1 not
/// multiplied (as `ode::twin::weighted_sum`); `None` when all are zero.
fn weighted_by(coefs: &[f64], name: &dyn Fn(usize) -> String) -> Option<String> {
    let terms: Vec<String> = coefs
        .iter()
        .enumerate()
        .filter(|&(_, &a)| a != 0.0)
        .map(|(j, &a)| {
            if a == 1.0 {
                name(j)
            } else {
                format!("{} * {}", literal(a), name(j))
            }
        })
        .collect();
    (!terms.is_empty()).then(|| terms.join(" + "))
}

/// `base + dt * (Σ)`, or `base` when the sum is empty.
fn plus_dt(base: String, sum: Option<String>) -> String {
    match sum {
        Some(sum) => format!("{base} + dt * ({sum})"),
        None => base,
    }
}

/// `struct Tangent`, `struct Growth`, `struct Acc`, `jv`, `tangent_rhs`, `aug_step`, `mgs`,
/// and the accumulator updates.
fn tangent_code(
    jacobian: &Jacobian,
    tab: &Tableau,
    dim: usize,
    k: usize,
    precision: Precision,
) -> String {
    let mut s = String::new();
    let list = |n: usize, f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>().join(", ");
    let fields = |n: usize, f: &dyn Fn(usize) -> String| -> String {
        (0..n).map(|m| format!("    {},\n", f(m))).collect()
    };
    let _ = writeln!(
        s,
        "// The k = {k} tangent vectors, each a State.\nstruct Tangent {{\n{}}}\n",
        fields(k, &|m| format!("v{m}: State"))
    );
    let _ = writeln!(
        s,
        "// ln R_mm of one re-orthonormalisation.\nstruct Growth {{\n{}}}\n",
        fields(k, &|m| format!("g{m}: real"))
    );
    let _ = writeln!(
        s,
        "// Per exponent: Σ ln R_mm over the run (s), over the current block (b), and\n\
         // Welford's running mean and M2 of the block exponents.\nstruct Acc {{\n{}}}\n",
        fields(k, &|m| format!(
            "s{m}: real, b{m}: real, mean{m}: real, m2_{m}: real"
        ))
    );
    let _ = writeln!(
        s,
        "struct Aug {{\n    y: State,\n    q: Tangent,\n}}\n\nstruct Ortho {{\n    q: Tangent,\n    g: Growth,\n}}\n"
    );

    // J·v, row by row over the structural non-zeros.
    let rows: Vec<String> = (0..dim)
        .map(|r| {
            let terms: Vec<String> = jacobian
                .entries
                .iter()
                .filter(|&&(row, _)| row == r)
                .map(|&(_, c)| format!("j.j{r}_{c} * v.x{c}"))
                .collect();
            if terms.is_empty() {
                "real(0.0)".into()
            } else {
                terms.join(" + ")
            }
        })
        .collect();
    let _ = writeln!(
        s,
        "// J·v over J's structural non-zeros.\nfn jv(j: Jac, v: State) -> State {{\n    return State({});\n}}\n",
        rows.join(", ")
    );
    let _ = writeln!(
        s,
        "fn tangent_rhs(j: Jac, q: Tangent) -> Tangent {{\n    return Tangent({});\n}}\n",
        list(k, &|m| format!("jv(j, q.v{m})"))
    );

    // The augmented step.
    let _ = writeln!(
        s,
        "// {} on the state and its k tangent vectors: the same stages, each tangent stage\n\
         // J(t_i, y_i)·q_i.\nfn aug_step(t: real, dt: real, y: State, q: Tangent, p: Params) -> Aug {{",
        tab.name
    );
    for i in 0..tab.stages() {
        let ti = if tab.c[i] == 0.0 {
            "t".to_string()
        } else {
            format!("t + {} * dt", literal(tab.c[i]))
        };
        let a = tab.a[i];
        let yi = if a.iter().all(|&x| x == 0.0) {
            "y".to_string()
        } else {
            format!(
                "State({})",
                list(dim, &|c| plus_dt(
                    format!("y.x{c}"),
                    weighted_by(a, &|j| format!("k{j}.x{c}"))
                ))
            )
        };
        let qi = if a.iter().all(|&x| x == 0.0) {
            "q".to_string()
        } else {
            format!(
                "Tangent({})",
                list(k, &|m| format!(
                    "State({})",
                    list(dim, &|c| plus_dt(
                        format!("q.v{m}.x{c}"),
                        weighted_by(a, &|j| format!("g{j}.v{m}.x{c}"))
                    ))
                ))
            )
        };
        let _ = writeln!(
            s,
            "    let y{i} = {yi};\n    let q{i} = {qi};\n    let k{i} = rhs({ti}, y{i}, p);\n    let g{i} = tangent_rhs(jac({ti}, y{i}, p), q{i});"
        );
    }
    let y_new = format!(
        "State({})",
        list(dim, &|c| plus_dt(
            format!("y.x{c}"),
            weighted_by(tab.b, &|j| format!("k{j}.x{c}"))
        ))
    );
    let q_new = format!(
        "Tangent({})",
        list(k, &|m| format!(
            "State({})",
            list(dim, &|c| plus_dt(
                format!("q.v{m}.x{c}"),
                weighted_by(tab.b, &|j| format!("g{j}.v{m}.x{c}"))
            ))
        ))
    );
    let _ = writeln!(s, "    return Aug({y_new}, {q_new});\n}}\n");

    // Modified Gram–Schmidt.
    let dot =
        |a: &str, b: &str| list(dim, &|c| format!("{a}.x{c} * {b}.x{c}")).replace(", ", " + ");
    let log = match precision {
        Precision::F32 => "log",
        Precision::F64 => "m64_log",
    };
    let _ = writeln!(
        s,
        "fn dot_state(a: State, b: State) -> real {{\n    return {};\n}}\n",
        dot("a", "b")
    );
    let _ = writeln!(
        s,
        "fn axpy_state(r: real, u: State, v: State) -> State {{\n    return State({});\n}}\n",
        list(dim, &|c| format!("v.x{c} - r * u.x{c}"))
    );
    let _ = writeln!(
        s,
        "fn scale_state(f: real, v: State) -> State {{\n    return State({});\n}}\n",
        list(dim, &|c| format!("v.x{c} * f"))
    );
    s.push_str(
        "// Modified Gram–Schmidt: each vector loses its components along the ones before it\n\
         // (already orthonormal), then is scaled to unit length; ln R_mm are the growths.\n\
         fn mgs(q: Tangent) -> Ortho {\n",
    );
    for m in 0..k {
        let _ = writeln!(s, "    var w{m} = q.v{m};");
        for l in 0..m {
            let _ = writeln!(
                s,
                "    w{m} = axpy_state(dot_state(w{l}, w{m}), w{l}, w{m});"
            );
        }
        let _ = writeln!(
            s,
            "    let n{m} = sqrt(dot_state(w{m}, w{m}));\n    w{m} = scale_state(real(1.0) / n{m}, w{m});"
        );
    }
    let _ = writeln!(
        s,
        "    return Ortho(Tangent({}), Growth({}));\n}}\n",
        list(k, &|m| format!("w{m}")),
        list(k, &|m| format!("{log}(n{m})"))
    );

    let q0 = initial_tangent(dim, k);
    let _ = writeln!(
        s,
        "// The vectors every trajectory starts from (`problem::initial_tangent`).\n\
         fn initial_tangent() -> Tangent {{\n    return Tangent({});\n}}\n",
        list(k, &|m| format!(
            "State({})",
            list(dim, &|c| literal(q0[m][c]))
        ))
    );
    let _ = writeln!(
        s,
        "fn growth_finite(g: Growth) -> bool {{\n    return {};\n}}\n",
        (0..k)
            .map(|m| format!("finite_real(g.g{m})"))
            .collect::<Vec<_>>()
            .join(" && ")
    );
    let _ = writeln!(
        s,
        "fn tangent_finite(q: Tangent) -> bool {{\n    return {};\n}}\n",
        (0..k)
            .map(|m| format!("state_finite(q.v{m})"))
            .collect::<Vec<_>>()
            .join(" && ")
    );
    s.push_str("fn accumulate(a: ptr<function, Acc>, g: Growth) {\n");
    for m in 0..k {
        let _ = writeln!(
            s,
            "    (*a).s{m} = (*a).s{m} + g.g{m};\n    (*a).b{m} = (*a).b{m} + g.g{m};"
        );
    }
    s.push_str(
        "}\n\n// A block ends: its exponents join Welford's mean and M2 (the n-th block).\n\
         fn close_block(a: ptr<function, Acc>, n: real, block_time: real) {\n",
    );
    for m in 0..k {
        let _ = writeln!(
            s,
            "    let x{m} = (*a).b{m} / block_time;\n    let d{m} = x{m} - (*a).mean{m};\n    \
             (*a).mean{m} = (*a).mean{m} + d{m} / n;\n    \
             (*a).m2_{m} = (*a).m2_{m} + d{m} * (x{m} - (*a).mean{m});\n    (*a).b{m} = real(0.0);"
        );
    }
    s.push_str("}\n");
    s
}

/// Loads and stores of the tangent vectors and accumulators (`tangent` buffer, rows
/// `[m·dim + c]` for vector m's component c, then `ACC_ROWS` rows per exponent), and the
/// final exponents and errors (`results`, rows m and k + m).
fn tangent_access(dim: usize, k: usize) -> String {
    let row = |r: usize| format!("tangent[i + {r}u * win.stride]");
    let acc_base = dim * k;
    let acc = |m: usize, f: usize| row(acc_base + ACC_ROWS * m + f);
    let acc_names = ["s", "b", "mean", "m2_"];
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nfn load_tangent(i: u32) -> Tangent {{\n    return Tangent({});\n}}\n",
        (0..k)
            .map(|m| format!(
                "State({})",
                (0..dim)
                    .map(|c| row(m * dim + c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    s.push_str("fn store_tangent(i: u32, q: Tangent) {\n");
    for m in 0..k {
        for c in 0..dim {
            let _ = writeln!(s, "    {} = q.v{m}.x{c};", row(m * dim + c));
        }
    }
    s.push_str("}\n\nfn load_acc(i: u32) -> Acc {\n    var a: Acc;\n");
    for m in 0..k {
        for (f, name) in acc_names.iter().enumerate() {
            let _ = writeln!(s, "    a.{name}{m} = {};", acc(m, f));
        }
    }
    s.push_str("    return a;\n}\n\nfn store_acc(i: u32, a: Acc) {\n");
    for m in 0..k {
        for (f, name) in acc_names.iter().enumerate() {
            let _ = writeln!(s, "    {} = a.{name}{m};", acc(m, f));
        }
    }
    s.push_str(
        "}\n\n// The exponents Σ ln R_mm / T and the standard errors of the block means,\n\
         // sqrt(M2 / (B (B - 1))).\nfn store_results(i: u32, a: Acc, inv_time: real, blocks: real) {\n",
    );
    for m in 0..k {
        let _ = writeln!(
            s,
            "    results[i + {m}u * win.stride] = a.s{m} * inv_time;\n    \
             results[i + {}u * win.stride] = sqrt(a.m2_{m} / (blocks * (blocks - real(1.0))));",
            k + m
        );
    }
    s.push_str("}\n\nfn store_nan_results(i: u32) {\n");
    for r in 0..2 * k {
        let _ = writeln!(s, "    results[i + {r}u * win.stride] = nan_real();");
    }
    s.push_str("}\n");
    s
}
