//! WGSL of events, shared by every family whose kernel handles them: the conditions, the
//! crossing rule, root finding on the family's continuous extension, the records and the
//! actions. A family supplies its interpolant (`Interpolant`) and calls, in its template:
//!
//! - `event_g(t, s, p) -> array<real, N_EVENTS>`: every condition;
//! - `event_any(g0, g1) -> bool`: whether a step from g0 to g1 fires anything (cheap: no
//!   root finding), so steps without events cost one condition evaluation;
//! - `event_scan(t, dt, g0, g1, y, p, <interpolant args>) -> EventScan`: each fired event's
//!   location θ in [0, 1] on the step and the first event that cuts it;
//! - `event_record_all(i, n, scan, t, dt, t_end, y, y1, p, <args>) -> u32`: records the
//!   fired events in time order up to the cut, returns the new count;
//! - `event_action(k)`, `event_apply(k, t, &s, &p)`, `event_store_params(i, p)`;
//! - `event_count_load(i)`, `event_count_store(i, n)` (the count's two 16-bit halves).
//!
//! The CPU twin of all of it is `events::cpu`, operation for operation.

use super::log::{COUNT_ROWS, record_width};
use crate::model::derive::Program;
use crate::model::event::{Action, AssignTarget, EventKind, assign_program, events_program};
use crate::model::wgsl::literal;
use crate::model::{ProgramFn, System, emit_system_with};
use crate::precision::Precision;
use std::fmt::Write;

/// Root-finding iterations per located event at most (Illinois converges superlinearly: a
/// dozen is typical; the bound only stops a pathological condition).
pub const MAX_ITERATIONS: u32 = 64;

/// Events that cut one grid step of a fixed-step method at most; past it the rest of that
/// grid step is taken without events (a Zeno ball's infinitely many bounces end there).
pub const MAX_CUTS: u32 = 8;

/// Action codes of `event_action`.
pub const ACTION_RECORD: u32 = 0;
pub const ACTION_TERMINATE: u32 = 1;
pub const ACTION_ASSIGN: u32 = 2;

pub fn action_code(a: Action) -> u32 {
    match a {
        Action::Record => ACTION_RECORD,
        Action::Terminate => ACTION_TERMINATE,
        Action::Assign => ACTION_ASSIGN,
    }
}

/// How a family's kernel evaluates its continuous extension at θ: extra parameters the
/// event functions take and pass on (`params`, `args`), and the call (`THETA` stands for
/// θ; `y`, `dt` and `p` are in scope).
pub struct Interpolant<'a> {
    pub params: &'a str,
    pub args: &'a str,
    pub call: &'a str,
}

/// The system's WGSL with the events' programs beside `rhs`: `event_cond` (one field per
/// condition) and `event_assign_k` for each assigning event.
pub fn system_wgsl(system: &System, precision: Precision) -> String {
    let conditions = events_program(system);
    let assigns: Vec<(usize, Program)> = system
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.action == Action::Assign)
        .map(|(k, _)| (k, assign_program(system, k)))
        .collect();
    let names: Vec<String> = assigns
        .iter()
        .map(|(k, _)| format!("event_assign_{k}"))
        .collect();
    let structs: Vec<String> = assigns
        .iter()
        .map(|(k, _)| format!("EventAssign{k}"))
        .collect();
    let mut extra = vec![ProgramFn {
        program: &conditions,
        fn_name: "event_cond",
        struct_name: "EventCond",
        fields: (0..system.events.len()).map(|k| format!("g{k}")).collect(),
    }];
    for (j, (_, program)) in assigns.iter().enumerate() {
        extra.push(ProgramFn {
            program,
            fn_name: &names[j],
            struct_name: &structs[j],
            fields: (0..program.outputs.len())
                .map(|c| format!("v{c}"))
                .collect(),
        });
    }
    emit_system_with(system, &extra, precision)
}

