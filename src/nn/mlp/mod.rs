//! Multilayer perceptrons with Fourier-feature encodings: the model and its PyTorch
//! naming (`model`), the f64 CPU twin (`cpu`), and two ways to run them on the device:
//! layer by layer (`gpu::GpuNet`, trained by `layered::Trainer`) and fused, one kernel per
//! stage for the whole network (`fused` generates the kernels and the parameter layout,
//! `fused_net` holds `FusedNet` and `FusedTrainer`). Both trainers build on `nn::train`.
//! Kernels: `shaders/nn/mlp/`.

pub mod cpu;
pub mod fused;
pub mod fused_net;
pub mod gpu;
pub mod layered;
pub mod model;

pub use fused::{FusedLayout, Loss};
pub use fused_net::{
    FusedNet, FusedTrainer, MAX_FUSED_WIDTH, TrainConfig, TrainConfigError, fused_supported,
};
pub use gpu::{Batch, GpuNet, Kernels};
pub use layered::Trainer;
pub use model::{
    Activation, Architecture, Encoding, EncodingKind, Init, Matrix, ModelError, Params,
};
