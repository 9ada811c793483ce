//! A DeepONet training run around the trainer: the data sets (a held-out validation share,
//! an optional test set), the loop that evaluates every so many steps, keeps the best
//! network on the selection set and stops early, and the files a run leaves (checkpoint,
//! trainer state, history, summary). `phaseflow train deeponet` and the Python package
//! drive it; what they print, plot or ask of the user stays theirs.

use super::model::{AlignedData, DeepONetArch, DeepONetData, DeepONetParams};
use super::trainer::{DeepONetNet, DeepONetTrainState, DeepONetTrainer};
use crate::gpu::{GpuContext, GpuError};
use crate::io::{OutputDir, OutputError};
use crate::nn::{
    load_deeponet, load_deeponet_state, save_deeponet_bytes, save_deeponet_state_bytes,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::ops::ControlFlow;
use std::path::Path;

/// The data sets of a run: what it trains on, what it chooses its best step on (the
/// held-out validation share; the training set when there is none) and what it reports.
pub struct Sets {
    pub train: DeepONetData,
    pub validation: Option<DeepONetData>,
    pub test: Option<DeepONetData>,
}

impl Sets {
    /// `all` split into training and a held-out `validation` share (none when 0), beside
    /// an optional test set. A run needs one of the two to report on.
    pub fn new(
        all: DeepONetData,
        validation: f64,
        test: Option<DeepONetData>,
    ) -> Result<Sets, String> {
        if test.is_none() && validation == 0.0 {
            return Err(
                "the config needs [data] test = \"file.npz\" or [data] validation = 0.1 (a share \
                 of the training functions held out)"
                    .into(),
            );
        }
        let (train, validation) = if validation > 0.0 {
            let (t, v) = split(all, validation)?;
            (t, Some(v))
        } else {
            (all, None)
        };
        Ok(Sets {
            train,
            validation,
            test,
        })
    }

    pub fn selection(&self) -> Selection {
        match self.validation {
            Some(_) => Selection::Validation,
            None => Selection::Training,
        }
    }

    /// The set the best step is chosen on.
    pub fn selecting(&self) -> &DeepONetData {
        self.validation.as_ref().unwrap_or(&self.train)
    }

    /// The set the final figures and the picture are of: the test file, else the
    /// validation share.
    pub fn reported(&self) -> (&'static str, &DeepONetData) {
        match (&self.test, &self.validation) {
            (Some(t), _) => ("test", t),
            (None, Some(v)) => ("validation", v),
            (None, None) => ("training", &self.train),
        }
    }

    /// The validation and test sets fit the network the training set gives.
    pub fn check(&self, arch: &DeepONetArch) -> Result<(), String> {
        for (name, set) in [("test", &self.test), ("validation", &self.validation)] {
            if let Some(set) = set {
                set.as_ref()
                    .check(arch)
                    .map_err(|e| format!("the {name} data does not fit the training data: {e}"))?;
            }
        }
        Ok(())
    }
}

/// The first functions (samples, when unaligned) of `d` as training data and the rest as
/// validation data.
pub fn split(d: DeepONetData, share: f64) -> Result<(DeepONetData, DeepONetData), String> {
    if !(share > 0.0 && share < 1.0) {
        return Err(format!(
            "[data] validation must be a share of the functions between 0 and 1, got {share}"
        ));
    }
    let (n, what) = match &d {
        DeepONetData::Aligned(a) => (a.functions(), "function"),
        DeepONetData::Unaligned(u) => (u.samples(), "sample"),
    };
    if n < 2 {
        return Err(format!(
            "{n} {what} is too few to hold some out for validation"
        ));
    }
    let keep = n - ((n as f64 * share).round() as usize).clamp(1, n - 1);
    Ok(match d {
        DeepONetData::Aligned(d) => {
            let per = d.points() * d.outputs;
            let part = |lo: usize, hi: usize| {
                DeepONetData::Aligned(AlignedData {
                    u: d.u.row_range(lo, hi),
                    y: d.y.clone(),
                    g: d.g[lo * per..hi * per].to_vec(),
                    outputs: d.outputs,
                })
            };
            (part(0, keep), part(keep, n))
        }
        DeepONetData::Unaligned(d) => (
            DeepONetData::Unaligned(d.rows(0, keep)),
            DeepONetData::Unaligned(d.rows(keep, n)),
        ),
    })
}

/// "150 functions × 100 points" or "10000 unaligned samples".
pub fn size(d: &DeepONetData) -> String {
    match d {
        DeepONetData::Aligned(a) => format!("{} functions × {} points", a.functions(), a.points()),
        DeepONetData::Unaligned(u) => format!("{} unaligned samples", u.samples()),
    }
}

pub fn size_json(d: &DeepONetData) -> serde_json::Value {
    match d {
        DeepONetData::Aligned(a) => json!({"functions": a.functions(), "points": a.points()}),
        DeepONetData::Unaligned(u) => json!({"samples": u.samples()}),
    }
}

/// The set the best step is chosen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Selection {
    /// The held-out share of the training functions.
    Validation,
    /// The whole training set (nothing held out): the best fit of it.
    Training,
}

