//! What a fold reads beside the saves: the observations, their weights and where they sit
//! among the save slots.

/// The observations a fold reads, for the run's trajectories in run order.
#[derive(Debug, Clone)]
pub struct FoldData {
    /// States of the system (the run's rows hold these and their sensitivities).
    pub dim: usize,
    pub n_fit: usize,
    /// Row-major [run trajectory][observation][state]; NaN where not observed.
    pub values: Vec<f64>,
    pub n_obs: usize,
    /// Each state's weight (0: not counted).
    pub weights: Vec<f64>,
    /// The observation each run-wide save slot holds, if any.
    pub slot_observation: Vec<Option<usize>>,
}

impl FoldData {
    /// Whether value `i` of observation `o` of run trajectory `j` counts, and its value.
    pub fn value(&self, j: usize, o: usize, i: usize) -> Option<f64> {
        let y = self.values[(j * self.n_obs + o) * self.dim + i];
        (!y.is_nan() && self.weights[i] > 0.0).then_some(y)
    }
}
