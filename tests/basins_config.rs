//! `phaseflow basins --config FILE`: a run config with a `[basins]` table gives the same
//! labels as the same run by flags, flags override the file (`--grid` replaces its grid),
//! and every mistake in the file is one message at its key (led by the file's path) or at
//! its line and column.

mod common;

use common::cli::{assert_input_error, phaseflow, stderr, stdout, temp_dir};
use std::path::Path;

/// The unforced double well x'' = x − x³ − 0.2·x', as a system file.
fn write_system(dir: &Path) -> String {
    write(
        dir,
        "double_well.toml",
        "name = \"double_well\"\nstates = { x = 0.0, v = 0.0 }\nparameters = { delta = 0.2 }\n\
         tspan = [0.0, 100.0]\nequations = \"\"\"\ndx = v\ndv = -delta*v + x - x^3\n\"\"\"\n",
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// 8 × 6 points, t = 0..100, window 10: a small grid whose labels settle (the wells
/// contract at δ/2, leaving e^-10 of the distance).
const CONFIG: &str = "system = \"double_well.toml\"\ntspan = [0, 100]\n\
                      [basins]\nwindow = 10\n[basins.grid]\nx = [-2, 2, 8]\nv = [-1, 1, 6]\n";

#[test]
fn a_config_run_gives_the_flag_runs_labels() {
    let dir = temp_dir("same-labels");
    let system = write_system(&dir);
    let config = write(&dir, "basins.toml", CONFIG);
    let (by_file, by_flags) = (dir.join("file"), dir.join("flags"));
    let o = phaseflow(&[
        "basins",
        "--config",
        &config,
        "-q",
        "-o",
        by_file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = phaseflow(&[
        "basins",
        &system,
        "--tspan",
        "0:100",
        "--window",
        "10",
        "--grid",
        "x=-2:2:8",
        "--grid",
        "v=-1:1:6",
        "-q",
        "-o",
        by_flags.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["basins.npy", "attractors.npy", "features.npy"] {
        let (a, b) = (
            std::fs::read(by_file.join(f)).unwrap(),
            std::fs::read(by_flags.join(f)).unwrap(),
        );
        assert_eq!(a, b, "{f}");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(by_file.join("basins.json")).unwrap()).unwrap();
    assert_eq!(summary["x"]["count"], 8);
    assert_eq!(summary["y"]["state"], "v");
    assert_eq!(summary["method"]["window"], 10.0);
    assert_eq!(summary["attractors"].as_array().unwrap().len(), 2);
    assert!(summary["run"]["adapter"].is_string());
    let _ = std::fs::remove_dir_all(&dir);
}

/// --grid replaces the file's grid whole; other flags replace their keys.
#[test]
fn flags_override_the_file() {
    let dir = temp_dir("override");
    write_system(&dir);
    let config = write(&dir, "basins.toml", CONFIG);
    let o = phaseflow(&[
        "basins",
        "--config",
        &config,
        "--grid",
        "v=-1:1:3",
        "--grid",
        "x=-2:2:5",
        "--window",
        "2",
        "--entropy-box",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(s["x"]["state"], "v");
    assert_eq!(s["x"]["count"], 3);
    assert_eq!(s["y"]["count"], 5);
    assert_eq!(s["method"]["window"], 2.0);
    assert_eq!(s["tspan"], serde_json::json!([0.0, 100.0])); // from the file
    assert_eq!(s["basin_entropy"]["box"], 2);
    assert_eq!(s["run"]["trajectories"], 15);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mistakes_in_the_file_get_one_message() {
    let dir = temp_dir("mistakes");
    write_system(&dir);
    let bad_key = write(
        &dir,
        "bad_key.toml",
        "system = \"double_well.toml\"\n[basins]\nwindoww = 3\n",
    );
    let o = phaseflow(&["basins", "--config", &bad_key]);
    assert_input_error(&o, "unknown field `windoww`");
    let err = stderr(&o);
    assert!(err.contains(&format!("{bad_key}:3:1")), "{err}");
    assert!(
        err.contains("3 | windoww = 3") && err.contains('^'),
        "{err}"
    );

    let grid = "[basins.grid]\nx = [-2, 2, 4]\nv = [-1, 1, 3]\n";
    let head = "system = \"double_well.toml\"\ntspan = [0, 10]\n";
    let cases = [
        (
            format!("{head}[lyapunov]\nk = 1\n{grid}"),
            "lyapunov holds the keys of `phaseflow lyapunov`",
        ),
        (
            format!("{head}n = 12\n{grid}"),
            "n is not read by `phaseflow basins`: the grid (basins.grid) sets",
        ),
        (
            format!("{head}[u0]\nperturb = {{ x = 0.1 }}\n{grid}"),
            "u0 is not read by `phaseflow basins`",
        ),
        (
            format!("{head}[basins.grid]\nx = [-2, 2, 2.5]\nv = [-1, 1, 3]\n"),
            "basins.grid.x: the point count must be a whole number",
        ),
        (
            format!("{head}[basins.grid]\nx = [-2, 2, 4]\n"),
            "give basins.grid two states",
        ),
        (
            format!("{head}[basins]\nwindow = 50\n{grid}"),
            "basins.window 50 is longer than the run (t 0 → 10)",
        ),
        (
            format!("{head}set = {{ x = 1 }}\n{grid}"),
            "set.x and basins.grid.x both set state 'x'",
        ),
        (format!("tspan = [0, 10]\n{grid}"), "names no system"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let path = write(&dir, &format!("case{i}.toml"), text);
        let o = phaseflow(&["basins", "--config", &path]);
        assert_input_error(&o, expected);
        assert!(stderr(&o).contains(&path), "{text:?}: {}", stderr(&o));
    }
    // The same mistakes by flag are named as flags.
    let path = write(&dir, "ok.toml", &format!("{head}{grid}"));
    let o = phaseflow(&["basins", "--config", &path, "--window", "50"]);
    assert_input_error(&o, "--window 50 is longer than the run");
    assert!(!stderr(&o).contains(&path), "{}", stderr(&o));
    let o = phaseflow(&["basins", "--config", &path, "--classify", "sign(z)"]);
    assert_input_error(&o, "unknown name 'z'");
    assert!(stderr(&o).contains("--classify:1:"), "{}", stderr(&o));
    // From the file, the expression is named by its key after the file's path.
    let path = write(
        &dir,
        "classify.toml",
        &format!("{head}{grid}[basins]\nclassify = \"sign(z)\"\n"),
    );
    let o = phaseflow(&["basins", "--config", &path]);
    assert_input_error(&o, "unknown name 'z'");
    assert!(
        stderr(&o).contains(&format!("{path}: basins.classify:1:6")),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
