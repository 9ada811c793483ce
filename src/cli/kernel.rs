//! `phaseflow kernel`: the composed WGSL of an ODE kernel, exactly as it goes to naga (and
//! then to the driver), or with `--list` the kernel families phaseflow generates. No GPU is
//! needed: kernels are composed and validated on the host.

use super::error::CliError;
use super::spec_flags::flag_error;
use crate::gpu::shader::validate;
use crate::model::System;
use crate::ode::adaptive::kernel::adaptive_wgsl;
use crate::ode::fixed::kernel::fixed_step_wgsl;
use crate::ode::sde::SdeMethod;
use crate::ode::sde::events as sde_kernel;
use crate::ode::sde::kernel::Terms;
use crate::ode::{Control, Precision, Solver, Tolerance};
use crate::spec::{control_error, load_system};

pub const LONG_ABOUT: &str = "\
Print the composed WGSL of a system's ODE kernel, exactly as phaseflow hands it to naga and the
driver: templates from shaders/ with their includes expanded and placeholders filled with the
system's right-hand side, the solver's coefficients and the precision's arithmetic.

Fixed-step solvers (euler, heun, rk4) and adaptive solvers with --fixed-step give the fixed-step
kernel; adaptive solvers (bs3, dp5, tsit5, dop853) the adaptive kernel, whose step-size control
constants (--rtol, --atol) are compiled in. --dense gives the variant `simulate --saveat` runs
(with the continuous extension); without it, the final-state-only variant. The kernel is
validated with naga after printing; a failure is reported on stderr (exit 1).

--list names every kernel family phaseflow generates, its template files and where it is used.

Examples:
  phaseflow kernel lorenz --solver rk4
  phaseflow kernel lorenz --solver tsit5 --precision f64 --dense --rtol 1e-10 --atol 1e-10
  phaseflow kernel my_system.toml --solver dp5 --fixed-step
  phaseflow kernel --list";

/// The two ways to call `kernel`; clap would derive `kernel --list [SYSTEM]`, which it
/// then refuses.
pub const USAGE: &str = "phaseflow kernel [OPTIONS] <SYSTEM>\n       phaseflow kernel --list";

#[derive(Debug, clap::Args)]
pub struct KernelArgs {
    /// A built-in system's name or the path of a system file (.toml)
    #[arg(required_unless_present = "list")]
    system: Option<String>,

    /// List every kernel family instead
    #[arg(long, conflicts_with_all = ["system", "solver", "precision", "fixed_step", "dense",
          "rtol", "atol", "workgroup_size", "lyapunov"])]
    list: bool,

    /// Runge–Kutta method: fixed-step euler, heun, rk4 [default]; adaptive bs3, dp5, tsit5,
    /// dop853
    #[arg(long, value_enum, hide_possible_values = true)]
    solver: Option<Solver>,

    /// Arithmetic precision: f32 [default] or f64. Printing needs no GPU adapter (running
    /// an f64 kernel needs SHADER_F64 and SHADER_INT64)
    #[arg(long, value_enum, hide_possible_values = true)]
    precision: Option<Precision>,

    /// Adaptive solvers: the fixed-step kernel of the pair's propagating method
    #[arg(long)]
    fixed_step: bool,

    /// Adaptive solvers: the dense-output variant that `simulate --saveat` runs
    #[arg(long)]
    dense: bool,

    /// Adaptive solvers: relative tolerance for every state [default: 1e-6]
    #[arg(long, allow_negative_numbers = true)]
    rtol: Option<f64>,

    /// Adaptive solvers: absolute tolerance for every state [default: 1e-6]
    #[arg(long, allow_negative_numbers = true)]
    atol: Option<f64>,

    /// Invocations per workgroup, as `simulate --workgroup-size`
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    workgroup_size: u32,

    /// The Lyapunov kernel of `phaseflow lyapunov` with K exponents (the solver's
    /// fixed-step tableau on the state and K tangent vectors)
    #[arg(long, value_name = "K", conflicts_with_all = ["dense", "rtol", "atol", "fixed_step"])]
    lyapunov: Option<usize>,
}

/// A kind of kernel phaseflow composes: its name, the template files it starts from, and
/// what it is for. `--list` prints these; a test checks every template file is named.
pub struct KernelFamily {
    pub name: &'static str,
    pub templates: &'static [&'static str],
    pub what: &'static str,
}

