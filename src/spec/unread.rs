//! A run config read by a command that runs an ensemble for something other than its
//! trajectories (`lyapunov`, `basins`) holds the run-config keys that command reads and
//! its own table. Any other key would be silently ignored, so it is refused, at its key:
//! a `saveat` in a Lyapunov config is a mistake about what the command does, not a default.

use super::error::FieldError;
use super::run::RunSpec;

/// The top-level keys `spec` sets (a table counts when it is not empty), in `RunSpec`'s
/// field order.
pub fn keys_set(spec: &RunSpec) -> Vec<String> {
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

/// Refuses the first key `spec` sets that is not in `reads` (the analysis tables are
/// `RunSpec::only_analysis`'s to judge and pass here). `why` may add the reason for a key
/// (it receives the error and returns it extended).
pub fn refuse_unread(
    spec: &RunSpec,
    command: &str,
    reads: &[&str],
    why: impl Fn(&str, FieldError) -> FieldError,
) -> Result<(), FieldError> {
    const TABLES: [&str; 3] = ["lyapunov", "orbit", "basins"];
    let Some(key) = keys_set(spec)
        .into_iter()
        .find(|k| !reads.contains(&k.as_str()) && !TABLES.contains(&k.as_str()))
    else {
        return Ok(());
    };
    let e = FieldError::at(key.as_str())
        .key(key.as_str())
        .text(format!(" is not read by `phaseflow {command}`"));
    Err(why(&key, e).text("; leave it out"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_unread_key_is_refused_at_its_name() {
        let spec: RunSpec = toml::from_str("n = 3\nsaveat = '0:1:2'\nevents = 4").unwrap();
        assert_eq!(keys_set(&spec), ["n", "saveat", "events"]);
        let e = refuse_unread(&spec, "lyapunov", &["n", "events"], |_, e| e).unwrap_err();
        assert_eq!(e.field, "saveat");
        assert_eq!(
            e.to_string(),
            "saveat is not read by `phaseflow lyapunov`; leave it out"
        );
        let e = refuse_unread(&spec, "lyapunov", &["n", "saveat"], |k, e| {
            e.text(format!(" (a {k})"))
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "events is not read by `phaseflow lyapunov` (a events); leave it out"
        );
        assert!(refuse_unread(&spec, "x", &["n", "saveat", "events"], |_, e| e).is_ok());
        // Empty tables and the analysis tables are not judged here.
        let spec: RunSpec = toml::from_str("[set]\n[lyapunov]\nk = 1").unwrap();
        assert!(refuse_unread(&spec, "x", &[], |_, e| e).is_ok());
    }
}
