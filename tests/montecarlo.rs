//! `phaseflow simulate --outputs montecarlo`: the files and their shapes, values that agree
//! with the states the same run saved, and the same bytes for any --chunk and --devices,
//! fixed-step and adaptive.

mod common;
use common::cli::{assert_input_error, phaseflow, temp_dir};
use std::path::{Path, PathBuf};

/// The shape in an .npy header and the data after it.
fn npy(path: &Path) -> (Vec<usize>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[10..10 + len]).into_owned();
    let inside = header.split('(').nth(1).unwrap().split(')').next().unwrap();
    let shape = inside
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    (shape, bytes[10 + len..].to_vec())
}

fn f64s(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

const MC_FILES: [&str; 7] = [
    "mc_mean.npy",
    "mc_var.npy",
    "mc_stderr.npy",
    "mc_min.npy",
    "mc_max.npy",
    "mc_quantiles.npy",
    "mc_count.npy",
];

fn simulate(name: &str, extra: &[&str]) -> PathBuf {
    let out = temp_dir(name);
    let mut args = vec![
        "simulate",
        "lorenz",
        "-n",
        "1000",
        "--u0-uniform",
        "x=-20:20",
        "--seed",
        "3",
        "--tspan",
        "0:2",
        "-q",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-o", out.to_str().unwrap()]);
    let o = phaseflow(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn montecarlo_files_agree_with_the_states_and_ignore_the_chunking() {
    let fixed = ["--dt", "0.01", "--save-every", "20"];
    let one = simulate(
        "fixed-1000",
        &[
            &fixed[..],
            &[
                "--chunk",
                "1000",
                "--outputs",
                "states,montecarlo",
                "--quantiles",
                "0.05,0.5,0.95",
            ],
        ]
        .concat(),
    );
    let many = simulate(
        "fixed-173",
        &[
            &fixed[..],
            &[
                "--chunk",
                "173",
                "--outputs",
                "montecarlo",
                "--quantiles",
                "0.05,0.5,0.95",
            ],
        ]
        .concat(),
    );
    let (n_save, n, dim) = (11, 1000, 3);
    for f in MC_FILES {
        let (shape, data) = npy(&one.join(f));
        let want = if f == "mc_quantiles.npy" {
            vec![n_save, 3, dim]
        } else {
            vec![n_save, dim]
        };
        assert_eq!(shape, want, "{f}");
        assert_eq!(data.len(), want.iter().product::<usize>() * 8, "{f}");
        assert_eq!(data, npy(&many.join(f)).1, "{f}: --chunk 1000 vs 173");
    }
    // run.json lists the files, the quantiles' with their levels.
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(one.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        run["montecarlo"]["quantiles"],
        serde_json::json!([0.05, 0.5, 0.95])
    );
    let files = run["files"].as_array().unwrap();
    let q = files
        .iter()
        .find(|f| f["file"] == "mc_quantiles.npy")
        .unwrap();
    assert_eq!(q["shape"], serde_json::json!([11, 3, 3]));
    assert_eq!(q["levels"], serde_json::json!([0.05, 0.5, 0.95]));
    for f in MC_FILES {
        assert!(files.iter().any(|e| e["file"] == f), "{f} not in run.json");
    }

    // Against the states the run saved (f32, [n_save, N, dim]).
    let (_, raw) = npy(&one.join("states.npy"));
    let states: Vec<f64> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
        .collect();
    let get = |f: &str| f64s(&npy(&one.join(f)).1);
    let (mean, var, stderr) = (get("mc_mean.npy"), get("mc_var.npy"), get("mc_stderr.npy"));
    let (min, max, quant) = (
        get("mc_min.npy"),
        get("mc_max.npy"),
        get("mc_quantiles.npy"),
    );
    let count: Vec<i64> = npy(&one.join("mc_count.npy"))
        .1
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    for s in 0..n_save {
        for c in 0..dim {
            let k = s * dim + c;
            let mut v: Vec<f64> = (0..n).map(|j| states[(s * n + j) * dim + c]).collect();
            assert_eq!(count[k], n as i64);
            let m = v.iter().sum::<f64>() / n as f64;
            let var_ref = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
            // The reference rounds 1000 times; the reducer once: 1e-12 covers the former.
            let scale = v.iter().map(|x| x.abs()).fold(0.0, f64::max);
            assert!((mean[k] - m).abs() <= 1e-12 * scale, "mean {s},{c}");
            assert!(
                (var[k] - var_ref).abs() <= 1e-10 * var_ref.max(1e-300),
                "var {s},{c}"
            );
            assert!((stderr[k] - (var_ref / n as f64).sqrt()).abs() <= 1e-10 * stderr[k]);
            v.sort_by(f64::total_cmp);
            assert_eq!((min[k], max[k]), (v[0], v[n - 1]));
            for (i, q) in [0.05, 0.5, 0.95].iter().enumerate() {
                let exact = v[(q * n as f64).ceil() as usize - 1];
                let got = quant[(s * 3 + i) * dim + c];
                // The sketch's stated bound: 2^-8 relative to the order statistic.
                assert!(
                    (got - exact).abs() <= exact.abs() * 2f64.powi(-8),
                    "q {q} at {s},{c}: {got} vs {exact}"
                );
            }
        }
    }
}

#[test]
fn adaptive_runs_on_any_chunking_and_devices_give_the_same_bytes() {
    let adaptive = [
        "--solver",
        "tsit5",
        "--saveat",
        "0:0.25:2",
        "--outputs",
        "montecarlo",
    ];
    let runs = [
        simulate(
            "tsit5-1000",
            &[&adaptive[..], &["--chunk", "1000"]].concat(),
        ),
        simulate("tsit5-97", &[&adaptive[..], &["--chunk", "97"]].concat()),
        simulate(
            "tsit5-two",
            &[&adaptive[..], &["--chunk", "300", "--devices", "0,0"]].concat(),
        ),
    ];
    for f in MC_FILES {
        let first = npy(&runs[0].join(f));
        let want = if f == "mc_quantiles.npy" {
            vec![9, 7, 3] // the seven default levels
        } else {
            vec![9, 3]
        };
        assert_eq!(first.0, want, "{f}");
        for other in &runs[1..] {
            assert_eq!(first.1, npy(&other.join(f)).1, "{f}: {}", other.display());
        }
    }
}

#[test]
fn quantile_levels_are_checked_before_any_work() {
    let out = temp_dir("bad-levels");
    let o = phaseflow(&[
        "simulate",
        "lorenz",
        "-n",
        "10",
        "--outputs",
        "montecarlo",
        "--quantiles",
        "0.5,1.5",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_input_error(&o, "--quantiles must hold levels between 0 and 1 (got 1.5)");
    let o = phaseflow(&[
        "simulate",
        "lorenz",
        "-n",
        "10",
        "--quantiles",
        "0.5",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_input_error(
        &o,
        "--quantiles sets the levels of the montecarlo output; add montecarlo to --outputs",
    );
    assert!(!out.join("run.json").exists());
    // 200,001 save times × 3 states of accumulators for 2,048 trajectories: about 14 GiB,
    // refused before any work.
    let o = phaseflow(&[
        "simulate",
        "lorenz",
        "-n",
        "2048",
        "--tspan",
        "0:200000",
        "--dt",
        "1",
        "--save-every",
        "1",
        "--outputs",
        "montecarlo",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_input_error(&o, "at most 8 GiB); save less often");
    assert!(!out.join("run.json").exists());
}

/// A run stopped after 400 of 1000 trajectories (here: a finished run's directory made to
/// look so) and resumed: the reducer is fed the first 400 again from states.npy, in another
/// order of chunks than the uninterrupted run, and gives the same bytes.
#[test]
fn a_resumed_run_gives_the_same_bytes() {
    let args = ["--dt", "0.01", "--save-every", "50", "--chunk", "300"];
    let whole = simulate(
        "resume-whole",
        &[&args[..], &["--outputs", "montecarlo"]].concat(),
    );
    let cut = simulate(
        "resume-cut",
        &[&args[..], &["--outputs", "states,montecarlo"]].concat(),
    );
    let path = cut.join("run.json");
    let mut run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    run["complete"] = false.into();
    run["state"] = "interrupted".into();
    run["trajectories_done"] = 400.into();
    std::fs::write(&path, serde_json::to_string(&run).unwrap()).unwrap();
    for f in MC_FILES {
        std::fs::remove_file(cut.join(f)).unwrap();
    }
    let o = phaseflow(&["simulate", "--resume", cut.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in MC_FILES {
        assert_eq!(npy(&whole.join(f)).1, npy(&cut.join(f)).1, "{f}");
    }
    // Without states there is nothing to replay: refused with a reason.
    let path = whole.join("run.json");
    let mut run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    run["complete"] = false.into();
    run["state"] = "interrupted".into();
    run["trajectories_done"] = 400.into();
    std::fs::write(&path, serde_json::to_string(&run).unwrap()).unwrap();
    assert_input_error(
        &phaseflow(&["simulate", "--resume", whole.to_str().unwrap(), "-q"]),
        "this run's Monte Carlo statistics cannot be resumed: it did not keep states",
    );
}
