//! WGSL for the fixed-step ensemble kernel (`shaders/ode/fixed/step.wgsl`): the system's
//! right-hand side and a Runge–Kutta step unrolled from the tableau, with the shared
//! accessors of `ode::codegen`.

use super::tableau::Tableau;
use crate::gpu::shader::{ShaderError, compose};
use crate::model::wgsl::literal;
use crate::model::{System, emit_system};
use crate::ode::codegen::{accessors, combine, real_lib};
use crate::ode::events::kernel::{Interpolant, events_wgsl, system_wgsl};
use crate::precision::Precision;
use std::fmt::Write;

pub const TEMPLATE: &str = "ode/fixed/step.wgsl";
/// The kernel of a system with events (`ode::events`); `TEMPLATE` is untouched by them.
pub const EVENTS_TEMPLATE: &str = "ode/fixed/events.wgsl";

/// The complete, composed kernel source for one system × tableau × workgroup size ×
/// precision.
pub fn fixed_step_wgsl(
    system: &System,
    tableau: &Tableau,
    workgroup_size: u32,
    precision: Precision,
) -> Result<String, ShaderError> {
    let wg = workgroup_size.to_string();
    if !system.events.is_empty() {
        let interp = Interpolant {
            params: "y1: State, f0: State, f1: State",
            args: "y1, f0, f1",
            call: "hermite(y, dt, THETA, y1, f0, f1)",
        };
        let events = format!(
            "{}\n{}",
            hermite(system.dim()),
            events_wgsl(system, precision, &interp)
        );
        return compose(
            EVENTS_TEMPLATE,
            &[
                ("REAL_LIB", &real_lib(precision)?),
                ("WORKGROUP_SIZE", &wg),
                ("SYSTEM", &system_wgsl(system, precision)),
                ("STEP", &rk_step(tableau, system.dim())),
                ("ACCESS", &accessors(system.dim(), system.n_params())),
                ("EVENTS", &events),
            ],
        );
    }
    compose(
        TEMPLATE,
        &[
            ("REAL_LIB", &real_lib(precision)?),
            ("WORKGROUP_SIZE", &wg),
            ("SYSTEM", &emit_system(system, precision)),
            ("STEP", &rk_step(tableau, system.dim())),
            ("ACCESS", &accessors(system.dim(), system.n_params())),
        ],
    )
}

/// `fn hermite(y0, h, θ, y1, f0, f1) -> State`: the cubic Hermite interpolant of a step
/// from its end values and slopes, where fixed-step kernels locate events (the twin is
/// `fixed::cpu::hermite`, the same operations).
pub fn hermite(dim: usize) -> String {
    let comps: Vec<String> = (0..dim)
        .map(|c| {
            format!("h00 * y0.x{c} + h * (h10 * f0.x{c}) + h01 * y1.x{c} + h * (h11 * f1.x{c})")
        })
        .collect();
    format!(
        "fn hermite(y0: State, h: real, th: real, y1: State, f0: State, f1: State) -> State {{
    let th2 = th * th;
    let th3 = th2 * th;
    let h00 = real(2.0) * th3 - real(3.0) * th2 + real(1.0);
    let h10 = th3 - real(2.0) * th2 + th;
    let h01 = real(3.0) * th2 - real(2.0) * th3;
    let h11 = th3 - th2;
    return State({});
}}
",
        comps.join(", ")
    )
}

/// `fn rk_step(t, dt, y, p) -> State`, fully unrolled.
pub fn rk_step(tableau: &Tableau, dim: usize) -> String {
    let mut s = format!("// {} (order {})\n", tableau.name, tableau.order);
    s.push_str("fn rk_step(t: real, dt: real, y: State, p: Params) -> State {\n");
    for i in 0..tableau.stages() {
        let ti = if tableau.c[i] == 0.0 {
            "t".to_string()
        } else {
            format!("t + {} * dt", literal(tableau.c[i]))
        };
        let yi = if tableau.a[i].iter().all(|&a| a == 0.0) {
            "y".to_string()
        } else {
            combine(tableau.a[i], dim)
        };
        let _ = writeln!(s, "    let k{i} = rhs({ti}, {yi}, p);");
    }
    let _ = writeln!(s, "    return {};\n}}", combine(tableau.b, dim));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ode::fixed::tableau::{HEUN, RK4};

    #[test]
    fn rk4_step_skips_zero_coefficients() {
        let s = rk_step(&RK4, 2);
        assert!(s.contains("let k0 = rhs(t, y, p);"), "{s}");
        assert!(
            s.contains("let k2 = rhs(t + real(0.5) * dt, State(y.x0 + dt * (real(0.5) * k1.x0)"),
            "{s}"
        );
        assert!(
            s.contains("let k3 = rhs(t + real(1.0) * dt, State(y.x0 + dt * (k2.x0)"),
            "{s}"
        );
        let h = rk_step(&HEUN, 1);
        assert!(
            h.contains("return State(y.x0 + dt * (real(0.5) * k0.x0 + real(0.5) * k1.x0));"),
            "{h}"
        );
    }
}
