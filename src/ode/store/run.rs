//! One shard of a run (the whole run when unsharded) into a Zarr store: the store made
//! ready (or found holding this run), the shard continued from its progress file, its
//! trajectories integrated and streamed into their chunks, and the store finalized when
//! this was the last shard to finish.

use super::finalize::{finalize, intact, status_counts};
use super::layout::{Arrays, Layout};
use super::montecarlo;
use super::progress::{ShardProgress, ShardState};
use super::resume;
use super::root::{open_or_create, root_json, write_coordinates, write_inputs};
use super::shard::Shard;
use super::sink::StoreSink;
use crate::gpu::GpuContext;
use crate::ode::run_dir::{Output, Prepared, RunDirError, summary_json};
use crate::ode::{FanOut, MonteCarlo, RunOptions, RunStats, Sink, Status, Tally, run_on_devices};
use serde_json::{Value, json};
use std::path::Path;

/// How a store is written.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    pub shard: Shard,
    /// Trajectories per chunk (default: about 4 MiB of states per chunk).
    pub chunk_trajectories: Option<usize>,
    /// zstd level (default 3), or `None` for uncompressed chunks.
    pub zstd: Option<i32>,
    /// Replace a store holding another run (unsharded runs only).
    pub overwrite: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            shard: Shard::WHOLE,
            chunk_trajectories: None,
            zstd: Some(3),
            overwrite: false,
        }
    }
}

/// How this process's shard ended.
pub struct StoreRun {
    /// The shard's summary (what its progress file holds once complete).
    pub summary: Value,
    pub tally: Tally,
    pub stats: RunStats,
    pub shard: ShardState,
    /// The shard had finished before this process started: nothing was run.
    pub already_complete: bool,
    /// This process finalized the store (every shard is complete): the root's record.
    pub finalized: Option<Value>,
}

/// What a store holds: states and the Monte Carlo statistics across trajectories (either
/// or both), statuses, step counts, parameters and initial states. Other outputs are
/// refused before any work rather than silently left out.
fn check(prepared: &Prepared, options: &StoreOptions) -> Result<(), RunDirError> {
    let refuse = |what: &str| {
        Err(RunDirError::Input(format!(
            "a Zarr store (-o *.zarr) does not hold {what} yet; write a run directory (-o DIR) \
             for them"
        )))
    };
    if let Some(o) = prepared
        .outputs
        .iter()
        .find(|o| !matches!(o, Output::States | Output::Montecarlo))
    {
        let name = serde_json::to_value(o).ok();
        let name = name
            .as_ref()
            .and_then(Value::as_str)
            .unwrap_or("that output");
        return Err(RunDirError::Input(format!(
            "a Zarr store (-o *.zarr) holds the outputs states and montecarlo, not {name}; \
             montecarlo gives the statistics across trajectories (merged exactly across \
             shards), or write a run directory (-o DIR) for {name}"
        )));
    }
    if prepared.sensitivities.is_some() {
        return refuse("sensitivities");
    }
    if prepared.done.is_some() {
        return Err(RunDirError::Input(
            "a Zarr store is continued by running the same command again, not with --resume".into(),
        ));
    }
    if options.overwrite && options.shard.count > 1 {
        return Err(RunDirError::Input(
            "--overwrite would let one shard remove the others' work; remove the store by hand \
             before a sharded run"
                .into(),
        ));
    }
    Ok(())
}

/// Makes the store at `path` ready for `prepared` cut into `options.shard.count` shards
/// (or finds it so): its root, every array's metadata and the coordinates, nothing
/// computed and no device needed. What a front-end that hands the shards out elsewhere
/// (Dask) calls first; `run_store` does it too. Returns how the arrays are chunked.
pub fn create_store(
    prepared: &Prepared,
    path: &Path,
    options: &StoreOptions,
) -> Result<Layout, RunDirError> {
    open(prepared, path, options).map(|(layout, _)| layout)
}

/// The store's layout for a checked run, refusing more shards than chunks along
/// trajectories (a shard with nothing to do would still have to be launched).
fn layout_of(prepared: &Prepared, options: &StoreOptions) -> Result<Layout, RunDirError> {
    check(prepared, options)?;
    let layout = Layout::new(
        &prepared.problem,
        prepared.times.len(),
        options.chunk_trajectories,
        options.zstd,
    );
    layout.check().map_err(RunDirError::Input)?;
    let blocks = layout.blocks().max(1);
    if options.shard.count > blocks {
        return Err(RunDirError::Input(format!(
            "--shard {}: the store has {blocks} chunk(s) of {} trajectories, and a shard is \
             whole chunks: cut the run into at most {blocks} shards, or give a smaller \
             --zarr-chunk (at most {} for {} shards)",
            options.shard,
            layout.traj_chunk,
            layout.n.div_ceil(options.shard.count).max(1),
            options.shard.count
        )));
    }
    Ok(layout)
}

