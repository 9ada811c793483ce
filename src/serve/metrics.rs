//! `GET /metrics` in the Prometheus text format (version 0.0.4).

use crate::engine::EngineStats;
use crate::gpu::PipelineCacheStats;
use std::collections::BTreeMap;
use std::fmt::Write;

fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP phaseflow_{name} {help}");
    let _ = writeln!(out, "# TYPE phaseflow_{name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "phaseflow_{name}{labels} {value}");
    }
}

fn one(v: f64) -> Vec<(String, f64)> {
    vec![(String::new(), v)]
}

pub fn render(s: &EngineStats, responses: &BTreeMap<u16, u64>, models: usize) -> String {
    let mut out = String::new();
    let finished = [
        ("succeeded", s.succeeded),
        ("failed", s.failed),
        ("cancelled", s.cancelled),
    ]
    .map(|(state, c)| (format!("{{state=\"{state}\"}}"), c as f64));
    family(
        &mut out,
        "jobs_submitted_total",
        "counter",
        "Jobs accepted.",
        &one(s.submitted as f64),
    );
    family(
        &mut out,
        "jobs_finished_total",
        "counter",
        "Jobs finished, by how they ended.",
        &finished,
    );
    family(
        &mut out,
        "jobs_queued",
        "gauge",
        "Jobs waiting for a runner or memory (queue depth).",
        &one(s.queued as f64),
    );
    family(
        &mut out,
        "jobs_running",
        "gauge",
        "Jobs on the device now.",
        &one(s.running as f64),
    );
    family(
        &mut out,
        "gpu_busy_seconds_total",
        "counter",
        "GPU time of finished jobs (timestamps where the adapter has them).",
        &one(s.gpu_busy_s),
    );
    family(
        &mut out,
        "trajectory_steps_total",
        "counter",
        "Trajectory-steps (adaptive: step attempts) integrated.",
        &one(s.trajectory_steps as f64),
    );
    let rate = s.trajectory_steps as f64 / s.gpu_busy_s.max(1e-9);
    family(
        &mut out,
        "trajectory_steps_per_second",
        "gauge",
        "Trajectory-steps per second of GPU busy time, over all finished jobs.",
        &one(if s.gpu_busy_s > 0.0 { rate } else { 0.0 }),
    );
    family(
        &mut out,
        "predictions_total",
        "counter",
        "Prediction requests answered.",
        &one(s.predictions as f64),
    );
    family(
        &mut out,
        "prediction_batches_total",
        "counter",
        "Device passes that answered them (fewer than requests when batched).",
        &one(s.prediction_batches as f64),
    );
    family(
        &mut out,
        "predict_busy_seconds_total",
        "counter",
        "Wall time spent in prediction passes.",
        &one(s.predict_busy_s),
    );
    family(
        &mut out,
        "device_memory_reserved_bytes",
        "gauge",
        "Device memory reserved by running jobs' budgets.",
        &one(s.reserved_bytes as f64),
    );
    family(
        &mut out,
        "device_buffer_bytes",
        "gauge",
        "Device memory in buffers now.",
        &one(s.device_bytes as f64),
    );
    family(
        &mut out,
        "models_loaded",
        "gauge",
        "Models answering predictions.",
        &one(models as f64),
    );
    let codes: Vec<(String, f64)> = responses
        .iter()
        .map(|(code, n)| (format!("{{code=\"{code}\"}}"), *n as f64))
        .collect();
    family(
        &mut out,
        "http_responses_total",
        "counter",
        "HTTP responses by status code.",
        &codes,
    );
    out
}

/// The device's compiled-pipeline cache: how often a kernel was reused, compiled anew, or
/// dropped to stay within the capacity.
pub fn render_pipeline_cache(out: &mut String, c: &PipelineCacheStats) {
    family(
        out,
        "pipeline_cache_hits_total",
        "counter",
        "Kernels reused from the compiled-pipeline cache.",
        &one(c.hits as f64),
    );
    family(
        out,
        "pipeline_cache_misses_total",
        "counter",
        "Kernels compiled because the cache did not hold them.",
        &one(c.misses as f64),
    );
    family(
        out,
        "pipeline_cache_evictions_total",
        "counter",
        "Least recently used pipelines dropped to stay within the capacity.",
        &one(c.evictions as f64),
    );
    family(
        out,
        "pipeline_cache_entries",
        "gauge",
        "Compiled pipelines in the cache now.",
        &one(c.entries as f64),
    );
    family(
        out,
        "pipeline_cache_capacity",
        "gauge",
        "Most compiled pipelines the cache keeps (--pipeline-cache).",
        &one(c.capacity as f64),
    );
}
