//! The optimiser: its settings and their check, the learning-rate schedules, the update
//! rule's CPU twin (`Optimizer::apply`), and its one device pipeline (`adam_pass`,
//! `shaders/nn/train/adam.wgsl`, Adam or SGD with momentum), with gradient clipping
//! (`clip_pass`, `shaders/nn/train/grad_clip.wgsl`) in front of it. Every trainer updates
//! its parameters through `adam_pass`.

use super::buffers::{line_grid, uniform, zeros};
use super::pass::{Pass, pipe, storage_ro, storage_rw};
use crate::gpu::layout::{Binding, bind_group, buffer};
use crate::gpu::shader::compose;
use crate::gpu::{GpuContext, GpuError};
use serde::{Deserialize, Serialize};
use wgpu::BufferUsages as U;

/// The loss state every trainer keeps on the device, 8 floats that the loss kernels
/// (`mlp/fused_loss.wgsl`, `deeponet/weight_grad.wgsl`), `grad_clip.wgsl` and `adam.wgsl`
/// share: [Σ (y − t)², Σ t², loss, dL/dy factor, clip factor, gradient norm, -, -].
pub mod state {
    /// Floats in the buffer.
    pub const LEN: usize = 8;
    /// The batch's loss.
    pub const LOSS: usize = 2;
    /// The factor that scales every gradient (grad_clip.wgsl writes it, adam.wgsl reads it).
    pub const CLIP: usize = 4;
    /// The global gradient norm before clipping.
    pub const NORM: usize = 5;
}

/// Learning rate over the steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Constant,
    /// Multiply by `gamma` every `every` steps.
    Step {
        every: u32,
        gamma: f64,
    },
    /// Cosine from the base rate down to `min_lr` over `total` steps.
    Cosine {
        total: u32,
        min_lr: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Optimizer {
    /// Adam (default) or plain SGD with momentum `beta1`.
    pub sgd: bool,
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled (AdamW) weight decay.
    pub weight_decay: f64,
    pub schedule: Schedule,
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer {
            sgd: false,
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
        }
    }
}

/// A setting of the optimiser under which no step can train: refused before the first one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimizerError {
    #[error("the learning rate must be a finite number ≥ 0; got {0}")]
    LearningRate(f64),
    #[error("the weight decay must be a finite number ≥ 0; got {0}")]
    WeightDecay(f64),
    #[error(
        "the weight decay times the learning rate must be below 1 (each step scales the weights \
         by 1 − lr·decay); got {decay} × {lr}"
    )]
    DecayTooLarge { decay: f64, lr: f64 },
    #[error("beta1 and beta2 must lie in [0, 1) and eps be positive and finite; got {0}, {1}, {2}")]
    Moments(f64, f64, f64),
    #[error(
        "a step schedule multiplies the learning rate by a factor in (0, 1] every 1 or more \
         steps; got every {every}, factor {gamma}"
    )]
    StepSchedule { every: u32, gamma: f64 },
    #[error("a cosine schedule's floor must be finite, ≥ 0 and at most the learning rate; got {0}")]
    CosineFloor(f64),
}

impl Optimizer {
    /// Whether every setting can train: a NaN, negative or infinite rate would "train"
    /// to NaN weights without a word, so it is refused here, at every front door. A rate
    /// of 0 is allowed (the parameters stay put: tests read gradients that way); the
    /// command line asks for a positive one.
    pub fn check(&self) -> Result<(), OptimizerError> {
        let lr = self.lr;
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(OptimizerError::LearningRate(lr));
        }
        let decay = self.weight_decay;
        if !(decay.is_finite() && decay >= 0.0) {
            return Err(OptimizerError::WeightDecay(decay));
        }
        if decay * lr >= 1.0 {
            return Err(OptimizerError::DecayTooLarge { decay, lr });
        }
        let unit = |b: f64| (0.0..1.0).contains(&b);
        if !(unit(self.beta1) && unit(self.beta2) && self.eps.is_finite() && self.eps > 0.0) {
            return Err(OptimizerError::Moments(self.beta1, self.beta2, self.eps));
        }
        match self.schedule {
            Schedule::Constant => Ok(()),
            Schedule::Step { every, gamma } => {
                if every == 0 || !(gamma > 0.0 && gamma <= 1.0) {
                    return Err(OptimizerError::StepSchedule { every, gamma });
                }
                Ok(())
            }
            Schedule::Cosine { min_lr, .. } => {
                if !(min_lr.is_finite() && (0.0..=lr).contains(&min_lr)) {
                    return Err(OptimizerError::CosineFloor(min_lr));
                }
                Ok(())
            }
        }
    }
}

