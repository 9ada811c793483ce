//! Results streamed to disk by `phaseflow simulate -o`: the same bytes as the library's
//! in-memory run whatever the chunking and ring depth, reductions that agree with a direct
//! computation, and a full disk reported before any work.

mod common;
use common::cli::{phaseflow, temp_dir};
use common::{gpu, system};
use phaseflow::io::read_matrix;
use phaseflow::ode::{
    self, AdaptiveProblem, Axis, Control, Ensemble, Parameters, Precision, RunOptions, SaveAt,
    Solver, StateValues, Tolerance,
};
use std::path::Path;
use std::process::Command;

/// The data bytes of an .npy file (after its header).
fn npy_data(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + header..].to_vec()
}

fn state_bytes(v: &StateValues) -> Vec<u8> {
    match v {
        StateValues::F32(x) => bytemuck::cast_slice(x).to_vec(),
        StateValues::F64(x) => bytemuck::cast_slice(x).to_vec(),
    }
}

#[test]
fn streamed_files_equal_the_in_memory_run() {
    // Fixed step: Lorenz, rho swept, saving every 50 of 2,000 steps.
    let s = system("lorenz");
    let mut e = Ensemble::new(&s, 3000);
    e.params = Parameters::Sweep(vec![Axis::linear(1, 0.0, 50.0)]);
    let p = common::problem(s.clone(), Solver::Rk4, 2.0, 1e-3, ode::Save::Every(50), e);
    let memory = common::run(&p);
    // Adaptive: Tsit5 saved on a grid.
    let mut e = Ensemble::new(&s, 3000);
    e.params = Parameters::Sweep(vec![Axis::linear(1, 0.0, 50.0)]);
    let a = AdaptiveProblem {
        system: s,
        solver: Solver::Tsit5,
        t0: 0.0,
        t1: 2.0,
        saveat: SaveAt::grid(0.0, 0.05, 2.0).unwrap(),
        control: Control {
            rtol: Tolerance::All(1e-6),
            atol: Tolerance::All(1e-6),
            ..Control::default()
        },
        ensemble: e,
        precision: Precision::F32,
    };
    let adaptive = ode::simulate_adaptive(gpu(), &a, &RunOptions::default()).unwrap();

    for (chunk, ring) in [("3000", "3"), ("777", "1"), ("512", "5")] {
        let out = temp_dir(&format!("eq-{chunk}"));
        let fixed = [
            "simulate",
            "lorenz",
            "-n",
            "3000",
            "--sweep",
            "rho=0:50",
            "--tspan",
            "0:2",
            "--dt",
            "0.001",
            "--save-every",
            "50",
            "--chunk",
            chunk,
            "--ring",
            ring,
            "-o",
        ];
        let o = phaseflow(&[&fixed[..], &[out.to_str().unwrap()]].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            npy_data(&out.join("states.npy")),
            state_bytes(&memory.states)
        );
        let codes: Vec<u8> = memory.status.iter().map(|&s| s as u8).collect();
        assert_eq!(npy_data(&out.join("status.npy")), codes);

        let out = temp_dir(&format!("eq-a-{chunk}"));
        let adapt = [
            "simulate", "lorenz", "-n", "3000", "--sweep", "rho=0:50", "--tspan", "0:2",
            "--solver", "tsit5", "--saveat", "0:0.05:2", "--chunk", chunk, "--ring", ring, "-o",
        ];
        let o = phaseflow(&[&adapt[..], &[out.to_str().unwrap()]].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            npy_data(&out.join("states.npy")),
            state_bytes(&adaptive.states)
        );
        let stats: Vec<u32> = adaptive
            .steps
            .as_ref()
            .unwrap()
            .iter()
            .flat_map(|c| [c.accepted, c.rejected, c.rhs_evals])
            .collect();
        assert_eq!(
            npy_data(&out.join("stats.npy")),
            bytemuck::cast_slice::<u32, u8>(&stats)
        );
    }
}