pub const FAMILIES: &[KernelFamily] = &[
    KernelFamily {
        name: "ode fixed",
        templates: &["ode/fixed/step.wgsl", "ode/fixed/events.wgsl"],
        what: "fixed-step Runge-Kutta per system x tableau x precision \
               (`phaseflow kernel SYSTEM --solver rk4`)",
    },
    KernelFamily {
        name: "ode adaptive",
        templates: &["ode/adaptive/step.wgsl", "ode/adaptive/events.wgsl"],
        what: "embedded pair with step-size control, final-state or dense output \
               (`phaseflow kernel SYSTEM --solver tsit5 [--dense]`)",
    },
    KernelFamily {
        name: "ode sde",
        templates: &[
            "ode/sde/fixed.wgsl",
            "ode/sde/adaptive.wgsl",
            "ode/sde/fixed_events.wgsl",
            "ode/sde/adaptive_events.wgsl",
        ],
        what: "stochastic systems: em, milstein, euler-heun, platen with counter-based \
               Philox noise, and milstein-adaptive over a virtual Brownian tree \
               (`phaseflow kernel ornstein_uhlenbeck --solver milstein`)",
    },
    KernelFamily {
        name: "ode stiff",
        templates: &["ode/stiff/step.wgsl", "ode/stiff/events.wgsl"],
        what: "stiff systems: rosenbrock23, rodas4, rodas5p with the symbolic Jacobian and an \
               unrolled sparse LU, and auto (tsit5 <-> rodas5p per trajectory) \
               (`phaseflow kernel rober --solver rodas5p [--dense]`)",
    },
    KernelFamily {
        name: "ode lyapunov",
        templates: &["ode/lyapunov/step.wgsl"],
        what: "Lyapunov spectra: the state and k tangent vectors through one fixed-step \
               Runge-Kutta method with the sparse symbolic Jacobian, modified Gram-Schmidt \
               (`phaseflow kernel lorenz --lyapunov 3`)",
    },
    KernelFamily {
        name: "nn mlp forward",
        templates: &[
            "nn/mlp/linear_forward.wgsl",
            "nn/mlp/linear_forward_direct.wgsl",
            "nn/mlp/encode_forward.wgsl",
        ],
        what: "layer-by-layer MLP: one linear layer + activation per dispatch (tiled or \
               direct), Fourier encoding",
    },
    KernelFamily {
        name: "nn mlp backward",
        templates: &[
            "nn/mlp/act_backward.wgsl",
            "nn/mlp/matmul.wgsl",
            "nn/mlp/matmul_direct.wgsl",
            "nn/mlp/encode_backward.wgsl",
        ],
        what: "layer-by-layer MLP gradients: activation derivative, (transposed) matmul, \
               encoding gradient",
    },
    KernelFamily {
        name: "nn mlp weight-grad",
        templates: &["nn/mlp/column_sum.wgsl", "nn/mlp/mse.wgsl"],
        what: "layer-by-layer MLP bias gradients (column sums) and the MSE loss",
    },
    KernelFamily {
        name: "nn mlp fused",
        templates: &[
            "nn/mlp/fused_forward.wgsl",
            "nn/mlp/fused_backward.wgsl",
            "nn/mlp/fused_weight_grad.wgsl",
            "nn/mlp/fused_loss.wgsl",
        ],
        what: "whole-network kernels generated per architecture: forward, backward, \
               weight gradients, loss (MSE, relative L2)",
    },
    KernelFamily {
        name: "nn train",
        templates: &[
            "nn/train/adam.wgsl",
            "nn/train/grad_clip.wgsl",
            "nn/train/gradient_sum.wgsl",
        ],
        what: "the training toolkit: the Adam/SGD update of every parameter buffer, \
               gradient-norm clipping, and the sum of per-split gradients",
    },
    KernelFamily {
        name: "nn deeponet",
        templates: &[
            "nn/deeponet/forward.wgsl",
            "nn/deeponet/weight_grad.wgsl",
            "nn/deeponet/combine.wgsl",
            "nn/deeponet/combine_unaligned.wgsl",
        ],
        what: "branch and trunk nets in one paired forward and weight-gradient kernel, and \
               the combine (dot product) kernels for aligned and unaligned data",
    },
    KernelFamily {
        name: "ode estimate fold",
        templates: &["ode/estimate/fold_normals.wgsl"],
        what: "folds a fit's states and sensitivities at the observation times into each \
               trajectory's normal equations in f64, and sums them over groups of 64 \
               trajectories for a shared fit (`phaseflow estimate`)",
    },
    KernelFamily {
        name: "gpu peak",
        templates: &["gpu/peak_fma.wgsl", "gpu/peak_copy.wgsl"],
        what: "microkernels `phaseflow bench` uses to measure the adapter's FMA rate and \
               memory bandwidth",
    },
    KernelFamily {
        name: "f64 math probe",
        templates: &["common/math_f64_probe.wgsl"],
        what: "checks the software f64 math library (exp, log, sin, ...) against the CPU",
    },
];