impl Optimizer {
    /// The `struct Step` of adam.wgsl for step `t` over `len` parameters; `clip`: the
    /// gradient is first scaled by grad_clip.wgsl's factor.
    pub(crate) fn adam_words(&self, len: usize, t: u32, clip: bool) -> [u32; 12] {
        [
            len as u32,
            t,
            (self.lr_at(t) as f32).to_bits(),
            (self.beta1 as f32).to_bits(),
            (self.beta2 as f32).to_bits(),
            (self.eps as f32).to_bits(),
            (self.weight_decay as f32).to_bits(),
            u32::from(clip),
            u32::from(self.sgd),
            0,
            0,
            0,
        ]
    }

    /// The learning rate at step `t` (from 1).
    pub fn lr_at(&self, t: u32) -> f64 {
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Step { every, gamma } => {
                self.lr * gamma.powi((t - 1) as i32 / every.max(1) as i32)
            }
            Schedule::Cosine { total, min_lr } => {
                let f = ((t - 1) as f64 / total.max(1) as f64).min(1.0);
                min_lr + 0.5 * (self.lr - min_lr) * (1.0 + (std::f64::consts::PI * f).cos())
            }
        }
    }
}

impl Optimizer {
    /// The update rule of `shaders/nn/train/adam.wgsl` in f64 (its CPU twin), for step `t`.
    pub fn apply(&self, t: u32, p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64]) {
        let lr = self.lr_at(t);
        for i in 0..p.len() {
            let mut pi = p[i] * (1.0 - lr * self.weight_decay);
            if self.sgd {
                m[i] = self.beta1 * m[i] + g[i];
                pi -= lr * m[i];
            } else {
                m[i] = self.beta1 * m[i] + (1.0 - self.beta1) * g[i];
                v[i] = self.beta2 * v[i] + (1.0 - self.beta2) * g[i] * g[i];
                let mhat = m[i] / (1.0 - self.beta1.powi(t as i32));
                let vhat = v[i] / (1.0 - self.beta2.powi(t as i32));
                pi -= lr * mhat / (vhat.sqrt() + self.eps);
            }
            p[i] = pi;
        }
    }
}

/// The dispatch of adam.wgsl over `len` parameters (four per invocation).
pub fn adam_grid(len: usize) -> (u32, u32, u32) {
    let (x, y) = line_grid(len.div_ceil(4));
    (x, y, 1)
}

/// An optimiser on the device: its update pass, the uniform to write each step's
/// `Optimizer::adam_words` into, and its moments (first, second).
pub struct AdamPass {
    pub pass: Pass,
    pub uniform: wgpu::Buffer,
    pub moments: [wgpu::Buffer; 2],
}

/// The Adam (or SGD) update of `len` parameters from `grad`, with fresh moments.
pub fn adam_pass(
    ctx: &GpuContext,
    len: usize,
    params: &wgpu::Buffer,
    grad: &wgpu::Buffer,
    state: &wgpu::Buffer,
) -> Result<AdamPass, GpuError> {
    let (pipeline, l) = pipe(
        ctx,
        "nn/train/adam",
        &compose("nn/train/adam.wgsl", &[])?,
        &[
            Binding::Uniform,
            storage_rw(),
            storage_ro(),
            storage_rw(),
            storage_rw(),
            storage_ro(),
        ],
    )?;
    let uniform = buffer(ctx, "adam step", 48, U::UNIFORM | U::COPY_DST);
    let (m1, m2) = (zeros(ctx, "adam m", len), zeros(ctx, "adam v", len));
    let pass = Pass {
        label: "adam",
        group: bind_group(
            ctx,
            "adam",
            &l,
            0,
            &[&uniform, params, grad, &m1, &m2, state],
        ),
        pipeline,
        size: adam_grid(len),
    };
    Ok(AdamPass {
        pass,
        uniform,
        moments: [m1, m2],
    })
}

