//! Embedding the engine in a program of your own: one `Engine` shared by threads and by
//! async code, simulations as jobs with progress and cancellation, and a DeepONet trained
//! and then queried with batched predictions.
//!
//!     cargo run --release --example embed_engine

use phaseflow::engine::{Engine, EngineConfig, JobOptions, TrainRequest};
use phaseflow::model::builtin;
use phaseflow::nn::deeponet::DeepONetData;
use phaseflow::nn::deeponet::data::{antiderivative, antiderivative_arch};
use phaseflow::nn::{DeepONetParams, DeepONetTrainConfig, Init, Matrix};
use phaseflow::ode::{
    Axis, Ensemble, FixedStepProblem, Parameters, Precision, Problem, Save, Solver, TimeGrid,
};
use std::sync::Arc;

fn lorenz_sweep(n: usize, rho_hi: f64) -> Problem {
    let system = builtin("lorenz").expect("built in").expect("parses");
    let mut ensemble = Ensemble::new(&system, n);
    ensemble.params = Parameters::Sweep(vec![Axis::linear(1, 0.0, rho_hi)]);
    Problem::Fixed(FixedStepProblem {
        system,
        solver: Solver::Rk4,
        grid: TimeGrid::from_span(0.0, 10.0, 1e-3).expect("whole steps"),
        save: Save::Final,
        ensemble,
        precision: Precision::F32,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One engine per process; clones share it. No window, no display, no globals.
    let engine = Engine::new(EngineConfig {
        runners: 2,
        ..EngineConfig::default()
    })?;
    println!("adapter: {}", engine.context().summary.name);

    // Jobs from several threads at once; each waits for its own result.
    std::thread::scope(|s| {
        for k in 0..4 {
            let engine = engine.clone();
            s.spawn(move || {
                let solution = engine
                    .simulate_blocking(
                        lorenz_sweep(10_000, 10.0 * (k + 1) as f64),
                        JobOptions::default(),
                    )
                    .expect("simulation");
                println!(
                    "thread {k}: trajectory 9999 ends at {:?}",
                    solution.final_state(9999)
                );
            });
        }
    });

    // Async, with progress reports, then a job cancelled halfway.
    let opts = JobOptions {
        on_progress: Some(Arc::new(|p| {
            println!(
                "  job {}: {} ({}/{})",
                p.id,
                p.state.name(),
                p.done,
                p.total
            )
        })),
        memory: Some(8 << 20),
    };
    let solution = pollster::block_on(engine.simulate(lorenz_sweep(200_000, 50.0), opts))?;
    println!("async job: {} chunks", solution.stats.chunks);
    let job = engine.submit_simulate(lorenz_sweep(2_000_000, 50.0), JobOptions::default())?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    job.cancel();
    println!(
        "cancelled job: {}",
        job.wait_blocking()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    );

    // Train a small DeepONet (the antiderivative operator), then predict with it.
    let arch = antiderivative_arch(50);
    let data = antiderivative(50, 0.5, 500, 1)?;
    let trained = engine.train_blocking(
        TrainRequest {
            arch: arch.clone(),
            params: DeepONetParams::init(&arch, Init::Glorot, 1)?,
            data: DeepONetData::Aligned(data.clone()),
            config: DeepONetTrainConfig::default(),
            steps: 2000,
            loss_every: 500,
        },
        JobOptions::default(),
    )?;
    println!("training losses: {:?}", trained.losses);
    let model = engine.load_model(&arch, &trained.params)?;
    let u = Matrix {
        rows: 1,
        cols: 50,
        data: data.u.data[..50].to_vec(),
    };
    let g = model.predict_blocking(u, data.y.clone())?;
    println!("G(u)(y) at the first 5 points: {:?}", &g[..5]);
    println!("engine: {:?}", engine.stats());
    Ok(())
}
