//! What a Lyapunov run found, as JSON: the figures the CLI's `--json` and run.json print
//! and the HTTP server returns, one function so that they say the same thing, and the
//! warnings about figures that cannot be trusted (which name the run-config keys to change).

use super::problem::LyapunovProblem;
use super::run::LyapunovResult;
use crate::ode::solution::{Status, status_counts_json};
use crate::precision::Precision;
use serde_json::json;

/// Out-of-order exponents are reported 3 combined standard errors apart or more.
const ORDER_SIGMAS: f64 = 3.0;
/// f32 keeps about 7 digits: tangent vectors that separate by more than e^12 (1.6e5)
/// between renormalisations leave the smaller ones with 2 or fewer.
const F32_SEPARATION: f64 = 12.0;

impl LyapunovResult {
    /// Trajectories that succeeded.
    fn succeeded(&self) -> Vec<usize> {
        (0..self.n)
            .filter(|&j| self.status[j] == Status::Success)
            .collect()
    }

    /// The run's summary: its settings, status counts, each exponent's mean, minimum and
    /// maximum over the trajectories that succeeded, how many are chaotic (λ1 above three
    /// standard errors), timings, warnings and, for 8 trajectories or fewer, each one's
    /// exponents and errors. Callers add what only they know (the ensemble as given, the
    /// files written).
    pub fn summary_json(&self, problem: &LyapunovProblem) -> serde_json::Value {
        let r = self;
        let ok = r.succeeded();
        let column = |m: usize| -> serde_json::Value {
            let v: Vec<f64> = ok.iter().map(|&j| r.exponents(j)[m]).collect();
            if v.is_empty() {
                return json!(null);
            }
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            json!({"mean": mean, "min": min, "max": max})
        };
        let chaotic = ok
            .iter()
            .filter(|&&j| r.exponents(j)[0] > 3.0 * r.errors(j)[0])
            .count();
        let s = &r.stats;
        json!({
            "system": problem.system.name(),
            "n": r.n,
            "k": r.k,
            "solver": problem.tableau.name,
            "precision": problem.precision,
            "tspan": [problem.t0, problem.t0 + problem.transient + problem.time],
            "dt": problem.dt,
            "transient": problem.transient,
            "time": problem.time,
            "renorm": problem.renorm,
            "blocks": blocks(problem),
            "status": status_counts_json(
                Status::ALL
                    .into_iter()
                    .map(|st| (st, r.status.iter().filter(|&&x| x == st).count()))
                    .filter(|&(_, c)| c > 0)
                    .collect()
            ),
            "chaotic": chaotic,
            "exponents": (0..r.k).map(column).collect::<Vec<_>>(),
            "seconds": {"solve": s.solve.as_secs_f64(), "compile": s.compile.as_secs_f64(),
                        "setup": s.setup.as_secs_f64()},
            "trajectory_steps": s.trajectory_steps,
            "trajectories_per_second": r.n as f64 / s.solve.as_secs_f64().max(1e-12),
            "warnings": r.warnings(problem),
            // A few trajectories: each one's exponents and standard errors.
            "trajectories": (r.n <= 8).then(|| (0..r.n).map(|j| json!({
                "exponents": r.exponents(j), "errors": r.errors(j)
            })).collect::<Vec<_>>()),
        })
    }

    /// What the user should know about the figures: fewer blocks than asked (they must hold
    /// whole renormalisations), trajectories that failed, exponents that did not converge
    /// into order, and tangent vectors that separated beyond what f32 resolves between
    /// renormalisations.
    pub fn warnings(&self, problem: &LyapunovProblem) -> Vec<String> {
        warnings(problem, self, &self.succeeded(), blocks(problem))
    }
}

/// Blocks of the convergence estimate as run (whole renormalisations each).
fn blocks(problem: &LyapunovProblem) -> u32 {
    problem
        .steps()
        .map_or(problem.blocks as u32, |st| st.blocks())
}

