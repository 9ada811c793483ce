//! The names a system declares: states and parameters with their defaults, auxiliary
//! definitions, and the names every system reserves. Shared by the system, its resolver
//! and the noise block.

use super::expr::Node;
use std::ops::Range;

/// A state or parameter: its name, default value, and where it was declared.
#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    pub name: String,
    pub default: f64,
    /// Span of the name in the system's source, for messages.
    pub span: Option<Range<usize>>,
}

impl Var {
    pub fn new(name: impl Into<String>, default: f64) -> Var {
        Var {
            name: name.into(),
            default,
            span: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuxDef {
    pub name: String,
    pub value: Node,
}

/// Names with a fixed meaning in every system.
pub const RESERVED: [&str; 2] = ["t", "pi"];
