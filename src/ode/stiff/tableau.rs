//! Rosenbrock–Wanner methods in Hairer & Wanner's transformed form (Solving ODEs II,
//! §IV.7, (7.4')): with W = I/(hγ) − J, stage i solves
//!
//!   W u_i = f(t + α_i h, y + Σ_{j<i} a_ij u_j) + Σ_{j<i} (c_ij / h) u_j + γ_i h ∂f/∂t
//!
//! and y1 = y + Σ m_i u_i, the error estimate is Σ e_i u_i, and the dense output is
//! y(θ) = (1−θ) y + θ (y1 + (1−θ)(q_0 + θ(q_1 + θ q_2))) with q_k = Σ_i h_ki u_i.
//! The same numbers drive the WGSL generator and the CPU twin.

// Coefficients are written as their sources publish them, with more digits than an f64
// holds, so they can be checked against the papers digit for digit.
#![allow(clippy::excessive_precision)]

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rosenbrock {
    pub name: &'static str,
    /// Order of y1.
    pub order: u32,
    /// Order of the embedded solution: the controller's exponents use error_order + 1.
    pub error_order: u32,
    /// Order of the dense output.
    pub dense_order: u32,
    /// The diagonal γ of W = I/(hγ) − J.
    pub gamma: f64,
    /// Row i (i entries): stage i's argument y + Σ_{j<i} a_ij u_j. Row 0 is empty.
    pub a: &'static [&'static [f64]],
    /// Row i (i entries): stage i's right side adds Σ_{j<i} (c_ij / h) u_j.
    pub c: &'static [&'static [f64]],
    /// Stage times t + α_i h.
    pub alpha: &'static [f64],
    /// Stage i's right side adds γ_i h ∂f/∂t (non-autonomous systems only).
    pub gammas: &'static [f64],
    /// y1 = y + Σ m_i u_i.
    pub m: &'static [f64],
    /// The local error estimate Σ e_i u_i.
    pub e: &'static [f64],
    /// Dense-output rows q_k = Σ_i h_ki u_i (at most three).
    pub h: &'static [&'static [f64]],
}

impl Rosenbrock {
    pub fn stages(&self) -> usize {
        self.alpha.len()
    }

    /// The last stage is evaluated at (t + h, y1), so its f is the next step's first
    /// stage's (Rosenbrock23).
    pub fn fsal(&self) -> bool {
        let s = self.stages();
        self.alpha[s - 1] == 1.0 && self.a[s - 1] == &self.m[..s - 1] && self.m[s - 1] == 0.0
    }

    /// Right-hand-side evaluations of one step attempt (the first stage's f comes from the
    /// previous step for FSAL methods).
    pub fn evals_per_attempt(&self) -> u32 {
        self.stages() as u32 - u32::from(self.fsal())
    }
}

// PLACEHOLDERS (linearly implicit Euler) until the coefficients land.
pub const ROSENBROCK23: Rosenbrock = Rosenbrock {
    name: "rosenbrock23",
    order: 1,
    error_order: 1,
    dense_order: 1,
    gamma: 1.0,
    a: &[&[]],
    c: &[&[]],
    alpha: &[0.0],
    gammas: &[1.0],
    m: &[1.0],
    e: &[1.0],
    h: &[],
};
pub const RODAS4: Rosenbrock = Rosenbrock {
    name: "rodas4",
    ..ROSENBROCK23
};
pub const RODAS5P: Rosenbrock = Rosenbrock {
    name: "rodas5p",
    ..ROSENBROCK23
};