impl Selection {
    pub fn name(self) -> &'static str {
        match self {
            Selection::Validation => "validation",
            Selection::Training => "training",
        }
    }
}

/// One evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub step: u32,
    /// The loss of the last step's batch (in the network's units when normalised).
    pub batch_mse: f64,
    /// On the selection set (`RunRecord::selection`).
    pub mse: f64,
    pub mean_rel_l2: f64,
    /// On the test file, when there is one: reported, never chosen on.
    pub test: Option<(f64, f64)>,
    /// `mean_rel_l2` of each output on its own, on the selection set and on the test file
    /// (empty for one output, and in records of runs saved before they were kept).
    #[serde(default)]
    pub per_output: Vec<f64>,
    #[serde(default)]
    pub test_per_output: Vec<f64>,
}

/// The run's own record beside the trainer's state in state.safetensors (`run`).
#[derive(Serialize, Deserialize)]
pub struct RunRecord {
    pub selection: Selection,
    pub history: Vec<Record>,
    pub best_step: u32,
    pub best_error: f64,
    pub since_best: u32,
    /// What decides the run's steps besides its architecture (`TrainSpec::fingerprint`):
    /// a resumed run must give the same. Absent in records written before it existed.
    #[serde(default)]
    pub settings: Option<String>,
}

/// Whether `out` names the directory `resume` does (however spelled: relative, with a
/// trailing slash, through a link): a resumed run writes into its own directory only.
pub fn same_directory(resume: &Path, out: &Path) -> bool {
    let real = |p: &Path| std::fs::canonicalize(p).ok();
    real(out).is_some() && real(out) == real(resume)
}

/// Where a run written by `write_checkpoints` left off, read back to go on with it.
pub struct Resumed {
    pub state: DeepONetTrainState,
    pub record: RunRecord,
    /// The best network so far (model.safetensors).
    pub best: DeepONetParams,
}

/// Reads the run in `dir` (state.safetensors, model.safetensors) to go on with it up to
/// `iterations` steps in all, with `arch`, choosing on `selection`, with the settings and
/// data of fingerprint `settings`. Refused, one sentence each, when it was trained with
/// another architecture or normalisation, other settings or data, or chose on another
/// set, or has already taken `iterations` steps (`setting` names how to raise them).
pub fn read_resumed(
    dir: &Path,
    arch: &DeepONetArch,
    iterations: u32,
    selection: Selection,
    settings: &str,
    setting: &str,
) -> Result<Resumed, String> {
    let path = dir.join("state.safetensors");
    let (saved_arch, state, meta) = load_deeponet_state(&path).map_err(|e| e.to_string())?;
    if &saved_arch != arch {
        return Err(format!(
            "'{}' was trained with another architecture or normalisation than this config \
             and data give; resume with the config and data of that run",
            path.display()
        ));
    }
    let record: RunRecord = meta
        .get("run")
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(|| {
            format!(
                "'{}' has no readable run record (metadata 'run')",
                path.display()
            )
        })?;
    if record.selection != selection {
        return Err(format!(
            "the run in '{}' chose its best step on the {} set and this config on the {} set \
             ([data] validation); resume with the config of that run",
            dir.display(),
            record.selection.name(),
            selection.name()
        ));
    }
    if record.settings.as_deref().is_some_and(|s| s != settings) {
        return Err(format!(
            "the run in '{}' was trained with other settings or data than this config and \
             data give (the validation share, [model], [train] but for iterations and \
             patience, or the training data); resume with the config and data of that run",
            dir.display()
        ));
    }
    if state.step >= iterations {
        return Err(format!(
            "the run in '{}' has already taken {} steps and [train] iterations = {iterations}; \
             raise {setting} to go on",
            dir.display(),
            state.step
        ));
    }
    let (_, best) = load_deeponet(&dir.join("model.safetensors")).map_err(|e| e.to_string())?;
    Ok(Resumed {
        state,
        record,
        best,
    })
}

