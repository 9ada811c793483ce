//! Planning how a run is cut into pieces the device can hold.

pub mod plan;

pub use plan::{DeviceLimits, Plan, PlanCaps, PlanError, RunShape};
