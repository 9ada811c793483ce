//! The built-in catalog: every system parses, every generated kernel passes naga, and the
//! GPU agrees with the CPU f64 twin on every system.

mod common;
use common::*;
use phaseflow::gpu::math_f64::probe_wgsl;
use phaseflow::gpu::peak::fma_wgsl;
use phaseflow::gpu::shader::{compose, shader_files, validate};
use phaseflow::model::builtin_names;
use phaseflow::model::expr::Func;
use phaseflow::nn::deeponet::DataLayout;
use phaseflow::nn::deeponet_kernels::{DeepONetLayout, combine_unaligned_wgsl, combine_wgsl};
use phaseflow::nn::deeponet_pair::{forward_pair_wgsl, weight_grad_pair_wgsl};
use phaseflow::nn::fused::{self, FusedLayout, Loss};
use phaseflow::nn::gpu::{Kernels, act_backward_wgsl, linear_forward_wgsl, matmul_wgsl};
use phaseflow::nn::{
    Activation, Architecture, DeepONetArch, Encoding, EncodingKind, NetSpec, Strategy,
};
use phaseflow::ode::adaptive_kernel::adaptive_wgsl;
use phaseflow::ode::kernel::fixed_step_wgsl;
use phaseflow::ode::{
    Control, Ensemble, InitialStates, Inputs, Precision, Save, Solver, Status, Table,
};

#[test]
fn catalog_spans_dimensions_and_kinds() {
    let names = builtin_names();
    assert!(names.len() >= 12, "{names:?}");
    let systems: Vec<_> = names.iter().map(|n| system(n)).collect();
    let dims: std::collections::BTreeSet<usize> = systems.iter().map(|s| s.dim()).collect();
    assert!(dims.contains(&1) && dims.contains(&6), "{dims:?}");
    assert!(
        systems.iter().any(|s| s.uses_time()),
        "a non-autonomous system"
    );
    for s in &systems {
        assert!(
            !s.meta.reference.is_empty(),
            "{} has no reference",
            s.name()
        );
        assert!(
            !s.meta.description.is_empty(),
            "{} has no description",
            s.name()
        );
        assert_eq!(
            s.name(),
            names[systems.iter().position(|x| x.name() == s.name()).unwrap()]
        );
    }
}

fn fused_arch(act: Activation, encoding: bool, trainable: bool) -> Architecture {
    Architecture {
        kind: "fourier_mlp".into(),
        encoding: encoding.then(|| Encoding {
            kind: EncodingKind::Gaussian,
            inputs: 3,
            features: 12,
            two_pi: true,
            order: "cos_then_sin".into(),
            sigma: Some(3.0),
            trainable,
        }),
        layers: vec![if encoding { 24 } else { 3 }, 40, 128, 2],
        activation: act,
        output_activation: Activation::Tanh,
    }
}

