//! What one HTTP request may ask for, and how long an idle connection is kept.

/// What one request may ask for.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Trajectories per simulation.
    pub max_n: usize,
    /// Bytes of saved states (and statuses) per simulation.
    pub max_output_bytes: u64,
    /// Jobs queued and running at once; more get 429.
    pub max_jobs: usize,
    /// Bytes of a JSON request body; more get 413.
    pub max_body_bytes: usize,
    /// Bytes of an uploaded model.
    pub max_model_bytes: usize,
    /// Bytes of states a `format=json` result may spell out.
    pub max_json_bytes: u64,
    /// A connection without a byte of traffic this long is closed (a client that sends
    /// half a request, or nothing, is dropped).
    pub idle_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_n: 10_000_000,
            max_output_bytes: 1 << 30,
            max_jobs: 64,
            max_body_bytes: 1 << 20,
            max_model_bytes: 256 << 20,
            max_json_bytes: 8 << 20,
            idle_timeout: std::time::Duration::from_secs(30),
        }
    }
}
