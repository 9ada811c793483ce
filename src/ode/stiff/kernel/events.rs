//! What the stiff kernel adds for a system with events (`shaders/ode/stiff/events.wgsl`):
//! the events' programs beside `rhs` and the Jacobians, the interpolant the shared event
//! code (`ode::events::kernel`) locates crossings on.

use crate::model::System;
use crate::model::derive::Program;
use crate::model::event::{Action, EventKind, assign_program, events_program};
use crate::model::wgsl::ProgramFn;
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
