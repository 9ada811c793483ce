//! How an engine is set up: its adapter, runners, memory budgets and limits.

use crate::gpu::AdapterChoice;

/// How an engine runs its jobs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub adapter: AdapterChoice,
    /// Jobs that run at once; the others wait in order of submission.
    pub runners: usize,
    /// Device memory all running jobs together may plan for [default: 512 MiB on a CPU
    /// adapter, whose device memory is host memory; 4 GiB on a GPU].
    pub memory: Option<u64>,
    /// Device memory one job may plan for [default: `memory` / `runners`].
    pub job_memory: Option<u64>,
    /// Jobs queued and running at most; more are refused with `EngineError::Busy`.
    pub max_jobs: usize,
    /// Host memory one simulation's results may take.
    pub max_result_bytes: u64,
    /// Most prediction requests merged into one device pass.
    pub predict_batch: usize,
    /// Compiled pipelines the device keeps for reuse [default: the context's own,
    /// `gpu::DEFAULT_PIPELINE_CACHE`].
    pub pipeline_cache: Option<usize>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            adapter: AdapterChoice::Best,
            runners: 2,
            memory: None,
            job_memory: None,
            max_jobs: 256,
            max_result_bytes: 4 << 30,
            predict_batch: 256,
            pipeline_cache: None,
        }
    }
}
