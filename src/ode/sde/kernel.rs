//! WGSL for the SDE kernels (`shaders/ode/sde/fixed.wgsl`, `shaders/ode/sde/adaptive.wgsl`):
//! the system's drift, its diffusion and (for Milstein) g·∂g/∂x as symbolic programs, the
//! counter-based noise of `sde::noise`, and one method's step, all mirroring
//! `sde::cpu` operation for operation.

use super::method::{MethodError, SdeMethod};
use super::noise::noise_wgsl;
use crate::gpu::shader::{ShaderError, compose};
use crate::model::System;
use crate::model::derive::{Program, Wrt, jacobian, simplify};
use crate::model::expr::{BinOp, Node};
use crate::model::noise::{Calculus, NoiseKind};
use crate::model::wgsl::{ProgramFn, emit_system_with, literal};
use crate::ode::adaptive::problem::Control;
use crate::ode::codegen::{accessors, real_lib};
use crate::precision::Precision;
use std::fmt::Write;

pub const FIXED_TEMPLATE: &str = "ode/sde/fixed.wgsl";
pub const ADAPTIVE_TEMPLATE: &str = "ode/sde/adaptive.wgsl";

/// The symbolic pieces a method evaluates besides the drift: the flat diffusion `g`
/// (`Noise::g`'s layout) and, for Milstein, `gdg`: per state i, g_i ∂g_i/∂x_i (diagonal
/// noise) or Σ_j g_j ∂g_i/∂x_j (scalar noise).
#[derive(Debug, Clone)]
pub struct Terms {
    pub kind: NoiseKind,
    pub calculus: Calculus,
    pub dim: usize,
    pub m: usize,
    pub g: Program,
    /// Which entries of `g` are the constant zero (left out of every sum).
    pub g_zero: Vec<bool>,
    pub gdg: Option<Program>,
    pub gdg_zero: Vec<bool>,
}

fn is_zero(n: &Node) -> bool {
    matches!(n, Node::Const(v) if *v == 0.0)
}

impl Terms {
    pub fn new(system: &System, method: SdeMethod) -> Result<Terms, MethodError> {
        let noise = method.check(system)?;
        let dim = system.dim();
        let m = noise.n_wiener(dim);
        let g = Program::of(system, &noise.g);
        let g_zero: Vec<bool> = noise.g.iter().map(is_zero).collect();
        let derive_error = |e: &dyn std::fmt::Display| MethodError::Derivative {
            method: method.name(),
            system: system.name().to_string(),
            why: e.to_string(),
        };
        let needs_jacobian = method.needs_gdg() || method == SdeMethod::Platen;
        let jac = if needs_jacobian {
            let wrt: Vec<Wrt> = (0..dim).map(Wrt::State).collect();
            Some(jacobian(system, &noise.g, &wrt).map_err(|e| derive_error(&e))?)
        } else {
            None
        };
        // Diagonal noise whose g_i depends on another state is not commutative: Milstein's
        // and Platen's cross terms would need Lévy areas, which are not simulated.
        if noise.kind == NoiseKind::Diagonal
            && let Some(j) = &jac
            && let Some(&(r, c)) = j.entries.iter().find(|(r, c)| r != c)
        {
            return Err(MethodError::NotSeparable {
                method: method.name(),
                system: system.name().to_string(),
                row: system.states[r].name.clone(),
                col: system.states[c].name.clone(),
                hint: SdeMethod::fallback(noise.calculus),
            });
        }
        let (gdg, gdg_zero) = match (&jac, method.needs_gdg()) {
            (Some(j), true) => {
                let mul = |a: &Node, b: &Node| {
                    Node::Bin(BinOp::Mul, Box::new(a.clone()), Box::new(b.clone()))
                };
                let outputs: Vec<Node> = (0..dim)
                    .map(|i| {
                        let terms: Vec<Node> = match noise.kind {
                            NoiseKind::Diagonal => j
                                .index(i, i)
                                .map(|k| mul(&noise.g[i], &j.program.outputs[k]))
                                .into_iter()
                                .collect(),
                            _ => (0..dim)
                                .filter_map(|c| {
                                    j.index(i, c)
                                        .map(|k| mul(&noise.g[c], &j.program.outputs[k]))
                                })
                                .collect(),
                        };
                        let sum = terms
                            .into_iter()
                            .reduce(|a, b| Node::Bin(BinOp::Add, Box::new(a), Box::new(b)));
                        simplify(sum.unwrap_or(Node::Const(0.0)))
                    })
                    .collect();
                let zero = outputs.iter().map(is_zero).collect();
                let program = Program {
                    n_system_aux: j.program.n_system_aux,
                    lets: j.program.lets.clone(),
                    outputs,
                }
                .cse();
                (Some(program), zero)
            }
            _ => (None, vec![true; dim]),
        };
        Ok(Terms {
            kind: noise.kind,
            calculus: noise.calculus,
            dim,
            m,
            g,
            g_zero,
            gdg,
            gdg_zero,
        })
    }

