//! Shader assembly and validation.
//!
//! Kernels live in `shaders/` as WGSL templates. The only composition allowed is this small
//! explicit preprocessor: `#include "path"` lines pull in another shader file once, and
//! `{{NAME}}` placeholders are filled from a list the caller gives. A placeholder left
//! unfilled, or a value given for a placeholder that does not exist, is an error, so
//! templates and callers cannot drift apart silently.
//!
//! Every composed shader goes through naga before it reaches the driver, and a failure is
//! reported with line, column and a caret in the composed source.

use crate::model::diagnostic::{Diagnostic, Source};
use std::collections::BTreeSet;
use thiserror::Error;

use crate::embedded;

#[derive(Debug, Error)]
pub enum ShaderError {
    #[error("unknown shader file '{0}'")]
    UnknownFile(String),
    #[error("shader '{file}': placeholder {{{{{name}}}}} was not given a value")]
    MissingValue { file: String, name: String },
    #[error(
        "shader '{file}': a value was given for {{{{{name}}}}}, which the template does not use"
    )]
    UnusedValue { file: String, name: String },
    #[error("shader '{label}' failed to parse\n{diagnostic}")]
    Parse {
        label: String,
        diagnostic: Box<Diagnostic>,
    },
    #[error("shader '{label}' failed validation\n{diagnostic}")]
    Invalid {
        label: String,
        diagnostic: Box<Diagnostic>,
    },
    /// A generator refused its inputs (e.g. more Wiener processes than the noise supports).
    #[error("{0}")]
    Generate(String),
}

/// The text of an embedded shader file, by its path under `shaders/`.
pub fn shader_file(path: &str) -> Result<&'static str, ShaderError> {
    embedded::SHADERS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, text)| *text)
        .ok_or_else(|| ShaderError::UnknownFile(path.to_string()))
}

/// All embedded shader files, for tests that validate each one.
pub fn shader_files() -> impl Iterator<Item = (&'static str, &'static str)> {
    embedded::SHADERS.iter().copied()
}

/// The template at `path` with its includes expanded and its placeholders as written: what
/// tests that read a template's declarations (its `struct Window`, its bindings) look at,
/// wherever an include put them.
pub fn expand(path: &str) -> Result<String, ShaderError> {
    let mut text = String::new();
    expand_includes(path, &mut BTreeSet::new(), &mut text)?;
    Ok(text)
}

/// Expands includes and placeholders of the template at `path`.
pub fn compose(path: &str, values: &[(&str, &str)]) -> Result<String, ShaderError> {
    let mut included = BTreeSet::new();
    let mut text = String::new();
    expand_includes(path, &mut included, &mut text)?;

    let mut used = BTreeSet::new();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find("{{") {
        let close = rest[open..]
            .find("}}")
            .map(|c| open + c)
            .unwrap_or(rest.len());
        let name = rest[open + 2..close].trim();
        let Some((_, value)) = values.iter().find(|(k, _)| *k == name) else {
            return Err(ShaderError::MissingValue {
                file: path.to_string(),
                name: name.to_string(),
            });
        };
        used.insert(name.to_string());
        out.push_str(&rest[..open]);
        out.push_str(value);
        rest = &rest[(close + 2).min(rest.len())..];
    }
    out.push_str(rest);
    if let Some((k, _)) = values.iter().find(|(k, _)| !used.contains(*k)) {
        return Err(ShaderError::UnusedValue {
            file: path.to_string(),
            name: k.to_string(),
        });
    }
    Ok(out)
}

fn expand_includes(
    path: &str,
    included: &mut BTreeSet<String>,
    out: &mut String,
) -> Result<(), ShaderError> {
    if !included.insert(path.to_string()) {
        return Ok(());
    }
    for line in shader_file(path)?.lines() {
        match line.trim().strip_prefix("#include") {
            Some(target) => {
                let target = target.trim().trim_matches('"');
                out.push_str(&format!("// ---- {target}\n"));
                expand_includes(target, included, out)?;
                out.push_str(&format!("// ---- end of {target}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(())
}

/// Parses and validates WGSL with naga. `f64` allows 64-bit floats and integers (the f64
/// math library reads bits through u64).
pub fn validate(label: &str, wgsl: &str, f64: bool) -> Result<naga::Module, ShaderError> {
    let source = Source::new(label, wgsl);
    let module = naga::front::wgsl::parse_str(wgsl).map_err(|e| {
        let span = e
            .location(wgsl)
            .map(|l| l.offset as usize..(l.offset + l.length) as usize)
            .unwrap_or(0..0);
        ShaderError::Parse {
            label: label.to_string(),
            diagnostic: Box::new(Diagnostic::new(e.message().to_string(), &source, span)),
        }
    })?;
    // Subgroup operations are allowed: kernels that use them are only chosen for adapters
    // that offer them (`GpuContext::has_subgroups`).
    let mut caps = naga::valid::Capabilities::SUBGROUP;
    if f64 {
        caps |= naga::valid::Capabilities::FLOAT64 | naga::valid::Capabilities::SHADER_INT64;
    }
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(&module)
        .map_err(|e| {
            let span = e
                .spans()
                .next()
                .map(|(s, _)| s.to_range().unwrap_or(0..0))
                .unwrap_or(0..0);
            let mut message = e.as_inner().to_string();
            let mut source_err: Option<&dyn std::error::Error> =
                std::error::Error::source(e.as_inner());
            while let Some(inner) = source_err {
                message.push_str(": ");
                message.push_str(&inner.to_string());
                source_err = inner.source();
            }
            ShaderError::Invalid {
                label: label.to_string(),
                diagnostic: Box::new(Diagnostic::new(message, &source, span)),
            }
        })?;
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shader_file_is_embedded() {
        assert!(shader_files().count() >= 2);
        assert!(shader_file("common/status.wgsl").is_ok());
        assert!(matches!(
            shader_file("nope.wgsl"),
            Err(ShaderError::UnknownFile(_))
        ));
    }

    #[test]
    fn placeholders_must_match_exactly() {
        let path = "ode/fixed/step.wgsl";
        let err = compose(path, &[]).unwrap_err();
        assert!(matches!(err, ShaderError::MissingValue { .. }), "{err}");
    }

    #[test]
    fn invalid_wgsl_gets_a_caret() {
        let err = validate("bad.wgsl", "fn f() -> f32 {\n    return 1u;\n}\n", false).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("bad.wgsl:"), "{text}");
        assert!(text.contains('^'), "{text}");
        let err = validate("bad.wgsl", "fn f( {", false).unwrap_err();
        assert!(matches!(err, ShaderError::Parse { .. }));
        assert!(err.to_string().contains("--> bad.wgsl:1:"), "{err}");
    }
}
