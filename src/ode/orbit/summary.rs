//! An orbit-diagram run described as JSON: what was run (system, sweep, section, method),
//! what came of it (statuses, distinct values per trajectory, steps) and how long it took.
//! The CLI writes it as run.json and prints it with `--json`; the HTTP server returns it.

use crate::ode::adaptive::Tolerance;
use crate::ode::any::Problem;
use crate::ode::orbit::problem::{OrbitKind, OrbitProblem};
use crate::ode::orbit::run::OrbitResult;
use crate::ode::solution::{Status, status_counts_json};
use serde_json::json;
use std::collections::BTreeMap;

/// Distinct-value counts above this are summarised together (chaos, quasi-periodicity or
/// a long period).
pub const MANY: usize = 16;

/// Trajectories by their number of distinct values.
#[derive(Debug, Clone, PartialEq)]
pub struct DistinctHistogram {
    /// Distinct values (1 to `MANY`) → trajectories with that many.
    pub by: BTreeMap<u32, usize>,
    /// Trajectories with more than `MANY`.
    pub many: usize,
    /// Trajectories without points.
    pub none: usize,
}

/// Trajectories by their number of distinct values (`OrbitResult::distinct`).
pub fn distinct_histogram(distinct: &[u32]) -> DistinctHistogram {
    let mut h = DistinctHistogram {
        by: BTreeMap::new(),
        many: 0,
        none: 0,
    };
    for &d in distinct {
        match d as usize {
            0 => h.none += 1,
            d if d > MANY => h.many += 1,
            d => *h.by.entry(d as u32).or_insert(0) += 1,
        }
    }
    h
}

/// The method's settings.
fn method_json(p: &Problem) -> serde_json::Value {
    let tol = |t: &Tolerance| match t {
        Tolerance::All(v) => json!(v),
        Tolerance::PerState(v) => json!(v),
    };
    match p {
        Problem::Fixed(f) => json!({"dt": f.grid.dt, "steps": f.grid.n_steps}),
        _ => match p.ode_control() {
            Some((_, _, _, c)) => json!({
                "rtol": tol(&c.rtol),
                "atol": tol(&c.atol),
                "dt_initial": c.dt_initial,
                "max_steps": c.max_steps,
            }),
            None => json!(null),
        },
    }
}

impl OrbitResult {
    /// The run described as JSON (run.json): `problem` is the one this result came from.
    pub fn summary_json(&self, problem: &OrbitProblem) -> serde_json::Value {
        let s = problem;
        let p = &s.problem;
        let system = p.system();
        let n = self.diagram.values.len();
        let h = distinct_histogram(&self.distinct);
        let full = self.counts.iter().filter(|&&c| c as usize == s.k).count();
        let mut status = [0usize; 7];
        for st in &self.status {
            status[*st as usize] += 1;
        }
        let ((lo, hi), _) = self.diagram.extent();
        let what = match &s.kind {
            OrbitKind::Section {
                equation,
                direction,
            } => json!({"kind": "section", "section": equation, "direction": direction}),
            OrbitKind::Maxima { state, equation } => json!({"kind": "maxima", "state": state,
                "section": equation, "direction": "down"}),
        };
        // Whether fired counts are section crossings alone (no other events share the log).
        let only_section = system.events.len() == 1;
        json!({
            "phaseflow": env!("CARGO_PKG_VERSION"),
            "system": system.name(),
            "equations": system.equations,
            "states": system.states.iter().map(|v| &v.name).collect::<Vec<_>>(),
            "parameters": system.params.iter().map(|v| &v.name).collect::<Vec<_>>(),
            "base_parameters": p.ensemble().base_params,
            "n": n,
            "completed": self.stats.completed,
            "sweep": {"parameter": s.parameter, "lo": lo, "hi": hi},
            "points": what,
            "observe": s.observed,
            "dropped_record_events": s.dropped,
            "tspan": [s.span.0, s.span.1],
            "transient": s.transient,
            "points_per_trajectory": s.k,
            "solver": p.solver().name(),
            "adaptive": p.is_adaptive(),
            "precision": p.precision().name(),
            "method": method_json(p),
            "status": status_counts_json(Status::nonzero(status)),
            "trajectories_with_k_points": full,
            "crossings_beyond_k": if only_section {
                json!(self.fired.iter().map(|&c| (c as u64).saturating_sub(s.k as u64))
                    .sum::<u64>())
            } else {
                json!(null)
            },
            "distinct_values": {
                "tol": s.tol,
                "by_count": h.by.iter().map(|(d, c)| json!({"values": d, "trajectories": c}))
                    .collect::<Vec<_>>(),
                "more_than": MANY,
                "trajectories_with_more": h.many,
                "trajectories_without_points": h.none,
            },
            "steps": {"accepted": self.steps.accepted, "rejected": self.steps.rejected,
                      "attempts_max": self.steps.max_attempts},
            "timing": {
                "setup_s": self.stats.setup.as_secs_f64(),
                "compile_s": self.stats.compile.as_secs_f64(),
                "solve_s": self.stats.solve.as_secs_f64(),
                "host_s": self.stats.host.as_secs_f64(),
                "chunks": self.stats.chunks,
            },
            "adapter": self.adapter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_sorts_trajectories_by_distinct_values() {
        let h = distinct_histogram(&[1, 1, 2, 4, 0, 17, 40, 16]);
        assert_eq!(
            h.by.into_iter().collect::<Vec<_>>(),
            vec![(1, 2), (2, 1), (4, 1), (16, 1)]
        );
        assert_eq!((h.many, h.none), (2, 1));
    }
}
