//! `phaseflow bench`: named scenarios that check their own result before timing it, and
//! report wall and GPU time, throughput, counted FLOP/s and bytes/s, and the share of the
//! adapter's measured ceilings (`gpu::peak`) that represents. Scenarios: `peak`; the ODE
//! ensembles (`ode.rs`: fixed-step, adaptive, a saved sweep, streaming to disk, and the
//! published GPU ensemble benchmark `paper-lorenz`); the neural core (`neural.rs`); DeepONet
//! (`deeponet.rs`); the SDE Monte Carlo scenarios (`sde.rs`); stiff kinetics (`stiff.rs`);
//! basins of attraction (`basins.rs`); Lyapunov spectra (`lyapunov.rs`); event location
//! (`events.rs`).
//! `report.rs` prints tables and JSON and writes sweeps' CSV and plots;
//! `scenario.rs` names the scenarios, `row.rs` is one measured row, and `harness.rs` holds
//! the timing and self-checks the scenario families share.

mod basins;
mod deeponet;
mod estimate;
mod events;
mod harness;
mod lyapunov;
mod neural;
mod ode;
mod report;
mod row;
mod scenario;
mod sde;
mod stiff;

use super::error::CliError;
use crate::gpu::{AdapterChoice, GpuContext};
use harness::Bench;
use row::Row;
use scenario::Scenario;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// What to measure
    #[arg(value_enum)]
    pub(super) scenario: Scenario,
    /// Problem size: trajectories (ode-*; paper-lorenz: the largest N), samples per batch
    /// (mlp-*), functions (deeponet-infer)
    #[arg(short = 'n', long, visible_alias = "batch")]
    pub(super) size: Option<usize>,
    /// Timed repetitions after one untimed warm-up (at most 3 for runs that take seconds)
    #[arg(long, default_value_t = 10)]
    pub(super) reps: usize,
    /// mlp-train: also time the layer-by-layer kernels, for the ratio
    #[arg(long)]
    compare: bool,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
    /// Run the scenario at sizes from LO to HI, K per decade (default 2), e.g. N=1e3..1e7;
    /// writes results.csv, time.png and throughput.png (log–log) to -o
    #[arg(long, value_name = "N=LO..HI[/K]")]
    sweep: Option<String>,
    /// Directory for results.json, results.csv and, over several sizes, the plots
    /// [default with --sweep: bench-SCENARIO]
    #[arg(short, long)]
    out: Option<PathBuf>,
}

/// Sizes from a `--sweep` value: `N=LO..HI[/K]`, K per decade, LO and HI included.
pub(super) fn sweep_sizes(spec: &str) -> Result<Vec<usize>, CliError> {
    let bad = || {
        CliError::Input(format!(
            "--sweep {spec}: expected N=LO..HI[/K], e.g. N=1e3..1e7 (K sizes per decade, default 2)"
        ))
    };
    let range = spec.strip_prefix("N=").ok_or_else(bad)?;
    let (range, per_decade) = match range.split_once('/') {
        Some((r, k)) => (r, k.parse::<u32>().map_err(|_| bad())?),
        None => (range, 2),
    };
    let (lo, hi) = range.split_once("..").ok_or_else(bad)?;
    let parse = |s: &str| s.trim().parse::<f64>().ok().filter(|v| *v >= 1.0);
    let (lo, hi) = (parse(lo).ok_or_else(bad)?, parse(hi).ok_or_else(bad)?);
    if hi < lo || per_decade == 0 || per_decade > 100 || hi > 1e12 {
        return Err(bad());
    }
    let steps = ((hi / lo).log10() * per_decade as f64 + 1e-9).floor() as i32;
    let mut sizes: Vec<usize> = (0..=steps)
        .map(|k| (lo * 10f64.powf(k as f64 / per_decade as f64)).round() as usize)
        .collect();
    if sizes.last() != Some(&(hi.round() as usize)) {
        sizes.push(hi.round() as usize);
    }
    sizes.dedup();
    Ok(sizes)
}

/// Host bytes a scenario takes at size `n`, about: its data and results in f64 and their
/// f32 copies for the device (mlp-train also keeps the CPU twin's activations).
fn host_bytes(scenario: Scenario, n: usize) -> f64 {
    let per_item = match scenario {
        Scenario::MlpTrain => {
            let arch = crate::nn::Architecture::benchmark_fourier_mlp();
            let widths: usize = arch.layers.iter().sum();
            16.0 * (3 + 2 * widths) as f64
        }
        Scenario::MlpInfer => 48.0,
        // 100 sensors and 100 points a function: inputs, labels, predictions and copies.
        Scenario::DeeponetInfer => 4.0 * 800.0,
        // Final states, parameters and statuses; saved sweeps 101 states of 3.
        Scenario::OdeFixed | Scenario::OdeAdaptive | Scenario::PaperLorenz => 64.0,
        // Final states (in f32 and f64 copies), parameters and statuses of 1-state paths.
        Scenario::SdeEm | Scenario::SdeAdaptive => 32.0,
        // Final states and parameters (3 each, f64), statuses and five step counts.
        Scenario::StiffRober => 72.0,
        // A label, the parameters and initial state, and the chunk's window statistics.
        Scenario::Basins => 64.0,
        // Exponents and errors (3 each, f64), final states, parameters and statuses.
        Scenario::Lyapunov => 128.0,
        // 64 records of 4 reals (f64 and f32 copies), the final states and parameters.
        Scenario::Events => 64.0 * 4.0 * 12.0 + 64.0,
        // 300 observations, the truth, estimates, covariance and one run's saved states and
        // sensitivities (100 × 12 values), in f64.
        Scenario::Estimate => 16_000.0,
        Scenario::OdeSweep | Scenario::OdeStream => 101.0 * 3.0 * 8.0,
        Scenario::DeeponetTrain | Scenario::Peak | Scenario::All => 0.0,
    };
    per_item * n as f64
}