/// How long to train and how to choose.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Steps in all (a resumed run counts its earlier ones).
    pub iterations: u32,
    pub evaluate_every: u32,
    /// Evaluations without a better selection error before stopping (0: never).
    pub patience: u32,
}

/// Where the loop stands: its history, the best network so far and the steps taken.
pub struct Progress {
    pub history: Vec<Record>,
    /// (selection error, step, parameters) of the best evaluation.
    pub best: Option<(f64, u32, DeepONetParams)>,
    pub since_best: u32,
    pub done: u32,
}

impl Progress {
    pub fn fresh() -> Progress {
        Progress {
            history: Vec::new(),
            best: None,
            since_best: 0,
            done: 0,
        }
    }

    /// Where a run written by `write_checkpoints` left off.
    pub fn resumed(record: RunRecord, best: DeepONetParams, done: u32) -> Progress {
        Progress {
            best: Some((record.best_error, record.best_step, best)),
            history: record.history,
            since_best: record.since_best,
            done,
        }
    }

    /// Refuses a best network that is not one: its selection error NaN or infinite (every
    /// evaluation diverged) or a weight not finite. Every loader refuses NaN weights, so
    /// writing it would hand the user a checkpoint nothing accepts. `lr` goes in the advice.
    pub fn check_best(&self, lr: f64) -> Result<(), String> {
        let Some((error, _, params)) = &self.best else {
            return Ok(());
        };
        if usable(*error, params) {
            return Ok(());
        }
        Err(format!(
            "training diverged: at every evaluation up to step {} the error or a weight was \
             not finite, so nothing was written; try a smaller lr (it was {lr:e}) or scaled \
             data (normalize = true)",
            self.done
        ))
    }
}

/// Whether a network with selection error `error` can be written and loaded again.
fn usable(error: f64, params: &DeepONetParams) -> bool {
    error.is_finite() && params.flat().iter().all(|v| v.is_finite())
}

/// Whether an evaluation with selection error `error` and a network that is `usable` (or
/// not) replaces the best so far (`current`: its error and whether it is usable). A usable
/// network is the best while there is one; a weight can overflow in a unit that ReLU holds
/// at zero while the error stays finite. Replacing needs no more of the new network than
/// of any other (`replaces(current, error, true)` is false whenever it is false for
/// `usable = false`), so its weights are read back only when that is true.
fn replaces(current: Option<(f64, bool)>, error: f64, usable: bool) -> bool {
    match current {
        None => true,
        Some((best, true)) => usable && error < best,
        Some((best, false)) => usable || error < best || best.is_nan() || error.is_nan(),
    }
}

/// The clock of a run's rate (summary.json's `seconds_per_1000_iterations`, the CLI's
/// "s per 1,000"): from the first evaluation on, because the first block also paid for
/// compiling every kernel (llvmpipe compiles a pipeline at its first dispatch, which took
/// a 25-layer run 60 s); a run of one block is timed whole.
pub struct StepClock {
    start: std::time::Instant,
    first_step: u32,
    warm: Option<(std::time::Instant, u32)>,
}

impl StepClock {
    /// Started before the first step of this process (`first_step` steps were taken before).
    pub fn start(first_step: u32) -> StepClock {
        StepClock {
            start: std::time::Instant::now(),
            first_step,
            warm: None,
        }
    }

    /// Called after each evaluation at `step`.
    pub fn evaluated(&mut self, step: u32) {
        if self.warm.is_none() {
            self.warm = Some((std::time::Instant::now(), step));
        }
    }

