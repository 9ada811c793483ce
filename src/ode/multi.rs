//! Running one problem on several devices at once. Chunks (all of one size, the smallest any
//! device plans) go round-robin to one worker thread per device; each worker runs its chunks
//! as a single-device run would and forwards the results through a bounded channel. The
//! caller's thread feeds the sinks in chunk order, reading each chunk from the worker that
//! ran it, so sinks see exactly the sequence a single-device run produces: the output is
//! the same bytes, and memory stays bounded (a worker that gets ahead waits on its channel).

use super::any::Problem;
use super::device::{Precision, SaveBatch};
use super::error::{SimError, SinkError};
use super::options::RunOptions;
use super::results::ChunkResults;
use super::sink::Sink;
use super::solution::{RunStats, Status, StepCounts};
use crate::gpu::GpuContext;
use crate::schedule::PlanCaps;
use std::ops::Range;
use std::sync::mpsc;
use std::time::Instant;

/// Results of a worker, owned so they can cross threads.
enum Message {
    Saves {
        slots: Range<usize>,
        chunk: Range<usize>,
        n: usize,
        dim: usize,
        precision: Precision,
        /// [slot][trajectory][dim] for the chunk's trajectories only.
        bytes: Vec<u8>,
    },
    Results {
        chunk: Range<usize>,
        results: ChunkResults,
    },
    Done {
        chunk: Range<usize>,
        status: Vec<Status>,
        steps: Option<Vec<StepCounts>>,
    },
}

/// A worker's sink: copies each result into a message for the merging thread.
struct Forward(mpsc::SyncSender<Message>);

impl Forward {
    fn send(&self, m: Message) -> Result<(), SinkError> {
        self.0.send(m).map_err(|_| SinkError::Io {
            path: "(results of another device)".into(),
            source: std::io::Error::other("the run stopped"),
        })
    }
}

impl Sink for Forward {
    fn saves(&mut self, batch: &SaveBatch) -> Result<(), SinkError> {
        let bytes = (0..batch.slots.len())
            .flat_map(|s| batch.slot(s).iter().copied())
            .collect();
        self.send(Message::Saves {
            slots: batch.slots.clone(),
            chunk: batch.chunk.clone(),
            n: batch.n,
            dim: batch.dim,
            precision: batch.precision,
            bytes,
        })
    }

    fn chunk_done(
        &mut self,
        chunk: Range<usize>,
        status: &[Status],
        steps: Option<&[StepCounts]>,
    ) -> Result<(), SinkError> {
        self.send(Message::Done {
            chunk,
            status: status.to_vec(),
            steps: steps.map(<[StepCounts]>::to_vec),
        })
    }

    fn results(&mut self, chunk: Range<usize>, results: &ChunkResults) -> Result<(), SinkError> {
        self.send(Message::Results {
            chunk,
            results: results.clone(),
        })
    }
}

/// Runs `problem` on every device in `devices`, handing results to `sink` in the order a
/// single-device run would. With one device this is `Problem::run_into`.
pub fn run_on_devices(
    devices: &[GpuContext],
    problem: &Problem,
    options: &RunOptions,
    sink: &mut dyn Sink,
) -> Result<RunStats, SimError> {
    let d = devices.len();
    if d <= 1 {
        let ctx = devices.first().ok_or(crate::gpu::GpuError::NoAdapter)?;
        return problem.run_into(ctx, options, sink);
    }
    let started = Instant::now();
    let mut chunk = usize::MAX;
    for ctx in devices {
        chunk = chunk.min(problem.plan(ctx, options)?.chunk);
    }
    let shared = RunOptions {
        caps: PlanCaps {
            max_chunk: Some(chunk),
            ..options.caps
        },
        ..options.clone()
    };
    let n = problem.ensemble().n;
    let (results, merged) = std::thread::scope(|scope| {
        let mut receivers = Vec::with_capacity(d);
        let mut workers = Vec::with_capacity(d);
        for (i, ctx) in devices.iter().enumerate() {
            let (tx, rx) = mpsc::sync_channel(2 * options.ring.max(1));
            receivers.push(rx);
            let opts = RunOptions {
                part: (i, d),
                ..shared.clone()
            };
            workers.push(scope.spawn(move || problem.run_into(ctx, &opts, &mut Forward(tx))));
        }
        let merged = merge(&receivers, sink, options.start, chunk, options.stop(n));
        // Unblock workers still sending (after an error or a stop), then collect them.
        drop(receivers);
        let results: Vec<Result<RunStats, SimError>> = workers
            .into_iter()
            .map(|w| w.join().expect("a device worker panicked"))
            .collect();
        (results, merged)
    });
    let completed = merged?;
    let mut stats = RunStats {
        completed,
        ..RunStats::default()
    };
    for r in results {
        let s = match r {
            // A stopped run: a worker still sending its next chunk when the merge ended
            // finds the channel closed; that chunk was never counted, so nothing is lost.
            Err(SimError::Sink(_)) if options.cancelled() && completed < options.stop(n) => {
                continue;
            }
            r => r?,
        };
        stats.setup = stats.setup.max(s.setup);
        stats.compile = stats.compile.max(s.compile);
        stats.gpu = match (stats.gpu, s.gpu) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        stats.host += s.host;
        stats.chunks += s.chunks;
        stats.dispatches += s.dispatches;
        stats.trajectory_steps += s.trajectory_steps;
    }
    stats.solve = started.elapsed().saturating_sub(stats.setup);
    Ok(stats)
}

/// Feeds the sink chunk by chunk from the worker that ran each, up to `stop`; returns how
/// far it got.
fn merge(
    receivers: &[mpsc::Receiver<Message>],
    sink: &mut dyn Sink,
    start: usize,
    chunk: usize,
    stop: usize,
) -> Result<usize, SimError> {
    let mut completed = start;
    let mut index = 0;
    while completed < stop {
        let rx = &receivers[index % receivers.len()];
        loop {
            match rx.recv() {
                Ok(Message::Saves {
                    slots,
                    chunk: range,
                    n,
                    dim,
                    precision,
                    bytes,
                }) => sink.saves(&SaveBatch {
                    slots,
                    stride: range.len(),
                    chunk: range,
                    n,
                    dim,
                    precision,
                    bytes: &bytes,
                })?,
                Ok(Message::Results {
                    chunk: range,
                    results,
                }) => sink.results(range, &results)?,
                Ok(Message::Done {
                    chunk: range,
                    status,
                    steps,
                }) => {
                    debug_assert_eq!(range.start, completed);
                    completed = range.end;
                    sink.chunk_done(range, &status, steps.as_deref())?;
                    break;
                }
                // The worker stopped (cancelled or failed): the prefix so far is all.
                Err(_) => return Ok(completed),
            }
        }
        index += 1;
        debug_assert!(completed == stop || completed == start + index * chunk);
    }
    Ok(completed)
}
