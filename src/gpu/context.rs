//! The headless GPU context: adapter choice, device creation with the features and limits
//! the adapter really has, and a record of errors the driver reports asynchronously.

use super::pipeline_cache::{DEFAULT_PIPELINE_CACHE, Lru, PipelineCacheStats, PipelineKey};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found. phaseflow needs a Vulkan, Metal or DX12 driver; with no GPU, \
         install Mesa's software Vulkan driver (Debian/Ubuntu: `sudo apt-get install mesa-vulkan-drivers`, \
         or run `make setup`)"
    )]
    NoAdapter,
    #[error("no adapter matches '{wanted}'; available: {available}")]
    NoSuchAdapter { wanted: String, available: String },
    #[error("could not open a device on '{adapter}': {source}")]
    Device {
        adapter: String,
        #[source]
        source: wgpu::RequestDeviceError,
    },
    #[error("the GPU reported an error: {0}")]
    Driver(String),
    #[error("reading results back from the GPU failed: {0}")]
    Readback(String),
    #[error("{0}")]
    Shader(#[from] super::shader::ShaderError),
    #[error(
        "f64 precision needs an adapter with 64-bit float and integer shaders (SHADER_F64 and \
         SHADER_INT64); '{0}' has not got them. Use f32 precision, or pick another adapter \
         (`phaseflow info` lists them)"
    )]
    NoF64(String),
    #[error("{0}")]
    Unsupported(String),
}

/// Which adapter to use: the best one, or one named by index or by part of its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AdapterChoice {
    #[default]
    Best,
    Index(usize),
    Name(String),
}

impl AdapterChoice {
    /// `""`/`"auto"` → best; a number → index in `phaseflow info`'s list; else a name part.
    pub fn parse(s: &str) -> AdapterChoice {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("auto") {
            AdapterChoice::Best
        } else if let Ok(i) = s.parse() {
            AdapterChoice::Index(i)
        } else {
            AdapterChoice::Name(s.to_string())
        }
    }
}

/// What `phaseflow info` shows about one adapter.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterSummary {
    pub index: usize,
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub shader_f64: bool,
    pub timestamps: bool,
    /// The smallest and largest subgroup, in lanes; `None` without subgroup operations.
    pub subgroup_sizes: Option<[u32; 2]>,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_workgroups_per_dimension: u32,
    pub max_compute_invocations_per_workgroup: u32,
}

fn summarize(index: usize, a: &wgpu::Adapter) -> AdapterSummary {
    let info = a.get_info();
    let limits = a.limits();
    let features = a.features();
    AdapterSummary {
        index,
        name: info.name,
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver,
        driver_info: info.driver_info,
        shader_f64: features.contains(F64_FEATURES),
        timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
        subgroup_sizes: features
            .contains(wgpu::Features::SUBGROUP)
            .then_some([info.subgroup_min_size, info.subgroup_max_size]),
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_buffer_size: limits.max_buffer_size,
        max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
    }
}

/// Lower is better: real GPUs before software ones.
fn rank(a: &wgpu::Adapter) -> (u8, u8) {
    let info = a.get_info();
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal => 0,
        wgpu::Backend::Dx12 => 1,
        _ => 2,
    };
    (kind, backend)
}

fn enumerate() -> Vec<wgpu::Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    pollster::block_on(instance.enumerate_adapters(backends))
}

/// Every adapter on this machine, in the order `--adapter N` refers to.
pub fn list_adapters() -> Vec<AdapterSummary> {
    enumerate()
        .iter()
        .enumerate()
        .map(|(i, a)| summarize(i, a))
        .collect()
}

/// Index (in `list_adapters` order) of the adapter `choice` selects, without opening it.
pub fn chosen_index(choice: &AdapterChoice) -> Result<usize, GpuError> {
    choose(&enumerate(), choice)
}

