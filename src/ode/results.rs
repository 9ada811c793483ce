//! What a method family reports per trajectory beyond statuses, step counts and saves:
//! event logs, Lyapunov exponents. A family that has such results names a device buffer
//! (`runner::Family::results`) that the runner clears when a chunk starts and reads back
//! after the chunk's last batch, and decodes it into `ChunkResults` for the sink
//! (`Sink::results`), so that results stream chunk by chunk like saves.

/// One chunk's per-trajectory results, trajectory-major.
#[derive(Debug, Clone, PartialEq)]
pub enum ChunkResults {
    /// `width` values per trajectory of the chunk.
    Rows(Rows),
    /// Event logs (`ode::events`): counts and the first K records per trajectory.
    Events(crate::ode::events::EventLog),
}

/// `width` values per trajectory, trajectory-major: `values[j * width + c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub width: usize,
    pub values: Vec<f64>,
}

impl Rows {
    /// Trajectory `j`'s row.
    pub fn row(&self, j: usize) -> &[f64] {
        &self.values[j * self.width..(j + 1) * self.width]
    }

    /// Trajectories in the chunk.
    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.width).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
