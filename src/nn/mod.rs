//! Neural networks on the GPU: MLPs with Fourier-feature encodings, their CPU twins,
//! checkpoints in PyTorch's layout.

pub mod checkpoint;
pub mod cpu;
pub mod gpu;
pub mod model;
pub mod train;

pub use checkpoint::{CheckpointError, load, save};
pub use gpu::{Batch, GpuNet};
pub use model::{
    Activation, Architecture, Encoding, EncodingKind, Init, Matrix, ModelError, Params,
};
pub use train::{Optimizer, Schedule, Trainer};
