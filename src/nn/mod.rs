//! Neural networks on the GPU: MLPs with Fourier-feature encodings, their CPU twins,
//! checkpoints in PyTorch's layout.

pub mod checkpoint;
pub mod cpu;
pub mod model;

pub use checkpoint::{CheckpointError, load, save};
pub use model::{
    Activation, Architecture, Encoding, EncodingKind, Init, Matrix, ModelError, Params,
};
