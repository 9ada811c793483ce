//! What is wrong with a spec, in terms every front-end can render: a `FieldError` names the
//! key at fault as a path from the spec's root (`rtol`, `sweep.rho`, `train.lr`) and keeps
//! the keys its message mentions apart from its words, so the command line can print them
//! as flags (`--rtol`), a config file as key names and the HTTP server as JSON paths.

use crate::model::diagnostic::Diagnostics;
use std::fmt;

/// What is wrong with a spec: a field, one sentence, or diagnostics pointing into a file.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A key has a bad value, or contradicts another.
    #[error("{0}")]
    Field(FieldError),
    /// A sentence about no one key (a system too large, a run that fails its own checks).
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Diagnostics(Diagnostics),
}

impl From<FieldError> for SpecError {
    fn from(e: FieldError) -> SpecError {
        SpecError::Field(e)
    }
}

/// A bad key and a message about it. `Display` names keys by their paths (`rtol`,
/// `sweep.rho`); `render` lets a front-end name them its own way.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The key at fault, dotted from the spec's root: `rtol`, `sweep.rho`, `u0.uniform.x`.
    pub field: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Key(String),
    /// How a value is written, which differs between front-ends: on the command line
    /// (`lo:hi`) and in data (a config file or JSON: `[lo, hi]`).
    Form {
        flag: String,
        data: String,
    },
}

impl FieldError {
    /// "FIELD REST": a message that opens with the key at fault.
    pub fn new(field: impl Into<String>, rest: impl fmt::Display) -> FieldError {
        let field = field.into();
        FieldError::at(field.clone())
            .key(field)
            .text(format!(" {rest}"))
    }

    /// An error at `field` with an empty message, to be built with `text` and `key`.
    pub fn at(field: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            parts: Vec::new(),
        }
    }

    /// Words of the message.
    pub fn text(mut self, text: impl Into<String>) -> FieldError {
        self.parts.push(Part::Text(text.into()));
        self
    }

    /// A key the message mentions (a path, as `field` is).
    pub fn key(mut self, key: impl Into<String>) -> FieldError {
        self.parts.push(Part::Key(key.into()));
        self
    }

    /// How a value is written: `flag` on the command line, `data` in a config file or a
    /// JSON body.
    pub fn form(mut self, flag: impl Into<String>, data: impl Into<String>) -> FieldError {
        self.parts.push(Part::Form {
            flag: flag.into(),
            data: data.into(),
        });
        self
    }

    /// The keys the message mentions, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Key(k) => Some(k.as_str()),
            Part::Text(_) | Part::Form { .. } => None,
        })
    }

    /// The message with every key spelled by `name` (e.g. as a config key) and values
    /// written as data (`[lo, hi]`).
    pub fn render(&self, name: impl Fn(&str) -> String) -> String {
        self.render_with(name, false)
    }

    /// The message with every key spelled by `name` (e.g. as a flag); values are written as
    /// on the command line (`lo:hi`) when `flags` is set, else as data (`[lo, hi]`).
    pub fn render_with(&self, name: impl Fn(&str) -> String, flags: bool) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Key(k) => name(k),
                Part::Form { flag, data } => {
                    if flags {
                        flag.clone()
                    } else {
                        data.clone()
                    }
                }
            })
            .collect()
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(str::to_string))
    }
}

impl std::error::Error for FieldError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_render_as_each_front_end_names_them() {
        let e = FieldError::new("rtol", "applies to adaptive solvers without ")
            .key("fixed_step")
            .text("; give ")
            .key("sweep.rho");
        assert_eq!(e.field, "rtol");
        assert_eq!(
            e.to_string(),
            "rtol applies to adaptive solvers without fixed_step; give sweep.rho"
        );
        let flag = |k: &str| format!("--{}", k.replace('_', "-").replace('.', " "));
        assert_eq!(
            e.render(flag),
            "--rtol applies to adaptive solvers without --fixed-step; give --sweep rho"
        );
        assert_eq!(
            e.keys().collect::<Vec<_>>(),
            ["rtol", "fixed_step", "sweep.rho"]
        );
    }

    #[test]
    fn value_forms_render_as_each_front_end_writes_them() {
        let e = FieldError::new("sweep.rho", "must be ").form("lo:hi", "[lo, hi]");
        assert_eq!(e.to_string(), "sweep.rho must be [lo, hi]");
        assert_eq!(
            e.render_with(|k| format!("--{k}"), true),
            "--sweep.rho must be lo:hi"
        );
    }
}