#[test]
fn reductions_agree_with_a_direct_computation_for_any_chunking() {
    let run = |chunk: &str| {
        let out = temp_dir(&format!("reduce-{chunk}"));
        let o = phaseflow(&[
            "simulate",
            "van_der_pol",
            "-n",
            "1000",
            "--u0-uniform",
            "x=-2:2",
            "--seed",
            "4",
            "--tspan",
            "0:5",
            "--dt",
            "0.01",
            "--save-every",
            "5",
            "--chunk",
            chunk,
            "--outputs",
            "states,trajectory-stats,ensemble-stats",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let one = run("1000");
    let many = run("137");
    for f in [
        "states.npy",
        "trajectory_min.npy",
        "trajectory_max.npy",
        "trajectory_mean.npy",
        "ensemble_mean.npy",
        "ensemble_var.npy",
        "ensemble_count.npy",
    ] {
        assert_eq!(npy_data(&one.join(f)), npy_data(&many.join(f)), "{f}");
    }
    // states [n_save, N, 2] as f32.
    let raw = npy_data(&one.join("states.npy"));
    let states: &[f32] = bytemuck::cast_slice(&raw);
    let (n, dim) = (1000usize, 2usize);
    let n_save = states.len() / (n * dim);
    assert_eq!(n_save, 101);
    let at = |s: usize, j: usize, c: usize| states[(s * n + j) * dim + c] as f64;
    let (tmin, _, _) = read_matrix(&one.join("trajectory_min.npy")).unwrap();
    let (tmax, _, _) = read_matrix(&one.join("trajectory_max.npy")).unwrap();
    let (tmean, _, _) = read_matrix(&one.join("trajectory_mean.npy")).unwrap();
    for j in [0, 1, 500, 999] {
        for c in 0..dim {
            let vals: Vec<f64> = (0..n_save).map(|s| at(s, j, c)).collect();
            let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = vals.iter().sum::<f64>() / n_save as f64;
            assert_eq!(tmin[j * dim + c], lo);
            assert_eq!(tmax[j * dim + c], hi);
            assert!((tmean[j * dim + c] - mean).abs() <= 1e-12 * mean.abs().max(1.0));
        }
    }
    let (emean, rows, _) = read_matrix(&one.join("ensemble_mean.npy")).unwrap();
    let (evar, _, _) = read_matrix(&one.join("ensemble_var.npy")).unwrap();
    assert_eq!(rows, n_save);
    for s in [0, 50, 100] {
        for c in 0..dim {
            let vals: Vec<f64> = (0..n).map(|j| at(s, j, c)).collect();
            let mean = vals.iter().sum::<f64>() / n as f64;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            // Welford and the two-pass formula differ only by rounding.
            assert!((emean[s * dim + c] - mean).abs() <= 1e-12 * (1.0 + mean.abs()));
            assert!((evar[s * dim + c] - var).abs() <= 1e-10 * (1.0 + var));
        }
    }
}

/// A 1 MiB file system: a run whose states need 12 MB fails at once with exit code 2 and
/// a sentence naming the file and the space it needed, and leaves nothing behind. Needs
/// permission to mount a tmpfs (CI runs as root); without it, says so and stops.
#[test]
fn a_full_disk_fails_before_any_work() {
    let mount = temp_dir("tmpfs");
    let ok = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "tmpfs",
            mount.to_str().unwrap(),
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("cannot mount a tmpfs here (not root?); full-disk test not run");
        return;
    }
    let out = mount.join("out");
    let o = phaseflow(&[
        "simulate",
        "lorenz",
        "-n",
        "100000",
        "--save-every",
        "1000",
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let _ = Command::new("umount").arg(&mount).status();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("not enough disk space for"), "{err}");
    assert!(err.contains("states.npy"), "{err}");
    assert!(left.is_empty(), "{left:?}");
}

/// Ctrl-C (SIGINT) stops the run after the work in flight, with exit code 130 and files
/// marked partial in run.json; `--resume` finishes it, and every file is then the same
/// bytes as an uninterrupted run's, ensemble statistics included.
#[test]
fn interrupted_runs_resume_to_the_same_bytes() {
    let args = [
        "simulate",
        "lorenz",
        "-n",
        "200000",
        "--sweep",
        "rho=0:50",
        "--tspan",
        "0:2",
        "--dt",
        "0.0001",
        "--save-every",
        "1000",
        "--chunk",
        "10000",
        "--outputs",
        "states,trajectory-stats,ensemble-stats",
        "-q",
        "-o",
    ];
    let whole = temp_dir("whole");
    let o = phaseflow(&[&args[..], &[whole.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let cut = temp_dir("cut");
    let child = Command::new(env!("CARGO_BIN_EXE_phaseflow"))
        .args([&args[..], &[cut.to_str().unwrap()]].concat())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the run is under way (its output files exist before any work).
    while !cut.join(".states.npy.partial").exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: signals our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("--resume"), "{err}");
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cut.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["complete"], false);
    let done = run["trajectories_done"].as_u64().unwrap();
    assert!(done < 200_000 && done.is_multiple_of(10_000), "{done}");
    assert!(!cut.join("ensemble_mean.npy").exists());

    // Resume refuses options that would change the run.
    let o = phaseflow(&["simulate", "--resume", cut.to_str().unwrap(), "-n", "5"]);
    assert_eq!(o.status.code(), Some(2));
    let o = phaseflow(&[
        "simulate",
        "--resume",
        cut.to_str().unwrap(),
        "-q",
        "--ring",
        "2",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "states.npy",
        "status.npy",
        "trajectory_min.npy",
        "trajectory_max.npy",
        "trajectory_mean.npy",
        "ensemble_mean.npy",
        "ensemble_var.npy",
        "ensemble_count.npy",
        "params.npy",
        "times.npy",
    ] {
        assert_eq!(
            std::fs::read(whole.join(f)).unwrap(),
            std::fs::read(cut.join(f)).unwrap(),
            "{f}"
        );
    }
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cut.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["complete"], true);
    assert_eq!(run["status"]["success"], 200_000);
    let o = phaseflow(&["simulate", "--resume", cut.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "a complete run is not resumed");
}

/// Two devices (here two contexts on the same adapter) give the same bits as one, for
/// fixed-step and adaptive runs with saves, through the CLI's streamed files.
#[test]
fn several_devices_give_the_same_bytes_as_one() {
    for extra in [
        &["--dt", "0.001", "--save-every", "100"][..],
        &["--solver", "tsit5", "--saveat", "0:0.1:2"][..],
    ] {
        let mut outs = Vec::new();
        for (name, devices) in [("one", None), ("two", Some("0,0"))] {
            let out = temp_dir(&format!("devices-{name}-{}", extra[0].len()));
            let mut args = vec![
                "simulate", "lorenz", "-n", "20000", "--sweep", "rho=0:50", "--tspan", "0:2",
                "--chunk", "3000", "-q",
            ];
            args.extend_from_slice(extra);
            if let Some(d) = devices {
                args.extend_from_slice(&["--devices", d]);
            }
            args.extend_from_slice(&["-o", out.to_str().unwrap()]);
            let o = phaseflow(&args);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            outs.push(out);
        }
        for f in ["states.npy", "status.npy"] {
            assert_eq!(
                std::fs::read(outs[0].join(f)).unwrap(),
                std::fs::read(outs[1].join(f)).unwrap(),
                "{f} {extra:?}"
            );
        }
    }
}
