//! The system language: equations written the way papers write them, parsed and checked
//! once, then evaluated in f64 on the CPU or emitted as WGSL.

pub mod catalog;
pub mod derive;
pub mod diagnostic;
pub mod event;
mod event_types;
pub mod expr;
pub mod function;
pub mod jacobian;
pub mod lexer;
pub mod noise;
pub mod parser;
pub mod print;
mod resolve;
pub mod sensitivity;
pub mod signal;
pub mod system;
pub mod system_file;
pub mod var;
pub mod wgsl;

pub use catalog::{builtin, builtin_names};
pub use diagnostic::{Diagnostic, Diagnostics, Source};
pub use event::{Action, Direction, Event, EventKind};
pub use function::Function;
pub use noise::{Calculus, Noise, NoiseKind, NoiseSource};
pub use signal::{Input, Signal};
pub use system::{Meta, System, Var};
pub use system_file::{load_system_file, parse_system};
pub use wgsl::{ProgramFn, emit_system, emit_system_with};
