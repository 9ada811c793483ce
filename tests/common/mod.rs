//! Shared by the integration tests: one GPU context per test binary, and small helpers.
#![allow(dead_code)]

use phaseflow::gpu::{AdapterChoice, GpuContext, GpuError};
use phaseflow::model::{System, builtin};
use phaseflow::ode::{self, Ensemble, FixedStepProblem, Precision, Save, Solver, TimeGrid};
use std::sync::OnceLock;

/// The one GPU context of this test binary. Without an adapter every GPU test fails with
/// one sentence that says what to install, not a backtrace of the driver search.
pub fn gpu() -> &'static GpuContext {
    static CTX: OnceLock<Result<GpuContext, String>> = OnceLock::new();
    let ctx = CTX.get_or_init(|| {
        GpuContext::new(&AdapterChoice::Best).map_err(|e| match e {
            GpuError::NoAdapter => "phaseflow's tests need a Vulkan/Metal/DX12 adapter; none was \
                 found: install Mesa's lavapipe (`make setup` does it, or `sudo apt-get install \
                 mesa-vulkan-drivers`)"
                .to_string(),
            other => format!("phaseflow's tests could not open a GPU adapter: {other}"),
        })
    });
    match ctx {
        Ok(ctx) => ctx,
        // The sentence alone: unwinding without the panic hook prints no location or
        // backtrace (the harness still reports the test as failed, with this output).
        Err(sentence) => {
            eprintln!("{sentence}");
            std::panic::resume_unwind(Box::new(sentence.clone()))
        }
    }
}

/// A second context on the same adapter whose kernels take the forms GPUs run
/// (`GpuContext::cpu_forms` false): storage parameter bindings shared through subgroup
/// broadcasts, narrow weight-gradient tasks, workgroups of 64.
#[allow(dead_code)]
pub fn gpu_with_gpu_forms() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    second_context(&CTX, GpuContext::new_with_gpu_forms)
}

/// `cell`'s context, opened on the adapter `gpu()` chose with `open` at the first call.
fn second_context(
    cell: &'static OnceLock<GpuContext>,
    open: fn(&AdapterChoice) -> Result<GpuContext, phaseflow::gpu::GpuError>,
) -> &'static GpuContext {
    cell.get_or_init(|| {
        gpu();
        open(&AdapterChoice::Best).expect("the adapter opened once already")
    })
}

/// A second context on the same adapter, opened without subgroup operations: the fused
/// network kernels then share no loads between lanes (`nn::mlp::fused::LaneSharing::Loads`),
/// as on an adapter that has no subgroups.
pub fn gpu_without_subgroups() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    second_context(&CTX, GpuContext::new_without_subgroups)
}

pub fn system(name: &str) -> System {
    builtin(name)
        .expect("built-in exists")
        .expect("built-in parses")
}

pub fn problem(
    system: System,
    solver: Solver,
    t1: f64,
    dt: f64,
    save: Save,
    ensemble: Ensemble,
) -> FixedStepProblem {
    FixedStepProblem {
        system,
        solver,
        grid: TimeGrid::from_span(0.0, t1, dt).unwrap(),
        save,
        ensemble,
        precision: Precision::F32,
    }
}

pub fn run(p: &FixedStepProblem) -> ode::Solution {
    ode::simulate(gpu(), p, &ode::RunOptions::default()).unwrap()
}

/// Rounds through f32, as the GPU sees its inputs.
pub fn f32_round(v: &[f64]) -> Vec<f64> {
    v.iter().map(|&x| x as f32 as f64).collect()
}

/// The CPU twin's saves ([slot][dim]) and status for trajectory `j` of a problem, from the
/// same f32-rounded inputs the GPU gets.
pub fn cpu_twin(p: &FixedStepProblem, j: usize) -> (Vec<f64>, ode::Status) {
    let u0 = f32_round(&p.ensemble.states(j..j + 1));
    let params = f32_round(&p.ensemble.param_slots(j..j + 1));
    let plan = ode::SavePlan::new(p.save, p.grid.n_steps).unwrap();
    let tableau = p.solver.step_tableau();
    ode::fixed::cpu::integrate(&p.system, &tableau, &u0, &params, &p.grid, &plan)
}

/// A [rows, cols] matrix of uniform values in [-1, 1) from `seed` and `stream`.
pub fn random_matrix(rows: usize, cols: usize, seed: u64, stream: u32) -> phaseflow::nn::Matrix {
    phaseflow::nn::Matrix {
        rows,
        cols,
        data: (0..rows * cols)
            .map(|k| 2.0 * phaseflow::rng::uniform_f64(seed, k as u64, stream) - 1.0)
            .collect(),
    }
}

/// Every value of `got` within `rel` of the largest magnitude of `want`.
pub fn assert_close(name: &str, got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{name}");
    let scale = want.iter().map(|v| v.abs()).fold(1e-30, f64::max);
    let worst = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= rel * scale,
        "{name}: worst difference {worst:.3e} vs scale {scale:.3e}"
    );
}

#[cfg(feature = "cli")]
pub mod cli;
pub mod fuzz;
#[cfg(feature = "serve")]
pub mod server;
