//! A checked orbit-diagram run: the events problem (the system with the section added as
//! its last event) and what to read from its logs. `spec::orbit::orbit_problem` makes one
//! from a run spec; every field is checked there, so the run itself cannot fail on them.

use crate::model::System;
use crate::model::expr::Node;
use crate::ode::any::Problem;

/// Where the points are recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum OrbitKind {
    /// A Poincaré section as the user wrote it ("z = 27") and its crossing direction
    /// ("up", "down" or "both").
    Section { equation: String, direction: String },
    /// The local maxima of `state`: the section `equation` ("dx/dt = 0", the right-hand
    /// side printed back) crossed downwards.
    Maxima { state: String, equation: String },
}

/// A checked orbit-diagram run.
#[derive(Debug, Clone)]
pub struct OrbitProblem {
    /// The events run: one parameter swept over the ensemble, the section the system's last
    /// event, its log keeping `k` records per trajectory after `transient`.
    pub problem: Problem,
    pub kind: OrbitKind,
    /// The section's event id: its index among the problem's system's events.
    pub section: usize,
    /// The observed state's index and name: its values at the records are the points.
    pub observe: usize,
    pub observed: String,
    /// The swept parameter's name and index.
    pub parameter: String,
    pub param_index: usize,
    /// Points kept per trajectory (the first K after the transient).
    pub k: usize,
    /// Time integrated from t0 before points are recorded.
    pub transient: f64,
    /// The whole integration (t0, t1), the transient included.
    pub span: (f64, f64),
    /// Values closer than this count as one (`distinct_values`).
    pub tol: f64,
    /// The system's own record-only events, left out of the run (they would take record
    /// slots from the section); events that terminate or assign stay.
    pub dropped: Vec<String>,
}

impl OrbitProblem {
    /// Trajectories in the run.
    pub fn n(&self) -> usize {
        self.problem.ensemble().n
    }

    /// The words for what the points are: "maxima of x", "z at z = 27 (up)".
    pub fn describe(&self) -> String {
        match &self.kind {
            OrbitKind::Maxima { state, .. } if *state == self.observed => {
                format!("maxima of {state}")
            }
            OrbitKind::Maxima { state, .. } => format!("{} at maxima of {state}", self.observed),
            OrbitKind::Section {
                equation,
                direction,
            } => format!("{} at {equation} ({direction})", self.observed),
        }
    }
}

/// Whether `node` can change along an orbit of `system`: it involves a state or time,
/// directly or through an auxiliary or an input signal. A condition that cannot (a
/// constant, parameters only) never crosses zero while integrating, so it records nothing.
pub fn moves_along_orbit(system: &System, node: &Node) -> bool {
    let mut found = false;
    node.visit(&mut |x| {
        found |= match x {
            Node::State(_) | Node::Time | Node::Input(..) => true,
            // Auxiliaries are defined before use, so this recursion ends.
            Node::Aux(i) => moves_along_orbit(system, &system.aux[*i].value),
            _ => false,
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Direction;

    fn condition(system: &System, section: &str) -> Node {
        let s = system
            .clone()
            .with_section(section, Direction::Both)
            .unwrap();
        s.events.last().unwrap().condition.clone()
    }

    #[test]
    fn only_conditions_that_involve_a_state_or_time_move() {
        let s = System::from_equations(
            "aux",
            &[("x", 0.3), ("y", -0.7)],
            &[("a", 1.5)],
            "r = x*x + y*y\nq = 2*a\ndx = -y - a*x*(r - 1)\ndy = x - q*y",
        )
        .unwrap();
        for (text, moves) in [
            ("x = 1", true),
            ("r = 1", true),
            ("t = 5", true),
            ("1 = 2", false),
            ("a = 1", false),
            ("q = a", false),
        ] {
            assert_eq!(moves_along_orbit(&s, &condition(&s, text)), moves, "{text}");
        }
    }
}
