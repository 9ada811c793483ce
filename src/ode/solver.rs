//! The solvers a user can name, one enum across every method family: each names a
//! fixed-step tableau, an adaptive embedded pair or an SDE method.

use super::adaptive::pair::{BS3, DOP853, DP5, Pair, TSIT5};
use super::fixed::tableau::{EULER, HEUN, RK4, Tableau};
use super::sde::SdeMethod;
use super::stiff::StiffMethod;
use serde::{Deserialize, Serialize};

/// A solver the user can name: fixed-step Runge–Kutta methods and adaptive embedded pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// Forward Euler, order 1 (fixed step).
    Euler,
    /// Heun's method (RK2, explicit trapezoid), order 2 (fixed step).
    Heun,
    /// Classic Runge–Kutta, order 4 (fixed step).
    #[default]
    Rk4,
    /// Bogacki–Shampine 3(2), adaptive, cubic Hermite dense output.
    Bs3,
    /// Dormand–Prince 5(4), adaptive, fourth-order dense output.
    Dp5,
    /// Tsitouras 5(4), adaptive, fourth-order dense output.
    Tsit5,
    /// Dormand–Prince 8(5,3), adaptive, seventh-order dense output; for tight tolerances.
    Dop853,
    /// SDE: Euler–Maruyama (Itô), strong order 0.5, weak 1 (fixed step).
    Em,
    /// SDE: Milstein with the symbolic ∂g/∂x, strong order 1; diagonal or scalar noise.
    Milstein,
    /// SDE: stochastic Heun (Stratonovich), fixed step.
    #[serde(rename = "euler-heun")]
    EulerHeun,
    /// SDE: Platen's explicit weak order 2 scheme (Itô), fixed step.
    Platen,
    /// SDE: Milstein with step-size control over a virtual Brownian tree.
    #[serde(rename = "milstein-adaptive")]
    MilsteinAdaptive,
    /// Stiff: Shampine–Reichelt Rosenbrock 2(3), L-stable; robust at loose tolerances.
    Rosenbrock23,
    /// Stiff: Hairer–Wanner RODAS, order 4(3), stiffly accurate.
    Rodas4,
    /// Stiff: Steinebach's Rodas5P, order 5(4), stiffly accurate; the default stiff solver.
    #[cfg_attr(feature = "cli", value(name = "rodas5p"))]
    Rodas5P,
    /// Tsit5 while a trajectory is not stiff, Rodas5P while it is, switched per trajectory.
    Auto,
}

impl Solver {
    /// The ODE solvers (fixed-step tableaus and adaptive pairs).
    pub const ALL: [Solver; 7] = [
        Solver::Euler,
        Solver::Heun,
        Solver::Rk4,
        Solver::Bs3,
        Solver::Dp5,
        Solver::Tsit5,
        Solver::Dop853,
    ];
    /// The SDE methods (`ode::sde`), which need a system with a noise block.
    pub const SDE: [Solver; 5] = [
        Solver::Em,
        Solver::Milstein,
        Solver::EulerHeun,
        Solver::Platen,
        Solver::MilsteinAdaptive,
    ];
    /// The stiff methods (`ode::stiff`): Rosenbrock–Wanner and automatic switching.
    pub const STIFF: [Solver; 4] = [
        Solver::Rosenbrock23,
        Solver::Rodas4,
        Solver::Rodas5P,
        Solver::Auto,
    ];
    pub const FIXED: [Solver; 3] = [Solver::Euler, Solver::Heun, Solver::Rk4];
    pub const ADAPTIVE: [Solver; 4] = [Solver::Bs3, Solver::Dp5, Solver::Tsit5, Solver::Dop853];

