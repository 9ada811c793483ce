//! Files in and out: `.npy` arrays that numpy opens, and output directories whose files
//! appear all together or not at all.

pub mod npy;
pub mod output;

pub use npy::{NpyError, read_matrix, write_npy};
pub use output::{OutputDir, OutputError};
