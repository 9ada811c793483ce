//! WGSL for the adaptive ensemble kernel (`shaders/ode/adaptive/step.wgsl`): one embedded pair's
//! stages and error norm, the step-size controller, dense output and the initial-step
//! heuristic, all unrolled from the numbers in `ode::adaptive::pair` and mirroring
//! `ode::adaptive::cpu` operation for operation.

use super::pair::{ErrorEstimate, Pair};
use super::problem::{Control, Exponents};
use crate::gpu::shader::{ShaderError, compose};
use crate::model::wgsl::literal;
use crate::model::{System, emit_system};
use crate::ode::codegen::{accessors, combine, real_lib, weighted};
use crate::ode::events::kernel::{Interpolant, events_wgsl, system_wgsl};
use crate::precision::Precision;
use std::fmt::Write;

pub const TEMPLATE: &str = "ode/adaptive/step.wgsl";
/// The kernel of a system with events (`ode::events`); `TEMPLATE` is untouched by them.
pub const EVENTS_TEMPLATE: &str = "ode/adaptive/events.wgsl";

/// The complete kernel for one system × pair × control × workgroup size × precision.
/// Without `dense` output (only the final state is saved, which the last step hits
/// exactly), the continuous extension is compiled out, as are the stage stores it needs.
pub fn adaptive_wgsl(
    system: &System,
    pair: &Pair,
    control: &Control,
    workgroup_size: u32,
    precision: Precision,
    dense: bool,
) -> Result<String, ShaderError> {
    let dim = system.dim();
    let mut access = accessors(dim, system.n_params());
    let k0 = |c: usize| format!("control[i + {}u * win.stride]", 3 + c);
    let _ = writeln!(
        access,
        "\nfn load_k0(i: u32) -> State {{\n    return State({});\n}}\n",
        (0..dim).map(k0).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(
        access,
        "fn store_k0(i: u32, k: State) {{\n{}}}",
        (0..dim)
            .map(|c| format!("    {} = k.x{c};\n", k0(c)))
            .collect::<String>()
    );
    if !system.events.is_empty() {
        let interp = Interpolant {
            params: "st: ptr<function, Stages>",
            args: "st",
            call: "interpolate(y, dt, THETA, st)",
        };
        return compose(
            EVENTS_TEMPLATE,
            &[
                ("REAL_LIB", &real_lib(precision)?),
                ("WORKGROUP_SIZE", &workgroup_size.to_string()),
                ("SYSTEM", &system_wgsl(system, precision)),
                (
                    "METHOD",
                    &format!(
                        "const DENSE_OUTPUT: bool = {dense};\n{}",
                        method(pair, control, dim)
                    ),
                ),
                ("ACCESS", &access),
                ("EVENTS", &events_wgsl(system, precision, &interp)),
            ],
        );
    }
    compose(
        TEMPLATE,
        &[
            ("REAL_LIB", &real_lib(precision)?),
            ("WORKGROUP_SIZE", &workgroup_size.to_string()),
            ("SYSTEM", &emit_system(system, precision)),
            (
                "METHOD",
                &format!(
                    "const DENSE_OUTPUT: bool = {dense};\n{}",
                    method(pair, control, dim)
                ),
            ),
            ("ACCESS", &access),
        ],
    )
}

/// `atol_c + rtol_c * max(|a.x_c|, |b.x_c|)`.
pub fn scale(control: &Control, dim: usize, c: usize, a: &str, b: Option<&str>) -> String {
    let rtol = control.rtol.values(dim)[c];
    let atol = control.atol.values(dim)[c];
    let size = match b {
        Some(b) => format!("max(abs({a}.x{c}), abs({b}.x{c}))"),
        None => format!("abs({a}.x{c})"),
    };
    format!("({} + {} * {size})", literal(atol), literal(rtol))
}

fn or_zero(sum: Option<String>) -> String {
    sum.unwrap_or_else(|| "real(0.0)".into())
}

/// Everything that depends on the pair and the control.
pub fn method(pair: &Pair, control: &Control, dim: usize) -> String {
    // The error norm's states (all of them, or the leading ones: see `error_states`).
    let m = control.norm_states(dim);
    let n_all = pair.all_stages();
    let fsal = pair.stages() - 1;
    let exps = Exponents::of(pair);
    let f32_lit = |v: f64| format!("{:?}", v as f32);
    let mut s = String::new();

    let _ = writeln!(
        s,
        "// {} (order {}), PI step control",
        pair.name, pair.order
    );
    let _ = writeln!(
        s,
        "const EVALS_PER_ATTEMPT: u32 = {}u;\nconst EXTRA_EVALS: u32 = {}u;",
        pair.evals_per_attempt(),
        pair.extra_c.len()
    );
    for (name, v) in [
        ("SAFETY", control.safety),
        ("MAX_GROWTH", control.max_growth),
        ("MAX_SHRINK", control.max_shrink),
        ("ALPHA", exps.alpha),
        ("BETA", exps.beta),
        ("REJECT_EXP", exps.reject),
        ("INIT_EXP", 1.0 / pair.order as f64),
        // log2 of the least err_prev the controller remembers (see step_factor)
        ("LOG2_MIN_ERR", 1e-4f64.log2()),
    ] {
        let _ = writeln!(s, "const {name}: f32 = {};", f32_lit(v));
    }
    let fields: String = (0..n_all).map(|i| format!("    k{i}: State,\n")).collect();
    let _ = writeln!(
        s,
        "\nstruct Stages {{\n{fields}}}\n\nstruct Trial {{\n    y1: State,\n    err: real,\n}}\n"
    );
    let _ = writeln!(
        s,
        "fn take_fsal(st: ptr<function, Stages>) {{\n    (*st).k0 = (*st).k{fsal};\n}}\n"
    );

    // The step factor is computed in f32 in every precision: it needs no more. The adaptive
    // kernels use step_factor; accept_factor and reject_factor (the twin's form, two pows)
    // serve the stiff kernels' `auto` mode (ode::stiff::kernel).
    let _ = writeln!(
        s,
        "fn accept_factor(err: real, err_prev: real, rejected_last: bool) -> real {{
    var fac = MAX_GROWTH;
    if err != real(0.0) {{
        fac = clamp(SAFETY * pow(f32(err), -ALPHA) * pow(f32(err_prev), BETA), MAX_SHRINK, MAX_GROWTH);
    }}
    if rejected_last {{
        fac = min(fac, 1.0);
    }}
    return real(fac);
}}

fn reject_factor(err: real) -> real {{
    if finite_real(err) {{
        return real(max(SAFETY * pow(f32(err), -REJECT_EXP), MAX_SHRINK));
    }}
    return real(MAX_SHRINK);
}}

// accept_factor or reject_factor as `accepted` says, from log2 of err and of the previous
// accepted step's err (err^-ALPHA * err_prev^BETA = exp2(BETA log_prev - ALPHA log_err)):
// one exp2, computed before the branch so that lanes that accept and lanes that reject
// share it. Two pows per attempt were a quarter of an attempt's time on lavapipe.
fn step_factor(err: real, log_err: f32, log_prev: f32, accepted: bool, rejected_last: bool) -> real {{
    let e = f32(err);
    let exponent = select(-REJECT_EXP * log_err, BETA * log_prev - ALPHA * log_err, accepted);
    let raw = SAFETY * exp2(exponent);
    if accepted {{
        var fac = select(clamp(raw, MAX_SHRINK, MAX_GROWTH), MAX_GROWTH, e == 0.0);
        if rejected_last {{
            fac = min(fac, 1.0);
        }}
        return real(fac);
    }}
    return real(select(MAX_SHRINK, max(raw, MAX_SHRINK), finite_f32(e)));
}}
"
    );

    // attempt(): stages 1..=fsal, the new state and the scaled error.
    s.push_str(
        "fn attempt(t: real, dt: real, y: State, p: Params, st: ptr<function, Stages>) -> Trial {\n",
    );
    s.push_str("    let k0 = (*st).k0;\n");
    for i in 1..=fsal {
        let ti = stage_time(pair.c[i]);
        if i == fsal {
            let _ = writeln!(s, "    let y1 = {};", combine(pair.a[i], dim));
            let _ = writeln!(s, "    let k{i} = rhs({ti}, y1, p);");
        } else {
            let _ = writeln!(
                s,
                "    let k{i} = rhs({ti}, {}, p);",
                combine(pair.a[i], dim)
            );
        }
    }
    for i in 1..=fsal {
        let _ = writeln!(s, "    (*st).k{i} = k{i};");
    }
    match pair.error {
        ErrorEstimate::Single(e) => {
            s.push_str("    var acc = real(0.0);\n");
            for c in 0..m {
                let _ = writeln!(
                    s,
                    "    let q{c} = (dt * {}) / {};\n    acc += q{c} * q{c};",
                    paren(or_zero(weighted(e, c))),
                    scale_of(control, dim, c)
                );
            }
            let _ = writeln!(s, "    return Trial(y1, sqrt(acc / real({m}.0)));\n}}\n");
        }
        ErrorEstimate::Dop853 { e5, e3 } => {
            s.push_str("    var s5 = real(0.0);\n    var s3 = real(0.0);\n");
            for c in 0..m {
                let _ = writeln!(
                    s,
                    "    let sc{c} = {};\n    let q5_{c} = {} / sc{c};\n    let q3_{c} = {} / sc{c};\n    s5 += q5_{c} * q5_{c};\n    s3 += q3_{c} * q3_{c};",
                    scale_of(control, dim, c),
                    paren(or_zero(weighted(e5, c))),
                    paren(or_zero(weighted(e3, c)))
                );
            }
            let _ = writeln!(
                s,
                "    var deno = s5 + real(0.01) * s3;
    if deno <= real(0.0) {{
        deno = real(1.0);
    }}
    return Trial(y1, abs(dt) * s5 / sqrt(real({m}.0) * deno));
}}
"
            );
        }
    }

    // dense_stages(): the extra stages of the continuous extension.
    s.push_str(
        "fn dense_stages(t: real, dt: real, y: State, p: Params, st: ptr<function, Stages>) {\n",
    );
    if !pair.extra_c.is_empty() {
        for i in 0..pair.stages() {
            let _ = writeln!(s, "    let k{i} = (*st).k{i};");
        }
        for i in pair.stages()..n_all {
            let _ = writeln!(
                s,
                "    let k{i} = rhs({}, {}, p);\n    (*st).k{i} = k{i};",
                stage_time(pair.node(i)),
                combine(pair.row(i), dim)
            );
        }
    }
    s.push_str("}\n\n");

    // interpolate(): y + dt * sum_i w_i(θ) k_i.
    let weights = pair.dense_weights();
    s.push_str(
        "fn interpolate(y: State, dt: real, theta: real, st: ptr<function, Stages>) -> State {\n",
    );
    let live: Vec<usize> = (0..n_all)
        .filter(|&i| weights[i].iter().any(|&w| w != 0.0))
        .collect();
    for &i in &live {
        let w = &weights[i];
        let mut horner = literal(w[w.len() - 1]);
        for &coef in w[..w.len() - 1].iter().rev() {
            horner = format!("{} + theta * ({horner})", literal(coef));
        }
        let _ = writeln!(s, "    let w{i} = theta * ({horner});");
    }
    let comps: Vec<String> = (0..dim)
        .map(|c| {
            let terms: Vec<String> = live
                .iter()
                .map(|i| format!("w{i} * (*st).k{i}.x{c}"))
                .collect();
            format!("y.x{c} + dt * ({})", terms.join(" + "))
        })
        .collect();
    let _ = writeln!(s, "    return State({});\n}}\n", comps.join(", "));

    s.push_str(&initial_step(control, dim, "initial_step", "INIT_EXP"));
    s
}

