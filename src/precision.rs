//! The floating-point precision a run computes and stores in.

use serde::{Deserialize, Serialize};

/// Floating-point precision of a run: of the kernel's arithmetic, its buffers and the saved
/// states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    /// Needs an adapter with SHADER_F64 and SHADER_INT64; transcendental functions come from phaseflow's own
    /// f64 math library (`shaders/common/math_f64.wgsl`).
    F64,
}

impl Precision {
    pub fn bytes(self) -> u64 {
        match self {
            Precision::F32 => 4,
            Precision::F64 => 8,
        }
    }

    pub fn wgsl(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }

    pub fn name(self) -> &'static str {
        self.wgsl()
    }

    /// Machine epsilon of the precision.
    pub fn eps(self) -> f64 {
        match self {
            Precision::F32 => f32::EPSILON as f64,
            Precision::F64 => f64::EPSILON,
        }
    }

    /// `v` rounded to this precision, as the device sees it.
    pub fn round(self, v: f64) -> f64 {
        match self {
            Precision::F32 => v as f32 as f64,
            Precision::F64 => v,
        }
    }

    /// Appends `v` in this precision's little-endian bytes.
    pub fn push_bytes(self, v: f64, out: &mut Vec<u8>) {
        match self {
            Precision::F32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
            Precision::F64 => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
}
