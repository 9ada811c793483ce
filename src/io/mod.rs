//! Files in and out: `.npy` arrays and `.npz` archives that numpy opens, PNG images and charts, and output
//! directories whose files appear all together or not at all.

pub mod image;
pub mod npy;
pub mod npy_stream;
pub mod npz;
pub mod output;
pub mod pickle;
pub mod plot;

pub use image::{Image, ImageError};
pub use npy::{NpyError, read_array, read_matrix, read_npy, write_npy};
pub use npy_stream::{Dtype, NpyStream, npy_header};
pub use npz::{NpzError, NpzValue, npz_bytes, read_npz, write_npz};
pub use output::{OutputDir, OutputError};
pub use plot::{Chart, PlotError, Scale, Series};
