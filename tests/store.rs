//! `simulate -o run.zarr`, whole and in shards: M shard processes running at once fill one
//! Zarr store with the same bytes, array by array, as one process; a killed shard continues
//! when run again; `store status` names what is missing and `store finalize` refuses an
//! incomplete store; `--shard auto/M` reads Slurm's and Kubernetes' task indices; what a
//! store cannot hold is refused before any work.

mod common;
use common::cli::{
    assert_input_error, phaseflow, signal_and_wait, start_and_wait_for_chunks, stderr, stdout,
    temp_dir,
};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

/// A fixed-step run of 16,384 Lorenz trajectories in chunks of 2,048 (store chunks of
/// 1,024), 5 saves, keeping states and Monte Carlo statistics, writing into `out`.
fn args(out: &Path) -> Vec<String> {
    with_outputs(out, "states,montecarlo")
}

fn with_outputs(out: &Path, outputs: &str) -> Vec<String> {
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
        "--zarr-chunk",
        "1024",
        "--outputs",
        outputs,
        "-q",
        "-o",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

fn run(args: &[String]) -> std::process::Output {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    phaseflow(&a)
}

fn with_shard(mut a: Vec<String>, shard: &str) -> Vec<String> {
    a.extend(["--shard".to_string(), shard.to_string()]);
    a
}

/// Every file of the store's arrays (chunks and metadata), by path relative to the store:
/// the root (which records the shard count) and the shards' progress files left out.
fn array_files(store: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.push((
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(store).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && !p.ends_with("shards") {
            walk(&p, store, &mut out);
        }
    }
    out.sort();
    out
}

fn assert_same_arrays(a: &Path, b: &Path) {
    let (fa, fb) = (array_files(a), array_files(b));
    let names = |f: &[(PathBuf, Vec<u8>)]| f.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&fa), names(&fb));
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(x == y, "{} differs", name.display());
    }
}

/// The whole of a store's f64 or i64 array, as little-endian bytes.
fn array_bytes(store: &Path, name: &str) -> Vec<u8> {
    let fs = Arc::new(zarrs::filesystem::FilesystemStore::new(store).unwrap());
    let a = zarrs::array::Array::open(fs, &format!("/{name}")).unwrap();
    let subset = zarrs::array::ArraySubset::new_with_shape(a.shape().to_vec());
    if name == "mc_count" {
        let v: Vec<i64> = a.retrieve_array_subset(&subset).unwrap();
        bytemuck::cast_slice(&v).to_vec()
    } else {
        let v: Vec<f64> = a.retrieve_array_subset(&subset).unwrap();
        bytemuck::cast_slice(&v).to_vec()
    }
}

/// The data of a .npy file (after its header).
fn npy_data(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + header..].to_vec()
}

fn root(store: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(store.join("zarr.json")).unwrap()).unwrap()
}

fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_phaseflow"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Starts `args` and kills it (SIGKILL) once it has written two chunks.
fn kill_after_two_chunks(args: &[String]) {
    let (child, reader) = start_and_wait_for_chunks(args, 2);
    signal_and_wait(child, reader, libc::SIGKILL);
}

/// A shard that found chunks lost since its progress file was written: it succeeded by
/// starting over, and said so.
fn assert_started_over(o: &std::process::Output) {
    assert!(o.status.success(), "{}", stderr(o));
    assert!(
        stderr(o).contains("starting the shard over"),
        "{}",
        stderr(o)
    );
}

/// The whole run, by one process, into `name`.zarr under `dir`.
fn whole(dir: &Path) -> PathBuf {
    let store = dir.join("whole.zarr");
    let o = run(&args(&store));
    assert!(o.status.success(), "{}", stderr(&o));
    store
}

