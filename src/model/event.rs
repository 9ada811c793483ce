//! Events of a system (`[[events]]` in a system file): a condition whose zero crossing
//! (continuous) or positive value after a step (discrete) fires an action: record the
//! state, terminate the trajectory, or assign new values to states and parameters.
//!
//! Conditions and assignments are resolved here against the system's names (auxiliaries
//! included) into `Node`s, so one tree drives the f64 evaluation of the CPU twins
//! (`Event::condition_f64`, `Event::assign_f64`) and the WGSL the kernels are built from
//! (`events_program`, `assign_program`, emitted by `model::wgsl::emit_system_with`).

use super::derive::Program;
use super::diagnostic::{Diagnostic, Diagnostics, Source, did_you_mean};
pub use super::event_types::*;
use super::parser::{Target as ParsedTarget, parse_expression_in, parse_statements};
use super::resolve::Resolver;
use super::system::System;
use std::ops::Range;
use std::sync::Arc;

impl Event {
    /// The condition in f64 (CPU twins); `scratch` is reused between calls.
    pub fn condition_f64(
        &self,
        system: &System,
        t: f64,
        u: &[f64],
        p: &[f64],
        scratch: &mut Vec<f64>,
    ) -> f64 {
        let program = Program::of(system, std::slice::from_ref(&self.condition));
        let mut out = [0.0];
        program.eval(system, t, u, p, scratch, &mut out);
        out[0]
    }

    /// Applies the assignment at `(t, u, p)`: every right-hand side is evaluated first,
    /// then written, in line order.
    pub fn assign_f64(&self, system: &System, t: f64, u: &mut [f64], p: &mut [f64]) {
        let values: Vec<_> = self.assign.iter().map(|(_, n)| n.clone()).collect();
        let program = Program::of(system, &values);
        let mut out = vec![0.0; values.len()];
        program.eval(system, t, u, p, &mut Vec::new(), &mut out);
        for ((target, _), v) in self.assign.iter().zip(out) {
            match *target {
                AssignTarget::State(i) => u[i] = v,
                AssignTarget::Param(i) => p[i] = v,
            }
        }
    }
}

/// Every event's condition, one output each, in event order (the kernels' `event_g`).
pub fn events_program(system: &System) -> Program {
    let conditions: Vec<_> = system.events.iter().map(|e| e.condition.clone()).collect();
    Program::of(system, &conditions)
}

/// Event `k`'s assigned values, one output per line.
pub fn assign_program(system: &System, k: usize) -> Program {
    let values: Vec<_> = system.events[k]
        .assign
        .iter()
        .map(|(_, n)| n.clone())
        .collect();
    Program::of(system, &values)
}

/// Whether any assignment writes a parameter (then kernels write parameters back).
pub fn assigns_params(system: &System) -> bool {
    system.events.iter().any(|e| {
        e.assign
            .iter()
            .any(|(t, _)| matches!(t, AssignTarget::Param(_)))
    })
}

/// One `[[events]]` table as read from a file (or built by the library), with where each
/// piece of text is, for messages.
pub struct EventSource {
    pub name: Option<(String, Range<usize>)>,
    pub kind: EventKind,
    pub direction: Option<(Direction, Range<usize>)>,
    pub action: Action,
    /// The condition's source and its range in it.
    pub condition: (Arc<Source>, Range<usize>),
    /// The assignment lines' source and range, with the span of the `assign` key.
    pub assign: Option<(Arc<Source>, Range<usize>)>,
    /// Where the table starts, for messages about the table as a whole.
    pub table: (Arc<Source>, Range<usize>),
}

