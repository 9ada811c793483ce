//! Runs written into Zarr v3 stores (`simulate -o run.zarr`), whole or by shards: `states`
//! [n_save, N, dim], `times`, `status`, `stats`, `params` and `u0` (and, with `--outputs
//! montecarlo`, the statistics across trajectories, merged from the shards), chunked along
//! trajectories (and time for long saves), zstd-compressed, with dimension names and
//! attributes that xarray and Dask read. A run cut into M shards (`--shard I/M`) is
//! computed by M processes at once into one store, each writing only its own chunks, with
//! no merge step; every shard records its progress and continues where it stopped when
//! run again; the last to finish (or `store finalize`) writes the run's summary. A store
//! written by M shards holds the same arrays, byte for byte, as one written by one process.

mod finalize;
mod layout;
mod montecarlo;
mod progress;
mod resume;
mod root;
mod run;
mod shard;
mod sink;

pub use finalize::{StoreStatus, finalize, status_counts};
pub use layout::{Layout, parse_compression};
pub use progress::ShardState;
pub use run::{StoreOptions, StoreRun, create_store, run_store};
pub use shard::{INDEX_VARIABLES, MAX_SHARDS, Shard};