    /// The Wiener process multiplying state i's diagonal or scalar diffusion.
    pub fn process_of(&self, i: usize) -> usize {
        match self.kind {
            NoiseKind::Scalar => 0,
            _ => i,
        }
    }

    /// Entries (flat index, process) of state i's row of G that are not constant zero.
    pub fn row(&self, i: usize) -> Vec<(usize, usize)> {
        match self.kind {
            NoiseKind::General { wiener } => (0..wiener)
                .map(|k| (i * wiener + k, k))
                .filter(|&(e, _)| !self.g_zero[e])
                .collect(),
            _ => (!self.g_zero[i])
                .then_some((i, self.process_of(i)))
                .into_iter()
                .collect(),
        }
    }

    /// `(g.gE * dw.wK + ...)` for state i's row, or None when the row is zero.
    fn noise_sum(&self, i: usize, g: &str, dw: &str) -> Option<String> {
        let terms: Vec<String> = self
            .row(i)
            .into_iter()
            .map(|(e, k)| format!("{g}.g{e} * {dw}.w{k}"))
            .collect();
        (!terms.is_empty()).then(|| format!("({})", terms.join(" + ")))
    }

    /// The Milstein correction of state i: 0.5 * gdg_i * (ΔW_k² − h) (Itô) or
    /// 0.5 * gdg_i * ΔW_k² (Stratonovich); None when gdg_i is zero.
    fn milstein_term(&self, i: usize) -> Option<String> {
        if self.gdg_zero[i] {
            return None;
        }
        let k = self.process_of(i);
        Some(match self.calculus {
            Calculus::Ito => format!("real(0.5) * gg.m{i} * (dw.w{k} * dw.w{k} - h)"),
            Calculus::Stratonovich => format!("real(0.5) * gg.m{i} * (dw.w{k} * dw.w{k})"),
        })
    }

    /// The system's WGSL with `diffusion()` and, when used, `gdg()`.
    fn system_wgsl(&self, system: &System, precision: Precision) -> String {
        emit_system_with(system, &self.program_fns(), precision)
    }

    /// `diffusion()` and, when used, `gdg()` as programs beside the drift.
    pub fn program_fns(&self) -> Vec<ProgramFn<'_>> {
        let g_fields = (0..self.g.outputs.len()).map(|e| format!("g{e}")).collect();
        let mut fns = vec![ProgramFn {
            program: &self.g,
            fn_name: "diffusion",
            struct_name: "Diffusion",
            fields: g_fields,
        }];
        if let Some(gdg) = &self.gdg {
            fns.push(ProgramFn {
                program: gdg,
                fn_name: "gdg",
                struct_name: "Gdg",
                fields: (0..self.dim).map(|i| format!("m{i}")).collect(),
            });
        }
        fns
    }
}

fn state_of(dim: usize, f: impl Fn(usize) -> String) -> String {
    format!("State({})", (0..dim).map(f).collect::<Vec<_>>().join(", "))
}

