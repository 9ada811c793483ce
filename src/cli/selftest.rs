//! `phaseflow selftest`: every kernel family against its CPU twin on the chosen adapter,
//! as a table (or JSON) with the adapter's subgroup sizes and limits; exit 1 on any failure.

use super::error::CliError;
use crate::gpu::{AdapterChoice, GpuContext};
use crate::nn::mlp::fused::LaneSharing;
use crate::selftest::{self, Check, Options, Report, Verdict};

pub const LONG_ABOUT: &str = "Check every kernel family on this adapter against its CPU twin \
(plain Rust in f64) on small random problems: fixed-step and adaptive ODE solvers, stiff \
Rosenbrock methods, SDE methods, Lyapunov spectra, the f64 math library, the fused MLP kernels \
(forward, backward, weight gradients), Adam and DeepONet; f32 and f64 where the adapter has \
f64. Each check prints its worst deviation against the bound the test suite justifies for it. \
Run it first on new hardware and attach `--json` to a bug report. Exits 1 if any check fails.";

#[derive(Debug, clap::Args)]
pub struct SelftestArgs {
    /// Print the report as JSON instead of a table
    #[arg(long)]
    json: bool,
    /// Run only these families (comma-separated): fixed, adaptive, stiff, sde, lyapunov,
    /// estimate-fold, math-f64, mlp, adam, deeponet
    #[arg(long, value_delimiter = ',', value_name = "FAMILY,...")]
    only: Vec<String>,
    /// Seed of the random problems
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn row(c: &Check) -> String {
    let verdict = match c.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "FAIL",
        Verdict::Skip => "skip",
    };
    let numbers = if c.worst.is_nan() && c.bound.is_nan() {
        String::new()
    } else {
        format!("{:>9.2e} / {:<8.1e} {}", c.worst, c.bound, c.unit)
    };
    let note = if c.note.is_empty() {
        String::new()
    } else {
        format!("  ({})", c.note)
    };
    format!(
        "{verdict:<5} {:<13} {:<4} {:<42} {numbers}{note}",
        c.family,
        c.precision.name(),
        c.case
    )
}

fn header(ctx: &GpuContext) -> String {
    let a = &ctx.summary;
    let info = ctx.adapter.get_info();
    format!(
        "adapter: {} ({}, {}), driver {} {}\nsubgroups: {}–{} lanes (fused network kernels: {}) · f64: {} · storage binding: {} MiB · invocations/workgroup: {}",
        a.name,
        a.backend,
        a.device_type,
        a.driver,
        a.driver_info,
        info.subgroup_min_size,
        info.subgroup_max_size,
        match LaneSharing::for_context(ctx) {
            LaneSharing::Subgroup => "loads shared through subgroups",
            LaneSharing::Loads => "every lane loads its own, no subgroups",
        },
        if ctx.has_f64() { "yes" } else { "no" },
        a.max_storage_buffer_binding_size >> 20,
        a.max_compute_invocations_per_workgroup,
    )
}

fn summary(r: &Report) -> String {
    format!(
        "{} passed, {} failed, {} skipped in {:.1} s (seed {})",
        r.count(Verdict::Pass),
        r.count(Verdict::Fail),
        r.count(Verdict::Skip),
        r.seconds,
        r.seed
    )
}

pub fn run(args: &SelftestArgs, choice: &AdapterChoice) -> Result<(), CliError> {
    selftest::check_families(&args.only).map_err(|e| CliError::Input(e.to_string()))?;
    let ctx = GpuContext::new(choice)?;
    let options = Options {
        seed: args.seed,
        only: args.only.clone(),
    };
    if !args.json {
        println!("{}\n", header(&ctx));
        println!(
            "{:<5} {:<13} {:<4} {:<40} {:>9}   bound",
            "", "family", "", "case", "worst"
        );
    }
    let json = args.json;
    let report = selftest::run(&ctx, &options, |c| {
        if !json {
            println!("{}", row(c));
        }
    })
    .map_err(|e| CliError::Input(e.to_string()))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| CliError::Runtime(e.to_string()))?
        );
    } else {
        println!("\n{}", summary(&report));
    }
    if report.passed() {
        Ok(())
    } else {
        Err(CliError::Runtime(format!(
            "self-test failed on {}: {}",
            report.adapter.name,
            summary(&report)
        )))
    }
}
