//! Butcher tableaus of explicit Runge–Kutta methods. The same numbers drive the WGSL
//! generator and the CPU reference integrator.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tableau {
    pub name: &'static str,
    pub order: u32,
    /// Strictly lower-triangular: `a[i]` has `i` entries.
    pub a: &'static [&'static [f64]],
    pub b: &'static [f64],
    pub c: &'static [f64],
}

impl Tableau {
    pub fn stages(&self) -> usize {
        self.b.len()
    }
}

pub const EULER: Tableau = Tableau {
    name: "euler",
    order: 1,
    a: &[&[]],
    b: &[1.0],
    c: &[0.0],
};

/// Heun's method (explicit trapezoidal rule).
pub const HEUN: Tableau = Tableau {
    name: "heun",
    order: 2,
    a: &[&[], &[1.0]],
    b: &[0.5, 0.5],
    c: &[0.0, 1.0],
};

/// The classic fourth-order Runge–Kutta method.
pub const RK4: Tableau = Tableau {
    name: "rk4",
    order: 4,
    a: &[&[], &[0.5], &[0.0, 0.5], &[0.0, 0.0, 1.0]],
    b: &[1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
    c: &[0.0, 0.5, 0.5, 1.0],
};

/// A fixed-step solver the user can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// Forward Euler, order 1.
    Euler,
    /// Heun's method (RK2, explicit trapezoid), order 2.
    Heun,
    /// Classic Runge–Kutta, order 4.
    #[default]
    Rk4,
}

impl Solver {
    pub const ALL: [Solver; 3] = [Solver::Euler, Solver::Heun, Solver::Rk4];

    pub fn tableau(self) -> &'static Tableau {
        match self {
            Solver::Euler => &EULER,
            Solver::Heun => &HEUN,
            Solver::Rk4 => &RK4,
        }
    }

    pub fn name(self) -> &'static str {
        self.tableau().name
    }

    pub fn from_name(name: &str) -> Option<Solver> {
        Solver::ALL
            .into_iter()
            .find(|s| s.name() == name.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Order conditions up to each method's order (Butcher's trees up to order 4).
    #[test]
    fn tableaus_satisfy_their_order_conditions() {
        for s in Solver::ALL {
            let t = s.tableau();
            let n = t.stages();
            let a = |i: usize, j: usize| t.a[i].get(j).copied().unwrap_or(0.0);
            for i in 0..n {
                let row: f64 = t.a[i].iter().sum();
                assert!((row - t.c[i]).abs() < 1e-15, "{}: row sum {i}", t.name);
            }
            let sum = |f: &dyn Fn(usize) -> f64| (0..n).map(f).sum::<f64>();
            let close = |x: f64, y: f64| (x - y).abs() < 1e-14;
            assert!(close(sum(&|i| t.b[i]), 1.0), "{}", t.name);
            if t.order >= 2 {
                assert!(close(sum(&|i| t.b[i] * t.c[i]), 0.5), "{}", t.name);
            }
            if t.order >= 3 {
                assert!(close(sum(&|i| t.b[i] * t.c[i] * t.c[i]), 1.0 / 3.0));
                assert!(close(
                    sum(&|i| t.b[i] * sum(&|j| a(i, j) * t.c[j])),
                    1.0 / 6.0
                ));
            }
            if t.order >= 4 {
                assert!(close(sum(&|i| t.b[i] * t.c[i].powi(3)), 0.25));
                assert!(close(
                    sum(&|i| t.b[i] * t.c[i] * sum(&|j| a(i, j) * t.c[j])),
                    1.0 / 8.0
                ));
                assert!(close(
                    sum(&|i| t.b[i] * sum(&|j| a(i, j) * t.c[j] * t.c[j])),
                    1.0 / 12.0
                ));
                assert!(close(
                    sum(&|i| t.b[i] * sum(&|j| a(i, j) * sum(&|k| a(j, k) * t.c[k]))),
                    1.0 / 24.0
                ));
            }
        }
    }
}
