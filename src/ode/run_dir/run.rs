//! A run from its spec, optionally into a run directory (`out`): checked in full before any
//! device is opened (`prepare_run`), then run on the devices given, every output streamed
//! as chunks arrive, run.json kept up to date so that an interrupted run can be resumed.

use super::directory::{FreshRunGuard, ResumePoint, fingerprint, prepare, running_json};
use super::directory::{stored_spec, system_text};
use super::error::RunDirError;
use super::outputs::{Output, Outputs};
use super::summary::summary_json;
use crate::gpu::GpuContext;
use crate::io::OutputDir;
use crate::ode::sde::{SdeProblem, Steps as SdeSteps};
use crate::ode::sensitivity::{SensitivityRun, SplitSink};
use crate::ode::{
    FanOut, MonteCarlo, Problem, RunOptions, RunStats, Sink, Status, Tally, run_on_devices,
};
use crate::schedule::plan::interruptible_chunk;
use crate::spec::{FieldError, RunSpec, build_problem};
use serde_json::{Value, json};

/// Ensemble statistics keep 3 accumulators per save time and state in host memory; runs
/// that would need more than this are refused before any work.
const MAX_ENSEMBLE_STATS_BYTES: u64 = 2 << 30;

/// The Monte Carlo accumulators' typical size above which a run is refused: they hold
/// quantile sketches, kilobytes per save time and state, so the bound is wider.
const MAX_MONTECARLO_BYTES: u64 = 8 << 30;

/// A run checked and ready: its problem (the system's own states), the augmented one when
/// it has sensitivities, and what it writes where.
pub struct Prepared {
    pub spec: RunSpec,
    pub problem: Problem,
    pub sensitivities: Option<SensitivityRun>,
    pub times: Vec<f64>,
    pub outputs: Vec<Output>,
    quantile_levels: Vec<f64>,
    fingerprint: String,
    /// Trajectories already done (a resumed run).
    pub done: Option<usize>,
    system_text: Option<String>,
    overwrite: bool,
}

/// How a run ended: its summary (run.json's content), tally and statistics.
pub struct DirRun {
    pub summary: Value,
    pub tally: Tally,
    pub stats: RunStats,
    /// Every trajectory came back with a final status.
    pub complete: bool,
    /// Trajectories still "not run" although their chunks were done (a driver or
    /// phaseflow bug); the run is then marked failed.
    pub unfinished: usize,
}

/// The most trajectories per chunk that keep the work an interruption can lose bounded (a
/// chunk is the unit Ctrl-C keeps), by the run's steps.
pub fn interruptible_chunk_of(problem: &Problem) -> usize {
    let steps = match problem {
        Problem::Fixed(f) => f.grid.n_steps as u64,
        Problem::Sde(SdeProblem {
            steps: SdeSteps::Fixed { grid, .. },
            ..
        }) => grid.n_steps as u64,
        // Unknown before the run: assume a thousand attempts, a long adaptive run.
        Problem::Adaptive(_) | Problem::Sde(_) | Problem::Stiff(_) => 1000,
    };
    interruptible_chunk(steps)
}

