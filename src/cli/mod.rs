//! The `phaseflow` command line. Library errors become one clear message and an exit code:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | the run failed (I/O while writing results, a GPU error mid-run) |
//! | 2 | bad input: usage, system, config, input files, sizes |
//! | 3 | no usable GPU adapter |

mod bench;
mod fit;
mod fit_data;
mod format;
mod generate;
mod info;
mod interrupt;
mod kernel;
mod outputs;
mod predict;
mod progress;
mod run_dir;
#[cfg(feature = "serve")]
mod serve;
mod simulate;
mod space;
mod spec_flags;
mod systems;
mod train;

use crate::gpu::GpuError;
use crate::model::Diagnostics;
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
    /// Measure a scenario's throughput (after checking its result against the CPU twin)
    Bench(bench::BenchArgs),
    /// Serve simulations and predictions over HTTP (jobs, results, models, metrics)
    #[cfg(feature = "serve")]
    #[command(long_about = serve::LONG_ABOUT)]
    Serve(serve::ServeArgs),
    /// Print the composed WGSL of a system's ODE kernel, or list every kernel family
    #[command(long_about = kernel::LONG_ABOUT)]
    Kernel(kernel::KernelArgs),
}

/// What went wrong, sorted by who can fix it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The user's input is wrong (exit 2).
    #[error("{0}")]
    Input(String),
    /// The user's system or config has errors with positions (exit 2).
    #[error("{0}")]
    Diagnostics(Diagnostics),
    /// No usable GPU (exit 3).
    #[error("{0}")]
    NoGpu(String),
    /// The run itself failed (exit 1).
    #[error("{0}")]
    Runtime(String),
    /// Stopped by Ctrl-C; what was done is saved and marked partial (exit 130).
    #[error("{0}")]
    Interrupted(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Runtime(_) => 1,
            CliError::Input(_) | CliError::Diagnostics(_) => 2,
            CliError::NoGpu(_) => 3,
            CliError::Interrupted(_) => 130,
        }
    }
}

impl From<crate::spec::SpecError> for CliError {
    fn from(e: crate::spec::SpecError) -> Self {
        match e {
            // Keys of a config file (train, generate) as the file names them; `simulate`
            // names its keys as flags (spec_flags).
            crate::spec::SpecError::Field(f) => CliError::Input(f.to_string()),
            crate::spec::SpecError::Input(m) => CliError::Input(m),
            crate::spec::SpecError::Diagnostics(d) => CliError::Diagnostics(d),
        }
    }
}

impl From<GpuError> for CliError {
    fn from(e: GpuError) -> Self {
        match e {
            GpuError::NoAdapter | GpuError::NoSuchAdapter { .. } | GpuError::Device { .. } => {
                CliError::NoGpu(e.to_string())
            }
            // What was asked is beyond this adapter (a batch too large, a feature it lacks):
            // the request must change, so it is bad input.
            GpuError::Unsupported(m) => CliError::Input(m),
            other => CliError::Runtime(other.to_string()),
        }
    }
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

/// Runs the command line; never panics on user input.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
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
