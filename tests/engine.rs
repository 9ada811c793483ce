//! The embeddable engine: its results are the library's, bit for bit; jobs from many
//! threads; cancellation that releases device memory; a small job not held behind a big
//! one; training and batched predictions against the direct library calls.

mod common;

use common::{random_matrix, system};
use phaseflow::engine::{Engine, EngineConfig, EngineError, JobOptions, JobState, TrainRequest};
use phaseflow::nn::deeponet::DeepONetData;
use phaseflow::nn::deeponet::data::{antiderivative, antiderivative_arch};
use phaseflow::nn::{DeepONetNet, DeepONetParams, DeepONetTrainConfig, DeepONetTrainer, Init};
use phaseflow::ode::{
    Axis, Ensemble, FixedStepProblem, Parameters, Precision, Problem, RunOptions, Save, Solver,
    TimeGrid,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        Engine::new(EngineConfig {
            runners: 2,
            memory: Some(256 << 20),
            ..EngineConfig::default()
        })
        .expect("these tests need a GPU adapter (install mesa-vulkan-drivers)")
    })
}

fn lorenz(n: usize, steps: u32, save: Save, rho_hi: f64) -> Problem {
    let system = system("lorenz");
    let mut ensemble = Ensemble::new(&system, n);
    ensemble.params = Parameters::Sweep(vec![Axis::linear(1, 0.0, rho_hi)]);
    Problem::Fixed(FixedStepProblem {
        system,
        solver: Solver::Rk4,
        grid: TimeGrid::from_span(0.0, steps as f64 * 1e-3, 1e-3).unwrap(),
        save,
        ensemble,
        precision: Precision::F32,
    })
}

#[test]
fn engine_is_send_sync_and_cheap_to_clone() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<Engine>();
    send_sync::<phaseflow::engine::Model>();
    send_sync::<phaseflow::engine::JobHandle>();
}