    /// The tableau of a fixed-step solver.
    pub fn tableau(self) -> Option<&'static Tableau> {
        match self {
            Solver::Euler => Some(&EULER),
            Solver::Heun => Some(&HEUN),
            Solver::Rk4 => Some(&RK4),
            _ => None,
        }
    }

    /// The embedded pair of an adaptive solver.
    pub fn pair(self) -> Option<&'static Pair> {
        match self {
            Solver::Bs3 => Some(&BS3),
            Solver::Dp5 => Some(&DP5),
            Solver::Tsit5 => Some(&TSIT5),
            Solver::Dop853 => Some(&DOP853),
            _ => None,
        }
    }

    /// The method a fixed step of this solver takes: a fixed-step solver's tableau, or an
    /// adaptive pair's propagating method without error control (DiffEqGPU's `adaptive =
    /// false`, as in its published fixed-step Tsit5 runs). A pair's FSAL stage is left out:
    /// it evaluates f at the new state, which only the next step's first stage needs.
    pub fn step_tableau(self) -> Tableau {
        if let Some(t) = self.tableau() {
            return *t;
        }
        let p = self.pair().expect("every solver has a tableau or a pair");
        let s = p.stages();
        let fsal = p.b[s - 1] == 0.0 && p.c[s - 1] == 1.0 && p.a[s - 1] == &p.b[..s - 1];
        let kept = if fsal { s - 1 } else { s };
        Tableau {
            name: p.name,
            order: p.order,
            a: &p.a[..kept],
            b: &p.b[..kept],
            c: &p.c[..kept],
        }
    }

    /// Whether steps are controlled: the ODE pairs, milstein-adaptive and the stiff solvers.
    pub fn is_adaptive(self) -> bool {
        self.pair().is_some() || self == Solver::MilsteinAdaptive || self.is_stiff()
    }

    /// The stiff method this solver names, if it is one.
    pub fn stiff_method(self) -> Option<StiffMethod> {
        Some(match self {
            Solver::Rosenbrock23 => StiffMethod::Rosenbrock23,
            Solver::Rodas4 => StiffMethod::Rodas4,
            Solver::Rodas5P => StiffMethod::Rodas5P,
            Solver::Auto => StiffMethod::Auto,
            _ => return None,
        })
    }

    pub fn is_stiff(self) -> bool {
        self.stiff_method().is_some()
    }

    /// The SDE method this solver names, if it is one.
    pub fn sde_method(self) -> Option<SdeMethod> {
        Some(match self {
            Solver::Em => SdeMethod::EulerMaruyama,
            Solver::Milstein => SdeMethod::Milstein,
            Solver::EulerHeun => SdeMethod::EulerHeun,
            Solver::Platen => SdeMethod::Platen,
            Solver::MilsteinAdaptive => SdeMethod::MilsteinAdaptive,
            _ => return None,
        })
    }

    pub fn is_sde(self) -> bool {
        self.sde_method().is_some()
    }

    pub fn name(self) -> &'static str {
        if let Some(m) = self.sde_method() {
            return m.name();
        }
        if let Some(m) = self.stiff_method() {
            return m.name();
        }
        match (self.tableau(), self.pair()) {
            (Some(t), _) => t.name,
            (_, Some(p)) => p.name,
            _ => unreachable!("every ODE solver has a tableau or a pair"),
        }
    }

    pub fn from_name(name: &str) -> Option<Solver> {
        Solver::ALL
            .into_iter()
            .chain(Solver::SDE)
            .chain(Solver::STIFF)
            .find(|s| s.name() == name.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tsit5's and DP5's fixed steps take six stages (their seventh is the FSAL stage);
    /// DOP853's twelve.
    #[test]
    fn fixed_steps_of_pairs_leave_out_the_fsal_stage() {
        let stages = |s: Solver| s.step_tableau().stages();
        assert_eq!(stages(Solver::Tsit5), 6);
        assert_eq!(stages(Solver::Dp5), 6);
        assert_eq!(stages(Solver::Bs3), 3);
        assert_eq!(stages(Solver::Rk4), 4);
        assert_eq!(stages(Solver::Dop853), 12);
        assert_eq!(Solver::Tsit5.step_tableau().order, 5);
        for s in Solver::ALL {
            let t = s.step_tableau();
            assert_eq!(
                (t.a.len(), t.c.len()),
                (t.stages(), t.stages()),
                "{}",
                t.name
            );
        }
    }

    /// Order conditions up to each method's order (Butcher's trees up to order 4).
    #[test]
    fn tableaus_satisfy_their_order_conditions() {
        for s in Solver::ALL {
            let t = &s.step_tableau();
            let n = t.stages();
            let a = |i: usize, j: usize| t.a[i].get(j).copied().unwrap_or(0.0);
            for i in 0..n {
                let row: f64 = t.a[i].iter().sum();
                assert!((row - t.c[i]).abs() < 1e-13, "{}: row sum {i}", t.name);
            }
            // DOP853's rows sum a dozen f64-rounded coefficients of size up to ~20:
            // rounding reaches 1e-14; a wrong coefficient is off by far more.
            let sum = |f: &dyn Fn(usize) -> f64| (0..n).map(f).sum::<f64>();
            let close = |x: f64, y: f64| (x - y).abs() < 1e-13;
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
