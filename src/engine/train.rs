//! DeepONet training as an engine job: steps are submitted in blocks without waiting, the
//! loss is read back after each block (the only host round trip), and cancellation is
//! checked between blocks.

use super::error::EngineError;
use super::job::JobShared;
use super::queue::Inner;
use crate::gpu::GpuContext;
use crate::nn::deeponet::DeepONetData;
use crate::nn::{DeepONetArch, DeepONetParams, DeepONetTrainConfig, DeepONetTrainer};
use std::sync::Weak;
use std::time::Instant;

/// What to train: the network, its starting parameters, the data and the optimiser.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    pub arch: DeepONetArch,
    pub params: DeepONetParams,
    pub data: DeepONetData,
    pub config: DeepONetTrainConfig,
    pub steps: u32,
    /// Steps between loss read-backs (and progress reports, and cancellation checks).
    pub loss_every: u32,
}

/// A finished training run.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub params: DeepONetParams,
    /// (step, loss of that step's batch), every `loss_every` steps and at the end.
    pub losses: Vec<(u32, f64)>,
    pub seconds: f64,
}

impl TrainRequest {
    pub(super) fn check(&self) -> Result<(), EngineError> {
        let bad = |m: String| EngineError::BadInput(m);
        self.arch.check().map_err(|e| bad(e.to_string()))?;
        self.data.as_ref().check(&self.arch).map_err(bad)?;
        self.config
            .check(self.data.as_ref().layout())
            .map_err(bad)?;
        if self.steps == 0 || self.loss_every == 0 {
            return Err(bad("steps and loss_every must be at least 1".into()));
        }
        Ok(())
    }
}

pub(super) fn run(
    ctx: &GpuContext,
    request: &TrainRequest,
    shared: &JobShared,
    inner: &Weak<Inner>,
) -> Result<TrainOutcome, EngineError> {
    let started = Instant::now();
    let result = (|| {
        let mut trainer = DeepONetTrainer::new(
            ctx,
            &request.arch,
            &request.params,
            request.data.as_ref(),
            request.config.clone(),
        )?;
        let mut losses = Vec::new();
        let mut done = 0u32;
        while done < request.steps {
            if shared.cancelled() {
                return Err(EngineError::Cancelled {
                    done: done as u64,
                    total: request.steps as u64,
                });
            }
            let block = request.loss_every.min(request.steps - done);
            trainer.run(ctx, block as usize);
            done += block;
            losses.push((done, trainer.loss(ctx)?));
            shared.set_done(done as u64);
        }
        Ok(TrainOutcome {
            params: trainer.params(ctx)?,
            losses,
            seconds: started.elapsed().as_secs_f64(),
        })
    })();
    if let Some(inner) = inner.upgrade() {
        inner.add_busy(started.elapsed(), 0);
        inner.finish(shared, &result);
    }
    result
}
