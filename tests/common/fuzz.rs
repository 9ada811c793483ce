//! Shared by the fuzz targets (`tests/fuzz_*.rs`): how many generated inputs each property
//! runs. `make test` runs a bounded number so the suite stays quick; `make fuzz` sets
//! `PHASEFLOW_FUZZ_CASES` for the long run the README reports.
#![allow(dead_code)]

use proptest::test_runner::Config;

/// Cases per property: `PHASEFLOW_FUZZ_CASES` when set (the long run), else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PHASEFLOW_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A proptest configuration running `cases(default)` inputs, with no persistence file (a
/// failure prints its minimal input; nothing is written into the source tree).
pub fn config(default: u32) -> Config {
    Config {
        cases: cases(default),
        failure_persistence: None,
        ..Config::default()
    }
}
