//! `phaseflow bench`: named scenarios that check their own result before timing it, and
//! report wall and GPU time, throughput, counted FLOP/s and bytes/s, and the share of the
//! adapter's measured ceilings (`gpu::peak`) that represents. Scenarios: `peak`; the ODE
//! ensembles (`ode.rs`: fixed-step, adaptive, a saved sweep, streaming to disk, and the
//! published GPU ensemble benchmark `paper-lorenz`); the neural core (`neural.rs`); DeepONet
//! (`deeponet.rs`). `report.rs` prints tables and JSON and writes sweeps' CSV and plots.

mod deeponet;
mod neural;
mod ode;
mod report;

use super::CliError;
use crate::gpu::peak::Peak;
use crate::gpu::{AdapterChoice, GpuContext};
use crate::precision::Precision;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Measured ceilings of the adapter: f32 (and f64) FMA rate and copy bandwidth, from
    /// microkernels checked against their CPU twin
    Peak,
    /// RK4 on Lorenz (the published benchmark's problem: rho over [0, 21], t in [0, 1],
    /// dt = 1e-3), final state only, -n trajectories (default 1048576)
    OdeFixed,
    /// Tsit5 at rtol = atol = 1e-6 on the same problem, -n trajectories (default 1048576)
    OdeAdaptive,
    /// A one-parameter sweep with saving: Lorenz RK4, rho over [0, 50], t in [0, 1], the
    /// state saved every 10 steps, -n trajectories (default 65536)
    OdeSweep,
    /// The same saves streamed to .npy on disk (a temporary directory), -n trajectories
    /// (default 262144)
    OdeStream,
    /// Training throughput: Gaussian Fourier features (128 outputs) → 3×64 ReLU → 1,
    /// full Adam steps on batches of -n samples (default 16384)
    MlpTrain,
    /// Inference throughput of the same network on -n samples (default 1048576)
    MlpInfer,
    /// DeepONet training: DeepXDE's aligned antiderivative set-up (150 functions × 100
    /// points, branch [100, 40, 40], trunk [1, 40, 40], ReLU), full-batch Adam iterations
    DeeponetTrain,
    /// DeepONet inference with the same network: latency of one function at 100 points,
    /// and throughput over -n functions (default 10000)
    DeeponetInfer,
    /// The published GPU ensemble benchmark: Lorenz, rho = linspace(0, 21, N), u0 = (1, 0,
    /// 0), t in [0, 1], f32, final state; Tsit5 with dt = 1e-3 fixed and adaptive at rtol =
    /// atol = 1e-8, N = 8, 32, ... up to -n (default 8388608), with the error achieved
    PaperLorenz,
    /// Every scenario above at its default size, in one table
    All,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Peak => "peak",
            Scenario::OdeFixed => "ode-fixed",
            Scenario::OdeAdaptive => "ode-adaptive",
            Scenario::OdeSweep => "ode-sweep",
            Scenario::OdeStream => "ode-stream",
            Scenario::MlpTrain => "mlp-train",
            Scenario::MlpInfer => "mlp-infer",
            Scenario::DeeponetTrain => "deeponet-train",
            Scenario::DeeponetInfer => "deeponet-infer",
            Scenario::PaperLorenz => "paper-lorenz",
            Scenario::All => "all",
        }
    }

    /// What `all` runs after `peak`, cheapest first.
    const EVERY: [Scenario; 9] = [
        Scenario::OdeFixed,
        Scenario::OdeAdaptive,
        Scenario::OdeSweep,
        Scenario::OdeStream,
        Scenario::MlpTrain,
        Scenario::MlpInfer,
        Scenario::DeeponetTrain,
        Scenario::DeeponetInfer,
        Scenario::PaperLorenz,
    ];
}

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

/// One measured configuration of a scenario.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub(super) scenario: &'static str,
    /// The variant: kernels, solver, latency or throughput.
    pub(super) what: String,
    pub(super) size: usize,
    pub(super) precision: Precision,
    /// Wall time of one unit of work (a training step, an ensemble run, a prediction).
    pub(super) seconds: f64,
    /// The same unit's GPU time from timestamp queries, where the adapter has them.
    pub(super) gpu_seconds: Option<f64>,
    /// Work done in that unit, counted in `unit`s.
    pub(super) items: f64,
    pub(super) unit: &'static str,
    /// Counted floating-point operations in that unit (`ode::cost` conventions).
    pub(super) flops: Option<f64>,
    /// Bytes the unit must move at the least (inputs read, results written).
    pub(super) bytes: Option<f64>,
    pub(super) check: String,
    /// Achieved error against an independent reference, where the scenario has one.
    pub(super) error: Option<f64>,
    /// GPU time of each dispatch of one step (timestamp queries), where measured.
    pub(super) passes: Vec<(&'static str, f64)>,
    /// A line of the scenario's own figures.
    pub(super) note: Option<String>,
}

