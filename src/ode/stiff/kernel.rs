//! WGSL for the stiff ensemble kernel (`shaders/ode/stiff/step.wgsl`): one Rosenbrock
//! method's attempt (Jacobian, W = fac·I − J factorised with partial pivoting over its
//! sparsity, the stages' solves, the error norm), its step-size controller and dense output,
//! and for `auto` the Tsit5 pair of the adaptive generator beside it with the stiffness
//! estimates that switch between them. Everything is unrolled from `ode::stiff::tableau` and
//! the system's symbolic Jacobians, mirroring the CPU twin (`ode::stiff::cpu`) operation for
//! operation (`STIFF.md` at the repository's worktree root describes the algorithm).

mod events;
mod lu;

pub use lu::{Symbolic, symbolic};

use super::cpu::{STIFF_LIMIT, SWITCH_AFTER};
use super::method::StiffMethod;
use super::problem::Jacobians;
use super::tableau::Rosenbrock;
use crate::gpu::shader::{ShaderError, compose};
use crate::model::System;
use crate::model::wgsl::{ProgramFn, emit_system_with, literal};
use crate::ode::adaptive::kernel::{initial_step, method as adaptive_method, scale};
use crate::ode::adaptive::pair::TSIT5;
use crate::ode::adaptive::problem::{Control, Exponents};
use crate::ode::codegen::{accessors, real_lib};
use crate::ode::events::kernel::events_wgsl;
use crate::precision::Precision;
use std::fmt::Write;

pub const TEMPLATE: &str = "ode/stiff/step.wgsl";
/// The kernel of a system with events (`ode::events`); `TEMPLATE` is untouched by them.
pub const EVENTS_TEMPLATE: &str = "ode/stiff/events.wgsl";

