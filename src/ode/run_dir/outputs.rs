//! What `simulate -o DIR` writes, streamed while the run goes on: the files are created (and
//! their space claimed) before any work, filled as chunks arrive, and moved into place
//! together when the run has finished.

use super::error::RunDirError;
use crate::io::{Dtype, NpyStream, OutputDir};
use crate::ode::device::SaveBatch;
use crate::ode::events::EventSink;
use crate::ode::{
    EnsembleStats, InitialStates, Inputs, MonteCarlo, NpySink, Parameters, Problem, SavesNpy, Sink,
    SinkError, Status, StepCounts, Tally, TrajectoryStats,
};
use serde_json::{Value, json};
use std::ops::Range;
use std::path::PathBuf;

pub use crate::spec::Output;

/// Rows of the per-trajectory input tables written at a time.
const ROWS_PER_BLOCK: usize = 1 << 16;

pub struct Outputs {
    dir: OutputDir,
    npy: NpySink,
    trajectory: Option<TrajectoryStats>,
    ensemble: Option<EnsembleStats>,
    montecarlo: Option<MonteCarlo>,
    events: Option<EventSink>,
    /// `sensitivities.npy` [n_save, N, dim, n_sens], fed apart from the other sinks (see
    /// `sinks`), with its values per row.
    sensitivities: Option<(SavesNpy, usize)>,
    checkpoint: Checkpoint,
    files: Vec<Value>,
}

/// Keeps run.json's `trajectories_done` up to date as chunks finish, so that a run killed
/// at any moment (SIGKILL, a power cut of the process) can be resumed: fed last, after
/// every other sink has written the chunk.
struct Checkpoint {
    dir: PathBuf,
    run: Value,
}

impl Checkpoint {
    fn write(&self) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(&self.run).expect("JSON") + "\n";
        let tmp = self.dir.join(".run.json.writing");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, self.dir.join("run.json"))
    }
}

impl Sink for Checkpoint {
    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        _: &[Status],
        _: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        self.run["trajectories_done"] = json!(chunk.end);
        self.write().map_err(|source| SinkError::Io {
            path: self.dir.join("run.json").display().to_string(),
            source,
        })
    }
}

fn write_error(e: impl std::fmt::Display) -> RunDirError {
    RunDirError::Runtime(e.to_string())
}

