//! `phaseflow simulate` runs as a user (and a signal) meets them: resumable wherever the
//! run directory goes and however the run stopped, refused when its settings were edited,
//! never mixed with an old run's files, honest about trajectories that did not run, with
//! progress that moves inside one chunk, and contradictions and oversized requests refused
//! before any work.

mod common;
use common::cli::{
    assert_input_error, phaseflow, signal_and_wait, start_and_wait_for, start_and_wait_for_chunks,
    stderr, temp_dir,
};

use std::path::{Path, PathBuf};
use std::process::Command;

fn run_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap()
}

/// The data bytes of an .npy file (after its header).
fn npy_data(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + header..].to_vec()
}

/// A run of 8 chunks of 2,048 trajectories with saves and per-trajectory statistics,
/// writing into `out`.
fn chunked_args(out: &Path) -> Vec<String> {
    [
        "simulate",
        "lorenz",
        "-n",
        "16384",
        "--sweep",
        "rho=0:50",
        "--tspan",
        "0:40",
        "--dt",
        "0.001",
        "--save-every",
        "10000",
        "--chunk",
        "2048",
        "--outputs",
        "states,trajectory-stats",
        "-q",
        "-o",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

const RESULT_FILES: [&str; 7] = [
    "states.npy",
    "status.npy",
    "trajectory_min.npy",
    "trajectory_max.npy",
    "trajectory_mean.npy",
    "params.npy",
    "times.npy",
];

/// Every result file of `dir` is the same bytes as `whole`'s.
fn assert_same_results(whole: &Path, dir: &Path) {
    for f in RESULT_FILES {
        assert!(
            std::fs::read(whole.join(f)).unwrap() == std::fs::read(dir.join(f)).unwrap(),
            "{f} differs between {} and {}",
            whole.display(),
            dir.display()
        );
    }
}

/// The reference: the same run, never interrupted.
fn whole_run(name: &str) -> PathBuf {
    let whole = temp_dir(name).join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_phaseflow"))
        .args(chunked_args(&whole))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    whole
}

/// SIGKILL in the middle of a run leaves run.json in state "running" (written before the
/// first chunk, brought up to date as chunks finish); --resume finishes it, to the same
/// bytes as a run that was never stopped.
#[test]
fn a_killed_run_resumes_to_the_same_bytes() {
    let whole = whole_run("killed-whole");
    let dir = temp_dir("killed");
    let cut = dir.join("run");
    let (child, reader) = start_and_wait_for_chunks(&chunked_args(&cut), 2);
    signal_and_wait(child, reader, libc::SIGKILL);
    let run = run_json(&cut);
    assert_eq!(run["state"], "running");
    let done = run["trajectories_done"].as_u64().unwrap();
    assert!((2048..16384).contains(&done), "{done}");
    // No absolute path anywhere in run.json: the directory is self-contained.
    let text = std::fs::read_to_string(cut.join("run.json")).unwrap();
    assert!(!text.contains(&*dir.to_string_lossy()), "{text}");

    let o = phaseflow(&["simulate", "--resume", cut.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_results(&whole, &cut);
    let run = run_json(&cut);
    assert_eq!(run["state"], "complete");
    assert_eq!(run["status"]["success"], 16384);
    assert!(
        !cut.read_dir()
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().starts_with('.')),
        "no temporary file is left"
    );
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(whole.parent().unwrap()).unwrap();
}

/// Ctrl-C keeps the finished chunks and marks the others "not run" (status 0, NaN states).
/// A copy of the interrupted directory resumes into the copy (the original stays as it
/// was); a moved directory resumes where it now is; both end as the uninterrupted run.
#[test]
fn copied_and_moved_runs_resume_where_they_are() {
    let whole = whole_run("moved-whole");
    let dir = temp_dir("moved");
    let original = dir.join("original");
    let (child, reader) = start_and_wait_for_chunks(&chunked_args(&original), 2);
    let (code, err) = signal_and_wait(child, reader, libc::SIGINT);
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("--resume"), "{err}");
    let run = run_json(&original);
    assert_eq!(run["state"], "interrupted");
    assert_eq!(run["complete"], false);
    let done = run["trajectories_done"].as_u64().unwrap() as usize;
    assert!(
        (2048..16384).contains(&done) && done.is_multiple_of(2048),
        "{done}"
    );
    let status = npy_data(&original.join("status.npy"));
    assert!(status[..done].iter().all(|&s| s == 1));
    assert!(
        status[done..].iter().all(|&s| s == 0),
        "undone: status 0, not run"
    );
    let states = npy_data(&original.join("states.npy"));
    let states: &[f32] = bytemuck::cast_slice(&states);
    let (n, dim) = (16384, 3);
    for slot in 0..5 {
        let row = |j: usize| &states[(slot * n + j) * dim..(slot * n + j + 1) * dim];
        assert!(row(done - 1).iter().all(|v| v.is_finite()));
        assert!(row(done).iter().all(|v| v.is_nan()), "slot {slot}");
        assert!(row(n - 1).iter().all(|v| v.is_nan()), "slot {slot}");
    }

    // A copy completes itself and leaves the original alone.
    let copy = dir.join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for e in original.read_dir().unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    let o = phaseflow(&["simulate", "--resume", copy.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_results(&whole, &copy);
    assert_eq!(run_json(&original)["state"], "interrupted");
    assert_eq!(
        npy_data(&original.join("status.npy"))[done..],
        vec![0u8; n - done][..]
    );

    // A moved run resumes where it is now.
    let moved = dir.join("elsewhere").join("moved");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&original, &moved).unwrap();
    let o = phaseflow(&["simulate", "--resume", moved.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_results(&whole, &moved);
    assert!(!original.exists());
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(whole.parent().unwrap()).unwrap();
}

/// A run.json edited to another solver (or any other setting) no longer matches the
/// fingerprint of the settings that wrote the files: refused with one sentence, nothing
/// touched. An edited system file copy is refused the same way.
#[test]
fn an_edited_run_is_refused() {
    let dir = temp_dir("edited");
    let system = dir.join("osc.toml");
    std::fs::write(
        &system,
        "name = 'osc'\nstates = { x = 1.0, v = 0.0 }\nparameters = { k = 1.0 }\n\
         equations = '''\ndx = v\ndv = -k*x\n'''\n",
    )
    .unwrap();
    let run = dir.join("run");
    let args = [
        "simulate",
        system.to_str().unwrap(),
        "-n",
        "16384",
        "--sweep",
        "k=1:2",
        "--tspan",
        "0:40",
        "--dt",
        "0.001",
        "--chunk",
        "2048",
        "-o",
        run.to_str().unwrap(),
    ]
    .map(String::from);
    let (child, reader) = start_and_wait_for_chunks(&args, 1);
    signal_and_wait(child, reader, libc::SIGKILL);
    // The system file was copied in: the run no longer needs the original.
    assert!(run.join("system.toml").exists());
    std::fs::remove_file(&system).unwrap();

    let text = std::fs::read_to_string(run.join("run.json")).unwrap();
    let edited = text.replace("\"solver\": null", "\"solver\": \"heun\"");
    assert_ne!(edited, text);
    std::fs::write(run.join("run.json"), &edited).unwrap();
    let o = phaseflow(&["simulate", "--resume", run.to_str().unwrap(), "-q"]);
    assert_input_error(&o, "are not those that wrote the run's files");
    assert_eq!(
        std::fs::read_to_string(run.join("run.json")).unwrap(),
        edited
    );

    std::fs::write(run.join("run.json"), &text).unwrap();
    let sys = std::fs::read_to_string(run.join("system.toml")).unwrap();
    std::fs::write(run.join("system.toml"), sys.replace("-k*x", "-2*k*x")).unwrap();
    let o = phaseflow(&["simulate", "--resume", run.to_str().unwrap(), "-q"]);
    assert_input_error(&o, "are not those that wrote the run's files");

    // Restored, it resumes (from the copied system file alone).
    std::fs::write(run.join("system.toml"), sys).unwrap();
    let o = phaseflow(&["simulate", "--resume", run.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(run_json(&run)["status"]["success"], 16384);
    std::fs::remove_dir_all(dir).unwrap();
}

/// -o onto a run directory is refused (the old run intact); with --overwrite the directory
/// is replaced as a whole: no file of the old run stays.
#[test]
fn output_onto_a_run_needs_overwrite_and_leaves_no_stale_files() {
    let dir = temp_dir("overwrite");
    let out = dir.join("run");
    let first = [
        "simulate",
        "lorenz",
        "-n",
        "64",
        "--sweep",
        "rho=0:50",
        "--tspan",
        "0:1",
        "--dt",
        "0.01",
        "--outputs",
        "states,trajectory-stats",
        "-q",
        "-o",
        out.to_str().unwrap(),
    ];
    let o = phaseflow(&first);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("params.npy").exists() && out.join("trajectory_min.npy").exists());
    let before = std::fs::read(out.join("run.json")).unwrap();

    let second = [
        "simulate",
        "lorenz",
        "-n",
        "8",
        "--tspan",
        "0:1",
        "--dt",
        "0.01",
        "-q",
        "-o",
        out.to_str().unwrap(),
    ];
    let o = phaseflow(&second);
    assert_input_error(&o, "holds a run already");
    assert_eq!(std::fs::read(out.join("run.json")).unwrap(), before);

    let o = phaseflow(&[&second[..], &["--overwrite"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let mut names: Vec<String> = out
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["run.json", "states.npy", "status.npy", "times.npy"]);
    assert_eq!(run_json(&out)["n"], 8);

    // --overwrite removes only a run's own files: a directory that also holds the user's
    // files (or a folder) is refused whole, and everything in it stays.
    std::fs::write(out.join("thesis.tex"), "mine").unwrap();
    std::fs::create_dir(out.join("data")).unwrap();
    let before = std::fs::read(out.join("run.json")).unwrap();
    let o = phaseflow(&[&second[..], &["--overwrite"]].concat());
    assert_input_error(&o, "not a file of a phaseflow run");
    assert_eq!(std::fs::read(out.join("thesis.tex")).unwrap(), b"mine");
    assert!(out.join("data").is_dir() && out.join("states.npy").exists());
    assert_eq!(std::fs::read(out.join("run.json")).unwrap(), before);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A run that the old default made one chunk (8,192 trajectories, 6 × 10^5 Euler steps) is
/// cut so that a chunk holds about 2^31 trajectory-steps; Ctrl-C then keeps the finished
/// trajectories and marks the others "not run".
#[test]
fn ctrl_c_on_a_formerly_single_chunk_run_keeps_finished_trajectories() {
    let dir = temp_dir("ctrl-c");
    let out = dir.join("run");
    let args = [
        "simulate",
        "lorenz",
        "-n",
        "8192",
        "--solver",
        "euler",
        "--tspan",
        "0:600",
        "--dt",
        "0.001",
        "-o",
        out.to_str().unwrap(),
    ]
    .map(String::from);
    // Interrupt inside the second chunk: once 55% of the work is done. (The first chunk's
    // results are consumed while the second runs, so its "chunk finished" may come late.)
    let past_half = |line: &str, _| {
        let percent = line
            .split(" · ")
            .nth(1)
            .and_then(|p| p.trim_end_matches("% of the work").parse::<f64>().ok());
        usize::from(percent.is_some_and(|p| p >= 55.0))
    };
    let (child, reader) = start_and_wait_for(&args, past_half, 1);
    let (code, err) = signal_and_wait(child, reader, libc::SIGINT);
    assert_eq!(code, Some(130), "{err}");
    assert!(
        err.contains("4096 trajectories not run have status 0"),
        "{err}"
    );
    let run = run_json(&out);
    assert_eq!(run["state"], "interrupted");
    assert_eq!(run["trajectories_done"], 4096);
    assert_eq!(run["status"]["success"], 4096);
    let status = npy_data(&out.join("status.npy"));
    assert_eq!(status.iter().filter(|&&s| s == 1).count(), 4096);
    assert!(status[4096..].iter().all(|&s| s == 0));
    let states = npy_data(&out.join("states.npy"));
    let states: &[f32] = bytemuck::cast_slice(&states);
    assert!(states[..4096 * 3].iter().all(|v| v.is_finite()));
    assert!(states[4096 * 3..].iter().all(|v| v.is_nan()));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Progress moves inside a single chunk: the compile phase is reported with its time, then
/// several updates of the work done come before the chunk finishes.
#[test]
fn progress_ticks_inside_one_chunk() {
    let o = Command::new(env!("CARGO_BIN_EXE_phaseflow"))
        .args([
            "simulate", "lorenz", "-n", "4096", "--solver", "euler", "--tspan", "0:300", "--dt",
            "0.001", "--json",
        ])
        .env("PHASEFLOW_PROGRESS", "lines")
        .output()
        .unwrap();
    // One chunk, and its compile time reported apart.
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["timing"]["chunks"], 1);
    assert!(summary["timing"]["compile_s"].as_f64().unwrap() > 0.0);

    let o = Command::new(env!("CARGO_BIN_EXE_phaseflow"))
        .args([
            "simulate", "lorenz", "-n", "4096", "--solver", "euler", "--tspan", "0:300", "--dt",
            "0.001",
        ])
        .env("PHASEFLOW_PROGRESS", "lines")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("progress:")).collect();
    assert!(lines[0].contains("compiling the kernel"), "{err}");
    assert!(lines[1].contains("kernel compiled in"), "{err}");
    let running = lines.iter().filter(|l| l.contains("running")).count();
    assert!(running >= 3, "{err}");
    let last = lines.last().unwrap();
    assert!(
        last.contains("chunk finished") && last.contains("4096/4096"),
        "{err}"
    );
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l.contains("0/4096 trajectories"))
    );
    // The work done only grows.
    let percents: Vec<f64> = lines
        .iter()
        .map(|l| {
            let p = l.split(" · ").nth(1).unwrap();
            p.trim_end_matches("% of the work").parse().unwrap()
        })
        .collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
    assert_eq!(*percents.last().unwrap(), 100.0);
}

/// Requests whose size is refused before anything is allocated, with the size said.
#[test]
fn oversized_requests_are_refused_with_their_size() {
    // A system beyond the documented size, whose kernel would compile for minutes.
    let dir = temp_dir("states");
    let big = dir.join("big.toml");
    let states: Vec<String> = (0..101).map(|i| format!("x{i} = 0.0")).collect();
    let equations: Vec<String> = (0..101).map(|i| format!("dx{i} = -x{i}")).collect();
    std::fs::write(
        &big,
        format!(
            "name = 'big'\nstates = {{ {} }}\nequations = '''\n{}\n'''\n",
            states.join(", "),
            equations.join("\n")
        ),
    )
    .unwrap();
    let o = phaseflow(&[
        "simulate",
        big.to_str().unwrap(),
        "-n",
        "1",
        "--tspan",
        "0:1",
        "--dt",
        "0.5",
    ]);
    assert_input_error(&o, "big has 101 states; at most 100 are supported");
    std::fs::remove_dir_all(dir).unwrap();

    assert_input_error(
        &phaseflow(&[
            "simulate", "lorenz", "-n", "4", "--solver", "tsit5", "--tspan", "0:1", "--saveat",
            "0:1e-9:1",
        ]),
        "asks for 1000000001 save times (8.0 GB for the times alone)",
    );
    assert_input_error(
        &phaseflow(&[
            "simulate",
            "lorenz",
            "-n",
            "4",
            "--solver",
            "tsit5",
            "--tspan",
            "0:1",
            "--saveat",
            "0:1e-300:1",
        ]),
        "at most 16777216 are allowed",
    );
    // Ensemble statistics for 20 states at 2^24 + 1 save times: 7.5 GiB of accumulators.
    let dir = temp_dir("sizes");
    let system = dir.join("wide.toml");
    let states: Vec<String> = (0..20).map(|i| format!("x{i} = 0.0")).collect();
    let equations: Vec<String> = (0..20).map(|i| format!("dx{i} = -x{i}")).collect();
    std::fs::write(
        &system,
        format!(
            "name = 'wide'\nstates = {{ {} }}\nequations = '''\n{}\n'''\n",
            states.join(", "),
            equations.join("\n")
        ),
    )
    .unwrap();
    let out = dir.join("out");
    assert_input_error(
        &phaseflow(&[
            "simulate",
            system.to_str().unwrap(),
            "-n",
            "1",
            "--tspan",
            "0:16777216",
            "--dt",
            "1",
            "--save-every",
            "1",
            "--outputs",
            "ensemble-stats",
            "-o",
            out.to_str().unwrap(),
        ]),
        "(7.5 GiB, at most 2 GiB)",
    );
    assert!(!out.exists(), "nothing written for a refused run");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Contradictions between options: one sentence each, exit code 2, nothing run.
#[test]
fn contradictions_are_refused() {
    let base = ["simulate", "lorenz", "-n", "4", "--tspan", "0:1"];
    let adaptive = [&base[..], &["--solver", "tsit5"]].concat();
    let cases: [(Vec<&str>, &str); 9] = [
        (
            [&base[..], &["--sweep", "rho=0:1", "--sweep", "rho=0:2"]].concat(),
            "--sweep rho is given twice",
        ),
        (
            [&base[..], &["--sweep", "rho=0:50", "--param", "rho=3"]].concat(),
            "--sweep rho and --param rho both set parameter 'rho'",
        ),
        (
            [&base[..], &["--param", "rho=1", "--param", "rho=2"]].concat(),
            "--param rho is given twice",
        ),
        (
            [&adaptive[..], &["--saveat", "1:0.1:0"]].concat(),
            "saveat '1:0.1:0' runs backwards",
        ),
        (
            [&adaptive[..], &["--dtmin", "0.1", "--dtmax", "0.01"]].concat(),
            "--dtmin 0.1 is above --dtmax 0.01",
        ),
        (
            [&base[..], &["--outputs", "trajectory-stats"]].concat(),
            "--outputs chooses the files written to the output directory",
        ),
        (
            [&base[..], &["--overwrite"]].concat(),
            "--overwrite replaces the run in -o DIR",
        ),
        (
            [&base[..], &["--dt", "-0.001"]].concat(),
            "dt must be positive (got -0.001)",
        ),
        (
            [&adaptive[..], &["--rtol", "1e-6", "--rtol", "1e-7"]].concat(),
            "--rtol (for every state) is given twice",
        ),
    ];
    for (args, expected) in cases {
        assert_input_error(&phaseflow(&args), expected);
    }
    // Negative numbers reach the checks that say what is wrong with them.
    assert_input_error(
        &phaseflow(&[&adaptive[..], &["--dtmax", "-1"]].concat()),
        "dtmax must be positive (got -1)",
    );
    assert_input_error(
        &phaseflow(&[&adaptive[..], &["--safety", "-0.5"]].concat()),
        "--safety must be above 0 and at most 1 (got -0.5)",
    );
    assert_input_error(
        &phaseflow(&[&adaptive[..], &["--atol", "-1e-6"]].concat()),
        "atol must be a positive, finite number (got -0.000001)",
    );
}
