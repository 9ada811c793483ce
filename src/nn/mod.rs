//! Neural networks on the GPU: MLPs with Fourier-feature encodings, their CPU twins,
//! checkpoints in PyTorch's layout; DeepONet's model and CPU twin.

pub mod checkpoint;
pub mod cpu;
pub mod deeponet;
pub mod deeponet_data;
pub mod deeponet_generate;
pub mod deeponet_gpu;
pub mod deeponet_kernels;
pub mod deeponet_pair;
pub mod deeponet_scaling;
pub mod fit;
pub mod fused;
pub mod fused_net;
pub mod gpu;
pub mod grf;
pub mod model;
pub mod train;

pub use checkpoint::{
    CheckpointError, load, load_deeponet, load_deeponet_state, save, save_bytes,
    save_deeponet_bytes, save_deeponet_state_bytes,
};
pub use deeponet::{AlignedData, DeepONetArch, DeepONetParams, NetSpec, Strategy};
pub use deeponet_gpu::{
    DeepONetNet, DeepONetTrainConfig, DeepONetTrainState, DeepONetTrainer, Metrics,
};
pub use fit::{AnyTrainer, FitReport, fit, predict};
pub use fused::{FusedLayout, Loss};
pub use fused_net::{FusedNet, FusedTrainer, TrainConfig, TrainConfigError, fused_supported};
pub use gpu::{Batch, GpuNet};
pub use model::{
    Activation, Architecture, Encoding, EncodingKind, Init, Matrix, ModelError, Params,
};
pub use train::{Optimizer, OptimizerError, Schedule, Trainer};
