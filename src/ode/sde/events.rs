//! WGSL of the SDE kernels with events (`[[events]]`, `ode::events`):
//! `shaders/ode/sde/fixed_events.wgsl` and `shaders/ode/sde/adaptive_events.wgsl`, composed
//! from the same pieces as the kernels without events (`sde::kernel`) plus the shared event
//! functions of `events::kernel` on the step's linear interpolant (`sde_lerp`). A system
//! without events gets exactly the kernel `sde::kernel` makes: [`fixed_kernel`] and
//! [`adaptive_kernel`] choose.
//!
//! The continuous extension of a stochastic step is linear in the state: the Brownian path
//! has no derivative to build a Hermite cubic from, so events are located on the chord
//! from the step's start to its end. Where a terminating or assigning event cuts a step,
//! the Brownian path stays one path: the adaptive kernel reads W at the event from its
//! virtual Brownian tree; the fixed-step kernel samples it by the Brownian bridge between
//! the step's ends, `W(t*) = W(ta) + θ ΔW + sqrt(θ (1 - θ) h) Z` with Z from its own Philox
//! stream (`noise::bridge_normals`), and finishes the grid step with the method's step over
//! the rest of the increment, `ΔW - (W(t*) - W(ta))`. The twin is `sde::cpu_events`.

use super::kernel::{Terms, adaptive_wgsl, attempt_fn, fixed_wgsl, noise, step_fn, wiener_access};
use super::method::SdeMethod;
use super::noise::bridge_wgsl;
use crate::gpu::shader::{ShaderError, compose};
use crate::model::derive::Program;
use crate::model::event::{Action, assign_program, events_program};
use crate::model::{ProgramFn, System, emit_system_with};
use crate::ode::adaptive::problem::Control;
use crate::ode::codegen::{accessors, real_lib};
use crate::ode::events::kernel::{Interpolant, events_wgsl};
use crate::precision::Precision;
use std::fmt::Write;

/// The fixed-step kernel of a system with events; `FIXED_TEMPLATE` is untouched by them.
pub const FIXED_EVENTS_TEMPLATE: &str = "ode/sde/fixed_events.wgsl";
/// The adaptive kernel of a system with events; `ADAPTIVE_TEMPLATE` is untouched by them.
pub const ADAPTIVE_EVENTS_TEMPLATE: &str = "ode/sde/adaptive_events.wgsl";

/// The events are located on the chord of the step: `sde_lerp(y0, θ, y1)`.
const INTERPOLANT: Interpolant<'static> = Interpolant {
    params: "y1: State",
    args: "y1",
    call: "sde_lerp(y, THETA, y1)",
};

/// `fn sde_lerp(y0, θ, y1) -> State`: y0 + θ (y1 - y0) per component (the twin is
/// `cpu_events::lerp`, the same operations).
pub fn lerp(dim: usize) -> String {
    let comps: Vec<String> = (0..dim)
        .map(|c| format!("y0.x{c} + th * (y1.x{c} - y0.x{c})"))
        .collect();
    format!(
        "// The step's continuous extension: the chord from its start to its end.\nfn sde_lerp(y0: State, th: real, y1: State) -> State {{\n    return State({});\n}}\n",
        comps.join(", ")
    )
}

/// `fn wiener_rest(dw, th, s, z) -> Wiener`: what is left of the increment `dw` of a step
/// after the bridge point at θ, `dw - (θ dw + s z)`.
fn wiener_rest(m: usize) -> String {
    let comps: Vec<String> = (0..m)
        .map(|k| format!("dw.w{k} - (th * dw.w{k} + s * z.w{k})"))
        .collect();
    format!(
        "fn wiener_rest(dw: Wiener, th: real, s: real, z: Wiener) -> Wiener {{\n    return Wiener({});\n}}\n",
        comps.join(", ")
    )
}

