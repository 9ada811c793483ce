//! What the stiff kernel adds for a system with events (`shaders/ode/stiff/events.wgsl`):
//! the events' programs beside `rhs` and the Jacobians, the interpolant the shared event
//! code (`ode::events::kernel`) locates crossings on, and `restart_step`, the step size
//! after an assignment.

use crate::model::System;
use crate::model::derive::Program;
use crate::model::event::{Action, EventKind, assign_program, events_program};
use crate::model::wgsl::ProgramFn;
use crate::ode::adaptive::kernel::initial_step;
use crate::ode::adaptive::problem::Control;
use crate::ode::events::kernel::Interpolant;

/// The step's continuous extension as the event code calls it: `dense_at` of the method in
/// use (the Rosenbrock method's dense output, or Tsit5's while `auto` steps with it).
pub const INTERPOLANT: Interpolant<'static> = Interpolant {
    params: "y1: State, c: ptr<function, Carry>, mode: u32",
    args: "y1, c, mode",
    call: "dense_at(y, y1, dt, THETA, c, mode)",
};

/// The conditions and each assigning event's right-hand sides, as programs.
pub struct Programs {
    conditions: Program,
    /// (event index, its assignment program, its function and struct names)
    assigns: Vec<(Program, String, String)>,
    n_events: usize,
}

impl Programs {
    pub fn of(system: &System) -> Programs {
        Programs {
            conditions: events_program(system),
            assigns: system
                .events
                .iter()
                .enumerate()
                .filter(|(_, e)| e.action == Action::Assign)
                .map(|(k, _)| {
                    (
                        assign_program(system, k),
                        format!("event_assign_{k}"),
                        format!("EventAssign{k}"),
                    )
                })
                .collect(),
            n_events: system.events.len(),
        }
    }

    /// `event_cond` (one field per condition) and `event_assign_k` per assigning event,
    /// the names `ode::events::kernel` calls.
    pub fn fns(&self) -> Vec<ProgramFn<'_>> {
        let mut out = vec![ProgramFn {
            program: &self.conditions,
            fn_name: "event_cond",
            struct_name: "EventCond",
            fields: (0..self.n_events).map(|k| format!("g{k}")).collect(),
        }];
        for (program, fn_name, struct_name) in &self.assigns {
            out.push(ProgramFn {
                program,
                fn_name,
                struct_name,
                fields: (0..program.outputs.len())
                    .map(|c| format!("v{c}"))
                    .collect(),
            });
        }
        out
    }
}

/// Whether locating the system's events needs the dense-output rows (a continuous event);
/// discrete events fire at the step's end.
pub fn needs_dense(system: &System) -> bool {
    system
        .events
        .iter()
        .any(|e| e.kind == EventKind::Continuous)
}

/// `fn restart_step(t, y, p, f0, mode) -> real`: Hairer's starting step at the order of
/// the method in use (`auto`: Tsit5's `initial_step` in mode 0, the Rosenbrock method's in
/// mode 1; the others have only the Rosenbrock `initial_step`).
pub fn restart_step(control: &Control, dim: usize, auto: bool) -> String {
    if !auto {
        return "fn restart_step(t: real, y: State, p: Params, f0: State, mode: u32) -> real {
    return initial_step(t, y, p, f0);
}
"
        .into();
    }
    let mut s = initial_step(control, dim, "ros_initial_step", "ROS_INIT_EXP");
    s.push_str(
        "
fn restart_step(t: real, y: State, p: Params, f0: State, mode: u32) -> real {
    if mode == 1u {
        return ros_initial_step(t, y, p, f0);
    }
    return initial_step(t, y, p, f0);
}
",
    );
    s
}