/// Three shard processes at once give the single process's arrays byte for byte; the
/// states and the Monte Carlo statistics merged from the shards equal the run directory's
/// .npy files; the last shard finalizes the store.
#[test]
fn shards_at_once_write_what_one_process_writes() {
    let dir = temp_dir("shards");
    let one = whole(&dir);
    let store = dir.join("three.zarr");
    let children: Vec<Child> = (0..3)
        .map(|i| spawn(&with_shard(args(&store), &format!("{i}/3"))))
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_same_arrays(&one, &store);
    let r = root(&store);
    let record = &r["attributes"]["phaseflow"];
    assert_eq!(record["complete"], true);
    assert_eq!(record["shards"], 3);
    assert_eq!(record["status"]["success"], 16384);
    assert_eq!(r["attributes"]["system"], "lorenz");
    let consolidated = &r["consolidated_metadata"]["metadata"];
    assert_eq!(
        consolidated["states"]["shape"],
        serde_json::json!([5, 16384, 3])
    );
    assert_eq!(
        consolidated["states"]["dimension_names"],
        serde_json::json!(["time", "trajectory", "state"])
    );

    // The same run as .npy files: the store's states are its bytes.
    let npy = dir.join("dir");
    let mut a = args(&npy);
    a.retain(|x| x != "--zarr-chunk" && x != "1024");
    let o = run(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(npy.join("states.npy")).unwrap();
    let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let fs = Arc::new(zarrs::filesystem::FilesystemStore::new(&store).unwrap());
    let states = zarrs::array::Array::open(fs, "/states").unwrap();
    let subset = zarrs::array::ArraySubset::new_with_shape(vec![5, 16384, 3]);
    let values: Vec<f32> = states.retrieve_array_subset(&subset).unwrap();
    assert!(bytemuck::cast_slice::<f32, u8>(&values) == &bytes[10 + header..]);
    for name in ["mc_mean", "mc_var", "mc_quantiles", "mc_count"] {
        assert_eq!(
            array_bytes(&store, name),
            npy_data(&npy.join(format!("{name}.npy"))),
            "{name}"
        );
    }
    assert_eq!(
        record["montecarlo"]["quantiles"],
        serde_json::json!([0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
    );
    assert_eq!(
        consolidated["mc_quantiles"]["dimension_names"],
        serde_json::json!(["time", "quantile", "state"])
    );

    let o = phaseflow(&["store", "status", store.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["complete_shards"], 3);
    assert_eq!(s["trajectories_done"], 16384);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A shard killed mid-run leaves its progress behind: `store status` names it and the one
/// never started (exit 1), `finalize` refuses (exit 2); run again, the shard continues,
/// and once the other has run the store equals the uninterrupted one.
#[test]
fn a_killed_shard_continues_and_the_store_names_what_is_missing() {
    let dir = temp_dir("killed");
    let one = whole(&dir);
    let store = dir.join("cut.zarr");
    let shard1 = with_shard(args(&store), "1/2");
    kill_after_two_chunks(&shard1);
    let progress: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("shards/1-of-2.json")).unwrap()).unwrap();
    assert_eq!(progress["state"], "running");
    assert_eq!(progress["trajectories"], serde_json::json!([8192, 16384]));
    let done = progress["done"].as_u64().unwrap();
    assert!((8192 + 2048..16384).contains(&done), "{done}");

    let o = phaseflow(&["store", "status", store.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("0/2 (not started)"), "{text}");
    assert!(text.contains("1/2 (running"), "{text}");
    let o = phaseflow(&["store", "finalize", store.to_str().unwrap()]);
    assert_input_error(&o, "2 of 2 shard(s) have not finished");
    assert_eq!(root(&store)["attributes"]["phaseflow"]["complete"], false);

    // A chunk of states the progress file counts as written, lost before the shard goes
    // on: the shard starts over rather than leave a hole (and replay NaN into its
    // statistics).
    let lost = store.join("states/c/0/8/0");
    assert!(lost.is_file(), "the shard's first chunk was written");
    std::fs::remove_file(&lost).unwrap();
    let o = run(&shard1);
    assert_started_over(&o);
    let o = run(&shard1);
    assert!(stdout(&o).contains("already complete"), "{}", stdout(&o));
    let o = run(&with_shard(args(&store), "0/2"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_arrays(&one, &store);
    assert_eq!(root(&store)["attributes"]["phaseflow"]["complete"], true);

    // A shard's accumulators lost, cut short, or another shard's copied over: the shard
    // reads as damaged (status and finalize name it), and running it again mends it with
    // the same bytes, replayed from the states the store holds.
    let acc = store.join("shards/0-of-2.montecarlo");
    let kept = std::fs::read(&acc).unwrap();
    let other = std::fs::read(store.join("shards/1-of-2.montecarlo")).unwrap();
    let s = store.to_str().unwrap();
    for damage in [None, Some(&kept[..kept.len() / 2]), Some(&other[..])] {
        match damage {
            None => std::fs::remove_file(&acc).unwrap(),
            Some(bytes) => std::fs::write(&acc, bytes).unwrap(),
        }
        let o = phaseflow(&["store", "status", s]);
        assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
        assert!(stdout(&o).contains("0/2 (damaged"), "{}", stdout(&o));
        let o = phaseflow(&["store", "finalize", s]);
        assert_input_error(&o, "0/2 (damaged: its Monte Carlo accumulators");
        let o = run(&with_shard(args(&store), "0/2"));
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            std::fs::read(&acc).unwrap() == kept,
            "mended with the same bytes"
        );
    }
    let o = phaseflow(&["store", "finalize", s]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_arrays(&one, &store);

    // Chunks lost after the shards finished: the shard reads as damaged, finalize refuses
    // to call the run complete, and running the shard again mends the store.
    std::fs::remove_file(store.join("status/c/3")).unwrap();
    let o = phaseflow(&["store", "status", s]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let o = phaseflow(&["store", "finalize", s]);
    assert_input_error(
        &o,
        "0/2 (damaged: 1024 of its 8192 trajectories have no status",
    );
    // (The outputs are a set: their order does not make another run.)
    let o = run(&with_shard(
        with_outputs(&store, "montecarlo,states"),
        "0/2",
    ));
    assert_started_over(&o);
    assert_same_arrays(&one, &store);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A run keeping states only: a chunk of any array lost between a kill and the next start
/// (here `u0`) makes the shard start over, and the store ends as one process's.
#[test]
fn a_lost_chunk_of_any_array_restarts_the_shard() {
    let dir = temp_dir("lost");
    let one = dir.join("one.zarr");
    let o = run(&with_outputs(&one, "states"));
    assert!(o.status.success(), "{}", stderr(&o));
    let store = dir.join("cut.zarr");
    let again = with_outputs(&store, "states");
    kill_after_two_chunks(&again);
    std::fs::remove_file(store.join("u0/c/0/0")).unwrap();
    let o = run(&again);
    assert_started_over(&o);
    assert_same_arrays(&one, &store);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Monte Carlo statistics without states: a killed shard has no states to feed its
/// accumulators again from, so it starts over, and the merged statistics are still the
/// single process's bits.
#[test]
fn montecarlo_alone_survives_a_killed_shard() {
    let dir = temp_dir("mc-alone");
    let one = dir.join("one.zarr");
    let o = run(&with_outputs(&one, "montecarlo"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!one.join("states").exists());
    let store = dir.join("two.zarr");
    let shard1 = with_shard(with_outputs(&store, "montecarlo"), "1/2");
    kill_after_two_chunks(&shard1);
    for shard in [
        shard1,
        with_shard(with_outputs(&store, "montecarlo"), "0/2"),
    ] {
        let o = run(&shard);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_same_arrays(&one, &store);
    assert_eq!(root(&store)["attributes"]["phaseflow"]["complete"], true);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Event logs (here a Poincaré section) go into `events` [trajectory, event, field] and
/// `event_counts`: two shards give one process's bytes, which are the run directory's
/// events.npy and event_counts.npy.
#[test]
fn event_logs_fill_the_store_as_the_run_directory() {
    let dir = temp_dir("events");
    let args = |out: &Path, extra: &[&str]| {
        let mut a: Vec<String> = [
            "simulate",
            "lorenz",
            "-n",
            "3000",
            "--sweep",
            "rho=20:50",
            "--tspan",
            "0:10",
            "--dt",
            "0.01",
            "--section",
            "z=27",
            "--chunk",
            "1024",
            "-q",
            "-o",
        ]
        .map(String::from)
        .to_vec();
        a.push(out.to_str().unwrap().to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let one = dir.join("one.zarr");
    let o = run(&args(&one, &["--zarr-chunk", "512"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let two = dir.join("two.zarr");
    let children: Vec<Child> = (0..2)
        .map(|i| {
            spawn(&args(
                &two,
                &["--zarr-chunk", "512", "--shard", &format!("{i}/2")],
            ))
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_same_arrays(&one, &two);
    let npy = dir.join("dir");
    let o = run(&args(&npy, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let fs = Arc::new(zarrs::filesystem::FilesystemStore::new(&two).unwrap());
    let events = zarrs::array::Array::open(fs.clone(), "/events").unwrap();
    assert_eq!(events.shape(), &[3000, 64, 5]);
    let all = zarrs::array::ArraySubset::new_with_shape(events.shape().to_vec());
    let records: Vec<f32> = events.retrieve_array_subset(&all).unwrap();
    assert!(bytemuck::cast_slice::<f32, u8>(&records) == npy_data(&npy.join("events.npy")));
    let counts = zarrs::array::Array::open(fs, "/event_counts").unwrap();
    let all = zarrs::array::ArraySubset::new_with_shape(vec![3000]);
    let counts: Vec<u32> = counts.retrieve_array_subset(&all).unwrap();
    assert!(bytemuck::cast_slice::<u32, u8>(&counts) == npy_data(&npy.join("event_counts.npy")));
    assert!(counts.iter().any(|&c| c > 0), "the section is crossed");

    // No records kept, only the counts: an events array with no chunks.
    let none = dir.join("none.zarr");
    let o = run(&args(&none, &["--points", "0"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let fs = Arc::new(zarrs::filesystem::FilesystemStore::new(&none).unwrap());
    let events = zarrs::array::Array::open(fs.clone(), "/events").unwrap();
    assert_eq!(events.shape(), &[3000, 0, 5]);
    let kept = zarrs::array::Array::open(fs, "/event_counts").unwrap();
    let kept: Vec<u32> = kept.retrieve_array_subset(&all).unwrap();
    assert_eq!(kept, counts);

    // Shards of runs with different sections are different runs: never one store.
    let mixed = dir.join("mixed.zarr");
    let shard = |section: &str, i: usize| {
        let mut a = args(
            &mixed,
            &["--zarr-chunk", "512", "--shard", &format!("{i}/2")],
        );
        let at = a.iter().position(|x| x == "z=27").unwrap();
        a[at] = section.to_string();
        run(&a)
    };
    let o = shard("z=27", 0);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_input_error(&shard("z=30", 1), "holds another run");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A chunk that cannot be written (here a file where its folder must go) fails the shard
/// with the store's path in the message, recorded as interrupted rather than left
/// "running"; once the obstacle is gone the same command completes the store.
#[test]
fn a_failed_write_interrupts_the_shard() {
    let dir = temp_dir("failed-write");
    let store = dir.join("w.zarr");
    let a = |shard: &str| {
        let mut a: Vec<String> = [
            "simulate",
            "lorenz",
            "-n",
            "4096",
            "--tspan",
            "0:1",
            "--dt",
            "0.01",
            "--zarr-chunk",
            "512",
            "-q",
            "--shard",
            shard,
            "-o",
        ]
        .map(String::from)
        .to_vec();
        a.push(store.to_str().unwrap().to_string());
        a
    };
    let o = run(&a("1/2"));
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::create_dir_all(store.join("states/c/0")).unwrap();
    std::fs::write(store.join("states/c/0/2"), "in the way").unwrap();
    let o = run(&a("0/2"));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("w.zarr/states' failed"),
        "{}",
        stderr(&o)
    );
    let progress: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("shards/0-of-2.json")).unwrap()).unwrap();
    assert_eq!(progress["state"], "interrupted");
    std::fs::remove_file(store.join("states/c/0/2")).unwrap();
    let o = run(&a("0/2"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(root(&store)["attributes"]["phaseflow"]["complete"], true);
    std::fs::remove_dir_all(dir).unwrap();
}

/// SIGTERM (a scheduler's stop) stops a shard as Ctrl-C does: after the chunks in
/// flight, recorded as interrupted, exit 130; run again, it completes.
#[test]
fn sigterm_interrupts_a_shard_cleanly() {
    let dir = temp_dir("sigterm");
    let store = dir.join("term.zarr");
    let a = args(&store);
    let (child, reader) = start_and_wait_for_chunks(&a, 1);
    let (code, rest) = signal_and_wait(child, reader, libc::SIGTERM);
    assert_eq!(code, Some(130), "{rest}");
    assert!(rest.contains("run the same command again"), "{rest}");
    let progress: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("shards/0-of-1.json")).unwrap()).unwrap();
    assert_eq!(progress["state"], "interrupted");
    let o = run(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(root(&store)["attributes"]["phaseflow"]["complete"], true);
    std::fs::remove_dir_all(dir).unwrap();
}

/// `--shard auto/M` takes its index from SLURM_ARRAY_TASK_ID (less SLURM_ARRAY_TASK_MIN)
/// or JOB_COMPLETION_INDEX, and refuses to guess when neither is set.
#[test]
fn auto_shards_read_slurm_and_kubernetes_indices() {
    let dir = temp_dir("auto");
    let store = dir.join("auto.zarr");
    let small = |out: &Path| {
        [
            "simulate",
            "lorenz",
            "-n",
            "300",
            "--tspan",
            "0:1",
            "--dt",
            "0.01",
            "--zarr-chunk",
            "100",
            "--shard",
            "auto/3",
            "-q",
            "-o",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([out.to_str().unwrap().to_string()])
        .collect::<Vec<_>>()
    };
    let cmd = |vars: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_phaseflow"));
        c.args(small(&store));
        for v in phaseflow::ode::store::INDEX_VARIABLES {
            c.env_remove(v);
        }
        c.env_remove("SLURM_ARRAY_TASK_MIN");
        for (k, v) in vars {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let o = cmd(&[("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_MIN", "1")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(store.join("shards/1-of-3.json").is_file());
    let o = cmd(&[("JOB_COMPLETION_INDEX", "2")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(store.join("shards/2-of-3.json").is_file());
    let o = cmd(&[]);
    assert_input_error(&o, "SLURM_ARRAY_TASK_ID");
    assert!(stderr(&o).contains("JOB_COMPLETION_INDEX"));
    let o = cmd(&[("SLURM_ARRAY_TASK_ID", "0")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("all 3 shard(s) complete"),
        "{}",
        stdout(&o)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// What a store cannot hold, and stores that are not this run's, are refused before any
/// work, each with one clear message.
#[test]
fn stores_refuse_what_they_cannot_hold() {
    let dir = temp_dir("refuse");
    let store = dir.join("r.zarr");
    let s = store.to_str().unwrap();
    let base = [
        "simulate", "lorenz", "-n", "64", "--tspan", "0:1", "--dt", "0.01", "-q",
    ];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        phaseflow(&a)
    };
    let d = dir.join("plain");
    assert_input_error(
        &with(&["-o", d.to_str().unwrap(), "--shard", "0/2"]),
        "--shard is for Zarr stores",
    );
    assert_input_error(
        &with(&["--compression", "zstd"]),
        "--compression is for Zarr stores",
    );
    assert_input_error(&with(&["-o", s, "--shard", "2/2"]), "does not exist");
    assert_input_error(
        &with(&["-o", s, "--compression", "lz4"]),
        "not a compression",
    );
    assert_input_error(
        &with(&["-o", s, "--sensitivities", "rho"]),
        "does not hold sensitivities",
    );
    assert_input_error(
        &with(&["-o", s, "--outputs", "states,ensemble-stats"]),
        "not ensemble-stats",
    );
    assert_input_error(
        &phaseflow(&[
            "simulate",
            "lorenz",
            "-n",
            "2000000",
            "--tspan",
            "0:1",
            "--dt",
            "0.001",
            "--save-every",
            "4",
            "--zarr-chunk",
            "2000000",
            "-q",
            "-o",
            s,
        ]),
        "a chunk of states would be 5.6 GiB",
    );
    assert!(!store.exists(), "nothing is created for a refused run");

    let o = with(&["-o", s]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_input_error(
        &phaseflow(&["simulate", "--resume", s]),
        "continues when the command that wrote it",
    );
    // The same command with one more trajectory: another run.
    let other = |extra: &[&str]| {
        let mut a = vec![
            "simulate", "lorenz", "-n", "65", "--tspan", "0:1", "--dt", "0.01", "-q", "-o", s,
        ];
        a.extend_from_slice(extra);
        phaseflow(&a)
    };
    let o = other(&[]);
    assert_input_error(&o, "holds another run");
    assert_input_error(
        &with(&["-o", s, "--shard", "0/2"]),
        "cut the run into at most 1 shards",
    );
    assert_input_error(
        &with(&["-o", s, "--shard", "0/2", "--zarr-chunk", "32"]),
        "cut into 1 shard(s), not 2",
    );
    let o = other(&["--shard", "0/2", "--overwrite"]);
    assert_input_error(&o, "remove the store by hand");
    let o = other(&["--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(root(&store)["attributes"]["n"], 65);
    // --overwrite leaves a store that holds anything a run does not write untouched.
    std::fs::write(store.join("NOTES.txt"), b"mine").unwrap();
    assert_input_error(
        &other(&["--overwrite"]),
        "also holds what no run writes (NOTES.txt)",
    );
    assert!(store.join("NOTES.txt").is_file() && store.join("status").is_dir());
    std::fs::remove_file(store.join("NOTES.txt")).unwrap();
    // --overwrite on a store of this very run computes it again from nothing.
    std::fs::write(store.join("status/c/0"), b"damaged").unwrap();
    let o = other(&["--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let fs = Arc::new(zarrs::filesystem::FilesystemStore::new(&store).unwrap());
    let status = zarrs::array::Array::open(fs, "/status").unwrap();
    let codes: Vec<u8> = status.retrieve_chunk(&[0]).unwrap();
    assert!(codes.iter().all(|&c| c == 1), "every trajectory succeeded");

    // The same run asking for other quantiles cannot merge its accumulators with these.
    let q = dir.join("q.zarr");
    let q = q.to_str().unwrap();
    let o = with(&[
        "-o",
        q,
        "--outputs",
        "montecarlo",
        "--shard",
        "0/2",
        "--zarr-chunk",
        "32",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_input_error(
        &with(&[
            "-o",
            q,
            "--outputs",
            "montecarlo",
            "--shard",
            "1/2",
            "--zarr-chunk",
            "32",
            "--quantiles",
            "0.5",
        ]),
        "with Monte Carlo quantiles",
    );

    let file = dir.join("file.zarr");
    std::fs::write(&file, "x").unwrap();
    assert_input_error(&with(&["-o", file.to_str().unwrap()]), "is a file");
    let other = dir.join("other.zarr");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    assert_input_error(&with(&["-o", other.to_str().unwrap()]), "not a Zarr store");
    assert_input_error(
        &phaseflow(&["store", "status", other.to_str().unwrap()]),
        "not a Zarr store",
    );
    assert_input_error(
        &phaseflow(&["store", "finalize", dir.join("none.zarr").to_str().unwrap()]),
        "not a Zarr store",
    );
    std::fs::remove_dir_all(dir).unwrap();
}
