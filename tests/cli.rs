//! The `phaseflow` binary as a user meets it: exit codes, one clear error message, nothing
//! half-written, and .npy files with the documented shapes.

mod common;
use common::cli::{assert_input_error, phaseflow, stderr, stdout, temp_dir};

use phaseflow::io::read_matrix;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The npy header's shape, e.g. "(3, 100, 2)".
fn npy_shape(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let header = String::from_utf8_lossy(&bytes[10..128]).into_owned();
    let start = header.find("'shape': (").unwrap() + 10;
    let end = header[start..].find(')').unwrap();
    header[start..start + end]
        .trim_end_matches([',', ' '])
        .to_string()
}

#[test]
fn simulate_writes_documented_npy_files() {
    let out = temp_dir("ok");
    let o = phaseflow(&[
        "simulate",
        "lorenz",
        "-n",
        "50",
        "--sweep",
        "rho=0:50",
        "--tspan",
        "0:1",
        "--dt",
        "0.01",
        "--save-every",
        "25",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("trajectory-steps/s") && text.contains("50 succeeded"),
        "{text}"
    );
    assert_eq!(npy_shape(&out.join("states.npy")), "5, 50, 3");
    assert_eq!(npy_shape(&out.join("times.npy")), "5");
    assert_eq!(npy_shape(&out.join("status.npy")), "50");
    let (params, rows, cols) = read_matrix(&out.join("params.npy")).unwrap();
    assert_eq!((rows, cols), (50, 3));
    assert_eq!(params[49 * 3 + 1], 50.0);
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["n"], 50);
    assert_eq!(run["status"]["success"], 50);
    assert!(!out.read_dir().unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".partial")
    }));
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn json_summary_and_config_file() {
    let dir = temp_dir("config");
    let config = dir.join("run.toml");
    std::fs::write(
        &config,
        "system = 'duffing'\nn = 6\ntspan = [0, 1]\ndt = 0.01\nsolver = 'heun'\n[sweep]\ngamma = [0.2, 0.6, 3]\nomega = [1.0, 1.4, 2]\n",
    )
    .unwrap();
    let o = phaseflow(&["simulate", "--config", config.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["solver"], "heun");
    assert_eq!(v["n"], 6);
    assert_eq!(v["method"]["steps"], 100);
    assert!(v["timing"]["trajectory_steps_per_s"].as_f64().unwrap() > 0.0);

    // A bad key in the config points at its line and column.
    std::fs::write(&config, "system = 'duffing'\nn = 6\nsolverr = 'rk4'\n").unwrap();
    let o = phaseflow(&["simulate", "--config", config.to_str().unwrap()]);
    assert_input_error(&o, "run.toml:3:1");
    assert!(
        stderr(&o).contains("unknown field `solverr`"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_input_gets_exit_code_2_and_one_message() {
    assert_input_error(
        &phaseflow(&["simulate", "lorenzz", "-n", "5"]),
        "did you mean 'lorenz'?",
    );
    assert_input_error(&phaseflow(&["simulate", "lorenz", "-n", "0"]), "at least 1");
    assert_input_error(
        &phaseflow(&["simulate", "lorenz", "-n", "5", "--sweep", "rho=0:x"]),
        "'x' is not a finite number",
    );
    assert_input_error(
        &phaseflow(&["simulate", "lorenz", "-n", "5", "--param", "rh=1"]),
        "did you mean 'rho'?",
    );
    assert_input_error(
        &phaseflow(&[
            "simulate", "lorenz", "-n", "5", "--dt", "0.3", "--tspan", "0:1",
        ]),
        "--dt 0.3 does not divide the span",
    );
    assert_input_error(
        &phaseflow(&["simulate", "lorenz", "-n", "5", "--solver", "rk5"]),
        "invalid value 'rk5'",
    );
}

#[test]
fn bad_system_file_points_at_the_error() {
    let dir = temp_dir("sysfile");
    let file = dir.join("mine.toml");
    std::fs::write(
        &file,
        "name = 'mine'\nstates = { x = 1.0, y = 0.0 }\nparameters = { k = 2.0 }\nequations = '''\ndx = y\ndy = -kk*x\n'''\n",
    )
    .unwrap();
    let o = phaseflow(&[
        "simulate",
        file.to_str().unwrap(),
        "-n",
        "3",
        "--tspan",
        "0:1",
        "--dt",
        "0.1",
    ]);
    assert_input_error(&o, "unknown name 'kk'");
    let err = stderr(&o);
    assert!(
        err.contains("mine.toml:6:7") && err.contains("dy = -kk*x") && err.contains("^^"),
        "{err}"
    );
    assert!(err.contains("did you mean 'k'?"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_input_files_write_nothing() {
    let dir = temp_dir("files");
    let out = dir.join("out");
    let u0 = dir.join("u0.npy");
    phaseflow::io::write_npy(&u0, &[2, 3], &[1.0f64, 0.0, 0.0, f64::NAN, 0.0, 0.0]).unwrap();
    let o = phaseflow(&[
        "simulate",
        "lorenz",
        "--u0",
        u0.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_input_error(&o, "non-finite value (NaN) at row 1, column 0");
    assert!(!out.exists(), "no output directory for a refused run");

    phaseflow::io::write_npy(&u0, &[2, 2], &[1.0f64, 0.0, 0.0, 1.0]).unwrap();
    let o = phaseflow(&[
        "simulate",
        "lorenz",
        "--u0",
        u0.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_input_error(&o, "has 2 columns but the system has 3 states");

    let o = phaseflow(&[
        "simulate",
        "lorenz",
        "-n",
        "3",
        "--u0",
        u0.to_str().unwrap(),
    ]);
    assert_input_error(&o, "-n 3 disagrees");

    // An output path that cannot be a directory fails before any computing.
    let o = phaseflow(&[
        "simulate",
        "lorenz",
        "-n",
        "3",
        "-o",
        u0.join("sub").to_str().unwrap(),
    ]);
    assert_input_error(&o, "cannot write to output directory");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn info_and_systems() {
    let o = phaseflow(&["info", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let chosen = v["chosen"].as_u64().unwrap() as usize;
    assert!(v["adapters"][chosen]["name"].is_string());
    // Subgroup sizes: [min, max] lanes (lavapipe: 8 by default), or null without them.
    let sizes = &v["adapters"][chosen]["subgroup_sizes"];
    assert!(sizes.is_null() || sizes[0].as_u64().unwrap() <= sizes[1].as_u64().unwrap());
    let o = phaseflow(&["info"]);
    assert!(stdout(&o).contains("subgroups: "), "{}", stdout(&o));
    // PHASEFLOW_SUBGROUPS is read (and a bad value refused) by info as by every command.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_phaseflow"))
        .arg("info")
        .env("PHASEFLOW_SUBGROUPS", "off")
        .output()
        .unwrap();
    let text = stdout(&o);
    assert!(
        sizes.is_null() || text.contains("not used: PHASEFLOW_SUBGROUPS=off"),
        "{text}"
    );
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_phaseflow"))
        .arg("info")
        .env("PHASEFLOW_SUBGROUPS", "2")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("PHASEFLOW_SUBGROUPS is '2'"));

    let o = phaseflow(&["info", "--adapter", "no-such-gpu"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("no adapter matches 'no-such-gpu'"));

    let o = phaseflow(&["systems", "show", "lorenz"]);
    assert!(stdout(&o).contains("dz = x*y - beta*z"), "{}", stdout(&o));
    let o = phaseflow(&["systems", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(all.as_array().unwrap().len() >= 12);
    let o = phaseflow(&["simulate", "--help"]);
    assert!(stdout(&o).contains("states.npy [n_save, N, dim] f32"));
}

#[test]
fn adaptive_runs_write_statistics_and_f64_states() {
    let out = temp_dir("adaptive");
    let o = phaseflow(&[
        "simulate",
        "lorenz",
        "-n",
        "10",
        "--sweep",
        "rho=10:30",
        "--solver",
        "tsit5",
        "--rtol",
        "1e-8",
        "--atol",
        "1e-8",
        "--rtol",
        "z=1e-9",
        "--saveat",
        "0:0.5:5",
        "--precision",
        "f64",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("tsit5 · f64"), "{text}");
    assert!(text.contains("10 succeeded"), "{text}");
    assert!(text.contains("rejected · per trajectory: mean"), "{text}");
    assert_eq!(npy_shape(&out.join("states.npy")), "11, 10, 3");
    assert_eq!(npy_shape(&out.join("stats.npy")), "10, 3");
    let states = std::fs::read(out.join("states.npy")).unwrap();
    assert!(String::from_utf8_lossy(&states[..80]).contains("<f8"));
    let (times, rows, _) = read_matrix(&out.join("times.npy")).unwrap();
    assert_eq!(rows, 11);
    assert_eq!(times[4], 2.0);
    let (stats, _, cols) = read_matrix(&out.join("stats.npy")).unwrap();
    assert_eq!(cols, 3);
    // accepted > 0 and every attempt costs at least 6 right-hand sides (Tsit5, FSAL)
    assert!(stats[0] > 10.0 && stats[2] >= 6.0 * (stats[0] + stats[1]));
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["method"]["rtol"], serde_json::json!([1e-8, 1e-8, 1e-9]));
    assert_eq!(run["precision"], "f64");

    // An adaptive pair in fixed steps (DiffEqGPU's `adaptive = false`): exactly the steps of
    // --dt, no step statistics, and the tolerance flags refused.
    let fixed = temp_dir("fixed-tsit5");
    let o = phaseflow(&[
        "simulate",
        "lorenz",
        "-n",
        "4",
        "--solver",
        "tsit5",
        "--fixed-step",
        "--tspan",
        "0:1",
        "--dt",
        "0.01",
        "-o",
        fixed.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("× 100 steps"), "{text}");
    assert!(text.contains("trajectory-steps/s"), "{text}");
    assert!(!fixed.join("stats.npy").exists());
    let o = phaseflow(&[
        "simulate",
        "lorenz",
        "-n",
        "5",
        "--solver",
        "tsit5",
        "--fixed-step",
        "--rtol",
        "1e-8",
    ]);
    assert_input_error(&o, "without --fixed-step");

    let o = phaseflow(&["simulate", "lorenz", "-n", "5", "--rtol", "1e-8"]);
    assert_input_error(&o, "--rtol applies to adaptive solvers");
    let o = phaseflow(&[
        "simulate", "lorenz", "-n", "5", "--solver", "dp5", "--saveat", "0:0.1",
    ]);
    assert_input_error(&o, "must be t0:dt:t1");
    let o = phaseflow(&[
        "simulate", "lorenz", "-n", "5", "--solver", "dp5", "--atol", "0",
    ]);
    assert_input_error(&o, "atol must be a positive");
}

#[test]
fn a_config_key_is_named_as_the_file_names_it_and_a_flag_as_a_flag() {
    let dir = temp_dir("config-keys");
    let config = dir.join("run.toml");
    std::fs::write(&config, "system = 'lorenz'\nn = 5\nrtol = 1e-8\n").unwrap();
    let c = config.to_str().unwrap();
    // rtol came from the file; fixed_step and dt, which it mentions, are named as the
    // file would name them too.
    let o = phaseflow(&["simulate", "--config", c]);
    assert_input_error(
        &o,
        "run.toml: rtol applies to adaptive solvers (bs3, dp5, tsit5, dop853, milstein-adaptive) without \
         fixed_step; rk4 takes fixed steps of dt",
    );
    // The same key given as a flag over the file is named as the flag.
    let o = phaseflow(&["simulate", "--config", c, "--rtol", "1e-6"]);
    assert_input_error(&o, "error: --rtol applies to adaptive solvers");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Checks the ode library makes (tolerances, step control, span, save times) are named by
/// the flag that set the value.
#[test]
fn range_errors_name_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--solver", "tsit5", "--rtol", "-1"],
            "error: --rtol must be",
        ),
        (
            &["--solver", "tsit5", "--rtol", "x=-1"],
            "error: --rtol x must be",
        ),
        (
            &["--solver", "tsit5", "--safety", "2"],
            "error: --safety must be",
        ),
        (
            &["--solver", "tsit5", "--max-growth", "0.5"],
            "error: --max-growth must be",
        ),
        (
            &["--solver", "tsit5", "--max-shrink", "2"],
            "error: --max-shrink must be",
        ),
        (
            &["--solver", "tsit5", "--max-steps", "0"],
            "error: --max-steps must be",
        ),
        (
            &["--solver", "tsit5", "--tspan", "1:0"],
            "error: --tspan must go forward",
        ),
        (&["--tspan", "1:0"], "error: --tspan must go forward"),
        (
            &["--solver", "tsit5", "--saveat", "0:0:1"],
            "error: --saveat needs a positive step",
        ),
        (
            &["--sweep", "rho=0"],
            "error: --sweep rho must be lo:hi or lo:hi:count",
        ),
        (
            &["--set", "x=3", "--u0-uniform", "x=0:1"],
            "error: --u0-uniform x and --set x both set state 'x'",
        ),
        (
            &["--fixed-step"],
            "error: --fixed-step applies to adaptive solvers",
        ),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["simulate", "lorenz", "-n", "10", "-q"];
        args.extend_from_slice(flags);
        assert_input_error(&phaseflow(&args), expected);
    }
    let o = phaseflow(&["kernel", "lorenz", "--solver", "tsit5", "--rtol", "-1"]);
    assert_input_error(&o, "error: --rtol must be a non-negative");
    let o = phaseflow(&[
        "kernel",
        "lorenz",
        "--solver",
        "tsit5",
        "--fixed-step",
        "--dense",
    ]);
    assert_input_error(
        &o,
        "--fixed-step gives the fixed-step kernel, which has no error control",
    );
    // The usage clap prints with a refusal is one that works.
    let o = phaseflow(&["kernel", "--list", "--solver", "tsit5"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!stderr(&o).contains("--list [SYSTEM]"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("phaseflow kernel --list\n"),
        "{}",
        stderr(&o)
    );
}

/// In a config file every key a message mentions is named as the file names it, and the
/// file's path leads the message.
#[test]
fn config_errors_lead_with_the_file_and_name_keys() {
    let dir = temp_dir("config-errors");
    let config = dir.join("cfg.toml");
    let c = config.to_str().unwrap();
    let cases = [
        (
            "solver = 'tsit5'\nsave_every = 10",
            "save_every counts fixed steps",
        ),
        (
            "outputs = ['states']",
            "outputs chooses the files written to the output directory; give out",
        ),
        ("solver = 'tsit5'\nrtol = -1", "rtol must be a non-negative"),
        ("solver = 'tsit5'\nsafety = 2", "safety must be above 0"),
        (
            "solver = 'tsit5'\nmax_steps = 0",
            "max_steps must be at least 1",
        ),
        ("dt = -0.001", "dt must be a positive"),
        ("tspan = [1, 0]", "tspan must go forward"),
        (
            "[u0]\nuniform = { x = [1.0, 0.0] }",
            "u0.uniform.x must be a box",
        ),
        (
            "solver = 'tsit5'\nsaveat = [0.0, 2.0, 1.0]",
            "save times must increase, but saveat[2] = 1 is not after saveat[1] = 2",
        ),
        (
            "[sweep]\nrho = [0]",
            "sweep.rho must be [lo, hi] or [lo, hi, count]",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&config, format!("system = 'lorenz'\nn = 10\n{text}\n")).unwrap();
        let o = phaseflow(&["simulate", "--config", c, "-q"]);
        assert_input_error(&o, &format!("{c}: {expected}"));
        assert!(
            !stderr(&o).contains("--"),
            "{text}: a flag in {}",
            stderr(&o)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `phaseflow bench ... --json` and returns the report.
fn bench_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--reps", "1", "--json"]);
    let o = phaseflow(&all);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("JSON")
}

/// Every benchmark checks itself against the CPU twin before timing; at a tiny size that
/// check is what CI exercises. The JSON report carries what comparisons need: adapter,
/// driver, versions, commit, the measured ceilings, and per result the times, throughput,
/// counted work and its share of the ceilings.
#[test]
fn bench_scenarios_self_check_and_report_json() {
    // peak: the microkernels checked against their twins (an error otherwise), positive
    // ceilings, f64 where lavapipe has it, and what the report records.
    let v = bench_json(&["peak"]);
    assert_eq!(v["scenario"], "peak");
    assert!(v["commit"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(v["wgpu"].as_str().unwrap().starts_with("30."), "{v}");
    assert!(v["naga"].as_str().unwrap().starts_with("30."), "{v}");
    assert!(
        v["adapter"]["driver_info"]
            .as_str()
            .unwrap()
            .contains("Mesa")
    );
    for key in ["f32_flops", "f64_flops", "bytes_per_s"] {
        assert!(v["peak"][key].as_f64().unwrap() > 1e6, "{key}: {v}");
    }
    assert_eq!(v["peak"]["timestamps"], true);
    assert_eq!(v["results"].as_array().unwrap().len(), 0);

    let cases = [
        ("ode-fixed", 64, "trajectory-steps/s", 1),
        ("ode-adaptive", 64, "step attempts/s", 1),
        ("ode-sweep", 64, "trajectory-steps/s", 1),
        ("ode-stream", 64, "trajectory-steps/s", 1),
        ("mlp-train", 256, "samples/s", 1),
        ("mlp-infer", 1000, "samples/s", 1),
        ("deeponet-infer", 300, "functions/s", 2),
        // N = 8 and 32, fixed-step and adaptive
        ("paper-lorenz", 32, "", 4),
    ];
    for (scenario, size, unit, count) in cases {
        let v = bench_json(&[scenario, "-n", &size.to_string()]);
        assert_eq!(v["scenario"], scenario);
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), count, "{scenario}: {v}");
        for r in results {
            assert_eq!(r["scenario"], scenario);
            assert_eq!(r["precision"], "f32");
            assert!(r["wall_seconds"].as_f64().unwrap() > 0.0, "{r}");
            assert!(r["throughput"].as_f64().unwrap() > 0.0, "{r}");
            assert!(r["unit"].as_str().unwrap().ends_with(unit), "{r}");
            assert!(r["check"].as_str().unwrap().contains("twin"), "{r}");
            assert!(r["flops_per_s"].as_f64().unwrap() > 0.0, "{r}");
            assert!(r["share_of_peak_flops"].as_f64().unwrap() > 0.0, "{r}");
            if scenario.starts_with("ode") || scenario == "paper-lorenz" {
                // f32 solutions over one time unit: within 1e-4 of the f64 reference
                // (seen: 2e-6 for rho up to 21, 1e-5 for the sweep up to 50).
                let error = r["error"].as_f64().unwrap();
                assert!(error > 0.0 && error < 1e-4, "{r}");
                assert!(r["gpu_seconds"].as_f64().unwrap() > 0.0, "{r}");
                assert!(r["bytes_per_s"].as_f64().unwrap() > 0.0, "{r}");
            }
        }
        if scenario == "mlp-train" {
            // lavapipe has timestamp queries: one GPU time per dispatch of the step.
            let r = &results[0];
            let passes = r["gpu_seconds_per_pass"].as_array().unwrap();
            let names: Vec<&str> = passes.iter().map(|p| p["pass"].as_str().unwrap()).collect();
            assert_eq!(
                names[..4],
                ["forward", "loss", "backward", "weight gradients"]
            );
            assert_eq!(names.last(), Some(&"adam"));
            assert!(passes.iter().all(|p| p["seconds"].as_f64().unwrap() > 0.0));
        }
        if scenario == "paper-lorenz" {
            let rows: Vec<(u64, &str)> = results
                .iter()
                .map(|r| (r["size"].as_u64().unwrap(), r["variant"].as_str().unwrap()))
                .collect();
            assert_eq!(
                rows,
                [
                    (8, "tsit5 dt=1e-3"),
                    (8, "tsit5 tol=1e-8"),
                    (32, "tsit5 dt=1e-3"),
                    (32, "tsit5 tol=1e-8")
                ]
            );
            // 1,000 fixed steps per trajectory
            assert_eq!(results[2]["flops"].as_f64().unwrap(), 32.0 * 1000.0 * 192.0);
        }
        if scenario == "deeponet-infer" {
            assert_eq!(results[1]["size"].as_u64(), Some(300));
            assert!(results[0]["note"].as_str().unwrap().contains("latency p50"));
        }
    }
    // DeepONet: 1,000 training iterations (the figure is per 1,000).
    let v = bench_json(&["deeponet-train"]);
    let r = &v["results"][0];
    assert_eq!(r["size"].as_u64(), Some(150));
    assert!(r["check"].as_str().unwrap().contains("twin"));
    assert!(r["note"].as_str().unwrap().contains("per 1,000 iterations"));
    // Four dispatches a step (nn::deeponet::pair).
    let passes = r["gpu_seconds_per_pass"].as_array().unwrap();
    let names: Vec<&str> = passes.iter().map(|p| p["pass"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["forward", "combine", "weight gradients and loss", "adam"]
    );
}

/// `--sweep` runs a scenario over sizes and writes the CSV and both log–log plots; bad
/// ranges and scenarios without a size are refused before anything is written.
#[test]
fn bench_sweep_writes_csv_and_plots() {
    let out = temp_dir("bench-sweep");
    let dir = out.join("sweep");
    let o = phaseflow(&[
        "bench",
        "ode-fixed",
        "--sweep",
        "N=10..1000/1",
        "--reps",
        "1",
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("ode-fixed") && text.contains("checks"),
        "{text}"
    );
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("scenario,variant,size,"), "{csv}");
    let sizes: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    assert_eq!(sizes, ["10", "100", "1000"]);
    for png in ["time.png", "throughput.png"] {
        let bytes = std::fs::read(dir.join(png)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{png}");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(report["results"].as_array().unwrap().len(), 3);

    let none = out.join("none");
    for (args, message) in [
        (
            vec!["ode-fixed", "--sweep", "N=1e5..1e3"],
            "expected N=LO..HI",
        ),
        (
            vec!["ode-fixed", "--sweep", "1e3..1e5"],
            "expected N=LO..HI",
        ),
        (
            vec!["peak", "--sweep", "N=1..10"],
            "needs a scenario with a size",
        ),
        (vec!["ode-fixed", "-n", "0"], "at least 1"),
    ] {
        let mut all = vec!["bench"];
        all.extend_from_slice(&args);
        all.extend_from_slice(&["-o", none.to_str().unwrap()]);
        assert_input_error(&phaseflow(&all), message);
        assert!(!none.exists(), "{args:?} wrote output");
    }
}

/// An antiderivative data set written by the library in our .npz layout.
fn deeponet_data(dir: &Path, name: &str, functions: usize, seed: u64) -> PathBuf {
    let data = phaseflow::nn::deeponet::data::antiderivative(20, 0.5, functions, seed).unwrap();
    let path = dir.join(name);
    phaseflow::nn::deeponet::data::write_aligned(&path, &data).unwrap();
    path
}

#[test]
fn train_deeponet_then_predict() {
    let dir = temp_dir("deeponet");
    deeponet_data(&dir, "train.npz", 60, 1);
    let test = deeponet_data(&dir, "test.npz", 30, 2);
    let config = dir.join("train.toml");
    std::fs::write(
        &config,
        "out = \"run\"\n[data]\ntrain = \"train.npz\"\ntest = \"test.npz\"\n\
         [model]\nbranch = [24]\ntrunk = [24]\nlatent = 16\n\
         [train]\niterations = 600\nevaluate_every = 200\n",
    )
    .unwrap();
    let o = phaseflow(&["train", "deeponet", "--config", config.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(text.matches("test MSE").count(), 3, "{text}");
    let run = dir.join("run");
    for f in [
        "model.safetensors",
        "history.csv",
        "loss.png",
        "prediction.png",
        "summary.json",
    ] {
        assert!(run.join(f).is_file(), "{f}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let best = summary["test_mean_relative_l2"].as_f64().unwrap();
    assert!(best < 0.3, "{best}");
    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), 4);

    // The checkpoint predicts the test file with the error the summary reports.
    let out = dir.join("g.npy");
    let o = phaseflow(&[
        "predict",
        run.join("model.safetensors").to_str().unwrap(),
        "--data",
        test.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let rel = v["mean_relative_l2"].as_f64().unwrap();
    assert!((rel - best).abs() < 1e-6 * best.max(1.0), "{rel} vs {best}");
    assert_eq!(npy_shape(&out), "30, 20, 1");

    // Bad input: exit 2, one message, nothing written.
    let train_with = |text: &str| {
        std::fs::write(&config, text).unwrap();
        phaseflow(&[
            "train",
            "deeponet",
            "--config",
            config.to_str().unwrap(),
            "-o",
            dir.join("bad").to_str().unwrap(),
        ])
    };
    let o = train_with("[data]\ntrain = \"train.npz\"\nwhat = 1\n");
    assert_input_error(&o, "unknown field `what`");
    assert!(stderr(&o).contains("train.toml:3"), "{}", stderr(&o));
    let o = train_with("[data]\ntrain = \"train.npz\"\n");
    assert_input_error(&o, "validation = 0.1");
    let o = train_with("[data]\ntrain = \"missing.npz\"\nvalidation = 0.2\n");
    assert_input_error(&o, "missing.npz");
    assert!(!dir.join("bad").exists());
    let o = phaseflow(&[
        "predict",
        run.join("model.safetensors").to_str().unwrap(),
        "--functions",
        test.to_str().unwrap(),
        "--points",
        test.to_str().unwrap(),
        "-o",
        dir.join("x.npy").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!dir.join("x.npy").exists());
}

/// A run stopped at 300 iterations and resumed to 600 (with --resume) ends where a run of
/// 600 ends: the same state to the bit, the history of both parts; resuming a finished
/// run or with another architecture is refused.
#[test]
fn train_deeponet_resumes_where_it_stopped() {
    let dir = temp_dir("deeponet-resume");
    deeponet_data(&dir, "train.npz", 60, 1);
    deeponet_data(&dir, "test.npz", 30, 2);
    let config = dir.join("train.toml");
    let train = |iterations: u32, latent: u32, out: &str, resume: Option<&str>| {
        std::fs::write(
            &config,
            format!(
                "[data]\ntrain = \"train.npz\"\ntest = \"test.npz\"\n\
                 [model]\nbranch = [24]\ntrunk = [24]\nlatent = {latent}\n\
                 [train]\niterations = {iterations}\nevaluate_every = 100\n\
                 functions_per_batch = 25\npoints_per_batch = 15\n"
            ),
        )
        .unwrap();
        let out = dir.join(out);
        let mut args = vec![
            "train".to_string(),
            "deeponet".into(),
            "--config".into(),
            config.display().to_string(),
            "-o".into(),
            out.display().to_string(),
        ];
        if let Some(r) = resume {
            args.extend(["--resume".into(), dir.join(r).display().to_string()]);
        }
        phaseflow(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let o = train(600, 16, "straight", None);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = train(300, 16, "parts", None);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = train(600, 16, "parts", Some("parts"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("resuming at step 300 of 600"),
        "{}",
        stdout(&o)
    );
    let state = |run: &str| {
        phaseflow::nn::load_deeponet_state(&dir.join(run).join("state.safetensors")).unwrap()
    };
    let ((_, straight, _), (_, parts, _)) = (state("straight"), state("parts"));
    assert_eq!(parts.step, 600);
    assert_eq!(parts, straight);
    let history = |run: &str| std::fs::read_to_string(dir.join(run).join("history.csv")).unwrap();
    assert_eq!(history("parts"), history("straight"));
    assert_eq!(history("parts").lines().count(), 7);

    let o = train(600, 16, "again", Some("parts"));
    assert_input_error(&o, "already taken 600 steps");
    let o = train(900, 12, "other", Some("parts"));
    assert_input_error(&o, "another architecture");
    assert!(!dir.join("again").exists() && !dir.join("other").exists());
}

/// Generate → train → predict for a system with two inputs and two outputs (the reactor),
/// with normalisation: the data set's shapes, the summary's per-output errors, the
/// checkpoint predicting the test file with the summary's error; bad generation configs
/// give exit 2 and write nothing.
#[test]
fn generate_train_predict_two_inputs() {
    let dir = temp_dir("generate");
    let config = dir.join("generate.toml");
    let generate_with = |text: &str, out: &str| {
        std::fs::write(&config, text).unwrap();
        phaseflow(&[
            "generate",
            "--config",
            config.to_str().unwrap(),
            "-o",
            dir.join(out).to_str().unwrap(),
        ])
    };
    let good = "system = \"cstr\"\nfunctions = 64\ntest_functions = 16\npoints = 11\n\
                steps_per_point = 98\noutputs = [\"ca\", \"T\"]\n\
                [inputs.tc]\nlength_scale = 1.0\nscale = 1.0\n\
                [inputs.cf]\nlength_scale = 1.0\nscale = 0.05\n";
    let o = generate_with(good, "data");
    assert!(o.status.success(), "{}", stderr(&o));
    let data = dir.join("data");
    let members = phaseflow::io::read_npz(&data.join("train.npz")).unwrap();
    assert_eq!(members.len(), 3);
    let test = phaseflow::nn::deeponet::data::read_aligned(&data.join("test.npz")).unwrap();
    assert_eq!(
        (test.functions(), test.points(), test.outputs, test.u.cols),
        (16, 11, 2, 100)
    );
    assert!(data.join("summary.json").is_file());

    let train = dir.join("train.toml");
    std::fs::write(
        &train,
        "out = \"run\"\n[data]\ntrain = \"data/train.npz\"\ntest = \"data/test.npz\"\n\
         [model]\nbranch = [16]\ntrunk = [16]\nlatent = 8\nnormalize = true\n\
         [train]\niterations = 200\nevaluate_every = 100\n",
    )
    .unwrap();
    let o = phaseflow(&[
        "train",
        "deeponet",
        "--config",
        train.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let best = summary["test_mean_relative_l2"].as_f64().unwrap();
    let each = summary["test_mean_relative_l2_per_output"]
        .as_array()
        .unwrap();
    assert_eq!(each.len(), 2);
    // Normalised, the temperature (≈ 384 K) is within a few percent after 200 steps.
    assert!(each[1].as_f64().unwrap() < 0.05, "{summary}");
    assert!(
        summary["architecture"]["scaling"]["g"]["mean"][1]
            .as_f64()
            .unwrap()
            > 300.0
    );
    let out = dir.join("g.npy");
    let o = phaseflow(&[
        "predict",
        dir.join("run/model.safetensors").to_str().unwrap(),
        "--data",
        data.join("test.npz").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let rel = v["mean_relative_l2"].as_f64().unwrap();
    assert!((rel - best).abs() < 1e-6, "{rel} vs {best}");
    // Each output's error, as the summary gave it, and in history.csv at every evaluation.
    for (k, e) in each.iter().enumerate() {
        let p = v["mean_relative_l2_per_output"][k].as_f64().unwrap();
        assert!((p - e.as_f64().unwrap()).abs() < 1e-6, "{v}");
    }
    let history = std::fs::read_to_string(dir.join("run/history.csv")).unwrap();
    let header: Vec<&str> = history.lines().next().unwrap().split(',').collect();
    assert_eq!(
        header[6..],
        [
            "training_mean_rel_l2_output0",
            "training_mean_rel_l2_output1",
            "test_mean_rel_l2_output0",
            "test_mean_rel_l2_output1"
        ]
    );
    let best_step = summary["best_step"].as_f64().unwrap();
    let row: Vec<f64> = history
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .map(|x| x.parse().unwrap())
                .collect::<Vec<f64>>()
        })
        .find(|r| r[0] == best_step)
        .unwrap();
    assert!(
        (row[8] - each[0].as_f64().unwrap()).abs() < 1e-6,
        "{history}"
    );
    assert_eq!(npy_shape(&out), "16, 11, 2");

    for (text, expected) in [
        (
            good.replace("[inputs.cf]", "[inputs.cx]"),
            "'cx' is not an input of cstr",
        ),
        (
            good.replace("outputs = [\"ca\", \"T\"]", "outputs = [\"q\"]"),
            "'q' is not a state of cstr",
        ),
        (
            good.replace("system = \"cstr\"", "system = \"lorenz\""),
            "has no input",
        ),
        (
            good.replace("points = 11", "points = 11\nsolver = \"tsit5\""),
            "fixed-step",
        ),
        (
            good.replace("functions = 64", "functoins = 64"),
            "unknown field `functoins`",
        ),
    ] {
        let o = generate_with(&text, "bad");
        assert_input_error(&o, expected);
        assert!(!dir.join("bad").join("train.npz").exists());
    }
}

fn fit_summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// `fit` on an expression: the loss curve on the terminal and in loss.csv, a checkpoint
/// whose network (evaluated by the f64 twin) has the test MSE the summary reports, and the
/// pictures (fit.png for one input, target | network for two).
#[test]
fn fit_expression_writes_checkpoint_curve_and_pictures() {
    use phaseflow::io::Image;
    use phaseflow::nn::{Matrix, load, mlp::cpu};
    let out = temp_dir("fit-expr");
    let o = phaseflow(&[
        "fit",
        "--expr",
        "sin(2*pi*x) + 0.5*x",
        "--steps",
        "300",
        "--hidden",
        "16,16",
        "--features",
        "8",
        "--sigma",
        "2",
        "--lr",
        "3e-3",
        "--log-every",
        "10",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("step      300  loss"), "{text}");
    assert!(text.contains("test: MSE"), "{text}");
    let csv = std::fs::read_to_string(out.join("loss.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 31, "header and every 10th step");
    let first: f64 = lines[1].split(',').nth(1).unwrap().parse().unwrap();
    let last: f64 = lines[30].split(',').nth(1).unwrap().parse().unwrap();
    assert!(last < 0.1 * first, "the loss fell: {first} → {last}");

    let summary = fit_summary(&out);
    assert_eq!(summary["steps"], 300);
    let reported = summary["test"]["mse"].as_f64().unwrap();
    assert!(reported < 1e-2, "a smooth function is learnt: {reported}");
    let (arch, params) = load(&out.join("model.safetensors")).unwrap();
    assert_eq!(arch.layers, vec![16, 16, 16, 1]);
    let x = Matrix {
        rows: 256,
        cols: 1,
        data: (0..256).map(|i| (i as f64 + 0.5) / 256.0).collect(),
    };
    let t = Matrix {
        rows: 256,
        cols: 1,
        data: x
            .data
            .iter()
            .map(|&v| (std::f64::consts::TAU * v).sin() + 0.5 * v)
            .collect(),
    };
    let twin = cpu::mse(&cpu::forward(&arch, &params, &x).y, &t).0;
    assert!(
        (twin - reported).abs() < 1e-3 * reported + 1e-9,
        "twin {twin} vs GPU {reported}"
    );
    for png in ["loss.png", "fit.png"] {
        let img = Image::read_png(&out.join(png)).unwrap();
        assert_eq!(
            (img.width, img.height, img.channels),
            (960, 600, 3),
            "{png}"
        );
    }

    let out2 = temp_dir("fit-expr2");
    let o = phaseflow(&[
        "fit",
        "--expr",
        "x*y",
        "--inputs",
        "2",
        "--points",
        "8",
        "--steps",
        "5",
        "-q",
        "-o",
        out2.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("step "), "-q prints no curve");
    let img = Image::read_png(&out2.join("reconstruction.png")).unwrap();
    assert_eq!((img.width, img.height, img.channels), (16, 8, 1));
    // Top-right of the target half is the largest x*y, bottom-left the smallest.
    assert!(
        img.data[7] > 0.9 && img.data[7 * 16] < 0.1,
        "{:?}",
        &img.data[..16]
    );
}

/// `fit` on a PNG with held-out pixels reports a PSNR and renders every pixel; on an .npy
/// the leading columns are inputs and the rest outputs.
#[test]
fn fit_images_and_samples() {
    use phaseflow::io::{Image, write_npy};
    let dir = temp_dir("fit-data");
    let picture = Image {
        width: 12,
        height: 10,
        channels: 3,
        data: (0..360).map(|i| ((i * 7) % 11) as f64 / 10.0).collect(),
    };
    let png = dir.join("in.png");
    std::fs::write(&png, picture.to_png().unwrap()).unwrap();
    let out = dir.join("image");
    let o = phaseflow(&[
        "fit",
        "--image",
        png.to_str().unwrap(),
        "--holdout",
        "--steps",
        "20",
        "--hidden",
        "16",
        "--features",
        "8",
        "--json",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["test"]["psnr_db"].as_f64().unwrap().is_finite());
    assert_eq!(
        v["batch"], 30,
        "every other pixel of 12×10 in each direction"
    );
    let back = Image::read_png(&out.join("reconstruction.png")).unwrap();
    assert_eq!((back.width, back.height, back.channels), (12, 10, 3));

    // Two inputs, two outputs, by --inputs.
    let rows: Vec<f64> = (0..64)
        .flat_map(|i| {
            let (a, b) = (i as f64 / 64.0, (i % 8) as f64 / 8.0);
            [a, b, a + b, a - b]
        })
        .collect();
    let data = dir.join("samples.npy");
    write_npy(&data, &[64, 4], &rows).unwrap();
    let out = dir.join("samples");
    let o = phaseflow(&[
        "fit",
        "--data",
        data.to_str().unwrap(),
        "--inputs",
        "2",
        "--test",
        data.to_str().unwrap(),
        "--steps",
        "10",
        "--encoding",
        "none",
        "--hidden",
        "8",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = fit_summary(&out);
    assert_eq!(s["architecture"]["layers"], serde_json::json!([2, 8, 2]));
    assert!(s["test"]["mse"].as_f64().unwrap().is_finite());
    assert!(!out.join("fit.png").exists(), "no picture for two inputs");
}

/// Bad input to `fit`: exit 2, one message (with line, column and caret for expressions),
/// and no output directory.
#[test]
fn fit_rejects_bad_input_before_any_work() {
    let dir = temp_dir("fit-bad");
    let out = dir.join("never");
    let o_arg = out.to_str().unwrap();
    let o = phaseflow(&["fit", "--expr", "sin(2*pi*q)", "-o", o_arg]);
    assert_input_error(&o, "unknown name 'q'");
    let err = stderr(&o);
    assert!(err.contains("<--expr>:1:10"), "{err}");
    assert!(err.contains('^'), "{err}");
    assert_input_error(
        &phaseflow(&["fit", "--expr", "x + t", "-o", o_arg]),
        "the inputs are: x",
    );
    assert_input_error(
        &phaseflow(&["fit", "--expr", "x", "--inputs", "4", "-o", o_arg]),
        "--inputs must be 1, 2 or 3",
    );
    assert_input_error(
        &phaseflow(&["fit", "--expr", "x", "--schedule", "sometimes", "-o", o_arg]),
        "--schedule must be",
    );
    assert_input_error(
        &phaseflow(&["fit", "--image", "/nonexistent.png", "-o", o_arg]),
        "cannot read '/nonexistent.png'",
    );
    let one = dir.join("one.npy");
    phaseflow::io::write_npy(&one, &[3, 1], &[1.0f64, 2.0, 3.0]).unwrap();
    assert_input_error(
        &phaseflow(&["fit", "--data", one.to_str().unwrap(), "-o", o_arg]),
        "has 1 column;",
    );
    let o = phaseflow(&["fit", "-o", o_arg]);
    assert_eq!(o.status.code(), Some(2), "no target is a usage error");
    assert!(!out.exists(), "nothing written");
}

/// Ctrl-C during `fit` stops at the next loss read-back and writes the network trained so
/// far, with the steps it had in its summary; exit 130.
#[test]
fn interrupted_fit_writes_the_network_so_far() {
    use std::io::BufRead;
    let out = temp_dir("fit-cut");
    let mut child = Command::new(env!("CARGO_BIN_EXE_phaseflow"))
        .args([
            "fit",
            "--expr",
            "x*x",
            "--steps",
            "1000000",
            "--log-every",
            "10",
            "--hidden",
            "8",
            "--features",
            "4",
            "-o",
            out.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Interrupt once the handler is in place: it is before the third line is printed.
    for line in lines.by_ref() {
        if line.unwrap().contains("steps of") {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: signals our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted after"), "{err}");
    assert!(
        rest.iter().any(|l| l.contains("model.safetensors")),
        "{rest:?}"
    );
    let s = fit_summary(&out);
    let steps = s["steps"].as_u64().unwrap();
    assert!(steps < 1_000_000 && steps.is_multiple_of(10), "{steps}");
    assert_eq!(s["steps_asked"], 1_000_000);
    phaseflow::nn::load(&out.join("model.safetensors")).unwrap();
}

/// Unaligned data end to end: `generate` with points_per_function writes the training set
/// as samples at random points (and the test set aligned), `train deeponet` learns from
/// it (samples per batch, validated on the aligned test set), and `predict` evaluates the
/// unaligned file sample by sample. Options of the other layout are refused.
#[test]
fn generate_unaligned_train_predict() {
    let dir = temp_dir("unaligned");
    let config = dir.join("generate.toml");
    std::fs::write(
        &config,
        "system = \"antiderivative\"\nfunctions = 300\ntest_functions = 20\npoints = 20\n\
         points_per_function = 4\nout = \"data\"\n[inputs.u]\nlength_scale = 0.3\n",
    )
    .unwrap();
    let o = phaseflow(&["generate", "--config", config.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let data = dir.join("data");
    let members = phaseflow::io::read_npz(&data.join("train.npz")).unwrap();
    let names: Vec<&str> = members.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["sample_functions", "sample_points", "sample_values"]
    );
    let test = phaseflow::nn::deeponet::data::read_aligned(&data.join("test.npz")).unwrap();
    assert_eq!((test.functions(), test.points()), (20, 20));

    let train = dir.join("train.toml");
    let train_with = |extra: &str| {
        std::fs::write(
            &train,
            format!(
                "out = \"run\"\n[data]\ntrain = \"data/train.npz\"\ntest = \"data/test.npz\"\n\
                 [model]\nbranch = [32]\ntrunk = [32]\nlatent = 16\nactivation = \"tanh\"\n\
                 [train]\niterations = 600\nevaluate_every = 300\nlr = 3e-3\n{extra}"
            ),
        )
        .unwrap();
        phaseflow(&[
            "train",
            "deeponet",
            "--config",
            train.to_str().unwrap(),
            "--json",
        ])
    };
    let o = train_with("functions_per_batch = 10\n");
    assert_input_error(&o, "samples_per_batch for unaligned data");
    assert!(!dir.join("run").exists());
    let o = train_with("samples_per_batch = 400\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(
        summary["data"]["train_size"]["samples"].as_u64(),
        Some(1200)
    );
    assert_eq!(summary["data"]["test_size"]["functions"].as_u64(), Some(20));
    // From ~100% (an untrained net) to well under a quarter of the signal in 600 steps.
    let best = summary["test_mean_relative_l2"].as_f64().unwrap();
    assert!(best < 0.25, "{summary}");

    let out = dir.join("g.npy");
    let o = phaseflow(&[
        "predict",
        dir.join("run/model.safetensors").to_str().unwrap(),
        "--data",
        data.join("train.npz").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(npy_shape(&out), "1200, 1");
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["layout"].as_str(), Some("unaligned"));
    let train_error = v["mean_relative_l2"].as_f64().unwrap();
    assert!(train_error < 0.25, "{v}");

    std::fs::write(
        &config,
        "system = \"antiderivative\"\nfunctions = 3\npoints = 20\npoints_per_function = 21\n\
         [inputs.u]\nlength_scale = 0.3\n",
    )
    .unwrap();
    let o = phaseflow(&["generate", "--config", config.to_str().unwrap(), "-o", "x"]);
    assert_input_error(&o, "points_per_function must be between 1 and points (20)");
}