/// `fn sde_step(t, h, sqrt_h, y, p, dw) -> State` of a fixed-step method.
pub fn step_fn(terms: &Terms, method: SdeMethod) -> String {
    let dim = terms.dim;
    let plus = |x: Option<String>| x.map(|v| format!(" + {v}")).unwrap_or_default();
    let mut s = format!("// {} step\n", method.name());
    s.push_str(
        "fn sde_step(t: real, h: real, sqrt_h: real, y: State, p: Params, dw: Wiener) -> State {\n",
    );
    match method {
        SdeMethod::EulerMaruyama | SdeMethod::Milstein | SdeMethod::MilsteinAdaptive => {
            s.push_str("    let f = rhs(t, y, p);\n    let g = diffusion(t, y, p);\n");
            let milstein = method != SdeMethod::EulerMaruyama;
            if milstein && terms.gdg.is_some() {
                s.push_str("    let gg = gdg(t, y, p);\n");
            }
            let y1 = state_of(dim, |i| {
                let m = if milstein {
                    plus(terms.milstein_term(i))
                } else {
                    String::new()
                };
                format!(
                    "y.x{i} + h * f.x{i}{}{m}",
                    plus(terms.noise_sum(i, "g", "dw"))
                )
            });
            let _ = writeln!(s, "    return {y1};");
        }
        SdeMethod::EulerHeun => {
            s.push_str("    let f0 = rhs(t, y, p);\n    let g0 = diffusion(t, y, p);\n");
            let yb = state_of(dim, |i| {
                format!(
                    "y.x{i} + h * f0.x{i}{}",
                    plus(terms.noise_sum(i, "g0", "dw"))
                )
            });
            let _ = writeln!(s, "    let yb = {yb};");
            s.push_str("    let f1 = rhs(t + h, yb, p);\n    let g1 = diffusion(t + h, yb, p);\n");
            let y1 = state_of(dim, |i| {
                let noise = match (
                    terms.noise_sum(i, "g0", "dw"),
                    terms.noise_sum(i, "g1", "dw"),
                ) {
                    (Some(a), Some(b)) => format!(" + real(0.5) * ({a} + {b})"),
                    _ => String::new(),
                };
                format!("y.x{i} + real(0.5) * h * (f0.x{i} + f1.x{i}){noise}")
            });
            let _ = writeln!(s, "    return {y1};");
        }
        SdeMethod::Platen => {
            s.push_str("    let f0 = rhs(t, y, p);\n    let g0 = diffusion(t, y, p);\n");
            let shifted = |sign: Option<&str>| {
                state_of(dim, |i| match (sign, terms.row(i).first()) {
                    (None, _) => format!(
                        "y.x{i} + h * f0.x{i}{}",
                        plus(terms.noise_sum(i, "g0", "dw"))
                    ),
                    (Some(sg), Some(&(e, _))) => {
                        format!("y.x{i} + h * f0.x{i} {sg} g0.g{e} * sqrt_h")
                    }
                    (Some(_), None) => format!("y.x{i} + h * f0.x{i}"),
                })
            };
            let _ = writeln!(s, "    let ub = {};", shifted(None));
            let _ = writeln!(s, "    let up = {};", shifted(Some("+")));
            let _ = writeln!(s, "    let um = {};", shifted(Some("-")));
            s.push_str(
                "    let f1 = rhs(t + h, ub, p);\n    let gp = diffusion(t + h, up, p);\n    let gm = diffusion(t + h, um, p);\n",
            );
            let y1 = state_of(dim, |i| {
                let noise = match terms.row(i).first() {
                    Some(&(e, k)) => format!(
                        " + real(0.25) * (gp.g{e} + gm.g{e} + real(2.0) * g0.g{e}) * dw.w{k} + real(0.25) * (gp.g{e} - gm.g{e}) * (dw.w{k} * dw.w{k} - h) / sqrt_h"
                    ),
                    None => String::new(),
                };
                format!("y.x{i} + real(0.5) * h * (f0.x{i} + f1.x{i}){noise}")
            });
            let _ = writeln!(s, "    return {y1};");
        }
    }
    s.push_str("}\n");
    s
}

/// `atol + rtol * max(|y|, |y1|)` of component c, tolerances as literals.
fn scale(control: &Control, dim: usize, c: usize) -> String {
    let rtol = control.rtol.values(dim)[c];
    let atol = control.atol.values(dim)[c];
    format!(
        "({} + {} * max(abs(y.x{c}), abs(y1.x{c})))",
        literal(atol),
        literal(rtol)
    )
}