impl Row {
    pub(super) fn new(
        scenario: Scenario,
        what: &str,
        size: usize,
        seconds: f64,
        (items, unit): (f64, &'static str),
        check: String,
    ) -> Row {
        Row {
            scenario: scenario.name(),
            what: what.into(),
            size,
            precision: Precision::F32,
            seconds,
            gpu_seconds: None,
            items,
            unit,
            flops: None,
            bytes: None,
            check,
            error: None,
            passes: Vec::new(),
            note: None,
        }
    }

    /// Each dispatch's GPU time from a profiled step, and their sum as the step's GPU time.
    pub(super) fn set_passes(&mut self, passes: Option<Vec<(&'static str, std::time::Duration)>>) {
        if let Some(passes) = passes {
            self.passes = passes
                .into_iter()
                .map(|(label, t)| (label, t.as_secs_f64()))
                .collect();
            self.gpu_seconds = Some(self.passes.iter().map(|p| p.1).sum());
        }
    }

    /// Items per second of wall time.
    pub(super) fn throughput(&self) -> f64 {
        self.items / self.seconds
    }

    /// The device's time for the unit: GPU time where measured, wall time otherwise.
    pub(super) fn device_seconds(&self) -> f64 {
        self.gpu_seconds.unwrap_or(self.seconds)
    }

    pub(super) fn flops_per_s(&self) -> Option<f64> {
        self.flops.map(|f| f / self.device_seconds())
    }

    pub(super) fn bytes_per_s(&self) -> Option<f64> {
        self.bytes.map(|b| b / self.device_seconds())
    }

    /// Counted FLOP/s as a share of the measured FMA ceiling in the row's precision.
    pub(super) fn share_of_peak_flops(&self, peak: &Peak) -> Option<f64> {
        let ceiling = match self.precision {
            Precision::F32 => Some(peak.f32_flops),
            Precision::F64 => peak.f64_flops,
        }?;
        self.flops_per_s().map(|f| f / ceiling)
    }

    pub(super) fn share_of_peak_bytes(&self, peak: &Peak) -> Option<f64> {
        self.bytes_per_s().map(|b| b / peak.bytes_per_s)
    }
}

/// What a scenario's runs share: the device and the options.
pub(super) struct Bench<'a> {
    pub(super) ctx: &'a GpuContext,
    pub(super) reps: usize,
    pub(super) compare: bool,
}

pub(super) fn sync(ctx: &GpuContext) -> Result<(), CliError> {
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| CliError::Runtime(format!("waiting for the GPU failed: {e}")))?;
    Ok(())
}

fn rel_diff(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-30)
}

/// Seconds per call of `step`, over `reps` calls and the device work they queued.
pub(super) fn time(ctx: &GpuContext, reps: usize, mut step: impl FnMut()) -> Result<f64, CliError> {
    let start = Instant::now();
    for _ in 0..reps {
        step();
    }
    sync(ctx)?;
    Ok(start.elapsed().as_secs_f64() / reps as f64)
}

/// Outputs within 1e-4 of the twin's largest magnitude (`got` may run longer than `want`):
/// the worst difference relative to that scale, as the report's check.
pub(super) fn check_outputs(got: &[f64], want: &[f64]) -> Result<f64, CliError> {
    let scale = want.iter().map(|v| v.abs()).fold(1e-30, f64::max);
    let worst = want
        .iter()
        .zip(got)
        .map(|(w, g)| (w - g).abs())
        .fold(0.0, f64::max)
        / scale;
    if worst > 1e-4 {
        return Err(CliError::Runtime(format!(
            "self-check failed: outputs differ from the CPU twin by {worst:.2e}"
        )));
    }
    Ok(worst)
}

/// A loss within 1e-4 of the twin's (f32 sums over the batch), as the report's check.
pub(super) fn check_loss(got: f64, want: f64) -> Result<String, CliError> {
    let diff = rel_diff(got, want);
    if diff > 1e-4 {
        return Err(CliError::Runtime(format!(
            "self-check failed: device loss {got} vs CPU twin {want}"
        )));
    }
    Ok(format!("loss {got:.6e} = twin ± {diff:.1e}"))
}

/// The median of some timings (sorted in place).
pub(super) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
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