/// Refuses a size whose data would not fit in this machine's memory, before allocating.
fn check_memory(scenario: Scenario, n: usize) -> Result<(), CliError> {
    let need = host_bytes(scenario, n);
    let Some(have) = super::space::physical_memory() else {
        return Ok(());
    };
    if need > have as f64 {
        let gib = |b: f64| b / (1u64 << 30) as f64;
        return Err(CliError::Input(format!(
            "bench {} at -n {n} would take about {:.1} GiB of host memory; this machine has \
             {:.1} GiB: use a smaller -n",
            scenario.name(),
            gib(need),
            gib(have as f64)
        )));
    }
    Ok(())
}

/// One scenario at one size (`None`: its default).
fn run_scenario(
    bench: &Bench,
    scenario: Scenario,
    size: Option<usize>,
) -> Result<Vec<Row>, CliError> {
    match scenario {
        Scenario::OdeFixed
        | Scenario::OdeAdaptive
        | Scenario::OdeSweep
        | Scenario::OdeStream
        | Scenario::PaperLorenz => ode::run(bench, scenario, size),
        Scenario::MlpTrain | Scenario::MlpInfer => neural::run(bench, scenario, size),
        Scenario::DeeponetTrain | Scenario::DeeponetInfer => deeponet::run(bench, scenario, size),
        Scenario::SdeEm | Scenario::SdeAdaptive => sde::run(bench, scenario, size),
        Scenario::StiffRober => stiff::run(bench, scenario, size),
        Scenario::Basins => basins::run(bench, size),
        Scenario::Lyapunov => lyapunov::run(bench, scenario, size),
        Scenario::Events => events::run(bench, size),
        Scenario::Estimate => estimate::run(bench, size),
        Scenario::Peak | Scenario::All => unreachable!("not a sized scenario"),
    }
}

pub fn run(args: &BenchArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    let sizes = args.sweep.as_deref().map(sweep_sizes).transpose()?;
    if sizes.is_some() && matches!(args.scenario, Scenario::Peak | Scenario::All) {
        return Err(CliError::Input(format!(
            "--sweep needs a scenario with a size; {} has none",
            args.scenario.name()
        )));
    }
    if args.size == Some(0) {
        return Err(CliError::Input("-n must be at least 1".into()));
    }
    if args.reps == 0 {
        return Err(CliError::Input(
            "--reps must be at least 1 (timed repetitions)".into(),
        ));
    }
    if let (Some(n), Some(sweep)) = (args.size, &args.sweep) {
        return Err(CliError::Input(format!(
            "-n {n} and --sweep {sweep} both give the size; use one of them"
        )));
    }
    if let (Some(n), Scenario::All | Scenario::Peak) = (args.size, args.scenario) {
        return Err(CliError::Input(format!(
            "-n {n} sizes one scenario; `bench {}` runs {} at fixed sizes (leave -n out, or \
             name one scenario)",
            args.scenario.name(),
            if args.scenario == Scenario::All {
                "every scenario"
            } else {
                "its microkernels"
            }
        )));
    }
    let largest = sizes.as_ref().and_then(|s| s.last().copied()).or(args.size);
    if let Some(n) = largest {
        check_memory(args.scenario, n)?;
    }
    // Made before any work, so that a bad path fails first and nothing is half-written.
    let out = args.out.clone().or_else(|| {
        sizes
            .as_ref()
            .map(|_| format!("bench-{}", args.scenario.name()).into())
    });
    let out = out
        .map(|dir| crate::io::OutputDir::create(&dir).map_err(|e| CliError::Input(e.to_string())))
        .transpose()?;
    let ctx = GpuContext::new(choice)?;
    let peak = crate::gpu::peak::measure(&ctx, args.reps.clamp(1, 10))?;
    let bench = Bench {
        ctx: &ctx,
        reps: args.reps.max(1),
        compare: args.compare,
    };
    let mut rows = Vec::new();
    match (args.scenario, &sizes) {
        (Scenario::Peak, _) => {}
        (Scenario::All, _) => {
            for scenario in Scenario::EVERY {
                if !args.json {
                    eprintln!("running {} ...", scenario.name());
                }
                rows.extend(run_scenario(&bench, scenario, None)?);
            }
        }
        (scenario, Some(sizes)) => {
            for &n in sizes {
                if !args.json {
                    eprintln!("running {} at {n} ...", scenario.name());
                }
                rows.extend(run_scenario(&bench, scenario, Some(n))?);
            }
        }
        (scenario, None) => rows = run_scenario(&bench, scenario, args.size)?,
    }
    let report = report::Report {
        ctx: &ctx,
        scenario: args.scenario,
        peak,
        rows,
    };
    report.print(args.json);
    if let Some(dir) = out {
        report.write(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_sizes_span_the_range_per_decade() {
        assert_eq!(
            sweep_sizes("N=1e3..1e5").unwrap(),
            vec![1000, 3162, 10000, 31623, 100000]
        );
        assert_eq!(sweep_sizes("N=10..1000/1").unwrap(), vec![10, 100, 1000]);
        assert_eq!(sweep_sizes("N=8..20/1").unwrap(), vec![8, 20]);
        for bad in [
            "1e3..1e5",
            "N=1e5..1e3",
            "N=0..10",
            "N=1e3..1e5/0",
            "N=a..b",
        ] {
            assert!(sweep_sizes(bad).is_err(), "{bad}");
        }
    }
}
