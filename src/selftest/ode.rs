//! The ODE, SDE and Lyapunov kernels against their CPU twins on small random ensembles:
//! random initial states in a box around the system's default and parameters scaled by
//! random factors, so that a wrong coefficient, index or operation shows on some trajectory.
//! Each comparison uses the bounds the test suite states and justifies for the same family
//! (tests/adaptive.rs, stiff_gpu.rs, sde.rs, lyapunov.rs, integrators.rs).

use super::check::{Check, deviation, round, worst_relative};
use crate::gpu::GpuContext;
use crate::model::{System, builtin};
use crate::ode::adaptive::cpu as adaptive_cpu;
use crate::ode::lyapunov::cpu::spectrum;
use crate::ode::lyapunov::{LyapunovProblem, lyapunov_spectra};
use crate::ode::sde::cpu::integrate_fixed;
use crate::ode::sde::kernel::Terms;
use crate::ode::sde::noise::NoiseKey;
use crate::ode::sde::{SdeMethod, SdeProblem, Steps, simulate_sde};
use crate::ode::stiff::cpu as stiff_cpu;
use crate::ode::stiff::problem::Jacobians;
use crate::ode::stiff::{StiffMethod, StiffProblem, simulate_stiff};
use crate::ode::{
    AdaptiveProblem, Axis, Control, Ensemble, FixedStepProblem, InitialStates, Parameters,
    Precision, RunOptions, Save, SaveAt, SavePlan, Solution, Solver, Status, Table, TimeGrid,
    Tolerance,
};
use crate::rng::uniform_f64;

/// Trajectories per check: enough to cover several chunks of lanes, few enough that the
/// twin runs in a blink.
const N: usize = 16;

fn system(name: &str) -> Result<System, String> {
    match builtin(name) {
        Some(Ok(s)) => Ok(s),
        _ => Err(format!("the built-in system {name} does not load")),
    }
}

/// `n` trajectories: states uniform within ±`spread`·max(1, |u|) of the default, every
/// parameter its default times a factor uniform in [0.8, 1.25].
fn random_ensemble(s: &System, n: usize, spread: f64, seed: u64) -> Ensemble {
    let mut e = Ensemble::new(s, n);
    let u = s.default_state();
    e.initial = InitialStates::Uniform {
        seed,
        ranges: (0..s.dim())
            .map(|c| {
                let w = spread * u[c].abs().max(1.0);
                (c, u[c] - w, u[c] + w)
            })
            .collect(),
    };
    let p = s.default_params();
    if !p.is_empty() {
        let data = (0..n * p.len())
            .map(|k| p[k % p.len()] * (0.8 + 0.45 * uniform_f64(seed, k as u64, 77)))
            .collect();
        e.params = Parameters::Table(Table {
            data,
            rows: n,
            cols: p.len(),
            origin: "selftest".into(),
        });
    }
    e
}

fn control(rtol: f64, atol: f64) -> Control {
    Control {
        rtol: Tolerance::All(rtol),
        atol: Tolerance::All(atol),
        ..Control::default()
    }
}

/// The worst deviation from the twin over a run's trajectories, and the first mismatch that
/// is not a number (a status, a save count).
#[derive(Default)]
struct Tally {
    worst: f64,
    note: String,
}

impl Tally {
    fn mismatch(&mut self, why: String) {
        if self.note.is_empty() {
            self.note = why;
        }
    }

    fn status(&mut self, j: usize, got: Status, twin: Status) {
        if got != twin {
            self.mismatch(format!("trajectory {j}: status {got:?}, twin {twin:?}"));
        }
    }

    /// Trajectory `j`'s saves against the twin's ([slot][dim]), one save at a time.
    fn saves(
        &mut self,
        sol: &Solution,
        j: usize,
        twin: &[f64],
        measure: impl Fn(&[f64], &[f64]) -> f64,
    ) {
        let dim = sol.dim;
        if twin.len() != sol.n_save() * dim {
            self.worst = f64::INFINITY;
            let saves = twin.len() / dim.max(1);
            self.mismatch(format!(
                "trajectory {j}: {} saves, twin {saves}",
                sol.n_save()
            ));
            return;
        }
        for slot in 0..sol.n_save() {
            let want = &twin[slot * dim..(slot + 1) * dim];
            self.worst = self.worst.max(measure(&sol.state(slot, j), want));
        }
    }

