//! A parameter sweep through the library API: 10,000 Lorenz systems with rho from 0 to 50,
//! integrated to t = 20 with adaptive Tsit5 (each trajectory its own step size), saved on a
//! common grid; prints how the long-time z range changes with rho (fixed points below
//! rho ≈ 24.74, chaos above).
//!
//!     cargo run --release --example lorenz_sweep

use phaseflow::gpu::{AdapterChoice, GpuContext};
use phaseflow::model::builtin;
use phaseflow::ode::{
    self, AdaptiveProblem, Axis, Control, Ensemble, Parameters, Precision, SaveAt, Solver,
    Tolerance,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = GpuContext::new(&AdapterChoice::Best)?;
    let system = builtin("lorenz").expect("built-in")?;
    let rho = system.param_index("rho").expect("lorenz has rho");
    let n = 10_000;
    let mut ensemble = Ensemble::new(&system, n);
    ensemble.params = Parameters::Sweep(vec![Axis::linear(rho, 0.0, 50.0)]);
    let problem = AdaptiveProblem {
        system,
        solver: Solver::Tsit5,
        t0: 0.0,
        t1: 20.0,
        saveat: SaveAt::grid(10.0, 0.05, 20.0)?,
        control: Control {
            rtol: Tolerance::All(1e-6),
            atol: Tolerance::All(1e-6),
            ..Control::default()
        },
        ensemble,
        precision: Precision::F32,
    };
    let sol = ode::simulate_adaptive(&ctx, &problem, &ode::RunOptions::default())?;
    println!(
        "{} on {}: {:.3e} step attempts/s, {:?}",
        problem.system.name(),
        ctx.summary.name,
        sol.stats.throughput(),
        sol.status_counts()
    );
    println!("   rho   z range over t in [10, 20]");
    for j in (0..n).step_by(n / 20) {
        let (lo, hi) = (0..sol.n_save())
            .map(|s| sol.state(s, j)[2])
            .fold((f64::MAX, f64::MIN), |(a, b), z| (a.min(z), b.max(z)));
        println!(
            "{:6.2}   {:7.3} .. {:7.3}",
            problem.ensemble.params(j..j + 1)[rho],
            lo,
            hi
        );
    }
    Ok(())
}