fn choose(adapters: &[wgpu::Adapter], choice: &AdapterChoice) -> Result<usize, GpuError> {
    if adapters.is_empty() {
        return Err(GpuError::NoAdapter);
    }
    let describe = || {
        adapters
            .iter()
            .enumerate()
            .map(|(i, a)| format!("[{i}] {}", a.get_info().name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match choice {
        AdapterChoice::Best => Ok((0..adapters.len())
            .min_by_key(|&i| rank(&adapters[i]))
            .unwrap_or(0)),
        AdapterChoice::Index(i) if *i < adapters.len() => Ok(*i),
        AdapterChoice::Index(i) => Err(GpuError::NoSuchAdapter {
            wanted: i.to_string(),
            available: describe(),
        }),
        AdapterChoice::Name(n) => {
            let needle = n.to_lowercase();
            adapters
                .iter()
                .position(|a| a.get_info().name.to_lowercase().contains(&needle))
                .ok_or_else(|| GpuError::NoSuchAdapter {
                    wanted: n.clone(),
                    available: describe(),
                })
        }
    }
}

/// What f64 kernels need from an adapter.
pub const F64_FEATURES: wgpu::Features =
    wgpu::Features::SHADER_F64.union(wgpu::Features::SHADER_INT64);

/// An open device on the chosen adapter. Cheap to share behind an `Arc`; `Send + Sync`.
pub struct GpuContext {
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub summary: AdapterSummary,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    errors: Arc<Mutex<Vec<String>>>,
    pipelines: Mutex<Lru<PipelineKey, Arc<wgpu::ComputePipeline>>>,
    /// Opened with `new_with_gpu_forms`: the kernels take the forms GPUs run.
    gpu_forms: bool,
}

/// Whether to use the adapter's subgroup operations: `PHASEFLOW_SUBGROUPS=off` opens the
/// device without them, and the fused network kernels then share no loads between lanes
/// (`nn::mlp::fused::LaneSharing::Loads`): for a driver whose subgroups misbehave, and to
/// run the no-subgroup path on an adapter that has them.
pub fn subgroups_wanted() -> Result<bool, GpuError> {
    let value = match std::env::var("PHASEFLOW_SUBGROUPS") {
        Ok(v) => v,
        Err(std::env::VarError::NotPresent) => return Ok(true),
        Err(std::env::VarError::NotUnicode(v)) => v.to_string_lossy().into_owned(),
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "on" | "auto" | "1" | "true" => Ok(true),
        "off" | "0" | "false" => Ok(false),
        _ => Err(GpuError::Unsupported(format!(
            "PHASEFLOW_SUBGROUPS is '{value}'; use 'off' (or 0, false: no subgroup \
             operations) or 'on' (or 1, true, auto, empty: the adapter's)"
        ))),
    }
}

impl GpuContext {
    /// Opens the chosen adapter with every feature phaseflow uses that it offers
    /// (subgroups unless `PHASEFLOW_SUBGROUPS=off`).
    pub fn new(choice: &AdapterChoice) -> Result<GpuContext, GpuError> {
        GpuContext::open(choice, subgroups_wanted()?)
    }

    /// As `new`, but without subgroup operations whatever the adapter offers.
    pub fn new_without_subgroups(choice: &AdapterChoice) -> Result<GpuContext, GpuError> {
        GpuContext::open(choice, false)
    }

    /// As `new`, but the kernels take the forms they take on GPUs whatever the adapter
    /// (`cpu_forms` is false): for tests that run on a CPU adapter the code GPUs run.
    pub fn new_with_gpu_forms(choice: &AdapterChoice) -> Result<GpuContext, GpuError> {
        let mut ctx = GpuContext::open(choice, subgroups_wanted()?)?;
        ctx.gpu_forms = true;
        Ok(ctx)
    }

    fn open(choice: &AdapterChoice, subgroups: bool) -> Result<GpuContext, GpuError> {
        let adapters = enumerate();
        let index = choose(&adapters, choice)?;
        let adapter = adapters.into_iter().nth(index).expect("index from choose");
        let summary = summarize(index, &adapter);

        let offered = adapter.features();
        let mut wanted = F64_FEATURES | wgpu::Features::TIMESTAMP_QUERY;
        if subgroups {
            wanted |= wgpu::Features::SUBGROUP;
        }
        let features = offered & wanted;
        // Ask for everything the adapter offers: bigger bindings and buffers mean fewer chunks.
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("phaseflow"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|source| GpuError::Device {
            adapter: summary.name.clone(),
            source,
        })?;

        // wgpu panics on errors nobody captured; we record them and fail the run instead.
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            log::error!("GPU error: {e}");
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.to_string());
        }));

        Ok(GpuContext {
            adapter,
            device,
            queue,
            summary,
            limits,
            features,
            errors,
            pipelines: Mutex::new(Lru::new(DEFAULT_PIPELINE_CACHE)),
            gpu_forms: false,
        })
    }

    /// f64 kernels need 64-bit floats and, for the math library's bit tests, 64-bit
    /// integers; adapters with the first practically always have the second.
    pub fn has_f64(&self) -> bool {
        self.features.contains(F64_FEATURES)
    }

    /// A CPU adapter (lavapipe, WARP): device memory is host memory, and workgroup
    /// barriers and per-lane memory accesses are costly.
    pub fn is_cpu(&self) -> bool {
        self.summary.device_type.eq_ignore_ascii_case("cpu")
    }

    /// Whether kernels take the forms made for CPU adapters (workgroups of one subgroup,
    /// parameters in uniform windows, wide weight-gradient tasks, few gradient splits): a
    /// CPU adapter not opened with `new_with_gpu_forms`. Memory budgets follow `is_cpu`.
    pub fn cpu_forms(&self) -> bool {
        self.is_cpu() && !self.gpu_forms
    }

    /// Subgroup operations with subgroups of at least 8 invocations, which the fused
    /// network kernels use to share weight loads between invocations (without them each
    /// invocation loads what it needs: `nn::mlp::fused::LaneSharing`).
    pub fn has_subgroups(&self) -> bool {
        self.features.contains(wgpu::Features::SUBGROUP)
            && self.adapter.get_info().subgroup_min_size >= 8
    }

    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Fails if the driver reported an error since the last check.
    pub fn check_errors(&self) -> Result<(), GpuError> {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.is_empty() {
            Ok(())
        } else {
            let all = errors.join("; ");
            errors.clear();
            Err(GpuError::Driver(all))
        }
    }

    /// Most compiled pipelines kept for reuse (at least one); the least recently used go
    /// first. Shrinking it evicts at once.
    pub fn set_pipeline_cache_capacity(&self, capacity: usize) {
        self.pipeline_cache().set_capacity(capacity);
    }

    /// Hits, misses and evictions of the pipeline cache since this context opened.
    pub fn pipeline_cache_stats(&self) -> PipelineCacheStats {
        self.pipeline_cache().stats()
    }

    fn pipeline_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, Lru<PipelineKey, Arc<wgpu::ComputePipeline>>> {
        self.pipelines.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A compute pipeline for a WGSL source (validated by naga first), made once per
    /// distinct source and label and reused while it stays among the most recently used
    /// (`set_pipeline_cache_capacity`).
    pub fn pipeline(
        &self,
        label: &str,
        wgsl: &str,
        layout: &wgpu::PipelineLayout,
        f64: bool,
    ) -> Result<Arc<wgpu::ComputePipeline>, GpuError> {
        const ENTRY_POINT: &str = "main";
        let key = PipelineKey::new(label, ENTRY_POINT, wgsl);
        if let Some(p) = self.pipeline_cache().get(&key) {
            return Ok(p);
        }
        super::shader::validate(label, wgsl, f64)?;
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(wgsl.into()),
            });
        let pipeline = Arc::new(self.device.create_compute_pipeline(
            &wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: Some(layout),
                module: &module,
                entry_point: Some(ENTRY_POINT),
                compilation_options: Default::default(),
                cache: None,
            },
        ));
        self.check_errors()?;
        self.pipeline_cache().insert(key, pipeline.clone());
        Ok(pipeline)
    }
}
