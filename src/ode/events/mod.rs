//! Events in the kernels (`[[events]]` of a system, `model::event`): the WGSL every
//! event-capable family includes (`kernel`), its CPU twin (`cpu`), and the per-trajectory
//! logs the runner reads back and the sinks gather (`log`).
//!
//! Semantics, the same in every kernel and twin: with g0 the condition at a step's start
//! and g1 at its end, "up" fires iff g0 < 0 ≤ g1, "down" iff g0 > 0 ≥ g1, "both" iff
//! either; discrete events fire when g1 > 0. A continuous event is located on the step's
//! continuous extension by the Illinois method; fired events are taken in time order (ties:
//! lower index first); the first terminating or assigning event cuts the step there, and
//! later crossings of that step are dropped. Records keep the first K events per trajectory
//! and count them all (after the transient).

pub mod cpu;
pub mod kernel;
pub mod log;
pub mod sink;

pub use log::EventLog;
pub use sink::EventSink;
