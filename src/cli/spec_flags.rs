//! How the command line names the keys a spec error mentions: a run spec's keys as
//! `simulate`'s flags (`sweep.rho` → `--sweep rho`, `params_file` → `--params`) and values
//! in flag syntax (`lo:hi`). With `--config`, only keys the flags set are named as flags;
//! every other key keeps the file's name for it, values are written as in the file
//! (`[lo, hi]`), and the file's path leads the message unless the key at fault is a flag.
//! Keys of other config files (train, generate) stay key names, led by the file's path.
//! The analysis tables' keys are their commands' flags: `lyapunov.k` → `-k`,
//! `basins.grid.x` → `--grid x`, `orbit.maxima` → `--maxima`.

use super::error::CliError;
use crate::spec::{FieldError, RunSpec, SpecError};
use std::path::Path;

/// The tables of the analysis commands (`phaseflow lyapunov`, `orbit-diagram`, `basins`),
/// whose keys are those commands' flags.
const ANALYSIS: [&str; 3] = ["lyapunov", "orbit", "basins"];

/// The `simulate` flag that sets run-spec key `key` (a dotted path), followed by the name
/// of the entry when the key is a table's (`set.x` → `--set x`); an analysis table's key is
/// its command's flag (`lyapunov.k` → `-k`, `basins.match_atol` → `--match-atol`,
/// `basins.grid.x` → `--grid x`).
pub fn run_flag(key: &str) -> String {
    if let Some((table, rest)) = key.split_once('.')
        && ANALYSIS.contains(&table)
    {
        let (head, name) = match rest.split_once('.') {
            Some((h, n)) => (h, Some(n)),
            None => (rest, None),
        };
        let flag = match head {
            "k" => "-k".to_string(),
            h => format!("--{}", h.replace('_', "-")),
        };
        return match name {
            Some(name) => format!("{flag} {name}"),
            None => flag,
        };
    }
    if ANALYSIS.contains(&key) {
        // A whole table, which only a file holds.
        return format!("[{key}]");
    }
    let (head, rest) = match key.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (key, None),
    };
    let (flag, rest) = match (head, rest) {
        ("n", _) => ("-n".to_string(), rest),
        ("out", _) => ("-o".to_string(), rest),
        ("params_file", _) => ("--params".to_string(), rest),
        ("inputs_file", _) => ("--inputs".to_string(), rest),
        // u0.uniform.x → --u0-uniform x; u0.file → --u0.
        ("u0", Some(r)) => {
            let (kind, name) = match r.split_once('.') {
                Some((k, n)) => (k, Some(n)),
                None => (r, None),
            };
            let flag = match kind {
                "file" => "--u0".to_string(),
                k => format!("--u0-{}", k.replace('_', "-")),
            };
            (flag, name)
        }
        (h, r) => (format!("--{}", h.replace('_', "-")), r),
    };
    match rest {
        Some(name) => format!("{flag} {name}"),
        None => flag,
    }
}

/// Whether a JSON value counts as set: not null, not an empty table.
fn is_set(v: &serde_json::Value) -> bool {
    !(v.is_null() || v.as_object().is_some_and(|o| o.is_empty()))
}

/// The keys a spec sets: the top-level ones (tables count when they are not empty), and
/// the analysis tables' keys one level down (`lyapunov.k`, `basins.grid`), since their
/// flags are set one by one.
fn keys_set(spec: &RunSpec) -> Vec<String> {
    let value = serde_json::to_value(spec).unwrap_or_default();
    let mut keys = Vec::new();
    for (k, v) in value.as_object().into_iter().flatten() {
        if !is_set(v) {
            continue;
        }
        match v.as_object() {
            Some(table) if ANALYSIS.contains(&k.as_str()) => keys.extend(
                table
                    .iter()
                    .filter(|(_, x)| is_set(x))
                    .map(|(sub, _)| format!("{k}.{sub}")),
            ),
            _ => keys.push(k.clone()),
        }
    }
    keys
}

/// The key whose flag sets `key`: its top-level key, or for an analysis table the key one
/// level down (`basins.grid.x` → `basins.grid`).
fn flag_key(key: &str) -> &str {
    let mut parts = key.split(['.', '[']);
    let head = parts.next().unwrap_or(key);
    match parts.next() {
        Some(sub) if ANALYSIS.contains(&head) => &key[..head.len() + 1 + sub.len()],
        _ => head,
    }
}

