//! The Rust half of `benches/python_overhead.py`: the same small ensemble run through the
//! library directly (N = 1,000 Lorenz, RK4, 1,000 steps, final state), timed over repeats
//! on a warm engine. Prints one JSON line.
//!
//!     cargo run --release --example python_overhead -- [REPEATS]

use phaseflow::engine::{Engine, EngineConfig, JobOptions};
use phaseflow::model::builtin;
use phaseflow::ode::{
    Axis, Ensemble, FixedStepProblem, Parameters, Precision, Problem, Save, Solver, TimeGrid,
};
use std::time::Instant;

/// What `phaseflow.simulate("lorenz", n=1000, solver="rk4", tspan=(0, 1), dt=1e-3,
/// sweep={"rho": (0, 50)})` builds.
fn problem() -> Problem {
    let system = builtin("lorenz").expect("built in").expect("parses");
    let mut ensemble = Ensemble::new(&system, 1000);
    ensemble.params = Parameters::Sweep(vec![Axis::linear(1, 0.0, 50.0)]);
    Problem::Fixed(FixedStepProblem {
        system,
        solver: Solver::Rk4,
        grid: TimeGrid::from_span(0.0, 1.0, 1e-3).expect("whole steps"),
        save: Save::Final,
        ensemble,
        precision: Precision::F32,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let repeats: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50);
    let engine = Engine::new(EngineConfig::default())?;
    // Warm-up: the kernel is compiled and cached by the first run.
    engine.simulate_blocking(problem(), JobOptions::default())?;
    let mut seconds = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let clock = Instant::now();
        let solution = engine.simulate_blocking(problem(), JobOptions::default())?;
        seconds.push(clock.elapsed().as_secs_f64());
        std::hint::black_box(solution);
    }
    seconds.sort_by(f64::total_cmp);
    println!(
        "{{\"adapter\": \"{}\", \"repeats\": {}, \"median_s\": {:e}, \"min_s\": {:e}}}",
        engine.context().summary.name,
        seconds.len(),
        seconds[seconds.len() / 2],
        seconds[0]
    );
    Ok(())
}
