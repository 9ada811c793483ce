//! Butcher tableaus of explicit Runge–Kutta methods. The same numbers drive the WGSL
//! generator and the CPU reference integrator.

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
