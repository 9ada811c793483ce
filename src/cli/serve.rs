//! `phaseflow serve`: flags → `serve::ServeConfig` → a running server until a signal.

use super::error::CliError;
use super::simulate::parse_size;
use crate::engine::{EngineConfig, Shutdown};
use crate::gpu::AdapterChoice;
use crate::serve::{Limits, ServeConfig, ServeError, Server};
use std::net::SocketAddr;
use std::path::PathBuf;

pub const LONG_ABOUT: &str = "\
Serve simulations and predictions over HTTP.

POST /v1/simulate takes a run as JSON (the keys of a `simulate --config` file; the system is a
built-in's name or {\"definition\": \"<system TOML>\"}) and answers 202 with a job id.
GET /v1/jobs/{id} gives state and progress, GET /v1/jobs/{id}/result the result (format=npz
[default], npy with array=states|times|status|steps|events|event_counts, or json),
DELETE /v1/jobs/{id} cancels a job or deletes a finished one. POST /v1/models?name=NAME
with a DeepONet .safetensors body loads a model; POST /v1/models/NAME/predict with
{\"u\": [...], \"y\": [...]} predicts.
GET /healthz and GET /metrics (Prometheus) report health and load.

Results are kept in --results and served again after a restart; job ids are never handed
out twice, even across a crash. Without --token the server only listens on loopback
addresses. Ctrl-C or SIGTERM stops it: no new requests, queued and running jobs cancelled
(or finished, with --drain), results stored. Every error is JSON:
{\"error\": {\"status\": 422, \"message\": \"...\", \"where\": {\"field\": \"sweep.rho\"}}}.

Example:
  phaseflow serve --addr 127.0.0.1:8080 --results ./results
  curl -s localhost:8080/v1/simulate -d '{\"system\": \"lorenz\", \"n\": 1000, \"sweep\": {\"rho\": [0, 50]}}'";

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed at start)
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,

    /// Bearer token every request but /healthz must carry; needed to listen beyond loopback
    #[arg(long, env = "PHASEFLOW_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Directory of finished jobs' results and of uploaded models
    #[arg(long, value_name = "DIR", default_value = "phaseflow-results")]
    results: PathBuf,

    /// Load a DeepONet checkpoint at start as model NAME (repeatable)
    #[arg(long, value_name = "NAME=FILE")]
    model: Vec<String>,

    /// Jobs that run on the device at once
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    runners: u32,

    /// Jobs queued and running at once; more get 429
    #[arg(long, default_value_t = 64)]
    max_jobs: usize,

    /// Most trajectories per simulation
    #[arg(long, default_value_t = 10_000_000)]
    max_n: usize,

    /// Most bytes of results per simulation
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    max_output: u64,

    /// Most bytes of a request body (413 beyond)
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_size)]
    max_body: u64,

    /// Device memory all running jobs may use together [default: 512M on a CPU adapter, 4G
    /// on a GPU]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    gpu_memory: Option<u64>,

    /// Device memory one job may use [default: --gpu-memory / --runners]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    job_memory: Option<u64>,

    /// Close a connection after this many seconds without traffic (a client that sends half
    /// a request, or nothing, is dropped)
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle_timeout: u64,

    /// On stopping, finish queued and running jobs instead of cancelling them
    #[arg(long)]
    drain: bool,

    /// Compiled GPU pipelines kept for reuse; the least recently used are dropped beyond
    /// this many (each distinct system, solver, precision and tolerance set is one)
    #[arg(long, value_name = "N", default_value_t = crate::gpu::DEFAULT_PIPELINE_CACHE,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    pipeline_cache: usize,
}

impl From<ServeError> for CliError {
    fn from(e: ServeError) -> Self {
        match e {
            ServeError::Engine(crate::engine::EngineError::Gpu(g)) => g.into(),
            ServeError::Bind { .. } => CliError::Runtime(e.to_string()),
            // The library names the config field; the command line names its flag.
            ServeError::InsecureBind(addr) => CliError::Input(format!(
                "refusing to listen on {addr} without a token: anyone who can reach it could \
                 run work on this GPU. Give --token (or PHASEFLOW_TOKEN), or listen on a \
                 loopback address"
            )),
            other => CliError::Input(other.to_string()),
        }
    }
}

pub fn run(args: &ServeArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    let models = args
        .model
        .iter()
        .map(|m| {
            m.split_once('=')
                .map(|(n, p)| (n.trim().to_string(), PathBuf::from(p.trim())))
                .ok_or_else(|| CliError::Input(format!("--model '{m}': expected NAME=FILE")))
        })
        .collect::<Result<Vec<(String, PathBuf)>, _>>()?;
    // The names uploads may take (each one is a segment of /v1/models/NAME/predict), and
    // one file per name.
    for (i, (name, _)) in models.iter().enumerate() {
        if !crate::serve::valid_model_name(name) {
            return Err(CliError::Input(format!(
                "--model '{name}=...': a model name is 1 to 64 letters, digits, '-' or '_'"
            )));
        }
        if models[..i].iter().any(|(n, _)| n == name) {
            return Err(CliError::Input(format!(
                "--model '{name}' is given twice: one file per name"
            )));
        }
    }
    let config = ServeConfig {
        addr: args.addr,
        token: args.token.clone().filter(|t| !t.is_empty()),
        results: args.results.clone(),
        limits: Limits {
            max_n: args.max_n,
            max_output_bytes: args.max_output,
            max_jobs: args.max_jobs,
            max_body_bytes: args.max_body as usize,
            idle_timeout: std::time::Duration::from_secs(args.idle_timeout),
            ..Limits::default()
        },
        engine: EngineConfig {
            adapter: choice.clone(),
            runners: args.runners as usize,
            memory: args.gpu_memory,
            job_memory: args.job_memory,
            pipeline_cache: Some(args.pipeline_cache),
            ..EngineConfig::default()
        },
        models,
        on_shutdown: if args.drain {
            Shutdown::Finish
        } else {
            Shutdown::Cancel
        },
        handle_signals: true,
    };
    let server = Server::start(config)?;
    // The first line says where to connect (with --addr ...:0 the port is chosen here).
    println!("listening on http://{}", server.addr());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    server.wait();
    eprintln!("stopped");
    Ok(())
}
