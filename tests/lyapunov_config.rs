//! `phaseflow lyapunov --config FILE`: a run config with a `[lyapunov]` table gives the
//! same bits as the same run by flags, flags override the file, and every mistake in the
//! file is one message at its key (led by the file's path) or at its line and column.

mod common;

use common::cli::{assert_input_error, phaseflow, stderr, stdout, temp_dir};
use std::path::Path;

/// A small Lorenz ensemble: 4 values of ρ, 1 time unit of transient, 2 of averaging.
const CONFIG: &str = "system = \"lorenz\"\nn = 4\ndt = 0.01\ntransient = 1\n\
                      [sweep]\nrho = [20, 40]\n[lyapunov]\nk = 2\ntime = 2\nrenorm = 0.1\n";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn npy_bytes(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

#[test]
fn a_config_run_gives_the_flag_runs_bits() {
    let dir = temp_dir("same-bits");
    let config = write(&dir, "run.toml", CONFIG);
    let (by_file, by_flags) = (dir.join("file"), dir.join("flags"));
    let o = phaseflow(&[
        "lyapunov",
        "--config",
        &config,
        "-o",
        by_file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = phaseflow(&[
        "lyapunov",
        "lorenz",
        "-n",
        "4",
        "--dt",
        "0.01",
        "--transient",
        "1",
        "--sweep",
        "rho=20:40",
        "-k",
        "2",
        "--time",
        "2",
        "--renorm",
        "0.1",
        "-o",
        by_flags.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "lyapunov.npy",
        "lyapunov_error.npy",
        "status.npy",
        "params.npy",
        "final.npy",
    ] {
        assert_eq!(npy_bytes(&by_file, f), npy_bytes(&by_flags, f), "{f}");
    }
    let (shape, lambda) = phaseflow::io::read_npy(&by_file.join("lyapunov.npy")).unwrap();
    assert_eq!(shape, [4, 2]);
    assert!(lambda.iter().all(|l| l.is_finite()), "{lambda:?}");
    let run: serde_json::Value = serde_json::from_slice(&npy_bytes(&by_file, "run.json")).unwrap();
    assert_eq!(run["tspan"], serde_json::json!([0.0, 3.0]));
    assert_eq!(run["ensemble"]["sweep"]["rho"], serde_json::json!([20, 40]));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Flags replace the file's values key by key; the rest of the file stands. The JSON
/// summary is the library's (`LyapunovResult::summary_json`) with the ensemble added.
#[test]
fn flags_override_the_file() {
    let dir = temp_dir("override");
    let config = write(&dir, "run.toml", CONFIG);
    let o = phaseflow(&[
        "lyapunov", "--config", &config, "-k", "1", "--time", "1", "-n", "2", "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!((s["k"].as_u64(), s["n"].as_u64()), (Some(1), Some(2)));
    assert_eq!(s["time"], 1.0);
    assert_eq!(s["renorm"], 0.1); // from the file
    assert_eq!(s["transient"], 1.0); // from the file
    assert_eq!(s["ensemble"]["n"], 2);
    assert_eq!(s["exponents"].as_array().unwrap().len(), 1);
    assert_eq!(s["trajectories"].as_array().unwrap().len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mistakes_in_the_file_get_one_message() {
    let dir = temp_dir("mistakes");
    // A misspelt key: its line, column and a caret.
    let bad_key = write(
        &dir,
        "bad_key.toml",
        "system = \"lorenz\"\nn = 2\n[lyapunov]\nkk = 2\n",
    );
    let o = phaseflow(&["lyapunov", "--config", &bad_key]);
    assert_input_error(&o, "unknown field `kk`");
    let err = stderr(&o);
    assert!(err.contains(&format!("{bad_key}:4:1")), "{err}");
    assert!(err.contains("4 | kk = 2") && err.contains('^'), "{err}");

    let cases = [
        // Another command's table.
        (
            "system = \"lorenz\"\nn = 2\n[orbit]\nmaxima = \"z\"\n",
            "orbit holds the keys of `phaseflow orbit-diagram`",
        ),
        // A top-level key the command does not read.
        (
            "system = \"lorenz\"\nn = 2\nsaveat = \"0:1:10\"\n",
            "saveat is not read by `phaseflow lyapunov`",
        ),
        (
            "system = \"lorenz\"\nn = 2\nrtol = 1e-6\n",
            "rtol is not read by `phaseflow lyapunov`: it takes fixed steps of dt",
        ),
        // A bad value in the table, named as the file names it.
        (
            "system = \"lorenz\"\nn = 2\n[lyapunov]\nrenorm = 0.0123\n",
            "lyapunov.renorm = 0.0123 is not a whole number of steps of dt",
        ),
        (
            "system = \"lorenz\"\nn = 2\n[lyapunov]\nk = 4\n",
            "lyapunov.k",
        ),
        (
            "system = \"lorenz\"\nn = 2\ntspan = [0, 5]\n",
            "tspan [0, 5] leaves no time after the transient of 10",
        ),
        ("n = 2\n", "names no system"),
    ];
    for (i, (text, expected)) in cases.into_iter().enumerate() {
        let path = write(&dir, &format!("case{i}.toml"), text);
        let o = phaseflow(&["lyapunov", "--config", &path]);
        assert_input_error(&o, expected);
        assert!(stderr(&o).contains(&path), "{text:?}: {}", stderr(&o));
    }

    // The same mistake by flag is named as the flag, with no path.
    let path = write(&dir, "ok.toml", "system = \"lorenz\"\nn = 2\n");
    let o = phaseflow(&["lyapunov", "--config", &path, "--renorm", "0.0123"]);
    assert_input_error(&o, "--renorm = 0.0123 is not a whole number of steps of dt");
    assert!(!stderr(&o).contains(&path), "{}", stderr(&o));
    // A file's key that a flag did not set keeps its name while a flag sets another.
    let path = write(
        &dir,
        "mixed.toml",
        "system = \"lorenz\"\nn = 2\n[lyapunov]\nblocks = 1\n",
    );
    let o = phaseflow(&["lyapunov", "--config", &path, "-k", "2"]);
    assert_input_error(&o, &format!("{path}: lyapunov.blocks must be at least 2"));
    // Without a file or a system.
    assert_input_error(&phaseflow(&["lyapunov", "-n", "2"]), "no system given");
    let _ = std::fs::remove_dir_all(&dir);
}
