//! The run directory of `simulate -o DIR`: self-contained and relocatable. Its run.json
//! exists from before the first chunk (state "running", kept up to date as chunks finish)
//! and holds the run's spec with every path relative to the directory (the system file,
//! parameter, initial-state and input tables are copied into it), and a fingerprint of
//! the settings that produced its files. `--resume DIR` rebuilds the run from DIR alone,
//! checks the fingerprint, and writes into DIR wherever it now is.
//!
//! `prepare_run` checks a run and its directory before any device is opened; the
//! `Prepared` run then runs on the given devices, streaming into the directory's files
//! (`Outputs`), and returns the run's summary (what run.json holds). The CLI and the Python
//! package drive it, each with its own progress display and interruption.

mod directory;
mod error;
mod outputs;
mod run;
mod summary;

pub use directory::{
    FreshRunGuard, ResumePoint, fingerprint, prepare, running_json, stored_spec, system_text,
};
pub use error::RunDirError;
pub use outputs::{Output, Outputs};
pub use run::{DirRun, Prepared, interruptible_chunk_of, prepare_run};
pub use summary::{method_json, summary_json};