    /// Seconds since the start.
    pub fn total(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Whether the rate leaves the first block out (there was a later one).
    pub fn warm(&self, done: u32) -> bool {
        self.warm.is_some_and(|(_, step)| done > step)
    }

    /// (seconds, steps) of the rate, with `done` steps taken in all.
    pub fn timed(&self, done: u32) -> (f64, u32) {
        match self.warm {
            Some((at, step)) if done > step => (at.elapsed().as_secs_f64(), done - step),
            _ => (self.total(), done.saturating_sub(self.first_step)),
        }
    }
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Finished,
    StoppedEarly,
    /// `after_evaluation` asked to stop (Ctrl-C, a cancelled job).
    Interrupted,
}

/// Trains from `progress` up to `plan.iterations`, evaluating on `sets` every
/// `plan.evaluate_every` steps; `after_evaluation` sees each record (to print it) and may
/// stop the run; `clock` learns when the first evaluation ended. The steps between
/// evaluations run on the device without a round trip.
pub fn run(
    ctx: &GpuContext,
    trainer: &mut DeepONetTrainer,
    sets: &Sets,
    plan: Plan,
    progress: &mut Progress,
    clock: &mut StepClock,
    mut after_evaluation: impl FnMut(&Record) -> ControlFlow<()>,
) -> Result<Ending, GpuError> {
    while progress.done < plan.iterations {
        let n = plan.evaluate_every.min(plan.iterations - progress.done);
        trainer.run(ctx, n as usize);
        progress.done += n;
        let batch_mse = trainer.loss(ctx)?;
        let chosen_on = trainer.net.evaluate(ctx, sets.selecting())?;
        let test = match &sets.test {
            Some(test) => Some(trainer.net.evaluate(ctx, test)?),
            None => None,
        };
        let record = Record {
            step: progress.done,
            batch_mse,
            mse: chosen_on.mse,
            mean_rel_l2: chosen_on.mean_relative_l2,
            test: test.as_ref().map(|e| (e.mse, e.mean_relative_l2)),
            per_output: chosen_on.per_output.clone(),
            test_per_output: test.map(|e| e.per_output).unwrap_or_default(),
        };
        clock.evaluated(progress.done);
        let flow = after_evaluation(&record);
        progress.history.push(record);
        let error = chosen_on.mean_relative_l2;
        let current = progress.best.as_ref().map(|b| (b.0, usable(b.0, &b.2)));
        let mut taken = false;
        if replaces(current, error, true) {
            let params = trainer.params(ctx)?;
            if replaces(current, error, usable(error, &params)) {
                progress.best = Some((error, progress.done, params));
                taken = true;
            }
        }
        if taken {
            progress.since_best = 0;
        } else {
            progress.since_best += 1;
        }
        if plan.patience > 0 && progress.since_best >= plan.patience {
            return Ok(Ending::StoppedEarly);
        }
        if flow.is_break() {
            return Ok(Ending::Interrupted);
        }
    }
    Ok(Ending::Finished)
}

/// What summary.json says of a finished run beside its numbers: how it ran.
pub struct RunFacts {
    /// `Plan::iterations`.
    pub iterations_asked: u32,
    pub ending: Ending,
    /// Seconds this process trained (`StepClock::total`, compilation included).
    pub seconds: f64,
    /// Seconds and steps of the run's rate (`StepClock::timed`: after the first
    /// evaluation, whose block paid for compilation; a resumed run's earlier steps took
    /// other seconds).
    pub timed: (f64, u32),
    /// `[data] validation`, reported when the best step was chosen on that share.
    pub validation_share: f64,
}

/// summary.json of a run whose `progress` has its best network: the architecture, the
/// adapter, the data sets' sizes, how the run went, and the best network's errors on the
/// set it was chosen on (from the history), on the test set and per output on the reported
/// set (both measured again on that network). Callers add where their data came from.
pub fn summary(
    ctx: &GpuContext,
    arch: &DeepONetArch,
    sets: &Sets,
    progress: &Progress,
    facts: &RunFacts,
) -> Result<serde_json::Value, GpuError> {
    let selection = sets.selection();
    let sel = selection.name();
    let (best_error, best_step, params) = progress
        .best
        .as_ref()
        .ok_or_else(|| GpuError::Unsupported("a run without an evaluation".into()))?;
    let net = DeepONetNet::new(ctx, arch, params)?;
    let (reported_name, reported) = sets.reported();
    let g = net.predict_data(ctx, reported)?;
    let per_output = reported.as_ref().mean_relative_l2_per_output(&g);
    let at_best = progress.history.iter().find(|h| h.step == *best_step);
    let mut summary = json!({
        "architecture": arch,
        "adapter": ctx.summary,
        "data": {
            "train_size": size_json(&sets.train),
            "validation": (selection == Selection::Validation).then_some(facts.validation_share),
            "validation_size": sets.validation.as_ref().map(size_json),
            "test_size": sets.test.as_ref().map(size_json),
        },
        "selected_on": sel,
        "iterations": progress.done,
        "iterations_asked": facts.iterations_asked,
        "stopped_early": facts.ending == Ending::StoppedEarly,
        "seconds": facts.seconds,
        "seconds_per_1000_iterations": 1e3 * facts.timed.0 / facts.timed.1.max(1) as f64,
        "best_step": best_step,
        "final_batch_mse": progress.history.last().map(|h| h.batch_mse),
    });
    summary[format!("{sel}_mean_relative_l2")] = json!(best_error);
    summary[format!("{sel}_mse")] = json!(at_best.map(|h| h.mse));
    if let Some(test) = &sets.test {
        let metrics = net.evaluate(ctx, test)?;
        summary["test_mean_relative_l2"] = json!(metrics.mean_relative_l2);
        summary["test_mse"] = json!(metrics.mse);
    }
    summary[format!("{reported_name}_mean_relative_l2_per_output")] = json!(per_output);
    Ok(summary)
}

/// A run's files that must all be there or none: model.safetensors (the best network,
/// `summary` in its metadata), state.safetensors (the trainer's state and `record`, for
/// resuming), history.csv and summary.json.
pub fn write_checkpoints(
    dir: &mut OutputDir,
    ctx: &GpuContext,
    arch: &DeepONetArch,
    params: &DeepONetParams,
    trainer: &DeepONetTrainer,
    record: &RunRecord,
    summary: &serde_json::Value,
) -> Result<(), CheckpointWriteError> {
    let checkpoint = save_deeponet_bytes(arch, params, &[("train", summary.to_string())])
        .map_err(|e| CheckpointWriteError::Encode(e.to_string()))?;
    dir.write_bytes("model.safetensors", &checkpoint)?;
    let state = save_deeponet_state_bytes(
        arch,
        &trainer.state(ctx)?,
        &[("run", serde_json::to_string(record).expect("JSON"))],
    )
    .map_err(|e| CheckpointWriteError::Encode(e.to_string()))?;
    dir.write_bytes("state.safetensors", &state)?;
    dir.write_bytes("history.csv", history_csv(record).as_bytes())?;
    dir.write_json("summary.json", summary)?;
    Ok(())
}

/// history.csv: one row per evaluation.
pub fn history_csv(record: &RunRecord) -> String {
    let sel = record.selection.name();
    let mut csv = format!("step,batch_mse,{sel}_mse,{sel}_mean_rel_l2,test_mse,test_mean_rel_l2");
    // Several outputs: each one's error too, on both sets (`..._rel_l2_output{k}`).
    let outputs = record
        .history
        .iter()
        .map(|h| h.per_output.len())
        .max()
        .unwrap_or(0);
    for set in [sel, "test"] {
        for k in 0..outputs {
            csv += &format!(",{set}_mean_rel_l2_output{k}");
        }
    }
    csv.push('\n');
    for h in &record.history {
        let (test_mse, test_rel) = h.test.map_or((String::new(), String::new()), |(a, b)| {
            (format!("{a:e}"), format!("{b:e}"))
        });
        csv += &format!(
            "{},{:e},{:e},{:e},{test_mse},{test_rel}",
            h.step, h.batch_mse, h.mse, h.mean_rel_l2
        );
        for values in [&h.per_output, &h.test_per_output] {
            for k in 0..outputs {
                csv.push(',');
                if let Some(v) = values.get(k) {
                    csv += &format!("{v:e}");
                }
            }
        }
        csv.push('\n');
    }
    csv
}

/// Why a run's files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointWriteError {
    #[error("{0}")]
    Encode(String),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

#[cfg(test)]
mod tests {
    use super::replaces;