/// Checks a run: its spec (`outputs` only with `out`), the problem and its sensitivities,
/// the host memory its outputs need, and a resumed run's fingerprint. Nothing is opened,
/// created or run.
pub fn prepare_run(
    spec: RunSpec,
    resume: Option<&ResumePoint>,
    overwrite: bool,
) -> Result<Prepared, RunDirError> {
    if spec.outputs.is_some() && spec.out.is_none() {
        let e = FieldError::at("outputs")
            .key("outputs")
            .text(" chooses the files written to the output directory; give ")
            .key("out")
            .text(" too, or leave ")
            .key("outputs")
            .text(" out");
        return Err(RunDirError::Spec(e.into()));
    }
    let problem = build_problem(&spec)?;
    // With sensitivities the run integrates the augmented system; `problem` stays what the
    // outputs describe (the system's own states).
    let sensitivities = crate::spec::sensitivity_run(&spec, &problem)?;
    let run_problem = sensitivities.as_ref().map_or(&problem, |s| &s.problem);
    let times = problem.save_times()?;
    let n = problem.ensemble().n;
    let mut outputs = spec.outputs.clone().unwrap_or_else(|| vec![Output::States]);
    // A set: `montecarlo,states` is the run `states,montecarlo` is (one fingerprint).
    outputs.sort();
    outputs.dedup();
    check_output_memory(&problem, times.len(), &outputs)?;
    let quantile_levels = crate::spec::run::quantile_levels(&spec)?;
    let fingerprint = fingerprint(run_problem, &outputs);
    if let Some(r) = resume {
        r.check(&fingerprint, n)?;
    }
    let system_text = match resume {
        Some(_) => None,
        None => system_text(&spec)?,
    };
    Ok(Prepared {
        spec,
        problem,
        sensitivities,
        times,
        outputs,
        quantile_levels,
        fingerprint,
        done: resume.map(|r| r.done),
        system_text,
        overwrite,
    })
}

/// Host memory the chosen outputs need beyond the fixed buffers, checked before any work.
fn check_output_memory(
    problem: &Problem,
    n_save: usize,
    which: &[Output],
) -> Result<(), RunDirError> {
    if which.contains(&Output::EnsembleStats) {
        let bytes = 3 * 8 * n_save as u64 * problem.system().dim() as u64;
        if bytes > MAX_ENSEMBLE_STATS_BYTES {
            return Err(RunDirError::Input(format!(
                "--outputs ensemble-stats would keep 3 × {n_save} save times × {} states in \
                 memory ({:.1} GiB, at most {} GiB); save less often",
                problem.system().dim(),
                bytes as f64 / (1u64 << 30) as f64,
                MAX_ENSEMBLE_STATS_BYTES >> 30
            )));
        }
    }
    if which.contains(&Output::Montecarlo) {
        // The accumulators' typical size: their sums and quantile sketches grow with the
        // spread of the data (ode::montecarlo), up to some 25 KB per save time and state.
        let dim = problem.system().dim();
        let bytes = MonteCarlo::typical_bytes(n_save, dim, problem.ensemble().n);
        if bytes > MAX_MONTECARLO_BYTES {
            return Err(RunDirError::Input(format!(
                "--outputs montecarlo would keep accumulators for {n_save} save times × {dim} \
                 states in memory (about {:.1} GiB, at most {} GiB); save less often",
                bytes as f64 / (1u64 << 30) as f64,
                MAX_MONTECARLO_BYTES >> 30
            )));
        }
    }
    Ok(())
}

impl Prepared {
    /// The problem the devices integrate: the augmented one when there are sensitivities.
    pub fn run_problem(&self) -> &Problem {
        self.sensitivities
            .as_ref()
            .map_or(&self.problem, |s| &s.problem)
    }

    /// The fingerprint of the settings that produce the run's files.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The quantile levels of the `montecarlo` output.
    pub fn quantile_levels(&self) -> &[f64] {
        &self.quantile_levels
    }

    /// The system file's text, for a run from a file (kept with the results).
    pub fn system_text(&self) -> Option<&str> {
        self.system_text.as_deref()
    }

    /// Trajectories this run still has to do.
    pub fn remaining(&self) -> usize {
        self.problem.ensemble().n - self.done.unwrap_or(0)
    }