/// Whether this shard of this run is complete in the store already (nothing to write).
fn complete_already(
    prepared: &Prepared,
    path: &Path,
    options: &StoreOptions,
    layout: &Layout,
) -> Option<ShardState> {
    let ours = root_json(prepared, layout, options.shard.count);
    let found = super::root::read_root(path).ok()??;
    let record = super::root::run_record(path, &found).ok()?;
    let theirs = &ours["attributes"]["phaseflow"];
    let same = super::root::SAME_RUN.iter().all(|k| record[k] == theirs[k]);
    let range = options.shard.trajectories(layout.n, layout.traj_chunk);
    // A complete shard whose chunks or Monte Carlo accumulators were lost since is run
    // again (it finds what the store still holds, replays or recomputes the rest).
    let montecarlo = prepared.outputs.contains(&Output::Montecarlo);
    ShardState::read(path, options.shard).ok()?.filter(|s| {
        same && s.is_complete() && s.trajectories == range && intact(path, s, montecarlo).is_ok()
    })
}

fn open(
    prepared: &Prepared,
    path: &Path,
    options: &StoreOptions,
) -> Result<(Layout, Arrays), RunDirError> {
    let layout = layout_of(prepared, options)?;
    let problem = &prepared.problem;
    let keeps_states = prepared.outputs.contains(&Output::States);
    let arrays = Arrays::new(path, &layout, problem, keeps_states).map_err(RunDirError::Input)?;
    let root = root_json(prepared, &layout, options.shard.count);
    open_or_create(path, &root, &arrays, options.overwrite)?;
    write_coordinates(&arrays, problem, &prepared.times)
        .map_err(|e| RunDirError::Runtime(format!("writing '{}': {e}", path.display())))?;
    Ok((layout, arrays))
}