fn warnings(
    problem: &LyapunovProblem,
    r: &LyapunovResult,
    ok: &[usize],
    blocks: u32,
) -> Vec<String> {
    let mut out = Vec::new();
    if blocks as usize != problem.blocks {
        out.push(format!(
            "the standard errors come from {blocks} blocks, not the {} asked for: blocks hold \
             whole re-orthonormalisations (of every {}), and there are {} of them",
            problem.blocks,
            problem.renorm,
            problem.steps().map_or(0, |st| st.renorms)
        ));
    }
    let failed = r.n - ok.len();
    if failed > 0 {
        out.push(format!(
            "{} did not succeed (see status; their exponents are NaN): the state or the \
             tangent vectors overflowed; a smaller dt or a shorter renorm may help",
            plural(failed, "trajectory", "trajectories")
        ));
    }
    let unordered = ok
        .iter()
        .filter(|&&j| {
            let (l, e) = (r.exponents(j), r.errors(j));
            (1..r.k).any(|i| l[i] - l[i - 1] > ORDER_SIGMAS * (e[i] + e[i - 1]))
        })
        .count();
    if unordered > 0 {
        out.push(format!(
            "the exponents of {} are out of order (a later one larger by more than \
             {ORDER_SIGMAS} standard errors): they have not converged; average over a longer \
             time",
            plural(unordered, "trajectory", "trajectories")
        ));
    }
    if problem.precision == Precision::F32 && r.k > 1 {
        let spread = ok
            .iter()
            .map(|&j| (r.exponents(j)[0] - r.exponents(j)[r.k - 1]) * problem.renorm)
            .fold(0.0f64, f64::max);
        if spread > F32_SEPARATION {
            out.push(format!(
                "between re-orthonormalisations the tangent vectors separate by at least \
                 e^{spread:.0} (from these exponents, which the separation itself makes too \
                 small), more than f32 resolves (e^{F32_SEPARATION}): the smaller exponents \
                 are likely wrong; shorten renorm or use precision f64"
            ));
        }
    }
    out
}

/// "1 trajectory", "2 trajectories".
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(exponents: Vec<f64>, errors: Vec<f64>, k: usize) -> LyapunovResult {
        let n = exponents.len() / k;
        LyapunovResult {
            n,
            k,
            exponents,
            errors,
            status: vec![Status::Success; n],
            final_states: vec![0.0; 3 * n],
            stats: Default::default(),
        }
    }

    /// Each warning appears exactly when its condition holds: fewer blocks than asked,
    /// exponents out of order beyond their errors, f32 tangent vectors separating by more
    /// than e^12 between renormalisations.
    #[test]
    fn warnings_say_what_the_figures_cannot_be_trusted_for() {
        let lorenz = crate::model::builtin("lorenz").unwrap().unwrap();
        // 100 renormalisations in 30 blocks: 4 each, so 25 blocks.
        let mut p = LyapunovProblem::new(lorenz, 1, 0.01, 1.0, 10.0);
        p.blocks = 30;
        let good = result(vec![0.9, 0.0, -14.5], vec![0.01; 3], 3);
        let w = warnings(&p, &good, &[0], 25);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("25 blocks, not the 30 asked for"), "{w:?}");
        assert_eq!(good.warnings(&p), w);
        p.blocks = 25;
        assert!(warnings(&p, &good, &[0], 25).is_empty());

        // λ2 above λ1 by 0.2 with errors 0.01: out of order; with errors 0.1, within.
        let unordered = result(vec![0.1, 0.3, -14.0], vec![0.01; 3], 3);
        let w = warnings(&p, &unordered, &[0], 25);
        assert!(w.len() == 1 && w[0].contains("exponents of 1 trajectory are out of order"));
        let noisy = result(vec![0.1, 0.3, -14.0], vec![0.1; 3], 3);
        assert!(warnings(&p, &noisy, &[0], 25).is_empty());
        // A failed trajectory is not judged, only counted.
        let w = warnings(&p, &unordered, &[], 25);
        assert!(
            w.len() == 1 && w[0].starts_with("1 trajectory did not succeed"),
            "{w:?}"
        );

        // Renormalising every 1.0 with λ1 − λ3 = 15.4: e^15 in f32 warns, in f64 not.
        p.renorm = 1.0;
        let w = warnings(&p, &good, &[0], 25);
        assert!(w.len() == 1 && w[0].contains("e^15"), "{w:?}");
        p.precision = Precision::F64;
        assert!(warnings(&p, &good, &[0], 25).is_empty());
    }

    /// The summary's figures: each exponent's mean, min and max over the trajectories that
    /// succeeded, the chaotic count and the span.
    #[test]
    fn the_summary_counts_what_succeeded() {
        let lorenz = crate::model::builtin("lorenz").unwrap().unwrap();
        let p = LyapunovProblem::new(lorenz, 3, 0.01, 1.0, 10.0);
        let mut r = result(
            vec![
                0.9,
                0.0,
                -14.5,
                0.01,
                0.0,
                -1.0,
                f64::NAN,
                f64::NAN,
                f64::NAN,
            ],
            vec![0.01; 9],
            3,
        );
        r.status[2] = Status::NonFinite;
        let s = r.summary_json(&p);
        assert_eq!(s["system"], "lorenz");
        assert_eq!(s["tspan"], json!([0.0, 11.0]));
        assert_eq!(s["chaotic"], 1);
        assert_eq!(s["exponents"][0]["max"], 0.9);
        assert_eq!(s["exponents"][2]["min"], -14.5);
        assert_eq!(s["status"], json!({"success": 2, "non_finite": 1}));
        assert_eq!(s["blocks"], 10);
        assert_eq!(s["trajectories"].as_array().unwrap().len(), 3);
        assert!(
            s["warnings"][0]
                .as_str()
                .unwrap()
                .starts_with("1 trajectory")
        );
    }
}