#[test]
fn jobs_from_many_threads_match_direct_runs_bit_for_bit() {
    let e = engine();
    let problems: Vec<Problem> = (0..8)
        .map(|k| lorenz(500 + 97 * k, 400, Save::Every(50), 10.0 + 5.0 * k as f64))
        .collect();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = problems
            .iter()
            .map(|p| {
                let p = p.clone();
                s.spawn(move || e.simulate_blocking(p, JobOptions::default()).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (p, got) in problems.iter().zip(results) {
        let want = p.simulate(e.context(), &RunOptions::default()).unwrap();
        assert_eq!(got.states, want.states);
        assert_eq!(got.status, want.status);
        assert_eq!(got.times, want.times);
    }
    let s = e.stats();
    assert!(s.succeeded >= 8 && s.trajectory_steps > 0 && s.gpu_busy_s > 0.0);
}

#[test]
fn async_simulate_runs_on_any_executor_and_reports_progress() {
    let e = engine();
    let calls = Arc::new(AtomicU64::new(0));
    let seen = calls.clone();
    let opts = JobOptions {
        on_progress: Some(Arc::new(move |p| {
            assert!(p.done <= p.total);
            seen.fetch_add(1, Ordering::Relaxed);
        })),
        // A small budget: several chunks, so several progress reports.
        memory: Some(2 << 20),
    };
    let p = lorenz(100_000, 200, Save::Final, 28.0);
    let job = e.submit_simulate(p.clone(), opts).unwrap();
    let handle = job.handle();
    // pollster is a minimal executor: nothing here needs tokio.
    let got = pollster::block_on(job.wait()).unwrap();
    let progress = handle.progress();
    assert_eq!(progress.state, JobState::Succeeded);
    assert_eq!((progress.done, progress.total), (100_000, 100_000));
    assert!(got.stats.chunks > 1, "{} chunks", got.stats.chunks);
    assert!(calls.load(Ordering::Relaxed) as usize >= got.stats.chunks);
    let want = p.simulate(e.context(), &RunOptions::default()).unwrap();
    assert_eq!(got.states, want.states);
}

/// A job of one chunk reports progress as its submissions finish, not only at its end:
/// 4,096 trajectories × 2 × 10^5 RK4 steps is one chunk (under the default 2^31
/// trajectory-steps) of three submissions (2^28 trajectory-steps each at most).
#[test]
fn progress_moves_within_a_single_chunk() {
    let e = engine();
    let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = reports.clone();
    let opts = JobOptions {
        on_progress: Some(Arc::new(move |p| {
            if p.state == JobState::Running {
                seen.lock().unwrap().push(p.done);
            }
        })),
        ..JobOptions::default()
    };
    let n = 4096;
    let job = e
        .submit_simulate(lorenz(n, 200_000, Save::Final, 28.0), opts)
        .unwrap();
    let got = pollster::block_on(job.wait()).unwrap();
    assert_eq!(got.stats.chunks, 1);
    let reports = reports.lock().unwrap();
    assert!(
        reports.iter().any(|&d| d > 0 && d < n as u64),
        "no progress inside the chunk: {reports:?}"
    );
    assert!(reports.windows(2).all(|w| w[0] <= w[1]), "{reports:?}");
    assert_eq!(reports.last(), Some(&(n as u64)), "{reports:?}");
}

#[test]
fn budgets_and_limits_are_refused_up_front() {
    let e = engine();
    let (_, per_job) = e.budgets();
    let too_much = JobOptions {
        memory: Some(per_job + 1),
        ..JobOptions::default()
    };
    assert!(matches!(
        e.submit_simulate(lorenz(10, 10, Save::Final, 1.0), too_much),
        Err(EngineError::OverBudget { .. })
    ));
    // 10^6 trajectories × 1001 saves × 3 states × 4 bytes = 12 GB, over the 4 GiB default.
    assert!(matches!(
        e.submit_simulate(
            lorenz(1_000_000, 1000, Save::Every(1), 1.0),
            JobOptions::default()
        ),
        Err(EngineError::ResultTooLarge { .. })
    ));
}

/// A job holding device memory is cancelled: it ends as Cancelled, its reservation is
/// returned and the driver's count of buffer bytes falls back to where it was.
#[test]
fn cancelling_a_running_job_frees_its_device_memory() {
    // An engine of its own, so that other tests' jobs do not move the counters.
    let e = Engine::new(EngineConfig {
        runners: 1,
        memory: Some(64 << 20),
        ..EngineConfig::default()
    })
    .unwrap();
    // Warm up pipelines so that the baseline holds what stays (pipelines, caches).
    e.simulate_blocking(lorenz(1000, 10, Save::Final, 1.0), JobOptions::default())
        .unwrap();
    let baseline = e.device_bytes();
    let job = e
        .submit_simulate(
            lorenz(2_000_000, 100_000, Save::Final, 28.0),
            JobOptions::default(),
        )
        .unwrap();
    let started = Instant::now();
    while job.progress().state != JobState::Running || job.progress().running_s < 0.5 {
        assert!(started.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(5));
    }
    let during = e.device_bytes();
    assert!(
        during > baseline + (8 << 20),
        "running job holds {} bytes beyond {baseline}",
        during - baseline
    );
    assert_eq!(e.stats().reserved_bytes, job.handle().memory());
    let cancelled_at = Instant::now();
    job.cancel();
    let handle = job.handle();
    let result = job.wait_blocking();
    // The run stops within a couple of submissions (about a second each here), not at the
    // end of its chunk (a minute here).
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(15),
        "cancelling took {:?}",
        cancelled_at.elapsed()
    );
    match result {
        Err(EngineError::Cancelled { done, total }) => assert!(done < total),
        other => panic!("expected a cancellation, got {:?}", other.map(|_| ())),
    }
    assert_eq!(handle.progress().state, JobState::Cancelled);
    // The runner returns the reservation and polls the device right after the job.
    let started = Instant::now();
    while e.stats().reserved_bytes != 0 || {
        let _ = e.context().device.poll(wgpu::PollType::Poll);
        e.device_bytes() > baseline
    } {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "device bytes {} vs baseline {baseline}, reserved {}",
            e.device_bytes(),
            e.stats().reserved_bytes
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // A queued job cancelled before it starts never runs.
    let blocker = e
        .submit_simulate(
            lorenz(1_000_000, 20_000, Save::Final, 28.0),
            JobOptions::default(),
        )
        .unwrap();
    let queued = e
        .submit_simulate(lorenz(100, 10, Save::Final, 1.0), JobOptions::default())
        .unwrap();
    queued.cancel();
    assert!(matches!(
        queued.wait_blocking(),
        Err(EngineError::Cancelled { done: 0, .. })
    ));
    blocker.cancel();
    let _ = blocker.wait_blocking();
}

/// With two runners, a small job submitted just after a big one finishes long before it:
/// the two share the device submission by submission.
#[test]
fn a_small_job_is_not_held_behind_a_big_one() {
    let e = Engine::new(EngineConfig {
        runners: 2,
        memory: Some(128 << 20),
        ..EngineConfig::default()
    })
    .unwrap();
    let big = e
        .submit_simulate(
            lorenz(1_000_000, 4_000, Save::Final, 28.0),
            JobOptions::default(),
        )
        .unwrap();
    let small = e
        .submit_simulate(
            lorenz(1_000, 1_000, Save::Final, 28.0),
            JobOptions::default(),
        )
        .unwrap();
    let big_handle = big.handle();
    small.wait_blocking().unwrap();
    let big_progress = big_handle.progress();
    assert!(
        big_progress.state == JobState::Running,
        "the big job should still be running when the small one is done ({:?})",
        big_progress.state
    );
    big.wait_blocking().unwrap();
}

#[test]
fn training_job_matches_the_direct_trainer_and_predictions_are_batched() {
    let e = engine();
    let arch = antiderivative_arch(20);
    let params = DeepONetParams::init(&arch, Init::Glorot, 3).unwrap();
    let data = antiderivative(20, 0.5, 64, 1).unwrap();
    let config = DeepONetTrainConfig {
        functions_per_batch: Some(16),
        ..DeepONetTrainConfig::default()
    };
    let outcome = e
        .train_blocking(
            TrainRequest {
                arch: arch.clone(),
                params: params.clone(),
                data: DeepONetData::Aligned(data.clone()),
                config: config.clone(),
                steps: 30,
                loss_every: 10,
            },
            JobOptions::default(),
        )
        .unwrap();
    assert_eq!(
        outcome.losses.iter().map(|l| l.0).collect::<Vec<_>>(),
        [10, 20, 30]
    );
    let ctx = e.context();
    let mut direct = DeepONetTrainer::new(ctx, &arch, &params, &data, config).unwrap();
    direct.run(ctx, 30);
    assert_eq!(direct.params(ctx).unwrap(), outcome.params);

    // Predictions: 24 requests from 8 threads, at two sets of points, each against the
    // network's own predict.
    let model = e.load_model(&arch, &outcome.params).unwrap();
    // Weights handed over in memory are checked like a checkpoint's: a NaN is refused,
    // naming the tensor, before anything reaches the device.
    let mut broken = outcome.params.clone();
    broken.bias[0] = f64::NAN;
    match e.load_model(&arch, &broken) {
        Err(EngineError::BadInput(m)) => assert!(m.contains("NaN") && m.contains("weight"), "{m}"),
        other => panic!("a NaN weight was not refused: {:?}", other.map(|_| ())),
    }
    let net = DeepONetNet::new(ctx, &arch, &outcome.params).unwrap();
    let points = [random_matrix(100, 1, 5, 0), random_matrix(37, 1, 6, 0)];
    let before = e.stats();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (model, points, net) = (&model, &points, &net);
            s.spawn(move || {
                for k in 0..3 {
                    let u = random_matrix(1 + (t + k) % 3, 20, 10 + t as u64, k as u32);
                    let y = &points[(t + k) % 2];
                    let got = model.predict_blocking(u.clone(), y.clone()).unwrap();
                    let want = net.predict(e.context(), &u, y).unwrap();
                    assert_eq!(got.len(), u.rows * y.rows);
                    for (a, b) in got.iter().zip(&want) {
                        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
                    }
                }
            });
        }
    });
    let after = e.stats();
    assert_eq!(after.predictions - before.predictions, 24);
    assert!(after.prediction_batches - before.prediction_batches <= 24);
    // Wrong shapes are refused before they reach the device.
    assert!(matches!(
        model.predict_blocking(random_matrix(1, 19, 0, 0), points[0].clone()),
        Err(EngineError::BadInput(_))
    ));
}

