//! Specs read from TOML config files (problems point into the file, and relative paths are
//! relative to it) and from JSON values (problems name the key).

use super::error::{FieldError, SpecError};
use crate::model::diagnostic::{Diagnostic, Source};
use std::path::{Path, PathBuf};

/// A TOML config file as `T`; a problem points into the file (line, column, caret).
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, SpecError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SpecError::Input(format!("cannot read config '{}': {e}", path.display())))?;
    let source = Source::new(path.display().to_string(), text);
    let diagnostic = |e: toml::de::Error, key: Option<String>| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().replace('\n', " ");
        // The key leads, so that a range message ("must be ...") says whose range it is.
        let message = match key {
            Some(key) => format!("{key}: {message}"),
            None => message,
        };
        SpecError::Diagnostics(Diagnostic::new(message, &source, span).into())
    };
    let deserializer = toml::Deserializer::parse(&source.text).map_err(|e| diagnostic(e, None))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        // An unknown key is reported at its table, and its message names it already.
        let key = (key != "." && !e.inner().message().starts_with("unknown field")).then_some(key);
        diagnostic(e.into_inner(), key)
    })
}

/// Relative paths in a config are relative to the config file: `paths`, and `system` when
/// it names a system file (`*.toml`) rather than a built-in.
pub fn relative_to_config<'a>(
    config: &Path,
    paths: impl IntoIterator<Item = &'a mut PathBuf>,
    system: Option<&mut String>,
) {
    let base = config.parent().unwrap_or(Path::new("."));
    for p in paths {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    if let Some(sys) = system
        && sys.ends_with(".toml")
        && Path::new(sys).is_relative()
    {
        *sys = base.join(&*sys).display().to_string();
    }
}

/// A config from JSON (an HTTP body, a Python call's keywords). A refusal names the JSON
/// path of the bad key (`sweep.rho`, `tspan[1]`), never the bad value; an unknown key is
/// named at its place (`u0.unifrom`), the message saying what was expected. `what` names
/// the config in the message ("bad run spec: ...").
pub fn from_json<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    what: &str,
) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let unknown = inner
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next());
        let field = match (path.as_str(), unknown) {
            (".", Some(key)) => key.to_string(),
            (parent, Some(key)) if !parent.ends_with(key) => format!("{parent}.{key}"),
            (".", None) => String::new(),
            (p, _) => p.to_string(),
        };
        FieldError::at(field).text(format!("bad {what}: {}", plain_words(&inner)))
    })
}

/// serde's words for a number out of an unsigned field's range ("invalid value: integer
/// `-1`, expected u64", "invalid type: floating point `1.5`, expected usize") said as a
/// user of a config would: what the field takes. Other messages pass unchanged.
fn plain_words(inner: &str) -> String {
    let whole = |ty: &str| match ty {
        "u8" => Some(u8::MAX as u64),
        "u16" => Some(u16::MAX as u64),
        "u32" => Some(u32::MAX as u64),
        "u64" | "usize" => Some(u64::MAX),
        _ => None,
    };
    let Some((got, ty)) = inner
        .split_once(", expected ")
        .map(|(head, ty)| (head, ty.trim()))
    else {
        return inner.to_string();
    };
    let Some(max) = whole(ty) else {
        return inner.to_string();
    };
    let value = got.split('`').nth(1).unwrap_or("?");
    let range = if max == u64::MAX {
        "a whole number, 0 or more".to_string()
    } else {
        format!("a whole number from 0 to {max}")
    };
    if got.starts_with("invalid value: integer") || got.starts_with("invalid type: floating point")
    {
        format!("must be {range} (got {value})")
    } else {
        inner.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::plain_words;

    #[test]
    fn unsigned_fields_say_what_they_take() {
        assert_eq!(
            plain_words("invalid value: integer `-1`, expected u64"),
            "must be a whole number, 0 or more (got -1)"
        );
        assert_eq!(
            plain_words("invalid value: integer `5000000000`, expected u32"),
            "must be a whole number from 0 to 4294967295 (got 5000000000)"
        );
        assert_eq!(
            plain_words("invalid type: floating point `1.5`, expected usize"),
            "must be a whole number, 0 or more (got 1.5)"
        );
        let other = "invalid type: string \"a\", expected f64";
        assert_eq!(plain_words(other), other);
    }
}