impl Outputs {
    /// Opens every file the run will write; a full disk or an unwritable path fails here.
    /// Resuming (`done` trajectories already written), the files are opened where they are.
    /// `run`: the run.json of the run in progress (state "running"), written by `begin` and
    /// kept up to date as chunks finish. `levels`: the quantile levels of `montecarlo`.
    /// `n_sens`: the run's sensitivities per state, if it has any (`sensitivities.npy`,
    /// written with the states).
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        mut dir: OutputDir,
        problem: &Problem,
        n_save: usize,
        which: &[Output],
        levels: &[f64],
        done: Option<usize>,
        run: Value,
        n_sens: Option<usize>,
    ) -> Result<Outputs, RunDirError> {
        let input = |e: crate::io::OutputError| RunDirError::Input(e.to_string());
        let (n, dim) = (problem.ensemble().n, problem.system().dim());
        let mut files = vec![json!({"file": "times.npy", "shape": [n_save], "dtype": "float64"})];
        let real = NpySink::states_dtype(problem.precision());
        let dtype_name = |d: Dtype| match d {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::U32 => "uint32",
            Dtype::I32 => "int32",
            Dtype::I64 => "int64",
            Dtype::U8 => "uint8",
        };
        let mut stream = |dir: &mut OutputDir, name: &str, dtype: Dtype, shape: &[u64]| {
            files.push(json!({"file": name, "shape": shape, "dtype": dtype_name(dtype)}));
            match done {
                None => dir.stream_npy(name, dtype, shape),
                Some(_) => dir.resume_npy(name, dtype, shape),
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
        let sensitivities = match n_sens {
            Some(k) if which.contains(&Output::States) => Some((
                SavesNpy(stream(
                    &mut dir,
                    "sensitivities.npy",
                    real,
                    &[n_save as u64, n64, dim64, k as u64],
                )?),
                dim * k,
            )),
            _ => None,
        };
        let status = stream(&mut dir, "status.npy", Dtype::U8, &[n64])?;
        let system = problem.system();
        let events = if system.events.is_empty() {
            None
        } else {
            let [(rn, rd, rs), (cn, cd, cs)] =
                EventSink::files(n, system.event_log.k, dim, problem.precision());
            let records = stream(&mut dir, rn, rd, &rs)?;
            let counts = stream(&mut dir, cn, cd, &cs)?;
            Some(EventSink::new(records, counts, problem.precision()))
        };
        let stats_columns = if problem.is_stiff() {
            StepCounts::STIFF_COLUMNS
        } else {
            StepCounts::COLUMNS
        };
        let stats = if problem.is_adaptive() {
            Some(stream(
                &mut dir,
                "stats.npy",
                Dtype::U32,
                &[n64, stats_columns as u64],
            )?)
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
        let mut montecarlo = which
            .contains(&Output::Montecarlo)
            .then(|| MonteCarlo::new(n_save, dim, levels));
        // Resuming, the reductions across trajectories are fed the finished ones again from
        // states.npy: the only place their values are kept.
        if let Some(done) = done {
            let mut replayed: Vec<(&mut dyn Sink, &str)> = Vec::new();
            if let Some(e) = ensemble.as_mut() {
                replayed.push((e, "ensemble statistics"));
            }
            if let Some(m) = montecarlo.as_mut() {
                replayed.push((m, "Monte Carlo statistics"));
            }
            for (sink, what) in replayed {
                let states = states.as_mut().ok_or_else(|| {
                    RunDirError::Input(format!(
                        "this run's {what} cannot be resumed: it did not keep states"
                    ))
                })?;
                replay(states, sink, problem, n_save, done)?;
            }
        }
        let checkpoint = Checkpoint {
            dir: dir.path().to_path_buf(),
            run,
        };
        Ok(Outputs {
            dir,
            npy: NpySink::new(states, status, stats).with_stats_columns(stats_columns),
            trajectory,
            ensemble,
            montecarlo,
            events,
            sensitivities,
            checkpoint,
            files,
        })
    }

    /// Writes run.json with state "running", after the inputs and before the first chunk:
    /// from now on the directory can be resumed whatever happens to the process.
    pub fn begin(&self) -> Result<(), RunDirError> {
        self.checkpoint.write().map_err(|e| {
            RunDirError::Input(format!(
                "cannot write '{}': {e}",
                self.checkpoint.dir.join("run.json").display()
            ))
        })
    }

    /// Writes, now and under their own names, the inputs a resumed run reads back from the
    /// run directory (so that it needs nothing outside it): the per-trajectory parameters
    /// and initial states when they vary, the input signals, the system file's text.
    pub fn write_inputs(
        &mut self,
        problem: &Problem,
        system_text: Option<&str>,
    ) -> Result<(), RunDirError> {
        let (system, ensemble) = (problem.system(), problem.ensemble());
        let n = ensemble.n;
        let dir = &self.dir;
        if let Some(text) = system_text {
            dir.write_now("system.toml", text.as_bytes())
                .map_err(write_error)?;
        }
        if ensemble.params != Parameters::Default && system.n_params() > 0 {
            let cols = system.n_params();
            write_table_now(dir, "params.npy", n, cols, |r| ensemble.params(r))?;
            self.files
                .push(json!({"file": "params.npy", "shape": [n, cols], "dtype": "float64"}));
        }
        if ensemble.initial != InitialStates::Default {
            let cols = system.dim();
            write_table_now(dir, "u0.npy", n, cols, |r| ensemble.states(r))?;
            self.files
                .push(json!({"file": "u0.npy", "shape": [n, cols], "dtype": "float64"}));
        }
        if let Inputs::Table(t) = &ensemble.inputs {
            write_table_now(dir, "inputs.npy", t.rows, t.cols, |r| {
                t.data[r.start * t.cols..r.end * t.cols].to_vec()
            })?;
            self.files
                .push(json!({"file": "inputs.npy", "shape": [t.rows, t.cols], "dtype": "float64"}));
        }
        Ok(())
    }

    /// The files a resumed run finds already written (see `write_inputs`), for its listing.
    pub fn list_inputs(&mut self, problem: &Problem) {
        let (system, ensemble) = (problem.system(), problem.ensemble());
        let n = ensemble.n;
        if ensemble.params != Parameters::Default && system.n_params() > 0 {
            let cols = system.n_params();
            self.files
                .push(json!({"file": "params.npy", "shape": [n, cols], "dtype": "float64"}));
        }
        if ensemble.initial != InitialStates::Default {
            let cols = system.dim();
            self.files
                .push(json!({"file": "u0.npy", "shape": [n, cols], "dtype": "float64"}));
        }
        if let Inputs::Table(t) = &ensemble.inputs {
            self.files
                .push(json!({"file": "inputs.npy", "shape": [t.rows, t.cols], "dtype": "float64"}));
        }
    }

    /// Statuses and step counts of the first `done` trajectories, read back (resuming).
    pub fn tally_prefix(&mut self, done: usize) -> Result<Tally, RunDirError> {
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
                    let columns = self.npy.stats_columns;
                    let raw = s
                        .read_at((columns * start) as u64, columns * (end - start))
                        .map_err(write_error)?;
                    // A Vec<u8> need not be 4-byte aligned: copy into words, never cast.
                    let words: Vec<u32> = bytemuck::pod_collect_to_vec(&raw);
                    Some(
                        words
                            .chunks(columns)
                            .map(StepCounts::from_row)
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

    /// The sinks of the states and, apart, the sink of the sensitivities (a `SplitSink`
    /// feeds both: see `ode::sensitivity`).
    pub fn sinks(&mut self) -> (Vec<&mut dyn Sink>, Option<&mut dyn Sink>) {
        let sens = self.sensitivities.as_mut().map(|(s, _)| s as &mut dyn Sink);
        let mut sinks: Vec<&mut dyn Sink> = vec![&mut self.npy];
        if let Some(t) = self.trajectory.as_mut() {
            sinks.push(t);
        }
        if let Some(e) = self.ensemble.as_mut() {
            sinks.push(e);
        }
        if let Some(m) = self.montecarlo.as_mut() {
            sinks.push(m);
        }
        if let Some(e) = self.events.as_mut() {
            sinks.push(e);
        }
        // Last: a chunk is recorded as done only once every file holds it.
        sinks.push(&mut self.checkpoint);
        (sinks, sens)
    }

    /// Writes what is known only at the end (times, ensemble statistics, run.json), flushes
    /// every stream and moves all files into place.
    /// `done`: trajectories `0..done` are finished; fewer than N when the run was
    /// interrupted: the others are then marked "not run" (status 0, NaN states and
    /// statistics), run.json says how far the run got, and the ensemble statistics (which
    /// need every trajectory) are not written.
    pub fn finish(
        mut self,
        problem: &Problem,
        times: &[f64],
        mut summary: Value,
        done: usize,
    ) -> Result<(), RunDirError> {
        let dir = &mut self.dir;
        dir.write_npy("times.npy", &[times.len() as u64], times)
            .map_err(write_error)?;
        let system = problem.system();
        let n = problem.ensemble().n;
        let complete = done >= n;
        if !complete {
            self.mark_not_run(done, n, times.len(), system.dim())?;
        }
        let dir = &mut self.dir;
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
        if let Some(m) = self.montecarlo.as_ref().filter(|_| complete) {
            let files = write_montecarlo(dir, m)?;
            summary["montecarlo"] = json!({
                "quantiles": m.levels(),
                "nonfinite_values": files.1,
            });
            self.files.extend(files.0);
        }
        self.npy.finish().map_err(write_error)?;
        if let Some(t) = self.trajectory {
            t.finish().map_err(write_error)?;
        }
        if let Some(e) = self.events {
            e.finish().map_err(write_error)?;
        }
        if let Some((s, _)) = self.sensitivities {
            s.finish().map_err(write_error)?;
        }
        summary["files"] = json!(self.files);
        dir.write_json("run.json", &summary).map_err(write_error)?;
        self.dir.commit().map_err(write_error)?;
        Ok(())
    }

    /// Trajectories `done..n` did not run: NaN in every state and statistic they would
    /// have (their status is already 0, "not run"; files are created zeroed), so that no
    /// plausible-looking value stands for work that was not done. Whatever a chunk in
    /// flight wrote before the stop is overwritten too.
    fn mark_not_run(
        &mut self,
        done: usize,
        n: usize,
        n_save: usize,
        dim: usize,
    ) -> Result<(), RunDirError> {
        let nan_block = |real: Dtype, rows: usize| -> Vec<u8> {
            match real {
                Dtype::F64 => bytemuck::cast_slice(&vec![f64::NAN; rows * dim]).to_vec(),
                _ => bytemuck::cast_slice(&vec![f32::NAN; rows * dim]).to_vec(),
            }
        };
        let codes = vec![0u8; ROWS_PER_BLOCK];
        for start in (done..n).step_by(ROWS_PER_BLOCK) {
            let end = (start + ROWS_PER_BLOCK).min(n);
            self.npy
                .status
                .write_at(start as u64, &codes[..end - start])
                .map_err(write_error)?;
            if let Some(states) = self.npy.states.as_mut() {
                let block = nan_block(states.dtype(), end - start);
                for s in 0..n_save {
                    states
                        .write_at(((s * n + start) * dim) as u64, &block)
                        .map_err(write_error)?;
                }
            }
            if let Some((SavesNpy(sens), width)) = self.sensitivities.as_mut() {
                let rows = (end - start) * *width / dim.max(1);
                let block = nan_block(sens.dtype(), rows);
                for s in 0..n_save {
                    sens.write_at(((s * n + start) * *width) as u64, &block)
                        .map_err(write_error)?;
                }
            }
            if let Some(t) = self.trajectory.as_mut() {
                let block = nan_block(Dtype::F64, end - start);
                for stream in [&mut t.min, &mut t.max, &mut t.mean] {
                    stream
                        .write_at((start * dim) as u64, &block)
                        .map_err(write_error)?;
                }
            }
        }
        Ok(())
    }
}

/// Feeds the ensemble accumulators the states of the first `done` trajectories, read back
/// from `states.npy` slot by slot in trajectory order: the same updates in the same order as
/// the uninterrupted run made, so the result is the same bits.
fn replay(
    states: &mut NpyStream,
    stats: &mut dyn Sink,
    problem: &Problem,
    n_save: usize,
    done: usize,
) -> Result<(), RunDirError> {
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

/// Writes the `montecarlo` output's files; returns their run.json entries (the quantiles'
/// with its levels) and the number of non-finite values left out.
fn write_montecarlo(dir: &mut OutputDir, m: &MonteCarlo) -> Result<(Vec<Value>, u64), RunDirError> {
    let r = m.result();
    let shape = [r.n_save as u64, r.dim as u64];
    let mut entries = Vec::new();
    for (name, values) in [
        ("mc_mean.npy", &r.mean),
        ("mc_var.npy", &r.var),
        ("mc_stderr.npy", &r.stderr),
        ("mc_min.npy", &r.min),
        ("mc_max.npy", &r.max),
    ] {
        dir.write_npy(name, &shape, values).map_err(write_error)?;
        entries.push(json!({"file": name, "shape": shape, "dtype": "float64"}));
    }
    let qshape = [r.n_save as u64, r.levels.len() as u64, r.dim as u64];
    dir.write_npy("mc_quantiles.npy", &qshape, &r.quantiles)
        .map_err(write_error)?;
    entries.push(json!({
        "file": "mc_quantiles.npy",
        "shape": qshape,
        "dtype": "float64",
        "levels": r.levels,
    }));
    // int64, not ensemble_count's uint32: a run without states may stream far more than
    // 2^32 trajectories through its chunks.
    let count: Vec<i64> = r.count.iter().map(|&c| c as i64).collect();
    dir.write_npy("mc_count.npy", &shape, &count)
        .map_err(write_error)?;
    entries.push(json!({"file": "mc_count.npy", "shape": shape, "dtype": "int64"}));
    Ok((entries, r.nonfinite.iter().sum()))
}

/// Writes `name`, an [n, cols] f64 table produced `ROWS_PER_BLOCK` rows at a time, now:
/// under a temporary name, renamed into place when whole.
fn write_table_now(
    dir: &OutputDir,
    name: &str,
    n: usize,
    cols: usize,
    rows: impl Fn(Range<usize>) -> Vec<f64>,
) -> Result<(), RunDirError> {
    let tmp = dir.path().join(format!(".{name}.writing"));
    let fill = || -> std::io::Result<()> {
        let mut s = NpyStream::create(&tmp, Dtype::F64, &[n as u64, cols as u64])?;
        for start in (0..n).step_by(ROWS_PER_BLOCK) {
            let block = rows(start..(start + ROWS_PER_BLOCK).min(n));
            s.write_at((start * cols) as u64, bytemuck::cast_slice(&block))?;
        }
        s.finish()?;
        std::fs::rename(&tmp, dir.path().join(name))
    };
    fill().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        RunDirError::Input(format!(
            "cannot write '{}': {e}",
            dir.path().join(name).display()
        ))
    })
}
