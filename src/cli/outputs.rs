//! What `simulate -o DIR` writes, streamed while the run goes on: the files are created (and
//! their space claimed) before any work, filled as chunks arrive, and moved into place
//! together when the run has finished.

use super::CliError;
use crate::io::{Dtype, NpyStream, OutputDir};
use crate::ode::device::SaveBatch;
use crate::ode::{
    EnsembleStats, InitialStates, NpySink, Parameters, Problem, Sink, Status, StepCounts, Tally,
    TrajectoryStats,
};
use serde_json::{Value, json};

pub use crate::spec::Output;

/// Rows of the per-trajectory input tables written at a time.
const ROWS_PER_BLOCK: usize = 1 << 16;

pub struct Outputs {
    dir: OutputDir,
    npy: NpySink,
    trajectory: Option<TrajectoryStats>,
    ensemble: Option<EnsembleStats>,
    files: Vec<Value>,
}

fn write_error(e: impl std::fmt::Display) -> CliError {
    CliError::Runtime(e.to_string())
}

impl Outputs {
    /// Opens every file the run will write; a full disk or an unwritable path fails here.
    /// Resuming (`done` trajectories already written), the files are opened in place.
    pub fn open(
        mut dir: OutputDir,
        problem: &Problem,
        n_save: usize,
        which: &[Output],
        done: Option<usize>,
    ) -> Result<Outputs, CliError> {
        let input = |e: crate::io::OutputError| CliError::Input(e.to_string());
        let (n, dim) = (problem.ensemble().n, problem.system().dim());
        let mut files = vec![json!({"file": "times.npy", "shape": [n_save], "dtype": "float64"})];
        let real = NpySink::states_dtype(problem.precision());
        let dtype_name = |d: Dtype| match d {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::U32 => "uint32",
            Dtype::U8 => "uint8",
        };
        let mut stream = |dir: &mut OutputDir, name: &str, dtype: Dtype, shape: &[u64]| {
            files.push(json!({"file": name, "shape": shape, "dtype": dtype_name(dtype)}));
            match done {
                None => dir.stream_npy(name, dtype, shape),
                Some(_) => dir.existing_npy(name, dtype, shape),
            }
            .map_err(input)
        };
        let (n64, dim64) = (n as u64, dim as u64);
        let mut states = if which.contains(&Output::States) {
            Some(stream(
                &mut dir,
                "states.npy",
                real,
                &[n_save as u64, n64, dim64],
            )?)
        } else {
            None
        };
        let status = stream(&mut dir, "status.npy", Dtype::U8, &[n64])?;
        let stats = if problem.is_adaptive() {
            Some(stream(&mut dir, "stats.npy", Dtype::U32, &[n64, 3])?)
        } else {
            None
        };
        let trajectory = if which.contains(&Output::TrajectoryStats) {
            let mut open = |name| stream(&mut dir, name, Dtype::F64, &[n64, dim64]);
            let (lo, hi, mean) = (
                open("trajectory_min.npy")?,
                open("trajectory_max.npy")?,
                open("trajectory_mean.npy")?,
            );
            Some(TrajectoryStats::new(lo, hi, mean, dim))
        } else {
            None
        };
        let mut ensemble = which
            .contains(&Output::EnsembleStats)
            .then(|| EnsembleStats::new(n_save, dim));
        if let (Some(e), Some(done)) = (ensemble.as_mut(), done) {
            let states = states.as_mut().ok_or_else(|| {
                CliError::Input(
                    "this run's ensemble statistics cannot be resumed: it did not keep states"
                        .into(),
                )
            })?;
            replay(states, e, problem, n_save, done)?;
        }
        Ok(Outputs {
            dir,
            npy: NpySink::new(states, status, stats),
            trajectory,
            ensemble,
            files,
        })
    }

    /// Statuses and step counts of the first `done` trajectories, read back (resuming).
    pub fn tally_prefix(&mut self, done: usize) -> Result<Tally, CliError> {
        let mut tally = Tally::default();
        for start in (0..done).step_by(ROWS_PER_BLOCK) {
            let end = (start + ROWS_PER_BLOCK).min(done);
            let codes = self
                .npy
                .status
                .read_at(start as u64, end - start)
                .map_err(write_error)?;
            let status: Vec<Status> = codes.iter().map(|&c| Status::from_code(c as u32)).collect();
            let steps = match self.npy.stats.as_mut() {
                Some(s) => {
                    let raw = s
                        .read_at(3 * start as u64, 3 * (end - start))
                        .map_err(write_error)?;
                    let words: &[u32] = bytemuck::cast_slice(&raw);
                    Some(
                        words
                            .chunks(3)
                            .map(|w| StepCounts {
                                accepted: w[0],
                                rejected: w[1],
                                rhs_evals: w[2],
                            })
                            .collect::<Vec<_>>(),
                    )
                }
                None => None,
            };
            tally
                .chunk_done(start..end, &status, steps.as_deref())
                .map_err(write_error)?;
        }
        Ok(tally)
    }

