//! Neural networks on the GPU: MLPs with Fourier-feature encodings (`mlp`), DeepONets
//! (`deeponet`), the training toolkit both use (`train`: passes, samplers, the optimiser
//! and its one Adam pipeline), checkpoints in PyTorch's layout (`checkpoint`) and the
//! fit/predict front door (`fit`). See docs/nn-layout.md.

pub mod checkpoint;
pub mod deeponet;
pub mod fit;
pub mod mlp;
pub mod train;

// The module paths of the flat layout this folder had, kept so that front-ends and
// scripts written against them still build.
pub use deeponet::{
    data as deeponet_data, generate as deeponet_generate, grf, kernels as deeponet_kernels,
    pair as deeponet_pair, scaling as deeponet_scaling, trainer as deeponet_gpu,
};
pub use mlp::{cpu, fused, fused_net, gpu, model};

pub use checkpoint::{
    CheckpointError, load, load_deeponet, load_deeponet_state, save, save_bytes,
    save_deeponet_bytes, save_deeponet_state_bytes,
};
pub use deeponet::{
    AlignedData, DeepONetArch, DeepONetNet, DeepONetParams, DeepONetTrainConfig,
    DeepONetTrainState, DeepONetTrainer, Metrics, NetSpec, Strategy,
};
pub use fit::{AnyTrainer, FitReport, fit, predict};
pub use mlp::{
    Activation, Architecture, Encoding, EncodingKind, FusedLayout, FusedNet, FusedTrainer, Init,
    Loss, Matrix, ModelError, Params, TrainConfig, TrainConfigError, Trainer, fused_supported,
};
pub use mlp::{Batch, GpuNet};
pub use train::{Optimizer, OptimizerError, Schedule};