    fn check(
        self,
        family: &'static str,
        case: String,
        precision: Precision,
        bound: (f64, &'static str),
    ) -> Check {
        Check::measured(
            family,
            case,
            precision,
            (self.worst, bound.0, bound.1),
            self.note,
        )
    }
}

/// Every solver's fixed-step form (the three fixed tableaus and each adaptive pair's
/// propagating method) on Lorenz, and RK4 on the pendulum (sin through the f64 math
/// library), 200 steps saved every 50.
///
/// Bounds, relative to the state's scale: f64 runs the same operations in the same order,
/// so only the math library's ulps and fused multiply-adds remain (tests/integrators.rs
/// measures ≤ 2.2e-16, bound 1e-11); f32 rounds every stage (6e-8) and Lorenz amplifies
/// that by about e^(0.9·1) over the span: measured ≤ 1e-6 on lavapipe, bound 1e-4.
pub fn fixed(ctx: &GpuContext, precision: Precision, seed: u64) -> Result<Vec<Check>, String> {
    let bound = match precision {
        Precision::F64 => 1e-11,
        Precision::F32 => 1e-4,
    };
    let mut cases: Vec<(&str, Solver)> = Solver::ALL.iter().map(|&s| ("lorenz", s)).collect();
    cases.push(("pendulum", Solver::Rk4));
    let mut checks = Vec::new();
    for (name, solver) in cases {
        let s = system(name)?;
        let dt = s.meta.dt.unwrap_or(0.01);
        let p = FixedStepProblem {
            ensemble: random_ensemble(&s, N, 0.5, seed),
            system: s,
            solver,
            grid: TimeGrid::from_span(0.0, 200.0 * dt, dt).map_err(|e| e.to_string())?,
            save: Save::Every(50),
            precision,
        };
        let case = format!("{} {name}", solver.name());
        let sol = match crate::ode::simulate(ctx, &p, &RunOptions::default()) {
            Ok(sol) => sol,
            Err(e) => {
                checks.push(Check::failed("fixed", case, precision, e.to_string()));
                continue;
            }
        };
        let plan = SavePlan::new(p.save, p.grid.n_steps).map_err(|e| e.to_string())?;
        let tableau = solver.step_tableau();
        let mut tally = Tally::default();
        for j in 0..N {
            let (saves, status) = crate::ode::fixed::cpu::integrate(
                &p.system,
                &tableau,
                &round(precision, p.ensemble.states(j..j + 1)),
                &round(precision, p.ensemble.param_slots(j..j + 1)),
                &p.grid,
                &plan,
            );
            tally.status(j, sol.status[j], status);
            tally.saves(&sol, j, &saves, worst_relative);
        }
        checks.push(tally.check("fixed", case, precision, (bound, "rel. to state")));
    }
    Ok(checks)
}

/// Every embedded pair on Lorenz over t ∈ [0, 2], saved on a grid through the dense
/// output. Bounds as in tests/adaptive.rs: f64 at tolerance 1e-9, both sides take the same
/// steps (measured ≤ 2.5e-13 relative, bound 1e-11); f32 at 1e-6, roundings accumulate
/// over hundreds of steps (measured ≤ 6.3e-5, bound 5e-4).
pub fn adaptive(ctx: &GpuContext, precision: Precision, seed: u64) -> Result<Vec<Check>, String> {
    let (tol, bound) = match precision {
        Precision::F64 => (1e-9, 1e-11),
        Precision::F32 => (1e-6, 5e-4),
    };
    let mut checks = Vec::new();
    for solver in Solver::ADAPTIVE {
        let s = system("lorenz")?;
        let t1 = 2.0;
        let p = AdaptiveProblem {
            ensemble: random_ensemble(&s, N, 0.5, seed),
            system: s,
            solver,
            t0: 0.0,
            t1,
            saveat: SaveAt::grid(0.0, t1 / 8.0, t1).map_err(|e| e.to_string())?,
            control: control(tol, tol),
            precision,
        };
        let case = format!("{} lorenz", solver.name());
        let sol = match crate::ode::simulate_adaptive(ctx, &p, &RunOptions::default()) {
            Ok(sol) => sol,
            Err(e) => {
                checks.push(Check::failed("adaptive", case, precision, e.to_string()));
                continue;
            }
        };
        let times = round(precision, p.saveat.times(p.t1));
        let pair = solver.pair().expect("an adaptive solver has a pair");
        let setup = adaptive_cpu::Setup {
            system: &p.system,
            pair,
            control: &p.control,
            t0: p.t0,
            t1: p.t1,
            save_times: &times,
        };
        let mut tally = Tally::default();
        for j in 0..N {
            let twin = adaptive_cpu::integrate(
                &setup,
                &round(precision, p.ensemble.states(j..j + 1)),
                &round(precision, p.ensemble.param_slots(j..j + 1)),
            );
            tally.status(j, sol.status[j], twin.status);
            tally.saves(&sol, j, &twin.saves, worst_relative);
        }
        checks.push(tally.check("adaptive", case, precision, (bound, "rel. to state")));
    }
    Ok(checks)
}

/// Every stiff method on ROBER (rates scaled per trajectory) over t ∈ [0, 1000], saved on a
/// grid through the dense output, deviations in units of the tolerance at the save's size,
/// and the final state per component in tolerances at the component's own size.
/// Saves: f64 (rtol 1e-7) runs the same algorithm, but a near-tie of the accept test may
/// flip (accepted counts within 2%), after which the two solutions differ by about the
/// local error the controller allows: over seeds 1–12, ≤ 0.53 tolerances (auto), bound 5;
/// f32 (rtol 1e-4): the dense output's cancellation amplifies rounding by h|λ|, measured
/// ≤ 113 tolerances in tests/stiff_gpu.rs, bound 300, step counts not compared. Final
/// states carry no such cancellation: ≤ 0.3 tolerances over seeds 1–12, bound 3.
pub fn stiff(ctx: &GpuContext, precision: Precision, seed: u64) -> Result<Vec<Check>, String> {
    let (c, steps, bound) = match precision {
        Precision::F64 => (control(1e-7, 1e-10), Some(0.02), (5.0, 3.0)),
        Precision::F32 => (control(1e-4, 1e-7), None, (300.0, 3.0)),
    };
    let mut checks = Vec::new();
    for method in StiffMethod::ALL {
        let s = system("rober")?;
        let t1 = 1e3;
        let jacobians = Jacobians::of(&s).map_err(|e| e.to_string())?;
        let mut ensemble = Ensemble::new(&s, N);
        ensemble.params = random_ensemble(&s, N, 0.0, seed).params;
        let p = StiffProblem {
            ensemble,
            system: s,
            method,
            t0: 0.0,
            t1,
            saveat: SaveAt::grid(0.0, t1 / 8.0, t1).map_err(|e| e.to_string())?,
            control: c.clone(),
            precision,
        };
        let case = format!("{} rober", method.name());
        let sol = match simulate_stiff(ctx, &p, &RunOptions::default()) {
            Ok(sol) => sol,
            Err(e) => {
                checks.push(Check::failed("stiff", case, precision, e.to_string()));
                continue;
            }
        };
        let times = round(precision, p.saveat.times(p.t1));
        let setup = stiff_cpu::Setup {
            system: &p.system,
            method,
            jacobians: &jacobians,
            control: &p.control,
            t0: p.t0,
            t1: p.t1,
            save_times: &times,
        };
        let rtol = p.control.rtol.values(p.system.dim());
        let atol = p.control.atol.values(p.system.dim());
        // Saves in tolerances at the save's size; final states per component in
        // tolerances at the component's own size, so that a small species (ROBER's y2 stays
        // below 4e-5) is held to its own digits.
        let (mut saves, mut last) = (Tally::default(), Tally::default());
        for j in 0..N {
            let twin = stiff_cpu::integrate(
                &setup,
                &round(precision, p.ensemble.states(j..j + 1)),
                &round(precision, p.ensemble.param_slots(j..j + 1)),
            );
            saves.status(j, sol.status[j], twin.status);
            if let (Some(limit), Some(counts)) = (steps, sol.steps.as_ref()) {
                let (g, w) = (
                    counts[j].accepted as f64,
                    twin.counts.accepted.max(1) as f64,
                );
                if (g - w).abs() / w > limit {
                    saves.mismatch(format!("trajectory {j}: {g} accepted steps, twin {w}"));
                }
            }
            saves.saves(&sol, j, &twin.saves, |got, want| {
                let size = want.iter().map(|v| v.abs()).fold(0.0, f64::max);
                (0..got.len())
                    .map(|k| deviation(got[k], want[k], atol[k] + rtol[k] * size))
                    .fold(0.0, f64::max)
            });
            let n_save = sol.n_save();
            let want = twin
                .saves
                .get((n_save - 1) * sol.dim..n_save * sol.dim)
                .unwrap_or(&[]);
            let got = sol.state(n_save - 1, j);
            if want.len() == got.len() {
                for k in 0..got.len() {
                    let scale = atol[k] + rtol[k] * want[k].abs();
                    last.worst = last.worst.max(deviation(got[k], want[k], scale));
                }
            }
        }
        checks.push(saves.check("stiff", case.clone(), precision, (bound.0, "tolerances")));
        let case = format!("{case}, final state per component");
        checks.push(last.check("stiff", case, precision, (bound.1, "tolerances")));
    }
    Ok(checks)
}

/// Every fixed-step SDE method stochastic Lorenz admits, 200 steps: the same Brownian
/// increments (keyed by seed, trajectory and step) and the same formulas on both sides.
/// Bounds as in tests/sde.rs, relative to max(1, |x|): f64 1e-9, f32 2e-4.
pub fn sde(ctx: &GpuContext, precision: Precision, seed: u64) -> Result<Vec<Check>, String> {
    let bound = match precision {
        Precision::F64 => 1e-9,
        Precision::F32 => 2e-4,
    };
    let s = system("stochastic_lorenz")?;
    let mut checks = Vec::new();
    for method in SdeMethod::ALL {
        let Ok(terms) = Terms::new(&s, method) else {
            continue;
        };
        if method.is_adaptive() {
            continue;
        }
        let dt = s.meta.dt.unwrap_or(1e-3);
        let grid = TimeGrid::from_span(0.0, 200.0 * dt, dt).map_err(|e| e.to_string())?;
        let save = Save::Every(50);
        let p = SdeProblem {
            ensemble: random_ensemble(&s, N, 0.5, seed),
            system: s.clone(),
            method,
            steps: Steps::Fixed { grid, save },
            noise: NoiseKey {
                seed,
                antithetic: false,
            },
            precision,
        };
        let case = format!("{} stochastic_lorenz", method.name());
        let sol = match simulate_sde(ctx, &p, &RunOptions::default()) {
            Ok(sol) => sol,
            Err(e) => {
                checks.push(Check::failed("sde", case, precision, e.to_string()));
                continue;
            }
        };
        let plan = SavePlan::new(save, grid.n_steps).map_err(|e| e.to_string())?;
        let mut tally = Tally::default();
        for j in 0..N {
            let (saves, status) = integrate_fixed(
                &p.system,
                &terms,
                method,
                &p.noise,
                j as u64,
                (
                    &round(precision, p.ensemble.states(j..j + 1)),
                    &round(precision, p.ensemble.param_slots(j..j + 1)),
                ),
                &grid,
                &plan,
            );
            tally.status(j, sol.status[j], status);
            tally.saves(&sol, j, &saves, |got, want| {
                got.iter()
                    .zip(want)
                    .map(|(&g, &w)| deviation(g, w, w.abs().max(1.0)))
                    .fold(0.0, f64::max)
            });
        }
        checks.push(tally.check("sde", case, precision, (bound, "rel. to max(1,|x|)")));
    }
    Ok(checks)
}

/// The full Lyapunov spectrum of Lorenz over ρ ∈ [0, 60] (fixed points, periodic windows
/// and chaos), 0.5 of transient and 3 of averaging, exponents and their block errors.
/// Bounds as in tests/lyapunov.rs, absolute: f64 1e-9, f32 2e-3.
pub fn lyapunov(ctx: &GpuContext, precision: Precision, seed: u64) -> Result<Vec<Check>, String> {
    let bound = match precision {
        Precision::F64 => 1e-9,
        Precision::F32 => 2e-3,
    };
    let mut p = LyapunovProblem::new(system("lorenz")?, N, 0.005, 0.5, 3.0);
    p.renorm = 0.1;
    p.precision = precision;
    p.ensemble.initial = InitialStates::Uniform {
        seed,
        ranges: vec![(0, -10.0, 10.0), (1, -10.0, 10.0), (2, 10.0, 40.0)],
    };
    p.ensemble.params = Parameters::Sweep(vec![Axis::linear(1, 0.0, 60.0)]);
    let case = "rk4 lorenz, full spectrum".to_string();
    let got = match lyapunov_spectra(ctx, &p, &RunOptions::default()) {
        Ok(r) => r,
        Err(e) => {
            return Ok(vec![Check::failed(
                "lyapunov",
                case,
                precision,
                e.to_string(),
            )]);
        }
    };
    let (steps, jacobian) = p.check().map_err(|e| e.to_string())?;
    let mut tally = Tally::default();
    for j in 0..N {
        let e = &p.ensemble;
        let want = spectrum(
            &p.system,
            &jacobian,
            &p.tableau,
            &steps,
            p.k,
            &e.states(j..j + 1),
            &e.param_slots(j..j + 1),
        );
        tally.status(j, got.status[j], want.status);
        for m in 0..p.k {
            let d = deviation(got.exponents(j)[m], want.exponents[m], 1.0);
            let de = deviation(got.errors(j)[m], want.errors[m], 1.0);
            tally.worst = tally.worst.max(d).max(de);
        }
    }
    Ok(vec![tally.check(
        "lyapunov",
        case,
        precision,
        (bound, "absolute"),
    )])
}
