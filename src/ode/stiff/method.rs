//! The stiff methods a user can name.

use super::tableau::{RODAS4, RODAS5P, ROSENBROCK23, Rosenbrock};

/// The largest system the stiff kernels take: W = I/(hγ) − J is factorised in private
/// memory by unrolled code whose size grows with dim³ (POLLU, 20 states, fits).
pub const MAX_STIFF_DIM: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StiffMethod {
    /// Shampine & Reichelt's ode23s: L-stable, order 2 with a third-order error estimate;
    /// robust at loose tolerances.
    Rosenbrock23,
    /// Hairer & Wanner's RODAS (order 4, embedded 3, stiffly accurate).
    Rodas4,
    /// Steinebach's Rodas5P (order 5, embedded 4, stiffly accurate; no order reduction on
    /// Prothero–Robinson).
    Rodas5P,
    /// Tsit5 while the trajectory is not stiff, Rodas5P while it is, switched per
    /// trajectory by a stiffness estimate.
    Auto,
}

impl StiffMethod {
    pub const ALL: [StiffMethod; 4] = [
        StiffMethod::Rosenbrock23,
        StiffMethod::Rodas4,
        StiffMethod::Rodas5P,
        StiffMethod::Auto,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StiffMethod::Rosenbrock23 => "rosenbrock23",
            StiffMethod::Rodas4 => "rodas4",
            StiffMethod::Rodas5P => "rodas5p",
            StiffMethod::Auto => "auto",
        }
    }

    /// The Rosenbrock method that takes the steps (for `Auto`, its stiff partner).
    pub fn tableau(self) -> &'static Rosenbrock {
        match self {
            StiffMethod::Rosenbrock23 => &ROSENBROCK23,
            StiffMethod::Rodas4 => &RODAS4,
            StiffMethod::Rodas5P | StiffMethod::Auto => &RODAS5P,
        }
    }

    /// Whether trajectories switch between Tsit5 and the Rosenbrock method.
    pub fn switches(self) -> bool {
        self == StiffMethod::Auto
    }
}
