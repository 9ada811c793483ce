//! Files in and out: `.npy` arrays and `.npz` archives that numpy opens, PNG images and charts, and output
//! directories whose files appear all together or not at all.

pub mod fnv;
pub mod image;
#[cfg(feature = "plot")]
pub mod label_map;
pub mod npy;
pub mod npy_stream;
pub mod npz;
pub mod output;
pub mod pickle;
#[cfg(feature = "plot")]
pub mod plot;
#[cfg(feature = "plot")]
pub mod raster;

pub use image::{Image, ImageError};
#[cfg(feature = "plot")]
pub use label_map::{LabelMap, label_color};
pub use npy::{
    MAX_DIMS, MAX_HEADER_BYTES, NpyError, NpyHeader, header_length, parse_header, read_array,
    read_matrix, read_npy, write_npy,
};
pub use npy_stream::{Dtype, NpyStream, npy_header};
pub use npz::{
    MAX_NPZ_BYTES, NpzError, NpzValue, npz_bytes, read_npz, read_npz_limited, write_npz,
};
pub use output::{OutputDir, OutputError};
#[cfg(feature = "plot")]
pub use plot::{Chart, PlotError, Scale, Series};
#[cfg(feature = "plot")]
pub use raster::{Raster, density_colors, label_colors, value_colors};
