//! The training toolkit every trainer (`mlp::layered::Trainer`, `mlp::FusedTrainer`,
//! `deeponet::DeepONetTrainer`) builds on: recorded passes, batch samplers, the optimiser
//! with its one Adam pipeline and gradient clipping, gradient sums over batch splits, and
//! the buffer helpers. Kernels: `shaders/nn/train/`.

pub mod buffers;
pub mod gradients;
pub mod optimizer;
pub mod pass;
pub mod sampler;

pub use optimizer::{Optimizer, OptimizerError, Schedule};