/// Lyapunov spectra as an engine job equal the library's bit for bit, with progress to
/// the last trajectory; a long one cancelled while running ends as Cancelled; a problem
/// the kernel cannot run is refused at submission.
#[test]
fn lyapunov_jobs_match_the_library_and_cancel() {
    use phaseflow::ode::lyapunov::{LyapunovProblem, lyapunov_spectra};
    let mut p = LyapunovProblem::new(system("lorenz"), 64, 0.01, 1.0, 5.0);
    p.ensemble.params = Parameters::Sweep(vec![Axis::linear(1, 20.0, 30.0)]);
    let want = lyapunov_spectra(common::gpu(), &p, &RunOptions::default()).unwrap();
    let job = engine()
        .submit_lyapunov(p.clone(), JobOptions::default())
        .unwrap();
    let handle = job.handle();
    let got = job.wait_blocking().unwrap();
    assert_eq!(got.exponents.len(), 64 * 3);
    for (a, b) in got.exponents.iter().zip(&want.exponents) {
        assert_eq!(a.to_bits(), b.to_bits(), "{a} vs {b}");
    }
    assert_eq!(got.final_states, want.final_states);
    assert_eq!(handle.progress().done, 64);
    assert_eq!(handle.progress().state, JobState::Succeeded);

    let mut long = LyapunovProblem::new(system("lorenz"), 200_000, 0.001, 1.0, 1000.0);
    long.ensemble.params = Parameters::Sweep(vec![Axis::linear(1, 20.0, 30.0)]);
    let job = engine()
        .submit_lyapunov(long, JobOptions::default())
        .unwrap();
    cancel_once_running(job);

    let mut bad = p.clone();
    bad.renorm = 0.015; // not a whole number of steps
    let e = engine()
        .submit_lyapunov(bad, JobOptions::default())
        .map(|_| ())
        .unwrap_err();
    assert!(e.to_string().contains("renorm"), "{e}");
}