    #[test]
    fn the_best_is_a_usable_network_while_there_is_one() {
        // The first evaluation is the best whatever it is.
        assert!(replaces(None, f64::NAN, false));
        // Against a usable best: only a usable network with a lower error.
        assert!(replaces(Some((0.5, true)), 0.4, true));
        assert!(!replaces(Some((0.5, true)), 0.4, false));
        assert!(!replaces(Some((0.5, true)), 0.6, true));
        assert!(!replaces(Some((0.5, true)), f64::NAN, false));
        // Against an unusable best: any usable network, or a lower (or first finite) error.
        assert!(replaces(Some((0.5, false)), 0.9, true));
        assert!(replaces(Some((f64::NAN, false)), 0.9, false));
        assert!(replaces(Some((0.5, false)), 0.4, false));
        assert!(!replaces(Some((0.5, false)), 0.6, false));
        // Weights are read back only when `replaces(.., true)` holds: it holds wherever
        // `replaces(.., false)` does.
        for current in [
            None,
            Some((0.5, true)),
            Some((0.5, false)),
            Some((f64::NAN, false)),
        ] {
            for error in [0.4, 0.5, 0.6, f64::NAN, f64::INFINITY] {
                assert!(!replaces(current, error, false) || replaces(current, error, true));
            }
        }
    }
}