/// Resolves events against a system; every problem points at its text.
pub fn resolve_events(system: &System, sources: &[EventSource]) -> Result<Vec<Event>, Diagnostics> {
    let mut errors: Vec<Diagnostic> = Vec::new();
    let mut events = Vec::new();
    if sources.len() > MAX_EVENTS {
        let (src, span) = &sources[MAX_EVENTS].table;
        errors.push(
            Diagnostic::new(
                format!("a system may have at most {MAX_EVENTS} events"),
                src,
                span.clone(),
            )
            .with_hint("combine conditions, or run the extra events as another run"),
        );
        return Err(Diagnostics(errors));
    }
    let mut names: Vec<String> = Vec::new();
    for (k, es) in sources.iter().enumerate() {
        let name = match &es.name {
            Some((n, span)) => {
                if !super::system::is_identifier(n) {
                    errors.push(
                        Diagnostic::new(
                            format!("'{n}' is not a valid event name"),
                            &es.table.0,
                            span.clone(),
                        )
                        .with_hint("names start with a letter or '_' and contain only letters, digits and '_'"),
                    );
                } else if names.contains(n) {
                    errors.push(
                        Diagnostic::new(
                            format!("a second event named '{n}'"),
                            &es.table.0,
                            span.clone(),
                        )
                        .with_hint("event names are unique"),
                    );
                }
                n.clone()
            }
            None => format!("event{k}"),
        };
        names.push(name.clone());
        if let (EventKind::Discrete, Some((_, span))) = (es.kind, &es.direction) {
            errors.push(
                Diagnostic::new(
                    "'direction' is only for continuous events",
                    &es.table.0,
                    span.clone(),
                )
                .with_hint("a discrete event fires after each step whose end has condition > 0"),
            );
        }
        let (csrc, crange) = &es.condition;
        let condition_text = csrc.text[crange.clone()].trim().to_string();
        let mut r = Resolver::new(csrc, &system.states, &system.params, &system.inputs);
        for (i, def) in system.aux.iter().enumerate() {
            r.aux_names.entry(def.name.clone()).or_insert(i);
        }
        let mut aux_used = vec![false; system.aux.len()];
        let condition = match parse_expression_in(csrc, crange.clone()) {
            Ok(expr) => r.expr(&expr, &mut aux_used).map(|n| n.fold()),
            Err(d) => {
                errors.push(d);
                None
            }
        };
        errors.append(&mut r.errors);
        let mut assign = Vec::new();
        let mut assign_text = String::new();
        match (&es.assign, es.action) {
            (Some((asrc, arange)), Action::Assign) => {
                assign_text = asrc.text[arange.clone()].trim_matches('\n').to_string();
                assign = resolve_assign(system, asrc, arange.clone(), &mut errors);
            }
            (Some((asrc, arange)), _) => errors.push(
                Diagnostic::new(
                    "'assign' is given but the action is not \"assign\"",
                    asrc,
                    arange.clone(),
                )
                .with_hint("add action = \"assign\", or remove 'assign'"),
            ),
            (None, Action::Assign) => errors.push(
                Diagnostic::new(
                    "action \"assign\" needs 'assign', the lines `target = value`",
                    &es.table.0,
                    es.table.1.clone(),
                )
                .with_hint("add assign = \"v = -0.9*v\" (states or parameters on the left)"),
            ),
            (None, _) => {}
        }
        if let Some(condition) = condition {
            events.push(Event {
                name,
                kind: es.kind,
                direction: es.direction.as_ref().map_or(Direction::Both, |d| d.0),
                action: es.action,
                condition,
                assign,
                condition_text,
                assign_text,
            });
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(Diagnostics(errors))
    }
}

/// `target = value` lines: targets are states or parameters, each at most once.
fn resolve_assign(
    system: &System,
    source: &Arc<Source>,
    range: Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<(AssignTarget, super::expr::Node)> {
    let statements = match parse_statements(source, range.clone()) {
        Ok(s) => s,
        Err(mut e) => {
            errors.append(&mut e);
            return Vec::new();
        }
    };
    if statements.is_empty() {
        let end = range.end.min(range.start + 1);
        errors.push(
            Diagnostic::new("'assign' has no lines", source, range.start..end)
                .with_hint("write one line `target = value` per state or parameter to set"),
        );
    }
    let mut r = Resolver::new(source, &system.states, &system.params, &system.inputs);
    for (i, def) in system.aux.iter().enumerate() {
        r.aux_names.entry(def.name.clone()).or_insert(i);
    }
    let mut aux_used = vec![false; system.aux.len()];
    let mut out = Vec::new();
    let mut seen: Vec<AssignTarget> = Vec::new();
    for s in &statements {
        let ParsedTarget::Plain(name) = &s.target else {
            r.error(
                "an assignment's target is a state or a parameter",
                s.target_span.clone(),
                Some("write `v = -0.9*v`, not a derivative".into()),
            );
            continue;
        };
        let target = if let Some(i) = system.state_index(name) {
            Some(AssignTarget::State(i))
        } else if let Some(i) = system.param_index(name) {
            Some(AssignTarget::Param(i))
        } else {
            let names = system
                .states
                .iter()
                .chain(&system.params)
                .map(|v| v.name.as_str());
            let hint = match did_you_mean(name, names) {
                Some(m) => format!("did you mean '{m}'?"),
                None => "targets are the system's states and parameters".into(),
            };
            r.error(
                format!("'{name}' is not a state or parameter, so it cannot be assigned"),
                s.target_span.clone(),
                Some(hint),
            );
            None
        };
        let value = r.expr(&s.value, &mut aux_used).map(|n| n.fold());
        if let Some(t) = target {
            if seen.contains(&t) {
                r.error(
                    format!("'{name}' is assigned twice"),
                    s.target_span.clone(),
                    Some("keep one line per target".into()),
                );
                continue;
            }
            seen.push(t);
            if let Some(v) = value {
                out.push((t, v));
            }
        }
    }
    errors.append(&mut r.errors);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_system;

    const BALL: &str = r#"name = "ball"
states = { y = 1.0, v = 0.0 }
parameters = { g = 9.81, e = 0.9 }
equations = """
dy = v
dv = -g
"""

[[events]]
name = "impact"
condition = "y"
direction = "down"
action = "assign"
assign = """
v = -e*v
e = e*1
"""
"#;

    fn parse(text: &str) -> Result<System, Diagnostics> {
        parse_system(&Source::new("ball.toml", text))
    }

    #[test]
    fn reads_events_and_evaluates_them() {
        let s = parse(BALL).unwrap();
        assert_eq!(s.events.len(), 1);
        let e = &s.events[0];
        assert_eq!(
            (e.name.as_str(), e.kind, e.direction, e.action),
            (
                "impact",
                EventKind::Continuous,
                Direction::Down,
                Action::Assign
            )
        );
        assert_eq!(
            e.condition_f64(&s, 0.0, &[0.25, 1.0], &[9.81, 0.9], &mut Vec::new()),
            0.25
        );
        let (mut u, mut p) = ([0.0, -2.0], [9.81, 0.5]);
        e.assign_f64(&s, 0.0, &mut u, &mut p);
        assert_eq!(u, [0.0, 1.0]);
        assert!(assigns_params(&s));
        assert!(Direction::Down.crosses(1.0, 0.0) && !Direction::Down.crosses(0.0, -1.0));
        assert!(Direction::Up.crosses(-1.0, 0.0) && !Direction::Up.crosses(0.0, 1.0));
    }

    fn first_error(text: &str) -> (String, Option<(usize, usize)>) {
        let e = parse(text).expect_err(text);
        let d = e.first();
        (d.message.clone(), d.position())
    }

    #[test]
    fn errors_point_into_the_file() {
        // Line 11 is `condition = "y"`; its text starts at column 14.
        let (m, at) = first_error(&BALL.replace("condition = \"y\"", "condition = \"yy\""));
        assert_eq!((m.as_str(), at), ("unknown name 'yy'", Some((11, 14))));
        let (m, at) = first_error(&BALL.replace("\"down\"", "\"dwn\""));
        assert_eq!((m.as_str(), at), ("'direction' is 'dwn'", Some((12, 13))));
        let (m, at) = first_error(&BALL.replace("v = -e*v", "w = -e*v"));
        assert_eq!(
            (m.as_str(), at),
            (
                "'w' is not a state or parameter, so it cannot be assigned",
                Some((15, 1))
            )
        );
        let (m, at) = first_error(&BALL.replace("name = \"impact\"", "nme = \"impact\""));
        assert_eq!(
            (m.as_str(), at),
            ("unknown key 'nme' in an event", Some((10, 1)))
        );
        let (m, _) = first_error(&BALL.replace("action = \"assign\"", "action = \"record\""));
        assert_eq!(m, "'assign' is given but the action is not \"assign\"");
        let (m, at) = first_error(&BALL.replace("v = -e*v", "v = -e*"));
        assert_eq!(m, "expression ends too early");
        assert_eq!(at.map(|p| p.0), Some(15));
        let (m, _) = first_error(&BALL.replace("e = e*1", "v = 1"));
        assert_eq!(m, "'v' is assigned twice");
        let no_assign = BALL.split("assign = ").next().unwrap().to_string();
        let (m, _) = first_error(&no_assign);
        assert!(m.starts_with("action \"assign\" needs 'assign'"), "{m}");
        let discrete = BALL.replace("name = \"impact\"", "kind = \"discrete\"");
        let (m, at) = first_error(&discrete);
        assert_eq!(
            (m.as_str(), at),
            ("'direction' is only for continuous events", Some((12, 13)))
        );
        // An empty condition is shown where it is written; a condition of the wrong type
        // is one mistake, reported once.
        let (m, at) = first_error(&BALL.replace("condition = \"y\"", "condition = \"\""));
        assert_eq!((m.as_str(), at), ("'condition' is empty", Some((11, 13))));
        let e = parse(&BALL.replace("condition = \"y\"", "condition = 3")).unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert_eq!(e.first().message, "'condition' must be a string");
    }

    #[test]
    fn library_events_and_sections() {
        let s = System::from_equations(
            "osc",
            &[("x", 1.0), ("v", 0.0)],
            &[("w", 2.0)],
            "dx = v\ndv = -w^2*x\n",
        )
        .unwrap()
        .with_events("[[events]]\ncondition = \"x - 0.5\"\naction = \"terminate\"\n")
        .unwrap()
        .with_section("x = 0", Direction::Up)
        .unwrap();
        assert_eq!(s.events.len(), 2);
        assert_eq!(s.events[0].name, "event0");
        assert_eq!(s.events[1].name, "section");
        assert_eq!(s.events[1].direction, Direction::Up);
        assert_eq!(
            s.events[1].condition_f64(&s, 0.0, &[3.0, 0.0], &[2.0], &mut Vec::new()),
            3.0
        );
        let e = s
            .clone()
            .with_section("x + = 0", Direction::Up)
            .unwrap_err();
        assert_eq!(e.first().message, "expression ends too early", "{e}");
        let e = s.clone().with_section("x", Direction::Up).unwrap_err();
        assert!(e.first().message.contains("has no '='"), "{e}");
        // An unknown name, and an empty side, are shown in the flag's own text.
        let e = s.clone().with_section("q = 27", Direction::Up).unwrap_err();
        let d = e.first();
        assert_eq!(d.message, "unknown name 'q'", "{e}");
        assert_eq!(d.source.as_ref().unwrap().name, "--section");
        assert_eq!(d.position(), Some((1, 1)));
        let e = s.with_section("x = ", Direction::Up).unwrap_err();
        assert_eq!(
            e.first().message,
            "this side of the section is empty",
            "{e}"
        );
    }
}