/// Runs `options.shard` of `prepared` into the store at `path` on `devices` (`run`'s
/// `start`, `end` and chunk cap are set here), feeding `extra` (a progress display) too.
pub fn run_store(
    prepared: &Prepared,
    path: &Path,
    options: &StoreOptions,
    devices: &[GpuContext],
    mut run: RunOptions,
    extra: &mut dyn Sink,
) -> Result<StoreRun, RunDirError> {
    // A complete shard run again (a requeued task) reads and writes nothing but the
    // root, and that only if the store is not finalized yet.
    let layout = layout_of(prepared, options)?;
    let done_before = match options.overwrite {
        true => None,
        false => complete_already(prepared, path, options, &layout),
    };
    if let Some(state) = done_before {
        return Ok(StoreRun {
            summary: state.summary.clone().unwrap_or(Value::Null),
            tally: Tally::default(),
            stats: RunStats::default(),
            shard: state.clone(),
            already_complete: true,
            finalized: finalize_if_last(path)?,
        });
    }
    let (layout, arrays) = open(prepared, path, options)?;
    let problem = &prepared.problem;
    let input = RunDirError::Input;
    let shard = options.shard;
    let range = shard.trajectories(layout.n, layout.traj_chunk);
    let found = ShardState::read(path, shard)
        .map_err(input)?
        .filter(|s| s.fingerprint == prepared.fingerprint() && s.trajectories == range);
    let mut start = found.map_or(range.start, |s| s.done.min(range.end).max(range.start));
    let runtime = |e: String| RunDirError::Runtime(format!("writing '{}': {e}", path.display()));
    let reading =
        |e: String| RunDirError::Runtime(format!("reading '{}' to continue: {e}", path.display()));
    let lost = || {
        log::warn!(
            "shard {shard}: the store lacks chunks its progress file says were written; \
             starting the shard over"
        )
    };
    if start > range.start
        && !resume::holds(&arrays, &layout, range.start..start).map_err(reading)?
    {
        lost();
        start = range.start;
    }
    // The shard's Monte Carlo accumulators, fed again what an earlier process of this shard
    // left in the store, or, with no states kept to feed them from, the shard started over.
    let mut reducer = prepared
        .outputs
        .contains(&Output::Montecarlo)
        .then(|| MonteCarlo::new(layout.n_save, layout.dim, prepared.quantile_levels()));
    if let Some(mc) = reducer.as_mut() {
        if arrays.states.is_none() {
            start = range.start;
        } else if start > range.start
            && !montecarlo::replay(&arrays, &layout, mc, range.start..start).map_err(reading)?
        {
            lost();
            *mc = MonteCarlo::new(layout.n_save, layout.dim, prepared.quantile_levels());
            start = range.start;
        }
    }
    write_inputs(&arrays, &layout, problem, start..range.end).map_err(runtime)?;
    let mut progress = ShardProgress::new(
        path,
        ShardState {
            shard,
            trajectories: range.clone(),
            done: start,
            state: "running".into(),
            fingerprint: prepared.fingerprint().to_string(),
            summary: None,
        },
    )
    .map_err(|e| runtime(e.to_string()))?;

    run.start = start;
    run.end = Some(range.end);
    run.caps.max_chunk = Some(aligned_chunk(devices, prepared, &run, layout.traj_chunk)?);
    let mut tally = Tally::default();
    let stats = {
        let mut sink = StoreSink::new(layout, &arrays, &mut progress, path);
        let mut sinks = FanOut(vec![&mut tally, extra]);
        if let Some(mc) = reducer.as_mut() {
            sinks.0.push(mc);
        }
        // Last: a chunk is recorded as done only once every other sink has it.
        sinks.0.push(&mut sink);
        if start < range.end {
            run_on_devices(devices, problem, &run, &mut sinks)
        } else {
            Ok(RunStats {
                completed: start,
                ..RunStats::default()
            })
        }
    };
    // A failed run (a full disk, a lost device) is recorded as interrupted, not left
    // "running" for `store status` to report as alive.
    let stats = match stats {
        Ok(stats) => stats,
        Err(e) => {
            let _ = progress.end(false, Value::Null);
            return Err(e.into());
        }
    };
    let complete = stats.completed >= range.end
        && tally.status[Status::Running as usize] == 0
        && progress.state.done >= range.end;
    let mut summary = summary_json(&devices[0], problem, &tally, &stats, prepared.times.len());
    let counts = status_counts(path, range.clone()).map_err(runtime)?;
    summary["status"] = crate::ode::solution::status_counts_json(Status::nonzero(counts));
    summary["shard"] =
        json!({"index": shard.index, "of": shard.count, "trajectories": [range.start, range.end]});
    summary["state"] = json!(if complete { "complete" } else { "interrupted" });
    summary["store"] = json!(path.display().to_string());
    if let (Some(mc), true) = (reducer.as_ref(), complete) {
        summary["montecarlo"] =
            montecarlo::save(path, shard, mc).map_err(|e| runtime(e.to_string()))?;
    }
    progress
        .end(complete, summary.clone())
        .map_err(|e| runtime(e.to_string()))?;
    let finalized = if complete {
        finalize_if_last(path)?
    } else {
        None
    };
    Ok(StoreRun {
        summary,
        tally,
        stats,
        shard: progress.state,
        already_complete: false,
        finalized,
    })
}

/// Finalizes the store when every shard is complete (this one finished last), else `None`.
/// A store already finalized is left alone. Another shard's unreadable progress file
/// does not fail this one, whose work is done: it is said, and `store status` names it.
fn finalize_if_last(path: &Path) -> Result<Option<Value>, RunDirError> {
    let status = match super::finalize::StoreStatus::read(path) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("this shard is complete, but the store cannot be finalized: {e}");
            return Ok(None);
        }
    };
    if !status.missing().is_empty() || status.finalized {
        return Ok(None);
    }
    finalize(path).map(Some).map_err(RunDirError::Runtime)
}

/// The scheduler's chunk cap, a multiple of the store's chunk along trajectories where the
/// devices allow one, so that a scheduler chunk fills whole store chunks and nothing waits
/// in host memory for the next.
fn aligned_chunk(
    devices: &[GpuContext],
    prepared: &Prepared,
    run: &RunOptions,
    block: usize,
) -> Result<usize, RunDirError> {
    let mut chunk = usize::MAX;
    for ctx in devices {
        chunk = chunk.min(prepared.problem.plan(ctx, run)?.chunk);
    }
    Ok(if chunk >= block {
        chunk / block * block
    } else {
        chunk
    })
}