/// Every event function, for a system with at least one event.
pub fn events_wgsl(system: &System, precision: Precision, interp: &Interpolant) -> String {
    let m = system.events.len();
    assert!(m > 0, "events_wgsl needs a system with events");
    let dim = system.dim();
    let spec = system.event_log;
    let record_from = system_t0_free_literal(spec.transient, precision);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// events: {m}, records kept per trajectory: {}\nconst N_EVENTS: u32 = {m}u;\nconst EVENT_K: u32 = {}u;\nconst EVENT_NONE: u32 = 0xffffffffu;\nconst EVENT_MAX_CUTS: u32 = {MAX_CUTS}u;\nconst ACTION_RECORD: u32 = {ACTION_RECORD}u;\nconst ACTION_TERMINATE: u32 = {ACTION_TERMINATE}u;\nconst ACTION_ASSIGN: u32 = {ACTION_ASSIGN}u;\n// Records start at t0 + transient (the window's t0 is added in the kernel).\nconst EVENT_TRANSIENT: real = {record_from};\n",
        spec.k, spec.k
    );
    let gs: Vec<String> = (0..m).map(|k| format!("c.g{k}")).collect();
    let _ = writeln!(
        s,
        "fn event_g(t: real, y: State, p: Params) -> array<real, {m}> {{\n    let c = event_cond(t, y, p);\n    return array<real, {m}>({});\n}}\n",
        gs.join(", ")
    );

    // event_any: the crossing rule of each event, unrolled.
    let mut any = Vec::new();
    for (k, e) in system.events.iter().enumerate() {
        any.push(fires(k, e.kind, e.direction.mask()));
    }
    let _ = writeln!(
        s,
        "fn event_any(g0: array<real, {m}>, g1: array<real, {m}>) -> bool {{\n    return {};\n}}\n",
        any.join("\n        || ")
    );

    let theta_call = |v: &str| interp.call.replace("THETA", v);
    // Illinois (modified regula falsi) on θ ∈ [0, 1]; returns the bracket's end on the
    // fired side ("after" the crossing).
    let _ = writeln!(
        s,
        "fn event_locate(k: u32, up: bool, t: real, dt: real, g_start: real, g_end: real, y: State, p: Params, {params}) -> real {{
    if g_end == real(0.0) {{
        return real(1.0);
    }}
    let tol = real(4.0) * REAL_EPS * max(real(1.0), abs(t)) / dt;
    var a = real(0.0);
    var b = real(1.0);
    var ga = g_start;
    var gb = g_end;
    var side = 0;
    for (var it = 0u; it < {MAX_ITERATIONS}u; it++) {{
        if b - a <= tol {{
            break;
        }}
        var m = (a * gb - b * ga) / (gb - ga);
        if !(m > a && m < b) {{
            m = real(0.5) * (a + b);
        }}
        var g = event_g(t + m * dt, {at_m}, p);
        let gm = g[k];
        if (up && gm >= real(0.0)) || (!up && gm <= real(0.0)) {{
            b = m;
            gb = gm;
            if gm == real(0.0) {{
                break;
            }}
            if side == 1 {{
                ga = ga * real(0.5);
            }}
            side = 1;
        }} else {{
            a = m;
            ga = gm;
            if side == -1 {{
                gb = gb * real(0.5);
            }}
            side = -1;
        }}
    }}
    return b;
}}
",
        params = interp.params,
        at_m = theta_call("m"),
    );

    // event_scan: θ of each fired event (2 when it did not fire), and the first cutting
    // event in (θ, index) order.
    let _ = writeln!(
        s,
        "struct EventScan {{\n    theta: array<real, {m}>,\n    cut: u32,\n}}\n"
    );
    let _ = writeln!(
        s,
        "fn event_scan(t: real, dt: real, g0: array<real, {m}>, g1: array<real, {m}>, y: State, p: Params, {}) -> EventScan {{\n    var r: EventScan;",
        interp.params
    );
    for (k, e) in system.events.iter().enumerate() {
        let _ = writeln!(s, "    r.theta[{k}] = real(2.0);");
        match e.kind {
            EventKind::Discrete => {
                let _ = writeln!(
                    s,
                    "    if g1[{k}] > real(0.0) {{\n        r.theta[{k}] = real(1.0);\n    }}"
                );
            }
            EventKind::Continuous => {
                let _ = writeln!(
                    s,
                    "    if {} {{\n        r.theta[{k}] = event_locate({k}u, g0[{k}] < real(0.0), t, dt, g0[{k}], g1[{k}], y, p, {});\n    }}",
                    fires(k, e.kind, e.direction.mask()),
                    interp.args
                );
            }
        }
    }
    s.push_str("    r.cut = EVENT_NONE;\n    var best = real(2.0);\n");
    for (k, e) in system.events.iter().enumerate() {
        if e.action.cuts() {
            let _ = writeln!(
                s,
                "    if r.theta[{k}] < best {{\n        best = r.theta[{k}];\n        r.cut = {k}u;\n    }}"
            );
        }
    }
    s.push_str("    return r;\n}\n\n");

    // Records.
    let w = record_width(dim);
    let _ = writeln!(
        s,
        "fn event_count_load(i: u32) -> u32 {{
    return u32(results[i]) | (u32(results[i + win.stride]) << 16u);
}}