/// `fn {name}(t, y, p, k0) -> real`: Hairer's starting step size (Solving ODEs I, §II.4),
/// with the exponent constant `exp` (1/order); shared with the stiff kernels.
pub fn initial_step(control: &Control, dim: usize, name: &str, exp: &str) -> String {
    // The sizes measured: the leading `m` states (see `Control::error_states`).
    let m = control.norm_states(dim);
    let sums = |name: &str, value: &dyn Fn(usize) -> String| -> String {
        let mut out = format!("    var {name} = real(0.0);\n");
        for c in 0..m {
            let _ = writeln!(
                out,
                "    {{\n        let v = {};\n        {name} += v * v;\n    }}",
                value(c)
            );
        }
        out
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "fn {name}(t: real, y: State, p: Params, k0: State) -> real {{"
    );
    for c in 0..m {
        let _ = writeln!(s, "    let sc{c} = {};", scale(control, dim, c, "y", None));
    }
    s.push_str(&sums("a0", &|c| format!("y.x{c} / sc{c}")));
    s.push_str(&sums("a1", &|c| format!("k0.x{c} / sc{c}")));
    let euler: Vec<String> = (0..dim).map(|c| format!("y.x{c} + h0 * k0.x{c}")).collect();
    let _ = writeln!(
        s,
        "    let d0 = sqrt(a0 / real({m}.0));
    let d1 = sqrt(a1 / real({m}.0));
    var h0 = real(0.01) * d0 / d1;
    if d0 < real(1e-5) || d1 < real(1e-5) {{
        h0 = real(1e-6);
    }}
    h0 = min(h0, win.dt_max);
    let f1 = rhs(t + h0, State({}), p);",
        euler.join(", ")
    );
    s.push_str(&sums("a2", &|c| format!("(f1.x{c} - k0.x{c}) / sc{c}")));
    let _ = writeln!(
        s,
        "    let d2 = sqrt(a2 / real({m}.0)) / h0;
    let d = max(d1, d2);
    var h1 = max(h0 * real(1e-3), real(1e-6));
    if d > real(1e-15) {{
        h1 = real(pow(f32(real(0.01) / d), {exp}));
    }}
    return min(real(100.0) * h0, h1);
}}"
    );
    s
}

fn paren(s: String) -> String {
    format!("({s})")
}

/// The error norm's weight of component `c` (step start `y`, step end `y1`).
fn scale_of(control: &Control, dim: usize, c: usize) -> String {
    scale(control, dim, c, "y", Some("y1"))
}

/// `t + c*dt` as the CPU twin computes it (`t` for 0, `t + dt` for 1).
fn stage_time(c: f64) -> String {
    if c == 0.0 {
        "t".into()
    } else if c == 1.0 {
        "t + dt".into()
    } else {
        format!("t + {} * dt", literal(c))
    }
}