/// A run-spec error as `simulate` says it. `flags` is the part of the run's spec that the
/// flags set. Without a config file every key is a flag. With one, a key the flags set
/// is named as its flag and every other key as the file names it, and the file's name
/// leads the message unless the key at fault came from a flag.
pub fn run_spec_error(e: SpecError, flags: &RunSpec, config: Option<&Path>) -> CliError {
    let SpecError::Field(field) = e else {
        return e.into();
    };
    CliError::Input(run_field_message(&field, flags, config))
}

/// The words of `run_spec_error`.
fn run_field_message(field: &FieldError, flags: &RunSpec, config: Option<&Path>) -> String {
    let Some(config) = config else {
        return field.render_with(run_flag, true);
    };
    let by_flag = keys_set(flags);
    let is_flag = |key: &str| {
        let head = flag_key(key);
        by_flag.iter().any(|k| k == head)
    };
    let fault_by_flag = is_flag(&field.field);
    let message = field.render_with(
        |k| {
            if is_flag(k) {
                run_flag(k)
            } else {
                k.to_string()
            }
        },
        fault_by_flag,
    );
    if fault_by_flag {
        message
    } else {
        format!("{}: {message}", config.display())
    }
}

/// An error in a config file read whole (train, generate): its keys as the file names them,
/// led by the file's name.
pub fn config_error(e: SpecError, config: &Path) -> CliError {
    match e {
        SpecError::Field(f) => CliError::Input(format!("{}: {f}", config.display())),

        other => other.into(),
    }
}

/// An error in an option that has a flag of the same name (`kernel`'s `--rtol`).
pub fn flag_error(e: FieldError) -> CliError {
    CliError::Input(e.render_with(|k| format!("--{}", k.replace('_', "-")), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_spec_keys_become_simulate_flags() {
        let cases = [
            ("rtol", "--rtol"),
            ("fixed_step", "--fixed-step"),
            ("n", "-n"),
            ("sweep.rho", "--sweep rho"),
            ("params_file", "--params"),
            ("u0.uniform.x", "--u0-uniform x"),
            ("u0.perturb", "--u0-perturb"),
            ("u0.file", "--u0"),
            ("max_steps", "--max-steps"),
            ("lyapunov.k", "-k"),
            ("lyapunov.time", "--time"),
            ("lyapunov.renorm", "--renorm"),
            ("orbit.maxima", "--maxima"),
            ("orbit.tol", "--tol"),
            ("basins.grid", "--grid"),
            ("basins.grid.x", "--grid x"),
            ("basins.match_atol", "--match-atol"),
            ("basins.max_attractors", "--max-attractors"),
            ("basins.entropy_box", "--entropy-box"),
            ("orbit", "[orbit]"),
        ];
        for (key, flag) in cases {
            assert_eq!(run_flag(key), flag, "{key}");
        }
    }

    #[test]
    fn keys_from_the_config_file_keep_their_names() {
        let flags = RunSpec {
            dt: Some(0.1),
            ..RunSpec::default()
        };
        let e = FieldError::new("rtol", "applies to adaptive solvers without ")
            .key("fixed_step")
            .text(", of ")
            .key("dt");
        let message = run_spec_error(e.into(), &flags, Some(Path::new("run.toml")));
        // dt was given as a flag; fixed_step was given nowhere, so it is named as the
        // file would name it.
        assert_eq!(
            message.to_string(),
            "run.toml: rtol applies to adaptive solvers without fixed_step, of --dt"
        );
        // A key at fault that a flag set is named as the flag, with no file.
        let e = FieldError::new("dt", "must be ").form("lo:hi", "[lo, hi]");
        let message = run_spec_error(e.into(), &flags, Some(Path::new("run.toml")));
        assert_eq!(message.to_string(), "--dt must be lo:hi");
    }

    /// A key of an analysis table is a flag only if its own flag was given: `-k` on the
    /// command line does not make the file's `[lyapunov] time` a flag.
    #[test]
    fn analysis_keys_are_flags_one_by_one() {
        let flags = RunSpec {
            lyapunov: Some(crate::spec::LyapunovSpec {
                k: Some(2),
                ..Default::default()
            }),
            ..RunSpec::default()
        };
        let config = Some(Path::new("run.toml"));
        let e = FieldError::new("lyapunov.time", "must be above zero");
        assert_eq!(
            run_spec_error(e.into(), &flags, config).to_string(),
            "run.toml: lyapunov.time must be above zero"
        );
        let e = FieldError::new("lyapunov.k", "must be at most 3");
        assert_eq!(
            run_spec_error(e.into(), &flags, config).to_string(),
            "-k must be at most 3"
        );
        assert_eq!(flag_key("basins.grid.x"), "basins.grid");
        assert_eq!(flag_key("sweep.rho"), "sweep");
        assert_eq!(flag_key("saveat[2]"), "saveat");
    }
}