fn event_count_store(i: u32, n: u32) {{
    results[i] = real(n & 0xffffu);
    results[i + win.stride] = real(n >> 16u);
}}
"
    );
    let mut fields = String::new();
    for c in 0..dim {
        let _ = writeln!(
            fields,
            "        results[(base + {}u) * win.stride + i] = y.x{c};",
            c + 2
        );
    }
    let _ = writeln!(
        s,
        "// One record unless before the transient; the count goes on past EVENT_K.
fn event_record(i: u32, n: u32, k: u32, te: real, y: State) -> u32 {{
    if te < win.t0 + EVENT_TRANSIENT {{
        return n;
    }}
    if n < EVENT_K {{
        let base = {COUNT_ROWS}u + n * {w}u;
        results[base * win.stride + i] = te;
        results[(base + 1u) * win.stride + i] = real(k);
{fields}    }}
    return n + 1u;
}}
"
    );
    let _ = writeln!(
        s,
        "// The fired events in (θ, index) order, up to and including the cut.
fn event_record_all(i: u32, count: u32, scan: EventScan, t: real, dt: real, t_end: real, y: State, y_end: State, p: Params, {params}) -> u32 {{
    var n = count;
    var r = scan;
    var done: array<bool, {m}>;
    for (var round = 0u; round < {m}u; round++) {{
        var kb = EVENT_NONE;
        var tb = real(2.0);
        for (var k = 0u; k < {m}u; k++) {{
            if !done[k] && r.theta[k] < tb {{
                tb = r.theta[k];
                kb = k;
            }}
        }}
        if kb == EVENT_NONE {{
            break;
        }}
        done[kb] = true;
        if r.cut != EVENT_NONE && (tb > r.theta[r.cut] || (tb == r.theta[r.cut] && kb > r.cut)) {{
            break;
        }}
        if tb == real(1.0) {{
            n = event_record(i, n, kb, t_end, y_end);
        }} else {{
            n = event_record(i, n, kb, t + tb * dt, {at_tb});
        }}
        if kb == r.cut {{
            break;
        }}
    }}
    return n;
}}
",
        params = interp.params,
        at_tb = theta_call("tb"),
    );

    // Actions.
    let mut codes = String::new();
    let mut applies = String::new();
    for (k, e) in system.events.iter().enumerate() {
        let _ = writeln!(
            codes,
            "        case {k}u: {{\n            return {}u;\n        }}",
            action_code(e.action)
        );
        if e.action == Action::Assign {
            let mut body = format!("            let o = event_assign_{k}(t, *y, *p);\n");
            for (c, (target, _)) in e.assign.iter().enumerate() {
                let _ = match target {
                    AssignTarget::State(i) => writeln!(body, "            (*y).x{i} = o.v{c};"),
                    AssignTarget::Param(i) => writeln!(body, "            (*p).p{i} = o.v{c};"),
                };
            }
            let _ = writeln!(applies, "        case {k}u: {{\n{body}        }}");
        }
    }
    let _ = writeln!(
        s,
        "fn event_action(k: u32) -> u32 {{\n    switch k {{\n{codes}        default: {{\n            return 0u;\n        }}\n    }}\n}}\n"
    );
    let _ = writeln!(
        s,
        "// Every right-hand side is evaluated at the event before any target is written.
fn event_apply(k: u32, t: real, y: ptr<function, State>, p: ptr<function, Params>) {{\n    switch k {{\n{applies}        default: {{}}\n    }}\n}}\n"
    );
    let mut stores = String::new();
    if crate::model::event::assigns_params(system) {
        for c in 0..system.n_params() {
            let _ = writeln!(stores, "    params[i + {c}u * win.stride] = p.p{c};");
        }
    }
    let _ = writeln!(
        s,
        "// Assigned parameters persist for the rest of the trajectory.\nfn event_store_params(i: u32, p: Params) {{\n{stores}}}"
    );
    s
}

/// The crossing rule of event `k` as a WGSL condition over `g0`, `g1`.
fn fires(k: usize, kind: EventKind, mask: u32) -> String {
    match kind {
        EventKind::Discrete => format!("g1[{k}] > real(0.0)"),
        EventKind::Continuous => {
            let up = format!("(g0[{k}] < real(0.0) && g1[{k}] >= real(0.0))");
            let down = format!("(g0[{k}] > real(0.0) && g1[{k}] <= real(0.0))");
            match mask {
                1 => up,
                2 => down,
                _ => format!("({up} || {down})"),
            }
        }
    }
}

/// The transient as this precision holds it.
fn system_t0_free_literal(v: f64, precision: Precision) -> String {
    match precision {
        Precision::F32 => literal(v as f32 as f64),
        Precision::F64 => literal(v),
    }
}
