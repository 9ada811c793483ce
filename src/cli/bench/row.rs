//! One measured configuration of a scenario, and the rates and shares of the adapter's
//! ceilings derived from it.

use super::scenario::Scenario;
use crate::gpu::peak::Peak;
use crate::precision::Precision;

/// One measured configuration of a scenario.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub(super) scenario: &'static str,
    /// The variant: kernels, solver, latency or throughput.
    pub(super) what: String,
    pub(super) size: usize,
    pub(super) precision: Precision,
    /// Wall time of one unit of work (a training step, an ensemble run, a prediction).
    pub(super) seconds: f64,
    /// The same unit's GPU time from timestamp queries, where the adapter has them.
    pub(super) gpu_seconds: Option<f64>,
    /// Work done in that unit, counted in `unit`s.
    pub(super) items: f64,
    pub(super) unit: &'static str,
    /// Counted floating-point operations in that unit (`ode::cost` conventions).
    pub(super) flops: Option<f64>,
    /// Bytes the unit must move at the least (inputs read, results written).
    pub(super) bytes: Option<f64>,
    pub(super) check: String,
    /// Achieved error against an independent reference, where the scenario has one.
    pub(super) error: Option<f64>,
    /// GPU time of each dispatch of one step (timestamp queries), where measured.
    pub(super) passes: Vec<(&'static str, f64)>,
    /// A line of the scenario's own figures.
    pub(super) note: Option<String>,
}

impl Row {
    pub(super) fn new(
        scenario: Scenario,
        what: &str,
        size: usize,
        seconds: f64,
        (items, unit): (f64, &'static str),
        check: String,
    ) -> Row {
        Row {
            scenario: scenario.name(),
            what: what.into(),
            size,
            precision: Precision::F32,
            seconds,
            gpu_seconds: None,
            items,
            unit,
            flops: None,
            bytes: None,
            check,
            error: None,
            passes: Vec::new(),
            note: None,
        }
    }

    /// Each dispatch's GPU time from a profiled step, and their sum as the step's GPU time.
    pub(super) fn set_passes(&mut self, passes: Option<Vec<(&'static str, std::time::Duration)>>) {
        if let Some(passes) = passes {
            self.passes = passes
                .into_iter()
                .map(|(label, t)| (label, t.as_secs_f64()))
                .collect();
            self.gpu_seconds = Some(self.passes.iter().map(|p| p.1).sum());
        }
    }

    /// Items per second of wall time.
    pub(super) fn throughput(&self) -> f64 {
        self.items / self.seconds
    }

    /// The device's time for the unit: GPU time where measured, wall time otherwise.
    pub(super) fn device_seconds(&self) -> f64 {
        self.gpu_seconds.unwrap_or(self.seconds)
    }

    pub(super) fn flops_per_s(&self) -> Option<f64> {
        self.flops.map(|f| f / self.device_seconds())
    }

    pub(super) fn bytes_per_s(&self) -> Option<f64> {
        self.bytes.map(|b| b / self.device_seconds())
    }

    /// Counted FLOP/s as a share of the measured FMA ceiling in the row's precision.
    pub(super) fn share_of_peak_flops(&self, peak: &Peak) -> Option<f64> {
        let ceiling = match self.precision {
            Precision::F32 => Some(peak.f32_flops),
            Precision::F64 => peak.f64_flops,
        }?;
        self.flops_per_s().map(|f| f / ceiling)
    }

    pub(super) fn share_of_peak_bytes(&self, peak: &Peak) -> Option<f64> {
        self.bytes_per_s().map(|b| b / peak.bytes_per_s)
    }
}
