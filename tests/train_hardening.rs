//! `fit`, `train deeponet`, `generate` and `bench` under hostile settings: NaN and
//! out-of-range values refused where they are written (file, line, column), contradictions
//! refused, sizes and full disks found before any work, a resumed run continuing in its own
//! directory, the test file never chosen on, and a checkpoint never lost to a picture.
//! Runs are tiny (tens of iterations) so the file stays fast on a software GPU.

mod common;
use common::cli::{assert_input_error, phaseflow, stderr, stdout, temp_dir};

use phaseflow::nn::deeponet::data::{antiderivative, write_aligned};
use phaseflow::nn::{Optimizer, OptimizerError, Schedule};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An antiderivative data set (20 sensors, 20 points) of `functions` functions.
fn data(dir: &Path, name: &str, functions: usize, seed: u64) -> PathBuf {
    let d = antiderivative(20, 0.5, functions, seed).unwrap();
    let path = dir.join(name);
    write_aligned(&path, &d).unwrap();
    path
}

fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap();
    path.display().to_string()
}

fn train(config: &str, extra: &[&str]) -> Output {
    let mut args = vec!["train", "deeponet", "--config", config];
    args.extend_from_slice(extra);
    phaseflow(&args)
}

#[test]
fn optimiser_settings_that_cannot_train_are_refused_by_the_library() {
    let ok = Optimizer::default();
    assert_eq!(ok.check(), Ok(()));
    let with = |f: fn(&mut Optimizer)| {
        let mut o = Optimizer::default();
        f(&mut o);
        o.check()
    };
    assert!(matches!(
        with(|o| o.lr = f64::NAN),
        Err(OptimizerError::LearningRate(v)) if v.is_nan()
    ));
    assert_eq!(
        with(|o| o.lr = -1e-3),
        Err(OptimizerError::LearningRate(-1e-3))
    );
    assert_eq!(
        with(|o| o.lr = f64::INFINITY),
        Err(OptimizerError::LearningRate(f64::INFINITY))
    );
    assert_eq!(
        with(|o| o.weight_decay = -0.5),
        Err(OptimizerError::WeightDecay(-0.5))
    );
    assert_eq!(
        with(|o| o.weight_decay = 1000.0),
        Err(OptimizerError::DecayTooLarge {
            decay: 1000.0,
            lr: 1e-3
        })
    );
    assert!(with(|o| o.weight_decay = 999.0).is_ok());
    // A zero rate leaves the parameters where they are: allowed in the library.
    assert!(with(|o| o.lr = 0.0).is_ok());
    assert!(with(|o| o.beta2 = 1.0).is_err());
    assert!(with(|o| o.eps = 0.0).is_err());
    assert_eq!(
        with(|o| o.schedule = Schedule::Step {
            every: 10,
            gamma: 2.0
        }),
        Err(OptimizerError::StepSchedule {
            every: 10,
            gamma: 2.0
        })
    );
    assert!(
        with(|o| o.schedule = Schedule::Cosine {
            total: 10,
            min_lr: 1.0
        })
        .is_err()
    );
}