/// The composed source of the ODE kernel `args` describe, and whether it uses f64.
fn compose(args: &KernelArgs, system_name: &str) -> Result<(String, bool), CliError> {
    let system = load_system(system_name)?;
    if let Some(k) = args.lyapunov {
        return compose_lyapunov(args, &system, k);
    }
    if system.noise.is_some() || args.solver.is_some_and(Solver::is_sde) {
        return compose_sde(args, &system);
    }
    let solver = args.solver.unwrap_or_default();
    let precision = args.precision.unwrap_or_default();
    if args.fixed_step && !solver.is_adaptive() {
        return Err(CliError::Input(format!(
            "--fixed-step applies to adaptive solvers (bs3, dp5, tsit5, dop853); '{}' takes \
             fixed steps already",
            solver.name()
        )));
    }
    let adaptive = solver.is_adaptive() && !args.fixed_step;
    if !adaptive {
        // A fixed-step kernel has no step-size control, so nothing here could use these.
        let reason = if solver.is_adaptive() {
            "--fixed-step gives the fixed-step kernel, which has no error control or dense \
             output"
                .to_string()
        } else {
            format!("'{}' is a fixed-step solver", solver.name())
        };
        for (flag, given) in [
            ("--dense", args.dense),
            ("--rtol", args.rtol.is_some()),
            ("--atol", args.atol.is_some()),
        ] {
            if given {
                return Err(CliError::Input(format!(
                    "{flag} applies to the adaptive kernel (bs3, dp5, tsit5, dop853 without \
                     --fixed-step); {reason}"
                )));
            }
        }
    }
    if let Some(method) = solver.stiff_method() {
        if args.fixed_step {
            return Err(CliError::Input(format!(
                "--fixed-step applies to the explicit pairs (bs3, dp5, tsit5, dop853); '{}' \
                 always controls its steps",
                solver.name()
            )));
        }
        let defaults = Control::default();
        let control = Control {
            rtol: args.rtol.map_or(defaults.rtol.clone(), Tolerance::All),
            atol: args.atol.map_or(defaults.atol.clone(), Tolerance::All),
            ..defaults
        };
        control
            .validate(system.dim())
            .map_err(|e| flag_error(control_error(e)))?;
        crate::ode::stiff::problem::check_system(&system)
            .map_err(|e| CliError::Input(e.to_string()))?;
        let wgsl = crate::ode::stiff::kernel::stiff_wgsl(
            &system,
            method,
            &control,
            args.workgroup_size,
            precision,
            args.dense,
        )
        .map_err(|e| CliError::Runtime(e.to_string()))?;
        return Ok((wgsl, precision == Precision::F64));
    }
    let wgsl = if adaptive {
        let pair = solver.pair().ok_or_else(|| {
            CliError::Input(format!("'{}' is not an adaptive solver", solver.name()))
        })?;
        let defaults = Control::default();
        let control = Control {
            rtol: args.rtol.map_or(defaults.rtol.clone(), Tolerance::All),
            atol: args.atol.map_or(defaults.atol.clone(), Tolerance::All),
            ..defaults
        };
        control
            .validate(system.dim())
            .map_err(|e| flag_error(control_error(e)))?;
        adaptive_wgsl(
            &system,
            pair,
            &control,
            args.workgroup_size,
            precision,
            args.dense,
        )
    } else {
        fixed_step_wgsl(
            &system,
            &solver.step_tableau(),
            args.workgroup_size,
            precision,
        )
    }
    .map_err(|e| CliError::Runtime(e.to_string()))?;
    Ok((wgsl, precision == Precision::F64))
}

/// The Lyapunov kernel of `phaseflow lyapunov -k K` with the solver's fixed step.
fn compose_lyapunov(
    args: &KernelArgs,
    system: &System,
    k: usize,
) -> Result<(String, bool), CliError> {
    let solver = args.solver.unwrap_or_default();
    if solver.is_sde() || solver.is_stiff() {
        return Err(CliError::Input(format!(
            "--lyapunov takes an explicit Runge-Kutta method (euler, heun, rk4, or a pair's \
             fixed step: bs3, dp5, tsit5, dop853); '{}' is not one",
            solver.name()
        )));
    }
    let jacobian = crate::ode::lyapunov::problem::check_system(system, k)
        .map_err(|e| CliError::Input(e.to_string()))?;
    let precision = args.precision.unwrap_or_default();
    let wgsl = crate::ode::lyapunov::kernel::lyapunov_wgsl(
        system,
        &jacobian,
        &solver.step_tableau(),
        k,
        args.workgroup_size,
        precision,
    )
    .map_err(|e| CliError::Runtime(e.to_string()))?;
    Ok((wgsl, precision == Precision::F64))
}

