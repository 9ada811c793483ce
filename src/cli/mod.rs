//! The `phaseflow` command line. Library errors become one clear message and an exit code:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | the run failed (I/O while writing results, a GPU error mid-run) |
//! | 2 | bad input: usage, system, config, input files, sizes |
//! | 3 | no usable GPU adapter |

mod basins;
mod bench;
mod ensemble_flags;
mod error;
mod estimate;
mod fit;
mod format;
mod generate;
mod info;
mod interrupt;
mod kernel;
mod lyapunov;
mod orbit_diagram;
mod predict;
mod progress;
mod selftest;
#[cfg(feature = "serve")]
mod serve;
mod simulate;
mod space;
mod spec_flags;
mod store;
mod systems;
mod train;

pub use error::CliError;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const ABOUT: &str = "Headless GPU compute engine: huge ensembles of ODE trajectories and neural \
networks in WGSL through wgpu, on any Vulkan/Metal/DX12 GPU or on a CPU through Mesa's software \
Vulkan (lavapipe).";

#[derive(Debug, Parser)]
#[command(name = "phaseflow", version, about = ABOUT, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// GPU adapter to use: an index or part of a name as `phaseflow info` lists them
    /// [default: the best one: discrete, then integrated, then software]
    #[arg(
        long,
        global = true,
        env = "PHASEFLOW_ADAPTER",
        value_name = "INDEX|NAME"
    )]
    adapter: Option<String>,

    /// Say more about what is happening (adapter choice, how the run is split into chunks)
    #[arg(short, long, global = true)]
    verbose: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the GPU adapters, the one phaseflow would use, its limits and features
    Info(info::InfoArgs),
    /// List the built-in systems, or show one (`phaseflow systems show lorenz`)
    Systems(systems::SystemsArgs),
    /// Integrate an ensemble of trajectories of a system on the GPU
    #[command(long_about = simulate::LONG_ABOUT)]
    Simulate(Box<simulate::SimulateArgs>),
    /// Fit an MLP (optionally with Fourier features) to an expression, samples or an image
    #[command(long_about = fit::LONG_ABOUT)]
    Fit(Box<fit::FitArgs>),
    /// Generate operator-learning data (input functions → solutions) from an ensemble run
    #[command(long_about = generate::LONG_ABOUT)]
    Generate(generate::GenerateArgs),
    /// Train an operator network (DeepONet) from a config
    Train(train::TrainArgs),
    /// Evaluate a trained DeepONet on new input functions
    Predict(predict::PredictArgs),
    /// Basins of attraction: label a grid of initial states by the attractor each reaches
    #[command(long_about = basins::LONG_ABOUT)]
    Basins(Box<basins::BasinsArgs>),
    /// Fit parameters and initial values to observations, one fit per trajectory
    /// (Levenberg-Marquardt through forward sensitivities)
    #[command(long_about = estimate::LONG_ABOUT)]
    Estimate(Box<estimate::EstimateArgs>),
    /// Lyapunov exponents of every trajectory of an ensemble (Benettin's method)
    #[command(long_about = lyapunov::LONG_ABOUT)]
    Lyapunov(Box<lyapunov::LyapunovArgs>),
    /// Orbit (bifurcation) diagram: section points or maxima against a swept parameter
    #[command(long_about = orbit_diagram::LONG_ABOUT)]
    OrbitDiagram(Box<orbit_diagram::OrbitArgs>),
    /// Check every kernel family against its CPU twin on this adapter (run it first on new
    /// hardware)
    #[command(long_about = selftest::LONG_ABOUT)]
    Selftest(selftest::SelftestArgs),
    /// Status of a Zarr store written by shards, and its finalization
    #[command(long_about = store::LONG_ABOUT)]
    Store(store::StoreArgs),
    /// Measure a scenario's throughput (after checking its result against the CPU twin)
    Bench(bench::BenchArgs),
    /// Serve simulations and predictions over HTTP (jobs, results, models, metrics)
    #[cfg(feature = "serve")]
    #[command(long_about = serve::LONG_ABOUT)]
    Serve(serve::ServeArgs),
    /// Print the composed WGSL of a system's ODE kernel, or list every kernel family
    #[command(long_about = kernel::LONG_ABOUT, override_usage = kernel::USAGE)]
    Kernel(kernel::KernelArgs),
}

fn init_logging(verbose: bool) {
    let default = if verbose {
        "info,wgpu_core=warn,wgpu_hal=error,naga=warn"
    } else {
        "warn,wgpu_core=error,wgpu_hal=error,naga=error"
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format_timestamp(None)
        .format_target(false)
        .init();
}

/// Output piped into a reader that stops early (`phaseflow kernel lorenz | head`) ends the
/// process quietly, as a Unix filter does, instead of a failed write becoming a panic: Rust
/// ignores SIGPIPE, so this restores the default action. Not for `serve`, where a client
/// that hangs up must never end the server (its sockets do not raise SIGPIPE anyway).
fn end_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called on the main thread before any other thread exists; it only resets a
    // signal's disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Runs the command line; never panics on user input.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(feature = "serve")]
    let serving = matches!(cli.command, Command::Serve(_));
    #[cfg(not(feature = "serve"))]
    let serving = false;
    if !serving {
        end_quietly_on_closed_pipe();
    }
    init_logging(cli.verbose);
    let choice = crate::gpu::AdapterChoice::parse(cli.adapter.as_deref().unwrap_or(""));
    let result = match cli.command {
        Command::Info(args) => info::run(&args, &choice),
        Command::Systems(args) => systems::run(&args),
        Command::Simulate(args) => simulate::run(&args, &choice),
        Command::Fit(args) => fit::run(&args, &choice),
        Command::Generate(args) => generate::run(&args, &choice),
        Command::Train(args) => train::run(&args, &choice),
        Command::Predict(args) => predict::run(&args, &choice),
        Command::Basins(args) => basins::run(&args, &choice),
        Command::Lyapunov(args) => lyapunov::run(&args, &choice),
        Command::Estimate(args) => estimate::run(&args, &choice),
        Command::OrbitDiagram(args) => orbit_diagram::run(&args, &choice),
        Command::Selftest(args) => selftest::run(&args, &choice),
        Command::Store(args) => store::run(&args),
        Command::Bench(args) => bench::run(&args, &choice),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(&args, &choice),
        Command::Kernel(args) => kernel::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match &e {
                CliError::Diagnostics(d) => eprintln!("{d}"),
                other => eprintln!("error: {other}"),
            }
            ExitCode::from(e.exit_code())
        }
    }
}
