//! Everything that touches wgpu directly: the headless context, shader assembly and
//! validation, readback and timestamp timing.

pub mod context;
pub mod layout;
pub mod math_f64;
pub mod peak;
pub mod pipeline_cache;
pub mod readback;
pub mod shader;
pub mod timing;

pub use context::{
    AdapterChoice, AdapterSummary, GpuContext, GpuError, chosen_index, list_adapters,
};
pub use pipeline_cache::{DEFAULT_PIPELINE_CACHE, PipelineCacheStats};