/// `fn sde_attempt(t, h, y, p, dw) -> Trial` of milstein-adaptive: the Milstein step and
/// its scaled RMS error estimate (Milstein correction plus the drift's trapezoidal
/// defect), and the controller's constants.
pub fn attempt_fn(terms: &Terms, control: &Control) -> String {
    let dim = terms.dim;
    let mut s = String::new();
    let f32_lit = |v: f64| format!("{:?}", v as f32);
    for (name, v) in [
        ("SAFETY", control.safety),
        ("MAX_GROWTH", control.max_growth),
        ("MAX_SHRINK", control.max_shrink),
    ] {
        let _ = writeln!(s, "const {name}: real = real({});", f32_lit(v));
    }
    s.push_str("\nstruct Trial {\n    y1: State,\n    err: real,\n}\n\n");
    s.push_str("fn sde_attempt(t: real, h: real, y: State, p: Params, dw: Wiener) -> Trial {\n");
    s.push_str("    let f0 = rhs(t, y, p);\n    let g = diffusion(t, y, p);\n");
    if terms.gdg.is_some() {
        s.push_str("    let gg = gdg(t, y, p);\n");
    }
    for i in 0..dim {
        let m = terms.milstein_term(i).unwrap_or_else(|| "real(0.0)".into());
        let _ = writeln!(s, "    let mc{i} = {m};");
    }
    let y1 = state_of(dim, |i| {
        let noise = terms
            .noise_sum(i, "g", "dw")
            .map(|v| format!(" + {v}"))
            .unwrap_or_default();
        format!("y.x{i} + h * f0.x{i}{noise} + mc{i}")
    });
    let _ = writeln!(s, "    let y1 = {y1};");
    s.push_str("    let f1 = rhs(t + h, y1, p);\n    var acc = real(0.0);\n");
    for c in 0..dim {
        let _ = writeln!(
            s,
            "    let q{c} = (abs(mc{c}) + abs(real(0.5) * h * (f1.x{c} - f0.x{c}))) / {};\n    acc += q{c} * q{c};",
            scale(control, dim, c)
        );
    }
    let _ = writeln!(s, "    return Trial(y1, sqrt(acc / real({dim}.0)));\n}}\n");
    s
}

/// Loads and stores of W(t) in the control rows after t and h, and W's difference.
pub fn wiener_access(m: usize) -> String {
    let row = |k: usize| format!("control[i + {}u * win.stride]", 2 + k);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "fn load_w(i: u32) -> Wiener {{\n    return Wiener({});\n}}\n",
        (0..m).map(row).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(
        s,
        "fn store_w(i: u32, w: Wiener) {{\n{}}}\n",
        (0..m)
            .map(|k| format!("    {} = w.w{k};\n", row(k)))
            .collect::<String>()
    );
    let _ = writeln!(
        s,
        "fn wiener_sub(a: Wiener, b: Wiener) -> Wiener {{\n    return Wiener({});\n}}\n",
        (0..m)
            .map(|k| format!("a.w{k} - b.w{k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "fn wiener_zero() -> Wiener {{\n    return Wiener({});\n}}",
        vec!["real(0.0)"; m].join(", ")
    );
    s
}

/// The noise library of `m` processes (`noise::noise_wgsl`) as a shader error on failure.
pub fn noise(m: usize, precision: Precision) -> Result<String, ShaderError> {
    noise_wgsl(m, precision).map_err(|e| ShaderError::Generate(e.to_string()))
}

/// The fixed-step SDE kernel for one system × method × workgroup size × precision.
pub fn fixed_wgsl(
    system: &System,
    terms: &Terms,
    method: SdeMethod,
    workgroup_size: u32,
    precision: Precision,
) -> Result<String, ShaderError> {
    compose(
        FIXED_TEMPLATE,
        &[
            ("REAL_LIB", &real_lib(precision)?),
            ("WORKGROUP_SIZE", &workgroup_size.to_string()),
            ("SYSTEM", &terms.system_wgsl(system, precision)),
            ("NOISE", &noise(terms.m, precision)?),
            ("STEP", &step_fn(terms, method)),
            ("ACCESS", &accessors(system.dim(), system.n_params())),
        ],
    )
}

/// The adaptive SDE kernel (milstein-adaptive) for one system × control × workgroup size
/// × precision.
pub fn adaptive_wgsl(
    system: &System,
    terms: &Terms,
    control: &Control,
    workgroup_size: u32,
    precision: Precision,
) -> Result<String, ShaderError> {
    let mut access = accessors(system.dim(), system.n_params());
    access.push('\n');
    access.push_str(&wiener_access(terms.m));
    compose(
        ADAPTIVE_TEMPLATE,
        &[
            ("REAL_LIB", &real_lib(precision)?),
            ("WORKGROUP_SIZE", &workgroup_size.to_string()),
            ("SYSTEM", &terms.system_wgsl(system, precision)),
            ("NOISE", &noise(terms.m, precision)?),
            ("METHOD", &attempt_fn(terms, control)),
            ("ACCESS", &access),
        ],
    )
}
