//! Fitting a network to samples: the fused kernels where the network allows them (hidden
//! widths up to 128), the layer-by-layer kernels otherwise, behind one face; and the loop that
//! reads the loss back only every few steps.

use super::mlp::fused::Loss;
use super::mlp::fused_net::{FusedNet, FusedTrainer, TrainConfig, fused_supported};
use super::mlp::gpu::GpuNet;
use super::mlp::layered::Trainer;
use super::mlp::model::{Architecture, Matrix, Params};
use crate::gpu::{GpuContext, GpuError};

/// A trainer on the device, whichever kernels it runs.
pub enum AnyTrainer {
    Fused(FusedTrainer),
    Layered(Trainer),
}

impl AnyTrainer {
    /// The fused trainer when `fused_supported`, else the layer-by-layer one, which
    /// trains full batches on the MSE only: asking it for more is an error, not a silent
    /// change of the problem.
    pub fn new(
        ctx: &GpuContext,
        arch: &Architecture,
        params: &Params,
        x: &Matrix,
        target: &Matrix,
        config: TrainConfig,
    ) -> Result<AnyTrainer, GpuError> {
        if fused_supported(arch) {
            return Ok(AnyTrainer::Fused(FusedTrainer::new(
                ctx, arch, params, x, target, config,
            )?));
        }
        let why = if config.loss != Loss::Mse {
            Some("the relative L2 loss")
        } else if config.batch.is_some_and(|b| b < x.rows) {
            Some("minibatches")
        } else if config.clip.is_some() {
            Some("gradient clipping")
        } else {
            None
        };
        if let Some(what) = why {
            return Err(GpuError::Unsupported(format!(
                "{what} needs the fused kernels, which take hidden widths up to 128; this \
                 network has wider ones"
            )));
        }
        let net = GpuNet::new(ctx, arch, params)?;
        Ok(AnyTrainer::Layered(Trainer::new(
            ctx,
            net,
            x,
            target,
            config.optimizer,
        )?))
    }

    /// Which kernels train, for reports.
    pub fn kernels(&self) -> &'static str {
        match self {
            AnyTrainer::Fused(_) => "fused",
            AnyTrainer::Layered(_) => "layer by layer",
        }
    }

    /// Records and submits one step; nothing is read back.
    pub fn step(&mut self, ctx: &GpuContext) {
        match self {
            AnyTrainer::Fused(t) => t.step(ctx),
            AnyTrainer::Layered(t) => t.step(ctx),
        }
    }

    /// The loss of the last step's batch (waits for the device).
    pub fn loss(&self, ctx: &GpuContext) -> Result<f64, GpuError> {
        match self {
            AnyTrainer::Fused(t) => t.loss(ctx),
            AnyTrainer::Layered(t) => t.loss(ctx),
        }
    }

    pub fn params(&self, ctx: &GpuContext) -> Result<Params, GpuError> {
        match self {
            AnyTrainer::Fused(t) => t.params(ctx),
            AnyTrainer::Layered(t) => t.params(ctx),
        }
    }
}

/// Rows per forward dispatch of the layer-by-layer kernels when predicting.
const LAYERED_CHUNK: usize = 1 << 16;

/// The network's outputs for `x` on the device, with whichever kernels suit it.
pub fn predict(
    ctx: &GpuContext,
    arch: &Architecture,
    params: &Params,
    x: &Matrix,
) -> Result<Matrix, GpuError> {
    if x.rows == 0 {
        // Nothing to run: the kernels would bind empty buffers.
        return Ok(Matrix {
            rows: 0,
            cols: arch.outputs(),
            data: Vec::new(),
        });
    }
    if fused_supported(arch) {
        return FusedNet::new(ctx, arch, params)?.predict(ctx, x);
    }
    let net = GpuNet::new(ctx, arch, params)?;
    let outputs = arch.outputs();
    let mut data = Vec::with_capacity(x.rows * outputs);
    let chunk = LAYERED_CHUNK.min(x.rows.max(1));
    let batch = net.batch(ctx, chunk);
    for start in (0..x.rows).step_by(chunk) {
        let rows = chunk.min(x.rows - start);
        // The last chunk is padded with zeros; only its first rows are kept.
        let mut part = vec![0.0; chunk * x.cols];
        part[..rows * x.cols].copy_from_slice(&x.data[start * x.cols..(start + rows) * x.cols]);
        let y = net.forward(
            ctx,
            &batch,
            &Matrix {
                rows: chunk,
                cols: x.cols,
                data: part,
            },
        )?;
        data.extend_from_slice(&y.data[..rows * outputs]);
    }
    Ok(Matrix {
        rows: x.rows,
        cols: outputs,
        data,
    })
}

/// What a fit produced.
pub struct FitReport {
    /// (step, loss of that step's batch) every `log_every` steps and at the last.
    pub curve: Vec<(u32, f64)>,
    pub params: Params,
    /// Steps actually taken (fewer than asked if `on_log` stopped the fit).
    pub steps: u32,
    pub seconds: f64,
    pub kernels: &'static str,
}

/// Trains for `steps` steps, reading the loss back every `log_every` steps (and after the
/// last) and handing it to `on_log(step, loss)`, which returns whether to go on.
pub fn fit(
    ctx: &GpuContext,
    trainer: &mut AnyTrainer,
    steps: u32,
    log_every: u32,
    mut on_log: impl FnMut(u32, f64) -> bool,
) -> Result<FitReport, GpuError> {
    let start = std::time::Instant::now();
    let log_every = log_every.max(1);
    let mut curve = Vec::new();
    let mut done = 0;
    for step in 1..=steps {
        trainer.step(ctx);
        done = step;
        if step % log_every == 0 || step == steps {
            let loss = trainer.loss(ctx)?;
            curve.push((step, loss));
            if !on_log(step, loss) {
                break;
            }
        }
    }
    let params = trainer.params(ctx)?;
    Ok(FitReport {
        curve,
        params,
        steps: done,
        seconds: start.elapsed().as_secs_f64(),
        kernels: trainer.kernels(),
    })
}