/// Each bad value of a training config is refused at its place in the file, before the
/// data is read (the data file named does not exist).
#[test]
fn train_config_values_are_refused_where_they_are_written() {
    let dir = temp_dir("config");
    let config = dir.join("train.toml");
    let cases = [
        ("lr = nan", "positive, finite"),
        ("lr = -0.001", "positive, finite"),
        ("lr = inf", "positive, finite"),
        ("weight_decay = -1.0", "≥ 0"),
        ("functions_per_batch = 0", "at least 1"),
        ("samples_per_batch = 0", "at least 1"),
        ("iterations = 0", "at least 1"),
        ("evaluate_every = 0", "at least 1"),
    ];
    for (line, message) in cases {
        let c = write(
            &config,
            &format!("[data]\ntrain = \"missing.npz\"\nvalidation = 0.2\n[train]\n{line}\n"),
        );
        let o = train(&c, &["-o", dir.join("out").to_str().unwrap()]);
        assert_input_error(&o, message);
        // The key is named with its table.
        let key = line.split(' ').next().unwrap();
        assert!(
            stderr(&o).contains(&format!("train.{key}: ")),
            "{}",
            stderr(&o)
        );
        let column = line.find(" = ").unwrap() + 4;
        assert!(
            stderr(&o).contains(&format!("train.toml:5:{column}")) && stderr(&o).contains('^'),
            "{line}: {}",
            stderr(&o)
        );
    }
    let c = write(
        &config,
        "[data]\ntrain = \"missing.npz\"\nvalidation = 1.5\n",
    );
    let o = train(&c, &["-o", dir.join("out").to_str().unwrap()]);
    assert_input_error(&o, "train.toml:3:14");
    assert!(!dir.join("out").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Settings checked after the file is read name the file and the key (`model.branch`,
/// `train.lr`), never a bare table.
#[test]
fn train_and_generate_config_errors_name_the_file_and_the_key() {
    let dir = temp_dir("config-keys");
    data(&dir, "train.npz", 20, 1);
    let config = dir.join("train.toml");
    let out = dir.join("out");
    let cases = [
        (
            "[model]\nbranch = [0]",
            "model.branch[0] = 0: hidden widths must be from 1 to 128",
        ),
        (
            "[model]\nbranch = [8, 200]",
            "model.branch[1] = 200: hidden widths must be from 1 to 128",
        ),
        ("[model]\nlatent = 0", "model.latent must be at least 1"),
        (
            "[model]\ninit = \"xavier\"",
            "model.init must be \"glorot\" or \"he\"",
        ),
        (
            "[train]\nweight_decay = 2000",
            "train.weight_decay × train.lr must be below 1",
        ),
        (
            "[train]\nfunctions_per_batch = 100000",
            "train.functions_per_batch = 100000 is more",
        ),
        ("[data]\ntrain = \"folder\"", "data.train: cannot read"),
        ("[model]\nlatent = 4294967295", "the network would have"),
        ("[data]\ntrain = \"nope.npz\"", "data.train: cannot read"),
    ];
    std::fs::create_dir_all(dir.join("folder")).unwrap();
    for (text, message) in cases {
        let mut body = format!("{text}\n");
        if !text.starts_with("[data]") {
            body = format!("[data]\ntrain = \"train.npz\"\nvalidation = 0.25\n{body}");
        } else {
            body = format!("{}validation = 0.25\n", body);
        }
        let c = write(&config, &body);
        let o = train(&c, &["-o", out.to_str().unwrap()]);
        assert_input_error(&o, &format!("{c}: {message}"));
        assert!(!stderr(&o).contains("DeepONet runs on"), "{}", stderr(&o));
    }
    // The path the key resolved to (relative to the config) is named too.
    assert!(
        stderr(&train(&config.display().to_string(), &[]))
            .contains(&dir.join("nope.npz").display().to_string())
    );
    let c = write(&config, "[data]\ntrain = \"folder\"\nvalidation = 0.25\n");
    assert!(stderr(&train(&c, &["-o", out.to_str().unwrap()])).contains("it is a directory"));
    // Problems of the data sets the config names carry the config's name too.
    let c = write(&config, "[data]\ntrain = \"train.npz\"\n");
    let o = train(&c, &["-o", out.to_str().unwrap()]);
    assert_input_error(&o, &format!("{c}: the config needs [data] test"));
    let generate = dir.join("generate.toml");
    let cases = [
        (
            "system = \"antiderivative\"\nfunctions = 10\npoints = 1\n[inputs.u]\nlength_scale = 0.2",
            "points must be at least 2",
        ),
        (
            "system = \"lorenz\"\nfunctions = 10",
            "system = 'lorenz' has no inputs",
        ),
    ];
    for (text, message) in cases {
        let c = write(&generate, &format!("{text}\n"));
        let o = phaseflow(&["generate", "--config", &c, "-o", out.to_str().unwrap()]);
        assert_input_error(&o, &format!("{c}: {message}"));
    }
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Settings that are wrong only against each other or the data: one sentence each, exit
/// 2, nothing written.
#[test]
fn train_refuses_decay_out_of_range_and_batches_beyond_the_data() {
    let dir = temp_dir("train-range");
    data(&dir, "train.npz", 20, 1);
    let config = dir.join("train.toml");
    let out = dir.join("out");
    let with = |extra: &str| {
        let c = write(
            &config,
            &format!(
                "[data]\ntrain = \"train.npz\"\nvalidation = 0.25\n\
                 [model]\nbranch = [8]\ntrunk = [8]\nlatent = 8\n[train]\n{extra}\n"
            ),
        );
        train(&c, &["-o", out.to_str().unwrap()])
    };
    assert_input_error(&with("lr = 0.01\nweight_decay = 100.0"), "below 1");
    assert_input_error(
        &with("functions_per_batch = 1000"),
        "functions_per_batch = 1000 is more than the 15 functions",
    );
    assert_input_error(
        &with("points_per_batch = 21"),
        "points_per_batch = 21 is more than the 20 points",
    );
    assert_input_error(&with("schedule = \"step:10:3\""), "factor in (0, 1]");
    // The fused kernels that train a DeepONet take hidden widths up to 128.
    let c = write(
        &config,
        "[data]\ntrain = \"train.npz\"\nvalidation = 0.25\n[model]\nbranch = [100000, 100000]\n",
    );
    assert_input_error(
        &train(&c, &["-o", out.to_str().unwrap()]),
        "train.toml: model.branch[0] = 100000: hidden widths must be from 1 to 128",
    );
    assert!(!out.exists(), "a refused run writes nothing");
    // --iterations overrides the config and must be at least 1.
    let o = train(
        config.to_str().unwrap(),
        &["-o", out.to_str().unwrap(), "--iterations", "0"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

fn fit(args: &[&str]) -> Output {
    let mut all = vec!["fit", "--expr", "sin(2*pi*x)", "--points", "32"];
    all.extend_from_slice(args);
    phaseflow(&all)
}

#[test]
fn fit_refuses_nan_zero_and_out_of_range_settings_before_any_work() {
    let dir = temp_dir("fit-range");
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let cases: [(&[&str], &str); 13] = [
        (
            &["--lr", "-1"],
            "--lr must be a positive, finite number; got -1",
        ),
        (
            &["--hidden", "100000,100000"],
            "10013100065 parameters (74.6 GiB",
        ),
        (
            &["--features", "100000000000"],
            "at most 268435456 are allowed",
        ),
        (&["--log-every", "0"], "--log-every must be at least 1"),
        (
            &["--lr", "nan"],
            "--lr must be a positive, finite number; got NaN",
        ),
        (
            &["--lr=-0.01"],
            "--lr must be a positive, finite number; got -0.01",
        ),
        (
            &["--lr", "inf"],
            "--lr must be a positive, finite number; got inf",
        ),
        (&["--weight-decay", "2000"], "below 1"),
        (
            &["--weight-decay=-1"],
            "weight decay must be a finite number",
        ),
        (&["--batch", "0"], "--batch must be at least 1"),
        (&["--batch", "1000"], "more than the 32 training samples"),
        (&["--clip", "0"], "clipping norm"),
        (&["--sigma", "inf"], "--sigma must be a positive, finite"),
    ];
    for (args, message) in cases {
        let mut all = args.to_vec();
        all.extend(["--steps", "5", "-o", o]);
        assert_input_error(&fit(&all), message);
        assert!(!out.exists(), "{args:?} wrote output");
    }
    // Options of another target are contradictions, not silently ignored.
    for (flag, value) in [("--test", "t.npy"), ("--holdout", "")] {
        let mut all = vec![flag];
        if !value.is_empty() {
            all.push(value);
        }
        all.extend(["-o", o]);
        assert_input_error(&fit(&all), &format!("{flag} is for --"));
        assert!(!out.exists());
    }
    // A run that diverges is a failure (exit 1), and writes no checkpoint nothing would load.
    let o_run = fit(&["--lr", "1e30", "--steps", "10", "-o", o]);
    assert_eq!(o_run.status.code(), Some(1), "{}", stderr(&o_run));
    assert!(
        stderr(&o_run).contains("training diverged"),
        "{}",
        stderr(&o_run)
    );
    assert!(
        !out.join("model.safetensors").exists(),
        "a diverged network was written"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn generate_config_values_are_refused_where_they_are_written() {
    let dir = temp_dir("generate-config");
    let config = dir.join("generate.toml");
    let cases = [
        (
            "functions = 0\n[inputs.u]\nlength_scale = 0.2",
            "at least 1",
            "1:13",
        ),
        (
            "functions = 10\n[inputs.u]\nlength_scale = nan",
            "positive, finite",
            "3:16",
        ),
        (
            "functions = 10\n[inputs.u]\nlength_scale = -0.2",
            "positive, finite",
            "3:16",
        ),
        (
            "functions = 10\n[inputs.u]\nlength_scale = 0.2\nscale = inf",
            "finite",
            "4:9",
        ),
        ("functions = 10\nsteps_per_point = 0", "at least 1", "2:19"),
    ];
    let out = dir.join("data");
    for (text, message, at) in cases {
        let c = write(&config, &format!("system = \"antiderivative\"\n{text}\n"));
        let o = phaseflow(&["generate", "--config", &c, "-o", out.to_str().unwrap()]);
        assert_input_error(&o, message);
        // Line numbers count the system line above the case.
        let (line, column) = at.split_once(':').unwrap();
        let line: usize = line.parse::<usize>().unwrap() + 1;
        assert!(
            stderr(&o).contains(&format!("generate.toml:{line}:{column}")),
            "{text}: {}",
            stderr(&o)
        );
        assert!(!out.exists());
    }
    // A value refused only once the run is sized names the config too.
    let c = write(
        &config,
        "system = \"antiderivative\"\nfunctions = 10\nsteps_per_point = 4000000000\n[inputs.u]\nlength_scale = 0.2\n",
    );
    let o = phaseflow(&["generate", "--config", &c, "-o", out.to_str().unwrap()]);
    assert_input_error(&o, "steps one run can take");
    assert!(stderr(&o).contains("generate.toml: "), "{}", stderr(&o));
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_contradictions_and_sizes_beyond_memory_are_refused_before_any_work() {
    let o = phaseflow(&["bench", "all", "-n", "1000"]);
    assert_input_error(&o, "-n 1000 sizes one scenario");
    let o = phaseflow(&["bench", "ode-fixed", "-n", "1000", "--sweep", "N=10..100"]);
    assert_input_error(&o, "both give the size");
    let o = phaseflow(&["bench", "ode-fixed", "-n", "1000", "--reps", "0"]);
    assert_input_error(&o, "--reps must be at least 1");
    let o = phaseflow(&["bench", "peak", "-n", "1000"]);
    assert_input_error(&o, "-n 1000 sizes one scenario");
    for scenario in ["mlp-train", "mlp-infer", "deeponet-infer", "paper-lorenz"] {
        let o = phaseflow(&["bench", scenario, "-n", "100000000000000", "--reps", "1"]);
        assert_input_error(&o, "GiB of host memory");
        assert!(stderr(&o).contains("-n 100000000000000"), "{}", stderr(&o));
    }
}

/// A PNG whose header declares `width` × `height` pixels (its data is not needed: the
/// size is refused from the header).
fn png_header(path: &Path, width: u32, height: u32) {
    fn crc(bytes: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for chunk in [ihdr, b"IDAT".to_vec(), b"IEND".to_vec()] {
        png.extend((chunk.len() as u32 - 4).to_be_bytes());
        png.extend(&chunk);
        png.extend(crc(&chunk).to_be_bytes());
    }
    std::fs::write(path, png).unwrap();
}

#[test]
fn images_and_data_sets_too_large_are_refused_with_their_size() {
    let dir = temp_dir("sizes");
    let big = dir.join("big.png");
    png_header(&big, 60_000, 60_000);
    let o = phaseflow(&["fit", "--image", big.to_str().unwrap()]);
    assert_input_error(&o, "60000 × 60000 pixels");
    assert!(stderr(&o).contains("134.1 GiB"), "{}", stderr(&o));

    let config = dir.join("generate.toml");
    let c = write(
        &config,
        "system = \"antiderivative\"\nfunctions = 1000000000\npoints = 100\n\
         [inputs.u]\nlength_scale = 0.2\n",
    );
    let out = dir.join("data");
    let o = phaseflow(&["generate", "--config", &c, "-o", out.to_str().unwrap()]);
    assert_input_error(&o, "GiB of host memory");
    assert!(
        stderr(&o).contains("1000000000 functions"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--resume DIR` goes on in DIR whatever the config's `out` says; -o elsewhere is a
/// contradiction; --iterations raises the run's length.
#[test]
fn train_resume_continues_in_its_own_directory() {
    let dir = temp_dir("resume");
    data(&dir, "train.npz", 20, 1);
    let config = dir.join("train.toml");
    let text = |out: &str| {
        format!(
            "out = \"{out}\"\n[data]\ntrain = \"train.npz\"\nvalidation = 0.25\n\
             [model]\nbranch = [8]\ntrunk = [8]\nlatent = 8\n\
             [train]\niterations = 20\nevaluate_every = 10\n"
        )
    };
    let c = write(&config, &text("first"));
    let o = train(&c, &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The config now names another run's directory, which must stay untouched.
    let c = write(&config, &text("other"));
    let first = dir.join("first");
    let o = train(
        &c,
        &[
            "--resume",
            first.to_str().unwrap(),
            "--iterations",
            "40",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!dir.join("other").exists(), "the config's out was written");
    let (_, state, _) =
        phaseflow::nn::load_deeponet_state(&first.join("state.safetensors")).unwrap();
    assert_eq!(state.step, 40);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(first.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["iterations"], 40);
    let history = std::fs::read_to_string(first.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), 5, "{history}");

    let elsewhere = dir.join("elsewhere");
    let o = train(
        &c,
        &[
            "--resume",
            first.to_str().unwrap(),
            "--iterations",
            "60",
            "-o",
            elsewhere.to_str().unwrap(),
        ],
    );
    assert_input_error(&o, "names another directory");
    assert!(!elsewhere.exists());
    // Resuming with the best step chosen on another set is refused.
    let c = write(
        &config,
        &text("other").replace("validation = 0.25", "test = \"train.npz\""),
    );
    let o = train(
        &c,
        &["--resume", first.to_str().unwrap(), "--iterations", "60"],
    );
    assert_input_error(&o, "chose its best step on the validation set");
    // Settings that change the steps (the sampler's seed, the validation share, the
    // learning rate, the model's seed) are refused; iterations and patience are not.
    for (from, to) in [
        ("evaluate_every = 10", "evaluate_every = 10\nseed = 5"),
        ("validation = 0.25", "validation = 0.3"),
        ("evaluate_every = 10", "evaluate_every = 10\nlr = 0.01"),
        ("latent = 8", "latent = 8\nseed = 9"),
    ] {
        let c = write(&config, &text("other").replace(from, to));
        let o = train(
            &c,
            &["--resume", first.to_str().unwrap(), "--iterations", "60"],
        );
        assert_input_error(&o, "other settings or data");
    }
    let c = write(
        &config,
        &text("other").replace("evaluate_every = 10", "evaluate_every = 10\npatience = 3"),
    );
    let o = train(
        &c,
        &["--resume", first.to_str().unwrap(), "--iterations", "60"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Other training data (the same shape) is refused too.
    data(&dir, "train.npz", 20, 2);
    let o = train(
        &c,
        &["--resume", first.to_str().unwrap(), "--iterations", "80"],
    );
    assert_input_error(&o, "other settings or data");
    let o = train(&c, &["--resume", first.to_str().unwrap(), "--overwrite"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Column `name` of a history.csv, by step.
fn column(history: &str, name: &str) -> Vec<(u32, f64)> {
    let mut lines = history.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let k = header.iter().position(|h| *h == name).unwrap_or_else(|| {
        panic!("no column {name} in {header:?}");
    });
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0].parse().unwrap(), cells[k].parse().unwrap())
        })
        .collect()
}

fn argmin(values: &[(u32, f64)]) -> u32 {
    values
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|v| v.0)
        .unwrap()
}

/// With a test file, the run says "test", reports the test error of the network it
/// writes, and chooses that network on the training set (or a validation share), never
/// on the test file.
#[test]
fn train_with_a_test_file_never_chooses_on_it() {
    let dir = temp_dir("test-set");
    data(&dir, "train.npz", 24, 1);
    data(&dir, "test.npz", 12, 2);
    let config = dir.join("train.toml");
    for (extra, selected) in [("", "training"), ("validation = 0.25\n", "validation")] {
        let c = write(
            &config,
            &format!(
                "out = \"run\"\n[data]\ntrain = \"train.npz\"\ntest = \"test.npz\"\n{extra}\
                 [model]\nbranch = [8]\ntrunk = [8]\nlatent = 8\n\
                 [train]\niterations = 60\nevaluate_every = 10\nlr = 0.01\n"
            ),
        );
        // The second configuration replaces the first one's results.
        let o = train(&c, &["--overwrite"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = stdout(&o);
        assert_eq!(text.matches("test MSE").count(), 6, "{text}");
        assert!(
            text.contains(&format!("best step chosen on the {selected} set")),
            "{text}"
        );
        let run = dir.join("run");
        let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["selected_on"], selected);
        let chosen = column(&history, &format!("{selected}_mean_rel_l2"));
        assert_eq!(summary["best_step"], argmin(&chosen), "{history}");
        let best = chosen.iter().find(|c| c.0 == argmin(&chosen)).unwrap().1;
        let reported = summary[format!("{selected}_mean_relative_l2")]
            .as_f64()
            .unwrap();
        assert!(
            (reported - best).abs() <= 1e-6 * best,
            "{reported} vs {best}"
        );
        // The test error reported is the written network's, at the chosen step.
        let test = column(&history, "test_mean_rel_l2");
        let at_best = test.iter().find(|t| t.0 == argmin(&chosen)).unwrap().1;
        let test_rel = summary["test_mean_relative_l2"].as_f64().unwrap();
        assert!(
            (test_rel - at_best).abs() <= 1e-4 * at_best,
            "{test_rel} vs {at_best}"
        );
        assert_eq!(
            summary["data"]["validation_size"].is_null(),
            selected == "training"
        );
        assert_eq!(summary["data"]["test_size"]["functions"], 12);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run that diverged at every evaluation (lr = 1e30: NaN errors and weights) writes
/// nothing and says why, exit 1, as `fit` does: every loader refuses NaN weights, so its
/// checkpoint would be of no use. Over an earlier run (--overwrite) it leaves that run's
/// files as they were.
#[test]
fn a_run_that_diverged_writes_nothing() {
    let dir = temp_dir("diverged");
    data(&dir, "train.npz", 24, 1);
    let c = write(
        &dir.join("train.toml"),
        "out = \"run\"\n[data]\ntrain = \"train.npz\"\nvalidation = 0.25\n[model]\nbranch = [8]\ntrunk = [8]\n\
         latent = 8\n[train]\niterations = 30\nevaluate_every = 10\nlr = 1e30\n",
    );
    let o = train(&c, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("training diverged") && err.contains("it was 1e30"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let written: Vec<_> = std::fs::read_dir(dir.join("run"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(written.is_empty(), "{written:?}");
    // Over an earlier run with --overwrite, a diverged run leaves the earlier results
    // whole (they were removed before the work).
    let good = write(
        &dir.join("good.toml"),
        "out = \"run\"\n[data]\ntrain = \"train.npz\"\nvalidation = 0.25\n[model]\n\
         branch = [8]\ntrunk = [8]\nlatent = 8\n[train]\niterations = 20\nevaluate_every = 10\n",
    );
    let o = train(&good, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = std::fs::read_to_string(dir.join("run/summary.json")).unwrap();
    let model = std::fs::read(dir.join("run/model.safetensors")).unwrap();
    let o = train(&c, &["--overwrite"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.join("run/summary.json")).unwrap(),
        summary
    );
    assert_eq!(
        std::fs::read(dir.join("run/model.safetensors")).unwrap(),
        model
    );
    assert!(dir.join("run/state.safetensors").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A picture that cannot be written (its temporary path is taken by a directory) is a
/// warning: the checkpoint, curve and summary are still written, exit 0.
#[test]
fn a_picture_that_fails_never_costs_the_checkpoint() {
    let dir = temp_dir("picture");
    let out = dir.join("fit");
    std::fs::create_dir_all(out.join(".loss.png.partial")).unwrap();
    let o = fit(&["--steps", "5", "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: loss.png not written"),
        "{}",
        stderr(&o)
    );
    for f in ["model.safetensors", "loss.csv", "summary.json", "fit.png"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    assert!(!out.join("loss.png").exists());

    data(&dir, "train.npz", 20, 1);
    let run = dir.join("run");
    std::fs::create_dir_all(run.join(".prediction.png.partial")).unwrap();
    let c = write(
        &dir.join("train.toml"),
        "[data]\ntrain = \"train.npz\"\nvalidation = 0.25\n\
         [model]\nbranch = [8]\ntrunk = [8]\nlatent = 8\n\
         [train]\niterations = 10\nevaluate_every = 10\n",
    );
    let o = train(&c, &["-o", run.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: prediction.png not written"),
        "{}",
        stderr(&o)
    );
    for f in [
        "model.safetensors",
        "state.safetensors",
        "history.csv",
        "summary.json",
        "loss.png",
    ] {
        assert!(run.join(f).is_file(), "{f}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A 1 MiB tmpfs mounted at `dir` for the life of the guard; `None` (with a note) where
/// mounting is not permitted.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("skipped: mounting a small tmpfs is not permitted here (not root?)");
            return None;
        }
        Some(SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
    }
}

/// Exit 2 naming the space needed, before any training or integration (nothing printed
/// on stdout), and nothing left on the small disk.
fn assert_refused_for_space(o: &Output, disk: &Path) {
    assert_input_error(o, "not enough disk space");
    assert!(stderr(o).contains("MiB"), "{}", stderr(o));
    assert!(stdout(o).is_empty(), "work was done: {}", stdout(o));
    assert_eq!(
        std::fs::read_dir(disk).unwrap().count(),
        0,
        "something was left on the disk"
    );
}

#[test]
fn full_disks_are_found_before_the_work() {
    let dir = temp_dir("disk");
    let disk = dir.join("disk");
    let Some(_mounted) = SmallDisk::mount(&disk) else {
        return;
    };
    // fit: 128 features → 512 → 512 → 1 is about 330,000 parameters, 1.3 MB of f32.
    let o = fit(&[
        "--hidden",
        "512,512",
        "--steps",
        "5",
        "-o",
        disk.join("fit").to_str().unwrap(),
    ]);
    assert_refused_for_space(&o, &disk);

    // train: a branch of 20 → 128 × 12 (the fused kernels' widest) and its Adam state take
    // about 3.2 MB.
    data(&dir, "train.npz", 20, 1);
    let c = write(
        &dir.join("train.toml"),
        "[data]\ntrain = \"train.npz\"\nvalidation = 0.25\n\
         [model]\nbranch = [128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128]\n\
         trunk = [8]\nlatent = 8\n\
         [train]\niterations = 10\nevaluate_every = 10\n",
    );
    let o = train(&c, &["-o", disk.join("run").to_str().unwrap()]);
    assert_refused_for_space(&o, &disk);

    // generate: 4,000 functions × 50 points of f64 labels are 1.6 MB alone.
    let c = write(
        &dir.join("generate.toml"),
        "system = \"antiderivative\"\nfunctions = 4000\npoints = 50\n\
         [inputs.u]\nlength_scale = 0.2\n",
    );
    let o = phaseflow(&[
        "generate",
        "--config",
        &c,
        "-o",
        disk.join("data").to_str().unwrap(),
    ]);
    assert_refused_for_space(&o, &disk);

    // What fits is written: a small fit on the same disk succeeds.
    let o = fit(&[
        "--hidden",
        "16",
        "--features",
        "8",
        "--steps",
        "5",
        "-o",
        disk.join("small").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(disk.join("small/model.safetensors").is_file());
    drop(_mounted);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `-o` onto an earlier result is refused unless --overwrite, which replaces the command's
/// own files and leaves the user's alone.
#[test]
fn output_onto_earlier_results_needs_overwrite() {
    let dir = temp_dir("fit-overwrite");
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let first = fit(&["--steps", "5", "-o", o]);
    assert!(first.status.success(), "{}", stderr(&first));
    let summary = std::fs::read(out.join("summary.json")).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();

    let again = fit(&["--steps", "7", "-o", o]);
    assert_input_error(&again, "holds earlier results");
    assert_eq!(std::fs::read(out.join("summary.json")).unwrap(), summary);

    let replaced = fit(&["--steps", "7", "-o", o, "--overwrite"]);
    assert!(replaced.status.success(), "{}", stderr(&replaced));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(v["steps"], 7);
    assert_eq!(std::fs::read(out.join("notes.txt")).unwrap(), b"mine");
    let _ = std::fs::remove_dir_all(&dir);
}