/// A basins job labels every grid point as the library does.
#[test]
fn basins_jobs_match_the_library() {
    use phaseflow::model::System;
    use phaseflow::ode::basins::{
        BasinsProblem, DEFAULT_MAX_ATTRACTORS, Match, Method, run_basins,
    };
    use phaseflow::ode::{AdaptiveProblem, Control, InitialStates, SaveAt, Tolerance};
    let well = System::from_equations(
        "double_well",
        &[("x", 0.0), ("v", 0.0)],
        &[("delta", 0.2)],
        "dx = v\ndv = -delta*v + x - x^3",
    )
    .unwrap();
    let mut ensemble = Ensemble::new(&well, 12 * 12);
    ensemble.initial = InitialStates::Grid(vec![
        Axis::grid(1, -2.0, 2.0, 12),
        Axis::grid(0, -2.0, 2.0, 12),
    ]);
    let mut run = Problem::Adaptive(AdaptiveProblem {
        system: well,
        solver: Solver::Tsit5,
        t0: 0.0,
        t1: 100.0,
        saveat: SaveAt::Final,
        control: Control {
            rtol: Tolerance::All(1e-6),
            atol: Tolerance::All(1e-6),
            ..Control::default()
        },
        ensemble,
        precision: Precision::F32,
    });
    phaseflow::ode::basins::save_window(&mut run, 10.0, 200).unwrap();
    let p = BasinsProblem {
        run,
        method: Method::Features {
            window: 10.0,
            tol: Match::default(),
            escape: None,
        },
        max_attractors: DEFAULT_MAX_ATTRACTORS,
    };
    let want = run_basins(common::gpu(), &p, &RunOptions::default()).unwrap();
    let got = engine().basins_blocking(p, JobOptions::default()).unwrap();
    assert_eq!(got.labels, want.labels);
    assert_eq!(got.attractors.len(), 2, "{:?}", got.attractors);
}

/// A Monte Carlo job gives the reducer's statistics bit for bit, whatever chunks its
/// memory budget cuts the run into, counts every trajectory, and cancels.
#[test]
fn monte_carlo_jobs_match_the_reducer_across_chunking() {
    use phaseflow::ode::{FanOut, MonteCarlo, Tally};
    let p = lorenz(20_000, 400, Save::Every(100), 40.0);
    let levels = vec![0.1, 0.5, 0.9];
    let mut direct = MonteCarlo::new(5, 3, &levels);
    let mut tally = Tally::default();
    p.run_into(
        common::gpu(),
        &RunOptions::default(),
        &mut FanOut(vec![&mut direct, &mut tally]),
    )
    .unwrap();
    // 1 MiB of device memory: the job runs in many small chunks.
    let small = JobOptions {
        memory: Some(1 << 20),
        ..JobOptions::default()
    };
    let job = engine()
        .submit_monte_carlo(p.clone(), levels.clone(), small)
        .unwrap();
    let handle = job.handle();
    let got = job.wait_blocking().unwrap();
    assert!(got.stats.chunks > 1, "{} chunk(s)", got.stats.chunks);
    assert_eq!(got.statistics, direct.result());
    assert_eq!(got.tally.trajectories, 20_000);
    assert_eq!(got.tally.status, tally.status);
    assert_eq!(got.times.len(), 5);
    assert!(got.statistics.count.iter().all(|&c| c == 20_000));
    assert_eq!(handle.progress().done, 20_000);

    let e = engine()
        .submit_monte_carlo(p.clone(), vec![1.5], JobOptions::default())
        .map(|_| ())
        .unwrap_err();
    assert!(e.to_string().contains("quantiles"), "{e}");

    let long = lorenz(2_000_000, 20_000, Save::Every(1000), 40.0);
    let job = engine()
        .submit_monte_carlo(long, levels, JobOptions::default())
        .unwrap();
    cancel_once_running(job);
}

/// Cancels `job` once it runs; it must end cancelled part-way.
fn cancel_once_running<T: Send + 'static>(job: phaseflow::engine::Job<T>) {
    let started = Instant::now();
    while job.progress().state != JobState::Running {
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(5));
    }
    job.cancel();
    match job.wait_blocking() {
        Err(EngineError::Cancelled { done, total }) => assert!(done < total, "{done}"),
        other => panic!("expected a cancellation, got {:?}", other.map(|_| ())),
    }
}
