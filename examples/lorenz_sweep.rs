//! A parameter sweep through the library API: 10,000 Lorenz systems with rho from 0 to 50,
//! integrated to t = 20 with RK4; prints how the long-time |z| spread changes with rho
//! (fixed points below rho ≈ 24.74, chaos above).
//!
//!     cargo run --release --example lorenz_sweep

use phaseflow::gpu::{AdapterChoice, GpuContext};
use phaseflow::model::builtin;
use phaseflow::ode::{self, Axis, Ensemble, FixedStepProblem, Parameters, Save, Solver, TimeGrid};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = GpuContext::new(&AdapterChoice::Best)?;
    let system = builtin("lorenz").expect("built-in")?;
    let rho = system.param_index("rho").expect("lorenz has rho");
    let n = 10_000;
    let mut ensemble = Ensemble::new(&system, n);
    ensemble.params = Parameters::Sweep(vec![Axis::linear(rho, 0.0, 50.0)]);
    let problem = FixedStepProblem {
        system,
        solver: Solver::Rk4,
        grid: TimeGrid::from_span(0.0, 20.0, 0.002)?,
        save: Save::Every(500),
        ensemble,
    };
    let sol = ode::simulate(&ctx, &problem, &ode::RunOptions::default())?;
    println!(
        "{} on {}: {:.3e} trajectory-steps/s",
        problem.system.name(),
        ctx.summary.name,
        sol.stats.throughput()
    );
    println!("   rho   z range over t in [10, 20]");
    for j in (0..n).step_by(n / 20) {
        let zs: Vec<f32> = (0..sol.n_save())
            .filter(|&s| sol.times[s] >= 10.0)
            .map(|s| sol.state(s, j)[2])
            .collect();
        let (lo, hi) = zs
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &z| (a.min(z), b.max(z)));
        println!(
            "{:6.2}   {:7.3} .. {:7.3}",
            problem.ensemble.params(j..j + 1)[rho],
            lo,
            hi
        );
    }
    Ok(())
}
