//! `phaseflow fit` runs from a `FitSpec`: the same request as a TOML file (`--config`), flags
//! laid over it, and errors that name the key at fault as the user gave it (a flag, or the
//! file's key).
#![cfg(feature = "cli")]

mod common;
use common::cli::{assert_input_error, phaseflow, stderr, stdout, temp_dir};
use std::path::Path;

fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap();
    path.to_str().unwrap().to_string()
}

const SMALL: &str = r#"
out = "results"
seed = 3
[target.expr]
text = "sin(2*pi*x)"
points = 16
[network]
hidden = [8]
features = 4
[train]
steps = 4
"#;

#[test]
fn a_config_file_is_a_fit_and_flags_override_it() {
    let dir = temp_dir("fit-config");
    let config = write(&dir.join("fit.toml"), SMALL);
    let o = phaseflow(&["fit", "--config", &config, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(summary["steps_asked"], 4);
    assert_eq!(summary["batch"], 16);
    // `out` is relative to the config file.
    assert!(dir.join("results/model.safetensors").is_file());

    let o = phaseflow(&[
        "fit",
        "--config",
        &config,
        "--json",
        "--steps",
        "3",
        "--points",
        "8",
        "--overwrite",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (summary["steps_asked"].as_u64(), summary["batch"].as_u64()),
        (Some(3), Some(8))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn errors_name_the_key_as_it_was_given() {
    let dir = temp_dir("fit-config-errors");
    let out = dir.join("never");
    let o_arg = out.to_str().unwrap();
    let bad = write(
        &dir.join("bad.toml"),
        &SMALL.replace("steps = 4", "steps = 4\nweight_decay = -1"),
    );
    // From the file: the file's key, led by its name.
    let o = phaseflow(&["fit", "--config", &bad, "-o", o_arg]);
    assert_input_error(&o, "bad.toml: the weight decay must be a finite number");
    assert!(
        stderr(&o).contains("(train.weight_decay)"),
        "{}",
        stderr(&o)
    );
    // From a flag: the flag, and only the one at fault.
    let o = phaseflow(&["fit", "--config", &bad, "--weight-decay", "-2", "-o", o_arg]);
    assert_input_error(&o, "got -2 (--weight-decay)");
    let o = phaseflow(&[
        "fit",
        "--expr",
        "sin(x)",
        "--weight-decay",
        "-1",
        "-o",
        o_arg,
    ]);
    assert_input_error(&o, "got -1 (--weight-decay)");
    assert!(!stderr(&o).contains("--lr"), "{}", stderr(&o));
    let o = phaseflow(&["fit", "--expr", "sin(x)", "--clip", "-1", "-o", o_arg]);
    assert_input_error(&o, "got -1 (--clip)");

    // A value is written as the key at fault was given: [lo, hi] in the file, lo:hi as a flag.
    let backwards = write(
        &dir.join("backwards.toml"),
        "[target.expr]\ntext = \"x\"\ndomain = [1.0, 0.0]\n",
    );
    let o = phaseflow(&["fit", "--config", &backwards, "-o", o_arg]);
    assert_input_error(
        &o,
        "backwards.toml: target.expr.domain must be [lo, hi] with lo < hi",
    );
    let o = phaseflow(&["fit", "--expr", "x", "--domain", "1:0", "-o", o_arg]);
    assert_input_error(&o, "--domain must be lo:hi with lo < hi");

    // Unknown keys point into the file.
    let typo = write(&dir.join("typo.toml"), &SMALL.replace("points", "pionts"));
    let o = phaseflow(&["fit", "--config", &typo, "-o", o_arg]);
    assert_input_error(&o, "unknown field `pionts`");
    assert!(stderr(&o).contains("typo.toml:"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing written");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_misspelt_input_is_never_pointed_at_t() {
    let dir = temp_dir("fit-hint");
    let o_arg = dir.join("never");
    let o = phaseflow(&["fit", "--expr", "sin(q)", "-o", o_arg.to_str().unwrap()]);
    assert_input_error(&o, "unknown name 'q'");
    let err = stderr(&o);
    assert!(!err.contains("'t'"), "{err}");
    assert!(err.contains("the inputs are: x"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
