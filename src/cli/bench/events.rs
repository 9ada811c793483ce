//! `bench events`: a Poincaré section at ensemble scale, and what locating its crossings
//! costs. The harmonic oscillator x'' = −ω² x from (x, v) = (1, 0), ω = linspace(1, 3, N),
//! t in [0, 100], Tsit5 at rtol = atol = 1e-6 in f32, with the section x = 0 crossed
//! downwards: crossing k is at exactly t_k = (π/2 + 2πk)/ω, so every record has an
//! independent reference (up to 48 per trajectory, all kept). The same run without the
//! section is timed beside it: their ratio is the price of events (the condition at every
//! step, root finding on the dense output at crossings, the results buffer).

use super::harness::Bench;
use super::row::Row;
use super::scenario::Scenario;
use crate::cli::error::CliError;
use crate::ode::{Problem, RunOptions, SimError, Solution, Status};
use crate::precision::Precision;
use crate::spec::{RunSpec, build_problem};
use std::f64::consts::PI;

const DEFAULT_N: usize = 100_000;
const T1: f64 = 100.0;
const OMEGA: (f64, f64) = (1.0, 3.0);
/// Records kept per trajectory: more than the 48 crossings ω = 3 has before t = 100.
const POINTS: usize = 64;
/// Crossing times must be within this of the exact ones. Tsit5 at 1e-6 drifts in phase
/// over up to 48 periods (measured: 1.8e-4 at t ≈ 100 in f32, on lavapipe); f32 rounds t
/// near 100 to 8e-6, and the state to 6e-8 relative, which moves a root by 6e-8/ω. 1e-3
/// is above all of that and far below a missed or doubled crossing (a period ≥ 2.1).
const TIME_TOL: f64 = 1e-3;

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Runtime(format!("benchmark run failed: {e}"))
}

fn spec(n: usize, section: bool) -> Result<RunSpec, CliError> {
    let mut text = format!(
        "system = \"harmonic\"\nn = {n}\nsolver = \"tsit5\"\nprecision = \"f32\"\n\
         tspan = [0.0, {T1:?}]\nrtol = 1e-6\natol = 1e-6\nsweep = {{ w = [{:?}, {:?}] }}\n",
        OMEGA.0, OMEGA.1
    );
    if section {
        text.push_str(&format!(
            "section = \"x = 0\"\ndirection = \"down\"\npoints = {POINTS}\n"
        ));
    }
    toml::from_str(&text).map_err(failed)
}

fn problem(n: usize, section: bool) -> Result<Problem, CliError> {
    build_problem(&spec(n, section)?).map_err(failed)
}

/// Exact crossings of trajectory `j` before T1: t_k = (π/2 + 2πk)/ω, k = 0, 1, ...
fn exact_crossings(omega: f64) -> impl Iterator<Item = f64> {
    (0..)
        .map(move |k| (PI / 2.0 + 2.0 * PI * k as f64) / omega)
        .take_while(|&t| t <= T1)
}

/// Every trajectory's records against the closed form: the count (a crossing within the
/// tolerance of T1 may or may not be in) and each time. Returns the worst time error and
/// the number of records checked.
fn check(problem: &Problem, s: &Solution) -> Result<(f64, usize), CliError> {
    let log = s
        .events
        .as_ref()
        .ok_or_else(|| failed("the run with a section returned no event log"))?;
    let e = problem.ensemble();
    let w = problem
        .system()
        .param_index("w")
        .ok_or_else(|| failed("harmonic has no parameter w"))?;
    let (mut worst, mut checked) = (0.0f64, 0);
    for j in 0..s.n {
        if s.status[j] != Status::Success {
            return Err(CliError::Runtime(format!(
                "self-check failed: trajectory {j} ended with '{}'",
                s.status[j].describe()
            )));
        }
        // The device runs at the f32 value of ω.
        let omega = e.param_slots(j..j + 1)[w] as f32 as f64;
        let exact: Vec<f64> = exact_crossings(omega).collect();
        let count = log.counts[j] as usize;
        let borderline = exact.last().is_some_and(|&t| T1 - t < TIME_TOL)
            || (PI / 2.0 + 2.0 * PI * exact.len() as f64) / omega - T1 < TIME_TOL;
        if count != exact.len() && !(borderline && count.abs_diff(exact.len()) == 1) {
            return Err(CliError::Runtime(format!(
                "self-check failed: trajectory {j} (ω = {omega}) crossed x = 0 downwards \
                 {count} times; exactly {} crossings lie in [0, {T1}]",
                exact.len()
            )));
        }
        for (r, want) in exact.iter().enumerate().take(log.recorded(j)) {
            let got = log.record(j, r)[0];
            let err = (got - want).abs();
            if err.is_nan() || err > TIME_TOL {
                return Err(CliError::Runtime(format!(
                    "self-check failed: trajectory {j} (ω = {omega}) crossing {r} at t = \
                     {got}, exactly {want}"
                )));
            }
            worst = worst.max(err);
            checked += 1;
        }
    }
    Ok((worst, checked))
}