#[test]
fn every_shader_file_and_generated_kernel_validates() {
    // Complete files are validated with their includes expanded; templates (placeholders),
    // the `real` preludes (which need the status helpers) and nn/mlp/fused_rows.wgsl (which
    // needs its includer's bindings) through generated kernels.
    for (path, text) in shader_files() {
        if !text.contains("{{")
            && !path.starts_with("common/real_")
            && !matches!(path, "nn/mlp/fused_rows.wgsl" | "nn/deeponet/rows.wgsl")
        {
            let wgsl = compose(path, &[]).unwrap();
            validate(path, &wgsl, wgsl.contains("f64")).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    // The peak microkernel in both precisions (the copy kernel is a complete file).
    for real in ["f32", "f64"] {
        let wgsl = fma_wgsl(real, 16).unwrap();
        validate(&format!("peak fma {real}"), &wgsl, real == "f64")
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let control = Control::default();
    for name in builtin_names() {
        let s = system(name);
        for precision in [Precision::F32, Precision::F64] {
            let f64 = precision == Precision::F64;
            // Every solver takes fixed steps (the pairs without their error control).
            for solver in Solver::ALL {
                for wg in [64, 256] {
                    let wgsl = fixed_step_wgsl(&s, &solver.step_tableau(), wg, precision).unwrap();
                    validate(&format!("{name}/{}", solver.name()), &wgsl, f64)
                        .unwrap_or_else(|e| panic!("{e}"));
                }
            }
            for solver in Solver::ADAPTIVE {
                for dense in [false, true] {
                    let pair = solver.pair().unwrap();
                    let wgsl = adaptive_wgsl(&s, pair, &control, 64, precision, dense).unwrap();
                    validate(&format!("{name}/{}", solver.name()), &wgsl, f64)
                        .unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
    }
    for act in Activation::ALL {
        for kernels in [Kernels::Tiled, Kernels::Direct] {
            validate(
                &format!("nn {act:?}"),
                &linear_forward_wgsl(act, kernels).unwrap(),
                false,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        validate(
            &format!("nn {act:?}"),
            &act_backward_wgsl(act).unwrap(),
            false,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    for transposed in [false, true] {
        for kernels in [Kernels::Tiled, Kernels::Direct] {
            validate(
                "nn/mlp/matmul",
                &matmul_wgsl(transposed, kernels).unwrap(),
                false,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    // The fused network kernels, generated per architecture: every activation, with and
    // without an encoding (fixed and trained), both losses.
    for act in Activation::ALL {
        for (encoding, trainable) in [(false, false), (true, false), (true, true)] {
            let arch = fused_arch(act, encoding, trainable);
            let layout = FusedLayout::new(&arch);
            let label = format!("fused {act:?} {encoding} {trainable}");
            for wgsl in [
                fused::forward_wgsl(&layout).unwrap(),
                fused::backward_wgsl(&layout, fused::OutputDelta::FromLoss).unwrap(),
                fused::backward_wgsl(&layout, fused::OutputDelta::Given).unwrap(),
                fused::weight_grad_wgsl(&layout).unwrap().0,
                fused::loss_wgsl(&layout, Loss::Mse).unwrap(),
                fused::loss_wgsl(&layout, Loss::RelativeL2).unwrap(),
            ] {
                validate(&label, &wgsl, false).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
    // DeepONet's kernels (the paired forward and weight-gradient kernels, the combine
    // kernels of both data layouts for training and prediction) for each split strategy, a latent width whose
    // columns do not all start quads, a trunk with a trained Fourier encoding, and both
    // workgroup sizes (CPU adapters, GPUs).
    for strategy in [
        Strategy::SplitBoth,
        Strategy::SplitBranch,
        Strategy::SplitTrunk,
    ] {
        for (latent, encoded) in [(8, false), (5, false), (8, true)] {
            let net = |inputs| NetSpec {
                inputs,
                hidden: vec![16],
                encoding: None,
            };
            let mut trunk = net(2);
            if encoded {
                trunk.encoding = fused_arch(Activation::Relu, true, true)
                    .encoding
                    .map(|e| Encoding { inputs: 2, ..e });
            }
            let arch = DeepONetArch::new(net(7), trunk, latent, 2, strategy, Activation::Tanh);
            let layout = DeepONetLayout::new(&arch);
            let label = format!("deeponet {strategy:?} {latent} {encoded}");
            for wg in [8, 64] {
                for wgsl in [
                    forward_pair_wgsl(&layout, wg).unwrap(),
                    weight_grad_pair_wgsl(&layout, DataLayout::Aligned, wg)
                        .unwrap()
                        .0,
                    weight_grad_pair_wgsl(&layout, DataLayout::Unaligned, wg)
                        .unwrap()
                        .0,
                    combine_wgsl(&layout, true, wg).unwrap(),
                    combine_wgsl(&layout, false, wg).unwrap(),
                    combine_unaligned_wgsl(&layout, true, wg).unwrap(),
                    combine_unaligned_wgsl(&layout, false, wg).unwrap(),
                ] {
                    validate(&label, &wgsl, false).unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
    }
    for f in Func::ALL.into_iter().filter(|f| f.needs_f64_library()) {
        let args = ["a.x", "a.y", "a.x"];
        let call = format!("m64_{}({})", f.name(), args[..f.arity()].join(", "));
        let wgsl = probe_wgsl(&call).unwrap();
        validate(&call, &wgsl, true).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Every built-in system, RK4, 100 steps of its suggested dt from 16 random starts near
/// its default state, saving every 10 steps.
///
/// Tolerance: the GPU computes in f32 (unit round-off 6e-8). Both sides start from the same
/// f32-rounded inputs, so the difference is accumulated f32 round-off: ~10 operations per
/// right-hand side × 4 stages × 100 steps ≈ 4e3 roundings, adding up like a random walk to
/// ~60 × 6e-8 ≈ 4e-6 relative, times the growth of perturbations over the span (at most
/// a Lyapunov time or so here). Seen on lavapipe: 3e-7 to 1e-6 for most systems, up to
/// ~1e-5 for the most chaotic (Lorenz-96). 1e-4 relative to the
/// state's scale leaves room for that and still catches any wrong coefficient or
/// operator, which shows up at 1e-2 or more.
#[test]
fn gpu_matches_cpu_twin_on_every_system() {
    for name in builtin_names() {
        let s = system(name);
        let dt = s.meta.dt.unwrap();
        let n = 16;
        let mut e = Ensemble::new(&s, n);
        let ranges = s
            .default_state()
            .iter()
            .enumerate()
            .map(|(i, &v)| (i, v - 0.1 * v.abs().max(0.1), v + 0.1 * v.abs().max(0.1)))
            .collect();
        e.initial = InitialStates::Uniform { seed: 11, ranges };
        // Systems with inputs get a different random signal per trajectory, so that the
        // interpolation (and where each trajectory's values sit) is checked too.
        let cols = s.n_input_values();
        if cols > 0 {
            let data = random_matrix(n, cols, 12, 0).data;
            e.inputs = Inputs::Table(Table {
                data,
                rows: n,
                cols,
                origin: "random inputs".into(),
            });
        }
        // RK4, and Tsit5's method in fixed steps (paper-lorenz's fixed-step runs).
        for solver in [Solver::Rk4, Solver::Tsit5] {
            let p = problem(
                s.clone(),
                solver,
                100.0 * dt,
                dt,
                Save::Every(10),
                e.clone(),
            );
            let sol = run(&p);
            assert_eq!(sol.n_save(), 11);
            let mut worst = 0.0f64;
            for j in 0..n {
                let (cpu, status) = cpu_twin(&p, j);
                assert_eq!(status, Status::Success, "{name}");
                assert_eq!(sol.status[j], Status::Success, "{name}");
                let scale = cpu.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                for slot in 0..sol.n_save() {
                    for c in 0..sol.dim {
                        let g = sol.state(slot, j)[c];
                        let r = cpu[slot * sol.dim + c];
                        worst = worst.max((g - r).abs() / scale);
                        assert!(
                            (g - r).abs() <= 1e-4 * scale,
                            "{name} {}: trajectory {j} slot {slot} component {c}: gpu {g} cpu {r} (scale {scale})",
                            solver.name()
                        );
                    }
                }
            }
            eprintln!(
                "{name} {}: worst relative difference {worst:.2e}",
                solver.name()
            );
        }
    }
}
