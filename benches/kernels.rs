//! Micro-benchmarks of single kernels with criterion: `cargo bench --bench kernels`.
//! The ODE kernels are timed by GPU timestamps where the adapter has them (criterion's
//! `iter_custom` is handed the device's time, not the host's), the neural kernels by wall
//! time around a synchronised batch of steps. Sizes are small so that a software adapter
//! (lavapipe) finishes in a minute; `phaseflow bench` measures the full-size scenarios.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use phaseflow::gpu::{AdapterChoice, GpuContext};
use phaseflow::model::builtin;
use phaseflow::nn::{Architecture, FusedNet, FusedTrainer, Init, Matrix, Params, TrainConfig};
use phaseflow::ode::{
    AdaptiveProblem, Axis, Control, Ensemble, FixedStepProblem, Parameters, Precision, Problem,
    RunOptions, Save, SaveAt, Solver, TimeGrid, Tolerance,
};
use std::time::{Duration, Instant};

const TRAJECTORIES: usize = 65_536;

fn lorenz_ensemble(n: usize) -> (phaseflow::model::System, Ensemble) {
    let system = builtin("lorenz").unwrap().unwrap();
    let mut e = Ensemble::new(&system, n);
    let rho = system.param_index("rho").unwrap();
    e.params = Parameters::Sweep(vec![Axis::linear(rho, 0.0, 21.0)]);
    (system, e)
}

/// Device time of one run: GPU timestamps where there are any, the solve's wall time
/// otherwise.
fn run_time(ctx: &GpuContext, problem: &Problem) -> Duration {
    let sol = problem.simulate(ctx, &RunOptions::default()).unwrap();
    sol.stats.gpu.unwrap_or(sol.stats.solve)
}

fn ode_kernels(c: &mut Criterion, ctx: &GpuContext) {
    let mut group = c.benchmark_group("ode");
    group.sample_size(10);
    for solver in [Solver::Rk4, Solver::Tsit5] {
        let (system, ensemble) = lorenz_ensemble(TRAJECTORIES);
        let problem = Problem::Fixed(FixedStepProblem {
            system,
            solver,
            grid: TimeGrid::from_span(0.0, 0.1, 1e-3).unwrap(),
            save: Save::Final,
            ensemble,
            precision: Precision::F32,
        });
        group.throughput(Throughput::Elements((TRAJECTORIES * 100) as u64));
        group.bench_function(
            format!("fixed {} lorenz 65536 x 100 steps", solver.name()),
            |b| b.iter_custom(|iters| (0..iters).map(|_| run_time(ctx, &problem)).sum()),
        );
    }
    let (system, ensemble) = lorenz_ensemble(TRAJECTORIES);
    let problem = Problem::Adaptive(AdaptiveProblem {
        system,
        solver: Solver::Tsit5,
        t0: 0.0,
        t1: 0.1,
        saveat: SaveAt::Final,
        control: Control {
            rtol: Tolerance::All(1e-6),
            atol: Tolerance::All(1e-6),
            ..Control::default()
        },
        ensemble,
        precision: Precision::F32,
    });
    group.throughput(Throughput::Elements(TRAJECTORIES as u64));
    group.bench_function("adaptive tsit5 lorenz 65536 t=0..0.1", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| run_time(ctx, &problem)).sum())
    });
    group.finish();
}

fn batch(rows: usize, cols: usize) -> Matrix {
    Matrix {
        rows,
        cols,
        data: (0..rows * cols)
            .map(|k| phaseflow::rng::uniform_f64(3, k as u64, 0))
            .collect(),
    }
}

fn sync(ctx: &GpuContext) {
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .unwrap();
}

fn nn_kernels(c: &mut Criterion, ctx: &GpuContext) {
    let arch = Architecture::benchmark_fourier_mlp();
    let params = Params::init(&arch, Init::He, 1).unwrap();
    let rows = 4096;
    let (x, t) = (batch(rows, 2), batch(rows, 1));
    let mut group = c.benchmark_group("nn");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows as u64));
    let mut trainer =
        FusedTrainer::new(ctx, &arch, &params, &x, &t, TrainConfig::default()).unwrap();
    group.bench_function("fused train step fourier mlp 4096", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                trainer.step(ctx);
            }
            sync(ctx);
            start.elapsed()
        })
    });
    let net = FusedNet::new(ctx, &arch, &params).unwrap();
    group.bench_function("fused forward fourier mlp 4096 (host to host)", |b| {
        b.iter(|| net.predict(ctx, &x).unwrap())
    });
    group.finish();
}

fn kernels(c: &mut Criterion) {
    let ctx = GpuContext::new(&AdapterChoice::Best).expect("a GPU adapter (or lavapipe)");
    ode_kernels(c, &ctx);
    nn_kernels(c, &ctx);
}

criterion_group!(benches, kernels);
criterion_main!(benches);
