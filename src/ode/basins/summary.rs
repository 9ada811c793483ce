//! What a basins run found, as JSON: the figures the CLI's `--json` and basins.json print
//! and the HTTP server returns, one function so that they say the same thing, with the
//! warning about attractors that may be halves of one.

use super::classify::Match;
use super::problem::{Attractor, BasinsProblem, BasinsResult, Method};
use crate::ode::any::Problem;
use crate::ode::ensemble::Axis;
use serde_json::json;

/// Attractors closer than this many match tolerances (`Match::distance`: in the component
/// farthest apart) are suspected halves of one attractor whose window features have not
/// settled: distinct attractors of the systems people study sit hundreds of tolerances
/// apart, while features still drifting at the run's end spread over a few.
pub const SPLIT_DISTANCE: f64 = 8.0;

impl BasinsResult {
    /// The run's summary: system, span, parameters, step settings, the grid, the method,
    /// every attractor (label, share, representative, final state, features), the diverged
    /// share, the basin entropy over `entropy_box`-sided boxes, warnings and the run's
    /// figures. Callers add what only they know (the adapter, the files written).
    pub fn summary_json(&self, problem: &BasinsProblem, entropy_box: usize) -> serde_json::Value {
        let result = self;
        let entropy = result.entropy(entropy_box);
        let g = &result.grid;
        let axis =
            |a: &Axis, name: &str| json!({"state": name, "lo": a.lo, "hi": a.hi, "count": a.count});
        let method = match &problem.method {
            Method::Features {
                window,
                tol,
                escape,
            } => json!({"kind": "features", "window": window, "match_atol": tol.atol,
                        "match_rtol": tol.rtol, "escape": escape}),
            Method::Expression(f) => json!({"kind": "expression", "expression": f.text}),
        };
        let n = result.labels.len();
        let system = problem.run.system();
        let (t0, t1) = problem.run.span();
        let base = &problem.run.ensemble().base_params;
        let params: serde_json::Map<String, serde_json::Value> = system
            .params
            .iter()
            .zip(base)
            .map(|(p, v)| (p.name.clone(), json!(v)))
            .collect();
        let split = split_attractors(&result.attractors, &problem.method);
        json!({
            "system": system.name(),
            "tspan": [t0, t1],
            "params": params,
            "steps": step_settings(&problem.run),
            "states": system.states.iter().map(|v| &v.name).collect::<Vec<_>>(),
            "solver": problem.run.solver().name(),
            "precision": problem.run.precision().name(),
            "x": axis(&g.x, &g.x_name),
            "y": axis(&g.y, &g.y_name),
            "method": method,
            "attractors": result.attractors.iter().map(|a| json!({
                "label": a.label,
                "count": a.count,
                "fraction": a.fraction,
                "representative": {"index": a.representative,
                                   g.x_name.clone(): g.x_at(a.representative % g.nx()),
                                   g.y_name.clone(): g.y_at(a.representative / g.nx())},
                "final_state": a.final_state,
                "features": a.features,
            })).collect::<Vec<_>>(),
            "diverged": {"count": result.diverged, "fraction": result.diverged_fraction()},
            "basin_entropy": {
                "box": entropy.box_size,
                "boxes": entropy.boxes,
                "boundary_boxes": entropy.boundary_boxes,
                "boundary_fraction": entropy.boundary_fraction(),
                "entropy": if entropy.entropy.is_finite() { json!(entropy.entropy) } else { json!(null) },
                "boundary_entropy": entropy.boundary_entropy,
                // Not claimed when attractors may be split: a spurious boundary between two
                // halves of one attractor would pass the test.
                "fractal_by_log2_test": entropy.fractal() && split.is_empty(),
            },
            "warnings": split_warning(&split).into_iter().collect::<Vec<_>>(),
            "run": {
                "trajectories": n,
                "trajectory_steps": result.stats.trajectory_steps,
                "solve_seconds": result.stats.solve.as_secs_f64(),
                "setup_seconds": result.stats.setup.as_secs_f64(),
                "host_seconds": result.stats.host.as_secs_f64(),
                "points_per_second": n as f64 / result.stats.solve.as_secs_f64().max(1e-12),
            },
        })
    }
}

