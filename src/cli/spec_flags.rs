//! How the command line names the keys a spec error mentions: a run spec's keys as
//! `simulate`'s flags (`sweep.rho` → `--sweep rho`, `params_file` → `--params`), except
//! those that came from the `--config` file alone, which keep their key names and the file's
//! name leads the message. Keys of other config files (train, generate) stay key names.

use super::error::CliError;
use crate::spec::{RunSpec, SpecError};
use std::path::Path;

/// The `simulate` flag that sets run-spec key `key` (a dotted path), followed by the name
/// of the entry when the key is a table's (`set.x` → `--set x`).
pub fn run_flag(key: &str) -> String {
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

/// The top-level keys a spec sets (tables count when they are not empty).
fn keys_set(spec: &RunSpec) -> Vec<String> {
    let value = serde_json::to_value(spec).unwrap_or_default();
    value
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| !(v.is_null() || v.as_object().is_some_and(|o| o.is_empty())))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// A run-spec error as `simulate` says it. `spec` is the run's spec and `flags` the part
/// the flags set; a key only `config` set is named as the file names it.
pub fn run_spec_error(
    e: SpecError,
    spec: &RunSpec,
    flags: &RunSpec,
    config: Option<&Path>,
) -> CliError {
    let SpecError::Field(field) = e else {
        return e.into();
    };
    let Some(config) = config else {
        return CliError::Input(field.render(run_flag));
    };
    let (in_spec, by_flag) = (keys_set(spec), keys_set(flags));
    let from_file = |key: &str| {
        let head = key.split('.').next().unwrap_or(key);
        in_spec.iter().any(|k| k == head) && !by_flag.iter().any(|k| k == head)
    };
    let message = field.render(|k| {
        if from_file(k) {
            k.to_string()
        } else {
            run_flag(k)
        }
    });
    if field.keys().any(from_file) {
        CliError::Input(format!("{}: {message}", config.display()))
    } else {
        CliError::Input(message)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::FieldError;

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
        ];
        for (key, flag) in cases {
            assert_eq!(run_flag(key), flag, "{key}");
        }
    }

    #[test]
    fn keys_from_the_config_file_keep_their_names() {
        let spec = RunSpec {
            rtol: Some(toml::Value::Float(1e-6)),
            dt: Some(0.1),
            ..RunSpec::default()
        };
        let flags = RunSpec {
            dt: Some(0.1),
            ..RunSpec::default()
        };
        let e = FieldError::new("rtol", "applies to adaptive solvers without ")
            .key("fixed_step")
            .text(", of ")
            .key("dt");
        let message = run_spec_error(e.into(), &spec, &flags, Some(Path::new("run.toml")));
        assert_eq!(
            message.to_string(),
            "run.toml: rtol applies to adaptive solvers without --fixed-step, of --dt"
        );
    }
}