/// The complete kernel for one system × method × control × workgroup size × precision.
/// Without `dense` output (only the final state is saved, which the last step hits
/// exactly), the continuous extension is compiled out unless a continuous event needs it.
/// A system with events gets `EVENTS_TEMPLATE`.
pub fn stiff_wgsl(
    system: &System,
    method: StiffMethod,
    control: &Control,
    workgroup_size: u32,
    precision: Precision,
    dense: bool,
) -> Result<String, ShaderError> {
    let jacobians = Jacobians::of(system).map_err(|e| ShaderError::Generate(e.to_string()))?;
    let dim = system.dim();
    let fields = |prefix: &str, entries: &[(usize, usize)]| -> Vec<String> {
        entries
            .iter()
            .map(|&(r, c)| jac_field(prefix, r, c))
            .collect()
    };
    let mut programs = vec![ProgramFn {
        program: &jacobians.state.program,
        fn_name: "jac",
        struct_name: "Jac",
        fields: fields("j", &jacobians.state.entries),
    }];
    if jacobians.non_autonomous() {
        programs.push(ProgramFn {
            program: &jacobians.time.program,
            fn_name: "jac_t",
            struct_name: "JacT",
            fields: fields("t", &jacobians.time.entries),
        });
    }
    let has_events = !system.events.is_empty();
    let event_programs = has_events.then(|| events::Programs::of(system));
    if let Some(e) = &event_programs {
        programs.extend(e.fns());
    }
    let system_wgsl = emit_system_with(system, &programs, precision);
    // The dense-output rows: for saves between step ends, and to locate crossings.
    let rows = dense || (has_events && events::needs_dense(system));

    let mut access = accessors(dim, system.n_params());
    let f0 = |c: usize| format!("control[i + {}u * win.stride]", 3 + c);
    let _ = writeln!(
        access,
        "\nfn load_f0(i: u32) -> State {{\n    return State({});\n}}\n",
        (0..dim).map(f0).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(
        access,
        "fn store_f0(i: u32, f: State) {{\n{}}}",
        (0..dim)
            .map(|c| format!("    {} = f.x{c};\n", f0(c)))
            .collect::<String>()
    );

    let mut m = String::new();
    let auto = method.switches();
    let _ = writeln!(
        m,
        "const DENSE_OUTPUT: bool = {dense};\nconst AUTO: bool = {auto};\n\
         const STIFF_LIMIT: real = {};\nconst SWITCH_AFTER: u32 = {SWITCH_AFTER}u;",
        literal(STIFF_LIMIT)
    );
    if auto {
        m.push_str(&adaptive_method(&TSIT5, control, dim));
        m.push('\n');
    }
    m.push_str(&rosenbrock(
        method.tableau(),
        &jacobians,
        control,
        dim,
        rows,
        auto,
    ));
    m.push_str(&glue(method.tableau(), dim, rows, auto));

    if has_events {
        return compose(
            EVENTS_TEMPLATE,
            &[
                ("REAL_LIB", &real_lib(precision)?),
                ("WORKGROUP_SIZE", &workgroup_size.to_string()),
                ("SYSTEM", &system_wgsl),
                ("METHOD", &m),
                ("ACCESS", &access),
                (
                    "EVENTS",
                    &events_wgsl(system, precision, &events::INTERPOLANT),
                ),
            ],
        );
    }
    compose(
        TEMPLATE,
        &[
            ("REAL_LIB", &real_lib(precision)?),
            ("WORKGROUP_SIZE", &workgroup_size.to_string()),
            ("SYSTEM", &system_wgsl),
            ("METHOD", &m),
            ("ACCESS", &access),
        ],
    )
}

/// The field of `struct Jac` (`j`) or `struct JacT` (`t`) holding entry (r, c).
fn jac_field(prefix: &str, r: usize, c: usize) -> String {
    format!("{prefix}{r}_{c}")
}

/// `t + α·dt` as the twin computes it: `t` for α = 0, `t + dt` for α = 1.
fn stage_time(alpha: f64) -> String {
    if alpha == 0.0 {
        "t".into()
    } else if alpha == 1.0 {
        "t + dt".into()
    } else {
        format!("t + {} * dt", literal(alpha))
    }
}

/// `coef * name` (just `name` for 1).
fn times(coef: f64, name: &str) -> String {
    if coef == 1.0 {
        name.to_string()
    } else {
        format!("{} * {name}", literal(coef))
    }
}

/// `Σ_j coefs[j]·u{j}.x{c}` left to right over non-zero coefficients (a coefficient of 1
/// not multiplied), named by `coef_name`; `None` if all are zero. As `ode::twin::weighted_sum`.
fn sum_u(coefs: &[f64], c: usize, coef_name: &dyn Fn(usize, f64) -> String) -> Option<String> {
    let terms: Vec<String> = coefs
        .iter()
        .enumerate()
        .filter(|&(_, &a)| a != 0.0)
        .map(|(j, &a)| {
            if a == 1.0 {
                format!("u{j}.x{c}")
            } else {
                format!("{} * u{j}.x{c}", coef_name(j, a))
            }
        })
        .collect();
    (!terms.is_empty()).then(|| terms.join(" + "))
}

/// `head + (Σ)`: the sum formed first, as the twin adds it.
fn plus_sum(head: String, sum: Option<String>) -> String {
    match sum {
        Some(sum) => format!("{head} + ({sum})"),
        None => head,
    }
}

fn lit(_: usize, a: f64) -> String {
    literal(a)
}

/// The Rosenbrock method: constants, `struct Carry` (what a step leaves for the next one
/// and for dense output), `struct Step`, the LU, `ros_attempt`, its controller, its dense
/// output, and (without `auto`) the initial-step heuristic at the method's order.
fn rosenbrock(
    tab: &Rosenbrock,
    jac: &Jacobians,
    control: &Control,
    dim: usize,
    dense: bool,
    auto: bool,
) -> String {
    let exps = Exponents::of_order(tab.error_order);
    let f32_lit = |v: f64| format!("{:?}", v as f32);
    let s_n = tab.stages();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// {} (order {}, {} stages), W = I/(h*gamma) - J, PI step control",
        tab.name, tab.order, s_n
    );
    let _ = writeln!(
        s,
        "const ROS_EVALS: u32 = {}u;\nconst ROS_FSAL: bool = {};",
        tab.evals_per_attempt(),
        tab.fsal()
    );
    for (name, v) in [
        ("ROS_SAFETY", control.safety),
        ("ROS_MAX_GROWTH", control.max_growth),
        ("ROS_MAX_SHRINK", control.max_shrink),
        ("ROS_ALPHA", exps.alpha),
        ("ROS_BETA", exps.beta),
        ("ROS_REJECT_EXP", exps.reject),
        ("ROS_INIT_EXP", 1.0 / tab.order as f64),
    ] {
        let _ = writeln!(s, "const {name}: f32 = {};", f32_lit(v));
    }
    let n_q = if dense { tab.h.len() } else { 0 };
    let mut carry = String::from("    f0: State,\n");
    for q in 0..n_q {
        let _ = writeln!(carry, "    q{q}: State,");
    }
    if auto {
        carry.push_str("    ex: Stages,\n");
    }
    let _ = writeln!(
        s,
        "\n// What an attempt leaves: the first stage's f of the next attempt, the dense-output\n\
         // rows of the last attempt{}.\nstruct Carry {{\n{carry}}}\n",
        if auto { ", and Tsit5's stages" } else { "" }
    );
    let _ = writeln!(
        s,
        "struct Step {{\n    y1: State,\n    err: real,\n    status: u32,\n    // the last stage's f (FSAL methods)\n    fl: State,\n    // h * ||J||_inf (auto)\n    stiff: real,\n}}\n"
    );

    s.push_str(&lu::lu_wgsl(dim, &jac.state.entries, &|r, c| {
        jac_field("j", r, c)
    }));

    // ros_attempt
    s.push_str(
        "fn ros_attempt(t: real, dt: real, y: State, p: Params, c: ptr<function, Carry>) -> Step {\n    var out: Step;\n    out.status = STATUS_RUNNING;\n    let jv = jac(t, y, p);\n",
    );
    let time_dep = jac.non_autonomous();
    if time_dep {
        s.push_str("    let tv = jac_t(t, y, p);\n");
    }
    let mut checks: Vec<String> = jac
        .state
        .entries
        .iter()
        .map(|&(r, c)| format!("finite_real(jv.{})", jac_field("j", r, c)))
        .collect();
    if time_dep {
        checks.extend(
            jac.time
                .entries
                .iter()
                .map(|&(r, c)| format!("finite_real(tv.{})", jac_field("t", r, c))),
        );
    }
    if !checks.is_empty() {
        let _ = writeln!(
            s,
            "    if !({}) {{\n        out.status = STATUS_NON_FINITE;\n        return out;\n    }}",
            checks.join(" && ")
        );
    }
    let _ = writeln!(
        s,
        "    let fac = real(1.0) / (dt * {});\n    var lu: Lu;\n    if !lu_factor(fac, jv, &lu) {{\n        out.status = STATUS_SINGULAR;\n        return out;\n    }}\n    let inv_h = real(1.0) / dt;",
        literal(tab.gamma)
    );
    // ∂f/∂t per component, if structurally non-zero.
    let t_of = |c: usize| -> Option<String> {
        time_dep
            .then(|| jac.time.index(c, 0))
            .flatten()
            .map(|_| format!("tv.{}", jac_field("t", c, 0)))
    };
    for i in 0..s_n {
        let f = if i == 0 {
            "(*c).f0".to_string()
        } else {
            let args: Vec<String> = (0..dim)
                .map(|c| plus_sum(format!("y.x{c}"), sum_u(tab.a[i], c, &lit)))
                .collect();
            let _ = writeln!(
                s,
                "    let f{i} = rhs({}, State({}), p);",
                stage_time(tab.alpha[i]),
                args.join(", ")
            );
            format!("f{i}")
        };
        for (j, &cij) in tab.c[i].iter().enumerate() {
            if cij != 0.0 {
                let _ = writeln!(s, "    let c{i}_{j} = {} * inv_h;", literal(cij));
            }
        }
        let gterm = time_dep && tab.gammas[i] != 0.0;
        if gterm {
            let _ = writeln!(s, "    let g{i} = {} * dt;", literal(tab.gammas[i]));
        }
        let rhs: Vec<String> = (0..dim)
            .map(|c| {
                let mut r = plus_sum(
                    format!("{f}.x{c}"),
                    sum_u(tab.c[i], c, &|j, _| format!("c{i}_{j}")),
                );
                if gterm && let Some(tc) = t_of(c) {
                    r = format!("{r} + g{i} * {tc}");
                }
                r
            })
            .collect();
        let _ = writeln!(
            s,
            "    let u{i} = lu_solve(&lu, State({}));",
            rhs.join(", ")
        );
    }
    let y1: Vec<String> = (0..dim)
        .map(|c| plus_sum(format!("y.x{c}"), sum_u(tab.m, c, &lit)))
        .collect();
    let _ = writeln!(s, "    let y1 = State({});", y1.join(", "));
    s.push_str("    var acc = real(0.0);\n");
    for c in 0..dim {
        let _ = writeln!(
            s,
            "    let q{c} = ({}) / {};\n    acc += q{c} * q{c};",
            sum_u(tab.e, c, &lit).unwrap_or_else(|| "real(0.0)".into()),
            scale(control, dim, c, "y", Some("y1"))
        );
    }
    let _ = writeln!(
        s,
        "    out.y1 = y1;\n    out.err = sqrt(acc / real({dim}.0));"
    );
    for q in 0..n_q {
        let row: Vec<String> = (0..dim)
            .map(|c| sum_u(tab.h[q], c, &lit).unwrap_or_else(|| "real(0.0)".into()))
            .collect();
        let _ = writeln!(s, "    (*c).q{q} = State({});", row.join(", "));
    }
    if tab.fsal() {
        let _ = writeln!(s, "    out.fl = f{};", s_n - 1);
    }
    if auto {
        // h·||J||_inf: the largest row sum of |J_ij| over J's structural non-zeros.
        s.push_str("    var norm = real(0.0);\n");
        for r in 0..dim {
            let row: Vec<String> = jac
                .state
                .entries
                .iter()
                .filter(|&&(rr, _)| rr == r)
                .map(|&(_, c)| format!("abs(jv.{})", jac_field("j", r, c)))
                .collect();
            if !row.is_empty() {
                let _ = writeln!(s, "    norm = max(norm, {});", row.join(" + "));
            }
        }
        s.push_str("    out.stiff = dt * norm;\n");
    }
    s.push_str("    return out;\n}\n\n");

    // The controller, in f32 like the adaptive kernel's.
    s.push_str(
        "fn ros_accept_factor(err: real, err_prev: real, rejected_last: bool) -> real {
    var fac = ROS_MAX_GROWTH;
    if err != real(0.0) {
        fac = clamp(ROS_SAFETY * pow(f32(err), -ROS_ALPHA) * pow(f32(err_prev), ROS_BETA), ROS_MAX_SHRINK, ROS_MAX_GROWTH);
    }
    if rejected_last {
        fac = min(fac, 1.0);
    }
    return real(fac);
}

fn ros_reject_factor(err: real) -> real {
    if finite_real(err) {
        return real(max(ROS_SAFETY * pow(f32(err), -ROS_REJECT_EXP), ROS_MAX_SHRINK));
    }
    return real(ROS_MAX_SHRINK);
}

",
    );

    // (1-θ)·y + θ·(y1 + (1-θ)·(q0 + θ·(q1 + θ·q2))), missing rows dropped (they are 0).
    s.push_str(
        "fn ros_interpolate(y: State, y1: State, theta: real, c: ptr<function, Carry>) -> State {\n    let om = real(1.0) - theta;\n",
    );
    let comps: Vec<String> = (0..dim)
        .map(|c| {
            let mut inner = String::new();
            for q in (0..n_q).rev() {
                inner = if inner.is_empty() {
                    format!("(*c).q{q}.x{c}")
                } else {
                    format!("(*c).q{q}.x{c} + theta * ({inner})")
                };
            }
            let y1c = if inner.is_empty() {
                format!("y1.x{c}")
            } else {
                format!("y1.x{c} + om * ({inner})")
            };
            format!("om * y.x{c} + theta * ({y1c})")
        })
        .collect();
    let _ = writeln!(s, "    return State({});\n}}\n", comps.join(", "));

    if !auto {
        s.push_str(&initial_step(control, dim, "initial_step", "ROS_INIT_EXP"));
        s.push('\n');
    }
    s
}

