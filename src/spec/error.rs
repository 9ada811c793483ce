//! What is wrong with a spec, in terms every front-end can render.

use crate::model::diagnostic::Diagnostics;

/// What is wrong with a spec: one sentence, or diagnostics pointing into a file.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Diagnostics(Diagnostics),
}