    /// Runs on `devices` (the first one's adapter in the summary) with `options` (whose
    /// `start` is set here for a resumed run), feeding `extra` (a progress display) beside
    /// the run's own sinks. With `out`, every output file is created, and its space
    /// claimed, before any computing, and run.json says at every moment how far the run
    /// got; a failure before the first chunk removes what this run created.
    pub fn run(
        &self,
        devices: &[GpuContext],
        mut options: RunOptions,
        extra: &mut dyn Sink,
    ) -> Result<DirRun, RunDirError> {
        let (spec, problem, sens) = (&self.spec, &self.problem, &self.sensitivities);
        let (n, done) = (problem.ensemble().n, self.done);
        // Declared before the outputs, so that on failure the staged files go first and
        // then what the run wrote early, and the directory if it made it.
        let mut fresh_guard = None;
        let mut outputs = match spec.out.as_deref() {
            Some(dir) => {
                let dir_out = match done {
                    Some(_) => {
                        OutputDir::reopen(dir).map_err(|e| RunDirError::Input(e.to_string()))?
                    }
                    None => {
                        let (out, created) = prepare(dir, self.overwrite)?;
                        fresh_guard = Some(FreshRunGuard::new(dir, created));
                        out
                    }
                };
                let running = running_json(spec, &self.fingerprint, n, done.unwrap_or(0));
                let mut o = Outputs::open(
                    dir_out,
                    problem,
                    self.times.len(),
                    &self.outputs,
                    &self.quantile_levels,
                    done,
                    running,
                    sens.as_ref().map(|s| s.n_sens()),
                )?;
                match done {
                    None => o.write_inputs(problem, self.system_text.as_deref())?,
                    Some(_) => o.list_inputs(problem),
                }
                o.begin()?;
                Some(o)
            }
            None => None,
        };
        let mut tally = match (outputs.as_mut(), done) {
            (Some(o), Some(d)) => o.tally_prefix(d)?,
            _ => Tally::default(),
        };
        options.start = done.unwrap_or(0);
        let stats = {
            let mut sinks: Vec<&mut dyn Sink> = vec![&mut tally, extra];
            let mut sens_sink = None;
            if let Some(o) = outputs.as_mut() {
                let (states, sensitivities) = o.sinks();
                sinks.extend(states);
                sens_sink = sensitivities;
            }
            let mut states = FanOut(sinks);
            match sens {
                None => run_on_devices(devices, problem, &options, &mut states),
                Some(run) => {
                    let mut split = SplitSink::new(run.dim, &mut states, sens_sink);
                    run_on_devices(devices, &run.problem, &options, &mut split)
                }
            }
        }?;
        // A run counts as complete only when every trajectory it ran came back with a
        // final status: one still "not run" after its chunk was done is a failure of the
        // run (a driver that cut a dispatch short, an edited resume), never a result to
        // label complete.
        let unfinished = tally.status[Status::Running as usize];
        let failed = stats.completed == n && unfinished > 0;
        let complete = stats.completed == n && !failed;

        let mut summary = summary_json(&devices[0], problem, &tally, &stats, self.times.len());
        if !problem.system().events.is_empty() {
            let log = problem.system().event_log;
            summary["events"] = json!({
                "names": problem.system().events.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
                "records_per_trajectory": log.k,
                "transient": log.transient,
                "fired": tally.events_fired,
                "recorded": tally.events_recorded,
            });
        }
        if let Some(run) = sens {
            summary["sensitivities"] = json!({
                "names": run.names,
                "error_control": spec.sensitivity_error.as_deref().unwrap_or("include"),
                "equations": run.problem.system().dim(),
            });
        }
        summary["devices"] = json!(devices.iter().map(|d| &d.summary.name).collect::<Vec<_>>());
        summary["state"] = json!(match (complete, failed) {
            (true, _) => "complete",
            (false, true) => "failed",
            (false, false) => "interrupted",
        });
        summary["complete"] = json!(complete);
        summary["trajectories_done"] = json!(stats.completed);
        summary["fingerprint"] = json!(self.fingerprint);
        summary["spec"] = serde_json::to_value(stored_spec(spec)).expect("JSON");
        if let Some(o) = outputs {
            o.finish(problem, &self.times, summary.clone(), stats.completed)?;
        }
        if let Some(g) = fresh_guard.as_mut() {
            g.disarm();
        }
        Ok(DirRun {
            summary,
            tally,
            stats,
            complete,
            unfinished: if failed { unfinished } else { 0 },
        })
    }
}
