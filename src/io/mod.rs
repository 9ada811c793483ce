//! Files in and out: `.npy` arrays that numpy opens, and output directories whose files
//! appear all together or not at all.

pub mod npy;
pub mod npy_stream;
pub mod output;

pub use npy::{NpyError, read_matrix, write_npy};
pub use npy_stream::{Dtype, NpyStream};
pub use output::{OutputDir, OutputError};