/// grad_clip.wgsl's `struct Dims`.
pub(crate) fn clip_words(len: usize, max_norm: f64) -> [u32; 4] {
    [len as u32, 0, 0, (max_norm as f32).to_bits()]
}

/// The pass that scales `grad` [len] to a global L2 norm of at most `max_norm`
/// (grad_clip.wgsl); it writes its factor into `state`, where adam.wgsl reads it when the
/// step's `clip` word is set.
pub fn clip_pass(
    ctx: &GpuContext,
    len: usize,
    max_norm: f64,
    grad: &wgpu::Buffer,
    state: &wgpu::Buffer,
) -> Result<Pass, GpuError> {
    let (pipeline, l) = pipe(
        ctx,
        "nn/train/grad_clip",
        &compose("nn/train/grad_clip.wgsl", &[])?,
        &[Binding::Uniform, storage_ro(), storage_rw()],
    )?;
    let dims = uniform(ctx, clip_words(len, max_norm));
    Ok(Pass {
        label: "clip",
        group: bind_group(ctx, "clip", &l, 0, &[&dims, grad, state]),
        pipeline,
        size: (1, 1, 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::train::words_by_field;

    // The layout comments and structs of the kernels against the words written here.

    #[test]
    fn adam_words_follow_adam_wgsl_step_struct() {
        let o = Optimizer {
            sgd: true,
            weight_decay: 0.25,
            ..Optimizer::default()
        };
        // Distinct values (clip off, SGD on) so that swapped fields show.
        let words = o.adam_words(1234, 7, false);
        let at = words_by_field("nn/train/adam.wgsl", "Step", &words);
        assert_eq!((at("len"), at("t"), at("clip"), at("sgd")), (1234, 7, 0, 1));
        let real = |name| f32::from_bits(at(name));
        assert_eq!(
            [real("lr"), real("beta1"), real("beta2")],
            [1e-3, 0.9, 0.999]
        );
        assert_eq!([real("eps"), real("weight_decay")], [1e-8, 0.25]);
    }

    #[test]
    fn clip_words_follow_grad_clip_wgsl_dims_struct() {
        let words = clip_words(99, 0.5);
        let at = words_by_field("nn/train/grad_clip.wgsl", "Dims", &words);
        assert_eq!(at("len"), 99);
        assert_eq!(f32::from_bits(at("max_norm")), 0.5);
    }

    #[test]
    fn loss_state_indices_match_the_kernels_that_share_it() {
        let clip = compose("nn/train/grad_clip.wgsl", &[]).unwrap();
        assert!(clip.contains(&format!("state[{}] = norm", state::NORM)));
        assert!(clip.contains(&format!("state[{}] = select(", state::CLIP)));
        let adam = compose("nn/train/adam.wgsl", &[]).unwrap();
        assert!(adam.contains(&format!("state[{}], step.clip", state::CLIP)));
        // fused_loss.wgsl's comment lists the state and its code writes the loss there.
        let loss = crate::embedded::SHADERS
            .iter()
            .find(|(path, _)| *path == "nn/mlp/fused_loss.wgsl")
            .unwrap()
            .1;
        let listed = loss.split("state = [").nth(1).unwrap();
        let listed: Vec<&str> = listed[..listed.find(']').unwrap()]
            .split(',')
            .map(|s| s.trim())
            .collect();
        assert_eq!(listed.iter().position(|s| *s == "loss"), Some(state::LOSS));
        assert!(loss.contains(&format!("state[{}] = e / count", state::LOSS)));
        let deeponet = crate::embedded::SHADERS
            .iter()
            .find(|(path, _)| *path == "nn/deeponet/weight_grad.wgsl")
            .unwrap()
            .1;
        assert!(deeponet.contains(&format!("state[{}] = total / count", state::LOSS)));
    }
}