/// The SDE kernel of a stochastic system: fixed-step for em, milstein, euler-heun and
/// platen (and milstein-adaptive with --fixed-step), adaptive for milstein-adaptive.
fn compose_sde(args: &KernelArgs, system: &System) -> Result<(String, bool), CliError> {
    let default = SdeMethod::default_for(system.noise.as_ref());
    let solver = args.solver.unwrap_or(match default {
        SdeMethod::EulerHeun => Solver::EulerHeun,
        _ => Solver::Em,
    });
    let precision = args.precision.unwrap_or_default();
    let Some(method) = solver.sde_method() else {
        return Err(CliError::Input(format!(
            "'{}' is an ODE solver, but {} is stochastic (it has a noise block); choose em, \
             milstein, euler-heun, platen or milstein-adaptive",
            solver.name(),
            system.name()
        )));
    };
    let terms = Terms::new(system, method).map_err(|e| CliError::Input(e.to_string()))?;
    if args.dense {
        return Err(CliError::Input(
            "--dense applies to ODE pairs; SDE steps land on their save times".into(),
        ));
    }
    let adaptive = method.is_adaptive() && !args.fixed_step;
    if args.fixed_step && !method.is_adaptive() {
        return Err(CliError::Input(format!(
            "--fixed-step applies to milstein-adaptive; '{}' takes fixed steps already",
            method.name()
        )));
    }
    let wgsl = if adaptive {
        let defaults = Control::default();
        let control = Control {
            rtol: args.rtol.map_or(defaults.rtol.clone(), Tolerance::All),
            atol: args.atol.map_or(defaults.atol.clone(), Tolerance::All),
            ..defaults
        };
        control
            .validate(system.dim())
            .map_err(|e| flag_error(control_error(e)))?;
        sde_kernel::adaptive_kernel(system, &terms, &control, args.workgroup_size, precision)
    } else {
        for (flag, given) in [
            ("--rtol", args.rtol.is_some()),
            ("--atol", args.atol.is_some()),
        ] {
            if given {
                return Err(CliError::Input(format!(
                    "{flag} applies to milstein-adaptive; '{}' takes fixed steps",
                    method.fixed().name()
                )));
            }
        }
        sde_kernel::fixed_kernel(
            system,
            &terms,
            method.fixed(),
            args.workgroup_size,
            precision,
        )
    }
    .map_err(|e| CliError::Runtime(e.to_string()))?;
    Ok((wgsl, precision == Precision::F64))
}

fn list() {
    let width = FAMILIES.iter().map(|f| f.name.len()).max().unwrap_or(0);
    for f in FAMILIES {
        println!(
            "{:width$}  {} [{}]",
            f.name,
            f.what.split_whitespace().collect::<Vec<_>>().join(" "),
            f.templates.join(", ")
        );
    }
}

pub fn run(args: &KernelArgs) -> Result<(), CliError> {
    let Some(name) = args.system.as_deref().filter(|_| !args.list) else {
        list();
        return Ok(());
    };
    let (wgsl, f64) = compose(args, name)?;
    print!("{wgsl}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    validate(&format!("{name} kernel"), &wgsl, f64)
        .map(|_| ())
        .map_err(|e| CliError::Runtime(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::shader::shader_files;

    /// Template files that are only ever included by others, never composed on their own.
    const INCLUDE_ONLY: &[&str] = &[
        "common/math_f64.wgsl",
        "common/real_f32.wgsl",
        "common/real_f64.wgsl",
        "common/status.wgsl",
        "nn/mlp/fused_rows.wgsl",
        "nn/mlp/fused_step.wgsl",
        "nn/deeponet/rows.wgsl",
        "nn/deeponet/combine_head.wgsl",
        "ode/window_binding.wgsl",
        "ode/fixed/window.wgsl",
        "ode/fixed/saves.wgsl",
        "ode/adaptive/window.wgsl",
        "ode/adaptive/early_stop.wgsl",
        "ode/sde/fixed_window.wgsl",
        "ode/sde/adaptive_window.wgsl",
        "ode/adaptive/resume.wgsl",
        "ode/adaptive/write_back.wgsl",
        "ode/stiff/resume.wgsl",
        "ode/stiff/write_back.wgsl",
        "ode/sde/adaptive_resume.wgsl",
        "ode/sde/adaptive_write_back.wgsl",
    ];

    /// A new template file must be listed by `phaseflow kernel --list` (or marked as one
    /// that is only included), so the list cannot fall behind the shaders folder.
    #[test]
    fn every_template_file_is_named_by_a_family_or_is_include_only() {
        let named: Vec<&str> = FAMILIES
            .iter()
            .flat_map(|f| f.templates.iter().copied())
            .chain(INCLUDE_ONLY.iter().copied())
            .collect();
        for (path, _) in shader_files() {
            assert!(
                named.contains(&path),
                "shaders/{path} is in no kernel family of `phaseflow kernel --list`"
            );
        }
        for path in &named {
            assert!(
                shader_files().any(|(p, _)| p == *path),
                "{path} is listed but is no shader file"
            );
        }
    }
}
