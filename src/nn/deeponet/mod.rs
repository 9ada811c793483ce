//! DeepONet (Lu et al. 2021): the model, its data and their f64 CPU twin (`model`), the
//! normalisation that travels with a model (`scaling`), data files and the DeepXDE
//! antiderivative set-up (`data`), Gaussian random fields for input functions (`grf`),
//! operator data from ensembles (`generate`), and training on the device: the parameter
//! layout (`layout`), the combine kernels (`kernels`), the branch and trunk nets' fused
//! kernels side by side (`pair`), the trainer (`trainer`) and a training run around it
//! (`session`), built on `nn::train` and the fused MLP kernels of `nn::mlp`. Kernels:
//! `shaders/nn/deeponet/`.

pub mod data;
pub mod generate;
pub mod grf;
pub mod kernels;
pub mod layout;
pub mod model;
pub mod pair;
pub mod scaling;
pub mod session;
pub mod trainer;

pub use layout::{DeepONetLayout, REGION_ALIGN};
pub use model::*;
pub use scaling::{Affine, Scaling};
pub use trainer::{DeepONetNet, DeepONetTrainConfig, DeepONetTrainState, DeepONetTrainer, Metrics};
