//! Planning how a run is cut into pieces the device can hold, and the readback ring that
//! keeps the device busy while the host consumes results.

pub mod plan;
pub mod ring;

pub use plan::{DeviceLimits, Plan, PlanCaps, PlanError, RunShape};
pub use ring::ReadbackRing;