/// The system's WGSL with the diffusion programs (`Terms::program_fns`) and the events'
/// programs beside `rhs`: `event_cond` and `event_assign_k`, the names `events_wgsl` calls
/// (as `events::kernel::system_wgsl` emits them for the ODE families).
fn system_wgsl(system: &System, terms: &Terms, precision: Precision) -> String {
    let conditions = events_program(system);
    let assigns: Vec<(usize, Program)> = system
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.action == Action::Assign)
        .map(|(k, _)| (k, assign_program(system, k)))
        .collect();
    let names: Vec<(String, String)> = assigns
        .iter()
        .map(|(k, _)| (format!("event_assign_{k}"), format!("EventAssign{k}")))
        .collect();
    let mut fns = terms.program_fns();
    fns.push(ProgramFn {
        program: &conditions,
        fn_name: "event_cond",
        struct_name: "EventCond",
        fields: (0..system.events.len()).map(|k| format!("g{k}")).collect(),
    });
    for ((_, program), (name, st)) in assigns.iter().zip(&names) {
        fns.push(ProgramFn {
            program,
            fn_name: name,
            struct_name: st,
            fields: (0..program.outputs.len())
                .map(|c| format!("v{c}"))
                .collect(),
        });
    }
    emit_system_with(system, &fns, precision)
}

fn events(system: &System, precision: Precision) -> String {
    format!(
        "{}\n{}",
        lerp(system.dim()),
        events_wgsl(system, precision, &INTERPOLANT)
    )
}

/// The fixed-step SDE kernel of a system with events.
pub fn fixed_events_wgsl(
    system: &System,
    terms: &Terms,
    method: SdeMethod,
    workgroup_size: u32,
    precision: Precision,
) -> Result<String, ShaderError> {
    let mut noise_lib = noise(terms.m, precision)?;
    let _ = write!(
        noise_lib,
        "\n{}\n{}",
        bridge_wgsl(terms.m),
        wiener_rest(terms.m)
    );
    compose(
        FIXED_EVENTS_TEMPLATE,
        &[
            ("REAL_LIB", &real_lib(precision)?),
            ("WORKGROUP_SIZE", &workgroup_size.to_string()),
            ("SYSTEM", &system_wgsl(system, terms, precision)),
            ("NOISE", &noise_lib),
            ("STEP", &step_fn(terms, method)),
            ("ACCESS", &accessors(system.dim(), system.n_params())),
            ("EVENTS", &events(system, precision)),
        ],
    )
}

/// The adaptive SDE kernel (milstein-adaptive) of a system with events.
pub fn adaptive_events_wgsl(
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
        ADAPTIVE_EVENTS_TEMPLATE,
        &[
            ("REAL_LIB", &real_lib(precision)?),
            ("WORKGROUP_SIZE", &workgroup_size.to_string()),
            ("SYSTEM", &system_wgsl(system, terms, precision)),
            ("NOISE", &noise(terms.m, precision)?),
            ("METHOD", &attempt_fn(terms, control)),
            ("ACCESS", &access),
            ("EVENTS", &events(system, precision)),
        ],
    )
}

/// The fixed-step kernel for a system: with events [`fixed_events_wgsl`], without them
/// exactly `kernel::fixed_wgsl` (`FIXED_TEMPLATE`).
pub fn fixed_kernel(
    system: &System,
    terms: &Terms,
    method: SdeMethod,
    workgroup_size: u32,
    precision: Precision,
) -> Result<String, ShaderError> {
    if system.events.is_empty() {
        fixed_wgsl(system, terms, method, workgroup_size, precision)
    } else {
        fixed_events_wgsl(system, terms, method, workgroup_size, precision)
    }
}

/// The adaptive kernel for a system: with events [`adaptive_events_wgsl`], without them
/// exactly `kernel::adaptive_wgsl` (`ADAPTIVE_TEMPLATE`).
pub fn adaptive_kernel(
    system: &System,
    terms: &Terms,
    control: &Control,
    workgroup_size: u32,
    precision: Precision,
) -> Result<String, ShaderError> {
    if system.events.is_empty() {
        adaptive_wgsl(system, terms, control, workgroup_size, precision)
    } else {
        adaptive_events_wgsl(system, terms, control, workgroup_size, precision)
    }
}
