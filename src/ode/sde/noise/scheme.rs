//! The scheme's numbers shared by the twin (`noise.rs`) and the WGSL generator (`wgsl.rs`):
//! tags, limits and the argument checks.

use thiserror::Error;

/// Counter word 3 of the per-step increments ("SDE1").
pub const TAG_STEPS: u32 = 0x5344_4531;
/// Counter word 3 of the Brownian tree's first group of four processes ("SDE2"); group g
/// uses `TAG_TREE + g * 0x100` ([`tree_tag`]).
pub const TAG_TREE: u32 = 0x5344_4532;
/// Counter word 3 of the Brownian bridge normals of an event that cuts a fixed step
/// ("SDE3"); cut c of a grid step and processes `4g .. 4g + 3` use
/// `TAG_BRIDGE + (c * 64 + g) * 0x100` ([`bridge_tag`]), so the low byte (0x33) keeps it
/// apart from the steps' and the tree's streams.
pub const TAG_BRIDGE: u32 = 0x5344_4533;
/// The most Wiener processes a problem may have (keeps `step * m + k` and the tree tags in
/// range).
pub const MAX_WIENER: usize = 256;
/// The deepest Brownian tree: 2^24 leaves (heap nodes and leaf positions stay in u32, and
/// f32 kernels hold leaf positions exactly).
pub const MAX_TREE_DEPTH: u32 = 24;

/// The tag of the tree's normals for processes `4g .. 4g + 3`.
pub fn tree_tag(group: u32) -> u32 {
    TAG_TREE.wrapping_add(group << 8)
}

/// The tag of the bridge normals of cut `cut` (< 64) for processes `4g .. 4g + 3`.
pub fn bridge_tag(cut: u32, group: u32) -> u32 {
    TAG_BRIDGE.wrapping_add((cut * 64 + group) << 8)
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum NoiseError {
    #[error("an SDE needs between 1 and {MAX_WIENER} Wiener processes, not {0}")]
    Processes(usize),
    #[error("the Brownian tree's depth must be at most {MAX_TREE_DEPTH}, not {0}")]
    Depth(u32),
    #[error("the Brownian tree needs finite t0 < t1, not [{t0}, {t1}]")]
    Interval { t0: f64, t1: f64 },
}

/// Checks a count of Wiener processes.
pub fn check_processes(m: usize) -> Result<(), NoiseError> {
    if (1..=MAX_WIENER).contains(&m) {
        Ok(())
    } else {
        Err(NoiseError::Processes(m))
    }
}