/// The functions the template's step loop calls, for the method in use (`mode`: 0 = Tsit5,
/// 1 = the Rosenbrock method; without `auto` always 1).
fn glue(tab: &Rosenbrock, dim: usize, dense: bool, auto: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "const INITIAL_MODE: u32 = {}u;\n", u32::from(!auto));
    if !auto {
        s.push_str(
            "fn try_step(t: real, dt: real, y: State, p: Params, c: ptr<function, Carry>, mode: u32) -> Step {
    return ros_attempt(t, dt, y, p, c);
}

fn attempt_evals(mode: u32) -> u32 {
    return ROS_EVALS;
}

fn reject_factor_m(err: real, mode: u32) -> real {
    return ros_reject_factor(err);
}

fn accept_factor_m(err: real, err_prev: real, rejected_last: bool, mode: u32) -> real {
    return ros_accept_factor(err, err_prev, rejected_last);
}

fn dense_at(y: State, y1: State, dt: real, theta: real, c: ptr<function, Carry>, mode: u32) -> State {
    return ros_interpolate(y, y1, theta, c);
}

// The next attempt's first stage at (t, y1); returns the evaluations it cost.
fn next_f0(t: real, y1: State, p: Params, tr: Step, c: ptr<function, Carry>, mode: u32) -> u32 {
    if ROS_FSAL {
        (*c).f0 = tr.fl;
        return 0u;
    }
    (*c).f0 = rhs(t, y1, p);
    return 1u;
}

fn stiffness(dt: real, y: State, tr: Step, c: ptr<function, Carry>, mode: u32) -> real {
    return real(0.0);
}

",
        );
        return s;
    }
    // Tsit5's stage 5 (c5 = 1) argument g5, recomputed from the stored stages exactly as
    // `attempt` computes it.
    let g5: Vec<String> = (0..dim)
        .map(|c| {
            let terms: Vec<String> = TSIT5.a[5]
                .iter()
                .enumerate()
                .filter(|&(_, &a)| a != 0.0)
                .map(|(j, &a)| times(a, &format!("e.k{j}.x{c}")))
                .collect();
            format!("y.x{c} + dt * ({})", terms.join(" + "))
        })
        .collect();
    let diff = |a: &str, b: &str| -> String {
        (0..dim)
            .map(|c| {
                format!(
                    "    {{\n        let v = {a}.x{c} - {b}.x{c};\n        acc += v * v;\n    }}\n"
                )
            })
            .collect()
    };
    let _ = dense;
    let _ = write!(
        s,
        "fn try_step(t: real, dt: real, y: State, p: Params, c: ptr<function, Carry>, mode: u32) -> Step {{
    if mode == 1u {{
        return ros_attempt(t, dt, y, p, c);
    }}
    var e = (*c).ex;
    e.k0 = (*c).f0;
    let trial = attempt(t, dt, y, p, &e);
    (*c).ex = e;
    var out: Step;
    out.y1 = trial.y1;
    out.err = trial.err;
    out.status = STATUS_RUNNING;
    return out;
}}

