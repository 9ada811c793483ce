//! A trained DeepONet on the device, answering predictions. Requests go to one batcher
//! thread per model; whatever has arrived while the previous pass ran is merged: requests
//! at the same points share one pass with their functions stacked, so under load the device
//! sees a few large passes instead of many small ones, and a lone request still goes
//! straight through (no waiting window).

use super::error::{EngineError, panic_message};
use super::queue::{Inner, WORKER_STACK};
use crate::gpu::GpuError;
use crate::nn::deeponet::check_inputs;
use crate::nn::{DeepONetArch, DeepONetNet, DeepONetParams, Matrix};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::oneshot;

struct Request {
    u: Matrix,
    y: Matrix,
    reply: oneshot::Sender<Result<Vec<f64>, EngineError>>,
}

/// A loaded model: cheap to clone; the batcher stops when the last clone is dropped.
#[derive(Clone)]
pub struct Model(Arc<ModelInner>);

struct ModelInner {
    arch: DeepONetArch,
    parameters: usize,
    requests: Mutex<mpsc::Sender<Request>>,
}

impl Model {
    pub(super) fn load(
        engine: Arc<Inner>,
        arch: &DeepONetArch,
        params: &DeepONetParams,
    ) -> Result<Model, EngineError> {
        // Weights handed over in memory get the same check as a checkpoint file's: a NaN
        // weight would answer every prediction with a finite-looking wrong number or NaN.
        let named = params.named();
        crate::nn::checkpoint::check_weights(
            named
                .iter()
                .map(|(name, _, values)| (name.as_str(), *values)),
            "the model",
        )
        .map_err(|e| EngineError::BadInput(e.to_string()))?;
        let net = DeepONetNet::new(&engine.ctx, arch, params)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("phaseflow-predict".into())
            .stack_size(WORKER_STACK)
            .spawn(move || serve_predictions(&engine, &net, rx))
            .expect("spawning a prediction thread");
        Ok(Model(Arc::new(ModelInner {
            arch: arch.clone(),
            parameters: params.flat().len(),
            requests: Mutex::new(tx),
        })))
    }

    pub fn arch(&self) -> &DeepONetArch {
        &self.0.arch
    }

    pub fn parameters(&self) -> usize {
        self.0.parameters
    }

    fn send(&self, u: Matrix, y: Matrix) -> Result<PendingReply, EngineError> {
        check_inputs(&self.0.arch, &u, &y).map_err(EngineError::BadInput)?;
        check_prediction_values(&u, &y).map_err(EngineError::BadInput)?;
        if u.rows == 0 || y.rows == 0 {
            return Err(EngineError::BadInput(
                "a prediction needs at least one function and one point".into(),
            ));
        }
        let (reply, rx) = oneshot::channel();
        self.0
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Request { u, y, reply })
            .map_err(|_| EngineError::ShutDown)?;
        Ok(rx)
    }

    /// G for every function (rows of `u`) at every point (rows of `y`), as
    /// [functions, points, outputs], in the data's units.
    pub async fn predict(&self, u: Matrix, y: Matrix) -> Result<Vec<f64>, EngineError> {
        self.send(u, y)?.await.unwrap_or(Err(EngineError::ShutDown))
    }

    /// `predict`, blocking the calling thread.
    pub fn predict_blocking(&self, u: Matrix, y: Matrix) -> Result<Vec<f64>, EngineError> {
        self.send(u, y)?
            .blocking_recv()
            .unwrap_or(Err(EngineError::ShutDown))
    }
}

/// The largest magnitude a prediction input may have: the device computes in f32, where
/// anything larger is infinite (1e300 would become inf and give a finite wrong answer).
pub const MAX_INPUT: f64 = f32::MAX as f64;

/// Refuses a value the device cannot represent: NaN, ±inf, or beyond f32's range. `Err`
/// holds the problem with the value's row and column (0-based) for the caller to place.
pub fn check_input_value(x: f64) -> Result<(), String> {
    if x.is_nan() {
        Err("is NaN".into())
    } else if !x.is_finite() || x.abs() > MAX_INPUT {
        Err(format!(
            "is {x:e}, not a finite number within f32's range (|x| ≤ {MAX_INPUT:.1e})"
        ))
    } else {
        Ok(())
    }
}

/// Every input function's sensor value (`u`) and every point's coordinate (`y`) finite in
/// f32, or the first one that is not, by matrix, row and column (0-based).
pub fn check_prediction_values(u: &Matrix, y: &Matrix) -> Result<(), String> {
    for (name, what, m) in [("u", "function", u), ("y", "point", y)] {
        let cols = m.cols.max(1);
        for (k, &x) in m.data.iter().enumerate() {
            if let Err(why) = check_input_value(x) {
                let (row, col) = (k / cols, k % cols);
                return Err(format!(
                    "{name} row {row}, column {col} (0-based; {what} {row}) {why}"
                ));
            }
        }
    }
    Ok(())
}

type PendingReply = oneshot::Receiver<Result<Vec<f64>, EngineError>>;

fn serve_predictions(engine: &Inner, net: &DeepONetNet, rx: mpsc::Receiver<Request>) {
    let limit = engine.config.predict_batch.max(1);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < limit
            && let Ok(more) = rx.try_recv()
        {
            batch.push(more);
        }
        let started = Instant::now();
        let count = batch.len() as u64;
        let passes = run_batch(engine, net, batch);
        let c = &engine.counters;
        c.predictions.fetch_add(count, Ordering::Relaxed);
        c.prediction_batches.fetch_add(passes, Ordering::Relaxed);
        c.predict_busy_ns
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Answers every request of `batch`, one device pass per distinct set of points; returns
/// the number of passes.
fn run_batch(engine: &Inner, net: &DeepONetNet, mut batch: Vec<Request>) -> u64 {
    let mut passes = 0;
    while !batch.is_empty() {
        let y = batch[0].y.clone();
        let (group, rest): (Vec<Request>, Vec<Request>) = batch
            .into_iter()
            .partition(|r| r.y.cols == y.cols && r.y.data == y.data);
        batch = rest;
        passes += 1;
        let sensors = group[0].u.cols;
        let functions: usize = group.iter().map(|r| r.u.rows).sum();
        let mut u = Matrix::zeros(functions, sensors);
        let mut at = 0;
        for r in &group {
            u.data[at..at + r.u.data.len()].copy_from_slice(&r.u.data);
            at += r.u.data.len();
        }
        let per_function = y.rows * net.layout.arch.outputs;
        // A panic in a pass fails its requests, not the model's batcher.
        let result = catch_unwind(AssertUnwindSafe(|| {
            net.predict(&engine.ctx, &u, &y).map_err(|e| match e {
                // A request too large for the device stays the caller's to change.
                GpuError::Unsupported(m) => (m, true),
                other => (other.to_string(), false),
            })
        }))
        .unwrap_or_else(|panic| {
            Err((format!("internal error: {}", panic_message(&*panic)), false))
        });
        match result {
            Ok(g) => {
                let mut at = 0;
                for r in group {
                    let len = r.u.rows * per_function;
                    let _ = r.reply.send(Ok(g[at..at + len].to_vec()));
                    at += len;
                }
            }
            Err((message, unsupported)) => {
                for r in group {
                    let error = if unsupported {
                        GpuError::Unsupported(message.clone())
                    } else {
                        GpuError::Driver(message.clone())
                    };
                    let _ = r.reply.send(Err(EngineError::Gpu(error)));
                }
            }
        }
    }
    passes
}