/// The step settings of the run: the fixed step, or the tolerances.
fn step_settings(run: &Problem) -> serde_json::Value {
    let tol = |t: &crate::ode::Tolerance| match t {
        crate::ode::Tolerance::All(v) => json!(v),
        crate::ode::Tolerance::PerState(v) => json!(v),
    };
    match run {
        Problem::Fixed(p) => json!({"dt": p.grid.dt}),
        Problem::Adaptive(p) => json!({"rtol": tol(&p.control.rtol), "atol": tol(&p.control.atol)}),
        Problem::Stiff(p) => json!({"rtol": tol(&p.control.rtol), "atol": tol(&p.control.atol)}),
        Problem::Sde(_) => json!(null),
    }
}

/// Pairs of attractors (labels) whose features lie within `SPLIT_DISTANCE` tolerances of
/// each other, with that distance.
pub fn split_attractors(a: &[Attractor], method: &Method) -> Vec<(i32, i32, f64)> {
    let Method::Features { tol, .. } = method else {
        return Vec::new();
    };
    let tol: Match = *tol;
    let mut out = Vec::new();
    for i in 0..a.len() {
        for j in i + 1..a.len() {
            let d = tol.distance(&a[i].features, &a[j].features);
            if d <= SPLIT_DISTANCE {
                out.push((a[i].label, a[j].label, d));
            }
        }
    }
    out
}

/// One note for all suspected pairs: the closest few named, then how many more.
pub fn split_warning(pairs: &[(i32, i32, f64)]) -> Option<String> {
    const NAMED: usize = 3;
    let mut sorted = pairs.to_vec();
    sorted.sort_by(|x, y| x.2.total_cmp(&y.2));
    let (a, b, d) = *sorted.first()?;
    let more = match sorted.len() {
        1 => String::new(),
        n => {
            let others: Vec<String> = sorted[1..n.min(NAMED)]
                .iter()
                .map(|(a, b, d)| format!("{a} and {b} ({d:.1})"))
                .collect();
            let rest = n.saturating_sub(NAMED);
            format!(
                "; so do {}{}",
                others.join(", "),
                if rest > 0 {
                    format!(" and {rest} more pairs")
                } else {
                    String::new()
                }
            )
        }
    };
    Some(format!(
        "attractors {a} and {b} differ by only {d:.1} match tolerances{more}: such pairs may \
         be one attractor whose features had not settled by the end of the run (lengthen the \
         span or the window, or widen match_atol/match_rtol); the basin entropy's fractal test \
         is not claimed"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two attractors within a few match tolerances are flagged (and the pair named); the
    /// Duffing wells, 100 tolerances apart, and expression classes are not.
    #[test]
    fn attractors_a_few_tolerances_apart_are_suspected_halves_of_one() {
        let attractor = |label: i32, features: Vec<f64>| Attractor {
            label,
            count: 1,
            fraction: 0.25,
            representative: 0,
            final_state: vec![0.0; 2],
            features,
        };
        let features = Method::Features {
            window: 10.0,
            tol: Match::default(),
            escape: None,
        };
        let wells = [
            attractor(0, vec![-1.0, 0.0, -1.0, 0.0]),
            attractor(1, vec![1.0, 0.0, 1.0, 0.0]),
        ];
        assert!(split_attractors(&wells, &features).is_empty());
        let drifting = [
            wells[0].clone(),
            attractor(1, vec![-1.05, 0.0, -1.0, 0.0]),
            wells[1].clone(),
        ];
        let split = split_attractors(&drifting, &features);
        assert_eq!(split.len(), 1);
        let (a, b, d) = split[0];
        assert_eq!((a, b), (0, 1));
        // |−1.05 − (−1)| / (0.01 + 0.01·1.05) = 2.44 tolerances.
        assert!((d - 0.05 / 0.0205).abs() < 1e-9, "{d}");
        let note = split_warning(&split).unwrap();
        assert!(
            note.contains("attractors 0 and 1 differ by only 2.4 match"),
            "{note}"
        );
        // Many pairs make one note: the closest three named, the rest counted.
        let many: Vec<(i32, i32, f64)> =
            (0..10).map(|k| (k, k + 1, 7.0 - 0.5 * k as f64)).collect();
        let note = split_warning(&many).unwrap();
        assert!(
            note.starts_with("attractors 9 and 10 differ by only 2.5"),
            "{note}"
        );
        assert!(
            note.contains("so do 8 and 9 (3.0), 7 and 8 (3.5) and 7 more pairs"),
            "{note}"
        );
        assert!(split_warning(&[]).is_none());
    }
}