/// Median wall time of `reps` (at least 1, at most 3) runs, and its GPU time.
fn timed(bench: &Bench, problem: &Problem) -> Result<(f64, Option<f64>, Solution), CliError> {
    let run = || {
        problem
            .simulate(bench.ctx, &RunOptions::default())
            .map_err(|e| match e {
                too_large @ SimError::OutputTooLarge { .. } => {
                    CliError::Input(too_large.to_string())
                }
                other => failed(other),
            })
    };
    let first = run()?;
    let mut runs = vec![(first.stats.solve.as_secs_f64(), first.stats.gpu)];
    while runs.len() < bench.reps.clamp(1, 3) && runs[0].0 < 2.0 {
        let s = run()?;
        runs.push((s.stats.solve.as_secs_f64(), s.stats.gpu));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mid, gpu) = runs[runs.len() / 2];
    Ok((mid, gpu.map(|g| g.as_secs_f64()), first))
}

pub fn run(bench: &Bench, size: Option<usize>) -> Result<Vec<Row>, CliError> {
    let n = size.unwrap_or(DEFAULT_N);
    let with = problem(n, true)?;
    let without = problem(n, false)?;
    let (plain_s, plain_gpu, _) = timed(bench, &without)?;
    let (events_s, events_gpu, solution) = timed(bench, &with)?;
    let (worst, checked) = check(&with, &solution)?;
    let (fired, _) = solution.events.as_ref().map_or((0, 0), |log| log.totals());
    let mut plain = Row::new(
        Scenario::Events,
        "tsit5, no section",
        n,
        plain_s,
        (n as f64, "trajectories"),
        "statuses; the baseline of the section run".into(),
    );
    plain.gpu_seconds = plain_gpu;
    let mut row = Row::new(
        Scenario::Events,
        "tsit5 + section",
        n,
        events_s,
        (n as f64, "trajectories"),
        format!("{checked} crossings = t_k = (π/2 + 2πk)/ω within {TIME_TOL:.0e}"),
    );
    row.precision = Precision::F32;
    row.gpu_seconds = events_gpu;
    row.error = Some(worst);
    row.note = Some(format!(
        "{fired} crossings located, {:.3e} a second; {:.2}× the run without the section \
         ({plain_s:.3} s); worst crossing time off the exact one by {worst:.1e}",
        fired as f64 / events_s,
        events_s / plain_s
    ));
    Ok(vec![plain, row])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed form: ω = 1 crosses x = 0 downwards at π/2 + 2πk, 16 times before 100.
    #[test]
    fn exact_crossings_of_the_slowest_oscillator() {
        let t: Vec<f64> = exact_crossings(1.0).collect();
        assert_eq!(t.len(), 16);
        assert!((t[0] - PI / 2.0).abs() < 1e-15);
        assert!((t[15] - (PI / 2.0 + 30.0 * PI)).abs() < 1e-12);
        assert!(exact_crossings(OMEGA.1).count() < POINTS);
    }

    /// The scenario's spec is a valid run with a section on every trajectory.
    #[test]
    fn the_spec_builds_a_section_run() {
        let p = problem(10, true).unwrap();
        assert_eq!(p.system().events.len(), 1);
        assert_eq!(p.system().event_log.k, POINTS);
        assert!(problem(10, false).unwrap().system().events.is_empty());
    }

    /// A log that misses a crossing, or places one off by more than the tolerance, fails
    /// the check.
    #[test]
    fn the_check_refuses_a_wrong_log() {
        let p = problem(2, true).unwrap();
        let omegas = [1.0f64, 3.0];
        let mut log = crate::ode::events::EventLog::empty(2, POINTS, 2);
        for (j, &w) in omegas.iter().enumerate() {
            let times: Vec<f64> = exact_crossings(w).collect();
            log.counts[j] = times.len() as u32;
            for (r, t) in times.iter().enumerate() {
                let at = (j * POINTS + r) * 4;
                log.records[at..at + 4].copy_from_slice(&[*t, 0.0, 0.0, -w]);
            }
        }
        let solution = |log: crate::ode::events::EventLog| Solution {
            n: 2,
            dim: 2,
            state_names: vec!["x".into(), "v".into()],
            times: vec![T1],
            states: crate::ode::StateValues::F32(vec![0.0; 4]),
            status: vec![Status::Success; 2],
            steps: None,
            stats: Default::default(),
            events: Some(log),
        };
        let (worst, checked) = check(&p, &solution(log.clone())).unwrap();
        assert_eq!(checked, 16 + 48);
        assert!(worst < 1e-12);
        let mut missed = log.clone();
        missed.counts[1] -= 2;
        let err = check(&p, &solution(missed)).unwrap_err().to_string();
        assert!(err.contains("trajectory 1"), "{err}");
        let mut off = log;
        off.records[(POINTS + 3) * 4] += 2e-3;
        let err = check(&p, &solution(off)).unwrap_err().to_string();
        assert!(err.contains("crossing 3"), "{err}");
    }
}
