//! The built-in systems: TOML files in `systems/`, embedded at build time.

use super::diagnostic::{Diagnostics, Source};
use super::system::System;
use super::system_file::parse_system;
use crate::embedded::SYSTEMS as EMBEDDED_SYSTEMS;

/// Names of the built-in systems (their file stems), sorted.
pub fn builtin_names() -> Vec<&'static str> {
    EMBEDDED_SYSTEMS
        .iter()
        .map(|(file, _)| file.trim_end_matches(".toml"))
        .collect()
}

/// A built-in system by name, or `None` if there is none of that name.
pub fn builtin(name: &str) -> Option<Result<System, Diagnostics>> {
    EMBEDDED_SYSTEMS
        .iter()
        .find(|(file, _)| file.trim_end_matches(".toml") == name)
        .map(|(file, text)| parse_system(&Source::new(format!("systems/{file}"), *text)))
}