    /// The sinks the run feeds.
    pub fn sinks(&mut self) -> Vec<&mut dyn Sink> {
        let mut sinks: Vec<&mut dyn Sink> = vec![&mut self.npy];
        if let Some(t) = self.trajectory.as_mut() {
            sinks.push(t);
        }
        if let Some(e) = self.ensemble.as_mut() {
            sinks.push(e);
        }
        sinks
    }

    /// Writes what is known only at the end (times, inputs, ensemble statistics, run.json),
    /// flushes every stream and moves all files into place.
    /// `complete`: false when the run was interrupted; run.json then says how far it got
    /// and the ensemble statistics (which need every trajectory) are not written.
    pub fn finish(
        mut self,
        problem: &Problem,
        times: &[f64],
        mut summary: Value,
        complete: bool,
    ) -> Result<(), CliError> {
        let dir = &mut self.dir;
        dir.write_npy("times.npy", &[times.len() as u64], times)
            .map_err(write_error)?;
        let (system, ensemble) = (problem.system(), problem.ensemble());
        let n = ensemble.n;
        if ensemble.params != Parameters::Default && system.n_params() > 0 {
            let cols = system.n_params();
            let mut s = dir
                .stream_npy("params.npy", Dtype::F64, &[n as u64, cols as u64])
                .map_err(write_error)?;
            write_rows(&mut s, n, cols, |r| ensemble.params(r))?;
            s.finish().map_err(write_error)?;
            self.files
                .push(json!({"file": "params.npy", "shape": [n, cols], "dtype": "float64"}));
        }
        if ensemble.initial != InitialStates::Default {
            let cols = system.dim();
            let mut s = dir
                .stream_npy("u0.npy", Dtype::F64, &[n as u64, cols as u64])
                .map_err(write_error)?;
            write_rows(&mut s, n, cols, |r| ensemble.states(r))?;
            s.finish().map_err(write_error)?;
            self.files
                .push(json!({"file": "u0.npy", "shape": [n, cols], "dtype": "float64"}));
        }
        if let Some(e) = self.ensemble.as_ref().filter(|_| complete) {
            let (mean, var, count) = e.result();
            let shape = [times.len() as u64, system.dim() as u64];
            dir.write_npy("ensemble_mean.npy", &shape, &mean)
                .map_err(write_error)?;
            dir.write_npy("ensemble_var.npy", &shape, &var)
                .map_err(write_error)?;
            dir.write_npy("ensemble_count.npy", &shape, &count)
                .map_err(write_error)?;
            for (name, dtype) in [
                ("ensemble_mean.npy", "float64"),
                ("ensemble_var.npy", "float64"),
                ("ensemble_count.npy", "uint32"),
            ] {
                self.files
                    .push(json!({"file": name, "shape": shape, "dtype": dtype}));
            }
        }
        self.npy.finish().map_err(write_error)?;
        if let Some(t) = self.trajectory {
            t.finish().map_err(write_error)?;
        }
        summary["files"] = json!(self.files);
        dir.write_json("run.json", &summary).map_err(write_error)?;
        self.dir.commit().map_err(write_error)?;
        Ok(())
    }
}

/// Feeds the ensemble accumulators the states of the first `done` trajectories, read back
/// from `states.npy` slot by slot in trajectory order: the same updates in the same order as
/// the uninterrupted run made, so the result is the same bits.
fn replay(
    states: &mut NpyStream,
    stats: &mut EnsembleStats,
    problem: &Problem,
    n_save: usize,
    done: usize,
) -> Result<(), CliError> {
    let (n, dim, precision) = (
        problem.ensemble().n,
        problem.system().dim(),
        problem.precision(),
    );
    for s in 0..n_save {
        for start in (0..done).step_by(ROWS_PER_BLOCK) {
            let end = (start + ROWS_PER_BLOCK).min(done);
            let bytes = states
                .read_at(((s * n + start) * dim) as u64, (end - start) * dim)
                .map_err(write_error)?;
            let batch = SaveBatch {
                slots: s..s + 1,
                chunk: start..end,
                stride: end - start,
                n,
                dim,
                precision,
                bytes: &bytes,
            };
            stats.saves(&batch).map_err(write_error)?;
        }
    }
    Ok(())
}

/// Writes an [n, cols] f64 table produced `ROWS_PER_BLOCK` rows at a time.
fn write_rows(
    s: &mut NpyStream,
    n: usize,
    cols: usize,
    rows: impl Fn(std::ops::Range<usize>) -> Vec<f64>,
) -> Result<(), CliError> {
    for start in (0..n).step_by(ROWS_PER_BLOCK) {
        let block = rows(start..(start + ROWS_PER_BLOCK).min(n));
        s.write_at((start * cols) as u64, bytemuck::cast_slice(&block))
            .map_err(write_error)?;
    }
    Ok(())
}