fn attempt_evals(mode: u32) -> u32 {{
    return select(EVALS_PER_ATTEMPT, ROS_EVALS, mode == 1u);
}}

fn reject_factor_m(err: real, mode: u32) -> real {{
    if mode == 1u {{
        return ros_reject_factor(err);
    }}
    return reject_factor(err);
}}

fn accept_factor_m(err: real, err_prev: real, rejected_last: bool, mode: u32) -> real {{
    if mode == 1u {{
        return ros_accept_factor(err, err_prev, rejected_last);
    }}
    return accept_factor(err, err_prev, rejected_last);
}}

fn dense_at(y: State, y1: State, dt: real, theta: real, c: ptr<function, Carry>, mode: u32) -> State {{
    if mode == 1u {{
        return ros_interpolate(y, y1, theta, c);
    }}
    var e = (*c).ex;
    return interpolate(y, dt, theta, &e);
}}

// The next attempt's first stage at (t, y1); returns the evaluations it cost.
fn next_f0(t: real, y1: State, p: Params, tr: Step, c: ptr<function, Carry>, mode: u32) -> u32 {{
    if mode == 0u {{
        (*c).f0 = (*c).ex.k6;
        return 0u;
    }}
    if ROS_FSAL {{
        (*c).f0 = tr.fl;
        return 0u;
    }}
    (*c).f0 = rhs(t, y1, p);
    return 1u;
}}

// The accepted step's estimate of h*|lambda|: Tsit5's hu*||k6 - k5|| / ||y1 - g5|| (0 when
// the denominator is), or the Rosenbrock step's hu*||J||_inf.
fn stiffness(dt: real, y: State, tr: Step, c: ptr<function, Carry>, mode: u32) -> real {{
    if mode == 1u {{
        return tr.stiff;
    }}
    let e = (*c).ex;
    let g5 = State({});
    var acc = real(0.0);
{}    let num = sqrt(acc);
    acc = real(0.0);
{}    let den = sqrt(acc);
    if den == real(0.0) {{
        return real(0.0);
    }}
    return dt * num / den;
}}

",
        g5.join(", "),
        diff("e.k6", "e.k5"),
        diff("tr.y1", "g5"),
    );
    let _ = tab;
    s
}
